/*
 * cmd-keys.c - the keyspace commands: SET, GET, DEL, EXISTS, DBSIZE,
 * FLUSHALL, KEYS and SCAN.
 *
 * SET checks max-key-len, max-value-len, maxkeys and maxmemory before it
 * touches the store. KEYS runs on the pool over a snapshot (its cost grows
 * with the store); SCAN looks at a bounded number of entries a call.
 *
 * Threading: the loop thread (cmd.h); the KEYS job's work on a worker,
 * reading only the job and its snapshot.
 */
#include "server/cmd-impl.h"

/* ------------------------------------------------------------------------
 * Key/value commands.
 */

/* Writes reserve room in the AOF first, so that once the store has
 * changed, logging the change cannot fail (see persist.h). */
int akv_cmd_do_set(struct akv_cmd_ctx *ctx)
{
    const struct akv_config *cfg = ctx->env->config;
    struct akv_store *store = ctx->env->store;
    const struct akv_slice *k = &ctx->argv[1], *v = &ctx->argv[2];
    char err[256] = "";
    const char *old;
    size_t oldlen;
    int rc;

    if (k->len > (size_t)cfg->max_key_len)
        return akv_reply_errorf(ctx->out, "ERR key is too long (%zu bytes; max-key-len is %d)",
                                k->len, cfg->max_key_len);
    if (v->len > (size_t)cfg->max_value_len)
        return akv_reply_errorf(ctx->out, "ERR value is too long (%zu bytes; max-value-len is %d)",
                                v->len, cfg->max_value_len);
    /* As in Redis, a write is refused while the store is over maxmemory,
     * even one that would replace a value; reads, DEL and FLUSHALL go on. */
    if (cfg->maxmemory > 0 && akv_store_memory_used(store) > cfg->maxmemory)
        return akv_reply_error(ctx->out, "OOM command not allowed when used memory > 'maxmemory'.");
    /* maxkeys counts keys, so replacing a value is always allowed. */
    if (cfg->maxkeys > 0 && akv_store_count(store) >= (size_t)cfg->maxkeys &&
        !akv_store_get(store, k->p, k->len, &old, &oldlen))
        return akv_reply_error(ctx->out,
                               "OOM command not allowed when the number of keys >= 'maxkeys'.");
    rc = akv_persist_reserve(ctx->env->persist, AKV_AOF_SET, k->len, v->len);

    if (rc == 0)
        rc = akv_store_set(ctx->env->store, k->p, k->len, v->p, v->len, err, sizeof(err));
    if (rc == -ENOMEM)
        return reply_oom(ctx->out);
    if (rc < 0)
        return akv_reply_errorf(ctx->out, "ERR %s", err[0] ? err : "invalid key or value");
    akv_persist_log_set(ctx->env->persist, k->p, k->len, v->p, v->len);
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_get(struct akv_cmd_ctx *ctx)
{
    const char *val;
    size_t vlen;

    if (akv_store_get(ctx->env->store, ctx->argv[1].p, ctx->argv[1].len, &val, &vlen))
        return akv_reply_bulk(ctx->out, val, vlen);
    return akv_reply_nil(ctx->out);
}

int akv_cmd_do_del(struct akv_cmd_ctx *ctx)
{
    int64_t n = 0;

    for (size_t i = 1; i < ctx->argc; i++) {
        const struct akv_slice *k = &ctx->argv[i];
        int rc = akv_persist_reserve(ctx->env->persist, AKV_AOF_DEL, k->len, 0);
        if (rc == 0)
            rc = akv_store_del(ctx->env->store, k->p, k->len);
        if (rc < 0)
            return reply_oom(ctx->out);
        akv_persist_log_del(ctx->env->persist, k->p, k->len, rc);
        n += rc;
    }
    return akv_reply_int(ctx->out, n);
}

int akv_cmd_do_exists(struct akv_cmd_ctx *ctx)
{
    int64_t n = 0;
    const char *val;
    size_t vlen;

    /* As in Redis, a key named twice counts twice. */
    for (size_t i = 1; i < ctx->argc; i++)
        n += akv_store_get(ctx->env->store, ctx->argv[i].p, ctx->argv[i].len, &val, &vlen);
    return akv_reply_int(ctx->out, n);
}

int akv_cmd_do_dbsize(struct akv_cmd_ctx *ctx)
{
    return akv_reply_int(ctx->out, (int64_t)akv_store_count(ctx->env->store));
}

int akv_cmd_do_flushall(struct akv_cmd_ctx *ctx)
{
    /* Clients send FLUSHALL ASYNC or SYNC; both are the same here. */
    if (ctx->argc > 2 ||
        (ctx->argc == 2 && !arg_is(&ctx->argv[1], "ASYNC") && !arg_is(&ctx->argv[1], "SYNC")))
        return reply_syntax(ctx);
    if (akv_persist_reserve(ctx->env->persist, AKV_AOF_FLUSHALL, 0, 0) < 0)
        return reply_oom(ctx->out);
    akv_store_flush(ctx->env->store);
    akv_persist_log_flushall(ctx->env->persist);
    return akv_reply_status(ctx->out, "OK");
}

/* Collects matching keys as bulk strings into a side buffer. */
struct keys_acc {
    struct akv_buf items;
    size_t n;
    const struct akv_glob *glob; /* NULL: every key */
    size_t limit;                /* stop once items holds more bytes; 0: no limit */
    int rc;
};

/* Adds key if it matches. Returns nonzero to stop. */
static int keys_add(struct keys_acc *acc, const char *key, size_t klen)
{
    if (acc->glob && !akv_glob_exec(acc->glob, key, klen))
        return 0;
    acc->rc = akv_reply_bulk(&acc->items, key, klen);
    if (acc->rc < 0)
        return 1;
    acc->n++;
    if (acc->limit > 0 && acc->items.len > acc->limit) {
        acc->rc = -E2BIG;
        return 1;
    }
    return 0;
}

static int keys_cb(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    (void)val;
    (void)vlen;
    return keys_add(arg, key, klen);
}

/* Compiles a KEYS or SCAN pattern; "*" and the like become NULL (every key).
 * Returns 0, or 1 once an error reply is written, or -ENOMEM. */
static int compile_pattern(struct akv_cmd_ctx *ctx, const struct akv_slice *pat,
                           struct akv_glob **out)
{
    int rc = akv_glob_compile(pat->p, pat->len, 0, out);

    if (rc == -E2BIG)
        return reply_pattern_too_long(ctx, pat) < 0 ? -ENOMEM : 1;
    if (rc < 0)
        return rc;
    if (akv_glob_matches_all(*out)) {
        akv_glob_free(*out);
        *out = NULL;
    }
    return 0;
}

/* KEYS runs on the pool, over a snapshot taken at dispatch: its cost grows
 * with the store, so on the loop thread it would stall every other client
 * (the stall rule in conn.c). The worker reads only the job. */
struct keys_job {
    struct akv_cmd_job base;
    struct akv_cmd_env *env; /* loop thread only */
    const struct akv_store *store;
    struct akv_store_snap snap;
    struct keys_acc acc;
};

static int keys_block(void *arg, const struct akv_store_block *b)
{
    struct keys_job *j = arg;

    for (size_t i = 0; i < b->n; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (!b->visible[i])
            continue;
        akv_store_entry_text(j->store, &j->snap, b->first_slot + i, &k, &kl, &v, &vl);
        if (keys_add(&j->acc, k, kl))
            return 1;
    }
    return 0;
}

/* Worker thread. */
/* Worker thread: collects the matching keys, then puts the array header
 * in front, so that the loop thread can hand the whole reply over instead
 * of copying it (filling fresh pages with 20 MB took it about 100 ms). */
static void keys_work(struct akv_pool_job *pj)
{
    struct keys_job *j = container_of(pj, struct keys_job, base.pool);
    struct akv_buf reply;

    akv_store_scan(j->store, &j->snap, keys_block, j);
    if (j->acc.rc < 0)
        return;
    akv_buf_init(&reply);
    j->acc.rc = akv_reply_array(&reply, j->acc.n);
    if (j->acc.rc == 0)
        j->acc.rc = akv_buf_append(&reply, j->acc.items.p, j->acc.items.len);
    akv_buf_fini(&j->acc.items);
    j->acc.items = reply;
}

static void keys_finish(struct akv_cmd_job *cj, struct akv_buf *out)
{
    struct keys_job *j = container_of(cj, struct keys_job, base);
    struct akv_cmd_env *env = j->env;
    uint64_t us = (now_ns() - cj->t0) / 1000;
    int rc = j->acc.rc, failed = rc < 0;

    if (out) {
        size_t mark = out->len;
        if (rc == -E2BIG) {
            rc = akv_reply_errorf(out,
                                  "ERR KEYS reply would exceed the client output buffer "
                                  "hard limit (%llu bytes); use SCAN",
                                  env->config->obuf_hard);
        } else if (rc == 0 && out->len == 0) {
            struct akv_buf t = *out; /* nothing waits before it: hand it over */
            *out = j->acc.items;
            j->acc.items = t;
        } else if (rc == 0) {
            rc = akv_buf_append(out, j->acc.items.p, j->acc.items.len);
        }
        if (rc < 0)
            failed = akv_cmd_reply_cut_to_oom(out, mark);
    }
    akv_cmd_job_account(env, cj, us, failed);
    akv_store_snap_release(env->store, &j->snap);
    akv_glob_free((struct akv_glob *)j->acc.glob);
    akv_buf_fini(&j->acc.items);
    free(j);
}

int akv_cmd_do_keys(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_glob *g = NULL;
    struct keys_job *j;
    int rc = compile_pattern(ctx, &ctx->argv[1], &g);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    j = calloc(1, sizeof(*j));
    if (!j) {
        akv_glob_free(g);
        return reply_oom(ctx->out);
    }
    j->base.pool.work = keys_work;
    j->base.finish = keys_finish;
    j->env = env;
    j->store = env->store;
    j->acc.glob = g;
    j->acc.limit = env->config->obuf_hard;
    akv_buf_init(&j->acc.items);
    akv_store_snap_take(env->store, &j->snap);
    ctx->job = &j->base;
    return 0;
}

int akv_cmd_do_scan(struct akv_cmd_ctx *ctx)
{
    struct keys_acc acc = {0};
    struct akv_glob *g = NULL;
    uint64_t cursor, count = SCAN_DEFAULT_COUNT, next;
    int type_ok = 1;
    char num[24];
    int rc;

    if (parse_u64(&ctx->argv[1], &cursor) < 0)
        return akv_reply_error(ctx->out, "ERR invalid cursor");
    for (size_t i = 2; i < ctx->argc; i += 2) {
        if (i + 1 >= ctx->argc)
            break;
        if (arg_is(&ctx->argv[i], "COUNT")) {
            if (parse_u64(&ctx->argv[i + 1], &count) < 0 || count == 0 || count > 1u << 20)
                return akv_reply_error(ctx->out,
                                       "ERR COUNT must be an integer between 1 and 1048576");
        } else if (arg_is(&ctx->argv[i], "TYPE")) {
            /* Every value is a string. */
            type_ok = arg_is(&ctx->argv[i + 1], "string");
        } else if (!arg_is(&ctx->argv[i], "MATCH")) {
            return reply_syntax(ctx);
        }
    }
    if (ctx->argc % 2 != 0)
        return reply_syntax(ctx);
    /* The last MATCH counts, as in Redis; compiled once options are valid. */
    for (size_t i = ctx->argc - 2; i >= 2; i -= 2) {
        if (arg_is(&ctx->argv[i], "MATCH")) {
            rc = compile_pattern(ctx, &ctx->argv[i + 1], &g);
            if (rc != 0)
                return rc < 0 ? rc : 0;
            break;
        }
    }
    if (count > SCAN_STEP_MAX)
        count = SCAN_STEP_MAX;
    acc.glob = g;
    akv_buf_init(&acc.items);
    next = akv_store_iter(ctx->env->store, cursor, (size_t)count, keys_cb, &acc);
    akv_glob_free(g);
    if (!type_ok) {
        acc.items.len = 0;
        acc.n = 0;
    }
    snprintf(num, sizeof(num), "%" PRIu64, next);
    rc = acc.rc;
    rc = rc ? rc : akv_reply_array(ctx->out, 2);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, num);
    rc = rc ? rc : akv_reply_array(ctx->out, acc.n);
    rc = rc ? rc : akv_buf_append(ctx->out, acc.items.p, acc.items.len);
    akv_buf_fini(&acc.items);
    return rc;
}
