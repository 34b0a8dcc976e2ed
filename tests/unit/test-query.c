/*
 * test-query.c - QUERY, EXPLAIN and NEIGHBORS against the independent
 * double-precision reference in refimpl.c, on random vocabularies and stores,
 * for every attention mode and metric.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/embed.h"
#include "attnkv/nbcache.h"
#include "attnkv/query.h"
#include "attnkv/store.h"
#include "attnkv/vectab.h"
#include "engine/attn.h"
#include "engine/rank.h"
#include "refimpl.h"
#include "testutil.h"

/* Identical top-k, scores within 1e-5 (relative to the score's size). Two
 * ids may trade places only when the reference scores them equal to 1e-9,
 * a tie the float vectors cannot resolve any better. */
static void check_hits(const struct akv_hit *got, size_t ngot, const struct ref_hit *want,
                       size_t nwant, const char *what)
{
    ck_assert_msg(ngot == nwant, "%s: %zu hits, reference %zu", what, ngot, nwant);
    for (size_t i = 0; i < ngot; i++) {
        double tol = 1e-5 * fmax(1.0, fabs(want[i].score));
        ck_assert_msg(fabs(got[i].score - want[i].score) <= tol,
                      "%s: hit %zu score %.9g, reference %.9g", what, i, got[i].score,
                      want[i].score);
        if (got[i].id != want[i].id) {
            int tied = 0;
            for (size_t j = 0; j < nwant; j++)
                if (want[j].id == got[i].id && fabs(want[j].score - want[i].score) <= 1e-9)
                    tied = 1;
            ck_assert_msg(tied, "%s: hit %zu is word %u, reference word %u", what, i, got[i].id,
                          want[i].id);
        }
    }
}

static int cmp_u32_test(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A random text of 1 to max_words vocabulary words. */
static void random_text(uint64_t *seed, size_t nvocab, int max_words, char *buf, size_t cap)
{
    int words = 1 + (int)(tu_rand(seed) % (uint64_t)max_words);
    size_t len = 0;
    for (int w = 0; w < words; w++)
        len += (size_t)snprintf(buf + len, cap - len, "%sw%zu", w ? " " : "",
                                (size_t)(tu_rand(seed) % nvocab));
}

struct model {
    struct akv_store *store;
    struct ref_entry *e;
    char (*keys)[64];
    char (*vals)[64]; /* value bytes (a payload's may hold NUL) */
    size_t n;
};

/* An empty store and reference with room for cap entries. */
static void model_init(struct model *m, const struct akv_vocab *voc, size_t cap)
{
    ck_assert_int_eq(akv_store_create(&m->store, voc), 0);
    m->e = calloc(cap ? cap : 1, sizeof *m->e);
    m->keys = calloc(cap ? cap : 1, sizeof *m->keys);
    m->vals = calloc(cap ? cap : 1, sizeof *m->vals);
    m->n = 0;
}

/* Sets key to val in both; returns 0 (and changes nothing) if key is there
 * already: keys must be distinct for the model. */
static int model_add(struct model *m, const struct akv_vocab *voc, const char *key, const char *val)
{
    uint32_t dim = akv_vocab_dim(voc);
    const char *cur;
    size_t clen;
    char err[256];

    if (akv_store_get(m->store, key, strlen(key), &cur, &clen))
        return 0;
    ck_assert_int_eq(akv_store_set(m->store, key, strlen(key), val, strlen(val), err, sizeof err),
                     0);
    snprintf(m->keys[m->n], sizeof m->keys[m->n], "%s", key);
    m->e[m->n].k = malloc(dim * sizeof(double));
    m->e[m->n].v = malloc(dim * sizeof(double));
    ck_assert_int_eq(ref_embed(voc, key, m->e[m->n].k), 0);
    ck_assert_int_eq(ref_embed(voc, val, m->e[m->n].v), 0);
    snprintf(m->vals[m->n], sizeof m->vals[m->n], "%s", val);
    m->e[m->n].val = m->vals[m->n];
    m->e[m->n].vlen = strlen(val);
    m->n++;
    return 1;
}

/* As model_add, with val (vlen bytes, fewer than 64) stored as a payload. */
static int model_add_payload(struct model *m, const struct akv_vocab *voc, const char *key,
                             const char *val, size_t vlen)
{
    uint32_t dim = akv_vocab_dim(voc);
    const char *cur;
    size_t clen;
    char err[256];

    if (akv_store_get(m->store, key, strlen(key), &cur, &clen))
        return 0;
    ck_assert_int_eq(akv_store_put_ex(m->store, key, strlen(key), val, vlen, 0, AKV_STORE_PAYLOAD,
                                      err, sizeof err),
                     0);
    snprintf(m->keys[m->n], sizeof m->keys[m->n], "%s", key);
    m->e[m->n].k = malloc(dim * sizeof(double));
    m->e[m->n].v = NULL;
    m->e[m->n].payload = 1;
    ck_assert_int_eq(ref_embed(voc, key, m->e[m->n].k), 0);
    memcpy(m->vals[m->n], val, vlen);
    m->e[m->n].val = m->vals[m->n];
    m->e[m->n].vlen = vlen;
    m->n++;
    return 1;
}

/* Fills a store and the matching reference entries with n random entries
 * of 1 to max_words words, with distinct keys. */
static void model_fill(struct model *m, const struct akv_vocab *voc, size_t n, int max_words,
                       uint64_t *seed)
{
    char key[64], val[64];

    model_init(m, voc, n);
    while (m->n < n) {
        random_text(seed, akv_vocab_count(voc), max_words, key, sizeof key);
        random_text(seed, akv_vocab_count(voc), max_words, val, sizeof val);
        model_add(m, voc, key, val);
    }
}

static void model_free(struct model *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].k);
        free(m->e[i].v);
    }
    free(m->e);
    free(m->keys);
    free(m->vals);
    akv_store_destroy(m->store);
}

/* nqueries random queries over a store of nentries random entries of 1 to
 * max_words words, on a vocabulary of nvocab words of dimension dim with
 * components in [-scale, scale). */
static void run_random_queries_shaped(size_t nvocab, uint32_t dim, double scale, int max_words,
                                      size_t nentries, int nqueries, uint64_t seed)
{
    struct akv_vocab *voc = tu_random_vocab(nvocab, dim, scale, seed);
    struct akv_query_result *res = malloc(sizeof *res);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    float *q = malloc(dim * sizeof *q);
    double *qd = malloc(dim * sizeof *qd);
    struct model m;
    static const unsigned ks[] = {1, 5, 50};
    char text[64], err[256], what[160];

    model_fill(&m, voc, nentries, max_words, &seed);
    for (int i = 0; i < nqueries; i++) {
        struct akv_query_opts o;
        struct akv_store_snap snap;
        size_t nwant;
        akv_query_opts_default(&o);
        o.attn = (enum akv_attn_mode)(i % 2);
        o.metric = (enum akv_metric)((i / 2) % 3);
        o.k = ks[(i / 6) % 3];
        o.temperature = (i / 18) % 2 ? 0.5 : 0.1;
        random_text(&seed, nvocab, 3, text, sizeof text);
        ck_assert_int_eq(akv_embed_text(voc, text, strlen(text), q, err, sizeof err), 0);
        ck_assert_int_eq(ref_embed(voc, text, qd), 0);

        akv_store_snap_take(m.store, &snap);
        ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
        akv_store_snap_release(m.store, &snap);
        nwant = ref_query(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.metric, o.k, want, NULL);
        snprintf(what, sizeof what, "seed %llu query %d '%s' attn %s metric %s k %u",
                 (unsigned long long)seed, i, text, akv_attn_mode_name(o.attn),
                 akv_metric_name(o.metric), o.k);
        ck_assert_uint_eq(res->attended, m.n);
        check_hits(res->hits, res->nhits, want, nwant, what);
    }
    model_free(&m);
    akv_vocab_destroy(voc);
    free(res);
    free(want);
    free(q);
    free(qd);
}

static void run_random_queries(size_t nvocab, uint32_t dim, size_t nentries, int nqueries,
                               uint64_t seed)
{
    run_random_queries_shaped(nvocab, dim, 1.0, 3, nentries, nqueries, seed);
}

START_TEST(test_random_small)
{
    /* Dimension 16 uses only the 8-wide unrolled loops; 37 exercises the
     * tails as well. Thousands of queries in all across the suite. */
    run_random_queries(3000, 16, 40, 720, 1);
    run_random_queries(2500, 37, 7, 360, 2);
}
END_TEST

START_TEST(test_random_large_store)
{
    /* More entries than one store chunk (4096 slots), so attention crosses
     * block boundaries and the running softmax rescales. */
    run_random_queries(1000, 24, 5000, 72, 3);
}
END_TEST

START_TEST(test_random_long_phrases)
{
    /* Keys and values of up to eight words: past the three a store keeps
     * inline, so the attention step reads the full lists too. */
    run_random_queries_shaped(2000, 16, 1.0, 8, 3000, 144, 7);
}
END_TEST

/* A large store against the float64 reference: 120,000 entries (both
 * kinds of attention pass, the plan of a batch and the scan of a query
 * alone; key and value tables far past the caches), the queries alone and
 * as one batch. */
START_TEST(test_reference_large_store)
{
    enum { NQ = 24, DIM = 24 };
    uint64_t seed = 555;
    struct akv_vocab *voc = tu_random_vocab(40000, DIM, 1.0, seed);
    struct akv_query_result *res = malloc(NQ * sizeof *res);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    struct akv_query_item items[NQ];
    static float q[NQ][DIM];
    double qd[DIM];
    struct model m;
    struct akv_store_snap snap;
    char text[NQ][64], err[256], what[160];

    model_fill(&m, voc, 120000, 3, &seed);
    akv_store_snap_take(m.store, &snap);
    for (int i = 0; i < NQ; i++) {
        struct akv_query_item *it = &items[i];
        random_text(&seed, 40000, 3, text[i], sizeof text[i]);
        ck_assert_int_eq(akv_embed_text(voc, text[i], strlen(text[i]), q[i], err, sizeof err), 0);
        memset(it, 0, sizeof *it);
        akv_query_opts_default(&it->opts);
        it->opts.attn = (enum akv_attn_mode)(i % 2);
        it->opts.metric = (enum akv_metric)((i / 2) % 3);
        it->opts.k = i % 3 == 0 ? 50 : 10;
        it->opts.temperature = (i / 6) % 2 ? 0.5 : 0.1;
        it->q = q[i];
        it->store = m.store;
        it->snap = &snap;
        it->res = &res[i];
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) {
            ck_assert_int_eq(akv_query_run_many(items, NQ), 0);
        } else {
            for (int i = 0; i < NQ; i++)
                ck_assert_int_eq(akv_query_run(m.store, &snap, q[i], &items[i].opts, &res[i]), 0);
        }
        for (int i = 0; i < NQ; i++) {
            const struct akv_query_opts *o = &items[i].opts;
            size_t nwant;
            ck_assert_int_eq(ref_embed(voc, text[i], qd), 0);
            nwant = ref_query(voc, m.e, m.n, qd, o->attn, REF_TAU(*o), o->metric, o->k, want, NULL);
            snprintf(what, sizeof what, "%s, query %d '%s' attn %s metric %s k %u",
                     pass == 0 ? "batch" : "alone", i, text[i], akv_attn_mode_name(o->attn),
                     akv_metric_name(o->metric), o->k);
            ck_assert_uint_eq(res[i].attended, m.n);
            check_hits(res[i].hits, res[i].nhits, want, nwant, what);
        }
    }
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_vocab_destroy(voc);
    free(res);
    free(want);
}
END_TEST

