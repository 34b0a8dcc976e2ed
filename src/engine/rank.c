/*
 * rank.c - nearest vocabulary words to a vector, exactly, without reading
 * most of the vectors.
 *
 * Design. Scores are turned around so that larger is better for every
 * metric: dot r.x, cosine r.x / |x| (|r| is common to every word), and for
 * l2 2 r.x - |x|^2 (= |r|^2 - |x - r|^2). The scan reads the int8 sketch of
 * the vocabulary (src/sketch.h: a quarter of the matrix's bytes), which for
 * each word gives an interval [lo, hi] that surely holds its score. Each
 * request keeps
 *   - thr, the k-th largest lower bound seen so far: the true k-th best
 *     score is at least thr, so a word with hi < thr cannot be in the
 *     answer and is dropped;
 *   - the survivors (hi >= thr when seen), compacted as thr rises.
 * At the end the survivors with hi >= the final thr are rescored exactly, in
 * double from the float vectors, and sorted (ties by word id). Every word of
 * the exact top k survives, so the answer is the exhaustive double ranking,
 * whatever the kernel. Only a handful of words per query typically survive,
 * so the matrix is touched only for them.
 *
 * Bounds. hi and lo are a b (c.d) +- (R e + D n) (sketch.h), computed in
 * float; AKV_SKETCH_MU of slack, relative to R (n + e), is already folded
 * into R and D and covers the rounding of the few float operations here
 * (each at most 2^-24 relative, about 1e-6 in all). For l2 the |x|^2 term
 * gets its own 2 MU. A NaN bound never drops a word (comparisons are
 * "not below"), so damaged or non-finite rows reach the exact step, where a
 * NaN score ranks last.
 *
 * Kernels. c.d is an integer sum, computed exactly by any of three kernels:
 * AVX-512 VNNI (one vpdpbusd per 16 words x 4 dimensions, four requests per
 * pass over a block that stays in L1), AVX2 (vpmaddubsw on |d| and c signed
 * like d, then vpmaddwd; no saturation since |c|, |d| <= 127), and portable
 * C. The choice is made at run time from the CPU's features.
 *
 * Batches and parts. One scan serves many requests: each 16-word block is
 * read once and scored by all of them, so memory traffic is shared. Several
 * threads can also share one scan: the vocabulary is cut into chunks of
 * CHUNK_BLOCKS blocks, which the threads (each a "part", with its own
 * thresholds and survivors) claim in order from a shared counter, so they
 * all work on the frequent words first and none waits for a slow one. At
 * the end the parts are merged (the k-th largest lower bound of the union
 * is at least each part's). Between chunks a part publishes its thresholds
 * and adopts the others' when they are higher: any part's threshold is a
 * lower bound on the true k-th best score, so discarding below the highest
 * of them is as safe as discarding below one's own, and a part that joins
 * late starts with the others' warm thresholds instead of minus infinity.
 * Which words survive then depends on timing; the answer does not.
 *
 * Threading: the vocabulary is immutable. During akv_rank_scan_work, a part
 * writes only its own struct rank_part entries and its own published
 * thresholds, reads the shared per-request data that begin wrote, and takes
 * chunks from an atomic counter; the published thresholds are relaxed
 * atomics (any value ever published is a valid bound, so no ordering is
 * needed). end reads everything, after the owner has synchronised with
 * every thread that ran a part. The kernel choice is a relaxed atomic, set
 * before scans run.
 */
#include "engine/rank.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RANK_X86 1
#endif

#include "engine/sketch.h"

/* exact_score and exact_score4 must give the same bits: no fused
 * multiply-adds (GCC does not contract in ISO C mode, which meson.build
 * asks for; Clang would within an expression). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define SURV_INITIAL 1024

/* Blocks a part claims at a time: 2,048 words, about 0.1 ms of a batch's
 * scan, so parts finish close together and the per-chunk exchange of
 * thresholds costs nothing measurable. */
#define CHUNK_BLOCKS 128

struct surv {
    uint32_t id;
    float hi;
};

