/*
 * test-entry.c - Check suite for the cluster log entry format
 * (src/cluster/entry.c): round trips of every kind (a single command, a
 * transaction with its WATCHed keys, expired keys, a node's address, the
 * vocabulary) through akv_entry_put_* and akv_entry_decode and the
 * iterators, field by field; akv_entry_stamp; the padding (up to 7 zero
 * bytes); every truncation of each kind refused; every single-byte change
 * of each kind either refused or decoded into an entry whose walk stays
 * inside it; bad headers, counts and reserved bytes; length fields up to
 * UINT32_MAX; and a replay of the fuzzer's corpus and saved crashers
 * through the fuzz target (fuzz/fuzz-entry.c is linked in).
 *
 * Each input is decoded from a heap block of exactly its length, so that
 * the ASan build sees any read past it.
 */
#include <check.h>

#include "runsuite.h"

#include "replay.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/entry.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ORIGIN 0x1122334455667788ULL
#define REQ 42
#define NOW 1764000000123ULL

/* ------------------------------------------------------------------------
 * The sample entries, one per kind and shape.
 */

static void put_head(struct akv_buf *b, enum akv_entry_kind kind, unsigned flags)
{
    akv_buf_init(b);
    ck_assert_int_eq(akv_entry_put_head(b, kind, flags, ORIGIN, REQ, NOW), 0);
}

static void put_cmd(struct akv_buf *b, uint32_t argc, const char *const *argv, const size_t *lens)
{
    ck_assert_int_eq(akv_entry_put_u32(b, argc), 0);
    for (uint32_t i = 0; i < argc; i++)
        ck_assert_int_eq(akv_entry_put_bytes(b, argv[i], lens[i]), 0);
}

/* SET "k\0ey" "value": one command, RESP3, database 5. */
static const char *const set_argv[] = {"SET", "k\0ey", "value"};
static const size_t set_lens[] = {3, 4, 5};

static void build_single(struct akv_buf *b)
{
    put_head(b, AKV_ENTRY_CMDS, 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 5), 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 3), 0); /* resp 3, reserved bytes 0 */
    ck_assert_int_eq(akv_entry_put_u32(b, 1), 0);
    put_cmd(b, 3, set_argv, set_lens);
}

/* A transaction: INCR a; SET b "" (an empty argument); PING; with two
 * WATCHed keys, one present with an expiry, one absent with an empty name. */
static const char *const incr_argv[] = {"INCR", "a"};
static const size_t incr_lens[] = {4, 1};
static const char *const setb_argv[] = {"SET", "b", ""};
static const size_t setb_lens[] = {3, 1, 0};
static const char *const ping_argv[] = {"PING"};
static const size_t ping_lens[] = {4};

struct wsample {
    uint32_t db;
    const char *key;
    size_t klen;
    int present;
    uint64_t expire;
    const char *val;
    size_t vlen;
};

static const struct wsample watched[] = {
    {0, "a", 1, 1, 1764000009999ULL, "17", 2},
    {15, "", 0, 0, 0, "", 0},
};

static void build_exec(struct akv_buf *b)
{
    put_head(b, AKV_ENTRY_CMDS, AKV_ENTRY_EXEC);
    ck_assert_int_eq(akv_entry_put_u32(b, 2), 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 2), 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 3), 0);
    put_cmd(b, 2, incr_argv, incr_lens);
    put_cmd(b, 3, setb_argv, setb_lens);
    put_cmd(b, 1, ping_argv, ping_lens);
    ck_assert_int_eq(akv_entry_put_u32(b, 2), 0);
    for (size_t i = 0; i < 2; i++) {
        const struct wsample *w = &watched[i];
        ck_assert_int_eq(akv_entry_put_u32(b, w->db), 0);
        ck_assert_int_eq(akv_entry_put_bytes(b, w->key, w->klen), 0);
        ck_assert_int_eq(akv_entry_put_u8(b, (uint8_t)w->present), 0);
        ck_assert_int_eq(akv_entry_put_u64(b, w->expire), 0);
        ck_assert_int_eq(akv_entry_put_bytes(b, w->val, w->vlen), 0);
    }
}

