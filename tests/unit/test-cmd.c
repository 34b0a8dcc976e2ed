/*
 * test-cmd.c - the command table and handlers (src/server/cmd.c), driven directly
 * with a buffer and a tiny in-memory vocabulary: no sockets, no libuv. Jobs
 * are run synchronously here (work or batch, then finish) the way the pool
 * and the connection run them. The daemon as a whole is tested over TCP by
 * the suites of tests/integration/..
 */
#include <check.h>

#include "refimpl.h"
#include "runsuite.h"
#include "replay.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "attnkv/store.h"
#include "attnkv/vectab.h"
#include "attnkv/vocab.h"
#include "server/cmd.h"
#include "server/config.h"
#include "util/glob.h"
#include "proto/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The end of a run() argument list; a plain NULL may be a mere int 0. */
#define END ((const char *)NULL)

static struct akv_config cfg;
static struct akv_vocab *voc;
#define NDBS 4
static struct akv_store *dbs[NDBS], *store; /* store: database 0 as setup made it */
static struct akv_cmd_env env;
static struct akv_buf out;
static struct akv_session sess;         /* the connection's state, as conn.c keeps it */
static struct akv_session sess2;        /* a second connection */
static struct akv_session *who = &sess; /* the one run() speaks for */

/* The test's clock (env.clock_ms): T0, the wall clock's second at setup,
 * until a test moves it. Replay drops entries by the wall clock, so times
 * near it stay valid there. */
static uint64_t T0, fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static void setup(void)
{
    static const struct {
        const char *w;
        float v[4];
    } rows[] = {
        {"cat", {1, 0, 0, 0}},
        {"dog", {0.9f, 0.1f, 0, 0}},
        {"animal", {0, 1, 0, 0}},
        {"toy", {0, 0, 1, 0}},
        {"ball", {0, 0, 0.9f, 0.1f}},
        {"number", {0, 0, 0, 1}},
        {"one", {0.1f, 0, 0, 0.9f}},
        {"two", {0.2f, 0, 0, 0.8f}},
        {"the", {0.5f, 0.5f, 0.5f, 0.5f}},
    };
    struct akv_vectab t;
    char err[256];

    ck_assert_int_eq(akv_config_init(&cfg), 0);
    ck_assert_int_eq(akv_vectab_init(&t, 4), 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ck_assert_int_eq(akv_vectab_add(&t, rows[i].w, strlen(rows[i].w), rows[i].v), 0);
    ck_assert_int_eq(akv_vocab_from_table(&voc, &t, err, sizeof(err)), 0);
    akv_vectab_fini(&t);
    memset(&env, 0, sizeof(env));
    for (int i = 0; i < NDBS; i++) {
        ck_assert_int_eq(akv_store_create(&dbs[i], voc), 0);
        akv_store_set_clock(dbs[i], &env.now_ms);
    }
    store = dbs[0];
    env.config = &cfg;
    env.vocab = voc;
    env.dbs = dbs;
    env.ndbs = NDBS;
    env.vectors_path = "test.akv";
    env.tcp_port = 1234;
    env.workers = 2;
    akv_buf_init(&out);
    akv_cmd_session_init(&sess, 1, "");
    akv_cmd_session_init(&sess2, 2, "");
    who = &sess;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        T0 = fake_now = (uint64_t)ts.tv_sec * 1000;
    }
    env.clock_ms = fake_clock;
}

static void teardown(void)
{
    akv_buf_fini(&out);
    akv_cmd_session_fini(&env, &sess);
    akv_cmd_session_fini(&env, &sess2);
    akv_cmd_env_fini(&env);
    for (int i = 0; i < NDBS; i++)
        akv_store_destroy(dbs[i]);
    akv_vocab_destroy(voc);
    akv_config_fini(&cfg);
}

/* What maxmemory is compared with: every database's entries. */
static size_t used_all(void)
{
    size_t n = 0;

    for (int i = 0; i < NDBS; i++)
        n += akv_store_memory_used(dbs[i]);
    return n;
}

/* Runs a job's work the way the pool runs a job taken alone. */
static void work_alone(struct akv_cmd_job *job)
{
    struct akv_pool_job *pj = &job->pool;

    if (pj->batch)
        pj->batch(&pj, 1);
    else
        pj->work(pj);
}

/* Runs one command given as NULL-terminated words; a job, if any, is run to
 * completion. Returns the reply text (valid until the next call). */
static const char *run_job_opt(int client_gone, const char *first, va_list ap)
{
    struct akv_slice argv[32];
    size_t argc = 0;
    const char *a = first;

    out.len = 0;
    while (a && argc < 32) {
        argv[argc].p = a;
        argv[argc].len = strlen(a);
        argc++;
        a = va_arg(ap, const char *);
    }
    struct akv_cmd_ctx ctx = {.env = &env, .argc = argc, .argv = argv, .out = &out, .sess = who};
    ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
    if (ctx.job) {
        ck_assert_uint_eq(out.len, 0); /* the reply comes from finish */
        work_alone(ctx.job);
        /* As the connection does: no reply for a client that has gone or
         * asked for none (CLIENT REPLY). */
        ctx.job->finish(ctx.job, client_gone || ctx.job->drop_reply ? NULL : &out);
    }
    ck_assert_int_eq(akv_buf_reserve(&out, 1), 0);
    out.p[out.len] = '\0';
    return out.p;
}

static const char *run(const char *first, ...)
{
    va_list ap;
    const char *r;

    va_start(ap, first);
    r = run_job_opt(0, first, ap);
    va_end(ap);
    return r;
}

static const char *run_gone(const char *first, ...)
{
    va_list ap;
    const char *r;

    va_start(ap, first);
    r = run_job_opt(1, first, ap);
    va_end(ap);
    return r;
}

START_TEST(test_table)
{
    const struct akv_cmd *t = akv_cmd_table();
    size_t n;

    for (n = 0; t[n].name; n++) {
        ck_assert(t[n].handler != NULL);
        ck_assert_ptr_nonnull(t[n].usage);
        ck_assert_ptr_nonnull(t[n].summary);
        ck_assert_int_ne(t[n].arity, 0);
        for (const char *c = t[n].name; *c; c++)
            ck_assert(*c >= 'A' && *c <= 'Z');
        for (size_t m = 0; m < n; m++)
            ck_assert_str_ne(t[m].name, t[n].name);
        ck_assert_ptr_eq(akv_cmd_lookup(t[n].name, strlen(t[n].name)), &t[n]);
    }
    ck_assert_uint_ge(n, 19);
    ck_assert_ptr_eq(akv_cmd_lookup("query", 5), akv_cmd_lookup("QUERY", 5));
    ck_assert_ptr_eq(akv_cmd_lookup("QuErY", 5), akv_cmd_lookup("QUERY", 5));
    ck_assert_ptr_null(akv_cmd_lookup("QUER", 4));
    ck_assert_ptr_null(akv_cmd_lookup("QUERYX", 6));
    ck_assert_ptr_null(akv_cmd_lookup("", 0));
}
END_TEST

START_TEST(test_basics)
{
    ck_assert_str_eq(run("PING", END), "+PONG\r\n");
    ck_assert_str_eq(run("ping", "hey", END), "$3\r\nhey\r\n");
    ck_assert_str_eq(run("PING", "a", "b", END),
                     "-ERR wrong number of arguments for 'ping' command\r\n");
    ck_assert_str_eq(run("ECHO", "", END), "$0\r\n\r\n");
    ck_assert_str_eq(run("nope", "x", END),
                     "-ERR unknown command 'nope' (HELP lists the commands)\r\n");
    ck_assert_str_eq(run("SELECT", "0", END), "+OK\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":0\r\n");
    ck_assert_uint_eq(env.stats.commands_processed, 6); /* unknown ones do not count */
}
END_TEST

START_TEST(test_quit)
{
    struct akv_slice argv[1] = {{"QUIT", 4}};
    struct akv_cmd_ctx ctx = {.env = &env, .argc = 1, .argv = argv, .out = &out, .sess = &sess};

    ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
    ck_assert_int_eq(ctx.close_after_reply, 1);
    ck_assert_ptr_null(ctx.job);
}
END_TEST

START_TEST(test_kv)
{
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "one two", "number", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("GET", "dog", END), "$-1\r\n");
    ck_assert_str_eq(run("EXISTS", "cat", "dog", "cat", END), ":2\r\n");
    ck_assert_str_eq(run("SET", "cta", "animal", END),
                     "-ERR unknown word 'cta' (did you mean 'cat'?)\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":2\r\n");
    ck_assert_str_eq(run("KEYS", "c*", END), "*1\r\n$3\r\ncat\r\n");
    ck_assert_str_eq(run("KEYS", "*two", END), "*1\r\n$7\r\none two\r\n");
    ck_assert_str_eq(run("DEL", "cat", "cat", "dog", END), ":1\r\n");
    ck_assert_str_eq(run("FLUSHALL", END), "+OK\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":0\r\n");
    ck_assert_str_eq(run("SCAN", "0", END), "*2\r\n$1\r\n0\r\n*0\r\n");
}
END_TEST

START_TEST(test_query_job)
{
    const char *r;

    ck_assert_str_eq(run("QUERY", "cat", END), "*0\r\n"); /* empty store */
    run("SET", "cat", "animal", END);
    run("SET", "ball", "toy", END);
    /* cat attends to itself most, so the blend is near "animal". */
    r = run("QUERY", "dog", "COUNT", "1", END);
    ck_assert_str_eq(r, "*1\r\n$6\r\nanimal\r\n");
    r = run("query", "dog", "count", "2", "withscores", "metric", "COSINE", END);
    ck_assert(strncmp(r, "*4\r\n$6\r\nanimal\r\n", 16) == 0);
    r = run("EXPLAIN", "dog", "COUNT", "1", END);
    ck_assert(strncmp(r, "*1\r\n*3\r\n$3\r\ncat\r\n$6\r\nanimal\r\n$", 30) == 0);
    r = run("NEIGHBORS", "cat", "COUNT", "2", END);
    ck_assert_str_eq(r, "*2\r\n$3\r\ncat\r\n$3\r\ndog\r\n");
    /* FGET: the stored values, a payload's bytes as they are. */
    ck_assert_str_eq(run("FGET", "dog", "COUNT", "1", END), "*1\r\n$6\r\nanimal\r\n");
    ck_assert_str_eq(run("SET", "dog", "a\r\nb", "PAYLOAD", END), "+OK\r\n");
    ck_assert_str_eq(run("OBJECT", "ENCODING", "dog", END), "$7\r\npayload\r\n");
    r = run("FGET", "dog", "COUNT", "3", END);
    ck_assert(strncmp(r, "*3\r\n", 4) == 0);
    ck_assert_ptr_nonnull(strstr(r, "\r\n$4\r\na\r\nb\r\n"));
    r = run("FGET", "dog", "WITHSCORES", "MINWEIGHT", "1", END); /* nothing weighs 1 */
    ck_assert_str_eq(r, "*0\r\n");
    r = run("EXPLAIN", "dog", "COUNT", "3", "WITHBLEND", END);
    ck_assert(strncmp(r, "*3\r\n*5\r\n", 8) == 0);
    ck_assert_ptr_nonnull(strstr(r, "$3\r\ndog\r\n$4\r\na\r\nb\r\n$"));
    ck_assert_ptr_nonnull(strstr(r, "\r\n$1\r\n0\r\n$7\r\npayload\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\n$8\r\nembedded\r\n"));
    ck_assert_str_eq(run("FGET", "dog", "MINWEIGHT", "1.5", END),
                     "-ERR MINWEIGHT must be a decimal number from 0 to 1, not '1.5'\r\n");
    ck_assert_str_eq(run("FGET", "dog", "METRIC", "l2", END),
                     "-ERR unknown option 'METRIC' for FGET\r\n");
    ck_assert_str_eq(run("SET", "dog", "animal", END), "+OK\r\n");
    ck_assert_uint_eq(env.stats.query_count, 3);
    ck_assert_uint_eq(env.stats.jobs_running, 0);
    /* A client that went away: the job still releases its snapshot (the
     * store would refuse to be destroyed otherwise). */
    ck_assert_str_eq(run_gone("QUERY", "dog", END), "");
    ck_assert_str_eq(run_gone("EXPLAIN", "dog", END), "");
    ck_assert_uint_eq(env.stats.jobs_running, 0);
}
END_TEST

/* The words and scores of a RESP2 WITHSCORES reply into w (room for 16)
 * and sc; returns how many. */
static size_t parse_scored(const char *r, char w[][32], double *sc)
{
    size_t n = 0, len;
    long items;

    ck_assert(sscanf(r, "*%ld\r\n", &items) == 1);
    r = strstr(r, "\r\n") + 2;
    for (long i = 0; i < items; i += 2, n++) {
        ck_assert(sscanf(r, "$%zu\r\n", &len) == 1 && len < 32);
        r = strstr(r, "\r\n") + 2;
        memcpy(w[n], r, len);
        w[n][len] = '\0';
        r += len + 2;
        ck_assert(sscanf(r, "$%zu\r\n", &len) == 1);
        r = strstr(r, "\r\n") + 2;
        sc[n] = strtod(r, NULL);
        r += len + 2;
    }
    return n;
}

/* The reply r against reference hits want. */
static void same_as_ref(const char *r, const struct ref_hit *want, size_t nwant)
{
    char w[16][32];
    double sc[16];
    size_t n = parse_scored(r, w, sc);

    ck_assert_msg(n == nwant, "%zu hits, reference %zu: %s", n, nwant, r);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *ww = akv_vocab_word(voc, want[i].id, &len);
        ck_assert_msg(strlen(w[i]) == len && memcmp(w[i], ww, len) == 0, "hit %zu %s, want %.*s", i,
                      w[i], (int)len, ww);
        ck_assert_msg(fabs(sc[i] - want[i].score) <= 1e-12 * fmax(1, fabs(want[i].score)),
                      "hit %zu score %.17g, want %.17g", i, sc[i], want[i].score);
    }
}

/* The term vectors of words, in double. */
static void terms_of(const char *const *words, size_t n, double *dst)
{
    for (size_t t = 0; t < n; t++) {
        int64_t id = akv_vocab_find(voc, words[t], strlen(words[t]));
        ck_assert(id >= 0);
        for (uint32_t d = 0; d < 4; d++)
            dst[t * 4 + d] = akv_vocab_vec(voc, (uint32_t)id)[d];
    }
}

/* Word arithmetic through the command layer against tests/unit/refimpl.c:
 * 3CosAdd's vector (ref_3cosadd), its ranking with the input words left
 * out, ANALOGY, 3CosMul, RESTRICT and EXCLUDE. */
START_TEST(test_word_arithmetic)
{
    static const char *const w1[] = {"cat", "toy", "one", "dog"};
    struct ref_hit want[16];
    double terms[4 * 4], r[4];
    uint32_t excl[4];
    size_t n;

    /* cat + toy + one - dog, ranked by cosine, inputs excluded. */
    terms_of(w1, 4, terms);
    ref_3cosadd(terms, 3, 1, 4, r);
    for (int i = 0; i < 4; i++)
        excl[i] = (uint32_t)akv_vocab_find(voc, w1[i], strlen(w1[i]));
    n = ref_rank_filtered(voc, r, AKV_METRIC_COSINE, 3, 0, excl, 4, want);
    same_as_ref(run("NEIGHBORS", "cat", "POSITIVE", "toy", "one", "NEGATIVE", "dog", "COUNT", "3",
                    "WITHSCORES", END),
                want, n);
    /* ANALOGY a b c = b + c - a. */
    {
        static const char *const w2[] = {"ball", "one", "toy"};
        terms_of(w2, 3, terms);
        ref_3cosadd(terms, 2, 1, 4, r);
        for (int i = 0; i < 3; i++)
            excl[i] = (uint32_t)akv_vocab_find(voc, w2[i], strlen(w2[i]));
        n = ref_rank_filtered(voc, r, AKV_METRIC_COSINE, 4, 0, excl, 3, want);
        same_as_ref(run("ANALOGY", "toy", "ball", "one", "COUNT", "4", "WITHSCORES", END), want, n);
        /* RESTRICT 5 and an EXCLUDE on top. */
        excl[3] = (uint32_t)akv_vocab_find(voc, "cat", 3);
        n = ref_rank_filtered(voc, r, AKV_METRIC_COSINE, 4, 5, excl, 4, want);
        same_as_ref(run("ANALOGY", "toy", "ball", "one", "COUNT", "4", "WITHSCORES", "RESTRICT",
                        "5", "EXCLUDE", "cat", END),
                    want, n);
        /* 3CosMul. */
        n = ref_cosmul(voc, terms, 2, 1, 4, 0, excl, 3, want);
        same_as_ref(run("ANALOGY", "toy", "ball", "one", "COUNT", "4", "WITHSCORES", "COSMUL", END),
                    want, n);
    }
    ck_assert_str_eq(run("NEIGHBORS", "cat", "POSITIVE", END),
                     "-ERR POSITIVE needs at least one word\r\n");
    ck_assert_str_eq(run("NEIGHBORS", "VECTOR", "VALUES", "3", "1", "2", "3", END),
                     "-ERR vector dimension mismatch: got 3, the vocabulary's is 4\r\n");
}
END_TEST

/* Dispatches a command that must become a job and returns the job, not
 * yet run. */
static struct akv_cmd_job *start(const char *first, ...)
{
    struct akv_slice argv[32];
    struct akv_buf tmp;
    size_t argc = 0;
    va_list ap;

    va_start(ap, first);
    for (const char *a = first; a && argc < 32; a = va_arg(ap, const char *)) {
        argv[argc].p = a;
        argv[argc].len = strlen(a);
        argc++;
    }
    va_end(ap);
    akv_buf_init(&tmp);
    struct akv_cmd_ctx ctx = {.env = &env, .argc = argc, .argv = argv, .out = &tmp, .sess = &sess};
    ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
    ck_assert_uint_eq(tmp.len, 0);
    ck_assert_ptr_nonnull(ctx.job);
    ck_assert(ctx.job->pool.batch != NULL);
    akv_buf_fini(&tmp);
    return ctx.job;
}

/* QUERY, EXPLAIN and NEIGHBORS jobs run together in one batch (as the pool
 * runs jobs queued together) reply byte for byte what each replies alone,
 * each from its own snapshot, and INFO counts the batch. */
START_TEST(test_query_batch)
{
    static const char *const cmds[][10] = {
        {"QUERY", "dog", "COUNT", "3", "WITHSCORES"},
        {"EXPLAIN", "ball", "COUNT", "3"},
        {"NEIGHBORS", "two", "COUNT", "4", "WITHSCORES", "METRIC", "dot"},
        {"QUERY", "one", "ATTENTION", "cosine", "TEMPERATURE", "0.5", "METRIC", "cosine",
         "WITHSCORES"},
        {"NEIGHBORS", "cat"},
        {"QUERY", "the", "COUNT", "9", "WITHSCORES", "METRIC", "l2"},
        {"EXPLAIN", "one", "ATTENTION", "cosine", "COUNT", "9"},
        {"FGET", "dog", "COUNT", "3", "WITHSCORES"},
        {"FGET", "ball", "ATTENTION", "cosine", "MINWEIGHT", "0.001"},
    };
    enum { NCMD = sizeof(cmds) / sizeof(cmds[0]), NJOB = NCMD + 2 };
    char *alone[NJOB];
    struct akv_cmd_job *jobs[NJOB];
    struct akv_pool_job *pjs[NJOB];
    struct akv_buf outs[NJOB];
    const char *r;

    run("SET", "cat", "animal", END);
    run("SET", "ball", "toy", END);
    run("SET", "one", "number", END);
    for (size_t i = 0; i < NCMD; i++) {
        const char *const *c = cmds[i];
        alone[i] = strdup(run(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]));
        jobs[i] = start(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]);
    }
    /* Two more jobs on either side of a write: each must see its own
     * snapshot even though they run in the same batch. */
    alone[NCMD] = strdup(run("EXPLAIN", "dog", "COUNT", "9", END));
    jobs[NCMD] = start("EXPLAIN", "dog", "COUNT", "9", END);
    run("SET", "dog", "toy", END);
    alone[NCMD + 1] = strdup(run("EXPLAIN", "dog", "COUNT", "9", END));
    jobs[NCMD + 1] = start("EXPLAIN", "dog", "COUNT", "9", END);
    ck_assert_str_ne(alone[NCMD], alone[NCMD + 1]);

    ck_assert_str_eq(run("CONFIG", "RESETSTAT", END), "+OK\r\n");
    for (size_t i = 0; i < NJOB; i++) {
        pjs[i] = &jobs[i]->pool;
        ck_assert(pjs[i]->batch == pjs[0]->batch);
        akv_buf_init(&outs[i]);
    }
    pjs[0]->batch(pjs, NJOB);
    for (size_t i = 0; i < NJOB; i++) {
        jobs[i]->finish(jobs[i], &outs[i]);
        ck_assert_uint_eq(outs[i].len, strlen(alone[i]));
        ck_assert(memcmp(outs[i].p, alone[i], outs[i].len) == 0);
        akv_buf_fini(&outs[i]);
        free(alone[i]);
    }
    ck_assert_uint_eq(env.stats.jobs_running, 0);
    r = run("INFO", "stats", END);
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batches:1\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batched_jobs:11\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batch_max:11\r\n"));
    /* A job run alone is a batch of one. */
    run("NEIGHBORS", "cat", END);
    r = run("INFO", "stats", END);
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batches:2\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batched_jobs:12\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batch_max:11\r\n"));
}
END_TEST

