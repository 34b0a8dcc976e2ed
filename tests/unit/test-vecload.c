/*
 * test-vecload.c - the GloVe / word2vec readers: every format plain and
 * gzip, from files and from memory; format detection; each kind of skipped
 * row with its file:line report; each condition that stops a load; line-end
 * variants; every truncation of small valid files; the fuzzer's regression
 * inputs; and, when ../shared holds it, the real GloVe 6B 50d file with a
 * round trip through the binary vocabulary.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "replay.h"
#include "attnkv/vecload.h"
#include "attnkv/vocab.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/akv-test-vecload-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- helpers ----------------------------------------------------------- */

/* The outcome of one load: return code, table, stats, error and warnings. */
struct res {
    int r;
    struct akv_vectab t;
    struct akv_vecload_stats st;
    char err[512];
    char *diag;
    size_t diag_len;
};

static void res_fini(struct res *x)
{
    akv_vectab_fini(&x->t);
    free(x->diag);
    x->diag = NULL;
}

static struct akv_vecload_opts opts_fmt(enum akv_vecfmt f)
{
    struct akv_vecload_opts o = {0};
    o.format = f;
    return o;
}

static void load_mem_opts(struct res *x, const void *buf, size_t len, struct akv_vecload_opts o)
{
    FILE *diag = open_memstream(&x->diag, &x->diag_len);

    ck_assert_ptr_nonnull(diag);
    o.diag = diag;
    x->r = akv_vecload_mem(buf, len, "t.vec", &o, &x->t, &x->st, x->err, sizeof(x->err));
    fclose(diag);
}

static void load_mem(struct res *x, const char *text, enum akv_vecfmt f)
{
    load_mem_opts(x, text, strlen(text), opts_fmt(f));
}

static void load_file(struct res *x, const char *path, enum akv_vecfmt f)
{
    struct akv_vecload_opts o = opts_fmt(f);
    FILE *diag = open_memstream(&x->diag, &x->diag_len);

    ck_assert_ptr_nonnull(diag);
    o.diag = diag;
    x->r = akv_vecload_file(path, &o, &x->t, &x->st, x->err, sizeof(x->err));
    fclose(diag);
}

