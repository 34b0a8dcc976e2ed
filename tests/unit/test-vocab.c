/*
 * test-vocab.c - the binary vocabulary format: round trip through a file,
 * lookups (exact, Unicode lowercase, invalid UTF-8), spelling suggestions,
 * and refusal of truncated, corrupt, wrong-version and wrong-endian files.
 */
#include <check.h>

#include "runsuite.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attnkv/vectab.h"
#include "attnkv/vocab.h"
#include "replay.h"
#include "testutil.h"
#include "vocabseal.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/akv-test-vocab-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *words[] = {"the", "rhombus", "shape", "école", "straße", "Berlin", "ab", "ba"};
#define NWORDS (sizeof words / sizeof words[0])

static void fill(struct akv_vectab *t)
{
    ck_assert_int_eq(akv_vectab_init(t, 3), 0);
    for (size_t i = 0; i < NWORDS; i++) {
        float v[3] = {(float)i, (float)i * 0.5f, -1.0f / (float)(i + 1)};
        ck_assert_int_eq(akv_vectab_add(t, words[i], strlen(words[i]), v), 0);
    }
}

static void write_sample(const char *path)
{
    struct akv_vectab t;
    char err[256];
    fill(&t);
    ck_assert_msg(akv_vocab_write(&t, path, err, sizeof err) == 0, "%s", err);
    akv_vectab_fini(&t);
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    void *buf;
    long n;
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
}

