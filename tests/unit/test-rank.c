/*
 * test-rank.c - the ranking scan: every kernel this CPU runs gives exactly
 * the exhaustive double-precision ranking of tests/refimpl.c (same ids,
 * same scores, ties by word id), alone, in batches and cut into parts; kernel selection.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "attnkv/vectab.h"
#include "attnkv/vocab.h"
#include "engine/rank.h"
#include "engine/sketch.h"
#include "refimpl.h"
#include "runsuite.h"
#include "testutil.h"

static const char *const kernels[] = {"portable", "avx2", "avx512vnni"};
#define NKERNELS (sizeof kernels / sizeof kernels[0])

/* Same ids in the same order; scores equal to rounding (the engine sums in
 * another order). */
static void same_hits(const struct akv_hit *got, size_t ngot, const struct ref_hit *want,
                      size_t nwant, const char *what)
{
    ck_assert_msg(ngot == nwant, "%s: %zu hits, expected %zu", what, ngot, nwant);
    for (size_t i = 0; i < ngot; i++) {
        ck_assert_msg(fabs(got[i].score - want[i].score) <= 1e-9 * fmax(1, fabs(want[i].score)),
                      "%s: hit %zu score %.17g, expected %.17g", what, i, got[i].score,
                      want[i].score);
        if (got[i].id != want[i].id)
            ck_assert_msg(fabs(got[i].score - want[i].score) <= 1e-12 * fmax(1, fabs(got[i].score)),
                          "%s: hit %zu is word %u, expected %u", what, i, got[i].id, want[i].id);
    }
}

/* A vocabulary with structure: random rows, exact duplicates (ties), a zero
 * row, and scaled copies (equal cosines). */
static struct akv_vocab *awkward_vocab(size_t n, uint32_t dim, uint64_t seed)
{
    struct akv_vectab t;
    struct akv_vocab *v = NULL;
    float *vec = malloc(dim * sizeof *vec), *first = malloc(dim * sizeof *first);
    char word[32], err[256];

    ck_assert_int_eq(akv_vectab_init(&t, dim), 0);
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(word, sizeof word, "w%zu", i);
        for (uint32_t d = 0; d < dim; d++) {
            if (i % 97 == 5)
                vec[d] = first[d]; /* a duplicate of row 0 */
            else if (i % 101 == 7)
                vec[d] = 2 * first[d]; /* same direction, twice as long */
            else if (i == 3)
                vec[d] = 0;
            else /* a spectrum that decays, like real vectors', so that
                  * the sketch has a head and a tail */
                vec[d] = (float)(tu_uniform(&seed, -1, 1) / (1 + 0.1 * d));
        }
        if (i == 0)
            memcpy(first, vec, dim * sizeof *vec);
        ck_assert_int_eq(akv_vectab_add(&t, word, (size_t)len, vec), 0);
    }
    ck_assert_msg(akv_vocab_from_table(&v, &t, err, sizeof err) == 0, "%s", err);
    akv_vectab_fini(&t);
    free(vec);
    free(first);
    return v;
}

static void random_query(uint64_t *seed, const struct akv_vocab *v, int kind, double *r)
{
    uint32_t dim = akv_vocab_dim(v);
    size_t n = akv_vocab_count(v);
    const float *x0 = akv_vocab_vec(v, 0);
    const float *x1 = akv_vocab_vec(v, (uint32_t)(1 % n)),
                *x2 = akv_vocab_vec(v, (uint32_t)(2 % n));
    const float *x4 = akv_vocab_vec(v, (uint32_t)(4 % n));

    for (uint32_t d = 0; d < dim; d++) {
        switch (kind % 4) {
        case 0: /* random */
            r[d] = tu_uniform(seed, -1, 1);
            break;
        case 1: /* exactly a vocabulary word: ties with its duplicates */
            r[d] = x0[d];
            break;
        case 2: /* a mixture of words, as attention makes */
            r[d] = 0.5 * x1[d] + 0.3 * x2[d] + 0.2 * x4[d];
            break;
        default: /* tiny */
            r[d] = tu_uniform(seed, -1, 1) * 1e-20;
            break;
        }
    }
}

