/*
 * cmd.h - the command table and its handlers.
 *
 * A handler gets the parsed arguments, the daemon's shared state (struct
 * akv_cmd_env) and the connection's output buffer. It either appends a whole
 * reply to the buffer, or, for a command that has to scan the vocabulary
 * (QUERY, EXPLAIN, NEIGHBORS) or do other slow work off the loop (KEYS on a
 * store snapshot, CONFIG REWRITE's file writing), prepares a job and leaves
 * it in ctx->job: the
 * connection then runs it on the worker pool and, back on the loop thread,
 * calls its finish function, which writes the reply. Handlers know nothing of
 * libuv or sockets, so they can be driven from a test with a plain buffer.
 *
 * Threading: akv_cmd_dispatch, handlers and finish run on the loop thread,
 * which owns the env and everything it points to. A job's work (or batch)
 * function runs on a worker thread and reads only what the job holds: its
 * own copy of the query vector and options, the immutable vocabulary, and a
 * store snapshot taken by the handler (see the threading contract in
 * attnkv/store.h). QUERY, EXPLAIN and NEIGHBORS jobs set batch, so that the
 * pool may run several queued ones in one vocabulary pass.
 */
#ifndef ATTNKV_CMD_H
#define ATTNKV_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "attnkv/store.h"
#include "attnkv/vocab.h"
#include "server/config.h"
#include "persist/persist.h"
#include "util/hist.h"
#include "server/pool.h"
#include "proto/proto.h"
#include "proto/reply.h"
#include "server/latency.h"
#include "server/slowlog.h"

/* Most commands the table may hold (for the per-command counters). */
#define AKV_CMD_STATS_MAX 128

/* Per-command counters for INFO commandstats, as Redis keeps them. */
struct akv_cmdstat {
    uint64_t calls;    /* ran (whether or not they failed) */
    uint64_t usec;     /* total time; for pool jobs, dispatch to result */
    uint64_t failed;   /* ran and replied an error */
    uint64_t rejected; /* refused before running: wrong number of arguments */
};

/* Error replies by their code, the reply's first word (ERR, WRONGTYPE,
 * NOAUTH, ...), for INFO errorstats. The first AKV_ERRSTAT_MAX codes seen
 * are counted (attnkv has about a dozen); a later new one only in
 * total_error_replies, as Redis stops tracking new codes past its limit. */
#define AKV_ERRSTAT_MAX 32
#define AKV_ERRSTAT_CODE_MAX 31
struct akv_errstat {
    char code[AKV_ERRSTAT_CODE_MAX + 1];
    uint64_t count;
};

/* Counters for INFO. Loop thread only. CONFIG RESETSTAT zeroes all but
 * connected_clients, jobs_running and paused_clients. */
struct akv_stats {
    uint64_t connections_received; /* accepted, including rejected ones */
    uint64_t rejected_connections; /* turned away at maxclients */
    uint64_t connected_clients;    /* open right now */
    uint64_t commands_processed;
    uint64_t query_count;  /* QUERY replies sent (errors excluded) */
    uint64_t query_us_sum; /* from dispatch to reply, queueing included */
    uint64_t query_us_max;
    uint64_t jobs_running;       /* QUERY/EXPLAIN/NEIGHBORS jobs on the pool */
    uint64_t query_batches;      /* batches of those jobs run, each one vocabulary pass */
    uint64_t query_batched_jobs; /* jobs those batches held (a lone job is a batch of 1) */
    uint64_t query_batch_max;    /* the largest batch */
    uint64_t query_from_lists;   /* QUERYs answered from neighbor lists, without a scan */
    uint64_t error_replies;      /* -ERR replies to commands, unknown ones included */
    uint64_t expired_keys;       /* deleted because their time had come */
    uint64_t keyspace_hits;      /* lookups of live keys (GET, MGET, ...) */
    uint64_t keyspace_misses;
    uint64_t paused_clients;   /* gauge: clients holding a command back for CLIENT PAUSE */
    uint64_t net_input_bytes;  /* read from client sockets */
    uint64_t net_output_bytes; /* written to them */
    struct akv_errstat errstat[AKV_ERRSTAT_MAX];
    size_t nerrstat;
    struct akv_hist query_hist;                /* QUERY latency, µs, like query_us_* */
    struct akv_cmdstat cmd[AKV_CMD_STATS_MAX]; /* indexed like akv_cmd_table() */
};

