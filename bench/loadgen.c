/*
 * loadgen.c - a RESP load generator for SET and QUERY throughput with
 * vocabulary words.
 *
 * redis-benchmark can vary a command only by numbers (__rand_int__), and
 * numbers are not vocabulary words, so it can only measure attnkvd's SET with
 * one key overwritten, or QUERY with one word. This program sends SET <key>
 * <value> with both words drawn from a word list, the same commands to any
 * Redis-protocol server, so attnkvd and redis-server can be compared with
 * many distinct keys; with --query it sends QUERY <word> instead, a word of
 * the list per request, in the same order as SET's keys, and with --fget
 * FGET <word> likewise.
 *
 * It opens C connections. Each one sends a batch of P pipelined commands and
 * waits for all P replies before it sends the next batch, which is what
 * redis-benchmark -P does, so the two programs' figures are comparable; the
 * run ends when N replies have arrived. Request number i (counted over all
 * connections) sets the key perm[i mod K], where perm is the word list
 * shuffled with the seed and K its length, to the value word chosen by a hash
 * of (seed, i). The commands therefore do not depend on timing or on which
 * connection happens to send them, and a run leaves exactly min(N, K) keys.
 *
 * Every reply is parsed as RESP2. Anything but +OK (for QUERY: an array of
 * at least one word), an -ERR reply above all, means the run measured
 * something other than what it says, so it is counted, the
 * first one is shown on stderr, and the exit status is 1. A closed
 * connection, a malformed reply or ten seconds without progress end the run
 * at once with status 2.
 *
 * Output: one line on stdout, key=value pairs separated by spaces:
 *   rps=... requests=N errors=E keys=K clients=C pipeline=P seconds=S
 *   cpu_s=... p50_ms=... p99_ms=...
 * where cpu_s is the processor time the generator itself used while
 * measuring, and the latencies are per batch (per request when P is 1), from
 * the batch's write to its last reply.
 *
 * One thread and poll(2): the program is meant to run beside the server on a
 * small machine, and with tens of connections poll costs nothing next to the
 * system calls that move the bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A reply nested deeper than this is treated as malformed; SET's replies are
 * never nested at all, so the limit only protects the parser's stack. */
#define MAX_DEPTH 8
/* How long the loop waits for any progress before it gives up. */
#define STALL_MS 10000
/* The initial read buffer of each connection; it grows for larger replies. */
#define RBUF_INITIAL 65536

static const char set_header[] = "*3\r\n$3\r\nSET\r\n";
static const char query_header[] = "*2\r\n$5\r\nQUERY\r\n";
static const char fget_header[] = "*2\r\n$4\r\nFGET\r\n";

/* A word list held as RESP bulk strings ("$3\r\ncat\r\n") laid end to end,
 * so building a command is two memcpy calls per argument pair. */
struct words {
    char *bulk;
    size_t *off; /* count + 1 offsets: word i is bulk[off[i] .. off[i + 1]) */
    size_t count;
    size_t max_len; /* the longest encoded word, for sizing write buffers */
};

struct conn {
    int fd;
    char *wbuf;
    size_t wlen, wpos; /* the current batch, and how much of it is sent */
    char *rbuf;
    size_t rcap, rlen, rpos; /* received bytes, and how many are parsed */
    size_t pending;          /* replies still owed for the current batch */
    uint64_t sent_ns;        /* when the current batch's first byte went out */
};

struct run {
    const struct words *keys;
    const struct words *values;
    size_t *perm; /* the order in which keys are used */
    uint64_t seed;
    uint64_t total, issued, answered, errors;
    size_t pipeline;
    int query;        /* QUERY <key> (or FGET <key>) rather than SET <key> <value> */
    int fget;         /* with query: FGET rather than QUERY */
    uint64_t *lat_ns; /* one entry per completed batch */
    size_t nlat;
    char first_error[256];
};

static const char *prog = "loadgen";

