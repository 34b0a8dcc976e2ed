/*
 * test-text.c - the shared text helpers (src/util/text.c): quoting
 * untrusted bytes, the strict number parsers, the argument splitter and
 * akv_errf. The splitter's agreement with the configuration file is
 * checked in test-config.c, its use by the protocol in test-proto.c.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/text.h"

START_TEST(test_quote)
{
    char q[AKV_QUOTE_BUF], big[300];

    ck_assert_str_eq(akv_quote(q, "plain", 5), "plain");
    ck_assert_str_eq(akv_quote(q, "a\x01\x7f\t\n", 5), "a\\x01\\x7f\\x09\\x0a");
    ck_assert_str_eq(akv_quote(q, "it's a\\b", 8), "it\\x27s a\\x5cb");
    /* Valid UTF-8 shows as it is; bytes of text that is not are escaped. */
    ck_assert_str_eq(akv_quote(q, "h\xc3\xa9", 3), "h\xc3\xa9");
    ck_assert_str_eq(akv_quote(q, "h\xc3\xa9\xff", 4), "h\\xc3\\xa9\\xff");
    ck_assert_str_eq(akv_quote(q, "", 0), "");
    ck_assert_str_eq(akv_quote(q, "a\0b", 3), "a\\x00b");
    /* Cut at AKV_QUOTE_MAX bytes, and only between characters. */
    memset(big, 'x', sizeof big);
    ck_assert_uint_eq(strlen(akv_quote(q, big, sizeof big)), AKV_QUOTE_MAX + 3);
    ck_assert_str_eq(q + AKV_QUOTE_MAX, "...");
    big[AKV_QUOTE_MAX - 1] = '\xc3';
    big[AKV_QUOTE_MAX] = '\xa9';
    ck_assert_uint_eq(strlen(akv_quote(q, big, AKV_QUOTE_MAX + 2)), AKV_QUOTE_MAX - 1 + 3);
    /* The longest result fits the buffer: every byte escaped. */
    memset(big, 1, sizeof big);
    ck_assert_uint_eq(strlen(akv_quote(q, big, sizeof big)), 4 * AKV_QUOTE_MAX + 3);
}
END_TEST

/* A message quotes at most AKV_QUOTE_MAX bytes, and reads no more: a 16 MiB
 * argument costs what a short one does. The string ends at a page that
 * cannot be read, while its length claims a gigabyte. */
START_TEST(test_quote_reads_only_what_it_shows)
{
    long page = sysconf(_SC_PAGESIZE);
    char q[AKV_QUOTE_BUF], want[AKV_QUOTE_MAX + 4];
    char *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    char *s;

    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    s = map + page - AKV_QUOTE_MAX;
    memset(s, 'x', AKV_QUOTE_MAX);
    memset(want, 'x', AKV_QUOTE_MAX);
    memcpy(want + AKV_QUOTE_MAX, "...", 4);
    ck_assert_str_eq(akv_quote(q, s, (size_t)1 << 30), want);
    s[AKV_QUOTE_MAX - 1] = '\xc3'; /* a character the cut falls inside */
    want[AKV_QUOTE_MAX - 1] = '\0';
    ck_assert_str_eq(akv_quote(q, s, (size_t)1 << 30), strcat(want, "..."));
    munmap(map, (size_t)page * 2);
}
END_TEST

START_TEST(test_escape)
{
    char out[16];
    size_t used, took;

    /* Lenient: newlines as \n and \r, tab, quotes and backslashes kept. */
    took = akv_escape(out, sizeof out, "a\nb\r\t'\\", 7, 0, &used);
    ck_assert_uint_eq(took, 7);
    ck_assert_str_eq(out, "a\\nb\\r\t'\\");
    ck_assert_uint_eq(used, strlen(out));
    /* Stops before an escape that would not fit. */
    took = akv_escape(out, 6,
                      "ab\x01"
                      "cd",
                      5, AKV_ESC_STRICT, &used);
    ck_assert_uint_eq(took, 2);
    ck_assert_str_eq(out, "ab");
    /* ...and not inside a character. */
    took = akv_escape(out, 5, "abc\xc3\xa9", 5, 0, &used);
    ck_assert_uint_eq(took, 3);
    ck_assert_str_eq(out, "abc");
    ck_assert_uint_eq(akv_utf8_cut("abc\xc3", 4), 3);
    ck_assert_uint_eq(akv_utf8_cut("abc\xe2\x9c", 5), 3);
    ck_assert_uint_eq(akv_utf8_cut("abc\xe2\x9c\x93", 6), 6);
    ck_assert_uint_eq(akv_utf8_cut("abc", 3), 3);
}
END_TEST