/* Scores far apart between blocks: the first block's keys are phrases with
 * low scores against w0, a later block holds w0 itself (large components,
 * so its score against itself is hundreds above the rest): the softmax's
 * shift has to move up while the values' weights are half summed, in both
 * modes (cosine with a small temperature spreads scores over +-1/tau). */
START_TEST(test_scores_jump_between_blocks)
{
    uint64_t seed = 21;
    struct akv_vocab *voc = tu_random_vocab(3000, 24, 12.0, seed);
    struct akv_query_result *res = malloc(sizeof *res);
    struct ref_hit want[5];
    double *weights = malloc(9000 * sizeof *weights), qd[24];
    struct model m;
    char key[64], val[64];

    model_init(&m, voc, 9000);
    while (m.n < 8500) {
        int words = 3;
        size_t len = 0;
        for (int w = 0; w < words; w++)
            len += (size_t)snprintf(key + len, sizeof key - len, "%sw%d", w ? " " : "",
                                    1 + (int)(tu_rand(&seed) % 2999));
        random_text(&seed, 3000, 3, val, sizeof val);
        model_add(&m, voc, key, val);
    }
    ck_assert(model_add(&m, voc, "w0", "w5 w6"));
    while (m.n < 9000) {
        random_text(&seed, 3000, 3, key, sizeof key);
        random_text(&seed, 3000, 3, val, sizeof val);
        model_add(&m, voc, key, val);
    }
    ck_assert_int_eq(ref_embed(voc, "w0", qd), 0);
    for (int mode = 0; mode < 2; mode++) {
        struct akv_query_opts o;
        struct akv_store_snap snap;
        size_t nwant;
        akv_query_opts_default(&o);
        o.attn = (enum akv_attn_mode)mode;
        o.temperature = 0.001;
        o.explain = 3;
        akv_store_snap_take(m.store, &snap);
        ck_assert_int_eq(akv_query_run(m.store, &snap, akv_vocab_vec(voc, 0), &o, res), 0);
        nwant = ref_query(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.metric, o.k, want, weights);
        ck_assert_uint_eq(res->attended, m.n);
        check_hits(res->hits, res->nhits, want, nwant, mode ? "jump cosine" : "jump dot");
        /* w0 -> "w5 w6" takes almost all the weight. */
        ck_assert_uint_ge(res->nwhy, 1);
        ck_assert_msg(fabs(res->why[0].weight - weights[8500]) <= 1e-9,
                      "weight %.17g, reference %.17g", res->why[0].weight, weights[8500]);
        ck_assert(res->why[0].weight > 0.5);
        akv_store_snap_release(m.store, &snap);
    }
    model_free(&m);
    akv_vocab_destroy(voc);
    free(res);
    free(weights);
}
END_TEST

START_TEST(test_single_entry_store)
{
    run_random_queries(500, 8, 1, 36, 4);
}
END_TEST

START_TEST(test_explain_weights)
{
    uint64_t seed = 11;
    struct akv_vocab *voc = tu_random_vocab(800, 20, 1.0, seed);
    struct akv_query_result *res = malloc(sizeof *res);
    struct ref_hit want[5];
    double *weights = malloc(200 * sizeof *weights), qd[20];
    float q[20];
    struct model m;
    char err[256];

    model_fill(&m, voc, 200, 3, &seed);
    for (int mode = 0; mode < 2; mode++) {
        struct akv_query_opts o;
        struct akv_store_snap snap;
        double sum = 0;
        akv_query_opts_default(&o);
        o.attn = (enum akv_attn_mode)mode;
        o.temperature = 0.2;
        o.explain = 10;
        o.skip_rank = 1;
        ck_assert_int_eq(akv_embed_text(voc, "w7 w9", 5, q, err, sizeof err), 0);
        ck_assert_int_eq(ref_embed(voc, "w7 w9", qd), 0);
        akv_store_snap_take(m.store, &snap);
        ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
        ref_query(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.metric, 5, want, weights);
        ck_assert_uint_eq(res->nhits, 0); /* skip_rank */
        ck_assert_uint_eq(res->nwhy, 10);
        for (size_t i = 0; i < res->nwhy; i++) {
            const char *k, *v;
            size_t kl, vl, j;
            akv_store_entry_text(m.store, &snap, res->why[i].slot, &k, &kl, &v, &vl);
            for (j = 0; j < m.n; j++)
                if (strlen(m.keys[j]) == kl && memcmp(m.keys[j], k, kl) == 0)
                    break;
            ck_assert_uint_lt(j, m.n);
            ck_assert_msg(fabs(res->why[i].weight - weights[j]) <= 1e-6 * fmax(weights[j], 1e-3),
                          "weight %g, reference %g", res->why[i].weight, weights[j]);
            if (i > 0)
                ck_assert(res->why[i].weight <= res->why[i - 1].weight);
            /* No entry outside the list may outweigh the last one listed. */
            sum += res->why[i].weight;
        }
        for (size_t j = 0; j < m.n; j++) {
            int listed = 0;
            for (size_t i = 0; i < res->nwhy; i++) {
                const char *k, *v;
                size_t kl, vl;
                akv_store_entry_text(m.store, &snap, res->why[i].slot, &k, &kl, &v, &vl);
                listed |= strlen(m.keys[j]) == kl && memcmp(m.keys[j], k, kl) == 0;
            }
            if (!listed)
                ck_assert(weights[j] <= res->why[res->nwhy - 1].weight + 1e-9);
        }
        ck_assert(sum <= 1.0 + 1e-9);
        akv_store_snap_release(m.store, &snap);
    }
    model_free(&m);
    akv_vocab_destroy(voc);
    free(res);
    free(weights);
}
END_TEST

START_TEST(test_empty_store)
{
    struct akv_vocab *voc = tu_random_vocab(100, 8, 1.0, 5);
    struct akv_query_result *res = malloc(sizeof *res);
    struct akv_store *s;
    struct akv_store_snap snap;
    struct akv_query_opts o;
    char err[256];
    float q[8];

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    akv_query_opts_default(&o);
    o.explain = 3;
    ck_assert_int_eq(akv_embed_text(voc, "w1", 2, q, err, sizeof err), 0);
    akv_store_snap_take(s, &snap);
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), 0);
    ck_assert_uint_eq(res->nhits, 0);
    ck_assert_uint_eq(res->nwhy, 0);
    ck_assert_uint_eq(res->attended, 0);
    akv_store_snap_release(s, &snap);

    /* Emptied by deletion is empty too. */
    ck_assert_int_eq(akv_store_set(s, "w1", 2, "w2", 2, err, sizeof err), 0);
    ck_assert_int_eq(akv_store_del(s, "w1", 2), 1);
    akv_store_snap_take(s, &snap);
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), 0);
    ck_assert_uint_eq(res->nhits, 0);
    akv_store_snap_release(s, &snap);
    akv_store_destroy(s);
    akv_vocab_destroy(voc);
    free(res);
}
END_TEST

START_TEST(test_overwrite_and_delete_follow_model)
{
    /* After overwrites and deletions the query must equal the reference
     * computed from the final contents only. */
    uint64_t seed = 21;
    struct akv_vocab *voc = tu_random_vocab(600, 12, 1.0, seed);
    struct akv_query_result *res = malloc(sizeof *res);
    struct ref_hit want[5];
    struct ref_entry e[2];
    double kd[2][12], vd[2][12], qd[12];
    float q[12];
    struct akv_store *s;
    struct akv_store_snap snap;
    struct akv_query_opts o;
    char err[256];
    size_t n;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    ck_assert_int_eq(akv_store_set(s, "w1", 2, "w2", 2, err, sizeof err), 0);
    ck_assert_int_eq(akv_store_set(s, "w3", 2, "w4", 2, err, sizeof err), 0);
    ck_assert_int_eq(akv_store_set(s, "w5", 2, "w6", 2, err, sizeof err), 0);
    ck_assert_int_eq(akv_store_set(s, "w1", 2, "w10 w11", 7, err, sizeof err), 0);
    ck_assert_int_eq(akv_store_del(s, "w3", 2), 1);
    ck_assert_uint_eq(akv_store_count(s), 2);
    ref_embed(voc, "w1", kd[0]);
    ref_embed(voc, "w10 w11", vd[0]);
    ref_embed(voc, "w5", kd[1]);
    ref_embed(voc, "w6", vd[1]);
    e[0] = (struct ref_entry){.k = kd[0], .v = vd[0]};
    e[1] = (struct ref_entry){.k = kd[1], .v = vd[1]};
    akv_query_opts_default(&o);
    akv_embed_text(voc, "w1", 2, q, err, sizeof err);
    ref_embed(voc, "w1", qd);
    akv_store_snap_take(s, &snap);
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), 0);
    akv_store_snap_release(s, &snap);
    n = ref_query(voc, e, 2, qd, o.attn, REF_TAU(o), o.metric, o.k, want, NULL);
    ck_assert_uint_eq(res->attended, 2);
    check_hits(res->hits, res->nhits, want, n, "overwrite/delete");
    akv_store_destroy(s);
    akv_vocab_destroy(voc);
    free(res);
}
END_TEST

