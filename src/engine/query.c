/*
 * query.c - QUERY, EXPLAIN, FGET and NEIGHBORS: option handling and the two steps
 * (attention in attn.c, ranking in rank.c) put together. An item's filters
 * (exclusions, RESTRICT) go into its scan request and into the candidates
 * taken from neighbor lists; MAXDIST, WITHSIMILARITY and MINSCORE are
 * applied to the exact answer at the end of the batch (finish_hits). 3CosMul
 * items (NEIGHBORS COSMUL) are not scan requests: the batch's parts share
 * their exhaustive row pass in chunks (cosmul_begin, batch_work,
 * cosmul_end).
 *
 * FGET (opts.fget) is the attention step alone, with every entry's score
 * kept (akv_attn_job.scores): the weights are summed per distinct value
 * (grouped by the store's 128-bit value hash, in slot order) and the k
 * heaviest values kept with a heap, ties by value bytes (section "FGET").
 *
 * Threading: akv_query_run and akv_query_neighbors run on worker threads; they
 * read a store snapshot and the immutable vocabulary and write the caller's
 * result, and FGET's scratch buffers, which belong to the calling thread (a
 * pthread key) and whose total size is one process-wide atomic counter
 * (fget_scratch_total, read by INFO from any thread).
 */
#include "attnkv/query.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/attn.h"
#include "engine/fixsum.h"
#include "attnkv/nbcache.h"
#include "attnkv/vectab.h"
#include "engine/rank.h"

/* Answering from neighbor lists
 * ------------------------------
 * For the l2 and cosine metrics, the ranking of a word x depends on r only
 * through a score that is linear in r (larger is better):
 *   l2:     s_r(x) = 2 r.x - |x|^2  (= |r|^2 - |x - r|^2)
 *   cosine: s_r(x) = r.x / |x|      (= |r| cos(r, x); 0 for x = 0)
 * A QUERY's r is sum_i w_i v_i over the stored values, with softmax weights
 * w_i >= 0 summing to 1, so s_r(x) = sum_i w_i s_i(x), s_i being the score
 * against v_i alone (for l2 this uses sum w_i = 1). Take the heaviest values
 * (H: up to LIST_HEAVY of them, single words whose top-M list L_i is held in
 * the cache, with s_M,i the M-th best score of that list) and bound every
 * other value's score by U, the largest |v|^2 (l2) or |v| (cosine) over
 * every value the store has held (akv_store_value_norm_max), which no score
 * against a value can exceed (|v|^2 - |v - x|^2 <= |v|^2, v.x/|x| <= |v|). A word x in
 * none of the lists of H then has
 *   s_r(x) <= sum_{i in H} w_i s_M,i + (1 - sum_{i in H} w_i) U  =: B.
 * The rest of the store can also be bounded through rho = r - sum_{i in H}
 * w_i v_i, the light values' share of r, without assuming the weights sum
 * to 1 (the identities are exact for the computed r): for l2,
 *   s_r(x) = sum_{i in H} w_i s_i(x) + 2 rho.x - (1 - W) |x|^2,
 * whose last two terms are at most |rho|^2 / (1 - W), W = sum_{i in H} w_i;
 * for cosine, s_r(x) = sum_{i in H} w_i s_i(x) + rho.x/|x|, at most |rho|
 * more. rho is a mixture, usually much shorter than (1 - W) max |v|, so B
 * uses the smaller of the two rest terms (measured: 28 % of the
 * benchmark's queries decided instead of 23 %).
 * So when the k-th best word of the union of those lists, scored exactly,
 * beats B, no word outside the lists can enter the top k, and the lists'
 * exact ranking is the answer: the same words, scores and order a full scan
 * gives. The comparison keeps a margin of 1e-9 relative, far above the
 * rounding of the few double operations involved (about 1e-15) and far
 * below any gap that decides an answer. Otherwise the query is scanned as
 * usual, and the missing lists of its heavy values are computed by the same
 * scan (as extra requests of k = M) for the next queries. */
#define LIST_HEAVY 8  /* heavy values tried per query */
#define LIST_K_MAX 32 /* larger k: the lists rarely decide, do not try */
#define LIST_FILLS 16 /* lists one batch computes at most */
/* The heaviest weight below which a query is not tried, as the rest of the
 * store then bounds too loosely for the lists to decide: on GloVe 6B 100d
 * with a 1,000-entry store of common words (300 queries, l2), the lists
 * decided 1 of 125 queries whose heaviest weight was under 0.6, 3 of 28 at
 * 0.6-0.7, 13 of 25 at 0.7-0.8, 24 of 27 at 0.8-0.9 and all 43 above; each
 * try costs up to 512 exact scores. */
#define LIST_MIN_WEIGHT 0.7

void akv_query_opts_default(struct akv_query_opts *o)
{
    *o = (struct akv_query_opts)AKV_QUERY_OPTS_DEFAULT;
}

const char *const akv_attn_mode_names[] = {"dot", "cosine", NULL};
const char *const akv_metric_names[] = {"l2", "cosine", "dot", NULL};
_Static_assert(AKV_ATTN_DOT == 0 && AKV_ATTN_COSINE == 1, "akv_attn_mode_names");
_Static_assert(AKV_METRIC_L2 == 0 && AKV_METRIC_COSINE == 1 && AKV_METRIC_DOT == 2,
               "akv_metric_names");

