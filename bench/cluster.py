#!/usr/bin/python3
"""cluster.py - figures of the Raft cluster mode (issue 18) on 127.0.0.1.

Every node runs on this machine (tests/integration/clusterlib.py starts
them: node 1 bootstraps, the others join it, each in a data directory of
its own, workers 0), so all nodes and the load generators share its cores:
the figures say what the protocol costs here, not what N machines give,
which the QUERY section estimates from the CPU time a node spends per
query. The daemon is build-release/ if present, else build/ (or --build
DIR); the vectors the default ~/.cache/attnkv/glove-6B-100d.akv (or
--vectors, $AKV_VECTORS).

Sections (--only to pick some):

  set       SET throughput with redis-benchmark (`SET cat animal`, 50
            clients, -P 1 and -P 16), each run about --seconds long (a short
            probe sizes it): a single node (no cluster, appendonly yes,
            appendfsync everysec), a 1-node cluster, and a 3-node cluster
            against its leader and against a follower (which forwards every
            write to the leader and answers once it has applied it). Then
            write latency p50/p99 of one client without pipelining
            (redis-benchmark -c 1, its percentiles) against the same four.
  failover  kill -9 of the leader of a 3-node cluster while clients write
            continuously (two connections per node, each one SET at a time;
            a connection that fails moves to a surviving node, -TRYAGAIN is
            retried after 5 ms): the time from the kill to the first write
            acknowledged after it that was sent after it (and, for
            comparison, the first acknowledged at all, which may be one the
            old leader had committed). --reps times (default 5) per election
            timeout (1000 ms, the default, and 300 ms); the killed node is
            restarted and caught up between repetitions.
  catchup   a 3-node cluster (default snapshot threshold, 65,536 entries);
            one follower is stopped (SIGSTOP) while --catchup-entries SETs
            (default 1,000,000; each its own log entry) go through the
            leader (bench/loadgen, -c 50 -P 16; keys: distinct words of
            frequency rank 20,000-270,000, then two-word phrases of them,
            as bench/scale.py builds its stores); then SIGCONT, and the time
            until its applied index reaches the leader's commit index, whether
            it restored a snapshot (cluster_snapshots_restored), and PING on
            that node meanwhile: a client sends one every 10 ms (waiting for
            each reply) from the SIGCONT until the catch-up is done, and the
            longest reply time and the longest gap between two replies are
            reported (the restore runs on the loop thread and stalls it).
  query     QUERY throughput of a 3-node cluster holding --query-entries
            (default 10,000) entries: bench/loadgen --query, 50 clients, on
            each node alone, then on all three at once (one loadgen each),
            with each node's CPU seconds (/proc/PID/stat) per query, and an
            estimate of N machines' throughput from it.

Prints markdown tables on stdout (progress on stderr), and with --json FILE
the raw figures. --quick: shorter runs, 100,000 entries behind, 2
repetitions. A full run takes about 5-8 minutes.

Measurement only: nothing is asserted about speed. It stops with an error if
a load is not answered as it should be (loadgen counts every reply that is
not +OK, or for QUERY not an array of words) or if nodes disagree on the
number of keys after a catch-up.

Needs redis-tools (redis-benchmark) and a build with bench/loadgen.
"""
import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import shutil
import socket
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import scale  # noqa: E402  (bench/scale.py: the vocabulary, data, RESP, loadgen)
from scale import Fatal, fmt_int  # noqa: E402

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("cluster: " + msg, file=sys.stderr, flush=True)



# --- the machine -------------------------------------------------------------------

def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "model": model, "kernel": platform.release(),
            "load": os.getloadavg()}


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- clusters and single nodes -----------------------------------------------------

def start_cluster(tmp, vectors, n, election_ms=1000, extra=()):
    import clusterlib
    t0 = time.monotonic()
    cl = clusterlib.Cluster(tmp, vectors, n, election_ms=election_ms, workers=0,
                            extra=("--loglevel", "notice") + tuple(extra))
    log("%d-node cluster (election timeout %d ms) up in %.1f s"
        % (n, election_ms, time.monotonic() - t0))
    return cl


