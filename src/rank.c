/*
 * rank.c - nearest vocabulary words to a vector.
 *
 * Two steps. A float scan over the whole matrix keeps the best k + MARGIN
 * candidates in a bounded heap; the candidates are then rescored in double
 * against the exact result vector and sorted. The margin absorbs the float
 * scan's rounding (about 1e-6 relative), so the returned top k and their
 * scores are those of an exhaustive double-precision ranking unless more than
 * MARGIN words tie with the k-th within float rounding, which takes exact
 * duplicates, and those tie-break by id in both steps alike.
 *
 * The scan reads count x dim floats once, and is memory-bound for one query
 * (about 137 MB for GloVe 6B 100d). Faster kernels belong behind
 * akv_rank_topk; see include/attnkv/query.h for the metrics.
 *
 * Threading: reads the immutable vocabulary only; any thread.
 */
#include "rank.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MARGIN 16
/* 256 rows of 100 floats are 100 KB: they stay in L2 across a batch. */
#define RANK_BLOCK_ROWS 256
#define CAND_MAX (AKV_K_MAX + MARGIN)

struct cand {
    float bad; /* smaller is better: distance, or minus similarity */
    uint32_t id;
};

/* a is worse than b: larger badness, or equal badness and a later word. */
static bool worse(const struct cand *a, const struct cand *b)
{
    return a->bad > b->bad || (a->bad == b->bad && a->id > b->id);
}