static const char *name_of(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t)v < n - 1 ? names[v] : "unknown";
}

const char *akv_attn_mode_name(enum akv_attn_mode m)
{
    return name_of(akv_attn_mode_names, 3, (int)m);
}

const char *akv_metric_name(enum akv_metric m)
{
    return name_of(akv_metric_names, 4, (int)m);
}

/* The index of s[0, len) among names (any case), or -EINVAL. */
static int name_parse(const char *const *names, const char *s, size_t len)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strlen(names[i]) == len && strncasecmp(s, names[i], len) == 0)
            return i;
    return -EINVAL;
}

int akv_attn_mode_parse(const char *s, size_t len, enum akv_attn_mode *out)
{
    int i = name_parse(akv_attn_mode_names, s, len);

    if (i < 0)
        return i;
    *out = (enum akv_attn_mode)i;
    return 0;
}

int akv_metric_parse(const char *s, size_t len, enum akv_metric *out)
{
    int i = name_parse(akv_metric_names, s, len);

    if (i < 0)
        return i;
    *out = (enum akv_metric)i;
    return 0;
}

static int opts_valid(const struct akv_query_opts *o)
{
    if (o->fget && (o->k < 1 || o->k > AKV_K_MAX || !(o->minweight >= 0 && o->minweight <= 1)))
        return 0;
    if (!o->skip_rank && (o->k < 1 || o->k > AKV_K_MAX))
        return 0;
    if (o->explain > AKV_EXPLAIN_MAX)
        return 0;
    if (o->attn != AKV_ATTN_DOT && o->attn != AKV_ATTN_COSINE)
        return 0;
    if (o->attn == AKV_ATTN_COSINE &&
        !(o->temperature >= AKV_TEMPERATURE_MIN && o->temperature <= AKV_TEMPERATURE_MAX))
        return 0;
    if (o->attn == AKV_ATTN_DOT &&
        !(o->temperature_dot >= AKV_TEMPERATURE_MIN && o->temperature_dot <= AKV_TEMPERATURE_MAX))
        return 0;
    return o->metric == AKV_METRIC_L2 || o->metric == AKV_METRIC_COSINE ||
           o->metric == AKV_METRIC_DOT;
}

/* A batch between begin and end: the requests of its shared scan. */
struct akv_query_batch {
    struct akv_query_item *items;
    size_t nitems;
    struct akv_rank_req *reqs;
    size_t *idx; /* idx[j]: the item of request j (j < nreq - nfill) */
    double *rs;  /* the attention results r, dim per item */
    uint32_t dim;
    size_t nreq;
    struct akv_rank_scan *scan;
    /* The neighbor lists this batch computes: requests nreq - nfill ..
     * nreq - 1, for the words fill_word in fill_metric, into fill_hits. */
    struct akv_nbcache *nbcache;
    size_t nfill;
    uint32_t fill_word[LIST_FILLS];
    enum akv_metric fill_metric[LIST_FILLS];
    double *fill_rs;
    struct akv_hit *fill_hits;
    /* The 3CosMul items: not part of the scan, but scored exhaustively in
     * chunks of rows that the parts claim from cos_next; part p keeps item
     * c's best in cos_hits[(p * ncos + c) * cos_kmax ..], cos_n[p * ncos + c]
     * of them. */
    unsigned nparts;
    size_t ncos, cos_kmax;
    uint32_t cos_rows;
    size_t *cos_idx;
    struct akv_cosmul_req *cos_reqs;
    double *cos_units;
    float *cos_unitsf;
    struct akv_hit *cos_hits;
    size_t *cos_n;
    atomic_uint cos_next;
};

/* Rows of a 3CosMul chunk. */
#define COSMUL_CHUNK 1024

static void batch_free(struct akv_query_batch *b)
{
    if (b == NULL)
        return;
    akv_rank_scan_end(b->scan);
    free(b->reqs);
    free(b->idx);
    free(b->rs);
    free(b->fill_rs);
    free(b->fill_hits);
    free(b->cos_idx);
    free(b->cos_reqs);
    free(b->cos_units);
    free(b->cos_unitsf);
    free(b->cos_hits);
    free(b->cos_n);
    free(b);
}

/* The ids of one query's candidates seen so far: an open-addressing set
 * (id + 1; 0 is empty) sized for every list of LIST_HEAVY values. */
struct idset {
    uint32_t slot[4 * LIST_HEAVY * AKV_NBCACHE_M]; /* a power of two, twice the most */
};

/* Adds id; returns 1 when it was not there yet. */
static int idset_add(struct idset *set, uint32_t id)
{
    const size_t mask = sizeof set->slot / sizeof set->slot[0] - 1;
    size_t h = (id * 2654435761u) & mask;

    while (set->slot[h] != 0 && set->slot[h] != id + 1)
        h = (h + 1) & mask;
    if (set->slot[h] != 0)
        return 0;
    set->slot[h] = id + 1;
    return 1;
}

/* The linear score (see above) of a hit of metric m against a vector of
 * norm vn. */
static double linear_score(enum akv_metric m, double score, double vn)
{
    return m == AKV_METRIC_L2 ? vn * vn - score * score : vn * score;
}

