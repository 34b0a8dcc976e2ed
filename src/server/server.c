/*
 * server.c - listeners, accepting, signals and shutdown.
 *
 * Design
 * ------
 * Threading: one loop thread runs every callback here, owns the listeners,
 * the connections (conn.c), the store and the statistics. The other
 * threads are the worker pool's (pool.c), which see jobs, and the AOF's
 * writer and rewrite threads (src/persist/persist.c), which see the
 * persistence object; none sees this struct.
 *
 * Handles owned here, each embedded in its owner and freed in (or after) its
 * close callback: one uv_tcp_t per listening address (each in its own
 * allocation, since a handle must not move), the SIGINT, SIGTERM, SIGHUP and
 * SIGUSR2 uv_signal_t handles, a timer used for SHUTDOWN's deferred start and then
 * the shutdown grace period, the cron timer that runs akv_conn_cron (idle
 * timeout, output soft limit), akv_cmd_cron (LASTSAVE, the memory peak)
 * and akv_cmd_reap (flushed stores) every AKV_CONN_CRON_MS, the expiry
 * timer that runs the active expiry cycle (akv_cmd_expire_cycle:
 * EXPIRE_BUDGET_US at a time, every EXPIRE_CYCLE_MS, or every millisecond
 * while due keys remain, so that a crowd of keys expiring together is
 * deleted in slices with the other clients served in between), and, when
 * the service manager asks for one, the watchdog timer. The pool owns one uv_async_t; the
 * connections' shared state owns an idle, a prepare and a timer handle
 * (conn.h); each
 * connection owns its TCP handle and maybe a linger timer.
 *
 * Accepting: past maxclients a client gets "-ERR max number of clients
 * reached"; so does one that would leave fewer than AKV_FDLIMIT_SPARE file
 * descriptors free (fdlimit.h; counted, and logged at most every
 * FD_LOG_INTERVAL_MS, flushed by the cron); then, in protected mode without
 * a password, a client from an address other than loopback gets
 * "-DENIED ..." (all then close). Should accept itself fail with EMFILE or
 * ENFILE (the limit lowered from outside below the descriptors open, the
 * system's table full), libuv first closes what waits in the backlog with
 * its own reserve descriptor; when that does not help it would retry at
 * once, forever, so the listener pauses instead: its handle closes and a
 * duplicate of the socket, made in the slot of our reserve descriptor,
 * keeps it listening, clients waiting in the kernel's backlog, until the
 * cron finds descriptors free again (pause_listener, resume_listeners).
 * libuv closing the waiting clients goes unreported to us, so the cron
 * also logs when no descriptor can be had and when one can again
 * (check_fds_exhausted). At start, maxclients is
 * fitted to RLIMIT_NOFILE (raised, or maxclients lowered with a warning); CONFIG SET maxclients
 * raises the limit or is refused (apply_setting).
 *
 * Service manager: when systemd passes listening sockets ($LISTEN_FDS,
 * src/server/activation.c) they are served instead of the bind/port settings. The
 * watchdog timer sends WATCHDOG=1 every half of $WATCHDOG_USEC from the
 * loop, so a wedged loop stops the pings. Shutdown starts with STOPPING=1.
 * SIGHUP reopens the log file and does nothing else (logrotate's signal).
 * SIGUSR2 reads the configuration file again, as CONFIG RELOAD does
 * (akv_cmd_config_reload), between RELOADING=1 and READY=1.
 *
 * Shutdown (SIGINT or SIGTERM, or the SHUTDOWN command, which starts it
 * from a timer once its own request is over, so that draining never runs
 * inside that connection's processing; SHUTDOWN NOW closes every connection
 * at step 2 instead of letting them drain):
 *   1. the listeners close, so no client is accepted any more;
 *   2. every connection stops reading, finishes the request it is running
 *      and the complete requests it had already received, writes its
 *      replies and closes (conn.c, akv_conn_drain_all);
 *   3. when the last connection has been freed (so no job is left, since
 *      each job holds its connection), and the rewrite that creates the AOF
 *      after appendonly yes is over (the writes since the switch exist only
 *      in memory until then), the pool's threads are joined and its
 *      handle closed, and the signal and timer handles close, after which
 *      uv_run returns and uv_loop_close succeeds.
 * A client that does not take its replies within SHUTDOWN_GRACE_MS, or a
 * second signal, makes step 2 close every connection at once (their jobs
 * still finish first; a job cannot be interrupted); a second signal also
 * stops step 3 waiting for that rewrite. Step 3 is started from a
 * timer callback rather than from whatever callback freed the last
 * connection, so it never runs inside the pool's own delivery loop.
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "server/activation.h"
#include "server/conn.h"
#include "server/fdlimit.h"
#include "util/log.h"
#include "server/service.h"
#include "server/pool.h"

#define LISTEN_BACKLOG 511
#define SHUTDOWN_GRACE_MS 10000
/* The active expiry cycle: how often it looks for due keys, and how long
 * one turn may delete them (Redis's fast cycle takes 1 ms too). */
#define EXPIRE_CYCLE_MS 100
#define EXPIRE_BUDGET_US 1000
/* Refusals for lack of descriptors are logged at most this often. */
#define FD_LOG_INTERVAL_MS 10000

/* A listener whose accept found no descriptor at all is paused: its handle
 * closes, a duplicate of the socket (paused_fd) keeps it listening, so
 * clients wait in the backlog, and the cron resumes it once descriptors
 * are free again (pause_listener, resume_listeners). */
