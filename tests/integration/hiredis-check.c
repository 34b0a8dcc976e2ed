/*
 * hiredis-check.c - hiredis, the C client most Redis clients are built on,
 * against a running attnkvd: every reply of a short script checked for its
 * type and contents.
 *
 * Usage: hiredis-check HOST PORT
 *
 * The daemon must serve the synthetic vocabulary of the integration tests
 * (akvtest.py: cat, dog, animal, one, number, ball, toy, ...); the script
 * starts with FLUSHALL. It covers SET/GET (with binary-safe %b arguments),
 * SET EX and TTL, EXPIRE/PTTL/PERSIST, MGET with a missing key, SELECT,
 * MULTI/EXEC (queued replies, an array of mixed replies, a run-time error
 * inside), WATCH aborted by a second connection (a nil EXEC), DISCARD,
 * EXECABORT, QUERY and EXPLAIN (nested arrays), and a pipeline of 1,000
 * commands through redisAppendCommand/redisGetReply.
 *
 * Exit status: 0 every check passed; 1 a check failed (each failure is
 * printed with its line); 2 usage or connection error. Run by the
 * keyspace suite (test_keyspace.py), which starts the daemon.
 *
 * Ownership: each reply is freed right after its check; the contexts at
 * the end. Threading: one thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "hiredis-check:%d: check failed: %s\n", __LINE__, #cond);              \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static int is_status(const redisReply *r, const char *s)
{
    return r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, s) == 0;
}

static int is_string(const redisReply *r, const char *s)
{
    return r && r->type == REDIS_REPLY_STRING && r->len == strlen(s) &&
           memcmp(r->str, s, r->len) == 0;
}

static int is_int(const redisReply *r, long long v)
{
    return r && r->type == REDIS_REPLY_INTEGER && r->integer == v;
}

static int is_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

static int is_nil(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_NIL;
}

static int is_array(const redisReply *r, size_t n)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == n;
}

/* Sends a command (printf-like, as redisCommand) and returns its reply,
 * or exits if the connection failed. */
static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "hiredis-check: connection error: %s\n", c->errstr);
        exit(2);
    }
    return r;
}

