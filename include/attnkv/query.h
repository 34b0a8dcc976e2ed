/*
 * query.h - the engine's front door: QUERY (attention over the store, then
 * nearest vocabulary words), EXPLAIN (the entries with the largest attention
 * weights) and NEIGHBORS (nearest words to a vector).
 *
 *   s_i = k_i . q            (AKV_ATTN_DOT, the original formulation)
 *   s_i = cos(k_i, q) / tau  (AKV_ATTN_COSINE)
 *   a   = softmax(s)         (max subtracted, accumulated in double)
 *   r   = sum_i a_i v_i
 * then the whole vocabulary is ranked by nearness to r (AKV_METRIC_L2:
 * Euclidean distance, smallest first; COSINE and DOT: largest first), ties
 * broken by vocabulary order. An empty store (or snapshot) gives no hits.
 *
 * Payload values (store.h) take part in the softmax through their keys but
 * not in r: r = sum over the embedded entries of a_i v_i / sum over them of
 * a_i. A snapshot of payloads only gives no hits, as an empty one.
 *
 * FGET (opts.fget): the stored values, each weighing the sum of the weights
 * a_i of the entries holding those bytes, heaviest first (ties by value
 * bytes), the k heaviest of at least opts.minweight in res->why (slot: the
 * first entry holding the value; weight: the sum); nothing is ranked.
 *
 * Threading: akv_query_run and akv_query_neighbors may run on any thread; the
 * store snapshot they read must stay live (see store.h) until the caller is
 * done with the result, since explain entries refer to store slots.
 */
#ifndef ATTNKV_QUERY_H
#define ATTNKV_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/store.h"
#include "attnkv/types.h"
#include "attnkv/vocab.h"

struct akv_nbcache;

struct akv_query_result {
    size_t nhits;
    struct akv_hit hits[AKV_K_MAX];
    size_t nwhy;
    struct akv_why why[AKV_EXPLAIN_MAX];
    size_t attended; /* entries the attention step saw */
    size_t blended;  /* of those, the embedded ones that r blends (payloads are not) */
    int from_lists;  /* 1: answered from neighbor lists, without a scan */
};

/* Sets *o to AKV_QUERY_OPTS_DEFAULT (attnkv/types.h). */
void akv_query_opts_default(struct akv_query_opts *o);

/* Runs a query with vector q (dim floats) over the snapshot. res is written
 * (it is large; allocate it, don't put it on a small stack).
 * Returns 0, -EINVAL for bad options, or -ENOMEM. */
int akv_query_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  const struct akv_query_opts *o, struct akv_query_result *res);

/* Ranks the vocabulary by nearness to v (dim floats) with metric m; top k
 * (1..AKV_K_MAX) into res->hits. Returns 0 or -EINVAL. */
int akv_query_neighbors(const struct akv_vocab *voc, const float *v, enum akv_metric m, unsigned k,
                        struct akv_query_result *res);

/* One QUERY, EXPLAIN (store set) or NEIGHBORS (store NULL, vocab set) of a
 * batch. rc is written: 0, -EINVAL or -ENOMEM, as the single calls return. */
struct akv_query_item {
    const struct akv_store *store; /* QUERY/EXPLAIN: the store read through snap */
    const struct akv_store_snap *snap;
    const struct akv_vocab *vocab; /* NEIGHBORS: the vocabulary */
    const float *q;                /* the query (or word) vector, dim floats */
    struct akv_query_opts opts;    /* k, attention, temperature, metric, explain */
    struct akv_query_result *res;
    /* Optional: neighbor lists that may answer a QUERY without a scan
     * (attnkv/nbcache.h); lists the batch computes are added to it. */
    struct akv_nbcache *nbcache;
    /* Optional: sorted word ids that may not be answered (EXCLUDE). */
    const uint32_t *exclude;
    size_t nexclude;
    /* NEIGHBORS by 3CosMul (store NULL, cosmul 1): terms holds npos
     * positive then nneg negative vectors, dim floats each (q is unused);
     * opts.metric is ignored and the score is the 3CosMul value
     * (engine/rank.h, akv_cosmul_req). */
    int cosmul;
    const float *terms;
    unsigned npos, nneg;
    int rc;
};

/* Runs n queries with one shared pass over the vocabulary for all those that
 * rank it: each item gets exactly what akv_query_run or akv_query_neighbors
 * would give it alone, but the 137 MB matrix is read once for the batch
 * instead of once per query. All items must use one vocabulary (an item of
 * another gets -EINVAL). Returns 0, or -ENOMEM when nothing could run (each
 * rc then says so). Any thread; the snapshots must stay live meanwhile. */
int akv_query_run_many(struct akv_query_item *items, size_t n);

/* akv_query_run_many in three steps, so that several threads can share the
 * pass over the vocabulary: begin runs the attention of every item and
 * prepares the scan for up to nparts threads; work scans what no other
 * call of work has claimed yet (each of up to nparts threads calls it at
 * most once, with its own part number 0..nparts-1, and any of them may run
 * at the same time); end, on begin's thread once every work call has
 * returned and its writes are visible there (a mutex hand-off), writes the
 * results and frees the batch. One call of work does the whole scan when
 * nobody else joins. begin returns 0, or -ENOMEM when nothing could run
 * (each rc says so; *out may then be NULL, which work and end accept). */
struct akv_query_batch;
/* akv_query_batch_begin, the attention passes shared through par as well
 * (NULL: alone; the same bits either way). */
int akv_query_batch_begin_par(struct akv_query_item *items, size_t n, unsigned nparts,
                              const struct akv_par *par, struct akv_query_batch **out);
int akv_query_batch_begin(struct akv_query_item *items, size_t n, unsigned nparts,
                          struct akv_query_batch **out);
void akv_query_batch_work(struct akv_query_batch *b, unsigned part);
void akv_query_batch_end(struct akv_query_batch *b);

/* Bytes the worker threads keep between queries (FGET's score, group and
 * table buffers, up to 64 MiB a thread, and the attention's tables; see
 * src/engine/query.c and attn.c): for INFO and used_memory. Any thread. */
size_t akv_query_scratch_bytes(void);

/* Frees what the calling thread keeps between queries (the attention's
 * tables and plan, FGET's buffers): for a worker that has gone idle, so that
 * a store flushed or shrunk gives its memory back. The next query on the
 * thread allocates again. */
void akv_query_scratch_release(void);

#endif
