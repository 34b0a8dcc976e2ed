/*
 * test-persist.c - Check suite for the append-only file's writer, replay
 * and rewrite (src/persist/persist.c, rewrite.c, parked.c), on a real libuv
 * loop, a real store over a small random vocabulary and real files in a
 * fresh directory under /tmp (one per test, all removed at the end): the
 * sequences appended, handed and durable and the release of held replies
 * through the notify callback under every appendfsync policy, the file's
 * exact records, replay after a reopen, everything logged written at close,
 * the rewrite switch-over with writes going on (and its refusal while one
 * runs, its abandon at close), the automatic rewrite's thresholds read
 * through their pointers, a torn tail cut with a warning, damage refused
 * with -EBADMSG and an offset, errors at open, a write error (RLIMIT_FSIZE)
 * holding replies until the retry succeeds, the entries kept only as text,
 * and the NULL (persistence off) API. The record format itself is
 * test-aof.c's. The loop, the store and Check's assertions stay on the
 * test's thread; the writer and rewrite threads are persist's own, so the
 * suite also runs under TSan.
 */
#include <check.h>

#include "runsuite.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "attnkv/store.h"
#include "persist/aof.h"
#include "persist/persist.h"
#include "testutil.h"
#include "util/log.h"

/* The writer's fdatasync, replaced for this program: it fails once with the
 * errno in fdatasync_fail (when set), as a full disk or a quota would make
 * the kernel's fail, and otherwise makes the real system call. */
static atomic_int fdatasync_fail;