/* One of INFO's instantaneous_* rates, sampled as Redis does: every
 * AKV_INST_PERIOD_MS akv_cmd_cron notes the rate of a counter since the
 * last sample in a ring of AKV_INST_SAMPLES; INFO shows their mean, the
 * rate over the last 1.6 seconds. */
#define AKV_INST_SAMPLES 16
#define AKV_INST_PERIOD_MS 100
struct akv_inst {
    uint64_t last_ms, last_value;
    double samples[AKV_INST_SAMPLES];
    unsigned idx;
};
enum { AKV_INST_OPS, AKV_INST_NET_IN, AKV_INST_NET_OUT, AKV_INST_COUNT };

/* The largest client input and output buffers of each of the last
 * AKV_CLIENT_PEAK_SLOTS seconds (INFO's client_recent_max_*_buffer, as
 * Redis keeps them), noted by the connection layer's cron. */
#define AKV_CLIENT_PEAK_SLOTS 8
struct akv_client_peaks {
    uint64_t sec[AKV_CLIENT_PEAK_SLOTS]; /* the second (monotonic) a slot is for */
    size_t in[AKV_CLIENT_PEAK_SLOTS], out[AKV_CLIENT_PEAK_SLOTS];
};

struct akv_watch;
struct akv_reaper;
struct akv_session;
struct akv_client_info;

/* CLIENT PAUSE: until end_ms (CLOCK_MONOTONIC milliseconds; 0: no pause),
 * clients hold back every command (all) or only writes. */
struct akv_pause {
    uint64_t end_ms;
    int all;
};

/* What handlers may read and change: everything the daemon shares between
 * connections. Filled by main/server; owned by the loop thread. */
struct akv_cmd_env {
    struct akv_config *config; /* CONFIG SET changes the run-time directives */
    /* The command line, whose directives a reload applies over the file's
     * again (CONFIG RELOAD, SIGUSR2); NULL: none (tests). */
    const struct akv_config_args *args;
    const struct akv_vocab *vocab;
    struct akv_nbcache *nbcache; /* neighbor lists for QUERY (attnkv/nbcache.h); NULL: none */
    /* The databases (SELECT n works on dbs[n]); SWAPDB exchanges two
     * pointers. Every store's clock is &now_ms. */
    struct akv_store **dbs;
    uint32_t ndbs;
    uint64_t now_ms; /* wall clock, ms since the epoch: set at each command (once per EXEC) */
    uint64_t (*clock_ms)(void); /* tests: the clock akv_cmd_clock reads instead of the wall's */
    int in_exec;                /* EXEC is running its queued commands */
    struct akv_watch *watch;    /* WATCHed keys of every connection (cmd-multi.c); NULL: none */
    /* Flushed databases' stores, freed off the loop thread once no snapshot
     * reads them (cmd-keys.c, akv_cmd_reap). */
    struct akv_store **dead;
    size_t ndead, dead_cap;
    struct akv_reaper *reapers;
    struct akv_persist *persist; /* the AOF; NULL with appendonly no */
    /* The AOF is replaying (main.c, in slices on the loop thread): the
     * stores are not whole, so only AKV_CMD_LOADING commands run, and the
     * expiry cycle waits. */
    int loading;
    struct akv_stats stats;
    const char *vectors_path; /* the vocabulary file that was opened */
    double vocab_load_ms;     /* how long opening it took */
    int tcp_port;             /* the port actually listened on */
    unsigned workers;         /* worker threads in the pool */
    time_t start_time;        /* wall clock, for uptime */
    uint64_t start_ns;        /* monotonic, for uptime */
    struct akv_slowlog slowlog;
    /* Set by the server; NULL in tests. apply_setting makes a directive
     * that CONFIG SET has just changed take effect (reopening the log for
     * logfile); a failure makes CONFIG SET put the old value back. It
     * returns 0 or a negative errno with a reason in err. queue_len is the
     * number of jobs waiting for a worker. */
    int (*apply_setting)(struct akv_cmd_env *env, const char *name, char *err, size_t errlen);
    size_t (*queue_len)(const struct akv_cmd_env *env);
    /* The connection layer's side of CLIENT, MONITOR and SHUTDOWN (set by
     * the server; NULL in tests, where those commands say they are not
     * available). Handlers call these instead of touching connections.
     *   clients: calls fn for every open client, or only for the one whose
     *     session is `only`; fn returns AKV_CLIENT_KEEP, AKV_CLIENT_KILL
     *     (the connection is closed at once; never the caller's own, which
     *     the handler closes with close_after_reply) or a negative errno,
     *     which stops the walk and is returned. O(clients).
     *   clients_memory: the bytes of every client's buffers together.
     *   monitor_set: the session starts (on) or stops receiving the
     *     MONITOR feed; env->monitors counts the sessions that do.
     *   monitor_feed: appends one formatted MONITOR line to every monitor's
     *     output (subject to the output buffer limits).
     *   pause_changed: env->pause was set or cleared (CLIENT PAUSE,
     *     UNPAUSE): clients held back are woken when it ends.
     *   shutdown: starts the shutdown that SIGTERM starts, once the
     *     calling request is over; with now, every connection is closed at
     *     once instead of being let finish what it has received. */
    int (*clients)(struct akv_cmd_env *env, const struct akv_session *only,
                   int (*fn)(void *arg, const struct akv_client_info *ci), void *arg);
    size_t (*clients_memory)(const struct akv_cmd_env *env);
    void (*monitor_set)(struct akv_cmd_env *env, struct akv_session *s, int on);
    void (*monitor_feed)(struct akv_cmd_env *env, const char *line, size_t len);
    void (*pause_changed)(struct akv_cmd_env *env);
    void (*shutdown)(struct akv_cmd_env *env, int now);
    uint64_t rng; /* RANDOMKEY's generator state; 0: not yet seeded */
    void *hook_data;