static void die(int status, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        die(2, "out of memory (%zu bytes)", n);
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: a good 64-bit mix that needs no state beyond its input, so the
 * value of request i can be computed from i alone. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* Writes word as a RESP bulk string at dst, which must have room for len +
 * 24 bytes. Returns the number of bytes written. */
static size_t encode_bulk(char *dst, const char *word, size_t len)
{
    int n = sprintf(dst, "$%zu\r\n", len);
    memcpy(dst + n, word, len);
    memcpy(dst + (size_t)n + len, "\r\n", 2);
    return (size_t)n + len + 2;
}

/* Fills w with count words given as (pointer, length) pairs; w owns the
 * copies it makes, the caller keeps the words. */
static void words_build(struct words *w, const char *const *word, const size_t *len, size_t count)
{
    size_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += len[i] + 24; /* "$" + up to 20 digits + two CRLFs */
    w->bulk = xmalloc(bytes);
    w->off = xmalloc((count + 1) * sizeof *w->off);
    w->count = count;
    w->max_len = 0;
    w->off[0] = 0;
    for (size_t i = 0; i < count; i++) {
        size_t n = encode_bulk(w->bulk + w->off[i], word[i], len[i]);
        w->off[i + 1] = w->off[i] + n;
        if (n > w->max_len)
            w->max_len = n;
    }
}

/* Reads a word list: one word per line, a trailing "\r" dropped, empty lines
 * skipped. Dies if the file cannot be read or holds no word. */
static void words_load(struct words *w, const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0)
        die(2, "%s: %s", path, strerror(errno));
    size_t size = (size_t)st.st_size;
    char *text = xmalloc(size + 1);
    if (fread(text, 1, size, f) != size)
        die(2, "%s: short read", path);
    fclose(f);
    text[size] = '\n';

    size_t lines = 0;
    for (size_t i = 0; i <= size; i++)
        lines += text[i] == '\n';
    const char **word = xmalloc(lines * sizeof *word);
    size_t *len = xmalloc(lines * sizeof *len);
    size_t count = 0;
    for (char *p = text, *end = text + size; p <= end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p) + 1);
        size_t n = (size_t)(nl - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > 0) {
            word[count] = p;
            len[count++] = n;
        }
        p = nl + 1;
    }
    if (count == 0)
        die(2, "%s: no words", path);
    words_build(w, word, len, count);
    free(word);
    free(len);
    free(text);
}

/* Returns the length of the first complete RESP2 reply in p[0..n), 0 if more
 * bytes are needed, or -1 if the bytes are not a RESP2 reply. */
static long reply_len(const char *p, size_t n, int depth)
{
    const char *crlf;
    if (n == 0)
        return 0;
    if (depth > MAX_DEPTH)
        return -1;
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
    case '$':
    case '*':
        break;
    default:
        return -1;
    }
    crlf = memchr(p, '\n', n);
    if (crlf == NULL)
        return 0;
    if (crlf == p || crlf[-1] != '\r')
        return -1;
    size_t head = (size_t)(crlf - p) + 1;
    if (p[0] == '+' || p[0] == '-' || p[0] == ':')
        return (long)head;

    char *end;
    long count = strtol(p + 1, &end, 10);
    if (end != crlf - 1 || count < -1)
        return -1;
    if (count == -1)
        return (long)head;
    if (p[0] == '$') {
        size_t total = head + (size_t)count + 2;
        if (n < total)
            return 0;
        return memcmp(p + total - 2, "\r\n", 2) == 0 ? (long)total : -1;
    }
    size_t total = head;
    for (long i = 0; i < count; i++) {
        long m = reply_len(p + total, n - total, depth + 1);
        if (m <= 0)
            return m;
        total += (size_t)m;
    }
    return (long)total;
}

/* Puts the next batch (up to P commands) in c's write buffer. Returns the
 * number of commands, 0 when every request has been issued. */
static size_t batch_build(struct run *r, struct conn *c)
{
    size_t n = 0;
    c->wlen = c->wpos = 0;
    while (n < r->pipeline && r->issued < r->total) {
        uint64_t i = r->issued++;
        size_t k = r->perm[i % r->keys->count];
        size_t v = (size_t)(mix64(r->seed ^ mix64(i)) % r->values->count);
        const struct words *kw = r->keys, *vw = r->values;
        const char *head = r->fget ? fget_header : r->query ? query_header : set_header;
        size_t hlen = r->fget    ? sizeof fget_header - 1
                      : r->query ? sizeof query_header - 1
                                 : sizeof set_header - 1;
        memcpy(c->wbuf + c->wlen, head, hlen);
        c->wlen += hlen;
        memcpy(c->wbuf + c->wlen, kw->bulk + kw->off[k], kw->off[k + 1] - kw->off[k]);
        c->wlen += kw->off[k + 1] - kw->off[k];
        if (!r->query) {
            memcpy(c->wbuf + c->wlen, vw->bulk + vw->off[v], vw->off[v + 1] - vw->off[v]);
            c->wlen += vw->off[v + 1] - vw->off[v];
        }
        n++;
    }
    return n;
}

