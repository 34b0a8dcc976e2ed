/*
 * rank.c - nearest vocabulary words to a vector, exactly, without reading
 * most of the vectors.
 *
 * Design. Scores are turned around so that larger is better for every
 * metric: dot r.x, cosine r.x / |x| (|r| is common to every word), and for
 * l2 2 r.x - |x|^2 (= |r|^2 - |x - r|^2). The scan reads the int8 sketch of
 * the vocabulary (src/engine/sketch.h: a quarter of the matrix's bytes), which for
 * each word gives an interval [lo, hi] that surely holds its score. Each
 * request keeps
 *   - thr, the k-th largest lower bound seen so far: the true k-th best
 *     score is at least thr, so a word with hi < thr cannot be in the
 *     answer and is dropped;
 *   - the survivors (hi >= thr when seen), compacted as thr rises.
 * At the end the survivors with hi >= the final thr are rescored exactly, in
 * double from the float vectors, and sorted (ties by word id). Every word of
 * the exact top k survives, so the answer is the exhaustive double ranking,
 * whatever the kernel. Only a handful of words per query typically survive,
 * so the matrix is touched only for them.
 *
 * Bounds. hi and lo are a b (c.d) +- (R e + D n) (sketch.h), computed in
 * float; AKV_SKETCH_MU of slack, relative to R (n + e), is already folded
 * into R and D and covers the rounding of the few float operations here
 * (each at most 2^-24 relative, about 1e-6 in all). For l2 the |x|^2 term
 * gets its own 2 MU. A NaN bound never drops a word (comparisons are
 * "not below"), so damaged or non-finite rows reach the exact step, where a
 * NaN score ranks last.
 *
 * Kernels. c.d is an integer sum, computed exactly by any of three kernels
 * (rank-kernels.h, a file each):
 * AVX-512 VNNI (one vpdpbusd per 16 words x 4 dimensions, four requests per
 * pass over a block that stays in L1), AVX2 (vpmaddubsw on |d| and c signed
 * like d, then vpmaddwd; no saturation since |c|, |d| <= 127), and portable
 * C. The choice is made at run time from the CPU's features.
 *
 * Batches and parts. One scan serves many requests: each 16-word block is
 * read once and scored by all of them, so memory traffic is shared. Several
 * threads can also share one scan: the vocabulary is cut into chunks of
 * CHUNK_BLOCKS blocks, which the threads (each a "part", with its own
 * thresholds and survivors) claim in order from a shared counter, so they
 * all work on the frequent words first and none waits for a slow one. At
 * the end the parts are merged (the k-th largest lower bound of the union
 * is at least each part's). Between chunks a part publishes its thresholds
 * and adopts the others' when they are higher: any part's threshold is a
 * lower bound on the true k-th best score, so discarding below the highest
 * of them is as safe as discarding below one's own, and a part that joins
 * late starts with the others' warm thresholds instead of minus infinity.
 * Which words survive then depends on timing; the answer does not.
 *
 * Filters. A request may allow only ids below a limit (RESTRICT) and not in
 * a sorted skip list (EXCLUDE). take() drops a word that is not allowed
 * before it becomes a survivor or offers its lower bound, so the
 * thresholds are k-th bounds over allowed words only and the result is the
 * exact top k of those; blocks past a request's limit are not scored for
 * it, and the scan stops at the largest limit of the batch.
 *
 * 3CosMul (akv_rank_cosmul) is not a function of one vector, so it does not
 * use the sketch: each row's cosines with the unit terms are estimated in
 * float (AVX2 when the CPU has it), which bounds the word's score with a
 * margin of 1e-4 on each cosine, far above the estimates' error; a word
 * whose bound is below the k-th exact score held so far is skipped, the
 * others are scored exactly in double.
 *
 * Threading: the vocabulary is immutable. During akv_rank_scan_work, a part
 * writes only its own struct rank_part entries and its own published
 * thresholds, reads the shared per-request data that begin wrote, and takes
 * chunks from an atomic counter; the published thresholds are relaxed
 * atomics (any value ever published is a valid bound, so no ordering is
 * needed). end reads everything, after the owner has synchronised with
 * every thread that ran a part. The kernel choice is a relaxed atomic, set
 * before scans run.
 */
