/*
 * cmd.c - the command table and dispatch, and the accounting of every call.
 * The handlers are in cmd-conn.c, cmd-server.c, cmd-keys.c and
 * cmd-query.c, by family.
 *
 * Design
 * ------
 * Handlers run on the loop thread, which owns the store, the stats and the
 * connection's output buffer, so they need no locks. A handler either writes
 * one complete reply, or does the cheap part on the loop thread and leaves
 * a job in ctx->job for the pool (QUERY, EXPLAIN, NEIGHBORS, KEYS); the
 * job's finish, back on the loop thread, writes the reply and is counted
 * then.
 *
 * Limits and security: dispatch refuses every command but AUTH, PING, QUIT
 * and HELP (AKV_CMD_NOAUTH) until a connection that must authenticate has
 * done so, and refuses writes while the AOF cannot be written (MISCONF).
 *
 * Replies are all-or-nothing: if writing one fails for lack of memory, the
 * buffer is cut back to where the reply began and "-ERR out of memory" takes
 * its place, so a client never sees half an array.
 */
#include "server/cmd-impl.h"

/* A job's finish: counts the call that ran for us microseconds (statistics,
 * slow log) and lets go of its argument copy. */
void akv_cmd_job_account(struct akv_cmd_env *env, struct akv_cmd_job *cj, uint64_t us, int failed)
{
    if (cj->cmd) {
        akv_cmd_account(env, cj->cmd, us, failed, cj->slow, 0, NULL, NULL);
        cj->slow = NULL;
    }
    akv_slowlog_entry_free(cj->slow);
}

/* A job's reply could not be written whole: cuts it back to mark and says
 * so instead. If even that fails the connection notices the short reply
 * only as a missing one; there is nothing better to send. Returns 1 (the
 * call failed). */
int akv_cmd_reply_cut_to_oom(struct akv_buf *out, size_t mark)
{
    out->len = mark;
    (void)reply_oom(out);
    return 1;
}

/* The slow log's copy of a call's arguments. Those of a secret command
 * (AUTH) become "(redacted)", as in Redis, so neither the password nor
 * anyone's wrong guess is ever recorded. */
struct akv_slowlog_entry *akv_cmd_slow_entry(const struct akv_cmd *c, size_t argc,
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
void akv_cmd_account(struct akv_cmd_env *env, const struct akv_cmd *c, uint64_t us, int failed,
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
            slow = akv_cmd_slow_entry(c, argc, argv, peer);
        if (slow) {
            akv_slowlog_push(&env->slowlog, slow, (int64_t)time(NULL), us,
                             (size_t)env->config->slowlog_max_len);
            slow = NULL;
        }
    }
    akv_slowlog_entry_free(slow);
}

void akv_cmd_session_init(struct akv_session *s, uint64_t id, const char *peer)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    s->resp = 2;
    snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "?");
}

