#!/usr/bin/env python3
"""daemon-keyspace: databases, expiry, transactions and the keyspace commands,
end to end over real TCP.

* Exact replies (Redis's shapes and error texts) of SET and its options,
  GET, SETNX, GETSET, GETDEL, GETEX, MSET, MSETNX, MGET, DEL, UNLINK,
  EXISTS, RENAME, RENAMENX, COPY, MOVE, the EXPIRE family with NX|XX|GT|LT,
  TTL, PTTL, PERSIST, EXPIRETIME, PEXPIRETIME, SELECT, SWAPDB, FLUSHDB,
  FLUSHALL, DBSIZE, INFO keyspace and expired_keys; and a differential
  test that sends the same commands to redis-server (when installed) and
  compares every reply.
* Expiry: keys answer exactly until their time and never after it (GET,
  EXISTS, PTTL, MGET, EXPLAIN, QUERY), the active cycle deletes keys nobody
  touches, TTLs survive kill -9, restarts and BGREWRITEAOF, and entries
  whose time passed while the daemon was down are dropped at replay.
* Databases: each its own attention set, SWAPDB as other connections see
  it, MOVE, the AOF across restart and rewrite, 'databases 4', and an AOF
  naming a database that does not exist.
* Transactions: exact replies, queue-time errors, WATCH (another client,
  FLUSHALL, SWAPDB, expiry), EXPLAIN inside MULTI seeing exactly the writes
  queued before it, EXEC's writes as one AOF record (kill -9, a torn
  record), and concurrent optimistic transactions without a lost update.
* The hiredis check program (tests/integration/hiredis-check.c), when
  meson built it ($AKV_HIREDIS_CHECK).
* The stall rule (as daemon-hostile measures it: a separate process PINGs
  every 10 ms): MSET, MGET and DEL of 65,535 arguments, an EXEC of a queue
  at proto-max-multibulk-len (and one over it), 200,000 keys expiring at
  the same instant, WATCH of 65,535 keys. Figures are printed.

Uses the synthetic vocabulary (akvtest.Env). Run alone: meson test -C build
daemon-keyspace, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  /usr/bin/python3 tests/integration/test_keyspace.py [-k NAME]
(environment: see akvtest.py; AKV_CHECK_AOF as in test_persistence.py).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import akvtest
from akvtest import (Client, Closed, RespError, info_fields, is_err, parse_info, run_tool,
                     wait_log)
import test_hostile

SYNTAX = RespError("ERR syntax error")
NOTINT = RespError("ERR value is not an integer or out of range")
NOKEY = RespError("ERR no such key")
SAME = RespError("ERR source and destination objects are the same")
RANGE = RespError("ERR DB index is out of range")


def E(text):
    return RespError(text)


def arity(cmd):
    return E("ERR wrong number of arguments for '%s' command" % cmd)


def invalid_expire(cmd):
    return E("ERR invalid expire time in '%s' command" % cmd)


def check_tool():
    return os.environ.get("AKV_CHECK_AOF") or os.path.join(
        os.environ.get("AKV_BUILD_ROOT", "."), "tools", "attnkv-check-aof")


def now_ms():
    return int(time.time() * 1000)


def run(c, table):
    """Sends each command of table [(args, expected reply), ...] and checks
    the reply exactly. An expected value that is a function is called with
    the reply and must return True."""
    for args, want in table:
        got = c.cmd(*args)
        if callable(want) and not isinstance(want, RespError):
            assert want(got), (args, got)
        else:
            assert got == want, "%r: got %r, want %r" % (args, got, want)


def flushed(env, db=0):
    c = env.daemon.client()
    assert c.cmd("FLUSHALL") == "OK"
    if db:
        assert c.cmd("SELECT", db) == "OK"
    return c


def keyspace(c):
    """INFO keyspace as {db: (keys, expires)}."""
    out = {}
    for line in c.cmd("INFO", "keyspace").split("\r\n"):
        m = re.match(r"db(\d+):keys=(\d+),expires=(\d+),avg_ttl=\d+$", line)
        if m:
            out[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return out


def expired_keys(c):
    return int(info_fields(c, "stats")["expired_keys"])


def wait_until(pred, timeout=10.0, what="condition", step=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(step)


def kill9(d):
    d.proc.kill()
    d.proc.wait(timeout=30)
    d.log.close()
    assert_no_sanitizer_report(d)


def assert_no_sanitizer_report(d):
    t = d.text()
    for bad in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
                "ERROR: LeakSanitizer"):
        assert bad not in t, t[-6000:]


_dcount = [0]


def dstart(env, conf="", args=("--workers", "1"), **kw):
    """A daemon of the test's own (kw: Daemon's arguments, e.g. datadir to
    restart on the same AOF)."""
    _dcount[0] += 1
    return env.configured_daemon("ks%d" % _dcount[0], conf, args, **kw)


def restart(env, d, conf=""):
    return dstart(env, conf, datadir=d.datadir)


def wait_rewrite(c, n):
    return wait_until(lambda: info_fields(c, "persistence")["aof_rewrites"] == str(n) and
                      info_fields(c, "persistence")["aof_rewrite_in_progress"] == "0",
                      timeout=60, what="rewrite %d" % n)


def check_aof(path):
    r = run_tool([check_tool(), path])
    assert r.returncode == 0, r
    m = re.search(r"(\d+) good records \((\d+) SET, (\d+) DEL, (\d+) FLUSHALL"
                  r"(?:, (\d+) FLUSHDB)?(?:, (\d+) SWAPDB)?(?:, (\d+) MULTI)?\)", r.stdout)
    assert m, r.stdout
    names = ("records", "SET", "DEL", "FLUSHALL", "FLUSHDB", "SWAPDB", "MULTI")
    return {n: int(v or 0) for n, v in zip(names, m.groups())}


def explain_keys(reply):
    return [e[0] for e in reply]


# ---------------------------------------------------------------------------
# 1. Exact replies.


@akvtest.test("keyspace")
def test_set_options(env):
    c = flushed(env)
    t_far = int(time.time()) + 100000
    run(c, [
        (("SET", "cat", "animal"), "OK"),
        (("SET", "cat", "dog", "NX"), None),
        (("GET", "cat"), "animal"),
        (("SET", "cat", "dog", "XX"), "OK"),
        (("GET", "cat"), "dog"),
        (("SET", "dog", "cat", "XX"), None),
        (("EXISTS", "dog"), 0),
        (("SET", "dog", "cat", "nx"), "OK"),
        # GET: the old value, or nil; with NX/XX the value stays when not set.
        (("SET", "dog", "toy", "GET"), "cat"),
        (("SET", "ball", "toy", "GET"), None),
        (("GET", "ball"), "toy"),
        (("SET", "dog", "ball", "NX", "GET"), "toy"),
        (("GET", "dog"), "toy"),
        (("SET", "seven", "ball", "XX", "GET"), None),
        (("EXISTS", "seven"), 0),
        (("SET", "dog", "ball", "XX", "GET"), "toy"),
        (("SET", "seven", "number", "NX", "GET"), None),
        (("GET", "seven"), "number"),
        # Times.
        (("SET", "dog", "ball", "EX", "100"), "OK"),
        (("TTL", "dog"), 100),
        (("SET", "dog", "ball", "PX", "100000"), "OK"),
        (("TTL", "dog"), 100),
        (("SET", "dog", "ball", "EXAT", t_far), "OK"),
        (("EXPIRETIME", "dog"), t_far),
        (("SET", "dog", "ball", "PXAT", t_far * 1000 + 123), "OK"),
        (("PEXPIRETIME", "dog"), t_far * 1000 + 123),
        (("EXPIRETIME", "dog"), t_far),
        (("SET", "dog", "toy", "KEEPTTL"), "OK"),
        (("PEXPIRETIME", "dog"), t_far * 1000 + 123),
        (("GET", "dog"), "toy"),
        (("SET", "dog", "toy", "KEEPTTL", "GET", "XX"), "toy"),
        (("PEXPIRETIME", "dog"), t_far * 1000 + 123),
        (("SET", "dog", "ball"), "OK"),  # a plain SET clears the time
        (("TTL", "dog"), -1),
        (("SET", "one", "number", "KEEPTTL"), "OK"),  # new key: no time
        (("TTL", "one"), -1),
        (("SET", "one", "number", "ex", "50", "get", "xx"), "number"),
        (("TTL", "one"), 50),
        (("SET", "one", "seven", "NX", "EX", "10"), None),  # not set: time unchanged
        (("TTL", "one"), 50),
        # Syntax errors.
        (("SET", "dog", "ball", "NX", "XX"), SYNTAX),
        (("SET", "dog", "ball", "XX", "NX"), SYNTAX),
        (("SET", "dog", "ball", "EX", "10", "PX", "100"), SYNTAX),
        (("SET", "dog", "ball", "EX", "10", "KEEPTTL"), SYNTAX),
        (("SET", "dog", "ball", "KEEPTTL", "EX", "10"), SYNTAX),
        (("SET", "dog", "ball", "KEEPTTL", "PXAT", "10"), SYNTAX),
        (("SET", "dog", "ball", "EXAT", "10", "EXAT", "10"), SYNTAX),
        (("SET", "dog", "ball", "EX"), SYNTAX),
        (("SET", "dog", "ball", "FOO"), SYNTAX),
        (("SET", "dog", "ball", "PERSIST"), SYNTAX),
        (("SET", "dog", "ball", "10"), SYNTAX),
        # Bad times.
        (("SET", "dog", "ball", "EX", "0"), invalid_expire("set")),
        (("SET", "dog", "ball", "EX", "-1"), invalid_expire("set")),
        (("SET", "dog", "ball", "PX", "0"), invalid_expire("set")),
        (("SET", "dog", "ball", "EXAT", "0"), invalid_expire("set")),
        (("SET", "dog", "ball", "PXAT", "-5"), invalid_expire("set")),
        (("SET", "dog", "ball", "EX", "99999999999999999"), invalid_expire("set")),
        (("set", "dog", "ball", "ex", "0"), invalid_expire("set")),
        (("SET", "dog", "ball", "EX", "abc"), NOTINT),
        (("SET", "dog", "ball", "EX", "1.5"), NOTINT),
        (("SET", "dog", "ball", "PX", ""), NOTINT),
        (("SET", "dog", "ball", "PX", "9999999999999999999"), NOTINT),
        # Nothing above changed dog.
        (("GET", "dog"), "ball"),
        (("TTL", "dog"), -1),
        (("SET", "dog"), arity("set")),
        (("SET",), arity("set")),
    ])
    # A time already past (EXAT/PXAT in the past but above 0): the key is
    # set and gone at once, as in Redis.
    run(c, [
        (("SET", "dog", "ball", "PXAT", "1"), "OK"),
        (("GET", "dog"), None),
        (("EXISTS", "dog"), 0),
    ])
    c.close()


@akvtest.test("keyspace")
def test_string_commands(env):
    c = flushed(env)
    run(c, [
        (("GET", "cat"), None),
        (("SETNX", "cat", "animal"), 1),
        (("SETNX", "cat", "dog"), 0),
        (("GET", "cat"), "animal"),
        (("GETSET", "cat", "toy"), "animal"),
        (("GETSET", "dog", "toy"), None),
        (("GET", "dog"), "toy"),
        (("GETDEL", "dog"), "toy"),
        (("GETDEL", "dog"), None),
        (("EXISTS", "dog"), 0),
        # GETSET clears a time, as SET does.
        (("SET", "ball", "toy", "EX", "100"), "OK"),
        (("GETSET", "ball", "sphere"), "toy"),
        (("TTL", "ball"), -1),
        # GETEX.
        (("GETEX", "cat"), "toy"),
        (("TTL", "cat"), -1),
        (("GETEX", "cat", "EX", "100"), "toy"),
        (("TTL", "cat"), 100),
        (("GETEX", "cat", "PX", "50000"), "toy"),
        (("TTL", "cat"), 50),
        (("GETEX", "cat"), "toy"),
        (("TTL", "cat"), 50),
        (("GETEX", "cat", "PERSIST"), "toy"),
        (("TTL", "cat"), -1),
        (("GETEX", "cat", "EXAT", "4102444800"), "toy"),
        (("EXPIRETIME", "cat"), 4102444800),
        (("GETEX", "cat", "PXAT", "4102444800555"), "toy"),
        (("PEXPIRETIME", "cat"), 4102444800555),
        (("GETEX", "nope", "EX", "100"), None),
        (("GETEX", "cat", "PX", "100000", "PERSIST"), SYNTAX),
        (("GETEX", "cat", "PERSIST", "EX", "100"), SYNTAX),
        (("GETEX", "cat", "EX", "1", "EX", "1"), SYNTAX),
        (("GETEX", "cat", "NX"), SYNTAX),
        (("GETEX", "cat", "KEEPTTL"), SYNTAX),
        (("GETEX", "cat", "GET"), SYNTAX),
        (("GETEX", "cat", "EX"), SYNTAX),
        (("GETEX", "cat", "EX", "0"), invalid_expire("getex")),
        (("GETEX", "cat", "EX", "-5"), invalid_expire("getex")),
        (("GETEX", "cat", "PX", "x"), NOTINT),
        (("PEXPIRETIME", "cat"), 4102444800555),
        # A time already past: the value, and the key is gone, as in Redis.
        (("GETEX", "cat", "PXAT", "1"), "toy"),
        (("EXISTS", "cat"), 0),
        (("SET", "cat", "toy"), "OK"),
        # MSET, MSETNX, MGET.
        (("MSET", "one", "number", "seven", "number"), "OK"),
        (("MGET", "one", "seven", "nope", "cat"), ["number", "number", None, "toy"]),
        (("MSETNX", "one", "ball", "dog", "ball"), 0),
        (("MGET", "one", "dog"), ["number", None]),
        (("MSETNX", "toy", "ball", "shape", "sphere"), 1),
        (("MGET", "toy", "shape"), ["ball", "sphere"]),
        (("MSETNX", "w0001", "ball", "w0001", "toy"), 1),  # a key twice: the last wins
        (("GET", "w0001"), "toy"),
        (("MSET", "one", "w0001", "one", "w0002"), "OK"),
        (("GET", "one"), "w0002"),
        # MSET clears times, as SET does.
        (("SET", "one", "number", "EX", "100"), "OK"),
        (("MSET", "one", "number"), "OK"),
        (("TTL", "one"), -1),
        (("MSET", "one", "number", "seven"), arity("mset")),
        (("MSETNX", "one", "number", "seven"), arity("msetnx")),
        (("MSET",), arity("mset")),
        (("MSET", "one"), arity("mset")),
        (("MGET",), arity("mget")),
        (("SETNX", "cat"), arity("setnx")),
        (("GETSET", "cat"), arity("getset")),
        (("GETDEL",), arity("getdel")),
        (("GETDEL", "a", "b"), arity("getdel")),
        (("GETEX",), arity("getex")),
    ])
    # A pair that does not embed changes nothing: all or none.
    r = c.cmd("MSET", "one", "seven", "cat", "zzzzqqq", "dog", "ball")
    assert is_err(r, "unknown word 'zzzzqqq'"), r
    assert c.cmd("MGET", "one", "cat", "dog") == ["number", "toy", None]
    r = c.cmd("MSETNX", "w0100", "cat", "zzzzqqq", "dog")
    assert is_err(r, "unknown word 'zzzzqqq'"), r
    assert c.cmd("EXISTS", "w0100") == 0
    c.close()


@akvtest.test("keyspace")
def test_key_commands(env):
    c = flushed(env)
    run(c, [
        (("MSET", "cat", "animal", "dog", "animal", "one", "number"), "OK"),
        (("EXISTS", "cat", "dog", "nope", "cat"), 3),
        (("DEL", "cat", "nope", "cat"), 1),
        (("UNLINK", "dog", "nope"), 1),
        (("UNLINK", "dog"), 0),
        (("EXISTS", "cat", "dog"), 0),
        (("DEL",), arity("del")),
        (("UNLINK",), arity("unlink")),
        (("EXISTS",), arity("exists")),
        # RENAME, RENAMENX.
        (("RENAME", "nope", "cat"), NOKEY),
        (("RENAMENX", "nope", "cat"), NOKEY),
        (("RENAME", "one", "king"), "OK"),
        (("MGET", "one", "king"), [None, "number"]),
        (("RENAME", "king", "king"), "OK"),
        (("RENAMENX", "king", "king"), 0),
        (("GET", "king"), "number"),
        (("SET", "queen", "male"), "OK"),
        (("RENAMENX", "king", "queen"), 0),
        (("MGET", "king", "queen"), ["number", "male"]),
        (("RENAMENX", "king", "hello"), 1),
        (("RENAME", "hello", "queen"), "OK"),
        (("MGET", "king", "hello", "queen"), [None, None, "number"]),
        # The time moves with the key, and replaces the target's.
        (("SET", "hello", "world", "EX", "1000"), "OK"),
        (("SET", "foo", "bar"), "OK"),
        (("RENAME", "hello", "foo"), "OK"),
        (("TTL", "foo"), 1000),
        (("GET", "foo"), "world"),
        (("SET", "bar", "toy", "EX", "50"), "OK"),
        (("SET", "ball", "sphere"), "OK"),
        (("RENAME", "ball", "bar"), "OK"),
        (("TTL", "bar"), -1),
        (("RENAME", "a"), arity("rename")),
        (("RENAMENX", "a", "b", "c"), arity("renamenx")),
        # COPY.
        (("COPY", "foo", "w0001"), 1),
        (("MGET", "foo", "w0001"), ["world", "world"]),
        (("TTL", "w0001"), 1000),
        (("COPY", "foo", "w0001"), 0),
        (("COPY", "bar", "w0001"), 0),
        (("COPY", "bar", "w0001", "REPLACE"), 1),
        (("GET", "w0001"), "sphere"),
        (("TTL", "w0001"), -1),
        (("COPY", "nope", "w0002"), 0),
        (("COPY", "foo", "foo"), SAME),
        (("COPY", "foo", "foo", "DB", "0"), SAME),
        (("COPY", "foo", "foo", "DB", "1"), 1),
        (("COPY", "foo", "w0002", "DB", "1"), 1),
        (("COPY", "foo", "w0002", "DB", "1"), 0),
        (("COPY", "foo", "w0002", "db", "1", "replace"), 1),
        (("COPY", "foo", "w0002", "REPLACE", "DB", "1"), 1),
        (("COPY", "foo", "w0002", "DB", "16"), RANGE),
        (("COPY", "foo", "w0002", "DB", "-1"), RANGE),
        (("COPY", "foo", "w0002", "DB", "x"), NOTINT),
        (("COPY", "foo", "w0002", "DB"), SYNTAX),
        (("COPY", "foo", "w0002", "FOO"), SYNTAX),
        (("COPY", "foo"), arity("copy")),
        (("SELECT", "1"), "OK"),
        (("MGET", "foo", "w0002"), ["world", "world"]),
        (("TTL", "w0002"), 1000),
        (("DBSIZE",), 2),
        (("SELECT", "0"), "OK"),
        (("EXISTS", "w0002"), 0),
        # MOVE.
        (("MOVE", "foo", "1"), 0),  # db 1 has foo
        (("GET", "foo"), "world"),
        (("MOVE", "bar", "1"), 1),
        (("EXISTS", "bar"), 0),
        (("MOVE", "bar", "1"), 0),
        (("MOVE", "nope", "1"), 0),
        (("MOVE", "foo", "0"), SAME),
        (("MOVE", "foo", "16"), RANGE),
        (("MOVE", "foo", "-1"), RANGE),
        (("MOVE", "foo", "x"), NOTINT),
        (("MOVE", "foo"), arity("move")),
        (("SELECT", "1"), "OK"),
        (("GET", "bar"), "sphere"),
        (("MOVE", "w0002", "5"), 1),
        (("SELECT", "5"), "OK"),
        (("TTL", "w0002"), 1000),
        (("SELECT", "0"), "OK"),
    ])
    # A RENAME whose new key is too long changes nothing.
    r = c.cmd("RENAME", "foo", "cat " * 2000)
    assert is_err(r, "key is too long"), r
    assert c.cmd("GET", "foo") == "world"
    c.close()


@akvtest.test("keyspace")
def test_expire_commands(env):
    c = flushed(env)
    run(c, [
        (("SET", "cat", "animal"), "OK"),
        (("TTL", "cat"), -1),
        (("PTTL", "cat"), -1),
        (("EXPIRETIME", "cat"), -1),
        (("PEXPIRETIME", "cat"), -1),
        (("TTL", "nope"), -2),
        (("PTTL", "nope"), -2),
        (("EXPIRETIME", "nope"), -2),
        (("PEXPIRETIME", "nope"), -2),
        (("EXPIRE", "nope", "100"), 0),
        (("PEXPIRE", "nope", "100"), 0),
        (("EXPIREAT", "nope", "4102444800"), 0),
        (("PEXPIREAT", "nope", "4102444800000"), 0),
        (("PERSIST", "nope"), 0),
        (("PERSIST", "cat"), 0),
        (("EXPIRE", "cat", "100", "XX"), 0),  # no time yet
        (("TTL", "cat"), -1),
        (("EXPIRE", "cat", "100", "GT"), 0),  # no time counts as infinite
        (("TTL", "cat"), -1),
        (("EXPIRE", "cat", "100", "LT"), 1),
        (("TTL", "cat"), 100),
        (("EXPIRE", "cat", "200", "NX"), 0),
        (("EXPIRE", "cat", "200", "XX"), 1),
        (("TTL", "cat"), 200),
        (("EXPIRE", "cat", "50", "GT"), 0),
        (("EXPIRE", "cat", "500", "GT"), 1),
        (("TTL", "cat"), 500),
        (("EXPIRE", "cat", "600", "LT"), 0),
        (("EXPIRE", "cat", "60", "lt"), 1),
        (("TTL", "cat"), 60),
        (("PEXPIREAT", "cat", "4102444800000"), 1),
        (("PEXPIREAT", "cat", "4102444800000", "GT"), 0),  # equal is not greater
        (("PEXPIREAT", "cat", "4102444800000", "LT"), 0),
        (("EXPIRE", "cat", "60"), 1),
        (("EXPIRE", "cat", "70", "XX", "GT"), 1),
        (("TTL", "cat"), 70),
        (("PEXPIRE", "cat", "80000"), 1),
        (("PTTL", "cat"), lambda v: 79000 <= v <= 80000),
        (("TTL", "cat"), 80),
        (("PERSIST", "cat"), 1),
        (("TTL", "cat"), -1),
        (("PERSIST", "cat"), 0),
        (("EXPIRE", "cat", "100", "NX"), 1),
        (("TTL", "cat"), 100),
        (("EXPIREAT", "cat", "4102444800"), 1),
        (("EXPIRETIME", "cat"), 4102444800),
        (("PEXPIRETIME", "cat"), 4102444800000),
        (("PEXPIREAT", "cat", "4102444800999"), 1),
        (("EXPIRETIME", "cat"), 4102444800),
        (("PEXPIREAT", "cat", "4102444800999", "GT"), 0),
        (("PEXPIREAT", "cat", "4102444801000", "GT"), 1),
        (("EXPIREAT", "cat", "4102444800", "LT"), 1),
        (("PEXPIRETIME", "cat"), 4102444800000),
        # Errors.
        (("EXPIRE", "cat", "60", "NX", "XX"), E("ERR NX and XX, GT or LT options at the same "
                                                "time are not compatible")),
        (("EXPIRE", "cat", "60", "NX", "GT"), E("ERR NX and XX, GT or LT options at the same "
                                                "time are not compatible")),
        (("EXPIRE", "cat", "60", "GT", "LT"), E("ERR GT and LT options at the same time are not "
                                                "compatible")),
        (("EXPIRE", "cat", "60", "FOO"), E("ERR Unsupported option FOO")),
        (("EXPIRE", "cat", "abc"), NOTINT),
        (("EXPIRE", "cat", ""), NOTINT),
        (("EXPIRE", "cat", "1.5"), NOTINT),
        (("EXPIRE", "cat", "9223372036854775807"), invalid_expire("expire")),
        (("PEXPIRE", "cat", "9223372036854775807"), invalid_expire("pexpire")),
        (("EXPIREAT", "cat", "9223372036854775807"), invalid_expire("expireat")),
        (("EXPIRE", "cat", "-9223372036854775808"), invalid_expire("expire")),
        (("EXPIRE", "cat"), arity("expire")),
        (("EXPIRE",), arity("expire")),
        (("TTL",), arity("ttl")),
        (("TTL", "a", "b"), arity("ttl")),
        (("PTTL",), arity("pttl")),
        (("PERSIST",), arity("persist")),
        (("EXPIRETIME",), arity("expiretime")),
        (("PEXPIRETIME", "a", "b"), arity("pexpiretime")),
        (("PEXPIRETIME", "cat"), 4102444800000),  # nothing changed it
    ])
    # A time in the past (or 0, or negative) deletes the key, as in Redis;
    # options are checked first.
    for args in (("EXPIRE", "dog", "0"), ("EXPIRE", "dog", "-1"), ("PEXPIRE", "dog", "-100"),
                 ("PEXPIREAT", "dog", "1"), ("EXPIREAT", "dog", "0"),
                 ("EXPIRE", "dog", "-100", "XX"), ("EXPIRE", "dog", "-100", "LT")):
        assert c.cmd("SET", "dog", "animal", "EX", "1000") == "OK"
        assert c.cmd(*args) == 1, args
        assert c.cmd("EXISTS", "dog") == 0, args
    assert c.cmd("SET", "dog", "animal", "EX", "1000") == "OK"
    assert c.cmd("EXPIRE", "dog", "-100", "NX") == 0
    assert c.cmd("EXPIRE", "dog", "-100", "GT") == 0
    assert c.cmd("TTL", "dog") == 1000
    assert c.cmd("SET", "dog", "animal") == "OK"
    assert c.cmd("EXPIRE", "dog", "-100", "GT") == 0
    assert c.cmd("EXISTS", "dog") == 1
    c.close()


@akvtest.test("keyspace")
def test_databases_commands(env):
    c = flushed(env)
    other = env.daemon.client()
    run(c, [
        (("SELECT", "3"), "OK"),
        (("SET", "cat", "dog"), "OK"),
        (("SET", "one", "number", "EX", "100"), "OK"),
        (("DBSIZE",), 2),
        (("SELECT", "0"), "OK"),
        (("DBSIZE",), 0),
        (("GET", "cat"), None),
        (("SET", "cat", "animal"), "OK"),
        (("SWAPDB", "0", "3"), "OK"),
        (("DBSIZE",), 2),
        (("GET", "cat"), "dog"),
        (("TTL", "one"), 100),
        (("SWAPDB", "3", "3"), "OK"),
        (("SWAPDB", "0", "16"), RANGE),
        (("SWAPDB", "-1", "0"), RANGE),
        (("SWAPDB", "x", "0"), E("ERR invalid first DB index")),
        (("SWAPDB", "0", "x"), E("ERR invalid second DB index")),
        (("SWAPDB", "0"), arity("swapdb")),
        (("SELECT", "16"), RANGE),
        (("SELECT", "-1"), RANGE),
        (("SELECT", "abc"), NOTINT),
        (("SELECT", "1.5"), NOTINT),
        (("SELECT",), arity("select")),
        (("DBSIZE", "x"), arity("dbsize")),
        (("FLUSHDB",), "OK"),
        (("DBSIZE",), 0),
        (("SELECT", "3"), "OK"),
        (("DBSIZE",), 1),
        (("GET", "cat"), "animal"),
        (("FLUSHDB", "ASYNC"), "OK"),
        (("FLUSHDB", "sync"), "OK"),
        (("FLUSHDB", "NOW"), SYNTAX),
        (("FLUSHDB", "ASYNC", "SYNC"), SYNTAX),
        (("FLUSHALL", "NOW"), SYNTAX),
        (("SELECT", "0"), "OK"),
    ])
    # INFO keyspace: one line per database that has keys.
    run(c, [
        (("MSET", "cat", "animal", "dog", "animal", "one", "number"), "OK"),
        (("EXPIRE", "one", "100"), 1),
        (("SELECT", "7"), "OK"),
        (("SET", "ball", "toy", "PX", "100000"), "OK"),
        (("SELECT", "15"), "OK"),
        (("SET", "ball", "toy"), "OK"),
    ])
    assert keyspace(c) == {0: (3, 1), 7: (1, 1), 15: (1, 0)}, keyspace(c)
    assert c.cmd("INFO", "keyspace") == ("# Keyspace\r\n"
                                         "db0:keys=3,expires=1,avg_ttl=0\r\n"
                                         "db7:keys=1,expires=1,avg_ttl=0\r\n"
                                         "db15:keys=1,expires=0,avg_ttl=0\r\n")
    # A connection's database is its own.
    assert other.cmd("DBSIZE") == 3
    assert c.cmd("DBSIZE") == 1
    assert c.cmd("FLUSHALL") == "OK"
    assert keyspace(c) == {}
    assert other.cmd("DBSIZE") == 0
    c.close()
    other.close()


# ---------------------------------------------------------------------------
# 2. The same commands against redis-server.

# Commands on words the synthetic vocabulary has; the replies of both
# servers must be identical (absolute times far ahead so that TTLs match).
DIFF_COMMANDS = """
FLUSHALL
SET|cat|animal
SET|cat|dog|NX
SET|cat|dog|XX
GET|cat
SET|dog|cat|XX
SET|dog|cat|NX|GET
SET|dog|toy|NX|GET
SET|dog|toy|XX|GET
SET|dog|ball|GET
SET|dog|ball|NX|XX
SET|dog|ball|EX|10|PX|100
SET|dog|ball|EX|10|KEEPTTL
SET|dog|ball|KEEPTTL|EX|10
SET|dog|ball|EX|0
SET|dog|ball|EX|-1
SET|dog|ball|PX|0
SET|dog|ball|EX|abc
SET|dog|ball|EX
SET|dog|ball|EX|99999999999999999
SET|dog|ball|PX|9999999999999999999
SET|dog|ball|EXAT|0
SET|dog|ball|PXAT|1
GET|dog
SET|dog|ball|FOO
SET|dog|ball|GET|GET
SET|dog|ball|ex|100
TTL|dog
SET|dog|ball|KEEPTTL
TTL|dog
SET|dog|ball
TTL|dog
SET|dog|ball|EXAT|4102444800
EXPIRETIME|dog
PEXPIRETIME|dog
SET|dog|ball|PXAT|4102444800123
PEXPIRETIME|dog
EXPIRETIME|dog
SETNX|cat|ball
SETNX|ball|cat
GETSET|ball|toy
GETSET|one|toy
GETDEL|one
GETDEL|one
GETEX|cat
GETEX|cat|EX|100
TTL|cat
GETEX|cat|PERSIST
TTL|cat
GETEX|cat|PX|100000|PERSIST
GETEX|cat|PERSIST|EX|100
GETEX|cat|NX
GETEX|cat|EX|0
GETEX|cat|EX|-5
GETEX|seven|EX|100
GETEX|cat|EXAT|4102444800
EXPIRETIME|cat
GETEX|cat|KEEPTTL
GETEX|cat|GET
MSET|one|number|seven
MSET|one|number|seven|number
MGET|one|seven|king|cat
MSETNX|one|ball|king|ball
MGET|one|king
MSETNX|toy|ball|shape|sphere
MGET|toy|shape
MSET
MGET
DEL|toy|shape|king|toy
UNLINK|one|seven
EXISTS|one|cat|cat|king
RENAME|king|cat
RENAME|cat|king
GET|king
RENAME|king|king
RENAMENX|king|king
RENAMENX|queen|king
SET|queen|male
RENAMENX|king|queen
RENAMENX|king|hello
GET|hello
RENAME|hello|queen
GET|queen
SET|hello|world|EX|1000
RENAME|hello|world
TTL|world
COPY|world|foo
TTL|foo
COPY|world|foo
COPY|world|foo|REPLACE
COPY|world|world
COPY|world|world|DB|1
COPY|world|bar|DB|1
COPY|world|bar|DB|16
COPY|world|bar|DB|x
COPY|world|bar|DB
COPY|world|bar|FOO
COPY|female|bar
SELECT|1
GET|bar
TTL|bar
SELECT|0
MOVE|world|1
MOVE|world|1
MOVE|foo|0
MOVE|foo|16
MOVE|foo|x
MOVE|female|1
SET|bar|toy
MOVE|bar|1
EXISTS|bar
SELECT|1
DBSIZE
GET|world
SELECT|0
DBSIZE
SET|cat|animal
EXPIRE|cat|100
TTL|cat
EXPIRE|cat|100|NX
EXPIRE|cat|200|XX
EXPIRE|cat|50|GT
EXPIRE|cat|500|GT
EXPIRE|cat|600|LT
EXPIRE|cat|60|LT
TTL|cat
EXPIRE|cat|60|NX|XX
EXPIRE|cat|60|GT|LT
EXPIRE|cat|60|NX|GT
EXPIRE|cat|61|XX|GT
EXPIRE|cat|60|FOO
EXPIRE|cat|abc
EXPIRE|cat|9223372036854775807
EXPIRE|cat|9223372036854775
PEXPIRE|cat|9223372036854775807
EXPIREAT|cat|9223372036854775807
EXPIRE|cat|-9223372036854775808
EXPIRE|female|100
EXPIRE|female|100|XX
PERSIST|cat
PERSIST|cat
PERSIST|female
TTL|female
PTTL|female
EXPIRETIME|female
EXPIRE|cat|100|LT
PERSIST|cat
EXPIRE|cat|100|GT
TTL|cat
SET|dog|animal
PEXPIREAT|dog|4102444800000
PEXPIRETIME|dog
EXPIREAT|dog|4102444801
PEXPIRETIME|dog
PEXPIREAT|dog|4102444800999|LT
PEXPIRETIME|dog
EXPIRE|dog|0
EXISTS|dog
SET|dog|animal
PEXPIREAT|dog|1
EXISTS|dog
SET|dog|animal|EX|100
EXPIRE|dog|-100|NX
EXPIRE|dog|-100|GT
EXISTS|dog
EXPIRE|dog|-100|LT
EXISTS|dog
EXPIRE
TTL|a|b
SELECT|3
SET|cat|dog
DBSIZE
SELECT|0
DBSIZE
SWAPDB|0|3
DBSIZE
GET|cat
SWAPDB|0|16
SWAPDB|x|0
SWAPDB|0|x
SWAPDB|3|3
FLUSHDB
DBSIZE
SELECT|3
DBSIZE
FLUSHDB|ASYNC
FLUSHDB|NOW
FLUSHALL|NOW
SELECT|-1
SELECT|16
SELECT|abc
SELECT|0
MULTI
MULTI
SET|cat|dog
GET|cat
EXEC
EXEC
DISCARD
MULTI
DISCARD
MULTI
SET|cat
SET|cat|dog
EXEC
GET|cat
MULTI
SET|cat|dog|EX|abc
SET|cat|dog|EX|-5
EXPIRE|cat|abc
RENAME|female|male
GET|cat
EXEC
MULTI
WATCH|cat
EXEC
WATCH|cat
UNWATCH
WATCH
MULTI
PING
ECHO|hi
SELECT|2
SET|cat|animal
DBSIZE
SELECT|0
EXEC
SELECT|2
GET|cat
SELECT|0
MULTI
EXEC
MULTI
SELECT|99
EXEC
FLUSHALL
"""


class UnixClient(Client):
    def __init__(self, path, timeout=akvtest.IO_TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""


def redis_server(env):
    """A redis-server on a Unix socket in the work directory, or Skip."""
    exe = shutil.which("redis-server")
    if not exe:
        raise akvtest.Skip("redis-server is not installed (Debian: redis-server)")
    path = os.path.join(env.workdir, "redis.sock")
    proc = subprocess.Popen([exe, "--port", "0", "--unixsocket", path, "--save", "",
                             "--appendonly", "no", "--dir", env.workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            return proc, UnixClient(path)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("redis-server did not start")
            time.sleep(0.02)


@akvtest.test("keyspace")
def test_against_redis_server(env):
    proc, r = redis_server(env)
    try:
        a = env.daemon.client()
        diffs = []
        cmds = [line.split("|") for line in DIFF_COMMANDS.split("\n") if line]
        for args in cmds:
            want, got = r.cmd(*args), a.cmd(*args)
            if want != got:
                diffs.append("%s: redis-server %r, attnkvd %r" % ("|".join(args), want, got))
        print("     %d commands, %d different replies" % (len(cmds), len(diffs)))
        assert not diffs, "\n".join(diffs)
        # The unknown command's text differs on purpose (attnkvd points to
        # HELP); both start the same way and both fail a transaction.
        assert is_err(r.cmd("FROB"), "ERR unknown command 'FROB'")
        assert is_err(a.cmd("FROB"), "ERR unknown command 'FROB'")
        a.close()
        r.close()
    finally:
        proc.kill()
        proc.wait()



# ---------------------------------------------------------------------------
# 3. Expiry.


def ref_explain(env, store, text, n=100, attn="dot", tau=0.1):
    env.ref.store = dict(store)
    return [(k, v, w) for k, v, w in env.ref.explain(text, n, attn, tau)]


def same_explain(got, want):
    """EXPLAIN's reply against the reference: the same keys in the same
    order (ties aside) and the same weights."""
    assert sorted(e[0] for e in got) == sorted(k for k, _, _ in want), (got, want)
    wmap = {k: (v, w) for k, v, w in want}
    for k, v, w in got:
        assert wmap[k][0] == v, (k, v, wmap[k])
        assert abs(float(w) - wmap[k][1]) <= 1e-6 * max(1.0, wmap[k][1]), (k, w, wmap[k])


@akvtest.test("keyspace")
def test_expiry_to_the_millisecond(env):
    """Keys with times 300 to 1,200 ms ahead, probed about every millisecond
    with GET, EXISTS, PTTL, MGET, KEYS, SCAN, EXPLAIN and QUERY: a reply
    received before a key's time must show it, a request sent at or after
    its time must not (the daemon's clock and time.time() are the same wall
    clock), PTTL must lie between the bounds the send and receive times
    give, and EXPLAIN's weights must be the reference's over exactly the
    keys it shows."""
    c = flushed(env)
    fixed = {"w0500": "w0501", "w0502": "w0503 w0504", "dog": "animal"}
    for k, v in fixed.items():
        assert c.cmd("SET", k, v) == "OK"
    t0 = now_ms()
    when = {}  # key -> (value, expiry ms)
    for i in range(7):
        k, v = "w%04d" % (600 + i), "w%04d" % (700 + i)
        when[k] = (v, t0 + 300 + 150 * i)
        assert c.cmd("SET", k, v, "PXAT", when[k][1]) == "OK"
    # "cat" with cosine attention on "cat": weight near 1 while it lives.
    ts = time.time() * 1000
    assert c.cmd("SET", "cat", "animal", "PX", "500") == "OK"
    tr = time.time() * 1000
    # Present while the reply comes before the earliest possible time; gone
    # from a request sent after the latest.
    cat_lo, cat_hi = int(ts) + 500, tr + 500
    end = max(e for _, e in when.values()) + 150
    counts = {"GET": 0, "EXISTS": 0, "PTTL": 0, "MGET": 0, "EXPLAIN": 0, "QUERY": 0, "KEYS": 0,
              "SCAN": 0}
    seen_cat_dominant = seen_cat_gone = False
    i = 0
    while now_ms() < end:
        kind = list(counts)[i % len(counts)]
        i += 1
        k = "w%04d" % (600 + (i // len(counts)) % 7)
        v, exp = when[k]
        t_send = time.time() * 1000
        if kind == "GET":
            r = c.cmd("GET", k)
        elif kind == "EXISTS":
            r = c.cmd("EXISTS", k)
        elif kind == "PTTL":
            r = c.cmd("PTTL", k)
        elif kind == "MGET":
            r = c.cmd("MGET", *sorted(when))
        elif kind == "KEYS":
            r = c.cmd("KEYS", "w06*")
        elif kind == "SCAN":
            r = c.cmd("SCAN", "0", "MATCH", "w06*", "COUNT", "1000")
            assert r[0] == "0", r  # a small table: one call
            r = r[1]
        elif kind == "EXPLAIN":
            r = c.cmd("EXPLAIN", "cat", "COUNT", "100", "ATTENTION", "cosine")
        else:
            r = c.cmd("QUERY", "w0600 cat", "COUNT", "3")
        t_recv = time.time() * 1000
        counts[kind] += 1

        def must_live(e):
            return t_recv < e

        def must_be_gone(e):
            return t_send >= e

        if kind in ("GET", "EXISTS", "PTTL"):
            live = {"GET": r == v, "EXISTS": r == 1, "PTTL": isinstance(r, int) and r >= 0}[kind]
            gone = {"GET": r is None, "EXISTS": r == 0, "PTTL": r == -2}[kind]
            assert live or gone, (kind, k, r)
            assert not (must_live(exp) and gone), "%s %s gone %.1f ms before its time" % (
                kind, k, exp - t_recv)
            assert not (must_be_gone(exp) and live), "%s %s answered %.1f ms after its time" % (
                kind, k, t_send - exp)
            if kind == "PTTL" and live:
                # PTTL = exp - the daemon's now, which lies in [send, recv].
                assert exp - t_recv - 1 <= r <= exp - int(t_send), (r, exp, t_send, t_recv)
        elif kind in ("KEYS", "SCAN"):
            for key, (_, e) in when.items():
                assert not (must_live(e) and key not in r), (kind, key, e - t_recv)
                assert not (must_be_gone(e) and key in r), (kind, key, t_send - e)
        elif kind == "MGET":
            for (key, (val, e)), got in zip(sorted(when.items()), r):
                assert got in (val, None), (key, got)
                assert not (must_live(e) and got is None), ("MGET", key, e - t_recv)
                assert not (must_be_gone(e) and got is not None), ("MGET", key, t_send - e)
        else:
            shown = explain_keys(r) if kind == "EXPLAIN" else None
            live_now = {key for key, (_, e) in when.items() if must_live(e)}
            gone_now = {key for key, (_, e) in when.items() if must_be_gone(e)}
            if t_recv < cat_lo:
                live_now.add("cat")
            if t_send >= cat_hi:
                gone_now.add("cat")
            undecided = set(when) | {"cat"}
            undecided -= live_now | gone_now
            if kind == "EXPLAIN":
                assert live_now <= set(shown), ("EXPLAIN lost", live_now - set(shown))
                assert not (gone_now & set(shown)), ("EXPLAIN shows expired", gone_now & set(
                    shown))
                store = dict(fixed)
                store.update({key: when[key][0] for key in shown if key in when})
                if "cat" in shown:
                    store["cat"] = "animal"
                same_explain(r, ref_explain(env, store, "cat", attn="cosine"))
                if "cat" in shown:
                    assert shown[0] == "cat" and float(r[0][2]) > 0.9, r
                    seen_cat_dominant = True
                elif t_send >= cat_hi:
                    seen_cat_gone = True
            elif not undecided:
                store = dict(fixed)
                store.update({key: when[key][0] for key in live_now if key in when})
                if "cat" in live_now:
                    store["cat"] = "animal"
                env.ref.store = store
                want = [w for w, _ in env.ref.query("w0600 cat", k=3)]
                assert r == want, (r, want, sorted(store))
        time.sleep(0.001)
    assert seen_cat_dominant and seen_cat_gone
    assert c.cmd("DBSIZE") in (3, 3 + len(when) + 1)  # the cycle may not have run yet
    assert sorted(explain_keys(c.cmd("EXPLAIN", "cat", "COUNT", "100"))) == sorted(fixed)
    print("     probes: %s" % ", ".join("%s %d" % kv for kv in counts.items()))
    c.close()


@akvtest.test("keyspace")
def test_active_expiry(env):
    """Keys nobody touches after setting them: the active cycle deletes them
    (INFO keyspace's counts drop, expired_keys grows by exactly their number,
    the AOF gets a DEL for each), and leaves the others alone."""
    c = flushed(env)
    before = expired_keys(c)
    dels_before = check_aof(env.daemon.aof)["DEL"]
    pipe = [Client.encode("SET", "w%04d" % i, "cat", "PX", 800) for i in range(500)]
    pipe += [Client.encode("SET", "w%04d" % i, "dog", "PX", 100000) for i in range(500, 550)]
    pipe += [Client.encode("SET", "w%04d" % i, "dog") for i in range(550, 560)]
    pipe += [Client.encode("SELECT", 4)]
    pipe += [Client.encode("SET", "w%04d" % i, "ball", "PX", 800) for i in range(300)]
    pipe += [Client.encode("SELECT", 0)]
    c.send(b"".join(pipe))
    assert all(c.read() == "OK" for _ in pipe)
    t0 = time.monotonic()
    assert keyspace(c) == {0: (560, 550), 4: (300, 300)}, keyspace(c)
    wait_until(lambda: keyspace(c) == {0: (60, 50)}, timeout=10, what="the active cycle")
    took = time.monotonic() - t0
    assert expired_keys(c) - before == 800
    print("     800 keys deleted by the active cycle %.2f s after they were set (800 ms TTL)" % took)
    wait_until(lambda: check_aof(env.daemon.aof)["DEL"] - dels_before == 800, timeout=10,
               what="800 DELs in the AOF")
    assert c.cmd("DBSIZE") == 60
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("keyspace")
def test_lazy_expiry_counts(env):
    """A lookup deletes a key whose time has come (expired_keys + 1), before
    the cycle gets to it; a key that is written over is not counted."""
    c = flushed(env)
    before = expired_keys(c)
    assert c.cmd("SET", "cat", "animal", "PX", 300) == "OK"
    assert c.cmd("SET", "dog", "animal", "PX", 300) == "OK"
    assert c.cmd("SET", "dog", "toy") == "OK"
    time.sleep(0.32)
    assert c.cmd("GET", "cat") is None
    assert c.cmd("GET", "dog") == "toy"
    wait_until(lambda: expired_keys(c) - before == 1, what="expired_keys")
    time.sleep(0.2)
    assert expired_keys(c) - before == 1
    assert keyspace(c) == {0: (1, 0)}
    c.close()


@akvtest.test("keyspace")
def test_expiry_survives_restart(env):
    d = dstart(env)
    c = d.client()
    far = int(time.time()) + 86400
    run(c, [
        (("SET", "cat", "animal", "PX", 60000), "OK"),
        (("SET", "dog", "animal", "EXAT", far), "OK"),
        (("SET", "one", "number"), "OK"),
        (("SET", "ball", "toy", "PX", 700), "OK"),
        (("SET", "king", "queen", "EX", 1000), "OK"),
        (("PERSIST", "king"), 1),
        (("SET", "male", "gender"), "OK"),
        (("GETEX", "male", "EX", 100), "gender"),
        (("SET", "seven", "number", "PX", 1000), "OK"),
        (("PEXPIRE", "seven", 100000), 1),
        (("SELECT", 2), "OK"),
        (("SET", "cat", "toy", "PX", 90000), "OK"),
        (("SELECT", 0), "OK"),
    ])
    keys = ["cat", "dog", "one", "ball", "king", "male", "seven"]
    pexp = {k: c.cmd("PEXPIRETIME", k) for k in keys}
    pttl = {k: c.cmd("PTTL", k) for k in keys}
    assert pexp["ball"] > 0 and pexp["one"] == -1 and pexp["king"] == -1
    assert pexp["dog"] == far * 1000
    c.cmd("SELECT", 2)
    pexp2 = c.cmd("PEXPIRETIME", "cat")
    c.close()
    t_kill = time.monotonic()
    kill9(d)
    # ball's time passes while the daemon is down.
    time.sleep(max(0.0, (pexp["ball"] - now_ms()) / 1000.0 + 0.1))
    d2 = restart(env, d)
    m = re.search(r"replayed (\d+) records .*: (\d+) entries, (\d+) dropped as expired", d2.text())
    assert m and int(m.group(3)) >= 1, d2.text()  # ball (and seven's first time)
    c = d2.client()
    elapsed = (time.monotonic() - t_kill) * 1000
    for k in keys:
        want = -2 if k == "ball" else pexp[k]
        assert c.cmd("PEXPIRETIME", k) == want, (k, c.cmd("PEXPIRETIME", k), want)
        if pexp[k] > 0 and k != "ball":
            left = c.cmd("PTTL", k)
            assert pttl[k] - elapsed - 1000 <= left <= pttl[k], (k, left, pttl[k], elapsed)
    assert c.cmd("GET", "ball") is None and c.cmd("GET", "male") == "gender"
    assert keyspace(c) == {0: (6, 4), 2: (1, 1)}, keyspace(c)
    c.cmd("SELECT", 2)
    assert c.cmd("PEXPIRETIME", "cat") == pexp2
    c.cmd("SELECT", 0)
    # A rewrite keeps the times; a key due soon is dropped when due.
    assert c.cmd("SET", "hello", "world", "PX", 1500) == "OK"
    pexp["hello"] = c.cmd("PEXPIRETIME", "hello")
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    counts = check_aof(d2.aof)
    assert counts == {"records": 0, "SET": 0, "DEL": 0, "FLUSHALL": 0, "FLUSHDB": 0,
                      "SWAPDB": 0, "MULTI": 0}, counts
    # The rewrite's snapshot preamble (aof-use-rdb-preamble) holds the 8
    # entries, times included: its begin and end records and a chunk for
    # each of the two databases.
    r = run_tool([check_tool(), d2.aof])
    assert "8 entries (0 payloads, 6 with an expiry time) in 2 chunks" in r.stdout, r.stdout
    c.close()
    kill9(d2)
    time.sleep(max(0.0, (pexp["hello"] - now_ms()) / 1000.0 + 0.1))
    d3 = restart(env, d2)
    assert re.search(r"replayed 4 records .*: 7 entries, 1 dropped as expired; 7 entries from a "
                     r"snapshot preamble", d3.text()), d3.text()
    c = d3.client()
    for k in keys:
        want = -2 if k == "ball" else pexp[k]
        assert c.cmd("PEXPIRETIME", k) == want, k
    assert c.cmd("GET", "hello") is None
    c.close()
    d3.check_clean_exit()
    assert_no_sanitizer_report(d3)


# ---------------------------------------------------------------------------
# 4. Databases.


@akvtest.test("keyspace")
def test_databases_attend_apart(env):
    """QUERY and EXPLAIN in a database attend to its keys only."""
    c = flushed(env)
    stores = {
        0: {"cat": "animal", "dog": "animal", "one": "number"},
        1: {"ball": "toy", "sphere": "shape"},
        9: {"king queen": "male female", "cat": "w0001 w0002"},
    }
    for db, store in stores.items():
        assert c.cmd("SELECT", db) == "OK"
        for k, v in store.items():
            assert c.cmd("SET", k, v) == "OK"
    for db, store in stores.items():
        assert c.cmd("SELECT", db) == "OK"
        for text in ("cat", "toy shape", "w0003"):
            same_explain(c.cmd("EXPLAIN", text, "COUNT", 10), ref_explain(env, store, text))
            env.ref.store = dict(store)
            want = [w for w, _ in env.ref.query(text, k=5)]
            assert c.cmd("QUERY", text) == want, (db, text)
    assert c.cmd("SELECT", 5) == "OK"
    assert c.cmd("QUERY", "cat") == [] and c.cmd("EXPLAIN", "cat") == []
    c.close()


@akvtest.test("keyspace")
def test_databases_batched_queries(env):
    """Pipelined QUERYs and EXPLAINs from four databases at once, which the
    pool runs in shared batches: each answers from its own database, as
    the reference does (and some keys expire meanwhile)."""
    c = flushed(env)
    stores = {}
    for db in range(4):
        store = {"w%04d" % (db * 100 + i): "w%04d w%04d" % (i, 1000 + db) for i in range(50)}
        store["cat"] = "w%04d" % (1500 + db)
        stores[db] = store
        assert c.cmd("SELECT", db) == "OK"
        assert c.cmd("MSET", *[x for kv in store.items() for x in kv]) == "OK"
        assert c.cmd("SET", "dog", "animal", "PX", 200) == "OK"  # gone before the queries
    time.sleep(0.25)
    before = int(info_fields(c, "stats")["query_batch_max"])
    asks = [("EXPLAIN", "cat", "COUNT", "20"), ("QUERY", "cat dog", "COUNT", "5"),
            ("EXPLAIN", "w0001 ball", "COUNT", "5", "ATTENTION", "cosine")]
    want = {}
    for db, store in stores.items():
        env.ref.store = dict(store)
        want[db] = [ref_explain(env, store, "cat", n=20),
                    [w for w, _ in env.ref.query("cat dog", k=5)],
                    ref_explain(env, store, "w0001 ball", n=5, attn="cosine")]
    errors = []

    def client(db):
        try:
            x = env.daemon.client()
            assert x.cmd("SELECT", db) == "OK"
            x.send(b"".join(Client.encode(*a) for _ in range(100) for a in asks))
            for i in range(300):
                r = x.read()
                w = want[db][i % 3]
                if i % 3 == 1:
                    assert r == w, (db, r, w)
                else:
                    same_explain(r, w)
            x.close()
        except Exception as e:
            errors.append("db %d: %r" % (db, e))

    threads = [threading.Thread(target=client, args=(db,)) for db in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    batch_max = int(info_fields(c, "stats")["query_batch_max"])
    print("     1,200 queries from 4 databases; largest batch %d" % max(before, batch_max))
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("keyspace")
def test_swapdb_and_move_as_others_see_them(env):
    a, b, x = flushed(env), env.daemon.client(), env.daemon.client()
    assert b.cmd("SELECT", 1) == "OK"
    assert a.cmd("SET", "cat", "animal") == "OK"
    assert b.cmd("SET", "dog", "toy", "EX", 500) == "OK"
    # x, in database 2, swaps 0 and 1: a and b keep their numbers and see
    # each other's data, queries included.
    assert x.cmd("SELECT", 2) == "OK"
    assert x.cmd("SWAPDB", 0, 1) == "OK"
    assert a.cmd("GET", "dog") == "toy" and a.cmd("TTL", "dog") == 500
    assert a.cmd("GET", "cat") is None
    assert explain_keys(a.cmd("EXPLAIN", "cat")) == ["dog"]
    assert b.cmd("GET", "cat") == "animal"
    assert explain_keys(b.cmd("EXPLAIN", "dog")) == ["cat"]
    assert x.cmd("SWAPDB", 1, 0) == "OK"
    assert a.cmd("GET", "cat") == "animal"
    # MOVE: the key and its time go; the source no longer attends to it.
    assert b.cmd("MOVE", "dog", 0) == 1
    assert a.cmd("TTL", "dog") == 500
    assert sorted(explain_keys(a.cmd("EXPLAIN", "cat"))) == ["cat", "dog"]
    assert b.cmd("EXPLAIN", "cat") == [] and b.cmd("DBSIZE") == 0
    assert b.cmd("SET", "cat", "toy") == "OK"
    assert b.cmd("MOVE", "cat", 0) == 0  # database 0 has one
    assert a.cmd("GET", "cat") == "animal" and b.cmd("GET", "cat") == "toy"
    for c in (a, b, x):
        c.close()


def db_contents(c, dbs):
    out = {}
    for db in dbs:
        assert c.cmd("SELECT", db) == "OK"
        out[db] = {k: (c.cmd("GET", k), c.cmd("PEXPIRETIME", k)) for k in c.cmd("KEYS", "*")}
    assert c.cmd("SELECT", 0) == "OK"
    return out


@akvtest.test("keyspace")
def test_databases_in_the_aof(env):
    d = dstart(env)
    c = d.client()
    far = now_ms() + 3600000
    for db in (0, 1, 5, 15):
        assert c.cmd("SELECT", db) == "OK"
        assert c.cmd("MSET", "cat", "w%04d" % db, "one", "number") == "OK"
        assert c.cmd("SET", "dog", "w%04d" % (db + 100), "PXAT", far + db) == "OK"
    assert c.cmd("SELECT", 0) == "OK"
    assert c.cmd("SWAPDB", 1, 5) == "OK"
    assert c.cmd("MOVE", "one", 3) == 1
    assert c.cmd("COPY", "dog", "w0009", "DB", 15) == 1
    assert c.cmd("SELECT", 15) == "OK"
    assert c.cmd("RENAME", "cat", "king") == "OK"
    assert c.cmd("SELECT", 0) == "OK"
    assert c.cmd("SWAPDB", 3, 4) == "OK"
    dbs = list(range(16))
    want = db_contents(c, dbs)
    assert want[4] == {"one": ("number", -1)} and want[3] == {}
    assert want[1]["cat"][0] == "w0005" and want[5]["dog"] == ("w0101", far + 1)
    assert want[15]["w0009"] == ("w0100", far) and "king" in want[15]
    c.close()
    kill9(d)
    d2 = restart(env, d)
    c = d2.client()
    assert db_contents(c, dbs) == want
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    n = sum(len(v) for v in want.values())
    counts = check_aof(d2.aof)
    # The rewrite's snapshot preamble holds the entries (aof-use-rdb-preamble).
    assert counts["records"] == 0 and counts["SWAPDB"] == 0, counts
    r = run_tool([check_tool(), d2.aof])
    m = re.search(r"snapshot preamble \(offsets \d+ to \d+\): (\d+) entries", r.stdout)
    assert m and int(m.group(1)) == n, r.stdout
    c.close()
    d2.check_clean_exit()
    d3 = restart(env, d2)
    c = d3.client()
    assert db_contents(c, dbs) == want
    c.close()
    d3.check_clean_exit()
    assert_no_sanitizer_report(d3)


@akvtest.test("keyspace")
def test_rewrite_while_databases_change(env):
    """SWAPDB, FLUSHDB, MOVE, new times and a transaction while a rewrite
    is writing its snapshot (slowed to 0.5 ms an entry): the new file
    replays to exactly what the daemon had."""
    d = dstart(env, extra_env={"AKV_TEST_REWRITE_DELAY_US": "500"})
    c = d.client()
    far = now_ms() + 3600000
    for db in (0, 1, 2):
        assert c.cmd("SELECT", db) == "OK"
        c.send(b"".join(Client.encode("SET", "w%04d" % i, "w%04d" % (i + db), "PXAT", far + i)
                        for i in range(300)))
        assert all(c.read() == "OK" for _ in range(300))
    assert c.cmd("SELECT", 0) == "OK"
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    assert info_fields(c, "persistence")["aof_rewrite_in_progress"] == "1"
    run(c, [
        (("SWAPDB", 0, 1), "OK"),
        (("MOVE", "w0001", 2), 0),
        (("MOVE", "w0001", 5), 1),
        (("SELECT", 2), "OK"),
        (("FLUSHDB",), "OK"),
        (("SET", "cat", "animal", "PX", 3600000), "OK"),
        (("SELECT", 0), "OK"),
        (("PERSIST", "w0002"), 1),
        (("EXPIRE", "w0003", 5000), 1),
        (("MULTI",), "OK"),
        (("SWAPDB", 1, 3), "QUEUED"),
        (("SET", "dog", "toy"), "QUEUED"),
        (("COPY", "dog", "dog", "DB", 3), "QUEUED"),
        (("EXEC",), ["OK", "OK", 1]),
    ])
    assert info_fields(c, "persistence")["aof_rewrite_in_progress"] == "1", \
        "the rewrite ended too soon to be caught"
    want = db_contents(c, range(16))
    wait_rewrite(c, 1)
    c.close()
    kill9(d)
    d2 = restart(env, d)
    c = d2.client()
    assert db_contents(c, range(16)) == want
    c.close()
    d2.check_clean_exit()
    assert_no_sanitizer_report(d2)


@akvtest.test("keyspace")
def test_databases_setting(env):
    d = dstart(env, "databases 4\n")
    c = d.client()
    assert c.cmd("CONFIG", "GET", "databases") == ["databases", "4"]
    run(c, [
        (("SELECT", 3), "OK"),
        (("SET", "cat", "animal"), "OK"),
        (("SELECT", 4), RANGE),
        (("MOVE", "cat", 4), RANGE),
        (("COPY", "cat", "dog", "DB", 4), RANGE),
        (("SWAPDB", 0, 4), RANGE),
        (("SWAPDB", 3, 0), "OK"),
        (("SELECT", 0), "OK"),
        (("GET", "cat"), "animal"),
    ])
    assert keyspace(c) == {0: (1, 0)}
    c.close()
    d.check_clean_exit()
    # An AOF written with 16 databases that uses database 10 does not load
    # with 4: the daemon refuses to start and says why.
    d = dstart(env)
    c = d.client()
    assert c.cmd("SET", "one", "number") == "OK"
    assert c.cmd("SELECT", 10) == "OK"
    assert c.cmd("SET", "cat", "animal") == "OK"
    c.close()
    d.check_clean_exit()
    bad = dstart(env, "databases 4\n", datadir=d.datadir, expect_start=False)
    assert bad.proc.wait(timeout=60) != 0
    bad.log.close()
    t = bad.text()
    assert "cannot load the append-only file" in t and \
        "a PUT record for database 10, but 'databases' is 4; raise 'databases' to load " \
        "this file" in t, t
    assert "ready:" not in t
    # With enough databases it loads.
    ok = dstart(env, "databases 11\n", datadir=d.datadir)
    c = ok.client()
    assert c.cmd("SELECT", 10) == "OK" and c.cmd("GET", "cat") == "animal"
    c.close()
    ok.check_clean_exit()



# ---------------------------------------------------------------------------
# 5. Transactions.

EXECABORT = E("EXECABORT Transaction discarded because of previous errors.")


@akvtest.test("keyspace")
def test_multi_replies(env):
    c = flushed(env)
    run(c, [
        (("EXEC",), E("ERR EXEC without MULTI")),
        (("DISCARD",), E("ERR DISCARD without MULTI")),
        (("MULTI",), "OK"),
        (("MULTI",), E("ERR MULTI calls can not be nested")),
        (("SET", "cat", "animal"), "QUEUED"),
        (("GET", "cat"), "QUEUED"),
        (("WATCH", "cat"), E("ERR WATCH inside MULTI is not allowed")),
        (("EXEC",), ["OK", "animal"]),
        (("EXEC",), E("ERR EXEC without MULTI")),
        (("MULTI",), "OK"),
        (("EXEC",), []),
        (("MULTI",), "OK"),
        (("SET", "cat", "dog"), "QUEUED"),
        (("DISCARD",), "OK"),
        (("GET", "cat"), "animal"),
        (("DISCARD",), E("ERR DISCARD without MULTI")),
        # Errors at queue time fail the whole transaction.
        (("MULTI",), "OK"),
        (("SET", "cat"), arity("set")),
        (("SET", "cat", "dog"), "QUEUED"),
        (("EXEC",), EXECABORT),
        (("GET", "cat"), "animal"),
        (("EXEC",), E("ERR EXEC without MULTI")),
        (("MULTI",), "OK"),
        (("SET", "cat", "dog"), "QUEUED"),
        (("FROB", "x"), lambda r: is_err(r, "ERR unknown command 'FROB'")),
        (("EXEC",), EXECABORT),
        (("GET", "cat"), "animal"),
        # Errors when EXEC runs the command do not stop the others.
        (("MULTI",), "OK"),
        (("SET", "cat", "dog", "EX", "abc"), "QUEUED"),
        (("SET", "cat", "dog", "EX", "-5"), "QUEUED"),
        (("EXPIRE", "cat", "abc"), "QUEUED"),
        (("RENAME", "nope", "x"), "QUEUED"),
        (("SET", "cat", "zzzzqqq"), "QUEUED"),
        (("SET", "cat", "dog"), "QUEUED"),
        (("GET", "cat"), "QUEUED"),
    ])
    r = c.cmd("EXEC")
    assert r[:4] == [NOTINT, invalid_expire("set"), NOTINT, NOKEY], r
    assert is_err(r[4], "unknown word 'zzzzqqq'") and r[5:] == ["OK", "dog"], r
    # SELECT inside a transaction moves the commands after it, and stays.
    run(c, [
        (("MULTI",), "OK"),
        (("SELECT", "2"), "QUEUED"),
        (("SET", "cat", "toy"), "QUEUED"),
        (("DBSIZE",), "QUEUED"),
        (("SELECT", "99"), "QUEUED"),
        (("PING",), "QUEUED"),
        (("ECHO", "hi"), "QUEUED"),
        (("EXEC",), ["OK", "OK", 1, RANGE, "PONG", "hi"]),
        (("GET", "cat"), "toy"),
        (("SELECT", "0"), "OK"),
        (("GET", "cat"), "dog"),
        # Inline commands and QUERY/EXPLAIN/NEIGHBORS/KEYS queue too.
        (("MULTI",), "OK"),
        (("KEYS", "*"), "QUEUED"),
        (("NEIGHBORS", "cat", "COUNT", "1"), "QUEUED"),
        (("QUERY", "cat", "COUNT", "1"), "QUEUED"),
        (("EXPLAIN", "cat"), "QUEUED"),
        (("EXEC",), lambda r: r[0] == ["cat"] and r[1] == ["cat"] and len(r[2]) == 1 and
         explain_keys(r[3]) == ["cat"]),
    ])
    assert c.inline("MULTI") == "OK"
    assert c.inline("SET cat animal") == "QUEUED"
    assert c.inline("EXEC") == ["OK"]
    # A failed EXEC (EXECABORT) forgets the watched keys too.
    other = env.daemon.client()
    run(c, [
        (("WATCH", "cat"), "OK"),
        (("MULTI",), "OK"),
        (("SET", "cat"), arity("set")),
        (("EXEC",), EXECABORT),
    ])
    assert other.cmd("SET", "cat", "dog") == "OK"
    run(c, [(("MULTI",), "OK"), (("GET", "cat"), "QUEUED"), (("EXEC",), ["dog"])])
    other.close()
    c.close()


def watch_case(env, setup, other_cmds, want_abort, own=()):
    """c WATCHes cat (after setup on c), other runs other_cmds, c runs own,
    then MULTI, SET one number, EXEC: None when aborted."""
    c, o = flushed(env), env.daemon.client()
    for args in setup:
        c.cmd(*args)
    assert c.cmd("WATCH", "cat") == "OK"
    for args in other_cmds:
        r = o.cmd(*args)
        assert not isinstance(r, RespError), (args, r)
    for args in own:
        c.cmd(*args)
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "one", "number") == "QUEUED"
    r = c.cmd("EXEC")
    assert r == (None if want_abort else ["OK"]), (setup, other_cmds, own, r)
    assert c.cmd("EXISTS", "one") == (0 if want_abort else 1)
    # The watch is over either way.
    assert o.cmd("SELECT", 0) == "OK" and o.cmd("SET", "cat", "toy") == "OK"
    assert c.cmd("MULTI") == "OK" and c.cmd("GET", "cat") == "QUEUED"
    assert c.cmd("EXEC") == ["toy"]
    c.close()
    o.close()


@akvtest.test("keyspace")
def test_watch(env):
    have = [("SET", "cat", "animal")]
    cases = [
        # (setup on c, commands of another client, aborts?)
        (have, [("SET", "cat", "dog")], True),
        (have, [("SET", "cat", "animal")], True),  # same value: still a write
        ([], [("SET", "cat", "dog")], True),  # absent when watched
        (have, [("SET", "dog", "cat")], False),
        (have, [("SELECT", 1), ("SET", "cat", "dog")], False),  # another database
        (have, [("DEL", "cat")], True),
        (have, [("UNLINK", "cat")], True),
        (have, [("GETDEL", "cat")], True),
        ([], [("DEL", "cat")], False),  # deleting nothing changes nothing
        (have, [("EXPIRE", "cat", 100)], True),
        (have + [("EXPIREAT", "cat", 4102444800)], [("EXPIREAT", "cat", 4102444800)], True),
        (have, [("PERSIST", "cat")], False),  # no time to remove
        (have + [("EXPIRE", "cat", 100)], [("PERSIST", "cat")], True),
        (have, [("GETEX", "cat")], False),
        (have, [("GETEX", "cat", "PERSIST")], False),
        (have, [("GETEX", "cat", "EX", 100)], True),
        (have, [("GET", "cat"), ("EXISTS", "cat"), ("TTL", "cat")], False),
        (have, [("SET", "cat", "dog", "NX")], False),
        (have, [("SET", "cat", "dog", "XX")], True),
        (have, [("SETNX", "cat", "dog")], False),
        (have, [("MSET", "dog", "cat", "cat", "dog")], True),
        (have, [("MSETNX", "dog", "cat", "cat", "dog")], False),
        (have, [("RENAME", "cat", "dog")], True),
        (have, [("SET", "dog", "toy"), ("RENAME", "dog", "cat")], True),
        (have, [("SET", "dog", "toy"), ("RENAMENX", "dog", "cat")], False),
        (have, [("COPY", "cat", "dog")], False),
        (have, [("SET", "dog", "toy"), ("COPY", "dog", "cat", "REPLACE")], True),
        (have, [("COPY", "cat", "cat", "DB", 1)], False),
        (have, [("MOVE", "cat", 1)], True),
        (have, [("FLUSHALL",)], True),
        ([], [("FLUSHALL",)], False),  # absent: as Redis 7
        (have, [("FLUSHDB",)], True),
        (have, [("SELECT", 3), ("FLUSHDB",)], False),
        ([], [("FLUSHDB",)], False),
        (have, [("SWAPDB", 0, 1)], True),
        ([], [("SELECT", 1), ("SET", "cat", "dog"), ("SWAPDB", 0, 1)], True),  # appears
        ([], [("SWAPDB", 0, 1)], False),
        (have, [("SWAPDB", 2, 3)], False),
        (have, [("MULTI",), ("SET", "cat", "dog"), ("EXEC",)], True),
        (have, [("MULTI",), ("SET", "cat", "dog"), ("DISCARD",)], False),
    ]
    for setup, other, aborts in cases:
        watch_case(env, setup, other, aborts)
    # The watching client's own writes count too; UNWATCH forgets.
    watch_case(env, have, [], True, own=[("SET", "cat", "dog")])
    watch_case(env, have, [("SET", "cat", "dog")], False, own=[("UNWATCH",)])
    watch_case(env, have, [], False, own=[("GET", "cat")])
    print("     %d WATCH cases" % (len(cases) + 3))


@akvtest.test("keyspace")
def test_watch_against_redis_server(env):
    """Random writes, flushes, swaps and moves by another client between
    WATCH and EXEC, on redis-server and attnkvd alike: attnkvd must abort
    every EXEC that Redis aborts, and may abort one Redis runs only after
    two swaps of the watched database, or a swap and a flush of it (where
    it does not look, by design: cmd-multi.c)."""
    import random
    proc, r = redis_server(env)
    rnd = random.Random(int(os.environ.get("AKV_TEST_SEED", "5")))
    try:
        servers = [(r, UnixClient(r.sock.getpeername())), (env.daemon.client(),
                                                           env.daemon.client())]
        spurious = 0
        cases = int(os.environ.get("AKV_TEST_WATCH_CASES", "400"))
        for trial in range(cases):
            ops = [("SELECT", 0)]
            for _ in range(rnd.randrange(1, 5)):
                k = rnd.choice(["cat", "cat", "dog"])
                ops.append(rnd.choice([
                    ("SELECT", rnd.randrange(3)), ("SET", k, "toy"), ("DEL", k),
                    ("PEXPIREAT", k, 1), ("EXPIRE", k, 100), ("FLUSHDB",), ("FLUSHALL",),
                    ("SWAPDB", rnd.randrange(3), rnd.randrange(3)), ("MOVE", k, rnd.randrange(3)),
                    ("RENAME", "dog", "cat"), ("GET", k), ("COPY", "dog", "cat", "REPLACE"),
                    ("SET", k, "toy", "NX")]))
            setup = [(db, k) for db in range(3) for k in ("cat", "dog") if rnd.random() < 0.4]
            got = []
            for w, o in servers:
                assert w.cmd("FLUSHALL") == "OK"
                for db, k in setup:
                    w.cmd("SELECT", db)
                    assert w.cmd("SET", k, "animal") == "OK"
                w.cmd("SELECT", 0)
                assert w.cmd("WATCH", "cat") == "OK"
                for args in ops:
                    o.cmd(*args)
                assert w.cmd("MULTI") == "OK" and w.cmd("SET", "one", "number") == "QUEUED"
                got.append(w.cmd("EXEC"))
            want, have = got
            assert not (want is None and have is not None), \
                "a change Redis sees went unnoticed: setup %r, ops %r" % (setup, ops)
            if want is not None and have is None:
                # Allowed only where EXEC does not look.
                sel, swaps, flushes = 0, 0, 0
                for args in ops:
                    if args[0] == "SELECT":
                        sel = args[1]
                    elif args[0] == "SWAPDB" and 0 in args[1:] and args[1] != args[2]:
                        swaps += 1
                    elif args[0] == "FLUSHALL" or (args[0] == "FLUSHDB" and sel == 0):
                        flushes += 1
                assert swaps >= 2 or (swaps and flushes), \
                    "spurious abort: setup %r, ops %r" % (setup, ops)
                spurious += 1
        print("     %d random cases: %d aborted here and not by Redis (after swaps)"
              % (cases, spurious))
        for w, o in servers:
            w.close()
            o.close()
    finally:
        proc.kill()
        proc.wait()


@akvtest.test("keyspace")
def test_watch_expiry(env):
    """A watched key whose time comes before EXEC aborts it, whether or not
    anything has deleted it yet; one already gone when watched does not."""
    for wait in (0.32, 0.8):  # before and (likely) after the cycle's pass
        c = flushed(env)
        assert c.cmd("SET", "cat", "animal", "PX", 300) == "OK"
        assert c.cmd("WATCH", "cat") == "OK"
        time.sleep(wait)
        assert c.cmd("MULTI") == "OK" and c.cmd("SET", "one", "number") == "QUEUED"
        assert c.cmd("EXEC") is None, wait
        c.close()
    c = flushed(env)
    assert c.cmd("SET", "cat", "animal", "PX", 50) == "OK"
    time.sleep(0.1)
    assert c.cmd("WATCH", "cat") == "OK"
    time.sleep(0.3)
    assert c.cmd("MULTI") == "OK" and c.cmd("SET", "one", "number") == "QUEUED"
    assert c.cmd("EXEC") == ["OK"]
    # A watched key with a time still ahead at EXEC: no abort.
    assert c.cmd("SET", "cat", "animal", "PX", 5000) == "OK"
    assert c.cmd("WATCH", "cat") == "OK"
    assert c.cmd("MULTI") == "OK" and c.cmd("GET", "cat") == "QUEUED"
    assert c.cmd("EXEC") == ["animal"]
    c.close()


@akvtest.test("keyspace")
def test_multi_queries_see_queued_writes(env):
    """QUERY and EXPLAIN inside MULTI see exactly the writes queued before
    them, and nothing another client writes while the EXEC runs: another
    client keeps rewriting w0001 all along, and the GETs and EXPLAINs of one
    transaction all see the same value of it."""
    c = flushed(env)
    assert c.cmd("SET", "dog", "animal") == "OK"
    assert c.cmd("SET", "w0001", "w1000") == "OK"
    stop = threading.Event()
    writes = [0]

    def writer():
        o = env.daemon.client()
        i = 0
        while not stop.is_set():
            o.send(b"".join(Client.encode("SET", "w0001", "w%04d" % (1000 + (i + j) % 900))
                            for j in range(20)))
            for _ in range(20):
                assert o.read() == "OK"
            i += 20
        writes[0] = i
        o.close()

    th = threading.Thread(target=writer)
    th.start()
    try:
        for rnd in range(30):
            cat_val = "w%04d" % (1900 + rnd % 50)
            steps = [
                ("GET", "w0001"),
                ("EXPLAIN", "cat", "COUNT", "100"),
                ("SET", "cat", cat_val),
                ("EXPLAIN", "cat", "COUNT", "100"),
                ("SET", "ball hello", "toy world"),
                ("QUERY", "cat ball", "COUNT", "4"),
                ("EXPLAIN", "ball", "COUNT", "100", "ATTENTION", "cosine"),
                ("DEL", "cat"),
                ("EXPLAIN", "cat", "COUNT", "100"),
                ("KEYS", "*"),
                ("DEL", "ball hello"),
                ("GET", "w0001"),
            ]
            assert c.cmd("MULTI") == "OK"
            for s in steps:
                assert c.cmd(*s) == "QUEUED"
            r = c.cmd("EXEC")
            assert len(r) == len(steps), r
            w1 = r[0]
            assert r[-1] == w1, "another client's write showed inside the transaction"
            base = {"dog": "animal", "w0001": w1}
            same_explain(r[1], ref_explain(env, base, "cat"))
            with_cat = dict(base, cat=cat_val)
            same_explain(r[3], ref_explain(env, with_cat, "cat"))
            full = dict(with_cat)
            full["ball hello"] = "toy world"
            env.ref.store = full
            assert r[5] == [w for w, _ in env.ref.query("cat ball", k=4)], r[5]
            same_explain(r[6], ref_explain(env, full, "ball", attn="cosine"))
            del full["cat"]
            same_explain(r[8], ref_explain(env, full, "cat"))
            assert sorted(r[9]) == sorted(full), r[9]
            assert r[2] == r[4] == "OK" and r[7] == r[10] == 1, r
    finally:
        stop.set()
        th.join()
    assert writes[0] > 0
    print("     30 transactions while another client made %d writes" % writes[0])
    c.close()


@akvtest.test("keyspace")
def test_exec_jobs_and_disconnects(env):
    """Transactions holding QUERY/EXPLAIN/KEYS jobs whose client goes away
    (FIN or RST) while they run, while another client flushes and writes:
    the daemon carries on, and a transaction read to the end is whole."""
    c = flushed(env)
    c.send(b"".join(Client.encode("SET", "w%04d" % i, "w%04d" % (i + 1000)) for i in range(500)))
    assert all(c.read() == "OK" for _ in range(500))
    o = env.daemon.client()
    for rnd in range(10):
        x = env.daemon.client()
        x.send(Client.encode("MULTI") + b"".join(
            Client.encode(*a) for _ in range(40) for a in (
                ("EXPLAIN", "cat", "COUNT", "1000"), ("QUERY", "w0001 w0002", "COUNT", "50"),
                ("SET", "cat", "animal"), ("KEYS", "w00*"), ("DEL", "cat"))) +
            Client.encode("EXEC"))
        time.sleep(0.001 * rnd)
        if rnd % 2:
            x.reset()
        else:
            x.close()
        assert o.cmd("SET", "w%04d" % rnd, "dog") == "OK"
        if rnd == 5:
            assert o.cmd("FLUSHALL") == "OK"
    # QUIT with a queue and watched keys; a connection dropped the same way.
    for how in ("QUIT", "RST", "FIN"):
        x = env.daemon.client()
        assert x.cmd("WATCH", "cat", "dog", "w0001") == "OK"
        assert x.cmd("MULTI") == "OK" and x.cmd("SET", "cat", "toy") == "QUEUED"
        assert x.cmd("EXPLAIN", "cat") == "QUEUED"
        if how == "QUIT":
            assert x.cmd("QUIT") == "OK" and x.at_eof()
            x.close()
        elif how == "RST":
            x.reset()
        else:
            x.close()
        assert o.cmd("SET", "cat", "animal") == "OK"  # touches the watch, if left
    assert o.cmd("PING") == "PONG"
    # One read to the end.
    assert c.cmd("MSET", "cat", "animal", "dog", "animal") == "OK"
    assert c.cmd("MULTI") == "OK"
    for _ in range(50):
        assert c.cmd("EXPLAIN", "cat", "COUNT", "1000") == "QUEUED"
        assert c.cmd("QUERY", "cat", "COUNT", "3") == "QUEUED"
    r = c.cmd("EXEC")
    assert len(r) == 100 and all(r[i] == r[0] for i in range(0, 100, 2)) and \
        all(r[i] == r[1] for i in range(1, 100, 2)), r[:2]
    store = {"cat": "animal", "dog": "animal"}
    store.update({k: c.cmd("GET", k) for k in c.cmd("KEYS", "w*")})
    same_explain(r[0], ref_explain(env, store, "cat", n=1000))
    c.cmd("FLUSHALL")
    c.close()
    o.close()


def tkey(i):
    """Distinct keys of the synthetic vocabulary, as many as needed."""
    return "w%04d" % i if i < 2000 else "w%04d w%04d" % (i % 2000, i // 2000)


@akvtest.test("keyspace")
def test_exec_is_one_aof_record(env):
    """EXEC's writes are one MULTI record: a daemon killed (-9) at any moment
    around an EXEC comes back with all of the transaction or none of it; a
    record torn at the end of the file is dropped whole; check-aof counts
    the MULTI records."""
    d = dstart(env, "appendfsync always\nmax-batch-size 10000\n")
    found = {"all": 0, "none": 0}
    applied = 0
    delays = [0, 0.0003, 0.001, 0.002, 0.004, None]  # None: wait for the reply
    n = 5000
    for rnd, delay in enumerate(delays):
        c = d.client()
        val = "w%04d" % (1500 + rnd)
        c.send(Client.encode("MULTI") +
               b"".join(Client.encode("SET", tkey(i), val) for i in range(n)) +
               Client.encode("DEL", "one") + Client.encode("SET", "cat", val, "PX", 3600000))
        assert c.read() == "OK" and all(c.read() == "QUEUED" for _ in range(n + 2))
        if delay is None:
            r = c.cmd("EXEC")  # acknowledged: must all be there
            assert len(r) == n + 2
        else:
            c.send(Client.encode("EXEC"))
            time.sleep(delay)
        kill9(d)
        c.close()
        d = restart(env, d, "appendfsync always\nmax-batch-size 10000\n")
        c = d.client()
        got = c.cmd("MGET", *[tkey(i) for i in range(n)] + ["cat"])
        kinds = set(got)
        assert len(kinds) == 1, "torn transaction: %r" % sorted(kinds, key=str)
        if got[0] == val:
            found["all"] += 1
            applied += 1
            assert c.cmd("PTTL", "cat") > 3000000
            assert c.cmd("EXISTS", "one") == 0
        else:
            assert delay is not None, "acknowledged transaction lost"
            found["none"] += 1
        assert c.cmd("SET", "one", "number") == "OK"
        c.close()
    print("     kill -9 around EXEC: %(all)d transactions found whole, %(none)d not at all" % found)
    c = d.client()
    c.close()
    d.check_clean_exit()
    counts = check_aof(d.aof)
    assert counts["MULTI"] == applied, counts
    # Each round SETs one afterwards; a transaction deletes it (logged
    # unless the first round's, which found nothing to delete).
    assert counts["SET"] == applied * (n + 1) + len(delays), counts
    assert counts["DEL"] in (applied, applied - 1), counts
    assert counts["records"] == applied + len(delays), counts
    # A torn MULTI record at the end: cut into the last transaction.
    d = restart(env, d)
    c = d.client()
    assert c.cmd("MULTI") == "OK"
    for i in range(50):
        assert c.cmd("SET", "w%04d" % i, "cat") == "QUEUED"
    assert len(c.cmd("EXEC")) == 50
    c.close()
    d.check_clean_exit()
    size = os.path.getsize(d.aof)
    with open(d.aof, "r+b") as f:
        f.truncate(size - 100)
    d = restart(env, d)
    assert "is incomplete" in d.text(), d.text()
    c = d.client()
    got = set(c.cmd("MGET", *["w%04d" % i for i in range(50)]))
    assert "cat" not in got and len(got) == 1, got
    c.close()
    d.check_clean_exit()
    assert_no_sanitizer_report(d)


@akvtest.test("keyspace")
def test_multi_key_writes_are_one_record(env):
    """Every command that changes several keys is one AOF record (MULTI), so
    a crash never leaves half of it; nested in a transaction, it is part of
    the transaction's record. check-aof counts them."""
    d = dstart(env)
    c = d.client()
    steps = [
        (("MSET", "cat", "animal", "dog", "animal", "one", "number"), "OK", 1, 3, 0),
        (("DEL", "cat", "dog", "nope"), 2, 1, 0, 2),
        (("DEL", "one", "nope", "nope"), 1, 0, 0, 1),  # one record: as itself
        (("MSET", "cat", "animal", "dog", "animal"), "OK", 1, 2, 0),
        (("RENAME", "cat", "king"), "OK", 1, 1, 1),
        (("MOVE", "king", 3), 1, 1, 1, 1),
        (("COPY", "dog", "w0001", "DB", 4), 1, 0, 1, 0),
        (("MSETNX", "ball", "toy", "sphere", "shape"), 1, 1, 2, 0),
        (("UNLINK", "ball", "sphere"), 2, 1, 0, 2),
        (("SET", "cat", "toy", "EX", 100), "OK", 0, 1, 0),
    ]
    want = {"MULTI": 0, "SET": 0, "DEL": 0}
    for args, reply, multi, sets, dels in steps:
        assert c.cmd(*args) == reply, args
        want["MULTI"] += multi
        want["SET"] += sets
        want["DEL"] += dels
    # A transaction with MSET and RENAME inside: one record for all.
    assert c.cmd("MULTI") == "OK"
    for args in (("MSET", "w0002", "cat", "w0003", "dog"), ("RENAME", "w0002", "w0004"),
                 ("DEL", "w0003", "dog"), ("GET", "w0004")):
        assert c.cmd(*args) == "QUEUED"
    assert c.cmd("EXEC") == ["OK", "OK", 2, "cat"]
    want["MULTI"] += 1
    want["SET"] += 3
    want["DEL"] += 3
    c.close()
    d.check_clean_exit()
    counts = check_aof(d.aof)
    assert {k: counts[k] for k in want} == want, (counts, want)


