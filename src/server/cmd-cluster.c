/*
 * cmd-cluster.c - the command layer's side of a cluster (cluster/cluster.h):
 * writes proposed as log entries, committed entries applied to the store,
 * the snapshot of the databases, linearizable reads, and the CLUSTER,
 * ROLE, CONSISTENCY and WAIT commands.
 *
 * Design (the guarantees are in docs/cluster.md)
 *   - A write (a command flagged AKV_CMD_WRITE, or an EXEC whose queue
 *     writes) is not run when it arrives: akv_cmd_cluster_write encodes its
 *     arguments, the session's database and protocol into a CMDS entry
 *     tagged with this node's id and a request id, proposes it, and leaves
 *     a job (struct cl_job) that holds the connection until the entry is
 *     applied here. The job has no pool work: this file completes it.
 *   - apply_entry runs every committed entry's commands through their
 *     handlers, with the entry's time as the clock (so expiry decisions are
 *     the same on every node), env->applying set (no limit but the
 *     lengths is checked, nothing is proposed again), and a session made
 *     from the entry. The output goes to the waiting job when the tag is
 *     ours, else nowhere. So a client's reply comes after its write is
 *     committed and applied on the node it talks to: its next read there
 *     sees it (read-your-writes on a connection).
 *   - A job whose entry lost its place (another entry applied at its index,
 *     after a change of leader) fails for certain: -TRYAGAIN. One that
 *     hears nothing for cluster-write-timeout ms fails as uncertain
 *     (-TIMEOUT: it may still be applied).
 *   - Expiry: stores hide expired entries by the local clock, but only the
 *     leader deletes them, through EXPIRED entries (akv_cmd_expire_cycle),
 *     and no lookup deletes one (cmd-keys.c): the store changes only by
 *     applied entries, identically everywhere.
 *   - WATCH: a transaction's entry carries each WATCHed key's value and
 *     expiry as this node saw them at EXEC; it runs only if every one is
 *     still so when applied (a compare-and-set; a key set back to the same
 *     value does not abort it, as it would in Redis).
 *   - Linearizable reads (CONSISTENCY linearizable): a read waits for a
 *     read round, an index the leader confirmed it still led at, after the
 *     read arrived, and for this node to have applied that index. Reads
 *     arriving while a round is out share the next one.
 *   - Completed jobs are finished from the cluster's deferred callback
 *     (akv_cmd_cluster_flush), never inside the raft library's apply.
 *
 * Threading: the loop thread, except snap_write (a work thread), which
 * reads only the store snapshots it was given.
 */
#include "server/cmd-impl.h"

#include <inttypes.h>

#include "cluster/cluster.h"
#include "cluster/entry.h"
#include "persist/aof.h"
#include "util/log.h"

enum cl_kind { CL_WRITE, CL_READINDEX, CL_CHANGE };

struct cl_job {
    struct akv_cmd_job base;
    struct cl_job *next, **pprev; /* in the pending list, or the done list */
    struct akv_cmd_env *env;
    struct akv_session *sess;
    enum cl_kind kind;
    uint64_t req;
    uint64_t index; /* where the leader appended it; 0: not known yet */
    /* Forwarded: the leader appends it only in this term (cluster.h), so
     * an entry of a later term applied without it means it never will
     * be (0: proposed here, as the leader). */
    uint64_t fence_term;
    uint64_t deadline_ms;
    int done;
    int failed;
    int db; /* the database its session is in after the entry (SELECT in EXEC); -1 */
    struct akv_buf reply;
};

struct akv_cmd_cluster {
    struct akv_cluster *cl;
    uint64_t next_req;
    /* pending: oldest first (an applied entry's job is found near the
     * head); pending_tail: &last->next, or &pending. */
    struct cl_job *pending, *finished, **pending_tail;
    uint64_t term_applied; /* the largest term of an entry applied (settle) */
    /* Read rounds. */
    uint64_t rounds_started, rounds_done, round_fail, done_index;
    int round_out, round_wanted;
    uint64_t expired_inflight_until; /* ms: an EXPIRED entry is out */
    int stopping;                    /* the server is shutting down */
    struct akv_aof_parser restore;   /* a snapshot loading (hook_restore_*) */
    uint64_t restore_records;
};

static uint64_t mono_ms(void)
{
    return now_ns() / 1000000u;
}

static void job_unlink(struct cl_job *j)
{
    struct akv_cmd_cluster *cc = j->env->cluster;

    if (j->pprev) {
        *j->pprev = j->next;
        if (j->next)
            j->next->pprev = j->pprev;
        else if (cc && cc->pending_tail == &j->next)
            cc->pending_tail = j->pprev;
    }
    j->next = NULL;
    j->pprev = NULL;
}

static void job_push(struct cl_job **head, struct cl_job *j)
{
    j->next = *head;
    if (*head)
        (*head)->pprev = &j->next;
    *head = j;
    j->pprev = head;
}

/* Appends j to the pending list. */
static void job_pend(struct akv_cmd_cluster *cc, struct cl_job *j)
{
    j->next = NULL;
    j->pprev = cc->pending_tail;
    *cc->pending_tail = j;
    cc->pending_tail = &j->next;
}

/* Moves j to the finished list with its reply (or the error line). */
static void job_complete(struct akv_cmd_cluster *cc, struct cl_job *j, const char *err)
{
    if (j->done)
        return;
    j->done = 1;
    if (err) {
        j->reply.len = 0;
        j->failed = 1;
        if (akv_reply_error(&j->reply, err) < 0)
            j->reply.len = 0;
    }
    job_unlink(j);
    job_push(&cc->finished, j);
    akv_cluster_defer(cc->cl);
}

static struct cl_job *job_find(struct akv_cmd_cluster *cc, uint64_t req)
{
    for (struct cl_job *j = cc->pending; j; j = j->next)
        if (j->req == req)
            return j;
    return NULL;
}

static void cl_finish(struct akv_cmd_job *cj, struct akv_buf *out)
{
    struct cl_job *j = container_of(cj, struct cl_job, base);
    uint64_t us = (now_ns() - cj->t0) / 1000;
    int failed = j->failed;

    /* The session too when the reply is dropped (CLIENT REPLY OFF): the
     * job holds the connection, so it is still there. */
    if (j->kind == CL_WRITE && !j->failed) {
        j->sess->cl_last_index = j->index;
        if (j->db >= 0)
            j->sess->db = j->db; /* a SELECT in its transaction, as in Redis */
    }
    if (out && j->reply.len == 0) {
        /* Out of memory for the reply when it was made: say so, or the
         * client would wait for an answer that never comes. */
        failed = 1;
        (void)akv_cmd_reply_cut_to_oom(out, out->len);
    } else if (out) {
        size_t mark = out->len;
        if (akv_buf_append(out, j->reply.p, j->reply.len) < 0)
            failed = akv_cmd_reply_cut_to_oom(out, mark);
        else if (j->reply.p[0] == '-')
            akv_cmd_count_error(j->env, j->reply.p, j->reply.len);
    }
    akv_cmd_job_account(j->env, cj, us, failed);
    akv_buf_fini(&j->reply);
    free(j);
}

