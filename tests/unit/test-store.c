/*
 * test-store.c - the key/value store: exact strings, overwrite, delete,
 * flush, SCAN iteration, snapshot isolation, slot reuse only after release,
 * the word lists that stand for the vectors (single words, phrases, phrases
 * longer than the inline lists, overwrites from one to the other, reuse),
 * the set of key words queries read, expiry (by a clock the test sets: lookups,
 * snapshots, new times, the heap of due entries), memory accounting (and MEMORY
 * USAGE's per-entry figure), RANDOMKEY's random key, and concurrent hammers
 * (writers on the owner thread, queries on reader threads; one of them moving
 * the clock past expiry times as readers scan) that the TSan build runs too.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "attnkv/embed.h"
#include "attnkv/query.h"
#include "attnkv/store.h"
#include "testutil.h"

static struct akv_vocab *voc;

static void setup(void)
{
    voc = tu_random_vocab(2000, 8, 1.0, 99);
}

static void teardown(void)
{
    akv_vocab_destroy(voc);
}

static int set(struct akv_store *s, const char *k, const char *v)
{
    char err[256];
    return akv_store_set(s, k, strlen(k), v, strlen(v), err, sizeof err);
}

static int get_is(struct akv_store *s, const char *k, const char *want)
{
    const char *v;
    size_t vl;
    if (!akv_store_get(s, k, strlen(k), &v, &vl))
        return want == NULL;
    return want != NULL && vl == strlen(want) && memcmp(v, want, vl) == 0;
}

START_TEST(test_set_get_del)
{
    struct akv_store *s;
    char err[256];

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    ck_assert_int_eq(set(s, "w1", "w2"), 0);
    ck_assert(get_is(s, "w1", "w2"));
    ck_assert(get_is(s, "w3", NULL));
    /* Keys are exact bytes: case and spacing make different keys even
     * though they embed alike. */
    ck_assert_int_eq(set(s, "W1", "w5"), 0);
    ck_assert_int_eq(set(s, "w1  w2", "w6 w7"), 0);
    ck_assert_int_eq(set(s, "w1 w2", "w8"), 0);
    ck_assert_uint_eq(akv_store_count(s), 4);
    ck_assert(get_is(s, "w1", "w2"));
    ck_assert(get_is(s, "W1", "w5"));
    ck_assert(get_is(s, "w1  w2", "w6 w7"));
    ck_assert(get_is(s, "w1 w2", "w8"));
    /* Overwrite keeps the count. */
    ck_assert_int_eq(set(s, "w1", "w9"), 0);
    ck_assert_uint_eq(akv_store_count(s), 4);
    ck_assert(get_is(s, "w1", "w9"));
    ck_assert_int_eq(akv_store_del(s, "w1", 2), 1);
    ck_assert_int_eq(akv_store_del(s, "w1", 2), 0);
    ck_assert(get_is(s, "w1", NULL));
    ck_assert_uint_eq(akv_store_count(s), 3);
    /* Unknown words and empty text are refused and change nothing. */
    ck_assert_int_eq(akv_store_set(s, "nope", 4, "w1", 2, err, sizeof err), -ENOENT);
    ck_assert_str_eq(err, "unknown word 'nope'");
    ck_assert_int_eq(akv_store_set(s, "w1", 2, "w1 zz", 5, err, sizeof err), -ENOENT);
    ck_assert_int_eq(akv_store_set(s, "  ", 2, "w1", 2, err, sizeof err), -EINVAL);
    ck_assert_int_eq(akv_store_set(s, "w1", 2, "", 0, err, sizeof err), -EINVAL);
    ck_assert_uint_eq(akv_store_count(s), 3);
    ck_assert_uint_eq(akv_store_flush(s), 3);
    ck_assert_uint_eq(akv_store_count(s), 0);
    ck_assert(get_is(s, "W1", NULL));
    ck_assert_int_eq(set(s, "W1", "w3"), 0);
    ck_assert(get_is(s, "W1", "w3"));
    akv_store_destroy(s);
    akv_store_destroy(NULL);
}
END_TEST

static size_t visible_rows(const struct akv_store *s, const struct akv_store_snap *snap);

static int count_block(void *arg, const struct akv_store_block *b)
{
    size_t *c = arg;
    for (size_t i = 0; i < b->n; i++)
        *c += b->visible[i];
    return 0;
}

static size_t visible_rows(const struct akv_store *s, const struct akv_store_snap *snap)
{
    size_t c = 0;
    akv_store_scan(s, snap, count_block, &c);
    return c;
}

START_TEST(test_snapshot_isolation)
{
    struct akv_store *s;
    struct akv_store_snap a, b;
    struct akv_query_result *res = malloc(sizeof *res);
    struct akv_query_opts o;
    const char *k, *v;
    size_t kl, vl;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    ck_assert_int_eq(set(s, "w1", "w2"), 0);
    ck_assert_int_eq(set(s, "w3", "w4"), 0);
    akv_store_snap_take(s, &a);
    ck_assert_int_eq(set(s, "w1", "w5"), 0); /* overwrite after a */
    ck_assert_int_eq(akv_store_del(s, "w3", 2), 1);
    ck_assert_int_eq(set(s, "w6", "w7"), 0);
    akv_store_snap_take(s, &b);
    ck_assert_uint_eq(visible_rows(s, &a), 2);
    ck_assert_uint_eq(visible_rows(s, &b), 2);

    /* Snapshot a still reads the old value of w1 and the deleted w3. */
    akv_query_opts_default(&o);
    o.explain = 5;
    o.skip_rank = 1;
    ck_assert_int_eq(akv_query_run(s, &a, akv_vocab_vec(voc, 1), &o, res), 0);
    ck_assert_uint_eq(res->nwhy, 2);
    for (size_t i = 0; i < res->nwhy; i++) {
        akv_store_entry_text(s, &a, res->why[i].slot, &k, &kl, &v, &vl);
        if (kl == 2 && memcmp(k, "w1", 2) == 0)
            ck_assert(vl == 2 && memcmp(v, "w2", 2) == 0);
        else
            ck_assert(kl == 2 && memcmp(k, "w3", 2) == 0 && memcmp(v, "w4", 2) == 0);
    }
    ck_assert_int_eq(akv_query_run(s, &b, akv_vocab_vec(voc, 1), &o, res), 0);
    ck_assert_uint_eq(res->nwhy, 2);
    for (size_t i = 0; i < res->nwhy; i++) {
        akv_store_entry_text(s, &b, res->why[i].slot, &k, &kl, &v, &vl);
        if (kl == 2 && memcmp(k, "w1", 2) == 0)
            ck_assert(vl == 2 && memcmp(v, "w5", 2) == 0);
        else
            ck_assert(kl == 2 && memcmp(k, "w6", 2) == 0 && memcmp(v, "w7", 2) == 0);
    }
    akv_store_snap_release(s, &a);
    akv_store_snap_release(s, &b);
    akv_store_destroy(s);
    free(res);
}
END_TEST

START_TEST(test_slots_reused_only_after_release)
{
    struct akv_store *s;
    struct akv_store_snap a, b;
    char k[16];
    size_t mem_before, empty_mem;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    empty_mem = akv_store_memory(s);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "w%d", i % 2000);
        ck_assert_int_eq(set(s, k, "w1"), 0);
    }
    /* 5000 writes over 2000 keys with no reader: slots were reclaimed at
     * once, so the store stays within its first chunk. */
    ck_assert_uint_eq(akv_store_count(s), 2000);
    akv_store_snap_take(s, &a);
    ck_assert_uint_lt(a.nslots, 4097);
    mem_before = akv_store_memory(s);

    /* While a is live, overwriting every key must not reuse a's slots. */
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "w%d", i);
        ck_assert_int_eq(set(s, k, "w2"), 0);
    }
    ck_assert_uint_eq(visible_rows(s, &a), 2000);
    akv_store_snap_take(s, &b);
    ck_assert_uint_eq(visible_rows(s, &b), 2000);
    ck_assert_uint_gt(b.nslots, a.nslots);
    akv_store_snap_release(s, &a);
    akv_store_snap_release(s, &b);

    /* With no reader left, many more rounds of overwrites recycle slots:
     * memory does not grow. */
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 2000; i++) {
            snprintf(k, sizeof k, "w%d", i);
            ck_assert_int_eq(set(s, k, round % 2 ? "w3" : "w4 w5"), 0);
        }
    ck_assert_uint_le(akv_store_memory(s), mem_before + 4 * 1024 * 1024);
    akv_store_snap_take(s, &a);
    ck_assert_uint_eq(visible_rows(s, &a), 2000);

    /* FLUSHALL while a reader is live keeps the chunks it reads; once it is
     * released the store gives its memory back. */
    ck_assert_uint_eq(akv_store_flush(s), 2000);
    ck_assert_uint_eq(visible_rows(s, &a), 2000);
    ck_assert_uint_gt(akv_store_memory(s), empty_mem);
    akv_store_snap_release(s, &a);
    ck_assert_uint_eq(akv_store_memory(s), empty_mem);
    ck_assert_int_eq(set(s, "w5", "w6"), 0);
    ck_assert(get_is(s, "w5", "w6"));
    akv_store_destroy(s);
}
END_TEST

/* akv_store_memory_used falls when entries go (what maxmemory relies on),
 * while akv_store_memory keeps the vector chunks. */
START_TEST(test_memory_used)
{
    struct akv_store *s;
    struct akv_store_snap a;
    size_t empty, full, mem_full;
    char k[16];

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    empty = akv_store_memory_used(s);
    ck_assert_uint_le(empty, akv_store_memory(s));
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "w%d", i);
        ck_assert_int_eq(set(s, k, "w1"), 0);
    }
    full = akv_store_memory_used(s);
    mem_full = akv_store_memory(s);
    /* At least the two word lists and the text of each entry. */
    ck_assert_uint_gt(full, empty + 1000 * (2 * sizeof(struct akv_store_words) + 8));
    ck_assert_uint_lt(full, mem_full);
    /* A DEL with no reader frees its slot at once (100 of them, to be
     * clear of the bookkeeping arrays growing). */
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "w%d", i);
        ck_assert_int_eq(akv_store_del(s, k, strlen(k)), 1);
    }
    ck_assert_uint_lt(akv_store_memory_used(s), full);
    /* A snapshot keeps what it can see counted until it is released. */
    akv_store_snap_take(s, &a);
    akv_store_flush(s);
    ck_assert_uint_ge(akv_store_memory_used(s), full - 4096);
    akv_store_snap_release(s, &a);
    akv_store_flush(s); /* reclaims; nothing left to remove */
    /* Empty and unread, the store has given everything back. */
    ck_assert_uint_eq(akv_store_memory_used(s), empty);
    ck_assert_uint_lt(akv_store_memory(s), mem_full);
    akv_store_destroy(s);
}
END_TEST