START_TEST(test_numbers)
{
    long long v = 7;
    unsigned long long u = 7;
    double d = 7;

    ck_assert_int_eq(akv_parse_ll("-42", 3, -100, 100, &v), 0);
    ck_assert_int_eq(v, -42);
    ck_assert_int_eq(akv_parse_ll("9223372036854775807", 19, LLONG_MIN, LLONG_MAX, &v), 0);
    ck_assert_int_eq(v, LLONG_MAX);
    ck_assert_int_eq(akv_parse_ll("-9223372036854775808", 20, LLONG_MIN, LLONG_MAX, &v), 0);
    ck_assert(v == LLONG_MIN);
    v = 7;
    ck_assert_int_eq(akv_parse_ll("9223372036854775808", 19, LLONG_MIN, LLONG_MAX, &v), -EINVAL);
    ck_assert_int_eq(akv_parse_ll("101", 3, -100, 100, &v), -EINVAL);
    ck_assert_int_eq(akv_parse_ll("+1", 2, -100, 100, &v), -EINVAL);
    ck_assert_int_eq(akv_parse_ll(" 1", 2, -100, 100, &v), -EINVAL);
    ck_assert_int_eq(akv_parse_ll("1 ", 2, -100, 100, &v), -EINVAL);
    ck_assert_int_eq(akv_parse_ll("-", 1, -100, 100, &v), -EINVAL);
    ck_assert_int_eq(akv_parse_ll("", 0, -100, 100, &v), -EINVAL);
    ck_assert_int_eq(v, 7); /* untouched by every failure */
    ck_assert_int_eq(akv_parse_ull("18446744073709551615", 20, ULLONG_MAX, &u), 0);
    ck_assert(u == ULLONG_MAX);
    ck_assert_int_eq(akv_parse_ull("18446744073709551616", 20, ULLONG_MAX, &u), -EINVAL);
    ck_assert_int_eq(akv_parse_ull("12", 2, 11, &u), -EINVAL);
    ck_assert_int_eq(akv_parse_ull("1\0", 2, 11, &u), -EINVAL);
    ck_assert_int_eq(akv_parse_double("0.25", 4, &d), 0);
    ck_assert(d == 0.25);
    ck_assert_int_eq(akv_parse_double("-1e3", 4, &d), 0);
    ck_assert(d == -1000);
    ck_assert_int_eq(akv_parse_double("+.5", 3, &d), 0);
    ck_assert(d == 0.5);
    ck_assert_int_eq(akv_parse_double("1e-400", 6, &d), 0); /* underflow reads as 0 */
    ck_assert(d == 0);
    d = 7;
    ck_assert_int_eq(akv_parse_double("1e400", 5, &d), -EINVAL);
    ck_assert_int_eq(akv_parse_double("inf", 3, &d), -EINVAL);
    ck_assert_int_eq(akv_parse_double("nan", 3, &d), -EINVAL);
    ck_assert_int_eq(akv_parse_double("0x1p-3", 6, &d), -EINVAL);
    ck_assert_int_eq(akv_parse_double(" 1", 2, &d), -EINVAL);
    ck_assert_int_eq(akv_parse_double("1.5x", 4, &d), -EINVAL);
    ck_assert_int_eq(akv_parse_double("e5", 2, &d), -EINVAL);
    ck_assert_int_eq(akv_parse_double("1\0", 2, &d), -EINVAL);
    ck_assert(d == 7);
}
END_TEST

/* Splits line into at most 8 arguments, "|"-joined into out; returns the
 * count, or the splitter's error. */
static int split(const char *line, char *out, size_t cap, const char **why)
{
    char buf[64];
    size_t pos = 0, o = 0, n = strlen(line);
    struct akv_text_arg arg;
    int rc, argc = 0;

    out[0] = '\0';
    while ((rc = akv_text_split_next(line, n, &pos, buf, sizeof buf, &arg, why)) > 0) {
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s", argc ? "|" : "", (int)arg.len, arg.p);
        ck_assert(arg.quoted == (arg.p == buf));
        argc++;
    }
    return rc < 0 ? rc : argc;
}

START_TEST(test_split)
{
    char out[128];
    const char *why = NULL;
    char small[2];
    size_t pos = 0;
    struct akv_text_arg arg;

    ck_assert_int_eq(split("  SET\tk \r v\v\f", out, sizeof out, &why), 3);
    ck_assert_str_eq(out, "SET|k|v");
    ck_assert_int_eq(split("a\"b c\"d", out, sizeof out, &why), -EINVAL);
    ck_assert_str_eq(why, "a closing quote must be followed by a blank");
    ck_assert_int_eq(split("a\"b c\" d", out, sizeof out, &why), 2);
    ck_assert_str_eq(out, "ab c|d");
    ck_assert_int_eq(split("\"\\x41\\n\\q\\x4\" 'it\\'s \\n'", out, sizeof out, &why), 2);
    ck_assert_str_eq(out, "A\nqx4|it's \\n");
    ck_assert_int_eq(split("\"abc", out, sizeof out, &why), -EINVAL);
    ck_assert_str_eq(why, "unbalanced quotes");
    ck_assert_int_eq(split("\"abc\\", out, sizeof out, &why), -EINVAL);
    ck_assert_int_eq(split("'abc\\'", out, sizeof out, &why), -EINVAL);
    ck_assert_int_eq(split("", out, sizeof out, &why), 0);
    ck_assert_int_eq(split("\"\" ''", out, sizeof out, &why), 2);
    /* A quoted argument that does not fit, and one only measured. */
    ck_assert_int_eq(akv_text_split_next("\"abc\"", 5, &pos, small, sizeof small, &arg, &why),
                     -ENOSPC);
    pos = 0;
    ck_assert_int_eq(akv_text_split_next("x\"abc\"", 6, &pos, NULL, 0, &arg, &why), 1);
    ck_assert_ptr_null(arg.p);
    ck_assert_uint_eq(arg.len, 4);
    ck_assert_uint_eq(pos, 6);
}
END_TEST

START_TEST(test_errf)
{
    char err[8] = "x";

    akv_errf(err, sizeof err, "%s %d", "value", 12345);
    ck_assert_str_eq(err, "value 1");
    akv_errf(NULL, 10, "%d", 1);
    akv_errf(err, 0, "%d", 1);
    ck_assert_str_eq(err, "value 1");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_quote);
    tcase_add_test(tc, test_quote_reads_only_what_it_shows);
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_errf);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
