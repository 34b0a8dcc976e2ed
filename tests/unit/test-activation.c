/*
 * test-activation.c - socket activation (src/server/activation.c): the LISTEN_FDS
 * and LISTEN_PID rules, and taking descriptors from the environment.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "server/activation.h"

START_TEST(test_parse)
{
    ck_assert_int_eq(akv_activation_parse(NULL, NULL, 42), 0);
    ck_assert_int_eq(akv_activation_parse("2", NULL, 42), 0);
    ck_assert_int_eq(akv_activation_parse(NULL, "42", 42), 0);
    ck_assert_int_eq(akv_activation_parse("2", "42", 42), 2);
    ck_assert_int_eq(akv_activation_parse("1", "43", 42), 0); /* someone else's */
    ck_assert_int_eq(akv_activation_parse("0", "42", 42), 0);
    ck_assert_int_eq(akv_activation_parse("64", "42", 42), 64);
    ck_assert_int_eq(akv_activation_parse("65", "42", 42), -EINVAL);
    ck_assert_int_eq(akv_activation_parse("x", "42", 42), -EINVAL);
    ck_assert_int_eq(akv_activation_parse("2x", "42", 42), -EINVAL);
    ck_assert_int_eq(akv_activation_parse("-1", "42", 42), -EINVAL);
    ck_assert_int_eq(akv_activation_parse("1", "4x2", 42), -EINVAL);
    ck_assert_int_eq(akv_activation_parse("1", " 42", 42), -EINVAL);
}
END_TEST

START_TEST(test_from_environment)
{
    char pid[32];
    int fd;

    /* Put something at descriptor 3, as the service manager would. */
    fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    if (fd != AKV_ACTIVATION_FD_START) {
        ck_assert_int_eq(dup2(fd, AKV_ACTIVATION_FD_START), AKV_ACTIVATION_FD_START);
        close(fd);
    }
    fcntl(AKV_ACTIVATION_FD_START, F_SETFD, 0);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "attnkvd", 1);
    ck_assert_int_eq(akv_activation_listen_fds(), 1);
    ck_assert(fcntl(AKV_ACTIVATION_FD_START, F_GETFD) & FD_CLOEXEC);
    ck_assert_ptr_null(getenv("LISTEN_PID"));
    ck_assert_ptr_null(getenv("LISTEN_FDS"));
    ck_assert_ptr_null(getenv("LISTEN_FDNAMES"));
    /* A second call finds nothing. */
    ck_assert_int_eq(akv_activation_listen_fds(), 0);
    close(AKV_ACTIVATION_FD_START);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("activation");
    TCase *tc = tcase_create("activation");

    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_from_environment);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
