/*
 * glob.c - Redis-style glob matching (see glob.h for the syntax).
 *
 * The matcher walks pattern and string together and remembers only the most
 * recent '*': on a mismatch it lets that star swallow one more byte and tries
 * again. Because a star matches any sequence, an earlier star never needs to
 * be revisited once a later one is reached, so one backtrack point is enough
 * and the cost stays bounded by len(pattern) * len(string).
 *
 * Threading: none; pure functions.
 */
#include "glob.h"

#include <stdint.h>

static unsigned char fold(unsigned char c, int nocase)
{
    if (nocase && c >= 'A' && c <= 'Z')
        return (unsigned char)(c - 'A' + 'a');
    return c;
}

/* Matches the bracket class starting at p[pi] == '[' against c. Stores the
 * index just past the class in *next and returns 1 on a match. */
static int match_class(const unsigned char *p, size_t plen, size_t pi, unsigned char c, int nocase,
                       size_t *next)
{
    size_t i = pi + 1;
    int neg = 0, hit = 0;

    if (i < plen && p[i] == '^') {
        neg = 1;
        i++;
    }
    c = fold(c, nocase);
    while (i < plen && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < plen) {
            if (fold(p[i + 1], nocase) == c)
                hit = 1;
            i += 2;
        } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            unsigned char lo = fold(p[i], nocase), hi = fold(p[i + 2], nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            if (c >= lo && c <= hi)
                hit = 1;
            i += 3;
        } else {
            if (fold(p[i], nocase) == c)
                hit = 1;
            i++;
        }
    }
    /* An unclosed class simply ends with the pattern. */
    *next = i < plen ? i + 1 : plen;
    return hit ^ neg;
}

/* Matches the single-byte pattern element at p[pi] (anything but '*')
 * against c, storing the index of the following element in *next. */
static int match_one(const unsigned char *p, size_t plen, size_t pi, unsigned char c, int nocase,
                     size_t *next)
{
    switch (p[pi]) {
    case '?':
        *next = pi + 1;
        return 1;
    case '[':
        return match_class(p, plen, pi, c, nocase, next);
    case '\\':
        if (pi + 1 < plen) {
            *next = pi + 2;
            return fold(p[pi + 1], nocase) == fold(c, nocase);
        }
        *next = pi + 1;
        return c == '\\';
    default:
        *next = pi + 1;
        return fold(p[pi], nocase) == fold(c, nocase);
    }
}

int akv_glob_match(const char *pat, size_t plen, const char *str, size_t slen, int nocase)
{
    const unsigned char *p = (const unsigned char *)pat;
    const unsigned char *s = (const unsigned char *)str;
    size_t pi = 0, si = 0;
    size_t star_pi = SIZE_MAX, star_si = 0;

    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*')
                pi++;
            if (pi == plen)
                return 1;
            star_pi = pi;
            star_si = si;
            continue;
        }
        if (pi < plen) {
            size_t next;
            if (match_one(p, plen, pi, s[si], nocase, &next)) {
                pi = next;
                si++;
                continue;
            }
        }
        if (star_pi == SIZE_MAX)
            return 0;
        /* Let the last star absorb one more byte and retry after it. */
        pi = star_pi;
        si = ++star_si;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}
