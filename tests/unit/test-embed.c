/*
 * test-embed.c - text to vector: single words, phrase means, whitespace,
 * case, and every refusal with the message a client will read; the
 * tokenizer on a vocabulary with GloVe's conventions (punctuation, clitics,
 * abbreviations, UTF-8, the word limit after splitting), UNKNOWN skip and
 * SIF weighting.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/embed.h"
#include "attnkv/vectab.h"
#include "attnkv/vocab.h"
#include "embedcheck.h"
#include "replay.h"

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

/* A vocabulary with GloVe 6B's conventions: lowercase, punctuation and
 * clitics as words of their own, a few dotted abbreviations. */
static const char *const gw[] = {
    "the",    ",",   ".",   "mr.",   "smith", "do", "n't",  "'s", "cherry",
    "please", "!",   "\"",  "hello", "u.s.",  "us", "kiwi", "-",  "flavoured",
    "e-mail", "dog", "...", "école", "dr",    "we", "?",
};
#define NGW (sizeof(gw) / sizeof(gw[0]))
static struct akv_vocab *gv;

static void gsetup(void)
{
    struct akv_vectab t;
    char err[256];

    ck_assert_int_eq(akv_vectab_init(&t, 2), 0);
    for (size_t i = 0; i < NGW; i++) {
        float v[2] = {(float)i, (float)(i % 3) - 1.0f};
        ck_assert_int_eq(akv_vectab_add(&t, gw[i], strlen(gw[i]), v), 0);
    }
    ck_assert_int_eq(akv_vocab_from_table(&gv, &t, err, sizeof err), 0);
    akv_vectab_fini(&t);
}

static void gteardown(void)
{
    akv_vocab_destroy(gv);
}

/* The words text embeds to, as "w1|w2|...", or "ERR <message>". */
static const char *words_of(const char *text, enum akv_unknown u)
{
    static char got[2048];
    uint32_t ids[AKV_PHRASE_WORDS_MAX];
    size_t n;
    char err[256];
    int rc = akv_embed_words_opts(gv, text, strlen(text), u, ids, &n, NULL, err, sizeof err);

    if (rc < 0) {
        snprintf(got, sizeof got, "ERR %s", err);
        return got;
    }
    got[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(got, "|");
        strcat(got, akv_vocab_word(gv, ids[i], NULL));
    }
    return got;
}

START_TEST(test_tokens)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        /* Known tokens are used whole: punctuation given as a word counts. */
        {"cherry , please", "cherry|,|please"},
        {"e-mail", "e-mail"},
        {"Mr.", "mr."},
        {"U.S.", "u.s."},
        {"...", "..."},
        /* Unknown tokens are split; split-off punctuation does not count. */
        {"the CHERRY, please.", "the|cherry|please"},
        {"cherry,", "cherry"},
        {"Mr., Smith", "mr.|smith"},
        {"Dr. Smith", "dr|smith"},
        {"\"hello!\"", "hello"},
        {"cherry...", "cherry"},
        {"(cherry)", "cherry"},
        {"don't", "do|n't"},
        {"DON\xe2\x80\x99T", "do|n't"},
        {"dog's", "dog|'s"},
        {"we're", "we"}, /* a clitic the vocabulary lacks is dropped */
        {"u.s", "us"},   /* without its inner period */
        {"kiwi-flavoured", "kiwi|flavoured"},
        {"kiwi/cherry,dog", "kiwi|cherry|dog"},
        {"\xc2\xab\xc3\xa9\x63ole\xc2\xbb", "école"}, /* «école» */
        /* Nothing but punctuation: that is the text. */
        {",,", ",|,"},
        {"?!", "?|!"},
        {"!?\"", "!|?|\""},
        /* Unknown words, after splitting. */
        {"qqq,", "ERR unknown word 'qqq'"},
        {"cherry-qqq", "ERR unknown word 'qqq'"},
        {"\xe2\x80\x94", "ERR unknown word '\xe2\x80\x94'"}, /* an em dash nobody knows */
        {"cherry \xe2\x80\x94", "cherry"},
        {"\xe2\x80\x94,", ","}, /* the punctuation the vocabulary knows */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = words_of(cases[i].text, AKV_UNKNOWN_ERROR);
        ck_assert_msg(strcmp(got, cases[i].want) == 0, "%s: got %s, want %s", cases[i].text, got,
                      cases[i].want);
    }
}
END_TEST