enum { L_ACTIVE, L_PAUSING, L_PAUSED };

struct listener {
    uv_tcp_t tcp;
    struct akv_server *srv;
    char name[INET6_ADDRSTRLEN + 16]; /* "127.0.0.1:6479", "[::1]:6479" */
    int state;                        /* L_* */
    int paused_fd;                    /* the socket while the handle is closed, or -1 */
    int dropped;                      /* shutdown came while L_PAUSING */
};

static const int signals_handled[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR2};
#define NSIGNALS (sizeof(signals_handled) / sizeof(signals_handled[0]))

struct akv_server {
    uv_loop_t *loop;
    struct akv_cmd_env *env;
    const struct akv_config *cfg;
    struct akv_pool *pool;
    struct akv_conn_shared conns;
    int conns_ready;
    struct listener **listeners;
    size_t nlisteners;     /* entries in listeners (closed ones are NULL) */
    size_t open_listeners; /* not yet through their close callback */
    uv_signal_t sig[NSIGNALS];
    size_t nsig;      /* initialised signal handles */
    uv_timer_t timer; /* grace period, then the deferred final step */
    int timer_ready;
    uv_timer_t cron; /* akv_conn_cron */
    int cron_ready;
    uv_timer_t watchdog; /* WATCHDOG=1 pings, when asked for */
    int watchdog_ready;
    uv_timer_t expire; /* the active expiry cycle */
    int expire_ready;
    uint64_t fd_refused;     /* clients refused for lack of descriptors, not yet logged */
    uint64_t fd_log_ms;      /* uv_now of the last such line; 0: none yet */
    size_t fds_base;         /* descriptors open once listening, before any client */
    int reserve_fd;          /* kept open to be given up when a listener must pause; or -1 */
    uint64_t emfile_log_ms;  /* uv_now of the last "accept: no descriptor" line */
    int fds_exhausted;       /* the cron found no descriptor free (logged once) */
    int stopping;            /* shutdown started */
    int stop_now;            /* SHUTDOWN NOW: close the connections instead of draining them */
    int finishing;           /* step 3 started */
    int waiting_initial_aof; /* step 3 waits for the rewrite that creates the AOF */
    int abandon_initial_aof; /* a second signal: stop waiting for it */
};

static void close_listeners(struct akv_server *s);
static void check_done(struct akv_server *s);
static void on_connection(uv_stream_t *ls, int status);
static void on_listener_closed(uv_handle_t *h);

/* ------------------------------------------------------------------------
 * Accepting.
 */

/* What a client from elsewhere than loopback gets in protected mode. One
 * line: a reply may not hold CR or LF. */
static const char denied[] =
    "DENIED attnkv is running in protected mode because protected mode is enabled and no "
    "password is set. In this mode connections are only accepted from the loopback interface. "
    "If you want to connect from other hosts, do one of the following: 1) set a password, from "
    "the loopback interface with CONFIG SET requirepass <password> (and CONFIG REWRITE to keep "
    "it), or with the 'requirepass' directive in attnkvd.conf and CONFIG RELOAD; clients then "
    "send AUTH <password> first. 2) If this host can only be reached from trusted networks, set "
    "'protected-mode no' in attnkvd.conf and restart attnkvd. 3) Bind attnkvd to the loopback "
    "address only and reach it through a tunnel. You only need to do one of the above for "
    "attnkv to accept connections from other hosts.";

/* Whether the client connects from a loopback address: 127.0.0.0/8, ::1 or
 * an IPv4-mapped 127.x. Unknown counts as not. */
static int peer_is_loopback(struct akv_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (uv_tcp_getpeername((uv_tcp_t *)akv_conn_stream(c), (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        const unsigned char *b = a->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && b[12] == 127;
    }
    return 0;
}

/* Logs the refusals for lack of descriptors counted since the last line,
 * at most every FD_LOG_INTERVAL_MS (force: the first one, at once), so a
 * flood of connections costs a line every few seconds, not one each. */
static void log_fd_refusals(struct akv_server *s, int force)
{
    uint64_t now = uv_now(s->loop);
    unsigned long long limit = 0;

    if (s->fd_refused == 0 || (!force && now - s->fd_log_ms < FD_LOG_INTERVAL_MS))
        return;
    (void)akv_fdlimit_scarce(-1, 0, &limit);
    akv_log(AKV_LOG_WARNING,
            "refused %" PRIu64 " client%s for lack of file descriptors (RLIMIT_NOFILE %llu, "
            "%" PRIu64 " clients connected); raise the limit (ulimit -n, LimitNOFILE=) or "
            "lower maxclients",
            s->fd_refused, s->fd_refused == 1 ? "" : "s", limit, s->env->stats.connected_clients);
    s->fd_refused = 0;
    s->fd_log_ms = now ? now : 1;
}

static void refused_for_fds(struct akv_server *s)
{
    s->env->stats.rejected_connections++;
    s->fd_refused++;
    log_fd_refusals(s, s->fd_log_ms == 0 || uv_now(s->loop) - s->fd_log_ms >= FD_LOG_INTERVAL_MS);
}

static void on_listener_paused(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct akv_server *s = l->srv;

    l->state = L_PAUSED;
    if (l->dropped) {
        /* Shutdown came meanwhile: close_listeners left it to us. */
        close(l->paused_fd);
        free(l);
        s->open_listeners--;
        check_done(s);
    }
}

/* accept failed for want of any descriptor, and libuv's own reserve did not
 * help (the limit is below the descriptors open: lowered from outside, or
 * the system's table is full): libuv would retry at once, forever, holding
 * the loop. Closing the handle ends that; a duplicate of the socket, made
 * in the slot of our reserve descriptor, keeps it listening. */
static int pause_listener(struct akv_server *s, struct listener *l)
{
    uv_os_fd_t fd;
    int copy;

    if (l->state != L_ACTIVE || uv_fileno((uv_handle_t *)&l->tcp, &fd) < 0)
        return -EINVAL;
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
    }
    copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0)
        return -errno; /* nothing to pause with: libuv goes on trying */
    l->paused_fd = copy;
    l->state = L_PAUSING;
    uv_close((uv_handle_t *)&l->tcp, on_listener_paused);
    akv_log(AKV_LOG_WARNING,
            "no file descriptor left to accept a client on %s: not accepting until some are "
            "free (clients wait in the backlog)",
            l->name);
    return 0;
}