    /* Loop thread state of the operations commands (zeroed at start). */
    size_t monitors;            /* sessions receiving the MONITOR feed (kept by the hooks) */
    struct akv_pause pause;     /* CLIENT PAUSE */
    struct akv_latency latency; /* LATENCY: events over latency-monitor-threshold */
    time_t lastsave;            /* LASTSAVE: the last successful AOF rewrite; 0: start_time */
    uint64_t rewrites_seen;     /* rewrites counted when akv_cmd_cron last looked */
    uint32_t rehash_db;         /* where akv_cmd_cron's key-table work resumes */
    size_t used_memory_peak;    /* the largest used_memory seen (INFO, akv_cmd_cron) */

    /* INFO's state between calls (cmd.c, cmd-server.c). */
    /* Per-command latency in nanoseconds for INFO latencystats, indexed like
     * akv_cmd_table(): allocated at a command's first call (a histogram is
     * about 30 KB), freed by CONFIG RESETSTAT and akv_cmd_env_fini. */
    struct akv_hist *cmd_hist[AKV_CMD_STATS_MAX];
    size_t ncmd_hist;                     /* of those allocated */
    struct akv_inst inst[AKV_INST_COUNT]; /* instantaneous_* samples */
    struct akv_client_peaks client_peaks;
    /* Cluster mode (cmd-cluster.c; NULL: a single node). While applying
     * is set, commands run from a committed log entry: they change the
     * store directly, checking no memory or key-count limit. */
    struct akv_cmd_cluster *cluster;
    int applying;
    uint64_t cluster_applied; /* the last log index applied */
    char run_id[41];          /* 40 random hex digits, made at the first INFO or cron */
    char replid[41];          /* master_replid: the same, another draw */
};

/* CLIENT KILL's callback answers (see env->clients). */
enum { AKV_CLIENT_KEEP = 0, AKV_CLIENT_KILL = 1 };

/* A pool job prepared by a handler. The connection owns it from dispatch
 * until it calls finish, which writes the reply into out (or, when out is
 * NULL because the client has gone, writes nothing), releases whatever the
 * job holds (its store snapshot) and frees the job. */
struct akv_cmd_job {
    struct akv_pool_job pool; /* work or batch set by cmd.c; done set by the connection */
    void (*finish)(struct akv_cmd_job *job, struct akv_buf *out);
    void *owner; /* the connection, for its done callback */
    /* Set by akv_cmd_dispatch: the client asked for no reply to this call
     * (CLIENT REPLY OFF or SKIP); the connection then finishes the job with
     * out NULL, as for a client that has gone. */
    int drop_reply;
    /* Set by akv_cmd_dispatch, for the statistics and the slow log. */
    const struct akv_cmd *cmd;
    uint64_t t0;                    /* monotonic ns at dispatch */
    struct akv_slowlog_entry *slow; /* argv copy, when the slow log may want it */
    /* The connection's: a pipelined cluster write answered before the
     * ones ahead of it, its reply held back until theirs are sent. */
    int completed;
};

struct akv_multi;

/* The longest CLIENT SETNAME name and CLIENT SETINFO value, in bytes.
 * Redis has no limit; here every connection keeps them in place, so that
 * 10,000 named clients cost a few MB at most. */
