#!/usr/bin/env python3
"""daemon-hostile: hostile clients against the real attnkvd; the stall rule, tested.

The rule (src/server/conn.c): no single client, authenticated or not, with
any request of any size, may keep the loop thread from serving others for
more than a few milliseconds, or make the daemon allocate beyond its
configured limits. Each test here sends one attack (or a family of them)
from one client while a second client PINGs every 10 ms, and asserts that
the pinger's worst round trip stays under STALL_MS (generous: CI has 2 cores
and may run this under ASan; the figures the daemon reaches are far lower)
and, where the attack is about memory, that the daemon's RSS stays bounded.

Run alone: meson test -C build daemon-hostile, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_hostile.py [-k NAME]
(environment: see akvtest.py).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

import akvtest
from akvtest import (Client, daemon_is_instrumented, expect_closed, is_err, vm_rss_kb,
                     wait_log)

STALL_MS = 100.0
NKEYS = 50000
PASSWORD = "s3cret-pass"


PINGER = r"""
import socket, sys, time
port, auth = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=120)
def cmd(*a):
    s.sendall(b"".join([b"*%d\r\n" % len(a)] + [b"$%d\r\n%s\r\n" % (len(x), x) for x in a]))
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("closed")
        buf += chunk
    return buf
if auth:
    assert cmd(b"AUTH", auth.encode()) == b"+OK\r\n"
print("ready", flush=True)
worst, n = 0.0, 0
stop = time.monotonic() + 300
while time.monotonic() < stop:
    t = time.monotonic()
    assert cmd(b"PING") == b"+PONG\r\n"
    worst = max(worst, (time.monotonic() - t) * 1000)
    n += 1
    try:
        open(sys.argv[3]).close()
        break
    except FileNotFoundError:
        pass
    time.sleep(0.01)