def check_alive(cl, res, expect_dead=()):
    """Records (and logs) every node that exited though nothing stopped it:
    a daemon crash is a finding, not a figure."""
    for x in cl.nodes.values():
        if x.id in expect_dead or x.daemon is None:
            continue
        rc = x.daemon.proc.poll()
        if rc is not None:
            tail = x.daemon.text()[-2000:]
            res.setdefault("exited", []).append({"node": x.id, "status": rc, "log": tail})
            log("node %d EXITED with status %s; its log ends:\n%s" % (x.id, rc, tail))


def follower(cl, lead):
    return next(x for x in cl.nodes.values() if x is not lead and x.alive())


def redis_benchmark(port, clients, pipeline, n):
    argv = ["redis-benchmark", "-h", HOST, "-p", str(port), "--csv", "-c", str(clients),
            "-P", str(pipeline), "-n", str(n), "SET", "cat", "animal"]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=600)
    lines = [l for l in p.stdout.splitlines() if l.startswith('"SET')]
    if p.returncode != 0 or not lines:
        raise Fatal("redis-benchmark failed (%d): %s %s" % (p.returncode, p.stdout[-500:],
                                                             p.stderr[-500:]))
    f = [x.strip('"') for x in lines[-1].split('","')]
    return {"rps": float(f[1]), "avg_ms": float(f[2]), "p50_ms": float(f[4]),
            "p95_ms": float(f[5]), "p99_ms": float(f[6]), "max_ms": float(f[7]), "n": n}


def timed_benchmark(port, clients, pipeline, seconds):
    probe = redis_benchmark(port, clients, pipeline, max(2000, clients * pipeline * 20))
    n = int(max(probe["rps"] * seconds, clients * pipeline * 20))
    return redis_benchmark(port, clients, pipeline, n)


# --- SET throughput and latency ----------------------------------------------------

def section_set(a, exe, tmp):
    rows = {}

    def measure(name, port):
        r = {}
        for p in (1, 16):
            r["P%d" % p] = timed_benchmark(port, 50, p, a.seconds)
            log("%s: SET -c 50 -P %d: %s/s" % (name, p, fmt_int(r["P%d" % p]["rps"])))
        r["lat"] = timed_benchmark(port, 1, 1, a.seconds)
        log("%s: SET -c 1: p50 %.3f ms, p99 %.3f ms"
            % (name, r["lat"]["p50_ms"], r["lat"]["p99_ms"]))
        rows[name] = r

    ddir = os.path.join(tmp, "single")
    os.mkdir(ddir)
    d = scale.Daemon(exe, a.vectors, ddir, scale.free_port(), True, ("--workers", "0"))
    d.start()
    try:
        measure("single node (AOF, fsync everysec)", d.port)
    finally:
        d.stop()
    cl = start_cluster(tmp, a.vectors, 1)
    try:
        measure("1-node cluster", cl.leader().port)
    finally:
        cl.kill_all()
    cl = start_cluster(tmp, a.vectors, 3)
    try:
        lead = cl.leader()
        measure("3-node cluster, leader", lead.port)
        measure("3-node cluster, follower (forwarded)", follower(cl, lead).port)
        check_alive(cl, rows.setdefault("_checks", {}))
    finally:
        cl.kill_all()
    return rows


def table_set(rows):
    out = ["| target | SET/s -c 50 -P 1 | SET/s -c 50 -P 16 | SET latency, 1 client: p50 / p99 ms |",
           "| --- | --- | --- | --- |"]
    for name, r in rows.items():
        if name.startswith("_"):
            continue
        out.append("| %s | %s | %s | %.3f / %.3f |" % (
            name, fmt_int(r["P1"]["rps"]), fmt_int(r["P16"]["rps"]), r["lat"]["p50_ms"],
            r["lat"]["p99_ms"]))
    return "\n".join(out)


