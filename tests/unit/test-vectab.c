/*
 * test-vectab.c - the word/vector table the loaders fill: argument checks,
 * copies of words and vectors, duplicate detection (first occurrence wins,
 * failed adds leave the table unchanged), and growth to 500,000 rows.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/vectab.h"

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

START_TEST(test_init_limits)
{
    struct akv_vectab t;

    memset(&t, 0x5a, sizeof(t));
    ck_assert_int_eq(akv_vectab_init(&t, 0), -EINVAL);
    ck_assert(all_zero(&t, sizeof(t)));
    ck_assert_int_eq(akv_vectab_init(&t, AKV_DIM_MAX + 1), -EINVAL);
    ck_assert(all_zero(&t, sizeof(t)));
    ck_assert_int_eq(akv_vectab_init(&t, AKV_DIM_MAX), 0);
    ck_assert_uint_eq(t.dim, AKV_DIM_MAX);
    ck_assert_uint_eq(t.count, 0);
    akv_vectab_fini(&t);
    ck_assert_int_eq(akv_vectab_init(&t, 1), 0);
    akv_vectab_fini(&t);
}
END_TEST

START_TEST(test_fini_is_safe)
{
    struct akv_vectab t;
    float v[2] = {1, 2};

    akv_vectab_fini(NULL);
    ck_assert_int_eq(akv_vectab_init(&t, 2), 0);
    ck_assert_int_eq(akv_vectab_add(&t, "a", 1, v), 0);
    akv_vectab_fini(&t);
    ck_assert(all_zero(&t, sizeof(t)));
    /* A finalised table is zeroed, so finalising it again is harmless. */
    akv_vectab_fini(&t);
}
END_TEST

START_TEST(test_add_copies)
{
    struct akv_vectab t;
    char word[8] = "cat";
    float v[3] = {1.5f, -2.0f, 0.25f};

    ck_assert_int_eq(akv_vectab_init(&t, 3), 0);
    ck_assert_int_eq(akv_vectab_add(&t, word, 3, v), 0);
    ck_assert_int_eq(akv_vectab_add(&t, "dog", 3, (float[]){4, 5, 6}), 0);
    /* The table owns copies: changing the caller's buffers changes nothing. */
    strcpy(word, "xyz");
    v[0] = 99;
    ck_assert_uint_eq(t.count, 2);
    ck_assert_str_eq(akv_vectab_word(&t, 0), "cat");
    ck_assert_str_eq(akv_vectab_word(&t, 1), "dog");
    ck_assert(akv_vectab_vec(&t, 0)[0] == 1.5f);
    ck_assert(akv_vectab_vec(&t, 0)[2] == 0.25f);
    ck_assert(akv_vectab_vec(&t, 1)[1] == 5.0f);
    ck_assert_uint_eq(t.offs[0], 0);
    ck_assert_uint_eq(t.offs[1], 4);
    ck_assert_uint_eq(t.offs[2], t.words_len);
    ck_assert_uint_eq(t.words_len, 8);
    akv_vectab_fini(&t);
}
END_TEST

START_TEST(test_bad_words)
{
    struct akv_vectab t;
    char big[AKV_WORD_MAX + 1];
    float v[1] = {0};

    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(akv_vectab_init(&t, 1), 0);
    ck_assert_int_eq(akv_vectab_add(&t, "", 0, v), -EINVAL);
    ck_assert_int_eq(akv_vectab_add(&t, "a\0b", 3, v), -EINVAL);
    ck_assert_int_eq(akv_vectab_add(&t, big, AKV_WORD_MAX + 1, v), -EINVAL);
    ck_assert_uint_eq(t.count, 0);
    ck_assert_int_eq(akv_vectab_add(&t, big, AKV_WORD_MAX, v), 0);
    ck_assert_uint_eq(strlen(akv_vectab_word(&t, 0)), AKV_WORD_MAX);
    /* Bytes are stored as given; UTF-8 checking is the loaders' business. */
    ck_assert_int_eq(akv_vectab_add(&t, "\xff\xfe", 2, v), 0);
    ck_assert_uint_eq(t.count, 2);
    akv_vectab_fini(&t);
}
END_TEST

START_TEST(test_duplicates)
{
    struct akv_vectab t;
    size_t len;

    ck_assert_int_eq(akv_vectab_init(&t, 1), 0);
    ck_assert_int_eq(akv_vectab_add(&t, "ab", 2, (float[]){1}), 0);
    ck_assert_int_eq(akv_vectab_add(&t, "abc", 3, (float[]){2}), 0);
    ck_assert_int_eq(akv_vectab_add(&t, "a", 1, (float[]){3}), 0);
    len = t.words_len;
    ck_assert_int_eq(akv_vectab_add(&t, "ab", 2, (float[]){4}), -EEXIST);
    ck_assert_int_eq(akv_vectab_add(&t, "abc", 3, (float[]){5}), -EEXIST);
    ck_assert_int_eq(akv_vectab_add(&t, "a", 1, (float[]){6}), -EEXIST);
    /* Same bytes as a stored prefix are a different word. */
    ck_assert_int_eq(akv_vectab_add(&t, "abcd", 4, (float[]){7}), 0);
    ck_assert_uint_eq(t.count, 4);
    ck_assert_uint_eq(t.words_len, len + 5);
    ck_assert(akv_vectab_vec(&t, 0)[0] == 1.0f);
    ck_assert(akv_vectab_vec(&t, 1)[0] == 2.0f);
    ck_assert(akv_vectab_vec(&t, 2)[0] == 3.0f);
    akv_vectab_fini(&t);
}
END_TEST

/* Enough rows for every array and the duplicate set to be grown many
 * times; every row must still be found, and every re-add refused. */
START_TEST(test_growth)
{
    enum { N = 500000, DIM = 4 };
    struct akv_vectab t;
    char w[32];
    float v[DIM];

    ck_assert_int_eq(akv_vectab_init(&t, DIM), 0);
    for (size_t i = 0; i < N; i++) {
        int len = snprintf(w, sizeof(w), "w%zu", i);
        for (int d = 0; d < DIM; d++)
            v[d] = (float)i + (float)d / 8;
        ck_assert_int_eq(akv_vectab_add(&t, w, (size_t)len, v), 0);
    }
    ck_assert_uint_eq(t.count, N);
    ck_assert_uint_ge(t.cap, N);
    ck_assert_uint_ge(t.hcap, 2 * N);
    ck_assert_uint_eq(t.hcap & (t.hcap - 1), 0);
    ck_assert_uint_eq(t.offs[N], t.words_len);
    for (size_t i = 0; i < N; i += 997) {
        snprintf(w, sizeof(w), "w%zu", i);
        ck_assert_str_eq(akv_vectab_word(&t, i), w);
        ck_assert(akv_vectab_vec(&t, i)[3] == (float)i + 3.0f / 8);
    }
    for (size_t i = 0; i < N; i++) {
        int len = snprintf(w, sizeof(w), "w%zu", i);
        ck_assert_int_eq(akv_vectab_add(&t, w, (size_t)len, v), -EEXIST);
    }
    ck_assert_uint_eq(t.count, N);
    akv_vectab_fini(&t);
}
END_TEST

static Suite *vectab_suite(void)
{
    Suite *s = suite_create("vectab");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_init_limits);
    tcase_add_test(tc, test_fini_is_safe);
    tcase_add_test(tc, test_add_copies);
    tcase_add_test(tc, test_bad_words);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_growth);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(vectab_suite());
}
