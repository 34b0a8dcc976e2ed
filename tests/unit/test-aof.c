/*
 * test-aof.c - Check suite for the append-only file format (src/persist/aof.c):
 * round trips, every truncation of a file (a torn tail, cut at the last good
 * record), every single-byte corruption (always "corrupt", at the record
 * that holds the byte, never "torn" or good), records whose checksums are
 * right but whose contents are not, and a replay of the fuzzer's corpus and
 * saved crashers through the fuzz target (fuzz/fuzz-aof.c is linked in).
 * The types that came with databases, expiry and transactions (PUT,
 * DELETE, FLUSHDB, SWAPDB, MULTI) likewise: a file with one of each and a
 * MULTI holding one of each of the others, round trips field by field and
 * byte for byte, the callback order and batch field of the records inside
 * a MULTI, every truncation (a torn MULTI is dropped whole) and every byte
 * corruption of it, and damaged MULTIs (counts, nesting, an inner record
 * cut short: damage, not a tear). The parse in steps agrees with the
 * parse in one go, for every cut of the file and step size. The snapshot
 * preamble: a round trip of every field, every cut (damage inside it, a
 * torn tail after it), every byte changed, salvage of a damaged chunk, and
 * records in the wrong order or with entries that do not hold together
 * under good checksums.
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
    n = raw_record(buf + 16, AKV_AOF_TYPES, 0, "x", 1, 1);
    expect_corrupt(buf, 16 + n, "unknown record type");
    n = raw_record(buf + 16, AKV_AOF_PAYLOAD, 0, "x", 1, 1);
    expect_corrupt(buf, 16 + n, "bad PAYLOAD record");
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

/* ------------------------------------------------------------------------
 * The record types that came with databases, expiry and transactions
 * (4-8), payload values (9), and MULTI records holding any of 1-7 and 9.
 */

/* One of each type, the last a MULTI holding one of each of the others. */
static const struct akv_aof_record inner_recs[] = {
    {.type = AKV_AOF_PUT,
     .db = 1,
     .key = "w1",
     .klen = 2,
     .val = "w2 w3",
     .vlen = 5,
     .expire = 1700000000123ull},
    {.type = AKV_AOF_DELETE, .db = 0, .key = "cat", .klen = 3},
    {.type = AKV_AOF_SWAPDB, .db = 0, .db2 = 1},
    {.type = AKV_AOF_FLUSHDB, .db = 2},
    {.type = AKV_AOF_SET, .key = "k", .klen = 1, .val = "v", .vlen = 1},
    {.type = AKV_AOF_DEL, .key = "k", .klen = 1},
    {.type = AKV_AOF_FLUSHALL},
    {.type = AKV_AOF_PAYLOAD,
     .db = 2,
     .key = "dog food",
     .klen = 8,
     .val = "{\"id\": 7}",
     .vlen = 9},
};
#define NINNER (sizeof(inner_recs) / sizeof(inner_recs[0]))

static const struct akv_aof_record top_recs[] = {
    {.type = AKV_AOF_SET, .key = "cat", .klen = 3, .val = "animal", .vlen = 6},
    {.type = AKV_AOF_PUT,
     .db = 3,
     .key = "ice cream",
     .klen = 9,
     .val = "dessert",
     .vlen = 7,
     .expire = 0xfedcba9876543210ull},
    {.type = AKV_AOF_PUT, .db = 0xffffffffu, .key = "k", .klen = 1, .val = "", .vlen = 0},
    {.type = AKV_AOF_DELETE, .db = 7, .key = "ice cream", .klen = 9},
    {.type = AKV_AOF_FLUSHDB, .db = 5},
    {.type = AKV_AOF_SWAPDB, .db = 1, .db2 = 0x80000001u},
    {.type = AKV_AOF_DEL, .key = "cat", .klen = 3},
    {.type = AKV_AOF_FLUSHALL},
    {.type = AKV_AOF_MULTI}, /* inner_recs, filled by build_all */
    {.type = AKV_AOF_SET, .key = "sphere", .klen = 6, .val = "shape", .vlen = 5},
    /* A payload: any bytes, NUL and CR LF included. */
    {.type = AKV_AOF_PAYLOAD,
     .db = 1,
     .key = "cat",
     .klen = 3,
     .val = "\0\r\nid\xff",
     .vlen = 6,
     .expire = 1700000000999ull},
};
#define NTOP (sizeof(top_recs) / sizeof(top_recs[0]))
#define MULTI_AT 8 /* index of the MULTI in top_recs */

/* The expected callbacks, in order: the top records with the MULTI's
 * inner ones in its place. */
#define NCALLS (NTOP - 1 + NINNER)

static uint8_t all_file[4096];
static size_t all_len;
static size_t all_bounds[NTOP + 1];
static uint8_t inner_buf[1024];
static size_t inner_len;
static size_t inner_offs[NINNER + 1]; /* inside inner_buf */

static void build_all(void)
{
    size_t off = AKV_AOF_FILE_HEADER;

    inner_len = 0;
    for (size_t i = 0; i < NINNER; i++) {
        inner_offs[i] = inner_len;
        ck_assert_uint_eq(akv_aof_rec_encode(inner_buf + inner_len, &inner_recs[i]),
                          akv_aof_rec_size(&inner_recs[i]));
        inner_len += akv_aof_rec_size(&inner_recs[i]);
    }
    inner_offs[NINNER] = inner_len;
    akv_aof_file_header(all_file);
    for (size_t i = 0; i < NTOP; i++) {
        struct akv_aof_record r = top_recs[i];
        if (i == MULTI_AT) {
            r.count = NINNER;
            r.inner = inner_buf;
            r.inner_len = inner_len;
        }
        all_bounds[i] = off;
        ck_assert_uint_le(off + akv_aof_rec_size(&r), sizeof(all_file));
        ck_assert_uint_eq(akv_aof_rec_encode(all_file + off, &r), akv_aof_rec_size(&r));
        off += akv_aof_rec_size(&r);
    }
    all_bounds[NTOP] = off;
    all_len = off;
    /* The old interface agrees for the old types. */
    ck_assert_uint_eq(akv_aof_record_size(AKV_AOF_SET, 3, 6), akv_aof_rec_size(&top_recs[0]));
    ck_assert_uint_eq(akv_aof_record_size(AKV_AOF_FLUSHALL, 9, 9), AKV_AOF_REC_HEADER);
}

/* The record expected at callback i, its offset and its batch. */
static const struct akv_aof_record *expected_call(size_t i, size_t *offset, size_t *size,
                                                  size_t *batch)
{
    size_t top = i < MULTI_AT ? i : i < MULTI_AT + NINNER ? MULTI_AT : i - NINNER + 1;

    if (top != MULTI_AT) {
        *offset = all_bounds[top];
        *size = all_bounds[top + 1] - all_bounds[top];
        *batch = SIZE_MAX;
        return &top_recs[top];
    }
    i -= MULTI_AT;
    *offset = all_bounds[MULTI_AT] + AKV_AOF_REC_HEADER + 4 + inner_offs[i];
    *size = inner_offs[i + 1] - inner_offs[i];
    *batch = all_bounds[MULTI_AT];
    return &inner_recs[i];
}

struct calls {
    size_t n;
    size_t stop_at; /* return -ECANCELED at this callback, or SIZE_MAX */
    size_t n_inner;
};

static void assert_same_record(const struct akv_aof_record *r, const struct akv_aof_record *e)
{
    ck_assert_int_eq(r->type, e->type);
    ck_assert_uint_eq(r->klen, e->klen);
    if (e->klen)
        ck_assert(memcmp(r->key, e->key, e->klen) == 0);
    if (e->type == AKV_AOF_SET || e->type == AKV_AOF_PUT || e->type == AKV_AOF_PAYLOAD) {
        ck_assert_uint_eq(r->vlen, e->vlen);
        ck_assert(memcmp(r->val, e->val, e->vlen) == 0);
    } else {
        ck_assert_uint_eq(r->vlen, 0);
    }
    ck_assert_uint_eq(r->db, e->db);
    ck_assert_uint_eq(r->db2, e->db2);
    ck_assert(r->expire == e->expire);
    ck_assert_uint_eq(r->count, 0);
}

