/*
 * conn.c - client connections: framing, ordered pipelining, output.
 *
 * The stall rule
 * --------------
 * No single client, authenticated or not, with any request of any size, may
 * keep the loop thread from serving others for more than a few milliseconds,
 * or make the daemon allocate beyond its configured limits. Here that means:
 *   - a connection runs requests for at most AKV_CONN_TURN_US per turn, then
 *     waits on the `ready` list until the loop has polled every other
 *     socket (the `resume` idle handle runs it again);
 *   - the cost of one request is bounded where it is parsed and run: by the
 *     protocol limits, by each handler (commands whose cost grows with the
 *     store, such as KEYS, run on a snapshot on the pool), and, for a client
 *     that has not authenticated while requirepass is set, by the small
 *     AKV_CONN_UNAUTH_* limits, checked before anything is run;
 *   - memory is bounded per connection (client-query-buffer-limit,
 *     client-output-buffer-limit) and for all of them together
 *     (maxmemory-clients: past it the connection with the largest buffers is
 *     closed).
 * Every new command is written to this rule, and tests/integration/test_hostile.py
 * checks it from outside.
 *
 * Design
 * ------
 * Threading: everything here runs on the loop thread. The only other thread
 * that ever sees a connection is none: a worker gets a job (struct
 * akv_cmd_job), never the connection, and the job's done callback, which
 * names the connection, runs on the loop thread.
 *
 * Lifetime: a connection is freed when its reference count reaches zero.
 * References are held by its TCP handle (until its close callback), by its
 * linger timer once that is initialised (likewise), and by the job it is
 * running, if any (until the job's done callback). So a client that
 * disconnects in the middle of a QUERY has its socket closed at once, while
 * the struct stays valid for the job's done callback, which then finishes the
 * job with no output buffer (releasing its store snapshot) and drops the last
 * reference.
 *
 * Ordering: requests on one connection are answered in the order they
 * arrived. The processing loop stops at a request that became a pool job and
 * resumes only in that job's done callback, after the job's reply has been
 * appended, so later requests (even ones that would be answered at once) wait
 * behind it. Other connections keep being served meanwhile, because waiting
 * here is just not running the loop for this connection.
 *
 * Buffers and back-pressure:
 *   - `in` holds bytes read and not yet parsed, from in_pos on. Parsed
 *     arguments point into it (or into the shared scratch buffer) only for the
 *     duration of one dispatch, so it may be compacted or grown between
 *     requests; jobs copy what they need.
 *   - `out` collects replies; `wbuf` holds the bytes of the one uv_write in
 *     flight. A flush first tries uv_try_write, which usually sends
 *     everything without a request, then hands the rest to uv_write by
 *     swapping the two buffers (what try_write sent stays at the front of
 *     wbuf, wbuf_off bytes, rather than the rest being moved down over it:
 *     for a reply of many MB that move alone held the loop up).
 *   - While a job runs or more than out_pause() bytes of replies are waiting
 *     (the output soft limit, or OUT_PAUSE without one), reading stops once
 *     IN_PAUSE bytes are buffered, so a client pipelining faster than we
 *     answer is throttled by TCP instead of by our memory.
 *   - An incomplete request may not need more than client-query-buffer-limit
 *     bytes.
 *
 * Limits (client-output-buffer-limit, timeout): after each reply is added,
 * a connection whose unsent replies exceed the hard limit is closed at once
 * (its replies cannot be delivered in full, so none are). One that stays
 * above the soft limit is closed once it has been there for the configured
 * seconds; since reading pauses at the soft limit, a client that never
 * reads ends up there and is closed, and its memory with it. akv_conn_cron,
 * run from a server timer, checks the soft-limit time and the idle timeout:
 * a client is idle when no byte has moved either way for that long and it
 * has no job running.
 *
 * Session: `sess` is the connection's state as commands see it (AUTH,
 * database, protocol, MULTI; cmd.h); the command layer reads and sets it
 * through struct akv_cmd_ctx, and akv_cmd_session_fini releases it.
 *
 * Replies held for the AOF: a write command's reply must not leave before
 * its record is written to the kernel, or fsync'd under appendfsync always
 * (see the Design comment of src/persist/persist.c). This extends the ordering
 * above to the output stream: after a request that logged something,
 * run_request adds a mark (the position of its reply in the stream, the
 * AOF sequence it needs); flush sends only the bytes before the first
 * unsatisfied mark, so that reply and every later one wait, while the
 * connection keeps parsing and running requests. Marks are satisfied in
 * order, since sequences grow; those handed to the writer in the same loop
 * turn are merged into one, so a connection has at most AOF_MARKS. A
 * connection with marks is on the shared `waiting` list, which the AOF's
 * progress callback walks. Reads on other connections never wait.
 *
 * Commands about connections (CLIENT, MONITOR, CLIENT PAUSE; the env hooks
 * of cmd.h, wired by the server): akv_conn_clients walks the open
 * connections for CLIENT LIST and KILL and closes those the callback
 * names. A monitor is on the `monitors` list; each command's MONITOR line
 * is appended to every monitor's `out` (past the output hard limit the
 * monitor is closed at once), and the monitors fed during a loop turn are
 * put on `flushq` (with a reference) and written from the `flusher`
 * prepare handle just before the loop polls, once each, with their memory
 * counted then. While env->pause holds a connection's next request back,
 * the request stays parsed-but-unconsumed in `in`, the connection waits on
 * the `paused` list (reading as little as while a job runs), and the
 * `pause_timer`, CLIENT UNPAUSE or a shutdown puts it on the ready list
 * again.
 *
 * Closing: QUIT and protocol errors stop processing and close once the reply
 * is written. Before closing we shut down our sending side and read (and
 * discard) until the client closes too, for at most LINGER_MS: closing a
 * socket with unread input makes the kernel send a reset, which could destroy
 * the error reply before the client reads it. EOF from the client is a
 * half-close: the complete requests already received are still answered.
 */
#include "server/conn.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "util/log.h"
#include "persist/persist.h"
#include "proto/humanize.h"
#include "proto/reply.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define READ_CHUNK (16 * 1024)     /* free space offered to each read */
#define IN_KEEP_MAX (64 * 1024)    /* an idle buffer larger than this is freed */
#define IN_PAUSE ((size_t)1 << 20) /* see Design */
/* Reading pauses above this much output when there is no soft limit. */
#define OUT_PAUSE ((size_t)8 << 20)
#define OUT_KEEP_MAX (256 * 1024) /* an idle output buffer larger than this is freed */
#define ARGV_INITIAL 16
#define ARGV_KEEP_MAX 4096 /* a larger shared argv shrinks after its request */
#define LINGER_MS 2000
/* The fewest bytes a RESP argument takes ("$0\r\n\r\n"): an announced argument
 * count is believed, and argv grown for it, only once that many bytes per
 * argument have arrived, so a 20-byte header cannot make us allocate 16 MiB. */