/* From the cron: listeners paused for want of descriptors listen again once
 * our reserve can be reopened and a client would not be refused anyway. */
static void resume_listeners(struct akv_server *s)
{
    for (size_t i = 0; i < s->nlisteners; i++) {
        struct listener *l = s->listeners[i];
        int rc;

        if (!l || l->state != L_PAUSED || s->stopping)
            continue;
        if (s->reserve_fd < 0)
            s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->reserve_fd < 0 ||
            akv_fdlimit_scarce(s->reserve_fd, s->fds_base + akv_conn_count(&s->conns) + 1, NULL))
            return;
        rc = uv_tcp_init(s->loop, &l->tcp);
        if (rc < 0)
            return;
        l->tcp.data = l;
        rc = uv_tcp_open(&l->tcp, l->paused_fd);
        if (rc < 0) {
            /* The handle did not take the socket: closing it leaves
             * paused_fd as it is, for the next try. */
            l->state = L_PAUSING;
            uv_close((uv_handle_t *)&l->tcp, on_listener_paused);
            return;
        }
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
        if (rc < 0) {
            /* Not now: closing the handle must not close the socket. */
            int copy = fcntl(l->paused_fd, F_DUPFD_CLOEXEC, 0);
            if (copy < 0) {
                l->state = L_ACTIVE; /* the handle owns it; close as usual */
                akv_log(AKV_LOG_WARNING, "cannot listen on %s again: %s", l->name, uv_strerror(rc));
                continue;
            }
            l->paused_fd = copy;
            l->state = L_PAUSING;
            uv_close((uv_handle_t *)&l->tcp, on_listener_paused);
            return;
        }
        l->state = L_ACTIVE;
        l->paused_fd = -1;
        akv_log(AKV_LOG_NOTICE, "accepting clients on %s again", l->name);
    }
}

/* From the cron: whether a descriptor can be had at all. With the limit
 * lowered below the descriptors open, libuv's accept closes every waiting
 * client with its reserve descriptor and tells us nothing, so the state is
 * logged here, when it begins and when it ends. */
static void check_fds_exhausted(struct akv_server *s)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int exhausted = fd < 0 && (errno == EMFILE || errno == ENFILE);
    unsigned long long limit = 0;

    if (fd >= 0)
        close(fd);
    if (exhausted == s->fds_exhausted)
        return;
    s->fds_exhausted = exhausted;
    (void)akv_fdlimit_scarce(-1, 0, &limit);
    if (exhausted)
        akv_log(AKV_LOG_WARNING,
                "file descriptors exhausted (RLIMIT_NOFILE %llu, %" PRIu64 " clients connected): "
                "new clients are closed at once or wait, unanswered, until the limit is raised "
                "(ulimit -n, LimitNOFILE=, prlimit) or clients leave",
                limit, s->env->stats.connected_clients);
    else
        akv_log(AKV_LOG_NOTICE, "file descriptors available again (RLIMIT_NOFILE %llu)", limit);
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct listener *l = ls->data;
    struct akv_server *s = l->srv;
    struct akv_conn *c;
    uv_os_fd_t fd = -1;
    int rc;

    if (status == UV_EMFILE || status == UV_ENFILE) {
        /* Not a client refused (libuv retries the same one), so not
         * counted; logged at most every FD_LOG_INTERVAL_MS. */
        uint64_t now = uv_now(s->loop);
        if (pause_listener(s, l) < 0 &&
            (s->emfile_log_ms == 0 || now - s->emfile_log_ms >= FD_LOG_INTERVAL_MS)) {
            akv_log(AKV_LOG_WARNING,
                    "accept on %s: %s, and no descriptor can be freed to pause the listener "
                    "(the limit is below the descriptors open)",
                    l->name, uv_strerror(status));
            s->emfile_log_ms = now ? now : 1;
        }
        return;
    }
    if (status < 0) {
        akv_log(AKV_LOG_WARNING, "accept on %s: %s", l->name, uv_strerror(status));
        return;
    }
    rc = akv_conn_create(&s->conns, &c);
    if (rc < 0) {
        /* The connection stays in the backlog; the next callback retries. */
        akv_log(AKV_LOG_WARNING, "accept on %s: %s", l->name, uv_strerror(rc));
        return;
    }
    rc = uv_accept(ls, akv_conn_stream(c));
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "accept on %s: %s", l->name, uv_strerror(rc));
        akv_conn_close(c);
        return;
    }
    s->env->stats.connections_received++;
    /* Accepting gives the lowest free descriptor: past the limit's last
     * few, this client would leave the daemon none for its own files. */
    if (uv_fileno((uv_handle_t *)akv_conn_stream(c), &fd) == 0 &&
        akv_fdlimit_scarce(fd, s->fds_base + akv_conn_count(&s->conns), NULL)) {
        refused_for_fds(s);
        akv_conn_reject(c, "ERR max number of clients reached");
        return;
    }
    if (s->env->stats.connected_clients >= (uint64_t)s->cfg->maxclients) {
        s->env->stats.rejected_connections++;
        akv_log(AKV_LOG_VERBOSE, "rejecting a client: maxclients (%d) reached", s->cfg->maxclients);
        akv_conn_reject(c, "ERR max number of clients reached");
        return;
    }
    if (s->cfg->protected_mode && !s->cfg->requirepass && !peer_is_loopback(c)) {
        akv_log(AKV_LOG_VERBOSE, "refusing a client from another host: protected mode");
        akv_conn_reject(c, denied);
        return;
    }
    akv_conn_start(c);
}