/* A transaction of one command and no WATCH. */
static void build_exec_nowatch(struct akv_buf *b)
{
    put_head(b, AKV_ENTRY_CMDS, AKV_ENTRY_EXEC);
    ck_assert_int_eq(akv_entry_put_u32(b, 0), 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 2), 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 1), 0);
    put_cmd(b, 1, ping_argv, ping_lens);
    ck_assert_int_eq(akv_entry_put_u32(b, 0), 0);
}

struct ksample {
    uint32_t db;
    const char *key;
    size_t klen;
    uint64_t expire;
};

static const struct ksample expired[] = {
    {0, "cat", 3, 1764000000100ULL},
    {3, "ice cream", 9, 1764000000000ULL},
    {9, "", 0, 1},
};

static void build_expired(struct akv_buf *b)
{
    put_head(b, AKV_ENTRY_EXPIRED, 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 3), 0);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(akv_entry_put_u32(b, expired[i].db), 0);
        ck_assert_int_eq(akv_entry_put_bytes(b, expired[i].key, expired[i].klen), 0);
        ck_assert_int_eq(akv_entry_put_u64(b, expired[i].expire), 0);
    }
}

static const char node_addr[] = "127.0.0.1:7001";

static void build_node(struct akv_buf *b)
{
    put_head(b, AKV_ENTRY_NODE, 0);
    ck_assert_int_eq(akv_entry_put_bytes(b, node_addr, strlen(node_addr)), 0);
}

static void build_vocab(struct akv_buf *b)
{
    put_head(b, AKV_ENTRY_VOCAB, 0);
    ck_assert_int_eq(akv_entry_put_u64(b, 0xa1a2a3a4a5a6a7a8ULL), 0);
    ck_assert_int_eq(akv_entry_put_u64(b, 0xb1b2b3b4b5b6b7b8ULL), 0);
    ck_assert_int_eq(akv_entry_put_u64(b, 400000), 0);
    ck_assert_int_eq(akv_entry_put_u32(b, 50), 0);
}

static void (*const builders[])(struct akv_buf *) = {
    build_single, build_exec, build_exec_nowatch, build_expired, build_node, build_vocab,
};
#define NKINDS (sizeof(builders) / sizeof(builders[0]))

/* A heap copy of exactly n bytes (one byte for n == 0), for ASan. */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(c);
    if (n)
        memcpy(c, p, n);
    return c;
}

static int decode_exact(const void *p, size_t n, struct akv_entry *e)
{
    uint8_t *c = exact(p, n);
    int rc = akv_entry_decode(c, n, e);

    /* An accepted entry is walked by the fuzz target's checks while the
     * exact copy is still there. */
    if (rc == 0)
        LLVMFuzzerTestOneInput(c, n);
    free(c);
    return rc;
}

static void check_head(const struct akv_entry *e, enum akv_entry_kind kind, unsigned flags)
{
    ck_assert_int_eq(e->kind, kind);
    ck_assert_uint_eq(e->flags, flags);
    ck_assert_uint_eq(e->origin, ORIGIN);
    ck_assert_uint_eq(e->req, REQ);
    ck_assert_uint_eq(e->now_ms, NOW);
}

static const uint8_t *check_cmd(const uint8_t *p, uint32_t argc, const char *const *argv,
                                const size_t *lens)
{
    const uint8_t *arg, *next;
    uint32_t n;

    next = akv_entry_cmd(p, &n, &arg);
    ck_assert_uint_eq(n, argc);
    for (uint32_t i = 0; i < argc; i++) {
        const char *s;
        size_t len;

        arg = akv_entry_arg(arg, &s, &len);
        ck_assert_uint_eq(len, lens[i]);
        ck_assert(memcmp(s, argv[i], len) == 0);
    }
    ck_assert_ptr_eq(arg, next);
    return next;
}