START_TEST(test_query_errors)
{
    ck_assert_str_eq(run("QUERY", "kat", END), "-ERR unknown word 'kat' (did you mean 'cat'?)\r\n");
    ck_assert_str_eq(run("QUERY", "cat", "COUNT", END), "-ERR COUNT needs a value\r\n");
    ck_assert_str_eq(run("QUERY", "cat", "count", END), "-ERR COUNT needs a value\r\n");
    ck_assert_str_eq(run("QUERY", "cat", "COUNT", "0", END),
                     "-ERR QUERY COUNT must be an integer between 1 and 1000\r\n");
    ck_assert_str_eq(run("QUERY", "cat", "TEMPERATURE", "1e999", END),
                     "-ERR TEMPERATURE must be a decimal number from 0.0001 to 1e+06, not "
                     "'1e999'\r\n");
    ck_assert_str_eq(run("QUERY", "cat", "WITH", END), "-ERR unknown option 'WITH' for QUERY\r\n");
    ck_assert_str_eq(run("EXPLAIN", "cat", "WITHSCORES", END),
                     "-ERR unknown option 'WITHSCORES' for EXPLAIN\r\n");
    ck_assert_str_eq(run("NEIGHBORS", "cat", "ATTENTION", "dot", END),
                     "-ERR unknown option 'ATTENTION' for NEIGHBORS\r\n");
    ck_assert_uint_eq(env.stats.jobs_running, 0);
}
END_TEST

