/*
 * vecload.c - readers for GloVe text, word2vec text and word2vec binary
 * files, plain or gzip-compressed, from a file, standard input or memory.
 *
 * Every source is read in large blocks into one buffer, and rows are parsed
 * in place: a text row is located with memchr and its values are converted
 * with strtof straight from the buffer, so a load does no allocation per row
 * besides what the table itself needs. The process never calls setlocale,
 * so strtof reads '.' as the decimal point and rounds correctly.
 *
 * Buffer invariants: the unread bytes are buf[pos, end); buf has one byte
 * more than cap so that a final line without '\n' can be given a
 * terminator, which keeps strtof from ever reading past the end of the data.
 * The buffer starts small (a small input gets a buffer of its own size) and
 * doubles when one unread row fills more than half of it, up to BUF_CAP.
 * A text row may be at most ROW_MAX bytes long; longer rows are skipped
 * without being held in memory, so no input can make the buffer grow further.
 *
 * What is skipped and what stops a load is the policy written in vecload.h.
 * When a row has several problems, the one reported is the first in this
 * order: ragged, not a number, not finite, bad word, duplicate.
 *
 * Threading: none; each call uses only its own state.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unistr.h>
#include <zlib.h>

#include "attnkv/vecload.h"
#include "util/text.h"

/* Longest text row, in bytes. The longest sensible row (a 1024-byte word and
 * 4096 values printed with full precision) is well under 100 KiB. */
#define ROW_MAX (1u << 20)
/* Bytes asked of the source at a time. */
#define CHUNK (1u << 20)
/* Most bytes asked of gzread at a time (see src_read). */
#define GZ_READ_MAX (64u << 10)
/* The buffer's first and largest sizes: the largest holds one maximal row
 * plus room to read behind it. */
#define BUF_FIRST (256u << 10)
#define BUF_CAP (ROW_MAX + 2 * CHUNK)
/* How often the progress callback is called, in rows. */
#define PROGRESS_ROWS 65536
#define STR_(x) #x
#define STR(x) STR_(x)

/* Default number of warnings printed per kind of skipped row. */
#define DIAG_DEFAULT 10

enum src_kind { SRC_MEM, SRC_MEM_GZ, SRC_GZFILE };

struct loader {
    /* Where the bytes come from. */
    enum src_kind kind;
    const unsigned char *mem; /* SRC_MEM, SRC_MEM_GZ */
    size_t mem_len;
    size_t mem_pos; /* SRC_MEM: bytes copied so far */
    z_stream zs;    /* SRC_MEM_GZ */
    int zs_live;
    gzFile gz; /* SRC_GZFILE */
    int src_eof;
    int pend_code; /* an error met after some bytes were produced */
    char pend_msg[128];
    uint64_t bytes_total;

    /* The read buffer: unread bytes are buf[pos, end); cap + 1 bytes. */
    char *buf;
    size_t cap;
    size_t pos;
    size_t end;

    const char *name;
    uint64_t line; /* number of the last line (or binary row) read; the header is line 1 */
    struct akv_vecload_opts o;
    unsigned max_diag;
    struct akv_vectab *t;
    struct akv_vecload_stats *st;
    uint64_t nskipped;
    uint64_t next_progress;
    char *err;
    size_t errlen;
    float row[AKV_DIM_MAX];
};

const char *akv_vecfmt_name(enum akv_vecfmt f)
{
    switch (f) {
    case AKV_VECFMT_AUTO:
        return "auto";
    case AKV_VECFMT_GLOVE:
        return "glove";
    case AKV_VECFMT_W2V_TEXT:
        return "word2vec-text";
    case AKV_VECFMT_W2V_BIN:
        return "word2vec-binary";
    }
    return "unknown";
}

/* ---- messages ---------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static int fail_at(struct loader *L, uint64_t line, int code,
                                                         const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!L->err || L->errlen == 0)
        return code;
    n = snprintf(L->err, L->errlen, "%s:%llu: ", L->name, (unsigned long long)(line ? line : 1));
    if (n >= 0 && (size_t)n < L->errlen) {
        va_start(ap, fmt);
        vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

__attribute__((format(printf, 3, 4))) static void warn_at(struct loader *L, uint64_t line,
                                                          const char *fmt, ...)
{
    va_list ap;

    if (!L->o.diag)
        return;
    fprintf(L->o.diag, "%s:%llu: ", L->name, (unsigned long long)line);
    va_start(ap, fmt);
    vfprintf(L->o.diag, fmt, ap);
    va_end(ap);
    fputc('\n', L->o.diag);
}

/* Counts a skipped row of the given kind and reports it while that kind is
 * under its quota. Returns 0, or -EINVAL once more than max_bad rows have
 * been skipped. */
