/*
 * persist.c - the append-only file: logging writes, the writer thread,
 * replay at startup and the life cycle (rewrite.c: the rewrite; parked.c:
 * the entries kept only as text).
 *
 * Design
 * ------
 * Threads. The loop thread owns the store, the text-only entries and the
 * `pending` buffer, into which every SET, DEL and FLUSHALL is encoded (aof.h)
 * by the handler that applied it. A uv_prepare_t callback hands `pending` to
 * the writer thread once per loop turn, just before the loop polls, so the
 * writes of one turn travel (and with appendfsync always, are fsync'd)
 * together. The writer thread owns the file descriptor: it write()s what it
 * was handed, fsyncs (always: after each batch; everysec: at most once a
 * second when something is unsynced; no: never, but at shutdown and
 * rewrites), and reports the sequence written and fsync'd through a
 * uv_async_t. The loop thread never writes nor fsyncs the AOF. A rewrite
 * thread exists while a rewrite scans the store.
 *
 * Sequences. A sequence is a count of bytes ever logged: `appended` (loop)
 * grows as records are encoded, `handed` when pending is given to the
 * writer, `written` and `synced` (writer, under mu) when they reach the
 * kernel and the disk. The connection (conn.c) notes the sequence after a
 * write command and holds that reply, and every later reply of the
 * connection, until akv_persist_durable reaches it: `synced` under
 * appendfsync always, `written` otherwise. So no write is acknowledged
 * before its record is in the kernel (none is lost if the process dies) or
 * on the disk (always). Reads on other connections do not wait.
 *
 * Write errors (ENOSPC, EFBIG, EIO). The writer keeps the batch that failed
 * and retries it every second at the same file offset (pwrite), so a
 * partial write is simply overwritten; the error is reported, and while it
 * lasts write commands are refused with -MISCONF and the replies of writes
 * already applied stay held. Nothing acknowledged is lost, and nothing is
 * acknowledged that is not in the file. SIGXFSZ is ignored by main.
 *
 * Rewrite, without fork:
 *   1. (loop) open the temporary file, take a store snapshot, encode the
 *      text-only entries, start the rewrite thread. From now on every record
 *      logged also goes to `rwbuf`.
 *   2. (rewrite thread) write the header, then the rows visible in the
 *      snapshot as a snapshot preamble (aof-use-rdb-preamble: SNAPBEGIN,
 *      SNAPCHUNKs with each entry's word ids and key norm, SNAPEND; aof.h)
 *      followed by the text-only entries as PUT records, or else the
 *      text-only entries and a PUT for every row; then fdatasync; report
 *      done.
 *   3. (loop) release the snapshot, hand pending to the writer, then queue a
 *      switch request carrying the temporary file and rwbuf; records logged
 *      after this point are handed to the writer as `q_after`, for the new
 *      file only.
 *   4. (writer) after finishing the batches queued before the switch (to the
 *      old file), append rwbuf to the temporary file, fdatasync it, rename
 *      it over the AOF, fsync the directory, close the old descriptor and
 *      continue with q_after on the new one. Until the rename, the old file
 *      has every record; after it, the new one has every record, so a crash
 *      at any step loses nothing. The directory is fsync'd before any
 *      record of q_after is written, so no acknowledged write can live only
 *      in a file whose name a power failure could undo.
 * A failed rewrite removes the temporary file and leaves the AOF as it was.
 *
 * Text-only entries. A SET in the file whose key or value does not embed in
 * the current vocabulary (after a change of vectors) is kept here as text:
 * not served (GET and QUERY do not see it), counted in INFO, logged at
 * startup, dropped by a DEL or FLUSHALL of it or replaced by a SET of its
 * key, and written into every rewrite so that a later vocabulary that has
 * the words serves it again.
 *
 * Replay in steps. akv_persist_begin opens and maps the file;
 * akv_persist_load replays records (aof.c's parser in steps) until its
 * time budget is spent, and its last call judges the file, cuts a torn
 * tail, and only then creates the loop handles and starts the writer. So
 * the daemon serves clients (with -LOADING) between slices, and a shutdown
 * in between finds no thread and nothing written. A preamble's chunk is a
 * step of its own; its entries go into the store by akv_store_put_words
 * (no splitting, no embedding) when its SNAPBEGIN names the vectors in
 * use, else they are embedded again from their text like records.
 *
 * Run time. The policy (appendfsync) is read by the writer under mu once
 * per turn; a change wakes it, and under always it fsyncs what was only
 * written. With opts->create (appendonly switched on) there is no file at
 * first (fd -1: the writer counts batches as written without writing
 * them) and a rewrite is started at once: its snapshot plus rwbuf is the
 * whole data set, and step 4 renames it in as the first file.
 * akv_persist_release (appendonly switched off) closes as at shutdown, then
 * frees the object from the handles' close callbacks.
 *
 * Lock order: mu is the only lock; nothing is called with it held that
 * takes another (uv_async_send is lock-free).
 *
 * Test hook: AKV_TEST_REWRITE_DELAY_US (environment) makes the rewrite
 * thread sleep that long per entry, so tests can catch a rewrite in
 * progress (as Redis's rdb-key-save-delay does).
 */
#include "persist/persist-impl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <xxhash.h>

#include "attnkv/embed.h"
#include "util/log.h"
#include "util/text.h"
#include "util/buf.h"

const char *const akv_fsync_names[] = {"no", "everysec", "always", NULL};
_Static_assert(AKV_FSYNC_NO == 0 && AKV_FSYNC_EVERYSEC == 1 && AKV_FSYNC_ALWAYS == 2,
               "akv_fsync_names is out of step with enum akv_fsync");

const char *akv_fsync_name(enum akv_fsync f)
{
    return (int)f >= 0 && f <= AKV_FSYNC_ALWAYS ? akv_fsync_names[f] : "unknown";
}

/* ------------------------------------------------------------------------
 * File helpers (any thread).
 */