#define BULK_MIN 6
#define AOF_MARKS 8 /* see Design: more are merged into the last */

/* The reply starting at stream position pos waits for AOF sequence seq. */
struct aof_mark {
    uint64_t pos;
    uint64_t seq;
};

struct akv_conn {
    uv_tcp_t tcp;
    uv_timer_t linger;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct akv_conn_shared *sh;
    struct akv_conn *prev, *next;
    unsigned refs;
    struct akv_session sess; /* id, peer, AUTH state, database, protocol (cmd.h) */

    struct akv_buf in;
    size_t in_pos;
    size_t need_len; /* skip parsing until this many bytes follow in_pos */
    struct akv_buf out;
    struct akv_buf wbuf;
    size_t wbuf_off;         /* bytes at the front of wbuf sent before its uv_write */
    struct akv_cmd_job *job; /* the request running on the pool, if any */
    /* Cluster writes pipelined behind job (itself one): proposed at once,
     * answered in order (see pipeline_ok). */
    struct akv_cmd_job *jq[AKV_CONN_PIPELINE_MAX];
    unsigned jq_head, jq_n;
    uint64_t job_pos;  /* stream position of its reply (for readable replies) */
    uint64_t out_base; /* stream position of out.p[0] */
    struct aof_mark marks[AOF_MARKS];
    unsigned nmarks;
    struct akv_conn *wprev, *wnext; /* on sh->waiting while nmarks > 0 */
    uint64_t last_active;           /* uv_now when a byte last moved, or a job ended */
    uint64_t soft_since;            /* uv_now when replies went over the soft limit; 0: not over */
    uint64_t since;                 /* uv_now when it was accepted */
    struct akv_conn *rprev, *rnext; /* on sh->ready while queued */
    struct akv_conn *mprev, *mnext; /* on sh->monitors while monitoring */
    struct akv_conn *fnext;         /* on sh->flushq while in_flushq */
    struct akv_conn *pprev, *pnext; /* on sh->paused while paused */
    size_t mem;                     /* its buffers' bytes, as counted in sh->client_mem */

    unsigned closing : 1;     /* uv_close called */
    unsigned reading : 1;     /* uv_read_start active */
    unsigned writing : 1;     /* uv_write in flight (bytes in wbuf) */
    unsigned input_done : 1;  /* EOF seen, or draining: read nothing more */
    unsigned close_after : 1; /* process nothing more; close once flushed */
    unsigned lingering : 1;   /* shut down our side; waiting for the client's EOF */
    unsigned linger_init : 1; /* the linger timer handle exists */
    unsigned counted : 1;     /* counted in connected_clients */
    unsigned queued : 1;      /* on sh->ready: its turn ended with requests left */
    unsigned started : 1;     /* a request has been parsed */
    unsigned monitoring : 1;  /* on sh->monitors */
    unsigned in_flushq : 1;   /* on sh->flushq (holding a reference) */
    unsigned paused : 1;      /* on sh->paused: its next request waits for CLIENT PAUSE */
};

static void conn_process(struct akv_conn *c);
static void conn_aof_progress(void *arg);
static void conn_unref(struct akv_conn *c);
static void on_resume(uv_idle_t *h);

size_t akv_conn_count(const struct akv_conn_shared *sh)
{
    return sh->count;
}

int akv_conn_shared_init(struct akv_conn_shared *sh, uv_loop_t *loop, struct akv_cmd_env *env,
                         struct akv_pool *pool)
{
    memset(sh, 0, sizeof(*sh));
    sh->loop = loop;
    sh->env = env;
    sh->pool = pool;
    akv_proto_limits_default(&sh->limits);
    sh->limits.inline_max = (size_t)env->config->proto_max_inline_len;
    sh->limits.bulk_max = (size_t)env->config->proto_max_bulk_len;
    sh->limits.argc_max = (size_t)env->config->proto_max_multibulk_len;
    sh->argv_cap = ARGV_INITIAL;
    sh->argv = calloc(sh->argv_cap, sizeof(*sh->argv));
    /* Parsing and dispatch run back to back on this thread, so one scratch
     * buffer serves every connection. inline_max is always enough. */
    sh->scratch = malloc(sh->limits.inline_max);
    if (!sh->argv || !sh->scratch) {
        akv_conn_shared_fini(sh);
        return -ENOMEM;
    }
    if (uv_idle_init(loop, &sh->resume) < 0) {
        akv_conn_shared_fini(sh);
        return -ENOMEM;
    }
    if (uv_prepare_init(loop, &sh->flusher) < 0) {
        uv_close((uv_handle_t *)&sh->resume, NULL);
        akv_conn_shared_fini(sh);
        return -ENOMEM;
    }
    if (uv_timer_init(loop, &sh->pause_timer) < 0) {
        uv_close((uv_handle_t *)&sh->resume, NULL);
        uv_close((uv_handle_t *)&sh->flusher, NULL);
        akv_conn_shared_fini(sh);
        return -ENOMEM;
    }
    sh->resume.data = sh;
    sh->flusher.data = sh;
    sh->pause_timer.data = sh;
    sh->resume_init = 1;
    sh->next_id = 1;
    akv_persist_set_notify(env->persist, conn_aof_progress, sh);
    return 0;
}

void akv_conn_persist_changed(struct akv_conn_shared *sh)
{
    akv_persist_set_notify(sh->env->persist, conn_aof_progress, sh);
    conn_aof_progress(sh);
}

void akv_conn_shared_close(struct akv_conn_shared *sh)
{
    if (sh && sh->resume_init && !uv_is_closing((uv_handle_t *)&sh->resume)) {
        uv_close((uv_handle_t *)&sh->resume, NULL);
        uv_close((uv_handle_t *)&sh->flusher, NULL);
        uv_close((uv_handle_t *)&sh->pause_timer, NULL);
    }
}

void akv_conn_shared_fini(struct akv_conn_shared *sh)
{
    if (!sh)
        return;
    assert(sh->head == NULL);
    akv_persist_set_notify(sh->env ? sh->env->persist : NULL, NULL, NULL);
    free(sh->argv);
    free(sh->scratch);
    sh->argv = NULL;
    sh->scratch = NULL;
}

static void waiting_unlink(struct akv_conn *c)
{
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        c->sh->waiting = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    c->wprev = c->wnext = NULL;
}

/* Takes c off the ready list. */
static void ready_unlink(struct akv_conn *c)
{
    if (!c->queued)
        return;
    if (c->rprev)
        c->rprev->rnext = c->rnext;
    else
        c->sh->ready = c->rnext;
    if (c->rnext)
        c->rnext->rprev = c->rprev;
    c->rprev = c->rnext = NULL;
    c->queued = 0;
}

