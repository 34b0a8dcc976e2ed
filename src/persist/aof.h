/*
 * aof.h - the append-only file's format: encoding records and parsing a
 * file's bytes. Pure: no I/O, no allocation, no store; src/persist/persist.c does
 * the file handling, tools/check-aof.c and fuzz/fuzz-aof.c use the parser
 * directly.
 *
 * A file is a 16-byte header, then records:
 *
 *   header  "AKV-AOF\n" | u32 version (1) | u32 crc32 of the 12 bytes before
 *   record  u8 0xA7 | u8 type | u16 0 | u32 payload length |
 *           u32 crc32 of the 8 header bytes before | u32 crc32 of the payload |
 *           payload
 *
 * Integers are little-endian; crc32 is zlib's. Payloads: SET is u32 key
 * length, key, value (the rest); DEL is the key; FLUSHALL is empty. Keys are
 * never empty.
 *
 * The header checksum is separate from the payload's so that the parser can
 * tell a record cut short by a crash (a valid header whose payload runs past
 * the end of the file, or a partial header) from damage (a header that does
 * not check out, whatever length it claims): only the former is "torn".
 *
 * Threading: none; any thread.
 */
#ifndef ATTNKV_AOF_H
#define ATTNKV_AOF_H

#include <stddef.h>
#include <stdint.h>

#define AKV_AOF_FILE_HEADER 16
#define AKV_AOF_REC_HEADER 16
#define AKV_AOF_VERSION 1
/* The largest payload the parser believes (a SET of two 16 MiB bulk strings
 * fits with room to spare). */
#define AKV_AOF_PAYLOAD_MAX ((size_t)64 << 20)

enum akv_aof_type { AKV_AOF_SET = 1, AKV_AOF_DEL = 2, AKV_AOF_FLUSHALL = 3 };

/* One parsed record; key and val point into the parsed buffer. */
struct akv_aof_record {
    enum akv_aof_type type;
    const char *key; /* NULL for FLUSHALL */
    size_t klen;
    const char *val; /* SET only */
    size_t vlen;
    size_t offset; /* where the record starts in the buffer */
    size_t size;   /* header + payload */
};

enum akv_aof_status {
    AKV_AOF_OK = 0,      /* every byte belongs to a good record (or the file is empty) */
    AKV_AOF_TORN = 1,    /* the last record is incomplete: cut at good_end */
    AKV_AOF_CORRUPT = 2, /* a bad header or record at bad_offset */
};

struct akv_aof_result {
    enum akv_aof_status status;
    size_t records;     /* good records (those the callback was called for) */
    size_t good_end;    /* end of the last good record (or of the file header) */
    size_t bad_offset;  /* TORN/CORRUPT: where the bad record starts (== good_end) */
    const char *reason; /* TORN/CORRUPT: static text */
    size_t counts[4];   /* good records by type */
};

/* Bytes a record takes: header and payload. klen/vlen of the unused parts
 * are ignored (DEL ignores vlen; FLUSHALL both). */
size_t akv_aof_record_size(enum akv_aof_type type, size_t klen, size_t vlen);

/* Encodes one record at dst, which has akv_aof_record_size bytes; returns
 * that size. */
size_t akv_aof_encode(void *dst, enum akv_aof_type type, const char *key, size_t klen,
                      const char *val, size_t vlen);

/* Writes the 16-byte file header at dst. */
void akv_aof_file_header(void *dst);

/* Called for each good record, in order. Returning nonzero stops the parse,
 * and akv_aof_parse returns that value. */
typedef int (*akv_aof_record_fn)(void *arg, const struct akv_aof_record *rec);

/* Parses buf[0..len), a whole file, calling fn (may be NULL) for each good
 * record. An empty buffer is a good, empty file. Fills *res and returns 0
 * (the verdict is res->status), or what fn returned if it stopped the
 * parse (res then covers the records before). */
int akv_aof_parse(const void *buf, size_t len, akv_aof_record_fn fn, void *arg,
                  struct akv_aof_result *res);

/* "SET", "DEL", "FLUSHALL" or "?". */
const char *akv_aof_type_name(enum akv_aof_type type);

#endif
