/*
 * cmd-query.c - QUERY, EXPLAIN, FGET, NEIGHBORS and ANALOGY: options and
 * embedding on the loop thread, attention and ranking on the pool. The
 * input may be text or a vector (VECTOR FP32|VALUES), combined with
 * POSITIVE and NEGATIVE terms (build_query_vector); a COSMUL job carries
 * its terms, a filtered one its sorted excluded ids. FGET is the attention
 * step alone, its weights summed per stored value (attnkv/query.h); it
 * rides in the same batches as the others.
 *
 * A handler does the cheap part on the loop thread and leaves a job in
 * ctx->job:
 *   - parse the options and embed the text (hash lookups only), so a bad
 *     option or an unknown word is answered at once;
 *   - take a store snapshot (QUERY, EXPLAIN) right there, after every write
 *     the loop thread has applied so far, which is what makes a QUERY see
 *     every SET acknowledged before it was dispatched;
 *   - the worker (query_batch) reads only the job: its vector and options,
 *     the immutable vocabulary and the snapshot, and writes only the job's
 *     result. It gets the jobs queued together as one batch (see pool.c)
 *     and ranks them with one pass over the vocabulary
 *     (akv_query_batch_*), which gives each exactly the answer it would get
 *     alone, so batching never changes a reply; idle workers join that
 *     pass;
 *   - FGET's and EXPLAIN's replies, which carry stored values (payloads
 *     of up to 1 MiB, up to 1,000 of them), are built by the worker too, from the snapshot, in
 *     the protocol the connection had at dispatch, and refused whole when
 *     over the output limit (values_over_limit);
 *   - query_finish, back on the loop thread, hands those over, or formats
 *     QUERY's and NEIGHBORS' words in the protocol the connection had at
 *     dispatch (RESP3 after HELLO 3: scores as doubles), releases the
 *     snapshot and frees the job. The snapshot is released
 *     even when the client went away, so the store can reclaim what it
 *     kept for it.
 */
#include "server/cmd-impl.h"

#include <float.h>

/* ------------------------------------------------------------------------
 * QUERY, EXPLAIN, FGET, NEIGHBORS and ANALOGY: options here, attention and
 * ranking on the pool.
 */

enum job_kind { JOB_QUERY, JOB_EXPLAIN, JOB_NEIGHBORS, JOB_FGET };

struct query_job {
    struct akv_cmd_job base;
    enum job_kind kind;
    /* Read by the worker. */
    struct akv_store *store;
    const struct akv_vocab *vocab;
    struct akv_nbcache *nbcache;
    struct akv_store_snap snap;
    struct akv_query_opts opts;
    /* Written by the worker. */
    int rc;
    size_t batch_n; /* the first job of a batch: the batch's size; others 0 */
    struct akv_query_result res;
    struct akv_buf reply; /* FGET, EXPLAIN: the whole reply, built by the worker */
    int refused;          /* 1: that reply is the error of one over the output limit */
    /* Loop thread only, but for kind, withscores, withblend, skipped, resp
     * and out_limit, which the worker reads too (reply_on_worker; set
     * before dispatch). */
    struct akv_cmd_env *env;
    int has_snap;
    int withscores;
    struct akv_cmd_skipped skipped; /* UNKNOWN skip: the words left out */
    int withblend;                  /* EXPLAIN WITHBLEND */
    int resp;                       /* the connection's protocol when the job was dispatched */
    unsigned long long out_limit;   /* the largest reply (see values_over_limit) */
    uint64_t t0;
    /* Read by the worker; they point into this allocation, after q. */
    uint32_t *exclude; /* sorted word ids not to answer */
    size_t nexclude;
    int cosmul;
    float *terms; /* COSMUL: npos + nneg term vectors */
    unsigned npos, nneg;
    float q[]; /* the query vector, dim floats */
};

enum {
    OPT_COUNT = 1u << 0,
    OPT_WITHSCORES = 1u << 1,
    OPT_ATTENTION = 1u << 2,
    OPT_TEMPERATURE = 1u << 3,
    OPT_METRIC = 1u << 4,
    OPT_ARITH = 1u << 5,  /* POSITIVE, NEGATIVE */
    OPT_COSMUL = 1u << 6, /* COSMUL */
    OPT_FILTER = 1u << 7, /* EXCLUDE, EXCLUDEINPUT, RESTRICT, MAXDIST, MINSCORE, WITHSIMILARITY */
    OPT_MINWEIGHT = 1u << 8,
    OPT_WITHBLEND = 1u << 9,
};

/* The words that end a list of terms (POSITIVE a b c ...): every option
 * name of these commands, in any case. A term that is one of them is given
 * with a space around it (" count"): a term is a word or phrase split on
 * whitespace, so the space changes nothing else. */
static int is_keyword(const struct akv_slice *a)
{
    static const char *const kw[] = {
        "COUNT",    "WITHSCORES",     "ATTENTION", "TEMPERATURE",  "METRIC",    "POSITIVE",
        "NEGATIVE", "COSMUL",         "EXCLUDE",   "EXCLUDEINPUT", "RESTRICT",  "MAXDIST",
        "MINSCORE", "WITHSIMILARITY", "UNKNOWN",   "WEIGHTING",    "MINWEIGHT", "WITHBLEND",
        NULL,
    };
    for (size_t i = 0; kw[i] != NULL; i++)
        if (arg_is(a, kw[i]))
            return 1;
    return 0;
}

/* The most text EXCLUDE's words may hold in all: each is embedded on the
 * loop thread to find its ids, so this bounds that work (and 1,024 words of
 * 64 bytes fit). */
#define EXCLUDE_BYTES_MAX 65536

/* What a request asks besides its scalar options: its input (text or
 * vector), the terms of word arithmetic, the words not to answer. The
 * slices point into argv. */