START_TEST(test_kernels_match_exhaustive)
{
    static const size_t counts[] = {1, 15, 16, 17, 1000, 5003};
    static const uint32_t dims[] = {1, 5, 64, 100};
    static const unsigned ks[] = {1, 5, 40, AKV_K_MAX};
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    struct akv_hit *got = malloc(AKV_K_MAX * sizeof *got);
    uint64_t seed = 5;
    int checked = 0;

    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
            struct akv_vocab *v = awkward_vocab(counts[c], dims[t], seed++);
            double *r = malloc(dims[t] * sizeof *r);
            for (int i = 0; i < 24; i++) {
                enum akv_metric m = (enum akv_metric)(i % 3);
                unsigned k = ks[(i / 3) % 4];
                size_t nwant;
                random_query(&seed, v, i / 12 + i, r);
                nwant = ref_rank(v, r, m, k, want);
                for (size_t kn = 0; kn < NKERNELS; kn++) {
                    char what[160];
                    size_t ngot;
                    if (akv_rank_set_kernel(kernels[kn]) < 0)
                        continue;
                    ngot = akv_rank_topk(v, r, m, k, got);
                    snprintf(what, sizeof what, "%s count %zu dim %u query %d metric %d k %u",
                             kernels[kn], counts[c], dims[t], i, (int)m, k);
                    same_hits(got, ngot, want, nwant, what);
                    checked++;
                }
            }
            free(r);
            akv_vocab_destroy(v);
        }
    }
    ck_assert_int_ge(checked, 6 * 4 * 24);
    free(want);
    free(got);
}
END_TEST

/* Rows that differ from one another by far less than the int8 sketch
 * resolves (a cluster around one vector, with +-0.5% noise): only the
 * bounds, not luck, keep the true neighbors from being dropped. A bound
 * that were too narrow fails here. */
START_TEST(test_near_ties)
{
    enum { N = 4000, D = 48 };
    struct akv_vectab t;
    struct akv_vocab *v = NULL;
    float base[D], vec[D];
    double r[D];
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    struct akv_hit *got = malloc(AKV_K_MAX * sizeof *got);
    char word[32], err[256];
    uint64_t seed = 23;

    ck_assert_int_eq(akv_vectab_init(&t, D), 0);
    for (int d = 0; d < D; d++)
        base[d] = (float)tu_uniform(&seed, -1, 1);
    for (int i = 0; i < N; i++) {
        int len = snprintf(word, sizeof word, "c%d", i);
        for (int d = 0; d < D; d++)
            vec[d] = base[d] * (float)(1 + tu_uniform(&seed, -0.005, 0.005));
        ck_assert_int_eq(akv_vectab_add(&t, word, (size_t)len, vec), 0);
    }
    ck_assert_msg(akv_vocab_from_table(&v, &t, err, sizeof err) == 0, "%s", err);
    akv_vectab_fini(&t);
    for (int i = 0; i < 60; i++) {
        enum akv_metric m = (enum akv_metric)(i % 3);
        unsigned k = i % 4 == 0 ? 50 : 5;
        size_t nwant;
        for (int d = 0; d < D; d++)
            r[d] =
                i % 2 ? base[d] * (1 + tu_uniform(&seed, -0.01, 0.01)) : tu_uniform(&seed, -1, 1);
        nwant = ref_rank(v, r, m, k, want);
        for (size_t kn = 0; kn < NKERNELS; kn++) {
            char what[96];
            if (akv_rank_set_kernel(kernels[kn]) < 0)
                continue;
            snprintf(what, sizeof what, "%s near ties query %d metric %d", kernels[kn], i, (int)m);
            same_hits(got, akv_rank_topk(v, r, m, k, got), want, nwant, what);
        }
    }
    akv_vocab_destroy(v);
    free(want);
    free(got);
}
END_TEST

