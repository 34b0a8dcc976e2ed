/*
 * store.h - the key/value store: exact key -> value strings, each entry with
 * the embedded vectors of its key and value.
 *
 * Threading (see the Design comment in src/store.c):
 *   - One thread, the owner (the daemon's loop thread), calls every function
 *     here except akv_store_scan, akv_store_dim and akv_store_entry_text, and never blocks on a
 *     reader.
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
    size_t nslots; /* slots below this index may be visible */
};

/* Creates an empty store for vectors of vocabulary voc (borrowed: it must
 * outlive the store). Returns 0 or -ENOMEM. */
int akv_store_create(struct akv_store **out, const struct akv_vocab *voc);
/* Frees the store. No snapshot may be live. NULL is a no-op. */
void akv_store_destroy(struct akv_store *s);

/* Sets key to value (both byte strings, copied), embedding both with the
 * store's vocabulary (see embed.h). Overwrites an existing key.
 * Returns 0; -ENOENT when a word does not embed (msg says which and, if it
 * can, suggests a spelling); -EINVAL for empty or overlong text; -ENOMEM. */
int akv_store_set(struct akv_store *s, const char *key, size_t klen, const char *val,
                  size_t vlen, char *err, size_t errlen);

/* Sets key to value with vectors already computed (dim floats each); used by
 * replay paths that embedded the text already. Same returns as set. */
int akv_store_set_vec(struct akv_store *s, const char *key, size_t klen, const char *val,
                      size_t vlen, const float *kvec, const float *vvec);

/* Looks key up. Returns 1 and points *val and *vlen at the stored value (valid
 * until the next write on the owner thread), or 0 when absent. */
int akv_store_get(const struct akv_store *s, const char *key, size_t klen, const char **val,
                  size_t *vlen);

/* Removes key. Returns 1 if it was present, 0 if not. */
int akv_store_del(struct akv_store *s, const char *key, size_t klen);

/* Removes every entry. Returns how many there were. */
size_t akv_store_flush(struct akv_store *s);

/* Number of live entries. */
size_t akv_store_count(const struct akv_store *s);

/* Bytes the store has allocated (entries, text, vectors, index). */
size_t akv_store_memory(const struct akv_store *s);

/* The part of akv_store_memory that holds entries: all of it except the
 * vector rows of slots free for reuse. Vector memory is allocated for 4096
 * entries at a time and kept after DEL and FLUSHALL, so akv_store_memory
 * never falls; this falls once removed entries are reclaimed (at once when
 * no snapshot can still see them). What maxmemory is compared with. */
size_t akv_store_memory_used(const struct akv_store *s);

/* Iterates live entries for KEYS/SCAN: starting at cursor (0 to begin),
 * calls fn for about count entries (whole hash buckets at a time) and
 * returns the next cursor, 0 when the iteration is complete. As with Redis's
 * SCAN, a key present for the whole iteration is reported at least once,
 * even across table growth, and may be reported twice. If fn returns nonzero
 * the iteration is abandoned and 0 is returned. Owner thread only. */
uint64_t akv_store_iter(const struct akv_store *s, uint64_t cursor, size_t count,
                        int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                                  size_t vlen),
                        void *arg);

/* Snapshots (owner thread). */
void akv_store_snap_take(struct akv_store *s, struct akv_store_snap *snap);
void akv_store_snap_release(struct akv_store *s, const struct akv_store_snap *snap);

/* Reader side (any thread holding a live snapshot). */
uint32_t akv_store_dim(const struct akv_store *s);
const struct akv_vocab *akv_store_vocab(const struct akv_store *s);

/* Calls fn once per block of consecutive slots below snap->nslots: n rows
 * of key vectors (n x dim, row-major), value vectors and key norms, slot ids
 * first_slot .. first_slot + n - 1. Only rows with visible[i] == 1 belong to
 * the snapshot, and only those rows may be read: the others may be being
 * rewritten by the owner at this very moment.
 * Returns what fn returned if nonzero (stopping there), else 0. */
typedef int (*akv_store_block_fn)(void *arg, size_t n, const float *keys, const float *vals,
                                  const float *knorms, const uint8_t *visible,
                                  size_t first_slot);
int akv_store_scan(const struct akv_store *s, const struct akv_store_snap *snap,
                   akv_store_block_fn fn, void *arg);

/* The key and value text of a slot visible in snap. */
void akv_store_entry_text(const struct akv_store *s, const struct akv_store_snap *snap,
                          size_t slot, const char **key, size_t *klen, const char **val,
                          size_t *vlen);

#endif