/* ---- word lists ------------------------------------------------------ */

/* What a snapshot holds for one key. */
struct found {
    const char *key;
    int hits;
    size_t slot;
    struct akv_store_words k, v;
    double knorm;
};

struct find_arg {
    const struct akv_store *s;
    const struct akv_store_snap *snap;
    struct found *f;
};

static int find_key_block(void *arg, const struct akv_store_block *b)
{
    struct find_arg *a = arg;
    for (size_t i = 0; i < b->n; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (!b->visible[i])
            continue;
        akv_store_entry_text(a->s, a->snap, b->first_slot + i, &k, &kl, &v, &vl);
        if (kl != strlen(a->f->key) || memcmp(k, a->f->key, kl) != 0)
            continue;
        a->f->hits++;
        a->f->slot = b->first_slot + i;
        a->f->k = b->keys[i];
        a->f->v = b->vals[i];
        a->f->knorm = b->knorms[i];
    }
    return 0;
}

/* Finds key in snap; fails the test unless exactly one visible entry has it. */
static struct found find(const struct akv_store *s, const struct akv_store_snap *snap,
                         const char *key)
{
    struct found f = {.key = key};
    struct find_arg a = {s, snap, &f};
    akv_store_scan(s, snap, find_key_block, &a);
    ck_assert_msg(f.hits == 1, "key '%s' visible %d times", key, f.hits);
    return f;
}

/* Checks that the key or value of f names exactly the words "w<id>" of
 * want, through the inline list and akv_store_entry_words. */
static void check_words(const struct akv_store *s, const struct akv_store_snap *snap,
                        const struct found *f, enum akv_store_part part, const char *want)
{
    const struct akv_store_words *w = part == AKV_STORE_KEY ? &f->k : &f->v;
    uint32_t ids[AKV_PHRASE_WORDS_MAX];
    size_t n, got_n;
    const uint32_t *got;
    char err[256];

    ck_assert_int_eq(akv_embed_words(voc, want, strlen(want), ids, &n, err, sizeof err), 0);
    ck_assert_uint_eq(w->n, n);
    for (size_t i = 0; i < AKV_STORE_WORDS_INLINE; i++)
        ck_assert_uint_eq(w->id[i], i < n ? ids[i] : AKV_STORE_NO_WORD);
    got = akv_store_entry_words(s, snap, f->slot, part, &got_n);
    ck_assert_uint_eq(got_n, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(got[i], ids[i]);
}

/* The norm of the mean of the rows of text's words, in double. */
static double mean_norm(const char *text)
{
    uint32_t ids[AKV_PHRASE_WORDS_MAX], dim = akv_vocab_dim(voc);
    double sum[64] = {0}, ss = 0;
    size_t n;
    char err[256];

    ck_assert_uint_le(dim, 64);
    ck_assert_int_eq(akv_embed_words(voc, text, strlen(text), ids, &n, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dim; d++)
            sum[d] += akv_vocab_vec(voc, ids[i])[d];
    for (uint32_t d = 0; d < dim; d++)
        ss += (sum[d] / (double)n) * (sum[d] / (double)n);
    return sqrt(ss);
}

/* Checks everything a snapshot says about key: its text, value text and
 * both word lists, and its key norm. */
static void check_entry(const struct akv_store *s, const struct akv_store_snap *snap,
                        const char *key, const char *val)
{
    struct found f = find(s, snap, key);
    const char *k, *v;
    size_t kl, vl;

    akv_store_entry_text(s, snap, f.slot, &k, &kl, &v, &vl);
    ck_assert(kl == strlen(key) && memcmp(k, key, kl) == 0 && k[kl] == '\0');
    ck_assert_msg(vl == strlen(val) && memcmp(v, val, vl) == 0 && v[vl] == '\0',
                  "key '%s': value '%.*s', want '%s'", key, (int)vl, v, val);
    check_words(s, snap, &f, AKV_STORE_KEY, key);
    check_words(s, snap, &f, AKV_STORE_VALUE, val);
    ck_assert_msg(fabs(f.knorm - mean_norm(key)) <= 1e-12 * mean_norm(key), "key '%s' norm %.17g",
                  key, f.knorm);
}

/* MEMORY USAGE's figure: what an entry adds to akv_store_memory_used,
 * more for a longer text, nothing for an absent key. */
START_TEST(test_entry_memory)
{
    struct akv_store *s;
    size_t before, one, two;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    ck_assert_uint_eq(akv_store_entry_memory(s, "w1", 2), 0);
    ck_assert_int_eq(set(s, "w1", "w2"), 0);
    one = akv_store_entry_memory(s, "w1", 2);
    ck_assert_uint_gt(one, 2 * sizeof(struct akv_store_words));
    before = akv_store_memory_used(s);
    ck_assert_int_eq(set(s, "w3", "w4"), 0);
    /* A second entry of the same size costs what MEMORY USAGE says, but
     * for the bucket share (the index is allocated a table at a time). */
    ck_assert_uint_eq(akv_store_memory_used(s) - before + sizeof(uint32_t), one);
    ck_assert_int_eq(set(s, "w5 w6 w7 w8 w9", "w10 w11 w12 w13 w14 w15 w16 w17 w18 w19"), 0);
    two = akv_store_entry_memory(s, "w5 w6 w7 w8 w9", 14);
    ck_assert_uint_gt(two, one);
    ck_assert_uint_eq(akv_store_entry_memory(s, "w5", 2), 0);
    akv_store_destroy(s);
}
END_TEST

/* RANDOMKEY: every key comes up, none that was removed, nothing from an
 * empty store, and a store that shrank from many keys to one still finds
 * it (the walk after the probes). */
START_TEST(test_random_key)
{
    struct akv_store *s;
    const char *k;
    size_t kl;
    int seen[100] = {0}, distinct = 0;
    char key[16];

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    ck_assert_int_eq(akv_store_random_key(s, 1, &k, &kl), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "w%d", i);
        ck_assert_int_eq(set(s, key, "w1"), 0);
    }
    for (uint64_t seed = 1; seed <= 5000; seed++) {
        int i;
        ck_assert_int_eq(akv_store_random_key(s, seed * 0x9e3779b97f4a7c15u, &k, &kl), 1);
        ck_assert(kl >= 2 && k[0] == 'w');
        i = atoi(k + 1);
        ck_assert_int_lt(i, 100);
        distinct += !seen[i];
        seen[i]++;
    }
    ck_assert_int_eq(distinct, 100);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "w%d", i % 2000);
        ck_assert_int_eq(set(s, key, "w1"), 0);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "w%d", i);
        if (i != 1234)
            ck_assert_int_eq(akv_store_del(s, key, strlen(key)), 1);
    }
    for (uint64_t seed = 1; seed <= 100; seed++) {
        ck_assert_int_eq(akv_store_random_key(s, seed, &k, &kl), 1);
        ck_assert_uint_eq(kl, 5);
        ck_assert(memcmp(k, "w1234", 5) == 0);
    }
    ck_assert_int_eq(akv_store_del(s, "w1234", 5), 1);
    ck_assert_int_eq(akv_store_random_key(s, 7, &k, &kl), 0);
    akv_store_destroy(s);
}
END_TEST

START_TEST(test_words_single_and_phrase)
{
    static const char *const kv[][2] = {
        {"w1", "w2"},                                   /* single words */
        {"w3 w4", "w5"},                                /* a two-word key */
        {"w6  w7\tw8", "w9 w10"},                       /* three words, odd spacing */
        {"w11 w12 w13 w14", "w15 w16 w17 w18 w19 w20"}, /* longer than inline */
        {"w21", "w22 w23 w24 w25"},
        {"w26 w26 w26 w27", "w28 w28"}, /* repeated words */
    };
    struct akv_store *s;
    struct akv_store_snap snap;
    char big[64 * 6 + 8], err[256];
    size_t len = 0;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_int_eq(set(s, kv[i][0], kv[i][1]), 0);
    /* The most words a phrase may have, and one more. */
    for (int w = 0; w < 64; w++)
        len += (size_t)snprintf(big + len, sizeof big - len, "%sw%d", w ? " " : "", 100 + w);
    ck_assert_int_eq(set(s, big, big), 0);
    snprintf(big + len, sizeof big - len, " w1");
    ck_assert_int_eq(akv_store_set(s, big, strlen(big), "w1", 2, err, sizeof err), -EINVAL);
    ck_assert_str_eq(err, "too many words (at most 64)");
    big[len] = '\0';

    akv_store_snap_take(s, &snap);
    ck_assert_uint_eq(visible_rows(s, &snap), sizeof kv / sizeof kv[0] + 1);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        check_entry(s, &snap, kv[i][0], kv[i][1]);
    check_entry(s, &snap, big, big);
    akv_store_snap_release(s, &snap);
    akv_store_destroy(s);
}
END_TEST

/* A key goes from a single word to a long phrase and back while snapshots
 * look at each state; each snapshot keeps reading its own, and the one left
 * live is undisturbed when the slots only the others could see are reused
 * for entries of other shapes. */