int fdatasync(int fd)
{
    int e = atomic_exchange(&fdatasync_fail, 0);

    if (e) {
        errno = e;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

#define AOF_NAME "appendonly.aof"
#define VOCAB_WORDS 200 /* words w0 .. w199; w200 and above do not embed */
#define WAIT_MS 20000   /* bound on every wait; reached only when a test fails */
#define MAXREC 4096     /* records tracked per test */
#define NDB 4           /* databases, for the tests that have several */
#define DELAY_ENV "AKV_TEST_REWRITE_DELAY_US"

static char root[PATH_MAX]; /* made by main, removed at the end */

/* A record logged by the test, to compare with the file. */
struct rec {
    enum akv_aof_type type;
    char key[64];
    char val[512];
};

/* The fixture of the test running, reset by fx_begin (Check runs each test
 * in a process of its own). */
static struct {
    char dir[PATH_MAX], path[PATH_MAX], tmppath[PATH_MAX], logpath[PATH_MAX];
    uv_loop_t loop;
    uv_timer_t keep; /* persist's handles do not keep the loop alive */
    struct akv_vocab *voc;
    struct akv_store *store;
    struct akv_persist *p;
    int pct;
    unsigned long long min_size;
    struct akv_persist_opts opts;
    /* What the loop thread has seen since the last open. */
    uint64_t seen_appended, seen_handed, seen_durable;
    unsigned notifies;
    /* A reply held until the sequence after its write is durable. */
    int held;
    uint64_t held_seq;
    unsigned released;
    int check_file;     /* at a release, the file must hold the record */
    uint64_t file_base; /* file size at open: sequence 0 */
    /* Every record logged, in order. */
    struct rec *recs;
    size_t nrecs;
    /* Several databases (section 4): opened with fx_open_dbs. */
    struct akv_store *dbs[NDB];
    uint32_t ndbs;
    uint64_t clock; /* their clock, ms since the epoch */
} F;

/* ------------------------------------------------------------------------
 * Helpers. Those that run at every loop turn report failures with
 * ck_abort_msg only, so that a wait does not flood Check's message file.
 */

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pause_short(void)
{
    struct timespec ts = {0, 200000}; /* 0.2 ms */

    nanosleep(&ts, NULL);
}

__attribute__((format(printf, 2, 3))) static void xpath(char *dst, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(dst, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX)
        ck_abort_msg("path too long");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int64_t file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        ck_abort_msg("cannot open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        ck_abort_msg("cannot read %s", path);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len, int append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);

    if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
        ck_abort_msg("cannot write %s: %s", path, strerror(errno));
    close(fd);
}

static int log_has(const char *needle)
{
    size_t len;
    char *text = slurp(F.logpath, &len);
    int found = strstr(text, needle) != NULL;

    free(text);
    return found;
}

static void check_seq(void)
{
    uint64_t a = akv_persist_appended(F.p), h = akv_persist_handed(F.p),
             d = akv_persist_durable(F.p);

    if (!(d <= h && h <= a && a >= F.seen_appended && h >= F.seen_handed && d >= F.seen_durable))
        ck_abort_msg("sequences out of order: appended %llu handed %llu durable %llu, before "
                     "%llu %llu %llu",
                     (unsigned long long)a, (unsigned long long)h, (unsigned long long)d,
                     (unsigned long long)F.seen_appended, (unsigned long long)F.seen_handed,
                     (unsigned long long)F.seen_durable);
    F.seen_appended = a;
    F.seen_handed = h;
    F.seen_durable = d;
}

/* One turn of the loop, without blocking. */
static void turn(void)
{
    uv_run(&F.loop, UV_RUN_NOWAIT);
    if (F.p)
        check_seq();
}

#define WAIT_UNTIL(cond)                                                                           \
    do {                                                                                           \
        uint64_t dl_ = now_ms() + WAIT_MS;                                                         \
        turn();                                                                                    \
        while (!(cond)) {                                                                          \
            if (now_ms() > dl_)                                                                    \
                ck_abort_msg("timed out waiting for %s", #cond);                                   \
            pause_short();                                                                         \
            turn();                                                                                \
        }                                                                                          \
    } while (0)

/* Runs the loop for ms milliseconds. */
static void run_for(unsigned ms)
{
    uint64_t end = now_ms() + ms;

    while (now_ms() < end) {
        turn();
        pause_short();
    }
}

static int durable_all(void)
{
    return akv_persist_durable(F.p) == akv_persist_appended(F.p);
}

static struct akv_persist_info info_now(void)
{
    struct akv_persist_info info;

    akv_persist_info(F.p, &info);
    return info;
}

static void on_notify(void *arg)
{
    uint64_t d;

    if (arg != &F)
        ck_abort_msg("notify: wrong argument");
    check_seq();
    F.notifies++;
    d = akv_persist_durable(F.p);
    if (F.held && d >= F.held_seq) {
        F.held = 0;
        F.released++;
        if (F.check_file && (uint64_t)file_size(F.path) < F.file_base + F.held_seq)
            ck_abort_msg("reply released at durable %llu but %s has only %lld bytes",
                         (unsigned long long)d, F.path, (long long)file_size(F.path));
    }
}

static void keep_cb(uv_timer_t *t)
{
    (void)t;
}

static void fx_begin(enum akv_fsync policy)
{
    char tmpl[PATH_MAX];

    memset(&F, 0, sizeof(F));
    unsetenv(DELAY_ENV);
    xpath(tmpl, "%s/t-XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_ptr_nonnull(realpath(tmpl, F.dir));
    xpath(F.path, "%s/%s", F.dir, AOF_NAME);
    xpath(F.tmppath, "%s/temp-rewrite-%s", F.dir, AOF_NAME);
    xpath(F.logpath, "%s/test.log", F.dir);
    ck_assert_int_eq(akv_log_open(F.logpath), 0);
    ck_assert_int_eq(uv_loop_init(&F.loop), 0);
    ck_assert_int_eq(uv_timer_init(&F.loop, &F.keep), 0);
    ck_assert_int_eq(uv_timer_start(&F.keep, keep_cb, 3600000, 3600000), 0);
    F.voc = tu_random_vocab(VOCAB_WORDS, 8, 1.0, 7);
    ck_assert_int_eq(akv_store_create(&F.store, F.voc), 0);
    F.opts.dir = F.dir;
    F.opts.filename = AOF_NAME;
    F.opts.fsync = policy;
    F.opts.rewrite_percentage = &F.pct;
    F.opts.rewrite_min_size = &F.min_size;
    F.recs = calloc(MAXREC, sizeof(*F.recs));
    ck_assert_ptr_nonnull(F.recs);
}

static int fx_open_rc(char *err, size_t errlen)
{
    int rc;

    F.seen_appended = F.seen_handed = F.seen_durable = 0;
    F.notifies = 0;
    F.held = 0;
    F.released = 0;
    F.check_file = 0;
    rc = akv_persist_open(&F.p, &F.loop, &F.store, 1, &F.opts, err, errlen);
    if (rc == 0) {
        akv_persist_set_notify(F.p, on_notify, &F);
        F.file_base = (uint64_t)file_size(F.path);
    }
    return rc;
}

static void fx_open(void)
{
    char err[1024] = "";
    int rc = fx_open_rc(err, sizeof(err));

    ck_assert_msg(rc == 0, "akv_persist_open: %d (%s)", rc, err);
    ck_assert_ptr_nonnull(F.p);
}

static void count_handle(uv_handle_t *h, void *arg)
{
    if (h != (uv_handle_t *)&F.keep)
        ++*(int *)arg;
}

static int other_handles(void)
{
    int n = 0;

    uv_walk(&F.loop, count_handle, &n);
    return n;
}

/* Close, run the loop until persist's handles are closed, destroy. */
static void fx_close(void)
{
    akv_persist_close(F.p);
    WAIT_UNTIL(other_handles() == 0);
    akv_persist_destroy(F.p);
    F.p = NULL;
}

static void fx_end(void)
{
    if (F.p)
        fx_close();
    akv_store_destroy(F.store);
    akv_vocab_destroy(F.voc);
    uv_timer_stop(&F.keep);
    uv_close((uv_handle_t *)&F.keep, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&F.loop), 0);
    akv_log_close();
    rm_rf(F.dir);
    free(F.recs);
    F.recs = NULL;
}

/* Store comparison: same count, and every entry of want in got with the same
 * value. */
struct cmp {
    const struct akv_store *got;
    size_t bad;
    char first_bad[128];
};

static int cmp_entry(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    struct cmp *c = arg;
    const char *gv;
    size_t gl;

    if (!akv_store_get(c->got, k, kl, &gv, &gl) || gl != vl || memcmp(gv, v, vl) != 0) {
        if (c->bad++ == 0)
            snprintf(c->first_bad, sizeof(c->first_bad), "%.*s", (int)(kl > 100 ? 100 : kl), k);
    }
    return 0;
}

static void assert_same_store(const struct akv_store *got, const struct akv_store *want)
{
    struct cmp c = {.got = got};
    uint64_t cur = 0;

    ck_assert_uint_eq(akv_store_count(got), akv_store_count(want));
    do {
        cur = akv_store_iter(want, cur, 64, cmp_entry, &c);
    } while (cur != 0);
    ck_assert_msg(c.bad == 0, "%zu entries differ, first key '%s'", c.bad, c.first_bad);
}

static void track(enum akv_aof_type type, const char *k, const char *v)
{
    struct rec *r;

    if (F.nrecs >= MAXREC)
        ck_abort_msg("too many records for the test's list");
    r = &F.recs[F.nrecs++];
    r->type = type;
    snprintf(r->key, sizeof(r->key), "%s", k ? k : "");
    snprintf(r->val, sizeof(r->val), "%s", v ? v : "");
}

/* A handler's steps: reserve, change the store, log. */
static void w_set(const char *k, const char *v)
{
    char err[256];
    size_t kl = strlen(k), vl = strlen(v);
    int rc = akv_persist_reserve(F.p, AKV_AOF_PUT, kl, vl);

    if (rc != 0)
        ck_abort_msg("reserve: %d", rc);
    rc = akv_store_set(F.store, k, kl, v, vl, err, sizeof(err));
    if (rc != 0)
        ck_abort_msg("set '%s': %d %s", k, rc, err);
    akv_persist_log_put(F.p, 0, k, kl, v, vl, 0);
    track(AKV_AOF_PUT, k, v);
}

static int w_del(const char *k)
{
    size_t kl = strlen(k);
    int existed, rc = akv_persist_reserve(F.p, AKV_AOF_DELETE, kl, 0);

    if (rc != 0)
        ck_abort_msg("reserve: %d", rc);
    existed = akv_store_del(F.store, k, kl);
    akv_persist_log_del(F.p, 0, k, kl, existed);
    if (existed)
        track(AKV_AOF_DELETE, k, NULL);
    return existed;
}

static void w_flushall(void)
{
    if (akv_persist_reserve(F.p, AKV_AOF_FLUSHALL, 0, 0) != 0)
        ck_abort_msg("reserve failed");
    akv_store_flush(F.store);
    akv_persist_log_flushall(F.p);
    track(AKV_AOF_FLUSHALL, NULL, NULL);
}

static size_t set_size(const char *k, const char *v)
{
    return akv_aof_record_size(AKV_AOF_PUT, strlen(k), strlen(v));
}

/* Key i and its value in round r: words of the vocabulary. */
static void kv(char *k, char *v, unsigned i, unsigned r)
{
    snprintf(k, 16, "w%u", i % VOCAB_WORDS);
    snprintf(v, 32, "w%u w%u", (i * 7 + r) % VOCAB_WORDS, (i + r * 13 + 1) % VOCAB_WORDS);
}

/* Closes, replays the file into a fresh store and compares it with the
 * store the writes went to, which it replaces. */
static void fx_reopen(void)
{
    struct akv_store *old = F.store;

    fx_close(); /* also after akv_persist_close: a second close does nothing */
    ck_assert_int_eq(akv_store_create(&F.store, F.voc), 0);
    fx_open();
    assert_same_store(F.store, old);
    akv_store_destroy(old);
}

/* The file's records, parsed. */
struct parsed {
    char *buf;
    size_t len;
    struct akv_aof_result res;
    size_t n;
    struct akv_aof_record r[MAXREC];
};

static int collect(void *arg, const struct akv_aof_record *r)
{
    struct parsed *ps = arg;

    if (ps->n < MAXREC)
        ps->r[ps->n] = *r;
    ps->n++;
    return 0;
}

static struct parsed *parse_file(const char *path)
{
    struct parsed *ps = calloc(1, sizeof(*ps));

    ck_assert_ptr_nonnull(ps);
    ps->buf = slurp(path, &ps->len);
    ck_assert_int_eq(akv_aof_parse(ps->buf, ps->len, collect, ps, &ps->res), 0);
    return ps;
}

static void parsed_free(struct parsed *ps)
{
    free(ps->buf);
    free(ps);
}

static int rec_matches(const struct akv_aof_record *r, const struct rec *e)
{
    if (r->type != e->type)
        return 0;
    if (r->type == AKV_AOF_FLUSHALL)
        return 1;
    if (r->klen != strlen(e->key) || memcmp(r->key, e->key, r->klen) != 0)
        return 0;
    return r->type != AKV_AOF_PUT ||
           (r->vlen == strlen(e->val) && memcmp(r->val, e->val, r->vlen) == 0);
}

/* The whole file is exactly the records logged, in order. */
static void assert_file_is_tracked(void)
{
    struct parsed *ps = parse_file(F.path);

    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->res.good_end, ps->len);
    ck_assert_uint_eq(ps->n, F.nrecs);
    for (size_t i = 0; i < ps->n; i++)
        ck_assert_msg(rec_matches(&ps->r[i], &F.recs[i]), "record %zu is not %s '%s'", i,
                      akv_aof_type_name(F.recs[i].type), F.recs[i].key);
    parsed_free(ps);
}

/* A file written with plain I/O: the header, then records. */
static size_t put_rec(char *buf, size_t off, enum akv_aof_type t, const char *k, const char *v)
{
    size_t kl = k ? strlen(k) : 0, vl = v ? strlen(v) : 0;

    return off + akv_aof_encode(buf + off, t, k, kl, v, vl);
}

/* ------------------------------------------------------------------------
 * 1. Sequences, reply release, the file's records and replay, per policy.
 */

START_TEST(test_sequences)
{
    enum akv_fsync pol = (enum akv_fsync)_i;
    struct akv_persist_info info;
    char k[16], v[32];
    uint64_t expect = 0, seq;
    size_t nrec;

    fx_begin(pol);
    fx_open();
    F.check_file = 1;
    info = info_now();
    ck_assert_int_eq(info.enabled, 1);
    ck_assert_int_eq(info.fsync, pol);
    ck_assert_uint_eq(info.current_size, AKV_AOF_FILE_HEADER);
    ck_assert_uint_eq(info.base_size, AKV_AOF_FILE_HEADER);
    ck_assert_uint_eq(info.replayed, 0);
    ck_assert_int_eq(info.rewrite_in_progress, 0);
    ck_assert_int_eq(info.write_error, 0);
    ck_assert_int_eq(akv_persist_write_error(F.p), 0);
    ck_assert_int_eq(file_size(F.path), AKV_AOF_FILE_HEADER);
    ck_assert(log_has("created"));
    ck_assert_uint_eq(akv_persist_appended(F.p), 0);
    ck_assert_uint_eq(akv_persist_handed(F.p), 0);
    ck_assert_uint_eq(akv_persist_durable(F.p), 0);

    /* Batch 1: SETs. Appended grows at once, by the records' sizes;
     * nothing is handed before the loop turns. */
    for (unsigned i = 0; i < 8; i++) {
        kv(k, v, i, 0);
        w_set(k, v);
        expect += set_size(k, v);
        ck_assert_uint_eq(akv_persist_appended(F.p), expect);
    }
    ck_assert_uint_eq(akv_persist_handed(F.p), 0);
    ck_assert_uint_eq(akv_persist_durable(F.p), 0);
    ck_assert_uint_eq(info_now().pending_bytes, expect);
    F.held = 1;
    F.held_seq = expect;
    turn(); /* the prepare hands the whole batch over */
    ck_assert_uint_eq(akv_persist_handed(F.p), expect);
    WAIT_UNTIL(F.released == 1);
    ck_assert_uint_ge(F.notifies, 1);
    ck_assert_uint_eq(akv_persist_durable(F.p), expect);
    ck_assert_uint_eq(info_now().pending_bytes, 0);
    ck_assert_uint_eq(info_now().current_size, AKV_AOF_FILE_HEADER + expect);
    ck_assert_int_eq(file_size(F.path), (int64_t)(AKV_AOF_FILE_HEADER + expect));
    assert_file_is_tracked();

    /* Batch 2: a DEL of a present key is logged, of an absent one not; an
     * overwrite. */
    ck_assert_int_eq(w_del("w0"), 1);
    expect += akv_aof_record_size(AKV_AOF_DELETE, 2, 0);
    ck_assert_uint_eq(akv_persist_appended(F.p), expect);
    ck_assert_int_eq(w_del("w150"), 0);
    ck_assert_uint_eq(akv_persist_appended(F.p), expect);
    w_set("w1", "w9 w9 w10");
    expect += set_size("w1", "w9 w9 w10");
    ck_assert_uint_eq(akv_persist_appended(F.p), expect);
    seq = expect;
    F.held = 1;
    F.held_seq = seq;
    ck_assert_uint_lt(akv_persist_durable(F.p), seq);
    WAIT_UNTIL(F.released == 2);
    ck_assert_uint_eq(akv_persist_durable(F.p), seq);

    /* Batch 3: FLUSHALL, then SETs. */
    w_flushall();
    expect += akv_aof_record_size(AKV_AOF_FLUSHALL, 0, 0);
    ck_assert_uint_eq(akv_persist_appended(F.p), expect);
    ck_assert_uint_eq(akv_store_count(F.store), 0);
    for (unsigned i = 20; i < 26; i++) {
        kv(k, v, i, 1);
        w_set(k, v);
        expect += set_size(k, v);
    }
    ck_assert_uint_eq(akv_persist_appended(F.p), expect);
    F.held = 1;
    F.held_seq = expect;
    WAIT_UNTIL(F.released == 3);
    ck_assert_uint_ge(F.notifies, 3);
    ck_assert_int_eq(file_size(F.path), (int64_t)(AKV_AOF_FILE_HEADER + expect));
    assert_file_is_tracked();

    /* Reopen: replay gives the same store; sequences start again at 0. */
    nrec = F.nrecs;
    fx_reopen();
    F.check_file = 1;
    info = info_now();
    ck_assert_uint_eq(info.replayed, nrec);
    ck_assert_uint_eq(info.current_size, AKV_AOF_FILE_HEADER + expect);
    ck_assert_uint_eq(info.base_size, AKV_AOF_FILE_HEADER + expect);
    ck_assert_uint_eq(akv_persist_appended(F.p), 0);
    ck_assert_uint_eq(akv_store_count(F.store), 6);

    /* Writes after the reopen go after the old records. */
    w_set("w21", "w3");
    ck_assert_int_eq(w_del("w22"), 1);
    w_set("w40 w41", "w42 w43 w44");
    F.held = 1;
    F.held_seq = akv_persist_appended(F.p);
    WAIT_UNTIL(F.released == 1);
    ck_assert_int_eq(file_size(F.path),
                     (int64_t)(AKV_AOF_FILE_HEADER + expect + akv_persist_appended(F.p)));
    assert_file_is_tracked();
    nrec = F.nrecs;
    fx_reopen();
    ck_assert_uint_eq(info_now().replayed, nrec);
    fx_end();
}
END_TEST

/* Close writes (and fsyncs) everything logged, even what the loop never
 * handed over; a second close does nothing; no rewrite starts after it. */
START_TEST(test_close_writes_all)
{
    enum akv_fsync pol = (enum akv_fsync)_i;
    char k[16], v[32];
    uint64_t appended;

    fx_begin(pol);
    fx_open();
    for (unsigned i = 0; i < 40; i++) {
        kv(k, v, i, 3);
        w_set(k, v);
    }
    for (unsigned i = 0; i < 40; i += 3) {
        kv(k, v, i, 3);
        ck_assert_int_eq(w_del(k), 1);
    }
    w_set("w1", "w2 w3");
    appended = akv_persist_appended(F.p);
    ck_assert_uint_eq(akv_persist_handed(F.p), 0); /* the loop never turned */
    ck_assert_int_eq(file_size(F.path), AKV_AOF_FILE_HEADER);
    akv_persist_close(F.p);
    ck_assert_uint_eq(akv_persist_handed(F.p), appended);
    ck_assert_int_eq(file_size(F.path), (int64_t)(AKV_AOF_FILE_HEADER + appended));
    akv_persist_close(F.p); /* again: nothing */
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), -ESHUTDOWN);
    ck_assert_int_eq(info_now().rewrite_in_progress, 0);
    ck_assert(!log_has("could not be written"));
    assert_file_is_tracked();
    fx_reopen();
    ck_assert_uint_eq(info_now().replayed, F.nrecs);
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. Rewrites.
 */

/* Copies the store's entries into *copy; returns the bytes of the SET
 * records a rewrite writes for them. */
struct copy {
    struct akv_store *dst;
    uint64_t bytes;
};

static int copy_entry(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    struct copy *c = arg;
    const char *gv;
    size_t gl;
    char err[256];

    if (akv_store_get(c->dst, k, kl, &gv, &gl))
        return 0; /* the iteration may report a key twice */
    if (akv_store_set(c->dst, k, kl, v, vl, err, sizeof(err)) != 0)
        ck_abort_msg("copy: %s", err);
    c->bytes += akv_aof_record_size(AKV_AOF_PUT, kl, vl);
    return 0;
}

static uint64_t copy_store(struct akv_store **out)
{
    struct copy c = {0};
    uint64_t cur = 0;

    ck_assert_int_eq(akv_store_create(&c.dst, F.voc), 0);
    do {
        cur = akv_store_iter(F.store, cur, 64, copy_entry, &c);
    } while (cur != 0);
    *out = c.dst;
    return c.bytes;
}

static int has(const struct akv_store *s, const char *k, const char *want)
{
    const char *v;
    size_t vl;

    if (!akv_store_get(s, k, strlen(k), &v, &vl))
        return want == NULL;
    return want != NULL && vl == strlen(want) && memcmp(v, want, vl) == 0;
}

/* A rewrite with writes going on: they are acknowledged while it scans, and
 * the new file holds the snapshot, compacted, then every record logged
 * since the start. */
START_TEST(test_rewrite)
{
    enum akv_fsync pol = (enum akv_fsync)_i;
    char k[16], v[32];
    struct akv_store *snapcopy, *x;
    struct akv_persist_info info;
    struct parsed *ps;
    uint64_t before, after, snap_bytes, a0, next, dl;
    size_t n_snap, nrec0, during, n = 0;

    fx_begin(pol);
    setenv(DELAY_ENV, "8000", 1); /* 30 entries: a scan of 240 ms at least */
    fx_open();
    for (unsigned r = 0; r < 8; r++) {
        for (unsigned i = 0; i < 40; i++) {
            kv(k, v, i, r);
            w_set(k, v);
        }
    }
    for (unsigned i = 30; i < 40; i++) {
        kv(k, v, i, 0);
        ck_assert_int_eq(w_del(k), 1);
    }
    WAIT_UNTIL(durable_all());
    before = (uint64_t)file_size(F.path);
    ck_assert_uint_eq(before, AKV_AOF_FILE_HEADER + akv_persist_appended(F.p));
    n_snap = akv_store_count(F.store);
    ck_assert_uint_eq(n_snap, 30);
    snap_bytes = copy_store(&snapcopy);
    a0 = akv_persist_appended(F.p);
    nrec0 = F.nrecs;

    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    info = info_now();
    ck_assert_int_eq(info.rewrite_in_progress, 1);
    ck_assert_uint_eq(info.rewrites, 0);
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), -EBUSY);
    ck_assert_int_ge(file_size(F.tmppath), 0);

    /* Writes while it scans: a new key, an overwrite, a DEL of a key the
     * snapshot has; a DEL of an absent key is not logged. */
    w_set("w150", "w1 w2");
    w_set("w0", "w3 w4");
    ck_assert_int_eq(w_del("w1"), 1);
    ck_assert_int_eq(w_del("w35"), 0);
    F.held = 1;
    F.held_seq = akv_persist_appended(F.p);
    WAIT_UNTIL(F.released == 1);
    /* Acknowledged without waiting for the rewrite. */
    info = info_now();
    ck_assert_int_eq(info.rewrite_in_progress, 1);
    ck_assert_uint_eq(info.rewrites, 0);
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), -EBUSY);

    /* A write every 5 ms until it has switched over. */
    next = 0;
    dl = now_ms() + WAIT_MS;
    while (info_now().rewrite_in_progress) {
        if (now_ms() >= next) {
            kv(k, v, 100 + (unsigned)(n % 50), (unsigned)n);
            w_set(k, v);
            n++;
            next = now_ms() + 5;
        }
        if (now_ms() > dl)
            ck_abort_msg("the rewrite did not finish");
        pause_short();
        turn();
    }
    ck_assert_uint_gt(n, 3);
    WAIT_UNTIL(durable_all());
    info = info_now();
    ck_assert_uint_eq(info.rewrites, 1);
    ck_assert_int_eq(info.last_rewrite_ok, 1);
    ck_assert_int_eq(info.rewrite_in_progress, 0);
    ck_assert(info.last_rewrite_ms > 0);
    ck_assert(log_has("AOF rewritten"));
    ck_assert_int_eq(file_size(F.tmppath), -1);
    after = (uint64_t)file_size(F.path);
    ck_assert_uint_eq(after, AKV_AOF_FILE_HEADER + snap_bytes + (akv_persist_appended(F.p) - a0));
    ck_assert_uint_lt(after, before);
    ck_assert_uint_eq(info.current_size, after);
    ck_assert_uint_ge(info.base_size, AKV_AOF_FILE_HEADER + snap_bytes);
    ck_assert_uint_le(info.base_size, after);

    /* The file: the snapshot as one SET per entry, then every record
     * logged since the start, in order. */
    during = F.nrecs - nrec0;
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->n, n_snap + during);
    ck_assert_int_eq(akv_store_create(&x, F.voc), 0);
    for (size_t i = 0; i < n_snap; i++) {
        char err[256];
        ck_assert_int_eq(ps->r[i].type, AKV_AOF_PUT);
        ck_assert_int_eq(akv_store_set(x, ps->r[i].key, ps->r[i].klen, ps->r[i].val, ps->r[i].vlen,
                                       err, sizeof(err)),
                         0);
    }
    assert_same_store(x, snapcopy); /* also: no key twice */
    for (size_t i = 0; i < during; i++)
        ck_assert_msg(rec_matches(&ps->r[n_snap + i], &F.recs[nrec0 + i]),
                      "record %zu after the snapshot", i);
    parsed_free(ps);
    akv_store_destroy(x);
    akv_store_destroy(snapcopy);

    /* Everything survives a reopen, the writes made during the rewrite
     * included. */
    fx_reopen();
    ck_assert_uint_eq(info_now().replayed, n_snap + during);
    ck_assert(has(F.store, "w150", "w1 w2"));
    ck_assert(has(F.store, "w0", "w3 w4"));
    ck_assert(has(F.store, "w1", NULL));
    fx_end();
}
END_TEST

