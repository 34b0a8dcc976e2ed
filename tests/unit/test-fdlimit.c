/*
 * test-fdlimit.c - maxclients against RLIMIT_NOFILE (src/server/fdlimit.c):
 * raising the soft limit, the clients a limit that cannot be raised allows,
 * the "too few descriptors left" test, and counting open descriptors. Check
 * forks each test, so the limits set here stay in it.
 */
#include <check.h>

#include "runsuite.h"
#include <fcntl.h>
#include <unistd.h>

#include <sys/resource.h>

#include "server/fdlimit.h"

static void set_limit(rlim_t soft, rlim_t hard)
{
    struct rlimit rl = {soft, hard};

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static rlim_t soft_limit(void)
{
    struct rlimit rl;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    return rl.rlim_cur;
}

START_TEST(test_fit_raises_the_soft_limit)
{
    struct rlimit rl;
    unsigned long long before = 0, after = 0;

    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 200)
        return; /* no room to test in */
    set_limit(64, rl.rlim_max);
    /* Fits: nothing changes. */
    ck_assert_int_eq(akv_fdlimit_fit(10, &before, &after), 10);
    ck_assert_uint_eq(before, 64);
    ck_assert_uint_eq(after, 64);
    ck_assert_uint_eq(soft_limit(), 64);
    /* 100 clients need 132: raised to exactly that. */
    ck_assert_int_eq(akv_fdlimit_fit(100, &before, &after), 100);
    ck_assert_uint_eq(before, 64);
    ck_assert_uint_eq(after, 100 + AKV_FDLIMIT_RESERVED);
    ck_assert_uint_eq(soft_limit(), 100 + AKV_FDLIMIT_RESERVED);
    /* Never lowered. */
    ck_assert_int_eq(akv_fdlimit_fit(5, NULL, NULL), 5);
    ck_assert_uint_eq(soft_limit(), 100 + AKV_FDLIMIT_RESERVED);
}
END_TEST

/* More than any limit may be (fs.nr_open is at most 2^20 by default, and
 * even root cannot pass it): as many clients as the hard limit allows. */
START_TEST(test_fit_lowers_when_the_limit_cannot_grow)
{
    unsigned long long after = 0;

    set_limit(48, 64);
    ck_assert_int_eq(akv_fdlimit_fit(2000000000L, NULL, &after), 64 - AKV_FDLIMIT_RESERVED);
    ck_assert_uint_eq(after, 64);
    ck_assert_uint_eq(soft_limit(), 64);
    /* A limit that leaves nothing for clients. */
    set_limit(20, 20);
    ck_assert_int_eq(akv_fdlimit_fit(2000000000L, NULL, NULL), 0);
}
END_TEST

START_TEST(test_scarce)
{
    unsigned long long limit = 0;

    set_limit(64, 64);
    /* By number: descriptor 55 leaves 56..63, eight; 56 leaves seven. */
    ck_assert_int_eq(akv_fdlimit_scarce(64 - AKV_FDLIMIT_SPARE - 1, 0, &limit), 0);
    ck_assert_uint_eq(limit, 64);
    ck_assert_int_eq(akv_fdlimit_scarce(64 - AKV_FDLIMIT_SPARE, 0, NULL), 1);
    /* By count, whatever the number (a free one below hides nothing). */
    ck_assert_int_eq(akv_fdlimit_scarce(3, 64 - AKV_FDLIMIT_SPARE, NULL), 0);
    ck_assert_int_eq(akv_fdlimit_scarce(3, 64 - AKV_FDLIMIT_SPARE + 1, NULL), 1);
    ck_assert_int_eq(akv_fdlimit_scarce(-1, 10, NULL), 0);
    /* The limit is read each time. */
    set_limit(32, 64);
    ck_assert_int_eq(akv_fdlimit_scarce(3, 30, &limit), 1);
    ck_assert_uint_eq(limit, 32);
}
END_TEST

START_TEST(test_count_open)
{
    int n = akv_fdlimit_count_open(), fd;

    if (n < 0)
        return; /* no /proc */
    ck_assert_int_ge(n, 3);
    fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(akv_fdlimit_count_open(), n + 1);
    close(fd);
    ck_assert_int_eq(akv_fdlimit_count_open(), n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fdlimit");
    TCase *tc = tcase_create("fdlimit");

    tcase_add_test(tc, test_fit_raises_the_soft_limit);
    tcase_add_test(tc, test_fit_lowers_when_the_limit_cannot_grow);
    tcase_add_test(tc, test_scarce);
    tcase_add_test(tc, test_count_open);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
