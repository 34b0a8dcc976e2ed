/*
 * text.h - the text helpers every layer shares: quoting untrusted bytes for
 * a message, strict number parsing, and splitting a line into arguments
 * (the inline protocol and the configuration file use the same syntax).
 *
 * All are pure functions of their arguments: any thread, no allocation.
 */
#ifndef ATTNKV_TEXT_H
#define ATTNKV_TEXT_H

#include <stddef.h>

/* ---- quoting ------------------------------------------------------------ */

/* akv_escape's flags. Without AKV_ESC_STRICT only control bytes and DEL are
 * escaped (newline and carriage return as \n and \r, tab kept): for text
 * that may already hold quoted parts, like a log line. With it, tab,
 * backslash, the single quote and, when s is not valid UTF-8, every byte
 * >= 0x80 are escaped too: for bytes shown between quotes. */
#define AKV_ESC_STRICT 1u

/* Writes s[0, len) escaped into out[0, cap) (terminated, cap > 0): an
 * escaped byte is \xHH. Stops before an escape that would not fit, and
 * never inside a UTF-8 character of valid UTF-8 text. Returns the bytes of s
 * written; *outlen (optional) gets the bytes of out used. The strict mode
 * reads all of s (to know whether it is UTF-8): bound len. */
size_t akv_escape(char *out, size_t cap, const char *s, size_t len, unsigned flags, size_t *outlen);

/* The length of the longest prefix of s[0, n) that does not end inside a
 * UTF-8 character (n itself unless s[0, n) ends with an incomplete one). */
size_t akv_utf8_cut(const char *s, size_t n);

/* At most this many bytes of an untrusted string are shown in a message;
 * more are cut with "...". */
#define AKV_QUOTE_MAX 64
#define AKV_QUOTE_BUF (AKV_QUOTE_MAX * 4 + 4)

/* s[0, len) for a message (a reply, a log line, a start-up error): at most
 * AKV_QUOTE_MAX bytes of it, escaped strictly (judged as UTF-8 or not by
 * those bytes alone, so a long s costs nothing more), then "..." if it was
 * cut.
 * out holds AKV_QUOTE_BUF bytes; returns out. */
const char *akv_quote(char out[AKV_QUOTE_BUF], const char *s, size_t len);

/* Writes a formatted message into err when the caller gave room for one
 * (err may be NULL or errlen 0: the "char *err, size_t errlen" convention
 * of functions that explain a failure). */
__attribute__((format(printf, 3, 4))) void akv_errf(char *err, size_t errlen, const char *fmt, ...);

/* ---- numbers ------------------------------------------------------------ */

/* Each parses all of s[0, len) or fails with -EINVAL, writing *out only on
 * success. No blanks, no trailing bytes, no overflow.
 *   akv_parse_ll:     [-]digits, within [min, max]
 *   akv_parse_ull:    digits, at most max
 *   akv_parse_double: a finite decimal number, [+-]digits[.digits][e[+-]digits]
 *                     or [+-].digits...; no "inf", "nan" or hex floats; a
 *                     value too small for a double reads as 0 or subnormal,
 *                     one too large fails. The decimal point is '.'. */
int akv_parse_ll(const char *s, size_t len, long long min, long long max, long long *out);
int akv_parse_ull(const char *s, size_t len, unsigned long long max, unsigned long long *out);
int akv_parse_double(const char *s, size_t len, double *out);

/* ---- arguments ---------------------------------------------------------- */

/* The argument syntax of inline commands and of configuration lines (that
 * of redis-cli and redis.conf): arguments are separated by blanks (space,
 * tab, CR, VT, FF); "double quotes" take \n \r \t \b \a and \xHH escapes
 * (any other escaped byte stands for itself); 'single quotes' take
 * everything literally but \' ; a quoted part may follow unquoted bytes of
 * the same argument, and a closing quote must end the argument. */
struct akv_text_arg {
    const char *p; /* the argument: in the line when it has no quotes, else in out */
    size_t len;    /* its length, decoded */
    int quoted;
};

/* Finds the next argument of line[*pos, n) and moves *pos past it. Returns
 * 1 with *arg, 0 when only blanks are left, -EINVAL for bad quoting (*why
 * says what is wrong), or -ENOSPC when a quoted argument does not fit in
 * out[0, cap). With out NULL a quoted argument is only measured (arg->p is
 * NULL). */
int akv_text_split_next(const char *line, size_t n, size_t *pos, char *out, size_t cap,
                        struct akv_text_arg *arg, const char **why);

#endif
