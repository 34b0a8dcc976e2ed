/*
 * humanize.c - the RESP-to-text translator declared in humanize.h.
 *
 * Design: a reply is walked twice by the same code, with a different sink.
 * The first walk checks that the reply is complete and well formed and
 * measures its text without writing anything; the second, over bytes now
 * known to be good, writes the text into room reserved once for all of it.
 * So "need more", a malformed reply and -ENOMEM (the single reservation is
 * the only step that can fail) all leave the output as it was, and the two
 * walks cannot disagree on the size. The walk recurses once per aggregate,
 * never more than AKV_HUMANIZE_DEPTH_MAX deep; an attribute's contents are
 * walked with the sink muted, so they are checked but print nothing.
 *
 * Whether a map value starts on the line of its key ("1# k => v") or on a
 * line of its own (as redis-cli puts a "tall" value, see walk_aggregate) is
 * known only once the value is walked; the line break is then inserted
 * before it, moving its text down. A byte of text is moved at most once per
 * map around it, so at most AKV_HUMANIZE_DEPTH_MAX times.
 *
 * Nothing is kept between calls, like the request parser (proto.c): an
 * incomplete reply is walked again from its start when more bytes come. The
 * walk skips bulk payloads by their length and looks at every other byte a
 * bounded number of times, and an aggregate's count is never used to
 * allocate or to loop beyond the input (every item takes at least 3 bytes),
 * so the cost is linear in the input whatever its counts claim.
 *
 * Invariants: reads only resp[0..len); writes only the room it reserved in
 * out; no allocation besides akv_buf_reserve, no I/O, no globals besides
 * const strings. Lengths and counts are parsed strictly (no leading zeros, at
 * most LONG_MAX) and compared against what is left of the input, so no
 * arithmetic on them can wrap around.
 *
 * Threading: none.
 */
#include "proto/humanize.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Longest line we wait for after a type byte whose line is a number (a
 * count, a length, an integer, a boolean, the null): the longest valid one
 * is the 20 characters of INT64_MIN. Status, error, double and big number
 * lines have no such bound. */
#define HEADER_MAX 32

struct walk {
    const char *buf;
    size_t len;
    const char *eol;
    size_t eol_len;
    char *dst;     /* where the text goes; NULL while measuring */
    size_t n;      /* bytes of text written or measured */
    int too_big;   /* the measure overflowed size_t */
    unsigned mute; /* > 0 inside an attribute: nothing is output */
    int tall;      /* the value just walked is an aggregate of several lines */
};

/* ---- the sink ----------------------------------------------------------- */

static void put(struct walk *w, const void *s, size_t n)
{
    if (w->mute || n == 0)
        return;
    if (w->dst)
        memcpy(w->dst + w->n, s, n);
    else if (n > SIZE_MAX - w->n)
        w->too_big = 1;
    if (!w->too_big)
        w->n += n;
}

static void put_str(struct walk *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_spaces(struct walk *w, size_t n)
{
    if (w->mute || n == 0)
        return;
    if (w->dst)
        memset(w->dst + w->n, ' ', n);
    else if (n > SIZE_MAX - w->n)
        w->too_big = 1;
    if (!w->too_big)
        w->n += n;
}

static void put_eol(struct walk *w)
{
    put(w, w->eol, w->eol_len);
}

/* Takes back the line ending that ended the value just put (a map key's, so
 * that its value follows on the same line). */
static void unput_eol(struct walk *w)
{
    if (w->mute || w->too_big)
        return;
    assert(w->n >= w->eol_len);
    w->n -= w->eol_len;
}

/* Moves the text put since offset at down to a line of its own, indented by
 * indent spaces. */
static void insert_break(struct walk *w, size_t at, size_t indent)
{
    size_t k = w->eol_len + indent;

    if (w->mute || w->too_big)
        return;
    if (!w->dst) {
        if (k > SIZE_MAX - w->n)
            w->too_big = 1;
        else
            w->n += k;
        return;
    }
    memmove(w->dst + at + k, w->dst + at, w->n - at);
    memcpy(w->dst + at, w->eol, w->eol_len);
    memset(w->dst + at + w->eol_len, ' ', indent);
    w->n += k;
}

static void put_hex(struct walk *w, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};

    put(w, tmp, sizeof tmp);
}

