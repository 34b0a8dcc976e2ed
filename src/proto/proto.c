/*
 * proto.c - the request parser declared in proto.h.
 *
 * Design: akv_proto_parse keeps no state between calls. Every call starts at
 * the first byte of a request and ends with a whole request, "need more" or
 * an error, so a prefix of a valid request can never be mistaken for a
 * different request, and tests and fuzzers can feed it any bytes. The price
 * of statelessness is that an incomplete request is rescanned on each call;
 * the scan of a RESP request skips bulk data by its length, an inline line is
 * one memchr, and req->need_len lets a caller skip calls that cannot succeed.
 *
 * Invariants: reads only buf[0..len); writes only argv[0..argv_cap) and
 * scratch[0..scratch_cap); no allocation, no I/O, no globals besides the
 * const error strings. Every length is checked against a limit before it is
 * used, and arithmetic on client-supplied lengths saturates instead of
 * wrapping around.
 *
 * Threading: none.
 */
#include "proto/proto.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "util/text.h"

/* Longest "*<count>" or "$<length>" header line we wait for before its CRLF.
 * The longest valid one is "$" plus the 20 digits of SIZE_MAX, so a client
 * that sends more without a CRLF is not speaking RESP, and we must not buffer
 * its bytes while waiting. */
#define HEADER_MAX 32

/* The smallest encoding of one bulk string, "$0\r\n\r\n": what each argument
 * still owed by a RESP request adds, at the least, to need_len. */
#define BULK_MIN 6

static const char ERR_MBULK_LEN[] = "Protocol error: invalid multibulk length";
static const char ERR_MBULK_LONG[] = "Protocol error: too big mbulk count string";
static const char ERR_BULK_LEN[] = "Protocol error: invalid bulk length";
static const char ERR_BULK_LONG[] = "Protocol error: too big bulk count string";
static const char ERR_DOLLAR[] = "Protocol error: expected '$'";
static const char ERR_BULK_CRLF[] = "Protocol error: expected CRLF after bulk data";
static const char ERR_INLINE_BIG[] = "Protocol error: too big inline request";
static const char ERR_QUOTES[] = "Protocol error: unbalanced quotes in request";
static const char ERR_ARGC[] = "Protocol error: too many arguments";
static const char ERR_SCRATCH[] = "Protocol error: quoted arguments do not fit the scratch buffer";
static const char ERR_ARGV[] = "Protocol error: more arguments than argv can hold";
static const char ERR_REQ_BIG[] = "Protocol error: request too big";

void akv_proto_limits_default(struct akv_proto_limits *l)
{
    l->inline_max = (size_t)64 * 1024;
    l->bulk_max = (size_t)512 * 1024 * 1024;
    l->argc_max = (size_t)1024 * 1024;
}

