#!/usr/bin/env python3
"""daemon-fget: payload values (SET ... PAYLOAD) and FGET, over TCP.

Payload values byte-exact through GET, FGET, EXPLAIN, restarts, kill -9 and
rewrites; the SET options and the writes that keep or drop the kind;
max-value-len and maxmemory; QUERY's blend renormalised over the embedded
values and FGET's sums against a float64 reference; attnkv-check-aof.
On the default vectors (skipped without them): the README store's FGET
answers and a semantic cache.

Run alone: meson test -C build daemon-fget, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_fget.py [-k NAME]
(environment: see akvtest.py).
"""

import contextlib
import math
import struct
import os
import socket
import sys
import time

import akvtest
from akvtest import Client, info_fields, is_err, run_tool

BIN = "{\"answer\":\x00 42}\r\n\xff\xfe end"  # NUL, CR LF, bytes that are not UTF-8


def raw(s):
    """The bytes of a bulk string as akvtest.Client decodes them."""
    return s.encode(errors="surrogateescape")


def arg(b):
    return b if isinstance(b, bytes) else raw(b)


def cmd(c, *args):
    return c.cmd(*[arg(a) if isinstance(a, str) else a for a in args])


def check_tool():
    return os.environ.get("AKV_CHECK_AOF") or os.path.join(
        os.environ.get("AKV_BUILD_ROOT", "."), "tools", "attnkv-check-aof")


# ---------------------------------------------------------------------------
# A float64 reference for the synthetic vocabulary: the softmax over every
# key, the blend over the embedded values alone, FGET's sums per value.


def ref_weights(ref, entries, text, attn="dot", tau=0.1):
    q = ref.embed(text)
    if attn == "dot":
        s = [ref.dot(ref.embed(k), q) for k, _, _ in entries]
    else:
        s = [ref.cos(ref.embed(k), q) / tau for k, _, _ in entries]
    m = max(s)
    e = [math.exp(x - m) for x in s]
    z = sum(e)
    return [x / z for x in e]


def ref_query(ref, entries, text, k=5, metric="l2"):
    w = ref_weights(ref, entries, text)
    emb = [(v, x) for (_, v, p), x in zip(entries, w) if not p]
    if not emb:
        return []
    tot = sum(x for _, x in emb)
    r = [0.0] * len(ref.vecs[ref.words[0]])
    for v, x in emb:
        r = [a + x / tot * b for a, b in zip(r, ref.embed(v))]
    return ref.rank(r, metric, k)


def ref_fget(ref, entries, text, k=5, minweight=0.0, attn="dot", tau=0.1):
    w = ref_weights(ref, entries, text, attn, tau)
    sums = {}
    for (_, v, _), x in zip(entries, w):
        sums[raw(v)] = sums.get(raw(v), 0.0) + x
    out = sorted(sums.items(), key=lambda t: (-t[1], t[0]))
    return [(v, x) for v, x in out if x >= minweight][:k]


def resp3_bytes(env, *cmds):
    """The raw replies to HELLO 3, cmds and a closing PING, on a connection
    of its own."""
    s = socket.create_connection(("127.0.0.1", env.daemon.port), timeout=10)
    s.sendall(b"".join(Client.encode(*a) for a in (("HELLO", "3"),) + cmds + (("PING",),)))
    buf = b""
    while not buf.endswith(b"+PONG\r\n"):
        chunk = s.recv(65536)
        assert chunk
        buf += chunk
    s.close()
    return buf


def pairs(flat):
    return [(raw(flat[i]), float(flat[i + 1])) for i in range(0, len(flat), 2)]


# ---------------------------------------------------------------------------


