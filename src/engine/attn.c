/*
 * attn.c - the attention step.
 *
 * The store keeps the vocabulary ids of each key's and value's words, not
 * vectors (see the Design comment in src/engine/store.c). A text's vector is the
 * mean of its words' rows, and both halves of attention are linear in it:
 *   - the score of a key of words a, b, c is k.q = (a.q + b.q + c.q) / 3
 *     (attention dot), or that divided by |k| |q| tau (cosine; the store
 *     keeps |k|, computed in double from the exact mean);
 *   - r = sum_i w_i v_i = sum over words u of W_u u, where W_u adds up
 *     w_i / n_i over the values i (of n_i words) that contain u.
 * So a query
 *   1. computes the score u.q of each word the store's keys use (the store
 *      keeps that set: akv_store_key_words), once, in word id order, so
 *      that the rows are read in the order they lie in the mapped matrix;
 *   2. makes one pass over the store's blocks: per entry, it averages its
 *      key words' scores, takes the exponential and adds the weight to its
 *      value words' W_u;
 *   3. reads the rows of the value words used, in id order, for r.
 * It thus reads the store's rows (about 50 bytes an entry) and one
 * vocabulary row per distinct word in use, rather than two 400-byte vectors
 * per entry. Every sum is in double: the result is that of the formulas
 * above on the float rows, which is what the float64 reference in
 * tests/unit/refimpl.c computes too (the vectors this replaced were the phrases'
 * means rounded to float, a little further from it).
 *
 * Softmax: the weights are exp(s_i - c) / z with z = sum exp(s_i - c), and r
 * = sum W_u u / z. Any shift c gives the same weights; c only has to keep
 * exp() in range. It starts at the first block's largest score and moves up
 * to a block's largest score only when that exceeds it by more than
 * SHIFT_SLACK, because moving it means rescaling z and every W_u, which is
 * cheap for one accumulator but not for one per word. So no term exceeds
 * e^SHIFT_SLACK (no sum can overflow), and since c is always some entry's
 * score, z >= 1 and a term below e^-708, which exp_block flushes to zero, is
 * below 1e-307 of the total.
 *
 * The per-query tables are indexed by vocabulary id (the key words' scores,
 * the value words' W_u), each with a bitmap of the words in use, so that
 * only those are computed or read. Per entry, a key or value of up to three
 * words is handled without a branch on its length (the unused places name a
 * sink word whose score is 0 and whose weight is never read): with phrases
 * and single words mixed, a loop over each entry's words would mispredict
 * about once an entry, which cost more than the rest of the loop.
 *
 * Batches (akv_attn_run_many): queries on the same snapshot share steps 1-3.
 * Each key word's row is scored against every query of the batch while it
 * is in the L1 cache, the pass over the store computes every query's scores
 * and weights per entry, and each value word's row is added into every
 * query's r. The per-word tables then hold a row of the batch's values per
 * word, indexed by a slot the batch gives each word it uses (kslot, vslot),
 * so that they grow with the store rather than with the vocabulary times
 * the batch; a batch is cut so that its key scores stay within
 * ATTN_TABLE_MAX. Every query goes through the same operations in the same
 * order as alone, so it gets the same bits (tests/unit/test-query.c checks).
 *
 * Payloads. A payload entry (its value has no words, n = 0; store.h) takes
 * part in the softmax through its key but not in the blend: r = sum over
 * the embedded entries of w_i v_i / sum over them of w_i, the weights
 * renormalised over the embedded entries. So the pass keeps two softmax
 * accumulators per query: the embedded entries' (shift c, sum z, the W_u
 * above, exactly as for a store without payloads) and the payload
 * entries' (shift cp, sum zp, in plain double with libm's exp). A payload
 * row's score goes to the explain heap (and FGET's score list) and is then
 * set to -infinity for the rest of its block, so that it weighs 0 in the
 * blend. At the end, the weights over all entries (EXPLAIN, FGET) use the
 * larger shift and z_all = z e^(c - c_all) + zp e^(cp - c_all), and r is
 * divided by z alone; each shift is the largest score of its own entries,
 * so neither sum can underflow however far apart they are. A store with
 * no payload entry has zp = 0 and c_all = c: the same bits as before
 * payloads existed.
 *
 * The kernels (dot products, weighted row sums, exponentials) are in
 * attn-kernels.h, built three times (portable, AVX2, AVX-512) in files of
 * their own and picked at run time; all give bit-identical results.
 *
 * Threading: reads a snapshot and the immutable vocabulary only; any thread
 * holding a live snapshot. The scratch tables are per thread.
 */
#include "engine/attn.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/embed.h"
#include "engine/attn-kernels.h"