struct query_spec {
    const struct akv_slice *text;  /* the first positive term as text, or NULL: */
    const struct akv_slice *vtype; /* VECTOR FP32|VALUES: the type word, */
    const struct akv_slice *vargs; /* its values (1 blob, or dim numbers) */
    size_t nvargs;
    const struct akv_slice *terms[AKV_TERMS_MAX]; /* further terms: positive, then negative */
    unsigned npos, nneg;                          /* counts in terms (npos excludes the first) */
    const struct akv_slice *neg[AKV_TERMS_MAX];
    const struct akv_slice *excl[AKV_EXCLUDE_MAX];
    size_t nexcl, excl_bytes;
    int exclude_input, cosmul, arith, metric_given, withsimilarity;
    int temperature_given;
    double temperature;
};

/* For option parsers: 1 once an error reply is written, -ENOMEM if it could
 * not be. */
static int replied(int rc)
{
    return rc < 0 ? rc : 1;
}

static int reply_missing_value(struct akv_cmd_ctx *ctx, const struct akv_slice *opt)
{
    char sb[AKV_QUOTE_BUF];
    char *c;

    show(opt, sb);
    for (c = sb; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    return akv_reply_errorf(ctx->out, "ERR %s needs a value", sb);
}

/* Parses the input at argv[1]: text, or VECTOR FP32 blob, or VECTOR VALUES
 * dim v1 ... vd (a text whose first argument is "vector" stays text unless
 * FP32 or VALUES follows). Sets *next to the first option's index. Returns
 * 0, 1 when an error reply was written, or -ENOMEM. */
static int parse_query_input(struct akv_cmd_ctx *ctx, const char *cmd, struct query_spec *sp,
                             size_t *next)
{
    uint32_t dim = akv_vocab_dim(ctx->env->vocab);

    if (ctx->argc > 2 && arg_is(&ctx->argv[1], "VECTOR") &&
        (arg_is(&ctx->argv[2], "FP32") || arg_is(&ctx->argv[2], "VALUES"))) {
        sp->vtype = &ctx->argv[2];
        if (arg_is(sp->vtype, "FP32")) {
            if (ctx->argc < 4)
                return replied(akv_reply_errorf(ctx->out, "ERR %s VECTOR FP32 needs a blob", cmd));
            sp->vargs = &ctx->argv[3];
            sp->nvargs = 1;
            *next = 4;
        } else {
            uint64_t n;
            if (ctx->argc < 4 || parse_u64(&ctx->argv[3], &n) < 0)
                return replied(akv_reply_errorf(
                    ctx->out, "ERR %s VECTOR VALUES needs the dimension, then that many numbers",
                    cmd));
            if (n != dim)
                return replied(akv_reply_errorf(ctx->out,
                                                "ERR vector dimension mismatch: got %" PRIu64
                                                ", the vocabulary's is %u",
                                                n, dim));
            if (ctx->argc < 4 + n)
                return replied(akv_reply_errorf(ctx->out,
                                                "ERR %s VECTOR VALUES %u needs %u numbers, got %zu",
                                                cmd, dim, dim, ctx->argc - 4));
            sp->vargs = &ctx->argv[4];
            sp->nvargs = (size_t)n;
            *next = 4 + (size_t)n;
        }
        return 0;
    }
    sp->text = &ctx->argv[1];
    *next = 2;
    return 0;
}

/* Parses argv[first..] as options for cmd into o, *count, *withscores and
 * sp. Returns 0 when they are fine, 1 when an error reply was written, or
 * -ENOMEM. */
static int parse_query_opts(struct akv_cmd_ctx *ctx, const char *cmd, unsigned allowed,
                            unsigned count_max, size_t first, struct akv_query_opts *o,
                            unsigned *count, int *withscores, int *withblend, struct query_spec *sp,
                            struct akv_embed_opts *eo)
{
    char sb[AKV_QUOTE_BUF];

    for (size_t i = first; i < ctx->argc; i++) {
        const struct akv_slice *a = &ctx->argv[i];
        const struct akv_slice *v = i + 1 < ctx->argc ? a + 1 : NULL;
        unsigned opt;
        int erc = akv_cmd_embed_opt(ctx, i, eo); /* UNKNOWN, WEIGHTING */

        if (erc == 2) {
            i++;
            continue;
        }
        if (erc != 0)
            return erc;

        if ((allowed & OPT_WITHSCORES) && arg_is(a, "WITHSCORES")) {
            *withscores = 1;
            continue;
        }
        if ((allowed & OPT_WITHBLEND) && arg_is(a, "WITHBLEND")) {
            *withblend = 1;
            continue;
        }
        if ((allowed & OPT_COSMUL) && arg_is(a, "COSMUL")) {
            sp->cosmul = 1;
            continue;
        }
        if ((allowed & OPT_FILTER) && arg_is(a, "EXCLUDEINPUT")) {
            sp->exclude_input = 1;
            continue;
        }
        if ((allowed & OPT_FILTER) && arg_is(a, "WITHSIMILARITY")) {
            sp->withsimilarity = 1;
            *withscores = 1;
            continue;
        }
        if ((allowed & OPT_ARITH) && (arg_is(a, "POSITIVE") || arg_is(a, "NEGATIVE"))) {
            int pos = arg_is(a, "POSITIVE");
            size_t n0 = i;
            for (; i + 1 < ctx->argc && !is_keyword(&ctx->argv[i + 1]); i++) {
                if (sp->npos + sp->nneg + 1 >= AKV_TERMS_MAX)
                    return replied(akv_reply_errorf(
                        ctx->out, "ERR %s takes at most %d POSITIVE and NEGATIVE terms in all", cmd,
                        AKV_TERMS_MAX - 1));
                if (pos)
                    sp->terms[sp->npos++] = &ctx->argv[i + 1];
                else
                    sp->neg[sp->nneg++] = &ctx->argv[i + 1];
            }
            if (i == n0)
                return replied(akv_reply_errorf(ctx->out, "ERR %s needs at least one word",
                                                pos ? "POSITIVE" : "NEGATIVE"));
            sp->arith = 1;
            continue;
        }
        if ((allowed & OPT_FILTER) && arg_is(a, "EXCLUDE")) {
            size_t n0 = i;
            for (; i + 1 < ctx->argc && !is_keyword(&ctx->argv[i + 1]); i++) {
                if (sp->nexcl == AKV_EXCLUDE_MAX)
                    return replied(akv_reply_errorf(
                        ctx->out, "ERR %s EXCLUDE takes at most %d words", cmd, AKV_EXCLUDE_MAX));
                sp->excl[sp->nexcl++] = &ctx->argv[i + 1];
                sp->excl_bytes += ctx->argv[i + 1].len;
                if (sp->excl_bytes > EXCLUDE_BYTES_MAX)
                    return replied(akv_reply_errorf(ctx->out,
                                                    "ERR %s EXCLUDE takes at most %d bytes of text",
                                                    cmd, EXCLUDE_BYTES_MAX));
            }
            if (i == n0)
                return replied(akv_reply_errorf(ctx->out, "ERR EXCLUDE needs at least one word"));
            continue;
        }
        if ((allowed & OPT_COUNT) && arg_is(a, "COUNT"))
            opt = OPT_COUNT;
        else if ((allowed & OPT_ATTENTION) && arg_is(a, "ATTENTION"))
            opt = OPT_ATTENTION;
        else if ((allowed & OPT_TEMPERATURE) && arg_is(a, "TEMPERATURE"))
            opt = OPT_TEMPERATURE;
        else if ((allowed & OPT_METRIC) && arg_is(a, "METRIC"))
            opt = OPT_METRIC;
        else if ((allowed & OPT_MINWEIGHT) && arg_is(a, "MINWEIGHT"))
            opt = OPT_MINWEIGHT;
        else if ((allowed & OPT_FILTER) &&
                 (arg_is(a, "RESTRICT") || arg_is(a, "MAXDIST") || arg_is(a, "MINSCORE")))
            opt = OPT_FILTER;
        else
            return replied(
                akv_reply_errorf(ctx->out, "ERR unknown option '%s' for %s", show(a, sb), cmd));
        if (!v)
            return replied(reply_missing_value(ctx, a));
        i++;

        if (opt == OPT_COUNT) {
            uint64_t n;
            if (parse_u64(v, &n) < 0 || n < 1 || n > count_max)
                return replied(akv_reply_errorf(
                    ctx->out, "ERR %s COUNT must be an integer between 1 and %u", cmd, count_max));
            *count = (unsigned)n;
        } else if (opt == OPT_ATTENTION) {
            if (akv_attn_mode_parse(v->p, v->len, &o->attn) < 0)
                return replied(akv_reply_errorf(
                    ctx->out, "ERR unknown ATTENTION '%s' (use dot or cosine)", show(v, sb)));
        } else if (opt == OPT_TEMPERATURE) {
            double t;
            if (akv_parse_double((v)->p, (v)->len, &t) < 0 || !(t >= AKV_TEMPERATURE_MIN) ||
                !(t <= AKV_TEMPERATURE_MAX))
                return replied(akv_reply_errorf(
                    ctx->out, "ERR TEMPERATURE must be a decimal number from %g to %g, not '%s'",
                    AKV_TEMPERATURE_MIN, AKV_TEMPERATURE_MAX, show(v, sb)));
            sp->temperature_given = 1;
            sp->temperature = t;
        } else if (opt == OPT_MINWEIGHT) {
            double w;
            if (akv_parse_double(v->p, v->len, &w) < 0 || !(w >= 0) || !(w <= 1))
                return replied(akv_reply_errorf(
                    ctx->out, "ERR MINWEIGHT must be a decimal number from 0 to 1, not '%s'",
                    show(v, sb)));
            o->minweight = w;
        } else if (opt == OPT_METRIC) {
            if (akv_metric_parse(v->p, v->len, &o->metric) < 0)
                return replied(akv_reply_errorf(
                    ctx->out, "ERR unknown METRIC '%s' (use l2, cosine or dot)", show(v, sb)));
            sp->metric_given = 1;
        } else if (arg_is(a, "RESTRICT")) {
            uint64_t n;
            size_t max = akv_vocab_count(ctx->env->vocab);
            if (parse_u64(v, &n) < 0 || n < 1 || n > max)
                return replied(akv_reply_errorf(
                    ctx->out, "ERR RESTRICT must be an integer between 1 and %zu", max));
            o->restrict_n = (uint32_t)n;
        } else {
            int dist = arg_is(a, "MAXDIST");
            double t;
            if (akv_parse_double(v->p, v->len, &t) < 0 || !isfinite(t) || (dist && t < 0))
                return replied(akv_reply_errorf(
                    ctx->out, "ERR %s must be a %snumber, not '%s'", dist ? "MAXDIST" : "MINSCORE",
                    dist ? "finite non-negative " : "finite ", show(v, sb)));
            if (dist) {
                o->use_maxdist = 1;
                o->maxdist = t;
            } else {
                o->use_minscore = 1;
                o->minscore = t;
            }
        }
    }
    /* TEMPERATURE belongs to the attention mode in effect, whichever
     * comes first in the command. */
    if (sp->temperature_given) {
        if (o->attn == AKV_ATTN_DOT)
            o->temperature_dot = sp->temperature;
        else
            o->temperature = sp->temperature;
    }
    /* Word arithmetic ranks by cosine unless METRIC says otherwise. */
    if ((sp->arith || sp->cosmul) && !sp->metric_given)
        o->metric = AKV_METRIC_COSINE;
    if (sp->cosmul && (sp->metric_given || sp->withsimilarity))
        return replied(akv_reply_errorf(ctx->out,
                                        "ERR COSMUL ranks by its own score: %s does not apply",
                                        sp->metric_given ? "METRIC" : "WITHSIMILARITY"));
    o->similarity = sp->withsimilarity;
    if (o->use_maxdist && (sp->cosmul || o->metric != AKV_METRIC_L2))
        return replied(akv_reply_errorf(
            ctx->out,
            "ERR MAXDIST applies to METRIC l2 (use MINSCORE with cosine, dot or COSMUL)"));
    if (o->use_minscore && o->metric == AKV_METRIC_L2 && !sp->cosmul && !sp->withsimilarity)
        return replied(akv_reply_errorf(
            ctx->out, "ERR MINSCORE needs a similarity: with METRIC l2 use MAXDIST, or add "
                      "WITHSIMILARITY"));
    return 0;
}

/* Unit-normalises x (dim doubles) in place; a zero vector stays zero. */
static void unit_normalise(double *x, uint32_t dim)
{
    double nn = 0;
    for (uint32_t d = 0; d < dim; d++)
        nn += x[d] * x[d];
    nn = sqrt(nn);
    if (nn > 0)
        for (uint32_t d = 0; d < dim; d++)
            x[d] /= nn;
}

/* Appends the words sk skipped in text to acc (one allocation: the
 * lengths, then the words, as akv_cmd_skipped_copy lays them out), keeping
 * the first AKV_PHRASE_WORDS_MAX of a request. Returns 0 or -ENOMEM. */
static int skipped_add(struct akv_cmd_skipped *acc, const char *text,
                       const struct akv_embed_skips *sk)
{
    struct akv_cmd_skipped one, all;
    size_t la = 0, lb = 0;

    if (acc->n >= AKV_PHRASE_WORDS_MAX) /* a reply names the first 64 in all */
        return 0;
    if (akv_cmd_skipped_copy(text, sk, &one) < 0)
        return -ENOMEM;
    if (one.n > AKV_PHRASE_WORDS_MAX - acc->n)
        one.n = AKV_PHRASE_WORDS_MAX - acc->n;
    if (one.n == 0) {
        akv_cmd_skipped_free(&one);
        return 0;
    }
    if (acc->n == 0) {
        akv_cmd_skipped_free(acc);
        *acc = one;
        return 0;
    }
    for (size_t i = 0; i < acc->n; i++)
        la += acc->len[i];
    for (size_t i = 0; i < one.n; i++)
        lb += one.len[i];
    all.n = acc->n + one.n;
    all.len = malloc(all.n * sizeof(*all.len) + la + lb);
    if (all.len == NULL) {
        akv_cmd_skipped_free(&one);
        return -ENOMEM;
    }
    all.words = (char *)(all.len + all.n);
    memcpy(all.len, acc->len, acc->n * sizeof(*all.len));
    memcpy(all.len + acc->n, one.len, one.n * sizeof(*all.len));
    memcpy(all.words, acc->words, la);
    memcpy(all.words + la, one.words, lb);
    akv_cmd_skipped_free(acc);
    akv_cmd_skipped_free(&one);
    *acc = all;
    return 0;
}

/* The most input words of a request: every word of every term. */
#define INPUT_WORDS_MAX (AKV_TERMS_MAX * AKV_PHRASE_WORDS_MAX)

/* One term's vector (dim doubles: the text's vector under the request's
 * embedding options eo, as QUERY embeds its text) and, when ids is not
 * NULL, its words' ids appended to ids[*nids] (room for cap; words beyond
 * cap are an error: only EXCLUDE can have them). Words UNKNOWN skip left
 * out are added to skipped when it is not NULL. Returns 0, 1 when an error
 * reply was written, or -ENOMEM. */
static int term_vector(struct akv_cmd_ctx *ctx, const struct akv_slice *t,
                       const struct akv_embed_opts *eo, double *out, uint32_t *ids, size_t *nids,
                       size_t cap, struct akv_cmd_skipped *skipped)
{
    struct akv_embed_skips sk = {0};
    const struct akv_vocab *voc = ctx->env->vocab;
    uint32_t w[AKV_PHRASE_WORDS_MAX], dim = akv_vocab_dim(voc);
    size_t n = 0;
    char err[256] = "";
    float *f = malloc(dim * sizeof *f);
    int rc =
        f == NULL ? -ENOMEM : akv_embed_text_opts(voc, t->p, t->len, eo, f, &sk, err, sizeof err);

    if (rc == 0 && ids != NULL)
        rc = akv_embed_words_opts(voc, t->p, t->len, eo->unknown, w, &n, NULL, err, sizeof err);
    for (uint32_t d = 0; rc == 0 && d < dim; d++)
        out[d] = f[d];
    free(f);
    if (rc == 0 && skipped != NULL)
        rc = skipped_add(skipped, t->p, &sk);
    if (rc == -ENOMEM)
        return replied(reply_oom(ctx->out));
    if (rc < 0)
        return replied(akv_reply_errorf(ctx->out, "ERR %s", err[0] ? err : "text does not embed"));
    for (size_t i = 0; ids != NULL && i < n; i++) {
        if (*nids == cap)
            return replied(akv_reply_errorf(ctx->out, "ERR at most %d words may be excluded",
                                            AKV_EXCLUDE_MAX));
        ids[(*nids)++] = w[i];
    }
    return 0;
}

/* The VECTOR input of sp into out (dim floats). Returns 0, 1 when an error
 * reply was written. */
static int input_vector(struct akv_cmd_ctx *ctx, const struct query_spec *sp, float *out)
{
    uint32_t dim = akv_vocab_dim(ctx->env->vocab);
    char sb[AKV_QUOTE_BUF];

    if (arg_is(sp->vtype, "FP32")) {
        const unsigned char *p = (const unsigned char *)sp->vargs->p;
        if (sp->vargs->len != (size_t)dim * 4)
            return replied(akv_reply_errorf(
                ctx->out,
                "ERR vector dimension mismatch: the FP32 blob has %zu bytes, the vocabulary's "
                "dimension %u needs %u",
                sp->vargs->len, dim, 4 * dim));
        for (uint32_t d = 0; d < dim; d++) {
            uint32_t u = (uint32_t)p[4 * d] | (uint32_t)p[4 * d + 1] << 8 |
                         (uint32_t)p[4 * d + 2] << 16 | (uint32_t)p[4 * d + 3] << 24;
            memcpy(&out[d], &u, sizeof u);
            if (!isfinite(out[d]))
                return replied(akv_reply_errorf(
                    ctx->out, "ERR VECTOR value %u is not a finite number", d + 1));
        }
        return 0;
    }
    for (uint32_t d = 0; d < dim; d++) {
        double x;
        if (akv_parse_double(sp->vargs[d].p, sp->vargs[d].len, &x) < 0 || !isfinite(x) ||
            fabs(x) > FLT_MAX)
            return replied(akv_reply_errorf(ctx->out,
                                            "ERR VECTOR value %u is not a finite float: '%s'",
                                            d + 1, show(&sp->vargs[d], sb)));
        out[d] = (float)x;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The query vector of sp into q (dim floats), shared by QUERY, EXPLAIN,
 * NEIGHBORS, ANALOGY and FGET:
 *   - text or a vector alone: its vector, as it always was (a phrase's
 *     mean; the vector as given);
 *   - with POSITIVE or NEGATIVE terms (3CosAdd, as gensim's most_similar):
 *     each term (the input is the first positive one) unit-normalised, the
 *     mean of them with weight +1 (positive) or -1 (negative), then
 *     unit-normalised, in double, rounded to float at the end.
 * When terms is not NULL it receives every term's own (not normalised)
 * vector, positive ones first, for COSMUL. The input words (every word of
 * every text term) go to input_ids (room for INPUT_WORDS_MAX) when it is
 * not NULL, their number to *ninput. Returns 0, 1 when an error reply was
 * written, or -ENOMEM. */
static int build_query_vector(struct akv_cmd_ctx *ctx, const struct query_spec *sp,
                              const struct akv_embed_opts *eo, float *q, float *terms,
                              uint32_t *input_ids, size_t *ninput, struct akv_cmd_skipped *skipped)
{
    const struct akv_vocab *voc = ctx->env->vocab;
    uint32_t dim = akv_vocab_dim(voc);
    unsigned nt = 1 + sp->npos + sp->nneg;
    double *acc = NULL, *t = NULL;
    char err[256] = "";
    int rc = 0;

    if (ninput)
        *ninput = 0;
    if (!sp->arith) {
        /* The input alone: exactly the vector it always had. */
        if (sp->text != NULL) {
            struct akv_embed_skips sk = {0};
            rc = akv_embed_text_opts(voc, sp->text->p, sp->text->len, eo, q, &sk, err, sizeof err);
            if (rc == 0)
                rc = skipped_add(skipped, sp->text->p, &sk);
            if (rc == -ENOMEM)
                return replied(reply_oom(ctx->out));
            if (rc < 0)
                return replied(
                    akv_reply_errorf(ctx->out, "ERR %s", err[0] ? err : "text does not embed"));
        } else if ((rc = input_vector(ctx, sp, q)) != 0) {
            return rc;
        }
        if (terms != NULL)
            memcpy(terms, q, dim * sizeof *q);
        if (input_ids != NULL && sp->text != NULL) {
            double *t0 = malloc(dim * sizeof *t0);
            if (t0 == NULL)
                return replied(reply_oom(ctx->out));
            rc = term_vector(ctx, sp->text, eo, t0, input_ids, ninput, INPUT_WORDS_MAX, NULL);
            free(t0);
        }
        return rc;
    }
    acc = calloc(dim, sizeof *acc);
    t = malloc(dim * sizeof *t);
    if (acc == NULL || t == NULL) {
        rc = replied(reply_oom(ctx->out));
        goto out;
    }
    for (unsigned i = 0; i < nt; i++) {
        int negative = i > sp->npos;
        if (i == 0 && sp->text == NULL) {
            if ((rc = input_vector(ctx, sp, q)) != 0)
                goto out;
            for (uint32_t d = 0; d < dim; d++)
                t[d] = q[d];
        } else {
            const struct akv_slice *ts = i == 0          ? sp->text
                                         : i <= sp->npos ? sp->terms[i - 1]
                                                         : sp->neg[i - 1 - sp->npos];
            if ((rc = term_vector(ctx, ts, eo, t, input_ids, ninput, INPUT_WORDS_MAX, skipped)) !=
                0)
                goto out;
        }
        if (terms != NULL)
            for (uint32_t d = 0; d < dim; d++)
                terms[(size_t)i * dim + d] = (float)t[d];
        {
            unit_normalise(t, dim);
            for (uint32_t d = 0; d < dim; d++)
                acc[d] += negative ? -t[d] : t[d];
        }
    }
    for (uint32_t d = 0; d < dim; d++)
        acc[d] /= (double)nt;
    unit_normalise(acc, dim);
    for (uint32_t d = 0; d < dim; d++)
        q[d] = (float)acc[d];
out:
    free(acc);
    free(t);
    return rc;
}

/* The most threads sharing one batch's scan: each adds a set of thresholds
 * and survivors per request, and the per-chunk exchange of thresholds
 * grows with their number; the machines this runs on have a few cores. */
#define QUERY_PARTS_MAX 8

/* Worker thread, helping another worker's batch: scans chunks of its
 * vocabulary pass as part h. */
static void query_help(void *arg, unsigned h)
{
    akv_query_batch_work(arg, h);
}

static int reply_on_worker(struct akv_buf *out, const struct query_job *j);

/* Worker thread, owner of job: runs fn(arg, 0) and offers fn(arg, h) to
 * the workers that have nothing else to do (see src/server/pool.c,
 * Helping). */
static void query_par_run(void *ctx, void (*fn)(void *arg, unsigned h), void *arg,
                          unsigned nhelpers)
{
    struct akv_pool_job *job = ctx;

    akv_pool_help_begin(job, fn, arg, nhelpers);
    fn(arg, 0);
    akv_pool_help_end(job);
}

/* Worker thread: runs n queued QUERY, EXPLAIN, FGET and NEIGHBORS jobs, in
 * any mix, with one pass over the vocabulary. Reads each job's vector,
 * options and snapshot and the immutable vocabulary; writes only each
 * job's res, rc, batch_n, reply and refused. */
static void query_batch(struct akv_pool_job **pjs, size_t n)
{
    struct akv_query_item items[AKV_POOL_BATCH_MAX];
    struct akv_query_batch *b = NULL;
    unsigned nparts = akv_pool_job_threads(pjs[0]);
    struct akv_par par;

    if (nparts > QUERY_PARTS_MAX)
        nparts = QUERY_PARTS_MAX;

    assert(n >= 1 && n <= AKV_POOL_BATCH_MAX);
    for (size_t i = 0; i < n; i++) {
        struct query_job *j = container_of(pjs[i], struct query_job, base.pool);
        int ranks_words = j->kind == JOB_NEIGHBORS;

        /* A NEIGHBORS item has no store: that is what makes the engine rank
         * around q itself, as akv_query_neighbors does. */
        items[i] = (struct akv_query_item){
            .store = ranks_words ? NULL : j->store,
            .snap = ranks_words ? NULL : &j->snap,
            .vocab = j->vocab,
            .q = j->q,
            .opts = j->opts,
            .res = &j->res,
            .nbcache = j->nbcache,
            .exclude = j->exclude,
            .nexclude = j->nexclude,
            .cosmul = j->cosmul,
            .terms = j->terms,
            .npos = j->npos,
            .nneg = j->nneg,
        };
    }
    /* Failures are per item (rc), as the single calls report them. The
     * other workers that have nothing else to do join the vocabulary scan
     * (see src/server/pool.c, Helping). */
    par = (struct akv_par){query_par_run, pjs[0], nparts - 1};
    if (akv_query_batch_begin_par(items, n, nparts, &par, &b) == 0 && b != NULL) {
        akv_pool_help_begin(pjs[0], query_help, b, nparts - 1);
        akv_query_batch_work(b, 0);
        akv_pool_help_end(pjs[0]);
    }
    akv_query_batch_end(b);
    for (size_t i = 0; i < n; i++) {
        struct query_job *j = container_of(pjs[i], struct query_job, base.pool);
        j->rc = items[i].rc;
        j->batch_n = i == 0 ? n : 0;
        /* An FGET or EXPLAIN reply may be tens of MB of payloads: copying
         * them is the worker's job, the loop thread only hands it over. */
        if (j->rc == 0) {
            int wr = reply_on_worker(&j->reply, j);
            if (wr < 0) {
                akv_buf_fini(&j->reply);
                j->rc = -ENOMEM;
            }
            j->refused = wr == 1;
        }
    }
}

/* The words, with WITHSCORES each followed by its score: a flat array in
 * RESP2; in RESP3 an array of [word, score] pairs with the score a double,
 * as Redis 7 answers ZRANGE ... WITHSCORES. */
static int reply_hits(struct akv_buf *out, const struct akv_vocab *voc,
                      const struct akv_query_result *res, int withscores, int resp,
                      const struct akv_cmd_skipped *skipped)
{
    int pairs = withscores && resp >= 3;
    int rc = akv_reply_array(out, res->nhits * (withscores && !pairs ? 2 : 1) + (skipped->n > 0));

    for (size_t i = 0; rc == 0 && i < res->nhits; i++) {
        size_t len;
        const char *w = akv_vocab_word(voc, res->hits[i].id, &len);
        if (pairs)
            rc = akv_reply_array(out, 2);
        rc = rc ? rc : akv_reply_bulk(out, w, len);
        if (rc == 0 && withscores)
            rc = akv_reply_double(out, resp, res->hits[i].score);
    }
    if (rc == 0 && skipped->n > 0)
        rc = akv_cmd_reply_skipped(out, resp, skipped);
    return rc;
}

/* Each entry [key, value, weight] in RESP2; in RESP3 a map {key, value,
 * weight} with the weight a double. WITHBLEND adds the entry's share of
 * the blend (its weight renormalised over the embedded entries; 0 for a
 * payload) and its kind, "embedded" or "payload": [key, value, weight,
 * blend, kind], or the map's "blend" and "kind". */
static int reply_explain(struct akv_buf *out, const struct query_job *j)
{
    int rc = akv_reply_array(out, j->res.nwhy + (j->skipped.n > 0));
    size_t nf = j->withblend ? 5 : 3;

    for (size_t i = 0; rc == 0 && i < j->res.nwhy; i++) {
        const struct akv_why *w = &j->res.why[i];
        const char *k, *v, *kind = w->payload ? "payload" : "embedded";
        size_t kl, vl;
        akv_store_entry_text(j->store, &j->snap, w->slot, &k, &kl, &v, &vl);
        if (j->resp >= 3) {
            rc = akv_reply_map(out, 3, nf);
            rc = rc ? rc : akv_reply_bulk_str(out, "key");
            rc = rc ? rc : akv_reply_bulk(out, k, kl);
            rc = rc ? rc : akv_reply_bulk_str(out, "value");
            rc = rc ? rc : akv_reply_bulk(out, v, vl);
            rc = rc ? rc : akv_reply_bulk_str(out, "weight");
            rc = rc ? rc : akv_reply_double(out, 3, w->weight);
            if (j->withblend) {
                rc = rc ? rc : akv_reply_bulk_str(out, "blend");
                rc = rc ? rc : akv_reply_double(out, 3, w->blend);
                rc = rc ? rc : akv_reply_bulk_str(out, "kind");
                rc = rc ? rc : akv_reply_bulk_str(out, kind);
            }
            continue;
        }
        rc = akv_reply_array(out, nf);
        rc = rc ? rc : akv_reply_bulk(out, k, kl);
        rc = rc ? rc : akv_reply_bulk(out, v, vl);
        rc = rc ? rc : akv_reply_bulk_double(out, w->weight);
        if (j->withblend) {
            rc = rc ? rc : akv_reply_bulk_double(out, w->blend);
            rc = rc ? rc : akv_reply_bulk_str(out, kind);
        }
    }
    if (rc == 0 && j->skipped.n > 0)
        rc = akv_cmd_reply_skipped(out, j->resp, &j->skipped);
    return rc;
}

/* FGET: the values, with WITHSCORES each followed by its weight, as
 * reply_hits lays words out. */
static int reply_fget(struct akv_buf *out, const struct query_job *j)
{
    int pairs = j->withscores && j->resp >= 3;
    int rc;

    rc = akv_reply_array(out, j->res.nwhy * (j->withscores && !pairs ? 2 : 1) + (j->skipped.n > 0));

    for (size_t i = 0; rc == 0 && i < j->res.nwhy; i++) {
        const char *k, *v;
        size_t kl, vl;
        akv_store_entry_text(j->store, &j->snap, j->res.why[i].slot, &k, &kl, &v, &vl);
        if (pairs)
            rc = akv_reply_array(out, 2);
        rc = rc ? rc : akv_reply_bulk(out, v, vl);
        if (rc == 0 && j->withscores)
            rc = akv_reply_double(out, j->resp, j->res.why[i].weight);
    }
    if (rc == 0 && j->skipped.n > 0)
        rc = akv_cmd_reply_skipped(out, j->resp, &j->skipped);
    return rc;
}

/* FGET and EXPLAIN replies carry stored values, and payloads may be large
 * (max-value-len up to 1 MiB): a reply that would pass the hard output
 * limit (client-output-buffer-limit, else proto-max-bulk-len; j->out_limit)
 * is refused before anything is built, as it would only close the
 * connection. Its size is bounded with REPLY_ITEM_FRAMING bytes per entry
 * besides its texts (bulk headers, CR LFs, the weights, EXPLAIN's labels
 * and kinds), and the words UNKNOWN skip left out. Writes the error reply
 * to out and returns 1 if over. */
#define REPLY_ITEM_FRAMING 192
static int values_over_limit(struct akv_buf *out, const struct query_job *j, int *rc)
{
    const char *name = j->kind == JOB_FGET ? "FGET" : "EXPLAIN";
    unsigned long long total = 64;

    for (size_t i = 0; i < j->skipped.n; i++) /* UNKNOWN skip's words */
        total += j->skipped.len[i] + 16;

    for (size_t i = 0; i < j->res.nwhy; i++) {
        const char *k, *v;
        size_t kl, vl;
        akv_store_entry_text(j->store, &j->snap, j->res.why[i].slot, &k, &kl, &v, &vl);
        total += (j->kind == JOB_EXPLAIN ? kl : 0) + vl + REPLY_ITEM_FRAMING;
    }
    if (total <= j->out_limit)
        return 0;
    *rc = akv_reply_errorf(out,
                           "ERR %s reply would hold about %llu bytes, over the output limit of "
                           "%llu; ask for a smaller COUNT",
                           name, total, j->out_limit);
    return 1;
}

/* Worker thread: the whole reply of an FGET or EXPLAIN job, to out; other
 * kinds are left to query_finish. Returns 0, 1 when the reply is the error
 * of one over the output limit, or -ENOMEM. */
static int reply_on_worker(struct akv_buf *out, const struct query_job *j)
{
    int rc = 0;

    if (j->kind != JOB_FGET && j->kind != JOB_EXPLAIN)
        return 0;
    if (values_over_limit(out, j, &rc))
        return rc < 0 ? rc : 1;
    return j->kind == JOB_FGET ? reply_fget(out, j) : reply_explain(out, j);
}

/* Loop thread: writes the reply (while the snapshot is still held), then
 * lets go of the snapshot and the job. */
static void query_finish(struct akv_cmd_job *cj, struct akv_buf *out)
{
    struct query_job *j = container_of(cj, struct query_job, base);
    struct akv_cmd_env *env = j->env;

    uint64_t us = (now_ns() - j->t0) / 1000;
    int failed = j->rc < 0 || j->refused;

    env->stats.jobs_running--;
    if (j->rc == 0 && j->res.from_lists)
        env->stats.query_from_lists++;
    /* The whole batch is counted with its first job, which is always
     * finished first, so a CONFIG RESETSTAT between two jobs of one batch
     * cannot leave half a batch counted. */
    if (j->batch_n > 0) {
        env->stats.query_batches++;
        env->stats.query_batched_jobs += j->batch_n;
        if (j->batch_n > env->stats.query_batch_max)
            env->stats.query_batch_max = j->batch_n;
    }
    if (j->kind == JOB_QUERY && j->rc == 0) {
        env->stats.query_count++;
        env->stats.query_us_sum += us;
        if (us > env->stats.query_us_max)
            env->stats.query_us_max = us;
        akv_hist_record(&env->stats.query_hist, us);
    }
    if (out) {
        size_t mark = out->len;
        int rc;

        if (j->rc < 0)
            rc = akv_reply_errorf(out, "ERR query failed: %s", strerror(-j->rc));
        else if ((j->kind == JOB_FGET || j->kind == JOB_EXPLAIN) && out->len == 0) {
            /* Nothing waits before it: hand the worker's buffer over. */
            struct akv_buf t = *out;
            *out = j->reply;
            j->reply = t;
            rc = 0;
        } else if (j->kind == JOB_FGET || j->kind == JOB_EXPLAIN)
            rc = akv_buf_append(out, j->reply.p, j->reply.len);
        else
            rc = reply_hits(out, j->vocab, &j->res, j->withscores, j->resp, &j->skipped);
        if (rc < 0)
            failed = akv_cmd_reply_cut_to_oom(out, mark);
    }
    akv_cmd_job_account(env, cj, us, failed);
    if (j->has_snap)
        akv_store_snap_release(j->store, &j->snap);
    akv_cmd_skipped_free(&j->skipped);
    akv_buf_fini(&j->reply);
    free(j);
}

/* The common part of QUERY, EXPLAIN, NEIGHBORS and ANALOGY (a NEIGHBORS
 * job whose terms are argv[2] and argv[3] positive, argv[1] negative). */
static int start_job(struct akv_cmd_ctx *ctx, enum job_kind kind, int analogy)
{
    static const char *const names[] = {"QUERY", "EXPLAIN", "NEIGHBORS", "FGET"};
    static const unsigned allowed[] = {
        OPT_COUNT | OPT_WITHSCORES | OPT_ATTENTION | OPT_TEMPERATURE | OPT_METRIC | OPT_ARITH |
            OPT_FILTER,
        OPT_COUNT | OPT_ATTENTION | OPT_TEMPERATURE | OPT_ARITH | OPT_WITHBLEND,
        OPT_COUNT | OPT_WITHSCORES | OPT_METRIC | OPT_ARITH | OPT_COSMUL | OPT_FILTER,
        OPT_COUNT | OPT_WITHSCORES | OPT_ATTENTION | OPT_TEMPERATURE | OPT_MINWEIGHT | OPT_ARITH,
    };
    struct akv_cmd_env *env = ctx->env;
    const char *name = analogy ? "ANALOGY" : names[kind];
    uint32_t dim = akv_vocab_dim(env->vocab);
    struct akv_query_opts o = env->config->query;
    struct akv_embed_opts eo = env->config->embed;
    struct akv_cmd_skipped skipped = {0}; /* every term's, EXCLUDE's included */
    unsigned count = kind == JOB_EXPLAIN ? EXPLAIN_DEFAULT : o.k, nt;
    int withscores = 0, withblend = 0;
    struct query_job *j = NULL;
    struct query_spec *sp = NULL;
    uint32_t *ids = NULL;
    size_t first = 2, nids = 0, ninput = 0, nexcl, jsize;
    int rc;

    sp = calloc(1, sizeof *sp);
    ids = malloc((INPUT_WORDS_MAX + AKV_EXCLUDE_MAX) * sizeof *ids);
    if (sp == NULL || ids == NULL) {
        rc = reply_oom(ctx->out);
        goto out;
    }
    if (analogy) {
        /* "a is to b as c is to ?": b + c - a. */
        sp->text = &ctx->argv[2];
        sp->terms[sp->npos++] = &ctx->argv[3];
        sp->neg[sp->nneg++] = &ctx->argv[1];
        sp->arith = 1;
        first = 4;
    } else if ((rc = parse_query_input(ctx, name, sp, &first)) != 0) {
        rc = rc < 0 ? rc : 0;
        goto out;
    }
    rc = parse_query_opts(ctx, name, allowed[kind] & (analogy ? ~(unsigned)OPT_ARITH : ~0u),
                          kind == JOB_EXPLAIN ? AKV_EXPLAIN_MAX : AKV_K_MAX, first, &o, &count,
                          &withscores, &withblend, sp, &eo);
    if (rc != 0) {
        rc = rc < 0 ? rc : 0;
        goto out;
    }
    if (kind == JOB_EXPLAIN) {
        o.explain = count;
        o.skip_rank = 1;
    } else if (kind == JOB_FGET) {
        o.k = count;
        o.explain = 0;
        o.skip_rank = 1;
        o.fget = 1;
    } else {
        o.k = count;
        o.explain = 0;
        o.skip_rank = 0;
    }
    nt = sp->cosmul ? 1 + sp->npos + sp->nneg : 0;
    jsize = sizeof(*j) + (size_t)dim * sizeof(float) * (1 + nt);
    j = malloc(jsize);
    if (!j) {
        rc = reply_oom(ctx->out);
        goto out;
    }
    j->terms = nt ? j->q + dim : NULL;
    /* The input words are not answered when asked, and by default with
     * word arithmetic (as gensim's most_similar does); EXPLAIN and FGET
     * answer no words. They do not count against EXCLUDE's limit. */
    rc = build_query_vector(ctx, sp, &eo, j->q, j->terms,
                            (kind == JOB_QUERY || kind == JOB_NEIGHBORS) &&
                                    (sp->exclude_input || sp->arith || sp->cosmul)
                                ? ids
                                : NULL,
                            &ninput, &skipped);
    nids = ninput;
    for (size_t i = 0; rc == 0 && i < sp->nexcl; i++) {
        double *t = malloc(dim * sizeof *t);
        if (t == NULL) {
            rc = reply_oom(ctx->out);
            break;
        }
        rc = term_vector(ctx, sp->excl[i], &eo, t, ids, &nids, ninput + AKV_EXCLUDE_MAX, &skipped);
        free(t);
    }
    if (rc != 0) {
        free(j);
        rc = rc < 0 ? rc : 0;
        goto out;
    }
    /* The words not to answer, sorted and distinct, after q and terms. */
    qsort(ids, nids, sizeof *ids, cmp_u32);
    nexcl = 0;
    for (size_t i = 0; i < nids; i++)
        if (nexcl == 0 || ids[nexcl - 1] != ids[i])
            ids[nexcl++] = ids[i];
    {
        struct query_job *g = realloc(j, jsize + nexcl * sizeof *ids);
        if (g == NULL) {
            free(j);
            rc = reply_oom(ctx->out);
            goto out;
        }
        j = g;
    }
    j->terms = nt ? j->q + dim : NULL;
    j->exclude = (uint32_t *)(void *)(j->q + (size_t)dim * (1 + nt));
    j->nexclude = nexcl;
    memcpy(j->exclude, ids, nexcl * sizeof *ids);
    j->skipped = skipped;
    skipped = (struct akv_cmd_skipped){0};
    j->cosmul = sp->cosmul;
    j->npos = 1 + sp->npos;
    j->nneg = sp->nneg;
    j->base.pool.pool = NULL; /* akv_pool_submit sets it; unit tests run jobs without */
    j->base.pool.help = NULL;
    j->base.pool.work = NULL;
    j->base.pool.batch = query_batch;
    j->base.pool.done = NULL; /* the connection sets it */
    j->base.finish = query_finish;
    j->base.owner = NULL;
    j->base.cmd = NULL; /* akv_cmd_dispatch fills these three */
    j->base.t0 = 0;
    j->base.slow = NULL;
    j->base.drop_reply = 0;
    j->kind = kind;
    j->store = cur_store(ctx);
    j->vocab = env->vocab;
    j->nbcache = env->nbcache;
    j->opts = o;
    j->rc = 0;
    j->batch_n = 0;
    j->refused = 0;
    j->res.nhits = j->res.nwhy = 0;
    j->res.from_lists = 0;
    j->env = env;
    j->withscores = withscores;
    j->withblend = withblend;
    j->resp = resp_of(ctx);
    j->out_limit =
        env->config->obuf_hard > 0 ? env->config->obuf_hard : env->config->proto_max_bulk_len;
    akv_buf_init(&j->reply);
    j->t0 = now_ns();
    j->has_snap = kind != JOB_NEIGHBORS;
    if (j->has_snap)
        akv_store_snap_take(j->store, &j->snap);
    env->stats.jobs_running++;
    ctx->job = &j->base;
    rc = 0;
out:
    akv_cmd_skipped_free(&skipped);
    free(sp);
    free(ids);
    return rc;
}

int akv_cmd_do_query(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_QUERY, 0);
}

int akv_cmd_do_explain(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_EXPLAIN, 0);
}

int akv_cmd_do_neighbors(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_NEIGHBORS, 0);
}

int akv_cmd_do_analogy(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_NEIGHBORS, 1);
}

int akv_cmd_do_fget(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_FGET, 0);
}
