/*
 * types.h - the engine's vocabulary of small types: the attention and
 * ranking modes, a query's options and their defaults, a ranked word, and
 * the limits on each. A leaf: it includes no other attnkv header, so that
 * the configuration, the engine's internal headers and the daemon can share
 * these without pulling in the whole query API.
 *
 * The names and parsers are defined in src/engine/query.c; the arrays of
 * names are indexed by the enum value and end with NULL, which is the form
 * the configuration table takes.
 */
#ifndef ATTNKV_TYPES_H
#define ATTNKV_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define AKV_K_MAX 1000
#define AKV_EXPLAIN_MAX 1000
/* The cosine attention temperature's range. Scores are cos / tau, so below
 * the minimum the softmax is already a hard maximum (a gap of 0.01 in cosine
 * is a factor of e^100), and 1 / (|q| tau) stays far from overflow; above
 * the maximum the weights are uniform to double precision. */
#define AKV_TEMPERATURE_MIN 1e-4
#define AKV_TEMPERATURE_MAX 1e6
/* Most words one request may exclude from its answer (EXCLUDE and the input
 * words), and most terms of word arithmetic (POSITIVE and NEGATIVE). */
#define AKV_EXCLUDE_MAX 1024
#define AKV_TERMS_MAX 64

/* How a key is scored against the query: k.q, or cos(k, q) / temperature. */
enum akv_attn_mode { AKV_ATTN_DOT = 0, AKV_ATTN_COSINE };
/* How vocabulary words are ranked against r: distance (smallest first), or
 * cosine or dot similarity (largest first). */
enum akv_metric { AKV_METRIC_L2 = 0, AKV_METRIC_COSINE, AKV_METRIC_DOT };

struct akv_query_opts {
    unsigned k;              /* top words to return, 1..AKV_K_MAX (default 5) */
    enum akv_attn_mode attn; /* default AKV_ATTN_DOT */
    double temperature;      /* AKV_TEMPERATURE_MIN..MAX, for AKV_ATTN_COSINE (default 0.1) */
    enum akv_metric metric;  /* default AKV_METRIC_L2 */
    unsigned explain;        /* how many top-weight entries to report, 0..AKV_EXPLAIN_MAX */
    int skip_rank;           /* 1: attention only (EXPLAIN), no vocabulary ranking */
    int fget;                /* 1: FGET: the k stored values with the most weight, no ranking */
    double minweight;        /* FGET: values weighing less are left out (default 0) */
    /* Temperature of AKV_ATTN_DOT, AKV_TEMPERATURE_MIN..MAX: softmax(K.q / t).
     * Default 1, the original formulation (the scores are then not divided). */
    double temperature_dot;
    uint32_t restrict_n; /* rank only word ids below it (0: every word) */
    int use_maxdist;     /* 1: drop answers at an l2 distance above maxdist */
    double maxdist;
    int use_minscore; /* 1: drop answers whose reported score is below minscore */
    double minscore;
    int similarity; /* 1: report cos(word, r) as the score, whatever the metric */
};

/* The defaults, as an initializer: struct akv_query_opts o = AKV_QUERY_OPTS_DEFAULT; */
#define AKV_QUERY_OPTS_DEFAULT                                                                     \
    {                                                                                              \
        .k = 5, .attn = AKV_ATTN_DOT, .temperature = 0.1, .metric = AKV_METRIC_L2, .explain = 0,   \
        .skip_rank = 0, .fget = 0, .minweight = 0, .temperature_dot = 1.0                          \
    }

struct akv_hit {
    uint32_t id;  /* vocabulary word id */
    double score; /* distance (l2) or similarity (cosine, dot) */
};

/* An entry of EXPLAIN (or of FGET's answer): a store slot and its
 * attention weight. */
struct akv_why {
    size_t slot;   /* store slot; text via akv_store_entry_text(snap) */
    double weight; /* attention weight in [0, 1] (softmax over every entry) */
    double blend;  /* its share of the blend r: the weight renormalised over the
                      embedded entries; 0 for a payload */
    int payload;   /* 1: the value is a payload, not blended */
};

/* "dot", "cosine" and "l2", "cosine", "dot", indexed by the enums. */
extern const char *const akv_attn_mode_names[];
extern const char *const akv_metric_names[];

/* A mode's name ("unknown" out of range); the parsers take the names in any
 * case and return 0 or -EINVAL. */
const char *akv_attn_mode_name(enum akv_attn_mode m);
const char *akv_metric_name(enum akv_metric m);
int akv_attn_mode_parse(const char *s, size_t len, enum akv_attn_mode *out);
int akv_metric_parse(const char *s, size_t len, enum akv_metric *out);

/* Sharing a call's work with other threads: run(ctx, fn, arg, nhelpers)
 * calls fn(arg, 0) on the calling thread and offers fn(arg, h), h = 1 ..
 * nhelpers, to threads that have nothing else to do, and returns once every
 * call that started has returned (their writes visible to the caller).
 * Helpers may never come: fn(arg, 0) alone must be able to do all the
 * work. */
struct akv_par {
    void (*run)(void *ctx, void (*fn)(void *arg, unsigned h), void *arg, unsigned nhelpers);
    void *ctx;
    unsigned nhelpers;
};

#endif