int akv_persist_pwrite_all(int fd, uint64_t off, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -ENOSPC;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int akv_persist_sync_fd(int fd)
{
    return fdatasync(fd) < 0 ? -errno : 0;
}

/* fsyncs the directory holding path, so that a rename or creation in it is
 * on the disk. */
static int sync_dir_of(const char *path)
{
    char *dir = strdup(path), *slash;
    int fd, rc = 0;

    if (!dir)
        return -ENOMEM;
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* ------------------------------------------------------------------------
 * The writer thread.
 */

/* Writer: step 4 of the rewrite. Called with mu held and q empty; returns
 * with mu held. */
static void do_switch(struct akv_persist *p)
{
    struct switch_req *sw = p->sw;
    int rc, renamed = 0;

    pthread_mutex_unlock(&p->mu);
    rc = akv_persist_pwrite_all(sw->fd, sw->off, sw->tail.p, sw->tail.len);
    if (rc == 0)
        rc = akv_persist_sync_fd(sw->fd);
    if (rc == 0 && rename(p->tmppath, p->path) < 0)
        rc = -errno;
    if (rc == 0) {
        renamed = 1;
        /* The new file is the AOF now whatever happens: switch to it. A
         * directory that cannot be fsync'd is reported; nothing better can
         * be done. */
        rc = sync_dir_of(p->path);
        if (rc < 0)
            akv_log(AKV_LOG_WARNING, "AOF rewrite: fsync of the directory of %s: %s", p->path,
                    strerror(-rc));
    }
    if (renamed) {
        if (p->fd >= 0)
            close(p->fd);
        p->fd = sw->fd;
        p->off = sw->off + sw->tail.len;
    } else {
        close(sw->fd);
        unlink(p->tmppath);
    }
    akv_buf_fini(&sw->tail);
    free(sw);
    pthread_mutex_lock(&p->mu);
    if (renamed) {
        p->fsize = p->off;
        p->synced = p->written; /* all of it is in the fsync'd new file */
    }
    p->sw = NULL;
    buf_swap(&p->q, &p->q_after);
    p->q_end = p->q_after_end;
    p->sw_finished = 1;
    p->sw_rc = renamed ? 0 : rc;
}

static void *writer_main(void *arg)
{
    struct akv_persist *p = arg;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        uint64_t now = now_ns();
        enum akv_fsync policy = p->policy; /* may change (appendfsync at run time) */
        int unsynced = p->synced < p->written;

        if ((p->wb.len > 0 || p->q.len > 0) && now >= p->retry_ns) {
            int rc;
            if (p->wb.len == 0) {
                buf_swap(&p->wb, &p->q);
                p->wb_end = p->q_end;
            }
            pthread_mutex_unlock(&p->mu);
            /* No file yet (appendonly switched on at run time): the
             * rewrite that makes it carries these records. */
            rc = p->fd < 0 ? 0 : akv_persist_pwrite_all(p->fd, p->off, p->wb.p, p->wb.len);
            if (rc == 0 && policy == AKV_FSYNC_ALWAYS && p->fd >= 0)
                rc = akv_persist_sync_fd(p->fd);
            pthread_mutex_lock(&p->mu);
            if (rc == 0) {
                p->off += p->wb.len;
                p->wb.len = 0;
                if (p->wb.cap > RW_BUF)
                    akv_buf_fini(&p->wb);
                p->written = p->wb_end;
                if (policy == AKV_FSYNC_ALWAYS || p->fd < 0) {
                    p->synced = p->wb_end;
                    p->last_sync_ns = now;
                }
                if (p->fd >= 0)
                    p->fsize = p->off;
                p->werr = 0;
            } else {
                p->werr = -rc;
                p->retry_ns = now_ns() + RETRY_NS;
                if (p->stop) {
                    uv_async_send(&p->async);
                    break; /* shutting down: tried once more, give up */
                }
            }
            uv_async_send(&p->async);
            continue;
        }
        if (p->wb.len == 0 && p->q.len == 0 && p->sw) {
            do_switch(p);
            uv_async_send(&p->async);
            continue;
        }
        /* Under always, only after a change of policy (the batches are
         * synced as they are written). */
        if (unsynced && (p->stop || policy == AKV_FSYNC_ALWAYS ||
                         (policy == AKV_FSYNC_EVERYSEC && now >= p->last_sync_ns + NS_PER_SEC))) {
            uint64_t target = p->written;
            int rc;
            pthread_mutex_unlock(&p->mu);
            rc = p->fd < 0 ? 0 : akv_persist_sync_fd(p->fd);
            pthread_mutex_lock(&p->mu);
            p->last_sync_ns = now;
            if (rc == 0) {
                p->synced = target;
                /* No batch waits to be written again: the error was this
                 * sync's (EIO, ENOSPC, EDQUOT...), and it has passed. */
                if (p->wb.len == 0)
                    p->werr = 0;
            } else {
                p->werr = -rc;
                if (p->stop)
                    break;
            }
            uv_async_send(&p->async);
            continue;
        }
        if (p->stop && p->wb.len == 0 && p->q.len == 0 && !p->sw)
            break;
        {
            uint64_t deadline = UINT64_MAX;
            if ((p->wb.len > 0 || p->q.len > 0) && p->retry_ns > now)
                deadline = p->retry_ns;
            if (unsynced && policy == AKV_FSYNC_EVERYSEC && p->last_sync_ns + NS_PER_SEC < deadline)
                deadline = p->last_sync_ns + NS_PER_SEC;
            if (deadline == UINT64_MAX) {
                pthread_cond_wait(&p->cond, &p->mu);
            } else {
                /* The condition variable runs on CLOCK_MONOTONIC (see open). */
                struct timespec ts = {(time_t)(deadline / NS_PER_SEC),
                                      (long)(deadline % NS_PER_SEC)};
                pthread_cond_timedwait(&p->cond, &p->mu, &ts);
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Logging (loop thread).
 */

uint64_t akv_persist_appended(const struct akv_persist *p)
{
    return p ? p->appended : 0;
}

uint64_t akv_persist_durable(const struct akv_persist *p)
{
    /* Without a file nothing waits: a reply held for the file that
     * appendonly no has just closed goes out. */
    return p ? p->durable_seen : UINT64_MAX;
}

void akv_persist_set_fsync(struct akv_persist *p, enum akv_fsync f)
{
    if (!p || p->policy == f)
        return;
    if (!p->handles_ready) {
        p->policy = f;
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->policy = f;
    /* Going to always: what was only written waits for the sync that the
     * writer now starts; going from it: written is enough. */
    p->durable_seen = f == AKV_FSYNC_ALWAYS ? p->synced : p->written;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    if (p->notify)
        p->notify(p->notify_arg);
}

uint64_t akv_persist_handed(const struct akv_persist *p)
{
    return p ? p->handed : 0;
}

int akv_persist_write_error(const struct akv_persist *p)
{
    return p ? p->err_seen : 0;
}

void akv_persist_set_notify(struct akv_persist *p, void (*fn)(void *arg), void *arg)
{
    if (!p)
        return;
    p->notify = fn;
    p->notify_arg = arg;
}

/* Bytes of a MULTI record around inner_len bytes of records. */
static size_t multi_size(size_t inner_len)
{
    return AKV_AOF_REC_HEADER + 4 + inner_len;
}

int akv_persist_reserve(struct akv_persist *p, enum akv_aof_type type, size_t klen, size_t vlen)
{
    size_t n;

    if (!p)
        return 0;
    n = akv_aof_record_size(type, klen, vlen);
    if (p->in_multi) {
        /* The records go to batch, then all of them, wrapped, to pending
         * (and to rwbuf). */
        if (!akv_persist_multi_fits(p, n))
            return -E2BIG;
        if (akv_buf_reserve(&p->batch, n) < 0)
            return -ENOMEM;
        n = multi_size(p->batch.len + n);
    }
    if (akv_buf_reserve(&p->pending, n) < 0)
        return -ENOMEM;
    if (p->rw == RW_SCANNING && akv_buf_reserve(&p->rwbuf, n) < 0)
        return -ENOMEM;
    return 0;
}

static void logged_in_place(struct akv_persist *p, size_t n);

/* Appends n encoded bytes to pending (and rwbuf); room was reserved. */
static void log_bytes(struct akv_persist *p, const char *rec, size_t n)
{
    /* reserve() made room; if a caller forgot, fail loudly in testing and
     * try to grow in production rather than write past the buffer. */
    if (p->pending.cap - p->pending.len < n && akv_buf_reserve(&p->pending, n) < 0)
        abort();
    memcpy(p->pending.p + p->pending.len, rec, n);
    logged_in_place(p, n);
}

/* The last n bytes were encoded at the end of pending: counts them and
 * copies them for a rewrite in progress. */
static void logged_in_place(struct akv_persist *p, size_t n)
{
    const char *at = p->pending.p + p->pending.len;

    p->pending.len += n;
    p->appended += n;
    if (p->rw == RW_SCANNING) {
        if (p->rwbuf.cap - p->rwbuf.len < n && akv_buf_reserve(&p->rwbuf, n) < 0)
            abort();
        memcpy(p->rwbuf.p + p->rwbuf.len, at, n);
        p->rwbuf.len += n;
    }
}

/* Appends one record; room was reserved. */
static void log_record(struct akv_persist *p, const struct akv_aof_record *r)
{
    size_t n = akv_aof_rec_size(r);
    struct akv_buf *b = p->in_multi ? &p->batch : &p->pending;
    char *at;

    if (b->cap - b->len < n && akv_buf_reserve(b, n) < 0)
        abort();
    at = b->p + b->len;
    akv_aof_rec_encode(at, r);
    if (p->in_multi) {
        b->len += n;
        p->batch_count++;
        return;
    }
    logged_in_place(p, n);
}

int akv_persist_multi_fits(const struct akv_persist *p, size_t n)
{
    /* The payload: a u32 count, then the records. */
    size_t have = p && p->in_multi ? p->batch.len : 0;

    return !p || n <= AKV_AOF_PAYLOAD_MAX - 4 - have;
}

void akv_persist_multi_begin(struct akv_persist *p)
{
    if (!p)
        return;
    if (p->in_multi++ > 0)
        return; /* inside an outer batch (MSET inside EXEC): part of it */
    p->batch.len = 0;
    p->batch_count = 0;
}

void akv_persist_multi_end(struct akv_persist *p)
{
    struct akv_aof_record r = {.type = AKV_AOF_MULTI};
    size_t n;

    if (!p || p->in_multi == 0 || --p->in_multi > 0)
        return;
    if (p->batch_count == 1)
        log_bytes(p, p->batch.p, p->batch.len);
    if (p->batch_count > 1) {
        r.count = p->batch_count;
        r.inner = p->batch.p;
        r.inner_len = p->batch.len;
        n = akv_aof_rec_size(&r);
        if (p->pending.cap - p->pending.len < n && akv_buf_reserve(&p->pending, n) < 0)
            abort();
        akv_aof_rec_encode(p->pending.p + p->pending.len, &r);
        logged_in_place(p, n);
    }
    p->batch.len = 0;
    p->batch_count = 0;
    if (p->batch.cap > RW_BUF)
        akv_buf_fini(&p->batch);
    if (p->rw_after_batch) {
        p->rw_after_batch = 0;
        (void)akv_persist_rewrite_start(p); /* logs its own failure */
    }
}

void akv_persist_log_put(struct akv_persist *p, uint32_t db, const char *key, size_t klen,
                         const char *val, size_t vlen, uint64_t expire)
{
    akv_persist_log_put_ex(p, db, key, klen, val, vlen, expire, 0);
}

void akv_persist_log_put_ex(struct akv_persist *p, uint32_t db, const char *key, size_t klen,
                            const char *val, size_t vlen, uint64_t expire, int payload)
{
    struct akv_aof_record r = {.type = payload ? AKV_AOF_PAYLOAD : AKV_AOF_PUT,
                               .db = db,
                               .key = key,
                               .klen = klen,
                               .val = val,
                               .vlen = vlen,
                               .expire = expire};

    if (!p)
        return;
    akv_parked_del(&p->parked, db, key, klen);
    log_record(p, &r);
}

int akv_persist_log_del(struct akv_persist *p, uint32_t db, const char *key, size_t klen,
                        int existed)
{
    struct akv_aof_record r = {.type = AKV_AOF_DELETE, .db = db, .key = key, .klen = klen};

    if (!p)
        return 0;
    if (!akv_parked_del(&p->parked, db, key, klen) && !existed)
        return 0;
    log_record(p, &r);
    return 1;
}

void akv_persist_log_flushdb(struct akv_persist *p, uint32_t db)
{
    struct akv_aof_record r = {.type = AKV_AOF_FLUSHDB, .db = db};

    if (!p)
        return;
    akv_parked_clear_db(&p->parked, db);
    log_record(p, &r);
}

void akv_persist_log_flushall(struct akv_persist *p)
{
    struct akv_aof_record r = {.type = AKV_AOF_FLUSHALL};

    if (!p)
        return;
    akv_parked_clear(&p->parked);
    log_record(p, &r);
}

void akv_persist_log_swapdb(struct akv_persist *p, uint32_t a, uint32_t b)
{
    struct akv_aof_record r = {.type = AKV_AOF_SWAPDB, .db = a, .db2 = b};

    if (!p)
        return;
    akv_parked_swap_db(&p->parked, a, b);
    log_record(p, &r);
}

/* Gives pending to the writer. */
void akv_persist_handoff(struct akv_persist *p)
{
    struct akv_buf *dst;

    if (p->pending.len == 0 || !p->writer_live)
        return;
    pthread_mutex_lock(&p->mu);
    dst = p->sw ? &p->q_after : &p->q;
    if (dst->len == 0) {
        buf_swap(dst, &p->pending);
    } else if (akv_buf_append(dst, p->pending.p, p->pending.len) < 0) {
        pthread_mutex_unlock(&p->mu);
        return; /* out of memory: try again next turn */
    }
    if (p->sw)
        p->q_after_end = p->appended;
    else
        p->q_end = p->appended;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
    p->pending.len = 0;
    if (p->pending.cap > RW_BUF)
        akv_buf_fini(&p->pending);
    p->handed = p->appended;
}

static void on_prepare(uv_prepare_t *h)
{
    akv_persist_handoff(h->data);
}

/* Loop: the writer or the rewrite thread reported something. */
static void on_async(uv_async_t *h)
{
    struct akv_persist *p = h->data;
    int werr, rw_finished, rw_rc, sw_finished, sw_rc;
    uint64_t rw_size;
    size_t rw_count;

    pthread_mutex_lock(&p->mu);
    p->written_seen = p->written;
    p->durable_seen = p->policy == AKV_FSYNC_ALWAYS ? p->synced : p->written;
    p->size_seen = p->fsize;
    werr = p->werr;
    rw_finished = p->rw_finished;
    rw_rc = p->rw_rc;
    rw_size = p->rw_size;
    rw_count = p->rw_count;
    p->rw_finished = 0;
    sw_finished = p->sw_finished;
    sw_rc = p->sw_rc;
    p->sw_finished = 0;
    pthread_mutex_unlock(&p->mu);

    if (werr && !p->err_seen)
        akv_log(AKV_LOG_WARNING,
                "writing the AOF %s failed: %s; refusing writes (MISCONF) and retrying every "
                "second",
                p->path, strerror(werr));
    else if (!werr && p->err_seen)
        akv_log(AKV_LOG_NOTICE, "writing the AOF %s works again; accepting writes", p->path);
    p->err_seen = werr;
    if (rw_finished && p->rw == RW_SCANNING)
        akv_persist_rw_scanned(p, rw_rc, rw_size, rw_count);
    if (sw_finished && p->rw == RW_SWITCHING)
        akv_persist_rw_switched(p, sw_rc, p->size_seen);
    if (p->notify)
        p->notify(p->notify_arg);
    akv_persist_rw_maybe_auto(p);
}

/* ------------------------------------------------------------------------
 * Replay and life cycle.
 */

struct replay {
    struct akv_persist *p;
    uint64_t now_ms;     /* wall clock at start-up: entries due by then are dropped */
    size_t unembeddable; /* SET records that did not embed */
    size_t expired;      /* entries dropped because their time had come */
    char first_reason[256];
    char bad_db[128]; /* a record named a database out of range */
    /* The snapshot preamble: its entries are stored from their word ids
     * (snap_ids) when it was written for the vectors in use, else embedded
     * again from their text like records. */
    int snap_ids;
    size_t snap_loaded;  /* its entries stored */
    char bad_entry[256]; /* an entry the store refused (damage the checksums missed) */
};

static int replay_put(struct replay *rp, uint32_t db, const struct akv_aof_record *r)
{
    struct akv_persist *p = rp->p;
    struct akv_store *st = p->dbs[db];
    char err[256] = "";
    int rc;

    if (r->expire != 0 && r->expire <= rp->now_ms) {
        /* Already expired: the key is gone, whatever it held before. */
        rp->expired++;
        akv_parked_del(&p->parked, db, r->key, r->klen);
        rc = akv_store_del(st, r->key, r->klen);
        return rc < 0 ? rc : 0;
    }
    /* A payload's value is never embedded: only its key can park it. */
    rc = akv_store_put_ex(st, r->key, r->klen, r->val, r->vlen, r->expire,
                          r->type == AKV_AOF_PAYLOAD ? AKV_STORE_PAYLOAD : 0, err, sizeof(err));
    if (rc == 0) {
        akv_parked_del(&p->parked, db, r->key, r->klen);
        return 0;
    }
    if (rc != -ENOENT && rc != -EINVAL)
        return rc;
    rp->unembeddable++;
    if (!rp->first_reason[0])
        snprintf(rp->first_reason, sizeof(rp->first_reason), "%s", err[0] ? err : "does not embed");
    rc = akv_store_del(st, r->key, r->klen);
    if (rc < 0)
        return rc;
    return akv_parked_put(&p->parked, db, r->key, r->klen, r->val, r->vlen, r->expire,
                          r->type == AKV_AOF_PAYLOAD);
}

_Static_assert(AKV_AOF_SNAP_WORDS_MAX == AKV_PHRASE_WORDS_MAX,
               "the preamble's word limit is the store's");

/* SNAPBEGIN: whether the ids were written for the vectors in use. */
static void replay_snap_head(struct replay *rp, const struct akv_aof_record *r)
{
    struct akv_persist *p = rp->p;
    const struct akv_vocab *voc = akv_store_vocab(p->dbs[0]);
    struct akv_aof_snap_head h;
    uint64_t meta, data;

    akv_aof_snap_head_decode(r, &h);
    akv_vocab_checksums(voc, &meta, &data);
    rp->snap_ids = h.dim == akv_vocab_dim(voc) && h.words == akv_vocab_count(voc) &&
                   h.meta_sum == meta && h.data_sum == data;
    if (!rp->snap_ids)
        akv_log(AKV_LOG_WARNING,
                "AOF %s: the snapshot preamble at offset %zu was written for other vectors (%llu "
                "words of %u dimensions, checksums %016llx %016llx) than the current ones (%zu "
                "words of %u, %016llx %016llx): its word ids mean nothing here, so its entries "
                "are embedded again from their text, as records are (slower)",
                p->path, r->offset, (unsigned long long)h.words, (unsigned)h.dim,
                (unsigned long long)h.meta_sum, (unsigned long long)h.data_sum,
                akv_vocab_count(voc), (unsigned)akv_vocab_dim(voc), (unsigned long long)meta,
                (unsigned long long)data);
}

/* SNAPCHUNK: stores its entries (none of them can be in the store yet: the
 * preamble comes first). */
static int replay_snap_chunk(struct replay *rp, const struct akv_aof_record *r)
{
    struct akv_persist *p = rp->p;
    struct akv_store *st = p->dbs[r->db];
    uint32_t kids[AKV_AOF_SNAP_WORDS_MAX], vids[AKV_AOF_SNAP_WORDS_MAX];
    struct akv_aof_snap_entry e;
    size_t at = 0;
    int rc;

    while (akv_aof_snap_next(r, &at, &e, kids, vids)) {
        int payload = (e.flags & AKV_AOF_SNAP_PAYLOAD) != 0;
        char err[200] = "";

        if (e.expire != 0 && e.expire <= rp->now_ms) {
            rp->expired++;
            continue;
        }
        if (!rp->snap_ids) {
            struct akv_aof_record put = {.type = payload ? AKV_AOF_PAYLOAD : AKV_AOF_PUT,
                                         .db = r->db,
                                         .key = e.key,
                                         .klen = e.klen,
                                         .val = e.val,
                                         .vlen = e.vlen,
                                         .expire = e.expire};
            if ((rc = replay_put(rp, r->db, &put)) < 0)
                return rc;
            rp->snap_loaded++;
            continue;
        }
        rc = akv_store_put_words(st, e.key, e.klen, e.val, e.vlen, kids, e.nk, vids, e.nv, &e.knorm,
                                 e.expire, payload ? AKV_STORE_PAYLOAD : 0, err, sizeof(err));
        if (rc == -EINVAL) {
            snprintf(rp->bad_entry, sizeof(rp->bad_entry), "an entry of the snapshot preamble: %s",
                     err);
            return -EBADMSG;
        }
        if (rc < 0)
            return rc;
        rp->snap_loaded++;
    }
    return 0;
}

static int replay_record(void *arg, const struct akv_aof_record *r)
{
    struct replay *rp = arg;
    struct akv_persist *p = rp->p;
    uint32_t db = r->type == AKV_AOF_SET || r->type == AKV_AOF_DEL ? 0 : r->db;
    int rc;

    if (r->type == AKV_AOF_SNAPBEGIN || r->type == AKV_AOF_SNAPEND)
        db = 0; /* no database */
    if (db >= p->ndbs || (r->type == AKV_AOF_SWAPDB && r->db2 >= p->ndbs)) {
        snprintf(rp->bad_db, sizeof(rp->bad_db),
                 "a %s record for database %u, but 'databases' is %u", akv_aof_type_name(r->type),
                 (unsigned)(db >= p->ndbs ? db : r->db2), (unsigned)p->ndbs);
        return -ERANGE;
    }
    switch (r->type) {
    case AKV_AOF_SET:
    case AKV_AOF_PUT:
    case AKV_AOF_PAYLOAD:
        return replay_put(rp, db, r);
    case AKV_AOF_DEL:
    case AKV_AOF_DELETE:
        akv_parked_del(&p->parked, db, r->key, r->klen);
        rc = akv_store_del(p->dbs[db], r->key, r->klen);
        return rc < 0 ? rc : 0;
    case AKV_AOF_FLUSHDB:
        akv_parked_clear_db(&p->parked, db);
        akv_store_flush(p->dbs[db]);
        return 0;
    case AKV_AOF_FLUSHALL:
        akv_parked_clear(&p->parked);
        for (uint32_t i = 0; i < p->ndbs; i++)
            akv_store_flush(p->dbs[i]);
        return 0;
    case AKV_AOF_SWAPDB: {
        struct akv_store *t = p->dbs[r->db];
        p->dbs[r->db] = p->dbs[r->db2];
        p->dbs[r->db2] = t;
        akv_parked_swap_db(&p->parked, r->db, r->db2);
        return 0;
    }
    case AKV_AOF_MULTI:
        break; /* the parser hands over the records inside */
    case AKV_AOF_SNAPBEGIN:
        replay_snap_head(rp, r);
        return 0;
    case AKV_AOF_SNAPCHUNK:
        return replay_snap_chunk(rp, r);
    case AKV_AOF_SNAPEND:
        return 0;
    }
    return 0;
}

/* Adds a key to the list of report_parked (arg), up to REPORT_KEYS. */
struct parked_keys {
    char text[REPORT_KEYS * (AKV_QUOTE_BUF + 4)];
    size_t len, shown;
};

static int parked_key(void *arg, const struct akv_parked_ent *e)
{
    struct parked_keys *k = arg;
    char q[AKV_QUOTE_BUF];
    int n;

    if (k->shown == REPORT_KEYS)
        return 1;
    n = snprintf(k->text + k->len, sizeof(k->text) - k->len, "%s'%s'", k->shown ? ", " : "",
                 akv_quote(q, e->text, e->klen));
    if (n < 0 || (size_t)n >= sizeof(k->text) - k->len)
        return 1;
    k->len += (size_t)n;
    k->shown++;
    return 0;
}

/* Logs the text-only entries: how many, and the first few keys. */
static void report_parked(struct akv_persist *p, const struct replay *rp)
{
    struct parked_keys k = {.len = 0};

    if (p->parked.n == 0)
        return;
    akv_parked_each(&p->parked, parked_key, &k);
    akv_log(AKV_LOG_WARNING,
            "AOF %s: %zu entries do not embed with the current vectors (%s); they are kept in "
            "the AOF but not served; first keys: %s%s",
            p->path, p->parked.n, rp->first_reason, k.text, p->parked.n > k.shown ? ", ..." : "");
}

/* A replay in progress (p->load, from akv_persist_begin until the last
 * step): the file mapped, the parser's place in it, and the figures. */
struct akv_persist_load {
    struct replay rp;
    struct akv_aof_parser ps;
    void *map;
    size_t size;
    uint64_t t0;       /* monotonic ns at the start */
    time_t start_time; /* wall clock at the start, for INFO */
};

static void load_free(struct akv_persist *p)
{
    struct akv_persist_load *ld = p->load;

    if (!ld)
        return;
    if (ld->map)
        munmap(ld->map, ld->size);
    free(ld);
    p->load = NULL;
}

/* Starts the replay of the file open at p->fd: maps it and checks its
 * header (the records come in akv_persist_load's steps). */
static int load_begin(struct akv_persist *p, char *err, size_t errlen)
{
    struct akv_persist_load *ld = calloc(1, sizeof(*ld));
    struct timespec ts;
    struct stat st;
    int rc;

    if (!ld) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->load = ld;
    ld->rp.p = p;
    ld->t0 = now_ns();
    ld->start_time = time(NULL);
    if (fstat(p->fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", p->path, strerror(-rc));
        return rc;
    }
    ld->size = (size_t)st.st_size;
    clock_gettime(CLOCK_REALTIME, &ts);
    ld->rp.now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if (ld->size > 0) {
        ld->map = mmap(NULL, ld->size, PROT_READ, MAP_PRIVATE, p->fd, 0);
        if (ld->map == MAP_FAILED) {
            ld->map = NULL;
            rc = -errno;
            snprintf(err, errlen, "%s: cannot map: %s", p->path, strerror(-rc));
            return rc;
        }
        /* Read front to back, once. */
        (void)madvise(ld->map, ld->size, MADV_SEQUENTIAL);
    }
    akv_aof_parser_init(&ld->ps, ld->map, ld->size);
    p->loading = 1;
    return 0;
}

/* The parse is over: judges it (damage fails; a torn tail is cut off),
 * reports it, and releases the mapping. *size becomes the file's size. */
static int load_verdict(struct akv_persist *p, uint64_t *size, char *err, size_t errlen)
{
    struct akv_persist_load *ld = p->load;
    const struct akv_aof_result *res = &ld->ps.res;
    struct replay *rp = &ld->rp;
    size_t entries = 0;
    char snap[96] = "";

    *size = ld->size;
    if (res->status == AKV_AOF_CORRUPT && res->snap == 1) {
        snprintf(err, errlen,
                 "%s: the snapshot preamble is damaged at offset %zu (%s); %llu entries in %llu "
                 "chunks before it are good. 'attnkv-check-aof %s' says what each repair "
                 "would lose; 'attnkv-check-aof --salvage' keeps every good chunk (as records) "
                 "and the records after the preamble",
                 p->path, res->bad_offset, res->reason, (unsigned long long)res->snap_entries,
                 (unsigned long long)res->snap_chunks, p->path);
        return -EBADMSG;
    }
    if (res->status == AKV_AOF_CORRUPT) {
        snprintf(err, errlen,
                 "%s: damaged record at offset %zu (%s); %zu good records before it. "
                 "'attnkv-check-aof --fix %s' cuts the file there, losing the %llu bytes "
                 "from that offset on; 'attnkv-check-aof --salvage' keeps the good records "
                 "after the damage; without an option the tool only reports",
                 p->path, res->bad_offset, res->reason, res->records, p->path,
                 (unsigned long long)(*size - res->bad_offset));
        return -EBADMSG;
    }
    if (res->status == AKV_AOF_TORN) {
        akv_log(AKV_LOG_WARNING,
                "AOF %s: the last record, at offset %zu, is incomplete (%s; %llu bytes), as a "
                "crash in the middle of a write leaves it: cutting it off",
                p->path, res->bad_offset, res->reason,
                (unsigned long long)(*size - res->bad_offset));
        if (ftruncate(p->fd, (off_t)res->good_end) < 0 || akv_persist_sync_fd(p->fd) < 0) {
            int rc = -errno;
            snprintf(err, errlen, "%s: cannot cut off the torn record: %s", p->path, strerror(-rc));
            return rc;
        }
        *size = res->good_end;
    }
    p->replayed = res->records;
    for (uint32_t i = 0; i < p->ndbs; i++)
        entries += akv_store_count(p->dbs[i]);
    if (res->snap)
        snprintf(snap, sizeof(snap), "; %zu entries from a snapshot preamble%s", rp->snap_loaded,
                 rp->snap_ids ? "" : ", embedded again");
    if (ld->size > 0)
        akv_log(AKV_LOG_NOTICE,
                "AOF %s: replayed %zu records (%zu SET, %zu DEL, %zu FLUSH, %zu MULTI) in %.1f "
                "ms: %zu entries, %zu dropped as expired%s",
                p->path, res->records,
                res->counts[AKV_AOF_SET] + res->counts[AKV_AOF_PUT] + res->counts[AKV_AOF_PAYLOAD],
                res->counts[AKV_AOF_DEL] + res->counts[AKV_AOF_DELETE],
                res->counts[AKV_AOF_FLUSHALL] + res->counts[AKV_AOF_FLUSHDB],
                res->counts[AKV_AOF_MULTI], (double)(now_ns() - ld->t0) / 1e6, entries, rp->expired,
                snap);
    report_parked(p, rp);
    return 0;
}

/* Writes the header of a new (or emptied) file and makes its name durable. */
static int write_new_header(struct akv_persist *p, char *err, size_t errlen)
{
    char hdr[AKV_AOF_FILE_HEADER];
    int rc = 0;

    akv_aof_file_header(hdr);
    if (ftruncate(p->fd, 0) < 0 || (rc = akv_persist_pwrite_all(p->fd, 0, hdr, sizeof(hdr))) < 0 ||
        (rc = akv_persist_sync_fd(p->fd)) < 0 || (rc = sync_dir_of(p->path)) < 0) {
        rc = rc < 0 ? rc : -errno;
        snprintf(err, errlen, "cannot write the AOF %s: %s", p->path, strerror(-rc));
        return rc;
    }
    akv_log(AKV_LOG_NOTICE, "AOF %s created", p->path);
    return 0;
}

/* Creates the loop handles and starts the writer thread: logging works
 * from here on. */
static int start_writer(struct akv_persist *p, char *err, size_t errlen)
{
    pthread_condattr_t ca;
    int rc;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = -pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc < 0)
        goto fail;
    rc = -pthread_mutex_init(&p->mu, NULL);
    if (rc < 0) {
        pthread_cond_destroy(&p->cond);
        goto fail;
    }
    if ((rc = uv_prepare_init(p->loop, &p->prepare)) < 0 ||
        (rc = uv_async_init(p->loop, &p->async, on_async)) < 0) {
        /* A prepare handle that was initialised must be closed by the loop;
         * this cannot be undone here, so stop the daemon. */
        fprintf(stderr, "attnkvd: cannot create loop handles: %s\n", uv_strerror(rc));
        abort();
    }
    p->handles_ready = 1;
    p->prepare.data = p;
    p->async.data = p;
    uv_prepare_start(&p->prepare, on_prepare);
    uv_unref((uv_handle_t *)&p->prepare);
    uv_unref((uv_handle_t *)&p->async);
    p->last_sync_ns = now_ns();
    rc = -pthread_create(&p->writer, NULL, writer_main, p);
    if (rc < 0) {
        snprintf(err, errlen, "cannot start the AOF writer thread: %s", strerror(-rc));
        return rc;
    }
    p->writer_live = 1;
    return 0;
fail:
    snprintf(err, errlen, "%s", strerror(-rc));
    return rc;
}

/* The last step of the replay: the verdict, a header for a new file, the
 * writer. */
static int load_finish(struct akv_persist *p, char *err, size_t errlen)
{
    uint64_t size = 0;
    int rc = load_verdict(p, &size, err, errlen);

    load_free(p);
    p->loading = 0;
    if (rc < 0)
        return rc;
    if (size < AKV_AOF_FILE_HEADER) {
        rc = write_new_header(p, err, errlen);
        if (rc < 0)
            return rc;
        size = AKV_AOF_FILE_HEADER;
    }
    p->off = p->fsize = p->size_seen = p->base_size = size;
    return start_writer(p, err, errlen);
}

/* Records (or pieces of a MULTI record's check, AKV_AOF_CHECK_PIECE bytes,
 * some 50 us each) between two looks at the clock in a timed step: a
 * record costs a microsecond or two, one with thousands of words a few
 * hundred. */
#define LOAD_CHUNK 16

int akv_persist_load(struct akv_persist *p, uint64_t budget_us, char *err, size_t errlen)
{
    struct akv_persist_load *ld;
    uint64_t t0 = now_ns();
    int rc;

    if (!p || !p->load)
        return 0;
    ld = p->load;
    while (!ld->ps.done) {
        /* A preamble's chunk (up to AKV_AOF_SNAP_CHUNK_ENTRIES entries,
         * each a few hundred ns to store) is a step of its own. */
        int in_snap = ld->ps.res.snap == 1 || ld->ps.off == AKV_AOF_FILE_HEADER;
        rc = akv_aof_parse_step(&ld->ps, in_snap ? 1 : LOAD_CHUNK, replay_record, &ld->rp);
        if (rc == -ERANGE && ld->rp.bad_db[0]) {
            snprintf(err, errlen, "%s: at offset %zu, %s; raise 'databases' to load this file",
                     p->path, ld->ps.res.good_end, ld->rp.bad_db);
            rc = -EBADMSG;
        } else if (rc == -EBADMSG && ld->rp.bad_entry[0]) {
            snprintf(err, errlen, "%s: at offset %zu, %s", p->path, ld->ps.res.good_end,
                     ld->rp.bad_entry);
        } else if (rc < 0) {
            snprintf(err, errlen, "%s: replay stopped at offset %zu: %s", p->path,
                     ld->ps.res.good_end, strerror(-rc));
        }
        if (rc < 0) {
            load_free(p);
            p->loading = 0;
            p->load_failed = 1;
            return rc;
        }
        if (!ld->ps.done && now_ns() - t0 >= budget_us * 1000)
            return 1;
    }
    rc = load_finish(p, err, errlen);
    if (rc < 0)
        p->load_failed = 1;
    return rc;
}

int akv_persist_loading(const struct akv_persist *p)
{
    return p && p->loading;
}

int akv_persist_begin(struct akv_persist **out, uv_loop_t *loop, struct akv_store **dbs,
                      uint32_t ndbs, const struct akv_persist_opts *opts, char *err, size_t errlen)
{
    struct akv_persist *p;
    const char *delay;
    char *dir;
    int rc;

    *out = NULL;
    if (strchr(opts->filename, '/')) {
        snprintf(err, errlen, "appendfilename '%s' must be a plain file name (no '/')",
                 opts->filename);
        return -EINVAL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->loop = loop;
    p->dbs = dbs;
    p->ndbs = ndbs;
    p->rw_percentage = opts->rewrite_percentage;
    p->rw_min_size = opts->rewrite_min_size;
    p->use_preamble = opts->preamble;
    p->policy = opts->fsync;
    p->fd = -1;
    p->rw_fd = -1;
    p->last_rewrite_ok = 1;
    akv_buf_init(&p->pending);
    akv_buf_init(&p->batch);
    akv_buf_init(&p->q);
    akv_buf_init(&p->q_after);
    akv_buf_init(&p->wb);
    akv_buf_init(&p->rwbuf);
    akv_buf_init(&p->rwhead);
    atomic_init(&p->rw_cancel, 0);
    delay = getenv("AKV_TEST_REWRITE_DELAY_US");
    if (delay)
        p->rw_delay_us = atoi(delay);
    /* Absolute, so that every message names the file unambiguously. */
    dir = realpath(opts->dir, NULL);
    if (!dir) {
        rc = -errno;
        snprintf(err, errlen, "dir %s: %s", opts->dir, strerror(-rc));
        goto fail;
    }
    if (asprintf(&p->path, "%s/%s", strcmp(dir, "/") ? dir : "", opts->filename) < 0 ||
        asprintf(&p->tmppath, "%s/temp-rewrite-%s", strcmp(dir, "/") ? dir : "", opts->filename) <
            0) {
        free(dir);
        p->path = p->tmppath = NULL;
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    free(dir);
    if (opts->create) {
        /* A file is made by a rewrite of the stores; until it is renamed
         * over the name, an old file of that name stays as it was. */
        int fd = open(p->tmppath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot create %s: %s", p->tmppath, strerror(-rc));
            goto fail;
        }
        close(fd);
        unlink(p->tmppath);
        p->no_file = 1;
        rc = start_writer(p, err, errlen);
        if (rc == 0 && (rc = akv_persist_rewrite_start(p)) < 0)
            snprintf(err, errlen, "cannot start the rewrite that creates %s: %s", p->path,
                     strerror(-rc));
        if (rc < 0)
            goto fail;
        *out = p;
        return 0;
    }
    if (unlink(p->tmppath) == 0)
        akv_log(AKV_LOG_NOTICE, "removed %s, left by a rewrite that did not finish", p->tmppath);

    p->fd = open(p->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (p->fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open the AOF %s: %s", p->path, strerror(-rc));
        goto fail;
    }
    rc = load_begin(p, err, errlen);
    if (rc < 0)
        goto fail;
    *out = p;
    return 0;

fail:
    /* With handles (opts->create), freed once the loop has closed them. */
    akv_persist_release(p);
    return rc;
}

int akv_persist_open(struct akv_persist **out, uv_loop_t *loop, struct akv_store **dbs,
                     uint32_t ndbs, const struct akv_persist_opts *opts, char *err, size_t errlen)
{
    struct akv_persist *p;
    int rc = akv_persist_begin(&p, loop, dbs, ndbs, opts, err, errlen);

    *out = NULL;
    if (rc < 0)
        return rc;
    rc = akv_persist_load(p, UINT64_MAX / 1000, err, errlen);
    if (rc < 0) {
        if (p->handles_ready) {
            akv_persist_close(p);
            uv_run(loop, UV_RUN_NOWAIT);
        }
        akv_persist_destroy(p);
        for (uint32_t i = 0; i < ndbs; i++)
            akv_store_flush(dbs[i]);
        return rc;
    }
    *out = p;
    return 0;
}

/* Frees p once both handles are closed, after akv_persist_release. */
static void on_handle_closed(uv_handle_t *h)
{
    struct akv_persist *p = h->data;

    if (++p->handles_closed == 2 && p->release)
        akv_persist_destroy(p);
}

void akv_persist_close(struct akv_persist *p)
{
    size_t lost;

    if (!p || p->closed)
        return;
    p->closed = 1;
    if (p->rw == RW_SCANNING) {
        atomic_store(&p->rw_cancel, 1);
        akv_persist_rw_abandon(p);
        akv_log(AKV_LOG_NOTICE, "AOF rewrite abandoned: the file is being closed");
    }
    akv_persist_handoff(p);
    if (p->writer_live) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        p->retry_ns = 0;
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->writer, NULL);
        p->writer_live = 0;
    }
    lost = p->wb.len + p->q.len + p->q_after.len + p->pending.len;
    if (lost > 0)
        akv_log(AKV_LOG_WARNING,
                "AOF %s: %zu bytes of unacknowledged writes could not be written (%s)", p->path,
                lost, strerror(p->werr ? p->werr : EIO));
    if (p->sw) {
        close(p->sw->fd);
        unlink(p->tmppath);
        akv_buf_fini(&p->sw->tail);
        free(p->sw);
        p->sw = NULL;
    }
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    load_free(p);
    if (p->handles_ready) {
        uv_close((uv_handle_t *)&p->prepare, on_handle_closed);
        uv_close((uv_handle_t *)&p->async, on_handle_closed);
    }
}

void akv_persist_release(struct akv_persist *p)
{
    if (!p)
        return;
    p->release = 1;
    akv_persist_close(p);
    if (!p->handles_ready)
        akv_persist_destroy(p);
}

void akv_persist_destroy(struct akv_persist *p)
{
    if (!p)
        return;
    if (p->fd >= 0 && !p->closed)
        close(p->fd);
    if (p->handles_ready) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cond);
    }
    load_free(p);
    akv_parked_fini(&p->parked);
    akv_buf_fini(&p->pending);
    akv_buf_fini(&p->batch);
    akv_buf_fini(&p->q);
    akv_buf_fini(&p->q_after);
    akv_buf_fini(&p->wb);
    akv_buf_fini(&p->rwbuf);
    akv_buf_fini(&p->rwhead);
    free(p->path);
    free(p->tmppath);
    free(p);
}

void akv_persist_info(const struct akv_persist *p, struct akv_persist_info *info)
{
    memset(info, 0, sizeof(*info));
    if (!p) {
        info->last_rewrite_ok = 1;
        return;
    }
    info->enabled = 1;
    info->rewrite_in_progress = p->rw != RW_IDLE;
    info->last_rewrite_ok = p->last_rewrite_ok;
    info->write_error = p->err_seen;
    info->rewrites = p->rewrites;
    info->last_rewrite_ms = p->last_rewrite_ms;
    info->current_size = p->size_seen;
    info->base_size = p->base_size;
    info->pending_bytes = p->appended - p->written_seen;
    info->fsync = p->policy;
    info->unembeddable = p->parked.n;
    info->replayed = p->replayed;
    info->no_file = p->no_file;
    if (p->load) {
        const struct akv_persist_load *ld = p->load;
        info->loading = 1;
        info->loading_start_time = (int64_t)ld->start_time;
        info->loading_total_bytes = ld->size;
        info->loading_loaded_bytes = ld->ps.done ? ld->size : ld->ps.off;
        info->loading_records = ld->ps.res.records;
        info->loading_elapsed_us = (now_ns() - ld->t0) / 1000;
    }
}