@akvtest.test("fget")
def test_payload_set_get_and_kinds(env):
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    # Without PAYLOAD the value must embed; with it, any bytes.
    assert is_err(cmd(c, "SET", "cat", BIN), "")
    assert cmd(c, "SET", "cat", BIN, "PAYLOAD") == "OK"
    assert raw(c.cmd("GET", "cat")) == raw(BIN)
    assert c.cmd("STRLEN", "cat") == len(raw(BIN))
    assert c.cmd("TYPE", "cat") == "string"
    assert c.cmd("OBJECT", "ENCODING", "cat") == "payload"
    assert c.cmd("SET", "dog", "", "PAYLOAD") == "OK"  # an empty payload
    assert c.cmd("GET", "dog") == ""
    # The key must still embed.
    assert is_err(c.cmd("SET", "nosuchwordhere", "x", "PAYLOAD"), "unknown word")
    # With the other options, in any order.
    assert cmd(c, "SET", "cat", "animal", "PAYLOAD", "GET") == BIN
    assert c.cmd("OBJECT", "ENCODING", "cat") == "payload"
    assert c.cmd("SET", "cat", "x1", "NX", "PAYLOAD") is None
    assert c.cmd("SET", "ball", "x1", "XX", "PAYLOAD") is None
    assert c.cmd("EXISTS", "ball") == 0
    assert c.cmd("SET", "cat", "x2", "PAYLOAD", "XX", "EX", "100") == "OK"
    assert 0 < c.cmd("TTL", "cat") <= 100
    assert c.cmd("SET", "cat", "x3", "KEEPTTL", "PAYLOAD") == "OK"
    assert 0 < c.cmd("TTL", "cat") <= 100 and c.cmd("GET", "cat") == "x3"
    assert is_err(c.cmd("SET", "cat", "x", "PAYLOAD", "NX", "XX"), "syntax")
    # A plain SET makes it embedded again, and back.
    assert c.cmd("SET", "cat", "animal") == "OK"
    assert c.cmd("OBJECT", "ENCODING", "cat") == "embstr"
    assert c.cmd("SET", "cat", "animal", "PAYLOAD") == "OK"
    assert c.cmd("OBJECT", "ENCODING", "cat") == "payload"
    # Writes that carry the value along keep its kind.
    assert c.cmd("EXPIRE", "cat", 500) == 1
    assert c.cmd("OBJECT", "ENCODING", "cat") == "payload"
    assert c.cmd("PERSIST", "cat") == 1
    assert c.cmd("COPY", "cat", "one") == 1
    assert c.cmd("OBJECT", "ENCODING", "one") == "payload"
    assert c.cmd("RENAME", "one", "sphere") == "OK"
    assert c.cmd("OBJECT", "ENCODING", "sphere") == "payload"
    assert c.cmd("MOVE", "sphere", 1) == 1
    c.cmd("SELECT", 1)
    assert c.cmd("OBJECT", "ENCODING", "sphere") == "payload"
    c.cmd("SELECT", 0)
    assert c.cmd("GETEX", "cat", "EX", 100) == "animal"
    assert c.cmd("OBJECT", "ENCODING", "cat") == "payload"
    # The others store embedded values.
    assert c.cmd("GETSET", "cat", "animal") == "animal"
    assert c.cmd("OBJECT", "ENCODING", "cat") == "embstr"
    assert is_err(cmd(c, "MSET", "cat", BIN), "")
    # MEMORY USAGE counts the payload's bytes.
    assert cmd(c, "SET", "male", "x" * 4000, "PAYLOAD") == "OK"
    assert c.cmd("MEMORY", "USAGE", "male") >= 4000
    # COMMAND DOCS knows the option and FGET.
    docs = c.cmd("COMMAND", "DOCS", "FGET")
    assert docs[0] == "fget", docs
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("fget")
def test_fget_against_reference(env):
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    entries = []  # (key, value, payload)
    for i in range(300):
        key = "w%04d w%04d" % (i, (i * 7) % 2000) if i % 5 == 0 else "w%04d" % i
        if i % 3 == 1:
            val, p = ("{\"id\": %d}\r\n\x00" % (i % 9)) if i % 2 else "w%04d" % (i % 6), True
        else:
            val, p = "w%04d" % (i % 6), False
        assert cmd(c, "SET", key, val, *(["PAYLOAD"] if p else [])) == "OK"
        entries.append((key, val, p))
    for t, text in enumerate(["w0003", "w0010 w0200", "w0151", "cat dog", "w1999"]):
        for k in (1, 5, 40):
            got = pairs(c.cmd("FGET", text, "COUNT", k, "WITHSCORES"))
            want = ref_fget(env.ref, entries, text, k)
            assert [v for v, _ in got] == [v for v, _ in want], (text, k, got, want)
            for (_, a), (_, b) in zip(got, want):
                # The daemon's query vector is a float: weights agree to
                # about 1e-8.
                assert abs(a - b) <= 1e-7, (text, a, b)
            plain = c.cmd("FGET", text, "COUNT", k)
            assert [raw(v) for v in plain] == [v for v, _ in got]
        mw = 0.02
        got = pairs(c.cmd("FGET", text, "COUNT", 100, "WITHSCORES", "MINWEIGHT", str(mw)))
        want = ref_fget(env.ref, entries, text, 100, mw)
        assert [v for v, _ in got] == [v for v, _ in want], (text, got, want)
        got = pairs(c.cmd("FGET", text, "WITHSCORES", "ATTENTION", "cosine", "TEMPERATURE", "0.3"))
        want = ref_fget(env.ref, entries, text, 5, 0.0, "cosine", 0.3)
        assert [v for v, _ in got] == [v for v, _ in want], (text, got, want)
        # QUERY blends the embedded values only, renormalised.
        got = c.cmd("QUERY", text, "WITHSCORES")
        want = ref_query(env.ref, entries, text)
        assert got[0::2] == [w for w, _ in want], (text, got, want)
    # EXPLAIN WITHBLEND: the weight over all, the blend weight, the kind.
    ex = c.cmd("EXPLAIN", "w0001", "COUNT", 300, "WITHBLEND")
    w = ref_weights(env.ref, entries, "w0001")
    emb = sum(x for (_, _, p), x in zip(entries, w) if not p)
    byk = {k: (v, p, x) for (k, v, p), x in zip(entries, w)}
    assert len(ex) == 300
    for key, val, weight, blend, kind in ex:
        v, p, x = byk[key]
        assert raw(val) == raw(v) and kind == ("payload" if p else "embedded")
        assert abs(float(weight) - x) <= 1e-7
        assert abs(float(blend) - (0 if p else x / emb)) <= 1e-7
    # Errors: COUNT bounds as QUERY's, MINWEIGHT in [0, 1], unknown options.
    assert is_err(c.cmd("FGET", "w0001", "COUNT", 0), "COUNT must be an integer between 1 and 1000")
    assert is_err(c.cmd("FGET", "w0001", "COUNT", 1001), "between 1 and 1000")
    assert is_err(c.cmd("FGET", "w0001", "MINWEIGHT", "-0.1"), "MINWEIGHT must be")
    assert is_err(c.cmd("FGET", "w0001", "MINWEIGHT", "nan"), "MINWEIGHT must be")
    assert is_err(c.cmd("FGET", "w0001", "METRIC", "l2"), "unknown option 'METRIC' for FGET")
    assert is_err(c.cmd("FGET", "nosuchword"), "unknown word")
    assert is_err(c.cmd("FGET"), "wrong number of arguments")
    # An empty store, and one of payloads only: QUERY answers nothing,
    # FGET the payloads.
    c.cmd("SELECT", 2)
    c.cmd("FLUSHDB")
    assert c.cmd("FGET", "cat") == [] and c.cmd("QUERY", "cat") == []
    cmd(c, "SET", "cat", BIN, "PAYLOAD")
    cmd(c, "SET", "dog", BIN, "PAYLOAD")
    cmd(c, "SET", "ball", "toy box", "PAYLOAD")
    assert c.cmd("QUERY", "cat") == []
    got = pairs(c.cmd("FGET", "cat", "WITHSCORES"))
    assert sorted(v for v, _ in got) == sorted([raw(BIN), b"toy box"])
    assert abs(sum(x for _, x in got) - 1) < 1e-12
    c.cmd("FLUSHDB")
    c.cmd("SELECT", 0)
    # RESP3: [value, score] pairs with the score a double.
    buf = resp3_bytes(env, ("SET", "cat", "animal"), ("FGET", "cat", "COUNT", 1, "WITHSCORES"))
    tail = buf[buf.index(b"+OK\r\n") + 5:]
    assert tail.startswith(b"*1\r\n*2\r\n$"), tail
    assert b"\r\n," in tail, tail
    # EXPLAIN WITHBLEND in RESP3: a map of five fields per entry.
    buf = resp3_bytes(env, ("EXPLAIN", "cat", "COUNT", 1, "WITHBLEND"))
    tail = buf[buf.rindex(b"*1\r\n%"):]
    assert tail.startswith(b"*1\r\n%5\r\n$3\r\nkey\r\n"), tail
    for field in (b"value", b"weight", b"blend", b"kind"):
        assert b"\r\n" + field + b"\r\n" in tail, (field, tail)
    assert tail.endswith(b"$8\r\nembedded\r\n+PONG\r\n"), tail
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("fget")
def test_limits(env):
    d = env.configured_daemon("limits", "max-value-len 1000\n", ("--workers", "1"))
    c = d.client()
    assert cmd(c, "SET", "cat", "x" * 1000, "PAYLOAD") == "OK"
    assert is_err(cmd(c, "SET", "cat", "x" * 1001, "PAYLOAD"),
                  "value is too long (1001 bytes; max-value-len is 1000)")
    assert c.cmd("CONFIG", "SET", "max-value-len", "1048576") == "OK"
    assert is_err(c.cmd("CONFIG", "SET", "max-value-len", "1048577"), "")
    big = "y" * (1 << 20)
    assert cmd(c, "SET", "dog", big, "PAYLOAD") == "OK"
    assert c.cmd("STRLEN", "dog") == 1 << 20
    # Payloads count against maxmemory: a limit just above what is used
    # now refuses writes once a few more payloads are in.
    used = int(info_fields(c, "memory")["used_memory"])
    assert c.cmd("CONFIG", "SET", "maxmemory", str(used + 3 * (1 << 20))) == "OK"
    # A reply that would exceed the hard output limit is refused whole.
    assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 1500kb 0 0") == "OK"
    assert cmd(c, "SET", "cat", "z" * (1 << 20), "PAYLOAD") == "OK"
    assert len(c.cmd("FGET", "dog", "COUNT", 1)) == 1
    r = c.cmd("FGET", "dog", "COUNT", 2)
    assert is_err(r, "FGET reply would hold about 2097600 bytes, over the output limit"), \
        str(r)[:200]
    assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0") == "OK"
    assert len(c.cmd("FGET", "dog", "COUNT", 2)) == 2
    assert c.cmd("DEL", "cat") == 1
    refused = None
    for i in range(10):
        r = cmd(c, "SET", "w%04d" % i, big, "PAYLOAD")
        if is_err(r, "OOM"):
            refused = i
            break
    assert refused is not None and 2 <= refused <= 5, refused
    c.close()
    d.check_clean_exit()


