/*
 * buf.c - the growable byte buffer (buf.h).
 *
 * Invariants: b->p holds b->cap bytes of which the first b->len are in use;
 * p is NULL only while cap is 0. A failed reserve leaves the buffer as it
 * was.
 */
#include "util/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation: enough for most single replies, small enough that
 * an idle connection costs little. */
#define BUF_MIN 64

void akv_buf_init(struct akv_buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void akv_buf_fini(struct akv_buf *b)
{
    if (!b)
        return;
    free(b->p);
    akv_buf_init(b);
}

int akv_buf_reserve(struct akv_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (extra > SIZE_MAX - b->len)
        return -ENOMEM;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;
    /* Doubling keeps appends amortised O(1); near SIZE_MAX, where doubling
     * would wrap, ask for exactly what is needed instead. */
    cap = b->cap ? b->cap : BUF_MIN;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int akv_buf_append(struct akv_buf *b, const void *p, size_t n)
{
    int r;

    if (n == 0)
        return 0;
    r = akv_buf_reserve(b, n);
    if (r < 0)
        return r;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void akv_buf_consume(struct akv_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

int akv_buf_printf(struct akv_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(small))
        return akv_buf_append(b, small, (size_t)n);
    /* Too long for the stack: format in place; the NUL vsnprintf writes
     * goes in the reserved byte after the text. */
    if (akv_buf_reserve(b, (size_t)n + 1) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