/* Per request; written by begin, read by every part. */
struct rank_query {
    const double *r;
    enum akv_metric m;
    unsigned k; /* min(k, AKV_K_MAX); 0: nothing to rank */
    struct akv_sketch_query sq;
    float rb, db; /* the bounds' multipliers (infinite: prune nothing) */
    int32_t corr; /* 128 * sum of codes: the VNNI kernel reads codes + 128 */
    int32_t corr_head; /* the same over the head groups only, */
    int32_t corr_tail; /* and over the tail groups */
    float qb, qrb, qdb; /* b, rb, db; doubled for l2, whose bound is 2 (r.x) - |x|^2 */
    int32_t *packed;
    int8_t *codes;
};

/* Per request and part; written only by the thread scanning that part. */
struct rank_part {
    float thr;
    float *lb; /* min-heap of the k largest lower bounds */
    size_t nlb;
    struct surv *sv;
    size_t nsv, cap;
    int oom;
};

struct akv_rank_scan {
    const struct akv_vocab *v;
    struct akv_rank_req *reqs;
    size_t n;
    unsigned nparts;
    uint32_t dim, groups;
    uint32_t head; /* groups in the sketch's head (== groups: no split) */
    size_t nblocks;
    struct rank_query *q;
    struct rank_part *parts; /* nparts x n, part-major */
    _Atomic float *pub;      /* nparts x n: each part's threshold, written by it alone */
    atomic_size_t next;      /* the next chunk to claim */
    int32_t *packed;
    int8_t *codes;
    float *lbs;
};

/* ------------------------------------------------------------------------
 * Survivors and thresholds (shared by every kernel).
 */

static void lb_sift_down(float *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l] < h[m])
            m = l;
        if (r < n && h[r] < h[m])
            m = r;
        if (m == i)
            return;
        float t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Offers a lower bound to a min-heap holding the k largest; returns the
 * threshold it implies (-inf until k bounds were seen). */
static float lb_offer(float *h, size_t *n, unsigned k, float lo)
{
    if (lo != lo)
        return *n == k ? h[0] : -INFINITY;
    if (*n < k) {
        size_t i = (*n)++;
        h[i] = lo;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!(h[i] < h[p]))
                break;
            float t = h[i];
            h[i] = h[p];
            h[p] = t;
            i = p;
        }
    } else if (lo > h[0]) {
        h[0] = lo;
        lb_sift_down(h, *n, 0);
    }
    return *n == k ? h[0] : -INFINITY;
}

static void surv_push(struct rank_part *p, uint32_t id, float hi)
{
    if (p->nsv == p->cap) {
        size_t j = 0;
        /* thr only rises: drop what it now excludes before growing. */
        for (size_t i = 0; i < p->nsv; i++)
            if (!(p->sv[i].hi < p->thr))
                p->sv[j++] = p->sv[i];
        p->nsv = j;
        if (p->nsv > p->cap / 2 || p->cap == 0) {
            size_t cap = p->cap ? 2 * p->cap : SURV_INITIAL;
            struct surv *sv = realloc(p->sv, cap * sizeof *sv);
            if (sv == NULL) {
                p->oom = 1;
                return;
            }
            p->sv = sv;
            p->cap = cap;
        }
    }
    p->sv[p->nsv++] = (struct surv){id, hi};
}

/* The upper bound of one word, in float (portable and AVX2 kernels; the
 * AVX-512 kernel computes the same expression sixteen words at a time). */
static inline float upper_bound(const struct rank_query *q, const float *info, unsigned lane,
                                int32_t dot)
{
    float approx = (float)dot * q->sq.b * info[lane];
    float e = q->rb * info[16 + lane] + q->db * info[32 + lane];
    float n = info[32 + lane];

    switch (q->m) {
    case AKV_METRIC_COSINE:
        return (approx + e) * info[48 + lane];
    case AKV_METRIC_L2:
        return 2 * (approx + e) - n * n * (float)(1 - 2 * AKV_SKETCH_MU);
    case AKV_METRIC_DOT:
    default:
        return approx + e;
    }
}

/* Words of a block whose upper bound passed: keep them, and let their lower
 * bounds raise the threshold. dots are the exact integer dot products. */
