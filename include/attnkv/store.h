/*
 * store.h - the key/value store: exact key -> value strings, each entry with
 * the vocabulary words of its key and value (their vectors are the means of
 * those words' rows, which the vocabulary holds; no vector is copied).
 *
 * Threading (see the Design comment in src/engine/store.c):
 *   - One thread, the owner (the daemon's loop thread), calls every function
 *     here except akv_store_scan, akv_store_dim, akv_store_vocab,
 *     akv_store_entry_words, akv_store_key_words, akv_store_value_words,
 *     akv_store_entry_text,
 *     akv_store_entry_payload and akv_store_entry_vhash, and never blocks
 *     on a reader.
 *   - Readers (worker threads) read a snapshot: the owner takes it with
 *     akv_store_snap_take, hands it to the worker (through anything that
 *     orders memory, such as a mutex or libuv's work queue), and releases it
 *     with akv_store_snap_release once the worker is done. A snapshot sees
 *     exactly the writes made before it was taken, and nothing after.
 *   - Entries that a live snapshot may still read are never freed or reused.
 */
#ifndef ATTNKV_STORE_H
#define ATTNKV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/vocab.h"

struct akv_store;

/* A read view, by value. version is the write count it sees. */
struct akv_store_snap {
    uint64_t version;
    size_t nslots;   /* slots below this index may be visible */
    uint64_t now_ms; /* the store's clock when it was taken: entries expired by then are not seen */
};

/* Creates an empty store for vectors of vocabulary voc (borrowed: it must
 * outlive the store). Returns 0 or -ENOMEM. */
int akv_store_create(struct akv_store **out, const struct akv_vocab *voc);
/* Frees the store. No snapshot may be live. NULL is a no-op. */
void akv_store_destroy(struct akv_store *s);

/* Sets key to value (both byte strings, copied), splitting both into
 * vocabulary words as akv_embed_words does. Overwrites an existing key.
 * Returns 0; -ENOENT when a word is not in the vocabulary (err says which
 * and, if it can, suggests a spelling); -EINVAL for empty, overlong or
 * invalid text (err says why); -ENOMEM. */
int akv_store_set(struct akv_store *s, const char *key, size_t klen, const char *val, size_t vlen,
                  char *err, size_t errlen);

/* As akv_store_set, with an expiry time in ms since the epoch (0: none):
 * from that instant on (by the store's clock) the entry is invisible to
 * every lookup and snapshot, though it stays in the store until deleted. */
int akv_store_put(struct akv_store *s, const char *key, size_t klen, const char *val, size_t vlen,
                  uint64_t expire, char *err, size_t errlen);

/* Flags for akv_store_put_ex. AKV_STORE_PAYLOAD: the value is stored as
 * bytes that are not embedded (any bytes, 0..AKV_STORE_VALUE_MAX of them);
 * the key must still embed. Attention scores such an entry by its key but
 * leaves it out of the blend (see src/engine/attn.c). */
enum { AKV_STORE_PAYLOAD = 1u << 0 };
#define AKV_STORE_VALUE_MAX ((size_t)1 << 20)

/* As akv_store_put, with flags. A put without AKV_STORE_PAYLOAD over a
 * payload entry makes it an embedded one again, and the reverse. */
int akv_store_put_ex(struct akv_store *s, const char *key, size_t klen, const char *val,
                     size_t vlen, uint64_t expire, unsigned flags, char *err, size_t errlen);

/* As akv_store_put_ex, with the words already split: kids[0..nk) are the
 * vocabulary ids of the key's words and vids[0..nv) the value's (nv 0
 * exactly for AKV_STORE_PAYLOAD), as akv_embed_words gives them for that
 * text with this store's vocabulary; knorm (NULL: computed from the rows)
 * is the key's norm as akv_store_block's knorms gives it for those ids.
 * For loading a snapshot of stores on these same vectors (the AOF
 * preamble), where the tokenizing is already done: the text is not split
 * again nor the norm computed (reading a row per word is most of a put's
 * cost in a large store), so ids or a norm that do not belong to the text
 * are the caller's mistake. Checks only the lengths, the word counts (1 ..
 * AKV_PHRASE_WORDS_MAX), that every id is in the vocabulary and that the
 * norm is one (not negative nor NaN): -EINVAL (err says which) or
 * -ENOMEM; else 0. */
int akv_store_put_words(struct akv_store *s, const char *key, size_t klen, const char *val,
                        size_t vlen, const uint32_t *kids, size_t nk, const uint32_t *vids,
                        size_t nv, const double *knorm, uint64_t expire, unsigned flags, char *err,
                        size_t errlen);

/* The clock that expiry times are compared with: *now_ms, in ms since the
 * epoch, read by the owner thread whenever it needs the time (and copied
 * into each snapshot). The owner advances it; it must outlive the store.
 * NULL (the default) is a clock stuck at 0, at which nothing expires. */