static char *path_in_dir(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static const char *write_plain(const char *name, const void *buf, size_t len)
{
    const char *p = path_in_dir(name);
    FILE *f = fopen(p, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return p;
}

static const char *write_gz(const char *name, const void *buf, size_t len)
{
    const char *p = path_in_dir(name);
    gzFile gz = gzopen(p, "wb");

    ck_assert_ptr_nonnull(gz);
    if (len > 0)
        ck_assert_int_eq(gzwrite(gz, buf, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(gz), Z_OK);
    return p;
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, k;

    ck_assert_ptr_nonnull(f);
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    *len = n;
    return buf;
}

/* gzip bytes of buf, made with gzwrite through a file. */
static void *gz_bytes(const void *buf, size_t len, size_t *out_len)
{
    return slurp(write_gz("tmp.gz", buf, len), out_len);
}

static int has_line(const struct res *x, const char *line)
{
    return x->diag && strstr(x->diag, line) != NULL;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

static void put_f32(char **p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++)
        *(*p)++ = (char)(u >> (8 * i));
}

/* A word2vec binary file of the SAMPLE rows. nl_mode: 0 '\n' after each
 * row, 1 '\n' before each word, 2 no newlines at all. */
static size_t make_w2v_bin(char *out, const char *header, int nl_mode);

static const char *const sample_words[] = {"the", "école", "of"};
static const float sample_vecs[3][3] = {
    {0.418f, 0.24968f, -0.41242f},
    {0.013441f, 0.23682f, -0.16899f},
    {0.15164f, 0.30177f, -0.16763f},
};
static const char glove_text[] = "the 0.418 0.24968 -0.41242\n"
                                 "école 0.013441 0.23682 -0.16899\n"
                                 "of 0.15164 0.30177 -0.16763\n";
static const char w2v_text[] = "3 3\n"
                               "the 0.418 0.24968 -0.41242\n"
                               "école 0.013441 0.23682 -0.16899\n"
                               "of 0.15164 0.30177 -0.16763\n";

static size_t make_w2v_bin(char *out, const char *header, int nl_mode)
{
    char *p = out;

    p += sprintf(p, "%s", header);
    for (int i = 0; i < 3; i++) {
        if (nl_mode == 1)
            *p++ = '\n';
        p += sprintf(p, "%s ", sample_words[i]);
        for (int d = 0; d < 3; d++)
            put_f32(&p, sample_vecs[i][d]);
        if (nl_mode == 0)
            *p++ = '\n';
    }
    return (size_t)(p - out);
}

static void check_sample(const struct res *x, enum akv_vecfmt f, int gzip)
{
    ck_assert_msg(x->r == 0, "load failed: %s", x->err);
    ck_assert_int_eq(x->st.format, f);
    ck_assert_int_eq(x->st.gzip, gzip);
    ck_assert_uint_eq(x->t.dim, 3);
    ck_assert_uint_eq(x->t.count, 3);
    ck_assert_uint_eq(x->st.rows, 3);
    ck_assert_uint_eq(x->st.kept, 3);
    for (int k = 0; k < AKV_SKIP_NKINDS; k++)
        ck_assert_uint_eq(x->st.skipped[k], 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(akv_vectab_word(&x->t, (size_t)i), sample_words[i]);
        ck_assert_mem_eq(akv_vectab_vec(&x->t, (size_t)i), sample_vecs[i], 3 * sizeof(float));
    }
    ck_assert_uint_eq(x->diag_len, 0);
}

/* ---- formats ----------------------------------------------------------- */

START_TEST(test_glove_plain_and_gzip)
{
    struct res x = {0};
    void *gz;
    size_t gzlen;

    load_mem(&x, glove_text, AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_GLOVE, 0);
    ck_assert_uint_eq(x.st.bytes_in, strlen(glove_text));
    res_fini(&x);

    load_file(&x, write_plain("g.txt", glove_text, strlen(glove_text)), AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_GLOVE, 0);
    res_fini(&x);

    load_file(&x, write_gz("g.txt.gz", glove_text, strlen(glove_text)), AKV_VECFMT_GLOVE);
    check_sample(&x, AKV_VECFMT_GLOVE, 1);
    res_fini(&x);

    gz = gz_bytes(glove_text, strlen(glove_text), &gzlen);
    load_mem_opts(&x, gz, gzlen, opts_fmt(AKV_VECFMT_AUTO));
    check_sample(&x, AKV_VECFMT_GLOVE, 1);
    ck_assert_uint_eq(x.st.bytes_in, gzlen);
    res_fini(&x);
    free(gz);
}
END_TEST

START_TEST(test_w2v_text_plain_and_gzip)
{
    struct res x = {0};
    void *gz;
    size_t gzlen;

    load_mem(&x, w2v_text, AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_W2V_TEXT, 0);
    res_fini(&x);

    load_mem(&x, w2v_text, AKV_VECFMT_W2V_TEXT);
    check_sample(&x, AKV_VECFMT_W2V_TEXT, 0);
    res_fini(&x);

    load_file(&x, write_gz("w.txt.gz", w2v_text, strlen(w2v_text)), AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_W2V_TEXT, 1);
    res_fini(&x);

    load_file(&x, write_plain("w.txt", w2v_text, strlen(w2v_text)), AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_W2V_TEXT, 0);
    res_fini(&x);

    gz = gz_bytes(w2v_text, strlen(w2v_text), &gzlen);
    load_mem_opts(&x, gz, gzlen, opts_fmt(AKV_VECFMT_AUTO));
    check_sample(&x, AKV_VECFMT_W2V_TEXT, 1);
    res_fini(&x);
    free(gz);
}
END_TEST

START_TEST(test_w2v_binary_plain_and_gzip)
{
    struct res x = {0};
    char bin[256];
    void *gz;
    size_t len, gzlen;

    for (int nl = 0; nl < 3; nl++) {
        len = make_w2v_bin(bin, "3 3\n", nl);
        load_mem_opts(&x, bin, len, opts_fmt(AKV_VECFMT_AUTO));
        check_sample(&x, AKV_VECFMT_W2V_BIN, 0);
        res_fini(&x);

        load_mem_opts(&x, bin, len, opts_fmt(AKV_VECFMT_W2V_BIN));
        check_sample(&x, AKV_VECFMT_W2V_BIN, 0);
        res_fini(&x);

        load_file(&x, write_plain("w.bin", bin, len), AKV_VECFMT_AUTO);
        check_sample(&x, AKV_VECFMT_W2V_BIN, 0);
        res_fini(&x);

        load_file(&x, write_gz("w.bin.gz", bin, len), AKV_VECFMT_AUTO);
        check_sample(&x, AKV_VECFMT_W2V_BIN, 1);
        res_fini(&x);

        gz = gz_bytes(bin, len, &gzlen);
        load_mem_opts(&x, gz, gzlen, opts_fmt(AKV_VECFMT_AUTO));
        check_sample(&x, AKV_VECFMT_W2V_BIN, 1);
        res_fini(&x);
        free(gz);
    }
}
END_TEST

/* Two gzip members back to back read as one stream, as gzip -d reads them. */
START_TEST(test_gzip_members)
{
    struct res x = {0};
    void *a, *b;
    size_t alen, blen, half = strlen(glove_text) / 2;
    char *both;

    a = gz_bytes(glove_text, half, &alen);
    b = gz_bytes(glove_text + half, strlen(glove_text) - half, &blen);
    both = malloc(alen + blen);
    ck_assert_ptr_nonnull(both);
    memcpy(both, a, alen);
    memcpy(both + alen, b, blen);
    load_mem_opts(&x, both, alen + blen, opts_fmt(AKV_VECFMT_AUTO));
    check_sample(&x, AKV_VECFMT_GLOVE, 1);
    res_fini(&x);
    load_file(&x, write_plain("two.gz", both, alen + blen), AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_GLOVE, 1);
    res_fini(&x);
    free(a);
    free(b);
    free(both);
}
END_TEST

START_TEST(test_detection)
{
    struct res x = {0};

    /* A header of two integers means word2vec. */
    load_mem(&x, "2 1\na 0.5\nb 1.5\n", AKV_VECFMT_AUTO);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_int_eq(x.st.format, AKV_VECFMT_W2V_TEXT);
    ck_assert_uint_eq(x.t.count, 2);
    res_fini(&x);

    /* A first row with a non-integer is GloVe even if it has two fields. */
    load_mem(&x, "1 0.5\n2 1.5\n", AKV_VECFMT_AUTO);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_int_eq(x.st.format, AKV_VECFMT_GLOVE);
    ck_assert_uint_eq(x.t.dim, 1);
    ck_assert_str_eq(akv_vectab_word(&x.t, 1), "2");
    res_fini(&x);

    /* Forcing GloVe on a word2vec file reads the header as a row. */
    load_mem(&x, "2 1\na 0.5\nb 1.5\n", AKV_VECFMT_GLOVE);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_int_eq(x.st.format, AKV_VECFMT_GLOVE);
    ck_assert_uint_eq(x.t.count, 3);
    res_fini(&x);

    /* Forcing word2vec on a GloVe file is an error on line 1. */
    load_mem(&x, glove_text, AKV_VECFMT_W2V_TEXT);
    ck_assert_int_eq(x.r, -EINVAL);
    ck_assert_str_eq(x.err, "t.vec:1: not a word2vec header (\"count dim\")");
    res_fini(&x);
    load_mem(&x, glove_text, AKV_VECFMT_W2V_BIN);
    ck_assert_int_eq(x.r, -EINVAL);
    res_fini(&x);

    /* Short text rows followed by a UTF-8 word stay text: bytes after the
     * first row's newline count as evidence only if they are control bytes. */
    load_mem(&x, "2 4\na 1 2 3 4\nécole 5 6 7 8\n", AKV_VECFMT_AUTO);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_int_eq(x.st.format, AKV_VECFMT_W2V_TEXT);
    ck_assert_str_eq(akv_vectab_word(&x.t, 1), "école");
    res_fini(&x);

    ck_assert_str_eq(akv_vecfmt_name(AKV_VECFMT_AUTO), "auto");
    ck_assert_str_eq(akv_vecfmt_name(AKV_VECFMT_GLOVE), "glove");
    ck_assert_str_eq(akv_vecfmt_name(AKV_VECFMT_W2V_TEXT), "word2vec-text");
    ck_assert_str_eq(akv_vecfmt_name(AKV_VECFMT_W2V_BIN), "word2vec-binary");
}
END_TEST

/* ---- line ends and separators ----------------------------------------- */

START_TEST(test_line_ends)
{
    struct res x = {0};

    load_mem(&x,
             "the 0.418 0.24968 -0.41242\r\n"
             "école 0.013441 0.23682 -0.16899\r\n"
             "of 0.15164 0.30177 -0.16763\r\n",
             AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_GLOVE, 0);
    res_fini(&x);

    load_mem(&x,
             "3 3\r\n"
             "the 0.418 0.24968 -0.41242\r\n"
             "école 0.013441 0.23682 -0.16899\r\n"
             "of 0.15164 0.30177 -0.16763",
             AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_W2V_TEXT, 0);
    res_fini(&x);

    /* No final newline, tabs, runs of spaces, trailing blanks. */
    load_mem(&x,
             "the\t0.418  0.24968\t -0.41242 \n"
             "école 0.013441 0.23682 -0.16899\t\n"
             "of   0.15164 0.30177 -0.16763",
             AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_GLOVE, 0);
    res_fini(&x);

    /* A final line without '\n' and ending in "\r". */
    load_mem(&x,
             "the 0.418 0.24968 -0.41242\n"
             "école 0.013441 0.23682 -0.16899\n"
             "of 0.15164 0.30177 -0.16763\r",
             AKV_VECFMT_AUTO);
    check_sample(&x, AKV_VECFMT_GLOVE, 0);
    res_fini(&x);
}
END_TEST

/* ---- skipped rows ------------------------------------------------------ */

START_TEST(test_skipped_rows)
{
    static const char text[] = "good 1 2 3\n"        /* 1 */
                               "short 1 2\n"         /* 2 ragged */
                               "long 1 2 3 4\n"      /* 3 ragged */
                               "new york 1 2 3\n"    /* 4 ragged */
                               "word 1 abc 3\n"      /* 5 not a number */
                               "word 1 2 3x\n"       /* 6 not a number */
                               "nan 1 nan 3\n"       /* 7 not finite */
                               "inf -inf 2 3\n"      /* 8 not finite */
                               "big 1e39 2 3\n"      /* 9 not finite */
                               "\xff\xfe 1 2 3\n"    /* 10 bad word */
                               " 1 2 3\n"            /* 11 empty word */
                               "nul\0x 1 2 3\n"      /* 12 NUL in word */
                               "good 4 5 6\n"        /* 13 duplicate */
                               "\n"                  /* 14 ragged (empty) */
                               "tiny 1e-40 -0 .5\n"; /* 15 kept */
    struct res x = {0};

    load_mem_opts(&x, text, sizeof(text) - 1, opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.st.rows, 15);
    ck_assert_uint_eq(x.st.kept, 2);
    ck_assert_uint_eq(x.t.count, 2);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_RAGGED], 4);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_NOT_NUMBER], 2);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_NONFINITE], 3);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_BAD_WORD], 3);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_DUPLICATE], 1);
    ck_assert_str_eq(akv_vectab_word(&x.t, 0), "good");
    ck_assert(akv_vectab_vec(&x.t, 0)[0] == 1.0f);
    ck_assert_str_eq(akv_vectab_word(&x.t, 1), "tiny");
    ck_assert(akv_vectab_vec(&x.t, 1)[0] == strtof("1e-40", NULL));
    ck_assert(signbit(akv_vectab_vec(&x.t, 1)[1]));
    ck_assert(akv_vectab_vec(&x.t, 1)[2] == 0.5f);

    ck_assert(has_line(&x, "t.vec:2: ragged row: 2 values, expected 3\n"));
    ck_assert(has_line(&x, "t.vec:3: ragged row: 4 values, expected 3\n"));
    ck_assert(has_line(&x, "t.vec:4: ragged row: 4 values, expected 3\n"));
    ck_assert(has_line(&x, "t.vec:5: value 2 is not a number: 'abc'\n"));
    ck_assert(has_line(&x, "t.vec:6: value 3 is not a number: '3x'\n"));
    ck_assert(has_line(&x, "t.vec:7: value 2 is not finite (nan)\n"));
    ck_assert(has_line(&x, "t.vec:8: value 1 is not finite (-inf)\n"));
    ck_assert(has_line(&x, "t.vec:9: value 1 is not finite (inf)\n"));
    ck_assert(has_line(&x, "t.vec:10: word is not valid UTF-8: '\\xff\\xfe'\n"));
    ck_assert(has_line(&x, "t.vec:11: empty word: ''\n"));
    ck_assert(has_line(&x, "t.vec:12: word contains a NUL byte: 'nul\\x00x'\n"));
    ck_assert(has_line(&x, "t.vec:13: duplicate word 'good' (the first one is kept)\n"));
    ck_assert(has_line(&x, "t.vec:14: ragged row: 0 values, expected 3\n"));
    ck_assert_uint_eq(count_lines(x.diag), 13);
    res_fini(&x);
}
END_TEST

