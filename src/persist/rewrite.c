/*
 * rewrite.c - the background rewrite of the append-only file, without fork
 * (the steps are described at the top of persist.c): the rewrite thread
 * writes every row of a store snapshot to a temporary file, either as a
 * snapshot preamble (aof-use-rdb-preamble yes: SNAPBEGIN, SNAPCHUNK records
 * holding the entries with their word ids, SNAPEND; see aof.h) followed by
 * the text-only entries as PUT records, or as the text-only entries and a
 * PUT for every row; the writer thread then appends what was logged
 * meanwhile and renames it over the AOF.
 *
 * Threading: rw_main on the rewrite thread reads only the snapshot and
 * rwhead; everything else on the loop thread.
 */
#include "persist/persist-impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

struct rw_out {
    struct akv_persist *p;
    uint32_t db; /* the database being written */
    int fd;
    uint64_t off;
    char *buf;
    size_t len;
    size_t entries;
    int rc;
    /* The preamble: a SNAPCHUNK open at buf + chunk_at (chunk_n entries so
     * far, their bytes after AKV_AOF_SNAP_CHUNK_START), and the totals. */
    int in_chunk;
    size_t chunk_at;
    uint32_t chunk_n;
    uint64_t snap_entries, snap_chunks;
};

static int rw_flush(struct rw_out *o)
{
    int rc = akv_persist_pwrite_all(o->fd, o->off, o->buf, o->len);

    if (rc < 0)
        return rc;
    o->off += o->len;
    o->len = 0;
    return 0;
}