/* Tries to answer item it (attention done, r its result, top its heaviest
 * values, heaviest first) from the cache, adding one heavy value's list at
 * a time and stopping as soon as the lists so far prove the answer (the
 * bound above holds for any set H). Returns 1 when they did; otherwise 0,
 * after noting the lists it lacked in b's fills. */
static int answer_from_lists(struct akv_query_batch *b, struct akv_query_item *it, const double *r,
                             const struct akv_why *top, size_t ntop)
{
    const struct akv_vocab *voc = akv_store_vocab(it->store);
    enum akv_metric m = it->opts.metric;
    unsigned k = it->opts.k;
    struct akv_hit hits[LIST_K_MAX];
    struct idset set;
    uint32_t fresh[AKV_NBCACHE_M], dim = akv_vocab_dim(voc);
    double rho[AKV_DIM_MAX], heavy = 0, wsum = 0, rnorm, u, slack;
    size_t nhits = 0;

    /* The weights here are the blend's (payload entries have none), which
     * sum to 1 over the embedded entries as the bound needs. */
    while (ntop > 0 && top[0].payload) {
        top++;
        ntop--;
    }
    if (ntop == 0 || !(top[0].blend >= LIST_MIN_WEIGHT))
        return 0;
    rnorm = akv_rank_norm(r, dim);
    if (!(rnorm > 0) || !isfinite(rnorm))
        return 0;
    /* The store's largest value norm, rounded up far beyond the rounding
     * of its computation; a value removed since only makes it looser. */
    u = akv_store_value_norm_max(it->store) * (1 + 1e-12);
    if (m == AKV_METRIC_L2)
        u *= u;
    if (!isfinite(u))
        return 0;
    /* How far the computed rho may be from r minus the heavy values, by
     * far: each component is a few roundings of numbers up to |r| + |v|. */
    slack = 1e-9 * (1 + rnorm + sqrt(m == AKV_METRIC_L2 ? u : u * u));
    memcpy(rho, r, dim * sizeof *rho);
    memset(&set, 0, sizeof set);
    for (size_t i = 0; i < ntop; i++) {
        size_t n, nfresh = 0;
        const uint32_t *w =
            akv_store_entry_words(it->store, it->snap, top[i].slot, AKV_STORE_VALUE, &n);
        const struct akv_nblist *l;
        const float *x;
        double bound, kth, rest, rho_sq = 0, rho_norm;

        if (n != 1)
            continue; /* a phrase or a payload: its weight stays with the rest */
        l = akv_nbcache_get(b->nbcache, w[0], m);
        if (l == NULL) {
            size_t f = 0;
            while (f < b->nfill && !(b->fill_word[f] == w[0] && b->fill_metric[f] == m))
                f++;
            if (f == b->nfill && b->nfill < LIST_FILLS) {
                b->fill_word[b->nfill] = w[0];
                b->fill_metric[b->nfill++] = m;
            }
            continue;
        }
        heavy += top[i].blend * l->s_m;
        wsum += top[i].blend;
        x = akv_vocab_vec(voc, w[0]);
        for (uint32_t d = 0; d < dim; d++) {
            rho[d] -= top[i].blend * (double)x[d];
            rho_sq += rho[d] * rho[d];
        }
        /* A word the item may not answer is left out: the bound below
         * holds for every word outside the lists, whatever was left out. */
        for (size_t t = 0; t < AKV_NBCACHE_M; t++)
            if (idset_add(&set, l->ids[t]) &&
                akv_rank_admits(l->ids[t], it->opts.restrict_n, it->exclude, it->nexclude))
                fresh[nfresh++] = l->ids[t];
        akv_rank_rescore(voc, r, rnorm, m, k, fresh, nfresh, hits, &nhits);
        if (nhits < k)
            continue;
        /* The rest of the store: the lighter of its two bounds. */
        rest = ((wsum < 1 ? 1 - wsum : 0) + 1e-12) * u;
        rho_norm = sqrt(rho_sq) + slack;
        if (m == AKV_METRIC_COSINE && rho_norm < rest)
            rest = rho_norm;
        else if (m == AKV_METRIC_L2 && wsum < 1 - 1e-6 &&
                 rho_norm * rho_norm / (1 - wsum - 1e-12) < rest)
            rest = rho_norm * rho_norm / (1 - wsum - 1e-12);
        bound = heavy + rest;
        kth = linear_score(m, hits[k - 1].score, rnorm);
        if (isfinite(bound) && kth > bound + 1e-9 * (1 + fabs(bound) + u + fabs(kth))) {
            memcpy(it->res->hits, hits, nhits * sizeof *hits);
            it->res->nhits = nhits;
            it->res->from_lists = 1;
            return 1;
        }
    }
    return 0;
}

/* FGET
 * ----
 * Every visible entry's weight w_i = exp(s_i - shift) / z (the softmax over
 * all entries, as EXPLAIN's) is added to the group of its value bytes,
 * exactly (engine/fixsum.h: the same bits whatever the order of the
 * entries in the store). Groups are found by the store's 128-bit value hash (a hash
 * table of group indices, then a plain array of groups), so no value text
 * is read until the answer's ties are broken: O(entries) with a few cache
 * lines each. The k heaviest groups of at least minweight are kept in a
 * min-heap (O(groups log k)), then handed out heaviest first; equal sums
 * are ordered by their value bytes (shorter first on a common prefix), as
 * memcmp orders them. */