#define BLOCK_MAX 4096 /* the store's chunk size bounds a block */
#define SHIFT_SLACK AKV_ATTN_SHIFT_SLACK
#define WORD_BATCH 512                   /* word ids handed to a kernel at a time */
#define PREFETCH_ENTRIES 16              /* how far ahead attn_block asks for table lines */
#define ATTN_BATCH_MAX 16                /* queries sharing one pass over the store */
#define ATTN_TABLE_MAX ((size_t)4 << 20) /* bytes of key scores a batch may keep */

struct why_heap {
    struct akv_why *h; /* min-heap on (weight as score, then later slot) */
    size_t n, cap;
};

/* One query of a batch. */
struct attn_q {
    const double *q; /* the query in double, dim */
    enum akv_attn_mode mode;
    double inv_qnorm_tau;       /* cosine: 1 / (|q| tau) */
    double dot_tau;             /* dot: the scores are divided by it (1: left as they are) */
    double c;                   /* the shift, -INFINITY before the first block */
    double z;                   /* sum of exp(s - c) over the embedded entries */
    double cp, zp;              /* the same over the payload entries */
    size_t blended;             /* embedded entries attended */
    struct akv_attn_score *out; /* every visible entry's score (FGET), or NULL */
    size_t nout, out_cap;
    struct why_heap why; /* keyed by raw score while scanning */
    double *scores;      /* BLOCK_MAX: this block's scores, */
    double *weights;     /* and their exponentials */
};

/* Word tables. For a query alone (unslotted) they are indexed by
 * vocabulary id. For a batch (slotted), every word the store uses gets a
 * slot (kslot, vslot), and the tables hold nq entries a slot, so that their
 * size follows the store rather than the vocabulary times the batch. Slot 0
 * stands for the sink and every word without one; its key scores are 0 and
 * its weights are never read. */
struct attn_state {
    const struct akv_store *s;
    const struct akv_store_snap *snap;
    const struct akv_attn_kernels *k;
    const float *mat; /* the vocabulary's rows */
    uint32_t dim;
    uint32_t sink; /* the word count, which vocab.h keeps below
                    * AKV_STORE_NO_WORD: stands for "no word" */
    int slotted;
    int blend; /* some job wants r: weigh the value words */
    size_t nq; /* queries in the current batch */
    struct attn_q *qs;
    double *kscore; /* per word (or slot): row . q, for the words kused marks */
    uint64_t *kused;
    double *vweight; /* per word (or slot): W_u, nonzero only where vused marks */
    uint64_t *vused;
    size_t nmask;            /* 64-bit words in each bitmap */
    uint32_t *kslot, *vslot; /* slotted: per vocabulary word, its slot (0: none) */
    size_t nv, vcap;         /* slotted: value slots in use, and allocated */
    int oom;
    size_t attended;
    double inv_n[AKV_PHRASE_WORDS_MAX + 1];
};

/* The kernel builds by name, and whether this CPU runs each. */
static const struct {
    const char *name;
    const struct akv_attn_kernels *k;
} kernel_table[] = {
    {"portable", &akv_attn_kernels_portable},
#ifdef AKV_ATTN_X86
    {"avx2", &akv_attn_kernels_avx2},
    {"avx512", &akv_attn_kernels_avx512},
#else
    {"avx2", NULL}, /* not in this build */
    {"avx512", NULL},
#endif
};
#define NKERNELS (sizeof kernel_table / sizeof kernel_table[0])

static bool kernel_runs(size_t i)
{
#ifdef AKV_ATTN_X86
    if (kernel_table[i].k == &akv_attn_kernels_avx2)
        return __builtin_cpu_supports("avx2");
    if (kernel_table[i].k == &akv_attn_kernels_avx512)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f");
#endif
    return kernel_table[i].k != NULL;
}

/* The index of the kernel in use, -1 before the first choice; relaxed, as
 * any choice gives the same bits. */
static atomic_int kernel_choice = -1;

static int kernel_best(void)
{
    int i = (int)NKERNELS - 1;

    while (i > 0 && !kernel_runs((size_t)i))
        i--;
    return i;
}

int akv_attn_set_kernel(const char *name)
{
    int k = -1;

    if (strcmp(name, "auto") == 0) {
        k = kernel_best();
    } else {
        for (size_t i = 0; i < NKERNELS; i++)
            if (strcmp(name, kernel_table[i].name) == 0)
                k = (int)i;
        if (k < 0)
            return -EINVAL;
        if (!kernel_runs((size_t)k))
            return -ENOTSUP;
    }
    atomic_store_explicit(&kernel_choice, k, memory_order_relaxed);
    return 0;
}