#include "engine/rank.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rank-kernels.h"
#include "engine/sketch.h"

/* exact_score and exact_score4 must give the same bits: no fused
 * multiply-adds (rank-kernels.h says how). */

/* ------------------------------------------------------------------------
 * Kernel selection.
 */

static atomic_int kernel_choice = -1;

static bool kernel_supported(enum akv_rank_kernel k)
{
    switch (k) {
    case AKV_RANK_PORTABLE:
        return true;
#ifdef AKV_RANK_X86
    case AKV_RANK_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case AKV_RANK_AVX512VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
#endif
    default:
        return false;
    }
}

static enum akv_rank_kernel kernel_best(void)
{
    if (kernel_supported(AKV_RANK_AVX512VNNI))
        return AKV_RANK_AVX512VNNI;
    if (kernel_supported(AKV_RANK_AVX2))
        return AKV_RANK_AVX2;
    return AKV_RANK_PORTABLE;
}

const char *akv_rank_kernel_name(enum akv_rank_kernel k)
{
    switch (k) {
    case AKV_RANK_AVX2:
        return "avx2";
    case AKV_RANK_AVX512VNNI:
        return "avx512vnni";
    case AKV_RANK_PORTABLE:
    default:
        return "portable";
    }
}

int akv_rank_set_kernel(const char *name)
{
    enum akv_rank_kernel k;

    if (strcmp(name, "auto") == 0) {
        k = kernel_best();
    } else if (strcmp(name, "portable") == 0) {
        k = AKV_RANK_PORTABLE;
    } else if (strcmp(name, "avx2") == 0) {
        k = AKV_RANK_AVX2;
    } else if (strcmp(name, "avx512vnni") == 0) {
        k = AKV_RANK_AVX512VNNI;
    } else {
        return -EINVAL;
    }
    if (!kernel_supported(k))
        return -ENOTSUP;
    atomic_store_explicit(&kernel_choice, (int)k, memory_order_relaxed);
    return 0;
}

enum akv_rank_kernel akv_rank_kernel(void)
{
    int k = atomic_load_explicit(&kernel_choice, memory_order_relaxed);

    if (k < 0) {
        const char *env = getenv("AKV_RANK_KERNEL");
        /* An unknown or unsupported name in the environment falls back to
         * the automatic choice rather than failing a query. */
        if (env == NULL || akv_rank_set_kernel(env) < 0)
            atomic_store_explicit(&kernel_choice, (int)kernel_best(), memory_order_relaxed);
        k = atomic_load_explicit(&kernel_choice, memory_order_relaxed);
    }
    return (enum akv_rank_kernel)k;
}

/* ------------------------------------------------------------------------
 * Scans.
 */

/* The exact score of word id against r, in double (larger is better is not
 * applied here: l2 is a distance). */
static double exact_score(const struct akv_vocab *v, uint32_t id, const double *r, double rnorm,
                          enum akv_metric m)
{
    const float *x = akv_vocab_vec(v, id);
    uint32_t dim = akv_vocab_dim(v);
    double acc = 0, xx = 0;

    switch (m) {
    case AKV_METRIC_L2:
        for (uint32_t d = 0; d < dim; d++) {
            double t = (double)x[d] - r[d];
            acc += t * t;
        }
        return sqrt(acc);
    case AKV_METRIC_COSINE:
        for (uint32_t d = 0; d < dim; d++) {
            acc += (double)x[d] * r[d];
            xx += (double)x[d] * x[d];
        }
        return (xx > 0 && rnorm > 0) ? acc / (sqrt(xx) * rnorm) : 0.0;
    case AKV_METRIC_DOT:
    default:
        for (uint32_t d = 0; d < dim; d++)
            acc += (double)x[d] * r[d];
        return acc;
    }
}

