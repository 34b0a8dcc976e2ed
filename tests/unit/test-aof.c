/*
 * test-aof.c - Check suite for the append-only file format (src/persist/aof.c):
 * round trips, every truncation of a file (a torn tail, cut at the last good
 * record), every single-byte corruption (always "corrupt", at the record
 * that holds the byte, never "torn" or good), records whose checksums are
 * right but whose contents are not, and a replay of the fuzzer's corpus and
 * saved crashers through the fuzz target (fuzz/fuzz-aof.c is linked in).
 */
#include <check.h>

#include "runsuite.h"

#include "replay.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "persist/aof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sample {
    enum akv_aof_type type;
    const char *key, *val;
};

static const struct sample samples[] = {
    {AKV_AOF_SET, "cat", "animal"}, {AKV_AOF_SET, "ice cream", "dessert"},
    {AKV_AOF_DEL, "cat", NULL},     {AKV_AOF_FLUSHALL, NULL, NULL},
    {AKV_AOF_SET, "k", ""},         {AKV_AOF_SET, "sphere", "shape"},
};
#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static uint8_t file[4096];
static size_t file_len;
static size_t bounds[NSAMPLES + 1]; /* record starts, then the end */

static void build(void)
{
    size_t off = AKV_AOF_FILE_HEADER;

    akv_aof_file_header(file);
    for (size_t i = 0; i < NSAMPLES; i++) {
        const struct sample *s = &samples[i];
        size_t kl = s->key ? strlen(s->key) : 0, vl = s->val ? strlen(s->val) : 0;
        bounds[i] = off;
        ck_assert_uint_eq(akv_aof_encode(file + off, s->type, s->key, kl, s->val, vl),
                          akv_aof_record_size(s->type, kl, vl));
        off += akv_aof_record_size(s->type, kl, vl);
    }
    bounds[NSAMPLES] = off;
    file_len = off;
}

struct collect {
    size_t n;
    int stop_at; /* return -ENOMEM at this record, or -1 */
};

static int collect(void *arg, const struct akv_aof_record *r)
{
    struct collect *c = arg;
    const struct sample *s = &samples[c->n];

    if ((int)c->n == c->stop_at)
        return -ENOMEM;
    ck_assert_int_eq(r->type, s->type);
    ck_assert_uint_eq(r->offset, bounds[c->n]);
    ck_assert_uint_eq(r->size, bounds[c->n + 1] - bounds[c->n]);
    if (s->key) {
        ck_assert_uint_eq(r->klen, strlen(s->key));
        ck_assert(memcmp(r->key, s->key, r->klen) == 0);
    }
    if (s->type == AKV_AOF_SET) {
        ck_assert_uint_eq(r->vlen, strlen(s->val));
        ck_assert(memcmp(r->val, s->val, r->vlen) == 0);
    }
    c->n++;
    return 0;
}

START_TEST(test_roundtrip)
{
    struct akv_aof_result res;
    struct collect c = {0, -1};

    build();
    ck_assert_int_eq(akv_aof_parse(file, file_len, collect, &c, &res), 0);
    ck_assert_int_eq(res.status, AKV_AOF_OK);
    ck_assert_uint_eq(res.records, NSAMPLES);
    ck_assert_uint_eq(c.n, NSAMPLES);
    ck_assert_uint_eq(res.good_end, file_len);
    ck_assert_uint_eq(res.counts[AKV_AOF_SET], 4);
    ck_assert_uint_eq(res.counts[AKV_AOF_DEL], 1);
    ck_assert_uint_eq(res.counts[AKV_AOF_FLUSHALL], 1);
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_FLUSHALL), "FLUSHALL");

    /* An empty file is a good, empty file; a header alone too. */
    ck_assert_int_eq(akv_aof_parse(file, 0, NULL, NULL, &res), 0);
    ck_assert_int_eq(res.status, AKV_AOF_OK);
    ck_assert_uint_eq(res.records, 0);
    ck_assert_int_eq(akv_aof_parse(file, AKV_AOF_FILE_HEADER, NULL, NULL, &res), 0);
    ck_assert_int_eq(res.status, AKV_AOF_OK);
    ck_assert_uint_eq(res.good_end, AKV_AOF_FILE_HEADER);
}
END_TEST

