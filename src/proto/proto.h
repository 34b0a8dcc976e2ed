/*
 * proto.h - the request parser: pure, bytes in, one parsed request (or "need
 * more", or an error) out. No I/O, no allocation, no global state.
 *
 * Two request forms share one connection:
 *   - RESP2 (first byte '*'): an array of bulk strings, as redis-cli,
 *     redis-benchmark and Redis client libraries send. Arguments point into
 *     the caller's buffer.
 *   - Inline (anything else): one line ending in "\n" or "\r\n", split into
 *     arguments by akv_text_split_next (util/text.h, the syntax the
 *     configuration file shares): blanks (space, tab, CR, VT, FF) separate
 *     them; "double quotes" take \n \r \t \b \a \xHH escapes (any other
 *     escaped byte stands for itself, as in Redis, so "\xZZ" decodes to
 *     "xZZ") and 'single quotes' (only \' escaped) group a phrase. A quote
 *     may start in the middle of an argument (foo"bar" is "foobar") but a
 *     closing quote must be followed by a blank or the end of the line.
 *     Empty lines are consumed and yield a request with argc == 0.
 *     Arguments without quotes point into the caller's buffer; arguments with
 *     quotes are decoded into the caller's scratch buffer and point there.
 *
 * Ownership: the parser keeps nothing. argv[i].p points into buf (valid while
 * those bytes stay where they are, so run or copy the command before
 * compacting the input buffer) or into scratch (valid until the next call
 * that uses the same scratch). Arguments are not NUL-terminated.
 *
 * Threading: none; call from any thread on buffers it owns.
 */
#ifndef ATTNKV_PROTO_H
#define ATTNKV_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Results of akv_proto_parse besides "bytes consumed" (> 0). */
enum {
    AKV_PROTO_NEED_MORE = 0,     /* a complete request is not buffered yet */
    AKV_PROTO_ERR_SYNTAX = -1,   /* malformed request; reply and close */
    AKV_PROTO_ERR_TOO_BIG = -2,  /* a limit was exceeded; reply and close */
    AKV_PROTO_ERR_TOO_MANY = -3, /* more arguments than argv can hold */
};

struct akv_slice {
    const char *p;
    size_t len;
};

struct akv_proto_limits {
    size_t inline_max; /* longest inline line without its "\n" or "\r\n", bytes (default 64 KiB) */
    size_t bulk_max;   /* largest RESP bulk string, bytes (default 512 MiB) */
    size_t argc_max;   /* most arguments in one request, RESP or inline (default 1024 * 1024) */
};

struct akv_proto_req {
    /* Filled by the parser. */
    size_t argc;
    int resp;        /* 1 if the request was RESP2, 0 if inline */
    size_t need_len; /* after AKV_PROTO_NEED_MORE: a lower bound on the
                        buffered length at which a retry can return a whole
                        request (always > len); 0 after any other result.
                        Optional: a caller may skip calls until len reaches
                        it, which keeps a large request arriving in small
                        pieces from being rescanned for every piece. */
    /* Provided by the caller before each call. */
    struct akv_slice *argv; /* room for argv_cap arguments (may be NULL if 0) */
    size_t argv_cap;
    char *scratch;      /* room for decoded quoted inline arguments */
    size_t scratch_cap; /* >= inline_max is always enough */
};

/* Fills *l with the defaults above. */
void akv_proto_limits_default(struct akv_proto_limits *l);

/* Parses at most one request from buf[0..len); lim NULL means the defaults.
 * Returns the number of bytes it used (> 0) with req->argc and req->argv[]
 * filled; AKV_PROTO_NEED_MORE (with req->need_len); or a negative
 * AKV_PROTO_ERR_* with a short reason in *errmsg (a static string, e.g.
 * "Protocol error: invalid bulk length"; errmsg may be NULL).
 *
 * AKV_PROTO_ERR_TOO_MANY means argv_cap is too small: *need_argc (may be
 * NULL) is the exact number of slots the request needs, never more than
 * lim->argc_max. For RESP this is known, and returned, as soon as the "*<n>"
 * header is buffered; for inline requests once the whole line is. Nothing was
 * consumed: grow argv and call again with the same bytes.
 *
 * Every other error means the stream cannot be resynchronised: reply with
 * "-ERR <errmsg>" (Redis sends "-ERR Protocol error: ...") and close.
 * AKV_PROTO_ERR_TOO_BIG also covers a scratch buffer smaller than the quoted
 * text of an inline line, which cannot happen when scratch_cap >= inline_max.
 *
 * Each call starts afresh at buf[0]; the parser keeps nothing between calls
 * and never reads buf[len] or beyond. */
long akv_proto_parse(const char *buf, size_t len, const struct akv_proto_limits *lim,
                     struct akv_proto_req *req, const char **errmsg, size_t *need_argc);

#endif
