/*
 * aof.c - the append-only file's format (see aof.h for the layout).
 *
 * The parser checks, for each record in turn: a whole header is there (else
 * the file is torn, if what is there starts like a header); the magic byte
 * and the header checksum (else corrupt: a length that fails its checksum is
 * never trusted); the type and the length limit; the whole payload is there
 * (else torn); the payload checksum; the payload's own structure. Only the
 * last record can be torn, because a torn one is by definition cut by the
 * end of the file.
 *
 * Threading: none. No allocation; records point into the caller's buffer.
 */
#include "persist/aof.h"

#include <errno.h>
#include <string.h>

#include <zlib.h>

#define REC_MAGIC 0xA7u

static const unsigned char file_magic[8] = {'A', 'K', 'V', '-', 'A', 'O', 'F', '\n'};

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* zlib's crc32 takes a uInt length; payloads are below 4 GiB anyway. */
static uint32_t crc(const void *p, size_t n)
{
    return (uint32_t)crc32(0L, (const Bytef *)p, (uInt)n);
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static size_t payload_size(const struct akv_aof_record *r)
{
    switch (r->type) {
    case AKV_AOF_SET:
        return 4 + r->klen + r->vlen;
    case AKV_AOF_DEL:
        return r->klen;
    case AKV_AOF_FLUSHALL:
        return 0;
    case AKV_AOF_PUT:
    case AKV_AOF_PAYLOAD:
        return 16 + r->klen + r->vlen;
    case AKV_AOF_DELETE:
        return 4 + r->klen;
    case AKV_AOF_FLUSHDB:
        return 4;
    case AKV_AOF_SWAPDB:
        return 8;
    case AKV_AOF_MULTI:
    case AKV_AOF_SNAPCHUNK:
        return (r->type == AKV_AOF_MULTI ? 4 : 8) + r->inner_len;
    case AKV_AOF_SNAPBEGIN:
    case AKV_AOF_SNAPEND:
        return r->inner_len;
    }
    return 0;
}

/* Writes the header of a record of type and payload length plen whose
 * payload follows it at h + AKV_AOF_REC_HEADER. */
static void seal(unsigned char *h, enum akv_aof_type type, size_t plen)
{
    h[0] = REC_MAGIC;
    h[1] = (unsigned char)type;
    h[2] = h[3] = 0;
    put32(h + 4, (uint32_t)plen);
    put32(h + 8, crc(h, 8));
    put32(h + 12, crc(h + AKV_AOF_REC_HEADER, plen));
}

size_t akv_aof_rec_size(const struct akv_aof_record *r)
{
    return AKV_AOF_REC_HEADER + payload_size(r);
}

size_t akv_aof_rec_encode(void *dst, const struct akv_aof_record *r)
{
    unsigned char *h = dst, *p = h + AKV_AOF_REC_HEADER;
    size_t plen = payload_size(r);

    switch (r->type) {
    case AKV_AOF_SET:
        put32(p, (uint32_t)r->klen);
        memcpy(p + 4, r->key, r->klen);
        if (r->vlen > 0)
            memcpy(p + 4 + r->klen, r->val, r->vlen);
        break;
    case AKV_AOF_DEL:
        memcpy(p, r->key, r->klen);
        break;
    case AKV_AOF_FLUSHALL:
        break;
    case AKV_AOF_PUT:
    case AKV_AOF_PAYLOAD:
        put32(p, r->db);
        put64(p + 4, r->expire);
        put32(p + 12, (uint32_t)r->klen);
        memcpy(p + 16, r->key, r->klen);
        if (r->vlen > 0)
            memcpy(p + 16 + r->klen, r->val, r->vlen);
        break;
    case AKV_AOF_DELETE:
        put32(p, r->db);
        memcpy(p + 4, r->key, r->klen);
        break;
    case AKV_AOF_FLUSHDB:
        put32(p, r->db);
        break;
    case AKV_AOF_SWAPDB:
        put32(p, r->db);
        put32(p + 4, r->db2);
        break;
    case AKV_AOF_MULTI:
        put32(p, r->count);
        if (r->inner_len > 0)
            memmove(p + 4, r->inner, r->inner_len);
        break;
    case AKV_AOF_SNAPCHUNK:
        put32(p, r->db);
        put32(p + 4, r->count);
        if (r->inner_len > 0)
            memmove(p + 8, r->inner, r->inner_len);
        break;
    case AKV_AOF_SNAPBEGIN:
    case AKV_AOF_SNAPEND:
        if (r->inner_len > 0)
            memmove(p, r->inner, r->inner_len);
        break;
    }
    seal(h, r->type, plen);
    return AKV_AOF_REC_HEADER + plen;
}

size_t akv_aof_record_size(enum akv_aof_type type, size_t klen, size_t vlen)
{
    struct akv_aof_record r = {.type = type, .klen = klen, .vlen = vlen};

    return akv_aof_rec_size(&r);
}

size_t akv_aof_encode(void *dst, enum akv_aof_type type, const char *key, size_t klen,
                      const char *val, size_t vlen)
{
    struct akv_aof_record r = {.type = type, .key = key, .klen = klen, .val = val, .vlen = vlen};

    return akv_aof_rec_encode(dst, &r);
}

void akv_aof_file_header(void *dst)
{
    unsigned char *h = dst;

    memcpy(h, file_magic, sizeof(file_magic));
    put32(h + 8, AKV_AOF_VERSION);
    put32(h + 12, crc(h, 12));
}

const char *akv_aof_type_name(enum akv_aof_type type)
{
    switch (type) {
    case AKV_AOF_SET:
        return "SET";
    case AKV_AOF_DEL:
        return "DEL";
    case AKV_AOF_FLUSHALL:
        return "FLUSHALL";
    case AKV_AOF_PUT:
        return "PUT";
    case AKV_AOF_DELETE:
        return "DELETE";
    case AKV_AOF_FLUSHDB:
        return "FLUSHDB";
    case AKV_AOF_SWAPDB:
        return "SWAPDB";
    case AKV_AOF_MULTI:
        return "MULTI";
    case AKV_AOF_PAYLOAD:
        return "PAYLOAD";
    case AKV_AOF_SNAPBEGIN:
        return "SNAPBEGIN";
    case AKV_AOF_SNAPCHUNK:
        return "SNAPCHUNK";
    case AKV_AOF_SNAPEND:
        return "SNAPEND";
    }
    return "?";
}

/* ------------------------------------------------------------------------
 * The snapshot preamble's records (layout in aof.h).
 */

size_t akv_aof_snap_head_encode(void *dst, const struct akv_aof_snap_head *hd)
{
    unsigned char *h = dst, *p = h + AKV_AOF_REC_HEADER;

    put32(p, hd->format);
    put32(p + 4, hd->dim);
    put64(p + 8, hd->words);
    put64(p + 16, hd->meta_sum);
    put64(p + 24, hd->data_sum);
    put32(p + 32, hd->databases);
    put32(p + 36, 0);
    put64(p + 40, hd->time_ms);
    seal(h, AKV_AOF_SNAPBEGIN, AKV_AOF_SNAP_HEAD);
    return AKV_AOF_REC_HEADER + AKV_AOF_SNAP_HEAD;
}

void akv_aof_snap_head_decode(const struct akv_aof_record *rec, struct akv_aof_snap_head *hd)
{
    const unsigned char *p = rec->inner;

    hd->format = get32(p);
    hd->dim = get32(p + 4);
    hd->words = get64(p + 8);
    hd->meta_sum = get64(p + 16);
    hd->data_sum = get64(p + 24);
    hd->databases = get32(p + 32);
    hd->time_ms = get64(p + 40);
}

size_t akv_aof_snap_end_encode(void *dst, uint64_t entries, uint64_t chunks)
{
    unsigned char *h = dst;

    put64(h + AKV_AOF_REC_HEADER, entries);
    put64(h + AKV_AOF_REC_HEADER + 8, chunks);
    seal(h, AKV_AOF_SNAPEND, AKV_AOF_SNAP_ENDLEN);
    return AKV_AOF_REC_HEADER + AKV_AOF_SNAP_ENDLEN;
}

void akv_aof_snap_end_decode(const struct akv_aof_record *rec, uint64_t *entries, uint64_t *chunks)
{
    const unsigned char *p = rec->inner;

    *entries = get64(p);
    *chunks = get64(p + 8);
}

size_t akv_aof_snap_entry_size(const struct akv_aof_snap_entry *e)
{
    return 20 + (e->expire ? 8 : 0) + 4 * ((size_t)e->nk + e->nv) + e->klen + e->vlen;
}

size_t akv_aof_snap_entry_encode(void *dst, const struct akv_aof_snap_entry *e)
{
    unsigned char *p = dst, *q;

    p[0] =
        (unsigned char)((e->flags & AKV_AOF_SNAP_PAYLOAD) | (e->expire ? AKV_AOF_SNAP_EXPIRE : 0));
    p[1] = (unsigned char)e->nk;
    p[2] = (unsigned char)e->nv;
    p[3] = 0;
    put32(p + 4, (uint32_t)e->klen);
    put32(p + 8, (uint32_t)e->vlen);
    q = p + 12;
    if (e->expire) {
        put64(q, e->expire);
        q += 8;
    }
    {
        uint64_t bits;
        memcpy(&bits, &e->knorm, sizeof(bits));
        put64(q, bits);
        q += 8;
    }
    for (uint32_t i = 0; i < e->nk; i++, q += 4)
        put32(q, e->kids[i]);
    for (uint32_t i = 0; i < e->nv; i++, q += 4)
        put32(q, e->vids[i]);
    memcpy(q, e->key, e->klen);
    q += e->klen;
    if (e->vlen > 0)
        memcpy(q, e->val, e->vlen);
    return (size_t)(q - p) + e->vlen;
}

size_t akv_aof_snap_chunk_seal(void *chunk, uint32_t db, uint32_t count, size_t entries_len)
{
    unsigned char *h = chunk;

    put32(h + AKV_AOF_REC_HEADER, db);
    put32(h + AKV_AOF_REC_HEADER + 4, count);
    seal(h, AKV_AOF_SNAPCHUNK, 8 + entries_len);
    return AKV_AOF_SNAP_CHUNK_START + entries_len;
}

/* Decodes the entry at p[*at..len) into *e (ids into kids and vids when
 * they are not NULL) and advances *at. Returns 0, or -1 when it is not a
 * well-formed entry. */
static int snap_entry(const unsigned char *p, size_t len, size_t *at, struct akv_aof_snap_entry *e,
                      uint32_t *kids, uint32_t *vids)
{
    const unsigned char *q = p + *at;
    size_t left = len - *at, need;

    if (*at > len || left < 12)
        return -1;
    e->flags = q[0];
    e->nk = q[1];
    e->nv = q[2];
    e->klen = get32(q + 4);
    e->vlen = get32(q + 8);
    if ((e->flags & ~3u) != 0 || q[3] != 0 || e->nk == 0 || e->nk > AKV_AOF_SNAP_WORDS_MAX ||
        e->nv > AKV_AOF_SNAP_WORDS_MAX ||
        (e->nv == 0) != ((e->flags & AKV_AOF_SNAP_PAYLOAD) != 0) || e->klen == 0)
        return -1;
    need = 20 + ((e->flags & AKV_AOF_SNAP_EXPIRE) ? 8 : 0) + 4 * ((size_t)e->nk + e->nv);
    if (need > left || e->klen > left - need || e->vlen > left - need - e->klen)
        return -1;
    q += 12;
    e->expire = 0;
    if (e->flags & AKV_AOF_SNAP_EXPIRE) {
        e->expire = get64(q);
        q += 8;
        if (e->expire == 0)
            return -1;
    }
    {
        uint64_t bits = get64(q);
        memcpy(&e->knorm, &bits, sizeof(bits));
        q += 8;
        if (!(e->knorm >= 0 && e->knorm <= 1e300))
            return -1; /* not a norm (NaN, negative, infinite) */
    }
    if (kids) {
        for (uint32_t i = 0; i < e->nk; i++)
            kids[i] = get32(q + 4 * i);
        for (uint32_t i = 0; i < e->nv; i++)
            vids[i] = get32(q + 4 * ((size_t)e->nk + i));
    }
    e->kids = kids;
    e->vids = vids;
    q += 4 * ((size_t)e->nk + e->nv);
    e->key = (const char *)q;
    e->val = e->key + e->klen;
    *at += need + e->klen + e->vlen;
    return 0;
}

int akv_aof_snap_next(const struct akv_aof_record *chunk, size_t *at, struct akv_aof_snap_entry *e,
                      uint32_t *kids, uint32_t *vids)
{
    if (*at >= chunk->inner_len)
        return 0;
    return snap_entry(chunk->inner, chunk->inner_len, at, e, kids, vids) == 0 ? 1 : 0;
}

static int stop(struct akv_aof_result *res, enum akv_aof_status st, size_t off, const char *why)
{
    res->status = st;
    res->bad_offset = off;
    res->reason = why;
    return 0;
}

/* Checks the file header in b[0..len), len > 0. Returns OK, TORN or CORRUPT. */
static int check_file_header(const unsigned char *b, size_t len, struct akv_aof_result *res)
{
    unsigned char want[AKV_AOF_FILE_HEADER];

    akv_aof_file_header(want);
    if (len < AKV_AOF_FILE_HEADER) {
        /* A crash between creating the file and writing its header. */
        if (memcmp(b, want, len) == 0)
            return stop(res, AKV_AOF_TORN, 0, "file header cut short");
        return stop(res, AKV_AOF_CORRUPT, 0, "not an attnkv append-only file (bad header)");
    }
    if (memcmp(b, file_magic, sizeof(file_magic)) != 0)
        return stop(res, AKV_AOF_CORRUPT, 0, "not an attnkv append-only file (bad magic)");
    if (get32(b + 12) != crc(b, 12))
        return stop(res, AKV_AOF_CORRUPT, 0, "file header checksum mismatch");
    if (get32(b + 8) != AKV_AOF_VERSION)
        return stop(res, AKV_AOF_CORRUPT, 0, "unsupported file format version");
    res->good_end = AKV_AOF_FILE_HEADER;
    return 0;
}

/* Checks the record at b[off..len) (off < len) and fills *rec. Returns 0,
 * or the status (TORN, CORRUPT) with *why set. A MULTI record's inner
 * records are checked here too (nested is 1 while checking them: no MULTI
 * inside a MULTI, and an inner record cut short is damage, not a tear). */
#define FAIL(st, text)                                                                             \
    do {                                                                                           \
        *why = (text);                                                                             \
        return (st);                                                                               \
    } while (0)

/* The first part of parse_one: the header of the record at b[off..len)
 * (off < len) checks out and the payload is inside the buffer; sets
 * *plen. Returns 0 or the status (TORN, CORRUPT) with *why set. */
static int parse_head(const unsigned char *b, size_t off, size_t len, int nested, size_t *plen,
                      const char **why)
{
    const unsigned char *h = b + off;
    size_t left = len - off;
    int torn = nested ? AKV_AOF_CORRUPT : AKV_AOF_TORN;

    if (h[0] != REC_MAGIC)
        FAIL(AKV_AOF_CORRUPT, "bad record magic");
    if (left < AKV_AOF_REC_HEADER)
        FAIL(torn, "record header cut short");
    if (get32(h + 8) != crc(h, 8))
        FAIL(AKV_AOF_CORRUPT, "record header checksum mismatch");
    *plen = get32(h + 4);
    if (h[1] < AKV_AOF_SET || h[1] >= AKV_AOF_TYPES || h[2] != 0 || h[3] != 0)
        FAIL(AKV_AOF_CORRUPT, "unknown record type");
    if (*plen > AKV_AOF_PAYLOAD_MAX)
        FAIL(AKV_AOF_CORRUPT, "record length out of range");
    if (*plen > left - AKV_AOF_REC_HEADER)
        FAIL(torn, "record cut short");
    return 0;
}

static int parse_one(const unsigned char *b, size_t off, size_t len, int nested,
                     struct akv_aof_record *rec, const char **why)
{
    const unsigned char *h = b + off, *p = h + AKV_AOF_REC_HEADER;
    size_t plen;
    int st = parse_head(b, off, len, nested, &plen, why);

    if (st != 0)
        return st;
    if (get32(h + 12) != crc(p, plen))
        FAIL(AKV_AOF_CORRUPT, "record checksum mismatch");

    memset(rec, 0, sizeof(*rec));
    rec->type = (enum akv_aof_type)h[1];
    rec->offset = off;
    rec->size = AKV_AOF_REC_HEADER + plen;
    rec->batch = SIZE_MAX;
    switch (rec->type) {
    case AKV_AOF_SET:
        if (plen < 4 || get32(p) == 0 || get32(p) > plen - 4)
            FAIL(AKV_AOF_CORRUPT, "bad SET record");
        rec->key = (const char *)p + 4;
        rec->klen = get32(p);
        rec->val = rec->key + rec->klen;
        rec->vlen = plen - 4 - rec->klen;
        break;
    case AKV_AOF_DEL:
        if (plen == 0)
            FAIL(AKV_AOF_CORRUPT, "bad DEL record");
        rec->key = (const char *)p;
        rec->klen = plen;
        break;
    case AKV_AOF_FLUSHALL:
        if (plen != 0)
            FAIL(AKV_AOF_CORRUPT, "bad FLUSHALL record");
        break;
    case AKV_AOF_PUT:
    case AKV_AOF_PAYLOAD:
        if (plen < 16 || get32(p + 12) == 0 || get32(p + 12) > plen - 16)
            FAIL(AKV_AOF_CORRUPT,
                 rec->type == AKV_AOF_PUT ? "bad PUT record" : "bad PAYLOAD record");
        rec->db = get32(p);
        rec->expire = get64(p + 4);
        rec->klen = get32(p + 12);
        rec->key = (const char *)p + 16;
        rec->val = rec->key + rec->klen;
        rec->vlen = plen - 16 - rec->klen;
        break;
    case AKV_AOF_DELETE:
        if (plen <= 4)
            FAIL(AKV_AOF_CORRUPT, "bad DELETE record");
        rec->db = get32(p);
        rec->key = (const char *)p + 4;
        rec->klen = plen - 4;
        break;
    case AKV_AOF_FLUSHDB:
        if (plen != 4)
            FAIL(AKV_AOF_CORRUPT, "bad FLUSHDB record");
        rec->db = get32(p);
        break;
    case AKV_AOF_SWAPDB:
        if (plen != 8)
            FAIL(AKV_AOF_CORRUPT, "bad SWAPDB record");
        rec->db = get32(p);
        rec->db2 = get32(p + 4);
        break;
    case AKV_AOF_MULTI: {
        size_t at = 4, n = 0;
        if (nested || plen < 4)
            FAIL(AKV_AOF_CORRUPT, "bad MULTI record");
        rec->count = get32(p);
        rec->inner = p + 4;
        rec->inner_len = plen - 4;
        while (at < plen) {
            struct akv_aof_record in;
            /* The inner records end where the payload does. */
            if (parse_one(p, at, plen, 1, &in, why) != 0)
                FAIL(AKV_AOF_CORRUPT, "bad record inside a MULTI record");
            at += in.size;
            n++;
        }
        if (n != rec->count)
            FAIL(AKV_AOF_CORRUPT, "bad MULTI record count");
        break;
    }
    case AKV_AOF_SNAPBEGIN:
        if (nested || plen != AKV_AOF_SNAP_HEAD)
            FAIL(AKV_AOF_CORRUPT, "bad SNAPBEGIN record");
        if (get32(p) != AKV_AOF_SNAP_FORMAT)
            FAIL(AKV_AOF_CORRUPT, "unsupported snapshot preamble format");
        rec->inner = p;
        rec->inner_len = plen;
        break;
    case AKV_AOF_SNAPEND:
        if (nested || plen != AKV_AOF_SNAP_ENDLEN)
            FAIL(AKV_AOF_CORRUPT, "bad SNAPEND record");
        rec->inner = p;
        rec->inner_len = plen;
        break;
    case AKV_AOF_SNAPCHUNK: {
        size_t at = 0, n = 0;
        struct akv_aof_snap_entry e;
        if (nested || plen < 8)
            FAIL(AKV_AOF_CORRUPT, "bad SNAPCHUNK record");
        rec->db = get32(p);
        rec->count = get32(p + 4);
        rec->inner = p + 8;
        rec->inner_len = plen - 8;
        if (rec->count == 0 || rec->count > AKV_AOF_SNAP_CHUNK_ENTRIES)
            FAIL(AKV_AOF_CORRUPT, "bad SNAPCHUNK entry count");
        while (at < rec->inner_len) {
            if (n == rec->count || snap_entry(rec->inner, rec->inner_len, &at, &e, NULL, NULL) < 0)
                FAIL(AKV_AOF_CORRUPT, "bad entry inside a SNAPCHUNK record");
            n++;
        }
        if (n != rec->count)
            FAIL(AKV_AOF_CORRUPT, "bad SNAPCHUNK entry count");
        break;
    }
    }
    return 0;
}

/* One piece of the check of the MULTI record at ps->off, whose header
 * checks out (parse_head), as parse_one checks it whole: the payload's
 * checksum over AKV_AOF_CHECK_PIECE more bytes, or the records inside it
 * over about as many. Returns 0 while there is more to check, 1 once it is
 * checked whole (*rec filled as parse_one fills it), or the status with
 * *why set. */
static int multi_check_piece(struct akv_aof_parser *ps, struct akv_aof_record *rec,
                             const char **why)
{
    const unsigned char *h = ps->buf + ps->off, *p = h + AKV_AOF_REC_HEADER;
    size_t plen = get32(h + 4), end;

    if (!ps->ck_inner) {
        size_t n = plen - ps->ck_at < AKV_AOF_CHECK_PIECE ? plen - ps->ck_at : AKV_AOF_CHECK_PIECE;
        ps->ck_crc = (uint32_t)crc32(ps->ck_crc, (const Bytef *)p + ps->ck_at, (uInt)n);
        ps->ck_at += n;
        if (ps->ck_at < plen)
            return 0;
        if (get32(h + 12) != ps->ck_crc)
            FAIL(AKV_AOF_CORRUPT, "record checksum mismatch");
        if (plen < 4)
            FAIL(AKV_AOF_CORRUPT, "bad MULTI record");
        ps->ck_inner = 1;
        ps->ck_at = 4;
        ps->ck_n = 0;
    }
    end = ps->ck_at + AKV_AOF_CHECK_PIECE;
    while (ps->ck_at < plen && ps->ck_at < end) {
        struct akv_aof_record in;
        /* The inner records end where the payload does. */
        if (parse_one(p, ps->ck_at, plen, 1, &in, why) != 0)
            FAIL(AKV_AOF_CORRUPT, "bad record inside a MULTI record");
        ps->ck_at += in.size;
        ps->ck_n++;
    }
    if (ps->ck_at < plen)
        return 0;
    if (ps->ck_n != get32(p))
        FAIL(AKV_AOF_CORRUPT, "bad MULTI record count");
    memset(rec, 0, sizeof(*rec));
    rec->type = AKV_AOF_MULTI;
    rec->offset = ps->off;
    rec->size = AKV_AOF_REC_HEADER + plen;
    rec->batch = SIZE_MAX;
    rec->count = get32(p);
    rec->inner = p + 4;
    rec->inner_len = plen - 4;
    return 1;
}
#undef FAIL

void akv_aof_parser_init(struct akv_aof_parser *ps, const void *buf, size_t len)
{
    memset(ps, 0, sizeof(*ps));
    ps->buf = buf;
    ps->len = len;
    ps->res.status = AKV_AOF_OK;
    ps->res.reason = "";
    if (len == 0) {
        ps->done = 1;
        return;
    }
    check_file_header(ps->buf, len, &ps->res);
    if (ps->res.status != AKV_AOF_OK)
        ps->done = 1;
    ps->off = AKV_AOF_FILE_HEADER;
}

/* Hands the next record inside the MULTI record ps->multi to fn; at its
 * last, counts the MULTI record and moves past it. */
static int multi_next(struct akv_aof_parser *ps, akv_aof_record_fn fn, void *arg)
{
    const unsigned char *in = ps->multi.inner;
    struct akv_aof_record r;
    const char *why = "";
    int rc;

    (void)parse_one(in, ps->multi_at, ps->multi.inner_len, 1, &r, &why); /* checked whole */
    r.offset = (size_t)(in - ps->buf) + ps->multi_at;
    r.batch = ps->off;
    if (fn && (rc = fn(arg, &r)) != 0)
        return rc;
    ps->res.counts[r.type]++;
    ps->multi_at += r.size;
    if (++ps->multi_done == ps->multi.count) {
        ps->in_multi = 0;
        ps->res.records++;
        ps->res.counts[AKV_AOF_MULTI]++;
        ps->off += ps->multi.size;
        ps->res.good_end = ps->off;
    }
    return 0;
}

/* Whether a record of type may come at ps->off, by the preamble's order
 * (aof.h). Returns 0 or CORRUPT with *why set. */
static int snap_order(const struct akv_aof_parser *ps, int type, const char **why)
{
    int inside = ps->res.snap == 1;

    if (type == AKV_AOF_SNAPBEGIN && ps->off != AKV_AOF_FILE_HEADER)
        *why = "a SNAPBEGIN record that is not the first record";
    else if ((type == AKV_AOF_SNAPCHUNK || type == AKV_AOF_SNAPEND) && !inside)
        *why = "a snapshot preamble record outside the preamble";
    else if (inside && type != AKV_AOF_SNAPCHUNK && type != AKV_AOF_SNAPEND)
        *why = "the snapshot preamble is not closed (another record before its SNAPEND)";
    else
        return 0;
    return AKV_AOF_CORRUPT;
}

/* The end of the buffer is reached at ps->off: done, unless a preamble
 * is still open (damage: it is written whole). */
static void reach_end(struct akv_aof_parser *ps)
{
    if (ps->res.snap == 1)
        stop(&ps->res, AKV_AOF_CORRUPT, ps->off,
             "the snapshot preamble is cut short (the file ends before its SNAPEND record)");
    ps->done = 1;
}

/* Counts a good preamble record; checks a SNAPEND's counts. */
static int snap_count(struct akv_aof_parser *ps, const struct akv_aof_record *rec, const char **why)
{
    uint64_t entries, chunks;

    switch (rec->type) {
    case AKV_AOF_SNAPBEGIN:
        ps->res.snap = 1;
        break;
    case AKV_AOF_SNAPCHUNK:
        ps->res.snap_entries += rec->count;
        ps->res.snap_chunks++;
        break;
    case AKV_AOF_SNAPEND:
        akv_aof_snap_end_decode(rec, &entries, &chunks);
        if (entries != ps->res.snap_entries || chunks != ps->res.snap_chunks) {
            *why = "the SNAPEND record's counts differ from the preamble's chunks";
            return AKV_AOF_CORRUPT;
        }
        ps->res.snap = 2;
        ps->res.snap_end = rec->offset + rec->size;
        break;
    default:
        break;
    }
    return 0;
}

int akv_aof_parse_step(struct akv_aof_parser *ps, size_t max, akv_aof_record_fn fn, void *arg)
{
    size_t n = 0;
    int rc;

    while (!ps->done && n < max) {
        struct akv_aof_record rec;
        const char *why = "";
        int st;

        n++;
        if (ps->in_multi) {
            if ((rc = multi_next(ps, fn, arg)) != 0)
                return rc;
            continue;
        }
        if (ps->checking) {
            st = multi_check_piece(ps, &rec, &why);
            if (st == 0)
                continue;
            ps->checking = 0;
            if (st == 1)
                st = 0;
        } else {
            size_t plen;
            if (ps->off >= ps->len) {
                reach_end(ps);
                break;
            }
            /* A MULTI record (up to AKV_AOF_PAYLOAD_MAX bytes) is checked
             * in pieces, one per count of max, before any of its records
             * is handed over. */
            st = parse_head(ps->buf, ps->off, ps->len, 0, &plen, &why);
            if (st == 0)
                st = snap_order(ps, ps->buf[ps->off + 1], &why);
            if (st == 0 && ps->buf[ps->off + 1] == AKV_AOF_MULTI) {
                ps->checking = 1;
                ps->ck_inner = 0;
                ps->ck_at = 0;
                ps->ck_crc = 0;
                continue;
            }
            if (st == 0)
                st = parse_one(ps->buf, ps->off, ps->len, 0, &rec, &why);
            if (st == 0)
                st = snap_count(ps, &rec, &why);
            /* A preamble is written whole: cut short (the record open at
             * the end of the file belongs to it), it is damage. */
            if (st == AKV_AOF_TORN &&
                (ps->res.snap == 1 ||
                 (ps->len - ps->off >= 2 && ps->buf[ps->off + 1] >= AKV_AOF_SNAPBEGIN &&
                  ps->buf[ps->off + 1] <= AKV_AOF_SNAPEND))) {
                st = AKV_AOF_CORRUPT;
                why = "the snapshot preamble is cut short (a record runs past the end of the file)";
            }
        }
        if (st != 0) {
            stop(&ps->res, (enum akv_aof_status)st, ps->off, why);
            ps->done = 1;
            break;
        }
        if (rec.type == AKV_AOF_MULTI) {
            ps->multi = rec;
            ps->multi_at = 0;
            ps->multi_done = 0;
            if (rec.count > 0) {
                ps->in_multi = 1;
                if ((rc = multi_next(ps, fn, arg)) != 0)
                    return rc;
                continue;
            }
        } else if (fn && (rc = fn(arg, &rec)) != 0) {
            return rc;
        }
        ps->res.records++;
        ps->res.counts[rec.type]++;
        ps->off += rec.size;
        ps->res.good_end = ps->off;
    }
    if (!ps->done && !ps->in_multi && !ps->checking && ps->off >= ps->len)
        reach_end(ps);
    return 0;
}

int akv_aof_parse(const void *buf, size_t len, akv_aof_record_fn fn, void *arg,
                  struct akv_aof_result *res)
{
    struct akv_aof_parser ps;
    int rc;

    akv_aof_parser_init(&ps, buf, len);
    rc = akv_aof_parse_step(&ps, SIZE_MAX, fn, arg);
    *res = ps.res;
    return rc;
}

/* ------------------------------------------------------------------------
 * Salvage (see aof.h): keep every good record, skip the damage, resume.
 */

/* Whether a whole record header at b[off..) checks out: magic byte, header
 * checksum, type, reserved bytes and the length limit (not whether the
 * payload is there). Sets *plen. */
static int header_ok(const unsigned char *b, size_t off, size_t len, size_t *plen)
{
    const unsigned char *h = b + off;

    if (off > len || len - off < AKV_AOF_REC_HEADER || h[0] != REC_MAGIC)
        return 0;
    if (h[1] < AKV_AOF_SET || h[1] >= AKV_AOF_TYPES || h[2] != 0 || h[3] != 0)
        return 0;
    if (get32(h + 8) != crc(h, 8) || get32(h + 4) > AKV_AOF_PAYLOAD_MAX)
        return 0;
    *plen = get32(h + 4);
    return 1;
}

/* How many of the 16 bytes of the damaged header h differ from the header
 * a record of type t would have with a payload of plen bytes whose
 * checksum is pcrc. */
static int header_distance(const unsigned char *h, int t, size_t plen, uint32_t pcrc)
{
    unsigned char want[AKV_AOF_REC_HEADER];
    int d = 0;

    want[0] = REC_MAGIC;
    want[1] = (unsigned char)t;
    want[2] = want[3] = 0;
    put32(want + 4, (uint32_t)plen);
    put32(want + 8, crc(want, 8));
    put32(want + 12, pcrc);
    for (int i = 0; i < AKV_AOF_REC_HEADER; i++)
        d += want[i] != h[i];
    return d;
}

struct salvage {
    const unsigned char *b;
    size_t len;
    akv_aof_record_fn keep;
    akv_aof_skip_fn skip;
    void *arg;
    struct akv_aof_salvage_result *res;
    size_t checked_end; /* end of the last record checked whole while resynchronising */
};

static int sv_skip(struct salvage *sv, size_t off, size_t end, enum akv_aof_skip_kind kind,
                   int type, const char *why)
{
    struct akv_aof_skip s = {off, end - off, kind, type, why};

    sv->res->skips++;
    sv->res->skipped_bytes += end - off;
    return sv->skip ? sv->skip(sv->arg, &s) : 0;
}

/* Whether p is where reading can resume (see aof.h): a good header, the
 * record inside the file, and a good header (or the end of the file, or
 * the start of a torn header) right after it, or the record good whole.
 * Checking a record whole happens only beyond the last one checked so, so
 * that no byte is checksummed twice while resynchronising. */
static int resync_point(struct salvage *sv, size_t p)
{
    const unsigned char *b = sv->b;
    size_t len = sv->len, plen, q, next;
    struct akv_aof_record rec;
    const char *why;

    if (!header_ok(b, p, len, &plen) || plen > len - p - AKV_AOF_REC_HEADER)
        return 0;
    q = p + AKV_AOF_REC_HEADER + plen;
    if (q == len || header_ok(b, q, len, &next) ||
        (len - q < AKV_AOF_REC_HEADER && b[q] == REC_MAGIC))
        return 1;
    if (p < sv->checked_end)
        return 0;
    sv->checked_end = q;
    return parse_one(b, p, len, 0, &rec, &why) == 0;
}

/* The end of the damaged record at off if it was a MULTI record (its count,
 * then that many good records of types 1-7, within one payload's limit),
 * or 0 when it cannot have been one. */
static size_t multi_reading(const struct salvage *sv, size_t off)
{
    const unsigned char *b = sv->b;
    size_t len = sv->len, at = off + AKV_AOF_REC_HEADER + 4;
    uint32_t count;

    if (at > len)
        return 0;
    count = get32(b + off + AKV_AOF_REC_HEADER);
    for (uint32_t i = 0; i < count; i++) {
        struct akv_aof_record rec;
        const char *why;
        if (at >= len || parse_one(b, at, len, 1, &rec, &why) != 0)
            return 0;
        at += rec.size;
        if (at - off - AKV_AOF_REC_HEADER > AKV_AOF_PAYLOAD_MAX)
            return 0;
    }
    return at;
}

/* The record at off has a header that does not check out: skips up to
 * where reading resumes, which it returns. */
static int resync(struct salvage *sv, size_t off, size_t *resume)
{
    const unsigned char *b = sv->b, *h = b + off;
    size_t len = sv->len, p = off + 1, end, plen_field;
    int d_plain = AKV_AOF_REC_HEADER + 1, guess = 0;

    while (p < len && !(b[p] == REC_MAGIC && resync_point(sv, p)))
        p++;
    if (p - off >= AKV_AOF_REC_HEADER && p - off - AKV_AOF_REC_HEADER <= AKV_AOF_PAYLOAD_MAX) {
        /* How nearly the damaged header matches a plain record ending at p. */
        const unsigned char *pay = h + AKV_AOF_REC_HEADER;
        size_t plen = p - off - AKV_AOF_REC_HEADER;
        uint32_t pcrc = crc(pay, plen);
        for (int t = AKV_AOF_SET; t < AKV_AOF_TYPES; t++) {
            int d;
            if (t == AKV_AOF_MULTI)
                continue;
            d = header_distance(h, t, plen, pcrc);
            if (d < d_plain) {
                d_plain = d;
                guess = t;
            }
        }
        if (d_plain > 2)
            guess = 0;
    }
    if (p >= len) {
        *resume = len;
        return sv_skip(sv, off, len, AKV_AOF_SKIP_REST, guess,
                       "bad record header, and no good record after it");
    }
    /* Was it a MULTI record holding p? Its records must not be kept alone. */
    end = multi_reading(sv, off);
    if (end > p) {
        const unsigned char *pay = h + AKV_AOF_REC_HEADER;
        size_t plen = end - off - AKV_AOF_REC_HEADER;
        if (header_distance(h, AKV_AOF_MULTI, plen, crc(pay, plen)) <= d_plain) {
            *resume = end;
            return sv_skip(sv, off, end, AKV_AOF_SKIP_MULTI, AKV_AOF_MULTI,
                           "bad record header, read as a MULTI record's");
        }
    }
    /* Does its own length field reach past p, onto a good header, and
     * explain the damaged header better than a record ending at p? */
    plen_field = get32(h + 4);
    if (len - off >= AKV_AOF_REC_HEADER && plen_field <= AKV_AOF_PAYLOAD_MAX &&
        plen_field <= len - off - AKV_AOF_REC_HEADER) {
        size_t e = off + AKV_AOF_REC_HEADER + plen_field, next;
        int d_len = AKV_AOF_REC_HEADER + 1;
        if (e > p && (e == len || header_ok(b, e, len, &next))) {
            uint32_t pcrc = crc(h + AKV_AOF_REC_HEADER, plen_field);
            for (int t = AKV_AOF_SET; t < AKV_AOF_TYPES; t++) {
                int d = header_distance(h, t, plen_field, pcrc);
                d_len = d < d_len ? d : d_len;
            }
        }
        if (d_len < d_plain) {
            *resume = e;
            return sv_skip(sv, off, e, AKV_AOF_SKIP_RESYNC, h[1] < AKV_AOF_TYPES ? h[1] : 0,
                           "bad record header (its length field used)");
        }
    }
    if (h[1] == AKV_AOF_MULTI && d_plain > 2) {
        *resume = len;
        return sv_skip(sv, off, len, AKV_AOF_SKIP_REST, AKV_AOF_MULTI,
                       "bad header of what may be a MULTI record whose end cannot be found");
    }
    *resume = p;
    return sv_skip(sv, off, p, AKV_AOF_SKIP_RESYNC, guess,
                   "bad record header; resynchronised on the next good one");
}

int akv_aof_salvage(const void *buf, size_t len, akv_aof_record_fn keep, akv_aof_skip_fn skip,
                    void *arg, struct akv_aof_salvage_result *res)
{
    struct salvage sv = {buf, len, keep, skip, arg, res, 0};
    struct akv_aof_result hdr;
    const unsigned char *b = buf;
    size_t off = AKV_AOF_FILE_HEADER;
    int rc;

    memset(res, 0, sizeof(*res));
    res->reason = "";
    if (len == 0)
        return 0;
    memset(&hdr, 0, sizeof(hdr));
    check_file_header(b, len, &hdr);
    if (hdr.status == AKV_AOF_TORN)
        return sv_skip(&sv, 0, len, AKV_AOF_SKIP_TORN, 0, hdr.reason);
    if (hdr.status != AKV_AOF_OK) {
        res->reason = hdr.reason;
        return -EBADMSG;
    }
    while (off < len) {
        struct akv_aof_record rec;
        const char *why = "";
        size_t plen;
        int st = parse_one(b, off, len, 0, &rec, &why);

        if (st == 0) {
            if (keep && (rc = keep(arg, &rec)) != 0)
                return rc;
            res->records++;
            res->kept_bytes += rec.size;
            res->counts[rec.type]++;
            if (rec.type == AKV_AOF_MULTI) {
                size_t at = 0;
                for (uint32_t i = 0; i < rec.count; i++) {
                    struct akv_aof_record r;
                    (void)parse_one(rec.inner, at, rec.inner_len, 1, &r, &why);
                    res->counts[r.type]++;
                    at += r.size;
                }
            }
            off += rec.size;
        } else if (st == AKV_AOF_TORN) {
            /* Cut short by the end of the file: a partial header, or a good
             * one whose payload runs past the end. */
            int t = len - off >= AKV_AOF_REC_HEADER ? b[off + 1] : 0;
            if ((rc = sv_skip(&sv, off, len, AKV_AOF_SKIP_TORN, t, why)) != 0)
                return rc;
            off = len;
        } else if (header_ok(b, off, len, &plen) && plen <= len - off - AKV_AOF_REC_HEADER) {
            size_t end = off + AKV_AOF_REC_HEADER + plen;
            if ((rc = sv_skip(&sv, off, end, AKV_AOF_SKIP_RECORD, b[off + 1], why)) != 0)
                return rc;
            off = end;
        } else if ((rc = resync(&sv, off, &off)) != 0) {
            return rc;
        }
    }
    return 0;
}
