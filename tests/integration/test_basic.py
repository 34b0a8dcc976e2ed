#!/usr/bin/env python3
"""daemon-basic: attnkvd over real TCP, one daemon shared by the tests.

Every command and its errors, framing, pipelining, redis-cli and
redis-benchmark, start-up errors, the command line (directives as
--options, the configuration file as first argument or on standard input,
over a reload), maxclients, IPv6, shutdown with work in flight. Uses small vocabularies that the test writes itself (GloVe text ->
attnkv-import), so it needs nothing from outside the build.

Run alone: meson test -C build daemon-basic, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_basic.py [-k NAME]
(environment: see akvtest.py).
"""

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import akvtest
from akvtest import Client, Closed, Daemon, info_fields, is_err, parse_info, run_tool

# ---------------------------------------------------------------------------
# Commands.


@akvtest.test("basic")
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


@akvtest.test("basic")
def test_unknown_command(env):
    c = env.daemon.client()
    r = c.cmd("FROB", "x")
    assert is_err(r, "unknown command 'FROB'"), r
    assert c.cmd("PING") == "PONG"
    c.close()


@akvtest.test("basic")
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
    docs = c.cmd("COMMAND", "DOCS")
    assert len(docs) == 2 * n, docs
    get = dict(zip(*[iter(c.cmd("COMMAND", "DOCS", "get")[1])] * 2))
    assert get["group"] == "string" and get["arguments"] == [["name", "key", "type", "key"]], get
    info = c.cmd("COMMAND", "INFO", "get", "nope")
    assert info[0][0] == "get" and info[1] is None
    assert "query" in c.cmd("COMMAND", "LIST")
    assert is_err(c.cmd("COMMAND", "FLY"), "unknown subcommand")
    c.close()


@akvtest.test("basic")
def test_select(env):
    c = env.daemon.client()
    assert c.cmd("SELECT", "0") == "OK"
    assert c.cmd("SELECT", "15") == "OK"
    assert is_err(c.cmd("SELECT", "16"), "out of range")
    assert is_err(c.cmd("SELECT", "-1"), "out of range")
    assert is_err(c.cmd("SELECT", "x"), "not an integer")
    assert is_err(c.cmd("SELECT"), "wrong number")
    c.close()


@akvtest.test("basic")
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
    r = c.cmd("CONFIG", "GET", "MAXC*")
    assert r == ["maxclients", "10000"], r
    r = dict(zip(*[iter(c.cmd("CONFIG", "GET", "m*", "?ort"))] * 2))
    assert set(r) == {"maxclients", "max-key-len", "max-value-len", "maxmemory", "maxkeys",
                      "max-batch-size",
                      "maxmemory-clients", "metric", "port"}, r
    assert c.cmd("CONFIG", "GET", "save") == ["save", ""]
    assert c.cmd("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    assert c.cmd("CONFIG", "GET", "nothing*") == []
    assert is_err(c.cmd("CONFIG", "SET", "port", "1"), "cannot be changed at run time")
    assert is_err(c.cmd("CONFIG", "REWRITE"), "running without a config file")
    assert is_err(c.cmd("CONFIG", "RELOAD"), "running without a config file")
    assert is_err(c.cmd("CONFIG", "NOPE"), "unknown CONFIG subcommand")
    assert is_err(c.cmd("CONFIG", "GET"), "wrong number")
    assert is_err(c.cmd("CONFIG"), "wrong number")
    c.close()


@akvtest.test("basic")
def test_databases_default(env):
    """databases: 16 unless configured, read at start-up only."""
    c = env.daemon.client()
    assert c.cmd("CONFIG", "GET", "databases") == ["databases", "16"]
    assert "databases" in c.cmd("CONFIG", "GET", "*")
    assert is_err(c.cmd("CONFIG", "SET", "databases", "8"), "cannot be changed at run time")
    c.close()


@akvtest.test("basic")
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
    assert is_err(c.cmd("SET", "cat", "dog", "EX"), "syntax error")
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


@akvtest.test("basic")
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


@akvtest.test("basic")
def test_info(env):
    c = env.daemon.client()
    c.cmd("FLUSHALL")
    c.cmd("SET", "cat", "animal")
    c.cmd("QUERY", "dog")
    info = c.cmd("INFO")
    for section in ("# Server", "# Clients", "# Stats", "# Keyspace", "# Vectors", "# Latency"):
        assert section in info, info
    fields = parse_info(info)
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


# Families of INFO fields, one entry in the man page each.
INFO_FAMILIES = (r"db\d+", "cmdstat_", "errorstat_", "latency_percentiles_usec_")


def man_info_section():
    """The INFO section of man/attnkvd.8: (its text, the words of its .TP
    tags), font escapes and quotes dropped, \\- read as -."""
    root = os.environ.get("AKV_SOURCE_ROOT") or os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "man", "attnkvd.8")) as f:
        text = f.read()
    text = text[text.index("\n.SH INFO\n"):]
    text = text[:text.index("\n.SH ", 1)]
    lines = text.split("\n")
    tags = set()
    for prev, line in zip(lines, lines[1:]):
        if prev == ".TP":
            line = re.sub(r"\\f[BIRP]", "", line).replace("\\-", "-")
            tags.update(w for w in re.split(r"[\s,\"]+", re.sub(r"^\.[BIR]+ ", "", line)) if w)
    return text, tags


