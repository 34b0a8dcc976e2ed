/*
 * cmd-multi.c - transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 *
 * Design
 * ------
 * MULTI gives the session a queue; while it is active, dispatch hands every
 * command but MULTI, EXEC, DISCARD, WATCH, UNWATCH, QUIT and RESET (flag
 * AKV_CMD_NOQUEUE) to akv_cmd_multi_queue, which copies its arguments and
 * answers +QUEUED. A command that fails to queue (unknown, wrong number of
 * arguments, over the size limits) marks the transaction failed, and EXEC
 * then answers -EXECABORT, as in Redis.
 *
 * EXEC runs the queued commands one after the other through
 * akv_cmd_dispatch on the loop thread, with the clock read once, so no
 * other client runs in between; their AOF records go into one MULTI record
 * (persist.h), replayed whole or not at all, and the connection's reply
 * waits for it like any write's. Commands that run on the pool (QUERY,
 * EXPLAIN, NEIGHBORS, KEYS) take their store snapshot when EXEC reaches
 * them, so each sees exactly the writes queued before it; EXEC then becomes
 * one job that runs those jobs in order on a worker, and its finish writes
 * the array of replies in order.
 *
 * The stall rule: a transaction holds at most max-batch-size commands (as
 * an MSET at most that many pairs), proto-max-multibulk-len arguments and
 * client-query-buffer-limit bytes in all, so EXEC's time on the loop thread
 * stays within a few milliseconds.
 *
 * WATCH: a table of (database, key, session) entries. Every change of a key
 * (akv_cmd_key_put/del/expire; not the deletion of an expired key, which
 * EXEC's check of each key's time covers) calls akv_cmd_watch_touch, which
 * marks the sessions watching it dirty; EXEC of a dirty session answers a
 * null array. A key absent or expired when watched that is absent after
 * the change (the expiry of a key already due carried out) has not
 * changed, as in Redis. A key that was live when watched and whose time
 * has come by EXEC counts as changed, even if nothing has deleted it yet.
 *
 * FLUSHDB, FLUSHALL and SWAPDB change whole databases: visiting every
 * watched entry there would cost the loop thread time that the clients
 * choose (20 connections watching 65,535 keys each made a FLUSHDB take
 * 150 ms), so they only count, per database, flushes and swaps, and EXEC
 * works out what they did to each key the session watches, which it
 * visits anyway. As in Redis 7, a flush or swap changes a watched key that
 * exists on one side or the other, not one absent from both; since any
 * write of the key in between would have touched it, the key existed in a
 * flushed database iff it was live when watched, and after one swap the
 * database holds the store swapped in, unchanged for that key. Only after
 * several swaps, or a swap and a flush, does EXEC fail without looking (a
 * spurious failure, never a missed change).
 *
 * EXEC, DISCARD, UNWATCH and the end of the connection drop a session's
 * entries. At most WATCH_MAX keys a connection, a key watched twice
 * counting twice. Every step costs O(1) a key, whatever the other
 * connections watch: the table's chains are doubly linked and it grows
 * incrementally (see REHASH_STEP).
 *
 * Threading: the loop thread; an EXEC job's work on a worker, running the
 * work of the jobs it holds (each reads only its own job, as cmd.h says).
 */
#include "server/cmd-impl.h"

#include <xxhash.h>

#include "cluster/entry.h"

#define WATCH_MAX 65536

struct watched {
    struct watched *next, **pprev; /* in the table's bucket: unlinked in O(1) */
    struct akv_session *sess;
    uint32_t db;
    int was_live;            /* the key was live when watched */
    uint64_t flushes, swaps; /* the database's counts when watched */
    uint64_t hash;
    size_t klen;
    char key[];
};

/* The table grows by doubling, and moves its entries to the new bucket
 * array a few buckets at a time (REHASH_STEP per WATCHed key), as Redis's
 * dict does: moving a million entries at once held the loop thread for
 * 200 ms. Until it is done a key is looked up in both arrays. */
#define REHASH_STEP 1