static void round_start(struct akv_cmd_env *env);

void akv_cmd_cluster_flush(struct akv_cmd_env *env)
{
    struct akv_cmd_cluster *cc = env->cluster;
    struct cl_job *j;

    if (!cc)
        return;
    if (cc->round_wanted && !cc->round_out && !cc->stopping) {
        round_start(env);
        if (!cc->round_out && env->pause_changed)
            env->pause_changed(env); /* it failed: wake its reads */
    }
    while ((j = cc->finished)) {
        job_unlink(j);
        j->base.pool.done(&j->base.pool);
    }
}

/* ------------------------------------------------------------------------
 * Proposing.
 */

static void on_proposed(void *arg, uint64_t token, int status, uint64_t index, const char *msg)
{
    struct akv_cmd_env *env = arg;
    struct akv_cmd_cluster *cc = env->cluster;
    struct cl_job *j = job_find(cc, token);
    char err[600];

    if (!j || j->done)
        return;
    if (status == AKV_CLUSTER_DOUBT)
        return; /* settled by an entry of a later term (settle) */
    if (status == 0) {
        j->index = index;
        /* Already applied past it without our tag: another entry took
         * the place. */
        if (akv_cluster_applied(cc->cl) >= index)
            job_complete(cc, j,
                         "TRYAGAIN the write lost its place in the log to a change of "
                         "leader; it was not applied");
        return;
    }
    if (status == AKV_CLUSTER_REFUSED && msg) {
        snprintf(err, sizeof err, "%s", msg);
        job_complete(cc, j, err);
    } else {
        job_complete(cc, j, "TRYAGAIN no leader yet; the write was not applied");
    }
}

static int put_cmd(struct akv_buf *b, size_t argc, const struct akv_slice *argv)
{
    int rc = akv_entry_put_u32(b, (uint32_t)argc);

    for (size_t i = 0; i < argc && rc == 0; i++)
        rc = akv_entry_put_bytes(b, argv[i].p, argv[i].len);
    return rc;
}

int akv_cmd_cluster_write(struct akv_cmd_ctx *ctx, const struct akv_cmd *c)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_cmd_cluster *cc = env->cluster;
    struct akv_buf b;
    struct cl_job *j;
    uint64_t index = 0;
    int rc, exec = c->handler == akv_cmd_do_exec;
    char err[200];
    size_t too_big = 0;

    akv_buf_init(&b);
    rc = akv_entry_put_head(&b, AKV_ENTRY_CMDS, exec ? AKV_ENTRY_EXEC : 0,
                            akv_cmd_cluster_self(env), cc->next_req + 1, 0);
    rc = rc ? rc : akv_entry_put_u32(&b, (uint32_t)ctx->sess->db);
    rc = rc ? rc : akv_entry_put_u32(&b, (uint32_t)ctx->sess->resp);
    if (rc == 0 && exec) {
        /* EXEC runs alone (it is never pipelined): it may answer at once. */
        rc = akv_cmd_multi_take(ctx, &b);
        if (rc != 0) {
            akv_buf_fini(&b);
            return rc < 0 ? rc : 0; /* replied: aborted, or discarded */
        }
    } else if (rc == 0) {
        rc = akv_entry_put_u32(&b, 1);
        rc = rc ? rc : put_cmd(&b, ctx->argc, ctx->argv);
    }
    if (rc == 0 && b.len > env->config->proto_max_bulk_len) {
        /* A follower forwards the entry as one bulk string: the leader
         * would refuse it with a protocol error and drop the connection
         * every forwarded write shares. Refused here, on every node. */
        too_big = b.len;
    }
    if (rc == -ENOMEM) {
        akv_buf_fini(&b);
        return rc;
    }
    /* From here every answer is the job's, failures too, so that the
     * replies of writes pipelined on a connection keep their order
     * (conn.c): a failure is a job finished at once. */
    j = calloc(1, sizeof(*j));
    if (!j) {
        akv_buf_fini(&b);
        return -ENOMEM;
    }
    j->env = env;
    j->sess = ctx->sess;
    j->kind = CL_WRITE;
    j->db = -1;
    j->req = ++cc->next_req;
    j->deadline_ms = mono_ms() + (uint64_t)env->config->cluster_write_timeout;
    akv_buf_init(&j->reply);
    j->base.finish = cl_finish;
    ctx->job = &j->base;
    job_pend(cc, j);
    if (rc == -E2BIG || too_big) {
        snprintf(err, sizeof err,
                 "ERR request too large for a log entry (%zu bytes; proto-max-bulk-len is %llu)",
                 too_big ? too_big : b.len, env->config->proto_max_bulk_len);
        job_complete(cc, j, err);
    } else if (cc->stopping) {
        job_complete(cc, j, "TRYAGAIN the server is shutting down; the write was not applied");
    } else if (!exec && strcmp(c->name, "DEL") != 0 && strcmp(c->name, "UNLINK") != 0 &&
               strncmp(c->name, "FLUSH", 5) != 0 &&
               akv_cmd_key_room(&(struct akv_cmd_ctx){.env = env, .out = &j->reply}, 0) != 0) {
        /* As Redis: a write is refused while over maxmemory; checked by
         * the node that proposes, as the entry is applied on every node
         * whatever its memory. The reply is in j->reply. */
        j->failed = 1;
        job_complete(cc, j, NULL);
    } else {
        rc = akv_cluster_propose(cc->cl, b.p, b.len, &index, j->req, on_proposed, env);
        if (rc == AKV_CLUSTER_NOLEADER) {
            job_complete(cc, j, "TRYAGAIN no leader yet; the write was not applied");
        } else if (rc == -EBUSY) {
            job_complete(cc, j,
                         "TRYAGAIN too many writes waiting to be applied; the write was "
                         "not applied");
        } else if (rc < 0) {
            snprintf(err, sizeof err, "TRYAGAIN the write could not be proposed: %s",
                     strerror(-rc));
            job_complete(cc, j, err);
        } else {
            j->index = rc == 0 ? index : 0;
            if (rc == 1)
                j->fence_term = akv_cluster_term(cc->cl);
        }
    }
    akv_buf_fini(&b);
    return 0;
}

/* ------------------------------------------------------------------------
 * Applying.
 */

int akv_cmd_cluster_entry_ok(const struct akv_cmd *c, size_t argc, int exec)
{
    if (!c || (c->arity > 0 && argc != (size_t)c->arity) ||
        (c->arity < 0 && argc < (size_t)-c->arity) || (c->flags & AKV_CMD_SLOW))
        return 0;
    if (c->flags & AKV_CMD_WRITE)
        return 1;
    return exec && ((c->flags & AKV_CMD_READONLY) || c->handler == akv_cmd_do_select ||
                    c->handler == akv_cmd_do_ping || c->handler == akv_cmd_do_echo);
}

