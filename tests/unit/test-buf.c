/*
 * test-buf.c - the growable byte buffer (src/util/buf.c): growth by
 * doubling, appends, consuming from the front, sizes that overflow, reuse
 * after fini. The reply writer's use of it is in test-reply.c.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util/buf.h"

START_TEST(test_append_and_grow)
{
    struct akv_buf b;
    char chunk[1000];
    size_t prev = 0, grows = 0;

    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)i;
    akv_buf_init(&b);
    ck_assert_ptr_null(b.p);
    for (int i = 0; i < 5000; i++) {
        ck_assert_int_eq(akv_buf_append(&b, chunk, sizeof chunk), 0);
        if (b.cap != prev) {
            ck_assert(prev == 0 || b.cap >= 2 * prev);
            prev = b.cap;
            grows++;
        }
    }
    ck_assert_uint_eq(b.len, 5000 * sizeof chunk);
    ck_assert_uint_lt(grows, 40);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(memcmp(b.p + (size_t)i * sizeof chunk, chunk, sizeof chunk), 0);
    /* consume keeps the tail at the front, and the capacity. */
    akv_buf_consume(&b, b.len - 3);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.p, chunk + sizeof chunk - 3, 3), 0);
    ck_assert_uint_eq(b.cap, prev);
    akv_buf_consume(&b, 10);
    ck_assert_uint_eq(b.len, 0);
    akv_buf_fini(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

/* akv_buf_printf: short text through the stack, long text in place. */
START_TEST(test_printf)
{
    struct akv_buf b;
    char big[1000];

    akv_buf_init(&b);
    ck_assert_int_eq(akv_buf_printf(&b, "%s=%d", "a", 7), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert(memcmp(b.p, "a=7", 3) == 0);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(akv_buf_printf(&b, "[%s]", big), 0);
    ck_assert_uint_eq(b.len, 3 + 1001);
    ck_assert_int_eq(b.p[3], '[');
    ck_assert_int_eq(b.p[b.len - 1], ']');
    ck_assert_int_eq(b.p[b.len - 2], 'x');
    ck_assert_int_eq(akv_buf_printf(&b, "%s", ""), 0);
    ck_assert_uint_eq(b.len, 1004);
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_edges)
{
    struct akv_buf b;

    akv_buf_fini(NULL);
    akv_buf_init(&b);
    ck_assert_int_eq(akv_buf_append(&b, NULL, 0), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(akv_buf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(akv_buf_reserve(&b, SIZE_MAX), -ENOMEM);
    ck_assert_int_eq(akv_buf_reserve(&b, SIZE_MAX - 2), -ENOMEM);
    ck_assert_int_eq(akv_buf_append(&b, "x", SIZE_MAX - 1), -ENOMEM);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.p, "abc", 3), 0);
    ck_assert_int_eq(akv_buf_reserve(&b, 0), 0);
    akv_buf_consume(&b, 1);
    ck_assert_uint_eq(b.len, 2);
    ck_assert_int_eq(memcmp(b.p, "bc", 2), 0);
    ck_assert_int_eq(akv_buf_append(&b, "c", 1), 0);
    ck_assert_int_eq(akv_buf_reserve(&b, 100), 0);
    ck_assert_uint_ge(b.cap, 103);
    ck_assert_uint_eq(b.len, 3);
    akv_buf_fini(&b);
    ck_assert_int_eq(akv_buf_append(&b, "de", 2), 0);
    ck_assert_int_eq(memcmp(b.p, "de", 2), 0);
    akv_buf_fini(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_append_and_grow);
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_printf);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