@akvtest.test("fget")
def test_fget_reply_limit_counts_framing(env):
    # Two payloads of 1 MiB under a hard output limit of exactly 2 MiB: the
    # values alone fit, the reply with its framing does not. That is an
    # error reply on a connection that stays open, not a closed one.
    conf = "max-value-len 1048576\nclient-output-buffer-limit normal 2097152 0 0\n"
    d = env.configured_daemon("fget-framing", conf)
    c = d.client()
    for k, b in (("cat", "p"), ("dog", "q")):
        assert cmd(c, "SET", k, b * (1 << 20), "PAYLOAD") == "OK"
    for args in (("FGET", "cat", "COUNT", 2), ("FGET", "cat", "COUNT", 2, "WITHSCORES"),
                 ("EXPLAIN", "cat", "COUNT", 2), ("EXPLAIN", "cat", "COUNT", 2, "WITHBLEND")):
        r = c.cmd(*args)
        assert is_err(r, "%s reply would hold about" % args[0]), str(r)[:200]
        assert c.cmd("PING") == "PONG"
    assert len(c.cmd("FGET", "cat", "COUNT", 1)) == 1
    assert len(c.cmd("EXPLAIN", "cat", "COUNT", 1)) == 1
    # Each refusal is a failed call with an -ERR reply, as Redis counts them.
    stats = info_fields(c, "commandstats")
    assert "failed_calls=2" in stats["cmdstat_fget"], stats["cmdstat_fget"]
    assert "failed_calls=2" in stats["cmdstat_explain"], stats["cmdstat_explain"]
    # UNKNOWN skip's words count in the bound too (and are read within their lengths).
    r = c.cmd("FGET", "cat zzqqxxj", "COUNT", 2, "UNKNOWN", "skip")
    assert is_err(r, "FGET reply would hold about"), str(r)[:200]
    c.close()
    d.check_clean_exit()