static int check_call(void *arg, const struct akv_aof_record *r)
{
    struct calls *c = arg;
    size_t off, size, batch;
    const struct akv_aof_record *e;
    uint8_t re[512];

    if (c->n == c->stop_at)
        return -ECANCELED;
    ck_assert_uint_lt(c->n, NCALLS);
    e = expected_call(c->n, &off, &size, &batch);
    assert_same_record(r, e);
    ck_assert_uint_eq(r->offset, off);
    ck_assert_uint_eq(r->size, size);
    ck_assert_uint_eq(r->batch, batch);
    /* Re-encoded, it is the bytes it was parsed from. */
    ck_assert_uint_eq(akv_aof_rec_size(r), size);
    ck_assert_uint_le(size, sizeof(re));
    ck_assert_uint_eq(akv_aof_rec_encode(re, r), size);
    ck_assert(memcmp(re, all_file + off, size) == 0);
    c->n_inner += batch != SIZE_MAX;
    c->n++;
    return 0;
}

START_TEST(test_all_types_roundtrip)
{
    struct akv_aof_result res;
    struct calls c = {0, SIZE_MAX, 0};

    build_all();
    ck_assert_int_eq(akv_aof_parse(all_file, all_len, check_call, &c, &res), 0);
    ck_assert_int_eq(res.status, AKV_AOF_OK);
    ck_assert_uint_eq(c.n, NCALLS);
    ck_assert_uint_eq(c.n_inner, NINNER);
    ck_assert_uint_eq(res.records, NTOP); /* a MULTI counts once */
    ck_assert_uint_eq(res.good_end, all_len);
    /* Counts by type, those inside the MULTI included. */
    ck_assert_uint_eq(res.counts[AKV_AOF_SET], 3);
    ck_assert_uint_eq(res.counts[AKV_AOF_DEL], 2);
    ck_assert_uint_eq(res.counts[AKV_AOF_FLUSHALL], 2);
    ck_assert_uint_eq(res.counts[AKV_AOF_PUT], 3);
    ck_assert_uint_eq(res.counts[AKV_AOF_DELETE], 2);
    ck_assert_uint_eq(res.counts[AKV_AOF_FLUSHDB], 2);
    ck_assert_uint_eq(res.counts[AKV_AOF_SWAPDB], 2);
    ck_assert_uint_eq(res.counts[AKV_AOF_MULTI], 1);
    ck_assert_uint_eq(res.counts[AKV_AOF_PAYLOAD], 2);
    ck_assert_uint_eq(res.counts[0], 0);

    /* Sizes: header + payload as aof.h lays them out. */
    ck_assert_uint_eq(akv_aof_rec_size(&top_recs[1]), 16 + 4 + 8 + 4 + 9 + 7);
    ck_assert_uint_eq(akv_aof_rec_size(&top_recs[3]), 16 + 4 + 9);
    ck_assert_uint_eq(akv_aof_rec_size(&top_recs[4]), 16 + 4);
    ck_assert_uint_eq(akv_aof_rec_size(&top_recs[5]), 16 + 8);
    ck_assert_uint_eq(all_bounds[MULTI_AT + 1] - all_bounds[MULTI_AT], 16 + 4 + inner_len);

    /* The MULTI record re-encodes from its fields, in place too (the
     * writer wraps a batch that may sit right after the header). */
    {
        uint8_t re[1024];
        struct akv_aof_record m = {
            .type = AKV_AOF_MULTI, .count = NINNER, .inner = inner_buf, .inner_len = inner_len};
        size_t n = all_bounds[MULTI_AT + 1] - all_bounds[MULTI_AT];
        ck_assert_uint_eq(akv_aof_rec_encode(re, &m), n);
        ck_assert(memcmp(re, all_file + all_bounds[MULTI_AT], n) == 0);
        memset(re, 0, sizeof(re));
        memcpy(re + 20, inner_buf, inner_len);
        m.inner = re + 20;
        ck_assert_uint_eq(akv_aof_rec_encode(re, &m), n);
        ck_assert(memcmp(re, all_file + all_bounds[MULTI_AT], n) == 0);
    }

    /* Names. */
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_SET), "SET");
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_DEL), "DEL");
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_PUT), "PUT");
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_DELETE), "DELETE");
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_FLUSHDB), "FLUSHDB");
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_SWAPDB), "SWAPDB");
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_MULTI), "MULTI");
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_PAYLOAD), "PAYLOAD");
    ck_assert_str_eq(akv_aof_type_name((enum akv_aof_type)0), "?");
    ck_assert_str_eq(akv_aof_type_name((enum akv_aof_type)AKV_AOF_TYPES), "?");
}
END_TEST

/* The parse in steps (akv_aof_parse_step) gives what one parse gives, for
 * every cut of the file (good, torn, in the middle of the MULTI record) and
 * every step size: the same calls in the same order, at most max a step
 * (the MULTI's records handed over across steps), and the same result. */
START_TEST(test_parse_in_steps)
{
    static const size_t maxes[] = {1, 2, 3, 7, SIZE_MAX};

    build_all();
    for (size_t n = 0; n <= all_len; n++) {
        struct akv_aof_result whole;
        struct calls cw = {0, SIZE_MAX, 0};

        ck_assert_int_eq(akv_aof_parse(all_file, n, check_call, &cw, &whole), 0);
        for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
            struct akv_aof_parser ps;
            struct calls c = {0, SIZE_MAX, 0};
            size_t steps = 0;

            akv_aof_parser_init(&ps, all_file, n);
            while (!ps.done) {
                size_t before = c.n;
                ck_assert_int_eq(akv_aof_parse_step(&ps, maxes[m], check_call, &c), 0);
                ck_assert_uint_le(c.n - before, maxes[m]);
                ck_assert_uint_lt(++steps, 1000);
            }
            ck_assert_uint_eq(c.n, cw.n);
            ck_assert_int_eq(ps.res.status, whole.status);
            ck_assert_uint_eq(ps.res.records, whole.records);
            ck_assert_uint_eq(ps.res.good_end, whole.good_end);
            ck_assert_uint_eq(ps.res.bad_offset, whole.bad_offset);
            ck_assert(memcmp(ps.res.counts, whole.counts, sizeof(whole.counts)) == 0);
            /* Done stays done. */
            ck_assert_int_eq(akv_aof_parse_step(&ps, 5, check_call, &c), 0);
            ck_assert_uint_eq(c.n, cw.n);
        }
    }
}
END_TEST

/* A callback that stops inside a MULTI: parse returns its value, and the
 * MULTI is not among the good records. */
START_TEST(test_stop_inside_multi)
{
    struct akv_aof_result res;

    build_all();
    for (size_t stop = 0; stop <= NCALLS; stop++) {
        struct calls c = {0, stop, 0};
        int rc = akv_aof_parse(all_file, all_len, check_call, &c, &res);
        size_t top = stop < MULTI_AT            ? stop
                     : stop < MULTI_AT + NINNER ? MULTI_AT
                                                : stop - NINNER + 1;
        if (stop == NCALLS) {
            ck_assert_int_eq(rc, 0);
            continue;
        }
        ck_assert_int_eq(rc, -ECANCELED);
        ck_assert_uint_eq(c.n, stop);
        ck_assert_msg(res.records == top, "stop %zu: %zu records", stop, res.records);
        ck_assert_uint_eq(res.good_end, all_bounds[top]);
    }
}
END_TEST

/* Every prefix of the file with every type: good at a record boundary,
 * else torn at the last whole record, and a MULTI cut anywhere is dropped
 * whole (none of its records reaches the callback). */
