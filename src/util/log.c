/*
 * log.c - levelled, timestamped log lines to stderr or a file (see log.h
 * for the line format and the API).
 *
 * Design: a line is built whole in buffers on the caller's stack (about
 * 17 KiB) and written with one write(2) while `lock` is held. The lock, not
 * O_APPEND, is what keeps lines whole: stderr is often a pipe or a socket
 * to the journal, where writes longer than PIPE_BUF may be split and mixed
 * with other writers' bytes. Holding it across the write also means
 * akv_log_reopen and akv_log_close can swap and close the descriptor
 * without a writer ever using a closed (or reused) descriptor number.
 *
 * The threshold is an atomic int read without the lock, so a dropped debug
 * line costs one relaxed load and no formatting.
 *
 * Threading: `lock` guards `log_fd` and is a leaf lock: nothing but write(2)
 * and close(2) runs under it, and no other lock is taken while it is held.
 * `log_path` belongs to the thread that calls open/reopen/close (log.h).
 */
#include "util/log.h"
#include "util/text.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

const char *const akv_loglevel_names[] = {"debug", "verbose", "notice", "warning", NULL};
_Static_assert(AKV_LOG_DEBUG == 0 && AKV_LOG_VERBOSE == 1 && AKV_LOG_NOTICE == 2 &&
                   AKV_LOG_WARNING == 3,
               "akv_loglevel_names is out of step with enum akv_loglevel");

const char *akv_loglevel_name(enum akv_loglevel l)
{
    return (int)l >= 0 && l <= AKV_LOG_WARNING ? akv_loglevel_names[l] : "unknown";
}

/* Room for "YYYY-MM-DD HH:MM:SS.mmm [pid] warning: " even with absurd years
 * and pids, so the prefix is never cut. */
#define PREFIX_MAX 128

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1; /* -1: stderr; guarded by lock */
static char *log_path;  /* NULL: stderr; owned by the control thread */
static atomic_int threshold = AKV_LOG_NOTICE;

static int clamp_level(enum akv_loglevel lvl)
{
    if ((int)lvl < AKV_LOG_DEBUG)
        return AKV_LOG_DEBUG;
    if ((int)lvl > AKV_LOG_WARNING)
        return AKV_LOG_WARNING;
    return (int)lvl;
}

void akv_log_set_level(enum akv_loglevel lvl)
{
    atomic_store_explicit(&threshold, clamp_level(lvl), memory_order_relaxed);
}

enum akv_loglevel akv_log_get_level(void)
{
    return (enum akv_loglevel)atomic_load_explicit(&threshold, memory_order_relaxed);
}

int akv_log_enabled(enum akv_loglevel lvl)
{
    return (int)lvl >= atomic_load_explicit(&threshold, memory_order_relaxed);
}

/* Files the log may never be (akv_log_protect); open/reopen's thread. */
#define PROTECT_MAX 8
static char *protected_paths[PROTECT_MAX];

/* Errors of open_append besides the system's. */
#define ERR_NOT_REGULAR (-EINVAL)
#define ERR_PROTECTED (-EEXIST)

/* path with its directory part resolved ("/a/b/../c/x.log" ->
 * "/a/c/x.log"), so two spellings of one file compare equal even before the
 * file exists. Returns 0 or -errno. */
