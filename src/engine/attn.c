/*
 * attn.c - the attention step.
 *
 * The store keeps the vocabulary ids of each key's and value's words, not
 * vectors (see the Design comment in src/engine/store.c). A text's vector is
 * the mean of its words' rows, and both halves of attention are linear in it:
 *   - the score of a key of words a, b, c is k.q = (a.q + b.q + c.q) / 3
 *     (attention dot; divided by the temperature), or that divided by
 *     |k| |q| tau (cosine; the store keeps |k|, computed in double from the
 *     exact mean);
 *   - r = sum_i w_i v_i = sum over words u of W_u u, where W_u adds up
 *     w_i / n_i over the values i (of n_i words) that contain u.
 * So a batch of queries on one snapshot runs in three phases:
 *   1. the score u.q of each word the store's keys use (the store keeps that
 *      set: akv_store_key_words), for every query while the row is in
 *      registers (the kernels, attn-kernels.h), into a table by word;
 *   2. one pass over the store's blocks: per entry, its key words' scores
 *      averaged, the exponential, and the weight added to its value words'
 *      W_u (and to z, the softmax's sum);
 *   3. r_b = sum_u W_u row_u / z, over the value words in id order.
 * It thus reads the store's rows (about 50 bytes an entry) and one
 * vocabulary row per distinct word in use, once for up to ATTN_BATCH_MAX
 * queries. Every sum is in double, or exact: the result is that of the
 * formulas above on the float rows, which is what the float64 reference in
 * tests/unit/refimpl.c computes too.
 *
 * Same content, same bits. Nothing depends on where entries lie in the
 * store (slot numbers change with its history), on the batch, or on how
 * many threads share the work:
 *   - word scores and the blend follow the kernels' canonical order, with
 *     words in id order, the value words in chunks of fixed id ranges
 *     (VCHUNK ids: each chunk's partial sum, then the chunks in order; a
 *     word of weight 0 changes no bit, so words the store's value set
 *     still lists after their entry went are harmless);
 *   - the softmax shift c is fixed before phase 2 from the content the
 *     snapshot sees: the largest score of a word of a visible key (dot: a
 *     key's score, a mean, is at most that) or 1 / tau (cosine), raised by
 *     2^-40 of itself; should the largest entry score turn out more than
 *     SHIFT_GAP below it (weights all tiny, so few bits) or above it (a mean
 *     rounded up, at huge scales), phase 2 runs again for that query with c
 *     = that largest score;
 *   - the sums over entries (z and every W_u) are exact: each term
 *     exp(s_i - c) / n_i <= 1 (up to rounding) is truncated to a multiple of
 *     2^-100 and added as a 128-bit integer, in any order, with no
 *     rounding. Truncation changes a term by < 2^-100; with c at most
 *     SHIFT_GAP above the largest score, z >= e^-16 > 2^-24, so the sums
 *     are within 2^-76 N of exact, relative: below double rounding for any
 *     store (overflow would need 2^27 entries). Then z = the sum of n_i
 *     times each entry's truncated share, so the shares sum to exactly z.
 *   - EXPLAIN's equal weights are ordered by key bytes, not by slot.
 *
 * Payloads. A payload entry (its value has no words, n = 0; store.h) takes
 * part in the softmax through its key but not in the blend: r = sum over
 * the embedded entries of w_i v_i / sum over them of w_i. So each query
 * has two sums, the embedded entries' z (shift ce, with the W_u) and the
 * payload entries' zp (shift cp), each with its own fallback shift, so that
 * neither can underflow however far apart they are; the weights over all
 * entries (EXPLAIN, FGET) use c_all = max(ce, cp) and
 * z_all = z e^(ce - c_all) + zp e^(cp - c_all).
 *
 * Tables. For a query alone (unslotted) the key scores and W_u are indexed
 * by vocabulary id. For a batch (slotted), every word gets a slot, in id
 * order, from the store's key and value word sets, and the tables hold nq
 * entries a slot (phase 3 then reads W in order), so that their size follows the store rather than
 * the vocabulary times the batch; a batch is cut so that its key scores
 * stay within ATTN_TABLE_MAX.
 *
 * Sharing the work (struct akv_attn_par): each phase is cut into pieces
 * (runs of key words, store blocks, chunks of value words) that the
 * calling thread and any helper that joins claim one at a time with an
 * atomic counter, so the caller alone can do them all. Phase 2 is shared
 * only for a query alone without a score list: each part then adds into its
 * own W_u table, which phase 3 sums exactly. Nothing else differs, so the
 * bits are the same with or without help.
 *
 * Threading: reads a snapshot and the immutable vocabulary only; any thread
 * holding a live snapshot, with its helpers. The scratch tables belong to
 * the calling thread (helpers use only what it lends them for the call).
 */
#include "engine/attn.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "attnkv/embed.h"
#include "engine/attn-kernels.h"
#include "engine/fixsum.h"

#define SUB_DOUBLES 2048                  /* scores of entries x queries handled at a time */
#define WORD_BATCH 512                    /* word ids handed to a kernel at a time */
#define PREFETCH_ENTRIES 48               /* how far ahead the entry pass asks for table lines */
#define ATTN_BATCH_MAX 32                 /* queries sharing one pass over the store */
#define ATTN_TABLE_MAX ((size_t)96 << 20) /* bytes of word tables a batch may keep */
#define VCHUNK 4096                       /* the id range of the value words of a partial blend */
#define SHIFT_GAP 16.0                    /* the most c may exceed the largest score */
#define PARTS_MAX 8                       /* threads sharing one call */
#define PAR_MIN_WORDS 32768               /* fewer words than this: phases 1 and 3 alone */
#define PAR_MIN_SLOTS 65536               /* fewer slots than this: phase 2 alone */

/* Not under a sanitizer: a clone's resolver runs while the program is being
 * relocated, before the sanitizer's runtime is up (TSan crashed at start). */
#if defined(AKV_ATTN_X86) && defined(__GNUC__) && !defined(__clang__) &&                           \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define AKV_ATTN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define AKV_ATTN_CLONES
#endif

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
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (kernel_table[i].k == &akv_attn_kernels_avx512)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx512f");
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

struct why_heap {
    struct akv_why *h; /* min-heap on (raw score, then key bytes: larger ranks lower) */
    size_t n, cap;
};

/* a ranks below b: smaller score, or an equal score and larger key bytes. */
static bool below(const struct akv_store *s, const struct akv_store_snap *snap,
                  const struct akv_why *a, const struct akv_why *b)
{
    const char *ka, *kb, *v;
    size_t la, lb, vl;
    int c;

    if (a->weight != b->weight)
        return a->weight < b->weight;
    if (a->slot == b->slot)
        return false;
    akv_store_entry_text(s, snap, a->slot, &ka, &la, &v, &vl);
    akv_store_entry_text(s, snap, b->slot, &kb, &lb, &v, &vl);
    c = memcmp(ka, kb, la < lb ? la : lb);
    return c > 0 || (c == 0 && la > lb);
}

/* Restores the heap order from the root down (the root just replaced). */
static void why_sift_down(const struct akv_store *s, const struct akv_store_snap *snap,
                          struct why_heap *w)
{
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->n && below(s, snap, &w->h[l], &w->h[m]))
            m = l;
        if (r < w->n && below(s, snap, &w->h[r], &w->h[m]))
            m = r;
        if (m == i)
            break;
        struct akv_why t = w->h[i];
        w->h[i] = w->h[m];
        w->h[m] = t;
        i = m;
    }
}

static void why_offer(const struct akv_store *s, const struct akv_store_snap *snap,
                      struct why_heap *w, size_t slot, double score)
{
    struct akv_why c = {.slot = slot, .weight = score};
    size_t i;

    if (w->n < w->cap) {
        i = w->n++;
        w->h[i] = c;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!below(s, snap, &w->h[i], &w->h[p]))
                break;
            struct akv_why t = w->h[i];
            w->h[i] = w->h[p];
            w->h[p] = t;
            i = p;
        }
        return;
    }
    if (w->cap == 0 || !below(s, snap, &w->h[0], &c))
        return;
    w->h[0] = c;
    why_sift_down(s, snap, w);
}

/* ---- state ---------------------------------------------------------------- */

/* One query of a batch: what every part reads. */
struct attn_q {
    const double *q; /* the query in double, padded (AKV_ATTN_PAD) */
    enum akv_attn_mode mode;
    double inv_qnorm_tau;       /* cosine: 1 / (|q| tau) */
    double dot_tau;             /* dot: the scores are divided by it (1: left as they are) */
    double cos_bound;           /* cosine: 1 / tau, the largest score there can be */
    double ce, cp;              /* the shifts of the embedded and the payload weights */
    struct akv_attn_score *out; /* every visible entry's score (FGET), or NULL */
    size_t out_cap;
};

/* One query's sums in one part. */
struct attn_qsum {
    akv_fix z, zp;  /* sum of exp(s - ce) (embedded), of exp(s - cp) (payloads) */
    double me, mp;  /* the largest embedded and payload scores */
    size_t blended; /* embedded entries attended */
    size_t nout;
    struct why_heap why; /* keyed by raw score while scanning */
};