struct akv_watch {
    struct watched **b;
    size_t nb; /* a power of two, or 0 */
    size_t n;
    struct watched **old;      /* being emptied into b, or NULL */
    size_t nold, moved;        /* its size; the buckets before moved are empty */
    uint64_t *flushes, *swaps; /* per database: FLUSHDB/FLUSHALL, SWAPDB */
};

struct queued {
    struct queued *next;
    size_t argc;
    struct akv_slice *argv; /* into the same allocation */
};

struct akv_multi {
    int active; /* between MULTI and EXEC/DISCARD */
    int dirty;  /* a watched key changed */
    int failed; /* a command failed to queue */
    int writes; /* a queued command writes */
    struct queued *head, **tail;
    size_t nqueued, nargs, nbytes;
    struct watched **w; /* this session's entries */
    size_t nw, wcap;
};

static uint64_t watch_hash(uint32_t db, const char *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, db);
}

static struct akv_multi *multi_of(struct akv_session *s)
{
    if (!s->multi) {
        s->multi = calloc(1, sizeof(*s->multi));
        if (s->multi)
            s->multi->tail = &s->multi->head;
    }
    return s->multi;
}

static void queue_clear(struct akv_multi *m)
{
    while (m->head) {
        struct queued *q = m->head;
        m->head = q->next;
        free(q);
    }
    m->tail = &m->head;
    m->nqueued = m->nargs = m->nbytes = 0;
    m->active = m->failed = m->writes = 0;
}

static void unwatch_all(struct akv_cmd_env *env, struct akv_session *s)
{
    struct akv_multi *m = s->multi;
    struct akv_watch *t = env->watch;

    if (!m)
        return;
    for (size_t i = 0; i < m->nw; i++) {
        struct watched *e = m->w[i];
        *e->pprev = e->next;
        if (e->next)
            e->next->pprev = e->pprev;
        t->n--;
        free(e);
    }
    free(m->w);
    m->w = NULL;
    m->nw = m->wcap = 0;
    m->dirty = 0;
}

void akv_cmd_env_fini(struct akv_cmd_env *env)
{
    akv_cmd_reap(env, 1);
    for (size_t i = 0; i < AKV_CMD_STATS_MAX; i++) {
        free(env->cmd_hist[i]);
        env->cmd_hist[i] = NULL;
    }
    env->ncmd_hist = 0;
    if (env->watch) {
        free(env->watch->b);
        free(env->watch->old);
        free(env->watch->flushes);
        free(env->watch->swaps);
        free(env->watch);
        env->watch = NULL;
    }
}

int akv_cmd_multi_active(const struct akv_session *s)
{
    return s->multi && s->multi->active;
}

long akv_cmd_multi_queued(const struct akv_session *s)
{
    return akv_cmd_multi_active(s) ? (long)s->multi->nqueued : -1;
}

void akv_cmd_multi_fail(struct akv_session *s)
{
    if (akv_cmd_multi_active(s))
        s->multi->failed = 1;
}

void akv_cmd_multi_session_fini(struct akv_cmd_env *env, struct akv_session *s)
{
    if (!s->multi)
        return;
    unwatch_all(env, s);
    queue_clear(s->multi);
    free(s->multi);
    s->multi = NULL;
}

/* The chains a hash may be in: the new array's bucket and, while the
 * table grows, the old array's if not moved yet. */
static void chains_of(const struct akv_watch *t, uint64_t h, struct watched *heads[2])
{
    size_t i = t->old ? h & (t->nold - 1) : 0;

    heads[0] = t->nb > 0 ? t->b[h & (t->nb - 1)] : NULL;
    heads[1] = t->old && i >= t->moved ? t->old[i] : NULL;
}

static int live_in(const struct akv_store *st, const struct watched *e)
{
    struct akv_store_found f;

    return st && akv_store_find(st, e->key, e->klen, &f) == AKV_STORE_LIVE;
}