static size_t kernels_index(void)
{
    int k = atomic_load_explicit(&kernel_choice, memory_order_relaxed);

    if (k < 0) {
        const char *env = getenv("AKV_ATTN_KERNEL");
        /* An unknown or unsupported name falls back to the automatic
         * choice rather than failing a query. */
        if (env == NULL || akv_attn_set_kernel(env) < 0)
            atomic_store_explicit(&kernel_choice, kernel_best(), memory_order_relaxed);
        k = atomic_load_explicit(&kernel_choice, memory_order_relaxed);
    }
    return (size_t)k;
}

const char *akv_attn_kernel_name(void)
{
    return kernel_table[kernels_index()].name;
}

/* ---- the explain heap --------------------------------------------------- */

/* a ranks below b: smaller score, or equal score and a later slot. */
static bool below(const struct akv_why *a, const struct akv_why *b)
{
    return a->weight < b->weight || (a->weight == b->weight && a->slot > b->slot);
}

static void why_offer(struct why_heap *w, size_t slot, double score)
{
    struct akv_why c = {.slot = slot, .weight = score};
    size_t i;

    if (w->n < w->cap) {
        i = w->n++;
        w->h[i] = c;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!below(&w->h[i], &w->h[p]))
                break;
            struct akv_why t = w->h[i];
            w->h[i] = w->h[p];
            w->h[p] = t;
            i = p;
        }
        return;
    }
    if (!below(&w->h[0], &c))
        return;
    w->h[0] = c;
    i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->n && below(&w->h[l], &w->h[m]))
            m = l;
        if (r < w->n && below(&w->h[r], &w->h[m]))
            m = r;
        if (m == i)
            break;
        struct akv_why t = w->h[i];
        w->h[i] = w->h[m];
        w->h[m] = t;
        i = m;
    }
}

/* ---- the pass over the store -------------------------------------------- */

static void bit_set(uint64_t *m, uint32_t u)
{
    m[u >> 6] |= (uint64_t)1 << (u & 63);
}

static const uint32_t *all_words(const struct attn_state *st, size_t slot, enum akv_store_part part)
{
    size_t n;
    return akv_store_entry_words(st->s, st->snap, slot, part, &n);
}

/* Hands the vocabulary words marked in m (the sink excluded) to fn, in id
 * order, WORD_BATCH at a time. */
static void each_word(struct attn_state *st, const uint64_t *m,
                      void (*fn)(struct attn_state *st, const uint32_t *ids, size_t n, void *arg),
                      void *arg)
{
    uint32_t ids[WORD_BATCH];
    size_t n = 0;

    for (size_t i = 0; i < st->nmask; i++) {
        uint64_t bits = m[i];
        while (bits != 0) {
            uint32_t u = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            if (u >= st->sink)
                continue;
            ids[n++] = u;
            if (n == WORD_BATCH) {
                fn(st, ids, n, arg);
                n = 0;
            }
        }
    }
    if (n > 0)
        fn(st, ids, n, arg);
}

/* Slotted: gives the key words slots 1, 2, ... in id order (arg: the next
 * slot). */
static void assign_key_slots(struct attn_state *st, const uint32_t *ids, size_t n, void *arg)
{
    uint32_t *next = arg;

    for (size_t j = 0; j < n; j++)
        st->kslot[ids[j]] = (*next)++;
}

static void score_words(struct attn_state *st, const uint32_t *ids, size_t n, void *arg)
{
    (void)arg;
    st->k->dots(st->mat, st->dim, st->qs[0].q, st->nq, ids, n, st->slotted ? st->kslot : NULL,
                st->kscore);
}

static void rescale_words(struct attn_state *st, const uint32_t *ids, size_t n, void *arg)
{
    double scale = *(const double *)arg;

    for (size_t j = 0; j < n; j++)
        st->vweight[ids[j]] *= scale;
}

static void accumulate_words(struct attn_state *st, const uint32_t *ids, size_t n, void *arg)
{
    st->k->accumulate(arg, st->nq, st->mat, st->dim, ids, n, st->slotted ? st->vslot : NULL,
                      st->vweight);
}

/* Where the key score of word u for query 0 is (the next queries follow). */
static inline size_t kpos(const struct attn_state *st, int slotted, size_t nq, uint32_t u)
{
    return slotted ? (size_t)st->kslot[u] * nq : u;
}

/* Slotted: a new value slot for word u; 0 (the sink's) without memory. */
static size_t vslot_new(struct attn_state *st, uint32_t u)
{
    size_t nq = st->nq;

    if (st->nv == st->vcap) {
        double *w = realloc(st->vweight, 2 * st->vcap * nq * sizeof *w);
        if (w == NULL) {
            st->oom = 1;
            return 0;
        }
        st->vweight = w;
        st->vcap *= 2;
    }
    memset(st->vweight + st->nv * nq, 0, nq * sizeof *st->vweight);
    st->vslot[u] = (uint32_t)st->nv;
    return st->nv++;
}