START_TEST(test_round_trip)
{
    char path[128], err[256];
    struct akv_vocab *v;
    struct stat st;

    snprintf(path, sizeof path, "%s/v.akv", dir);
    write_sample(path);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg(akv_vocab_open(&v, path, AKV_VOCAB_VERIFY, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(akv_vocab_count(v), NWORDS);
    ck_assert_uint_eq(akv_vocab_dim(v), 3);
    ck_assert_uint_eq(akv_vocab_bytes(v), (size_t)st.st_size);
    ck_assert_uint_eq((uintptr_t)akv_vocab_matrix(v) % 64, 0);
    for (size_t i = 0; i < NWORDS; i++) {
        size_t len;
        const char *w = akv_vocab_word(v, (uint32_t)i, &len);
        const float *x = akv_vocab_vec(v, (uint32_t)i);
        ck_assert_str_eq(w, words[i]);
        ck_assert_uint_eq(len, strlen(words[i]));
        ck_assert(x[0] == (float)i && x[1] == (float)i * 0.5f && x[2] == -1.0f / (float)(i + 1));
        ck_assert_int_eq(akv_vocab_find_exact(v, words[i], len), (int64_t)i);
    }
    ck_assert(akv_vocab_norms(v)[2] > 2.25f && akv_vocab_norms(v)[2] < 2.27f);
    akv_vocab_destroy(v);
    akv_vocab_destroy(NULL);
}
END_TEST

START_TEST(test_lookup_and_case)
{
    struct akv_vectab t;
    struct akv_vocab *v;
    char err[256];

    fill(&t);
    ck_assert_int_eq(akv_vocab_from_table(&v, &t, err, sizeof err), 0);
    akv_vectab_fini(&t);
    ck_assert_int_eq(akv_vocab_find(v, "rhombus", 7), 1);
    ck_assert_int_eq(akv_vocab_find(v, "RHOMBUS", 7), 1);
    ck_assert_int_eq(akv_vocab_find(v, "Rhombus", 7), 1);
    /* Non-ASCII capitals lowercase too. */
    ck_assert_int_eq(akv_vocab_find(v, "ÉCOLE", strlen("ÉCOLE")), 3);
    ck_assert_int_eq(akv_vocab_find(v, "STRASSE", 7), -ENOENT); /* no reverse folding */
    /* An exact cased entry is found as is; its lowercase is not invented. */
    ck_assert_int_eq(akv_vocab_find(v, "Berlin", 6), 5);
    ck_assert_int_eq(akv_vocab_find(v, "berlin", 6), -ENOENT);
    ck_assert_int_eq(akv_vocab_find(v, "", 0), -ENOENT);
    ck_assert_int_eq(akv_vocab_find(v, "rhomb", 5), -ENOENT);
    ck_assert_int_eq(akv_vocab_find(v, "the\0x", 5), -ENOENT);
    ck_assert_int_eq(akv_vocab_find(v, "\xff\xfe", 2), -EINVAL);
    ck_assert_int_eq(akv_vocab_find(v, "\xc3", 1), -EINVAL);
    akv_vocab_destroy(v);
}
END_TEST

START_TEST(test_suggest)
{
    struct akv_vectab t;
    struct akv_vocab *v;
    char err[256];

    fill(&t);
    ck_assert_int_eq(akv_vocab_from_table(&v, &t, err, sizeof err), 0);
    akv_vectab_fini(&t);
    ck_assert_int_eq(akv_vocab_suggest(v, "rhombsu", 7), 1);  /* transposition */
    ck_assert_int_eq(akv_vocab_suggest(v, "rhombu", 6), 1);   /* insertion */
    ck_assert_int_eq(akv_vocab_suggest(v, "rhombuss", 8), 1); /* deletion */
    ck_assert_int_eq(akv_vocab_suggest(v, "SHAPF", 5), 2);    /* substitution, lowercased */
    ck_assert_int_eq(akv_vocab_suggest(v, "tje", 3), 0);
    /* "aa" is one edit from both "ab" (6) and "ba" (7): the lower id wins. */
    ck_assert_int_eq(akv_vocab_suggest(v, "aa", 2), 6);
    ck_assert_int_eq(akv_vocab_suggest(v, "zzzzzz", 6), -ENOENT);
    ck_assert_int_eq(akv_vocab_suggest(v, "\xff", 1), -ENOENT);
    akv_vocab_destroy(v);
}
END_TEST

static void expect_refused(const char *path, const char *needle)
{
    struct akv_vocab *v = NULL;
    char err[512] = "";
    int rc = akv_vocab_open(&v, path, AKV_VOCAB_VERIFY, err, sizeof err);
    ck_assert_msg(rc < 0, "opened a bad file, expected '%s'", needle);
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
    ck_assert_msg(strstr(err, path) != NULL, "message '%s' does not name the file", err);
}

START_TEST(test_refuses_bad_files)
{
    char good[128], bad[128];
    unsigned char *buf;
    size_t len;

    snprintf(good, sizeof good, "%s/good.akv", dir);
    snprintf(bad, sizeof bad, "%s/bad.akv", dir);
    write_sample(good);
    buf = slurp(good, &len);

    /* Every truncation is refused cleanly. */
    for (size_t n = 0; n < len; n++) {
        struct akv_vocab *v = NULL;
        char err[512];
        spit(bad, buf, n);
        ck_assert_int_lt(akv_vocab_open(&v, bad, 0, err, sizeof err), 0);
        ck_assert(strstr(err, "truncated") || strstr(err, "too small"));
    }
    spit(bad, buf, len);
    ck_assert_int_eq(write(open(bad, O_WRONLY | O_APPEND), "x", 1), 1);
    expect_refused(bad, "trailing bytes");

    /* Header fields. */
    buf[0] ^= 1;
    spit(bad, buf, len);
    expect_refused(bad, "not an attnkv vocabulary");
    buf[0] ^= 1;
    buf[8] = 1; /* version 1 files lack the sketch: re-import */
    spit(bad, buf, len);
    expect_refused(bad, "version 1");
    buf[8] = 3;
    spit(bad, buf, len);
    expect_refused(bad, "version 3");
    buf[8] = 2;
    {
        unsigned char o[4];
        memcpy(o, buf + 12, 4);
        buf[12] = o[3], buf[13] = o[2], buf[14] = o[1], buf[15] = o[0];
        spit(bad, buf, len);
        expect_refused(bad, "other byte order");
        memcpy(buf + 12, o, 4);
    }
    buf[16] ^= 0x40; /* count */
    spit(bad, buf, len);
    expect_refused(bad, "corrupt");
    buf[16] ^= 0x40;

    /* Every single-bit flip anywhere is refused with AKV_VOCAB_VERIFY (two
     * checksums cover every byte). Without it, a flip in the header, words
     * or index is still refused; one in the vectors opens, since only the
     * answers can suffer, not the process. */
    uint64_t norms_off;
    memcpy(&norms_off, buf + 88, 8); /* the header's norms_off field */
    ck_assert_uint_lt(norms_off, len);
    for (size_t i = 0; i < len; i++) {
        struct akv_vocab *v = NULL;
        char err[512];
        int rc, plain;
        buf[i] ^= 0x10;
        spit(bad, buf, len);
        rc = akv_vocab_open(&v, bad, AKV_VOCAB_VERIFY, err, sizeof err);
        akv_vocab_destroy(v);
        v = NULL;
        plain = akv_vocab_open(&v, bad, 0, err, sizeof err);
        akv_vocab_destroy(v);
        buf[i] ^= 0x10;
        ck_assert_msg(rc < 0, "a flipped bit at offset %zu went unnoticed", i);
        if (i < norms_off && !(i >= 112 && i < 120)) /* 112: data_checksum */
            ck_assert_msg(plain < 0, "a flipped bit at offset %zu opened", i);
    }

    /* Missing file, directory, empty file. */
    {
        struct akv_vocab *v;
        char err[512], missing[160];
        snprintf(missing, sizeof missing, "%s/missing.akv", dir);
        ck_assert_int_eq(akv_vocab_open(&v, missing, 0, err, sizeof err), -ENOENT);
        ck_assert(strstr(err, missing) != NULL);
        ck_assert_int_lt(akv_vocab_open(&v, dir, 0, err, sizeof err), 0);
        spit(bad, buf, 0);
        expect_refused(bad, "too small");
    }
    free(buf);
}
END_TEST

/* Header offsets and sizes chosen to wrap around 2^64, re-sealed so that
 * the section checks, not the checksums, must refuse them. rot_off =
 * 2^64 - 64 used to fault at open; a matrix_off that wraps together with a
 * larger dim used to open and fault at the first ranking. */
START_TEST(test_refuses_wrapping_sections)
{
    static const struct {
        unsigned field;
        uint64_t value; /* 0: computed below */
    } cases[] = {
        {VS_ROT_OFF, UINT64_MAX - 63},      {VS_ROT_OFF, UINT64_MAX - 127},
        {VS_MATRIX_OFF, UINT64_MAX - 63},   {VS_MATRIX_OFF, 0},
        {VS_TAIL_OFF, UINT64_MAX - 63},     {VS_SKETCH_OFF, UINT64_MAX - 63},
        {VS_NORMS_OFF, UINT64_MAX - 3},     {VS_HASH_OFF, UINT64_MAX - 3},
        {VS_OFFS_OFF, UINT64_MAX - 7},      {VS_WORDS_LEN, UINT64_MAX - 255},
        {VS_HASH_SLOTS, (uint64_t)1 << 62}, {VS_ROT_OFF, 64},
    };
    char good[128], bad[128];
    uint8_t *buf, *copy;
    size_t len;

    snprintf(good, sizeof good, "%s/good.akv", dir);
    snprintf(bad, sizeof bad, "%s/bad.akv", dir);
    write_sample(good);
    buf = slurp(good, &len);
    copy = malloc(len);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = cases[i].value;
        memcpy(copy, buf, len);
        if (cases[i].field == VS_MATRIX_OFF && v == 0) {
            /* dim 1024: the matrix would need 32 KiB more than the file
             * has, and matrix_off = size - that wraps. */
            uint32_t dim = 1024;
            memcpy(copy + VS_DIM, &dim, 4);
            v = (uint64_t)len - (uint64_t)NWORDS * dim * 4;
        }
        vs_put64(copy + cases[i].field, v);
        /* A norms offset outside the file cannot be re-sealed: then the
         * checksum or the section check may be what refuses it. */
        {
            int sealed = vs_reseal(copy, len);
            spit(bad, copy, len);
            expect_refused(bad, sealed ? "corrupt header" : "corrupt");
        }
    }
    /* The untouched file, re-sealed, still opens. */
    memcpy(copy, buf, len);
    ck_assert(vs_reseal(copy, len));
    spit(bad, copy, len);
    {
        struct akv_vocab *v = NULL;
        char err[512];
        ck_assert_int_eq(akv_vocab_open(&v, bad, AKV_VOCAB_VERIFY, err, sizeof err), 0);
        akv_vocab_destroy(v);
    }
    free(copy);
    free(buf);
}
END_TEST

START_TEST(test_open_mem_unaligned)
{
    struct akv_vectab t;
    struct akv_vocab *v, *w;
    char err[256], path[128];
    unsigned char *buf;
    size_t len;

    snprintf(path, sizeof path, "%s/m.akv", dir);
    write_sample(path);
    buf = slurp(path, &len);
    ck_assert_int_eq(akv_vocab_open_mem(&v, buf, len, "mem", 0, err, sizeof err), 0);
    ck_assert_int_eq(akv_vocab_find(v, "shape", 5), 2);
    akv_vocab_destroy(v);
    free(buf);
    fill(&t);
    ck_assert_int_eq(akv_vocab_from_table(&w, &t, err, sizeof err), 0);
    akv_vectab_fini(&t);
    ck_assert_int_eq(akv_vocab_find(w, "ba", 2), 7);
    akv_vocab_destroy(w);
}
END_TEST

START_TEST(test_larger_random)
{
    /* A vocabulary big enough for many hash collisions and probes. */
    struct akv_vocab *v = tu_random_vocab(200000, 4, 1.0, 3);
    char w[32];
    for (int i = 0; i < 200000; i += 7) {
        int n = snprintf(w, sizeof w, "w%d", i);
        ck_assert_int_eq(akv_vocab_find(v, w, (size_t)n), i);
    }
    ck_assert_int_eq(akv_vocab_find(v, "w200000", 7), -ENOENT);
    /* "w12345" (deletion) beats "w123405".."w123495" (substitutions). */
    ck_assert_int_eq(akv_vocab_suggest(v, "w1234x5", 7), 12345);
    akv_vocab_destroy(v);
}
END_TEST

/* Opens one saved fuzz input from memory (copied to an aligned buffer, as a
 * mapped file would be); arg counts the ones that open. None may crash. */
static void replay_vocab(const uint8_t *data, size_t len, void *arg)
{
    unsigned char *al = aligned_alloc(64, len / 64 * 64 + 64);
    struct akv_vocab *v;
    char err[512];

    memcpy(al, data, len);
    if (akv_vocab_open_mem(&v, al, len, "replay", AKV_VOCAB_VERIFY, err, sizeof err) == 0) {
        (*(int *)arg)++;
        akv_vocab_destroy(v);
    }
    free(al);
}

START_TEST(test_replay_fuzz_inputs)
{
    int opened = 0;
    long n = tu_replay_dir("fuzz/corpus/vocab", replay_vocab, &opened);

    if (n < 0)
        return;                  /* no source tree at hand: nothing to replay */
    ck_assert_int_ge(opened, 3); /* the seeds are valid files */
    (void)tu_replay_dir("fuzz/regression/vocab", replay_vocab, &opened);
}
END_TEST

static Suite *vocab_suite(void)
{
    Suite *s = suite_create("vocab");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_lookup_and_case);
    tcase_add_test(tc, test_suggest);
    tcase_add_test(tc, test_refuses_bad_files);
    tcase_add_test(tc, test_refuses_wrapping_sections);
    tcase_add_test(tc, test_open_mem_unaligned);
    tcase_add_test(tc, test_larger_random);
    tcase_add_test(tc, test_replay_fuzz_inputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(vocab_suite());
}