/* ------------------------------------------------------------------------
 * Round trips.
 */

START_TEST(test_roundtrip_single)
{
    struct akv_buf b;
    struct akv_entry e;

    build_single(&b);
    ck_assert_int_eq(akv_entry_decode(b.p, b.len, &e), 0);
    check_head(&e, AKV_ENTRY_CMDS, 0);
    ck_assert_uint_eq(e.db, 5);
    ck_assert_int_eq(e.resp, 3);
    ck_assert_uint_eq(e.ncmds, 1);
    ck_assert_ptr_eq(e.cmds, (const uint8_t *)b.p + AKV_ENTRY_HEAD + 12);
    ck_assert_uint_eq(e.nwatch, 0);
    ck_assert_ptr_null(e.watch);
    ck_assert_ptr_eq(check_cmd(e.cmds, 3, set_argv, set_lens), (const uint8_t *)b.p + b.len);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_roundtrip_exec)
{
    struct akv_buf b;
    struct akv_entry e;
    const uint8_t *p;

    build_exec(&b);
    ck_assert_int_eq(akv_entry_decode(b.p, b.len, &e), 0);
    check_head(&e, AKV_ENTRY_CMDS, AKV_ENTRY_EXEC);
    ck_assert_uint_eq(e.db, 2);
    ck_assert_int_eq(e.resp, 2);
    ck_assert_uint_eq(e.ncmds, 3);
    p = check_cmd(e.cmds, 2, incr_argv, incr_lens);
    p = check_cmd(p, 3, setb_argv, setb_lens);
    p = check_cmd(p, 1, ping_argv, ping_lens);
    ck_assert_ptr_eq(e.watch, p + 4);
    ck_assert_uint_eq(e.nwatch, 2);
    p = e.watch;
    for (size_t i = 0; i < 2; i++) {
        struct akv_entry_watch w;

        p = akv_entry_watch_next(p, &w);
        ck_assert_uint_eq(w.db, watched[i].db);
        ck_assert_uint_eq(w.klen, watched[i].klen);
        ck_assert(memcmp(w.key, watched[i].key, w.klen) == 0);
        ck_assert_int_eq(w.present, watched[i].present);
        ck_assert_uint_eq(w.expire, watched[i].expire);
        ck_assert_uint_eq(w.vlen, watched[i].vlen);
        ck_assert(memcmp(w.val, watched[i].val, w.vlen) == 0);
    }
    ck_assert_ptr_eq(p, (const uint8_t *)b.p + b.len);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    akv_buf_fini(&b);

    build_exec_nowatch(&b);
    ck_assert_int_eq(akv_entry_decode(b.p, b.len, &e), 0);
    check_head(&e, AKV_ENTRY_CMDS, AKV_ENTRY_EXEC);
    ck_assert_uint_eq(e.db, 0);
    ck_assert_uint_eq(e.ncmds, 1);
    p = check_cmd(e.cmds, 1, ping_argv, ping_lens);
    ck_assert_uint_eq(e.nwatch, 0);
    ck_assert_ptr_eq(e.watch, p + 4);
    ck_assert_ptr_eq(e.watch, (const uint8_t *)b.p + b.len);
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_roundtrip_expired)
{
    struct akv_buf b;
    struct akv_entry e;
    const uint8_t *p;

    build_expired(&b);
    ck_assert_int_eq(akv_entry_decode(b.p, b.len, &e), 0);
    check_head(&e, AKV_ENTRY_EXPIRED, 0);
    ck_assert_uint_eq(e.nkeys, 3);
    ck_assert_uint_eq(e.ncmds, 0);
    p = e.keys;
    for (size_t i = 0; i < 3; i++) {
        const char *key;
        uint64_t expire;
        uint32_t db;
        size_t klen;

        p = akv_entry_key_next(p, &db, &key, &klen, &expire);
        ck_assert_uint_eq(db, expired[i].db);
        ck_assert_uint_eq(klen, expired[i].klen);
        ck_assert(memcmp(key, expired[i].key, klen) == 0);
        ck_assert_uint_eq(expire, expired[i].expire);
    }
    ck_assert_ptr_eq(p, (const uint8_t *)b.p + b.len);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    akv_buf_fini(&b);

    /* No keys at all is an entry too. */
    put_head(&b, AKV_ENTRY_EXPIRED, 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    ck_assert_uint_eq(e.nkeys, 0);
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_roundtrip_node_vocab)
{
    struct akv_buf b;
    struct akv_entry e;

    build_node(&b);
    ck_assert_int_eq(akv_entry_decode(b.p, b.len, &e), 0);
    check_head(&e, AKV_ENTRY_NODE, 0);
    ck_assert_uint_eq(e.addrlen, strlen(node_addr));
    ck_assert(memcmp(e.addr, node_addr, e.addrlen) == 0);
    ck_assert_ptr_eq(e.addr + e.addrlen, b.p + b.len);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    akv_buf_fini(&b);

    build_vocab(&b);
    ck_assert_uint_eq(b.len, AKV_ENTRY_HEAD + 28);
    ck_assert_int_eq(akv_entry_decode(b.p, b.len, &e), 0);
    check_head(&e, AKV_ENTRY_VOCAB, 0);
    ck_assert_uint_eq(e.vocab_meta, 0xa1a2a3a4a5a6a7a8ULL);
    ck_assert_uint_eq(e.vocab_data, 0xb1b2b3b4b5b6b7b8ULL);
    ck_assert_uint_eq(e.vocab_words, 400000);
    ck_assert_uint_eq(e.vocab_dim, 50);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    akv_buf_fini(&b);
}
END_TEST

/* The bytes are little-endian whatever the host. */
START_TEST(test_byte_layout)
{
    static const uint8_t want[] = {
        'K',  2,    3,    0,                            /* magic, version, NODE, flags */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* origin */
        42,   0,    0,    0,    0,    0,    0,    0,    /* request id */
        0x7b, 0xe8, 0x97, 0xb6, 0x9a, 0x01, 0,    0,    /* time */
        0,    0,    0,    0,    0,    0,    0,    0,    /* term (the leader stamps it) */
        14,   0,    0,    0,                            /* address length */
        '1',  '2',  '7',  '.',  '0',  '.',  '0',  '.',  '1', ':', '7', '0', '0', '1',
    };
    struct akv_buf b;

    build_node(&b);
    ck_assert_uint_eq(b.len, sizeof(want));
    ck_assert(memcmp(b.p, want, sizeof(want)) == 0);
    akv_buf_fini(&b);
}
END_TEST

START_TEST(test_set_time)
{
    for (size_t k = 0; k < NKINDS; k++) {
        struct akv_buf b;
        struct akv_entry before, after;
        uint8_t *orig;

        builders[k](&b);
        orig = exact(b.p, b.len);
        ck_assert_int_eq(akv_entry_decode(b.p, b.len, &before), 0);
        ck_assert_uint_eq(before.term, 0);
        akv_entry_stamp(b.p, 0xfedcba9876543210ULL, 0x0102030405060708ULL);
        ck_assert_int_eq(akv_entry_decode(b.p, b.len, &after), 0);
        ck_assert_uint_eq(after.now_ms, 0xfedcba9876543210ULL);
        ck_assert_uint_eq(after.term, 0x0102030405060708ULL);
        ck_assert_uint_eq((uint8_t)b.p[20], 0x10);
        ck_assert_uint_eq((uint8_t)b.p[27], 0xfe);
        ck_assert_uint_eq((uint8_t)b.p[28], 0x08);
        ck_assert_uint_eq((uint8_t)b.p[35], 0x01);
        /* Only bytes 20..35 changed: the time and the term. */
        ck_assert(memcmp(b.p, orig, 20) == 0);
        ck_assert(memcmp(b.p + 36, orig + 36, b.len - 36) == 0);
        before.now_ms = after.now_ms;
        before.term = after.term;
        ck_assert(memcmp(&before, &after, sizeof(before)) == 0);
        akv_entry_stamp(b.p, 0, 0);
        ck_assert_int_eq(akv_entry_decode(b.p, b.len, &after), 0);
        ck_assert_uint_eq(after.now_ms, 0);
        ck_assert_uint_eq(after.term, 0);
        free(orig);
        akv_buf_fini(&b);
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Padding and truncation.
 */

START_TEST(test_padding)
{
    static const uint8_t zeros[16];

    for (size_t k = 0; k < NKINDS; k++) {
        struct akv_buf b;
        struct akv_entry e, ref;
        size_t len;

        builders[k](&b);
        len = b.len;
        ck_assert_int_eq(akv_buf_append(&b, zeros, 16), 0);
        ck_assert_int_eq(akv_entry_decode(b.p, len, &ref), 0);
        /* Up to 7 zero bytes: the same entry. */
        for (size_t pad = 0; pad < 8; pad++) {
            ck_assert_msg(decode_exact(b.p, len + pad, &e) == 0, "kind %zu pad %zu", k, pad);
            ck_assert_int_eq(akv_entry_decode(b.p, len + pad, &e), 0);
            ck_assert(memcmp(&e, &ref, sizeof(e)) == 0);
        }
        /* 8 or more: refused. */
        for (size_t pad = 8; pad <= 16; pad++)
            ck_assert_msg(decode_exact(b.p, len + pad, &e) == -EBADMSG, "kind %zu pad %zu", k, pad);
        /* Any non-zero byte in the padding: refused. */
        for (size_t pad = 1; pad < 8; pad++)
            for (size_t i = 0; i < pad; i++) {
                static const uint8_t vals[] = {1, 0x80, 0xff};
                for (size_t v = 0; v < sizeof(vals); v++) {
                    b.p[len + i] = (char)vals[v];
                    ck_assert_msg(decode_exact(b.p, len + pad, &e) == -EBADMSG,
                                  "kind %zu pad %zu byte %zu", k, pad, i);
                    b.p[len + i] = 0;
                }
            }
        akv_buf_fini(&b);
    }
}
END_TEST

/* Every proper prefix of every kind is refused; the ASan build checks that
 * no prefix is read past. */
START_TEST(test_every_truncation)
{
    struct akv_entry e;

    for (size_t k = 0; k < NKINDS; k++) {
        struct akv_buf b;

        builders[k](&b);
        for (size_t n = 0; n < b.len; n++)
            ck_assert_msg(decode_exact(b.p, n, &e) == -EBADMSG, "kind %zu cut at %zu of %zu", k, n,
                          b.len);
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
        akv_buf_fini(&b);
    }
    /* And nothing at all, even without a buffer (a Raft buffer of no
     * bytes may have none): no arithmetic on the NULL pointer, which
     * clang's UBSan reports. */
    ck_assert_int_eq(akv_entry_decode("", 0, &e), -EBADMSG);
    ck_assert_int_eq(akv_entry_decode(NULL, 0, &e), -EBADMSG);
}
END_TEST

/* Every byte of every kind changed to several values: refused, or decoded
 * into an entry whose walk stays inside it (the fuzz target's checks run on
 * every accepted one, from an exact heap copy). The header's fixed bytes
 * are always refused. */
START_TEST(test_every_byte_corruption)
{
    static const uint8_t xors[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
    static const uint8_t sets[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff};

    for (size_t k = 0; k < NKINDS; k++) {
        struct akv_buf b;
        size_t accepted = 0, refused = 0;

        builders[k](&b);
        for (size_t i = 0; i < b.len; i++) {
            uint8_t orig = (uint8_t)b.p[i];

            for (size_t v = 0; v < sizeof(xors) + sizeof(sets); v++) {
                struct akv_entry e;
                uint8_t now = v < sizeof(xors) ? orig ^ xors[v] : sets[v - sizeof(xors)];
                int rc;

                if (now == orig)
                    continue;
                b.p[i] = (char)now;
                rc = decode_exact(b.p, b.len, &e);
                ck_assert_msg(rc == 0 || rc == -EBADMSG, "kind %zu byte %zu", k, i);
                if (i < 2)
                    ck_assert_msg(rc == -EBADMSG, "kind %zu byte %zu = %u", k, i, now);
                if (rc == 0)
                    accepted++;
                else
                    refused++;
            }
            b.p[i] = (char)orig;
        }
        /* Both outcomes happen: data bytes decode, length bytes do not. */
        ck_assert_uint_gt(accepted, 0);
        ck_assert_uint_gt(refused, 0);
        akv_buf_fini(&b);
    }
}
END_TEST

/* ------------------------------------------------------------------------
 * Bad fields.
 */

static void set32(struct akv_buf *b, size_t at, uint32_t v)
{
    for (size_t i = 0; i < 4; i++)
        b->p[at + i] = (char)(uint8_t)(v >> (8 * i));
}

START_TEST(test_bad_header)
{
    for (size_t k = 0; k < NKINDS; k++) {
        struct akv_buf b;
        struct akv_entry e;

        builders[k](&b);
        b.p[0] = 'k';
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
        b.p[0] = AKV_ENTRY_MAGIC;
        for (unsigned v = 0; v < 256; v++) {
            b.p[1] = (char)v;
            ck_assert_int_eq(decode_exact(b.p, b.len, &e), (v == AKV_ENTRY_VERSION ? 0 : -EBADMSG));
        }
        b.p[1] = AKV_ENTRY_VERSION;
        /* Kinds the format does not have. */
        {
            char kind = b.p[2];
            static const uint8_t bad[] = {0, 5, 6, 0x81, 0xff};
            for (size_t i = 0; i < sizeof(bad); i++) {
                b.p[2] = (char)bad[i];
                ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
            }
            b.p[2] = kind;
        }
        /* Flags: EXEC only, and only on CMDS. */
        for (unsigned f = 1; f < 256; f++) {
            unsigned orig = (uint8_t)b.p[3];
            int rc;

            if (f == orig)
                continue;
            b.p[3] = (char)f;
            rc = decode_exact(b.p, b.len, &e);
            if (b.p[2] != AKV_ENTRY_CMDS || (f & ~(unsigned)AKV_ENTRY_EXEC))
                ck_assert_msg(rc == -EBADMSG, "kind %zu flags %#x", k, f);
            b.p[3] = (char)orig;
        }
        akv_buf_fini(&b);
    }
}
END_TEST

START_TEST(test_bad_counts)
{
    struct akv_buf b;
    struct akv_entry e;
    const size_t ncmds_at = AKV_ENTRY_HEAD + 8, cmd_at = AKV_ENTRY_HEAD + 12;

    /* No command. */
    build_single(&b);
    set32(&b, ncmds_at, 0);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
    akv_buf_fini(&b);
    put_head(&b, AKV_ENTRY_CMDS, AKV_ENTRY_EXEC);
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 2), 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0); /* ncmds */
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0); /* nwatch */
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
    akv_buf_fini(&b);

    /* A command of no arguments, first or later in a transaction. */
    build_single(&b);
    set32(&b, cmd_at, 0);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
    akv_buf_fini(&b);
    put_head(&b, AKV_ENTRY_CMDS, AKV_ENTRY_EXEC);
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 2), 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 2), 0);
    put_cmd(&b, 1, ping_argv, ping_lens);
    put_cmd(&b, 0, NULL, NULL);
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
    b.p[3] = 0; /* and without the flag, two commands and a watch count */
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
    akv_buf_fini(&b);

    /* Two commands without the EXEC flag: refused, with it: a transaction. */
    put_head(&b, AKV_ENTRY_CMDS, 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 2), 0);
    ck_assert_int_eq(akv_entry_put_u32(&b, 2), 0);
    put_cmd(&b, 1, ping_argv, ping_lens);
    put_cmd(&b, 1, ping_argv, ping_lens);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
    ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
    b.p[3] = AKV_ENTRY_EXEC;
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    ck_assert_uint_eq(e.ncmds, 2);
    /* A transaction without its watch count is cut short. */
    ck_assert_int_eq(decode_exact(b.p, b.len - 4, &e), -EBADMSG);
    akv_buf_fini(&b);

    /* A WATCHed key's presence is 0 or 1. */
    build_exec(&b);
    {
        size_t at = b.len - 4 - 8 - 1; /* the last key's present byte */
        ck_assert_uint_eq((uint8_t)b.p[at], 0);
        for (unsigned v = 0; v < 256; v++) {
            b.p[at] = (char)v;
            ck_assert_int_eq(decode_exact(b.p, b.len, &e), (v <= 1 ? 0 : -EBADMSG));
        }
    }
    akv_buf_fini(&b);
}
END_TEST

