/*
 * test-reply.c - Check suite for the reply writer (src/proto/reply.c): the
 * exact bytes of every encoder in RESP2 and RESP3, double formatting, CR/LF
 * scrubbing and buffer growth.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "proto/reply.h"

/* Asserts that the buffer holds exactly the literal s, then empties it. */
#define EXPECT(b, s) expect_bytes((b), (s), sizeof(s) - 1)

static void expect_bytes(struct akv_buf *b, const char *s, size_t n)
{
    ck_assert_msg(b->len == n && memcmp(b->p, s, n) == 0, "got %zu bytes \"%.*s\", want \"%s\"",
                  b->len, (int)b->len, b->p ? b->p : "", s);
    ck_assert(b->len <= b->cap);
    akv_buf_consume(b, b->len);
}

START_TEST(test_simple_encoders)
{
    struct akv_buf b;

    akv_buf_init(&b);
    ck_assert_int_eq(akv_reply_status(&b, "OK"), 0);
    EXPECT(&b, "+OK\r\n");
    ck_assert_int_eq(akv_reply_status(&b, ""), 0);
    EXPECT(&b, "+\r\n");
    ck_assert_int_eq(akv_reply_error(&b, "ERR unknown command"), 0);
    EXPECT(&b, "-ERR unknown command\r\n");
    ck_assert_int_eq(akv_reply_errorf(&b, "ERR wrong number of arguments for '%s'", "get"), 0);
    EXPECT(&b, "-ERR wrong number of arguments for 'get'\r\n");
    ck_assert_int_eq(akv_reply_nil(&b), 0);
    EXPECT(&b, "$-1\r\n");
    ck_assert_int_eq(akv_reply_nil_array(&b), 0);
    EXPECT(&b, "*-1\r\n");
    ck_assert_int_eq(akv_reply_array(&b, 0), 0);
    EXPECT(&b, "*0\r\n");
    ck_assert_int_eq(akv_reply_array(&b, 3), 0);
    EXPECT(&b, "*3\r\n");
    ck_assert_int_eq(akv_reply_array(&b, 1234567), 0);
    EXPECT(&b, "*1234567\r\n");
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_int)
{
    struct akv_buf b;

    akv_buf_init(&b);
    ck_assert_int_eq(akv_reply_int(&b, 0), 0);
    EXPECT(&b, ":0\r\n");
    ck_assert_int_eq(akv_reply_int(&b, 42), 0);
    EXPECT(&b, ":42\r\n");
    ck_assert_int_eq(akv_reply_int(&b, -1), 0);
    EXPECT(&b, ":-1\r\n");
    ck_assert_int_eq(akv_reply_int(&b, INT64_MAX), 0);
    EXPECT(&b, ":9223372036854775807\r\n");
    ck_assert_int_eq(akv_reply_int(&b, INT64_MIN), 0);
    EXPECT(&b, ":-9223372036854775808\r\n");
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_bulk)
{
    struct akv_buf b;

    akv_buf_init(&b);
    ck_assert_int_eq(akv_reply_bulk(&b, "hello", 5), 0);
    EXPECT(&b, "$5\r\nhello\r\n");
    ck_assert_int_eq(akv_reply_bulk(&b, "", 0), 0);
    EXPECT(&b, "$0\r\n\r\n");
    ck_assert_int_eq(akv_reply_bulk(&b, NULL, 0), 0);
    EXPECT(&b, "$0\r\n\r\n");
    /* Bulks are binary-safe: nothing is scrubbed. */
    ck_assert_int_eq(akv_reply_bulk(&b, "a\0b\r\n", 5), 0);
    EXPECT(&b, "$5\r\na\0b\r\n\r\n");
    ck_assert_int_eq(akv_reply_bulk_str(&b, "héllo"), 0);
    EXPECT(&b, "$6\r\nhéllo\r\n");
    akv_buf_fini(&b);
}
END_TEST

/* Encodes v and returns the text inside the bulk, NUL-terminated. */
static char *double_text(double v, char *out, size_t cap)
{
    struct akv_buf b;
    char *crlf;
    size_t n;

    akv_buf_init(&b);
    ck_assert_int_eq(akv_reply_bulk_double(&b, v), 0);
    ck_assert(b.len > 0 && b.p[0] == '$');
    crlf = memchr(b.p, '\r', b.len);
    ck_assert_ptr_nonnull(crlf);
    n = b.len - (size_t)(crlf + 2 - b.p) - 2;
    ck_assert_uint_eq(strtoul(b.p + 1, NULL, 10), n);
    ck_assert(n < cap);
    memcpy(out, crlf + 2, n);
    out[n] = '\0';
    ck_assert(memcmp(crlf + 2 + n, "\r\n", 2) == 0);
    akv_buf_fini(&b);
    return out;
}