@akvtest.test("keyspace")
def test_record_size_limit(env):
    """A MULTI record may not pass AKV_AOF_PAYLOAD_MAX (64 MiB), or replay
    takes the file for damaged and the daemon does not start. With the
    request limits raised, an MSET whose records would pass it is refused
    whole, and a transaction that reaches it gets an error for each write
    past it (the writes before are made and logged); the file loads."""
    conf = ("proto-max-multibulk-len 262144\nclient-query-buffer-limit 512mb\n"
            "max-batch-size 1048576\n")
    d = dstart(env, conf)
    c = d.client(timeout=300)
    phrase = " ".join("w%04d" % i for i in range(64))  # 383 bytes
    n = 85000  # 85,000 PUT records of 798 bytes: 67.8 MB
    too_big = E("ERR not done: the transaction's append-only file record would pass 64 MiB")
    t0 = time.monotonic()
    assert c.cmd("SET", "cat", "animal") == "OK"
    r = c.cmd("MSET", *[phrase] * (2 * n))
    assert r == too_big, r
    assert c.cmd("EXISTS", phrase) == 0
    assert c.cmd("MULTI") == "OK"
    c.send(b"".join([Client.encode("SET", phrase, phrase)] * n) + Client.encode("DEL", "cat") +
           Client.encode("GET", "cat") + Client.encode("EXEC"))
    for _ in range(n + 2):
        assert c.read() == "QUEUED"
    r = c.read()
    fit = (64 << 20) // 798  # about: the records fit while the payload stays under 64 MiB
    assert r[:fit - 10] == ["OK"] * (fit - 10), r[:3]
    # A small record still fits after the big ones that did not.
    assert r[n - 1] == too_big and r[n] == 1 and r[n + 1] is None, r[-3:]
    ok = r.count("OK")
    c.close()
    d.check_clean_exit()
    counts = check_aof(d.aof)
    assert counts["MULTI"] == 1 and counts["SET"] == 1 + ok and counts["DEL"] == 1, counts
    d2 = restart(env, d, conf)
    c = d2.client()
    assert c.cmd("GET", phrase) == phrase and c.cmd("EXISTS", "cat") == 0
    c.close()
    d2.check_clean_exit()
    print("     %d of %d SETs fit one record; %.1f s" % (ok, n, time.monotonic() - t0))


