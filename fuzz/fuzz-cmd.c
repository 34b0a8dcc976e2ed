/*
 * fuzz-cmd.c - libFuzzer target for the command layer with its session
 * state: requests parsed from the input (akv_proto_parse, inline or RESP,
 * as a connection reads them) and run through akv_cmd_dispatch on two
 * connections, over a small vocabulary of short words, three databases, a
 * clock the input moves, and a real append-only file. An input whose last
 * byte is odd runs with key-normalize on.
 *
 * Requests the harness answers itself instead of dispatching them:
 *   >        switch to the other connection (the second speaks RESP3)
 *   + [ms]   move the clock forward (1000 ms by default)
 *   ~ [us]   run the active expiry cycle with that budget (0 by default)
 *   !        the next job's client goes away before its reply
 *
 * Invariants, checked after every command: dispatch succeeds and writes
 * exactly one well-formed reply (none for a job whose client went away);
 * EXEC and the jobs it holds leave nothing running; while a connection is
 * in MULTI every command but MULTI, EXEC, DISCARD, WATCH, UNWATCH and QUIT
 * is answered +QUEUED or with an error, and EXEC answers EXECABORT after
 * such an error, else a null array (WATCH) or an array of one reply per
 * queued command. At the end of the input, the append-only file replays
 * into fresh databases holding exactly the live entries, values, kinds
 * (payload or embedded) and expiry times (entries due by the clock here, or within an hour of the
 * wall clock, are left out on both sides: replay drops entries by the wall clock, which the clock
 * here runs a day ahead of).
 *
 * The same file is linked into test-cmd, which replays fuzz/corpus/cmd and
 * fuzz/regression/cmd through LLVMFuzzerTestOneInput on every "meson test".
 *
 * Threading: the harness is the loop thread; the AOF writer and rewrite
 * threads are persist's own. A broken invariant prints what broke and
 * aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "attnkv/store.h"
#include "attnkv/vectab.h"
#include "attnkv/vocab.h"
#include "persist/persist.h"
#include "proto/proto.h"
#include "server/cmd.h"
#include "server/config.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define NDBS 3
#define ARGV_MAX 64
#define INLINE_MAX 4096
#define COMMANDS_MAX 300 /* per input, so that one input stays fast */
#define DAY_MS 86400000ull
#define HOUR_MS 3600000ull

static struct {
    int ready;
    struct akv_vocab *voc;
    struct akv_config cfg;
    struct akv_store *dbs[NDBS], *fresh[NDBS];
    struct akv_cmd_env env;
    struct akv_session sess[2];
    uint64_t now, wall0;
    uv_loop_t loop;
    uv_timer_t keep;
    char dir[64], path[128];
    /* The harness's model of each connection's transaction. */
    int in_multi[2], failed[2];
    size_t queued[2];
} G;

