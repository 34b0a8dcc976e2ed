/*
 * cmd-impl.h - what the command handler files share: the handlers the
 * table in cmd.c names, the accounting of a call, and small helpers for
 * arguments and error replies. Private to src/server/cmd*.c.
 *
 * Threading: as cmd.h (the loop thread; jobs' work on a worker).
 */
#ifndef ATTNKV_CMD_IMPL_H
#define ATTNKV_CMD_IMPL_H

#include "server/cmd.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
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
#include "util/log.h"
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
/* The longest value CONFIG SET takes: a setting's value is a number, a word
 * or a few of them, and akv_cmd_settings_set keeps old values in buffers
 * of this size. */
#define CONFIG_VALUE_MAX AKV_CONFIG_VALUE_MAX
/* The most entries one SCAN call looks at, whatever its COUNT: a COUNT is a
 * hint (as in Redis), and this keeps one call to a millisecond or two. */
#define SCAN_STEP_MAX 4096

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The store of the calling connection's database. */
static inline struct akv_store *cur_store(const struct akv_cmd_ctx *ctx)
{
    return ctx->env->dbs[ctx->sess->db];
}

/* What maxmemory is compared with: the entries of every database. */
static inline size_t stores_memory_used(const struct akv_cmd_env *env)
{
    size_t n = 0;

    for (uint32_t i = 0; i < env->ndbs; i++)
        n += akv_store_memory_used(env->dbs[i]);
    return n;
}

static inline size_t stores_memory(const struct akv_cmd_env *env)
{
    size_t n = 0;

    for (uint32_t i = 0; i < env->ndbs; i++)
        n += akv_store_memory(env->dbs[i]);
    return n;
}

static inline size_t stores_count(const struct akv_cmd_env *env)
{
    size_t n = 0;

    for (uint32_t i = 0; i < env->ndbs; i++)
        n += akv_store_count(env->dbs[i]);
    return n;
}

static inline int arg_is(const struct akv_slice *a, const char *word)
{
    return strlen(word) == a->len && strncasecmp(a->p, word, a->len) == 0;
}

/* Client bytes for an error message (util/text.h). */
static inline const char *show(const struct akv_slice *a, char buf[AKV_QUOTE_BUF])
{
    return akv_quote(buf, a->p, a->len);
}