@akvtest.test("fget")
def test_fget_large_reply_stall(env):
    # An FGET or EXPLAIN reply of 96 payloads of 1 MiB (96 MiB, under no
    # output limit) is copied on a worker; the loop thread only hands it
    # over, so other clients are not held up (the stall rule).
    from test_hostile import Stall
    conf = ("max-value-len 1048576\nproto-max-bulk-len 1gb\n"
            "client-output-buffer-limit normal 0 0 0\n")
    d = env.configured_daemon("fget-stall", conf, ("--workers", "2"))
    c = d.client(timeout=300)
    big = bytes(range(256)) * (1 << 12)
    keys = env.words[10:106]
    timed = not akvtest.daemon_is_instrumented()
    # A SET of the largest payload is stored and logged on the loop thread
    # (max-value-len stops at 1 MiB for that reason).
    with (Stall(d, "SET of 96 payloads of 1 MiB") if timed else contextlib.nullcontext()):
        for i, k in enumerate(keys):
            assert c.cmd("SET", k, big[:-1] + bytes([i]), "PAYLOAD") == "OK"
    # Under a sanitizer, freeing and copying 96 MiB alone takes longer
    # than the rule allows: the replies are checked, not the time.
    for name in ("FGET", "FGET", "EXPLAIN"):
        if timed:
            with Stall(d, "%s of 96 payloads of 1 MiB" % name):
                r = c.cmd(name, keys[0], "COUNT", len(keys))
        else:
            r = c.cmd(name, keys[0], "COUNT", len(keys))
        values = r if name == "FGET" else [e[1] for e in r]
        assert len(values) == len(keys) and all(len(v) == len(big) for v in values)
    c.close()
    d.check_clean_exit()


