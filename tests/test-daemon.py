#!/usr/bin/env python3
"""Integration tests for attnkvd: the real daemon binary over real TCP.

Usage: test-daemon.py [--suite basic|concurrency|realvec] [-k NAME]

  basic        every command and its errors, framing, pipelining, redis-cli
               and redis-benchmark, start-up errors, maxclients, IPv6,
               shutdown with work in flight. Uses small vocabularies that the
               test writes itself (GloVe text -> attnkv-import), so it needs
               nothing from outside the build.
  concurrency  50 client threads mixing SET/DEL/QUERY/EXPLAIN with every reply
               checked, and clients vanishing mid-QUERY (run under TSan too).
  realvec      the README's example store on the default GloVe 6B 100d
               vectors ($AKV_VECTORS or the fetch-vectors cache); exits 77
               (skipped) when they are absent, unless AKV_REQUIRE_VECTORS=1.

Environment: AKV_ATTNKVD (the daemon, required), AKV_IMPORT (attnkv-import;
default $AKV_BUILD_ROOT/tools/attnkv-import), AKV_DAEMON_WRAPPER (a command
prefix for the daemon, e.g. "valgrind --error-exitcode=99 --leak-check=full").

Every socket, subprocess and wait has a timeout, so a hung daemon fails the
test instead of hanging it. Python 3 standard library only.
"""

import math
import os
import random
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP = 77
IO_TIMEOUT = float(os.environ.get("AKV_TEST_IO_TIMEOUT", "30"))
START_TIMEOUT = float(os.environ.get("AKV_TEST_START_TIMEOUT", "60"))

# ---------------------------------------------------------------------------
# A small RESP2 client.


class RespError(Exception):
    """An -ERR reply, returned (not raised) by Client.read()."""

    def __eq__(self, other):
        return isinstance(other, RespError) and self.args == other.args

    def __hash__(self):
        return hash(self.args)


