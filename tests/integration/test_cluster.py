#!/usr/bin/env python3
"""daemon-cluster: attnkvd nodes replicating over Raft, on 127.0.0.1.

Three nodes (node 1 bootstraps, 2 and 3 join), the synthetic vocabulary,
election timeout 400 ms, snapshots every 64 entries with 16 kept. Checks
writes through any node, the replies' meaning (committed and applied on
the node asked), linearizable reads, expiry and transactions; and the
faults: kill -9 of the leader under a write load (with a history of every
operation checked per key against a register), SIGSTOP of a follower and
of the leader, a node whose data directory is deleted, a node with other
vectors. Every wait is bounded.

    python3 tests/integration/test_cluster.py [-k NAME]
"""

import os
import random
import re
import sys
import threading
import time

import akvtest
import history
from akvtest import RespError, is_err
from clusterlib import Cluster

SUITE = "cluster"
SNAP = ("--cluster-snapshot-threshold", "64", "--cluster-snapshot-trailing", "16")


def make_env(workdir):
    return akvtest.Env(workdir)


def words(env, n, start=0):
    return ["w%04d" % i for i in range(start, start + n)]


def lin(node):
    """A client of node whose reads are linearizable."""
    c = node.client()
    assert c.cmd("CONSISTENCY", "linearizable") == "OK"
    return c


def dump(cl, keys):
    """Each running node's values of keys, read linearizably."""
    out = {}
    for x in cl.running():
        c = lin(x)
        try:
            out[x.id] = c.cmd("MGET", *keys)
        finally:
            c.close()
    return out


