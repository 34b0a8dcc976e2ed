/*
 * cluster.c - a cluster node: the raft library on the daemon's loop, the
 * node table, snapshots' framing, and the connections to the leader.
 *
 * Design
 *   - Raft (libraft) runs on the loop through its libuv backend (raft_uv:
 *     the log, metadata and snapshots in opts->dir; raft_uv_tcp: the
 *     transport on opts->raft_addr). Its state machine is struct raft_fsm
 *     below: apply decodes an entry (entry.h) and hands commands to the
 *     command layer (hooks->apply); the node table (each node's client
 *     address) and the vocabulary identity are applied here.
 *   - The index of the entry being applied is raft_last_applied() + 1: the
 *     library advances last_applied after each apply, in log order.
 *   - Proposals: the leader calls raft_apply. Another node forwards the
 *     entry to the leader's client port (struct fwd: a plain RESP
 *     connection speaking CLUSTER PROPOSE / READINDEX, whose replies are
 *     single lines), and learns the index it was appended at. The client's
 *     reply is not sent from here: the command layer sends it when this
 *     node applies the entry tagged with the client's request.
 *   - Snapshots use the library's asynchronous snapshot (raft_fsm version
 *     3): snapshot() takes store snapshots on the loop (hooks->snap_take),
 *     snapshot_async() serialises them on a libuv work thread, and
 *     snapshot_finalize() frees the bytes and releases the stores. The
 *     bytes are a header (the node table, the vocabulary identity) and
 *     then the command layer's part.
 *   - The loop never applies for long: a snapshot to load is handed to
 *     the command layer, which stores it in slices (restore_step) from an
 *     idle handle, and entries committed meanwhile, or past APPLY_SLICE_NS
 *     of applying in one loop turn (a node catching up), wait in a queue
 *     drained by the same handle. akv_cluster_applied counts what the
 *     store holds.
 *   - A node that joins asks the member at opts->join, over its client
 *     port, to add it (CLUSTER ADD id raft-addr VOCAB meta data) until the
 *     leader has; the leader adds it as a spare, then makes it a voter
 *     (the library catches it up first).
 *   - A timer every TICK_MS notices changes of role and leader (the
 *     library has no callback for them in every version we support),
 *     proposes this node's table entry and, on the leader, the vocabulary
 *     identity, and keeps each node's last contact.
 *
 * Ownership: the struct owns its copies of the options, the node table,
 * the forward connections and every request it started; the raft library
 * owns proposal buffers once raft_apply accepted them.
 *
 * Threading: the loop thread, except fsm_snapshot_async (a libuv work
 * thread), which reads only the snapshot state that fsm_snapshot filled
 * and hooks->snap_write's state.
 */
#include "cluster/cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "cluster/entry.h"
#include "util/log.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define TICK_MS 20
/* fsm_apply applies entries for this long in a loop turn at most; the
 * rest wait in the queue (on_restore_idle). */
#define APPLY_SLICE_NS (2000u * 1000u)
#define RETRY_MS 500 /* between tries of the node entry and the join */
#define ADDR_MAX 127
#define SNAP_MAGIC "AKVCSNP1"
#define FWD_IN_MAX (1u << 20) /* a reply line longer than this is damage */
/* The most bytes of entries a leader holds appended and not yet applied:
 * past it a proposal is refused (-EBUSY) rather than queued in memory
 * (CLUSTER PROPOSE does not wait for its entry to commit). */
#define UNAPPLIED_MAX ((size_t)64 << 20)
/* The library keeps the log in memory from one snapshot to the next, and
 * cluster-snapshot-threshold counts entries: once the entries applied
 * since the last snapshot hold this many bytes, the next snapshot is
 * taken at once and keeps no trailing entries. */
#define LOG_BYTES_MAX ((uint64_t)64 << 20)

struct node {
    uint64_t id;
    char *client;
};

enum fwd_kind { FWD_AUTH, FWD_PROPOSE, FWD_READINDEX, FWD_RELAY, FWD_JOIN };

struct fwd_op {
    struct fwd_op *next;
    enum fwd_kind kind;
    int sent;
    uint64_t term; /* PROPOSE: the term the entry may be appended in */
    uint64_t token;
    akv_cluster_cb cb;
    void *arg;
};

struct fwd {
    struct akv_cluster *c;
    uv_tcp_t tcp;
    uv_connect_t creq;
    int connected, closing, failed;
    uint64_t target; /* the leader's id, or 0 for the join connection */
    char addr[ADDR_MAX + 1];
    struct akv_buf in, unsent;
    struct fwd_op *head, **tail;
    struct fwd_op **tail_op; /* where the last op queued is linked from */
};

struct wreq {
    uv_write_t req;
    char data[];
};

struct queued {
    struct queued *next;
    uint64_t index;
    size_t len;
    char data[];
};

struct snap_state {
    void *app;
    struct akv_buf head;
};

struct change_req {
    struct akv_cluster *c;
    struct raft_change req;
    struct raft_transfer treq;
    enum akv_cluster_change what;
    int stage;
    uint64_t id;
    char addr[ADDR_MAX + 1];
    uint64_t retry_until; /* uv_now ms */
    uint64_t token;
    akv_cluster_cb cb;
    void *arg;
};

struct barrier_req {
    struct akv_cluster *c;
    struct raft_barrier req;
    uint64_t token;
    akv_cluster_cb cb;
    void *arg;
};

struct apply_req {
    struct raft_apply req;
    struct akv_cluster *c;
    int internal; /* a node or vocabulary entry of ours */
};

struct akv_cluster {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    struct akv_cluster_hooks hooks;
    uint64_t id;
    char *raft_addr, *client_addr, *dir, *join;
    const char *const *password; /* the daemon's requirepass, read at each connection */
    uint64_t vocab_meta, vocab_data, vocab_words;
    uint32_t vocab_dim;
    /* Replicated state kept here. */
    struct node *nodes;
    size_t nnodes;
    int vocab_known;
    uint64_t cl_meta, cl_data, cl_words;
    uint32_t cl_dim;
    /* Loop state. */
    uv_timer_t tick;
    int started, closing, handles;
    void (*done)(void *arg);
    void *done_arg;
    struct fwd *fwd, *joinfwd;
    int last_role;
    uint64_t last_leader, last_applied;
    uint64_t last_stamp;
    int node_inflight, join_inflight, joined;
    uint64_t next_node_try, next_join_try, next_vocab_try;
    uv_timer_t defer;
    uv_check_t check;
    struct raft_barrier push;       /* carries the commit index to the followers */
    struct change_req *change_next; /* a membership change's next step */
    /* A snapshot loading in slices, and the entries committed meanwhile. */
    int restoring;
    void *restore_buf;
    size_t restore_len;
    uint64_t restore_t0;
    uv_idle_t restore_idle;
    struct queued *queue, **queue_tail;
    size_t queued;
    uint64_t store_applied; /* the last index the store holds */
    uint64_t apply_ns;      /* spent applying entries in this loop turn (fsm_apply) */
    int push_wanted, push_inflight;
    uint64_t entries_applied, snapshots_taken, snapshots_restored;
    struct snap_state *snap;
    /* last contact per server of the configuration (leader) */
    uint64_t *contact_ms, *contact_match;
    size_t ncontact;
    int fatal;
    uint64_t close_deadline; /* ms: closing waits for the leader's appends until then */
    size_t unapplied;        /* leader: bytes it appended that are not applied yet */
    uint64_t log_bytes;      /* of the entries applied since the last snapshot */
    unsigned snap_threshold, snap_trailing; /* as configured */
    int snap_by_size; /* the library's snapshot settings are lowered (LOG_BYTES_MAX) */
};

static void restore_abandon(struct akv_cluster *c);
static void on_restore_idle(uv_idle_t *h);

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *akv_cluster_role_name(int role)
{
    switch (role) {
    case AKV_CLUSTER_FOLLOWER:
        return "follower";
    case AKV_CLUSTER_CANDIDATE:
        return "candidate";
    case AKV_CLUSTER_LEADER:
        return "leader";
    default:
        return "unavailable";
    }
}

