/*
 * reply.c - the RESP2/RESP3 reply writer declared in reply.h.
 *
 * Invariants: b->p holds b->cap bytes of which the first b->len are encoded
 * replies; p is NULL only while cap is 0. Every encoder reserves all the room
 * it needs before writing a byte, so on -ENOMEM the buffer is exactly as it
 * was and a reply is never half-written.
 *
 * Threading: none; one owner per buffer (the connection's loop thread).
 */
#include "proto/reply.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for a type byte, the 20 digits of UINT64_MAX, a sign and "\r\n". */
#define HEADER_ROOM 32

/* Writes the decimal digits of v at out (no NUL); returns how many. */
static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Appends "<type><v>\r\n", the header of arrays and bulks and the integer
 * reply; neg puts a '-' before the digits. */
static int put_header(struct akv_buf *b, char type, int neg, uint64_t v)
{
    char tmp[HEADER_ROOM];
    size_t n = 0;

    tmp[n++] = type;
    if (neg)
        tmp[n++] = '-';
    n += fmt_u64(tmp + n, v);
    tmp[n++] = '\r';
    tmp[n++] = '\n';
    return akv_buf_append(b, tmp, n);
}

/* A CR or LF inside a status or an error would end the reply early and
 * make the client read the rest as another reply, so they become spaces. */
static void scrub(char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n')
            p[i] = ' ';
}

/* Appends "<type><s[0..n)>\r\n" with CR and LF in s scrubbed. */
static int put_line(struct akv_buf *b, char type, const char *s, size_t n)
{
    int r;

    if (n > SIZE_MAX - 3)
        return -ENOMEM;
    r = akv_buf_reserve(b, n + 3);
    if (r < 0)
        return r;
    b->p[b->len] = type;
    if (n)
        memcpy(b->p + b->len + 1, s, n);
    scrub(b->p + b->len + 1, n);
    b->p[b->len + 1 + n] = '\r';
    b->p[b->len + 2 + n] = '\n';
    b->len += n + 3;
    return 0;
}

int akv_reply_status(struct akv_buf *b, const char *s)
{
    return put_line(b, '+', s, strlen(s));
}

int akv_reply_error(struct akv_buf *b, const char *s)
{
    return put_line(b, '-', s, strlen(s));
}

int akv_reply_errorf(struct akv_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n, r;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return put_line(b, '-', small, (size_t)n);

    /* Too long for the stack: format straight into the buffer, after the
     * '-'. The "\r\n" reserved after the text also covers vsnprintf's NUL. */
    r = akv_buf_reserve(b, (size_t)n + 3);
    if (r < 0)
        return r;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len + 1, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->p[b->len] = '-';
    scrub(b->p + b->len + 1, (size_t)n);
    b->p[b->len + 1 + (size_t)n] = '\r';
    b->p[b->len + 2 + (size_t)n] = '\n';
    b->len += (size_t)n + 3;
    return 0;
}

int akv_reply_int(struct akv_buf *b, int64_t v)
{
    /* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
    if (v < 0)
        return put_header(b, ':', 1, (uint64_t)0 - (uint64_t)v);
    return put_header(b, ':', 0, (uint64_t)v);
}

int akv_reply_bulk(struct akv_buf *b, const void *p, size_t n)
{
    size_t old = b->len;
    int r;

    if (n > SIZE_MAX - HEADER_ROOM - 2)
        return -ENOMEM;
    /* One reservation for header, data and CRLF, so none of the appends
     * below can fail and leave a header without its data. */
    r = akv_buf_reserve(b, HEADER_ROOM + n + 2);
    if (r < 0)
        return r;
    r = put_header(b, '$', 0, (uint64_t)n);
    if (r == 0)
        r = akv_buf_append(b, p, n);
    if (r == 0)
        r = akv_buf_append(b, "\r\n", 2);
    if (r < 0)
        b->len = old;
    return r;
}