print("%.3f %d" % (worst, n), flush=True)
"""


class Pinger:
    """PINGs every 10 ms on its own connection, from a process of its own (so
    that this one's work cannot delay it), and keeps the worst round trip."""

    def __init__(self, port, auth=None):
        self.flag = tempfile.mktemp(prefix="akv-pinger-")
        self.proc = subprocess.Popen([sys.executable, "-c", PINGER, str(port), auth or "",
                                      self.flag], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready", "the pinger did not start"
        self.count = 0

    def stop(self):
        open(self.flag, "w").close()
        try:
            out, _ = self.proc.communicate(timeout=150)
        finally:
            os.unlink(self.flag)
        assert self.proc.returncode == 0, "the pinger failed (%s)" % self.proc.returncode
        worst, count = out.split()
        self.count = int(count)
        return float(worst)


class Stall:
    """with Stall(d, "what"): ... runs the block with a pinger alongside and
    fails if the pinger's worst round trip exceeded STALL_MS."""

    def __init__(self, d, what, auth=None):
        self.d, self.what, self.auth = d, what, auth

    def __enter__(self):
        self.p = Pinger(self.d.port, self.auth)
        time.sleep(0.05)
        self.t0 = time.monotonic()
        return self

    def __exit__(self, et, ev, tb):
        time.sleep(0.05)
        worst = self.p.stop()
        print("     %-48s worst PING %7.1f ms over %5.2f s (%d PINGs)"
              % (self.what, worst, time.monotonic() - self.t0, self.p.count), flush=True)
        if et is None:
            assert self.p.count > 0, "no PING completed"
            assert worst < STALL_MS, "%s stalled other clients for %.1f ms" % (self.what, worst)
        return False


def resp(*args):
    return Client.encode(*args)


def rss_mb(d):
    return vm_rss_kb(d.proc.pid) / 1024.0


class HostileEnv(akvtest.Env):
    """akvtest.Env with the big vocabulary (60,000 words w000000..w059999,
    dim 48) as self.vectors; the shared daemon, with NKEYS keys, starts on
    first use, and again after a crash."""

    restarts_daemon = True

    def __init__(self, workdir):
        super().__init__(workdir)
        self.vectors = self.big_vectors()

    def start_daemon(self, name, conf=""):
        return self.configured_daemon(name, conf, ("--workers", "2"))

    def store_daemon(self):
        """The shared daemon with NKEYS keys, started on first use."""
        if self.daemon is None:
            self.daemon = self.start_daemon("hostile")
            fill(self.daemon, NKEYS)
        return self.daemon


def fill(d, n, auth=None):
    c = d.client(timeout=120)
    if auth:
        assert c.cmd("AUTH", auth) == "OK"
    c.send(b"".join(resp("SET", "w%06d" % i, "w%06d" % ((i + 1) % 60000)) for i in range(n)))
    for _ in range(n):
        assert c.read() == "OK"
    c.close()


# ---------------------------------------------------------------------------
# 1. Glob patterns: KEYS, SCAN MATCH, CONFIG GET.


@akvtest.test("hostile")
def test_glob_bracket_class(env):
    d = env.store_daemon()
    c = d.client(timeout=120)
    # The audit's pattern: a 60,000-byte class. Too long now, refused at once.
    big = "*[" + "b" * 60000 + "]q"
    with Stall(d, "KEYS with a 60 KB class"):
        assert is_err(c.cmd("KEYS", big), "pattern too long")
        assert is_err(c.cmd("SCAN", "0", "MATCH", big), "pattern too long")
        assert is_err(c.cmd("CONFIG", "GET", big), "pattern too long")
    # The longest pattern allowed, a class of 8,000 bytes, over every key.
    cls = "*[" + "b" * 7990 + "]q"
    with Stall(d, "KEYS with an 8 KB class over 50k keys"):
        assert c.cmd("KEYS", cls) == []
    with Stall(d, "SCAN MATCH 8 KB class, COUNT 1M"):
        cursor, n = "0", 0
        while True:
            cursor, batch = c.cmd("SCAN", cursor, "MATCH", cls, "COUNT", 1048576)
            n += 1
            if cursor == "0":
                break
        assert n >= 2, "SCAN took every key in one call"
    # Backtracking patterns.
    with Stall(d, "KEYS *w*0*0*0*0*0*0*9*x"):
        assert c.cmd("KEYS", "*w*0*0*0*0*0*0*9*x") == []
    # Still correct.
    assert sorted(c.cmd("KEYS", "w00000[0-4]")) == ["w00000%d" % i for i in range(5)]
    assert sorted(c.cmd("KEYS", "w0499[^0-8]?")) == ["w0499%d%d" % (9, i) for i in range(10)]
    assert len(c.cmd("KEYS", "*")) == NKEYS
    c.close()


@akvtest.test("hostile")
def test_keys_pipelined(env):
    d = env.store_daemon()
    c = d.client(timeout=300)
    with Stall(d, "400 pipelined KEYS zz over 50k keys"):
        c.send(resp("KEYS", "zz") * 400)
        for _ in range(400):
            assert c.read() == []
    with Stall(d, "20 pipelined KEYS * over 50k keys"):
        c.send(resp("KEYS", "*") * 20)
        for _ in range(20):
            assert len(c.read()) == NKEYS
    c.close()


@akvtest.test("hostile")
def test_keys_reply_over_output_limit(env):
    d = env.start_daemon("keyslimit", "client-output-buffer-limit 100000 0 0\n")
    try:
        fill(d, 20000)
        c = d.client()
        r = c.cmd("KEYS", "*")
        assert is_err(r, "hard limit"), r
        assert len(c.cmd("KEYS", "w00001?")) == 10
        c.close()
    finally:
        d.check_clean_exit()


# ---------------------------------------------------------------------------
# 2, 3. CONFIG SET: paths, many pairs.


@akvtest.test("hostile")
def test_config_set_many_pairs(env):
    d = env.store_daemon()
    c = d.client(timeout=120)
    before = rss_mb(d)
    with Stall(d, "CONFIG SET timeout 0 x 32767"):
        r = c.cmd("CONFIG", "SET", *(["timeout", "0"] * 32767))
        assert is_err(r, "at most"), r
    with Stall(d, "CONFIG SET with a duplicate"):
        assert is_err(c.cmd("CONFIG", "SET", "timeout", "0", "TIMEOUT", "1"), "duplicate")
    assert c.cmd("CONFIG", "GET", "timeout") == ["timeout", "0"]
    assert c.cmd("CONFIG", "SET", "timeout", "0", "maxkeys", "0") == "OK"
    # Every run-time setting at once, each with a 3.5 MB value: refused
    # before anything is copied or parsed, and nothing changes.
    settable = ("maxclients", "count", "attention", "temperature", "metric", "loglevel",
                "slowlog-log-slower-than", "slowlog-max-len", "timeout", "maxmemory",
                "maxmemory-clients", "maxkeys", "max-key-len", "max-value-len")
    huge = "9" * (3500 << 10)
    with Stall(d, "CONFIG SET 14 settings x 3.5 MB values"):
        r = c.cmd("CONFIG", "SET", *[x for name in settable for x in (name, huge)])
        assert is_err(r, "value too long"), r[:200]
    assert c.cmd("CONFIG", "GET", "timeout") == ["timeout", "0"]
    assert is_err(c.cmd("CONFIG", "SET", "count", "5\x006"), "NUL byte")
    # The bound: 4,095 bytes are read as a value, 4,096 are not.
    assert c.cmd("CONFIG", "SET", "count", "0" * 4094 + "5") == "OK"
    assert is_err(c.cmd("CONFIG", "SET", "count", "0" * 4095 + "5"), "value too long")
    assert c.cmd("CONFIG", "GET", "count") == ["count", "5"]
    if not daemon_is_instrumented():
        assert rss_mb(d) - before < 64, (before, rss_mb(d))
    # Paths are not for CONFIG SET: not the log file, not the AOF's.
    for name, value in (("logfile", "/proc/self/mem"), ("logfile", d.aof),
                        ("dir", "/tmp"), ("appendfilename", "x.aof")):
        r = c.cmd("CONFIG", "SET", name, value)
        assert is_err(r), r
    assert is_err(c.cmd("CONFIG", "SET", "logfile", "/nonexistent/x"), "path")
    assert is_err(c.cmd("CONFIG", "SET", "logfile", "/etc/passwd"), "path")
    # CONFIG GET: patterns are compiled once and capped in number.
    with Stall(d, "CONFIG GET with 65 patterns"):
        assert is_err(c.cmd("CONFIG", "GET", *(["*x*y*z"] * 65)), "at most")
    assert c.cmd("CONFIG", "GET", *(["*x*y*z"] * 63 + ["maxkeys"])) == ["maxkeys", "0"]
    c.close()


# ---------------------------------------------------------------------------
# 4. Clients that have not authenticated; the memory of all clients.


@akvtest.test("hostile")
def test_unauthenticated_limits(env):
    d = env.start_daemon("unauth", "requirepass %s\n" % PASSWORD)
    try:
        before = rss_mb(d)
        with Stall(d, "4 unauthenticated 63 MB requests", auth=PASSWORD):
            cs = []
            for _ in range(4):
                c = d.client()
                c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$66060288\r\n" + b"x" * 65536)
                cs.append(c)
            for c in cs:
                got = expect_closed(c)
                assert got and is_err(got[0], "has not authenticated"), got
        if not daemon_is_instrumented():
            assert rss_mb(d) - before < 32, (before, rss_mb(d))
        # A 1M-argument header is refused before anything is parsed or run.
        with Stall(d, "unauthenticated *1000000", auth=PASSWORD):
            c = d.client()
            c.send(b"*1000000\r\n" + b"$4\r\nPING\r\n" * 1000)
            got = expect_closed(c)
            assert got and is_err(got[0], "has not authenticated"), got
        # A long inline line too.
        c = d.client()
        c.send(b"GET " + b"k" * 20000 + b"\r\n")
        got = expect_closed(c)
        assert got and is_err(got[0], "has not authenticated"), got
        # Small requests get the usual NOAUTH; after AUTH the usual limits.
        c = d.client()
        assert is_err(c.cmd("GET", "k"), "NOAUTH")
        assert is_err(c.cmd("EXISTS", *(["k"] * 9)), "NOAUTH")
        assert c.cmd("AUTH", PASSWORD) == "OK"
        assert c.cmd("EXISTS", *(["k"] * 5000)) == 0
        assert c.cmd("ECHO", "y" * 100000) == "y" * 100000
        c.close()
        # A client that never authenticates is closed after 10 s.
        c = d.client()
        assert c.cmd("PING") == "PONG"
        t0 = time.monotonic()
        expect_closed(c, timeout=20)
        assert 9 <= time.monotonic() - t0 < 15, time.monotonic() - t0
        wait_log(d, "no AUTH within 10 s")
        # An authenticated one stays.
        c = d.client()
        assert c.cmd("AUTH", PASSWORD) == "OK"
        time.sleep(10.5)
        assert c.cmd("PING") == "PONG"
        c.close()
    finally:
        d.check_clean_exit()


@akvtest.test("hostile")
def test_maxmemory_clients(env):
    d = env.start_daemon("climem", "maxmemory-clients 40mb\n")
    try:
        before = rss_mb(d)
        keep = d.client()
        assert keep.cmd("PING") == "PONG"
        cs = []
        with Stall(d, "6 clients with 14 MB partial requests each"):
            for _ in range(6):
                c = d.client()
                try:
                    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$15000000\r\n")
                    for _ in range(14):
                        c.send(b"x" * (1 << 20))
                except OSError:
                    pass  # closed already: that is the point
                cs.append(c)
            time.sleep(0.5)
        closed = 0
        for c in cs:
            try:
                c.sock.settimeout(5)
                c.send(b"x")
                got = c.sock.recv(1)
                closed += got == b""
            except OSError:
                closed += 1
            c.close()
        assert closed >= 3, closed
        assert keep.cmd("PING") == "PONG"
        wait_log(d, "over maxmemory-clients")
        if not daemon_is_instrumented():
            assert rss_mb(d) - before < 100, (before, rss_mb(d))
        keep.close()
    finally:
        d.check_clean_exit()


# ---------------------------------------------------------------------------
# 5. Secrets in the slow log.


@akvtest.test("hostile")
def test_slowlog_redacts_auth(env):
    d = env.start_daemon("slowauth", "requirepass %s\nslowlog-log-slower-than 0\n" % PASSWORD)
    try:
        c = d.client()
        assert is_err(c.cmd("AUTH", "guess-one"), "WRONGPASS")
        assert is_err(c.cmd("AUTH", "default", "guess-two"), "WRONGPASS")
        assert c.cmd("AUTH", PASSWORD) == "OK"
        log = c.cmd("SLOWLOG", "GET", "-1")
        text = repr(log)
        for secret in (PASSWORD, "guess-one", "guess-two"):
            assert secret not in text, log
        auths = [e[3] for e in log if e[3][0].upper() == "AUTH"]
        assert len(auths) == 3, log
        assert all(a[1:] == ["(redacted)"] * (len(a) - 1) for a in auths), auths
        c.close()
        assert PASSWORD not in d.text() and "guess-one" not in d.text()
    finally:
        d.check_clean_exit()


# ---------------------------------------------------------------------------
# 6. Temperatures.


@akvtest.test("hostile")
def test_temperature_range(env):
    d = env.store_daemon()
    c = d.client()
    for t in ("0x1p-1074", "1e-320", "0", "-1", "inf", "nan", "1e-5", "2e6", " 1", "0x10"):
        r = c.cmd("EXPLAIN", "w000001", "ATTENTION", "cosine", "TEMPERATURE", t)
        assert is_err(r, "TEMPERATURE"), (t, r)
        r = c.cmd("CONFIG", "SET", "temperature", t)
        assert is_err(r), (t, r)
    for t in ("0.0001", "1e-4", "1", "1e6", "0.5"):
        r = c.cmd("EXPLAIN", "w000001", "ATTENTION", "cosine", "TEMPERATURE", t)
        assert isinstance(r, list) and r, (t, r)
        for _, _, w in r:
            assert float(w) == float(w) and abs(float(w)) != float("inf"), (t, r)
        r = c.cmd("QUERY", "w000001", "ATTENTION", "cosine", "TEMPERATURE", t)
        assert isinstance(r, list) and len(r) == 5, (t, r)
    c.close()


# ---------------------------------------------------------------------------
# 7. Inline requests with many short arguments.


@akvtest.test("hostile")
def test_inline_many_arguments(env):
    d = env.store_daemon()
    c = d.client()
    for n in list(range(1, 40)) + [63, 64, 65, 127, 128, 129, 255, 256, 500, 999, 1000]:
        assert c.inline("EXISTS" + " a" * n) == 0, n
        assert c.inline("EXISTS" + " w000001" * n) == n, n
    # The whole line, then EOF: answered before the close.
    c.close()
    c = d.client()
    c.send(b"SET w055555 w000001\r\nDEL w055555 " + b" ".join(b"zz%d" % i for i in range(60)) + b"\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.read() == "OK"
    assert c.read() == 1
    expect_closed(c)
    # Many connections doing it at once, with a RESP pipeline mixed in.
    cs = [d.client() for _ in range(8)]
    for i, x in enumerate(cs):
        x.send(b"EXISTS" + b" q" * (16 + i) + b"\r\n" + resp("PING"))
    for x in cs:
        assert x.read() == 0 and x.read() == "PONG"
        x.close()


# ---------------------------------------------------------------------------
# 9. Work per turn: long pipelines of cheap-but-not-free requests.


@akvtest.test("hostile")
def test_pipelines_share_the_loop(env):
    d = env.store_daemon()
    c = d.client(timeout=300)
    with Stall(d, "5000 pipelined QUERYs of an unknown word"):
        c.send(resp("QUERY", "xqzvbnmlkjhgfdsapoiuytre") * 5000)
        for _ in range(5000):
            assert is_err(c.read(), "unknown word")
    with Stall(d, "100,000 pipelined GETs"):
        c.send(resp("GET", "w000001") * 100000)
        for _ in range(100000):
            assert c.read() == "w000002"
    with Stall(d, "DEL and EXISTS with 65,535 arguments"):
        c.send(resp("DEL", *["nokey%d" % i for i in range(65535)]))
        assert c.read() == 0
        c.send(resp("EXISTS", *["w%06d" % (i % NKEYS) for i in range(65535)]))
        assert c.read() == 65535
    with Stall(d, "COMMAND INFO with 65,534 names"):
        c.send(resp("COMMAND", "INFO", *["get"] * 65534))
        assert is_err(c.read(), "at most 1024")
    with Stall(d, "COMMAND INFO with 1024 names, 20 times"):
        c.send(resp("COMMAND", "INFO", *["get"] * 1024) * 20)
        for _ in range(20):
            assert len(c.read()) == 1024
    with Stall(d, "SLOWLOG GET -1, 10 times"):
        for _ in range(10):
            c.cmd("SLOWLOG", "GET", "-1")
    c.close()


@akvtest.test("hostile")
def test_argument_count_limit(env):
    d = env.store_daemon()
    c = d.client()
    # The default multibulk limit bounds what one request can cost.
    assert c.cmd("CONFIG", "GET", "proto-max-multibulk-len") == ["proto-max-multibulk-len",
                                                                  "65536"]
    c.send(b"*65537\r\n")
    got = expect_closed(c)
    assert got and is_err(got[0], "multibulk"), got


# ---------------------------------------------------------------------------
# 10. Seeded hashing.


@akvtest.test("hostile")
def test_hash_seed_differs(env):
    orders = []
    for i in range(2):
        d = env.start_daemon("seed%d" % i)
        try:
            fill(d, 2000)
            c = d.client()
            orders.append(c.cmd("SCAN", "0", "COUNT", "50")[1])
            c.close()
        finally:
            d.check_clean_exit()
    assert orders[0] != orders[1], "both daemons hashed the keys the same way"


if __name__ == "__main__":
    sys.exit(akvtest.main("hostile", make_env=HostileEnv))
