/*
 * test-store.c - the key/value store: exact strings, overwrite, delete,
 * flush, SCAN iteration, snapshot isolation, slot reuse only after release,
 * and a concurrent hammer (writers on the owner thread, queries on reader
 * threads) that the TSan build runs too.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
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

static int count_block(void *arg, size_t n, const float *keys, const float *vals,
                       const float *knorms, const uint8_t *visible, size_t first_slot)
{
    size_t *c = arg;
    for (size_t i = 0; i < n; i++)
        *c += visible[i];
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
    ck_assert_uint_gt(full, empty + 1000 * 2 * akv_store_dim(s) * sizeof(float));
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
    uint64_t sum;
    size_t n;
};

static int sum_block(void *arg, size_t n, const float *keys, const float *vals,
                     const float *knorms, const uint8_t *visible, size_t first_slot)
{
    struct sum_arg *a = arg;
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (!visible[i])
            continue;
        akv_store_entry_text(a->s, a->snap, first_slot + i, &k, &kl, &v, &vl);
        a->sum += entry_hash(k, kl, v, vl);
        a->n++;
    }
    return 0;
}

static void *reader(void *arg)
{
    struct hammer *h = arg;
    struct akv_query_result *res = malloc(sizeof *res);

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

        sa = (struct sum_arg){h->s, &j->snap, 0, 0};
        akv_store_scan(h->s, &j->snap, sum_block, &sa);
        akv_query_opts_default(&o);
        o.explain = 3;
        j->ok = sa.sum == j->expect_sum && sa.n == j->expect_n &&
                akv_query_run(h->s, &j->snap, akv_vocab_vec(voc, 3), &o, res) == 0 &&
                res->attended == j->expect_n;
        atomic_fetch_add(&h->checked, 1);

        pthread_mutex_lock(&h->mu);
        j->done = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    free(res);
    return NULL;
}

START_TEST(test_concurrent_hammer)
{
    struct hammer h = {0};
    pthread_t th[READERS];
    struct job jobs[QUEUE_CAP];
    int inflight[QUEUE_CAP] = {0};
    uint64_t seed = 7, sum = 0;
    size_t n = 0, rounds = 0;
    char k[16], v[16], err[256];

    ck_assert_int_eq(akv_store_create(&h.s, voc), 0);
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    for (int i = 0; i < READERS; i++)
        pthread_create(&th[i], NULL, reader, &h);

    /* The test thread is the owner: it writes, takes snapshots with the
     * expected contents, hands them to readers and releases them when done. */
    for (int step = 0; step < 30000; step++) {
        int op = (int)(tu_rand(&seed) % 10);
        const char *old;
        size_t oldlen;
        snprintf(k, sizeof k, "w%d", (int)(tu_rand(&seed) % 1500));
        if (op < 6) {
            snprintf(v, sizeof v, "w%d", (int)(tu_rand(&seed) % 2000));
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
    tcase_add_test(tc, test_scan_survives_growth);
    tcase_add_test(tc, test_concurrent_hammer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(store_suite());
}
