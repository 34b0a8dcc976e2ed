/*
 * entry.h - the bytes of a cluster log entry (the payload of a Raft
 * RAFT_COMMAND entry): encoding and a pure, bounds-checked decoder.
 *
 * Layout (little-endian):
 *   u8 'K' | u8 version (2) | u8 kind | u8 flags
 *   u64 origin node id | u64 request id | u64 time (ms since the epoch) |
 *   u64 term (the leader's when it appended the entry)
 *   then by kind:
 *   - AKV_ENTRY_CMDS: u32 db | u8 resp (2 or 3) | u8 0 | u16 0 | u32 ncmds, then
 *     ncmds times: u32 argc, then argc times: u32 len, len bytes. With
 *     AKV_ENTRY_EXEC in flags the commands are a transaction's queue (run
 *     as EXEC runs them); then u32 nwatch follows, nwatch times: u32 db,
 *     u32 klen, key bytes, u8 present, u64 expire, u32 vlen, value bytes
 *     (the WATCHed keys as the client saw them: the transaction runs only
 *     if each is still so).
 *   - AKV_ENTRY_EXPIRED: u32 n, n times: u32 db, u32 klen, key bytes, u64
 *     expire (the leader's expiry cycle: delete each key whose expiry time
 *     is still this one and has come by the entry's time).
 *   - AKV_ENTRY_NODE: u32 len, the node's client address ("host:port").
 *   - AKV_ENTRY_VOCAB: u64 meta checksum | u64 data checksum | u64 words |
 *     u32 dimension (the vocabulary every node must use).
 * Up to 7 zero bytes may follow (the log stores entries in whole 8-byte
 * words); nothing else. The decoder refuses reserved bytes that are not
 * zero, so an entry has one encoding. The origin and request id tag an
 * entry so that the node a client wrote to can find its entry when
 * applying it.
 *
 * Threading: none; any thread. Ownership: decoded pointers point into the
 * buffer passed to akv_entry_decode.
 */
#ifndef ATTNKV_ENTRY_H
#define ATTNKV_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define AKV_ENTRY_MAGIC 'K'
#define AKV_ENTRY_VERSION 2
#define AKV_ENTRY_HEAD 36

enum akv_entry_kind {
    AKV_ENTRY_CMDS = 1,
    AKV_ENTRY_EXPIRED = 2,
    AKV_ENTRY_NODE = 3,
    AKV_ENTRY_VOCAB = 4,
};

enum { AKV_ENTRY_EXEC = 1u << 0 };

/* A decoded entry; cmds, watch and keys are walked with the iterators. */
struct akv_entry {
    enum akv_entry_kind kind;
    unsigned flags;
    uint64_t origin, req, now_ms;
    uint64_t term; /* the leader's term when it appended the entry */
    /* CMDS */
    uint32_t db;
    int resp;
    uint32_t ncmds;
    const uint8_t *cmds; /* the first command */
    uint32_t nwatch;
    const uint8_t *watch;
    /* EXPIRED */
    uint32_t nkeys;
    const uint8_t *keys;
    /* NODE */
    const char *addr;
    size_t addrlen;
    /* VOCAB */
    uint64_t vocab_meta, vocab_data, vocab_words;
    uint32_t vocab_dim;
};

/* Checks the whole of buf[0, len) and fills *e. Returns 0 or -EBADMSG
 * (buf may be NULL when len is 0). */
int akv_entry_decode(const void *buf, size_t len, struct akv_entry *e);

/* Reads the command at *p (inside a decoded entry's cmds): its argc and
 * then, for i < argc, akv_entry_arg gives each argument; returns the
 * position of the next command. Only for entries akv_entry_decode
 * accepted, which bounds every read. */
const uint8_t *akv_entry_cmd(const uint8_t *p, uint32_t *argc, const uint8_t **args);
const uint8_t *akv_entry_arg(const uint8_t *p, const char **s, size_t *len);

/* The WATCHed key at *p; returns the next one's position. */
struct akv_entry_watch {
    uint32_t db;
    const char *key;
    size_t klen;
    int present;
    uint64_t expire;
    const char *val;
    size_t vlen;
};
const uint8_t *akv_entry_watch_next(const uint8_t *p, struct akv_entry_watch *w);

/* The expired key at *p; returns the next one's position. */
const uint8_t *akv_entry_key_next(const uint8_t *p, uint32_t *db, const char **key, size_t *klen,
                                  uint64_t *expire);

/* Encoding: a header, then the kind's parts. Each returns 0 or -ENOMEM. */
int akv_entry_put_head(struct akv_buf *b, enum akv_entry_kind kind, unsigned flags, uint64_t origin,
                       uint64_t req, uint64_t now_ms);
int akv_entry_put_u8(struct akv_buf *b, uint8_t v);
int akv_entry_put_u32(struct akv_buf *b, uint32_t v);
int akv_entry_put_u64(struct akv_buf *b, uint64_t v);
int akv_entry_put_bytes(struct akv_buf *b, const void *p, size_t n); /* u32 length, bytes */

/* An entry's time and term sit at fixed places: the leader stamps them
 * when it appends the entry (the encoders write zeros). */
void akv_entry_stamp(void *buf, uint64_t now_ms, uint64_t term);

#endif
