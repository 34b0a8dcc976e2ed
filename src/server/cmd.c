/*
 * cmd.c - the command table and every command's handler.
 *
 * Design
 * ------
 * Handlers run on the loop thread, which owns the store, the stats and the
 * connection's output buffer, so they need no locks. A handler either writes
 * one complete reply, or (QUERY, EXPLAIN, NEIGHBORS) does the cheap part on
 * the loop thread and leaves a job in ctx->job:
 *   - parse the options and embed the text (hash lookups only), so a bad
 *     option or an unknown word is answered at once;
 *   - take a store snapshot (QUERY, EXPLAIN) right there, after every write
 *     the loop thread has applied so far, which is what makes a QUERY see
 *     every SET acknowledged before it was dispatched;
 *   - the worker (query_batch) reads only the job: its vector and options, the
 *     immutable vocabulary and the snapshot, and writes only the job's result.
 *     It gets the QUERY, EXPLAIN and NEIGHBORS jobs queued together as one
 *     batch (see src/pool.c) and ranks them with one pass over the
 *     vocabulary (akv_query_batch_*), which reads it once for all of them
 *     and gives each exactly the answer it would get alone, so batching
 *     never changes a reply; idle workers join that pass;
 *   - query_finish, back on the loop thread, formats the reply (EXPLAIN's
 *     key/value text comes from the snapshot, which is still held), releases
 *     the snapshot and frees the job. The snapshot is released even when the
 *     client went away, so the store can reclaim what it kept for it.
 *
 * Limits and security: SET checks max-key-len, max-value-len, maxkeys and
 * maxmemory before it touches the store; dispatch refuses every command but
 * AUTH, PING, QUIT and HELP (AKV_CMD_NOAUTH) until a connection that must
 * authenticate has done so. The password is compared in time that does not
 * depend on its contents, and no reply, log line or INFO field shows it.
 *
 * Replies are all-or-nothing: if writing one fails for lack of memory, the
 * buffer is cut back to where the reply began and "-ERR out of memory" takes
 * its place, so a client never sees half an array.
 */
#include "server/cmd.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/resource.h>

#include "attnkv/embed.h"
#include "attnkv/nbcache.h"
#include "attnkv/query.h"
#include "engine/attn.h"
#include "util/glob.h"
#include "util/text.h"
#include "engine/rank.h"

#include "attnkv/version.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* EXPLAIN's default number of entries, whatever config.query.k says. */
#define EXPLAIN_DEFAULT 5
/* SCAN's default COUNT, as in Redis. */
#define SCAN_DEFAULT_COUNT 10
/* The most patterns one CONFIG GET may match against every directive, and
 * the most names one COMMAND INFO may describe: enough for any client, and
 * few enough that one request stays well under a millisecond. */
#define CONFIG_GET_PATTERNS_MAX 64
#define COMMAND_INFO_MAX 1024
/* The most entries one SCAN call looks at, whatever its COUNT: a COUNT is a
 * hint (as in Redis), and this keeps one call to a millisecond or two. */
#define SCAN_STEP_MAX 4096

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int arg_is(const struct akv_slice *a, const char *word)
{
    return strlen(word) == a->len && strncasecmp(a->p, word, a->len) == 0;
}

/* Client bytes for an error message (util/text.h). */
static const char *show(const struct akv_slice *a, char buf[AKV_QUOTE_BUF])
{
    return akv_quote(buf, a->p, a->len);
}