/* ------------------------------------------------------------------------
 * The node table.
 */

static const char *node_client(const struct akv_cluster *c, uint64_t id)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].id == id)
            return c->nodes[i].client;
    return NULL;
}

static int node_set(struct akv_cluster *c, uint64_t id, const char *addr, size_t len)
{
    char *copy;
    struct node *n;

    if (len > ADDR_MAX)
        return -EINVAL;
    copy = strndup(addr, len);
    if (!copy)
        return -ENOMEM;
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].id == id) {
            free(c->nodes[i].client);
            c->nodes[i].client = copy;
            return 0;
        }
    n = realloc(c->nodes, (c->nnodes + 1) * sizeof(*n));
    if (!n) {
        free(copy);
        return -ENOMEM;
    }
    c->nodes = n;
    c->nodes[c->nnodes++] = (struct node){id, copy};
    return 0;
}

static void nodes_clear(struct akv_cluster *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        free(c->nodes[i].client);
    free(c->nodes);
    c->nodes = NULL;
    c->nnodes = 0;
}

static int vocab_matches(const struct akv_cluster *c)
{
    return c->cl_meta == c->vocab_meta && c->cl_data == c->vocab_data;
}

static void vocab_check(struct akv_cluster *c)
{
    char msg[256];

    if (!c->vocab_known || vocab_matches(c) || c->fatal)
        return;
    c->fatal = 1;
    snprintf(msg, sizeof msg,
             "this node's vectors (%" PRIu64 " words, dimension %u, checksums %016" PRIx64
             "/%016" PRIx64 ") are not the cluster's (%" PRIu64 " words, dimension %u, "
             "checksums %016" PRIx64 "/%016" PRIx64 "): every node must use the same vectors",
             c->vocab_words, (unsigned)c->vocab_dim, c->vocab_meta, c->vocab_data, c->cl_words,
             (unsigned)c->cl_dim, c->cl_meta, c->cl_data);
    if (c->hooks.fatal)
        c->hooks.fatal(c->hooks.arg, msg);
}

int akv_cluster_vocab_ok(const struct akv_cluster *c, uint64_t meta, uint64_t data)
{
    if (c->vocab_known)
        return meta == c->cl_meta && data == c->cl_data;
    return meta == c->vocab_meta && data == c->vocab_data;
}

/* ------------------------------------------------------------------------
 * The state machine.
 */

static void apply_entry(struct akv_cluster *c, uint64_t index, const void *base, size_t len);

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct akv_cluster *c = fsm->data;
    uint64_t index = raft_last_applied(&c->raft) + 1;

    *result = NULL;
    if (c->restoring || c->queue || c->apply_ns >= APPLY_SLICE_NS) {
        /* A snapshot is still loading, or this loop turn has applied
         * entries for long enough (a node catching up gets thousands at
         * once): this entry waits its turn, applied from the idle handle
         * in slices of the loop. */
        struct queued *q = malloc(sizeof(*q) + buf->len);
        if (!q) {
            c->fatal = 1;
            if (c->hooks.fatal)
                c->hooks.fatal(c->hooks.arg, "out of memory for a committed entry");
            return 0;
        }
        if (c->started && !c->closing)
            uv_idle_start(&c->restore_idle, on_restore_idle);
        q->next = NULL;
        q->index = index;
        q->len = buf->len;
        memcpy(q->data, buf->base, buf->len);
        *c->queue_tail = q;
        c->queue_tail = &q->next;
        if (!c->queue)
            c->queue = q;
        c->queued++;
        return 0;
    }
    {
        uint64_t t0 = uv_hrtime();
        apply_entry(c, index, buf->base, buf->len);
        c->apply_ns += uv_hrtime() - t0;
    }
    return 0;
}

static void apply_entry(struct akv_cluster *c, uint64_t index, const void *base, size_t len)
{
    struct akv_entry e;
    struct raft_buffer b = {(void *)base, len}, *buf = &b;

    c->entries_applied++;
    c->store_applied = index;
    c->unapplied -= buf->len < c->unapplied ? buf->len : c->unapplied;
    c->log_bytes += buf->len;
    if (c->log_bytes > LOG_BYTES_MAX && !c->snap_by_size) {
        c->snap_by_size = 1;
        raft_set_snapshot_threshold(&c->raft, 1);
        raft_set_snapshot_trailing(&c->raft, 0);
    }
    if (akv_entry_decode(buf->base, buf->len, &e) < 0) {
        akv_log(AKV_LOG_WARNING, "cluster: log entry %" PRIu64 " (%zu bytes) is damaged; skipped",
                index, buf->len);
        return;
    }
    switch (e.kind) {
    case AKV_ENTRY_NODE:
        if (node_set(c, e.origin, e.addr, e.addrlen) < 0)
            akv_log(AKV_LOG_WARNING, "cluster: cannot record node %" PRIu64 "'s address", e.origin);
        break;
    case AKV_ENTRY_VOCAB:
        if (!c->vocab_known) {
            c->vocab_known = 1;
            c->cl_meta = e.vocab_meta;
            c->cl_data = e.vocab_data;
            c->cl_words = e.vocab_words;
            c->cl_dim = e.vocab_dim;
            vocab_check(c);
        }
        break;
    default:
        break;
    }
    /* Every entry: the command layer applies commands, and learns from
     * any entry's term which forwarded writes can no longer be. */
    if (c->hooks.apply)
        c->hooks.apply(c->hooks.arg, index, &e);
    if (e.origin != c->id && raft_state(&c->raft) == RAFT_LEADER) {
        c->push_wanted = 1;
        akv_cluster_defer(c);
    }
}

/* ------------------------------------------------------------------------
 * Loading a snapshot in slices.
 */

static void queue_free(struct akv_cluster *c)
{
    while (c->queue) {
        struct queued *q = c->queue;
        c->queue = q->next;
        free(q);
    }
    c->queue_tail = &c->queue;
    c->queued = 0;
}

static void restore_abandon(struct akv_cluster *c)
{
    if (c->restore_buf)
        raft_free(c->restore_buf);
    c->restore_buf = NULL;
    c->restoring = 0;
    queue_free(c);
    uv_idle_stop(&c->restore_idle);
}

/* One slice: RESTORE_SLICE_US of loading, then of the entries that
 * waited. */
#define RESTORE_SLICE_US 2000

static void on_restore_idle(uv_idle_t *h)
{
    struct akv_cluster *c = h->data;
    uint64_t t0 = uv_hrtime(), budget = RESTORE_SLICE_US * 1000u;

    if (c->restoring) {
        int rc = c->hooks.restore_step(c->hooks.arg, RESTORE_SLICE_US);
        if (rc < 0) {
            restore_abandon(c);
            c->fatal = 1;
            if (c->hooks.fatal)
                c->hooks.fatal(c->hooks.arg, "the snapshot being loaded is damaged");
            return;
        }
        if (rc > 0)
            return;
        c->restoring = 0;
        raft_free(c->restore_buf);
        c->restore_buf = NULL;
        /* The store holds the snapshot: everything before the first entry
         * that waited, or all the library has applied. */
        c->store_applied = c->queue ? c->queue->index - 1 : raft_last_applied(&c->raft);
        akv_log(AKV_LOG_NOTICE,
                "cluster: snapshot loaded in %.0f ms; %zu entries committed meanwhile follow",
                (double)(uv_hrtime() - c->restore_t0) / 1e6, c->queued);
        return;
    }
    while (c->queue && uv_hrtime() - t0 < budget) {
        struct queued *q = c->queue;
        c->queue = q->next;
        if (!c->queue)
            c->queue_tail = &c->queue;
        c->queued--;
        apply_entry(c, q->index, q->data, q->len);
        free(q);
    }
    if (c->queue)
        return;
    uv_idle_stop(&c->restore_idle);
    if (c->hooks.restore_end)
        c->hooks.restore_end(c->hooks.arg);
}

static int put_u32(struct akv_buf *b, uint32_t v)
{
    return akv_entry_put_u32(b, v);
}