@akvtest.test("basic")
def test_info_fields_in_man_page(env):
    """Every field INFO everything prints has an entry (a .TP tag) in the
    man page's INFO section; a family (db0, cmdstat_get, ...) one for all."""
    text, tags = man_info_section()
    c = env.daemon.client()
    c.cmd("SET", "cat", "animal")
    c.cmd("QUERY", "cat")
    c.cmd("NOSUCHCOMMAND")
    fields = parse_info(c.cmd("INFO", "everything"))
    c.cmd("FLUSHALL")
    c.close()
    missing = []
    for name in fields:
        family = next((f for f in INFO_FAMILIES if re.match(f, name)), None)
        if family is None:
            if name not in tags:
                missing.append(name)
        elif family.startswith("db"):
            if "db" not in tags:
                missing.append(name)
        elif family not in tags and family not in text:
            missing.append(name)
    assert not missing, "man/attnkvd.8 INFO has no entry for %s" % missing
    for f in INFO_FAMILIES[1:]:
        assert any(n.startswith(f) for n in fields), (f, sorted(fields))



def words_of(reply):
    return reply[0::2]


@akvtest.test("basic")
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


@akvtest.test("basic")
def test_kernels_from_environment(env):
    """AKV_RANK_KERNEL and AKV_ATTN_KERNEL choose the ranking and attention
    kernels, INFO vectors names them, and the portable ones answer exactly
    what the daemon's automatic choice does, scores included."""
    store = {"one": "number", "cat": "animal", "dog": "animal", "ball": "toy",
             "sphere": "shape", "king queen": "hello world", "w0001 w0002 w0003": "w0004",
             "seven": "w0005 w0006"}
    asks = [("QUERY", "female"), ("QUERY", "rhombus", "COUNT", "9", "METRIC", "cosine"),
            ("QUERY", "king w0007", "ATTENTION", "cosine", "TEMPERATURE", "0.3"),
            ("QUERY", "seven", "METRIC", "dot", "COUNT", "20"),
            ("NEIGHBORS", "cat dog", "COUNT", "12")]

    def answers(d):
        c = d.client()
        c.cmd("FLUSHALL")
        for k, v in store.items():
            assert c.cmd("SET", k, v) == "OK"
        got = [c.cmd(*(a + ("WITHSCORES",))) for a in asks]
        fields = info_fields(c, "vectors")
        c.cmd("FLUSHALL")
        c.close()
        return got, fields

    auto, auto_fields = answers(env.daemon)
    assert auto_fields["rank_kernel"] in ("portable", "avx2", "avx512vnni"), auto_fields
    assert auto_fields["attn_kernel"] in ("portable", "avx2", "avx512"), auto_fields
    assert all(len(a) >= 2 for a in auto), auto
    d = Daemon(env.workdir, env.vectors, ("--workers", "2"), name="portable-kernels",
               extra_env={"AKV_RANK_KERNEL": "portable", "AKV_ATTN_KERNEL": "portable"})
    try:
        portable, fields = answers(d)
    finally:
        d.check_clean_exit()
    assert fields["rank_kernel"] == "portable" and fields["attn_kernel"] == "portable", fields
    assert portable == auto, (portable, auto)