/* Where the weight of value word u for query 0 is (the next queries
 * follow); slotted, the word gets a slot the first time. */
static inline size_t vpos(struct attn_state *st, int slotted, size_t nq, uint32_t u)
{
    size_t v;

    if (!slotted)
        return u;
    v = st->vslot[u];
    if (v == 0 && u < st->sink)
        v = vslot_new(st, u);
    return v * nq;
}

_Static_assert(AKV_STORE_WORDS_INLINE == 3, "attn_block handles three inline words");

/* The score of a visible key of more than AKV_STORE_WORDS_INLINE words, for
 * query b. */
static double long_key_score(const struct attn_state *st, int slotted, size_t nq, size_t slot,
                             uint32_t n, size_t b)
{
    const uint32_t *ids = all_words(st, slot, AKV_STORE_KEY);
    double s = 0;

    for (uint32_t j = 0; j < n; j++)
        s += st->kscore[kpos(st, slotted, nq, ids[j]) + b];
    return s;
}

/* Adds w[b] to the weight of each word of a visible value of more than
 * AKV_STORE_WORDS_INLINE words, for every query b. */
static void long_value_add(struct attn_state *st, int slotted, size_t nq, size_t slot, uint32_t n,
                           const double *w)
{
    const uint32_t *ids = all_words(st, slot, AKV_STORE_VALUE);

    for (uint32_t j = 0; j < n; j++) {
        size_t p = vpos(st, slotted, nq, ids[j]);
        for (size_t b = 0; b < nq; b++)
            st->vweight[p + b] += w[b];
        bit_set(st->vused, ids[j]);
    }
}

/* One query's part of a block once its scores are in: the softmax shift,
 * the exponentials and their sum. */
/* The payload rows of a block (npay of them) for query aq: into the
 * payload softmax sum, then out of the rest of the block (score
 * -infinity, so weight 0). */
static void block_payloads(struct attn_q *aq, const struct akv_store_block *blk, double *scores)
{
    double pmax = -INFINITY, sum = 0;
    size_t n = blk->n, i;

    for (i = 0; i < n; i++)
        if (blk->visible[i] && blk->vals[i].n == 0 && scores[i] > pmax)
            pmax = scores[i];
    if (pmax == -INFINITY) {
        /* Scores of -infinity (none in practice) weigh nothing. */
    } else if (aq->cp == -INFINITY) {
        aq->cp = pmax;
    } else if (pmax > aq->cp + SHIFT_SLACK) {
        aq->zp *= exp(aq->cp - pmax);
        aq->cp = pmax;
    }
    for (i = 0; i < n; i++) {
        if (!blk->visible[i] || blk->vals[i].n != 0)
            continue;
        if (pmax != -INFINITY)
            sum += exp(scores[i] - aq->cp);
        scores[i] = -INFINITY;
    }
    aq->zp += sum;
}

