/*
 * attn.c - the attention step.
 *
 * One streaming pass over the store's blocks. Within a block the scores are
 * computed first, then the running softmax is rescaled at most once (when the
 * block raises the maximum) and the block's values are accumulated:
 *   m   = max score so far,  z = sum exp(s_i - m),  acc = sum exp(s_i - m) v_i
 * so r = acc / z at the end, with every sum in double. Subtracting the
 * running maximum keeps exp() in range whatever the scores (dot scores of
 * GloVe vectors reach the tens).
 *
 * Threading: reads a snapshot only; any thread holding one.
 */
#include "attn.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MAX 4096 /* the store's chunk size bounds a block */

struct why_heap {
    struct akv_why *h; /* min-heap on (weight as score, then later slot) */
    size_t n, cap;
};

struct attn_state {
    const float *q;
    double qnorm;
    uint32_t dim;
    enum akv_attn_mode mode;
    double inv_tau;
    double m;    /* running maximum score, -INFINITY before the first */
    double z;    /* sum of exp(s - m) */
    double *acc; /* dim doubles */
    size_t attended;
    struct why_heap why; /* keyed by raw score while scanning */
    double scores[BLOCK_MAX];
};

/* a ranks below b: smaller score, or equal score and a later slot. */
static bool below(const struct akv_why *a, const struct akv_why *b)
{
    return a->weight < b->weight || (a->weight == b->weight && a->slot > b->slot);
}

static void why_offer(struct why_heap *w, size_t slot, double score)
{
    struct akv_why c = {slot, score};
    size_t i;

    if (w->cap == 0)
        return;
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

static double dot_d(const float *x, const float *y, uint32_t dim)
{
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t d = 0;
    for (; d + 4 <= dim; d += 4) {
        a0 += (double)x[d] * y[d];
        a1 += (double)x[d + 1] * y[d + 1];
        a2 += (double)x[d + 2] * y[d + 2];
        a3 += (double)x[d + 3] * y[d + 3];
    }
    for (; d < dim; d++)
        a0 += (double)x[d] * y[d];
    return (a0 + a1) + (a2 + a3);
}

static int attn_block(void *arg, size_t n, const float *keys, const float *vals,
                      const float *knorms, const uint8_t *visible, size_t first_slot)
{
    struct attn_state *st = arg;
    uint32_t dim = st->dim;
    double bmax = -INFINITY;

    for (size_t i = 0; i < n; i++) {
        double s;
        if (!visible[i])
            continue;
        s = dot_d(keys + i * dim, st->q, dim);
        if (st->mode == AKV_ATTN_COSINE) {
            double den = (double)knorms[i] * st->qnorm;
            s = den > 0 ? s / den * st->inv_tau : 0.0;
        }
        st->scores[i] = s;
        if (s > bmax)
            bmax = s;
        why_offer(&st->why, first_slot + i, s);
    }
    if (bmax > st->m) {
        double scale = st->m == -INFINITY ? 0.0 : exp(st->m - bmax);
        st->z *= scale;
        for (uint32_t d = 0; d < dim; d++)
            st->acc[d] *= scale;
        st->m = bmax;
    }
    for (size_t i = 0; i < n; i++) {
        const float *v;
        double w;
        if (!visible[i])
            continue;
        w = exp(st->scores[i] - st->m);
        st->z += w;
        v = vals + i * dim;
        for (uint32_t d = 0; d < dim; d++)
            st->acc[d] += w * v[d];
        st->attended++;
    }
    return 0;
}

static int cmp_why(const void *a, const void *b)
{
    const struct akv_why *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

long akv_attn_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  enum akv_attn_mode mode, double tau, double *r, struct akv_why *why,
                    size_t nwhy_max, size_t *nwhy)
{
    struct attn_state *st = malloc(sizeof *st);
    uint32_t dim = akv_store_dim(s);
    size_t attended;

    *nwhy = 0;
    memset(r, 0, dim * sizeof *r);
    if (st == NULL)
        return -ENOMEM;
    st->q = q;
    st->dim = dim;
    st->mode = mode;
    st->inv_tau = tau > 0 ? 1.0 / tau : 1.0;
    st->qnorm = sqrt(dot_d(q, q, dim));
    st->m = -INFINITY;
    st->z = 0;
    st->acc = r; /* accumulate in place, normalised below */
    st->attended = 0;
    st->why.h = why;
    st->why.n = 0;
    st->why.cap = nwhy_max;

    akv_store_scan(s, snap, attn_block, st);
    attended = st->attended;
    if (attended > 0) {
        for (uint32_t d = 0; d < dim; d++)
            r[d] /= st->z;
        /* Turn the kept raw scores into weights, best first. */
        for (size_t i = 0; i < st->why.n; i++)
            why[i].weight = exp(why[i].weight - st->m) / st->z;
        qsort(why, st->why.n, sizeof *why, cmp_why);
        *nwhy = st->why.n;
    }
    free(st);
    return (long)attended;
}
