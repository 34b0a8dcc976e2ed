/*
 * test-proto.c - Check suite for the request parser (src/proto/proto.c).
 *
 * Every valid request is fed at every length from 0 to its full size, each
 * time from a malloc'd copy of exactly that many bytes (so ASan reports any
 * read past the end) and again ending right before an inaccessible page (so
 * an overread faults even without ASan). The suite also replays the fuzzer's
 * seed corpus and every saved crasher through the fuzz target itself
 * (fuzz/fuzz-proto.c is linked in), found under $AKV_SOURCE_ROOT.
 */
#include <check.h>

#include "runsuite.h"

#include "replay.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct bytes {
    const char *p;
    size_t n;
};

/* A byte string given by a literal, embedded NULs included. */
/* clang-format off */
#define B(s) {(s), sizeof(s) - 1}
/* clang-format on */

#define MAXARGS 6

struct valid_case {
    struct bytes in;
    int resp;
    size_t argc;
    struct bytes argv[MAXARGS];
};

static const struct valid_case valid[] = {
    /* RESP */
    {B("*1\r\n$4\r\nPING\r\n"), 1, 1, {B("PING")}},
    {B("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"), 1, 3, {B("SET"), B("key"), B("value")}},
    {B("*2\r\n$3\r\nGET\r\n$0\r\n\r\n"), 1, 2, {B("GET"), B("")}},
    {B("*2\r\n$3\r\nSET\r\n$8\r\na\0b\r\nc\r\n\r\n"), 1, 2, {B("SET"), B("a\0b\r\nc\r\n")}},
    {B("*0\r\n"), 1, 0, {{0}}},
    {B("*-1\r\n"), 1, 0, {{0}}},
    {B("*2\r\n$4\r\nECHO\r\n$13\r\nhéllo wörld\r\n"), 1, 2, {B("ECHO"), B("héllo wörld")}},
    {B("*1\r\n$10\r\n0123456789\r\n"), 1, 1, {B("0123456789")}},
    {B("*2\r\n$1\r\n*\r\n$1\r\n$\r\n"), 1, 2, {B("*"), B("$")}},
    {B("*1\r\n$2\r\n\r\n\r\n"), 1, 1, {B("\r\n")}},
    {B("*1\r\n$1\r\n\0\r\n"), 1, 1, {B("\0")}},
    /* Inline */
    {B("PING\r\n"), 0, 1, {B("PING")}},
    {B("PING\n"), 0, 1, {B("PING")}},
    {B("SET key value\n"), 0, 3, {B("SET"), B("key"), B("value")}},
    {B("  SET\tkey \t value  \r\n"), 0, 3, {B("SET"), B("key"), B("value")}},
    {B("\r\n"), 0, 0, {{0}}},
    {B("\n"), 0, 0, {{0}}},
    {B(" \t \r\n"), 0, 0, {{0}}},
    {B("SET k \"hello world\"\r\n"), 0, 3, {B("SET"), B("k"), B("hello world")}},
    {B("SET k \"a\\\"b\\\\c\\n\\r\\t\\b\\a\\x41\\x7a\\x00!\"\n"),
     0,
     3,
     {B("SET"), B("k"),
      B("a\"b\\c\n\r\t\b\a"
        "Az\0!")}},
    {B("SET k 'it\\'s' x\n"), 0, 4, {B("SET"), B("k"), B("it's"), B("x")}},
    {B("SET k 'a\\nb\"c'\n"), 0, 3, {B("SET"), B("k"), B("a\\nb\"c")}},
    {B("SET k \"\" ''\n"), 0, 4, {B("SET"), B("k"), B(""), B("")}},
    {B("SET k foo\"bar baz\"\n"), 0, 3, {B("SET"), B("k"), B("foobar baz")}},
    /* Unknown escapes stand for the escaped character, as in Redis, so an
     * \x without two hex digits decodes to a plain 'x'. */
    {B("SET k \"\\xZZ\\q\\x4\"\n"), 0, 3, {B("SET"), B("k"), B("xZZqx4")}},
    {B("SET k \"\\x4a\\x4A\\xff\"\n"), 0, 3, {B("SET"), B("k"), B("JJ\xff")}},
    {B("SET héllo \"wörld ✓\"\n"), 0, 3, {B("SET"), B("héllo"), B("wörld ✓")}},
    /* CR, VT and FF separate arguments, as in Redis and the config file. */
    {B("a\rb\n"), 0, 2, {B("a"), B("b")}},
    {B("a\vb\fc\n"), 0, 3, {B("a"), B("b"), B("c")}},
    {B("\"\"\n"), 0, 1, {B("")}},
    {B("'x y'\t\"z\"\r\n"), 0, 2, {B("x y"), B("z")}},
    {B("GET k\r\r\n"), 0, 2, {B("GET"), B("k")}},
    {B("SET k \"a\"\r\r\n"), 0, 3, {B("SET"), B("k"), B("a")}},
    {B("a\0b \"c\0d\"\n"), 0, 2, {B("a\0b"), B("c\0d")}},
    {B("$3\r\n"), 0, 1, {B("$3")}},
};

