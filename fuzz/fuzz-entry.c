/*
 * fuzz-entry.c - libFuzzer target for akv_entry_decode, the decoder of the
 * cluster log entries every node applies (src/cluster/entry.h), and the
 * unchecked iterators that walk what it accepted.
 *
 * The input is one entry as the log would hold it (the empty input also
 * as a NULL pointer). A refused input is refused with -EBADMSG. An
 * accepted one is walked whole: every command and argument of a CMDS
 * entry, its WATCHed keys with an EXEC flag, every key of an EXPIRED
 * entry, a NODE's address; every byte each walk yields is read (so that
 * ASan sees a read past the input), each position must stay inside the
 * input, the walk must end where the padding starts, and the padding must
 * be fewer than 8 zero bytes. The walked contents put back with
 * akv_entry_put_* must give the input's bytes up to its padding (one
 * encoding per entry: no byte the decoder ignores). The entry cut one byte
 * short of its padding is refused and cut inside the padding accepted;
 * akv_entry_stamp on a copy changes the time and term and nothing else.
 *
 * The same file is linked into test-entry, which replays fuzz/corpus/entry
 * and fuzz/regression/entry through LLVMFuzzerTestOneInput on every
 * "meson test".
 *
 * Threading: none. A broken invariant prints what broke and aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/entry.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Every byte a walk yields goes through here, so that each is read. */
static volatile uint8_t sink;

struct walk {
    const uint8_t *lo, *hi; /* the input */
    struct akv_buf re;      /* the contents put back */
    int rc;
};

static void touch(const struct walk *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t x = 0;

    CHECK(n <= (size_t)(w->hi - w->lo));
    CHECK(n == 0 || (b >= w->lo && b + n <= w->hi));
    for (size_t i = 0; i < n; i++)
        x ^= b[i];
    sink = x;
}

static void inside(const struct walk *w, const uint8_t *p)
{
    CHECK(p >= w->lo && p <= w->hi);
}

static void put_u8(struct walk *w, uint8_t v)
{
    w->rc = w->rc ? w->rc : akv_entry_put_u8(&w->re, v);
}

static void put_u32(struct walk *w, uint32_t v)
{
    w->rc = w->rc ? w->rc : akv_entry_put_u32(&w->re, v);
}

static void put_u64(struct walk *w, uint64_t v)
{
    w->rc = w->rc ? w->rc : akv_entry_put_u64(&w->re, v);
}

static void put_bytes(struct walk *w, const void *p, size_t n)
{
    touch(w, p, n);
    w->rc = w->rc ? w->rc : akv_entry_put_bytes(&w->re, p, n);
}

/* Walks a decoded CMDS entry; returns where it ends. */
static const uint8_t *walk_cmds(struct walk *w, const struct akv_entry *e)
{
    const uint8_t *p = e->cmds;

    CHECK(e->ncmds >= 1);
    CHECK(e->ncmds == 1 || (e->flags & AKV_ENTRY_EXEC));
    put_u32(w, e->db);
    put_u32(w, (uint32_t)e->resp);
    put_u32(w, e->ncmds);
    for (uint32_t i = 0; i < e->ncmds; i++) {
        const uint8_t *arg, *next;
        uint32_t argc;

        inside(w, p);
        next = akv_entry_cmd(p, &argc, &arg);
        inside(w, next);
        CHECK(argc >= 1);
        put_u32(w, argc);
        for (uint32_t j = 0; j < argc; j++) {
            const char *s;
            size_t len;

            inside(w, arg);
            arg = akv_entry_arg(arg, &s, &len);
            inside(w, arg);
            put_bytes(w, s, len);
        }
        CHECK(arg == next);
        p = next;
    }
    if (!(e->flags & AKV_ENTRY_EXEC)) {
        CHECK(e->nwatch == 0 && e->watch == NULL);
        return p;
    }
    inside(w, p + 4);
    CHECK(e->watch == p + 4);
    put_u32(w, e->nwatch);
    p = e->watch;
    for (uint32_t i = 0; i < e->nwatch; i++) {
        struct akv_entry_watch wk;

        inside(w, p);
        p = akv_entry_watch_next(p, &wk);
        inside(w, p);
        CHECK(wk.present == 0 || wk.present == 1);
        put_u32(w, wk.db);
        put_bytes(w, wk.key, wk.klen);
        put_u8(w, (uint8_t)wk.present);
        put_u64(w, wk.expire);
        put_bytes(w, wk.val, wk.vlen);
    }
    return p;
}

