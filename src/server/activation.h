/*
 * activation.h - socket activation: listening sockets handed over by the
 * service manager (systemd's $LISTEN_FDS protocol, as sd_listen_fds reads
 * it). The sockets are file descriptors AKV_ACTIVATION_FD_START,
 * AKV_ACTIVATION_FD_START + 1, ..., $LISTEN_FDS of them, meant for us only
 * if $LISTEN_PID is our pid.
 *
 * Threading: main thread, before the loop starts.
 */
#ifndef ATTNKV_ACTIVATION_H
#define ATTNKV_ACTIVATION_H

#include <sys/types.h>

#define AKV_ACTIVATION_FD_START 3
#define AKV_ACTIVATION_FDS_MAX 64

/* Pure: how many descriptors $LISTEN_FDS (fds) and $LISTEN_PID (pid) hand
 * to process self. 0 when either is unset or pid names another process;
 * -EINVAL when they are set for us but malformed, or more than
 * AKV_ACTIVATION_FDS_MAX. */
int akv_activation_parse(const char *fds, const char *pid, pid_t self);

/* Reads the environment, marks the inherited descriptors close-on-exec and
 * removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the environment
 * (so nothing we might start inherits them). Returns the number of
 * descriptors (0: not socket-activated) or -EINVAL. Call once. */
int akv_activation_listen_fds(void);

#endif