START_TEST(test_ties_break_by_vocabulary_order)
{
    /* Words 0, 3 and 5 share one vector: equal scores under every metric,
     * so they must come back in id order. */
    struct akv_vectab t;
    struct akv_vocab *voc;
    struct akv_query_result *res = malloc(sizeof *res);
    float vecs[6][4] = {{1, 2, 3, 4}, {9, 9, 9, 9}, {-1, 0, 0, 0},
                        {1, 2, 3, 4}, {0, 0, 0, 1}, {1, 2, 3, 4}};
    char err[256];
    const char *words[] = {"a", "b", "c", "d", "e", "f"};

    ck_assert_int_eq(akv_vectab_init(&t, 4), 0);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(akv_vectab_add(&t, words[i], 1, vecs[i]), 0);
    ck_assert_int_eq(akv_vocab_from_table(&voc, &t, err, sizeof err), 0);
    akv_vectab_fini(&t);
    ck_assert_int_eq(akv_query_neighbors(voc, vecs[0], AKV_METRIC_L2, 3, res), 0);
    ck_assert_uint_eq(res->nhits, 3);
    ck_assert_uint_eq(res->hits[0].id, 0);
    ck_assert_uint_eq(res->hits[1].id, 3);
    ck_assert_uint_eq(res->hits[2].id, 5);
    ck_assert(res->hits[0].score == 0.0);
    ck_assert_int_eq(akv_query_neighbors(voc, vecs[0], AKV_METRIC_COSINE, 3, res), 0);
    ck_assert_uint_eq(res->hits[0].id, 0);
    ck_assert_uint_eq(res->hits[1].id, 3);
    ck_assert_uint_eq(res->hits[2].id, 5);
    ck_assert(fabs(res->hits[0].score - 1.0) < 1e-12);
    ck_assert_int_eq(akv_query_neighbors(voc, vecs[0], AKV_METRIC_DOT, 4, res), 0);
    ck_assert_uint_eq(res->hits[0].id, 1); /* the long vector wins on dot */
    ck_assert_uint_eq(res->hits[1].id, 0);
    ck_assert_uint_eq(res->hits[2].id, 3);
    ck_assert_uint_eq(res->hits[3].id, 5);
    /* k larger than the vocabulary returns everything. */
    ck_assert_int_eq(akv_query_neighbors(voc, vecs[0], AKV_METRIC_L2, 1000, res), 0);
    ck_assert_uint_eq(res->nhits, 6);
    akv_vocab_destroy(voc);
    free(res);
}
END_TEST

START_TEST(test_neighbors_match_reference)
{
    uint64_t seed = 31;
    struct akv_vocab *voc = tu_random_vocab(4000, 25, 2.0, seed);
    struct akv_query_result *res = malloc(sizeof *res);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    double qd[25];
    char what[64];

    for (int i = 0; i < 60; i++) {
        enum akv_metric m = (enum akv_metric)(i % 3);
        unsigned k = i % 4 == 0 ? AKV_K_MAX : 10;
        float q[25];
        size_t n;
        for (int d = 0; d < 25; d++) {
            q[d] = (float)tu_uniform(&seed, -2, 2);
            qd[d] = q[d];
        }
        ck_assert_int_eq(akv_query_neighbors(voc, q, m, k, res), 0);
        n = ref_rank(voc, qd, m, k, want);
        snprintf(what, sizeof what, "neighbors %d metric %s", i, akv_metric_name(m));
        check_hits(res->hits, res->nhits, want, n, what);
    }
    akv_vocab_destroy(voc);
    free(res);
    free(want);
}
END_TEST

START_TEST(test_bad_options)
{
    struct akv_vocab *voc = tu_random_vocab(50, 4, 1.0, 6);
    struct akv_query_result *res = malloc(sizeof *res);
    struct akv_store *s;
    struct akv_store_snap snap;
    struct akv_query_opts o;
    float q[4] = {1, 0, 0, 0};
    enum akv_attn_mode a;
    enum akv_metric m;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    akv_store_snap_take(s, &snap);
    akv_query_opts_default(&o);
    o.k = 0;
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), -EINVAL);
    o.k = AKV_K_MAX + 1;
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), -EINVAL);
    akv_query_opts_default(&o);
    o.attn = AKV_ATTN_COSINE;
    o.temperature = 0;
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), -EINVAL);
    o.temperature = NAN;
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), -EINVAL);
    akv_query_opts_default(&o);
    o.metric = (enum akv_metric)7;
    ck_assert_int_eq(akv_query_run(s, &snap, q, &o, res), -EINVAL);
    ck_assert_int_eq(akv_query_neighbors(voc, q, AKV_METRIC_L2, 0, res), -EINVAL);
    akv_store_snap_release(s, &snap);

    ck_assert_int_eq(akv_attn_mode_parse("COSINE", 6, &a), 0);
    ck_assert_int_eq(a, AKV_ATTN_COSINE);
    ck_assert_int_eq(akv_attn_mode_parse("dots", 4, &a), -EINVAL);
    ck_assert_int_eq(akv_metric_parse("L2", 2, &m), 0);
    ck_assert_int_eq(m, AKV_METRIC_L2);
    ck_assert_int_eq(akv_metric_parse("dot", 3, &m), 0);
    ck_assert_int_eq(m, AKV_METRIC_DOT);
    ck_assert_int_eq(akv_metric_parse("l1", 2, &m), -EINVAL);
    akv_store_destroy(s);
    akv_vocab_destroy(voc);
    free(res);
}
END_TEST

/* A batch item's result is bit for bit what the item got alone. */
static void same_result(const struct akv_query_result *got, const struct akv_query_result *alone,
                        int item)
{
    ck_assert_uint_eq(got->nhits, alone->nhits);
    ck_assert_uint_eq(got->nwhy, alone->nwhy);
    for (size_t h = 0; h < alone->nhits; h++) {
        ck_assert_uint_eq(got->hits[h].id, alone->hits[h].id);
        ck_assert_msg(got->hits[h].score == alone->hits[h].score,
                      "item %d hit %zu: %.17g alone, %.17g in the batch", item, h,
                      alone->hits[h].score, got->hits[h].score);
    }
    for (size_t w = 0; w < alone->nwhy; w++) {
        ck_assert_uint_eq(got->why[w].slot, alone->why[w].slot);
        ck_assert(got->why[w].weight == alone->why[w].weight);
    }
}

START_TEST(test_batch_equals_single)
{
    /* One shared scan must give every item exactly what it gets alone:
     * mixed QUERY, EXPLAIN and NEIGHBORS items, every metric and mode. */
    enum { N = 40 };
    uint64_t seed = 77;
    struct akv_vocab *voc = tu_random_vocab(5000, 20, 1.0, seed);
    struct akv_query_result *one = malloc(sizeof *one), *many = malloc(N * sizeof *many);
    struct akv_query_item items[N];
    float q[N][20];
    struct model m;
    struct akv_store_snap snap;
    char text[64], err[256];

    model_fill(&m, voc, 300, 3, &seed);
    akv_store_snap_take(m.store, &snap);
    for (int i = 0; i < N; i++) {
        struct akv_query_item *it = &items[i];
        random_text(&seed, 5000, 3, text, sizeof text);
        ck_assert_int_eq(akv_embed_text(voc, text, strlen(text), q[i], err, sizeof err), 0);
        memset(it, 0, sizeof *it);
        akv_query_opts_default(&it->opts);
        it->opts.metric = (enum akv_metric)(i % 3);
        it->opts.attn = (enum akv_attn_mode)((i / 3) % 2);
        it->opts.k = i % 7 == 0 ? 200 : 1 + (unsigned)(i % 9);
        it->q = q[i];
        it->res = &many[i];
        if (i % 5 == 4) {
            it->vocab = voc; /* NEIGHBORS */
        } else {
            it->store = m.store;
            it->snap = &snap;
            it->opts.explain = i % 4;
            it->opts.skip_rank = i % 10 == 3;
        }
    }
    items[N - 1].opts.k = 0; /* a bad item fails alone */
    ck_assert_int_eq(akv_query_run_many(items, N), 0);
    for (int i = 0; i < N; i++) {
        int rc = items[i].store
                     ? akv_query_run(m.store, &snap, q[i], &items[i].opts, one)
                     : akv_query_neighbors(voc, q[i], items[i].opts.metric, items[i].opts.k, one);
        ck_assert_int_eq(items[i].rc, rc);
        same_result(&many[i], one, i);
    }
    ck_assert_int_eq(items[N - 1].rc, -EINVAL);
    ck_assert_uint_gt(many[0].nhits, 0);
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_vocab_destroy(voc);
    free(one);
    free(many);
}
END_TEST

/* Neighbor lists (src/engine/query.c, "Answering from neighbor lists"): a store
 * of single-word keys and values, queried with its own keys under cosine
 * attention at a low temperature (so most of the weight sits on one value,
 * and the lists can decide) and with random texts (so it does not). Every
 * answer, in every metric, must be bit for bit the answer without lists and
 * match the reference; a good share must come from the lists, or this
 * test would prove nothing. */
