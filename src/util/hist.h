/*
 * hist.h - a latency histogram with log-linear buckets (in the manner of
 * HdrHistogram): values 0..127 have a bucket each, and every power-of-two
 * range above is split into 64 equal buckets, so any value is known to
 * within 1/64 (1.6 %) of itself, from a microsecond to centuries, in a fixed
 * array of AKV_HIST_BUCKETS counters. Recording is O(1) with no allocation.
 *
 * Pure: no I/O, no clock, no locks. Threading: the caller serialises access
 * (the daemon uses it on the loop thread only).
 */
#ifndef ATTNKV_HIST_H
#define ATTNKV_HIST_H

#include <stddef.h>
#include <stdint.h>

#define AKV_HIST_SUB_BITS 7 /* 2^7 = 128 exact buckets, then 64 per octave */
#define AKV_HIST_BUCKETS                                                                           \
    ((1u << AKV_HIST_SUB_BITS) + (64 - AKV_HIST_SUB_BITS) * (1u << (AKV_HIST_SUB_BITS - 1)))

struct akv_hist {
    uint64_t count;
    uint64_t sum; /* saturates instead of wrapping */
    uint64_t min, max;
    uint64_t buckets[AKV_HIST_BUCKETS];
};

/* Empties h. */
void akv_hist_reset(struct akv_hist *h);

/* Counts one value. */
void akv_hist_record(struct akv_hist *h, uint64_t v);

/* The bucket v falls in, 0..AKV_HIST_BUCKETS-1. */
size_t akv_hist_bucket(uint64_t v);

/* The smallest and largest values of bucket i. */
uint64_t akv_hist_bucket_low(size_t i);
uint64_t akv_hist_bucket_high(size_t i);

/* The value at quantile q (0 < q <= 1; 0.5 is the median): the largest
 * value of the bucket that holds the ceil(q * count)-th smallest recorded
 * value, clamped to [min, max], so it is never below the true quantile and
 * at most 1/64 above it, and q = 1 gives the maximum. 0 when h is empty. */
uint64_t akv_hist_quantile(const struct akv_hist *h, double q);

/* The values at n quantiles at once (qs ascending, each as for
 * akv_hist_quantile) into out[0..n), in one pass over the buckets between
 * those of min and max: what a caller that wants several percentiles of
 * many histograms uses. */
void akv_hist_quantiles(const struct akv_hist *h, const double *qs, size_t n, uint64_t *out);

/* The mean, 0 when empty. */
double akv_hist_mean(const struct akv_hist *h);

#endif
