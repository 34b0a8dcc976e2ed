/*
 * server.h - the daemon's event loop: TCP listeners on every bind address,
 * accepting clients (up to maxclients), the worker pool, signals and an
 * orderly shutdown.
 *
 * Threading: loop thread only (see the Design comment in src/server/server.c).
 */
#ifndef ATTNKV_SERVER_H
#define ATTNKV_SERVER_H

#include <uv.h>

#include "server/cmd.h"
#include "server/config.h"

struct akv_server;

/* Creates the worker pool (cfg->workers threads, 0 = one per CPU), listens
 * on every cfg->bind address at cfg->port (port 0: the first listener picks
 * a free port and the others reuse it), logs "listening on ADDR:PORT" for
 * each, and installs the SIGINT/SIGTERM/SIGHUP/SIGUSR2 handlers. When the service
 * manager passed listening sockets ($LISTEN_FDS for our pid), those are
 * served instead of cfg's bind and port. When it asked for a watchdog
 * (akv_service_watchdog_usec), a timer pings it. env->tcp_port,
 * env->workers and env's hooks (apply_setting, queue_len, and those of
 * CLIENT, MONITOR, CLIENT PAUSE and SHUTDOWN, on the connections) are filled in. env and cfg are
 * borrowed and must outlive the server. On failure nothing is left on the loop and a reason is
 * logged. Returns 0 or a negative errno / UV_E* code. */
int akv_server_create(struct akv_server **out, uv_loop_t *loop, struct akv_cmd_env *env,
                      const struct akv_config *cfg);

/* Runs the loop until a signal has shut the server down: listeners closed,
 * every client's work finished and replies written (or the grace period
 * over), every handle closed. Returns 0 or a UV_E* code. */
int akv_server_run(struct akv_server *s);

/* Starts the shutdown that SIGTERM starts (for tests and embedding). */
void akv_server_stop(struct akv_server *s);

/* Whether the shutdown has started. */
int akv_server_stopping(const struct akv_server *s);

/* Frees the server after akv_server_run returned. NULL is a no-op. */
void akv_server_destroy(struct akv_server *s);

#endif