#define NVALID (sizeof valid / sizeof valid[0])

/* One parser call with argv and scratch of exactly the given sizes, so
 * ASan also catches writes past either. */
struct run {
    struct akv_proto_req req;
    const char *msg;
    size_t need_argc;
};

static void run_init(struct run *x, size_t argv_cap, size_t scratch_cap)
{
    memset(x, 0, sizeof *x);
    x->req.argv = argv_cap ? malloc(argv_cap * sizeof *x->req.argv) : NULL;
    x->req.argv_cap = argv_cap;
    x->req.scratch = scratch_cap ? malloc(scratch_cap) : NULL;
    x->req.scratch_cap = scratch_cap;
    ck_assert(argv_cap == 0 || x->req.argv);
    ck_assert(scratch_cap == 0 || x->req.scratch);
}

static void run_fini(struct run *x)
{
    free(x->req.argv);
    free(x->req.scratch);
}

static long run_parse(struct run *x, const char *buf, size_t len,
                      const struct akv_proto_limits *lim)
{
    x->msg = NULL;
    x->need_argc = 0;
    return akv_proto_parse(buf, len, lim, &x->req, &x->msg, &x->need_argc);
}

/* Parses a copy of buf[0..len) held in exactly len malloc'd bytes. */
static long parse_exact(struct run *x, const char *buf, size_t len,
                        const struct akv_proto_limits *lim, char **copy)
{
    *copy = malloc(len ? len : 1);
    ck_assert(*copy);
    memcpy(*copy, buf, len);
    return run_parse(x, *copy, len, lim);
}

static void expect_args(const struct akv_proto_req *req, const struct valid_case *c)
{
    size_t i;

    ck_assert_int_eq(req->resp, c->resp);
    ck_assert_uint_eq(req->argc, c->argc);
    for (i = 0; i < c->argc; i++) {
        ck_assert_msg(req->argv[i].len == c->argv[i].n, "arg %zu: len %zu, want %zu", i,
                      req->argv[i].len, c->argv[i].n);
        ck_assert(memcmp(req->argv[i].p, c->argv[i].p, c->argv[i].n) == 0);
    }
}

START_TEST(test_truncations)
{
    const struct valid_case *c = &valid[_i];
    struct run x;
    size_t k;

    /* Room for exactly the arguments and at most the line length. */
    run_init(&x, c->argc, c->in.n);
    for (k = 0; k < c->in.n; k++) {
        char *copy;
        long r = parse_exact(&x, c->in.p, k, NULL, &copy);

        ck_assert_msg(r == AKV_PROTO_NEED_MORE, "case %d at %zu bytes: %ld", _i, k, r);
        ck_assert(x.req.need_len > k && x.req.need_len <= c->in.n);
        free(copy);
    }
    {
        char *copy;
        long r = parse_exact(&x, c->in.p, c->in.n, NULL, &copy);

        ck_assert_msg(r == (long)c->in.n, "case %d: %ld (%s)", _i, r, x.msg ? x.msg : "");
        ck_assert_uint_eq(x.req.need_len, 0);
        expect_args(&x.req, c);
        free(copy);
    }
    run_fini(&x);
}
END_TEST