/* Whether every command of CMDS entry e may run from it. */
static int entry_cmds_ok(const struct akv_entry *e)
{
    const uint8_t *p = e->cmds;

    for (uint32_t i = 0; i < e->ncmds; i++) {
        uint32_t argc;
        const uint8_t *args;
        const char *name;
        size_t len;
        p = akv_entry_cmd(p, &argc, &args);
        (void)akv_entry_arg(args, &name, &len);
        if (!akv_cmd_cluster_entry_ok(akv_cmd_lookup(name, len), argc,
                                      (e->flags & AKV_ENTRY_EXEC) != 0))
            return 0;
    }
    return 1;
}

/* Runs one command of an entry (in_exec: of a transaction's); its reply
 * goes to out. */
static int run_one(struct akv_cmd_env *env, struct akv_session *sess, const uint8_t *p, int in_exec,
                   struct akv_buf *out, const uint8_t **next)
{
    struct akv_slice argv[64], *av = argv;
    uint32_t argc;
    const uint8_t *args;
    const struct akv_cmd *c;
    int rc;

    *next = akv_entry_cmd(p, &argc, &args);
    if (argc > 64) {
        av = malloc(argc * sizeof(*av));
        if (!av)
            return -ENOMEM;
    }
    for (uint32_t i = 0; i < argc; i++) {
        const char *s;
        size_t n;
        args = akv_entry_arg(args, &s, &n);
        av[i] = (struct akv_slice){s, n};
    }
    c = akv_cmd_lookup(av[0].p, av[0].len);
    if (!c) {
        rc = akv_reply_error(out, "ERR unknown command in a log entry");
    } else if (!akv_cmd_cluster_entry_ok(c, argc, in_exec)) {
        rc = akv_reply_errorf(out, "ERR %s cannot run from a log entry", c->name);
    } else {
        struct akv_cmd_ctx sub = {.env = env, .argc = argc, .argv = av, .out = out, .sess = sess};
        rc = c->handler(&sub);
        if (sub.job) {
            /* Only loop-thread commands are proposed; never happens. */
            sub.job->finish(sub.job, NULL);
        }
    }
    if (av != argv)
        free(av);
    return rc;
}

/* Whether every WATCHed key is as the entry says. */
static int watch_holds(struct akv_cmd_env *env, const struct akv_entry *e)
{
    const uint8_t *p = e->watch;

    for (uint32_t i = 0; i < e->nwatch; i++) {
        struct akv_entry_watch w;
        struct akv_store_found f;
        int st;
        p = akv_entry_watch_next(p, &w);
        if (w.db >= env->ndbs)
            return 0;
        st = akv_store_find(env->dbs[w.db], w.key, w.klen, &f);
        if ((st == AKV_STORE_LIVE) != w.present)
            return 0;
        if (st == AKV_STORE_LIVE &&
            (f.vlen != w.vlen || memcmp(f.val, w.val, w.vlen) != 0 || f.expire != w.expire))
            return 0;
    }
    return 1;
}

/* Runs the commands of CMDS entry e; the replies go to out, and the
 * database the session ends in (a transaction may SELECT) to *db. */
static void apply_cmds(struct akv_cmd_env *env, const struct akv_entry *e, struct akv_buf *out,
                       int *db)
{
    struct akv_session sess;
    const uint8_t *p = e->cmds;

    akv_cmd_session_init(&sess, 0, "cluster");
    sess.authenticated = 1;
    sess.db = e->db < env->ndbs ? (int)e->db : 0;
    sess.resp = e->resp == 3 ? 3 : 2;
    if (!(e->flags & AKV_ENTRY_EXEC)) {
        (void)run_one(env, &sess, p, 0, out, &p);
    } else if (!watch_holds(env, e)) {
        (void)akv_reply_null_array(out, sess.resp);
    } else {
        (void)akv_reply_array(out, e->ncmds);
        env->in_exec = 1;
        for (uint32_t i = 0; i < e->ncmds; i++)
            if (run_one(env, &sess, p, 1, out, &p) < 0)
                break;
        env->in_exec = 0;
    }
    *db = sess.db;
    akv_cmd_session_fini(env, &sess);
}

static void apply_expired(struct akv_cmd_env *env, const struct akv_entry *e)
{
    const uint8_t *p = e->keys;

    for (uint32_t i = 0; i < e->nkeys; i++) {
        uint32_t db;
        const char *key;
        size_t klen;
        uint64_t expire;
        struct akv_store_found f;
        p = akv_entry_key_next(p, &db, &key, &klen, &expire);
        if (db >= env->ndbs)
            continue;
        /* Still the same expiry time (not set again since), and due. */
        if (akv_store_find(env->dbs[db], key, klen, &f) == AKV_STORE_EXPIRED &&
            f.expire == expire && akv_cmd_key_del(env, db, key, klen) == 1)
            env->stats.expired_keys++;
    }
}

/* An entry of term term was applied. When the term is new, a forwarded
 * write whose entry, if it exists, is of an earlier term and was not
 * applied never will be: terms never go down along the log, and the
 * leader of that term can no longer commit anything. The scan is once per
 * term, not per entry. (A write whose index another entry took is the
 * cron's: akv_cmd_cluster_cron.) */
static void settle(struct akv_cmd_cluster *cc, uint64_t term)
{
    if (!cc || term <= cc->term_applied)
        return;
    cc->term_applied = term;
    for (struct cl_job *j = cc->pending, *next; j; j = next) {
        next = j->next;
        if (j->kind == CL_WRITE && j->index == 0 && j->fence_term != 0 && term > j->fence_term)
            job_complete(cc, j,
                         "TRYAGAIN the leader was lost before the write was committed; "
                         "it was not applied");
    }
}

static void hook_apply(void *arg, uint64_t index, const struct akv_entry *e)
{
    struct akv_cmd_env *env = arg;
    struct akv_cmd_cluster *cc = env->cluster;
    struct cl_job *mine = NULL;
    struct akv_buf sink;
    uint64_t saved = env->now_ms;
    int db;

    if (e->kind != AKV_ENTRY_CMDS && e->kind != AKV_ENTRY_EXPIRED) {
        settle(cc, e->term);
        return;
    }
    if (cc && e->origin == akv_cmd_cluster_self(env))
        mine = job_find(cc, e->req);
    if (mine && mine->done)
        mine = NULL;
    akv_buf_init(&sink);
    env->applying = 1;
    env->now_ms = e->now_ms;
    if (e->kind == AKV_ENTRY_CMDS)
        apply_cmds(env, e, mine ? &mine->reply : &sink, mine ? &mine->db : &db);
    else if (e->kind == AKV_ENTRY_EXPIRED) {
        apply_expired(env, e);
        if (cc && e->origin == akv_cmd_cluster_self(env))
            cc->expired_inflight_until = 0;
    }
    env->now_ms = saved;
    env->applying = 0;
    env->cluster_applied = index;
    akv_buf_fini(&sink);
    if (mine) {
        mine->index = index;
        job_complete(cc, mine, NULL);
    }
    settle(cc, e->term);
    /* A job whose index has been applied without it lost its place: the
     * cron answers it (a scan of every job here would cost each entry
     * the number of waiting writes). Reads waiting for this index are
     * woken by the cluster's check of the applied index (hook_changed). */
}

