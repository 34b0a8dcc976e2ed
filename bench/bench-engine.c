/*
 * bench-engine.c - figures for the engine's hot paths on real vectors
 * (default: the GloVe 6B 100d file that scripts/fetch-vectors makes):
 *   - time to open (map and validate) the binary vocabulary;
 *   - NEIGHBORS: ms per full-vocabulary ranking and the rate at which the
 *     scan reads the int8 sketch (GB/s), per metric, then per ranking kernel
 *     alone and in batches;
 *   - QUERY: ms per query (attention + ranking) with a store of N entries.
 * Prints figures; asserts nothing. Usage:
 *   bench-engine [--vectors FILE] [--queries N] [--entries N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attnkv/embed.h"
#include "attnkv/query.h"
#include "attnkv/store.h"
#include "attnkv/vocab.h"
#include "engine/rank.h"
#include "engine/sketch.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n, double bytes)
{
    double sum = 0;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    for (int i = 0; i < n; i++)
        sum += t[i];
    printf("%-34s n=%-5d mean %8.3f ms  p50 %8.3f ms  p99 %8.3f ms", what, n, sum / n * 1e3,
           t[n / 2] * 1e3, t[(int)(n * 0.99)] * 1e3);
    if (bytes > 0)
        printf("  %6.2f GB/s", bytes / (sum / n) / 1e9);
    printf("\n");
}

/* A word id among the 50,000 commonest, from a fixed sequence. */
static uint32_t next_word(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ull + 1;
    return (uint32_t)(*seed >> 33) % 50000;
}

/* n query items on random common words: NEIGHBORS on voc when s is NULL,
 * else QUERYs on the snapshot snap of s. */
static void fill_items(struct akv_query_item *items, struct akv_query_result *res, int n,
                       const struct akv_vocab *voc, const struct akv_store *s,
                       const struct akv_store_snap *snap, int skip_rank, uint64_t *seed)
{
    for (int i = 0; i < n; i++) {
        memset(&items[i], 0, sizeof items[i]);
        akv_query_opts_default(&items[i].opts);
        items[i].opts.skip_rank = skip_rank;
        items[i].vocab = s == NULL ? voc : NULL;
        items[i].store = s;
        items[i].snap = snap;
        items[i].q = akv_vocab_vec(voc, next_word(seed));
        items[i].res = &res[i];
    }
}