/* Ends c's turn with requests left: it runs again once the loop has polled. */
static void ready_push(struct akv_conn *c)
{
    struct akv_conn_shared *sh = c->sh;

    if (c->queued)
        return;
    c->rprev = NULL;
    c->rnext = sh->ready;
    if (sh->ready)
        sh->ready->rprev = c;
    sh->ready = c;
    c->queued = 1;
    if (!uv_is_active((uv_handle_t *)&sh->resume))
        uv_idle_start(&sh->resume, on_resume);
}

static void on_resume(uv_idle_t *h)
{
    struct akv_conn_shared *sh = h->data;
    struct akv_conn *batch = sh->ready, *c;

    /* Those queued now get one turn each; any that use it up again go on
     * the (now empty) list for the next loop iteration. A reference keeps
     * each alive until its turn, whatever the others' turns close. */
    sh->ready = NULL;
    for (c = batch; c; c = c->rnext)
        c->refs++;
    while (batch) {
        c = batch;
        batch = c->rnext;
        c->rprev = c->rnext = NULL;
        c->queued = 0;
        if (!c->closing)
            conn_process(c);
        conn_unref(c);
    }
    if (!sh->ready)
        uv_idle_stop(h);
}

/* Takes c off the monitors. */
static void monitor_unlink(struct akv_conn *c)
{
    if (!c->monitoring)
        return;
    if (c->mprev)
        c->mprev->mnext = c->mnext;
    else
        c->sh->monitors = c->mnext;
    if (c->mnext)
        c->mnext->mprev = c->mprev;
    c->mprev = c->mnext = NULL;
    c->monitoring = 0;
    c->sh->env->monitors--;
}

/* Takes c off the paused list. */
static void paused_unlink(struct akv_conn *c)
{
    if (!c->paused)
        return;
    if (c->pprev)
        c->pprev->pnext = c->pnext;
    else
        c->sh->paused = c->pnext;
    if (c->pnext)
        c->pnext->pprev = c->pprev;
    c->pprev = c->pnext = NULL;
    c->paused = 0;
    c->sh->env->stats.paused_clients--;
}

/* Counts c's buffers into sh->client_mem; past maxmemory-clients, closes
 * the connections with the largest buffers until the total fits (those
 * with CLIENT NO-EVICT ON are spared). */
static void mem_update(struct akv_conn *c)
{
    struct akv_conn_shared *sh = c->sh;
    unsigned long long limit = sh->env->config->maxmemory_clients;
    size_t now = c->closing ? 0 : sizeof(*c) + c->in.cap + c->out.cap + c->wbuf.cap;

    sh->client_mem = sh->client_mem - c->mem + now;
    c->mem = now;
    while (limit > 0 && sh->client_mem > limit) {
        struct akv_conn *big = NULL;
        for (struct akv_conn *o = sh->head; o; o = o->next)
            if (!o->closing && !o->sess.no_evict && (!big || o->mem > big->mem))
                big = o;
        if (!big)
            break;
        akv_log(AKV_LOG_NOTICE,
                "client %llu (%s) closed: its buffers hold %zu bytes and all clients' "
                "together %zu, over maxmemory-clients %llu",
                (unsigned long long)big->sess.id, big->sess.peer, big->mem, sh->client_mem, limit);
        akv_conn_close(big); /* takes its bytes out of the total */
    }
}

static void conn_unref(struct akv_conn *c)
{
    struct akv_conn_shared *sh = c->sh;

    assert(c->refs > 0);
    if (--c->refs > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        sh->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sh->count--;
    if (c->nmarks > 0)
        waiting_unlink(c);
    ready_unlink(c);
    monitor_unlink(c);
    paused_unlink(c);
    sh->client_mem -= c->mem;
    akv_cmd_session_fini(sh->env, &c->sess);
    akv_buf_fini(&c->in);
    akv_buf_fini(&c->out);
    akv_buf_fini(&c->wbuf);
    free(c);
    if (sh->on_release)
        sh->on_release(sh);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

void akv_conn_close(struct akv_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->reading = 0;
    c->sh->client_mem -= c->mem; /* to be freed: no longer counts against the limit */
    c->mem = 0;
    if (c->counted) {
        c->sh->env->stats.connected_clients--;
        c->counted = 0;
    }
    monitor_unlink(c);
    paused_unlink(c);
    akv_log(AKV_LOG_VERBOSE, "client %llu (%s) closed", (unsigned long long)c->sess.id,
            c->sess.peer);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    if (c->linger_init)
        uv_close((uv_handle_t *)&c->linger, on_handle_closed);
}

int akv_conn_create(struct akv_conn_shared *sh, struct akv_conn **out)
{
    struct akv_conn *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    rc = uv_tcp_init(sh->loop, &c->tcp);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->tcp.data = c;
    c->wreq.data = c;
    c->sreq.data = c;
    c->sh = sh;
    c->refs = 1; /* the TCP handle's */
    akv_cmd_session_init(&c->sess, sh->next_id++, NULL);
    /* As in Redis: a client that connects while no password is set is
     * authenticated, and stays so if requirepass is set later. */
    c->sess.authenticated = !sh->env->config->requirepass;
    akv_buf_init(&c->in);
    akv_buf_init(&c->out);
    akv_buf_init(&c->wbuf);
    c->next = sh->head;
    if (sh->head)
        sh->head->prev = c;
    sh->head = c;
    sh->count++;
    *out = c;
    return 0;
}

uv_stream_t *akv_conn_stream(struct akv_conn *c)
{
    return (uv_stream_t *)&c->tcp;
}

/* "1.2.3.4:5678" or "[::1]:5678", for log lines. */
/* "1.2.3.4:5678" or "[::1]:5678" into out (64 bytes); unchanged when the
 * address is of another family. */
static void addr_text(const struct sockaddr_storage *ss, char out[64])
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, host, sizeof(host));
        snprintf(out, 64, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, host, sizeof(host));
        snprintf(out, 64, "[%s]:%d", host, ntohs(a->sin6_port));
    }
}

/* The client's address (for log lines, CLIENT LIST and MONITOR) and the
 * local one it connected to (CLIENT LIST laddr, CLIENT KILL LADDR). */
static void describe_peer(struct akv_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        addr_text(&ss, c->sess.peer);
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        addr_text(&ss, c->sess.laddr);
}

/* ------------------------------------------------------------------------
 * Output.
 */

static void on_write(uv_write_t *req, int status);

static size_t out_pending(const struct akv_conn *c)
{
    return c->out.len + c->wbuf.len - c->wbuf_off;
}

/* The bytes at the front of out that no AOF mark holds back. */
static size_t out_sendable(const struct akv_conn *c)
{
    uint64_t lim;

    if (c->nmarks == 0)
        return c->out.len;
    lim = c->marks[0].pos - c->out_base;
    return lim < c->out.len ? (size_t)lim : c->out.len;
}

