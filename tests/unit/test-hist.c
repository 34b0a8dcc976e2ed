/*
 * test-hist.c - the log-linear latency histogram (src/util/hist.c): bucket
 * boundaries, relative error, quantiles against an exact sort.
 */
#include <check.h>

#include "runsuite.h"
#include <stdint.h>
#include <stdlib.h>

#include "util/hist.h"

START_TEST(test_buckets_contiguous)
{
    /* Every bucket starts right after the previous one ends. */
    ck_assert_uint_eq(akv_hist_bucket_low(0), 0);
    for (size_t i = 1; i < AKV_HIST_BUCKETS; i++)
        ck_assert_uint_eq(akv_hist_bucket_low(i), akv_hist_bucket_high(i - 1) + 1);
    ck_assert_uint_eq(akv_hist_bucket_high(AKV_HIST_BUCKETS - 1), UINT64_MAX);
    ck_assert_uint_eq(akv_hist_bucket(UINT64_MAX), AKV_HIST_BUCKETS - 1);
}
END_TEST

START_TEST(test_bucket_of_value)
{
    static const uint64_t probes[] = {0,
                                      1,
                                      2,
                                      127,
                                      128,
                                      129,
                                      191,
                                      192,
                                      255,
                                      256,
                                      1000,
                                      65535,
                                      65536,
                                      1000000,
                                      123456789,
                                      (uint64_t)1 << 40,
                                      ((uint64_t)1 << 63) + 12345};
    for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
        uint64_t v = probes[k];
        size_t i = akv_hist_bucket(v);
        uint64_t lo = akv_hist_bucket_low(i), hi = akv_hist_bucket_high(i);
        ck_assert_msg(lo <= v && v <= hi, "%llu not in bucket %zu", (unsigned long long)v, i);
        /* Width at most 1/64 of the low end (exact below 128). */
        if (v < 128)
            ck_assert_uint_eq(lo, hi);
        else
            ck_assert_msg((hi - lo + 1) * 64 <= lo, "bucket %zu too wide", i);
    }
}
END_TEST

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(test_quantiles)
{
    static struct akv_hist h;
    enum { N = 10007 };
    static uint64_t v[N];
    static const double qs[] = {0.01, 0.5, 0.9, 0.99, 0.999};
    uint64_t prev = 0;

    akv_hist_reset(&h);
    ck_assert_uint_eq(akv_hist_quantile(&h, 0.5), 0);
    srand(7);
    for (size_t i = 0; i < N; i++) {
        /* Latency-like: mostly a few ms, a long tail. */
        v[i] = 1000 + (uint64_t)(rand() % 9000) + (i % 100 == 0 ? (uint64_t)(rand() % 1000000) : 0);
        akv_hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    ck_assert_uint_eq(h.count, N);
    ck_assert_uint_eq(h.min, v[0]);
    ck_assert_uint_eq(h.max, v[N - 1]);
    ck_assert_uint_eq(akv_hist_quantile(&h, 1.0), v[N - 1]);
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        size_t rank = (size_t)((double)N * qs[k]);
        uint64_t exact = v[rank < N ? rank : N - 1], got = akv_hist_quantile(&h, qs[k]);
        if (rank > 0 && (double)rank == (double)N * qs[k])
            exact = v[rank - 1];
        /* Never below the true value, at most one bucket (1/64) above. */
        ck_assert_msg(got >= exact && got <= exact + exact / 64 + 1, "q=%g got %llu exact %llu",
                      qs[k], (unsigned long long)got, (unsigned long long)exact);
        ck_assert_uint_ge(got, prev);
        prev = got;
    }
    ck_assert(akv_hist_mean(&h) > 1000);
}
END_TEST

/* akv_hist_quantiles gives what akv_hist_quantile gives, one by one. */
START_TEST(test_quantiles_at_once)
{
    static struct akv_hist h;
    static const double qs[] = {0, 0.001, 0.25, 0.5, 0.5, 0.9, 0.99, 0.999, 1, 1.5};
    enum { NQ = sizeof(qs) / sizeof(qs[0]) };
    uint64_t got[NQ];

    akv_hist_reset(&h);
    akv_hist_quantiles(&h, qs, NQ, got);
    for (size_t k = 0; k < NQ; k++)
        ck_assert_uint_eq(got[k], 0);
    srand(11);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 5000; i++)
            akv_hist_record(&h, round == 0 ? 77 : (uint64_t)(rand() % 100000) << (round * 8));
        akv_hist_quantiles(&h, qs, NQ, got);
        for (size_t k = 0; k < NQ; k++)
            ck_assert_msg(got[k] == akv_hist_quantile(&h, qs[k]), "round %d q=%g: %llu", round,
                          qs[k], (unsigned long long)got[k]);
    }
    ck_assert_uint_eq(got[0], h.min);
    ck_assert_uint_eq(got[NQ - 1], h.max);
}
END_TEST

START_TEST(test_small_and_single)
{
    static struct akv_hist h;

    akv_hist_reset(&h);
    akv_hist_record(&h, 42);
    ck_assert_uint_eq(akv_hist_quantile(&h, 0.5), 42);
    ck_assert_uint_eq(akv_hist_quantile(&h, 0.999), 42);
    akv_hist_reset(&h);
    /* A single large value: the bucket's top is clamped to the maximum. */
    akv_hist_record(&h, 1000001);
    ck_assert_uint_eq(akv_hist_quantile(&h, 0.5), 1000001);
    akv_hist_record(&h, UINT64_MAX);
    ck_assert_uint_eq(h.sum, UINT64_MAX); /* saturated */
    ck_assert_uint_eq(akv_hist_quantile(&h, 1.0), UINT64_MAX);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hist");
    TCase *tc = tcase_create("hist");

    tcase_add_test(tc, test_buckets_contiguous);
    tcase_add_test(tc, test_bucket_of_value);
    tcase_add_test(tc, test_quantiles);
    tcase_add_test(tc, test_quantiles_at_once);
    tcase_add_test(tc, test_small_and_single);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