struct attn_state;

/* What one thread adds up in phase 2. */
struct attn_part {
    struct attn_state *st;
    akv_fix *w;     /* W_u: by vocabulary id (unslotted) or slot * nq + b */
    double *blocks; /* SUB_DOUBLES scores, then SUB_DOUBLES weights */
    struct attn_qsum qs[ATTN_BATCH_MAX];
    size_t attended;
    size_t seen, claimed; /* the blocks passed and the one to do next (shared pass) */
    int oom;
};

struct attn_state {
    const struct akv_store *s;
    const struct akv_store_snap *snap;
    const struct akv_attn_kernels *k;
    const float *mat; /* the vocabulary's rows */
    uint32_t dim;
    size_t pad;    /* AKV_ATTN_PAD(dim) */
    uint32_t sink; /* the word count, which vocab.h keeps below
                    * AKV_STORE_NO_WORD: stands for "no word" */
    int slotted;
    int blend;                   /* some job wants r: weigh the value words */
    size_t nq;                   /* queries in the current batch */
    uint8_t act[ATTN_BATCH_MAX]; /* the queries phase 2 computes (a second pass: some) */
    size_t nact;
    struct attn_q *qs;
    double *kscore;  /* per word (or slot): row . q, for the key words */
    uint64_t *kused; /* the key words (bit u of word u / 64) */
    uint32_t *kw;    /* the key words in id order (the store's set: a superset) */
    size_t nk;
    const uint32_t *kvis; /* the words of the keys the snapshot sees, in id order */
    size_t nkvis;
    size_t nmask;            /* 64-bit words in each bitmap */
    uint32_t *kslot, *vslot; /* slotted: per vocabulary word, its slot (0: none) */
    uint32_t *vw;            /* the value words in id order (a superset of those in use) */
    size_t nvw;
    size_t *vchunk;        /* chunk c of phase 3: vw[vchunk[c] .. vchunk[c + 1]) */
    struct plan_rec *plan; /* a batch's entries grouped by value word, or NULL */
    size_t nplan;
    size_t nvchunks;
    double *partial; /* phase 3: each chunk's r_b, nq * pad a chunk */
    akv_fix *zpart;  /* phase 3: each chunk's sum of W_u, nq a chunk */
    double *wdense;  /* phase 3: per part, WORD_BATCH * nq weights */
    struct attn_part *parts;
    unsigned nparts; /* parts phase 2 may use */
    struct attn_scratch *sc;
    const struct akv_par *par;
    atomic_size_t next; /* the next piece to claim in the current phase */
    double inv_n[AKV_PHRASE_WORDS_MAX + 1];
};

/* ---- phase 1: key word scores -------------------------------------------- */

static void phase_dots(void *arg, unsigned h)
{
    struct attn_state *st = arg;

    (void)h;
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&st->next, WORD_BATCH, memory_order_relaxed);
        if (i >= st->nk)
            break;
        st->k->dots(st->mat, st->dim, st->qs[0].q, st->nq, st->kw + i,
                    st->nk - i < WORD_BATCH ? st->nk - i : WORD_BATCH,
                    st->slotted ? st->kslot : NULL, st->kscore);
    }
}

/* Runs fn(st, h) on this thread and on up to nhelpers helpers. */
static void run_phase(struct attn_state *st, void (*fn)(void *, unsigned), unsigned nhelpers)
{
    atomic_store_explicit(&st->next, 0, memory_order_relaxed);
    if (nhelpers > 0 && st->par != NULL && st->par->run != NULL)
        st->par->run(st->par->ctx, fn, st, nhelpers);
    else
        fn(st, 0);
}

/* ---- phase 2: the pass over the store ------------------------------------- */

/* Asks for the cache lines of n bytes at p. */
static inline void prefetch_lines(const void *p, size_t n)
{
    const char *c = p;

    for (size_t o = 0; o < n; o += 64)
        __builtin_prefetch(c + o, 1);
}

/* Where the key score of word u for query 0 is (the next queries follow). */
static inline size_t kpos(const struct attn_state *st, int slotted, size_t nq, uint32_t u)
{
    return slotted ? (size_t)st->kslot[u] * nq : u;
}

/* Where the weight of value word u for query 0 is (the next queries
 * follow). */
static inline size_t vpos(const struct attn_state *st, int slotted, size_t nq, uint32_t u)
{
    return slotted ? (size_t)st->vslot[u] * nq : u;
}

_Static_assert(AKV_STORE_WORDS_INLINE == 3, "attn_block handles three inline words");

static const uint32_t *all_words(const struct attn_state *st, size_t slot, enum akv_store_part part)
{
    size_t n;
    return akv_store_entry_words(st->s, st->snap, slot, part, &n);
}

/* The score of a visible key of more than AKV_STORE_WORDS_INLINE words, for
 * query b (the words' scores added in order, as for three). */
static double long_key_score(const struct attn_state *st, int slotted, size_t nq, size_t slot,
                             uint32_t n, size_t b)
{
    const uint32_t *ids = all_words(st, slot, AKV_STORE_KEY);
    double s = 0;

    for (uint32_t j = 0; j < n; j++)
        s += st->kscore[kpos(st, slotted, nq, ids[j]) + b];
    return s;
}

/* Query b's part of entries i0 .. i1 - 1 of a block, once their raw scores
 * are in sc (entry-major: sc[(i - i0) * nq + b]): the temperature or cosine
 * scaling, the score list and the explain heap, the largest scores, the
 * payloads' sum (their scores then -infinity: weight 0 in the blend), and
 * each score less the shift, ready for the exponential. */
/* The rows of a sub-block as sub_weights reads them: from a store block, or
 * from the records of a plan (strides in elements). */
struct sub_rows {
    const uint8_t *visible; /* NULL: all visible */
    const double *knorm;    /* row j's key norm: knorm[j * kstride] */
    size_t kstride;
    const uint8_t *pay;   /* pay[j] 1: a payload */
    const uint32_t *slot; /* row j's store slot: slot[j * sstride], or with slot NULL, */
    size_t sstride;
    size_t first_slot; /* first_slot + j */
};

static void sub_weights(struct attn_part *pt, size_t b, size_t nq, const struct sub_rows *rows,
                        size_t cnt, double *sc, size_t npay)
{
    struct attn_state *st = pt->st;
    const struct attn_q *aq = &st->qs[b];
    struct attn_qsum *qs = &pt->qs[b];
    double me = qs->me, mp = qs->mp, ce = aq->ce;
    double ps[64], pw[64]; /* payload scores, and their weights */
    size_t np = 0;

    for (size_t j = 0; j < cnt; j++) {
        double *x = &sc[j * nq + b], v;
        size_t slot;
        if (rows->visible != NULL && !rows->visible[j])
            continue; /* -infinity already */
        v = *x;
        slot = rows->slot != NULL ? rows->slot[j * rows->sstride] : rows->first_slot + j;
        if (aq->mode == AKV_ATTN_COSINE) {
            double kn = rows->knorm[j * rows->kstride];
            v = kn > 0 ? v / kn * aq->inv_qnorm_tau : 0.0;
        } else if (aq->dot_tau != 1.0) {
            v = v / aq->dot_tau;
        }
        if (aq->out != NULL && qs->nout < aq->out_cap)
            aq->out[qs->nout++] = (struct akv_attn_score){slot, v};
        /* Most scores are below the kept ones' smallest: not even a call. */
        if (qs->why.cap > 0 && (qs->why.n < qs->why.cap || v >= qs->why.h[0].weight))
            why_offer(st->s, st->snap, &qs->why, slot, v);
        if (npay > 0 && rows->pay[j]) {
            mp = v > mp ? v : mp;
            ps[np++] = v > aq->cp ? aq->cp : v;
            if (np == sizeof ps / sizeof ps[0]) {
                st->k->exp_block(ps, aq->cp, pw, np);
                for (size_t m = 0; m < np; m++)
                    qs->zp += akv_fix_from(pw[m]);
                np = 0;
            }
            *x = -INFINITY;
            continue;
        }
        me = v > me ? v : me;
        *x = v - ce > 0 ? 0 : v - ce; /* above the shift: the second pass redoes it */
    }
    if (np > 0) {
        st->k->exp_block(ps, aq->cp, pw, np);
        for (size_t j = 0; j < np; j++)
            qs->zp += akv_fix_from(pw[j]);
    }
    qs->me = me;
    qs->mp = mp;
}

/* sub_weights for the na active queries (all: 0 .. na - 1, else st->act).
 * The usual case (dot attention at temperature 1, no payload, no score
 * list) takes every query of an entry at once, in a loop the compiler
 * vectorizes: the largest score, whether the score could enter the explain
 * list (then the heap, query by query), and the score less the shift: the
 * same operations as sub_weights, so the same bits. */