static void take(const struct rank_query *q, struct rank_part *p, const float *info, size_t id0,
                 unsigned mask, const int32_t *dots, const float *hi)
{
    while (mask != 0) {
        unsigned lane = (unsigned)__builtin_ctz(mask);
        float approx = (float)dots[lane] * q->sq.b * info[lane];
        float e = q->rb * info[16 + lane] + q->db * info[32 + lane];
        float n = info[32 + lane], lo;

        mask &= mask - 1;
        switch (q->m) {
        case AKV_METRIC_COSINE:
            lo = (approx - e) * info[48 + lane];
            break;
        case AKV_METRIC_L2:
            lo = 2 * (approx - e) - n * n * (float)(1 + 2 * AKV_SKETCH_MU);
            break;
        case AKV_METRIC_DOT:
        default:
            lo = approx - e;
            break;
        }
        surv_push(p, (uint32_t)(id0 + lane), hi[lane]);
        /* thr may stand above this part's own k-th lower bound when it
         * was adopted from another part (akv_rank_scan_work). */
        lo = lb_offer(p->lb, &p->nlb, q->k, lo);
        if (lo > p->thr)
            p->thr = lo;
    }
}

/* Lanes of block blk that hold words. */
static unsigned block_lanes(const struct akv_rank_scan *s, size_t blk)
{
    size_t left = akv_vocab_count(s->v) - blk * AKV_SKETCH_ROWS;
    return left >= AKV_SKETCH_ROWS ? 0xffffu : (1u << left) - 1;
}

/* The scalar epilogue of the portable and AVX2 kernels. */
static void finish_block(const struct rank_query *q, struct rank_part *p, const float *info,
                         size_t id0, unsigned lanes, const int32_t *dots)
{
    float hi[AKV_SKETCH_ROWS];
    unsigned mask = 0;

    for (unsigned l = 0; l < AKV_SKETCH_ROWS; l++) {
        hi[l] = upper_bound(q, info, l, dots[l]);
        if (!(hi[l] < p->thr))
            mask |= 1u << l;
    }
    mask &= lanes;
    if (mask != 0)
        take(q, p, info, id0, mask, dots, hi);
}

/* ------------------------------------------------------------------------
 * Kernels: scan blocks [b0, b1) for every request, into parts pp[0..n).
 */

static void scan_portable(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0,
                          size_t b1)
{
    const uint8_t *hs = akv_vocab_sketch(s->v), *ts = akv_vocab_sketch_tail(s->v);
    uint32_t groups = s->groups;

    for (size_t blk = b0; blk < b1; blk++) {
        const float *in = akv_sketch_block_info(hs, s->head, blk);
        unsigned lanes = block_lanes(s, blk);
        for (size_t j = 0; j < s->n; j++) {
            const struct rank_query *q = &s->q[j];
            int32_t dots[AKV_SKETCH_ROWS] = {0};
            if (q->k == 0 || pp[j].oom)
                continue;
            for (uint32_t g = 0; g < groups; g++) {
                const uint8_t *x = akv_sketch_group(hs, ts, s->dim, s->head, blk, g);
                const int8_t *c = q->codes + 4 * g;
                for (unsigned l = 0; l < AKV_SKETCH_ROWS; l++)
                    dots[l] += (x[4 * l] - 128) * c[0] + (x[4 * l + 1] - 128) * c[1] +
                               (x[4 * l + 2] - 128) * c[2] + (x[4 * l + 3] - 128) * c[3];
            }
            finish_block(q, &pp[j], in, blk * AKV_SKETCH_ROWS, lanes, dots);
        }
    }
}

#ifdef RANK_X86

#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vnni")))

TARGET_AVX2 static void scan_avx2(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0,
                                  size_t b1)
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
            if (q->k == 0 || pp[j].oom)
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

/* The upper bounds of 16 words of one request, from their integer dot
 * products (or, for the head stage, a bound on them) in float. */