@akvtest.test("basic")
def test_neighbor_lists(env):
    """QUERYs whose attention weight sits on one stored value are answered
    from that value's neighbor list once a first QUERY has computed it
    (INFO stats query_from_lists, neighbor_lists), with exactly the replies,
    scores included, of a daemon that keeps no lists (neighbor-lists 0)."""
    store = {"w%04d" % i: "w%04d" % (1000 + i) for i in range(40)}
    store["w0040"] = "w0100 w0101"  # a phrase: its weight stays with the rest
    asks = [("QUERY", "w%04d" % i, "ATTENTION", "cosine", "TEMPERATURE", t, "METRIC", m,
             "COUNT", "7", "WITHSCORES")
            for i in range(41) for m in ("l2", "cosine") for t in ("0.02", "0.2")]

    def answers(d):
        c = d.client()
        c.cmd("FLUSHALL")
        for k, v in store.items():
            assert c.cmd("SET", k, v) == "OK"
        before = int(info_fields(c, "stats")["query_from_lists"])
        first = [c.cmd(*a) for a in asks]
        second = [c.cmd(*a) for a in asks]
        after = info_fields(c, "stats")
        c.cmd("FLUSHALL")
        c.close()
        return first, second, int(after["query_from_lists"]) - before, int(after["neighbor_lists"])

    first, second, from_lists, lists = answers(env.daemon)
    assert first == second
    assert all(len(a) == 14 for a in first), first[:3]
    # The low temperature puts nearly all the weight on the key's own
    # value; the lists of the 40 single-word values then decide.
    assert from_lists >= len(asks) // 4, (from_lists, len(asks))
    assert lists >= 40, lists
    conf = os.path.join(env.workdir, "no-lists.conf")
    with open(conf, "w") as f:
        f.write("neighbor-lists 0\n")
    d = Daemon(env.workdir, env.vectors, ("--workers", "2", "--config", conf), name="no-lists")
    try:
        off_first, off_second, off_from_lists, off_lists = answers(d)
        assert d.client().cmd("CONFIG", "GET", "neighbor-lists") == ["neighbor-lists", "0"]
    finally:
        d.check_clean_exit()
    assert (off_from_lists, off_lists) == (0, 0)
    assert off_first == first and off_second == first


@akvtest.test("basic")
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


@akvtest.test("basic")
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
        (("QUERY", "cat", "TEMPERATURE", "0"), "TEMPERATURE must be a decimal number from"),
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


@akvtest.test("basic")
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
# Framing.


@akvtest.test("basic")
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


@akvtest.test("basic")
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


@akvtest.test("basic")
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


@akvtest.test("basic")
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


@akvtest.test("basic")
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


@akvtest.test("basic")
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
# Tools.


@akvtest.test("basic")
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


@akvtest.test("basic")
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
# More daemons.


@akvtest.test("basic")
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


@akvtest.test("basic")
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


@akvtest.test("basic")
def test_startup_errors(env):
    exe = os.environ["AKV_ATTNKVD"]

    def start(*args):
        # In the work directory: a daemon that gets as far as its AOF makes
        # one in its directory.
        return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60,
                              cwd=env.workdir)

    r = start("--version")
    assert r.returncode == 0 and r.stdout.startswith("attnkvd "), r
    r = start("--help")
    assert r.returncode == 0 and "--test-config" in r.stdout, r
    r = start("--bogus")
    assert r.returncode == 2 and "unknown option '--bogus'" in r.stderr, r
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