START_TEST(test_skip)
{
    uint32_t ids[AKV_PHRASE_WORDS_MAX];
    struct akv_embed_skips sk;
    const char *text = "xyzzy, the CHERRY qqq! zz-top";
    size_t n;
    char err[256];

    ck_assert_str_eq(words_of(text, AKV_UNKNOWN_ERROR), "ERR unknown word 'xyzzy'");
    ck_assert_str_eq(words_of(text, AKV_UNKNOWN_SKIP), "the|cherry");
    ck_assert_int_eq(akv_embed_words_opts(gv, text, strlen(text), AKV_UNKNOWN_SKIP, ids, &n, &sk,
                                          err, sizeof err),
                     0);
    ck_assert_uint_eq(sk.n, 4);
    ck_assert_uint_eq(sk.shown, 4);
    ck_assert(sk.piece[0].off == 0 && sk.piece[0].len == 5);
    ck_assert(strncmp(text + sk.piece[1].off, "qqq", sk.piece[1].len) == 0);
    ck_assert(strncmp(text + sk.piece[2].off, "zz", sk.piece[2].len) == 0);
    ck_assert(strncmp(text + sk.piece[3].off, "top", sk.piece[3].len) == 0);
    /* No known word left: still an error, naming one. */
    ck_assert_int_eq(
        akv_embed_words_opts(gv, "xyzzy qqq", 9, AKV_UNKNOWN_SKIP, ids, &n, &sk, err, sizeof err),
        -ENOENT);
    ck_assert_str_eq(err, "no known word in the text (unknown word 'xyzzy', ...)");
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(words_of("\xe2\x80\x94", AKV_UNKNOWN_SKIP),
                     "ERR no known word in the text (unknown word '\xe2\x80\x94')");
    ck_assert_str_eq(words_of("", AKV_UNKNOWN_SKIP), "ERR empty text");
    /* Punctuation split off skipped words is not the text's meaning: a
     * text of nothing but punctuation is ("?!"), one that had words is not. */
    ck_assert_str_eq(words_of("xyzzy!", AKV_UNKNOWN_SKIP),
                     "ERR no known word in the text (unknown word 'xyzzy')");
    ck_assert_str_eq(words_of("xyzzy, qqq!", AKV_UNKNOWN_SKIP),
                     "ERR no known word in the text (unknown word 'xyzzy', ...)");
    ck_assert_str_eq(words_of("xyzzy !", AKV_UNKNOWN_SKIP), "!");
    ck_assert_str_eq(words_of("?!", AKV_UNKNOWN_SKIP), "?|!");
}
END_TEST

START_TEST(test_limit_after_splitting)
{
    char text[AKV_TEXT_MAX];
    const char *got;

    /* 64 words, each with punctuation that does not count: fine. */
    text[0] = '\0';
    for (int i = 0; i < AKV_PHRASE_WORDS_MAX; i++)
        strcat(text, "cherry, ");
    got = words_of(text, AKV_UNKNOWN_ERROR);
    ck_assert(strncmp(got, "cherry|", 7) == 0);
    /* One token that splits into 65 words is too many. */
    text[0] = '\0';
    for (int i = 0; i <= AKV_PHRASE_WORDS_MAX; i++)
        strcat(text, "dog/");
    ck_assert_str_eq(words_of(text, AKV_UNKNOWN_ERROR), "ERR too many words (at most 64)");
    /* 65 punctuation marks and nothing else: too many too. */
    memset(text, '!', 65);
    text[65] = '\0';
    ck_assert_str_eq(words_of(text, AKV_UNKNOWN_ERROR), "ERR too many words (at most 64)");
    text[64] = '\0';
    ck_assert(strncmp(words_of(text, AKV_UNKNOWN_ERROR), "!|!|", 4) == 0);
}
END_TEST

