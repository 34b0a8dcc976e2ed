#!/usr/bin/env python3
"""daemon-clients: the connection and operations commands against the real attnkvd.

CLIENT (LIST, INFO, KILL, SETNAME, SETINFO, REPLY, PAUSE, NO-EVICT, ...),
HELLO and RESP3, RESET, MONITOR (secrets redacted; a monitor that does not
read is closed at its output limit), TIME, LASTSAVE, BGSAVE, WAIT, LATENCY,
TYPE, STRLEN, TOUCH, RANDOMKEY, OBJECT, MEMORY, the INFO fields Redis tools
read; through redis-py unchanged, through raw sockets for RESP3, and through
redis-cli's operator modes (--stat, --bigkeys, --memkeys, --latency,
--latency-history, --scan, -3). SHUTDOWN and its options run on daemons of
their own. A stall check holds CLIENT LIST and MONITOR to the stall rule
with thousands of clients connected.

Run alone: meson test -C build daemon-clients, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  /usr/bin/python3 tests/integration/test_clients.py [-k NAME]
(environment: see akvtest.py). Needs python3-redis (redis-py) and
redis-tools (redis-cli).
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

import akvtest
from akvtest import Client, Closed, daemon_is_instrumented, expect_closed, is_err, wait_log
from test_hostile import Stall, rss_mb

try:
    import redis
except ImportError:  # pragma: no cover - the suite skips
    redis = None

SUITE = "clients"


def rp(d, **kw):
    """A redis-py client of daemon d."""
    return redis.Redis(host="127.0.0.1", port=d.port, socket_timeout=30, decode_responses=True,
                       **kw)


def cli(d, *args, stdin=None, timeout=60):
    if not shutil.which("redis-cli"):
        raise AssertionError("redis-cli not installed (apt-get install redis-tools)")
    return subprocess.run(["redis-cli", "-p", str(d.port)] + list(args), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def fill(c, pairs):
    for k, v in pairs:
        assert c.cmd("SET", k, v) == "OK"


class Double(float):
    pass


class Resp3Client(Client):
    """akvtest's client, reading RESP3 as well: maps become dicts (or lists
    of pairs with pairs=True), sets become frozensets, doubles Double,
    null None, booleans bool, verbatim strings ("txt", text)."""

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"%":
            return dict((self.read(), self.read()) for _ in range(int(rest)))
        if t == b"~":
            return frozenset(self.read() for _ in range(int(rest)))
        if t == b",":
            return Double(float(rest))
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b"=":
            n = int(rest)
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return ("txt", data[4:].decode())
        if t == b">":
            return ["push"] + [self.read() for _ in range(int(rest))]
        self.buf = line + b"\r\n" + self.buf
        return super().read()


def client_list(c, *args):
    text = c.cmd("CLIENT", "LIST", *args)
    return [dict(kv.split("=", 1) for kv in l.split(" ")) for l in text.splitlines()]


# ---------------------------------------------------------------------------
# CLIENT.


@akvtest.test(SUITE)
def test_client_redis_py(env):
    d = env.daemon
    r = rp(d)
    other = rp(d)
    assert r.client_setname("app-1") is True
    assert r.client_getname() == "app-1"
    cid = r.client_id()
    assert isinstance(cid, int) and cid > 0
    assert other.client_id() != cid
    assert other.client_getname() is None
    assert r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == "OK"
    assert r.execute_command("CLIENT", "SETINFO", "LIB-VER", redis.__version__) == "OK"
    # redis-py 4.3.4 makes numbers of some fields, and keeps the line's end
    # in the last one (Redis ends CLIENT INFO with a newline too).
    info = {k: str(v).strip() for k, v in r.client_info().items()}
    assert info["id"] == str(cid) and info["name"] == "app-1", info
    assert info["lib-name"] == "redis-py" and info["lib-ver"] == redis.__version__, info
    assert info["cmd"] == "client|info" and info["resp"] == "2" and info["db"] == "0", info
    assert info["user"] == "default" and info["flags"] == "N", info
    # The addresses are the socket's, both ways.
    sock = r.connection_pool.get_connection("PING")
    try:
        local = "%s:%d" % sock._sock.getsockname()[:2]
        peer = "%s:%d" % sock._sock.getpeername()[:2]
    finally:
        r.connection_pool.release(sock)
    assert info["addr"] == local and info["laddr"] == peer, (info, local, peer)
    clients = r.client_list()
    mine = [c for c in clients if c["id"] == str(cid)]
    assert len(mine) == 1 and mine[0]["name"] == "app-1" and mine[0]["cmd"] == "client|list"
    for field in ("id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub",
                  "psub", "multi", "qbuf", "qbuf-free", "obl", "oll", "omem", "tot-mem",
                  "events", "cmd", "user", "resp", "lib-name", "lib-ver"):
        assert field in mine[0], (field, mine[0])
    assert int(mine[0]["tot-mem"]) > 0 and int(mine[0]["fd"]) > 2
    assert len(r.client_list(_type="normal")) == len(clients)
    assert r.client_list(_type="pubsub") == []
    only = r.client_list(client_id=[str(cid)])
    assert [c["id"] for c in only] == [str(cid)]
    with_info = r.info("clients")
    assert with_info["connected_clients"] >= 2 and with_info["blocked_clients"] == 0
    assert r.client_setname("") is True and r.client_getname() is None
    # The name's rules, as Redis's.
    for bad in ("two words", "new\nline"):
        try:
            r.client_setname(bad)
            raise AssertionError("accepted %r" % bad)
        except redis.ResponseError as e:
            assert "cannot contain spaces, newlines or special characters" in str(e)
    try:
        r.client_setname("x" * 300)
        raise AssertionError("accepted a 300-byte name")
    except redis.ResponseError as e:
        assert "too long" in str(e)
    assert r.client_no_evict("ON") == "OK"
    assert "e" in r.client_info()["flags"]
    assert r.client_no_evict("OFF") == "OK"
    r.close()
    other.close()


@akvtest.test(SUITE)
def test_client_kill(env):
    d = env.daemon
    r = rp(d)
    victims = [d.client() for _ in range(4)]
    for v in victims:
        assert v.cmd("CLIENT", "SETNAME", "victim") == "OK"
    ids = [v.cmd("CLIENT", "ID") for v in victims]
    byid = {c["id"]: c for c in r.client_list()}
    # By id (redis-py's filter form).
    assert r.client_kill_filter(_id=ids[0]) == 1
    expect_closed(victims[0])
    # The old form, by address.
    assert r.client_kill(byid[str(ids[1])]["addr"]) is True
    expect_closed(victims[1])
    try:
        r.client_kill("10.9.9.9:1")
        raise AssertionError("killed a client that does not exist")
    except redis.ResponseError as e:
        assert "No such client" in str(e)
    # ADDR and LADDR together; LADDR alone would take r too, but SKIPME.
    assert r.client_kill_filter(addr=byid[str(ids[2])]["addr"],
                                laddr="127.0.0.1:%d" % d.port) == 1
    expect_closed(victims[2])
    assert r.client_kill_filter(_id=ids[3], user="default") == 1
    expect_closed(victims[3])
    assert r.client_kill_filter(_id=999999) == 0
    try:
        r.client_kill_filter(user="bob")
        raise AssertionError("user bob")
    except redis.ResponseError as e:
        assert "No such user 'bob'" in str(e)
    # SKIPME no: the caller gets its reply, then is closed.
    c = d.client()
    cid = c.cmd("CLIENT", "ID")
    assert c.cmd("CLIENT", "KILL", "ID", str(cid), "SKIPME", "no") == 1
    expect_closed(c)
    c = d.client()
    assert is_err(c.cmd("CLIENT", "KILL", "ID", "0"), "client-id should be greater than 0")
    c.close()
    assert r.info("clients")["connected_clients"] >= 1
    wait_log(d, "killed by CLIENT KILL")
    r.close()


@akvtest.test(SUITE)
def test_client_errors(env):
    c = env.daemon.client()
    assert is_err(c.cmd("CLIENT"), "wrong number of arguments for 'client' command")
    assert c.cmd("CLIENT", "KILL") == akvtest.RespError(
        "ERR wrong number of arguments for 'client|kill' command")
    assert c.cmd("CLIENT", "FLY") == akvtest.RespError(
        "ERR unknown subcommand 'FLY'. Try CLIENT HELP.")
    assert c.cmd("CLIENT", "PAUSE", "x") == akvtest.RespError(
        "ERR timeout is not an integer or out of range")
    assert c.cmd("CLIENT", "PAUSE", "-1") == akvtest.RespError("ERR timeout is negative")
    assert c.cmd("CLIENT", "LIST", "TYPE", "x") == akvtest.RespError(
        "ERR Unknown client type 'x'")
    assert c.cmd("CLIENT", "KILL", "SKIPME", "x") == akvtest.RespError("ERR syntax error")
    assert c.cmd("WAIT", "x", "0") == akvtest.RespError(
        "ERR value is not an integer or out of range")
    help_ = c.cmd("CLIENT", "HELP")
    assert help_[0].startswith("CLIENT <subcommand>") and "PAUSE timeout [WRITE|ALL]" in help_
    assert c.cmd("PING") == "PONG"
    c.close()


@akvtest.test(SUITE)
def test_client_reply(env):
    d = env.daemon
    c = d.client()
    fill(c, [("cat", "animal")])
    c.send(Client.encode("CLIENT", "REPLY", "OFF") + Client.encode("GET", "cat") +
           Client.encode("QUERY", "dog") + Client.encode("FROB") +
           Client.encode("CLIENT", "REPLY", "ON"))
    assert c.read() == "OK"  # only ON answers
    c.send(Client.encode("CLIENT", "REPLY", "SKIP") + Client.encode("QUERY", "dog") +
           Client.encode("ECHO", "after"))
    assert c.read() == "after"
    assert c.cmd("GET", "cat") == "animal"
    r = rp(d)
    assert r.client_reply("ON") == "OK"
    r.close()
    c.close()


@akvtest.test(SUITE)
def test_client_pause(env):
    d = env.daemon
    r = rp(d)
    w = d.client()
    fill(w, [("cat", "animal")])
    # WRITE: writes wait, reads go on.
    assert r.client_pause(400, all=False) is True
    t = time.monotonic()
    assert w.cmd("GET", "cat") == "animal"
    assert time.monotonic() - t < 0.2
    w.send(Client.encode("SET", "cat", "toy"))
    time.sleep(0.1)
    assert r.info("clients")["blocked_clients"] >= 1
    assert w.read() == "OK"
    assert time.monotonic() - t >= 0.3
    assert r.info("clients")["blocked_clients"] == 0
    r.close()
    w.close()


@akvtest.test(SUITE)
def test_client_pause_lift(env):
    d = env.configured_daemon("pause", "", ("--workers", "1"))
    try:
        r = rp(d)
        w = d.client()
        fill(w, [("cat", "animal")])
        assert r.client_pause(20000, all=False) is True  # writes only: r can lift it
        w.send(Client.encode("SET", "dog", "animal"))
        time.sleep(0.2)
        assert r.info("clients")["blocked_clients"] == 1
        t = time.monotonic()
        assert r.client_unpause() in (True, "OK")
        assert w.read() == "OK"
        assert time.monotonic() - t < 1
        assert r.info("clients")["blocked_clients"] == 0
        # ALL: even CLIENT UNPAUSE waits for the end, as in Redis.
        assert r.client_pause(300) is True
        t = time.monotonic()
        assert w.cmd("PING") == "PONG"
        assert time.monotonic() - t >= 0.2
        # A shutdown lifts a pause: what was received is answered.
        assert r.client_pause(60000) is True
        w.send(Client.encode("GET", "cat"))
        time.sleep(0.1)
        d.send_signal(signal.SIGTERM)
        assert w.read() == "animal"
        r.close()
        w.close()
    finally:
        d.check_clean_exit()


# ---------------------------------------------------------------------------
# HELLO and RESP3.


@akvtest.test(SUITE)
def test_hello_resp3(env):
    d = env.daemon
    c = Resp3Client(d.port)
    fill(c, [("cat", "animal"), ("ball", "toy")])
    h = c.cmd("HELLO")
    assert h[:6] == ["server", "attnkv", "version", h[3], "proto", 2], h
    h = c.cmd("HELLO", "3", "SETNAME", "r3")
    assert h["server"] == "attnkv" and h["proto"] == 3 and h["mode"] == "standalone"
    assert h["role"] == "master" and h["modules"] == [] and isinstance(h["id"], int)
    assert c.cmd("CLIENT", "GETNAME") == "r3"
    q = c.cmd("QUERY", "dog", "COUNT", "2", "WITHSCORES")
    assert len(q) == 2 and all(isinstance(p[0], str) and isinstance(p[1], Double) for p in q), q
    ref = env.ref
    ref.store = {"cat": "animal", "ball": "toy"}
    want = ref.query("dog", k=2)
    assert [p[0] for p in q] == [w for w, _ in want], (q, want)
    n = c.cmd("NEIGHBORS", "dog", "COUNT", "1", "WITHSCORES")
    assert n[0][0] == "dog" and isinstance(n[0][1], Double)
    assert c.cmd("QUERY", "dog", "COUNT", "1") == [want[0][0]]
    e = c.cmd("EXPLAIN", "dog")
    assert {x["key"] for x in e} == {"cat", "ball"} and all(isinstance(x["weight"], Double)
                                                            for x in e), e
    assert abs(sum(x["weight"] for x in e) - 1) < 1e-9
    assert c.cmd("CONFIG", "GET", "port") == {"port": "0"}  # as configured
    assert c.cmd("CLIENT", "SETNAME", "") == "OK" and c.cmd("CLIENT", "GETNAME") is None
    assert c.cmd("OBJECT", "ENCODING", "nope") is None
    assert c.cmd("MEMORY", "USAGE", "nope") is None
    info = c.cmd("INFO", "server")
    assert info[0] == "txt" and "tcp_port:%d" % d.port in info[1]
    assert c.cmd("CLIENT", "INFO")[1].startswith("id=")
    docs = c.cmd("COMMAND", "DOCS", "get")
    assert docs["get"]["arguments"] == [{"name": "key", "type": "key"}], docs
    ci = c.cmd("COMMAND", "INFO", "get")
    assert ci[0][2] == frozenset({"readonly", "fast"}), ci
    assert c.cmd("MEMORY", "STATS")["keys.count"] == 2
    # Replies that are the same in both protocols.
    assert c.cmd("PING") == "PONG" and c.cmd("TIME")[0].isdigit()
    # RESET goes back to RESP2.
    assert c.cmd("RESET") == "RESET"
    assert c.cmd("CONFIG", "GET", "port") == ["port", "0"]
    assert is_err(c.cmd("HELLO", "4"), "NOPROTO unsupported protocol version")
    assert is_err(c.cmd("HELLO", "3", "AUTH", "bob", "x"), "WRONGPASS")
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test(SUITE)
def test_redis_cli_resp3(env):
    d = env.daemon
    c = d.client()
    fill(c, [("cat", "animal"), ("sphere", "shape")])
    r = cli(d, "-3", "--no-raw", stdin="HELLO 3\nQUERY cat COUNT 2 WITHSCORES\n"
                                        "EXPLAIN cat COUNT 1\nCONFIG GET port\n")
    assert r.returncode == 0, r
    assert "(double)" in r.stdout and '"weight" => (double)' in r.stdout, r.stdout
    assert '1# "port" => "0"' in r.stdout, r.stdout
    # Interactive redis-cli -3 says HELLO 3 itself, then reads COMMAND DOCS
    # for its help: "help query" shows the arguments.
    r = cli(d, "-3", stdin="query cat count 1 withscores\nhelp query\nhelp client kill\n")
    assert r.returncode == 0 and "ERR" not in r.stdout, r
    assert "text [COUNT k] [WITHSCORES]" in r.stdout, r.stdout
    assert "[ID client-id]" in r.stdout, r.stdout
    c.cmd("FLUSHALL")
    c.close()


# ---------------------------------------------------------------------------
# MONITOR.


MONITOR_LINE = re.compile(r'^\d{10}\.\d{6} \[0 127\.0\.0\.1:\d+\] (.*)$')


@akvtest.test(SUITE)
def test_monitor(env):
    d = env.daemon
    m = d.client()
    assert m.cmd("MONITOR") == "OK"
    c = d.client()
    c.cmd("SET", "cat", "animal")
    c.cmd("AUTH", "hunter2")
    c.cmd("HELLO", "2", "AUTH", "default", "hunter2", "SETNAME", "watched")
    c.cmd("CONFIG", "SET", "requirepass", "hunter2")
    c.cmd("ECHO", "a\"b\nc\x01")
    c.cmd("QUERY", "cat", "COUNT", "1")
    got = [m.read() for _ in range(6)]
    for line in got:
        assert MONITOR_LINE.match(line), got
    args = [MONITOR_LINE.match(l).group(1) for l in got]
    assert args == ['"SET" "cat" "animal"',
                    '"AUTH" "(redacted)"',
                    '"HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "watched"',
                    '"CONFIG" "SET" "requirepass" "(redacted)"',
                    '"ECHO" "a\\"b\\nc\\x01"',
                    '"QUERY" "cat" "COUNT" "1"'], args
    assert not any("hunter2" in l for l in got)
    # The password took effect (requirepass changes at run time); c, which
    # connected before it, stays authenticated and turns it off again.
    assert d.client().cmd("GET", "cat") == akvtest.RespError("NOAUTH Authentication required.")
    assert c.cmd("CONFIG", "SET", "requirepass", "") == "OK"
    # Another client's redis-cli MONITOR sees redis-py's commands.
    p = subprocess.Popen(["redis-cli", "-p", str(d.port), "MONITOR"], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "OK"
        r = rp(d)
        r.set("dog", "animal")
        line = p.stdout.readline()
        assert re.match(r'^\d+\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "dog" "animal"$',
                        line.strip()), line
        r.close()
    finally:
        p.kill()
        p.wait()
    assert m.cmd("RESET") is not None  # the feed may come first; RESET ends it
    m.close()
    c.cmd("DEL", "cat", "dog")
    c.close()


@akvtest.test(SUITE)
def test_monitor_slow_reader(env):
    """A monitor that never reads is closed at its output hard limit; the
    daemon's memory stays bounded and the others are served."""
    d = env.configured_daemon("monlimit", "client-output-buffer-limit 4mb 1mb 60\n",
                              ("--workers", "1"))
    try:
        before = rss_mb(d)
        m = d.client()
        mid = m.cmd("CLIENT", "ID")
        assert m.cmd("MONITOR") == "OK"
        c = d.client()
        big = "x" * 4000
        with Stall(d, "60 MB of ECHO while a MONITOR does not read"):
            for _ in range(150):
                c.send(b"".join(Client.encode("ECHO", big) for _ in range(100)))
                for _ in range(100):
                    assert c.read() == big
        wait_log(d, "over the client-output-buffer-limit hard limit")
        assert c.cmd("CLIENT", "LIST", "ID", str(mid)) == ""
        m.close()
        assert c.cmd("PING") == "PONG"
        if not daemon_is_instrumented():
            assert rss_mb(d) - before < 60, (before, rss_mb(d))
        c.close()
    finally:
        d.check_clean_exit()