/* The same, with the input ending right before a PROT_NONE page. */
START_TEST(test_guard_page)
{
    const struct valid_case *c = &valid[_i];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t room = (c->in.n + page - 1) / page * page;
    char *map = mmap(NULL, room + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *end = map + room;
    struct run x;
    size_t k;

    ck_assert(map != MAP_FAILED);
    ck_assert_int_eq(mprotect(end, page, PROT_NONE), 0);
    run_init(&x, c->argc, c->in.n);
    for (k = 0; k <= c->in.n; k++) {
        long r;

        memcpy(end - k, c->in.p, k);
        r = run_parse(&x, end - k, k, NULL);
        if (k < c->in.n) {
            ck_assert_int_eq(r, AKV_PROTO_NEED_MORE);
        } else {
            ck_assert_int_eq(r, (long)c->in.n);
            expect_args(&x.req, c);
        }
    }
    run_fini(&x);
    munmap(map, room + page);
}
END_TEST

/* A request followed by more bytes consumes exactly its own. */
START_TEST(test_trailing_bytes)
{
    const struct valid_case *c = &valid[_i];
    char *buf = malloc(c->in.n + 3);
    struct run x;

    memcpy(buf, c->in.p, c->in.n);
    memcpy(buf + c->in.n, "*\r\n", 3);
    run_init(&x, c->argc, c->in.n);
    ck_assert_int_eq(run_parse(&x, buf, c->in.n + 3, NULL), (long)c->in.n);
    expect_args(&x.req, c);
    run_fini(&x);
    free(buf);
}
END_TEST

/* All valid requests back to back, three times; and the same stream cut
 * at every byte, which must yield exactly the requests wholly inside. */
START_TEST(test_pipeline)
{
    size_t total = 0, off, i, rep, k;
    size_t ends[3 * NVALID];
    char *buf;
    struct run x;

    for (i = 0; i < NVALID; i++)
        total += valid[i].in.n;
    total *= 3;
    buf = malloc(total);
    off = 0;
    for (rep = 0; rep < 3; rep++)
        for (i = 0; i < NVALID; i++) {
            memcpy(buf + off, valid[i].in.p, valid[i].in.n);
            off += valid[i].in.n;
            ends[rep * NVALID + i] = off;
        }

    run_init(&x, MAXARGS, 256);
    for (k = 0; k <= total; k++) {
        size_t n = 0;
        char *copy = malloc(k ? k : 1);

        memcpy(copy, buf, k);
        off = 0;
        for (;;) {
            long r = run_parse(&x, copy + off, k - off, NULL);

            if (r == AKV_PROTO_NEED_MORE)
                break;
            ck_assert_int_gt(r, 0);
            expect_args(&x.req, &valid[n % NVALID]);
            off += (size_t)r;
            ck_assert_uint_eq(off, ends[n]);
            n++;
        }
        /* Exactly the requests that end at or before k were parsed. */
        ck_assert(n == 3 * NVALID || ends[n] > k);
        ck_assert(n == 0 || ends[n - 1] <= k);
        free(copy);
    }
    run_fini(&x);
    free(buf);
}
END_TEST

START_TEST(test_crlf_lf_empty_lines)
{
    static const char in[] = "PING\nPING\r\n\n\r\n  \r\n*1\r\n$4\r\nPING\r\nPING\n";
    static const long want[] = {5, 6, 1, 2, 4, 14, 5};
    static const size_t argc[] = {1, 1, 0, 0, 0, 1, 1};
    struct run x;
    size_t off = 0, i;

    run_init(&x, 4, 64);
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        long r = run_parse(&x, in + off, sizeof in - 1 - off, NULL);

        ck_assert_int_eq(r, want[i]);
        ck_assert_uint_eq(x.req.argc, argc[i]);
        if (argc[i])
            ck_assert(x.req.argv[0].len == 4 && memcmp(x.req.argv[0].p, "PING", 4) == 0);
        off += (size_t)r;
    }
    ck_assert_uint_eq(off, sizeof in - 1);
    run_fini(&x);
}
END_TEST

