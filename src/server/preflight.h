/*
 * preflight.h - attnkvd --test-config: checks that the settings will let
 * the daemon start, beyond their syntax (which config.c checks).
 *
 * Ownership: borrows everything; allocates nothing that outlives a call.
 *
 * Threading: the main thread, before anything else runs (it opens and
 * closes the log file through util/log.h).
 */
#ifndef ATTNKV_PREFLIGHT_H
#define ATTNKV_PREFLIGHT_H

#include <stdio.h>

#include "server/config.h"

/* Checks what start-up will need, printing one line to out for each
 * problem, with the directive and where its value comes from
 * (akv_config_where): "attnkvd: dir '/x' (from /etc/attnkv/attnkvd.conf:12):
 * cannot create a file there: Permission denied".
 *   - dir exists and a file can be created in it (one is created and
 *     removed);
 *   - logfile, if set, can be opened for appending with the daemon's own
 *     checks (a regular file, no symbolic link, not the append-only file
 *     ...), without truncating it; a log file that did not exist is
 *     created to find out, and removed again;
 *   - every bind address can be bound at port (each socket is bound and
 *     closed at once); an address in use now (by a running attnkvd, say)
 *     is a warning, not a failure, since it may be free at start-up; with
 *     socket activation ($LISTEN_FDS for this process) nothing is bound;
 *   - with appendonly yes, an existing append-only file can be read (not
 *     checked when dir failed).
 * The vectors are main.c's to open. Returns the number of problems
 * (warnings not counted). */
int akv_preflight_check(const struct akv_config *c, const struct akv_config_args *a, FILE *out);

#endif