@akvtest.test("keyspace")
def test_concurrent_transactions(env):
    """Threads running optimistic transactions against each other: WATCH,
    GET, MULTI, SET, EXEC increments of one counter (none lost), RENAMEs
    passing one token between ten keys (always exactly one holds it), and
    pairs of keys always written together (never seen apart)."""
    c = flushed(env)
    assert c.cmd("SET", "cat", "w0000") == "OK"
    assert c.cmd("SET", "w1000", "toy") == "OK"  # the token
    assert c.cmd("MSET", "one", "w0000", "seven", "w0000") == "OK"
    tokens = ["w%04d" % (1000 + i) for i in range(10)]
    stop = threading.Event()
    errors, stats = [], {"increments": 0, "retries": 0, "renames": 0, "pairs": 0,
                         "reads": 0}
    lock = threading.Lock()

    def guard(fn):
        def run_it(*a):
            try:
                fn(*a)
            except Exception as e:  # reported by the main thread
                errors.append(repr(e))
        return run_it

    @guard
    def incrementer(n):
        o = env.daemon.client()
        done = retries = 0
        while done < n:
            assert o.cmd("WATCH", "cat") == "OK"
            v = int(o.cmd("GET", "cat")[1:])
            assert o.cmd("MULTI") == "OK"
            assert o.cmd("SET", "cat", "w%04d" % (v + 1)) == "QUEUED"
            r = o.cmd("EXEC")
            if r is None:
                retries += 1
            else:
                assert r == ["OK"], r
                done += 1
        with lock:
            stats["increments"] += done
            stats["retries"] += retries
        o.close()

    @guard
    def renamer(seed):
        import random
        rnd = random.Random(seed)
        o = env.daemon.client()
        n = 0
        while not stop.is_set():
            src, dst = rnd.sample(tokens, 2)
            assert o.cmd("MULTI") == "OK"
            assert o.cmd("RENAME", src, dst) == "QUEUED"
            assert o.cmd("EXISTS", *tokens) == "QUEUED"
            r = o.cmd("EXEC")
            assert r[0] in ("OK", NOKEY) and r[1] == 1, r
            n += r[0] == "OK"
        with lock:
            stats["renames"] += n
        o.close()

    @guard
    def pair_writer(seed):
        o = env.daemon.client()
        n = 0
        while not stop.is_set():
            v = "w%04d" % ((seed * 1000 + n) % 2000)
            assert o.cmd("MULTI") == "OK"
            assert o.cmd("SET", "one", v) == "QUEUED"
            assert o.cmd("SET", "seven", v) == "QUEUED"
            assert o.cmd("EXEC") == ["OK", "OK"]
            n += 1
        with lock:
            stats["pairs"] += n
        o.close()

    @guard
    def reader():
        o = env.daemon.client()
        n = 0
        while not stop.is_set():
            a, b = o.cmd("MGET", "one", "seven")
            assert a == b, (a, b)
            assert o.cmd("EXISTS", *tokens) == 1
            assert o.cmd("MULTI") == "OK"
            assert o.cmd("GET", "one") == "QUEUED"
            assert o.cmd("EXPLAIN", "one", "COUNT", "100") == "QUEUED"
            assert o.cmd("GET", "seven") == "QUEUED"
            r = o.cmd("EXEC")
            assert r[0] == r[2], r
            ex = {e[0]: e[1] for e in r[1]}
            assert ex["one"] == ex["seven"] == r[0], r
            assert sum(1 for k in ex if k in tokens) == 1, r
            n += 1
        with lock:
            stats["reads"] += n
        o.close()

    incs = [threading.Thread(target=incrementer, args=(40,)) for _ in range(4)]
    others = [threading.Thread(target=renamer, args=(i,)) for i in range(2)]
    others += [threading.Thread(target=pair_writer, args=(i,)) for i in range(2)]
    others += [threading.Thread(target=reader) for _ in range(2)]
    for t in incs + others:
        t.start()
    for t in incs:
        t.join(timeout=120)
    stop.set()
    for t in others:
        t.join(timeout=120)
    assert not errors, errors[:5]
    assert stats["increments"] == 160
    assert c.cmd("GET", "cat") == "w0160", "lost updates: %r" % c.cmd("GET", "cat")
    assert c.cmd("EXISTS", *tokens) == 1
    assert sum(1 for t in tokens if c.cmd("GET", t) == "toy") == 1
    print("     %(increments)d increments (%(retries)d retries), %(renames)d renames, "
          "%(pairs)d pair writes, %(reads)d consistent reads" % stats)
    c.close()