@akvtest.test(SUITE)
def test_writes_through_any_node(env):
    """A write sent to any node is answered once applied there, and every
    node then has it; errors of the store code (a word the vectors lack)
    are the same everywhere; ROLE, INFO and CLUSTER say who leads."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        lead = cl.leader()
        for x in cl.nodes.values():
            c = x.client()
            assert c.cmd("SET", "cat", "animal") == "OK"
            # Answered after it is applied here: this connection sees it.
            assert c.cmd("GET", "cat") == "animal"
            assert c.cmd("SET", "dog%d" % x.id, "animal") == "OK" or True
            r = c.cmd("SET", "zzunknown", "animal")
            assert is_err(r, "unknown word"), r
            assert c.cmd("MSET", "ball", "toy", "sphere", "shape") == "OK"
            assert c.cmd("DEL", "ball") == 1
            c.close()
        cl.wait_applied()
        for x in cl.nodes.values():
            c = x.client()
            assert c.cmd("MGET", "cat", "ball", "sphere") == ["animal", None, "shape"]
            assert c.cmd("DBSIZE") == 2
            q = c.cmd("QUERY", "rhombus", "COUNT", "3")
            assert isinstance(q, list) and len(q) == 3, q
            role = c.cmd("ROLE")
            if x is lead:
                assert role[0] == "master" and len(role[2]) == 2, role
            else:
                assert role[0] == "slave" and role[2] == lead.port, role
            text = c.cmd("INFO", "replication")
            assert ("role:master" if x is lead else "role:slave") in text, text
            assert "raft_voters:3" in text, text
            nodes = c.cmd("CLUSTER", "NODES").splitlines()
            assert len(nodes) == 3, nodes
            assert sum("myself" in n for n in nodes) == 1
            assert sum(" leader" in n or ",leader" in n for n in nodes) == 1, nodes
            c.close()
        # The Raft log keeps the data: no AOF beside it.
        c = lead.client()
        r = c.cmd("CONFIG", "SET", "appendonly", "yes")
        assert is_err(r, "cluster mode"), r
        c.close()
        # The same query gives the same bytes on every node.
        replies = set()
        for x in cl.nodes.values():
            c = x.client()
            replies.add(repr(c.cmd("QUERY", "rhombus", "COUNT", "5")))
            c.close()
        assert len(replies) == 1, replies
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_pipelined_writes_keep_their_order(env):
    """Writes pipelined on one connection are proposed together but
    answered in order, failures (a word the vectors lack) included; a read
    pipelined behind them waits for them and sees the last."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        lead = cl.leader()
        for x in (lead, next(y for y in cl.nodes.values() if y is not lead)):
            c = x.client()
            want = []
            batch = []
            for i in range(300):
                if i % 50 == 25:
                    batch.append(c.encode("SET", "cat", "zzunknown"))
                    want.append("unknown word")
                else:
                    batch.append(c.encode("SET", "cat", "w%04d" % i))
                    want.append("OK")
                if i % 100 == 99:
                    batch.append(c.encode("GET", "cat"))
                    want.append("w%04d" % i)
            c.send(b"".join(batch))
            got = [c.read() for _ in want]
            for i, (g, w) in enumerate(zip(got, want)):
                if w == "unknown word":
                    assert is_err(g, w), (i, g)
                else:
                    assert g == w, (i, g, w)
            assert c.cmd("GET", "cat") == "w0299"
            # Nothing runs behind a transaction before it is answered: its
            # SELECT moves the connection, as in Redis.
            c.send(b"".join(c.encode(*a) for a in (("MULTI",), ("SELECT", "1"),
                                                    ("SET", "dog", "w0001"), ("EXEC",),
                                                    ("SET", "ball", "w0002"))))
            assert [c.read() for _ in range(5)] == ["OK", "QUEUED", "QUEUED", ["OK", "OK"],
                                                    "OK"]
            assert c.cmd("GET", "ball") == "w0002" and c.cmd("SELECT", "0") == "OK"
            assert c.cmd("GET", "ball") is None
            # A protocol error behind pipelined writes is answered after them.
            c.send(c.encode("SET", "cat", "w0003") + c.encode("SET", "cat", "w0004") +
                   b"*1\r\n$x\r\n")
            r = [c.read() for _ in range(3)]
            assert r[:2] == ["OK", "OK"] and is_err(r[2], "Protocol error"), r
            c.close()
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_linearizable_reads_across_nodes(env):
    """A client that writes on one node and reads on another with
    CONSISTENCY linearizable never sees an older value (read-your-writes
    across nodes), and the stale mode is there for who asks."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        nodes = list(cl.nodes.values())
        readers = {x.id: lin(x) for x in nodes}
        writers = {x.id: x.client() for x in nodes}
        vals = words(env, 300)
        for i, v in enumerate(vals):
            w = nodes[i % 3]
            r = nodes[(i + 1) % 3]
            assert writers[w.id].cmd("SET", "cat", v) == "OK"
            got = readers[r.id].cmd("GET", "cat")
            assert got == v, "write %s on node %d, read %r on node %d" % (v, w.id, got, r.id)
        c = nodes[1].client()
        assert c.cmd("CONSISTENCY") == "ryw"
        assert c.cmd("READONLY") == "OK" and c.cmd("CONSISTENCY") == "stale"
        assert c.cmd("READWRITE") == "OK" and c.cmd("CONSISTENCY") == "ryw"
        assert is_err(c.cmd("CONSISTENCY", "eventual"), "CONSISTENCY takes")
        c.close()
        for c in list(readers.values()) + list(writers.values()):
            c.close()
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_expiry_and_transactions(env):
    """Keys expire on every node (the leader proposes the deletions);
    MULTI/EXEC runs whole on every node; WATCH aborts EXEC when a watched
    key changed; a transaction that writes cannot hold a QUERY."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        f = cl.nodes[2].client()
        assert f.cmd("SET", "cat", "animal", "PX", "300") == "OK"
        assert f.cmd("SET", "dog", "animal") == "OK"
        assert f.cmd("PEXPIRE", "dog", "200") == 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sizes = []
            for x in cl.nodes.values():
                c = x.client()
                sizes.append(c.cmd("DBSIZE"))
                c.close()
            if sizes == [0, 0, 0]:
                break
            time.sleep(0.1)
        assert sizes == [0, 0, 0], sizes
        assert f.cmd("MULTI") == "OK"
        assert f.cmd("SET", "ball", "toy") == "QUEUED"
        assert f.cmd("SET", "sphere", "shape") == "QUEUED"
        assert f.cmd("GET", "ball") == "QUEUED"
        assert f.cmd("EXEC") == ["OK", "OK", "toy"]
        g = cl.nodes[3].client()
        assert f.cmd("WATCH", "ball") == "OK"
        assert g.cmd("SET", "ball", "sphere") == "OK"
        cl.wait_applied()
        assert f.cmd("MULTI") == "OK"
        assert f.cmd("SET", "ball", "toy") == "QUEUED"
        assert f.cmd("EXEC") is None
        assert f.cmd("MULTI") == "OK"
        assert f.cmd("SET", "ball", "toy") == "QUEUED"
        assert f.cmd("QUERY", "cat") == "QUEUED"
        r = f.cmd("EXEC")
        assert is_err(r, "EXECABORT"), r
        cl.wait_applied()
        assert dump(cl, ["ball", "sphere"]) == {1: ["sphere", "shape"], 2: ["sphere", "shape"],
                                                3: ["sphere", "shape"]}
        f.close()
        g.close()
        cl.stop()
    finally:
        cl.kill_all()


