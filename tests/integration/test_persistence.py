#!/usr/bin/env python3
"""daemon-persistence: the append-only file.

Restart, kill -9 under a write load with appendfsync always (also during a
rewrite), a torn tail, a damaged record, a full disk (RLIMIT_FSIZE), a
change of vocabulary, automatic rewrites; attnkv-check-aof ($AKV_CHECK_AOF,
default $AKV_BUILD_ROOT/tools/attnkv-check-aof). Each test starts daemons of
its own in data directories of its own, kills some with SIGKILL, and checks
what a restart replays. Figures (records written, acknowledged, recovered)
are printed as "figures:" lines. Also run under TSan (scripts/test).

Run alone: meson test -C build daemon-persistence, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_persistence.py [-k NAME]
(environment: see akvtest.py).
"""

import os
import random
import resource
import shutil
import socket
import sys
import threading
import time

import akvtest
from akvtest import (IO_TIMEOUT, Client, Closed, import_vocab, info_fields, is_err, run_tool,
                     write_glove)

_pcount = [0]


def check_tool():
    return os.environ.get("AKV_CHECK_AOF") or os.path.join(
        os.environ.get("AKV_BUILD_ROOT", "."), "tools", "attnkv-check-aof")


def pstart(env, conf=None, args=(), **kw):
    """Starts a daemon with the given persistence directives (a dict); kw:
    more of Daemon's arguments (datadir, vectors, extra_env...)."""
    _pcount[0] += 1
    text = "".join("%s %s\n" % kv for kv in (conf or {}).items())
    return env.configured_daemon("persist%d" % _pcount[0], text, ("--workers", "1") + tuple(args),
                                 **kw)


def assert_no_sanitizer_report(d):
    t = d.text()
    for bad in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
                "ERROR: LeakSanitizer"):
        assert bad not in t, t[-6000:]


def kill9(d):
    d.proc.kill()
    d.proc.wait(timeout=30)
    d.log.close()
    assert_no_sanitizer_report(d)


def clean_stop(d):
    d.check_clean_exit()
    assert_no_sanitizer_report(d)


