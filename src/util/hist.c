/*
 * hist.c - log-linear latency histogram (see hist.h).
 *
 * Bucket layout, with S = AKV_HIST_SUB_BITS and H = 2^(S-1):
 *   v < 2^S:  bucket v (exact);
 *   v >= 2^S: let e = floor(log2 v) and shift = e - S + 1 >= 1; the top S
 *             bits of v, m = v >> shift, lie in [H, 2H); the bucket is
 *             2^S + (shift - 1) * H + (m - H) and holds the values
 *             [m << shift, ((m + 1) << shift) - 1].
 * Consecutive ranges meet exactly, so every uint64_t has one bucket, and a
 * bucket is never wider than 1/H of its smallest value.
 *
 * Invariants: count is the sum of buckets; min and max are exact.
 */
#include "util/hist.h"

#include <math.h>
#include <string.h>

#define S AKV_HIST_SUB_BITS
#define H (1u << (S - 1))

void akv_hist_reset(struct akv_hist *h)
{
    memset(h, 0, sizeof(*h));
}

static unsigned log2_floor(uint64_t v)
{
    return 63u - (unsigned)__builtin_clzll(v);
}

size_t akv_hist_bucket(uint64_t v)
{
    unsigned shift;

    if (v < (1u << S))
        return (size_t)v;
    shift = log2_floor(v) - S + 1;
    return (1u << S) + (size_t)(shift - 1) * H + (size_t)((v >> shift) - H);
}

uint64_t akv_hist_bucket_low(size_t i)
{
    size_t shift;

    if (i < (1u << S))
        return i;
    shift = (i - (1u << S)) / H + 1;
    return (uint64_t)(H + (i - (1u << S)) % H) << shift;
}

uint64_t akv_hist_bucket_high(size_t i)
{
    size_t shift;

    if (i < (1u << S))
        return i;
    if (i + 1 >= AKV_HIST_BUCKETS)
        return UINT64_MAX;
    shift = (i - (1u << S)) / H + 1;
    return akv_hist_bucket_low(i) + ((uint64_t)1 << shift) - 1;
}

void akv_hist_record(struct akv_hist *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum = h->sum + v < h->sum ? UINT64_MAX : h->sum + v;
    h->buckets[akv_hist_bucket(v)]++;
}

uint64_t akv_hist_quantile(const struct akv_hist *h, double q)
{
    uint64_t rank, seen = 0, v;
    size_t i;

    if (h->count == 0)
        return 0;
    if (!(q > 0))
        return h->min;
    if (q >= 1)
        return h->max;
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (i = 0; i < AKV_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank)
            break;
    }
    if (i == AKV_HIST_BUCKETS)
        return h->max;
    v = akv_hist_bucket_high(i);
    if (v > h->max)
        v = h->max;
    if (v < h->min)
        v = h->min;
    return v;
}

void akv_hist_quantiles(const struct akv_hist *h, const double *qs, size_t n, uint64_t *out)
{
    uint64_t seen = 0;
    size_t i, k = 0, last;

    if (h->count == 0) {
        for (k = 0; k < n; k++)
            out[k] = 0;
        return;
    }
    /* The ones at the ends need no walk. */
    while (k < n && !(qs[k] > 0))
        out[k++] = h->min;
    i = akv_hist_bucket(h->min);
    last = akv_hist_bucket(h->max);
    for (; k < n && qs[k] < 1 && i <= last; i++) {
        seen += h->buckets[i];
        for (; k < n && qs[k] < 1; k++) {
            uint64_t rank = (uint64_t)ceil(qs[k] * (double)h->count), v;
            if (rank < 1)
                rank = 1;
            if (seen < rank)
                break;
            v = akv_hist_bucket_high(i);
            out[k] = v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
    for (; k < n; k++)
        out[k] = h->max;
}

double akv_hist_mean(const struct akv_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
