#!/usr/bin/env python3
"""daemon-exporter: attnkvd as Redis monitoring tools see it.

Runs the packaged Prometheus exporter (Debian's prometheus-redis-exporter,
or the binary AKV_REDIS_EXPORTER names) against the real daemon, each on a
free port, scrapes /metrics and checks the metrics a standard Redis
dashboard (Grafana's "Redis Dashboard for Prometheus Redis Exporter", 763)
reads: up, uptime, memory used and max, clients, blocked clients,
commands processed, instance info (role, redis_version), keys per
database, network bytes, per-command calls, time and latency percentiles,
keyspace hits, expired and evicted keys; that the command rate is real
while a load runs (INFO's instantaneous_ops_per_sec, and the rate of
redis_commands_processed_total that the dashboard plots); and what of
attnkv's own figures the exporter's mechanisms carry (docs/operations.md,
"Monitoring"). The exporter tests skip where the exporter is not installed.
It also runs `redis-cli --stat`, which must show the real memory and
"blocked 0".

Run alone: meson test -C build daemon-exporter, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_exporter.py [-k NAME]
(environment: see akvtest.py).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import akvtest
from akvtest import Client, Skip, info_fields

SUITE = "exporter"


def exporter_binary():
    exe = os.environ.get("AKV_REDIS_EXPORTER") or shutil.which("prometheus-redis-exporter") \
        or shutil.which("redis_exporter")
    if not exe:
        raise Skip("prometheus-redis-exporter is not installed (apt-get install "
                   "prometheus-redis-exporter)")
    return exe


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format as [(name, {label: value}, float)]."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def value(samples, name, **labels):
    """The value of the one sample called name whose labels include these."""
    got = [v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items())]
    assert len(got) == 1, "%s%r: %d samples; have %s" % (
        name, labels, len(got), sorted({n for n, _, _ in samples if n.startswith("redis_")}))
    return got[0]


def labels_of(samples, name):
    return [l for n, l, _ in samples if n == name]


class Exporter:
    """The exporter scraping port, listening on a free port of its own."""

    def __init__(self, workdir, port, args=()):
        exe = exporter_binary()
        for attempt in range(3):  # the free port may be taken meanwhile
            self.port = free_port()
            self.logpath = os.path.join(workdir, "exporter-%d.log" % self.port)
            self.log = open(self.logpath, "wb")
            # Go's flag package takes -name and --name alike.
            self.proc = subprocess.Popen(
                [exe, "-redis.addr", "redis://127.0.0.1:%d" % port,
                 "-web.listen-address", "127.0.0.1:%d" % self.port] + list(args),
                stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if self._wait():
                return
            self.stop()
        raise AssertionError("the exporter did not start:\n" + self.text())

    def _wait(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def scrape(self):
        url = "http://127.0.0.1:%d/metrics" % self.port
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200
            samples = parse_metrics(r.read().decode())
        assert value(samples, "redis_exporter_last_scrape_error", err="") == 0, self.text()
        return samples

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def prepare(c):
    """Known activity: 20 keys, 5 QUERYs, a hit, misses, an expired key, an
    error."""
    c.cmd("FLUSHALL")
    for i in range(20):
        assert c.cmd("SET", "w%04d" % i, "animal") == "OK"
    for _ in range(5):
        assert len(c.cmd("QUERY", "cat")) == 5
    assert c.cmd("GET", "w0000") == "animal"
    assert c.cmd("GET", "nope") is None
    assert c.cmd("SET", "w1999", "toy", "PX", "1") == "OK"
    time.sleep(0.05)
    assert c.cmd("GET", "w1999") is None  # expired on lookup
    assert akvtest.is_err(c.cmd("NOSUCHCOMMAND"), "unknown command")


@akvtest.test(SUITE)
def test_dashboard_metrics(env):
    d = env.daemon
    c = d.client()
    c.cmd("CONFIG", "RESETSTAT")
    prepare(c)
    # An idle worker frees what queries keep between them after half a
    # second: let that happen before the scrape, and compare the memory
    # with INFO's before and after it.
    time.sleep(1.0)
    used0 = int(info_fields(c, "memory")["used_memory"])
    e = Exporter(env.workdir, d.port)
    try:
        m = e.scrape()
    finally:
        e.stop()
    assert "level=error" not in e.text(), e.text()
    info = info_fields(c, "everything")
    assert value(m, "redis_up") == 1
    assert value(m, "redis_uptime_in_seconds") >= 0
    used = value(m, "redis_memory_used_bytes")
    used1 = int(info["used_memory"])
    assert used > 0 and min(used0, used1) - (1 << 20) < used < max(used0, used1) + (1 << 20), \
        (used, used0, used1)
    assert value(m, "redis_memory_max_bytes") == 0  # no maxmemory
    assert value(m, "redis_memory_used_rss_bytes") > used
    assert value(m, "redis_connected_clients") >= 2  # this test and the exporter
    assert value(m, "redis_blocked_clients") == 0
    assert value(m, "redis_commands_processed_total") >= 30
    inst = labels_of(m, "redis_instance_info")
    assert len(inst) == 1, inst
    inst = inst[0]
    assert inst["role"] == "master" and inst["redis_version"] == "7.0.0", inst
    assert inst["redis_mode"] == "standalone" and inst["maxmemory_policy"] == "noeviction", inst
    assert inst["tcp_port"] == str(d.port) and inst["process_id"] == str(d.proc.pid), inst
    assert re.fullmatch(r"[0-9a-f]{40}", inst["run_id"]), inst
    assert inst["os"].startswith("Linux"), inst
    assert value(m, "redis_db_keys", db="db0") == 20
    assert value(m, "redis_db_keys", db="db1") == 0
    assert value(m, "redis_net_input_bytes_total") > 500
    assert value(m, "redis_net_output_bytes_total") > 500
    assert value(m, "redis_commands_total", cmd="query") == 5
    assert value(m, "redis_commands_total", cmd="set") == 21
    assert value(m, "redis_commands_duration_seconds_total", cmd="query") > 0
    assert value(m, "redis_keyspace_hits_total") == 1
    assert value(m, "redis_keyspace_misses_total") == 2
    assert value(m, "redis_expired_keys_total") == 1
    assert value(m, "redis_evicted_keys_total") == 0
    assert value(m, "redis_errors_total", err="ERR") == 1
    assert value(m, "redis_connected_slaves") == 0
    assert value(m, "redis_aof_last_bgrewrite_status") == 1
    assert value(m, "redis_cpu_user_seconds_total") + value(m, "redis_cpu_sys_seconds_total") > 0
    assert value(m, "redis_mem_fragmentation_ratio") > 0
    # Query latency: a summary from latencystats (percentiles) and
    # commandstats (count, sum).
    p = {l["quantile"]: v for n, l, v in m
         if n == "redis_latency_percentiles_usec" and l.get("cmd") == "query"}
    assert set(p) == {"50", "99", "99.9"} and 0 < p["50"] <= p["99"] <= p["99.9"], p
    assert value(m, "redis_latency_percentiles_usec_count", cmd="query") == 5
    c.close()


@akvtest.test(SUITE)
def test_ops_per_sec_under_load(env):
    d = env.daemon
    c = d.client()
    stop = threading.Event()
    sent = []

    def load():
        lc = d.client()
        batch = Client.encode("GET", "w0000") * 200
        n = 0
        while not stop.is_set():
            lc.send(batch)
            for _ in range(200):
                lc.read()
            n += 200
        sent.append(n)
        lc.close()

    e = Exporter(env.workdir, d.port)
    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(1.0)
        first = e.scrape()
        ops = int(info_fields(c, "stats")["instantaneous_ops_per_sec"])
        kbps_in = float(info_fields(c, "stats")["instantaneous_input_kbps"])
        time.sleep(1.0)
        second = e.scrape()
    finally:
        stop.set()
        t.join(timeout=60)
        e.stop()
    done = sent[0]
    rate = (value(second, "redis_commands_processed_total")
            - value(first, "redis_commands_processed_total"))
    print("     %d GETs; instantaneous_ops_per_sec %d, %.1f kbps in; %d commands between "
          "scrapes 1 s apart" % (done, ops, kbps_in, rate))
    assert ops > 100 and kbps_in > 1, (ops, kbps_in)
    assert rate > 100, rate
    # Newer exporters export it; 1.45 (Debian 12) does not.
    if any(n == "redis_instantaneous_ops_per_sec" for n, _, _ in second):
        assert value(second, "redis_instantaneous_ops_per_sec") > 0
    # Once the load stops, the rate falls back within the 1.6 s window.
    deadline = time.monotonic() + 10
    while int(info_fields(c, "stats")["instantaneous_ops_per_sec"]) > 50:
        assert time.monotonic() < deadline, info_fields(c, "stats")
        time.sleep(0.2)
    c.close()


@akvtest.test(SUITE)
def test_attnkv_figures_through_exporter(env):
    """What docs/operations.md says the exporter can carry of attnkv's own
    figures: QUERY, EXPLAIN and NEIGHBORS as commands (calls, time,
    percentiles), the slow log, settings with -include-config-metrics."""
    d = env.daemon
    c = d.client()
    c.cmd("CONFIG", "RESETSTAT")
    c.cmd("SET", "cat", "animal")
    name, old = c.cmd("CONFIG", "GET", "slowlog-log-slower-than")
    assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0") == "OK"
    try:
        assert len(c.cmd("QUERY", "cat")) >= 1
        assert c.cmd("EXPLAIN", "cat")
        assert c.cmd("NEIGHBORS", "cat")
        e = Exporter(env.workdir, d.port, ["-include-config-metrics"])
        try:
            m = e.scrape()
        finally:
            e.stop()
    finally:
        assert c.cmd("CONFIG", "SET", name, old) == "OK"
    for cmd in ("query", "explain", "neighbors"):
        assert value(m, "redis_commands_total", cmd=cmd) == 1, cmd
        assert value(m, "redis_latency_percentiles_usec", cmd=cmd, quantile="99") > 0, cmd
    assert value(m, "redis_slowlog_length") > 0
    assert value(m, "redis_last_slow_execution_duration_seconds") >= 0
    # Settings: attnkv's own directives come through as config values.
    assert value(m, "redis_config_value", key="maxkeys") == 0
    assert value(m, "redis_config_value", key="neighbor-lists") >= 0
    assert value(m, "redis_config_maxclients") > 0
    c.cmd("SLOWLOG", "RESET")
    c.close()


def parse_human(text):
    """Bytes of a size as Redis writes it: 4.46M, 812.50K, 1.2G, 900B."""
    scale = {"B": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    return float(text[:-1]) * scale[text[-1]]


@akvtest.test(SUITE)
def test_redis_cli_stat(env):
    cli, stdbuf = shutil.which("redis-cli"), shutil.which("stdbuf")
    if not cli or not stdbuf:
        raise Skip("redis-cli (redis-tools) or stdbuf is not installed")
    d = env.daemon
    c = d.client()
    c.cmd("FLUSHALL")
    for i in range(7):
        c.cmd("SET", "w%04d" % i, "toy")
    # The workers free what queries keep between them once idle for half a
    # second (earlier tests ran queries): let that happen first, and still
    # accept any value between the used memory before and after.
    time.sleep(1.0)
    before = parse_human(info_fields(c, "memory")["used_memory_human"])
    # --stat prints until killed; line-buffered so nothing is lost then.
    r = subprocess.run(["timeout", "2.5", stdbuf, "-oL", cli, "-p", str(d.port), "--stat",
                        "-i", "0.5"], capture_output=True, text=True, timeout=60)
    rows = [l.split() for l in r.stdout.splitlines() if re.match(r"^\d+\s", l)]
    assert len(rows) >= 2, r
    assert "mem" in r.stdout and "blocked" in r.stdout, r.stdout
    after = parse_human(info_fields(c, "memory")["used_memory_human"])
    lo, hi = min(before, after), max(before, after)
    for row in rows:
        keys, mem, clients, blocked = row[0], row[1], row[2], row[3]
        assert keys == "7", row
        assert mem != "0B" and re.fullmatch(r"[\d.]+[KMG]", mem), row
        assert 0.8 * lo <= parse_human(mem) <= 1.2 * hi, (row, before, after)
        assert int(clients) >= 2, row
        assert blocked == "0", row
    c.cmd("FLUSHALL")
    c.close()


if __name__ == "__main__":
    sys.exit(akvtest.main(SUITE))
