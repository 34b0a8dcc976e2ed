/*
 * conn.h - one client connection: read buffer, request framing, the ordered
 * pipeline of commands (including those that wait on the worker pool), the
 * output buffer and the write queue.
 *
 * Every connection belongs to a struct akv_conn_shared, which the server
 * embeds and which holds what all connections share: the loop, the command
 * environment, the pool, the protocol limits, a list of the connections and
 * the argv/scratch buffers the parser fills. The other limits (query and
 * output buffers, idle timeout, the password) are read from env->config
 * when they are applied.
 *
 * Threading: loop thread only (see the Design comment in src/server/conn.c).
 */
#ifndef ATTNKV_CONN_H
#define ATTNKV_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "server/cmd.h"
#include "server/pool.h"
#include "proto/proto.h"

struct akv_conn;

struct akv_conn_shared {
    uv_loop_t *loop;
    struct akv_cmd_env *env;
    struct akv_pool *pool;
    struct akv_proto_limits limits;
    /* Called on the loop thread each time a connection has been freed;
     * the server uses it to notice when a shutdown may finish. */
    void (*on_release)(struct akv_conn_shared *sh);
    void *data; /* for on_release */

    /* Private to conn.c. */
    struct akv_slice *argv;
    size_t argv_cap;
    char *scratch;
    struct akv_conn *head;     /* every connection not yet freed */
    struct akv_conn *waiting;  /* connections with replies held for the AOF */
    struct akv_conn *ready;    /* connections that used up their turn with requests left */
    struct akv_conn *monitors; /* connections receiving the MONITOR feed */
    struct akv_conn *flushq;   /* monitors fed since the loop last polled */
    struct akv_conn *paused;   /* connections holding a request back for CLIENT PAUSE */
    uv_idle_t resume;          /* runs the ready ones again, one turn each */
    uv_prepare_t flusher;      /* sends what the monitors were fed, before the loop polls */
    uv_timer_t pause_timer;    /* ends CLIENT PAUSE */
    int resume_init;           /* the three handles are initialised (and must be closed) */
    size_t client_mem;         /* bytes of every connection's buffers together */
    size_t count;
    uint64_t next_id;
    int draining;
};

/* How often the server should call akv_conn_cron, in milliseconds. */
#define AKV_CONN_CRON_MS 100

/* What a client that has not authenticated while requirepass is set may
 * send (as in Redis: a handful of small arguments), and how long it may stay
 * connected without doing so. */
#define AKV_CONN_UNAUTH_ARGC 10
#define AKV_CONN_UNAUTH_BULK 16384
#define AKV_CONN_UNAUTH_IDLE_MS 10000

/* How long one connection may run requests before others get their turn,
 * in microseconds (see the stall rule in conn.c). */
#define AKV_CONN_TURN_US 1000
/* The most cluster writes one connection has out at once (pipelined); the
 * requests after them wait in its input. */
#define AKV_CONN_PIPELINE_MAX 64

/* The largest reply (RESP bytes) that readable mode translates for people;
 * a larger one is sent as RESP behind a line saying so, since translating
 * it on the loop thread would hold the other clients (about 10 ms a MiB). */
#define AKV_CONN_HUMANIZE_MAX (256u * 1024u)

/* Prepares sh (the caller then sets on_release and data). The protocol
 * limits come from env->config (proto-max-inline-len, proto-max-bulk-len,
 * proto-max-multibulk-len) and stay as they were at this call. Returns 0 or
 * -ENOMEM. */
int akv_conn_shared_init(struct akv_conn_shared *sh, uv_loop_t *loop, struct akv_cmd_env *env,
                         struct akv_pool *pool);
/* Closes sh's own loop handle; call with the server's other handles at
 * shutdown, before the loop's last run. */
void akv_conn_shared_close(struct akv_conn_shared *sh);
/* Frees what sh owns. Every connection must have been freed. NULL is a no-op. */
void akv_conn_shared_fini(struct akv_conn_shared *sh);

/* Allocates a connection with an initialised TCP handle, ready for
 * uv_accept on akv_conn_stream(c), and links it into sh. From here on it is
 * freed only through akv_conn_close (directly or after a start or reject).
 * Returns 0, -ENOMEM or the uv_tcp_init error (nothing to free then). */
int akv_conn_create(struct akv_conn_shared *sh, struct akv_conn **out);

uv_stream_t *akv_conn_stream(struct akv_conn *c);

/* Counts the accepted connection as a client and starts reading. */
void akv_conn_start(struct akv_conn *c);

/* Sends an error reply (e.g. "ERR max number of clients reached") and
 * closes once it has been written, without reading any request. */
void akv_conn_reject(struct akv_conn *c, const char *err);

/* Closes the socket now; the memory goes once no job refers to it. */
void akv_conn_close(struct akv_conn *c);

/* Shutdown, step one: every connection stops reading, finishes the request
 * it is running and the complete requests already buffered, writes out its
 * replies and closes. */
void akv_conn_drain_all(struct akv_conn_shared *sh);

/* Shutdown, when draining takes too long: closes every connection now. */
void akv_conn_close_all(struct akv_conn_shared *sh);

/* Periodic checks, every AKV_CONN_CRON_MS: closes clients idle for longer
 * than the timeout directive (one running a QUERY is not idle), clients that
 * have not authenticated while requirepass is set after
 * AKV_CONN_UNAUTH_IDLE_MS, and clients
 * whose unsent replies stayed above the output soft limit for longer than
 * allowed; tells the command layer the largest client buffers (INFO
 * client_recent_max_*_buffer). Bytes read and written are counted as they
 * move (INFO total_net_*_bytes). */
void akv_conn_cron(struct akv_conn_shared *sh);

/* Connections not yet freed (closing ones included). */
size_t akv_conn_count(const struct akv_conn_shared *sh);

/* What the env hooks of cmd.h do (the server wires them):
 *   akv_conn_clients: env->clients, over the open clients (not those being
 *     closed, nor those turned away at accept);
 *   akv_conn_memory: env->clients_memory, every connection's buffers;
 *   akv_conn_monitor_set / _feed: env->monitor_set and monitor_feed. A
 *     monitor's feed goes into its output buffer, under its output limits
 *     (past the hard limit it is closed), and is sent once per loop turn,
 *     just before the loop polls;
 *   akv_conn_pause_changed: env->pause_changed. While env->pause is in
 *     force, a connection whose next request is held back (every request,
 *     or only writes) stops there, reads no more than a pausing connection
 *     would, and is resumed when the pause ends (a timer) or is lifted. */
int akv_conn_clients(struct akv_conn_shared *sh, const struct akv_session *only,
                     int (*fn)(void *arg, const struct akv_client_info *ci), void *arg);
size_t akv_conn_memory(const struct akv_conn_shared *sh);
void akv_conn_monitor_set(struct akv_conn_shared *sh, struct akv_session *s, int on);
void akv_conn_monitor_feed(struct akv_conn_shared *sh, const char *line, size_t len);
void akv_conn_pause_changed(struct akv_conn_shared *sh);

/* env->persist was replaced (appendonly switched at run time): follows the
 * new one's progress, and sends the replies that waited for the old one
 * (closed, so everything it took is written). */
void akv_conn_persist_changed(struct akv_conn_shared *sh);

#endif
