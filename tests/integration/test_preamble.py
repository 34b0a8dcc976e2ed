#!/usr/bin/env python3
"""daemon-preamble: the AOF's snapshot preamble (aof-use-rdb-preamble).

A rewrite writes the entries with their word ids at the head of the new
file (SNAPBEGIN, SNAPCHUNK..., SNAPEND records; src/persist/aof.h), and a
restart stores them without embedding. Here: a round trip through a rewrite
and restarts of every kind of entry (databases, expiry times, payloads,
phrases longer than the store keeps inline, records logged after the
preamble; QUERY answers the same, bit for bit); CONFIG GET/SET of the
directive and a rewrite without the preamble (an old-style file) loading
as before; the file cut at every part of the preamble and bytes changed in
it (start-up refused, exit status 1, the file and offset named), with
attnkv-check-aof's report, --fix and --salvage (what a repair keeps, and
the daemon loading it); a restart on other vectors (the entries embedded
again from their text) and --vocab on preamble entries; kill -9 right
after a rewrite with writes behind it. The Python reader below follows the
layout of aof.h independently of the C code.

Run alone: meson test -C build daemon-preamble, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_preamble.py [-k NAME]
(environment: see akvtest.py).
"""

import os
import re
import shutil
import struct
import sys
import time
import zlib

import akvtest
from akvtest import Client, import_vocab, info_fields, is_err, run_tool, synth_vectors, write_glove

SNAPBEGIN, SNAPCHUNK, SNAPEND = 10, 11, 12
_count = [0]


def check_tool():
    return os.environ.get("AKV_CHECK_AOF") or os.path.join(
        os.environ.get("AKV_BUILD_ROOT", "."), "tools", "attnkv-check-aof")


def pstart(env, conf=None, args=(), **kw):
    _count[0] += 1
    text = "".join("%s %s\n" % kv for kv in (conf or {"databases": "16"}).items())
    return env.configured_daemon("pre%d" % _count[0], text, ("--workers", "1") + tuple(args), **kw)


def records(data):
    """[(offset, type, size)] of the records after the file header."""
    out, off = [], 16
    while off + 16 <= len(data):
        magic, rtype, _, plen = struct.unpack_from("<BBHI", data, off)
        assert magic == 0xA7
        out.append((off, rtype, 16 + plen))
        off += 16 + plen
    assert off == len(data), (off, len(data))
    return out


def chunk_keys(data, off):
    """(database, [keys]) of the SNAPCHUNK record at off, read by the layout
    of aof.h."""
    plen = struct.unpack_from("<I", data, off + 4)[0]
    p = data[off + 16:off + 16 + plen]
    db, count = struct.unpack_from("<II", p, 0)
    at, keys = 8, []
    for _ in range(count):
        flags, nk, nv, zero, klen, vlen = struct.unpack_from("<BBBBII", p, at)
        assert zero == 0 and nk >= 1 and (nv == 0) == bool(flags & 1)
        at += 12 + (8 if flags & 2 else 0) + 8 + 4 * (nk + nv)
        keys.append(p[at:at + klen].decode(errors="surrogateescape"))
        at += klen + vlen
    assert at == len(p)
    return db, keys


