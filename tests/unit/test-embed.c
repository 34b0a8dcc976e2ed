/*
 * test-embed.c - text to vector: single words, phrase means, whitespace,
 * case, and every refusal with the message a client will read.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/embed.h"
#include "attnkv/vectab.h"
#include "attnkv/vocab.h"

static struct akv_vocab *voc;

static void setup(void)
{
    struct akv_vectab t;
    char err[256];
    const char *w[] = {"sphere", "shape", "ball", "rhombus", "école"};
    ck_assert_int_eq(akv_vectab_init(&t, 2), 0);
    for (int i = 0; i < 5; i++) {
        float v[2] = {(float)i, 1.0f / 3.0f * (float)(i + 1)};
        ck_assert_int_eq(akv_vectab_add(&t, w[i], strlen(w[i]), v), 0);
    }
    ck_assert_int_eq(akv_vocab_from_table(&voc, &t, err, sizeof err), 0);
    akv_vectab_fini(&t);
}

static void teardown(void)
{
    akv_vocab_destroy(voc);
}

START_TEST(test_word_and_phrase)
{
    float out[2];
    char err[256];

    ck_assert_int_eq(akv_embed_text(voc, "ball", 4, out, err, sizeof err), 0);
    ck_assert(out[0] == 2.0f && out[1] == 1.0f);
    ck_assert_int_eq(akv_embed_text(voc, "  Ball\t", 7, out, err, sizeof err), 0);
    ck_assert(out[0] == 2.0f);
    /* Mean of sphere (0, 1/3), shape (1, 2/3), rhombus (3, 4/3). */
    ck_assert_int_eq(akv_embed_text(voc, "sphere shape\n rhombus", 21, out, err, sizeof err), 0);
    ck_assert(fabsf(out[0] - 4.0f / 3.0f) < 1e-6f);
    ck_assert(fabsf(out[1] - (1.0f / 3 + 2.0f / 3 + 4.0f / 3) / 3) < 1e-6f);
    /* A repeated word weighs twice. */
    ck_assert_int_eq(akv_embed_text(voc, "ball ball sphere", 16, out, err, sizeof err), 0);
    ck_assert(fabsf(out[0] - 4.0f / 3.0f) < 1e-6f);
    ck_assert_int_eq(akv_embed_text(voc, "ÉCOLE", strlen("ÉCOLE"), out, err, sizeof err), 0);
    ck_assert(out[0] == 4.0f);
}
END_TEST

START_TEST(test_refusals)
{
    float out[2];
    char err[256], big[AKV_TEXT_MAX + 2];

    ck_assert_int_eq(akv_embed_text(voc, "rhombsu", 7, out, err, sizeof err), -ENOENT);
    ck_assert_str_eq(err, "unknown word 'rhombsu' (did you mean 'rhombus'?)");
    ck_assert_int_eq(akv_embed_text(voc, "ball qqqq", 9, out, err, sizeof err), -ENOENT);
    ck_assert_str_eq(err, "unknown word 'qqqq'");
    ck_assert_int_eq(akv_embed_text(voc, "", 0, out, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "empty text");
    ck_assert_int_eq(akv_embed_text(voc, " \t\r\n", 4, out, err, sizeof err), -EINVAL);
    ck_assert_int_eq(akv_embed_text(voc, "ball\xff", 5, out, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "text is not valid UTF-8");
    /* Control bytes in a client's word never reach the message raw. */
    ck_assert_int_eq(akv_embed_text(voc,
                                    "a\x01"
                                    "b",
                                    3, out, err, sizeof err),
                     -ENOENT);
    ck_assert_str_eq(err, "unknown word 'a\\x01b'");
    memset(big, 'a', sizeof big);
    ck_assert_int_eq(akv_embed_text(voc, big, sizeof big, out, err, sizeof err), -EINVAL);
    ck_assert(strstr(err, "too long") != NULL);
    {
        char many[AKV_PHRASE_WORDS_MAX * 5 + 8] = "";
        for (int i = 0; i <= AKV_PHRASE_WORDS_MAX; i++)
            strcat(many, "ball ");
        ck_assert_int_eq(akv_embed_text(voc, many, strlen(many), out, err, sizeof err), -EINVAL);
        ck_assert(strstr(err, "too many words") != NULL);
    }
}
END_TEST

START_TEST(test_single_id)
{
    ck_assert_int_eq(akv_embed_single_id(voc, "shape", 5), 1);
    ck_assert_int_eq(akv_embed_single_id(voc, " SHAPE ", 7), 1);
    ck_assert_int_eq(akv_embed_single_id(voc, "shape ball", 10), -1);
    ck_assert_int_eq(akv_embed_single_id(voc, "nope", 4), -1);
    ck_assert_int_eq(akv_embed_single_id(voc, "  ", 2), -1);
}
END_TEST

static Suite *embed_suite(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_word_and_phrase);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_single_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(embed_suite());
}