__attribute__((format(printf, 3, 4))) static int skip(struct loader *L, enum akv_vecload_skip kind,
                                                      const char *fmt, ...)
{
    va_list ap;

    L->st->skipped[kind]++;
    L->nskipped++;
    if (L->o.diag && L->st->skipped[kind] <= L->max_diag) {
        fprintf(L->o.diag, "%s:%llu: ", L->name, (unsigned long long)L->line);
        va_start(ap, fmt);
        vfprintf(L->o.diag, fmt, ap);
        va_end(ap);
        fputc('\n', L->o.diag);
    }
    if (L->o.max_bad && L->nskipped > L->o.max_bad)
        return fail_at(L, L->line, -EINVAL, "too many malformed rows (%llu, the limit is %llu)",
                       (unsigned long long)L->nskipped, (unsigned long long)L->o.max_bad);
    return 0;
}

/* ---- sources ----------------------------------------------------------- */

static int is_gzip(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

static uint64_t src_offset(const struct loader *L)
{
    z_off_t off;

    switch (L->kind) {
    case SRC_MEM:
        return L->mem_pos;
    case SRC_MEM_GZ:
        return (uint64_t)((const unsigned char *)L->zs.next_in - L->mem);
    case SRC_GZFILE:
        off = gzoffset(L->gz);
        return off > 0 ? (uint64_t)off : 0;
    }
    return 0;
}

/* Inflates up to n bytes of gzip data held in memory. Several gzip members
 * in a row are read as one stream, as gzip -d does; bytes after the last
 * member that do not start another one are ignored, as gzread ignores them.
 * An error met after some output was produced is kept for the next call,
 * so that it is reported on the line it actually cuts. */
static int src_inflate(struct loader *L, char *dst, size_t n, size_t *got)
{
    z_stream *zs = &L->zs;
    const char *pre = "", *msg = NULL;
    int code = 0, r;

    zs->next_out = (Bytef *)dst;
    zs->avail_out = (uInt)n;
    while (zs->avail_out > 0) {
        size_t used = (size_t)((const unsigned char *)zs->next_in - L->mem);
        if (zs->avail_in == 0) {
            size_t left = L->mem_len - used;
            if (left == 0) {
                code = -EINVAL;
                msg = "gzip data is cut short";
                break;
            }
            zs->avail_in = left > CHUNK ? CHUNK : (uInt)left;
        }
        r = inflate(zs, Z_NO_FLUSH);
        if (r == Z_STREAM_END) {
            used = (size_t)((const unsigned char *)zs->next_in - L->mem);
            if (is_gzip(L->mem + used, L->mem_len - used) && inflateReset(zs) == Z_OK)
                continue;
            L->src_eof = 1;
            break;
        }
        if (r == Z_MEM_ERROR) {
            code = -ENOMEM;
            msg = "out of memory inflating gzip data";
            break;
        }
        if (r != Z_OK) {
            code = -EINVAL;
            pre = "gzip data does not inflate: ";
            msg = zs->msg ? zs->msg : "corrupt stream";
            break;
        }
    }
    *got = n - zs->avail_out;
    if (code) {
        snprintf(L->pend_msg, sizeof(L->pend_msg), "%s%s", pre, msg);
        L->pend_code = code;
        if (*got == 0)
            return fail_at(L, L->line + 1, code, "%s", L->pend_msg);
    }
    return 0;
}

/* Reads up to n bytes into dst; *got == 0 means the end of the input.
 * Returns 0 or a negative errno with err set. */
static int src_read(struct loader *L, char *dst, size_t n, size_t *got)
{
    int k, errnum;
    const char *msg;

    *got = 0;
    if (L->pend_code)
        return fail_at(L, L->line + 1, L->pend_code, "%s", L->pend_msg);
    if (L->src_eof)
        return 0;
    switch (L->kind) {
    case SRC_MEM:
        if (n > L->mem_len - L->mem_pos)
            n = L->mem_len - L->mem_pos;
        memcpy(dst, L->mem + L->mem_pos, n);
        L->mem_pos += n;
        *got = n;
        /* Saying so now spares the caller a read that would return 0. */
        if (L->mem_pos == L->mem_len)
            L->src_eof = 1;
        break;
    case SRC_MEM_GZ:
        return src_inflate(L, dst, n, got);
    case SRC_GZFILE:
        /* gzread drops what it inflated in a call that meets corrupt data,
         * so small calls keep the reported line close to the damage. */
        if (n > GZ_READ_MAX)
            n = GZ_READ_MAX;
        k = gzread(L->gz, dst, (unsigned)n);
        if (k < 0) {
            msg = gzerror(L->gz, &errnum);
            /* zlib names the descriptor ("<fd:3>: ..."); the file name is ours. */
            if (strncmp(msg, "<fd:", 4) == 0 && strstr(msg, ": "))
                msg = strstr(msg, ": ") + 2;
            if (errnum == Z_ERRNO) {
                int e = errno ? errno : EIO;
                return fail_at(L, L->line + 1, -e, "read error: %s", strerror(e));
            }
            if (errnum == Z_MEM_ERROR)
                return fail_at(L, L->line + 1, -ENOMEM, "out of memory inflating gzip data");
            return fail_at(L, L->line + 1, -EINVAL, "gzip data does not inflate: %s", msg);
        }
        if (k == 0) {
            /* gzread reports a stream that ends early only through gzerror. */
            gzerror(L->gz, &errnum);
            if (errnum == Z_BUF_ERROR)
                return fail_at(L, L->line + 1, -EINVAL, "gzip data is cut short");
        }
        *got = (size_t)k;
        break;
    }
    if (*got == 0)
        L->src_eof = 1;
    return 0;
}

/* ---- the buffer -------------------------------------------------------- */

/* Moves the unread bytes to the start of the buffer, grows it if they fill
 * more than half of it, and reads more behind them. *added == 0 means the
 * input has ended. */
static int fill(struct loader *L, size_t *added)
{
    int r;

    *added = 0;
    if (L->src_eof)
        return 0;
    if (L->pos > 0) {
        memmove(L->buf, L->buf + L->pos, L->end - L->pos);
        L->end -= L->pos;
        L->pos = 0;
    }
    if (L->end > L->cap / 2 && L->cap < BUF_CAP) {
        size_t cap = L->cap * 2 < BUF_CAP ? L->cap * 2 : BUF_CAP;
        char *buf = realloc(L->buf, cap + 1);
        if (!buf)
            return fail_at(L, L->line + 1, -ENOMEM, "out of memory");
        L->buf = buf;
        L->cap = cap;
    }
    /* Callers never ask for more than ROW_MAX plus a binary row, which is
     * less than half of BUF_CAP, so there is always room to read into. */
    assert(L->end < L->cap);
    r = src_read(L, L->buf + L->end, L->cap - L->end, added);
    if (r < 0)
        return r;
    L->end += *added;
    L->st->bytes_in = src_offset(L);
    return 0;
}

/* Makes at least n (<= BUF_CAP) bytes readable at pos, unless the input ends
 * first: the caller compares end - pos with n. */
static int want(struct loader *L, size_t n)
{
    size_t added;
    int r;

    while (L->end - L->pos < n) {
        r = fill(L, &added);
        if (r < 0)
            return r;
        if (added == 0)
            break;
    }
    return 0;
}

enum { LINE_EOF = 0, LINE_OK = 1, LINE_LONG = 2 };

/* Finds the next line and counts it. Returns LINE_OK with the line in
 * [*s, *e), without its '\n' and one trailing '\r' (*e itself is readable and
 * is '\r', '\n' or a terminator, so number parsing stops there); LINE_LONG
 * for a line over ROW_MAX bytes, which has been consumed; LINE_EOF; or a
 * negative errno. The line stays valid until the next call. */
static int next_line(struct loader *L, char **s, char **e)
{
    size_t scanned = 0, added;
    char *nl;
    int r;

    for (;;) {
        nl = memchr(L->buf + L->pos + scanned, '\n', L->end - L->pos - scanned);
        if (nl)
            break;
        scanned = L->end - L->pos;
        if (scanned > ROW_MAX) {
            /* Drop what has been read so far and look for the end of the
             * line in fresh blocks. */
            L->line++;
            for (;;) {
                L->pos = L->end;
                r = fill(L, &added);
                if (r < 0)
                    return r;
                if (added == 0)
                    return LINE_LONG;
                nl = memchr(L->buf + L->pos, '\n', L->end - L->pos);
                if (nl) {
                    L->pos = (size_t)(nl - L->buf) + 1;
                    return LINE_LONG;
                }
            }
        }
        r = fill(L, &added);
        if (r < 0)
            return r;
        if (added == 0) {
            if (L->pos == L->end)
                return LINE_EOF;
            /* The last line has no '\n': give it one. */
            L->buf[L->end] = '\n';
            nl = L->buf + L->end;
            break;
        }
    }
    *s = L->buf + L->pos;
    *e = nl;
    L->pos = (size_t)(nl - L->buf) + 1;
    if (L->pos > L->end)
        L->pos = L->end;
    L->line++;
    if ((size_t)(nl - *s) > ROW_MAX)
        return LINE_LONG;
    if (*e > *s && (*e)[-1] == '\r')
        (*e)--;
    return LINE_OK;
}

/* ---- text rows --------------------------------------------------------- */

static int is_sep(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether c may start a number that strtof reads. Checking this first also
 * keeps strtof from skipping whitespace of its own, such as a '\v'. */
static int number_start(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'i' || c == 'I' ||
           c == 'n' || c == 'N';
}

/* Reads one number token at p (the line ends at e). Returns the end of the
 * token, or NULL if the token is not a number. */
static const char *read_number(const char *p, const char *e, float *v)
{
    char *q;

    if (!number_start(*p))
        return NULL;
    *v = strtof(p, &q);
    if (q == p || (q < e && !is_sep(*q)))
        return NULL;
    return q;
}

static const char *skip_seps(const char *p, const char *e)
{
    while (p < e && is_sep(*p))
        p++;
    return p;
}

static const char *token_end(const char *p, const char *e)
{
    while (p < e && !is_sep(*p))
        p++;
    return p;
}

/* Counts the tokens in [p, e), stopping once past limit. */
static uint64_t count_tokens(const char *p, const char *e, uint64_t limit)
{
    uint64_t n = 0;

    for (p = skip_seps(p, e); p < e && n <= limit; p = skip_seps(token_end(p, e), e))
        n++;
    return n;
}

static const char *word_problem(const char *w, size_t len)
{
    if (len == 0)
        return "empty word";
    if (len > AKV_WORD_MAX)
        return "word longer than " STR(AKV_WORD_MAX) " bytes";
    if (memchr(w, '\0', len))
        return "word contains a NUL byte";
    if (u8_check((const uint8_t *)w, len))
        return "word is not valid UTF-8";
    return NULL;
}

static void progress(struct loader *L, int force)
{
    if (!L->o.progress || (!force && L->st->rows < L->next_progress))
        return;
    L->next_progress = L->st->rows + PROGRESS_ROWS;
    L->o.progress(L->o.progress_arg, L->st->rows, L->st->bytes_in, L->bytes_total);
}

/* Adds a row whose values are in L->row, after the checks that every format
 * shares: finite values, a good word, no duplicate. */
static int add_row(struct loader *L, const char *w, size_t wlen)
{
    char q[AKV_QUOTE_BUF];
    const char *why;
    int r;

    for (uint32_t i = 0; i < L->t->dim; i++)
        if (!isfinite(L->row[i]))
            return skip(L, AKV_SKIP_NONFINITE, "value %u is not finite (%g)", i + 1,
                        (double)L->row[i]);
    why = word_problem(w, wlen);
    if (why) {
        akv_quote(q, w, wlen);
        return skip(L, AKV_SKIP_BAD_WORD, "%s: '%s'", why, q);
    }
    r = akv_vectab_add(L->t, w, wlen, L->row);
    if (r == -EEXIST) {
        akv_quote(q, w, wlen);
        return skip(L, AKV_SKIP_DUPLICATE, "duplicate word '%s' (the first one is kept)", q);
    }
    if (r < 0)
        return fail_at(L, L->line, r, "cannot add word: %s", strerror(-r));
    L->st->kept++;
    return 0;
}

/* Parses the text row [s, e) and adds or skips it. */
static int text_row(struct loader *L, const char *s, const char *e)
{
    uint32_t dim = L->t->dim, n = 0;
    const char *p, *q = NULL, *w = s;
    char qt[AKV_QUOTE_BUF];
    size_t wlen;
    uint64_t total;

    p = token_end(s, e);
    wlen = (size_t)(p - s);
    for (p = skip_seps(p, e); p < e; p = skip_seps(q, e)) {
        if (n == dim) {
            total = n + count_tokens(p, e, UINT32_MAX);
            return skip(L, AKV_SKIP_RAGGED, "ragged row: %llu values, expected %u",
                        (unsigned long long)total, dim);
        }
        q = read_number(p, e, &L->row[n]);
        if (!q) {
            /* A row with the wrong number of fields is ragged whatever its
             * fields hold: "new york 0.1 ..." has one value too many. */
            total = n + count_tokens(p, e, UINT32_MAX);
            if (total != dim)
                return skip(L, AKV_SKIP_RAGGED, "ragged row: %llu values, expected %u",
                            (unsigned long long)total, dim);
            akv_quote(qt, p, (size_t)(token_end(p, e) - p));
            return skip(L, AKV_SKIP_NOT_NUMBER, "value %u is not a number: '%s'", n + 1, qt);
        }
        n++;
    }
    if (n != dim)
        return skip(L, AKV_SKIP_RAGGED, "ragged row: %u values, expected %u", n, dim);
    return add_row(L, w, wlen);
}

/* Reads the text rows after the first line until the end of the input. If
 * check_dim is set, the first of them must have exactly dim values (it is
 * how a word2vec header is checked against the rows). */
static int text_rows(struct loader *L, int check_dim)
{
    char *s, *e;
    int r;

    for (;;) {
        r = next_line(L, &s, &e);
        if (r < 0)
            return r;
        if (r == LINE_EOF)
            return 0;
        L->st->rows++;
        if (r == LINE_LONG) {
            if (check_dim)
                return fail_at(L, L->line, -EINVAL,
                               "the first row is longer than %u bytes; is this word2vec text?",
                               ROW_MAX);
            r = skip(L, AKV_SKIP_RAGGED, "ragged row: longer than %u bytes", ROW_MAX);
        } else {
            if (check_dim) {
                const char *p = token_end(s, e);
                uint64_t n = count_tokens(p, e, L->t->dim);
                if (n != L->t->dim)
                    return fail_at(L, L->line, -EINVAL,
                                   "the word2vec header says dim %u but the first row has "
                                   "%s%llu values",
                                   L->t->dim, n > L->t->dim ? "more than " : "",
                                   (unsigned long long)(n > L->t->dim ? L->t->dim : n));
            }
            r = text_row(L, s, e);
        }
        if (r < 0)
            return r;
        check_dim = 0;
        progress(L, 0);
    }
}

/* GloVe: the first row gives the dimension, so it must be all numbers. */
static int load_glove(struct loader *L, int first, const char *s, const char *e)
{
    const char *p, *q = NULL;
    char qt[AKV_QUOTE_BUF];
    uint64_t n;
    float v;
    int r;

    if (first == LINE_LONG)
        return fail_at(L, 1, -EINVAL, "the first row is longer than %u bytes", ROW_MAX);
    p = token_end(s, e);
    n = count_tokens(p, e, AKV_DIM_MAX);
    if (n == 0)
        return fail_at(L, 1, -EINVAL, "no values after the first word, so no dimension");
    if (n > AKV_DIM_MAX)
        return fail_at(L, 1, -EINVAL, "the first row has more than %u values (AKV_DIM_MAX)",
                       AKV_DIM_MAX);
    for (p = skip_seps(p, e); p < e; p = skip_seps(q, e)) {
        q = read_number(p, e, &v);
        if (!q) {
            akv_quote(qt, p, (size_t)(token_end(p, e) - p));
            return fail_at(L, 1, -EINVAL,
                           "cannot read a dimension from the first row: '%s' "
                           "is not a number",
                           qt);
        }
    }
    r = akv_vectab_init(L->t, (uint32_t)n);
    if (r < 0)
        return fail_at(L, 1, r, "bad dimension %llu", (unsigned long long)n);
    L->st->rows++;
    r = text_row(L, s, e);
    if (r < 0)
        return r;
    return text_rows(L, 0);
}

/* ---- word2vec ---------------------------------------------------------- */

/* Parses an unsigned decimal token; returns its end or NULL. *over is set if
 * the value does not fit in 64 bits. */
static const char *read_uint(const char *p, const char *e, uint64_t *v, int *over)
{
    const char *s = p;

    *v = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (*v > (UINT64_MAX - d) / 10)
            *over = 1;
        else
            *v = *v * 10 + d;
    }
    return p > s && (p == e || is_sep(*p)) ? p : NULL;
}

/* Whether [s, e) is a word2vec header: two unsigned integers. Returns 1 if
 * so (with *over set if one does not fit in 64 bits), else 0. */
static int parse_header(const char *s, const char *e, uint64_t *count, uint64_t *dim, int *over)
{
    const char *p = skip_seps(s, e);

    *over = 0;
    p = read_uint(p, e, count, over);
    if (!p)
        return 0;
    p = skip_seps(p, e);
    p = read_uint(p, e, dim, over);
    if (!p)
        return 0;
    return skip_seps(p, e) == e;
}

/* Chooses between word2vec text and binary from the first row. A binary row
 * is the word, a space, then dim float32s whose bytes look random, so they
 * almost surely contain a control byte that text never holds (anything
 * below 0x20 other than tab, CR and LF, or DEL), or a byte >= 0x80 before
 * the first newline (text values are ASCII). Without that evidence the file
 * is taken for text, where a mistake surfaces as an error rather than as a
 * table of made-up values. */
static int detect_binary(struct loader *L, uint32_t dim, int *binary)
{
    const unsigned char *p, *end, *sp;
    size_t n;
    int seen_nl = 0;
    int r;

    /* Look no further than the first row needs, so that an error in the
     * input is met later, on the row it affects. */
    size_t look = AKV_WORD_MAX + 1 + (size_t)dim * 4 + 64;

    *binary = 0;
    r = want(L, look);
    if (r < 0)
        return r;
    p = (const unsigned char *)L->buf + L->pos;
    n = L->end - L->pos;
    end = p + (n > look ? look : n);
    while (p < end && *p == '\n')
        p++;
    n = (size_t)(end - p);
    sp = memchr(p, ' ', n > AKV_WORD_MAX + 1 ? AKV_WORD_MAX + 1 : n);
    if (!sp)
        return 0;
    p = sp + 1;
    n = (size_t)(end - p);
    if (n > (size_t)dim * 4)
        n = (size_t)dim * 4;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\n')
            seen_nl = 1;
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f ||
            (c >= 0x80 && !seen_nl)) {
            *binary = 1;
            return 0;
        }
    }
    return 0;
}