static int snap_head(struct akv_cluster *c, struct akv_buf *b)
{
    int rc = akv_buf_append(b, SNAP_MAGIC, 8);

    rc = rc ? rc : akv_entry_put_u8(b, (uint8_t)c->vocab_known);
    rc = rc ? rc : akv_entry_put_u64(b, c->cl_meta);
    rc = rc ? rc : akv_entry_put_u64(b, c->cl_data);
    rc = rc ? rc : akv_entry_put_u64(b, c->cl_words);
    rc = rc ? rc : put_u32(b, c->cl_dim);
    rc = rc ? rc : put_u32(b, (uint32_t)c->nnodes);
    for (size_t i = 0; i < c->nnodes && rc == 0; i++) {
        rc = akv_entry_put_u64(b, c->nodes[i].id);
        rc = rc ? rc : akv_entry_put_bytes(b, c->nodes[i].client, strlen(c->nodes[i].client));
    }
    return rc < 0 ? -ENOMEM : 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct akv_cluster *c = fsm->data;
    struct snap_state *s;
    int rc;

    if (c->snap || c->restoring || c->queue)
        return RAFT_BUSY; /* the store is not whole yet */
    s = calloc(1, sizeof(*s));
    if (!s)
        return RAFT_NOMEM;
    akv_buf_init(&s->head);
    if (snap_head(c, &s->head) < 0 || !(*bufs = raft_malloc(sizeof(**bufs)))) {
        akv_buf_fini(&s->head);
        free(s);
        return RAFT_NOMEM;
    }
    rc = c->hooks.snap_take ? c->hooks.snap_take(c->hooks.arg, &s->app) : 0;
    if (rc < 0) {
        raft_free(*bufs);
        *bufs = NULL;
        akv_buf_fini(&s->head);
        free(s);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = NULL;
    (*bufs)[0].len = 0;
    *n_bufs = 1;
    c->snap = s;
    c->log_bytes = 0;
    return 0;
}

/* A libuv work thread: the bytes of the snapshot fsm_snapshot took. */
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct akv_cluster *c = fsm->data;
    struct snap_state *s = c->snap;
    struct akv_buf out = s->head;
    int rc = 0;

    akv_buf_init(&s->head);
    if (c->hooks.snap_write)
        rc = c->hooks.snap_write(c->hooks.arg, s->app, &out);
    if (rc < 0) {
        akv_buf_fini(&out);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = out.p;
    (*bufs)[0].len = out.len;
    *n_bufs = 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct akv_cluster *c = fsm->data;
    struct snap_state *s = c->snap;

    if (*bufs) {
        free((*bufs)[0].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    if (s) {
        if (c->hooks.snap_release)
            c->hooks.snap_release(c->hooks.arg, s->app);
        akv_buf_fini(&s->head);
        free(s);
        c->snap = NULL;
        c->snapshots_taken++;
    }
    if (c->snap_by_size) {
        c->snap_by_size = 0;
        raft_set_snapshot_threshold(&c->raft, c->snap_threshold);
        raft_set_snapshot_trailing(&c->raft, c->snap_trailing);
    }
    return 0;
}

static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct akv_cluster *c = fsm->data;
    const uint8_t *p = buf->base, *end = p + buf->len;
    uint32_t nn;
    int known, rc;
    struct node *nodes = NULL;
    size_t nnodes = 0;

    if (buf->len < 8 + 1 + 8 * 3 + 4 + 4 || memcmp(p, SNAP_MAGIC, 8) != 0)
        return RAFT_MALFORMED;
    p += 8;
    known = p[0];
    p += 1;
    uint64_t meta = le(p, 8), data = le(p + 8, 8), words = le(p + 16, 8);
    uint32_t dim = (uint32_t)le(p + 24, 4);
    p += 28;
    nn = (uint32_t)le(p, 4);
    p += 4;
    if (nn > 65536)
        return RAFT_MALFORMED;
    nodes = calloc(nn ? nn : 1, sizeof(*nodes));
    if (!nodes)
        return RAFT_NOMEM;
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t len;
        if (end - p < 12)
            goto bad;
        nodes[i].id = le(p, 8);
        len = (uint32_t)le(p + 8, 4);
        p += 12;
        if ((size_t)(end - p) < len || len > ADDR_MAX)
            goto bad;
        nodes[i].client = strndup((const char *)p, len);
        if (!nodes[i].client)
            goto bad;
        nnodes++;
        p += len;
    }
    if (c->restoring || c->queue)
        restore_abandon(c); /* a newer snapshot replaces the one loading */
    rc = c->hooks.restore_begin ? c->hooks.restore_begin(c->hooks.arg, p, (size_t)(end - p)) : 0;
    if (rc < 0)
        goto bad;
    nodes_clear(c);
    c->nodes = nodes;
    c->nnodes = nnodes;
    c->vocab_known = known;
    c->cl_meta = meta;
    c->cl_data = data;
    c->cl_words = words;
    c->cl_dim = dim;
    c->snapshots_restored++;
    c->log_bytes = 0;
    akv_log(AKV_LOG_NOTICE,
            "cluster: loading a snapshot of %zu bytes (in slices; clients get -LOADING)", buf->len);
    /* The store loads in slices from the loop (restore_slice); entries
     * committed meanwhile wait in c->queue. The buffer is ours now. */
    c->restoring = 1;
    c->restore_buf = buf->base;
    c->restore_len = buf->len;
    c->restore_t0 = uv_hrtime();
    if (c->started)
        uv_idle_start(&c->restore_idle, on_restore_idle);
    vocab_check(c);
    return 0;
bad:
    for (size_t i = 0; i < nnodes; i++)
        free(nodes[i].client);
    free(nodes);
    akv_log(AKV_LOG_WARNING, "cluster: a snapshot of %zu bytes is damaged", buf->len);
    return RAFT_MALFORMED;
}

/* ------------------------------------------------------------------------
 * Connections to the leader's (or a member's) client port.
 */

static void fwd_closed(uv_handle_t *h);
static void fwd_fail(struct fwd *f, int status);

static void on_fwd_write(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows as a read error or EOF */
    free(container_of(req, struct wreq, req));
}

static int fwd_send_now(struct fwd *f, const void *p, size_t n)
{
    struct wreq *w = malloc(sizeof(*w) + n);
    uv_buf_t b;
    int rc;

    if (!w)
        return -ENOMEM;
    memcpy(w->data, p, n);
    b = uv_buf_init(w->data, (unsigned)n);
    rc = uv_write(&w->req, (uv_stream_t *)&f->tcp, &b, 1, on_fwd_write);
    if (rc < 0) {
        free(w);
        return rc;
    }
    return 0;
}

/* Appends a RESP array of argc arguments to b. */
static int resp_cmd(struct akv_buf *b, size_t argc, const char *const *argv, const size_t *lens)
{
    if (akv_buf_printf(b, "*%zu\r\n", argc) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < argc; i++)
        if (akv_buf_printf(b, "$%zu\r\n", lens[i]) < 0 || akv_buf_append(b, argv[i], lens[i]) < 0 ||
            akv_buf_append(b, "\r\n", 2) < 0)
            return -ENOMEM;
    return 0;
}

static int fwd_queue(struct fwd *f, enum fwd_kind kind, size_t argc, const char *const *argv,
                     const size_t *lens, uint64_t token, akv_cluster_cb cb, void *arg)
{
    struct fwd_op *op = calloc(1, sizeof(*op));
    struct akv_buf b;
    int rc;

    if (!op)
        return -ENOMEM;
    akv_buf_init(&b);
    rc = resp_cmd(&b, argc, argv, lens);
    if (rc == 0) {
        if (f->connected)
            rc = fwd_send_now(f, b.p, b.len);
        else
            rc = akv_buf_append(&f->unsent, b.p, b.len);
    }
    akv_buf_fini(&b);
    if (rc < 0) {
        free(op);
        return rc < 0 ? rc : -ENOMEM;
    }
    *op = (struct fwd_op){NULL, kind, f->connected, 0, token, cb, arg};
    f->tail_op = f->tail;
    *f->tail = op;
    f->tail = &op->next;
    return 0;
}

static void fwd_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct fwd *f = h->data;

    (void)hint;
    if (akv_buf_reserve(&f->in, 65536) < 0) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(f->in.p + f->in.len, (unsigned)(f->in.cap - f->in.len));
}

