/*
 * attn-avx512.c - the attention kernels built with AVX-512F (-mavx2 -mavx512f) (attn-kernels.h).
 */
#define AKV_ATTN_KERNEL_BODIES 1
#include "engine/attn-kernels.h"

/* Eight doubles a vector, and a batch's queries share each conversion of a
 * row to double. Every sum gets the operations of the portable kernels in
 * the same order, so the same bits: dot_body's two
 * accumulators of four lanes are the two halves of one of eight, finished
 * the same way; the row sums compute r_d + (w0 x0_d + w1 x1_d) for every d
 * as acc_pair does. */
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

#define LOAD8F(dst, p)                                                                             \
    do {                                                                                           \
        v8f t8_;                                                                                   \
        memcpy(&t8_, (p), sizeof t8_);                                                             \
        (dst) = __builtin_convertvector(t8_, v8d);                                                 \
    } while (0)

/* out[t] = x . q_t for the NT queries at qs (NT a constant where it is
 * inlined: the accumulators stay in registers). */
ALWAYS_INLINE void dots_tile(const float *x, const double *qs, uint32_t dim, double *out, size_t nt)
{
    v8d acc[8], xv, qv;
    uint32_t d = 0;

    for (size_t t = 0; t < nt; t++)
        acc[t] = (v8d){0, 0, 0, 0, 0, 0, 0, 0};
    for (; d + 8 <= dim; d += 8) {
        LOAD8F(xv, x + d);
        for (size_t t = 0; t < nt; t++) {
            memcpy(&qv, qs + t * dim + d, sizeof qv);
            acc[t] += xv * qv;
        }
    }
    for (size_t t = 0; t < nt; t++) {
        v4d a0 = {acc[t][0], acc[t][1], acc[t][2], acc[t][3]};
        v4d a1 = {acc[t][4], acc[t][5], acc[t][6], acc[t][7]};
        out[t] = dot_finish(&a0, &a1, x, qs + t * dim, d, dim);
    }
}

static void dots_avx512(const float *mat, uint32_t dim, const double *qs, size_t nq,
                        const uint32_t *ids, size_t n, const uint32_t *slot, double *out)
{
    for (size_t j = 0; j < n; j++) {
        const float *x = mat + (size_t)ids[j] * dim;
        double *o = out + table_at(slot, nq, ids[j]);
        size_t b = 0;
        if (j + PREFETCH_AHEAD < n)
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD] * dim, dim);
        for (; b + 8 <= nq; b += 8)
            dots_tile(x, qs + b * dim, dim, o + b, 8);
        for (; b + 4 <= nq; b += 4)
            dots_tile(x, qs + b * dim, dim, o + b, 4);
        for (; b < nq; b++)
            dots_tile(x, qs + b * dim, dim, o + b, 1);
    }
}

/* r_b += w0[b] x0 + w1[b] x1 for every query b, each pair of rows converted
 * once for the whole batch. */
static void accumulate_avx512(double *rs, size_t nq, const float *mat, uint32_t dim,
                              const uint32_t *ids, size_t n, const uint32_t *slot, const double *w)
{
    size_t j = 0;

    for (; j + 2 <= n; j += 2) {
        const float *x0 = mat + (size_t)ids[j] * dim, *x1 = mat + (size_t)ids[j + 1] * dim;
        const double *w0 = w + table_at(slot, nq, ids[j]);
        const double *w1 = w + table_at(slot, nq, ids[j + 1]);
        v8d xv0, xv1, acc;
        uint32_t d = 0;
        if (j + PREFETCH_AHEAD + 1 < n) {
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD] * dim, dim);
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD + 1] * dim, dim);
        }
        for (; d + 8 <= dim; d += 8) {
            LOAD8F(xv0, x0 + d);
            LOAD8F(xv1, x1 + d);
            for (size_t b = 0; b < nq; b++) {
                double *r = rs + b * dim + d;
                v8d wv0 = {w0[b], w0[b], w0[b], w0[b], w0[b], w0[b], w0[b], w0[b]};
                v8d wv1 = {w1[b], w1[b], w1[b], w1[b], w1[b], w1[b], w1[b], w1[b]};
                memcpy(&acc, r, sizeof acc);
                acc += wv0 * xv0 + wv1 * xv1;
                memcpy(r, &acc, sizeof acc);
            }
        }
        for (; d < dim; d++)
            for (size_t b = 0; b < nq; b++)
                rs[b * dim + d] += w0[b] * x0[d] + w1[b] * x1[d];
    }
    accumulate_rest(rs, nq, mat, dim, ids, j, n, slot, w);
}

static void exp_block_avx512(const double *s, double c, double *w, size_t n)
{
    exp_block_body(s, c, w, n);
}

const struct akv_attn_kernels akv_attn_kernels_avx512 = {dots_avx512, accumulate_avx512,
                                                         exp_block_avx512};