static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t mul_sat(size_t a, size_t b)
{
    return b != 0 && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static long fail(const char **errmsg, long code, const char *msg)
{
    if (errmsg)
        *errmsg = msg;
    return code;
}

/* A request that parsed is returned as a long; only a 32-bit build could
 * ever see one that does not fit, and then it is simply too big. */
static long done(const char **errmsg, size_t consumed)
{
    if (consumed > (size_t)LONG_MAX)
        return fail(errmsg, AKV_PROTO_ERR_TOO_BIG, ERR_REQ_BIG);
    return (long)consumed;
}

/*
 * Reads the header line "*<count>\r\n" or "$<length>\r\n" that starts at
 * buf[start] (whose '*' or '$' the caller checked). Returns 1 with *value
 * and *next (the index after the CRLF) set; 0 if the line is still
 * incomplete; or a negative AKV_PROTO_ERR_* with *errmsg set.
 *
 * A byte that can never belong to a header fails at once, so garbage is
 * rejected without waiting for a CRLF that may never come; everything else
 * (empty number, leading zeros, the limit) is judged when the CRLF arrives,
 * which keeps every prefix of a valid header a "need more". Only "*" headers
 * accept "-1", the null array, which Redis treats as an empty request; it is
 * returned as a count of 0.
 */
static long read_header(const char *buf, size_t len, size_t start, size_t max, size_t *value,
                        size_t *next, const char **errmsg)
{
    int array = buf[start] == '*';
    const char *bad = array ? ERR_MBULK_LEN : ERR_BULK_LEN;
    size_t i = start + 1, first, v = 0;
    int neg = 0, over = 0;

    if (array && i < len && buf[i] == '-') {
        neg = 1;
        i++;
    }
    first = i;
    for (;; i++) {
        if (i - start >= HEADER_MAX)
            return fail(errmsg, AKV_PROTO_ERR_SYNTAX, array ? ERR_MBULK_LONG : ERR_BULK_LONG);
        if (i >= len)
            return 0;
        if (buf[i] == '\r')
            break;
        if (buf[i] < '0' || buf[i] > '9')
            return fail(errmsg, AKV_PROTO_ERR_SYNTAX, bad);
        size_t d = (size_t)(buf[i] - '0');
        if (v > (SIZE_MAX - d) / 10)
            over = 1;
        else
            v = v * 10 + d;
    }
    /* buf[i] is the '\r'; its '\n' may not have arrived yet. */
    if (i + 1 >= len)
        return 0;
    if (buf[i + 1] != '\n')
        return fail(errmsg, AKV_PROTO_ERR_SYNTAX, bad);
    /* Digits only, at least one, and no leading zeros: as strict as Redis's
     * string2ll, so one value has exactly one spelling. */
    if (i == first || (i - first > 1 && buf[first] == '0'))
        return fail(errmsg, AKV_PROTO_ERR_SYNTAX, bad);
    if (neg) {
        if (i - first != 1 || v != 1)
            return fail(errmsg, AKV_PROTO_ERR_SYNTAX, bad);
        v = 0;
    } else if (over || v > max) {
        return fail(errmsg, AKV_PROTO_ERR_TOO_BIG, bad);
    }
    *value = v;
    *next = i + 2;
    return 1;
}

static long parse_resp(const char *buf, size_t len, const struct akv_proto_limits *lim,
                       struct akv_proto_req *req, const char **errmsg, size_t *need_argc)
{
    size_t argc, pos, i;
    long r;

    req->resp = 1;
    r = read_header(buf, len, 0, lim->argc_max, &argc, &pos, errmsg);
    if (r == 0) {
        req->need_len = add_sat(len, 1);
        return AKV_PROTO_NEED_MORE;
    }
    if (r < 0)
        return r;
    /* Say so now, before the arguments arrive, so the connection can size
     * its argv once instead of discovering the count at the end. */
    if (argc > req->argv_cap) {
        if (need_argc)
            *need_argc = argc;
        return fail(errmsg, AKV_PROTO_ERR_TOO_MANY, ERR_ARGV);
    }

    for (i = 0; i < argc; i++) {
        /* What the arguments after this one need at the very least. */
        size_t rest = mul_sat(argc - i - 1, BULK_MIN);
        size_t blen, data;

        if (pos >= len) {
            req->need_len = add_sat(add_sat(pos, BULK_MIN), rest);
            return AKV_PROTO_NEED_MORE;
        }
        if (buf[pos] != '$')
            return fail(errmsg, AKV_PROTO_ERR_SYNTAX, ERR_DOLLAR);
        r = read_header(buf, len, pos, lim->bulk_max, &blen, &data, errmsg);
        if (r == 0) {
            size_t min_end = add_sat(pos, BULK_MIN);
            if (min_end <= len)
                min_end = add_sat(len, 1);
            req->need_len = add_sat(min_end, rest);
            return AKV_PROTO_NEED_MORE;
        }
        if (r < 0)
            return r;
        /* data <= len here. The bulk may hold any bytes, "\r\n" included,
         * so only its length says where it ends; check each byte of the
         * CRLF as soon as it is there. */
        if (len - data <= blen) {
            req->need_len = add_sat(add_sat(add_sat(data, blen), 2), rest);
            return AKV_PROTO_NEED_MORE;
        }
        if (buf[data + blen] != '\r')
            return fail(errmsg, AKV_PROTO_ERR_SYNTAX, ERR_BULK_CRLF);
        if (len - data - blen < 2) {
            req->need_len = add_sat(add_sat(data + blen, 2), rest);
            return AKV_PROTO_NEED_MORE;
        }
        if (buf[data + blen + 1] != '\n')
            return fail(errmsg, AKV_PROTO_ERR_SYNTAX, ERR_BULK_CRLF);
        req->argv[i].p = buf + data;
        req->argv[i].len = blen;
        pos = data + blen + 2;
    }
    req->argc = argc;
    return done(errmsg, pos);
}

static long parse_inline(const char *buf, size_t len, const struct akv_proto_limits *lim,
                         struct akv_proto_req *req, const char **errmsg, size_t *need_argc)
{
    /* A line of inline_max bytes may be followed by "\r\n", so look that far
     * for the '\n' and no further: a client must not make us scan, or
     * buffer, an unbounded line. */
    size_t window = add_sat(lim->inline_max, 2);
    const char *nl = memchr(buf, '\n', len < window ? len : window);
    size_t n, argc = 0, i = 0, used = 0;
    /* A NULL scratch has no room, whatever scratch_cap says. */
    size_t scratch_cap = req->scratch ? req->scratch_cap : 0;
    char no_scratch;

    if (!nl) {
        if (len <= lim->inline_max ||
            (len - 1 == lim->inline_max && buf[lim->inline_max] == '\r')) {
            req->need_len = add_sat(len, 1);
            return AKV_PROTO_NEED_MORE;
        }
        return fail(errmsg, AKV_PROTO_ERR_TOO_BIG, ERR_INLINE_BIG);
    }
    n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > lim->inline_max)
        return fail(errmsg, AKV_PROTO_ERR_TOO_BIG, ERR_INLINE_BIG);

    for (;;) {
        struct akv_text_arg arg;
        const char *why;
        int store = argc < req->argv_cap;
        /* Once argv is full the line is only scanned on, to count the
         * arguments and find quoting errors: quoted ones are measured. */
        char *out = !store ? NULL : req->scratch ? req->scratch + used : &no_scratch;
        int r = akv_text_split_next(buf, n, &i, out, store ? scratch_cap - used : 0, &arg, &why);

        if (r == 0)
            break;
        if (r == -ENOSPC)
            return fail(errmsg, AKV_PROTO_ERR_TOO_BIG, ERR_SCRATCH);
        if (r < 0)
            return fail(errmsg, AKV_PROTO_ERR_SYNTAX, ERR_QUOTES);
        if (store) {
            /* An empty quoted argument may have no scratch to point into;
             * any valid pointer will do for zero bytes. */
            req->argv[argc].p = arg.quoted ? (req->scratch ? req->scratch + used : buf) : arg.p;
            req->argv[argc].len = arg.len;
            if (arg.quoted)
                used += arg.len;
        }
        argc++;
    }

    if (argc > lim->argc_max)
        return fail(errmsg, AKV_PROTO_ERR_TOO_BIG, ERR_ARGC);
    if (argc > req->argv_cap) {
        if (need_argc)
            *need_argc = argc;
        return fail(errmsg, AKV_PROTO_ERR_TOO_MANY, ERR_ARGV);
    }
    req->argc = argc;
    return done(errmsg, (size_t)(nl - buf) + 1);
}

long akv_proto_parse(const char *buf, size_t len, const struct akv_proto_limits *lim,
                     struct akv_proto_req *req, const char **errmsg, size_t *need_argc)
{
    struct akv_proto_limits def;

    if (!lim) {
        akv_proto_limits_default(&def);
        lim = &def;
    }
    req->argc = 0;
    req->resp = 0;
    req->need_len = 0;
    if (len == 0) {
        req->need_len = 1;
        return AKV_PROTO_NEED_MORE;
    }
    /* Redis decides by the first byte too: everything but '*' is inline. */
    if (buf[0] == '*')
        return parse_resp(buf, len, lim, req, errmsg, need_argc);
    return parse_inline(buf, len, lim, req, errmsg, need_argc);
}
