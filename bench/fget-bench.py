#!/usr/bin/env python3
"""fget-bench.py - FGET against QUERY: latency and throughput by store size.

Starts attnkvd ($AKV_ATTNKVD, default build/src/server/attnkvd) on the
default vectors (or $AKV_VECTORS) with two workers and no append-only file;
for each store size (default 1,000, 10,000 and 100,000 entries) fills the
store with bench/loadgen (keys: the N most frequent alphabetic vocabulary
words, each once; values: words of the same list chosen by a hash, so most
values are distinct, FGET's worst case for grouping), then runs
bench/loadgen --query and --fget (the stored keys as queries, in shuffled
order): one client without pipelining (latency: p50, p99 per request) and
eight clients (throughput). Prints one line per size and command.

  python3 bench/fget-bench.py [--sizes 1000,10000,100000] [--requests R]
      [--neighbor-lists N]

Measurement only: it checks that every reply is well formed (loadgen) and
that the store holds the expected number of keys, and asserts no timing.
"""

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import akvtest  # noqa: E402


def vocab_words(path):
    """The words of an .akv file, in vocabulary (frequency) order
    (docs/vocab-format.md)."""
    with open(path, "rb") as f:
        hdr = f.read(256)
        count = struct.unpack_from("<Q", hdr, 16)[0]
        off, length = struct.unpack_from("<QQ", hdr, 48)
        f.seek(off)
        raw = f.read(length)
    return [w.decode("utf-8") for w in raw.split(b"\0")[:count]]


def loadgen(exe, port, words, *args):
    r = subprocess.run([exe, "-p", str(port), "--words", words] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError("loadgen failed: %s %s" % (r.stdout, r.stderr))
    return dict(kv.split("=", 1) for kv in r.stdout.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--neighbor-lists", default=None,
                    help="the neighbor-lists directive (default: the daemon's)")
    a = ap.parse_args()
    build = os.environ.get("AKV_BUILD_ROOT", os.path.join(HERE, "..", "build"))
    os.environ.setdefault("AKV_ATTNKVD", os.path.join(build, "src", "server", "attnkvd"))
    lg = os.path.join(build, "bench", "loadgen")
    vectors = akvtest.real_vectors_path()
    if not vectors:
        print("default vectors not found (scripts/fetch-vectors)")
        return 77
    alpha = [w for w in vocab_words(vectors) if re.fullmatch(r"[a-z]+", w)]
    work = tempfile.mkdtemp(prefix="akv-fget-bench-")
    args = ["--workers", "2", "--appendonly", "no"]
    if a.neighbor_lists is not None:
        args += ["--neighbor-lists", a.neighbor_lists]
    d = akvtest.Daemon(work, vectors, args, name="fget-bench")
    c = d.client()
    try:
        for n in [int(x) for x in a.sizes.split(",")]:
            path = os.path.join(work, "words-%d.txt" % n)
            with open(path, "w") as f:
                f.write("".join(w + "\n" for w in alpha[:n]))
            c.cmd("FLUSHALL")
            loadgen(lg, d.port, path, "-c", 8, "-P", 64, "-n", n)
            assert c.cmd("DBSIZE") == n, c.cmd("DBSIZE")
            for name, flag in (("QUERY", "--query"), ("FGET", "--fget")):
                one = loadgen(lg, d.port, path, flag, "-c", 1, "-n", a.requests)
                many = loadgen(lg, d.port, path, flag, "-c", 8, "-n", a.requests * 2)
                print("entries=%d cmd=%s p50_ms=%s p99_ms=%s rps_1client=%.0f rps_8clients=%.0f"
                      % (n, name, one["p50_ms"], one["p99_ms"], float(one["rps"]),
                         float(many["rps"])), flush=True)
    finally:
        c.close()
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