void akv_cmd_session_fini(struct akv_cmd_env *env, struct akv_session *s)
{
    akv_cmd_multi_session_fini(env, s);
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
#define Q AKV_CMD_NOQUEUE

static const struct akv_cmd table[] = {
    {"PING", -1, F | N, akv_cmd_do_ping, 0, 0, 0, "PING [message]", "reply PONG, or the message"},
    {"ECHO", 2, F, akv_cmd_do_echo, 0, 0, 0, "ECHO message", "reply the message"},
    {"QUIT", -1, F | N | Q, akv_cmd_do_quit, 0, 0, 0, "QUIT", "reply OK and close the connection"},
    {"READABLE", -1, F | N, akv_cmd_do_readable, 0, 0, 0, "READABLE [ON|OFF]",
     "replies as text for people at a terminal (ON), or RESP (OFF, the default)"},
    {"HELP", 1, N, akv_cmd_do_help, 0, 0, 0, "HELP", "list the commands"},
    {"COMMAND", -1, 0, akv_cmd_do_command, 0, 0, 0, "COMMAND [COUNT|DOCS|INFO name...|LIST]",
     "describe the commands (for redis-cli)"},
    {"CONFIG", -2, A, akv_cmd_do_config, 0, 0, 0,
     "CONFIG GET pattern [pattern ...] | SET name value [name value ...] | RESETSTAT",
     "read settings (name, value pairs), change the run-time ones, or zero the INFO counters"},
    {"SLOWLOG", -2, A, akv_cmd_do_slowlog, 0, 0, 0, "SLOWLOG GET [count] | LEN | RESET | HELP",
     "the commands slower than slowlog-log-slower-than microseconds, newest first"},
    {"AUTH", -2, F | N | AKV_CMD_SECRET, akv_cmd_do_auth, 0, 0, 0, "AUTH [default] password",
     "authenticate the connection (when requirepass is set)"},
    {"SELECT", 2, F, akv_cmd_do_select, 0, 0, 0, "SELECT index",
     "switch the connection to database index (0 .. databases-1)"},
    {"INFO", -1, 0, akv_cmd_do_info, 0, 0, 0, "INFO [section ... | default | all | everything]",
     "server, clients, memory, persistence, stats, latency, commandstats, store, "
     "keyspace and vectors figures"},
    {"SET", -3, W, akv_cmd_do_set, 1, 1, 1,
     "SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t-ms|KEEPTTL]",
     "store value under key; every word of both must be in the vocabulary"},
    {"GET", 2, R | F, akv_cmd_do_get, 1, 1, 1, "GET key", "the value stored under key, or nil"},
    {"SETNX", 3, W | F, akv_cmd_do_setnx, 1, 1, 1, "SETNX key value",
     "SET if the key does not exist; reply 1 if it was set"},
    {"GETSET", 3, W | F, akv_cmd_do_getset, 1, 1, 1, "GETSET key value",
     "SET, replying the old value (or nil)"},
    {"GETDEL", 2, W | F, akv_cmd_do_getdel, 1, 1, 1, "GETDEL key", "GET, then delete the key"},
    {"GETEX", -2, W | F, akv_cmd_do_getex, 1, 1, 1,
     "GETEX key [EX s|PX ms|EXAT t|PXAT t-ms|PERSIST]", "GET, and set or clear the expiry time"},
    {"MSET", -3, W, akv_cmd_do_mset, 1, -1, 2, "MSET key value [key value ...]",
     "SET several keys at once, all or none"},
    {"MSETNX", -3, W, akv_cmd_do_mset, 1, -1, 2, "MSETNX key value [key value ...]",
     "MSET only if none of the keys exists; reply 1 if set"},
    {"MGET", -2, R | F, akv_cmd_do_mget, 1, -1, 1, "MGET key [key ...]",
     "the values of the keys (nil for absent ones)"},
    {"DEL", -2, W, akv_cmd_do_del, 1, -1, 1, "DEL key [key ...]",
     "remove keys; reply how many existed"},
    {"UNLINK", -2, W, akv_cmd_do_del, 1, -1, 1, "UNLINK key [key ...]",
     "DEL (entries are small: freeing them at once costs no more)"},
    {"EXISTS", -2, R | F, akv_cmd_do_exists, 1, -1, 1, "EXISTS key [key ...]",
     "how many of the keys exist"},
    {"RENAME", 3, W | F, akv_cmd_do_rename, 1, 2, 1, "RENAME key newkey",
     "rename a key (replacing newkey), keeping its expiry time"},
    {"RENAMENX", 3, W | F, akv_cmd_do_rename, 1, 2, 1, "RENAMENX key newkey",
     "RENAME if newkey does not exist; reply 1 if renamed"},
    {"COPY", -3, W | F, akv_cmd_do_copy, 1, 2, 1, "COPY source destination [DB n] [REPLACE]",
     "copy a key's value and expiry time; reply 1 if copied"},
    {"MOVE", 3, W | F, akv_cmd_do_move, 1, 1, 1, "MOVE key db",
     "move a key to another database; reply 1 if moved"},
    {"EXPIRE", -3, W | F, akv_cmd_do_expire, 1, 1, 1, "EXPIRE key seconds [NX|XX|GT|LT]",
     "delete the key after that many seconds; reply 1 if the time was set"},
    {"PEXPIRE", -3, W | F, akv_cmd_do_expire, 1, 1, 1, "PEXPIRE key ms [NX|XX|GT|LT]",
     "EXPIRE in milliseconds"},
    {"EXPIREAT", -3, W | F, akv_cmd_do_expire, 1, 1, 1, "EXPIREAT key unix-time [NX|XX|GT|LT]",
     "delete the key at that time (seconds since the epoch)"},
    {"PEXPIREAT", -3, W | F, akv_cmd_do_expire, 1, 1, 1, "PEXPIREAT key unix-time-ms [NX|XX|GT|LT]",
     "EXPIREAT in milliseconds"},
    {"TTL", 2, R | F, akv_cmd_do_ttl, 1, 1, 1, "TTL key",
     "seconds left to live; -1 without a time, -2 when absent"},
    {"PTTL", 2, R | F, akv_cmd_do_ttl, 1, 1, 1, "PTTL key", "TTL in milliseconds"},
    {"EXPIRETIME", 2, R | F, akv_cmd_do_expiretime, 1, 1, 1, "EXPIRETIME key",
     "the expiry time, seconds since the epoch; -1 without one, -2 when absent"},
    {"PEXPIRETIME", 2, R | F, akv_cmd_do_expiretime, 1, 1, 1, "PEXPIRETIME key",
     "EXPIRETIME in milliseconds"},
    {"PERSIST", 2, W | F, akv_cmd_do_persist, 1, 1, 1, "PERSIST key",
     "remove the expiry time; reply 1 if there was one"},
    {"DBSIZE", 1, R | F, akv_cmd_do_dbsize, 0, 0, 0, "DBSIZE",
     "number of keys in the connection's database"},
    {"KEYS", 2, R, akv_cmd_do_keys, 0, 0, 0, "KEYS pattern", "every key matching the glob pattern"},
    {"SCAN", -2, R, akv_cmd_do_scan, 0, 0, 0, "SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]",
     "iterate over keys a few at a time"},
    {"SWAPDB", 3, W | F, akv_cmd_do_swapdb, 0, 0, 0, "SWAPDB index1 index2",
     "exchange the contents of two databases"},
    {"FLUSHDB", -1, W, akv_cmd_do_flushdb, 0, 0, 0, "FLUSHDB [ASYNC|SYNC]",
     "remove every key of the connection's database"},
    {"FLUSHALL", -1, W, akv_cmd_do_flushall, 0, 0, 0, "FLUSHALL [ASYNC|SYNC]",
     "remove every key of every database"},
    {"MULTI", 1, F | Q, akv_cmd_do_multi, 0, 0, 0, "MULTI",
     "start a transaction: queue commands until EXEC"},
    {"EXEC", 1, Q, akv_cmd_do_exec, 0, 0, 0, "EXEC",
     "run the queued commands as one (nil if a WATCHed key changed)"},
    {"DISCARD", 1, F | Q, akv_cmd_do_discard, 0, 0, 0, "DISCARD",
     "drop the queued commands and the WATCHed keys"},
    {"WATCH", -2, F | Q, akv_cmd_do_watch, 1, -1, 1, "WATCH key [key ...]",
     "make the next EXEC fail if one of these keys changes"},
    {"UNWATCH", 1, F | Q, akv_cmd_do_unwatch, 0, 0, 0, "UNWATCH", "forget the WATCHed keys"},
    {"BGREWRITEAOF", 1, A, akv_cmd_do_bgrewriteaof, 0, 0, 0, "BGREWRITEAOF",
     "compact the append-only file in the background"},
    {"QUERY", -2, R | S, akv_cmd_do_query, 0, 0, 0,
     "QUERY text [COUNT k] [WITHSCORES] [ATTENTION dot|cosine] [TEMPERATURE t] "
     "[METRIC l2|cosine|dot]",
     "attend over the stored keys and reply the words nearest to the blended value"},
    {"EXPLAIN", -2, R | S, akv_cmd_do_explain, 0, 0, 0,
     "EXPLAIN text [COUNT n] [ATTENTION dot|cosine] [TEMPERATURE t]",
     "the n entries with the largest attention weights, as [key, value, weight]"},
    {"NEIGHBORS", -2, R | S, akv_cmd_do_neighbors, 0, 0, 0,
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
#undef Q

_Static_assert(sizeof(table) / sizeof(table[0]) - 1 <= AKV_CMD_STATS_MAX,
               "raise AKV_CMD_STATS_MAX in cmd.h");
_Static_assert(2 * (sizeof(table) / sizeof(table[0])) <= 256, "raise LOOKUP_SLOTS in cmd.c");

const struct akv_cmd *akv_cmd_table(void)
{
    return table;
}

/* The command index: an open-addressing table of LOOKUP_SLOTS entries (a
 * power of two, at least twice the commands), keyed by a case-folded hash
 * of the name, filled at the first lookup. Loop thread (or one test
 * thread) only. */
#define LOOKUP_SLOTS 256
static const struct akv_cmd *index_slots[LOOKUP_SLOTS];
static int index_ready;

static unsigned name_hash(const char *p, size_t len)
{
    unsigned h = 2166136261u;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned)(p[i] | 0x20)) * 16777619u; /* ASCII letters fold */
    return h;
}

static void index_build(void)
{
    for (const struct akv_cmd *c = table; c->name; c++) {
        unsigned i = name_hash(c->name, strlen(c->name)) & (LOOKUP_SLOTS - 1);
        while (index_slots[i])
            i = (i + 1) & (LOOKUP_SLOTS - 1);
        index_slots[i] = c;
    }
    index_ready = 1;
}

const struct akv_cmd *akv_cmd_lookup(const char *name, size_t len)
{
    unsigned i;

    if (!index_ready)
        index_build();
    i = name_hash(name, len) & (LOOKUP_SLOTS - 1);
    for (const struct akv_cmd *c; (c = index_slots[i]) != NULL; i = (i + 1) & (LOOKUP_SLOTS - 1))
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
    if (!env->in_exec)
        akv_cmd_clock(env); /* EXEC reads it once for all its commands */
    if (!c) {
        char sb[AKV_QUOTE_BUF];
        env->stats.error_replies++;
        akv_cmd_multi_fail(ctx->sess);
        rc = akv_reply_errorf(ctx->out, "ERR unknown command '%s' (HELP lists the commands)",
                              show(&ctx->argv[0], sb));
        goto out;
    }
    env->stats.commands_processed++;
    if ((c->arity > 0 && ctx->argc != (size_t)c->arity) ||
        (c->arity < 0 && ctx->argc < (size_t)-c->arity)) {
        env->stats.cmd[c - table].rejected++;
        env->stats.error_replies++;
        akv_cmd_multi_fail(ctx->sess);
        rc = reply_wrong_arity(ctx);
        goto out;
    }
    if (ctx->env->config->requirepass && !ctx->sess->authenticated &&
        !(c->flags & AKV_CMD_NOAUTH)) {
        rc = akv_reply_error(ctx->out, "NOAUTH Authentication required.");
        goto out;
    }
    if (akv_cmd_multi_active(ctx->sess) && !(c->flags & AKV_CMD_NOQUEUE)) {
        rc = akv_cmd_multi_queue(ctx, c);
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
            ctx->job->slow = akv_cmd_slow_entry(c, ctx->argc, ctx->argv, ctx->sess->peer);
    } else {
        akv_cmd_account(env, c, (now_ns() - t0) / 1000,
                        rc < 0 || (ctx->out->len > mark && ctx->out->p[mark] == '-'), NULL,
                        ctx->argc, ctx->argv, ctx->sess->peer);
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