static inline int parse_u64(const struct akv_slice *a, uint64_t *out)
{
    unsigned long long v;

    if (akv_parse_ull(a->p, a->len, UINT64_MAX, &v) < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* An ASCII lower-case copy of s, cut to fit. */
static inline const char *lower(const char *s, char *buf, size_t cap)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < cap; i++)
        buf[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    buf[i] = '\0';
    return buf;
}

static inline int reply_oom(struct akv_buf *out)
{
    return akv_reply_error(out, "ERR out of memory");
}

/* A write that could not be logged: out of memory, or (-E2BIG) its
 * records would make its transaction's AOF record pass the size replay
 * accepts (persist.h). Nothing was changed. */
static inline int reply_write_failed(struct akv_buf *out, int rc)
{
    if (rc == -E2BIG)
        return akv_reply_errorf(out,
                                "ERR not done: the transaction's append-only file record "
                                "would pass %zu MiB",
                                (size_t)(AKV_AOF_PAYLOAD_MAX >> 20));
    return reply_oom(out);
}

static inline int reply_wrong_arity(struct akv_cmd_ctx *ctx)
{
    char sb[AKV_QUOTE_BUF], lb[AKV_QUOTE_BUF];

    return akv_reply_errorf(ctx->out, "ERR wrong number of arguments for '%s' command",
                            lower(show(&ctx->argv[0], sb), lb, sizeof(lb)));
}

static inline int reply_syntax(struct akv_cmd_ctx *ctx)
{
    return akv_reply_error(ctx->out, "ERR syntax error");
}

static inline int reply_not_integer(struct akv_cmd_ctx *ctx)
{
    return akv_reply_error(ctx->out, "ERR value is not an integer or out of range");
}

/* A signed 64-bit integer argument, as Redis reads one. */
static inline int parse_i64(const struct akv_slice *a, int64_t *out)
{
    long long v;

    if (akv_parse_ll(a->p, a->len, INT64_MIN, INT64_MAX, &v) < 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* The protocol of the calling connection's replies (2 or 3). */
static inline int resp_of(const struct akv_cmd_ctx *ctx)
{
    return ctx->sess->resp;
}

static inline int reply_pattern_too_long(struct akv_cmd_ctx *ctx, const struct akv_slice *pat)
{
    return akv_reply_errorf(ctx->out, "ERR pattern too long (%zu bytes; at most %d)", pat->len,
                            AKV_GLOB_PATTERN_MAX);
}

/* Whether the reply being written has passed the output hard limit: the
 * connection will be closed for it, so a handler that builds a long reply
 * stops growing it there. */
static inline int reply_over_limit(const struct akv_cmd_ctx *ctx)
{
    unsigned long long hard = ctx->env->config->obuf_hard;

    return hard > 0 && ctx->out->len > hard;
}

/* ---- accounting (cmd.c) ---------------------------------------------- */

/* Counts one call of c that ran for us microseconds (ns nanoseconds): the
 * per-command counters and latency histogram, and the slow log. slow is
 * the job's argument copy (taken over: logged or freed), or NULL, in which
 * case argv (still valid for a command answered at once) is copied if the
 * call is slow. Error replies are counted apart (akv_cmd_count_error). */
void akv_cmd_account(struct akv_cmd_env *env, const struct akv_cmd *c, uint64_t us, uint64_t ns,
                     int failed, struct akv_slowlog_entry *slow, size_t argc,
                     const struct akv_slice *argv, const char *peer);

/* A job's finish: counts the call that ran for us microseconds (statistics,
 * slow log) and lets go of its argument copy. */
void akv_cmd_job_account(struct akv_cmd_env *env, struct akv_cmd_job *cj, uint64_t us, int failed);

/* A job's reply could not be written whole: cuts it back to mark and says
 * so instead. If even that fails the connection notices the short reply
 * only as a missing one; there is nothing better to send. Returns 1 (the
 * call failed). */
int akv_cmd_reply_cut_to_oom(struct akv_buf *out, size_t mark);

/* Whether argument i of a call of c is a secret that the slow log and
 * MONITOR show as "(redacted)": AUTH's arguments, HELLO's AUTH username and
 * password, the value of CONFIG SET requirepass. */
int akv_cmd_arg_secret(const struct akv_cmd_env *env, const struct akv_cmd *c, size_t argc,
                       const struct akv_slice *argv, size_t i);

/* The slow log's copy of a call's arguments, secrets redacted. */
struct akv_slowlog_entry *akv_cmd_slow_entry(const struct akv_cmd_env *env, const struct akv_cmd *c,
                                             size_t argc, const struct akv_slice *argv,
                                             const char *peer);

/* The subcommand name[0, len) of container c, or NULL. */
const struct akv_subcmd *akv_cmd_subcommand_lookup(const struct akv_cmd *c, const char *name,
                                                   size_t len);

/* For a container's handler: finds argv[1] among the container's
 * subcommands and checks the call's arity against it, as Redis 7 does.
 * Returns 0 with *out set; 1 after replying "-ERR unknown subcommand 'x'.
 * Try CLIENT HELP." or "-ERR wrong number of arguments for 'client|kill'
 * command"; or -ENOMEM. */
int akv_cmd_subcommand(struct akv_cmd_ctx *ctx, const struct akv_subcmd **out);

/* AUTH's check, shared with HELLO AUTH: whether user (NULL: "default") and
 * pass may log in; if so, marks the session authenticated. Compares in
 * time that does not depend on the password. */
int akv_cmd_authenticate(struct akv_cmd_ctx *ctx, const struct akv_slice *user,
                         const struct akv_slice *pass);

/* A container's HELP (CLIENT HELP, ...): its subcommands' usage and
 * summary, from the subcommand table, as Redis lays HELP out. */
int akv_cmd_reply_sub_help(struct akv_cmd_ctx *ctx, const char *parent);

/* ---- MONITOR and memory (cmd-client.c, cmd-server.c) -------------------- */

/* The most arguments of one call, and bytes of one argument, that a MONITOR
 * line shows; the rest is summed up as "... (N more arguments)" or
 * "... (N more bytes)", so that one request costs each monitor at most
 * about 1 MB of output. */
#define MONITOR_ARGC_MAX 64
#define MONITOR_ARG_MAX 4096

/* Appends the MONITOR line for a call of c to b, as Redis writes it:
 * +<unix time>.<µs> [<db> <ip:port>] "arg" "arg"...\r\n, each argument
 * quoted with \" \\ \n \r \t \a \b and \xHH escapes, secrets as
 * "(redacted)". Returns 0 or -ENOMEM. */
int akv_cmd_monitor_line(struct akv_buf *b, const struct akv_cmd_env *env, const struct akv_cmd *c,
                         const struct akv_session *s, size_t argc, const struct akv_slice *argv);

/* INFO's used_memory: the bytes attnkv accounts for (store, client
 * buffers, slow log, AOF buffers). */
size_t akv_cmd_used_memory(const struct akv_cmd_env *env);

/* ---- keys (cmd-keys.c): every change of a database goes through these,
 * which log it to the AOF and tell WATCH ------------------------------ */

/* Looks key up in database db, deleting it if its time has come (lazy
 * expiry). Returns AKV_STORE_LIVE (f filled) or AKV_STORE_ABSENT. */
int akv_cmd_key_lookup(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                       struct akv_store_found *f);
/* Stores key -> val with an expiry time (0: none). Returns 0, -ENOENT or
 * -EINVAL with err filled (the text does not embed), or -ENOMEM. */
int akv_cmd_key_put(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                    const char *val, size_t vlen, uint64_t expire, char *err, size_t errlen);
/* The same; payload: store val as a payload (SET ... PAYLOAD: bytes that
 * are not embedded; the key still must embed). */
int akv_cmd_key_put_ex(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                       const char *val, size_t vlen, uint64_t expire, int payload, char *err,
                       size_t errlen);
/* Deletes key. Returns 1 if it was there, 0 if not, -ENOMEM. */
int akv_cmd_key_del(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen);
/* Sets a live key's expiry time. Returns 1, 0 (absent) or -ENOMEM. */
int akv_cmd_key_expire(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen,
                       uint64_t expire);
/* Whether a write that may add a key fits maxmemory and maxkeys; if not,
 * writes the OOM error reply and returns 1 (-ENOMEM if even that failed). */
int akv_cmd_key_room(struct akv_cmd_ctx *ctx, size_t adding);

/* ---- cluster mode (cmd-cluster.c) ------------------------------------- */
/* Proposes write command c (or an EXEC whose queue writes) as a log entry
 * and leaves a job in ctx->job that the entry's application answers; or
 * replies an error. Returns 0 or -ENOMEM. */
int akv_cmd_cluster_write(struct akv_cmd_ctx *ctx, const struct akv_cmd *c);
/* Whether command c, with argc arguments, may run from a log entry: it
 * exists with a right number of arguments and is a write on the loop
 * thread; in a transaction (exec) also a read on the loop thread, SELECT,
 * PING or ECHO. Never the server's own commands (SHUTDOWN, CONFIG,
 * CLUSTER, ...), which would run on every node at every replay. */
int akv_cmd_cluster_entry_ok(const struct akv_cmd *c, size_t argc, int exec);
/* The leader's expiry cycle in cluster mode (akv_cmd_expire_cycle). */
int akv_cmd_cluster_expire_cycle(struct akv_cmd_env *env);
/* This node's cluster-id. */
uint64_t akv_cmd_cluster_self(const struct akv_cmd_env *env);
/* The cluster's commands. */
int akv_cmd_do_cluster(struct akv_cmd_ctx *ctx);
int akv_cmd_do_role(struct akv_cmd_ctx *ctx);
int akv_cmd_do_consistency(struct akv_cmd_ctx *ctx);
int akv_cmd_do_readonly(struct akv_cmd_ctx *ctx);
int akv_cmd_do_readwrite(struct akv_cmd_ctx *ctx);
/* WAIT: how many other nodes the leader knows to hold index (0 on a
 * follower, which does not know, and on a single node). */
int64_t akv_cmd_cluster_holders(const struct akv_cmd_env *env, uint64_t index);
/* INFO replication in cluster mode. */
int akv_cmd_cluster_info_replication(struct akv_buf *b, const struct akv_cmd_env *env);

/* ---- transactions (cmd-multi.c) -------------------------------------- */

/* A write touched key in db: EXEC fails for the connections watching it. */
void akv_cmd_watch_touch(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen);
/* Database db was emptied (FLUSHDB, FLUSHALL), or databases a and b
 * swapped (SWAPDB): EXEC works out which watched keys that changed. O(1). */
void akv_cmd_watch_flushed(struct akv_cmd_env *env, uint32_t db);
void akv_cmd_watch_swapped(struct akv_cmd_env *env, uint32_t a, uint32_t b);
/* Whether the session is between MULTI and EXEC; marking its transaction
 * failed (EXEC will answer EXECABORT); releasing its state. */
int akv_cmd_multi_active(const struct akv_session *s);
void akv_cmd_multi_fail(struct akv_session *s);
/* Commands queued in MULTI (CLIENT LIST's multi=), -1 outside MULTI. */
long akv_cmd_multi_queued(const struct akv_session *s);
void akv_cmd_multi_session_fini(struct akv_cmd_env *env, struct akv_session *s);
/* While a connection is in MULTI, dispatch queues its commands here.
 * Returns 0 (a reply, +QUEUED or an error, is written) or -ENOMEM. */
int akv_cmd_multi_queue(struct akv_cmd_ctx *ctx, const struct akv_cmd *c);
/* Whether the session's MULTI queue holds a write. */
int akv_cmd_multi_writes(const struct akv_session *s);
/* Cluster mode, EXEC of a queue that writes: appends the queued commands
 * (u32 count, then each) and the WATCHed keys as they are now (entry.h)
 * to b and ends the transaction (0); or replies as EXEC would without
 * running anything (aborted by a WATCH, discarded after an error, a queue
 * holding a command that runs on the pool) and returns 1; or -ENOMEM. */
int akv_cmd_multi_take(struct akv_cmd_ctx *ctx, struct akv_buf *b);

/* ---- text options and skipped words (cmd-vocab.c) -------------------- */

/* The words a request skipped (UNKNOWN skip), copied out of its text so
 * that a job can reply with them: n words, word i len[i] bytes, one after
 * the other in words (binary-safe: a word may hold a NUL byte). len and
 * words share one allocation, owned by len. */
struct akv_cmd_skipped {
    size_t n;
    uint32_t *len;
    char *words;
};

/* If argv[i] is UNKNOWN or WEIGHTING, parses its value argv[i + 1] into
 * *eo and returns 2 (arguments used); 0 when argv[i] is neither; 1 after an
 * error reply; -ENOMEM. */
int akv_cmd_embed_opt(struct akv_cmd_ctx *ctx, size_t i, struct akv_embed_opts *eo);
/* Copies the skipped words of text (sk may be NULL: none). 0 or -ENOMEM. */
int akv_cmd_skipped_copy(const char *text, const struct akv_embed_skips *sk,
                         struct akv_cmd_skipped *out);
void akv_cmd_skipped_free(struct akv_cmd_skipped *s);
/* The element a reply ends with when words were skipped: ["skipped",
 * [w ...]] in RESP2, {"skipped": [w ...]} in RESP3. */
int akv_cmd_reply_skipped(struct akv_buf *out, int resp, const struct akv_cmd_skipped *s);

/* The copies akv_cmd_keys_normalize made for one call. */
struct akv_cmd_keynorm {
    const struct akv_slice *saved; /* the call's own argv */
    struct akv_slice *argv;        /* NULL: nothing was changed */
    char **bufs;
    size_t nbufs;
};
/* With key-normalize on, points ctx->argv at a copy in which every key
 * argument of c (by its key positions, or its subcommand's) is in normal
 * form; not under EXEC, whose queued commands are already. Returns 0; 1 after an error reply (more
 * than 1 MiB of keys to rewrite); -ENOMEM (ctx unchanged). akv_cmd_keys_restore puts the call's
 * argv back and frees the copies. */
int akv_cmd_keys_normalize(struct akv_cmd_ctx *ctx, const struct akv_cmd *c,
                           struct akv_cmd_keynorm *kn);
void akv_cmd_keys_restore(struct akv_cmd_ctx *ctx, struct akv_cmd_keynorm *kn);

/* ---- the handlers, by family ------------------------------------------ */
/* cmd-conn.c */
int akv_cmd_do_auth(struct akv_cmd_ctx *ctx);
int akv_cmd_do_echo(struct akv_cmd_ctx *ctx);
int akv_cmd_do_help(struct akv_cmd_ctx *ctx);
int akv_cmd_do_ping(struct akv_cmd_ctx *ctx);
int akv_cmd_do_quit(struct akv_cmd_ctx *ctx);
int akv_cmd_do_readable(struct akv_cmd_ctx *ctx);
/* cmd-client.c */
int akv_cmd_do_client(struct akv_cmd_ctx *ctx);
int akv_cmd_do_hello(struct akv_cmd_ctx *ctx);
int akv_cmd_do_monitor(struct akv_cmd_ctx *ctx);
int akv_cmd_do_reset(struct akv_cmd_ctx *ctx);
/* cmd-command.c */
int akv_cmd_do_command(struct akv_cmd_ctx *ctx);
/* cmd-server.c */
int akv_cmd_do_bgrewriteaof(struct akv_cmd_ctx *ctx);
int akv_cmd_do_bgsave(struct akv_cmd_ctx *ctx);
int akv_cmd_do_config(struct akv_cmd_ctx *ctx);
int akv_cmd_do_info(struct akv_cmd_ctx *ctx);
int akv_cmd_do_lastsave(struct akv_cmd_ctx *ctx);
int akv_cmd_do_latency(struct akv_cmd_ctx *ctx);
int akv_cmd_do_save(struct akv_cmd_ctx *ctx);
int akv_cmd_do_shutdown(struct akv_cmd_ctx *ctx);
int akv_cmd_do_slowlog(struct akv_cmd_ctx *ctx);
int akv_cmd_do_time(struct akv_cmd_ctx *ctx);
int akv_cmd_do_wait(struct akv_cmd_ctx *ctx);
/* cmd-inspect.c */
int akv_cmd_do_memory(struct akv_cmd_ctx *ctx);
int akv_cmd_do_object(struct akv_cmd_ctx *ctx);
int akv_cmd_do_randomkey(struct akv_cmd_ctx *ctx);
int akv_cmd_do_strlen(struct akv_cmd_ctx *ctx);
int akv_cmd_do_touch(struct akv_cmd_ctx *ctx);
int akv_cmd_do_type(struct akv_cmd_ctx *ctx);
/* cmd-keys.c */
int akv_cmd_do_copy(struct akv_cmd_ctx *ctx);
int akv_cmd_do_dbsize(struct akv_cmd_ctx *ctx);
int akv_cmd_do_del(struct akv_cmd_ctx *ctx);
int akv_cmd_do_exists(struct akv_cmd_ctx *ctx);
int akv_cmd_do_expire(struct akv_cmd_ctx *ctx);     /* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT */
int akv_cmd_do_expiretime(struct akv_cmd_ctx *ctx); /* EXPIRETIME, PEXPIRETIME */
int akv_cmd_do_flushall(struct akv_cmd_ctx *ctx);
int akv_cmd_do_flushdb(struct akv_cmd_ctx *ctx);
int akv_cmd_do_get(struct akv_cmd_ctx *ctx);
int akv_cmd_do_getdel(struct akv_cmd_ctx *ctx);
int akv_cmd_do_getex(struct akv_cmd_ctx *ctx);
int akv_cmd_do_getset(struct akv_cmd_ctx *ctx);
int akv_cmd_do_keys(struct akv_cmd_ctx *ctx);
int akv_cmd_do_mget(struct akv_cmd_ctx *ctx);
int akv_cmd_do_move(struct akv_cmd_ctx *ctx);
int akv_cmd_do_mset(struct akv_cmd_ctx *ctx); /* MSET, MSETNX */
int akv_cmd_do_persist(struct akv_cmd_ctx *ctx);
int akv_cmd_do_rename(struct akv_cmd_ctx *ctx); /* RENAME, RENAMENX */
int akv_cmd_do_scan(struct akv_cmd_ctx *ctx);
int akv_cmd_do_select(struct akv_cmd_ctx *ctx);
int akv_cmd_do_set(struct akv_cmd_ctx *ctx);
int akv_cmd_do_setnx(struct akv_cmd_ctx *ctx);
int akv_cmd_do_swapdb(struct akv_cmd_ctx *ctx);
int akv_cmd_do_ttl(struct akv_cmd_ctx *ctx); /* TTL, PTTL */
/* cmd-multi.c */
int akv_cmd_do_discard(struct akv_cmd_ctx *ctx);
int akv_cmd_do_exec(struct akv_cmd_ctx *ctx);
int akv_cmd_do_multi(struct akv_cmd_ctx *ctx);
int akv_cmd_do_unwatch(struct akv_cmd_ctx *ctx);
int akv_cmd_do_watch(struct akv_cmd_ctx *ctx);
/* cmd-query.c */
int akv_cmd_do_explain(struct akv_cmd_ctx *ctx);
int akv_cmd_do_neighbors(struct akv_cmd_ctx *ctx);
int akv_cmd_do_fget(struct akv_cmd_ctx *ctx);
int akv_cmd_do_analogy(struct akv_cmd_ctx *ctx);
int akv_cmd_do_query(struct akv_cmd_ctx *ctx);
/* cmd-vocab.c */
int akv_cmd_do_doesntmatch(struct akv_cmd_ctx *ctx);
int akv_cmd_do_embed(struct akv_cmd_ctx *ctx);
int akv_cmd_do_similarity(struct akv_cmd_ctx *ctx);
int akv_cmd_do_vocab(struct akv_cmd_ctx *ctx);

#endif
