/*
 * cmd-inspect.c - the commands that look at entries without changing them,
 * for redis-cli's operator modes (--bigkeys, --memkeys, --scan) and other
 * tools: TYPE, STRLEN, TOUCH, RANDOMKEY, OBJECT and MEMORY.
 *
 * Every entry is a string (a word or phrase and its value), so TYPE says
 * "string" and STRLEN is the value's length. OBJECT ENCODING tells a
 * payload value (SET ... PAYLOAD: bytes that are not embedded) apart:
 * "payload"; an embedded value gets Redis's string encodings. There are no access times or
 * frequencies (no LRU or LFU eviction): TOUCH only counts, and OBJECT
 * IDLETIME and FREQ say so instead of making figures up. Each is O(1) on
 * the loop thread but RANDOMKEY, whose worst case is in attnkv/store.h.
 *
 * Threading: the loop thread (cmd.h).
 */
#include "server/cmd-impl.h"

#include <limits.h>

#include <sys/random.h>

/* Bytes of a value that Redis keeps in one allocation with its object
 * header (OBJ_ENCODING_EMBSTR_SIZE_LIMIT). */
#define EMBSTR_MAX 44

/* The value under argv[i] of the connection's database, or 0 when absent
 * (an expired key is deleted on the way, as every lookup does). */
static int lookup_found(struct akv_cmd_ctx *ctx, size_t i, struct akv_store_found *f)
{
    return akv_cmd_key_lookup(ctx->env, (uint32_t)ctx->sess->db, ctx->argv[i].p, ctx->argv[i].len,
                              f) == AKV_STORE_LIVE;
}

static int lookup(struct akv_cmd_ctx *ctx, size_t i, const char **val, size_t *vlen)
{
    struct akv_store_found f;

    if (!lookup_found(ctx, i, &f))
        return 0;
    *val = f.val;
    *vlen = f.vlen;
    return 1;
}

int akv_cmd_do_type(struct akv_cmd_ctx *ctx)
{
    const char *v;
    size_t vl;

    return akv_reply_status(ctx->out, lookup(ctx, 1, &v, &vl) ? "string" : "none");
}

int akv_cmd_do_strlen(struct akv_cmd_ctx *ctx)
{
    const char *v;
    size_t vl = 0;

    return akv_reply_int(ctx->out, lookup(ctx, 1, &v, &vl) ? (int64_t)vl : 0);
}

/* TOUCH: how many of the keys exist (a key named twice counts twice, as in
 * Redis); there is no access time to update. */
int akv_cmd_do_touch(struct akv_cmd_ctx *ctx)
{
    int64_t n = 0;
    const char *v;
    size_t vl;

    for (size_t i = 1; i < ctx->argc; i++)
        n += lookup(ctx, i, &v, &vl);
    return akv_reply_int(ctx->out, n);
}

int akv_cmd_do_randomkey(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    const char *k;
    size_t kl;

    if (env->rng == 0 &&
        getrandom(&env->rng, sizeof(env->rng), GRND_NONBLOCK) != (ssize_t)sizeof(env->rng))
        env->rng = (uint64_t)now_ns() | 1;
    /* A Weyl sequence; the store mixes it. A key whose time has come is
     * deleted and another drawn, a bounded number of times (as Redis). */
    for (int tries = 0; tries < 100; tries++) {
        struct akv_store_found f;
        env->rng += 0x9e3779b97f4a7c15u;
        if (!akv_store_random_key(cur_store(ctx), env->rng, &k, &kl))
            break;
        if (akv_store_find(cur_store(ctx), k, kl, &f) == AKV_STORE_LIVE)
            return akv_reply_bulk(ctx->out, k, kl);
        (void)akv_cmd_key_lookup(env, (uint32_t)ctx->sess->db, k, kl, &f); /* deletes it */
    }
    return akv_reply_null(ctx->out, resp_of(ctx));
}

/* ---- OBJECT ------------------------------------------------------------- */

/* Redis's encoding of a string value: "int" for a canonical 64-bit integer
 * ("-12", not "012" or "+1"), "embstr" up to 44 bytes, "raw" beyond. */
static const char *encoding_of(const char *v, size_t n)
{
    long long x;

    if (n > 0 && n <= 20 && akv_parse_ll(v, n, LLONG_MIN, LLONG_MAX, &x) == 0) {
        char canon[24];
        if ((size_t)snprintf(canon, sizeof(canon), "%lld", x) == n && memcmp(canon, v, n) == 0)
            return "int";
    }
    return n <= EMBSTR_MAX ? "embstr" : "raw";
}

int akv_cmd_do_object(struct akv_cmd_ctx *ctx)
{
    const struct akv_subcmd *sc;
    struct akv_store_found f;
    int rc = akv_cmd_subcommand(ctx, &sc);

    if (rc)
        return rc < 0 ? rc : 0;
    if (strcmp(sc->name, "HELP") == 0)
        return akv_cmd_reply_sub_help(ctx, "OBJECT");
    /* As in Redis, an absent key is nil whatever is asked. */
    if (!lookup_found(ctx, 2, &f))
        return akv_reply_null(ctx->out, resp_of(ctx));
    if (strcmp(sc->name, "ENCODING") == 0)
        return akv_reply_bulk_str(ctx->out, f.payload ? "payload" : encoding_of(f.val, f.vlen));
    if (strcmp(sc->name, "REFCOUNT") == 0)
        return akv_reply_int(ctx->out, 1);
    if (strcmp(sc->name, "FREQ") == 0)
        return akv_reply_error(ctx->out,
                               "ERR attnkv does not track access frequencies (there is no LFU "
                               "eviction)");
    return akv_reply_error(ctx->out,
                           "ERR attnkv does not track access times (there is no LRU eviction)");
}

