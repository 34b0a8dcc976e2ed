/*
 * attn.h - the attention step of a query: softmax-weighted mean of the
 * stored values, weighted by how well each stored key matches the query.
 *
 * Threading: reads a store snapshot (see store.h); any thread holding one.
 */
#ifndef ATTNKV_ATTN_H
#define ATTNKV_ATTN_H

#include <stddef.h>

#include "attnkv/types.h"
#include "attnkv/store.h"

/* Computes r = sum_i softmax(s)_i v_i over the entries visible in snap, with
 * s_i = k_i . q (AKV_ATTN_DOT) or cos(k_i, q) / tau (AKV_ATTN_COSINE), in
 * double, one pass over the store. Payload entries (store.h) take part in
 * the softmax but not in r: r = sum over the embedded entries of w_i v_i /
 * sum over them of w_i (zero when there is none). r has dim doubles. The
 * nwhy_max entries with the largest weights go to why (largest first, ties
 * by key bytes; payload entries included and marked), their number to *nwhy.
 * Returns the number of entries attended to (0: r is zero), or -ENOMEM. */
long akv_attn_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  enum akv_attn_mode mode, double tau, double *r, struct akv_why *why,
                  size_t nwhy_max, size_t *nwhy);

/* An entry's attention score (before the softmax), for FGET. */
struct akv_attn_score {
    size_t slot;
    double score;
};

/* One query of akv_attn_run_many: the arguments of akv_attn_run, and
 * what it gives back. */
struct akv_attn_job {
    const float *q;
    enum akv_attn_mode mode;
    double tau;
    double *r;
    struct akv_why *why;
    size_t nwhy_max;
    /* Optional (NULL): room for scores_cap scores, which gets the score of
     * every visible entry (up to scores_cap; snap->nslots is always
     * enough), in no particular order; its weight is exp(score - shift) / z. */
    struct akv_attn_score *scores;
    size_t scores_cap;
    /* 1: r is not wanted (FGET): when no job of the call wants it, the
     * value rows are not read at all and r stays zero. */
    int no_blend;
    /* Results. */
    size_t nwhy;
    size_t blended; /* embedded entries attended (those r blends) */
    size_t nscores;
    double shift, z; /* the softmax over every entry: w = exp(s - shift) / z */
};

/* akv_attn_run for n queries on one snapshot, in a shared pass over the
 * store (each key and value row read once for up to 32 queries). Every job
 * gets the same bits akv_attn_run would give it alone, and the same bits
 * for the same content of the store, whatever its history (src/engine/attn.c). Returns the number
 * of entries attended to (the same for all), or -ENOMEM (then every r is zero and nwhy 0). */
long akv_attn_run_many(const struct akv_store *s, const struct akv_store_snap *snap,
                       struct akv_attn_job *jobs, size_t n);

/* akv_attn_run_many, its phases shared through par (NULL: alone); the same
 * bits either way. */
long akv_attn_run_many_par(const struct akv_store *s, const struct akv_store_snap *snap,
                           struct akv_attn_job *jobs, size_t n, const struct akv_par *par);

/* Bytes of attention scratch that every thread keeps together (per-thread
 * tables, kept between calls). Any thread. */
size_t akv_attn_scratch_bytes(void);

/* Frees the calling thread's attention scratch (see akv_query_scratch_release). */
void akv_attn_scratch_release(void);

/* The kernels (dot products and weighted row sums) come in builds for the
 * baseline instruction set ("portable"), AVX2 and AVX-512, which give the
 * same bits. The fastest this CPU runs is used, or the one the environment
 * variable AKV_ATTN_KERNEL names. akv_attn_set_kernel selects one by name
 * ("auto" for the automatic choice): 0, -EINVAL for an unknown name,
 * -ENOTSUP when this CPU or build lacks it. For start-up, tests and
 * benchmarks: call it while no query runs. */
int akv_attn_set_kernel(const char *name);
const char *akv_attn_kernel_name(void);

#endif
