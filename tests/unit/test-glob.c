/*
 * test-glob.c - the Redis-style glob matcher (src/util/glob.c).
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/glob.h"
#include "globref.h"

static int m(const char *pat, const char *str)
{
    return akv_glob_match(pat, strlen(pat), str, strlen(str), 0);
}

static int mi(const char *pat, const char *str)
{
    return akv_glob_match(pat, strlen(pat), str, strlen(str), 1);
}

START_TEST(test_literal)
{
    ck_assert(m("", ""));
    ck_assert(!m("", "a"));
    ck_assert(!m("a", ""));
    ck_assert(m("cat", "cat"));
    ck_assert(!m("cat", "cats"));
    ck_assert(!m("cats", "cat"));
    ck_assert(!m("Cat", "cat"));
}
END_TEST

START_TEST(test_star)
{
    ck_assert(m("*", ""));
    ck_assert(m("*", "anything"));
    ck_assert(m("**", "x"));
    ck_assert(m("c*", "cat"));
    ck_assert(m("*t", "cat"));
    ck_assert(m("c*t", "ct"));
    ck_assert(m("c*t", "carrot"));
    ck_assert(!m("c*t", "cart!"));
    ck_assert(m("*a*b*c*", "xxaxxbxxcxx"));
    ck_assert(!m("*a*b*c*", "xxcxxbxxaxx"));
    ck_assert(m("a*a", "aa"));
    ck_assert(!m("a*a", "a"));
    /* The star must be able to give back bytes it took too eagerly. */
    ck_assert(m("*ab", "aab"));
    ck_assert(m("*aab", "aaab"));
}
END_TEST

START_TEST(test_question)
{
    ck_assert(m("?", "a"));
    ck_assert(!m("?", ""));
    ck_assert(!m("?", "ab"));
    ck_assert(m("h?llo", "hello"));
    ck_assert(m("h?llo", "hallo"));
    ck_assert(!m("h?llo", "hllo"));
    ck_assert(m("*?", "a"));
    ck_assert(!m("*??", "a"));
}
END_TEST

START_TEST(test_class)
{
    ck_assert(m("h[ae]llo", "hello"));
    ck_assert(m("h[ae]llo", "hallo"));
    ck_assert(!m("h[ae]llo", "hillo"));
    ck_assert(m("h[^e]llo", "hallo"));
    ck_assert(!m("h[^e]llo", "hello"));
    ck_assert(m("h[a-b]llo", "hbllo"));
    ck_assert(!m("h[a-b]llo", "hcllo"));
    /* A reversed range means the same range. */
    ck_assert(m("[z-a]", "q"));
    ck_assert(m("[0-9][0-9]", "42"));
    ck_assert(!m("[0-9]", "x"));
    /* Escapes inside a class. */
    ck_assert(m("[\\]]", "]"));
    ck_assert(m("[\\-a]", "-"));
    /* '-' at the end of a class is literal. */
    ck_assert(m("[a-]", "-"));
    ck_assert(m("[a-]", "a"));
    /* An empty class matches nothing. */
    ck_assert(!m("[]", "a"));
    ck_assert(!m("[]", ""));
    /* An unclosed class takes the rest of the pattern. */
    ck_assert(m("[abc", "b"));
    ck_assert(!m("[abc", "d"));
    /* Class and star together. */
    ck_assert(m("*[0-9]", "key9"));
    ck_assert(!m("*[0-9]", "key"));
}
END_TEST

START_TEST(test_escape)
{
    ck_assert(m("\\*", "*"));
    ck_assert(!m("\\*", "a"));
    ck_assert(m("a\\?b", "a?b"));
    ck_assert(!m("a\\?b", "axb"));
    ck_assert(m("\\[x]", "[x]"));
    /* A trailing backslash is a literal backslash. */
    ck_assert(m("a\\", "a\\"));
    ck_assert(!m("a\\", "a"));
}
END_TEST

START_TEST(test_nocase)
{
    ck_assert(mi("Cat", "cAT"));
    ck_assert(mi("max*", "MAXCLIENTS"));
    ck_assert(mi("[A-C]at", "bat"));
    ck_assert(mi("[a-c]at", "BAT"));
    ck_assert(!mi("[^a]", "A"));
    ck_assert(!m("MAX*", "maxclients"));
}
END_TEST

START_TEST(test_binary)
{
    /* Lengths, not NUL bytes, delimit both strings. */
    ck_assert(akv_glob_match("a\0*", 3, "a\0bc", 4, 0));
    ck_assert(!akv_glob_match("a\0*", 3, "a\1bc", 4, 0));
    ck_assert(akv_glob_match("?", 1, "\xff", 1, 0));
    ck_assert(akv_glob_match("[\x80-\xff]", 5, "\xe9", 1, 0));
}
END_TEST

/* A pattern that makes naive recursive matchers exponential must finish at
 * once (the check timeout would catch a regression). */
START_TEST(test_pathological)
{
    char pat[200], str[4001];
    size_t i;

    for (i = 0; i < 50; i++) {
        pat[2 * i] = '*';
        pat[2 * i + 1] = 'a';
    }
    pat[100] = 'b';
    memset(str, 'a', 4000);
    str[4000] = '\0';
    ck_assert(!akv_glob_match(pat, 101, str, 4000, 0));
    pat[100] = '*';
    ck_assert(akv_glob_match(pat, 101, str, 4000, 0));
}
END_TEST

/* Random short patterns and strings over an alphabet with every special
 * character: the compiled matcher agrees with the reference. */