# ---------------------------------------------------------------------------
# 6. hiredis.


@akvtest.test("keyspace")
def test_hiredis(env):
    exe = os.environ.get("AKV_HIREDIS_CHECK")
    if not exe:
        raise akvtest.Skip("hiredis-check was not built (hiredis not found; Debian: "
                           "libhiredis-dev)")
    flushed(env).close()
    r = run_tool([exe, "127.0.0.1", str(env.daemon.port)], timeout=120)
    assert r.returncode == 0, "hiredis-check exited with %d:\n%s%s" % (r.returncode, r.stdout,
                                                                      r.stderr)
    assert "all checks passed" in r.stdout, r.stdout



# ---------------------------------------------------------------------------
# 7. The stall rule (test_hostile.py's method: a separate process PINGs
# every 10 ms while one client attacks; the worst round trip must stay
# under its STALL_MS).

MAX_ARGS = 65536  # proto-max-multibulk-len's default
# The bound on the worst PING: daemon-hostile's, and for the largest legal
# requests (MSET, EXEC, WATCH at the argument limit, whose cost is that of
# 65,535 arguments' work), the same scaled for the sanitizer build, which
# runs that work 2-3 times slower.
LARGEST_MS = test_hostile.STALL_MS * (2.5 if akvtest.daemon_is_instrumented() else 1.0)


