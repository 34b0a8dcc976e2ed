/*
 * bench-attn.c - the attention step alone (akv_attn_run_many) against store
 * size, on real vectors: keys and values random words of frequency rank
 * 20,000-270,000 (two-word keys from 500,000 entries on, as bench/scale.py
 * builds them), query words among the 20,000 commonest. For each size,
 * the time of the store's own pass (visibility only), and ms per query of
 * dot attention: alone, alone with a second thread sharing the phases (as
 * an idle worker does in the daemon), and in batches of 16. --mode alone or
 * batch runs only those (for perf). --fget leaves the blend out (FGET's
 * pass). Prints figures; asserts nothing. Usage:
 *   bench-attn [--vectors FILE] [--sizes N,N,...] [--queries N] [--kernel NAME]
 *              [--mode all|alone|batch] [--fget]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include "attnkv/store.h"
#include "attnkv/vocab.h"
#include "engine/attn.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return *seed >> 33;
}

/* A word of rank lo..hi (ids are frequency ranks), as text. */
static size_t word_text(const struct akv_vocab *voc, uint64_t *seed, uint32_t lo, uint32_t hi,
                        char *out, size_t cap)
{
    size_t n = akv_vocab_count(voc), len;
    uint32_t id;
    const char *w;

    if (hi > n)
        hi = (uint32_t)n;
    id = lo + (uint32_t)(rnd(seed) % (hi - lo));
    w = akv_vocab_word(voc, id, &len);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, w, len);
    out[len] = 0;
    return len;
}

/* A helper thread per phase, as the daemon's idle workers join one. */
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

static int count_block(void *arg, const struct akv_store_block *b)
{
    *(size_t *)arg += b->nvisible;
    return 0;
}

static int fill(struct akv_store *s, const struct akv_vocab *voc, size_t n, uint64_t *seed)
{
    char k[256], v[128], err[256];
    size_t tries = 0;

    while (akv_store_count(s) < n && tries++ < 20 * n) {
        size_t kl = word_text(voc, seed, 20000, 270000, k, 120);
        size_t vl = word_text(voc, seed, 20000, 270000, v, sizeof v);
        if (n >= 500000) {
            k[kl++] = ' ';
            kl += word_text(voc, seed, 20000, 270000, k + kl, 120);
        }
        if (akv_store_set(s, k, kl, v, vl, err, sizeof err) == -ENOMEM)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *kernel = NULL, *mode = "all";
    int fget = 0;
    char sizes_arg[256] = "1000,10000,50000,200000,1000000", err[256];
    int nq = 64;
    struct akv_vocab *voc = NULL;
    char *home = getenv("HOME"), def[512];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--vectors") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            snprintf(sizes_arg, sizeof sizes_arg, "%s", argv[++i]);
        else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc)
            nq = atoi(argv[++i]);
        else if (strcmp(argv[i], "--kernel") == 0 && i + 1 < argc)
            kernel = argv[++i];
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--fget") == 0)
            fget = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--vectors FILE] [--sizes N,...] [--queries N] [--kernel K] "
                    "[--mode all|alone|batch] [--fget]\n",
                    argv[0]);
            return 2;
        }
    }
    if (path == NULL) {
        snprintf(def, sizeof def, "%s/.cache/attnkv/glove-6B-100d.akv", home ? home : ".");
        path = def;
    }
    if (nq < 16)
        nq = 16;
    if (akv_vocab_open(&voc, path, 0, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (kernel != NULL && akv_attn_set_kernel(kernel) != 0) {
        fprintf(stderr, "kernel %s: not available\n", kernel);
        return 1;
    }
    printf("vocabulary %zu x %u, kernel %s\n", akv_vocab_count(voc), akv_vocab_dim(voc),
           akv_attn_kernel_name());
    uint32_t dim = akv_vocab_dim(voc);
    double *rs = malloc((size_t)nq * dim * sizeof *rs);
    struct akv_attn_job *jobs = calloc((size_t)nq, sizeof *jobs);
    for (char *tok = strtok(sizes_arg, ","); tok != NULL; tok = strtok(NULL, ",")) {
        size_t n = strtoul(tok, NULL, 10);
        struct akv_store *s;
        struct akv_store_snap snap;
        uint64_t seed = 42;
        double t0, t1;
        if (akv_store_create(&s, voc) != 0 || fill(s, voc, n, &seed) != 0) {
            fprintf(stderr, "store of %zu: no memory\n", n);
            return 1;
        }
        akv_store_snap_take(s, &snap);
        for (int i = 0; i < nq; i++)
            jobs[i] = (struct akv_attn_job){.q = akv_vocab_vec(voc, (uint32_t)(rnd(&seed) % 20000)),
                                            .mode = AKV_ATTN_DOT,
                                            .tau = 1.0,
                                            .no_blend = fget,
                                            .r = rs + (size_t)i * dim};
        {
            size_t cnt = 0;
            t0 = now();
            for (int i = 0; i < 10; i++)
                (void)akv_store_scan(s, &snap, count_block, &cnt);
            t1 = now();
            printf("entries %8zu: the store's pass alone %.3f ms\n", akv_store_count(s),
                   (t1 - t0) / 10 * 1e3);
        }
        (void)akv_attn_run_many(s, &snap, jobs, 1); /* warm up */
        int n1 = strcmp(mode, "batch") == 0 ? 0 : nq / 4 > 4 ? nq / 4 : 4;
        t0 = now();
        for (int i = 0; i < n1; i++)
            (void)akv_attn_run_many(s, &snap, jobs + i, 1);
        t1 = now();
        double one = (t1 - t0) / n1 * 1e3;
        struct akv_par par = {par_run, NULL, 1};
        t0 = now();
        for (int i = 0; i < n1; i++)
            (void)akv_attn_run_many_par(s, &snap, jobs + i, 1, &par);
        t1 = now();
        double two = (t1 - t0) / n1 * 1e3;
        t0 = now();
        for (int i = 0; strcmp(mode, "alone") != 0 && i + 16 <= nq; i += 16)
            (void)akv_attn_run_many(s, &snap, jobs + i, 16);
        t1 = now();
        double batch = (t1 - t0) / (nq / 16 * 16) * 1e3;
        printf("entries %8zu:", akv_store_count(s));
        if (n1 > 0)
            printf(" alone %8.3f ms/query, with a helper %8.3f;", one, two);
        if (strcmp(mode, "alone") != 0)
            printf(" batch of 16 %8.3f ms/query", batch);
        printf("\n");
        fflush(stdout);
        akv_store_snap_release(s, &snap);
        akv_store_destroy(s);
    }
    free(rs);
    free(jobs);
    akv_vocab_destroy(voc);
    return 0;
}
