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
#include <stdlib.h>
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

int akv_query_run_many(struct akv_query_item *items, size_t n)
{
    const struct akv_vocab *voc = NULL;
    struct akv_rank_req *reqs = NULL;
    size_t *idx = NULL; /* idx[j]: the item of request j */
    struct akv_attn_job *jobs = NULL;
    size_t *grp = NULL; /* grp[g]: the item of job g */
    unsigned char *done = NULL;
    double *rs = NULL;
    size_t nreq = 0;
    uint32_t dim = 0;
    int rc = -ENOMEM;

    if (n == 0)
        return 0;
    voc = items[0].store ? akv_store_vocab(items[0].store) : items[0].vocab;
    dim = akv_vocab_dim(voc);
    reqs = malloc(n * sizeof *reqs);
    idx = malloc(n * sizeof *idx);
    rs = malloc(n * (size_t)dim * sizeof *rs);
    jobs = malloc(n * sizeof *jobs);
    grp = malloc(n * sizeof *grp);
    done = malloc(n);
    if (reqs == NULL || idx == NULL || rs == NULL || jobs == NULL || grp == NULL ||
        done == NULL) {
        for (size_t i = 0; i < n; i++)
            items[i].rc = -ENOMEM;
        goto out;
    }

    /* The attention step: the items on the same snapshot of the same
     * store share passes over it (akv_attn_run_many). */
    for (size_t i = 0; i < n; i++) {
        struct akv_query_item *it = &items[i];
        const struct akv_vocab *iv = it->store ? akv_store_vocab(it->store) : it->vocab;

        it->res->nhits = 0;
        it->res->nwhy = 0;
        it->res->attended = 0;
        it->rc = 0;
        /* An item on another vocabulary than the first (one scan serves
         * one vocabulary) or with bad options fails alone. */
        if (iv != voc || (it->store != NULL && !opts_valid(&it->opts)))
            it->rc = -EINVAL;
        done[i] = it->rc != 0 || it->store == NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t nj = 0;
        long attended;
        if (done[i])
            continue;
        for (size_t j = i; j < n; j++) {
            const struct akv_query_item *a = &items[i], *b = &items[j];
            struct akv_query_result *res = b->res;
            if (done[j] || b->store != a->store || b->snap->version != a->snap->version ||
                b->snap->nslots != a->snap->nslots)
                continue;
            done[j] = 1;
            grp[nj] = j;
            jobs[nj++] = (struct akv_attn_job){b->q,   b->opts.attn, b->opts.temperature,
                                               rs + j * (size_t)dim, res->why, b->opts.explain,
                                               0};
        }
        attended = akv_attn_run_many(items[i].store, items[i].snap, jobs, nj);
        for (size_t g = 0; g < nj; g++) {
            struct akv_query_item *it = &items[grp[g]];
            if (attended < 0) {
                it->rc = (int)attended;
                continue;
            }
            it->res->nwhy = jobs[g].nwhy;
            it->res->attended = (size_t)attended;
        }
    }

    /* The items that need the vocabulary ranked become requests of one
     * shared scan. */
    for (size_t i = 0; i < n; i++) {
        struct akv_query_item *it = &items[i];
        const struct akv_query_opts *o = &it->opts;
        double *r = rs + i * (size_t)dim;

        if (it->rc != 0)
            continue;
        if (it->store != NULL) {
            if (it->res->attended == 0 || o->skip_rank)
                continue;
        } else {
            if (o->k < 1 || o->k > AKV_K_MAX ||
                (o->metric != AKV_METRIC_L2 && o->metric != AKV_METRIC_COSINE &&
                 o->metric != AKV_METRIC_DOT)) {
                it->rc = -EINVAL;
                continue;
            }
            for (uint32_t d = 0; d < dim; d++)
                r[d] = it->q[d];
        }
        idx[nreq] = i;
        reqs[nreq++] = (struct akv_rank_req){r, o->metric, o->k, it->res->hits, 0};
    }

    if (nreq > 0 && akv_rank_multi(voc, reqs, nreq) != nreq) {
        for (size_t j = 0; j < nreq; j++)
            items[idx[j]].rc = -ENOMEM;
        nreq = 0;
    }
    for (size_t j = 0; j < nreq; j++)
        items[idx[j]].res->nhits = reqs[j].nhits;
    rc = 0;
out:
    free(reqs);
    free(idx);
    free(rs);
    free(jobs);
    free(grp);
    free(done);
    return rc;
}

int akv_query_run(const struct akv_store *s, const struct akv_store_snap *snap, const float *q,
                  const struct akv_query_opts *o, struct akv_query_result *res)
{
    struct akv_query_item it = {.store = s, .snap = snap, .q = q, .opts = *o, .res = res};

    akv_query_run_many(&it, 1);
    return it.rc;
}

int akv_query_neighbors(const struct akv_vocab *voc, const float *v, enum akv_metric m,
                        unsigned k, struct akv_query_result *res)
{
    struct akv_query_item it = {.vocab = voc, .q = v, .res = res};

    akv_query_opts_default(&it.opts);
    it.opts.metric = m;
    it.opts.k = k;
    akv_query_run_many(&it, 1);
    return it.rc;
}