/* ------------------------------------------------------------------------
 * Listening.
 */

static void on_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct akv_server *s = l->srv;

    free(l);
    s->open_listeners--;
    check_done(s);
}

/* Formats a bound address as "host:port" (IPv6 in brackets) and returns its
 * port. */
static int addr_name(const struct sockaddr *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        uv_ip6_name(a, host, sizeof(host));
        snprintf(buf, cap, "[%s]:%d", host, ntohs(a->sin6_port));
        return ntohs(a->sin6_port);
    }
    {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        uv_ip4_name(a, host, sizeof(host));
        snprintf(buf, cap, "%s:%d", host, ntohs(a->sin_port));
        return ntohs(a->sin_port);
    }
}

/* Adds a listener with an initialised TCP handle to the server's list (the
 * server closes it at shutdown, whatever happens next). */
static int listener_new(struct akv_server *s, struct listener **out)
{
    struct listener *l, **grown;
    int rc;

    grown = realloc(s->listeners, (s->nlisteners + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    s->listeners = grown;
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->srv = s;
    l->paused_fd = -1;
    rc = uv_tcp_init(s->loop, &l->tcp);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->tcp.data = l;
    s->listeners[s->nlisteners++] = l;
    s->open_listeners++;
    *out = l;
    return 0;
}

/* Binds and listens on one resolved address. *port is the port to use; if
 * it is 0, it becomes the one the kernel picked. */
static int listen_one(struct akv_server *s, const char *spec, struct sockaddr *sa, int *port)
{
    struct listener *l;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    int rc;

    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)sa)->sin6_port = htons((uint16_t)*port);
    else
        ((struct sockaddr_in *)(void *)sa)->sin_port = htons((uint16_t)*port);

    rc = listener_new(s, &l);
    if (rc < 0)
        return rc;
    addr_name(sa, l->name, sizeof(l->name));

    /* IPV6ONLY lets "::" and "0.0.0.0" be listed side by side. libuv sets
     * SO_REUSEADDR, so a restart does not wait for TIME_WAIT sockets. */
    rc = uv_tcp_bind(&l->tcp, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cannot listen on %s (bind %s): %s", l->name, spec,
                uv_strerror(rc));
        return rc;
    }
    rc = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len);
    if (rc < 0)
        return rc;
    *port = addr_name((struct sockaddr *)&bound, l->name, sizeof(l->name));
    akv_log(AKV_LOG_NOTICE, "listening on %s", l->name);
    return 0;
}

/* Serves a listening socket inherited from the service manager. */
static int listen_inherited(struct akv_server *s, int fd, int *port)
{
    struct listener *l;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    int type = 0, listening = 0, p, rc;
    socklen_t olen = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) < 0 || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&bound, &blen) < 0 ||
        (bound.ss_family != AF_INET && bound.ss_family != AF_INET6)) {
        akv_log(AKV_LOG_WARNING,
                "inherited descriptor %d is not a TCP socket (attnkvd serves TCP only)", fd);
        return -EINVAL;
    }
    olen = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) < 0 || !listening) {
        akv_log(AKV_LOG_WARNING, "inherited descriptor %d is not a listening socket", fd);
        return -EINVAL;
    }
    rc = listener_new(s, &l);
    if (rc < 0)
        return rc;
    p = addr_name((struct sockaddr *)&bound, l->name, sizeof(l->name));
    rc = uv_tcp_open(&l->tcp, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cannot serve inherited socket %s: %s", l->name, uv_strerror(rc));
        return rc;
    }
    if (*port == 0 || s->nlisteners == 1)
        *port = p;
    akv_log(AKV_LOG_NOTICE, "listening on %s (socket from the service manager)", l->name);
    return 0;
}

/* Parses one bind address (an IPv4 or IPv6 literal, as config.c accepts;
 * AI_NUMERICHOST keeps getaddrinfo from ever asking DNS) and listens on it. */
