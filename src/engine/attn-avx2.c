/*
 * attn-avx2.c - the attention kernels built with AVX2 and FMA (attn-kernels.h):
 * four doubles a vector, so the canonical order's eight lanes are two
 * vectors (lanes 0-3, 4-7). Four queries at a time share each chunk of a
 * row; the row sums use tiles of two queries by 16 dimensions.
 */
#define AKV_ATTN_KERNEL_BODIES 1
#include "engine/attn-kernels.h"

#include <immintrin.h>

static inline double tree2(__m256d lo, __m256d hi)
{
    __m256d t = _mm256_add_pd(lo, hi);
    __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    return _mm_cvtsd_f64(u) + _mm_cvtsd_f64(_mm_unpackhi_pd(u, u));
}

static void dots_avx2(const float *mat, uint32_t dim, const double *qs, size_t nq,
                      const uint32_t *ids, size_t n, const uint32_t *slot, double *out)
{
    double x[ROWBUF_DOUBLES];
    size_t pad = AKV_ATTN_PAD(dim);

    for (size_t j = 0; j < n; j++) {
        double *o = out + table_at(slot, nq, ids[j]);
        size_t b = 0;
        if (j + PREFETCH_AHEAD < n)
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD] * dim, dim);
        row_to_double(x, mat + (size_t)ids[j] * dim, dim);
        for (; b + 4 <= nq; b += 4) {
            const double *q = qs + b * pad;
            __m256d lo[4], hi[4];
            for (int t = 0; t < 4; t++)
                lo[t] = hi[t] = _mm256_setzero_pd();
            for (size_t d = 0; d < pad; d += 8) {
                __m256d x0 = _mm256_loadu_pd(x + d), x1 = _mm256_loadu_pd(x + d + 4);
                for (int t = 0; t < 4; t++) {
                    lo[t] = _mm256_fmadd_pd(x0, _mm256_loadu_pd(q + t * pad + d), lo[t]);
                    hi[t] = _mm256_fmadd_pd(x1, _mm256_loadu_pd(q + t * pad + d + 4), hi[t]);
                }
            }
            for (int t = 0; t < 4; t++)
                o[b + t] = tree2(lo[t], hi[t]);
        }
        for (; b < nq; b++) {
            const double *q = qs + b * pad;
            __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
            for (size_t d = 0; d < pad; d += 8) {
                lo = _mm256_fmadd_pd(_mm256_loadu_pd(x + d), _mm256_loadu_pd(q + d), lo);
                hi = _mm256_fmadd_pd(_mm256_loadu_pd(x + d + 4), _mm256_loadu_pd(q + d + 4), hi);
            }
            o[b] = tree2(lo, hi);
        }
    }
}

static void accumulate_avx2(double *rs, size_t nq, const float *mat, uint32_t dim,
                            const uint32_t *ids, size_t n, const double *w)
{
    double buf[ROWBUF_DOUBLES];
    size_t pad = AKV_ATTN_PAD(dim), jb = ROWBUF_DOUBLES / pad;

    if (jb > 32)
        jb = 32;
    for (size_t j0 = 0; j0 < n; j0 += jb) {
        size_t jn = n - j0 < jb ? n - j0 : jb;
        for (size_t j = 0; j < jn; j++) {
            if (j0 + j + PREFETCH_AHEAD < n)
                prefetch_row(mat + (size_t)ids[j0 + j + PREFETCH_AHEAD] * dim, dim);
            row_to_double(buf + j * pad, mat + (size_t)ids[j0 + j] * dim, dim);
        }
        for (size_t b = 0; b < nq; b++) {
            double *r = rs + b * pad;
            for (size_t d = 0; d < pad; d += 16) {
                size_t nc = pad - d >= 16 ? 4 : 2;
                __m256d a[4];
                for (size_t c = 0; c < nc; c++)
                    a[c] = _mm256_loadu_pd(r + d + 4 * c);
                for (size_t j = 0; j < jn; j++) {
                    __m256d wv = _mm256_set1_pd(w[(j0 + j) * nq + b]);
                    for (size_t c = 0; c < nc; c++)
                        a[c] =
                            _mm256_fmadd_pd(wv, _mm256_loadu_pd(buf + j * pad + d + 4 * c), a[c]);
                }
                for (size_t c = 0; c < nc; c++)
                    _mm256_storeu_pd(r + d + 4 * c, a[c]);
            }
        }
    }
}

static void exp_block_avx2(const double *s, double c, double *w, size_t n)
{
    exp_block_body(s, c, w, n);
}

const struct akv_attn_kernels akv_attn_kernels_avx2 = {dots_avx2, accumulate_avx2, exp_block_avx2};