static int load_w2v_bin(struct loader *L, uint64_t count)
{
    size_t vbytes = (size_t)L->t->dim * 4, scanned, wlen, added;
    const unsigned char *b;
    const char *sp;
    uint64_t row;
    int r;

    for (row = 0; row < count; row++) {
        L->line++;
        /* Some writers end a row with '\n', some start the next one with it. */
        for (;;) {
            r = want(L, 1);
            if (r < 0)
                return r;
            if (L->pos == L->end)
                goto cut_short;
            if (L->buf[L->pos] != '\n')
                break;
            L->pos++;
        }
        scanned = 0;
        for (;;) {
            sp = memchr(L->buf + L->pos + scanned, ' ', L->end - L->pos - scanned);
            if (sp)
                break;
            scanned = L->end - L->pos;
            if (scanned > ROW_MAX)
                return fail_at(L, L->line, -EINVAL,
                               "no space after the word within %u bytes; is this word2vec "
                               "binary?",
                               ROW_MAX);
            r = fill(L, &added);
            if (r < 0)
                return r;
            if (added == 0)
                goto cut_short;
        }
        wlen = (size_t)(sp - (L->buf + L->pos));
        if (wlen > ROW_MAX)
            return fail_at(L, L->line, -EINVAL,
                           "no space after the word within %u bytes; is this word2vec binary?",
                           ROW_MAX);
        r = want(L, wlen + 1 + vbytes);
        if (r < 0)
            return r;
        if (L->end - L->pos < wlen + 1 + vbytes)
            goto cut_short;
        L->st->rows++;
        b = (const unsigned char *)L->buf + L->pos + wlen + 1;
        for (uint32_t i = 0; i < L->t->dim; i++, b += 4) {
            uint32_t u =
                (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            memcpy(&L->row[i], &u, sizeof(u));
        }
        r = add_row(L, L->buf + L->pos, wlen);
        L->pos += wlen + 1 + vbytes;
        if (r < 0)
            return r;
        progress(L, 0);
    }

    /* Whatever follows the announced rows is not read as rows: the header is
     * the only framing this format has. */
    for (;;) {
        r = want(L, 1);
        if (r < 0)
            return r;
        if (L->pos == L->end)
            return 0;
        if (L->buf[L->pos] != '\n' && L->buf[L->pos] != '\r')
            break;
        L->pos++;
    }
    warn_at(L, L->line + 1, "data after the %llu rows the word2vec header announced is ignored",
            (unsigned long long)count);
    return 0;

cut_short:
    return fail_at(L, L->line, -EINVAL,
                   "word2vec binary data cut short: the header announced %llu rows, "
                   "%llu are complete",
                   (unsigned long long)count, (unsigned long long)row);
}

static int load_w2v(struct loader *L, enum akv_vecfmt fmt, int first, const char *s, const char *e)
{
    uint64_t count, dim;
    int over, binary, r;

    if (first == LINE_LONG || !parse_header(s, e, &count, &dim, &over))
        return fail_at(L, 1, -EINVAL, "not a word2vec header (\"count dim\")");
    if (over)
        return fail_at(L, 1, -EINVAL, "word2vec header: a number does not fit in 64 bits");
    if (dim == 0 || dim > AKV_DIM_MAX)
        return fail_at(L, 1, -EINVAL, "word2vec header: dimension %llu is not in 1..%u",
                       (unsigned long long)dim, AKV_DIM_MAX);
    r = akv_vectab_init(L->t, (uint32_t)dim);
    if (r < 0)
        return fail_at(L, 1, r, "bad dimension");
    if (fmt == AKV_VECFMT_AUTO) {
        r = detect_binary(L, (uint32_t)dim, &binary);
        if (r < 0)
            return r;
        fmt = binary ? AKV_VECFMT_W2V_BIN : AKV_VECFMT_W2V_TEXT;
    }
    L->st->format = fmt;
    if (fmt == AKV_VECFMT_W2V_BIN)
        return load_w2v_bin(L, count);

    r = text_rows(L, 1);
    if (r < 0)
        return r;
    if (L->st->rows != count)
        warn_at(L, 1, "the word2vec header announced %llu rows but the file has %llu",
                (unsigned long long)count, (unsigned long long)L->st->rows);
    return 0;
}

/* ---- entry points ------------------------------------------------------ */

static int load(struct loader *L)
{
    enum akv_vecfmt fmt = L->o.format;
    uint64_t count, dim;
    char *s = NULL, *e = NULL;
    int first, over, r;

    if ((unsigned)fmt > AKV_VECFMT_W2V_BIN)
        return fail_at(L, 1, -EINVAL, "unknown format %d", (int)fmt);
    L->cap = BUF_FIRST;
    if (L->kind == SRC_MEM && L->mem_len < BUF_FIRST)
        L->cap = L->mem_len + 1;
    L->buf = malloc(L->cap + 1);
    if (!L->buf)
        return fail_at(L, 1, -ENOMEM, "out of memory");

    first = next_line(L, &s, &e);
    if (first < 0)
        return first;
    if (first == LINE_EOF)
        return fail_at(L, 1, -EINVAL, "empty input");
    if (fmt == AKV_VECFMT_AUTO)
        fmt = first == LINE_OK && parse_header(s, e, &count, &dim, &over) ? AKV_VECFMT_AUTO
                                                                          : AKV_VECFMT_GLOVE;
    L->st->format = fmt;
    if (fmt == AKV_VECFMT_GLOVE)
        r = load_glove(L, first, s, e);
    else
        r = load_w2v(L, fmt, first, s, e);
    if (r < 0)
        return r;
    progress(L, 1);
    if (L->t->count == 0)
        return fail_at(L, L->line, -EINVAL, "no usable rows (%llu skipped)",
                       (unsigned long long)L->nskipped);
    return 0;
}

static void loader_setup(struct loader *L, const char *name, const struct akv_vecload_opts *opts,
                         struct akv_vectab *t, struct akv_vecload_stats *st, char *err,
                         size_t errlen)
{
    memset(L, 0, sizeof(*L));
    if (opts)
        L->o = *opts;
    L->max_diag = L->o.max_diag_per_kind ? L->o.max_diag_per_kind : DIAG_DEFAULT;
    L->next_progress = PROGRESS_ROWS;
    L->name = name;
    L->t = t;
    L->st = st;
    L->err = err;
    L->errlen = errlen;
    memset(t, 0, sizeof(*t));
    memset(st, 0, sizeof(*st));
    if (err && errlen)
        err[0] = '\0';
}

static int loader_finish(struct loader *L, int r)
{
    free(L->buf);
    L->buf = NULL;
    if (r < 0)
        akv_vectab_fini(L->t);
    return r;
}

int akv_vecload_mem(const void *buf, size_t len, const char *name,
                    const struct akv_vecload_opts *opts, struct akv_vectab *t,
                    struct akv_vecload_stats *st, char *err, size_t errlen)
{
    struct akv_vecload_stats st_local;
    struct loader *L;
    int r;

    /* The loader holds a row of AKV_DIM_MAX floats: too much for the stack
     * of a thread that may be small. */
    L = malloc(sizeof(*L));
    if (!L) {
        memset(t, 0, sizeof(*t));
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", name ? name : "<memory>");
        return -ENOMEM;
    }
    loader_setup(L, name ? name : "<memory>", opts, t, st ? st : &st_local, err, errlen);
    L->mem = buf;
    L->mem_len = len;
    L->bytes_total = len;
    if (is_gzip(buf, len)) {
        L->kind = SRC_MEM_GZ;
        L->st->gzip = 1;
        L->zs.next_in = (Bytef *)(uintptr_t)buf;
        if (inflateInit2(&L->zs, 16 + MAX_WBITS) != Z_OK) {
            r = fail_at(L, 1, -ENOMEM, "out of memory");
            goto fail;
        }
        L->zs_live = 1;
    } else {
        L->kind = SRC_MEM;
    }
    r = load(L);
fail:
    if (L->zs_live)
        inflateEnd(&L->zs);
    r = loader_finish(L, r);
    free(L);
    return r;
}

int akv_vecload_file(const char *path, const struct akv_vecload_opts *opts, struct akv_vectab *t,
                     struct akv_vecload_stats *st, char *err, size_t errlen)
{
    int stdin_ = strcmp(path, "-") == 0;
    const char *name = stdin_ ? "<stdin>" : path;
    struct akv_vecload_stats st_local;
    struct loader *L = NULL;
    struct stat sb;
    int fd, r;

    memset(t, 0, sizeof(*t));
    if (err && errlen)
        err[0] = '\0';
    /* gzclose closes the descriptor it was given, and standard input must
     * survive the load, so that one is duplicated. */
    fd = stdin_ ? fcntl(0, F_DUPFD_CLOEXEC, 3) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        goto fail;
    }
    if (fstat(fd, &sb) < 0) {
        r = -errno;
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        r = -EISDIR;
        goto fail;
    }
    L = malloc(sizeof(*L));
    if (!L) {
        r = -ENOMEM;
        goto fail;
    }
    loader_setup(L, name, opts, t, st ? st : &st_local, err, errlen);
    L->kind = SRC_GZFILE;
    if (S_ISREG(sb.st_mode))
        L->bytes_total = (uint64_t)sb.st_size;
    L->gz = gzdopen(fd, "rb");
    if (!L->gz) {
        r = -ENOMEM;
        goto fail;
    }
    /* From here on gzclose_r closes fd. */
    gzbuffer(L->gz, GZ_READ_MAX);
    /* gzdirect reads the first bytes: gzip is recognised by its magic. */
    L->st->gzip = !gzdirect(L->gz);
    r = load(L);
    r = loader_finish(L, r);
    gzclose_r(L->gz);
    free(L);
    return r;

fail:
    /* Only errors before the load get here, so the message is "file: why". */
    if (err && errlen)
        snprintf(err, errlen, "%s: %s", name, strerror(-r));
    if (fd >= 0)
        close(fd);
    free(L);
    return r;
}