/* Max-heap on "worse": the root is the worst candidate kept. */
static void heap_sift_down(struct cand *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_push(struct cand *h, size_t *n, struct cand c)
{
    size_t i = (*n)++;
    h[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            break;
        struct cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* Squared distance and dot product over four-float vectors (GCC/Clang vector
 * extensions: SSE on any x86-64, NEON on arm64, scalar code elsewhere), with
 * two independent accumulators so the adds pipeline. Loads go through
 * memcpy, which compiles to unaligned vector loads. */
typedef float v4f __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float hsum(v4f a)
{
    return (a[0] + a[2]) + (a[1] + a[3]);
}

static float l2sq_f(const float *x, const float *r, uint32_t dim)
{
    v4f a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    uint32_t d = 0;
    float tail = 0;
    for (; d + 8 <= dim; d += 8) {
        v4f t0 = load4(x + d) - load4(r + d), t1 = load4(x + d + 4) - load4(r + d + 4);
        a0 += t0 * t0;
        a1 += t1 * t1;
    }
    if (d + 4 <= dim) {
        v4f t0 = load4(x + d) - load4(r + d);
        a0 += t0 * t0;
        d += 4;
    }
    for (; d < dim; d++) {
        float t = x[d] - r[d];
        tail += t * t;
    }
    return hsum(a0 + a1) + tail;
}

static float dot_f(const float *x, const float *r, uint32_t dim)
{
    v4f a0 = {0, 0, 0, 0}, a1 = {0, 0, 0, 0};
    uint32_t d = 0;
    float tail = 0;
    for (; d + 8 <= dim; d += 8) {
        a0 += load4(x + d) * load4(r + d);
        a1 += load4(x + d + 4) * load4(r + d + 4);
    }
    if (d + 4 <= dim) {
        a0 += load4(x + d) * load4(r + d);
        d += 4;
    }
    for (; d < dim; d++)
        tail += x[d] * r[d];
    return hsum(a0 + a1) + tail;
}

/* The exact score of word id against r, in double. */
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

/* One request's state during a shared scan. */
struct rank_state {
    float rf[AKV_DIM_MAX];     /* r in float, for the scan */
    double rnorm;
    size_t keep, ncand;
    struct cand heap[CAND_MAX];
    struct akv_hit all[CAND_MAX];
};

/* The float badness of row x for a request (smaller is better). */
static float badness(const float *x, float norm, const float *rf, uint32_t dim, enum akv_metric m)
{
    float bad;

    switch (m) {
    case AKV_METRIC_L2:
        bad = l2sq_f(x, rf, dim);
        break;
    case AKV_METRIC_COSINE:
        /* |r| is the same for every word, so ranking by x.r / |x| is
         * ranking by cosine. */
        bad = norm > 0 ? -dot_f(x, rf, dim) / norm : 0.0f;
        break;
    case AKV_METRIC_DOT:
    default:
        bad = -dot_f(x, rf, dim);
        break;
    }
    return bad != bad ? INFINITY : bad; /* NaN from a damaged file ranks last */
}

size_t akv_rank_multi(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n)
{
    size_t count = akv_vocab_count(v), done = 0;
    uint32_t dim = akv_vocab_dim(v);
    const float *mat = akv_vocab_matrix(v), *norms = akv_vocab_norms(v);
    struct rank_state *st;

    if (n == 0)
        return 0;
    st = malloc(n * sizeof *st);
    if (st == NULL) {
        /* Without room for the shared scan, rank one request at a time. */
        if (n == 1)
            return 0;
        for (size_t q = 0; q < n; q++)
            done += akv_rank_multi(v, &reqs[q], 1);
        return done;
    }
    for (size_t q = 0; q < n; q++) {
        double rr = 0;
        unsigned k = reqs[q].k > AKV_K_MAX ? AKV_K_MAX : reqs[q].k;
        for (uint32_t d = 0; d < dim; d++) {
            st[q].rf[d] = (float)reqs[q].r[d];
            rr += reqs[q].r[d] * reqs[q].r[d];
        }
        st[q].rnorm = sqrt(rr);
        st[q].keep = k == 0 ? 0 : (size_t)k + MARGIN;
        if (st[q].keep > count)
            st[q].keep = count;
        st[q].ncand = 0;
    }

    /* Rows in blocks small enough to stay in cache while every request
     * scores them: the matrix is read from memory once for the batch. */
    for (size_t i0 = 0; i0 < count; i0 += RANK_BLOCK_ROWS) {
        size_t i1 = i0 + RANK_BLOCK_ROWS < count ? i0 + RANK_BLOCK_ROWS : count;
        for (size_t q = 0; q < n; q++) {
            struct rank_state *s = &st[q];
            if (s->keep == 0)
                continue;
            for (size_t i = i0; i < i1; i++) {
                struct cand c = {badness(mat + i * dim, norms[i], s->rf, dim, reqs[q].m),
                                 (uint32_t)i};
                if (s->ncand < s->keep) {
                    heap_push(s->heap, &s->ncand, c);
                } else if (worse(&s->heap[0], &c)) {
                    s->heap[0] = c;
                    heap_sift_down(s->heap, s->ncand, 0);
                }
            }
        }
    }

    for (size_t q = 0; q < n; q++) {
        struct rank_state *s = &st[q];
        unsigned k = reqs[q].k > AKV_K_MAX ? AKV_K_MAX : reqs[q].k;
        size_t got;
        for (size_t i = 0; i < s->ncand; i++) {
            s->all[i].id = s->heap[i].id;
            s->all[i].score = exact_score(v, s->heap[i].id, reqs[q].r, s->rnorm, reqs[q].m);
        }
        qsort(s->all, s->ncand, sizeof s->all[0],
              reqs[q].m == AKV_METRIC_L2 ? cmp_hits_l2 : cmp_hits_sim);
        got = s->ncand < k ? s->ncand : k;
        memcpy(reqs[q].hits, s->all, got * sizeof *reqs[q].hits);
        reqs[q].nhits = got;
        done++;
    }
    free(st);
    return done;
}

size_t akv_rank_topk(const struct akv_vocab *v, const double *r, enum akv_metric m, unsigned k,
                     struct akv_hit *hits)
{
    struct akv_rank_req req = {r, m, k, hits, 0};

    if (akv_rank_multi(v, &req, 1) != 1)
        return 0;
    return req.nhits;
}