# --- failover ----------------------------------------------------------------------

class Writers:
    """Connections writing one SET at a time, recording (sent, answered,
    reply kind, node id) for every request."""

    def __init__(self, cl, per_node=2, timeout=5.0):
        self.cl = cl
        self.timeout = timeout
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.events = []  # (sent, answered, kind, node id)
        self.dead = set()  # node ids not to connect to
        nodes = [x for x in cl.nodes.values() if x.alive()]
        self.threads = [threading.Thread(target=self.run, args=(nodes[i % len(nodes)], i),
                                         daemon=True)
                        for i in range(per_node * len(nodes))]

    def connect(self, rnd, prefer=None):
        import akvtest
        while not self.stop.is_set():
            cands = [x for x in self.cl.nodes.values()
                     if x.id not in self.dead and x.alive() and not x.stopped]
            node = prefer if prefer in cands else (rnd.choice(cands) if cands else None)
            prefer = None
            if node is not None:
                try:
                    return node, akvtest.Client(node.port, timeout=self.timeout)
                except OSError:
                    pass
            time.sleep(0.005)
        return None, None

    def run(self, first, i):
        import akvtest
        rnd = random.Random(i)
        keys = ["cat", "dog", "ball", "toy", "king", "queen"]
        node, c = self.connect(rnd, first)
        n = 0
        while not self.stop.is_set() and c is not None:
            n += 1
            sent = time.monotonic()
            try:
                r = c.cmd("SET", keys[(i + n) % len(keys)], keys[n % len(keys)])
                kind = "ok" if r == "OK" else (str(r.args[0]).split()[0]
                                               if isinstance(r, akvtest.RespError) else "other")
            except socket.timeout:
                kind = "abandoned"
            except (OSError, akvtest.Closed):
                kind = "closed"
            done = time.monotonic()
            with self.lock:
                self.events.append((sent, done, kind, node.id))
            if kind in ("closed", "abandoned"):
                c.close()
                node, c = self.connect(rnd)
            elif kind != "ok":
                time.sleep(0.005)
        if c is not None:
            c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def first_ok_after(self, t0, sent_after):
        with self.lock:
            oks = [(done, nid) for sent, done, kind, nid in self.events
                   if kind == "ok" and done > t0 and (not sent_after or sent >= t0)]
        return min(oks) if oks else None

    def in_flight(self, t0, exclude):
        """(seconds from t0 to the answer, kind) of the requests sent before
        t0 and answered after it, but those on node exclude."""
        with self.lock:
            return [(done - t0, kind, nid) for sent, done, kind, nid in self.events
                    if sent < t0 < done and nid != exclude]

    def kinds_after(self, t0, t1):
        out = {}
        with self.lock:
            for sent, done, kind, nid in self.events:
                if t0 <= done <= t1 and kind != "ok":
                    out[kind] = out.get(kind, 0) + 1
        return out


