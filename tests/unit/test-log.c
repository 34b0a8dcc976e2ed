/*
 * test-log.c - the log module: line format (UTC time, pid, level), level
 * filtering, escaping and truncation, file, stderr and reopen, errno kept,
 * and whole lines from 8 threads logging at once.
 *
 * Check forks each test, so the log's global state starts fresh in each.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

static char path[64];

static void setup(void)
{
    int fd;

    strcpy(path, "/tmp/test-log-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(akv_log_open(path), 0);
}

static void teardown(void)
{
    akv_log_close();
    unlink(path);
}

/* The whole of file p as a string; *len gets its length. Caller frees. */
static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    char *buf;
    long n;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

struct parsed {
    struct tm tm;
    int ms;
    long pid;
    char level[16];
    const char *msg; /* points into the line */
};

/* Checks one line (without its '\n') against the documented format. */
static int parse_line(const char *line, struct parsed *p)
{
    /* Compiled once per test process (Check forks each test) and never
     * freed: regcomp per line makes the 8000-line thread test slow. */
    static regex_t re;
    static int compiled;
    regmatch_t m[10];

    if (!compiled) {
        static const char *re_src = "^([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):"
                                    "([0-9]{2})\\.([0-9]{3}) \\[([0-9]+)\\] "
                                    "(debug|verbose|notice|warning): ";
        ck_assert_int_eq(regcomp(&re, re_src, REG_EXTENDED), 0);
        compiled = 1;
    }
    if (regexec(&re, line, 10, m, 0) != 0)
        return -1;
    memset(p, 0, sizeof(*p));
    sscanf(line, "%4d-%2d-%2d %2d:%2d:%2d.%3d [%ld] %15[a-z]", &p->tm.tm_year, &p->tm.tm_mon,
           &p->tm.tm_mday, &p->tm.tm_hour, &p->tm.tm_min, &p->tm.tm_sec, &p->ms, &p->pid, p->level);
    p->tm.tm_year -= 1900;
    p->tm.tm_mon -= 1;
    p->msg = line + m[0].rm_eo;
    return 0;
}

/* Splits buf into lines in place; returns how many. */
static size_t split_lines(char *buf, char **lines, size_t max)
{
    size_t n = 0;
    char *p = buf, *nl;

    while ((nl = strchr(p, '\n')) && n < max) {
        *nl = '\0';
        lines[n++] = p;
        p = nl + 1;
    }
    ck_assert_str_eq(p, ""); /* the file ends with a whole line */
    return n;
}

START_TEST(test_format)
{
    struct parsed p;
    char *buf, *lines[4];
    struct timespec ts;
    time_t before, after, t;

    /* The log stamps with CLOCK_REALTIME; time() reads a coarser clock that
     * can still show the previous second, so compare with the same clock. */
    clock_gettime(CLOCK_REALTIME, &ts);
    before = ts.tv_sec;
    akv_log(AKV_LOG_NOTICE, "hello %s %d", "world", 42);
    clock_gettime(CLOCK_REALTIME, &ts);
    after = ts.tv_sec;
    buf = slurp(path, NULL);
    ck_assert_uint_eq(split_lines(buf, lines, 4), 1);
    ck_assert_msg(parse_line(lines[0], &p) == 0, "bad line: %s", lines[0]);
    ck_assert_str_eq(p.level, "notice");
    ck_assert_str_eq(p.msg, "hello world 42");
    ck_assert_int_eq(p.pid, (long)getpid());
    ck_assert_int_lt(p.ms, 1000);
    /* The time is UTC: read back with timegm it is the current time. */
    t = timegm(&p.tm);
    ck_assert_int_ge(t, before);
    ck_assert_int_le(t, after);
    free(buf);
}
END_TEST

