/*
 * glob.c - Redis-style glob matching (see glob.h for the syntax and the
 * design: byte sets, segments between stars, leftmost search).
 *
 * Why leftmost is enough: the only element of variable width is '*'. If a
 * key matches, the middle segments occur in order, each after the one
 * before; taking each at its earliest place leaves the most room for the
 * rest, so if any placement works the leftmost one does too.
 *
 * Threading: none; a compiled pattern is only read.
 */
#include "util/glob.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Segments this long or longer get a Shift-And table. */
#define SHIFT_AND_MIN 64

struct byteset {
    uint64_t w[4];
};

struct segment {
    size_t first, len; /* elements el[first .. first + len) */
    uint64_t *tab;     /* Shift-And: bit j of tab[c * words + j / 64] when el j holds c */
    size_t words;      /* (len + 63) / 64 when tab is set */
};

struct akv_glob {
    struct byteset *el; /* one-byte elements, in order */
    size_t nel;
    struct segment *seg; /* nseg = stars + 1 */
    size_t nseg;
};

static int has(const struct byteset *s, unsigned char c)
{
    return (int)(s->w[c >> 6] >> (c & 63)) & 1;
}

static void add(struct byteset *s, unsigned char c)
{
    s->w[c >> 6] |= (uint64_t)1 << (c & 63);
}

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Adds x, and with nocase the other case of a letter. */
static void add_byte(struct byteset *s, unsigned char x, int nocase)
{
    add(s, x);
    if (nocase && fold(x) != x)
        add(s, fold(x));
    else if (nocase && x >= 'a' && x <= 'z')
        add(s, (unsigned char)(x - 'a' + 'A'));
}

/* Adds every byte c whose (folded, with nocase) value lies in lo..hi. */
static void add_range(struct byteset *s, unsigned char lo, unsigned char hi, int nocase)
{
    if (nocase) {
        lo = fold(lo);
        hi = fold(hi);
    }
    if (lo > hi) {
        unsigned char t = lo;
        lo = hi;
        hi = t;
    }
    for (unsigned c = 0; c < 256; c++) {
        unsigned char f = nocase ? fold((unsigned char)c) : (unsigned char)c;
        if (f >= lo && f <= hi)
            add(s, (unsigned char)c);
    }
}

/* Compiles the class that starts at p[i] == '['; returns the index after it. */
static size_t compile_class(const unsigned char *p, size_t plen, size_t i, int nocase,
                            struct byteset *s)
{
    int neg = 0;

    i++;
    if (i < plen && p[i] == '^') {
        neg = 1;
        i++;
    }
    while (i < plen && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < plen) {
            add_byte(s, p[i + 1], nocase);
            i += 2;
        } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            add_range(s, p[i], p[i + 2], nocase);
            i += 3;
        } else {
            add_byte(s, p[i], nocase);
            i++;
        }
    }
    if (neg)
        for (int k = 0; k < 4; k++)
            s->w[k] = ~s->w[k];
    /* An unclosed class simply ends with the pattern. */
    return i < plen ? i + 1 : plen;
}

static int build_tables(struct akv_glob *g)
{
    for (size_t k = 0; k < g->nseg; k++) {
        struct segment *sg = &g->seg[k];
        if (sg->len < SHIFT_AND_MIN || k == 0 || k == g->nseg - 1)
            continue; /* short, or anchored: matched in place */
        sg->words = (sg->len + 63) / 64;
        sg->tab = calloc(256 * sg->words, sizeof(uint64_t));
        if (!sg->tab)
            return -ENOMEM;
        for (size_t j = 0; j < sg->len; j++) {
            const struct byteset *s = &g->el[sg->first + j];
            for (unsigned c = 0; c < 256; c++)
                if (has(s, (unsigned char)c))
                    sg->tab[c * sg->words + j / 64] |= (uint64_t)1 << (j % 64);
        }
    }
    return 0;
}

