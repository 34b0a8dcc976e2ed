/*
 * query.c - QUERY, EXPLAIN and NEIGHBORS: option handling and the two steps
 * (attention in attn.c, ranking in rank.c) put together.
 *
 * Threading: akv_query_run and akv_query_neighbors run on worker threads; they
 * read a store snapshot and the immutable vocabulary and write only the
 * caller's result.
 */
#include "attnkv/query.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "attn.h"
#include "rank.h"

void akv_query_opts_default(struct akv_query_opts *o)
{
    memset(o, 0, sizeof *o);
    o->k = 5;
    o->attn = AKV_ATTN_DOT;
    o->temperature = 0.1;
    o->metric = AKV_METRIC_L2;
    o->explain = 0;
    o->skip_rank = 0;
}

const char *akv_attn_name(enum akv_attn_mode m)
{
    return m == AKV_ATTN_COSINE ? "cosine" : "dot";
}

const char *akv_metric_name(enum akv_metric m)
{
    switch (m) {
    case AKV_METRIC_COSINE:
        return "cosine";
    case AKV_METRIC_DOT:
        return "dot";
    case AKV_METRIC_L2:
    default:
        return "l2";
    }
}

static int word_is(const char *s, size_t len, const char *w)
{
    return strlen(w) == len && strncasecmp(s, w, len) == 0;
}

int akv_attn_parse(const char *s, size_t len, enum akv_attn_mode *out)
{
    if (word_is(s, len, "dot"))
        *out = AKV_ATTN_DOT;
    else if (word_is(s, len, "cosine"))
        *out = AKV_ATTN_COSINE;
    else
        return -EINVAL;
    return 0;
}

int akv_metric_parse(const char *s, size_t len, enum akv_metric *out)
{
    if (word_is(s, len, "l2"))
        *out = AKV_METRIC_L2;
    else if (word_is(s, len, "cosine"))
        *out = AKV_METRIC_COSINE;
    else if (word_is(s, len, "dot"))
        *out = AKV_METRIC_DOT;
    else
        return -EINVAL;
    return 0;
}

static int opts_valid(const struct akv_query_opts *o)
{
    if (!o->skip_rank && (o->k < 1 || o->k > AKV_K_MAX))
        return 0;
    if (o->explain > AKV_EXPLAIN_MAX)
        return 0;
    if (o->attn != AKV_ATTN_DOT && o->attn != AKV_ATTN_COSINE)
        return 0;
    if (o->attn == AKV_ATTN_COSINE && !(isfinite(o->temperature) && o->temperature > 0))
        return 0;
    return o->metric == AKV_METRIC_L2 || o->metric == AKV_METRIC_COSINE ||
           o->metric == AKV_METRIC_DOT;
}

int akv_query_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  const struct akv_query_opts *o, struct akv_query_result *res)
{
    double r[AKV_DIM_MAX];
    long attended;

    res->nhits = 0;
    res->nwhy = 0;
    res->attended = 0;
    if (!opts_valid(o))
        return -EINVAL;
    attended = akv_attn_run(s, snap, q, o->attn, o->temperature, r, res->why, o->explain,
                            &res->nwhy);
    if (attended < 0)
        return (int)attended;
    res->attended = (size_t)attended;
    if (attended == 0 || o->skip_rank)
        return 0;
    res->nhits = akv_rank_topk(akv_store_vocab(s), r, o->metric, o->k, res->hits);
    return 0;
}

int akv_query_neighbors(const struct akv_vocab *voc, const float *v, enum akv_metric m,
                        unsigned k, struct akv_query_result *res)
{
    uint32_t dim = akv_vocab_dim(voc);
    double r[AKV_DIM_MAX];

    res->nhits = 0;
    res->nwhy = 0;
    res->attended = 0;
    if (k < 1 || k > AKV_K_MAX ||
        (m != AKV_METRIC_L2 && m != AKV_METRIC_COSINE && m != AKV_METRIC_DOT))
        return -EINVAL;
    for (uint32_t d = 0; d < dim; d++)
        r[d] = v[d];
    res->nhits = akv_rank_topk(voc, r, m, k, res->hits);
    return 0;
}