START_TEST(test_double)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.5, "0.5"},
        {1e-7, "1e-07"},
        {-3.25, "-3.25"},
        {0.0, "0"},
        {100.0, "100"},
        {1e21, "1e+21"},
        {123456.0, "123456"},
        {0.1, "0.1"},
        {1.0 / 3.0, "0.3333333333333333"},
        {2.0 / 3.0, "0.6666666666666666"},
        {0.1 + 0.2, "0.30000000000000004"},
    };
    char text[64];
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_str_eq(double_text(cases[i].v, text, sizeof text), cases[i].text);
    ck_assert_str_eq(double_text(INFINITY, text, sizeof text), "inf");
    ck_assert_str_eq(double_text(-INFINITY, text, sizeof text), "-inf");
    ck_assert_str_eq(double_text(NAN, text, sizeof text), "nan");
}
END_TEST

/* Whatever the value, the text reads back as the same double. */
/* The protocol-dependent types: RESP3's own after HELLO 3, RESP2's
 * stand-ins otherwise. */
START_TEST(test_resp3_types)
{
    struct akv_buf b;

    akv_buf_init(&b);
    ck_assert_int_eq(akv_reply_map(&b, 3, 2), 0);
    EXPECT(&b, "%2\r\n");
    ck_assert_int_eq(akv_reply_map(&b, 2, 2), 0);
    EXPECT(&b, "*4\r\n");
    ck_assert_int_eq(akv_reply_set(&b, 3, 5), 0);
    EXPECT(&b, "~5\r\n");
    ck_assert_int_eq(akv_reply_set(&b, 2, 5), 0);
    EXPECT(&b, "*5\r\n");
    ck_assert_int_eq(akv_reply_push(&b, 3, 1), 0);
    EXPECT(&b, ">1\r\n");
    ck_assert_int_eq(akv_reply_double(&b, 3, 0.5), 0);
    EXPECT(&b, ",0.5\r\n");
    ck_assert_int_eq(akv_reply_double(&b, 3, -INFINITY), 0);
    EXPECT(&b, ",-inf\r\n");
    ck_assert_int_eq(akv_reply_double(&b, 2, 0.5), 0);
    EXPECT(&b, "$3\r\n0.5\r\n");
    ck_assert_int_eq(akv_reply_bool(&b, 3, 1), 0);
    EXPECT(&b, "#t\r\n");
    ck_assert_int_eq(akv_reply_bool(&b, 2, 0), 0);
    EXPECT(&b, ":0\r\n");
    ck_assert_int_eq(akv_reply_null(&b, 3), 0);
    EXPECT(&b, "_\r\n");
    ck_assert_int_eq(akv_reply_null(&b, 2), 0);
    EXPECT(&b, "$-1\r\n");
    ck_assert_int_eq(akv_reply_null_array(&b, 2), 0);
    EXPECT(&b, "*-1\r\n");
    ck_assert_int_eq(akv_reply_verbatim(&b, 3, "a:1\r\n", 5), 0);
    EXPECT(&b, "=9\r\ntxt:a:1\r\n\r\n");
    ck_assert_int_eq(akv_reply_verbatim(&b, 2, "a:1\r\n", 5), 0);
    EXPECT(&b, "$5\r\na:1\r\n\r\n");
    ck_assert_int_eq(akv_reply_verbatim(&b, 3, "", 0), 0);
    EXPECT(&b, "=4\r\ntxt:\r\n");
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_double_roundtrip)
{
    static const double fixed[] = {
        1.0 / 3.0, 0.1,
        0.2,       0.3,
        1e-300,    5e-324,
        DBL_MAX,   DBL_MIN,
        -DBL_MAX,  123456789.123456789,
        -0.0,      9007199254740993.0,
    };
    uint64_t seed = 88172645463325252ull;
    char text[64];
    size_t i;

    for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        ck_assert(strtod(double_text(fixed[i], text, sizeof text), NULL) == fixed[i]);
    for (i = 0; i < 20000; i++) {
        double v;

        /* xorshift64 bit patterns cover every exponent; skip NaN and inf. */
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        memcpy(&v, &seed, sizeof v);
        if (v != v || v - v != 0)
            continue;
        ck_assert_msg(strtod(double_text(v, text, sizeof text), NULL) == v, "%s", text);
        ck_assert(strlen(text) <= 24);
    }
}
END_TEST