static int parse_u64(const struct akv_slice *a, uint64_t *out)
{
    unsigned long long v;

    if (akv_parse_ull(a->p, a->len, UINT64_MAX, &v) < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* An ASCII lower-case copy of s, cut to fit. */
static const char *lower(const char *s, char *buf, size_t cap)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < cap; i++)
        buf[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    buf[i] = '\0';
    return buf;
}

static int reply_oom(struct akv_buf *out)
{
    return akv_reply_error(out, "ERR out of memory");
}

static int reply_wrong_arity(struct akv_cmd_ctx *ctx)
{
    char sb[AKV_QUOTE_BUF], lb[AKV_QUOTE_BUF];

    return akv_reply_errorf(ctx->out, "ERR wrong number of arguments for '%s' command",
                            lower(show(&ctx->argv[0], sb), lb, sizeof(lb)));
}

static int reply_syntax(struct akv_cmd_ctx *ctx)
{
    return akv_reply_error(ctx->out, "ERR syntax error");
}

static int reply_pattern_too_long(struct akv_cmd_ctx *ctx, const struct akv_slice *pat)
{
    return akv_reply_errorf(ctx->out, "ERR pattern too long (%zu bytes; at most %d)", pat->len,
                            AKV_GLOB_PATTERN_MAX);
}

/* Whether the reply being written has passed the output hard limit: the
 * connection will be closed for it, so a handler that builds a long reply
 * stops growing it there. */
static int reply_over_limit(const struct akv_cmd_ctx *ctx)
{
    unsigned long long hard = ctx->env->config->obuf_hard;

    return hard > 0 && ctx->out->len > hard;
}

/* printf into a growable text buffer (INFO). */
__attribute__((format(printf, 2, 3))) static int bufprintf(struct akv_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if (akv_buf_reserve(b, (size_t)n + 1) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* ------------------------------------------------------------------------
 * Connection and server commands.
 */

static int cmd_ping(struct akv_cmd_ctx *ctx)
{
    if (ctx->argc > 2)
        return reply_wrong_arity(ctx);
    if (ctx->argc == 2)
        return akv_reply_bulk(ctx->out, ctx->argv[1].p, ctx->argv[1].len);
    return akv_reply_status(ctx->out, "PONG");
}

static int cmd_echo(struct akv_cmd_ctx *ctx)
{
    return akv_reply_bulk(ctx->out, ctx->argv[1].p, ctx->argv[1].len);
}

static int cmd_quit(struct akv_cmd_ctx *ctx)
{
    ctx->close_after_reply = 1;
    return akv_reply_status(ctx->out, "OK");
}

/* Whether attempt equals secret, in time that depends only on the attempt's
 * length: every byte of the attempt is compared (against the secret
 * repeated), with no early exit. */
static int secret_equal(const char *secret, const struct akv_slice *attempt)
{
    size_t slen = strlen(secret);
    volatile unsigned char diff = (unsigned char)(slen != attempt->len);

    if (slen == 0)
        return 0;
    for (size_t i = 0; i < attempt->len; i++)
        diff |= (unsigned char)((unsigned char)attempt->p[i] ^ (unsigned char)secret[i % slen]);
    return diff == 0;
}

/* AUTH password, or the Redis 6 form AUTH username password, where "default"
 * is the only user. Redis's replies, word for word. */
static int cmd_auth(struct akv_cmd_ctx *ctx)
{
    const char *pass = ctx->env->config->requirepass;
    const struct akv_slice *user = ctx->argc == 3 ? &ctx->argv[1] : NULL;
    int user_ok;

    if (ctx->argc > 3)
        return reply_syntax(ctx);
    /* The user name is not secret; compare it plainly. */
    user_ok = !user || (user->len == 7 && memcmp(user->p, "default", 7) == 0);
    if (!pass) {
        if (!user)
            return akv_reply_error(ctx->out,
                                   "ERR AUTH <password> called without any password configured "
                                   "for the default user. Are you sure your configuration is "
                                   "correct?");
        /* Without a password the default user takes any, as in Redis. */
        if (user_ok) {
            ctx->authenticated = 1;
            return akv_reply_status(ctx->out, "OK");
        }
    } else if (secret_equal(pass, &ctx->argv[ctx->argc - 1]) && user_ok) {
        ctx->authenticated = 1;
        return akv_reply_status(ctx->out, "OK");
    }
    /* A failed AUTH leaves an authenticated connection authenticated, as in
     * Redis. */
    return akv_reply_error(ctx->out,
                           "WRONGPASS invalid username-password pair or user is disabled.");
}

static int cmd_select(struct akv_cmd_ctx *ctx)
{
    uint64_t db;

    if (parse_u64(&ctx->argv[1], &db) < 0)
        return akv_reply_error(ctx->out, "ERR value is not an integer or out of range");
    if (db != 0)
        return akv_reply_error(ctx->out, "ERR DB index is out of range (attnkv has only db 0)");
    return akv_reply_status(ctx->out, "OK");
}

static int cmd_help(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd *t = akv_cmd_table();
    size_t n = 0;
    int rc;

    while (t[n].name)
        n++;
    rc = akv_reply_array(ctx->out, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char line[256];
        snprintf(line, sizeof(line), "%s - %s", t[i].usage, t[i].summary);
        rc = akv_reply_bulk_str(ctx->out, line);
    }
    return rc;
}

/* One COMMAND entry in the Redis 7 layout: name, arity, flags, first key,
 * last key, key step, ACL categories, tips, key specs, subcommands. redis-cli
 * reads the first six to drive its hints and completion. */
static int reply_command_entry(struct akv_buf *out, const struct akv_cmd *c)
{
    static const struct {
        unsigned bit;
        const char *name;
    } fl[] = {
        {AKV_CMD_WRITE, "write"},
        {AKV_CMD_READONLY, "readonly"},
        {AKV_CMD_FAST, "fast"},
        {AKV_CMD_ADMIN, "admin"},
    };
    char lb[32];
    size_t nflags = 0, i;
    int rc;

    for (i = 0; i < sizeof(fl) / sizeof(fl[0]); i++)
        nflags += (c->flags & fl[i].bit) != 0;

    rc = akv_reply_array(out, 10);
    rc = rc ? rc : akv_reply_bulk_str(out, lower(c->name, lb, sizeof(lb)));
    rc = rc ? rc : akv_reply_int(out, c->arity);
    rc = rc ? rc : akv_reply_array(out, nflags);
    for (i = 0; rc == 0 && i < sizeof(fl) / sizeof(fl[0]); i++)
        if (c->flags & fl[i].bit)
            rc = akv_reply_status(out, fl[i].name);
    rc = rc ? rc : akv_reply_int(out, c->firstkey);
    rc = rc ? rc : akv_reply_int(out, c->lastkey);
    rc = rc ? rc : akv_reply_int(out, c->keystep);
    for (i = 0; rc == 0 && i < 4; i++)
        rc = akv_reply_array(out, 0);
    return rc;
}

static int cmd_command(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd *t = akv_cmd_table();
    size_t n = 0, i;
    int rc;

    while (t[n].name)
        n++;
    if (ctx->argc == 1) {
        rc = akv_reply_array(ctx->out, n);
        for (i = 0; rc == 0 && i < n; i++)
            rc = reply_command_entry(ctx->out, &t[i]);
        return rc;
    }
    if (arg_is(&ctx->argv[1], "COUNT") && ctx->argc == 2)
        return akv_reply_int(ctx->out, (int64_t)n);
    if (arg_is(&ctx->argv[1], "DOCS"))
        /* redis-cli 7 asks for documentation to show hints; it copes with
         * an empty answer. */
        return akv_reply_array(ctx->out, 0);
    if (arg_is(&ctx->argv[1], "LIST") && ctx->argc == 2) {
        rc = akv_reply_array(ctx->out, n);
        for (i = 0; rc == 0 && i < n; i++) {
            char lb[32];
            rc = akv_reply_bulk_str(ctx->out, lower(t[i].name, lb, sizeof(lb)));
        }
        return rc;
    }
    if (arg_is(&ctx->argv[1], "INFO")) {
        if (ctx->argc - 2 > COMMAND_INFO_MAX)
            return akv_reply_errorf(ctx->out, "ERR COMMAND INFO takes at most %d names",
                                    COMMAND_INFO_MAX);
        rc = akv_reply_array(ctx->out, ctx->argc - 2);
        for (i = 2; rc == 0 && i < ctx->argc && !reply_over_limit(ctx); i++) {
            const struct akv_cmd *c = akv_cmd_lookup(ctx->argv[i].p, ctx->argv[i].len);
            rc = c ? reply_command_entry(ctx->out, c) : akv_reply_nil(ctx->out);
        }
        return rc;
    }
    {
        char sb[AKV_QUOTE_BUF];
        return akv_reply_errorf(ctx->out,
                                "ERR unknown subcommand or wrong number of arguments for "
                                "'%s'; COMMAND takes COUNT, DOCS, INFO or LIST",
                                show(&ctx->argv[1], sb));
    }
}

/* Names that clients (redis-benchmark) ask for although attnkv has no such
 * setting; answering them quietly keeps those clients from warning. */
static const struct {
    const char *name;
    const char *value;
} config_compat[] = {
    {"save", ""},
};

/* CONFIG SET name value [name value ...]: all or nothing, like Redis 7.
 * Only the run-time directives that are not paths may change
 * (akv_config_client_settable), each at most once per call, so a request
 * holds at most one pair per directive; each new value is validated by the
 * directive table, then made to take effect through env->apply_setting. If
 * any step fails, the values set so far are put back from copies of the old
 * ones. */
static int config_set(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    const char *const *names = akv_config_names();
    size_t npairs = (ctx->argc - 2) / 2, ndirectives = 0, done = 0, failed, i;
    char **old = NULL;
    char name[64], value_err[512] = "", shown[AKV_QUOTE_BUF];
    int rc = 0;

    if (ctx->argc < 4 || (ctx->argc - 2) % 2 != 0)
        return reply_wrong_arity(ctx);
    while (names[ndirectives])
        ndirectives++;
    if (npairs > ndirectives)
        return akv_reply_errorf(ctx->out,
                                "ERR CONFIG SET takes at most %zu name value pairs (each "
                                "directive once)",
                                ndirectives);
    for (i = 0; i < npairs; i++) {
        const struct akv_slice *n = &ctx->argv[2 + 2 * i];
        char probe[8];
        show(n, shown);
        if (n->len >= sizeof(name) || memchr(n->p, '\0', n->len))
            return akv_reply_errorf(ctx->out, "ERR Unknown option '%s' for CONFIG SET", shown);
        memcpy(name, n->p, n->len);
        name[n->len] = '\0';
        if (akv_config_get(env->config, name, probe, sizeof(probe)) == -ENOENT)
            return akv_reply_errorf(ctx->out, "ERR Unknown option '%s' for CONFIG SET", shown);
        if (akv_config_is_path(name))
            return akv_reply_errorf(ctx->out,
                                    "ERR CONFIG SET '%s' is a path: set it in the configuration "
                                    "file and reload it with SIGHUP",
                                    shown);
        if (!akv_config_client_settable(name))
            return akv_reply_errorf(ctx->out,
                                    "ERR CONFIG SET '%s' cannot be changed at run time (edit "
                                    "the configuration file and restart attnkvd)",
                                    shown);
        for (size_t j = 0; j < i; j++) {
            const struct akv_slice *e = &ctx->argv[2 + 2 * j];
            if (e->len == n->len && strncasecmp(e->p, n->p, n->len) == 0)
                return akv_reply_errorf(ctx->out, "ERR CONFIG SET '%s': duplicate parameter",
                                        shown);
        }
    }
    old = calloc(npairs, sizeof(*old));
    if (!old)
        return reply_oom(ctx->out);
    for (done = 0; done < npairs; done++) {
        const struct akv_slice *n = &ctx->argv[2 + 2 * done];
        const struct akv_slice *v = &ctx->argv[3 + 2 * done];
        char cur[4096];
        char *value;
        const char *argv1[1];

        memcpy(name, n->p, n->len);
        name[n->len] = '\0';
        if (akv_config_get(env->config, name, cur, sizeof(cur)) < 0) {
            rc = -EINVAL;
            snprintf(value_err, sizeof(value_err), "its current value is too long");
            break;
        }
        old[done] = strdup(cur);
        value = malloc(v->len + 1);
        if (!old[done] || !value) {
            free(value);
            rc = -ENOMEM;
            break;
        }
        memcpy(value, v->p, v->len);
        value[v->len] = '\0';
        argv1[0] = value;
        rc = memchr(v->p, '\0', v->len) ? -EINVAL : 0;
        if (rc < 0)
            snprintf(value_err, sizeof(value_err), "NUL byte in the value");
        else
            rc = akv_config_set(env->config, name, 1, argv1, value_err, sizeof(value_err));
        free(value);
        if (rc == 0 && env->apply_setting) {
            rc = env->apply_setting(env, name, value_err, sizeof(value_err));
            if (rc < 0) {
                /* This one changed in the struct but could not take effect. */
                const char *back[1] = {old[done]};
                akv_config_set(env->config, name, 1, back, NULL, 0);
                env->apply_setting(env, name, NULL, 0);
            }
        }
        if (rc < 0)
            break;
        if (strcasecmp(name, "slowlog-max-len") == 0)
            akv_slowlog_trim(&env->slowlog, (size_t)env->config->slowlog_max_len);
    }
    failed = done;
    if (rc < 0) {
        /* Undo the ones that succeeded, newest first. */
        while (done-- > 0) {
            const struct akv_slice *n = &ctx->argv[2 + 2 * done];
            const char *back[1] = {old[done]};
            memcpy(name, n->p, n->len);
            name[n->len] = '\0';
            akv_config_set(env->config, name, 1, back, NULL, 0);
            if (env->apply_setting)
                env->apply_setting(env, name, NULL, 0);
        }
    }
    for (i = 0; i < npairs; i++)
        free(old[i]);
    free(old);
    if (rc == -ENOMEM)
        return reply_oom(ctx->out);
    if (rc < 0)
        return akv_reply_errorf(ctx->out, "ERR CONFIG SET '%s': %s",
                                show(&ctx->argv[2 + 2 * failed], shown),
                                value_err[0] ? value_err : "invalid value");
    return akv_reply_status(ctx->out, "OK");
}

/* CONFIG RESETSTAT: zeroes the counters INFO shows (not the gauges). */
static int config_resetstat(struct akv_cmd_ctx *ctx)
{
    struct akv_stats *st = &ctx->env->stats;
    uint64_t connected = st->connected_clients, jobs = st->jobs_running;

    memset(st, 0, sizeof(*st));
    st->connected_clients = connected;
    st->jobs_running = jobs;
    return akv_reply_status(ctx->out, "OK");
}

static int cmd_config(struct akv_cmd_ctx *ctx)
{
    const char *const *names = akv_config_names();
    struct akv_glob *pats[CONFIG_GET_PATTERNS_MAX];
    struct akv_buf tmp;
    size_t count = 0;
    int rc = 0;

    if (!arg_is(&ctx->argv[1], "GET")) {
        char sb[AKV_QUOTE_BUF];
        if (arg_is(&ctx->argv[1], "SET"))
            return config_set(ctx);
        if (arg_is(&ctx->argv[1], "RESETSTAT") && ctx->argc == 2)
            return config_resetstat(ctx);
        return akv_reply_errorf(ctx->out,
                                "ERR unknown CONFIG subcommand '%s' (GET, SET and RESETSTAT "
                                "are supported)",
                                show(&ctx->argv[1], sb));
    }
    if (ctx->argc < 3)
        return reply_wrong_arity(ctx);
    if (ctx->argc - 2 > CONFIG_GET_PATTERNS_MAX)
        return akv_reply_errorf(ctx->out, "ERR CONFIG GET takes at most %d patterns",
                                CONFIG_GET_PATTERNS_MAX);
    for (size_t a = 2; a < ctx->argc; a++) {
        rc = akv_glob_compile(ctx->argv[a].p, ctx->argv[a].len, 1, &pats[a - 2]);
        if (rc < 0) {
            for (size_t b = 2; b < a; b++)
                akv_glob_free(pats[b - 2]);
            return rc == -E2BIG ? reply_pattern_too_long(ctx, &ctx->argv[a]) : reply_oom(ctx->out);
        }
    }

    /* Values go to a side buffer first because the array length comes first. */
    akv_buf_init(&tmp);
    for (size_t n = 0; rc == 0 && names[n]; n++) {
        const char *name = names[n];
        int hit = 0;
        for (size_t a = 0; a < ctx->argc - 2 && !hit; a++)
            hit = akv_glob_exec(pats[a], name, strlen(name));
        if (hit) {
            char val[4096];
            if (akv_config_get(ctx->env->config, name, val, sizeof(val)) < 0)
                continue;
            rc = akv_reply_bulk_str(&tmp, name);
            rc = rc ? rc : akv_reply_bulk_str(&tmp, val);
            count++;
        }
    }
    for (size_t n = 0; rc == 0 && n < sizeof(config_compat) / sizeof(config_compat[0]); n++) {
        for (size_t a = 2; a < ctx->argc; a++) {
            if (arg_is(&ctx->argv[a], config_compat[n].name)) {
                rc = akv_reply_bulk_str(&tmp, config_compat[n].name);
                rc = rc ? rc : akv_reply_bulk_str(&tmp, config_compat[n].value);
                count++;
                break;
            }
        }
    }
    for (size_t a = 0; a < ctx->argc - 2; a++)
        akv_glob_free(pats[a]);
    rc = rc ? rc : akv_reply_array(ctx->out, count * 2);
    rc = rc ? rc : akv_buf_append(ctx->out, tmp.p, tmp.len);
    akv_buf_fini(&tmp);
    return rc;
}

static int info_server(struct akv_buf *b, const struct akv_cmd_env *env)
{
    uint64_t up = (now_ns() - env->start_ns) / 1000000000u;

    return bufprintf(b,
                     "attnkv_version:%s\r\n"
                     "arch_bits:%zu\r\n"
                     "process_id:%ld\r\n"
                     "tcp_port:%d\r\n"
                     "uptime_in_seconds:%" PRIu64 "\r\n"
                     "uptime_in_days:%" PRIu64 "\r\n"
                     "workers:%u\r\n"
                     "config_file:%s\r\n",
                     AKV_VERSION, sizeof(void *) * 8, (long)getpid(), env->tcp_port, up, up / 86400,
                     env->workers, env->config->config_file ? env->config->config_file : "");
}

static int info_clients(struct akv_buf *b, const struct akv_cmd_env *env)
{
    return bufprintf(b, "connected_clients:%" PRIu64 "\r\nmaxclients:%d\r\n",
                     env->stats.connected_clients, env->config->maxclients);
}

/* Resident set size in bytes, from /proc/self/statm; 0 if unknown. */
static size_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");

    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* "1.50M" and the like, as Redis's *_human fields. */
static const char *human(size_t n, char *buf, size_t cap)
{
    static const char units[] = "BKMGTP";
    double v = (double)n;
    size_t u = 0;

    while (v >= 1024 && u + 1 < sizeof(units) - 1) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%zuB", n);
    else
        snprintf(buf, cap, "%.2f%c", v, units[u]);
    return buf;
}

static int info_memory(struct akv_buf *b, const struct akv_cmd_env *env)
{
    struct rusage ru;
    size_t rss = rss_bytes(), peak = 0;
    char h1[32], h2[32];

    if (getrusage(RUSAGE_SELF, &ru) == 0)
        peak = (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
    return bufprintf(b,
                     "used_memory_rss:%zu\r\n"
                     "used_memory_rss_human:%s\r\n"
                     "used_memory_peak_rss:%zu\r\n"
                     "used_memory_peak_rss_human:%s\r\n"
                     "used_memory_store:%zu\r\n"
                     "used_memory_vocabulary:%zu\r\n"
                     "slowlog_entries:%zu\r\n",
                     rss, human(rss, h1, sizeof(h1)), peak, human(peak, h2, sizeof(h2)),
                     akv_store_memory(env->store), akv_vocab_bytes(env->vocab), env->slowlog.len);
}

static int info_stats(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_stats *st = &env->stats;

    return bufprintf(b,
                     "total_connections_received:%" PRIu64 "\r\n"
                     "total_commands_processed:%" PRIu64 "\r\n"
                     "total_error_replies:%" PRIu64 "\r\n"
                     "rejected_connections:%" PRIu64 "\r\n"
                     "jobs_in_flight:%" PRIu64 "\r\n"
                     "jobs_waiting:%zu\r\n"
                     "query_batches:%" PRIu64 "\r\n"
                     "query_batched_jobs:%" PRIu64 "\r\n"
                     "query_batch_max:%" PRIu64 "\r\n"
                     "query_from_lists:%" PRIu64 "\r\n"
                     "neighbour_lists:%zu\r\n",
                     st->connections_received, st->commands_processed, st->error_replies,
                     st->rejected_connections, st->jobs_running,
                     env->queue_len ? env->queue_len(env) : (size_t)0, st->query_batches,
                     st->query_batched_jobs, st->query_batch_max, st->query_from_lists,
                     env->nbcache ? akv_nbcache_count(env->nbcache) : (size_t)0);
}

static int info_latency(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_stats *st = &env->stats;
    const struct akv_hist *h = &st->query_hist;
    uint64_t p50 = akv_hist_quantile(h, 0.5), p90 = akv_hist_quantile(h, 0.9),
             p99 = akv_hist_quantile(h, 0.99), p999 = akv_hist_quantile(h, 0.999);

    return bufprintf(b,
                     "query_count:%" PRIu64 "\r\n"
                     "query_latency_mean_us:%" PRIu64 "\r\n"
                     "query_latency_max_us:%" PRIu64 "\r\n"
                     "query_latency_p50_us:%" PRIu64 "\r\n"
                     "query_latency_p90_us:%" PRIu64 "\r\n"
                     "query_latency_p99_us:%" PRIu64 "\r\n"
                     "query_latency_p999_us:%" PRIu64 "\r\n"
                     "latency_percentiles_usec_query:p50=%" PRIu64 ",p90=%" PRIu64 ",p99=%" PRIu64
                     ",p99.9=%" PRIu64 "\r\n",
                     st->query_count, st->query_count ? st->query_us_sum / st->query_count : 0,
                     st->query_us_max, p50, p90, p99, p999, p50, p90, p99, p999);
}

static int info_commandstats(struct akv_buf *b, const struct akv_cmd_env *env)
{
    const struct akv_cmd *t = akv_cmd_table();
    int rc = 0;

    for (size_t i = 0; rc == 0 && t[i].name; i++) {
        const struct akv_cmdstat *cs = &env->stats.cmd[i];
        char lb[32];
        if (cs->calls == 0 && cs->rejected == 0)
            continue;
        rc = bufprintf(b,
                       "cmdstat_%s:calls=%" PRIu64 ",usec=%" PRIu64 ",usec_per_call=%.2f"
                       ",rejected_calls=%" PRIu64 ",failed_calls=%" PRIu64 "\r\n",
                       lower(t[i].name, lb, sizeof(lb)), cs->calls, cs->usec,
                       cs->calls ? (double)cs->usec / (double)cs->calls : 0.0, cs->rejected,
                       cs->failed);
    }
    return rc;
}

static int info_store(struct akv_buf *b, const struct akv_cmd_env *env)
{
    int rc = bufprintf(b, "keys:%zu\r\nstore_memory_bytes:%zu\r\n", akv_store_count(env->store),
                       akv_store_memory(env->store));

    /* What maxmemory and maxkeys are compared with (0: no limit). */
    if (rc == 0)
        rc = bufprintf(b, "store_memory_used_bytes:%zu\r\nmaxmemory:%llu\r\nmaxkeys:%d\r\n",
                       akv_store_memory_used(env->store), env->config->maxmemory,
                       env->config->maxkeys);
    return rc;
}

static int info_keyspace(struct akv_buf *b, const struct akv_cmd_env *env)
{
    size_t keys = akv_store_count(env->store);

    /* The line Redis tools look for; Redis leaves it out for an empty db. */
    if (keys > 0)
        return bufprintf(b, "db0:keys=%zu,expires=0,avg_ttl=0\r\n", keys);
    return 0;
}

static int info_vectors(struct akv_buf *b, const struct akv_cmd_env *env)
{
    return bufprintf(b,
                     "vocabulary_file:%s\r\n"
                     "vocabulary_size:%zu\r\n"
                     "vector_dim:%" PRIu32 "\r\n"
                     "vocabulary_bytes:%zu\r\n"
                     "vocabulary_load_ms:%.1f\r\n"
                     "rank_kernel:%s\r\n"
                     "attn_kernel:%s\r\n",
                     env->vectors_path ? env->vectors_path : "", akv_vocab_count(env->vocab),
                     akv_vocab_dim(env->vocab), akv_vocab_bytes(env->vocab), env->vocab_load_ms,
                     akv_rank_kernel_name(akv_rank_kernel()), akv_attn_kernel_name());
}

static int info_persistence(struct akv_buf *b, const struct akv_cmd_env *env)
{
    struct akv_persist_info pi;

    akv_persist_info(env->persist, &pi);
    return bufprintf(b,
                     "aof_enabled:%d\r\n"
                     "aof_rewrite_in_progress:%d\r\n"
                     "aof_rewrites:%" PRIu64 "\r\n"
                     "aof_last_rewrite_status:%s\r\n"
                     "aof_last_rewrite_time_ms:%.1f\r\n"
                     "aof_current_size:%" PRIu64 "\r\n"
                     "aof_base_size:%" PRIu64 "\r\n"
                     "aof_last_write_status:%s\r\n"
                     "aof_last_write_error:%s\r\n"
                     "aof_pending_bytes:%" PRIu64 "\r\n"
                     "aof_fsync:%s\r\n"
                     "aof_replayed_records:%" PRIu64 "\r\n"
                     "aof_unembeddable_entries:%zu\r\n",
                     pi.enabled, pi.rewrite_in_progress, pi.rewrites,
                     pi.last_rewrite_ok ? "ok" : "err", pi.last_rewrite_ms, pi.current_size,
                     pi.base_size, pi.write_error ? "err" : "ok",
                     pi.write_error ? strerror(pi.write_error) : "", pi.pending_bytes,
                     pi.enabled ? akv_fsync_name(pi.fsync) : "", pi.replayed, pi.unembeddable);
}

/* The INFO sections, in the order INFO prints them. A section is one row:
 * its name (what INFO takes), its title, whether plain INFO (or INFO
 * default) includes it, and the function that writes its fields. INFO all
 * and INFO everything include every row. */
static const struct {
    const char *name, *title;
    int in_default;
    int (*fn)(struct akv_buf *b, const struct akv_cmd_env *env);
} info_sections[] = {
    {"server", "Server", 1, info_server},
    {"clients", "Clients", 1, info_clients},
    {"memory", "Memory", 1, info_memory},
    {"persistence", "Persistence", 1, info_persistence},
    {"stats", "Stats", 1, info_stats},
    {"latency", "Latency", 1, info_latency},
    {"commandstats", "Commandstats", 0, info_commandstats},
    {"store", "Store", 1, info_store},
    {"keyspace", "Keyspace", 1, info_keyspace},
    {"vectors", "Vectors", 1, info_vectors},
};

static int section_wanted(struct akv_cmd_ctx *ctx, size_t sec)
{
    if (ctx->argc == 1)
        return info_sections[sec].in_default;
    for (size_t i = 1; i < ctx->argc; i++) {
        if (arg_is(&ctx->argv[i], info_sections[sec].name) || arg_is(&ctx->argv[i], "all") ||
            arg_is(&ctx->argv[i], "everything") ||
            (arg_is(&ctx->argv[i], "default") && info_sections[sec].in_default))
            return 1;
    }
    return 0;
}

static int cmd_info(struct akv_cmd_ctx *ctx)
{
    struct akv_buf b;
    int rc = 0;

    akv_buf_init(&b);
    for (size_t i = 0; rc == 0 && i < sizeof(info_sections) / sizeof(info_sections[0]); i++) {
        if (!section_wanted(ctx, i))
            continue;
        /* Sections are separated by an empty line, as in Redis. */
        rc = bufprintf(&b, "%s# %s\r\n", b.len ? "\r\n" : "", info_sections[i].title);
        rc = rc ? rc : info_sections[i].fn(&b, ctx->env);
    }
    rc = rc ? rc : akv_reply_bulk(ctx->out, b.p ? b.p : "", b.len);
    akv_buf_fini(&b);
    return rc;
}

/* SLOWLOG GET [n] | LEN | RESET | HELP, as in Redis: GET replies the n
 * newest entries (default 10; -1 for all), each [id, unix time, duration
 * in µs, [arguments], client address, client name]. */
static int cmd_slowlog(struct akv_cmd_ctx *ctx)
{
    struct akv_slowlog *sl = &ctx->env->slowlog;
    char sb[AKV_QUOTE_BUF];

    if (arg_is(&ctx->argv[1], "LEN") && ctx->argc == 2)
        return akv_reply_int(ctx->out, (int64_t)sl->len);
    if (arg_is(&ctx->argv[1], "RESET") && ctx->argc == 2) {
        akv_slowlog_reset(sl);
        return akv_reply_status(ctx->out, "OK");
    }
    if (arg_is(&ctx->argv[1], "HELP") && ctx->argc == 2) {
        static const char *const lines[] = {
            ("SLOWLOG GET [count] - the count newest entries (default 10, -1 for all): id, "
             "unix time, microseconds, arguments, client address, client name"),
            "SLOWLOG LEN - how many entries there are",
            "SLOWLOG RESET - forget every entry",
        };
        int rc = akv_reply_array(ctx->out, 3);
        for (size_t i = 0; rc == 0 && i < 3; i++)
            rc = akv_reply_status(ctx->out, lines[i]);
        return rc;
    }
    if (arg_is(&ctx->argv[1], "GET") && ctx->argc <= 3) {
        size_t n = 10, i;
        const struct akv_slowlog_entry *e;
        int rc;

        if (ctx->argc == 3) {
            uint64_t v;
            if (ctx->argv[2].len == 2 && memcmp(ctx->argv[2].p, "-1", 2) == 0)
                n = sl->len;
            else if (parse_u64(&ctx->argv[2], &v) == 0)
                n = v < sl->len ? (size_t)v : sl->len;
            else
                return akv_reply_error(ctx->out, "ERR count should be greater than or equal to "
                                                 "-1");
        }
        if (n > sl->len)
            n = sl->len;
        rc = akv_reply_array(ctx->out, n);
        for (i = 0, e = sl->newest; rc == 0 && i < n && e && !reply_over_limit(ctx);
             i++, e = e->older) {
            rc = akv_reply_array(ctx->out, 6);
            rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)e->id);
            rc = rc ? rc : akv_reply_int(ctx->out, e->time);
            rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)e->duration_us);
            rc = rc ? rc : akv_reply_array(ctx->out, e->argc);
            for (size_t a = 0; rc == 0 && a < e->argc; a++)
                rc = akv_reply_bulk(ctx->out, e->argv[a].p, e->argv[a].len);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, e->peer);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, "");
        }
        return rc;
    }
    return akv_reply_errorf(ctx->out,
                            "ERR unknown subcommand or wrong number of arguments for '%s'; "
                            "SLOWLOG takes GET [count], LEN, RESET or HELP",
                            show(&ctx->argv[1], sb));
}