def wait_info(c, pred, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        f = info_fields(c, "persistence")
        if pred(f):
            return f
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s: %r" % (what, f))
        time.sleep(0.02)


def all_entries(c):
    keys = c.cmd("KEYS", "*")
    return {k: c.cmd("GET", k) for k in keys}


class WriteLoad:
    """Client threads writing (SET and DEL) to disjoint keys, one request in
    flight each, recording which writes were acknowledged."""

    def __init__(self, port, nthreads, first_key, keys_per_thread, seed):
        self.port = port
        self.ops = [[] for _ in range(nthreads)]  # (key, value or None, acked)
        self.stop = threading.Event()
        self.threads = []
        for t in range(nthreads):
            keys = ["w%04d" % (first_key + t * keys_per_thread + j)
                    for j in range(keys_per_thread)]
            th = threading.Thread(target=self._run, args=(t, keys, random.Random(seed + t)))
            th.daemon = True
            self.threads.append(th)

    def start(self):
        for th in self.threads:
            th.start()

    def _run(self, t, keys, rnd):
        try:
            c = Client(self.port, timeout=IO_TIMEOUT)
        except OSError:
            return
        log = self.ops[t]
        try:
            while not self.stop.is_set():
                key = rnd.choice(keys)
                if rnd.random() < 0.2:
                    op = [key, None, False]
                    log.append(op)
                    r = c.cmd("DEL", key)
                    assert isinstance(r, int), r
                else:
                    # Three words, so that a half-applied value would show.
                    val = " ".join("w%04d" % rnd.randrange(2000) for _ in range(3))
                    op = [key, val, False]
                    log.append(op)
                    r = c.cmd("SET", key, val)
                    assert r == "OK", r
                op[2] = True
        except (OSError, Closed):
            pass  # the daemon was killed
        finally:
            c.close()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(timeout=60)
            assert not th.is_alive()

    def counts(self):
        sent = sum(len(o) for o in self.ops)
        acked = sum(1 for o in self.ops for op in o if op[2])
        return sent, acked

    def verify(self, base, actual):
        """base: the entries before the load; actual: after the restart.
        Every acknowledged write must be there; the one write in flight per
        thread may be there, whole, or not at all; nothing else changes.
        Returns how many in-flight writes were found applied."""
        allowed = {}
        for k, v in base.items():
            allowed[k] = {v}
        inflight_applied = 0
        inflight = {}
        for log in self.ops:
            for key, val, acked in log:
                if acked:
                    allowed[key] = {val}
                else:
                    inflight[key] = val
        for key, val in inflight.items():
            before = allowed.get(key, {None})
            allowed[key] = before | {val}
        for key in set(allowed) | set(actual):
            got = actual.get(key)
            ok = allowed.get(key, {None})
            assert got in ok, "key %r: got %r, allowed %r" % (key, got, ok)
            if key in inflight and got == inflight[key] and len(ok) > 1:
                inflight_applied += 1
        return inflight_applied


@akvtest.test("persistence")
def test_aof_restart_replays(env):
    d = pstart(env)
    c = d.client()
    assert c.cmd("SET", "one", "number") == "OK"
    assert c.cmd("FLUSHALL") == "OK"
    for k, v in [("cat", "animal"), ("dog", "animal"), ("hello world", "foo bar"),
                 ("café", "queen")]:
        assert c.cmd("SET", k, v) == "OK"
    assert c.cmd("DEL", "dog", "nosuchkey") == 1
    assert c.cmd("SET", "cat", "king") == "OK"
    assert is_err(c.cmd("SET", "cat", "zzzz"), "unknown word")  # not logged
    f = info_fields(c, "persistence")
    assert f["aof_enabled"] == "1" and f["aof_fsync"] == "everysec", f
    assert f["aof_last_write_status"] == "ok" and f["aof_rewrite_in_progress"] == "0", f
    assert c.cmd("CONFIG", "GET", "appendfsync") == ["appendfsync", "everysec"]
    c.close()
    clean_stop(d)
    r = run_tool([check_tool(), d.aof])
    assert r.returncode == 0 and "8 good records (6 SET, 1 DEL, 1 FLUSHALL)" in r.stdout, r

    d2 = pstart(env, datadir=d.datadir)
    assert "replayed 8 records" in d2.text(), d2.text()
    c = d2.client()
    assert all_entries(c) == {"cat": "king", "hello world": "foo bar", "café": "queen"}
    assert info_fields(c, "persistence")["aof_replayed_records"] == "8"
    c.close()
    clean_stop(d2)


@akvtest.test("persistence")
def test_aof_off_and_bad_settings(env):
    d = pstart(env, {"appendonly": "no"})
    c = d.client()
    assert c.cmd("SET", "cat", "animal") == "OK"
    assert info_fields(c, "persistence")["aof_enabled"] == "0"
    assert is_err(c.cmd("BGREWRITEAOF"), "appendonly is off")
    c.close()
    clean_stop(d)
    assert not os.path.exists(d.aof)

    d = pstart(env, {"appendfilename": "sub/file.aof"}, expect_start=False)
    assert d.proc.wait(timeout=60) == 1
    assert "plain file name" in d.text(), d.text()
    d.log.close()
    d = pstart(env, {"dir": "/nonexistent/dir"}, expect_start=False)
    assert d.proc.wait(timeout=60) == 1
    assert "dir /nonexistent/dir: No such file or directory" in d.text(), d.text()
    d.log.close()


@akvtest.test("persistence")
def test_kill9_under_load_always(env):
    d = pstart(env, {"appendfsync": "always"})
    c = d.client()
    base = {"cat": "animal", "dog": "animal"}
    for k, v in base.items():
        assert c.cmd("SET", k, v) == "OK"
    load = WriteLoad(d.port, 4, 0, 100, 1)
    load.start()
    time.sleep(1.5)
    kill9(d)
    load.finish()
    sent, acked = load.counts()
    assert acked > 50, (sent, acked)

    d2 = pstart(env, {"appendfsync": "always"}, datadir=d.datadir)
    c = d2.client()
    actual = all_entries(c)
    applied = load.verify(base, actual)
    replayed = int(info_fields(c, "persistence")["aof_replayed_records"])
    print("figures: kill -9 under load (always): %d writes sent, %d acknowledged, "
          "%d records replayed, %d entries recovered, %d in-flight writes found applied"
          % (sent + 2, acked + 2, replayed, len(actual), applied))
    c.close()
    clean_stop(d2)


@akvtest.test("persistence")
def test_kill9_during_rewrite(env):
    delay = {"AKV_TEST_REWRITE_DELAY_US": "1000"}
    conf = {"appendfsync": "always"}
    d = pstart(env, conf, extra_env=delay)
    c = d.client()
    base = {}
    reqs = []
    for i in range(1000, 1800):
        k, v = "w%04d" % i, "w%04d w%04d" % (i - 1000, i - 999)
        base[k] = v
        reqs.append(Client.encode("SET", k, v))
    c.send(b"".join(reqs))
    assert all(c.read() == "OK" for _ in reqs)

    # Phase 1: killed while the rewrite is still scanning.
    load = WriteLoad(d.port, 4, 0, 100, 2)
    load.start()
    time.sleep(0.2)
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    assert is_err(c.cmd("BGREWRITEAOF"), "already in progress")
    time.sleep(0.3)
    assert info_fields(c, "persistence")["aof_rewrite_in_progress"] == "1"
    kill9(d)
    load.finish()
    sent1, acked1 = load.counts()
    assert os.path.exists(os.path.join(d.datadir, "temp-rewrite-appendonly.aof"))

    d2 = pstart(env, conf, datadir=d.datadir, extra_env=delay)
    assert "left by a rewrite that did not finish" in d2.text(), d2.text()
    assert not os.path.exists(os.path.join(d.datadir, "temp-rewrite-appendonly.aof"))
    c = d2.client()
    actual = all_entries(c)
    applied1 = load.verify(base, actual)
    print("figures: kill -9 during a rewrite (always): %d writes sent, %d acknowledged "
          "(plus %d preloaded), %d entries recovered, %d in-flight found applied"
          % (sent1, acked1, len(base), len(actual), applied1))

    # Phase 2: a rewrite that completes while writes go on, then a kill.
    base = actual
    load = WriteLoad(d2.port, 4, 0, 100, 3)
    load.start()
    time.sleep(0.2)
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_info(c, lambda f: f["aof_rewrites"] == "1", what="the rewrite")
    time.sleep(0.3)
    kill9(d2)
    load.finish()
    sent2, acked2 = load.counts()
    assert acked2 > 20

    d3 = pstart(env, conf, datadir=d.datadir)
    c = d3.client()
    actual = all_entries(c)
    applied2 = load.verify(base, actual)
    print("figures: kill -9 after a rewrite with writes during it (always): %d writes sent, "
          "%d acknowledged, %d entries recovered, %d in-flight found applied"
          % (sent2, acked2, len(actual), applied2))
    c.close()
    clean_stop(d3)
    r = run_tool([check_tool(), d3.aof])
    assert r.returncode == 0 and "snapshot preamble" in r.stdout, r


@akvtest.test("persistence")
def test_torn_tail_is_cut(env):
    d = pstart(env)
    c = d.client()
    for i in range(5):
        assert c.cmd("SET", "w%04d" % i, "w%04d" % (i + 100)) == "OK"
    c.close()
    clean_stop(d)
    size = os.path.getsize(d.aof)
    os.truncate(d.aof, size - 3)

    copy = os.path.join(env.workdir, "torn-copy.aof")
    shutil.copy(d.aof, copy)
    r = run_tool([check_tool(), copy])
    assert r.returncode == 1 and "incomplete last record" in r.stdout, r
    r = run_tool([check_tool(), "--fix", "--yes", copy])
    assert r.returncode == 1 and "truncated to" in r.stdout, r
    r = run_tool([check_tool(), copy])
    assert r.returncode == 0 and "4 good records" in r.stdout, r
    assert run_tool([check_tool()]).returncode == 2
    assert run_tool([check_tool(), "/nonexistent.aof"]).returncode == 2

    d2 = pstart(env, datadir=d.datadir)
    assert "is incomplete" in d2.text() and "cutting it off" in d2.text(), d2.text()
    c = d2.client()
    assert all_entries(c) == {"w%04d" % i: "w%04d" % (i + 100) for i in range(4)}
    # Writes after the cut land after the last good record.
    assert c.cmd("SET", "w0004", "w0104") == "OK"
    c.close()
    clean_stop(d2)
    assert run_tool([check_tool(), d2.aof]).returncode == 0


@akvtest.test("persistence")
def test_corrupt_middle_stops_startup(env):
    d = pstart(env)
    c = d.client()
    for i in range(10):
        assert c.cmd("SET", "w%04d" % i, "w%04d" % (i + 100)) == "OK"
    c.close()
    clean_stop(d)
    # PUT records are 16 + 16 + 5 + 5 = 42 bytes after the 16-byte header:
    # damage the payload of the sixth one.
    off6 = 16 + 5 * 42
    with open(d.aof, "r+b") as f:
        f.seek(off6 + 20)
        b = f.read(1)
        f.seek(off6 + 20)
        f.write(bytes([b[0] ^ 0x04]))

    d2 = pstart(env, datadir=d.datadir, expect_start=False)
    assert d2.proc.wait(timeout=60) == 1
    t = d2.text()
    d2.log.close()
    assert "%s: damaged record at offset %d (record checksum mismatch)" % (
        os.path.realpath(d.aof), off6) in t, t
    r = run_tool([check_tool(), d.aof])
    assert r.returncode == 1 and "damaged record at offset %d" % off6 in r.stdout, r
    r = run_tool([check_tool(), "--fix", "--yes", d.aof])
    assert r.returncode == 1 and "truncated to %d bytes" % off6 in r.stdout, r

    d3 = pstart(env, datadir=d.datadir)
    c = d3.client()
    assert all_entries(c) == {"w%04d" % i: "w%04d" % (i + 100) for i in range(5)}
    c.close()
    clean_stop(d3)


@akvtest.test("persistence")
def test_full_disk_misconf(env):
    limit = 8 * 1024

    def small_files():
        # Only the soft limit: raising it again needs no privilege.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    d = pstart(env, {"appendfsync": "always"}, preexec_fn=small_files,
               args=("--loglevel", "notice"))
    a, b = d.client(), d.client()
    # Writes of about 330 bytes until one is not answered: the file has
    # reached the limit, and that write's reply is held.
    expect = {}
    a.sock.settimeout(2.0)
    held = None
    for i in range(100):
        k, v = "w%04d" % i, " ".join("w%04d" % ((i + j) % 2000) for j in range(50))
        a.send(Client.encode("SET", k, v))
        try:
            assert a.read() == "OK"
            expect[k] = v
        except socket.timeout:
            held = (k, v)
            break
    assert held and len(expect) > 10, (held, len(expect))
    f = wait_info(b, lambda f: f["aof_last_write_status"] == "err", what="a write error")
    assert int(f["aof_pending_bytes"]) > 300, f
    assert "File too large" in f["aof_last_write_error"], f
    r = b.cmd("SET", "one", "number")
    assert is_err(r, "MISCONF Errors writing to the AOF file: File too large"), r
    assert is_err(b.cmd("DEL", "w0000"), "MISCONF")
    assert is_err(b.cmd("FLUSHALL"), "MISCONF")
    assert b.cmd("GET", "w0000") == expect["w0000"]
    assert b.cmd("EXISTS", "w0000") == 1
    assert isinstance(b.cmd("QUERY", "cat"), list)
    # The write that failed is not acknowledged while it is not in the file.
    a.sock.settimeout(1.5)
    try:
        a._fill()
        raise AssertionError("a reply came while the AOF could not be written: %r" % a.buf)
    except socket.timeout:
        pass
    a.sock.settimeout(IO_TIMEOUT)
    assert d.alive()
    print("figures: full disk: %d writes acknowledged before the limit, 1 held, MISCONF after"
          % len(expect))

    resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert a.read() == "OK"
    expect[held[0]] = held[1]
    wait_info(b, lambda f: f["aof_last_write_status"] == "ok", what="recovery")
    assert b.cmd("SET", "one", "number") == "OK"
    expect["one"] = "number"
    a.close()
    b.close()
    clean_stop(d)

    d2 = pstart(env, datadir=d.datadir)
    c = d2.client()
    assert all_entries(c) == expect
    c.close()
    clean_stop(d2)