static int cmp_hits_l2(const void *a, const void *b)
{
    const struct akv_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_hits_sim(const void *a, const void *b)
{
    const struct akv_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int akv_rank_scan_begin(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n,
                        unsigned nparts, struct akv_rank_scan **out)
{
    struct akv_rank_scan *s;
    uint32_t dim = akv_vocab_dim(v), groups = akv_sketch_groups(dim);
    size_t count = akv_vocab_count(v), lbtotal = 0;
    uint32_t maxlimit = 0;
    const double *rot;
    double eps;

    *out = NULL;
    if (nparts == 0)
        nparts = 1;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->v = v;
    s->reqs = reqs;
    s->n = n;
    s->nparts = nparts;
    s->groups = groups;
    s->dim = dim;
    rot = akv_vocab_sketch_rotation(v, &eps, &s->head);
    for (size_t j = 0; j < n; j++) {
        unsigned k = reqs[j].k > AKV_K_MAX ? AKV_K_MAX : reqs[j].k;
        uint32_t lim = reqs[j].limit > 0 && reqs[j].limit < count ? reqs[j].limit : (uint32_t)count;
        lbtotal += k;
        if (k > 0 && lim > maxlimit)
            maxlimit = lim;
    }
    /* No request may answer a word beyond maxlimit: the scan stops there. */
    s->nblocks = akv_sketch_blocks(maxlimit);
    s->q = calloc(n ? n : 1, sizeof *s->q);
    s->parts = calloc(n > 0 ? n * nparts : 1, sizeof *s->parts);
    s->packed = malloc((n ? n : 1) * groups * sizeof *s->packed);
    s->codes = malloc((n ? n : 1) * groups * 4);
    s->lbs = malloc((lbtotal ? lbtotal : 1) * nparts * sizeof *s->lbs);
    s->pub = malloc((n ? n : 1) * nparts * sizeof *s->pub);
    if (s->q == NULL || s->parts == NULL || s->packed == NULL || s->codes == NULL ||
        s->lbs == NULL || s->pub == NULL) {
        akv_rank_scan_end(s);
        return -ENOMEM;
    }
    float *lb = s->lbs;
    for (size_t j = 0; j < n; j++) {
        struct rank_query *q = &s->q[j];
        q->r = reqs[j].r;
        q->m = reqs[j].m;
        q->k = reqs[j].k > AKV_K_MAX ? AKV_K_MAX : reqs[j].k;
        q->limit = reqs[j].limit > 0 && reqs[j].limit < count ? reqs[j].limit : (uint32_t)count;
        q->skip = reqs[j].skip;
        q->nskip = reqs[j].skip != NULL ? reqs[j].nskip : 0;
        q->packed = s->packed + j * groups;
        q->codes = s->codes + j * groups * 4;
        akv_sketch_query(q->r, dim, rot, eps, s->head, &q->sq, q->packed, q->codes);
        q->corr = 128 * q->sq.sum;
        q->corr_head = 0;
        for (uint32_t d = 0; d < 4 * s->head && d < 4 * groups; d++)
            q->corr_head += 128 * q->codes[d];
        q->corr_tail = q->corr - q->corr_head;
        q->rb = q->sq.finite ? q->sq.rbound : INFINITY;
        q->db = q->sq.finite ? q->sq.dbound : INFINITY;
        q->qb = q->m == AKV_METRIC_L2 ? 2 * q->sq.b : q->sq.b;
        q->qrb = q->m == AKV_METRIC_L2 ? 2 * q->rb : q->rb;
        q->qdb = q->m == AKV_METRIC_L2 ? 2 * q->db : q->db;
        for (unsigned p = 0; p < nparts; p++) {
            struct rank_part *pp = &s->parts[p * n + j];
            pp->thr = -INFINITY;
            pp->lb = lb;
            lb += q->k;
            atomic_init(&s->pub[p * n + j], -INFINITY);
        }
    }
    atomic_init(&s->next, 0);
    *out = s;
    return 0;
}

/* Before a chunk: every request's threshold becomes the highest any part
 * has published, if that is above the part's own. */
static void adopt_thresholds(struct akv_rank_scan *s, unsigned part, struct rank_part *pp)
{
    for (size_t j = 0; j < s->n; j++) {
        float t = pp[j].thr;
        for (unsigned p = 0; p < s->nparts; p++) {
            float o = atomic_load_explicit(&s->pub[p * s->n + j], memory_order_relaxed);
            if (p != part && o > t)
                t = o;
        }
        pp[j].thr = t;
    }
}

void akv_rank_scan_work(struct akv_rank_scan *s, unsigned part)
{
    size_t nchunks = (s->nblocks + CHUNK_BLOCKS - 1) / CHUNK_BLOCKS;
    struct rank_part *pp = &s->parts[(size_t)part * s->n];
    enum akv_rank_kernel kernel = akv_rank_kernel();

    for (;;) {
        size_t c = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed), b0, b1;
        if (c >= nchunks)
            break;
        b0 = c * CHUNK_BLOCKS;
        b1 = b0 + CHUNK_BLOCKS < s->nblocks ? b0 + CHUNK_BLOCKS : s->nblocks;
        if (s->nparts > 1)
            adopt_thresholds(s, part, pp);
        switch (kernel) {
#ifdef AKV_RANK_X86
        case AKV_RANK_AVX512VNNI:
            akv_rank_scan_avx512(s, pp, b0, b1);
            break;
        case AKV_RANK_AVX2:
            akv_rank_scan_avx2(s, pp, b0, b1);
            break;
#endif
        case AKV_RANK_PORTABLE:
        default:
            akv_rank_scan_portable(s, pp, b0, b1);
            break;
        }
        if (s->nparts > 1)
            for (size_t j = 0; j < s->n; j++)
                atomic_store_explicit(&s->pub[(size_t)part * s->n + j], pp[j].thr,
                                      memory_order_relaxed);
    }
}

/* Merges the parts of request j, rescores its survivors and writes its
 * hits. Returns 0 or -ENOMEM. */
/* An exact score as a hit's: NaN (from a damaged row) ranks last. */
static double nan_last(double sc, enum akv_metric m)
{
    return sc == sc ? sc : m == AKV_METRIC_L2 ? INFINITY : -INFINITY;
}

double akv_rank_norm(const double *r, uint32_t dim)
{
    double rr = 0;
    for (uint32_t d = 0; d < dim; d++)
        rr += r[d] * r[d];
    return sqrt(rr);
}

/* exact_score of four words at once: each sum runs in exact_score's order
 * with exact_score's operations, so the results are the same bits; the four
 * independent sums only hide each other's addition latency. */
static void exact_score4(const struct akv_vocab *v, const uint32_t *id, const double *r,
                         double rnorm, enum akv_metric m, double *out)
{
    const float *x0 = akv_vocab_vec(v, id[0]), *x1 = akv_vocab_vec(v, id[1]);
    const float *x2 = akv_vocab_vec(v, id[2]), *x3 = akv_vocab_vec(v, id[3]);
    uint32_t dim = akv_vocab_dim(v);
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, n0 = 0, n1 = 0, n2 = 0, n3 = 0;

    switch (m) {
    case AKV_METRIC_L2:
        for (uint32_t d = 0; d < dim; d++) {
            double t0 = (double)x0[d] - r[d], t1 = (double)x1[d] - r[d];
            double t2 = (double)x2[d] - r[d], t3 = (double)x3[d] - r[d];
            a0 += t0 * t0;
            a1 += t1 * t1;
            a2 += t2 * t2;
            a3 += t3 * t3;
        }
        out[0] = sqrt(a0), out[1] = sqrt(a1), out[2] = sqrt(a2), out[3] = sqrt(a3);
        return;
    case AKV_METRIC_COSINE:
        for (uint32_t d = 0; d < dim; d++) {
            a0 += (double)x0[d] * r[d];
            n0 += (double)x0[d] * x0[d];
            a1 += (double)x1[d] * r[d];
            n1 += (double)x1[d] * x1[d];
            a2 += (double)x2[d] * r[d];
            n2 += (double)x2[d] * x2[d];
            a3 += (double)x3[d] * r[d];
            n3 += (double)x3[d] * x3[d];
        }
        out[0] = (n0 > 0 && rnorm > 0) ? a0 / (sqrt(n0) * rnorm) : 0.0;
        out[1] = (n1 > 0 && rnorm > 0) ? a1 / (sqrt(n1) * rnorm) : 0.0;
        out[2] = (n2 > 0 && rnorm > 0) ? a2 / (sqrt(n2) * rnorm) : 0.0;
        out[3] = (n3 > 0 && rnorm > 0) ? a3 / (sqrt(n3) * rnorm) : 0.0;
        return;
    case AKV_METRIC_DOT:
    default:
        for (uint32_t d = 0; d < dim; d++) {
            a0 += (double)x0[d] * r[d];
            a1 += (double)x1[d] * r[d];
            a2 += (double)x2[d] * r[d];
            a3 += (double)x3[d] * r[d];
        }
        out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
        return;
    }
}

/* Keeps in hits[0..*n) (room for k) the best hits offered so far, in
 * order: an insertion, since k is small next to the number offered. */
static void offer_hit(struct akv_hit *hits, size_t *n, unsigned k, struct akv_hit h,
                      int (*cmp)(const void *, const void *))
{
    size_t i = *n;

    if (i == k) {
        if (cmp(&h, &hits[k - 1]) >= 0)
            return;
        i--;
    } else {
        (*n)++;
    }
    while (i > 0 && cmp(&h, &hits[i - 1]) < 0) {
        hits[i] = hits[i - 1];
        i--;
    }
    hits[i] = h;
}

void akv_rank_rescore(const struct akv_vocab *v, const double *r, double rnorm, enum akv_metric m,
                      unsigned k, const uint32_t *ids, size_t n, struct akv_hit *hits,
                      size_t *nhits)
{
    int (*cmp)(const void *, const void *) = m == AKV_METRIC_L2 ? cmp_hits_l2 : cmp_hits_sim;
    double sc[4];
    size_t i = 0;

    if (k == 0)
        return;
    for (; i + 4 <= n; i += 4) {
        exact_score4(v, ids + i, r, rnorm, m, sc);
        for (unsigned t = 0; t < 4; t++)
            offer_hit(hits, nhits, k, (struct akv_hit){ids[i + t], nan_last(sc[t], m)}, cmp);
    }
    for (; i < n; i++)
        offer_hit(hits, nhits, k,
                  (struct akv_hit){ids[i], nan_last(exact_score(v, ids[i], r, rnorm, m), m)}, cmp);
}

static int finish_request(struct akv_rank_scan *s, size_t j)
{
    const struct rank_query *q = &s->q[j];
    struct akv_rank_req *req = &s->reqs[j];
    struct rank_part *p0 = &s->parts[j];
    size_t total = 0, nall = 0;
    struct akv_hit *all;
    double rnorm;
    float thr;
    uint32_t dim = akv_vocab_dim(s->v);

    req->nhits = 0;
    if (q->k == 0)
        return 0;
    /* The threshold of the union: the k-th largest of all lower bounds. */
    thr = p0->thr;
    for (unsigned p = 0; p < s->nparts; p++) {
        struct rank_part *pp = &s->parts[(size_t)p * s->n + j];
        if (pp->oom)
            return -ENOMEM;
        total += pp->nsv;
        if (p > 0)
            for (size_t i = 0; i < pp->nlb; i++)
                thr = lb_offer(p0->lb, &p0->nlb, q->k, pp->lb[i]);
    }
    all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL)
        return -ENOMEM;
    rnorm = akv_rank_norm(q->r, dim);
    for (unsigned p = 0; p < s->nparts; p++) {
        struct rank_part *pp = &s->parts[(size_t)p * s->n + j];
        for (size_t i = 0; i < pp->nsv; i++)
            if (!(pp->sv[i].hi < thr))
                all[nall++] = (struct akv_hit){
                    pp->sv[i].id,
                    nan_last(exact_score(s->v, pp->sv[i].id, q->r, rnorm, q->m), q->m)};
    }
    qsort(all, nall, sizeof *all, q->m == AKV_METRIC_L2 ? cmp_hits_l2 : cmp_hits_sim);
    req->nhits = nall < q->k ? nall : q->k;
    memcpy(req->hits, all, req->nhits * sizeof *all);
    free(all);
    return 0;
}