class Stall(test_hostile.Stall):
    """test_hostile's Stall, with the bound given: with Stall(d, what,
    bound_ms): ..."""

    def __init__(self, d, what, bound_ms=test_hostile.STALL_MS):
        super().__init__(d, what)
        self.bound = bound_ms

    def __exit__(self, et, ev, tb):
        time.sleep(0.05)
        worst = self.p.stop()
        print("     %-52s worst PING %7.1f ms over %5.2f s (%d PINGs)"
              % (self.what, worst, time.monotonic() - self.t0, self.p.count), flush=True)
        if et is None:
            assert self.p.count > 0, "no PING completed"
            assert worst < self.bound, "%s stalled other clients for %.1f ms (bound %.0f)" % (
                self.what, worst, self.bound)
        return False


def send_many(c, reqs, want, chunk=5000):
    """Pipelines reqs in chunks, checking that every reply is want."""
    for i in range(0, len(reqs), chunk):
        part = reqs[i:i + chunk]
        c.send(b"".join(part))
        for _ in part:
            r = c.read()
            assert r == want, r


@akvtest.test("keyspace")
def test_stall_huge_commands(env):
    # max-batch-size (default 1,024) raised to the argument limit: the
    # largest batches anyone can configure.
    d = dstart(env, "max-batch-size 65536\n", args=("--workers", "2"))
    c = d.client(timeout=300)
    n = (MAX_ARGS - 1) // 2  # MSET k v ... at the argument limit
    with Stall(d, "MSET of %d pairs" % n, LARGEST_MS):
        assert c.cmd("MSET", *[x for i in range(n) for x in (tkey(i), "cat")]) == "OK"
    assert c.cmd("DBSIZE") == n
    with Stall(d, "MGET of %d keys" % (MAX_ARGS - 1), LARGEST_MS):
        r = c.cmd("MGET", *[tkey(i) for i in range(MAX_ARGS - 1)])
        assert r[:n] == ["cat"] * n and r[n:] == [None] * (MAX_ARGS - 1 - n)
    with Stall(d, "EXISTS of %d keys" % (MAX_ARGS - 1)):
        assert c.cmd("EXISTS", *[tkey(i) for i in range(MAX_ARGS - 1)]) == n
    with Stall(d, "DEL of %d keys" % (MAX_ARGS - 1), LARGEST_MS):
        assert c.cmd("DEL", *[tkey(i) for i in range(MAX_ARGS - 1)]) == n
    assert c.cmd("DBSIZE") == 0
    # A transaction at the limit: 21,845 SETs of 3 arguments.
    m = MAX_ARGS // 3
    queue = [Client.encode("SET", tkey(i), "dog") for i in range(m)]
    assert c.cmd("MULTI") == "OK"
    send_many(c, queue, "QUEUED")
    with Stall(d, "EXEC of %d SETs (%d arguments)" % (m, 3 * m), LARGEST_MS):
        r = c.cmd("EXEC")
        assert r == ["OK"] * m
    assert c.cmd("DBSIZE") == m
    # One argument over: refused when queued, and the EXEC is aborted.
    limit = int(c.cmd("CONFIG", "GET", "client-query-buffer-limit")[1])
    assert c.cmd("MULTI") == "OK"
    send_many(c, queue, "QUEUED")
    too_large = E("ERR transaction too large: at most 65536 commands (max-batch-size), "
                  "65536 arguments (proto-max-multibulk-len) and %d bytes "
                  "(client-query-buffer-limit) may be queued" % limit)
    r = c.cmd("PING", "x")
    assert r == too_large, r
    with Stall(d, "EXECABORT of %d queued SETs" % m):
        assert c.cmd("EXEC") == EXECABORT
    assert c.cmd("GET", tkey(0)) == "dog"
    # A transaction of PINGs at the limit.
    assert c.cmd("MULTI") == "OK"
    send_many(c, [Client.encode("PING")] * MAX_ARGS, "QUEUED")
    with Stall(d, "EXEC of %d PINGs" % MAX_ARGS, LARGEST_MS):
        assert c.cmd("EXEC") == ["PONG"] * MAX_ARGS
    with Stall(d, "FLUSHALL of %d keys" % m):
        assert c.cmd("FLUSHALL") == "OK"
    c.close()
    d.check_clean_exit()
    # The byte limit: client-query-buffer-limit bytes of arguments in all.
    d = dstart(env, "client-query-buffer-limit 1mb\n")
    c = d.client()
    too_large = E("ERR transaction too large: at most 1024 commands (max-batch-size), "
                  "65536 arguments (proto-max-multibulk-len) and %d bytes "
                  "(client-query-buffer-limit) may be queued" % (1 << 20))
    # The default max-batch-size: 1,024 pairs in an MSET, 1,024 commands in
    # a MULTI.
    r = c.cmd("MSET", *[x for i in range(1025) for x in (tkey(i), "cat")])
    assert r == E("ERR too many pairs: 1025, at most 1024 (max-batch-size) in one MSET; "
                  "send several"), r
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("MSET", *[x for i in range(1024) for x in (tkey(i), "cat")]) == "OK"
    assert c.cmd("MULTI") == "OK"
    send_many(c, [Client.encode("PING")] * 1024, "QUEUED")
    assert c.cmd("PING") == too_large
    assert c.cmd("EXEC") == EXECABORT
    assert c.cmd("FLUSHALL") == "OK"
    assert c.cmd("MULTI") == "OK"
    big = "x" * 4096
    fit = (1 << 20) // (4 + len(big))
    for i in range(fit):
        assert c.cmd("ECHO", big) == "QUEUED"
    assert c.cmd("ECHO", big) == too_large
    assert c.cmd("EXEC") == EXECABORT
    assert c.cmd("MULTI") == "OK" and c.cmd("ECHO", big) == "QUEUED"
    assert c.cmd("EXEC") == [big]
    c.close()
    d.check_clean_exit()