static const uint8_t *walk_expired(struct walk *w, const struct akv_entry *e)
{
    const uint8_t *p = e->keys;

    put_u32(w, e->nkeys);
    for (uint32_t i = 0; i < e->nkeys; i++) {
        const char *key;
        uint64_t expire;
        uint32_t db;
        size_t klen;

        inside(w, p);
        p = akv_entry_key_next(p, &db, &key, &klen, &expire);
        inside(w, p);
        put_u32(w, db);
        put_bytes(w, key, klen);
        put_u64(w, expire);
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct walk w = {data, data + size, {0}, 0};
    const uint8_t *end = NULL;
    struct akv_entry e;
    uint8_t *copy;
    size_t body;
    int rc;

    if (size == 0) /* a Raft buffer of no bytes may have no pointer either */
        CHECK(akv_entry_decode(NULL, 0, &e) == -EBADMSG);
    rc = akv_entry_decode(data, size, &e);
    if (rc != 0) {
        CHECK(rc == -EBADMSG);
        return 0;
    }
    CHECK(size >= AKV_ENTRY_HEAD);
    CHECK(data[0] == AKV_ENTRY_MAGIC && data[1] == AKV_ENTRY_VERSION);
    CHECK((unsigned)e.kind == data[2] && e.flags == data[3]);
    akv_buf_init(&w.re);
    w.rc = akv_entry_put_head(&w.re, e.kind, e.flags, e.origin, e.req, e.now_ms);
    if (w.rc == 0)
        akv_entry_stamp(w.re.p, e.now_ms, e.term);
    switch (e.kind) {
    case AKV_ENTRY_CMDS:
        end = walk_cmds(&w, &e);
        break;
    case AKV_ENTRY_EXPIRED:
        CHECK(e.flags == 0);
        end = walk_expired(&w, &e);
        break;
    case AKV_ENTRY_NODE:
        CHECK(e.flags == 0);
        put_bytes(&w, e.addr, e.addrlen);
        end = (const uint8_t *)e.addr + e.addrlen;
        break;
    case AKV_ENTRY_VOCAB:
        CHECK(e.flags == 0);
        put_u64(&w, e.vocab_meta);
        put_u64(&w, e.vocab_data);
        put_u64(&w, e.vocab_words);
        put_u32(&w, e.vocab_dim);
        end = data + AKV_ENTRY_HEAD + 28;
        break;
    default:
        CHECK(!"a kind the decoder does not know");
    }
    CHECK(w.rc == 0);
    inside(&w, end);
    body = (size_t)(end - data);

    /* The walk ends at the padding: fewer than 8 bytes, all zero. */
    CHECK(size - body < 8);
    for (size_t i = body; i < size; i++)
        CHECK(data[i] == 0);
    /* One encoding per entry. */
    CHECK(w.re.len == body);
    CHECK(memcmp(w.re.p, data, body) == 0);
    akv_buf_fini(&w.re);

    /* Cut one byte short of the padding: refused; cut inside it: accepted. */
    copy = malloc(size);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    CHECK(akv_entry_decode(copy, body - 1, &e) == -EBADMSG);
    for (size_t n = body; n < size; n++)
        CHECK(akv_entry_decode(copy, n, &e) == 0);

    /* The time and term fields, and nothing else. */
    {
        struct akv_entry before;
        uint64_t t = e.now_ms ^ 0x0123456789abcdefULL, u = e.term ^ 0x1122334455667788ULL;

        CHECK(akv_entry_decode(copy, size, &before) == 0);
        akv_entry_stamp(copy, t, u);
        CHECK(akv_entry_decode(copy, size, &e) == 0);
        CHECK(e.now_ms == t && e.term == u);
        CHECK(memcmp(copy, data, 20) == 0 && memcmp(copy + 36, data + 36, size - 36) == 0);
        before.now_ms = t;
        before.term = u;
        CHECK(memcmp(&before, &e, sizeof(e)) == 0);
    }
    free(copy);
    return 0;
}
