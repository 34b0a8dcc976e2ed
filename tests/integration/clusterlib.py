"""Clusters of attnkvd nodes on 127.0.0.1 for the cluster suite and the
cluster benchmark: imported, not run.

Cluster(workdir, vectors, n) starts node 1 (it bootstraps a new cluster)
and nodes 2..n joining through node 1, each in a data directory of its
own, on client and Raft ports picked free at start and kept across
restarts. Every wait has a deadline.
"""

import os
import shutil
import signal
import socket
import time

import akvtest


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def info(c):
    """CLUSTER INFO as a dict of strings."""
    out = {}
    text = c.cmd("CLUSTER", "INFO")
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


class Node:
    def __init__(self, cluster, nid):
        self.cluster = cluster
        self.id = nid
        self.port = free_port()
        self.raft_port = free_port()
        self.datadir = os.path.join(cluster.workdir, "node%d" % nid)
        self.daemon = None
        self.stopped = False  # SIGSTOPped

    def start(self, join=True, extra=(), expect_start=True, vectors=None):
        os.makedirs(self.datadir, exist_ok=True)
        args = ["--workers", str(self.cluster.workers), "--cluster-enabled", "yes",
                "--cluster-id", str(self.id),
                "--cluster-bind", "127.0.0.1:%d" % self.raft_port,
                "--cluster-election-timeout", str(self.cluster.election_ms)]
        args += list(self.cluster.extra)
        if join and self.cluster.seed is not None and self.cluster.seed is not self:
            args += ["--cluster-join", "127.0.0.1:%d" % self.cluster.seed.port]
        args += list(extra)
        self.daemon = akvtest.Daemon(self.cluster.workdir, vectors or self.cluster.vectors, args,
                                     name="node%d-%d" % (self.id, self.cluster.starts),
                                     datadir=self.datadir, port=self.port,
                                     expect_start=expect_start)
        self.cluster.starts += 1
        self.stopped = False
        return self.daemon

    def client(self, **kw):
        return akvtest.Client(self.port, **kw)

    def alive(self):
        return self.daemon is not None and self.daemon.proc.poll() is None

    def kill(self):
        if self.daemon:
            if self.stopped:
                self.daemon.proc.send_signal(signal.SIGCONT)
            self.daemon.kill()
        self.stopped = False

    def sigstop(self):
        self.daemon.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def sigcont(self):
        self.daemon.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def wipe(self):
        shutil.rmtree(self.datadir, ignore_errors=True)

    def info(self):
        c = self.client(timeout=5)
        try:
            return info(c)
        finally:
            c.close()


class Cluster:
    def __init__(self, workdir, vectors, n=3, election_ms=400, workers=1, extra=()):
        import tempfile
        self.workdir = tempfile.mkdtemp(prefix="cluster-", dir=workdir)
        self.vectors = vectors
        self.election_ms = election_ms
        self.workers = workers
        self.extra = tuple(extra)
        self.starts = 0
        self.nodes = {i: Node(self, i) for i in range(1, n + 1)}
        self.seed = self.nodes[1]
        try:
            self.nodes[1].start(join=False)
            self.wait_leader()
            for i in range(2, n + 1):
                self.nodes[i].start()
            self.wait_members(n)
        except BaseException:
            self.kill_all()  # the caller has no Cluster to kill
            raise

    def running(self):
        return [x for x in self.nodes.values() if x.alive() and not x.stopped]

    def leader(self, timeout=30, exclude=()):
        """The node every running node (but those in exclude) agrees leads."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            seen = set()
            lead = None
            try:
                for x in self.running():
                    if x.id in exclude:
                        continue
                    i = x.info()
                    seen.add(i.get("cluster_leader_id"))
                    if i.get("cluster_role") == "leader":
                        lead = x
                last = seen
                if lead is not None and seen == {str(lead.id)}:
                    return lead
            except (OSError, akvtest.Closed):
                pass
            time.sleep(0.05)
        raise AssertionError("no leader agreed on within %ss (last seen %s)" % (timeout, last))

    wait_leader = leader

    def wait_members(self, n, timeout=60):
        """Until the leader's configuration has n voters, each with a client
        address, and every running node has applied its commit index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lead = self.leader(timeout=max(1, deadline - time.monotonic()))
            c = lead.client()
            try:
                nodes = c.cmd("CLUSTER", "NODES").splitlines()
            finally:
                c.close()
            voters = [x for x in nodes if ",voter" in x and x.split()[1] != "-"]
            if len(voters) == n:
                self.wait_applied(timeout=max(1, deadline - time.monotonic()))
                return
            time.sleep(0.1)
        raise AssertionError("the cluster did not reach %d voters: %s" % (n, nodes))

    def wait_applied(self, timeout=60, nodes=None):
        """Until every running node (or those given) has applied at least
        the leader's commit index as it is now."""
        lead = self.leader(timeout=timeout)
        target = int(lead.info()["cluster_commit_index"])
        deadline = time.monotonic() + timeout
        for x in nodes or self.running():
            while True:
                try:
                    if int(x.info()["cluster_applied_index"]) >= target:
                        break
                except (OSError, akvtest.Closed):
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("node %d did not apply index %d: %s" % (
                        x.id, target, x.info()))
                time.sleep(0.05)
        return target

    def stop(self):
        for x in self.nodes.values():
            if x.daemon is not None and x.stopped:
                x.sigcont()
        for x in self.nodes.values():
            if x.alive():
                rc = x.daemon.stop()
                t = x.daemon.text()
                assert rc == 0, "node %d exited with %d:\n%s" % (x.id, rc, t[-4000:])
                assert "not closed cleanly" not in t, t[-3000:]

    def kill_all(self):
        for x in self.nodes.values():
            x.kill()