/* ------------------------------------------------------------------------
 * Snapshots: PUT and PAYLOAD records (aof.h) of every entry of every
 * database, expired ones included (their deletion is a later entry).
 */

struct snap {
    uint32_t ndbs;
    struct akv_store **dbs;
    struct akv_store_snap *snaps;
};

static int hook_snap_take(void *arg, void **state)
{
    struct akv_cmd_env *env = arg;
    struct snap *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->ndbs = env->ndbs;
    s->dbs = calloc(env->ndbs, sizeof(*s->dbs));
    s->snaps = calloc(env->ndbs, sizeof(*s->snaps));
    if (!s->dbs || !s->snaps) {
        free(s->dbs);
        free(s->snaps);
        free(s);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < env->ndbs; i++) {
        s->dbs[i] = env->dbs[i];
        akv_store_snap_take(s->dbs[i], &s->snaps[i]);
        s->snaps[i].now_ms = 0; /* every entry, expired or not */
    }
    *state = s;
    return 0;
}

struct snap_out {
    struct snap *s;
    uint32_t db;
    struct akv_buf *out;
};

static int snap_block(void *arg, const struct akv_store_block *b)
{
    struct snap_out *o = arg;

    for (size_t i = 0; i < b->n; i++) {
        struct akv_aof_record rec;
        size_t sz;
        if (!b->visible[i])
            continue;
        akv_persist_row_record(o->s->dbs[o->db], &o->s->snaps[o->db], b, i, o->db, &rec);
        sz = akv_aof_rec_size(&rec);
        if (akv_buf_reserve(o->out, sz) < 0)
            return -ENOMEM;
        akv_aof_rec_encode(o->out->p + o->out->len, &rec);
        o->out->len += sz;
    }
    return 0;
}

static int hook_snap_write(void *arg, void *state, struct akv_buf *out)
{
    struct snap *s = state;
    struct snap_out o = {s, 0, out};
    int rc = 0;

    (void)arg;
    if (akv_buf_reserve(out, AKV_AOF_FILE_HEADER) < 0)
        return -ENOMEM;
    akv_aof_file_header(out->p + out->len);
    out->len += AKV_AOF_FILE_HEADER;
    for (o.db = 0; o.db < s->ndbs && rc == 0; o.db++)
        rc = akv_store_scan(s->dbs[o.db], &s->snaps[o.db], snap_block, &o);
    return rc;
}

static void hook_snap_release(void *arg, void *state)
{
    struct akv_cmd_env *env = arg;
    struct snap *s = state;

    if (!s)
        return;
    for (uint32_t i = 0; i < s->ndbs; i++)
        akv_store_snap_release(s->dbs[i], &s->snaps[i]);
    free(s->dbs);
    free(s->snaps);
    free(s);
    akv_cmd_reap(env, 0);
}

static int restore_record(void *arg, const struct akv_aof_record *r)
{
    struct akv_cmd_env *env = arg;
    char err[256];

    if ((r->type != AKV_AOF_PUT && r->type != AKV_AOF_PAYLOAD) || r->db >= env->ndbs)
        return -EBADMSG;
    env->cluster->restore_records++;
    if (akv_store_put_ex(env->dbs[r->db], r->key, r->klen, r->val, r->vlen, r->expire,
                         r->type == AKV_AOF_PAYLOAD ? AKV_STORE_PAYLOAD : 0, err, sizeof err) < 0) {
        akv_log(AKV_LOG_WARNING, "cluster: snapshot entry not restored: %s", err);
        return -EBADMSG;
    }
    return 0;
}

/* The cluster state of env, made if there is none yet: raft_start may
 * restore a snapshot before akv_cmd_cluster_attach. NULL: no memory. */
static struct akv_cmd_cluster *cc_get(struct akv_cmd_env *env)
{
    if (!env->cluster) {
        env->cluster = calloc(1, sizeof(*env->cluster));
        if (env->cluster)
            env->cluster->pending_tail = &env->cluster->pending;
    }
    return env->cluster;
}

static int hook_restore_begin(void *arg, const void *buf, size_t len)
{
    struct akv_cmd_env *env = arg;
    struct akv_cmd_cluster *cc = cc_get(env);
    struct akv_session sess;
    struct akv_buf sink;
    struct akv_slice fa = {"FLUSHALL", 8};
    struct akv_cmd_ctx ctx;

    if (!cc)
        return -ENOMEM;
    /* Every database emptied (the old stores are freed off the loop), and
     * clients get -LOADING until the snapshot and what follows it are in. */
    akv_cmd_session_init(&sess, 0, "cluster");
    akv_buf_init(&sink);
    ctx = (struct akv_cmd_ctx){.env = env, .argc = 1, .argv = &fa, .out = &sink, .sess = &sess};
    env->applying = 1;
    (void)akv_cmd_do_flushall(&ctx);
    env->applying = 0;
    akv_buf_fini(&sink);
    akv_cmd_session_fini(env, &sess);
    akv_aof_parser_init(&cc->restore, buf, len);
    cc->restore_records = 0;
    env->loading = 1;
    /* A write of this node whose entry the snapshot may hold can no longer
     * be matched by its tag: known index or forwarded, it is uncertain. */
    for (struct cl_job *j = cc->pending, *next; j; j = next) {
        next = j->next;
        if (j->kind == CL_WRITE && (j->index != 0 || j->fence_term != 0))
            job_complete(cc, j,
                         "TIMEOUT the node caught up from a snapshot; the write may or "
                         "may not have been applied");
    }
    return 0;
}

static int hook_restore_step(void *arg, unsigned budget_us)
{
    struct akv_cmd_env *env = arg;
    struct akv_cmd_cluster *cc = env->cluster;
    uint64_t t0 = now_ns(), budget = (uint64_t)budget_us * 1000u;
    int rc;

    do {
        rc = akv_aof_parse_step(&cc->restore, 64, restore_record, env);
        if (rc != 0)
            return -EBADMSG;
        if (cc->restore.done)
            return cc->restore.res.status == AKV_AOF_OK ? 0 : -EBADMSG;
    } while (now_ns() - t0 < budget);
    return 1;
}

static void hook_restore_end(void *arg)
{
    struct akv_cmd_env *env = arg;

    env->loading = 0;
    if (env->pause_changed)
        env->pause_changed(env);
}

/* ------------------------------------------------------------------------
 * Reads, roles, the loop's periodic work.
 */

static void on_round(void *arg, uint64_t token, int status, uint64_t index, const char *msg);

/* Starts read round rounds_started + 1 (every ticket up to it waits for
 * it). Never from a raft callback: the library may be in the middle of a
 * change of role (a barrier fails while it steps down) and must not be
 * called back into; on_round leaves the next round to the flush. */