/* Processing and reading pause above this many bytes of unsent replies: the
 * output soft limit, so that a client that never reads settles just above
 * it and is closed after its seconds, or OUT_PAUSE without one. */
static size_t out_pause(const struct akv_conn *c)
{
    unsigned long long soft = c->sh->env->config->obuf_soft;

    return soft > 0 && soft < SIZE_MAX ? (size_t)soft : OUT_PAUSE;
}

/* Applies client-output-buffer-limit to what is waiting now. Returns 0, or
 * -1 after closing the connection. */
static int check_output_limits(struct akv_conn *c)
{
    const struct akv_config *cfg = c->sh->env->config;
    size_t pending = out_pending(c);
    uint64_t now;

    if (cfg->obuf_hard > 0 && pending > cfg->obuf_hard) {
        akv_log(AKV_LOG_NOTICE,
                "client %llu (%s) closed: %zu bytes of replies waiting, over the "
                "client-output-buffer-limit hard limit of %llu",
                (unsigned long long)c->sess.id, c->sess.peer, pending, cfg->obuf_hard);
        akv_conn_close(c);
        return -1;
    }
    if (cfg->obuf_soft == 0 || pending <= cfg->obuf_soft) {
        c->soft_since = 0;
        return 0;
    }
    now = uv_now(c->sh->loop);
    if (c->soft_since == 0)
        c->soft_since = now ? now : 1;
    if (now - c->soft_since >= (uint64_t)cfg->obuf_soft_seconds * 1000) {
        akv_log(AKV_LOG_NOTICE,
                "client %llu (%s) closed: over the client-output-buffer-limit soft limit of "
                "%llu bytes for %d s (%zu bytes waiting)",
                (unsigned long long)c->sess.id, c->sess.peer, cfg->obuf_soft,
                cfg->obuf_soft_seconds, pending);
        akv_conn_close(c);
        return -1;
    }
    return 0;
}

/* Sends what is in out (up to the first AOF mark): as much as the socket
 * takes now, the rest through one uv_write. */
static void flush(struct akv_conn *c)
{
    size_t sendable = out_sendable(c);
    size_t sent = 0;
    uv_buf_t b;
    int n;

    if (c->closing || c->writing || sendable == 0)
        return;
    b.base = c->out.p;
    b.len = sendable;
    n = uv_try_write(akv_conn_stream(c), &b, 1);
    if (n > 0) {
        c->sh->env->stats.net_output_bytes += (uint64_t)n;
        c->last_active = uv_now(c->sh->loop);
        sent = (size_t)n;
        c->out_base += (uint64_t)n;
        sendable -= (size_t)n;
    } else if (n < 0 && n != UV_EAGAIN) {
        akv_log(AKV_LOG_VERBOSE, "client %llu (%s): write: %s", (unsigned long long)c->sess.id,
                c->sess.peer, uv_strerror(n));
        akv_conn_close(c);
        return;
    }
    if (sendable == 0) {
        akv_buf_consume(&c->out, sent);
        if (c->out.len == 0 && c->out.cap > OUT_KEEP_MAX)
            akv_buf_fini(&c->out);
        return;
    }

    if (sent + sendable == c->out.len) {
        /* Swap so that replies produced while this write is in flight go
         * to a buffer libuv is not reading; the sent bytes stay in front. */
        struct akv_buf t = c->wbuf;
        c->wbuf = c->out;
        c->out = t;
        c->wbuf_off = sent;
    } else {
        /* Part of out is held: move only what may go. */
        if (akv_buf_append(&c->wbuf, c->out.p + sent, sendable) < 0) {
            akv_conn_close(c);
            return;
        }
        akv_buf_consume(&c->out, sent + sendable);
    }
    c->out_base += sendable;
    b.base = c->wbuf.p + c->wbuf_off;
    b.len = c->wbuf.len - c->wbuf_off;
    n = uv_write(&c->wreq, akv_conn_stream(c), &b, 1, on_write);
    if (n < 0) {
        akv_conn_close(c);
        return;
    }
    c->writing = 1;
}