@akvtest.test("fget")
def test_fget_scratch_in_used_memory(env):
    # The buffers a worker keeps between FGETs are a gauge of INFO memory
    # and part of used_memory; they do not grow with repeated FGETs.
    d = env.configured_daemon("fget-scratch", "", ("--workers", "1"))
    c = d.client()
    assert int(info_fields(c, "memory")["used_memory_query_scratch"]) == 0
    words = env.words[5:205]
    n = 0
    c.send(b"".join(Client.encode("SET", a + " " + b, "v%d" % (i % 7), "PAYLOAD")
                    for i, (a, b) in enumerate((a, b) for a in words for b in words[:100])))
    for _ in range(len(words) * 100):
        assert c.read() == "OK"
        n += 1
    mem = []
    for _ in range(3):
        assert len(c.cmd("FGET", words[0], "COUNT", 3)) == 3
        f = info_fields(c, "memory")
        mem.append(int(f["used_memory_query_scratch"]))
        assert int(f["used_memory"]) >= int(f["used_memory_store"]) + mem[-1], f
    # Scores (16 bytes an entry), groups and a table at most half full.
    print("     %d entries: %d bytes kept" % (n, mem[0]))
    assert n * 16 <= mem[0] <= 64 << 20 and mem[0] == mem[1] == mem[2], (n, mem)
    c.close()
    d.check_clean_exit()


