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

/* The temperature of options o's attention mode (dot: 1 unless set). */
#define REF_TAU(o) ((o).attn == AKV_ATTN_DOT ? (o).temperature_dot : (o).temperature)

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

/* ref_rank over the words that may be answered: ids below limit (0: all)
 * and not in excl[0..nexcl) (any order). */
size_t ref_rank_filtered(const struct akv_vocab *voc, const double *r, enum akv_metric m,
                         unsigned k, uint32_t limit, const uint32_t *excl, size_t nexcl,
                         struct ref_hit *hits);

/* 3CosAdd's query vector (gensim's most_similar): each of the npos
 * positive then nneg negative terms (dim doubles each, in terms) divided by
 * its norm, their mean with weights +1 / -1, divided by its norm; written
 * to out rounded to float, as the daemon sends it to the ranking. */
void ref_3cosadd(const double *terms, unsigned npos, unsigned nneg, uint32_t dim, double *out);

/* 3CosMul (gensim's most_similar_cosmul), exhaustively: each word's score
 * prod_pos (1 + cos) / 2 / (prod_neg (1 + cos) / 2 + 1e-6), largest first,
 * ties by id, over the words ref_rank_filtered would admit. */
size_t ref_cosmul(const struct akv_vocab *voc, const double *terms, unsigned npos, unsigned nneg,
                  unsigned k, uint32_t limit, const uint32_t *excl, size_t nexcl,
                  struct ref_hit *hits);

#endif
