/*
 * import.c - attnkv-import: converts a third-party word-vector file (GloVe
 * text, word2vec text or binary, plain or gzip) into the binary vocabulary
 * that attnkvd maps, and checks such a vocabulary.
 *
 * Output channels: the summary goes to standard output; warnings about
 * skipped rows, errors and the live progress line go to standard error. The
 * progress line is drawn only when standard error is a terminal, and is
 * erased before any warning is printed so the two never share a line.
 *
 * Exit status: 0 success, 1 a load, write or check error, 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attnkv/vecload.h"
#include "attnkv/vocab.h"

#include "attnkv/version.h"

#define EXIT_USAGE 2

static const char *const skip_names[AKV_SKIP_NKINDS] = {
    [AKV_SKIP_RAGGED] = "ragged",        [AKV_SKIP_NOT_NUMBER] = "not a number",
    [AKV_SKIP_NONFINITE] = "not finite", [AKV_SKIP_BAD_WORD] = "bad word",
    [AKV_SKIP_DUPLICATE] = "duplicate",
};

/* State of the progress line, shared by the progress callback and the
 * stream that carries warnings. */
struct ui {
    int shown;    /* a progress line is on the screen */
    double start; /* monotonic seconds at the start of the load */
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: attnkv-import [--format FORMAT] [--max-bad N] [--quiet] INPUT OUTPUT\n"
            "       attnkv-import --check [--quick] FILE\n"
            "       attnkv-import --help | --version\n"
            "\n"
            "Converts word vectors (GloVe text, word2vec text or binary; plain or gzip)\n"
            "into an attnkv vocabulary file. INPUT may be - for standard input.\n"
            "\n"
            "  -f, --format FORMAT  auto (default), glove, word2vec-text, word2vec-binary\n"
            "  -b, --max-bad N      stop when more than N rows are malformed (default: no limit)\n"
            "  -q, --quiet          print warnings and errors only: no progress, no summary\n"
            "  -c, --check FILE     validate a vocabulary file, including its checksums\n"
            "      --quick          with --check: validate the header and index only\n"
            "  -h, --help           show this help\n"
            "  -V, --version        show the version\n"
            "\n"
            "Exit status: 0 success, 1 load, write or check error, 2 usage error.\n");
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Formats n with thousands separators into buf (at least 32 bytes). The C
 * locale has none, so this is done by hand rather than with "%'". */
static const char *thousands(char *buf, uint64_t n)
{
    char digits[24];
    int len = snprintf(digits, sizeof(digits), "%" PRIu64, n), o = 0;

    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

static void erase_progress(struct ui *ui)
{
    if (ui->shown) {
        fputs("\r\033[K", stderr);
        ui->shown = 0;
    }
}

static void on_progress(void *arg, uint64_t rows, uint64_t done, uint64_t total)
{
    struct ui *ui = arg;
    double dt = now() - ui->start;
    char a[32], b[32];

    fprintf(stderr, "\r%s rows", thousands(a, rows));
    if (total > 0)
        fprintf(stderr, "  %3.0f%%", 100.0 * (double)(done > total ? total : done) / (double)total);
    if (dt > 0)
        fprintf(stderr, "  %s rows/s", thousands(b, (uint64_t)((double)rows / dt)));
    fputs("\033[K", stderr);
    fflush(stderr);
    ui->shown = 1;
}

/* Write function of the warning stream used while a progress line is drawn. */
static ssize_t diag_write(void *cookie, const char *buf, size_t size)
{
    struct ui *ui = cookie;

    erase_progress(ui);
    return (ssize_t)fwrite(buf, 1, size, stderr);
}

static int parse_format(const char *s, enum akv_vecfmt *f)
{
    static const enum akv_vecfmt all[] = {AKV_VECFMT_AUTO, AKV_VECFMT_GLOVE, AKV_VECFMT_W2V_TEXT,
                                          AKV_VECFMT_W2V_BIN};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(s, akv_vecfmt_name(all[i])) == 0) {
            *f = all[i];
            return 0;
        }
    }
    return -EINVAL;
}

static int parse_count(const char *s, uint64_t *n)
{
    char *end;
    unsigned long long v;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return -EINVAL;
    *n = v;
    return 0;
}

static int check(const char *path, int quick)
{
    struct akv_vocab *v = NULL;
    char err[512], a[32], b[32];
    int r;

    r = akv_vocab_open(&v, path, quick ? 0 : AKV_VOCAB_VERIFY, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "attnkv-import: %s\n", err);
        return 1;
    }
    printf("%s: %s words, dim %" PRIu32 ", %s bytes, %s\n", path, thousands(a, akv_vocab_count(v)),
           akv_vocab_dim(v), thousands(b, akv_vocab_bytes(v)),
           quick ? "header and index valid" : "checksums valid");
    akv_vocab_destroy(v);
    return 0;
}

