#!/usr/bin/env python3
"""cluster-script: scripts/cluster, the README's way to try a cluster.

Runs the script as a user would, on the synthetic vocabulary (AKV_VECTORS),
with its data directory in the work directory (AKV_CLUSTER_DIR) and ports
found free (AKV_CLUSTER_PORT, AKV_CLUSTER_RAFT_PORT): start 3 nodes, a
write through one node read on the others, status, kill -9 of the leader
and a write through the survivors, restart of the killed node (which then
has that write), pause and resume of a node (SIGSTOP, SIGCONT), stop
(every node gone, a paused one too, each log ending cleanly), start
again on the same directory (the data kept), a node whose state is
deleted rejoining; and what the script refuses: a second start over
running nodes, taken ports, a directory that is not a cluster's, a
missing daemon, bad arguments. Every wait is bounded; a failing test
stops the nodes it started.

    python3 tests/integration/test_cluster_script.py [-k NAME]
"""

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import akvtest
from akvtest import Client

SUITE = "cluster-script"
ROOT = os.environ.get("AKV_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "cluster")
# Short timeouts keep the failover part quick.
OPTS = ["--workers", "1", "--cluster-election-timeout", "300",
        "--cluster-write-timeout", "2000"]


def free_run(n):
    """A base port such that base..base+n-1 are all free now."""
    for _ in range(200):
        # Below the ephemeral range (32768..), where clients get their ports.
        base = random.randint(20000, 32000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no run of %d free ports" % n)


class Env(akvtest.Env):
    def __init__(self, workdir):
        super().__init__(workdir)
        self.n = 0

    def setup(self, name, n=3):
        """Fresh settings for one cluster: its directory and ports."""
        self.dir = os.path.join(self.workdir, name)
        self.n = n
        self.base = free_run(n)
        self.raft = free_run(n)
        while self.base <= self.raft < self.base + n or self.raft <= self.base < self.raft + n:
            self.raft = free_run(n)
        self.environ = dict(os.environ, AKV_CLUSTER_DIR=self.dir,
                            AKV_CLUSTER_PORT=str(self.base),
                            AKV_CLUSTER_RAFT_PORT=str(self.raft),
                            AKV_VECTORS=self.vectors, AKV_CLUSTER_TIMEOUT="20")

    def run(self, *args, ok=True, timeout=60, environ=None):
        r = subprocess.run([SCRIPT] + list(args), env=environ or self.environ, cwd=self.workdir,
                           capture_output=True, text=True, timeout=timeout)
        if ok:
            assert r.returncode == 0, "scripts/cluster %s: %d\n%s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr)
        return r

    def port(self, i):
        return self.base + i - 1

    def client(self, i, lin=True):
        c = Client(self.port(i), timeout=10)
        if lin:
            assert c.cmd("CONSISTENCY", "linearizable") == "OK"
        return c

    def pid(self, i):
        try:
            with open(os.path.join(self.dir, "node%d" % i, "attnkvd.pid")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def info(self, i):
        c = self.client(i, lin=False)
        try:
            return dict(x.split(":", 1) for x in c.cmd("CLUSTER", "INFO").splitlines() if ":" in x)
        finally:
            c.close()

    def cleanup(self):
        """Stops what the script started, whatever state the test left."""
        if not self.n or not os.path.isdir(self.dir):
            return
        r = self.run("stop", ok=False)
        for i in range(1, self.n + 1):
            pid = self.pid(i)
            if pid and os.path.exists("/proc/%d" % pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        assert r.returncode == 0, r.stdout + r.stderr


def retry_write(env, i, key, value, timeout=20):
    """SET through node i until it is acknowledged (an election may be on:
    -TRYAGAIN or -TIMEOUT meanwhile)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            c = env.client(i, lin=False)
            try:
                last = c.cmd("SET", key, value)
            finally:
                c.close()
            if last == "OK":
                return
        except (OSError, akvtest.Closed) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("SET %s through node %d: %r" % (key, i, last))


def read(env, i, key, timeout=20):
    """GET key on node i, linearizable: retried while the node answers
    -TRYAGAIN (it has no leader yet)."""
    deadline = time.monotonic() + timeout
    while True:
        c = env.client(i)
        try:
            r = c.cmd("GET", key)
        finally:
            c.close()
        if not akvtest.is_err(r, "TRYAGAIN") or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def logs_clean(env):
    for i in range(1, env.n + 1):
        with open(os.path.join(env.dir, "node%d" % i, "attnkvd.log")) as f:
            text = f.read()
        assert "bye" in text.splitlines()[-1], "node %d:\n%s" % (i, text[-3000:])
        assert "not closed cleanly" not in text, text[-3000:]


@akvtest.test(SUITE)
def test_start_failover_stop(env):
    env.setup("three")
    try:
        r = env.run("start", "3", *OPTS)
        assert "redis-cli -p %d" % env.base in r.stdout, r.stdout
        assert len([x for x in r.stdout.splitlines() if "127.0.0.1:%d" % env.raft in x]) == 1
        roles = sorted(x.split()[4] for x in r.stdout.splitlines() if x[:2] in ("1 ", "2 ", "3 "))
        assert roles == ["master", "slave", "slave"], r.stdout
        for i in (1, 2, 3):
            assert env.pid(i) and os.path.exists("/proc/%d" % env.pid(i))
            assert env.info(i)["cluster_voters"] == "3"

        # A second start over running nodes is refused and changes nothing.
        pids = [env.pid(i) for i in (1, 2, 3)]
        r = env.run("start", "3", ok=False)
        assert r.returncode != 0 and "runs" in r.stderr, r
        assert [env.pid(i) for i in (1, 2, 3)] == pids

        # Writes through any node, read on the others.
        c = env.client(2, lin=False)
        assert c.cmd("SET", "cat", "animal") == "OK"
        c.close()
        for i in (1, 3):
            assert read(env, i, "cat") == "animal"

        # kill -9 the leader; the others elect one and take writes.
        lead = int(env.info(1)["cluster_leader_id"])
        env.run("kill", str(lead))
        try:
            Client(env.port(lead), timeout=2).close()
            raise AssertionError("node %d still accepts clients" % lead)
        except ConnectionRefusedError:
            pass
        st = env.run("status").stdout
        assert [x.split()[5] for x in st.splitlines() if x.startswith(str(lead))] == ["down"], st
        other = 1 if lead != 1 else 2
        retry_write(env, other, "dog", "animal")
        live = [i for i in (1, 2, 3) if i != lead]
        for i in live:
            assert read(env, i, "dog") == "animal"
        assert int(env.info(live[0])["cluster_leader_id"]) in live

        # Restarted, it catches up; on the vectors recorded when the
        # cluster was made, whatever AKV_VECTORS says now.
        env.run("restart", str(lead), environ={k: v for k, v in env.environ.items()
                                               if k != "AKV_VECTORS"})
        got = read(env, lead, "dog")
        assert got == "animal", (got, env.info(lead), env.info(other))
        assert read(env, lead, "cat") == "animal"

        # A paused node (SIGSTOP) misses a write and catches up when resumed;
        # stop also stops a paused node.
        paused = live[-1]
        env.run("pause", str(paused))
        st = env.run("status").stdout
        assert [x.split()[5] for x in st.splitlines() if x.startswith(str(paused))] == \
            ["paused"], st
        retry_write(env, lead, "ball", "shape")
        env.run("resume", str(paused))
        assert read(env, paused, "ball") == "shape"
        env.run("pause", str(paused))
        env.run("stop")
        for i, pid in enumerate(pids, 1):
            assert env.pid(i) is None
        logs_clean(env)
        st = env.run("status").stdout
        assert [x.split()[5] for x in st.splitlines()[1:]] == ["down"] * 3, st

        # Started again on its directory: the same cluster, its data kept.
        env.run("start")
        for i in (1, 2, 3):
            assert read(env, i, "dog") == "animal"

        # A node whose state is gone rejoins and catches up.
        env.run("kill", "3")
        shutil.rmtree(os.path.join(env.dir, "node3", "cluster"))
        retry_write(env, 1, "ball", "toy")
        env.run("restart", "3")
        deadline = time.monotonic() + 20
        while read(env, 3, "ball") != "toy":
            assert time.monotonic() < deadline, env.info(3)
            time.sleep(0.1)
        assert read(env, 3, "cat") == "animal"
        env.run("stop")
        logs_clean(env)

        env.run("clean")
        assert not os.path.exists(env.dir)
    finally:
        env.cleanup()


@akvtest.test(SUITE)
def test_refusals(env):
    env.setup("refused", n=2)
    try:
        # Bad arguments.
        for args in (["start", "0"], ["start", "10"], ["start", "x3"], ["kill"],
                     ["frobnicate"]):
            r = env.run(*args, ok=False)
            assert r.returncode != 0, (args, r)
        assert not os.path.exists(env.dir)
        r = env.run("status", ok=False)
        assert r.returncode != 0 and "no cluster" in r.stderr, r

        # No daemon.
        r = env.run("start", "2", ok=False,
                    environ=dict(env.environ, AKV_ATTNKVD=os.path.join(env.workdir, "none")))
        assert r.returncode != 0 and "AKV_ATTNKVD" in r.stderr, r

        # No vectors.
        r = env.run("start", "2", ok=False,
                    environ=dict(env.environ, AKV_VECTORS=os.path.join(env.workdir, "no.akv")))
        assert r.returncode != 0 and "fetch-vectors" in r.stderr, r

        # A taken port: nothing is started.
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", env.port(2)))
        s.listen(1)
        try:
            r = env.run("start", "2", *OPTS, ok=False)
            assert r.returncode != 0 and "in use" in r.stderr, r
            assert env.pid(1) is None
        finally:
            s.close()

        # A directory that is not a cluster's is left alone.
        os.makedirs(env.dir, exist_ok=True)
        keep = os.path.join(env.dir, "precious")
        open(keep, "w").close()
        r = env.run("start", "2", ok=False)
        assert r.returncode != 0 and "not a cluster" in r.stderr, r
        r = env.run("clean", ok=False)
        assert r.returncode != 0 and os.path.exists(keep), r
        os.unlink(keep)

        # A two-node cluster: it cannot be shrunk, kill needs a running
        # node, and clean refuses while one runs.
        env.run("start", "2", *OPTS)
        r = env.run("start", "1", ok=False)
        assert r.returncode != 0, r
        env.run("stop")
        r = env.run("start", "1", ok=False)
        assert r.returncode != 0 and "2-node" in r.stderr, r
        r = env.run("kill", "2", ok=False)
        assert r.returncode != 0 and "does not run" in r.stderr, r
        r = env.run("kill", "3", ok=False)
        assert r.returncode != 0 and "no node 3" in r.stderr, r
        env.run("start")
        r = env.run("restart", "1")
        assert "following leader" in r.stdout, r
        r = env.run("clean", ok=False)
        assert r.returncode != 0 and "stop" in r.stderr, r
        env.run("stop")
        env.run("clean")
    finally:
        env.cleanup()


if __name__ == "__main__":
    sys.exit(akvtest.main(SUITE, make_env=Env, needs_daemon=True))