# ---------------------------------------------------------------------------
# Operations.


@akvtest.test(SUITE)
def test_operations_redis_py(env):
    d = env.daemon
    r = rp(d)
    r.flushall()
    sec, usec = r.time()
    assert abs(sec - time.time()) < 5 and 0 <= usec < 1000000
    assert abs(r.lastsave().timestamp() - time.time()) < 3600
    assert r.wait(0, 0) == 0 and r.wait(2, 10) == 0
    r.set("cat", "animal")
    r.set("ball", "toy")
    assert r.type("cat") == "string" and r.type("nope") == "none"
    assert r.strlen("cat") == 6 and r.strlen("nope") == 0
    assert r.touch("cat", "nope", "ball") == 2
    assert r.randomkey() in ("cat", "ball")
    assert r.object("encoding", "cat") == "embstr"
    assert r.object("refcount", "cat") == 1
    try:
        r.object("idletime", "cat")
        raise AssertionError("OBJECT IDLETIME answered")
    except redis.ResponseError as e:
        assert "does not track access times" in str(e)
    assert 100 < r.memory_usage("cat") < 1000
    assert r.memory_usage("nope") is None
    st = r.memory_stats()
    assert st["keys.count"] == 2 and st["total.allocated"] > 0, st
    assert "No memory problems" in r.execute_command("MEMORY", "DOCTOR")
    info = r.info()
    assert info["used_memory"] > 0 and info["used_memory_peak"] >= info["used_memory"]
    assert info["used_memory_human"].endswith(("K", "M", "B")), info["used_memory_human"]
    assert info["loading"] == 0 and info["rdb_bgsave_in_progress"] == 0
    assert info["db0"]["keys"] == 2
    r.delete("cat", "ball")
    assert r.randomkey() is None
    r.close()