int akv_glob_compile(const char *pat, size_t plen, int nocase, struct akv_glob **out)
{
    const unsigned char *p = (const unsigned char *)pat;
    struct akv_glob *g;
    size_t i = 0, stars = 0;
    int rc;

    *out = NULL;
    if (plen > AKV_GLOB_PATTERN_MAX)
        return -E2BIG;
    g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    for (i = 0; i < plen; i++)
        stars += p[i] == '*';
    /* Every byte makes at most one element, every star one segment. */
    g->el = calloc(plen ? plen : 1, sizeof(*g->el));
    g->seg = calloc(stars + 1, sizeof(*g->seg));
    if (!g->el || !g->seg) {
        akv_glob_free(g);
        return -ENOMEM;
    }
    g->nseg = 1;
    i = 0;
    while (i < plen) {
        struct byteset *s;
        if (p[i] == '*') {
            /* A run of stars is one star. */
            while (i < plen && p[i] == '*')
                i++;
            g->seg[g->nseg].first = g->nel;
            g->nseg++;
            continue;
        }
        s = &g->el[g->nel++];
        g->seg[g->nseg - 1].len++;
        if (p[i] == '?') {
            memset(s->w, 0xff, sizeof(s->w));
            i++;
        } else if (p[i] == '[') {
            i = compile_class(p, plen, i, nocase, s);
        } else if (p[i] == '\\' && i + 1 < plen) {
            add_byte(s, p[i + 1], nocase);
            i += 2;
        } else {
            add_byte(s, p[i], nocase);
            i++;
        }
    }
    rc = build_tables(g);
    if (rc < 0) {
        akv_glob_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

void akv_glob_free(struct akv_glob *g)
{
    if (!g)
        return;
    for (size_t k = 0; g->seg && k < g->nseg; k++)
        free(g->seg[k].tab);
    free(g->seg);
    free(g->el);
    free(g);
}

int akv_glob_matches_all(const struct akv_glob *g)
{
    return g->nseg > 1 && g->nel == 0;
}

/* Whether segment sg matches s[0 .. sg->len). */
static int match_at(const struct akv_glob *g, const struct segment *sg, const unsigned char *s)
{
    for (size_t j = 0; j < sg->len; j++)
        if (!has(&g->el[sg->first + j], s[j]))
            return 0;
    return 1;
}

/* The leftmost i in [from, to - len] where sg matches s[i ..], or SIZE_MAX. */
static size_t find(const struct akv_glob *g, const struct segment *sg, const unsigned char *s,
                   size_t from, size_t to)
{
    if (to < from || to - from < sg->len)
        return SIZE_MAX;
    if (!sg->tab) {
        for (size_t i = from; i + sg->len <= to; i++)
            if (match_at(g, sg, s + i))
                return i;
        return SIZE_MAX;
    }
    /* Shift-And: bit j of d is set when the segment's first j + 1 elements
     * match the bytes ending at position i. */
    {
        uint64_t d[(AKV_GLOB_PATTERN_MAX + 63) / 64] = {0};
        size_t w = sg->words, last = sg->len - 1;
        for (size_t i = from; i < to; i++) {
            const uint64_t *t = sg->tab + (size_t)s[i] * w;
            uint64_t carry = 1;
            for (size_t k = 0; k < w; k++) {
                uint64_t next = d[k] >> 63;
                d[k] = ((d[k] << 1) | carry) & t[k];
                carry = next;
            }
            if ((d[last / 64] >> (last % 64)) & 1)
                return i + 1 - sg->len;
        }
        return SIZE_MAX;
    }
}

int akv_glob_exec(const struct akv_glob *g, const char *str, size_t slen)
{
    const unsigned char *s = (const unsigned char *)str;
    const struct segment *head = &g->seg[0], *tail = &g->seg[g->nseg - 1];
    size_t pos, end;

    if (g->nseg == 1)
        return slen == head->len && match_at(g, head, s);
    if (slen < head->len + tail->len || !match_at(g, head, s) ||
        !match_at(g, tail, s + slen - tail->len))
        return 0;
    pos = head->len;
    end = slen - tail->len;
    for (size_t k = 1; k + 1 < g->nseg; k++) {
        const struct segment *sg = &g->seg[k];
        size_t at = find(g, sg, s, pos, end);
        if (at == SIZE_MAX)
            return 0;
        pos = at + sg->len;
    }
    return 1;
}

int akv_glob_match(const char *pat, size_t plen, const char *str, size_t slen, int nocase)
{
    struct akv_glob *g;
    int hit;

    if (akv_glob_compile(pat, plen, nocase, &g) < 0)
        return 0;
    hit = akv_glob_exec(g, str, slen);
    akv_glob_free(g);
    return hit;
}