static inline __attribute__((always_inline)) void
sub_weights_all(struct attn_part *pt, size_t nq, size_t na, int all, const struct sub_rows *rows,
                size_t cnt, double *sc, size_t npay)
{
    struct attn_state *st = pt->st;
    const uint8_t *act = st->act;
    double me[ATTN_BATCH_MAX], thr[ATTN_BATCH_MAX], ce[ATTN_BATCH_MAX];
    int fast = npay == 0;

    for (size_t a = 0; a < na && fast; a++) {
        const struct attn_q *aq = &st->qs[all ? a : act[a]];
        fast = aq->mode == AKV_ATTN_DOT && aq->dot_tau == 1.0 && aq->out == NULL;
    }
    if (!fast) {
        for (size_t a = 0; a < na; a++)
            sub_weights(pt, all ? a : act[a], nq, rows, cnt, sc, npay);
        return;
    }
    for (size_t a = 0; a < na; a++) {
        size_t q = all ? a : act[a];
        const struct why_heap *w = &pt->qs[q].why;
        me[a] = pt->qs[q].me;
        ce[a] = st->qs[q].ce;
        thr[a] = w->cap == 0 ? INFINITY : w->n < w->cap ? -INFINITY : w->h[0].weight;
    }
    for (size_t j = 0; j < cnt; j++) {
        double *x = sc + j * nq;
        int hit = 0;
        if (rows->visible != NULL && !rows->visible[j])
            continue; /* -infinity already */
        for (size_t a = 0; a < na; a++) {
            double v = x[all ? a : act[a]];
            me[a] = v > me[a] ? v : me[a];
            hit |= v >= thr[a];
        }
        if (hit) {
            size_t slot = rows->slot != NULL ? rows->slot[j * rows->sstride] : rows->first_slot + j;
            for (size_t a = 0; a < na; a++) {
                size_t q = all ? a : act[a];
                struct why_heap *w = &pt->qs[q].why;
                if (!(x[q] >= thr[a]))
                    continue;
                why_offer(st->s, st->snap, w, slot, x[q]);
                thr[a] = w->n < w->cap ? -INFINITY : w->h[0].weight;
            }
        }
        for (size_t a = 0; a < na; a++) {
            double d = x[all ? a : act[a]] - ce[a];
            x[all ? a : act[a]] = d > 0 ? 0 : d;
        }
    }
    for (size_t a = 0; a < na; a++)
        pt->qs[all ? a : act[a]].me = me[a];
}

/* Scores, weights, and the value words' W_u for the nq queries of a block,
 * SUB_DOUBLES / nq entries at a time so that their scores and weights
 * (entry-major) stay in the L1 cache (slotted and nq are constants where
 * this is inlined, so the unslotted form of one query loses nothing). */
static inline __attribute__((always_inline)) int attn_block_body(struct attn_part *pt, int slotted,
                                                                 size_t nq, int all,
                                                                 const struct akv_store_block *b)
{
    struct attn_state *st = pt->st;
    const double *restrict ks = st->kscore;
    const double *inv_n = st->inv_n;
    const uint8_t *visible = b->visible;
    uint32_t sink = st->sink;
    size_t n = b->n, sub = SUB_DOUBLES / nq, na = all ? nq : st->nact;
    const uint8_t *act = st->act;
    /* The table lines to ask for: every query's, or (a second pass for a
     * few queries) the first active one's. */
    size_t q0 = all ? 0 : act[0];
    size_t kbytes = all ? nq * sizeof *ks : sizeof *ks, wbytes = all ? nq * sizeof *pt->w : 1;
    double *restrict sc = pt->blocks, *restrict wt = pt->blocks + SUB_DOUBLES;
    uint8_t pay[SUB_DOUBLES];

    for (size_t i0 = 0; i0 < n; i0 += sub) {
        size_t i1 = n - i0 < sub ? n : i0 + sub, npay = 0, nvis = 0, i;
        struct sub_rows rows = {visible + i0, b->knorms + i0, 1, pay, NULL, 0, b->first_slot + i0};
        for (i = i0; i < i1; i++) {
            const struct akv_store_words *k = &b->keys[i];
            double *x = sc + (i - i0) * nq;
            size_t p0, p1, p2;
            /* The key words' scores are all over a table larger than the
             * L2 cache: ask for those of a later entry now (only a visible
             * row may be read, even for that); slotted, their slots first. */
            /* The store's own rows too, further ahead: its arrays are
             * read in order, but a page at a time for the hardware. */
            if (i + 4 * PREFETCH_ENTRIES < n && (i & 3) == 0) {
                __builtin_prefetch(&b->keys[i + 4 * PREFETCH_ENTRIES]);
                __builtin_prefetch(&b->vals[i + 4 * PREFETCH_ENTRIES]);
            }
            if (slotted && i + 2 * PREFETCH_ENTRIES < n && visible[i + 2 * PREFETCH_ENTRIES]) {
                const struct akv_store_words *ka = &b->keys[i + 2 * PREFETCH_ENTRIES];
                __builtin_prefetch(&st->kslot[ka->id[0]]);
                __builtin_prefetch(&st->kslot[ka->id[1] < sink ? ka->id[1] : sink]);
            }
            if (i + PREFETCH_ENTRIES < n && visible[i + PREFETCH_ENTRIES]) {
                const struct akv_store_words *ka = &b->keys[i + PREFETCH_ENTRIES];
                uint32_t a1 = ka->id[1] < sink ? ka->id[1] : sink;
                uint32_t a2 = ka->id[2] < sink ? ka->id[2] : sink;
                prefetch_lines(&ks[kpos(st, slotted, nq, ka->id[0]) + q0], kbytes);
                if (a1 != sink)
                    prefetch_lines(&ks[kpos(st, slotted, nq, a1) + q0], kbytes);
                if (a2 != sink)
                    prefetch_lines(&ks[kpos(st, slotted, nq, a2) + q0], kbytes);
            }
            if (!visible[i]) {
                for (size_t a = 0; a < na; a++)
                    x[all ? a : act[a]] = -INFINITY;
                continue;
            }
            nvis++;
            pay[i - i0] = b->vals[i].n == 0;
            npay += pay[i - i0];
            p0 = kpos(st, slotted, nq, k->id[0]);
            p1 = kpos(st, slotted, nq, k->id[1] < sink ? k->id[1] : sink);
            p2 = kpos(st, slotted, nq, k->id[2] < sink ? k->id[2] : sink);
            for (size_t a = 0; a < na; a++) {
                size_t q = all ? a : act[a];
                double s = ks[p0 + q] + ks[p1 + q] + ks[p2 + q];
                if (k->n > AKV_STORE_WORDS_INLINE)
                    s = long_key_score(st, slotted, nq, b->first_slot + i, k->n, q);
                x[q] = s * inv_n[k->n];
            }
        }
        sub_weights_all(pt, nq, na, all, &rows, i1 - i0, sc, npay);
        for (size_t a = 0; a < na; a++)
            pt->qs[all ? a : act[a]].blended += nvis - npay;
        /* The shifts are in: exp(x - 0) is exp(s - c) bit for bit. */
        st->k->exp_block(sc, 0.0, wt, (i1 - i0) * nq);

        for (i = i0; i < i1; i++) {
            const struct akv_store_words *v = &b->vals[i];
            const double *w = wt + (i - i0) * nq;
            uint64_t flo[ATTN_BATCH_MAX], fhi[ATTN_BATCH_MAX];
            if (st->blend && slotted && i + 2 * PREFETCH_ENTRIES < n &&
                visible[i + 2 * PREFETCH_ENTRIES]) {
                uint32_t u = b->vals[i + 2 * PREFETCH_ENTRIES].id[0];
                __builtin_prefetch(&st->vslot[u < sink ? u : sink]);
            }
            if (st->blend && i + PREFETCH_ENTRIES < n && visible[i + PREFETCH_ENTRIES]) {
                uint32_t u = b->vals[i + PREFETCH_ENTRIES].id[0];
                if (u < sink)
                    prefetch_lines(pt->w + vpos(st, slotted, nq, u) + q0, wbytes);
            }
            if (!visible[i] || v->n == 0) /* a payload is not blended */
                continue;
            /* Each word's share, truncated. z gets n of them: phase 3 adds
             * up the W_u, or, without a blend, here. */
            for (size_t a = 0; a < na; a++) {
                size_t q = all ? a : act[a];
                akv_fix_split(w[q] * inv_n[v->n], &flo[a], &fhi[a]);
            }
            if (!st->blend) {
                for (size_t a = 0; a < na; a++)
                    pt->qs[all ? a : act[a]].z += akv_fix_join(flo[a], fhi[a]) * v->n;
                continue;
            }
            if (v->n <= AKV_STORE_WORDS_INLINE) {
                for (uint32_t j = 0; j < v->n; j++) {
                    akv_fix *restrict wu = pt->w + vpos(st, slotted, nq, v->id[j]);
                    for (size_t a = 0; a < na; a++)
                        wu[all ? a : act[a]] += akv_fix_join(flo[a], fhi[a]);
                }
            } else {
                const uint32_t *ids = all_words(st, b->first_slot + i, AKV_STORE_VALUE);
                for (uint32_t j = 0; j < v->n; j++) {
                    akv_fix *restrict wu = pt->w + vpos(st, slotted, nq, ids[j]);
                    for (size_t a = 0; a < na; a++)
                        wu[all ? a : act[a]] += akv_fix_join(flo[a], fhi[a]);
                }
            }
        }
    }
    pt->attended += b->nvisible;
    return pt->oom ? -ENOMEM : 0;
}

