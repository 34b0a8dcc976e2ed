/*
 * service.c - the service manager notification protocol (see service.h).
 *
 * Design: one datagram socket, opened by akv_service_open and kept for the
 * process's life, sends every message to the address $NOTIFY_SOCKET names.
 * A failed send is returned but never fatal: a daemon must run the same
 * whether or not anyone listens. With libsystemd (HAVE_LIBSYSTEMD) the
 * messages go through sd_notify instead, which does the same thing (and
 * also passes our credentials, which the kernel adds here by itself when
 * the receiver asks for them with SO_PASSCRED).
 *
 * Threading: the static state is written by akv_service_open/close on the
 * main thread before and after the loop runs; in between it is only read.
 */
#include "server/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static int notify_fd = -1;
static int notify_on;
static struct sockaddr_un notify_sa;
static socklen_t notify_salen;
static uint64_t watchdog_usec;

int akv_service_addr(const char *value, struct sockaddr_un *sa, socklen_t *len)
{
    size_t n;

    if (!value || (value[0] != '/' && value[0] != '@') || value[1] == '\0')
        return -EINVAL;
    n = strlen(value);
    if (n > sizeof(sa->sun_path) || (value[0] == '/' && n == sizeof(sa->sun_path)))
        return -ENAMETOOLONG;
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, value, n);
    if (value[0] == '@') {
        /* Abstract: a leading NUL, and the length says where the name ends
         * (trailing NULs would be part of it). */
        sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

uint64_t akv_service_watchdog_parse(const char *usec, const char *pid, pid_t self)
{
    unsigned long long v;
    char *end;

    if (!usec || *usec < '0' || *usec > '9')
        return 0;
    errno = 0;
    v = strtoull(usec, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0)
        return 0;
    if (pid && *pid) {
        long long p;
        if (*pid < '0' || *pid > '9')
            return 0;
        errno = 0;
        p = strtoll(pid, &end, 10);
        if (errno != 0 || *end != '\0' || p != (long long)self)
            return 0;
    }
    return (uint64_t)v;
}

size_t akv_service_format_status(char *buf, size_t cap, const char *fmt, va_list ap)
{
    static const char prefix[] = "STATUS=";
    size_t n = sizeof(prefix) - 1, i;
    int w;

    memcpy(buf, prefix, n);
    w = vsnprintf(buf + n, cap - n, fmt, ap);
    if (w < 0)
        w = 0;
    n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    buf[n] = '\0';
    for (i = sizeof(prefix) - 1; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = ' ';
    return n;
}

int akv_service_open(void)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    int rc;

    watchdog_usec =
        akv_service_watchdog_parse(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid());
    if (!sock || !*sock)
        return 0;
    rc = akv_service_addr(sock, &notify_sa, &notify_salen);
    if (rc < 0)
        return rc;
#ifndef HAVE_LIBSYSTEMD
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0)
        return -errno;
#endif
    notify_on = 1;
    return 0;
}

int akv_service_enabled(void)
{
    return notify_on;
}

int akv_service_notify(const char *msg)
{
    if (!notify_on)
        return 0;
#ifdef HAVE_LIBSYSTEMD
    {
        int rc = sd_notify(0, msg);
        return rc < 0 ? rc : 0;
    }
#else
    for (;;) {
        ssize_t n = sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL,
                           (const struct sockaddr *)&notify_sa, notify_salen);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
#endif
}

int akv_service_status(const char *fmt, ...)
{
    char buf[AKV_SERVICE_MSG_MAX];
    va_list ap;

    if (!notify_on)
        return 0;
    va_start(ap, fmt);
    akv_service_format_status(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return akv_service_notify(buf);
}

uint64_t akv_service_watchdog_usec(void)
{
    return notify_on ? watchdog_usec : 0;
}

void akv_service_close(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
    notify_on = 0;
    watchdog_usec = 0;
}