int akv_reply_bulk_str(struct akv_buf *b, const char *s)
{
    return akv_reply_bulk(b, s, strlen(s));
}

/* The shortest text that reads back as v, into tmp (64 bytes); returns
 * its length. */
static int fmt_double(char *tmp, double v)
{
    int n = 0, prec;

    if (isnan(v))
        return snprintf(tmp, 64, "nan");
    if (isinf(v))
        return snprintf(tmp, 64, "%s", v > 0 ? "inf" : "-inf");
    /* Start at 6 digits, not 1: %.1g would print 100 as "1e+02", and %g
     * drops trailing zeros anyway, so 0.5 is "0.5" at any precision. Stop at
     * the first precision that reads back as the same double; 17 always
     * does for IEEE doubles. This assumes the "C" LC_NUMERIC locale, which
     * the daemon never changes. */
    for (prec = 6; prec <= 17; prec++) {
        n = snprintf(tmp, 64, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return n;
}

int akv_reply_bulk_double(struct akv_buf *b, double v)
{
    char tmp[64];
    int n = fmt_double(tmp, v);

    return akv_reply_bulk(b, tmp, (size_t)n);
}

int akv_reply_nil(struct akv_buf *b)
{
    return akv_buf_append(b, "$-1\r\n", 5);
}

int akv_reply_array(struct akv_buf *b, size_t n)
{
    return put_header(b, '*', 0, (uint64_t)n);
}

int akv_reply_nil_array(struct akv_buf *b)
{
    return akv_buf_append(b, "*-1\r\n", 5);
}

int akv_reply_map(struct akv_buf *b, int resp, size_t n)
{
    if (resp >= 3)
        return put_header(b, '%', 0, (uint64_t)n);
    return put_header(b, '*', 0, (uint64_t)n * 2);
}

int akv_reply_set(struct akv_buf *b, int resp, size_t n)
{
    return put_header(b, resp >= 3 ? '~' : '*', 0, (uint64_t)n);
}

int akv_reply_push(struct akv_buf *b, int resp, size_t n)
{
    return put_header(b, resp >= 3 ? '>' : '*', 0, (uint64_t)n);
}

int akv_reply_double(struct akv_buf *b, int resp, double v)
{
    char tmp[64];
    int n;

    if (resp < 3)
        return akv_reply_bulk_double(b, v);
    n = fmt_double(tmp, v);
    return put_line(b, ',', tmp, (size_t)n);
}

int akv_reply_bool(struct akv_buf *b, int resp, int v)
{
    if (resp >= 3)
        return akv_buf_append(b, v ? "#t\r\n" : "#f\r\n", 4);
    return akv_reply_int(b, v ? 1 : 0);
}

int akv_reply_null(struct akv_buf *b, int resp)
{
    return resp >= 3 ? akv_buf_append(b, "_\r\n", 3) : akv_reply_nil(b);
}

int akv_reply_null_array(struct akv_buf *b, int resp)
{
    return resp >= 3 ? akv_buf_append(b, "_\r\n", 3) : akv_reply_nil_array(b);
}

int akv_reply_verbatim(struct akv_buf *b, int resp, const void *p, size_t n)
{
    size_t old = b->len;
    int r;

    if (resp < 3)
        return akv_reply_bulk(b, p, n);
    if (n > SIZE_MAX - HEADER_ROOM - 6)
        return -ENOMEM;
    r = akv_buf_reserve(b, HEADER_ROOM + 4 + n + 2);
    if (r < 0)
        return r;
    r = put_header(b, '=', 0, (uint64_t)n + 4);
    if (r == 0)
        r = akv_buf_append(b, "txt:", 4);
    if (r == 0)
        r = akv_buf_append(b, p, n);
    if (r == 0)
        r = akv_buf_append(b, "\r\n", 2);
    if (r < 0)
        b->len = old;
    return r;
}
