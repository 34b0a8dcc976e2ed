#!/usr/bin/env python3
"""daemon-service: attnkvd as a service; the test plays systemd.

It binds its own NOTIFY_SOCKET (a Unix datagram socket, by path and in the
abstract namespace) and checks READY=1 (sent only once the port accepts),
the STATUS= lines, WATCHDOG=1 pings (WATCHDOG_USEC=200 ms) and STOPPING=1 on
SIGTERM; passes a listening socket as descriptor 3 with LISTEN_FDS and
LISTEN_PID (set by a tiny sh wrapper that then execs the daemon, so the pid
is the daemon's); and checks INFO counters against known activity,
SLOWLOG, CONFIG SET, SIGHUP (the log reopened, nothing else) and CONFIG
RELOAD / SIGUSR2 (the file's settings applied, all or nothing). Last, a
cluster node configured as docs/operations.md says, run in the sandbox of
systemd/attnkvd.service.in rebuilt without systemd (its SystemCallFilter,
RestrictAddressFamilies and MemoryDenyWriteExecute as seccomp filters
through libseccomp, UMask, LimitNOFILE, and when run as root another user
and ProtectSystem=strict's read-only mounts): its Raft state in the state
directory, a write kept across a restart, a cluster-dir elsewhere refused.

Run alone: meson test -C build daemon-service, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_service.py [-k NAME]
(environment: see akvtest.py).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import akvtest
from akvtest import START_TIMEOUT, Client, Daemon, info_fields, is_err

SOURCE_ROOT = os.environ.get("AKV_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Manager:
    """The service manager's side of sd_notify: a datagram socket that
    records every message with the time it arrived."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path.startswith("@"):
            self.sock.bind("\0" + path[1:])
        else:
            self.sock.bind(path)
        self.address = path
        self.sock.settimeout(0.05)
        self.messages = []  # (monotonic time, text)
        self.hooks = []  # (predicate, callback) run on the receiving thread
        self.hook_errors = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode(errors="replace")
            now = time.monotonic()
            with self.lock:
                hooks = list(self.hooks)
            # Hooks run before the message is recorded, so whoever waits
            # for it sees what the hook found.
            for pred, cb in hooks:
                if pred(text):
                    try:
                        cb(text)
                    except Exception as e:  # pylint: disable=broad-except
                        # A failing hook must not kill the receiver: the
                        # waiting test would then time out with no clue.
                        with self.lock:
                            self.hook_errors.append(repr(e))
            with self.lock:
                self.messages.append((now, text))

    def texts(self):
        with self.lock:
            return [t for _, t in self.messages]

    def wait_for(self, text, timeout=START_TIMEOUT, count=1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(1 for t in self.texts() if t == text or t.startswith(text)) >= count:
                return
            time.sleep(0.01)
        raise AssertionError("no %r from attnkvd; got %r (hook errors %r)"
                             % (text, self.texts(), self.hook_errors))

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()


def notify_run(env, address):
    """READY=1 timing, STATUS lines, watchdog and STOPPING=1 on one socket."""
    if not address.startswith("@"):
        address = os.path.join(env.workdir, address)
    m = Manager(address)
    ready_checks = {}

    logpath = os.path.join(env.workdir, "notify.log")

    def on_ready(_):
        # At the moment READY=1 arrives the port must already accept. The
        # daemon can get here before Daemon() has returned, so the hook reads
        # the log by its path rather than through the Daemon object.
        try:
            with open(logpath, "rb") as f:
                log = f.read().decode(errors="replace")
        except FileNotFoundError:
            log = ""
        ports = re.findall(r"listening on \S+:(\d+)", log)
        ready_checks["listening_logged"] = bool(ports)
        if ports:
            ready_checks["port"] = int(ports[0])
            try:
                c = Client(int(ports[0]), timeout=5)
                ready_checks["local"] = c.sock.getsockname()
                ready_checks["ping"] = c.cmd("PING")
                c.close()
            except Exception as e:  # recorded, checked below
                ready_checks["ping"] = repr(e)

    m.hooks.append((lambda t: t == "READY=1", on_ready))
    p = Daemon(env.workdir, env.vectors, name="notify", expect_start=False,
               extra_env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"})
    try:
        m.wait_for("READY=1")
        p.wait_ready()
        t = m.texts()
        i_ready = t.index("READY=1")
        assert ready_checks.get("listening_logged") and ready_checks.get("ping") == "PONG", \
            (ready_checks, t, p.text())
        statuses = [x for x in t[:i_ready] if x.startswith("STATUS=")]
        assert any(x.startswith("STATUS=Loading the vectors from " + env.vectors) for x in statuses), t
        assert any(x.startswith("STATUS=Vectors loaded (%d words" % len(env.words))
                   for x in statuses), t
        m.wait_for("STATUS=Ready: port %d" % p.port)
        # Pings every 100 ms (half of 200 ms): at least 5 in the next 0.8 s.
        n0 = t.count("WATCHDOG=1")
        time.sleep(0.8)
        n1 = m.texts().count("WATCHDOG=1")
        assert n1 - n0 >= 5, (n0, n1)
        stamps = [ts for ts, x in m.messages if x == "WATCHDOG=1"]
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        # Each within the 200 ms budget (what systemd enforces; the gaps are
        # stamped on receipt, so a loaded machine adds its own delay).
        assert max(gaps[-5:]) < 0.2, gaps
        rc = p.stop()
        assert rc == 0, p.text()[-3000:]
        # The daemon has exited, but the receiving thread may not have
        # recorded its last datagrams yet.
        m.wait_for("STATUS=Shutting down", timeout=10)
        t = m.texts()
        assert "STOPPING=1" in t, t
        assert t.index("STOPPING=1") > t.index("READY=1")
        assert any(x.startswith("STATUS=Shutting down") for x in t), t
    finally:
        p.kill()
        m.close()


@akvtest.test("service")
def test_notify_path_socket(env):
    notify_run(env, "notify.sock")


@akvtest.test("service")
def test_notify_abstract_socket(env):
    notify_run(env, "@akv-test-notify-%d" % os.getpid())


@akvtest.test("service")
def test_watchdog_for_another_pid(env):
    m = Manager(os.path.join(env.workdir, "wd.sock"))
    p = Daemon(env.workdir, env.vectors, name="wdpid", expect_start=False,
               extra_env={"NOTIFY_SOCKET": m.address, "WATCHDOG_USEC": "100000",
                          "WATCHDOG_PID": "1"})
    try:
        m.wait_for("READY=1")
        time.sleep(0.4)
        assert "WATCHDOG=1" not in m.texts(), m.texts()
        assert p.stop() == 0
    finally:
        p.kill()
        m.close()


@akvtest.test("service")
def test_outside_systemd(env):
    """No NOTIFY_SOCKET: nothing is sent and nothing breaks."""
    p = Daemon(env.workdir, env.vectors, name="plain", expect_start=False,
               extra_env={"WATCHDOG_USEC": "100000"})
    try:
        p.wait_ready()
        c = p.client()
        assert c.cmd("PING") == "PONG"
        c.close()
        assert p.stop() == 0
        assert "watchdog" not in p.text()
    finally:
        p.kill()


@akvtest.test("service")
def test_socket_activation(env):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    port = ls.getsockname()[1]
    # A client may connect before the daemon even runs: the socket queues it.
    early = Client(port)
    early.send(Client.encode("PING"))
    m = Manager(os.path.join(env.workdir, "act.sock"))
    # --port 0 is ignored: the inherited socket is served instead.
    p = Daemon(env.workdir, env.vectors, name="act", expect_start=False, listen_sock=ls,
               extra_env={"NOTIFY_SOCKET": m.address})
    ls.close()  # the daemon has its own copy
    try:
        m.wait_for("READY=1")
        p.wait_ready()
        assert p.port == port, (p.port, port)
        assert "socket from the service manager" in p.text(), p.text()
        assert early.read() == "PONG"
        early.close()
        c = p.client()
        assert int(info_fields(c, "server")["tcp_port"]) == port
        c.close()
        assert p.stop() == 0
        m.wait_for("STOPPING=1", timeout=10)
    finally:
        p.kill()
        m.close()


@akvtest.test("service")
def test_socket_activation_not_tcp(env):
    """A Unix socket handed over is refused: attnkvd serves TCP only."""
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(os.path.join(env.workdir, "unix.sock"))
    ls.listen(1)
    p = Daemon(env.workdir, env.vectors, name="actunix", expect_start=False, listen_sock=ls)
    ls.close()
    try:
        rc = p.proc.wait(timeout=60)
        assert rc == 1, (rc, p.text())
        assert "is not a TCP socket" in p.text(), p.text()
    finally:
        p.kill()


@akvtest.test("service")
def test_socket_activation_other_pid(env):
    """LISTEN_PID naming another process: the daemon binds by itself."""
    p = Daemon(env.workdir, env.vectors, name="actpid", expect_start=False,
               extra_env={"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    try:
        p.wait_ready()
        assert "socket from the service manager" not in p.text()
        c = p.client()
        assert c.cmd("PING") == "PONG"
        c.close()
        assert p.stop() == 0
    finally:
        p.kill()


@akvtest.test("service")
def test_info_counts(env):
    p = Daemon(env.workdir, env.vectors, ("--workers", "2"), name="info", expect_start=False)
    try:
        p.wait_ready()
        c = p.client()
        assert c.cmd("SET", "cat", "animal") == "OK"
        assert c.cmd("SET", "dog", "animal") == "OK"
        n = 25
        for i in range(n):
            assert len(c.cmd("QUERY", "king")) == 5
        assert is_err(c.cmd("QUERY", "zzzzqqq"), "unknown word")
        assert is_err(c.cmd("GET"), "wrong number")
        extra = [p.client() for _ in range(3)]
        for x in extra:
            assert x.cmd("PING") == "PONG"
        f = info_fields(c, "everything")
        q = dict(kv.split("=") for kv in f["cmdstat_query"].split(","))
        assert int(q["calls"]) == n + 1 and int(q["failed_calls"]) == 1, q
        assert int(q["rejected_calls"]) == 0 and int(q["usec"]) > 0, q
        assert float(q["usec_per_call"]) > 0, q
        s = dict(kv.split("=") for kv in f["cmdstat_set"].split(","))
        assert s["calls"] == "2" and s["failed_calls"] == "0", s
        g = dict(kv.split("=") for kv in f["cmdstat_get"].split(","))
        assert g["calls"] == "0" and g["rejected_calls"] == "1", g
        assert int(f["query_count"]) == n
        assert int(f["connected_clients"]) == 4
        assert int(f["total_connections_received"]) == 4
        assert int(f["rejected_connections"]) == 0
        assert int(f["total_error_replies"]) == 2
        assert int(f["jobs_waiting"]) == 0 and int(f["jobs_in_flight"]) == 0
        pct = [int(f["query_latency_p%s_us" % k]) for k in ("50", "90", "99", "999")]
        assert 0 < pct[0] <= pct[1] <= pct[2] <= pct[3] <= int(f["query_latency_max_us"]), pct
        # Redis 7's latencystats line: every call (the failed one too), to
        # the nanosecond, from the same clock as query_latency_*.
        lp = [kv.split("=") for kv in f["latency_percentiles_usec_query"].split(",")]
        assert [k for k, _ in lp] == ["p50", "p99", "p99.9"], lp
        v = [float(x) for _, x in lp]
        # The failed call (an unknown word: the tokenizer's tries and the
        # spelling suggestion) is not in query_latency_max_us; no call
        # takes longer than all of them together.
        assert 0 < v[0] <= v[1] <= v[2] <= int(q["usec"]) * 1.05 + 50, (v, f)
        assert v[0] <= int(f["query_latency_max_us"]) * 1.05 + 50, (v, f)
        assert f["errorstat_ERR"] == "count=2", f
        assert int(f["used_memory_rss"]) > 1 << 20
        assert int(f["used_memory_store"]) > 0 and f["keys"] == "2"
        assert int(f["vocabulary_size"]) == len(env.words)
        assert f["vocabulary_file"] == env.vectors and int(f["vector_dim"]) == env.dim
        plain = c.cmd("INFO")
        for sec in ("Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU",
                    "Latency", "Errorstats", "Cluster", "Store", "Keyspace", "Vectors"):
            assert "# %s\r\n" % sec in plain, plain
        assert "# Commandstats" not in plain and "# Latencystats" not in plain
        assert "# Commandstats" in c.cmd("INFO", "all")
        assert "# Latencystats" in c.cmd("INFO", "all")
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        f = info_fields(c, "everything")
        assert "cmdstat_query" not in f and f["query_count"] == "0"
        assert "latency_percentiles_usec_query" not in f and "errorstat_ERR" not in f
        assert f["connected_clients"] == "4"
        for x in extra:
            x.close()
        c.close()
        assert p.stop() == 0
    finally:
        p.kill()


@akvtest.test("service")
def test_slowlog(env):
    p = Daemon(env.workdir, env.vectors, name="slow", expect_start=False)
    try:
        p.wait_ready()
        c = p.client()
        assert c.cmd("SLOWLOG", "LEN") == 0  # default threshold 10 ms: nothing yet
        assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0") == "OK"
        c.cmd("SET", "cat", "animal")
        c.cmd("QUERY", "dog", "COUNT", "2")
        c.cmd("SET", "k" * 300, "animal")  # fails, and is cut in the log
        entries = c.cmd("SLOWLOG", "GET", "-1")
        assert len(entries) == 4, entries  # CONFIG SET, SET, QUERY, SET
        newest = entries[0]
        assert len(newest) == 6
        ident, when, dur, argv, addr, name = newest
        assert argv[0] == "SET" and argv[1].startswith("k" * 128)
        assert argv[1].endswith("... (172 more bytes)"), argv
        assert abs(when - time.time()) < 60 and dur >= 0 and name == ""
        local = c.sock.getsockname()
        assert addr == "%s:%d" % local, (addr, local)
        q = entries[1]
        assert q[3] == ["QUERY", "dog", "COUNT", "2"] and q[0] == ident - 1, q
        assert [e[0] for e in entries] == sorted((e[0] for e in entries), reverse=True)
        assert len(c.cmd("SLOWLOG", "GET", "2")) == 2
        assert c.cmd("CONFIG", "SET", "slowlog-max-len", "2") == "OK"
        assert c.cmd("SLOWLOG", "LEN") == 2
        assert c.cmd("SLOWLOG", "RESET") == "OK"
        assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1") == "OK"
        c.cmd("PING")
        assert c.cmd("SLOWLOG", "LEN") == 1  # only the SLOWLOG RESET itself
        assert "slowlog-log-slower-than" in c.cmd("CONFIG", "GET", "slowlog*")
        c.close()
        assert p.stop() == 0
    finally:
        p.kill()


@akvtest.test("service")
def test_config_set(env):
    p = Daemon(env.workdir, env.vectors, ("--loglevel", "notice"), name="cset",
               expect_start=False)
    try:
        p.wait_ready()
        c = p.client()
        c.cmd("SET", "cat", "animal")
        assert len(c.cmd("QUERY", "dog")) == 5
        assert c.cmd("CONFIG", "SET", "count", "2") == "OK"
        assert len(c.cmd("QUERY", "dog")) == 2
        assert c.cmd("CONFIG", "GET", "count") == ["count", "2"]
        r = c.cmd("CONFIG", "SET", "port", "7000")
        assert is_err(r, "CONFIG SET 'port' cannot be changed at run time"), r
        for name, val in (("bind", "::1"), ("workers", "3")):
            assert is_err(c.cmd("CONFIG", "SET", name, val), "cannot be changed at run time")
        for name, val, how in (("vectors", "/x", "restart attnkvd"),
                               ("dir", "/tmp", "restart attnkvd"),
                               ("logfile", "/proc/self/mem", "reload it with CONFIG RELOAD")):
            r = c.cmd("CONFIG", "SET", name, val)
            assert is_err(r, "is a path") and how in str(r), (name, r)
        assert is_err(c.cmd("CONFIG", "SET", "count", "0"), "bad count")
        assert is_err(c.cmd("CONFIG", "SET", "nope", "1"), "Unknown option")
        # loglevel: debug lines appear only after the change.
        assert "debug:" not in p.text()
        assert c.cmd("CONFIG", "SET", "loglevel", "debug", "maxclients", "2") == "OK"
        x = p.client()
        assert x.cmd("PING") == "PONG"
        y = p.client()
        assert is_err(y.read(), "max number of clients reached")
        y.close()
        x.close()
        assert c.cmd("CONFIG", "SET", "maxclients", "100") == "OK"
        # logfile is a path: only a reload changes it (test_config_reload).
        newlog = os.path.join(env.workdir, "cset-new.log")
        assert is_err(c.cmd("CONFIG", "SET", "logfile", newlog), "is a path")
        assert not os.path.exists(newlog)
        c.close()
        assert p.stop() == 0
    finally:
        p.kill()


@akvtest.test("service")
def test_sighup_reopens_log_only(env):
    """logrotate's SIGHUP reopens the log and nothing else: a CONFIG SET made
    in an emergency survives it, and an edited file is not read."""
    conf = os.path.join(env.workdir, "rot.conf")
    log = os.path.join(env.workdir, "rot-file.log")
    with open(conf, "w") as f:
        f.write('port 0\nmaxclients 10000\ncount 3\nlogfile "%s"\n' % log)
    p = Daemon(env.workdir, env.vectors, ("--config", conf), name="rot", expect_start=False,
               port=None, logfile=log)
    try:
        p.wait_ready()
        c = p.client()
        assert c.cmd("CONFIG", "SET", "maxclients", "50") == "OK"
        with open(conf, "a") as f:
            f.write("count 4\n")
        os.rename(log, log + ".1")
        p.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "SIGHUP: log reopened" not in p.text(log):
            assert time.monotonic() < deadline, p.text(log + ".1")[-2000:]
            time.sleep(0.02)
        assert c.cmd("CONFIG", "GET", "maxclients") == ["maxclients", "50"]
        assert c.cmd("CONFIG", "GET", "count") == ["count", "3"]
        assert c.cmd("PING") == "PONG"
        t = p.text(log) + p.text(log + ".1")
        assert "changed" not in t and "reloaded" not in t, t[-2000:]
        # The old file got nothing after the rename; the new one gets lines.
        assert "log reopened" not in p.text(log + ".1")
        c.close()
        assert p.stop() == 0
        assert "bye" in p.text(log)
    finally:
        p.kill()


@akvtest.test("service")
def test_config_rewrite(env):
    """CONFIG REWRITE writes the running settings back, keeping comments and
    order; a restart sees them; command-line settings are written too; a
    directory that is gone gives a clear error and no change."""
    cdir = tempfile.mkdtemp(prefix="rw-conf-", dir=env.workdir)
    conf = os.path.join(cdir, "rw.conf")
    body = "# my settings\n\n# how many results\ncount 3\nport 0\n"
    with open(conf, "w") as f:
        f.write(body)
    os.chmod(conf, 0o640)
    p = Daemon(env.workdir, env.vectors, ("--workers", "1", "--timeout", "60"), name="rw",
               config=conf)
    try:
        c = p.client()
        assert c.cmd("CONFIG", "SET", "count", "7", "maxkeys", "500") == "OK"
        assert c.cmd("CONFIG", "REWRITE") == "OK"
        with open(conf) as f:
            text = f.read()
        assert text.startswith("# my settings\n\n# how many results\ncount 7\nport 0\n"), text
        tail = text.split("# Generated by CONFIG REWRITE\n")[1]
        # The command line's --port 0 and --vectors and --loglevel are in
        # the file already or differ from the defaults: written as well.
        for line in ("maxkeys 500", "timeout 60", "workers 1", "loglevel verbose"):
            assert line + "\n" in tail, text
        assert oct(os.stat(conf).st_mode & 0o777) == oct(0o640)
        assert os.listdir(cdir) == ["rw.conf"], os.listdir(cdir)
        assert "CONFIG REWRITE executed with success" in p.text()
        # In order: a RELOAD after a REWRITE reads what it wrote, pipelined
        # and inside a transaction alike.
        c.send(Client.encode("CONFIG", "SET", "count", "8") + Client.encode("CONFIG", "REWRITE")
               + Client.encode("CONFIG", "RELOAD") + Client.encode("CONFIG", "GET", "count"))
        assert [c.read() for _ in range(4)] == ["OK", "OK", "OK", ["count", "8"]]
        assert c.cmd("MULTI") == "OK"
        for cmd in (("CONFIG", "SET", "count", "9"), ("CONFIG", "REWRITE"), ("CONFIG", "RELOAD"),
                    ("CONFIG", "GET", "count")):
            assert c.cmd(*cmd) == "QUEUED"
        assert c.cmd("EXEC") == ["OK", "OK", "OK", ["count", "9"]]
        c.close()
        assert p.stop() == 0
        q = Daemon(env.workdir, env.vectors, (), name="rw2", config=conf)
        try:
            c = q.client()
            assert c.cmd("CONFIG", "GET", "count") == ["count", "9"]
            assert c.cmd("CONFIG", "GET", "maxkeys") == ["maxkeys", "500"]
            # The configuration's directory is gone: a clear error.
            os.rename(cdir, cdir + ".moved")
            r = c.cmd("CONFIG", "REWRITE")
            assert is_err(r, "ERR Rewriting config file: cannot create a temporary file in"), r
            assert "No such file or directory" in str(r), r
            os.rename(cdir + ".moved", cdir)
            c.close()
        finally:
            q.check_clean_exit()
    finally:
        p.kill()


@akvtest.test("service")
def test_config_rewrite_concurrent(env):
    """CONFIG REWRITEs from many clients at once, on several workers: once
    all have answered OK, the file holds the newest settings (a rewrite
    prepared earlier never replaces a later one's text) and no temporary
    file is left."""
    cdir = tempfile.mkdtemp(prefix="rwc-conf-", dir=env.workdir)
    conf = os.path.join(cdir, "rwc.conf")
    with open(conf, "w") as f:
        # A long file, so that writing it takes a while.
        f.write("port 0\ncount 3\n" + "".join("# note %d %s\n" % (i, "x" * 200)
                                               for i in range(3000)))
    p = Daemon(env.workdir, env.vectors, ("--workers", "4"), name="rwc", config=conf)
    try:
        cs = [p.client() for _ in range(8)]
        for rnd in range(30):
            for i, c in enumerate(cs):
                c.send(Client.encode("CONFIG", "SET", "count", str(rnd * 8 + i + 1))
                       + Client.encode("CONFIG", "REWRITE"))
            for c in cs:
                assert [c.read(), c.read()] == ["OK", "OK"]
            running = cs[0].cmd("CONFIG", "GET", "count")[1]
            with open(conf) as f:
                written = re.search(r"^count (\d+)$", f.read(), re.M).group(1)
            assert written == running, (rnd, written, running)
        assert os.listdir(cdir) == ["rwc.conf"], os.listdir(cdir)
        for c in cs:
            c.close()
    finally:
        p.check_clean_exit()


@akvtest.test("service")
def test_config_reload(env):
    """CONFIG RELOAD and SIGUSR2 read the file again and apply its run-time
    settings, all or nothing; paths and restart-only settings as before."""
    conf = os.path.join(env.workdir, "hup.conf")
    log = os.path.join(env.workdir, "hup-file.log")  # not hup.log: the daemon's output
    data = tempfile.mkdtemp(prefix="hup-data-", dir=env.workdir)

    def write_conf(count, port="0", extra="", logfile=log):
        with open(conf, "w") as f:
            f.write('port %s\ncount %d\nlogfile "%s"\nloglevel notice\ndir "%s"\n'
                    'appendonly yes\n%s' % (port, count, logfile, data, extra))

    def reload_by_signal(wait_for):
        before = p.text(log).count(wait_for)
        p.proc.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while p.text(log).count(wait_for) == before:
            assert time.monotonic() < deadline, p.text(log)[-2000:]
            time.sleep(0.02)

    write_conf(3)
    p = Daemon(env.workdir, env.vectors, ("--config", conf, "--loglevel", "verbose"), name="hup",
               expect_start=False, port=None, logfile=log)
    try:
        p.wait_ready()
        c = p.client()
        c.cmd("SET", "cat", "animal")
        assert len(c.cmd("QUERY", "dog")) == 3
        write_conf(4, port="1234", extra="metric cosine\n")
        assert c.cmd("CONFIG", "RELOAD") == "OK"
        t = p.text(log)
        assert "CONFIG RELOAD: count changed from '3' to '4'" in t, t
        assert "CONFIG RELOAD: metric changed from 'l2' to 'cosine'" in t, t
        assert "port changed" in t and "restart attnkvd" in t, t
        assert c.cmd("PING") == "PONG"
        # The --loglevel flag still wins over the file's loglevel.
        assert "loglevel changed" not in t, t
        assert len(c.cmd("QUERY", "dog")) == 4
        assert c.cmd("CONFIG", "GET", "metric") == ["metric", "cosine"]
        assert c.cmd("CONFIG", "GET", "port")[1] != "1234"
        # The signal does the same.
        write_conf(5, extra="metric cosine\n")
        reload_by_signal("SIGUSR2: reloaded")
        assert "SIGUSR2: count changed from '4' to '5'" in p.text(log), p.text(log)
        assert len(c.cmd("QUERY", "dog")) == 5
        # All or nothing: a value the daemon refuses to apply (a log file
        # it may not write) keeps every other change out too.
        write_conf(3, extra="metric cosine\n", logfile="/proc/self/mem")
        r = c.cmd("CONFIG", "RELOAD")
        assert is_err(r, "logfile") and "not a regular" in str(r), r
        assert len(c.cmd("QUERY", "dog")) == 5
        # A broken file changes nothing, and the reply says where.
        write_conf(4, extra="count many\n")
        r = c.cmd("CONFIG", "RELOAD")
        assert is_err(r, "hup.conf:7: bad count 'many'"), r
        assert "settings unchanged" in p.text(log)
        assert len(c.cmd("QUERY", "dog")) == 5
        # Without a file there is nothing to reload (test_config_rewrite).
        # The log may never go to the AOF, a /proc file, a FIFO or through a
        # symbolic link: each is refused and the old log kept.
        aof = os.path.join(data, "appendonly.aof")
        link = os.path.join(env.workdir, "hup-link.log")
        fifo = os.path.join(env.workdir, "hup.fifo")
        os.symlink(log, link)
        os.mkfifo(fifo)
        assert os.path.exists(aof)
        for target, why in ((aof, "the append-only file"), ("/proc/self/mem", "not a regular"),
                            (link, "symbolic link"), (fifo, "not a regular"),
                            (os.path.join(data, ".", "appendonly.aof"), "the append-only file")):
            write_conf(4, extra="metric cosine\n", logfile=target)
            r = c.cmd("CONFIG", "RELOAD")
            assert is_err(r, "logfile: ") and why in str(r), (target, r)
            assert why in p.text(log).splitlines()[-1], p.text(log)[-1000:]
        assert len(c.cmd("QUERY", "dog")) == 5
        assert c.cmd("SET", "dog", "animal") == "OK"
        assert c.cmd("CONFIG", "GET", "logfile") == ["logfile", log]
        c.close()
        assert p.stop() == 0
        assert "bye" in p.text(log)
        with open(aof, "rb") as f:
            body = f.read()
        assert b"notice" not in body and b"SIGHUP" not in body, body[:300]
        # A start with the log on the AOF is refused, saying why; with a
        # proper log the AOF replays.
        r = subprocess.run([os.environ["AKV_ATTNKVD"], "--vectors", env.vectors, "--config",
                            conf], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "that is the append-only file" in r.stderr, r
        write_conf(4)
        os.rename(log, log + ".1")  # so that wait_ready reads q's port, not p's
        q = Daemon(env.workdir, env.vectors, ("--config", conf), name="hup2", expect_start=False,
                   port=None, logfile=log)
        try:
            q.wait_ready()
            c = q.client()
            assert c.cmd("GET", "dog") == "animal"
            c.close()
            assert q.stop() == 0
        finally:
            q.kill()
    finally:
        p.kill()



@akvtest.test("service")
def test_config_file_becomes_a_fifo(env):
    """A configuration file replaced by a FIFO is not read while running:
    CONFIG RELOAD and CONFIG REWRITE answer an error at once (an open()
    of the FIFO would block the event loop until someone writes), and
    other clients are served meanwhile."""
    conf = os.path.join(env.workdir, "fifo.conf")
    with open(conf, "w") as f:
        f.write("port 0\nappendonly no\ncount 3\n")
    p = Daemon(env.workdir, env.vectors, ("--config", conf), name="fifo", expect_start=False,
               port=None)
    try:
        p.wait_ready()
        c = p.client(timeout=5)
        os.unlink(conf)
        os.mkfifo(conf)
        r = c.cmd("CONFIG", "RELOAD")
        assert is_err(r, "not a regular file"), r
        assert c.cmd("CONFIG", "SET", "count", "5") == "OK"
        r = c.cmd("CONFIG", "REWRITE")
        assert is_err(r, "not a regular file"), r
        other = p.client(timeout=5)
        assert other.cmd("PING") == "PONG"
        other.close()
        c.close()
        assert p.stop() == 0
    finally:
        p.kill()



# ---------------------------------------------------------------------------
# A cluster node in attnkvd.service's sandbox, without systemd: the unit's
# system call filter, RestrictAddressFamilies and MemoryDenyWriteExecute
# loaded as seccomp filters (libseccomp through ctypes, as systemd loads
# them), its UMask and LimitNOFILE, and a user that owns nothing but the
# state directory (DynamicUser; nobody here, when the test runs as root).


def unit_settings():
    """attnkvd.service.in's [Service] settings: {name: [values]}."""
    path = os.path.join(SOURCE_ROOT, "systemd", "attnkvd.service.in")
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith(("#", "[")):
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def syscall_set(sa, names, cache):
    """The system calls that names (calls and @groups, as systemd spells
    them) stand for, groups expanded with systemd-analyze syscall-filter."""
    out = set()
    for name in names:
        if not name.startswith("@"):
            out.add(name)
            continue
        if name not in cache:
            r = subprocess.run([sa, "syscall-filter", "--no-pager", name], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r
            lines = [x.strip() for x in r.stdout.splitlines()[1:]]
            cache[name] = syscall_set(sa, [x for x in lines if x and not x.startswith("#")],
                                      cache)
        out |= cache[name]
    return out


class UnitSandbox:
    """Builds the unit's seccomp filters in this process; apply() (a
    preexec_fn) loads them in the child, after the umask, the file limit,
    ProtectSystem=strict (when state is given: a mount namespace in which
    every file system is read-only but state, as the unit's StateDirectory
    is) and the user change."""

    SCMP_ACT_ALLOW = 0x7FFF0000
    SCMP_CMP_NE, SCMP_CMP_EQ, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ = 1, 4, 6, 7

    def __init__(self, uid, state=None):
        import ctypes
        import ctypes.util
        import errno as errnos

        sa = shutil.which("systemd-analyze")
        name = ctypes.util.find_library("seccomp")
        if not sa or not name:
            raise akvtest.Skip("needs systemd-analyze and libseccomp (Debian: systemd, "
                               "libseccomp2)")
        if akvtest.daemon_is_instrumented():
            raise akvtest.Skip("a sanitizer's runtime is not what the unit runs")
        unit = unit_settings()
        self.unit = unit
        lib = ctypes.CDLL(name, use_errno=True)
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                               ctypes.c_uint, ctypes.c_void_p]
        lib.seccomp_load.argtypes = [ctypes.c_void_p]

        class Cmp(ctypes.Structure):
            _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                        ("a", ctypes.c_uint64), ("b", ctypes.c_uint64)]

        def errno_action(e):
            return 0x00050000 | (e & 0xFFFF)

        def nr(call):
            return lib.seccomp_syscall_resolve_name(call.encode())

        def rule(ctx, action, call, *cmps):
            arr = (Cmp * max(1, len(cmps)))(*[Cmp(*c) for c in cmps])
            rc = lib.seccomp_rule_add_array(ctx, action, nr(call), len(cmps), arr)
            assert rc == 0, (call, cmps, rc)

        # SystemCallFilter=: the first line lists what is allowed, a later
        # "~" line takes calls away; the rest fail with
        # SystemCallErrorNumber.
        cache = {}
        allowed = None
        for v in unit["SystemCallFilter"]:
            neg = v.startswith("~")
            calls = syscall_set(sa, v.lstrip("~").split(), cache)
            if allowed is None:
                assert not neg, v
                allowed = calls
            elif neg:
                allowed -= calls
            else:
                allowed |= calls
        assert unit["SystemCallErrorNumber"] == ["EPERM"], unit["SystemCallErrorNumber"]
        assert unit["SystemCallArchitectures"] == ["native"]
        self.allowed = allowed
        self.calls = lib.seccomp_init(errno_action(errnos.EPERM))
        for call in sorted(allowed):
            if nr(call) >= 0:  # not a call of this architecture or kernel
                rule(self.calls, self.SCMP_ACT_ALLOW, call)

        # RestrictAddressFamilies= and MemoryDenyWriteExecute=yes: a second
        # filter, as systemd loads one per setting (the kernel takes the
        # strictest answer).
        families = {"AF_UNIX": socket.AF_UNIX, "AF_INET": socket.AF_INET,
                    "AF_INET6": socket.AF_INET6}
        keep = sorted(families[x] for x in unit["RestrictAddressFamilies"][0].split())
        assert unit["MemoryDenyWriteExecute"] == ["yes"]
        self.other = lib.seccomp_init(self.SCMP_ACT_ALLOW)
        refuse = errno_action(errnos.EAFNOSUPPORT)
        rule(self.other, refuse, "socket", (0, self.SCMP_CMP_GT, max(keep), 0))
        for fam in range(max(keep)):
            if fam not in keep:
                rule(self.other, refuse, "socket", (0, self.SCMP_CMP_EQ, fam, 0))
        wx = 0x2 | 0x4  # PROT_WRITE | PROT_EXEC
        rule(self.other, errno_action(errnos.EPERM), "mmap",
             (2, self.SCMP_CMP_MASKED_EQ, wx, wx))
        for call in ("mprotect", "pkey_mprotect"):
            rule(self.other, errno_action(errnos.EPERM), call,
                 (2, self.SCMP_CMP_MASKED_EQ, 0x4, 0x4))
        self.lib = lib
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.uid = uid
        self.state = state
        self.umask = int(unit["UMask"][0], 8)
        self.nofile = int(unit["LimitNOFILE"][0])

    def apply(self):
        import resource

        os.umask(self.umask)
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        if self.state is not None and not self.read_only_but_state():
            os._exit(125)
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
        # libseccomp sets no_new_privs first (NoNewPrivileges=yes). The
        # allow list last: it does not allow seccomp() itself.
        if self.lib.seccomp_load(self.other) != 0 or self.lib.seccomp_load(self.calls) != 0:
            os._exit(126)

    def read_only_but_state(self):
        """ProtectSystem=strict: in a mount namespace of its own, every
        mount but /proc, /sys, /dev and the state directory read-only."""
        ms_rdonly, ms_remount, ms_bind, ms_rec, ms_private = 1, 32, 4096, 16384, 1 << 18
        libc = self.libc
        mount = libc.mount
        if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
            return False
        if mount(None, b"/", None, ms_rec | ms_private, None) != 0:
            return False
        state = self.state.encode()
        if mount(state, state, None, ms_bind, None) != 0:
            return False
        with open("/proc/self/mountinfo") as f:
            points = sorted({line.split()[4] for line in f})
        for m in points:
            if m == self.state or m.startswith(("/proc", "/sys", "/dev")):
                continue
            rc = mount(None, m.encode(), None, ms_remount | ms_bind | ms_rdonly, None)
            if rc != 0 and m == "/":
                return False
        return True

    @staticmethod
    def can_unshare_mounts():
        r = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30)
        return r.returncode == 0


@akvtest.test("service")
def test_cluster_node_in_unit_sandbox(env):
    """A one-node cluster configured as docs/operations.md says (the
    installed configuration, then conf/attnkvd-cluster.conf.example for
    node 1, on 127.0.0.1) runs under the unit's sandbox with its Raft state
    in the state directory: it bootstraps, tells the manager READY=1,
    takes a write, takes snapshots, and has the write after a restart; with
    a cluster-dir outside the state directory it stops, saying why."""
    uid = 65534 if os.geteuid() == 0 else None
    # The state directory (/var/lib/attnkv), reachable by the service's
    # user only, holding the vectors; the configuration beside it.
    os.chmod(env.workdir, 0o755)
    state = os.path.join(env.workdir, "state")
    box = UnitSandbox(uid, state if shutil.which("unshare") and UnitSandbox.can_unshare_mounts()
                      else None)
    if box.state is None:
        print("     (no mount namespace here: ProtectSystem=strict left out)")
    os.mkdir(state, 0o750)
    vectors = os.path.join(state, "glove-6B-100d.akv")
    shutil.copy(env.vectors, vectors)
    if uid is not None:
        os.chown(state, uid, uid)
        os.chown(vectors, uid, uid)

    port, raft = free_port(), free_port()
    root = SOURCE_ROOT
    with open(os.path.join(root, "conf", "attnkvd.conf")) as f:
        text = f.read() + "\n"
    with open(os.path.join(root, "conf", "service.conf")) as f:
        service = f.read()
    # The installed paths, moved into this test's state directory.
    service = re.sub(r"^vectors /var/lib/attnkv/\S+$", "vectors " + vectors, service,
                     flags=re.M)
    service = re.sub(r"^dir /var/lib/attnkv$", "dir " + state, service, flags=re.M)
    assert vectors in service and state in service, service
    with open(os.path.join(root, "conf", "attnkvd-cluster.conf.example")) as f:
        example = f.read()
    # Its bind line adds this host's address to the 127.0.0.1 bound above.
    example = re.sub(r"^bind 10\.0\.0\.1$", "", example, flags=re.M)
    example = example.replace("10.0.0.1:6479", "127.0.0.1:%d" % port)
    example = example.replace("10.0.0.1:7479", "127.0.0.1:%d" % raft)
    assert "10.0.0." not in re.sub(r"(?m)^#.*$", "", example), example
    password = re.search(r'^requirepass "(.*)"$', example, re.M).group(1)
    conf = os.path.join(env.workdir, "attnkvd.conf")
    # The port, and snapshots often enough to take some here.
    with open(conf, "w") as f:
        f.write(text + "\n" + service + "\n" + example + "\nport %d\n" % port
                + "cluster-snapshot-threshold 16\ncluster-snapshot-trailing 16\n")
    os.chmod(conf, 0o644)

    def start(name):
        m = Manager("@akv-test-cluster-%d-%s" % (os.getpid(), name))
        d = Daemon(env.workdir, vectors, ("--config", conf), name=name, expect_start=False,
                   datadir=state, preexec_fn=box.apply, port=None,
                   extra_env={"NOTIFY_SOCKET": m.address})
        return m, d

    def client():
        c = Client(port, timeout=10)
        assert c.cmd("AUTH", password) == "OK"
        return c

    m, d = start("unit1")
    try:
        d.wait_ready()
        m.wait_for("READY=1")
        with open("/proc/%d/status" % d.proc.pid) as f:
            status = f.read()
        assert re.search(r"^Seccomp:\s+2$", status, re.M), status
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
        if uid is not None:
            assert re.search(r"^Uid:\s+%d\s" % uid, status, re.M), status
        if box.state is not None:
            with open("/proc/%d/mountinfo" % d.proc.pid) as f:
                opts = {x.split()[4]: x.split()[5].split(",") for x in f}
            assert "ro" in opts["/"] and "rw" in opts[state], opts
        c = client()
        deadline = time.monotonic() + 20
        while parse_cluster(c)["cluster_role"] != "leader":
            assert time.monotonic() < deadline, parse_cluster(c)
            time.sleep(0.05)
        info = parse_cluster(c)
        assert info["cluster_dir"] == os.path.join(state, "cluster"), info
        for i in range(40):
            assert c.cmd("SET", "cat", "animal" if i % 2 else "dog") == "OK"
        assert c.cmd("SET", "ball", "toy") == "OK"
        assert int(parse_cluster(c)["cluster_snapshots_taken"]) >= 1
        c.close()
        assert d.stop() == 0, d.text()[-3000:]
        log = d.text()
        assert "Operation not permitted" not in log and "Permission denied" not in log, log
        assert "STOPPING=1" in m.texts()
    finally:
        d.kill()
        m.close()
    # The state: inside the state directory, the service's user's, private
    # (UMask=0077).
    cdir = os.path.join(state, "cluster")
    files = os.listdir(cdir)
    assert any(x.startswith("snapshot-") for x in files), files
    for x in [cdir] + [os.path.join(cdir, y) for y in files]:
        st = os.stat(x)
        assert st.st_mode & 0o077 == 0, (x, oct(st.st_mode))
        if uid is not None:
            assert st.st_uid == uid, (x, st.st_uid)

    m, d = start("unit2")
    try:
        d.wait_ready()
        m.wait_for("READY=1")
        c = client()
        deadline = time.monotonic() + 20
        while parse_cluster(c)["cluster_role"] != "leader":
            assert time.monotonic() < deadline, parse_cluster(c)
            time.sleep(0.05)
        assert c.cmd("CONSISTENCY", "linearizable") == "OK"
        assert c.cmd("MGET", "cat", "ball") == ["animal", "toy"]
        assert c.cmd("SET", "dog", "animal") == "OK"
        c.close()
        assert d.stop() == 0, d.text()[-3000:]
    finally:
        d.kill()
        m.close()

    # A cluster-dir outside the state directory is read-only there (the
    # unit would need ReadWritePaths=): the node stops, saying why.
    if box.state is not None:
        elsewhere = os.path.join(env.workdir, "elsewhere")
        os.mkdir(elsewhere, 0o777)
        d = Daemon(env.workdir, vectors, ("--config", conf, "--cluster-dir", elsewhere),
                   name="unit3", expect_start=False, datadir=state, preexec_fn=box.apply,
                   port=None)
        try:
            assert d.proc.wait(timeout=30) == 1, d.text()
            assert re.search(r"warning: cluster: .*read-only file system", d.text(), re.I), \
                d.text()
        finally:
            d.kill()


def parse_cluster(c):
    return dict(x.split(":", 1) for x in c.cmd("CLUSTER", "INFO").splitlines() if ":" in x)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

if __name__ == "__main__":
    sys.exit(akvtest.main("service", make_env=akvtest.Env))
