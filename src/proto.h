/*
 * proto.h - the request parser: pure, bytes in, one parsed request (or "need
 * more", or an error) out. No I/O, no allocation, no global state.
 *
 * Two request forms share one connection:
 *   - RESP2 (first byte '*'): an array of bulk strings, as redis-cli,
 *     redis-benchmark and Redis client libraries send. Arguments point into
 *     the caller's buffer.
 *   - Inline (anything else): one line ending in "\n" or "\r\n", arguments
 *     separated by spaces or tabs; "double quotes" with \" \\ \n \r \t \xHH
 *     escapes and 'single quotes' (only \' escaped) group a phrase. Empty
 *     lines are consumed and yield a request with argc == 0.
 *     Unquoted arguments point into the caller's buffer; quoted arguments
 *     are decoded into the caller's scratch buffer and point there.
 *
 * Threading: none; call from any thread on buffers it owns.
 */
#ifndef ATTNKV_PROTO_H
#define ATTNKV_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Results of akv_proto_parse besides "bytes consumed" (> 0). */
enum {
    AKV_PROTO_NEED_MORE = 0,       /* a complete request is not buffered yet */
    AKV_PROTO_ERR_SYNTAX = -1,     /* malformed request; reply and close */
    AKV_PROTO_ERR_TOO_BIG = -2,    /* a limit was exceeded; reply and close */
    AKV_PROTO_ERR_TOO_MANY = -3,   /* more arguments than argv can hold */
};

struct akv_slice {
    const char *p;
    size_t len;
};

struct akv_proto_limits {
    size_t inline_max;  /* longest inline line, bytes (default 64 KiB) */
    size_t bulk_max;    /* largest RESP bulk string, bytes (default 512 MiB) */
    size_t argc_max;    /* largest RESP array (default 1024 * 1024) */
};

struct akv_proto_req {
    /* Filled by the parser. */
    size_t argc;
    int resp;                 /* 1 if the request was RESP2, 0 if inline */
    /* Provided by the caller before each call. */
    struct akv_slice *argv;   /* room for argv_cap arguments */
    size_t argv_cap;
    char *scratch;            /* room for decoded quoted inline arguments */
    size_t scratch_cap;       /* >= inline_max is always enough */
};

void akv_proto_limits_default(struct akv_proto_limits *l);

/* Parses at most one request from buf[0..len).
 * Returns the number of bytes it used (> 0) with req filled; 
 * AKV_PROTO_NEED_MORE; or a negative AKV_PROTO_ERR_* with a short reason
 * in *errmsg (a static string, e.g. "Protocol error: invalid bulk length").
 * On AKV_PROTO_ERR_TOO_MANY for a RESP request, *need_argc tells how many
 * argument slots a retry needs (may be NULL). */
long akv_proto_parse(const char *buf, size_t len, const struct akv_proto_limits *lim,
                     struct akv_proto_req *req, const char **errmsg, size_t *need_argc);

#endif