static void round_start(struct akv_cmd_env *env)
{
    struct akv_cmd_cluster *cc = env->cluster;

    cc->round_wanted = 0;
    cc->rounds_started++;
    cc->round_out = 1;
    if (akv_cluster_read_index(cc->cl, cc->rounds_started, on_round, env) < 0) {
        cc->round_out = 0;
        cc->round_fail = cc->rounds_started;
    }
}

static void on_round(void *arg, uint64_t token, int status, uint64_t index, const char *msg)
{
    struct akv_cmd_env *env = arg;
    struct akv_cmd_cluster *cc = env->cluster;

    (void)msg;
    cc->round_out = 0;
    if (status == 0) {
        cc->rounds_done = token;
        if (index > cc->done_index)
            cc->done_index = index;
    } else {
        cc->round_fail = token;
    }
    if (cc->round_wanted)
        akv_cluster_defer(cc->cl); /* the next round, from akv_cmd_cluster_flush */
    if (env->pause_changed)
        env->pause_changed(env);
}

int akv_cmd_cluster_hold(struct akv_cmd_env *env, struct akv_session *s, const struct akv_cmd *c)
{
    struct akv_cmd_cluster *cc = env->cluster;

    /* A read, or the EXEC of a transaction that only reads (its queued
     * reads run then); not a command being queued. */
    if (!cc || s->cl_mode != AKV_CONSISTENCY_LINEARIZABLE || !c)
        return 0;
    if (akv_cmd_multi_active(s) ? c->handler != akv_cmd_do_exec || akv_cmd_multi_writes(s)
                                : !(c->flags & AKV_CMD_READONLY))
        return 0;
    if (s->cl_ticket == 0) {
        s->cl_ticket = cc->rounds_started + 1;
        if (cc->round_out)
            cc->round_wanted = 1;
        else
            round_start(env);
    }
    if (cc->rounds_done >= s->cl_ticket && akv_cluster_applied(cc->cl) >= cc->done_index) {
        s->cl_ticket = 0;
        return 0;
    }
    if (cc->round_fail >= s->cl_ticket && cc->rounds_done < s->cl_ticket) {
        s->cl_ticket = 0;
        s->cl_read_failed = 1;
        return 0;
    }
    return 1;
}

void akv_cmd_cluster_cron(struct akv_cmd_env *env)
{
    struct akv_cmd_cluster *cc = env->cluster;
    uint64_t now = mono_ms();
    char err[200];

    if (!cc)
        return;
    for (struct cl_job *j = cc->pending, *next; j; j = next) {
        next = j->next;
        if (j->kind == CL_WRITE && j->index != 0 && j->index <= akv_cluster_applied(cc->cl)) {
            /* Another entry was applied at its index. */
            job_complete(cc, j,
                         "TRYAGAIN the write lost its place in the log to a change of "
                         "leader; it was not applied");
        } else if (now >= j->deadline_ms) {
            if (j->kind == CL_WRITE)
                snprintf(err, sizeof err,
                         "TIMEOUT the write was not confirmed within cluster-write-timeout "
                         "(%d ms); it may or may not have been applied",
                         env->config->cluster_write_timeout);
            else
                snprintf(err, sizeof err, "TIMEOUT no answer from the cluster within %d ms",
                         env->config->cluster_write_timeout);
            job_complete(cc, j, err);
        }
    }
}

static void hook_changed(void *arg)
{
    struct akv_cmd_env *env = arg;

    if (!env->cluster || !env->cluster->cl)
        return;
    env->cluster_applied = akv_cluster_applied(env->cluster->cl);
    if (env->pause_changed)
        env->pause_changed(env);
}

static void hook_flush(void *arg)
{
    akv_cmd_cluster_flush(arg);
}

uint64_t akv_cmd_cluster_self(const struct akv_cmd_env *env)
{
    return (uint64_t)env->config->cluster_id;
}

void akv_cmd_cluster_hooks(struct akv_cmd_env *env, struct akv_cluster_hooks *h)
{
    *h = (struct akv_cluster_hooks){
        .arg = env,
        .apply = hook_apply,
        .snap_take = hook_snap_take,
        .snap_write = hook_snap_write,
        .snap_release = hook_snap_release,
        .restore_begin = hook_restore_begin,
        .restore_step = hook_restore_step,
        .restore_end = hook_restore_end,
        .changed = hook_changed,
        .flush = hook_flush,
    };
}

int akv_cmd_cluster_attach(struct akv_cmd_env *env, struct akv_cluster *cl)
{
    struct akv_cmd_cluster *cc = cc_get(env);

    if (!cc)
        return -ENOMEM;
    cc->cl = cl;
    return 0;
}

void akv_cmd_cluster_abort(struct akv_cmd_env *env)
{
    struct akv_cmd_cluster *cc = env->cluster;
    struct cl_job *j;

    if (!cc)
        return;
    cc->stopping = 1;
    while ((j = cc->pending))
        job_complete(cc, j,
                     "TIMEOUT the server is shutting down; the write may or may not "
                     "have been applied");
    while ((j = cc->finished)) {
        job_unlink(j);
        j->base.pool.done(&j->base.pool);
    }
}

void akv_cmd_cluster_close(struct akv_cmd_env *env)
{
    if (env->cluster)
        akv_cluster_close(env->cluster->cl, NULL, NULL);
}

void akv_cmd_cluster_detach(struct akv_cmd_env *env)
{
    if (!env->cluster)
        return;
    akv_cmd_cluster_abort(env);
    free(env->cluster);
    env->cluster = NULL;
}

/* The most keys one EXPIRED entry names. */
#define EXPIRED_MAX 256

struct due_out {
    struct akv_buf *b;
    uint32_t db;
    int rc;
};

static int due_put(void *arg, const char *key, size_t klen, uint64_t expire)
{
    struct due_out *d = arg;

    if (akv_entry_put_u32(d->b, d->db) < 0 || akv_entry_put_bytes(d->b, key, klen) < 0 ||
        akv_entry_put_u64(d->b, expire) < 0)
        d->rc = -ENOMEM;
    return d->rc;
}

/* The leader's expiry cycle: proposes the deletion of up to EXPIRED_MAX
 * due keys as one entry, and no more until it is applied (or a second
 * has passed). Other nodes do nothing. */
int akv_cmd_cluster_expire_cycle(struct akv_cmd_env *env)
{
    struct akv_cmd_cluster *cc = env->cluster;
    struct akv_buf b;
    uint32_t n = 0;
    size_t at;
    uint64_t now = mono_ms(), idx;
    int rc;

    if (!akv_cluster_is_leader(cc->cl) || now < cc->expired_inflight_until)
        return 0;
    akv_cmd_clock(env); /* what is due is judged by the wall clock now */
    akv_buf_init(&b);
    rc = akv_entry_put_head(&b, AKV_ENTRY_EXPIRED, 0, akv_cmd_cluster_self(env), 0, 0);
    at = b.len;
    rc = rc ? rc : akv_entry_put_u32(&b, 0);
    for (uint32_t db = 0; db < env->ndbs && rc == 0 && n < EXPIRED_MAX; db++) {
        /* The due entries, without deleting any here. */
        struct due_out d = {&b, db, 0};
        n += (uint32_t)akv_store_due(env->dbs[db], EXPIRED_MAX - n, due_put, &d);
        rc = d.rc;
    }
    if (rc == 0 && n > 0) {
        for (int i = 0; i < 4; i++)
            b.p[at + (size_t)i] = (uint8_t)(n >> (8 * i));
        if (akv_cluster_propose(cc->cl, b.p, b.len, &idx, 0, NULL, NULL) == 0)
            cc->expired_inflight_until = now + 1000; /* until applied, or a second */
    }
    akv_buf_fini(&b);
    return 0;
}