static int listen_spec(struct akv_server *s, const char *spec, int *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    rc = getaddrinfo(spec, NULL, &hints, &res);
    if (rc != 0) {
        akv_log(AKV_LOG_WARNING, "cannot listen on %s: %s", spec, gai_strerror(rc));
        return -EINVAL;
    }
    rc = -EINVAL;
    for (ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        rc = listen_one(s, spec, ai->ai_addr, port);
        if (rc < 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

static void close_listeners(struct akv_server *s)
{
    for (size_t i = 0; i < s->nlisteners; i++) {
        struct listener *l = s->listeners[i];

        if (!l)
            continue;
        s->listeners[i] = NULL;
        if (l->state == L_PAUSING) {
            l->dropped = 1; /* on_listener_paused finishes */
        } else if (l->state == L_PAUSED) {
            close(l->paused_fd);
            free(l);
            s->open_listeners--;
        } else {
            uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        }
    }
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
    }
}

/* ------------------------------------------------------------------------
 * Shutdown.
 */

static void close_rest(struct akv_server *s)
{
    if (s->pool)
        akv_pool_close(s->pool, NULL, NULL);
    akv_cmd_cluster_close(s->env); /* Raft's handles, last: no client is left */
    if (s->conns_ready)
        akv_conn_shared_close(&s->conns);
    for (size_t i = 0; i < s->nsig; i++)
        if (!uv_is_closing((uv_handle_t *)&s->sig[i]))
            uv_close((uv_handle_t *)&s->sig[i], NULL);
    /* Closing the last handle of a signal puts back its default action, so
     * a repeated SIGTERM would now kill a process that is a few
     * milliseconds from exiting cleanly. Nothing below can block, so let it
     * finish instead. */
    if (s->nsig > 0) {
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
    }
    if (s->timer_ready && !uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, NULL);
    if (s->cron_ready && !uv_is_closing((uv_handle_t *)&s->cron))
        uv_close((uv_handle_t *)&s->cron, NULL);
    if (s->expire_ready && !uv_is_closing((uv_handle_t *)&s->expire))
        uv_close((uv_handle_t *)&s->expire, NULL);
    if (s->watchdog_ready && !uv_is_closing((uv_handle_t *)&s->watchdog))
        uv_close((uv_handle_t *)&s->watchdog, NULL);
}

static void on_final_step(uv_timer_t *t)
{
    struct akv_server *s = t->data;

    akv_log(AKV_LOG_NOTICE, "all clients done; stopping the workers");
    close_rest(s);
}

static void on_grace_over(uv_timer_t *t)
{
    struct akv_server *s = t->data;

    akv_log(AKV_LOG_WARNING, "%zu clients still open after %d ms; closing them",
            akv_conn_count(&s->conns), SHUTDOWN_GRACE_MS);
    akv_conn_close_all(&s->conns);
}

static void check_done(struct akv_server *s);

static void on_recheck(uv_timer_t *t)
{
    check_done(t->data);
}

/* Whether the rewrite that appendonly yes started, which creates the AOF,
 * is still running: the writes since the switch are then in memory only,
 * so the shutdown waits for it (a second signal stops waiting). */
static int initial_aof_running(struct akv_server *s)
{
    struct akv_persist_info pi;

    if (!s->env->persist || s->abandon_initial_aof)
        return 0;
    akv_persist_info(s->env->persist, &pi);
    return pi.no_file && pi.rewrite_in_progress;
}

static void check_done(struct akv_server *s)
{
    if (!s->stopping || s->finishing || akv_conn_count(&s->conns) > 0 || s->open_listeners > 0)
        return;
    if (initial_aof_running(s)) {
        if (!s->waiting_initial_aof)
            akv_log(AKV_LOG_NOTICE, "shutdown waits for the rewrite that creates the AOF "
                                    "(appendonly was switched on); a second signal exits now");
        s->waiting_initial_aof = 1;
        uv_timer_stop(&s->timer);
        uv_timer_start(&s->timer, on_recheck, 20, 0);
        return;
    }
    s->finishing = 1;
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_final_step, 0, 0);
}

static void on_conn_released(struct akv_conn_shared *sh)
{
    check_done(sh->data);
}

void akv_server_stop(struct akv_server *s)
{
    if (s->stopping) {
        if (!s->finishing) {
            akv_log(AKV_LOG_WARNING, "shutdown already under way; closing every client now%s",
                    s->waiting_initial_aof ? " and abandoning the AOF being created" : "");
            s->abandon_initial_aof = 1;
            akv_conn_close_all(&s->conns);
            check_done(s);
        }
        return;
    }
    s->stopping = 1;
    log_fd_refusals(s, 1);
    akv_service_notify("STOPPING=1");
    akv_service_status("Shutting down: %" PRIu64 " clients, %zu jobs in flight",
                       s->env->stats.connected_clients, akv_pool_pending(s->pool));
    akv_log(AKV_LOG_NOTICE, "shutting down: %" PRIu64 " clients, %zu jobs in flight",
            s->env->stats.connected_clients, akv_pool_pending(s->pool));
    close_listeners(s);
    akv_cmd_cluster_abort(s->env);
    uv_timer_start(&s->timer, on_grace_over, SHUTDOWN_GRACE_MS, 0);
    akv_conn_drain_all(&s->conns);
    check_done(s);
}

int akv_server_stopping(const struct akv_server *s)
{
    return s->stopping;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct akv_server *s = h->data;

    if (signum == SIGHUP) {
        /* logrotate's "move, then SIGHUP": the log only, never the
         * settings, so that a rotation keeps what CONFIG SET changed. */
        int rc = akv_log_reopen();
        if (rc < 0)
            akv_log(AKV_LOG_WARNING, "SIGHUP: reopening the log: %s", akv_log_strerror(rc));
        else
            akv_log(AKV_LOG_NOTICE, "SIGHUP: log reopened");
        return;
    }
    if (signum == SIGUSR2) {
        /* While the AOF replays the service manager still waits for the
         * first READY=1: no reload state to report then. */
        int loading = s->env->loading;
        char err[512];
        if (!loading)
            akv_service_notify("RELOADING=1");
        if (akv_cmd_config_reload(s->env, "SIGUSR2", err, sizeof(err)) == -ENOENT)
            akv_log(AKV_LOG_NOTICE, "SIGUSR2: no configuration file to reload");
        if (!loading)
            akv_service_notify("READY=1");
        return;
    }
    akv_log(AKV_LOG_NOTICE, "received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    akv_server_stop(s);
}

/* ------------------------------------------------------------------------
 * Run-time settings and the watchdog.
 */

/* appendonly at run time: makes the AOF follow the setting. On: a file
 * created by a rewrite of the stores (akv_persist_begin with create), in
 * progress when this returns; off: the file is written, fsync'd and closed
 * (it stays). Refused while the AOF loads and inside EXEC (whose records
 * are batched for the file open when it began). */
static int apply_appendonly(struct akv_cmd_env *env, char *err, size_t errlen)
{
    struct akv_server *s = env->hook_data;
    const struct akv_config *cfg = env->config;
    struct akv_persist *p = env->persist;
    char why[512] = "";
    int rc;

    if (!!cfg->appendonly == (p != NULL))
        return 0;
    if (env->cluster && cfg->appendonly) {
        /* The Raft log keeps a cluster node's data (docs/cluster.md). */
        if (err && errlen)
            snprintf(err, errlen, "appendonly cannot be switched on in cluster mode");
        return -EINVAL;
    }
    if (env->loading || env->in_exec) {
        if (err && errlen)
            snprintf(err, errlen, "appendonly cannot change %s",
                     env->loading ? "while the append-only file loads" : "inside a transaction");
        return -EBUSY;
    }
    if (!cfg->appendonly) {
        struct akv_persist_info pi;
        akv_persist_info(p, &pi);
        /* Those entries live only in the AOF object (see persist.c): a file
         * created later by appendonly yes is made from memory and would
         * replace the old one without them, so switching off is refused
         * until they are deleted or served again. */
        if (pi.unembeddable > 0) {
            if (err && errlen)
                snprintf(err, errlen,
                         "appendonly no refused: %s/%s holds %zu entries that the vocabulary "
                         "cannot embed, kept nowhere else; DEL them (attnkv-check-aof --vocab "
                         "lists them) or restart with vectors that embed them",
                         cfg->dir, cfg->appendfilename, pi.unembeddable);
            return -EBUSY;
        }
        env->persist = NULL;
        /* Writes, fsyncs and closes now; the memory goes once the loop
         * has closed its handles. */
        akv_persist_release(p);
        akv_conn_persist_changed(&s->conns);
        akv_log(AKV_LOG_NOTICE, "appendonly no: AOF closed; %s/%s stays as it is", cfg->dir,
                cfg->appendfilename);
        return 0;
    }
    {
        struct akv_persist_opts po = {
            .dir = cfg->dir,
            .filename = cfg->appendfilename,
            .fsync = cfg->appendfsync,
            .rewrite_percentage = &cfg->aof_rewrite_percentage,
            .rewrite_min_size = &cfg->aof_rewrite_min_size,
            .preamble = &cfg->aof_use_rdb_preamble,
            .create = 1,
        };
        rc = akv_persist_begin(&p, s->loop, env->dbs, env->ndbs, &po, why, sizeof(why));
    }
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "appendonly yes refused: %s", why);
        if (err && errlen)
            snprintf(err, errlen, "%s", why);
        return rc;
    }
    env->persist = p;
    akv_conn_persist_changed(&s->conns);
    akv_log(AKV_LOG_NOTICE,
            "appendonly yes: a rewrite of the stores creates %s/%s; writes are logged from now on",
            cfg->dir, cfg->appendfilename);
    return 0;
}