def config_get(c, *names):
    """CONFIG GET of each name, as a dict."""
    out = {}
    for n in names:
        r = c.cmd("CONFIG", "GET", n)
        assert len(r) == 2, (n, r)
        out[r[0]] = r[1]
    return out


@akvtest.test("basic")
def test_directives_as_options(env):
    """Any directive can be given as --name value..., as redis-server takes
    them, and overrides the configuration file given as the first argument;
    CONFIG GET shows the result."""
    conf = os.path.join(env.workdir, "cli.conf")
    with open(conf, "w") as f:
        f.write("count 3\nmaxclients 50\nappendonly yes\ntimeout 9\nbind 10.1.2.3\n")
    data = os.path.join(env.workdir, "cli-data")
    os.mkdir(data)
    d = Daemon(env.workdir, env.vectors,
               ("--workers", "1", "--count", "7", "--appendonly", "no", "--dir", data,
                "--maxmemory", "10mb", "--client-output-buffer-limit", "normal", "1mb", "512kb",
                "5", "--bind", "127.0.0.1", "--databases", "32", "--slowlog-log-slower-than", "-1",
                "--logfile", "", "--METRIC=cosine", "-w", "2"),
               name="cli", config=conf)
    try:
        c = d.client()
        got = config_get(c, "count", "maxclients", "appendonly", "dir", "maxmemory",
                         "client-output-buffer-limit", "bind", "databases",
                         "slowlog-log-slower-than", "logfile", "metric", "timeout", "workers")
        assert got == {"count": "7", "maxclients": "50", "appendonly": "no", "dir": data,
                       "maxmemory": "10485760",
                       "client-output-buffer-limit": "1048576 524288 5",
                       "bind": "127.0.0.1", "databases": "32", "slowlog-log-slower-than": "-1",
                       "logfile": "", "metric": "cosine", "timeout": "9", "workers": "2"}, got
        assert info_fields(c, "server")["config_file"] == conf
        assert c.cmd("SET", "cat", "animal") == "OK"
        assert len(c.cmd("QUERY", "dog")) == 7
        # databases is read at start-up only.
        assert is_err(c.cmd("CONFIG", "SET", "databases", "8"), "cannot be changed at run time")
        c.close()
    finally:
        d.check_clean_exit()
    # appendonly no: nothing was written to the data directory.
    assert os.listdir(data) == [], os.listdir(data)