static int attn_block_one(struct attn_part *pt, const struct akv_store_block *b)
{
    return attn_block_body(pt, 0, 1, 1, b);
}

/* Built for each instruction set (the compiler vectorizes the loops over
 * the queries; none contracts, so all give the same bits), the usual
 * batches of 32 and 16 with their loops unrolled. */
AKV_ATTN_CLONES static int attn_block_slotted(struct attn_part *pt, const struct akv_store_block *b)
{
    size_t nq = pt->st->nq;

    if (pt->st->nact != nq)
        return attn_block_body(pt, 1, nq, 0, b);
    if (nq == ATTN_BATCH_MAX)
        return attn_block_body(pt, 1, ATTN_BATCH_MAX, 1, b);
    if (nq == ATTN_BATCH_MAX / 2)
        return attn_block_body(pt, 1, ATTN_BATCH_MAX / 2, 1, b);
    return attn_block_body(pt, 1, nq, 1, b);
}

/* Per block of the scan: only the blocks this part claims (every part sees
 * the same blocks in the same order). */
static int attn_block(void *arg, const struct akv_store_block *b)
{
    struct attn_part *pt = arg;
    struct attn_state *st = pt->st;

    if (pt->seen++ != pt->claimed)
        return 0;
    pt->claimed = atomic_fetch_add_explicit(&st->next, 1, memory_order_relaxed);
    return st->slotted ? attn_block_slotted(pt, b) : attn_block_one(pt, b);
}

/* ---- phase 2 for a batch: the plan ----------------------------------------- */

/* A visible entry as a batch's pass reads it. The plan lists the entries
 * grouped by the slot of their value's first word (a counting sort, one
 * pass to count and one to place), so that the weights of that word are
 * added up in registers along a run and written once, the table read in
 * order; only the key words' scores are fetched at random. */
struct plan_rec {
    uint32_t k[3];   /* the key's first three words' slots (0: none) */
    uint32_t v0;     /* the value's first word's slot (0: a payload) */
    uint32_t v1, v2; /* its second and third words' slots (0: none) */
    uint32_t slot;   /* the store slot */
    uint16_t nk, nv; /* word counts */
    double knorm;
};
_Static_assert(sizeof(struct plan_rec) == 5 * sizeof(double), "sub_rows strides");

struct plan_fill {
    struct attn_state *st;
    uint32_t *at;         /* per first value slot: the next place (counting: the count) */
    struct plan_rec *rec; /* NULL while counting */
    uint64_t min_expire;  /* the earliest expiry time of a listed entry (0: none) */
};

static inline uint32_t slot_or_0(const uint32_t *slots, uint32_t u, uint32_t sink)
{
    return u < sink ? slots[u] : 0;
}

static int plan_block(void *arg, const struct akv_store_block *b)
{
    struct plan_fill *pf = arg;
    const struct attn_state *st = pf->st;
    uint32_t sink = st->sink;

    for (size_t i = 0; i < b->n; i++) {
        const struct akv_store_words *k = &b->keys[i], *v = &b->vals[i];
        uint32_t v0;
        struct plan_rec *r;
        if (!b->visible[i])
            continue;
        v0 = v->n > 0 ? st->vslot[v->id[0]] : 0;
        if (pf->rec == NULL) {
            pf->at[v0 + 1]++;
            continue;
        }
        r = &pf->rec[pf->at[v0]++];
        {
            uint64_t e = atomic_load_explicit(&b->expire[i], memory_order_relaxed);
            if (e != 0 && (pf->min_expire == 0 || e < pf->min_expire))
                pf->min_expire = e;
        }
        r->k[0] = slot_or_0(st->kslot, k->id[0], sink);
        r->k[1] = slot_or_0(st->kslot, k->id[1], sink);
        r->k[2] = slot_or_0(st->kslot, k->id[2], sink);
        r->v0 = v0;
        r->v1 = v->n > 1 ? slot_or_0(st->vslot, v->id[1], sink) : 0;
        r->v2 = v->n > 2 ? slot_or_0(st->vslot, v->id[2], sink) : 0;
        r->slot = (uint32_t)(b->first_slot + i);
        r->nk = (uint16_t)k->n;
        r->nv = (uint16_t)v->n;
        r->knorm = b->knorms[i];
    }
    return 0;
}

/* The store pass of attn_block_body on the plan's records (see there; nq
 * and all are constants where this is inlined). */
static inline __attribute__((always_inline)) void
plan_body(struct attn_part *pt, size_t nq, int all, const struct plan_rec *r, size_t n)
{
    struct attn_state *st = pt->st;
    const double *restrict ks = st->kscore;
    const double *inv_n = st->inv_n;
    size_t sub = SUB_DOUBLES / nq, na = all ? nq : st->nact;
    const uint8_t *act = st->act;
    size_t q0 = all ? 0 : act[0], kbytes = all ? nq * sizeof *ks : sizeof *ks;
    double *restrict sc = pt->blocks, *restrict wt = pt->blocks + SUB_DOUBLES;
    uint8_t pay[SUB_DOUBLES];
    uint64_t alo[ATTN_BATCH_MAX] = {0}, ahi[ATTN_BATCH_MAX] = {0}; /* the run's sums */
    uint32_t cur = 0; /* the run's word slot (0: none yet) */

    for (size_t i0 = 0; i0 < n; i0 += sub) {
        size_t i1 = n - i0 < sub ? n : i0 + sub, npay = 0, i;
        struct sub_rows rows = {NULL, &r[i0].knorm, 5, pay, &r[i0].slot, 10, 0};
        for (i = i0; i < i1; i++) {
            const struct plan_rec *e = &r[i];
            double *x = sc + (i - i0) * nq;
            if (i + PREFETCH_ENTRIES < n) {
                const struct plan_rec *ea = &r[i + PREFETCH_ENTRIES];
                prefetch_lines(&ks[(size_t)ea->k[0] * nq + q0], kbytes);
                if (ea->k[1] != 0)
                    prefetch_lines(&ks[(size_t)ea->k[1] * nq + q0], kbytes);
                if (ea->k[2] != 0)
                    prefetch_lines(&ks[(size_t)ea->k[2] * nq + q0], kbytes);
            }
            pay[i - i0] = e->nv == 0;
            npay += pay[i - i0];
            for (size_t a = 0; a < na; a++) {
                size_t q = all ? a : act[a];
                double s = ks[(size_t)e->k[0] * nq + q] + ks[(size_t)e->k[1] * nq + q] +
                           ks[(size_t)e->k[2] * nq + q];
                if (e->nk > AKV_STORE_WORDS_INLINE)
                    s = long_key_score(st, 1, nq, e->slot, e->nk, q);
                x[q] = s * inv_n[e->nk];
            }
        }
        sub_weights_all(pt, nq, na, all, &rows, i1 - i0, sc, npay);
        for (size_t a = 0; a < na; a++)
            pt->qs[all ? a : act[a]].blended += i1 - i0 - npay;
        st->k->exp_block(sc, 0.0, wt, (i1 - i0) * nq);

        for (i = i0; i < i1; i++) {
            const struct plan_rec *e = &r[i];
            const double *w = wt + (i - i0) * nq;
            uint64_t flo[ATTN_BATCH_MAX], fhi[ATTN_BATCH_MAX];
            if (e->nv == 0)
                continue;
            for (size_t a = 0; a < na; a++)
                akv_fix_split(w[all ? a : act[a]] * inv_n[e->nv], &flo[a], &fhi[a]);
            if (e->v0 != cur) {
                if (cur != 0)
                    for (size_t a = 0; a < na; a++)
                        pt->w[(size_t)cur * nq + (all ? a : act[a])] +=
                            akv_fix_join(alo[a], ahi[a]);
                cur = e->v0;
                for (size_t a = 0; a < na; a++)
                    alo[a] = ahi[a] = 0;
            }
            for (size_t a = 0; a < na; a++) {
                alo[a] += flo[a];
                ahi[a] += fhi[a] + (alo[a] < flo[a]);
            }
            for (uint32_t j = 1; j < e->nv; j++) {
                uint32_t vs = j == 1 ? e->v1 : e->v2;
                akv_fix *restrict wu;
                if (j > 2)
                    vs = st->vslot[all_words(st, e->slot, AKV_STORE_VALUE)[j]];
                wu = pt->w + (size_t)vs * nq;
                for (size_t a = 0; a < na; a++)
                    wu[all ? a : act[a]] += akv_fix_join(flo[a], fhi[a]);
            }
        }
    }
    if (cur != 0)
        for (size_t a = 0; a < na; a++)
            pt->w[(size_t)cur * nq + (all ? a : act[a])] += akv_fix_join(alo[a], ahi[a]);
    pt->attended += n;
}