void akv_cmd_watch_touch(struct akv_cmd_env *env, uint32_t db, const char *key, size_t klen)
{
    struct akv_watch *t = env->watch;
    struct watched *heads[2];
    uint64_t h;

    if (!t || t->n == 0)
        return;
    h = watch_hash(db, key, klen);
    chains_of(t, h, heads);
    for (int c = 0; c < 2; c++) {
        for (struct watched *e = heads[c]; e; e = e->next) {
            if (e->hash != h || e->db != db || e->klen != klen || memcmp(e->key, key, klen) != 0)
                continue;
            /* Absent (or expired) when watched and absent still, as when
             * the expiry of a key already due is carried out: no change,
             * as in Redis. Unless a swap came in between: EXEC then relies
             * on every change since being marked. */
            if (!e->was_live && t->swaps[db] == e->swaps && !live_in(env->dbs[db], e))
                continue;
            e->sess->multi->dirty = 1;
        }
    }
}

void akv_cmd_watch_flushed(struct akv_cmd_env *env, uint32_t db)
{
    if (env->watch)
        env->watch->flushes[db]++;
}

void akv_cmd_watch_swapped(struct akv_cmd_env *env, uint32_t a, uint32_t b)
{
    if (env->watch) {
        env->watch->swaps[a]++;
        env->watch->swaps[b]++;
    }
}

/* Whether a watched key changed by EXEC, beyond what touched it: its time
 * came, or a flush or swap of its database changed it (see the Design
 * comment). */
static int watched_changed(const struct akv_cmd_env *env, const struct watched *e)
{
    const struct akv_watch *t = env->watch;
    uint64_t flushes = t->flushes[e->db] - e->flushes, swaps = t->swaps[e->db] - e->swaps;
    struct akv_store_found f;
    int st = akv_store_find(env->dbs[e->db], e->key, e->klen, &f);

    if (swaps == 0)
        /* Live when watched and gone now (expired, or flushed), or live
         * then and flushed since (and written again, which touched it). */
        return e->was_live && (st != AKV_STORE_LIVE || flushes > 0);
    if (swaps > 1 || flushes > 0)
        return 1;
    /* One swap: it existed on the side swapped out iff it was live, and on
     * the side swapped in iff it is there now (expired ones count: a
     * spurious failure at worst). */
    return e->was_live || st != AKV_STORE_ABSENT;
}

static void bucket_push(struct watched **head, struct watched *e)
{
    e->next = *head;
    if (e->next)
        e->next->pprev = &e->next;
    e->pprev = head;
    *head = e;
}

/* Moves the entries of REHASH_STEP buckets of the old array, if any. */
static void rehash_step(struct akv_watch *t)
{
    for (int i = 0; t->old && i < REHASH_STEP; i++) {
        struct watched **head = &t->old[t->moved];
        while (*head) {
            struct watched *e = *head;
            *head = e->next;
            bucket_push(&t->b[e->hash & (t->nb - 1)], e);
        }
        if (++t->moved == t->nold) {
            free(t->old);
            t->old = NULL;
        }
    }
}

/* Adds an entry for key to the table and the session. */
static int watch_add(struct akv_cmd_env *env, struct akv_session *s, uint32_t db,
                     const struct akv_slice *k)
{
    struct akv_multi *m = s->multi;
    struct akv_watch *t = env->watch;
    struct akv_store_found f;
    uint64_t h = watch_hash(db, k->p, k->len);
    struct watched *e;

    if (!t) {
        t = calloc(1, sizeof(*t));
        if (t) {
            t->flushes = calloc(env->ndbs, sizeof(*t->flushes));
            t->swaps = calloc(env->ndbs, sizeof(*t->swaps));
        }
        if (!t || !t->flushes || !t->swaps) {
            if (t) {
                free(t->flushes);
                free(t->swaps);
                free(t);
            }
            return -ENOMEM;
        }
        env->watch = t;
    }
    /* A key watched twice gets two entries: harmless (either marks the
     * session dirty, and one watched later than a change was marked dirty
     * by it already), bounded by WATCH_MAX, and cheap. Looking for the
     * first cost O(n^2) in the session's list (65,535 keys held the loop
     * thread 5 s) and O(connections watching the key) in the bucket. */
    rehash_step(t);
    if (t->n >= t->nb && !t->old) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct watched **b = calloc(nb, sizeof(*b));
        if (!b)
            return -ENOMEM;
        t->old = t->b;
        t->nold = t->nb;
        t->moved = 0;
        t->b = b;
        t->nb = nb;
        rehash_step(t);
    }
    if (m->nw == m->wcap) {
        size_t cap = m->wcap ? m->wcap * 2 : 8;
        struct watched **w = realloc(m->w, cap * sizeof(*w));
        if (!w)
            return -ENOMEM;
        m->w = w;
        m->wcap = cap;
    }
    e = malloc(sizeof(*e) + k->len);
    if (!e)
        return -ENOMEM;
    e->sess = s;
    e->db = db;
    e->hash = h;
    e->klen = k->len;
    memcpy(e->key, k->p, k->len);
    e->was_live = akv_store_find(env->dbs[db], k->p, k->len, &f) == AKV_STORE_LIVE;
    e->flushes = t->flushes[db];
    e->swaps = t->swaps[db];
    bucket_push(&t->b[h & (t->nb - 1)], e);
    t->n++;
    m->w[m->nw++] = e;
    return 0;
}