def section_failover(a, tmp, election_ms):
    """Per repetition: writers that give a request up after 0.3 s (and
    reconnect) give the time to the first write sent after the kill and
    acknowledged; one patient writer per node (15 s) shows what happens to
    the writes in flight at the kill (they are collected at the end)."""
    cl = start_cluster(tmp, a.vectors, 3, election_ms=election_ms)
    reps = []
    patient = []
    try:
        for rep in range(a.reps):
            lead = cl.leader()
            term = int(lead.info()["cluster_term"])
            slow = Writers(cl, per_node=1, timeout=15.0).__enter__()
            with Writers(cl, per_node=2, timeout=0.3) as w:
                time.sleep(0.7)
                before = len(w.events)
                w.dead.add(lead.id)
                slow.dead.add(lead.id)
                t0 = time.monotonic()
                lead.daemon.proc.kill()
                limit = t0 + 20 * election_ms / 1000 + 10
                while time.monotonic() < limit:
                    if w.first_ok_after(t0, True) is not None:
                        break
                    time.sleep(0.005)
                time.sleep(0.2)
                strict = w.first_ok_after(t0, True)
                loose = w.first_ok_after(t0, False)
                errors = w.kinds_after(t0, strict[0] if strict else limit)
                writes = len(w.events) - before
            slow.stop.set()  # it ends once its request in flight is answered
            patient.append((slow, t0))
            lead.kill()
            new = cl.leader(timeout=30)
            r = {"killed": lead.id, "new_leader": new.id, "old_term": term,
                 "new_term": int(new.info()["cluster_term"]),
                 "failover_ms": None if strict is None else (strict[0] - t0) * 1000,
                 "acked_by": None if strict is None else strict[1],
                 "first_any_ms": None if loose is None else (loose[0] - t0) * 1000,
                 "replies_before": errors, "requests": writes}
            log("election %d ms, rep %d: leader %d killed; first write sent after the kill "
                "acknowledged after %s ms (by node %s; new leader %d, term %d -> %d; replies "
                "meanwhile: %s)" % (election_ms, rep + 1, lead.id,
                                    "-" if r["failover_ms"] is None else "%.0f" % r["failover_ms"],
                                    r["acked_by"], new.id, term, r["new_term"], errors))
            reps.append(r)
            check_alive(cl, r, expect_dead=(lead.id,))
            lead.start()
            cl.wait_members(3)
            time.sleep(0.3)
        deadline = time.monotonic() + 20
        for slow, t0 in patient:
            for t in slow.threads:
                t.join(timeout=max(0.1, deadline - time.monotonic()))
        for (slow, t0), r in zip(patient, reps):
            r["in_flight"] = sorted(slow.in_flight(t0, r["killed"]))
            r["in_flight_unanswered"] = sum(t.is_alive() for t in slow.threads)
            log("election %d ms, rep %d: writes in flight at the kill answered after %s"
                % (election_ms, reps.index(r) + 1,
                   ", ".join("%.2f s (%s, node %d)" % x for x in r["in_flight"]) or "-"))
    finally:
        cl.kill_all()
    times = [r["failover_ms"] for r in reps if r["failover_ms"] is not None]
    return {"election_ms": election_ms, "reps": reps,
            "median_ms": statistics.median(times) if times else None}


def table_failover(results):
    out = ["| election timeout | failover, each repetition (ms) | median | writes in flight at the kill (patient clients on the two survivors): answered after |",
           "| --- | --- | --- | --- |"]
    for f in results:
        each = ", ".join("-" if r["failover_ms"] is None else "%.0f" % r["failover_ms"]
                         for r in f["reps"])
        kinds = {}
        for r in f["reps"]:
            for secs, kind, nid in r.get("in_flight", []):
                kinds.setdefault(kind, []).append(secs)
            if r.get("in_flight_unanswered"):
                kinds.setdefault("unanswered after 20 s", []).extend(
                    [None] * r["in_flight_unanswered"])
        # A patient client only talks to survivors, so "closed" means its
        # write was still unanswered when that node was killed in turn.
        names = {"ok": "+OK", "closed": "unanswered until the node was killed in the next "
                 "repetition, after"}
        fl = "; ".join("%d %s (%s)" % (len(v), names.get(k, k),
                                       "%.2f-%.2f s" % (min(x for x in v if x is not None),
                                                        max(x for x in v if x is not None))
                                       if any(x is not None for x in v) else "-")
                       for k, v in sorted(kinds.items()))
        out.append("| %d ms | %s | %s | %s |" % (
            f["election_ms"], each, "-" if f["median_ms"] is None else "%.0f ms" % f["median_ms"],
            fl or "-"))
    return "\n".join(out)


# --- catch-up ----------------------------------------------------------------------