TARGET_AVX512 static inline __attribute__((always_inline)) __m512
hi_avx512(const struct rank_query *q, const float *in, __m512 dot)
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
TARGET_AVX512 static inline __attribute__((always_inline)) __mmask16
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
TARGET_AVX512 static inline __attribute__((always_inline)) void
epi_avx512(const struct rank_query *q, struct rank_part *p, const float *in, size_t id0,
           __mmask16 lanes, __m512i acc)
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
TARGET_AVX512 static inline __attribute__((always_inline)) __m512i
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
TARGET_AVX512 static void pend_flush(const struct akv_rank_scan *s, struct rank_part *pp,
                                     struct pending *pd)
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
TARGET_AVX512 static inline __attribute__((always_inline)) void
head_avx512(const struct akv_rank_scan *s, struct rank_part *pp, struct pending *pd, size_t j,
            size_t blk, const uint8_t *tail, const float *in, __mmask16 lanes, __m512i acc)
{
    if (head_pass_avx512(&s->q[j], &pp[j], in, lanes, acc) == 0)
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

TARGET_AVX512 static void scan_avx512(const struct akv_rank_scan *s, struct rank_part *pp,
                                      size_t b0, size_t b1)
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

#endif /* RANK_X86 */

/* ------------------------------------------------------------------------
 * Kernel selection.
 */

static atomic_int kernel_choice = -1;

static bool kernel_supported(enum akv_rank_kernel k)
{
    switch (k) {
    case AKV_RANK_PORTABLE:
        return true;
#ifdef RANK_X86
    case AKV_RANK_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case AKV_RANK_AVX512VNNI:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
#endif
    default:
        return false;
    }
}

static enum akv_rank_kernel kernel_best(void)
{
    if (kernel_supported(AKV_RANK_AVX512VNNI))
        return AKV_RANK_AVX512VNNI;
    if (kernel_supported(AKV_RANK_AVX2))
        return AKV_RANK_AVX2;
    return AKV_RANK_PORTABLE;
}

const char *akv_rank_kernel_name(enum akv_rank_kernel k)
{
    switch (k) {
    case AKV_RANK_AVX2:
        return "avx2";
    case AKV_RANK_AVX512VNNI:
        return "avx512vnni";
    case AKV_RANK_PORTABLE:
    default:
        return "portable";
    }
}

int akv_rank_set_kernel(const char *name)
{
    enum akv_rank_kernel k;

    if (strcmp(name, "auto") == 0) {
        k = kernel_best();
    } else if (strcmp(name, "portable") == 0) {
        k = AKV_RANK_PORTABLE;
    } else if (strcmp(name, "avx2") == 0) {
        k = AKV_RANK_AVX2;
    } else if (strcmp(name, "avx512vnni") == 0) {
        k = AKV_RANK_AVX512VNNI;
    } else {
        return -EINVAL;
    }
    if (!kernel_supported(k))
        return -ENOTSUP;
    atomic_store_explicit(&kernel_choice, (int)k, memory_order_relaxed);
    return 0;
}

enum akv_rank_kernel akv_rank_kernel(void)
{
    int k = atomic_load_explicit(&kernel_choice, memory_order_relaxed);

    if (k < 0) {
        const char *env = getenv("AKV_RANK_KERNEL");
        /* An unknown or unsupported name in the environment falls back to
         * the automatic choice rather than failing a query. */
        if (env == NULL || akv_rank_set_kernel(env) < 0)
            atomic_store_explicit(&kernel_choice, (int)kernel_best(), memory_order_relaxed);
        k = atomic_load_explicit(&kernel_choice, memory_order_relaxed);
    }
    return (enum akv_rank_kernel)k;
}

/* ------------------------------------------------------------------------
 * Scans.
 */

/* The exact score of word id against r, in double (larger is better is not
 * applied here: l2 is a distance). */
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

int akv_rank_scan_begin(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n,
                        unsigned nparts, struct akv_rank_scan **out)
{
    struct akv_rank_scan *s;
    uint32_t dim = akv_vocab_dim(v), groups = akv_sketch_groups(dim);
    size_t count = akv_vocab_count(v), lbtotal = 0;
    const double *rot;
    double eps;

    *out = NULL;
    if (nparts == 0)
        nparts = 1;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->v = v;
    s->reqs = reqs;
    s->n = n;
    s->nparts = nparts;
    s->groups = groups;
    s->dim = dim;
    s->nblocks = akv_sketch_blocks(count);
    rot = akv_vocab_sketch_rotation(v, &eps, &s->head);
    for (size_t j = 0; j < n; j++) {
        unsigned k = reqs[j].k > AKV_K_MAX ? AKV_K_MAX : reqs[j].k;
        lbtotal += k;
    }
    s->q = calloc(n ? n : 1, sizeof *s->q);
    s->parts = calloc(n > 0 ? n * nparts : 1, sizeof *s->parts);
    s->packed = malloc((n ? n : 1) * groups * sizeof *s->packed);
    s->codes = malloc((n ? n : 1) * groups * 4);
    s->lbs = malloc((lbtotal ? lbtotal : 1) * nparts * sizeof *s->lbs);
    s->pub = malloc((n ? n : 1) * nparts * sizeof *s->pub);
    if (s->q == NULL || s->parts == NULL || s->packed == NULL || s->codes == NULL ||
        s->lbs == NULL || s->pub == NULL) {
        akv_rank_scan_end(s);
        return -ENOMEM;
    }
    float *lb = s->lbs;
    for (size_t j = 0; j < n; j++) {
        struct rank_query *q = &s->q[j];
        q->r = reqs[j].r;
        q->m = reqs[j].m;
        q->k = reqs[j].k > AKV_K_MAX ? AKV_K_MAX : reqs[j].k;
        q->packed = s->packed + j * groups;
        q->codes = s->codes + j * groups * 4;
        akv_sketch_query(q->r, dim, rot, eps, s->head, &q->sq, q->packed, q->codes);
        q->corr = 128 * q->sq.sum;
        q->corr_head = 0;
        for (uint32_t d = 0; d < 4 * s->head && d < 4 * groups; d++)
            q->corr_head += 128 * q->codes[d];
        q->corr_tail = q->corr - q->corr_head;
        q->rb = q->sq.finite ? q->sq.rbound : INFINITY;
        q->db = q->sq.finite ? q->sq.dbound : INFINITY;
        q->qb = q->m == AKV_METRIC_L2 ? 2 * q->sq.b : q->sq.b;
        q->qrb = q->m == AKV_METRIC_L2 ? 2 * q->rb : q->rb;
        q->qdb = q->m == AKV_METRIC_L2 ? 2 * q->db : q->db;
        for (unsigned p = 0; p < nparts; p++) {
            struct rank_part *pp = &s->parts[p * n + j];
            pp->thr = -INFINITY;
            pp->lb = lb;
            lb += q->k;
            atomic_init(&s->pub[p * n + j], -INFINITY);
        }
    }
    atomic_init(&s->next, 0);
    *out = s;
    return 0;
}

/* Before a chunk: every request's threshold becomes the highest any part
 * has published, if that is above the part's own. */
static void adopt_thresholds(struct akv_rank_scan *s, unsigned part, struct rank_part *pp)
{
    for (size_t j = 0; j < s->n; j++) {
        float t = pp[j].thr;
        for (unsigned p = 0; p < s->nparts; p++) {
            float o = atomic_load_explicit(&s->pub[p * s->n + j], memory_order_relaxed);
            if (p != part && o > t)
                t = o;
        }
        pp[j].thr = t;
    }
}

void akv_rank_scan_work(struct akv_rank_scan *s, unsigned part)
{
    size_t nchunks = (s->nblocks + CHUNK_BLOCKS - 1) / CHUNK_BLOCKS;
    struct rank_part *pp = &s->parts[(size_t)part * s->n];
    enum akv_rank_kernel kernel = akv_rank_kernel();

    for (;;) {
        size_t c = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed), b0, b1;
        if (c >= nchunks)
            break;
        b0 = c * CHUNK_BLOCKS;
        b1 = b0 + CHUNK_BLOCKS < s->nblocks ? b0 + CHUNK_BLOCKS : s->nblocks;
        if (s->nparts > 1)
            adopt_thresholds(s, part, pp);
        switch (kernel) {
#ifdef RANK_X86
        case AKV_RANK_AVX512VNNI:
            scan_avx512(s, pp, b0, b1);
            break;
        case AKV_RANK_AVX2:
            scan_avx2(s, pp, b0, b1);
            break;
#endif
        case AKV_RANK_PORTABLE:
        default:
            scan_portable(s, pp, b0, b1);
            break;
        }
        if (s->nparts > 1)
            for (size_t j = 0; j < s->n; j++)
                atomic_store_explicit(&s->pub[(size_t)part * s->n + j], pp[j].thr,
                                      memory_order_relaxed);
    }
}