static uint64_t fuzz_clock(void)
{
    return G.now;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void keep_cb(uv_timer_t *t)
{
    (void)t;
}

/* At exit: the file, a rewrite's leftover, the directory. */
static void remove_dir(void)
{
    char tmp[160];

    snprintf(tmp, sizeof(tmp), "%s/temp-rewrite-appendonly.aof", G.dir);
    unlink(tmp);
    unlink(G.path);
    rmdir(G.dir);
}

static void init_once(void)
{
    /* Short words, so that mutated text often embeds. */
    static const struct {
        const char *w;
        float v[4];
    } rows[] = {
        {"a", {1, 0, 0, 0}},         {"b", {0.9f, 0.1f, 0, 0}},         {"c", {0, 1, 0, 0}},
        {"d", {0, 0, 1, 0}},         {"x", {0, 0, 0.9f, 0.1f}},         {"y", {0, 0, 0, 1}},
        {"cat", {0.1f, 0, 0, 0.9f}}, {"dog", {0.5f, 0.5f, 0.5f, 0.5f}},
    };
    struct akv_vectab t;
    char err[256];
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    CHECK(akv_vectab_init(&t, 4) == 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        CHECK(akv_vectab_add(&t, rows[i].w, strlen(rows[i].w), rows[i].v) == 0);
    CHECK(akv_vocab_from_table(&G.voc, &t, err, sizeof(err)) == 0);
    akv_vectab_fini(&t);
    for (int i = 0; i < NDBS; i++) {
        CHECK(akv_store_create(&G.dbs[i], G.voc) == 0);
        CHECK(akv_store_create(&G.fresh[i], G.voc) == 0);
    }
    CHECK(uv_loop_init(&G.loop) == 0);
    /* persist's handles do not keep the loop alive; this timer does, so
     * that a turn of it delivers the writer's and rewrite's reports. */
    CHECK(uv_timer_init(&G.loop, &G.keep) == 0);
    CHECK(uv_timer_start(&G.keep, keep_cb, 3600000, 3600000) == 0);
    snprintf(G.dir, sizeof(G.dir), "%s/fuzz-cmd-XXXXXX", base);
    CHECK(mkdtemp(G.dir) != NULL);
    snprintf(G.path, sizeof(G.path), "%s/appendonly.aof", G.dir);
    atexit(remove_dir);
    /* The AOF's notices (created, replayed) would flood the output. */
    akv_log_set_level(AKV_LOG_WARNING);
    G.wall0 = wall_ms();
    G.ready = 1;
}

static void persist_open(struct akv_store **dbs)
{
    static int pct = 0;
    static unsigned long long min_size = 0;
    struct akv_persist_opts o = {G.dir, "appendonly.aof", AKV_FSYNC_NO, &pct, &min_size, 0, NULL};
    char err[512] = "";
    int rc = akv_persist_open(&G.env.persist, &G.loop, dbs, NDBS, &o, err, sizeof(err));

    if (rc != 0)
        fprintf(stderr, "akv_persist_open: %d %s\n", rc, err);
    CHECK(rc == 0);
}

static void count_handle(uv_handle_t *h, void *arg)
{
    if (h != (uv_handle_t *)&G.keep)
        ++*(int *)arg;
}

static void persist_close(void)
{
    int n;

    akv_persist_close(G.env.persist);
    /* The loop closes persist's handles before they may be freed. */
    do {
        uv_run(&G.loop, UV_RUN_NOWAIT);
        n = 0;
        uv_walk(&G.loop, count_handle, &n);
    } while (n > 0);
    akv_persist_destroy(G.env.persist);
    G.env.persist = NULL;
}

/* ------------------------------------------------------------------------
 * Replies.
 */

/* The length of one whole RESP2/RESP3 reply at p[0..n), or 0 if there is
 * none there. */
static size_t reply_len(const char *p, size_t n, int depth)
{
    const char *eol;
    size_t line, total;
    long long v;
    char num[32];

    if (n < 3 || depth > 16)
        return 0;
    eol = memchr(p, '\r', n);
    if (!eol || (size_t)(eol - p) + 1 >= n || eol[1] != '\n')
        return 0;
    line = (size_t)(eol - p) + 2;
    for (const char *q = p + 1; q < eol; q++)
        if (*q == '\n')
            return 0;
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
    case ',':
    case '(':
        return line;
    case '#':
        return line == 5 && (p[1] == 't' || p[1] == 'f') ? line : 0;
    case '_':
        return line == 3 ? line : 0;
    case '$':
    case '=':
    case '!':
    case '*':
    case '~':
    case '>':
    case '%':
    case '|':
        break;
    default:
        return 0;
    }
    if (line - 3 == 0 || line - 3 >= sizeof(num))
        return 0;
    memcpy(num, p + 1, line - 3);
    num[line - 3] = '\0';
    v = strtoll(num, NULL, 10);
    if (v == -1 && (p[0] == '$' || p[0] == '*'))
        return line;
    if (v < 0)
        return 0;
    if (p[0] == '$' || p[0] == '=' || p[0] == '!') {
        if ((size_t)v > n - line || n - line - (size_t)v < 2 || p[line + v] != '\r' ||
            p[line + v + 1] != '\n')
            return 0;
        return line + (size_t)v + 2;
    }
    if (p[0] == '%' || p[0] == '|')
        v *= 2;
    total = line;
    for (long long i = 0; i < v; i++) {
        size_t k = reply_len(p + total, n - total, depth + 1);
        if (k == 0)
            return 0;
        total += k;
    }
    return total;
}

/* The number of elements of an array reply, or -1 for a null one. */
static long long array_count(const char *p)
{
    if (p[0] == '_')
        return -1;
    CHECK(p[0] == '*');
    return strtoll(p + 1, NULL, 10);
}

static int is_word(const struct akv_slice *a, const char *w)
{
    return a->len == strlen(w) && strncasecmp(a->p, w, a->len) == 0;
}

/* Runs one request on connection s and checks its reply. */
static void run_one(int s, size_t argc, const struct akv_slice *argv, int gone, struct akv_buf *out)
{
    const struct akv_cmd *c = akv_cmd_lookup(argv[0].p, argv[0].len);
    struct akv_cmd_ctx ctx = {
        .env = &G.env, .argc = argc, .argv = argv, .out = out, .sess = &G.sess[s]};
    int was_multi = G.in_multi[s], queues = 0, arity_ok;
    size_t len;

    arity_ok = c && ((c->arity > 0 && argc == (size_t)c->arity) ||
                     (c->arity < 0 && argc >= (size_t)-c->arity));
    queues = was_multi && !(c && arity_ok && (c->flags & AKV_CMD_NOQUEUE));
    out->len = 0;
    CHECK(akv_cmd_dispatch(&ctx) == 0);
    CHECK(G.env.in_exec == 0);
    if (ctx.job) {
        struct akv_pool_job *pj = &ctx.job->pool;
        CHECK(out->len == 0); /* the reply comes from finish */
        if (pj->batch)
            pj->batch(&pj, 1);
        else
            pj->work(pj);
        ctx.job->finish(ctx.job, gone ? NULL : out);
        if (gone) {
            /* No reply; an EXEC still ended the transaction. */
            CHECK(out->len == 0);
            CHECK(G.env.stats.jobs_running == 0);
            CHECK(!queues);
            if (was_multi && is_word(&argv[0], "EXEC"))
                G.in_multi[s] = 0;
            return;
        }
    }
    CHECK(G.env.stats.jobs_running == 0);
    len = reply_len(out->p, out->len, 0);
    CHECK(len > 0 && len == out->len);
    if (ctx.close_after_reply) {
        /* QUIT: the connection closes; a new one takes its place. */
        int resp = G.sess[s].resp;
        akv_cmd_session_fini(&G.env, &G.sess[s]);
        akv_cmd_session_init(&G.sess[s], G.sess[s].id + 2, "fuzz");
        G.sess[s].resp = resp;
        G.in_multi[s] = G.failed[s] = 0;
        G.queued[s] = 0;
        return;
    }

    /* The model of the transaction. NOAUTH (after CONFIG SET requirepass)
     * answers before anything else and changes nothing. */
    if (out->len >= 7 && memcmp(out->p, "-NOAUTH", 7) == 0)
        return;
    if (queues) {
        /* Queued, or refused: then EXEC will abort. */
        if (out->len == 9 && memcmp(out->p, "+QUEUED\r\n", 9) == 0) {
            G.queued[s]++;
        } else {
            CHECK(out->p[0] == '-');
            G.failed[s] = 1;
        }
        return;
    }
    if (!c || !arity_ok)
        return;
    if (is_word(&argv[0], "MULTI") && !was_multi) {
        CHECK(out->len == 5 && memcmp(out->p, "+OK\r\n", 5) == 0);
        G.in_multi[s] = 1;
        G.failed[s] = 0;
        G.queued[s] = 0;
    } else if (is_word(&argv[0], "DISCARD") && was_multi) {
        CHECK(out->len == 5 && memcmp(out->p, "+OK\r\n", 5) == 0);
        G.in_multi[s] = 0;
    } else if (is_word(&argv[0], "EXEC") && was_multi) {
        static const char abort_reply[] =
            "-EXECABORT Transaction discarded because of previous errors.\r\n";
        G.in_multi[s] = 0;
        if (G.failed[s]) {
            CHECK(out->len == sizeof(abort_reply) - 1 &&
                  memcmp(out->p, abort_reply, out->len) == 0);
        } else {
            long long n = array_count(out->p);
            CHECK(n == -1 || (n >= 0 && (size_t)n == G.queued[s]));
        }
    } else if (is_word(&argv[0], "EXEC") || is_word(&argv[0], "DISCARD")) {
        CHECK(out->p[0] == '-'); /* without MULTI */
    }
}

/* ------------------------------------------------------------------------
 * The AOF replays to the live databases.
 */

/* Entries with a time up to from are not compared. */
static int counted(uint64_t expire, uint64_t from)
{
    return expire == 0 || expire > from;
}

/* Counts the compared entries of s (both stores run on a clock stuck at 0
 * here, so nothing is expired) and checks each is in other alike. */
struct each {
    struct akv_store *s, *other;
    uint64_t from;
    size_t n;
};

static int each_entry(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    struct each *e = arg;
    struct akv_store_found mine, theirs;

    CHECK(akv_store_find(e->s, k, kl, &mine) == AKV_STORE_LIVE);
    CHECK(mine.vlen == vl && memcmp(mine.val, v, vl) == 0);
    if (!counted(mine.expire, e->from))
        return 0;
    e->n++;
    if (!e->other)
        return 0;
    if (akv_store_find(e->other, k, kl, &theirs) != AKV_STORE_LIVE || theirs.vlen != vl ||
        memcmp(theirs.val, v, vl) != 0 || theirs.expire != mine.expire ||
        theirs.payload != mine.payload) {
        fprintf(stderr, "'%.*s' (expire %llu) differs after replay\n", (int)kl, k,
                (unsigned long long)mine.expire);
        CHECK(0);
    }
    return 0;
}

static size_t count_entries(struct akv_store *s, struct akv_store *other, uint64_t from)
{
    struct each e = {s, other, from, 0};
    uint64_t cur = 0;

    do {
        cur = akv_store_iter(s, cur, 64, each_entry, &e);
    } while (cur != 0);
    return e.n;
}

static void check_replay(void)
{
    /* Entries whose time has come by the clock here are gone, whether a
     * rewrite left them out or replay (by the wall clock, a day behind)
     * brings them back; those due within an hour of the wall clock may go
     * either way at replay. */
    uint64_t from = wall_ms() + HOUR_MS;

    if (G.now > from)
        from = G.now;

    for (int i = 0; i < NDBS; i++) {
        akv_store_flush(G.fresh[i]);
        akv_store_set_clock(G.fresh[i], NULL);
        akv_store_set_clock(G.dbs[i], NULL);
    }
    persist_open(G.fresh);
    for (int i = 0; i < NDBS; i++) {
        size_t live = count_entries(G.dbs[i], G.fresh[i], from);
        size_t replayed = count_entries(G.fresh[i], NULL, from);
        if (live != replayed)
            fprintf(stderr, "db %d: %zu entries, %zu after replay\n", i, live, replayed);
        CHECK(live == replayed);
    }
    persist_close();
}

/* ------------------------------------------------------------------------
 * One input.
 */

static void begin(void)
{
    memset(&G.env, 0, sizeof(G.env));
    CHECK(akv_config_init(&G.cfg) == 0);
    akv_slowlog_init(&G.env.slowlog);
    G.now = G.wall0 + DAY_MS;
    for (int i = 0; i < NDBS; i++) {
        akv_store_flush(G.dbs[i]);
        akv_store_set_clock(G.dbs[i], &G.env.now_ms);
    }
    G.env.config = &G.cfg;
    G.env.vocab = G.voc;
    G.env.dbs = G.dbs;
    G.env.ndbs = NDBS;
    G.env.clock_ms = fuzz_clock;
    G.env.vectors_path = "fuzz";
    G.env.workers = 1;
    for (int s = 0; s < 2; s++) {
        akv_cmd_session_init(&G.sess[s], (uint64_t)s + 1, "fuzz");
        G.in_multi[s] = G.failed[s] = 0;
        G.queued[s] = 0;
    }
    G.sess[1].resp = 3;
    unlink(G.path);
    persist_open(G.dbs);
}

static void end(void)
{
    for (int s = 0; s < 2; s++)
        akv_cmd_session_fini(&G.env, &G.sess[s]);
    /* As the daemon does: the AOF first (a rewrite's snapshots of flushed
     * stores go with it), then what the commands hold. */
    persist_close();
    akv_cmd_env_fini(&G.env);
    check_replay();
    akv_slowlog_reset(&G.env.slowlog);
    akv_config_fini(&G.cfg);
}

static uint64_t arg_number(size_t argc, const struct akv_slice *argv, uint64_t dflt, uint64_t max)
{
    uint64_t v = 0;

    if (argc < 2 || argv[1].len == 0 || argv[1].len > 12)
        return dflt;
    for (size_t i = 0; i < argv[1].len; i++) {
        if (argv[1].p[i] < '0' || argv[1].p[i] > '9')
            return dflt;
        v = v * 10 + (uint64_t)(argv[1].p[i] - '0');
    }
    return v > max ? max : v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct akv_slice argv[ARGV_MAX];
    static char scratch[INLINE_MAX];
    struct akv_proto_limits lim;
    struct akv_buf out;
    size_t off = 0, ncmd = 0;
    int s = 0, gone = 0;

    if (!G.ready)
        init_once();
    akv_proto_limits_default(&lim);
    lim.inline_max = INLINE_MAX;
    lim.bulk_max = 1 << 16;
    lim.argc_max = ARGV_MAX;
    akv_buf_init(&out);
    begin();
    /* key-normalize on for inputs that end in an odd byte: the AOF must
     * replay to the same databases either way. */
    G.cfg.key_normalize = size > 0 && (data[size - 1] & 1);
    while (off < size && ncmd < COMMANDS_MAX) {
        struct akv_proto_req req = {
            .argv = argv, .argv_cap = ARGV_MAX, .scratch = scratch, .scratch_cap = INLINE_MAX};
        long n = akv_proto_parse((const char *)data + off, size - off, &lim, &req, NULL, NULL);

        if (n <= 0)
            break; /* need more, or an error: the connection would close */
        off += (size_t)n;
        if (req.argc == 0)
            continue;
        ncmd++;
        if (is_word(&argv[0], ">")) {
            s ^= 1;
        } else if (is_word(&argv[0], "+")) {
            G.now += arg_number(req.argc, argv, 1000, 10 * DAY_MS);
        } else if (is_word(&argv[0], "~")) {
            (void)akv_cmd_expire_cycle(&G.env, (unsigned)arg_number(req.argc, argv, 0, 1000));
        } else if (is_word(&argv[0], "!")) {
            gone = 1;
        } else {
            const struct akv_cmd *c = akv_cmd_lookup(argv[0].p, argv[0].len);
            int job_may = c && (c->flags & AKV_CMD_SLOW || is_word(&argv[0], "KEYS") ||
                                is_word(&argv[0], "EXEC"));
            run_one(s, req.argc, argv, gone && job_may, &out);
            if (job_may)
                gone = 0;
        }
        /* A turn of the loop: the writer's reports, a rewrite's steps. */
        uv_run(&G.loop, UV_RUN_NOWAIT);
    }
    end();
    akv_buf_fini(&out);
    return 0;
}