struct fget_group {
    struct akv_store_vhash h;
    size_t slot; /* the first entry holding the value */
    akv_fix w;
};

/* A place of the table: 32 more bits of a group's hash (a tag), so that a
 * probe reads the table alone until the tag matches, and the group's index
 * (UINT32_MAX: empty). At most half the places are used. */
struct fget_place {
    uint32_t tag;
    uint32_t idx;
};

#define FGET_PREFETCH 12 /* entries ahead whose table place is asked for */

struct fget_ctx {
    const struct akv_store *s;
    const struct akv_store_snap *snap;
};

/* memcmp order of the value bytes of two slots. */
static int value_cmp(const struct fget_ctx *c, size_t a, size_t b)
{
    const char *k, *va, *vb;
    size_t kl, la, lb;
    int d;

    akv_store_entry_text(c->s, c->snap, a, &k, &kl, &va, &la);
    akv_store_entry_text(c->s, c->snap, b, &k, &kl, &vb, &lb);
    d = memcmp(va, vb, la < lb ? la : lb);
    return d != 0 ? d : (la > lb) - (la < lb);
}

/* a comes before b in the answer: heavier, or as heavy and smaller bytes. */
static int fget_before(const struct fget_ctx *c, const struct akv_why *a, const struct akv_why *b)
{
    if (a->weight != b->weight)
        return a->weight > b->weight;
    return value_cmp(c, a->slot, b->slot) < 0;
}

/* The heap keeps the k best with the worst at the root. */
static void fget_sift_down(const struct fget_ctx *c, struct akv_why *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && fget_before(c, &h[m], &h[l]))
            m = l;
        if (r < n && fget_before(c, &h[m], &h[r]))
            m = r;
        if (m == i)
            return;
        struct akv_why t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void fget_sift_up(const struct fget_ctx *c, struct akv_why *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!fget_before(c, &h[p], &h[i]))
            return;
        struct akv_why t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* Per-thread FGET buffers (0: the scores, 1: the groups, 2: the table),
 * kept from one query to the next: fresh ones for a store of 100,000
 * entries are about 10 MB, which malloc maps anew each time, and faulting
 * those pages in cost as much as the grouping itself. Freed when the
 * thread exits, or after a batch once they hold more than
 * FGET_SCRATCH_KEEP. */
#define FGET_SCRATCH_KEEP ((size_t)64 << 20)
struct fget_scratch {
    void *p[3];
    size_t cap[3];
};
static pthread_key_t fget_key;
static pthread_once_t fget_once = PTHREAD_ONCE_INIT;
static int fget_key_ok;
static atomic_size_t fget_scratch_total; /* every thread's caps together */

static void fget_scratch_free(void *arg);

void akv_query_scratch_release(void)
{
    if (fget_key_ok) {
        fget_scratch_free(pthread_getspecific(fget_key));
        (void)pthread_setspecific(fget_key, NULL);
    }
    akv_attn_scratch_release();
}

size_t akv_query_scratch_bytes(void)
{
    return atomic_load_explicit(&fget_scratch_total, memory_order_relaxed) +
           akv_attn_scratch_bytes();
}

/* Frees buffer i of sc. */
static void fget_scratch_drop(struct fget_scratch *sc, int i)
{
    free(sc->p[i]);
    atomic_fetch_sub_explicit(&fget_scratch_total, sc->cap[i], memory_order_relaxed);
    sc->p[i] = NULL;
    sc->cap[i] = 0;
}

static void fget_scratch_free(void *arg)
{
    struct fget_scratch *sc = arg;

    if (sc == NULL)
        return;
    for (int i = 0; i < 3; i++)
        fget_scratch_drop(sc, i);
    free(sc);
}

static void fget_key_init(void)
{
    fget_key_ok = pthread_key_create(&fget_key, fget_scratch_free) == 0;
}

/* Buffer i of the calling thread, of at least size bytes (its contents
 * are not kept when it grows); NULL without memory. */
static void *fget_buf(int i, size_t size)
{
    struct fget_scratch *sc;

    pthread_once(&fget_once, fget_key_init);
    if (!fget_key_ok)
        return NULL;
    sc = pthread_getspecific(fget_key);
    if (sc == NULL) {
        sc = calloc(1, sizeof *sc);
        if (sc == NULL || pthread_setspecific(fget_key, sc) != 0) {
            free(sc);
            return NULL;
        }
    }
    if (sc->cap[i] < size) {
        fget_scratch_drop(sc, i);
        sc->p[i] = malloc(size);
        sc->cap[i] = sc->p[i] != NULL ? size : 0;
        atomic_fetch_add_explicit(&fget_scratch_total, sc->cap[i], memory_order_relaxed);
    }
    return sc->p[i];
}

/* Lets go of the calling thread's buffers if they are larger than kept. */
static void fget_trim(void)
{
    struct fget_scratch *sc = fget_key_ok ? pthread_getspecific(fget_key) : NULL;

    if (sc != NULL && sc->cap[0] + sc->cap[1] + sc->cap[2] > FGET_SCRATCH_KEEP)
        for (int i = 0; i < 3; i++)
            fget_scratch_drop(sc, i);
}

/* Groups the scores of job (FGET item it's attention) by value and writes
 * the answer to it->res->why. Returns 0 or -ENOMEM. */