START_TEST(test_levels)
{
    static const char *const expect[] = {"notice: n1",  "warning: w1", "warning: w2", "debug: d3",
                                         "verbose: v3", "notice: n3",  "warning: w3", "verbose: v4",
                                         "notice: n4",  "warning: w4"};
    char *buf, *lines[16];
    size_t n, i;

    ck_assert_int_eq(akv_log_get_level(), AKV_LOG_NOTICE);
    ck_assert(!akv_log_enabled(AKV_LOG_VERBOSE));
    ck_assert(akv_log_enabled(AKV_LOG_NOTICE));
    akv_log(AKV_LOG_DEBUG, "d1");
    akv_log(AKV_LOG_VERBOSE, "v1");
    akv_log(AKV_LOG_NOTICE, "n1");
    akv_log(AKV_LOG_WARNING, "w1");
    akv_log_set_level(AKV_LOG_WARNING);
    akv_log(AKV_LOG_DEBUG, "d2");
    akv_log(AKV_LOG_VERBOSE, "v2");
    akv_log(AKV_LOG_NOTICE, "n2");
    akv_log(AKV_LOG_WARNING, "w2");
    akv_log_set_level(AKV_LOG_DEBUG);
    ck_assert(akv_log_enabled(AKV_LOG_DEBUG));
    akv_log(AKV_LOG_DEBUG, "d3");
    akv_log(AKV_LOG_VERBOSE, "v3");
    akv_log(AKV_LOG_NOTICE, "n3");
    akv_log(AKV_LOG_WARNING, "w3");
    akv_log_set_level(AKV_LOG_VERBOSE);
    akv_log(AKV_LOG_DEBUG, "d4");
    akv_log(AKV_LOG_VERBOSE, "v4");
    akv_log(AKV_LOG_NOTICE, "n4");
    akv_log(AKV_LOG_WARNING, "w4");

    buf = slurp(path, NULL);
    n = split_lines(buf, lines, 16);
    ck_assert_uint_eq(n, sizeof(expect) / sizeof(expect[0]));
    for (i = 0; i < n; i++) {
        struct parsed p;
        ck_assert_int_eq(parse_line(lines[i], &p), 0);
        ck_assert_ptr_nonnull(strstr(lines[i], expect[i]));
        ck_assert_str_eq(strstr(lines[i], expect[i]), expect[i]);
    }
    free(buf);

    /* Out-of-range thresholds are clamped. */
    akv_log_set_level((enum akv_loglevel)99);
    ck_assert_int_eq(akv_log_get_level(), AKV_LOG_WARNING);
    akv_log_set_level((enum akv_loglevel) - 3);
    ck_assert_int_eq(akv_log_get_level(), AKV_LOG_DEBUG);
}
END_TEST

START_TEST(test_escaping)
{
    struct parsed p;
    char *buf, *lines[4];

    akv_log(AKV_LOG_WARNING, "a\nb\rc%cd\te%c \xc3\xa9 \\", 1, 0x7f);
    buf = slurp(path, NULL);
    ck_assert_uint_eq(split_lines(buf, lines, 4), 1);
    ck_assert_int_eq(parse_line(lines[0], &p), 0);
    ck_assert_str_eq(p.msg, "a\\nb\\rc\\x01d\te\\x7f \xc3\xa9 \\");
    free(buf);
}
END_TEST

static char *repeat(const char *unit, size_t times, const char *head)
{
    size_t u = strlen(unit), h = strlen(head), i;
    char *s = malloc(h + u * times + 1);

    ck_assert_ptr_nonnull(s);
    memcpy(s, head, h);
    for (i = 0; i < times; i++)
        memcpy(s + h + i * u, unit, u);
    s[h + u * times] = '\0';
    return s;
}

/* The message part of the only line in the log, copied. */
static char *only_message(void)
{
    struct parsed p;
    char *buf, *lines[2], *msg;

    buf = slurp(path, NULL);
    ck_assert_uint_eq(split_lines(buf, lines, 2), 1);
    ck_assert_int_eq(parse_line(lines[0], &p), 0);
    msg = strdup(p.msg);
    free(buf);
    return msg;
}

START_TEST(test_truncation_ascii)
{
    char *big = repeat("x", 20000, ""), *msg;

    akv_log(AKV_LOG_NOTICE, "%s", big);
    msg = only_message();
    ck_assert_uint_eq(strlen(msg), AKV_LOG_MSG_MAX + 3);
    ck_assert_str_eq(msg + AKV_LOG_MSG_MAX, "...");
    ck_assert_int_eq(memcmp(msg, big, AKV_LOG_MSG_MAX), 0);
    free(msg);
    free(big);
}
END_TEST

