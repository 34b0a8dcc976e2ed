#!/usr/bin/env python3
"""daemon-loading: the append-only file replayed while clients connect, and
the persistence settings changed at run time.

While loading: attnkvd listens from the start and replays its AOF in slices
on the loop thread; data commands get "-LOADING attnkv is loading the
dataset in memory", INFO shows loading:1 with the progress, another
client's commands are answered within a few ms (the worst gap is printed as
a "figures:" line; also while a 64 MB MULTI record is checked), READY=1 goes to the service manager only at the end,
a SIGTERM or SHUTDOWN during the replay leaves the file byte for byte as it
was, and a damaged file still stops the daemon with exit status 1; the same
for the file rewritten with a snapshot preamble. The AOFs
are written here in the record format of src/persist/aof.h (PUT records of
two-word keys over the synthetic vocabulary), big enough that the replay
takes well over a second.

Run time: CONFIG SET appendonly yes (a rewrite creates the file from the
stores; a restart finds the data), appendonly no (writes are no longer
logged; the file stays), appendfsync (INFO aof_fsync follows, writes still
answered), auto-aof-rewrite-*, all-or-nothing on a bad value, and
appendonly flipped forty times under writes (acknowledged writes survive a
kill -9 once the last appendonly yes has created its file).

Run alone: meson test -C build daemon-loading, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_loading.py [-k NAME]
(environment: see akvtest.py).
"""

import hashlib
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib

import akvtest
from akvtest import Client, Daemon, info_fields, is_err

LOADING = "LOADING attnkv is loading the dataset in memory"
# Records in the big file (keys and values of six words, about 100 MB):
# about a second of replay in the plain build (some 900k records/s on the
# synthetic vocabulary), several under sanitizers.
BIG_RECORDS = int(os.environ.get("AKV_TEST_LOADING_RECORDS", "1000000"))
_count = [0]


def rec(rtype, payload):
    head = struct.pack("<BBHI", 0xA7, rtype, 0, len(payload))
    return head + struct.pack("<II", zlib.crc32(head), zlib.crc32(payload)) + payload


def put(key, val, db=0, expire=0):
    k, v = key.encode(), val.encode()
    return rec(4, struct.pack("<IQI", db, expire, len(k)) + k + v)


def file_header():
    h = b"AKV-AOF\n" + struct.pack("<I", 1)
    return h + struct.pack("<I", zlib.crc32(h))


