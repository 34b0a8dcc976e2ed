#!/usr/bin/env python3
"""daemon-cluster-hostile: a 3-node cluster (clusterlib) under a hostile
or careless client: log entries it crafts for CLUSTER PROPOSE, commands in
a transaction that must not run on every node, bad membership arguments,
entries too big to forward, big entries in a pipeline; and the edges the
review of the cluster found: a leader stepping down under linearizable
reads or shut down under forwarded writes, read-only transactions under
CONSISTENCY linearizable, SELECT inside a transaction. After each, every
node must still run and hold the same data.

    python3 tests/integration/test_cluster_hostile.py [-k NAME]
"""

import struct
import sys
import threading
import time

import akvtest
from akvtest import is_err
from clusterlib import Cluster

SUITE = "cluster-hostile"


def make_env(workdir):
    return akvtest.Env(workdir)


def entry(kind, body, origin=99, req=0, flags=0):
    """A log entry (src/cluster/entry.h), padded to 8 bytes."""
    b = b"K" + bytes([2, kind, flags]) + struct.pack("<QQQQ", origin, req, 0, 0) + body
    return b + b"\0" * ((8 - len(b) % 8) % 8)


def cmds(cmdlist, exec_=False):
    """A CMDS entry of the commands in cmdlist (db 0, RESP2)."""
    body = struct.pack("<IB3xI", 0, 2, len(cmdlist))
    for argv in cmdlist:
        body += struct.pack("<I", len(argv))
        for a in argv:
            a = a.encode()
            body += struct.pack("<I", len(a)) + a
    if exec_:
        body += struct.pack("<I", 0)
    return entry(1, body, flags=1 if exec_ else 0)


def all_alive_and_equal(cl, keys):
    """Every node runs, and (once all applied the leader's commit index)
    holds the same values of keys."""
    for x in cl.nodes.values():
        assert x.alive(), "node %d died:\n%s" % (x.id, x.daemon.text()[-3000:])
    cl.wait_applied()
    seen = {}
    for x in cl.nodes.values():
        c = x.client()
        seen[x.id] = (c.cmd("MGET", *keys), c.cmd("DBSIZE"))
        c.close()
    assert len({repr(v) for v in seen.values()}) == 1, seen
    return seen