@akvtest.test(SUITE)
def test_bgsave_lastsave(env):
    d = env.daemon
    r = rp(d)
    before = r.lastsave()
    r.set("cat", "animal")
    time.sleep(1.1)
    assert r.bgsave() is True
    deadline = time.monotonic() + 20
    while r.info("persistence")["aof_rewrite_in_progress"] or r.lastsave() == before:
        assert time.monotonic() < deadline, r.info("persistence")
        time.sleep(0.05)
    assert r.lastsave() > before
    assert r.info("persistence")["rdb_last_save_time"] == int(r.lastsave().timestamp())
    try:
        r.save()
        raise AssertionError("SAVE answered OK")
    except redis.ResponseError as e:
        assert "would block the server" in str(e)
    r.delete("cat")
    r.close()


@akvtest.test(SUITE)
def test_latency(env):
    d = env.configured_daemon("latency", "latency-monitor-threshold 1\n", ("--workers", "1"),
                              vectors=env.big_vectors())
    try:
        c = d.client()
        fill(c, [("w%06d" % i, "w%06d" % (i + 1)) for i in range(200)])
        assert c.cmd("LATENCY", "LATEST") == []
        # Queued behind each other for the one worker, QUERYs from 40
        # clients take milliseconds from dispatch to reply.
        cs = [d.client() for _ in range(40)]
        for x in cs:
            x.send(b"".join(Client.encode("QUERY", "w%06d" % i, "COUNT", "100")
                            for i in range(20)))
        for x in cs:
            for _ in range(20):
                assert isinstance(x.read(), list)
            x.close()
        latest = c.cmd("LATENCY", "LATEST")
        ev = {e[0]: e for e in latest}
        assert "command" in ev, latest
        name, when, ms, worst = ev["command"]
        assert abs(when - time.time()) < 60 and 1 <= ms <= worst, latest
        hist = c.cmd("LATENCY", "HISTORY", "command")
        assert hist and all(len(h) == 2 and h[1] >= 1 for h in hist), hist
        assert "command:" in c.cmd("LATENCY", "DOCTOR")
        assert c.cmd("LATENCY", "RESET") >= 1
        assert c.cmd("LATENCY", "LATEST") == []
        assert c.cmd("CONFIG", "SET", "latency-monitor-threshold", "0") == "OK"
        c.close()
    finally:
        d.check_clean_exit()


