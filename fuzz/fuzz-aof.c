/*
 * fuzz-aof.c - libFuzzer target for akv_aof_parse, the append-only file
 * parser that the daemon replays with and attnkv-check-aof checks with.
 *
 * The input is a whole file. Each record handed to the callback must lie
 * inside the input and re-encode (akv_aof_rec_encode) to exactly the bytes
 * it was parsed from; the records of a MULTI record come one after the
 * other inside its payload, each with its batch field naming the MULTI,
 * and the MULTI itself re-encodes from the records seen (so its count is
 * theirs); the counts by type add up to the callbacks and the good records;
 * the verdict must be consistent (OK covers every byte, TORN and CORRUPT
 * point at good_end inside the input); and the prefix up to good_end, which
 * is what "attnkv-check-aof --fix" and the daemon's torn-tail cut keep,
 * must parse as a good file with the same records. The parse in steps
 * (akv_aof_parse_step, a few records at a time) must agree with it.
 *
 * The snapshot preamble's records: a SNAPCHUNK's entries all decode, inside
 * it, their number is its count, and they re-encode to its bytes; a damaged
 * preamble (one not closed where the parse stopped) leaves a prefix that
 * is damaged the same way, at the same offset.
 *
 * akv_aof_salvage on the same input: its kept records and skipped ranges
 * tile the file after its header, in order; each kept record re-encodes to
 * its bytes; the file header followed by the kept records parses as a good
 * file with the same counts (unless it keeps preamble records of a file
 * whose preamble is damaged or out of place: attnkv-check-aof converts
 * those); it keeps exactly the records akv_aof_parse accepts before the
 * first damage, and skips nothing in a good file (but for a preamble cut
 * short or out of place, which is damage no record shows).
 *
 * The same file is linked into test-aof, which replays fuzz/corpus/aof and
 * fuzz/regression/aof through LLVMFuzzerTestOneInput on every "meson test".
 *
 * Threading: none. A broken invariant prints what broke and aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persist/aof.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct ctx {
    const uint8_t *data;
    size_t size;
    size_t next;  /* where the next top-level record must start */
    size_t n;     /* callbacks */
    size_t top;   /* top-level records seen, MULTIs included */
    size_t inner; /* callbacks for records inside MULTIs */
    /* The MULTI whose records are being handed over, or SIZE_MAX. */
    size_t batch, batch_end, inner_next, batch_n;
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Re-encodes r and compares with the bytes it came from. */
static void check_reencode(const struct ctx *c, const struct akv_aof_record *r)
{
    uint8_t *re;

    CHECK(akv_aof_rec_size(r) == r->size);
    re = malloc(r->size);
    CHECK(re != NULL);
    CHECK(akv_aof_rec_encode(re, r) == r->size);
    CHECK(memcmp(re, c->data + r->offset, r->size) == 0);
    free(re);
}

/* The MULTI being handed over is complete: it re-encodes from the records
 * seen, so its count is theirs. */
static void end_batch(struct ctx *c)
{
    const uint8_t *m;
    struct akv_aof_record r = {.type = AKV_AOF_MULTI};

    if (c->batch == SIZE_MAX)
        return;
    CHECK(c->inner_next == c->batch_end);
    m = c->data + c->batch;
    r.count = (uint32_t)c->batch_n;
    r.inner = m + AKV_AOF_REC_HEADER + 4;
    r.inner_len = c->batch_end - c->batch - AKV_AOF_REC_HEADER - 4;
    r.offset = c->batch;
    r.size = c->batch_end - c->batch;
    CHECK(get32(m + AKV_AOF_REC_HEADER) == c->batch_n);
    check_reencode(c, &r);
    c->next = c->batch_end;
    c->top++;
    c->batch = SIZE_MAX;
}

/* MULTI records with nothing inside hand nothing over: skips those from
 * c->next up to upto. */