#define AKV_CLIENT_NAME_MAX 256
#define AKV_CLIENT_LIB_MAX 128

/* A connection's state as the command layer sees it: the connection embeds
 * one (zeroed, then id and peer set) and hands it to every call; handlers
 * change it. akv_cmd_session_fini releases what commands attached to it. */
struct akv_session {
    uint64_t id;       /* CLIENT ID: unique for the daemon's life */
    char peer[64];     /* "ip:port" of the client, or "?" */
    char laddr[64];    /* "ip:port" it connected to, or "" */
    int authenticated; /* AUTH succeeded */
    int db;            /* SELECTed database */
    int resp;          /* protocol of replies: 2 (default) or 3 after HELLO 3 */
    int readable;      /* replies as text for people: 1 READABLE ON, 2 readable-replies inline */
    struct akv_multi *multi; /* MULTI state and WATCHed keys (cmd-multi.c); NULL: none */
    /* CLIENT state (cmd-client.c). */
    char name[AKV_CLIENT_NAME_MAX + 1];    /* CLIENT SETNAME; "": none */
    char lib_name[AKV_CLIENT_LIB_MAX + 1]; /* CLIENT SETINFO LIB-NAME */
    char lib_ver[AKV_CLIENT_LIB_MAX + 1];  /* CLIENT SETINFO LIB-VER */
    const struct akv_cmd *last_cmd;        /* the last command run, for CLIENT LIST */
    const struct akv_subcmd *last_sub;     /* and its subcommand, if it has one */
    unsigned monitor : 1;                  /* receiving the MONITOR feed */
    unsigned reply_off : 1;                /* CLIENT REPLY OFF */
    unsigned reply_skip_next : 1;          /* CLIENT REPLY SKIP: drop the next reply */
    unsigned reply_skip : 1;               /* dispatch: drop this call's reply */
    unsigned no_evict : 1;                 /* CLIENT NO-EVICT ON */
    /* Cluster mode: the reads' consistency (CONSISTENCY), the read round
     * a linearizable read waits for (0: none), and whether that round
     * failed (the read then gets an error). */
    int cl_mode;
    uint64_t cl_ticket;
    uint64_t cl_last_index; /* the log index of this connection's last write */
    int cl_read_failed;
};

/* CONSISTENCY: what a read on a cluster node waits for. */
enum {
    AKV_CONSISTENCY_RYW = 0,          /* nothing more: this connection's writes are applied */
    AKV_CONSISTENCY_LINEARIZABLE = 1, /* an index the leader confirmed after the read arrived */
    AKV_CONSISTENCY_STALE = 2,        /* nothing (as RYW today; named for clients' intent) */
};

/* One client as CLIENT LIST, INFO and KILL see it, filled by the connection
 * layer for env->clients' callback (valid during the call only). */
struct akv_client_info {
    const struct akv_session *sess;
    int fd;                 /* the socket, or -1 */
    uint64_t age_s, idle_s; /* since accepted; since a byte last moved */
    size_t qbuf, qbuf_free; /* query buffer: unparsed bytes, room left */
    size_t obl;             /* reply bytes waiting to be sent */
    size_t oll;             /* replies in flight in a write (0 or 1) */
    size_t omem;            /* output buffers' size */
    size_t tot_mem;         /* everything the connection holds */
    int reading, writing;   /* events: r, w */
    int blocked;            /* waiting for a worker (QUERY ...) */
    int paused;             /* holding a command back for CLIENT PAUSE */
    int closing;            /* to be closed once its reply is sent */
};

/* One call of a command. */
struct akv_cmd_ctx {
    struct akv_cmd_env *env;
    size_t argc;
    const struct akv_slice *argv; /* argv[0] is the command name */
    struct akv_buf *out;          /* the reply goes here */
    struct akv_session *sess;     /* the calling connection's state */
    /* Set by the handler. */
    int close_after_reply;   /* QUIT: flush, then close the connection */
    struct akv_cmd_job *job; /* run this on the pool; the reply comes from finish */
};

