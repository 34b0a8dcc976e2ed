/*
 * buf.h - a growable byte buffer: the connections' input and output, the
 * replies, the AOF's pending records and rewrite buffers.
 *
 * Pure memory: no I/O. Threading: one owner per buffer.
 */
#ifndef ATTNKV_BUF_H
#define ATTNKV_BUF_H

#include <stddef.h>

/* p[0..len) holds the bytes; the buffer owns p (malloc'd, NULL
 * while cap is 0) and frees it in akv_buf_fini. */
struct akv_buf {
    char *p;
    size_t len;
    size_t cap;
};

void akv_buf_init(struct akv_buf *b);
void akv_buf_fini(struct akv_buf *b);                 /* NULL is a no-op; b is reusable after */
int akv_buf_reserve(struct akv_buf *b, size_t extra); /* 0 or -ENOMEM; capacity doubles */
int akv_buf_append(struct akv_buf *b, const void *p, size_t n);
/* Drops the first n bytes (after they were written out) by moving the rest
 * to the front; n >= len empties the buffer. Capacity is kept. */
void akv_buf_consume(struct akv_buf *b, size_t n);
/* Appends printf-formatted text (no terminating NUL counted in len).
 * Returns 0, -ENOMEM or -EINVAL (a bad format); on failure the buffer is as
 * it was. */
int akv_buf_printf(struct akv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