START_TEST(test_neighbor_lists)
{
    enum { N = 30, NV = 20000, DIM = 24 };
    static const unsigned ks[] = {1, 5, 13, 32, 50};
    uint64_t seed = 91;
    struct akv_vocab *voc = tu_random_vocab(NV, DIM, 1.0, seed);
    struct akv_query_result *with = malloc(N * sizeof *with),
                            *without = malloc(N * sizeof *without);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    struct akv_query_item items[N], plain[N];
    struct akv_nbcache *cache;
    float q[N][DIM];
    double qd[DIM];
    struct model m;
    struct akv_store_snap snap;
    char key[64], val[64], text[64], err[256], what[160];
    size_t from_lists = 0, tried = 0;

    ck_assert_int_eq(akv_nbcache_create(&cache, 1000), 0);
    model_init(&m, voc, 400);
    while (m.n < 400) {
        snprintf(key, sizeof key, "w%u", (unsigned)(tu_rand(&seed) % NV));
        if (m.n % 10 == 9) /* some phrases, whose weight the lists cannot use */
            snprintf(val, sizeof val, "w%u w%u", (unsigned)(tu_rand(&seed) % NV),
                     (unsigned)(tu_rand(&seed) % NV));
        else
            snprintf(val, sizeof val, "w%u", (unsigned)(tu_rand(&seed) % NV));
        model_add(&m, voc, key, val);
    }
    akv_store_snap_take(m.store, &snap);
    /* Rounds: the first computes the lists of the values of the twelve
     * keys queried, the later ones use them. */
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            struct akv_query_item *it = &items[i];
            if (i % 4 == 3)
                random_text(&seed, NV, 2, text, sizeof text);
            else
                snprintf(text, sizeof text, "%s", m.keys[(size_t)i % 12]);
            ck_assert_int_eq(akv_embed_text(voc, text, strlen(text), q[i], err, sizeof err), 0);
            if (i % 4 == 2) {
                /* Mostly that key, partly one whose value is a phrase: the
                 * phrase's pull is what the lists cannot see, so only the
                 * bound on the rest of the store keeps its neighbors. */
                float other[DIM], a = 0.55f + 0.05f * (float)((i / 4 + round) % 4);
                size_t pk = 9 + 10 * (size_t)((i / 4) % 5);
                ck_assert_int_eq(
                    akv_embed_text(voc, m.keys[pk], strlen(m.keys[pk]), other, err, sizeof err), 0);
                for (uint32_t d = 0; d < DIM; d++)
                    q[i][d] = a * q[i][d] + (1 - a) * other[d];
            }
            memset(it, 0, sizeof *it);
            akv_query_opts_default(&it->opts);
            it->opts.metric = (enum akv_metric)(i % 3);
            it->opts.attn = i % 5 == 4 ? AKV_ATTN_DOT : AKV_ATTN_COSINE;
            it->opts.temperature = (const double[]){0.02, 0.06, 0.1, 0.2}[(i / 2 + round) % 4];
            it->opts.k = ks[(i / 3 + round) % 5];
            it->opts.explain = i % 7 == 0 ? 3 : 0;
            it->q = q[i];
            it->store = m.store;
            it->snap = &snap;
            plain[i] = *it;
            it->res = &with[i];
            it->nbcache = cache;
            plain[i].res = &without[i];
        }
        ck_assert_int_eq(akv_query_run_many(items, N), 0);
        ck_assert_int_eq(akv_query_run_many(plain, N), 0);
        for (int i = 0; i < N; i++) {
            size_t nwant;
            ck_assert_int_eq(items[i].rc, 0);
            ck_assert_int_eq(plain[i].rc, 0);
            same_result(&with[i], &without[i], i);
            ck_assert_int_eq(without[i].from_lists, 0);
            tried += items[i].opts.metric != AKV_METRIC_DOT && items[i].opts.k <= 32;
            from_lists += (size_t)with[i].from_lists;
            for (uint32_t d = 0; d < DIM; d++)
                qd[d] = q[i][d];
            nwant = ref_query(voc, m.e, m.n, qd, items[i].opts.attn, REF_TAU(items[i].opts),
                              items[i].opts.metric, items[i].opts.k, want, NULL);
            snprintf(what, sizeof what, "round %d item %d metric %s k %u lists %d", round, i,
                     akv_metric_name(items[i].opts.metric), items[i].opts.k, with[i].from_lists);
            check_hits(with[i].hits, with[i].nhits, want, nwant, what);
        }
    }
    ck_assert_msg(from_lists * 8 >= tried, "only %zu of %zu answered from lists", from_lists,
                  tried);
    ck_assert_uint_gt(akv_nbcache_count(cache), 0);
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_nbcache_destroy(cache);
    akv_vocab_destroy(voc);
    free(with);
    free(without);
    free(want);
}
END_TEST

/* The case the bound on the rest of the store is for: the heaviest value
 * c0 sits in a tight cluster of 400 words (so its list of 64 is a small
 * part of it), and the light value is a phrase of two words a little way
 * off c0, pulling r across the cluster towards words that are not in c0's
 * list. Without the rest term the lists would wrongly claim the answer
 * (so would a rho bound not divided by 1 - W for l2, or a fifth of |rho|
 * for cosine); with it, they must either prove it or leave the query to
 * the scan. The
 * weight of c0 is set exactly through dot attention on two entries.
 * (Whether the lists answer or not, the result must be the scan's.) */
START_TEST(test_neighbor_lists_bound)
{
    enum { DIM = 24, NRAND = 3000, NCLUSTER = 400 };
    static const double heavy[] = {0.76, 0.8, 0.9, 0.97, 0.995};
    struct akv_vectab t;
    struct akv_vocab *voc = NULL;
    struct akv_nbcache *cache;
    struct akv_query_result *with = malloc(sizeof *with), *without = malloc(sizeof *without);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    float vec[DIM], c0[DIM], dir[DIM], ka[DIM], kb[DIM], q[DIM];
    double qd[DIM], kdiff = 0;
    uint64_t seed = 5;
    char word[32], err[256], what[128];
    struct model m;
    size_t from_lists = 0;

    ck_assert_int_eq(akv_vectab_init(&t, DIM), 0);
    for (uint32_t d = 0; d < DIM; d++) {
        c0[d] = (float)tu_uniform(&seed, -1, 1);
        dir[d] = (float)tu_uniform(&seed, -1, 1);
    }
    for (size_t i = 0; i < NRAND + NCLUSTER + 2; i++) {
        int len;
        if (i < NRAND) {
            len = snprintf(word, sizeof word, "r%zu", i);
            for (uint32_t d = 0; d < DIM; d++)
                vec[d] = (float)tu_uniform(&seed, -1, 1);
        } else if (i < NRAND + NCLUSTER) {
            len = snprintf(word, sizeof word, i == NRAND ? "c0" : "c%zu", i - NRAND);
            for (uint32_t d = 0; d < DIM; d++)
                vec[d] = c0[d] + (i == NRAND ? 0.0f : (float)tu_uniform(&seed, -0.03, 0.03));
        } else { /* p1, p2: the phrase, just beside c0 */
            len = snprintf(word, sizeof word, "p%zu", i - NRAND - NCLUSTER + 1);
            for (uint32_t d = 0; d < DIM; d++)
                vec[d] = c0[d] + 0.25f * dir[d] + (float)tu_uniform(&seed, -0.005, 0.005);
        }
        ck_assert_int_eq(akv_vectab_add(&t, word, (size_t)len, vec), 0);
    }
    ck_assert_msg(akv_vocab_from_table(&voc, &t, err, sizeof err) == 0, "%s", err);
    akv_vectab_fini(&t);
    ck_assert_int_eq(akv_nbcache_create(&cache, 100), 0);
    model_init(&m, voc, 2);
    ck_assert_int_eq(model_add(&m, voc, "r1", "c0"), 1);
    ck_assert_int_eq(model_add(&m, voc, "r2", "p1 p2"), 1);
    ck_assert_int_eq(akv_embed_text(voc, "r1", 2, ka, err, sizeof err), 0);
    ck_assert_int_eq(akv_embed_text(voc, "r2", 2, kb, err, sizeof err), 0);
    for (uint32_t d = 0; d < DIM; d++)
        kdiff += ((double)ka[d] - kb[d]) * ((double)ka[d] - kb[d]);
    for (int round = 0; round < 2; round++) {
        for (size_t h = 0; h < sizeof heavy / sizeof heavy[0]; h++) {
            for (int metric = 0; metric < 2; metric++) {
                /* q = s (ka - kb): softmax weights heavy[h] and the rest */
                double s = log(heavy[h] / (1 - heavy[h])) / kdiff;
                struct akv_query_opts o;
                struct akv_store_snap snap;
                struct akv_query_item it, plain;
                size_t nwant;

                for (uint32_t d = 0; d < DIM; d++) {
                    q[d] = (float)(s * ((double)ka[d] - kb[d]));
                    qd[d] = q[d];
                }
                akv_query_opts_default(&o);
                o.attn = AKV_ATTN_DOT;
                o.metric = metric ? AKV_METRIC_COSINE : AKV_METRIC_L2;
                o.k = 13;
                akv_store_snap_take(m.store, &snap);
                it = (struct akv_query_item){.store = m.store,
                                             .snap = &snap,
                                             .q = q,
                                             .opts = o,
                                             .res = with,
                                             .nbcache = cache};
                plain = it;
                plain.res = without;
                plain.nbcache = NULL;
                ck_assert_int_eq(akv_query_run_many(&it, 1), 0);
                ck_assert_int_eq(akv_query_run_many(&plain, 1), 0);
                akv_store_snap_release(m.store, &snap);
                same_result(with, without, (int)h);
                from_lists += (size_t)with->from_lists;
                nwant = ref_query(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.metric, o.k, want, NULL);
                snprintf(what, sizeof what, "round %d weight %.3f metric %s lists %d", round,
                         heavy[h], akv_metric_name(o.metric), with->from_lists);
                check_hits(with->hits, with->nhits, want, nwant, what);
            }
        }
    }
    /* Here the phrase's pull always matters at the 1e-9 margin, so the
     * lists must leave every query to the scan (with the rest term left
     * out of the bound, they answer wrongly and this test fails; the
     * lists answering is test_neighbor_lists's part). */
    ck_assert_uint_eq(from_lists, 0);
    model_free(&m);
    akv_nbcache_destroy(cache);
    akv_vocab_destroy(voc);
    free(with);
    free(without);
    free(want);
}
END_TEST

/* The attention pass shared by a batch (src/engine/attn.c, akv_attn_run_many)
 * against each query alone, bit for bit, where its paths differ: keys and
 * values longer than the inline three words, scores that jump by far more
 * than the softmax shift's slack between the store's 4096-row blocks (so
 * that every query's weights are rescaled mid-pass), items on two snapshots
 * of one store, and more queries than one pass takes (32): the 33 on the
 * second snapshot make passes of 32 and 1. */
START_TEST(test_batch_attention_paths)
{
    enum { N = 39 };
    uint64_t seed = 91;
    struct akv_vocab *voc = tu_random_vocab(3000, 24, 12.0, seed);
    struct akv_query_result *one = malloc(sizeof *one), *many = malloc(N * sizeof *many);
    struct akv_query_item items[N];
    struct akv_store_snap snaps[2];
    float q[N][24];
    struct model m;
    char key[96], val[96], err[256];

    model_init(&m, voc, 9800);
    while (m.n < 6000) {
        random_text(&seed, 3000, 6, key, sizeof key);
        random_text(&seed, 3000, 6, val, sizeof val);
        model_add(&m, voc, key, val);
    }
    akv_store_snap_take(m.store, &snaps[0]);
    while (m.n < 9000) {
        random_text(&seed, 3000, 6, key, sizeof key);
        random_text(&seed, 3000, 6, val, sizeof val);
        model_add(&m, voc, key, val);
    }
    akv_store_snap_take(m.store, &snaps[1]);
    for (int i = 0; i < N; i++) {
        struct akv_query_item *it = &items[i];
        random_text(&seed, 3000, 4, key, sizeof key);
        ck_assert_int_eq(akv_embed_text(voc, key, strlen(key), q[i], err, sizeof err), 0);
        memset(it, 0, sizeof *it);
        akv_query_opts_default(&it->opts);
        it->opts.attn = (enum akv_attn_mode)(i % 2);
        it->opts.temperature = i % 3 == 0 ? 0.001 : 0.5;
        it->opts.metric = (enum akv_metric)((i / 2) % 3);
        it->opts.explain = (unsigned)(i % 5);
        it->q = q[i];
        it->res = &many[i];
        it->store = m.store;
        it->snap = &snaps[i % 7 == 0 ? 0 : 1];
    }
    ck_assert_int_eq(akv_query_run_many(items, N), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(akv_query_run(m.store, items[i].snap, q[i], &items[i].opts, one), 0);
        ck_assert_int_eq(items[i].rc, 0);
        ck_assert_uint_eq(many[i].attended, one->attended);
        ck_assert_uint_eq(many[i].attended, i % 7 == 0 ? 6000 : 9000);
        same_result(&many[i], one, i);
    }
    akv_store_snap_release(m.store, &snaps[0]);
    akv_store_snap_release(m.store, &snaps[1]);
    model_free(&m);
    akv_vocab_destroy(voc);
    free(one);
    free(many);
}
END_TEST