/* Merges the parts of request j, rescores its survivors and writes its
 * hits. Returns 0 or -ENOMEM. */
/* An exact score as a hit's: NaN (from a damaged row) ranks last. */
static double nan_last(double sc, enum akv_metric m)
{
    return sc == sc ? sc : m == AKV_METRIC_L2 ? INFINITY : -INFINITY;
}

double akv_rank_norm(const double *r, uint32_t dim)
{
    double rr = 0;
    for (uint32_t d = 0; d < dim; d++)
        rr += r[d] * r[d];
    return sqrt(rr);
}

/* exact_score of four words at once: each sum runs in exact_score's order
 * with exact_score's operations, so the results are the same bits; the four
 * independent sums only hide each other's addition latency. */
static void exact_score4(const struct akv_vocab *v, const uint32_t *id, const double *r,
                         double rnorm, enum akv_metric m, double *out)
{
    const float *x0 = akv_vocab_vec(v, id[0]), *x1 = akv_vocab_vec(v, id[1]);
    const float *x2 = akv_vocab_vec(v, id[2]), *x3 = akv_vocab_vec(v, id[3]);
    uint32_t dim = akv_vocab_dim(v);
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, n0 = 0, n1 = 0, n2 = 0, n3 = 0;

    switch (m) {
    case AKV_METRIC_L2:
        for (uint32_t d = 0; d < dim; d++) {
            double t0 = (double)x0[d] - r[d], t1 = (double)x1[d] - r[d];
            double t2 = (double)x2[d] - r[d], t3 = (double)x3[d] - r[d];
            a0 += t0 * t0;
            a1 += t1 * t1;
            a2 += t2 * t2;
            a3 += t3 * t3;
        }
        out[0] = sqrt(a0), out[1] = sqrt(a1), out[2] = sqrt(a2), out[3] = sqrt(a3);
        return;
    case AKV_METRIC_COSINE:
        for (uint32_t d = 0; d < dim; d++) {
            a0 += (double)x0[d] * r[d];
            n0 += (double)x0[d] * x0[d];
            a1 += (double)x1[d] * r[d];
            n1 += (double)x1[d] * x1[d];
            a2 += (double)x2[d] * r[d];
            n2 += (double)x2[d] * x2[d];
            a3 += (double)x3[d] * r[d];
            n3 += (double)x3[d] * x3[d];
        }
        out[0] = (n0 > 0 && rnorm > 0) ? a0 / (sqrt(n0) * rnorm) : 0.0;
        out[1] = (n1 > 0 && rnorm > 0) ? a1 / (sqrt(n1) * rnorm) : 0.0;
        out[2] = (n2 > 0 && rnorm > 0) ? a2 / (sqrt(n2) * rnorm) : 0.0;
        out[3] = (n3 > 0 && rnorm > 0) ? a3 / (sqrt(n3) * rnorm) : 0.0;
        return;
    case AKV_METRIC_DOT:
    default:
        for (uint32_t d = 0; d < dim; d++) {
            a0 += (double)x0[d] * r[d];
            a1 += (double)x1[d] * r[d];
            a2 += (double)x2[d] * r[d];
            a3 += (double)x3[d] * r[d];
        }
        out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3;
        return;
    }
}

