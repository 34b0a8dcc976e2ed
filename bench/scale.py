#!/usr/bin/python3
"""scale.py - QUERY and FGET against the store's size (issue 17's baseline).

For each store size N (default 1k, 10k, 50k, 200k, 1M; --sizes to choose,
--quick for 1k and 10k), starts its own attnkvd (build-release/ if present,
else build/, or --build DIR) on a free port of 127.0.0.1 in a temporary
directory, appendonly no, and:

  * loads N entries through pipelined MSET batches of at most 1024 pairs.
    Keys and values are random words of frequency rank 20,000-270,000 of the
    vectors (alphabetic ones only, so each is one token for the tokenizer);
    the query words (--queries, default 2000) are drawn from the same range
    first and never used as keys. Keys are distinct single words while there
    are enough of them (about 231k), two-word phrases beyond that (the 1M
    store); values are single words and repeat;
  * QUERY/s with 50 clients, each one request in flight, and single-client
    QUERY p50/p99 (bench/loadgen --query, the query words in turn), then FGET
    the same (loadgen --fget); each cell runs about --seconds (default 8);
  * a numpy float32 reference on one core (BLAS limited to one thread), one
    query at a time on the same store and query words: s = K.q, softmax,
    r = A.V, then the nearest vocabulary word by l2 (|u|^2 - 2 u.r over the
    whole matrix, one GEMV). Its top word is compared with attnkvd's on a
    sample of the queries (--check, default 100): the agreement column.
    Without numpy the column says "-" and the rest still runs;
  * with --restart, the daemon runs with appendonly yes instead (fsync
    everysec), and after the measurements it is stopped (SIGTERM) and started
    again on the same directory: the time from the start to the first PONG,
    and DBSIZE is checked afterwards;
  * with --restart-only, no query measurements: for each size the store is
    filled (appendonly yes), then restarted three times, each time timing
    the start to the first PONG: on the file as the MSETs wrote it, after a
    BGREWRITEAOF with aof-use-rdb-preamble no (one record per entry), and
    after one with aof-use-rdb-preamble yes (the snapshot preamble). Each
    restart also reports the daemon's own replay time (its log) and the
    file's size; DBSIZE is checked after each;
  * with --perf DIR, perf record -g on the daemon for --seconds under the
    50-client QUERY load (FGET with --perf-command fget), its top symbols
    by self time logged and kept in DIR with the data.

Prints a markdown table at the end: entries x {attnkvd QUERY/s 50 clients,
1 client p50/p99, FGET/s 50 clients, FGET 1 client p50, numpy q/s, ratio
attnkvd/numpy, top-1 agreement[, restart]}. With --json FILE the raw
figures are written there too.

Measurement only: nothing is asserted about speed. It stops with an error if
a load is not answered +OK or the store does not hold N keys, or if the
loadgen reports an error reply.

numpy is a benchmark tool here, not a dependency of attnkv (python3-numpy).
"""
import argparse
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import shutil
import time

# The reference is one query at a time on one core: BLAS must not start
# threads. These have to be set before numpy is imported.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_v] = "1"
try:
    import numpy as np
except ImportError:  # the numpy column is skipped
    np = None

HOST = "127.0.0.1"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZES = [1000, 10000, 50000, 200000, 1000000]
QUICK_SIZES = [1000, 10000]
RANK_LO, RANK_HI = 20000, 270000
MSET_PAIRS = 1024
MSET_INFLIGHT = 8


class Fatal(Exception):
    pass


def log(msg):
    print("scale: " + msg, file=sys.stderr, flush=True)


# --- the vocabulary file (docs/vocab-format.md) ---------------------------------