/* The attention kernels (portable, AVX2, AVX-512; src/engine/attn.c) must give the
 * same bits, alone and in batches. The dimension, 31, takes every path of
 * the vector loops (eight at a time, four, then one by one) and the batch,
 * 21, every query tile (8, 8, 4, 1). */
START_TEST(test_attention_kernels_agree)
{
    enum { N = 21, DIM = 31 };
    static const char *const names[] = {"portable", "avx2", "avx512"};
    uint64_t seed = 123;
    struct akv_vocab *voc = tu_random_vocab(2000, DIM, 3.0, seed);
    struct akv_attn_job jobs[N];
    static double want[2][N][DIM], got[N][DIM];
    float q[N][DIM];
    struct model m;
    struct akv_store_snap snap;
    char key[96], val[96], err[256];
    int ran = 0;

    model_init(&m, voc, 3000);
    while (m.n < 2500) {
        random_text(&seed, 2000, 5, key, sizeof key);
        random_text(&seed, 2000, 5, val, sizeof val);
        model_add(&m, voc, key, val);
    }
    akv_store_snap_take(m.store, &snap);
    for (int i = 0; i < N; i++) {
        random_text(&seed, 2000, 3, key, sizeof key);
        ck_assert_int_eq(akv_embed_text(voc, key, strlen(key), q[i], err, sizeof err), 0);
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (akv_attn_set_kernel(names[k]) < 0)
            continue;
        for (int alone = 0; alone < 2; alone++) {
            for (int i = 0; i < N; i++)
                jobs[i] = (struct akv_attn_job){
                    .q = q[i], .mode = (enum akv_attn_mode)(i % 2), .tau = 0.7, .r = got[i]};
            if (alone) {
                for (int i = 0; i < N; i++)
                    ck_assert_int_eq(akv_attn_run_many(m.store, &snap, &jobs[i], 1), 2500);
            } else {
                ck_assert_int_eq(akv_attn_run_many(m.store, &snap, jobs, N), 2500);
            }
            if (ran == 0)
                memcpy(want[alone], got, sizeof got);
            for (int i = 0; i < N; i++)
                ck_assert_msg(memcmp(got[i], want[alone][i], sizeof got[i]) == 0,
                              "kernel %s, query %d (%s): r differs from the portable kernel's",
                              names[k], i, alone ? "alone" : "in a batch");
        }
        ran++;
    }
    ck_assert_int_ge(ran, 1);
    ck_assert_int_eq(memcmp(want[0], want[1], sizeof want[0]), 0);
    ck_assert_int_eq(akv_attn_set_kernel("auto"), 0);
    ck_assert_int_eq(akv_attn_set_kernel("no-such-kernel"), -EINVAL);
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_vocab_destroy(voc);
}
END_TEST

/* The same visible content with keys the snapshot does not see in the
 * store's word sets (expired but not yet deleted): the same bits. The
 * softmax shift must come from the visible keys only; the expired keys
 * use words no visible key has, and a third of the queries are scaled far
 * up (large scores: a mean of repeated words rounds above its word's
 * score, which the shift must survive). */
START_TEST(test_expired_keys_change_nothing)
{
    enum { NQ = 120, DIM = 16 };
    uint64_t seed = 99, now = 0;
    struct akv_vocab *voc = tu_random_vocab(400, DIM, 1.0, seed);
    struct akv_store *a, *b;
    struct akv_store_snap sa, sb;
    char k[64], v[64], err[256];

    ck_assert_int_eq(akv_store_create(&a, voc), 0);
    ck_assert_int_eq(akv_store_create(&b, voc), 0);
    akv_store_set_clock(a, &now);
    akv_store_set_clock(b, &now);
    for (int i = 0; i < 300; i++) {
        size_t kl;
        random_text(&seed, 200, 2, k, sizeof k);
        if (i % 10 == 0) { /* a word five times */
            char w[16];
            snprintf(w, sizeof w, "%.*s", (int)strcspn(k, " "), k);
            snprintf(k, sizeof k, "%.11s %.11s %.11s %.11s %.11s", w, w, w, w, w);
        }
        kl = strlen(k);
        random_text(&seed, 300, 3, v, sizeof v);
        ck_assert_int_eq(akv_store_put(a, k, kl, v, strlen(v), 0, err, sizeof err), 0);
        ck_assert_int_eq(akv_store_put(b, k, kl, v, strlen(v), 0, err, sizeof err), 0);
    }
    for (uint32_t w = 300; w < 400; w++) { /* words no visible key has */
        size_t len;
        const char *t = akv_vocab_word(voc, w, &len);
        ck_assert_int_eq(akv_store_put(b, t, len, t, len, 100, err, sizeof err), 0);
    }
    now = 200;
    akv_store_snap_take(a, &sa);
    akv_store_snap_take(b, &sb);
    for (int i = 0; i < NQ; i++) {
        float q[DIM];
        double ra[DIM], rb[DIM];
        struct akv_why wa[8], wb[8];
        size_t na, nb;
        for (int d = 0; d < DIM; d++)
            q[d] = (float)(((double)(tu_rand(&seed) % 2001) / 1000.0 - 1.0) *
                           (i % 3 == 0 ? 1e18 : 3.0));
        long na_ = akv_attn_run(a, &sa, q, AKV_ATTN_DOT, 1.0, ra, wa, 8, &na);
        ck_assert_int_eq(na_, (long)akv_store_count(a));
        ck_assert_int_eq(akv_attn_run(b, &sb, q, AKV_ATTN_DOT, 1.0, rb, wb, 8, &nb), na_);
        ck_assert_msg(memcmp(ra, rb, sizeof ra) == 0, "query %d: r differs", i);
        ck_assert_uint_eq(na, nb);
        for (size_t j = 0; j < na; j++) {
            ck_assert(isfinite(wa[j].weight) && wa[j].weight >= 0 && wa[j].weight <= 1);
            ck_assert(memcmp(&wa[j].weight, &wb[j].weight, sizeof(double)) == 0);
        }
        for (int d = 0; d < DIM; d++)
            ck_assert(isfinite(ra[d]));
    }
    akv_store_snap_release(a, &sa);
    akv_store_snap_release(b, &sb);
    akv_store_destroy(a);
    akv_store_destroy(b);
    akv_vocab_destroy(voc);
}
END_TEST

/* ------------------------------------------------------------------------
 * Same content, same bits (src/engine/attn.c): two stores holding the same
 * entries after different histories (other keys set and deleted, entries
 * set in another order, overwritten and set back, so that every entry sits
 * in another slot) answer QUERY, EXPLAIN and FGET with the same bits, alone,
 * in batches and with the attention's phases shared by a second thread. */

/* A second thread for every phase, as the daemon's idle workers join one. */
struct help_arg {
    void (*fn)(void *arg, unsigned h);
    void *arg;
};

static void *help_main(void *p)
{
    struct help_arg *h = p;
    h->fn(h->arg, 1);
    return NULL;
}

static void par_run(void *ctx, void (*fn)(void *arg, unsigned h), void *arg, unsigned nhelpers)
{
    struct help_arg h = {fn, arg};
    pthread_t t;
    int ok = nhelpers > 0 && pthread_create(&t, NULL, help_main, &h) == 0;

    (void)ctx;
    fn(arg, 0);
    if (ok)
        pthread_join(t, NULL);
}

/* The answer of it on store s (snapshot snap), alone or with par, with the
 * key (EXPLAIN) or value (FGET) bytes of each listed entry in texts. */
static void history_run(struct akv_query_item *it, struct akv_query_result *res, char texts[][64],
                        const struct akv_par *par)
{
    struct akv_query_batch *b;

    it->res = res;
    ck_assert_int_eq(akv_query_batch_begin_par(it, 1, 1, par, &b), 0);
    akv_query_batch_work(b, 0);
    akv_query_batch_end(b);
    ck_assert_int_eq(it->rc, 0);
    for (size_t w = 0; w < res->nwhy; w++) {
        const char *k, *v;
        size_t kl, vl;
        akv_store_entry_text(it->store, it->snap, res->why[w].slot, &k, &kl, &v, &vl);
        if (it->opts.fget)
            k = v, kl = vl;
        snprintf(texts[w], 64, "%.*s", (int)(kl < 63 ? kl : 63), k);
    }
}

static void same_bits(const struct akv_query_result *a, char ta[][64],
                      const struct akv_query_result *b, char tb[][64], int item, const char *how)
{
    ck_assert_uint_eq(a->attended, b->attended);
    ck_assert_uint_eq(a->blended, b->blended);
    ck_assert_uint_eq(a->nhits, b->nhits);
    ck_assert_uint_eq(a->nwhy, b->nwhy);
    for (size_t h = 0; h < a->nhits; h++) {
        ck_assert_uint_eq(a->hits[h].id, b->hits[h].id);
        ck_assert_msg(memcmp(&a->hits[h].score, &b->hits[h].score, sizeof(double)) == 0,
                      "item %d (%s), hit %zu: %.17g, then %.17g", item, how, h, a->hits[h].score,
                      b->hits[h].score);
    }
    for (size_t w = 0; w < a->nwhy; w++) {
        ck_assert_str_eq(ta[w], tb[w]);
        ck_assert_msg(memcmp(&a->why[w].weight, &b->why[w].weight, sizeof(double)) == 0 &&
                          memcmp(&a->why[w].blend, &b->why[w].blend, sizeof(double)) == 0,
                      "item %d (%s), entry %zu (%s): %.17g, then %.17g", item, how, w, ta[w],
                      a->why[w].weight, b->why[w].weight);
    }
}

