/*
 * globref.h - a reference glob matcher for test-glob and fuzz-glob, written
 * straight from the syntax in src/util/glob.h: recursive and exponential at
 * worst, so only for short inputs. The compiled matcher must agree with it.
 */
#ifndef ATTNKV_GLOBREF_H
#define ATTNKV_GLOBREF_H

#include <stddef.h>

static unsigned char rfold(unsigned char c, int nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Matches the one-byte element at p[0..plen) against c; *used gets its
 * length in the pattern. */
static int ref_one(const unsigned char *p, size_t plen, unsigned char c, int nocase, size_t *used)
{
    size_t i;
    int hit = 0, neg = 0;

    c = rfold(c, nocase);
    if (p[0] == '?') {
        *used = 1;
        return 1;
    }
    if (p[0] == '\\') {
        *used = plen > 1 ? 2 : 1;
        return rfold(plen > 1 ? p[1] : '\\', nocase) == c;
    }
    if (p[0] != '[') {
        *used = 1;
        return rfold(p[0], nocase) == c;
    }
    i = 1;
    if (i < plen && p[i] == '^') {
        neg = 1;
        i++;
    }
    while (i < plen && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < plen) {
            hit |= rfold(p[i + 1], nocase) == c;
            i += 2;
        } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            unsigned char lo = rfold(p[i], nocase), hi = rfold(p[i + 2], nocase);
            hit |= (c >= lo && c <= hi) || (c >= hi && c <= lo);
            i += 3;
        } else {
            hit |= rfold(p[i], nocase) == c;
            i++;
        }
    }
    *used = i < plen ? i + 1 : plen;
    return hit ^ neg;
}

static int ref_match(const unsigned char *p, size_t plen, const unsigned char *s, size_t slen,
                     int nocase)
{
    size_t used;

    if (plen == 0)
        return slen == 0;
    if (p[0] == '*') {
        for (size_t k = 0; k <= slen; k++)
            if (ref_match(p + 1, plen - 1, s + k, slen - k, nocase))
                return 1;
        return 0;
    }
    if (slen == 0)
        return 0;
    if (!ref_one(p, plen, s[0], nocase, &used))
        return 0;
    return ref_match(p + used, plen - used, s + 1, slen - 1, nocase);
}

#endif
