/*
 * cmd-keys.c - the keyspace commands: strings (SET and its options, GET,
 * MSET, MGET, SETNX, GETSET, GETDEL, GETEX), keys (DEL, UNLINK, EXISTS,
 * RENAME, COPY, MOVE, KEYS, SCAN, DBSIZE), expiry (EXPIRE and its kin, TTL,
 * PERSIST, EXPIRETIME), databases (SELECT, SWAPDB, FLUSHDB, FLUSHALL) and
 * the active expiry cycle.
 *
 * Every change goes through akv_cmd_key_put/del/expire (or a flush), which
 * reserve room in the AOF first (so that once the store has changed,
 * logging cannot fail; see persist.h), change the store, log, and tell
 * WATCH. A command that changes several keys (MSET, RENAME, MOVE, ...) logs
 * its records as one MULTI record, so a crash never leaves half of it.
 *
 * Payloads: SET key value PAYLOAD stores value as bytes that are not
 * embedded (store.h); every write that carries an existing value along
 * (COPY, RENAME, MOVE, EXPIRE and its kin, PERSIST, GETEX) keeps its kind,
 * every write of a new value without PAYLOAD (SET, MSET, SETNX, GETSET,
 * ...) stores an embedded one, which makes a payload entry an ordinary one
 * again.
 *
 * Expiry: an entry whose time has come is invisible at once (store.h); a
 * lookup here deletes it (lazy expiry) and the cycle deletes the others, a
 * bounded time per loop turn, each deletion logged as a DEL so that replay
 * never depends on the clock going forward. In cluster mode neither
 * deletes: the leader proposes the deletions (cmd-cluster.c). Times are absolute (ms since
 * the epoch) in the store and the AOF.
 *
 * Writes are checked against max-key-len, max-value-len, maxkeys and
 * maxmemory before they touch the store. KEYS runs on the pool over a
 * snapshot (its cost grows with the store); SCAN looks at a bounded number
 * of entries a call.
 *
 * Threading: the loop thread (cmd.h); the KEYS job's work on a worker,
 * reading only the job and its snapshot.
 */
#include "server/cmd-impl.h"

#include <pthread.h>
#include <stdatomic.h>

/* The largest expiry time accepted, in ms: about the year 292,000 as Redis
 * allows, but far enough from UINT64_MAX that arithmetic never wraps. */
#define EXPIRE_MAX_MS ((uint64_t)INT64_MAX / 2)

/* ------------------------------------------------------------------------
 * The write path.
 */