static int fget_answer(struct akv_query_item *it, const struct akv_attn_job *job)
{
    const struct fget_ctx c = {it->store, it->snap};
    size_t n = job->nscores, cap = 16, ng = 0, nh = 0, k = it->opts.k;
    struct fget_group *g;
    struct fget_place *tab;
    struct akv_why *h = it->res->why;

    it->res->nwhy = 0;
    if (n == 0)
        return 0;
    while (cap < 2 * n)
        cap *= 2;
    tab = fget_buf(2, cap * sizeof *tab);
    g = fget_buf(1, n * sizeof *g);
    if (tab == NULL || g == NULL) {
        return -ENOMEM;
    }
    for (size_t p = 0; p < cap; p++)
        tab[p].idx = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t slot = job->scores[i].slot;
        double w = exp(job->scores[i].score - job->shift) / job->z;
        struct akv_store_vhash vh = akv_store_entry_vhash(it->store, it->snap, slot);
        size_t p = (size_t)(vh.h[0] >> 7) & (cap - 1);
        /* The table is far larger than the cache for a large store: ask
         * for the place of a later entry now. */
        if (i + FGET_PREFETCH < n) {
            struct akv_store_vhash ah =
                akv_store_entry_vhash(it->store, it->snap, job->scores[i + FGET_PREFETCH].slot);
            __builtin_prefetch(&tab[(size_t)(ah.h[0] >> 7) & (cap - 1)]);
        }
        while (tab[p].idx != UINT32_MAX &&
               !(tab[p].tag == (uint32_t)(vh.h[0] >> 32) && g[tab[p].idx].h.h[0] == vh.h[0] &&
                 g[tab[p].idx].h.h[1] == vh.h[1]))
            p = (p + 1) & (cap - 1);
        if (tab[p].idx == UINT32_MAX) {
            tab[p] = (struct fget_place){(uint32_t)(vh.h[0] >> 32), (uint32_t)ng};
            g[ng++] = (struct fget_group){vh, slot, 0};
        }
        g[tab[p].idx].w += akv_fix_from(w);
    }
    for (size_t i = 0; i < ng; i++) {
        struct akv_why cand = {.slot = g[i].slot, .weight = akv_fix_weight(g[i].w)};
        if (!(cand.weight >= it->opts.minweight))
            continue;
        if (nh < k) {
            h[nh] = cand;
            fget_sift_up(&c, h, nh++);
        } else if (fget_before(&c, &cand, &h[0])) {
            h[0] = cand;
            fget_sift_down(&c, h, nh, 0);
        }
    }
    /* Hand the heap out worst first, from the back. */
    for (size_t m = nh; m > 1; m--) {
        struct akv_why t = h[0];
        h[0] = h[m - 1];
        h[m - 1] = t;
        fget_sift_down(&c, h, m - 1, 0);
    }
    for (size_t i = 0; i < nh; i++)
        h[i].payload = akv_store_entry_payload(it->store, it->snap, h[i].slot);
    it->res->nwhy = nh;
    return 0;
}

/* Whether item it may be answered from neighbor lists. */
static int lists_apply(const struct akv_query_item *it)
{
    return it->nbcache != NULL && it->store != NULL && !it->opts.skip_rank && !it->opts.fget &&
           it->opts.k <= LIST_K_MAX &&
           (it->opts.metric == AKV_METRIC_L2 || it->opts.metric == AKV_METRIC_COSINE);
}

/* The vocabulary of a batch's items. */
static const struct akv_vocab *batch_vocab(const struct akv_query_batch *b)
{
    const struct akv_query_item *it = &b->items[0];
    return it->store ? akv_store_vocab(it->store) : it->vocab;
}

/* Prepares the 3CosMul items b->cos_idx[0..ncos): their unit terms in
 * double and every part's best lists. Returns 0 or -ENOMEM. */
static int cosmul_begin(struct akv_query_batch *b, const struct akv_vocab *voc)
{
    size_t nterms = 0, off = 0, count = akv_vocab_count(voc);
    uint32_t dim = b->dim, rows = 0;

    b->cos_kmax = 1;
    for (size_t c = 0; c < b->ncos; c++) {
        const struct akv_query_item *it = &b->items[b->cos_idx[c]];
        uint32_t lim = it->opts.restrict_n > 0 && it->opts.restrict_n < count ? it->opts.restrict_n
                                                                              : (uint32_t)count;
        nterms += it->npos + it->nneg;
        if (it->opts.k > b->cos_kmax)
            b->cos_kmax = it->opts.k;
        if (lim > rows)
            rows = lim;
    }
    b->cos_rows = rows;
    b->cos_reqs = malloc(b->ncos * sizeof *b->cos_reqs);
    b->cos_units = malloc(nterms * dim * sizeof *b->cos_units);
    b->cos_unitsf = malloc(nterms * dim * sizeof *b->cos_unitsf);
    b->cos_hits = malloc(b->nparts * b->ncos * b->cos_kmax * sizeof *b->cos_hits);
    b->cos_n = calloc(b->nparts * b->ncos, sizeof *b->cos_n);
    if (b->cos_reqs == NULL || b->cos_units == NULL || b->cos_unitsf == NULL ||
        b->cos_hits == NULL || b->cos_n == NULL)
        return -ENOMEM;
    for (size_t c = 0; c < b->ncos; c++) {
        const struct akv_query_item *it = &b->items[b->cos_idx[c]];
        double *u = b->cos_units + off * dim;
        for (unsigned t = 0; t < it->npos + it->nneg; t++) {
            const float *src = it->terms + (size_t)t * dim;
            double nn = 0;
            for (uint32_t d = 0; d < dim; d++)
                nn += (double)src[d] * src[d];
            nn = sqrt(nn);
            for (uint32_t d = 0; d < dim; d++) {
                u[(size_t)t * dim + d] = nn > 0 ? src[d] / nn : 0.0;
                b->cos_unitsf[off * dim + (size_t)t * dim + d] = (float)u[(size_t)t * dim + d];
            }
        }
        b->cos_reqs[c] = (struct akv_cosmul_req){.units = u,
                                                 .unitsf = b->cos_unitsf + off * dim,
                                                 .npos = it->npos,
                                                 .nneg = it->nneg,
                                                 .k = it->opts.k,
                                                 .limit = it->opts.restrict_n,
                                                 .skip = it->exclude,
                                                 .nskip = it->nexclude};
        off += it->npos + it->nneg;
    }
    atomic_init(&b->cos_next, 0);
    return 0;
}

