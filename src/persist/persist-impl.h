/*
 * persist-impl.h - the append-only file object, shared by persist.c (the
 * writer thread, logging, replay, life cycle) and rewrite.c (the rewrite).
 * Private to src/persist/. The design, threads and invariants are
 * described at the top of persist.c.
 */
#ifndef ATTNKV_PERSIST_IMPL_H
#define ATTNKV_PERSIST_IMPL_H

#include "persist/persist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "persist/parked.h"
#include "util/buf.h"

#define NS_PER_SEC 1000000000ull
#define RETRY_NS NS_PER_SEC
#define AUTO_BACKOFF_NS (10 * NS_PER_SEC) /* after a failed automatic rewrite */
#define RW_BUF (1u << 20)
#define REPORT_KEYS 5 /* text-only keys named in the startup log */

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline void buf_swap(struct akv_buf *a, struct akv_buf *b)
{
    struct akv_buf t = *a;
    *a = *b;
    *b = t;
}

enum rw_state { RW_IDLE, RW_SCANNING, RW_SWITCHING };

/* A finished rewrite, handed from the loop to the writer (step 3). */
struct switch_req {
    int fd;              /* the temporary file, open for writing */
    uint64_t off;        /* its size */
    struct akv_buf tail; /* records logged while the rewrite ran */
};

struct akv_persist {
    uv_loop_t *loop;
    struct akv_store **dbs; /* the daemon's databases (borrowed; replay's SWAPDB swaps them) */
    uint32_t ndbs;
    const int *rw_percentage;
    const unsigned long long *rw_min_size;
    const int *use_preamble;
    char *path, *tmppath;
    enum akv_fsync policy;
    int rw_delay_us;

    /* Loop thread. */
    struct akv_buf pending;
    uint64_t appended, handed;
    /* Between akv_persist_multi_begin and _end (in_multi counts nested
     * pairs): the records logged, to go into pending as one MULTI record. */
    int in_multi;
    struct akv_buf batch;
    uint32_t batch_count;
    int rw_after_batch; /* a rewrite was asked for inside the batch: start it at its end */
    struct akv_parked parked;
    uv_prepare_t prepare;
    uv_async_t async;
    int handles_ready;
    int handles_closed; /* close callbacks run */
    int release;        /* akv_persist_release: free once the handles are closed */
    int closed;
    /* Start-up replay (akv_persist_begin to the last akv_persist_load). */
    struct akv_persist_load *load;
    int loading;
    int load_failed;
    int no_file; /* appendonly switched on at run time: no file until the first rewrite */
    void (*notify)(void *arg);
    void *notify_arg;
    uint64_t written_seen, durable_seen, size_seen;
    int err_seen;
    uint64_t base_size;
    uint64_t replayed;
    enum rw_state rw;
    struct akv_store **rw_dbs;    /* the databases as the rewrite started (ndbs) */
    struct akv_store_snap *snaps; /* a snapshot of each */
    int has_snap;
    struct akv_buf rwbuf;  /* records logged since the rewrite started */
    struct akv_buf rwhead; /* the text-only entries, encoded at the start */
    int rw_fd;
    pthread_t rw_thread;
    int rw_thread_live;
    uint64_t rw_t0;
    size_t rw_entries;
    int rw_preamble; /* this rewrite writes a snapshot preamble */
    int last_rewrite_ok;
    uint64_t rewrites;
    double last_rewrite_ms;
    uint64_t next_auto_ns;

    /* Shared with the writer and rewrite threads: under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct akv_buf q; /* handed, for the current file */
    uint64_t q_end;
    struct switch_req *sw;  /* a rewrite waiting to be switched in */
    struct akv_buf q_after; /* handed after sw was queued */
    uint64_t q_after_end;
    uint64_t written, synced, fsize;
    int werr;
    int stop;
    uint64_t retry_ns;
    int rw_finished, rw_rc;
    uint64_t rw_size;
    size_t rw_count;
    int sw_finished, sw_rc;
    atomic_int rw_cancel;

    /* Writer thread only (and the loop before it starts / after it ends). */
    pthread_t writer;
    int writer_live;
    int fd;
    uint64_t off;
    struct akv_buf wb; /* the batch being written (kept on failure) */
    uint64_t wb_end;
    uint64_t last_sync_ns;
};

/* persist.c: file helpers (any thread) and the hand-off to the writer. */
int akv_persist_pwrite_all(int fd, uint64_t off, const char *p, size_t n);
int akv_persist_sync_fd(int fd);
void akv_persist_handoff(struct akv_persist *p);

/* rewrite.c, on the loop thread: the rewrite thread's report (scan done,
 * switch done), the automatic trigger, and giving up. */
void akv_persist_rw_scanned(struct akv_persist *p, int rc, uint64_t size, size_t count);
void akv_persist_rw_switched(struct akv_persist *p, int rc, uint64_t size);
void akv_persist_rw_maybe_auto(struct akv_persist *p);
void akv_persist_rw_abandon(struct akv_persist *p);
void akv_persist_rw_failed(struct akv_persist *p, int rc);

#endif