START_TEST(test_scrub)
{
    struct akv_buf b;
    char longmsg[1000];

    akv_buf_init(&b);
    ck_assert_int_eq(akv_reply_status(&b, "a\r\nb\nc\r"), 0);
    EXPECT(&b, "+a  b c \r\n");
    ck_assert_int_eq(akv_reply_error(&b, "ERR bad\r\n+OK"), 0);
    EXPECT(&b, "-ERR bad  +OK\r\n");
    ck_assert_int_eq(akv_reply_errorf(&b, "ERR %s", "x\ny"), 0);
    EXPECT(&b, "-ERR x y\r\n");

    /* Longer than errorf's stack buffer: formatted in place. */
    memset(longmsg, 'z', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    longmsg[500] = '\n';
    ck_assert_int_eq(akv_reply_status(&b, "keep"), 0);
    ck_assert_int_eq(akv_reply_errorf(&b, "ERR %s!", longmsg), 0);
    ck_assert_uint_eq(b.len, 7 + 1 + 4 + sizeof longmsg - 1 + 1 + 2);
    ck_assert(memcmp(b.p, "+keep\r\n-ERR zz", 14) == 0);
    ck_assert(memchr(b.p + 7, '\n', b.len - 8) == NULL);
    ck_assert(b.p[7 + 5 + 500] == ' ');
    ck_assert(memcmp(b.p + b.len - 3, "!\r\n", 3) == 0);
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_growth)
{
    struct akv_buf b;
    static char chunk[4096];
    size_t i, n = 2500, prev_cap = 0, reallocs = 0;

    for (i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)i;
    akv_buf_init(&b);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(akv_reply_bulk(&b, chunk, sizeof chunk), 0);
        if (b.cap != prev_cap) {
            /* Growth doubles, so capacity changes only logarithmically. */
            ck_assert(prev_cap == 0 || b.cap >= 2 * prev_cap);
            prev_cap = b.cap;
            reallocs++;
        }
    }
    ck_assert_uint_eq(b.len, n * (sizeof chunk + 9));
    ck_assert(b.len > 8u << 20);
    ck_assert(reallocs < 40);

    /* Every reply parses back with the request parser, intact. */
    {
        struct akv_slice arg = {NULL, 0};
        size_t off = 0;

        for (i = 0; i < n; i++) {
            char hdr[] = "*1\r\n";
            char *one = malloc(4 + sizeof chunk + 9);
            struct akv_proto_req req = {.argv = &arg, .argv_cap = 1};

            memcpy(one, hdr, 4);
            memcpy(one + 4, b.p + off, sizeof chunk + 9);
            ck_assert_int_eq(akv_proto_parse(one, 4 + sizeof chunk + 9, NULL, &req, NULL, NULL),
                             (long)(4 + sizeof chunk + 9));
            ck_assert(arg.len == sizeof chunk && memcmp(arg.p, chunk, sizeof chunk) == 0);
            off += sizeof chunk + 9;
            free(one);
        }
    }

    /* consume keeps the tail, and the capacity. */
    akv_buf_consume(&b, b.len - 5);
    ck_assert_uint_eq(b.len, 5);
    ck_assert(memcmp(b.p, "\xfd\xfe\xff\r\n", 5) == 0);
    ck_assert_uint_eq(b.cap, prev_cap);
    akv_buf_consume(&b, 100);
    ck_assert_uint_eq(b.len, 0);
    akv_buf_fini(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_buf_edges)
{
    struct akv_buf b;

    /* The buffer's own edges are test-buf.c's; here, a reply that cannot
     * fit changes nothing, and a finished buffer takes replies again. */
    akv_buf_init(&b);
    ck_assert_int_eq(akv_buf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(akv_reply_bulk(&b, "x", SIZE_MAX - 8), -ENOMEM);
    ck_assert_uint_eq(b.len, 3);
    ck_assert(memcmp(b.p, "abc", 3) == 0);
    akv_buf_consume(&b, 1);
    EXPECT(&b, "bc");
    akv_buf_fini(&b);
    ck_assert_int_eq(akv_reply_nil(&b), 0);
    EXPECT(&b, "$-1\r\n");
    akv_buf_fini(&b);
}
END_TEST

static Suite *reply_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *tc = tcase_create("encoders");

    tcase_add_test(tc, test_simple_encoders);
    tcase_add_test(tc, test_int);
    tcase_add_test(tc, test_bulk);
    tcase_add_test(tc, test_double);
    tcase_add_test(tc, test_double_roundtrip);
    tcase_add_test(tc, test_resp3_types);
    tcase_add_test(tc, test_scrub);
    suite_add_tcase(s, tc);

    tc = tcase_create("buffer");
    tcase_add_test(tc, test_growth);
    tcase_add_test(tc, test_buf_edges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(reply_suite());
}