int akv_rank_scan_end(struct akv_rank_scan *s)
{
    int rc = 0;

    if (s == NULL)
        return 0;
    if (s->q != NULL && s->parts != NULL && s->packed != NULL && s->codes != NULL &&
        s->lbs != NULL) {
        for (size_t j = 0; j < s->n && rc == 0; j++)
            rc = finish_request(s, j);
    }
    if (s->parts != NULL)
        for (size_t i = 0; i < s->n * s->nparts; i++)
            free(s->parts[i].sv);
    free(s->q);
    free(s->parts);
    free(s->packed);
    free(s->codes);
    free(s->lbs);
    free(s->pub);
    free(s);
    return rc;
}

size_t akv_rank_many(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n)
{
    struct akv_rank_scan *s;

    if (n == 0 || akv_rank_scan_begin(v, reqs, n, 1, &s) < 0)
        return 0;
    akv_rank_scan_work(s, 0);
    if (akv_rank_scan_end(s) < 0) {
        for (size_t j = 0; j < n; j++)
            reqs[j].nhits = 0;
        return 0;
    }
    return n;
}

size_t akv_rank_topk(const struct akv_vocab *v, const double *r, enum akv_metric m, unsigned k,
                     struct akv_hit *hits)
{
    struct akv_rank_req req = {.r = r, .m = m, .k = k, .hits = hits};