/* env->apply_setting: makes a run-time directive that has just changed in
 * the config take effect. Most are read where they are used (the automatic
 * rewrite's thresholds too, through pointers); the log, appendfsync and
 * appendonly need doing. On failure the caller puts the old value back and
 * calls this again (with err NULL), which reopens the old log, or leaves
 * the AOF as it was. */
static int apply_setting(struct akv_cmd_env *env, const char *name, char *err, size_t errlen)
{
    const struct akv_config *cfg = env->config;

    if (strcmp(name, "appendonly") == 0)
        return apply_appendonly(env, err, errlen);
    if (strcmp(name, "appendfsync") == 0)
        akv_persist_set_fsync(env->persist, cfg->appendfsync);
    if (strcmp(name, "loglevel") == 0) {
        akv_log_set_level(cfg->loglevel);
    } else if (strcmp(name, "maxclients") == 0) {
        /* As Redis: raise the descriptor limit, or refuse the value. */
        long fit = akv_fdlimit_fit(cfg->maxclients, NULL, NULL);
        if (fit < cfg->maxclients) {
            if (err && errlen)
                snprintf(err, errlen,
                         "The operating system is not able to handle the specified number of "
                         "clients, try with %ld",
                         fit);
            return -EMFILE;
        }
    } else if (strcmp(name, "logfile") == 0) {
        int rc = akv_log_open(cfg->logfile);
        if (rc < 0) {
            if (err && errlen)
                snprintf(err, errlen, "cannot open the log file %s: %s", cfg->logfile,
                         akv_log_strerror(rc));
            return rc;
        }
    }
    return 0;
}