static void block_weights(struct attn_state *st, size_t b, const struct akv_store_block *blk,
                          size_t npay)
{
    struct attn_q *aq = &st->qs[b];
    double *restrict scores = aq->scores, *restrict weights = aq->weights;
    const uint8_t *visible = blk->visible;
    double bmax, m0 = -INFINITY, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY;
    double z0 = 0, z1 = 0, z2 = 0, z3 = 0;
    size_t n = blk->n, i;

    if (aq->mode == AKV_ATTN_COSINE)
        for (i = 0; i < n; i++)
            if (visible[i])
                scores[i] =
                    blk->knorms[i] > 0 ? scores[i] / blk->knorms[i] * aq->inv_qnorm_tau : 0.0;
    if (aq->mode == AKV_ATTN_DOT && aq->dot_tau != 1.0)
        for (i = 0; i < n; i++)
            if (visible[i])
                scores[i] = scores[i] / aq->dot_tau;
    if (aq->out != NULL)
        for (i = 0; i < n; i++)
            if (visible[i] && aq->nout < aq->out_cap)
                aq->out[aq->nout++] = (struct akv_attn_score){blk->first_slot + i, scores[i]};
    if (aq->why.cap > 0)
        for (i = 0; i < n; i++)
            if (visible[i])
                why_offer(&aq->why, blk->first_slot + i, scores[i]);
    if (npay > 0)
        block_payloads(aq, blk, scores);
    aq->blended += blk->nvisible - npay;
    if (npay == blk->nvisible) {
        /* Payloads only: nothing for the blend. */
        memset(weights, 0, n * sizeof *weights);
        return;
    }
    /* The largest score, in four chains that run side by side (invisible
     * rows hold -INFINITY). */
    for (i = 0; i + 4 <= n; i += 4) {
        m0 = scores[i] > m0 ? scores[i] : m0;
        m1 = scores[i + 1] > m1 ? scores[i + 1] : m1;
        m2 = scores[i + 2] > m2 ? scores[i + 2] : m2;
        m3 = scores[i + 3] > m3 ? scores[i + 3] : m3;
    }
    for (; i < n; i++)
        m0 = scores[i] > m0 ? scores[i] : m0;
    m0 = m0 > m1 ? m0 : m1;
    m2 = m2 > m3 ? m2 : m3;
    bmax = m0 > m2 ? m0 : m2;

    if (aq->c == -INFINITY) {
        aq->c = bmax;
    } else if (bmax > aq->c + SHIFT_SLACK) {
        double scale = exp(aq->c - bmax);
        aq->z *= scale;
        if (!st->slotted) {
            each_word(st, st->vused, rescale_words, &scale);
        } else {
            for (size_t v = 1; v < st->nv; v++)
                st->vweight[v * st->nq + b] *= scale;
        }
        aq->c = bmax;
    }
    st->k->exp_block(scores, aq->c, weights, n);

    /* Invisible rows weigh 0. Four sums, so that the additions pipeline. */
    for (i = 0; i + 4 <= n; i += 4) {
        z0 += weights[i];
        z1 += weights[i + 1];
        z2 += weights[i + 2];
        z3 += weights[i + 3];
    }
    for (; i < n; i++)
        z0 += weights[i];
    aq->z += (z0 + z1) + (z2 + z3);
}

/* Scores, exponentials, and the weights of the value words, for nq queries
 * (slotted and nq are constants where this is inlined, so the unslotted
 * form of one query loses nothing). */
static inline __attribute__((always_inline)) int
attn_block_body(struct attn_state *st, int slotted, size_t nq, const struct akv_store_block *b)
{
    const double *restrict ks = st->kscore;
    const double *inv_n = st->inv_n;
    const uint8_t *visible = b->visible;
    uint32_t sink = st->sink;
    size_t n = b->n, i, npay = 0;
    double *sq[ATTN_BATCH_MAX], *wq[ATTN_BATCH_MAX]; /* each query's scores and weights */

    for (size_t q = 0; q < nq; q++) {
        sq[q] = st->qs[q].scores;
        wq[q] = st->qs[q].weights;
    }
    for (i = 0; i < n; i++) {
        const struct akv_store_words *k = &b->keys[i];
        uint32_t u1, u2;
        size_t p0, p1, p2;
        /* The key words' scores (or slots) are all over a table larger
         * than the L2 cache: ask for those of a later entry now (only a
         * visible row may be read, even for that). */
        if (i + PREFETCH_ENTRIES < n && visible[i + PREFETCH_ENTRIES]) {
            const struct akv_store_words *ka = &b->keys[i + PREFETCH_ENTRIES];
            uint32_t a1 = ka->id[1] < sink ? ka->id[1] : sink;
            uint32_t a2 = ka->id[2] < sink ? ka->id[2] : sink;
            if (!slotted) {
                __builtin_prefetch(&ks[ka->id[0]]);
                __builtin_prefetch(&ks[a1]);
                __builtin_prefetch(&ks[a2]);
            } else {
                __builtin_prefetch(&st->kslot[ka->id[0]]);
                __builtin_prefetch(&st->kslot[a1]);
                __builtin_prefetch(&st->kslot[a2]);
            }
        }
        if (!visible[i]) {
            for (size_t q = 0; q < nq; q++)
                sq[q][i] = -INFINITY;
            continue;
        }
        npay += b->vals[i].n == 0;
        u1 = k->id[1] < sink ? k->id[1] : sink;
        u2 = k->id[2] < sink ? k->id[2] : sink;
        p0 = kpos(st, slotted, nq, k->id[0]);
        p1 = kpos(st, slotted, nq, u1);
        p2 = kpos(st, slotted, nq, u2);
        for (size_t q = 0; q < nq; q++) {
            double s = ks[p0 + q] + ks[p1 + q] + ks[p2 + q];
            if (k->n > AKV_STORE_WORDS_INLINE)
                s = long_key_score(st, slotted, nq, b->first_slot + i, k->n, q);
            sq[q][i] = s * inv_n[k->n];
        }
    }
    for (size_t q = 0; q < nq; q++)
        block_weights(st, q, b, npay);
    if (!st->blend) {
        st->attended += b->nvisible;
        return 0;
    }

    for (i = 0; i < n; i++) {
        const struct akv_store_words *v = &b->vals[i];
        double w[ATTN_BATCH_MAX];
        if (i + PREFETCH_ENTRIES < n && visible[i + PREFETCH_ENTRIES]) {
            uint32_t u = b->vals[i + PREFETCH_ENTRIES].id[0];
            u = u < sink ? u : sink;
            if (!slotted)
                __builtin_prefetch(&st->vweight[u], 1);
            else
                __builtin_prefetch(&st->vslot[u]);
        }
        if (!visible[i] || v->n == 0) /* a payload is not blended */
            continue;
        for (size_t q = 0; q < nq; q++)
            w[q] = wq[q][i] * inv_n[v->n];
        if (v->n == 1) {
            size_t p = vpos(st, slotted, nq, v->id[0]);
            double *restrict vw = st->vweight; /* vpos may have moved it */
            for (size_t q = 0; q < nq; q++)
                vw[p + q] += w[q];
            bit_set(st->vused, v->id[0]);
        } else if (v->n <= AKV_STORE_WORDS_INLINE) {
            uint32_t u2 = v->id[2] < sink ? v->id[2] : sink;
            size_t p0 = vpos(st, slotted, nq, v->id[0]), p1 = vpos(st, slotted, nq, v->id[1]);
            size_t p2 = vpos(st, slotted, nq, u2);
            double *restrict vw = st->vweight; /* vpos may have moved it */
            for (size_t q = 0; q < nq; q++) {
                vw[p0 + q] += w[q];
                vw[p1 + q] += w[q];
                vw[p2 + q] += w[q];
            }
            bit_set(st->vused, v->id[0]);
            bit_set(st->vused, v->id[1]);
            bit_set(st->vused, u2);
        } else {
            long_value_add(st, slotted, nq, b->first_slot + i, v->n, w);
        }
    }
    st->attended += b->nvisible;
    return st->oom ? -ENOMEM : 0;
}