START_TEST(test_overlong_word)
{
    char *text = malloc(3 * AKV_WORD_MAX + 100), *p = text;
    struct res x = {0};

    ck_assert_ptr_nonnull(text);
    p += sprintf(p, "a 1\n");
    memset(p, 'w', AKV_WORD_MAX + 1);
    p += AKV_WORD_MAX + 1;
    p += sprintf(p, " 2\n");
    memset(p, 'v', AKV_WORD_MAX);
    p += AKV_WORD_MAX;
    p += sprintf(p, " 3\n");
    load_mem_opts(&x, text, (size_t)(p - text), opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, 2);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_BAD_WORD], 1);
    ck_assert(has_line(&x, "t.vec:2: word longer than 1024 bytes: 'wwww"));
    ck_assert_uint_eq(strlen(akv_vectab_word(&x.t, 1)), AKV_WORD_MAX);
    res_fini(&x);
    free(text);
}
END_TEST

/* A row over the 1 MiB row limit is skipped without being kept in memory,
 * and the rows after it are read normally. */
START_TEST(test_huge_row)
{
    size_t big = (3u << 20);
    char *text = malloc(big + 100), *p = text;
    struct res x = {0};

    ck_assert_ptr_nonnull(text);
    p += sprintf(p, "a 1\nb ");
    for (size_t i = 0; i < big / 2; i++) {
        *p++ = '1';
        *p++ = ' ';
    }
    p += sprintf(p, "\nc 3\n");
    load_mem_opts(&x, text, (size_t)(p - text), opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, 2);
    ck_assert_uint_eq(x.st.rows, 3);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_RAGGED], 1);
    ck_assert(has_line(&x, "t.vec:2: ragged row: longer than 1048576 bytes\n"));
    ck_assert_str_eq(akv_vectab_word(&x.t, 1), "c");
    res_fini(&x);

    /* The same at the very end, without a final newline. */
    p -= 5;
    load_mem_opts(&x, text, (size_t)(p - text), opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, 1);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_RAGGED], 1);
    res_fini(&x);

    /* As the first row it leaves no dimension. */
    load_mem_opts(&x, text + 4, (size_t)(p - text) - 4, opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_int_eq(x.r, -EINVAL);
    ck_assert_str_eq(x.err, "t.vec:1: the first row is longer than 1048576 bytes");
    res_fini(&x);
    free(text);
}
END_TEST