/* ---- MEMORY ------------------------------------------------------------- */

/* MEMORY USAGE key [SAMPLES count]: SAMPLES is checked as Redis checks it
 * and has nothing to sample here. */
static int memory_usage(struct akv_cmd_ctx *ctx)
{
    size_t bytes;

    for (size_t j = 3; j < ctx->argc; j++) {
        int64_t samples;
        if (arg_is(&ctx->argv[j], "SAMPLES") && j + 1 < ctx->argc) {
            if (parse_i64(&ctx->argv[j + 1], &samples) < 0)
                return reply_not_integer(ctx);
            if (samples < 0)
                return reply_syntax(ctx);
            j++;
        } else {
            return reply_syntax(ctx);
        }
    }
    {
        const char *v;
        size_t vl;
        bytes = lookup(ctx, 2, &v, &vl)
                    ? akv_store_entry_memory(cur_store(ctx), ctx->argv[2].p, ctx->argv[2].len)
                    : 0;
    }
    if (bytes == 0)
        return akv_reply_null(ctx->out, resp_of(ctx));
    return akv_reply_int(ctx->out, (int64_t)bytes);
}

/* MEMORY STATS: a map with Redis's names where they mean the same. */
static int memory_stats(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd_env *env = ctx->env;
    int resp = resp_of(ctx);
    struct akv_persist_info pi;
    size_t used = akv_cmd_used_memory(env), keys = stores_count(env);
    size_t peak = used > env->used_memory_peak ? used : env->used_memory_peak;
    size_t dataset = stores_memory(env);
    size_t clients = env->clients_memory ? env->clients_memory(env) : 0;
    int rc;

    akv_persist_info(env->persist, &pi);
    rc = akv_reply_map(ctx->out, resp, 11);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "peak.allocated");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)peak);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "total.allocated");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)used);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "clients.normal");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)clients);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "aof.buffer");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)pi.pending_bytes);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "slowlog.bytes");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)env->slowlog.mem);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "keys.count");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)keys);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "keys.bytes-per-key");
    rc = rc ? rc : akv_reply_int(ctx->out, keys ? (int64_t)(dataset / keys) : 0);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "dataset.bytes");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)dataset);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "dataset.percentage");
    rc = rc ? rc
            : akv_reply_double(ctx->out, resp, used ? 100.0 * (double)dataset / (double)used : 0);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "peak.percentage");
    rc = rc ? rc : akv_reply_double(ctx->out, resp, peak ? 100.0 * (double)used / (double)peak : 0);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "vocabulary.bytes");
    rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)akv_vocab_bytes(env->vocab));
    return rc;
}

/* MEMORY DOCTOR: the limits that are close, or that nothing is. */
static int memory_doctor(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd_env *env = ctx->env;
    const struct akv_config *cfg = env->config;
    size_t store = stores_memory_used(env);
    size_t clients = env->clients_memory ? env->clients_memory(env) : 0;
    struct akv_buf b;
    int rc = 0, found = 0;

    akv_buf_init(&b);
    if (cfg->maxmemory > 0 && store * 10 >= cfg->maxmemory * 9) {
        found = 1;
        rc = akv_buf_printf(&b,
                            "The store uses %zu bytes, %.0f%% of maxmemory (%llu): SET is "
                            "refused beyond it.\n",
                            store, 100.0 * (double)store / (double)cfg->maxmemory, cfg->maxmemory);
    }
    if (rc == 0 && cfg->maxmemory_clients > 0 && clients * 2 >= cfg->maxmemory_clients) {
        found = 1;
        rc = akv_buf_printf(&b,
                            "Client buffers hold %zu bytes, over half of maxmemory-clients "
                            "(%llu): CLIENT LIST shows which clients (omem, qbuf).\n",
                            clients, cfg->maxmemory_clients);
    }
    if (rc == 0 && !found)
        rc = akv_buf_printf(&b, "No memory problems found: the store and the client buffers "
                                "are well within their limits.\n");
    rc = rc ? rc : akv_reply_verbatim(ctx->out, resp_of(ctx), b.p, b.len);
    akv_buf_fini(&b);
    return rc;
}

int akv_cmd_do_memory(struct akv_cmd_ctx *ctx)
{
    const struct akv_subcmd *sc;
    int rc = akv_cmd_subcommand(ctx, &sc);

    if (rc)
        return rc < 0 ? rc : 0;
    if (strcmp(sc->name, "USAGE") == 0)
        return memory_usage(ctx);
    if (strcmp(sc->name, "STATS") == 0)
        return memory_stats(ctx);
    if (strcmp(sc->name, "DOCTOR") == 0)
        return memory_doctor(ctx);
    return akv_cmd_reply_sub_help(ctx, "MEMORY");
}
