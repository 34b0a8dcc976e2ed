/*
 * attn.h - the attention step of a query: softmax-weighted mean of the
 * stored values, weighted by how well each stored key matches the query.
 *
 * Threading: reads a store snapshot (see store.h); any thread holding one.
 */
#ifndef ATTNKV_ATTN_H
#define ATTNKV_ATTN_H

#include <stddef.h>

#include "attnkv/query.h"
#include "attnkv/store.h"

/* Computes r = sum_i softmax(s)_i v_i over the entries visible in snap, with
 * s_i = k_i . q (AKV_ATTN_DOT) or cos(k_i, q) / tau (AKV_ATTN_COSINE), in
 * double, one pass over the store. r has dim doubles. The nwhy_max entries
 * with the largest weights go to why (largest first, ties by slot), their
 * number to *nwhy. Returns the number of entries attended to (0: r is zero),
 * or -ENOMEM. */
long akv_attn_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  enum akv_attn_mode mode, double tau, double *r, struct akv_why *why,
                  size_t nwhy_max, size_t *nwhy);

#endif