@akvtest.test(SUITE)
def test_redis_cli_modes(env):
    d = env.daemon
    c = d.client()
    c.cmd("FLUSHALL")
    fill(c, [("cat", "animal"), ("dog", "animal"), ("sphere", "shape"),
             ("hello world", "the number seven one")])
    # --stat: keys, memory, clients, blocked, requests as figures.
    r = subprocess.run(["timeout", "2.5", "stdbuf", "-oL", "redis-cli", "-p", str(d.port),
                        "--stat", "-i", "0.5"], capture_output=True, text=True, timeout=30)
    rows = [l.split() for l in r.stdout.splitlines() if re.match(r"^\d", l)]
    assert rows, r.stdout + r.stderr
    keys, mem, clients, blocked = rows[-1][:4]
    assert keys == "4" and clients.isdigit() and blocked == "0", rows
    assert re.match(r"^[\d.]+[KMG]$", mem), rows
    # --bigkeys and --memkeys: every entry a string.
    r = cli(d, "--bigkeys")
    assert r.returncode == 0, r
    assert "Biggest string found '\"hello world\"' has 20 bytes" in r.stdout, r.stdout
    assert "4 strings with" in r.stdout, r.stdout
    r = cli(d, "--memkeys")
    assert r.returncode == 0 and "4 strings with" in r.stdout, r
    assert re.search(r"Biggest string found '\"[^\"]+\"' has \d{3} bytes", r.stdout), r.stdout
    # --latency and --latency-history: PING round trips.
    r = subprocess.run(["timeout", "2", "redis-cli", "-p", str(d.port), "--latency"],
                       capture_output=True, text=True, timeout=30)
    assert re.search(r"^\d+ \d+ [\d.]+ \d+$", r.stdout, re.M), r.stdout
    r = subprocess.run(["timeout", "2.5", "stdbuf", "-oL", "redis-cli", "-p", str(d.port),
                        "--latency-history", "-i", "1"], capture_output=True, text=True,
                       timeout=30)
    assert "seconds range" in r.stdout, r.stdout
    # --scan.
    r = cli(d, "--scan", "--pattern", "*o*")
    assert sorted(r.stdout.split("\n")[:-1]) == ["dog", "hello world"], r.stdout
    c.cmd("FLUSHALL")
    c.close()