int akv_cmd_do_watch(struct akv_cmd_ctx *ctx)
{
    struct akv_multi *m = multi_of(ctx->sess);

    if (!m)
        return reply_oom(ctx->out);
    if (m->active)
        return akv_reply_error(ctx->out, "ERR WATCH inside MULTI is not allowed");
    if (m->nw + ctx->argc - 1 > WATCH_MAX)
        return akv_reply_errorf(ctx->out, "ERR too many watched keys (at most %d a connection)",
                                WATCH_MAX);
    for (size_t i = 1; i < ctx->argc; i++)
        if (watch_add(ctx->env, ctx->sess, (uint32_t)ctx->sess->db, &ctx->argv[i]) < 0)
            return reply_oom(ctx->out);
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_unwatch(struct akv_cmd_ctx *ctx)
{
    unwatch_all(ctx->env, ctx->sess);
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_multi(struct akv_cmd_ctx *ctx)
{
    struct akv_multi *m = multi_of(ctx->sess);

    if (!m)
        return reply_oom(ctx->out);
    if (m->active)
        return akv_reply_error(ctx->out, "ERR MULTI calls can not be nested");
    m->active = 1;
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_discard(struct akv_cmd_ctx *ctx)
{
    struct akv_multi *m = ctx->sess->multi;

    if (!m || !m->active)
        return akv_reply_error(ctx->out, "ERR DISCARD without MULTI");
    queue_clear(m);
    unwatch_all(ctx->env, ctx->sess);
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_multi_queue(struct akv_cmd_ctx *ctx, const struct akv_cmd *c)
{
    const struct akv_config *cfg = ctx->env->config;
    struct akv_multi *m = ctx->sess->multi;
    size_t bytes = 0;
    struct queued *q;
    char *p;

    for (size_t i = 0; i < ctx->argc; i++)
        bytes += ctx->argv[i].len;
    if (m->nqueued + 1 > (size_t)cfg->max_batch_size ||
        m->nargs + ctx->argc > (size_t)cfg->proto_max_multibulk_len ||
        m->nbytes + bytes > cfg->client_query_buffer_limit) {
        m->failed = 1;
        return akv_reply_errorf(ctx->out,
                                "ERR transaction too large: at most %d commands "
                                "(max-batch-size), %d arguments (proto-max-multibulk-len) and "
                                "%llu bytes (client-query-buffer-limit) may be queued",
                                cfg->max_batch_size, cfg->proto_max_multibulk_len,
                                cfg->client_query_buffer_limit);
    }
    q = malloc(sizeof(*q) + ctx->argc * sizeof(struct akv_slice) + bytes);
    if (!q) {
        m->failed = 1;
        return reply_oom(ctx->out);
    }
    q->next = NULL;
    q->argc = ctx->argc;
    q->argv = (struct akv_slice *)(void *)(q + 1);
    p = (char *)(q->argv + ctx->argc);
    for (size_t i = 0; i < ctx->argc; i++) {
        if (ctx->argv[i].len)
            memcpy(p, ctx->argv[i].p, ctx->argv[i].len);
        q->argv[i] = (struct akv_slice){p, ctx->argv[i].len};
        p += ctx->argv[i].len;
    }
    *m->tail = q;
    m->tail = &q->next;
    m->nqueued++;
    m->writes |= (c->flags & AKV_CMD_WRITE) != 0;
    m->nargs += ctx->argc;
    m->nbytes += bytes;
    return akv_reply_status(ctx->out, "QUEUED");
}

/* One queued command's reply: bytes of exec_job.replies, or a job's. */
struct exec_item {
    size_t start, end;
    struct akv_cmd_job *job;
};

struct exec_job {
    struct akv_cmd_job base;
    struct akv_cmd_env *env;
    int resp;
    struct akv_buf replies;
    size_t n;
    struct exec_item item[];
};

/* Worker thread: runs the held jobs one after the other, in order. */
static void exec_work(struct akv_pool_job *pj)
{
    struct exec_job *j = container_of(pj, struct exec_job, base.pool);

    for (size_t i = 0; i < j->n; i++) {
        struct akv_pool_job *sub = j->item[i].job ? &j->item[i].job->pool : NULL;
        if (!sub)
            continue;
        sub->pool = pj->pool; /* so that it may ask for help */
        sub->help = NULL;
        if (sub->batch)
            sub->batch(&sub, 1);
        else
            sub->work(sub);
    }
}

/* Writes the array of replies to out (NULL: the client has gone; the held
 * jobs still finish, releasing their snapshots). */
static int exec_write(struct exec_job *j, struct akv_buf *out)
{
    int rc = out ? akv_reply_array(out, j->n) : 0;

    for (size_t i = 0; i < j->n; i++) {
        struct exec_item *it = &j->item[i];
        if (it->job) {
            it->job->finish(it->job, rc == 0 ? out : NULL);
            it->job = NULL;
        } else if (rc == 0 && out) {
            rc = akv_buf_append(out, j->replies.p + it->start, it->end - it->start);
        }
    }
    return rc;
}

static void exec_free(struct exec_job *j)
{
    akv_buf_fini(&j->replies);
    free(j);
}

static void exec_finish(struct akv_cmd_job *cj, struct akv_buf *out)
{
    struct exec_job *j = container_of(cj, struct exec_job, base);
    uint64_t us = (now_ns() - cj->t0) / 1000;
    size_t mark = out ? out->len : 0;
    int failed = 0;

    if (exec_write(j, out) < 0)
        failed = akv_cmd_reply_cut_to_oom(out, mark);
    akv_cmd_job_account(j->env, cj, us, failed);
    exec_free(j);
}

int akv_cmd_do_exec(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_session *s = ctx->sess;
    struct akv_multi *m = s->multi;
    struct exec_job *j;
    size_t njobs = 0, i = 0;
    int rc = 0;

    if (!m || !m->active)
        return akv_reply_error(ctx->out, "ERR EXEC without MULTI");
    if (m->failed) {
        queue_clear(m);
        unwatch_all(env, s);
        return akv_reply_error(ctx->out,
                               "EXECABORT Transaction discarded because of previous errors.");
    }
    if (m->writes && akv_persist_write_error(env->persist)) {
        /* As Redis does: a transaction with writes is refused whole while
         * writes cannot be made durable, rather than half run. */
        queue_clear(m);
        unwatch_all(env, s);
        return akv_reply_errorf(ctx->out, "MISCONF Errors writing to the AOF file: %s",
                                strerror(akv_persist_write_error(env->persist)));
    }
    akv_cmd_clock(env);
    for (size_t w = 0; w < m->nw && !m->dirty; w++)
        if (watched_changed(env, m->w[w]))
            m->dirty = 1;
    if (m->dirty) {
        queue_clear(m);
        unwatch_all(env, s);
        return akv_reply_null_array(ctx->out, s->resp);
    }
    unwatch_all(env, s);
    j = calloc(1, sizeof(*j) + m->nqueued * sizeof(j->item[0]));
    if (!j) {
        queue_clear(m);
        return reply_oom(ctx->out);
    }
    j->env = env;
    j->resp = s->resp;
    j->n = m->nqueued;
    akv_buf_init(&j->replies);
    m->active = 0; /* the queued commands run now, not queue again */
    env->in_exec = 1;
    akv_persist_multi_begin(env->persist);
    for (struct queued *q = m->head; q; q = q->next, i++) {
        struct akv_cmd_ctx sub = {
            .env = env, .argc = q->argc, .argv = q->argv, .out = &j->replies, .sess = s};
        j->item[i].start = j->replies.len;
        rc = akv_cmd_dispatch(&sub);
        j->item[i].end = j->replies.len;
        j->item[i].job = sub.job;
        njobs += sub.job != NULL;
        if (rc < 0)
            break;
    }
    akv_persist_multi_end(env->persist);
    env->in_exec = 0;
    queue_clear(m);
    if (rc < 0) {
        (void)exec_write(j, NULL);
        exec_free(j);
        return -ENOMEM;
    }
    if (njobs == 0) {
        rc = exec_write(j, ctx->out);
        exec_free(j);
        return rc;
    }
    j->base.pool.work = exec_work;
    j->base.finish = exec_finish;
    ctx->job = &j->base;
    return 0;
}

int akv_cmd_multi_writes(const struct akv_session *s)
{
    return s->multi && s->multi->active && s->multi->writes;
}

int akv_cmd_multi_take(struct akv_cmd_ctx *ctx, struct akv_buf *b)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_session *s = ctx->sess;
    struct akv_multi *m = s->multi;
    int rc;

    if (m->failed) {
        queue_clear(m);
        unwatch_all(env, s);
        rc = akv_reply_error(ctx->out,
                             "EXECABORT Transaction discarded because of previous errors.");
        return rc < 0 ? rc : 1;
    }
    for (struct queued *q = m->head; q; q = q->next) {
        const struct akv_cmd *c = akv_cmd_lookup(q->argv[0].p, q->argv[0].len);
        if (c && !akv_cmd_cluster_entry_ok(c, q->argc, 1)) {
            queue_clear(m);
            unwatch_all(env, s);
            rc = akv_reply_errorf(ctx->out,
                                  "EXECABORT in cluster mode a transaction that writes cannot "
                                  "hold %s (%s); run it outside",
                                  c->name,
                                  (c->flags & AKV_CMD_SLOW) ? "it runs on the worker pool"
                                                            : "it is not a data command");
            return rc < 0 ? rc : 1;
        }
    }
    for (size_t w = 0; w < m->nw && !m->dirty; w++)
        if (watched_changed(env, m->w[w]))
            m->dirty = 1;
    if (m->dirty) {
        queue_clear(m);
        unwatch_all(env, s);
        rc = akv_reply_null_array(ctx->out, s->resp);
        return rc < 0 ? rc : 1;
    }
    rc = akv_entry_put_u32(b, (uint32_t)m->nqueued);
    for (struct queued *q = m->head; q && rc == 0; q = q->next) {
        rc = akv_entry_put_u32(b, (uint32_t)q->argc);
        for (size_t i = 0; i < q->argc && rc == 0; i++)
            rc = akv_entry_put_bytes(b, q->argv[i].p, q->argv[i].len);
    }
    rc = rc ? rc : akv_entry_put_u32(b, (uint32_t)m->nw);
    for (size_t w = 0; w < m->nw && rc == 0; w++) {
        const struct watched *e = m->w[w];
        struct akv_store_found f;
        int live = akv_store_find(env->dbs[e->db], e->key, e->klen, &f) == AKV_STORE_LIVE;
        rc = akv_entry_put_u32(b, e->db);
        rc = rc ? rc : akv_entry_put_bytes(b, e->key, e->klen);
        rc = rc ? rc : akv_entry_put_u8(b, (uint8_t)live);
        rc = rc ? rc : akv_entry_put_u64(b, live ? f.expire : 0);
        rc = rc ? rc : akv_entry_put_bytes(b, live ? f.val : "", live ? f.vlen : 0);
    }
    queue_clear(m);
    unwatch_all(env, s);
    return rc < 0 ? rc : 0;
}

int akv_cmd_session_in_multi(const struct akv_session *s)
{
    return akv_cmd_multi_active(s);
}