def write_aof(path, n, words, tail=b""):
    """n PUT records of keys "wA wB" (distinct) with one-word values; a
    few in database 1. Returns {key: value} of a sample to check."""
    filler = [w for w in words if w.startswith("w")]
    m = len(filler)
    sample = {}
    f = open(path, "wb")
    f.write(file_header())
    chunks = []
    for i in range(n):
        # Phrases of several words: each costs an embedding at replay.
        key = "%s %s %s %s %s %s" % (filler[i % m], filler[(i // m) % m], filler[(i * 3) % m],
                                     filler[(i * 5) % m], filler[(i * 11) % m],
                                     filler[(i * 13) % m])
        val = "%s %s %s %s %s %s" % (filler[(i * 7) % m], filler[(i * 17) % m],
                                     filler[(i * 19) % m], filler[(i * 23) % m],
                                     filler[(i * 29) % m], filler[(i * 31) % m])
        db = 1 if i % 1000 == 999 else 0
        chunks.append(put(key, val, db))
        if i % 9973 == 0 and db == 0:
            sample[key] = val
        if len(chunks) == 10000:
            f.write(b"".join(chunks))
            chunks = []
    f.write(b"".join(chunks) + tail)
    f.close()
    return sample


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def start_loading(env, datadir, conf="", extra_env=None, args=()):
    """Starts a daemon on datadir's AOF without waiting for "ready:"; returns
    it once it listens (its port set)."""
    _count[0] += 1
    name = "loading%d" % _count[0]
    path = os.path.join(env.workdir, name + ".conf")
    with open(path, "w") as f:
        f.write(conf)
    d = Daemon(env.workdir, env.vectors, ("--config", path, "--workers", "1") + tuple(args),
               name=name, expect_start=False, datadir=datadir, extra_env=extra_env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"listening on (\S+):(\d+)", d.text())
        if m:
            d.port = int(m.group(2))
            return d
        if d.proc.poll() is not None:
            raise AssertionError("attnkvd exited:\n" + d.text())
        time.sleep(0.005)
    d.kill()
    raise AssertionError("attnkvd did not listen:\n" + d.text())


def big_dir(env, name, n=BIG_RECORDS, tail=b""):
    datadir = os.path.join(env.workdir, name)
    os.makedirs(datadir, exist_ok=True)
    sample = write_aof(os.path.join(datadir, "appendonly.aof"), n, env.words, tail)
    return datadir, sample


def wait_loaded(c, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if info_fields(c, "persistence")["loading"] == "0":
            return
        time.sleep(0.02)
    raise AssertionError("still loading after %ds" % timeout)


def assert_no_sanitizer_report(d):
    t = d.text()
    for bad in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
                "ERROR: LeakSanitizer"):
        assert bad not in t, t[-6000:]


def stop_clean(d):
    d.stop()
    d.check_clean_exit()


class Pinger(threading.Thread):
    """Sends a command in a loop from its own connection and records the
    longest time to an answer."""

    def __init__(self, port, args=("PING",)):
        super().__init__(daemon=True)
        self.c = Client(port)
        self.args = args
        self.worst = 0.0
        self.n = 0
        self.replies = set()
        self.done = False

    def run(self):
        while not self.done:
            t0 = time.monotonic()
            r = self.c.cmd(*self.args)
            dt = time.monotonic() - t0
            self.worst = max(self.worst, dt)
            self.n += 1
            self.replies.add(str(r)[:60])

    def finish(self):
        self.done = True
        self.join(30)
        self.c.close()


@akvtest.test("loading")
def test_loading_answers(env):
    datadir, sample = big_dir(env, "answers")
    size = os.path.getsize(os.path.join(datadir, "appendonly.aof"))
    t0 = time.monotonic()
    d = start_loading(env, datadir)
    c = d.client()
    pinger = Pinger(d.port)
    pinger.start()
    try:
        # Data commands, PING and administration refused while loading.
        for args in (("GET", "w0001 w0000"), ("SET", "cat", "dog"), ("PING",), ("DBSIZE",),
                     ("QUERY", "cat"), ("FLUSHALL",), ("BGREWRITEAOF",), ("BGSAVE",),
                     ("KEYS", "*"), ("ECHO", "x")):
            r = c.cmd(*args)
            assert is_err(r) and r.args[0] == LOADING, (args, r)
        # What Redis allows while loading works.
        f = info_fields(c, "persistence")
        assert f["loading"] == "1" and f["async_loading"] == "0", f
        assert int(f["loading_total_bytes"]) == size, f
        assert 0 <= int(f["loading_loaded_bytes"]) < size, f
        assert 0.0 <= float(f["loading_loaded_perc"]) < 100.0, f
        assert abs(int(f["loading_start_time"]) - time.time()) < 60, f
        assert int(f["loading_eta_seconds"]) >= 0, f
        assert int(f["loading_loaded_records"]) >= 0, f
        assert c.cmd("CONFIG", "GET", "maxclients")[0] == "maxclients"
        # Not appendonly while loading; appendfsync takes effect.
        r = c.cmd("CONFIG", "SET", "appendonly", "no")
        assert is_err(r, "while the append-only file loads"), r
        assert c.cmd("CONFIG", "GET", "appendonly")[1] == "yes"
        assert c.cmd("CONFIG", "SET", "appendfsync", "always") == "OK"
        assert c.cmd("SELECT", "1") == "OK"
        assert c.cmd("SELECT", "0") == "OK"
        assert isinstance(c.cmd("TIME"), list)
        assert isinstance(c.cmd("LASTSAVE"), int)
        assert isinstance(c.cmd("CLIENT", "ID"), int)
        assert isinstance(c.cmd("COMMAND", "COUNT"), int)
        info = c.cmd("COMMAND", "INFO", "info", "get")
        assert "loading" in info[0][2] and "loading" not in info[1][2], info
        # A transaction with a refused command fails at EXEC, as in Redis.
        assert c.cmd("MULTI") == "OK"
        r = c.cmd("GET", "x")
        assert is_err(r) and r.args[0] == LOADING, r
        r = c.cmd("EXEC")
        assert is_err(r, "EXECABORT"), r
        # Progress is made while clients wait.
        time.sleep(0.3)
        f2 = info_fields(c, "persistence")
        if f2["loading"] == "1":
            assert int(f2["loading_loaded_bytes"]) > int(f["loading_loaded_bytes"]), (f, f2)
        wait_loaded(c)
        load_s = time.monotonic() - t0
    finally:
        pinger.finish()
    assert pinger.n > 50, pinger.n
    assert any(LOADING in r for r in pinger.replies), pinger.replies
    # Slices are 2 ms (and the store's table doubles incrementally): a few
    # ms, with a margin for a loaded machine, more under sanitizers.
    limit = 0.25 if akvtest.daemon_is_instrumented() else 0.05
    assert pinger.worst < limit, pinger.worst
    print("figures: %d records replayed in %.2f s with clients connected; worst PING answer "
          "%.1f ms over %d PINGs" % (BIG_RECORDS, load_s, pinger.worst * 1000, pinger.n))
    f = info_fields(c, "persistence")
    assert f["loading"] == "0" and "loading_total_bytes" not in f, f
    assert f["aof_replayed_records"] == str(BIG_RECORDS), f
    assert f["aof_fsync"] == "always" and f["aof_enabled"] == "1", f
    for k, v in sample.items():
        assert c.cmd("GET", k) == v, k
    in_db1 = BIG_RECORDS // 1000
    assert c.cmd("DBSIZE") == BIG_RECORDS - in_db1
    assert c.cmd("SELECT", "1") == "OK"
    assert c.cmd("DBSIZE") == in_db1
    assert c.cmd("SET", "cat", "dog") == "OK"
    assert c.cmd("PING") == "PONG"
    c.close()
    assert "ready:" in d.text()
    stop_clean(d)


@akvtest.test("loading")
def test_big_transaction_in_the_file(env):
    """A MULTI record near the 64 MB limit (a transaction of many long
    values) is checked in pieces between slices: other clients still get
    their answers within a few ms, and its records all load."""
    datadir = os.path.join(env.workdir, "bigmulti")
    os.makedirs(datadir)
    filler = [w for w in env.words if w.startswith("w")]
    m = len(filler)
    recs, size, i = [], 0, 0
    while size < (64 << 20) - 20000:
        val = " ".join(filler[(i * 7 + j) % m] for j in range(64))
        r = put("%s %s" % (filler[i % m], filler[(i // m) % m]), val)
        recs.append(r)
        size += len(r)
        i += 1
    with open(os.path.join(datadir, "appendonly.aof"), "wb") as f:
        f.write(file_header())
        f.write(b"".join(put("%s %s" % (filler[j % m], filler[(j // m) % m]), "cat")
                         for j in range(50000)))
        f.write(rec(8, struct.pack("<I", len(recs)) + b"".join(recs)))
    d = start_loading(env, datadir)
    c = d.client()
    pinger = Pinger(d.port)
    pinger.start()
    try:
        wait_loaded(c)
    finally:
        pinger.finish()
    limit = 0.25 if akvtest.daemon_is_instrumented() else 0.05
    print("figures: a MULTI record of %d records (%.1f MB) replayed; worst PING answer %.1f ms "
          "over %d PINGs" % (len(recs), size / 1e6, pinger.worst * 1000, pinger.n))
    assert pinger.worst < limit, pinger.worst
    f = info_fields(c, "persistence")
    assert f["aof_replayed_records"] == str(50001), f
    assert c.cmd("DBSIZE") == max(i, 50000)
    c.close()
    stop_clean(d)


@akvtest.test("loading")
def test_ready_after_loading(env):
    """READY=1 only once the replay is over; STATUS= lines and the
    watchdog's pings before."""
    datadir, _ = big_dir(env, "ready", n=BIG_RECORDS // 2)
    path = os.path.join(env.workdir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    msgs = []
    d = start_loading(env, datadir, extra_env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    c = d.client()
    try:
        loading_seen_at = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(m == "READY=1" for _, m in msgs):
            try:
                msgs.append((time.monotonic(), sock.recv(4096).decode()))
            except socket.timeout:
                pass
            if loading_seen_at is None and info_fields(c, "persistence")["loading"] == "1":
                loading_seen_at = time.monotonic()
        ready = [t for t, m in msgs if m == "READY=1"]
        assert ready, msgs
        assert loading_seen_at is not None and loading_seen_at < ready[0], msgs
        # The loop runs during the replay, so the watchdog is fed.
        pings = [t for t, m in msgs if m == "WATCHDOG=1" and loading_seen_at < t < ready[0]]
        assert ready[0] - loading_seen_at < 0.3 or pings, msgs
        status = [m for _, m in msgs if m.startswith("STATUS=")]
        assert any("Replaying the append-only file" in m or "Loading the append-only file" in m
                   for m in status), status
        assert info_fields(c, "persistence")["loading"] == "0"
    finally:
        c.close()
        sock.close()
    stop_clean(d)


@akvtest.test("loading")
def test_stop_while_loading(env):
    """SIGTERM, then SHUTDOWN, during the replay: exit 0, the file (with a
    torn tail, which a finished replay would cut off) left untouched."""
    torn = put("cat", "dog")[:20]
    datadir, _ = big_dir(env, "stop", tail=torn)
    aof = os.path.join(datadir, "appendonly.aof")
    before = digest(aof)
    for how in ("SIGTERM", "SHUTDOWN"):
        d = start_loading(env, datadir)
        c = d.client()
        assert info_fields(c, "persistence")["loading"] == "1"
        if how == "SIGTERM":
            d.send_signal(signal.SIGTERM)
        else:
            c.send(Client.encode("SHUTDOWN"))
        assert d.proc.wait(timeout=60) == 0, d.text()
        d.log.close()
        c.close()
        assert_no_sanitizer_report(d)
        t = d.text()
        assert "replay abandoned" in t, t
        assert "cutting it off" not in t and "ready:" not in t, t
        assert digest(aof) == before, how


@akvtest.test("loading")
def test_preamble_loads_in_slices(env):
    """The big file rewritten with a snapshot preamble (aof-use-rdb-preamble
    yes, the default) loads as the records do: -LOADING meanwhile, INFO's
    loading_* fields moving, another client answered within a few ms, the
    same data at the end; and faster than the records."""
    datadir, sample = big_dir(env, "preamble")
    d = start_loading(env, datadir)
    c = d.client()
    wait_loaded(c)
    records_ms = float(re.findall(r"replayed \d+ records .*? in ([\d.]+) ms", d.text())[-1])
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    deadline = time.monotonic() + 120
    while info_fields(c, "persistence")["aof_rewrites"] != "1":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c.close()
    stop_clean(d)
    path = os.path.join(datadir, "appendonly.aof")
    with open(path, "rb") as f:
        assert f.read(18)[17] == 10  # the first record is a SNAPBEGIN
    size = os.path.getsize(path)

    t0 = time.monotonic()
    d = start_loading(env, datadir)
    c = d.client()
    pinger = Pinger(d.port)
    pinger.start()
    try:
        r = c.cmd("GET", "w0001 w0000")
        assert is_err(r) and r.args[0] == LOADING, r
        f = info_fields(c, "persistence")
        assert f["loading"] == "1" and int(f["loading_total_bytes"]) == size, f
        assert 0 <= int(f["loading_loaded_bytes"]) < size, f
        time.sleep(0.05)
        f2 = info_fields(c, "persistence")
        if f2["loading"] == "1":
            assert int(f2["loading_loaded_bytes"]) > int(f["loading_loaded_bytes"]), (f, f2)
        wait_loaded(c)
        load_s = time.monotonic() - t0
    finally:
        pinger.finish()
    assert any(LOADING in r for r in pinger.replies), pinger.replies
    limit = 0.25 if akvtest.daemon_is_instrumented() else 0.05
    assert pinger.worst < limit, pinger.worst
    preamble_ms = float(re.findall(r"replayed \d+ records .*? in ([\d.]+) ms", d.text())[-1])
    assert "; %d entries from a snapshot preamble" % BIG_RECORDS in d.text(), d.text()[-2000:]
    print("figures: %d entries from a snapshot preamble in %.2f s (the records: %.2f s) with "
          "clients connected; worst PING answer %.1f ms over %d PINGs"
          % (BIG_RECORDS, preamble_ms / 1000, records_ms / 1000, pinger.worst * 1000, pinger.n))
    for k, v in sample.items():
        assert c.cmd("GET", k) == v, k
    in_db1 = BIG_RECORDS // 1000
    assert c.cmd("DBSIZE") == BIG_RECORDS - in_db1
    c.close()
    assert load_s < 120
    stop_clean(d)


@akvtest.test("loading")
def test_damaged_while_listening(env):
    """A damaged record found during the replay: the connected clients are
    closed and attnkvd exits 1 with the message of a damaged file."""
    datadir, _ = big_dir(env, "damaged", n=BIG_RECORDS // 3)
    aof = os.path.join(datadir, "appendonly.aof")
    with open(aof, "r+b") as f:
        f.seek(0, 2)
        end = f.tell()
        f.seek(end - 50)
        f.write(b"\xff")  # in the payload of a record near the end
    d = start_loading(env, datadir)
    c = d.client()
    r = c.cmd("GET", "x")
    assert is_err(r) and r.args[0] == LOADING, r
    assert d.proc.wait(timeout=120) == 1, d.text()
    d.log.close()
    assert_no_sanitizer_report(d)
    t = d.text()
    assert "cannot load the append-only file:" in t and "damaged record at offset" in t, t
    assert "ready:" not in t, t
    deadline = time.monotonic() + 10
    while not c.at_eof():
        assert time.monotonic() < deadline, "client not closed"
        time.sleep(0.05)
    c.close()


# ---------------------------------------------------------------------------
# Persistence settings at run time.


def pdaemon(env, conf, datadir=None, extra_env=None):
    _count[0] += 1
    text = "".join("%s %s\n" % kv for kv in conf.items())
    return env.configured_daemon("rt%d" % _count[0], text, ("--workers", "1"), datadir=datadir,
                                 extra_env=extra_env)


def wait_info(c, pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = info_fields(c, "persistence")
        if pred(f):
            return f
        time.sleep(0.02)
    raise AssertionError("timed out waiting for %s: %r" % (what, f))


@akvtest.test("loading")
def test_appendonly_on_at_run_time(env):
    d = pdaemon(env, {"appendonly": "no"})
    c = d.client()
    assert info_fields(c, "persistence")["aof_enabled"] == "0"
    assert c.cmd("SET", "cat", "dog") == "OK"
    assert c.cmd("SET", "king", "queen", "EX", "1000") == "OK"
    assert not os.path.exists(d.aof)
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    assert c.cmd("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    # Written while the rewrite runs, or after: carried into the file.
    assert c.cmd("SET", "hello", "world") == "OK"
    f = wait_info(c, lambda f: f["aof_rewrites"] == "1", "the rewrite creating the file")
    assert f["aof_enabled"] == "1" and f["aof_last_rewrite_status"] == "ok", f
    assert c.cmd("SET", "foo", "bar") == "OK"
    assert c.cmd("DEL", "cat") == 1
    c.close()
    stop_clean(d)
    assert "created by a rewrite" in d.text()
    d2 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c = d2.client()
    assert c.cmd("GET", "cat") is None
    assert c.cmd("GET", "hello") == "world"
    assert c.cmd("GET", "foo") == "bar"
    assert c.cmd("GET", "king") == "queen" and c.cmd("TTL", "king") > 900
    c.close()
    stop_clean(d2)


@akvtest.test("loading")
def test_shutdown_while_creating_the_file(env):
    """SHUTDOWN is refused while the rewrite that appendonly yes started
    has not made the file yet (as Redis refuses it), unless FORCE."""
    d = pdaemon(env, {"appendonly": "no"}, extra_env={"AKV_TEST_REWRITE_DELAY_US": "400000"})
    c = d.client()
    for k in ("cat", "dog", "king"):
        assert c.cmd("SET", k, "queen") == "OK"
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    r = c.cmd("SHUTDOWN")
    assert is_err(r, "Errors trying to SHUTDOWN"), r
    assert "writing the initial AOF" in d.text()
    wait_info(c, lambda f: f["aof_rewrites"] == "1", "the rewrite")
    c.send(Client.encode("SHUTDOWN"))
    assert d.proc.wait(timeout=60) == 0
    d.log.close()
    c.close()
    assert_no_sanitizer_report(d)
    d2 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c = d2.client()
    assert c.cmd("GET", "king") == "queen" and c.cmd("DBSIZE") == 3
    c.close()
    stop_clean(d2)


@akvtest.test("loading")
def test_sigterm_while_creating_the_file(env):
    """SIGTERM while the rewrite that appendonly yes started has not made
    the file yet: the shutdown waits for it, so the writes made since the
    switch (in memory only until then) are in the file; a second SIGTERM
    stops waiting."""
    d = pdaemon(env, {"appendonly": "no"}, extra_env={"AKV_TEST_REWRITE_DELAY_US": "400000"})
    c = d.client()
    for k in ("cat", "dog", "king"):
        assert c.cmd("SET", k, "queen") == "OK"
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    assert c.cmd("SET", "ball", "w0003") == "OK"
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=60) == 0
    d.log.close()
    c.close()
    assert "shutdown waits for the rewrite that creates the AOF" in d.text(), d.text()[-3000:]
    assert_no_sanitizer_report(d)
    d2 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c = d2.client()
    assert c.cmd("GET", "king") == "queen" and c.cmd("GET", "ball") == "w0003"
    assert c.cmd("DBSIZE") == 4
    c.close()
    stop_clean(d2)

    # 100 ms an entry, 60 entries: a 6 s rewrite, cancelled between entries.
    d = pdaemon(env, {"appendonly": "no"}, extra_env={"AKV_TEST_REWRITE_DELAY_US": "100000"})
    c = d.client()
    for i in range(60):
        assert c.cmd("SET", "w%04d" % i, "queen") == "OK"
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    d.proc.send_signal(signal.SIGTERM)
    akvtest.wait_log(d, "shutdown waits for the rewrite")
    t0 = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=60) == 0
    assert time.monotonic() - t0 < 3, "the second SIGTERM did not stop the wait"
    d.log.close()
    c.close()
    assert "abandoning the AOF being created" in d.text(), d.text()[-3000:]
    assert_no_sanitizer_report(d)


@akvtest.test("loading")
def test_appendonly_on_replaces_old_file(env):
    """An old file in dir is replaced by the stores' contents, not appended
    to (as Redis's rewrite replaces it)."""
    d = pdaemon(env, {"appendonly": "yes"})
    c = d.client()
    assert c.cmd("SET", "dog", "w0001") == "OK"
    c.close()
    stop_clean(d)
    d2 = pdaemon(env, {"appendonly": "no"}, datadir=d.datadir)
    c = d2.client()
    assert c.cmd("GET", "dog") is None
    assert c.cmd("SET", "ball", "w0002") == "OK"
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    wait_info(c, lambda f: f["aof_rewrites"] == "1", "the rewrite")
    c.close()
    stop_clean(d2)
    d3 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c = d3.client()
    assert c.cmd("GET", "dog") is None and c.cmd("GET", "ball") == "w0002"
    c.close()
    stop_clean(d3)


@akvtest.test("loading")
def test_appendonly_off_at_run_time(env):
    d = pdaemon(env, {"appendonly": "yes", "appendfsync": "always"})
    c = d.client()
    assert c.cmd("SET", "cat", "dog") == "OK"
    assert c.cmd("CONFIG", "SET", "appendonly", "no") == "OK"
    f = info_fields(c, "persistence")
    assert f["aof_enabled"] == "0" and f["aof_fsync"] == "", f
    size = os.path.getsize(d.aof)
    assert c.cmd("SET", "hello", "world") == "OK"
    assert c.cmd("DEL", "cat") == 1
    assert c.cmd("BGREWRITEAOF").args[0].startswith("ERR appendonly is off")
    time.sleep(0.2)
    assert os.path.getsize(d.aof) == size
    c.close()
    stop_clean(d)
    assert "AOF closed" in d.text()
    d2 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c = d2.client()
    assert c.cmd("GET", "cat") == "dog" and c.cmd("GET", "hello") is None
    # Off and on again in one daemon.
    assert c.cmd("CONFIG", "SET", "appendonly", "no") == "OK"
    assert c.cmd("SET", "foo", "bar") == "OK"
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    wait_info(c, lambda f: f["aof_rewrites"] == "1", "the rewrite")
    c.close()
    stop_clean(d2)
    d3 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c = d3.client()
    assert c.cmd("GET", "cat") == "dog" and c.cmd("GET", "foo") == "bar"
    c.close()
    stop_clean(d3)


@akvtest.test("loading")
def test_appendonly_flips_under_writes(env):
    """appendonly switched on and off some forty times, with BGREWRITEAOF
    and appendfsync changes in between, while a client writes: every write
    is answered OK, and once the last appendonly yes has created its file,
    every acknowledged write survives a kill -9."""
    import random
    rnd = random.Random(15)
    d = pdaemon(env, {"appendonly": "no", "appendfsync": "always"})
    c = d.client()
    acked, errors, done = [], [], threading.Event()

    def writer():
        w = Client(d.port)
        i = 0
        while not done.is_set():
            k = "w%04d w%04d" % (i // 1000 % 1000, i % 1000)
            r = w.cmd("SET", k, "w%04d" % (i % 997))
            (acked if r == "OK" else errors).append(k if r == "OK" else r)
            i += 1
        w.close()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        for _ in range(40):
            assert c.cmd("CONFIG", "SET", "appendonly", rnd.choice(["yes", "no"])) == "OK"
            if rnd.random() < 0.5:
                c.cmd("BGREWRITEAOF")  # refused while off or busy: either is fine
            if rnd.random() < 0.3:
                assert c.cmd("CONFIG", "SET", "appendfsync",
                             rnd.choice(["always", "everysec", "no"])) == "OK"
            time.sleep(rnd.random() * 0.04)
        assert c.cmd("CONFIG", "SET", "appendfsync", "always", "appendonly", "no") == "OK"
        assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
        wait_info(c, lambda f: f["aof_rewrites"] == "1" and f["aof_rewrite_in_progress"] == "0",
                  "the rewrite creating the file")
        time.sleep(0.2)  # more writes, appended to the file
    finally:
        done.set()
        t.join(30)
    assert not errors, errors[:5]
    assert len(acked) > 100, len(acked)
    assert d.alive()
    assert_no_sanitizer_report(d)
    d.kill()
    d2 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c2 = d2.client()
    missing = [k for k in set(acked) if c2.cmd("EXISTS", k) != 1]
    assert not missing, (len(missing), missing[:5])
    c.close()
    c2.close()
    stop_clean(d2)


@akvtest.test("loading")
def test_appendfsync_at_run_time(env):
    d = pdaemon(env, {"appendonly": "yes", "appendfsync": "everysec"})
    c = d.client()
    assert info_fields(c, "persistence")["aof_fsync"] == "everysec"
    for policy in ("always", "no", "everysec", "always"):
        assert c.cmd("CONFIG", "SET", "appendfsync", policy) == "OK"
        assert info_fields(c, "persistence")["aof_fsync"] == policy
        t0 = time.monotonic()
        for i in range(20):
            assert c.cmd("SET", "cat", "w%04d" % i) == "OK"
        assert time.monotonic() - t0 < 10
    c.close()
    stop_clean(d)
    d2 = pdaemon(env, {"appendonly": "yes"}, datadir=d.datadir)
    c = d2.client()
    assert c.cmd("GET", "cat") == "w0019"
    c.close()
    stop_clean(d2)


@akvtest.test("loading")
def test_persistence_settings_all_or_nothing(env):
    aofdir = os.path.join(env.workdir, "aofdir")
    os.makedirs(aofdir)
    d = pdaemon(env, {"appendonly": "no", "appendfsync": "everysec", "dir": aofdir})
    aof = os.path.join(aofdir, "appendonly.aof")
    c = d.client()
    before = {n: c.cmd("CONFIG", "GET", n)[1] for n in (
        "appendonly", "appendfsync", "auto-aof-rewrite-percentage", "auto-aof-rewrite-min-size")}
    for bad in (("appendfsync", "sometimes"), ("appendonly", "maybe"),
                ("auto-aof-rewrite-percentage", "-1"), ("auto-aof-rewrite-min-size", "lots")):
        r = c.cmd("CONFIG", "SET", "appendonly", "yes", "appendfsync", "always", *bad)
        assert is_err(r), (bad, r)
    # The AOF was switched on, then back off when maxclients failed.
    r = c.cmd("CONFIG", "SET", "appendonly", "yes", "appendfsync", "always",
              "auto-aof-rewrite-percentage", "50", "maxclients", "nope")
    assert is_err(r), r
    for n, v in before.items():
        assert c.cmd("CONFIG", "GET", n)[1] == v, n
    f = info_fields(c, "persistence")
    assert f["aof_enabled"] == "0", f
    assert c.cmd("SET", "cat", "dog") == "OK"
    # A dir that cannot take the file: refused, nothing changes.
    os.rmdir(aofdir)
    try:
        r = c.cmd("CONFIG", "SET", "appendonly", "yes")
        assert is_err(r) and "No such file or directory" in r.args[0], r
        assert c.cmd("CONFIG", "GET", "appendonly")[1] == "no"
        assert info_fields(c, "persistence")["aof_enabled"] == "0"
    finally:
        os.makedirs(aofdir)
    assert "appendonly yes refused" in d.text()
    assert not os.path.exists(aof)
    # The thresholds take effect at once.
    assert c.cmd("CONFIG", "SET", "auto-aof-rewrite-percentage", "0",
                 "auto-aof-rewrite-min-size", "1mb") == "OK"
    assert c.cmd("CONFIG", "GET", "auto-aof-rewrite-min-size")[1] in ("1048576", "1mb")
    # And now it works.
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    wait_info(c, lambda f: f["aof_rewrites"] == "1", "the rewrite")
    assert os.path.getsize(aof) > 16
    c.close()
    stop_clean(d)


@akvtest.test("loading")
def test_auto_rewrite_threshold_at_run_time(env):
    d = pdaemon(env, {"appendonly": "yes", "appendfsync": "no",
                      "auto-aof-rewrite-percentage": "0"})
    c = d.client()
    for i in range(300):
        assert c.cmd("SET", "cat", "w%04d" % i) == "OK"
    time.sleep(0.3)
    assert info_fields(c, "persistence")["aof_rewrites"] == "0"
    assert c.cmd("CONFIG", "SET", "auto-aof-rewrite-percentage", "100",
                 "auto-aof-rewrite-min-size", "4kb") == "OK"
    for i in range(300):
        assert c.cmd("SET", "cat", "w%04d" % i) == "OK"
    wait_info(c, lambda f: int(f["aof_rewrites"]) >= 1, "an automatic rewrite")
    c.close()
    stop_clean(d)


def make_env(workdir):
    return akvtest.Env(workdir)


if __name__ == "__main__":
    sys.exit(akvtest.main("loading", make_env=make_env))