/* ------------------------------------------------------------------------
 * Key/value commands.
 */

/* Writes reserve room in the AOF first, so that once the store has
 * changed, logging the change cannot fail (see persist.h). */
static int cmd_set(struct akv_cmd_ctx *ctx)
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

static int cmd_get(struct akv_cmd_ctx *ctx)
{
    const char *val;
    size_t vlen;

    if (akv_store_get(ctx->env->store, ctx->argv[1].p, ctx->argv[1].len, &val, &vlen))
        return akv_reply_bulk(ctx->out, val, vlen);
    return akv_reply_nil(ctx->out);
}

static int cmd_del(struct akv_cmd_ctx *ctx)
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

static int cmd_exists(struct akv_cmd_ctx *ctx)
{
    int64_t n = 0;
    const char *val;
    size_t vlen;

    /* As in Redis, a key named twice counts twice. */
    for (size_t i = 1; i < ctx->argc; i++)
        n += akv_store_get(ctx->env->store, ctx->argv[i].p, ctx->argv[i].len, &val, &vlen);
    return akv_reply_int(ctx->out, n);
}

static int cmd_dbsize(struct akv_cmd_ctx *ctx)
{
    return akv_reply_int(ctx->out, (int64_t)akv_store_count(ctx->env->store));
}

static int cmd_flushall(struct akv_cmd_ctx *ctx)
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

