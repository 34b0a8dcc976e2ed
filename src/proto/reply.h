/*
 * reply.h - RESP2 reply writer: appends encoded replies to a growable byte
 * buffer (util/buf.h). Pure: no I/O. Threading: one owner per buffer.
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

#endif