class Closed(Exception):
    pass


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Closes with an RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Closed("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode(errors="surrogateescape")
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise AssertionError("bad reply line %r" % line)

    def at_eof(self):
        """True if the server closed the connection (after what is buffered)."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def cmd(self, *args):
        self.send(self.encode(*args))
        return self.read()

    def inline(self, line):
        self.send(line.encode() + b"\r\n")
        return self.read()


def is_err(reply, fragment=""):
    return isinstance(reply, RespError) and fragment in reply.args[0]


# ---------------------------------------------------------------------------
# Test vocabularies.


def synth_words():
    """Words the tests use, then filler."""
    named = [
        "the", "a", "b", "xxx", "VXK", "key:__rand_int__", "cat", "dog", "animal", "one", "number",
        "ball", "toy", "sphere", "shape", "male", "gender", "female", "seven", "rhombus",
        "hello", "world", "foo", "bar", "king", "queen", "café",
    ]
    return named + ["w%04d" % i for i in range(2000)]


def synth_vectors(words, dim, seed):
    rnd = random.Random(seed)
    return {w: [round(rnd.gauss(0, 0.5), 5) for _ in range(dim)] for w in words}


def write_glove(path, words, vecs):
    with open(path, "w", encoding="utf-8") as f:
        for w in words:
            f.write(w + " " + " ".join(repr(x) for x in vecs[w]) + "\n")


def import_vocab(txt, out):
    exe = os.environ.get("AKV_IMPORT") or os.path.join(
        os.environ.get("AKV_BUILD_ROOT", "."), "tools", "attnkv-import")
    subprocess.run([exe, "--quiet", txt, out], check=True, timeout=300)


# ---------------------------------------------------------------------------
# A reference implementation of QUERY/EXPLAIN/NEIGHBORS for the synthetic
# vocabulary, in double precision. Rankings of random vectors have no near
# ties, so the daemon's float32 storage cannot change the order.


class Reference:
    def __init__(self, words, vecs):
        self.words = words
        self.vecs = {w: [float(struct.unpack("f", struct.pack("f", x))[0]) for x in v]
                     for w, v in vecs.items()}
        self.store = {}

    def embed(self, text):
        ws = text.split()
        acc = [0.0] * len(self.vecs[self.words[0]])
        for w in ws:
            v = self.vecs.get(w) or self.vecs[w.lower()]
            acc = [a + b for a, b in zip(acc, v)]
        return [a / len(ws) for a in acc]

    @staticmethod
    def dot(x, y):
        return sum(a * b for a, b in zip(x, y))

    def cos(self, x, y):
        nx, ny = math.sqrt(self.dot(x, x)), math.sqrt(self.dot(y, y))
        return self.dot(x, y) / (nx * ny) if nx > 0 and ny > 0 else 0.0

    def attention(self, q, attn="dot", tau=0.1):
        items = list(self.store.items())
        if attn == "dot":
            s = [self.dot(self.embed(k), q) for k, _ in items]
        else:
            s = [self.cos(self.embed(k), q) / tau for k, _ in items]
        m = max(s)
        e = [math.exp(x - m) for x in s]
        z = sum(e)
        return [(k, v, x / z) for (k, v), x in zip(items, e)]

    def rank(self, r, metric="l2", k=5):
        def score(w):
            v = self.vecs[w]
            if metric == "l2":
                return math.sqrt(sum((a - b) ** 2 for a, b in zip(v, r)))
            if metric == "cosine":
                return self.cos(v, r)
            return self.dot(v, r)

        scored = [(score(w), i, w) for i, w in enumerate(self.words)]
        if metric == "l2":
            scored.sort(key=lambda t: (t[0], t[1]))
        else:
            scored.sort(key=lambda t: (-t[0], t[1]))
        return [(w, s) for s, _, w in scored[:k]]

    def query(self, text, k=5, attn="dot", tau=0.1, metric="l2"):
        if not self.store:
            return []
        att = self.attention(self.embed(text), attn, tau)
        dim = len(self.vecs[self.words[0]])
        r = [0.0] * dim
        for _, v, a in att:
            ev = self.embed(v)
            r = [x + a * y for x, y in zip(r, ev)]
        return self.rank(r, metric, k)

    def explain(self, text, n=5, attn="dot", tau=0.1):
        if not self.store:
            return []
        att = self.attention(self.embed(text), attn, tau)
        att.sort(key=lambda t: -t[2])
        return att[:n]


# ---------------------------------------------------------------------------
# Running the daemon.


class Daemon:
    def __init__(self, workdir, vectors, args=(), name="attnkvd", expect_start=True):
        self.exe = os.environ["AKV_ATTNKVD"]
        self.logpath = os.path.join(workdir, name + ".log")
        self.log = open(self.logpath, "wb")
        wrapper = shlex.split(os.environ.get("AKV_DAEMON_WRAPPER", ""))
        cmd = wrapper + [self.exe, "--port", "0", "--vectors", vectors, "--loglevel",
                         "verbose"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.port = None
        self.addresses = []
        self.signalled = False
        if expect_start:
            self._wait_listening()

    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")

    def _wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            t = self.text()
            if "ready:" in t:
                self.addresses = re.findall(r"listening on (\S+):(\d+)$", t, re.M)
                self.port = int(self.addresses[0][1])
                return
            if self.proc.poll() is not None:
                raise AssertionError("attnkvd exited with %s:\n%s" % (self.proc.returncode, t))
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError("attnkvd did not start:\n" + self.text())

    def client(self, **kw):
        return Client(self.port, **kw)

    def send_signal(self, sig=signal.SIGTERM):
        self.signalled = True
        self.proc.send_signal(sig)

    def alive(self):
        if self.proc.poll() is not None:
            return False
        c = self.client()
        try:
            return c.cmd("PING") == "PONG"
        finally:
            c.close()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the daemon (unless that was done already) and returns its
        exit status."""
        if self.proc.poll() is None and not self.signalled:
            self.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("attnkvd did not exit after %s:\n%s" % (sig, self.text()[-4000:]))
        self.log.close()
        return rc

    def check_clean_exit(self):
        rc = self.stop()
        t = self.text()
        assert rc == 0, "attnkvd exited with %d:\n%s" % (rc, t[-6000:])
        assert "not closed cleanly" not in t, t[-3000:]
        assert "bye" in t.splitlines()[-1], t[-3000:]


# ---------------------------------------------------------------------------
# The test runner.

TESTS = []


def test(suite):
    def deco(fn):
        TESTS.append((suite, fn))
        return fn

    return deco


class Env:
    """What the tests share: a work directory, the vocabularies, one daemon."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.words = synth_words()
        self.dim = 16
        self.vecs = synth_vectors(self.words, self.dim, 42)
        txt = os.path.join(workdir, "synth.txt")
        write_glove(txt, self.words, self.vecs)
        self.vectors = os.path.join(workdir, "synth.akv")
        import_vocab(txt, self.vectors)
        self.ref = Reference(self.words, self.vecs)
        self.daemon = None
        self._big = None

    def start(self, args=("--workers", "2")):
        self.daemon = Daemon(self.workdir, self.vectors, args)
        return self.daemon

    def big_vectors(self):
        """A larger vocabulary, so that queries take long enough to be caught
        in flight."""
        if self._big is None:
            words = ["w%06d" % i for i in range(60000)]
            rnd = random.Random(7)
            txt = os.path.join(self.workdir, "big.txt")
            with open(txt, "w") as f:
                for w in words:
                    f.write(w + " " + " ".join("%.4f" % rnd.uniform(-1, 1) for _ in range(48))
                            + "\n")
            self._big = os.path.join(self.workdir, "big.akv")
            import_vocab(txt, self._big)
        return self._big


def run(suite, only):
    workdir = tempfile.mkdtemp(prefix="akv-daemon-test-")
    results = []
    try:
        env = Env(workdir)
        if suite == "realvec":
            path = real_vectors_path()
            if not path:
                if os.environ.get("AKV_REQUIRE_VECTORS") == "1":
                    print("FAIL: AKV_REQUIRE_VECTORS=1 but the default vectors are missing")
                    return 1
                print("SKIP: default vectors not found (run scripts/fetch-vectors)")
                return SKIP
            env.daemon = Daemon(workdir, path, ("--workers", "2"), name="realvec")
        else:
            env.start()
        for s, fn in TESTS:
            if s != suite or (only and only not in fn.__name__):
                continue
            t0 = time.monotonic()
            try:
                fn(env)
                assert env.daemon.proc.poll() is None, "attnkvd died:\n" + env.daemon.text()[-4000:]
                results.append((fn.__name__, None))
                print("ok   %-40s %6.2fs" % (fn.__name__, time.monotonic() - t0), flush=True)
            except Exception:
                results.append((fn.__name__, traceback.format_exc()))
                print("FAIL %-40s\n%s" % (fn.__name__, traceback.format_exc()), flush=True)
                if env.daemon.proc.poll() is not None:
                    print(env.daemon.text()[-4000:])
                    break
        t0 = time.monotonic()
        try:
            env.daemon.check_clean_exit()
            results.append(("clean_exit", None))
            print("ok   %-40s %6.2fs" % ("clean_exit", time.monotonic() - t0))
        except Exception:
            results.append(("clean_exit", traceback.format_exc()))
            print("FAIL clean_exit\n" + traceback.format_exc())
    finally:
        if os.environ.get("AKV_TEST_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("kept", workdir)
    failed = sum(1 for _, e in results if e)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


def real_vectors_path():
    p = os.environ.get("AKV_VECTORS")
    if not p:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        p = os.path.join(cache, "attnkv", "glove-6B-100d.akv")
    return p if os.path.isfile(p) else None


# ---------------------------------------------------------------------------
# basic: commands.


@test("basic")
def test_ping_echo_quit(env):
    c = env.daemon.client()
    assert c.cmd("PING") == "PONG"
    assert c.cmd("ping", "hi there") == "hi there"
    assert c.cmd("PiNg") == "PONG"
    assert is_err(c.cmd("PING", "a", "b"), "wrong number of arguments for 'ping'")
    assert c.cmd("ECHO", "x\r\ny\0z") == "x\r\ny\0z"
    assert is_err(c.cmd("ECHO"), "wrong number of arguments for 'echo'")
    assert c.inline("ping") == "PONG"
    assert c.cmd("QUIT") == "OK"
    assert c.at_eof()
    c.close()


@test("basic")
def test_unknown_command(env):
    c = env.daemon.client()
    r = c.cmd("FROB", "x")
    assert is_err(r, "unknown command 'FROB'"), r
    assert c.cmd("PING") == "PONG"
    c.close()


@test("basic")
def test_help_and_command(env):
    c = env.daemon.client()
    h = c.cmd("HELP")
    assert isinstance(h, list) and len(h) >= 15
    joined = "\n".join(h)
    for name in ("QUERY text", "EXPLAIN text", "NEIGHBORS", "SET key value", "KEYS pattern"):
        assert name in joined, joined
    n = c.cmd("COMMAND", "COUNT")
    assert n == len(h)
    table = c.cmd("COMMAND")
    assert len(table) == n
    names = {e[0]: e for e in table}
    assert names["get"][1] == 2 and names["get"][3:6] == [1, 1, 1]
    assert names["del"][1] == -2 and names["del"][3:6] == [1, -1, 1]
    assert "write" in names["set"][2]
    assert c.cmd("COMMAND", "DOCS") == []
    assert c.cmd("COMMAND", "DOCS", "get") == []
    info = c.cmd("COMMAND", "INFO", "get", "nope")
    assert info[0][0] == "get" and info[1] is None
    assert "query" in c.cmd("COMMAND", "LIST")
    assert is_err(c.cmd("COMMAND", "FLY"), "unknown subcommand")
    c.close()


@test("basic")
def test_select(env):
    c = env.daemon.client()
    assert c.cmd("SELECT", "0") == "OK"
    assert is_err(c.cmd("SELECT", "1"), "out of range")
    assert is_err(c.cmd("SELECT", "x"), "not an integer")
    assert is_err(c.cmd("SELECT"), "wrong number")
    c.close()


@test("basic")
def test_config_get(env):
    c = env.daemon.client()
    r = c.cmd("CONFIG", "GET", "port")
    assert r == ["port", "0"], r
    r = dict(zip(*[iter(c.cmd("CONFIG", "GET", "*"))] * 2))
    for name in ("bind", "port", "maxclients", "workers", "vectors", "count", "attention",
                 "temperature", "metric", "loglevel", "logfile"):
        assert name in r, r
    assert r["workers"] == "2" and r["metric"] == "l2" and r["count"] == "5"
    assert "save" not in r
    r = c.cmd("CONFIG", "GET", "MAX*")
    assert r == ["maxclients", "10000"], r
    r = dict(zip(*[iter(c.cmd("CONFIG", "GET", "m*", "?ort"))] * 2))
    assert set(r) == {"maxclients", "metric", "port"}, r
    assert c.cmd("CONFIG", "GET", "save") == ["save", ""]
    assert c.cmd("CONFIG", "GET", "appendonly") == ["appendonly", "no"]
    assert c.cmd("CONFIG", "GET", "nothing*") == []
    assert is_err(c.cmd("CONFIG", "SET", "port", "1"), "cannot be changed at run time")
    assert is_err(c.cmd("CONFIG", "REWRITE"), "unknown CONFIG subcommand")
    assert is_err(c.cmd("CONFIG", "GET"), "wrong number")
    assert is_err(c.cmd("CONFIG"), "wrong number")
    c.close()


@test("basic")
def test_set_get_del_exists(env):
    c = env.daemon.client()
    assert c.cmd("FLUSHALL") == "OK"
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("SET", "cat", "animal") == "OK"
    assert c.cmd("SET", "dog", "animal") == "OK"
    assert c.cmd("SET", "hello world", "foo bar") == "OK"
    assert c.cmd("GET", "cat") == "animal"
    assert c.cmd("GET", "hello world") == "foo bar"
    assert c.cmd("GET", "nope") is None
    assert c.cmd("SET", "cat", "toy") == "OK"
    assert c.cmd("GET", "cat") == "toy"
    assert c.cmd("DBSIZE") == 3
    assert c.cmd("EXISTS", "cat", "dog", "nope", "cat") == 3
    assert c.cmd("DEL", "cat", "nope") == 1
    assert c.cmd("DEL", "cat") == 0
    assert c.cmd("EXISTS", "cat") == 0
    # Case: the lookup lowercases words, but keys are stored as given.
    assert c.cmd("SET", "King", "Queen") == "OK"
    assert c.cmd("GET", "King") == "Queen"
    assert c.cmd("GET", "king") is None
    # Errors.
    r = c.cmd("SET", "animl", "cat")
    assert is_err(r, "unknown word 'animl' (did you mean 'animal'?)"), r
    r = c.cmd("SET", "cat", "zzzzqqq")
    assert is_err(r, "unknown word 'zzzzqqq'"), r
    assert is_err(c.cmd("SET", "", "cat"), "ERR"), "empty key"
    assert is_err(c.cmd("SET", "cat"), "wrong number of arguments for 'set'")
    assert is_err(c.cmd("SET", "cat", "dog", "EX"), "wrong number")
    assert is_err(c.cmd("GET"), "wrong number")
    assert is_err(c.cmd("DEL"), "wrong number")
    assert is_err(c.cmd("EXISTS"), "wrong number")
    assert is_err(c.cmd("DBSIZE", "x"), "wrong number")
    assert c.cmd("GET", "cat") is None
    assert c.cmd("DBSIZE") == 3
    # UTF-8 words.
    assert c.cmd("SET", "café", "cat") == "OK"
    assert c.cmd("GET", "café") == "cat"
    assert c.cmd("FLUSHALL") == "OK"
    assert c.cmd("FLUSHALL", "ASYNC") == "OK"
    assert is_err(c.cmd("FLUSHALL", "NOW"), "syntax")
    assert c.cmd("DBSIZE") == 0
    c.close()


@test("basic")
def test_keys_and_scan(env):
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    keys = ["w%04d" % i for i in range(300)] + ["cat", "dog", "hello world", "a", "b"]
    c.send(b"".join(Client.encode("SET", k, "animal") for k in keys))
    for _ in keys:
        assert c.read() == "OK"
    assert sorted(c.cmd("KEYS", "*")) == sorted(keys)
    assert sorted(c.cmd("KEYS", "w00[0-1]?")) == ["w%04d" % i for i in range(20)]
    assert sorted(c.cmd("KEYS", "[a-c]*")) == ["a", "b", "cat"]
    assert sorted(c.cmd("KEYS", "[^w]*")) == ["a", "b", "cat", "dog", "hello world"]
    assert c.cmd("KEYS", "hello\\ world") == ["hello world"]
    assert c.cmd("KEYS", "?") is not None and sorted(c.cmd("KEYS", "?")) == ["a", "b"]
    assert c.cmd("KEYS", "nomatch*") == []
    assert is_err(c.cmd("KEYS"), "wrong number")
    # A full SCAN sees every key (maybe twice), whatever COUNT.
    for count in (1, 7, 1000):
        seen, cursor, rounds = set(), "0", 0
        while True:
            cursor, batch = c.cmd("SCAN", cursor, "COUNT", count)
            seen.update(batch)
            rounds += 1
            if cursor == "0":
                break
            assert rounds < 10000
        assert seen == set(keys), (count, set(keys) ^ seen)
    seen, cursor = set(), "0"
    while True:
        cursor, batch = c.cmd("SCAN", cursor, "MATCH", "w01*", "COUNT", 50)
        seen.update(batch)
        if cursor == "0":
            break
    assert seen == {"w%04d" % i for i in range(100, 200)}
    cursor, batch = c.cmd("SCAN", "0", "TYPE", "hash", "COUNT", 1000)
    assert batch == []
    assert is_err(c.cmd("SCAN", "x"), "invalid cursor")
    assert is_err(c.cmd("SCAN", "0", "COUNT", "0"), "COUNT")
    assert is_err(c.cmd("SCAN", "0", "MATCH"), "syntax")
    assert is_err(c.cmd("SCAN", "0", "BOGUS", "1"), "syntax")
    c.cmd("FLUSHALL")
    c.close()


@test("basic")
def test_info(env):
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    c.cmd("SET", "cat", "animal")
    c.cmd("QUERY", "dog")
    info = c.cmd("INFO")
    for section in ("# Server", "# Clients", "# Stats", "# Keyspace", "# Vectors", "# Latency"):
        assert section in info, info
    fields = dict(l.split(":", 1) for l in info.split("\r\n") if ":" in l)
    assert int(fields["tcp_port"]) == env.daemon.port
    assert int(fields["process_id"]) == env.daemon.proc.pid
    assert int(fields["connected_clients"]) >= 1
    assert int(fields["total_connections_received"]) >= 1
    assert int(fields["total_commands_processed"]) >= 3
    assert fields["rejected_connections"] == "0"
    assert fields["keys"] == "1" and fields["db0"].startswith("keys=1,")
    assert int(fields["vocabulary_size"]) == len(env.words)
    assert int(fields["vector_dim"]) == env.dim
    assert fields["vocabulary_file"] == env.vectors
    assert int(fields["query_count"]) >= 1
    assert int(fields["query_latency_max_us"]) >= int(fields["query_latency_mean_us"]) > 0
    assert int(fields["workers"]) == 2
    only = c.cmd("INFO", "vectors")
    assert only.startswith("# Vectors\r\n") and "# Server" not in only
    two = c.cmd("INFO", "CLIENTS", "latency")
    assert "# Clients" in two and "# Latency" in two and "# Stats" not in two
    assert c.cmd("INFO", "nosuchsection") == ""
    assert "# Keyspace" in c.cmd("INFO", "all")
    c.cmd("FLUSHALL")
    c.close()


def words_of(reply):
    return reply[0::2]


@test("basic")
def test_query_matches_reference(env):
    c = env.daemon.client()
    ref = env.ref
    c.cmd("FLUSHALL")
    assert c.cmd("QUERY", "cat") == [], "empty store gives no hits"
    assert c.cmd("EXPLAIN", "cat") == []
    store = {"one": "number", "cat": "animal", "dog": "animal", "ball": "toy",
             "sphere": "shape", "male": "gender", "hello world": "foo bar"}
    ref.store = dict(store)
    for k, v in store.items():
        assert c.cmd("SET", k, v) == "OK"
    cases = [
        ("female", {}),
        ("seven", {"COUNT": 3}),
        ("rhombus", {"COUNT": 10, "METRIC": "cosine"}),
        ("king queen", {"METRIC": "dot"}),
        ("w0001", {"ATTENTION": "cosine"}),
        ("w0002 w0003", {"ATTENTION": "cosine", "TEMPERATURE": "0.5", "COUNT": 7}),
        ("CAT", {}),
    ]
    for text, opts in cases:
        args = ["QUERY", text]
        for k, v in opts.items():
            args += [k, str(v)]
        got = c.cmd(*args)
        want = ref.query(text, k=int(opts.get("COUNT", 5)),
                         attn=opts.get("ATTENTION", "dot"),
                         tau=float(opts.get("TEMPERATURE", 0.1)),
                         metric=opts.get("METRIC", "l2"))
        assert got == [w for w, _ in want], (text, opts, got, want)
        got = c.cmd(*(args + ["WITHSCORES"]))
        assert words_of(got) == [w for w, _ in want]
        for (w, s), g in zip(want, got[1::2]):
            assert abs(float(g) - s) <= 1e-4 * max(1.0, abs(s)), (text, w, g, s)
    # Options are case-insensitive and may come in any order.
    a = c.cmd("query", "seven", "withscores", "count", "2", "metric", "L2")
    b = c.cmd("QUERY", "seven", "COUNT", "2", "WITHSCORES")
    assert a == b and len(a) == 4
    assert len(c.cmd("QUERY", "seven", "COUNT", "1000")) == 1000
    c.cmd("FLUSHALL")
    c.close()


@test("basic")
def test_explain_and_neighbors(env):
    c = env.daemon.client()
    ref = env.ref
    c.cmd("FLUSHALL")
    store = {"one": "number", "cat": "animal", "dog": "animal", "ball": "toy",
             "sphere": "shape", "male": "gender", "a": "b"}
    ref.store = dict(store)
    for k, v in store.items():
        c.cmd("SET", k, v)
    for text, n, attn in (("female", 5, "dot"), ("seven", 3, "dot"), ("rhombus", 7, "cosine")):
        args = ["EXPLAIN", text, "ATTENTION", attn]
        if n != 5:
            args += ["COUNT", str(n)]
        got = c.cmd(*args)
        want = ref.explain(text, n, attn)
        assert len(got) == min(n, len(store)), got
        for (k, v, w), g in zip(want, got):
            assert isinstance(g, list) and len(g) == 3
            assert g[0] == k and g[1] == v, (got, want)
            assert abs(float(g[2]) - w) < 1e-5, (g, w)
    total = sum(float(g[2]) for g in c.cmd("EXPLAIN", "cat", "COUNT", "100"))
    assert abs(total - 1.0) < 1e-6, total
    for text, k, metric in (("king", 5, "l2"), ("cat dog", 8, "cosine"), ("b", 3, "dot")):
        got = c.cmd("NEIGHBORS", text, "COUNT", str(k), "METRIC", metric, "WITHSCORES")
        want = ref.rank(ref.embed(text), metric, k)
        assert words_of(got) == [w for w, _ in want], (text, got, want)
    assert c.cmd("NEIGHBORS", "king")[0] == "king"
    c.cmd("FLUSHALL")
    c.close()


@test("basic")
def test_query_errors(env):
    c = env.daemon.client()
    c.cmd("SET", "cat", "animal")
    errors = [
        (("QUERY",), "wrong number of arguments for 'query'"),
        (("QUERY", "animl"), "unknown word 'animl' (did you mean 'animal'?)"),
        (("QUERY", "qqqqzzzz"), "unknown word 'qqqqzzzz'"),
        (("QUERY", ""), "empty"),
        (("QUERY", "   "), "empty"),
        (("QUERY", "cat", "COUNT"), "COUNT needs a value"),
        (("QUERY", "cat", "COUNT", "0"), "COUNT must be an integer between 1 and 1000"),
        (("QUERY", "cat", "COUNT", "1001"), "between 1 and 1000"),
        (("QUERY", "cat", "COUNT", "-1"), "between 1 and 1000"),
        (("QUERY", "cat", "COUNT", "3x"), "between 1 and 1000"),
        (("QUERY", "cat", "ATTENTION", "sharp"), "unknown ATTENTION 'sharp'"),
        (("QUERY", "cat", "METRIC", "manhattan"), "unknown METRIC 'manhattan'"),
        (("QUERY", "cat", "TEMPERATURE", "0"), "TEMPERATURE must be a number greater than 0"),
        (("QUERY", "cat", "TEMPERATURE", "-1"), "TEMPERATURE"),
        (("QUERY", "cat", "TEMPERATURE", "nan"), "TEMPERATURE"),
        (("QUERY", "cat", "TEMPERATURE", "inf"), "TEMPERATURE"),
        (("QUERY", "cat", "TEMPERATURE", " 1"), "TEMPERATURE"),
        (("QUERY", "cat", "LIMIT", "3"), "unknown option 'LIMIT' for QUERY"),
        (("EXPLAIN", "cat", "METRIC", "l2"), "unknown option 'METRIC' for EXPLAIN"),
        (("EXPLAIN", "cat", "WITHSCORES"), "unknown option 'WITHSCORES' for EXPLAIN"),
        (("EXPLAIN", "cat", "COUNT", "0"), "between 1 and 1000"),
        (("EXPLAIN",), "wrong number"),
        (("NEIGHBORS", "cat", "ATTENTION", "dot"), "unknown option 'ATTENTION' for NEIGHBORS"),
        (("NEIGHBORS", "zzqqxx"), "unknown word"),
        (("NEIGHBORS",), "wrong number"),
        (("QUERY", " ".join(["cat"] * 65)), "too many words"),
        (("QUERY", "cat" * 2000), "too long"),
        (("QUERY", b"\xff\xfe".decode("latin-1").encode("latin-1")), "UTF-8"),
    ]
    for args, frag in errors:
        r = c.cmd(*args)
        assert is_err(r, frag), (args[:3], r)
    # A phrase is the mean of its words; 64 words is the limit.
    assert len(c.cmd("QUERY", " ".join(["cat"] * 64))) == 5
    assert c.cmd("PING") == "PONG"
    c.cmd("FLUSHALL")
    c.close()


@test("basic")
def test_inline_quoting(env):
    c = env.daemon.client()
    assert c.inline('SET "hello world" \'foo bar\'') == "OK"
    assert c.inline('GET "hello world"') == "foo bar"
    assert c.inline('ECHO "a\\tb"') == "a\tb"
    assert len(c.inline('QUERY "cat dog" COUNT 3')) == 3
    # Empty lines are ignored; \n alone ends a line too.
    c.send(b"\r\n\n  \nPING\n")
    assert c.read() == "PONG"
    r = c.inline('ECHO "unbalanced')
    assert is_err(r, "unbalanced quotes"), r
    assert c.at_eof()
    c.close()
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    c.close()


# ---------------------------------------------------------------------------
# basic: framing.


@test("basic")
def test_pipeline_100(env):
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    ref = env.ref
    ref.store = {}
    reqs, want = [], []
    for i in range(100):
        kind = i % 5
        if kind == 0:
            k = "w%04d" % i
            reqs.append(Client.encode("SET", k, "animal"))
            want.append("OK")
            ref.store[k] = "animal"
        elif kind == 1:
            reqs.append(Client.encode("QUERY", "cat", "COUNT", 2))
            want.append(("query", "cat", dict(ref.store)))
        elif kind == 2:
            reqs.append(Client.encode("ECHO", "m%d" % i))
            want.append("m%d" % i)
        elif kind == 3:
            reqs.append(b"PING\r\n")  # inline mixed with RESP
            want.append("PONG")
        else:
            reqs.append(Client.encode("GET", "w%04d" % (i - 4)))
            want.append("animal")
    c.send(b"".join(reqs))
    for w in want:
        got = c.read()
        if isinstance(w, tuple):
            ref.store = w[2]
            exp = [x for x, _ in ref.query(w[1], k=2)]
            assert got == exp, (got, exp)
        else:
            assert got == w, (got, w)
    c.cmd("FLUSHALL")
    c.close()


@test("basic")
def test_one_byte_at_a_time(env):
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    c.cmd("SET", "cat", "animal")
    data = (Client.encode("SET", "dog", "animal") + b"QUERY cat COUNT 3\r\n" +
            Client.encode("GET", "dog") + Client.encode("ECHO", "") + b"*0\r\n" +
            Client.encode("PING"))
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(0.001)
    assert c.read() == "OK"
    assert len(c.read()) == 3
    assert c.read() == "animal"
    assert c.read() == ""
    assert c.read() == "PONG"
    c.cmd("FLUSHALL")
    c.close()


@test("basic")
def test_binary_junk(env):
    # Junk without a newline grows into an overlong inline line.
    rnd = random.Random(3)
    alphabet = [b for b in range(256) if b not in (10, 42)]
    junk = bytes(rnd.choice(alphabet) for _ in range(70000))
    c = env.daemon.client()
    c.send(junk)
    r = c.read()
    assert is_err(r, "Protocol error"), r
    assert c.at_eof()
    c.close()
    # An overlong line of text, with its newline.
    c = env.daemon.client()
    c.send(b"ECHO " + b"a" * 70000 + b"\r\n")
    r = c.read()
    assert is_err(r, "too big inline request"), r
    assert c.at_eof()
    c.close()
    # Junk with newlines is just unknown commands; the connection lives on.
    c = env.daemon.client()
    c.send(b"\x00\x01\x02 \xff\xfe\r\n")
    r = c.read()
    assert is_err(r, "unknown command"), r
    assert c.cmd("PING") == "PONG"
    c.close()
    # Broken RESP.
    for bad in (b"*1\r\n$x\r\n", b"*1\r\n+PING\r\n", b"*-5\r\n", b"*1\r\n$4\r\nPINGxx",
                b"*99999999999999999999\r\n", b"*1\r\n$999999999999\r\n"):
        c = env.daemon.client()
        c.send(bad)
        r = c.read()
        assert is_err(r, "Protocol error"), (bad, r)
        assert c.at_eof()
        c.close()
    assert env.daemon.alive()


@test("basic")
def test_big_requests(env):
    c = env.daemon.client()
    # A bulk string of 1 MiB in, and out again.
    big = "x" * (1 << 20)
    assert c.cmd("ECHO", big) == big
    # Many arguments: the shared argv grows.
    keys = ["k%d" % i for i in range(5000)]
    assert c.cmd("DEL", *keys) == 0
    assert c.cmd("EXISTS", *keys) == 0
    # A bulk over the limit is refused before it is read.
    c.send(b"*2\r\n$4\r\nECHO\r\n$%d\r\n" % (64 << 20))
    r = c.read()
    assert is_err(r, "Protocol error"), r
    c.close()
    assert env.daemon.alive()


@test("basic")
def test_half_close(env):
    # A client that sends and then shuts down its side still gets replies.
    c = env.daemon.client()
    c.send(b"PING\r\n" + Client.encode("QUERY", "cat") + b"ECHO bye\r\nPIN")
    c.sock.shutdown(socket.SHUT_WR)
    assert c.read() == "PONG"
    assert isinstance(c.read(), list)
    assert c.read() == "bye"
    assert c.at_eof()
    c.close()


@test("basic")
def test_write_then_query_visibility(env):
    # A QUERY dispatched after another client's SET was acknowledged sees it.
    a, b = env.daemon.client(), env.daemon.client()
    a.cmd("FLUSHALL")
    for i in range(200):
        k = "w%04d" % i
        assert a.cmd("SET", k, "toy") == "OK"
        got = b.cmd("EXPLAIN", k, "COUNT", 1000)
        assert k in [g[0] for g in got], (k, got)
        assert a.cmd("DEL", k) == 1
        got = b.cmd("EXPLAIN", k, "COUNT", 1000)
        assert k not in [g[0] for g in got]
    a.close()
    b.close()


# ---------------------------------------------------------------------------
# basic: tools.


def run_tool(args, timeout=120):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


@test("basic")
def test_redis_cli(env):
    if not shutil.which("redis-cli"):
        raise AssertionError("redis-cli not installed (apt-get install redis-tools)")
    p = str(env.daemon.port)
    r = run_tool(["redis-cli", "-p", p, "SET", "a", "b"])
    assert r.returncode == 0 and r.stdout.strip() == "OK", r
    r = run_tool(["redis-cli", "-p", p, "GET", "a"])
    assert r.stdout.strip() == "b", r
    r = run_tool(["redis-cli", "-p", p, "QUERY", "a", "COUNT", "3"])
    assert r.returncode == 0 and len(r.stdout.split()) == 3, r
    r = run_tool(["redis-cli", "--no-raw", "-p", p, "QUERY", "a", "COUNT", "2", "WITHSCORES"])
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 4, r
    assert re.match(r'^1\) "b"$', lines[0]), lines
    r = run_tool(["redis-cli", "--no-raw", "-p", p, "EXPLAIN", "a"])
    assert '1) 1) "a"' in r.stdout, r
    r = run_tool(["redis-cli", "-p", p, "QUERY", "zzqqxx"])
    assert "unknown word" in r.stdout + r.stderr, r
    r = run_tool(["redis-cli", "-p", p, "INFO", "server"])
    assert "tcp_port:" + p in r.stdout, r
    # Interactive start-up asks for COMMAND (and COMMAND DOCS): no error.
    r = subprocess.run(["redis-cli", "-p", p], input="PING\nquery a count 1\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "PONG" in r.stdout and "ERR" not in r.stdout, r
    run_tool(["redis-cli", "-p", p, "DEL", "a"])


@test("basic")
def test_redis_benchmark(env):
    if not shutil.which("redis-benchmark"):
        raise AssertionError("redis-benchmark not installed (apt-get install redis-tools)")
    p = str(env.daemon.port)
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    r = run_tool(["redis-benchmark", "-p", p, "-n", "2000", "-c", "10", "-t", "ping,set", "-q"],
                 timeout=300)
    assert r.returncode == 0, r
    rates = re.findall(r"([A-Z_]+): ([\d.]+) requests per second", r.stdout)
    assert {n for n, _ in rates} >= {"PING_INLINE", "PING_MBULK", "SET"}, r.stdout
    print("     redis-benchmark:", ", ".join("%s %s/s" % t for t in rates))
    # The vocabulary has the key redis-benchmark uses without -r and the
    # values it sends with -d 3 (older versions "xxx", 7.x "VXK"), so the
    # SETs really stored something.
    assert c.cmd("GET", "key:__rand_int__") in ("xxx", "VXK")
    for k, v in (("one", "number"), ("cat", "animal"), ("sphere", "shape")):
        c.cmd("SET", k, v)
    r = run_tool(["redis-benchmark", "-p", p, "-n", "2000", "-c", "10", "-q", "QUERY",
                  "rhombus"], timeout=300)
    assert r.returncode == 0 and "requests per second" in r.stdout, r
    print("     redis-benchmark:", r.stdout.strip().splitlines()[-1][:100])
    info = c.cmd("INFO", "latency")
    assert int(re.search(r"query_count:(\d+)", info).group(1)) >= 2000
    c.cmd("FLUSHALL")
    c.close()


# ---------------------------------------------------------------------------
# basic: more daemons.


@test("basic")
def test_maxclients(env):
    conf = os.path.join(env.workdir, "max.conf")
    with open(conf, "w") as f:
        f.write("# two clients at most\nmaxclients 2\n")
    d = Daemon(env.workdir, env.vectors, ("--config", conf, "--workers", "1"), name="max")
    try:
        a, b = d.client(), d.client()
        assert a.cmd("PING") == "PONG" and b.cmd("PING") == "PONG"
        c = d.client()
        assert is_err(c.read(), "max number of clients reached")
        assert c.at_eof()
        c.close()
        b.close()
        deadline = time.monotonic() + 10
        while True:
            c = d.client()
            r = c.cmd("PING")
            if r == "PONG":
                break
            c.close()
            assert time.monotonic() < deadline, "slot not freed"
            time.sleep(0.05)
        info = c.cmd("INFO", "stats")
        assert int(re.search(r"rejected_connections:(\d+)", info).group(1)) >= 1
        c.close()
        a.close()
    finally:
        d.check_clean_exit()


@test("basic")
def test_ipv6_and_several_binds(env):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        print("     (no IPv6 loopback here; IPv6 part skipped)")
        return
    d = Daemon(env.workdir, env.vectors, ("--bind", "127.0.0.1", "--bind", "::1"), name="v6")
    try:
        assert len(d.addresses) == 2, d.addresses
        assert d.addresses[0][0] == "127.0.0.1" and d.addresses[1][0] == "[::1]"
        assert d.addresses[0][1] == d.addresses[1][1], "port 0: one port for all"
        c6 = Client(d.port, host="::1")
        assert c6.cmd("SET", "cat", "animal") == "OK"
        c4 = d.client()
        assert c4.cmd("GET", "cat") == "animal"
        assert len(c6.cmd("QUERY", "dog")) == 5
        c4.close()
        c6.close()
    finally:
        d.check_clean_exit()


@test("basic")
def test_startup_errors(env):
    exe = os.environ["AKV_ATTNKVD"]

    def start(*args):
        return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60)

    r = start("--version")
    assert r.returncode == 0 and r.stdout.startswith("attnkvd "), r
    r = start("--help")
    assert r.returncode == 0 and "--test-config" in r.stdout, r
    r = start("--bogus")
    assert r.returncode == 2, r
    r = start("--vectors", env.vectors, "--port", "99999", "--test-config")
    assert r.returncode != 0 and "--port" in r.stderr and "99999" in r.stderr, r
    r = start("--vectors", env.vectors, "--loglevel", "loud", "--test-config")
    assert r.returncode != 0 and "loud" in r.stderr, r
    r = start("--vectors", env.vectors, "--workers", "-1", "--test-config")
    assert r.returncode != 0 and "--workers" in r.stderr, r
    r = start("--vectors", env.vectors, "--bind", "example.com", "--test-config")
    assert r.returncode != 0 and "--bind" in r.stderr, r
    bad = os.path.join(env.workdir, "bad.conf")
    with open(bad, "w") as f:
        f.write("# comment\nport 7000\nmaxclients lots\n")
    r = start("--config", bad, "--vectors", env.vectors)
    assert r.returncode != 0 and bad + ":3:" in r.stderr, r
    r = start("--config", os.path.join(env.workdir, "missing.conf"))
    assert r.returncode != 0 and "missing.conf" in r.stderr, r
    missing = os.path.join(env.workdir, "nope.akv")
    r = start("--vectors", missing, "--port", "0")
    assert r.returncode == 1 and "scripts/fetch-vectors" in r.stderr and missing in r.stderr, r
    r = start("--vectors", missing, "--test-config")
    assert r.returncode == 1, r
    notvocab = os.path.join(env.workdir, "synth.txt")
    r = start("--vectors", notvocab, "--test-config")
    assert r.returncode == 1 and "synth.txt" in r.stderr, r
    good = os.path.join(env.workdir, "good.conf")
    with open(good, "w") as f:
        f.write("port 0\nworkers 1\nvectors %s\n" % env.vectors)
    r = start("--config", good, "--test-config")
    assert r.returncode == 0 and "configuration OK" in r.stdout, r
    # A port already taken.
    r = start("--vectors", env.vectors, "--port", str(env.daemon.port))
    assert r.returncode == 1 and "cannot listen" in r.stderr, r
    # Flags override the file.
    d = Daemon(env.workdir, env.vectors, ("--config", good, "--workers", "3"), name="override")
    try:
        c = d.client()
        assert c.cmd("CONFIG", "GET", "workers") == ["workers", "3"]
        assert "workers:3" in c.cmd("INFO", "server")
        c.close()
    finally:
        d.check_clean_exit()


@test("basic")
def test_sigterm_finishes_inflight_work(env):
    """SIGTERM while queries run: every request already received is answered,
    then the connections close and the daemon exits 0."""
    d = Daemon(env.workdir, env.big_vectors(), ("--workers", "1"), name="sigterm")
    try:
        setup = d.client()
        for i in range(50):
            setup.cmd("SET", "w%06d" % i, "w%06d" % (i + 1000))
        setup.close()
        clients = [d.client() for _ in range(4)]
        n = 60
        for c in clients:
            c.send(b"".join(Client.encode("QUERY", "w%06d w%06d" % (i, i + 7), "COUNT", 20)
                            for i in range(n)))
        # One reply proves the daemon has read (at least the start of) the
        # batch; the rest is still running on the single worker.
        first = clients[0].read()
        assert isinstance(first, list) and len(first) == 20
        d.send_signal(signal.SIGTERM)
        counts = []
        for j, c in enumerate(clients):
            got = 1 if j == 0 else 0
            try:
                while True:
                    r = c.read()
                    assert isinstance(r, list) and len(r) == 20, r
                    got += 1
            except (Closed, ConnectionResetError):
                pass
            counts.append(got)
            c.close()
        rc = d.stop()
        t = d.text()
        assert rc == 0, "exit status %d:\n%s" % (rc, t[-3000:])
        m = re.search(r"shutting down: (\d+) clients, (\d+) jobs in flight", t)
        assert m, t[-3000:]
        assert counts == [n] * len(clients), (counts, m.group(0))
        assert int(m.group(2)) >= 1, "no job was in flight: " + m.group(0)
        assert "bye" in t.splitlines()[-1]
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


@test("basic")
def test_second_signal_closes_at_once(env):
    """A client that never reads keeps a draining daemon waiting (up to the
    grace period); a second SIGTERM closes it at once, still exit 0."""
    d = Daemon(env.workdir, env.big_vectors(), ("--workers", "1"), name="sigterm2")
    try:
        c = d.client()
        c.cmd("SET", "w000001", "w000002")
        c.send(b"".join(Client.encode("QUERY", "w%06d" % i, "COUNT", 1000, "WITHSCORES")
                        for i in range(400)))
        time.sleep(0.3)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        d.proc.send_signal(signal.SIGTERM)
        rc = d.proc.wait(timeout=60)
        took = time.monotonic() - t0
        d.log.close()
        t = d.text()
        assert rc == 0, "exit status %d:\n%s" % (rc, t[-3000:])
        assert took < 8, took
        c.close()
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


# ---------------------------------------------------------------------------
# concurrency.


@test("concurrency")
def test_50_clients(env):
    vocab = set(env.words)
    nthreads, rounds = 50, 12
    errors = []
    barrier = threading.Barrier(nthreads)

    def worker(t):
        try:
            rnd = random.Random(t)
            c = env.daemon.client()
            barrier.wait(timeout=60)
            for i in range(rounds):
                key = "w%04d w%04d" % (t, 100 + i)
                val = rnd.choice(env.words[5:])
                assert c.cmd("SET", key, val) == "OK"
                assert c.cmd("GET", key) == val
                # This client's write was acknowledged: its query must see it.
                got = c.cmd("EXPLAIN", key, "COUNT", 1000)
                assert isinstance(got, list) and key in [g[0] for g in got], (key, got[:3])
                for g in got:
                    assert len(g) == 3 and 0.0 <= float(g[2]) <= 1.0
                r = c.cmd("QUERY", rnd.choice(env.words[5:]), "WITHSCORES")
                assert isinstance(r, list) and len(r) == 10, r
                assert all(w in vocab for w in r[0::2]), r
                # Pipelined: a slow command between two fast ones.
                c.send(Client.encode("PING") + Client.encode("QUERY", "cat", "COUNT", 3) +
                       Client.encode("ECHO", str(i)))
                assert c.read() == "PONG"
                q = c.read()
                assert isinstance(q, list) and len(q) == 3, q
                assert c.read() == str(i)
                if i % 3 == 0:
                    assert c.cmd("DEL", key) == 1
                    assert c.cmd("EXISTS", key) == 0
            assert c.cmd("QUIT") == "OK"
            c.close()
        except Exception:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
        assert not th.is_alive(), "client thread hung"
    assert not errors, errors[0]
    c = env.daemon.client()
    # Two thirds of the keys (i % 3 != 0) remain.
    assert c.cmd("DBSIZE") == nthreads * (rounds - (rounds + 2) // 3)
    c.cmd("FLUSHALL")
    c.close()


@test("concurrency")
def test_disconnect_mid_query(env):
    c = env.daemon.client()
    for k, v in (("cat", "animal"), ("one", "number"), ("ball", "toy")):
        c.cmd("SET", k, v)
    for i in range(100):
        x = env.daemon.client()
        x.send(b"".join(Client.encode("QUERY", "dog", "COUNT", 1000) for _ in range(20)))
        if i % 2:
            x.reset()  # RST: the daemon sees a read error
        else:
            x.close()  # FIN: a half-close; the replies then meet a closed socket
    assert c.cmd("PING") == "PONG"
    deadline = time.monotonic() + 60
    while True:
        info = c.cmd("INFO")
        jobs = int(re.search(r"jobs_in_flight:(\d+)", info).group(1))
        clients = int(re.search(r"connected_clients:(\d+)", info).group(1))
        if jobs == 0 and clients == 1:
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.05)
    assert len(c.cmd("QUERY", "dog")) == 5
    c.cmd("FLUSHALL")
    c.close()


@test("concurrency")
def test_slow_reader(env):
    """A client that does not read its replies is throttled (the daemon stops
    taking its requests once its output backs up), and others are served
    meanwhile; its replies then all arrive, in order."""
    c = env.daemon.client()
    c.cmd("SET", "cat", "animal")
    slow = env.daemon.client()
    # About 20 MB of replies: more than the socket buffers hold, so the
    # daemon's output backs up past its pause threshold.
    n = 600
    slow.send(b"".join(Client.encode("QUERY", "w%04d" % i, "COUNT", 1000, "WITHSCORES")
                       for i in range(n)))
    time.sleep(0.5)
    assert c.cmd("PING") == "PONG"
    assert len(c.cmd("QUERY", "cat")) == 5
    for i in range(n):
        r = slow.read()
        assert isinstance(r, list) and len(r) == 2000, r
    assert slow.cmd("PING") == "PONG"
    slow.close()
    c.cmd("FLUSHALL")
    c.close()


# ---------------------------------------------------------------------------
# realvec: the README example on GloVe 6B 100d.

EXAMPLE = {"one": "number", "cat": "animal", "dog": "animal", "ball": "toy", "sphere": "shape",
           "male": "gender"}
EXPECTED = {
    "female": ["gender", "ethnicity", "orientation", "racial", "mainstreaming"],
    "seven": ["number", "numbers", "only", "addition", "ten"],
    "seventy": ["number", "numbers", "only", "addition", "one"],
    "rhombus": ["shape", "shaped", "shapes", "rather", "structure"],
    "parabola": ["shape", "shaped", "shapes", "structure", "rather"],
    "cylinder": ["shape", "same", "example", "instance", "though"],
}


@test("realvec")
def test_readme_example(env):
    c = env.daemon.client()
    info = c.cmd("INFO", "vectors")
    assert "vector_dim:100" in info, info
    c.cmd("FLUSHALL")
    for k, v in EXAMPLE.items():
        assert c.cmd("SET", k, v) == "OK"
    for q, want in EXPECTED.items():
        got = c.cmd("QUERY", q)
        assert got == want, (q, got, want)
    # The same through redis-cli, as the README shows it.
    if shutil.which("redis-cli"):
        r = run_tool(["redis-cli", "-p", str(env.daemon.port), "QUERY", "rhombus"])
        assert r.stdout.split() == EXPECTED["rhombus"], r
    got = c.cmd("EXPLAIN", "female", "COUNT", 1)
    assert got[0][0] == "male" and got[0][1] == "gender", got
    assert c.cmd("NEIGHBORS", "king", "COUNT", 3)[0] == "king"
    r = c.cmd("SET", "rhombuss", "shape")
    assert is_err(r, "unknown word 'rhombuss' (did you mean 'rhombus'?)"), r
    c.cmd("FLUSHALL")
    c.close()


def main(argv):
    suite, only = "basic", None
    i = 1
    while i < len(argv):
        if argv[i] == "--suite":
            suite = argv[i + 1]
            i += 2
        elif argv[i] == "-k":
            only = argv[i + 1]
            i += 2
        else:
            print(__doc__)
            return 2
    if "AKV_ATTNKVD" not in os.environ:
        print("AKV_ATTNKVD must name the attnkvd binary")
        return 2
    return run(suite, only)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