void akv_cmd_clock(struct akv_cmd_env *env)
{
    struct timespec ts;

    if (env->clock_ms) {
        env->now_ms = env->clock_ms();
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    env->now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int key_del(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen, int touch);

/* Deletes an entry whose time has come, as a DEL. WATCH is not told: a
 * connection that watched the key live finds it gone at EXEC
 * (cmd-multi.c), and for one that watched it already expired its deletion
 * is no change, as in Redis. */
static void expire_now(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen)
{
    char copy[AKV_TEXT_MAX];

    /* key may point into the store: copy it before the store changes. */
    if (klen > sizeof(copy))
        return;
    memcpy(copy, key, klen);
    if (key_del(env, db, copy, klen, 0) == 1)
        env->stats.expired_keys++;
}

int akv_cmd_key_lookup(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                       struct akv_store_found *f)
{
    int st = akv_store_find(env->dbs[db], key, klen, f);

    if (st == AKV_STORE_EXPIRED) {
        /* In a cluster only applied entries change the store: the
         * leader's expiry cycle deletes it (cmd-cluster.c). */
        if (!env->cluster)
            expire_now(env, db, key, klen);
        return AKV_STORE_ABSENT;
    }
    return st;
}

int akv_cmd_key_put_ex(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                       const char *val, size_t vlen, uint64_t expire, int payload, char *err,
                       size_t errlen)
{
    int rc = akv_persist_reserve(env->persist, AKV_AOF_PUT, klen, vlen);

    if (rc == 0)
        rc = akv_store_put_ex(env->dbs[db], key, klen, val, vlen, expire,
                              payload ? AKV_STORE_PAYLOAD : 0, err, errlen);
    if (rc < 0)
        return rc;
    akv_persist_log_put_ex(env->persist, db, key, klen, val, vlen, expire, payload);
    akv_cmd_watch_touch(env, db, key, klen);
    return 0;
}

int akv_cmd_key_put(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                    const char *val, size_t vlen, uint64_t expire, char *err, size_t errlen)
{
    return akv_cmd_key_put_ex(env, db, key, klen, val, vlen, expire, 0, err, errlen);
}

static int key_del(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen, int touch)
{
    int rc = akv_persist_reserve(env->persist, AKV_AOF_DELETE, klen, 0);

    if (rc == 0)
        rc = akv_store_del(env->dbs[db], key, klen);
    if (rc < 0)
        return rc;
    if ((akv_persist_log_del(env->persist, db, key, klen, rc) || rc) && touch)
        akv_cmd_watch_touch(env, db, key, klen);
    return rc;
}

int akv_cmd_key_del(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen)
{
    return key_del(env, db, key, klen, 1);
}

int akv_cmd_key_expire(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                       uint64_t expire)
{
    struct akv_store_found f;
    int rc;

    if (akv_cmd_key_lookup(env, db, key, klen, &f) != AKV_STORE_LIVE)
        return 0;
    if (f.expire == expire) {
        /* Nothing to log, but as in Redis a time set (EXPIRE, GETEX EX...)
         * touches the key for WATCH even when it stays the same; removing
         * a time there is not (GETEX PERSIST) does not. */
        if (expire != 0)
            akv_cmd_watch_touch(env, db, key, klen);
        return 1;
    }
    if (expire != 0 && expire <= env->now_ms)
        /* A time in the past deletes the key, as in Redis. */
        return akv_cmd_key_del(env, db, key, klen);
    rc = akv_persist_reserve(env->persist, AKV_AOF_PUT, klen, f.vlen);
    if (rc == 0)
        rc = akv_store_expire_set(env->dbs[db], key, klen, expire);
    if (rc <= 0)
        return rc;
    /* The value is read again: f.val may have moved with the new slot. */
    akv_store_find(env->dbs[db], key, klen, &f);
    akv_persist_log_put_ex(env->persist, db, key, klen, f.val, f.vlen, expire, f.payload);
    akv_cmd_watch_touch(env, db, key, klen);
    return 1;
}

int akv_cmd_key_room(struct akv_cmd_ctx *ctx, size_t adding)
{
    const struct akv_config *cfg = ctx->env->config;
    int rc;

    /* A committed log entry is applied whatever this node's limits: the
     * node that proposed it checked maxmemory (cmd-cluster.c). */
    if (ctx->env->applying)
        return 0;
    /* As in Redis, a write is refused while the store is over maxmemory,
     * even one that would replace a value; reads, DEL and FLUSHALL go on. */
    if (cfg->maxmemory > 0 && stores_memory_used(ctx->env) > cfg->maxmemory) {
        rc = akv_reply_error(ctx->out, "OOM command not allowed when used memory > 'maxmemory'.");
        return rc < 0 ? rc : 1;
    }
    /* maxkeys counts keys, so replacing a value is always allowed. */
    if (adding > 0 && cfg->maxkeys > 0 && stores_count(ctx->env) + adding > (size_t)cfg->maxkeys) {
        rc = akv_reply_error(ctx->out,
                             "OOM command not allowed when the number of keys >= 'maxkeys'.");
        return rc < 0 ? rc : 1;
    }
    return 0;
}

/* Checks the lengths of a key and a value against max-key-len and
 * max-value-len. Returns 0, or 1 once the error reply is written, or
 * -ENOMEM. */
static int check_lengths(struct akv_cmd_ctx *ctx, const struct akv_slice *k,
                         const struct akv_slice *v)
{
    const struct akv_config *cfg = ctx->env->config;
    int rc = 0;

    if (k->len > (size_t)cfg->max_key_len)
        rc = akv_reply_errorf(ctx->out, "ERR key is too long (%zu bytes; max-key-len is %d)",
                              k->len, cfg->max_key_len);
    else if (v && v->len > (size_t)cfg->max_value_len)
        rc = akv_reply_errorf(ctx->out, "ERR value is too long (%zu bytes; max-value-len is %d)",
                              v->len, cfg->max_value_len);
    else
        return 0;
    return rc < 0 ? rc : 1;
}

/* The reply to a put that failed. */
static int reply_put_error(struct akv_cmd_ctx *ctx, int rc, const char *err)
{
    if (rc == -ENOMEM || rc == -E2BIG)
        return reply_write_failed(ctx->out, rc);
    return akv_reply_errorf(ctx->out, "ERR %s", err[0] ? err : "invalid key or value");
}

/* A database number for SELECT, MOVE, SWAPDB, COPY DB: 0 when valid, else
 * 1 once the error reply is written (or -ENOMEM). notint: the error for
 * a number that is not an integer (NULL: Redis's usual one). */
static int parse_db_or(struct akv_cmd_ctx *ctx, const struct akv_slice *a, uint32_t *db,
                       const char *notint)
{
    int64_t v;
    int rc;

    if (parse_i64(a, &v) < 0)
        rc = notint ? akv_reply_error(ctx->out, notint) : reply_not_integer(ctx);
    else if (v < 0 || v >= (int64_t)ctx->env->ndbs)
        rc = akv_reply_error(ctx->out, "ERR DB index is out of range");
    else {
        *db = (uint32_t)v;
        return 0;
    }
    return rc < 0 ? rc : 1;
}

static int parse_db(struct akv_cmd_ctx *ctx, const struct akv_slice *a, uint32_t *db)
{
    return parse_db_or(ctx, a, db, NULL);
}

/* A relative or absolute time given in seconds or milliseconds, as an
 * absolute time in ms. Returns 0; -ERANGE when it would overflow or is out
 * of range; -EINVAL when it is not an integer. positive: the amount must
 * be above 0 (SET EX and the like). */
static int parse_when(const struct akv_cmd_env *env, const struct akv_slice *a, int unit_ms,
                      int absolute, int positive, int64_t *out)
{
    int64_t v;

    if (parse_i64(a, &v) < 0)
        return -EINVAL;
    if (positive && v <= 0)
        return -ERANGE;
    if (v > (int64_t)(EXPIRE_MAX_MS / (uint64_t)unit_ms) ||
        v < -(int64_t)(EXPIRE_MAX_MS / (uint64_t)unit_ms))
        return -ERANGE;
    v *= unit_ms;
    if (!absolute)
        v += (int64_t)env->now_ms;
    if (v > (int64_t)EXPIRE_MAX_MS)
        return -ERANGE;
    *out = v;
    return 0;
}

static int reply_invalid_expire(struct akv_cmd_ctx *ctx)
{
    char sb[AKV_QUOTE_BUF], lb[AKV_QUOTE_BUF];

    return akv_reply_errorf(ctx->out, "ERR invalid expire time in '%s' command",
                            lower(show(&ctx->argv[0], sb), lb, sizeof(lb)));
}

/* ------------------------------------------------------------------------
 * Strings.
 */

enum {
    SET_NX = 1 << 0,
    SET_XX = 1 << 1,
    SET_GET = 1 << 2,
    SET_KEEPTTL = 1 << 3,
    SET_TIME = 1 << 4, /* EX, PX, EXAT or PXAT */
    SET_PERSIST = 1 << 5,
    SET_PAYLOAD = 1 << 6,
};

/* Parses the options of SET (from argv[3]) or GETEX (from argv[2]).
 * Returns 0, or 1 once an error reply is written, or -ENOMEM. */
static int parse_set_opts(struct akv_cmd_ctx *ctx, size_t from, int getex, unsigned *flags,
                          uint64_t *expire)
{
    static const struct {
        const char *name;
        int unit_ms, absolute;
    } times[] = {{"EX", 1000, 0}, {"PX", 1, 0}, {"EXAT", 1000, 1}, {"PXAT", 1, 1}};
    int rc;

    *flags = 0;
    *expire = 0;
    for (size_t i = from; i < ctx->argc; i++) {
        const struct akv_slice *a = &ctx->argv[i];
        size_t t;
        for (t = 0; t < sizeof(times) / sizeof(times[0]); t++)
            if (arg_is(a, times[t].name))
                break;
        if (t < sizeof(times) / sizeof(times[0])) {
            int64_t when;
            if (*flags & (SET_TIME | SET_KEEPTTL | SET_PERSIST) || i + 1 >= ctx->argc)
                return reply_syntax(ctx) < 0 ? -ENOMEM : 1;
            rc = parse_when(ctx->env, &ctx->argv[++i], times[t].unit_ms, times[t].absolute, 1,
                            &when);
            if (rc == -EINVAL)
                return reply_not_integer(ctx) < 0 ? -ENOMEM : 1;
            if (rc < 0)
                return reply_invalid_expire(ctx) < 0 ? -ENOMEM : 1;
            *expire = (uint64_t)when;
            *flags |= SET_TIME;
        } else if (!getex && arg_is(a, "NX") && !(*flags & SET_XX)) {
            *flags |= SET_NX;
        } else if (!getex && arg_is(a, "XX") && !(*flags & SET_NX)) {
            *flags |= SET_XX;
        } else if (!getex && arg_is(a, "GET")) {
            *flags |= SET_GET;
        } else if (!getex && arg_is(a, "KEEPTTL") && !(*flags & SET_TIME)) {
            *flags |= SET_KEEPTTL;
        } else if (getex && arg_is(a, "PERSIST") && !(*flags & SET_TIME)) {
            *flags |= SET_PERSIST;
        } else if (!getex && arg_is(a, "PAYLOAD")) {
            *flags |= SET_PAYLOAD;
        } else {
            return reply_syntax(ctx) < 0 ? -ENOMEM : 1;
        }
    }
    return 0;
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL] [PAYLOAD] */
int akv_cmd_do_set(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    uint32_t db = (uint32_t)ctx->sess->db;
    const struct akv_slice *k = &ctx->argv[1], *v = &ctx->argv[2];
    struct akv_store_found f;
    char err[256] = "", *old = NULL;
    size_t oldlen = 0;
    uint64_t expire;
    unsigned flags;
    int rc, live;

    rc = parse_set_opts(ctx, 3, 0, &flags, &expire);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = check_lengths(ctx, k, v);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    /* A plain SET needs no lookup (the store replaces the key, expired or
     * not); one with conditions, or counted against maxkeys, does. */
    if (flags & (SET_NX | SET_XX | SET_GET | SET_KEEPTTL) || env->config->maxkeys > 0)
        live = akv_cmd_key_lookup(env, db, k->p, k->len, &f) == AKV_STORE_LIVE;
    else
        live = 1;
    rc = akv_cmd_key_room(ctx, !live);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if ((flags & SET_NX && live) || (flags & SET_XX && !live))
        return flags & SET_GET && live ? akv_reply_bulk(ctx->out, f.val, f.vlen)
                                       : akv_reply_null(ctx->out, ctx->sess->resp);
    if (flags & SET_KEEPTTL && live)
        expire = f.expire;
    if (flags & SET_GET && live) {
        /* The old value, copied: the store is about to replace it. */
        old = malloc(f.vlen > 0 ? f.vlen : 1);
        if (!old)
            return reply_oom(ctx->out);
        memcpy(old, f.val, f.vlen);
        oldlen = f.vlen;
    }
    rc = akv_cmd_key_put_ex(env, db, k->p, k->len, v->p, v->len, expire, !!(flags & SET_PAYLOAD),
                            err, sizeof(err));
    if (rc < 0)
        rc = reply_put_error(ctx, rc, err);
    else if (flags & SET_GET)
        rc =
            old ? akv_reply_bulk(ctx->out, old, oldlen) : akv_reply_null(ctx->out, ctx->sess->resp);
    else
        rc = akv_reply_status(ctx->out, "OK");
    free(old);
    return rc;
}

int akv_cmd_do_setnx(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    uint32_t db = (uint32_t)ctx->sess->db;
    const struct akv_slice *k = &ctx->argv[1], *v = &ctx->argv[2];
    struct akv_store_found f;
    char err[256] = "";
    int rc = check_lengths(ctx, k, v);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (akv_cmd_key_lookup(env, db, k->p, k->len, &f) == AKV_STORE_LIVE)
        return akv_reply_int(ctx->out, 0);
    rc = akv_cmd_key_room(ctx, 1);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = akv_cmd_key_put(env, db, k->p, k->len, v->p, v->len, 0, err, sizeof(err));
    return rc < 0 ? reply_put_error(ctx, rc, err) : akv_reply_int(ctx->out, 1);
}

int akv_cmd_do_get(struct akv_cmd_ctx *ctx)
{
    struct akv_store_found f;

    if (akv_cmd_key_lookup(ctx->env, (uint32_t)ctx->sess->db, ctx->argv[1].p, ctx->argv[1].len,
                           &f) == AKV_STORE_LIVE) {
        ctx->env->stats.keyspace_hits++;
        return akv_reply_bulk(ctx->out, f.val, f.vlen);
    }
    ctx->env->stats.keyspace_misses++;
    return akv_reply_null(ctx->out, ctx->sess->resp);
}

/* GETSET key value: SET key value GET. */
int akv_cmd_do_getset(struct akv_cmd_ctx *ctx)
{
    struct akv_slice argv[4] = {{"SET", 3}, ctx->argv[1], ctx->argv[2], {"GET", 3}};
    struct akv_cmd_ctx sub = *ctx;

    sub.argc = 4;
    sub.argv = argv;
    return akv_cmd_do_set(&sub);
}

int akv_cmd_do_getdel(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    uint32_t db = (uint32_t)ctx->sess->db;
    const struct akv_slice *k = &ctx->argv[1];
    struct akv_store_found f;
    size_t mark = ctx->out->len;
    int rc;

    if (akv_cmd_key_lookup(env, db, k->p, k->len, &f) != AKV_STORE_LIVE)
        return akv_reply_null(ctx->out, ctx->sess->resp);
    /* The reply first: the value lives in the store until the DEL. */
    rc = akv_reply_bulk(ctx->out, f.val, f.vlen);
    if (rc < 0)
        return rc;
    rc = akv_cmd_key_del(env, db, k->p, k->len);
    if (rc < 0) {
        ctx->out->len = mark; /* not deleted: an error instead */
        return reply_write_failed(ctx->out, rc);
    }
    return 0;
}

/* GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST] */
int akv_cmd_do_getex(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    uint32_t db = (uint32_t)ctx->sess->db;
    const struct akv_slice *k = &ctx->argv[1];
    struct akv_store_found f;
    uint64_t expire;
    unsigned flags;
    size_t mark = ctx->out->len;
    int rc = parse_set_opts(ctx, 2, 1, &flags, &expire);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (akv_cmd_key_lookup(env, db, k->p, k->len, &f) != AKV_STORE_LIVE)
        return akv_reply_null(ctx->out, ctx->sess->resp);
    rc = akv_reply_bulk(ctx->out, f.val, f.vlen);
    if (rc < 0 || !(flags & (SET_TIME | SET_PERSIST)))
        return rc;
    rc = akv_cmd_key_expire(env, db, k->p, k->len, flags & SET_PERSIST ? 0 : expire);
    if (rc < 0) {
        ctx->out->len = mark; /* the time unchanged: an error instead */
        return reply_write_failed(ctx->out, rc);
    }
    return 0;
}

/* MSET key value [key value ...], MSETNX likewise: all or nothing, logged
 * as one record. */
int akv_cmd_do_mset(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    uint32_t db = (uint32_t)ctx->sess->db;
    int nx = ctx->argv[0].len == 6; /* MSETNX */
    struct akv_store_found f;
    size_t adding = 0, bytes = 0;
    char err[256] = "";
    int rc;

    if (ctx->argc % 2 != 1)
        return reply_wrong_arity(ctx);
    if ((ctx->argc - 1) / 2 > (size_t)env->config->max_batch_size)
        return akv_reply_errorf(ctx->out,
                                "ERR too many pairs: %zu, at most %d (max-batch-size) in one "
                                "MSET; send several",
                                (ctx->argc - 1) / 2, env->config->max_batch_size);
    /* Check everything first, so that a bad pair changes nothing. */
    for (size_t i = 1; i < ctx->argc; i += 2) {
        char kids_err[256];
        uint32_t ids[AKV_PHRASE_WORDS_MAX];
        size_t n;
        rc = check_lengths(ctx, &ctx->argv[i], &ctx->argv[i + 1]);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        for (int part = 0; part < 2; part++) {
            const struct akv_slice *a = &ctx->argv[i + (size_t)part];
            rc = akv_embed_words(env->vocab, a->p, a->len, ids, &n, kids_err, sizeof(kids_err));
            if (rc < 0)
                return reply_put_error(ctx, rc, kids_err);
        }
        /* As for a plain SET, a key is looked up only when it matters:
         * MSETNX, or maxkeys counting the keys added. */
        if (!nx && env->config->maxkeys == 0)
            continue;
        if (akv_cmd_key_lookup(env, db, ctx->argv[i].p, ctx->argv[i].len, &f) != AKV_STORE_LIVE)
            adding++;
        else if (nx)
            return akv_reply_int(ctx->out, 0);
    }
    rc = akv_cmd_key_room(ctx, adding);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    /* All or nothing: so its records must fit one AOF record (persist.h). */
    for (size_t i = 1; i < ctx->argc; i += 2)
        bytes += akv_aof_record_size(AKV_AOF_PUT, ctx->argv[i].len, ctx->argv[i + 1].len);
    if (!akv_persist_multi_fits(env->persist, bytes))
        return reply_write_failed(ctx->out, -E2BIG);
    akv_persist_multi_begin(env->persist);
    for (size_t i = 1; i < ctx->argc && rc == 0; i += 2)
        rc = akv_cmd_key_put(env, db, ctx->argv[i].p, ctx->argv[i].len, ctx->argv[i + 1].p,
                             ctx->argv[i + 1].len, 0, err, sizeof(err));
    akv_persist_multi_end(env->persist);
    if (rc < 0)
        return reply_put_error(ctx, rc, err);
    return nx ? akv_reply_int(ctx->out, 1) : akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_mget(struct akv_cmd_ctx *ctx)
{
    size_t mark = ctx->out->len;
    int rc = akv_reply_array(ctx->out, ctx->argc - 1);

    for (size_t i = 1; i < ctx->argc && rc == 0; i++) {
        struct akv_store_found f;
        if (akv_cmd_key_lookup(ctx->env, (uint32_t)ctx->sess->db, ctx->argv[i].p, ctx->argv[i].len,
                               &f) == AKV_STORE_LIVE) {
            ctx->env->stats.keyspace_hits++;
            rc = akv_reply_bulk(ctx->out, f.val, f.vlen);
        } else {
            ctx->env->stats.keyspace_misses++;
            rc = akv_reply_null(ctx->out, ctx->sess->resp);
        }
        if (rc == 0 && reply_over_limit(ctx))
            break; /* the connection closes for it; stop growing the reply */
    }
    if (rc < 0)
        ctx->out->len = mark;
    return rc;
}

/* ------------------------------------------------------------------------
 * Keys.
 */

/* DEL and UNLINK: entries are small, so freeing them at once costs no more
 * than handing them to a thread would. The deletions of one call are one
 * AOF record, as MSET's writes are: a crash never leaves half of them. */
int akv_cmd_do_del(struct akv_cmd_ctx *ctx)
{
    int64_t n = 0;
    int rc = 0;

    akv_persist_multi_begin(ctx->env->persist);
    for (size_t i = 1; i < ctx->argc && rc >= 0; i++) {
        struct akv_store_found f;
        const struct akv_slice *k = &ctx->argv[i];
        int live = akv_cmd_key_lookup(ctx->env, (uint32_t)ctx->sess->db, k->p, k->len, &f);
        rc = akv_cmd_key_del(ctx->env, (uint32_t)ctx->sess->db, k->p, k->len);
        n += rc > 0 && live;
    }
    akv_persist_multi_end(ctx->env->persist);
    if (rc < 0)
        return reply_write_failed(ctx->out, rc);
    return akv_reply_int(ctx->out, n);
}

int akv_cmd_do_exists(struct akv_cmd_ctx *ctx)
{
    int64_t n = 0;

    /* As in Redis, a key named twice counts twice. */
    for (size_t i = 1; i < ctx->argc; i++) {
        struct akv_store_found f;
        n += akv_cmd_key_lookup(ctx->env, (uint32_t)ctx->sess->db, ctx->argv[i].p, ctx->argv[i].len,
                                &f) == AKV_STORE_LIVE;
    }
    return akv_reply_int(ctx->out, n);
}

/* Copies key k of database from into database to under the name nk (the
 * value and expiry time). replace: an existing nk is overwritten. del:
 * then deletes k (RENAME, MOVE). All of it is one AOF record. Returns 1
 * when done, 0 when k is absent, 2 when nk exists and !replace; or a
 * negative errno (err says why for -ENOENT/-EINVAL). */
static int copy_key(struct akv_cmd_ctx *ctx, uint32_t from, const struct akv_slice *k, uint32_t to,
                    const struct akv_slice *nk, int replace, int del, char *err, size_t errlen)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_store_found f, g;
    char *val;
    int rc;

    if (akv_cmd_key_lookup(env, from, k->p, k->len, &f) != AKV_STORE_LIVE)
        return 0;
    if (from == to && k->len == nk->len && memcmp(k->p, nk->p, k->len) == 0)
        return replace ? 1 : 2; /* RENAME k k: nothing to do; RENAMENX k k: 0, as in Redis */
    if (akv_cmd_key_lookup(env, to, nk->p, nk->len, &g) == AKV_STORE_LIVE && !replace)
        return 2;
    val = malloc(f.vlen > 0 ? f.vlen : 1);
    if (!val)
        return -ENOMEM;
    memcpy(val, f.val, f.vlen);
    akv_persist_multi_begin(env->persist);
    rc = akv_cmd_key_put_ex(env, to, nk->p, nk->len, val, f.vlen, f.expire, f.payload, err, errlen);
    if (rc == 0 && del)
        rc = akv_cmd_key_del(env, from, k->p, k->len);
    akv_persist_multi_end(env->persist);
    free(val);
    return rc < 0 ? rc : 1;
}

/* RENAME key newkey, RENAMENX key newkey */
int akv_cmd_do_rename(struct akv_cmd_ctx *ctx)
{
    int nx = ctx->argv[0].len == 8;
    uint32_t db = (uint32_t)ctx->sess->db;
    char err[256] = "";
    int rc = check_lengths(ctx, &ctx->argv[2], NULL);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = copy_key(ctx, db, &ctx->argv[1], db, &ctx->argv[2], !nx, 1, err, sizeof(err));
    if (rc == 0)
        return akv_reply_error(ctx->out, "ERR no such key");
    if (rc < 0)
        return reply_put_error(ctx, rc, err);
    if (nx)
        return akv_reply_int(ctx->out, rc == 1);
    return akv_reply_status(ctx->out, "OK");
}

/* COPY source destination [DB n] [REPLACE] */
int akv_cmd_do_copy(struct akv_cmd_ctx *ctx)
{
    uint32_t db = (uint32_t)ctx->sess->db, to = db;
    int replace = 0, rc;
    char err[256] = "";

    for (size_t i = 3; i < ctx->argc; i++) {
        if (arg_is(&ctx->argv[i], "REPLACE")) {
            replace = 1;
        } else if (arg_is(&ctx->argv[i], "DB") && i + 1 < ctx->argc) {
            rc = parse_db(ctx, &ctx->argv[++i], &to);
            if (rc != 0)
                return rc < 0 ? rc : 0;
        } else {
            return reply_syntax(ctx);
        }
    }
    rc = check_lengths(ctx, &ctx->argv[2], NULL);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (to == db && ctx->argv[1].len == ctx->argv[2].len &&
        memcmp(ctx->argv[1].p, ctx->argv[2].p, ctx->argv[1].len) == 0)
        return akv_reply_error(ctx->out, "ERR source and destination objects are the same");
    rc = akv_cmd_key_room(ctx, 1);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = copy_key(ctx, db, &ctx->argv[1], to, &ctx->argv[2], replace, 0, err, sizeof(err));
    if (rc < 0)
        return reply_put_error(ctx, rc, err);
    return akv_reply_int(ctx->out, rc == 1);
}

/* MOVE key db */
int akv_cmd_do_move(struct akv_cmd_ctx *ctx)
{
    uint32_t db = (uint32_t)ctx->sess->db, to;
    char err[256] = "";
    int rc = parse_db(ctx, &ctx->argv[2], &to);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (to == db)
        return akv_reply_error(ctx->out, "ERR source and destination objects are the same");
    rc = copy_key(ctx, db, &ctx->argv[1], to, &ctx->argv[1], 0, 1, err, sizeof(err));
    if (rc < 0)
        return reply_put_error(ctx, rc, err);
    return akv_reply_int(ctx->out, rc == 1);
}

int akv_cmd_do_dbsize(struct akv_cmd_ctx *ctx)
{
    return akv_reply_int(ctx->out, (int64_t)akv_store_count(cur_store(ctx)));
}

/* ------------------------------------------------------------------------
 * Expiry.
 */

/* EXPIRE key s, PEXPIRE key ms, EXPIREAT key t, PEXPIREAT key t-ms, each
 * with NX | XX | GT | LT. */
int akv_cmd_do_expire(struct akv_cmd_ctx *ctx)
{
    const struct akv_slice *cmd = &ctx->argv[0];
    int unit_ms = (cmd->p[0] == 'P' || cmd->p[0] == 'p') ? 1 : 1000;
    int absolute = cmd->len >= 8; /* EXPIREAT, PEXPIREAT */
    uint32_t db = (uint32_t)ctx->sess->db;
    int nx = 0, xx = 0, gt = 0, lt = 0, rc;
    struct akv_store_found f;
    int64_t when;

    for (size_t i = 3; i < ctx->argc; i++) {
        if (arg_is(&ctx->argv[i], "NX"))
            nx = 1;
        else if (arg_is(&ctx->argv[i], "XX"))
            xx = 1;
        else if (arg_is(&ctx->argv[i], "GT"))
            gt = 1;
        else if (arg_is(&ctx->argv[i], "LT"))
            lt = 1;
        else
            return akv_reply_errorf(ctx->out, "ERR Unsupported option %.*s",
                                    (int)(ctx->argv[i].len > 64 ? 64 : ctx->argv[i].len),
                                    ctx->argv[i].p);
    }
    if (nx && (xx || gt || lt))
        return akv_reply_error(
            ctx->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    if (gt && lt)
        return akv_reply_error(ctx->out,
                               "ERR GT and LT options at the same time are not compatible");
    rc = parse_when(ctx->env, &ctx->argv[2], unit_ms, absolute, 0, &when);
    if (rc == -EINVAL)
        return reply_not_integer(ctx);
    if (rc < 0)
        return reply_invalid_expire(ctx);
    if (akv_cmd_key_lookup(ctx->env, db, ctx->argv[1].p, ctx->argv[1].len, &f) != AKV_STORE_LIVE)
        return akv_reply_int(ctx->out, 0);
    /* As in Redis, no time counts as an infinite one for GT and LT. */
    if ((nx && f.expire != 0) || (xx && f.expire == 0) ||
        (gt && (f.expire == 0 || (int64_t)f.expire >= when)) ||
        (lt && f.expire != 0 && (int64_t)f.expire <= when))
        return akv_reply_int(ctx->out, 0);
    rc = akv_cmd_key_expire(ctx->env, db, ctx->argv[1].p, ctx->argv[1].len,
                            when <= 0 ? 1 : (uint64_t)when);
    if (rc < 0)
        return reply_write_failed(ctx->out, rc);
    return akv_reply_int(ctx->out, 1);
}

/* TTL key, PTTL key: -2 absent, -1 no time. */
int akv_cmd_do_ttl(struct akv_cmd_ctx *ctx)
{
    int ms = ctx->argv[0].len == 4;
    struct akv_store_found f;
    uint64_t left;

    if (akv_cmd_key_lookup(ctx->env, (uint32_t)ctx->sess->db, ctx->argv[1].p, ctx->argv[1].len,
                           &f) != AKV_STORE_LIVE)
        return akv_reply_int(ctx->out, -2);
    if (f.expire == 0)
        return akv_reply_int(ctx->out, -1);
    left = f.expire - ctx->env->now_ms; /* live, so the time is ahead */
    return akv_reply_int(ctx->out, (int64_t)(ms ? left : (left + 500) / 1000));
}

/* EXPIRETIME key, PEXPIRETIME key: the absolute time, -2 absent, -1 none. */
int akv_cmd_do_expiretime(struct akv_cmd_ctx *ctx)
{
    int ms = ctx->argv[0].len == 11;
    struct akv_store_found f;

    if (akv_cmd_key_lookup(ctx->env, (uint32_t)ctx->sess->db, ctx->argv[1].p, ctx->argv[1].len,
                           &f) != AKV_STORE_LIVE)
        return akv_reply_int(ctx->out, -2);
    if (f.expire == 0)
        return akv_reply_int(ctx->out, -1);
    return akv_reply_int(ctx->out, (int64_t)(ms ? f.expire : f.expire / 1000));
}

int akv_cmd_do_persist(struct akv_cmd_ctx *ctx)
{
    uint32_t db = (uint32_t)ctx->sess->db;
    struct akv_store_found f;
    int rc;

    if (akv_cmd_key_lookup(ctx->env, db, ctx->argv[1].p, ctx->argv[1].len, &f) != AKV_STORE_LIVE ||
        f.expire == 0)
        return akv_reply_int(ctx->out, 0);
    rc = akv_cmd_key_expire(ctx->env, db, ctx->argv[1].p, ctx->argv[1].len, 0);
    return rc < 0 ? reply_write_failed(ctx->out, rc) : akv_reply_int(ctx->out, 1);
}

int akv_cmd_expire_cycle(struct akv_cmd_env *env, unsigned budget_us)
{
    uint64_t t0 = now_ns(), budget = (uint64_t)budget_us * 1000;
    size_t n = 0;

    /* While CLIENT PAUSE holds writes back, so does the cycle, as in
     * Redis (an expired key stays invisible meanwhile). */
    if (env->pause.end_ms != 0 && t0 / 1000000u < env->pause.end_ms)
        return 0;
    /* Nor while the AOF replays: the stores are not whole, and nothing
     * can be logged yet. */
    if (env->loading)
        return 0;
    if (env->cluster)
        return akv_cmd_cluster_expire_cycle(env);
    akv_cmd_clock(env);
    for (uint32_t db = 0; db < env->ndbs; db++) {
        const char *key;
        size_t klen;
        while (akv_store_first_expired(env->dbs[db], &key, &klen)) {
            size_t before = akv_store_expires(env->dbs[db]);
            expire_now(env, db, key, klen);
            if (akv_store_expires(env->dbs[db]) == before)
                return 1; /* out of memory for the AOF record: try again later */
            /* The clock is read every 16 deletions (about 20 µs). */
            if (++n % 16 == 0 && now_ns() - t0 >= budget)
                return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Databases.
 */

int akv_cmd_do_select(struct akv_cmd_ctx *ctx)
{
    uint32_t db;
    int rc = parse_db(ctx, &ctx->argv[1], &db);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    ctx->sess->db = (int)db;
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_swapdb(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    uint32_t a, b;
    struct akv_store *t;
    /* Redis's texts for SWAPDB's indexes that are not integers. */
    int rc = parse_db_or(ctx, &ctx->argv[1], &a, "ERR invalid first DB index");

    if (rc == 0)
        rc = parse_db_or(ctx, &ctx->argv[2], &b, "ERR invalid second DB index");
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (a != b) {
        rc = akv_persist_reserve(env->persist, AKV_AOF_SWAPDB, 0, 0);
        if (rc < 0)
            return reply_write_failed(ctx->out, rc);
        /* Connections keep their numbers, so they now see the other data;
         * a query already running keeps the store it took a snapshot of. */
        t = env->dbs[a];
        env->dbs[a] = env->dbs[b];
        env->dbs[b] = t;
        akv_persist_log_swapdb(env->persist, a, b);
        akv_cmd_watch_swapped(env, a, b);
    }
    return akv_reply_status(ctx->out, "OK");
}

/* A thread freeing one flushed store. */
struct akv_reaper {
    struct akv_reaper *next;
    pthread_t thread;
    struct akv_store *store;
    atomic_int done;
};

static void *reaper_main(void *arg)
{
    struct akv_reaper *r = arg;

    akv_store_destroy(r->store);
    atomic_store(&r->done, 1);
    return NULL;
}

void akv_cmd_reap(struct akv_cmd_env *env, int wait)
{
    struct akv_reaper **l = &env->reapers;
    size_t kept = 0;

    for (size_t i = 0; i < env->ndead; i++) {
        struct akv_store *s = env->dead[i];
        struct akv_reaper *r;
        if (akv_store_has_readers(s) && !wait) {
            env->dead[kept++] = s;
            continue;
        }
        r = wait ? NULL : calloc(1, sizeof(*r));
        if (r) {
            r->store = s;
            atomic_init(&r->done, 0);
            if (pthread_create(&r->thread, NULL, reaper_main, r) == 0) {
                r->next = env->reapers;
                env->reapers = r;
                continue;
            }
            free(r);
        }
        akv_store_destroy(s); /* at shutdown, or without a thread: here */
    }
    env->ndead = kept;
    if (wait) {
        free(env->dead);
        env->dead = NULL;
        env->dead_cap = 0;
    }
    l = &env->reapers;
    while (*l) {
        struct akv_reaper *r = *l;
        if (!wait && !atomic_load(&r->done)) {
            l = &r->next;
            continue;
        }
        pthread_join(r->thread, NULL);
        *l = r->next;
        free(r);
    }
}

/* Empties database db: a new empty store takes its place at once, and the
 * old one is freed off the loop thread once the queries reading it are
 * done (akv_cmd_reap), so a flush of a million keys costs the loop what an
 * empty store costs. Without memory for that, the store is emptied in
 * place. */
static void flush_db(struct akv_cmd_env *env, uint32_t db)
{
    struct akv_store *fresh = NULL;

    if (akv_store_count(env->dbs[db]) == 0)
        return;
    if (env->ndead == env->dead_cap) {
        size_t cap = env->dead_cap ? env->dead_cap * 2 : 16;
        struct akv_store **p = realloc(env->dead, cap * sizeof(*p));
        if (p) {
            env->dead = p;
            env->dead_cap = cap;
        }
    }
    if (env->ndead < env->dead_cap && akv_store_create(&fresh, env->vocab) == 0) {
        akv_store_set_clock(fresh, &env->now_ms);
        env->dead[env->ndead++] = env->dbs[db];
        env->dbs[db] = fresh;
        return;
    }
    akv_store_flush(env->dbs[db]);
}

/* FLUSHDB and FLUSHALL take ASYNC or SYNC; both are the same here: the
 * memory is freed in the background either way. */
static int flush_args_ok(const struct akv_cmd_ctx *ctx)
{
    return ctx->argc == 1 ||
           (ctx->argc == 2 && (arg_is(&ctx->argv[1], "ASYNC") || arg_is(&ctx->argv[1], "SYNC")));
}

int akv_cmd_do_flushdb(struct akv_cmd_ctx *ctx)
{
    uint32_t db = (uint32_t)ctx->sess->db;
    int rc;

    if (!flush_args_ok(ctx))
        return reply_syntax(ctx);
    rc = akv_persist_reserve(ctx->env->persist, AKV_AOF_FLUSHDB, 0, 0);
    if (rc < 0)
        return reply_write_failed(ctx->out, rc);
    flush_db(ctx->env, db);
    akv_persist_log_flushdb(ctx->env->persist, db);
    akv_cmd_watch_flushed(ctx->env, db);
    akv_cmd_reap(ctx->env, 0);
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_flushall(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    int rc;

    if (!flush_args_ok(ctx))
        return reply_syntax(ctx);
    rc = akv_persist_reserve(env->persist, AKV_AOF_FLUSHALL, 0, 0);
    if (rc < 0)
        return reply_write_failed(ctx->out, rc);
    for (uint32_t db = 0; db < env->ndbs; db++) {
        flush_db(env, db);
        akv_cmd_watch_flushed(env, db);
    }
    akv_persist_log_flushall(env->persist);
    akv_cmd_reap(env, 0);
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
    struct akv_store *store;
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
    akv_store_snap_release(j->store, &j->snap);
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
    j->store = cur_store(ctx);
    j->acc.glob = g;
    j->acc.limit = env->config->obuf_hard;
    akv_buf_init(&j->acc.items);
    akv_store_snap_take(j->store, &j->snap);
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
    next = akv_store_iter(cur_store(ctx), cursor, (size_t)count, keys_cb, &acc);
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