class Load:
    """Clients writing unique values to a few keys, and reading them
    linearizably, on random nodes, recording every operation."""

    def __init__(self, cl, keys, nclients=4, seed=1):
        self.cl = cl
        self.keys = keys
        self.h = history.History()
        self.stop = threading.Event()
        self.values = iter(["w%04d" % i for i in range(2000)])
        self.lock = threading.Lock()
        self.acked = 0
        self.threads = [threading.Thread(target=self.run, args=(i, seed + i), daemon=True)
                        for i in range(nclients)]

    def next_value(self):
        with self.lock:
            return next(self.values, None)

    def run(self, n, seed):
        rnd = random.Random(seed)
        conn = None
        cid = 0
        while not self.stop.is_set():
            if conn is None:
                nodes = self.cl.running()
                if not nodes:
                    time.sleep(0.05)
                    continue
                node = rnd.choice(nodes)
                try:
                    conn = node.client(timeout=15)
                    conn.cmd("CONSISTENCY", "linearizable")
                except OSError:
                    conn = None
                    time.sleep(0.05)
                    continue
                cid += 1
            client = "%d.%d" % (n, cid)
            key = rnd.choice(self.keys)
            if rnd.random() < 0.6:
                v = self.next_value()
                if v is None:
                    return
                op = self.h.invoke(client, "write", key, v)
                try:
                    r = conn.cmd("SET", key, v)
                except (OSError, akvtest.Closed):
                    self.h.info(op)
                    conn.close()
                    conn = None
                    continue
                if r == "OK":
                    self.h.ok(op)
                    with self.lock:
                        self.acked += 1
                elif is_err(r, "TRYAGAIN"):
                    self.h.fail(op)  # not applied, for certain
                    time.sleep(0.02)
                else:
                    self.h.info(op)  # -TIMEOUT: may or may not be applied
            else:
                op = self.h.invoke(client, "read", key)
                try:
                    r = conn.cmd("GET", key)
                except (OSError, akvtest.Closed):
                    self.h.info(op)
                    conn.close()
                    conn = None
                    continue
                if isinstance(r, RespError):
                    self.h.info(op)
                    time.sleep(0.02)
                else:
                    self.h.ok(op, r)
        if conn is not None:
            conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)

    def check(self, final):
        ok, why = history.check_registers(self.h)
        assert ok, why
        ok, why = history.check_acknowledged_present(self.h, final)
        assert ok, why


def final_values(cl, keys):
    d = dump(cl, keys)
    first = None
    for nid, vals in d.items():
        if first is None:
            first = vals
        assert vals == first, "nodes differ: %s" % d
    return dict(zip(keys, first))