START_TEST(test_w2v_binary_skips)
{
    char bin[512], *p = bin;
    struct res x = {0};

    p += sprintf(p, "4 2\n");
    p += sprintf(p, "ok ");
    put_f32(&p, 1.0f);
    put_f32(&p, 2.0f);
    p += sprintf(p, "\nnan ");
    put_f32(&p, NAN);
    put_f32(&p, 2.0f);
    p += sprintf(p, "\n\xc3( ");
    put_f32(&p, 1.0f);
    put_f32(&p, 2.0f);
    p += sprintf(p, "\nok ");
    put_f32(&p, 3.0f);
    put_f32(&p, -INFINITY);
    *p++ = '\n';
    load_mem_opts(&x, bin, (size_t)(p - bin), opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_int_eq(x.st.format, AKV_VECFMT_W2V_BIN);
    ck_assert_uint_eq(x.t.count, 1);
    ck_assert_uint_eq(x.st.rows, 4);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_NONFINITE], 2);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_BAD_WORD], 1);
    ck_assert(has_line(&x, "t.vec:3: value 1 is not finite (nan)\n"));
    ck_assert(has_line(&x, "t.vec:4: word is not valid UTF-8: '\\xc3('\n"));
    ck_assert(has_line(&x, "t.vec:5: value 2 is not finite (-inf)\n"));
    res_fini(&x);

    /* A duplicate in binary. */
    p = bin;
    p += sprintf(p, "2 1\n");
    p += sprintf(p, "ok ");
    put_f32(&p, 1.0f);
    p += sprintf(p, "ok ");
    put_f32(&p, 2.0f);
    load_mem_opts(&x, bin, (size_t)(p - bin), opts_fmt(AKV_VECFMT_W2V_BIN));
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_DUPLICATE], 1);
    ck_assert(has_line(&x, "t.vec:3: duplicate word 'ok' (the first one is kept)\n"));
    ck_assert(akv_vectab_vec(&x.t, 0)[0] == 1.0f);
    res_fini(&x);
}
END_TEST