static int cmd_bgrewriteaof(struct akv_cmd_ctx *ctx)
{
    int rc = akv_persist_rewrite_start(ctx->env->persist);

    if (rc == -ENOTSUP)
        return akv_reply_error(ctx->out, "ERR appendonly is off: there is no AOF to rewrite");
    if (rc == -EBUSY)
        return akv_reply_error(ctx->out,
                               "ERR Background append only file rewriting already in progress");
    if (rc < 0)
        return akv_reply_errorf(ctx->out, "ERR cannot start the AOF rewrite: %s", strerror(-rc));
    return akv_reply_status(ctx->out, "Background append only file rewriting started");
}

static void account(struct akv_cmd_env *env, const struct akv_cmd *c, uint64_t us, int failed,
                    struct akv_slowlog_entry *slow, size_t argc, const struct akv_slice *argv,
                    const char *peer);

/* A job's finish: counts the call that ran for us microseconds (statistics,
 * slow log) and lets go of its argument copy. */
static void job_account(struct akv_cmd_env *env, struct akv_cmd_job *cj, uint64_t us, int failed)
{
    if (cj->cmd) {
        account(env, cj->cmd, us, failed, cj->slow, 0, NULL, NULL);
        cj->slow = NULL;
    }
    akv_slowlog_entry_free(cj->slow);
}