static void fwd_reply(struct fwd *f, const char *line, size_t len)
{
    struct fwd_op *op = f->head;
    char msg[512];
    int err = len > 0 && line[0] == '-';

    if (!op)
        return;
    f->head = op->next;
    if (!f->head)
        f->tail = &f->head;
    snprintf(msg, sizeof msg, "%.*s", (int)(len > 0 ? len - 1 : 0), line + (len > 0));
    switch (op->kind) {
    case FWD_AUTH:
        if (err)
            akv_log(AKV_LOG_WARNING, "cluster: node at %s refused our AUTH: %s", f->addr, msg);
        break;
    case FWD_PROPOSE:
    case FWD_READINDEX:
        if (!err && len > 0 && line[0] == ':')
            op->cb(op->arg, op->token, 0, strtoull(line + 1, NULL, 10), NULL);
        else
            op->cb(op->arg, op->token, AKV_CLUSTER_REFUSED, 0, msg);
        break;
    case FWD_RELAY:
    case FWD_JOIN:
        if (op->cb)
            op->cb(op->arg, op->token, err ? AKV_CLUSTER_REFUSED : 0, 0, msg);
        break;
    }
    free(op);
}

static void on_fwd_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fwd *f = s->data;
    size_t at = 0;

    (void)buf;
    if (n < 0) {
        if (n != UV_EOF)
            akv_log(AKV_LOG_VERBOSE, "cluster: connection to %s: %s", f->addr, uv_strerror((int)n));
        fwd_fail(f, -ECONNRESET);
        return;
    }
    f->in.len += (size_t)n;
    for (;;) {
        char *nl = memchr(f->in.p + at, '\n', f->in.len - at);
        size_t len;
        if (!nl)
            break;
        len = (size_t)(nl - (f->in.p + at));
        if (len > 0 && f->in.p[at + len - 1] == '\r')
            len--;
        if (len == 0 || strchr("+-:", f->in.p[at]) == NULL) {
            akv_log(AKV_LOG_WARNING, "cluster: node at %s sent a reply we do not read", f->addr);
            fwd_fail(f, -EPROTO);
            return;
        }
        fwd_reply(f, f->in.p + at, len);
        at = (size_t)(nl - f->in.p) + 1;
        if (f->closing)
            return;
    }
    akv_buf_consume(&f->in, at);
    if (f->in.len > FWD_IN_MAX)
        fwd_fail(f, -EPROTO);
}

static void on_fwd_connect(uv_connect_t *req, int status)
{
    struct fwd *f = req->data;

    if (f->closing)
        return;
    if (status < 0) {
        akv_log(AKV_LOG_VERBOSE, "cluster: cannot connect to %s: %s", f->addr, uv_strerror(status));
        fwd_fail(f, -ENOTCONN);
        return;
    }
    f->connected = 1;
    if (f->unsent.len > 0 && fwd_send_now(f, f->unsent.p, f->unsent.len) < 0) {
        fwd_fail(f, -ENOMEM);
        return;
    }
    akv_buf_consume(&f->unsent, f->unsent.len);
    for (struct fwd_op *op = f->head; op; op = op->next)
        op->sent = 1;
    uv_read_start((uv_stream_t *)&f->tcp, fwd_alloc, on_fwd_read);
}

static int split_addr(const char *addr, char *host, size_t hostcap, int *port)
{
    const char *colon = strrchr(addr, ':');
    size_t hl;

    if (!colon)
        return -EINVAL;
    hl = (size_t)(colon - addr);
    if (hl == 0 || hl >= hostcap)
        return -EINVAL;
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        memcpy(host, addr + 1, hl - 2);
        host[hl - 2] = '\0';
    } else {
        memcpy(host, addr, hl);
        host[hl] = '\0';
    }
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? 0 : -EINVAL;
}

static struct fwd *fwd_open(struct akv_cluster *c, const char *addr, uint64_t target)
{
    struct fwd *f;
    char host[ADDR_MAX + 1];
    int port;
    struct sockaddr_storage sa;

    if (strlen(addr) > ADDR_MAX || split_addr(addr, host, sizeof host, &port) < 0)
        return NULL;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
        return NULL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->c = c;
    f->target = target;
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    akv_buf_init(&f->in);
    akv_buf_init(&f->unsent);
    f->tail = &f->head;
    if (uv_tcp_init(c->loop, &f->tcp) < 0) {
        free(f);
        return NULL;
    }
    c->handles++;
    f->tcp.data = f;
    f->creq.data = f;
    uv_tcp_nodelay(&f->tcp, 1);
    if (uv_tcp_connect(&f->creq, &f->tcp, (struct sockaddr *)&sa, on_fwd_connect) < 0) {
        f->closing = 1;
        uv_close((uv_handle_t *)&f->tcp, fwd_closed);
        return NULL;
    }
    if (c->password && *c->password) {
        const char *argv[2] = {"AUTH", *c->password};
        size_t lens[2] = {4, strlen(*c->password)};
        (void)fwd_queue(f, FWD_AUTH, 2, argv, lens, 0, NULL, NULL);
    }
    return f;
}

static void fwd_closed(uv_handle_t *h)
{
    struct fwd *f = h->data;
    struct akv_cluster *c = f->c;

    akv_buf_fini(&f->in);
    akv_buf_fini(&f->unsent);
    free(f);
    c->handles--;
    if (c->closing && c->handles == 0 && c->done)
        c->done(c->done_arg);
}

/* Closes f and tells every waiting request: a proposal that was sent may
 * still be committed, so its callback is not called (the command layer's
 * timeout answers it); one never sent failed for certain. */
static void fwd_fail(struct fwd *f, int status)
{
    struct akv_cluster *c = f->c;
    struct fwd_op *op;

    if (f->closing)
        return;
    f->closing = 1;
    if (c->fwd == f)
        c->fwd = NULL;
    if (c->joinfwd == f) {
        c->joinfwd = NULL;
        c->join_inflight = 0;
    }
    while ((op = f->head)) {
        f->head = op->next;
        if (op->cb && op->kind == FWD_PROPOSE && op->sent)
            op->cb(op->arg, op->token, AKV_CLUSTER_DOUBT, op->term,
                   "connection to the leader lost");
        else if (op->cb)
            op->cb(op->arg, op->token, op->sent ? status : AKV_CLUSTER_NOLEADER, 0,
                   op->sent ? "TRYAGAIN the connection to the leader was lost; the change "
                              "may or may not have been made"
                            : "TRYAGAIN cannot reach the leader; nothing was changed");
        free(op);
    }
    f->tail = &f->head;
    uv_close((uv_handle_t *)&f->tcp, fwd_closed);
}

/* The connection to the current leader, opened if needed; NULL when no
 * leader (or its client address) is known. */
static struct fwd *leader_fwd(struct akv_cluster *c)
{
    raft_id lid;
    const char *laddr, *client;

    raft_leader(&c->raft, &lid, &laddr);
    if (lid == 0 || lid == c->id)
        return NULL;
    if (c->fwd && c->fwd->target == lid)
        return c->fwd;
    if (c->fwd)
        fwd_fail(c->fwd, -ECONNRESET);
    client = node_client(c, lid);
    if (!client)
        return NULL;
    c->fwd = fwd_open(c, client, lid);
    return c->fwd;
}

/* ------------------------------------------------------------------------
 * Proposals, reads, membership.
 */

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct apply_req *a = container_of(req, struct apply_req, req);

    (void)result;
    if (status != 0 && a->internal)
        akv_log(AKV_LOG_VERBOSE, "cluster: an entry of ours was not committed: %s",
                raft_strerror(status));
    free(a);
}

