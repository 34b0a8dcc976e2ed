/*
 * cmd.c - the command table and dispatch, and the accounting of every call.
 * The handlers are in cmd-conn.c, cmd-server.c, cmd-keys.c,
 * cmd-query.c and cmd-vocab.c, by family.
 *
 * Design
 * ------
 * Handlers run on the loop thread, which owns the store, the stats and the
 * connection's output buffer, so they need no locks. A handler either writes
 * one complete reply, or does the cheap part on the loop thread and leaves
 * a job in ctx->job for the pool (QUERY, EXPLAIN, NEIGHBORS, KEYS, CONFIG
 * REWRITE's file writing); the job's finish, back on the loop thread,
 * writes the reply and is counted then. Accounting (akv_cmd_account: the
 * per-command latency histograms, allocated at a command's first call) and
 * the cron's samples (instantaneous_*, the key tables' doublings, bounded
 * by CRON_REHASH_NS) are loop-thread only too.
 *
 * Limits and security: dispatch refuses every command but AUTH, PING, QUIT
 * and HELP (AKV_CMD_NOAUTH) until a connection that must authenticate has
 * done so, every command not flagged AKV_CMD_LOADING while the AOF replays
 * (LOADING), and writes while the AOF cannot be written (MISCONF). With
 * key-normalize, dispatch hands the handler (and MULTI's queue) the call's
 * keys in normal form (akv_cmd_keys_normalize, cmd-vocab.c).
 *
 * Replies are all-or-nothing: if writing one fails for lack of memory, the
 * buffer is cut back to where the reply began and "-ERR out of memory" takes
 * its place, so a client never sees half an array.
 */
#include "server/cmd-impl.h"

#include <sys/random.h>

/* A job's finish: counts the call that ran for us microseconds (statistics,
 * slow log) and lets go of its argument copy. */
void akv_cmd_job_account(struct akv_cmd_env *env, struct akv_cmd_job *cj, uint64_t us, int failed)
{
    if (cj->cmd) {
        akv_cmd_account(env, cj->cmd, us, now_ns() - cj->t0, failed, cj->slow, 0, NULL, NULL);
        cj->slow = NULL;
    }
    /* A job's error replies are all -ERR (a failed scan, out of memory). */
    if (failed)
        akv_cmd_count_error(env, "-ERR", 4);
    akv_slowlog_entry_free(cj->slow);
}

