/*
 * test-slowlog.c - the slow log (src/server/slowlog.c): order, ids, trimming and
 * the Redis-style cutting of long arguments.
 */
#include <check.h>

#include "runsuite.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/slowlog.h"

static struct akv_slice sl_(const char *s)
{
    struct akv_slice a = {s, strlen(s)};
    return a;
}

START_TEST(test_push_order_trim)
{
    struct akv_slowlog sl;
    struct akv_slice argv[2] = {sl_("QUERY"), sl_("cat")};

    akv_slowlog_init(&sl);
    for (int i = 0; i < 5; i++) {
        struct akv_slowlog_entry *e = akv_slowlog_entry_new(2, argv, "127.0.0.1:5000");
        ck_assert_ptr_nonnull(e);
        akv_slowlog_push(&sl, e, 1000 + i, 10 * (uint64_t)i, 3);
    }
    ck_assert_uint_eq(sl.len, 3);
    ck_assert_uint_eq(sl.newest->id, 4);
    ck_assert_uint_eq(sl.newest->duration_us, 40);
    ck_assert_int_eq(sl.newest->time, 1004);
    ck_assert_uint_eq(sl.oldest->id, 2);
    ck_assert_ptr_eq(sl.newest->older->older, sl.oldest);
    ck_assert_str_eq(sl.newest->peer, "127.0.0.1:5000");
    ck_assert_uint_eq(sl.newest->argc, 2);
    ck_assert_int_eq(memcmp(sl.newest->argv[1].p, "cat", 3), 0);
    akv_slowlog_trim(&sl, 1);
    ck_assert_uint_eq(sl.len, 1);
    ck_assert_ptr_eq(sl.newest, sl.oldest);
    akv_slowlog_reset(&sl);
    ck_assert_uint_eq(sl.len, 0);
    ck_assert_ptr_null(sl.newest);
    /* Ids go on after a reset; max_len 0 keeps nothing. */
    akv_slowlog_push(&sl, akv_slowlog_entry_new(2, argv, NULL), 1, 1, 0);
    ck_assert_uint_eq(sl.len, 0);
    akv_slowlog_push(&sl, akv_slowlog_entry_new(2, argv, NULL), 1, 1, 10);
    ck_assert_uint_eq(sl.newest->id, 6);
    ck_assert_str_eq(sl.newest->peer, "");
    akv_slowlog_reset(&sl);
}
END_TEST

START_TEST(test_cutting)
{
    struct akv_slice argv[40];
    char big[300];
    char words[40][8];
    struct akv_slowlog_entry *e;

    memset(big, 'x', sizeof(big));
    argv[0] = sl_("SET");
    argv[1].p = big;
    argv[1].len = sizeof(big);
    for (int i = 2; i < 40; i++) {
        snprintf(words[i], sizeof(words[i]), "w%d", i);
        argv[i] = sl_(words[i]);
    }
    e = akv_slowlog_entry_new(3, argv, "x");
    ck_assert_uint_eq(e->argc, 3);
    ck_assert_uint_eq(e->argv[1].len, 128 + strlen("... (172 more bytes)"));
    ck_assert_int_eq(memcmp(e->argv[1].p + 128, "... (172 more bytes)", 20), 0);
    akv_slowlog_entry_free(e);

    e = akv_slowlog_entry_new(40, argv, "x");
    ck_assert_uint_eq(e->argc, 32);
    ck_assert_uint_eq(e->argv[30].len, 3);
    ck_assert_int_eq(memcmp(e->argv[30].p, "w30", 3), 0);
    ck_assert_uint_eq(e->argv[31].len, strlen("... (9 more arguments)"));
    ck_assert_int_eq(memcmp(e->argv[31].p, "... (9 more arguments)", e->argv[31].len), 0);
    akv_slowlog_entry_free(e);
    akv_slowlog_entry_free(NULL);
}
END_TEST

/* An entry costs what it shows, not its worst case, and the log as a whole
 * stays under AKV_SLOWLOG_MEM_MAX whatever slowlog-max-len allows. */
START_TEST(test_memory)
{
    static char big[AKV_SLOWLOG_ARG_MAX * 2];
    struct akv_slice small[2] = {sl_("GET"), sl_("cat")}, fat[AKV_SLOWLOG_ARGC_MAX];
    struct akv_slowlog sl;
    struct akv_slowlog_entry *e = akv_slowlog_entry_new(2, small, "x");
    size_t n = 0;

    ck_assert_uint_le(e->size, sizeof(*e) + 2 * sizeof(struct akv_slice) + 6);
    akv_slowlog_entry_free(e);

    memset(big, 'x', sizeof(big));
    for (size_t i = 0; i < AKV_SLOWLOG_ARGC_MAX; i++)
        fat[i] = (struct akv_slice){big, sizeof(big)};
    akv_slowlog_init(&sl);
    while (n * 1024 < 2 * AKV_SLOWLOG_MEM_MAX) {
        e = akv_slowlog_entry_new(AKV_SLOWLOG_ARGC_MAX, fat, NULL);
        ck_assert_ptr_nonnull(e);
        ck_assert_uint_gt(e->size, 1024);
        akv_slowlog_push(&sl, e, 1, 1, 1000000);
        ck_assert_uint_le(sl.mem, AKV_SLOWLOG_MEM_MAX);
        n++;
    }
    ck_assert_uint_lt(sl.len, n);
    ck_assert_uint_gt(sl.len, 0);
    akv_slowlog_reset(&sl);
    ck_assert_uint_eq(sl.mem, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("slowlog");
    TCase *tc = tcase_create("slowlog");

    tcase_add_test(tc, test_push_order_trim);
    tcase_add_test(tc, test_cutting);
    tcase_add_test(tc, test_memory);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