static int leader_apply(struct akv_cluster *c, const void *buf, size_t len, uint64_t *index,
                        int internal)
{
    struct apply_req *a = calloc(1, sizeof(*a));
    struct raft_buffer rb;
    uint64_t now = wall_ms();
    int rc;

    if (!a)
        return -ENOMEM;
    if (c->unapplied > UNAPPLIED_MAX) {
        free(a);
        return -EBUSY;
    }
    /* raft_uv writes entries back to back and needs each to be a whole
     * number of 8-byte words: pad with zeros (entry.h allows them). */
    rb.len = (len + 7) & ~(size_t)7;
    rb.base = raft_malloc(rb.len);
    if (!rb.base) {
        free(a);
        return -ENOMEM;
    }
    memcpy(rb.base, buf, len);
    memset((char *)rb.base + len, 0, rb.len - len);
    /* The leader's clock, never going back within its term. */
    if (now < c->last_stamp)
        now = c->last_stamp;
    c->last_stamp = now;
    akv_entry_stamp(rb.base, now, c->raft.current_term);
    a->c = c;
    a->internal = internal;
    rc = raft_apply(&c->raft, &a->req, &rb, 1, on_applied);
    if (rc != 0) {
        raft_free(rb.base);
        free(a);
        return rc == RAFT_NOTLEADER ? AKV_CLUSTER_NOLEADER : rc == RAFT_NOMEM ? -ENOMEM : -EIO;
    }
    if (index)
        *index = a->req.index;
    c->unapplied += rb.len;
    return 0;
}

int akv_cluster_propose(struct akv_cluster *c, const void *buf, size_t len, uint64_t *index,
                        uint64_t token, akv_cluster_cb cb, void *arg)
{
    struct fwd *f;
    char term[24];
    const char *argv[4] = {"CLUSTER", "PROPOSE", buf, term};
    size_t lens[4] = {7, 7, len, 0};
    int rc;

    if (c->closing)
        return -ESHUTDOWN;
    if (raft_state(&c->raft) == RAFT_LEADER)
        return leader_apply(c, buf, len, index, 0);
    f = leader_fwd(c);
    if (!f)
        return AKV_CLUSTER_NOLEADER;
    /* The leader appends it only in the term this node knows it to lead
     * (else refuses): if it was appended, its term is this one, which
     * lets this node tell, should the answer never come, when it can no
     * longer be committed (AKV_CLUSTER_DOUBT). */
    lens[3] = (size_t)snprintf(term, sizeof term, "%llu", (unsigned long long)c->raft.current_term);
    rc = fwd_queue(f, FWD_PROPOSE, 4, argv, lens, token, cb, arg);
    if (rc == 0)
        (*f->tail_op)->term = c->raft.current_term;
    return rc < 0 ? rc : 1;
}

static void on_barrier(struct raft_barrier *req, int status)
{
    struct barrier_req *b = container_of(req, struct barrier_req, req);

    /* A follower asking waits for this index: send it the commit index. */
    b->c->push_wanted = 1;
    akv_cluster_defer(b->c);
    b->cb(b->arg, b->token, status == 0 ? 0 : AKV_CLUSTER_REFUSED, status == 0 ? req->index : 0,
          status == 0 ? NULL : "TRYAGAIN leadership lost while confirming it");
    free(b);
}

int akv_cluster_read_index(struct akv_cluster *c, uint64_t token, akv_cluster_cb cb, void *arg)
{
    if (c->closing)
        return -ESHUTDOWN;
    if (raft_state(&c->raft) == RAFT_LEADER) {
        struct barrier_req *b = calloc(1, sizeof(*b));
        int rc;
        if (!b)
            return -ENOMEM;
        *b = (struct barrier_req){.c = c, .token = token, .cb = cb, .arg = arg};
        rc = raft_barrier(&c->raft, &b->req, on_barrier);
        if (rc != 0) {
            free(b);
            return rc == RAFT_NOTLEADER ? AKV_CLUSTER_NOLEADER : -EIO;
        }
        return 0;
    }
    struct fwd *f = leader_fwd(c);
    const char *argv[2] = {"CLUSTER", "READINDEX"};
    size_t lens[2] = {7, 9};
    if (!f)
        return AKV_CLUSTER_NOLEADER;
    return fwd_queue(f, FWD_READINDEX, 2, argv, lens, token, cb, arg);
}

static void change_done(struct change_req *r, int status)
{
    char msg[300];

    if (status == 0) {
        r->cb(r->arg, r->token, 0, 0, NULL);
    } else {
        snprintf(msg, sizeof msg, "%s %s", status == RAFT_NOTLEADER ? "TRYAGAIN" : "ERR",
                 raft_errmsg(&r->c->raft)[0] ? raft_errmsg(&r->c->raft) : raft_strerror(status));
        r->cb(r->arg, r->token, AKV_CLUSTER_REFUSED, 0, msg);
    }
    free(r);
}

static void on_change(struct raft_change *req, int status);

/* The next step of a change whose previous one has been committed: run
 * from the loop (the tick or the deferred callback), not inside the
 * library's callback, and tried again for a while if the library still
 * holds the last change as in progress. */
static void change_step(struct akv_cluster *c)
{
    struct change_req *r = c->change_next;
    int rc;

    if (!r)
        return;
    c->change_next = NULL;
    if (r->stage == 0)
        rc = raft_add(&c->raft, &r->req, r->id, r->addr, on_change);
    else
        rc = raft_assign(&c->raft, &r->req, r->id, RAFT_VOTER, on_change);
    if (rc == RAFT_CANTCHANGE)
        akv_log(AKV_LOG_VERBOSE,
                "cluster: change step %d for node %" PRIu64
                " waits: uncommitted %llu promotee %llu",
                r->stage, r->id, (unsigned long long)c->raft.configuration_uncommitted_index,
                (unsigned long long)c->raft.leader_state.promotee_id);
    if (rc == RAFT_CANTCHANGE && uv_now(c->loop) < r->retry_until) {
        c->change_next = r;
        return;
    }
    if (rc != 0)
        change_done(r, rc);
}

static void on_change(struct raft_change *req, int status)
{
    struct change_req *r = container_of(req, struct change_req, req);
    struct akv_cluster *c = r->c;

    if (status == 0 && !c->closing && r->what != AKV_CLUSTER_REMOVE && r->stage < 1) {
        /* Removed (a node joining again): add it anew; added as a spare:
         * make it a voter (the library first brings its log up to
         * date). */
        r->stage++;
        r->retry_until = uv_now(c->loop) + 5000;
        c->change_next = r;
        akv_cluster_defer(c);
        return;
    }
    if (status == 0)
        akv_log(AKV_LOG_NOTICE, "cluster: node %" PRIu64 " %s", r->id,
                r->what == AKV_CLUSTER_REMOVE ? "removed" : "added as a voter");
    change_done(r, status);
}

static void on_transfer(struct raft_transfer *req)
{
    struct change_req *r = container_of(req, struct change_req, treq);
    raft_id lid;
    const char *laddr;

    raft_leader(&r->c->raft, &lid, &laddr);
    if (lid != 0 && lid != r->c->id)
        change_done(r, 0);
    else {
        r->cb(r->arg, r->token, AKV_CLUSTER_REFUSED, 0, "ERR leadership was not transferred");
        free(r);
    }
}

static const struct raft_server *conf_find(const struct akv_cluster *c, uint64_t id)
{
    for (unsigned i = 0; i < c->raft.configuration.n; i++)
        if (c->raft.configuration.servers[i].id == id)
            return &c->raft.configuration.servers[i];
    return NULL;
}