START_TEST(test_all_types_every_truncation)
{
    build_all();
    for (size_t n = 0; n <= all_len; n++) {
        struct akv_aof_result res;
        struct calls c = {0, SIZE_MAX, 0};
        size_t whole = 0, calls;

        while (whole < NTOP && all_bounds[whole + 1] <= n)
            whole++;
        calls = whole <= MULTI_AT ? whole : whole - 1 + NINNER;
        ck_assert_int_eq(akv_aof_parse(all_file, n, check_call, &c, &res), 0);
        ck_assert_uint_eq(res.records, n < AKV_AOF_FILE_HEADER ? 0 : whole);
        ck_assert_uint_eq(c.n, n < AKV_AOF_FILE_HEADER ? 0 : calls);
        if (n == 0 || (n >= AKV_AOF_FILE_HEADER && n == all_bounds[whole])) {
            ck_assert_msg(res.status == AKV_AOF_OK, "prefix %zu: status %d", n, res.status);
            continue;
        }
        ck_assert_msg(res.status == AKV_AOF_TORN, "prefix %zu: status %d (%s)", n, res.status,
                      res.reason);
        if (n >= AKV_AOF_FILE_HEADER) {
            ck_assert_uint_eq(res.bad_offset, all_bounds[whole]);
            ck_assert_uint_eq(res.good_end, all_bounds[whole]);
        }
    }
}
END_TEST

/* Every byte of it, changed: corrupt at the top-level record that holds
 * the byte (a byte of a record inside the MULTI is the MULTI's). */
START_TEST(test_all_types_every_byte_corruption)
{
    static const uint8_t flips[] = {0x01, 0x80, 0xff};

    build_all();
    for (size_t i = 0; i < all_len; i++) {
        size_t rec = 0;
        while (rec < NTOP && all_bounds[rec + 1] <= i)
            rec++;
        for (size_t f = 0; f < sizeof(flips); f++) {
            struct akv_aof_result res;
            struct calls c = {0, SIZE_MAX, 0};
            all_file[i] ^= flips[f];
            ck_assert_int_eq(akv_aof_parse(all_file, all_len, check_call, &c, &res), 0);
            ck_assert_msg(res.status == AKV_AOF_CORRUPT, "byte %zu ^ %#x: status %d (%s)", i,
                          flips[f], res.status, res.reason);
            if (i >= AKV_AOF_FILE_HEADER) {
                ck_assert_uint_eq(res.bad_offset, all_bounds[rec]);
                ck_assert_uint_eq(res.records, rec);
                ck_assert_uint_eq(c.n, rec <= MULTI_AT ? rec : rec - 1 + NINNER);
            }
            all_file[i] ^= flips[f];
        }
    }
}
END_TEST

/* A file holding one MULTI record around inner[0..len) that claims count
 * records; returns the file's length. */
static size_t multi_file(uint8_t *buf, uint32_t count, const void *inner, size_t len)
{
    struct akv_aof_record m = {
        .type = AKV_AOF_MULTI, .count = count, .inner = inner, .inner_len = len};

    akv_aof_file_header(buf);
    return AKV_AOF_FILE_HEADER + akv_aof_rec_encode(buf + AKV_AOF_FILE_HEADER, &m);
}

static int count_calls(void *arg, const struct akv_aof_record *r)
{
    (void)r;
    ++*(size_t *)arg;
    return 0;
}

/* A MULTI record may be as large as AKV_AOF_PAYLOAD_MAX: the parse in
 * steps checks it in pieces (AKV_AOF_CHECK_PIECE bytes a unit of max), so
 * that a replay in slices is never held by one big transaction; the
 * verdict is one parse's, good or damaged at its very end, and nothing is
 * handed over before the whole record has been checked. */
START_TEST(test_big_multi_in_pieces)
{
    enum { N = 20000 };
    size_t ilen = 0, len, cap = (size_t)N * 64 + 4096;
    uint8_t *inner = malloc(cap), *fbuf = malloc(cap + 64);
    char key[32];

    ck_assert_ptr_nonnull(inner);
    ck_assert_ptr_nonnull(fbuf);
    for (int i = 0; i < N; i++) {
        struct akv_aof_record r = {.type = AKV_AOF_PUT, .key = key, .val = "value of it"};
        r.klen = (size_t)snprintf(key, sizeof key, "key %d", i);
        r.vlen = strlen(r.val);
        ilen += akv_aof_rec_encode(inner + ilen, &r);
    }
    ck_assert_uint_gt(ilen, 8 * AKV_AOF_CHECK_PIECE);
    len = multi_file(fbuf, N, inner, ilen);
    for (int damage = 0; damage < 3; damage++) {
        struct akv_aof_result whole;
        struct akv_aof_parser ps;
        size_t cw = 0, c = 0, steps = 0;

        if (damage == 1)
            fbuf[len - 1] ^= 0x40; /* the payload's checksum fails */
        if (damage == 2) {
            fbuf[len - 1] ^= 0x40;
            len = multi_file(fbuf, N + 1, inner, ilen); /* a bad count */
        }
        ck_assert_int_eq(akv_aof_parse(fbuf, len, count_calls, &cw, &whole), 0);
        ck_assert_int_eq(whole.status, damage ? AKV_AOF_CORRUPT : AKV_AOF_OK);
        akv_aof_parser_init(&ps, fbuf, len);
        while (!ps.done && c == 0) {
            ck_assert_int_eq(akv_aof_parse_step(&ps, 1, count_calls, &c), 0);
            steps++;
        }
        /* A checksum piece per AKV_AOF_CHECK_PIECE bytes, then the inner
         * records' pieces, before the first record (or the verdict). */
        ck_assert_uint_ge(steps, ilen / AKV_AOF_CHECK_PIECE);
        while (!ps.done)
            ck_assert_int_eq(akv_aof_parse_step(&ps, 16, count_calls, &c), 0);
        ck_assert_uint_eq(c, cw);
        ck_assert_uint_eq(c, damage ? 0 : N);
        ck_assert_int_eq(ps.res.status, whole.status);
        ck_assert_str_eq(ps.res.reason, whole.reason);
        ck_assert_uint_eq(ps.res.records, whole.records);
        ck_assert_uint_eq(ps.res.good_end, whole.good_end);
        ck_assert_uint_eq(ps.res.bad_offset, whole.bad_offset);
    }
    free(inner);
    free(fbuf);
}
END_TEST

/* Parses buf, expecting corruption at the first record with reason, and
 * no callback at all (a bad MULTI is refused before any of its records is
 * handed over). */
static void expect_corrupt_nocall(const uint8_t *buf, size_t len, const char *reason)
{
    struct akv_aof_result res;
    size_t calls = 0;

    ck_assert_int_eq(akv_aof_parse(buf, len, count_calls, &calls, &res), 0);
    ck_assert_msg(res.status == AKV_AOF_CORRUPT, "%s: status %d (%s)", reason, res.status,
                  res.reason);
    ck_assert_str_eq(res.reason, reason);
    ck_assert_uint_eq(res.bad_offset, AKV_AOF_FILE_HEADER);
    ck_assert_uint_eq(res.good_end, AKV_AOF_FILE_HEADER);
    ck_assert_uint_eq(res.records, 0);
    ck_assert_uint_eq(calls, 0);
    for (int t = 0; t < AKV_AOF_TYPES; t++)
        ck_assert_uint_eq(res.counts[t], 0);
}

