/*
 * refimpl.h - an independent, deliberately plain double-precision reference
 * for QUERY and NEIGHBORS, written from the definition (two passes, full
 * sort) and sharing no code with the engine, to check the engine against.
 */
#ifndef ATTNKV_REFIMPL_H
#define ATTNKV_REFIMPL_H

#include <stddef.h>
#include <stdint.h>

#include "attnkv/query.h"
#include "attnkv/vocab.h"

struct ref_entry {
    double *k;       /* dim doubles */
    double *v;       /* dim doubles; unused for a payload */
    int payload;     /* 1: v is not blended (SET ... PAYLOAD) */
    const char *val; /* the value bytes, for ref_fget */
    size_t vlen;
};

/* A value of ref_fget's answer: the entry of its first holder, and the
 * summed weight. */
struct ref_value {
    size_t entry;
    double weight;
};

struct ref_hit {
    uint32_t id;
    double score;
};

/* Mean of the words of text (space-separated vocabulary words) into out.
 * Returns 0, or -1 if a word is unknown. */
int ref_embed(const struct akv_vocab *voc, const char *text, double *out);

/* The attention step alone: weights (n doubles, when not NULL) = the
 * softmax over every entry; r (dim doubles) = the sum of the embedded
 * (non-payload) values weighted by a softmax over the embedded entries
 * alone (the same weights renormalised). Returns 0 when there is no
 * embedded entry (r is then zero), else 1. */
int ref_attend(const struct akv_vocab *voc, const struct ref_entry *e, size_t n, const double *q,
               enum akv_attn_mode mode, double tau, double *r, double *weights);

/* Attention over entries then an exhaustive ranking; writes min(k, count)
 * hits into hits (caller provides count slots) and the full weight vector
 * into weights (n doubles) when not NULL. Returns the number of hits. */
size_t ref_query(const struct akv_vocab *voc, const struct ref_entry *e, size_t n, const double *q,
                 enum akv_attn_mode mode, double tau, enum akv_metric m, unsigned k,
                 struct ref_hit *hits, double *weights);

/* FGET: the weights summed per distinct value bytes, heaviest first (ties
 * by value bytes, memcmp order, shorter first), those of at least
 * minweight, at most k into out. Returns how many. */
size_t ref_fget(const struct akv_vocab *voc, const struct ref_entry *e, size_t n, const double *q,
                enum akv_attn_mode mode, double tau, unsigned k, double minweight,
                struct ref_value *out);

/* Exhaustive ranking of the vocabulary against r. */
size_t ref_rank(const struct akv_vocab *voc, const double *r, enum akv_metric m, unsigned k,
                struct ref_hit *hits);

#endif