START_TEST(test_overwrite_word_phrase_word)
{
    static const char *const vals[] = {"w1", "w2 w3 w4 w5 w6", "w7", "w8 w9"};
    struct akv_store *s;
    struct akv_store_snap snaps[4], c;
    char k[16];

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(set(s, "w50", vals[i]), 0);
        ck_assert_int_eq(set(s, "w51 w52 w53 w54", vals[3 - i]), 0);
        akv_store_snap_take(s, &snaps[i]);
    }
    ck_assert_uint_eq(akv_store_count(s), 2);
    for (int i = 0; i < 4; i++) {
        check_entry(s, &snaps[i], "w50", vals[i]);
        check_entry(s, &snaps[i], "w51 w52 w53 w54", vals[3 - i]);
    }
    for (int i = 0; i < 3; i++)
        akv_store_snap_release(s, &snaps[i]);
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "w%d", 300 + i % 20);
        ck_assert_int_eq(set(s, k, i % 3 ? "w1 w2 w3 w4 w5 w6 w7" : "w9"), 0);
        ck_assert_int_eq(akv_store_del(s, k, strlen(k)), 1);
    }
    check_entry(s, &snaps[3], "w50", vals[3]);
    check_entry(s, &snaps[3], "w51 w52 w53 w54", vals[0]);
    /* Eight slots were used, six of them only by the released snapshots;
     * the 200 new entries reused those six. */
    akv_store_snap_take(s, &c);
    ck_assert_uint_eq(c.nslots, 8 + 200 - 6);
    check_entry(s, &c, "w50", vals[3]);
    check_entry(s, &c, "w51 w52 w53 w54", vals[0]);
    akv_store_snap_release(s, &c);
    akv_store_snap_release(s, &snaps[3]);
    akv_store_destroy(s);
}
END_TEST

/* A deleted phrase's slot, reused by a single word, keeps nothing of it. */
START_TEST(test_del_reuse_words)
{
    struct akv_store *s;
    struct akv_store_snap snap;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    ck_assert_int_eq(set(s, "w1 w2 w3", "w4 w5 w6 w7"), 0);
    ck_assert_int_eq(akv_store_del(s, "w1 w2 w3", 8), 1);
    ck_assert_int_eq(set(s, "w8", "w9"), 0); /* no reader: the same slot */
    akv_store_snap_take(s, &snap);
    ck_assert_uint_eq(snap.nslots, 1);
    check_entry(s, &snap, "w8", "w9");
    akv_store_snap_release(s, &snap);
    ck_assert_int_eq(akv_store_del(s, "w8", 2), 1);
    ck_assert_int_eq(set(s, "w10 w11", "w12 w13 w14 w15 w16"), 0);
    akv_store_snap_take(s, &snap);
    ck_assert_uint_eq(snap.nslots, 1);
    check_entry(s, &snap, "w10 w11", "w12 w13 w14 w15 w16");
    akv_store_snap_release(s, &snap);
    akv_store_destroy(s);
}
END_TEST

static int has_word(const uint64_t *mask, uint32_t u)
{
    return (int)((mask[u / 64] >> (u % 64)) & 1);
}

/* The words akv_store_key_words reports, as "w<id>" ids. */
static void key_words(const struct akv_store *s, const struct akv_store_snap *snap, uint64_t *mask)
{
    memset(mask, 0, (akv_vocab_count(voc) + 63) / 64 * sizeof *mask);
    akv_store_key_words(s, snap, mask);
}

static size_t count_words(const uint64_t *mask)
{
    size_t n = 0;
    for (size_t i = 0; i < (akv_vocab_count(voc) + 63) / 64; i++)
        n += (size_t)__builtin_popcountll(mask[i]);
    return n;
}

/* The set of key words holds every word of a key a live snapshot can see,
 * and no word once no key uses it and no snapshot can see one that did. */
START_TEST(test_key_words)
{
    struct akv_store *s;
    struct akv_store_snap a, b;
    uint64_t *mask = calloc((akv_vocab_count(voc) + 63) / 64, sizeof *mask);

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    akv_store_snap_take(s, &a);
    key_words(s, &a, mask);
    ck_assert_uint_eq(count_words(mask), 0);
    akv_store_snap_release(s, &a);

    ck_assert_int_eq(set(s, "w10 w11", "w12"), 0);
    ck_assert_int_eq(set(s, "w10", "w13 w14 w15 w16"), 0);
    ck_assert_int_eq(set(s, "w20 w20 w21 w22 w23", "w12"), 0);
    akv_store_snap_take(s, &a);
    key_words(s, &a, mask);
    ck_assert_uint_eq(count_words(mask), 6); /* values' words are not key words */
    ck_assert(has_word(mask, 10) && has_word(mask, 11) && has_word(mask, 20) &&
              has_word(mask, 21) && has_word(mask, 22) && has_word(mask, 23));

    /* Removed while a can see them: still there for a. */
    ck_assert_int_eq(akv_store_del(s, "w10 w11", 7), 1);
    ck_assert_int_eq(akv_store_del(s, "w20 w20 w21 w22 w23", 19), 1);
    ck_assert_int_eq(set(s, "w10", "w12"), 0); /* an overwrite keeps w10 in use */
    akv_store_snap_take(s, &b);
    key_words(s, &b, mask);
    ck_assert(has_word(mask, 11) && has_word(mask, 20));
    akv_store_snap_release(s, &a);
    akv_store_snap_release(s, &b);
    /* Reclaimed (the next write reclaims): gone, but for w10. */
    ck_assert_int_eq(set(s, "w30", "w31"), 0);
    akv_store_snap_take(s, &a);
    key_words(s, &a, mask);
    ck_assert_uint_eq(count_words(mask), 2);
    ck_assert(has_word(mask, 10) && has_word(mask, 30));
    akv_store_snap_release(s, &a);

    ck_assert_uint_eq(akv_store_flush(s), 2);
    akv_store_snap_take(s, &a);
    key_words(s, &a, mask);
    ck_assert_uint_eq(count_words(mask), 0);
    akv_store_snap_release(s, &a);
    akv_store_destroy(s);
    free(mask);
}
END_TEST

/* Entries cost the same whatever the vectors' dimension: no vector is
 * copied. Phrases longer than the inline lists cost their extra ids. */
START_TEST(test_memory_independent_of_dim)
{
    struct akv_vocab *wide = tu_random_vocab(2000, 300, 1.0, 5);
    struct akv_store *s, *t;
    size_t empty, base_s, base_t, one;
    char k[16];

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    ck_assert_int_eq(akv_store_create(&t, wide), 0);
    empty = akv_store_memory_used(s);
    /* The first write allocates the chunk table and the word counts; the
     * cost per entry is measured after it. */
    ck_assert_int_eq(set(s, "w900", "w7"), 0);
    ck_assert_int_eq(set(t, "w900", "w7"), 0);
    base_s = akv_store_memory_used(s);
    base_t = akv_store_memory_used(t);
    for (int i = 0; i < 500; i++) {
        snprintf(k, sizeof k, "w%d w%d", i, i + 1);
        ck_assert_int_eq(set(s, k, "w7"), 0);
        ck_assert_int_eq(set(t, k, "w7"), 0);
    }
    ck_assert_uint_eq(akv_store_memory_used(s) - base_s, akv_store_memory_used(t) - base_t);
    one = (akv_store_memory_used(s) - base_s) / 500;
    ck_assert_uint_lt(one, 200);
    akv_store_destroy(t);

    /* A long value adds its ids (64 words: 256 bytes) to its entry. */
    base_s = akv_store_memory_used(s);
    ck_assert_int_eq(set(s, "w1999",
                         "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 "
                         "w20 w21 w22 w23 w24 w25 w26 w27 w28 w29 w30 w31 w32 w33 w34 w35 w36 "
                         "w37 w38 w39 w40 w41 w42 w43 w44 w45 w46 w47 w48 w49 w50 w51 w52 w53 "
                         "w54 w55 w56 w57 w58 w59 w60 w61 w62 w63 w64"),
                     0);
    ck_assert_uint_ge(akv_store_memory_used(s) - base_s, 64 * sizeof(uint32_t) + 64 * 3);
    ck_assert_uint_eq(akv_store_flush(s), 502);
    ck_assert_uint_eq(akv_store_memory_used(s), empty);
    akv_store_destroy(s);
    akv_vocab_destroy(wide);
}
END_TEST

struct seen {
    unsigned char *hits; /* per key index */
    size_t n;
};

static int mark_seen(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct seen *sn = arg;
    long i = strtol(key + 1, NULL, 10);
    ck_assert(i >= 0 && (size_t)i < sn->n);
    sn->hits[i]++;
    return 0;
}

static int first_key(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    snprintf(arg, 16, "%.*s", (int)klen, key);
    return 1;
}

/* The key hash is seeded per store, so nobody can choose keys that collide
 * in every store: two stores holding the same keys order them differently
 * (the first key an iteration reports is the same in both with odds of
 * about 1 in 500 here; in five pairs, never). */
START_TEST(test_hash_is_seeded)
{
    int differ = 0;

    for (int round = 0; round < 5 && !differ; round++) {
        struct akv_store *a, *b;
        char ka[16] = "", kb[16] = "", k[16];
        ck_assert_int_eq(akv_store_create(&a, voc), 0);
        ck_assert_int_eq(akv_store_create(&b, voc), 0);
        for (int i = 0; i < 1000; i++) {
            snprintf(k, sizeof k, "w%d", i);
            ck_assert_int_eq(set(a, k, "w1"), 0);
            ck_assert_int_eq(set(b, k, "w1"), 0);
        }
        akv_store_iter(a, 0, 1, first_key, ka);
        akv_store_iter(b, 0, 1, first_key, kb);
        differ = strcmp(ka, kb) != 0;
        akv_store_destroy(a);
        akv_store_destroy(b);
    }
    ck_assert_msg(differ, "two stores hash keys alike");
}
END_TEST