START_TEST(test_sif)
{
    struct akv_embed_opts o = {AKV_UNKNOWN_ERROR, AKV_WEIGHTING_SIF};
    float out[2], one[2];
    char err[256];
    double n = (double)NGW, h = 0, w0, w8;

    for (int i = 1; i <= (int)NGW; i++)
        h += 1.0 / i;
    w0 = 1e-3 / (1e-3 + 1.0 / (1.0 * h)); /* "the", rank 0 */
    w8 = 1e-3 / (1e-3 + 1.0 / (9.0 * h)); /* "cherry", rank 8 */
    (void)n;
    ck_assert(fabs(akv_embed_sif_weight(gv, 0) - w0) < 1e-3 * w0);
    ck_assert(fabs(akv_embed_sif_weight(gv, 8) - w8) < 1e-3 * w8);
    ck_assert_int_eq(akv_embed_text_opts(gv, "the cherry", 10, &o, out, NULL, err, sizeof err), 0);
    {
        double a0 = akv_embed_sif_weight(gv, 0), a8 = akv_embed_sif_weight(gv, 8);
        double x = (a0 * 0 + a8 * 8) / (a0 + a8), y = (a0 * -1 + a8 * 1) / (a0 + a8);
        ck_assert(fabs(out[0] - x) < 1e-6 && fabs(out[1] - y) < 1e-6);
        ck_assert(out[0] > 4.0f); /* "cherry" weighs more than "the" */
    }
    /* One word: its row, whatever the weighting. */
    ck_assert_int_eq(akv_embed_text_opts(gv, "cherry!", 7, &o, one, NULL, err, sizeof err), 0);
    ck_assert(one[0] == 8.0f && one[1] == 1.0f);
}
END_TEST

START_TEST(test_option_names)
{
    enum akv_unknown u;
    enum akv_weighting w;

    ck_assert_int_eq(akv_unknown_parse("SKIP", 4, &u), 0);
    ck_assert_int_eq(u, AKV_UNKNOWN_SKIP);
    ck_assert_int_eq(akv_unknown_parse("error", 5, &u), 0);
    ck_assert_int_eq(u, AKV_UNKNOWN_ERROR);
    ck_assert_int_eq(akv_unknown_parse("skipp", 5, &u), -EINVAL);
    ck_assert_int_eq(akv_weighting_parse("Sif", 3, &w), 0);
    ck_assert_int_eq(w, AKV_WEIGHTING_SIF);
    ck_assert_int_eq(akv_weighting_parse("mean", 4, &w), 0);
    ck_assert_int_eq(akv_weighting_parse("", 0, &w), -EINVAL);
    ck_assert_str_eq(akv_unknown_name(AKV_UNKNOWN_SKIP), "skip");
    ck_assert_str_eq(akv_weighting_name(AKV_WEIGHTING_SIF), "sif");
}
END_TEST

static void replay_one(const uint8_t *d, size_t n, void *arg)
{
    ec_check(arg, d, n);
}

/* The fuzzer's seeds and crashers, with its invariants (embedcheck.h). */
START_TEST(test_fuzz_replay)
{
    struct akv_vocab *v = ec_open();
    long n = tu_replay_dir("fuzz/corpus/embed", replay_one, v);

    (void)tu_replay_dir("fuzz/regression/embed", replay_one, v);
    if (n >= 0)
        ck_assert_int_gt(n, 0);
    akv_vocab_destroy(v);
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
    tc = tcase_create("tokens");
    tcase_add_checked_fixture(tc, gsetup, gteardown);
    tcase_add_test(tc, test_tokens);
    tcase_add_test(tc, test_skip);
    tcase_add_test(tc, test_limit_after_splitting);
    tcase_add_test(tc, test_sif);
    tcase_add_test(tc, test_option_names);
    tcase_add_test(tc, test_fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(embed_suite());
}