/* A connection as the daemon runs it: bytes arrive in random chunks, the
 * parser is only called once need_len bytes are buffered, and the buffer is
 * compacted after each request. Nothing may be missed or misparsed. */
START_TEST(test_chunked_stream)
{
    uint32_t seed = 12345;
    size_t order[400], total = 0, i, fed = 0, have = 0, wait = 0, done = 0;
    char *stream, *inbuf;
    struct run x;

    for (i = 0; i < 400; i++) {
        seed = seed * 1103515245u + 12345u;
        order[i] = (seed >> 16) % NVALID;
        total += valid[order[i]].in.n;
    }
    stream = malloc(total);
    inbuf = malloc(total);
    for (i = 0; i < 400; i++) {
        memcpy(stream + fed, valid[order[i]].in.p, valid[order[i]].in.n);
        fed += valid[order[i]].in.n;
    }
    fed = 0;
    run_init(&x, MAXARGS, 256);
    while (done < 400) {
        size_t chunk;

        seed = seed * 1103515245u + 12345u;
        chunk = 1 + (seed >> 16) % 40;
        if (chunk > total - fed)
            chunk = total - fed;
        memcpy(inbuf + have, stream + fed, chunk);
        fed += chunk;
        have += chunk;
        if (have < wait && fed < total)
            continue;
        for (;;) {
            long r = run_parse(&x, inbuf, have, NULL);

            if (r == AKV_PROTO_NEED_MORE) {
                ck_assert(x.req.need_len > have);
                wait = x.req.need_len;
                ck_assert(fed < total);
                break;
            }
            ck_assert_int_eq(r, (long)valid[order[done]].in.n);
            expect_args(&x.req, &valid[order[done]]);
            memmove(inbuf, inbuf + r, have - (size_t)r);
            have -= (size_t)r;
            wait = 0;
            done++;
            if (done == 400)
                break;
        }
    }
    ck_assert_uint_eq(have, 0);
    run_fini(&x);
    free(stream);
    free(inbuf);
}
END_TEST

struct error_case {
    struct bytes in;
    long code;
    const char *msg;                       /* a substring of the reason */
    size_t inline_max, bulk_max, argc_max; /* 0: the default */
};

#define ZEROS32 "00000000000000000000000000000000"

