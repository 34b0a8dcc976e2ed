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
 * Integers are little-endian; crc32 is zlib's. Payloads (keys are never
 * empty):
 *   1 SET       u32 key length | key | value (the rest)      database 0
 *   2 DEL       key                                          database 0
 *   3 FLUSHALL  (empty)
 *   4 PUT       u32 db | u64 expiry time, ms since the epoch (0: none) |
 *               u32 key length | key | value
 *   5 DELETE    u32 db | key
 *   6 FLUSHDB   u32 db
 *   7 SWAPDB    u32 db | u32 db
 *   8 MULTI     u32 count | count whole records of types 1-7 and 9
 *   9 PAYLOAD   as PUT; the value is a payload (bytes that are not
 *               embedded: SET ... PAYLOAD)
 *  10 SNAPBEGIN u32 snapshot format (1) | u32 dim | u64 vocabulary word
 *               count | u64 vocabulary meta checksum | u64 vocabulary data
 *               checksum | u32 databases | u32 0 | u64 time, ms since the
 *               epoch (the snapshot's)                         48 bytes
 *  11 SNAPCHUNK u32 db | u32 count | count entries:
 *                 u8 flags (1: payload value, 2: has an expiry time) |
 *                 u8 key words | u8 value words | u8 0 | u32 key length |
 *                 u32 value length | [u64 expiry time, flag 2] |
 *                 f64 the key's norm (as the store computed it) |
 *                 key word ids (u32 each) | value word ids | key | value
 *  12 SNAPEND   u64 entries | u64 chunks                       16 bytes
 * Types 10-12 are the snapshot preamble a rewrite writes at the head of the
 * file (see "The snapshot preamble" below); an older attnkvd refuses such
 * a file ("unknown record type").
 * Types 4-8 came with databases, expiry and transactions, type 9 with
 * payload values; the writer uses them (and FLUSHALL), older files with
 * types 1-3 (or 1-8) load unchanged. A MULTI
 * record is applied whole or, torn, not at all: the records of a
 * transaction (and of MSET, RENAME, ...) go into one.
 *
 * The header checksum is separate from the payload's so that the parser can
 * tell a record cut short by a crash (a valid header whose payload runs past
 * the end of the file, or a partial header) from damage (a header that does
 * not check out, whatever length it claims): only the former is "torn".
 *
 * The snapshot preamble. A rewrite may start the new file with the store's
 * entries in binary form, each with the vocabulary ids of its words, so
 * that loading them needs no tokenizing or embedding: a SNAPBEGIN record
 * right after the file header (naming the vectors the ids belong to), then
 * SNAPCHUNK records of at most AKV_AOF_SNAP_CHUNK_ENTRIES entries of one
 * database each, then a SNAPEND record counting the entries and chunks;
 * ordinary records follow. Each of them is a record like any other (its own
 * header and payload checksums). The parser enforces the sequence: a
 * SNAPBEGIN only as the first record, chunks only between it and the
 * SNAPEND, whose counts must match, and no other record before the
 * SNAPEND. A preamble is written whole before the file is renamed into
 * place, so one cut short (the file ending, or a record torn, before its
 * SNAPEND) is damage (CORRUPT), never a torn tail.
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

enum akv_aof_type {
    AKV_AOF_SET = 1,
    AKV_AOF_DEL = 2,
    AKV_AOF_FLUSHALL = 3,
    AKV_AOF_PUT = 4,
    AKV_AOF_DELETE = 5,
    AKV_AOF_FLUSHDB = 6,
    AKV_AOF_SWAPDB = 7,
    AKV_AOF_MULTI = 8,
    AKV_AOF_PAYLOAD = 9,
    AKV_AOF_SNAPBEGIN = 10,
    AKV_AOF_SNAPCHUNK = 11,
    AKV_AOF_SNAPEND = 12,
};
#define AKV_AOF_TYPES 13 /* one more than the largest type */

/* One record; key, val and inner point into the parsed buffer. */
struct akv_aof_record {
    enum akv_aof_type type;
    const char *key; /* SET, DEL, PUT, DELETE, PAYLOAD */
    size_t klen;
    const char *val; /* SET, PUT, PAYLOAD */
    size_t vlen;
    uint32_t db;       /* PUT, DELETE, FLUSHDB, SWAPDB, PAYLOAD (0 for SET and DEL) */
    uint32_t db2;      /* SWAPDB */
    uint64_t expire;   /* PUT, PAYLOAD */
    uint32_t count;    /* MULTI: records inside; SNAPCHUNK: entries */
    const void *inner; /* MULTI: the encoded records; SNAPCHUNK: the entries; SNAPBEGIN,
                        * SNAPEND: the payload (akv_aof_snap_head_decode, _end_decode) */
    size_t inner_len;
    size_t offset; /* where the record starts in the buffer */
    size_t size;   /* header + payload */
    size_t batch;  /* parse: offset of the MULTI record holding it, or SIZE_MAX */
};

enum akv_aof_status {
    AKV_AOF_OK = 0,      /* every byte belongs to a good record (or the file is empty) */
    AKV_AOF_TORN = 1,    /* the last record is incomplete: cut at good_end */
    AKV_AOF_CORRUPT = 2, /* a bad header or record at bad_offset */
};

struct akv_aof_result {
    enum akv_aof_status status;
    size_t records;               /* good top-level records: a MULTI counts once (the callback
                                   * is called for the records inside it, not for it) */
    size_t good_end;              /* end of the last good record (or of the file header) */
    size_t bad_offset;            /* TORN/CORRUPT: where the bad record starts (== good_end) */
    const char *reason;           /* TORN/CORRUPT: static text */
    size_t counts[AKV_AOF_TYPES]; /* good records by type, those inside MULTI ones included */
    /* The snapshot preamble: 1 once a SNAPBEGIN was read, 2 once its
     * SNAPEND was; the entries and chunks read so far, and where the
     * SNAPEND record ends (0 before). */
    int snap;
    uint64_t snap_entries, snap_chunks;
    size_t snap_end;
};

/* Bytes a record takes: header and payload. klen/vlen of the unused parts
 * are ignored (DEL ignores vlen; FLUSHALL both). */
size_t akv_aof_record_size(enum akv_aof_type type, size_t klen, size_t vlen);

/* Encodes one record at dst, which has akv_aof_record_size bytes; returns
 * that size. */
size_t akv_aof_encode(void *dst, enum akv_aof_type type, const char *key, size_t klen,
                      const char *val, size_t vlen);

/* The same for any type, from the fields of *r that the type uses. */
size_t akv_aof_rec_size(const struct akv_aof_record *r);
size_t akv_aof_rec_encode(void *dst, const struct akv_aof_record *r);

/* Writes the 16-byte file header at dst. */
void akv_aof_file_header(void *dst);

/* Called for each good record, in order; for a MULTI record, once for
 * each record inside it (their batch field set), after the whole of it has
 * been checked. Returning nonzero stops the parse, and akv_aof_parse
 * returns that value. */
typedef int (*akv_aof_record_fn)(void *arg, const struct akv_aof_record *rec);

/* Parses buf[0..len), a whole file, calling fn (may be NULL) for each good
 * record. An empty buffer is a good, empty file. Fills *res and returns 0
 * (the verdict is res->status), or what fn returned if it stopped the
 * parse (res then covers the records before). */
int akv_aof_parse(const void *buf, size_t len, akv_aof_record_fn fn, void *arg,
                  struct akv_aof_result *res);

/* The same parse in steps, for a replay that must leave the thread free
 * between them: init, then akv_aof_parse_step until done is set; res then
 * holds what akv_aof_parse would have filled in (and, between steps, the
 * figures so far; off is how far the parse has got). A step does at most
 * max units of work: a record handed to fn (each record inside a MULTI
 * record counts) or a piece of the check of a MULTI record (its checksum
 * over AKV_AOF_CHECK_PIECE bytes, or its inner records over about as
 * many): a MULTI record is checked whole, across steps, before any of its
 * records is handed over, then they are, across steps if need be. After
 * fn stopped a step (nonzero, returned by the step) the parse must not go
 * on. The buffer must stay mapped and unchanged until done. */
#define AKV_AOF_CHECK_PIECE ((size_t)64 << 10)
struct akv_aof_parser {
    const unsigned char *buf;
    size_t len;
    size_t off;                  /* where the next top-level record starts */
    int done;                    /* the end, or a bad record (res.status), was reached */
    int in_multi;                /* handing over multi's records */
    struct akv_aof_record multi; /* the MULTI record being handed over */
    size_t multi_at;             /* offset in multi.inner of the next of them */
    uint32_t multi_done;         /* of them handed over */
    /* Checking the MULTI record at off (its header checked): the payload's
     * checksum over ck_at bytes so far (ck_crc), then (ck_inner) its inner
     * records up to payload offset ck_at, ck_n of them. */
    int checking, ck_inner;
    size_t ck_at, ck_n;
    uint32_t ck_crc;
    struct akv_aof_result res;
};
/* The parser reads a preamble's records in the same steps: each SNAPCHUNK
 * (up to AKV_AOF_SNAP_CHUNK_ENTRIES entries) is one unit. */
void akv_aof_parser_init(struct akv_aof_parser *ps, const void *buf, size_t len);
int akv_aof_parse_step(struct akv_aof_parser *ps, size_t max, akv_aof_record_fn fn, void *arg);

/* "SET", "DEL", "FLUSHALL", "PUT", "DELETE", "FLUSHDB", "SWAPDB", "MULTI" or "?". */
const char *akv_aof_type_name(enum akv_aof_type type);

/* ---- the snapshot preamble ----------------------------------------------- */

#define AKV_AOF_SNAP_FORMAT 1
#define AKV_AOF_SNAP_HEAD 48
#define AKV_AOF_SNAP_ENDLEN 16
/* The most words a key or value of an entry may have (the store's limit,
 * AKV_PHRASE_WORDS_MAX). */
#define AKV_AOF_SNAP_WORDS_MAX 64
/* A writer closes a chunk at this many entries, or once its payload passes
 * AKV_AOF_SNAP_CHUNK_BYTES (an entry never spans two chunks); the parser
 * accepts up to AKV_AOF_SNAP_CHUNK_ENTRIES entries in any payload within
 * AKV_AOF_PAYLOAD_MAX. */
#define AKV_AOF_SNAP_CHUNK_ENTRIES 256
#define AKV_AOF_SNAP_CHUNK_BYTES ((size_t)32 << 10)
enum { AKV_AOF_SNAP_PAYLOAD = 1, AKV_AOF_SNAP_EXPIRE = 2 };

/* What SNAPBEGIN records: the vectors the ids belong to (akv_vocab_dim,
 * akv_vocab_count and akv_vocab_checksums of the vocabulary), the number
 * of databases written, and when. */
struct akv_aof_snap_head {
    uint32_t format; /* AKV_AOF_SNAP_FORMAT */
    uint32_t dim;
    uint64_t words;
    uint64_t meta_sum, data_sum;
    uint32_t databases;
    uint64_t time_ms;
};

/* One entry of a SNAPCHUNK. Decoded, key and val point into the chunk and
 * kids/vids into the caller's arrays. */
struct akv_aof_snap_entry {
    unsigned flags; /* AKV_AOF_SNAP_PAYLOAD; AKV_AOF_SNAP_EXPIRE is set from expire */
    uint64_t expire;
    double knorm; /* the L2 norm of the key's vector (akv_store_block's knorms), bit for bit */
    const char *key, *val;
    size_t klen, vlen;
    const uint32_t *kids, *vids;
    uint32_t nk, nv; /* nk 1..AKV_AOF_SNAP_WORDS_MAX; nv 0 exactly for a payload */
};

/* SNAPBEGIN: encodes (AKV_AOF_REC_HEADER + AKV_AOF_SNAP_HEAD bytes at
 * dst; returns that size) and decodes (a parsed record). */
size_t akv_aof_snap_head_encode(void *dst, const struct akv_aof_snap_head *h);
void akv_aof_snap_head_decode(const struct akv_aof_record *rec, struct akv_aof_snap_head *h);

/* SNAPEND likewise (AKV_AOF_REC_HEADER + AKV_AOF_SNAP_ENDLEN bytes). */
size_t akv_aof_snap_end_encode(void *dst, uint64_t entries, uint64_t chunks);
void akv_aof_snap_end_decode(const struct akv_aof_record *rec, uint64_t *entries, uint64_t *chunks);

/* SNAPCHUNK: a writer reserves AKV_AOF_SNAP_CHUNK_START bytes, appends
 * entries (akv_aof_snap_entry_encode, akv_aof_snap_entry_size bytes each)
 * after them, then akv_aof_snap_chunk_seal writes the record's header over
 * the reserved bytes, given the chunk's start, its database, entry count
 * and the bytes of entries; it returns the record's size. */
#define AKV_AOF_SNAP_CHUNK_START (AKV_AOF_REC_HEADER + 8)
size_t akv_aof_snap_entry_size(const struct akv_aof_snap_entry *e);
size_t akv_aof_snap_entry_encode(void *dst, const struct akv_aof_snap_entry *e);
size_t akv_aof_snap_chunk_seal(void *chunk, uint32_t db, uint32_t count, size_t entries_len);

/* Walks a parsed SNAPCHUNK record's entries: *at starts at 0; each call
 * decodes the entry there into *e (its ids into kids and vids, room for
 * AKV_AOF_SNAP_WORDS_MAX each) and advances *at. Returns 1, or 0 after the
 * last. The parser has checked the structure of every entry. */
int akv_aof_snap_next(const struct akv_aof_record *chunk, size_t *at, struct akv_aof_snap_entry *e,
                      uint32_t *kids, uint32_t *vids);

/* ---- salvage ------------------------------------------------------------
 *
 * akv_aof_salvage reads a damaged file the way attnkv-check-aof --salvage
 * repairs it: every good top-level record is kept, every damaged range is
 * skipped, and reading goes on after it.
 *
 * - A record whose header checks out (magic byte, header checksum, type,
 *   length within limits) but whose payload does not (payload checksum,
 *   structure, a bad record inside a MULTI) is skipped whole: its length is
 *   trustworthy, so exactly that record is lost. A damaged MULTI record is
 *   lost whole, never in part.
 * - A header that does not check out says nothing trustworthy about where
 *   the record ends: the reader resynchronises on the first later offset
 *   where a header checks out, the record fits in the file, and either the
 *   bytes right after that record start another header that checks out (or
 *   the file ends there), or the record itself checks out whole. Before
 *   resuming there it asks whether the damaged record was a MULTI holding
 *   that offset, since the records inside a MULTI look exactly like
 *   top-level ones: it reads the damaged record as a MULTI (its count, then
 *   that many good records) and, if that reading explains the damaged header
 *   at least as well (fewer differing bytes) as a plain record ending at the
 *   resynchronisation point, skips the whole MULTI. It also trusts the
 *   damaged header's own length field when that lands on a good header
 *   beyond the resynchronisation point. A header whose type byte says MULTI
 *   when neither locates its end loses the rest of the file.
 * - A record cut short by the end of the file is skipped (the torn tail).
 *
 * Cost: linear in the file's size (each byte is looked at a bounded number
 * of times; the look-ahead for a damaged MULTI is at most one MULTI's
 * payload, which the reader then walks anyway).
 */

enum akv_aof_skip_kind {
    AKV_AOF_SKIP_RECORD = 1, /* one record, its header good: exactly it is lost */
    AKV_AOF_SKIP_RESYNC = 2, /* a bad header, up to the next good header */
    AKV_AOF_SKIP_MULTI = 3,  /* a bad header read as a MULTI record's, to its end */
    AKV_AOF_SKIP_TORN = 4,   /* the last record, cut short by the end of the file */
    AKV_AOF_SKIP_REST = 5,   /* a bad header and nothing trustworthy after it */
};

struct akv_aof_skip {
    size_t offset, len;
    enum akv_aof_skip_kind kind;
    /* The skipped record's type: from its header (RECORD, TORN with a whole
     * header, MULTI), or the type whose header the damaged one most nearly
     * matches (RESYNC: within two bytes); 0 when unknown. */
    int type;
    const char *reason; /* static text */
};

typedef int (*akv_aof_skip_fn)(void *arg, const struct akv_aof_skip *skip);

struct akv_aof_salvage_result {
    size_t records;               /* top-level records kept (a MULTI counts once) */
    size_t kept_bytes;            /* their bytes (the file header not included) */
    size_t skips, skipped_bytes;  /* ranges left out and their bytes */
    size_t counts[AKV_AOF_TYPES]; /* kept records by type, those inside MULTIs included */
    const char *reason;           /* -EBADMSG: why the file cannot be salvaged */
};

/* Reads buf[0..len), a whole file, as described above. keep (may be NULL)
 * is called for each good top-level record in order: a MULTI record once,
 * whole (type MULTI, count and inner set; its records are not handed over
 * one by one). skip (may be NULL) is called for each range left out, in
 * order; kept records and skipped ranges tile the file after its header.
 * Returns 0; -EBADMSG (res->reason says why, nothing handed over) when the
 * file header is not that of an attnkv AOF; or what a callback returned
 * when it stopped the walk (nonzero). A file header cut short is one
 * skipped range. */
int akv_aof_salvage(const void *buf, size_t len, akv_aof_record_fn keep, akv_aof_skip_fn skip,
                    void *arg, struct akv_aof_salvage_result *res);

#endif