AKV_ATTN_CLONES static void plan_pass(struct attn_part *pt)
{
    struct attn_state *st = pt->st;
    size_t nq = st->nq;

    if (st->nact != nq)
        plan_body(pt, nq, 0, st->plan, st->nplan);
    else if (nq == ATTN_BATCH_MAX)
        plan_body(pt, ATTN_BATCH_MAX, 1, st->plan, st->nplan);
    else if (nq == ATTN_BATCH_MAX / 2)
        plan_body(pt, ATTN_BATCH_MAX / 2, 1, st->plan, st->nplan);
    else
        plan_body(pt, nq, 1, st->plan, st->nplan);
}

static void phase_entries(void *arg, unsigned h)
{
    struct attn_state *st = arg;
    struct attn_part *pt;

    if (h >= st->nparts)
        return;
    pt = &st->parts[h];
    if (st->plan != NULL) {
        plan_pass(pt); /* one part */
        return;
    }
    pt->seen = 0;
    pt->claimed = atomic_fetch_add_explicit(&st->next, 1, memory_order_relaxed);
    if (akv_store_scan(st->s, st->snap, attn_block, pt) < 0)
        pt->oom = 1;
}

/* ---- phase 3: the blend --------------------------------------------------- */

/* The chunks of value words (fixed id ranges, words in id order): each
 * chunk's sum r_b = sum W_u row_u into its own partial, the weights summed
 * over the parts (exactly) and put back to 0 as they are read; the rows of
 * words of weight 0 are skipped (they would add nothing). */
static void phase_blend(void *arg, unsigned h)
{
    struct attn_state *st = arg;
    size_t nq = st->nq, pad = st->pad;
    double *wd = st->wdense + (size_t)h * WORD_BATCH * nq;
    uint32_t ids[WORD_BATCH];

    if (h >= PARTS_MAX)
        return;
    for (;;) {
        size_t c = atomic_fetch_add_explicit(&st->next, 1, memory_order_relaxed), m = 0;
        double *rs;
        if (c >= st->nvchunks)
            break;
        akv_fix *zc = st->zpart + c * nq;
        rs = st->partial + c * nq * pad;
        memset(rs, 0, nq * pad * sizeof *rs);
        for (size_t b = 0; b < nq; b++)
            zc[b] = 0;
        for (size_t j = st->vchunk[c]; j < st->vchunk[c + 1]; j++) {
            uint32_t u = st->vw[j];
            size_t at = vpos(st, st->slotted, nq, u);
            akv_fix *w0 = st->parts[0].w + at;
            akv_fix any = 0;
            for (unsigned p = 1; p < st->nparts; p++) {
                akv_fix *wp = st->parts[p].w + at;
                for (size_t b = 0; b < nq; b++)
                    w0[b] += wp[b];
                memset(wp, 0, nq * sizeof *wp);
            }
            for (size_t b = 0; b < nq; b++) {
                wd[m * nq + b] = akv_fix_units(w0[b]);
                zc[b] += w0[b];
                any |= w0[b];
            }
            memset(w0, 0, nq * sizeof *w0);
            if (any == 0)
                continue;
            ids[m++] = u;
            if (m == WORD_BATCH) {
                st->k->accumulate(rs, nq, st->mat, st->dim, ids, m, wd);
                m = 0;
            }
        }
        if (m > 0)
            st->k->accumulate(rs, nq, st->mat, st->dim, ids, m, wd);
    }
}

/* ---- scratch -------------------------------------------------------------- */

/* The tables phase 2 reads and writes at random (tens of MB) in 2 MB pages
 * where the kernel gives them (transparent huge pages on request): with 4
 * KB pages nearly every access missed the TLB, and the page walks, not the
 * cache misses, set the pace. Zeroed; NULL without memory. */
static void *big_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

static void big_free(void *p, size_t bytes)
{
    if (p != NULL)
        munmap(p, bytes);
}

/* Grows a big table of *cap entries of size elem to at least need, keeping
 * its content (the rest zero): 0 or -ENOMEM. */
static int big_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t n = *cap ? *cap : 4096;
    void *q;

    if (need <= *cap)
        return 0;
    while (n < need)
        n *= 2;
    if ((q = big_alloc(n * elem)) == NULL)
        return -ENOMEM;
    if (*p != NULL)
        memcpy(q, *p, *cap * elem);
    big_free(*p, *cap * elem);
    *p = q;
    *cap = n;
    return 0;
}

enum {
    BUF_KW,
    BUF_VW,
    BUF_VCHUNK,
    BUF_PARTIAL,
    BUF_ZPART,
    BUF_Q,
    BUF_PLANAT,
    BUF_PLANKW, /* the key and value words of the plan kept */
    BUF_PLANVW,
    BUF_KVIS,
    SCRATCH_BUFS
};

/* What the kept plan was built for: it serves a later batch on the same
 * store and version whose word slots are the same, as long as no entry it
 * lists has expired since (an entry's expiry time never changes under one
 * version: EXPIRE writes a new version of the entry). */
struct plan_key {
    uint64_t store, version, now_ms, min_expire;
    size_t nslots, nk, nvw, n;
    int valid;
};

/* Per-thread scratch. Allocating and clearing the tables for every query
 * cost more than the attention itself on a 1,000-entry store, so each
 * thread keeps its own, and a call leaves it as it found it: every W_u it
 * touched back to 0, every bit it set cleared, every slot it gave back to
 * 0. The tables of parts other than the first and the slotted tables are
 * allocated when first needed and then kept (akv_attn_scratch_bytes counts
 * them). Freed when the thread exits. */