START_TEST(test_scan_survives_growth)
{
    struct akv_store *s;
    struct seen sn = {calloc(2000, 1), 2000};
    uint64_t cursor = 0;
    char k[16];
    int calls = 0;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "w%d", i);
        ck_assert_int_eq(set(s, k, "w1"), 0);
    }
    /* Iterate in small steps while the table grows from 100 to 2000 keys
     * and the first 100 are overwritten: each of the first 100 must be
     * reported at least once. */
    do {
        cursor = akv_store_iter(s, cursor, 7, mark_seen, &sn);
        if (calls < 50)
            for (int i = 0; i < 38; i++) {
                int j = 100 + calls * 38 + i;
                snprintf(k, sizeof k, "w%d", j);
                ck_assert_int_eq(set(s, k, "w2"), 0);
                snprintf(k, sizeof k, "w%d", j % 100);
                ck_assert_int_eq(set(s, k, "w3"), 0);
            }
        calls++;
    } while (cursor != 0 && calls < 100000);
    ck_assert_uint_eq(cursor, 0);
    for (int i = 0; i < 100; i++)
        ck_assert_msg(sn.hits[i] >= 1, "key w%d missed by SCAN", i);

    /* A full iteration of a quiet store reports every key exactly once. */
    memset(sn.hits, 0, sn.n);
    cursor = 0;
    do
        cursor = akv_store_iter(s, cursor, 10, mark_seen, &sn);
    while (cursor != 0);
    for (size_t i = 0; i < akv_store_count(s); i++)
        ck_assert_uint_eq(sn.hits[i], 1);
    free(sn.hits);
    akv_store_destroy(s);
}
END_TEST

/* The table doubles incrementally (as Redis's does): for the writes after
 * a doubling, some keys are still in the old table. Lookups, deletions,
 * SCAN (each key once when nothing changes; every key present throughout
 * at least once while writes move buckets), RANDOMKEY and FLUSHALL work
 * in that state. Keys are "wA wB", index A * 2000 + B. */
#define PAIRS 4097

static void pair_key(char *k, size_t cap, int i)
{
    snprintf(k, cap, "w%d w%d", i / 2000, i % 2000);
}

static int mark_pair(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct seen *sn = arg;
    char *end;
    long a = strtol(key + 1, &end, 10), b = strtol(end + 2, NULL, 10);
    size_t i = (size_t)(a * 2000 + b);

    (void)klen;
    (void)val;
    (void)vlen;
    ck_assert_uint_lt(i, sn->n);
    sn->hits[i]++;
    return 0;
}

START_TEST(test_incremental_rehash)
{
    struct akv_store *s;
    struct seen sn = {calloc(16400, 1), 16400};
    uint64_t cursor = 0;
    const char *v, *rk;
    size_t vl, rkl, mem_mid;
    char k[32];
    int calls = 0;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    /* 4,096 keys fill a table of 4,096 buckets; the 4,097th doubles it,
     * and the next 512 writes move the old buckets. */
    for (int i = 0; i < PAIRS; i++) {
        pair_key(k, sizeof k, i);
        ck_assert_int_eq(set(s, k, "w1"), 0);
    }
    mem_mid = akv_store_memory(s);
    for (int i = 0; i < PAIRS; i++) {
        pair_key(k, sizeof k, i);
        ck_assert_int_eq(akv_store_get(s, k, strlen(k), &v, &vl), 1);
    }
    do
        cursor = akv_store_iter(s, cursor, 10, mark_pair, &sn);
    while (cursor != 0);
    for (int i = 0; i < PAIRS; i++)
        ck_assert_msg(sn.hits[i] == 1, "key %d seen %d times", i, sn.hits[i]);
    for (uint64_t seed = 1; seed < 200; seed++) {
        ck_assert_int_eq(akv_store_random_key(s, seed, &rk, &rkl), 1);
        ck_assert_int_eq(akv_store_get(s, rk, rkl, &v, &vl), 1);
    }
    /* Deletions in both tables. */
    for (int i = 0; i < 64; i++) {
        pair_key(k, sizeof k, i * 61);
        ck_assert_int_eq(akv_store_del(s, k, strlen(k)), 1);
        ck_assert_int_eq(akv_store_get(s, k, strlen(k), &v, &vl), 0);
        ck_assert_int_eq(set(s, k, "w2"), 0); /* back, and buckets move */
    }
    ck_assert_uint_eq(akv_store_count(s), PAIRS);

    /* SCAN while writes (new keys and overwrites) move the buckets. */
    memset(sn.hits, 0, sn.n);
    cursor = 0;
    do {
        cursor = akv_store_iter(s, cursor, 5, mark_pair, &sn);
        if (calls < 600) {
            pair_key(k, sizeof k, PAIRS + calls);
            ck_assert_int_eq(set(s, k, "w3"), 0);
            pair_key(k, sizeof k, (calls * 7) % PAIRS);
            ck_assert_int_eq(set(s, k, "w4"), 0);
        }
        calls++;
    } while (cursor != 0 && calls < 100000);
    ck_assert_uint_eq(cursor, 0);
    for (int i = 0; i < PAIRS; i++)
        ck_assert_msg(sn.hits[i] >= 1, "key %d missed by SCAN", i);
    ck_assert_uint_lt(akv_store_memory(s), mem_mid + 600 * 4096);
    for (int i = 0; i < PAIRS + 600; i++) {
        pair_key(k, sizeof k, i);
        ck_assert_int_eq(akv_store_get(s, k, strlen(k), &v, &vl), 1);
    }

    /* akv_store_rehash (the server cron's share) finishes a doubling that
     * no write advances. */
    for (int i = PAIRS + 600; akv_store_count(s) <= 8192; i++) {
        pair_key(k, sizeof k, i);
        ck_assert_int_eq(set(s, k, "w5"), 0);
    }
    ck_assert_int_eq(akv_store_rehash(s, 1), 1);
    while (akv_store_rehash(s, 100))
        ;
    ck_assert_int_eq(akv_store_rehash(s, 1), 0);
    ck_assert_uint_eq(akv_store_count(s), 8193);
    memset(sn.hits, 0, sn.n);
    cursor = 0;
    do
        cursor = akv_store_iter(s, cursor, 10, mark_pair, &sn);
    while (cursor != 0);
    for (int i = 0; i < 8193; i++) {
        pair_key(k, sizeof k, i);
        ck_assert_int_eq(akv_store_get(s, k, strlen(k), &v, &vl), 1);
        ck_assert_msg(sn.hits[i] == 1, "key %d seen %d times", i, sn.hits[i]);
    }

    /* FLUSHALL in the middle of the next doubling. */
    for (int i = 8193; akv_store_count(s) <= 16384; i++) {
        pair_key(k, sizeof k, i);
        ck_assert_int_eq(set(s, k, "w5"), 0);
    }
    ck_assert_int_eq(akv_store_rehash(s, 0), 1);
    ck_assert_uint_eq(akv_store_flush(s), 16385);
    ck_assert_uint_eq(akv_store_count(s), 0);
    pair_key(k, sizeof k, 3);
    ck_assert_int_eq(akv_store_get(s, k, strlen(k), &v, &vl), 0);
    ck_assert_int_eq(set(s, k, "w6"), 0);
    ck_assert_int_eq(akv_store_get(s, k, strlen(k), &v, &vl), 1);
    free(sn.hits);
    akv_store_destroy(s);
}
END_TEST

/* The key index against a model, in random order: puts (new keys and
 * overwrites), expiry changes, deletions, lookups, counts, RANDOMKEY,
 * FLUSHALL, and SCANs, some with writes between their calls, over a store
 * that grows through several doublings (each finished incrementally by
 * later writes), shrinks by deletions and grows again. A SCAN with no
 * writes in between returns every key exactly once; with writes, every key
 * present throughout at least once, and nothing that was never there. */
#define MODEL_KEYS 40000

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

struct model_scan {
    const unsigned char *ever; /* present at some time during the SCAN */
    unsigned *hits;
};

static size_t model_index(const char *key)
{
    char *end;
    long a = strtol(key + 1, &end, 10), b = strtol(end + 2, NULL, 10);

    return (size_t)(a * 2000 + b);
}

static int model_mark(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct model_scan *ms = arg;
    size_t i = model_index(key);

    (void)klen;
    (void)val;
    (void)vlen;
    ck_assert_uint_lt(i, MODEL_KEYS);
    ck_assert_msg(ms->ever[i], "SCAN returned key %zu, never present during it", i);
    ms->hits[i]++;
    return 0;
}