/* A job's reply could not be written whole: cuts it back to mark and says
 * so instead. If even that fails the connection notices the short reply
 * only as a missing one; there is nothing better to send. Returns 1 (the
 * call failed). */
static int reply_cut_to_oom(struct akv_buf *out, size_t mark)
{
    out->len = mark;
    (void)reply_oom(out);
    return 1;
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
            failed = reply_cut_to_oom(out, mark);
    }
    job_account(env, cj, us, failed);
    akv_store_snap_release(env->store, &j->snap);
    akv_glob_free((struct akv_glob *)j->acc.glob);
    akv_buf_fini(&j->acc.items);
    free(j);
}

static int cmd_keys(struct akv_cmd_ctx *ctx)
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

static int cmd_scan(struct akv_cmd_ctx *ctx)
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

/* ------------------------------------------------------------------------
 * QUERY, EXPLAIN and NEIGHBORS: options here, ranking on the pool.
 */

enum job_kind { JOB_QUERY, JOB_EXPLAIN, JOB_NEIGHBORS };

struct query_job {
    struct akv_cmd_job base;
    enum job_kind kind;
    /* Read by the worker. */
    const struct akv_store *store;
    const struct akv_vocab *vocab;
    struct akv_nbcache *nbcache;
    struct akv_store_snap snap;
    struct akv_query_opts opts;
    /* Written by the worker. */
    int rc;
    size_t batch_n; /* the first job of a batch: the batch's size; others 0 */
    struct akv_query_result res;
    /* Loop thread only. */
    struct akv_cmd_env *env;
    int has_snap;
    int withscores;
    uint64_t t0;
    float q[]; /* the query vector, dim floats */
};