@akvtest.test(SUITE)
def test_proposed_entries_hold_only_data_commands(env):
    """CLUSTER PROPOSE of an entry holding a server command (SHUTDOWN,
    CONFIG SET, CLUSTER) or a command with too few arguments is refused:
    once in the log it would run on every node, and again at every
    restart."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        lead = cl.leader()
        c = lead.client()
        assert c.cmd("SET", "cat", "dog") == "OK"
        bad = [
            cmds([["SHUTDOWN", "NOSAVE"]]),
            cmds([["CONFIG", "SET", "maxmemory", "1"]]),
            cmds([["CLUSTER", "REMOVE", "2"]]),
            cmds([["SET"]]),
            cmds([["GET", "cat"]]),  # a read alone is not a write
            cmds([["QUERY", "cat"]]),
            cmds([["SET", "a", "b"], ["SHUTDOWN"]], exec_=True),
            cmds([["SET", "a", "b"], ["DEL"]], exec_=True),
            cmds([["SET", "a", "b"], ["MULTI"]], exec_=True),
        ]
        for e in bad:
            r = c.cmd("CLUSTER", "PROPOSE", e)
            assert is_err(r, "ERR a log entry may only hold"), (e, r)
        # A well-formed write goes in (its reply is the index).
        r = c.cmd("CLUSTER", "PROPOSE", cmds([["SET", "ball", "toy"]]))
        assert isinstance(r, int) and r > 0, r
        time.sleep(0.5)
        seen = all_alive_and_equal(cl, ["cat", "ball"])
        assert seen[lead.id][0] == ["dog", "toy"], seen
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_transaction_with_server_commands_refused(env):
    """A transaction that writes runs on every node; one holding SHUTDOWN,
    CONFIG or CLUSTER is refused whole (EXECABORT), through the leader and
    through a follower, and nothing of it is applied; one holding reads,
    SELECT, PING and ECHO runs."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        lead = cl.leader()
        follower = next(x for x in cl.nodes.values() if x is not lead)
        for node in (lead, follower):
            c = node.client()
            for extra in (["SHUTDOWN", "NOSAVE"], ["CONFIG", "SET", "maxmemory", "1"],
                          ["CLUSTER", "TRANSFER"], ["CLIENT", "KILL", "TYPE", "normal"]):
                assert c.cmd("MULTI") == "OK"
                assert c.cmd("SET", "cat", "sphere") == "QUEUED"
                assert c.cmd(*extra) == "QUEUED"
                r = c.cmd("EXEC")
                assert is_err(r, "EXECABORT") and extra[0] in r.args[0], (extra, r)
            assert c.cmd("MULTI") == "OK"
            for q in (["SELECT", "1"], ["SET", "cat", "dog"], ["GET", "cat"], ["PING"],
                      ["ECHO", "hi"], ["SELECT", "0"]):
                assert c.cmd(*q) == "QUEUED"
            assert c.cmd("EXEC") == ["OK", "OK", "dog", "PONG", "hi", "OK"]
            c.close()
        seen = all_alive_and_equal(cl, ["cat"])
        assert seen[lead.id] == ([None], 0), seen
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_leader_steps_down_under_linearizable_reads(env):
    """Linearizable reads on the leader while it is SIGSTOPped past the
    election timeout, then SIGCONT: it steps down with read rounds out and
    more reads waiting; it must not call into the raft library from its
    failing callbacks (it crashed doing so). Reads get a value or
    -TRYAGAIN; three rounds of it."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        c = cl.leader().client()
        assert c.cmd("SET", "cat", "dog") == "OK"
        c.close()
        for _ in range(3):
            lead = cl.leader()
            stop = threading.Event()
            bad = []

            def reader():
                try:
                    k = lead.client(timeout=30)
                    assert k.cmd("CONSISTENCY", "linearizable") == "OK"
                    while not stop.is_set():
                        k.send(k.encode("GET", "cat") * 20)
                        for _ in range(20):
                            r = k.read()
                            if r != "dog" and not is_err(r, "TRYAGAIN"):
                                bad.append(r)
                    k.close()
                except (OSError, akvtest.Closed) as e:
                    bad.append(repr(e))

            threads = [threading.Thread(target=reader) for _ in range(6)]
            for t in threads:
                t.start()
            time.sleep(0.3)
            lead.sigstop()
            time.sleep(cl.election_ms * 4 / 1000)
            lead.sigcont()
            cl.leader(exclude=(lead.id,))
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(30)
            assert lead.alive(), "the old leader died:\n" + lead.daemon.text()[-3000:]
            assert not bad, bad[:5]
        all_alive_and_equal(cl, ["cat"])
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_leader_shutdown_under_write_load(env):
    """SIGTERM of the leader while followers forward pipelined writes to
    it: it exits cleanly (status 0). raft 0.15 crashed in raft_close when
    the leader had more than one log append in flight. Three times, the
    node restarted in between; afterwards every node holds the same
    data."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        keys = ["w%04d" % i for i in range(400)]
        for round_ in range(3):
            lead = cl.leader()
            clients = []
            for x in cl.nodes.values():
                if x is lead:
                    continue
                for _ in range(4):
                    k = x.client(timeout=60)
                    k.send(b"".join(k.encode("SET", key, "cat" if round_ % 2 else "dog")
                                    for key in keys))
                    clients.append(k)
            time.sleep(0.3)
            rc = lead.daemon.stop()
            assert rc == 0, "the leader exited with %s:\n%s" % (rc, lead.daemon.text()[-3000:])
            for k in clients:
                for _ in keys:
                    r = k.read()
                    assert r == "OK" or is_err(r, "TRYAGAIN") or is_err(r, "TIMEOUT"), r
                k.close()
            lead.start()
            cl.wait_members(3)
        all_alive_and_equal(cl, keys)
        cl.stop()
    finally:
        cl.kill_all()