START_TEST(test_callback_stops)
{
    struct akv_aof_result res;
    struct collect c = {0, 2};

    build();
    ck_assert_int_eq(akv_aof_parse(file, file_len, collect, &c, &res), -ENOMEM);
    ck_assert_uint_eq(res.records, 2);
    ck_assert_uint_eq(res.good_end, bounds[2]);
}
END_TEST

/* Every prefix: good at a record boundary, else torn at the last one. */
START_TEST(test_every_truncation)
{
    build();
    for (size_t n = 0; n <= file_len; n++) {
        struct akv_aof_result res;
        struct collect c = {0, -1};
        size_t whole = 0;

        while (whole < NSAMPLES && bounds[whole + 1] <= n)
            whole++;
        ck_assert_int_eq(akv_aof_parse(file, n, collect, &c, &res), 0);
        ck_assert_uint_eq(res.records, n < AKV_AOF_FILE_HEADER ? 0 : whole);
        if (n == 0 || (n >= AKV_AOF_FILE_HEADER && (n == bounds[whole] || n == file_len))) {
            ck_assert_msg(res.status == AKV_AOF_OK, "prefix %zu: status %d", n, res.status);
            continue;
        }
        ck_assert_msg(res.status == AKV_AOF_TORN, "prefix %zu: status %d (%s)", n, res.status,
                      res.reason);
        if (n < AKV_AOF_FILE_HEADER) {
            ck_assert_uint_eq(res.bad_offset, 0);
            ck_assert_uint_eq(res.good_end, 0);
        } else {
            ck_assert_uint_eq(res.bad_offset, bounds[whole]);
            ck_assert_uint_eq(res.good_end, bounds[whole]);
        }
    }
}
END_TEST

/* Every byte, changed in several ways: always corrupt, at the record that
 * holds the byte, with every record before it good. */
START_TEST(test_every_byte_corruption)
{
    static const uint8_t flips[] = {0x01, 0x02, 0x10, 0x80, 0xff, 0x5a};

    build();
    for (size_t i = 0; i < file_len; i++) {
        size_t rec = 0;
        while (rec < NSAMPLES && bounds[rec + 1] <= i)
            rec++;
        for (size_t f = 0; f < sizeof(flips); f++) {
            struct akv_aof_result res;
            struct collect c = {0, -1};
            file[i] ^= flips[f];
            ck_assert_int_eq(akv_aof_parse(file, file_len, collect, &c, &res), 0);
            ck_assert_msg(res.status == AKV_AOF_CORRUPT, "byte %zu ^ %#x: status %d (%s)", i,
                          flips[f], res.status, res.reason);
            if (i < AKV_AOF_FILE_HEADER) {
                ck_assert_uint_eq(res.bad_offset, 0);
                ck_assert_uint_eq(res.records, 0);
            } else {
                ck_assert_msg(res.bad_offset == bounds[rec], "byte %zu: offset %zu, not %zu", i,
                              res.bad_offset, bounds[rec]);
                ck_assert_uint_eq(res.records, rec);
            }
            file[i] ^= flips[f];
        }
    }
}
END_TEST

/* A record with right checksums around wrong contents. */
static size_t raw_record(uint8_t *dst, uint8_t type, uint16_t reserved, const void *payload,
                         uint32_t plen, uint32_t claimed)
{
    uint32_t c;

    dst[0] = 0xA7;
    dst[1] = type;
    dst[2] = (uint8_t)reserved;
    dst[3] = (uint8_t)(reserved >> 8);
    memcpy(dst + 4, &claimed, 4); /* the suite runs on little-endian hosts */
    c = (uint32_t)crc32(0, dst, 8);
    memcpy(dst + 8, &c, 4);
    c = (uint32_t)crc32(0, payload, plen);
    memcpy(dst + 12, &c, 4);
    memcpy(dst + 16, payload, plen);
    return 16 + plen;
}

static void expect_corrupt(const uint8_t *buf, size_t len, const char *reason)
{
    struct akv_aof_result res;

    ck_assert_int_eq(akv_aof_parse(buf, len, NULL, NULL, &res), 0);
    ck_assert_msg(res.status == AKV_AOF_CORRUPT, "%s: status %d", reason, res.status);
    ck_assert_str_eq(res.reason, reason);
    ck_assert_uint_eq(res.bad_offset, AKV_AOF_FILE_HEADER);
}