void akv_cmd_count_error(struct akv_cmd_env *env, const char *reply, size_t len)
{
    struct akv_stats *st = &env->stats;
    size_t n = 0, i;

    st->error_replies++;
    if (len < 2 || reply[0] != '-')
        return;
    reply++;
    len--;
    while (n < len && n < AKV_ERRSTAT_CODE_MAX && reply[n] != ' ' && reply[n] != '\r')
        n++;
    for (i = 0; i < st->nerrstat; i++) {
        if (strncmp(st->errstat[i].code, reply, n) == 0 && st->errstat[i].code[n] == '\0') {
            st->errstat[i].count++;
            return;
        }
    }
    if (n == 0 || st->nerrstat == AKV_ERRSTAT_MAX)
        return;
    memcpy(st->errstat[i].code, reply, n);
    st->errstat[i].code[n] = '\0';
    st->errstat[i].count = 1;
    st->nerrstat++;
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

/* Whether directive name[0, len) holds a secret (requirepass), whose value
 * the slow log and MONITOR never show. */
static int secret_directive(const struct akv_cmd_env *env, const struct akv_slice *name)
{
    char n[64];

    (void)env;
    if (name->len >= sizeof(n) || memchr(name->p, '\0', name->len))
        return 0;
    memcpy(n, name->p, name->len);
    n[name->len] = '\0';
    return akv_config_is_secret(n);
}

int akv_cmd_arg_secret(const struct akv_cmd_env *env, const struct akv_cmd *c, size_t argc,
                       const struct akv_slice *argv, size_t i)
{
    if (i == 0 || i >= argc)
        return 0;
    if (c->flags & AKV_CMD_SECRET)
        return 1;
    if (c->handler == akv_cmd_do_hello) {
        /* HELLO [protover] [AUTH username password] [SETNAME name] ... */
        size_t j = 1;
        unsigned long long v;
        if (akv_parse_ull(argv[1].p, argv[1].len, UINT64_MAX, &v) == 0)
            j = 2;
        /* Only as far as i: a HELLO of many SETNAME options costs each
         * argument shown a walk of the ones before it, not of them all. */
        while (j < argc && j <= i) {
            if (arg_is(&argv[j], "AUTH") && j + 2 < argc) {
                if (i == j + 1 || i == j + 2)
                    return 1;
                j += 3;
            } else if (arg_is(&argv[j], "SETNAME") && j + 1 < argc) {
                j += 2;
            } else {
                break;
            }
        }
        return 0;
    }
    if (c->handler == akv_cmd_do_config && argc >= 4 && arg_is(&argv[1], "SET"))
        /* CONFIG SET name value ...: a secret's value. */
        return i >= 3 && i % 2 == 1 && secret_directive(env, &argv[i - 1]);
    return 0;
}

/* The slow log's copy of a call's arguments. Secrets (AUTH's arguments,
 * HELLO's AUTH pair, CONFIG SET requirepass's value) become "(redacted)",
 * as in Redis, so neither a password nor anyone's wrong guess is ever
 * recorded. */
struct akv_slowlog_entry *akv_cmd_slow_entry(const struct akv_cmd_env *env, const struct akv_cmd *c,
                                             size_t argc, const struct akv_slice *argv,
                                             const char *peer)
{
    struct akv_slice hidden[AKV_SLOWLOG_ARGC_MAX];
    size_t n = argc < AKV_SLOWLOG_ARGC_MAX ? argc : AKV_SLOWLOG_ARGC_MAX, i;
    int any = 0;

    for (i = 0; i < n; i++) {
        int secret = akv_cmd_arg_secret(env, c, argc, argv, i);
        hidden[i] = secret ? (struct akv_slice){"(redacted)", 10} : argv[i];
        any |= secret;
    }
    if (!any)
        return akv_slowlog_entry_new(argc, argv, peer);
    /* Past the first AKV_SLOWLOG_ARGC_MAX the entry shows only a count. */
    return akv_slowlog_entry_new(argc, hidden, peer);
}

/* Counts one call of c that ran for us microseconds: the per-command
 * counters, the error count and the slow log. slow is the job's argument
 * copy (taken over: logged or freed), or NULL, in which case argv (still
 * valid for a command answered at once) is copied if the call is slow. */
void akv_cmd_account(struct akv_cmd_env *env, const struct akv_cmd *c, uint64_t us, uint64_t ns,
                     int failed, struct akv_slowlog_entry *slow, size_t argc,
                     const struct akv_slice *argv, const char *peer)
{
    size_t ci = (size_t)(c - akv_cmd_table());
    struct akv_cmdstat *cs = &env->stats.cmd[ci];
    struct akv_hist *h = env->cmd_hist[ci];
    int threshold = env->config->slowlog_slower_than;

    cs->calls++;
    cs->usec += us;
    if (!h) {
        /* Without memory the command's latency goes uncounted; nothing
         * else is affected. */
        h = env->cmd_hist[ci] = calloc(1, sizeof(*h));
        env->ncmd_hist += h != NULL;
    }
    if (h)
        akv_hist_record(h, ns);
    if (env->config->latency_monitor_threshold > 0 &&
        us / 1000 >= (uint64_t)env->config->latency_monitor_threshold) {
        uint64_t ms = us / 1000;
        akv_latency_add(&env->latency,
                        (c->flags & AKV_CMD_FAST) ? AKV_LATENCY_FAST_COMMAND : AKV_LATENCY_COMMAND,
                        (int64_t)time(NULL), ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
    }
    if (failed)
        cs->failed++;
    if (threshold >= 0 && us >= (uint64_t)threshold) {
        if (!slow && argv)
            slow = akv_cmd_slow_entry(env, c, argc, argv, peer);
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
    if (s->monitor && env->monitor_set)
        env->monitor_set(env, s, 0);
    s->monitor = 0;
}

/* Takes a sample of the rate of a counter now at value, if the last was
 * taken AKV_INST_PERIOD_MS ago or more. A counter that went back (CONFIG
 * RESETSTAT) counts from its new value. */
static void inst_sample(struct akv_inst *m, uint64_t value)
{
    uint64_t now = now_ns() / 1000000u, dt = now - m->last_ms;

    if (m->last_ms != 0 && dt < AKV_INST_PERIOD_MS)
        return;
    if (m->last_ms != 0 && dt > 0)
        m->samples[m->idx] =
            value >= m->last_value ? (double)(value - m->last_value) * 1000.0 / (double)dt : 0;
    m->idx = (m->idx + 1) % AKV_INST_SAMPLES;
    m->last_ms = now;
    m->last_value = value;
}

/* The cron's share of the key tables' doublings: buckets in runs of 1,024
 * for at most CRON_REHASH_NS, the databases in turn (the next call starts
 * where this one stopped). */
#define CRON_REHASH_NS 1000000u

static void cron_rehash(struct akv_cmd_env *env)
{
    uint64_t start = now_ns();

    for (uint32_t n = 0; n < env->ndbs; n++) {
        uint32_t db = (env->rehash_db + n) % env->ndbs;
        while (akv_store_rehash(env->dbs[db], 1024)) {
            if (now_ns() - start > CRON_REHASH_NS) {
                env->rehash_db = db;
                return;
            }
        }
    }
}

void akv_cmd_cron(struct akv_cmd_env *env)
{
    struct akv_persist_info pi;
    size_t used;

    akv_cmd_cluster_cron(env);
    akv_persist_info(env->persist, &pi);
    if (pi.rewrites != env->rewrites_seen) {
        /* A rewrite finished (successfully: only those are counted) since
         * the last look, at most AKV_CONN_CRON_MS ago. */
        env->rewrites_seen = pi.rewrites;
        env->lastsave = time(NULL);
    }
    used = akv_cmd_used_memory(env);
    if (used > env->used_memory_peak)
        env->used_memory_peak = used;
    akv_cmd_make_ids(env);
    cron_rehash(env);
    inst_sample(&env->inst[AKV_INST_OPS], env->stats.commands_processed);
    inst_sample(&env->inst[AKV_INST_NET_IN], env->stats.net_input_bytes);
    inst_sample(&env->inst[AKV_INST_NET_OUT], env->stats.net_output_bytes);
}

void akv_cmd_note_client_buffers(struct akv_cmd_env *env, size_t in, size_t out)
{
    struct akv_client_peaks *p = &env->client_peaks;
    uint64_t sec = now_ns() / 1000000000u;
    size_t i = (size_t)(sec % AKV_CLIENT_PEAK_SLOTS);

    if (p->sec[i] != sec) {
        p->sec[i] = sec;
        p->in[i] = p->out[i] = 0;
    }
    if (in > p->in[i])
        p->in[i] = in;
    if (out > p->out[i])
        p->out[i] = out;
}

/* 40 hex digits from the kernel's generator, or, should it fail, from
 * the clock and the process id. */
static void random_hex40(char out[41])
{
    unsigned char raw[20];
    size_t got = 0;

    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, GRND_NONBLOCK);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof(raw)) {
        uint64_t x = now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
        for (size_t i = 0; i < sizeof(raw); i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            raw[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void akv_cmd_make_ids(struct akv_cmd_env *env)
{
    if (!env->run_id[0])
        random_hex40(env->run_id);
    if (!env->replid[0])
        random_hex40(env->replid);
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
#define L AKV_CMD_LOADING

static const struct akv_cmd table[] = {
    {"PING", -1, F | N, akv_cmd_do_ping, 0, 0, 0, "PING [message]", "reply PONG, or the message"},
    {"ECHO", 2, F, akv_cmd_do_echo, 0, 0, 0, "ECHO message", "reply the message"},
    {"QUIT", -1, F | N | Q | L, akv_cmd_do_quit, 0, 0, 0, "QUIT",
     "reply OK and close the connection"},
    {"READABLE", -1, F | N | L, akv_cmd_do_readable, 0, 0, 0, "READABLE [ON|OFF]",
     "replies as text for people at a terminal (ON), or RESP (OFF, the default)"},
    {"HELP", 1, N | L, akv_cmd_do_help, 0, 0, 0, "HELP", "list the commands"},
    {"COMMAND", -1, L, akv_cmd_do_command, 0, 0, 0, "COMMAND [COUNT|DOCS|INFO name...|LIST]",
     "describe the commands (for redis-cli)"},
    {"CONFIG", -2, A | L, akv_cmd_do_config, 0, 0, 0,
     "CONFIG GET pattern [pattern ...] | SET name value [name value ...] | RESETSTAT | "
     "RELOAD | REWRITE",
     "read settings (name, value pairs), change the run-time ones, zero the INFO counters, "
     "reload or rewrite the configuration file"},
    {"SLOWLOG", -2, A | L, akv_cmd_do_slowlog, 0, 0, 0, "SLOWLOG GET [count] | LEN | RESET | HELP",
     "the commands slower than slowlog-log-slower-than microseconds, newest first"},
    {"AUTH", -2, F | N | L | AKV_CMD_SECRET, akv_cmd_do_auth, 0, 0, 0, "AUTH [default] password",
     "authenticate the connection (when requirepass is set)"},
    {"SELECT", 2, F | L, akv_cmd_do_select, 0, 0, 0, "SELECT index",
     "switch the connection to database index (0 .. databases-1)"},
    {"HELLO", -1, F | N | L, akv_cmd_do_hello, 0, 0, 0,
     "HELLO [protover [AUTH username password] [SETNAME clientname]]",
     "switch the protocol (2 or 3), authenticate, name the connection; reply the server's "
     "details"},
    {"RESET", 1, F | N | Q | L, akv_cmd_do_reset, 0, 0, 0, "RESET",
     "reset the connection: RESP2, db 0, no name, MONITOR and CLIENT REPLY off, "
     "not authenticated"},
    {"CLIENT", -2, L, akv_cmd_do_client, 0, 0, 0,
     "CLIENT ID|INFO|LIST|KILL|SETNAME|GETNAME|SETINFO|REPLY|NO-EVICT|PAUSE|UNPAUSE|UNBLOCK|HELP",
     "inspect, name and manage client connections"},
    {"MONITOR", 1, A | L, akv_cmd_do_monitor, 0, 0, 0, "MONITOR",
     "stream every command the server runs, secrets redacted"},
    {"TIME", 1, F | L, akv_cmd_do_time, 0, 0, 0, "TIME",
     "the server's clock: unix seconds and microseconds"},
    {"LASTSAVE", 1, F | L, akv_cmd_do_lastsave, 0, 0, 0, "LASTSAVE",
     "unix time of the last successful AOF rewrite (or of start-up)"},
    {"SAVE", 1, A, akv_cmd_do_save, 0, 0, 0, "SAVE",
     "refused: it would block the server (every write is in the AOF already)"},
    {"BGSAVE", -1, A, akv_cmd_do_bgsave, 0, 0, 0, "BGSAVE [SCHEDULE]",
     "compact the append-only file in the background, as BGREWRITEAOF"},
    {"SHUTDOWN", -1, A | L, akv_cmd_do_shutdown, 0, 0, 0,
     "SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]",
     "finish the requests in hand, make the AOF durable and exit, as SIGTERM does"},
    {"WAIT", 3, 0, akv_cmd_do_wait, 0, 0, 0, "WAIT numreplicas timeout",
     "how many other cluster nodes hold this connection's last write (0 on a single node)"},
    {"CLUSTER", -2, L, akv_cmd_do_cluster, 0, 0, 0,
     "CLUSTER INFO|NODES|MYID|ADD id host:port|REMOVE id|TRANSFER [id]|LASTINDEX|APPLIED|HELP",
     "the Raft cluster: state, members, membership changes"},
    {"ROLE", 1, F | L, akv_cmd_do_role, 0, 0, 0, "ROLE",
     "master (the cluster's leader, or a single node) or slave, with the replication state"},
    {"CONSISTENCY", -1, F, akv_cmd_do_consistency, 0, 0, 0, "CONSISTENCY [ryw|linearizable|stale]",
     "what this connection's reads wait for on a cluster node (default ryw)"},
    {"READONLY", 1, F, akv_cmd_do_readonly, 0, 0, 0, "READONLY",
     "CONSISTENCY stale, as Redis Cluster clients ask of replicas"},
    {"READWRITE", 1, F, akv_cmd_do_readwrite, 0, 0, 0, "READWRITE", "CONSISTENCY ryw again"},
    {"LATENCY", -2, L, akv_cmd_do_latency, 0, 0, 0,
     "LATENCY LATEST|HISTORY event|RESET [event ...]|DOCTOR|HELP",
     "commands slower than latency-monitor-threshold ms, by event"},
    {"MEMORY", -2, 0, akv_cmd_do_memory, 0, 0, 0,
     "MEMORY USAGE key [SAMPLES count]|STATS|DOCTOR|HELP", "what an entry and the server use"},
    {"OBJECT", -2, 0, akv_cmd_do_object, 0, 0, 0, "OBJECT ENCODING|FREQ|IDLETIME|REFCOUNT key|HELP",
     "how an entry is kept"},
    {"TYPE", 2, R | F, akv_cmd_do_type, 1, 1, 1, "TYPE key",
     "string, or none when the key is absent"},
    {"STRLEN", 2, R | F, akv_cmd_do_strlen, 1, 1, 1, "STRLEN key",
     "the length in bytes of the value under key (0 when absent)"},
    {"TOUCH", -2, R | F, akv_cmd_do_touch, 1, -1, 1, "TOUCH key [key ...]",
     "how many of the keys exist (there are no access times to update)"},
    {"RANDOMKEY", 1, R, akv_cmd_do_randomkey, 0, 0, 0, "RANDOMKEY",
     "a key chosen at random, or nil when there is none"},
    {"INFO", -1, L, akv_cmd_do_info, 0, 0, 0, "INFO [section ... | default | all | everything]",
     "server, clients, memory, persistence, stats, replication, cpu, latency, commandstats, "
     "errorstats, latencystats, cluster, store, keyspace and vectors figures"},
    {"SET", -3, W, akv_cmd_do_set, 1, 1, 1,
     "SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t-ms|KEEPTTL] [PAYLOAD]",
     "store value under key; every word of both must be in the vocabulary, or of the key only "
     "with PAYLOAD (the value is kept as bytes, not embedded)"},
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
    {"MULTI", 1, F | Q | L, akv_cmd_do_multi, 0, 0, 0, "MULTI",
     "start a transaction: queue commands until EXEC"},
    {"EXEC", 1, Q | L, akv_cmd_do_exec, 0, 0, 0, "EXEC",
     "run the queued commands as one (nil if a WATCHed key changed)"},
    {"DISCARD", 1, F | Q | L, akv_cmd_do_discard, 0, 0, 0, "DISCARD",
     "drop the queued commands and the WATCHed keys"},
    {"WATCH", -2, F | Q | L, akv_cmd_do_watch, 1, -1, 1, "WATCH key [key ...]",
     "make the next EXEC fail if one of these keys changes"},
    {"UNWATCH", 1, F | Q | L, akv_cmd_do_unwatch, 0, 0, 0, "UNWATCH", "forget the WATCHed keys"},
    {"BGREWRITEAOF", 1, A, akv_cmd_do_bgrewriteaof, 0, 0, 0, "BGREWRITEAOF",
     "compact the append-only file in the background"},
    {"QUERY", -2, R | S, akv_cmd_do_query, 0, 0, 0,
     "QUERY text [COUNT k] [WITHSCORES] [ATTENTION dot|cosine] [TEMPERATURE t] "
     "[METRIC l2|cosine|dot] [UNKNOWN error|skip] [WEIGHTING mean|sif] [POSITIVE plus [plus ...]] "
     "[NEGATIVE minus [minus ...]] [EXCLUDE word [word ...]] [EXCLUDEINPUT] [RESTRICT n] "
     "[MAXDIST d] [MINSCORE s] [WITHSIMILARITY]",
     "attend over the stored keys and reply the words nearest to the blended value (text: "
     "words, or VECTOR FP32 blob, or VECTOR VALUES dim v1 ... vd)"},
    {"EXPLAIN", -2, R | S, akv_cmd_do_explain, 0, 0, 0,
     "EXPLAIN text [COUNT n] [ATTENTION dot|cosine] [TEMPERATURE t] [WITHBLEND] "
     "[UNKNOWN error|skip] [WEIGHTING mean|sif] [POSITIVE plus [plus ...]] "
     "[NEGATIVE minus [minus ...]]",
     "the n entries with the largest attention weights, as [key, value, weight] (WITHBLEND: "
     "and [blend weight, embedded|payload]; text: words, or VECTOR FP32 blob, or VECTOR VALUES "
     "dim v1 ... vd)"},
    {"FGET", -2, R | S, akv_cmd_do_fget, 0, 0, 0,
     "FGET text [COUNT n] [WITHSCORES] [ATTENTION dot|cosine] [TEMPERATURE t] [MINWEIGHT w] "
     "[UNKNOWN error|skip] [WEIGHTING mean|sif] [POSITIVE plus [plus ...]] "
     "[NEGATIVE minus [minus ...]]",
     "the stored values, each weighted by the attention its keys receive, heaviest first "
     "(text: words, or VECTOR FP32 blob, or VECTOR VALUES dim v1 ... vd)"},
    {"NEIGHBORS", -2, R | S, akv_cmd_do_neighbors, 0, 0, 0,
     "NEIGHBORS text [COUNT k] [WITHSCORES] [METRIC l2|cosine|dot] [UNKNOWN error|skip] "
     "[WEIGHTING mean|sif] [POSITIVE plus [plus ...]] [NEGATIVE minus [minus ...]] [COSMUL] "
     "[EXCLUDE word [word ...]] [EXCLUDEINPUT] [RESTRICT n] [MAXDIST d] [MINSCORE s] "
     "[WITHSIMILARITY]",
     "the vocabulary words nearest to a word, phrase or word arithmetic (text: words, or "
     "VECTOR FP32 blob, or VECTOR VALUES dim v1 ... vd)"},
    {"ANALOGY", -4, R | S, akv_cmd_do_analogy, 0, 0, 0,
     "ANALOGY a b c [COUNT k] [WITHSCORES] [METRIC l2|cosine|dot] [UNKNOWN error|skip] "
     "[WEIGHTING mean|sif] [COSMUL] [EXCLUDE word [word ...]] [EXCLUDEINPUT] [RESTRICT n] "
     "[MAXDIST d] [MINSCORE s] [WITHSIMILARITY]",
     "a is to b as c is to which words: NEIGHBORS b POSITIVE c NEGATIVE a"},
    {"VOCAB", -2, 0, akv_cmd_do_vocab, 0, 0, 0, "VOCAB EXISTS word [word ...]|INFO|HELP",
     "which words the vocabulary knows, and what the vocabulary is"},
    {"EMBED", -2, R | F, akv_cmd_do_embed, 0, 0, 0,
     "EMBED text [RAW] [UNKNOWN error|skip] [WEIGHTING mean|sif]",
     "the vector of a word or phrase: dim doubles, or with RAW little-endian FP32 bytes"},
    {"SIMILARITY", -3, R | F, akv_cmd_do_similarity, 0, 0, 0,
     "SIMILARITY text1 text2 [UNKNOWN error|skip] [WEIGHTING mean|sif]",
     "the cosine of two words' or phrases' vectors"},
    {"DOESNTMATCH", -2, R, akv_cmd_do_doesntmatch, 0, 0, 0, "DOESNTMATCH word [word ...]",
     "the word furthest from the mean of the words' unit vectors (gensim's doesnt_match)"},
    {NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL},
};

#undef R
#undef W
#undef F
#undef S
#undef A
#undef N
#undef Q
#undef L

_Static_assert(sizeof(table) / sizeof(table[0]) - 1 <= AKV_CMD_STATS_MAX,
               "raise AKV_CMD_STATS_MAX in cmd.h");
_Static_assert(2 * (sizeof(table) / sizeof(table[0])) <= 256, "raise LOOKUP_SLOTS in cmd.c");

/* The subcommands of the container commands, for COMMAND (INFO, DOCS,
 * LIST) and for the handlers that check them with akv_cmd_subcommand
 * (CLIENT, LATENCY, MEMORY, OBJECT; CONFIG, SLOWLOG and COMMAND check their
 * own). Grouped by container, in the order HELP lists them. */
#define R AKV_CMD_READONLY
#define F AKV_CMD_FAST
#define A AKV_CMD_ADMIN
static const struct akv_subcmd subtable[] = {
    {"CLIENT", "ID", 2, F, 0, 0, 0, "CLIENT ID", "the connection's id"},
    {"CLIENT", "INFO", 2, 0, 0, 0, 0, "CLIENT INFO", "the connection's CLIENT LIST line"},
    {"CLIENT", "LIST", -2, A, 0, 0, 0,
     "CLIENT LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]",
     "one line per client connection: id, addresses, name, age, buffers, last command ..."},
    {"CLIENT", "KILL", -3, A, 0, 0, 0,
     "CLIENT KILL ip:port | [ID client-id] [ADDR ip:port] [LADDR ip:port] "
     "[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [USER username] [SKIPME YES|NO]",
     "close the connections that match every filter given (the old form: one address)"},
    {"CLIENT", "SETNAME", 3, F, 0, 0, 0, "CLIENT SETNAME connection-name",
     "name the connection (\"\" removes the name)"},
    {"CLIENT", "GETNAME", 2, F, 0, 0, 0, "CLIENT GETNAME", "the connection's name, or nil"},
    {"CLIENT", "SETINFO", 4, F, 0, 0, 0, "CLIENT SETINFO LIB-NAME|LIB-VER value",
     "record the client library's name or version (shown by CLIENT LIST)"},
    {"CLIENT", "REPLY", 3, F, 0, 0, 0, "CLIENT REPLY ON|OFF|SKIP",
     "whether the server replies to this connection's commands"},
    {"CLIENT", "NO-EVICT", 3, F | A, 0, 0, 0, "CLIENT NO-EVICT ON|OFF",
     "keep this connection out of maxmemory-clients eviction"},
    {"CLIENT", "PAUSE", -3, A, 0, 0, 0, "CLIENT PAUSE timeout [WRITE|ALL]",
     "hold every client's commands (or only writes) back for timeout milliseconds"},
    {"CLIENT", "UNPAUSE", 2, A, 0, 0, 0, "CLIENT UNPAUSE", "end CLIENT PAUSE now"},
    {"CLIENT", "UNBLOCK", -3, A, 0, 0, 0, "CLIENT UNBLOCK client-id [TIMEOUT|ERROR]",
     "0: a client waiting for a worker cannot be interrupted"},
    {"CLIENT", "HELP", 2, 0, 0, 0, 0, "CLIENT HELP", "the CLIENT subcommands"},
    {"COMMAND", "COUNT", 2, 0, 0, 0, 0, "COMMAND COUNT", "how many commands there are"},
    {"COMMAND", "DOCS", -2, 0, 0, 0, 0, "COMMAND DOCS [command-name [command-name ...]]",
     "each command's summary, group and arguments (redis-cli's hints)"},
    {"COMMAND", "INFO", -2, 0, 0, 0, 0, "COMMAND INFO [command-name [command-name ...]]",
     "each command's arity, flags, key positions and subcommands"},
    {"COMMAND", "LIST", 2, 0, 0, 0, 0, "COMMAND LIST",
     "every command name, subcommands as container|subcommand"},
    {"CONFIG", "GET", -3, A, 0, 0, 0, "CONFIG GET parameter [parameter ...]",
     "the settings whose names match the glob patterns"},
    {"CONFIG", "SET", -4, A, 0, 0, 0, "CONFIG SET parameter value [parameter value ...]",
     "change run-time settings, all or nothing"},
    {"CONFIG", "RESETSTAT", 2, A, 0, 0, 0, "CONFIG RESETSTAT", "zero the INFO counters"},
    {"CONFIG", "RELOAD", 2, A, 0, 0, 0, "CONFIG RELOAD",
     "read the configuration file again and apply what may change at run time, all or nothing"},
    {"CONFIG", "REWRITE", 2, A, 0, 0, 0, "CONFIG REWRITE",
     "write the running settings back to the configuration file, keeping its comments"},
    {"LATENCY", "LATEST", 2, A, 0, 0, 0, "LATENCY LATEST",
     "each event: its newest sample's time and milliseconds, and its worst"},
    {"LATENCY", "HISTORY", 3, A, 0, 0, 0, "LATENCY HISTORY event",
     "the event's samples, oldest first: [unix time, milliseconds]"},
    {"LATENCY", "RESET", -2, A, 0, 0, 0, "LATENCY RESET [event [event ...]]",
     "forget the events' samples (every event's without arguments)"},
    {"LATENCY", "DOCTOR", 2, A, 0, 0, 0, "LATENCY DOCTOR", "a report on the latency events"},
    {"LATENCY", "HELP", 2, 0, 0, 0, 0, "LATENCY HELP", "the LATENCY subcommands"},
    {"MEMORY", "USAGE", -3, R, 2, 2, 1, "MEMORY USAGE key [SAMPLES count]",
     "the bytes the entry under key costs"},
    {"MEMORY", "STATS", 2, 0, 0, 0, 0, "MEMORY STATS", "where the server's memory goes"},
    {"MEMORY", "DOCTOR", 2, 0, 0, 0, 0, "MEMORY DOCTOR", "a report on memory use"},
    {"MEMORY", "HELP", 2, 0, 0, 0, 0, "MEMORY HELP", "the MEMORY subcommands"},
    {"OBJECT", "ENCODING", 3, R, 2, 2, 1, "OBJECT ENCODING key",
     "int, embstr or raw, as Redis would encode the value"},
    {"OBJECT", "FREQ", 3, R, 2, 2, 1, "OBJECT FREQ key",
     "refused: attnkv keeps no access frequencies"},
    {"OBJECT", "IDLETIME", 3, R, 2, 2, 1, "OBJECT IDLETIME key",
     "refused: attnkv keeps no access times"},
    {"OBJECT", "REFCOUNT", 3, R, 2, 2, 1, "OBJECT REFCOUNT key", "1: values are not shared"},
    {"OBJECT", "HELP", 2, 0, 0, 0, 0, "OBJECT HELP", "the OBJECT subcommands"},
    {"VOCAB", "EXISTS", -3, R | F, 0, 0, 0, "VOCAB EXISTS word [word ...]",
     "1 for each word the vocabulary knows (exact, then lowercase), 0 for the others"},
    {"VOCAB", "INFO", 2, R | F, 0, 0, 0, "VOCAB INFO",
     "the vocabulary's size, dimension, file, checksums and kernels"},
    {"VOCAB", "HELP", 2, 0, 0, 0, 0, "VOCAB HELP", "the VOCAB subcommands"},
    {"SLOWLOG", "GET", -2, A, 0, 0, 0, "SLOWLOG GET [count]",
     "the count newest entries (default 10, -1 for all)"},
    {"SLOWLOG", "LEN", 2, A, 0, 0, 0, "SLOWLOG LEN", "how many entries there are"},
    {"SLOWLOG", "RESET", 2, A, 0, 0, 0, "SLOWLOG RESET", "forget every entry"},
    {"SLOWLOG", "HELP", 2, 0, 0, 0, 0, "SLOWLOG HELP", "the SLOWLOG subcommands"},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL},
};
#undef R
#undef F
#undef A

const struct akv_subcmd *akv_cmd_subcommands(void)
{
    return subtable;
}

const struct akv_subcmd *akv_cmd_subcommand_lookup(const struct akv_cmd *c, const char *name,
                                                   size_t len)
{
    for (const struct akv_subcmd *sc = subtable; sc->parent; sc++)
        if (strcmp(sc->parent, c->name) == 0 && strlen(sc->name) == len &&
            strncasecmp(sc->name, name, len) == 0)
            return sc;
    return NULL;
}

int akv_cmd_subcommand(struct akv_cmd_ctx *ctx, const struct akv_subcmd **out)
{
    const struct akv_cmd *c = akv_cmd_lookup(ctx->argv[0].p, ctx->argv[0].len);
    const struct akv_subcmd *sc =
        c ? akv_cmd_subcommand_lookup(c, ctx->argv[1].p, ctx->argv[1].len) : NULL;
    char sb[AKV_QUOTE_BUF], lb[64], pb[32];
    int rc;

    *out = NULL;
    if (!sc) {
        rc = akv_reply_errorf(ctx->out, "ERR unknown subcommand '%s'. Try %s HELP.",
                              show(&ctx->argv[1], sb), c ? c->name : "");
        return rc < 0 ? rc : 1;
    }
    ctx->sess->last_sub = sc;
    if ((sc->arity > 0 && ctx->argc != (size_t)sc->arity) ||
        (sc->arity < 0 && ctx->argc < (size_t)-sc->arity)) {
        rc = akv_reply_errorf(ctx->out, "ERR wrong number of arguments for '%s|%s' command",
                              lower(sc->parent, pb, sizeof(pb)), lower(sc->name, lb, sizeof(lb)));
        return rc < 0 ? rc : 1;
    }
    *out = sc;
    return 0;
}

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

/* Hands the call to the MONITOR clients. A line that cannot be made for
 * lack of memory is not sent; the command itself is not affected. */
static void monitor_feed(struct akv_cmd_ctx *ctx, const struct akv_cmd *c)
{
    struct akv_buf line;

    akv_buf_init(&line);
    if (akv_cmd_monitor_line(&line, ctx->env, c, ctx->sess, ctx->argc, ctx->argv) == 0)
        ctx->env->monitor_feed(ctx->env, line.p, line.len);
    akv_buf_fini(&line);
}

int akv_cmd_dispatch(struct akv_cmd_ctx *ctx)
{
    const struct akv_cmd *c = akv_cmd_lookup(ctx->argv[0].p, ctx->argv[0].len);
    struct akv_cmd_env *env = ctx->env;
    struct akv_session *sess = ctx->sess;
    size_t mark = ctx->out->len;
    uint64_t t0 = now_ns();
    struct akv_cmd_keynorm kn = {NULL, NULL, NULL, 0};
    int rc;

    ctx->close_after_reply = 0;
    ctx->job = NULL;
    if (!env->in_exec)
        akv_cmd_clock(env); /* EXEC reads it once for all its commands */
    /* CLIENT REPLY SKIP drops the reply of the command after it; CLIENT
     * REPLY ON (run now) cancels that, as in Redis. */
    sess->reply_skip = sess->reply_skip_next;
    sess->reply_skip_next = 0;
    if (!c) {
        char sb[AKV_QUOTE_BUF];
        akv_cmd_multi_fail(ctx->sess);
        rc = akv_reply_errorf(ctx->out, "ERR unknown command '%s' (HELP lists the commands)",
                              show(&ctx->argv[0], sb));
        goto out;
    }
    env->stats.commands_processed++;
    if ((c->arity > 0 && ctx->argc != (size_t)c->arity) ||
        (c->arity < 0 && ctx->argc < (size_t)-c->arity)) {
        env->stats.cmd[c - table].rejected++;
        akv_cmd_multi_fail(ctx->sess);
        rc = reply_wrong_arity(ctx);
        goto out;
    }
    if (ctx->env->config->requirepass && !ctx->sess->authenticated &&
        !(c->flags & AKV_CMD_NOAUTH)) {
        rc = akv_reply_error(ctx->out, "NOAUTH Authentication required.");
        goto out;
    }
    if (env->loading && !(c->flags & AKV_CMD_LOADING)) {
        /* Before queueing, as in Redis: a transaction that asked for one
         * fails at EXEC. */
        env->stats.cmd[c - table].rejected++;
        akv_cmd_multi_fail(ctx->sess);
        rc = akv_reply_error(ctx->out, "LOADING attnkv is loading the dataset in memory");
        goto out;
    }
    rc = akv_cmd_keys_normalize(ctx, c, &kn); /* key-normalize */
    if (rc != 0) {
        if (rc > 0) {
            env->stats.cmd[c - table].rejected++;
            akv_cmd_multi_fail(ctx->sess);
        }
        rc = rc < 0 ? rc : 0;
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
    sess->last_cmd = c;
    sess->last_sub = NULL;
    if (env->cluster && !env->applying &&
        ((c->flags & AKV_CMD_WRITE) ||
         (c->handler == akv_cmd_do_exec && akv_cmd_multi_writes(sess)))) {
        /* Cluster mode: the write becomes a log entry, applied (and
         * answered) once committed. */
        rc = akv_cmd_cluster_write(ctx, c);
    } else if (sess->cl_read_failed &&
               ((c->flags & AKV_CMD_READONLY) || c->handler == akv_cmd_do_exec)) {
        sess->cl_read_failed = 0;
        if (c->handler == akv_cmd_do_exec) {
            /* Its transaction ends unrun, as after a failed EXEC. */
            struct akv_buf sink;
            struct akv_cmd_ctx d = *ctx;
            akv_buf_init(&sink);
            d.out = &sink;
            (void)akv_cmd_do_discard(&d);
            akv_buf_fini(&sink);
        }
        rc = akv_reply_error(ctx->out, "TRYAGAIN no leader confirmed a linearizable read; "
                                       "try again");
    } else {
        rc = c->handler(ctx);
    }
    /* MONITOR itself is not shown, as in Redis (its caller would see it as
     * its own first line). */
    if (env->monitors > 0 && env->monitor_feed && c->handler != akv_cmd_do_monitor)
        monitor_feed(ctx, c);
    if (ctx->job) {
        /* Counted when the job finishes. Its arguments are copied now, as
         * they will be gone by then, unless the slow log is off. */
        ctx->job->cmd = c;
        ctx->job->t0 = t0;
        ctx->job->drop_reply = 0;
        if (rc == 0 && env->config->slowlog_slower_than >= 0)
            ctx->job->slow = akv_cmd_slow_entry(env, c, ctx->argc, ctx->argv, ctx->sess->peer);
    } else {
        uint64_t ns = now_ns() - t0;
        akv_cmd_account(env, c, ns / 1000, ns,
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
        rc = reply_oom(ctx->out) < 0 ? -ENOMEM : 0;
    }
    /* Every error reply written now is counted, by its code (a job's when
     * it finishes). */
    if (!ctx->job && ctx->out->len > mark && ctx->out->p[mark] == '-')
        akv_cmd_count_error(env, ctx->out->p + mark, ctx->out->len - mark);
    if (sess->reply_off || sess->reply_skip) {
        /* The client asked for no reply (CLIENT REPLY OFF or SKIP). */
        ctx->out->len = mark;
        if (ctx->job)
            ctx->job->drop_reply = 1;
        rc = 0;
    }
    sess->reply_skip = 0;
    akv_cmd_keys_restore(ctx, &kn);
    return rc;
}
