/*
 * persist.h - persistence: the append-only file (AOF), its writer thread,
 * replay at startup, background rewrites, and the entries kept only as text
 * because they no longer embed.
 *
 * The record format is aof.h's; the threads, the ordering of replies against
 * the file and the rewrite protocol are in the Design comment of
 * src/persist/persist.c.
 *
 * Threading: every function here is for the loop thread (the thread running
 * the uv_loop_t given to akv_persist_open), except where it says otherwise.
 * Functions taking a struct akv_persist * accept NULL (persistence off) and
 * then do nothing, so handlers need not check.
 */
#ifndef ATTNKV_PERSIST_H
#define ATTNKV_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "persist/aof.h"
#include "attnkv/store.h"

struct uv_loop_s;
struct akv_persist;

/* appendfsync: when the append-only file is fsync'd. */
enum akv_fsync { AKV_FSYNC_NO = 0, AKV_FSYNC_EVERYSEC, AKV_FSYNC_ALWAYS };

/* "no", "everysec", "always", indexed by the policy, then NULL. */
extern const char *const akv_fsync_names[];

/* A policy's name, or "unknown". Static storage; any thread. */
const char *akv_fsync_name(enum akv_fsync f);

/* What the daemon's settings say about the file. The automatic rewrite's
 * thresholds are read through their pointers at each check (on the loop
 * thread), so the owner may change them while the file is open. */
struct akv_persist_opts {
    const char *dir;
    const char *filename; /* inside dir, no '/' */
    enum akv_fsync fsync;
    const int *rewrite_percentage;              /* 0: no automatic rewrite */
    const unsigned long long *rewrite_min_size; /* bytes */
    /* akv_persist_begin: do not read the file; make it by a rewrite of the
     * stores as they are (appendonly switched on at run time). */
    int create;
    /* aof-use-rdb-preamble: nonzero makes a rewrite start the new file
     * with a snapshot preamble (aof.h); read at each rewrite's start. NULL:
     * never (one record per entry). */
    const int *preamble;
};

/* Opens (or creates) opts->dir/opts->filename, replays it into the ndbs
 * databases dbs[] (which should be empty; a SWAPDB record swaps two of the
 * pointers), cuts off a torn last record with a warning, and starts the
 * writer thread. Entries whose expiry time has passed (by the wall clock)
 * are dropped. dbs and the pointed-to thresholds are borrowed and must
 * outlive the object. A record for a database at or above ndbs is damage
 * to the configuration, reported like damage to the file. Damage other than a torn tail, or a file
 * that cannot be read or written, fails with a message naming the file (and the offset) in err. The
 * loop handles it adds do not keep the loop alive. Returns 0 or a negative errno (-EBADMSG for a
 * damaged file).
 */
int akv_persist_open(struct akv_persist **out, struct uv_loop_s *loop, struct akv_store **dbs,
                     uint32_t ndbs, const struct akv_persist_opts *opts, char *err, size_t errlen);

/* akv_persist_open in steps, so that the loop serves clients (with
 * -LOADING) while the file replays: begin opens and maps the file (errors
 * as open's; nothing is read yet), then each akv_persist_load replays
 * records for about budget_us microseconds (the clock is read every few
 * dozen records; a MULTI record is checked whole, in pieces of
 * AKV_AOF_CHECK_PIECE bytes across slices, before its records are
 * applied) and returns 1 while records remain. The last call judges
 * the file (damage, a torn tail cut off), starts the writer thread and
 * returns 0; logging works from then on, not before. A negative return
 * is open's failure (err says why); the stores then hold part of the file,
 * and p can only be closed and destroyed. akv_persist_close during the
 * replay writes nothing and leaves the file as it was.
 *
 * With opts->create, begin does not read the file: it checks that dir
 * takes a new file, starts the writer and a rewrite of the stores (which
 * must be whole), and returns 0 once the rewrite has started; the rewrite
 * creates the file (replacing one of that name when it is renamed into
 * place), and records logged meanwhile are carried by it. Should it fail,
 * it is tried again every few seconds (on the next activity). Until then
 * writes are acknowledged without a file, as with appendonly off. */
int akv_persist_begin(struct akv_persist **out, struct uv_loop_s *loop, struct akv_store **dbs,
                      uint32_t ndbs, const struct akv_persist_opts *opts, char *err, size_t errlen);
int akv_persist_load(struct akv_persist *p, uint64_t budget_us, char *err, size_t errlen);
/* Whether the replay is still going on (0 for NULL). */
int akv_persist_loading(const struct akv_persist *p);

/* Shutdown: abandons a rewrite in progress, writes and fsyncs everything
 * logged, stops the writer thread (waiting for it) and starts closing the
 * loop handles; run the loop afterwards until they are closed, then
 * akv_persist_destroy. Logs what could not be written, if anything.
 * Calling it again does nothing. */
void akv_persist_close(struct akv_persist *p);

/* Frees p after akv_persist_close and a loop run. NULL is a no-op. */
void akv_persist_destroy(struct akv_persist *p);

/* akv_persist_close, then frees p by itself once the loop has closed its
 * handles (from inside a loop callback: appendonly no at run time, or a
 * failed akv_persist_begin). p must not be used afterwards. NULL is a
 * no-op. The close joins the writer thread, which first writes and fsyncs
 * what was logged. */
void akv_persist_release(struct akv_persist *p);