START_TEST(test_bad_contents)
{
    uint8_t buf[256];
    uint8_t set_bad[] = {99, 0, 0, 0, 'a', 'b'};
    uint8_t set_empty_key[] = {0, 0, 0, 0, 'a'};
    size_t n;

    akv_aof_file_header(buf);
    n = raw_record(buf + 16, AKV_AOF_SET, 0, set_bad, sizeof(set_bad), sizeof(set_bad));
    expect_corrupt(buf, 16 + n, "bad SET record");
    n = raw_record(buf + 16, AKV_AOF_SET, 0, set_empty_key, 5, 5);
    expect_corrupt(buf, 16 + n, "bad SET record");
    n = raw_record(buf + 16, AKV_AOF_SET, 0, "ab", 2, 2);
    expect_corrupt(buf, 16 + n, "bad SET record");
    n = raw_record(buf + 16, AKV_AOF_DEL, 0, "", 0, 0);
    expect_corrupt(buf, 16 + n, "bad DEL record");
    n = raw_record(buf + 16, AKV_AOF_FLUSHALL, 0, "x", 1, 1);
    expect_corrupt(buf, 16 + n, "bad FLUSHALL record");
    n = raw_record(buf + 16, 9, 0, "x", 1, 1);
    expect_corrupt(buf, 16 + n, "unknown record type");
    n = raw_record(buf + 16, AKV_AOF_DEL, 1, "x", 1, 1);
    expect_corrupt(buf, 16 + n, "unknown record type");
    /* A length beyond the limit, even at the end of the file, is damage
     * rather than a torn write: the header says so and its checksum holds. */
    n = raw_record(buf + 16, AKV_AOF_DEL, 0, "x", 1, (uint32_t)AKV_AOF_PAYLOAD_MAX + 1);
    expect_corrupt(buf, 16 + n, "record length out of range");
    /* A good header claiming more than is there is a torn write. */
    {
        struct akv_aof_result res;
        n = raw_record(buf + 16, AKV_AOF_DEL, 0, "x", 1, 100);
        ck_assert_int_eq(akv_aof_parse(buf, 16 + n, NULL, NULL, &res), 0);
        ck_assert_int_eq(res.status, AKV_AOF_TORN);
    }
    /* Another file format, or another version. */
    memcpy(buf, "*3\r\n$3\r\nSET\r\n$3\r\ncat\r\n", 22);
    {
        struct akv_aof_result res;
        ck_assert_int_eq(akv_aof_parse(buf, 22, NULL, NULL, &res), 0);
        ck_assert_int_eq(res.status, AKV_AOF_CORRUPT);
        ck_assert_uint_eq(res.bad_offset, 0);
        ck_assert_int_eq(akv_aof_parse(buf, 5, NULL, NULL, &res), 0);
        ck_assert_int_eq(res.status, AKV_AOF_CORRUPT);
    }
}
END_TEST

/* The fuzz target itself checks the invariants and aborts, failing the
 * test, if one breaks. */
static void replay_one(const uint8_t *data, size_t len, void *arg)
{
    (void)arg;
    LLVMFuzzerTestOneInput(data, len);
}

START_TEST(test_fuzz_replay)
{
    const char *root = getenv("AKV_SOURCE_ROOT");

    if (!root) {
        fprintf(stderr, "AKV_SOURCE_ROOT unset: fuzz corpus replay skipped\n");
        return;
    }
    ck_assert_int_gt(tu_replay_dir("fuzz/corpus/aof", replay_one, NULL), 0);
    tu_replay_dir("fuzz/regression/aof", replay_one, NULL);
    /* The sample file, whole and in every prefix, through the target too. */
    build();
    for (size_t n = 0; n <= file_len; n++)
        LLVMFuzzerTestOneInput(file, n);
}
END_TEST

static Suite *aof_suite(void)
{
    Suite *s = suite_create("aof");
    TCase *tc = tcase_create("format");

    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_callback_stops);
    tcase_add_test(tc, test_every_truncation);
    tcase_add_test(tc, test_every_byte_corruption);
    tcase_add_test(tc, test_bad_contents);
    tcase_add_test(tc, test_fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(aof_suite());
}
