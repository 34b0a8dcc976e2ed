/*
 * slowlog.h - the slow log: the last commands that took longer than
 * slowlog-log-slower-than microseconds, newest first, as Redis keeps it
 * (SLOWLOG GET/LEN/RESET).
 *
 * An entry copies what it shows, cut as Redis cuts it: at most
 * AKV_SLOWLOG_ARGC_MAX arguments (the last one then reads
 * "... (N more arguments)") and AKV_SLOWLOG_ARG_MAX bytes of each (then
 * "... (N more bytes)"), so a huge request costs a few kilobytes here
 * (an ordinary one what its arguments take). Besides slowlog-max-len, the
 * entries together are kept under AKV_SLOWLOG_MEM_MAX bytes: the oldest go
 * first.
 *
 * Pure: no I/O, no clock (the caller passes the time). Threading: loop
 * thread only.
 */
#ifndef ATTNKV_SLOWLOG_H
#define ATTNKV_SLOWLOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto/proto.h"

#define AKV_SLOWLOG_ARGC_MAX 32
#define AKV_SLOWLOG_ARG_MAX 128
#define AKV_SLOWLOG_MEM_MAX ((size_t)64 << 20)

struct akv_slowlog_entry {
    struct akv_slowlog_entry *newer, *older;
    uint64_t id;
    int64_t time;         /* unix time, seconds, when it was logged */
    uint64_t duration_us; /* how long the command took */
    size_t argc;
    size_t size;            /* bytes of its allocation */
    struct akv_slice *argv; /* in the same allocation as the entry */
    char peer[64];          /* "ip:port", or "" */
};

struct akv_slowlog {
    struct akv_slowlog_entry *newest, *oldest;
    size_t len;
    size_t mem;       /* bytes of every entry together */
    uint64_t next_id; /* ids keep counting across RESET, as in Redis */
};

void akv_slowlog_init(struct akv_slowlog *sl);

/* Frees every entry (ids go on counting). */
void akv_slowlog_reset(struct akv_slowlog *sl);

/* A detached entry holding a cut copy of argv[0..argc) and peer (NULL is
 * ""): made when a command starts, if it may need logging, because its
 * arguments are gone by the time a pool job finishes. The caller owns it:
 * akv_slowlog_push or akv_slowlog_entry_free. NULL when out of memory. */
struct akv_slowlog_entry *akv_slowlog_entry_new(size_t argc, const struct akv_slice *argv,
                                                const char *peer);

void akv_slowlog_entry_free(struct akv_slowlog_entry *e);

/* Adds e (taking ownership) as the newest entry, with the next id, the
 * given time and duration, then drops the oldest entries beyond max_len
 * (max_len 0 keeps nothing). */
void akv_slowlog_push(struct akv_slowlog *sl, struct akv_slowlog_entry *e, int64_t when,
                      uint64_t duration_us, size_t max_len);

/* Drops the oldest entries beyond max_len (slowlog-max-len made smaller). */
void akv_slowlog_trim(struct akv_slowlog *sl, size_t max_len);

#endif