START_TEST(test_multi_damage)
{
    static uint8_t buf[4096], in[2048], in2[2048];
    struct akv_aof_result res;
    size_t n, len, calls;

    build_all();
    /* Counts that do not match the records inside. */
    n = multi_file(buf, NINNER + 1, inner_buf, inner_len);
    expect_corrupt_nocall(buf, n, "bad MULTI record count");
    n = multi_file(buf, NINNER - 1, inner_buf, inner_len);
    expect_corrupt_nocall(buf, n, "bad MULTI record count");
    n = multi_file(buf, 0xffffffffu, inner_buf, inner_len);
    expect_corrupt_nocall(buf, n, "bad MULTI record count");
    n = multi_file(buf, 1, NULL, 0);
    expect_corrupt_nocall(buf, n, "bad MULTI record count");

    /* A MULTI inside a MULTI. */
    len = (size_t)(multi_file(in, NINNER, inner_buf, inner_len) - AKV_AOF_FILE_HEADER);
    memmove(in, in + AKV_AOF_FILE_HEADER, len);
    n = multi_file(buf, 1, in, len);
    expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");
    /* ... after good records. */
    memcpy(in2, inner_buf, inner_len);
    memcpy(in2 + inner_len, in, len);
    n = multi_file(buf, NINNER + 1, in2, inner_len + len);
    expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");

    /* An inner record cut short by the end of the MULTI's payload is
     * damage, not a torn write: every cut of the last inner record. */
    for (size_t cut = inner_offs[NINNER - 1] + 1; cut < inner_len; cut++) {
        n = multi_file(buf, NINNER, inner_buf, cut);
        expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");
    }
    /* Cut inside any inner record, wherever the count says. */
    for (size_t cut = 1; cut < inner_len; cut++) {
        size_t whole = 0;
        while (whole < NINNER && inner_offs[whole + 1] <= cut)
            whole++;
        n = multi_file(buf, (uint32_t)whole, inner_buf, cut);
        if (cut == inner_offs[whole]) {
            ck_assert_int_eq(akv_aof_parse(buf, n, NULL, NULL, &res), 0);
            ck_assert_int_eq(res.status, AKV_AOF_OK);
            ck_assert_uint_eq(res.counts[AKV_AOF_MULTI], 1);
        } else {
            expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");
        }
    }
    /* Bytes inside that are no record, with the outer checksums right. */
    memcpy(in, inner_buf, inner_len);
    in[0] = 0x00; /* magic */
    n = multi_file(buf, NINNER, in, inner_len);
    expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");
    memcpy(in, inner_buf, inner_len);
    in[inner_offs[1] + 9] ^= 1; /* the second record's header checksum */
    n = multi_file(buf, NINNER, in, inner_len);
    expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");
    memcpy(in, inner_buf, inner_len);
    in[inner_len - 1] ^= 1; /* the last record's payload checksum */
    n = multi_file(buf, NINNER, in, inner_len);
    expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");

    /* A MULTI payload shorter than its count. */
    {
        uint8_t hdr[AKV_AOF_FILE_HEADER + 64];
        size_t k;
        akv_aof_file_header(hdr);
        k = raw_record(hdr + AKV_AOF_FILE_HEADER, AKV_AOF_MULTI, 0, "\0\0\0", 3, 3);
        expect_corrupt_nocall(hdr, AKV_AOF_FILE_HEADER + k, "bad MULTI record");
        k = raw_record(hdr + AKV_AOF_FILE_HEADER, AKV_AOF_MULTI, 0, "", 0, 0);
        expect_corrupt_nocall(hdr, AKV_AOF_FILE_HEADER + k, "bad MULTI record");
    }

    /* An empty MULTI (count 0) is good and hands over nothing; the
     * writer never makes one, but it is well formed. */
    n = multi_file(buf, 0, NULL, 0);
    calls = 0;
    ck_assert_int_eq(akv_aof_parse(buf, n, count_calls, &calls, &res), 0);
    ck_assert_int_eq(res.status, AKV_AOF_OK);
    ck_assert_uint_eq(res.records, 1);
    ck_assert_uint_eq(res.counts[AKV_AOF_MULTI], 1);
    ck_assert_uint_eq(calls, 0);

    /* A good record after a damaged MULTI is not reached. */
    n = multi_file(buf, NINNER + 1, inner_buf, inner_len);
    n += akv_aof_rec_encode(buf + n, &top_recs[0]);
    expect_corrupt_nocall(buf, n, "bad MULTI record count");

    /* A torn outer MULTI, cut anywhere (its records all checked out so
     * far), is a torn tail: dropped whole, what came before kept. */
    n = multi_file(buf, NINNER, inner_buf, inner_len);
    for (size_t cut = AKV_AOF_FILE_HEADER + 1; cut < n; cut++) {
        calls = 0;
        ck_assert_int_eq(akv_aof_parse(buf, cut, count_calls, &calls, &res), 0);
        ck_assert_msg(res.status == AKV_AOF_TORN, "cut %zu: %d", cut, res.status);
        ck_assert_uint_eq(res.good_end, AKV_AOF_FILE_HEADER);
        ck_assert_uint_eq(res.records, 0);
        ck_assert_uint_eq(calls, 0);
    }
}
END_TEST

/* Payloads of the new types whose checksums hold but whose contents do
 * not. */
