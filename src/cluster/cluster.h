/*
 * cluster.h - replication on Raft: one attnkvd node of a cluster, driving
 * the C raft library (libraft, its libuv I/O backend on the daemon's own
 * loop) and the connections a node opens to the leader's client port.
 *
 * Every node holds the whole store. Writes are entries of the Raft log
 * (entry.h); a committed entry is handed to hooks->apply on every node, in
 * log order, which runs the store code. A node that is not the leader
 * forwards a proposal to the leader over a client connection
 * (CLUSTER PROPOSE). The node table (each node's client address) and the
 * vocabulary identity are entries of the log too, kept here. How the
 * pieces fit, and the guarantees, are in docs/cluster.md.
 *
 * Ownership: akv_cluster_create copies the options; the hooks' arg is
 * borrowed. Buffers handed to akv_cluster_propose are copied.
 *
 * Threading: everything here runs on the loop thread, except the hooks'
 * snap_write, which runs on a libuv work thread and reads only its state.
 */
#ifndef ATTNKV_CLUSTER_H
#define ATTNKV_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct uv_loop_s;
struct akv_cluster;
struct akv_entry;

/* A proposal's or a request's outcome, for the callbacks: 0, or one of
 * these (negative), or another negative errno. */
enum {
    AKV_CLUSTER_NOLEADER = -11,  /* -EAGAIN: not proposed, no leader known */
    AKV_CLUSTER_REFUSED = -1000, /* the leader answered an error (msg says) */
    /* A forwarded proposal whose answer was lost with the connection: it
     * may have been appended, in the term given as the index; once an
     * entry of a later term is applied without it, it never will be. */
    AKV_CLUSTER_DOUBT = -1001,
};

struct akv_cluster_hooks {
    void *arg;
    /* A committed entry at index, to apply if it is of kind CMDS or
     * EXPIRED (the others are here only for their term). */
    void (*apply)(void *arg, uint64_t index, const struct akv_entry *e);
    /* Snapshots: take (loop thread) captures the state as of now (store
     * snapshots) in *state; write (a work thread) appends its bytes to
     * out; release (loop thread) lets go of it. Each returns 0 or -errno. */
    int (*snap_take)(void *arg, void **state);
    int (*snap_write)(void *arg, void *state, struct akv_buf *out);
    void (*snap_release)(void *arg, void *state);
    /* Replaces the whole state with a snapshot's bytes (a new or lagging
     * node catching up), in slices so that the loop serves clients
     * meanwhile: begin empties the state (buf stays valid until end);
     * step loads for about budget_us and returns 1 while there is more,
     * 0 when done, -errno when the bytes are damaged (the node then
     * stops); end comes once the entries committed meanwhile (held here)
     * have been applied too. begin returns 0 or -errno. */
    int (*restore_begin)(void *arg, const void *buf, size_t len);
    int (*restore_step)(void *arg, unsigned budget_us);
    void (*restore_end)(void *arg);
    /* The role, the leader or the applied index may have changed. */
    void (*changed)(void *arg);
    /* Called from the loop, soon after akv_cluster_defer (outside the
     * raft library's callbacks). */
    void (*flush)(void *arg);
    /* This node cannot stay in the cluster (its vocabulary differs from
     * the cluster's); msg says why. The daemon should stop. */
    void (*fatal)(void *arg, const char *msg);
};

struct akv_cluster_opts {
    uint64_t id;             /* this node's id, > 0 */
    const char *raft_addr;   /* host:port the Raft transport listens on */
    const char *client_addr; /* host:port clients (and other nodes) reach this node at */
    const char *dir;         /* Raft log, metadata and snapshots */
    const char *join;        /* host:port of a member to join through; NULL: bootstrap */
    /* requirepass as it is now (CONFIG SET may change it), for the
     * connections to other nodes; *password NULL: none. Borrowed. */
    const char *const *password;
    unsigned election_ms, heartbeat_ms;
    unsigned snapshot_threshold, snapshot_trailing;
    uint64_t vocab_meta, vocab_data, vocab_words;
    uint32_t vocab_dim;
};

/* Creates the node and starts Raft: bootstraps a one-node cluster when
 * dir holds no state and there is nothing to join, or loads the state in
 * dir; with join and no state, asks the member at join to add it. Returns
 * 0 or -errno with a reason in err. */
int akv_cluster_create(struct akv_cluster **out, struct uv_loop_s *loop,
                       const struct akv_cluster_opts *opts, const struct akv_cluster_hooks *hooks,
                       char *err, size_t errlen);

