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

/* Adds key -> val, replacing an entry of the same key. Returns 0 or -ENOMEM. */
int akv_parked_put(struct akv_parked *t, const char *key, size_t klen, const char *val,
                   size_t vlen);

/* Removes key's entry; returns 1 if there was one, else 0. */
int akv_parked_del(struct akv_parked *t, const char *key, size_t klen);

/* Calls fn for every entry until it returns nonzero; returns that, or 0. */
int akv_parked_each(const struct akv_parked *t,
                    int (*fn)(void *arg, const char *key, size_t klen, const char *val,
                              size_t vlen),
                    void *arg);

/* Removes every entry (akv_parked_clear) and frees the table too (fini). */
void akv_parked_clear(struct akv_parked *t);
void akv_parked_fini(struct akv_parked *t);

#endif