START_TEST(test_bad_new_payloads)
{
    uint8_t buf[256];
    uint8_t p[64];
    size_t n;

    akv_aof_file_header(buf);
    /* PUT: db, expire, klen; a key of at least one byte inside. */
    memset(p, 0, sizeof(p));
    n = raw_record(buf + 16, AKV_AOF_PUT, 0, p, 15, 15);
    expect_corrupt(buf, 16 + n, "bad PUT record");
    n = raw_record(buf + 16, AKV_AOF_PUT, 0, p, 16, 16); /* klen 0 */
    expect_corrupt(buf, 16 + n, "bad PUT record");
    p[12] = 0; /* klen 0 with bytes after it */
    n = raw_record(buf + 16, AKV_AOF_PUT, 0, p, 20, 20);
    expect_corrupt(buf, 16 + n, "bad PUT record");
    p[12] = 5; /* klen 5, 4 bytes there */
    n = raw_record(buf + 16, AKV_AOF_PUT, 0, p, 20, 20);
    expect_corrupt(buf, 16 + n, "bad PUT record");
    p[12] = 0xff;
    p[15] = 0xff; /* huge klen */
    n = raw_record(buf + 16, AKV_AOF_PUT, 0, p, 20, 20);
    expect_corrupt(buf, 16 + n, "bad PUT record");
    {
        /* klen 4, exactly the rest: a good PUT with an empty value. */
        struct akv_aof_result res;
        memset(p, 0, sizeof(p));
        p[12] = 4;
        memcpy(p + 16, "w1w2", 4);
        n = raw_record(buf + 16, AKV_AOF_PUT, 0, p, 20, 20);
        ck_assert_int_eq(akv_aof_parse(buf, 16 + n, NULL, NULL, &res), 0);
        ck_assert_int_eq(res.status, AKV_AOF_OK);
        ck_assert_uint_eq(res.counts[AKV_AOF_PUT], 1);
    }
    /* DELETE: db and a key of at least one byte. */
    memset(p, 0, sizeof(p));
    n = raw_record(buf + 16, AKV_AOF_DELETE, 0, p, 4, 4);
    expect_corrupt(buf, 16 + n, "bad DELETE record");
    n = raw_record(buf + 16, AKV_AOF_DELETE, 0, p, 3, 3);
    expect_corrupt(buf, 16 + n, "bad DELETE record");
    n = raw_record(buf + 16, AKV_AOF_DELETE, 0, p, 0, 0);
    expect_corrupt(buf, 16 + n, "bad DELETE record");
    /* FLUSHDB: exactly a db. */
    n = raw_record(buf + 16, AKV_AOF_FLUSHDB, 0, p, 3, 3);
    expect_corrupt(buf, 16 + n, "bad FLUSHDB record");
    n = raw_record(buf + 16, AKV_AOF_FLUSHDB, 0, p, 5, 5);
    expect_corrupt(buf, 16 + n, "bad FLUSHDB record");
    n = raw_record(buf + 16, AKV_AOF_FLUSHDB, 0, p, 0, 0);
    expect_corrupt(buf, 16 + n, "bad FLUSHDB record");
    /* SWAPDB: exactly two. */
    n = raw_record(buf + 16, AKV_AOF_SWAPDB, 0, p, 7, 7);
    expect_corrupt(buf, 16 + n, "bad SWAPDB record");
    n = raw_record(buf + 16, AKV_AOF_SWAPDB, 0, p, 9, 9);
    expect_corrupt(buf, 16 + n, "bad SWAPDB record");
    n = raw_record(buf + 16, AKV_AOF_SWAPDB, 0, p, 4, 4);
    expect_corrupt(buf, 16 + n, "bad SWAPDB record");
    /* The first unknown type is the one after MULTI; type 0 too. */
    n = raw_record(buf + 16, AKV_AOF_TYPES, 0, p, 4, 4);
    expect_corrupt(buf, 16 + n, "unknown record type");
    n = raw_record(buf + 16, 0, 0, p, 4, 4);
    expect_corrupt(buf, 16 + n, "unknown record type");
    n = raw_record(buf + 16, AKV_AOF_MULTI, 0x100, p, 4, 4);
    expect_corrupt(buf, 16 + n, "unknown record type");
    /* The same payloads inside a MULTI are damage to the MULTI. */
    {
        uint8_t m[128];
        size_t k = raw_record(m, AKV_AOF_SWAPDB, 0, p, 9, 9);
        n = multi_file(buf, 1, m, k);
        expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");
        k = raw_record(m, AKV_AOF_PUT, 0, p, 15, 15);
        n = multi_file(buf, 1, m, k);
        expect_corrupt_nocall(buf, n, "bad record inside a MULTI record");
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Salvage: keep every good record, skip the damage.
 */

struct salvaged {
    size_t kept[64]; /* offsets of the kept records */
    size_t nkept;
    struct akv_aof_skip skips[16];
    size_t nskips;
    size_t stop_at; /* return -ECANCELED at this kept record, or SIZE_MAX */
};

static int salv_keep(void *arg, const struct akv_aof_record *r)
{
    struct salvaged *s = arg;

    if (s->nkept == s->stop_at)
        return -ECANCELED;
    ck_assert_uint_lt(s->nkept, 64);
    s->kept[s->nkept++] = r->offset;
    return 0;
}

static int salv_skip(void *arg, const struct akv_aof_skip *k)
{
    struct salvaged *s = arg;

    ck_assert_uint_lt(s->nskips, 16);
    s->skips[s->nskips++] = *k;
    return 0;
}

/* Every byte after the file header of the file with every type, changed:
 * salvage loses exactly the top-level record holding it (the whole MULTI
 * for a byte of the MULTI or of a record inside it) and keeps every other
 * one; a byte of the file header makes the file unsalvageable. */
START_TEST(test_salvage_every_byte_corruption)
{
    static const uint8_t flips[] = {0x01, 0x20, 0x80, 0xff, 0x5a};

    build_all();
    for (size_t i = 0; i < all_len; i++) {
        size_t rec = 0;
        while (rec < NTOP && all_bounds[rec + 1] <= i)
            rec++;
        for (size_t f = 0; f < sizeof(flips); f++) {
            struct akv_aof_salvage_result res;
            struct salvaged s = {.stop_at = SIZE_MAX};
            int rc;
            all_file[i] ^= flips[f];
            rc = akv_aof_salvage(all_file, all_len, salv_keep, salv_skip, &s, &res);
            all_file[i] ^= flips[f];
            if (i < AKV_AOF_FILE_HEADER) {
                ck_assert_int_eq(rc, -EBADMSG);
                ck_assert_uint_eq(s.nkept + s.nskips, 0);
                continue;
            }
            ck_assert_int_eq(rc, 0);
            ck_assert_msg(s.nkept == NTOP - 1 && s.nskips == 1,
                          "byte %zu ^ %#x: %zu kept, %zu skipped (%zu, %zu, %s)", i, flips[f],
                          s.nkept, s.nskips, s.skips[0].offset, s.skips[0].len, s.skips[0].reason);
            for (size_t k = 0, t = 0; k < s.nkept; k++, t++) {
                if (t == rec)
                    t++;
                ck_assert_uint_eq(s.kept[k], all_bounds[t]);
            }
            ck_assert_uint_eq(s.skips[0].offset, all_bounds[rec]);
            ck_assert_msg(s.skips[0].len == all_bounds[rec + 1] - all_bounds[rec],
                          "byte %zu ^ %#x: skipped %zu bytes (%s), not %zu", i, flips[f],
                          s.skips[0].len, s.skips[0].reason, all_bounds[rec + 1] - all_bounds[rec]);
            /* In a header the type is recognised, or guessed. */
            ck_assert_int_eq(s.skips[0].type, top_recs[rec].type);
            ck_assert_uint_eq(res.records, NTOP - 1);
            ck_assert_uint_eq(res.skipped_bytes, s.skips[0].len);
            ck_assert_uint_eq(res.kept_bytes + res.skipped_bytes + AKV_AOF_FILE_HEADER, all_len);
            ck_assert_uint_eq(res.counts[AKV_AOF_MULTI], rec == MULTI_AT ? 0 : 1);
        }
    }
}
END_TEST

/* Damage that the single-byte case does not show: a bad header followed by
 * a record whose header holds but whose payload does not, a MULTI whose
 * header and first inner record are both damaged, a zeroed tail, a torn
 * tail, a callback that stops. */
START_TEST(test_salvage_ranges)
{
    static uint8_t buf[4096];
    struct akv_aof_salvage_result res;
    struct salvaged s = {.stop_at = SIZE_MAX};
    size_t m, first_inner;

    build_all();
    /* Records 0 and 1: the first's header and the second's payload. */
    memcpy(buf, all_file, all_len);
    buf[all_bounds[0] + 5] ^= 0x10;
    buf[all_bounds[2] - 1] ^= 0x10;
    ck_assert_int_eq(akv_aof_salvage(buf, all_len, salv_keep, salv_skip, &s, &res), 0);
    ck_assert_uint_eq(s.nskips, 2);
    ck_assert_int_eq(s.skips[0].kind, AKV_AOF_SKIP_RESYNC);
    ck_assert_uint_eq(s.skips[0].offset, all_bounds[0]);
    ck_assert_uint_eq(s.skips[0].len, all_bounds[1] - all_bounds[0]);
    ck_assert_int_eq(s.skips[1].kind, AKV_AOF_SKIP_RECORD);
    ck_assert_str_eq(s.skips[1].reason, "record checksum mismatch");
    ck_assert_uint_eq(s.skips[1].offset, all_bounds[1]);
    ck_assert_int_eq(s.skips[1].type, AKV_AOF_PUT);
    ck_assert_uint_eq(s.nkept, NTOP - 2);
    ck_assert_uint_eq(s.kept[0], all_bounds[2]);

    /* The MULTI's type byte and its first inner record's payload: its
     * length field still says where it ends, and no record inside it is
     * kept on its own. */
    memcpy(buf, all_file, all_len);
    m = all_bounds[MULTI_AT];
    first_inner = m + AKV_AOF_REC_HEADER + 4;
    buf[m + 1] = AKV_AOF_SET;
    buf[first_inner + AKV_AOF_REC_HEADER + 2] ^= 0x01;
    memset(&s, 0, sizeof(s));
    s.stop_at = SIZE_MAX;
    ck_assert_int_eq(akv_aof_salvage(buf, all_len, salv_keep, salv_skip, &s, &res), 0);
    ck_assert_uint_eq(s.nskips, 1);
    ck_assert_uint_eq(s.skips[0].offset, m);
    ck_assert_uint_eq(s.skips[0].len, all_bounds[MULTI_AT + 1] - m);
    ck_assert_uint_eq(s.nkept, NTOP - 1);
    for (size_t k = 0; k < s.nkept; k++)
        ck_assert(s.kept[k] < m || s.kept[k] >= all_bounds[MULTI_AT + 1]);

    /* The same with its length field damaged too: nothing says where it
     * ends, and its type byte says MULTI, so nothing after it is kept. */
    memcpy(buf, all_file, all_len);
    buf[m + 5] ^= 0x01;
    buf[first_inner + AKV_AOF_REC_HEADER + 2] ^= 0x01;
    memset(&s, 0, sizeof(s));
    s.stop_at = SIZE_MAX;
    ck_assert_int_eq(akv_aof_salvage(buf, all_len, salv_keep, salv_skip, &s, &res), 0);
    ck_assert_uint_eq(s.nskips, 1);
    ck_assert_int_eq(s.skips[0].kind, AKV_AOF_SKIP_REST);
    ck_assert_uint_eq(s.skips[0].offset, m);
    ck_assert_uint_eq(s.nkept, MULTI_AT);

    /* A zeroed tail after good records, then a torn one. */
    memcpy(buf, all_file, all_len);
    memset(buf + all_len, 0, 100);
    memset(&s, 0, sizeof(s));
    s.stop_at = SIZE_MAX;
    ck_assert_int_eq(akv_aof_salvage(buf, all_len + 100, salv_keep, salv_skip, &s, &res), 0);
    ck_assert_uint_eq(s.nkept, NTOP);
    ck_assert_uint_eq(s.nskips, 1);
    ck_assert_int_eq(s.skips[0].kind, AKV_AOF_SKIP_REST);
    ck_assert_uint_eq(s.skips[0].len, 100);
    memset(&s, 0, sizeof(s));
    s.stop_at = SIZE_MAX;
    ck_assert_int_eq(akv_aof_salvage(all_file, all_len - 3, salv_keep, salv_skip, &s, &res), 0);
    ck_assert_uint_eq(s.nkept, NTOP - 1);
    ck_assert_int_eq(s.skips[0].kind, AKV_AOF_SKIP_TORN);
    ck_assert_int_eq(s.skips[0].type, AKV_AOF_PAYLOAD);
    ck_assert_uint_eq(s.skips[0].offset, all_bounds[NTOP - 1]);

    /* A file header alone, cut short, or none. */
    ck_assert_int_eq(akv_aof_salvage(all_file, 0, NULL, NULL, NULL, &res), 0);
    ck_assert_uint_eq(res.skips, 0);
    ck_assert_int_eq(akv_aof_salvage(all_file, 10, NULL, NULL, NULL, &res), 0);
    ck_assert_uint_eq(res.skips, 1);
    ck_assert_uint_eq(res.skipped_bytes, 10);
    memcpy(buf, "*3\r\n$3\r\nSET\r\n$3\r\ncat\r\n", 22);
    ck_assert_int_eq(akv_aof_salvage(buf, 22, NULL, NULL, NULL, &res), -EBADMSG);
    ck_assert_str_eq(res.reason, "not an attnkv append-only file (bad magic)");

    /* A callback's nonzero return stops the walk and is returned. */
    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    ck_assert_int_eq(akv_aof_salvage(all_file, all_len, salv_keep, salv_skip, &s, &res),
                     -ECANCELED);
    ck_assert_uint_eq(res.records, 2);
}
END_TEST

/* Resynchronising stays linear: a bad header followed by 1 MiB of headers
 * that check out, every 16 bytes, each claiming a record that runs nearly
 * to the end of the file and fails its payload checksum. Checking each of
 * those whole would checksum ~32 GiB; the walk checks one. */
START_TEST(test_salvage_linear)
{
    size_t len = (size_t)1 << 20;
    uint8_t *buf = malloc(len);
    struct akv_aof_salvage_result res;
    struct salvaged s = {.stop_at = SIZE_MAX};

    ck_assert_ptr_nonnull(buf);
    akv_aof_file_header(buf);
    memset(buf + AKV_AOF_FILE_HEADER, 0, len - AKV_AOF_FILE_HEADER);
    for (size_t p = AKV_AOF_FILE_HEADER + 16; p + 40 <= len; p += 16) {
        uint32_t plen = (uint32_t)(len - p - AKV_AOF_REC_HEADER - 8), c;
        buf[p] = 0xA7;
        buf[p + 1] = AKV_AOF_DEL;
        buf[p + 2] = buf[p + 3] = 0;
        memcpy(buf + p + 4, &plen, 4);
        c = (uint32_t)crc32(0, buf + p, 8);
        memcpy(buf + p + 8, &c, 4);
        memset(buf + p + 12, 0, 4); /* the wrong payload checksum */
    }
    ck_assert_int_eq(akv_aof_salvage(buf, len, salv_keep, salv_skip, &s, &res), 0);
    ck_assert_uint_eq(s.nkept, 0);
    ck_assert_uint_eq(res.skipped_bytes, len - AKV_AOF_FILE_HEADER);
    free(buf);
}
END_TEST

/* The fuzz target itself checks the invariants and aborts, failing the
 * test, if one breaks. */

/* ------------------------------------------------------------------------
 * The snapshot preamble: SNAPBEGIN, SNAPCHUNK, SNAPEND at the head.
 */

static const uint32_t ids_a[] = {7}, ids_b[] = {1, 2, 3, 4}, ids_c[] = {9};
static const struct akv_aof_snap_entry snap_ents[] = {
    {0, 0, 1.5, "cat", "animal", 3, 6, ids_a, ids_c, 1, 1},
    {AKV_AOF_SNAP_PAYLOAD, 0, 0.25, "blob", "\0\r\nx", 4, 4, ids_c, NULL, 1, 0},
    {0, 1893456000000ull, 2.0, "a b c d", "dog", 7, 3, ids_b, ids_a, 4, 1},
    {0, 0, 3.0, "db2 key", "phrase of words", 7, 15, ids_b, ids_b, 2, 4},
};
#define SNAP_DB0 3  /* entries of the first chunk (database 0); the last in database 2 */
#define SNAP_RECS 5 /* BEGIN, two chunks, END, a PUT */

static uint8_t snap_file[4096];
static size_t snap_len;
static size_t snap_bounds[SNAP_RECS + 1];
static const struct akv_aof_snap_head snap_head = {
    AKV_AOF_SNAP_FORMAT, 16, 2024, 0x1122334455667788ull, 0x99aabbccddeeff00ull, 16,
    1765000000000ull};

static size_t snap_chunk(uint8_t *dst, uint32_t db, const struct akv_aof_snap_entry *e, size_t n)
{
    size_t at = AKV_AOF_SNAP_CHUNK_START;

    for (size_t i = 0; i < n; i++)
        at += akv_aof_snap_entry_encode(dst + at, &e[i]);
    return akv_aof_snap_chunk_seal(dst, db, (uint32_t)n, at - AKV_AOF_SNAP_CHUNK_START);
}

static void build_snap(void)
{
    size_t off = AKV_AOF_FILE_HEADER, r = 0;

    akv_aof_file_header(snap_file);
    snap_bounds[r++] = off;
    off += akv_aof_snap_head_encode(snap_file + off, &snap_head);
    snap_bounds[r++] = off;
    off += snap_chunk(snap_file + off, 0, snap_ents, SNAP_DB0);
    snap_bounds[r++] = off;
    off += snap_chunk(snap_file + off, 2, snap_ents + SNAP_DB0, 1);
    snap_bounds[r++] = off;
    off += akv_aof_snap_end_encode(snap_file + off, 4, 2);
    snap_bounds[r++] = off;
    off += akv_aof_encode(snap_file + off, AKV_AOF_PUT, "cat", 3, "dog", 3);
    snap_bounds[r] = off;
    snap_len = off;
}

struct snap_seen {
    int types[8];
    size_t n, entries;
};

static void same_entry(const struct akv_aof_snap_entry *got, const struct akv_aof_snap_entry *e)
{
    ck_assert_uint_eq(got->flags & AKV_AOF_SNAP_PAYLOAD, e->flags);
    ck_assert_uint_eq(got->expire, e->expire);
    ck_assert(memcmp(&got->knorm, &e->knorm, sizeof(double)) == 0);
    ck_assert_uint_eq(got->klen, e->klen);
    ck_assert_uint_eq(got->vlen, e->vlen);
    ck_assert(memcmp(got->key, e->key, e->klen) == 0);
    ck_assert(e->vlen == 0 || memcmp(got->val, e->val, e->vlen) == 0);
    ck_assert_uint_eq(got->nk, e->nk);
    ck_assert_uint_eq(got->nv, e->nv);
    ck_assert(memcmp(got->kids, e->kids, e->nk * 4) == 0);
    ck_assert(e->nv == 0 || memcmp(got->vids, e->vids, e->nv * 4) == 0);
}

static int snap_collect(void *arg, const struct akv_aof_record *r)
{
    struct snap_seen *c = arg;

    ck_assert_uint_lt(c->n, 8);
    ck_assert_uint_eq(r->offset, snap_bounds[c->n]);
    ck_assert_uint_eq(r->size, snap_bounds[c->n + 1] - snap_bounds[c->n]);
    c->types[c->n++] = r->type;
    if (r->type == AKV_AOF_SNAPBEGIN) {
        struct akv_aof_snap_head h;
        akv_aof_snap_head_decode(r, &h);
        ck_assert_uint_eq(h.format, snap_head.format);
        ck_assert_uint_eq(h.dim, snap_head.dim);
        ck_assert_uint_eq(h.words, snap_head.words);
        ck_assert_uint_eq(h.meta_sum, snap_head.meta_sum);
        ck_assert_uint_eq(h.data_sum, snap_head.data_sum);
        ck_assert_uint_eq(h.databases, snap_head.databases);
        ck_assert_uint_eq(h.time_ms, snap_head.time_ms);
    } else if (r->type == AKV_AOF_SNAPCHUNK) {
        uint32_t kids[AKV_AOF_SNAP_WORDS_MAX], vids[AKV_AOF_SNAP_WORDS_MAX];
        struct akv_aof_snap_entry e;
        size_t at = 0;
        ck_assert_uint_eq(r->db, c->entries == 0 ? 0 : 2);
        while (akv_aof_snap_next(r, &at, &e, kids, vids))
            same_entry(&e, &snap_ents[c->entries++]);
    } else if (r->type == AKV_AOF_SNAPEND) {
        uint64_t entries, chunks;
        akv_aof_snap_end_decode(r, &entries, &chunks);
        ck_assert_uint_eq(entries, 4);
        ck_assert_uint_eq(chunks, 2);
    }
    return 0;
}

START_TEST(test_snap_roundtrip)
{
    struct akv_aof_result res;
    struct snap_seen c = {.n = 0};

    build_snap();
    ck_assert_int_eq(akv_aof_parse(snap_file, snap_len, snap_collect, &c, &res), 0);
    ck_assert_int_eq(res.status, AKV_AOF_OK);
    ck_assert_uint_eq(c.n, SNAP_RECS);
    ck_assert_uint_eq(c.entries, 4);
    ck_assert_int_eq(c.types[0], AKV_AOF_SNAPBEGIN);
    ck_assert_int_eq(c.types[3], AKV_AOF_SNAPEND);
    ck_assert_int_eq(res.snap, 2);
    ck_assert_uint_eq(res.snap_entries, 4);
    ck_assert_uint_eq(res.snap_chunks, 2);
    ck_assert_uint_eq(res.snap_end, snap_bounds[4]);
    ck_assert_uint_eq(res.counts[AKV_AOF_SNAPCHUNK], 2);
    ck_assert_str_eq(akv_aof_type_name(AKV_AOF_SNAPCHUNK), "SNAPCHUNK");
    /* The parse in steps of one record agrees. */
    {
        struct akv_aof_parser ps;
        struct snap_seen cs = {.n = 0};
        akv_aof_parser_init(&ps, snap_file, snap_len);
        while (!ps.done)
            ck_assert_int_eq(akv_aof_parse_step(&ps, 1, snap_collect, &cs), 0);
        ck_assert_int_eq(ps.res.status, AKV_AOF_OK);
        ck_assert_uint_eq(cs.entries, 4);
    }
    LLVMFuzzerTestOneInput(snap_file, snap_len);
}
END_TEST

/* Every cut of the file: inside the preamble (or at a boundary before its
 * SNAPEND) it is damage at the record cut, or at the cut itself; after
 * it, the usual torn tail. */
START_TEST(test_snap_every_truncation)
{
    build_snap();
    for (size_t cut = AKV_AOF_FILE_HEADER + 1; cut < snap_len; cut++) {
        struct akv_aof_result res;
        size_t rec = 0;
        while (snap_bounds[rec + 1] <= cut)
            rec++;
        ck_assert_int_eq(akv_aof_parse(snap_file, cut, NULL, NULL, &res), 0);
        if (cut == AKV_AOF_FILE_HEADER + 1) {
            /* Only the magic byte of the first record: nothing says it
             * was a preamble (a limitation, see docs/persistence.md). */
            ck_assert_int_eq(res.status, AKV_AOF_TORN);
        } else if (cut < snap_bounds[4]) {
            ck_assert_msg(res.status == AKV_AOF_CORRUPT, "cut %zu: status %d", cut, res.status);
            ck_assert_uint_eq(res.bad_offset, cut == snap_bounds[rec] ? cut : snap_bounds[rec]);
            ck_assert(strstr(res.reason, "cut short") != NULL);
        } else if (cut == snap_bounds[4]) {
            ck_assert_int_eq(res.status, AKV_AOF_OK);
        } else {
            ck_assert_int_eq(res.status, AKV_AOF_TORN);
            ck_assert_uint_eq(res.bad_offset, snap_bounds[4]);
        }
        LLVMFuzzerTestOneInput(snap_file, cut);
    }
}
END_TEST

/* Every byte of the file changed: damage at the record holding it. */
START_TEST(test_snap_every_byte_corruption)
{
    static const uint8_t flips[] = {0x01, 0x80, 0xff};

    build_snap();
    for (size_t i = 0; i < snap_len; i++) {
        size_t rec = 0;
        while (snap_bounds[rec + 1] <= i)
            rec++;
        for (size_t f = 0; f < sizeof(flips); f++) {
            struct akv_aof_result res;
            snap_file[i] ^= flips[f];
            ck_assert_int_eq(akv_aof_parse(snap_file, snap_len, NULL, NULL, &res), 0);
            if (i % 7 == 0 && f == 0)
                LLVMFuzzerTestOneInput(snap_file, snap_len);
            snap_file[i] ^= flips[f];
            ck_assert_msg(res.status == AKV_AOF_CORRUPT, "byte %zu ^ %#x: status %d", i, flips[f],
                          res.status);
            ck_assert_uint_eq(res.bad_offset, i < AKV_AOF_FILE_HEADER ? 0 : snap_bounds[rec]);
        }
    }
}
END_TEST

/* A damaged chunk: salvage skips exactly it. */
START_TEST(test_snap_salvage)
{
    struct akv_aof_salvage_result res;
    struct salvaged s = {.stop_at = SIZE_MAX};

    build_snap();
    snap_file[snap_bounds[1] + 40] ^= 0x10;
    ck_assert_int_eq(akv_aof_salvage(snap_file, snap_len, salv_keep, salv_skip, &s, &res), 0);
    ck_assert_uint_eq(s.nskips, 1);
    ck_assert_uint_eq(s.skips[0].offset, snap_bounds[1]);
    ck_assert_uint_eq(s.skips[0].len, snap_bounds[2] - snap_bounds[1]);
    ck_assert_int_eq(s.skips[0].type, AKV_AOF_SNAPCHUNK);
    ck_assert_uint_eq(s.nkept, SNAP_RECS - 1);
}
END_TEST

/* Records whose checksums hold but whose order or contents do not. */
static size_t snap_put(uint8_t *buf, size_t off, uint8_t type, const void *p, size_t n)
{
    return off + raw_record(buf + off, type, 0, p, (uint32_t)n, (uint32_t)n);
}

static void expect_snap_corrupt(const uint8_t *buf, size_t len, size_t at, const char *reason)
{
    struct akv_aof_result res;

    ck_assert_int_eq(akv_aof_parse(buf, len, NULL, NULL, &res), 0);
    ck_assert_msg(res.status == AKV_AOF_CORRUPT, "%s: status %d", reason, res.status);
    ck_assert_str_eq(res.reason, reason);
    ck_assert_uint_eq(res.bad_offset, at);
    LLVMFuzzerTestOneInput(buf, len);
}

START_TEST(test_snap_order_and_contents)
{
    static uint8_t buf[4096];
    uint8_t head[AKV_AOF_REC_HEADER + AKV_AOF_SNAP_HEAD], end[64], chunk[512], ent[256];
    size_t hl, el, cl, off, b;
    struct akv_aof_snap_entry e = snap_ents[0];

    hl = akv_aof_snap_head_encode(head, &snap_head);
    cl = snap_chunk(chunk, 0, snap_ents, 1);
    akv_aof_file_header(buf);

    /* A SNAPBEGIN that is not first. */
    off = AKV_AOF_FILE_HEADER +
          akv_aof_encode(buf + AKV_AOF_FILE_HEADER, AKV_AOF_FLUSHALL, NULL, 0, NULL, 0);
    b = off;
    memcpy(buf + off, head, hl);
    expect_snap_corrupt(buf, off + hl, b, "a SNAPBEGIN record that is not the first record");
    /* A chunk without a preamble. */
    memcpy(buf + b, chunk, cl);
    expect_snap_corrupt(buf, b + cl, b, "a snapshot preamble record outside the preamble");
    /* Another record inside the preamble. */
    off = AKV_AOF_FILE_HEADER;
    memcpy(buf + off, head, hl);
    off += hl;
    b = off;
    off += akv_aof_encode(buf + off, AKV_AOF_FLUSHALL, NULL, 0, NULL, 0);
    expect_snap_corrupt(buf, off, b,
                        "the snapshot preamble is not closed (another record before its SNAPEND)");
    /* The file ends before the SNAPEND. */
    memcpy(buf + b, chunk, cl);
    expect_snap_corrupt(buf, b + cl, b + cl,
                        "the snapshot preamble is cut short (the file ends before its SNAPEND "
                        "record)");
    /* A SNAPEND whose counts are wrong. */
    off = b + cl;
    el = akv_aof_snap_end_encode(end, 2, 1);
    memcpy(buf + off, end, el);
    expect_snap_corrupt(buf, off + el, off,
                        "the SNAPEND record's counts differ from the preamble's chunks");
    el = akv_aof_snap_end_encode(end, 1, 2);
    memcpy(buf + off, end, el);
    expect_snap_corrupt(buf, off + el, off,
                        "the SNAPEND record's counts differ from the preamble's chunks");
    /* Two preambles. */
    el = akv_aof_snap_end_encode(end, 1, 1);
    memcpy(buf + off, end, el);
    memcpy(buf + off + el, head, hl);
    expect_snap_corrupt(buf, off + el + hl, off + el,
                        "a SNAPBEGIN record that is not the first record");

    /* Bad SNAPBEGIN and SNAPEND payloads. */
    off = AKV_AOF_FILE_HEADER;
    expect_snap_corrupt(buf, snap_put(buf, off, AKV_AOF_SNAPBEGIN, head + 16, 47), off,
                        "bad SNAPBEGIN record");
    head[16] = 2;
    expect_snap_corrupt(buf, snap_put(buf, off, AKV_AOF_SNAPBEGIN, head + 16, 48), off,
                        "unsupported snapshot preamble format");
    head[16] = 1;
    b = off + hl;
    memcpy(buf + off, head, hl);
    expect_snap_corrupt(buf, snap_put(buf, b, AKV_AOF_SNAPEND, end + 16, 15), b,
                        "bad SNAPEND record");

    /* Chunks with good checksums and bad entries. */
#define BAD_CHUNK(mutate, count, reason)                                                           \
    do {                                                                                           \
        size_t n = akv_aof_snap_entry_encode(ent + 8, &e);                                         \
        uint32_t db = 0, cnt = (count);                                                            \
        memcpy(ent, &db, 4);                                                                       \
        memcpy(ent + 4, &cnt, 4);                                                                  \
        mutate;                                                                                    \
        expect_snap_corrupt(buf, snap_put(buf, b, AKV_AOF_SNAPCHUNK, ent, 8 + n), b, reason);      \
    } while (0)
    BAD_CHUNK((void)0, 0, "bad SNAPCHUNK entry count");
    BAD_CHUNK((void)0, 2, "bad SNAPCHUNK entry count");
    BAD_CHUNK((void)0, AKV_AOF_SNAP_CHUNK_ENTRIES + 1, "bad SNAPCHUNK entry count");
    BAD_CHUNK(ent[8] = 4, 1, "bad entry inside a SNAPCHUNK record");  /* unknown flag */
    BAD_CHUNK(ent[8] = 1, 1, "bad entry inside a SNAPCHUNK record");  /* payload with words */
    BAD_CHUNK(ent[9] = 0, 1, "bad entry inside a SNAPCHUNK record");  /* no key word */
    BAD_CHUNK(ent[9] = 65, 1, "bad entry inside a SNAPCHUNK record"); /* too many */
    BAD_CHUNK(ent[11] = 1, 1, "bad entry inside a SNAPCHUNK record"); /* reserved */
    BAD_CHUNK(memset(ent + 12, 0, 4), 1, "bad entry inside a SNAPCHUNK record"); /* key length 0 */
    BAD_CHUNK(ent[12] = 200, 1, "bad entry inside a SNAPCHUNK record");          /* past the end */
    BAD_CHUNK(ent[16] = 0xff, 1, "bad entry inside a SNAPCHUNK record");         /* value past it */
    BAD_CHUNK(memset(ent + 20, 0xff, 8), 1, "bad entry inside a SNAPCHUNK record"); /* NaN norm */
    BAD_CHUNK(ent[27] |= 0x80, 1, "bad entry inside a SNAPCHUNK record"); /* negative norm */
    /* An expiry flag with an expiry time of 0. */
    e.expire = 5;
    BAD_CHUNK(memset(ent + 20, 0, 8), 1, "bad entry inside a SNAPCHUNK record");
    e.expire = 0;
    /* A chunk inside a MULTI. */
    {
        uint8_t multi[600];
        uint32_t one = 1;
        memcpy(multi, &one, 4);
        memcpy(multi + 4, chunk, cl);
        expect_snap_corrupt(buf, snap_put(buf, b, AKV_AOF_MULTI, multi, 4 + cl), b,
                            "the snapshot preamble is not closed (another record before its "
                            "SNAPEND)");
        expect_snap_corrupt(buf, snap_put(buf, AKV_AOF_FILE_HEADER, AKV_AOF_MULTI, multi, 4 + cl),
                            AKV_AOF_FILE_HEADER, "bad record inside a MULTI record");
    }
#undef BAD_CHUNK
}
END_TEST

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
    /* And the file with every type, whole, cut and damaged. */
    build_all();
    for (size_t n = 0; n <= all_len; n++)
        LLVMFuzzerTestOneInput(all_file, n);
    for (size_t i = AKV_AOF_FILE_HEADER; i < all_len; i += 7) {
        all_file[i] ^= 0x40;
        LLVMFuzzerTestOneInput(all_file, all_len);
        all_file[i] ^= 0x40;
    }
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
    tcase_add_test(tc, test_all_types_roundtrip);
    tcase_add_test(tc, test_stop_inside_multi);
    tcase_add_test(tc, test_parse_in_steps);
    tcase_add_test(tc, test_big_multi_in_pieces);
    tcase_add_test(tc, test_all_types_every_truncation);
    tcase_add_test(tc, test_all_types_every_byte_corruption);
    tcase_add_test(tc, test_multi_damage);
    tcase_add_test(tc, test_bad_new_payloads);
    tcase_add_test(tc, test_salvage_every_byte_corruption);
    tcase_add_test(tc, test_salvage_ranges);
    tcase_add_test(tc, test_salvage_linear);
    tcase_add_test(tc, test_snap_roundtrip);
    tcase_add_test(tc, test_snap_every_truncation);
    tcase_add_test(tc, test_snap_every_byte_corruption);
    tcase_add_test(tc, test_snap_salvage);
    tcase_add_test(tc, test_snap_order_and_contents);
    tcase_add_test(tc, test_fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(aof_suite());
}