static void skip_empty_multis(struct ctx *c, size_t upto)
{
    while (c->next < upto) {
        const uint8_t *h = c->data + c->next;
        CHECK(c->next + AKV_AOF_REC_HEADER + 4 <= upto);
        CHECK(h[1] == AKV_AOF_MULTI && get32(h + 4) == 4 && get32(h + AKV_AOF_REC_HEADER) == 0);
        c->next += AKV_AOF_REC_HEADER + 4;
        c->top++;
    }
    CHECK(c->next == upto);
}

static int is_snap(int type)
{
    return type == AKV_AOF_SNAPBEGIN || type == AKV_AOF_SNAPCHUNK || type == AKV_AOF_SNAPEND;
}

/* A preamble record's payload: inside the record; a chunk's entries decode
 * and re-encode to its bytes. */
static void check_snap(const struct ctx *c, const struct akv_aof_record *r)
{
    const uint8_t *in = r->inner;
    uint32_t kids[AKV_AOF_SNAP_WORDS_MAX], vids[AKV_AOF_SNAP_WORDS_MAX];
    struct akv_aof_snap_entry e;
    size_t at = 0, n = 0;

    CHECK(in >= c->data + r->offset && in + r->inner_len == c->data + r->offset + r->size);
    if (r->type != AKV_AOF_SNAPCHUNK)
        return;
    while (akv_aof_snap_next(r, &at, &e, kids, vids)) {
        size_t sz = akv_aof_snap_entry_size(&e);
        uint8_t *re = malloc(sz);
        CHECK(re != NULL);
        CHECK(e.nk >= 1 && e.nk <= AKV_AOF_SNAP_WORDS_MAX && e.nv <= AKV_AOF_SNAP_WORDS_MAX);
        CHECK((const uint8_t *)e.key >= in && (const uint8_t *)e.val + e.vlen <= in + at);
        CHECK(akv_aof_snap_entry_encode(re, &e) == sz);
        CHECK(memcmp(re, in + at - sz, sz) == 0);
        free(re);
        n++;
    }
    CHECK(at == r->inner_len && n == r->count);
}

static int on_record(void *arg, const struct akv_aof_record *r)
{
    struct ctx *c = arg;
    const char *lo = (const char *)c->data, *hi = lo + c->size;

    CHECK(r->type >= AKV_AOF_SET && r->type < AKV_AOF_TYPES && r->type != AKV_AOF_MULTI);
    CHECK(r->size >= AKV_AOF_REC_HEADER && r->offset + r->size <= c->size);
    if (r->batch != c->batch)
        end_batch(c);
    if (r->batch == SIZE_MAX) {
        skip_empty_multis(c, r->offset);
        c->next = r->offset + r->size;
        c->top++;
    } else {
        if (c->batch == SIZE_MAX) {
            /* The first record of a MULTI: it starts right after the
             * MULTI's header and count. */
            const uint8_t *m;
            skip_empty_multis(c, r->batch);
            m = c->data + r->batch;
            CHECK(r->batch + AKV_AOF_REC_HEADER + 4 <= c->size);
            CHECK(m[1] == AKV_AOF_MULTI);
            c->batch = r->batch;
            c->batch_end = r->batch + AKV_AOF_REC_HEADER + get32(m + 4);
            CHECK(c->batch_end <= c->size);
            c->inner_next = r->batch + AKV_AOF_REC_HEADER + 4;
            c->batch_n = 0;
        }
        CHECK(r->offset == c->inner_next && r->offset + r->size <= c->batch_end);
        c->inner_next += r->size;
        c->batch_n++;
        c->inner++;
    }
    switch (r->type) {
    case AKV_AOF_SET:
    case AKV_AOF_PUT:
    case AKV_AOF_PAYLOAD:
        CHECK(r->val >= lo && r->val + r->vlen <= hi);
        /* fall through */
    case AKV_AOF_DEL:
    case AKV_AOF_DELETE:
        CHECK(r->key >= lo && r->klen > 0 && r->key + r->klen <= hi);
        break;
    default:
        CHECK(r->klen == 0 && r->vlen == 0);
    }
    if (r->type == AKV_AOF_SET || r->type == AKV_AOF_DEL) {
        CHECK(r->db == 0 && r->expire == 0);
        CHECK(akv_aof_record_size(r->type, r->klen, r->vlen) == r->size);
    }
    if (r->type != AKV_AOF_SWAPDB) {
        CHECK(r->db2 == 0);
    }
    if (is_snap(r->type)) {
        CHECK(r->batch == SIZE_MAX);
        check_snap(c, r);
    } else {
        CHECK(r->count == 0 && r->inner_len == 0);
    }
    check_reencode(c, r);
    c->n++;
    return 0;
}