/* Merges every part's best lists of the 3CosMul items into their results. */
static void cosmul_end(struct akv_query_batch *b)
{
    for (size_t c = 0; c < b->ncos; c++) {
        struct akv_query_item *it = &b->items[b->cos_idx[c]];
        struct akv_hit tmp[AKV_K_MAX];
        size_t n = 0;
        for (unsigned p = 0; p < b->nparts; p++) {
            size_t at = (size_t)p * b->ncos + c;
            n = akv_rank_merge_sim(it->res->hits, n, b->cos_hits + at * b->cos_kmax, b->cos_n[at],
                                   it->opts.k, tmp);
            memcpy(it->res->hits, tmp, n * sizeof *tmp);
        }
        it->res->nhits = n;
    }
}

/* The options applied to a ranked answer: MAXDIST (on the l2 distance),
 * the similarity as the score (WITHSIMILARITY), then MINSCORE (on the
 * score reported). r is the vector ranked against. */
static void finish_hits(struct akv_query_item *it, const double *r, uint32_t dim)
{
    const struct akv_query_opts *o = &it->opts;
    const struct akv_vocab *voc = it->store ? akv_store_vocab(it->store) : it->vocab;
    struct akv_query_result *res = it->res;
    double rnorm = o->similarity && !it->cosmul ? akv_rank_norm(r, dim) : 0;
    size_t n = 0;

    for (size_t i = 0; i < res->nhits; i++) {
        struct akv_hit h = res->hits[i];
        if (o->use_maxdist && !it->cosmul && o->metric == AKV_METRIC_L2 && !(h.score <= o->maxdist))
            continue;
        if (o->similarity && !it->cosmul && o->metric != AKV_METRIC_COSINE) {
            const float *x = akv_vocab_vec(voc, h.id);
            double xr = 0, xx = 0;
            for (uint32_t d = 0; d < dim; d++) {
                xr += (double)x[d] * r[d];
                xx += (double)x[d] * x[d];
            }
            h.score = (xx > 0 && rnorm > 0) ? xr / (sqrt(xx) * rnorm) : 0.0;
        }
        if (o->use_minscore && !(h.score >= o->minscore))
            continue;
        res->hits[n++] = h;
    }
    res->nhits = n;
}

int akv_query_batch_begin(struct akv_query_item *items, size_t n, unsigned nparts,
                          struct akv_query_batch **out)
{
    return akv_query_batch_begin_par(items, n, nparts, NULL, out);
}