START_TEST(test_same_content_same_bits)
{
    enum { N = 20000, JUNK = 5000, NQ = 24 };
    uint64_t seed = 4242;
    struct akv_vocab *voc = tu_random_vocab(3000, 24, 6.0, seed);
    static char keys[N][64], vals[N][64], ta[AKV_EXPLAIN_MAX][64], tb[AKV_EXPLAIN_MAX][64];
    struct akv_store *a, *b;
    struct akv_store_snap sa, sb;
    struct akv_query_result *ra = malloc(sizeof *ra), *rb = malloc(sizeof *rb);
    struct akv_query_item items[NQ], it;
    struct akv_par par = {par_run, NULL, 1};
    float q[NQ][24];
    char err[256], jk[64];
    size_t n = 0;

    ck_assert_int_eq(akv_store_create(&a, voc), 0);
    ck_assert_int_eq(akv_store_create(&b, voc), 0);
    /* a: the entries in order (every 17th a payload; every fifth value
     * repeats an earlier one, for FGET's groups). */
    while (n < N) {
        random_text(&seed, 3000, 3, keys[n], sizeof keys[n]);
        if (n % 5 == 4)
            memcpy(vals[n], vals[n - 3], sizeof vals[n]);
        else
            random_text(&seed, 3000, 3, vals[n], sizeof vals[n]);
        const char *cur;
        size_t clen;
        if (akv_store_get(a, keys[n], strlen(keys[n]), &cur, &clen))
            continue; /* keys are distinct */
        ck_assert_int_eq(akv_store_put_ex(a, keys[n], strlen(keys[n]), vals[n], strlen(vals[n]), 0,
                                          n % 17 == 3 ? AKV_STORE_PAYLOAD : 0, err, sizeof err),
                         0);
        n++;
    }
    /* b: other keys first, the entries backwards, a third of them
     * overwritten, the other keys deleted, then the third set back in
     * another order: every entry in another slot. */
    for (int j = 0; j < JUNK; j++) {
        snprintf(jk, sizeof jk, "%.30s %.30s", keys[j], keys[N - 1 - j]);
        ck_assert_int_eq(
            akv_store_set(b, jk, strlen(jk), vals[j], strlen(vals[j]), err, sizeof err), 0);
    }
    for (size_t i = N; i-- > 0;)
        ck_assert_int_eq(akv_store_put_ex(b, keys[i], strlen(keys[i]), vals[i], strlen(vals[i]), 0,
                                          i % 17 == 3 ? AKV_STORE_PAYLOAD : 0, err, sizeof err),
                         0);
    for (size_t i = 0; i < N; i += 3)
        ck_assert_int_eq(akv_store_set(b, keys[i], strlen(keys[i]), vals[(i + 1) % N],
                                       strlen(vals[(i + 1) % N]), err, sizeof err),
                         0);
    for (int j = 0; j < JUNK; j++) {
        snprintf(jk, sizeof jk, "%.30s %.30s", keys[j], keys[N - 1 - j]);
        ck_assert_int_eq(akv_store_del(b, jk, strlen(jk)), 1);
    }
    for (size_t i = 0; i < N; i += 3) {
        size_t j = (i * 7919) % N;
        j -= j % 3;
        ck_assert_int_eq(akv_store_put_ex(b, keys[j], strlen(keys[j]), vals[j], strlen(vals[j]), 0,
                                          j % 17 == 3 ? AKV_STORE_PAYLOAD : 0, err, sizeof err),
                         0);
    }
    for (size_t i = 0; i < N; i += 3) /* any the scrambled order missed */
        ck_assert_int_eq(akv_store_put_ex(b, keys[i], strlen(keys[i]), vals[i], strlen(vals[i]), 0,
                                          i % 17 == 3 ? AKV_STORE_PAYLOAD : 0, err, sizeof err),
                         0);
    ck_assert_uint_eq(akv_store_count(b), N);

    akv_store_snap_take(a, &sa);
    akv_store_snap_take(b, &sb);
    for (int i = 0; i < NQ; i++) {
        struct akv_query_item *x = &items[i];
        char text[64];
        random_text(&seed, 3000, 2, text, sizeof text);
        ck_assert_int_eq(akv_embed_text(voc, text, strlen(text), q[i], err, sizeof err), 0);
        memset(x, 0, sizeof *x);
        akv_query_opts_default(&x->opts);
        x->opts.attn = (enum akv_attn_mode)(i % 2);
        /* tiny temperatures: weights far below the first shift */
        x->opts.temperature = i % 4 == 1 ? 0.002 : 0.3;
        x->opts.temperature_dot = i % 6 == 0 ? 0.05 : 1.0;
        x->opts.explain = 12;
        x->opts.fget = i % 5 == 2;
        x->q = q[i];
        x->store = a;
        x->snap = &sa;
    }
    for (int i = 0; i < NQ; i++) {
        it = items[i];
        history_run(&it, ra, ta, NULL);
        ck_assert_uint_eq(ra->attended, N);
        ck_assert_uint_gt(ra->nwhy, 0);
        it = items[i];
        it.store = b;
        it.snap = &sb;
        history_run(&it, rb, tb, NULL);
        same_bits(ra, ta, rb, tb, i, "another history");
        it = items[i];
        history_run(&it, rb, tb, &par);
        same_bits(ra, ta, rb, tb, i, "with a helper thread");
        it = items[i];
        it.store = b;
        it.snap = &sb;
        history_run(&it, rb, tb, &par);
        same_bits(ra, ta, rb, tb, i, "another history, with a helper thread");
    }
    /* In one batch, on b. */
    {
        static struct akv_query_result many[NQ];
        for (int i = 0; i < NQ; i++) {
            items[i].store = b;
            items[i].snap = &sb;
            items[i].res = &many[i];
        }
        ck_assert_int_eq(akv_query_run_many(items, NQ), 0);
        for (int i = 0; i < NQ; i++) {
            it = items[i];
            it.store = a;
            it.snap = &sa;
            history_run(&it, ra, ta, NULL);
            for (size_t w = 0; w < many[i].nwhy; w++) {
                const char *k, *v;
                size_t kl, vl;
                akv_store_entry_text(b, &sb, many[i].why[w].slot, &k, &kl, &v, &vl);
                if (items[i].opts.fget)
                    k = v, kl = vl;
                snprintf(tb[w], 64, "%.*s", (int)(kl < 63 ? kl : 63), k);
            }
            same_bits(ra, ta, &many[i], tb, i, "another history, in a batch");
        }
    }
    akv_store_snap_release(a, &sa);
    akv_store_snap_release(b, &sb);
    akv_store_destroy(a);
    akv_store_destroy(b);
    akv_vocab_destroy(voc);
    free(ra);
    free(rb);
}
END_TEST

/* ------------------------------------------------------------------------
 * Payload values and FGET.
 */

/* A store of n entries over a vocabulary of nvocab words: one in three a
 * payload (one of 12 byte strings, NUL and CR LF among them, or the text
 * of a vocabulary word, which groups with the embedded values of that
 * word), the others embedded values from a few words, so that FGET has
 * groups of many entries. */
static void payload_fill(struct model *m, const struct akv_vocab *voc, size_t n, size_t nvocab,
                         uint64_t *seed)
{
    char key[64], val[64];

    model_init(m, voc, n);
    while (m->n < n) {
        random_text(seed, nvocab, 2, key, sizeof key);
        if (m->n % 3 == 1) {
            unsigned c = (unsigned)(tu_rand(seed) % 12);
            size_t len;
            if (c < 4)
                len = (size_t)snprintf(val, sizeof val, "w%u", c); /* as an embedded value */
            else
                len = (size_t)snprintf(val, sizeof val, "{\"id\": %u}\r\n", c);
            if (c % 2)
                val[len++] = '\0'; /* a trailing NUL: other bytes than without */
            model_add_payload(m, voc, key, val, len);
        } else {
            snprintf(val, sizeof val, "w%u", (unsigned)(tu_rand(seed) % 12));
            model_add(m, voc, key, val);
        }
    }
}

/* FGET's answer against the reference: the same values, weights within
 * 1e-12 (both are sums of softmax weights in double). */
static void check_fget(const struct model *m, const struct akv_store_snap *snap,
                       const struct akv_query_result *res, const struct ref_value *want,
                       size_t nwant, const char *what)
{
    ck_assert_msg(res->nwhy == nwant, "%s: %zu values, reference %zu", what, res->nwhy, nwant);
    for (size_t i = 0; i < nwant; i++) {
        const char *k, *v;
        size_t kl, vl;
        const struct ref_entry *e = &m->e[want[i].entry];
        akv_store_entry_text(m->store, snap, res->why[i].slot, &k, &kl, &v, &vl);
        ck_assert_msg(vl == e->vlen && memcmp(v, e->val, vl) == 0, "%s: value %zu differs", what,
                      i);
        ck_assert_msg(fabs(res->why[i].weight - want[i].weight) <= 1e-12,
                      "%s: value %zu weighs %.17g, reference %.17g", what, i, res->why[i].weight,
                      want[i].weight);
    }
}

START_TEST(test_payloads_match_reference)
{
    enum { NV = 3000, DIM = 16, N = 36 };
    static const unsigned ks[] = {1, 5, 50};
    uint64_t seed = 2024;
    struct akv_vocab *voc = tu_random_vocab(NV, DIM, 1.0, seed);
    struct akv_query_result *res = malloc(sizeof *res);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    struct ref_value *vals = malloc(AKV_K_MAX * sizeof *vals);
    double *weights = malloc(600 * sizeof *weights), qd[DIM], r[DIM], emb = 0;
    float q[DIM];
    struct model m;
    struct akv_store_snap snap;
    char text[64], err[256], what[160];

    payload_fill(&m, voc, 600, NV, &seed);
    akv_store_snap_take(m.store, &snap);
    for (int i = 0; i < N; i++) {
        struct akv_query_opts o;
        size_t nwant;
        akv_query_opts_default(&o);
        o.attn = (enum akv_attn_mode)(i % 2);
        o.metric = (enum akv_metric)((i / 2) % 3);
        o.k = ks[(i / 6) % 3];
        o.temperature = (i / 18) % 2 ? 0.5 : 0.05;
        o.temperature_dot = (i / 18) % 2 ? 1.0 : 3.0; /* dot: divided, or the original */
        /* Half the queries are a stored key: its entry dominates. */
        if (i % 4 < 2)
            snprintf(text, sizeof text, "%s", m.keys[(size_t)(i * 7) % m.n]);
        else
            random_text(&seed, NV, 3, text, sizeof text);
        ck_assert_int_eq(akv_embed_text(voc, text, strlen(text), q, err, sizeof err), 0);
        /* The reference gets the same (float) query, so that the weights
         * can be compared closely. */
        for (uint32_t d = 0; d < DIM; d++)
            qd[d] = q[d];
        snprintf(what, sizeof what, "query %d '%s' attn %s metric %s k %u", i, text,
                 akv_attn_mode_name(o.attn), akv_metric_name(o.metric), o.k);

        /* QUERY: the blend of the embedded values alone. */
        ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
        nwant = ref_query(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.metric, o.k, want, weights);
        ck_assert_uint_eq(res->attended, m.n);
        ck_assert_uint_eq(res->blended, m.n - m.n / 3);
        check_hits(res->hits, res->nhits, want, nwant, what);

        /* EXPLAIN: every entry's weight over all, the blend weight over
         * the embedded ones, payloads marked. */
        o.skip_rank = 1;
        o.explain = 40;
        ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
        ck_assert_uint_eq(res->nwhy, 40);
        ref_attend(voc, m.e, m.n, qd, o.attn, REF_TAU(o), r, weights);
        emb = 0;
        for (size_t j = 0; j < m.n; j++)
            emb += m.e[j].payload ? 0 : weights[j];
        for (size_t w = 0; w < res->nwhy; w++) {
            size_t j = res->why[w].slot; /* slots follow insertion: no entry was removed */
            ck_assert_int_eq(res->why[w].payload, m.e[j].payload);
            ck_assert_msg(fabs(res->why[w].weight - weights[j]) <= 1e-12,
                          "%s: weight %zu (slot %zu): %.17g, reference %.17g", what, w, j,
                          res->why[w].weight, weights[j]);
            ck_assert_msg(fabs(res->why[w].blend - (m.e[j].payload ? 0 : weights[j] / emb)) <= 1e-9,
                          "%s: blend weight %zu: %.17g, reference %.17g", what, w,
                          res->why[w].blend, weights[j] / emb);
        }

        /* FGET, with and without a floor. */
        o.explain = 0;
        o.fget = 1;
        o.minweight = i % 3 == 0 ? 0.01 : 0;
        ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
        nwant = ref_fget(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.k, o.minweight, vals);
        check_fget(&m, &snap, res, vals, nwant, what);
        ck_assert_uint_eq(res->nhits, 0);
    }
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_vocab_destroy(voc);
    free(res);
    free(want);
    free(vals);
    free(weights);
}
END_TEST

