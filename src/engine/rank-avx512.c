/*
 * rank-avx512.c - the ranking scan with AVX-512 VNNI (-mavx2 -mfma -mavx512f -mavx512bw
 * -mavx512vnni) (rank-kernels.h).
 */
#include "engine/rank-kernels.h"

#include <immintrin.h>

/* The upper bounds of 16 words of one request, from their integer dot
 * products (or, for the head stage, a bound on them) in float. */
static inline __attribute__((always_inline)) __m512 hi_avx512(const struct rank_query *q,
                                                              const float *in, __m512 dot)
{
    /* (a b) dot + (rb e + db n), doubled for l2 through the per-request
     * factors, in three fused operations. */
    __m512 n = _mm512_loadu_ps(in + 32);
    __m512 e = _mm512_fmadd_ps(_mm512_set1_ps(q->qrb), _mm512_loadu_ps(in + 16),
                               _mm512_mul_ps(_mm512_set1_ps(q->qdb), n));
    __m512 hi = _mm512_fmadd_ps(dot, _mm512_mul_ps(_mm512_loadu_ps(in), _mm512_set1_ps(q->qb)), e);

    if (q->m == AKV_METRIC_COSINE)
        hi = _mm512_mul_ps(hi, _mm512_loadu_ps(in + 48));
    else if (q->m == AKV_METRIC_L2)
        hi = _mm512_fnmadd_ps(_mm512_mul_ps(n, n), _mm512_set1_ps((float)(1 - 2 * AKV_SKETCH_MU)),
                              hi);
    return hi;
}

/* The head stage: which words may still pass once their tail is known.
 * acc holds the exact dot products over the head groups (the accumulators
 * start at minus the code-offset correction); the tail's contribution is
 * bounded by |c_tail| |d_tail|. */
static inline __attribute__((always_inline)) __mmask16
head_pass_avx512(const struct rank_query *q, const struct rank_part *p, const float *in,
                 __mmask16 lanes, __m512i acc)
{
    __m512 dot = _mm512_fmadd_ps(_mm512_loadu_ps(in + 64), _mm512_set1_ps(q->sq.tbound),
                                 _mm512_cvtepi32_ps(acc));
    return _mm512_mask_cmp_ps_mask(lanes, hi_avx512(q, in, dot), _mm512_set1_ps(p->thr),
                                   _CMP_NLT_UQ);
}

/* The full bound of 16 words of one request from their exact head dot
 * products plus the VNNI sums (codes + 128) of the tail; the words that
 * pass are taken. */
static inline __attribute__((always_inline)) void epi_avx512(const struct rank_query *q,
                                                             struct rank_part *p, const float *in,
                                                             size_t id0, __mmask16 lanes,
                                                             __m512i acc)
{
    __m512i dot = _mm512_sub_epi32(acc, _mm512_set1_epi32(q->corr_tail));
    __m512 hi = hi_avx512(q, in, _mm512_cvtepi32_ps(dot));
    __mmask16 pass = _mm512_mask_cmp_ps_mask(lanes, hi, _mm512_set1_ps(p->thr), _CMP_NLT_UQ);

    if (pass != 0) {
        int32_t dots[AKV_SKETCH_ROWS];
        float his[AKV_SKETCH_ROWS];
        _mm512_storeu_si512((void *)dots, dot);
        _mm512_storeu_ps(his, hi);
        take(q, p, in, id0, pass, dots, his);
    }
}

/* VNNI sums of one request on one block over groups [g0, g1), added to acc;
 * two accumulators so consecutive vpdpbusd do not wait on each other. */
static inline __attribute__((always_inline)) __m512i
dots1_avx512(__m512i acc, const uint8_t *cb, const int32_t *p0, uint32_t g0, uint32_t g1)
{
    __m512i a1 = _mm512_setzero_si512();
    uint32_t g = g0;

    for (; g + 2 <= g1; g += 2) {
        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512((const void *)(cb + g * 64)),
                                  _mm512_set1_epi32(p0[g]));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512((const void *)(cb + g * 64 + 64)),
                                 _mm512_set1_epi32(p0[g + 1]));
    }
    if (g < g1)
        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512((const void *)(cb + g * 64)),
                                  _mm512_set1_epi32(p0[g]));
    return _mm512_add_epi32(acc, a1);
}