static void summary(const char *in, const char *out, const struct akv_vectab *t,
                    const struct akv_vecload_stats *st, double t_load, double t_all)
{
    char a[32], b[32];
    uint64_t skipped = 0;
    struct stat sb;

    for (int k = 0; k < AKV_SKIP_NKINDS; k++)
        skipped += st->skipped[k];
    printf("attnkv-import: %s -> %s\n", in, out);
    printf("  format:   %s%s\n", akv_vecfmt_name(st->format), st->gzip ? ", gzip" : ", plain");
    printf("  words:    %s kept of %s rows, dim %" PRIu32 "\n", thousands(a, t->count),
           thousands(b, st->rows), t->dim);
    printf("  skipped:  %s", thousands(a, skipped));
    for (int k = 0, first = 1; k < AKV_SKIP_NKINDS; k++) {
        if (st->skipped[k] == 0)
            continue;
        printf("%s%s %s", first ? " (" : ", ", skip_names[k], thousands(a, st->skipped[k]));
        first = 0;
    }
    printf("%s\n", skipped ? ")" : "");
    printf("  elapsed:  %.2f s (load %.2f s, %s rows/s)\n", t_all, t_load,
           thousands(a, t_load > 0 ? (uint64_t)((double)st->rows / t_load) : 0));
    if (stat(out, &sb) == 0)
        printf("  output:   %s bytes\n", thousands(a, (uint64_t)sb.st_size));
}

static int import(const char *in, const char *out, const struct akv_vecload_opts *base, int quiet)
{
    struct akv_vecload_opts o = *base;
    struct akv_vecload_stats st;
    struct akv_vectab t;
    struct ui ui = {0, now()};
    cookie_io_functions_t io = {.write = diag_write};
    FILE *diag = NULL;
    char err[1024];
    double t_load;
    int r;

    o.diag = stderr;
    if (!quiet && isatty(STDERR_FILENO)) {
        /* Warnings then pass through a stream that erases the progress line
         * first; it is line-buffered so each warning goes out whole. */
        diag = fopencookie(&ui, "w", io);
        if (diag) {
            setvbuf(diag, NULL, _IOLBF, 0);
            o.diag = diag;
        }
        o.progress = on_progress;
        o.progress_arg = &ui;
    }

    r = akv_vecload_file(in, &o, &t, &st, err, sizeof(err));
    if (diag)
        fclose(diag);
    erase_progress(&ui);
    if (r < 0) {
        fprintf(stderr, "attnkv-import: %s\n", err);
        return 1;
    }
    t_load = now() - ui.start;
    r = akv_vocab_write(&t, out, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "attnkv-import: %s\n", err);
        akv_vectab_fini(&t);
        return 1;
    }
    if (!quiet)
        summary(strcmp(in, "-") == 0 ? "<stdin>" : in, out, &t, &st, t_load, now() - ui.start);
    akv_vectab_fini(&t);
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_QUICK = 256 };
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'}, {"max-bad", required_argument, NULL, 'b'},
        {"quiet", no_argument, NULL, 'q'},        {"check", no_argument, NULL, 'c'},
        {"quick", no_argument, NULL, OPT_QUICK},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    struct akv_vecload_opts opts = {0};
    int quiet = 0, do_check = 0, quick = 0, c;

    while ((c = getopt_long(argc, argv, "f:b:qchV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (parse_format(optarg, &opts.format) < 0) {
                fprintf(stderr,
                        "attnkv-import: unknown format '%s' (auto, glove, "
                        "word2vec-text, word2vec-binary)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'b':
            if (parse_count(optarg, &opts.max_bad) < 0) {
                fprintf(stderr, "attnkv-import: --max-bad wants a number, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'q':
            quiet = 1;
            break;
        case 'c':
            do_check = 1;
            break;
        case OPT_QUICK:
            quick = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("attnkv-import %s\n", AKV_VERSION);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    argc -= optind;
    argv += optind;

    if (do_check) {
        if (argc != 1) {
            fprintf(stderr, "attnkv-import: --check takes exactly one FILE\n");
            usage(stderr);
            return EXIT_USAGE;
        }
        return check(argv[0], quick);
    }
    if (quick) {
        fprintf(stderr, "attnkv-import: --quick goes with --check\n");
        return EXIT_USAGE;
    }
    if (argc != 2) {
        fprintf(stderr, "attnkv-import: need INPUT and OUTPUT\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    return import(argv[0], argv[1], &opts, quiet);
}