int akv_cluster_change(struct akv_cluster *c, enum akv_cluster_change what, uint64_t id,
                       const char *addr, uint64_t token, akv_cluster_cb cb, void *arg)
{
    struct change_req *r;
    int rc;

    if (c->closing)
        return -ESHUTDOWN;
    if (raft_state(&c->raft) != RAFT_LEADER) {
        /* Relay the command to the leader; its reply is the answer. */
        struct fwd *f = leader_fwd(c);
        char ids[24];
        const char *names[] = {"ADD", "REMOVE", "TRANSFER", "ADD"};
        char meta[24], data[24];
        const char *argv[7] = {"CLUSTER", names[what], ids, addr, "VECTORS", meta, data};
        size_t lens[7] = {7, strlen(names[what]), 0, addr ? strlen(addr) : 0, 7, 0, 0};
        size_t argc = what == AKV_CLUSTER_JOIN  ? 7
                      : what == AKV_CLUSTER_ADD ? 4
                      : id == 0                 ? 2 /* TRANSFER: the leader picks */
                                                : 3;
        lens[2] = (size_t)snprintf(ids, sizeof ids, "%" PRIu64, id);
        lens[5] = (size_t)snprintf(meta, sizeof meta, "%016" PRIx64, c->vocab_meta);
        lens[6] = (size_t)snprintf(data, sizeof data, "%016" PRIx64, c->vocab_data);
        if (!f)
            return AKV_CLUSTER_NOLEADER;
        return fwd_queue(f, FWD_RELAY, argc, argv, lens, token, cb, arg);
    }
    if (what == AKV_CLUSTER_ADD) {
        const struct raft_server *s = conf_find(c, id);
        if (s && strcmp(s->address, addr) == 0 && s->role == RAFT_VOTER) {
            cb(arg, token, 0, 0, NULL); /* already a member: joining again is a no-op */
            return 0;
        }
    }
    if (what == AKV_CLUSTER_JOIN && id == c->id) {
        cb(arg, token, AKV_CLUSTER_REFUSED, 0, "ERR a node cannot join through itself");
        return 0;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    *r = (struct change_req){.c = c, .what = what, .id = id, .token = token, .cb = cb, .arg = arg};
    snprintf(r->addr, sizeof r->addr, "%s", addr ? addr : "");
    switch (what) {
    case AKV_CLUSTER_JOIN:
        /* A node asking to join has no state: if it was a member, its
         * progress here is stale, so it is removed and added anew. */
        if (conf_find(c, id)) {
            r->stage = -1;
            rc = raft_remove(&c->raft, &r->req, id, on_change);
        } else {
            rc = raft_add(&c->raft, &r->req, id, addr, on_change);
        }
        break;
    case AKV_CLUSTER_ADD: {
        const struct raft_server *s = conf_find(c, id);
        if (s && strcmp(s->address, addr) == 0) {
            r->stage = 1; /* there, not yet a voter */
            rc = raft_assign(&c->raft, &r->req, id, RAFT_VOTER, on_change);
        } else {
            rc = raft_add(&c->raft, &r->req, id, addr, on_change);
        }
        break;
    }
    case AKV_CLUSTER_REMOVE:
        rc = raft_remove(&c->raft, &r->req, id, on_change);
        break;
    default:
        rc = raft_transfer(&c->raft, &r->treq, id, on_transfer);
        break;
    }
    if (rc != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "ERR %s",
                 raft_errmsg(&c->raft)[0] ? raft_errmsg(&c->raft) : raft_strerror(rc));
        cb(arg, token, AKV_CLUSTER_REFUSED, 0, msg);
        free(r);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The tick: roles, the node table, the vocabulary, joining.
 */

static void on_internal(void *arg, uint64_t token, int status, uint64_t index, const char *msg)
{
    struct akv_cluster *c = arg;

    (void)index;
    if (token == 1)
        c->node_inflight = 0;
    if (status != 0)
        akv_log(AKV_LOG_VERBOSE, "cluster: our node entry was not proposed: %s",
                msg ? msg : "no leader");
}

static void propose_self(struct akv_cluster *c, uint64_t now)
{
    struct akv_buf b;
    uint64_t idx;
    int rc;

    if (c->node_inflight || now < c->next_node_try)
        return;
    akv_buf_init(&b);
    if (akv_entry_put_head(&b, AKV_ENTRY_NODE, 0, c->id, 0, 0) < 0 ||
        akv_entry_put_bytes(&b, c->client_addr, strlen(c->client_addr)) < 0) {
        akv_buf_fini(&b);
        return;
    }
    c->next_node_try = now + RETRY_MS;
    if (raft_state(&c->raft) == RAFT_LEADER) {
        rc = leader_apply(c, b.p, b.len, &idx, 1);
    } else {
        rc = akv_cluster_propose(c, b.p, b.len, &idx, 1, on_internal, c);
        if (rc == 1)
            c->node_inflight = 1;
    }
    (void)rc;
    akv_buf_fini(&b);
}

static void propose_vocab(struct akv_cluster *c, uint64_t now)
{
    struct akv_buf b;

    if (now < c->next_vocab_try)
        return;
    akv_buf_init(&b);
    if (akv_entry_put_head(&b, AKV_ENTRY_VOCAB, 0, c->id, 0, 0) == 0 &&
        akv_entry_put_u64(&b, c->vocab_meta) == 0 && akv_entry_put_u64(&b, c->vocab_data) == 0 &&
        akv_entry_put_u64(&b, c->vocab_words) == 0 && akv_entry_put_u32(&b, c->vocab_dim) == 0)
        (void)leader_apply(c, b.p, b.len, NULL, 1);
    c->next_vocab_try = now + RETRY_MS;
    akv_buf_fini(&b);
}

static void on_join(void *arg, uint64_t token, int status, uint64_t index, const char *msg)
{
    struct akv_cluster *c = arg;

    (void)token;
    (void)index;
    c->join_inflight = 0;
    if (status == 0) {
        akv_log(AKV_LOG_NOTICE, "cluster: joined through %s", c->join);
        c->joined = 1;
        return;
    }
    akv_log(AKV_LOG_WARNING, "cluster: joining through %s: %s; trying again", c->join,
            msg ? msg : "no answer");
    if (msg && strstr(msg, "vectors") && c->hooks.fatal) {
        c->fatal = 1;
        c->hooks.fatal(c->hooks.arg, msg);
    }
}

static void try_join(struct akv_cluster *c, uint64_t now)
{
    char ids[24], meta[24], data[24];
    const char *argv[7] = {"CLUSTER", "ADD", ids, c->raft_addr, "VECTORS", meta, data};
    size_t lens[7];

    if (c->join_inflight || now < c->next_join_try || c->fatal)
        return;
    c->next_join_try = now + RETRY_MS * 2;
    if (!c->joinfwd)
        c->joinfwd = fwd_open(c, c->join, 0);
    if (!c->joinfwd)
        return;
    lens[0] = 7;
    lens[1] = 3;
    lens[2] = (size_t)snprintf(ids, sizeof ids, "%" PRIu64, c->id);
    lens[3] = strlen(c->raft_addr);
    lens[4] = 7;
    lens[5] = (size_t)snprintf(meta, sizeof meta, "%016" PRIx64, c->vocab_meta);
    lens[6] = (size_t)snprintf(data, sizeof data, "%016" PRIx64, c->vocab_data);
    if (fwd_queue(c->joinfwd, FWD_JOIN, 7, argv, lens, 0, on_join, c) == 0)
        c->join_inflight = 1;
}

static void track_contact(struct akv_cluster *c, uint64_t now)
{
    unsigned n = c->raft.configuration.n;

    if (raft_state(&c->raft) != RAFT_LEADER || !c->raft.leader_state.progress)
        return;
    if (c->ncontact != n) {
        uint64_t *a = calloc(n ? n : 1, sizeof(*a)), *m = calloc(n ? n : 1, sizeof(*m));
        if (!a || !m) {
            free(a);
            free(m);
            return;
        }
        free(c->contact_ms);
        free(c->contact_match);
        c->contact_ms = a;
        c->contact_match = m;
        c->ncontact = n;
    }
    for (unsigned i = 0; i < n; i++) {
        struct raft_progress *p = &c->raft.leader_state.progress[i];
        if (p->recent_recv || p->match_index != c->contact_match[i] || c->contact_ms[i] == 0) {
            c->contact_ms[i] = now;
            c->contact_match[i] = p->match_index;
        }
    }
}

static void on_tick(uv_timer_t *t)
{
    struct akv_cluster *c = t->data;
    uint64_t now = uv_now(c->loop);
    int role = raft_state(&c->raft);
    raft_id lid;
    const char *laddr;
    const char *mine;

    raft_leader(&c->raft, &lid, &laddr);
    if (role != c->last_role || lid != c->last_leader) {
        if (role == RAFT_LEADER) {
            akv_log(AKV_LOG_NOTICE, "cluster: this node (%" PRIu64 ") leads, term %llu", c->id,
                    (unsigned long long)c->raft.current_term);
            /* An entry of the new term at once: nodes waiting to know
             * whether a write forwarded to the old leader can still be
             * committed learn it once they apply it. */
            c->node_inflight = 0;
            c->next_node_try = 0;
            propose_self(c, now);
        } else if (lid != c->last_leader)
            akv_log(AKV_LOG_NOTICE, "cluster: %s; leader %" PRIu64 "%s%s",
                    akv_cluster_role_name(role), (uint64_t)lid, lid ? " at " : "",
                    lid ? laddr : "");
        c->last_role = role;
        if (role != RAFT_LEADER)
            c->unapplied = 0;
        c->last_leader = lid;
        if (c->fwd && c->fwd->target != lid)
            fwd_fail(c->fwd, -ECONNRESET);
        if (c->hooks.changed)
            c->hooks.changed(c->hooks.arg);
    }
    if (c->join && !c->joined && c->raft.configuration.n == 0)
        try_join(c, now);
    else if (c->raft.configuration.n > 0)
        c->joined = 1;
    if (c->fatal)
        return;
    if (role == RAFT_LEADER && !c->vocab_known)
        propose_vocab(c, now);
    mine = node_client(c, c->id);
    if ((role == RAFT_LEADER || role == RAFT_FOLLOWER) && lid != 0 &&
        (!mine || strcmp(mine, c->client_addr) != 0) && conf_find(c, c->id))
        propose_self(c, now);
    track_contact(c, now);
    change_step(c);
}

/* ------------------------------------------------------------------------
 * Life cycle and introspection.
 */

static char *dupe(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void free_strings(struct akv_cluster *c)
{
    free(c->raft_addr);
    free(c->client_addr);
    free(c->dir);
    free(c->join);
}

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof path)
        return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* io->async_work for raft_uv, which does not have it in every version:
 * the library's asynchronous snapshots run on libuv's thread pool. */
struct async_req {
    uv_work_t work;
    struct raft_io_async_work *req;
    raft_io_async_work_cb cb;
    int status;
};

static void async_run(uv_work_t *w)
{
    struct async_req *a = container_of(w, struct async_req, work);

    a->status = a->req->work(a->req);
}

static void async_after(uv_work_t *w, int status)
{
    struct async_req *a = container_of(w, struct async_req, work);

    a->cb(a->req, status == 0 ? a->status : RAFT_CANCELED);
    free(a);
}

static int io_async_work(struct raft_io *io, struct raft_io_async_work *req,
                         raft_io_async_work_cb cb)
{
    struct akv_cluster *c = container_of(io, struct akv_cluster, io);
    struct async_req *a = calloc(1, sizeof(*a));

    if (!a)
        return RAFT_NOMEM;
    a->req = req;
    a->cb = cb;
    if (uv_queue_work(c->loop, &a->work, async_run, async_after) != 0) {
        free(a);
        return RAFT_IOERR;
    }
    return 0;
}

static void on_check(uv_check_t *h);
static void on_raft_closed(struct raft *r);

int akv_cluster_create(struct akv_cluster **out, struct uv_loop_s *loop,
                       const struct akv_cluster_opts *o, const struct akv_cluster_hooks *hooks,
                       char *err, size_t errlen)
{
    struct akv_cluster *c;
    struct raft_configuration conf;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->hooks = *hooks;
    c->id = o->id;
    c->raft_addr = dupe(o->raft_addr);
    c->client_addr = dupe(o->client_addr);
    c->dir = dupe(o->dir);
    c->join = dupe(o->join);
    c->password = o->password;
    c->vocab_meta = o->vocab_meta;
    c->vocab_data = o->vocab_data;
    c->vocab_words = o->vocab_words;
    c->vocab_dim = o->vocab_dim;
    c->last_role = -1;
    if (!c->raft_addr || !c->client_addr || !c->dir || (o->join && !c->join)) {
        free_strings(c);
        free(c);
        return -ENOMEM;
    }
    rc = mkdir_p(c->dir);
    if (rc < 0) {
        snprintf(err, errlen, "cluster-dir %s: %s", c->dir, strerror(-rc));
        free_strings(c);
        free(c);
        return rc;
    }
    rc = raft_uv_tcp_init(&c->transport, loop);
    if (rc != 0) {
        snprintf(err, errlen, "the raft transport: %s", raft_strerror(rc));
        free_strings(c);
        free(c);
        return -EIO;
    }
    rc = raft_uv_init(&c->io, loop, c->dir, &c->transport);
    if (rc != 0) {
        snprintf(err, errlen, "cluster-dir %s: %s", c->dir, c->io.errmsg);
        raft_uv_tcp_close(&c->transport);
        free_strings(c);
        free(c);
        return -EIO;
    }
    if (!c->io.async_work)
        c->io.async_work = io_async_work;
    if (c->io.version < 2)
        c->io.version = 2;
    c->queue_tail = &c->queue;
    c->fsm = (struct raft_fsm){
        .version = 3,
        .data = c,
        .apply = fsm_apply,
        .snapshot = fsm_snapshot,
        .restore = fsm_restore,
        .snapshot_finalize = fsm_snapshot_finalize,
        .snapshot_async = fsm_snapshot_async,
    };
    rc = raft_init(&c->raft, &c->io, &c->fsm, c->id, c->raft_addr);
    if (rc != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&c->raft));
        raft_uv_close(&c->io);
        raft_uv_tcp_close(&c->transport);
        free_strings(c);
        free(c);
        return -EIO;
    }
    c->raft.data = c;
    raft_set_election_timeout(&c->raft, o->election_ms);
    raft_set_heartbeat_timeout(&c->raft, o->heartbeat_ms);
    c->snap_threshold = o->snapshot_threshold;
    c->snap_trailing = o->snapshot_trailing;
    raft_set_snapshot_threshold(&c->raft, o->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, o->snapshot_trailing);
    raft_set_pre_vote(&c->raft, true);
    if (!c->join) {
        raft_configuration_init(&conf);
        rc = raft_configuration_add(&conf, c->id, c->raft_addr, RAFT_VOTER);
        if (rc == 0) {
            rc = raft_bootstrap(&c->raft, &conf);
            if (rc == 0)
                akv_log(AKV_LOG_NOTICE, "cluster: bootstrapped a new cluster in %s", c->dir);
            else if (rc == RAFT_CANTBOOTSTRAP)
                rc = 0; /* state already there: start from it */
        }
        raft_configuration_close(&conf);
        if (rc != 0) {
            snprintf(err, errlen, "cannot bootstrap the cluster in %s: %s", c->dir,
                     raft_errmsg(&c->raft));
            goto fail_raft;
        }
    }
    rc = raft_start(&c->raft);
    if (rc != 0) {
        const char *why = raft_errmsg(&c->raft)[0] ? raft_errmsg(&c->raft)
                          : c->io.errmsg[0]        ? c->io.errmsg
                          : c->transport.errmsg[0] ? c->transport.errmsg
                                                   : raft_strerror(rc);
        snprintf(err, errlen, "cannot start raft in %s (cluster-bind %s): %s", c->dir, c->raft_addr,
                 why);
        goto fail_raft;
    }
    /* The handles only now: a failure above frees c, and a handle left
     * on the loop would outlive it. */
    uv_idle_init(loop, &c->restore_idle);
    c->handles++;
    c->restore_idle.data = c;
    c->started = 1;
    if (c->restoring) /* raft_start found a snapshot */
        uv_idle_start(&c->restore_idle, on_restore_idle);
    uv_timer_init(loop, &c->tick);
    c->handles++;
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
    uv_timer_init(loop, &c->defer);
    c->handles++;
    c->defer.data = c;
    uv_check_init(loop, &c->check);
    c->handles++;
    c->check.data = c;
    uv_check_start(&c->check, on_check);
    uv_unref((uv_handle_t *)&c->check);
    *out = c;
    return 0;
fail_raft:
    /* raft_close needs the loop to run; the caller runs it, then
     * akv_cluster_destroy. on_raft_closed frees raft_uv's own state. */
    c->closing = 1;
    c->handles++;
    *out = c;
    raft_close(&c->raft, on_raft_closed);
    return -EIO;
}

