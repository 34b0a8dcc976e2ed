/*
 * test-service.c - the service manager notification protocol
 * (src/server/service.c): $NOTIFY_SOCKET addresses (paths and abstract names), the
 * watchdog variables, STATUS= formatting, and messages received on a real
 * datagram socket, as systemd would receive them.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "server/service.h"

START_TEST(test_addr)
{
    struct sockaddr_un sa;
    socklen_t len;
    char longp[200];

    ck_assert_int_eq(akv_service_addr("/run/systemd/notify", &sa, &len), 0);
    ck_assert_int_eq(sa.sun_family, AF_UNIX);
    ck_assert_str_eq(sa.sun_path, "/run/systemd/notify");
    ck_assert_uint_eq(len,
                      offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);

    ck_assert_int_eq(akv_service_addr("@abstract/name", &sa, &len), 0);
    ck_assert_int_eq(sa.sun_path[0], '\0');
    ck_assert_int_eq(memcmp(sa.sun_path + 1, "abstract/name", 13), 0);
    ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 14);

    ck_assert_int_eq(akv_service_addr(NULL, &sa, &len), -EINVAL);
    ck_assert_int_eq(akv_service_addr("", &sa, &len), -EINVAL);
    ck_assert_int_eq(akv_service_addr("@", &sa, &len), -EINVAL);
    ck_assert_int_eq(akv_service_addr("relative/path", &sa, &len), -EINVAL);
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    ck_assert_int_eq(akv_service_addr(longp, &sa, &len), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_watchdog_parse)
{
    ck_assert_uint_eq(akv_service_watchdog_parse(NULL, NULL, 10), 0);
    ck_assert_uint_eq(akv_service_watchdog_parse("200000", NULL, 10), 200000);
    ck_assert_uint_eq(akv_service_watchdog_parse("200000", "", 10), 200000);
    ck_assert_uint_eq(akv_service_watchdog_parse("200000", "10", 10), 200000);
    ck_assert_uint_eq(akv_service_watchdog_parse("200000", "11", 10), 0);
    ck_assert_uint_eq(akv_service_watchdog_parse("0", NULL, 10), 0);
    ck_assert_uint_eq(akv_service_watchdog_parse("-5", NULL, 10), 0);
    ck_assert_uint_eq(akv_service_watchdog_parse("5s", NULL, 10), 0);
    ck_assert_uint_eq(akv_service_watchdog_parse("5", "x", 10), 0);
}
END_TEST

__attribute__((format(printf, 3, 4))) static size_t fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, f);
    n = akv_service_format_status(buf, cap, f, ap);
    va_end(ap);
    return n;
}

START_TEST(test_format_status)
{
    char buf[64];

    ck_assert_uint_eq(fmt(buf, sizeof(buf), "Loading %d words", 5),
                      strlen("STATUS=Loading 5 words"));
    ck_assert_str_eq(buf, "STATUS=Loading 5 words");
    /* A newline would start a new assignment: it becomes a space. */
    fmt(buf, sizeof(buf), "a\nREADY=1\tb");
    ck_assert_str_eq(buf, "STATUS=a READY=1 b");
    /* Cut to fit. */
    ck_assert_uint_eq(fmt(buf, 12, "%s", "0123456789"), 11);
    ck_assert_str_eq(buf, "STATUS=0123");
}
END_TEST

/* Binds a datagram socket at path (or an abstract name) like the manager. */
static int bind_dgram(const char *value)
{
    struct sockaddr_un sa;
    socklen_t len;
    struct timeval tv = {2, 0};
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(akv_service_addr(value, &sa, &len), 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void expect(int fd, const char *msg)
{
    char buf[AKV_SERVICE_MSG_MAX + 1];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, msg);
}

static void round_trip(const char *value)
{
    char pid[32];
    int fd = bind_dgram(value);

    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    setenv("NOTIFY_SOCKET", value, 1);
    setenv("WATCHDOG_USEC", "200000", 1);
    setenv("WATCHDOG_PID", pid, 1);
    ck_assert_int_eq(akv_service_open(), 0);
    ck_assert_int_eq(akv_service_enabled(), 1);
    ck_assert_uint_eq(akv_service_watchdog_usec(), 200000);
    ck_assert_int_eq(akv_service_status("Loading %s", "vectors"), 0);
    expect(fd, "STATUS=Loading vectors");
    ck_assert_int_eq(akv_service_notify("READY=1"), 0);
    expect(fd, "READY=1");
    ck_assert_int_eq(akv_service_notify("WATCHDOG=1"), 0);
    expect(fd, "WATCHDOG=1");
    akv_service_close();
    ck_assert_int_eq(akv_service_enabled(), 0);
    ck_assert_int_eq(akv_service_notify("READY=1"), 0); /* a no-op now */
    close(fd);
}

START_TEST(test_send_path)
{
    char dir[] = "/tmp/akv-notify-XXXXXX", path[64];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    round_trip(path);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_send_abstract)
{
    char name[64];

    snprintf(name, sizeof(name), "@akv-test-notify-%ld", (long)getpid());
    round_trip(name);
}
END_TEST

START_TEST(test_outside_systemd)
{
    unsetenv("NOTIFY_SOCKET");
    setenv("WATCHDOG_USEC", "200000", 1);
    unsetenv("WATCHDOG_PID");
    ck_assert_int_eq(akv_service_open(), 0);
    ck_assert_int_eq(akv_service_enabled(), 0);
    ck_assert_uint_eq(akv_service_watchdog_usec(), 0);
    ck_assert_int_eq(akv_service_notify("READY=1"), 0);
    ck_assert_int_eq(akv_service_status("x"), 0);
    akv_service_close();
    setenv("NOTIFY_SOCKET", "not-absolute", 1);
    ck_assert_int_eq(akv_service_open(), -EINVAL);
    ck_assert_int_eq(akv_service_enabled(), 0);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("notify");

    tcase_add_test(tc, test_addr);
    tcase_add_test(tc, test_watchdog_parse);
    tcase_add_test(tc, test_format_status);
    tcase_add_test(tc, test_send_path);
    tcase_add_test(tc, test_send_abstract);
    tcase_add_test(tc, test_outside_systemd);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
