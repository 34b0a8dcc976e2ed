/*
 * bench-store.c - the "large stores" figures of issue 5: a store of a million
 * entries built from real vectors (default: the GloVe 6B 100d file that
 * scripts/fetch-vectors makes), then
 *   - the store's memory: akv_store_memory, akv_store_memory_used and the
 *     growth of the process's anonymous RSS, in total and per entry;
 *   - the fill time;
 *   - QUERY latency (akv_query_run, default options: attention dot, metric
 *     l2, k = 5), the attention step alone (skip_rank, as EXPLAIN runs it)
 *     for both attention modes, and the ranking step alone (NEIGHBORS l2),
 *     p50 and p99 over a few hundred random queries.
 *
 * Keys are unique: a fifth single words, the rest two- and three-word
 * phrases; values are mostly single words (85%), some two- or three-word
 * phrases. Words are drawn uniformly from the --words commonest words of the
 * vocabulary (GloVe files are sorted by frequency); queries are single words
 * from the 50,000 commonest. Everything is seeded, so runs are comparable.
 * Prints figures; asserts nothing. Usage:
 *   bench-store [--vectors FILE] [--entries N] [--queries N] [--words N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attnkv/query.h"
#include "attnkv/store.h"
#include "attnkv/vocab.h"

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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n)
{
    double sum = 0;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    for (int i = 0; i < n; i++)
        sum += t[i];
    printf("%-36s n=%-4d mean %8.3f ms  p50 %8.3f ms  p99 %8.3f ms\n", what, n, sum / n * 1e3,
           t[n / 2] * 1e3, t[(int)(n * 0.99)] * 1e3);
}

/* The process's anonymous resident memory in bytes (heap and private
 * mappings, not the file-backed vocabulary pages), or 0 if unknown. */
static size_t rss_anon(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "RssAnon: %zu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

/* Writes 1 to 3 space-separated words drawn from the nwords commonest. */
static size_t phrase(const struct akv_vocab *voc, uint64_t *seed, uint32_t nwords, int words,
                     char *buf, size_t cap)
{
    size_t len = 0;
    for (int w = 0; w < words; w++) {
        const char *s = akv_vocab_word(voc, (uint32_t)(rnd(seed) % nwords), NULL);
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", w ? " " : "", s);
    }
    return len;
}

static void default_path(char *buf, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg != NULL && *xdg)
        snprintf(buf, cap, "%s/attnkv/glove-6B-100d.akv", xdg);
    else
        snprintf(buf, cap, "%s/.cache/attnkv/glove-6B-100d.akv", home ? home : "");
}

int main(int argc, char **argv)
{
    const char *path = getenv("AKV_VECTORS");
    char defpath[4096], err[512], key[256], val[256];
    long nentries = 1000000, nq = 300, nwords = 100000;
    struct akv_vocab *voc = NULL;
    struct akv_store *s = NULL;
    struct akv_query_result *res = malloc(sizeof *res);
    double *t = NULL, t0, fill;
    size_t rss0, rss1, mem, used, nphrase_k = 0, nphrase_v = 0;
    uint64_t seed = 12345;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--vectors") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc)
            nentries = atol(argv[++i]);
        else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc)
            nq = atol(argv[++i]);
        else if (strcmp(argv[i], "--words") == 0 && i + 1 < argc)
            nwords = atol(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--vectors FILE] [--entries N] [--queries N] [--words N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (path == NULL || *path == '\0') {
        default_path(defpath, sizeof defpath);
        path = defpath;
    }
    if (nentries < 1 || nq < 1 || nwords < 1 || res == NULL) {
        fprintf(stderr, "--entries, --queries and --words must be positive\n");
        return 2;
    }
    if (akv_vocab_open(&voc, path, 0, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if ((size_t)nwords > akv_vocab_count(voc))
        nwords = (long)akv_vocab_count(voc);
    t = malloc((size_t)nq * sizeof *t);
    rss0 = rss_anon();
    if (t == NULL || akv_store_create(&s, voc) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    t0 = now();
    while (akv_store_count(s) < (size_t)nentries) {
        int kind = (int)(rnd(&seed) % 10), vkind = (int)(rnd(&seed) % 20);
        int kw = kind < 2 ? 1 : kind < 6 ? 2 : 3, vw = vkind < 17 ? 1 : vkind < 19 ? 2 : 3;
        size_t kl = phrase(voc, &seed, (uint32_t)nwords, kw, key, sizeof key);
        size_t vl = phrase(voc, &seed, (uint32_t)nwords, vw, val, sizeof val);
        const char *cur;
        size_t curlen;
        if (akv_store_get(s, key, kl, &cur, &curlen))
            continue; /* keys are unique */
        if (akv_store_set(s, key, kl, val, vl, err, sizeof err) != 0) {
            fprintf(stderr, "SET failed: %s\n", err);
            return 1;
        }
        nphrase_k += kw > 1;
        nphrase_v += vw > 1;
    }
    fill = now() - t0;
    rss1 = rss_anon();
    mem = akv_store_memory(s);
    used = akv_store_memory_used(s);
    printf("vocabulary: %zu words x %u dims; entries drawn from the %ld commonest\n",
           akv_vocab_count(voc), akv_vocab_dim(voc), nwords);
    printf("entries: %zu (%.0f%% phrase keys, %.0f%% phrase values), filled in %.2f s "
           "(%.2f us per SET)\n",
           akv_store_count(s), 100.0 * (double)nphrase_k / (double)nentries,
           100.0 * (double)nphrase_v / (double)nentries, fill, fill / (double)nentries * 1e6);
    printf("akv_store_memory      %8.1f MB  %6.1f B/entry\n", (double)mem / 1e6,
           (double)mem / (double)nentries);
    printf("akv_store_memory_used %8.1f MB  %6.1f B/entry\n", (double)used / 1e6,
           (double)used / (double)nentries);
    printf("anonymous RSS growth  %8.1f MB  %6.1f B/entry\n", (double)(rss1 - rss0) / 1e6,
           (double)(rss1 - rss0) / (double)nentries);

    for (int mode = 0; mode < 3; mode++) {
        struct akv_query_opts o;
        char what[64];
        akv_query_opts_default(&o);
        if (mode > 0) {
            o.skip_rank = 1;
            o.attn = mode == 1 ? AKV_ATTN_DOT : AKV_ATTN_COSINE;
        }
        for (long i = 0; i < nq; i++) {
            struct akv_store_snap snap;
            uint32_t id = (uint32_t)(rnd(&seed) % 50000);
            t0 = now();
            akv_store_snap_take(s, &snap);
            akv_query_run(s, &snap, akv_vocab_vec(voc, id), &o, res);
            akv_store_snap_release(s, &snap);
            t[i] = now() - t0;
        }
        if (mode == 0)
            snprintf(what, sizeof what, "QUERY (attention dot + ranking)");
        else
            snprintf(what, sizeof what, "attention %s alone", akv_attn_name(o.attn));
        report(what, t, (int)nq);
    }
    for (long i = 0; i < nq; i++) {
        uint32_t id = (uint32_t)(rnd(&seed) % 50000);
        t0 = now();
        akv_query_neighbors(voc, akv_vocab_vec(voc, id), AKV_METRIC_L2, 5, res);
        t[i] = now() - t0;
    }
    report("ranking alone (NEIGHBORS l2 k=5)", t, (int)nq);

    akv_store_destroy(s);
    akv_vocab_destroy(voc);
    free(res);
    free(t);
    return 0;
}