void akv_store_set_clock(struct akv_store *s, const uint64_t *now_ms);

/* Looks key up, expired or not. */
enum { AKV_STORE_ABSENT = 0, AKV_STORE_LIVE = 1, AKV_STORE_EXPIRED = 2 };
struct akv_store_found {
    const char *val; /* valid until the next write on the owner thread */
    size_t vlen;
    uint64_t expire; /* 0: none */
    int payload;     /* 1: the value is a payload (AKV_STORE_PAYLOAD) */
};
int akv_store_find(const struct akv_store *s, const char *key, size_t klen,
                   struct akv_store_found *f);

/* Gives key's live entry the expiry time expire (0: none). Returns 1 when it
 * did (or the time was already that), 0 when the key is absent or expired,
 * -ENOMEM. */
int akv_store_expire_set(struct akv_store *s, const char *key, size_t klen, uint64_t expire);

/* How many entries have an expiry time (expired ones not yet deleted
 * included). */
size_t akv_store_expires(const struct akv_store *s);

/* The entry whose expiry time is the earliest, if that time has come:
 * returns 1 and its key (valid until the next write), else 0. The caller
 * deletes it (the active expiry cycle). */
int akv_store_first_expired(const struct akv_store *s, const char **key, size_t *klen);
/* Calls fn for up to max entries whose expiry time has come (by the
 * store's clock), earliest first along each branch of the expiry heap,
 * without changing anything; stops early when fn returns nonzero. Returns
 * how many fn accepted. Owner thread. */
size_t akv_store_due(const struct akv_store *s, size_t max,
                     int (*fn)(void *arg, const char *key, size_t klen, uint64_t expire),
                     void *arg);

/* Moves up to n buckets of a key table that is doubling (writes move a
 * few each; the server's cron calls this so that a store that stops being
 * written finishes too, as Redis's cron does). Returns 1 while a doubling
 * is still under way, else 0. Owner thread. */
int akv_store_rehash(struct akv_store *s, size_t n);

/* Looks key up. Returns 1 and points *val and *vlen at the stored value (valid
 * until the next write on the owner thread), or 0 when absent or expired. */
int akv_store_get(const struct akv_store *s, const char *key, size_t klen, const char **val,
                  size_t *vlen);

/* Removes key, expired or not. Returns 1 if it was present, 0 if not. */
int akv_store_del(struct akv_store *s, const char *key, size_t klen);

/* Removes every entry. Returns how many there were. */
size_t akv_store_flush(struct akv_store *s);

/* Number of entries, including expired ones not yet deleted. */
size_t akv_store_count(const struct akv_store *s);

/* Bytes the store has allocated (entries, text, word lists, index), with an
 * estimate of the allocator's overhead on each entry's text. The mapped
 * vocabulary is not counted. */
size_t akv_store_memory(const struct akv_store *s);

/* The part of akv_store_memory that holds entries: all of it except the
 * rows of slots free for reuse. Rows are allocated for 4096 entries at a
 * time and kept after DEL and FLUSHALL until the store is empty and unread,
 * so akv_store_memory falls late; this falls once removed entries are
 * reclaimed (at once when no snapshot can still see them). What maxmemory is
 * compared with. */
size_t akv_store_memory_used(const struct akv_store *s);

/* Iterates live entries for KEYS/SCAN: starting at cursor (0 to begin),
 * calls fn for about count entries (whole hash buckets at a time) and
 * returns the next cursor, 0 when the iteration is complete. As with Redis's
 * SCAN, a key present for the whole iteration is reported at least once,
 * even across table growth, and may be reported twice. If fn returns nonzero
 * the iteration is abandoned and 0 is returned. Expired entries are
 * skipped. Owner thread only. */
uint64_t akv_store_iter(const struct akv_store *s, uint64_t cursor, size_t count,
                        int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                                  size_t vlen),
                        void *arg);

/* Snapshots (owner thread). */
void akv_store_snap_take(struct akv_store *s, struct akv_store_snap *snap);
void akv_store_snap_release(struct akv_store *s, const struct akv_store_snap *snap);
/* Whether any snapshot of s is live (then s must not be destroyed). */
int akv_store_has_readers(const struct akv_store *s);

/* Reader side (any thread holding a live snapshot). */
uint32_t akv_store_dim(const struct akv_store *s);
/* A number no other store of this process has had (for caches keyed by a
 * store and its version). Any thread. */
uint64_t akv_store_id(const struct akv_store *s);
/* An upper bound on the norm of every value set since the store was
 * created, removed ones included (the largest norm of their words' rows,
 * from the vocabulary's stored norms, rounded up), so at least the norm of
 * every value a snapshot can see. Any thread. */
double akv_store_value_norm_max(const struct akv_store *s);
const struct akv_vocab *akv_store_vocab(const struct akv_store *s);