int main(int argc, char **argv)
{
    const char *path = getenv("AKV_VECTORS");
    char defpath[4096], err[512];
    int nq = 200, nentries = 1000;
    struct akv_vocab *voc;
    struct akv_store *s;
    struct akv_query_result *res = malloc(sizeof *res);
    double *t, t0, mat_bytes;
    uint64_t seed = 42;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--vectors") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc)
            nq = atoi(argv[++i]);
        else if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc)
            nentries = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--vectors FILE] [--queries N] [--entries N]\n", argv[0]);
            return 2;
        }
    }
    if (path == NULL || *path == '\0') {
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg != NULL && *xdg)
            snprintf(defpath, sizeof defpath, "%s/attnkv/glove-6B-100d.akv", xdg);
        else
            snprintf(defpath, sizeof defpath, "%s/.cache/attnkv/glove-6B-100d.akv",
                     home ? home : "");
        path = defpath;
    }
    if (nq < 1 || nentries < 1) {
        fprintf(stderr, "--queries and --entries must be positive\n");
        return 2;
    }
    t = malloc((size_t)(nq > 50 ? nq : 50) * sizeof *t);

    /* Open: the first call may fault the index in; report the warm figure. */
    for (int i = 0; i < 50; i++) {
        t0 = now();
        if (akv_vocab_open(&voc, path, 0, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        t[i] = now() - t0;
        akv_vocab_destroy(voc);
    }
    report("open (map + validate index)", t, 50, 0);
    t0 = now();
    if (akv_vocab_open(&voc, path, AKV_VOCAB_VERIFY, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%-34s %8.3f ms\n", "open with full checksum", (now() - t0) * 1e3);
    printf("vocabulary: %zu words x %u dims, file %.1f MB\n", akv_vocab_count(voc),
           akv_vocab_dim(voc), (double)akv_vocab_bytes(voc) / 1e6);
    /* What one scan reads for sure: the sketch's head section (head codes
     * and row information); the tail is read for a few blocks only. */
    {
        double eps;
        uint32_t head;
        (void)akv_vocab_sketch_rotation(voc, &eps, &head);
        mat_bytes = (double)akv_sketch_head_bytes(akv_vocab_count(voc), head);
        printf("sketch: head %u of %u groups, head section %.1f MB\n", head,
               akv_sketch_groups(akv_vocab_dim(voc)), mat_bytes / 1e6);
    }
    printf("ranking kernel: %s\n", akv_rank_kernel_name(akv_rank_kernel()));

    for (int m = 0; m < 3; m++) {
        char what[64];
        for (int i = 0; i < nq; i++) {
            uint32_t id = next_word(&seed);
            t0 = now();
            akv_query_neighbors(voc, akv_vocab_vec(voc, id), (enum akv_metric)m, 5, res);
            t[i] = now() - t0;
        }
        snprintf(what, sizeof what, "NEIGHBORS k=5 metric %s", akv_metric_name((enum akv_metric)m));
        report(what, t, nq, mat_bytes);
    }

    /* Batches: one shared pass over the vocabulary for many queries (what
     * the worker pool does when queries wait). Time per query. */
    for (int b = 2; b <= 32; b *= 4) {
        struct akv_query_item items[32];
        struct akv_query_result *many = malloc((size_t)b * sizeof *many);
        char what[64];
        int rounds = nq / b > 3 ? nq / b : 3;
        for (int r = 0; r < rounds; r++) {
            fill_items(items, many, b, voc, NULL, NULL, 0, &seed);
            t0 = now();
            akv_query_run_many(items, (size_t)b);
            t[r] = (now() - t0) / b;
        }
        snprintf(what, sizeof what, "NEIGHBORS l2, batches of %d (per query)", b);
        report(what, t, rounds, mat_bytes);
        free(many);
    }

    /* Every kernel this CPU runs, alone and in batches of 32 (answers are
     * identical; only the time differs). */
    {
        static const char *const kernels[] = {"portable", "avx2", "avx512vnni"};
        const char *current = akv_rank_kernel_name(akv_rank_kernel());
        for (size_t kn = 0; kn < 3; kn++) {
            struct akv_query_item items[32];
            struct akv_query_result *many = malloc(32 * sizeof *many);
            char what[64];
            int n1 = nq < 50 ? nq : 50;
            if (akv_rank_set_kernel(kernels[kn]) < 0)
                continue;
            for (int i = 0; i < n1; i++) {
                uint32_t id = next_word(&seed);
                t0 = now();
                akv_query_neighbors(voc, akv_vocab_vec(voc, id), AKV_METRIC_L2, 5, res);
                t[i] = now() - t0;
            }
            snprintf(what, sizeof what, "kernel %s, one query", kernels[kn]);
            report(what, t, n1, mat_bytes);
            for (int r = 0; r < 5; r++) {
                fill_items(items, many, 32, voc, NULL, NULL, 0, &seed);
                t0 = now();
                akv_query_run_many(items, 32);
                t[r] = (now() - t0) / 32;
            }
            snprintf(what, sizeof what, "kernel %s, batch of 32 (per query)", kernels[kn]);
            report(what, t, 5, mat_bytes);
            free(many);
        }
        akv_rank_set_kernel(current);
    }

    /* A store of single-word entries drawn from the 50,000 commonest words. */
    if (akv_store_create(&s, voc) != 0)
        return 1;
    for (int i = 0; i < nentries; i++) {
        uint32_t a = next_word(&seed);
        uint32_t b = next_word(&seed);
        const char *ka = akv_vocab_word(voc, a, NULL), *vb = akv_vocab_word(voc, b, NULL);
        akv_store_set(s, ka, strlen(ka), vb, strlen(vb), err, sizeof err);
    }
    for (int a = 0; a < 2; a++) {
        struct akv_query_opts o;
        char what[64];
        akv_query_opts_default(&o);
        o.attn = (enum akv_attn_mode)a;
        for (int i = 0; i < nq; i++) {
            struct akv_store_snap snap;
            uint32_t id = next_word(&seed);
            t0 = now();
            akv_store_snap_take(s, &snap);
            akv_query_run(s, &snap, akv_vocab_vec(voc, id), &o, res);
            akv_store_snap_release(s, &snap);
            t[i] = now() - t0;
        }
        snprintf(what, sizeof what, "QUERY %zu entries attn %s", akv_store_count(s),
                 akv_attn_mode_name(o.attn));
        report(what, t, nq, 0);
    }
    /* What a worker does under load: a batch of QUERYs on one snapshot
     * (attention per item, then one shared ranking scan), and the
     * attention step alone (skip_rank), per query. */
    for (int part = 0; part < 2; part++) {
        for (int b = 1; b <= 16; b *= 16) {
            struct akv_query_item items[16];
            struct akv_query_result *many = malloc(16 * sizeof *many);
            struct akv_store_snap snap;
            char what[80];
            int rounds = nq / b > 5 ? nq / b : 5;
            for (int r = 0; r < rounds; r++) {
                akv_store_snap_take(s, &snap);
                fill_items(items, many, b, voc, s, &snap, part, &seed);
                t0 = now();
                akv_query_run_many(items, (size_t)b);
                t[r] = (now() - t0) / b;
                akv_store_snap_release(s, &snap);
            }
            snprintf(what, sizeof what, "QUERY %s, batches of %d (per query)",
                     part ? "attention only" : "attn + rank", b);
            report(what, t, rounds, 0);
            free(many);
        }
    }
    printf("store memory: %.1f MB for %zu entries\n", (double)akv_store_memory(s) / 1e6,
           akv_store_count(s));
    akv_store_destroy(s);
    akv_vocab_destroy(voc);
    free(res);
    free(t);
    return 0;
}