/* Every loop iteration: the applied index moves with entries the state
 * machine never sees (barriers, configuration changes) too; tell the
 * command layer, whose linearizable reads wait for it. */
static void on_check(uv_check_t *h)
{
    struct akv_cluster *c = h->data;
    uint64_t applied = akv_cluster_applied(c);

    c->apply_ns = 0; /* a new loop turn: fsm_apply's budget */
    if (applied != c->last_applied) {
        c->last_applied = applied;
        if (c->hooks.changed)
            c->hooks.changed(c->hooks.arg);
    }
}

static void on_pushed(struct raft_barrier *req, int status)
{
    struct akv_cluster *c = req->data;

    (void)status;
    c->push_inflight = 0;
}

static void on_defer(uv_timer_t *t)
{
    struct akv_cluster *c = t->data;

    if (c->push_wanted && !c->push_inflight && raft_state(&c->raft) == RAFT_LEADER) {
        /* A barrier's AppendEntries carries the commit index to the
         * followers now rather than at the next heartbeat: a write
         * forwarded by a follower is answered there once it applies it. */
        c->push.data = c;
        if (raft_barrier(&c->raft, &c->push, on_pushed) == 0)
            c->push_inflight = 1;
    }
    c->push_wanted = 0;
    change_step(c);
    if (c->hooks.flush)
        c->hooks.flush(c->hooks.arg);
}