/* Keeps in hits[0..*n) (room for k) the best hits offered so far, in
 * order: an insertion, since k is small next to the number offered. */
static void offer_hit(struct akv_hit *hits, size_t *n, unsigned k, struct akv_hit h,
                      int (*cmp)(const void *, const void *))
{
    size_t i = *n;

    if (i == k) {
        if (cmp(&h, &hits[k - 1]) >= 0)
            return;
        i--;
    } else {
        (*n)++;
    }
    while (i > 0 && cmp(&h, &hits[i - 1]) < 0) {
        hits[i] = hits[i - 1];
        i--;
    }
    hits[i] = h;
}

void akv_rank_rescore(const struct akv_vocab *v, const double *r, double rnorm, enum akv_metric m,
                      unsigned k, const uint32_t *ids, size_t n, struct akv_hit *hits,
                      size_t *nhits)
{
    int (*cmp)(const void *, const void *) = m == AKV_METRIC_L2 ? cmp_hits_l2 : cmp_hits_sim;
    double sc[4];
    size_t i = 0;

    if (k == 0)
        return;
    for (; i + 4 <= n; i += 4) {
        exact_score4(v, ids + i, r, rnorm, m, sc);
        for (unsigned t = 0; t < 4; t++)
            offer_hit(hits, nhits, k, (struct akv_hit){ids[i + t], nan_last(sc[t], m)}, cmp);
    }
    for (; i < n; i++)
        offer_hit(hits, nhits, k,
                  (struct akv_hit){ids[i], nan_last(exact_score(v, ids[i], r, rnorm, m), m)},
                  cmp);
}