@akvtest.test(SUITE)
def test_membership_arguments(env):
    """CLUSTER ADD / REMOVE / TRANSFER with bad arguments get a clear error
    at once and change nothing (an address without a valid port used to
    stay in the configuration as a spare); CLUSTER TRANSFER without an id
    works through a follower too (it was relayed as id 0 and refused)."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        lead = cl.leader()
        fol = next(x for x in cl.nodes.values() if x is not lead)
        for node in (lead, fol):
            c = node.client()
            for args, err in (
                    (("ADD", "5", "127.0.0.1:99999"), "ERR address must be host:port"),
                    (("ADD", "5", "127.0.0.1:0"), "ERR address must be host:port"),
                    (("ADD", "5", "127.0.0.1:"), "ERR address must be host:port"),
                    (("ADD", "5", ":7000"), "ERR address must be host:port"),
                    (("ADD", "5", "nocolon"), "ERR address must be host:port"),
                    (("ADD", "5", "127.0.0.1:7x"), "ERR address must be host:port"),
                    (("ADD", "0", "127.0.0.1:7000"), "ERR node id must be a positive integer"),
                    (("ADD", "-1", "127.0.0.1:7000"), "ERR node id must be a positive integer"),
                    (("ADD", "5"), "ERR wrong number of arguments"),
                    (("ADD", "5", "127.0.0.1:7000", "VECTORS", "00", "00"), "vectors"),
                    (("REMOVE", "abc"), "ERR node id must be a positive integer"),
                    (("REMOVE", "1", "2"), "ERR wrong number of arguments"),
                    (("TRANSFER", "0"), "ERR node id must be a positive integer"),
                    (("PROPOSE", "garbage"), "ERR damaged log entry"),
                    (("PROPOSE",), "ERR wrong number of arguments"),
            ):
                r = c.cmd("CLUSTER", *args)
                assert is_err(r, err), (node.id, args, r)
            c.close()
        c = lead.client()
        nodes = c.cmd("CLUSTER", "NODES").splitlines()
        assert len(nodes) == 3, nodes
        c.close()
        c = fol.client()
        r = c.cmd("CLUSTER", "TRANSFER")
        # The follower may see the new leader before the old one's answer
        # and drop that connection: the reply is then a retryable error
        # (it was an error line without a code).
        assert r == "OK" or is_err(r, "TRYAGAIN the connection to the leader was lost"), r
        c.close()
        assert cl.leader(exclude=(lead.id,)) is not lead
        all_alive_and_equal(cl, ["cat"])
        cl.stop()
    finally:
        cl.kill_all()

@akvtest.test(SUITE)
def test_transaction_larger_than_a_bulk_string(env):
    """A transaction's entry larger than proto-max-bulk-len (within the
    query buffer limit) is refused on every node with a clear error: a
    follower forwards the entry as one bulk string, which the leader
    refused with a protocol error, closing the connection that the
    follower's other forwarded writes share (they then waited out
    cluster-write-timeout)."""
    cl = Cluster(env.workdir, env.vectors, 3,
                 extra=("--proto-max-bulk-len", "65536", "--cluster-write-timeout", "5000"))
    try:
        lead = cl.leader()
        fol = next(x for x in cl.nodes.values() if x is not lead)
        for node in (fol, lead):
            c = node.client(timeout=30)
            other = node.client(timeout=30)
            assert c.cmd("MULTI") == "OK"
            for m in range(10):
                args = ["MSET"]
                for i in range(500):
                    args += ["w%04d w%04d" % (m, i), "cat dog ball"]
                assert c.cmd(*args) == "QUEUED"
            c.send(c.encode("EXEC"))
            other.send(other.encode("SET", "cat", "dog"))
            r = c.read()
            assert is_err(r, "ERR request too large for a log entry"), r
            t0 = time.monotonic()
            assert other.read() == "OK"
            assert time.monotonic() - t0 < 3
            c.close()
            other.close()
        seen = all_alive_and_equal(cl, ["cat", "w0000 w0000"])
        assert seen[lead.id] == (["dog", None], 1), seen
        cl.stop()
    finally:
        cl.kill_all()

@akvtest.test(SUITE)
def test_linearizable_read_only_transaction(env):
    """CONSISTENCY linearizable covers the reads of a transaction: EXEC of
    a queue that only reads waits for a read round as a read does (it ran
    at once and returned stale values on a follower that had not caught
    up: 6 of 6 tries). Without a leader it gets -TRYAGAIN and the
    transaction ends."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        lead = cl.leader()
        fol = next(x for x in cl.nodes.values() if x is not lead)
        w = lead.client()
        for trial in range(4):
            v1, v2 = ("cat", "dog") if trial % 2 == 0 else ("dog", "cat")
            assert w.cmd("SET", "ball", v1) == "OK"
            cl.wait_applied()
            r = fol.client(timeout=30)
            assert r.cmd("CONSISTENCY", "linearizable") == "OK"
            fol.sigstop()
            try:
                assert w.cmd("SET", "ball", v2) == "OK"
                # Sent while the follower is stopped: read when it resumes,
                # with the leader's entries not yet applied there.
                r.send(r.encode("MULTI") + r.encode("GET", "ball") + r.encode("EXEC"))
                time.sleep(0.05)
            finally:
                fol.sigcont()
            assert r.read() == "OK" and r.read() == "QUEUED"
            assert r.read() == [v2], trial
            r.close()
        w.close()
        # No leader: the two other nodes gone.
        for x in cl.nodes.values():
            if x is not fol:
                x.kill()
        r = fol.client(timeout=30)
        assert r.cmd("CONSISTENCY", "linearizable") == "OK"
        deadline = time.monotonic() + 10
        while True:
            assert r.cmd("MULTI") == "OK"
            assert r.cmd("GET", "ball") == "QUEUED"
            got = r.cmd("EXEC")
            if is_err(got, "TRYAGAIN") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert is_err(got, "TRYAGAIN no leader confirmed a linearizable read"), got
        assert is_err(r.cmd("EXEC"), "ERR EXEC without MULTI")
        assert r.cmd("PING") == "PONG"
        r.close()
        assert fol.daemon.stop() == 0
    finally:
        cl.kill_all()