/* How an entry's key or value refers to its words: their number and, when
 * there are at most AKV_STORE_WORDS_INLINE of them, all their vocabulary ids
 * in order, the unused places holding AKV_STORE_NO_WORD (above every id, so
 * that a reader can handle one, two or three words without a branch);
 * otherwise the first ones, and akv_store_entry_words gives them all.
 * The text's vector is the mean of those words' rows. */
#define AKV_STORE_WORDS_INLINE 3
#define AKV_STORE_NO_WORD UINT32_MAX
struct akv_store_words {
    uint32_t n; /* 1 .. AKV_PHRASE_WORDS_MAX; 0 for a payload value (no words) */
    uint32_t id[AKV_STORE_WORDS_INLINE];
};

/* n consecutive slots, first_slot .. first_slot + n - 1, as akv_store_scan
 * hands them over. Only rows with visible[i] == 1 belong to the snapshot,
 * and only those rows may be read: the others may be being rewritten by the
 * owner at this very moment. */
struct akv_store_block {
    size_t n;
    size_t first_slot;
    const uint8_t *visible;
    size_t nvisible;                    /* how many of visible[] are 1 (at least one) */
    const struct akv_store_words *keys; /* n entries */
    const struct akv_store_words *vals; /* n entries */
    const double *knorms;               /* the L2 norm of each key's vector (computed in double) */
    /* Each row's expiry time in ms (0: none), read with relaxed loads; a
     * visible row's never changes (EXPIRE writes a new version). */
    const _Atomic uint64_t *expire;
};

/* Calls fn once per block of consecutive slots below snap->nslots that holds
 * a row visible in snap (at most 4096 rows a block; the arrays stay valid
 * while snap is live). Returns what fn returned if nonzero (stopping there),
 * else 0. */
typedef int (*akv_store_block_fn)(void *arg, const struct akv_store_block *b);
int akv_store_scan(const struct akv_store *s, const struct akv_store_snap *snap,
                   akv_store_block_fn fn, void *arg);

enum akv_store_part { AKV_STORE_KEY, AKV_STORE_VALUE };

/* All the word ids of the key or the value of a slot visible in snap, in
 * order; *n gets their number. The ids stay valid while snap is live. */
const uint32_t *akv_store_entry_words(const struct akv_store *s, const struct akv_store_snap *snap,
                                      size_t slot, enum akv_store_part part, size_t *n);

/* ORs into mask (bit u of mask[u / 64] for vocabulary word u; room for
 * (vocabulary count + 63) / 64 words) the words used by the key of every
 * entry visible in snap, and possibly other words of keys written or removed
 * while snap is live. */
void akv_store_key_words(const struct akv_store *s, const struct akv_store_snap *snap,
                         uint64_t *mask);

/* The same for the words of every visible value (payloads have none). */
void akv_store_value_words(const struct akv_store *s, const struct akv_store_snap *snap,
                           uint64_t *mask);

/* The key and value text of a slot visible in snap. */
void akv_store_entry_text(const struct akv_store *s, const struct akv_store_snap *snap, size_t slot,
                          const char **key, size_t *klen, const char **val, size_t *vlen);

/* 1 when the value of a slot visible in snap is a payload (its word list
 * is empty: akv_store_block's vals[i].n == 0), else 0. */
int akv_store_entry_payload(const struct akv_store *s, const struct akv_store_snap *snap,
                            size_t slot);

/* A 128-bit hash of the value bytes of a slot visible in snap, seeded per
 * store: equal bytes have equal hashes; different bytes collide with
 * probability 2^-128 a pair, which FGET (grouping values by it) treats as
 * never. */
struct akv_store_vhash {
    uint64_t h[2];
};
struct akv_store_vhash akv_store_entry_vhash(const struct akv_store *s,
                                             const struct akv_store_snap *snap, size_t slot);

/* The expiry time of a slot visible in snap (0: none). */
uint64_t akv_store_entry_expire(const struct akv_store *s, const struct akv_store_snap *snap,
                                size_t slot);

/* ---- inspection (owner thread) ------------------------------------------ */

/* The bytes the entry under key costs: its row of the slot arrays, its text
 * allocation (overhead included, as akv_store_memory counts it) and its
 * share of the key index. 0 when the key is absent. For MEMORY USAGE. */
size_t akv_store_entry_memory(const struct akv_store *s, const char *key, size_t klen);

/* A live key chosen at random from seed (any 64 bits; the caller draws
 * them): 1 with *key, *klen pointing at its text (valid until the next
 * write), or 0 when the store is empty. Probes random buckets (O(1)
 * expected: the table grows at one key per bucket), then, should a store
 * that was once much larger be nearly empty now, walks the buckets from a
 * random one: at worst one pass over 4 bytes per bucket of the largest
 * table the store has had. For RANDOMKEY. */
int akv_store_random_key(const struct akv_store *s, uint64_t seed, const char **key, size_t *klen);

#endif