/* akv_aof_salvage's walk: where the next range must start, and the kept
 * records copied out after the file header. */
struct salv {
    const uint8_t *data;
    size_t size;
    size_t next;
    uint8_t *out;
    size_t out_len;
    size_t before; /* kept records that start before the parse's good_end */
    size_t good_end;
    int snap_kept; /* preamble records kept */
};

static int salv_keep(void *arg, const struct akv_aof_record *r)
{
    struct salv *s = arg;
    struct ctx c = {s->data, s->size, 0, 0, 0, 0, SIZE_MAX, 0, 0, 0};

    CHECK(r->offset == s->next && r->size >= AKV_AOF_REC_HEADER && r->size <= s->size - r->offset);
    CHECK(r->batch == SIZE_MAX);
    if (r->type == AKV_AOF_MULTI) {
        CHECK(r->inner_len == r->size - AKV_AOF_REC_HEADER - 4);
    }
    check_reencode(&c, r);
    s->snap_kept += is_snap(r->type);
    memcpy(s->out + s->out_len, s->data + r->offset, r->size);
    s->out_len += r->size;
    s->before += r->offset < s->good_end;
    s->next = r->offset + r->size;
    return 0;
}

static int salv_skip(void *arg, const struct akv_aof_skip *k)
{
    struct salv *s = arg;

    CHECK(k->offset == s->next && k->len > 0 && k->len <= s->size - k->offset);
    CHECK(k->kind >= AKV_AOF_SKIP_RECORD && k->kind <= AKV_AOF_SKIP_REST);
    CHECK(k->type >= 0 && k->type < AKV_AOF_TYPES);
    CHECK(k->reason != NULL && k->reason[0] != '\0');
    s->next = k->offset + k->len;
    return 0;
}