START_TEST(test_diag_quota)
{
    struct akv_vecload_opts o = opts_fmt(AKV_VECFMT_AUTO);
    const char *text = "a 1 2\nb 1\nc 1\nd 1\ne 1\nf x 1\ng x 1\n";
    struct res x = {0};

    o.max_diag_per_kind = 2;
    load_mem_opts(&x, text, strlen(text), o);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_RAGGED], 4);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_NOT_NUMBER], 2);
    ck_assert(has_line(&x, "t.vec:2: ragged"));
    ck_assert(has_line(&x, "t.vec:3: ragged"));
    ck_assert(!has_line(&x, "t.vec:4:"));
    ck_assert(!has_line(&x, "t.vec:5:"));
    ck_assert(has_line(&x, "t.vec:7: value 1 is not a number: 'x'"));
    ck_assert_uint_eq(count_lines(x.diag), 4);
    res_fini(&x);

    /* Without a diag stream nothing is printed, and everything is counted. */
    o = opts_fmt(AKV_VECFMT_AUTO);
    ck_assert_int_eq(
        akv_vecload_mem(text, strlen(text), NULL, &o, &x.t, &x.st, x.err, sizeof(x.err)), 0);
    ck_assert_uint_eq(x.st.skipped[AKV_SKIP_RAGGED], 4);
    akv_vectab_fini(&x.t);

    /* NULL options, stats and error buffer are allowed. */
    ck_assert_int_eq(akv_vecload_mem(text, strlen(text), NULL, NULL, &x.t, NULL, NULL, 0), 0);
    ck_assert_uint_eq(x.t.count, 1);
    akv_vectab_fini(&x.t);
    ck_assert_int_eq(akv_vecload_mem("", 0, NULL, NULL, &x.t, NULL, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_max_bad)
{
    struct akv_vecload_opts o = opts_fmt(AKV_VECFMT_AUTO);
    const char *text = "a 1 2\nb 1\nc 3 4\nd x 1\ne 5 6\n";
    struct res x = {0};

    o.max_bad = 2;
    load_mem_opts(&x, text, strlen(text), o);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, 3);
    res_fini(&x);

    o.max_bad = 1;
    load_mem_opts(&x, text, strlen(text), o);
    ck_assert_int_eq(x.r, -EINVAL);
    ck_assert_str_eq(x.err, "t.vec:4: too many malformed rows (2, the limit is 1)");
    ck_assert_uint_eq(x.t.count, 0);
    ck_assert_ptr_null(x.t.words);
    res_fini(&x);
}
END_TEST

/* ---- loads that stop --------------------------------------------------- */

static void expect_error(const void *buf, size_t len, enum akv_vecfmt f, const char *err)
{
    struct res x = {0};
    struct akv_vectab zero;

    load_mem_opts(&x, buf, len, opts_fmt(f));
    ck_assert_msg(x.r < 0, "expected '%s', but the load succeeded", err);
    ck_assert_msg(strcmp(x.err, err) == 0, "got '%s', expected '%s'", x.err, err);
    /* A failed load leaves nothing to free. */
    memset(&zero, 0, sizeof(zero));
    ck_assert_mem_eq(&x.t, &zero, sizeof(zero));
    res_fini(&x);
}

static void expect_error_text(const char *text, const char *err)
{
    expect_error(text, strlen(text), AKV_VECFMT_AUTO, err);
}