# ---------------------------------------------------------------------------
# SHUTDOWN, on daemons of their own.


@akvtest.test(SUITE)
def test_shutdown(env):
    d = env.configured_daemon("shut", "", ("--workers", "1"))
    r = rp(d)
    r.set("cat", "animal")
    try:
        r.shutdown(abort=True)
        raise AssertionError("ABORT answered OK")
    except redis.ResponseError as e:
        assert "No shutdown in progress" in str(e)
    c = d.client()
    assert is_err(c.cmd("SHUTDOWN", "SAVE", "NOSAVE"), "syntax error")
    assert is_err(c.cmd("SHUTDOWN", "NOW", "ABORT"), "syntax error")
    # A reply already produced for another client is still delivered: wait
    # until the daemon has run that client's GET (its reply is then written
    # or queued), then shut down.
    other = d.client()
    other.send(Client.encode("GET", "cat"))
    for _ in range(500):
        if "cmdstat_get:calls=1," in c.cmd("INFO", "commandstats"):
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the other client's GET never ran")
    # redis-py's shutdown() takes the closed connection for success.
    r.shutdown()
    assert other.read() == "animal"
    rc = d.proc.wait(timeout=30)
    assert rc == 0, d.text()[-3000:]
    assert "SHUTDOWN from client" in d.text() and "bye" in d.text().splitlines()[-1]
    c.close()
    other.close()
    r.close()
    # What was written is in the AOF.
    d2 = env.configured_daemon("shut2", "", ("--workers", "1"), datadir=d.datadir)
    try:
        assert rp(d2).get("cat") == "animal"
        # NOW: connections are closed at once; redis-cli sees no reply.
        idle = d2.client()
        res = cli(d2, "SHUTDOWN", "NOW", "NOSAVE")
        assert res.returncode == 0 and res.stdout.strip() == "", res
        expect_closed(idle)
        assert d2.proc.wait(timeout=30) == 0
    finally:
        d2.kill()