/* Close during a rewrite abandons it promptly: the temporary file goes, the
 * AOF keeps every record. */
START_TEST(test_rewrite_abandoned_at_close)
{
    char k[16], v[32];
    struct akv_persist_info info;
    uint64_t t0;

    fx_begin(AKV_FSYNC_EVERYSEC);
    setenv(DELAY_ENV, "50000", 1); /* 30 entries: 1.5 s if not cancelled */
    fx_open();
    for (unsigned r = 0; r < 2; r++) {
        for (unsigned i = 0; i < 30; i++) {
            kv(k, v, i, r);
            w_set(k, v);
        }
    }
    WAIT_UNTIL(durable_all());
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    w_set("w160", "w5");
    turn();
    ck_assert_int_eq(info_now().rewrite_in_progress, 1);
    ck_assert_int_ge(file_size(F.tmppath), 0);
    t0 = now_ms();
    akv_persist_close(F.p);
    ck_assert_uint_lt(now_ms() - t0, 1000);
    ck_assert(log_has("abandoned"));
    ck_assert_int_eq(file_size(F.tmppath), -1);
    info = info_now();
    ck_assert_int_eq(info.rewrite_in_progress, 0);
    ck_assert_uint_eq(info.rewrites, 0);
    ck_assert_int_eq(file_size(F.path), (int64_t)(AKV_AOF_FILE_HEADER + akv_persist_appended(F.p)));
    assert_file_is_tracked();
    fx_reopen();
    ck_assert_uint_eq(info_now().replayed, F.nrecs);
    ck_assert(has(F.store, "w160", "w5"));
    fx_end();
}
END_TEST

static uint64_t rewrites(void)
{
    return info_now().rewrites;
}

/* The automatic rewrite: its thresholds are read through the pointers at
 * each report of the writer. */
START_TEST(test_auto_rewrite)
{
    char k[16], v[32];
    uint64_t before, base;
    unsigned n = 0;

    fx_begin(AKV_FSYNC_NO);
    F.pct = 0;
    F.min_size = 1024;
    fx_open();
    for (; n < 120; n++) {
        kv(k, v, n % 10, n);
        w_set(k, v);
    }
    WAIT_UNTIL(durable_all());
    run_for(30);
    /* Percentage 0: never, though the file is many times its base. */
    ck_assert_uint_eq(rewrites(), 0);
    ck_assert_int_eq(info_now().rewrite_in_progress, 0);
    ck_assert_uint_gt(info_now().current_size, 3 * F.min_size);
    ck_assert(!log_has("automatic"));
    before = (uint64_t)file_size(F.path);

    /* Switched on at run time: the next write's report starts one. */
    F.pct = 100;
    w_set("w3", "w4 w5");
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    ck_assert(log_has("starting an automatic AOF rewrite"));
    ck_assert_int_eq(info_now().last_rewrite_ok, 1);
    ck_assert_uint_lt((uint64_t)file_size(F.path), before);
    base = info_now().base_size;
    ck_assert_uint_lt(base, F.min_size);
    ck_assert_uint_eq(akv_store_count(F.store), 10);

    /* Below the minimum size: none, however much it grew. */
    F.min_size = 1ull << 30;
    for (unsigned i = 0; i < 60; i++, n++) {
        kv(k, v, n % 10, n);
        w_set(k, v);
    }
    WAIT_UNTIL(durable_all());
    run_for(30);
    ck_assert_uint_eq(rewrites(), 1);
    ck_assert_uint_gt(info_now().current_size, 3 * base);

    /* Grown less than the percentage: none. */
    F.min_size = 0;
    F.pct = 10000;
    w_set("w3", "w6");
    WAIT_UNTIL(durable_all());
    run_for(30);
    ck_assert_uint_eq(rewrites(), 1);
    ck_assert_int_eq(info_now().rewrite_in_progress, 0);

    /* Both met. */
    F.pct = 100;
    w_set("w3", "w7");
    WAIT_UNTIL(rewrites() == 2 && durable_all());
    ck_assert_int_eq(info_now().last_rewrite_ok, 1);
    ck_assert_uint_lt(info_now().base_size, 2 * base);
    fx_reopen();
    fx_end();
}
END_TEST

/* Entries whose words the vocabulary lacks are kept as text: counted,
 * logged, dropped by a SET, DEL or FLUSHALL of them, written into rewrites,
 * and served by a vocabulary that has the words. */
START_TEST(test_text_only_entries)
{
    static char buf[4096];
    size_t off = AKV_AOF_FILE_HEADER;
    struct akv_vocab *big;
    struct akv_store *bigstore, *old;
    struct akv_persist_info info;
    struct parsed *ps;
    uint64_t a0;
    int seen[3] = {0, 0, 0};

    fx_begin(AKV_FSYNC_NO);
    akv_aof_file_header(buf);
    off = put_rec(buf, off, AKV_AOF_SET, "w1", "w2");
    off = put_rec(buf, off, AKV_AOF_SET, "w3", "w250");
    off = put_rec(buf, off, AKV_AOF_SET, "w260 w1", "w4");
    off = put_rec(buf, off, AKV_AOF_SET, "w9", "w270");
    off = put_rec(buf, off, AKV_AOF_SET, "w5", "w6");
    off = put_rec(buf, off, AKV_AOF_DEL, "w5", NULL);
    spit(F.path, buf, off, 0);
    fx_open();
    info = info_now();
    ck_assert_uint_eq(info.replayed, 6);
    ck_assert_uint_eq(info.unembeddable, 3);
    ck_assert_uint_eq(akv_store_count(F.store), 1);
    ck_assert(has(F.store, "w1", "w2"));
    ck_assert(has(F.store, "w3", NULL));
    ck_assert(log_has("3 entries do not embed"));
    ck_assert(log_has("w260 w1")); /* named among the first keys */

    w_set("w3", "w8"); /* replaces the text-only w3 */
    ck_assert_uint_eq(info_now().unembeddable, 2);
    a0 = akv_persist_appended(F.p);
    ck_assert_int_eq(w_del("w9"), 0); /* not in the store, but text-only: logged */
    ck_assert_uint_eq(akv_persist_appended(F.p), a0 + akv_aof_record_size(AKV_AOF_DELETE, 2, 0));
    ck_assert_uint_eq(info_now().unembeddable, 1);
    a0 = akv_persist_appended(F.p);
    ck_assert_int_eq(w_del("w7"), 0); /* in neither: not logged */
    ck_assert_uint_eq(akv_persist_appended(F.p), a0);

    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->n, 3);
    for (size_t i = 0; i < ps->n; i++) {
        static const struct rec want[3] = {
            {AKV_AOF_PUT, "w1", "w2"}, {AKV_AOF_PUT, "w3", "w8"}, {AKV_AOF_PUT, "w260 w1", "w4"}};
        for (int j = 0; j < 3; j++)
            seen[j] += rec_matches(&ps->r[i], &want[j]);
    }
    ck_assert_msg(seen[0] == 1 && seen[1] == 1 && seen[2] == 1, "seen %d %d %d", seen[0], seen[1],
                  seen[2]);
    parsed_free(ps);
    fx_close();

    /* A vocabulary that has the words serves it. */
    big = tu_random_vocab(2 * VOCAB_WORDS, 8, 1.0, 7);
    ck_assert_int_eq(akv_store_create(&bigstore, big), 0);
    old = F.store;
    F.store = bigstore;
    fx_open();
    ck_assert_uint_eq(info_now().unembeddable, 0);
    ck_assert_uint_eq(info_now().replayed, 3);
    ck_assert_uint_eq(akv_store_count(F.store), 3);
    ck_assert(has(F.store, "w260 w1", "w4"));
    ck_assert(has(F.store, "w3", "w8"));
    fx_close();
    akv_store_destroy(bigstore);
    akv_vocab_destroy(big);

    /* The first vocabulary again: text-only again, until a FLUSHALL. */
    akv_store_destroy(old);
    ck_assert_int_eq(akv_store_create(&F.store, F.voc), 0);
    fx_open();
    ck_assert_uint_eq(info_now().unembeddable, 1);
    ck_assert_uint_eq(akv_store_count(F.store), 2);
    w_flushall();
    ck_assert_uint_eq(info_now().unembeddable, 0);
    WAIT_UNTIL(durable_all());
    fx_reopen();
    ck_assert_uint_eq(info_now().unembeddable, 0);
    ck_assert_uint_eq(akv_store_count(F.store), 0);
    fx_end();
}
END_TEST