/* Blocks whose head test passed, waiting for their tail. A tail lies
 * wherever its block is in a 17 MB section, so reading it at once would
 * stall on memory (and follow a mispredicted branch) each time; instead the
 * kernel notes the block, asks for its tail lines, and goes on with the
 * head section, finishing the noted blocks a little later when their tails
 * have arrived. The thresholds the head tests use may then lag a little
 * behind, which is safe: a lower threshold discards less, never more. */
#define PEND_MAX 256
#define PEND_FLUSH 16 /* finish the noted blocks once this many wait */

struct pending {
    __m512i acc[PEND_MAX]; /* the exact head sums */
    uint32_t req[PEND_MAX];
    size_t blk[PEND_MAX];
    size_t n;
};

/* Finishes every noted block: its tail, the full bound, the words taken. */
static void pend_flush(const struct akv_rank_scan *s, struct rank_part *pp, struct pending *pd)
{
    const uint8_t *hs = akv_vocab_sketch(s->v), *ts = akv_vocab_sketch_tail(s->v);
    size_t hrec = akv_sketch_head_rec(s->head), trec = akv_sketch_tail_rec(s->dim, s->head);

    for (size_t i = 0; i < pd->n; i++) {
        size_t j = pd->req[i], blk = pd->blk[i];
        const struct rank_query *q = &s->q[j];
        const float *in = (const float *)(const void *)(hs + blk * hrec + (size_t)s->head * 64);
        /* The tail's first group is numbered s->head. */
        const uint8_t *tail = ts + blk * trec - (size_t)s->head * 64;
        __m512i acc = dots1_avx512(pd->acc[i], tail, q->packed, s->head, s->groups);
        epi_avx512(q, &pp[j], in, blk * AKV_SKETCH_ROWS, (__mmask16)block_lanes(s, blk), acc);
    }
    pd->n = 0;
}

/* One request, one block, given its head sums: the head test; a block with
 * a word still in the running is noted for its tail. */
static inline __attribute__((always_inline)) void
head_avx512(const struct akv_rank_scan *s, struct rank_part *pp, struct pending *pd, size_t j,
            size_t blk, const uint8_t *tail, const float *in, __mmask16 lanes, __m512i acc)
{
    if (blk * AKV_SKETCH_ROWS >= s->q[j].limit ||
        head_pass_avx512(&s->q[j], &pp[j], in, lanes, acc) == 0)
        return;
    if (pd->n == PEND_MAX)
        pend_flush(s, pp, pd);
    for (size_t off = 0; off < akv_sketch_tail_rec(s->dim, s->head); off += 64)
        _mm_prefetch((const char *)tail + off, _MM_HINT_T0);
    pd->acc[pd->n] = acc;
    pd->req[pd->n] = (uint32_t)j;
    pd->blk[pd->n] = blk;
    pd->n++;
}

/* Blocks ahead of the scan whose head records the tile loop prefetches. */
#define PREFETCH_AHEAD 8

