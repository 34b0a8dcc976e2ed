/*
 * test-glob.c - the Redis-style glob matcher (src/glob.c).
 */
#include <check.h>

#include "runsuite.h"
#include <stdlib.h>
#include <string.h>

#include "glob.h"

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
    tcase_set_timeout(tc, 10);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(glob_suite());
}
