/*
 * attn-portable.c - the attention kernels for the baseline instruction set (attn-kernels.h).
 */
#define AKV_ATTN_KERNEL_BODIES 1
#include "engine/attn-kernels.h"

static void dots_portable(const float *mat, uint32_t dim, const double *qs, size_t nq,
                          const uint32_t *ids, size_t n, const uint32_t *slot, double *out)
{
    dots_body(mat, dim, qs, nq, ids, n, slot, out);
}

static void accumulate_portable(double *rs, size_t nq, const float *mat, uint32_t dim,
                                const uint32_t *ids, size_t n, const uint32_t *slot,
                                const double *w)
{
    accumulate_body(rs, nq, mat, dim, ids, n, slot, w);
}

static void exp_block_portable(const double *s, double c, double *w, size_t n)
{
    exp_block_body(s, c, w, n);
}

const struct akv_attn_kernels akv_attn_kernels_portable = {dots_portable, accumulate_portable,
                                                           exp_block_portable};