START_TEST(test_differential)
{
    static const char alpha[] = "abAB*?[]^-\\z";
    static const char salpha[] = "abABz-]^\\*?";
    unsigned seed = 12345;
    struct akv_glob *g;
    char pat[12], str[10];

    for (int round = 0; round < 300000; round++) {
        size_t plen, slen;
        int nocase;
        seed = seed * 1103515245u + 12345u;
        plen = (seed >> 16) % 11;
        seed = seed * 1103515245u + 12345u;
        slen = (seed >> 16) % 9;
        nocase = (seed >> 8) & 1;
        for (size_t i = 0; i < plen; i++) {
            seed = seed * 1103515245u + 12345u;
            pat[i] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
        }
        for (size_t i = 0; i < slen; i++) {
            seed = seed * 1103515245u + 12345u;
            str[i] = salpha[(seed >> 16) % (sizeof(salpha) - 1)];
        }
        ck_assert_int_eq(akv_glob_compile(pat, plen, nocase, &g), 0);
        ck_assert_msg(
            akv_glob_exec(g, str, slen) == ref_match((const unsigned char *)pat, plen,
                                                     (const unsigned char *)str, slen, nocase),
            "pattern '%.*s' string '%.*s' nocase %d", (int)plen, pat, (int)slen, str, nocase);
        akv_glob_free(g);
    }
}
END_TEST

/* Long segments go through Shift-And: compare with the reference on
 * patterns whose middle segment is 64 to 200 elements long. */
START_TEST(test_long_segments)
{
    static char pat[600], str[900];
    unsigned seed = 777;
    struct akv_glob *g;

    for (int round = 0; round < 2000; round++) {
        size_t seg, plen = 0, slen, at;
        seed = seed * 1103515245u + 12345u;
        seg = 64 + (seed >> 16) % 137;
        pat[plen++] = '*';
        for (size_t i = 0; i < seg; i++) {
            seed = seed * 1103515245u + 12345u;
            pat[plen++] = "ab?"[(seed >> 16) % 3];
        }
        pat[plen++] = '*';
        seed = seed * 1103515245u + 12345u;
        slen = 300 + (seed >> 16) % 500;
        for (size_t i = 0; i < slen; i++) {
            seed = seed * 1103515245u + 12345u;
            str[i] = "ab"[(seed >> 16) % 2];
        }
        /* Half the time, plant an occurrence. */
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) & 1) {
            at = (seed >> 17) % (slen - seg);
            for (size_t i = 0; i < seg; i++)
                if (pat[1 + i] != '?')
                    str[at + i] = pat[1 + i];
        }
        ck_assert_int_eq(akv_glob_compile(pat, plen, 0, &g), 0);
        ck_assert_int_eq(
            akv_glob_exec(g, str, slen),
            ref_match((const unsigned char *)pat, plen, (const unsigned char *)str, slen, 0));
        akv_glob_free(g);
    }
}
END_TEST

/* The audit's pattern: a huge class matched against many keys. Long
 * patterns are refused; the longest allowed one still matches in time
 * linear in the key (this would take minutes if it were not). */
START_TEST(test_limits)
{
    static char pat[AKV_GLOB_PATTERN_MAX + 1];
    struct akv_glob *g;
    char key[16];
    int hits = 0;

    memset(pat, 'b', sizeof(pat));
    pat[0] = '*';
    pat[1] = '[';
    pat[AKV_GLOB_PATTERN_MAX - 2] = ']';
    pat[AKV_GLOB_PATTERN_MAX - 1] = 'q';
    ck_assert_int_eq(akv_glob_compile(pat, AKV_GLOB_PATTERN_MAX + 1, 0, &g), -E2BIG);
    ck_assert_ptr_null(g);
    ck_assert(!akv_glob_match(pat, AKV_GLOB_PATTERN_MAX + 1, "bq", 2, 0));
    ck_assert_int_eq(akv_glob_compile(pat, AKV_GLOB_PATTERN_MAX, 0, &g), 0);
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(key, sizeof(key), "w%06dbq", i);
        hits += akv_glob_exec(g, key, (size_t)n);
    }
    ck_assert_int_eq(hits, 200000);
    ck_assert(!akv_glob_matches_all(g));
    akv_glob_free(g);

    /* A long run of literal segments against a long key of 'a's. */
    for (size_t i = 0; i < AKV_GLOB_PATTERN_MAX; i++)
        pat[i] = i % 2 ? 'a' : '*';
    pat[AKV_GLOB_PATTERN_MAX - 1] = 'b';
    ck_assert_int_eq(akv_glob_compile(pat, AKV_GLOB_PATTERN_MAX, 0, &g), 0);
    {
        static char a[4096];
        memset(a, 'a', sizeof(a));
        for (int i = 0; i < 1000; i++)
            ck_assert(!akv_glob_exec(g, a, sizeof(a)));
    }
    akv_glob_free(g);

    ck_assert_int_eq(akv_glob_compile("***", 3, 0, &g), 0);
    ck_assert(akv_glob_matches_all(g));
    akv_glob_free(g);
    ck_assert_int_eq(akv_glob_compile("", 0, 0, &g), 0);
    ck_assert(!akv_glob_matches_all(g));
    akv_glob_free(g);
    akv_glob_free(NULL);
}
END_TEST

static Suite *glob_suite(void)
{
    Suite *s = suite_create("glob");
    TCase *tc = tcase_create("match");

    tcase_add_test(tc, test_literal);
    tcase_add_test(tc, test_star);
    tcase_add_test(tc, test_question);
    tcase_add_test(tc, test_class);
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_nocase);
    tcase_add_test(tc, test_binary);
    tcase_add_test(tc, test_pathological);
    tcase_add_test(tc, test_differential);
    tcase_add_test(tc, test_long_segments);
    tcase_add_test(tc, test_limits);
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(glob_suite());
}