/* ------------------------------------------------------------------------
 * Commands.
 */

static int not_cluster(struct akv_cmd_ctx *ctx)
{
    return akv_reply_error(ctx->out, "ERR This instance has cluster support disabled");
}

static void on_admin(void *arg, uint64_t token, int status, uint64_t index, const char *msg)
{
    struct akv_cmd_env *env = arg;
    struct akv_cmd_cluster *cc = env->cluster;
    struct cl_job *j = cc ? job_find(cc, token) : NULL;
    char line[600];

    if (!j || j->done)
        return;
    if (status != 0) {
        snprintf(line, sizeof line, "%s",
                 msg && *msg ? msg : "TRYAGAIN no leader yet; nothing was changed");
        job_complete(cc, j, line);
        return;
    }
    if (j->kind == CL_READINDEX)
        (void)akv_reply_int(&j->reply, (int64_t)index);
    else
        (void)akv_reply_status(&j->reply, msg && *msg ? msg : "OK");
    job_complete(cc, j, NULL);
}

/* A job answered by on_admin; its token is returned in *token. */
static struct cl_job *admin_job(struct akv_cmd_ctx *ctx, enum cl_kind kind)
{
    struct akv_cmd_cluster *cc = ctx->env->cluster;
    struct cl_job *j = calloc(1, sizeof(*j));

    if (!j)
        return NULL;
    j->env = ctx->env;
    j->sess = ctx->sess;
    j->kind = kind;
    j->req = ++cc->next_req;
    j->deadline_ms = mono_ms() + (uint64_t)ctx->env->config->cluster_write_timeout;
    akv_buf_init(&j->reply);
    j->base.finish = cl_finish;
    /* Pending before the request starts: its answer may come at once. */
    job_pend(cc, j);
    return j;
}

/* j's request has been started with result rc: on a failure, replies
 * it instead. */
static int admin_start(struct akv_cmd_ctx *ctx, struct cl_job *j, int rc)
{
    if (rc < 0) {
        job_unlink(j);
        free(j);
        if (rc == -ENOMEM)
            return rc;
        return akv_reply_error(ctx->out, rc == AKV_CLUSTER_NOLEADER
                                             ? "TRYAGAIN no leader yet; nothing was changed"
                                             : "ERR the cluster is shutting down");
    }
    ctx->job = &j->base;
    return 0;
}

static int parse_id(const struct akv_slice *a, uint64_t *id)
{
    return parse_u64(a, id) == 0 && *id > 0 ? 0 : -1;
}

static int cluster_info(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_cluster_info i;
    struct akv_buf b;
    int rc;

    akv_cluster_info(env->cluster->cl, &i);
    akv_buf_init(&b);
    rc = akv_buf_printf(&b,
                        "cluster_enabled:1\r\n"
                        "cluster_state:%s\r\n"
                        "cluster_my_id:%" PRIu64 "\r\n"
                        "cluster_role:%s\r\n"
                        "cluster_leader_id:%" PRIu64 "\r\n"
                        "cluster_leader_addr:%s\r\n"
                        "cluster_leader_raft_addr:%s\r\n"
                        "cluster_term:%" PRIu64 "\r\n"
                        "cluster_commit_index:%" PRIu64 "\r\n"
                        "cluster_applied_index:%" PRIu64 "\r\n"
                        "cluster_last_index:%" PRIu64 "\r\n"
                        "cluster_snapshot_index:%" PRIu64 "\r\n"
                        "cluster_known_nodes:%u\r\n"
                        "cluster_voters:%u\r\n"
                        "cluster_joined:%d\r\n"
                        "cluster_loading:%d\r\n"
                        "cluster_entries_applied:%" PRIu64 "\r\n"
                        "cluster_snapshots_taken:%" PRIu64 "\r\n"
                        "cluster_snapshots_restored:%" PRIu64 "\r\n"
                        "cluster_raft_addr:%s\r\n"
                        "cluster_dir:%s\r\n",
                        i.leader_id ? "ok" : "fail", i.id, akv_cluster_role_name(i.role),
                        i.leader_id, i.leader_client, i.leader_raft, i.term, i.commit_index,
                        i.applied_index, i.last_index, i.snapshot_index, i.nodes, i.voters,
                        i.joined, i.loading, i.entries_applied, i.snapshots_taken,
                        i.snapshots_restored, i.raft_addr, i.dir);
    if (rc == 0)
        rc = akv_reply_verbatim(ctx->out, ctx->sess->resp, b.p, b.len);
    akv_buf_fini(&b);
    return rc;
}

static int cluster_nodes(struct akv_cmd_ctx *ctx)
{
    struct akv_cluster_node nodes[64];
    size_t n = akv_cluster_nodes(ctx->env->cluster->cl, nodes, 64);
    struct akv_buf b;
    int rc = 0;

    akv_buf_init(&b);
    for (size_t i = 0; i < n && i < 64 && rc == 0; i++) {
        const struct akv_cluster_node *x = &nodes[i];
        char contact[24];
        if (x->last_contact_ms < 0)
            snprintf(contact, sizeof contact, "-");
        else
            snprintf(contact, sizeof contact, "%" PRId64, x->last_contact_ms);
        rc = akv_buf_printf(&b, "%" PRIu64 " %s %s %s%s%s %" PRIu64 " %s\n", x->id,
                            x->client_addr[0] ? x->client_addr : "-", x->raft_addr,
                            x->self ? "myself," : "", x->leader ? "leader" : "follower",
                            x->voter ? ",voter" : ",standby", x->match_index, contact);
    }
    if (rc == 0)
        rc = akv_reply_verbatim(ctx->out, ctx->sess->resp, b.p, b.len);
    akv_buf_fini(&b);
    return rc;
}

/* Whether addr is host:port with a host and a port in 1..65535 (a bad
 * one would stay in the configuration as a spare that never answers). */
static int addr_ok(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    char *end;
    unsigned long port;

    if (!colon || colon == addr || colon[1] < '0' || colon[1] > '9')
        return 0;
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && port > 0 && port < 65536;
}