@akvtest.test("keyspace")
def test_stall_readable_huge_reply(env):
    """READABLE translates replies for people on the loop thread (about
    10 ms a MiB): a reply over 256 KiB is sent as RESP behind a line that
    says so, and smaller ones are still translated."""
    d = dstart(env)
    c = d.client(timeout=60)
    n = 60000
    for i in range(0, n, 1000):
        assert c.cmd("MSET", *[x for j in range(i, i + 1000) for x in (tkey(j), "cat")]) == "OK"
    resp_len = len(b"*%d\r\n" % n) + sum(len(b"$%d\r\n%s\r\n" % (len(k), k))
                                          for k in (tkey(j).encode() for j in range(n)))
    assert resp_len > 256 * 1024

    def read_until(tail):
        got = b""
        while not got.endswith(tail):
            chunk = c.sock.recv(1 << 20)
            assert chunk, got[-200:]
            got += chunk
        return got

    c.send(b"READABLE ON\r\n")
    assert read_until(b"OK\r\n") == b"OK\r\n"

    with Stall(d, "KEYS * of %d keys (%d bytes), READABLE ON" % (n, resp_len)):
        c.send(b"KEYS *\r\nPING\r\n")
        got = read_until(b"\r\nPONG\r\n")
    note = (b"(a reply of %d bytes, over the 256 KiB that readable mode translates; "
            b"it follows as RESP)\r\n" % resp_len)
    assert got.startswith(note + b"*%d\r\n" % n), got[:200]
    assert len(got) == len(note) + resp_len + len(b"PONG\r\n")
    c.send(b"SCAN 0 COUNT 10\r\nDBSIZE\r\n")
    got = read_until(b"(integer) %d\r\n" % n)
    assert got.startswith(b"1) \""), got[:200]
    c.close()
    d.check_clean_exit()


