/*
 * rank-kernels.h - what the ranking scan's kernels share with rank.c: the
 * scan's state (per request, per part), the survivors and thresholds every
 * kernel feeds (inline, so that each kernel's build compiles them with its
 * own instructions), and the kernels themselves, one file each with its own
 * target flags (src/engine/meson.build):
 *   rank-portable.c  C, any CPU
 *   rank-avx2.c      AVX2 + FMA (vpmaddubsw, vpmaddwd)
 *   rank-avx512.c    AVX-512 F, BW and VNNI (vpdpbusd)
 * rank.c picks one at run time from the CPU's features. Every kernel
 * computes the integer sums c.d exactly, so the answer never depends on
 * the kernel (see rank.c).
 *
 * Private to src/engine/.
 */
#ifndef ATTNKV_RANK_KERNELS_H
#define ATTNKV_RANK_KERNELS_H

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rank.h"
#include "engine/sketch.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AKV_RANK_X86 1
#endif

/* No fused multiply-adds where the code does not ask for them (GCC does
 * not contract in ISO C mode, which meson.build asks for; this stops
 * Clang). */
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
    float rb, db;       /* the bounds' multipliers (infinite: prune nothing) */
    int32_t corr;       /* 128 * sum of codes: the VNNI kernel reads codes + 128 */
    int32_t corr_head;  /* the same over the head groups only, */
    int32_t corr_tail;  /* and over the tail groups */
    float qb, qrb, qdb; /* b, rb, db; doubled for l2, whose bound is 2 (r.x) - |x|^2 */
    int32_t *packed;
    int8_t *codes;
    uint32_t limit;       /* words with ids below it may be answered (the count: all) */
    const uint32_t *skip; /* sorted ids that may not be */
    size_t nskip;
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

static inline void lb_sift_down(float *h, size_t n, size_t i)
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
static inline float lb_offer(float *h, size_t *n, unsigned k, float lo)
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

static inline void surv_push(struct rank_part *p, uint32_t id, float hi)
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
static inline void take(const struct rank_query *q, struct rank_part *p, const float *info,
                        size_t id0, unsigned mask, const int32_t *dots, const float *hi)
{
    while (mask != 0) {
        unsigned lane = (unsigned)__builtin_ctz(mask);
        float approx = (float)dots[lane] * q->sq.b * info[lane];
        float e = q->rb * info[16 + lane] + q->db * info[32 + lane];
        float n = info[32 + lane], lo;

        mask &= mask - 1;
        /* A word that may not be answered must not raise the threshold
         * either: it is simply not seen. */
        if (id0 + lane >= q->limit ||
            (q->nskip > 0 && !akv_rank_admits((uint32_t)(id0 + lane), 0, q->skip, q->nskip)))
            continue;
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
static inline unsigned block_lanes(const struct akv_rank_scan *s, size_t blk)
{
    size_t left = akv_vocab_count(s->v) - blk * AKV_SKETCH_ROWS;
    return left >= AKV_SKETCH_ROWS ? 0xffffu : (1u << left) - 1;
}

/* The scalar epilogue of the portable and AVX2 kernels. */
static inline void finish_block(const struct rank_query *q, struct rank_part *p, const float *info,
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

/* Scores blocks [b0, b1) for every request of s into the part's pp. */
void akv_rank_scan_portable(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0,
                            size_t b1);
#ifdef AKV_RANK_X86
void akv_rank_scan_avx2(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0, size_t b1);
/* out[t] = x.u_t in float for the nt vectors u_t = u + t dim (3CosMul's
 * estimates; rank.c bounds their error). */
void akv_rank_dots_avx2(const float *x, const float *u, unsigned nt, uint32_t dim, float *out);
void akv_rank_scan_avx512(const struct akv_rank_scan *s, struct rank_part *pp, size_t b0,
                          size_t b1);
#endif

#endif
