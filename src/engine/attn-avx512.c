/*
 * attn-avx512.c - the attention kernels built with AVX-512F and FMA
 * (attn-kernels.h): eight doubles a vector.
 *
 * Dot products: a row's eight lanes are the canonical order's eight partial
 * sums; eight queries at a time keep their sums in registers over the whole
 * row (each chunk of the row converted once for the eight), and the eight
 * sums are reduced together, two by two, in the canonical tree, leaving the
 * eight results in query order in one vector. Row sums: tiles of four
 * queries by 32 dimensions stay in registers while a block of rows
 * (converted to double once, in an L1-sized buffer) goes by.
 */
#define AKV_ATTN_KERNEL_BODIES 1
#include "engine/attn-kernels.h"

#include <immintrin.h>

/* [a_l + a_(l+4)] for l < 4 of a, then of b: the tree's first level for two
 * queries. */
static inline __m512d tree_pair(__m512d a, __m512d b)
{
    return _mm512_add_pd(_mm512_shuffle_f64x2(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f64x2(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}

/* The eight dot products of acc[0..7] (queries 0..7), in order. */
static inline __m512d tree8(const __m512d *acc)
{
    __m512d p0 = tree_pair(acc[0], acc[2]), p1 = tree_pair(acc[4], acc[6]);
    __m512d p2 = tree_pair(acc[1], acc[3]), p3 = tree_pair(acc[5], acc[7]);
    /* Second level: [t0 + t2, t1 + t3] per query; q0 q2 q4 q6, then odd. */
    __m512d e = _mm512_add_pd(_mm512_shuffle_f64x2(p0, p1, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f64x2(p0, p1, _MM_SHUFFLE(3, 1, 3, 1)));
    __m512d o = _mm512_add_pd(_mm512_shuffle_f64x2(p2, p3, _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f64x2(p2, p3, _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_pd(_mm512_unpacklo_pd(e, o), _mm512_unpackhi_pd(e, o));
}

static inline double tree1(__m512d a)
{
    __m256d t = _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
    __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    return _mm_cvtsd_f64(u) + _mm_cvtsd_f64(_mm_unpackhi_pd(u, u));
}

/* Eight floats of a row as doubles; past the row's end (n < 8 left) zeros. */
static inline __m512d load8f(const float *x, uint32_t left)
{
    if (left >= 8)
        return _mm512_cvtps_pd(_mm256_loadu_ps(x));
    return _mm512_cvtps_pd(
        _mm512_castps512_ps256(_mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1), x)));
}

static void dots_avx512(const float *mat, uint32_t dim, const double *qs, size_t nq,
                        const uint32_t *ids, size_t n, const uint32_t *slot, double *out)
{
    size_t pad = AKV_ATTN_PAD(dim);

    for (size_t j = 0; j < n; j++) {
        const float *x = mat + (size_t)ids[j] * dim;
        double *o = out + table_at(slot, nq, ids[j]);
        size_t b = 0;
        if (j + PREFETCH_AHEAD < n)
            prefetch_row(mat + (size_t)ids[j + PREFETCH_AHEAD] * dim, dim);
        for (; b + 8 <= nq; b += 8) {
            const double *q = qs + b * pad;
            __m512d acc[8];
            for (int t = 0; t < 8; t++)
                acc[t] = _mm512_setzero_pd();
            for (size_t d = 0; d < pad; d += 8) {
                __m512d xv = load8f(x + d, dim - (uint32_t)d);
                for (int t = 0; t < 8; t++)
                    acc[t] = _mm512_fmadd_pd(xv, _mm512_loadu_pd(q + t * pad + d), acc[t]);
            }
            _mm512_storeu_pd(o + b, tree8(acc));
        }
        for (; b + 2 <= nq; b += 2) {
            const double *q = qs + b * pad;
            __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
            for (size_t d = 0; d < pad; d += 8) {
                __m512d xv = load8f(x + d, dim - (uint32_t)d);
                a0 = _mm512_fmadd_pd(xv, _mm512_loadu_pd(q + d), a0);
                a1 = _mm512_fmadd_pd(xv, _mm512_loadu_pd(q + pad + d), a1);
            }
            o[b] = tree1(a0);
            o[b + 1] = tree1(a1);
        }
        for (; b < nq; b++) {
            const double *q = qs + b * pad;
            __m512d a0 = _mm512_setzero_pd();
            for (size_t d = 0; d < pad; d += 8)
                a0 = _mm512_fmadd_pd(load8f(x + d, dim - (uint32_t)d), _mm512_loadu_pd(q + d), a0);
            o[b] = tree1(a0);
        }
    }
}

/* A tile of Q queries (from b0) by C chunks of eight dimensions (from c0)
 * over the jn rows in buf (stride pad), weights w[j * nq + b]. */
#define ACC_TILE(Q, C)                                                                             \
    static void acc_tile_##Q##_##C(double *rs, size_t nq, size_t pad, const double *buf,           \
                                   size_t jn, const double *w, size_t b0, size_t c0)               \
    {                                                                                              \
        __m512d acc[Q][C];                                                                         \
        for (int q = 0; q < Q; q++)                                                                \
            for (int c = 0; c < C; c++)                                                            \
                acc[q][c] = _mm512_loadu_pd(rs + (b0 + q) * pad + (c0 + c) * 8);                   \
        for (size_t j = 0; j < jn; j++) {                                                          \
            __m512d x[C];                                                                          \
            for (int c = 0; c < C; c++)                                                            \
                x[c] = _mm512_loadu_pd(buf + j * pad + (c0 + c) * 8);                              \
            for (int q = 0; q < Q; q++) {                                                          \
                __m512d wv = _mm512_set1_pd(w[j * nq + b0 + q]);                                   \
                for (int c = 0; c < C; c++)                                                        \
                    acc[q][c] = _mm512_fmadd_pd(wv, x[c], acc[q][c]);                              \
            }                                                                                      \
        }                                                                                          \
        for (int q = 0; q < Q; q++)                                                                \
            for (int c = 0; c < C; c++)                                                            \
                _mm512_storeu_pd(rs + (b0 + q) * pad + (c0 + c) * 8, acc[q][c]);                   \
    }
ACC_TILE(4, 4)
ACC_TILE(4, 1)
ACC_TILE(1, 4)
ACC_TILE(1, 1)

static void accumulate_avx512(double *rs, size_t nq, const float *mat, uint32_t dim,
                              const uint32_t *ids, size_t n, const double *w)
{
    double buf[ROWBUF_DOUBLES];
    size_t pad = AKV_ATTN_PAD(dim), nc = pad / 8, jb = ROWBUF_DOUBLES / pad;

    if (jb > 32)
        jb = 32;
    for (size_t j0 = 0; j0 < n; j0 += jb) {
        size_t jn = n - j0 < jb ? n - j0 : jb;
        for (size_t j = 0; j < jn; j++) {
            const float *x = mat + (size_t)ids[j0 + j] * dim;
            if (j0 + j + PREFETCH_AHEAD < n)
                prefetch_row(mat + (size_t)ids[j0 + j + PREFETCH_AHEAD] * dim, dim);
            for (size_t d = 0; d < pad; d += 8)
                _mm512_storeu_pd(buf + j * pad + d, load8f(x + d, dim - (uint32_t)d));
        }
        const double *wj = w + j0 * nq;
        size_t b = 0;
        for (; b + 4 <= nq; b += 4) {
            size_t c = 0;
            for (; c + 4 <= nc; c += 4)
                acc_tile_4_4(rs, nq, pad, buf, jn, wj, b, c);
            for (; c < nc; c++)
                acc_tile_4_1(rs, nq, pad, buf, jn, wj, b, c);
        }
        for (; b < nq; b++) {
            size_t c = 0;
            for (; c + 4 <= nc; c += 4)
                acc_tile_1_4(rs, nq, pad, buf, jn, wj, b, c);
            for (; c < nc; c++)
                acc_tile_1_1(rs, nq, pad, buf, jn, wj, b, c);
        }
    }
}

static void exp_block_avx512(const double *s, double c, double *w, size_t n)
{
    exp_block_body(s, c, w, n);
}

const struct akv_attn_kernels akv_attn_kernels_avx512 = {dots_avx512, accumulate_avx512,
                                                         exp_block_avx512};