class Pinger:
    """PING every interval on one connection, each after the last reply;
    records (sent, answered)."""

    def __init__(self, port, interval=0.01):
        self.conn = scale.Conn(port, timeout=600)
        self.interval = interval
        self.samples = []
        self.stop = threading.Event()
        self.go = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.go.wait()
        nxt = time.monotonic()
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                r = self.conn.call("PING")
            except (OSError, Fatal):
                break
            done = time.monotonic()
            if r != "PONG":
                break
            self.samples.append((sent, done))
            nxt = max(nxt + self.interval, done)
            time.sleep(max(0.0, nxt - time.monotonic()))

    def finish(self):
        self.stop.set()
        self.thread.join(timeout=60)
        self.conn.close()
        lat = [d - s for s, d in self.samples]
        gaps = [self.samples[i][1] - self.samples[i - 1][1] for i in range(1, len(self.samples))]
        return {"pings": len(lat),
                "max_reply_ms": max(lat) * 1000 if lat else None,
                "p50_reply_ms": statistics.median(lat) * 1000 if lat else None,
                "max_gap_ms": max(gaps) * 1000 if gaps else None,
                "over_100ms": sum(1 for x in lat if x > 0.1)}


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def section_catchup(a, exe_loadgen, tmp, words, keys, values, how):
    """how: "sigstop" (SIGSTOP, load, SIGCONT) or "restart" (SIGTERM, load,
    start again on its data directory)."""
    n = a.catchup_entries
    keyfile = os.path.join(tmp, "catchup-keys.txt")
    with open(keyfile, "w") as f:
        for k in keys[:n]:
            f.write(" ".join(words[w] for w in k) + "\n")
    cl = start_cluster(tmp, a.vectors, 3)
    res = {"entries": n, "how": how}
    try:
        lead = cl.leader()
        fol = follower(cl, lead)
        other = next(x for x in cl.nodes.values() if x is not lead and x is not fol)
        before = fol.info()
        res["leader_rss_mb_before"] = rss_mb(lead.daemon.proc.pid)
        if how == "sigstop":
            pinger = Pinger(fol.port)
            fol.sigstop()
        else:
            rc = fol.daemon.stop()
            if rc != 0:
                raise Fatal("node %d exited with status %d on SIGTERM" % (fol.id, rc))
        log("catch-up: node %d %s; loading %s entries through the leader (node %d)"
            % (fol.id, "stopped (SIGSTOP)" if how == "sigstop" else "shut down", fmt_int(n),
               lead.id))
        t0 = time.monotonic()
        p = subprocess.run([exe_loadgen, "--host", HOST, "--port", str(lead.port), "--words",
                            keyfile, "--clients", "50", "--pipeline", "16", "--requests", str(n)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise Fatal("loadgen SET failed (%d): %s" % (p.returncode, p.stderr[-1000:]))
        res["load_s"] = time.monotonic() - t0
        li = lead.info()
        target = int(li["cluster_commit_index"])
        res["entries_behind"] = target - int(before["cluster_applied_index"])
        res["leader_snapshot_index"] = int(li["cluster_snapshot_index"])
        res["leader_snapshots_taken"] = int(li["cluster_snapshots_taken"])
        c = lead.client(timeout=60)
        res["leader_keys"] = c.cmd("DBSIZE")
        c.close()
        log("catch-up: loaded in %.1f s (%s SET/s); leader commit index %d (%d entries "
            "behind), snapshot index %d" % (res["load_s"], fmt_int(n / res["load_s"]), target,
                                            res["entries_behind"], res["leader_snapshot_index"]))
        res["leader_rss_mb"] = rss_mb(lead.daemon.proc.pid)
        res["other_follower_rss_mb"] = rss_mb(other.daemon.proc.pid)
        t1 = time.monotonic()
        if how == "sigstop":
            fol.sigcont()
        else:
            fol.start()
            res["restart_ready_s"] = time.monotonic() - t1
            pinger = Pinger(fol.port)
        pinger.go.set()
        deadline = t1 + 600
        import akvtest
        c = None
        while True:
            try:
                if c is None:
                    c = fol.client(timeout=600)
                applied = int(clusterlib_info(c)["cluster_applied_index"])
                if applied >= target:
                    break
            except (OSError, akvtest.Closed):
                if c is not None:
                    c.close()
                c = None
            if time.monotonic() > deadline:
                raise Fatal("node %d did not catch up in 600 s" % fol.id)
            time.sleep(0.01)
        res["catchup_s"] = time.monotonic() - t1
        ping = pinger.finish()
        res.update(ping)
        after = clusterlib_info(c)
        res["snapshots_restored"] = int(after["cluster_snapshots_restored"]) - (
            int(before["cluster_snapshots_restored"]) if how == "sigstop" else 0)
        res["follower_keys"] = c.cmd("DBSIZE")
        c.close()
        if res["follower_keys"] != res["leader_keys"]:
            raise Fatal("after the catch-up node %d holds %s keys, the leader %s"
                        % (fol.id, res["follower_keys"], res["leader_keys"]))
        log("catch-up (%s): node %d applied index %d after %.2f s, %d snapshot(s) restored; PING "
            "max reply %.0f ms, max gap %.0f ms (%d pings)"
            % (how, fol.id, target, res["catchup_s"], res["snapshots_restored"],
               ping["max_reply_ms"] or -1, ping["max_gap_ms"] or -1, ping["pings"]))
        time.sleep(1)
        res["leader_rss_mb_caught_up"] = rss_mb(lead.daemon.proc.pid)
        check_alive(cl, res)
    finally:
        cl.kill_all()
    return res


def clusterlib_info(c):
    import clusterlib
    return clusterlib.info(c)


def table_catchup(rows):
    out = ["| the follower | entries behind (log) | keys | load through the leader | catch-up | snapshots restored | PING on the node meanwhile: p50 / longest reply / longest gap | leader RSS before / after the load / after the catch-up (other follower after the load) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append("| %s | %s | %s | %.1f s (%s SET/s) | %.2f s | %d | %.1f / %.0f / %.0f ms (%d pings) | %.0f / %.0f / %.0f MB (%.0f MB) |" % (
            "SIGSTOP, load, SIGCONT" if r["how"] == "sigstop" else
            "SIGTERM, load, started again (%.2f s to ready)" % r["restart_ready_s"],
            fmt_int(r["entries_behind"]), fmt_int(r["leader_keys"]), r["load_s"],
            fmt_int(r["entries"] / r["load_s"]), r["catchup_s"], r["snapshots_restored"],
            r["p50_reply_ms"] or 0, r["max_reply_ms"] or 0, r["max_gap_ms"] or 0,
            r["pings"], r["leader_rss_mb_before"], r["leader_rss_mb"],
            r["leader_rss_mb_caught_up"], r["other_follower_rss_mb"]))
    return "\n".join(out)


# --- QUERY per node ----------------------------------------------------------------

def section_query(a, exe_loadgen, tmp, words, keys, values, queries):
    n = a.query_entries
    wordfile = os.path.join(tmp, "queries.txt")
    with open(wordfile, "w") as f:
        f.write("".join(words[q] + "\n" for q in queries))
    cl = start_cluster(tmp, a.vectors, 3)
    res = {"entries": n, "alone": {}, "together": {}}
    try:
        lead = cl.leader()
        secs = scale.load(lead.port, words, keys, values, 0, n)
        cl.wait_applied()
        log("query: %s entries loaded through the leader in %.1f s, applied everywhere"
            % (fmt_int(n), secs))
        nodes = sorted(cl.nodes.values(), key=lambda x: x.id)
        role = {x.id: ("leader" if x is lead else "follower") for x in nodes}
        for x in nodes:
            probe = scale.loadgen(exe_loadgen, x.port, wordfile, "query", 50, 200)
            nreq = int(max(probe["rps"] * a.seconds, 500))
            c0 = cpu_seconds(x.daemon.proc.pid)
            r = scale.loadgen(exe_loadgen, x.port, wordfile, "query", 50, nreq)
            cpu = cpu_seconds(x.daemon.proc.pid) - c0
            res["alone"][x.id] = {"role": role[x.id], "rps": r["rps"],
                                  "requests": r["requests"], "cpu_s": cpu,
                                  "cpu_ms_per_query": cpu / r["requests"] * 1000,
                                  "loadgen_cpu_s": r["cpu_s"], "seconds": r["seconds"]}
            log("query: node %d (%s) alone: %s QUERY/s, %.3f ms CPU per query"
                % (x.id, role[x.id], fmt_int(r["rps"]), cpu / r["requests"] * 1000))
        # All three at once: each loadgen sized for about --seconds at a third
        # of its node's rate alone.
        procs = {}
        c0 = {x.id: cpu_seconds(x.daemon.proc.pid) for x in nodes}
        t0 = time.monotonic()
        for x in nodes:
            nreq = int(max(res["alone"][x.id]["rps"] * a.seconds / 3, 300))
            procs[x.id] = subprocess.Popen(
                [exe_loadgen, "--host", HOST, "--port", str(x.port), "--words", wordfile,
                 "--query", "--clients", "50", "--requests", str(nreq)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        total = 0
        for x in nodes:
            out, err = procs[x.id].communicate(timeout=600)
            if procs[x.id].returncode != 0:
                raise Fatal("loadgen QUERY on node %d failed: %s" % (x.id, err[-1000:]))
            r = {k: float(v) for k, v in (kv.split("=", 1) for kv in out.split())}
            cpu = cpu_seconds(x.daemon.proc.pid) - c0[x.id]
            res["together"][x.id] = {"role": role[x.id], "rps": r["rps"],
                                     "requests": r["requests"], "cpu_s": cpu,
                                     "cpu_ms_per_query": cpu / r["requests"] * 1000,
                                     "seconds": r["seconds"]}
            total += r["requests"]
        wall = time.monotonic() - t0
        res["together_total_rps"] = total / wall
        res["together_sum_rps"] = sum(v["rps"] for v in res["together"].values())
        log("query: all three at once: %s QUERY/s in all (sum of the three rates %s)"
            % (fmt_int(res["together_total_rps"]), fmt_int(res["together_sum_rps"])))
        check_alive(cl, res)
    finally:
        cl.kill_all()
    cpq = statistics.mean(v["cpu_ms_per_query"] for v in res["alone"].values()) / 1000
    res["cpu_s_per_query"] = cpq
    res["per_machine_estimate"] = (os.cpu_count() or 1) / cpq
    return res


def table_query(r, cpus):
    out = ["| node | QUERY/s alone | CPU ms per query alone | QUERY/s all three at once | CPU ms per query at once |",
           "| --- | --- | --- | --- | --- |"]
    for nid in sorted(r["alone"]):
        al, to = r["alone"][nid], r["together"][nid]
        out.append("| %d (%s) | %s | %.3f | %s | %.3f |" % (
            nid, al["role"], fmt_int(al["rps"]), al["cpu_ms_per_query"], fmt_int(to["rps"]),
            to["cpu_ms_per_query"]))
    out.append("| all three | | | %s (sum of the three: %s) | |" % (
        fmt_int(r["together_total_rps"]), fmt_int(r["together_sum_rps"])))
    est = r["per_machine_estimate"]
    text = ("\nEstimate: a node spends %.3f ms of CPU per query (mean of the three alone), so "
            "one node with a %d-CPU machine to itself (clients elsewhere) would answer at most "
            "about %s QUERY/s, and N such machines about N x %s (%s for 3): reads are served "
            "locally and scale with the nodes; writes do not (every node applies every write)."
            % (r["cpu_s_per_query"] * 1000, cpus, fmt_int(est), fmt_int(est), fmt_int(3 * est)))
    return "\n".join(out) + "\n" + text


# --- the run -----------------------------------------------------------------------

SECTIONS = ("set", "failover", "catchup", "query")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true",
                    help="shorter runs: 1.5 s cells, 2 repetitions, 100,000 entries behind")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="sections, comma-separated (default %s)" % ",".join(SECTIONS))
    ap.add_argument("--build", help="the build directory (default build-release/, else build/)")
    ap.add_argument("--vectors", default=os.environ.get("AKV_VECTORS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "attnkv", "glove-6B-100d.akv"))
    ap.add_argument("--seconds", type=float, default=None, help="load per cell (default 4)")
    ap.add_argument("--reps", type=int, default=None, help="failovers per election timeout "
                    "(default 5)")
    ap.add_argument("--elections", default="1000,300",
                    help="election timeouts for the failover, ms (default 1000,300)")
    ap.add_argument("--catchup-entries", type=int, default=None,
                    help="entries the stopped follower falls behind (default 1,000,000)")
    ap.add_argument("--catchup", default="sigstop,restart",
                    help="how the follower falls behind: sigstop, restart or both "
                    "(default sigstop,restart)")
    ap.add_argument("--query-entries", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json", help="also write the raw figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    a.seconds = a.seconds or (1.5 if a.quick else 4.0)
    a.reps = a.reps or (2 if a.quick else 5)
    a.catchup_entries = a.catchup_entries or (100000 if a.quick else 1000000)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    for s in only:
        if s not in SECTIONS:
            ap.error("unknown section %r (sections: %s)" % (s, ", ".join(SECTIONS)))
    if shutil.which("redis-benchmark") is None and "set" in only:
        raise Fatal("no redis-benchmark (apt-get install redis-tools)")

    exe, bdir = scale.find_exe(a.build, "src/server/attnkvd")
    exe_loadgen, _ = scale.find_exe(bdir, "bench/loadgen")
    os.environ["AKV_ATTNKVD"] = exe  # clusterlib's daemons
    m = machine()
    log("attnkvd %s, vectors %s; %d CPUs (%s), load average %.2f"
        % (exe, a.vectors, m["cpus"], m["model"], m["load"][0]))
    words = scale.read_words(a.vectors)[0]
    nmax = max(a.catchup_entries if "catchup" in only else 0,
               a.query_entries if "query" in only else 0, 1)
    queries, keys, values = scale.make_data(words, [nmax], 2000, a.seed)

    tmp = tempfile.mkdtemp(prefix="akv-cluster-bench-")
    res = {"machine": m, "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "daemon": exe, "quick": a.quick}
    t_start = time.monotonic()
    try:
        if "set" in only:
            res["set"] = section_set(a, exe, tmp)
        if "failover" in only:
            res["failover"] = [section_failover(a, tmp, int(e)) for e in a.elections.split(",")]
        if "catchup" in only:
            res["catchup"] = [section_catchup(a, exe_loadgen, tmp, words, keys, values, how)
                              for how in a.catchup.split(",")]
        if "query" in only:
            res["query"] = section_query(a, exe_loadgen, tmp, words, keys, values, queries)
    finally:
        if a.keep:
            log("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res["seconds"] = time.monotonic() - t_start
    m2 = machine()
    res["load_end"] = m2["load"]
    print("Cluster figures, %s: every node and every load generator on one machine, %d CPUs "
          "(%s), shared by all of them; load average %.2f at the start, %.2f at the end; run "
          "took %.0f s.\n" % (res["started"], m["cpus"], m["model"], m["load"][0],
                              m2["load"][0], res["seconds"]))
    if "set" in res:
        print("SET (redis-benchmark `SET cat animal`; latency: one client, no pipelining)\n")
        print(table_set(res["set"]) + "\n")
    if "failover" in res:
        print("Failover: kill -9 of the leader under writes, to the first write sent after the "
              "kill and acknowledged\n")
        print(table_failover(res["failover"]) + "\n")
    if "catchup" in res:
        print("Catch-up of a follower stopped while the others take the entries (until its "
              "applied index is the leader's commit index)\n")
        print(table_catchup(res["catchup"]) + "\n")
    if "query" in res:
        print("QUERY per node, %s entries, 50 clients per loadgen\n"
              % fmt_int(res["query"]["entries"]))
        print(table_query(res["query"], m["cpus"]) + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fatal as e:
        log(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
