/*
 * fuzz-humanize.c - libFuzzer target for akv_humanize_run and
 * akv_humanize_run_many.
 *
 * The input is a stream of replies. It is translated whole with both line
 * endings, then reply by reply, and each result is checked against the
 * translator's contract: both line endings accept the same replies and give
 * the same text but for the endings; the output already in the buffer is
 * kept; an error or "need more" appends nothing; the text of each reply ends
 * with a line ending and holds no control byte but tab and line endings;
 * every proper prefix of a reply that translated is "need more" and appends
 * nothing; translating reply by reply gives what the whole stream gave.
 * Every call reads from a copy of exactly the bytes it is given, so ASan
 * sees any read past them.
 *
 * The same file is linked into test-humanize, which replays
 * fuzz/corpus/humanize and fuzz/regression/humanize through
 * LLVMFuzzerTestOneInput on every "meson test", with or without libFuzzer.
 *
 * Threading: none. A broken invariant prints what broke and aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/humanize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Replies up to this size have every prefix translated again; longer ones
 * a sample, which keeps big inputs from taking quadratic time. */
#define PREFIX_ALL 1024

/* What the output buffers hold before each call, which must stay. */
#define MARK "mark>"
#define MARK_LEN (sizeof MARK - 1)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    CHECK(p != NULL);
    return p;
}

static void marked(struct akv_buf *b)
{
    akv_buf_init(b);
    CHECK(akv_buf_append(b, MARK, MARK_LEN) == 0);
}

/* Runs one translation of a copy of buf[0..len) held in exactly len bytes. */
static long run_copy(const char *buf, size_t len, struct akv_buf *out, unsigned flags, int many)
{
    char *copy = xmalloc(len);
    long r;

    if (len)
        memcpy(copy, buf, len);
    r = many ? akv_humanize_run_many(copy, len, out, flags)
             : akv_humanize_run(copy, len, out, flags);
    free(copy);
    return r;
}

/* The text of whole replies: only printable bytes, tab and line endings,
 * and it ends with one. */
static void check_text(const char *t, size_t n, unsigned flags)
{
    int lf = (flags & AKV_HUMANIZE_LF) != 0;
    size_t i;

    CHECK(n >= (lf ? 1u : 2u));
    CHECK(t[n - 1] == '\n' && (lf || t[n - 2] == '\r'));
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];

        if (c == '\n')
            CHECK(lf || (i > 0 && t[i - 1] == '\r'));
        else if (c == '\r')
            CHECK(!lf && i + 1 < n && t[i + 1] == '\n');
        else
            CHECK((c >= 0x20 || c == '\t') && c != 0x7f);
    }
}

/* Every proper prefix of the reply buf[0..len) is "need more", and leaves
 * the output alone. */
static void check_prefixes(const char *buf, size_t len)
{
    size_t k, step = len <= PREFIX_ALL ? 1 : len / 64;
    struct akv_buf out;

    marked(&out);
    for (k = 0; k < len; k += step) {
        CHECK(run_copy(buf, k, &out, AKV_HUMANIZE_LF, 0) == 0);
        CHECK(out.len == MARK_LEN);
    }
    CHECK(run_copy(buf, len - 1, &out, 0, 0) == 0);
    CHECK(out.len == MARK_LEN && memcmp(out.p, MARK, MARK_LEN) == 0);
    akv_buf_fini(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct akv_buf lf, crlf, steps;
    long r, rc;
    size_t off = 0, i, j;

    marked(&lf);
    marked(&crlf);
    marked(&steps);
    r = run_copy(in, size, &lf, AKV_HUMANIZE_LF, 1);
    rc = run_copy(in, size, &crlf, 0, 1);

    /* The line ending changes nothing but the line endings. */
    CHECK(r == rc);
    CHECK(memcmp(lf.p, MARK, MARK_LEN) == 0 && memcmp(crlf.p, MARK, MARK_LEN) == 0);
    for (i = MARK_LEN, j = MARK_LEN; i < lf.len; i++, j++) {
        if (lf.p[i] == '\n') {
            CHECK(j < crlf.len && crlf.p[j] == '\r');
            j++;
        }
        CHECK(j < crlf.len && crlf.p[j] == lf.p[i]);
    }
    CHECK(j == crlf.len);

    if (r < 0) {
        /* Only the first reply's error is returned, with nothing appended;
         * -ENOMEM cannot happen with inputs this small. */
        CHECK(r == -EPROTO);
        CHECK(lf.len == MARK_LEN);
        CHECK(run_copy(in, size, &steps, AKV_HUMANIZE_LF, 0) == r);
        CHECK(steps.len == MARK_LEN);
        goto out;
    }
    CHECK((size_t)r <= size);
    CHECK((r == 0) == (lf.len == MARK_LEN));

    /* Reply by reply, the same text; the step after the last is "need
     * more" or the error that stopped the whole run. */
    while (off < (size_t)r) {
        size_t before = steps.len;
        long one = run_copy(in + off, size - off, &steps, AKV_HUMANIZE_LF, 0);
        struct akv_buf alone;

        CHECK(one > 0 && (size_t)one <= (size_t)r - off);
        check_text(steps.p + before, steps.len - before, AKV_HUMANIZE_LF);
        /* The reply alone, without the bytes after it, gives the same. */
        marked(&alone);
        CHECK(run_copy(in + off, (size_t)one, &alone, AKV_HUMANIZE_LF, 0) == one);
        CHECK(alone.len - MARK_LEN == steps.len - before);
        CHECK(memcmp(alone.p + MARK_LEN, steps.p + before, steps.len - before) == 0);
        akv_buf_fini(&alone);
        check_prefixes(in + off, (size_t)one);
        off += (size_t)one;
    }
    CHECK(steps.len == lf.len && memcmp(steps.p, lf.p, lf.len) == 0);
    if (off < size) {
        long last = run_copy(in + off, size - off, &steps, AKV_HUMANIZE_LF, 0);

        CHECK(last == 0 || last == -EPROTO);
        CHECK(steps.len == lf.len);
    }
    if (crlf.len > MARK_LEN)
        check_text(crlf.p + MARK_LEN, crlf.len - MARK_LEN, 0);

out:
    /* Unknown flags are refused before anything is read. */
    CHECK(akv_humanize_run(in, size, &steps, 2) == -EINVAL);
    CHECK(akv_humanize_run_many(in, size, &steps, ~0u) == -EINVAL);
    akv_buf_fini(&lf);
    akv_buf_fini(&crlf);
    akv_buf_fini(&steps);
    return 0;
}