/* Every kernel, alone or batched with QUERY and EXPLAIN items, gives FGET,
 * QUERY and EXPLAIN on a store with payloads the same bits. */
START_TEST(test_payloads_kernels_and_batches_agree)
{
    enum { NV = 2000, DIM = 31, N = 12 };
    static const char *const names[] = {"portable", "avx2", "avx512"};
    uint64_t seed = 321;
    struct akv_vocab *voc = tu_random_vocab(NV, DIM, 3.0, seed);
    struct akv_query_result *want = malloc(N * sizeof *want), *got = malloc(N * sizeof *got);
    struct akv_query_item items[N];
    float q[N][DIM];
    struct model m;
    struct akv_store_snap snap;
    char text[64], err[256];
    int ran = 0;

    payload_fill(&m, voc, 5000, NV, &seed); /* two store blocks */
    akv_store_snap_take(m.store, &snap);
    for (int i = 0; i < N; i++) {
        random_text(&seed, NV, 3, text, sizeof text);
        ck_assert_int_eq(akv_embed_text(voc, text, strlen(text), q[i], err, sizeof err), 0);
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        if (akv_attn_set_kernel(names[k]) < 0)
            continue;
        for (int alone = 0; alone < 2; alone++) {
            for (int i = 0; i < N; i++) {
                struct akv_query_item *it = &items[i];
                memset(it, 0, sizeof *it);
                akv_query_opts_default(&it->opts);
                it->opts.attn = (enum akv_attn_mode)(i % 2);
                it->opts.temperature = 0.3;
                it->opts.k = 20;
                it->opts.fget = i % 3 == 0;
                it->opts.skip_rank = i % 3 != 2;
                it->opts.explain = i % 3 == 1 ? 30 : 0;
                it->q = q[i];
                it->store = m.store;
                it->snap = &snap;
                it->res = &got[i];
                if (alone)
                    ck_assert_int_eq(akv_query_run_many(it, 1), 0);
            }
            if (!alone)
                ck_assert_int_eq(akv_query_run_many(items, N), 0);
            for (int i = 0; i < N; i++) {
                ck_assert_int_eq(items[i].rc, 0);
                if (ran == 0 && !alone)
                    want[i] = got[i];
                else
                    same_result(&got[i], &want[i], i);
                for (size_t w = 0; w < got[i].nwhy; w++)
                    ck_assert(got[i].why[w].blend == want[i].why[w].blend);
            }
            ck_assert_uint_gt(got[0].nwhy, 0);
            ck_assert_uint_gt(got[2].nhits, 0);
        }
        ran++;
    }
    ck_assert_int_eq(akv_attn_set_kernel("auto"), 0);
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_vocab_destroy(voc);
    free(want);
    free(got);
}
END_TEST

START_TEST(test_payloads_only_and_far_shifts)
{
    enum { NV = 500, DIM = 12 };
    struct akv_vocab *voc = tu_random_vocab(NV, DIM, 1.0, 5);
    struct akv_query_result *res = malloc(sizeof *res);
    struct ref_hit want[5];
    struct ref_value vals[5];
    double qd[DIM];
    float q[DIM];
    struct model m;
    struct akv_store_snap snap;
    struct akv_query_opts o;
    char err[256];
    size_t nwant;

    /* Payloads only: no blend, so QUERY answers nothing (as for an empty
     * store), while EXPLAIN and FGET see every entry. */
    model_init(&m, voc, 8);
    model_add_payload(&m, voc, "w1", "a\0b", 3);
    model_add_payload(&m, voc, "w2", "a\0b", 3);
    model_add_payload(&m, voc, "w3", "", 0);
    akv_store_snap_take(m.store, &snap);
    ck_assert_int_eq(akv_embed_text(voc, "w2", 2, q, err, sizeof err), 0);
    ck_assert_int_eq(ref_embed(voc, "w2", qd), 0);
    akv_query_opts_default(&o);
    ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
    ck_assert_uint_eq(res->nhits, 0);
    ck_assert_uint_eq(res->attended, 3);
    ck_assert_uint_eq(res->blended, 0);
    o.skip_rank = 1;
    o.explain = 5;
    ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
    ck_assert_uint_eq(res->nwhy, 3);
    ck_assert(res->why[0].payload && res->why[0].blend == 0);
    ck_assert(fabs(res->why[0].weight + res->why[1].weight + res->why[2].weight - 1) < 1e-12);
    o.explain = 0;
    o.fget = 1;
    o.k = 5;
    ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
    nwant = ref_fget(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.k, 0, vals);
    ck_assert_uint_eq(nwant, 2);
    check_fget(&m, &snap, res, vals, nwant, "payloads only");
    akv_store_snap_release(m.store, &snap);

    /* A payload key so much nearer than the embedded ones (cosine at the
     * lowest temperature) that their weights underflow next to it: the
     * blend, over the embedded entries alone, is still exact. */
    model_add(&m, voc, "w4", "w10");
    model_add(&m, voc, "w5", "w11 w12");
    model_add(&m, voc, "w6 w7", "w13");
    akv_store_snap_take(m.store, &snap);
    akv_query_opts_default(&o);
    o.attn = AKV_ATTN_COSINE;
    o.temperature = AKV_TEMPERATURE_MIN;
    for (int metric = 0; metric < 3; metric++) {
        o.metric = (enum akv_metric)metric;
        ck_assert_int_eq(akv_query_run(m.store, &snap, q, &o, res), 0);
        nwant = ref_query(voc, m.e, m.n, qd, o.attn, REF_TAU(o), o.metric, o.k, want, NULL);
        ck_assert_uint_eq(nwant, 5);
        check_hits(res->hits, res->nhits, want, nwant, "far shifts");
    }
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_vocab_destroy(voc);
    free(res);
}
END_TEST

/* Neighbor lists with payload entries heavy and light: the same answers as
 * the scan and the reference, and some answered from the lists. */
START_TEST(test_payloads_neighbor_lists)
{
    enum { N = 24, NV = 20000, DIM = 24 };
    uint64_t seed = 93;
    struct akv_vocab *voc = tu_random_vocab(NV, DIM, 1.0, seed);
    struct akv_query_result *with = malloc(N * sizeof *with),
                            *without = malloc(N * sizeof *without);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    struct akv_query_item items[N], plain[N];
    struct akv_nbcache *cache;
    float q[N][DIM];
    double qd[DIM];
    struct model m;
    struct akv_store_snap snap;
    char key[64], val[64], err[256], what[160];
    size_t from_lists = 0;

    ck_assert_int_eq(akv_nbcache_create(&cache, 1000), 0);
    model_init(&m, voc, 400);
    while (m.n < 400) {
        snprintf(key, sizeof key, "w%u", (unsigned)(tu_rand(&seed) % NV));
        snprintf(val, sizeof val, "w%u", (unsigned)(tu_rand(&seed) % NV));
        if (m.n % 4 == 1)
            model_add_payload(&m, voc, key, val, strlen(val));
        else
            model_add(&m, voc, key, val);
    }
    akv_store_snap_take(m.store, &snap);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            struct akv_query_item *it = &items[i];
            /* A key alone (a payload's for i % 4 == 1), or a payload's
             * key mixed with an embedded entry's: the payload's weight
             * must not count in the bound. */
            const char *a = m.keys[(size_t)i % 16], *b = m.keys[(size_t)(i % 16) / 4 * 4 + 1];
            float other[DIM], mix = 0.6f;
            ck_assert_int_eq(akv_embed_text(voc, a, strlen(a), q[i], err, sizeof err), 0);
            if (i >= 16) {
                ck_assert_int_eq(akv_embed_text(voc, b, strlen(b), other, err, sizeof err), 0);
                for (uint32_t d = 0; d < DIM; d++)
                    q[i][d] = mix * q[i][d] + (1 - mix) * other[d];
            }
            memset(it, 0, sizeof *it);
            akv_query_opts_default(&it->opts);
            it->opts.metric = (enum akv_metric)(i % 2); /* l2 and cosine: the lists' metrics */
            it->opts.attn = AKV_ATTN_COSINE;
            it->opts.temperature = (const double[]){0.02, 0.05, 0.1}[(i + round) % 3];
            it->opts.k = (const unsigned[]){1, 5, 20}[(i / 2 + round) % 3];
            it->q = q[i];
            it->store = m.store;
            it->snap = &snap;
            plain[i] = *it;
            it->res = &with[i];
            it->nbcache = cache;
            plain[i].res = &without[i];
        }
        ck_assert_int_eq(akv_query_run_many(items, N), 0);
        ck_assert_int_eq(akv_query_run_many(plain, N), 0);
        for (int i = 0; i < N; i++) {
            size_t nwant;
            same_result(&with[i], &without[i], i);
            from_lists += (size_t)with[i].from_lists;
            for (uint32_t d = 0; d < DIM; d++)
                qd[d] = q[i][d];
            nwant = ref_query(voc, m.e, m.n, qd, items[i].opts.attn, REF_TAU(items[i].opts),
                              items[i].opts.metric, items[i].opts.k, want, NULL);
            snprintf(what, sizeof what, "round %d item %d lists %d", round, i, with[i].from_lists);
            check_hits(with[i].hits, with[i].nhits, want, nwant, what);
        }
    }
    ck_assert_uint_gt(from_lists, 0);
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_nbcache_destroy(cache);
    akv_vocab_destroy(voc);
    free(with);
    free(without);
    free(want);
}
END_TEST