START_TEST(test_batches_and_parts)
{
    enum { NQ = 11 };
    struct akv_vocab *v = awkward_vocab(3001, 50, 9);
    double r[NQ][50];
    struct ref_hit *want[NQ];
    struct akv_hit *got[NQ];
    size_t nwant[NQ];
    struct akv_rank_req reqs[NQ];
    uint64_t seed = 13;

    for (int j = 0; j < NQ; j++) {
        want[j] = malloc(AKV_K_MAX * sizeof *want[j]);
        got[j] = malloc(AKV_K_MAX * sizeof **got);
        random_query(&seed, v, j, r[j]);
    }
    for (size_t kn = 0; kn < NKERNELS; kn++) {
        if (akv_rank_set_kernel(kernels[kn]) < 0)
            continue;
        for (int j = 0; j < NQ; j++)
            nwant[j] = ref_rank(v, r[j], (enum akv_metric)(j % 3), j == 4 ? 0 : 3 + j * 7, want[j]);
        /* One batch of NQ requests, then the same begun for 1..6 parts
         * whose work runs in turn: the first call claims every chunk and
         * the others find none left (threads sharing a scan are
         * test_threads_share_a_scan). */
        for (unsigned parts = 0; parts <= 6; parts++) {
            for (int j = 0; j < NQ; j++)
                reqs[j] = (struct akv_rank_req){r[j],
                                                (enum akv_metric)(j % 3),
                                                j == 4 ? 0 : 3 + (unsigned)j * 7,
                                                got[j],
                                                99,
                                                0,
                                                NULL,
                                                0};
            if (parts == 0) {
                ck_assert_uint_eq(akv_rank_many(v, reqs, NQ), NQ);
            } else {
                struct akv_rank_scan *s;
                ck_assert_int_eq(akv_rank_scan_begin(v, reqs, NQ, parts, &s), 0);
                for (unsigned p = parts; p-- > 0;) /* any order */
                    akv_rank_scan_work(s, p);
                ck_assert_int_eq(akv_rank_scan_end(s), 0);
            }
            for (int j = 0; j < NQ; j++) {
                char what[96];
                snprintf(what, sizeof what, "%s parts %u request %d", kernels[kn], parts, j);
                same_hits(got[j], reqs[j].nhits, want[j], nwant[j], what);
            }
        }
    }
    for (int j = 0; j < NQ; j++) {
        free(want[j]);
        free(got[j]);
    }
    akv_vocab_destroy(v);
}
END_TEST

struct scan_thread {
    struct akv_rank_scan *s;
    unsigned part;
};

static void *scan_thread_main(void *arg)
{
    struct scan_thread *t = arg;
    akv_rank_scan_work(t->s, t->part);
    return NULL;
}

/* Several threads working on one scan at once, as the daemon's workers do:
 * they claim chunks of a vocabulary of 160 chunks as they go and adopt each
 * other's thresholds between chunks. Whatever the interleaving, every
 * request must get exactly its exhaustive answer. Also run under TSan. */
START_TEST(test_threads_share_a_scan)
{
    enum { NQ = 13, DIM = 24, NTHREADS = 3 };
    struct akv_vocab *v = awkward_vocab(40000 * 8 + 17, DIM, 31);
    double(*r)[DIM] = malloc(NQ * sizeof *r);
    struct ref_hit *want[NQ];
    struct akv_hit *got[NQ];
    size_t nwant[NQ];
    struct akv_rank_req reqs[NQ];
    uint64_t seed = 77;

    for (int j = 0; j < NQ; j++) {
        want[j] = malloc(AKV_K_MAX * sizeof *want[j]);
        got[j] = malloc(AKV_K_MAX * sizeof **got);
        random_query(&seed, v, j, r[j]);
        nwant[j] = ref_rank(v, r[j], (enum akv_metric)(j % 3), 1 + (unsigned)j * 3, want[j]);
    }
    for (size_t kn = 0; kn < NKERNELS; kn++) {
        if (akv_rank_set_kernel(kernels[kn]) < 0 || strcmp(kernels[kn], "portable") == 0)
            continue; /* the portable kernel is too slow for 320,000 words here */
        for (int round = 0; round < 3; round++) {
            struct akv_rank_scan *s;
            pthread_t th[NTHREADS];
            struct scan_thread ts[NTHREADS];

            for (int j = 0; j < NQ; j++)
                reqs[j] = (struct akv_rank_req){
                    r[j], (enum akv_metric)(j % 3), 1 + (unsigned)j * 3, got[j], 99, 0, NULL, 0};
            ck_assert_int_eq(akv_rank_scan_begin(v, reqs, NQ, NTHREADS + 1, &s), 0);
            for (unsigned t = 0; t < NTHREADS; t++) {
                ts[t] = (struct scan_thread){s, t + 1};
                ck_assert_int_eq(pthread_create(&th[t], NULL, scan_thread_main, &ts[t]), 0);
            }
            akv_rank_scan_work(s, 0);
            for (unsigned t = 0; t < NTHREADS; t++)
                ck_assert_int_eq(pthread_join(th[t], NULL), 0);
            ck_assert_int_eq(akv_rank_scan_end(s), 0);
            for (int j = 0; j < NQ; j++) {
                char what[96];
                snprintf(what, sizeof what, "%s round %d request %d", kernels[kn], round, j);
                same_hits(got[j], reqs[j].nhits, want[j], nwant[j], what);
            }
        }
    }
    for (int j = 0; j < NQ; j++) {
        free(want[j]);
        free(got[j]);
    }
    free(r);
    akv_vocab_destroy(v);
}
END_TEST