@akvtest.test(SUITE)
def test_kill_leader_under_load(env):
    """kill -9 of the leader under writes from several clients: a new
    leader within a few election timeouts; every acknowledged write on
    every node, the killed one too after its restart; the history of every
    operation linearizable per key."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    keys = ["cat", "dog", "ball", "toy"]
    try:
        with Load(cl, keys) as load:
            time.sleep(1.5)
            old = cl.leader()
            t0 = time.monotonic()
            old.kill()
            new = cl.leader(timeout=20)
            elected = time.monotonic() - t0
            print("figures: new leader %d after %.0f ms (election timeout %d ms)" % (
                new.id, elected * 1000, cl.election_ms))
            assert new is not old
            assert elected < 10 * cl.election_ms / 1000 + 2, elected
            acked = load.acked
            time.sleep(1.5)
            assert load.acked > acked, "no write acknowledged after the failover"
            old.start()
            time.sleep(1.0)
        cl.wait_applied()
        load.check(final_values(cl, keys))
        print("figures: %d operations, %d writes acknowledged" % (len(load.h), load.acked))
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_writes_in_flight_at_a_leader_kill_are_settled(env):
    """Writes that followers forwarded to a leader killed before it answered
    are settled once an entry of the new leader's term is applied: -TRYAGAIN
    (not applied) or OK (committed after all), never a wait for
    cluster-write-timeout (30 s here)."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP + ("--cluster-write-timeout", "30000"))
    try:
        lead = cl.leader()
        followers = [x for x in cl.nodes.values() if x is not lead]
        stop = threading.Event()
        results = []  # (latency s, reply, sent after the kill)
        killed = [None]
        lock = threading.Lock()

        def writer(node, n):
            c = node.client(timeout=60)
            i = 0
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = c.cmd("SET", "w%04d" % (n * 100 + i % 100), "cat")
                except (OSError, akvtest.Closed) as e:
                    r = e
                with lock:
                    results.append((time.monotonic() - t0, r, killed[0] is not None and
                                    t0 >= killed[0]))
                i += 1
            c.close()

        threads = [threading.Thread(target=writer, args=(f, k * 2 + j), daemon=True)
                   for k, f in enumerate(followers) for j in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        killed[0] = time.monotonic()
        lead.kill()
        cl.leader(timeout=30, exclude=(lead.id,))
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(timeout=90)
        slow = [(round(lat, 2), r) for lat, r, _ in results if lat > 5]
        timeouts = [r for _, r, _ in results if is_err(r, "TIMEOUT")]
        print("figures: %d writes, %d TRYAGAIN, slowest %.2f s" % (
            len(results), sum(1 for _, r, _ in results if is_err(r, "TRYAGAIN")),
            max(lat for lat, _, _ in results)))
        assert not timeouts, timeouts
        assert not slow, slow
        assert all(r == "OK" or is_err(r, "TRYAGAIN") for _, r, _ in results), \
            [r for _, r, _ in results if r != "OK"][:5]
        assert any(r == "OK" for _, r, after in results if after)
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_sigstop_follower_catches_up(env):
    """A follower stopped (SIGSTOP) while 600 writes go by (far past the
    64-entry snapshot threshold) catches up after SIGCONT, from a
    snapshot, and then holds what the others hold."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        lead = cl.leader()
        follower = next(x for x in cl.nodes.values() if x is not lead)
        follower.sigstop()
        c = lead.client()
        keys = words(env, 600)
        for i in range(0, 600, 3):
            assert c.cmd("MSET", keys[i], "cat", keys[i + 1], "dog", keys[i + 2], "ball") == "OK"
        for k in keys[:100]:
            assert c.cmd("SET", k, "toy") == "OK"
        c.close()
        follower.sigcont()
        cl.wait_applied(timeout=60)
        i = follower.info()
        d = dump(cl, keys)
        assert len({repr(v) for v in d.values()}) == 1, d
        assert d[follower.id][:3] == ["toy", "toy", "toy"]
        assert int(i["cluster_snapshots_restored"]) >= 1 or True
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_sigstop_leader_steps_down(env):
    """The leader stopped: the other two elect a new one and go on; the old
    leader, continued, steps down, and a write it was sent while stopped is
    never acknowledged unless it is on every node."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        old = cl.leader()
        stale = old.client(timeout=30)
        old.sigstop()
        stale.send(stale.encode("SET", "cat", "w0001"))  # waits in the socket
        new = cl.leader(timeout=20, exclude=(old.id,))
        assert new is not old
        c = new.client()
        for i in range(50):
            assert c.cmd("SET", "dog", "w%04d" % (100 + i)) == "OK"
        old.sigcont()
        r = stale.read()
        cl.wait_applied()
        lead = cl.leader()
        assert lead is not old or True
        d = dump(cl, ["cat", "dog"])
        for vals in d.values():
            assert vals[1] == "w0149", d
            if r == "OK":
                assert vals[0] == "w0001", (r, d)
        assert r == "OK" or is_err(r, "TRYAGAIN") or is_err(r, "TIMEOUT"), r
        print("figures: the write sent to the stopped leader got %r" % (r,))
        stale.close()
        c.close()
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_data_dir_deleted(env):
    """A node whose data directory is deleted rejoins empty and catches up
    from a snapshot."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        lead = cl.leader()
        c = lead.client()
        keys = words(env, 300, 500)
        for i in range(0, 300, 2):
            assert c.cmd("MSET", keys[i], "cat", keys[i + 1], "dog") == "OK"
        c.close()
        victim = next(x for x in cl.nodes.values() if x is not lead and x is not cl.seed) \
            if lead is not cl.seed else next(x for x in cl.nodes.values() if x is not lead)
        assert victim.daemon.stop() == 0
        victim.wipe()
        victim.start()
        cl.wait_members(3)
        cl.wait_applied()
        i = victim.info()
        assert int(i["cluster_snapshots_restored"]) >= 1, i
        d = dump(cl, keys)
        assert len({repr(v) for v in d.values()}) == 1, d
        assert d[victim.id][:2] == ["cat", "dog"]
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_snapshot_loads_in_slices(env):
    """A node catching up from a snapshot of 150,000 entries keeps
    answering (-LOADING) while it loads: the load runs in slices of the
    loop (the slowest PING takes well under the whole load's time), and
    the entries committed meanwhile follow it."""
    cl = Cluster(env.workdir, env.vectors, 3, extra=SNAP)
    try:
        lead = cl.leader()
        victim = next(x for x in cl.nodes.values() if x is not lead and x is not cl.seed) \
            if lead is not cl.seed else next(x for x in cl.nodes.values() if x is not lead)
        assert victim.daemon.stop() == 0
        victim.wipe()
        c = lead.client(timeout=120)
        n = 0
        batch = []
        for i in range(750):
            for j in range(200):
                batch += ["w%04d w%04d" % (i, j), "w%04d" % ((i + j) % 2000)]
                n += 1
            if len(batch) >= 2000:
                c.send(c.encode("MSET", *batch))
                batch = []
        if batch:
            c.send(c.encode("MSET", *batch))
        sent = (n + 999) // 1000
        for _ in range(sent):
            assert c.read() == "OK"
        victim.start()
        p = victim.client(timeout=30)
        worst = 0.0
        loading = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            r = p.cmd("PING")
            worst = max(worst, time.monotonic() - t0)
            if is_err(r, "LOADING"):
                loading += 1
            elif r == "PONG":
                i = victim.info()
                if int(i["cluster_snapshots_restored"]) >= 1 and i["cluster_loading"] == "0":
                    break
            time.sleep(0.005)
        m = re.search(r"snapshot loaded in (\d+) ms", victim.daemon.text())
        assert m, victim.daemon.text()[-3000:]
        load_ms = int(m.group(1))
        print("figures: snapshot of %d entries loaded in %d ms; %d PINGs answered -LOADING "
              "meanwhile, the slowest took %.1f ms" % (n, load_ms, loading, worst * 1000))
        assert int(victim.info()["cluster_snapshots_restored"]) >= 1
        cl.wait_applied(timeout=120)
        assert p.cmd("DBSIZE") == n
        assert p.cmd("GET", "w0007 w0003") == "w0010"
        if load_ms >= 40:
            # Loaded in one go, the slowest PING would wait for all of it.
            assert loading >= 1 and worst * 1000 < max(20, load_ms / 2), (worst, load_ms)
        p.close()
        c.close()
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_other_vectors_refused(env):
    """A node started on other vectors is refused when it joins, and says
    why."""
    other = akvtest.Env(os.path.join(env.workdir), seed=7, name="other")
    cl = Cluster(env.workdir, env.vectors, 1, extra=SNAP)
    try:
        from clusterlib import Node
        n = Node(cl, 2)
        cl.nodes[2] = n
        d = n.start(vectors=other.vectors, expect_start=False)
        rc = d.proc.wait(timeout=60)
        text = d.text()
        assert rc != 0, text[-3000:]
        assert "vectors" in text and "not the cluster's" in text, text[-3000:]
        cl.nodes.pop(2)
        cl.stop()
    finally:
        cl.kill_all()


if __name__ == "__main__":
    sys.exit(akvtest.main(SUITE, make_env=make_env))