/* Payload entries (PAYLOAD records): replayed as payloads, whatever their
 * bytes; parked only when their key does not embed (never for their
 * value), and written back as PAYLOAD records by a rewrite, parked or not;
 * a vocabulary that has the key's words serves the parked one as a
 * payload. */
START_TEST(test_payload_records)
{
    static char buf[4096];
    static const char bin[] = "w250 {\"x\":\0 1}\r\n";
    size_t off = AKV_AOF_FILE_HEADER, binlen = sizeof bin - 1;
    struct akv_vocab *big;
    struct akv_store *bigstore, *old;
    struct akv_store_found f;
    struct parsed *ps;
    int seen_bin = 0, seen_parked = 0;

    fx_begin(AKV_FSYNC_NO);
    akv_aof_file_header(buf);
    off += akv_aof_encode(buf + off, AKV_AOF_PAYLOAD, "w1", 2, bin, binlen);
    off = put_rec(buf, off, AKV_AOF_PAYLOAD, "w260 w2", "w3");
    off = put_rec(buf, off, AKV_AOF_PAYLOAD, "w4", "w270"); /* a word the vocabulary lacks */
    off = put_rec(buf, off, AKV_AOF_SET, "w5", "w6");
    spit(F.path, buf, off, 0);
    fx_open();
    ck_assert_uint_eq(info_now().replayed, 4);
    ck_assert_uint_eq(info_now().unembeddable, 1); /* w260 w2, for its key */
    ck_assert_uint_eq(akv_store_count(F.store), 3);
    ck_assert_int_eq(akv_store_find(F.store, "w1", 2, &f), AKV_STORE_LIVE);
    ck_assert(f.payload && f.vlen == binlen && memcmp(f.val, bin, binlen) == 0);
    ck_assert_int_eq(akv_store_find(F.store, "w4", 2, &f), AKV_STORE_LIVE);
    ck_assert(f.payload);
    ck_assert_int_eq(akv_store_find(F.store, "w5", 2, &f), AKV_STORE_LIVE);
    ck_assert(!f.payload);

    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->n, 4);
    ck_assert_uint_eq(ps->res.counts[AKV_AOF_PAYLOAD], 3);
    ck_assert_uint_eq(ps->res.counts[AKV_AOF_PUT], 1);
    for (size_t i = 0; i < ps->n; i++) {
        const struct akv_aof_record *r = &ps->r[i];
        seen_bin +=
            r->type == AKV_AOF_PAYLOAD && r->vlen == binlen && memcmp(r->val, bin, binlen) == 0;
        seen_parked +=
            r->type == AKV_AOF_PAYLOAD && r->klen == 7 && memcmp(r->key, "w260 w2", 7) == 0;
    }
    ck_assert_int_eq(seen_bin, 1);
    ck_assert_int_eq(seen_parked, 1);
    parsed_free(ps);
    fx_close();

    big = tu_random_vocab(2 * VOCAB_WORDS, 8, 1.0, 7);
    ck_assert_int_eq(akv_store_create(&bigstore, big), 0);
    old = F.store;
    F.store = bigstore;
    fx_open();
    ck_assert_uint_eq(info_now().unembeddable, 0);
    ck_assert_uint_eq(akv_store_count(F.store), 4);
    ck_assert_int_eq(akv_store_find(F.store, "w260 w2", 7, &f), AKV_STORE_LIVE);
    ck_assert(f.payload && f.vlen == 2 && memcmp(f.val, "w3", 2) == 0);
    fx_close();
    akv_store_destroy(bigstore);
    akv_vocab_destroy(big);
    F.store = old;
    fx_end();
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. Torn tails, damage, errors.
 */

/* A last record cut short (as a crash mid-write leaves it) is cut off with
 * a warning; what comes before is replayed, and new records go where the
 * torn one was. */
START_TEST(test_torn_tail)
{
    static const size_t cuts[] = {1, 10, 17, 0 /* all but the last byte */};
    char k[16], v[32], rec[128], want[64];
    size_t rs, cut;
    int64_t good;
    struct akv_store *old;

    fx_begin(AKV_FSYNC_EVERYSEC);
    fx_open();
    for (unsigned i = 0; i < 12; i++) {
        kv(k, v, i, 0);
        w_set(k, v);
    }
    ck_assert_int_eq(w_del("w4"), 1);
    fx_close();
    good = file_size(F.path);
    rs = akv_aof_encode(rec, AKV_AOF_SET, "w5", 2, "w6 w7", 5);
    cut = cuts[_i] ? cuts[_i] : rs - 1;
    spit(F.path, rec, cut, 1);
    ck_assert_int_eq(file_size(F.path), good + (int64_t)cut);

    old = F.store;
    ck_assert_int_eq(akv_store_create(&F.store, F.voc), 0);
    fx_open();
    F.check_file = 1;
    assert_same_store(F.store, old);
    akv_store_destroy(old);
    ck_assert_int_eq(file_size(F.path), good);
    ck_assert(log_has("is incomplete"));
    snprintf(want, sizeof(want), "at offset %lld", (long long)good);
    ck_assert(log_has(want));
    ck_assert(log_has(F.path));
    ck_assert_uint_eq(info_now().replayed, F.nrecs);
    ck_assert_uint_eq(info_now().current_size, (uint64_t)good);

    w_set("w5", "w8");
    F.held = 1;
    F.held_seq = akv_persist_appended(F.p);
    WAIT_UNTIL(F.released == 1);
    ck_assert_int_eq(file_size(F.path), good + (int64_t)set_size("w5", "w8"));
    assert_file_is_tracked();
    fx_reopen();
    fx_end();
}
END_TEST

/* akv_persist_begin, then akv_persist_load in slices: nothing is written
 * and no handle exists until the last slice, which cuts the torn tail and
 * starts the writer; closing during the replay leaves the file as it was. */
START_TEST(test_load_in_steps)
{
    char k[16], v[32], rec[128], err[512] = "";
    struct akv_store *old;
    struct akv_persist_info info;
    size_t len0, len1, steps = 0;
    char *before, *after;
    int64_t good;
    int rc;

    fx_begin(AKV_FSYNC_EVERYSEC);
    fx_open();
    for (unsigned i = 0; i < 300; i++) {
        kv(k, v, i, 0);
        w_set(k, v);
    }
    fx_close();
    good = file_size(F.path);
    spit(F.path, rec, akv_aof_encode(rec, AKV_AOF_SET, "w5", 2, "w6 w7", 5) - 3, 1);
    before = slurp(F.path, &len0);

    /* Closed half way: the file stays byte for byte. */
    F.seen_appended = F.seen_handed = F.seen_durable = 0;
    old = F.store;
    ck_assert_int_eq(akv_store_create(&F.store, F.voc), 0);
    ck_assert_int_eq(akv_persist_begin(&F.p, &F.loop, &F.store, 1, &F.opts, err, sizeof(err)), 0);
    ck_assert(akv_persist_loading(F.p));
    ck_assert_int_eq(akv_persist_load(F.p, 0, err, sizeof(err)), 1);
    akv_persist_info(F.p, &info);
    ck_assert(info.loading && info.loading_total_bytes == len0);
    ck_assert_uint_gt(info.loading_loaded_bytes, 0);
    ck_assert_uint_lt(info.loading_loaded_bytes, len0);
    ck_assert_int_eq(other_handles(), 0);
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), -EAGAIN);
    fx_close();
    after = slurp(F.path, &len1);
    ck_assert_uint_eq(len1, len0);
    ck_assert(memcmp(before, after, len0) == 0);
    free(after);
    akv_store_destroy(F.store);

    /* To the end, one short slice at a time. */
    ck_assert_int_eq(akv_store_create(&F.store, F.voc), 0);
    ck_assert_int_eq(akv_persist_begin(&F.p, &F.loop, &F.store, 1, &F.opts, err, sizeof(err)), 0);
    while ((rc = akv_persist_load(F.p, 0, err, sizeof(err))) == 1) {
        ck_assert_int_eq(other_handles(), 0);
        steps++;
    }
    ck_assert_msg(rc == 0, "%d %s", rc, err);
    ck_assert_uint_gt(steps, 2);
    ck_assert(!akv_persist_loading(F.p));
    ck_assert_int_eq(akv_persist_load(F.p, 0, err, sizeof(err)), 0);
    F.seen_appended = F.seen_handed = F.seen_durable = 0;
    F.released = 0;
    akv_persist_set_notify(F.p, on_notify, &F);
    F.file_base = (uint64_t)good;
    akv_persist_info(F.p, &info);
    ck_assert(!info.loading);
    ck_assert_uint_eq(info.replayed, 300);
    ck_assert_int_eq(file_size(F.path), good);
    assert_same_store(F.store, old);
    akv_store_destroy(old);
    free(before);
    w_set("w5", "w8");
    F.held = 1;
    F.held_seq = akv_persist_appended(F.p);
    WAIT_UNTIL(F.released == 1);
    fx_reopen();
    fx_end();
}
END_TEST

/* opts->create (appendonly switched on at run time): the file is made by
 * a rewrite of the store, replacing an older one only once it is whole,
 * and carries what was logged meanwhile; appendfsync changes under way. */
START_TEST(test_create_and_fsync_at_run_time)
{
    char k[16], v[32], err[512] = "";
    struct akv_persist_info info;

    fx_begin(AKV_FSYNC_NO);
    spit(F.path, "old contents", 12, 0);
    for (unsigned i = 0; i < 50; i++) {
        kv(k, v, i, 0);
        ck_assert_int_eq(akv_store_put(F.store, k, strlen(k), v, strlen(v), 0, NULL, 0), 0);
    }
    F.opts.create = 1;
    ck_assert_int_eq(akv_persist_begin(&F.p, &F.loop, &F.store, 1, &F.opts, err, sizeof(err)), 0);
    F.opts.create = 0;
    F.seen_appended = F.seen_handed = F.seen_durable = 0;
    akv_persist_set_notify(F.p, on_notify, &F);
    ck_assert(!akv_persist_loading(F.p));
    akv_persist_info(F.p, &info);
    ck_assert(info.enabled && info.no_file && info.rewrite_in_progress);
    w_set("w1", "w2");
    WAIT_UNTIL(info_now().rewrites == 1);
    ck_assert(!info_now().no_file);
    ck_assert(log_has("created by a rewrite"));
    akv_persist_set_fsync(F.p, AKV_FSYNC_ALWAYS);
    ck_assert_int_eq(info_now().fsync, AKV_FSYNC_ALWAYS);
    w_set("w3", "w4");
    F.held = 1;
    F.held_seq = akv_persist_appended(F.p);
    WAIT_UNTIL(F.released == 1);
    akv_persist_set_fsync(F.p, AKV_FSYNC_EVERYSEC);
    w_set("w5", "w6");
    WAIT_UNTIL(durable_all());
    fx_reopen(); /* the store and the file agree */
    fx_end();
}
END_TEST

/* A file cut inside its own header starts again empty. */
START_TEST(test_torn_file_header)
{
    char hdr[AKV_AOF_FILE_HEADER];
    size_t len;
    char *buf;

    fx_begin(AKV_FSYNC_ALWAYS);
    spit(F.path, "AKV-AOF", 7, 0);
    fx_open();
    ck_assert(log_has("is incomplete"));
    ck_assert_int_eq(file_size(F.path), AKV_AOF_FILE_HEADER);
    ck_assert_uint_eq(akv_store_count(F.store), 0);
    akv_aof_file_header(hdr);
    buf = slurp(F.path, &len);
    ck_assert_uint_eq(len, sizeof(hdr));
    ck_assert(memcmp(buf, hdr, sizeof(hdr)) == 0);
    free(buf);
    w_set("w1", "w2");
    WAIT_UNTIL(durable_all());
    fx_reopen();
    ck_assert_uint_eq(info_now().replayed, 1);
    fx_end();
}
END_TEST

/* Damage before the end (a checksum or a payload byte of an earlier
 * record) is not a torn tail: the open fails with -EBADMSG and a message
 * naming the file and the offset, leaves the store empty and the file as
 * it was. */
