/*
 * rank-avx2.c - the ranking scan with AVX2 and FMA (-mavx2 -mfma) (rank-kernels.h).
 */
#include "engine/rank-kernels.h"

#include <immintrin.h>

void akv_rank_scan_avx2(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0, size_t b1)
{
    const uint8_t *hs = akv_vocab_sketch(s->v), *ts = akv_vocab_sketch_tail(s->v);
    uint32_t groups = s->groups;
    const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);

    for (size_t blk = b0; blk < b1; blk++) {
        const float *in = akv_sketch_block_info(hs, s->head, blk);
        unsigned lanes = block_lanes(s, blk);
        for (size_t j = 0; j < s->n; j++) {
            const struct rank_query *q = &s->q[j];
            __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
            int32_t dots[AKV_SKETCH_ROWS];
            if (q->k == 0 || pp[j].oom || blk * AKV_SKETCH_ROWS >= q->limit)
                continue;
            for (uint32_t g = 0; g < groups; g++) {
                const uint8_t *x = akv_sketch_group(hs, ts, s->dim, s->head, blk, g);
                __m256i d = _mm256_set1_epi32(q->packed[g]);
                __m256i da = _mm256_abs_epi8(d);
                __m256i xl =
                    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)x), flip);
                __m256i xh = _mm256_xor_si256(
                    _mm256_loadu_si256((const __m256i *)(const void *)(x + 32)), flip);
                lo = _mm256_add_epi32(
                    lo, _mm256_madd_epi16(_mm256_maddubs_epi16(da, _mm256_sign_epi8(xl, d)), ones));
                hi = _mm256_add_epi32(
                    hi, _mm256_madd_epi16(_mm256_maddubs_epi16(da, _mm256_sign_epi8(xh, d)), ones));
            }
            _mm256_storeu_si256((__m256i *)(void *)dots, lo);
            _mm256_storeu_si256((__m256i *)(void *)(dots + 8), hi);
            finish_block(q, &pp[j], in, blk * AKV_SKETCH_ROWS, lanes, dots);
        }
    }
}

/* The sum of a vector's eight lanes. */
static inline float hsum_avx2(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void akv_rank_dots_avx2(const float *x, const float *u, unsigned nt, uint32_t dim, float *out)
{
    unsigned t = 0;

    for (; t + 3 <= nt; t += 3) {
        const float *u0 = u + (size_t)t * dim, *u1 = u0 + dim, *u2 = u1 + dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();
        uint32_t d = 0;
        for (; d + 8 <= dim; d += 8) {
            __m256 xv = _mm256_loadu_ps(x + d);
            a0 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(u0 + d), a0);
            a1 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(u1 + d), a1);
            a2 = _mm256_fmadd_ps(xv, _mm256_loadu_ps(u2 + d), a2);
        }
        out[t] = hsum_avx2(a0);
        out[t + 1] = hsum_avx2(a1);
        out[t + 2] = hsum_avx2(a2);
        for (; d < dim; d++) {
            out[t] += x[d] * u0[d];
            out[t + 1] += x[d] * u1[d];
            out[t + 2] += x[d] * u2[d];
        }
    }
    for (; t < nt; t++) {
        const float *u0 = u + (size_t)t * dim;
        __m256 a0 = _mm256_setzero_ps();
        uint32_t d = 0;
        for (; d + 8 <= dim; d += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + d), _mm256_loadu_ps(u0 + d), a0);
        out[t] = hsum_avx2(a0);
        for (; d < dim; d++)
            out[t] += x[d] * u0[d];
    }
}