/* The reserved bytes after resp are zero, and resp is 2 or 3. */
START_TEST(test_bad_resp)
{
    struct akv_buf b;
    struct akv_entry e;
    const size_t resp_at = AKV_ENTRY_HEAD + 4;

    build_single(&b);
    for (unsigned v = 0; v < 256; v++) {
        b.p[resp_at] = (char)v;
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), (v == 2 || v == 3 ? 0 : -EBADMSG));
    }
    b.p[resp_at] = 3;
    for (size_t i = 1; i < 4; i++) {
        b.p[resp_at + i] = 1;
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
        b.p[resp_at + i] = 0;
    }
    ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
    akv_buf_fini(&b);
}
END_TEST

/* Each length or count field of each kind set to huge values: refused
 * (quickly: the walk stops at the first field that does not fit). */
START_TEST(test_huge_lengths)
{
    static const uint32_t huge[] = {
        UINT32_MAX, UINT32_MAX - 1, UINT32_MAX - 3, 0x80000000u, 0x7fffffffu, 1u << 24, 1000};
    struct {
        void (*build)(struct akv_buf *);
        size_t at;
        const char *what;
    } fields[] = {
        {build_single, AKV_ENTRY_HEAD + 8, "ncmds"},
        {build_single, AKV_ENTRY_HEAD + 12, "argc"},
        {build_single, AKV_ENTRY_HEAD + 16, "first arg len"},
        {build_single, AKV_ENTRY_HEAD + 16 + 7, "second arg len"},
        {build_single, AKV_ENTRY_HEAD + 16 + 7 + 8, "last arg len"},
        {build_exec, AKV_ENTRY_HEAD + 8, "exec ncmds"},
        {build_exec, AKV_ENTRY_HEAD + 12, "exec first argc"},
        {build_exec_nowatch, AKV_ENTRY_HEAD + 12 + 12, "nwatch (none)"},
        {build_expired, AKV_ENTRY_HEAD, "nkeys"},
        {build_expired, AKV_ENTRY_HEAD + 8, "first klen"},
        {build_node, AKV_ENTRY_HEAD, "address len"},
    };

    for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
        for (size_t h = 0; h < sizeof(huge) / sizeof(huge[0]); h++) {
            struct akv_buf b;
            struct akv_entry e;

            fields[f].build(&b);
            set32(&b, fields[f].at, huge[h]);
            ck_assert_msg(decode_exact(b.p, b.len, &e) == -EBADMSG, "%s = %u", fields[f].what,
                          huge[h]);
            akv_buf_fini(&b);
        }

    /* The transaction's watch list: its count, and each length of both keys. */
    {
        struct akv_buf b;
        size_t first, at[5];

        build_exec(&b);
        first = b.len - (4 + 1 + 4 + 1 + 8 + 4 + 2) - (4 + 4 + 0 + 1 + 8 + 4 + 0);
        at[0] = first - 4;                 /* nwatch */
        at[1] = first + 4;                 /* first klen */
        at[2] = first + 4 + 4 + 1 + 1 + 8; /* first vlen */
        at[3] = first + 24 + 4;            /* second klen */
        at[4] = b.len - 4;                 /* second vlen */
        ck_assert_uint_eq(b.p[at[1]], 1);
        ck_assert_uint_eq(b.p[at[2]], 2);
        for (size_t i = 0; i < 5; i++)
            for (size_t h = 0; h < sizeof(huge) / sizeof(huge[0]); h++) {
                struct akv_entry e;
                uint8_t *orig = exact(b.p + at[i], 4);

                set32(&b, at[i], huge[h]);
                ck_assert_msg(decode_exact(b.p, b.len, &e) == -EBADMSG, "watch field %zu = %u", i,
                              huge[h]);
                memcpy(b.p + at[i], orig, 4);
                free(orig);
            }
        akv_buf_fini(&b);
    }

    /* A count of UINT32_MAX commands of one empty argument each, with as
     * many as fit: the walk ends with the input. */
    {
        struct akv_buf b;
        struct akv_entry e;
        static const char *const empty[] = {""};
        static const size_t zero[] = {0};

        put_head(&b, AKV_ENTRY_CMDS, AKV_ENTRY_EXEC);
        ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
        ck_assert_int_eq(akv_entry_put_u32(&b, 2), 0);
        ck_assert_int_eq(akv_entry_put_u32(&b, UINT32_MAX), 0);
        for (size_t i = 0; i < 100000; i++)
            put_cmd(&b, 1, empty, zero);
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
        set32(&b, AKV_ENTRY_HEAD + 8, 100000 - 1);
        /* The last command read as the watch list: cut short. */
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG);
        set32(&b, AKV_ENTRY_HEAD + 8, 100000);
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), -EBADMSG); /* no watch count */
        ck_assert_int_eq(akv_entry_put_u32(&b, 0), 0);
        ck_assert_int_eq(decode_exact(b.p, b.len, &e), 0);
        ck_assert_uint_eq(e.ncmds, 100000);
        akv_buf_fini(&b);
    }
}
END_TEST