static const struct error_case errors[] = {
    {B("*abc\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*-2\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*-\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*-0\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*-10\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*--1\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*01\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*+1\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("* 1\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*1 \r\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*1\rX"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*1\n"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*1x"), AKV_PROTO_ERR_SYNTAX, "invalid multibulk length", 0, 0, 0},
    {B("*99999999999999999999\r\n"), AKV_PROTO_ERR_TOO_BIG, "invalid multibulk length", 0, 0, 0},
    {B("*184467440737095516160\r\n"), AKV_PROTO_ERR_TOO_BIG, "invalid multibulk length", 0, 0, 0},
    {B("*1025\r\n"), AKV_PROTO_ERR_TOO_BIG, "invalid multibulk length", 0, 0, 1024},
    {B("*1048577\r\n"), AKV_PROTO_ERR_TOO_BIG, "invalid multibulk length", 0, 0, 0},
    {B("*" ZEROS32), AKV_PROTO_ERR_SYNTAX, "too big mbulk count string", 0, 0, 0},
    {B("*1\r\nfoo\r\n"), AKV_PROTO_ERR_SYNTAX, "expected '$'", 0, 0, 0},
    {B("*2\r\n$3\r\nfoo\r\n:1\r\n"), AKV_PROTO_ERR_SYNTAX, "expected '$'", 0, 0, 0},
    {B("*1\r\n\r\n"), AKV_PROTO_ERR_SYNTAX, "expected '$'", 0, 0, 0},
    {B("*1\r\n$3\r\nfooX"), AKV_PROTO_ERR_SYNTAX, "expected CRLF", 0, 0, 0},
    {B("*1\r\n$3\r\nfoo\rX"), AKV_PROTO_ERR_SYNTAX, "expected CRLF", 0, 0, 0},
    {B("*1\r\n$3\r\nfoo\n"), AKV_PROTO_ERR_SYNTAX, "expected CRLF", 0, 0, 0},
    {B("*1\r\n$3\r\nfoobar\r\n"), AKV_PROTO_ERR_SYNTAX, "expected CRLF", 0, 0, 0},
    {B("*1\r\n$-1\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid bulk length", 0, 0, 0},
    {B("*1\r\n$\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid bulk length", 0, 0, 0},
    {B("*1\r\n$01\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid bulk length", 0, 0, 0},
    {B("*1\r\n$1x\r\n"), AKV_PROTO_ERR_SYNTAX, "invalid bulk length", 0, 0, 0},
    {B("*1\r\n$1\rx"), AKV_PROTO_ERR_SYNTAX, "invalid bulk length", 0, 0, 0},
    {B("*1\r\n$99999999999999999999\r\n"), AKV_PROTO_ERR_TOO_BIG, "invalid bulk length", 0, 0, 0},
    {B("*1\r\n$11\r\n"), AKV_PROTO_ERR_TOO_BIG, "invalid bulk length", 0, 10, 0},
    {B("*1\r\n$536870913\r\n"), AKV_PROTO_ERR_TOO_BIG, "invalid bulk length", 0, 0, 0},
    {B("*1\r\n$" ZEROS32), AKV_PROTO_ERR_SYNTAX, "too big bulk count string", 0, 0, 0},
    {B("*1\r\n$11111111111111111111111111111111111111"), AKV_PROTO_ERR_SYNTAX,
     "too big bulk count string", 0, 0, 0},
    /* Inline */
    {B("SET k \"abc\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("SET k 'abc\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("SET k \"abc\"def\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("SET k 'abc'def\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("SET k \"abc\\\"\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("SET k 'abc\\'\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("SET k \"abc\\\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("\"a\"\"b\"\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("\"a\"'b'\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("it's\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("\"\n"), AKV_PROTO_ERR_SYNTAX, "unbalanced quotes", 0, 0, 0},
    {B("abcdefghijk"), AKV_PROTO_ERR_TOO_BIG, "too big inline request", 10, 0, 0},
    {B("abcdefghijk\n"), AKV_PROTO_ERR_TOO_BIG, "too big inline request", 10, 0, 0},
    {B("abcdefghijk\r\n"), AKV_PROTO_ERR_TOO_BIG, "too big inline request", 10, 0, 0},
    {B("abcdefghij\rX"), AKV_PROTO_ERR_TOO_BIG, "too big inline request", 10, 0, 0},
    {B("abcdefghij\r\r\n"), AKV_PROTO_ERR_TOO_BIG, "too big inline request", 10, 0, 0},
    {B("a b c\n"), AKV_PROTO_ERR_TOO_BIG, "too many arguments", 0, 0, 2},
};

#define NERRORS (sizeof errors / sizeof errors[0])

static void limits_of(const struct error_case *c, struct akv_proto_limits *lim)
{
    akv_proto_limits_default(lim);
    if (c->inline_max)
        lim->inline_max = c->inline_max;
    if (c->bulk_max)
        lim->bulk_max = c->bulk_max;
    if (c->argc_max)
        lim->argc_max = c->argc_max;
}

/* Each bad input gives its error with the whole input buffered; each of its
 * prefixes gives "need more" or that same error, never a request. */
START_TEST(test_errors)
{
    const struct error_case *c = &errors[_i];
    struct akv_proto_limits lim;
    struct run x;
    size_t k;

    limits_of(c, &lim);
    run_init(&x, 8, 64);
    for (k = 0; k <= c->in.n; k++) {
        char *copy;
        long r = parse_exact(&x, c->in.p, k, &lim, &copy);

        free(copy);
        if (k < c->in.n && r == AKV_PROTO_NEED_MORE)
            continue;
        ck_assert_msg(r == c->code, "error case %d at %zu bytes: %ld, want %ld", _i, k, r, c->code);
        ck_assert_msg(x.msg && strstr(x.msg, c->msg), "error case %d: \"%s\"", _i,
                      x.msg ? x.msg : "(null)");
        ck_assert(strncmp(x.msg, "Protocol error: ", 16) == 0);
        ck_assert_uint_eq(x.req.need_len, 0);
    }
    run_fini(&x);
}
END_TEST

/* Limits are inclusive: a request exactly at each limit is accepted. */
START_TEST(test_limit_boundaries)
{
    struct akv_proto_limits lim;
    struct run x;
    char *copy;

    akv_proto_limits_default(&lim);
    lim.inline_max = 10;
    lim.bulk_max = 10;
    lim.argc_max = 2;
    run_init(&x, 2, 10);
    ck_assert_int_eq(parse_exact(&x, "abcdefghij\n", 11, &lim, &copy), 11);
    free(copy);
    ck_assert_int_eq(parse_exact(&x, "abcdefghij\r", 11, &lim, &copy), AKV_PROTO_NEED_MORE);
    free(copy);
    ck_assert_int_eq(parse_exact(&x, "abcdefghij\r\n", 12, &lim, &copy), 12);
    ck_assert(x.req.argv[0].len == 10);
    free(copy);
    ck_assert_int_eq(parse_exact(&x, "abcdefghij", 10, &lim, &copy), AKV_PROTO_NEED_MORE);
    free(copy);
    ck_assert_int_eq(parse_exact(&x, "a b\n", 4, &lim, &copy), 4);
    free(copy);
    ck_assert_int_eq(parse_exact(&x, "*1\r\n$10\r\n0123456789\r\n", 21, &lim, &copy), 21);
    free(copy);
    ck_assert_int_eq(parse_exact(&x, "*2\r\n$0\r\n\r\n$0\r\n\r\n", 16, &lim, &copy), 16);
    free(copy);
    /* A header line of 32 bytes ending in '\r' may still get its '\n'. */
    ck_assert_int_eq(parse_exact(&x, "*000000000000000000000000000000\r", 32, NULL, &copy),
                     AKV_PROTO_NEED_MORE);
    free(copy);
    run_fini(&x);
}
END_TEST

START_TEST(test_big_bulk)
{
    size_t n = (size_t)3 << 20;
    static const char head[] = "*2\r\n$3\r\nSET\r\n$3145728\r\n";
    size_t total = sizeof head - 1 + n + 2, i;
    char *buf = malloc(total);
    struct run x;

    memcpy(buf, head, sizeof head - 1);
    for (i = 0; i < n; i++)
        buf[sizeof head - 1 + i] = (char)(i * 7);
    memcpy(buf + total - 2, "\r\n", 2);
    run_init(&x, 2, 0);
    /* need_len already knows where the request ends. */
    ck_assert_int_eq(run_parse(&x, buf, sizeof head - 1 + 5, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, total);
    ck_assert_int_eq(run_parse(&x, buf, total - 1, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, total);
    ck_assert_int_eq(run_parse(&x, buf, total, NULL), (long)total);
    ck_assert(x.req.argv[1].p == buf + sizeof head - 1 && x.req.argv[1].len == n);
    run_fini(&x);
    free(buf);
}
END_TEST

START_TEST(test_need_len)
{
    struct run x;

    run_init(&x, 3, 0);
    /* Header, then three bulks of at least "$0\r\n\r\n" each. */
    ck_assert_int_eq(run_parse(&x, "*3\r\n", 4, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, 4 + 3 * 6);
    ck_assert_int_eq(run_parse(&x, "*3\r\n$100\r\n", 10, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, 10 + 100 + 2 + 2 * 6);
    ck_assert_int_eq(run_parse(&x, "*3\r\n$1", 6, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, 4 + 6 + 2 * 6);
    /* A partial bulk header longer than "$0\r\n\r\n": one more byte, at least. */
    ck_assert_int_eq(run_parse(&x, "*2\r\n$10000", 10, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, 11 + 6);
    ck_assert_int_eq(run_parse(&x, "GET", 3, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, 4);
    ck_assert_int_eq(run_parse(&x, "", 0, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_uint_eq(x.req.need_len, 1);
    run_fini(&x);
}
END_TEST

START_TEST(test_too_many_resp)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";
    struct run x, y;

    run_init(&x, 1, 0);
    /* Known from the header alone, before any argument is buffered. */
    ck_assert_int_eq(run_parse(&x, in, 3, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_int_eq(run_parse(&x, in, 4, NULL), AKV_PROTO_ERR_TOO_MANY);
    ck_assert_uint_eq(x.need_argc, 3);
    ck_assert_ptr_nonnull(x.msg);
    ck_assert_int_eq(run_parse(&x, in, sizeof in - 1, NULL), AKV_PROTO_ERR_TOO_MANY);
    ck_assert_uint_eq(x.need_argc, 3);
    ck_assert_int_eq(akv_proto_parse(in, sizeof in - 1, NULL, &x.req, NULL, NULL),
                     AKV_PROTO_ERR_TOO_MANY);
    run_fini(&x);

    run_init(&y, 3, 0);
    ck_assert_int_eq(run_parse(&y, in, sizeof in - 1, NULL), (long)sizeof in - 1);
    ck_assert_uint_eq(y.req.argc, 3);
    ck_assert(y.req.argv[2].len == 1 && y.req.argv[2].p[0] == 'v');
    run_fini(&y);

    /* No argv at all still handles empty requests. */
    run_init(&x, 0, 0);
    ck_assert_int_eq(run_parse(&x, "*0\r\n", 4, NULL), 4);
    ck_assert_int_eq(run_parse(&x, "\r\n", 2, NULL), 2);
    ck_assert_int_eq(run_parse(&x, "*1\r\n", 4, NULL), AKV_PROTO_ERR_TOO_MANY);
    ck_assert_uint_eq(x.need_argc, 1);
    run_fini(&x);
}
END_TEST

START_TEST(test_too_many_resp_limit_first)
{
    struct akv_proto_limits lim;
    struct run x;

    akv_proto_limits_default(&lim);
    lim.argc_max = 4;
    run_init(&x, 1, 0);
    /* Over argc_max is fatal, and must not ask the caller to grow argv. */
    ck_assert_int_eq(run_parse(&x, "*5\r\n", 4, &lim), AKV_PROTO_ERR_TOO_BIG);
    ck_assert_uint_eq(x.need_argc, 0);
    ck_assert_int_eq(run_parse(&x, "*4\r\n", 4, &lim), AKV_PROTO_ERR_TOO_MANY);
    ck_assert_uint_eq(x.need_argc, 4);
    run_fini(&x);
}
END_TEST

START_TEST(test_too_many_inline)
{
    static const char in[] = "a \"b c\" 'd' \"e\\x41\" f\n";
    struct run x, y;

    run_init(&x, 2, sizeof in);
    ck_assert_int_eq(run_parse(&x, in, sizeof in - 2, NULL), AKV_PROTO_NEED_MORE);
    ck_assert_int_eq(run_parse(&x, in, sizeof in - 1, NULL), AKV_PROTO_ERR_TOO_MANY);
    ck_assert_uint_eq(x.need_argc, 5);
    run_fini(&x);

    run_init(&y, 5, sizeof in);
    ck_assert_int_eq(run_parse(&y, in, sizeof in - 1, NULL), (long)sizeof in - 1);
    ck_assert_uint_eq(y.req.argc, 5);
    ck_assert(y.req.argv[1].len == 3 && memcmp(y.req.argv[1].p, "b c", 3) == 0);
    ck_assert(y.req.argv[3].len == 2 && memcmp(y.req.argv[3].p, "eA", 2) == 0);
    ck_assert(y.req.argv[4].len == 1 && y.req.argv[4].p == in + sizeof in - 3);
    run_fini(&y);

    /* Quoting errors after argv is full are still errors, not TOO_MANY. */
    run_init(&x, 1, 16);
    ck_assert_int_eq(run_parse(&x, "a b \"c\n", 7, NULL), AKV_PROTO_ERR_SYNTAX);
    run_fini(&x);
}
END_TEST

/* Unquoted arguments point into the input; quoted ones into scratch. */
START_TEST(test_scratch)
{
    static const char in[] = "SET \"abc\" def ''\n";
    struct run x;

    run_init(&x, 4, 3);
    ck_assert_int_eq(run_parse(&x, in, sizeof in - 1, NULL), (long)sizeof in - 1);
    ck_assert(x.req.argv[0].p == in);
    ck_assert(x.req.argv[1].p == x.req.scratch && x.req.argv[1].len == 3);
    ck_assert(x.req.argv[2].p == in + 10);
    ck_assert(x.req.argv[3].len == 0);
    run_fini(&x);

    /* A scratch too small for the quoted text is an error, not an overflow. */
    run_init(&x, 4, 2);
    ck_assert_int_eq(run_parse(&x, in, sizeof in - 1, NULL), AKV_PROTO_ERR_TOO_BIG);
    ck_assert_ptr_nonnull(strstr(x.msg, "scratch"));
    run_fini(&x);
    run_init(&x, 4, 0);
    ck_assert_int_eq(run_parse(&x, "''\n", 3, NULL), 3);
    ck_assert_uint_eq(x.req.argv[0].len, 0);
    ck_assert_ptr_nonnull(x.req.argv[0].p);
    run_fini(&x);
}
END_TEST

START_TEST(test_limits_default)
{
    struct akv_proto_limits lim;

    akv_proto_limits_default(&lim);
    ck_assert_uint_eq(lim.inline_max, 64 * 1024);
    ck_assert_uint_eq(lim.bulk_max, (size_t)512 * 1024 * 1024);
    ck_assert_uint_eq(lim.argc_max, 1024 * 1024);
}
END_TEST

/* The fuzz target itself checks the invariants and aborts, failing the
 * test, if one breaks. */
static void replay_one(const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    LLVMFuzzerTestOneInput(data, len);
}

START_TEST(test_fuzz_replay)
{
    const char *root = getenv("AKV_SOURCE_ROOT");

    if (!root || !*root) {
        fprintf(stderr, "AKV_SOURCE_ROOT unset: fuzz corpus replay skipped\n");
        return;
    }
    ck_assert_int_gt(tu_replay_dir("fuzz/corpus/proto", replay_one, NULL), 0);
    /* The folder of crashers exists only once the fuzzer found one. */
    tu_replay_dir("fuzz/regression/proto", replay_one, NULL);
}
END_TEST

static Suite *proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("valid");

    tcase_add_loop_test(tc, test_truncations, 0, (int)NVALID);
    tcase_add_loop_test(tc, test_guard_page, 0, (int)NVALID);
    tcase_add_loop_test(tc, test_trailing_bytes, 0, (int)NVALID);
    tcase_add_test(tc, test_pipeline);
    tcase_add_test(tc, test_crlf_lf_empty_lines);
    tcase_add_test(tc, test_chunked_stream);
    tcase_add_test(tc, test_limit_boundaries);
    tcase_add_test(tc, test_big_bulk);
    tcase_add_test(tc, test_need_len);
    tcase_add_test(tc, test_limits_default);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_errors, 0, (int)NERRORS);
    suite_add_tcase(s, tc);

    tc = tcase_create("argv");
    tcase_add_test(tc, test_too_many_resp);
    tcase_add_test(tc, test_too_many_resp_limit_first);
    tcase_add_test(tc, test_too_many_inline);
    tcase_add_test(tc, test_scratch);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_add_test(tc, test_fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(proto_suite());
}