/* A bulk string the way redis-cli quotes it. */
static void put_quoted(struct walk *w, const char *s, size_t n)
{
    size_t i = 0, j;

    put(w, "\"", 1);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;

        /* The longest run that needs no escape goes out at once. */
        for (j = i; j < n; j++) {
            unsigned char d = (unsigned char)s[j];
            if (d < 0x20 || d > 0x7e || d == '"' || d == '\\')
                break;
        }
        if (j > i) {
            put(w, s + i, j - i);
            i = j;
            continue;
        }
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\a':
            esc = "\\a";
            break;
        case '\b':
            esc = "\\b";
            break;
        }
        if (esc)
            put(w, esc, 2);
        else
            put_hex(w, c);
        i++;
    }
    put(w, "\"", 1);
}

/* Unquoted text (status, errors, verbatim strings): line breaks become the
 * output's line ending, other control bytes but tab become \xHH. */
static void put_text(struct walk *w, const char *s, size_t n)
{
    size_t i = 0, j;

    while (i < n) {
        unsigned char c = (unsigned char)s[i];

        for (j = i; j < n; j++) {
            unsigned char d = (unsigned char)s[j];
            if ((d < 0x20 && d != '\t') || d == 0x7f)
                break;
        }
        if (j > i) {
            put(w, s + i, j - i);
            i = j;
            continue;
        }
        if (c == '\n') {
            put_eol(w);
        } else if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
            put_eol(w);
            i++;
        } else {
            put_hex(w, c);
        }
        i++;
    }
}

/* ---- lines and numbers -------------------------------------------------- */

/* Finds the CRLF that ends the line starting at buf[start]. Returns 1 with
 * *end at its '\r'; 0 if the line is not complete; -EPROTO for a CR or LF
 * inside the line, or for more than max bytes before the CRLF when max is
 * not 0. Every prefix of a good line is thus "need more". */