static size_t queue_len(const struct akv_cmd_env *env)
{
    const struct akv_server *s = env->hook_data;

    return s && s->pool ? akv_pool_queued(s->pool) : 0;
}

/* The hooks of CLIENT, MONITOR and CLIENT PAUSE: the connections' side,
 * in conn.c. */
static int clients_hook(struct akv_cmd_env *env, const struct akv_session *only,
                        int (*fn)(void *arg, const struct akv_client_info *ci), void *arg)
{
    struct akv_server *s = env->hook_data;

    return akv_conn_clients(&s->conns, only, fn, arg);
}

static size_t clients_memory_hook(const struct akv_cmd_env *env)
{
    const struct akv_server *s = env->hook_data;

    return akv_conn_memory(&s->conns);
}

static void monitor_set_hook(struct akv_cmd_env *env, struct akv_session *sess, int on)
{
    struct akv_server *s = env->hook_data;

    akv_conn_monitor_set(&s->conns, sess, on);
}

static void monitor_feed_hook(struct akv_cmd_env *env, const char *line, size_t len)
{
    struct akv_server *s = env->hook_data;

    akv_conn_monitor_feed(&s->conns, line, len);
}

static void pause_changed_hook(struct akv_cmd_env *env)
{
    struct akv_server *s = env->hook_data;

    akv_conn_pause_changed(&s->conns);
}

static void on_shutdown_request(uv_timer_t *t)
{
    struct akv_server *s = t->data;

    akv_server_stop(s);
    if (s->stop_now && !s->finishing)
        akv_conn_close_all(&s->conns);
}

/* SHUTDOWN: the stop starts from a timer, after the request that asked for
 * it, so that draining never runs inside that connection's own
 * processing. */
static void shutdown_hook(struct akv_cmd_env *env, int now)
{
    struct akv_server *s = env->hook_data;

    if (s->stopping)
        return;
    s->stop_now |= now;
    uv_timer_start(&s->timer, on_shutdown_request, 0, 0);
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    akv_service_notify("WATCHDOG=1");
}

/* ------------------------------------------------------------------------
 * Life cycle.
 */

static void on_cron(uv_timer_t *t)
{
    struct akv_server *s = t->data;

    akv_conn_cron(&s->conns);
    log_fd_refusals(s, 0);
    check_fds_exhausted(s);
    resume_listeners(s);
    akv_cmd_cron(s->env);
    akv_cmd_reap(s->env, 0);
}

/* The active expiry cycle: one slice of deletions; while due keys remain,
 * the next slice comes 1 ms later (not 0: libuv would run a timer re-armed
 * for now again before polling, starving the clients). */
static void on_expire(uv_timer_t *t)
{
    struct akv_server *s = t->data;
    int more;

    if (s->stopping)
        return; /* the AOF is closing: no more deletions to log */
    more = akv_cmd_expire_cycle(s->env, EXPIRE_BUDGET_US);

    uv_timer_start(t, on_expire, more ? 1 : EXPIRE_CYCLE_MS, 0);
}

/* Says at start-up who may connect; never shows the password. */
static void log_access(const struct akv_server *s)
{
    const struct akv_config *cfg = s->cfg;

    if (cfg->requirepass) {
        akv_log(AKV_LOG_NOTICE, "requirepass is set: clients must AUTH first");
    } else if (cfg->protected_mode) {
        akv_log(AKV_LOG_NOTICE, "protected mode: no password is set, so only clients on the "
                                "loopback interface are accepted");
    } else {
        for (size_t i = 0; i < cfg->nbind; i++) {
            if (strncmp(cfg->bind[i], "127.", 4) != 0 && strcmp(cfg->bind[i], "::1") != 0) {
                akv_log(AKV_LOG_WARNING,
                        "protected mode is off and no password is set: anyone who can reach "
                        "%s can read and change the data",
                        cfg->bind[i]);
                break;
            }
        }
    }
}

