/*
 * test-nbcache.c - the neighbor-list cache (src/engine/nbcache.c): lists come
 * back as they were put, per word and metric; a full cache refuses new
 * lists but keeps serving the ones it has; a list once returned never
 * changes; and threads putting and getting at once (run under TSan in the
 * concurrency suite) see every list whole.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "attnkv/nbcache.h"

/* A list whose every field is derived from (word, metric), so a reader can
 * tell a whole list from a torn or wrong one. */
static struct akv_nblist make_list(uint32_t word, enum akv_metric m)
{
    struct akv_nblist l = {.word = word, .metric = m, .s_m = word * 0.5 + (double)m};

    for (uint32_t i = 0; i < AKV_NBCACHE_M; i++)
        l.ids[i] = word * 7 + i + (uint32_t)m;
    return l;
}

static void check_list(const struct akv_nblist *l, uint32_t word, enum akv_metric m)
{
    ck_assert_ptr_nonnull(l);
    ck_assert_uint_eq(l->word, word);
    ck_assert_int_eq(l->metric, m);
    ck_assert(l->s_m == word * 0.5 + (double)m);
    for (uint32_t i = 0; i < AKV_NBCACHE_M; i++)
        ck_assert_uint_eq(l->ids[i], word * 7 + i + (uint32_t)m);
}

START_TEST(test_put_get)
{
    struct akv_nbcache *c;
    struct akv_nblist l;
    const struct akv_nblist *got;
    size_t empty;

    ck_assert_int_eq(akv_nbcache_create(&c, 0), -EINVAL);
    ck_assert_int_eq(akv_nbcache_create(&c, 100), 0);
    ck_assert_ptr_null(akv_nbcache_get(c, 5, AKV_METRIC_L2));
    empty = akv_nbcache_memory(c);
    ck_assert_uint_ge(empty, 200 * sizeof(void *)); /* the table: twice the lists */
    for (uint32_t w = 0; w < 30; w++) {
        l = make_list(w * 1000, AKV_METRIC_L2);
        ck_assert_int_eq(akv_nbcache_put(c, &l), 0);
        l = make_list(w * 1000, AKV_METRIC_COSINE);
        ck_assert_int_eq(akv_nbcache_put(c, &l), 0);
    }
    ck_assert_uint_eq(akv_nbcache_count(c), 60);
    ck_assert_uint_eq(akv_nbcache_memory(c), empty + 60 * sizeof(struct akv_nblist));
    for (uint32_t w = 0; w < 30; w++) {
        check_list(akv_nbcache_get(c, w * 1000, AKV_METRIC_L2), w * 1000, AKV_METRIC_L2);
        check_list(akv_nbcache_get(c, w * 1000, AKV_METRIC_COSINE), w * 1000, AKV_METRIC_COSINE);
        ck_assert_ptr_null(akv_nbcache_get(c, w * 1000, AKV_METRIC_DOT));
        ck_assert_ptr_null(akv_nbcache_get(c, w * 1000 + 1, AKV_METRIC_L2));
    }
    /* Putting a held list again keeps the first copy (same address). */
    got = akv_nbcache_get(c, 3000, AKV_METRIC_L2);
    l = make_list(3000, AKV_METRIC_L2);
    ck_assert_int_eq(akv_nbcache_put(c, &l), 0);
    ck_assert_ptr_eq(akv_nbcache_get(c, 3000, AKV_METRIC_L2), got);
    ck_assert_uint_eq(akv_nbcache_count(c), 60);
    akv_nbcache_destroy(c);
    akv_nbcache_destroy(NULL);
}
END_TEST

START_TEST(test_full)
{
    struct akv_nbcache *c;
    struct akv_nblist l;

    ck_assert_int_eq(akv_nbcache_create(&c, 3), 0);
    for (uint32_t w = 0; w < 3; w++) {
        l = make_list(w, AKV_METRIC_L2);
        ck_assert_int_eq(akv_nbcache_put(c, &l), 0);
    }
    l = make_list(99, AKV_METRIC_L2);
    ck_assert_int_eq(akv_nbcache_put(c, &l), -ENOSPC);
    ck_assert_ptr_null(akv_nbcache_get(c, 99, AKV_METRIC_L2));
    /* A held list may still be put (nothing changes), and all are served. */
    l = make_list(1, AKV_METRIC_L2);
    ck_assert_int_eq(akv_nbcache_put(c, &l), 0);
    for (uint32_t w = 0; w < 3; w++)
        check_list(akv_nbcache_get(c, w, AKV_METRIC_L2), w, AKV_METRIC_L2);
    ck_assert_uint_eq(akv_nbcache_count(c), 3);
    akv_nbcache_destroy(c);
}
END_TEST

enum { HAMMER_THREADS = 4, HAMMER_WORDS = 3000 };

struct hammer {
    struct akv_nbcache *c;
    unsigned id;
    unsigned found;
};

/* Each thread puts a quarter of the words (and tries the others' too) and
 * reads every word over and over; whatever it finds must be whole. */
static void *hammer_main(void *arg)
{
    struct hammer *h = arg;

    for (unsigned pass = 0; pass < 3; pass++)
        for (uint32_t w = 0; w < HAMMER_WORDS; w++) {
            enum akv_metric m = (enum akv_metric)(w % 3);
            const struct akv_nblist *l;
            if (w % HAMMER_THREADS == h->id || pass == 2) {
                struct akv_nblist mine = make_list(w, m);
                int rc = akv_nbcache_put(h->c, &mine);
                ck_assert(rc == 0 || rc == -ENOSPC);
            }
            l = akv_nbcache_get(h->c, w, m);
            if (l != NULL) {
                check_list(l, w, m);
                h->found++;
            }
        }
    return NULL;
}

START_TEST(test_threads)
{
    struct akv_nbcache *c;
    pthread_t th[HAMMER_THREADS];
    struct hammer h[HAMMER_THREADS];

    /* Room for fewer lists than words: some puts are refused meanwhile. */
    ck_assert_int_eq(akv_nbcache_create(&c, HAMMER_WORDS - 500), 0);
    for (unsigned i = 0; i < HAMMER_THREADS; i++) {
        h[i] = (struct hammer){c, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (unsigned i = 0; i < HAMMER_THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_uint_gt(h[i].found, 0);
    }
    ck_assert_uint_eq(akv_nbcache_count(c), HAMMER_WORDS - 500);
    akv_nbcache_destroy(c);
}
END_TEST

static Suite *nbcache_suite(void)
{
    Suite *s = suite_create("nbcache");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_put_get);
    tcase_add_test(tc, test_full);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(nbcache_suite());
}
