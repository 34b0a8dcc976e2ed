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
 * With --port, the same store is loaded into a running attnkvd on
 * 127.0.0.1 instead (after FLUSHALL: use a daemon of your own, started with
 * the same vectors) with pipelined SETs, and the figures are taken over TCP,
 * one request at a time: QUERY word (attention and ranking, k = 5, as a
 * client sees it) and EXPLAIN word COUNT 1 (the attention step alone), with
 * the daemon's store memory and RSS from INFO.
 *
 * Keys are unique: a fifth single words, the rest two- and three-word
 * phrases; values are mostly single words (85%), some two- or three-word
 * phrases. Words are drawn uniformly from the --words commonest words of the
 * vocabulary (GloVe files are sorted by frequency); queries are single words
 * from the 50,000 commonest. Everything is seeded, so runs are comparable.
 * Prints figures; asserts nothing. Usage:
 *   bench-store [--vectors FILE] [--entries N] [--queries N] [--words N] [--port N]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* ---- a minimal RESP client, for --port ------------------------------- */

struct client {
    int fd;
    char in[1 << 16];
    size_t len, pos;
    char *out;
    size_t olen, ocap;
};

static int client_connect(struct client *c, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;

    memset(c, 0, sizeof *c);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* Queues one command (RESP array of bulk strings). */
static void client_cmd(struct client *c, int argc, const char *const *argv, const size_t *lens)
{
    size_t need = 32;
    for (int i = 0; i < argc; i++)
        need += lens[i] + 32;
    if (c->olen + need > c->ocap) {
        c->ocap = (c->olen + need) * 2;
        c->out = realloc(c->out, c->ocap);
        if (c->out == NULL)
            abort();
    }
    c->olen += (size_t)sprintf(c->out + c->olen, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        c->olen += (size_t)sprintf(c->out + c->olen, "$%zu\r\n", lens[i]);
        memcpy(c->out + c->olen, argv[i], lens[i]);
        c->olen += lens[i];
        memcpy(c->out + c->olen, "\r\n", 2);
        c->olen += 2;
    }
}

static int client_flush(struct client *c)
{
    for (size_t off = 0; off < c->olen;) {
        ssize_t n = write(c->fd, c->out + off, c->olen - off);
        if (n <= 0) {
            perror("write");
            return -1;
        }
        off += (size_t)n;
    }
    c->olen = 0;
    return 0;
}

static int client_byte(struct client *c)
{
    if (c->pos == c->len) {
        ssize_t n = read(c->fd, c->in, sizeof c->in);
        if (n <= 0)
            return -1;
        c->len = (size_t)n;
        c->pos = 0;
    }
    return (unsigned char)c->in[c->pos++];
}

/* Reads a line without its CRLF into line (truncated to cap - 1 bytes). */
static int client_line(struct client *c, char *line, size_t cap)
{
    size_t n = 0;
    int ch;
    while ((ch = client_byte(c)) >= 0 && ch != '\n')
        if (ch != '\r' && n + 1 < cap)
            line[n++] = (char)ch;
    line[n] = '\0';
    return ch < 0 ? -1 : 0;
}

/* Reads one reply, whole; copies its first line (or a bulk string's bytes,
 * truncated) to first. Returns 0, or -1 on an error reply or a closed
 * connection. */
static int client_reply(struct client *c, char *first, size_t cap)
{
    char line[256];
    long n;
    int rc = 0;

    if (client_line(c, line, sizeof line) < 0)
        return -1;
    if (first != NULL)
        snprintf(first, cap, "%s", line);
    n = atol(line + 1);
    switch (line[0]) {
    case '-':
        return -1;
    case '$':
        if (n < 0)
            return 0;
        for (long i = 0; i < n + 2; i++) {
            int ch = client_byte(c);
            if (ch < 0)
                return -1;
            if (first != NULL && (size_t)i < cap - 1 && i < n) {
                first[i] = (char)ch;
                first[i + 1] = '\0';
            }
        }
        return 0;
    case '*':
        for (long i = 0; i < n; i++)
            if (client_reply(c, NULL, 0) < 0)
                rc = -1;
        return rc;
    default:
        return 0;
    }
}

/* The value of field in an INFO reply's bulk string, or 0. */
static size_t info_field(struct client *c, const char *section, const char *field)
{
    static char text[1 << 16];
    const char *argv[] = {"INFO", section};
    size_t lens[] = {4, strlen(section)}, flen = strlen(field);
    const char *p;

    client_cmd(c, 2, argv, lens);
    if (client_flush(c) < 0 || client_reply(c, text, sizeof text) < 0)
        return 0;
    for (p = text; (p = strstr(p, field)) != NULL; p += flen)
        if ((p == text || p[-1] == '\n') && p[flen] == ':')
            return (size_t)strtoull(p + flen + 1, NULL, 10);
    return 0;
}

struct send_arg {
    struct client *c;
    size_t queued;
    int failed;
};

static int send_entry(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct send_arg *a = arg;
    const char *argv[] = {"SET", key, val};
    size_t lens[] = {3, klen, vlen};

    client_cmd(a->c, 3, argv, lens);
    if (++a->queued == 1000) {
        if (client_flush(a->c) < 0)
            return -1;
        for (; a->queued > 0; a->queued--)
            a->failed |= client_reply(a->c, NULL, 0) < 0;
    }
    return 0;
}

/* Loads the entries of s into the daemon on port and measures QUERY and
 * EXPLAIN there. */
static int run_tcp(int port, const struct akv_vocab *voc, const struct akv_store *s, long nq,
                   uint64_t *seed, double *t)
{
    struct client c;
    struct send_arg sa = {&c, 0, 0};
    const char *flush[] = {"FLUSHALL"};
    size_t flush_len[] = {8}, store0, rss0, store1, rss1, n = akv_store_count(s);
    uint64_t cursor = 0;
    char first[256];
    double t0, fill;

    if (client_connect(&c, port) < 0)
        return 1;
    client_cmd(&c, 1, flush, flush_len);
    if (client_flush(&c) < 0 || client_reply(&c, NULL, 0) < 0) {
        fprintf(stderr, "FLUSHALL failed\n");
        return 1;
    }
    store0 = info_field(&c, "memory", "used_memory_store");
    rss0 = info_field(&c, "memory", "used_memory_rss");
    t0 = now();
    do
        cursor = akv_store_iter(s, cursor, 4096, send_entry, &sa);
    while (cursor != 0);
    if (client_flush(&c) < 0)
        return 1;
    for (; sa.queued > 0; sa.queued--)
        sa.failed |= client_reply(&c, NULL, 0) < 0;
    fill = now() - t0;
    if (sa.failed) {
        fprintf(stderr, "some SETs failed (is the daemon using the same vectors?)\n");
        return 1;
    }
    store1 = info_field(&c, "memory", "used_memory_store");
    rss1 = info_field(&c, "memory", "used_memory_rss");
    printf("attnkvd on port %d: %zu entries loaded in %.2f s (%.0f SET/s, pipelined)\n", port,
           info_field(&c, "store", "keys"), fill, (double)n / fill);
    printf("used_memory_store     %8.1f MB  %6.1f B/entry\n", (double)(store1 - store0) / 1e6,
           (double)(store1 - store0) / (double)n);
    printf("used_memory_rss growth %7.1f MB  %6.1f B/entry\n", (double)(rss1 - rss0) / 1e6,
           (double)(rss1 - rss0) / (double)n);

    for (int mode = 0; mode < 2; mode++) {
        for (long i = 0; i < nq; i++) {
            const char *w = akv_vocab_word(voc, (uint32_t)(rnd(seed) % 50000), NULL);
            const char *argv[] = {mode == 0 ? "QUERY" : "EXPLAIN", w, "COUNT", "1"};
            size_t lens[] = {mode == 0 ? 5u : 7u, strlen(w), 5, 1};
            client_cmd(&c, mode == 0 ? 2 : 4, argv, lens);
            t0 = now();
            if (client_flush(&c) < 0 || client_reply(&c, first, sizeof first) < 0) {
                fprintf(stderr, "%s %s failed: %s\n", argv[0], w, first);
                return 1;
            }
            t[i] = now() - t0;
        }
        report(mode == 0 ? "TCP QUERY word (k=5)" : "TCP EXPLAIN word COUNT 1 (attention)",
               t, (int)nq);
    }
    close(c.fd);
    free(c.out);
    return 0;
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
    long nentries = 1000000, nq = 300, nwords = 100000, port = 0;
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
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atol(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--vectors FILE] [--entries N] [--queries N] [--words N] "
                    "[--port N]\n",
                    argv[0]);
            return 2;
        }
    }
    if (path == NULL || *path == '\0') {
        default_path(defpath, sizeof defpath);
        path = defpath;
    }
    if (nentries < 1 || nq < 1 || nwords < 1 || port < 0 || port > 65535 || res == NULL) {
        fprintf(stderr, "--entries, --queries and --words must be positive, --port a port\n");
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
    if (port > 0) {
        int rc = run_tcp((int)port, voc, s, nq, &seed, t);
        akv_store_destroy(s);
        akv_vocab_destroy(voc);
        free(res);
        free(t);
        return rc;
    }

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
            snprintf(what, sizeof what, "attention %s alone", akv_attn_mode_name(o.attn));
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
