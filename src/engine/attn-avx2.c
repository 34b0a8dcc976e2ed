/*
 * attn-avx2.c - the attention kernels built with AVX2 (-mavx2, no FMA) (attn-kernels.h).
 */
#define AKV_ATTN_KERNEL_BODIES 1
#include "engine/attn-kernels.h"

static void dots_avx2(const float *mat, uint32_t dim, const double *qs, size_t nq,
                      const uint32_t *ids, size_t n, const uint32_t *slot, double *out)
{
    dots_body(mat, dim, qs, nq, ids, n, slot, out);
}

static void accumulate_avx2(double *rs, size_t nq, const float *mat, uint32_t dim,
                            const uint32_t *ids, size_t n, const uint32_t *slot, const double *w)
{
    accumulate_body(rs, nq, mat, dim, ids, n, slot, w);
}

static void exp_block_avx2(const double *s, double c, double *w, size_t n)
{
    exp_block_body(s, c, w, n);
}

const struct akv_attn_kernels akv_attn_kernels_avx2 = {dots_avx2, accumulate_avx2, exp_block_avx2};
