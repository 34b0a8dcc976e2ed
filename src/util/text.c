/*
 * text.c - quoting, numbers and argument splitting (see text.h).
 *
 * Pure functions: no state, no allocation; any thread.
 */
#include "util/text.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

/* ---- quoting ------------------------------------------------------------ */

size_t akv_utf8_cut(const char *s, size_t n)
{
    size_t i = n, need;
    unsigned char lead;

    /* Back over continuation bytes (10xxxxxx) to the byte that leads them. */
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == 0)
        return n;
    lead = (unsigned char)s[i - 1];
    need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return need > 1 && n - (i - 1) < need ? i - 1 : n;
}

/* akv_escape, told whether the text is valid UTF-8. */
static size_t escape(char *out, size_t cap, const char *s, size_t len, unsigned flags, int utf8,
                     size_t *outlen)
{
    static const char hex[] = "0123456789abcdef";
    int strict = (flags & AKV_ESC_STRICT) != 0;
    int raw_high = !strict || utf8; /* bytes >= 0x80 are copied as they are */
    size_t i = 0, o = 0;

    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[4];
        size_t n = 1;

        if (!strict && (c == '\n' || c == '\r')) {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : 'r';
            n = 2;
        } else if ((c < 0x20 && (strict || c != '\t')) || c == 0x7f ||
                   (strict && (c == '\\' || c == '\'' || (c >= 0x80 && !raw_high)))) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            n = 4;
        } else {
            esc[0] = (char)c;
        }
        if (o + n >= cap)
            break;
        memcpy(out + o, esc, n);
        o += n;
    }
    /* Cut short: not inside a character (its bytes were copied one for one). */
    if (i < len && raw_high) {
        size_t keep = akv_utf8_cut(s, i);
        o -= i - keep;
        i = keep;
    }
    if (cap > 0)
        out[o] = '\0';
    if (outlen)
        *outlen = o;
    return i;
}
size_t akv_escape(char *out, size_t cap, const char *s, size_t len, unsigned flags, size_t *outlen)
{
    /* Only the strict mode asks whether the text is valid UTF-8. */
    int utf8 = !(flags & AKV_ESC_STRICT) || u8_check((const uint8_t *)s, len) == NULL;

    return escape(out, cap, s, len, flags, utf8, outlen);
}

const char *akv_quote(char out[AKV_QUOTE_BUF], const char *s, size_t len)
{
    size_t show = len > AKV_QUOTE_MAX ? AKV_QUOTE_MAX : len, o;
    int utf8;

    /* Only the part shown is looked at, so that quoting a huge argument
     * costs no more than a short one. A cut falls between characters. */
    if (show < len)
        show = akv_utf8_cut(s, show);
    utf8 = u8_check((const uint8_t *)s, show) == NULL;
    escape(out, AKV_QUOTE_BUF - 3, s, show, AKV_ESC_STRICT, utf8, &o);
    if (show < len)
        memcpy(out + o, "...", 4);
    return out;
}

void akv_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- numbers ------------------------------------------------------------ */

int akv_parse_ull(const char *s, size_t len, unsigned long long max, unsigned long long *out)
{
    unsigned long long v = 0;

    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9 || v > (ULLONG_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    if (v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int akv_parse_ll(const char *s, size_t len, long long min, long long max, long long *out)
{
    int neg = len > 0 && s[0] == '-';
    unsigned long long mag, lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    long long v;

    if (akv_parse_ull(s + neg, len - (size_t)neg, lim, &mag) < 0)
        return -EINVAL;
    v = neg ? (mag == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)mag)
            : (long long)mag;
    if (v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

int akv_parse_double(const char *s, size_t len, double *out)
{
    char buf[128], *end;
    size_t lead = len > 0 && (s[0] == '-' || s[0] == '+');
    double v;

    /* strtod alone would also take blanks, "inf", "nan" and hex floats. */
    if (len <= lead || len >= sizeof(buf) ||
        !((s[lead] >= '0' && s[lead] <= '9') || s[lead] == '.'))
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || !strchr("0123456789.eE+-", s[i]))
            return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtod(buf, &end);
    if (*end != '\0' || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
        return -EINVAL;
    *out = v;
    return 0;
}

/* ---- arguments ---------------------------------------------------------- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the one escape of double quotes at line[i] == '\\' (i + 1 < n):
 * writes the byte to *c and returns how many bytes of line it took. */
static size_t unescape(const char *line, size_t n, size_t i, char *c)
{
    int hi = i + 3 < n ? hex_val(line[i + 2]) : -1;
    int lo = i + 3 < n ? hex_val(line[i + 3]) : -1;

    if (line[i + 1] == 'x' && hi >= 0 && lo >= 0) {
        *c = (char)(unsigned char)(hi * 16 + lo);
        return 4;
    }
    switch (line[i + 1]) {
    case 'n':
        *c = '\n';
        break;
    case 'r':
        *c = '\r';
        break;
    case 't':
        *c = '\t';
        break;
    case 'b':
        *c = '\b';
        break;
    case 'a':
        *c = '\a';
        break;
    default:
        *c = line[i + 1];
        break;
    }
    return 2;
}

int akv_text_split_next(const char *line, size_t n, size_t *pos, char *out, size_t cap,
                        struct akv_text_arg *arg, const char **why)
{
    size_t i = *pos, start, o = 0;
    char quote = 0;

    while (i < n && is_blank(line[i]))
        i++;
    if (i == n) {
        *pos = i;
        return 0;
    }
    start = i;
    while (i < n && !is_blank(line[i]) && line[i] != '"' && line[i] != '\'')
        i++;
    if (i == n || is_blank(line[i])) {
        arg->p = line + start;
        arg->len = i - start;
        arg->quoted = 0;
        *pos = i;
        return 1;
    }
    /* The bytes before the quote are part of the argument as they are. */
    if (out && i - start > cap)
        return -ENOSPC;
    if (out)
        memcpy(out, line + start, i - start);
    o = i - start;
    quote = line[i++];
    for (;; i++) {
        char c;

        if (i == n) {
            *why = "unbalanced quotes";
            return -EINVAL;
        }
        c = line[i];
        if (c == quote) {
            /* "a"b would be ambiguous (Redis refuses it too). */
            if (i + 1 < n && !is_blank(line[i + 1])) {
                *why = "a closing quote must be followed by a blank";
                return -EINVAL;
            }
            i++;
            break;
        }
        if (c == '\\' && quote == '\'') {
            if (i + 1 < n && line[i + 1] == '\'')
                c = line[++i];
        } else if (c == '\\' && i + 1 < n) {
            i += unescape(line, n, i, &c) - 1;
        }
        if (out) {
            if (o >= cap)
                return -ENOSPC;
            out[o] = c;
        }
        o++;
    }
    arg->p = out;
    arg->len = o;
    arg->quoted = 1;
    *pos = i;
    return 1;
}