START_TEST(test_errors)
{
    char *big, *p;
    void *gz;
    size_t gzlen;

    expect_error_text("", "t.vec:1: empty input");
    gz = gz_bytes("", 0, &gzlen);
    expect_error(gz, gzlen, AKV_VECFMT_AUTO, "t.vec:1: empty input");
    free(gz);
    expect_error_text("word\nb 1\n", "t.vec:1: no values after the first word, so no dimension");
    expect_error_text("word 1 x 3\nb 1 2 3\n",
                      "t.vec:1: cannot read a dimension from the first row: 'x' is not a number");
    expect_error_text("3 5000\n", "t.vec:1: word2vec header: dimension 5000 is not in 1..4096");
    expect_error_text("3 0\n", "t.vec:1: word2vec header: dimension 0 is not in 1..4096");
    expect_error_text("3 99999999999999999999999\n",
                      "t.vec:1: word2vec header: a number does not fit in 64 bits");
    expect_error_text("2 3\nw 1 2\nv 1 2 3\n",
                      "t.vec:2: the word2vec header says dim 3 but the first row has 2 values");
    expect_error_text("2 3\nw 1 2 3 4 5\n",
                      "t.vec:2: the word2vec header says dim 3 but the first row has more "
                      "than 3 values");
    expect_error_text("1 2\n", "t.vec:1: no usable rows (0 skipped)");
    expect_error_text("a nan\nb\nc x\n", "t.vec:3: no usable rows (3 skipped)");
    expect_error_text("a nan\n", "t.vec:1: no usable rows (1 skipped)");

    /* A dimension above AKV_DIM_MAX read from a GloVe row. */
    big = malloc(2 * (AKV_DIM_MAX + 1) + 8);
    ck_assert_ptr_nonnull(big);
    p = big;
    *p++ = 'w';
    for (int i = 0; i <= AKV_DIM_MAX; i++) {
        *p++ = ' ';
        *p++ = '1';
    }
    *p = '\0';
    expect_error_text(big, "t.vec:1: the first row has more than 4096 values (AKV_DIM_MAX)");
    free(big);

    /* An unknown format value. */
    expect_error("a 1\n", 4, (enum akv_vecfmt)7, "t.vec:1: unknown format 7");
}
END_TEST

START_TEST(test_w2v_counts)
{
    struct res x = {0};
    char bin[256];
    size_t len;

    /* Text: a row count that disagrees with the header is only a warning. */
    load_mem(&x, "5 1\na 1\nb 2\n", AKV_VECFMT_AUTO);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, 2);
    ck_assert(has_line(&x, "t.vec:1: the word2vec header announced 5 rows but the file has 2\n"));
    res_fini(&x);
    load_mem(&x, "1 1\na 1\nb 2\n", AKV_VECFMT_AUTO);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, 2);
    ck_assert(has_line(&x, "t.vec:1: the word2vec header announced 1 rows but the file has 2\n"));
    res_fini(&x);

    /* Binary: fewer rows than announced stops the load. */
    len = make_w2v_bin(bin, "4 3\n", 0);
    expect_error(bin, len, AKV_VECFMT_AUTO,
                 "t.vec:5: word2vec binary data cut short: the header announced 4 rows, "
                 "3 are complete");
    /* Cut inside a vector, then inside a word. */
    expect_error(bin, len - 3, AKV_VECFMT_AUTO,
                 "t.vec:4: word2vec binary data cut short: the header announced 4 rows, "
                 "2 are complete");
    len = make_w2v_bin(bin, "3 3\n", 0);
    expect_error(bin, len - 14, AKV_VECFMT_W2V_BIN,
                 "t.vec:4: word2vec binary data cut short: the header announced 3 rows, "
                 "2 are complete");

    /* More data than announced is ignored, with a warning. */
    len = make_w2v_bin(bin, "2 3\n", 0);
    load_mem_opts(&x, bin, len, opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, 2);
    ck_assert(has_line(&x, "t.vec:4: data after the 2 rows the word2vec header announced is "
                           "ignored\n"));
    res_fini(&x);
}
END_TEST