@akvtest.test("basic")
def test_command_line_errors(env):
    """A bad value exits 1 with the file's message naming the option; a
    usage error (unknown option, stray argument) exits 2."""
    exe = os.environ["AKV_ATTNKVD"]

    def start(*args, stdin=None):
        return subprocess.run([exe] + list(args), capture_output=True, text=True, timeout=60,
                              cwd=env.workdir, input=stdin)

    bad = [
        (("--appendonly", "maybe"), "attnkvd: --appendonly: bad appendonly 'maybe' (expected "
                                    "yes|no)"),
        (("--databases", "0"), "attnkvd: --databases: bad databases '0' (expected 1..1024)"),
        (("--databases", "1025"), "attnkvd: --databases: bad databases '1025' (expected "
                                  "1..1024)"),
        (("--client-output-buffer-limit", "normal", "0", "0"),
         "attnkvd: --client-output-buffer-limit: bad client-output-buffer-limit 'normal'"),
        (("--maxmemory", "1.5gb"), "attnkvd: --maxmemory: bad maxmemory '1.5gb'"),
        (("--timeout", "1", "2"), "attnkvd: --timeout: 'timeout' takes 1 argument, got 2"),
        (("--port=70000",), "attnkvd: --port: bad port '70000' (expected 0..65535)"),
        (("-p", "x"), "attnkvd: -p: bad port 'x' (expected 0..65535)"),
        (("--bind", "::1", "-b", "0::1"), "attnkvd: -b: bind address '0::1' is listed twice"),
    ]
    for args, msg in bad:
        r = start("--vectors", env.vectors, "--test-config", *args)
        assert r.returncode == 1 and msg in r.stderr, (args, r)
    # A bad --maxmemory after a good file: the option is named, not the file.
    good = os.path.join(env.workdir, "cli-good.conf")
    with open(good, "w") as f:
        f.write("port 0\nworkers 1\nvectors %s\n" % env.vectors)
    r = start(good, "--maxmemory", "lots", "--test-config")
    assert r.returncode == 1 and r.stderr.startswith("attnkvd: --maxmemory: bad maxmemory"), r
    usage = [
        (("--foo", "1"), "unknown option '--foo'"),
        (("--requirepas", "Sw0rdfish"), "unknown option '--requirepas'"),
        (("-x",), "unknown option '-x'"),
        (("-t", "--port", "1", "-c"), "option '-c' needs a value"),
        (("-t", "-p", "1", good), "unexpected argument '%s'" % good),
        ((good, "-t", "other.conf"), "unexpected argument 'other.conf'"),
        ((good, "-c", good), "a configuration file is already given"),
    ]
    for args, msg in usage:
        r = start(*args)
        assert r.returncode == 2 and msg in r.stderr and "Sw0rdfish" not in r.stderr, (args, r)
    # --test-config with the file first, an override, and from stdin.
    r = start(good, "--databases", "4", "--appendonly", "no", "--test-config")
    assert r.returncode == 0 and "configuration OK in " + good in r.stdout, r
    r = start("-", "--test-config", stdin="port 0\nworkers 1\nvectors %s\n" % env.vectors)
    assert r.returncode == 0 and "configuration OK in standard input" in r.stdout, r
    r = start("-", "--test-config", stdin="port 0\nvectors %s\ncount lots\n" % env.vectors)
    assert r.returncode == 1 and "(stdin):3: bad count 'lots'" in r.stderr, r
    r = start("--help")
    assert r.returncode == 0 and "--DIRECTIVE" in r.stdout and "FILE" in r.stdout, r