/* More requests in one scan than the AVX-512 kernel's list of blocks
 * waiting for their tails holds (256): while the thresholds are still low,
 * every block passes its head test, so the list fills within a block pair
 * and must be emptied on the spot. */
START_TEST(test_large_batch)
{
    enum { NQ = 300, DIM = 50 };
    struct akv_vocab *v = awkward_vocab(3001, DIM, 23);
    double(*r)[DIM] = malloc(NQ * sizeof *r);
    struct akv_rank_req *reqs = malloc(NQ * sizeof *reqs);
    struct akv_hit(*got)[8] = malloc(NQ * sizeof *got);
    struct ref_hit want[8];
    uint64_t seed = 31;
    double eps;
    uint32_t head;

    (void)akv_vocab_sketch_rotation(v, &eps, &head);
    ck_assert_msg(head < akv_sketch_groups(DIM), "head %u: no tail to test", head);
    for (int j = 0; j < NQ; j++)
        random_query(&seed, v, j, r[j]);
    for (size_t kn = 0; kn < NKERNELS; kn++) {
        if (akv_rank_set_kernel(kernels[kn]) < 0)
            continue;
        for (int j = 0; j < NQ; j++)
            reqs[j] = (struct akv_rank_req){
                r[j], (enum akv_metric)(j % 3), 1 + (unsigned)j % 8, got[j], 0, 0, NULL, 0};
        ck_assert_uint_eq(akv_rank_many(v, reqs, NQ), NQ);
        for (int j = 0; j < NQ; j++) {
            char what[96];
            size_t nw = ref_rank(v, r[j], (enum akv_metric)(j % 3), 1 + (unsigned)j % 8, want);
            snprintf(what, sizeof what, "%s request %d", kernels[kn], j);
            same_hits(got[j], reqs[j].nhits, want, nw, what);
        }
    }
    free(r);
    free(reqs);
    free(got);
    akv_vocab_destroy(v);
}
END_TEST

START_TEST(test_nothing_prunable)
{
    /* A zero query ties every word (dot, cosine): nothing can be pruned, so
     * every word survives and the survivor list must grow to hold them. */
    struct akv_vocab *v = awkward_vocab(20000, 8, 17);
    double r[8] = {0};
    struct akv_hit got[5];
    struct ref_hit want[5];

    for (size_t kn = 0; kn < NKERNELS; kn++) {
        if (akv_rank_set_kernel(kernels[kn]) < 0)
            continue;
        for (int m = 0; m < 3; m++) {
            size_t nw = ref_rank(v, r, (enum akv_metric)m, 5, want);
            size_t ng = akv_rank_topk(v, r, (enum akv_metric)m, 5, got);
            same_hits(got, ng, want, nw, kernels[kn]);
        }
    }
    akv_vocab_destroy(v);
}
END_TEST