def wait_rewrite(c, n, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        f = info_fields(c, "persistence")
        if int(f["aof_rewrites"]) >= n and f["aof_rewrite_in_progress"] == "0":
            assert f["aof_last_rewrite_status"] == "ok", f
            return f
        assert time.monotonic() < deadline, f
        time.sleep(0.02)


def dump(c, dbs=(0, 3, 15)):
    """{db: {key: (value, has a time to live)}} of the given databases."""
    out = {}
    for db in dbs:
        assert c.cmd("SELECT", str(db)) == "OK"
        keys = c.cmd("KEYS", "*")
        out[db] = {k: (c.cmd("GET", k), c.cmd("PTTL", k) > 0) for k in keys}
    assert c.cmd("SELECT", "0") == "OK"
    return out


BIN = b"\x00\r\n\xff payload \x01"
QUERIES = ["w0010", "cat", "w0500 w0501", "king queen"]


def fill(c, n=700):
    """n single-word entries in database 0 (three chunks), and the other
    kinds in databases 0, 3 and 15."""
    reqs = [Client.encode("SET", "w%04d" % i, "w%04d" % ((i * 7 + 3) % 2000)) for i in range(n)]
    c.send(b"".join(reqs))
    assert all(c.read() == "OK" for _ in reqs)
    long_key = " ".join("w%04d" % (1000 + i) for i in range(9))
    assert c.cmd("SET", long_key, "w0001 w0002 w0003 w0004 w0005") == "OK"
    assert c.cmd("SET", "café king", "queen") == "OK"
    assert c.cmd("SET", "ball", BIN, "PAYLOAD") == "OK"
    assert c.cmd("SET", "toy", "", "PAYLOAD") == "OK"
    assert c.cmd("SET", "w1990", "hello world", "PX", "100000000") == "OK"
    assert c.cmd("SET", "w1991", "hello", "PX", "400") == "OK"  # gone by the restart
    assert c.cmd("SELECT", "3") == "OK"
    assert c.cmd("SET", "cat", "animal") == "OK"
    assert c.cmd("SET", "dog", "animal", "EX", "100000") == "OK"
    assert c.cmd("SELECT", "15") == "OK"
    assert c.cmd("SET", "sphere", BIN, "PAYLOAD") == "OK"
    assert c.cmd("SELECT", "0") == "OK"


def rounded(x):
    """A reply with its numbers to 10 significant digits: the summation
    order of attention follows the slot layout, which a reload changes, so
    the last digits of a score may too (issue 17 fixes the order)."""
    if isinstance(x, list):
        return [rounded(y) for y in x]
    try:
        return "%.10g" % float(x)
    except (TypeError, ValueError):
        return x


def answers(c):
    out = []
    for db in (0, 3):
        assert c.cmd("SELECT", str(db)) == "OK"
        for q in QUERIES:
            out.append(rounded(c.cmd("QUERY", q, "COUNT", "5", "WITHSCORES")))
            out.append(rounded(c.cmd("EXPLAIN", q)))
    assert c.cmd("SELECT", "0") == "OK"
    return out


@akvtest.test("preamble")
def test_round_trip(env):
    d = pstart(env)
    c = d.client()
    assert c.cmd("CONFIG", "GET", "aof-use-rdb-preamble") == ["aof-use-rdb-preamble", "yes"]
    fill(c)
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    assert "with a snapshot preamble" in d.text()
    # Records after the preamble: a write, a deletion of a preamble entry,
    # a swap (applied to the loaded databases), an expiry time.
    assert c.cmd("SET", "w1999", "w0007") == "OK"
    assert c.cmd("DEL", "w0003") == 1
    assert c.cmd("SWAPDB", "3", "4") == "OK"
    assert c.cmd("SWAPDB", "4", "3") == "OK"
    assert c.cmd("EXPIRE", "w0004", "100000") == 1
    time.sleep(0.5)  # w1991 expires
    before, qa = dump(c), answers(c)
    assert "w1991" not in before[0] and before[0]["w0004"] == ("w0031", True), before[0]["w0004"]
    assert before[0]["ball"][0].encode(errors="surrogateescape") == BIN
    c.close()
    d.stop()
    d.check_clean_exit()

    data = open(d.aof, "rb").read()
    recs = records(data)
    types = [t for _, t, _ in recs]
    assert types[0] == SNAPBEGIN and types.count(SNAPCHUNK) == 5, types  # 3 + db3 + db15
    # (then, maybe, the deletion of w1991 by the expiry cycle)
    assert types[types.index(SNAPEND) + 1:][:5] == [4, 5, 7, 7, 4], types
    keys = {}
    for off, t, _ in recs:
        if t == SNAPCHUNK:
            db, ks = chunk_keys(data, off)
            keys.setdefault(db, []).extend(ks)
    assert len(keys[0]) == 706 and sorted(keys[3]) == ["cat", "dog"] and keys[15] == ["sphere"]
    r = run_tool([check_tool(), d.aof])
    assert r.returncode == 0, r
    assert re.search(r"[56] good records \(2 SET, [12] DEL, 0 FLUSHALL, 2 SWAPDB\)", r.stdout), \
        r.stdout
    end = recs[types.index(SNAPEND)]
    assert ("snapshot preamble (offsets 16 to %d): 709 entries (3 payloads, 3 with an expiry "
            "time) in 5 chunks" % (end[0] + end[2])) in r.stdout, r.stdout

    d2 = pstart(env, datadir=d.datadir)
    t = d2.text()
    assert "708 entries, 1 dropped as expired; 708 entries from a snapshot preamble" in t, t
    c = d2.client()
    assert dump(c) == before
    assert answers(c) == qa
    assert c.cmd("PTTL", "w1990") > 99000000
    f = info_fields(c, "persistence")
    assert f["aof_replayed_records"] == str(len(recs)), f
    # A second round: rewrite the loaded store, restart again.
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    c.close()
    d2.stop()
    d2.check_clean_exit()
    d3 = pstart(env, datadir=d.datadir)
    c = d3.client()
    assert dump(c) == before and answers(c) == qa
    c.close()
    d3.stop()
    d3.check_clean_exit()


@akvtest.test("preamble")
def test_directive_and_old_files(env):
    d = pstart(env)
    c = d.client()
    fill(c, 50)
    # A file as clients wrote it (records only) loads as before.
    before = dump(c)
    c.close()
    d.stop()
    d = pstart(env, datadir=d.datadir)
    assert "replayed" in d.text() and "snapshot preamble" not in d.text(), d.text()
    c = d.client()
    assert dump(c) == before
    # The directive at run time, as other persistence settings.
    assert c.cmd("CONFIG", "SET", "aof-use-rdb-preamble", "no") == "OK"
    assert c.cmd("CONFIG", "GET", "aof-use-rdb-preamble") == ["aof-use-rdb-preamble", "no"]
    assert is_err(c.cmd("CONFIG", "SET", "aof-use-rdb-preamble", "maybe"))
    assert c.cmd("CONFIG", "GET", "aof-use-rdb-preamble") == ["aof-use-rdb-preamble", "no"]
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    c.close()
    d.stop()
    d.check_clean_exit()
    types = [t for _, t, _ in records(open(d.aof, "rb").read())]
    assert SNAPBEGIN not in types and set(types) == {4, 9}, types
    r = run_tool([check_tool(), d.aof])
    assert r.returncode == 0 and "snapshot preamble" not in r.stdout, r
    d2 = pstart(env, {"databases": "16", "aof-use-rdb-preamble": "no"}, datadir=d.datadir)
    c = d2.client()
    assert dump(c) == before
    assert c.cmd("CONFIG", "GET", "aof-use-rdb-preamble") == ["aof-use-rdb-preamble", "no"]
    # Switched back on: the next rewrite writes a preamble.
    assert c.cmd("CONFIG", "SET", "aof-use-rdb-preamble", "yes") == "OK"
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    # appendonly switched on at run time creates the file with one too.
    assert c.cmd("CONFIG", "SET", "appendonly", "no") == "OK"
    os.unlink(d.aof)
    assert c.cmd("CONFIG", "SET", "appendonly", "yes") == "OK"
    wait_rewrite(c, 1)  # the file's first rewrite
    c.close()
    d2.stop()
    d2.check_clean_exit()
    assert records(open(d.aof, "rb").read())[0][1] == SNAPBEGIN
    d3 = pstart(env, datadir=d.datadir)
    c = d3.client()
    assert dump(c) == before
    c.close()
    d3.stop()
    d3.check_clean_exit()


def preamble_dir(env):
    """A data directory whose AOF is a preamble of 700 + 6 entries (three
    chunks in database 0, one in 3, one in 15) and two records after it.
    Returns (datadir, the file's bytes, its records, the entries)."""
    d = pstart(env)
    c = d.client()
    fill(c)
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    assert c.cmd("SET", "w1999", "w0007") == "OK"
    assert c.cmd("SET", "w1998", "w0008") == "OK"
    time.sleep(0.5)
    entries = dump(c)
    c.close()
    d.stop()
    d.check_clean_exit()
    data = open(d.aof, "rb").read()
    return d.datadir, data, records(data), entries


def with_file(env, data, name):
    datadir = os.path.join(env.workdir, name)
    os.makedirs(datadir)
    path = os.path.join(datadir, "appendonly.aof")
    with open(path, "wb") as f:
        f.write(data)
    return datadir, path


def refused(env, datadir, offset):
    """Starts a daemon on datadir's file: it must stop with status 1 and a
    message naming the file and offset (and the preamble)."""
    d = pstart(env, datadir=datadir, expect_start=False)
    assert d.proc.wait(timeout=60) == 1
    t = d.text()
    d.log.close()
    path = os.path.realpath(os.path.join(datadir, "appendonly.aof"))
    assert ("%s: the snapshot preamble is damaged at offset %d (" % (path, offset) in t or
            "%s: damaged record at offset %d (" % (path, offset) in t), (offset, t[-2000:])
    return t


@akvtest.test("preamble")
def test_damage(env):
    _, data, recs, entries = preamble_dir(env)
    begin, c1, c2, c3 = recs[0], recs[1], recs[2], recs[3]
    end = [r for r in recs if r[1] == SNAPEND][0]
    assert [begin[1], c1[1], c2[1], c3[1]] == [SNAPBEGIN, SNAPCHUNK, SNAPCHUNK, SNAPCHUNK]
    # Cut at every part of the preamble: inside the SNAPBEGIN, right after
    # it, inside a chunk's header, inside a chunk's payload, at the
    # boundary between chunks, before the SNAPEND, inside it.
    cuts = [(begin[0] + 10, begin[0]), (begin[0] + 30, begin[0]), (c1[0], c1[0]),
            (c1[0] + 9, c1[0]), (c2[0] + 500, c2[0]), (c3[0], c3[0]), (end[0], end[0]),
            (end[0] + 20, end[0])]
    for i, (cut, at) in enumerate(cuts):
        datadir, path = with_file(env, data[:cut], "cut%d" % i)
        t = refused(env, datadir, at)
        assert "snapshot preamble" in t, t[-2000:]
        r = run_tool([check_tool(), path])
        assert r.returncode == 1 and "damaged record at offset %d" % at in r.stdout, r
        assert "cut short" in r.stdout, r.stdout
    # Changed bytes: in the SNAPBEGIN (the vectors' checksum), in a chunk's
    # entries, in a chunk's header, in the SNAPEND's count.
    flips = [(begin[0] + 16 + 20, begin[0], "record checksum mismatch"),
             (c2[0] + 16 + 300, c2[0], "record checksum mismatch"),
             (c2[0] + 5, c2[0], "record header checksum mismatch"),
             (end[0] + 16, end[0], "record checksum mismatch")]
    for i, (pos, at, why) in enumerate(flips):
        bad = bytearray(data)
        bad[pos] ^= 0x20
        datadir, path = with_file(env, bytes(bad), "flip%d" % i)
        t = refused(env, datadir, at)
        assert why in t, t[-2000:]
        r = run_tool([check_tool(), path])
        assert r.returncode == 1 and "damaged record at offset %d: %s" % (at, why) in r.stdout, r

    # --salvage of a damaged chunk: the other chunks' entries are kept (as
    # records), the records after the preamble too; exactly the damaged
    # chunk's entries are lost.
    bad = bytearray(data)
    bad[c2[0] + 16 + 300] ^= 0x20
    datadir, path = with_file(env, bytes(bad), "salvage")
    r = run_tool([check_tool(), path])
    assert "the damage is inside the snapshot preamble" in r.stdout, r.stdout
    assert "the preamble held 709 entries: --salvage keeps 453 of them, --fix 256" in r.stdout, \
        r.stdout
    after = len(recs) - recs.index(end) - 1
    r = run_tool([check_tool(), "--salvage", "--yes", path])
    assert r.returncode == 1 and "salvaged: %d records" % (453 + after) in r.stdout, r
    r = run_tool([check_tool(), path])
    assert r.returncode == 0 and "snapshot preamble" not in r.stdout, r
    _, lost = chunk_keys(data, c2[0])
    d = pstart(env, datadir=datadir)
    c = d.client()
    got = dump(c)
    want = {db: {k: v for k, v in e.items() if db != 0 or k not in lost}
            for db, e in entries.items()}
    assert got == want
    c.close()
    d.stop()
    d.check_clean_exit()

    # --fix of a preamble cut inside its second chunk: the first chunk's
    # entries are kept, nothing after.
    datadir, path = with_file(env, data[:c2[0] + 500], "fix")
    r = run_tool([check_tool(), "--fix", "--yes", path])
    assert r.returncode == 1 and "--fix keeps the 256 entries before offset %d" % c2[0] in \
        r.stdout, r
    assert run_tool([check_tool(), path]).returncode == 0
    _, kept = chunk_keys(data, c1[0])
    d = pstart(env, datadir=datadir)
    c = d.client()
    assert dump(c) == {0: {k: entries[0][k] for k in kept}, 3: {}, 15: {}}
    c.close()
    d.stop()
    d.check_clean_exit()


@akvtest.test("preamble")
def test_other_vectors(env):
    datadir, data, recs, entries = preamble_dir(env)
    path = os.path.join(datadir, "appendonly.aof")
    # The same words, other vectors: ids would mean other rows, so start-up
    # embeds the preamble's text again.
    other_vecs = synth_vectors(env.words, env.dim, 4242)
    txt = os.path.join(env.workdir, "other.txt")
    write_glove(txt, env.words, other_vecs)
    other = os.path.join(env.workdir, "other.akv")
    import_vocab(txt, other)

    r = run_tool([check_tool(), "--vocab", env.vectors, path])
    assert r.returncode == 0, r
    assert "with %s, start-up stores them from their word ids" % env.vectors in r.stdout, r.stdout
    assert "the word ids of its 709 entries are those of their text" in r.stdout, r.stdout
    # 709 in the preamble, 2 after it, 1 expired
    assert "710 entries in 3 databases" in r.stdout, r.stdout
    r = run_tool([check_tool(), "--vocab", other, "--current", env.vectors, path])
    assert r.returncode == 0 and "start-up embeds them again from their text" in r.stdout, r
    assert "written for %s" % env.vectors in r.stdout, r.stdout

    d = pstart(env, datadir=datadir, vectors=other)
    t = d.text()
    assert "the snapshot preamble at offset 16 was written for other vectors" in t, t
    assert "1 dropped as expired; 708 entries from a snapshot preamble, embedded again" in t, t
    c = d.client()
    assert dump(c) == entries
    # The answers are those of the other vectors.
    ref = akvtest.Reference(env.words, other_vecs)
    ref.store = {"cat": "animal", "dog": "king"}
    assert c.cmd("FLUSHDB") == "OK"
    assert c.cmd("SET", "cat", "animal") == "OK"
    assert c.cmd("SET", "dog", "king") == "OK"
    got = c.cmd("QUERY", "cat", "COUNT", "3")
    assert got == [w for w, _ in ref.query("cat", k=3)], got
    c.close()
    d.stop()
    d.check_clean_exit()

    # A preamble whose ids are not those of its text under the vectors it
    # names is damage --vocab reports (here: a chunk's ids changed and its
    # checksum made right again).
    bad = bytearray(data)
    off, _, size = recs[1]
    p = bytearray(bad[off + 16:off + size])
    flags, nk, nv = p[8], p[9], p[10]
    idpos = 8 + 12 + (8 if flags & 2 else 0) + 8
    p[idpos] ^= 1
    bad[off + 16:off + size] = p
    struct.pack_into("<I", bad, off + 12, zlib.crc32(bytes(p)))
    _, bpath = with_file(env, bytes(bad), "badids")
    assert run_tool([check_tool(), bpath]).returncode == 0  # the framing is good
    r = run_tool([check_tool(), "--vocab", env.vectors, bpath])
    assert r.returncode == 1 and "the word ids of 1 of the 709 preamble entries" in r.stdout, r


@akvtest.test("preamble")
def test_kill9_after_rewrite(env):
    d = pstart(env, {"databases": "16", "appendfsync": "always"})
    c = d.client()
    fill(c, 300)
    assert c.cmd("BGREWRITEAOF") == "Background append only file rewriting started"
    wait_rewrite(c, 1)
    for i in range(200):
        assert c.cmd("SET", "w%04d" % (1500 + i), "w%04d" % i) == "OK"
    assert c.cmd("DEL", "w0001") == 1
    time.sleep(0.5)
    before = dump(c)
    d.proc.kill()
    d.proc.wait(timeout=30)
    d.log.close()
    types = [t for _, t, _ in records(open(d.aof, "rb").read())]
    assert types[0] == SNAPBEGIN and types.count(4) == 200, types
    d2 = pstart(env, datadir=d.datadir)
    c = d2.client()
    assert dump(c) == before
    c.close()
    d2.stop()
    d2.check_clean_exit()


if __name__ == "__main__":
    sys.exit(akvtest.main("preamble", make_env=akvtest.Env))