void akv_cluster_defer(struct akv_cluster *c)
{
    if (!c->closing && !uv_is_active((uv_handle_t *)&c->defer))
        uv_timer_start(&c->defer, on_defer, 0, 0);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct akv_cluster *c = h->data;

    c->handles--;
    if (c->closing && c->handles == 0 && c->done)
        c->done(c->done_arg);
}

static void on_raft_closed(struct raft *r)
{
    struct akv_cluster *c = r->data;

    raft_uv_close(&c->io);
    raft_uv_tcp_close(&c->transport);
    c->handles--;
    if (c->handles == 0 && c->done)
        c->done(c->done_arg);
}

#define CLOSE_WAIT_MS 2000

/* Whether this node leads with log entries not yet on its disk. raft 0.15
 * cancels those append requests at raft_close and truncates its log at
 * each one's first index; from the second on that is past the log's end
 * (an assertion, or a crash in a release build). So a leader is closed
 * once its appends are written (nothing new is proposed while closing),
 * or after CLOSE_WAIT_MS. */
static int appends_pending(struct akv_cluster *c)
{
    return raft_state(&c->raft) == RAFT_LEADER && c->raft.last_stored < raft_last_index(&c->raft);
}

static void close_raft(struct akv_cluster *c)
{
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
    raft_close(&c->raft, on_raft_closed);
}

static void on_close_wait(uv_timer_t *t)
{
    struct akv_cluster *c = t->data;

    if (!appends_pending(c) || uv_now(c->loop) >= c->close_deadline)
        close_raft(c);
}

void akv_cluster_close(struct akv_cluster *c, void (*done)(void *arg), void *arg)
{
    if (!c || c->closing) {
        if (done)
            done(arg);
        return;
    }
    c->closing = 1;
    c->done = done;
    c->done_arg = arg;
    c->handles++; /* raft's own */
    if (c->change_next) {
        struct change_req *r = c->change_next;
        c->change_next = NULL;
        r->cb(r->arg, r->token, AKV_CLUSTER_REFUSED, 0, "ERR the node is shutting down");
        free(r);
    }
    if (c->fwd)
        fwd_fail(c->fwd, -ESHUTDOWN);
    if (c->joinfwd)
        fwd_fail(c->joinfwd, -ESHUTDOWN);
    uv_timer_stop(&c->defer);
    uv_close((uv_handle_t *)&c->defer, on_tick_closed);
    uv_check_stop(&c->check);
    uv_close((uv_handle_t *)&c->check, on_tick_closed);
    uv_idle_stop(&c->restore_idle);
    uv_close((uv_handle_t *)&c->restore_idle, on_tick_closed);
    if (appends_pending(c)) {
        c->close_deadline = uv_now(c->loop) + CLOSE_WAIT_MS;
        uv_timer_stop(&c->tick);
        uv_timer_start(&c->tick, on_close_wait, 1, 1);
        return;
    }
    close_raft(c);
}

void akv_cluster_destroy(struct akv_cluster *c)
{
    if (!c)
        return;
    if (c->restore_buf)
        raft_free(c->restore_buf);
    queue_free(c);
    nodes_clear(c);
    free(c->contact_ms);
    free(c->contact_match);
    free_strings(c);
    free(c);
}

void akv_cluster_info(const struct akv_cluster *c, struct akv_cluster_info *info)
{
    struct raft *r = (struct raft *)&c->raft;
    raft_id lid;
    const char *laddr, *client;

    memset(info, 0, sizeof(*info));
    info->id = c->id;
    info->role = raft_state(r);
    raft_leader(r, &lid, &laddr);
    info->leader_id = lid;
    if (lid) {
        snprintf(info->leader_raft, sizeof info->leader_raft, "%s", laddr);
        client = node_client(c, lid);
        snprintf(info->leader_client, sizeof info->leader_client, "%s", client ? client : "");
    }
    info->term = r->current_term;
    info->commit_index = r->commit_index;
    info->applied_index = akv_cluster_applied(c);
    info->loading = akv_cluster_loading(c);
    info->last_index = raft_last_index(r);
    info->snapshot_index = r->log.snapshot.last_index;
    info->entries_applied = c->entries_applied;
    info->snapshots_taken = c->snapshots_taken;
    info->snapshots_restored = c->snapshots_restored;
    info->nodes = r->configuration.n;
    for (unsigned i = 0; i < r->configuration.n; i++)
        info->voters += r->configuration.servers[i].role == RAFT_VOTER;
    info->raft_addr = c->raft_addr;
    info->client_addr = c->client_addr;
    info->dir = c->dir;
    info->joined = c->joined || !c->join;
}

size_t akv_cluster_nodes(const struct akv_cluster *c, struct akv_cluster_node *out, size_t max)
{
    const struct raft *r = &c->raft;
    raft_id lid;
    const char *laddr;
    uint64_t now = uv_now(c->loop);

    raft_leader((struct raft *)r, &lid, &laddr);
    for (unsigned i = 0; i < r->configuration.n && i < max; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        const char *client = node_client(c, s->id);
        struct akv_cluster_node *n = &out[i];
        memset(n, 0, sizeof(*n));
        n->id = s->id;
        snprintf(n->raft_addr, sizeof n->raft_addr, "%s", s->address);
        snprintf(n->client_addr, sizeof n->client_addr, "%s", client ? client : "");
        n->voter = s->role == RAFT_VOTER;
        n->leader = s->id == lid;
        n->self = s->id == c->id;
        n->last_contact_ms = -1;
        if (r->state == RAFT_LEADER && r->leader_state.progress) {
            n->match_index = n->self ? raft_last_index((struct raft *)r)
                                     : r->leader_state.progress[i].match_index;
            if (n->self)
                n->last_contact_ms = 0;
            else if (i < c->ncontact && c->contact_ms[i])
                n->last_contact_ms = (int64_t)(now - c->contact_ms[i]);
        }
    }
    return r->configuration.n;
}

uint64_t akv_cluster_term(const struct akv_cluster *c)
{
    return c->raft.current_term;
}

uint64_t akv_cluster_applied(const struct akv_cluster *c)
{
    /* The library counts an entry applied once handed over; while a
     * snapshot loads, the store is behind that. */
    if (c->restoring || c->queue)
        return c->store_applied;
    return raft_last_applied((struct raft *)&c->raft);
}

int akv_cluster_loading(const struct akv_cluster *c)
{
    return c->restoring || c->queue != NULL;
}

int akv_cluster_is_leader(const struct akv_cluster *c)
{
    return raft_state((struct raft *)&c->raft) == RAFT_LEADER;
}
