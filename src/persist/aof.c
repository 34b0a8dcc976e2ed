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

static size_t payload_size(enum akv_aof_type type, size_t klen, size_t vlen)
{
    switch (type) {
    case AKV_AOF_SET:
        return 4 + klen + vlen;
    case AKV_AOF_DEL:
        return klen;
    default:
        return 0;
    }
}

size_t akv_aof_record_size(enum akv_aof_type type, size_t klen, size_t vlen)
{
    return AKV_AOF_REC_HEADER + payload_size(type, klen, vlen);
}

size_t akv_aof_encode(void *dst, enum akv_aof_type type, const char *key, size_t klen,
                      const char *val, size_t vlen)
{
    unsigned char *h = dst, *p = h + AKV_AOF_REC_HEADER;
    size_t plen = payload_size(type, klen, vlen);

    if (type == AKV_AOF_SET) {
        put32(p, (uint32_t)klen);
        memcpy(p + 4, key, klen);
        if (vlen > 0)
            memcpy(p + 4 + klen, val, vlen);
    } else if (type == AKV_AOF_DEL) {
        memcpy(p, key, klen);
    }
    h[0] = REC_MAGIC;
    h[1] = (unsigned char)type;
    h[2] = h[3] = 0;
    put32(h + 4, (uint32_t)plen);
    put32(h + 8, crc(h, 8));
    put32(h + 12, crc(p, plen));
    return AKV_AOF_REC_HEADER + plen;
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
    }
    return "?";
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

int akv_aof_parse(const void *buf, size_t len, akv_aof_record_fn fn, void *arg,
                  struct akv_aof_result *res)
{
    const unsigned char *b = buf;
    size_t off;

    memset(res, 0, sizeof(*res));
    res->status = AKV_AOF_OK;
    res->reason = "";
    if (len == 0)
        return 0;
    check_file_header(b, len, res);
    if (res->status != AKV_AOF_OK)
        return 0;

    off = AKV_AOF_FILE_HEADER;
    while (off < len) {
        const unsigned char *h = b + off, *p = h + AKV_AOF_REC_HEADER;
        size_t left = len - off, plen;
        struct akv_aof_record rec;
        int rc;

        if (h[0] != REC_MAGIC)
            return stop(res, AKV_AOF_CORRUPT, off, "bad record magic");
        if (left < AKV_AOF_REC_HEADER)
            return stop(res, AKV_AOF_TORN, off, "record header cut short");
        if (get32(h + 8) != crc(h, 8))
            return stop(res, AKV_AOF_CORRUPT, off, "record header checksum mismatch");
        plen = get32(h + 4);
        if (h[1] < AKV_AOF_SET || h[1] > AKV_AOF_FLUSHALL || h[2] != 0 || h[3] != 0)
            return stop(res, AKV_AOF_CORRUPT, off, "unknown record type");
        if (plen > AKV_AOF_PAYLOAD_MAX)
            return stop(res, AKV_AOF_CORRUPT, off, "record length out of range");
        if (plen > left - AKV_AOF_REC_HEADER)
            return stop(res, AKV_AOF_TORN, off, "record cut short");
        if (get32(h + 12) != crc(p, plen))
            return stop(res, AKV_AOF_CORRUPT, off, "record checksum mismatch");

        memset(&rec, 0, sizeof(rec));
        rec.type = (enum akv_aof_type)h[1];
        rec.offset = off;
        rec.size = AKV_AOF_REC_HEADER + plen;
        switch (rec.type) {
        case AKV_AOF_SET:
            if (plen < 4 || get32(p) == 0 || get32(p) > plen - 4)
                return stop(res, AKV_AOF_CORRUPT, off, "bad SET record");
            rec.key = (const char *)p + 4;
            rec.klen = get32(p);
            rec.val = rec.key + rec.klen;
            rec.vlen = plen - 4 - rec.klen;
            break;
        case AKV_AOF_DEL:
            if (plen == 0)
                return stop(res, AKV_AOF_CORRUPT, off, "bad DEL record");
            rec.key = (const char *)p;
            rec.klen = plen;
            break;
        case AKV_AOF_FLUSHALL:
            if (plen != 0)
                return stop(res, AKV_AOF_CORRUPT, off, "bad FLUSHALL record");
            break;
        }
        if (fn && (rc = fn(arg, &rec)) != 0)
            return rc;
        res->records++;
        res->counts[rec.type]++;
        off += rec.size;
        res->good_end = off;
    }
    return 0;
}
