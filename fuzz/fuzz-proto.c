/*
 * fuzz-proto.c - libFuzzer target for akv_proto_parse.
 *
 * The first CONF_LEN bytes of an input choose the argv and scratch sizes and
 * the limits, kept tiny so that every limit and every TOO_MANY retry is
 * reachable; the rest is parsed the way a connection does: request after
 * request until "need more" or an error, growing argv when told to. Each
 * result is checked against the parser's contract (see check_request), and
 * every parsed request is re-encoded with reply.c and parsed back, so the
 * writer and the parser must agree.
 *
 * The same file is linked into test-proto, which replays fuzz/corpus/proto
 * and fuzz/regression/proto through LLVMFuzzerTestOneInput on every
 * "meson test", with or without libFuzzer.
 *
 * Threading: none. A broken invariant prints what broke and aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONF_LEN 5

/* Prefixes of requests up to this size are all re-parsed; longer requests
 * get a sample, which keeps big inputs from taking quadratic time. */
#define PREFIX_ALL 1024

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct harness {
    struct akv_proto_limits lim;
    struct akv_slice *argv;
    size_t argv_cap;
    char *scratch;
    size_t scratch_cap;
    int scratch_enough; /* scratch_cap >= inline_max: scratch can never run out */
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    CHECK(p != NULL);
    return p;
}

static int inside(const char *p, size_t len, const char *base, size_t cap)
{
    return base && p >= base && len <= cap && (size_t)(p - base) <= cap - len;
}

/* Runs one parse of a copy of buf[0..len) in a buffer of exactly len bytes,
 * so that ASan sees any read past the end. */
static long parse_copy(const char *buf, size_t len, const struct harness *h,
                       struct akv_proto_req *req)
{
    char *copy = xmalloc(len);
    const char *msg = NULL;
    size_t need = 0;
    long r;

    memcpy(copy, buf, len);
    r = akv_proto_parse(copy, len, &h->lim, req, &msg, &need);
    free(copy);
    return r;
}

/* Every proper prefix of a request that parsed must be "need more", and the
 * need_len it reports must not overshoot the real request. */
static void check_prefixes(const char *buf, size_t consumed, const struct harness *h)
{
    struct akv_slice *argv = xmalloc(h->argv_cap * sizeof *argv);
    char *scratch = xmalloc(h->scratch_cap);
    struct akv_proto_req req = {
        .argv = argv, .argv_cap = h->argv_cap, .scratch = scratch, .scratch_cap = h->scratch_cap};
    size_t k, step = consumed <= PREFIX_ALL ? 1 : consumed / 64;

    for (k = 0; k < consumed; k += step) {
        long r = parse_copy(buf, k, h, &req);

        CHECK(r == AKV_PROTO_NEED_MORE);
        CHECK(req.need_len > k && req.need_len <= consumed);
    }
    if (consumed > 0) {
        long r = parse_copy(buf, consumed - 1, h, &req);
        CHECK(r == AKV_PROTO_NEED_MORE);
    }
    free(argv);
    free(scratch);
}

/* Encodes the request as RESP with the reply writer and parses it back. */
static void check_roundtrip(const struct akv_proto_req *req)
{
    struct akv_buf b;
    struct akv_slice *argv = xmalloc(req->argc * sizeof *argv);
    struct akv_proto_req back = {.argv = argv, .argv_cap = req->argc};
    const char *msg = NULL;
    long r;
    size_t i;

    akv_buf_init(&b);
    CHECK(akv_reply_array(&b, req->argc) == 0);
    for (i = 0; i < req->argc; i++)
        CHECK(akv_reply_bulk(&b, req->argv[i].p, req->argv[i].len) == 0);
    r = akv_proto_parse(b.p, b.len, NULL, &back, &msg, NULL);
    CHECK(r > 0 && (size_t)r == b.len);
    CHECK(back.resp == 1 && back.argc == req->argc);
    for (i = 0; i < req->argc; i++) {
        CHECK(argv[i].len == req->argv[i].len);
        CHECK(argv[i].len == 0 || memcmp(argv[i].p, req->argv[i].p, argv[i].len) == 0);
    }
    akv_buf_fini(&b);
    free(argv);
}