START_TEST(test_info_config)
{
    const char *r = run("INFO", END);

    ck_assert_ptr_nonnull(strstr(r, "# Server\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "tcp_port:1234\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\n# Latency\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "vocabulary_size:9\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "# Memory\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "# Store\r\nkeys:0\r\n"));
    ck_assert_ptr_null(strstr(r, "# Commandstats")); /* not a default section */
    r = run("INFO", "keyspace", END);
    ck_assert_str_eq(r, "$12\r\n# Keyspace\r\n\r\n");
    r = run("INFO", "everything", END);
    ck_assert_ptr_nonnull(strstr(r, "# Commandstats\r\ncmdstat_info:calls=2,"));
    ck_assert_str_eq(run("CONFIG", "GET", "PORT", END), "*2\r\n$4\r\nport\r\n$4\r\n6479\r\n");
    /* appendonly is a real directive; save is answered for redis-benchmark. */
    ck_assert_str_eq(run("CONFIG", "GET", "save", "appendonly", END),
                     "*4\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n$4\r\nsave\r\n$0\r\n\r\n");
}
END_TEST

START_TEST(test_auth_without_password)
{
    ck_assert_str_eq(run("AUTH", "x", END),
                     "-ERR AUTH <password> called without any password configured for the "
                     "default user. Are you sure your configuration is correct?\r\n");
    ck_assert_int_eq(sess.authenticated, 0);
    /* The Redis 6 form: the default user takes any password then. */
    ck_assert_str_eq(run("AUTH", "default", "x", END), "+OK\r\n");
    ck_assert_str_eq(run("AUTH", "bob", "x", END),
                     "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    ck_assert_str_eq(run("AUTH", END), "-ERR wrong number of arguments for 'auth' command\r\n");
    ck_assert_str_eq(run("AUTH", "a", "b", "c", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$-1\r\n");
}
END_TEST

START_TEST(test_auth_with_password)
{
    static const char *const wrong[] = {"", "s3cre", "s3cret1", "S3cret", "s3cres", "s3cret\n"};
    const char *r;

    cfg.requirepass = strdup("s3cret");
    /* Before AUTH: only AUTH, PING, QUIT and HELP. */
    ck_assert_str_eq(run("GET", "cat", END), "-NOAUTH Authentication required.\r\n");
    ck_assert_str_eq(run("SET", "cat", "animal", END), "-NOAUTH Authentication required.\r\n");
    ck_assert_str_eq(run("QUERY", "cat", END), "-NOAUTH Authentication required.\r\n");
    ck_assert_str_eq(run("CONFIG", "GET", "*", END), "-NOAUTH Authentication required.\r\n");
    ck_assert_str_eq(run("INFO", END), "-NOAUTH Authentication required.\r\n");
    ck_assert_str_eq(run("PING", END), "+PONG\r\n");
    ck_assert(strncmp(run("HELP", END), "*", 1) == 0);
    ck_assert_str_eq(run("nope", END), "-ERR unknown command 'nope' (HELP lists the commands)\r\n");
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        struct akv_slice argv[2] = {{"AUTH", 4}, {wrong[i], strlen(wrong[i])}};
        struct akv_cmd_ctx ctx = {.env = &env, .argc = 2, .argv = argv, .out = &out, .sess = &sess};
        out.len = 0;
        ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
        ck_assert_int_eq(sess.authenticated, 0);
        ck_assert(out.len > 11 && memcmp(out.p, "-WRONGPASS ", 11) == 0);
    }
    /* A password with a NUL after the right prefix is still wrong. */
    {
        struct akv_slice argv[2] = {{"AUTH", 4}, {"s3cret\0", 7}};
        struct akv_cmd_ctx ctx = {.env = &env, .argc = 2, .argv = argv, .out = &out, .sess = &sess};
        out.len = 0;
        ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
        ck_assert_int_eq(sess.authenticated, 0);
    }
    ck_assert_str_eq(run("AUTH", "bob", "s3cret", END),
                     "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    ck_assert_str_eq(run("AUTH", "s3cret", END), "+OK\r\n");
    ck_assert_int_eq(sess.authenticated, 1);
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    /* A failed AUTH later does not log the connection out. */
    ck_assert_str_eq(run("AUTH", "nope", END),
                     "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    akv_cmd_session_init(&sess, 1, "");
    ck_assert_str_eq(run("AUTH", "default", "s3cret", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    /* CONFIG GET shows it to an authenticated client, as Redis does; INFO
     * does not. */
    ck_assert_str_eq(run("CONFIG", "GET", "requirepass", END),
                     "*2\r\n$11\r\nrequirepass\r\n$6\r\ns3cret\r\n");
    r = run("INFO", "everything", END);
    ck_assert_ptr_null(strstr(r, "s3cret"));
    ck_assert(akv_cmd_lookup("AUTH", 4)->flags & AKV_CMD_SECRET);
}
END_TEST

START_TEST(test_set_limits)
{
    char big[4200];
    const char *r;
    size_t used;

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_str_eq(run("SET", big, "animal", END),
                     "-ERR key is too long (4199 bytes; max-key-len is 4096)\r\n");
    ck_assert_str_eq(run("SET", "cat", big, END),
                     "-ERR value is too long (4199 bytes; max-value-len is 4096)\r\n");
    cfg.max_key_len = 3;
    cfg.max_value_len = 6;
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "the cat", "animal", END),
                     "-ERR key is too long (7 bytes; max-key-len is 3)\r\n");
    ck_assert_str_eq(run("SET", "cat", "animals", END),
                     "-ERR value is too long (7 bytes; max-value-len is 6)\r\n");
    cfg.max_key_len = cfg.max_value_len = 4096;

    /* maxkeys: no new key beyond it; replacing a value is fine. */
    cfg.maxkeys = 2;
    ck_assert_str_eq(run("SET", "dog", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "one", "number", END),
                     "-OOM command not allowed when the number of keys >= 'maxkeys'.\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", END), "+OK\r\n");
    ck_assert_str_eq(run("DEL", "dog", END), ":1\r\n");
    ck_assert_str_eq(run("SET", "one", "number", END), "+OK\r\n");
    cfg.maxkeys = 0;

    /* maxmemory: SET is refused once the store is over it, until DEL or
     * FLUSHALL make room; reads go on. */
    {
        static const char *const w[] = {"cat", "dog", "animal", "toy", "ball", "number"};
        char keys[36][16];
        int n = 0, refused = 0;

        /* All 36 names first: the refill below uses every one, also those
         * the first loop did not reach. */
        for (int i = 0; i < 36; i++)
            snprintf(keys[i], sizeof(keys[i]), "%s %s", w[i / 6], w[i % 6]);
        used = used_all();
        cfg.maxmemory = used + 2000;
        for (int i = 0; i < 36 && !refused; i++) {
            r = run("SET", keys[i], "toy", END);
            if (strcmp(r, "+OK\r\n") == 0) {
                n++;
                continue;
            }
            ck_assert_str_eq(r, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
            refused = 1;
        }
        ck_assert_msg(refused && n > 2, "%d keys, refused %d", n, refused);
        ck_assert_uint_gt(used_all(), cfg.maxmemory);
        /* Replacing a value is a write too. */
        ck_assert_str_eq(run("SET", "cat", "animal", END),
                         "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
        ck_assert_str_eq(run("GET", keys[0], END), "$3\r\ntoy\r\n");
        ck_assert(strncmp(run("QUERY", "cat", "COUNT", "1", END), "*1\r\n$", 5) == 0);
        ck_assert_str_eq(run("EXISTS", keys[1], END), ":1\r\n");
        for (int i = 0; i < n; i++)
            ck_assert_str_eq(run("DEL", keys[i], END), ":1\r\n");
        ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
        for (int i = 0; i < 36; i++)
            run("SET", keys[i % 36], "toy", END);
        ck_assert_str_eq(run("SET", "cat", "toy", END),
                         "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
        ck_assert_str_eq(run("FLUSHALL", END), "+OK\r\n");
        ck_assert_str_eq(run("SET", "dog", "animal", END), "+OK\r\n");
    }
    ck_assert_ptr_nonnull(strstr(run("INFO", "memory", END), "\r\nmaxmemory:"));
}
END_TEST

START_TEST(test_config_set)
{
    ck_assert_str_eq(run("CONFIG", "SET", "count", "2", END), "+OK\r\n");
    ck_assert_uint_eq(cfg.query.k, 2);
    ck_assert_str_eq(run("CONFIG", "SET", "metric", "cosine", "temperature", "0.5", END),
                     "+OK\r\n");
    ck_assert_int_eq(cfg.query.metric, AKV_METRIC_COSINE);
    ck_assert(cfg.query.temperature == 0.5);
    /* All or nothing: the bad second value undoes the first. */
    ck_assert_str_eq(run("CONFIG", "SET", "count", "3", "metric", "nope", END),
                     "-ERR CONFIG SET 'metric': bad metric 'nope' (expected l2|cosine|dot)\r\n");
    ck_assert_uint_eq(cfg.query.k, 2);
    ck_assert_str_eq(run("CONFIG", "SET", "port", "1", END),
                     "-ERR CONFIG SET 'port' cannot be changed at run time (edit the "
                     "configuration file and restart attnkvd)\r\n");
    ck_assert_str_eq(run("CONFIG", "SET", "nosuch", "1", END),
                     "-ERR Unknown option 'nosuch' for CONFIG SET\r\n");
    ck_assert_str_eq(run("CONFIG", "SET", "count", END),
                     "-ERR wrong number of arguments for 'config' command\r\n");
    ck_assert_str_eq(run("CONFIG", "GET", "count", END), "*2\r\n$5\r\ncount\r\n$1\r\n2\r\n");
    /* QUERY now returns two words by default. */
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_ptr_nonnull(strstr(run("QUERY", "dog", END), "*2\r\n"));
    ck_assert_str_eq(run("CONFIG", "RESETSTAT", END), "+OK\r\n");
    ck_assert_uint_eq(env.stats.commands_processed, 0);
    ck_assert_uint_eq(env.stats.query_hist.count, 0);
}
END_TEST

START_TEST(test_slowlog_and_commandstats)
{
    const char *r;

    cfg.slowlog_slower_than = 0; /* everything */
    cfg.slowlog_max_len = 3;
    run("SET", "cat", "animal", END);
    run("QUERY", "dog", "COUNT", "1", END);
    run("QUERY", "zzz", END); /* an unknown word: fails at once */
    run("GET", END);          /* wrong arity: rejected, not logged */
    ck_assert_uint_eq(env.slowlog.len, 3);
    ck_assert_str_eq(run("SLOWLOG", "LEN", END), ":3\r\n");
    r = run("SLOWLOG", "GET", "1", END);
    /* The newest entry is the SLOWLOG LEN itself. */
    ck_assert_ptr_nonnull(strstr(r, "*1\r\n*6\r\n:3\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "*2\r\n$7\r\nSLOWLOG\r\n$3\r\nLEN\r\n$0\r\n\r\n$0\r\n\r\n"));
    r = run("SLOWLOG", "GET", "-1", END);
    ck_assert_ptr_nonnull(strstr(r, "*3\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$5\r\nQUERY\r\n$3\r\nzzz\r\n"));
    ck_assert_ptr_nonnull(strstr(run("SLOWLOG", "GET", "x", END), "-ERR count"));
    ck_assert_str_eq(run("SLOWLOG", "RESET", END), "+OK\r\n");
    ck_assert_uint_eq(env.slowlog.len, 1); /* RESET is logged after it ran */
    ck_assert_ptr_nonnull(strstr(run("SLOWLOG", "FLY", END), "-ERR unknown subcommand"));
    cfg.slowlog_slower_than = -1; /* off: the FLY above was the last one logged */
    run("PING", END);
    ck_assert_str_eq(run("SLOWLOG", "LEN", END), ":2\r\n");

    r = run("INFO", "commandstats", END);
    ck_assert_ptr_nonnull(strstr(r, "cmdstat_query:calls=2,"));
    ck_assert_ptr_nonnull(strstr(r, "rejected_calls=0,failed_calls=1\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "cmdstat_get:calls=0,usec=0,usec_per_call=0.00,"
                                    "rejected_calls=1,failed_calls=0\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "cmdstat_set:calls=1,"));
    ck_assert_uint_eq(env.stats.query_hist.count, 1);
    r = run("INFO", "latency", END);
    ck_assert_ptr_nonnull(strstr(r, "query_latency_p99_us:"));
    r = run("INFO", "latencystats", END);
    ck_assert_ptr_nonnull(strstr(r, "latency_percentiles_usec_query:p50="));
}
END_TEST

/* Runs argv[0..argc) (no job expected) and returns the reply text. */
static const char *run_argv(size_t argc, const struct akv_slice *argv)
{
    struct akv_cmd_ctx ctx = {.env = &env, .argc = argc, .argv = argv, .out = &out, .sess = &sess};

    out.len = 0;
    ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
    ck_assert_ptr_null(ctx.job);
    ck_assert_int_eq(akv_buf_reserve(&out, 1), 0);
    out.p[out.len] = '\0';
    return out.p;
}

/* The audit's findings that a handler alone can show (the rest are tested
 * over TCP by tests/integration/test_hostile.py). */
START_TEST(test_hostile_inputs)
{
    static struct akv_slice argv[200];
    static char longpat[AKV_GLOB_PATTERN_MAX + 2];
    const char *r;
    size_t n;

    /* Temperatures: decimal, within range. */
    static const char *const bad_t[] = {"0x1p-1074", "1e-320", "0",    "-0.5", "inf", "nan",
                                        "2e6",       " 0.5",   "0.5 ", "0X10", "1e-5"};
    for (size_t i = 0; i < sizeof(bad_t) / sizeof(bad_t[0]); i++) {
        r = run("EXPLAIN", "cat", "ATTENTION", "cosine", "TEMPERATURE", bad_t[i], END);
        ck_assert_msg(strncmp(r, "-ERR TEMPERATURE must be a decimal number", 41) == 0, "%s: %s",
                      bad_t[i], r);
    }
    run("SET", "cat", "animal", END);
    r = run("EXPLAIN", "cat", "ATTENTION", "cosine", "TEMPERATURE", "0.0001", END);
    ck_assert_int_eq(r[0], '*');
    ck_assert_ptr_null(strstr(r, "nan"));
    ck_assert_ptr_null(strstr(r, "inf"));

    /* CONFIG SET: each directive once, at most one pair per directive. */
    ck_assert_str_eq(run("CONFIG", "SET", "timeout", "0", "TIMEOUT", "1", END),
                     "-ERR CONFIG SET 'TIMEOUT': duplicate parameter\r\n");
    argv[0] = (struct akv_slice){"CONFIG", 6};
    argv[1] = (struct akv_slice){"SET", 3};
    for (n = 2; n < 200; n += 2) {
        argv[n] = (struct akv_slice){"timeout", 7};
        argv[n + 1] = (struct akv_slice){"0", 1};
    }
    ck_assert_ptr_nonnull(strstr(run_argv(200, argv), "-ERR CONFIG SET takes at most "));
    /* Paths only from the configuration file. */
    ck_assert_str_eq(run("CONFIG", "SET", "logfile", "/proc/self/mem", END),
                     "-ERR CONFIG SET 'logfile' is a path: set it in the configuration file and "
                     "reload it with CONFIG RELOAD\r\n");
    /* A path read only at start-up: a reload would not apply it either. */
    ck_assert_str_eq(run("CONFIG", "SET", "dir", "/tmp", END),
                     "-ERR CONFIG SET 'dir' is a path: set it in the configuration file and "
                     "restart attnkvd\r\n");
    ck_assert_ptr_nonnull(strstr(run("CONFIG", "SET", "vectors", "/x", END),
                                 "is a path: set it in the "
                                 "configuration file and restart"));

    /* CONFIG GET: at most CONFIG_GET_PATTERNS_MAX (64) patterns. */
    argv[1] = (struct akv_slice){"GET", 3};
    for (n = 2; n < 67; n++)
        argv[n] = (struct akv_slice){"*x*y*z", 6};
    ck_assert_str_eq(run_argv(67, argv), "-ERR CONFIG GET takes at most 64 patterns\r\n");
    argv[65] = (struct akv_slice){"maxkeys", 7};
    ck_assert_str_eq(run_argv(66, argv), "*2\r\n$7\r\nmaxkeys\r\n$1\r\n0\r\n");

    /* Patterns longer than AKV_GLOB_PATTERN_MAX are refused everywhere. */
    memset(longpat, 'a', sizeof(longpat) - 1);
    ck_assert_ptr_nonnull(strstr(run("KEYS", longpat, END), "-ERR pattern too long (8193 bytes"));
    ck_assert_ptr_nonnull(strstr(run("SCAN", "0", "MATCH", longpat, END), "-ERR pattern too long"));
    ck_assert_ptr_nonnull(strstr(run("CONFIG", "GET", longpat, END), "-ERR pattern too long"));
    longpat[AKV_GLOB_PATTERN_MAX] = '\0';
    ck_assert_str_eq(run("KEYS", longpat, END), "*0\r\n");

    /* KEYS stops at the output hard limit instead of building the reply. */
    run("SET", "dog", "animal", END);
    run("SET", "one two", "number", END);
    cfg.obuf_hard = 20;
    ck_assert_ptr_nonnull(strstr(run("KEYS", "*", END), "-ERR KEYS reply would exceed"));
    ck_assert_str_eq(run("KEYS", "d*", END), "*1\r\n$3\r\ndog\r\n");
    cfg.obuf_hard = 0;

    /* AUTH's arguments never reach the slow log. */
    cfg.slowlog_slower_than = 0;
    cfg.requirepass = strdup("s3cret-pass");
    run("AUTH", "guess", END);
    run("AUTH", "default", "s3cret-pass", END);
    r = run("SLOWLOG", "GET", "-1", END);
    ck_assert_ptr_null(strstr(r, "guess"));
    ck_assert_ptr_null(strstr(r, "s3cret"));
    ck_assert_ptr_nonnull(
        strstr(r, "*3\r\n$4\r\nAUTH\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "*2\r\n$4\r\nAUTH\r\n$10\r\n(redacted)\r\n"));
}
END_TEST

/* ------------------------------------------------------------------------
 * Keys, expiry, databases and transactions, with the test's clock
 * (env.clock_ms) and a second connection.
 */

/* Runs a command as the second connection. */
static const char *run2(const char *first, ...)
{
    va_list ap;
    const char *r;

    who = &sess2;
    va_start(ap, first);
    r = run_job_opt(0, first, ap);
    va_end(ap);
    who = &sess;
    return r;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ------------------------------------------------------------------------
 * Connections, RESP3 and the operations commands. The connection layer's
 * hooks are faked: three clients whose sessions the test holds, and a
 * monitor feed that keeps the last line.
 */

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static struct akv_session fake[3];
static int fake_killed[3];
static char last_feed[8192];
static int feeds, shutdowns, shutdown_now, pause_changes;

static int fake_clients(struct akv_cmd_env *e, const struct akv_session *only,
                        int (*fn)(void *arg, const struct akv_client_info *ci), void *arg)
{
    (void)e;
    for (int i = -1; i < 3; i++) {
        const struct akv_session *s = i < 0 ? &sess : &fake[i];
        struct akv_client_info ci = {.sess = s,
                                     .fd = 10 + i,
                                     .age_s = 5,
                                     .idle_s = 1,
                                     .qbuf = 3,
                                     .qbuf_free = 13,
                                     .reading = 1};
        int rc;
        if ((only && s != only) || (i >= 0 && fake_killed[i]))
            continue;
        rc = fn(arg, &ci);
        if (rc < 0)
            return rc;
        if (rc == AKV_CLIENT_KILL) {
            ck_assert_int_ge(i, 0); /* never the caller */
            fake_killed[i] = 1;
        }
    }
    return 0;
}

static void fake_monitor_set(struct akv_cmd_env *e, struct akv_session *s, int on)
{
    if (on && !s->monitor)
        e->monitors++;
    else if (!on && s->monitor)
        e->monitors--;
    s->monitor = (unsigned)on;
}

static void fake_feed(struct akv_cmd_env *e, const char *line, size_t len)
{
    (void)e;
    ck_assert_uint_lt(len, sizeof(last_feed));
    memcpy(last_feed, line, len);
    last_feed[len] = '\0';
    feeds++;
}

static void fake_shutdown(struct akv_cmd_env *e, int now)
{
    (void)e;
    shutdowns++;
    shutdown_now = now;
}

static void fake_pause_changed(struct akv_cmd_env *e)
{
    (void)e;
    pause_changes++;
}

static void hooks_on(void)
{
    for (int i = 0; i < 3; i++) {
        char peer[32];
        snprintf(peer, sizeof(peer), "10.0.0.%d:%d", i + 1, 5000 + i);
        akv_cmd_session_init(&fake[i], (uint64_t)(10 + i), peer);
        snprintf(fake[i].laddr, sizeof(fake[i].laddr), "127.0.0.1:%d", i == 2 ? 7000 : 6479);
        fake_killed[i] = 0;
    }
    snprintf(sess.peer, sizeof(sess.peer), "127.0.0.1:4000");
    snprintf(sess.laddr, sizeof(sess.laddr), "127.0.0.1:6479");
    env.clients = fake_clients;
    env.monitor_set = fake_monitor_set;
    env.monitor_feed = fake_feed;
    env.shutdown = fake_shutdown;
    env.pause_changed = fake_pause_changed;
    feeds = shutdowns = pause_changes = 0;
}

START_TEST(test_client)
{
    const char *r;

    ck_assert_str_eq(run("CLIENT", "LIST", END), "-ERR CLIENT LIST is not available here\r\n");
    hooks_on();
    ck_assert_str_eq(run("CLIENT", "ID", END), ":1\r\n");
    ck_assert_str_eq(run("CLIENT", "GETNAME", END), "$-1\r\n");
    ck_assert_str_eq(run("CLIENT", "SETNAME", "worker-1", END), "+OK\r\n");
    ck_assert_str_eq(run("CLIENT", "GETNAME", END), "$8\r\nworker-1\r\n");
    ck_assert_str_eq(run("CLIENT", "SETNAME", "two words", END),
                     "-ERR Client names cannot contain spaces, newlines or special "
                     "characters.\r\n");
    ck_assert_str_eq(run("CLIENT", "SETINFO", "lib-name", "redis-py", END), "+OK\r\n");
    ck_assert_str_eq(run("CLIENT", "SETINFO", "LIB-VER", "4.3.4", END), "+OK\r\n");
    ck_assert_str_eq(run("CLIENT", "SETINFO", "lib-color", "x", END),
                     "-ERR Unrecognized option 'lib-color'\r\n");
    ck_assert_str_eq(run("CLIENT", "SETINFO", "lib-ver", "1 2", END),
                     "-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n");
    r = run("CLIENT", "INFO", END);
    ck_assert_ptr_nonnull(strstr(r, "\r\nid=1 addr=127.0.0.1:4000 laddr=127.0.0.1:6479 fd=9 "
                                    "name=worker-1 age=5 idle=1 flags=N db=0 "));
    ck_assert_ptr_nonnull(strstr(r, " qbuf=3 qbuf-free=13 "));
    ck_assert_ptr_nonnull(strstr(r, " events=r cmd=client|info user=default redir=-1 resp=2 "
                                    "lib-name=redis-py lib-ver=4.3.4\n\r\n"));
    ck_assert_ptr_null(strstr(r, "id=10 "));
    r = run("CLIENT", "LIST", END);
    ck_assert_ptr_nonnull(strstr(r, "id=1 addr="));
    ck_assert_ptr_nonnull(strstr(r, "\nid=10 addr=10.0.0.1:5000 "));
    ck_assert_ptr_nonnull(strstr(r, "\nid=12 addr=10.0.0.3:5002 laddr=127.0.0.1:7000 "));
    ck_assert_ptr_nonnull(strstr(r, " cmd=NULL "));
    r = run("CLIENT", "LIST", "ID", "12", "1", "99", END);
    ck_assert_ptr_nonnull(strstr(r, "id=1 "));
    ck_assert_ptr_nonnull(strstr(r, "id=12 "));
    ck_assert_ptr_null(strstr(r, "id=10 "));
    ck_assert_str_eq(run("CLIENT", "LIST", "TYPE", "replica", END), "$0\r\n\r\n");
    ck_assert(starts(run("CLIENT", "LIST", "TYPE", "NORMAL", END), "$"));
    ck_assert_str_eq(run("CLIENT", "LIST", "TYPE", "nope", END),
                     "-ERR Unknown client type 'nope'\r\n");
    ck_assert_str_eq(run("CLIENT", "LIST", "ID", "x", END), "-ERR Invalid client ID\r\n");
    ck_assert_str_eq(run("CLIENT", "LIST", "FOO", END), "-ERR syntax error\r\n");
    /* Errors as Redis 7 words them. */
    ck_assert_str_eq(run("CLIENT", "FLY", END),
                     "-ERR unknown subcommand 'FLY'. Try CLIENT HELP.\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", END),
                     "-ERR wrong number of arguments for 'client|kill' command\r\n");
    ck_assert_str_eq(run("CLIENT", "ID", "x", END),
                     "-ERR wrong number of arguments for 'client|id' command\r\n");
    ck_assert_str_eq(run("CLIENT", END), "-ERR wrong number of arguments for 'client' command\r\n");
    r = run("CLIENT", "HELP", END);
    ck_assert_ptr_nonnull(strstr(r, "+KILL ip:port | [ID client-id]"));
    ck_assert_ptr_nonnull(strstr(r, "+    The connection's id.\r\n"));

    /* KILL: the old form, then filters, which must all match. */
    ck_assert_str_eq(run("CLIENT", "KILL", "10.0.0.9:1", END), "-ERR No such client\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", "10.0.0.1:5000", END), "+OK\r\n");
    ck_assert_int_eq(fake_killed[0], 1);
    ck_assert_str_eq(run("CLIENT", "KILL", "ID", "11", "ADDR", "10.0.0.3:5002", END), ":0\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", "LADDR", "127.0.0.1:7000", END), ":1\r\n");
    ck_assert_int_eq(fake_killed[2], 1);
    ck_assert_str_eq(run("CLIENT", "KILL", "ID", "0", END),
                     "-ERR client-id should be greater than 0\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", "USER", "bob", END), "-ERR No such user 'bob'\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", "TYPE", "x", END), "-ERR Unknown client type 'x'\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", "SKIPME", "maybe", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", "ID", "11", "ADDR", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("CLIENT", "KILL", "TYPE", "pubsub", END), ":0\r\n");
    /* USER default: everyone but the caller (SKIPME yes by default). */
    ck_assert_str_eq(run("CLIENT", "KILL", "USER", "default", END), ":1\r\n");
    ck_assert_int_eq(fake_killed[1], 1);
    /* The caller itself: closed once the reply is out. */
    {
        struct akv_slice argv[4] = {{"CLIENT", 6}, {"KILL", 4}, {"ID", 2}, {"1", 1}};
        struct akv_slice argv2[6] = {{"CLIENT", 6}, {"KILL", 4},   {"ID", 2},
                                     {"1", 1},      {"SKIPME", 6}, {"no", 2}};
        ck_assert_str_eq(run_argv(4, argv), ":0\r\n");
        struct akv_cmd_ctx ctx = {
            .env = &env, .argc = 6, .argv = argv2, .out = &out, .sess = &sess};
        out.len = 0;
        ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
        ck_assert_int_eq(ctx.close_after_reply, 1);
        ck_assert(out.len == 4 && memcmp(out.p, ":1\r\n", 4) == 0);
    }

    /* NO-EVICT, UNBLOCK, PAUSE. */
    ck_assert_str_eq(run("CLIENT", "NO-EVICT", "on", END), "+OK\r\n");
    ck_assert_int_eq(sess.no_evict, 1);
    ck_assert_str_eq(run("CLIENT", "NO-EVICT", "maybe", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("CLIENT", "UNBLOCK", "10", END), ":0\r\n");
    ck_assert_str_eq(run("CLIENT", "UNBLOCK", "10", "later", END),
                     "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n");
    ck_assert_str_eq(run("CLIENT", "PAUSE", "100", "WRITE", END), "+OK\r\n");
    ck_assert_uint_gt(env.pause.end_ms, 0);
    ck_assert_int_eq(env.pause.all, 0);
    ck_assert_str_eq(run("CLIENT", "PAUSE", "50", END), "+OK\r\n");
    ck_assert_int_eq(env.pause.all, 1); /* widened, not shortened */
    ck_assert_str_eq(run("CLIENT", "UNPAUSE", END), "+OK\r\n");
    ck_assert_uint_eq(env.pause.end_ms, 0);
    ck_assert_int_eq(pause_changes, 3);
    ck_assert_str_eq(run("CLIENT", "PAUSE", "-1", END), "-ERR timeout is negative\r\n");
    ck_assert_str_eq(run("CLIENT", "PAUSE", "x", END),
                     "-ERR timeout is not an integer or out of range\r\n");
    ck_assert_str_eq(run("CLIENT", "PAUSE", "10", "READ", END),
                     "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n");
}
END_TEST

/* CLIENT REPLY OFF and SKIP drop replies, a job's included; ON brings them
 * back and is answered. */
START_TEST(test_client_reply)
{
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("CLIENT", "REPLY", "SKIP", END), "");
    ck_assert_str_eq(run("GET", "cat", END), "");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("CLIENT", "REPLY", "OFF", END), "");
    ck_assert_str_eq(run("GET", "cat", END), "");
    ck_assert_str_eq(run("nope", END), "");
    ck_assert_str_eq(run("QUERY", "dog", END), "");
    ck_assert_str_eq(run("CLIENT", "REPLY", "SKIP", END), ""); /* ignored while OFF */
    ck_assert_str_eq(run("CLIENT", "REPLY", "ON", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    ck_assert(starts(run("QUERY", "dog", END), "*"));
    /* ON right after SKIP is answered, as in Redis. */
    ck_assert_str_eq(run("CLIENT", "REPLY", "SKIP", END), "");
    ck_assert_str_eq(run("CLIENT", "REPLY", "ON", END), "+OK\r\n");
    ck_assert_str_eq(run("CLIENT", "REPLY", "MAYBE", END), "-ERR syntax error\r\n");
}
END_TEST

START_TEST(test_hello_resp3)
{
    const char *r;

    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "ball", "toy", END), "+OK\r\n");
    /* RESP2 first: the stand-ins. */
    r = run("HELLO", END);
    ck_assert(starts(r, "*14\r\n$6\r\nserver\r\n$6\r\nattnkv\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:1\r\n"));
    ck_assert_str_eq(run("HELLO", "4", END), "-NOPROTO unsupported protocol version\r\n");
    ck_assert_str_eq(run("HELLO", "three", END),
                     "-ERR Protocol version is not an integer or out of range\r\n");
    ck_assert_str_eq(run("HELLO", "3", "FLY", END), "-ERR Syntax error in HELLO option 'FLY'\r\n");
    ck_assert_str_eq(run("HELLO", "3", "SETNAME", "a b", END),
                     "-ERR Client names cannot contain spaces, newlines or special "
                     "characters.\r\n");
    ck_assert_int_eq(sess.resp, 2);
    r = run("HELLO", "3", "SETNAME", "r3", END);
    ck_assert(starts(r, "%7\r\n$6\r\nserver\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$5\r\nproto\r\n:3\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster"
                                    "\r\n$7\r\nmodules\r\n*0\r\n"));
    ck_assert_int_eq(sess.resp, 3);
    ck_assert_str_eq(sess.name, "r3");

    /* RESP3 types where Redis uses them. */
    r = run("QUERY", "dog", "COUNT", "2", "WITHSCORES", END);
    ck_assert(starts(r, "*2\r\n*2\r\n$"));
    ck_assert_ptr_nonnull(strstr(r, "\r\n,"));
    r = run("NEIGHBORS", "dog", "COUNT", "1", "WITHSCORES", END);
    ck_assert(starts(r, "*1\r\n*2\r\n$3\r\ndog\r\n,"));
    ck_assert_str_eq(run("QUERY", "dog", "COUNT", "1", END), "*1\r\n$6\r\nanimal\r\n");
    r = run("EXPLAIN", "dog", "COUNT", "1", END);
    ck_assert(starts(r, "*1\r\n%3\r\n$3\r\nkey\r\n$3\r\ncat\r\n$5\r\nvalue\r\n$6\r\nanimal\r\n"
                        "$6\r\nweight\r\n,"));
    ck_assert_str_eq(run("CONFIG", "GET", "port", END), "%1\r\n$4\r\nport\r\n$4\r\n6479\r\n");
    ck_assert(starts(run("INFO", "server", END), "="));
    ck_assert_ptr_nonnull(strstr(run("INFO", "server", END), "\r\ntxt:# Server\r\n"));
    ck_assert_str_eq(run("CLIENT", "SETNAME", "", END), "+OK\r\n");
    ck_assert_str_eq(run("CLIENT", "GETNAME", END), "_\r\n");
    ck_assert(starts(run("RANDOMKEY", END), "$")); /* a key, any */
    ck_assert_str_eq(run("OBJECT", "ENCODING", "nope", END), "_\r\n");
    ck_assert_str_eq(run("MEMORY", "USAGE", "nope", END), "_\r\n");
    r = run("COMMAND", "INFO", "get", "nope", END);
    ck_assert(starts(r, "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "*0\r\n_\r\n"));
    r = run("MEMORY", "STATS", END);
    ck_assert(starts(r, "%11\r\n$14\r\npeak.allocated\r\n:"));
    ck_assert_ptr_nonnull(strstr(r, "$18\r\ndataset.percentage\r\n,"));
    /* HELLO 2 goes back; RESET too. */
    ck_assert(starts(run("HELLO", "2", END), "*14\r\n"));
    ck_assert_int_eq(sess.resp, 2);
    run("HELLO", "3", "SETNAME", "again", END);
    run("CLIENT", "SETINFO", "LIB-NAME", "lib", END);
    run("CLIENT", "NO-EVICT", "ON", END);
    sess.authenticated = 1;
    ck_assert_str_eq(run("RESET", END), "+RESET\r\n");
    ck_assert_int_eq(sess.resp, 2);
    ck_assert_str_eq(sess.name, "");
    ck_assert_str_eq(sess.lib_name, "lib"); /* kept, as in Redis */
    ck_assert_int_eq(sess.no_evict, 0);
    /* No password: authenticated, as Redis's default user is. */
    ck_assert_int_eq(sess.authenticated, 1);
    ck_assert_uint_eq(sess.id, 1);

    /* HELLO AUTH, and HELLO before AUTH while a password is set: RESET
     * logs the connection out. */
    cfg.requirepass = strdup("s3cret");
    ck_assert_str_eq(run("RESET", END), "+RESET\r\n");
    ck_assert_int_eq(sess.authenticated, 0);
    ck_assert(starts(run("HELLO", "3", END), "-NOAUTH HELLO must be called with the client "
                                             "already authenticated"));
    ck_assert_int_eq(sess.resp, 2);
    ck_assert_str_eq(run("HELLO", "3", "AUTH", "default", "nope", END),
                     "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    ck_assert(starts(run("HELLO", "3", "AUTH", "default", "s3cret", END), "%7\r\n"));
    ck_assert_int_eq(sess.authenticated, 1);
    ck_assert_int_eq(sess.resp, 3);
    ck_assert_str_eq(run("RESET", END), "+RESET\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "-NOAUTH Authentication required.\r\n");
}
END_TEST

START_TEST(test_monitor)
{
    struct akv_slice argv[80];
    char big[5000];

    ck_assert_str_eq(run("MONITOR", END), "-ERR MONITOR is not available here\r\n");
    hooks_on();
    ck_assert_str_eq(run("MONITOR", END), "+OK\r\n");
    ck_assert_uint_eq(env.monitors, 1);
    ck_assert_int_eq(feeds, 0); /* MONITOR itself is not shown */
    run("PING", END);
    ck_assert_int_eq(feeds, 1);
    ck_assert_uint_eq(strlen(last_feed),
                      strlen("+1700000000.123456 [0 127.0.0.1:4000] \"PING\"\r\n"));
    ck_assert_int_eq(last_feed[0], '+');
    ck_assert_int_eq(last_feed[11], '.');
    ck_assert_ptr_nonnull(strstr(last_feed, " [0 127.0.0.1:4000] \"PING\"\r\n"));
    run("echo", "a\"b\\c\n\r\t\a\b\x01\x7f\xc3\xa9 d", END);
    ck_assert_ptr_nonnull(
        strstr(last_feed, "] \"echo\" \"a\\\"b\\\\c\\n\\r\\t\\a\\b\\x01\\x7f\\xc3\\xa9 d\"\r\n"));
    /* Secrets. */
    run("AUTH", "guess", END);
    ck_assert_ptr_nonnull(strstr(last_feed, "] \"AUTH\" \"(redacted)\"\r\n"));
    run("AUTH", "default", "guess", END);
    ck_assert_ptr_nonnull(strstr(last_feed, "] \"AUTH\" \"(redacted)\" \"(redacted)\"\r\n"));
    run("HELLO", "2", "SETNAME", "AUTH", "AUTH", "default", "pw", END);
    ck_assert_ptr_nonnull(strstr(last_feed, "] \"HELLO\" \"2\" \"SETNAME\" \"AUTH\" \"AUTH\" "
                                            "\"(redacted)\" \"(redacted)\"\r\n"));
    run("CONFIG", "SET", "count", "3", "requirepass", "pw", END);
    ck_assert_ptr_nonnull(strstr(last_feed, "\"CONFIG\" \"SET\" \"count\" \"3\" \"requirepass\" "
                                            "\"(redacted)\"\r\n"));
    ck_assert_ptr_null(strstr(last_feed, "pw"));
    /* Unknown commands and wrong arity are not run, so not shown. */
    feeds = 0;
    run("nope", END);
    run("GET", END);
    ck_assert_int_eq(feeds, 0);
    /* Long arguments and long argument lists are cut. */
    memset(big, 'x', sizeof(big));
    argv[0] = (struct akv_slice){"ECHO", 4};
    argv[1] = (struct akv_slice){big, sizeof(big)};
    run_argv(2, argv);
    ck_assert_ptr_nonnull(strstr(last_feed, "xxx... (904 more bytes)\"\r\n"));
    ck_assert_uint_lt(strlen(last_feed), 4200);
    argv[0] = (struct akv_slice){"EXISTS", 6};
    for (int i = 1; i < 80; i++)
        argv[i] = (struct akv_slice){"k", 1};
    run_argv(80, argv);
    ck_assert_ptr_nonnull(strstr(last_feed, "\"k\" \"... (17 more arguments)\"\r\n"));
    /* Slow log: the same redaction. */
    cfg.slowlog_slower_than = 0;
    run("HELLO", "3", "AUTH", "default", "hunter2", END);
    run("HELLO", "2", END);
    ck_assert_ptr_null(strstr(run("SLOWLOG", "GET", "-1", END), "hunter2"));
    /* RESET and the end of the session stop the feed. */
    ck_assert_str_eq(run("RESET", END), "+RESET\r\n");
    ck_assert_uint_eq(env.monitors, 0);
    run("MONITOR", END);
    akv_cmd_session_fini(&env, &sess);
    ck_assert_uint_eq(env.monitors, 0);
}
END_TEST

START_TEST(test_operations)
{
    const char *r;

    /* TIME, LASTSAVE, WAIT. */
    r = run("TIME", END);
    ck_assert(starts(r, "*2\r\n$10\r\n1"));
    env.start_time = 1700000000;
    ck_assert_str_eq(run("LASTSAVE", END), ":1700000000\r\n");
    ck_assert_str_eq(run("WAIT", "0", "0", END), ":0\r\n");
    ck_assert_str_eq(run("WAIT", "1", "100", END), ":0\r\n");
    ck_assert_str_eq(run("WAIT", "x", "0", END),
                     "-ERR value is not an integer or out of range\r\n");
    ck_assert_str_eq(run("WAIT", "0", "-1", END), "-ERR timeout is negative\r\n");
    ck_assert_str_eq(run("WAIT", "0", END),
                     "-ERR wrong number of arguments for 'wait' command\r\n");
    /* SAVE, BGSAVE without the AOF. */
    ck_assert(starts(run("SAVE", END), "-ERR SAVE would block the server"));
    ck_assert(starts(run("BGSAVE", END), "-ERR appendonly is off"));
    ck_assert_str_eq(run("BGSAVE", "NOW", END), "-ERR syntax error\r\n");
    /* SHUTDOWN. */
    ck_assert_str_eq(run("SHUTDOWN", END), "-ERR SHUTDOWN is not available here\r\n");
    hooks_on();
    ck_assert_str_eq(run("SHUTDOWN", "ABORT", END), "-ERR No shutdown in progress.\r\n");
    ck_assert_str_eq(run("SHUTDOWN", "SAVE", "NOSAVE", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SHUTDOWN", "ABORT", "NOW", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SHUTDOWN", "LATER", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SHUTDOWN", "SAVE", END),
                     "-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    ck_assert_int_eq(shutdowns, 0);
    {
        struct akv_slice argv[3] = {{"SHUTDOWN", 8}, {"NOSAVE", 6}, {"NOW", 3}};
        struct akv_cmd_ctx ctx = {.env = &env, .argc = 3, .argv = argv, .out = &out, .sess = &sess};
        out.len = 0;
        ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
        ck_assert_uint_eq(out.len, 0); /* no reply: the connection closes */
        ck_assert_int_eq(ctx.close_after_reply, 1);
        ck_assert_int_eq(shutdowns, 1);
        ck_assert_int_eq(shutdown_now, 1);
    }
    ck_assert_str_eq(run("SHUTDOWN", "SAVE", "FORCE", END), "");
    ck_assert_int_eq(shutdowns, 2);

    /* LATENCY. */
    ck_assert_str_eq(run("LATENCY", "LATEST", END), "*0\r\n");
    akv_latency_add(&env.latency, AKV_LATENCY_COMMAND, 1700000001, 12);
    akv_latency_add(&env.latency, AKV_LATENCY_COMMAND, 1700000002, 7);
    ck_assert_str_eq(run("LATENCY", "LATEST", END),
                     "*1\r\n*4\r\n$7\r\ncommand\r\n:1700000002\r\n:7\r\n:12\r\n");
    ck_assert_str_eq(run("LATENCY", "HISTORY", "command", END),
                     "*2\r\n*2\r\n:1700000001\r\n:12\r\n*2\r\n:1700000002\r\n:7\r\n");
    ck_assert_str_eq(run("LATENCY", "HISTORY", "nope", END), "*0\r\n");
    ck_assert_ptr_nonnull(strstr(run("LATENCY", "DOCTOR", END), "command: 2 latency spikes"));
    ck_assert_str_eq(run("LATENCY", "RESET", "fast-command", "nope", END), ":0\r\n");
    ck_assert_str_eq(run("LATENCY", "RESET", END), ":1\r\n");
    ck_assert_str_eq(run("LATENCY", "LATEST", END), "*0\r\n");
    ck_assert_str_eq(run("LATENCY", "HISTORY", END),
                     "-ERR wrong number of arguments for 'latency|history' command\r\n");
    ck_assert_str_eq(run("LATENCY", "GRAPH", "command", END),
                     "-ERR unknown subcommand 'GRAPH'. Try LATENCY HELP.\r\n");
    ck_assert(starts(run("LATENCY", "HELP", END), "*11\r\n+LATENCY <subcommand>"));
    /* The latency monitor from dispatch: every command at threshold 0 ms
     * is off; the event is chosen by the FAST flag. */
    cfg.latency_monitor_threshold = 0;
    run("PING", END);
    ck_assert_ptr_null(akv_latency_latest(&env.latency, AKV_LATENCY_FAST_COMMAND));
}
END_TEST

/* While the AOF loads only the commands flagged AKV_CMD_LOADING run; the
 * others, PING included, get -LOADING, and inside MULTI make EXEC fail. */
START_TEST(test_loading)
{
    static const char loading[] = "-LOADING attnkv is loading the dataset in memory\r\n";
    const char *r;

    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "dog", "animal", "PX", "10", END), "+OK\r\n");
    env.loading = 1;
    /* No expiry while the stores are not whole. */
    fake_now += 1000;
    ck_assert_int_eq(akv_cmd_expire_cycle(&env, 1000000), 0);
    ck_assert_uint_eq(akv_store_count(env.dbs[0]), 2);
    ck_assert_str_eq(run("GET", "cat", END), loading);
    ck_assert_str_eq(run("SET", "cat", "dog", END), loading);
    ck_assert_str_eq(run("PING", END), loading);
    ck_assert_str_eq(run("FLUSHALL", END), loading);
    ck_assert_str_eq(run("BGREWRITEAOF", END), loading);
    ck_assert_str_eq(run("NOSUCH", END),
                     "-ERR unknown command 'NOSUCH' (HELP lists the commands)\r\n");
    r = run("INFO", "persistence", END);
    ck_assert_ptr_nonnull(strstr(r, "\r\nloading:1\r\nasync_loading:0\r\n"));
    ck_assert_str_eq(run("SELECT", "1", END), "+OK\r\n");
    ck_assert_str_eq(run("SELECT", "0", END), "+OK\r\n");
    ck_assert_str_eq(run("MULTI", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat", END), loading);
    ck_assert_str_eq(run("EXEC", END),
                     "-EXECABORT Transaction discarded because of previous errors.\r\n");
    ck_assert_uint_eq(env.stats.cmd[akv_cmd_lookup("GET", 3) - akv_cmd_table()].rejected, 2);
    /* Each -LOADING reply is one error reply (and one of errorstat_LOADING). */
    {
        uint64_t before = env.stats.error_replies;
        ck_assert_str_eq(run("GET", "cat", END), loading);
        ck_assert_uint_eq(env.stats.error_replies, before + 1);
    }
    env.loading = 0;
    ck_assert_int_eq(akv_cmd_expire_cycle(&env, 1000000), 0);
    ck_assert_uint_eq(akv_store_count(env.dbs[0]), 1);
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("PING", END), "+PONG\r\n");
    ck_assert_ptr_nonnull(strstr(run("INFO", "persistence", END), "\r\nloading:0\r\n"));
    /* The flag is Redis's "loading", for COMMAND INFO. */
    for (const struct akv_cmd *c = akv_cmd_table(); c->name; c++) {
        int want = strcmp(c->name, "INFO") == 0 || strcmp(c->name, "CONFIG") == 0 ||
                   strcmp(c->name, "SHUTDOWN") == 0 || strcmp(c->name, "AUTH") == 0;
        if (want)
            ck_assert_msg(c->flags & AKV_CMD_LOADING, "%s", c->name);
        if (c->flags & AKV_CMD_WRITE)
            ck_assert_msg(!(c->flags & AKV_CMD_LOADING), "%s", c->name);
    }
    ck_assert(!(akv_cmd_lookup("PING", 4)->flags & AKV_CMD_LOADING));
}
END_TEST

START_TEST(test_inspect)
{
    const char *r;
    int found_cat = 0, found_ball = 0, usage;

    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "ball", "the the the the the the the the the the the the", END),
                     "+OK\r\n");
    ck_assert_str_eq(run("TYPE", "cat", END), "+string\r\n");
    ck_assert_str_eq(run("TYPE", "dog", END), "+none\r\n");
    ck_assert_str_eq(run("STRLEN", "cat", END), ":6\r\n");
    ck_assert_str_eq(run("STRLEN", "dog", END), ":0\r\n");
    ck_assert_str_eq(run("TOUCH", "cat", "dog", "cat", END), ":2\r\n");
    ck_assert_str_eq(run("OBJECT", "ENCODING", "cat", END), "$6\r\nembstr\r\n");
    ck_assert_str_eq(run("OBJECT", "ENCODING", "ball", END), "$3\r\nraw\r\n");
    ck_assert_str_eq(run("OBJECT", "ENCODING", "dog", END), "$-1\r\n");
    ck_assert_str_eq(run("OBJECT", "REFCOUNT", "cat", END), ":1\r\n");
    ck_assert(
        starts(run("OBJECT", "FREQ", "cat", END), "-ERR attnkv does not track access frequencies"));
    ck_assert(starts(run("OBJECT", "IDLETIME", "cat", END), "-ERR attnkv does not track"));
    ck_assert_str_eq(run("OBJECT", "IDLETIME", "dog", END), "$-1\r\n");
    ck_assert_str_eq(run("OBJECT", "ENCODING", END),
                     "-ERR wrong number of arguments for 'object|encoding' command\r\n");
    r = run("MEMORY", "USAGE", "cat", END);
    ck_assert_int_eq(r[0], ':');
    usage = atoi(r + 1);
    ck_assert_int_gt(usage, 100);
    ck_assert_int_lt(usage, 1000);
    ck_assert_int_gt(atoi(run("MEMORY", "USAGE", "ball", "SAMPLES", "0", END) + 1), usage);
    ck_assert_str_eq(run("MEMORY", "USAGE", "dog", END), "$-1\r\n");
    ck_assert_str_eq(run("MEMORY", "USAGE", "cat", "SAMPLES", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("MEMORY", "USAGE", "cat", "SAMPLES", "-1", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("MEMORY", "USAGE", "cat", "SAMPLES", "x", END),
                     "-ERR value is not an integer or out of range\r\n");
    ck_assert(starts(run("MEMORY", "STATS", END), "*22\r\n$14\r\npeak.allocated\r\n"));
    ck_assert_ptr_nonnull(strstr(run("MEMORY", "DOCTOR", END), "No memory problems found"));
    ck_assert_str_eq(run("MEMORY", "PURGE", END),
                     "-ERR unknown subcommand 'PURGE'. Try MEMORY HELP.\r\n");
    for (int i = 0; i < 200; i++) {
        r = run("RANDOMKEY", END);
        found_cat |= strcmp(r, "$3\r\ncat\r\n") == 0;
        found_ball |= strcmp(r, "$4\r\nball\r\n") == 0;
    }
    ck_assert(found_cat && found_ball);
    run("FLUSHALL", END);
    ck_assert_str_eq(run("RANDOMKEY", END), "$-1\r\n");
    /* INFO has what redis-cli --stat reads, used_memory first. */
    r = run("INFO", END);
    ck_assert_ptr_nonnull(strstr(r, "# Memory\r\nused_memory:"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nused_memory_peak:"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nblocked_clients:0\r\n"));
    ck_assert_ptr_nonnull(
        strstr(r, "\r\nloading:0\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nrdb_last_save_time:"));
}
END_TEST

/* The value of INFO field name in r (up to its line's end), or "". */
static const char *info_field(const char *r, const char *name)
{
    static char v[256];
    char key[128];
    const char *p;
    size_t n = 0;

    snprintf(key, sizeof(key), "\n%s:", name);
    p = strstr(r, key);
    v[0] = '\0';
    if (!p)
        return v;
    p += strlen(key);
    while (p[n] && p[n] != '\r' && n + 1 < sizeof(v))
        n++;
    memcpy(v, p, n);
    v[n] = '\0';
    return v;
}

static int is_hex40(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");
    return n == 40 && s[40] == '\0';
}

/* The fields Redis tools read: server identity, replication role, CPU,
 * errors by code, per-command latency percentiles, instantaneous rates;
 * the default sections as Redis 7's; CONFIG RESETSTAT clears them. */
START_TEST(test_info_redis_fields)
{
    const char *r = run("INFO", END);
    char run_id[41], replid[41];
    double p50, p99, p999;
    struct timespec pause = {0, 120 * 1000000};

    ck_assert_str_eq(info_field(r, "redis_version"), "7.0.0");
    ck_assert_str_eq(info_field(r, "redis_mode"), "standalone");
    ck_assert_str_eq(info_field(r, "role"), "master");
    ck_assert_str_eq(info_field(r, "maxmemory_policy"), "noeviction");
    ck_assert_str_eq(info_field(r, "maxmemory"), "0");
    ck_assert_str_eq(info_field(r, "maxmemory_human"), "0B");
    ck_assert_str_eq(info_field(r, "evicted_keys"), "0");
    ck_assert_str_eq(info_field(r, "cluster_enabled"), "0");
    ck_assert(strlen(info_field(r, "os")) > 0);
    ck_assert(strlen(info_field(r, "executable")) > 0);
    ck_assert(atoll(info_field(r, "total_system_memory")) > 0);
    ck_assert(strtod(info_field(r, "used_cpu_user"), NULL) >= 0);
    ck_assert_ptr_nonnull(strstr(r, "\r\nused_cpu_sys_main_thread:"));
    snprintf(run_id, sizeof(run_id), "%s", info_field(r, "run_id"));
    snprintf(replid, sizeof(replid), "%s", info_field(r, "master_replid"));
    ck_assert(is_hex40(run_id) && is_hex40(replid) && strcmp(run_id, replid) != 0);
    /* Redis 7's default set: Commandstats and Latencystats only on request. */
    for (const char *sec = "Server\0Clients\0Memory\0Persistence\0Stats\0Replication\0CPU\0"
                           "Errorstats\0Cluster\0Keyspace\0";
         *sec; sec += strlen(sec) + 1) {
        char title[64];
        snprintf(title, sizeof(title), "# %s\r\n", sec);
        ck_assert_msg(strstr(r, title), "no %s", title);
    }
    ck_assert_ptr_null(strstr(r, "# Latencystats"));
    ck_assert_ptr_null(strstr(r, "# Commandstats"));

    /* Errors by code: unknown command and arity are ERR, NOAUTH its own. */
    run("NOSUCHCOMMAND", END);
    run("GET", END);
    cfg.requirepass = strdup("pw");
    sess.authenticated = 0;
    ck_assert(starts(run("GET", "cat", END), "-NOAUTH"));
    sess.authenticated = 1;
    for (int i = 0; i < 50; i++)
        run("SET", "cat", "animal", END);
    r = run("INFO", "errorstats", "latencystats", "stats", END);
    ck_assert_ptr_nonnull(strstr(r, "# Errorstats\r\nerrorstat_ERR:count=2\r\n"
                                    "errorstat_NOAUTH:count=1\r\n"));
    ck_assert_str_eq(info_field(r, "total_error_replies"), "3");
    ck_assert_int_eq(sscanf(info_field(r, "latency_percentiles_usec_set"),
                            "p50=%lf,p99=%lf,p99.9=%lf", &p50, &p99, &p999),
                     3);
    ck_assert(p50 > 0 && p50 <= p99 && p99 <= p999);
    ck_assert_ptr_nonnull(strstr(r, "\r\nlatency_percentiles_usec_info:p50="));
    ck_assert_ptr_null(strstr(r, "latency_percentiles_usec_get:")); /* refused, not run */
    ck_assert(env.ncmd_hist >= 2);
    /* Past AKV_ERRSTAT_MAX codes, new ones count only in the total; a long
     * code is cut. */
    {
        char e[64];
        uint64_t total = env.stats.error_replies;
        for (int i = 0; i < AKV_ERRSTAT_MAX + 5; i++) {
            int n = snprintf(e, sizeof(e), "-CODE%d text\r\n", i);
            akv_cmd_count_error(&env, e, (size_t)n);
        }
        akv_cmd_count_error(&env, "-ERR again\r\n", 12);
        ck_assert_uint_eq(env.stats.nerrstat, AKV_ERRSTAT_MAX);
        ck_assert_uint_eq(env.stats.error_replies, total + AKV_ERRSTAT_MAX + 6);
        ck_assert_ptr_nonnull(strstr(run("INFO", "errorstats", END), "errorstat_ERR:count=3\r\n"));
        ck_assert_ptr_null(strstr(run("INFO", "errorstats", END), "CODE35"));
        env.stats.nerrstat = 0;
        akv_cmd_count_error(&env, "-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 x\r\n", 41);
        ck_assert_str_eq(env.stats.errstat[0].code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
    }
    /* Same ids for the process's life. */
    r = run("INFO", "server", "replication", END);
    ck_assert_str_eq(info_field(r, "run_id"), run_id);
    ck_assert_str_eq(info_field(r, "master_replid"), replid);

    /* instantaneous_ops_per_sec: the cron samples every 100 ms. */
    akv_cmd_cron(&env);
    for (int i = 0; i < 100; i++)
        run("PING", END);
    nanosleep(&pause, NULL);
    akv_cmd_cron(&env);
    ck_assert(atoi(info_field(run("INFO", "stats", END), "instantaneous_ops_per_sec")) > 0);

    /* client_recent_max_*: what the connection layer notes. */
    akv_cmd_note_client_buffers(&env, 16384, 20000);
    akv_cmd_note_client_buffers(&env, 100, 100);
    r = run("INFO", "clients", END);
    ck_assert_str_eq(info_field(r, "client_recent_max_input_buffer"), "16384");
    ck_assert_str_eq(info_field(r, "client_recent_max_output_buffer"), "20000");

    /* RESETSTAT drops every histogram; its own call is the first counted. */
    ck_assert_str_eq(run("CONFIG", "RESETSTAT", END), "+OK\r\n");
    ck_assert_uint_eq(env.ncmd_hist, 1);
    r = run("INFO", "everything", END);
    ck_assert_ptr_nonnull(strstr(r, "# Errorstats\r\n\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "# Latencystats\r\nlatency_percentiles_usec_config:p50="));
    ck_assert_ptr_null(strstr(r, "latency_percentiles_usec_set:"));
}
END_TEST

/* COMMAND: every command and subcommand is described, and every usage
 * string with arguments gives COMMAND DOCS arguments (the parser reads the
 * notation of all of them). */
START_TEST(test_command_docs)
{
    const struct akv_cmd *t = akv_cmd_table();
    const struct akv_subcmd *st = akv_cmd_subcommands();
    const char *r;
    size_t n = 0, nsub = 0;

    for (; t[n].name; n++) {
        int container = 0;
        for (size_t i = 0; st[i].parent; i++)
            container |= strcmp(st[i].parent, t[n].name) == 0;
        r = run("COMMAND", "DOCS", t[n].name, END);
        ck_assert_msg(starts(r, "*2\r\n"), "%s: %s", t[n].name, r);
        if (container)
            ck_assert_msg(strstr(r, "$11\r\nsubcommands\r\n"), "%s: %s", t[n].name, r);
        else if (strchr(t[n].usage, ' '))
            ck_assert_msg(strstr(r, "$9\r\narguments\r\n"), "%s has no arguments: %s", t[n].name,
                          r);
        else
            ck_assert_msg(!strstr(r, "arguments"), "%s: %s", t[n].name, r);
    }
    for (; st[nsub].parent; nsub++) {
        char full[64], lb[64];
        size_t i;
        ck_assert(akv_cmd_lookup(st[nsub].parent, strlen(st[nsub].parent)) != NULL);
        ck_assert(strncmp(st[nsub].usage, st[nsub].parent, strlen(st[nsub].parent)) == 0);
        snprintf(full, sizeof(full), "%s|%s", st[nsub].parent, st[nsub].name);
        for (i = 0; full[i]; i++)
            lb[i] = (char)tolower((unsigned char)full[i]);
        lb[i] = '\0';
        r = run("COMMAND", "DOCS", full, END);
        ck_assert_msg(starts(r, "*2\r\n"), "%s: %s", full, r);
        ck_assert_msg(strstr(r, lb) != NULL, "%s: %s", full, r);
        if (strchr(st[nsub].usage + strlen(st[nsub].parent) + 1, ' '))
            ck_assert_msg(strstr(r, "$9\r\narguments\r\n"), "%s has no arguments: %s", full, r);
        r = run("COMMAND", "INFO", full, END);
        ck_assert_msg(starts(r, "*1\r\n*10\r\n"), "%s: %s", full, r);
    }
    /* Shapes, as redis-cli reads them. */
    r = run("COMMAND", "DOCS", "del", END);
    ck_assert_str_eq(r,
                     "*2\r\n$3\r\ndel\r\n*6\r\n$7\r\nsummary\r\n$35\r\nremove keys; reply how "
                     "many existed\r\n$5\r\ngroup\r\n$7\r\ngeneric\r\n$9\r\narguments\r\n*1\r\n"
                     "*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$5\r\nflags\r\n"
                     "*1\r\n+multiple\r\n");
    r = run("COMMAND", "DOCS", "query", END);
    ck_assert_ptr_nonnull(strstr(r, "$4\r\nname\r\n$1\r\nk\r\n$4\r\ntype\r\n$7\r\ninteger\r\n$5\r\n"
                                    "token\r\n$5\r\nCOUNT\r\n$5\r\nflags\r\n*1\r\n+optional\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$4\r\nname\r\n$10\r\ndot_cosine\r\n$4\r\ntype\r\n$5\r\noneof"
                                    "\r\n$5\r\ntoken\r\n$9\r\nATTENTION\r\n"));
    r = run("COMMAND", "DOCS", END);
    ck_assert(starts(r, "*") && atoi(r + 1) == (int)(2 * n));
    ck_assert_str_eq(run("COMMAND", "DOCS", "nope", END), "*0\r\n");
    r = run("COMMAND", "INFO", "client", END);
    ck_assert_ptr_nonnull(strstr(r, "$11\r\nclient|kill\r\n:-3\r\n*1\r\n+admin\r\n"));
    r = run("COMMAND", "LIST", END);
    ck_assert(atoi(r + 1) == (int)(n + nsub));
    ck_assert_ptr_nonnull(strstr(r, "$11\r\nclient|list\r\n"));
    ck_assert(atoi(run("COMMAND", "INFO", END) + 1) == (int)n);
}
END_TEST

static char numbuf[32];

/* A number as text, for arguments (valid until the next call). */
static const char *num(int64_t v)
{
    snprintf(numbuf, sizeof(numbuf), "%lld", (long long)v);
    return numbuf;
}

static char intbuf[32];

/* The RESP integer reply of v. */
static const char *ri(int64_t v)
{
    snprintf(intbuf, sizeof(intbuf), ":%lld\r\n", (long long)v);
    return intbuf;
}

START_TEST(test_set_options)
{
    /* EX, PX, EXAT, PXAT; TTL rounds to the nearest second, as Redis. */
    ck_assert_str_eq(run("SET", "cat", "animal", "EX", "10", END), "+OK\r\n");
    ck_assert_str_eq(run("PTTL", "cat", END), ":10000\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":10\r\n");
    ck_assert_str_eq(run("EXPIRETIME", "cat", END), ri((int64_t)(T0 / 1000 + 10)));
    ck_assert_str_eq(run("PEXPIRETIME", "cat", END), ri((int64_t)T0 + 10000));
    fake_now += 4501;
    ck_assert_str_eq(run("PTTL", "cat", END), ":5499\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":5\r\n");
    fake_now += 1;
    ck_assert_str_eq(run("TTL", "cat", END), ":5\r\n"); /* 5498: still 5 */
    fake_now = T0;
    ck_assert_str_eq(run("SET", "cat", "animal", "PX", "1500", END), "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":2\r\n"); /* 1.5 s rounds up */
    ck_assert_str_eq(run("SET", "cat", "animal", "px", "1499", END), "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":1\r\n");
    ck_assert_str_eq(run("SET", "cat", "animal", "PX", "1", END), "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":0\r\n");
    ck_assert_str_eq(run("SET", "cat", "animal", "EXAT", num((int64_t)(T0 / 1000 + 20)), END),
                     "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":20\r\n");
    ck_assert_str_eq(run("SET", "cat", "animal", "PXAT", num((int64_t)T0 + 2500), END), "+OK\r\n");
    ck_assert_str_eq(run("PTTL", "cat", END), ":2500\r\n");
    /* A plain SET clears the time; KEEPTTL keeps it. */
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":-1\r\n");
    ck_assert_str_eq(run("SET", "cat", "animal", "EX", "100", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "cat", "dog", "KEEPTTL", END), "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":100\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$3\r\ndog\r\n");
    ck_assert_str_eq(run("SET", "ball", "toy", "KEEPTTL", END), "+OK\r\n"); /* absent: none */
    ck_assert_str_eq(run("TTL", "ball", END), ":-1\r\n");
    ck_assert_str_eq(run("TTL", "nope", END), ":-2\r\n");
    ck_assert_str_eq(run("PTTL", "nope", END), ":-2\r\n");
    ck_assert_str_eq(run("EXPIRETIME", "ball", END), ":-1\r\n");
    ck_assert_str_eq(run("PEXPIRETIME", "nope", END), ":-2\r\n");

    /* NX, XX, GET. */
    ck_assert_str_eq(run("SET", "cat", "toy", "NX", END), "$-1\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$3\r\ndog\r\n");
    ck_assert_str_eq(run("SET", "dog", "animal", "NX", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "one", "number", "XX", END), "$-1\r\n");
    ck_assert_str_eq(run("EXISTS", "one", END), ":0\r\n");
    ck_assert_str_eq(run("SET", "dog", "toy", "XX", END), "+OK\r\n");
    ck_assert_str_eq(run("SET", "dog", "ball", "GET", END), "$3\r\ntoy\r\n");
    ck_assert_str_eq(run("SET", "two", "number", "GET", END), "$-1\r\n");
    ck_assert_str_eq(run("GET", "two", END), "$6\r\nnumber\r\n");
    ck_assert_str_eq(run("SET", "dog", "cat", "NX", "GET", END), "$4\r\nball\r\n");
    ck_assert_str_eq(run("GET", "dog", END), "$4\r\nball\r\n");
    ck_assert_str_eq(run("SET", "one", "cat", "XX", "GET", END), "$-1\r\n");
    ck_assert_str_eq(run("EXISTS", "one", END), ":0\r\n");
    ck_assert_str_eq(run("SET", "dog", "cat", "XX", "GET", "EX", "5", END), "$4\r\nball\r\n");
    ck_assert_str_eq(run("TTL", "dog", END), ":5\r\n");
    sess.resp = 3;
    ck_assert_str_eq(run("SET", "one", "cat", "XX", END), "_\r\n");
    sess.resp = 2;

    /* Errors: nothing changes. */
    ck_assert_str_eq(run("SET", "cat", "toy", "NX", "XX", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "XX", "NX", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "EX", "10", "PX", "10", END),
                     "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "EX", "10", "KEEPTTL", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "KEEPTTL", "PXAT", "10", END),
                     "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "EX", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "PERSIST", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "FOO", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "EX", "ten", END),
                     "-ERR value is not an integer or out of range\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "EX", "1.5", END),
                     "-ERR value is not an integer or out of range\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "EX", "0", END),
                     "-ERR invalid expire time in 'set' command\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "PX", "-1", END),
                     "-ERR invalid expire time in 'set' command\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", "EX", "9223372036854775807", END),
                     "-ERR invalid expire time in 'set' command\r\n");
    ck_assert_str_eq(run("set", "cat", "toy", "EXAT", "0", END),
                     "-ERR invalid expire time in 'set' command\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$3\r\ndog\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":100\r\n");

    /* GETEX. */
    ck_assert_str_eq(run("GETEX", "cat", END), "$3\r\ndog\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":100\r\n");
    ck_assert_str_eq(run("GETEX", "cat", "PX", "2500", END), "$3\r\ndog\r\n");
    ck_assert_str_eq(run("PTTL", "cat", END), ":2500\r\n");
    ck_assert_str_eq(run("GETEX", "cat", "PERSIST", END), "$3\r\ndog\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":-1\r\n");
    ck_assert_str_eq(run("GETEX", "cat", "EXAT", num((int64_t)(T0 / 1000 + 7)), END),
                     "$3\r\ndog\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":7\r\n");
    ck_assert_str_eq(run("GETEX", "cat", "NX", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("GETEX", "cat", "PERSIST", "EX", "1", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("GETEX", "cat", "EX", "0", END),
                     "-ERR invalid expire time in 'getex' command\r\n");
    ck_assert_str_eq(run("GETEX", "nope", "EX", "5", END), "$-1\r\n");
    ck_assert_str_eq(run("EXISTS", "nope", END), ":0\r\n");
    /* A time already past: the value, and the key is gone. */
    ck_assert_str_eq(run("GETEX", "cat", "PXAT", num((int64_t)T0 - 1), END), "$3\r\ndog\r\n");
    ck_assert_str_eq(run("EXISTS", "cat", END), ":0\r\n");

    /* SETNX, GETSET (clears the time), GETDEL. */
    ck_assert_str_eq(run("SETNX", "cat", "animal", END), ":1\r\n");
    ck_assert_str_eq(run("SETNX", "cat", "toy", END), ":0\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "50", END), ":1\r\n");
    ck_assert_str_eq(run("GETSET", "cat", "toy", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":-1\r\n");
    ck_assert_str_eq(run("GETDEL", "cat", END), "$3\r\ntoy\r\n");
    ck_assert_str_eq(run("GETDEL", "cat", END), "$-1\r\n");
    ck_assert_str_eq(run("GETSET", "cat", "toy", END), "$-1\r\n");
}
END_TEST

/* EXPIRE and its kin with NX, XX, GT and LT, as Redis answers them (no
 * time counts as an infinite one for GT and LT). */
START_TEST(test_expire_options)
{
    ck_assert_str_eq(run("EXPIRE", "cat", "100", END), ":0\r\n"); /* absent */
    run("SET", "cat", "animal", END);
    /* No time yet. */
    ck_assert_str_eq(run("EXPIRE", "cat", "100", "XX", END), ":0\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "100", "GT", END), ":0\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":-1\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "100", "LT", END), ":1\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":100\r\n");
    ck_assert_str_eq(run("PERSIST", "cat", END), ":1\r\n");
    ck_assert_str_eq(run("PERSIST", "cat", END), ":0\r\n");
    ck_assert_str_eq(run("PERSIST", "nope", END), ":0\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "100", "NX", END), ":1\r\n");
    /* A time of 100 s. */
    ck_assert_str_eq(run("EXPIRE", "cat", "200", "NX", END), ":0\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "200", "XX", END), ":1\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":200\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "200", "GT", END), ":0\r\n"); /* equal */
    ck_assert_str_eq(run("EXPIRE", "cat", "100", "GT", END), ":0\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "300", "gt", END), ":1\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "300", "LT", END), ":0\r\n"); /* equal */
    ck_assert_str_eq(run("EXPIRE", "cat", "400", "LT", END), ":0\r\n");
    ck_assert_str_eq(run("PEXPIRE", "cat", "250000", "LT", END), ":1\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":250\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "260", "XX", "GT", END), ":1\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "250", "XX", "LT", END), ":1\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "250", END), ":1\r\n"); /* the same time: 1 */
    ck_assert_str_eq(run("EXPIREAT", "cat", num((int64_t)(T0 / 1000 + 30)), END), ":1\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":30\r\n");
    ck_assert_str_eq(run("PEXPIREAT", "cat", num((int64_t)T0 + 12345), END), ":1\r\n");
    ck_assert_str_eq(run("PTTL", "cat", END), ":12345\r\n");
    ck_assert_str_eq(run("PEXPIRETIME", "cat", END), ri((int64_t)T0 + 12345));
    ck_assert_str_eq(run("EXPIRETIME", "cat", END), ri((int64_t)(T0 + 12345) / 1000));

    /* Options that do not go together; unknown ones; bad numbers. */
    ck_assert_str_eq(run("EXPIRE", "cat", "10", "NX", "XX", END),
                     "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "10", "NX", "GT", END),
                     "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "10", "GT", "LT", END),
                     "-ERR GT and LT options at the same time are not compatible\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "10", "FOO", END), "-ERR Unsupported option FOO\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "ten", END),
                     "-ERR value is not an integer or out of range\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "9223372036854775807", END),
                     "-ERR invalid expire time in 'expire' command\r\n");
    ck_assert_str_eq(run("PEXPIREAT", "cat", "-9223372036854775807", END),
                     "-ERR invalid expire time in 'pexpireat' command\r\n");
    ck_assert_str_eq(run("PTTL", "cat", END), ":12345\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", END),
                     "-ERR wrong number of arguments for 'expire' command\r\n");

    /* A time not in the future deletes the key (and says 1), unless an
     * option refuses it first. */
    ck_assert_str_eq(run("EXPIRE", "cat", "-5", "GT", END), ":0\r\n");
    ck_assert_str_eq(run("EXISTS", "cat", END), ":1\r\n");
    ck_assert_str_eq(run("EXPIRE", "cat", "-5", "LT", END), ":1\r\n");
    ck_assert_str_eq(run("EXISTS", "cat", END), ":0\r\n");
    run("SET", "cat", "animal", END);
    ck_assert_str_eq(run("EXPIRE", "cat", "0", END), ":1\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$-1\r\n");
    run("SET", "cat", "animal", END);
    ck_assert_str_eq(run("PEXPIREAT", "cat", num((int64_t)T0), END), ":1\r\n");
    ck_assert_str_eq(run("EXISTS", "cat", END), ":0\r\n");
    run("SET", "cat", "animal", END);
    ck_assert_str_eq(run("EXPIREAT", "cat", "1", END), ":1\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":0\r\n");
    ck_assert_uint_eq(env.stats.expired_keys, 0); /* deleted, not expired */
}
END_TEST

/* Lazy expiry: from its time on a key is gone for every command, and the
 * first lookup deletes it (counted in expired_keys); until then DBSIZE
 * counts it, as Redis does. */
START_TEST(test_lazy_expiry)
{
    const char *r;

    run("SET", "cat", "animal", "PX", "100", END);
    run("SET", "dog", "animal", "PX", "100", END);
    run("SET", "ball", "toy", "PX", "200", END);
    run("SET", "one", "number", END);
    fake_now = T0 + 99;
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    fake_now = T0 + 100;
    ck_assert_str_eq(run("DBSIZE", END), ":4\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$-1\r\n");
    ck_assert_uint_eq(env.stats.expired_keys, 1);
    ck_assert_str_eq(run("DBSIZE", END), ":3\r\n");
    ck_assert_str_eq(run("TTL", "dog", END), ":-2\r\n");
    ck_assert_uint_eq(env.stats.expired_keys, 2);
    ck_assert_str_eq(run("DBSIZE", END), ":2\r\n");
    /* Invisible to KEYS, SCAN, EXISTS, MGET, QUERY even before deletion. */
    fake_now = T0 + 200;
    ck_assert_str_eq(run("KEYS", "*", END), "*1\r\n$3\r\none\r\n");
    ck_assert_str_eq(run("SCAN", "0", "COUNT", "100", END), "*2\r\n$1\r\n0\r\n*1\r\n$3\r\none\r\n");
    r = run("EXPLAIN", "ball", "COUNT", "9", END);
    ck_assert_ptr_null(strstr(r, "toy"));
    ck_assert_str_eq(run("MGET", "ball", "one", END), "*2\r\n$-1\r\n$6\r\nnumber\r\n");
    ck_assert_uint_eq(env.stats.expired_keys, 3);
    ck_assert_str_eq(run("EXPIRE", "ball", "10", END), ":0\r\n");
    ck_assert_str_eq(run("PERSIST", "ball", END), ":0\r\n");
    /* A write over an expired key makes a new one. */
    run("SET", "cat", "toy", "PX", "10", END);
    fake_now += 10;
    ck_assert_str_eq(run("SET", "cat", "ball", "NX", END), "+OK\r\n");
    ck_assert_uint_eq(env.stats.expired_keys, 4);
    ck_assert_str_eq(run("TTL", "cat", END), ":-1\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":2\r\n");
    r = run("INFO", "stats", END);
    ck_assert_ptr_nonnull(strstr(r, "\r\nexpired_keys:4\r\n"));
}
END_TEST

/* The active cycle deletes what is due in every database, a bounded number
 * at a time, and says whether some is left. */
START_TEST(test_expire_cycle)
{
    static const char *const w[] = {"cat",    "dog", "animal", "toy", "ball",
                                    "number", "one", "two",    "the"};
    char k[32];
    size_t n = 0;
    int rc, calls = 0;

    for (size_t i = 0; i < 9; i++)
        for (size_t j = 0; j < 9; j++) {
            snprintf(k, sizeof(k), "%s %s", w[i], w[j]);
            sess.db = (int)((i + j) % 2) * 2; /* databases 0 and 2 */
            run("SET", k, "toy", "PX", num((int64_t)(10 + (i * 9 + j) % 3)), END);
            n++;
        }
    sess.db = 1;
    run("SET", "cat", "dog", "PX", "1000", END);
    run("SET", "dog", "cat", END);
    sess.db = 0;
    ck_assert_int_eq(akv_cmd_expire_cycle(&env, 1000000), 0); /* nothing due */
    ck_assert_uint_eq(env.stats.expired_keys, 0);
    fake_now = T0 + 11;
    /* Budget 0: 16 at a time. */
    rc = akv_cmd_expire_cycle(&env, 0);
    ck_assert_int_eq(rc, 1);
    ck_assert_uint_eq(env.stats.expired_keys, 16);
    fake_now = T0 + 12;
    while ((rc = akv_cmd_expire_cycle(&env, 0)) == 1)
        ck_assert_int_lt(++calls, 100);
    ck_assert_uint_eq(env.stats.expired_keys, n);
    for (uint32_t i = 0; i < NDBS; i++)
        ck_assert_uint_eq(akv_store_expires(dbs[i]), i == 1);
    ck_assert_uint_eq(akv_store_count(dbs[0]) + akv_store_count(dbs[2]), 0);
    ck_assert_uint_eq(akv_store_count(dbs[1]), 2);
    fake_now = T0 + 1000;
    ck_assert_int_eq(akv_cmd_expire_cycle(&env, 1000), 0);
    ck_assert_uint_eq(akv_store_count(dbs[1]), 1);
    ck_assert_uint_eq(env.stats.expired_keys, n + 1);
}
END_TEST

START_TEST(test_databases)
{
    ck_assert_str_eq(run("SELECT", "4", END), "-ERR DB index is out of range\r\n");
    ck_assert_str_eq(run("SELECT", "-1", END), "-ERR DB index is out of range\r\n");
    ck_assert_str_eq(run("SELECT", "x", END), "-ERR value is not an integer or out of range\r\n");
    ck_assert_str_eq(run("SELECT", "3", END), "+OK\r\n");
    ck_assert_int_eq(sess.db, 3);
    ck_assert_str_eq(run("SET", "cat", "animal", "EX", "100", END), "+OK\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":1\r\n");
    ck_assert_str_eq(run("SELECT", "0", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$-1\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":0\r\n");
    ck_assert_str_eq(run2("SET", "dog", "toy", END), "+OK\r\n"); /* the other's db 0 */

    /* SWAPDB: every connection sees the other data under the number. */
    ck_assert_str_eq(run("SWAPDB", "0", "3", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":100\r\n");
    ck_assert_str_eq(run2("GET", "dog", END), "$-1\r\n");
    ck_assert_ptr_eq(env.dbs[3], store);
    ck_assert_str_eq(run("SWAPDB", "1", "1", END), "+OK\r\n");
    ck_assert_str_eq(run("SWAPDB", "0", "4", END), "-ERR DB index is out of range\r\n");
    ck_assert_str_eq(run("SWAPDB", "a", "0", END), "-ERR invalid first DB index\r\n");

    /* MOVE: keeps the time; 0 when absent or present in the target. */
    ck_assert_str_eq(run("MOVE", "cat", "1", END), ":1\r\n");
    ck_assert_str_eq(run("EXISTS", "cat", END), ":0\r\n");
    ck_assert_str_eq(run("MOVE", "cat", "1", END), ":0\r\n");
    ck_assert_str_eq(run("MOVE", "cat", "0", END),
                     "-ERR source and destination objects are the same\r\n");
    ck_assert_str_eq(run("MOVE", "cat", "9", END), "-ERR DB index is out of range\r\n");
    ck_assert_str_eq(run("SELECT", "1", END), "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":100\r\n");
    ck_assert_str_eq(run("SET", "ball", "toy", END), "+OK\r\n");
    run("SELECT", "0", END);
    ck_assert_str_eq(run("SET", "ball", "cat", END), "+OK\r\n");
    ck_assert_str_eq(run("MOVE", "ball", "1", END), ":0\r\n");
    ck_assert_str_eq(run("GET", "ball", END), "$3\r\ncat\r\n");

    /* COPY: value and time; REPLACE; DB. */
    ck_assert_str_eq(run("EXPIRE", "ball", "50", END), ":1\r\n");
    ck_assert_str_eq(run("COPY", "ball", "toy", END), ":1\r\n");
    ck_assert_str_eq(run("TTL", "toy", END), ":50\r\n");
    ck_assert_str_eq(run("GET", "toy", END), "$3\r\ncat\r\n");
    ck_assert_str_eq(run("COPY", "ball", "toy", END), ":0\r\n");
    ck_assert_str_eq(run("SET", "dog", "number", END), "+OK\r\n");
    ck_assert_str_eq(run("COPY", "dog", "toy", "REPLACE", END), ":1\r\n");
    ck_assert_str_eq(run("GET", "toy", END), "$6\r\nnumber\r\n");
    ck_assert_str_eq(run("TTL", "toy", END), ":-1\r\n");
    ck_assert_str_eq(run("COPY", "ball", "ball", "DB", "2", END), ":1\r\n");
    ck_assert_str_eq(run("COPY", "ball", "ball", "DB", "2", END), ":0\r\n");
    ck_assert_str_eq(run("COPY", "ball", "ball", END),
                     "-ERR source and destination objects are the same\r\n");
    ck_assert_str_eq(run("COPY", "ball", "ball", "DB", "0", END),
                     "-ERR source and destination objects are the same\r\n");
    ck_assert_str_eq(run("COPY", "nope", "x", END), ":0\r\n");
    ck_assert_str_eq(run("COPY", "ball", "x", "DB", "7", END), "-ERR DB index is out of range\r\n");
    ck_assert_str_eq(run("COPY", "ball", "x", "FOO", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("COPY", "ball", "x", "DB", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("COPY", "ball", "kat", END),
                     "-ERR unknown word 'kat' (did you mean 'cat'?)\r\n");
    run("SELECT", "2", END);
    ck_assert_str_eq(run("TTL", "ball", END), ":50\r\n");
    run("SELECT", "0", END);

    /* RENAME: keeps the time, replaces the target; RENAMENX. */
    ck_assert_str_eq(run("RENAME", "nope", "x", END), "-ERR no such key\r\n");
    ck_assert_str_eq(run("RENAMENX", "nope", "x", END), "-ERR no such key\r\n");
    ck_assert_str_eq(run("RENAME", "ball", "one", END), "+OK\r\n");
    ck_assert_str_eq(run("EXISTS", "ball", END), ":0\r\n");
    ck_assert_str_eq(run("TTL", "one", END), ":50\r\n");
    ck_assert_str_eq(run("RENAME", "one", "toy", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "toy", END), "$3\r\ncat\r\n");
    ck_assert_str_eq(run("RENAMENX", "toy", "dog", END), ":0\r\n");
    ck_assert_str_eq(run("RENAMENX", "toy", "two", END), ":1\r\n");
    ck_assert_str_eq(run("TTL", "two", END), ":50\r\n");
    /* The same name: nothing to do; RENAMENX says 0, as in Redis, since
     * the new name exists. */
    ck_assert_str_eq(run("RENAME", "two", "two", END), "+OK\r\n");
    ck_assert_str_eq(run("RENAMENX", "two", "two", END), ":0\r\n");
    ck_assert_str_eq(run("TTL", "two", END), ":50\r\n");
    ck_assert_str_eq(run("RENAME", "two", "kat", END),
                     "-ERR unknown word 'kat' (did you mean 'cat'?)\r\n");
    ck_assert_str_eq(run("EXISTS", "two", END), ":1\r\n");

    /* FLUSHDB: this database; FLUSHALL: all. */
    ck_assert_str_eq(run("FLUSHDB", "SYNC", END), "+OK\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":0\r\n");
    ck_assert_uint_gt(akv_store_count(env.dbs[1]), 0);
    ck_assert_str_eq(run("FLUSHDB", "NOW", END), "-ERR syntax error\r\n");
    ck_assert_str_eq(run("FLUSHALL", "ASYNC", END), "+OK\r\n");
    for (int i = 0; i < NDBS; i++)
        ck_assert_uint_eq(akv_store_count(env.dbs[i]), 0);
}
END_TEST

START_TEST(test_mset_mget)
{
    ck_assert_str_eq(run("MSET", "cat", "animal", "dog", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("MGET", "cat", "nope", "dog", END),
                     "*3\r\n$6\r\nanimal\r\n$-1\r\n$6\r\nanimal\r\n");
    /* All or nothing: a bad pair changes nothing. */
    ck_assert_str_eq(run("MSET", "ball", "toy", "cat", "kat", END),
                     "-ERR unknown word 'kat' (did you mean 'cat'?)\r\n");
    ck_assert_str_eq(run("EXISTS", "ball", END), ":0\r\n");
    ck_assert_str_eq(run("MSET", "ball", "toy", "cat", END),
                     "-ERR wrong number of arguments for 'mset' command\r\n");
    ck_assert_str_eq(run("MSETNX", "ball", "toy", "cat", "toy", END), ":0\r\n");
    ck_assert_str_eq(run("EXISTS", "ball", END), ":0\r\n");
    ck_assert_str_eq(run("MSETNX", "ball", "toy", "one", "number", END), ":1\r\n");
    ck_assert_str_eq(run("DBSIZE", END), ":4\r\n");
    /* MSET clears times. */
    run("EXPIRE", "cat", "10", END);
    ck_assert_str_eq(run("MSET", "cat", "toy", END), "+OK\r\n");
    ck_assert_str_eq(run("TTL", "cat", END), ":-1\r\n");
}
END_TEST

/* MULTI, EXEC, DISCARD; queueing errors abort; run-time errors do not. */
START_TEST(test_multi_exec)
{
    const char *r;
    unsigned long long old_bytes;
    int old_args;

    ck_assert_str_eq(run("EXEC", END), "-ERR EXEC without MULTI\r\n");
    ck_assert_str_eq(run("DISCARD", END), "-ERR DISCARD without MULTI\r\n");
    ck_assert_str_eq(run("MULTI", END), "+OK\r\n");
    ck_assert_str_eq(run("MULTI", END), "-ERR MULTI calls can not be nested\r\n");
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("SET", "dog", "kat", END), "+QUEUED\r\n"); /* fails when run */
    ck_assert_str_eq(run("INCR", "x", END),
                     "-ERR unknown command 'INCR' (HELP lists the commands)\r\n");
    ck_assert_str_eq(run2("GET", "cat", END), "$-1\r\n"); /* nothing ran yet */
    ck_assert_str_eq(run("EXEC", END),
                     "-EXECABORT Transaction discarded because of previous errors.\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$-1\r\n");
    ck_assert_str_eq(run("EXEC", END), "-ERR EXEC without MULTI\r\n");

    /* Wrong arity aborts too. */
    run("MULTI", END);
    ck_assert_str_eq(run("GET", END), "-ERR wrong number of arguments for 'get' command\r\n");
    ck_assert_str_eq(run("EXEC", END),
                     "-EXECABORT Transaction discarded because of previous errors.\r\n");

    run("MULTI", END);
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("SET", "dog", "kat", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("SELECT", "2", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("SET", "dog", "toy", "EX", "5", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("EXEC", END),
                     "*5\r\n+OK\r\n$6\r\nanimal\r\n-ERR unknown word 'kat' (did you mean "
                     "'cat'?)\r\n+OK\r\n+OK\r\n");
    ck_assert_int_eq(sess.db, 2);
    ck_assert_str_eq(run("TTL", "dog", END), ":5\r\n");
    run("SELECT", "0", END);

    /* DISCARD drops the queue. */
    run("MULTI", END);
    run("DEL", "cat", END);
    ck_assert_str_eq(run("DISCARD", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("DISCARD", END), "-ERR DISCARD without MULTI\r\n");

    /* An empty transaction; one of reads only. */
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    run("MULTI", END);
    run("PING", END);
    run("EXISTS", "cat", "dog", END);
    ck_assert_str_eq(run("EXEC", END), "*2\r\n+PONG\r\n:1\r\n");
    ck_assert_uint_eq(env.in_exec, 0);

    /* Limits: arguments and bytes queued. */
    old_args = cfg.proto_max_multibulk_len;
    old_bytes = cfg.client_query_buffer_limit;
    cfg.proto_max_multibulk_len = 6;
    run("MULTI", END);
    ck_assert_str_eq(run("SET", "a", "b", END), "+QUEUED\r\n");
    ck_assert_str_eq(run("SET", "c", "d", END), "+QUEUED\r\n");
    r = run("GET", "a", END);
    ck_assert_msg(starts_with(r, "-ERR transaction too large") && strstr(r, " 6 arguments"), "%s",
                  r);
    ck_assert_str_eq(run("EXEC", END),
                     "-EXECABORT Transaction discarded because of previous errors.\r\n");
    cfg.proto_max_multibulk_len = old_args;
    cfg.client_query_buffer_limit = 20;
    run("MULTI", END);
    ck_assert_str_eq(run("SET", "cat", "animal", END), "+QUEUED\r\n"); /* 12 bytes */
    ck_assert(starts_with(run("SET", "cat", "animal", END), "-ERR transaction too large"));
    ck_assert_str_eq(run("EXEC", END),
                     "-EXECABORT Transaction discarded because of previous errors.\r\n");
    cfg.client_query_buffer_limit = old_bytes;

    /* A connection that closes in MULTI leaves nothing behind. */
    run2("WATCH", "cat", END);
    run2("MULTI", END);
    run2("SET", "cat", "toy", END);
    akv_cmd_session_fini(&env, &sess2);
    akv_cmd_session_init(&sess2, 2, "");
    ck_assert_str_eq(run("GET", "cat", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("SET", "cat", "toy", END), "+OK\r\n");
}
END_TEST

/* WATCH: EXEC answers a null array once a watched key has changed, by any
 * connection's write, a flush, a SWAPDB, or its time coming. */
START_TEST(test_watch)
{
    /* Another connection's write. */
    run("SET", "cat", "animal", END);
    ck_assert_str_eq(run("WATCH", "cat", "dog", END), "+OK\r\n");
    ck_assert_str_eq(run2("SET", "cat", "toy", END), "+OK\r\n");
    run("MULTI", END);
    run("SET", "cat", "ball", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    ck_assert_str_eq(run("GET", "cat", END), "$3\r\ntoy\r\n");
    /* EXEC unwatched everything: the next one runs. */
    run2("SET", "cat", "animal", END);
    run("MULTI", END);
    run("SET", "cat", "ball", END);
    ck_assert_str_eq(run("EXEC", END), "*1\r\n+OK\r\n");
    /* RESP3's null. */
    sess.resp = 3;
    run("WATCH", "dog", END);
    run2("SET", "dog", "toy", END); /* was absent */
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "_\r\n");
    sess.resp = 2;
    /* A DEL, a DEL of an absent key (no change), the connection's own write. */
    run("WATCH", "dog", END);
    run2("DEL", "one", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    run("WATCH", "dog", END);
    run2("DEL", "dog", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    run("WATCH", "cat", END);
    run("SET", "cat", "toy", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    /* UNWATCH and DISCARD forget. */
    run("WATCH", "cat", END);
    ck_assert_str_eq(run("UNWATCH", END), "+OK\r\n");
    run2("SET", "cat", "animal", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    run("WATCH", "cat", END);
    run("MULTI", END);
    ck_assert_str_eq(run("WATCH", "dog", END), "-ERR WATCH inside MULTI is not allowed\r\n");
    run("DISCARD", END);
    run2("SET", "cat", "toy", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    /* The watch is on the database selected: a write of the same name
     * elsewhere does not count; WATCH after SELECT does. */
    run("WATCH", "cat", END);
    run2("SELECT", "1", END);
    run2("SET", "cat", "toy", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    run("SELECT", "1", END);
    run("WATCH", "cat", END);
    run2("SET", "cat", "ball", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    run("SELECT", "0", END);
    run2("SELECT", "0", END);

    /* FLUSHALL, FLUSHDB of the database, SWAPDB of it; not FLUSHDB of
     * another. */
    run("WATCH", "cat", END);
    run2("FLUSHALL", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    run("WATCH", "cat", END);
    run2("SELECT", "3", END);
    run2("FLUSHDB", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    run2("SELECT", "0", END);
    /* As in Redis 7, a flush or swap changes a watched key that exists on
     * one side or the other; not one absent from both. */
    run("WATCH", "cat", END);
    run2("FLUSHDB", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    run("SET", "cat", "toy", END);
    run("WATCH", "cat", END);
    run2("FLUSHDB", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    run("SET", "cat", "toy", END);
    run("WATCH", "cat", END);
    run2("SWAPDB", "2", "0", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    run("WATCH", "cat", END);
    run2("SWAPDB", "2", "3", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");

    /* Expiry: a watched key whose time comes before EXEC, deleted or not. */
    run("SET", "cat", "animal", "PX", "100", END);
    run("WATCH", "cat", END);
    fake_now += 100;
    run("MULTI", END);
    run("PING", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    run("SET", "cat", "animal", "PX", "100", END);
    run("WATCH", "cat", END);
    fake_now += 100;
    ck_assert_int_eq(akv_cmd_expire_cycle(&env, 1000), 0);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    run("SET", "cat", "animal", "PX", "100", END);
    run("WATCH", "cat", END);
    fake_now += 99;
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    /* A key already expired when watched: deleting it later (lazily by
     * another connection, or by the cycle) is no change, as in Redis. */
    run("SET", "cat", "animal", "PX", "10", END);
    fake_now += 10;
    ck_assert_str_eq(run("WATCH", "cat", END), "+OK\r\n");
    ck_assert_str_eq(run2("GET", "cat", END), "$-1\r\n");
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    run("SET", "cat", "animal", "PX", "10", END);
    fake_now += 10;
    run("WATCH", "cat", END);
    ck_assert_int_eq(akv_cmd_expire_cycle(&env, 1000), 0);
    ck_assert_str_eq(run("EXISTS", "cat", END), ":0\r\n");
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
    /* ... but setting it again is. */
    run("SET", "cat", "animal", "PX", "10", END);
    fake_now += 10;
    run("WATCH", "cat", END);
    run2("SET", "cat", "toy", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    /* A time set by EXPIRE is a change. */
    run("WATCH", "cat", END);
    run2("EXPIRE", "cat", "100", END);
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*-1\r\n");
    /* An EXEC that fails keeps nothing queued. */
    run("MULTI", END);
    ck_assert_str_eq(run("EXEC", END), "*0\r\n");
}
END_TEST

/* EXEC with QUERY, EXPLAIN, NEIGHBORS and KEYS inside: one job, each
 * answering from the writes queued before it, replies in order. */
START_TEST(test_exec_jobs)
{
    static const char *const steps[][6] = {
        {"SET", "cat", "animal"},
        {"EXPLAIN", "dog", "COUNT", "9"},
        {"SET", "dog", "toy"},
        {"EXPLAIN", "dog", "COUNT", "9"},
        {"QUERY", "dog", "COUNT", "2", "WITHSCORES"},
        {"DEL", "cat"},
        {"KEYS", "*"},
        {"EXPLAIN", "dog", "COUNT", "9"},
        {"NEIGHBORS", "cat", "COUNT", "2"},
        {"SET", "ball", "toy", "PX", "10"},
        {"EXPLAIN", "ball"},
    };
    enum { N = sizeof(steps) / sizeof(steps[0]) };
    struct akv_buf want;
    char hdr[16];
    const char *r;

    /* Each alone, in order. */
    akv_buf_init(&want);
    snprintf(hdr, sizeof(hdr), "*%d\r\n", (int)N);
    ck_assert_int_eq(akv_buf_append(&want, hdr, strlen(hdr)), 0);
    for (size_t i = 0; i < N; i++) {
        r = run(steps[i][0], steps[i][1], steps[i][2], steps[i][3], steps[i][4], steps[i][5]);
        ck_assert_int_eq(akv_buf_append(&want, r, strlen(r)), 0);
    }
    ck_assert_int_eq(akv_buf_append(&want, "", 1), 0);
    ck_assert_str_eq(run("FLUSHALL", END), "+OK\r\n");
    /* As one transaction. */
    run("MULTI", END);
    for (size_t i = 0; i < N; i++)
        ck_assert_str_eq(
            run(steps[i][0], steps[i][1], steps[i][2], steps[i][3], steps[i][4], steps[i][5]),
            "+QUEUED\r\n");
    r = run("EXEC", END);
    ck_assert_uint_eq(strlen(r), want.len - 1);
    ck_assert_str_eq(r, want.p);
    ck_assert_uint_eq(env.stats.jobs_running, 0);
    /* The EXPLAINs differ: each saw its own writes. */
    ck_assert_ptr_nonnull(strstr(r, "$3\r\ncat\r\n$6\r\nanimal\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "$3\r\ndog\r\n$3\r\ntoy\r\n"));

    /* A client gone before EXEC's job finished: the held jobs release
     * their snapshots all the same. */
    run("MULTI", END);
    run("EXPLAIN", "dog", END);
    run("SET", "one", "number", END);
    run("QUERY", "one", END);
    run("KEYS", "*", END);
    ck_assert_str_eq(run_gone("EXEC", END), "");
    ck_assert_uint_eq(env.stats.jobs_running, 0);
    ck_assert_str_eq(run("GET", "one", END), "$6\r\nnumber\r\n");
    akv_buf_fini(&want);
}
END_TEST

/* The file's records as text, one a line, those of a MULTI indented
 * under a "MULTI" line; expiry times relative to T0. */
struct dump {
    struct akv_buf b;
    size_t batch;
};

static int dump_rec(void *arg, const struct akv_aof_record *r)
{
    struct dump *d = arg;
    char line[256];
    int n;

    if (r->batch != d->batch && r->batch != SIZE_MAX)
        ck_assert_int_eq(akv_buf_append(&d->b, "MULTI\n", 6), 0);
    d->batch = r->batch;
    n = snprintf(line, sizeof(line), "%s%s %u", r->batch != SIZE_MAX ? "  " : "",
                 akv_aof_type_name(r->type), (unsigned)r->db);
    if (r->type == AKV_AOF_PUT)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " %.*s=%.*s", (int)r->klen, r->key,
                      (int)r->vlen, r->val);
    if (r->type == AKV_AOF_PUT && r->expire)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " @+%lld", (long long)(r->expire - T0));
    if (r->type == AKV_AOF_DELETE)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " %.*s", (int)r->klen, r->key);
    if (r->type == AKV_AOF_SWAPDB)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " %u", (unsigned)r->db2);
    n += snprintf(line + n, sizeof(line) - (size_t)n, "\n");
    ck_assert_int_eq(akv_buf_append(&d->b, line, (size_t)n), 0);
    return 0;
}

static char aof_dir[64];

static void keep_cb(uv_timer_t *t)
{
    (void)t;
}

/* Opens an AOF in a fresh directory for env (databases dbs). */
static void aof_open(uv_loop_t *loop, struct akv_store **d)
{
    static int pct = 0;
    static unsigned long long min_size = 0;
    struct akv_persist_opts o = {aof_dir, "appendonly.aof", AKV_FSYNC_NO, &pct, &min_size, 0, NULL};
    char err[512] = "";
    int rc = akv_persist_open(&env.persist, loop, d, NDBS, &o, err, sizeof(err));

    ck_assert_msg(rc == 0, "akv_persist_open: %d %s", rc, err);
}

static void aof_close(uv_loop_t *loop)
{
    akv_persist_close(env.persist);
    uv_run(loop, UV_RUN_DEFAULT);
    akv_persist_destroy(env.persist);
    env.persist = NULL;
}

/* What the AOF holds, as dump_rec writes it (NUL-terminated, to free). */
static char *aof_dump(void)
{
    char path[128];
    struct dump d = {.batch = SIZE_MAX};
    struct akv_aof_result res;
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/appendonly.aof", aof_dir);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n);
    ck_assert(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    akv_buf_init(&d.b);
    ck_assert_int_eq(akv_aof_parse(buf, (size_t)n, dump_rec, &d, &res), 0);
    ck_assert_int_eq(res.status, AKV_AOF_OK);
    free(buf);
    ck_assert_int_eq(akv_buf_append(&d.b, "", 1), 0);
    return d.b.p;
}

/* Every key of a in b with the same value and time, and as many keys. */
static int same_entry(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    struct akv_store *const *ab = arg;
    struct akv_store_found fa, fb;

    (void)v;
    (void)vl;
    ck_assert_int_eq(akv_store_find(ab[0], k, kl, &fa), AKV_STORE_LIVE);
    ck_assert_msg(akv_store_find(ab[1], k, kl, &fb) == AKV_STORE_LIVE && fa.vlen == fb.vlen &&
                      memcmp(fa.val, fb.val, fa.vlen) == 0 && fa.expire == fb.expire,
                  "'%.*s' differs after replay", (int)kl, k);
    return 0;
}

static void assert_replays_to(struct akv_store *const *live)
{
    struct akv_store *fresh[NDBS];
    uv_loop_t loop;

    ck_assert_int_eq(uv_loop_init(&loop), 0);
    for (int i = 0; i < NDBS; i++) {
        ck_assert_int_eq(akv_store_create(&fresh[i], voc), 0);
        akv_store_set_clock(fresh[i], &env.now_ms);
    }
    aof_open(&loop, fresh);
    for (int i = 0; i < NDBS; i++) {
        struct akv_store *ab[2] = {live[i], fresh[i]};
        uint64_t cur = 0;
        ck_assert_msg(akv_store_count(fresh[i]) == akv_store_count(live[i]),
                      "db %d: %zu keys after replay, not %zu", i, akv_store_count(fresh[i]),
                      akv_store_count(live[i]));
        do {
            cur = akv_store_iter(live[i], cur, 64, same_entry, ab);
        } while (cur != 0);
    }
    aof_close(&loop);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    for (int i = 0; i < NDBS; i++)
        akv_store_destroy(fresh[i]);
}

/* What the commands log: one MULTI record for a command that changes
 * several keys (MSET, RENAME, MOVE) and for a transaction, MSETs inside
 * it included; a lone record as itself; nothing for a transaction that
 * changes nothing; lazy expiry as a DELETE. The file replays to the same
 * databases. */
START_TEST(test_aof_records)
{
    uv_loop_t loop;
    char *got;
    char want[2048];
    const char *r;

    snprintf(aof_dir, sizeof(aof_dir), "/tmp/test-cmd-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(aof_dir));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    aof_open(&loop, dbs);

    ck_assert_str_eq(run("MSET", "cat", "animal", "dog", "toy", END), "+OK\r\n");
    ck_assert_str_eq(run("MSET", "ball", "toy", END), "+OK\r\n");
    ck_assert_str_eq(run("RENAME", "ball", "one", END), "+OK\r\n");
    ck_assert_str_eq(run("EXPIRE", "one", "100", END), ":1\r\n");
    ck_assert_str_eq(run("RENAME", "one", "two", END), "+OK\r\n");
    ck_assert_str_eq(run("RENAME", "two", "two", END), "+OK\r\n"); /* nothing */
    ck_assert_str_eq(run("MOVE", "two", "2", END), ":1\r\n");
    ck_assert_str_eq(run("COPY", "cat", "cat", "DB", "1", END), ":1\r\n");
    ck_assert_str_eq(run("SWAPDB", "1", "3", END), "+OK\r\n");
    ck_assert_str_eq(run("FLUSHDB", END), "+OK\r\n");
    run("SELECT", "2", END);
    ck_assert_str_eq(run("PERSIST", "two", END), ":1\r\n");
    run("SELECT", "0", END);
    run("MULTI", END);
    run("SET", "cat", "animal", END);
    run("MSET", "dog", "toy", "ball", "toy", END);
    run("DEL", "nope", END);
    run("GET", "cat", END);
    run("SET", "one", "kat", END); /* fails: no record */
    ck_assert(starts_with(run("EXEC", END), "*5\r\n+OK\r\n+OK\r\n:0\r\n$6\r\nanimal\r\n-ERR "));
    run("MULTI", END);
    run("GET", "cat", END);
    run("DEL", "nope", END);
    ck_assert_str_eq(run("EXEC", END), "*2\r\n$6\r\nanimal\r\n:0\r\n");
    run("MULTI", END);
    run("SET", "one", "number", END);
    ck_assert_str_eq(run("EXEC", END), "*1\r\n+OK\r\n");
    run("SET", "two", "number", "PX", "10", END);
    fake_now += 10;
    ck_assert_str_eq(run("GET", "two", END), "$-1\r\n");
    ck_assert_str_eq(run("DEL", "one", "dog", "nope", END), ":2\r\n");
    ck_assert_str_eq(run("DEL", "nope", END), ":0\r\n");
    run("SELECT", "3", END);
    ck_assert_str_eq(run("GETDEL", "cat", END), "$6\r\nanimal\r\n");
    run("SELECT", "0", END);

    aof_close(&loop);
    got = aof_dump();
    snprintf(want, sizeof(want),
             "MULTI\n"
             "  PUT 0 cat=animal\n"
             "  PUT 0 dog=toy\n"
             "PUT 0 ball=toy\n"
             "MULTI\n"
             "  PUT 0 one=toy\n"
             "  DELETE 0 ball\n"
             "PUT 0 one=toy @+100000\n"
             "MULTI\n"
             "  PUT 0 two=toy @+100000\n"
             "  DELETE 0 one\n"
             "MULTI\n"
             "  PUT 2 two=toy @+100000\n"
             "  DELETE 0 two\n"
             "PUT 1 cat=animal\n"
             "SWAPDB 1 3\n"
             "FLUSHDB 0\n"
             "PUT 2 two=toy\n"
             "MULTI\n"
             "  PUT 0 cat=animal\n"
             "  PUT 0 dog=toy\n"
             "  PUT 0 ball=toy\n"
             "PUT 0 one=number\n"
             "PUT 0 two=number @+10\n"
             "DELETE 0 two\n"
             "MULTI\n" /* one DEL of several keys: one record */
             "  DELETE 0 one\n"
             "  DELETE 0 dog\n"
             "DELETE 3 cat\n");
    ck_assert_str_eq(got, want);
    free(got);
    assert_replays_to(dbs);

    /* BGREWRITEAOF inside a transaction starts after it: the new file
     * replays to the same databases (a SWAPDB in the transaction is not
     * applied twice). A new file, empty databases. */
    {
        char path[128];
        snprintf(path, sizeof(path), "%s/appendonly.aof", aof_dir);
        ck_assert_int_eq(unlink(path), 0);
    }
    run("FLUSHALL", END);
    aof_open(&loop, dbs);
    run("SET", "ball", "toy", "EX", "1000", END);
    run("MULTI", END);
    run("SET", "cat", "toy", END);
    run("SWAPDB", "0", "2", END);
    run("BGREWRITEAOF", END);
    run("SET", "dog", "animal", END);
    r = run("EXEC", END);
    ck_assert_str_eq(r, "*4\r\n+OK\r\n+OK\r\n+Background append only file rewriting "
                        "scheduled\r\n+OK\r\n");
    {
        /* persist's handles do not keep the loop alive: a timer does. */
        struct akv_persist_info info;
        uv_timer_t keep;
        ck_assert_int_eq(uv_timer_init(&loop, &keep), 0);
        ck_assert_int_eq(uv_timer_start(&keep, keep_cb, 3600000, 0), 0);
        for (int i = 0; i < 4000; i++) {
            akv_persist_info(env.persist, &info);
            if (info.rewrites == 1)
                break;
            uv_run(&loop, UV_RUN_NOWAIT);
            usleep(500);
        }
        ck_assert_uint_eq(info.rewrites, 1);
        uv_close((uv_handle_t *)&keep, NULL);
    }
    aof_close(&loop);
    assert_replays_to(dbs);
    got = aof_dump();
    ck_assert_ptr_null(strstr(got, "MULTI")); /* the rewrite ran after the transaction */
    free(got);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    {
        char path[128];
        snprintf(path, sizeof(path), "%s/appendonly.aof", aof_dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/temp-rewrite-appendonly.aof", aof_dir);
        unlink(path);
        ck_assert_int_eq(rmdir(aof_dir), 0);
    }
}
END_TEST

/* The fuzz target (fuzz/fuzz-cmd.c, linked in, with state of its own)
 * checks its invariants and aborts, failing the test, if one breaks. */
static void replay_one(const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    LLVMFuzzerTestOneInput(data, len);
}

START_TEST(test_fuzz_replay)
{
    if (!getenv("AKV_SOURCE_ROOT")) {
        fprintf(stderr, "AKV_SOURCE_ROOT unset: fuzz corpus replay skipped\n");
        return;
    }
    ck_assert_int_gt(tu_replay_dir("fuzz/corpus/cmd", replay_one, NULL), 0);
    tu_replay_dir("fuzz/regression/cmd", replay_one, NULL);
}
END_TEST

/* VOCAB, EMBED, SIMILARITY, DOESNTMATCH, the text options and the
 * skipped-words element, with the exact bytes a client reads. */
START_TEST(test_text_commands)
{
    const char *r;

    ck_assert_str_eq(run("VOCAB", "EXISTS", "cat", "CAT", "cat,", "zzz", END),
                     "*4\r\n:1\r\n:1\r\n:0\r\n:0\r\n");
    r = run("VOCAB", "INFO", END);
    ck_assert(strncmp(r, "*16\r\n$4\r\nsize\r\n:9\r\n$3\r\ndim\r\n:4\r\n", 32) == 0);
    ck_assert(strstr(r, "$4\r\nfile\r\n$8\r\ntest.akv\r\n") != NULL);
    ck_assert(strncmp(run("VOCAB", "NOPE", END), "-ERR unknown subcommand 'NOPE'", 30) == 0);
    ck_assert_str_eq(run("DOESNTMATCH", "cat", "dog", "ball", END), "$4\r\nball\r\n");
    ck_assert_str_eq(run("DOESNTMATCH", "cat", END), "$3\r\ncat\r\n");
    ck_assert_str_eq(run("DOESNTMATCH", "cat", "zzz", END), "-ERR unknown word 'zzz'\r\n");
    ck_assert_str_eq(run("SIMILARITY", "cat", "CAT!", END), "$1\r\n1\r\n");
    ck_assert_str_eq(run("SIMILARITY", "cat", "toy", END), "$1\r\n0\r\n");
    ck_assert_str_eq(run("SIMILARITY", "cat", "zzz", "UNKNOWN", "skip", END),
                     "-ERR no known word in the text (unknown word 'zzz')\r\n");
    ck_assert_str_eq(run("SIMILARITY", "cat", "toy", "RAW", END),
                     "-ERR unknown option 'RAW' for SIMILARITY\r\n");
    ck_assert_str_eq(run("EMBED", "cat,", END),
                     "*4\r\n$1\r\n1\r\n$1\r\n0\r\n$1\r\n0\r\n$1\r\n0\r\n");
    ck_assert_str_eq(run("EMBED", "cat zzz", "UNKNOWN", "skip", END),
                     "*5\r\n$1\r\n1\r\n$1\r\n0\r\n$1\r\n0\r\n$1\r\n0\r\n"
                     "*2\r\n$7\r\nskipped\r\n*1\r\n$3\r\nzzz\r\n");
    r = run("EMBED", "cat", "RAW", END);
    ck_assert(memcmp(r, "$16\r\n\0\0\x80\x3f\0\0\0\0", 13) == 0);
    ck_assert_str_eq(run("EMBED", "cat", "UNKNOWN", END), "-ERR UNKNOWN needs a value\r\n");
    ck_assert_str_eq(run("NEIGHBORS", "cat", "COUNT", "1", "WEIGHTING", "x", END),
                     "-ERR unknown WEIGHTING 'x' (use mean or sif)\r\n");
    ck_assert_str_eq(run("NEIGHBORS", "zzz, cat", "COUNT", "1", "UNKNOWN", "skip", END),
                     "*2\r\n$3\r\ncat\r\n*2\r\n$7\r\nskipped\r\n*1\r\n$3\r\nzzz\r\n");
    ck_assert_str_eq(run("NEIGHBORS", "cat,", "COUNT", "1", "UNKNOWN", "skip", END),
                     "*1\r\n$3\r\ncat\r\n");
    /* The directive: skip by default, a request still says error. */
    cfg.embed.unknown = AKV_UNKNOWN_SKIP;
    ck_assert_str_eq(run("NEIGHBORS", "cat zzz", "COUNT", "1", "UNKNOWN", "error", END),
                     "-ERR unknown word 'zzz'\r\n");
    ck_assert_str_eq(run("DOESNTMATCH", "cat", "zzz", "dog", "ball", END), "$4\r\nball\r\n");
    /* ... but never for what SET stores. */
    ck_assert_str_eq(run("SET", "cat zzz", "animal", END), "-ERR unknown word 'zzz'\r\n");
    cfg.embed.unknown = AKV_UNKNOWN_ERROR;
    ck_assert_str_eq(run("SET", "cat,", "animal!", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "cat,", END), "$7\r\nanimal!\r\n");
    ck_assert(strstr(run("EXPLAIN", "cat zzz", "UNKNOWN", "skip", END),
                     "*2\r\n$7\r\nskipped\r\n*1\r\n$3\r\nzzz\r\n") != NULL);
}
END_TEST

START_TEST(test_key_normalize)
{
    size_t n;
    char *k;
    const char *messy = "  \xc3\x89"
                        "COLE \t Big\r\nDOG ";

    k = akv_cmd_key_normal(messy, strlen(messy), &n);
    ck_assert_ptr_nonnull(k);
    ck_assert_uint_eq(n, 14);
    ck_assert(memcmp(k, "\xc3\xa9\x63ole big dog", 14) == 0);
    free(k);
    k = akv_cmd_key_normal("A\xff B", 4, &n); /* not UTF-8: ASCII only */
    ck_assert(n == 4 && memcmp(k, "a\xff b", 4) == 0);
    free(k);
    k = akv_cmd_key_normal(" \t ", 3, &n);
    ck_assert_uint_eq(n, 0);
    free(k);

    ck_assert_str_eq(run("SET", "The  CAT ", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "the cat", END), "$-1\r\n"); /* off: byte-exact */
    cfg.key_normalize = 1;
    ck_assert_str_eq(run("SET", "The  DOG ", "animal", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "the dog", END), "$6\r\nanimal\r\n");
    ck_assert_str_eq(run("EXISTS", "THE DOG", "the\tdog", "The  CAT ", END), ":2\r\n");
    ck_assert_str_eq(run("MSET", "ONE", "number", "Two", "number", END), "+OK\r\n");
    ck_assert_str_eq(run("MGET", "one", "TWO", END), "*2\r\n$6\r\nnumber\r\n$6\r\nnumber\r\n");
    ck_assert_str_eq(run("RENAME", "ONE", "BALL", END), "+OK\r\n");
    ck_assert_str_eq(run("GET", "ball", END), "$6\r\nnumber\r\n");
    ck_assert(strncmp(run("MEMORY", "USAGE", "BALL", END), ":", 1) == 0);
    ck_assert_str_eq(run("DEL", "Ball", "two", "THE DOG", END), ":3\r\n");
    /* A key argument over max-key-len is left as it is. */
    cfg.max_key_len = 4;
    ck_assert_str_eq(run("SET", "The  CAT ", "x", END),
                     run("SET", "The  CAT ", "x", END)); /* the same refusal twice */
    cfg.max_key_len = AKV_TEXT_MAX;
    cfg.key_normalize = 0;
}
END_TEST

static Suite *cmd_suite(void)
{
    Suite *s = suite_create("cmd");
    TCase *tc = tcase_create("cmd");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_basics);
    tcase_add_test(tc, test_info_redis_fields);
    tcase_add_test(tc, test_quit);
    tcase_add_test(tc, test_kv);
    tcase_add_test(tc, test_query_job);
    tcase_add_test(tc, test_word_arithmetic);
    tcase_add_test(tc, test_query_batch);
    tcase_add_test(tc, test_query_errors);
    tcase_add_test(tc, test_text_commands);
    tcase_add_test(tc, test_key_normalize);
    tcase_add_test(tc, test_info_config);
    tcase_add_test(tc, test_auth_without_password);
    tcase_add_test(tc, test_auth_with_password);
    tcase_add_test(tc, test_set_limits);
    tcase_add_test(tc, test_config_set);
    tcase_add_test(tc, test_slowlog_and_commandstats);
    tcase_add_test(tc, test_hostile_inputs);
    tcase_add_test(tc, test_client);
    tcase_add_test(tc, test_client_reply);
    tcase_add_test(tc, test_hello_resp3);
    tcase_add_test(tc, test_monitor);
    tcase_add_test(tc, test_operations);
    tcase_add_test(tc, test_inspect);
    tcase_add_test(tc, test_loading);
    tcase_add_test(tc, test_command_docs);
    tcase_add_test(tc, test_set_options);
    tcase_add_test(tc, test_expire_options);
    tcase_add_test(tc, test_lazy_expiry);
    tcase_add_test(tc, test_expire_cycle);
    tcase_add_test(tc, test_databases);
    tcase_add_test(tc, test_mset_mget);
    tcase_add_test(tc, test_multi_exec);
    tcase_add_test(tc, test_watch);
    tcase_add_test(tc, test_exec_jobs);
    tcase_add_test(tc, test_aof_records);
    tcase_add_test(tc, test_fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(cmd_suite());
}