static int canonical(const char *path, char out[PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX], real[PATH_MAX];
    size_t dlen = slash ? (size_t)(slash - path) : 1;

    if (dlen >= sizeof(dir))
        return -ENAMETOOLONG;
    if (slash)
        memcpy(dir, slash == path ? "/" : path, slash == path ? 1 : dlen);
    else
        dir[0] = '.';
    dir[slash == path ? 1 : dlen] = '\0';
    if (!realpath(dir, real))
        return -errno;
    if (snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") ? real : "",
                 slash ? slash + 1 : path) >= PATH_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* Whether the log file path (open as fd, once opened) is a protected one. */
static int is_protected(const char *path, int fd)
{
    char a[PATH_MAX], b[PATH_MAX];
    struct stat sf, sp;

    for (size_t i = 0; i < PROTECT_MAX && protected_paths[i]; i++) {
        if (fd >= 0 && fstat(fd, &sf) == 0 && stat(protected_paths[i], &sp) == 0 &&
            sf.st_dev == sp.st_dev && sf.st_ino == sp.st_ino)
            return 1;
        if (canonical(path, a) == 0 && canonical(protected_paths[i], b) == 0 && strcmp(a, b) == 0)
            return 1;
    }
    return 0;
}

/* Opens path for appending if it is, or becomes, an ordinary regular file
 * (see log.h). Returns the descriptor or -errno. */
static int open_append(const char *path)
{
    struct stat st;
    struct statfs fs;
    int fd;

    if (is_protected(path, -1))
        return ERR_PROTECTED;
    /* O_NONBLOCK so that a FIFO without a reader cannot hang the open. */
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
              0640);
    if (fd < 0)
        return errno == ENXIO ? ERR_NOT_REGULAR : -errno; /* ENXIO: a FIFO or socket */
    if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC ||
        fs.f_type == DEBUGFS_MAGIC || fs.f_type == CGROUP_SUPER_MAGIC ||
        fs.f_type == CGROUP2_SUPER_MAGIC || fs.f_type == SECURITYFS_MAGIC) {
        close(fd);
        return ERR_NOT_REGULAR;
    }
    if (is_protected(path, fd)) {
        close(fd);
        return ERR_PROTECTED;
    }
    if (fcntl(fd, F_SETFL, O_APPEND) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int akv_log_protect(const char *path)
{
    for (size_t i = 0; i < PROTECT_MAX; i++) {
        if (!protected_paths[i]) {
            protected_paths[i] = strdup(path);
            return protected_paths[i] ? 0 : -ENOMEM;
        }
    }
    return -ENOSPC;
}

const char *akv_log_strerror(int rc)
{
    if (rc == ERR_NOT_REGULAR)
        return "not a regular file on an ordinary file system";
    if (rc == ERR_PROTECTED)
        return "that is the append-only file or the vectors file";
    if (rc == -ELOOP)
        return "a symbolic link (name the file it points to)";
    return strerror(-rc);
}

/* Makes fd (-1 for stderr) the destination and closes the previous one.
 * The close happens after the lock is dropped: a writer that still holds
 * the lock has already finished with the old descriptor by then. */
static void swap_fd(int fd)
{
    int old;

    pthread_mutex_lock(&lock);
    old = log_fd;
    log_fd = fd;
    pthread_mutex_unlock(&lock);
    if (old >= 0)
        close(old);
}

int akv_log_open(const char *path)
{
    int saved = errno;
    char *copy = NULL;
    int fd, rc;

    if (!path || !*path) {
        akv_log_close();
        return 0;
    }
    copy = strdup(path);
    if (!copy) {
        rc = -ENOMEM;
        goto fail;
    }
    fd = open_append(path);
    if (fd < 0) {
        rc = fd;
        goto fail;
    }
    swap_fd(fd);
    free(log_path);
    log_path = copy;
    errno = saved;
    return 0;

fail:
    free(copy);
    errno = saved;
    return rc;
}

int akv_log_reopen(void)
{
    int saved = errno;
    int fd;

    if (!log_path)
        return 0;
    fd = open_append(log_path);
    if (fd < 0) {
        errno = saved;
        return fd;
    }
    swap_fd(fd);
    errno = saved;
    return 0;
}

void akv_log_close(void)
{
    int saved = errno;

    swap_fd(-1);
    free(log_path);
    log_path = NULL;
    errno = saved;
}

/* Writes all of buf to the current destination. Errors are dropped: there
 * is nowhere left to report a failing log. */
static void emit(const char *buf, size_t len)
{
    int fd;

    pthread_mutex_lock(&lock);
    fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&lock);
}

void akv_logv(enum akv_loglevel lvl, const char *fmt, va_list ap)
{
    char msg[AKV_LOG_MSG_MAX + 1];
    char line[PREFIX_MAX + AKV_LOG_MSG_MAX + sizeof("...\n")];
    int saved = errno;
    struct timespec ts;
    struct tm tm;
    size_t len;
    int n, cut = 0;

    if (!akv_log_enabled(lvl))
        return;
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        snprintf(msg, sizeof(msg), "(unprintable log message: %s)", fmt);
    else if ((size_t)n >= sizeof(msg))
        cut = 1;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, PREFIX_MAX,
                 "%04d-%02d-%02d %02d:%02d:%02d.%03ld [%ld] %s: ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, (long)getpid(),
                 akv_loglevel_name(lvl));
    len = n < 0 ? 0 : (size_t)n < PREFIX_MAX ? (size_t)n : PREFIX_MAX - 1;

    {
        size_t mlen = strlen(msg), used;
        if (cut)
            mlen = akv_utf8_cut(msg, mlen);
        if (akv_escape(line + len, AKV_LOG_MSG_MAX + 1, msg, mlen, 0, &used) < mlen)
            cut = 1;
        len += used;
    }
    if (cut) {
        line[len++] = '.';
        line[len++] = '.';
        line[len++] = '.';
    }
    line[len++] = '\n';
    emit(line, len);
    errno = saved;
}

void akv_log(enum akv_loglevel lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    akv_logv(lvl, fmt, ap);
    va_end(ap);
}
