/*
 * log.h - attnkvd's log: levelled, timestamped lines to stderr or a file.
 *
 * A line reads
 *
 *   2026-11-26 12:00:01.123 [4242] notice: message
 *
 * with the time in UTC (always UTC, whatever TZ says, so that lines from
 * hosts in different zones and across DST changes sort and compare as they
 * are), the process id, the level name and the message. Control characters
 * in the message are written as \n, \r or \xHH, so a line in the log is
 * always one line even when it quotes client input; tabs and UTF-8 pass
 * through. A message longer than AKV_LOG_MSG_MAX bytes (after that
 * escaping) is cut at a character boundary and ends in "...".
 *
 * Until akv_log_open names a file, lines go to stderr (which systemd hands
 * to the journal). Messages below the threshold (default notice) are
 * dropped before they are formatted.
 *
 * Threading: akv_log, akv_logv, akv_log_enabled and the level functions may
 * be called from any thread at any time. Each line is written with a single
 * write(2) under a lock, so lines from different threads never interleave.
 * akv_log_open, akv_log_reopen and akv_log_close must be called from one
 * thread (the main/loop thread; for SIGHUP use a uv_signal_t callback, not
 * a raw signal handler: none of this is async-signal-safe). All functions
 * leave errno as they found it, so "akv_log(...); return -errno;" works.
 */
#ifndef ATTNKV_LOG_H
#define ATTNKV_LOG_H

#include <stdarg.h>

enum akv_loglevel { AKV_LOG_DEBUG = 0, AKV_LOG_VERBOSE, AKV_LOG_NOTICE, AKV_LOG_WARNING };

/* "debug", "verbose", "notice", "warning", indexed by the level, then NULL. */
extern const char *const akv_loglevel_names[];

/* A level's name, or "unknown" for any other value. Any thread. */
const char *akv_loglevel_name(enum akv_loglevel l);

#define AKV_LOG_MSG_MAX 8192 /* longest message kept, bytes, after escaping */

/* Sends later lines to path, opened for appending (created 0640: logs quote
 * keys, which are user data) with O_CLOEXEC. NULL or "" means stderr.
 * Only a regular file on an ordinary file system will do: the last
 * component may not be a symbolic link (O_NOFOLLOW), and devices, FIFOs,
 * /proc and /sys files and the paths given to akv_log_protect are refused.
 * Returns 0, or -errno with the previous destination still in use
 * (akv_log_strerror says why). */
int akv_log_open(const char *path);

/* Adds path (copied) to the files the log may never be written to: the
 * append-only file, the vectors. Call before akv_log_open. Returns 0 or
 * -ENOMEM. */
int akv_log_protect(const char *path);

/* Why akv_log_open or akv_log_reopen failed with rc, for a message. */
const char *akv_log_strerror(int rc);

/* Opens the current log file again, for logrotate's "move, then SIGHUP".
 * Lines logged meanwhile go to the old file; none are lost or split.
 * Returns 0 (also when logging to stderr), or -errno with the old file
 * still in use. */
int akv_log_reopen(void);

/* Closes the log file, if any, and goes back to stderr. */
void akv_log_close(void);

/* The threshold: lines below it are dropped. Out-of-range values are
 * clamped to AKV_LOG_DEBUG..AKV_LOG_WARNING. */
void akv_log_set_level(enum akv_loglevel lvl);
enum akv_loglevel akv_log_get_level(void);

/* 1 if a line at lvl would be written; for callers whose arguments cost
 * something to compute. */
int akv_log_enabled(enum akv_loglevel lvl);

/* Logs one line at lvl (no trailing newline needed; one is added). */
__attribute__((format(printf, 2, 3))) void akv_log(enum akv_loglevel lvl, const char *fmt, ...);
__attribute__((format(printf, 2, 0))) void akv_logv(enum akv_loglevel lvl, const char *fmt,
                                                    va_list ap);

#endif