START_TEST(test_truncation_utf8)
{
    /* "x" then 2-byte characters: the cut at AKV_LOG_MSG_MAX bytes falls in
     * the middle of one, which must be dropped whole. */
    char *big = repeat("\xc3\xa9", 6000, "x"), *msg;

    akv_log(AKV_LOG_NOTICE, "%s", big);
    msg = only_message();
    ck_assert_uint_eq(strlen(msg), AKV_LOG_MSG_MAX - 1 + 3);
    ck_assert_int_eq(memcmp(msg, big, AKV_LOG_MSG_MAX - 1), 0);
    ck_assert_str_eq(msg + AKV_LOG_MSG_MAX - 1, "...");
    free(msg);
    free(big);

    /* 3- and 4-byte characters, at every offset of the cut. */
    for (int head = 0; head < 4; head++) {
        static const char *const units[] = {"\xe2\x82\xac", "\xf0\x9f\x98\x80"};
        for (int u = 0; u < 2; u++) {
            char *h = repeat("y", (size_t)head, "");
            char *s = repeat(units[u], 4000, h);
            size_t ul = strlen(units[u]), keep;

            ck_assert_int_eq(truncate(path, 0), 0);
            akv_log(AKV_LOG_NOTICE, "%s", s);
            msg = only_message();
            keep = (size_t)head + (AKV_LOG_MSG_MAX - (size_t)head) / ul * ul;
            ck_assert_uint_eq(strlen(msg), keep + 3);
            ck_assert_int_eq(memcmp(msg, s, keep), 0);
            free(msg);
            free(s);
            free(h);
        }
    }
}
END_TEST

START_TEST(test_truncation_by_escapes)
{
    char *big = repeat("\x01", 3000, ""), *msg, *want;

    akv_log(AKV_LOG_NOTICE, "%s", big);
    msg = only_message();
    want = repeat("\\x01", AKV_LOG_MSG_MAX / 4, "");
    ck_assert_uint_eq(strlen(msg), AKV_LOG_MSG_MAX + 3);
    ck_assert_int_eq(memcmp(msg, want, AKV_LOG_MSG_MAX), 0);
    ck_assert_str_eq(msg + AKV_LOG_MSG_MAX, "...");
    free(want);
    free(msg);
    free(big);
}
END_TEST

START_TEST(test_exact_limit_not_cut)
{
    char *big = repeat("z", AKV_LOG_MSG_MAX, ""), *msg;

    akv_log(AKV_LOG_NOTICE, "%s", big);
    msg = only_message();
    ck_assert_str_eq(msg, big);
    free(msg);
    free(big);
}
END_TEST

START_TEST(test_reopen)
{
    char moved[80], *buf;

    akv_log(AKV_LOG_NOTICE, "before rotation");
    snprintf(moved, sizeof(moved), "%s.1", path);
    ck_assert_int_eq(rename(path, moved), 0);
    akv_log(AKV_LOG_NOTICE, "still to the old file");
    ck_assert_int_eq(akv_log_reopen(), 0);
    akv_log(AKV_LOG_NOTICE, "after rotation");

    buf = slurp(moved, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "notice: before rotation\n"));
    ck_assert_ptr_nonnull(strstr(buf, "notice: still to the old file\n"));
    ck_assert_ptr_null(strstr(buf, "after"));
    free(buf);
    buf = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "notice: after rotation\n"));
    ck_assert_ptr_null(strstr(buf, "before"));
    free(buf);
    unlink(moved);
}
END_TEST

START_TEST(test_append_mode)
{
    char *buf;

    akv_log(AKV_LOG_NOTICE, "one");
    /* Opening the same file again appends instead of truncating. */
    ck_assert_int_eq(akv_log_open(path), 0);
    akv_log(AKV_LOG_NOTICE, "two");
    buf = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "notice: one\n"));
    ck_assert_ptr_nonnull(strstr(buf, "notice: two\n"));
    free(buf);
}
END_TEST

START_TEST(test_open_failure_keeps_file)
{
    char *buf;

    ck_assert_int_eq(akv_log_open("/nonexistent-dir/x.log"), -ENOENT);
    akv_log(AKV_LOG_WARNING, "kept");
    /* reopen still targets the file that worked. */
    ck_assert_int_eq(akv_log_reopen(), 0);
    akv_log(AKV_LOG_WARNING, "kept again");
    buf = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "warning: kept\n"));
    ck_assert_ptr_nonnull(strstr(buf, "warning: kept again\n"));
    free(buf);
}
END_TEST