@akvtest.test("keyspace")
def test_stall_mass_expiry(env):
    """200,000 keys due at the same millisecond: the active cycle deletes
    them in slices; the pinger must not notice."""
    n = 200000
    d = dstart(env, args=("--workers", "2"))
    c = d.client(timeout=300)
    # Load first (to learn how long it takes), then give the keys a time
    # far enough ahead.
    t0 = time.monotonic()
    send_many(c, [Client.encode("SET", tkey(i), "cat") for i in range(n)], "OK")
    load = time.monotonic() - t0
    when = now_ms() + int(load * 2500) + 800
    send_many(c, [Client.encode("PEXPIREAT", tkey(i), when) for i in range(n)], 1)
    assert keyspace(c) == {0: (n, n)}
    before = expired_keys(c)
    with Stall(d, "%d keys expiring at once" % n):
        time.sleep(max(0.0, (when - now_ms()) / 1000.0))
        t1 = time.monotonic()
        wait_until(lambda: keyspace(c) == {}, timeout=120, what="the cycle", step=0.02)
        took = time.monotonic() - t1
    print("     the active cycle deleted %d keys in %.2f s (loading them took %.2f s)"
          % (n, took, load))
    assert expired_keys(c) - before == n
    assert c.cmd("DBSIZE") == 0
    c.close()
    d.check_clean_exit()
    assert check_aof(d.aof)["DEL"] == n