int akv_server_create(struct akv_server **out, uv_loop_t *loop, struct akv_cmd_env *env,
                      const struct akv_config *cfg)
{
    struct akv_server *s = calloc(1, sizeof(*s));
    unsigned workers;
    int port, rc;

    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->env = env;
    s->cfg = cfg;
    /* First, so that it gets as low a number as there is. */
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    workers = cfg->workers > 0 ? (unsigned)cfg->workers : uv_available_parallelism();
    if (workers > AKV_POOL_THREADS_MAX)
        workers = AKV_POOL_THREADS_MAX;
    rc = akv_pool_create(&s->pool, loop, workers);
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "cannot start %u worker threads: %s", workers, strerror(-rc));
        goto fail;
    }
    env->workers = workers;

    rc = akv_conn_shared_init(&s->conns, loop, env, s->pool);
    if (rc < 0)
        goto fail;
    s->conns_ready = 1;
    s->conns.on_release = on_conn_released;
    s->conns.data = s;

    rc = uv_timer_init(loop, &s->timer);
    if (rc < 0)
        goto fail;
    s->timer.data = s;
    s->timer_ready = 1;

    rc = uv_timer_init(loop, &s->cron);
    if (rc < 0)
        goto fail;
    s->cron.data = s;
    s->cron_ready = 1;
    rc = uv_timer_start(&s->cron, on_cron, AKV_CONN_CRON_MS, AKV_CONN_CRON_MS);
    if (rc < 0)
        goto fail;

    rc = uv_timer_init(loop, &s->expire);
    if (rc < 0)
        goto fail;
    s->expire.data = s;
    s->expire_ready = 1;
    rc = uv_timer_start(&s->expire, on_expire, EXPIRE_CYCLE_MS, 0);
    if (rc < 0)
        goto fail;

    for (; s->nsig < NSIGNALS; s->nsig++) {
        uv_signal_t *h = &s->sig[s->nsig];
        rc = uv_signal_init(loop, h);
        if (rc < 0)
            goto fail;
        h->data = s;
        rc = uv_signal_start(h, on_signal, signals_handled[s->nsig]);
        if (rc < 0) {
            s->nsig++; /* initialised: it must be closed */
            goto fail;
        }
    }

    if (akv_service_watchdog_usec() > 0) {
        uint64_t ms = akv_service_watchdog_usec() / 2000;
        rc = uv_timer_init(loop, &s->watchdog);
        if (rc < 0)
            goto fail;
        s->watchdog.data = s;
        s->watchdog_ready = 1;
        /* Once now, then every half interval, as sd_watchdog_enabled(3)
         * advises. */
        uv_timer_start(&s->watchdog, on_watchdog, 0, ms > 0 ? ms : 1);
        akv_log(AKV_LOG_VERBOSE, "watchdog: pinging every %" PRIu64 " ms", ms > 0 ? ms : 1);
    }

    /* maxclients against RLIMIT_NOFILE, as Redis fits them. */
    {
        struct akv_config *live = env->config;
        unsigned long long before = 0, after = 0;
        long fit = akv_fdlimit_fit(live->maxclients, &before, &after);

        if (after > before)
            akv_log(AKV_LOG_NOTICE,
                    "raised the file descriptor limit (RLIMIT_NOFILE) from %llu to %llu for "
                    "maxclients %d",
                    before, after, live->maxclients);
        if (fit < 1) {
            akv_log(AKV_LOG_WARNING,
                    "the file descriptor limit (RLIMIT_NOFILE %llu) leaves none for clients; "
                    "it must be above %d",
                    after, AKV_FDLIMIT_RESERVED);
            rc = -EMFILE;
            goto fail;
        }
        if (fit < live->maxclients) {
            akv_log(AKV_LOG_WARNING,
                    "maxclients %d needs %ld file descriptors, but the limit (RLIMIT_NOFILE) "
                    "is %llu and cannot be raised: maxclients lowered to %ld; raise the limit "
                    "(ulimit -n, systemd's LimitNOFILE=) to serve more clients",
                    live->maxclients, (long)live->maxclients + AKV_FDLIMIT_RESERVED, after, fit);
            live->maxclients = (int)fit;
        }
    }

    port = cfg->port;
    rc = akv_activation_listen_fds();
    if (rc < 0) {
        akv_log(AKV_LOG_WARNING, "bad LISTEN_FDS/LISTEN_PID from the service manager");
        goto fail;
    }
    if (rc > 0) {
        int n = rc;
        port = 0;
        akv_log(AKV_LOG_NOTICE,
                "socket-activated: serving %d inherited sockets; bind and port "
                "are ignored",
                n);
        for (int i = 0; i < n; i++) {
            rc = listen_inherited(s, AKV_ACTIVATION_FD_START + i, &port);
            if (rc < 0)
                goto fail;
        }
    } else {
        for (size_t i = 0; i < cfg->nbind; i++) {
            rc = listen_spec(s, cfg->bind[i], &port);
            if (rc < 0)
                goto fail;
        }
    }
    if (s->nlisteners == 0) {
        akv_log(AKV_LOG_WARNING, "no address to listen on");
        rc = -EINVAL;
        goto fail;
    }
    env->tcp_port = port;
    rc = akv_fdlimit_count_open();
    s->fds_base = rc > 0 ? (size_t)rc : 0;
    log_access(s);
    env->apply_setting = apply_setting;
    env->queue_len = queue_len;
    env->clients = clients_hook;
    env->clients_memory = clients_memory_hook;
    env->monitor_set = monitor_set_hook;
    env->monitor_feed = monitor_feed_hook;
    env->pause_changed = pause_changed_hook;
    env->shutdown = shutdown_hook;
    env->hook_data = s;
    *out = s;
    return 0;

fail:
    /* Handles cannot just be freed: close them and let the loop deliver
     * their close callbacks before the memory goes. */
    close_listeners(s);
    close_rest(s);
    uv_run(loop, UV_RUN_DEFAULT);
    akv_server_destroy(s);
    return rc;
}

int akv_server_run(struct akv_server *s)
{
    /* With UV_RUN_DEFAULT, uv_run returns only once nothing is active. */
    uv_run(s->loop, UV_RUN_DEFAULT);
    return 0;
}

void akv_server_destroy(struct akv_server *s)
{
    if (!s)
        return;
    akv_pool_destroy(s->pool);
    if (s->conns_ready)
        akv_conn_shared_fini(&s->conns);
    free(s->listeners);
    free(s);
}
