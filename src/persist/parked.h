/*
 * parked.h - the entries of the append-only file that do not embed in the
 * current vocabulary (after a change of vectors), kept as text: not served,
 * counted in INFO, written into every rewrite so that a later vocabulary
 * that has the words serves them again. A chained hash table with a random
 * seed (see src/engine/store.c).
 *
 * Threading: one thread (the daemon's loop thread) at a time.
 */
#ifndef ATTNKV_PARKED_H
#define ATTNKV_PARKED_H

#include <stddef.h>
#include <stdint.h>

struct akv_parked_ent {
    struct akv_parked_ent *next;
    uint64_t hash;
    uint32_t db;
    uint64_t expire; /* ms since the epoch, 0: none */
    int payload;     /* 1: the value is a payload (only the key failed to embed) */
    size_t klen, vlen;
    char text[]; /* key, then value */
};

/* The table; all zeroes is an empty one. */
struct akv_parked {
    struct akv_parked_ent **b;
    size_t nb; /* power of two, or 0 */
    size_t n;
    uint64_t seed; /* of the hash, random (see src/engine/store.c), chosen when the table is made */
};

/* Adds key -> val in database db, replacing an entry of the same key there;
 * payload: the value is a payload (kept as one in rewrites).
 * Returns 0 or -ENOMEM. */
int akv_parked_put(struct akv_parked *t, uint32_t db, const char *key, size_t klen, const char *val,
                   size_t vlen, uint64_t expire, int payload);

/* Removes key's entry in db; returns 1 if there was one, else 0. */
int akv_parked_del(struct akv_parked *t, uint32_t db, const char *key, size_t klen);

/* Calls fn for every entry until it returns nonzero; returns that, or 0. */
int akv_parked_each(const struct akv_parked *t,
                    int (*fn)(void *arg, const struct akv_parked_ent *e), void *arg);

/* FLUSHDB and SWAPDB: drops db's entries; exchanges two databases'. Both
 * walk every entry. */
void akv_parked_clear_db(struct akv_parked *t, uint32_t db);
void akv_parked_swap_db(struct akv_parked *t, uint32_t a, uint32_t b);

/* Removes every entry (akv_parked_clear) and frees the table too (fini). */
void akv_parked_clear(struct akv_parked *t);
void akv_parked_fini(struct akv_parked *t);

#endif