START_TEST(test_stderr)
{
    char errpath[] = "/tmp/test-log-stderr-XXXXXX";
    int fd = mkstemp(errpath);
    char *buf, *lines[4];
    struct parsed p;

    ck_assert_int_ge(fd, 0);
    /* Check forks each test, so replacing fd 2 here is local to it. */
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
    ck_assert_int_eq(akv_log_open(""), 0);
    akv_log(AKV_LOG_WARNING, "to stderr %d", 1);
    ck_assert_int_eq(akv_log_open(path), 0);
    akv_log(AKV_LOG_WARNING, "to the file");
    akv_log_close();
    ck_assert_int_eq(akv_log_reopen(), 0); /* a no-op on stderr */
    akv_log(AKV_LOG_WARNING, "to stderr %d", 2);
    ck_assert_int_eq(akv_log_open(NULL), 0);
    akv_log(AKV_LOG_WARNING, "to stderr %d", 3);

    buf = slurp(errpath, NULL);
    ck_assert_uint_eq(split_lines(buf, lines, 4), 3);
    ck_assert_int_eq(parse_line(lines[0], &p), 0);
    ck_assert_str_eq(p.msg, "to stderr 1");
    ck_assert_int_eq(parse_line(lines[1], &p), 0);
    ck_assert_str_eq(p.msg, "to stderr 2");
    ck_assert_int_eq(parse_line(lines[2], &p), 0);
    ck_assert_str_eq(p.msg, "to stderr 3");
    free(buf);
    buf = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "warning: to the file\n"));
    free(buf);
    unlink(errpath);
}
END_TEST

START_TEST(test_errno_kept)
{
    errno = EAGAIN;
    akv_log(AKV_LOG_WARNING, "logged");
    ck_assert_int_eq(errno, EAGAIN);
    akv_log(AKV_LOG_DEBUG, "dropped");
    ck_assert_int_eq(errno, EAGAIN);
    errno = EPIPE;
    ck_assert_int_eq(akv_log_open("/nonexistent-dir/x.log"), -ENOENT);
    ck_assert_int_eq(errno, EPIPE);
    ck_assert_int_eq(akv_log_reopen(), 0);
    akv_log_close();
    ck_assert_int_eq(errno, EPIPE);
}
END_TEST

START_TEST(test_reopen_failure_keeps_file)
{
    char dir[] = "/tmp/test-log-dir-XXXXXX", moved[64], file[96], *buf;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/a.log", dir);
    ck_assert_int_eq(akv_log_open(file), 0);
    akv_log(AKV_LOG_NOTICE, "one");
    /* With its directory gone the file cannot be opened again; the open
     * descriptor must stay in use. */
    snprintf(moved, sizeof(moved), "%s.gone", dir);
    ck_assert_int_eq(rename(dir, moved), 0);
    ck_assert_int_eq(akv_log_reopen(), -ENOENT);
    akv_log(AKV_LOG_NOTICE, "two");
    snprintf(file, sizeof(file), "%s/a.log", moved);
    buf = slurp(file, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "notice: one\n"));
    ck_assert_ptr_nonnull(strstr(buf, "notice: two\n"));
    free(buf);
    akv_log_close();
    unlink(file);
    rmdir(moved);
}
END_TEST

START_TEST(test_write_errors_dropped)
{
    /* With a file-size limit of 0 every write fails (EFBIG): the line is
     * dropped, the caller neither blocks nor sees errno change. */
    struct rlimit old, none = {0, 0};
    struct stat st;

    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    none.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &none), 0);
    errno = 0;
    akv_log(AKV_LOG_WARNING, "lost");
    ck_assert_int_eq(errno, 0);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
}
END_TEST

/* The log goes only to a regular file on an ordinary file system that is
 * none of the protected ones (the AOF, the vectors), and never through a
 * symbolic link; a refused path leaves the log where it was. */