static int cluster_change(struct akv_cmd_ctx *ctx, enum akv_cluster_change what)
{
    struct akv_cmd_env *env = ctx->env;
    uint64_t id = 0;
    char addr[128] = "";
    struct cl_job *j;

    if (what == AKV_CLUSTER_TRANSFER && ctx->argc == 2) {
        id = 0; /* the library picks the most up-to-date voter */
    } else if (ctx->argc < 3 || parse_id(&ctx->argv[2], &id) < 0) {
        return akv_reply_error(ctx->out, "ERR node id must be a positive integer");
    }
    if (what == AKV_CLUSTER_ADD) {
        if (ctx->argc != 4 && ctx->argc != 7)
            return reply_wrong_arity(ctx);
        if (ctx->argv[3].len == 0 || ctx->argv[3].len >= sizeof addr)
            return akv_reply_error(ctx->out, "ERR address must be host:port");
        memcpy(addr, ctx->argv[3].p, ctx->argv[3].len);
        if (!addr_ok(addr))
            return akv_reply_error(ctx->out, "ERR address must be host:port");
        if (ctx->argc == 7) {
            char hex[2][24];
            uint64_t meta, data;
            if (!arg_is(&ctx->argv[4], "VECTORS") || ctx->argv[5].len >= 24 ||
                ctx->argv[6].len >= 24)
                return reply_syntax(ctx);
            memcpy(hex[0], ctx->argv[5].p, ctx->argv[5].len);
            hex[0][ctx->argv[5].len] = '\0';
            memcpy(hex[1], ctx->argv[6].p, ctx->argv[6].len);
            hex[1][ctx->argv[6].len] = '\0';
            meta = strtoull(hex[0], NULL, 16);
            data = strtoull(hex[1], NULL, 16);
            what = AKV_CLUSTER_JOIN;
            if (!akv_cluster_vocab_ok(env->cluster->cl, meta, data))
                return akv_reply_error(
                    ctx->out, "ERR the joining node's vectors are not the cluster's (checksums "
                              "differ): every node must use the same vectors file");
        }
    } else if (ctx->argc != 3 && !(what == AKV_CLUSTER_TRANSFER && ctx->argc == 2)) {
        return reply_wrong_arity(ctx);
    }
    j = admin_job(ctx, CL_CHANGE);
    if (!j)
        return -ENOMEM;
    return admin_start(ctx, j,
                       akv_cluster_change(env->cluster->cl, what, id, addr, j->req, on_admin, env));
}

static int cluster_propose(struct akv_cmd_ctx *ctx)
{
    struct akv_entry e;
    uint64_t index;
    int rc;

    if (ctx->argc != 3 && ctx->argc != 4)
        return reply_wrong_arity(ctx);
    if (akv_entry_decode(ctx->argv[2].p, ctx->argv[2].len, &e) < 0)
        return akv_reply_error(ctx->out, "ERR damaged log entry");
    if (e.kind == AKV_ENTRY_CMDS && !entry_cmds_ok(&e))
        return akv_reply_error(ctx->out, "ERR a log entry may only hold writes (and, in a "
                                         "transaction, reads) with a right number of arguments");
    if (!akv_cluster_is_leader(ctx->env->cluster->cl))
        return akv_reply_error(ctx->out, "TRYAGAIN not the leader; the write was not applied");
    if (ctx->argc == 4) {
        /* Appended only in the term the forwarding node knows (cluster.h,
         * AKV_CLUSTER_DOUBT). */
        uint64_t term;
        if (parse_u64(&ctx->argv[3], &term) < 0)
            return akv_reply_error(ctx->out, "ERR term must be an integer");
        if (term != akv_cluster_term(ctx->env->cluster->cl))
            return akv_reply_error(ctx->out, "TRYAGAIN the leader's term changed; the write "
                                             "was not applied");
    }
    rc = akv_cluster_propose(ctx->env->cluster->cl, ctx->argv[2].p, ctx->argv[2].len, &index, 0,
                             NULL, NULL);
    if (rc == 0)
        return akv_reply_int(ctx->out, (int64_t)index);
    if (rc == -ENOMEM)
        return rc;
    if (rc == -EBUSY)
        return akv_reply_error(ctx->out, "TRYAGAIN too many writes waiting to be applied; the "
                                         "write was not applied");
    return akv_reply_error(ctx->out, "TRYAGAIN not the leader; the write was not applied");
}

static int cluster_readindex(struct akv_cmd_ctx *ctx)
{
    struct cl_job *j;

    if (!akv_cluster_is_leader(ctx->env->cluster->cl))
        return akv_reply_error(ctx->out, "TRYAGAIN not the leader");
    j = admin_job(ctx, CL_READINDEX);
    if (!j)
        return -ENOMEM;
    return admin_start(ctx, j,
                       akv_cluster_read_index(ctx->env->cluster->cl, j->req, on_admin, ctx->env));
}

int akv_cmd_do_cluster(struct akv_cmd_ctx *ctx)
{
    const struct akv_slice *sub = &ctx->argv[1];

    if (arg_is(sub, "HELP"))
        return akv_cmd_reply_sub_help(ctx, "CLUSTER");
    if (!ctx->env->cluster) {
        if (arg_is(sub, "INFO"))
            return akv_reply_verbatim(ctx->out, ctx->sess->resp, "cluster_enabled:0\r\n", 19);
        return not_cluster(ctx);
    }
    if (arg_is(sub, "INFO"))
        return cluster_info(ctx);
    if (arg_is(sub, "NODES"))
        return cluster_nodes(ctx);
    if (arg_is(sub, "MYID"))
        return akv_reply_int(ctx->out, (int64_t)akv_cmd_cluster_self(ctx->env));
    if (arg_is(sub, "ADD"))
        return cluster_change(ctx, AKV_CLUSTER_ADD);
    if (arg_is(sub, "REMOVE"))
        return cluster_change(ctx, AKV_CLUSTER_REMOVE);
    if (arg_is(sub, "TRANSFER"))
        return cluster_change(ctx, AKV_CLUSTER_TRANSFER);
    if (arg_is(sub, "PROPOSE"))
        return cluster_propose(ctx);
    if (arg_is(sub, "READINDEX"))
        return cluster_readindex(ctx);
    if (arg_is(sub, "LASTINDEX"))
        return akv_reply_int(ctx->out, (int64_t)ctx->sess->cl_last_index);
    if (arg_is(sub, "APPLIED"))
        return akv_reply_int(ctx->out, (int64_t)ctx->env->cluster_applied);
    {
        char sb[AKV_QUOTE_BUF];
        return akv_reply_errorf(ctx->out, "ERR unknown subcommand '%s'. Try CLUSTER HELP.",
                                show(sub, sb));
    }
}

static int split_host_port(const char *addr, char *host, size_t cap, long *port)
{
    const char *colon = strrchr(addr, ':');
    size_t n;

    if (!colon)
        return -1;
    n = (size_t)(colon - addr);
    if (n >= cap)
        return -1;
    memcpy(host, addr, n);
    host[n] = '\0';
    *port = strtol(colon + 1, NULL, 10);
    return 0;
}

