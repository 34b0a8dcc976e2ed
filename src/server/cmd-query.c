/*
 * cmd-query.c - QUERY, EXPLAIN, FGET and NEIGHBORS: options and embedding
 * on the loop thread, attention and ranking on the pool. FGET is the
 * attention step alone, its weights summed per stored value
 * (attnkv/query.h); it rides in the same batches as the others.
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
 *     of up to 16 MiB), are built by the worker too, from the snapshot, in
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

/* ------------------------------------------------------------------------
 * QUERY, EXPLAIN and NEIGHBORS: options here, ranking on the pool.
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
    /* Loop thread only, but for withscores, withblend, skipped, resp and
     * out_limit, which the worker reads too (reply_on_worker; set before
     * dispatch). */
    struct akv_cmd_env *env;
    int has_snap;
    int withscores;
    struct akv_cmd_skipped skipped; /* UNKNOWN skip: the words left out */
    int withblend;                  /* EXPLAIN WITHBLEND */
    int resp;                       /* the connection's protocol when the job was dispatched */
    unsigned long long out_limit;   /* the largest reply (see values_over_limit) */
    uint64_t t0;
    float q[]; /* the query vector, dim floats */
};

enum {
    OPT_COUNT = 1u << 0,
    OPT_WITHSCORES = 1u << 1,
    OPT_ATTENTION = 1u << 2,
    OPT_TEMPERATURE = 1u << 3,
    OPT_METRIC = 1u << 4,
    OPT_MINWEIGHT = 1u << 5,
    OPT_WITHBLEND = 1u << 6,
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

/* Parses argv[2..] as options for cmd. Returns 0 when they are fine, 1 when
 * an error reply was written, or -ENOMEM. */
static int parse_query_opts(struct akv_cmd_ctx *ctx, const char *cmd, unsigned allowed,
                            unsigned count_max, struct akv_query_opts *o, unsigned *count,
                            int *withscores, int *withblend, struct akv_embed_opts *eo)
{
    char sb[AKV_QUOTE_BUF];

    for (size_t i = 2; i < ctx->argc; i++) {
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
            o->temperature = t;
        } else if (opt == OPT_MINWEIGHT) {
            double w;
            if (akv_parse_double(v->p, v->len, &w) < 0 || !(w >= 0) || !(w <= 1))
                return replied(akv_reply_errorf(
                    ctx->out, "ERR MINWEIGHT must be a decimal number from 0 to 1, not '%s'",
                    show(v, sb)));
            o->minweight = w;
        } else {
            if (akv_metric_parse(v->p, v->len, &o->metric) < 0)
                return replied(akv_reply_errorf(
                    ctx->out, "ERR unknown METRIC '%s' (use l2, cosine or dot)", show(v, sb)));
        }
    }
    return 0;
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

/* Worker thread: runs n queued QUERY, EXPLAIN and NEIGHBORS jobs, in any
 * mix, with one pass over the vocabulary. Reads each job's vector, options
 * and snapshot and the immutable vocabulary; writes only each job's res, rc
 * and batch_n. */
static void query_batch(struct akv_pool_job **pjs, size_t n)
{
    struct akv_query_item items[AKV_POOL_BATCH_MAX];
    struct akv_query_batch *b = NULL;
    unsigned nparts = akv_pool_job_threads(pjs[0]);

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
        };
    }
    /* Failures are per item (rc), as the single calls report them. The
     * other workers that have nothing else to do join the vocabulary scan
     * (see src/server/pool.c, Helping). */
    if (akv_query_batch_begin(items, n, nparts, &b) == 0 && b != NULL) {
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
        if (j->rc == 0 && reply_on_worker(&j->reply, j) < 0) {
            akv_buf_fini(&j->reply);
            j->rc = -ENOMEM;
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
            rc = akv_reply_map(out, nf, 3);
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
 * (max-value-len up to 16 MiB): a reply that would pass the hard output
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
    const char *w = j->skipped.words;

    for (size_t i = 0; i < j->skipped.n; i++) { /* UNKNOWN skip's words */
        size_t l = strlen(w);
        total += l + 16;
        w += l + 1;
    }

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
 * kinds are left to query_finish. Returns 0 or -ENOMEM. */
static int reply_on_worker(struct akv_buf *out, const struct query_job *j)
{
    int rc = 0;

    if (j->kind != JOB_FGET && j->kind != JOB_EXPLAIN)
        return 0;
    if (values_over_limit(out, j, &rc))
        return rc;
    return j->kind == JOB_FGET ? reply_fget(out, j) : reply_explain(out, j);
}

/* Loop thread: writes the reply (while the snapshot is still held), then
 * lets go of the snapshot and the job. */
static void query_finish(struct akv_cmd_job *cj, struct akv_buf *out)
{
    struct query_job *j = container_of(cj, struct query_job, base);
    struct akv_cmd_env *env = j->env;

    uint64_t us = (now_ns() - j->t0) / 1000;
    int failed = j->rc < 0;

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

/* The common part of QUERY, EXPLAIN and NEIGHBORS. */
static int start_job(struct akv_cmd_ctx *ctx, enum job_kind kind)
{
    static const char *const names[] = {"QUERY", "EXPLAIN", "NEIGHBORS", "FGET"};
    static const unsigned allowed[] = {
        OPT_COUNT | OPT_WITHSCORES | OPT_ATTENTION | OPT_TEMPERATURE | OPT_METRIC,
        OPT_COUNT | OPT_ATTENTION | OPT_TEMPERATURE | OPT_WITHBLEND,
        OPT_COUNT | OPT_WITHSCORES | OPT_METRIC,
        OPT_COUNT | OPT_WITHSCORES | OPT_ATTENTION | OPT_TEMPERATURE | OPT_MINWEIGHT,
    };
    struct akv_cmd_env *env = ctx->env;
    uint32_t dim = akv_vocab_dim(env->vocab);
    struct akv_query_opts o = env->config->query;
    struct akv_embed_opts eo = env->config->embed;
    struct akv_embed_skips sk;
    unsigned count = kind == JOB_EXPLAIN ? EXPLAIN_DEFAULT : o.k;
    int withscores = 0, withblend = 0;
    struct query_job *j;
    char err[256] = "";
    int rc;

    rc = parse_query_opts(ctx, names[kind], allowed[kind],
                          kind == JOB_EXPLAIN ? AKV_EXPLAIN_MAX : AKV_K_MAX, &o, &count,
                          &withscores, &withblend, &eo);
    if (rc != 0)
        return rc < 0 ? rc : 0;
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

    j = malloc(sizeof(*j) + (size_t)dim * sizeof(float));
    if (!j)
        return reply_oom(ctx->out);
    rc = akv_embed_text_opts(env->vocab, ctx->argv[1].p, ctx->argv[1].len, &eo, j->q, &sk, err,
                             sizeof(err));
    if (rc == 0 && akv_cmd_skipped_copy(ctx->argv[1].p, &sk, &j->skipped) < 0)
        rc = -ENOMEM;
    if (rc < 0) {
        free(j);
        if (rc == -ENOMEM)
            return reply_oom(ctx->out);
        return akv_reply_errorf(ctx->out, "ERR %s", err[0] ? err : "text does not embed");
    }
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
    return 0;
}

int akv_cmd_do_query(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_QUERY);
}

int akv_cmd_do_explain(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_EXPLAIN);
}

int akv_cmd_do_neighbors(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_NEIGHBORS);
}

int akv_cmd_do_fget(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_FGET);
}