@akvtest.test("keyspace")
def test_stall_watch_many(env):
    """WATCH of 65,535 keys, by one connection and then by 4 more: each
    WATCH, the writes and FLUSHALL/SWAPDB that mark them, EXEC and the
    connections closing cost the loop O(1) a key, whatever the others
    watch (the table grows incrementally)."""
    d = dstart(env, args=("--workers", "2"))
    c, o = d.client(timeout=300), d.client()
    keys = [tkey(i) for i in range(MAX_ARGS - 1)]
    with Stall(d, "WATCH of %d keys" % len(keys), LARGEST_MS):
        assert c.cmd("WATCH", *keys) == "OK"
    assert c.cmd("WATCH", keys[0]) == "OK"  # twice counts twice
    r = c.cmd("WATCH", "cat")
    assert r == E("ERR too many watched keys (at most 65536 a connection)"), r
    with Stall(d, "SETs of watched keys, FLUSHALL"):
        for i in range(0, len(keys), 997):
            assert o.cmd("SET", keys[i], "toy") == "OK"
        assert o.cmd("FLUSHALL") == "OK"
    assert c.cmd("MULTI") == "OK" and c.cmd("SET", "cat", "dog") == "QUEUED"
    with Stall(d, "EXEC with %d watched keys (aborted)" % len(keys)):
        assert c.cmd("EXEC") is None
    assert c.cmd("WATCH", *keys) == "OK"
    conns = [d.client(timeout=300) for _ in range(4)]
    t0 = time.monotonic()
    with Stall(d, "4 more connections WATCH the same %d keys" % len(keys), LARGEST_MS):
        for x in conns:
            assert x.cmd("WATCH", *keys) == "OK"
    print("     (%.1f ms a WATCH of %d keys, sending included)"
          % ((time.monotonic() - t0) * 1000 / len(conns), len(keys)))
    with Stall(d, "FLUSHALL, FLUSHDB, SWAPDB with 5 x %d watched" % len(keys)):
        assert o.cmd("SET", keys[5], "toy") == "OK"
        assert o.cmd("SWAPDB", 0, 1) == "OK"
        assert o.cmd("FLUSHDB") == "OK"
        assert o.cmd("FLUSHALL") == "OK"
    with Stall(d, "5 EXECs aborted, 5 x %d watched keys" % len(keys)):
        for x in conns + [c]:
            assert x.cmd("MULTI") == "OK" and x.cmd("PING") == "QUEUED"
            assert x.cmd("EXEC") is None
    for x in conns:
        assert x.cmd("WATCH", *keys) == "OK"
    with Stall(d, "4 connections closing, %d watched keys each" % len(keys), LARGEST_MS):
        for x in conns:
            x.close()
            time.sleep(0.05)
        time.sleep(0.2)
    assert o.cmd("PING") == "PONG"
    c.close()
    o.close()
    d.check_clean_exit()

if __name__ == "__main__":
    sys.exit(akvtest.main("keyspace"))
