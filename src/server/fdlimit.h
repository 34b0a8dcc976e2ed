/*
 * fdlimit.h - maxclients against the file descriptor limit (RLIMIT_NOFILE),
 * as Redis fits them together: every client costs a descriptor, and the
 * daemon keeps AKV_FDLIMIT_RESERVED more for itself (the log, the
 * listeners, the append-only file and its rewrite, the event loop's own).
 *
 * Ownership: no state; the process's limit is the only thing changed.
 *
 * Threading: the loop thread (or main, before the loop runs): setrlimit
 * is process-wide.
 */
#ifndef ATTNKV_FDLIMIT_H
#define ATTNKV_FDLIMIT_H

#include <stddef.h>

/* Descriptors kept beyond maxclients (Redis keeps 32 too). */
#define AKV_FDLIMIT_RESERVED 32
/* A connection is refused when accepting it left fewer than this many
 * descriptors free (see akv_fdlimit_scarce). */
#define AKV_FDLIMIT_SPARE 8

/* Makes room for maxclients clients: when the soft limit is below
 * maxclients + AKV_FDLIMIT_RESERVED, raises it (up to the hard limit, or
 * past it where the process may raise that too). Returns the number of
 * clients the limit now allows: maxclients when it fits, else fewer (at
 * least 0). *before and *after (optional) get the soft limit before and
 * after. Never lowers a limit. */
long akv_fdlimit_fit(long maxclients, unsigned long long *before, unsigned long long *after);

/* Whether accepting the descriptor numbered fd leaves fewer than
 * AKV_FDLIMIT_SPARE free under the current soft limit: either by its number
 * (accept gives the lowest free one, so every lower one is in use) or by
 * in_use, the descriptors the caller knows to be open, fd included (a
 * count: free ones below fd do not hide the shortage). *limit (optional)
 * gets the limit. Reads the limit each time, so a limit changed from
 * outside (prlimit) counts at once. */
int akv_fdlimit_scarce(int fd, size_t in_use, unsigned long long *limit);

/* The number of descriptors the process has open (from /proc/self/fd), or
 * -errno. O(descriptors): for start-up, not for each client. */
int akv_fdlimit_count_open(void);

#endif