START_TEST(test_index_against_model)
{
    struct akv_store *s;
    uint16_t *model = calloc(MODEL_KEYS, sizeof *model); /* value word + 1, 0: absent */
    unsigned char *ever = calloc(MODEL_KEYS, 1), *throughout = calloc(MODEL_KEYS, 1);
    unsigned *hits = calloc(MODEL_KEYS, sizeof *hits);
    uint64_t x = 12345;
    size_t live = 0, target = 0;
    char k[32], v[16];
    const char *got, *rk;
    size_t gl, rkl;

    ck_assert_ptr_nonnull(model);
    ck_assert_ptr_nonnull(ever);
    ck_assert_ptr_nonnull(throughout);
    ck_assert_ptr_nonnull(hits);
    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    for (int step = 0; step < 250000; step++) {
        uint64_t r = splitmix(&x);
        size_t i = (size_t)(splitmix(&x) % MODEL_KEYS);
        unsigned op = (unsigned)(r % 1000);

        /* Phases: grow towards target, then shrink towards it. */
        if (step % 30000 == 0)
            target = (size_t)(splitmix(&x) % MODEL_KEYS);
        snprintf(k, sizeof k, "w%zu w%zu", i / 2000, i % 2000);
        if (op < 600 && (live < target || op < 300)) {
            unsigned w = (unsigned)(r >> 32) % 1999 + 1;
            snprintf(v, sizeof v, "w%u", w);
            ck_assert_int_eq(set(s, k, v), 0);
            live += model[i] == 0;
            model[i] = (uint16_t)(w + 1);
        } else if (op < 640) {
            int rc = akv_store_expire_set(s, k, strlen(k), (uint64_t)1 << 60);
            ck_assert_int_eq(rc, model[i] != 0);
        } else if (op < 900) {
            ck_assert_int_eq(akv_store_del(s, k, strlen(k)), model[i] != 0);
            live -= model[i] != 0;
            model[i] = 0;
        } else if (op < 990) {
            int rc = akv_store_get(s, k, strlen(k), &got, &gl);
            ck_assert_int_eq(rc, model[i] != 0);
            if (rc)
                ck_assert_int_eq(atoi(got + 1), model[i] - 1);
        } else if (op < 998) {
            int rc = akv_store_random_key(s, r, &rk, &rkl);
            ck_assert_int_eq(rc, live > 0);
            if (rc)
                ck_assert(model[model_index(rk)] != 0);
        } else if (op == 998 && step % 7 == 0) {
            ck_assert_uint_eq(akv_store_flush(s), live);
            memset(model, 0, MODEL_KEYS * sizeof *model);
            live = 0;
        } else if (op == 999 && step % 5 == 0) {
            /* A SCAN, with writes between its calls half of the time. */
            int busy = (r >> 40) & 1;
            struct model_scan ms = {ever, hits};
            uint64_t cursor = 0;
            size_t calls = 0;

            for (size_t j = 0; j < MODEL_KEYS; j++) {
                ever[j] = throughout[j] = model[j] != 0;
                hits[j] = 0;
            }
            do {
                cursor =
                    akv_store_iter(s, cursor, 1 + (size_t)(splitmix(&x) % 40), model_mark, &ms);
                for (int w = 0; busy && w < 8; w++) {
                    size_t j = (size_t)(splitmix(&x) % MODEL_KEYS);
                    snprintf(k, sizeof k, "w%zu w%zu", j / 2000, j % 2000);
                    if (splitmix(&x) % 3 == 0) {
                        ck_assert_int_eq(akv_store_del(s, k, strlen(k)), model[j] != 0);
                        live -= model[j] != 0;
                        model[j] = 0;
                        throughout[j] = 0;
                    } else {
                        ck_assert_int_eq(set(s, k, "w7"), 0);
                        live += model[j] == 0;
                        model[j] = 8;
                        ever[j] = 1;
                    }
                }
                ck_assert_uint_lt(++calls, 10 * MODEL_KEYS);
            } while (cursor != 0);
            for (size_t j = 0; j < MODEL_KEYS; j++) {
                if (throughout[j])
                    ck_assert_msg(hits[j] >= 1, "SCAN missed key %zu", j);
                if (!busy)
                    ck_assert_msg(hits[j] == (model[j] != 0), "key %zu seen %u times", j, hits[j]);
            }
        }
        ck_assert_uint_eq(akv_store_count(s), live);
    }
    for (size_t j = 0; j < MODEL_KEYS; j++) {
        snprintf(k, sizeof k, "w%zu w%zu", j / 2000, j % 2000);
        ck_assert_int_eq(akv_store_get(s, k, strlen(k), &got, &gl), model[j] != 0);
    }
    akv_store_destroy(s);
    free(model);
    free(ever);
    free(throughout);
    free(hits);
}
END_TEST

/* ---- concurrent hammer ---------------------------------------------- */

#define READERS 3
#define QUEUE_CAP 8

struct job {
    struct akv_store_snap snap;
    uint64_t expect_sum; /* sum of hash(key, value) over live entries */
    size_t expect_n;
    int done;
    int ok;
};

struct hammer {
    struct akv_store *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *queue[QUEUE_CAP];
    size_t qlen;
    int stop;
    atomic_size_t checked;
};

static uint64_t entry_hash(const char *k, size_t kl, const char *v, size_t vl)
{
    return XXH3_64bits(k, kl) * 31 + XXH3_64bits(v, vl);
}

struct sum_arg {
    const struct akv_store *s;
    const struct akv_store_snap *snap;
    const uint64_t *key_words; /* akv_store_key_words for snap */
    uint64_t sum;
    size_t n;
    int words_ok;
};

/* The words stored for text (via the block's list and via
 * akv_store_entry_words) are the words of the text itself. */
static int words_match(const struct sum_arg *a, const struct akv_store_words *w, size_t slot,
                       enum akv_store_part part, const char *text, size_t len)
{
    uint32_t ids[AKV_PHRASE_WORDS_MAX];
    const uint32_t *all;
    size_t n, nall;
    char err[256];

    if (akv_embed_words(voc, text, len, ids, &n, err, sizeof err) != 0 || w->n != n)
        return 0;
    all = akv_store_entry_words(a->s, a->snap, slot, part, &nall);
    if (nall != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (all[i] != ids[i] || (i < AKV_STORE_WORDS_INLINE && w->id[i] != ids[i]))
            return 0;
        if (part == AKV_STORE_KEY && !has_word(a->key_words, ids[i]))
            return 0;
    }
    return 1;
}

static int sum_block(void *arg, const struct akv_store_block *b)
{
    struct sum_arg *a = arg;
    for (size_t i = 0; i < b->n; i++) {
        const char *k, *v;
        size_t kl, vl, slot = b->first_slot + i;
        if (!b->visible[i])
            continue;
        akv_store_entry_text(a->s, a->snap, slot, &k, &kl, &v, &vl);
        a->sum += entry_hash(k, kl, v, vl);
        a->n++;
        /* A visible row's time has not come by the snapshot's clock. */
        {
            uint64_t e = akv_store_entry_expire(a->s, a->snap, slot);
            a->words_ok &= e == 0 || e > a->snap->now_ms;
        }
        a->words_ok &= words_match(a, &b->keys[i], slot, AKV_STORE_KEY, k, kl) &&
                       words_match(a, &b->vals[i], slot, AKV_STORE_VALUE, v, vl);
    }
    return 0;
}

static void *reader(void *arg)
{
    struct hammer *h = arg;
    struct akv_query_result *res = malloc(sizeof *res);
    uint64_t *mask = malloc((akv_vocab_count(voc) + 63) / 64 * sizeof *mask);

    for (;;) {
        struct job *j;
        struct sum_arg sa;
        struct akv_query_opts o;
        pthread_mutex_lock(&h->mu);
        while (h->qlen == 0 && !h->stop)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->qlen == 0) {
            pthread_mutex_unlock(&h->mu);
            break;
        }
        j = h->queue[--h->qlen];
        pthread_mutex_unlock(&h->mu);

        memset(mask, 0, (akv_vocab_count(voc) + 63) / 64 * sizeof *mask);
        akv_store_key_words(h->s, &j->snap, mask);
        sa = (struct sum_arg){h->s, &j->snap, mask, 0, 0, 1};
        akv_store_scan(h->s, &j->snap, sum_block, &sa);
        akv_query_opts_default(&o);
        o.explain = 3;
        j->ok = sa.sum == j->expect_sum && sa.n == j->expect_n && sa.words_ok &&
                akv_query_run(h->s, &j->snap, akv_vocab_vec(voc, 3), &o, res) == 0 &&
                res->attended == j->expect_n;
        atomic_fetch_add(&h->checked, 1);

        pthread_mutex_lock(&h->mu);
        j->done = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    free(res);
    free(mask);
    return NULL;
}

static int put(struct akv_store *s, const char *k, const char *v, uint64_t expire)
{
    char err[256];
    return akv_store_put(s, k, strlen(k), v, strlen(v), expire, err, sizeof err);
}

static int count_visible(void *arg, const struct akv_store_block *b)
{
    *(size_t *)arg += b->nvisible;
    return 0;
}

static size_t visible_in(struct akv_store *s, const struct akv_store_snap *snap)
{
    size_t n = 0;
    akv_store_scan(s, snap, count_visible, &n);
    return n;
}

/* Expiry by the store's clock: lookups, SCAN, snapshots and the time a
 * snapshot keeps. */
START_TEST(test_expiry_clock)
{
    struct akv_store *s;
    struct akv_store_found f;
    struct akv_store_snap early, late;
    uint64_t now = 1000;
    size_t n = 0;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    akv_store_set_clock(s, &now);
    ck_assert_int_eq(put(s, "w1", "w2", 1500), 0);
    ck_assert_int_eq(put(s, "w3", "w4", 0), 0);
    ck_assert_uint_eq(akv_store_expires(s), 1);
    ck_assert(get_is(s, "w1", "w2"));
    ck_assert_int_eq(akv_store_find(s, "w1", 2, &f), AKV_STORE_LIVE);
    ck_assert_uint_eq(f.expire, 1500);
    akv_store_snap_take(s, &early);
    now = 1499;
    ck_assert(get_is(s, "w1", "w2"));
    ck_assert_int_eq(akv_store_first_expired(s, &(const char *){0}, &n), 0);
    now = 1500; /* from its instant on, gone */
    ck_assert(get_is(s, "w1", NULL));
    ck_assert_int_eq(akv_store_find(s, "w1", 2, &f), AKV_STORE_EXPIRED);
    ck_assert_int_eq(akv_store_expire_set(s, "w1", 2, 0), 0); /* cannot revive it */
    akv_store_snap_take(s, &late);
    ck_assert_uint_eq(visible_in(s, &early), 2); /* taken at 1000 */
    ck_assert_uint_eq(visible_in(s, &late), 1);
    {
        const char *k;
        ck_assert_int_eq(akv_store_first_expired(s, &k, &n), 1);
        ck_assert_uint_eq(n, 2);
        ck_assert(memcmp(k, "w1", 2) == 0);
    }
    ck_assert_uint_eq(akv_store_count(s), 2); /* still there until deleted */
    ck_assert_int_eq(akv_store_del(s, "w1", 2), 1);
    ck_assert_uint_eq(akv_store_expires(s), 0);
    /* A SET without a time replaces one with a time. */
    ck_assert_int_eq(put(s, "w5", "w6", 2000), 0);
    ck_assert_int_eq(set(s, "w5", "w7"), 0);
    ck_assert_uint_eq(akv_store_expires(s), 0);
    akv_store_snap_release(s, &early);
    akv_store_snap_release(s, &late);
    akv_store_destroy(s);
}
END_TEST

/* A new expiry time makes a new slot: an older snapshot keeps the old time,
 * the words and text stay the same (long phrases included). */