static int line_end(const struct walk *w, size_t start, size_t max, size_t *end)
{
    size_t i;

    for (i = start; i < w->len; i++) {
        char c = w->buf[i];

        if (c == '\r') {
            if (i + 1 >= w->len)
                return 0;
            if (w->buf[i + 1] != '\n')
                return -EPROTO;
            *end = i;
            return 1;
        }
        if (c == '\n' || (max && i - start >= max))
            return -EPROTO;
    }
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* s[0..n) as a 64-bit integer in the one spelling Redis writes: "0", or
 * digits without a leading zero after an optional '-'. Returns 0 with *neg
 * and *mag (the magnitude, up to 2^63 when negative) or -EPROTO. */
static int parse_int(const char *s, size_t n, int *neg, uint64_t *mag)
{
    size_t i = n > 0 && s[0] == '-';
    uint64_t v = 0;

    *neg = (int)i;
    if (i == n || (s[i] == '0' && (n - i > 1 || *neg)))
        return -EPROTO;
    for (; i < n; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');

        if (!is_digit(s[i]) || v > (UINT64_MAX - d) / 10)
            return -EPROTO;
        v = v * 10 + d;
    }
    if (v > (*neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
        return -EPROTO;
    *mag = v;
    return 0;
}

/* A length or a count: 0 to LONG_MAX, or -1 (the null) when nullable.
 * Returns 0 with *v (-1 for the null) or -EPROTO. */
static int parse_count(const char *s, size_t n, int nullable, int64_t *v)
{
    uint64_t mag;
    int neg;

    if (parse_int(s, n, &neg, &mag) < 0)
        return -EPROTO;
    if (neg) {
        if (!nullable || mag != 1)
            return -EPROTO;
        *v = -1;
        return 0;
    }
    if (mag > (uint64_t)LONG_MAX)
        return -EPROTO;
    *v = (int64_t)mag;
    return 0;
}

static int word_is(const char *s, size_t n, const char *lower)
{
    size_t i;

    if (n != strlen(lower))
        return 0;
    for (i = 0; i < n; i++)
        if ((s[i] | 0x20) != lower[i])
            return 0;
    return 1;
}

/* A RESP3 double: [+-] then inf or nan (any case), or digits with an
 * optional fraction and exponent (".5" and "5." too). */
static int is_double(const char *s, size_t n)
{
    size_t i = n > 0 && (s[0] == '+' || s[0] == '-'), digits = 0;

    if (word_is(s + i, n - i, "inf") || word_is(s + i, n - i, "nan"))
        return 1;
    for (; i < n && is_digit(s[i]); i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && is_digit(s[i]); i++)
            digits++;
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

/* A big number: an optional '-' and at least one digit. */
static int is_bignum(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-';

    if (i == n)
        return 0;
    for (; i < n; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

static unsigned count_digits(uint64_t v)
{
    unsigned d = 1;

    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* ---- the walk ----------------------------------------------------------- */

static int walk_value(struct walk *w, size_t pos, size_t indent, unsigned depth, size_t *next);

/* A bulk string, blob error or verbatim string whose header line said
 * length (-1 for the null bulk) and whose payload starts at buf[data]. */
static int walk_blob(struct walk *w, char type, int64_t length, size_t data, size_t *next)
{
    const char *p = w->buf + data;
    size_t avail = w->len - data, n;

    if (length < 0) {
        put_str(w, "(nil)");
        put_eol(w);
        w->tall = 0;
        *next = data;
        return 1;
    }
    /* The payload may hold any bytes, CRLF included: only its length says
     * where it ends. Check each byte of the CRLF after it once it is there. */
    if ((uint64_t)avail <= (uint64_t)length)
        return 0;
    n = (size_t)length;
    if (p[n] != '\r')
        return -EPROTO;
    if (avail - n < 2)
        return 0;
    if (p[n + 1] != '\n')
        return -EPROTO;
    switch (type) {
    case '$':
        put_quoted(w, p, n);
        break;
    case '!':
        put_str(w, "(error) ");
        put_text(w, p, n);
        break;
    default: /* '=': a 3-byte format, ':', then the text */
        if (n < 4 || p[3] != ':')
            return -EPROTO;
        put_text(w, p + 4, n - 4);
        break;
    }
    put_eol(w);
    w->tall = 0;
    *next = data + n + 2;
    return 1;
}

/* An array, set, push or map of count items (pairs for a map; -1 for the
 * null array) whose first item starts at buf[pos]. */
static int walk_aggregate(struct walk *w, char type, int64_t count, size_t pos, size_t indent,
                          unsigned depth, size_t *next)
{
    int map = type == '%';
    char sep = map ? '#' : type == '~' ? '~' : ')';
    size_t child;
    unsigned width;
    uint64_t i;

    if (count <= 0) {
        const char *empty = type == '*'   ? "(empty array)"
                            : type == '~' ? "(empty set)"
                            : type == '>' ? "(empty push)"
                                          : "(empty hash)";

        put_str(w, count < 0 ? "(nil)" : empty);
        put_eol(w);
        w->tall = 0;
        *next = pos;
        return 1;
    }
    /* "%*u) " as redis-cli writes it: the number right-aligned to the
     * width of the largest; items after the first start with the parent's
     * indentation, the first follows the parent's number on its line. */
    width = count_digits((uint64_t)count);
    child = indent + width + 2;
    for (i = 1; i <= (uint64_t)count; i++) {
        char num[32];
        int len = snprintf(num, sizeof num, "%*llu%c ", (int)width, (unsigned long long)i, sep);
        int r;

        if (i > 1)
            put_spaces(w, indent);
        put(w, num, (size_t)len);
        r = walk_value(w, pos, child, depth + 1, &pos);
        if (r <= 0)
            return r;
        if (map) {
            size_t at;

            unput_eol(w);
            put(w, " => ", 4);
            at = w->n;
            r = walk_value(w, pos, child, depth + 1, &pos);
            if (r <= 0)
                return r;
            /* As redis-cli does, a tall value starts on a line of its own,
             * at the items' indentation. */
            if (w->tall)
                insert_break(w, at, child);
        }
    }
    /* Tall: more than one item, or one that is tall (for a map, the one
     * pair's value: a tall key does not count, as in redis-cli). The flag
     * of the last value walked, the one item, is still in w->tall. */
    w->tall = count > 1 || w->tall;
    *next = pos;
    return 1;
}

/*
 * Walks the reply at buf[pos], attributes before it included: checks it,
 * puts its text (continuation lines indented by indent spaces) and its line
 * ending, and sets *next to the byte after it. depth is the number of
 * aggregates around it. Returns 1, 0 if the reply is not complete, or
 * -EPROTO.
 */
static int walk_value(struct walk *w, size_t pos, size_t indent, unsigned depth, size_t *next)
{
    for (;;) {
        const char *s;
        size_t end, n, after;
        size_t max = HEADER_MAX;
        int64_t count;
        uint64_t mag;
        int neg, r;
        char type;

        if (pos >= w->len)
            return 0;
        type = w->buf[pos];
        switch (type) {
        case '+':
        case '-':
        case ',':
        case '(':
            max = 0;
            break;
        case ':':
        case '_':
        case '#':
        case '$':
        case '!':
        case '=':
        case '*':
        case '%':
        case '~':
        case '>':
        case '|':
            break;
        default:
            return -EPROTO;
        }
        r = line_end(w, pos + 1, max, &end);
        if (r <= 0)
            return r;
        s = w->buf + pos + 1;
        n = end - pos - 1;
        after = end + 2;

        switch (type) {
        case '+':
            put_text(w, s, n);
            break;
        case '-':
            put_str(w, "(error) ");
            put_text(w, s, n);
            break;
        case ':':
            if (parse_int(s, n, &neg, &mag) < 0)
                return -EPROTO;
            /* The one spelling parse_int accepts is how %lld prints it. */
            put_str(w, "(integer) ");
            put(w, s, n);
            break;
        case '_':
            if (n != 0)
                return -EPROTO;
            put_str(w, "(nil)");
            break;
        case ',':
            if (!is_double(s, n))
                return -EPROTO;
            put_str(w, "(double) ");
            put(w, s, n);
            break;
        case '#':
            if (n != 1 || (s[0] != 't' && s[0] != 'f'))
                return -EPROTO;
            put_str(w, s[0] == 't' ? "(true)" : "(false)");
            break;
        case '(':
            if (!is_bignum(s, n))
                return -EPROTO;
            put_str(w, "(big number) ");
            put(w, s, n);
            break;
        case '$':
        case '!':
        case '=':
            if (parse_count(s, n, type == '$', &count) < 0)
                return -EPROTO;
            return walk_blob(w, type, count, after, next);
        default: /* an aggregate or an attribute */
            if (parse_count(s, n, type == '*', &count) < 0 || depth >= AKV_HUMANIZE_DEPTH_MAX)
                return -EPROTO;
            if (type != '|')
                return walk_aggregate(w, type, count, after, indent, depth, next);
            /* An attribute: a map about the reply that follows, which is
             * checked but not shown. Then that reply is walked in its
             * stead. */
            pos = after;
            w->mute++;
            for (uint64_t i = 0; i < 2 * (uint64_t)count; i++) {
                r = walk_value(w, pos, 0, depth + 1, &pos);
                if (r <= 0)
                    break;
            }
            w->mute--;
            if (r <= 0)
                return r;
            continue;
        }
        put_eol(w);
        w->tall = 0;
        *next = after;
        return 1;
    }
}

/* ---- the API ------------------------------------------------------------ */

long akv_humanize_run(const char *resp, size_t len, struct akv_buf *out, unsigned flags)
{
    struct walk w;
    size_t next = 0, n;
    int r;

    if ((flags & ~AKV_HUMANIZE_LF) || !out || (!resp && len))
        return -EINVAL;
    /* The result is a long: look no further than a reply of that size. */
    if (len > (size_t)LONG_MAX)
        len = (size_t)LONG_MAX;
    memset(&w, 0, sizeof w);
    w.buf = resp;
    w.len = len;
    w.eol = flags & AKV_HUMANIZE_LF ? "\n" : "\r\n";
    w.eol_len = strlen(w.eol);

    r = walk_value(&w, 0, 0, 0, &next);
    if (r <= 0)
        return r;
    if (w.too_big)
        return -ENOMEM;
    n = w.n;
    r = akv_buf_reserve(out, n);
    if (r < 0)
        return r;

    w.dst = out->p + out->len;
    w.n = 0;
    r = walk_value(&w, 0, 0, 0, &next);
    assert(r == 1 && w.n == n && w.mute == 0);
    (void)r;
    out->len += n;
    return (long)next;
}

long akv_humanize_run_many(const char *resp, size_t len, struct akv_buf *out, unsigned flags)
{
    size_t done = 0;

    if ((flags & ~AKV_HUMANIZE_LF) || !out || (!resp && len))
        return -EINVAL;
    while (done < len) {
        /* Each step is limited so that the total still fits a long. */
        size_t room = (size_t)LONG_MAX - done, rest = len - done;
        long r = akv_humanize_run(resp + done, rest < room ? rest : room, out, flags);

        if (r < 0)
            return done ? (long)done : r;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (long)done;
}
