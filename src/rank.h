/*
 * rank.h - nearest vocabulary words to a vector: the ranking step of every
 * QUERY and NEIGHBORS. Kept behind this one function so that faster kernels
 * (batched, SIMD, pre-filtered) can replace it without touching callers.
 *
 * Threading: reads only the immutable vocabulary; any thread.
 */
#ifndef ATTNKV_RANK_H
#define ATTNKV_RANK_H

#include <stddef.h>

#include "attnkv/query.h"
#include "attnkv/vocab.h"

/* Ranks every vocabulary word by nearness to r (dim doubles) under metric m
 * and writes the best min(k, count) to hits, best first: l2 by increasing
 * Euclidean distance, cosine and dot by decreasing similarity, ties by
 * increasing word id. Scores are computed in double from the float vectors.
 * Returns the number of hits (0 for k == 0). */
size_t akv_rank_topk(const struct akv_vocab *v, const double *r, enum akv_metric m, unsigned k,
                     struct akv_hit *hits);

/* One request of a shared scan: r (dim doubles), metric, k; the result goes
 * to hits (room for min(k, AKV_K_MAX)) and nhits. */
struct akv_rank_req {
    const double *r;
    enum akv_metric m;
    unsigned k;
    struct akv_hit *hits;
    size_t nhits;
};

/* Ranks the vocabulary for n requests in one pass over the matrix (blocks
 * of rows stay in cache while every request scores them), each with exactly
 * the result akv_rank_topk would give it alone. Returns how many requests
 * were answered: n, or 0 (nothing written) when memory ran out. */
size_t akv_rank_multi(const struct akv_vocab *v, struct akv_rank_req *reqs, size_t n);

#endif