@akvtest.test("basic")
def test_test_config_checks_startup_needs(env):
    """--test-config checks more than the syntax: dir, logfile, the
    addresses and the AOF, each problem named with the directive and the
    file:line (or option) it comes from; exit 1; nothing left behind."""
    exe = os.environ["AKV_ATTNKVD"]
    base = tempfile.mkdtemp(prefix="tc-", dir=env.workdir)

    def test_config(*args):
        return subprocess.run([exe] + list(args) + ["--test-config"], capture_output=True,
                              text=True, timeout=60, cwd=base)

    conf = os.path.join(base, "t.conf")
    missing_dir = os.path.join(base, "nope")
    log_in_missing = os.path.join(base, "nodir", "x.log")
    with open(conf, "w") as f:
        f.write("# checks\nport 0\nvectors %s\ndir %s\nlogfile %s\nbind 192.0.2.1\n"
                % (env.vectors, missing_dir, log_in_missing))
    r = test_config(conf)
    assert r.returncode == 1, r
    assert "dir '%s' (from %s:4): No such file or directory" % (missing_dir, conf) in r.stderr, r
    assert ("logfile '%s' (from %s:5): cannot open it for appending" % (log_in_missing, conf)
            in r.stderr), r
    assert ("bind '192.0.2.1' (from %s:6), port 0 (from %s:2): cannot bind: Cannot assign "
            "requested address" % (conf, conf)) in r.stderr, r
    assert "configuration OK" not in r.stdout, r
    # Every problem in one run, the vectors too.
    r = test_config(conf, "--vectors", os.path.join(base, "none.akv"))
    assert r.returncode == 1 and "vectors '%s' (from --vectors): cannot be opened" % os.path.join(
        base, "none.akv") in r.stderr and "dir '%s'" % missing_dir in r.stderr, r
    # The command line is named when it set the value; dir is a file.
    afile = os.path.join(base, "afile")
    open(afile, "w").close()
    r = test_config(conf, "--dir", afile, "--logfile", "", "--bind", "127.0.0.1")
    assert r.returncode == 1 and "dir '%s' (from --dir): not a directory" % afile in r.stderr, r
    # All good: exit 0; a log that did not exist is not left behind, one
    # that did is not truncated; the dir check leaves nothing either.
    data = os.path.join(base, "data")
    os.mkdir(data)
    newlog = os.path.join(base, "new.log")
    r = test_config(conf, "--dir", data, "--logfile", newlog, "--bind", "127.0.0.1")
    assert r.returncode == 0 and "configuration OK" in r.stdout, r
    assert not os.path.exists(newlog) and os.listdir(data) == [], os.listdir(data)
    with open(newlog, "w") as f:
        f.write("old lines\n")
    r = test_config(conf, "--dir", data, "--logfile", newlog, "--bind", "127.0.0.1")
    assert r.returncode == 0 and open(newlog).read() == "old lines\n", r
    # A log the daemon would refuse: the AOF itself.
    aof = os.path.join(data, "appendonly.aof")
    r = test_config(conf, "--dir", data, "--logfile", aof, "--bind", "127.0.0.1")
    assert r.returncode == 1 and "the append-only file" in r.stderr, r
    # An AOF that cannot be read.
    os.mkdir(aof)
    r = test_config(conf, "--dir", data, "--logfile", "", "--bind", "127.0.0.1")
    assert r.returncode == 1 and "appendfilename 'appendonly.aof' (from the default)" in r.stderr \
        and "is not a regular file" in r.stderr, r
    r = test_config(conf, "--dir", data, "--logfile", "", "--bind", "127.0.0.1", "--appendonly",
                    "no")
    assert r.returncode == 0, r
    os.rmdir(aof)
    # A port in use now (the test daemon's) is a warning, not a failure.
    r = test_config(conf, "--dir", data, "--logfile", "", "--bind", "127.0.0.1", "--port",
                    str(env.daemon.port))
    assert r.returncode == 0 and "warning: bind '127.0.0.1'" in r.stderr \
        and "port %d (from --port): in use now" % env.daemon.port in r.stderr, r
    # A port the process may not bind (below 1024, when not root).
    if os.geteuid() != 0:
        r = test_config(conf, "--dir", data, "--logfile", "", "--bind", "127.0.0.1", "--port",
                        "1")
        assert r.returncode == 1 and "cannot bind: Permission denied" in r.stderr, r
    # Under socket activation nothing is bound.
    r = subprocess.run(["/bin/sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", exe, conf,
                        "--dir", data, "--logfile", "", "--test-config"], capture_output=True,
                       text=True, timeout=60, cwd=base)
    assert r.returncode == 0 and "bind and port not checked" in r.stderr, r


@akvtest.test("basic")
def test_command_line_wins_over_reload(env):
    """SIGUSR2 re-reads the file, and the directives of the command line, not
    only the short flags, still override it."""
    conf = os.path.join(env.workdir, "cli-hup.conf")

    def write(count, maxkeys, timeout):
        with open(conf, "w") as f:
            f.write("count %d\nmaxkeys %d\ntimeout %d\n" % (count, maxkeys, timeout))

    write(3, 10, 0)
    d = Daemon(env.workdir, env.vectors, ("--workers", "1", "--count", "7", "--timeout", "60"),
               name="cli-hup", config=conf)
    try:
        c = d.client()
        assert config_get(c, "count", "maxkeys", "timeout") == {
            "count": "7", "maxkeys": "10", "timeout": "60"}
        write(4, 20, 5)
        d.proc.send_signal(signal.SIGUSR2)
        akvtest.wait_log(d, "SIGUSR2: reloaded")
        t = d.text()
        assert "maxkeys changed from '10' to '20'" in t, t[-2000:]
        assert "count changed" not in t and "timeout changed" not in t, t[-2000:]
        assert config_get(c, "count", "maxkeys", "timeout") == {
            "count": "7", "maxkeys": "20", "timeout": "60"}
        c.close()
    finally:
        d.check_clean_exit()


@akvtest.test("basic")
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


@akvtest.test("basic")
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


if __name__ == "__main__":
    sys.exit(akvtest.main("basic"))