START_TEST(test_expire_set_copy)
{
    struct akv_store *s;
    struct akv_store_found f;
    struct akv_store_snap before;
    uint64_t now = 10;
    const char *longv = "w1 w2 w3 w4 w5 w6";
    const uint32_t *ids;
    size_t n;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    akv_store_set_clock(s, &now);
    ck_assert_int_eq(put(s, "w8 w9 w10 w11", longv, 0), 0);
    akv_store_snap_take(s, &before);
    ck_assert_int_eq(akv_store_expire_set(s, "w8 w9 w10 w11", 13, 20), 1);
    ck_assert_int_eq(akv_store_expire_set(s, "w8 w9 w10 w11", 13, 20), 1);
    ck_assert_int_eq(akv_store_expire_set(s, "nope", 4, 20), 0);
    ck_assert_int_eq(akv_store_find(s, "w8 w9 w10 w11", 13, &f), AKV_STORE_LIVE);
    ck_assert_uint_eq(f.expire, 20);
    ck_assert(f.vlen == strlen(longv) && memcmp(f.val, longv, f.vlen) == 0);
    ck_assert_uint_eq(akv_store_count(s), 1);
    now = 25;
    ck_assert_uint_eq(visible_in(s, &before), 1);
    ck_assert_uint_eq(akv_store_entry_expire(s, &before, 0), 0);
    ids = akv_store_entry_words(s, &before, 0, AKV_STORE_VALUE, &n);
    ck_assert_uint_eq(n, 6);
    ck_assert_uint_eq(ids[5], 6);
    ck_assert(get_is(s, "w8 w9 w10 w11", NULL));
    now = 15;
    ck_assert_int_eq(akv_store_expire_set(s, "w8 w9 w10 w11", 13, 0), 1); /* PERSIST */
    ck_assert_uint_eq(akv_store_expires(s), 0);
    now = 100;
    ck_assert(get_is(s, "w8 w9 w10 w11", longv));
    akv_store_snap_release(s, &before);
    akv_store_destroy(s);
}
END_TEST

struct find_slot {
    struct akv_store *s;
    const struct akv_store_snap *snap;
    const char *key;
    size_t slot;
};

static int find_slot_block(void *arg, const struct akv_store_block *b)
{
    struct find_slot *fs = arg;

    for (size_t i = 0; i < b->n; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (!b->visible[i])
            continue;
        akv_store_entry_text(fs->s, fs->snap, b->first_slot + i, &k, &kl, &v, &vl);
        if (kl == strlen(fs->key) && memcmp(k, fs->key, kl) == 0)
            fs->slot = b->first_slot + i;
    }
    return 0;
}

/* The slot of key's entry in snap. */
static size_t slot_of(struct akv_store *s, const struct akv_store_snap *snap, const char *key)
{
    struct find_slot fs = {s, snap, key, SIZE_MAX};

    akv_store_scan(s, snap, find_slot_block, &fs);
    ck_assert(fs.slot != SIZE_MAX);
    return fs.slot;
}

/* Payload values: any bytes, not embedded (an empty word list), the key
 * still checked; a plain put over one makes it embedded again and back; an
 * expiry time keeps the kind; the value hash follows the bytes. */
START_TEST(test_payload_values)
{
    static const char bin[] = "{\"a\":\0 1}\r\n\xff";
    struct akv_store *s;
    struct akv_store_found f;
    struct akv_store_snap snap;
    struct akv_store_vhash h1, h2;
    char err[256];
    const uint32_t *ids;
    size_t n, mem_small, mem_big;
    char *big = malloc(AKV_STORE_VALUE_MAX + 1);
    uint64_t now = 10;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    akv_store_set_clock(s, &now);
    /* A value that does not embed is refused unless it is a payload. */
    ck_assert_int_lt(akv_store_put_ex(s, "w1", 2, bin, sizeof bin - 1, 0, 0, err, sizeof err), 0);
    ck_assert_int_eq(
        akv_store_put_ex(s, "w1", 2, bin, sizeof bin - 1, 0, AKV_STORE_PAYLOAD, err, sizeof err),
        0);
    ck_assert_int_eq(akv_store_find(s, "w1", 2, &f), AKV_STORE_LIVE);
    ck_assert(f.payload && f.vlen == sizeof bin - 1 && memcmp(f.val, bin, f.vlen) == 0);
    /* The key must still embed. */
    ck_assert_int_eq(
        akv_store_put_ex(s, "nosuchword", 10, "x", 1, 0, AKV_STORE_PAYLOAD, err, sizeof err),
        -ENOENT);
    /* Empty and large payloads; one byte over the limit is refused. */
    ck_assert_int_eq(akv_store_put_ex(s, "w2", 2, "", 0, 0, AKV_STORE_PAYLOAD, err, sizeof err), 0);
    mem_small = akv_store_memory_used(s);
    memset(big, 'x', AKV_STORE_VALUE_MAX + 1);
    ck_assert_int_eq(akv_store_put_ex(s, "w3", 2, big, AKV_STORE_VALUE_MAX + 1, 0,
                                      AKV_STORE_PAYLOAD, err, sizeof err),
                     -EINVAL);
    ck_assert_int_eq(
        akv_store_put_ex(s, "w3", 2, big, 1 << 20, 0, AKV_STORE_PAYLOAD, err, sizeof err), 0);
    mem_big = akv_store_memory_used(s);
    ck_assert_uint_ge(mem_big - mem_small, 1 << 20); /* counted against maxmemory */
    ck_assert_uint_ge(akv_store_entry_memory(s, "w3", 2), 1 << 20);

    akv_store_snap_take(s, &snap);
    ids = akv_store_entry_words(s, &snap, slot_of(s, &snap, "w1"), AKV_STORE_VALUE, &n);
    ck_assert_uint_eq(n, 0);
    (void)ids;
    ck_assert_int_eq(akv_store_entry_payload(s, &snap, slot_of(s, &snap, "w1")), 1);
    akv_store_snap_release(s, &snap);

    /* A plain put makes it embedded; PAYLOAD again makes it a payload;
     * the same bytes hash the same whatever the kind. */
    ck_assert_int_eq(set(s, "w1", "w5"), 0);
    ck_assert_int_eq(akv_store_find(s, "w1", 2, &f), AKV_STORE_LIVE);
    ck_assert(!f.payload);
    ck_assert_int_eq(akv_store_put_ex(s, "w4", 2, "w5", 2, 0, AKV_STORE_PAYLOAD, err, sizeof err),
                     0);
    akv_store_snap_take(s, &snap);
    h1 = akv_store_entry_vhash(s, &snap, slot_of(s, &snap, "w1")); /* w5, embedded */
    h2 = akv_store_entry_vhash(s, &snap, slot_of(s, &snap, "w4")); /* w5, payload */
    ck_assert(h1.h[0] == h2.h[0] && h1.h[1] == h2.h[1]);
    ck_assert_int_eq(akv_store_entry_payload(s, &snap, slot_of(s, &snap, "w1")), 0);
    ck_assert_int_eq(akv_store_entry_payload(s, &snap, slot_of(s, &snap, "w4")), 1);
    h2 = akv_store_entry_vhash(s, &snap, slot_of(s, &snap, "w2")); /* "" */
    ck_assert(h1.h[0] != h2.h[0] || h1.h[1] != h2.h[1]);
    akv_store_snap_release(s, &snap);

    /* An expiry time keeps the kind and the bytes. */
    ck_assert_int_eq(akv_store_expire_set(s, "w4", 2, 50), 1);
    ck_assert_int_eq(akv_store_find(s, "w4", 2, &f), AKV_STORE_LIVE);
    ck_assert(f.payload && f.expire == 50 && f.vlen == 2 && memcmp(f.val, "w5", 2) == 0);
    free(big);
    akv_store_destroy(s);
}
END_TEST

/* The expiry heap against a brute-force model under random puts, time
 * changes, deletes, overwrites and flushes: first_expired always names an
 * entry with the earliest due time. */
START_TEST(test_expiry_heap_model)
{
    enum { KEYS = 300 };
    uint64_t model[KEYS] = {0}; /* 0 absent, 1 no time, else time + 1 */
    struct akv_store *s;
    uint64_t now = 0;
    unsigned r = 12345;

    ck_assert_int_eq(akv_store_create(&s, voc), 0);
    akv_store_set_clock(s, &now);
    for (int step = 0; step < 20000; step++) {
        char k[16];
        int i, op;
        r = r * 1103515245u + 12345u;
        i = (int)((r >> 8) % KEYS);
        op = (int)((r >> 20) % 10);
        snprintf(k, sizeof k, "w%d", i + 1);
        if (op < 4) {
            uint64_t e = (r >> 3) % 3 ? 1 + now + (r >> 12) % 500 : 0;
            ck_assert_int_eq(put(s, k, "w2", e), 0);
            model[i] = e ? e + 1 : 1;
        } else if (op < 6) {
            uint64_t e = 1 + now + (r >> 12) % 500;
            int live = model[i] == 1 || (model[i] > 1 && model[i] - 1 > now);
            ck_assert_int_eq(akv_store_expire_set(s, k, strlen(k), e), live);
            if (live)
                model[i] = e + 1;
        } else if (op < 7) {
            ck_assert_int_eq(akv_store_del(s, k, strlen(k)), model[i] != 0);
            model[i] = 0;
        } else if (op < 9) {
            now += (r >> 16) % 20;
        } else if ((r >> 4) % 500 == 0) {
            akv_store_flush(s);
            memset(model, 0, sizeof model);
        }
        if (step % 7 == 0) {
            /* Delete what is due, checking the order. */
            const char *key;
            size_t klen, nexp = 0;
            uint64_t last = 0;
            while (akv_store_first_expired(s, &key, &klen)) {
                char kb[16];
                int j;
                ck_assert(klen < sizeof kb);
                memcpy(kb, key, klen);
                kb[klen] = 0;
                j = atoi(kb + 1) - 1;
                ck_assert(model[j] > 1 && model[j] - 1 <= now);
                ck_assert(model[j] - 1 >= last);
                last = model[j] - 1;
                ck_assert_int_eq(akv_store_del(s, kb, klen), 1);
                model[j] = 0;
            }
            for (int j = 0; j < KEYS; j++) {
                ck_assert(!(model[j] > 1 && model[j] - 1 <= now));
                nexp += model[j] > 1;
            }
            ck_assert_uint_eq(akv_store_expires(s), nexp);
        }
    }
    akv_store_destroy(s);
}
END_TEST

static const uint64_t clock_ms = 1000;