int akv_query_batch_begin_par(struct akv_query_item *items, size_t n, unsigned nparts,
                              const struct akv_par *par, struct akv_query_batch **out)
{
    const struct akv_vocab *voc = NULL;
    struct akv_query_batch *b = NULL;
    struct akv_attn_job *jobs = NULL;
    size_t *grp = NULL; /* grp[g]: the item of job g */
    unsigned char *done = NULL;
    uint32_t dim = 0;
    int rc = -ENOMEM;

    *out = NULL;
    if (n == 0)
        return 0;
    voc = items[0].store ? akv_store_vocab(items[0].store) : items[0].vocab;
    dim = akv_vocab_dim(voc);
    b = calloc(1, sizeof *b);
    jobs = malloc(n * sizeof *jobs);
    grp = malloc(n * sizeof *grp);
    done = malloc(n);
    if (b != NULL) {
        b->items = items;
        b->nitems = n;
        b->dim = dim;
        b->reqs = malloc((n + LIST_FILLS) * sizeof *b->reqs);
        b->idx = malloc(n * sizeof *b->idx);
        b->cos_idx = malloc(n * sizeof *b->cos_idx);
        b->nparts = nparts ? nparts : 1;
        b->rs = malloc(n * (size_t)dim * sizeof *b->rs);
        for (size_t i = 0; i < n && b->nbcache == NULL; i++)
            if (lists_apply(&items[i]))
                b->nbcache = items[i].nbcache;
        if (b->nbcache != NULL) {
            b->fill_rs = malloc(LIST_FILLS * (size_t)dim * sizeof *b->fill_rs);
            b->fill_hits = malloc(LIST_FILLS * AKV_NBCACHE_M * sizeof *b->fill_hits);
        }
    }
    if (b == NULL || b->reqs == NULL || b->idx == NULL || b->cos_idx == NULL || b->rs == NULL ||
        jobs == NULL || grp == NULL || done == NULL ||
        (b->nbcache != NULL && (b->fill_rs == NULL || b->fill_hits == NULL))) {
        for (size_t i = 0; i < n; i++)
            items[i].rc = -ENOMEM;
        batch_free(b);
        b = NULL;
        goto out;
    }

    /* The attention step: the items on the same snapshot of the same
     * store share passes over it (akv_attn_run_many). */
    for (size_t i = 0; i < n; i++) {
        struct akv_query_item *it = &items[i];
        const struct akv_vocab *iv = it->store ? akv_store_vocab(it->store) : it->vocab;

        it->res->nhits = 0;
        it->res->nwhy = 0;
        it->res->attended = 0;
        it->res->blended = 0;
        it->res->from_lists = 0;
        it->rc = 0;
        /* An item on another vocabulary than the first (one scan serves
         * one vocabulary) or with bad options fails alone. */
        if (iv != voc || (it->store != NULL && (!opts_valid(&it->opts) || it->cosmul)))
            it->rc = -EINVAL;
        done[i] = it->rc != 0 || it->store == NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t nj = 0;
        long attended;
        if (done[i])
            continue;
        for (size_t j = i; j < n; j++) {
            const struct akv_query_item *a = &items[i], *c = &items[j];
            struct akv_query_result *res = c->res;
            /* FGET items share passes among themselves: they need no blend,
             * which saves reading the value rows. */
            if (done[j] || c->store != a->store || c->snap->version != a->snap->version ||
                c->snap->nslots != a->snap->nslots || c->opts.fget != a->opts.fget)
                continue;
            done[j] = 1;
            grp[nj] = j;
            /* The heaviest values, for the lists, come with the explain
             * list: ask for enough of it (and cut it back below). */
            jobs[nj] = (struct akv_attn_job){
                .q = c->q,
                .mode = c->opts.attn,
                .tau = c->opts.attn == AKV_ATTN_DOT ? c->opts.temperature_dot : c->opts.temperature,
                .r = b->rs + j * (size_t)dim,
                .why = c->opts.fget ? NULL : res->why,
                .no_blend = c->opts.fget,
                .nwhy_max = c->opts.fget                                     ? 0
                            : lists_apply(c) && c->opts.explain < LIST_HEAVY ? LIST_HEAVY
                                                                             : c->opts.explain};
            nj++;
        }
        /* FGET needs every entry's score: room for each of the group. */
        if (items[i].opts.fget && items[i].snap->nslots > 0) {
            size_t ns = items[i].snap->nslots;
            struct akv_attn_score *sc = fget_buf(0, nj * ns * sizeof *sc);
            for (size_t g = 0; g < nj; g++) {
                jobs[g].scores = sc != NULL ? sc + g * ns : NULL;
                jobs[g].scores_cap = sc != NULL ? ns : 0;
                if (sc == NULL)
                    items[grp[g]].rc = -ENOMEM;
            }
        }
        attended = akv_attn_run_many_par(items[i].store, items[i].snap, jobs, nj, par);
        for (size_t g = 0; g < nj; g++) {
            struct akv_query_item *it = &items[grp[g]];
            if (attended < 0 && it->rc == 0)
                it->rc = (int)attended;
            if (it->rc == 0) {
                it->res->nwhy = jobs[g].nwhy;
                it->res->attended = (size_t)attended;
                it->res->blended = jobs[g].blended;
                if (it->opts.fget)
                    it->rc = fget_answer(it, &jobs[g]);
            }
        }
        if (items[i].opts.fget)
            fget_trim();
    }

    /* The items that need the vocabulary ranked become requests of one
     * shared scan, unless neighbor lists answer them. */
    for (size_t i = 0; i < n; i++) {
        struct akv_query_item *it = &items[i];
        const struct akv_query_opts *o = &it->opts;
        double *r = b->rs + i * (size_t)dim;

        if (it->rc != 0)
            continue;
        if (it->store != NULL) {
            /* Nothing to blend (an empty store, or payloads only): no
             * answer, as for an empty store. */
            if (it->res->blended == 0 || o->skip_rank || o->fget)
                continue;
            if (lists_apply(it)) {
                struct akv_why top[LIST_HEAVY];
                size_t ntop = it->res->nwhy < LIST_HEAVY ? it->res->nwhy : LIST_HEAVY;
                memcpy(top, it->res->why, ntop * sizeof *top);
                if (it->res->nwhy > o->explain)
                    it->res->nwhy = o->explain;
                if (answer_from_lists(b, it, r, top, ntop))
                    continue;
            }
        } else {
            if (o->k < 1 || o->k > AKV_K_MAX ||
                (o->metric != AKV_METRIC_L2 && o->metric != AKV_METRIC_COSINE &&
                 o->metric != AKV_METRIC_DOT)) {
                it->rc = -EINVAL;
                continue;
            }
            if (it->cosmul) {
                if (it->npos == 0 || it->terms == NULL || it->npos + it->nneg > AKV_TERMS_MAX)
                    it->rc = -EINVAL;
                else
                    b->cos_idx[b->ncos++] = i;
                continue;
            }
            for (uint32_t d = 0; d < dim; d++)
                r[d] = it->q[d];
        }
        b->idx[b->nreq] = i;
        b->reqs[b->nreq++] = (struct akv_rank_req){r, o->metric,     o->k,        it->res->hits,
                                                   0, o->restrict_n, it->exclude, it->nexclude};
    }
    /* The lists to compute ride along: the exact top M of each word. */
    if (akv_vocab_count(voc) > AKV_NBCACHE_M) {
        for (size_t f = 0; f < b->nfill; f++) {
            double *r = b->fill_rs + f * (size_t)dim;
            const float *x = akv_vocab_vec(voc, b->fill_word[f]);
            for (uint32_t d = 0; d < dim; d++)
                r[d] = x[d];
            b->reqs[b->nreq++] = (struct akv_rank_req){
                r, b->fill_metric[f], AKV_NBCACHE_M, b->fill_hits + f * AKV_NBCACHE_M, 0, 0, NULL,
                0};
        }
    } else {
        b->nfill = 0;
    }
    if (b->ncos > 0 && cosmul_begin(b, voc) < 0) {
        for (size_t c = 0; c < b->ncos; c++)
            items[b->cos_idx[c]].rc = -ENOMEM;
        b->ncos = 0;
    }
    if (b->nreq > 0 && akv_rank_scan_begin(voc, b->reqs, b->nreq, nparts, &b->scan) < 0) {
        for (size_t j = 0; j < b->nreq - b->nfill; j++)
            items[b->idx[j]].rc = -ENOMEM;
        b->nreq = 0;
        b->nfill = 0;
    }
    rc = 0;
out:
    free(jobs);
    free(grp);
    free(done);
    *out = b;
    return rc;
}

