/*
 * reply.h - the reply writer: appends RESP2 or RESP3 replies to a growable
 * byte buffer (util/buf.h). Pure: no I/O. Threading: one owner per buffer.
 *
 * Most reply types are the same in both protocols. The functions that take
 * `resp` (2 or 3) write the RESP3 type after HELLO 3 and its RESP2 stand-in
 * otherwise, as Redis does: a map is a flat array of 2n items, a set an
 * array, a double a bulk string, a boolean the integer 1 or 0, a null the
 * null bulk string (or the null array where Redis sends one), a verbatim
 * string a bulk string.
 *
 * Every function that can fail leaves the buffer as it was when it fails, so
 * a reply is either appended whole or not at all.
 */
#ifndef ATTNKV_REPLY_H
#define ATTNKV_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Each returns 0 or -ENOMEM. Status and error text must not contain CR/LF
 * (they are replaced by spaces). */
int akv_reply_status(struct akv_buf *b, const char *s); /* +s */
int akv_reply_error(struct akv_buf *b, const char *s);  /* -s  (s includes "ERR ...") */
/* As akv_reply_error with printf formatting; also -EINVAL if vsnprintf fails. */
int akv_reply_errorf(struct akv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int akv_reply_int(struct akv_buf *b, int64_t v);                /* :v */
int akv_reply_bulk(struct akv_buf *b, const void *p, size_t n); /* $n p */
int akv_reply_bulk_str(struct akv_buf *b, const char *s);
/* The shortest of %.6g ... %.17g that reads back as v ("0.5", "1e-07",
 * "0.3333333333333333"); "inf", "-inf" and "nan" as Redis writes them. */
int akv_reply_bulk_double(struct akv_buf *b, double v);
int akv_reply_nil(struct akv_buf *b);             /* $-1 */
int akv_reply_array(struct akv_buf *b, size_t n); /* *n header */
int akv_reply_nil_array(struct akv_buf *b);       /* *-1 */

/* Protocol-dependent types (see above); resp is 2 or 3. */
int akv_reply_map(struct akv_buf *b, int resp, size_t n); /* %n, or *2n: n key/value pairs follow */
int akv_reply_set(struct akv_buf *b, int resp, size_t n); /* ~n, or *n */
int akv_reply_double(struct akv_buf *b, int resp, double v); /* ,v or a bulk as bulk_double */
int akv_reply_bool(struct akv_buf *b, int resp, int v);      /* #t/#f, or :1/:0 */
int akv_reply_null(struct akv_buf *b, int resp);             /* _, or $-1 */
int akv_reply_null_array(struct akv_buf *b, int resp);       /* _, or *-1 */
/* A push (RESP3 >n; RESP2 an array *n), for MONITOR-style out-of-band data. */
int akv_reply_push(struct akv_buf *b, int resp, size_t n);
/* Text for people (INFO, CLIENT LIST, LATENCY DOCTOR): RESP3's verbatim
 * string "=<n+4>\r\ntxt:<text>\r\n", or a bulk string. */
int akv_reply_verbatim(struct akv_buf *b, int resp, const void *p, size_t n);

#endif