/* appendfsync at run time: the writer follows the new policy from its next
 * batch; switching to always fsyncs what was only written, and replies
 * wait for it. */
void akv_persist_set_fsync(struct akv_persist *p, enum akv_fsync f);

/* Logging writes. A handler first reserves room for the record (so that
 * logging cannot fail once the store has changed), then changes the store,
 * then logs. reserve returns 0, -ENOMEM, or -E2BIG (inside a batch: see
 * akv_persist_multi_begin); type is PUT, DELETE, FLUSHDB, FLUSHALL or
 * SWAPDB (klen and vlen as the record needs them). */
int akv_persist_reserve(struct akv_persist *p, enum akv_aof_type type, size_t klen, size_t vlen);
/* PUT (a SET, or a new expiry time): also forgets a text-only entry of
 * the same key. */
void akv_persist_log_put(struct akv_persist *p, uint32_t db, const char *key, size_t klen,
                         const char *val, size_t vlen, uint64_t expire);
/* The same; payload: the value is a payload (a PAYLOAD record, whose size
 * is a PUT's). */
void akv_persist_log_put_ex(struct akv_persist *p, uint32_t db, const char *key, size_t klen,
                            const char *val, size_t vlen, uint64_t expire, int payload);
/* DELETE of one key: logged if the store had it (existed) or a text-only
 * entry of that key was dropped. Returns whether it was logged. */
int akv_persist_log_del(struct akv_persist *p, uint32_t db, const char *key, size_t klen,
                        int existed);
/* FLUSHDB, FLUSHALL, SWAPDB: the text-only entries follow. */
void akv_persist_log_flushdb(struct akv_persist *p, uint32_t db);
void akv_persist_log_flushall(struct akv_persist *p);
void akv_persist_log_swapdb(struct akv_persist *p, uint32_t a, uint32_t b);

/* The records logged between begin and end become one MULTI record,
 * replayed whole or not at all (transactions, MSET, RENAME, MOVE ...):
 * reserve then counts the wrapper too. Pairs nest: an inner pair (MSET
 * inside EXEC) adds to the outer batch. One record alone is written as
 * itself, none as nothing. A MULTI record's payload may not pass
 * AKV_AOF_PAYLOAD_MAX, or replay would take the file for damaged: reserve
 * fails with -E2BIG for a record that would make the batch pass it (the
 * store must then not change), and akv_persist_multi_fits says whether
 * records of n more bytes (akv_aof_record_size's) fit, so that a command
 * can refuse before it changes anything. */
void akv_persist_multi_begin(struct akv_persist *p);
void akv_persist_multi_end(struct akv_persist *p);
int akv_persist_multi_fits(const struct akv_persist *p, size_t n);

/* The AOF sequence: bytes logged so far. A write's reply may be sent once
 * akv_persist_durable has reached the sequence after its record. */
uint64_t akv_persist_appended(const struct akv_persist *p);
/* Written to the kernel (appendfsync everysec/no) or fsync'd (always).
 * UINT64_MAX for NULL: without a file nothing waits. */
uint64_t akv_persist_durable(const struct akv_persist *p);
/* Sequences at or below this one have been handed to the writer thread. */
uint64_t akv_persist_handed(const struct akv_persist *p);

/* Called on the loop thread whenever akv_persist_durable may have grown. */
void akv_persist_set_notify(struct akv_persist *p, void (*fn)(void *arg), void *arg);

/* 0 while writes succeed; else the errno of the last failed write, while
 * the writer retries every second (writes are then refused with MISCONF). */
int akv_persist_write_error(const struct akv_persist *p);

/* Starts a background rewrite. Returns 0, -EBUSY when one is running,
 * -EAGAIN while the replay is not over, or another negative errno (logged). Inside a batch (between
 * akv_persist_multi_begin and _end: BGREWRITEAOF in a transaction) it
 * returns -EINPROGRESS and starts at the batch's end instead, since its
 * snapshot would hold part of the batch, which the MULTI record logged
 * after it then replays again (a SWAPDB twice is none). */
int akv_persist_rewrite_start(struct akv_persist *p);

/* The PUT (or PAYLOAD) record of row i of block b of store s, as seen in
 * snap, for database db: what a rewrite writes for it, and a cluster
 * snapshot too. Its key and value point into the store (valid while snap
 * is live). Any thread holding snap. */
void akv_persist_row_record(const struct akv_store *s, const struct akv_store_snap *snap,
                            const struct akv_store_block *b, size_t i, uint32_t db,
                            struct akv_aof_record *rec);

/* For INFO persistence. */
struct akv_persist_info {
    int enabled;
    int rewrite_in_progress;
    int last_rewrite_ok;
    int write_error; /* errno, 0 when ok */
    uint64_t rewrites;
    double last_rewrite_ms;
    uint64_t current_size;
    uint64_t base_size;
    uint64_t pending_bytes; /* logged, not yet written to the kernel */
    enum akv_fsync fsync;
    size_t unembeddable;
    uint64_t replayed; /* records replayed at startup */
    int no_file;       /* switched on at run time; the first rewrite has not finished */
    /* While the start-up replay runs (Redis's loading_* fields). */
    int loading;
    int64_t loading_start_time; /* unix time */
    uint64_t loading_total_bytes;
    uint64_t loading_loaded_bytes;
    uint64_t loading_records; /* top-level records replayed so far */
    uint64_t loading_elapsed_us;
};
void akv_persist_info(const struct akv_persist *p, struct akv_persist_info *info);

#endif
