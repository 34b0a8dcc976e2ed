/*
 * fdlimit.c - maxclients against RLIMIT_NOFILE (fdlimit.h): raising the
 * soft limit when maxclients needs more descriptors, and telling an
 * accepted descriptor that leaves too few free.
 *
 * Ownership: no state.
 *
 * Threading: the loop thread, or main before the loop starts.
 */
#include "server/fdlimit.h"

#include <dirent.h>
#include <errno.h>

#include <sys/resource.h>

long akv_fdlimit_fit(long maxclients, unsigned long long *before, unsigned long long *after)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)maxclients + AKV_FDLIMIT_RESERVED;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        if (before)
            *before = 0;
        if (after)
            *after = 0;
        return maxclients; /* cannot tell: leave it to accept */
    }
    if (before)
        *before = (unsigned long long)rl.rlim_cur;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        if (after)
            *after = (unsigned long long)rl.rlim_cur;
        return maxclients;
    }
    if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) {
        struct rlimit up = {need, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl.rlim_cur = need;
    } else {
        /* Past the hard limit: only a privileged process may; else as far
         * as the hard limit goes. */
        struct rlimit up = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            rl.rlim_cur = need;
        } else {
            up.rlim_cur = up.rlim_max = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                rl.rlim_cur = rl.rlim_max;
        }
    }
    if (after)
        *after = (unsigned long long)rl.rlim_cur;
    if (rl.rlim_cur >= need)
        return maxclients;
    return rl.rlim_cur > AKV_FDLIMIT_RESERVED ? (long)(rl.rlim_cur - AKV_FDLIMIT_RESERVED) : 0;
}

int akv_fdlimit_scarce(int fd, size_t in_use, unsigned long long *limit)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) {
        if (limit)
            *limit = 0;
        return 0;
    }
    if (limit)
        *limit = (unsigned long long)rl.rlim_cur;
    if (fd >= 0 && (rlim_t)fd + 1 + AKV_FDLIMIT_SPARE > rl.rlim_cur)
        return 1;
    return (rlim_t)in_use + AKV_FDLIMIT_SPARE > rl.rlim_cur;
}

int akv_fdlimit_count_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        return -errno;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n > 0 ? n - 1 : 0; /* not the one opendir holds */
}