START_TEST(test_damage_in_the_middle)
{
    static const size_t where[] = {12, 8, 20}; /* payload crc, header crc, the key */
    char k[16], v[32], err[1024] = "", want[64];
    struct parsed *ps;
    size_t off, len, len2;
    char *buf, *buf2;
    struct akv_store *old;
    int rc;

    fx_begin(AKV_FSYNC_NO);
    fx_open();
    for (unsigned i = 0; i < 10; i++) {
        kv(k, v, i, 0);
        w_set(k, v);
    }
    fx_close();
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->n, 10);
    off = ps->r[3].offset;
    parsed_free(ps);
    buf = slurp(F.path, &len);
    buf[off + where[_i]] ^= 0x01;
    spit(F.path, buf, len, 0);

    old = F.store;
    ck_assert_int_eq(akv_store_create(&F.store, F.voc), 0);
    rc = fx_open_rc(err, sizeof(err));
    ck_assert_int_eq(rc, -EBADMSG);
    ck_assert_ptr_null(F.p);
    ck_assert_msg(strstr(err, F.path) != NULL, "%s", err);
    snprintf(want, sizeof(want), "offset %zu", off);
    ck_assert_msg(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
    ck_assert_msg(strstr(err, "3 good records") != NULL, "%s", err);
    ck_assert_uint_eq(akv_store_count(F.store), 0); /* the 3 replayed are undone */
    ck_assert_int_eq(other_handles(), 0);
    buf2 = slurp(F.path, &len2);
    ck_assert_uint_eq(len2, len);
    ck_assert(memcmp(buf, buf2, len) == 0);
    free(buf);
    free(buf2);
    akv_store_destroy(old);
    fx_end();
}
END_TEST

START_TEST(test_open_errors)
{
    static const char resp[] = "*3\r\n$3\r\nSET\r\n$2\r\nw1\r\n$2\r\nw2\r\n";
    char err[1024], missing[PATH_MAX];
    struct akv_persist_opts o;
    struct akv_persist *p;

    fx_begin(AKV_FSYNC_NO);
    o = F.opts;
    o.filename = "sub/" AOF_NAME;
    p = (struct akv_persist *)&o;
    err[0] = '\0';
    ck_assert_int_eq(akv_persist_open(&p, &F.loop, &F.store, 1, &o, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, "sub/" AOF_NAME) != NULL, "%s", err);

    xpath(missing, "%s/nope", F.dir);
    o = F.opts;
    o.dir = missing;
    err[0] = '\0';
    ck_assert_int_eq(akv_persist_open(&p, &F.loop, &F.store, 1, &o, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, missing) != NULL, "%s", err);

    /* The file's name is a directory. */
    ck_assert_int_eq(mkdir(F.path, 0755), 0);
    err[0] = '\0';
    ck_assert_int_eq(akv_persist_open(&p, &F.loop, &F.store, 1, &F.opts, err, sizeof(err)),
                     -EISDIR);
    ck_assert_msg(strstr(err, F.path) != NULL, "%s", err);
    ck_assert_int_eq(rmdir(F.path), 0);

    /* Not an AOF at all. */
    spit(F.path, resp, sizeof(resp) - 1, 0);
    err[0] = '\0';
    ck_assert_int_eq(akv_persist_open(&p, &F.loop, &F.store, 1, &F.opts, err, sizeof(err)),
                     -EBADMSG);
    ck_assert_msg(strstr(err, F.path) != NULL && strstr(err, "offset 0") != NULL, "%s", err);
    ck_assert_int_eq(file_size(F.path), (int64_t)sizeof(resp) - 1);
    ck_assert_int_eq(other_handles(), 0);
    ck_assert_int_eq(unlink(F.path), 0);

    /* A temporary file left by an unfinished rewrite is removed. */
    spit(F.tmppath, "partial", 7, 0);
    fx_open();
    ck_assert_int_eq(file_size(F.tmppath), -1);
    ck_assert(log_has("left by a rewrite that did not finish"));
    ck_assert_int_eq(file_size(F.path), AKV_AOF_FILE_HEADER);
    fx_end();
}
END_TEST

/* A failing write (the file size limit) is reported, holds the reply, and
 * is retried in place a second later once the limit is lifted. */
START_TEST(test_write_error)
{
    struct rlimit old, lim;
    struct akv_persist_info info;
    char k[16], big[512];
    size_t o = 0;
    int64_t size0;
    int werr, lim_rc;
    void (*prev)(int);

    fx_begin(AKV_FSYNC_NO);
    fx_open();
    F.check_file = 1;
    for (unsigned w = 0; w < 60; w++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%sw%u", w ? " " : "", 100 + w);
    /* A large file first, so that nothing else the test writes (the log,
     * Check's messages) comes near the limit. */
    for (unsigned i = 0; i < 600; i++) {
        snprintf(k, sizeof(k), "w%u", i % 10);
        w_set(k, big);
    }
    WAIT_UNTIL(durable_all());
    size0 = file_size(F.path);
    ck_assert_int_gt(size0, 150000);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    prev = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)size0 + 10;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

    w_set("w3", "w4 w5");
    F.held = 1;
    F.held_seq = akv_persist_appended(F.p);
    WAIT_UNTIL(akv_persist_write_error(F.p) != 0);
    lim_rc = setrlimit(RLIMIT_FSIZE, &old);
    werr = akv_persist_write_error(F.p);
    info = info_now();
    ck_assert_int_eq(lim_rc, 0);
    ck_assert_int_eq(werr, EFBIG);
    ck_assert_int_eq(info.write_error, EFBIG);
    ck_assert_uint_eq(F.released, 0);
    ck_assert_uint_lt(akv_persist_durable(F.p), F.held_seq);
    ck_assert_uint_eq(info.pending_bytes, set_size("w3", "w4 w5"));
    ck_assert_int_eq(file_size(F.path), size0 + 10); /* a partial write */
    ck_assert(log_has("failed: File too large"));

    /* The retry, a second later, writes the whole batch at the same
     * offset. */
    WAIT_UNTIL(F.released == 1 && akv_persist_write_error(F.p) == 0);
    ck_assert(log_has("works again"));
    ck_assert_int_eq(file_size(F.path), size0 + (int64_t)set_size("w3", "w4 w5"));
    assert_file_is_tracked();
    fx_reopen();
    ck_assert(!log_has("incomplete"));
    signal(SIGXFSZ, prev);
    fx_end();
}
END_TEST

/* An fsync that fails (everysec: ENOSPC, say) refuses writes until a later
 * fsync succeeds, and no longer: the error clears whatever it was. */
START_TEST(test_fsync_error_clears)
{
    static const int errs[] = {ENOSPC, EDQUOT, EIO};

    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        fx_begin(AKV_FSYNC_EVERYSEC);
        fx_open();
        atomic_store(&fdatasync_fail, errs[i]);
        w_set("w1", "w2");
        WAIT_UNTIL(akv_persist_write_error(F.p) != 0);
        ck_assert_int_eq(akv_persist_write_error(F.p), errs[i]);
        WAIT_UNTIL(akv_persist_write_error(F.p) == 0);
        ck_assert_int_eq(atomic_load(&fdatasync_fail), 0);
        w_set("w3", "w4");
        WAIT_UNTIL(durable_all());
        fx_reopen();
        fx_end();
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * 4. Databases, expiry times and batches (MULTI records).
 */

/* The fixture's databases for these tests: F.dbs[0..F.ndbs), opened with
 * fx_open_dbs instead of F.store. */
static void dbs_create(struct akv_store **dbs, uint32_t n, const struct akv_vocab *voc)
{
    for (uint32_t i = 0; i < n; i++) {
        ck_assert_int_eq(akv_store_create(&dbs[i], voc), 0);
        akv_store_set_clock(dbs[i], &F.clock);
    }
}

static void dbs_destroy(struct akv_store **dbs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        akv_store_destroy(dbs[i]);
        dbs[i] = NULL;
    }
}

static int fx_open_dbs_rc(char *err, size_t errlen)
{
    int rc;

    F.seen_appended = F.seen_handed = F.seen_durable = 0;
    F.notifies = 0;
    F.held = 0;
    F.released = 0;
    F.check_file = 0;
    rc = akv_persist_open(&F.p, &F.loop, F.dbs, F.ndbs, &F.opts, err, errlen);
    if (rc == 0) {
        akv_persist_set_notify(F.p, on_notify, &F);
        F.file_base = (uint64_t)file_size(F.path);
    }
    return rc;
}

static void fx_open_dbs(void)
{
    char err[1024] = "";
    int rc = fx_open_dbs_rc(err, sizeof(err));

    ck_assert_msg(rc == 0, "akv_persist_open: %d (%s)", rc, err);
}

/* The wall clock in ms since the epoch: what replay drops expired entries
 * by. */
static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fx_begin_dbs(uint32_t n)
{
    fx_begin(AKV_FSYNC_EVERYSEC);
    F.clock = wall_ms();
    F.ndbs = n;
    dbs_create(F.dbs, n, F.voc);
}

static void fx_end_dbs(void)
{
    if (F.p)
        fx_close();
    dbs_destroy(F.dbs, F.ndbs);
    fx_end();
}

/* A handler's steps on database db. */
static void d_put(uint32_t db, const char *k, const char *v, uint64_t expire)
{
    char err[256];
    size_t kl = strlen(k), vl = strlen(v);
    int rc = akv_persist_reserve(F.p, AKV_AOF_PUT, kl, vl);

    if (rc != 0)
        ck_abort_msg("reserve: %d", rc);
    rc = akv_store_put(F.dbs[db], k, kl, v, vl, expire, err, sizeof(err));
    if (rc != 0)
        ck_abort_msg("put '%s': %d %s", k, rc, err);
    akv_persist_log_put(F.p, db, k, kl, v, vl, expire);
}

static int d_del(uint32_t db, const char *k)
{
    size_t kl = strlen(k);
    int existed;

    ck_assert_int_eq(akv_persist_reserve(F.p, AKV_AOF_DELETE, kl, 0), 0);
    existed = akv_store_del(F.dbs[db], k, kl);
    return akv_persist_log_del(F.p, db, k, kl, existed);
}

static void d_swap(uint32_t a, uint32_t b)
{
    struct akv_store *t;

    ck_assert_int_eq(akv_persist_reserve(F.p, AKV_AOF_SWAPDB, 0, 0), 0);
    t = F.dbs[a];
    F.dbs[a] = F.dbs[b];
    F.dbs[b] = t;
    akv_persist_log_swapdb(F.p, a, b);
}

static void d_flushdb(uint32_t db)
{
    ck_assert_int_eq(akv_persist_reserve(F.p, AKV_AOF_FLUSHDB, 0, 0), 0);
    akv_store_flush(F.dbs[db]);
    akv_persist_log_flushdb(F.p, db);
}

static void d_flushall(void)
{
    ck_assert_int_eq(akv_persist_reserve(F.p, AKV_AOF_FLUSHALL, 0, 0), 0);
    for (uint32_t i = 0; i < F.ndbs; i++)
        akv_store_flush(F.dbs[i]);
    akv_persist_log_flushall(F.p);
}

/* Whether db holds k -> want (NULL: absent) with expiry time expire. */
static int d_has(uint32_t db, const char *k, const char *want, uint64_t expire)
{
    struct akv_store_found f;
    int st = akv_store_find(F.dbs[db], k, strlen(k), &f);

    if (st != AKV_STORE_LIVE)
        return want == NULL && st == AKV_STORE_ABSENT;
    return want != NULL && f.vlen == strlen(want) && memcmp(f.val, want, f.vlen) == 0 &&
           f.expire == expire;
}

/* Every entry of want is in got with the same value and expiry time, and
 * the counts agree. */
struct cmp_x {
    const struct akv_store *want, *got;
    size_t bad;
    char first_bad[128];
};

static int cmp_x_entry(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    struct cmp_x *c = arg;
    struct akv_store_found fw, fg;

    (void)v;
    (void)vl;
    ck_assert_int_eq(akv_store_find(c->want, k, kl, &fw), AKV_STORE_LIVE);
    if (akv_store_find(c->got, k, kl, &fg) != AKV_STORE_LIVE || fg.vlen != fw.vlen ||
        memcmp(fg.val, fw.val, fw.vlen) != 0 || fg.expire != fw.expire) {
        if (c->bad++ == 0)
            snprintf(c->first_bad, sizeof(c->first_bad), "%.*s", (int)(kl > 100 ? 100 : kl), k);
    }
    return 0;
}

