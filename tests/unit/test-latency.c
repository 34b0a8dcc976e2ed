/*
 * test-latency.c - the latency monitor (src/server/latency.c): one sample a
 * second (the worst), the ring of AKV_LATENCY_SAMPLES, the all-time worst,
 * reset, and the event names.
 */
#include <check.h>

#include "runsuite.h"
#include <string.h>

#include "server/latency.h"

START_TEST(test_names)
{
    ck_assert_str_eq(akv_latency_event_name(AKV_LATENCY_COMMAND), "command");
    ck_assert_str_eq(akv_latency_event_name(AKV_LATENCY_FAST_COMMAND), "fast-command");
    ck_assert_ptr_null(akv_latency_event_name(AKV_LATENCY_EVENTS));
    ck_assert_int_eq(akv_latency_event_lookup("COMMAND", 7), AKV_LATENCY_COMMAND);
    ck_assert_int_eq(akv_latency_event_lookup("fast-command", 12), AKV_LATENCY_FAST_COMMAND);
    ck_assert_int_eq(akv_latency_event_lookup("command2", 8), -1);
    ck_assert_int_eq(akv_latency_event_lookup("", 0), -1);
}
END_TEST

START_TEST(test_samples)
{
    struct akv_latency l;
    struct akv_latency_sample h[AKV_LATENCY_SAMPLES];
    const struct akv_latency_sample *x;

    memset(&l, 0, sizeof(l));
    ck_assert_ptr_null(akv_latency_latest(&l, AKV_LATENCY_COMMAND));
    ck_assert_uint_eq(akv_latency_history(&l, AKV_LATENCY_COMMAND, h), 0);
    /* Within one second, the worst stays. */
    akv_latency_add(&l, AKV_LATENCY_COMMAND, 1000, 5);
    akv_latency_add(&l, AKV_LATENCY_COMMAND, 1000, 9);
    akv_latency_add(&l, AKV_LATENCY_COMMAND, 1000, 7);
    akv_latency_add(&l, AKV_LATENCY_COMMAND, 1002, 3);
    x = akv_latency_latest(&l, AKV_LATENCY_COMMAND);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->time, 1002);
    ck_assert_uint_eq(x->ms, 3);
    ck_assert_uint_eq(l.ev[AKV_LATENCY_COMMAND].max, 9);
    ck_assert_uint_eq(akv_latency_history(&l, AKV_LATENCY_COMMAND, h), 2);
    ck_assert_int_eq(h[0].time, 1000);
    ck_assert_uint_eq(h[0].ms, 9);
    ck_assert_int_eq(h[1].time, 1002);
    /* The other event is apart. */
    ck_assert_ptr_null(akv_latency_latest(&l, AKV_LATENCY_FAST_COMMAND));
    /* The ring keeps the newest AKV_LATENCY_SAMPLES seconds, oldest first. */
    for (int i = 0; i < 500; i++)
        akv_latency_add(&l, AKV_LATENCY_FAST_COMMAND, 2000 + i, (uint32_t)i);
    ck_assert_uint_eq(akv_latency_history(&l, AKV_LATENCY_FAST_COMMAND, h), AKV_LATENCY_SAMPLES);
    ck_assert_int_eq(h[0].time, 2000 + 500 - AKV_LATENCY_SAMPLES);
    ck_assert_int_eq(h[AKV_LATENCY_SAMPLES - 1].time, 2499);
    for (size_t i = 1; i < AKV_LATENCY_SAMPLES; i++)
        ck_assert_int_lt(h[i - 1].time, h[i].time);
    ck_assert_uint_eq(l.ev[AKV_LATENCY_FAST_COMMAND].max, 499);
    /* Reset forgets one event and says whether it had samples. */
    ck_assert_int_eq(akv_latency_reset(&l, AKV_LATENCY_COMMAND), 1);
    ck_assert_int_eq(akv_latency_reset(&l, AKV_LATENCY_COMMAND), 0);
    ck_assert_ptr_null(akv_latency_latest(&l, AKV_LATENCY_COMMAND));
    ck_assert_uint_eq(l.ev[AKV_LATENCY_COMMAND].max, 0);
    ck_assert_ptr_nonnull(akv_latency_latest(&l, AKV_LATENCY_FAST_COMMAND));
    ck_assert_int_eq(akv_latency_reset(&l, AKV_LATENCY_EVENTS), 0);
}
END_TEST

static Suite *latency_suite(void)
{
    Suite *s = suite_create("latency");
    TCase *tc = tcase_create("latency");

    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_samples);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(latency_suite());
}