START_TEST(test_concurrent_hammer)
{
    struct hammer h = {0};
    pthread_t th[READERS];
    struct job jobs[QUEUE_CAP];
    int inflight[QUEUE_CAP] = {0};
    uint64_t seed = 7, sum = 0;
    size_t n = 0, rounds = 0;
    char k[32], v[64], err[256];

    ck_assert_int_eq(akv_store_create(&h.s, voc), 0);
    akv_store_set_clock(h.s, &clock_ms);
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_create(&th[i], NULL, reader, &h);

    /* The test thread is the owner: it writes, takes snapshots with the
     * expected contents, hands them to readers and releases them when done. */
    /* 30,000 steps, and on until the readers have checked 100 snapshots
     * (a slow machine or TSan may leave them behind), within a bound. */
    for (int step = 0; step < 30000 || (atomic_load(&h.checked) <= 100 && step < 3000000); step++) {
        int op = (int)(tu_rand(&seed) % 10);
        const char *old;
        size_t oldlen;
        /* Keys of one word or two, values of one to five (past the inline
         * lists), so that slots change shape as they are reused. */
        int kw = (int)(tu_rand(&seed) % 1500);
        if (kw % 3 == 0)
            snprintf(k, sizeof k, "w%d w%d", kw, kw / 3);
        else
            snprintf(k, sizeof k, "w%d", kw);
        if (op < 6) {
            int words = 1 + (int)(tu_rand(&seed) % 5);
            size_t len = 0;
            for (int w = 0; w < words; w++)
                len += (size_t)snprintf(v + len, sizeof v - len, "%sw%d", w ? " " : "",
                                        (int)(tu_rand(&seed) % 2000));
            if (akv_store_get(h.s, k, strlen(k), &old, &oldlen)) {
                sum -= entry_hash(k, strlen(k), old, oldlen);
                n--;
            }
            ck_assert_int_eq(akv_store_set(h.s, k, strlen(k), v, strlen(v), err, sizeof err), 0);
            sum += entry_hash(k, strlen(k), v, strlen(v));
            n++;
        } else if (op < 9) {
            if (akv_store_get(h.s, k, strlen(k), &old, &oldlen)) {
                sum -= entry_hash(k, strlen(k), old, oldlen);
                n--;
            }
            akv_store_del(h.s, k, strlen(k));
        } else if (step % 997 == 0) {
            ck_assert_uint_eq(akv_store_flush(h.s), n);
            sum = 0;
            n = 0;
        } else {
            /* A far expiry time: a new slot for the same entry. */
            ck_assert_int_ge(akv_store_expire_set(h.s, k, strlen(k), (uint64_t)1 << 60), 0);
        }
        if (step % 5 != 0)
            continue;
        pthread_mutex_lock(&h.mu);
        for (int i = 0; i < QUEUE_CAP; i++)
            if (inflight[i] && jobs[i].done) {
                ck_assert_msg(jobs[i].ok, "a reader saw an inconsistent snapshot");
                pthread_mutex_unlock(&h.mu);
                akv_store_snap_release(h.s, &jobs[i].snap);
                pthread_mutex_lock(&h.mu);
                inflight[i] = 0;
            }
        for (int i = 0; i < QUEUE_CAP; i++)
            if (!inflight[i]) {
                pthread_mutex_unlock(&h.mu);
                jobs[i] = (struct job){.expect_sum = sum, .expect_n = n};
                akv_store_snap_take(h.s, &jobs[i].snap);
                pthread_mutex_lock(&h.mu);
                inflight[i] = 1;
                h.queue[h.qlen++] = &jobs[i];
                pthread_cond_signal(&h.cv);
                rounds++;
                break;
            }
        pthread_mutex_unlock(&h.mu);
    }
    pthread_mutex_lock(&h.mu);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < QUEUE_CAP; i++)
            busy |= inflight[i] && !jobs[i].done;
        if (!busy)
            break;
        pthread_cond_wait(&h.cv, &h.mu);
    }
    h.stop = 1;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    for (int i = 0; i < READERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < QUEUE_CAP; i++)
        if (inflight[i]) {
            ck_assert(jobs[i].ok);
            akv_store_snap_release(h.s, &jobs[i].snap);
        }
    ck_assert_uint_gt(atomic_load(&h.checked), 100);
    ck_assert_uint_eq(akv_store_count(h.s), n);
    pthread_mutex_destroy(&h.mu);
    pthread_cond_destroy(&h.cv);
    akv_store_destroy(h.s);
}
END_TEST

/* Hands a snapshot with the expected contents to a reader, after
 * collecting (and checking, then releasing) the finished ones. */
static void hand_over(struct hammer *h, struct job *jobs, int *inflight, uint64_t sum, size_t n)
{
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < QUEUE_CAP; i++)
        if (inflight[i] && jobs[i].done) {
            ck_assert_msg(jobs[i].ok, "a reader saw an inconsistent snapshot");
            pthread_mutex_unlock(&h->mu);
            akv_store_snap_release(h->s, &jobs[i].snap);
            pthread_mutex_lock(&h->mu);
            inflight[i] = 0;
        }
    for (int i = 0; i < QUEUE_CAP; i++)
        if (!inflight[i]) {
            pthread_mutex_unlock(&h->mu);
            jobs[i] = (struct job){.expect_sum = sum, .expect_n = n};
            akv_store_snap_take(h->s, &jobs[i].snap);
            pthread_mutex_lock(&h->mu);
            inflight[i] = 1;
            h->queue[h->qlen++] = &jobs[i];
            pthread_cond_signal(&h->cv);
            break;
        }
    pthread_mutex_unlock(&h->mu);
}

/* Waits for every reader, checks and releases what they held, stops them. */
static void finish_readers(struct hammer *h, pthread_t *th, struct job *jobs, int *inflight)
{
    pthread_mutex_lock(&h->mu);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < QUEUE_CAP; i++)
            busy |= inflight[i] && !jobs[i].done;
        if (!busy)
            break;
        pthread_cond_wait(&h->cv, &h->mu);
    }
    h->stop = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < READERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < QUEUE_CAP; i++)
        if (inflight[i]) {
            ck_assert(jobs[i].ok);
            akv_store_snap_release(h->s, &jobs[i].snap);
        }
}

/* Expiry with readers: the owner puts entries with times, changes and
 * removes times (new slots while readers scan the old ones), moves its
 * clock past them, deletes what is due from the heap, and hands out
 * snapshots whose expected contents are the entries live by the clock at
 * that moment; readers scan and query them concurrently and must see
 * exactly those, each visible row's time ahead of the snapshot's clock.
 * The TSan build runs it too. */
START_TEST(test_concurrent_expiry)
{
    enum { KEYS = 600 };
    static char vals[KEYS][64];
    static uint64_t exp_at[KEYS];
    static int present[KEYS];
    struct hammer h = {0};
    pthread_t th[READERS];
    struct job jobs[QUEUE_CAP];
    int inflight[QUEUE_CAP] = {0};
    uint64_t seed = 11, now = 1000000;
    size_t expired_deleted = 0;
    char k[32], err[256];

    memset(present, 0, sizeof(present));
    ck_assert_int_eq(akv_store_create(&h.s, voc), 0);
    akv_store_set_clock(h.s, &now);
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_create(&th[i], NULL, reader, &h);

    for (int step = 0; step < 20000; step++) {
        int op = (int)(tu_rand(&seed) % 20), i = (int)(tu_rand(&seed) % KEYS);
        int live = present[i] && (exp_at[i] == 0 || exp_at[i] > now);
        snprintf(k, sizeof k, i % 3 ? "w%d" : "w%d w%d", i, i / 3 + 1);
        if (op < 7) {
            /* A new value, with a time half of the time. */
            uint64_t e = tu_rand(&seed) % 2 ? now + 1 + tu_rand(&seed) % 300 : 0;
            int words = 1 + (int)(tu_rand(&seed) % 5);
            size_t len = 0;
            for (int w = 0; w < words; w++)
                len += (size_t)snprintf(vals[i] + len, sizeof vals[i] - len, "%sw%d", w ? " " : "",
                                        (int)(tu_rand(&seed) % 2000));
            ck_assert_int_eq(akv_store_put(h.s, k, strlen(k), vals[i], len, e, err, sizeof err), 0);
            present[i] = 1;
            exp_at[i] = e;
        } else if (op < 11) {
            /* A new time (possibly now, which hides it at once) or none. */
            uint64_t e = tu_rand(&seed) % 4 ? now + tu_rand(&seed) % 300 : 0;
            ck_assert_int_eq(akv_store_expire_set(h.s, k, strlen(k), e), live);
            if (live)
                exp_at[i] = e;
        } else if (op < 13) {
            ck_assert_int_eq(akv_store_del(h.s, k, strlen(k)), present[i]);
            present[i] = 0;
        } else if (op < 17) {
            now += tu_rand(&seed) % 40;
        } else if (op < 19) {
            /* The active cycle: what is due, from the heap. */
            const char *key;
            size_t klen;
            while (akv_store_first_expired(h.s, &key, &klen)) {
                char kb[32];
                int j;
                ck_assert(klen < sizeof kb);
                memcpy(kb, key, klen);
                kb[klen] = '\0';
                j = atoi(kb + 1);
                ck_assert(j >= 0 && j < KEYS && present[j] && exp_at[j] != 0 && exp_at[j] <= now);
                ck_assert_int_eq(akv_store_del(h.s, kb, klen), 1);
                present[j] = 0;
                expired_deleted++;
            }
        } else if (tu_rand(&seed) % 100 == 0) {
            akv_store_flush(h.s);
            memset(present, 0, sizeof(present));
        }
        {
            /* The owner's own view agrees with the model. */
            const char *v;
            size_t vl;
            int got = akv_store_get(h.s, k, strlen(k), &v, &vl);
            int want = present[i] && (exp_at[i] == 0 || exp_at[i] > now);
            ck_assert_int_eq(got, want);
            if (got)
                ck_assert(vl == strlen(vals[i]) && memcmp(v, vals[i], vl) == 0);
        }
        if (step % 4 == 0) {
            uint64_t sum = 0;
            size_t n = 0;
            for (int j = 0; j < KEYS; j++) {
                char kj[32];
                if (!present[j] || (exp_at[j] != 0 && exp_at[j] <= now))
                    continue;
                snprintf(kj, sizeof kj, j % 3 ? "w%d" : "w%d w%d", j, j / 3 + 1);
                sum += entry_hash(kj, strlen(kj), vals[j], strlen(vals[j]));
                n++;
            }
            hand_over(&h, jobs, inflight, sum, n);
        }
    }
    finish_readers(&h, th, jobs, inflight);
    ck_assert_uint_gt(atomic_load(&h.checked), 100);
    ck_assert_uint_gt(expired_deleted, 100);
    pthread_mutex_destroy(&h.mu);
    pthread_cond_destroy(&h.cv);
    akv_store_destroy(h.s);
}
END_TEST