@akvtest.test("fget")
def test_persistence_restart_kill_rewrite(env):
    conf = "appendfsync always\n"
    d = env.configured_daemon("persist", conf, ("--workers", "1"))
    c = d.client()
    want = {"cat": (BIN, True), "dog": ("animal", False), "ball": ("", True),
            "sphere": ("\r\n*1\r\n$3\r\nDEL\r\n", True)}
    for k, (v, p) in want.items():
        assert cmd(c, "SET", k, v, *(["PAYLOAD"] if p else [])) == "OK"
    assert cmd(c, "SET", "one", BIN, "PAYLOAD", "PX", "100000") == "OK"
    assert c.cmd("SET", "male", "gender", "PAYLOAD") == "OK"
    assert c.cmd("SET", "male", "gender") == "OK"  # embedded again
    want["male"] = ("gender", False)
    want["one"] = (BIN, True)
    c.cmd("MULTI")
    cmd(c, "SET", "female", BIN, "PAYLOAD")
    c.cmd("COPY", "cat", "seven")
    assert len(c.cmd("EXEC")) == 2
    want["female"] = want["seven"] = (BIN, True)
    fget0 = c.cmd("FGET", "cat", "COUNT", 10, "WITHSCORES")

    def check(daemon):
        cc = daemon.client()
        for k, (v, p) in want.items():
            assert raw(cc.cmd("GET", k)) == raw(v), (k, cc.cmd("GET", k))
            assert (cc.cmd("OBJECT", "ENCODING", k) == "payload") == p, k
        assert 0 < cc.cmd("PTTL", "one") <= 100000
        assert cc.cmd("FGET", "cat", "COUNT", 10, "WITHSCORES") == fget0
        cc.close()

    # kill -9 with everything acknowledged under appendfsync always.
    d.proc.kill()
    d.proc.wait(timeout=30)
    d.log.close()
    r = run_tool([check_tool(), d.aof])
    assert r.returncode == 0 and "PAYLOAD" in r.stdout, r.stdout + r.stderr
    d2 = env.configured_daemon("persist2", conf, ("--workers", "1"), datadir=d.datadir)
    check(d2)
    # A rewrite keeps the kinds; then a clean restart.
    c = d2.client()
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    deadline = time.monotonic() + 30
    while info_fields(c, "persistence")["aof_rewrites"] != "1":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c.close()
    d2.check_clean_exit()
    r = run_tool([check_tool(), d.aof])
    # The rewrite's snapshot preamble holds them (aof-use-rdb-preamble).
    assert r.returncode == 0 and "(6 payloads, 1 with an expiry time)" in r.stdout, \
        r.stdout + r.stderr
    d3 = env.configured_daemon("persist3", conf, ("--workers", "1"), datadir=d.datadir)
    check(d3)
    d3.check_clean_exit()


# ---------------------------------------------------------------------------
# On the default vectors.

EXAMPLE = {"one": "number", "cat": "animal", "dog": "animal", "ball": "toy", "sphere": "shape",
           "male": "gender"}