static int finish_request(struct akv_rank_scan *s, size_t j)
{
    const struct rank_query *q = &s->q[j];
    struct akv_rank_req *req = &s->reqs[j];
    struct rank_part *p0 = &s->parts[j];
    size_t total = 0, nall = 0;
    struct akv_hit *all;
    double rnorm;
    float thr;
    uint32_t dim = akv_vocab_dim(s->v);

    req->nhits = 0;
    if (q->k == 0)
        return 0;
    /* The threshold of the union: the k-th largest of all lower bounds. */
    thr = p0->thr;
    for (unsigned p = 0; p < s->nparts; p++) {
        struct rank_part *pp = &s->parts[(size_t)p * s->n + j];
        if (pp->oom)
            return -ENOMEM;
        total += pp->nsv;
        if (p > 0)
            for (size_t i = 0; i < pp->nlb; i++)
                thr = lb_offer(p0->lb, &p0->nlb, q->k, pp->lb[i]);
    }
    all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL)
        return -ENOMEM;
    rnorm = akv_rank_norm(q->r, dim);
    for (unsigned p = 0; p < s->nparts; p++) {
        struct rank_part *pp = &s->parts[(size_t)p * s->n + j];
        for (size_t i = 0; i < pp->nsv; i++)
            if (!(pp->sv[i].hi < thr))
                all[nall++] = (struct akv_hit){
                    pp->sv[i].id, nan_last(exact_score(s->v, pp->sv[i].id, q->r, rnorm, q->m), q->m)};
    }
    qsort(all, nall, sizeof *all, q->m == AKV_METRIC_L2 ? cmp_hits_l2 : cmp_hits_sim);
    req->nhits = nall < q->k ? nall : q->k;
    memcpy(req->hits, all, req->nhits * sizeof *all);
    free(all);
    return 0;
}

int akv_rank_scan_end(struct akv_rank_scan *s)
{
    int rc = 0;

    if (s == NULL)
        return 0;
    if (s->q != NULL && s->parts != NULL && s->packed != NULL && s->codes != NULL &&
        s->lbs != NULL) {
        for (size_t j = 0; j < s->n && rc == 0; j++)
            rc = finish_request(s, j);
    }
    if (s->parts != NULL)
        for (size_t i = 0; i < s->n * s->nparts; i++)
            free(s->parts[i].sv);
    free(s->q);
    free(s->parts);
    free(s->packed);
    free(s->codes);
    free(s->lbs);
    free(s->pub);
    free(s);
    return rc;
}

size_t akv_rank_many(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n)
{
    struct akv_rank_scan *s;

    if (n == 0 || akv_rank_scan_begin(v, reqs, n, 1, &s) < 0)
        return 0;
    akv_rank_scan_work(s, 0);
    if (akv_rank_scan_end(s) < 0) {
        for (size_t j = 0; j < n; j++)
            reqs[j].nhits = 0;
        return 0;
    }
    return n;
}

size_t akv_rank_topk(const struct akv_vocab *v, const double *r, enum akv_metric m, unsigned k,
                     struct akv_hit *hits)
{
    struct akv_rank_req req = {r, m, k, hits, 0};

    if (akv_rank_many(v, &req, 1) != 1)
        return 0;
    return req.nhits;
}