void akv_query_batch_work(struct akv_query_batch *b, unsigned part)
{
    if (b != NULL && b->scan != NULL)
        akv_rank_scan_work(b->scan, part);
    if (b != NULL && b->ncos > 0 && part < b->nparts) {
        struct akv_hit *hits = b->cos_hits + (size_t)part * b->ncos * b->cos_kmax;
        size_t *nh = b->cos_n + (size_t)part * b->ncos;
        for (;;) {
            unsigned c = atomic_fetch_add_explicit(&b->cos_next, 1, memory_order_relaxed);
            uint64_t row0 = (uint64_t)c * COSMUL_CHUNK;
            if (row0 >= b->cos_rows)
                break;
            akv_rank_cosmul(batch_vocab(b), b->cos_reqs, b->ncos, (uint32_t)row0,
                            row0 + COSMUL_CHUNK < b->cos_rows ? (uint32_t)(row0 + COSMUL_CHUNK)
                                                              : b->cos_rows,
                            hits, b->cos_kmax, nh);
        }
    }
}

void akv_query_batch_end(struct akv_query_batch *b)
{
    if (b == NULL)
        return;
    if (b->ncos > 0)
        cosmul_end(b);
    if (b->scan != NULL) {
        int rc = akv_rank_scan_end(b->scan);
        size_t nitems = b->nreq - b->nfill;
        b->scan = NULL;
        for (size_t j = 0; j < nitems; j++) {
            if (rc < 0)
                b->items[b->idx[j]].rc = -ENOMEM;
            else
                b->items[b->idx[j]].res->nhits = b->reqs[j].nhits;
        }
        for (size_t f = 0; rc == 0 && f < b->nfill; f++) {
            const struct akv_rank_req *q = &b->reqs[nitems + f];
            struct akv_nblist l = {.word = b->fill_word[f], .metric = b->fill_metric[f]};
            double vn = akv_rank_norm(q->r, b->dim); /* q->r: the word's row in double */
            if (q->nhits != AKV_NBCACHE_M || !isfinite(vn))
                continue;
            for (size_t i = 0; i < AKV_NBCACHE_M; i++)
                l.ids[i] = q->hits[i].id;
            l.s_m = linear_score(l.metric, q->hits[AKV_NBCACHE_M - 1].score, vn);
            /* A full cache or no memory only means no list: still exact. */
            if (isfinite(l.s_m))
                (void)akv_nbcache_put(b->nbcache, &l);
        }
    }
    for (size_t i = 0; i < b->nitems; i++) {
        struct akv_query_item *it = &b->items[i];
        if (it->rc == 0 && !it->opts.skip_rank)
            finish_hits(it, b->rs + i * (size_t)b->dim, b->dim);
    }
    batch_free(b);
}

int akv_query_run_many(struct akv_query_item *items, size_t n)
{
    struct akv_query_batch *b;
    int rc = akv_query_batch_begin(items, n, 1, &b);

    akv_query_batch_work(b, 0);
    akv_query_batch_end(b);
    return rc;
}

int akv_query_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  const struct akv_query_opts *o, struct akv_query_result *res)
{
    struct akv_query_item it = {.store = s, .snap = snap, .q = q, .opts = *o, .res = res};

    akv_query_run_many(&it, 1);
    return it.rc;
}

int akv_query_neighbors(const struct akv_vocab *voc, const float *v, enum akv_metric m, unsigned k,
                        struct akv_query_result *res)
{
    struct akv_query_item it = {.vocab = voc, .q = v, .res = res};

    akv_query_opts_default(&it.opts);
    it.opts.metric = m;
    it.opts.k = k;
    akv_query_run_many(&it, 1);
    return it.rc;
}