enum {
    OPT_COUNT = 1u << 0,
    OPT_WITHSCORES = 1u << 1,
    OPT_ATTENTION = 1u << 2,
    OPT_TEMPERATURE = 1u << 3,
    OPT_METRIC = 1u << 4,
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
                            int *withscores)
{
    char sb[AKV_QUOTE_BUF];

    for (size_t i = 2; i < ctx->argc; i++) {
        const struct akv_slice *a = &ctx->argv[i];
        const struct akv_slice *v = i + 1 < ctx->argc ? a + 1 : NULL;
        unsigned opt;

        if ((allowed & OPT_WITHSCORES) && arg_is(a, "WITHSCORES")) {
            *withscores = 1;
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
        else
            return replied(akv_reply_errorf(ctx->out, "ERR unknown option '%s' for %s",
                                            show(a, sb), cmd));
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
                return replied(akv_reply_errorf(ctx->out,
                                                "ERR unknown ATTENTION '%s' (use dot or cosine)",
                                                show(v, sb)));
        } else if (opt == OPT_TEMPERATURE) {
            double t;
            if (akv_parse_double((v)->p, (v)->len, &t) < 0 || !(t >= AKV_TEMPERATURE_MIN) ||
                !(t <= AKV_TEMPERATURE_MAX))
                return replied(akv_reply_errorf(
                    ctx->out, "ERR TEMPERATURE must be a decimal number from %g to %g, not '%s'",
                    AKV_TEMPERATURE_MIN, AKV_TEMPERATURE_MAX, show(v, sb)));
            o->temperature = t;
        } else {
            if (akv_metric_parse(v->p, v->len, &o->metric) < 0)
                return replied(akv_reply_errorf(ctx->out,
                                                "ERR unknown METRIC '%s' (use l2, cosine or dot)",
                                                show(v, sb)));
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
     * (see src/pool.c, Helping). */
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
    }
}

static int reply_hits(struct akv_buf *out, const struct akv_vocab *voc,
                      const struct akv_query_result *res, int withscores)
{
    int rc = akv_reply_array(out, res->nhits * (withscores ? 2 : 1));

    for (size_t i = 0; rc == 0 && i < res->nhits; i++) {
        size_t len;
        const char *w = akv_vocab_word(voc, res->hits[i].id, &len);
        rc = akv_reply_bulk(out, w, len);
        if (rc == 0 && withscores)
            rc = akv_reply_bulk_double(out, res->hits[i].score);
    }
    return rc;
}

static int reply_explain(struct akv_buf *out, const struct query_job *j)
{
    int rc = akv_reply_array(out, j->res.nwhy);

    for (size_t i = 0; rc == 0 && i < j->res.nwhy; i++) {
        const char *k, *v;
        size_t kl, vl;
        akv_store_entry_text(j->store, &j->snap, j->res.why[i].slot, &k, &kl, &v, &vl);
        rc = akv_reply_array(out, 3);
        rc = rc ? rc : akv_reply_bulk(out, k, kl);
        rc = rc ? rc : akv_reply_bulk(out, v, vl);
        rc = rc ? rc : akv_reply_bulk_double(out, j->res.why[i].weight);
    }
    return rc;
}

/* The slow log's copy of a call's arguments. Those of a secret command
 * (AUTH) become "(redacted)", as in Redis, so neither the password nor
 * anyone's wrong guess is ever recorded. */
static struct akv_slowlog_entry *slow_entry(const struct akv_cmd *c, size_t argc,
                                            const struct akv_slice *argv, const char *peer)
{
    struct akv_slice hidden[AKV_SLOWLOG_ARGC_MAX];

    if (!(c->flags & AKV_CMD_SECRET))
        return akv_slowlog_entry_new(argc, argv, peer);
    for (size_t i = 0; i < AKV_SLOWLOG_ARGC_MAX; i++)
        hidden[i] = i == 0 ? argv[0] : (struct akv_slice){"(redacted)", 10};
    return akv_slowlog_entry_new(argc, hidden, peer);
}

/* Counts one call of c that ran for us microseconds: the per-command
 * counters, the error count and the slow log. slow is the job's argument
 * copy (taken over: logged or freed), or NULL, in which case argv (still
 * valid for a command answered at once) is copied if the call is slow. */
static void account(struct akv_cmd_env *env, const struct akv_cmd *c, uint64_t us, int failed,
                    struct akv_slowlog_entry *slow, size_t argc, const struct akv_slice *argv,
                    const char *peer)
{
    struct akv_cmdstat *cs = &env->stats.cmd[c - akv_cmd_table()];
    int threshold = env->config->slowlog_slower_than;

    cs->calls++;
    cs->usec += us;
    if (failed) {
        cs->failed++;
        env->stats.error_replies++;
    }
    if (threshold >= 0 && us >= (uint64_t)threshold) {
        if (!slow && argv)
            slow = slow_entry(c, argc, argv, peer);
        if (slow) {
            akv_slowlog_push(&env->slowlog, slow, (int64_t)time(NULL), us,
                             (size_t)env->config->slowlog_max_len);
            slow = NULL;
        }
    }
    akv_slowlog_entry_free(slow);
}

/* Loop thread: formats the reply (while the snapshot is still held), then
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
        else if (j->kind == JOB_EXPLAIN)
            rc = reply_explain(out, j);
        else
            rc = reply_hits(out, j->vocab, &j->res, j->withscores);
        if (rc < 0)
            failed = reply_cut_to_oom(out, mark);
    }
    job_account(env, cj, us, failed);
    if (j->has_snap)
        akv_store_snap_release(env->store, &j->snap);
    free(j);
}

/* The common part of QUERY, EXPLAIN and NEIGHBORS. */
static int start_job(struct akv_cmd_ctx *ctx, enum job_kind kind)
{
    static const char *const names[] = {"QUERY", "EXPLAIN", "NEIGHBORS"};
    static const unsigned allowed[] = {
        OPT_COUNT | OPT_WITHSCORES | OPT_ATTENTION | OPT_TEMPERATURE | OPT_METRIC,
        OPT_COUNT | OPT_ATTENTION | OPT_TEMPERATURE,
        OPT_COUNT | OPT_WITHSCORES | OPT_METRIC,
    };
    struct akv_cmd_env *env = ctx->env;
    uint32_t dim = akv_vocab_dim(env->vocab);
    struct akv_query_opts o = env->config->query;
    unsigned count = kind == JOB_EXPLAIN ? EXPLAIN_DEFAULT : o.k;
    int withscores = 0;
    struct query_job *j;
    char err[256] = "";
    int rc;

    rc = parse_query_opts(ctx, names[kind], allowed[kind],
                          kind == JOB_EXPLAIN ? AKV_EXPLAIN_MAX : AKV_K_MAX, &o, &count,
                          &withscores);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (kind == JOB_EXPLAIN) {
        o.explain = count;
        o.skip_rank = 1;
    } else {
        o.k = count;
        o.explain = 0;
        o.skip_rank = 0;
    }

    j = malloc(sizeof(*j) + (size_t)dim * sizeof(float));
    if (!j)
        return reply_oom(ctx->out);
    rc = akv_embed_text(env->vocab, ctx->argv[1].p, ctx->argv[1].len, j->q, err, sizeof(err));
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
    j->kind = kind;
    j->store = env->store;
    j->vocab = env->vocab;
    j->nbcache = env->nbcache;
    j->opts = o;
    j->rc = 0;
    j->batch_n = 0;
    j->res.nhits = j->res.nwhy = 0;
    j->res.from_lists = 0;
    j->env = env;
    j->withscores = withscores;
    j->t0 = now_ns();
    j->has_snap = kind != JOB_NEIGHBORS;
    if (j->has_snap)
        akv_store_snap_take(env->store, &j->snap);
    env->stats.jobs_running++;
    ctx->job = &j->base;
    return 0;
}

static int cmd_query(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_QUERY);
}