    if (akv_rank_many(v, &req, 1) != 1)
        return 0;
    return req.nhits;
}

/* ------------------------------------------------------------------------
 * Filters and 3CosMul.
 */

int akv_rank_admits(uint32_t id, uint32_t limit, const uint32_t *skip, size_t nskip)
{
    size_t lo = 0, hi = nskip;

    if (limit > 0 && id >= limit)
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (skip[mid] == id)
            return 0;
        if (skip[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 1;
}

/* x.t in double, in four interleaved sums (a fixed order: the same bits
 * on every machine). */
static double dot4(const float *x, const double *t, uint32_t dim)
{
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t d = 0;

    for (; d + 4 <= dim; d += 4) {
        a0 += (double)x[d] * t[d];
        a1 += (double)x[d + 1] * t[d + 1];
        a2 += (double)x[d + 2] * t[d + 2];
        a3 += (double)x[d + 3] * t[d + 3];
    }
    for (; d < dim; d++)
        a0 += (double)x[d] * t[d];
    return (a0 + a1) + (a2 + a3);
}

/* x.u in float, in eight interleaved sums (two 4-lane vectors). Its error
 * is below gamma(dim / 8 + 3) sum |x_d u_d|, gamma(n) = n 2^-24 / (1 - n
 * 2^-24). */
typedef float rank_v4f __attribute__((vector_size(16)));

static float dot8f(const float *x, const float *u, uint32_t dim)
{
    rank_v4f a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
    uint32_t d = 0;
    float s;

    for (; d + 8 <= dim; d += 8) {
        rank_v4f x0, x1, u0, u1;
        memcpy(&x0, x + d, sizeof x0);
        memcpy(&x1, x + d + 4, sizeof x1);
        memcpy(&u0, u + d, sizeof u0);
        memcpy(&u1, u + d + 4, sizeof u1);
        a += x0 * u0;
        b += x1 * u1;
    }
    a += b;
    s = (a[0] + a[1]) + (a[2] + a[3]);
    for (; d < dim; d++)
        s += x[d] * u[d];
    return s;
}

/* (1 + c) / 2 for c clamped to [-1, 1], which a cosine is. */
static double half_up(double c)
{
    return c > 1 ? 1 : c < -1 ? 0 : (1 + c) / 2;
}

void akv_rank_cosmul(const struct akv_vocab *v, const struct akv_cosmul_req *reqs, size_t n,
                     uint32_t row0, uint32_t row1, struct akv_hit *hits, size_t kmax, size_t *nhits)
{
    uint32_t dim = akv_vocab_dim(v);
    /* Bound on |c~ - c| for the float estimate c~ of a cosine: the dot
     * product's rounding (above), the unit terms' rounding to float and the
     * file's float norm, each a few 1e-7 relative; far more than enough. */
    const double delta = 1e-4 + 1.2e-7 * dim;

    const float *norms = akv_vocab_norms(v);
    float est[AKV_TERMS_MAX];
    int avx2 = 0;

#ifdef AKV_RANK_X86
    /* Both x86 kernels' CPUs have AVX2 and FMA. */
    avx2 = akv_rank_kernel() != AKV_RANK_PORTABLE;
#endif
    for (uint32_t id = row0; id < row1; id++) {
        const float *x = akv_vocab_vec(v, id);
        /* The file's float norm: within float rounding of |x|. */
        float xnf = norms[id];
        double xn = -1;
        for (size_t j = 0; j < n; j++) {
            const struct akv_cosmul_req *q = &reqs[j];
            struct akv_hit *h = hits + j * kmax;
            double num = 1, den = 1;
            if (q->k == 0 || !akv_rank_admits(id, q->limit, q->skip, q->nskip))
                continue;
            /* Once k words are held, a word whose upper bound (from the
             * float estimates) is below the k-th exact score cannot enter:
             * only the others are scored exactly. A NaN never skips. */
            if (nhits[j] == q->k && xnf > 0) {
                double hi_num = 1, hi_den = 1;
                unsigned nt = q->npos + q->nneg;
#ifdef AKV_RANK_X86
                if (avx2)
                    akv_rank_dots_avx2(x, q->unitsf, nt, dim, est);
                else
#endif
                    for (unsigned t = 0; t < nt; t++)
                        est[t] = dot8f(x, q->unitsf + (size_t)t * dim, dim);
                for (unsigned t = 0; t < nt; t++) {
                    double c = est[t] / xnf;
                    if (t < q->npos)
                        hi_num *= half_up(c + delta);
                    else
                        hi_den *= half_up(c - delta);
                }
                if (hi_num / (hi_den + 1e-6) < h[q->k - 1].score)
                    continue;
            }
            if (xn < 0) {
                double xx = 0;
                for (uint32_t d = 0; d < dim; d++)
                    xx += (double)x[d] * x[d];
                xn = sqrt(xx);
            }
            for (unsigned t = 0; t < q->npos + q->nneg; t++) {
                double c = xn > 0 ? dot4(x, q->units + (size_t)t * dim, dim) / xn : 0.0;
                if (t < q->npos)
                    num *= (1 + c) / 2;
                else
                    den *= (1 + c) / 2;
            }
            offer_hit(h, &nhits[j], q->k,
                      (struct akv_hit){id, nan_last(num / (den + 1e-6), AKV_METRIC_COSINE)},
                      cmp_hits_sim);
        }
    }
}

size_t akv_rank_merge_sim(const struct akv_hit *a, size_t na, const struct akv_hit *b, size_t nb,
                          unsigned k, struct akv_hit *out)
{
    size_t i = 0, j = 0, n = 0;

    while (n < k && (i < na || j < nb)) {
        if (j == nb || (i < na && cmp_hits_sim(&a[i], &b[j]) <= 0))
            out[n++] = a[i++];
        else
            out[n++] = b[j++];
    }
    return n;
}
