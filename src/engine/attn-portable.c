/*
 * attn-portable.c - the attention kernels for the baseline instruction set
 * (attn-kernels.h): plain C, one fma() per product.
 */
#define AKV_ATTN_KERNEL_BODIES 1
#include "engine/attn-kernels.h"

static void dots_portable(const float *mat, uint32_t dim, const double *qs, size_t nq,
                          const uint32_t *ids, size_t n, const uint32_t *slot, double *out)
{
    double x[ROWBUF_DOUBLES];
    size_t pad = AKV_ATTN_PAD(dim);

    for (size_t j = 0; j < n; j++) {
        double *o = out + table_at(slot, nq, ids[j]);
        row_to_double(x, mat + (size_t)ids[j] * dim, dim);
        for (size_t b = 0; b < nq; b++)
            o[b] = dot_portable_one(x, qs + b * pad, pad);
    }
}

static void accumulate_portable(double *rs, size_t nq, const float *mat, uint32_t dim,
                                const uint32_t *ids, size_t n, const double *w)
{
    size_t pad = AKV_ATTN_PAD(dim);

    for (size_t j = 0; j < n; j++) {
        const float *x = mat + (size_t)ids[j] * dim;
        for (size_t b = 0; b < nq; b++) {
            double wb = w[j * nq + b], *r = rs + b * pad;
            for (uint32_t d = 0; d < dim; d++)
                r[d] = fma(wb, (double)x[d], r[d]);
        }
    }
}

static void exp_block_portable(const double *s, double c, double *w, size_t n)
{
    exp_block_body(s, c, w, n);
}

const struct akv_attn_kernels akv_attn_kernels_portable = {dots_portable, accumulate_portable,
                                                           exp_block_portable};
