#!/usr/bin/env python3
"""daemon-repair: attnkv-check-aof's repairs, its vocabulary check, and the
backup procedure of docs/operations.md, each against the real daemon.

--fix and --salvage report what they would lose, keep a backup, ask on a
terminal (a pty here) or take --yes, and refuse without either; --salvage on
a 500,000-record file with one damaged byte loses one record (or one MULTI),
and the daemon replays the result; --vocab lists exactly the entries a
daemon started on the new vocabulary no longer serves; the backup procedure
(BGREWRITEAOF, wait, copy, check, restore) runs while clients write; a
FIFO or a directory is refused at once; appendonly no warns about the
entries that only the file keeps.

Run alone: meson test -C build daemon-repair, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_repair.py [-k NAME]
(environment: see akvtest.py; AKV_CHECK_AOF as in test_persistence.py).
"""

import glob
import hashlib
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib

import akvtest
from akvtest import Daemon, import_vocab, info_fields, run_tool, write_glove


def wait_until(pred, timeout=10.0, what="condition", step=0.01):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(step)


def check_tool():
    return os.environ.get("AKV_CHECK_AOF") or os.path.join(
        os.environ.get("AKV_BUILD_ROOT", "."), "tools", "attnkv-check-aof")


# ---------------------------------------------------------------------------
# Writing AOF files directly (the layout of src/persist/aof.h).


def file_header():
    h = b"AKV-AOF\n" + struct.pack("<I", 1)
    return h + struct.pack("<I", zlib.crc32(h))


def record(rtype, payload):
    h = bytes([0xA7, rtype, 0, 0]) + struct.pack("<I", len(payload))
    return h + struct.pack("<II", zlib.crc32(h), zlib.crc32(payload)) + payload


def put(db, key, val, expire=0):
    k, v = key.encode(), val.encode()
    return record(4, struct.pack("<IQI", db, expire, len(k)) + k + v)


def multi(recs):
    return record(8, struct.pack("<I", len(recs)) + b"".join(recs))