def read_words(path):
    """The words of an .akv file in file order (frequency order) and the
    matrix's offset, count and dimension."""
    try:
        with open(path, "rb") as f:
            hdr = f.read(256)
            if len(hdr) < 256 or hdr[:8] != b"AKVVOCAB":
                raise Fatal(f"{path}: not an attnkv vocabulary file")
            count = struct.unpack_from("<Q", hdr, 16)[0]
            dim = struct.unpack_from("<I", hdr, 24)[0]
            words_off, words_len = struct.unpack_from("<QQ", hdr, 48)
            matrix_off = struct.unpack_from("<Q", hdr, 96)[0]
            f.seek(words_off)
            raw = f.read(words_len)
    except OSError as e:
        raise Fatal(f"cannot read the vectors: {e}") from e
    words = [w.decode("utf-8") for w in raw.split(b"\0")[:count]]
    return words, matrix_off, count, dim


# --- RESP over a raw socket --------------------------------------------------------

def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout=600):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pos = 0

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise Fatal("attnkvd closed the connection")
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Fatal("error reply: " + rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b",":
            return float(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) - self.pos < n + 2:
                self._fill()
            s = self.buf[self.pos:self.pos + n]
            self.pos += n + 2
            return s.decode(errors="replace")
        if t in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        if t == b"%":
            return [self.reply() for _ in range(2 * int(rest))]
        if t == b"_":
            return None
        raise Fatal("malformed reply line: %r" % line[:80])

    def call(self, *args):
        self.send(encode(*args))
        r = self.reply()
        if isinstance(r, Fatal):
            raise r
        return r


# --- the daemon --------------------------------------------------------------------

def find_exe(build, name):
    dirs = [build] if build else [os.path.join(REPO, "build-release"), os.path.join(REPO, "build")]
    for d in dirs:
        exe = os.path.join(d, name)
        if os.access(exe, os.X_OK):
            return os.path.abspath(exe), d
    raise Fatal("no %s in %s (meson setup build-release -Dbuildtype=release && "
                "ninja -C build-release, or give --build DIR)" % (name, " or ".join(dirs)))


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """attnkvd on 127.0.0.1:port in directory d; start() returns the seconds
    from the start to the first PONG."""

    def __init__(self, exe, vectors, d, port, appendonly, extra=()):
        self.argv = [exe, "--port", str(port), "--bind", HOST, "--vectors", vectors,
                     "--appendonly", "yes" if appendonly else "no", *extra]
        if appendonly:
            self.argv += ["--appendfsync", "everysec"]
        self.dir, self.port, self.proc = d, port, None
        self.logpath = os.path.join(d, "attnkvd.log")

    def start(self, timeout=600):
        out = open(self.logpath, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, cwd=self.dir, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out.close()
        deadline = t0 + timeout
        while True:
            try:
                c = Conn(self.port, timeout=timeout)
                try:
                    if c.call("PING") == "PONG":
                        return time.perf_counter() - t0
                finally:
                    c.close()
            except (OSError, Fatal):
                pass
            if self.proc.poll() is not None:
                raise Fatal("attnkvd exited with status %s:\n%s"
                            % (self.proc.returncode, self.log()[-3000:]))
            if time.perf_counter() > deadline:
                raise Fatal("attnkvd did not answer PING after %d s" % timeout)
            time.sleep(0.002)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# --- the data ----------------------------------------------------------------------

def make_data(words, sizes, nqueries, seed):
    """(query words, keys, values) for the largest size; a smaller store is a
    prefix. Keys are lists of word indices, values one index each."""
    alpha = re.compile(r"[a-z]+\Z")
    pool = [i for i in range(RANK_LO, min(RANK_HI, len(words))) if alpha.match(words[i])]
    rng = random.Random(seed)
    rng.shuffle(pool)
    queries, keypool = pool[:nqueries], pool[nqueries:]
    nmax = max(sizes)
    keys = [[i] for i in keypool[:nmax]]
    if nmax > len(keys):  # two-word phrases, distinct, for the rest
        seen = set()
        while len(keys) < nmax:
            a, b = rng.choice(keypool), rng.choice(keypool)
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                keys.append([a, b])
    values = [rng.choice(keypool) for _ in range(nmax)]
    return queries, keys, values


def load(port, words, keys, values, start, end):
    """Entries start..end-1 through pipelined MSET batches."""
    c = Conn(port)
    t0 = time.perf_counter()
    inflight = 0
    i = start
    while i < end:
        j = min(end, i + MSET_PAIRS)
        args = ["MSET"]
        for k in range(i, j):
            args.append(" ".join(words[w] for w in keys[k]))
            args.append(words[values[k]])
        c.send(encode(*args))
        inflight += 1
        i = j
        if inflight == MSET_INFLIGHT or i == end:
            for _ in range(inflight):
                r = c.reply()
                if r != "OK":
                    raise Fatal("MSET answered %r" % (r,))
            inflight = 0
    secs = time.perf_counter() - t0
    n = c.call("DBSIZE")
    c.close()
    if n != end:
        raise Fatal("the store holds %s keys, expected %d" % (n, end))
    return secs


def loadgen(exe, port, wordfile, cmd, clients, requests):
    argv = [exe, "--host", HOST, "--port", str(port), "--words", wordfile, "--" + cmd,
            "--clients", str(clients), "--requests", str(requests)]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise Fatal("loadgen %s failed (%d): %s" % (cmd, p.returncode, p.stderr.strip()[-1000:]))
    return {k: float(v) for k, v in (kv.split("=", 1) for kv in p.stdout.split())}


def timed_loadgen(exe, port, wordfile, cmd, clients, seconds):
    """About `seconds` of load: a short run to size the real one."""
    probe = loadgen(exe, port, wordfile, cmd, clients, max(clients, 20) * 2)
    n = int(max(probe["rps"] * seconds, clients * 4, 20))
    return loadgen(exe, port, wordfile, cmd, clients, n)


# --- the numpy reference -----------------------------------------------------------

class Reference:
    def __init__(self, vectors, matrix_off, count, dim):
        self.U = np.array(np.memmap(vectors, dtype="<f4", mode="r", offset=matrix_off,
                                    shape=(count, dim)), dtype=np.float32)
        self.unorm = np.einsum("ij,ij->i", self.U, self.U)

    def store(self, keys, values, n):
        """K (the keys' mean rows) and V for the first n entries."""
        K = np.empty((n, self.U.shape[1]), dtype=np.float32)
        for length in sorted({len(k) for k in keys[:n]}):
            rows = np.array([i for i in range(n) if len(keys[i]) == length])
            ids = np.array([keys[i] for i in rows])
            K[rows] = self.U[ids].mean(axis=1)
        V = self.U[values[:n]]
        return K, V

    def query(self, K, V, qi):
        q = self.U[qi]
        s = K @ q
        s -= s.max()
        w = np.exp(s)
        w /= w.sum()
        r = w @ V
        d = self.unorm - 2.0 * (self.U @ r)
        return int(np.argmin(d))

    def rate(self, K, V, queries, seconds):
        n, t0 = 0, time.perf_counter()
        while True:
            self.query(K, V, queries[n % len(queries)])
            n += 1
            t = time.perf_counter() - t0
            if (t >= seconds and n >= 5) or n >= 100000:
                return n / t


def perf_profile(outdir, d, loadgen_exe, wordfile, cmd, clients, seconds, n):
    """perf record -g on the daemon while loadgen sends QUERY (or FGET); the
    report's top symbols by self time."""
    os.makedirs(outdir, exist_ok=True)
    data = os.path.join(outdir, "perf-%s-%d.data" % (cmd, n))
    probe = loadgen(loadgen_exe, d.port, wordfile, cmd, clients, clients * 2)
    lg = subprocess.Popen([loadgen_exe, "--host", HOST, "--port", str(d.port), "--words",
                           wordfile, "--" + cmd, "--clients", str(clients), "--requests",
                           str(int(probe["rps"] * (seconds + 4)) + clients)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        p = subprocess.run(["perf", "record", "-g", "-o", data, "-p", str(d.proc.pid), "--",
                            "sleep", str(seconds)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise Fatal("perf record failed: " + p.stderr.strip()[-1000:])
    finally:
        lg.wait()
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio",
                          "--sort", "symbol", "-g", "none", "--percent-limit", "0.5"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    with open(os.path.join(outdir, "perf-%s-%d.txt" % (cmd, n)), "w") as f:
        f.write(rep)
    top = [re.sub(r"(\s+-)+$", "", l.strip()) for l in rep.splitlines()
           if l.strip() and not l.startswith("#")]
    log("%d: perf top symbols:\n  " % n + "\n  ".join(top[:15]))
    return top[:30]


def top_words(port, words, queries):
    c = Conn(port)
    out = []
    for i in range(0, len(queries), 64):
        part = queries[i:i + 64]
        c.send(b"".join(encode("QUERY", words[q]) for q in part))
        for _ in part:
            r = c.reply()
            if isinstance(r, Fatal):
                raise r
            out.append(r[0] if r else None)
    c.close()
    return out


# --- the run -----------------------------------------------------------------------

def fmt_int(x):
    return "-" if x is None else "{:,}".format(int(round(x)))


def fmt_ms(x):
    return "-" if x is None else ("%.2f" % x if x < 10 else "%.1f" % x)


def table(rows, restart):
    head = ["entries", "QUERY/s, 50 clients", "QUERY 1 client p50 / p99 ms",
            "FGET/s, 50 clients", "FGET 1 client p50 ms", "numpy q/s (1 core)",
            "attnkvd / numpy", "top-1 agreement"]
    if restart:
        head.append("restart to PONG")
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [fmt_int(r["entries"]), fmt_int(r["query_rps"]),
                 "%s / %s" % (fmt_ms(r["query_p50_ms"]), fmt_ms(r["query_p99_ms"])),
                 fmt_int(r["fget_rps"]), fmt_ms(r["fget_p50_ms"]),
                 "-" if r.get("numpy_qps") is None else "%.1f" % r["numpy_qps"],
                 "-" if r.get("numpy_qps") is None else "%.1f×" % (r["query_rps"] / r["numpy_qps"]),
                 "-" if r.get("agree") is None else "%d/%d" % (r["agree"], r["checked"])]
        if restart:
            cells.append("%.2f s" % r["restart_s"] if r.get("restart_s") is not None else "-")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def replay_ms(d):
    """The replay time the daemon logged at its last start."""
    m = re.findall(r"replayed \d+ records .*? in ([\d.]+) ms", d.log())
    return float(m[-1]) if m else None


def rewrite(port, preamble):
    """BGREWRITEAOF with aof-use-rdb-preamble set so; waits for it."""
    c = Conn(port)
    c.call("CONFIG", "SET", "aof-use-rdb-preamble", "yes" if preamble else "no")
    before = re.search(r"aof_rewrites:(\d+)", c.call("INFO", "persistence")).group(1)
    r = c.call("BGREWRITEAOF")
    if not isinstance(r, str) or "rewriting started" not in r:
        raise Fatal("BGREWRITEAOF answered %r" % (r,))
    t0 = time.perf_counter()
    while True:
        info = c.call("INFO", "persistence")
        if re.search(r"aof_rewrites:(\d+)", info).group(1) != before:
            break
        if time.perf_counter() - t0 > 600:
            raise Fatal("the rewrite did not finish")
        time.sleep(0.05)
    if "aof_last_rewrite_status:ok" not in info:
        raise Fatal("the rewrite failed")
    c.close()
    return time.perf_counter() - t0


def restart_only(a, daemon_exe, words, keys, values, sizes, tmp):
    rows = []
    for n in sizes:
        ddir = os.path.join(tmp, "r%d" % n)
        os.mkdir(ddir)
        aof = os.path.join(ddir, "appendonly.aof")
        d = Daemon(daemon_exe, a.vectors, ddir, free_port(), True)
        try:
            d.start()
            row = {"entries": n, "load_s": load(d.port, words, keys, values, 0, n)}
            log("%d entries loaded in %.1f s" % (n, row["load_s"]))
            for name, preamble in (("mset", None), ("records", False), ("preamble", True)):
                if preamble is not None:
                    row[name + "_rewrite_s"] = rewrite(d.port, preamble)
                d.stop()
                row[name + "_bytes"] = os.path.getsize(aof)
                row[name + "_s"] = d.start()
                row[name + "_replay_ms"] = replay_ms(d)
                c = Conn(d.port)
                got = c.call("DBSIZE")
                c.close()
                if got != n:
                    raise Fatal("after the restart the store holds %s keys, expected %d"
                                % (got, n))
                log("%d, %s: %.1f MB, restart to PONG %.3f s (replay %s ms)"
                    % (n, name, row[name + "_bytes"] / 1e6, row[name + "_s"],
                       row[name + "_replay_ms"]))
        finally:
            d.stop()
        rows.append(row)
    head = ["entries", "AOF as written (MSET)", "after a rewrite, records", "rewrite with the preamble",
            "after it, preamble", "preamble load rate"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def cell(r, name):
        return "%.2f s (%.0f MB)" % (r[name + "_s"], r[name + "_bytes"] / 1e6)
    for r in rows:
        rate = r["entries"] / (r["preamble_replay_ms"] / 1e3) if r["preamble_replay_ms"] else None
        out.append("| " + " | ".join([fmt_int(r["entries"]), cell(r, "mset"), cell(r, "records"),
                                      "%.2f s" % r["preamble_rewrite_s"], cell(r, "preamble"),
                                      "-" if rate is None else "%s entries/s" % fmt_int(rate)])
                   + " |")
    return rows, "\n".join(out)


def parse_sizes(s):
    out = []
    for part in s.split(","):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([kKmM]?)\s*", part)
        if not m:
            raise argparse.ArgumentTypeError("bad size %r (e.g. 1k,10k,200k,1M)" % part)
        mult = {"": 1, "k": 1000, "m": 1000000}[m.group(2).lower()]
        out.append(int(float(m.group(1)) * mult))
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--sizes", type=parse_sizes, default=None,
                    help="store sizes, e.g. 1k,10k,200k,1M (default %s)"
                    % ",".join(map(str, DEFAULT_SIZES)))
    ap.add_argument("--quick", action="store_true", help="1k and 10k only")
    ap.add_argument("--build", help="the build directory (default build-release/, else build/)")
    ap.add_argument("--vectors", default=os.environ.get("AKV_VECTORS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "attnkv", "glove-6B-100d.akv"))
    ap.add_argument("--seconds", type=float, default=8.0, help="load per cell (default 8)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--queries", type=int, default=2000, help="query words (default 2000)")
    ap.add_argument("--check", type=int, default=100,
                    help="queries whose top word is compared with numpy's (default 100)")
    ap.add_argument("--restart", action="store_true",
                    help="appendonly yes, and time a restart on the AOF at each size")
    ap.add_argument("--restart-only", action="store_true",
                    help="only restarts: on the MSETs' file, after a rewrite to records, after "
                         "one with the snapshot preamble")
    ap.add_argument("--no-numpy", action="store_true", help="skip the numpy reference")
    ap.add_argument("--perf", metavar="DIR",
                    help="also run perf record -g on the daemon under the 50-client QUERY load "
                    "for --seconds at each size, keeping perf-query-N.data and perf-query-N.txt "
                    "(the top symbols, self time) in DIR")
    ap.add_argument("--perf-command", choices=("query", "fget"), default="query",
                    help="the load --perf profiles (default query)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--json", help="also write the raw figures to this file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    sizes = sorted(a.sizes or (QUICK_SIZES if a.quick else DEFAULT_SIZES))

    daemon_exe, bdir = find_exe(a.build, "src/server/attnkvd")
    loadgen_exe, _ = find_exe(bdir, "bench/loadgen")
    log("attnkvd %s, vectors %s" % (daemon_exe, a.vectors))
    words, matrix_off, count, dim = read_words(a.vectors)
    queries, keys, values = make_data(words, sizes, a.queries, a.seed)
    ref = None
    if np is not None and not a.no_numpy and not a.restart_only:
        ref = Reference(a.vectors, matrix_off, count, dim)
    elif not a.no_numpy and not a.restart_only:
        log("numpy is not installed: no reference column (apt-get install python3-numpy)")

    tmp = tempfile.mkdtemp(prefix="akv-scale-")
    wordfile = os.path.join(tmp, "queries.txt")
    with open(wordfile, "w") as f:
        f.write("".join(words[q] + "\n" for q in queries))
    rows = []
    d = None
    if a.restart_only:
        try:
            rows, text = restart_only(a, daemon_exe, words, keys, values, sizes, tmp)
        finally:
            if not a.keep:
                shutil.rmtree(tmp, ignore_errors=True)
        print(text)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(rows, f, indent=1)
        return 0
    try:
        for n in sizes:
            ddir = os.path.join(tmp, "n%d" % n)
            os.mkdir(ddir)
            d = Daemon(daemon_exe, a.vectors, ddir, free_port(), a.restart)
            d.start()
            row = {"entries": n}
            row["load_s"] = load(d.port, words, keys, values, 0, n)
            log("%d entries loaded in %.1f s (%.0f/s)" % (n, row["load_s"], n / row["load_s"]))
            r = timed_loadgen(loadgen_exe, d.port, wordfile, "query", a.clients, a.seconds)
            row["query_rps"] = r["rps"]
            r = timed_loadgen(loadgen_exe, d.port, wordfile, "query", 1, a.seconds / 2)
            row["query_p50_ms"], row["query_p99_ms"] = r["p50_ms"], r["p99_ms"]
            r = timed_loadgen(loadgen_exe, d.port, wordfile, "fget", a.clients, a.seconds)
            row["fget_rps"] = r["rps"]
            r = timed_loadgen(loadgen_exe, d.port, wordfile, "fget", 1, a.seconds / 2)
            row["fget_p50_ms"], row["fget_p99_ms"] = r["p50_ms"], r["p99_ms"]
            log("%d: QUERY %.0f/s, p50 %.2f ms; FGET %.0f/s, p50 %.2f ms"
                % (n, row["query_rps"], row["query_p50_ms"], row["fget_rps"], row["fget_p50_ms"]))
            if a.perf:
                row["perf_top"] = perf_profile(a.perf, d, loadgen_exe, wordfile, a.perf_command,
                                               a.clients, a.seconds, n)
            sample = queries[:a.check]
            akv_top = top_words(d.port, words, sample) if ref is not None else None
            if a.restart:
                d.stop()
                row["aof_bytes"] = os.path.getsize(os.path.join(ddir, "appendonly.aof")) \
                    if os.path.exists(os.path.join(ddir, "appendonly.aof")) else None
                row["restart_s"] = d.start()
                c = Conn(d.port)
                got = c.call("DBSIZE")
                c.close()
                if got != n:
                    raise Fatal("after the restart the store holds %s keys, expected %d" % (got, n))
                log("%d: restart to PONG %.2f s" % (n, row["restart_s"]))
            d.stop()
            d = None
            if ref is not None:  # the daemon is stopped: numpy has the machine
                K, V = ref.store(keys, values, n)
                row["numpy_qps"] = ref.rate(K, V, queries, a.seconds)
                np_top = [words[ref.query(K, V, q)] for q in sample]
                row["checked"] = len(sample)
                row["agree"] = sum(x == y for x, y in zip(akv_top, np_top))
                row["disagree"] = [(words[q], x, y) for q, x, y in zip(sample, akv_top, np_top)
                                   if x != y][:10]
                del K, V
                log("%d: numpy %.1f q/s, top-1 agreement %d/%d"
                    % (n, row["numpy_qps"], row["agree"], row["checked"]))
            rows.append(row)
    finally:
        if d is not None:
            d.stop()
        if a.keep:
            log("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows, a.restart))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fatal as e:
        log(str(e))
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