static void check_request(const char *buf, size_t rest, long r, const struct harness *h,
                          const struct akv_proto_req *req)
{
    size_t consumed = (size_t)r, i;

    CHECK(consumed <= rest);
    CHECK(req->resp == (buf[0] == '*'));
    CHECK(req->argc <= h->argv_cap && req->argc <= h->lim.argc_max);
    CHECK(req->need_len == 0);
    for (i = 0; i < req->argc; i++) {
        const struct akv_slice *a = &req->argv[i];

        CHECK(a->p != NULL);
        if (req->resp)
            CHECK(inside(a->p, a->len, buf, consumed));
        else
            CHECK(inside(a->p, a->len, buf, consumed) ||
                  inside(a->p, a->len, h->scratch, h->scratch_cap));
        if (req->resp)
            CHECK(a->len <= h->lim.bulk_max);
    }
    if (!req->resp) {
        /* The line, less its "\n" and an optional '\r', fits inline_max. */
        size_t line = consumed - 1;
        if (line > 0 && buf[line - 1] == '\r')
            line--;
        CHECK(line <= h->lim.inline_max);
        CHECK(buf[consumed - 1] == '\n');
        CHECK(memchr(buf, '\n', consumed - 1) == NULL);
    }
    check_roundtrip(req);
    check_prefixes(buf, consumed, h);
}

static void configure(struct harness *h, const uint8_t *conf)
{
    akv_proto_limits_default(&h->lim);
    if (!(conf[2] & 0x80)) {
        h->lim.inline_max = conf[2] & 0x7f;
        h->lim.bulk_max = conf[3] & 0x7f;
    }
    if (!(conf[4] & 0x80))
        h->lim.argc_max = conf[4] & 0x1f;
    h->argv_cap = conf[0] & 0x0f;
    h->scratch_cap = conf[1] & 0x80 ? h->lim.inline_max : conf[1] & 0x3fu;
    h->scratch_enough = h->scratch_cap >= h->lim.inline_max;
    h->argv = xmalloc(h->argv_cap * sizeof *h->argv);
    h->scratch = xmalloc(h->scratch_cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct harness h;
    char *buf;
    size_t len, off = 0;

    if (size < CONF_LEN)
        return 0;
    configure(&h, data);
    len = size - CONF_LEN;
    buf = xmalloc(len);
    memcpy(buf, data + CONF_LEN, len);

    for (;;) {
        struct akv_proto_req req = {.argv = h.argv,
                                    .argv_cap = h.argv_cap,
                                    .scratch = h.scratch,
                                    .scratch_cap = h.scratch_cap};
        const char *msg = NULL;
        size_t rest = len - off, need = 0;
        long r = akv_proto_parse(buf + off, rest, &h.lim, &req, &msg, &need);

        if (r == AKV_PROTO_ERR_TOO_MANY) {
            /* What the connection does: grow argv to the size asked for and
             * try the same bytes again, which must not ask again. */
            CHECK(msg != NULL);
            CHECK(need > h.argv_cap && need <= h.lim.argc_max);
            free(h.argv);
            h.argv_cap = need;
            h.argv = xmalloc(need * sizeof *h.argv);
            req.argv = h.argv;
            req.argv_cap = h.argv_cap;
            r = akv_proto_parse(buf + off, rest, &h.lim, &req, &msg, NULL);
            CHECK(r != AKV_PROTO_ERR_TOO_MANY);
        }
        if (r > 0) {
            check_request(buf + off, rest, r, &h, &req);
            off += (size_t)r;
            continue;
        }
        if (r == AKV_PROTO_NEED_MORE) {
            CHECK(req.need_len > rest);
        } else {
            CHECK(r == AKV_PROTO_ERR_SYNTAX || r == AKV_PROTO_ERR_TOO_BIG);
            CHECK(msg != NULL && strncmp(msg, "Protocol error: ", 16) == 0);
            CHECK(req.need_len == 0);
            /* scratch_cap >= inline_max is documented to be enough. */
            CHECK(!h.scratch_enough || strstr(msg, "scratch") == NULL);
        }
        break;
    }
    free(buf);
    free(h.argv);
    free(h.scratch);
    return 0;
}