static int attn_block_one(void *arg, const struct akv_store_block *b)
{
    return attn_block_body(arg, 0, 1, b);
}

static int attn_block_slotted(void *arg, const struct akv_store_block *b)
{
    struct attn_state *st = arg;
    return attn_block_body(st, 1, st->nq, b);
}

/* Per-thread scratch: the two tables indexed by vocabulary id (5.5 MB for
 * GloVe 6B), their bitmaps, the batch's slot tables, and each query's block
 * arrays. Allocating and clearing them for every query cost more than the
 * attention itself on a 1,000-entry store (a 2.7 MB memset per query: 13%
 * of the daemon's time under load), so each worker thread keeps its own,
 * and a query leaves it as it found it: every weight it touched back to 0,
 * every bit it set cleared and every slot it gave back to 0 (reset_values,
 * clear_key_slot). Freed when the thread exits. */
struct attn_scratch {
    size_t nwords;
    double *tables;  /* kscore (nwords + 1), vweight (nwords + 1, all 0 between queries) */
    uint64_t *masks; /* kused, vused (all 0 between queries) */
    uint32_t *slots; /* kslot, vslot (nwords + 1 each, all 0 between queries) */
    double *blocks;  /* scores and weights, BLOCK_MAX each, per query of a batch */
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_free(void *p)
{
    struct attn_scratch *sc = p;

    if (sc == NULL)
        return;
    free(sc->tables);
    free(sc->masks);
    free(sc->slots);
    free(sc->blocks);
    free(sc);
}

static void scratch_key_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* The calling thread's scratch for a vocabulary of nwords, zeroed where the
 * invariant above says; NULL without memory. */
static struct attn_scratch *scratch_get(size_t nwords)
{
    size_t nmask = (nwords + 1 + 63) / 64;
    struct attn_scratch *sc;