@akvtest.test("fget")
def test_realvec_example_and_semantic_cache(env):
    path = akvtest.real_vectors_path()
    if not path:
        if os.environ.get("AKV_REQUIRE_VECTORS") == "1":
            raise AssertionError("AKV_REQUIRE_VECTORS=1 but the default vectors are missing")
        raise akvtest.Skip("default vectors not found")
    d = akvtest.Daemon(env.workdir, path, ("--workers", "2"), name="realvec")
    c = d.client()
    for k, v in EXAMPLE.items():
        assert c.cmd("SET", k, v) == "OK"
    got = c.cmd("FGET", "kitten")
    assert got[0] == "animal", got
    assert c.cmd("FGET", "rhombus", "COUNT", 1) == ["shape"]
    # animal is held twice: cat and dog both pull.
    sc = c.cmd("FGET", "kitten", "WITHSCORES")
    ex = c.cmd("EXPLAIN", "kitten", "COUNT", 6)
    animal = sum(float(w) for k, v, w in ex if v == "animal")
    assert abs(float(sc[1]) - animal) < 1e-12, (sc, ex)
    # A semantic cache: an answer stored under a short phrase.
    answer = "{\"recipe\": \"kibble\", \"lang\": \"fr\", \"text\": \"croquettes\\n\"}"
    assert c.cmd("SET", "dog food", answer, "PAYLOAD") == "OK"
    assert c.cmd("SET", "car insurance", "{\"id\": 17}", "PAYLOAD") == "OK"
    assert c.cmd("FGET", "puppy food", "COUNT", 1) == [answer]
    assert c.cmd("FGET", "auto insurance", "COUNT", 1) == ["{\"id\": 17}"]
    # QUERY still answers words: payloads are not blended.
    q = c.cmd("QUERY", "puppy food")
    assert q and all(" " not in w and "{" not in w for w in q), q
    ex = c.cmd("EXPLAIN", "puppy food", "COUNT", 2, "WITHBLEND")
    assert ex[0][0] == "dog food" and ex[0][4] == "payload" and float(ex[0][3]) == 0, ex
    assert ex[1][4] == "embedded" and float(ex[1][3]) > float(ex[1][2]), ex
    # The query vector is built as QUERY's: a vector in gives the same
    # answer as its text, arithmetic moves it, UNKNOWN skip drops words.
    c.cmd("SET", "queen", "royalty")
    c.cmd("SET", "man", "person")
    blob = raw(c.cmd("EMBED", "kitten", "RAW"))
    want = c.cmd("FGET", "kitten", "WITHSCORES", "COUNT", 3)
    assert c.cmd("FGET", "VECTOR", "FP32", blob, "WITHSCORES", "COUNT", 3) == want
    vals = [str(v) for v in struct.unpack("<%df" % (len(blob) // 4), blob)]
    assert c.cmd("FGET", "VECTOR", "VALUES", len(vals), *vals, "WITHSCORES", "COUNT", 3) == want
    assert c.cmd("FGET", "kitten zzqqxxj", "UNKNOWN", "skip", "WITHSCORES", "COUNT", 3) == \
        want + [["skipped", ["zzqqxxj"]]]
    # 3CosAdd: king/|king| + woman/|woman| - man/|man|, scaled to length 1.
    rows = {}
    for w in ("king", "woman", "man"):
        b = raw(c.cmd("EMBED", w, "RAW"))
        rows[w] = struct.unpack("<%df" % (len(b) // 4), b)
    norm = {w: math.sqrt(sum(x * x for x in r)) for w, r in rows.items()}
    v = [rows["king"][i] / norm["king"] + rows["woman"][i] / norm["woman"] -
         rows["man"][i] / norm["man"] for i in range(len(rows["king"]))]
    n = math.sqrt(sum(x * x for x in v))
    v = [repr(x / n) for x in v]
    arith = pairs(c.cmd("FGET", "king", "POSITIVE", "woman", "NEGATIVE", "man", "WITHSCORES",
                        "COUNT", 3))
    byvec = pairs(c.cmd("FGET", "VECTOR", "VALUES", len(v), *v, "WITHSCORES", "COUNT", 3))
    plain = pairs(c.cmd("FGET", "king", "WITHSCORES", "COUNT", 3))
    assert [x[0] for x in arith] == [x[0] for x in byvec], (arith, byvec)
    assert all(math.isclose(float(a[1]), float(b[1]), rel_tol=1e-5) for a, b in zip(arith, byvec))
    assert abs(float(arith[0][1]) - float(plain[0][1])) > 1e-3, (arith, plain)
    assert is_err(c.cmd("FGET", "kitten", "RESTRICT", 10), "unknown option"), "FGET ranks no words"
    c.close()
    d.check_clean_exit()


if __name__ == "__main__":
    sys.exit(akvtest.main("fget"))