static void check_salvage(const uint8_t *data, size_t size, const struct akv_aof_result *pres)
{
    struct akv_aof_salvage_result res;
    struct akv_aof_result again;
    struct salv s = {data, size, AKV_AOF_FILE_HEADER, NULL, 0, 0, pres->good_end, 0};
    int snap_damage = pres->status != AKV_AOF_OK && pres->snap != 2;
    int rc;

    s.out = malloc(size + AKV_AOF_FILE_HEADER);
    CHECK(s.out != NULL);
    akv_aof_file_header(s.out);
    s.out_len = AKV_AOF_FILE_HEADER;
    if (size < AKV_AOF_FILE_HEADER)
        s.next = 0;
    rc = akv_aof_salvage(data, size, salv_keep, salv_skip, &s, &res);
    if (rc == -EBADMSG) {
        CHECK(pres->status == AKV_AOF_CORRUPT && pres->bad_offset == 0);
        CHECK(res.reason != NULL && res.reason[0] != '\0');
        free(s.out);
        return;
    }
    CHECK(rc == 0);
    CHECK(size == 0 || s.next == size);
    CHECK(res.kept_bytes + res.skipped_bytes +
                  (size < AKV_AOF_FILE_HEADER ? 0 : AKV_AOF_FILE_HEADER) ==
              size ||
          size == 0);
    CHECK(akv_aof_parse(s.out, s.out_len, NULL, NULL, &again) == 0);
    if (!(s.snap_kept && (snap_damage || pres->status != AKV_AOF_OK))) {
        CHECK(again.status == AKV_AOF_OK && again.records == res.records);
        CHECK(memcmp(again.counts, res.counts, sizeof(res.counts)) == 0);
    }
    CHECK(s.before == pres->records);
    if (pres->status == AKV_AOF_OK) {
        CHECK(res.skips == 0 && res.records == pres->records);
    } else if (res.skips == 0) {
        /* Only the preamble's order can be wrong without a bad record. */
        CHECK(strstr(pres->reason, "preamble") || strstr(pres->reason, "SNAP"));
    }
    free(s.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctx c = {data, size, AKV_AOF_FILE_HEADER, 0, 0, 0, SIZE_MAX, 0, 0, 0};
    struct akv_aof_result res, again;
    size_t typed = 0;

    CHECK(akv_aof_parse(data, size, on_record, &c, &res) == 0);
    end_batch(&c);
    if (res.good_end > AKV_AOF_FILE_HEADER)
        skip_empty_multis(&c, res.good_end);
    CHECK(res.good_end <= size);
    CHECK(res.records == c.top);
    for (int t = AKV_AOF_SET; t < AKV_AOF_TYPES; t++)
        if (t != AKV_AOF_MULTI)
            typed += res.counts[t];
    CHECK(res.counts[0] == 0);
    CHECK(typed == c.n);
    CHECK(res.records == c.n - c.inner + res.counts[AKV_AOF_MULTI]);
    switch (res.status) {
    case AKV_AOF_OK:
        CHECK(size == 0 || res.good_end == size);
        break;
    case AKV_AOF_TORN:
    case AKV_AOF_CORRUPT:
        /* A preamble open at the end of the file is damage at that end. */
        CHECK(res.bad_offset == res.good_end && (res.bad_offset < size || res.snap == 1));
        CHECK(res.reason != NULL && res.reason[0] != '\0');
        break;
    default:
        CHECK(0);
    }
    if (res.records > 0) {
        CHECK(res.good_end == c.next);
    }
    /* What a repair keeps is a good file with the same records (a
     * preamble open at good_end is cut short there, damage). */
    CHECK(akv_aof_parse(data, res.good_end, NULL, NULL, &again) == 0);
    CHECK(again.records == res.records);
    CHECK(memcmp(again.counts, res.counts, sizeof(res.counts)) == 0);
    if (res.snap == 1) {
        CHECK(again.status == AKV_AOF_CORRUPT && again.bad_offset == res.good_end);
    } else {
        CHECK(again.status == AKV_AOF_OK);
    }
    check_salvage(data, size, &res);
    /* The parse in steps (the daemon's replay) gives the same calls, at
     * most max a step, and the same result. */
    {
        struct ctx cs = {data, size, AKV_AOF_FILE_HEADER, 0, 0, 0, SIZE_MAX, 0, 0, 0};
        struct akv_aof_parser ps;
        size_t max = size > 0 ? 1 + data[size - 1] % 4 : 1, steps = 0;

        akv_aof_parser_init(&ps, data, size);
        while (!ps.done) {
            size_t before = cs.n;
            CHECK(akv_aof_parse_step(&ps, max, on_record, &cs) == 0);
            CHECK(cs.n - before <= max);
            CHECK(++steps <= size + 1);
        }
        CHECK(cs.n == c.n && cs.inner == c.inner);
        CHECK(ps.res.status == res.status && ps.res.records == res.records);
        CHECK(ps.res.good_end == res.good_end && ps.res.bad_offset == res.bad_offset);
        CHECK(memcmp(ps.res.counts, res.counts, sizeof(res.counts)) == 0);
    }
    return 0;
}
