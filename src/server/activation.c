/*
 * activation.c - inherited listening sockets (see activation.h). The
 * server (src/server/server.c) checks each descriptor is a listening TCP socket
 * before serving it.
 */
#include "server/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/text.h"

/* A positive decimal number, whole string, no sign or blanks. */
static int parse_pos(const char *s, long long *out)
{
    return s ? akv_parse_ll(s, strlen(s), 1, LLONG_MAX, out) : -EINVAL;
}

int akv_activation_parse(const char *fds, const char *pid, pid_t self)
{
    long long p, n;

    if (!fds || !*fds || !pid || !*pid)
        return 0;
    if (parse_pos(pid, &p) < 0)
        return -EINVAL;
    if (p != (long long)self)
        return 0;
    if (fds[0] == '0' && fds[1] == '\0')
        return 0;
    if (parse_pos(fds, &n) < 0 || n > AKV_ACTIVATION_FDS_MAX)
        return -EINVAL;
    return (int)n;
}

int akv_activation_listen_fds(void)
{
    int n = akv_activation_parse(getenv("LISTEN_FDS"), getenv("LISTEN_PID"), getpid());

    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (int i = 0; i < n; i++) {
        int fd = AKV_ACTIVATION_FD_START + i;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
            return -EINVAL;
    }
    return n;
}