/* akv_store_put_words: a store filled from another's words (and norms, or
 * none) in slot order holds the same entries in the same slots, bit for
 * bit: text, words, key norms, expiry times, payloads, the value norm
 * bound; bad words, counts, lengths and norms are refused. */
struct copy_ctx {
    struct akv_store *from, *to;
    const struct akv_store_snap *snap;
    int with_norm;
    size_t n;
};

static int copy_block(void *arg, const struct akv_store_block *b)
{
    struct copy_ctx *c = arg;

    for (size_t i = 0; i < b->n; i++) {
        const char *k, *v;
        size_t kl, vl, nk, nv, slot = b->first_slot + i;
        const uint32_t *kids, *vids;
        char err[128];
        if (!b->visible[i])
            continue;
        akv_store_entry_text(c->from, c->snap, slot, &k, &kl, &v, &vl);
        kids = akv_store_entry_words(c->from, c->snap, slot, AKV_STORE_KEY, &nk);
        vids = akv_store_entry_words(c->from, c->snap, slot, AKV_STORE_VALUE, &nv);
        ck_assert_int_eq(akv_store_put_words(c->to, k, kl, v, vl, kids, nk, vids, nv,
                                             c->with_norm ? &b->knorms[i] : NULL,
                                             akv_store_entry_expire(c->from, c->snap, slot),
                                             nv == 0 ? AKV_STORE_PAYLOAD : 0, err, sizeof err),
                         0);
        c->n++;
    }
    return 0;
}

static void same_stores(struct akv_store *a, struct akv_store *b)
{
    struct akv_store_snap sa, sb;

    akv_store_snap_take(a, &sa);
    akv_store_snap_take(b, &sb);
    ck_assert_uint_eq(sa.nslots, sb.nslots);
    ck_assert_uint_eq(akv_store_count(a), akv_store_count(b));
    ck_assert(akv_store_value_norm_max(a) == akv_store_value_norm_max(b));
    for (size_t slot = 0; slot < sa.nslots; slot++) {
        const char *k1, *v1, *k2, *v2;
        size_t kl1, vl1, kl2, vl2, n1, n2;
        const uint32_t *w1, *w2;
        akv_store_entry_text(a, &sa, slot, &k1, &kl1, &v1, &vl1);
        akv_store_entry_text(b, &sb, slot, &k2, &kl2, &v2, &vl2);
        ck_assert_uint_eq(kl1, kl2);
        ck_assert_uint_eq(vl1, vl2);
        ck_assert(memcmp(k1, k2, kl1) == 0 && memcmp(v1, v2, vl1) == 0);
        for (int part = AKV_STORE_KEY; part <= AKV_STORE_VALUE; part++) {
            w1 = akv_store_entry_words(a, &sa, slot, (enum akv_store_part)part, &n1);
            w2 = akv_store_entry_words(b, &sb, slot, (enum akv_store_part)part, &n2);
            ck_assert_uint_eq(n1, n2);
            ck_assert(n1 == 0 || memcmp(w1, w2, n1 * sizeof *w1) == 0);
        }
        ck_assert_uint_eq(akv_store_entry_expire(a, &sa, slot),
                          akv_store_entry_expire(b, &sb, slot));
        ck_assert_int_eq(akv_store_entry_payload(a, &sa, slot),
                         akv_store_entry_payload(b, &sb, slot));
    }
    akv_store_snap_release(a, &sa);
    akv_store_snap_release(b, &sb);
}

struct norms_ctx {
    double *out;
    size_t n;
};

static int norms_block(void *arg, const struct akv_store_block *b)
{
    struct norms_ctx *c = arg;

    for (size_t i = 0; i < b->n; i++)
        if (b->visible[i])
            c->out[c->n++] = b->knorms[i];
    return 0;
}

static size_t all_norms(struct akv_store *s, double *out)
{
    struct akv_store_snap snap;
    struct norms_ctx c = {out, 0};

    akv_store_snap_take(s, &snap);
    akv_store_scan(s, &snap, norms_block, &c);
    akv_store_snap_release(s, &snap);
    return c.n;
}

START_TEST(test_put_words)
{
    static const char *const kv[][2] = {
        {"w1", "w2"},
        {"w3 w4", "w5 w6 w7"},
        {"w11 w12 w13 w14 w15", "w16"},
        {"W17", "w18"},
    };
    struct akv_store *a, *b, *c;
    struct akv_store_snap snap;
    struct copy_ctx cc;
    double na[16], nb[16];
    char err[256];
    uint32_t ids[2] = {1, 2}, bad[1] = {2000};
    double nan = NAN, neg = -1.0, one = 1.0;

    ck_assert_int_eq(akv_store_create(&a, voc), 0);
    ck_assert_int_eq(akv_store_create(&b, voc), 0);
    ck_assert_int_eq(akv_store_create(&c, voc), 0);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        ck_assert_int_eq(set(a, kv[i][0], kv[i][1]), 0);
    ck_assert_int_eq(
        akv_store_put_ex(a, "w30 w31", 7, "\0bytes\r\n", 8, 0, AKV_STORE_PAYLOAD, err, sizeof err),
        0);
    ck_assert_int_eq(akv_store_put(a, "w40", 3, "w41 w42", 7, 4000000000000ull, err, sizeof err),
                     0);

    akv_store_snap_take(a, &snap);
    cc = (struct copy_ctx){a, b, &snap, 1, 0};
    ck_assert_int_eq(akv_store_scan(a, &snap, copy_block, &cc), 0);
    cc = (struct copy_ctx){a, c, &snap, 0, 0};
    ck_assert_int_eq(akv_store_scan(a, &snap, copy_block, &cc), 0);
    akv_store_snap_release(a, &snap);
    ck_assert_uint_eq(cc.n, 6);
    same_stores(a, b);
    same_stores(a, c);
    /* The norms given and the norms computed are the same bits. */
    ck_assert_uint_eq(all_norms(a, na), 6);
    ck_assert_uint_eq(all_norms(b, nb), 6);
    ck_assert(memcmp(na, nb, 6 * sizeof(double)) == 0);
    ck_assert_uint_eq(all_norms(c, nb), 6);
    ck_assert(memcmp(na, nb, 6 * sizeof(double)) == 0);
    ck_assert(get_is(b, "W17", "w18"));
    ck_assert(get_is(b, "w3 w4", "w5 w6 w7"));

    /* Refused. */
#define REFUSED(call, why)                                                                         \
    do {                                                                                           \
        ck_assert_int_eq(call, -EINVAL);                                                           \
        ck_assert_str_eq(err, why);                                                                \
    } while (0)
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, bad, 1, ids, 1, NULL, 0, 0, err, sizeof err),
            "word id out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, ids, 1, bad, 1, NULL, 0, 0, err, sizeof err),
            "word id out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, ids, 0, ids, 1, NULL, 0, 0, err, sizeof err),
            "word count out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, ids, 65, ids, 1, NULL, 0, 0, err, sizeof err),
            "word count out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, ids, 1, ids, 0, NULL, 0, 0, err, sizeof err),
            "word count out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, ids, 1, ids, 1, NULL, 0, AKV_STORE_PAYLOAD, err,
                                sizeof err),
            "word count out of range");
    REFUSED(akv_store_put_words(b, "k", 0, "v", 1, ids, 1, ids, 1, NULL, 0, 0, err, sizeof err),
            "key length out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 0, ids, 1, ids, 1, NULL, 0, 0, err, sizeof err),
            "value length out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, ids, 1, ids, 1, &nan, 0, 0, err, sizeof err),
            "key norm out of range");
    REFUSED(akv_store_put_words(b, "k", 1, "v", 1, ids, 1, ids, 1, &neg, 0, 0, err, sizeof err),
            "key norm out of range");
#undef REFUSED
    ck_assert_uint_eq(akv_store_count(b), 6);
    ck_assert_int_eq(
        akv_store_put_words(b, "k", 1, "v", 1, ids, 2, ids, 1, &one, 0, 0, err, sizeof err), 0);
    ck_assert(get_is(b, "k", "v"));
    akv_store_destroy(a);
    akv_store_destroy(b);
    akv_store_destroy(c);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_set_get_del);
    tcase_add_test(tc, test_snapshot_isolation);
    tcase_add_test(tc, test_slots_reused_only_after_release);
    tcase_add_test(tc, test_memory_used);
    tcase_add_test(tc, test_entry_memory);
    tcase_add_test(tc, test_random_key);
    tcase_add_test(tc, test_scan_survives_growth);
    tcase_add_test(tc, test_incremental_rehash);
    tcase_add_test(tc, test_index_against_model);
    tcase_add_test(tc, test_hash_is_seeded);
    tcase_add_test(tc, test_words_single_and_phrase);
    tcase_add_test(tc, test_overwrite_word_phrase_word);
    tcase_add_test(tc, test_del_reuse_words);
    tcase_add_test(tc, test_key_words);
    tcase_add_test(tc, test_memory_independent_of_dim);
    tcase_add_test(tc, test_expiry_clock);
    tcase_add_test(tc, test_expire_set_copy);
    tcase_add_test(tc, test_payload_values);
    tcase_add_test(tc, test_put_words);
    tcase_add_test(tc, test_expiry_heap_model);
    tcase_add_test(tc, test_concurrent_hammer);
    tcase_add_test(tc, test_concurrent_expiry);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(store_suite());
}