@akvtest.test(SUITE)
def test_shutdown_save_without_aof(env):
    conf = "appendonly no\n"
    d = env.configured_daemon("shutnoaof", conf, ("--workers", "1"))
    try:
        c = d.client()
        assert c.cmd("SHUTDOWN", "SAVE") == akvtest.RespError(
            "ERR Errors trying to SHUTDOWN. Check logs.")
        wait_log(d, "SHUTDOWN SAVE refused")
        assert c.cmd("PING") == "PONG"
        c.send(Client.encode("SHUTDOWN", "SAVE", "FORCE"))
        expect_closed(c)
        assert d.proc.wait(timeout=30) == 0
    finally:
        d.kill()


# ---------------------------------------------------------------------------
# The stall rule with many clients.


@akvtest.test(SUITE)
def test_many_clients_stall(env):
    n = int(os.environ.get("AKV_TEST_MANY_CLIENTS", "9000"))
    # Room for n sockets here and in the daemon, which inherits the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1000 if hard == resource.RLIM_INFINITY else min(n + 1000, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    n = min(n, soft - 1000) if soft != resource.RLIM_INFINITY else n
    if n < 1000:
        raise akvtest.Skip("too few file descriptors for 1,000 clients (ulimit -n)")
    d = env.configured_daemon("many", "", ("--workers", "1"))
    socks = []
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
            socks.append(s)
        c = d.client()
        deadline = time.monotonic() + 60
        while c.cmd("INFO", "clients").count("connected_clients:%d" % (n + 1)) == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        t = time.monotonic()
        text = c.cmd("CLIENT", "LIST")
        once = time.monotonic() - t
        assert text.count("\n") == n + 1
        print("     CLIENT LIST of %d clients: %d bytes in %.1f ms (round trip)"
              % (n + 1, len(text), once * 1000))
        with Stall(d, "CLIENT LIST with %d clients, 20 times" % n):
            for _ in range(20):
                assert c.cmd("CLIENT", "LIST").count("\n") >= n
        with Stall(d, "CLIENT KILL by filter with %d clients" % n):
            assert c.cmd("CLIENT", "KILL", "ID", "999999999") == 0
        # 200 of them MONITOR; 2,000 commands are fed to each.
        mons = socks[:200]
        for s in mons:
            s.sendall(Client.encode("MONITOR"))
        time.sleep(0.5)
        with Stall(d, "2,000 commands fed to 200 monitors"):
            c.send(b"".join(Client.encode("SET", "cat", "animal") for _ in range(2000)))
            for _ in range(2000):
                assert c.read() == "OK"
        c.close()
    finally:
        for s in socks:
            s.close()
        d.check_clean_exit()


if __name__ == "__main__":
    if redis is None:
        print("SKIP: python3-redis (redis-py) is not installed")
        sys.exit(akvtest.SKIP)
    sys.exit(akvtest.main(SUITE))
