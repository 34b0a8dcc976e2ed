/*
 * test-cmd.c - the command table and handlers (src/server/cmd.c), driven directly
 * with a buffer and a tiny in-memory vocabulary: no sockets, no libuv. Jobs
 * are run synchronously here (work or batch, then finish) the way the pool
 * and the connection run them. The daemon as a whole is tested over TCP by
 * the suites of tests/integration/..
 */
#include <check.h>

#include "runsuite.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attnkv/store.h"
#include "attnkv/vectab.h"
#include "attnkv/vocab.h"
#include "server/cmd.h"
#include "server/config.h"
#include "util/glob.h"
#include "proto/reply.h"

/* The end of a run() argument list; a plain NULL may be a mere int 0. */
#define END ((const char *)NULL)

static struct akv_config cfg;
static struct akv_vocab *voc;
#define NDBS 4
static struct akv_store *dbs[NDBS], *store; /* store: database 0 as setup made it */
static struct akv_cmd_env env;
static struct akv_buf out;
static struct akv_session sess; /* the connection's state, as conn.c keeps it */

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
}

static void teardown(void)
{
    akv_buf_fini(&out);
    akv_cmd_session_fini(&env, &sess);
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
    struct akv_cmd_ctx ctx = {.env = &env, .argc = argc, .argv = argv, .out = &out, .sess = &sess};
    ck_assert_int_eq(akv_cmd_dispatch(&ctx), 0);
    if (ctx.job) {
        ck_assert_uint_eq(out.len, 0); /* the reply comes from finish */
        work_alone(ctx.job);
        ctx.job->finish(ctx.job, client_gone ? NULL : &out);
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
    ck_assert_uint_eq(env.stats.query_count, 3);
    ck_assert_uint_eq(env.stats.jobs_running, 0);
    /* A client that went away: the job still releases its snapshot (the
     * store would refuse to be destroyed otherwise). */
    ck_assert_str_eq(run_gone("QUERY", "dog", END), "");
    ck_assert_str_eq(run_gone("EXPLAIN", "dog", END), "");
    ck_assert_uint_eq(env.stats.jobs_running, 0);
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
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batched_jobs:9\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batch_max:9\r\n"));
    /* A job run alone is a batch of one. */
    run("NEIGHBORS", "cat", END);
    r = run("INFO", "stats", END);
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batches:2\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batched_jobs:10\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nquery_batch_max:9\r\n"));
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
    /* The password shows nowhere. */
    r = run("CONFIG", "GET", "*", END);
    ck_assert_ptr_null(strstr(r, "s3cret"));
    ck_assert_ptr_null(strstr(r, "requirepass"));
    ck_assert_str_eq(run("CONFIG", "GET", "requirepass", END), "*0\r\n");
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
    ck_assert_ptr_nonnull(strstr(run("INFO", "store", END), "maxmemory:"));
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
                     "reload it with SIGHUP\r\n");
    ck_assert_ptr_nonnull(strstr(run("CONFIG", "SET", "dir", "/tmp", END), "is a path"));

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

static Suite *cmd_suite(void)
{
    Suite *s = suite_create("cmd");
    TCase *tc = tcase_create("cmd");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_table);
    tcase_add_test(tc, test_basics);
    tcase_add_test(tc, test_quit);
    tcase_add_test(tc, test_kv);
    tcase_add_test(tc, test_query_job);
    tcase_add_test(tc, test_query_batch);
    tcase_add_test(tc, test_query_errors);
    tcase_add_test(tc, test_info_config);
    tcase_add_test(tc, test_auth_without_password);
    tcase_add_test(tc, test_auth_with_password);
    tcase_add_test(tc, test_set_limits);
    tcase_add_test(tc, test_config_set);
    tcase_add_test(tc, test_slowlog_and_commandstats);
    tcase_add_test(tc, test_hostile_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(cmd_suite());
}