static int cmd_explain(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_EXPLAIN);
}

static int cmd_neighbors(struct akv_cmd_ctx *ctx)
{
    return start_job(ctx, JOB_NEIGHBORS);
}

/* ------------------------------------------------------------------------
 * The table and dispatch.
 */

#define R AKV_CMD_READONLY
#define W AKV_CMD_WRITE
#define F AKV_CMD_FAST
#define S AKV_CMD_SLOW
#define A AKV_CMD_ADMIN
#define N AKV_CMD_NOAUTH

static const struct akv_cmd table[] = {
    {"PING", -1, F | N, cmd_ping, 0, 0, 0, "PING [message]", "reply PONG, or the message"},
    {"ECHO", 2, F, cmd_echo, 0, 0, 0, "ECHO message", "reply the message"},
    {"QUIT", -1, F | N, cmd_quit, 0, 0, 0, "QUIT", "reply OK and close the connection"},
    {"HELP", 1, N, cmd_help, 0, 0, 0, "HELP", "list the commands"},
    {"COMMAND", -1, 0, cmd_command, 0, 0, 0, "COMMAND [COUNT|DOCS|INFO name...|LIST]",
     "describe the commands (for redis-cli)"},
    {"CONFIG", -2, A, cmd_config, 0, 0, 0,
     "CONFIG GET pattern [pattern ...] | SET name value [name value ...] | RESETSTAT",
     "read settings (name, value pairs), change the run-time ones, or zero the INFO counters"},
    {"SLOWLOG", -2, A, cmd_slowlog, 0, 0, 0, "SLOWLOG GET [count] | LEN | RESET | HELP",
     "the commands slower than slowlog-log-slower-than microseconds, newest first"},
    {"AUTH", -2, F | N | AKV_CMD_SECRET, cmd_auth, 0, 0, 0, "AUTH [default] password",
     "authenticate the connection (when requirepass is set)"},
    {"SELECT", 2, F, cmd_select, 0, 0, 0, "SELECT 0", "accepted for clients; there is one db"},
    {"INFO", -1, 0, cmd_info, 0, 0, 0, "INFO [section ... | default | all | everything]",
     "server, clients, memory, persistence, stats, latency, commandstats, store, "
     "keyspace and vectors figures"},
    {"SET", 3, W, cmd_set, 1, 1, 1, "SET key value",
     "store value under key; every word of both must be in the vocabulary"},
    {"GET", 2, R | F, cmd_get, 1, 1, 1, "GET key", "the value stored under key, or nil"},
    {"DEL", -2, W, cmd_del, 1, -1, 1, "DEL key [key ...]", "remove keys; reply how many existed"},
    {"EXISTS", -2, R | F, cmd_exists, 1, -1, 1, "EXISTS key [key ...]",
     "how many of the keys exist"},
    {"DBSIZE", 1, R | F, cmd_dbsize, 0, 0, 0, "DBSIZE", "number of keys"},
    {"KEYS", 2, R, cmd_keys, 0, 0, 0, "KEYS pattern", "every key matching the glob pattern"},
    {"SCAN", -2, R, cmd_scan, 0, 0, 0, "SCAN cursor [MATCH pattern] [COUNT n]",
     "iterate over keys a few at a time"},
    {"FLUSHALL", -1, W, cmd_flushall, 0, 0, 0, "FLUSHALL", "remove every key"},
    {"BGREWRITEAOF", 1, A, cmd_bgrewriteaof, 0, 0, 0, "BGREWRITEAOF",
     "compact the append-only file in the background"},
    {"QUERY", -2, R | S, cmd_query, 0, 0, 0,
     "QUERY text [COUNT k] [WITHSCORES] [ATTENTION dot|cosine] [TEMPERATURE t] "
     "[METRIC l2|cosine|dot]",
     "attend over the stored keys and reply the words nearest to the blended value"},
    {"EXPLAIN", -2, R | S, cmd_explain, 0, 0, 0,
     "EXPLAIN text [COUNT n] [ATTENTION dot|cosine] [TEMPERATURE t]",
     "the n entries with the largest attention weights, as [key, value, weight]"},
    {"NEIGHBORS", -2, R | S, cmd_neighbors, 0, 0, 0,
     "NEIGHBORS text [COUNT k] [WITHSCORES] [METRIC l2|cosine|dot]",
     "the vocabulary words nearest to a word or phrase"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

#undef R
#undef W
#undef F
#undef S
#undef A
#undef N

_Static_assert(sizeof(table) / sizeof(table[0]) - 1 <= AKV_CMD_STATS_MAX,
               "raise AKV_CMD_STATS_MAX in cmd.h");

const struct akv_cmd *akv_cmd_table(void)
{
    return table;
}

const struct akv_cmd *akv_cmd_lookup(const char *name, size_t len)
{
    /* Twenty-odd entries: a linear scan with a length check beats hashing. */
    for (const struct akv_cmd *c = table; c->name; c++)
        if (strlen(c->name) == len && strncasecmp(c->name, name, len) == 0)
            return c;
    return NULL;
}

int akv_cmd_dispatch(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd *c = akv_cmd_lookup(ctx->argv[0].p, ctx->argv[0].len);
    struct akv_cmd_env *env = ctx->env;
    size_t mark = ctx->out->len;
    uint64_t t0 = now_ns();
    int rc;

    ctx->close_after_reply = 0;
    ctx->job = NULL;
    if (!c) {
        char sb[AKV_QUOTE_BUF];
        env->stats.error_replies++;
        rc = akv_reply_errorf(ctx->out, "ERR unknown command '%s' (HELP lists the commands)",
                              show(&ctx->argv[0], sb));
        goto out;
    }
    env->stats.commands_processed++;
    if ((c->arity > 0 && ctx->argc != (size_t)c->arity) ||
        (c->arity < 0 && ctx->argc < (size_t)-c->arity)) {
        env->stats.cmd[c - table].rejected++;
        env->stats.error_replies++;
        rc = reply_wrong_arity(ctx);
        goto out;
    }
    if (ctx->env->config->requirepass && !ctx->authenticated && !(c->flags & AKV_CMD_NOAUTH)) {
        rc = akv_reply_error(ctx->out, "NOAUTH Authentication required.");
        goto out;
    }
    if ((c->flags & AKV_CMD_WRITE) && akv_persist_write_error(ctx->env->persist)) {
        /* As Redis does: refuse writes while they cannot be made durable. */
        rc = akv_reply_errorf(ctx->out, "MISCONF Errors writing to the AOF file: %s",
                              strerror(akv_persist_write_error(ctx->env->persist)));
        goto out;
    }
    rc = c->handler(ctx);
    if (ctx->job) {
        /* Counted when the job finishes. Its arguments are copied now, as
         * they will be gone by then, unless the slow log is off. */
        ctx->job->cmd = c;
        ctx->job->t0 = t0;
        if (rc == 0 && env->config->slowlog_slower_than >= 0)
            ctx->job->slow = slow_entry(c, ctx->argc, ctx->argv, ctx->peer);
    } else {
        account(env, c, (now_ns() - t0) / 1000,
                rc < 0 || (ctx->out->len > mark && ctx->out->p[mark] == '-'), NULL, ctx->argc,
                ctx->argv, ctx->peer);
    }
out:
    if (rc < 0) {
        /* A reply cut short would desynchronise the client: drop it. */
        ctx->out->len = mark;
        if (ctx->job) {
            ctx->job->finish(ctx->job, NULL);
            ctx->job = NULL;
        }
        return reply_oom(ctx->out) < 0 ? -ENOMEM : 0;
    }
    return 0;
}