/* The reference's answer under the options of it (its exclusions,
 * RESTRICT, MAXDIST, WITHSIMILARITY, MINSCORE), against r. */
static size_t ref_filtered(const struct akv_vocab *voc, const struct akv_query_item *it,
                           const double *r, struct ref_hit *want)
{
    const struct akv_query_opts *o = &it->opts;
    uint32_t dim = akv_vocab_dim(voc);
    size_t n = ref_rank_filtered(voc, r, o->metric, o->k, o->restrict_n, it->exclude, it->nexclude,
                                 want),
           j = 0;
    double rr = 0;

    for (uint32_t d = 0; d < dim; d++)
        rr += r[d] * r[d];
    for (size_t i = 0; i < n; i++) {
        struct ref_hit h = want[i];
        if (o->use_maxdist && o->metric == AKV_METRIC_L2 && !(h.score <= o->maxdist))
            continue;
        if (o->similarity && o->metric != AKV_METRIC_COSINE) {
            const float *x = akv_vocab_vec(voc, h.id);
            double xr = 0, xx = 0;
            for (uint32_t d = 0; d < dim; d++) {
                xr += x[d] * r[d];
                xx += (double)x[d] * x[d];
            }
            h.score = xx > 0 && rr > 0 ? xr / sqrt(xx * rr) : 0;
        }
        if (o->use_minscore && !(h.score >= o->minscore))
            continue;
        want[j++] = h;
    }
    return j;
}

/* EXCLUDE, RESTRICT, MAXDIST, MINSCORE, WITHSIMILARITY, TEMPERATURE under
 * dot and 3CosMul items, batched with plain ones and with neighbor lists:
 * every answer is the reference's, and the lists still answer filtered
 * queries. */
START_TEST(test_filters_and_cosmul)
{
    enum { NV = 2000, DIM = 16, N = 24 };
    struct akv_vocab *voc = tu_random_vocab(NV, DIM, 1.0, 4242);
    struct akv_nbcache *cache;
    struct akv_query_item items[N];
    struct akv_query_result *res = malloc(N * sizeof *res);
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want), top[4];
    struct akv_store_snap snap;
    struct model m;
    float q[N][DIM], terms[N][3 * DIM];
    double qd[DIM], r[DIM], td[3 * DIM];
    uint32_t excl[N][4];
    char key[32], val[32], err[256], what[160];
    uint64_t seed = 17;
    size_t from_lists = 0, filtered = 0;

    ck_assert_int_eq(akv_nbcache_create(&cache, 1000), 0);
    model_init(&m, voc, 300);
    while (m.n < 300) {
        snprintf(key, sizeof key, "w%u", (unsigned)(tu_rand(&seed) % NV));
        snprintf(val, sizeof val, "w%u", (unsigned)(tu_rand(&seed) % NV));
        model_add(&m, voc, key, val);
    }
    akv_store_snap_take(m.store, &snap);
    /* Each batch computes the lists of a few values (LIST_FILLS, the
     * heaviest first), so the later rounds find the lists of the twelve
     * keys queried. */
    /* The later rounds cycle through the scan kernels this CPU runs. */
    for (int round = 0; round < 8 + 3; round++) {
        static const char *const kernels[] = {"portable", "avx2", "avx512vnni"};
        if (round >= 8 && akv_rank_set_kernel(kernels[round - 8]) < 0)
            continue;
        for (int i = 0; i < N; i++) {
            struct akv_query_item *it = &items[i];
            const char *text = m.keys[(size_t)i % 12];
            ck_assert_int_eq(akv_embed_text(voc, text, strlen(text), q[i], err, sizeof err), 0);
            memset(it, 0, sizeof *it);
            akv_query_opts_default(&it->opts);
            it->q = q[i];
            it->res = &res[i];
            it->nbcache = cache;
            it->opts.metric = (enum akv_metric)(i % 2); /* l2 or cosine: lists apply */
            it->opts.attn = AKV_ATTN_COSINE;
            it->opts.temperature = 0.002;
            it->opts.k = (const unsigned[]){1, 5, 20}[(i / 2) % 3];
            if (i % 8 == 7) { /* NEIGHBORS */
                it->vocab = voc;
            } else {
                it->store = m.store;
                it->snap = &snap;
            }
            if (i % 8 == 6) { /* dot attention with a temperature */
                it->opts.attn = AKV_ATTN_DOT;
                it->opts.temperature_dot = (const double[]){0.5, 3, 1}[round % 3];
            }
            if (i % 3 == 0) {
                /* The best words of the unfiltered answer are excluded. */
                for (uint32_t d = 0; d < DIM; d++)
                    qd[d] = q[i][d];
                if (it->store)
                    ref_attend(voc, m.e, m.n, qd, it->opts.attn, REF_TAU(it->opts), r, NULL);
                else
                    memcpy(r, qd, sizeof r);
                size_t nt = ref_rank(voc, r, it->opts.metric, 3, top);
                for (size_t t = 0; t < nt; t++)
                    excl[i][t] = top[t].id;
                qsort(excl[i], nt, sizeof excl[i][0], cmp_u32_test);
                it->exclude = excl[i];
                it->nexclude = nt;
            }
            if (i % 4 == 1)
                it->opts.restrict_n = 900;
            if (i % 5 == 2) {
                it->opts.similarity = 1;
                it->opts.use_minscore = 1;
                it->opts.minscore = 0.3;
            }
            if (i % 5 == 3 && it->opts.metric == AKV_METRIC_L2) {
                it->opts.use_maxdist = 1;
                it->opts.maxdist = 2.5;
            }
            if (i % 16 == 15) { /* NEIGHBORS by 3CosMul over three words */
                it->cosmul = 1;
                it->npos = 2;
                it->nneg = 1;
                for (unsigned t = 0; t < 3; t++)
                    memcpy(terms[i] + t * DIM, akv_vocab_vec(voc, (uint32_t)(7 * i + t + round)),
                           DIM * sizeof(float));
                it->terms = terms[i];
            }
        }
        ck_assert_int_eq(akv_query_run_many(items, N), 0);
        if (round == 7) {
            /* Alone, each item gets what it got in the batch. */
            struct akv_query_result *one = malloc(sizeof *one);
            for (int i = 0; i < N; i++) {
                struct akv_query_item it = items[i];
                it.res = one;
                ck_assert_int_eq(akv_query_run_many(&it, 1), 0);
                ck_assert_int_eq(it.rc, 0);
                ck_assert_uint_eq(one->nhits, res[i].nhits);
                for (size_t h = 0; h < one->nhits; h++) {
                    ck_assert_uint_eq(one->hits[h].id, res[i].hits[h].id);
                    ck_assert(one->hits[h].score == res[i].hits[h].score);
                }
            }
            free(one);
        }
        for (int i = 0; i < N; i++) {
            struct akv_query_item *it = &items[i];
            size_t nwant;
            ck_assert_int_eq(it->rc, 0);
            for (uint32_t d = 0; d < DIM; d++)
                qd[d] = q[i][d];
            if (it->cosmul) {
                for (size_t d = 0; d < 3 * DIM; d++)
                    td[d] = terms[i][d];
                nwant = ref_cosmul(voc, td, 2, 1, it->opts.k, it->opts.restrict_n, it->exclude,
                                   it->nexclude, want);
                if (it->opts.use_minscore) {
                    size_t j = 0;
                    for (size_t h = 0; h < nwant; h++)
                        if (want[h].score >= it->opts.minscore)
                            want[j++] = want[h];
                    nwant = j;
                }
            } else {
                if (it->store)
                    ref_attend(voc, m.e, m.n, qd, it->opts.attn, REF_TAU(it->opts), r, NULL);
                else
                    memcpy(r, qd, sizeof r);
                nwant = ref_filtered(voc, it, r, want);
            }
            snprintf(what, sizeof what, "round %d item %d metric %s k %u lists %d", round, i,
                     akv_metric_name(it->opts.metric), it->opts.k, res[i].from_lists);
            check_hits(res[i].hits, res[i].nhits, want, nwant, what);
            if (it->nexclude > 0 || it->opts.restrict_n > 0) {
                filtered++;
                from_lists += (size_t)res[i].from_lists;
            }
        }
    }
    ck_assert_msg(from_lists > 0, "no filtered query of %zu was answered from lists", filtered);
    akv_rank_set_kernel("auto");
    akv_store_snap_release(m.store, &snap);
    model_free(&m);
    akv_nbcache_destroy(cache);
    akv_vocab_destroy(voc);
    free(res);
    free(want);
}
END_TEST

static Suite *query_suite(void)
{
    Suite *s = suite_create("query");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_random_small);
    tcase_add_test(tc, test_random_large_store);
    tcase_add_test(tc, test_reference_large_store);
    tcase_add_test(tc, test_random_long_phrases);
    tcase_add_test(tc, test_scores_jump_between_blocks);
    tcase_add_test(tc, test_single_entry_store);
    tcase_add_test(tc, test_explain_weights);
    tcase_add_test(tc, test_empty_store);
    tcase_add_test(tc, test_overwrite_and_delete_follow_model);
    tcase_add_test(tc, test_ties_break_by_vocabulary_order);
    tcase_add_test(tc, test_neighbors_match_reference);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_batch_attention_paths);
    tcase_add_test(tc, test_batch_equals_single);
    tcase_add_test(tc, test_neighbor_lists);
    tcase_add_test(tc, test_neighbor_lists_bound);
    tcase_add_test(tc, test_attention_kernels_agree);
    tcase_add_test(tc, test_same_content_same_bits);
    tcase_add_test(tc, test_expired_keys_change_nothing);
    tcase_add_test(tc, test_payloads_match_reference);
    tcase_add_test(tc, test_payloads_kernels_and_batches_agree);
    tcase_add_test(tc, test_payloads_only_and_far_shifts);
    tcase_add_test(tc, test_payloads_neighbor_lists);
    tcase_add_test(tc, test_filters_and_cosmul);
    suite_add_tcase(s, tc);
    return s;
}

/* The whole suite once per ranking kernel this CPU runs: each must give the
 * reference's answers. Check forks every test from here, so the choice made
 * before a run holds in its tests. */
int main(void)
{
    static const char *const kernels[] = {"portable", "avx2", "avx512vnni"};
    int status = EXIT_SUCCESS;

    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        if (akv_rank_set_kernel(kernels[i]) < 0) {
            printf("kernel %s: not supported here, skipped\n", kernels[i]);
            continue;
        }
        printf("kernel %s\n", kernels[i]);
        if (tu_run_suite(query_suite()) != EXIT_SUCCESS)
            status = EXIT_FAILURE;
    }
    return status;
}