    pthread_once(&scratch_once, scratch_key_init);
    if (!scratch_key_ok)
        return NULL;
    sc = pthread_getspecific(scratch_key);
    if (sc != NULL && sc->nwords == nwords)
        return sc;
    scratch_free(sc);
    (void)pthread_setspecific(scratch_key, NULL);
    sc = calloc(1, sizeof *sc);
    if (sc == NULL)
        return NULL;
    sc->nwords = nwords;
    /* calloc'd, so pages nobody touches (most of the slot tables) cost no
     * memory. */
    sc->tables = calloc(2 * (nwords + 1), sizeof *sc->tables);
    sc->masks = calloc(2 * nmask, sizeof *sc->masks);
    sc->slots = calloc(2 * (nwords + 1), sizeof *sc->slots);
    sc->blocks = malloc(2 * ATTN_BATCH_MAX * BLOCK_MAX * sizeof *sc->blocks);
    if (sc->tables == NULL || sc->masks == NULL || sc->slots == NULL || sc->blocks == NULL ||
        pthread_setspecific(scratch_key, sc) != 0) {
        scratch_free(sc);
        return NULL;
    }
    return sc;
}

/* Puts back the zeros a batch disturbed: the weights (unslotted) or the
 * value slots (slotted) of the words in vused, and vused itself. The key
 * words' marks and slots belong to the whole call (akv_attn_run_many). */
static void reset_values(struct attn_state *st)
{
    for (size_t i = 0; i < st->nmask; i++) {
        uint64_t bits = st->vused[i];
        while (bits != 0) {
            size_t u = i * 64 + (size_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (st->slotted)
                st->vslot[u] = 0;
            else
                st->vweight[u] = 0;
        }
    }
    if (!st->slotted)
        st->vweight[st->sink] = 0;
    memset(st->vused, 0, st->nmask * sizeof *st->vused);
}

static void clear_key_slot(struct attn_state *st, const uint32_t *ids, size_t n, void *arg)
{
    (void)arg;
    for (size_t j = 0; j < n; j++)
        st->kslot[ids[j]] = 0;
}

static int cmp_why(const void *a, const void *b)
{
    const struct akv_why *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* One batch of nq <= ATTN_BATCH_MAX jobs; st holds what the whole call
 * shares (the key words, their slots and score table). */
static long run_batch(struct attn_state *st, struct akv_attn_job *jobs, size_t nq,
                      struct attn_scratch *sc)
{
    uint32_t dim = st->dim;
    struct attn_q *qs = calloc(nq, sizeof *qs);
    double *qd = malloc(nq * dim * sizeof *qd);
    double *rs = nq > 1 ? calloc(nq * dim, sizeof *rs) : jobs[0].r;
    long attended = -ENOMEM;

    st->nq = nq;
    st->qs = qs;
    st->attended = 0;
    st->oom = 0;
    st->nv = 1; /* slot 0 is the sink's */
    st->vcap = 64;
    st->vweight =
        st->slotted ? calloc(st->vcap * nq, sizeof *st->vweight) : sc->tables + st->sink + 1;
    if (qs == NULL || qd == NULL || rs == NULL || st->vweight == NULL)
        goto out;
    for (size_t b = 0; b < nq; b++) {
        struct attn_q *aq = &qs[b];
        double *q = qd + b * dim, qq = 0;
        for (uint32_t d = 0; d < dim; d++) {
            q[d] = jobs[b].q[d];
            qq += q[d] * q[d];
        }
        aq->q = q;
        aq->mode = jobs[b].mode;
        aq->dot_tau = jobs[b].mode == AKV_ATTN_DOT && jobs[b].tau > 0 ? jobs[b].tau : 1.0;
        aq->inv_qnorm_tau = qq > 0 ? 1.0 / (sqrt(qq) * (jobs[b].tau > 0 ? jobs[b].tau : 1.0)) : 0.0;
        aq->c = -INFINITY;
        aq->z = 0;
        aq->cp = -INFINITY;
        aq->zp = 0;
        aq->blended = 0;
        aq->out = jobs[b].scores;
        aq->nout = 0;
        aq->out_cap = jobs[b].scores_cap;
        aq->why.h = jobs[b].why;
        aq->why.n = 0;
        aq->why.cap = jobs[b].nwhy_max;
        aq->scores = sc->blocks + 2 * b * BLOCK_MAX;
        aq->weights = aq->scores + BLOCK_MAX;
    }

    /* Every weight starts at 0 (the scratch's invariant, or calloc), so that
     * attn_block adds without looking (the vused bits only say which rows
     * to read). */
    each_word(st, st->kused, score_words, NULL);
    attended =
        akv_store_scan(st->s, st->snap, st->slotted ? attn_block_slotted : attn_block_one, st);
    if (attended < 0)
        goto reset;
    attended = (long)st->attended;
    if (attended > 0) {
        each_word(st, st->vused, accumulate_words, rs);
        for (size_t b = 0; b < nq; b++) {
            struct attn_q *aq = &qs[b];
            double *r = jobs[b].r;
            /* The softmax over every entry: the larger of the two shifts,
             * and both sums brought to it (see Payloads above). */
            double c_all = aq->c > aq->cp ? aq->c : aq->cp, z_all = 0;
            if (aq->blended > 0)
                z_all += aq->z * exp(aq->c - c_all);
            if (aq->cp != -INFINITY)
                z_all += aq->zp * exp(aq->cp - c_all);
            if (rs != r)
                memcpy(r, rs + b * dim, dim * sizeof *r);
            if (aq->blended > 0)
                for (uint32_t d = 0; d < dim; d++)
                    r[d] /= aq->z;
            /* Turn the kept raw scores into weights, best first, and the
             * embedded entries' renormalised blend weights. */
            for (size_t i = 0; i < aq->why.n; i++) {
                struct akv_why *w = &aq->why.h[i];
                double raw = w->weight;
                w->weight = exp(raw - c_all) / z_all;
                w->payload = akv_store_entry_payload(st->s, st->snap, w->slot);
                w->blend = w->payload ? 0.0 : exp(raw - aq->c) / aq->z;
            }
            if (aq->why.n > 1) /* why may be NULL when nothing is kept */
                qsort(aq->why.h, aq->why.n, sizeof *aq->why.h, cmp_why);
            jobs[b].nwhy = aq->why.n;
            jobs[b].blended = aq->blended;
            jobs[b].shift = c_all;
            jobs[b].z = z_all;
            jobs[b].nscores = aq->nout;
        }
    }
reset:
    reset_values(st);
out:
    if (st->slotted)
        free(st->vweight);
    if (rs != jobs[0].r)
        free(rs);
    free(qd);
    free(qs);
    return attended;
}

long akv_attn_run_many(const struct akv_store *s, const struct akv_store_snap *snap,
                       struct akv_attn_job *jobs, size_t n)
{
    const struct akv_vocab *voc = akv_store_vocab(s);
    size_t nwords = akv_vocab_count(voc), nmask = (nwords + 1 + 63) / 64, chunk = 1;
    uint32_t dim = akv_store_dim(s);
    struct attn_scratch *sc = scratch_get(nwords);
    struct attn_state *st = calloc(1, sizeof *st);
    double *slot_scores = NULL;
    long attended = -ENOMEM;

    if (n == 0) {
        free(st);
        return 0;
    }
    for (size_t b = 0; b < n; b++) {
        jobs[b].nwhy = 0;
        jobs[b].blended = 0;
        jobs[b].nscores = 0;
        memset(jobs[b].r, 0, dim * sizeof *jobs[b].r);
    }
    if (sc == NULL || st == NULL)
        goto out;
    st->s = s;
    st->snap = snap;
    st->k = kernel_table[kernels_index()].k;
    st->mat = akv_vocab_matrix(voc);
    st->dim = dim;
    st->sink = (uint32_t)nwords;
    st->kused = sc->masks;
    st->vused = sc->masks + nmask;
    st->nmask = nmask;
    st->kslot = sc->slots;
    st->vslot = sc->slots + nwords + 1;
    st->inv_n[0] = 0;
    for (size_t k = 1; k <= AKV_PHRASE_WORDS_MAX; k++)
        st->inv_n[k] = 1.0 / (double)k;

    akv_store_key_words(s, snap, st->kused);
    st->slotted = n > 1;
    for (size_t b = 0; b < n; b++)
        st->blend |= !jobs[b].no_blend;
    if (st->slotted) {
        /* A batch keeps a score per key word and query: with very many
         * distinct key words, fewer queries share a pass. */
        uint32_t next = 1; /* slot 0 is the sink's: key score 0 */
        each_word(st, st->kused, assign_key_slots, &next);
        chunk = ATTN_TABLE_MAX / ((size_t)next * sizeof(double));
        chunk = chunk < 1 ? 1 : chunk > ATTN_BATCH_MAX ? ATTN_BATCH_MAX : chunk;
        slot_scores = calloc((size_t)next * chunk, sizeof *slot_scores);
        st->kscore = slot_scores;
        if (slot_scores == NULL)
            goto reset;
    } else {
        st->kscore = sc->tables;
        st->kscore[st->sink] = 0;
    }
    for (size_t i = 0; i < n; i += chunk) {
        attended = run_batch(st, jobs + i, n - i < chunk ? n - i : chunk, sc);
        if (attended < 0)
            break;
    }
reset:
    if (st->slotted)
        each_word(st, st->kused, clear_key_slot, NULL);
    memset(st->kused, 0, nmask * sizeof *st->kused);
out:
    if (attended < 0)
        for (size_t b = 0; b < n; b++) {
            jobs[b].nwhy = 0;
            jobs[b].blended = 0;
            jobs[b].nscores = 0;
            memset(jobs[b].r, 0, dim * sizeof *jobs[b].r);
        }
    free(slot_scores);
    free(st);
    return attended;
}

long akv_attn_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  enum akv_attn_mode mode, double tau, double *r, struct akv_why *why,
                  size_t nwhy_max, size_t *nwhy)
{
    struct akv_attn_job job = {
        .q = q, .mode = mode, .tau = tau, .r = r, .why = why, .nwhy_max = nwhy_max};
    long attended = akv_attn_run_many(s, snap, &job, 1);

    *nwhy = job.nwhy;
    return attended;
}