enum {
    AKV_CMD_WRITE = 1u << 0, /* changes the store */
    AKV_CMD_READONLY = 1u << 1,
    AKV_CMD_SLOW = 1u << 2, /* runs on the worker pool */
    AKV_CMD_FAST = 1u << 3, /* O(1) on the loop thread */
    AKV_CMD_ADMIN = 1u << 4,
    AKV_CMD_NOAUTH = 1u << 5,  /* allowed before AUTH when requirepass is set */
    AKV_CMD_SECRET = 1u << 6,  /* arguments are secret: never log or record them (AUTH) */
    AKV_CMD_NOQUEUE = 1u << 7, /* runs at once inside MULTI (EXEC, DISCARD, WATCH, ...) */
    /* Allowed while the AOF replays (Redis's "loading" flag: INFO, CONFIG,
     * CLIENT, AUTH, SHUTDOWN, ...; not PING, as a loading server counts as
     * unavailable); every other command gets -LOADING. */
    AKV_CMD_LOADING = 1u << 8,
};

/* A subcommand of a container command (CLIENT KILL, CONFIG GET, ...):
 * listed by COMMAND, and, for the containers whose handler asks
 * akv_cmd_subcommand, checked for arity as Redis 7 does ("wrong number of
 * arguments for 'client|kill' command"). */
struct akv_subcmd {
    const char *parent;             /* the container's name, upper case */
    const char *name;               /* upper case */
    int arity;                      /* as akv_cmd's, counting the container's name */
    unsigned flags;                 /* AKV_CMD_* */
    int firstkey, lastkey, keystep; /* key positions, for COMMAND (0 = none) */
    const char *usage;              /* "CLIENT KILL ..." */
    const char *summary;
};

struct akv_cmd {
    const char *name; /* upper case */
    int arity;        /* argc (name included) if > 0; at least -arity if < 0 */
    unsigned flags;   /* AKV_CMD_* */
    int (*handler)(struct akv_cmd_ctx *ctx);
    int firstkey, lastkey, keystep; /* key positions, for COMMAND (0 = none) */
    const char *usage;              /* "QUERY text [COUNT k] ..." for HELP */
    const char *summary;            /* one line for HELP */
};

/* Finds a command by name, case-insensitively; NULL when unknown. */
const struct akv_cmd *akv_cmd_lookup(const char *name, size_t len);

/* The whole table, terminated by an entry with a NULL name. */
const struct akv_cmd *akv_cmd_table(void);

/* Runs the command in ctx (argc >= 1): looks it up, checks its arity and
 * calls its handler, which replies into ctx->out or leaves a job in ctx->job.
 * Unknown commands and wrong arity get an -ERR reply; while requirepass is
 * set and ctx->authenticated is 0, commands other than AKV_CMD_NOAUTH ones
 * get -NOAUTH; while env->loading, commands other than AKV_CMD_LOADING
 * ones get -LOADING (and make a MULTI's EXEC fail, as Redis does).
 * AUTH updates ctx->authenticated. Counts the command, records
 * a latency event when it took latency-monitor-threshold ms or more, feeds
 * it to the MONITOR clients (secrets redacted), and drops its reply when
 * the session asked for none (CLIENT REPLY OFF or SKIP; a job's through
 * job->drop_reply).
 * Returns 0, or -ENOMEM when even the error reply could not be written (the
 * connection should then be dropped). Loop thread. */
int akv_cmd_dispatch(struct akv_cmd_ctx *ctx);

/* Sets env->now_ms to the wall clock (ms since the epoch). Loop thread. */
void akv_cmd_clock(struct akv_cmd_env *env);

/* The active expiry cycle: deletes expired entries (logged as DELs), in
 * every database, for at most budget_us microseconds (nothing while the
 * AOF loads or CLIENT PAUSE holds writes). Returns 1 if due
 * entries remain (call again soon), else 0. Loop thread. */
int akv_cmd_expire_cycle(struct akv_cmd_env *env, unsigned budget_us);

/* Frees what commands attached to env (the WATCH table, flushed stores);
 * every session must have been released and no snapshot be live. */
void akv_cmd_env_fini(struct akv_cmd_env *env);

/* Frees flushed databases' stores that nothing reads any more, each on a
 * thread of its own (a million entries take a good part of a second to
 * free), and joins the threads that have finished. With wait, frees and
 * joins everything (shutdown: no snapshot may be live). Loop thread. */
void akv_cmd_reap(struct akv_cmd_env *env, int wait);

/* The subcommands of the container commands, terminated by an entry with a
 * NULL parent. */
const struct akv_subcmd *akv_cmd_subcommands(void);

/* The command layer's periodic work, from the server's cron (every
 * AKV_CONN_CRON_MS): notes when an AOF rewrite has finished (LASTSAVE), the
 * peak of used_memory and (every AKV_INST_PERIOD_MS) the samples of the
 * instantaneous_* rates. Loop thread. */
void akv_cmd_cron(struct akv_cmd_env *env);