static void assert_same_dbs(struct akv_store *const *got, struct akv_store *const *want, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        struct cmp_x c = {.want = want[i], .got = got[i]};
        uint64_t cur = 0;
        ck_assert_msg(akv_store_count(got[i]) == akv_store_count(want[i]),
                      "db %u: %zu entries, not %zu", i, akv_store_count(got[i]),
                      akv_store_count(want[i]));
        do {
            cur = akv_store_iter(want[i], cur, 64, cmp_x_entry, &c);
        } while (cur != 0);
        ck_assert_msg(c.bad == 0, "db %u: %zu entries differ, first key '%s'", i, c.bad,
                      c.first_bad);
    }
}

/* Closes, replays into fresh databases, compares them with those the
 * writes went to (values and expiry times), which they replace. */
static void fx_reopen_dbs(void)
{
    struct akv_store *old[NDB];

    fx_close();
    memcpy(old, F.dbs, sizeof(old));
    dbs_create(F.dbs, F.ndbs, F.voc);
    fx_open_dbs();
    assert_same_dbs(F.dbs, old, F.ndbs);
    dbs_destroy(old, F.ndbs);
}

/* A record, encoded at buf + off; returns the new offset. */
static size_t put_r(char *buf, size_t off, struct akv_aof_record r)
{
    return off + akv_aof_rec_encode(buf + off, &r);
}

#define R_PUT(d, k, v, e)                                                                          \
    ((struct akv_aof_record){.type = AKV_AOF_PUT,                                                  \
                             .db = (d),                                                            \
                             .key = (k),                                                           \
                             .klen = strlen(k),                                                    \
                             .val = (v),                                                           \
                             .vlen = strlen(v),                                                    \
                             .expire = (e)})
#define R_DELETE(d, k)                                                                             \
    ((struct akv_aof_record){.type = AKV_AOF_DELETE, .db = (d), .key = (k), .klen = strlen(k)})
#define R_FLUSHDB(d) ((struct akv_aof_record){.type = AKV_AOF_FLUSHDB, .db = (d)})
#define R_SWAPDB(a, b) ((struct akv_aof_record){.type = AKV_AOF_SWAPDB, .db = (a), .db2 = (b)})
#define R_FLUSHALL() ((struct akv_aof_record){.type = AKV_AOF_FLUSHALL})

/* Batches: none logs nothing, one record is written as itself, several
 * become one MULTI record; pairs nest; the sequence grows at the outer end
 * only, by the bytes written; reserve inside a batch counts the wrapper. */
START_TEST(test_multi_batches)
{
    struct parsed *ps;
    uint64_t a0, a1;
    size_t one, multi_at, inner_sum = 0;
    char k[16], v[32];

    fx_begin_dbs(NDB);
    fx_open_dbs();

    /* None: nothing. */
    a0 = akv_persist_appended(F.p);
    akv_persist_multi_begin(F.p);
    akv_persist_multi_end(F.p);
    akv_persist_multi_begin(F.p);
    akv_persist_multi_begin(F.p);
    akv_persist_multi_end(F.p);
    akv_persist_multi_end(F.p);
    ck_assert_uint_eq(akv_persist_appended(F.p), a0);
    /* A DELETE of an absent key logs nothing inside a batch either. */
    akv_persist_multi_begin(F.p);
    ck_assert_int_eq(d_del(1, "w5"), 0);
    akv_persist_multi_end(F.p);
    ck_assert_uint_eq(akv_persist_appended(F.p), a0);
    /* An end without a begin does nothing. */
    akv_persist_multi_end(F.p);

    /* One: as itself. */
    akv_persist_multi_begin(F.p);
    d_put(2, "w1", "w2 w3", 0);
    ck_assert_uint_eq(akv_persist_appended(F.p), a0);
    akv_persist_multi_end(F.p);
    one = akv_aof_rec_size(&R_PUT(2, "w1", "w2 w3", 0));
    ck_assert_uint_eq(akv_persist_appended(F.p), a0 + one);

    /* Several, nested: one MULTI at the outer end. */
    a1 = akv_persist_appended(F.p);
    akv_persist_multi_begin(F.p);
    d_put(0, "w4", "w5", 0);
    inner_sum += akv_aof_rec_size(&R_PUT(0, "w4", "w5", 0));
    akv_persist_multi_begin(F.p); /* MSET inside EXEC */
    d_put(1, "w6", "w7", F.clock + 3600000);
    inner_sum += akv_aof_rec_size(&R_PUT(1, "w6", "w7", F.clock + 3600000));
    ck_assert_int_eq(d_del(2, "w1"), 1);
    inner_sum += akv_aof_rec_size(&R_DELETE(2, "w1"));
    akv_persist_multi_end(F.p);
    ck_assert_uint_eq(akv_persist_appended(F.p), a1);
    d_swap(0, 3);
    inner_sum += akv_aof_rec_size(&R_SWAPDB(0, 3));
    d_flushdb(2);
    inner_sum += akv_aof_rec_size(&R_FLUSHDB(2));
    d_flushall();
    inner_sum += akv_aof_rec_size(&R_FLUSHALL());
    d_put(3, "w8", "w9", 0);
    inner_sum += akv_aof_rec_size(&R_PUT(3, "w8", "w9", 0));
    ck_assert_uint_eq(akv_persist_appended(F.p), a1);
    akv_persist_multi_end(F.p);
    ck_assert_uint_eq(akv_persist_appended(F.p), a1 + AKV_AOF_REC_HEADER + 4 + inner_sum);

    /* A large batch: reserve grows the batch and pending for it. */
    a1 = akv_persist_appended(F.p);
    inner_sum = 0;
    akv_persist_multi_begin(F.p);
    for (unsigned i = 0; i < 3000; i++) {
        kv(k, v, i, 5);
        d_put(i % NDB, k, v, 0);
        inner_sum += akv_aof_rec_size(&R_PUT(i % NDB, k, v, 0));
    }
    akv_persist_multi_end(F.p);
    ck_assert_uint_eq(akv_persist_appended(F.p), a1 + AKV_AOF_REC_HEADER + 4 + inner_sum);

    WAIT_UNTIL(durable_all());
    ck_assert_int_eq(file_size(F.path), (int64_t)(F.file_base + akv_persist_appended(F.p)));
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->res.records, 3);
    ck_assert_uint_eq(ps->res.counts[AKV_AOF_MULTI], 2);
    ck_assert_uint_eq(ps->n, 1 + 7 + 3000);
    /* The lone record, as itself. */
    ck_assert_int_eq(ps->r[0].type, AKV_AOF_PUT);
    ck_assert_uint_eq(ps->r[0].db, 2);
    ck_assert_uint_eq(ps->r[0].batch, SIZE_MAX);
    ck_assert_uint_eq(ps->r[0].offset, AKV_AOF_FILE_HEADER);
    /* The nested batch: one MULTI, records in the order logged. */
    multi_at = AKV_AOF_FILE_HEADER + one;
    {
        static const enum akv_aof_type want[7] = {AKV_AOF_PUT,    AKV_AOF_PUT,     AKV_AOF_DELETE,
                                                  AKV_AOF_SWAPDB, AKV_AOF_FLUSHDB, AKV_AOF_FLUSHALL,
                                                  AKV_AOF_PUT};
        for (size_t i = 0; i < 7; i++) {
            ck_assert_int_eq(ps->r[1 + i].type, want[i]);
            ck_assert_uint_eq(ps->r[1 + i].batch, multi_at);
        }
        ck_assert_uint_eq(ps->r[2].db, 1);
        ck_assert(ps->r[2].expire == F.clock + 3600000);
        ck_assert_uint_eq(ps->r[4].db, 0);
        ck_assert_uint_eq(ps->r[4].db2, 3);
        ck_assert_uint_eq(ps->r[7].db, 3);
    }
    ck_assert_uint_ne(ps->r[8].batch, multi_at);
    ck_assert_uint_eq(ps->r[8 + 2999].batch, ps->r[8].batch);
    parsed_free(ps);
    fx_reopen_dbs();
    ck_assert_uint_eq(info_now().replayed, 3);
    ck_assert(d_has(3, "w8", "w9", 0));
    fx_end_dbs();
}
END_TEST

/* A batch logged while a rewrite scans reaches the new file whole (as the
 * MULTI record, after the snapshot), and the old file until the switch. */
START_TEST(test_multi_during_rewrite)
{
    char k[16], v[32];
    struct parsed *ps;
    size_t nmulti = 0, ninner = 0, first_multi = SIZE_MAX;

    fx_begin_dbs(2);
    setenv(DELAY_ENV, "5000", 1);
    fx_open_dbs();
    for (unsigned i = 0; i < 40; i++) {
        kv(k, v, i, 0);
        d_put(i % 2, k, v, 0);
    }
    WAIT_UNTIL(durable_all());
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    akv_persist_multi_begin(F.p);
    d_put(0, "w150", "w1", 0);
    d_put(1, "w151", "w2", F.clock + 3600000);
    ck_assert_int_eq(d_del(0, "w0"), 1);
    d_swap(0, 1);
    akv_persist_multi_end(F.p);
    ck_assert_int_eq(info_now().rewrite_in_progress, 1);
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->res.counts[AKV_AOF_MULTI], 1);
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->r[i].batch == SIZE_MAX)
            continue;
        if (first_multi == SIZE_MAX)
            first_multi = i;
        ninner++;
    }
    nmulti = ps->res.counts[AKV_AOF_MULTI];
    ck_assert_uint_eq(nmulti, 1);
    ck_assert_uint_eq(ninner, 4);
    ck_assert_uint_eq(first_multi, 40); /* the snapshot's 40 entries, then the batch */
    ck_assert_int_eq(ps->r[first_multi + 3].type, AKV_AOF_SWAPDB);
    parsed_free(ps);
    fx_reopen_dbs();
    ck_assert(d_has(1, "w150", "w1", 0));
    ck_assert(d_has(0, "w151", "w2", F.clock + 3600000));
    ck_assert(d_has(1, "w0", NULL, 0));
    fx_end_dbs();
}
END_TEST

/* A rewrite asked for inside a batch (BGREWRITEAOF queued in a
 * transaction) must not snapshot the batch's changes and then replay
 * them again from the MULTI record: a SWAPDB would be undone. */
START_TEST(test_rewrite_inside_batch)
{
    fx_begin_dbs(2);
    fx_open_dbs();
    d_put(0, "w1", "w2", 0);
    d_put(1, "w3", "w4", 0);
    WAIT_UNTIL(durable_all());
    akv_persist_multi_begin(F.p);
    d_put(0, "w5", "w6", 0);
    d_swap(0, 1);
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), -EINPROGRESS);
    ck_assert_int_eq(info_now().rewrite_in_progress, 0);
    d_put(0, "w7", "w8", 0);
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), -EINPROGRESS); /* asked twice: once */
    akv_persist_multi_end(F.p);
    ck_assert_int_eq(info_now().rewrite_in_progress, 1);
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    ck_assert(d_has(1, "w1", "w2", 0));
    ck_assert(d_has(1, "w5", "w6", 0));
    ck_assert(d_has(0, "w3", "w4", 0));
    ck_assert(d_has(0, "w7", "w8", 0));
    fx_reopen_dbs();
    fx_end_dbs();
}
END_TEST

/* Replay of the new types into several databases: PUT in any database,
 * DELETE, FLUSHDB, SWAPDB (which swaps the caller's pointers), FLUSHALL
 * of every database; and the same written through the logging calls. */