/* cmd, then check(reply), then free it. */
#define EXPECT(check, c, ...)                                                                      \
    do {                                                                                           \
        redisReply *r_ = cmd(c, __VA_ARGS__);                                                      \
        if (!(check)) {                                                                            \
            fprintf(stderr, "hiredis-check:%d: %s: unexpected reply (type %d, %s)\n", __LINE__,    \
                    #__VA_ARGS__, r_->type, r_->str ? r_->str : "");                               \
            failures++;                                                                            \
        }                                                                                          \
        freeReplyObject(r_);                                                                       \
    } while (0)

static redisContext *connect_to(const char *host, int port)
{
    struct timeval tv = {30, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);

    if (!c || c->err) {
        fprintf(stderr, "hiredis-check: cannot connect to %s:%d: %s\n", host, port,
                c ? c->errstr : "out of memory");
        exit(2);
    }
    redisSetTimeout(c, tv);
    return c;
}

int main(int argc, char **argv)
{
    redisContext *c, *o;
    redisReply *r;
    int port;

    if (argc != 3 || (port = atoi(argv[2])) <= 0) {
        fprintf(stderr, "usage: hiredis-check HOST PORT\n");
        return 2;
    }
    c = connect_to(argv[1], port);
    o = connect_to(argv[1], port);

    EXPECT(is_status(r_, "PONG"), c, "PING");
    EXPECT(is_status(r_, "OK"), c, "FLUSHALL");
    EXPECT(is_status(r_, "OK"), c, "SET %s %s", "cat", "animal");
    EXPECT(is_string(r_, "animal"), c, "GET cat");
    EXPECT(is_status(r_, "OK"), c, "SET %b %b", "hello world", (size_t)11, "foo bar", (size_t)7);
    EXPECT(is_string(r_, "foo bar"), c, "GET %b", "hello world", (size_t)11);
    EXPECT(is_nil(r_), c, "GET nope");
    EXPECT(is_error(r_, "ERR unknown word 'zzzzqqq'"), c, "SET cat zzzzqqq");
    EXPECT(is_error(r_, "ERR syntax error"), c, "SET cat dog NX XX");
    EXPECT(is_error(r_, "ERR invalid expire time in 'set' command"), c, "SET cat dog EX 0");

    /* Expiry. */
    EXPECT(is_status(r_, "OK"), c, "SET dog animal EX 100");
    EXPECT(is_int(r_, 100), c, "TTL dog");
    EXPECT(is_int(r_, 1), c, "EXPIRE cat 50");
    EXPECT(is_int(r_, 50), c, "TTL cat");
    r = cmd(c, "PTTL cat");
    CHECK(r->type == REDIS_REPLY_INTEGER && r->integer > 49000 && r->integer <= 50000);
    freeReplyObject(r);
    EXPECT(is_int(r_, 1), c, "PERSIST cat");
    EXPECT(is_int(r_, -1), c, "TTL cat");
    EXPECT(is_int(r_, -2), c, "TTL nope");
    EXPECT(is_int(r_, 0), c, "EXPIRE nope 10");

    /* MGET with a missing key. */
    r = cmd(c, "MGET cat nope dog");
    CHECK(is_array(r, 3) && is_string(r->element[0], "animal") && is_nil(r->element[1]) &&
          is_string(r->element[2], "animal"));
    freeReplyObject(r);

    /* MULTI/EXEC. */
    EXPECT(is_status(r_, "OK"), c, "MULTI");
    EXPECT(is_status(r_, "QUEUED"), c, "SET one number");
    EXPECT(is_status(r_, "QUEUED"), c, "GET one");
    EXPECT(is_status(r_, "QUEUED"), c, "EXPIRE one 100");
    EXPECT(is_status(r_, "QUEUED"), c, "TTL one");
    EXPECT(is_status(r_, "QUEUED"), c, "RENAME nope x");
    EXPECT(is_status(r_, "QUEUED"), c, "EXPLAIN one COUNT 1");
    r = cmd(c, "EXEC");
    CHECK(is_array(r, 6));
    if (is_array(r, 6)) {
        CHECK(is_status(r->element[0], "OK"));
        CHECK(is_string(r->element[1], "number"));
        CHECK(is_int(r->element[2], 1));
        CHECK(is_int(r->element[3], 100));
        CHECK(is_error(r->element[4], "ERR no such key"));
        CHECK(is_array(r->element[5], 1) && is_array(r->element[5]->element[0], 3) &&
              is_string(r->element[5]->element[0]->element[0], "one"));
    }
    freeReplyObject(r);
    EXPECT(is_error(r_, "ERR EXEC without MULTI"), c, "EXEC");
    EXPECT(is_status(r_, "OK"), c, "MULTI");
    EXPECT(is_error(r_, "ERR MULTI calls can not be nested"), c, "MULTI");
    EXPECT(is_status(r_, "QUEUED"), c, "SET one ball");
    EXPECT(is_status(r_, "OK"), c, "DISCARD");
    EXPECT(is_string(r_, "number"), c, "GET one");
    EXPECT(is_status(r_, "OK"), c, "MULTI");
    EXPECT(is_error(r_, "ERR wrong number of arguments for 'set' command"), c, "SET one");
    EXPECT(is_error(r_, "EXECABORT Transaction discarded because of previous errors."), c, "EXEC");

    /* WATCH: another connection's write makes EXEC answer nil. */
    EXPECT(is_status(r_, "OK"), c, "WATCH cat");
    EXPECT(is_status(r_, "OK"), o, "SET cat toy");
    EXPECT(is_status(r_, "OK"), c, "MULTI");
    EXPECT(is_status(r_, "QUEUED"), c, "SET cat ball");
    EXPECT(is_nil(r_), c, "EXEC");
    EXPECT(is_string(r_, "toy"), c, "GET cat");
    EXPECT(is_status(r_, "OK"), c, "WATCH cat");
    EXPECT(is_status(r_, "OK"), c, "MULTI");
    EXPECT(is_status(r_, "QUEUED"), c, "SET cat ball");
    r = cmd(c, "EXEC");
    CHECK(is_array(r, 1) && is_status(r->element[0], "OK"));
    freeReplyObject(r);

    /* Databases. */
    EXPECT(is_status(r_, "OK"), o, "SELECT 3");
    EXPECT(is_nil(r_), o, "GET cat");
    EXPECT(is_int(r_, 0), o, "DBSIZE");
    EXPECT(is_error(r_, "ERR DB index is out of range"), o, "SELECT 16");

    /* QUERY and EXPLAIN. */
    r = cmd(c, "QUERY cat COUNT 3");
    CHECK(is_array(r, 3));
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        CHECK(r->element[i]->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    r = cmd(c, "QUERY cat COUNT 2 WITHSCORES");
    CHECK(is_array(r, 4));
    freeReplyObject(r);
    r = cmd(c, "EXPLAIN cat COUNT 10");
    CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 4); /* cat, hello world, dog, one */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        CHECK(is_array(r->element[i], 3) && r->element[i]->element[2]->type == REDIS_REPLY_STRING &&
              atof(r->element[i]->element[2]->str) > 0);
    freeReplyObject(r);
    EXPECT(is_array(r_, 0), o, "QUERY cat");

    /* A pipeline of 1,000 commands. */
    for (int i = 0; i < 500; i++) {
        redisAppendCommand(c, "SET w%04d w%04d PX 60000", i, i + 1);
        redisAppendCommand(c, "GET w%04d", i);
    }
    for (int i = 0; i < 500; i++) {
        char want[8];
        void *v;
        snprintf(want, sizeof(want), "w%04d", i + 1);
        if (redisGetReply(c, &v) != REDIS_OK) {
            fprintf(stderr, "hiredis-check: connection error: %s\n", c->errstr);
            return 2;
        }
        CHECK(is_status(v, "OK"));
        freeReplyObject(v);
        if (redisGetReply(c, &v) != REDIS_OK) {
            fprintf(stderr, "hiredis-check: connection error: %s\n", c->errstr);
            return 2;
        }
        CHECK(is_string(v, want));
        freeReplyObject(v);
    }
    EXPECT(is_status(r_, "OK"), c, "FLUSHALL");

    redisFree(o);
    redisFree(c);
    if (failures) {
        fprintf(stderr, "hiredis-check: %d checks failed\n", failures);
        return 1;
    }
    printf("hiredis-check: all checks passed\n");
    return 0;
}
