/*
 * nbcache.h - neighbor lists of vocabulary words, kept so that a QUERY
 * whose attention weight sits mostly on a few stored values can often be
 * answered exactly without scanning the vocabulary.
 *
 * Why this works (the proof is in src/engine/query.c, "Answering from neighbor
 * lists"): for the l2 and cosine metrics the ranking score of a word x is
 * linear in r, so for r = sum_i w_i v_i (w_i >= 0, summing to 1) it is the
 * same weighted sum of the scores x has against each stored value v_i. A
 * word outside the top-M list of every heavy value scores at most the
 * weighted sum of those lists' M-th scores plus the light values' largest
 * possible scores; when the k-th best word inside the lists beats that, the
 * lists hold the whole answer.
 *
 * A list depends only on the vocabulary (immutable while the daemon runs),
 * never on the store, so it never goes stale. Lists are computed by the
 * ordinary exact scan the first time a word is a heavy value and are kept
 * until the cache is destroyed; once max_lists are held, no more are added.
 *
 * Threading: every function may be called from any thread at once (one
 * mutex inside). A list, once returned by akv_nbcache_get, is immutable and
 * stays valid until akv_nbcache_destroy.
 */
#ifndef ATTNKV_NBCACHE_H
#define ATTNKV_NBCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/types.h"

/* Words per list. Longer lists answer more queries from the lists but cost
 * more to rescore each time (64 lists of 8 heavy values: up to 512 exact
 * scores, about a tenth of a scan's cost); measured on GloVe 6B 100d with
 * a 1,000-entry store, 64 answered a fifth of the queries. */
#define AKV_NBCACHE_M 64

/* The exact top AKV_NBCACHE_M words of one vocabulary word under a metric,
 * and the M-th best score in the linear form (src/engine/query.c): for l2
 * |v|^2 - d^2, for cosine |v| cos. */
struct akv_nblist {
    uint32_t word;
    enum akv_metric metric;
    double s_m;
    uint32_t ids[AKV_NBCACHE_M];
};

struct akv_nbcache;

/* Returns 0, -EINVAL (max_lists 0) or -ENOMEM. */
int akv_nbcache_create(struct akv_nbcache **out, size_t max_lists);
void akv_nbcache_destroy(struct akv_nbcache *c);

/* The list of word under metric, or NULL when it is not held. */
const struct akv_nblist *akv_nbcache_get(struct akv_nbcache *c, uint32_t word,
                                         enum akv_metric metric);

/* Adds a copy of l. Returns 0 (also when that list was held already),
 * -ENOSPC when the cache is full, or -ENOMEM. */
int akv_nbcache_put(struct akv_nbcache *c, const struct akv_nblist *l);

/* Lists held. */
size_t akv_nbcache_count(struct akv_nbcache *c);

/* Bytes the cache has allocated: its table and the lists held. */
size_t akv_nbcache_memory(struct akv_nbcache *c);

#endif