START_TEST(test_replay_databases)
{
    static char buf[8192];
    size_t off = AKV_AOF_FILE_HEADER;
    struct akv_store *before[NDB];

    fx_begin_dbs(NDB);
    akv_aof_file_header(buf);
    off = put_r(buf, off, R_PUT(3, "w1", "w2", 0));
    off = put_r(buf, off, R_PUT(0, "w1", "w3", 0));
    off = put_r(buf, off, R_PUT(2, "w4", "w5 w6", 0));
    off = put_r(buf, off, R_PUT(1, "w7", "w8", 0));
    off = put_r(buf, off, R_SWAPDB(3, 1)); /* db 1: w1 -> w2, db 3: w7 -> w8 */
    off = put_r(buf, off, R_FLUSHDB(2));
    off = put_r(buf, off, R_PUT(2, "w9", "w10", 0));
    off = put_r(buf, off, R_DELETE(0, "w1"));
    off = put_r(buf, off, R_PUT(0, "w11", "w12", 0));
    spit(F.path, buf, off, 0);
    memcpy(before, F.dbs, sizeof(before));
    fx_open_dbs();
    ck_assert_ptr_eq(F.dbs[1], before[3]); /* the pointers were swapped */
    ck_assert_ptr_eq(F.dbs[3], before[1]);
    ck_assert_uint_eq(info_now().replayed, 9);
    ck_assert(d_has(1, "w1", "w2", 0));
    ck_assert(d_has(3, "w7", "w8", 0));
    ck_assert(d_has(3, "w1", NULL, 0));
    ck_assert(d_has(2, "w4", NULL, 0));
    ck_assert(d_has(2, "w9", "w10", 0));
    ck_assert(d_has(0, "w1", NULL, 0));
    ck_assert(d_has(0, "w11", "w12", 0));
    ck_assert_uint_eq(akv_store_count(F.dbs[0]) + akv_store_count(F.dbs[1]) +
                          akv_store_count(F.dbs[2]) + akv_store_count(F.dbs[3]),
                      4);

    /* The same kinds through the logging calls, then a reopen. */
    d_put(3, "w20", "w21", 0);
    d_swap(0, 3);
    d_flushdb(1);
    d_put(1, "w22", "w23", 0);
    ck_assert_int_eq(d_del(0, "w20"), 1);
    d_put(0, "w24", "w25", 0);
    fx_reopen_dbs();
    ck_assert(d_has(0, "w24", "w25", 0));
    ck_assert(d_has(3, "w11", "w12", 0));

    /* FLUSHALL empties every database. */
    d_flushall();
    d_put(2, "w30", "w31", 0);
    fx_reopen_dbs();
    ck_assert_uint_eq(
        akv_store_count(F.dbs[0]) + akv_store_count(F.dbs[1]) + akv_store_count(F.dbs[3]), 0);
    ck_assert(d_has(2, "w30", "w31", 0));
    fx_end_dbs();
}
END_TEST

/* A record for a database at or above 'databases' refuses the file with a
 * message naming the database and the directive; the databases are left
 * empty, the file as it was. */
START_TEST(test_replay_db_out_of_range)
{
    static char buf[4096];
    static const struct {
        int inside_multi;
        struct akv_aof_record r;
        const char *want;
    } cases[] = {
        {0,
         {.type = AKV_AOF_PUT, .db = 4, .key = "w1", .klen = 2, .val = "w2", .vlen = 2},
         "a PUT record for database 4, but 'databases' is 4"},
        {0,
         {.type = AKV_AOF_DELETE, .db = 70000, .key = "w1", .klen = 2},
         "a DELETE record for database 70000"},
        {0,
         {.type = AKV_AOF_FLUSHDB, .db = 0xffffffffu},
         "a FLUSHDB record for database 4294967295"},
        {0, {.type = AKV_AOF_SWAPDB, .db = 0, .db2 = 9}, "a SWAPDB record for database 9"},
        {0, {.type = AKV_AOF_SWAPDB, .db = 5, .db2 = 0}, "a SWAPDB record for database 5"},
        {1,
         {.type = AKV_AOF_PUT, .db = 4, .key = "w1", .klen = 2, .val = "w2", .vlen = 2},
         "a PUT record for database 4"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t off = AKV_AOF_FILE_HEADER, at, len, len2;
        char err[1024] = "", want[64];
        char *b2;
        int rc;

        fx_begin_dbs(NDB);
        akv_aof_file_header(buf);
        off = put_r(buf, off, R_PUT(1, "w3", "w4", 0));
        at = off;
        if (cases[i].inside_multi) {
            char in[256];
            size_t n = put_r(in, 0, R_PUT(2, "w5", "w6", 0));
            n = put_r(in, n, cases[i].r);
            off = put_r(buf, off,
                        (struct akv_aof_record){
                            .type = AKV_AOF_MULTI, .count = 2, .inner = in, .inner_len = n});
        } else {
            off = put_r(buf, off, cases[i].r);
        }
        off = put_r(buf, off, R_PUT(0, "w7", "w8", 0));
        spit(F.path, buf, off, 0);
        rc = fx_open_dbs_rc(err, sizeof(err));
        ck_assert_int_eq(rc, -EBADMSG);
        ck_assert_ptr_null(F.p);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "'%s' lacks '%s'", err, cases[i].want);
        ck_assert_msg(strstr(err, "'databases'") != NULL, "%s", err);
        ck_assert_msg(strstr(err, F.path) != NULL, "%s", err);
        snprintf(want, sizeof(want), "offset %zu", at);
        ck_assert_msg(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
        for (uint32_t d = 0; d < NDB; d++)
            ck_assert_uint_eq(akv_store_count(F.dbs[d]), 0);
        b2 = slurp(F.path, &len2);
        len = off;
        ck_assert_uint_eq(len2, len);
        ck_assert(memcmp(b2, buf, len) == 0);
        free(b2);
        ck_assert_int_eq(other_handles(), 0);
        fx_end_dbs();
    }
}
END_TEST

/* Entries whose time has come by the wall clock are dropped at replay: an
 * expired PUT deletes an earlier live value of its key (and a text-only
 * one), a later PUT brings the key back; times to come are kept. */
START_TEST(test_replay_expiry)
{
    static char buf[8192];
    size_t off = AKV_AOF_FILE_HEADER;
    uint64_t now = wall_ms(), later = now + 3600000;

    fx_begin_dbs(2);
    akv_aof_file_header(buf);
    off = put_r(buf, off, R_PUT(0, "w1", "w2", 0));
    off = put_r(buf, off, R_PUT(0, "w1", "w3", 1000)); /* 1970: long gone */
    off = put_r(buf, off, R_PUT(1, "w4", "w5", later));
    off = put_r(buf, off, R_PUT(1, "w6", "w7", now - 1));
    off = put_r(buf, off, R_PUT(1, "w8", "w9", now - 1));
    off = put_r(buf, off, R_PUT(1, "w8", "w10", 0));       /* back */
    off = put_r(buf, off, R_PUT(0, "w11", "w300", 0));     /* text-only */
    off = put_r(buf, off, R_PUT(0, "w11", "w12", 5));      /* expired: the text-only one goes too */
    off = put_r(buf, off, R_PUT(0, "w13", "w301", later)); /* text-only, with a time */
    off = put_r(buf, off, R_PUT(0, "w14", "w302", 7));     /* text-only, expired */
    off = put_r(buf, off,
                (struct akv_aof_record){
                    .type = AKV_AOF_SET, .key = "w15", .klen = 3, .val = "w16", .vlen = 3});
    spit(F.path, buf, off, 0);
    fx_open_dbs();
    ck_assert(d_has(0, "w1", NULL, 0));
    ck_assert(d_has(1, "w4", "w5", later));
    ck_assert(d_has(1, "w6", NULL, 0));
    ck_assert(d_has(1, "w8", "w10", 0));
    ck_assert(d_has(0, "w11", NULL, 0));
    ck_assert(d_has(0, "w15", "w16", 0));
    ck_assert_uint_eq(akv_store_count(F.dbs[0]), 1);
    ck_assert_uint_eq(akv_store_count(F.dbs[1]), 2);
    ck_assert_uint_eq(info_now().unembeddable, 1);
    ck_assert(log_has("5 dropped as expired"));
    ck_assert_uint_eq(akv_store_expires(F.dbs[1]), 1);
    fx_reopen_dbs();
    fx_end_dbs();
}
END_TEST

/* A rewrite writes every database with its number and every expiry time,
 * and leaves out the entries whose time had come by the stores' clock
 * when it started (deleted or not). */
START_TEST(test_rewrite_dbs_and_expiry)
{
    struct parsed *ps;
    uint64_t t1, soon, later;
    size_t seen = 0;

    fx_begin_dbs(3);
    t1 = F.clock;
    soon = t1 + 1000;
    later = t1 + 3600000;
    fx_open_dbs();
    d_put(0, "w1", "w2", 0);
    d_put(0, "w3", "w4", later);
    d_put(2, "w3", "w5 w6", soon); /* expired by the time of the rewrite */
    d_put(2, "w7", "w8", later + 1);
    d_put(1, "w9", "w10", soon);
    d_put(1, "w11", "w12", 0);
    akv_persist_multi_begin(F.p);
    d_put(1, "w13", "w14", later + 2);
    d_swap(1, 2);
    akv_persist_multi_end(F.p);
    WAIT_UNTIL(durable_all());
    F.clock = soon; /* w3 in db 1 (was 2) and w9 in db 2 (was 1) are due now */
    ck_assert_uint_eq(akv_store_count(F.dbs[1]) + akv_store_count(F.dbs[2]), 5);
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->n, 5);
    for (size_t i = 0; i < ps->n; i++) {
        const struct akv_aof_record *r = &ps->r[i];
        char key[16];
        ck_assert_int_eq(r->type, AKV_AOF_PUT);
        ck_assert_uint_lt(r->klen, sizeof(key));
        memcpy(key, r->key, r->klen);
        key[r->klen] = '\0';
        if (strcmp(key, "w1") == 0)
            seen += r->db == 0 && r->expire == 0;
        else if (strcmp(key, "w3") == 0)
            seen += r->db == 0 && r->expire == later;
        else if (strcmp(key, "w7") == 0)
            seen += r->db == 1 && r->expire == later + 1;
        else if (strcmp(key, "w11") == 0)
            seen += r->db == 2 && r->expire == 0;
        else if (strcmp(key, "w13") == 0)
            seen += r->db == 2 && r->expire == later + 2;
        else
            ck_abort_msg("'%s' in the rewritten file", key);
    }
    ck_assert_uint_eq(seen, 5);
    parsed_free(ps);
    /* The due entries are gone at replay; the stores still have them
     * until deleted, so delete them before comparing. */
    ck_assert_int_eq(d_del(1, "w3"), 1);
    ck_assert_int_eq(d_del(2, "w9"), 1);
    fx_reopen_dbs();
    fx_end_dbs();
}
END_TEST

/* aof-use-rdb-preamble: the rewrite writes a preamble (SNAPBEGIN, chunks of
 * at most 256 entries of one database, a chunk of its own for an entry
 * larger than the rewrite's buffer, SNAPEND), the records logged after it
 * follow, and a replay in slices of no time at all (one chunk a slice)
 * gives the same databases, expiry times included. */
START_TEST(test_rewrite_preamble)
{
    static int on = 1;
    struct parsed *ps;
    struct akv_store *old[NDB];
    size_t counts[AKV_AOF_TYPES] = {0}, steps = 0;
    uint64_t later;
    char key[32], val[64], err[512] = "";
    char *big;
    int rc;

    fx_begin_dbs(3);
    F.opts.preamble = &on;
    later = F.clock + 3600000;
    fx_open_dbs();
    for (int i = 0; i < 600; i++) {
        snprintf(key, sizeof key, "w%d w%d", i % 200, i / 200 + 1);
        snprintf(val, sizeof val, "w%d w%d w%d w%d", i % 200, i * 7 % 200, i * 3 % 200,
                 i * 11 % 200);
        d_put(i % 3 == 0 ? 1 : 0, key, val, i % 5 == 0 ? later + (uint64_t)i : 0);
    }
    big = malloc(AKV_STORE_VALUE_MAX);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', AKV_STORE_VALUE_MAX);
    big[7] = '\0';
    ck_assert_int_eq(akv_persist_reserve(F.p, AKV_AOF_PUT, 2, AKV_STORE_VALUE_MAX), 0);
    ck_assert_int_eq(akv_store_put_ex(F.dbs[2], "w5", 2, big, AKV_STORE_VALUE_MAX, 0,
                                      AKV_STORE_PAYLOAD, err, sizeof(err)),
                     0);
    akv_persist_log_put_ex(F.p, 2, "w5", 2, big, AKV_STORE_VALUE_MAX, 0, 1);
    free(big);
    WAIT_UNTIL(durable_all());
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    d_put(0, "w199", "w1", 0);
    WAIT_UNTIL(durable_all());

    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_int_eq(ps->res.snap, 2);
    ck_assert_uint_eq(ps->res.snap_entries, 601);
    for (size_t i = 0; i < ps->n; i++)
        counts[ps->r[i].type]++;
    ck_assert_int_eq(ps->r[0].type, AKV_AOF_SNAPBEGIN);
    /* 400 in database 0 (two chunks), 200 in 1, the payload alone in 2. */
    ck_assert_uint_eq(counts[AKV_AOF_SNAPCHUNK], 4);
    ck_assert_uint_eq(counts[AKV_AOF_SNAPEND], 1);
    ck_assert_uint_eq(counts[AKV_AOF_PUT], 1);
    ck_assert_int_eq(ps->r[ps->n - 1].type, AKV_AOF_PUT);
    parsed_free(ps);

    /* Loaded one chunk a slice. */
    fx_close();
    memcpy(old, F.dbs, sizeof(old));
    dbs_create(F.dbs, F.ndbs, F.voc);
    F.seen_appended = F.seen_handed = F.seen_durable = 0;
    ck_assert_int_eq(akv_persist_begin(&F.p, &F.loop, F.dbs, F.ndbs, &F.opts, err, sizeof(err)), 0);
    while ((rc = akv_persist_load(F.p, 0, err, sizeof(err))) == 1)
        steps++;
    ck_assert_msg(rc == 0, "%d %s", rc, err);
    ck_assert_uint_ge(steps, 6);
    assert_same_dbs(F.dbs, old, F.ndbs);
    dbs_destroy(old, F.ndbs);
    ck_assert(log_has("; 601 entries from a snapshot preamble"));
    fx_close();
    fx_end_dbs();
}
END_TEST