@akvtest.test("persistence")
def test_vocabulary_change_keeps_text(env):
    missing = {"king", "queen", "café"}
    words = [w for w in env.words if w not in missing]
    txt = os.path.join(env.workdir, "fewer.txt")
    write_glove(txt, words, env.vecs)
    fewer = os.path.join(env.workdir, "fewer.akv")
    import_vocab(txt, fewer)

    d = pstart(env)
    c = d.client()
    entries = {"king": "queen", "cat": "animal", "hello king": "world", "café": "dog",
               "w0001": "queen w0002"}
    for k, v in entries.items():
        assert c.cmd("SET", k, v) == "OK"
    c.close()
    clean_stop(d)

    d2 = pstart(env, datadir=d.datadir, vectors=fewer)
    t = d2.text()
    assert "4 entries do not embed with the current vectors" in t, t
    assert "unknown word" in t and "'king'" in t, t
    c = d2.client()
    assert info_fields(c, "persistence")["aof_unembeddable_entries"] == "4"
    assert all_entries(c) == {"cat": "animal"}
    assert c.cmd("DEL", "café") == 0  # not served, but its deletion is kept
    assert c.cmd("SET", "w0001", "w0003") == "OK"  # replaces the text-only entry
    assert info_fields(c, "persistence")["aof_unembeddable_entries"] == "2"
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_info(c, lambda f: f["aof_rewrites"] == "1", what="the rewrite")
    c.close()
    clean_stop(d2)
    # The rewrite: the two served entries in the snapshot preamble (written
    # for fewer.akv), the two text-only ones as records after it.
    r = run_tool([check_tool(), d2.aof])
    assert r.returncode == 0 and "2 good records (2 SET" in r.stdout, r
    assert "snapshot preamble" in r.stdout and "2 entries (0 payloads, 0 with an expiry time) in 1 chunks" in r.stdout, r

    # Other vectors than the preamble's: its entries are embedded again
    # from their text.
    d3 = pstart(env, datadir=d.datadir)
    assert "written for other vectors" in d3.text(), d3.text()
    assert "; 2 entries from a snapshot preamble, embedded again" in d3.text(), d3.text()
    c = d3.client()
    assert all_entries(c) == {"king": "queen", "cat": "animal", "hello king": "world",
                              "w0001": "w0003"}
    assert info_fields(c, "persistence")["aof_unembeddable_entries"] == "0"
    c.close()
    clean_stop(d3)


@akvtest.test("persistence")
def test_auto_rewrite(env):
    conf = {"auto-aof-rewrite-percentage": "100", "auto-aof-rewrite-min-size": "4kb",
            "appendfsync": "no"}
    d = pstart(env, conf)
    c = d.client()
    for i in range(600):
        assert c.cmd("SET", "cat", "w%04d" % i) == "OK"
    f = wait_info(c, lambda f: int(f["aof_rewrites"]) >= 1, what="an automatic rewrite")
    assert f["aof_last_rewrite_status"] == "ok", f
    assert int(f["aof_current_size"]) < 600 * 42, f
    c.close()
    clean_stop(d)
    assert "starting an automatic AOF rewrite" in d.text()
    d2 = pstart(env, conf, datadir=d.datadir)
    c = d2.client()
    assert all_entries(c) == {"cat": "w0599"}
    c.close()
    clean_stop(d2)


if __name__ == "__main__":
    sys.exit(akvtest.main("persistence"))