@akvtest.test(SUITE)
def test_log_memory_bounded_by_bytes(env):
    """The log's memory is bounded by bytes, not only entries: a client
    proposing big entries (CLUSTER PROPOSE answers at append, so a
    pipeline of them queued without limit: 300 x 1 MB took 316-348 MB on
    every node at once) is told -TRYAGAIN past 64 MiB not yet applied, and
    once the entries applied since the last snapshot hold 64 MiB a
    snapshot is taken (with the default cluster-snapshot-threshold of
    65536 entries there was none, and the log of 1 MB entries grew by
    ~45 MB per 40 entries on every node)."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        lead = cl.leader()
        c = lead.client(timeout=120)
        data = c.encode("CLUSTER", "PROPOSE", cmds([["SET", "cat", "x" * 1000000]]))
        for _ in range(3):
            c.send(data * 40)
            replies = [c.read() for _ in range(40)]
            assert all(isinstance(r, int) for r in replies), replies[:3]
            cl.wait_applied()
        for x in cl.nodes.values():
            i = x.info()
            assert int(i["cluster_snapshot_index"]) > 0, (x.id, i)
        c.send(data * 150)
        replies = [c.read() for _ in range(150)]
        busy = [r for r in replies if not isinstance(r, int)]
        assert busy, "150 MB proposed at once, none refused"
        assert all(is_err(r, "TRYAGAIN too many writes waiting to be applied") for r in busy), \
            busy[:3]
        assert len(busy) < 150
        c.close()
        all_alive_and_equal(cl, ["cat"])
        cl.stop()
    finally:
        cl.kill_all()

@akvtest.test(SUITE)
def test_select_in_transaction_moves_the_connection(env):
    """A SELECT inside a transaction leaves the connection in that
    database after EXEC, as in Redis and on a single node; in a cluster
    it was run by the entry's own session only, so the connection stayed
    in the old database and its next writes went there. Through the
    leader and a follower; an EXEC aborted by WATCH changes nothing."""
    cl = Cluster(env.workdir, env.vectors, 3)
    try:
        lead = cl.leader()
        fol = next(x for x in cl.nodes.values() if x is not lead)
        for node, db in ((lead, "1"), (fol, "2")):
            c = node.client()
            assert c.cmd("MULTI") == "OK"
            assert c.cmd("SELECT", db) == "QUEUED"
            assert c.cmd("SET", "cat", "dog") == "QUEUED"
            assert c.cmd("EXEC") == ["OK", "OK"]
            assert "db=%s" % db in c.cmd("CLIENT", "INFO").split()
            assert c.cmd("SET", "ball", "toy") == "OK"
            assert c.cmd("MGET", "cat", "ball") == ["dog", "toy"]
            # Aborted by WATCH: the SELECT inside does not run.
            assert c.cmd("WATCH", "cat") == "OK"
            o = node.client()
            assert o.cmd("SELECT", db) == "OK" and o.cmd("SET", "cat", "sphere") == "OK"
            o.close()
            assert c.cmd("MULTI") == "OK"
            assert c.cmd("SELECT", "0") == "QUEUED"
            assert c.cmd("SET", "cat", "dog") == "QUEUED"
            assert c.cmd("EXEC") is None
            assert "db=%s" % db in c.cmd("CLIENT", "INFO").split()
            c.close()
        cl.wait_applied()
        for x in cl.nodes.values():
            c = x.client()
            assert c.cmd("DBSIZE") == 0
            for db in ("1", "2"):
                assert c.cmd("SELECT", db) == "OK"
                assert c.cmd("MGET", "cat", "ball") == ["sphere", "toy"], (x.id, db)
            c.close()
        cl.stop()
    finally:
        cl.kill_all()

if __name__ == "__main__":
    sys.exit(akvtest.main(SUITE, make_env=make_env))