/* Text-only entries keep their database and expiry time: through
 * SWAPDB, FLUSHDB, a rewrite, and a vocabulary that has their words. */
START_TEST(test_parked_dbs_and_expiry)
{
    static char buf[4096];
    size_t off = AKV_AOF_FILE_HEADER, seen = 0;
    uint64_t later;
    struct akv_vocab *big;
    struct parsed *ps;

    fx_begin_dbs(3);
    later = F.clock + 3600000;
    akv_aof_file_header(buf);
    off = put_r(buf, off, R_PUT(1, "w1", "w250", later));
    off = put_r(buf, off, R_PUT(2, "w260 w2", "w3", 0));
    off = put_r(buf, off, R_PUT(0, "w4", "w270", 0));
    off = put_r(buf, off, R_PUT(1, "w5", "w6", 0));
    spit(F.path, buf, off, 0);
    fx_open_dbs();
    ck_assert_uint_eq(info_now().unembeddable, 3);
    ck_assert_uint_eq(akv_store_count(F.dbs[1]), 1);

    d_swap(1, 2); /* w1 -> db 2, "w260 w2" -> db 1 */
    d_flushdb(0); /* w4 goes */
    ck_assert_uint_eq(info_now().unembeddable, 2);
    /* A DELETE in the wrong database leaves it. */
    ck_assert_int_eq(d_del(1, "w1"), 0);
    ck_assert_uint_eq(info_now().unembeddable, 2);
    ck_assert_int_eq(akv_persist_rewrite_start(F.p), 0);
    WAIT_UNTIL(rewrites() == 1 && durable_all());
    ps = parse_file(F.path);
    ck_assert_int_eq(ps->res.status, AKV_AOF_OK);
    ck_assert_uint_eq(ps->n, 3);
    for (size_t i = 0; i < ps->n; i++) {
        const struct akv_aof_record *r = &ps->r[i];
        if (r->klen == 2 && memcmp(r->key, "w1", 2) == 0)
            seen += r->db == 2 && r->expire == later && r->vlen == 4;
        else if (r->klen == 7 && memcmp(r->key, "w260 w2", 7) == 0)
            seen += r->db == 1 && r->expire == 0;
        else if (r->klen == 2 && memcmp(r->key, "w5", 2) == 0)
            seen += r->db == 2 && r->expire == 0;
    }
    ck_assert_uint_eq(seen, 3);
    parsed_free(ps);
    fx_close();

    /* A vocabulary with the words serves them where they belong. */
    big = tu_random_vocab(3 * VOCAB_WORDS, 8, 1.0, 7);
    dbs_destroy(F.dbs, F.ndbs);
    dbs_create(F.dbs, F.ndbs, big);
    fx_open_dbs();
    ck_assert_uint_eq(info_now().unembeddable, 0);
    ck_assert(d_has(2, "w1", "w250", later));
    ck_assert(d_has(1, "w260 w2", "w3", 0));
    ck_assert(d_has(0, "w4", NULL, 0));
    fx_close();
    dbs_destroy(F.dbs, F.ndbs);
    dbs_create(F.dbs, F.ndbs, F.voc);
    akv_vocab_destroy(big);
    fx_end_dbs();
}
END_TEST

/* Files written before databases (types 1-3 only) load unchanged, into
 * database 0; FLUSHALL still empties them all. */
START_TEST(test_old_format_loads)
{
    static char buf[4096];
    size_t off = AKV_AOF_FILE_HEADER;

    fx_begin_dbs(NDB);
    akv_aof_file_header(buf);
    off = put_rec(buf, off, AKV_AOF_SET, "w1", "w2");
    off = put_rec(buf, off, AKV_AOF_SET, "w3", "w4 w5");
    off = put_rec(buf, off, AKV_AOF_DEL, "w1", NULL);
    off = put_rec(buf, off, AKV_AOF_SET, "w6", "w7");
    spit(F.path, buf, off, 0);
    fx_open_dbs();
    ck_assert_uint_eq(info_now().replayed, 4);
    ck_assert(d_has(0, "w3", "w4 w5", 0));
    ck_assert(d_has(0, "w6", "w7", 0));
    ck_assert(d_has(0, "w1", NULL, 0));
    for (uint32_t d = 1; d < NDB; d++)
        ck_assert_uint_eq(akv_store_count(F.dbs[d]), 0);
    /* New records go after the old ones. */
    d_put(2, "w8", "w9", 0);
    fx_reopen_dbs();
    fx_close();
    spit(F.path, buf, off, 0);
    {
        /* A FLUSHALL record of the old kind empties database 2 too. */
        char tail[256];
        size_t n = put_r(tail, 0, R_PUT(2, "w8", "w9", 0));
        n = put_rec(tail, n, AKV_AOF_FLUSHALL, NULL, NULL);
        n = put_rec(tail, n, AKV_AOF_SET, "w10", "w11");
        spit(F.path, tail, n, 1);
    }
    dbs_destroy(F.dbs, F.ndbs);
    dbs_create(F.dbs, F.ndbs, F.voc);
    fx_open_dbs();
    for (uint32_t d = 1; d < NDB; d++)
        ck_assert_uint_eq(akv_store_count(F.dbs[d]), 0);
    ck_assert_uint_eq(akv_store_count(F.dbs[0]), 1);
    ck_assert(d_has(0, "w10", "w11", 0));
    fx_end_dbs();
}
END_TEST

/* ------------------------------------------------------------------------
 * 5. Persistence off (NULL) and the policy names.
 */

static int null_notified;

static void null_notify(void *arg)
{
    (void)arg;
    null_notified++;
}

START_TEST(test_null_is_off)
{
    struct akv_persist_info info;

    memset(&info, 0xa5, sizeof(info));
    akv_persist_info(NULL, &info);
    ck_assert_int_eq(info.enabled, 0);
    ck_assert_int_eq(info.rewrite_in_progress, 0);
    ck_assert_int_eq(info.last_rewrite_ok, 1);
    ck_assert_int_eq(info.write_error, 0);
    ck_assert_uint_eq(info.rewrites, 0);
    ck_assert(info.last_rewrite_ms == 0.0);
    ck_assert_uint_eq(info.current_size, 0);
    ck_assert_uint_eq(info.base_size, 0);
    ck_assert_uint_eq(info.pending_bytes, 0);
    ck_assert_int_eq(info.fsync, AKV_FSYNC_NO);
    ck_assert_uint_eq(info.unembeddable, 0);
    ck_assert_uint_eq(info.replayed, 0);

    akv_persist_close(NULL);
    akv_persist_destroy(NULL);
    ck_assert_int_eq(akv_persist_reserve(NULL, AKV_AOF_SET, 2, 2), 0);
    /* Nothing is allocated: a reservation no buffer could hold succeeds. */
    ck_assert_int_eq(akv_persist_reserve(NULL, AKV_AOF_SET, SIZE_MAX / 4, SIZE_MAX / 4), 0);
    akv_persist_log_put(NULL, 0, "w1", 2, "w2", 2, 0);
    akv_persist_log_del(NULL, 0, "w1", 2, 1);
    akv_persist_multi_begin(NULL);
    akv_persist_multi_end(NULL);
    akv_persist_log_flushall(NULL);
    akv_persist_set_notify(NULL, null_notify, NULL);
    ck_assert_uint_eq(akv_persist_appended(NULL), 0);
    ck_assert_uint_eq(akv_persist_handed(NULL), 0);
    ck_assert_uint_eq(akv_persist_durable(NULL), UINT64_MAX);
    ck_assert_int_eq(akv_persist_loading(NULL), 0);
    ck_assert_int_eq(akv_persist_load(NULL, 1, NULL, 0), 0);
    ck_assert_int_eq(akv_persist_write_error(NULL), 0);
    ck_assert_int_eq(akv_persist_rewrite_start(NULL), -ENOTSUP);
    ck_assert_int_eq(null_notified, 0);
}
END_TEST

START_TEST(test_fsync_names)
{
    int minus_one = -1;

    ck_assert_str_eq(akv_fsync_name(AKV_FSYNC_NO), "no");
    ck_assert_str_eq(akv_fsync_name(AKV_FSYNC_EVERYSEC), "everysec");
    ck_assert_str_eq(akv_fsync_name(AKV_FSYNC_ALWAYS), "always");
    ck_assert_str_eq(akv_fsync_name((enum akv_fsync)3), "unknown");
    ck_assert_str_eq(akv_fsync_name((enum akv_fsync)minus_one), "unknown");
    for (int i = 0; i <= AKV_FSYNC_ALWAYS; i++)
        ck_assert_str_eq(akv_fsync_names[i], akv_fsync_name((enum akv_fsync)i));
    ck_assert_ptr_null(akv_fsync_names[AKV_FSYNC_ALWAYS + 1]);
}
END_TEST

static Suite *persist_suite(void)
{
    Suite *s = suite_create("persist");
    TCase *tc;

    tc = tcase_create("writer");
    tcase_add_loop_test(tc, test_sequences, AKV_FSYNC_NO, AKV_FSYNC_ALWAYS + 1);
    tcase_add_loop_test(tc, test_close_writes_all, AKV_FSYNC_NO, AKV_FSYNC_ALWAYS + 1);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("rewrite");
    tcase_add_loop_test(tc, test_rewrite, AKV_FSYNC_NO, AKV_FSYNC_ALWAYS + 1);
    tcase_add_test(tc, test_rewrite_abandoned_at_close);
    tcase_add_test(tc, test_auto_rewrite);
    tcase_add_test(tc, test_text_only_entries);
    tcase_add_test(tc, test_payload_records);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("damage");
    tcase_add_loop_test(tc, test_torn_tail, 0, 4);
    tcase_add_test(tc, test_torn_file_header);
    tcase_add_test(tc, test_load_in_steps);
    tcase_add_test(tc, test_create_and_fsync_at_run_time);
    tcase_add_loop_test(tc, test_damage_in_the_middle, 0, 3);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_write_error);
    tcase_add_test(tc, test_fsync_error_clears);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("databases");
    tcase_add_test(tc, test_multi_batches);
    tcase_add_test(tc, test_multi_during_rewrite);
    tcase_add_test(tc, test_rewrite_inside_batch);
    tcase_add_test(tc, test_replay_databases);
    tcase_add_test(tc, test_replay_db_out_of_range);
    tcase_add_test(tc, test_replay_expiry);
    tcase_add_test(tc, test_rewrite_dbs_and_expiry);
    tcase_add_test(tc, test_rewrite_preamble);
    tcase_add_test(tc, test_parked_dbs_and_expiry);
    tcase_add_test(tc, test_old_format_loads);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);

    tc = tcase_create("api");
    tcase_add_test(tc, test_null_is_off);
    tcase_add_test(tc, test_fsync_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    snprintf(root, sizeof(root), "/tmp/test-persist-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    rc = tu_run_suite(persist_suite());
    rm_rf(root);
    return rc;
}