/* Sends what is left of c's batch. Returns 1 if some is still unsent (the
 * socket buffer is full), 0 if all of it went out. */
static int conn_flush(struct conn *c)
{
    while (c->wpos < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            die(2, "send: %s", strerror(errno));
        }
        c->wpos += (size_t)n;
    }
    return 0;
}

/* Starts c's next batch, if any requests are left, and sets what poll
 * should wait for on c: a negative descriptor, which poll skips, once c has
 * nothing more to do, so that it cannot be taken for a finished batch. */
static void conn_next(struct run *r, struct conn *c, struct pollfd *pfd)
{
    c->pending = batch_build(r, c);
    if (c->pending == 0) {
        pfd->fd = -1;
        return;
    }
    c->sent_ns = now_ns();
    pfd->events = (short)(POLLIN | (conn_flush(c) ? POLLOUT : 0));
}

/* Counts the reply p[0..n) as an error unless it is +OK (QUERY: an array of
 * at least one element; reply_len has checked its shape), and keeps the
 * first error's text for the report on stderr. */
static void note_reply(struct run *r, const char *p, size_t n)
{
    static const char ok[] = "+OK\r\n";
    if (!r->query && n == sizeof ok - 1 && memcmp(p, ok, n) == 0)
        return;
    if (r->query && p[0] == '*' && p[1] >= '1' && p[1] <= '9')
        return;
    if (r->errors++ == 0) {
        size_t shown = n - 2 < sizeof r->first_error - 1 ? n - 2 : sizeof r->first_error - 1;
        /* A multi-line reply is shown on one line. */
        for (size_t i = 0; i < shown; i++)
            r->first_error[i] = p[i] == '\r' || p[i] == '\n' ? ' ' : p[i];
        r->first_error[shown] = '\0';
    }
}

/* Reads what c's server sent and consumes every complete reply. */
static void conn_read(struct run *r, struct conn *c)
{
    if (c->rlen == c->rcap) {
        c->rcap *= 2;
        c->rbuf = realloc(c->rbuf, c->rcap);
        if (c->rbuf == NULL)
            die(2, "out of memory");
    }
    ssize_t got = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (got < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        die(2, "recv: %s", strerror(errno));
    }
    if (got == 0)
        die(2, "the server closed a connection after %llu of %llu replies",
            (unsigned long long)r->answered, (unsigned long long)r->total);
    c->rlen += (size_t)got;

    while (c->rpos < c->rlen) {
        long n = reply_len(c->rbuf + c->rpos, c->rlen - c->rpos, 0);
        if (n == 0)
            break;
        if (n < 0)
            die(2, "malformed reply: \"%.40s\"", c->rbuf + c->rpos);
        if (c->pending == 0)
            die(2, "a reply arrived for no request: \"%.40s\"", c->rbuf + c->rpos);
        note_reply(r, c->rbuf + c->rpos, (size_t)n);
        c->rpos += (size_t)n;
        c->pending--;
        r->answered++;
    }
    /* Keep only the unparsed tail, at the front, so the buffer never fills
     * with replies that have already been counted. */
    memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
    c->rlen -= c->rpos;
    c->rpos = 0;
}