void akv_rank_scan_avx512(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0, size_t b1)
{
    const uint8_t *hs = akv_vocab_sketch(s->v), *ts = akv_vocab_sketch_tail(s->v);
    uint32_t head = s->head;
    size_t n = s->n, hrec = akv_sketch_head_rec(head), trec = akv_sketch_tail_rec(s->dim, head);
    struct pending pend, *pd = &pend; /* 19 KB of a stack of megabytes */

    pd->n = 0;
    for (size_t blk = b0; blk < b1;) {
        /* Two blocks at a time when there are two: each request's head
         * codes are broadcast once for 32 words, and four requests share
         * each load, so one load or broadcast feeds two vpdpbusd. The head
         * section is one sequential stream (head codes and row information
         * of each block in turn), which the hardware prefetcher follows. */
        size_t nb = blk + 1 < b1 ? 2 : 1, j = 0;
        const uint8_t *hb = hs + blk * hrec, *tb = ts + blk * trec;
        __mmask16 l0 = (__mmask16)block_lanes(s, blk);
        __mmask16 l1 = nb == 2 ? (__mmask16)block_lanes(s, blk + 1) : 0;
        const float *in0 = (const float *)(const void *)(hb + (size_t)head * 64);
        const float *in1 = (const float *)(const void *)(hb + hrec + (size_t)head * 64);
        /* With four requests or more, the loads of the tile loop below
         * alone do not keep the hardware prefetcher ahead of the scan:
         * batches of exactly four ran 2.5 times slower per request than
         * batches of five (whose single-request loop reads each block again
         * in order). Asking for the blocks eight ahead into L2 evens that
         * out; with fewer requests the scan streams well as it is, and the
         * extra requests only slowed it down. */
        if (n >= 4 && blk + PREFETCH_AHEAD + 2 <= s->nblocks)
            for (size_t off = 0; off < 2 * hrec; off += 64)
                _mm_prefetch((const char *)hb + PREFETCH_AHEAD * hrec + off, _MM_HINT_T1);

        for (; nb == 2 && j + 4 <= n; j += 4) {
            const int32_t *p0 = s->q[j].packed, *p1 = s->q[j + 1].packed;
            const int32_t *p2 = s->q[j + 2].packed, *p3 = s->q[j + 3].packed;
            __m512i a0 = _mm512_set1_epi32(-s->q[j].corr_head);
            __m512i a1 = _mm512_set1_epi32(-s->q[j + 1].corr_head);
            __m512i a2 = _mm512_set1_epi32(-s->q[j + 2].corr_head);
            __m512i a3 = _mm512_set1_epi32(-s->q[j + 3].corr_head);
            __m512i c0 = a0, c1 = a1, c2 = a2, c3 = a3;
            for (uint32_t g = 0; g < head; g++) {
                __m512i x = _mm512_loadu_si512((const void *)(hb + g * 64));
                __m512i y = _mm512_loadu_si512((const void *)(hb + hrec + g * 64));
                __m512i d0 = _mm512_set1_epi32(p0[g]), d1 = _mm512_set1_epi32(p1[g]);
                __m512i d2 = _mm512_set1_epi32(p2[g]), d3 = _mm512_set1_epi32(p3[g]);
                a0 = _mm512_dpbusd_epi32(a0, x, d0);
                c0 = _mm512_dpbusd_epi32(c0, y, d0);
                a1 = _mm512_dpbusd_epi32(a1, x, d1);
                c1 = _mm512_dpbusd_epi32(c1, y, d1);
                a2 = _mm512_dpbusd_epi32(a2, x, d2);
                c2 = _mm512_dpbusd_epi32(c2, y, d2);
                a3 = _mm512_dpbusd_epi32(a3, x, d3);
                c3 = _mm512_dpbusd_epi32(c3, y, d3);
            }
            const __m512i acc[2][4] = {{a0, a1, a2, a3}, {c0, c1, c2, c3}};
            for (unsigned h = 0; h < 2; h++)
                for (unsigned t = 0; t < 4; t++)
                    if (s->q[j + t].k && !pp[j + t].oom)
                        head_avx512(s, pp, pd, j + t, blk + h, tb + h * trec, h ? in1 : in0,
                                    h ? l1 : l0, acc[h][t]);
        }
        for (; j < n; j++) {
            if (s->q[j].k == 0 || pp[j].oom)
                continue;
            for (unsigned h = 0; h < nb; h++)
                head_avx512(s, pp, pd, j, blk + h, tb + h * trec, h ? in1 : in0, h ? l1 : l0,
                            dots1_avx512(_mm512_set1_epi32(-s->q[j].corr_head), hb + h * hrec,
                                         s->q[j].packed, 0, head));
        }
        blk += nb;
        if (pd->n >= PEND_FLUSH)
            pend_flush(s, pp, pd);
    }
    pend_flush(s, pp, pd);
}