/* The connection layer's cron: the largest input and output buffers of
 * any client now (client_recent_max_*_buffer). Loop thread. */
void akv_cmd_note_client_buffers(struct akv_cmd_env *env, size_t in, size_t out);

/* Counts one error reply, reply[0, len) ("-CODE text\r\n"): in
 * total_error_replies, and in errorstats by its code (at most
 * AKV_ERRSTAT_CODE_MAX bytes of it). akv_cmd_dispatch counts every error
 * reply it writes, a job's finish its own. Loop thread. */
void akv_cmd_count_error(struct akv_cmd_env *env, const char *reply, size_t len);

/* Cluster mode (cmd-cluster.c). hooks fills the callbacks the cluster
 * node calls (cluster/cluster.h); attach makes env use node cl (created
 * with those hooks); detach, at shutdown, answers every waiting write
 * (as uncertain) and forgets the node. cron times out waiting writes
 * (the server's cron). hold: whether the request of session s, command c,
 * must wait (a linearizable read before its round and index); the
 * connection layer asks before running a request, and is woken through
 * env->pause_changed. */
struct akv_cluster;
struct akv_cluster_hooks;
void akv_cmd_cluster_hooks(struct akv_cmd_env *env, struct akv_cluster_hooks *h);
int akv_cmd_cluster_attach(struct akv_cmd_env *env, struct akv_cluster *cl);
void akv_cmd_cluster_detach(struct akv_cmd_env *env);
/* The server is stopping: waiting writes are answered (as uncertain), and
 * new ones refused. */
void akv_cmd_cluster_abort(struct akv_cmd_env *env);
/* Starts closing the node (its loop handles); the loop then runs until
 * they are closed. */
void akv_cmd_cluster_close(struct akv_cmd_env *env);
void akv_cmd_cluster_cron(struct akv_cmd_env *env);
void akv_cmd_cluster_flush(struct akv_cmd_env *env);
int akv_cmd_cluster_hold(struct akv_cmd_env *env, struct akv_session *s, const struct akv_cmd *c);

/* Makes env->run_id and env->replid if they are not made yet. */
void akv_cmd_make_ids(struct akv_cmd_env *env);

/* Whether the session is between MULTI and EXEC (its commands queue). */
int akv_cmd_session_in_multi(const struct akv_session *s);

/* Initialises a session (resp 2, db 0) with an id and the peer's
 * address (NULL: "?"). */
void akv_cmd_session_init(struct akv_session *s, uint64_t id, const char *peer);
/* Releases what commands attached to a session (a MULTI queue, watched
 * keys); call when the connection closes. Loop thread. */
void akv_cmd_session_fini(struct akv_cmd_env *env, struct akv_session *s);

/* The one "set, apply, roll back" path for run-time settings (CONFIG SET
 * and the reload, akv_cmd_config_reload): sets directive names[i] to values[i] for i < n,
 * all or nothing. Each is checked by the directive table and made to take
 * effect through env->apply_setting; if one fails, it and those set before
 * it are put back (newest first) from copies of their old values. *failed
 * gets the index of the one that failed. Returns 0, -EINVAL (err says why)
 * or -ENOMEM. Loop thread. */
int akv_cmd_settings_set(struct akv_cmd_env *env, size_t n, const char *const *names,
                         const char *const *values, size_t *failed, char *err, size_t errlen);

/* Reads the configuration file again (CONFIG RELOAD, SIGUSR2): into a fresh
 * struct, with the command line's directives (env->args) applied over it so
 * that they still win; then every run-time directive whose value changed is
 * set through akv_cmd_settings_set, all or nothing. A changed directive that
 * needs a restart is logged with a warning and not applied. Each change is
 * logged, prefixed with who ("CONFIG RELOAD", "SIGUSR2"), never showing a
 * secret's value. Returns 0, -ENOENT when the daemon has no configuration
 * file (err: Redis's "The server is running without a config file"),
 * -EINVAL or -errno with "file:line: reason", "name: reason" or
 * "path: reason" in err (then nothing changed), or -ENOMEM. Loop thread. */
int akv_cmd_config_reload(struct akv_cmd_env *env, const char *who, char *err, size_t errlen);

/* key-normalize: the normal form of a key (Unicode lowercase when it is
 * UTF-8, else ASCII lowercase; runs of whitespace one space; none at the
 * ends), malloc'd, its length in *outlen; NULL when out of memory
 * (cmd-vocab.c). */
char *akv_cmd_key_normal(const char *p, size_t len, size_t *outlen);

#endif