START_TEST(test_refused_paths)
{
    char dir[] = "/tmp/test-log-dir-XXXXXX", link[128], fifo[128], aof[128], other[160];
    char *buf;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(link, sizeof(link), "%s/link.log", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    snprintf(aof, sizeof(aof), "%s/appendonly.aof", dir);
    ck_assert_int_eq(symlink(path, link), 0);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);

    ck_assert_int_eq(akv_log_open(link), -ELOOP);
    ck_assert_str_eq(akv_log_strerror(-ELOOP), "a symbolic link (name the file it points to)");
    ck_assert_int_eq(akv_log_open(fifo), -EINVAL); /* and it did not hang */
    ck_assert_int_eq(mkfifo(fifo, 0600) < 0 ? errno : 0, EEXIST);
    ck_assert_int_eq(akv_log_open(dir), -EISDIR);
    if (access("/proc/self/mem", F_OK) == 0)
        ck_assert_int_eq(akv_log_open("/proc/self/mem"), -EINVAL);
    if (access("/dev/null", F_OK) == 0)
        ck_assert_int_eq(akv_log_open("/dev/null"), -EINVAL);
    ck_assert_str_eq(akv_log_strerror(-EINVAL), "not a regular file on an ordinary file system");

    /* The AOF, before it exists (by another spelling) and after. */
    ck_assert_int_eq(akv_log_protect(aof), 0);
    snprintf(other, sizeof(other), "%s/../%s/appendonly.aof", dir, strrchr(dir, '/') + 1);
    ck_assert_int_eq(akv_log_open(other), -EEXIST);
    ck_assert_int_ne(access(aof, F_OK), 0); /* not even created */
    close(open(aof, O_CREAT | O_WRONLY, 0600));
    ck_assert_int_eq(akv_log_open(aof), -EEXIST);

    akv_log(AKV_LOG_WARNING, "still here");
    buf = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(buf, "still here"));
    free(buf);
    {
        struct stat st;
        ck_assert_int_eq(stat(aof, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
    }
    unlink(link);
    unlink(fifo);
    unlink(aof);
    rmdir(dir);
}
END_TEST

#define THREADS 8
#define PER_THREAD 1000

/* A line's length varies with its sequence number, up to 6000 bytes, well
 * past PIPE_BUF, so that a torn write would show. */
static size_t fill_len(int seq)
{
    return (size_t)(seq * 37 % 6000);
}

static void *logger(void *arg)
{
    int t = (int)(long)arg;
    char *fill = malloc(6001);
    int seq;

    if (!fill)
        abort();
    memset(fill, 'a' + t, 6000);
    for (seq = 0; seq < PER_THREAD; seq++) {
        size_t n = fill_len(seq);
        akv_log(AKV_LOG_NOTICE, "t=%d seq=%d len=%zu %.*s", t, seq, n, (int)n, fill);
    }
    free(fill);
    return NULL;
}

START_TEST(test_threads)
{
    static char *lines[THREADS * PER_THREAD + 1];
    static unsigned char seen[THREADS][PER_THREAD];
    pthread_t th[THREADS];
    char *buf;
    size_t n, i;

    for (i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, logger, (void *)(long)i), 0);
    for (i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    buf = slurp(path, NULL);
    n = split_lines(buf, lines, THREADS * PER_THREAD + 1);
    ck_assert_uint_eq(n, THREADS * PER_THREAD);
    for (i = 0; i < n; i++) {
        struct parsed p;
        int t, seq, off = 0;
        size_t len, j;

        ck_assert_msg(parse_line(lines[i], &p) == 0, "line %zu is torn", i);
        ck_assert_int_eq(sscanf(p.msg, "t=%d seq=%d len=%zu %n", &t, &seq, &len, &off), 3);
        ck_assert(t >= 0 && t < THREADS && seq >= 0 && seq < PER_THREAD);
        ck_assert_uint_eq(len, fill_len(seq));
        /* "%zu %n" skipped the blank even when the fill is empty. */
        ck_assert_uint_eq(strlen(p.msg + off), len);
        for (j = 0; j < len && p.msg[off + (int)j] == 'a' + t; j++)
            ;
        ck_assert_uint_eq(j, len);
        ck_assert_int_eq(seen[t][seq], 0);
        seen[t][seq] = 1;
    }
    free(buf);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    /* The thread test writes 24 MB, which under sanitizers or valgrind
     * takes longer than Check's default 4 s. This overrides
     * CK_DEFAULT_TIMEOUT; CK_TIMEOUT_MULTIPLIER still scales it. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_levels);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_truncation_ascii);
    tcase_add_test(tc, test_truncation_utf8);
    tcase_add_test(tc, test_truncation_by_escapes);
    tcase_add_test(tc, test_exact_limit_not_cut);
    tcase_add_test(tc, test_reopen);
    tcase_add_test(tc, test_append_mode);
    tcase_add_test(tc, test_open_failure_keeps_file);
    tcase_add_test(tc, test_stderr);
    tcase_add_test(tc, test_errno_kept);
    tcase_add_test(tc, test_reopen_failure_keeps_file);
    tcase_add_test(tc, test_write_errors_dropped);
    tcase_add_test(tc, test_refused_paths);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(log_suite());
}