static int conn_open(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int fd = -1, err = getaddrinfo(host, port, &hints, &res), one = 1;
    if (err != 0)
        die(2, "%s:%s: %s", host, port, gai_strerror(err));
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        die(2, "cannot connect to %s:%s: %s", host, port, strerror(errno));
    freeaddrinfo(res);
    /* Without TCP_NODELAY, Nagle's algorithm would hold each small request
     * back until the previous reply arrived, measuring the kernel's timer
     * instead of the server. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        die(2, "socket options: %s", strerror(errno));
    return fd;
}

/* The processor time this process has used, user and system, in seconds.
 * It shows whether the generator could have been the bottleneck: on a
 * machine it shares with the server, every second it spends is a second the
 * server does not get. */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Parses a decimal count in [lo, hi] or dies naming the option. */
static unsigned long long parse_count(const char *opt, const char *s, unsigned long long lo,
                                      unsigned long long hi)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < lo || v > hi)
        die(2, "%s must be a whole number from %llu to %llu, not \"%s\"", opt, lo, hi, s);
    return v;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options] (--words FILE | --key WORD --value WORD)\n"
            "       %s --query [options] --words FILE\n"
            "Sends SET (or QUERY) commands to a Redis-protocol server and prints one line:\n"
            "  rps=... requests=N errors=E keys=K clients=C pipeline=P seconds=S\n"
            "  cpu_s=... p50_ms=... p99_ms=...\n"
            "  -h, --host HOST      server address (default 127.0.0.1)\n"
            "  -p, --port PORT      server port (default 6379)\n"
            "  -w, --words FILE     keys and values from this list, one word a line\n"
            "      --key WORD       one fixed key instead (like redis-benchmark)\n"
            "      --value WORD     one fixed value instead\n"
            "  -c, --clients C      connections (default 50)\n"
            "  -P, --pipeline P     commands per batch on each connection (default 1)\n"
            "  -n, --requests N     requests in total (default 100000)\n"
            "  -s, --seed S         order of keys and choice of values (default 1)\n"
            "      --query          QUERY <word> for each word of the list in turn\n"
            "      --fget           FGET <word> likewise\n"
            "      --help           this text\n"
            "Exit status: 0, 1 if any reply was not +OK (QUERY: not an array of words),\n"
            "2 on other failures.\n",
            prog, prog);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'h'},
        {"port", required_argument, NULL, 'p'},
        {"words", required_argument, NULL, 'w'},
        {"key", required_argument, NULL, 'k'},
        {"value", required_argument, NULL, 'v'},
        {"clients", required_argument, NULL, 'c'},
        {"pipeline", required_argument, NULL, 'P'},
        {"requests", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"query", no_argument, NULL, 'Q'},
        {"fget", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'H'},
        {NULL, 0, NULL, 0},
    };
    const char *host = "127.0.0.1", *port = "6379", *path = NULL, *key = NULL, *value = NULL;
    size_t nconn = 50;
    struct run r = {.pipeline = 1, .total = 100000, .seed = 1};
    struct words list = {0}, fixed_key = {0}, fixed_value = {0};

    for (;;) {
        int opt = getopt_long(argc, argv, "h:p:w:c:P:n:s:", longopts, NULL);
        if (opt == -1)
            break;
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            parse_count("--port", optarg, 1, 65535);
            port = optarg;
            break;
        case 'w':
            path = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'v':
            value = optarg;
            break;
        case 'c':
            nconn = (size_t)parse_count("--clients", optarg, 1, 10000);
            break;
        case 'P':
            r.pipeline = (size_t)parse_count("--pipeline", optarg, 1, 100000);
            break;
        case 'n':
            r.total = parse_count("--requests", optarg, 1, UINT64_MAX / 2);
            break;
        case 's':
            r.seed = parse_count("--seed", optarg, 0, UINT64_MAX);
            break;
        case 'Q':
            r.query = 1;
            break;
        case 'F':
            r.query = 1;
            r.fget = 1;
            break;
        case 'H':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || (path == NULL && (key == NULL || value == NULL)) ||
        (r.query && (path == NULL || key != NULL || value != NULL))) {
        usage(stderr);
        return 2;
    }

    if (path != NULL)
        words_load(&list, path);
    if (key != NULL) {
        size_t len = strlen(key);
        words_build(&fixed_key, &key, &len, 1);
    }
    if (value != NULL) {
        size_t len = strlen(value);
        words_build(&fixed_value, &value, &len, 1);
    }
    r.keys = key != NULL ? &fixed_key : &list;
    r.values = value != NULL ? &fixed_value : &list;

    /* A seeded Fisher-Yates shuffle: the keys come in an order unrelated to
     * the list's (frequency) order, yet every key is used once per cycle. */
    r.perm = xmalloc(r.keys->count * sizeof *r.perm);
    for (size_t i = 0; i < r.keys->count; i++)
        r.perm[i] = i;
    for (size_t i = r.keys->count; i > 1; i--) {
        size_t j = (size_t)(mix64(mix64(r.seed) + i) % i), t = r.perm[i - 1];
        r.perm[i - 1] = r.perm[j];
        r.perm[j] = t;
    }

    /* Only the last batch can be short, so there are at most N / P + 1. */
    r.lat_ns = xmalloc((size_t)(r.total / r.pipeline + 1) * sizeof *r.lat_ns);
    size_t command_max =
        sizeof query_header + sizeof set_header + r.keys->max_len + r.values->max_len;
    struct conn *conns = xmalloc(nconn * sizeof *conns);
    struct pollfd *pfd = xmalloc(nconn * sizeof *pfd);
    for (size_t i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        *c = (struct conn){.fd = conn_open(host, port), .rcap = RBUF_INITIAL};
        c->wbuf = xmalloc(r.pipeline * command_max);
        c->rbuf = xmalloc(c->rcap);
        pfd[i] = (struct pollfd){.fd = c->fd};
    }

    /* The clock starts once every connection is open, as redis-benchmark's
     * does, so connecting is not counted as serving requests. */
    uint64_t t0 = now_ns();
    double cpu0 = cpu_seconds();
    for (size_t i = 0; i < nconn; i++)
        conn_next(&r, &conns[i], &pfd[i]);
    while (r.answered < r.total) {
        int ready = poll(pfd, (nfds_t)nconn, STALL_MS);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die(2, "poll: %s", strerror(errno));
        }
        if (ready == 0)
            die(2, "no progress for %d ms after %llu of %llu replies", STALL_MS,
                (unsigned long long)r.answered, (unsigned long long)r.total);
        for (size_t i = 0; i < nconn; i++) {
            struct conn *c = &conns[i];
            short ev = pfd[i].revents;
            if (ev == 0)
                continue;
            if (ev & POLLNVAL)
                die(2, "poll: bad descriptor");
            if ((ev & POLLOUT) && !conn_flush(c))
                pfd[i].events = POLLIN;
            if (ev & (POLLIN | POLLHUP | POLLERR)) {
                conn_read(&r, c);
                if (c->pending == 0) {
                    r.lat_ns[r.nlat++] = now_ns() - c->sent_ns;
                    conn_next(&r, c, &pfd[i]);
                }
            }
        }
    }
    double seconds = (double)(now_ns() - t0) * 1e-9;
    double cpu = cpu_seconds() - cpu0;

    qsort(r.lat_ns, r.nlat, sizeof *r.lat_ns, cmp_u64);
    double p50 = (double)r.lat_ns[r.nlat / 2] * 1e-6;
    double p99 = (double)r.lat_ns[(size_t)((double)r.nlat * 0.99)] * 1e-6;
    uint64_t distinct = r.total < r.keys->count ? r.total : r.keys->count;
    printf("rps=%.1f requests=%llu errors=%llu keys=%llu clients=%zu pipeline=%zu seconds=%.3f "
           "cpu_s=%.3f p50_ms=%.3f p99_ms=%.3f\n",
           (double)r.total / seconds, (unsigned long long)r.total, (unsigned long long)r.errors,
           (unsigned long long)distinct, nconn, r.pipeline, seconds, cpu, p50, p99);
    if (r.errors > 0) {
        fprintf(stderr, "%s: %llu of %llu replies were not %s; the first: %s\n", prog,
                (unsigned long long)r.errors, (unsigned long long)r.total,
                r.query ? "arrays of words" : "+OK", r.first_error);
        return 1;
    }

    for (size_t i = 0; i < nconn; i++) {
        close(conns[i].fd);
        free(conns[i].wbuf);
        free(conns[i].rbuf);
    }
    free(conns);
    free(pfd);
    free(r.perm);
    free(r.lat_ns);
    free(list.bulk);
    free(list.off);
    free(fixed_key.bulk);
    free(fixed_key.off);
    free(fixed_value.bulk);
    free(fixed_value.off);
    return 0;
}