/* Stops Raft and every connection; done(arg) runs once all is closed
 * (run the loop until then), then akv_cluster_destroy. */
void akv_cluster_close(struct akv_cluster *c, void (*done)(void *arg), void *arg);
void akv_cluster_destroy(struct akv_cluster *c); /* NULL is a no-op */

/* A callback with a token the caller chose, an outcome, an index, and for
 * AKV_CLUSTER_REFUSED the leader's error line (without "-" and CRLF). */
typedef void (*akv_cluster_cb)(void *arg, uint64_t token, int status, uint64_t index,
                               const char *msg);

/* Proposes entry buf[0, len) (copied; the leader stamps its time).
 * Returns 0 with *index set (this node leads: appended at *index), 1
 * (forwarded: cb later says 0 and the index, or a definite failure; when
 * the connection is lost after sending, cb is never called, since the
 * entry may still be committed), or a negative errno (not proposed:
 * AKV_CLUSTER_NOLEADER, -ENOMEM, -EBUSY: this leader holds 64 MiB of
 * entries not yet applied). */
int akv_cluster_propose(struct akv_cluster *c, const void *buf, size_t len, uint64_t *index,
                        uint64_t token, akv_cluster_cb cb, void *arg);

/* Linearizable reads: finds an index every read that starts now may wait
 * for (the leader confirms its leadership with a barrier; a follower asks
 * the leader). cb gets 0 and the index, or a failure. Returns 0 or a
 * negative errno (cb is then not called). */
int akv_cluster_read_index(struct akv_cluster *c, uint64_t token, akv_cluster_cb cb, void *arg);

/* Membership (leader; a follower forwards the command to the leader and
 * passes its reply on): cb gets 0, or AKV_CLUSTER_REFUSED with the error. */
/* JOIN: the request of a node with no state (CLUSTER ADD ... VECTORS): a
 * member of that id is removed first, then added anew. */
enum akv_cluster_change {
    AKV_CLUSTER_ADD,
    AKV_CLUSTER_REMOVE,
    AKV_CLUSTER_TRANSFER,
    AKV_CLUSTER_JOIN
};
int akv_cluster_change(struct akv_cluster *c, enum akv_cluster_change what, uint64_t id,
                       const char *addr, uint64_t token, akv_cluster_cb cb, void *arg);

/* Whether a node asking to join with this vocabulary identity may. */
int akv_cluster_vocab_ok(const struct akv_cluster *c, uint64_t meta, uint64_t data);

enum akv_cluster_role {
    AKV_CLUSTER_UNAVAILABLE = 0,
    AKV_CLUSTER_FOLLOWER,
    AKV_CLUSTER_CANDIDATE,
    AKV_CLUSTER_LEADER
};
const char *akv_cluster_role_name(int role);

struct akv_cluster_info {
    uint64_t id;
    int role;
    uint64_t leader_id; /* 0: none known */
    char leader_raft[128], leader_client[128];
    uint64_t term, commit_index, applied_index, last_index, snapshot_index;
    uint64_t entries_applied, snapshots_taken, snapshots_restored;
    unsigned voters, nodes;
    const char *raft_addr, *client_addr, *dir;
    int joined;  /* 0 while a join is still being asked for */
    int loading; /* a snapshot is loading */
};
void akv_cluster_info(const struct akv_cluster *c, struct akv_cluster_info *info);

/* One node of the configuration, for CLUSTER NODES and INFO replication. */
struct akv_cluster_node {
    uint64_t id;
    char raft_addr[128], client_addr[128];
    int voter;               /* RAFT_VOTER, else a stand-by or spare */
    int leader, self;        /* it leads; it is this node */
    uint64_t match_index;    /* leader only: replicated up to; else 0 */
    int64_t last_contact_ms; /* leader only: since it last answered; -1 unknown */
};
/* Fills up to max nodes; returns how many there are. */
size_t akv_cluster_nodes(const struct akv_cluster *c, struct akv_cluster_node *out, size_t max);

/* Calls hooks->flush from the loop soon. */
void akv_cluster_defer(struct akv_cluster *c);

/* The current term. */
uint64_t akv_cluster_term(const struct akv_cluster *c);

/* The applied index (what a read on this node sees); whether a snapshot
 * is loading (the store is then not whole). */
uint64_t akv_cluster_applied(const struct akv_cluster *c);
int akv_cluster_loading(const struct akv_cluster *c);
int akv_cluster_is_leader(const struct akv_cluster *c);

#endif