static void on_linger_timeout(uv_timer_t *t)
{
    akv_conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct akv_conn *c = req->data;

    /* Nothing more to do here: the read callback or the timer closes. */
    if (c->closing)
        return;
    if (status < 0)
        akv_conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Closes now, or, if the client may still be sending, starts lingering. */
static void close_gracefully(struct akv_conn *c)
{
    if (c->input_done || c->sh->draining) {
        akv_conn_close(c);
        return;
    }
    if (uv_timer_init(c->sh->loop, &c->linger) < 0) {
        akv_conn_close(c);
        return;
    }
    c->linger.data = c;
    c->linger_init = 1;
    c->refs++; /* the timer handle's, dropped in its close callback */
    c->lingering = 1;
    uv_timer_start(&c->linger, on_linger_timeout, LINGER_MS, 0);
    if (uv_shutdown(&c->sreq, akv_conn_stream(c), on_shutdown) < 0) {
        akv_conn_close(c);
        return;
    }
    if (!c->reading) {
        if (uv_read_start(akv_conn_stream(c), on_alloc, on_read) < 0) {
            akv_conn_close(c);
            return;
        }
        c->reading = 1;
    }
}

/* Closes the connection if it has nothing left to do. */
static void maybe_close(struct akv_conn *c)
{
    if (c->closing || c->lingering || c->job || c->writing || c->out.len > 0)
        return;
    if (c->close_after)
        close_gracefully(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct akv_conn *c = req->data;

    c->writing = 0;
    if (status == 0)
        c->sh->env->stats.net_output_bytes += c->wbuf.len - c->wbuf_off;
    c->wbuf.len = 0;
    c->wbuf_off = 0;
    /* One huge reply should not pin its memory for the connection's life. */
    if (c->wbuf.cap > OUT_KEEP_MAX)
        akv_buf_fini(&c->wbuf);
    if (c->closing)
        return;
    mem_update(c);
    if (status < 0) {
        akv_log(AKV_LOG_VERBOSE, "client %llu (%s): write: %s", (unsigned long long)c->sess.id,
                c->sess.peer, uv_strerror(status));
        akv_conn_close(c);
        return;
    }
    c->last_active = uv_now(c->sh->loop);
    if (check_output_limits(c) < 0)
        return;
    /* Output may have been what held the pipeline up. */
    conn_process(c);
}

/* ------------------------------------------------------------------------
 * Input.
 */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct akv_conn *c = h->data;
    struct akv_buf *in = &c->in;

    (void)suggested;
    /* Nothing points into the buffer between requests, so this is the time
     * to drop consumed bytes. */
    if (c->in_pos == in->len) {
        in->len = c->in_pos = 0;
    } else if (c->in_pos > 0 && in->cap - in->len < READ_CHUNK) {
        memmove(in->p, in->p + c->in_pos, in->len - c->in_pos);
        in->len -= c->in_pos;
        c->in_pos = 0;
    }
    if (akv_buf_reserve(in, READ_CHUNK) < 0) {
        /* libuv turns an empty buffer into UV_ENOBUFS for on_read. */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    buf->base = in->p + in->len;
    buf->len = in->cap - in->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct akv_conn *c = s->data;

    (void)buf;
    if (c->closing)
        return;
    if (nread > 0) {
        c->sh->env->stats.net_input_bytes += (uint64_t)nread;
        if (c->lingering) {
            /* Draining the socket so the close is clean; nobody is
             * listening to requests any more. */
            c->in.len = c->in_pos = 0;
            return;
        }
        c->in.len += (size_t)nread;
        c->last_active = uv_now(c->sh->loop);
        conn_process(c);
        return;
    }
    if (nread == 0)
        return; /* EAGAIN */
    if (nread == UV_EOF) {
        uv_read_stop(s);
        c->reading = 0;
        if (c->lingering) {
            akv_conn_close(c);
            return;
        }
        /* A half-close: answer what was received, then close. */
        c->input_done = 1;
        conn_process(c);
        return;
    }
    akv_log(AKV_LOG_VERBOSE, "client %llu (%s): read: %s", (unsigned long long)c->sess.id,
            c->sess.peer, uv_strerror((int)nread));
    akv_conn_close(c);
}

/* Starts or stops reading as the connection's state asks. */
static void update_reading(struct akv_conn *c)
{
    size_t avail = c->in.len - c->in_pos;
    int busy = c->job != NULL || c->queued || c->paused || out_pending(c) > out_pause(c);
    int want = !c->closing && !c->input_done && !c->close_after && !(busy && avail >= IN_PAUSE);

    if (c->lingering)
        return;
    if (want && !c->reading) {
        if (uv_read_start(akv_conn_stream(c), on_alloc, on_read) < 0) {
            akv_conn_close(c);
            return;
        }
        c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop(akv_conn_stream(c));
        c->reading = 0;
    }
}

/* Grows the shared argv to hold n arguments. */
static int grow_argv(struct akv_conn_shared *sh, size_t n)
{
    size_t cap = sh->argv_cap;
    struct akv_slice *p;

    while (cap < n)
        cap *= 2;
    p = realloc(sh->argv, cap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    sh->argv = p;
    sh->argv_cap = cap;
    return 0;
}

/* After a request with very many arguments, gives the memory back. */
static void shrink_argv(struct akv_conn_shared *sh)
{
    struct akv_slice *p = realloc(sh->argv, ARGV_INITIAL * sizeof(*p));

    /* If even shrinking fails, the big array simply stays. */
    if (p) {
        sh->argv = p;
        sh->argv_cap = ARGV_INITIAL;
    }
}

static void on_job_done(struct akv_pool_job *pj);

/* Cluster mode: a write answered when its log entry is applied is a job
 * with no pool work. While one is out, the requests after it are run too
 * if they are writes that can only become such jobs (pipeline_ok, then
 * can_pipeline), so that a client pipelining writes has them proposed
 * together; their replies still go out in order (on_job_done). */
static int is_cluster_job(const struct akv_cmd_job *j)
{
    return j && !j->pool.work && !j->pool.batch;
}

static int pipeline_ok(const struct akv_conn *c)
{
    return is_cluster_job(c->job) && c->jq_n < AKV_CONN_PIPELINE_MAX && !c->sess.readable &&
           !c->close_after;
}

/* The request parsed into sh->argv (argc arguments) can run behind the
 * cluster writes out: dispatch will neither answer it at once nor run it
 * on the pool, so its reply cannot pass theirs. */
static int can_pipeline(const struct akv_conn *c, size_t argc)
{
    const struct akv_cmd_env *env = c->sh->env;
    const struct akv_cmd *cmd = akv_cmd_lookup(c->sh->argv[0].p, c->sh->argv[0].len);

    /* Only behind writes: a transaction's EXEC may move the connection to
     * another database (SELECT in it), and a CLUSTER command's outcome may
     * change where writes go. */
    if (!c->job->cmd || !(c->job->cmd->flags & AKV_CMD_WRITE))
        return 0;
    if (!cmd || !(cmd->flags & AKV_CMD_WRITE) || !env->cluster || env->loading ||
        env->config->key_normalize || akv_cmd_session_in_multi(&c->sess) || c->sess.reply_skip_next)
        return 0;
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
        (cmd->arity < 0 && argc < (size_t)-cmd->arity))
        return 0;
    return !(env->config->requirepass && !c->sess.authenticated);
}

/* Holds the reply starting at stream position pos (and all after it) until
 * AOF sequence seq is durable. */
static void add_mark(struct akv_conn *c, uint64_t pos, uint64_t seq)
{
    struct akv_conn_shared *sh = c->sh;

    /* A record not yet handed to the writer travels with the previous
     * mark's, so it can share that mark; a full array coarsens the last. */
    if (c->nmarks > 0 && (c->marks[c->nmarks - 1].seq > akv_persist_handed(sh->env->persist) ||
                          c->nmarks == AOF_MARKS)) {
        c->marks[c->nmarks - 1].seq = seq;
        return;
    }
    if (c->nmarks == 0) {
        c->wprev = NULL;
        c->wnext = sh->waiting;
        if (sh->waiting)
            sh->waiting->wprev = c;
        sh->waiting = c;
    }
    c->marks[c->nmarks++] = (struct aof_mark){pos, seq};
}

/* The AOF made progress: releases the replies that were waiting for it. */
static void conn_aof_progress(void *arg)
{
    struct akv_conn_shared *sh = arg;
    uint64_t durable = akv_persist_durable(sh->env->persist);
    struct akv_conn *c = sh->waiting, *next;

    for (; c; c = next) {
        unsigned done = 0;

        next = c->wnext;
        while (done < c->nmarks && c->marks[done].seq <= durable)
            done++;
        if (done == 0)
            continue;
        memmove(c->marks, c->marks + done, (c->nmarks - done) * sizeof(c->marks[0]));
        c->nmarks -= done;
        if (c->nmarks == 0)
            waiting_unlink(c);
        if (!c->closing)
            conn_process(c);
    }
}

/* Protocol failure: say why, then close once that is written. */
static void fail_request(struct akv_conn *c, const char *why)
{
    if (c->job) {
        /* Cluster writes pipelined ahead are not answered yet: the request
         * stays unconsumed and fails once their replies have gone. */
        c->need_len = 0;
        return;
    }
    akv_log(AKV_LOG_VERBOSE, "client %llu (%s): %s", (unsigned long long)c->sess.id, c->sess.peer,
            why);
    if (akv_reply_errorf(&c->out, "ERR %s", why) < 0) {
        akv_conn_close(c);
        return;
    }
    c->close_after = 1;
}

/* Readable replies: rewrites the replies from stream position pos on as
 * text for people (proto/humanize.h). Anything it cannot translate stays
 * RESP. Translating runs on the loop thread at roughly 10 ms a MiB, so a
 * reply over AKV_CONN_HUMANIZE_MAX stays RESP too (the stall rule), behind
 * a line that says why. */
static void humanize_from(struct akv_conn *c, uint64_t pos)
{
    size_t at = (size_t)(pos - c->out_base), len;
    struct akv_buf t;
    long n;

    if (pos < c->out_base || at >= c->out.len)
        return;
    len = c->out.len - at;
    if (len > AKV_CONN_HUMANIZE_MAX) {
        char note[160];
        int nl = snprintf(note, sizeof note,
                          "(a reply of %zu bytes, over the %u KiB that readable mode translates; "
                          "it follows as RESP)\r\n",
                          len, AKV_CONN_HUMANIZE_MAX / 1024u);
        if (nl > 0 && (size_t)nl < sizeof note && akv_buf_reserve(&c->out, (size_t)nl) == 0) {
            memmove(c->out.p + at + (size_t)nl, c->out.p + at, len);
            memcpy(c->out.p + at, note, (size_t)nl);
            c->out.len += (size_t)nl;
        }
        return;
    }
    akv_buf_init(&t);
    n = akv_humanize_run_many(c->out.p + at, len, &t, 0);
    if (n == (long)len) {
        c->out.len = at;
        if (akv_buf_append(&c->out, t.p, t.len) < 0)
            (void)akv_reply_error(&c->out, "ERR out of memory");
    }
    akv_buf_fini(&t);
}

/* Runs one parsed request. Returns 0, or -1 when the connection was closed. */
static int run_request(struct akv_conn *c, size_t argc)
{
    struct akv_conn_shared *sh = c->sh;
    struct akv_cmd_ctx ctx = {
        .env = sh->env,
        .argc = argc,
        .argv = sh->argv,
        .out = &c->out,
        .sess = &c->sess,
    };

    struct akv_persist *aof = sh->env->persist;
    uint64_t seq0 = akv_persist_appended(aof), seq;
    uint64_t pos = c->out_base + c->out.len;

    if (akv_cmd_dispatch(&ctx) < 0) {
        akv_conn_close(c);
        return -1;
    }
    seq = akv_persist_appended(aof);
    if (seq != seq0)
        add_mark(c, pos, seq);
    if (ctx.close_after_reply)
        c->close_after = 1;
    if (c->sess.readable && !ctx.job)
        humanize_from(c, pos);
    if (ctx.job) {
        c->job_pos = pos;
        ctx.job->owner = c;
        ctx.job->pool.done = on_job_done;
        if (is_cluster_job(ctx.job)) {
            /* No pool work: a cluster write, answered when its log entry
             * is applied (cmd-cluster.c calls done). */
            ctx.job->completed = 0;
            if (!c->job)
                c->job = ctx.job;
            else
                c->jq[(c->jq_head + c->jq_n++) % AKV_CONN_PIPELINE_MAX] = ctx.job;
            c->refs++;
            return 0;
        }
        if (akv_pool_submit(sh->pool, &ctx.job->pool) < 0) {
            ctx.job->finish(ctx.job, NULL);
            if (akv_reply_error(&c->out, "ERR server is shutting down") < 0) {
                akv_conn_close(c);
                return -1;
            }
            c->close_after = 1;
            return 0;
        }
        c->job = ctx.job;
        c->refs++; /* the job's, dropped in on_job_done */
    }
    return 0;
}

/* Whether c is held to the AKV_CONN_UNAUTH_* limits. */
static int unauthenticated(const struct akv_conn *c)
{
    return c->sh->env->config->requirepass && !c->sess.authenticated;
}

/* Whether CLIENT PAUSE holds back the request just parsed into sh->argv:
 * every request while it holds all, writes while it holds writes. Nothing
 * is held back once the shutdown has begun. */
static int held_by_pause(struct akv_conn *c)
{
    const struct akv_pause *p = &c->sh->env->pause;
    const struct akv_cmd *cmd;

    if (p->end_ms == 0 || c->sh->draining || uv_hrtime() / 1000000u >= p->end_ms)
        return 0;
    if (p->all)
        return 1;
    cmd = akv_cmd_lookup(c->sh->argv[0].p, c->sh->argv[0].len);
    return cmd && (cmd->flags & AKV_CMD_WRITE);
}

/* Whether the request just parsed must wait: CLIENT PAUSE, or in cluster
 * mode a linearizable read before its read round (cmd-cluster.c). Both
 * wait on the paused list and are woken by akv_conn_pause_changed. */
static int held(struct akv_conn *c)
{
    struct akv_cmd_env *env = c->sh->env;

    if (held_by_pause(c))
        return 1;
    if (!env->cluster || c->sh->draining)
        return 0;
    return akv_cmd_cluster_hold(env, &c->sess,
                                akv_cmd_lookup(c->sh->argv[0].p, c->sh->argv[0].len));
}

static void paused_push(struct akv_conn *c)
{
    struct akv_conn_shared *sh = c->sh;

    if (c->paused)
        return;
    c->pprev = NULL;
    c->pnext = sh->paused;
    if (sh->paused)
        sh->paused->pprev = c;
    sh->paused = c;
    c->paused = 1;
    sh->env->stats.paused_clients++;
}

/* The pause is over: every held connection gets its turn again (through
 * the ready list, so each runs for one turn, after the loop has polled). */
static void pause_release_all(struct akv_conn_shared *sh)
{
    while (sh->paused) {
        struct akv_conn *c = sh->paused;
        paused_unlink(c);
        if (!c->closing)
            ready_push(c);
    }
}

static void on_pause_timer(uv_timer_t *t)
{
    akv_conn_pause_changed(t->data);
}

void akv_conn_pause_changed(struct akv_conn_shared *sh)
{
    struct akv_pause *p = &sh->env->pause;
    uint64_t now = uv_hrtime() / 1000000u;

    if (p->end_ms != 0 && now < p->end_ms) {
        /* Check again when it should end (it may since have been lifted or
         * extended). */
        uv_timer_start(&sh->pause_timer, on_pause_timer, p->end_ms - now, 0);
        return;
    }
    *p = (struct akv_pause){0, 0};
    uv_timer_stop(&sh->pause_timer);
    pause_release_all(sh);
}

/* Parses and runs buffered requests until one becomes a job, the input runs
 * out, the output backs up, the turn is over or the connection is to close;
 * then sends replies and adjusts reading. */
static void conn_process(struct akv_conn *c)
{
    struct akv_conn_shared *sh = c->sh;
    unsigned long long querybuf_max = sh->env->config->client_query_buffer_limit;
    uint64_t start = uv_hrtime();

    while (!c->closing && (!c->job || pipeline_ok(c)) && !c->close_after && !c->lingering &&
           !c->paused) {
        size_t avail = c->in.len - c->in_pos;
        struct akv_proto_limits small = sh->limits;
        const struct akv_proto_limits *lim = &sh->limits;
        struct akv_proto_req req;
        const char *errmsg = "Protocol error";
        size_t need_argc = 0;
        long n;

        if (out_pending(c) > out_pause(c))
            break; /* resumed from on_write */
        if (avail == 0 || avail < c->need_len)
            break;
        if (uv_hrtime() - start >= (uint64_t)AKV_CONN_TURN_US * 1000) {
            ready_push(c);
            break;
        }
        if (unauthenticated(c)) {
            small.argc_max = AKV_CONN_UNAUTH_ARGC;
            small.bulk_max = AKV_CONN_UNAUTH_BULK;
            if (small.inline_max > AKV_CONN_UNAUTH_BULK)
                small.inline_max = AKV_CONN_UNAUTH_BULK;
            lim = &small;
        }
        req.argv = sh->argv;
        req.argv_cap = sh->argv_cap;
        req.scratch = sh->scratch;
        req.scratch_cap = sh->limits.inline_max;
        n = akv_proto_parse(c->in.p + c->in_pos, avail, lim, &req, &errmsg, &need_argc);
        if (n == AKV_PROTO_ERR_TOO_BIG && lim == &small)
            errmsg = "Protocol error: request too big for a client that has not authenticated "
                     "(AUTH first)";
        if (n == AKV_PROTO_ERR_TOO_MANY) {
            /* An announced RESP argument count is believed only once its
             * arguments could have arrived; an inline line is all here. */
            if (c->in.p[c->in_pos] == '*' && need_argc > avail / BULK_MIN) {
                c->need_len = need_argc * BULK_MIN;
                if (c->need_len > querybuf_max)
                    fail_request(c, "Protocol error: request too big");
                break;
            }
            if (grow_argv(sh, need_argc) < 0) {
                fail_request(c, "out of memory");
                break;
            }
            continue;
        }
        if (n == AKV_PROTO_NEED_MORE) {
            c->need_len = req.need_len;
            if (c->need_len > querybuf_max) {
                fail_request(c, "Protocol error: request too big");
                break;
            }
            /* A large request that has announced its size gets its room at
             * once (nothing points into the buffer now, so it may move):
             * its bytes are then not copied again at every doubling, which
             * for a 16 MiB bulk would be 16 MiB of copying on this thread. */
            if (c->need_len > IN_KEEP_MAX && c->in_pos + c->need_len + READ_CHUNK > c->in.cap) {
                if (c->in_pos > 0) {
                    memmove(c->in.p, c->in.p + c->in_pos, avail);
                    c->in.len = avail;
                    c->in_pos = 0;
                }
                (void)akv_buf_reserve(&c->in, c->need_len + READ_CHUNK - c->in.len);
            }
            break;
        }
        if (n < 0) {
            fail_request(c, errmsg);
            break;
        }
        c->need_len = 0;
        if (c->job && (req.argc == 0 || !can_pipeline(c, req.argc)))
            break; /* not consumed: parsed again once the writes out are answered */
        if (req.argc > 0 && held(c)) {
            /* Not consumed: parsed again when the pause ends. */
            paused_push(c);
            break;
        }
        /* readable-replies inline: readable replies from an inline first
         * request on, until a RESP request (a client library) comes. */
        if (!c->started) {
            c->started = 1;
            if (c->in.p[c->in_pos] != '*' &&
                sh->env->config->readable_replies == AKV_READABLE_INLINE)
                c->sess.readable = 2;
        } else if (c->sess.readable == 2 && c->in.p[c->in_pos] == '*') {
            c->sess.readable = 0;
        }
        if (req.argc > 0 && run_request(c, req.argc) < 0)
            return;
        if (check_output_limits(c) < 0)
            return;
        if (sh->argv_cap > ARGV_KEEP_MAX)
            shrink_argv(sh);
        /* Consume only now: the arguments pointed into the buffer. */
        c->in_pos += (size_t)n;
    }
    if (c->closing)
        return;

    /* After EOF (or when draining) nothing more will arrive: once the
     * complete requests are answered, an incomplete tail is dropped. */
    if (c->input_done && !c->job && out_pending(c) <= out_pause(c))
        c->close_after = 1;

    if (c->in_pos == c->in.len) {
        c->in.len = c->in_pos = 0;
        /* An idle connection should not keep a big buffer around. */
        if (c->in.cap > IN_KEEP_MAX)
            akv_buf_fini(&c->in);
    }
    flush(c);
    if (c->closing)
        return;
    mem_update(c);
    if (c->closing)
        return;
    update_reading(c);
    if (c->closing)
        return;
    maybe_close(c);
}

static void on_job_done(struct akv_pool_job *pj)
{
    struct akv_cmd_job *job = container_of(pj, struct akv_cmd_job, pool);
    struct akv_conn *c = job->owner;
    unsigned done = 0;

    if (job != c->job) {
        /* A pipelined cluster write answered before the one ahead of it:
         * its reply waits its turn. */
        job->completed = 1;
        return;
    }
    while (job) {
        /* A reply the client asked not to get (CLIENT REPLY) goes nowhere,
         * as that of a client that has gone. */
        int wanted = !c->closing && !job->drop_reply;

        /* finish frees the job. */
        job->finish(job, wanted ? &c->out : NULL);
        if (wanted && c->sess.readable)
            humanize_from(c, c->job_pos);
        done++;
        job = NULL;
        c->job = NULL;
        if (c->jq_n > 0) {
            c->job = c->jq[c->jq_head];
            c->jq_head = (c->jq_head + 1) % AKV_CONN_PIPELINE_MAX;
            c->jq_n--;
            if (c->job->completed)
                job = c->job;
        }
    }
    c->last_active = uv_now(c->sh->loop);
    if (!c->closing && check_output_limits(c) == 0)
        conn_process(c);
    while (done-- > 0)
        conn_unref(c);
}

void akv_conn_start(struct akv_conn *c)
{
    describe_peer(c);
    c->counted = 1;
    c->last_active = c->since = uv_now(c->sh->loop);
    c->sh->env->stats.connected_clients++;
    /* Replies are small and often pipelined; do not let Nagle hold them. */
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 300);
    akv_log(AKV_LOG_VERBOSE, "client %llu connected from %s", (unsigned long long)c->sess.id,
            c->sess.peer);
    update_reading(c);
}

void akv_conn_reject(struct akv_conn *c, const char *err)
{
    describe_peer(c);
    if (akv_reply_error(&c->out, err) < 0) {
        akv_conn_close(c);
        return;
    }
    c->close_after = 1;
    flush(c);
    if (!c->closing)
        maybe_close(c);
}

void akv_conn_drain_all(struct akv_conn_shared *sh)
{
    sh->draining = 1;
    /* A pause holds nothing back any more: everything received is run. */
    while (sh->paused)
        paused_unlink(sh->paused);
    for (struct akv_conn *c = sh->head; c; c = c->next) {
        if (c->closing)
            continue;
        if (c->lingering) {
            akv_conn_close(c);
            continue;
        }
        c->input_done = 1;
        if (c->reading) {
            uv_read_stop(akv_conn_stream(c));
            c->reading = 0;
        }
        conn_process(c);
    }
}

void akv_conn_close_all(struct akv_conn_shared *sh)
{
    for (struct akv_conn *c = sh->head; c; c = c->next)
        akv_conn_close(c);
}

void akv_conn_cron(struct akv_conn_shared *sh)
{
    const struct akv_config *cfg = sh->env->config;
    uint64_t now = uv_now(sh->loop);
    uint64_t idle_ms = (uint64_t)cfg->timeout * 1000;
    size_t in_max = 0, out_max = 0;

    /* akv_conn_close only marks and closes the handle; the connection stays
     * linked until its close callback, so the walk can go on. */
    for (struct akv_conn *c = sh->head; c; c = c->next) {
        if (c->closing || c->lingering || !c->counted)
            continue;
        if (c->in.cap > in_max)
            in_max = c->in.cap;
        if (c->out.cap + c->wbuf.cap > out_max)
            out_max = c->out.cap + c->wbuf.cap;
        if (check_output_limits(c) < 0)
            continue;
        if (idle_ms > 0 && !c->job && !c->paused && now - c->last_active >= idle_ms) {
            akv_log(AKV_LOG_VERBOSE, "client %llu (%s) closed: idle for more than %d s",
                    (unsigned long long)c->sess.id, c->sess.peer, cfg->timeout);
            akv_conn_close(c);
        } else if (unauthenticated(c) && now - c->since >= AKV_CONN_UNAUTH_IDLE_MS) {
            akv_log(AKV_LOG_VERBOSE, "client %llu (%s) closed: no AUTH within %d s",
                    (unsigned long long)c->sess.id, c->sess.peer, AKV_CONN_UNAUTH_IDLE_MS / 1000);
            akv_conn_close(c);
        }
    }
    akv_cmd_note_client_buffers(sh->env, in_max, out_max);
}

/* ------------------------------------------------------------------------
 * CLIENT and MONITOR (the env hooks; see conn.h).
 */

size_t akv_conn_memory(const struct akv_conn_shared *sh)
{
    return sh->client_mem;
}

static void client_info(struct akv_conn *c, uint64_t now, struct akv_client_info *ci)
{
    uv_os_fd_t fd;

    ci->sess = &c->sess;
    ci->fd = uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 ? (int)fd : -1;
    ci->age_s = (now - c->since) / 1000;
    ci->idle_s = (now - c->last_active) / 1000;
    ci->qbuf = c->in.len - c->in_pos;
    ci->qbuf_free = c->in.cap - c->in.len;
    ci->obl = out_pending(c);
    ci->oll = c->writing;
    ci->omem = c->out.cap + c->wbuf.cap;
    ci->tot_mem = sizeof(*c) + c->in.cap + c->out.cap + c->wbuf.cap;
    ci->reading = c->reading;
    ci->writing = c->writing;
    ci->blocked = c->job != NULL;
    ci->paused = c->paused;
    ci->closing = c->close_after || c->lingering;
}

int akv_conn_clients(struct akv_conn_shared *sh, const struct akv_session *only,
                     int (*fn)(void *arg, const struct akv_client_info *ci), void *arg)
{
    uint64_t now = uv_now(sh->loop);
    struct akv_client_info ci;
    int rc = 0;

    if (only) {
        /* The caller's own session, which its connection embeds. */
        struct akv_conn *c = container_of(only, struct akv_conn, sess);
        client_info(c, now, &ci);
        rc = fn(arg, &ci);
        return rc < 0 ? rc : 0;
    }
    /* akv_conn_close only marks and closes the handle; the connection stays
     * linked until its close callback, so the walk can go on. */
    for (struct akv_conn *c = sh->head; c; c = c->next) {
        if (c->closing || !c->counted)
            continue;
        client_info(c, now, &ci);
        rc = fn(arg, &ci);
        if (rc < 0)
            return rc;
        if (rc == AKV_CLIENT_KILL) {
            akv_log(AKV_LOG_VERBOSE, "client %llu (%s) killed by CLIENT KILL",
                    (unsigned long long)c->sess.id, c->sess.peer);
            akv_conn_close(c);
        }
    }
    return 0;
}

void akv_conn_monitor_set(struct akv_conn_shared *sh, struct akv_session *s, int on)
{
    struct akv_conn *c = container_of(s, struct akv_conn, sess);

    s->monitor = (unsigned)(on != 0);
    if (!on) {
        monitor_unlink(c);
        return;
    }
    if (c->monitoring || c->closing)
        return;
    c->mprev = NULL;
    c->mnext = sh->monitors;
    if (sh->monitors)
        sh->monitors->mprev = c;
    sh->monitors = c;
    c->monitoring = 1;
    sh->env->monitors++;
}

/* Before the loop polls: sends what the monitors were fed during this turn
 * of the loop (one write each, not one per command), and counts their
 * buffers against maxmemory-clients. */
static void on_flush_monitors(uv_prepare_t *h)
{
    struct akv_conn_shared *sh = h->data;
    struct akv_conn *c = sh->flushq, *next;

    sh->flushq = NULL;
    uv_prepare_stop(h);
    for (; c; c = next) {
        next = c->fnext;
        c->fnext = NULL;
        c->in_flushq = 0;
        if (!c->closing)
            flush(c);
        if (!c->closing)
            mem_update(c);
        if (!c->closing)
            maybe_close(c);
        conn_unref(c); /* the queue's reference */
    }
}

void akv_conn_monitor_feed(struct akv_conn_shared *sh, const char *line, size_t len)
{
    for (struct akv_conn *m = sh->monitors, *next; m; m = next) {
        next = m->mnext;
        if (m->closing || m->close_after || m->lingering)
            continue;
        if (akv_buf_append(&m->out, line, len) < 0) {
            akv_log(AKV_LOG_NOTICE, "client %llu (%s) closed: out of memory for MONITOR output",
                    (unsigned long long)m->sess.id, m->sess.peer);
            akv_conn_close(m);
            continue;
        }
        /* Past the hard limit the monitor is closed now (a slow reader
         * cannot make the feed pile up); the soft limit's time runs. */
        if (check_output_limits(m) < 0)
            continue;
        if (!m->in_flushq) {
            m->in_flushq = 1;
            m->refs++;
            m->fnext = sh->flushq;
            sh->flushq = m;
            if (!uv_is_active((uv_handle_t *)&sh->flusher))
                uv_prepare_start(&sh->flusher, on_flush_monitors);
        }
    }
}