struct attn_scratch {
    size_t nwords;
    double *kscore;            /* unslotted key scores, nwords + 1 */
    uint64_t *kused;           /* nmask, 0 between calls */
    uint32_t *slots;           /* kslot, vslot (nwords + 1 each, 0 between calls) */
    akv_fix *w[PARTS_MAX];     /* unslotted W_u of each part (nwords + 1, 0 between calls) */
    uint64_t *vmask;           /* the value word set, nmask (0 between calls) */
    double *blocks[PARTS_MAX]; /* 2 * SUB_DOUBLES each */
    akv_fix *wslot;            /* slotted W_u (0 between calls) */
    size_t wslot_cap;          /* its entries */
    struct plan_rec *plan;     /* the last batch's plan */
    size_t plan_cap;           /* its records */
    struct plan_key plan_key;  /* what it was built for */
    struct plan_key vis_key;   /* what BUF_KVIS (nkvis = n words) was listed for */
    uint64_t *kvmask;          /* nmask, 0 between calls */
    double *kslotted;          /* slotted key scores */
    size_t kslotted_cap;       /* its entries */
    double *wdense;            /* PARTS_MAX * WORD_BATCH * ATTN_BATCH_MAX */
    void *buf[SCRATCH_BUFS];   /* a call's other arrays (kept: a fresh large malloc
                                * costs its page faults on every call) */
    size_t buf_cap[SCRATCH_BUFS];
    size_t bytes; /* what this holds, as counted in scratch_total */
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;
static atomic_size_t scratch_total; /* every thread's scratch together */

size_t akv_attn_scratch_bytes(void)
{
    return atomic_load_explicit(&scratch_total, memory_order_relaxed);
}

static void scratch_count(struct attn_scratch *sc, size_t bytes)
{
    sc->bytes += bytes;
    atomic_fetch_add_explicit(&scratch_total, bytes, memory_order_relaxed);
}

static void scratch_free(void *p)
{
    struct attn_scratch *sc = p;

    if (sc == NULL)
        return;
    big_free(sc->kscore, (sc->nwords + 1) * sizeof *sc->kscore);
    free(sc->kused);
    free(sc->slots);
    for (int i = 0; i < PARTS_MAX; i++) {
        big_free(sc->w[i], (sc->nwords + 1) * sizeof *sc->w[i]);
        free(sc->blocks[i]);
    }
    free(sc->vmask);
    free(sc->kvmask);
    big_free(sc->wslot, sc->wslot_cap * sizeof *sc->wslot);
    big_free(sc->kslotted, sc->kslotted_cap * sizeof *sc->kslotted);
    big_free(sc->plan, sc->plan_cap * sizeof *sc->plan);
    free(sc->wdense);
    for (int i = 0; i < SCRATCH_BUFS; i++)
        free(sc->buf[i]);
    atomic_fetch_sub_explicit(&scratch_total, sc->bytes, memory_order_relaxed);
    free(sc);
}

static void scratch_key_init(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

static size_t nmask_of(size_t nwords)
{
    return (nwords + 1 + 63) / 64;
}

/* Part p's tables (unslotted W_u, block arrays): 0 or -ENOMEM. */
static int scratch_part(struct attn_scratch *sc, unsigned p)
{
    if (sc->w[p] == NULL) {
        /* calloc'd, so the pages no word touches cost nothing */
        if ((sc->w[p] = big_alloc((sc->nwords + 1) * sizeof *sc->w[p])) == NULL)
            return -ENOMEM;
        scratch_count(sc, (sc->nwords + 1) * sizeof *sc->w[p]);
    }
    if (sc->blocks[p] == NULL) {
        size_t nb = 2 * SUB_DOUBLES;
        if ((sc->blocks[p] = malloc(nb * sizeof *sc->blocks[p])) == NULL)
            return -ENOMEM;
        scratch_count(sc, nb * sizeof *sc->blocks[p]);
    }
    return 0;
}

void akv_attn_scratch_release(void)
{
    pthread_once(&scratch_once, scratch_key_init);
    if (!scratch_key_ok)
        return;
    scratch_free(pthread_getspecific(scratch_key));
    (void)pthread_setspecific(scratch_key, NULL);
}

/* The calling thread's scratch for a vocabulary of nwords; NULL without
 * memory. */
static struct attn_scratch *scratch_get(size_t nwords)
{
    size_t nmask = nmask_of(nwords);
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
    sc->kscore = big_alloc((nwords + 1) * sizeof *sc->kscore);
    sc->kused = calloc(nmask, sizeof *sc->kused);
    sc->vmask = calloc(nmask, sizeof *sc->vmask);
    sc->kvmask = calloc(nmask, sizeof *sc->kvmask);
    sc->slots = calloc(2 * (nwords + 1), sizeof *sc->slots);
    sc->wdense = malloc((size_t)PARTS_MAX * WORD_BATCH * ATTN_BATCH_MAX * sizeof *sc->wdense);
    scratch_count(sc, (nwords + 1) * (sizeof *sc->kscore + 2 * sizeof *sc->slots) +
                          3 * nmask * sizeof *sc->kused +
                          (size_t)PARTS_MAX * WORD_BATCH * ATTN_BATCH_MAX * sizeof *sc->wdense);
    if (sc->kscore == NULL || sc->kused == NULL || sc->vmask == NULL || sc->kvmask == NULL ||
        sc->slots == NULL || sc->wdense == NULL || scratch_part(sc, 0) < 0 ||
        pthread_setspecific(scratch_key, sc) != 0) {
        scratch_free(sc);
        return NULL;
    }
    return sc;
}

/* Scratch array i with room for at least bytes (its content lost); NULL
 * without memory. */
static void *scratch_buf(struct attn_scratch *sc, int i, size_t bytes)
{
    if (bytes > sc->buf_cap[i]) {
        size_t cap = bytes + bytes / 4;
        void *p = malloc(cap);
        if (p == NULL)
            return NULL;
        free(sc->buf[i]);
        sc->bytes -= sc->buf_cap[i];
        atomic_fetch_sub_explicit(&scratch_total, sc->buf_cap[i], memory_order_relaxed);
        scratch_count(sc, cap);
        sc->buf[i] = p;
        sc->buf_cap[i] = cap;
    }
    return sc->buf[i];
}

/* Slotted: the W_u table grown to hold at least slots * nq entries, the
 * new ones 0. */
static int wslot_reserve(struct attn_scratch *sc, size_t entries)
{
    size_t old = sc->wslot_cap;
    void *w = sc->wslot;

    if (big_grow(&w, &sc->wslot_cap, entries, sizeof *sc->wslot) < 0)
        return -ENOMEM;
    sc->wslot = w;
    scratch_count(sc, (sc->wslot_cap - old) * sizeof *sc->wslot);
    return 0;
}

/* ---- a batch ---------------------------------------------------------------- */

/* Puts the value words' W_u back to 0 (phase 3 does it as it reads them;
 * this is for the passes it does not follow). */
static void reset_weights(struct attn_state *st)
{
    for (unsigned p = 0; p < st->nparts; p++) {
        akv_fix *w = st->parts[p].w;
        if (st->slotted)
            for (size_t j = 1; j <= st->nvw; j++)
                for (size_t a = 0; a < st->nact; a++)
                    w[j * st->nq + st->act[a]] = 0;
        else
            for (size_t j = 0; j < st->nvw; j++)
                w[st->vw[j]] = 0;
    }
}

/* The shifts before phase 2, from the snapshot's content only: the
 * largest score of a word of a visible key (dot; a key's score is a mean of
 * them) or 1 / tau (cosine), raised by 2^-40 of itself so that a mean
 * rounded up does not pass it (if one still does, the second pass takes the
 * largest score itself). */
static void shift_bounds(struct attn_state *st)
{
    size_t nq = st->nq;
    double m[ATTN_BATCH_MAX];

    for (size_t b = 0; b < nq; b++)
        m[b] = -INFINITY;
    for (size_t j = 0; j < st->nkvis; j++) {
        const double *v = st->kscore + kpos(st, st->slotted, nq, st->kvis[j]);
        for (size_t b = 0; b < nq; b++)
            m[b] = v[b] > m[b] ? v[b] : m[b];
    }
    for (size_t b = 0; b < nq; b++) {
        struct attn_q *aq = &st->qs[b];
        double c;
        if (aq->mode == AKV_ATTN_COSINE)
            c = aq->cos_bound;
        else if (m[b] == -INFINITY)
            c = 0;
        else
            c = aq->dot_tau != 1.0 ? m[b] / aq->dot_tau : m[b];
        aq->ce = aq->cp = c + fabs(c) * 0x1p-40;
    }
}

/* The words of the keys the snapshot sees (st->kvis): the key word set the
 * store keeps may also hold words of keys expired, removed or written
 * since, and the shift must not depend on those. Listed by a pass over the
 * store's keys, and kept by the thread for the next call on the same
 * store, version and visible set (as the plan). 0 or -ENOMEM. */
struct kvis_fill {
    const struct attn_state *st;
    uint64_t *mask;
    uint64_t min_expire;
};

static int kvis_block(void *arg, const struct akv_store_block *b)
{
    struct kvis_fill *kf = arg;
    const struct attn_state *st = kf->st;

    for (size_t i = 0; i < b->n; i++) {
        const struct akv_store_words *k = &b->keys[i];
        uint64_t e;
        if (!b->visible[i])
            continue;
        if (k->n <= AKV_STORE_WORDS_INLINE) {
            for (uint32_t j = 0; j < k->n; j++)
                kf->mask[k->id[j] >> 6] |= (uint64_t)1 << (k->id[j] & 63);
        } else {
            const uint32_t *ids = all_words(st, b->first_slot + i, AKV_STORE_KEY);
            for (uint32_t j = 0; j < k->n; j++)
                kf->mask[ids[j] >> 6] |= (uint64_t)1 << (ids[j] & 63);
        }
        e = atomic_load_explicit(&b->expire[i], memory_order_relaxed);
        if (e != 0 && (kf->min_expire == 0 || e < kf->min_expire))
            kf->min_expire = e;
    }
    return 0;
}

static int visible_key_words(struct attn_state *st, struct attn_scratch *sc)
{
    struct plan_key *key = &sc->vis_key;
    struct kvis_fill kf = {st, sc->kvmask, 0};
    size_t n = 0;
    uint32_t *out;

    if (key->valid && key->store == akv_store_id(st->s) && key->version == st->snap->version &&
        key->nslots == st->snap->nslots && st->snap->now_ms >= key->now_ms &&
        (key->min_expire == 0 || st->snap->now_ms < key->min_expire)) {
        st->kvis = sc->buf[BUF_KVIS];
        st->nkvis = key->n;
        return 0;
    }
    key->valid = 0;
    out = scratch_buf(sc, BUF_KVIS, (st->nk ? st->nk : 1) * sizeof *out);
    if (out == NULL)
        return -ENOMEM;
    (void)akv_store_scan(st->s, st->snap, kvis_block, &kf);
    for (size_t i = 0; i < st->nmask; i++) {
        uint64_t bits = kf.mask[i];
        kf.mask[i] = 0;
        while (bits != 0) {
            uint32_t u = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            if (u < st->sink && n < st->nk) /* every visible word is in the store's set */
                out[n++] = u;
        }
    }
    st->kvis = out;
    st->nkvis = n;
    *key = (struct plan_key){akv_store_id(st->s),
                             st->snap->version,
                             st->snap->now_ms,
                             kf.min_expire,
                             st->snap->nslots,
                             0,
                             0,
                             n,
                             1};
    return 0;
}

/* The store's value words in id order (st->vw), their slots (slotted) and
 * the chunks of phase 3. */
static int value_words(struct attn_state *st, struct attn_scratch *sc)
{
    size_t n = 0, c = 0;

    akv_store_value_words(st->s, st->snap, sc->vmask);
    for (size_t i = 0; i < st->nmask; i++)
        n += (size_t)__builtin_popcountll(sc->vmask[i]);
    st->nvchunks = (st->sink + VCHUNK - 1) / VCHUNK;
    st->vw = scratch_buf(sc, BUF_VW, (n ? n : 1) * sizeof *st->vw);
    st->vchunk = scratch_buf(sc, BUF_VCHUNK, (st->nvchunks + 1) * sizeof *st->vchunk);
    if (st->vw == NULL || st->vchunk == NULL) {
        memset(sc->vmask, 0, st->nmask * sizeof *sc->vmask);
        return -ENOMEM;
    }
    for (size_t i = 0; i < st->nmask; i++) {
        uint64_t bits = sc->vmask[i];
        sc->vmask[i] = 0;
        while (bits != 0) {
            uint32_t u = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            if (u >= st->sink)
                continue;
            while (c * VCHUNK <= u)
                st->vchunk[c++] = st->nvw;
            if (st->slotted)
                st->vslot[u] = (uint32_t)(st->nvw + 1);
            st->vw[st->nvw++] = u;
        }
    }
    while (c <= st->nvchunks)
        st->vchunk[c++] = st->nvw;
    return 0;
}

/* A batch's plan (struct plan_rec), in st->plan: the one kept from the
 * last batch if it still serves (struct plan_key), else built: 0 or
 * -ENOMEM. */
static int plan_build(struct attn_state *st, struct attn_scratch *sc)
{
    struct plan_fill pf = {st, NULL, NULL, 0};
    struct plan_key *key = &sc->plan_key;
    size_t nat = st->nvw + 2, n;
    uint32_t *kw, *vw;

    if (key->valid && key->store == akv_store_id(st->s) && key->version == st->snap->version &&
        key->nslots == st->snap->nslots && key->nk == st->nk && key->nvw == st->nvw &&
        st->snap->now_ms >= key->now_ms &&
        (key->min_expire == 0 || st->snap->now_ms < key->min_expire) &&
        memcmp(sc->buf[BUF_PLANKW], st->kw, st->nk * sizeof *st->kw) == 0 &&
        memcmp(sc->buf[BUF_PLANVW], st->vw, st->nvw * sizeof *st->vw) == 0) {
        st->plan = sc->plan;
        st->nplan = key->n;
        return 0;
    }
    key->valid = 0;
    pf.at = scratch_buf(sc, BUF_PLANAT, nat * sizeof *pf.at);
    kw = scratch_buf(sc, BUF_PLANKW, (st->nk ? st->nk : 1) * sizeof *kw);
    vw = scratch_buf(sc, BUF_PLANVW, (st->nvw ? st->nvw : 1) * sizeof *vw);
    if (pf.at == NULL || kw == NULL || vw == NULL)
        return -ENOMEM;
    memset(pf.at, 0, nat * sizeof *pf.at);
    (void)akv_store_scan(st->s, st->snap, plan_block, &pf);
    for (size_t i = 1; i < nat; i++)
        pf.at[i] += pf.at[i - 1];
    n = pf.at[nat - 1];
    if (n > sc->plan_cap) {
        void *p = sc->plan;
        size_t old = sc->plan_cap;
        if (big_grow(&p, &sc->plan_cap, n, sizeof *sc->plan) < 0)
            return -ENOMEM;
        sc->plan = p;
        scratch_count(sc, (sc->plan_cap - old) * sizeof *sc->plan);
    }
    pf.rec = sc->plan;
    (void)akv_store_scan(st->s, st->snap, plan_block, &pf);
    st->plan = sc->plan;
    st->nplan = n;
    memcpy(kw, st->kw, st->nk * sizeof *kw);
    memcpy(vw, st->vw, st->nvw * sizeof *vw);
    *key = (struct plan_key){akv_store_id(st->s),
                             st->snap->version,
                             st->snap->now_ms,
                             pf.min_expire,
                             st->snap->nslots,
                             st->nk,
                             st->nvw,
                             n,
                             1};
    return 0;
}

/* The explain list, heaviest first: popped from the min-heap. */
static void why_sorted(const struct attn_state *st, struct why_heap *w)
{
    size_t n = w->n;

    while (w->n > 1) {
        struct akv_why top = w->h[0];
        size_t last = --w->n;
        w->h[0] = w->h[last];
        why_sift_down(st->s, st->snap, w);
        w->h[last] = top;
    }
    w->n = n;
}

/* One batch of nq <= ATTN_BATCH_MAX jobs; st holds what the whole call
 * shares (the key words, their slots and score table). */
static long run_batch(struct attn_state *st, struct akv_attn_job *jobs, size_t nq)
{
    struct attn_scratch *sc = st->sc;
    size_t pad = st->pad, nchunks = 0;
    struct attn_q qs[ATTN_BATCH_MAX];
    struct attn_part parts[PARTS_MAX];
    struct akv_why *whys = NULL; /* the heaps of parts other than the first */
    double *qd = scratch_buf(sc, BUF_Q, nq * pad * sizeof *qd);
    unsigned nh = st->par != NULL ? st->par->nhelpers : 0, np = 1;
    int scores_wanted = 0, w_zeroed = 0;
    long attended = -ENOMEM;

    if (nh > PARTS_MAX - 1)
        nh = PARTS_MAX - 1;
    st->nq = nq;
    st->qs = qs;
    st->parts = parts;
    st->nparts = 1;
    st->partial = NULL;
    st->zpart = NULL;
    memset(parts, 0, sizeof parts);
    if (qd == NULL)
        goto out;
    memset(qd, 0, nq * pad * sizeof *qd); /* the padding stays 0 */
    for (size_t b = 0; b < nq; b++) {
        struct attn_q *aq = &qs[b];
        double *q = qd + b * pad, qq = 0, tau = jobs[b].tau > 0 ? jobs[b].tau : 1.0;
        for (uint32_t d = 0; d < st->dim; d++) {
            q[d] = jobs[b].q[d];
            qq += q[d] * q[d];
        }
        aq->q = q;
        aq->mode = jobs[b].mode;
        aq->dot_tau = jobs[b].mode == AKV_ATTN_DOT ? tau : 1.0;
        aq->inv_qnorm_tau = qq > 0 ? 1.0 / (sqrt(qq) * tau) : 0.0;
        aq->cos_bound = qq > 0 ? 1.0 / tau : 0.0;
        aq->out = jobs[b].scores;
        aq->out_cap = jobs[b].scores_cap;
        scores_wanted |= aq->out != NULL;
    }

    /* Phase 1, then the shifts. */
    run_phase(st, phase_dots, st->nk >= PAR_MIN_WORDS ? nh : 0);
    shift_bounds(st);

    /* Phase 2: shared by parts only for a query alone without a score list
     * (each part has a table by vocabulary id). */
    if (!st->slotted && !scores_wanted && nh > 0 && st->snap->nslots >= PAR_MIN_SLOTS) {
        np = nh + 1;
        for (unsigned p = 1; p < np; p++)
            if (scratch_part(sc, p) < 0) {
                np = p;
                break;
            }
        if (jobs[0].nwhy_max > 0 && np > 1 &&
            (whys = malloc((np - 1) * jobs[0].nwhy_max * sizeof *whys)) == NULL)
            np = 1;
    }
    st->nparts = np;
    for (unsigned p = 0; p < np; p++) {
        parts[p].st = st;
        parts[p].w = st->slotted ? sc->wslot : sc->w[p];
        parts[p].blocks = sc->blocks[p];
    }
    st->nact = nq;
    for (size_t b = 0; b < nq; b++)
        st->act[b] = (uint8_t)b;
    for (int round = 0;; round++) {
        size_t nredo = 0;
        for (unsigned p = 0; p < np; p++) {
            parts[p].attended = 0;
            parts[p].oom = 0;
            for (size_t a = 0; a < st->nact; a++) {
                size_t b = st->act[a];
                struct attn_qsum *s = &parts[p].qs[b];
                *s = (struct attn_qsum){.me = -INFINITY, .mp = -INFINITY};
                s->why.h = p == 0         ? jobs[b].why
                           : whys != NULL ? whys + (p - 1) * jobs[0].nwhy_max
                                          : NULL;
                s->why.cap = jobs[b].why != NULL ? jobs[b].nwhy_max : 0;
            }
        }
        run_phase(st, phase_entries, np - 1);
        attended = 0;
        for (unsigned p = 0; p < np; p++) {
            if (parts[p].oom)
                attended = -ENOMEM;
            if (attended >= 0)
                attended += (long)parts[p].attended;
        }
        if (attended < 0)
            goto reset;
        /* The sums of every part into the first's. */
        for (size_t a = 0; a < st->nact; a++) {
            size_t b = st->act[a];
            struct attn_qsum *s = &parts[0].qs[b];
            int redo = 0;
            for (unsigned p = 1; p < np; p++) {
                const struct attn_qsum *o = &parts[p].qs[b];
                s->z += o->z;
                s->zp += o->zp;
                s->me = o->me > s->me ? o->me : s->me;
                s->mp = o->mp > s->mp ? o->mp : s->mp;
                s->blended += o->blended;
                for (size_t i = 0; i < o->why.n; i++)
                    why_offer(st->s, st->snap, &s->why, o->why.h[i].slot, o->why.h[i].weight);
            }
            if (round > 0)
                continue;
            /* Too far above the largest score: again, shifted by that. */
            if (s->blended > 0 && (qs[b].ce - s->me > SHIFT_GAP || s->me > qs[b].ce)) {
                qs[b].ce = s->me;
                redo = 1;
            }
            if ((size_t)attended > s->blended &&
                (qs[b].cp - s->mp > SHIFT_GAP || s->mp > qs[b].cp)) {
                qs[b].cp = s->mp;
                redo = 1;
            }
            if (redo)
                st->act[nredo++] = (uint8_t)b;
        }
        if (nredo == 0)
            break;
        /* Again for those queries only; the others' sums stand. */
        st->nact = nredo;
        if (st->blend)
            reset_weights(st);
    }

    /* Phase 3. */
    if (attended > 0 && st->blend) {
        nchunks = st->nvchunks;
        st->partial =
            scratch_buf(sc, BUF_PARTIAL, (nchunks ? nchunks : 1) * nq * pad * sizeof *st->partial);
        st->zpart = scratch_buf(sc, BUF_ZPART, (nchunks ? nchunks : 1) * nq * sizeof *st->zpart);
        if (st->partial == NULL || st->zpart == NULL)
            goto fail;
        st->wdense = sc->wdense;
        run_phase(st, phase_blend, st->nvw >= PAR_MIN_WORDS ? nh : 0);
        w_zeroed = 1;
        for (size_t b = 0; b < nq; b++)
            for (size_t c = 0; c < nchunks; c++)
                parts[0].qs[b].z += st->zpart[c * nq + b];
    }
    for (size_t b = 0; b < nq; b++) {
        struct attn_q *aq = &qs[b];
        struct attn_qsum *s = &parts[0].qs[b];
        double *r = jobs[b].r;
        double ze = akv_fix_weight(s->z), zp = akv_fix_weight(s->zp);
        int has_e = s->blended > 0, has_p = (size_t)attended > s->blended;
        double c_all = has_e && has_p ? (aq->ce > aq->cp ? aq->ce : aq->cp)
                       : has_e        ? aq->ce
                                      : aq->cp;
        double z_all = 0;
        if (attended == 0)
            continue;
        if (has_e)
            z_all += ze * exp(aq->ce - c_all);
        if (has_p)
            z_all += zp * exp(aq->cp - c_all);
        if (has_e && st->blend && !jobs[b].no_blend) {
            double zd = akv_fix_units(s->z);
            for (size_t c = 0; c < nchunks; c++) {
                const double *pc = st->partial + (c * nq + b) * pad;
                for (uint32_t d = 0; d < st->dim; d++)
                    r[d] = c == 0 ? pc[d] : r[d] + pc[d];
            }
            for (uint32_t d = 0; d < st->dim; d++)
                r[d] /= zd;
        }
        /* The kept raw scores into weights, best first, and the embedded
         * entries' renormalised blend weights. */
        why_sorted(st, &s->why);
        for (size_t i = 0; i < s->why.n; i++) {
            struct akv_why *w = &s->why.h[i];
            double raw = w->weight;
            w->weight = exp(raw - c_all) / z_all;
            w->payload = akv_store_entry_payload(st->s, st->snap, w->slot);
            w->blend = w->payload || ze == 0 ? 0.0 : exp(raw - aq->ce) / ze;
        }
        jobs[b].nwhy = s->why.n;
        jobs[b].blended = s->blended;
        jobs[b].shift = c_all;
        jobs[b].z = z_all;
        jobs[b].nscores = s->nout;
    }
    goto reset;
fail:
    attended = -ENOMEM;
reset:
    if (!w_zeroed && st->blend) {
        st->nact = nq; /* every column, not only a second pass's */
        for (size_t b = 0; b < nq; b++)
            st->act[b] = (uint8_t)b;
        reset_weights(st);
    }
out:
    free(whys);
    return attended;
}

long akv_attn_run_many_par(const struct akv_store *s, const struct akv_store_snap *snap,
                           struct akv_attn_job *jobs, size_t n, const struct akv_par *par)
{
    const struct akv_vocab *voc = akv_store_vocab(s);
    size_t nwords = akv_vocab_count(voc), nmask = nmask_of(nwords), chunk = 1;
    uint32_t dim = akv_store_dim(s);
    struct attn_scratch *sc = scratch_get(nwords);
    struct attn_state *st = calloc(1, sizeof *st);
    long attended = -ENOMEM;

    for (size_t b = 0; b < n; b++) {
        jobs[b].nwhy = 0;
        jobs[b].blended = 0;
        jobs[b].nscores = 0;
        memset(jobs[b].r, 0, dim * sizeof *jobs[b].r);
    }
    if (n == 0) {
        free(st);
        return 0;
    }
    if (sc == NULL || st == NULL)
        goto out;
    st->s = s;
    st->snap = snap;
    st->k = kernel_table[kernels_index()].k;
    st->mat = akv_vocab_matrix(voc);
    st->dim = dim;
    st->pad = AKV_ATTN_PAD(dim);
    st->sink = (uint32_t)nwords;
    st->kused = sc->kused;
    st->nmask = nmask;
    st->kslot = sc->slots;
    st->vslot = sc->slots + nwords + 1;
    st->sc = sc;
    st->par = par;
    st->inv_n[0] = 0;
    for (size_t k = 1; k <= AKV_PHRASE_WORDS_MAX; k++)
        st->inv_n[k] = 1.0 / (double)k;

    akv_store_key_words(s, snap, st->kused);
    for (size_t i = 0; i < nmask; i++)
        st->nk += (size_t)__builtin_popcountll(st->kused[i]);
    st->kw = scratch_buf(sc, BUF_KW, (st->nk ? st->nk : 1) * sizeof *st->kw);
    if (st->kw == NULL)
        goto reset;
    st->nk = 0;
    for (size_t i = 0; i < nmask; i++) {
        uint64_t bits = st->kused[i];
        while (bits != 0) {
            uint32_t u = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            if (u < st->sink)
                st->kw[st->nk++] = u;
        }
    }
    if (visible_key_words(st, sc) < 0)
        goto reset;
    st->slotted = n > 1;
    for (size_t b = 0; b < n; b++)
        st->blend |= !jobs[b].no_blend;
    if (st->blend && value_words(st, sc) < 0)
        goto reset;
    if (st->slotted) {
        /* A batch keeps a score per key word and query and a weight per
         * value word and query: with very many distinct words, fewer
         * queries share a pass. Slot 0 is the sink's: key score 0. */
        size_t need;
        for (size_t j = 0; j < st->nk; j++)
            st->kslot[st->kw[j]] = (uint32_t)(j + 1);
        chunk = ATTN_TABLE_MAX /
                ((st->nk + 1) * sizeof(double) + (st->blend ? st->nvw + 1 : 0) * sizeof(akv_fix));
        chunk = chunk < 1 ? 1 : chunk > ATTN_BATCH_MAX ? ATTN_BATCH_MAX : chunk;
        need = (st->nk + 1) * chunk;
        if (need > sc->kslotted_cap) {
            size_t old = sc->kslotted_cap;
            void *t = sc->kslotted;
            if (big_grow(&t, &sc->kslotted_cap, need, sizeof *sc->kslotted) < 0)
                goto reset;
            sc->kslotted = t;
            scratch_count(sc, (sc->kslotted_cap - old) * sizeof *sc->kslotted);
        }
        st->kscore = sc->kslotted;
        memset(st->kscore, 0, chunk * sizeof *st->kscore);
        if (st->blend && wslot_reserve(sc, (st->nvw + 1) * chunk) < 0)
            goto reset;
        if (st->blend && plan_build(st, sc) < 0)
            st->plan = NULL; /* the pass in slot order instead */
    } else {
        st->kscore = sc->kscore;
        st->kscore[st->sink] = 0;
    }
    for (size_t i = 0; i < n; i += chunk) {
        size_t m = n - i < chunk ? n - i : chunk;
        if (st->slotted)
            memset(st->kscore, 0, m * sizeof *st->kscore); /* the sink's slot */
        attended = run_batch(st, jobs + i, m);
        if (attended < 0)
            break;
    }
reset:
    if (st->slotted && st->kw != NULL)
        for (size_t j = 0; j < st->nk; j++)
            st->kslot[st->kw[j]] = 0;
    if (st->slotted && st->vw != NULL)
        for (size_t j = 0; j < st->nvw; j++)
            st->vslot[st->vw[j]] = 0;
    memset(st->kused, 0, nmask * sizeof *st->kused);
out:
    if (attended < 0)
        for (size_t b = 0; b < n; b++) {
            jobs[b].nwhy = 0;
            jobs[b].blended = 0;
            jobs[b].nscores = 0;
            memset(jobs[b].r, 0, dim * sizeof *jobs[b].r);
        }
    free(st);
    return attended;
}

long akv_attn_run_many(const struct akv_store *s, const struct akv_store_snap *snap,
                       struct akv_attn_job *jobs, size_t n)
{
    return akv_attn_run_many_par(s, snap, jobs, n, NULL);
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