START_TEST(test_gzip_damage)
{
    struct res x = {0};
    char *text = malloc(400000), *p = text;
    unsigned char *gz;
    size_t gzlen, len;

    ck_assert_ptr_nonnull(text);
    for (int i = 0; i < 10000; i++)
        p += sprintf(p, "w%d %d.25 -%d.5\n", i, i, i);
    len = (size_t)(p - text);
    gz = gz_bytes(text, len, &gzlen);

    /* Every way of cutting the stream is reported, never read as the end. */
    for (size_t cut = 20; cut < gzlen; cut += gzlen / 7) {
        load_mem_opts(&x, gz, cut, opts_fmt(AKV_VECFMT_AUTO));
        ck_assert_int_eq(x.r, -EINVAL);
        ck_assert_msg(strstr(x.err, ": gzip data is cut short"), "%s", x.err);
        res_fini(&x);
        load_file(&x, write_plain("cut.gz", gz, cut), AKV_VECFMT_AUTO);
        ck_assert_int_eq(x.r, -EINVAL);
        ck_assert_msg(strstr(x.err, ": gzip data is cut short"), "%s", x.err);
        res_fini(&x);
    }
    /* A late cut is reported near the line it cuts, not at the start. */
    load_mem_opts(&x, gz, gzlen - 100, opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_int_eq(x.r, -EINVAL);
    ck_assert_msg(strtoul(x.err + strlen("t.vec:"), NULL, 10) > 9000, "%s", x.err);
    res_fini(&x);

    /* A damaged checksum. */
    gz[gzlen - 6] ^= 0x55;
    load_mem_opts(&x, gz, gzlen, opts_fmt(AKV_VECFMT_AUTO));
    ck_assert_int_eq(x.r, -EINVAL);
    ck_assert_msg(strstr(x.err, "gzip data does not inflate: incorrect data check"), "%s", x.err);
    res_fini(&x);
    load_file(&x, write_plain("bad.gz", gz, gzlen), AKV_VECFMT_AUTO);
    ck_assert_int_eq(x.r, -EINVAL);
    ck_assert_msg(strstr(x.err, "bad.gz:") && strstr(x.err, "gzip data does not inflate: "
                                                            "incorrect data check"),
                  "%s", x.err);
    res_fini(&x);
    free(gz);
    free(text);
}
END_TEST

START_TEST(test_file_errors)
{
    struct res x = {0};
    char expect[300];

    load_file(&x, path_in_dir("missing"), AKV_VECFMT_AUTO);
    ck_assert_int_eq(x.r, -ENOENT);
    snprintf(expect, sizeof(expect), "%s/missing: No such file or directory", dir);
    ck_assert_str_eq(x.err, expect);
    res_fini(&x);

    load_file(&x, dir, AKV_VECFMT_AUTO);
    ck_assert_int_eq(x.r, -EISDIR);
    res_fini(&x);

    load_file(&x, write_plain("empty", "", 0), AKV_VECFMT_AUTO);
    ck_assert_int_eq(x.r, -EINVAL);
    snprintf(expect, sizeof(expect), "%s/empty:1: empty input", dir);
    ck_assert_str_eq(x.err, expect);
    res_fini(&x);
}
END_TEST

/* Every prefix of small valid files loads or fails cleanly (ASan watches). */
START_TEST(test_truncations)
{
    char bin[256], *buf;
    size_t len;
    struct res x = {0};
    const char *texts[] = {glove_text, w2v_text};

    len = make_w2v_bin(bin, "3 3\n", 0);
    for (size_t n = 0; n <= len; n++) {
        /* An exact copy on the heap makes ASan catch any read past the end. */
        buf = malloc(n ? n : 1);
        memcpy(buf, bin, n);
        load_mem_opts(&x, buf, n, opts_fmt(AKV_VECFMT_AUTO));
        ck_assert(x.r == 0 || x.err[0] != '\0');
        res_fini(&x);
        free(buf);
    }
    for (size_t i = 0; i < 2; i++) {
        for (size_t n = 0; n <= strlen(texts[i]); n++) {
            buf = malloc(n ? n : 1);
            memcpy(buf, texts[i], n);
            load_mem_opts(&x, buf, n, opts_fmt(AKV_VECFMT_AUTO));
            ck_assert(x.r == 0 || x.err[0] != '\0');
            res_fini(&x);
            free(buf);
        }
    }
}
END_TEST

struct prog {
    unsigned calls;
    uint64_t last_rows;
    uint64_t total;
};

static void on_progress(void *arg, uint64_t rows, uint64_t done, uint64_t total)
{
    struct prog *p = arg;
    ck_assert_uint_ge(rows, p->last_rows);
    ck_assert_uint_le(done, total);
    p->calls++;
    p->last_rows = rows;
    p->total = total;
}

START_TEST(test_progress)
{
    enum { N = 200000 };
    char *text = malloc((size_t)N * 16), *p = text;
    struct akv_vecload_opts o = opts_fmt(AKV_VECFMT_AUTO);
    struct prog pr = {0};
    struct res x = {0};

    ck_assert_ptr_nonnull(text);
    for (int i = 0; i < N; i++)
        p += sprintf(p, "w%d %d\n", i, i % 100);
    o.progress = on_progress;
    o.progress_arg = &pr;
    load_mem_opts(&x, text, (size_t)(p - text), o);
    ck_assert_msg(x.r == 0, "%s", x.err);
    ck_assert_uint_eq(x.t.count, N);
    ck_assert_uint_ge(pr.calls, 3);
    ck_assert_uint_eq(pr.last_rows, N);
    ck_assert_uint_eq(pr.total, (uint64_t)(p - text));
    res_fini(&x);
    free(text);
}
END_TEST

/* ---- the vocabulary round trip ----------------------------------------- */

static void round_trip(const struct akv_vectab *t)
{
    struct akv_vocab *v = NULL, *w = NULL;
    const char *path = path_in_dir("rt.akv");
    char err[512];

    ck_assert_msg(akv_vocab_from_table(&v, t, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(akv_vocab_write(t, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(akv_vocab_open(&w, path, AKV_VOCAB_VERIFY, err, sizeof(err)) == 0, "%s", err);
    for (int k = 0; k < 2; k++) {
        const struct akv_vocab *u = k ? w : v;
        ck_assert_uint_eq(akv_vocab_count(u), t->count);
        ck_assert_uint_eq(akv_vocab_dim(u), t->dim);
        for (size_t i = 0; i < t->count; i++) {
            size_t len;
            const char *word = akv_vocab_word(u, (uint32_t)i, &len);
            ck_assert_uint_eq(len, strlen(akv_vectab_word(t, i)));
            ck_assert_mem_eq(word, akv_vectab_word(t, i), len + 1);
        }
        ck_assert_mem_eq(akv_vocab_matrix(u), t->vecs, t->count * t->dim * sizeof(float));
    }
    akv_vocab_destroy(v);
    akv_vocab_destroy(w);
}

START_TEST(test_vocab_round_trip)
{
    struct res x = {0};

    load_mem(&x, glove_text, AKV_VECFMT_AUTO);
    ck_assert_msg(x.r == 0, "%s", x.err);
    round_trip(&x.t);
    res_fini(&x);
}
END_TEST

/* The official GloVe 6B 50d file, when the shared data folder is there. */
START_TEST(test_real_glove)
{
    const char *root = getenv("AKV_SOURCE_ROOT");
    struct akv_vecload_opts o = opts_fmt(AKV_VECFMT_AUTO);
    struct timespec a, b;
    struct res x = {0};
    char path[4096];

    if (!root)
        root = ".";
    snprintf(path, sizeof(path), "%s/../shared/data/glove/glove.6B.50d.txt.gz", root);
    if (access(path, R_OK) != 0) {
        printf("test_real_glove: %s not found; passing without it\n", path);
        return;
    }
    o.diag = stderr;
    clock_gettime(CLOCK_MONOTONIC, &a);
    x.r = akv_vecload_file(path, &o, &x.t, &x.st, x.err, sizeof(x.err));
    clock_gettime(CLOCK_MONOTONIC, &b);
    ck_assert_msg(x.r == 0, "%s", x.err);
    printf("test_real_glove: loaded %zu words in %.2f s\n", x.t.count,
           (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    ck_assert_uint_eq(x.t.count, 400000);
    ck_assert_uint_eq(x.t.dim, 50);
    ck_assert_int_eq(x.st.format, AKV_VECFMT_GLOVE);
    ck_assert_int_eq(x.st.gzip, 1);
    ck_assert_uint_eq(x.st.rows, 400000);
    for (int k = 0; k < AKV_SKIP_NKINDS; k++)
        ck_assert_uint_eq(x.st.skipped[k], 0);
    ck_assert_str_eq(akv_vectab_word(&x.t, 0), "the");
    ck_assert(akv_vectab_vec(&x.t, 0)[0] == 0.418f);
    round_trip(&x.t);
    akv_vectab_fini(&x.t);
}
END_TEST

/* ---- fuzzer regressions ------------------------------------------------ */

/* Replays one input in every format, as the fuzzer does with its first
 * byte; each must load or fail with a message. */
static void replay_vecload(const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    for (int f = AKV_VECFMT_AUTO; f <= AKV_VECFMT_W2V_BIN; f++) {
        struct res x = {0};
        load_mem_opts(&x, data, len, opts_fmt((enum akv_vecfmt)f));
        ck_assert(x.r == 0 || x.err[0] != '\0');
        res_fini(&x);
    }
}

START_TEST(test_fuzz_regressions)
{
    long n = tu_replay_dir("fuzz/regression/vecload", replay_vecload, NULL);

    printf("test_fuzz_regressions: replayed %ld inputs\n", n < 0 ? 0 : n);
    n = tu_replay_dir("fuzz/corpus/vecload", replay_vecload, NULL);
    printf("test_fuzz_regressions: replayed %ld corpus inputs\n", n < 0 ? 0 : n);
}
END_TEST

static Suite *vecload_suite(void)
{
    Suite *s = suite_create("vecload");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_glove_plain_and_gzip);
    tcase_add_test(tc, test_w2v_text_plain_and_gzip);
    tcase_add_test(tc, test_w2v_binary_plain_and_gzip);
    tcase_add_test(tc, test_gzip_members);
    tcase_add_test(tc, test_detection);
    tcase_add_test(tc, test_line_ends);
    tcase_add_test(tc, test_skipped_rows);
    tcase_add_test(tc, test_overlong_word);
    tcase_add_test(tc, test_huge_row);
    tcase_add_test(tc, test_w2v_binary_skips);
    tcase_add_test(tc, test_diag_quota);
    tcase_add_test(tc, test_max_bad);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_w2v_counts);
    tcase_add_test(tc, test_gzip_damage);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_truncations);
    tcase_add_test(tc, test_progress);
    tcase_add_test(tc, test_vocab_round_trip);
    tcase_add_test(tc, test_real_glove);
    tcase_add_test(tc, test_fuzz_regressions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(vecload_suite());
}