static void replay_one(const uint8_t *data, size_t len, void *arg)
{
    uint8_t *c = exact(data, len);

    (void)arg;
    LLVMFuzzerTestOneInput(c, len);
    free(c);
}

START_TEST(test_fuzz_replay)
{
    const char *root = getenv("AKV_SOURCE_ROOT");

    if (!root) {
        fprintf(stderr, "AKV_SOURCE_ROOT unset: fuzz corpus replay skipped\n");
        return;
    }
    ck_assert_int_gt(tu_replay_dir("fuzz/corpus/entry", replay_one, NULL), 0);
    tu_replay_dir("fuzz/regression/entry", replay_one, NULL);
}
END_TEST

static Suite *entry_suite(void)
{
    Suite *s = suite_create("entry");
    TCase *tc = tcase_create("format");

    tcase_add_test(tc, test_roundtrip_single);
    tcase_add_test(tc, test_roundtrip_exec);
    tcase_add_test(tc, test_roundtrip_expired);
    tcase_add_test(tc, test_roundtrip_node_vocab);
    tcase_add_test(tc, test_byte_layout);
    tcase_add_test(tc, test_set_time);
    tcase_add_test(tc, test_padding);
    tcase_add_test(tc, test_every_truncation);
    tcase_add_test(tc, test_every_byte_corruption);
    tcase_add_test(tc, test_bad_header);
    tcase_add_test(tc, test_bad_counts);
    tcase_add_test(tc, test_bad_resp);
    tcase_add_test(tc, test_huge_lengths);
    tcase_add_test(tc, test_fuzz_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(entry_suite());
}