def key_of(i):
    """Distinct keys made of vocabulary words (w0000..w1999)."""
    return "w%04d w%04d" % (i // 2000, i % 2000)


def big_file(path, n):
    """n top-level records: PUTs of key_of(i), every 100th a MULTI of two
    PUTs (keys "w0xxx w1999 ..."). Returns {offset: [keys]} of every record
    and the record offsets in order."""
    where = {}
    offsets = []
    with open(path, "wb") as f:
        f.write(file_header())
        off = 16
        for i in range(n):
            if i % 100 == 50:
                a, b = key_of(i) + " w1998", key_of(i) + " w1999"
                r = multi([put(0, a, "w0001"), put(0, b, "w0002")])
                keys = [a, b]
            else:
                r = put(0, key_of(i), "w%04d" % (i % 2000))
                keys = [key_of(i)]
            f.write(r)
            where[off] = keys
            offsets.append(off)
            off += len(r)
    return where, offsets


def flip(path, offset, mask=0x20):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def backups(path):
    return sorted(glob.glob(path + ".bak-*"))


def run_pty(args, answer, timeout=60):
    """Runs args with a terminal as stdin and stdout; answers the [y/N]
    question with answer. Returns (exit status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(args[0], args)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    answered = False
    while time.monotonic() < deadline:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
        if not answered and b"[y/N]" in out:
            os.write(fd, answer.encode() + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def start(env, datadir, vectors=None, **kw):
    return Daemon(env.workdir, vectors or env.vectors, ("--workers", "1"), datadir=datadir,
                  name=os.path.basename(datadir), **kw)


def dbsize(d):
    c = d.client()
    try:
        return c.cmd("DBSIZE")
    finally:
        c.close()


# ---------------------------------------------------------------------------


@akvtest.test("repair")
def test_fix_reports_asks_and_keeps_a_backup(env):
    """A damaged record in the middle: the check says what --fix loses
    (the readable records after the damage too); --fix refuses without a
    terminal or --yes, takes "n" for an answer, and on "y" keeps the
    original as a backup before cutting."""
    dd = os.path.join(env.workdir, "fix")
    os.mkdir(dd)
    aof = os.path.join(dd, "appendonly.aof")
    where, offs = big_file(aof, 1000)
    size = os.path.getsize(aof)
    bad = offs[400]
    flip(aof, bad + 30)  # a payload byte of record 400 (a PUT)
    before = digest(aof)

    r = run_tool([check_tool(), aof])
    assert r.returncode == 1, r
    assert "damaged record at offset %d: record checksum mismatch" % bad in r.stdout, r.stdout
    assert ("--fix cuts the file to %d bytes, losing %d bytes: the damaged range and the 599 "
            "records after it that are still readable" % (bad, size - bad)) in r.stdout, r.stdout
    assert "--salvage keeps 999 records" in r.stdout, r.stdout
    assert "skip offset %d, %d bytes: one damaged record" % (bad, offs[401] - bad) in r.stdout

    # No terminal, no --yes: refused, nothing changed, no backup.
    r = run_tool([check_tool(), "--fix", aof])
    assert r.returncode == 3, r
    assert "needs confirmation" in r.stderr and "--yes" in r.stderr, r
    assert digest(aof) == before and backups(aof) == []

    # On a terminal, "n" keeps everything as it was.
    rc, out = run_pty([check_tool(), "--fix", aof], "n")
    assert rc == 3 and "not changed" in out, out
    assert digest(aof) == before and backups(aof) == []

    # "y": the backup holds the original, the file is cut at the damage.
    rc, out = run_pty([check_tool(), "--fix", aof], "y")
    assert rc == 1 and "truncated to %d bytes" % bad in out, out
    (bak,) = backups(aof)
    assert digest(bak) == before
    assert re.search(r"\.bak-\d{8}T\d{6}Z$", bak), bak
    assert os.path.getsize(aof) == bad
    assert run_tool([check_tool(), aof]).returncode == 0

    d = start(env, dd)
    try:
        assert dbsize(d) == sum(len(where[o]) for o in offs[:400])
    finally:
        d.check_clean_exit()


@akvtest.test("repair")
def test_backup_refusals(env):
    """An existing --backup is never overwritten, and a backup that cannot
    be written (no such directory, no room) stops the repair before the
    file changes."""
    dd = os.path.join(env.workdir, "refuse")
    os.mkdir(dd)
    aof = os.path.join(dd, "appendonly.aof")
    where, offs = big_file(aof, 3000)
    flip(aof, offs[10] + 2)  # a header byte
    before = digest(aof)

    taken = os.path.join(env.workdir, "taken.bak")
    with open(taken, "w") as f:
        f.write("keep me")
    r = run_tool([check_tool(), "--salvage", "--yes", "--backup", taken, aof])
    assert r.returncode == 2 and "exists already" in r.stderr, r
    assert open(taken).read() == "keep me" and digest(aof) == before

    r = run_tool([check_tool(), "--salvage", "--yes", "--backup",
                  os.path.join(env.workdir, "no", "such", "dir", "x.bak"), aof])
    assert r.returncode == 2 and "cannot keep a backup" in r.stderr, r
    assert digest(aof) == before and backups(aof) == []

    # A backup on another file system is a copy: with no room for it, no
    # repair (needs a small tmpfs, so root).
    mnt = os.path.join(env.workdir, "small")
    os.mkdir(mnt)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                       capture_output=True, text=True)
    if m.returncode != 0:
        print("     (no tmpfs mount here: %s; the full-disk case is not run)" % m.stderr.strip())
    else:
        try:
            r = run_tool([check_tool(), "--salvage", "--yes", "--backup",
                          os.path.join(mnt, "x.bak"), aof])
            assert r.returncode == 2 and "not enough free space" in r.stderr, r
            assert os.listdir(mnt) == [] and digest(aof) == before
            # With room, the copy is made and fsync'd.
            subprocess.run(["mount", "-o", "remount,size=16m", mnt], check=True)
            r = run_tool([check_tool(), "--salvage", "--yes", "--backup",
                          os.path.join(mnt, "x.bak"), aof])
            assert r.returncode == 1, r
            assert digest(os.path.join(mnt, "x.bak")) == before
        finally:
            subprocess.run(["umount", mnt], check=True)
    # Nothing left behind but the backups.
    assert sorted(os.listdir(dd)) == ["appendonly.aof"] + [os.path.basename(b)
                                                           for b in backups(aof)]


@akvtest.test("repair")
def test_not_a_regular_file(env):
    """A FIFO or a directory given as the file is refused at once (exit 2),
    with or without a repair asked for: the tool never waits for a writer
    to open the FIFO."""
    fifo = os.path.join(env.workdir, "fifo.aof")
    os.mkfifo(fifo)
    for path in (fifo, env.workdir):
        for opts in ([], ["--fix", "--yes"], ["--salvage", "--yes"]):
            r = run_tool([check_tool()] + opts + [path], timeout=20)
            assert r.returncode == 2 and "not a regular file" in r.stderr, (path, opts, r)
    assert backups(fifo) == []


@akvtest.test("repair")
def test_salvage_half_a_million_records(env):
    """The issue's case: one flipped byte in the middle of a 500,000-record
    file. --fix would lose about half of it; --salvage loses the one record
    (a payload byte: its header holds), the one record again (a header byte:
    resynchronised on the next good header), or the one MULTI, whole; the
    daemon replays what is kept."""
    n = 500000
    src = os.path.join(env.workdir, "big.aof")
    where, offs = big_file(src, n)
    total = sum(len(k) for k in where.values())
    mid = n // 2
    cases = [
        ("payload", mid, 30),                         # record mid's value
        ("header", mid + 3, 9),                       # record mid+3's header checksum
        ("multi-header", mid + 50 - mid % 100, 5),    # a MULTI's length field
        ("multi-inner", mid + 150 - mid % 100, 40),   # a byte of a record inside a MULTI
    ]
    for name, idx, at in cases:
        assert (idx % 100 == 50) == name.startswith("multi")
        dd = os.path.join(env.workdir, "salvage-" + name)
        os.mkdir(dd)
        aof = os.path.join(dd, "appendonly.aof")
        shutil.copyfile(src, aof)
        flip(aof, offs[idx] + at)
        lost = where[offs[idx]]

        t0 = time.monotonic()
        r = run_tool([check_tool(), "--salvage", "--yes", aof], timeout=300)
        took = time.monotonic() - t0
        assert r.returncode == 1, r
        assert "--salvage keeps %d records" % (n - 1) in r.stdout, r.stdout
        assert "skips 1 range (%d bytes)" % (offs[idx + 1] - offs[idx]) in r.stdout, r.stdout
        # What --fix would have lost instead.
        m = re.search(r"the (\d+) records after it that are still readable", r.stdout)
        assert m and int(m.group(1)) == n - idx - 1, r.stdout
        if name.startswith("multi"):
            assert "a MULTI" in r.stdout and "warning:" in r.stdout, r.stdout
        print("figures: --salvage, damaged %s byte in a %d-record file (%d bytes): %.2f s, "
              "1 record lost; --fix would have lost %d" % (name, n, os.path.getsize(src), took,
                                                           n - idx))
        r = run_tool([check_tool(), aof])
        assert r.returncode == 0 and "%d good records" % (n - 1) in r.stdout, r

        d = start(env, dd)
        try:
            assert dbsize(d) == total - len(lost)
            c = d.client()
            for k in lost:
                assert c.cmd("GET", k) is None, k
            for o in (offs[idx - 1], offs[idx + 1]):
                for k in where[o]:
                    assert c.cmd("GET", k) is not None, k
            c.close()
        finally:
            d.check_clean_exit()


@akvtest.test("repair")
def test_vocab_change(env):
    """--vocab NEW lists the entries (database, key, value) that a daemon on
    NEW would not serve, after replaying sets, deletes, SWAPDB, FLUSHDB,
    transactions and expiry; a daemon started on NEW then serves exactly the
    others."""
    gone = set("w%04d" % i for i in range(1900, 2000))
    words = [w for w in env.words if w not in gone]
    txt = os.path.join(env.workdir, "new.txt")
    write_glove(txt, words, env.vecs)
    new = os.path.join(env.workdir, "new.akv")
    import_vocab(txt, new)

    dd = os.path.join(env.workdir, "vocab")
    os.mkdir(dd)
    d = start(env, dd)
    c = d.client()
    for i in range(200):
        # Every 10th key or value holds a word the new vocabulary lacks.
        k = "w%04d cat" % (1900 + i % 100 if i % 20 == 0 else i)
        v = "w%04d" % (1950 if i % 20 == 10 else i)
        assert c.cmd("SET", k, v) == "OK"
    assert c.cmd("DEL", "w1900 cat") == 1
    assert c.cmd("SET", "w0001 cat", "w1999") == "OK"  # last write wins
    assert c.cmd("SET", "w0001 cat", "w0002") == "OK"
    assert c.cmd("SELECT", "2") == "OK"
    assert c.cmd("SET", "w1901 dog", "animal") == "OK"
    assert c.cmd("SET", "dog", "w1902") == "OK"
    assert c.cmd("SELECT", "3") == "OK"
    assert c.cmd("SET", "w1903 ball", "toy") == "OK"
    assert c.cmd("FLUSHDB") == "OK"
    assert c.cmd("SET", "ball", "w1904 toy") == "OK"
    assert c.cmd("SWAPDB", "2", "5") == "OK"
    assert c.cmd("SELECT", "1") == "OK"
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "w1905 one", "number") == "QUEUED"
    assert c.cmd("SET", "one", "number") == "QUEUED"
    assert c.cmd("EXEC") == ["OK", "OK"]
    assert c.cmd("SET", "w1906 seven", "number", "PX", "100") == "OK"
    assert c.cmd("SET", "w1907 seven", "number", "EX", "100000") == "OK"
    time.sleep(0.3)
    live = {}
    for db in range(16):
        assert c.cmd("SELECT", str(db)) == "OK"
        for k in c.cmd("KEYS", "*"):
            live[(db, k)] = c.cmd("GET", k)
    c.close()
    d.check_clean_exit()
    expect = {kv for kv, v in live.items() if set(kv[1].split() + v.split()) & gone}
    assert len(expect) > 10 and (5, "w1901 dog") in expect and (3, "ball") in expect

    r = run_tool([check_tool(), "--vocab", new, d.aof])
    assert r.returncode == 1, r
    listed = {}
    for line in r.stdout.splitlines():
        m = re.match(r"db(\d+) '(.*)' -> '(.*)': (key|value): unknown word '(w19\d\d)'", line)
        if m:
            listed[(int(m.group(1)), m.group(2))] = m.group(3)
            assert m.group(5) in (m.group(2) if m.group(4) == "key" else m.group(3)), line
    assert set(listed) == expect, (sorted(set(listed) ^ expect), r.stdout)
    assert all(live[kv] == v for kv, v in listed.items())
    assert ("%d entries in 4 databases; with %s, %d would not be served" % (len(live), new,
                                                                            len(expect))
            in r.stdout), r.stdout

    # Compared with the vocabulary in use: all of them would stop being
    # served; compared with itself, none.
    r = run_tool([check_tool(), "--vocab", new, "--current", env.vectors, d.aof])
    assert r.returncode == 1 and "%d would stop being served, 0 are not served now either" % len(
        expect) in r.stdout, r.stdout
    r = run_tool([check_tool(), "--vocab", env.vectors, d.aof])
    assert r.returncode == 0 and ", 0 would not be served" in r.stdout, r.stdout
    r = run_tool([check_tool(), "--vocab", env.vectors, "--current", new, d.aof])
    assert r.returncode == 0 and "%d would start being served" % len(expect) in r.stdout, r

    # The daemon on the new vocabulary serves exactly the others.
    d2 = start(env, dd, vectors=new)
    c = d2.client()
    served = {}
    for db in range(16):
        assert c.cmd("SELECT", str(db)) == "OK"
        for k in c.cmd("KEYS", "*"):
            served[(db, k)] = c.cmd("GET", k)
    c.close()
    d2.check_clean_exit()
    assert set(served) == set(live) - expect
    assert "%d entries do not embed" % len(expect) in d2.text(), d2.text()[-3000:]

    r = run_tool([check_tool(), "--vocab", os.path.join(env.workdir, "missing.akv"), d.aof])
    assert r.returncode == 2, r


@akvtest.test("repair")
def test_unembeddable_and_appendonly_off(env):
    """CONFIG SET appendonly no is refused while entries the vocabulary
    cannot embed are kept only by the AOF (a file created by a later
    appendonly yes is made from memory and would drop them); once they are
    deleted it is accepted, and the other entries stay."""
    gone = set("w%04d" % i for i in range(1900, 2000))
    txt = os.path.join(env.workdir, "off.txt")
    write_glove(txt, [w for w in env.words if w not in gone], env.vecs)
    new = os.path.join(env.workdir, "off.akv")
    import_vocab(txt, new)
    dd = os.path.join(env.workdir, "offdir")
    os.mkdir(dd)
    d = start(env, dd)
    c = d.client()
    assert c.cmd("SET", "w1900 cat", "dog") == "OK" and c.cmd("SET", "cat", "dog") == "OK"
    c.close()
    d.check_clean_exit()
    d = start(env, dd, vectors=new)
    c = d.client()
    assert info_fields(c, "persistence")["aof_unembeddable_entries"] == "1"
    r = c.cmd("CONFIG", "SET", "appendonly", "no")
    assert isinstance(r, akvtest.RespError) and "holds 1 entries that the vocabulary" in str(r), r
    assert c.cmd("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    # A flip (no, then yes) would have lost it: the file still serves it.
    c.close()
    d.check_clean_exit()
    d = start(env, dd)
    c = d.client()
    assert c.cmd("GET", "w1900 cat") == "dog" and c.cmd("GET", "cat") == "dog"
    c.close()
    d.check_clean_exit()
    # Deleted under the new vectors, it no longer stands in the way.
    d = start(env, dd, vectors=new)
    c = d.client()
    # Not served, so not counted by DEL, but its record is deleted.
    assert c.cmd("DEL", "w1900 cat") == 0
    assert info_fields(c, "persistence")["aof_unembeddable_entries"] == "0"
    assert c.cmd("CONFIG", "SET", "appendonly", "no") == "OK"
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    assert c.cmd("GET", "cat") == "dog"
    c.close()
    d.check_clean_exit()


@akvtest.test("repair")
def test_backup_procedure(env):
    """docs/operations.md, "Backups", step by step while two clients write:
    BGREWRITEAOF, wait for aof_rewrite_in_progress:0, copy the AOF, check
    the copy, then restore it into another daemon (stop, replace, start).
    Every write acknowledged before the copy started is in the restored
    daemon, with its value or a later one."""
    dd = os.path.join(env.workdir, "live")
    os.mkdir(dd)
    d = start(env, dd)
    c = d.client()
    for i in range(2000):
        assert c.cmd("SET", "w%04d cat" % i, "w%04d" % i) == "OK"

    acked = {}  # key -> list of acknowledged values, in order
    lock = threading.Lock()
    stop = threading.Event()

    def writer(t):
        wc = d.client()
        i = 0
        while not stop.is_set():
            k = "w%04d w%04d" % (t, i % 500)
            v = "w%04d" % (i % 2000)
            assert wc.cmd("SET", k, v) == "OK"
            with lock:
                acked.setdefault(k, []).append(v)
            i += 1
        wc.close()

    threads = [threading.Thread(target=writer, args=(t,)) for t in (1, 2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        rewrites = int(info_fields(c, "persistence")["aof_rewrites"])
        t0 = int(time.time())
        # 1. Compact the file.
        assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
        # 2. Wait for the rewrite to finish.
        wait_until(lambda: info_fields(c, "persistence")["aof_rewrite_in_progress"] == "0" and
                   int(info_fields(c, "persistence")["aof_rewrites"]) > rewrites,
                   timeout=60, what="the rewrite")
        assert info_fields(c, "persistence")["aof_last_rewrite_status"] == "ok"
        # LASTSAVE names the rewrite's end (updated within 0.1 s).
        wait_until(lambda: c.cmd("LASTSAVE") >= t0, timeout=5, what="LASTSAVE")
        # 3. Copy it (writes go on).
        with lock:
            before = {k: list(v) for k, v in acked.items()}
        copy = os.path.join(env.workdir, "backup.aof")
        shutil.copyfile(d.aof, copy)
        time.sleep(0.2)
        # The variant that ends at a record boundary, after BGSAVE (the same
        # rewrite): writes held while the file is copied, once everything
        # logged has been written.
        assert c.cmd("BGSAVE") == "Background saving started"
        wait_until(lambda: info_fields(c, "persistence")["aof_rewrite_in_progress"] == "0" and
                   int(info_fields(c, "persistence")["aof_rewrites"]) > rewrites + 1,
                   timeout=60, what="the BGSAVE rewrite")
        assert c.cmd("CLIENT", "PAUSE", "10000", "WRITE") == "OK"
        wait_until(lambda: info_fields(c, "persistence")["aof_pending_bytes"] == "0",
                   what="the AOF writer")
        with lock:
            paused = {k: list(v) for k, v in acked.items()}
        copy2 = os.path.join(env.workdir, "backup-paused.aof")
        shutil.copyfile(d.aof, copy2)
        assert c.cmd("CLIENT", "UNPAUSE") == "OK"
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert sum(len(v) for v in before.values()) > 100, "too few writes during the backup"

    # 4. Check the copy: good, or cut in the middle of its last record (a
    # copy made while a write was appended), which --fix --yes cuts off.
    r = run_tool([check_tool(), copy])
    torn = r.returncode == 1
    if torn:
        assert "incomplete last record" in r.stdout, r.stdout
        r = run_tool([check_tool(), "--fix", "--yes", copy])
        assert r.returncode == 1, r
        r = run_tool([check_tool(), copy])
    assert r.returncode == 0, r
    r = run_tool([check_tool(), copy2])
    assert r.returncode == 0, r
    print("figures: backup during writes: %d writes acknowledged before the copy, %d before the "
          "paused copy, %d in all; the online copy %s" % (
              sum(len(v) for v in before.values()), sum(len(v) for v in paused.values()),
              sum(len(v) for v in acked.values()),
              "ended inside a record" if torn else "ended at a record boundary"))

    # 5. Restore into another daemon: stop it, replace its AOF, start it.
    rd = os.path.join(env.workdir, "restored")
    os.mkdir(rd)
    d2 = start(env, rd)
    c2 = d2.client()
    assert c2.cmd("SET", "hello world", "w0001") == "OK"
    c2.close()
    d2.check_clean_exit()
    shutil.copyfile(copy, d2.aof)
    d3 = start(env, rd)
    c3 = d3.client()
    assert c3.cmd("GET", "hello world") is None
    for i in range(0, 2000, 7):
        assert c3.cmd("GET", "w%04d cat" % i) == "w%04d" % i
    for k, vals in before.items():
        got = c3.cmd("GET", k)
        # The last value acknowledged before the copy, or a later one.
        assert got in acked[k][len(vals) - 1:], (k, got, vals[-1])
    c3.close()
    d3.check_clean_exit()

    # The paused copy holds every write acknowledged before the pause; a
    # writer's one write in flight may have been made before the pause too,
    # its acknowledgement read after.
    shutil.copyfile(copy2, d3.aof)
    d4 = start(env, rd)
    c4 = d4.client()
    for k, vals in paused.items():
        assert c4.cmd("GET", k) in acked[k][len(vals) - 1:len(vals) + 1], k
    c4.close()
    d4.check_clean_exit()
    c.close()
    d.check_clean_exit()


def make_env(workdir):
    return akvtest.Env(workdir)


if __name__ == "__main__":
    sys.exit(akvtest.main("repair", make_env=make_env))