int akv_cmd_do_role(struct akv_cmd_ctx *ctx)
{
    struct akv_cmd_env *env = ctx->env;
    struct akv_cluster_info i;
    char host[128];
    long port = 0;
    int rc;

    if (!env->cluster) {
        rc = akv_reply_array(ctx->out, 3);
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "master");
        rc = rc ? rc : akv_reply_int(ctx->out, 0);
        return rc ? rc : akv_reply_array(ctx->out, 0);
    }
    akv_cluster_info(env->cluster->cl, &i);
    if (i.role == AKV_CLUSTER_LEADER) {
        struct akv_cluster_node nodes[64];
        size_t n = akv_cluster_nodes(env->cluster->cl, nodes, 64), others = 0;
        for (size_t k = 0; k < n && k < 64; k++)
            others += !nodes[k].self;
        rc = akv_reply_array(ctx->out, 3);
        rc = rc ? rc : akv_reply_bulk_str(ctx->out, "master");
        rc = rc ? rc : akv_reply_int(ctx->out, (int64_t)i.applied_index);
        rc = rc ? rc : akv_reply_array(ctx->out, others);
        for (size_t k = 0; k < n && k < 64 && rc == 0; k++) {
            char pb[24];
            if (nodes[k].self)
                continue;
            if (split_host_port(nodes[k].client_addr, host, sizeof host, &port) < 0) {
                snprintf(host, sizeof host, "?");
                port = 0;
            }
            snprintf(pb, sizeof pb, "%ld", port);
            rc = akv_reply_array(ctx->out, 3);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, host);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, pb);
            snprintf(pb, sizeof pb, "%" PRIu64, nodes[k].match_index);
            rc = rc ? rc : akv_reply_bulk_str(ctx->out, pb);
        }
        return rc;
    }
    if (split_host_port(i.leader_client, host, sizeof host, &port) < 0) {
        snprintf(host, sizeof host, "?");
        port = 0;
    }
    rc = akv_reply_array(ctx->out, 5);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, "slave");
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, host);
    rc = rc ? rc : akv_reply_int(ctx->out, port);
    rc = rc ? rc : akv_reply_bulk_str(ctx->out, i.leader_id ? "connected" : "connect");
    return rc ? rc : akv_reply_int(ctx->out, (int64_t)i.applied_index);
}

int akv_cmd_do_consistency(struct akv_cmd_ctx *ctx)
{
    static const char *const names[] = {"ryw", "linearizable", "stale"};

    if (ctx->argc == 1)
        return akv_reply_bulk_str(ctx->out, names[ctx->sess->cl_mode]);
    for (int i = 0; i < 3; i++)
        if (arg_is(&ctx->argv[1], names[i])) {
            ctx->sess->cl_mode = i;
            return akv_reply_status(ctx->out, "OK");
        }
    return akv_reply_error(ctx->out, "ERR CONSISTENCY takes ryw, linearizable or stale");
}

int akv_cmd_do_readonly(struct akv_cmd_ctx *ctx)
{
    ctx->sess->cl_mode = AKV_CONSISTENCY_STALE;
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_do_readwrite(struct akv_cmd_ctx *ctx)
{
    ctx->sess->cl_mode = AKV_CONSISTENCY_RYW;
    return akv_reply_status(ctx->out, "OK");
}

int akv_cmd_cluster_info_replication(struct akv_buf *b, const struct akv_cmd_env *env)
{
    struct akv_cluster_info i;
    struct akv_cluster_node nodes[64];
    size_t n, k, slaves = 0;
    char host[128];
    long port = 0;
    int rc;

    akv_cluster_info(env->cluster->cl, &i);
    n = akv_cluster_nodes(env->cluster->cl, nodes, 64);
    if (i.role == AKV_CLUSTER_LEADER) {
        for (k = 0; k < n && k < 64; k++)
            slaves += !nodes[k].self;
        rc = akv_buf_printf(b, "role:master\r\nconnected_slaves:%zu\r\n", slaves);
        slaves = 0;
        for (k = 0; k < n && k < 64 && rc == 0; k++) {
            if (nodes[k].self)
                continue;
            if (split_host_port(nodes[k].client_addr, host, sizeof host, &port) < 0) {
                snprintf(host, sizeof host, "?");
                port = 0;
            }
            rc = akv_buf_printf(b,
                                "slave%zu:ip=%s,port=%ld,state=%s,offset=%" PRIu64 ",lag=%" PRId64
                                ",id=%" PRIu64 ",match_index=%" PRIu64 "\r\n",
                                slaves++, host, port,
                                nodes[k].last_contact_ms >= 0 &&
                                        nodes[k].last_contact_ms <
                                            2 * env->config->cluster_election_timeout
                                    ? "online"
                                    : "wait_bgsave",
                                nodes[k].match_index,
                                nodes[k].last_contact_ms < 0 ? -1 : nodes[k].last_contact_ms / 1000,
                                nodes[k].id, nodes[k].match_index);
        }
    } else {
        if (split_host_port(i.leader_client, host, sizeof host, &port) < 0) {
            snprintf(host, sizeof host, "%s", "");
            port = 0;
        }
        rc = akv_buf_printf(b,
                            "role:slave\r\n"
                            "master_host:%s\r\n"
                            "master_port:%ld\r\n"
                            "master_link_status:%s\r\n"
                            "master_sync_in_progress:0\r\n"
                            "slave_repl_offset:%" PRIu64 "\r\n"
                            "slave_read_only:1\r\n"
                            "connected_slaves:0\r\n",
                            host, port, i.leader_id ? "up" : "down", i.applied_index);
    }
    if (rc == 0)
        rc = akv_buf_printf(b,
                            "master_replid:%s\r\n"
                            "master_repl_offset:%" PRIu64 "\r\n"
                            "cluster_enabled:1\r\n"
                            "raft_id:%" PRIu64 "\r\n"
                            "raft_role:%s\r\n"
                            "raft_leader_id:%" PRIu64 "\r\n"
                            "raft_term:%" PRIu64 "\r\n"
                            "raft_commit_index:%" PRIu64 "\r\n"
                            "raft_applied_index:%" PRIu64 "\r\n"
                            "raft_last_index:%" PRIu64 "\r\n"
                            "raft_snapshot_index:%" PRIu64 "\r\n"
                            "raft_nodes:%u\r\n"
                            "raft_voters:%u\r\n",
                            env->replid, i.applied_index, i.id, akv_cluster_role_name(i.role),
                            i.leader_id, i.term, i.commit_index, i.applied_index, i.last_index,
                            i.snapshot_index, i.nodes, i.voters);
    return rc;
}

int64_t akv_cmd_cluster_holders(const struct akv_cmd_env *env, uint64_t index)
{
    struct akv_cluster_node nodes[64];
    size_t n;
    int64_t count = 0;

    if (!env->cluster || index == 0)
        return 0;
    n = akv_cluster_nodes(env->cluster->cl, nodes, 64);
    for (size_t k = 0; k < n && k < 64; k++)
        count += !nodes[k].self && nodes[k].match_index >= index;
    return count;
}