START_TEST(test_kernel_selection)
{
    ck_assert_int_eq(akv_rank_set_kernel("nonsense"), -EINVAL);
    ck_assert_int_eq(akv_rank_set_kernel("portable"), 0);
    ck_assert_int_eq(akv_rank_kernel(), AKV_RANK_PORTABLE);
    ck_assert_str_eq(akv_rank_kernel_name(akv_rank_kernel()), "portable");
    ck_assert_int_eq(akv_rank_set_kernel("auto"), 0);
    for (size_t kn = 0; kn < NKERNELS; kn++) {
        int rc = akv_rank_set_kernel(kernels[kn]);
        ck_assert(rc == 0 || rc == -ENOTSUP);
        if (rc == 0)
            ck_assert_str_eq(akv_rank_kernel_name(akv_rank_kernel()), kernels[kn]);
    }
#if defined(__x86_64__)
    /* Every x86-64 CPU this project targets has AVX2; say so if not. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        ck_assert_int_eq(akv_rank_set_kernel("avx2"), 0);
#endif
}
END_TEST

/* The skip list of request j: the best few words of its unfiltered
 * answer (so that the filter changes it), plus every fifth of some ids. */
static size_t make_skip(const struct akv_vocab *v, const double *r, enum akv_metric m, int j,
                        uint32_t *skip)
{
    struct ref_hit top[8];
    size_t n = 0, nt = ref_rank(v, r, m, j % 4 == 0 ? 0 : 1 + (unsigned)j % 8, top);

    for (size_t i = 0; i < nt; i++)
        skip[n++] = top[i].id;
    for (uint32_t id = 3; j % 3 == 1 && id < 200 && id < akv_vocab_count(v); id += 5)
        skip[n++] = id;
    return n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* RESTRICT and EXCLUDE in the scan: every kernel, each request alone and
 * all of them in one batch, give the exhaustive ranking of the words
 * allowed (a word left out must not raise the threshold: the skipped words
 * are the best ones). */
START_TEST(test_filters_match_exhaustive)
{
    enum { NQ = 12 };
    static const uint32_t limits[] = {0, 1, 17, 700, 4000, 99999};
    struct ref_hit *want = malloc(AKV_K_MAX * sizeof *want);
    struct akv_hit *got[NQ];
    uint32_t skip[NQ][64];
    size_t nskip[NQ];
    double r[NQ][100];
    struct akv_rank_req reqs[NQ];
    uint64_t seed = 77;
    int checked = 0;

    for (int j = 0; j < NQ; j++)
        got[j] = malloc(AKV_K_MAX * sizeof *got[j]);
    for (uint32_t dim = 64; dim <= 100; dim += 36) {
        struct akv_vocab *v = awkward_vocab(5003, dim, seed++);
        for (int j = 0; j < NQ; j++) {
            random_query(&seed, v, j, r[j]);
            nskip[j] = make_skip(v, r[j], (enum akv_metric)(j % 3), j, skip[j]);
            qsort(skip[j], nskip[j], sizeof skip[j][0], cmp_u32);
        }
        for (size_t kn = 0; kn < NKERNELS; kn++) {
            if (akv_rank_set_kernel(kernels[kn]) < 0)
                continue;
            for (int alone = 0; alone < 2; alone++) {
                for (int j = 0; j < NQ; j++)
                    reqs[j] = (struct akv_rank_req){r[j],
                                                    (enum akv_metric)(j % 3),
                                                    j % 5 == 4 ? 40 : 1 + (unsigned)j % 6,
                                                    got[j],
                                                    0,
                                                    limits[j % 6],
                                                    skip[j],
                                                    nskip[j]};
                if (alone)
                    for (int j = 0; j < NQ; j++)
                        ck_assert_uint_eq(akv_rank_many(v, &reqs[j], 1), 1);
                else
                    ck_assert_uint_eq(akv_rank_many(v, reqs, NQ), NQ);
                for (int j = 0; j < NQ; j++) {
                    char what[160];
                    size_t nw = ref_rank_filtered(v, r[j], reqs[j].m, reqs[j].k, reqs[j].limit,
                                                  skip[j], nskip[j], want);
                    snprintf(what, sizeof what, "%s dim %u %s request %d limit %u skip %zu",
                             kernels[kn], dim, alone ? "alone" : "batched", j, reqs[j].limit,
                             nskip[j]);
                    same_hits(reqs[j].hits, reqs[j].nhits, want, nw, what);
                    for (size_t i = 0; i < reqs[j].nhits; i++)
                        ck_assert(
                            akv_rank_admits(reqs[j].hits[i].id, reqs[j].limit, skip[j], nskip[j]));
                    checked++;
                }
            }
        }
        akv_vocab_destroy(v);
    }
    ck_assert_int_ge(checked, 2 * 2 * NQ);
    akv_rank_set_kernel("auto");
    for (int j = 0; j < NQ; j++)
        free(got[j]);
    free(want);
}
END_TEST

/* 3CosMul: with either estimate (portable, or AVX2 through the x86
 * kernels), in one chunk or several merged, batched, filtered or not, the
 * exhaustive double ranking of tests/refimpl.c. */
START_TEST(test_cosmul_matches_exhaustive)
{
    enum { NQ = 6, K = 10 };
    uint64_t seed = 99;
    struct ref_hit want[K];
    struct akv_vocab *v = awkward_vocab(3001, 100, seed);
    uint32_t dim = akv_vocab_dim(v), skip[NQ][64];
    double *terms = malloc((size_t)NQ * 4 * dim * sizeof *terms);
    float *termsf = malloc((size_t)NQ * 4 * dim * sizeof *termsf);
    struct akv_cosmul_req reqs[NQ];
    struct akv_hit *hits = malloc((size_t)NQ * K * sizeof *hits), part[K], merged[K];
    size_t nhits[NQ], nskip[NQ];
    int checked = 0;

    for (int j = 0; j < NQ; j++) {
        unsigned npos = 1 + (unsigned)j % 2, nneg = (unsigned)j % 3, nt = npos + nneg;
        double *u = terms + (size_t)j * 4 * dim;
        for (unsigned t = 0; t < nt; t++) {
            /* Terms are words (as ANALOGY's are) or random directions. */
            const float *x = akv_vocab_vec(v, (uint32_t)(10 + 7 * j + t));
            double nn = 0;
            for (uint32_t d = 0; d < dim; d++) {
                u[t * dim + d] = t % 2 ? tu_uniform(&seed, -1, 1) : x[d];
                nn += u[t * dim + d] * u[t * dim + d];
            }
            for (uint32_t d = 0; d < dim; d++) {
                u[t * dim + d] /= sqrt(nn);
                termsf[(size_t)j * 4 * dim + t * dim + d] = (float)u[t * dim + d];
            }
        }
        nskip[j] = 0;
        for (uint32_t id = 10 + 7 * (uint32_t)j; j % 2 == 0 && nskip[j] < 3; id++)
            skip[j][nskip[j]++] = id; /* the input words, as ANALOGY skips them */
        reqs[j] = (struct akv_cosmul_req){u,
                                          termsf + (size_t)j * 4 * dim,
                                          npos,
                                          nneg,
                                          j == 5 ? 1 : K,
                                          j % 3 == 2 ? 500 : 0,
                                          skip[j],
                                          nskip[j]};
    }
    for (size_t kn = 0; kn < NKERNELS; kn++) {
        if (akv_rank_set_kernel(kernels[kn]) < 0)
            continue;
        for (uint32_t chunk = 3001; chunk >= 1000 && chunk <= 3001; chunk -= 2001) {
            /* Each chunk into its own lists, merged as query.c merges the
             * parts. */
            size_t nm[NQ] = {0};
            struct akv_hit all[NQ][K];
            for (uint32_t r0 = 0; r0 < 3001; r0 += chunk) {
                uint32_t r1 = r0 + chunk < 3001 ? r0 + chunk : 3001;
                memset(nhits, 0, sizeof nhits);
                akv_rank_cosmul(v, reqs, NQ, r0, r1, hits, K, nhits);
                for (int j = 0; j < NQ; j++) {
                    memcpy(part, hits + (size_t)j * K, nhits[j] * sizeof *part);
                    nm[j] = akv_rank_merge_sim(all[j], nm[j], part, nhits[j], reqs[j].k, merged);
                    memcpy(all[j], merged, nm[j] * sizeof *merged);
                }
            }
            for (int j = 0; j < NQ; j++) {
                char what[120];
                size_t nw = ref_cosmul(v, reqs[j].units, reqs[j].npos, reqs[j].nneg, reqs[j].k,
                                       reqs[j].limit, skip[j], nskip[j], want);
                snprintf(what, sizeof what, "cosmul %s chunk %u request %d", kernels[kn], chunk, j);
                same_hits(all[j], nm[j], want, nw, what);
                checked++;
            }
        }
    }
    ck_assert_int_ge(checked, 2 * NQ);
    akv_rank_set_kernel("auto");
    akv_vocab_destroy(v);
    free(terms);
    free(termsf);
    free(hits);
}
END_TEST

static Suite *rank_suite(void)
{
    Suite *s = suite_create("rank");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_kernels_match_exhaustive);
    tcase_add_test(tc, test_near_ties);
    tcase_add_test(tc, test_batches_and_parts);
    tcase_add_test(tc, test_threads_share_a_scan);
    tcase_add_test(tc, test_large_batch);
    tcase_add_test(tc, test_nothing_prunable);
    tcase_add_test(tc, test_kernel_selection);
    tcase_add_test(tc, test_filters_match_exhaustive);
    tcase_add_test(tc, test_cosmul_matches_exhaustive);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(rank_suite());
}
