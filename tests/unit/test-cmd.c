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
#include <ctype.h>
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
    ck_assert_int_eq(sess.authenticated, 0);
    ck_assert_uint_eq(sess.id, 1);

    /* HELLO AUTH, and HELLO before AUTH while a password is set. */
    cfg.requirepass = strdup("s3cret");
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
    ck_assert_ptr_nonnull(strstr(r, "\r\nloading:0\r\nrdb_bgsave_in_progress:0\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\r\nrdb_last_save_time:"));
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
    tcase_add_test(tc, test_client);
    tcase_add_test(tc, test_client_reply);
    tcase_add_test(tc, test_hello_resp3);
    tcase_add_test(tc, test_monitor);
    tcase_add_test(tc, test_operations);
    tcase_add_test(tc, test_inspect);
    tcase_add_test(tc, test_command_docs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(cmd_suite());
}
