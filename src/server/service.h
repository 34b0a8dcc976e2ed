/*
 * service.h - telling the service manager how start-up and shutdown go
 * (systemd's sd_notify protocol: READY=1, STATUS=..., STOPPING=1,
 * WATCHDOG=1), a no-op when the daemon was not started by one.
 *
 * The protocol: $NOTIFY_SOCKET names a Unix datagram socket (a path, or an
 * abstract-namespace name written with a leading '@'); each message is one
 * datagram of newline-separated VAR=value assignments. $WATCHDOG_USEC asks
 * for a WATCHDOG=1 at least that often, and applies to this process only if
 * $WATCHDOG_PID is unset or is our pid. With libsystemd at build time
 * (HAVE_LIBSYSTEMD) messages go through sd_notify; otherwise service.c
 * speaks the documented protocol itself. The behaviour is the same.
 *
 * Threading: akv_service_open and akv_service_close on the main thread, once;
 * akv_service_notify and akv_service_status then from the loop thread (not from a
 * raw signal handler).
 */
#ifndef ATTNKV_SERVICE_H
#define ATTNKV_SERVICE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* Longest message sent; a STATUS= line is cut to fit. */
#define AKV_SERVICE_MSG_MAX 512

/* Pure helpers (unit-tested). */

/* Fills *sa and *len from a $NOTIFY_SOCKET value: an absolute path, or
 * "@name" for the abstract namespace (the '@' becomes a NUL byte, and the
 * length counts exactly the name). Returns 0, or -EINVAL for NULL, "",
 * "@" or a relative path, -ENAMETOOLONG when it does not fit sun_path. */
int akv_service_addr(const char *value, struct sockaddr_un *sa, socklen_t *len);

/* The watchdog interval in microseconds that $WATCHDOG_USEC (usec) and
 * $WATCHDOG_PID (pid, may be NULL) ask of process self: 0 when none is
 * asked of it (unset, not a positive decimal number, or another pid's). */
uint64_t akv_service_watchdog_parse(const char *usec, const char *pid, pid_t self);

/* Formats "STATUS=<text>" into buf (cap bytes, cap > 7), with every
 * control character of the text (newlines included, which would start a
 * new assignment) replaced by a space, cut at cap - 1 bytes. Returns the
 * length written. */
__attribute__((format(printf, 3, 0))) size_t akv_service_format_status(char *buf, size_t cap,
                                                                       const char *fmt, va_list ap);

/* The process-wide channel. */

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. Without
 * $NOTIFY_SOCKET every later call does nothing. Returns 0, or a negative
 * errno when the variable is set but unusable (the daemon logs it and runs
 * on without notifications). */
int akv_service_open(void);

/* 1 when messages are being sent. */
int akv_service_enabled(void);

/* Sends one message, e.g. "READY=1" or "STOPPING=1". Returns 0 (also when
 * disabled) or a negative errno. */
int akv_service_notify(const char *msg);

/* Sends STATUS=<formatted text> (see akv_service_format_status). */
__attribute__((format(printf, 1, 2))) int akv_service_status(const char *fmt, ...);

/* The watchdog interval asked for, in microseconds; 0 when none. The daemon
 * sends WATCHDOG=1 every half of it, from its event loop. */
uint64_t akv_service_watchdog_usec(void);

/* Closes the socket; later calls do nothing. */
void akv_service_close(void);

#endif