static int rw_put(struct rw_out *o, const char *p, size_t n)
{
    if (n == 0)
        return 0; /* p may be NULL (an empty buffer) */
    if (o->len + n > RW_BUF) {
        int rc = rw_flush(o);
        if (rc < 0)
            return rc;
        if (n > RW_BUF) {
            rc = akv_persist_pwrite_all(o->fd, o->off, p, n);
            if (rc == 0)
                o->off += n;
            return rc;
        }
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

/* Rewrite thread: one store block. */
static int rw_block(void *arg, const struct akv_store_block *b)
{
    struct rw_out *o = arg;
    struct akv_persist *p = o->p;

    for (size_t i = 0; i < b->n; i++) {
        struct akv_aof_record rec;
        size_t sz;
        int rc;

        if (!b->visible[i])
            continue;
        if (atomic_load(&p->rw_cancel))
            return -ECANCELED;
        akv_persist_row_record(p->rw_dbs[o->db], &p->snaps[o->db], b, i, o->db, &rec);
        sz = akv_aof_rec_size(&rec);
        if (sz <= RW_BUF) {
            if (o->len + sz > RW_BUF && (rc = rw_flush(o)) < 0)
                return rc;
            akv_aof_rec_encode(o->buf + o->len, &rec);
            o->len += sz;
        } else {
            char *big = malloc(sz);
            if (!big)
                return -ENOMEM;
            akv_aof_rec_encode(big, &rec);
            rc = rw_put(o, big, sz);
            free(big);
            if (rc < 0)
                return rc;
        }
        o->entries++;
        if (p->rw_delay_us > 0)
            usleep((useconds_t)p->rw_delay_us);
    }
    return 0;
}

/* Rewrite thread: closes the open SNAPCHUNK, if any. */
static void chunk_seal(struct rw_out *o)
{
    size_t elen;

    if (!o->in_chunk)
        return;
    elen = o->len - o->chunk_at - AKV_AOF_SNAP_CHUNK_START;
    akv_aof_snap_chunk_seal(o->buf + o->chunk_at, o->db, o->chunk_n, elen);
    o->snap_entries += o->chunk_n;
    o->snap_chunks++;
    o->in_chunk = 0;
}

/* Rewrite thread: one entry into the preamble's chunks. */
static int snap_add(struct rw_out *o, const struct akv_aof_snap_entry *e)
{
    size_t esz = akv_aof_snap_entry_size(e);
    int rc;

    if (o->in_chunk &&
        (o->chunk_n == AKV_AOF_SNAP_CHUNK_ENTRIES ||
         o->len - o->chunk_at - AKV_AOF_SNAP_CHUNK_START + esz > AKV_AOF_SNAP_CHUNK_BYTES))
        chunk_seal(o);
    if (!o->in_chunk) {
        size_t room = AKV_AOF_SNAP_CHUNK_START +
                      (esz > AKV_AOF_SNAP_CHUNK_BYTES ? esz : AKV_AOF_SNAP_CHUNK_BYTES);
        if (o->len + room > RW_BUF && (rc = rw_flush(o)) < 0)
            return rc;
        if (AKV_AOF_SNAP_CHUNK_START + esz > RW_BUF) {
            /* An entry larger than the buffer: a chunk of its own. */
            size_t n = AKV_AOF_SNAP_CHUNK_START + esz;
            char *big = malloc(n);
            if (!big)
                return -ENOMEM;
            akv_aof_snap_entry_encode(big + AKV_AOF_SNAP_CHUNK_START, e);
            akv_aof_snap_chunk_seal(big, o->db, 1, esz);
            rc = rw_put(o, big, n);
            free(big);
            o->snap_entries++;
            o->snap_chunks++;
            return rc;
        }
        o->in_chunk = 1;
        o->chunk_at = o->len;
        o->chunk_n = 0;
        o->len += AKV_AOF_SNAP_CHUNK_START;
    }
    akv_aof_snap_entry_encode(o->buf + o->len, e);
    o->len += esz;
    o->chunk_n++;
    return 0;
}

/* Rewrite thread: one store block into the preamble. */
static int snap_block(void *arg, const struct akv_store_block *b)
{
    struct rw_out *o = arg;
    struct akv_persist *p = o->p;
    struct akv_store *st = p->rw_dbs[o->db];
    const struct akv_store_snap *snap = &p->snaps[o->db];

    for (size_t i = 0; i < b->n; i++) {
        struct akv_aof_snap_entry e;
        size_t slot = b->first_slot + i, nk, nv;
        int rc;

        if (!b->visible[i])
            continue;
        if (atomic_load(&p->rw_cancel))
            return -ECANCELED;
        akv_store_entry_text(st, snap, slot, &e.key, &e.klen, &e.val, &e.vlen);
        e.kids = akv_store_entry_words(st, snap, slot, AKV_STORE_KEY, &nk);
        e.vids = akv_store_entry_words(st, snap, slot, AKV_STORE_VALUE, &nv);
        e.nk = (uint32_t)nk;
        e.nv = (uint32_t)nv;
        e.flags = nv == 0 ? AKV_AOF_SNAP_PAYLOAD : 0;
        e.expire = akv_store_entry_expire(st, snap, slot);
        e.knorm = b->knorms[i];
        if ((rc = snap_add(o, &e)) < 0)
            return rc;
        o->entries++;
        if (p->rw_delay_us > 0)
            usleep((useconds_t)p->rw_delay_us);
    }
    return 0;
}

/* Rewrite thread: the preamble, every database's entries. */
static int write_preamble(struct rw_out *o)
{
    struct akv_persist *p = o->p;
    const struct akv_vocab *voc = akv_store_vocab(p->rw_dbs[0]);
    struct akv_aof_snap_head h = {
        .format = AKV_AOF_SNAP_FORMAT,
        .dim = akv_vocab_dim(voc),
        .words = akv_vocab_count(voc),
        .databases = p->ndbs,
    };
    char rec[AKV_AOF_REC_HEADER + AKV_AOF_SNAP_HEAD];
    struct timespec ts;
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    h.time_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    akv_vocab_checksums(voc, &h.meta_sum, &h.data_sum);
    rc = rw_put(o, rec, akv_aof_snap_head_encode(rec, &h));
    for (o->db = 0; rc == 0 && o->db < p->ndbs; o->db++) {
        rc = akv_store_scan(p->rw_dbs[o->db], &p->snaps[o->db], snap_block, o);
        chunk_seal(o);
    }
    if (rc == 0)
        rc = rw_put(o, rec, akv_aof_snap_end_encode(rec, o->snap_entries, o->snap_chunks));
    return rc;
}

static void *rw_main(void *arg)
{
    struct akv_persist *p = arg;
    struct rw_out o = {.p = p, .fd = p->rw_fd};
    char hdr[AKV_AOF_FILE_HEADER];
    int rc;

    o.buf = malloc(RW_BUF);
    if (!o.buf) {
        rc = -ENOMEM;
        goto out;
    }
    akv_aof_file_header(hdr);
    rc = rw_put(&o, hdr, sizeof(hdr));
    if (rc == 0 && p->rw_preamble)
        rc = write_preamble(&o);
    if (rc == 0)
        rc = rw_put(&o, p->rwhead.p, p->rwhead.len);
    for (o.db = 0; rc == 0 && !p->rw_preamble && o.db < p->ndbs; o.db++)
        rc = akv_store_scan(p->rw_dbs[o.db], &p->snaps[o.db], rw_block, &o);
    if (rc == 0)
        rc = rw_flush(&o);
    if (rc == 0)
        rc = akv_persist_sync_fd(o.fd);
out:
    free(o.buf);
    pthread_mutex_lock(&p->mu);
    p->rw_finished = 1;
    p->rw_rc = rc;
    p->rw_size = o.off;
    p->rw_count = o.entries;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->async);
    return NULL;
}

/* Loop: undoes step 1 (also after the thread failed or was cancelled). */
/* Releases the rewrite's snapshots and frees their arrays. */
static void release_snaps(struct akv_persist *p)
{
    if (p->has_snap) {
        for (uint32_t i = 0; i < p->ndbs; i++)
            akv_store_snap_release(p->rw_dbs[i], &p->snaps[i]);
        p->has_snap = 0;
    }
    free(p->rw_dbs);
    free(p->snaps);
    p->rw_dbs = NULL;
    p->snaps = NULL;
}

void akv_persist_rw_abandon(struct akv_persist *p)
{
    if (p->rw_thread_live) {
        pthread_join(p->rw_thread, NULL);
        p->rw_thread_live = 0;
    }
    release_snaps(p);
    if (p->rw_fd >= 0) {
        close(p->rw_fd);
        p->rw_fd = -1;
        unlink(p->tmppath);
    }
    akv_buf_fini(&p->rwbuf);
    akv_buf_fini(&p->rwhead);
    p->rw = RW_IDLE;
}

void akv_persist_rw_failed(struct akv_persist *p, int rc)
{
    akv_log(AKV_LOG_WARNING, "AOF rewrite of %s failed: %s; the file is unchanged", p->path,
            strerror(-rc));
    p->last_rewrite_ok = 0;
    p->next_auto_ns = now_ns() + AUTO_BACKOFF_NS;
}

/* Appends a SET of a text-only entry to the buffer arg. */
static int encode_parked(void *arg, const struct akv_parked_ent *e)
{
    struct akv_buf *b = arg;
    struct akv_aof_record r = {.type = e->payload ? AKV_AOF_PAYLOAD : AKV_AOF_PUT,
                               .db = e->db,
                               .key = e->text,
                               .klen = e->klen,
                               .val = e->text + e->klen,
                               .vlen = e->vlen,
                               .expire = e->expire};
    size_t n = akv_aof_rec_size(&r);

    if (akv_buf_reserve(b, n) < 0)
        return -ENOMEM;
    akv_aof_rec_encode(b->p + b->len, &r);
    b->len += n;
    return 0;
}

int akv_persist_rewrite_start(struct akv_persist *p)
{
    size_t entries = 0;
    int rc;

    if (!p)
        return -ENOTSUP;
    if (p->rw != RW_IDLE)
        return -EBUSY;
    if (p->closed)
        return -ESHUTDOWN;
    if (p->loading || p->load_failed)
        return -EAGAIN; /* the stores are not whole */
    if (p->in_multi) {
        /* The snapshot must see all of the batch or none of it: the batch
         * is logged whole at its end, into rwbuf as well. */
        p->rw_after_batch = 1;
        return -EINPROGRESS;
    }
    p->rw_fd = open(p->tmppath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (p->rw_fd < 0) {
        rc = -errno;
        akv_persist_rw_failed(p, rc);
        return rc;
    }
    akv_buf_init(&p->rwbuf);
    akv_buf_init(&p->rwhead);
    if (akv_parked_each(&p->parked, encode_parked, &p->rwhead) < 0) {
        akv_persist_rw_abandon(p);
        akv_persist_rw_failed(p, -ENOMEM);
        return -ENOMEM;
    }
    p->rw_dbs = malloc(p->ndbs * sizeof(*p->rw_dbs));
    p->snaps = malloc(p->ndbs * sizeof(*p->snaps));
    if (!p->rw_dbs || !p->snaps) {
        akv_persist_rw_abandon(p);
        akv_persist_rw_failed(p, -ENOMEM);
        return -ENOMEM;
    }
    /* The databases as they are now: a SWAPDB while the rewrite runs is
     * logged, and replayed after these entries. */
    for (uint32_t i = 0; i < p->ndbs; i++) {
        p->rw_dbs[i] = p->dbs[i];
        akv_store_snap_take(p->rw_dbs[i], &p->snaps[i]);
        entries += akv_store_count(p->rw_dbs[i]);
    }
    p->has_snap = 1;
    p->rw_preamble = p->use_preamble && *p->use_preamble;
    p->rw = RW_SCANNING;
    p->rw_t0 = now_ns();
    atomic_store(&p->rw_cancel, 0);
    pthread_mutex_lock(&p->mu);
    p->rw_finished = 0;
    p->sw_finished = 0;
    pthread_mutex_unlock(&p->mu);
    rc = pthread_create(&p->rw_thread, NULL, rw_main, p);
    if (rc != 0) {
        akv_persist_rw_abandon(p);
        akv_persist_rw_failed(p, -rc);
        return -rc;
    }
    p->rw_thread_live = 1;
    akv_log(AKV_LOG_NOTICE, "AOF rewrite started: %zu entries, %zu text-only%s", entries,
            p->parked.n, p->rw_preamble ? "; with a snapshot preamble" : "");
    return 0;
}

/* Loop: step 3, once the rewrite thread has reported. */
void akv_persist_rw_scanned(struct akv_persist *p, int rc, uint64_t size, size_t count)
{
    struct switch_req *sw = NULL;

    pthread_join(p->rw_thread, NULL);
    p->rw_thread_live = 0;
    release_snaps(p);
    if (rc == 0 && !(sw = malloc(sizeof(*sw))))
        rc = -ENOMEM;
    if (rc < 0) {
        akv_persist_rw_abandon(p);
        akv_persist_rw_failed(p, rc);
        return;
    }
    p->rw_entries = count;
    akv_persist_handoff(p);
    sw->fd = p->rw_fd;
    sw->off = size;
    sw->tail = p->rwbuf;
    akv_buf_init(&p->rwbuf);
    akv_buf_fini(&p->rwhead);
    p->rw_fd = -1;
    p->rw = RW_SWITCHING;
    pthread_mutex_lock(&p->mu);
    p->sw = sw;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* Loop: after step 4. */
void akv_persist_rw_switched(struct akv_persist *p, int rc, uint64_t size)
{
    p->rw = RW_IDLE;
    if (rc < 0) {
        akv_persist_rw_failed(p, rc);
        return;
    }
    if (p->no_file)
        akv_log(AKV_LOG_NOTICE, "AOF %s created by a rewrite: appending to it from now on",
                p->path);
    p->no_file = 0;
    p->base_size = size;
    p->rewrites++;
    p->last_rewrite_ok = 1;
    p->last_rewrite_ms = (double)(now_ns() - p->rw_t0) / 1e6;
    akv_log(AKV_LOG_NOTICE, "AOF rewritten: %s now %llu bytes, %zu entries, in %.1f ms", p->path,
            (unsigned long long)size, p->rw_entries, p->last_rewrite_ms);
}

void akv_persist_rw_maybe_auto(struct akv_persist *p)
{
    uint64_t base = p->base_size ? p->base_size : 1;

    if (p->rw != RW_IDLE || p->closed || p->err_seen)
        return;
    if (p->no_file) {
        /* The rewrite that creates the file failed: try again, as Redis
         * does while it waits to switch appendonly on. */
        if (now_ns() < p->next_auto_ns)
            return;
        akv_log(AKV_LOG_NOTICE, "retrying the rewrite that creates the AOF %s", p->path);
        (void)akv_persist_rewrite_start(p);
        return;
    }
    if (*p->rw_percentage <= 0)
        return;
    if (p->size_seen < (uint64_t)*p->rw_min_size || now_ns() < p->next_auto_ns)
        return;
    if (p->size_seen * 100 / base < 100 + (uint64_t)*p->rw_percentage)
        return;
    akv_log(AKV_LOG_NOTICE, "starting an automatic AOF rewrite: %llu bytes, %llu%% over %llu",
            (unsigned long long)p->size_seen, (unsigned long long)(p->size_seen * 100 / base - 100),
            (unsigned long long)base);
    (void)akv_persist_rewrite_start(p);
}

void akv_persist_row_record(const struct akv_store *s, const struct akv_store_snap *snap,
                            const struct akv_store_block *b, size_t i, uint32_t db,
                            struct akv_aof_record *rec)
{
    const char *k, *v;
    size_t kl, vl;

    akv_store_entry_text(s, snap, b->first_slot + i, &k, &kl, &v, &vl);
    *rec = (struct akv_aof_record){
        .type = b->vals[i].n == 0 ? AKV_AOF_PAYLOAD : AKV_AOF_PUT,
        .db = db,
        .key = k,
        .klen = kl,
        .val = v,
        .vlen = vl,
        .expire = akv_store_entry_expire(s, snap, b->first_slot + i),
    };
}
