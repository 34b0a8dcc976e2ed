#!/usr/bin/python3
"""compare.py - the measuring half of bench/run-bench (issue 5, "Query speed").

bench/run-bench builds and starts the daemons; this script measures them and
the reference libraries, one subcommand per figure, and merges each figure
into a JSON results file that the `table` subcommand prints:

  startup   time from launching a server to its first PING answer
  load      pipelined SETs of the benchmark store (single-word entries)
  qps       QUERY throughput: our own asyncio load generator, N clients, each
            keeping one QUERY of a different word in flight
  qsweep    QUERY throughput against the number of clients (1, 2, 5, 10, 25,
            50 by default), bench/loadgen --query at each count
  latency   single-client QUERY latency, one request at a time (every
            request's time is kept, for the latency chart)
  recall    NEIGHBORS over TCP against an exhaustive float64 scan, and
            QUERY against a float64 attention + ranking
  ann       FAISS IndexFlatL2 and hnswlib on the same vectors, queried with
            the attention results the daemon computes for the same words;
            also their queries/s with 1, 2, 5, ... threads each searching
            one query at a time, the in-process counterpart of qsweep
  words     write the word list that bench/loadgen draws SET keys and values from
  loadgen   run bench/loadgen (SET throughput, pipelined or not) against one
            server, optionally on an emptied server whose DBSIZE it then checks
  record    store a figure measured elsewhere (redis-benchmark)
  meta      store the run's date, machine, revision and settings
  table     print the comparison table

The results file is plain JSON: one number per figure, and a few lists for
the charts (query_latency_ms, faiss_flat_latency_ms, hnsw_latency_ms: every
single-client request's time; query_sweep, faiss_flat_sweep, hnsw_sweep:
queries/s by clients or threads). bench/plot.py draws the charts from it.

Words: the store and the queries are drawn with fixed seeds from the 50,000
most frequent vocabulary words (GloVe files are in frequency order) that are
purely alphabetic, so every run asks the same questions; the loadgen's word
list is all of those words. Talks to 127.0.0.1
only. Needs Debian's python3 with numpy (and python3-faiss, python3-hnswlib
for `ann`).
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HOST = "127.0.0.1"
TOP_WORDS = 50_000
STORE_SEED = 1
QUERY_SEED = 2


# --- the vocabulary file (docs/vocab-format.md) ----------

class Vocab:
    """The .akv file mapped read-only: words (list) and matrix (memmap)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            hdr = f.read(256)
        if hdr[:8] != b"AKVVOCAB":
            sys.exit(f"{path}: not an attnkv vocabulary file")
        self.count = struct.unpack_from("<Q", hdr, 16)[0]
        self.dim = struct.unpack_from("<I", hdr, 24)[0]
        words_off, words_len = struct.unpack_from("<QQ", hdr, 48)
        matrix_off = struct.unpack_from("<Q", hdr, 96)[0]
        with open(path, "rb") as f:
            f.seek(words_off)
            raw = f.read(words_len)
        self.words = raw.split(b"\0")[: self.count]
        self.words = [w.decode("utf-8") for w in self.words]
        self.matrix = np.memmap(path, dtype="<f4", mode="r", offset=matrix_off,
                                shape=(self.count, self.dim))
        self._ids = None

    def id(self, word):
        if self._ids is None:
            self._ids = {w: i for i, w in enumerate(self.words)}
        return self._ids[word]

    def common_words(self):
        """Ids of the purely alphabetic words among the most frequent."""
        return np.array([i for i, w in enumerate(self.words[:TOP_WORDS])
                         if w.isascii() and w.isalpha()])


def store_entries(voc, entries):
    """The benchmark store: (key id, value id) pairs, distinct keys."""
    rng = np.random.default_rng(STORE_SEED)
    pool = voc.common_words()
    keys = rng.choice(pool, size=entries, replace=False)
    values = rng.choice(pool, size=entries, replace=True)
    return list(zip(keys.tolist(), values.tolist()))


def query_words(voc, n, seed=QUERY_SEED):
    rng = np.random.default_rng(seed)
    return rng.choice(voc.common_words(), size=n, replace=True).tolist()


def attention_results(voc, entries, qids):
    """r = softmax(K q) V for each query, in float64 (docs/query.md,
    attention dot)."""
    keys = voc.matrix[[k for k, _ in entries]].astype(np.float64)
    vals = voc.matrix[[v for _, v in entries]].astype(np.float64)
    q = voc.matrix[qids].astype(np.float64)
    s = q @ keys.T
    s -= s.max(axis=1, keepdims=True)
    w = np.exp(s)
    w /= w.sum(axis=1, keepdims=True)
    return w @ vals


def exact_topk(mat64, queries, k, chunk=128):
    """Exhaustive L2 top-k in float64, ties broken by vocabulary order.
    Candidates come from the expanded form |x|^2 - 2x.q, then the best
    k + 16 are rescored with the direct difference, as the daemon does."""
    sq = np.einsum("ij,ij->i", mat64, mat64)
    out = []
    for lo in range(0, len(queries), chunk):
        qs = queries[lo: lo + chunk]
        d = sq[None, :] - 2.0 * (qs @ mat64.T)
        cand = np.argpartition(d, k + 16, axis=1)[:, : k + 16]
        for q, c in zip(qs, cand):
            exact = ((mat64[c] - q) ** 2).sum(axis=1)
            order = np.lexsort((c, exact))
            out.append(c[order[:k]].tolist())
    return out


# --- a small RESP client ----------------------------------------------------

def encode(*args):
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


class RespReader:
    """Parses RESP2 replies from a buffered byte stream (blocking socket)."""

    def __init__(self, sock):
        self.f = sock.makefile("rb")

    def reply(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("server closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError(f"bad reply line {line!r}")


def connect(port):
    s = socket.create_connection((HOST, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s, RespReader(s)


async def read_reply(reader):
    """The asyncio counterpart of RespReader.reply."""
    line = await reader.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else (await reader.readexactly(n + 2))[:-2]
    if kind == b"*":
        return [await read_reply(reader) for _ in range(int(rest))]
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if not line:
        raise ConnectionError("server closed the connection")
    return rest


# --- results ----------------------------------------------------------------

def save(path, **figures):
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    data.update(figures)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    for k, v in figures.items():
        if isinstance(v, float):
            print(f"  {k} = {v:.6g}")
        elif isinstance(v, list):
            print(f"  {k} = [{len(v)} values]")
        elif isinstance(v, dict) and "clients" in v:
            print(f"  {k} = " + ", ".join(f"{c}: {q:,.0f}/s"
                                          for c, q in zip(v["clients"], v["qps"])))
        else:
            print(f"  {k} = {v}")


def ms_list(times):
    """Seconds -> milliseconds rounded to 0.1 us, in the order measured."""
    return [round(t * 1e3, 4) for t in times]


def client_counts(text):
    counts = [int(x) for x in text.split(",") if x.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive counts")
    return counts


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- subcommands ------------------------------------------------------------

def cmd_startup(a):
    """Launch the server `runs` times, each in a fresh empty data directory
    on a free port, and time launch -> first +PONG (polling every 0.2 ms)."""
    times = []
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory(dir=a.tmp) as d:
            port = free_port()
            argv = [x.format(port=port, dir=d) for x in a.argv]
            with open(os.path.join(d, "log"), "w") as log:
                t0 = time.perf_counter()
                proc = subprocess.Popen(argv, cwd=d, stdout=log, stderr=log)
                try:
                    while True:
                        if proc.poll() is not None:
                            sys.exit(f"{argv[0]} exited with {proc.returncode}; see its log")
                        try:
                            s = socket.create_connection((HOST, port), timeout=1)
                        except OSError:
                            time.sleep(0.0002)
                            continue
                        with s:
                            s.sendall(b"PING\r\n")
                            if s.recv(64).startswith(b"+PONG"):
                                break
                    times.append(time.perf_counter() - t0)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(timeout=30)
            if time.perf_counter() - t0 > 60:
                break
    save(a.results, **{f"{a.label}_startup_ms": statistics.median(times) * 1e3})


def cmd_load(a):
    voc = Vocab(a.vectors)
    entries = store_entries(voc, a.entries)
    s, r = connect(a.port)
    with s:
        s.sendall(b"".join(encode("SET", voc.words[k], voc.words[v]) for k, v in entries))
        for _ in entries:
            r.reply()
        s.sendall(encode("DBSIZE"))
        n = int(r.reply())
    if n != a.entries:
        sys.exit(f"DBSIZE is {n}, expected {a.entries}")
    print(f"  loaded {n} entries")


def cmd_qps(a):
    """Closed-loop load: `clients` connections, each sending QUERY <word>
    and waiting for the answer before the next; the words are a fixed
    random sample, consumed round-robin so every request has its own."""
    voc = Vocab(a.vectors)
    words = [voc.words[i] for i in query_words(voc, a.requests)]
    reqs = [encode("QUERY", w) for w in words]
    next_req = iter(range(len(reqs)))

    async def client():
        reader, writer = await asyncio.open_connection(HOST, a.port)
        for i in next_req:
            writer.write(reqs[i])
            reply = await read_reply(reader)
            if not isinstance(reply, list) or len(reply) != 5:
                raise RuntimeError(f"QUERY {words[i]}: unexpected reply {reply!r}")
        writer.close()

    async def run():
        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(a.clients)))
        return time.perf_counter() - t0

    wall = asyncio.run(run())
    save(a.results, query_qps_c50=a.requests / wall)


def cmd_latency(a):
    voc = Vocab(a.vectors)
    words = [voc.words[i] for i in query_words(voc, a.requests, seed=QUERY_SEED + 1)]
    s, r = connect(a.port)
    times = []
    with s:
        for w in words:
            t0 = time.perf_counter()
            s.sendall(encode("QUERY", w))
            r.reply()
            times.append(time.perf_counter() - t0)
    save(a.results, query_p50_ms=percentile(times, 0.50) * 1e3,
         query_p99_ms=percentile(times, 0.99) * 1e3, query_latency_ms=ms_list(times))


def run_loadgen(a, *args):
    """Runs bench/loadgen against a.port; returns its fields (numbers) or
    exits if it failed or any reply was wrong."""
    argv = [a.loadgen, "--host", HOST, "--port", str(a.port), *args]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    lines = proc.stdout.split("\n")
    fields = dict(x.split("=", 1) for x in lines[0].split()) if lines[0] else {}
    if proc.returncode != 0 or fields.get("errors") != "0":
        sys.exit(f"{' '.join(argv)} failed (status {proc.returncode}): {proc.stdout.strip()}")
    return fields


def sweep_summary(counts, runs, extra=None):
    """{clients, qps (median of the rounds), qps_runs (every round's figure,
    per count), rounds, ...extra lists}: what the charts and table read."""
    out = {"clients": list(counts), "qps": [statistics.median(r) for r in runs],
           "qps_runs": [list(r) for r in runs], "rounds": len(runs[0]) if runs else 0}
    out.update(extra or {})
    return out


def cmd_qsweep(a):
    """QUERY/s against the number of clients: bench/loadgen --query with C
    connections, each keeping one QUERY in flight, for each C in turn, the
    whole series `rounds` times over (so that a busy moment of the machine
    spoils one round's figure, not a whole count's); the median is the
    figure. Each step's request count is sized from the rate last measured
    at that count (in the first round, from the previous count's rate; a
    short pilot sizes the very first) so that it lasts about `seconds`."""
    est = float(run_loadgen(a, "--query", "--words", a.words, "-c", "1", "-n", "100")["rps"])
    last = {}
    runs = [[] for _ in a.clients]
    p50 = [[] for _ in a.clients]
    p99 = [[] for _ in a.clients]
    requests = [0] * len(a.clients)
    seconds = [0.0] * len(a.clients)
    cpu = [0.0] * len(a.clients)
    for rnd in range(a.rounds):
        prev_c = 1
        for i, c in enumerate(a.clients):
            guess = last.get(c) or (est * min(c / prev_c, 2.0) if c > prev_c else est)
            n = max(10 * c, int(guess * a.seconds))
            f = run_loadgen(a, "--query", "--words", a.words, "-c", str(c), "-n", str(n),
                            "--seed", str(1 + rnd))
            est, prev_c, last[c] = float(f["rps"]), c, float(f["rps"])
            print(f"  round {rnd + 1}, {c} clients: {est:,.0f} QUERY/s ({n} requests, "
                  f"{float(f['seconds']):.1f} s, p50 {float(f['p50_ms']):.2f} ms, "
                  f"p99 {float(f['p99_ms']):.2f} ms)")
            runs[i].append(est)
            p50[i].append(float(f["p50_ms"]))
            p99[i].append(float(f["p99_ms"]))
            requests[i] += n
            seconds[i] += float(f["seconds"])
            cpu[i] += float(f["cpu_s"])
    save(a.results, query_sweep=sweep_summary(a.clients, runs, {
        "p50_ms": [statistics.median(x) for x in p50],
        "p99_ms": [statistics.median(x) for x in p99],
        "requests": requests, "seconds": seconds, "cpu_s": cpu}))


def cmd_recall(a):
    """NEIGHBORS w COUNT 5 over TCP against an exhaustive float64 scan (the
    word itself included, as the daemon does), and QUERY w against float64
    attention over the benchmark store followed by the same scan."""
    voc = Vocab(a.vectors)
    mat64 = np.asarray(voc.matrix, dtype=np.float64)
    qids = query_words(voc, a.queries, seed=QUERY_SEED + 2)
    k = 5
    s, r = connect(a.port)
    with s:
        got_nb, got_q = [], []
        for i in qids:
            s.sendall(encode("NEIGHBORS", voc.words[i], "COUNT", str(k)))
            got_nb.append([voc.id(w) for w in r.reply()])
            s.sendall(encode("QUERY", voc.words[i], "COUNT", str(k)))
            got_q.append([voc.id(w) for w in r.reply()])
    want_nb = exact_topk(mat64, mat64[qids], k)
    entries = store_entries(voc, a.entries)
    want_q = exact_topk(mat64, attention_results(voc, entries, qids), k)

    def recall(got, want):
        return sum(len(set(g) & set(w)) for g, w in zip(got, want)) / (k * len(want))

    save(a.results, neighbors_recall=recall(got_nb, want_nb),
         query_recall=recall(got_q, want_q), recall_queries=len(qids))


def thread_sweep(search, xq, counts, seconds, rounds):
    """Queries/s with T Python threads, each searching one query at a time
    until `seconds` have passed (closed loop, like T clients each with one
    request in flight; FAISS and hnswlib release the GIL while searching).
    Throughput = queries completed / time until the last thread finished.
    The series is run `rounds` times over; the median is the figure."""
    import threading

    runs = [[] for _ in counts]
    queries = [0] * len(counts)
    wall_total = [0.0] * len(counts)
    for rnd in range(rounds):
        for i, t in enumerate(counts):
            nxt = iter(range(1 << 62))  # next() on it is atomic under the GIL
            done = [0] * t
            start = threading.Barrier(t + 1)
            deadline = [0.0]

            def worker(j):
                start.wait()
                while time.perf_counter() < deadline[0]:
                    q = next(nxt) % len(xq)
                    search(xq[q: q + 1])
                    done[j] += 1

            threads = [threading.Thread(target=worker, args=(j,)) for j in range(t)]
            for th in threads:
                th.start()
            t0 = time.perf_counter()
            deadline[0] = t0 + seconds
            start.wait()
            for th in threads:
                th.join()
            wall = time.perf_counter() - t0
            runs[i].append(sum(done) / wall)
            queries[i] += sum(done)
            wall_total[i] += wall
            print(f"  round {rnd + 1}, {t} threads: {sum(done) / wall:,.1f} queries/s "
                  f"({sum(done)} in {wall:.1f} s)")
    return sweep_summary(counts, runs, {"queries": queries, "seconds": wall_total})


def cmd_ann(a):
    import faiss
    import hnswlib

    voc = Vocab(a.vectors)
    k = 5
    xb = np.ascontiguousarray(voc.matrix)
    qids = query_words(voc, a.queries, seed=QUERY_SEED)
    entries = store_entries(voc, a.entries)
    q64 = attention_results(voc, entries, qids)
    xq = q64.astype(np.float32)
    truth = exact_topk(np.asarray(xb, dtype=np.float64), q64, k)
    res = {}

    flat = faiss.IndexFlatL2(voc.dim)
    flat.add(xb)
    times = []
    for i in range(min(a.single, len(xq))):
        t0 = time.perf_counter()
        flat.search(xq[i: i + 1], k)
        times.append(time.perf_counter() - t0)
    res["faiss_flat_p50_ms"] = percentile(times, 0.50) * 1e3
    res["faiss_flat_p99_ms"] = percentile(times, 0.99) * 1e3
    res["faiss_flat_latency_ms"] = ms_list(times)
    t0 = time.perf_counter()
    _, ids = flat.search(xq, k)
    res["faiss_flat_batch_qps"] = len(xq) / (time.perf_counter() - t0)
    res["faiss_flat_recall"] = float(np.mean(
        [len(set(g) & set(w)) / k for g, w in zip(ids.tolist(), truth)]))
    if a.sweep:
        # One OpenMP thread per search, so that N Python threads are N
        # searches at once, like N clients (a one-query search does not
        # use more threads anyway).
        omp = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        res["faiss_flat_sweep"] = thread_sweep(lambda q, index=flat: index.search(q, k), xq,
                                               a.sweep, a.sweep_seconds, a.rounds)
        faiss.omp_set_num_threads(omp)
    del flat

    hnsw = hnswlib.Index(space="l2", dim=voc.dim)
    t0 = time.perf_counter()
    hnsw.init_index(max_elements=voc.count, M=16, ef_construction=100, random_seed=100)
    hnsw.add_items(xb, np.arange(voc.count), num_threads=os.cpu_count())
    res["hnsw_build_s"] = time.perf_counter() - t0
    hnsw.set_ef(a.ef)
    hnsw.set_num_threads(1)
    times = []
    for i in range(min(a.single, len(xq))):
        t0 = time.perf_counter()
        hnsw.knn_query(xq[i: i + 1], k)
        times.append(time.perf_counter() - t0)
    res["hnsw_p50_ms"] = percentile(times, 0.50) * 1e3
    res["hnsw_p99_ms"] = percentile(times, 0.99) * 1e3
    res["hnsw_latency_ms"] = ms_list(times)
    if a.sweep:
        res["hnsw_sweep"] = thread_sweep(lambda q: hnsw.knn_query(q, k), xq, a.sweep,
                                         a.sweep_seconds, a.rounds)
    hnsw.set_num_threads(os.cpu_count())
    t0 = time.perf_counter()
    ids, _ = hnsw.knn_query(xq, k)
    res["hnsw_batch_qps"] = len(xq) / (time.perf_counter() - t0)
    res["hnsw_recall"] = float(np.mean(
        [len(set(g) & set(w)) / k for g, w in zip(ids.tolist(), truth)]))
    res["ann_queries"] = len(xq)
    res["hnsw_ef"] = a.ef
    save(a.results, **res)


def cmd_words(a):
    """The loadgen's word list: the common words, one a line, in frequency
    order (the loadgen shuffles them with its own seed)."""
    voc = Vocab(a.vectors)
    words = [voc.words[i] for i in voc.common_words()]
    with open(a.out, "w") as f:
        f.write("".join(w + "\n" for w in words))
    save(a.results, word_list=len(words))


def cmd_loadgen(a):
    """Runs bench/loadgen against one server and records its requests/s as
    `name`, with its latencies and processor time beside it. An error reply
    aborts the benchmark: it would mean the figure is not SET's. With --fresh
    the server is emptied first and must hold exactly the distinct keys the
    loadgen sent afterwards, which shows that every SET took effect."""
    def command(*args):
        s, r = connect(a.port)
        with s:
            s.sendall(encode(*args))
            return r.reply()

    if a.fresh:
        command("FLUSHALL")
    fields = run_loadgen(a, *a.args)
    if a.fresh:
        n = int(command("DBSIZE"))
        if n != int(fields["keys"]):
            sys.exit(f"{a.name}: DBSIZE is {n} after the run, but {fields['keys']} "
                     f"distinct keys were sent")
        print(f"  DBSIZE {n} = distinct keys sent")
    save(a.results, **{a.name: float(fields["rps"]),
                       f"{a.name}_p50_ms": float(fields["p50_ms"]),
                       f"{a.name}_p99_ms": float(fields["p99_ms"]),
                       f"{a.name}_cpu_s": float(fields["cpu_s"]),
                       f"{a.name}_requests": int(fields["requests"]),
                       f"{a.name}_keys": int(fields["keys"])})


def cmd_record(a):
    save(a.results, **{a.name: float(a.value)})


def cpu_info():
    """(model name, logical CPUs, SIMD flags) from /proc/cpuinfo."""
    model, flags = "?", set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key.strip() == "model name":
                model = val.strip()
            elif key.strip() == "flags":
                flags = set(val.split())
    simd = [f for f in ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")
            if f in flags] or ["none"]
    return model, os.cpu_count(), simd


def cmd_meta(a):
    """The run's context, for the table and the charts' footnotes: the date,
    the machine and the load average when first called, then any NAME=TEXT
    or NAME:=NUMBER given, merged into what is already stored."""
    meta = {}
    if os.path.exists(a.results):
        with open(a.results) as f:
            meta = json.load(f).get("meta", {})
    if "date" not in meta:
        model, cpus, simd = cpu_info()
        meta.update(date=time.strftime("%Y-%m-%d", time.gmtime()),
                    time_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    cpu_model=model, cpus=cpus, simd=simd,
                    load_average=[round(x, 2) for x in os.getloadavg()])
    for kv in a.values:
        if ":=" in kv:
            k, _, v = kv.partition(":=")
            meta[k] = float(v) if not v.lstrip("-").isdigit() else int(v)
        else:
            k, _, v = kv.partition("=")
            meta[k] = v
    save(a.results, meta=meta)


def machine():
    model, cpus, simd = cpu_info()
    return f"{cpus} CPUs, {model}, {' '.join(simd)}"


def cmd_table(a):
    with open(a.results) as f:
        r = json.load(f)
    rows = []

    def row(figure, ours, ref_label, ref, target="", met=None, fmt="{:,.0f}"):
        o = r.get(ours, ours) if isinstance(ours, str) else ours
        f = r.get(ref) if isinstance(ref, str) else ref
        cell = (lambda v: "-" if v is None else v if isinstance(v, str) else fmt.format(v))
        numbers = isinstance(o, (int, float)) and isinstance(f, (int, float))
        ratio = f"{o / f:.3g}x" if numbers and f else "-"
        ok = "" if met is None or not numbers else ("yes" if met(o, f) else "NO")
        rows.append((figure, cell(o), f"{cell(f)} {ref_label}".strip(), ratio, target, ok))

    ms = "{:.2f} ms"
    row("QUERY/s, 50 clients, varied words (asyncio generator)", "query_qps_c50",
        "FAISS flat, 2,000 batched", "faiss_flat_batch_qps", ">= 5,000/s",
        lambda o, f: o >= 5000)
    row("QUERY/s, 50 clients, a word per request (loadgen)", "query_lg",
        "hnswlib, 2,000 batched", "hnsw_batch_qps", ">= 5,000/s", lambda o, f: o >= 5000)
    row("QUERY/s, 50 clients, 10 redis-benchmark x 5 clients", "query_qps_rb",
        "loadgen, a word per request", "query_lg", ">= 5,000/s", lambda o, f: o >= 5000)
    row("QUERY p50, one client, varied words", "query_p50_ms", "FAISS flat, one query",
        "faiss_flat_p50_ms", "<= 3 ms", lambda o, f: o <= 3, fmt=ms)
    row("QUERY p99, one client, varied words", "query_p99_ms", "FAISS flat, one query",
        "faiss_flat_p99_ms", "<= 6 ms", lambda o, f: o <= 6, fmt=ms)
    row("QUERY p50 vs approximate search", "query_p50_ms", "hnswlib, one query",
        "hnsw_p50_ms", fmt=ms)
    row("QUERY recall@5 vs float64 exhaustive", "query_recall", "hnswlib", "hnsw_recall",
        fmt="{:.4f}")
    row("index build time", "none (exhaustive)", "hnswlib", "hnsw_build_s",
        fmt="{:.1f} s")
    row("SET/s, -c 50", "set_akv", "redis-server", "set_redis", ">= 0.5x redis",
        lambda o, f: f is not None and o >= 0.5 * f)
    row("SET/s, -P 16 -c 50", "set_p16_akv", "redis-server", "set_p16_redis",
        ">= 0.5x redis", lambda o, f: f is not None and o >= 0.5 * f)
    row("SET/s, -c 50, word list (loadgen)", "set_words_akv", "redis-server",
        "set_words_redis", ">= 0.5x redis", lambda o, f: f is not None and o >= 0.5 * f)
    row("SET/s, -P 16 -c 50, word list (loadgen)", "set_words_p16_akv", "redis-server",
        "set_words_p16_redis", ">= 0.5x redis", lambda o, f: f is not None and o >= 0.5 * f)
    row("SET p50, -c 50, word list (loadgen)", "set_words_akv_p50_ms", "redis-server",
        "set_words_redis_p50_ms", fmt=ms)
    row("SET p99, -c 50, word list (loadgen)", "set_words_akv_p99_ms", "redis-server",
        "set_words_redis_p99_ms", fmt=ms)
    row("loadgen check: SET cat animal/s, -c 50, attnkvd", "set_lg_akv", "redis-benchmark",
        "set_akv")
    row("loadgen check: SET cat animal/s, -P 16 -c 50, attnkvd", "set_lg_p16_akv",
        "redis-benchmark", "set_p16_akv")
    row("start-up, launch to first PONG (median)", "attnkvd_startup_ms", "redis-server",
        "redis_startup_ms", "<= 100 ms", lambda o, f: o <= 100, fmt="{:.1f} ms")
    row("NEIGHBORS recall@5 vs float64 exhaustive", "neighbors_recall", "required", 1,
        "= 1.0", lambda o, f: o == 1.0, fmt="{:.4f}")

    head = ("figure", "attnkvd", "reference", "ratio", "target", "met")
    widths = [max(len(x[i]) for x in rows + [head]) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(f"Machine: {machine()}")
    print(line(head))
    print("| " + " | ".join("-" * w for w in widths) + " |")
    for x in rows:
        print(line(x))
    notes = [f"{r.get('recall_queries', '?')} recall queries",
             f"{r.get('ann_queries', '?')} FAISS/hnswlib queries (the attention results "
             f"for the same words), hnswlib M=16 ef_construction=100 ef={r.get('hnsw_ef', '?')}"]
    print("; ".join(notes))
    if "set_words_akv" in r and "set_words_p16_akv" in r:
        print(f"Word list: bench/loadgen sends SET <key> <value>, keys cycling through the "
              f"{r.get('word_list', 0):,} common words shuffled with a fixed seed, values drawn "
              f"from them with it, the same commands to both servers; "
              f"{r['set_words_akv_keys']:,} (-c 50) and {r['set_words_p16_akv_keys']:,} "
              f"(-P 16) distinct keys, checked with DBSIZE after each run.")
    if "query_lg" in r:
        print(f"QUERY loadgen: bench/loadgen --query sends QUERY <word>, the words cycling "
              f"through the common-word list shuffled, {r['query_lg_keys']:,} distinct words "
              f"in {r['query_lg_requests']:,} requests; p50 {r['query_lg_p50_ms']:.2f} ms, "
              f"p99 {r['query_lg_p99_ms']:.2f} ms; the generator used "
              f"{1e6 * r['query_lg_cpu_s'] / r['query_lg_requests']:.1f} us of CPU per request.")
    sweeps = [(k, label) for k, label in (
        ("query_sweep", "attnkvd (loadgen, over TCP)"),
        ("faiss_flat_sweep", "FAISS flat (in process, threads)"),
        ("hnsw_sweep", "hnswlib (in process, threads)")) if k in r]
    if sweeps:
        print("QUERY/s by clients (threads for the libraries, one query at a time each; "
              "median of rounds): " +
              "; ".join(label + " " + ", ".join(f"{c}: {q:,.0f}" for c, q in
                                              zip(r[k]["clients"], r[k]["qps"]))
                        for k, label in sweeps) + ".")
    if "set_lg_akv" in r and "set_lg_p16_akv" in r and "set_akv" in r and "set_p16_akv" in r:
        cpu = lambda k: 1e6 * r[f"{k}_cpu_s"] / r[f"{k}_requests"]
        print(f"loadgen check: with redis-benchmark's `SET cat animal` the loadgen measured "
              f"{r['set_lg_akv'] / r['set_akv']:.2g}x (-c 50) and "
              f"{r['set_lg_p16_akv'] / r['set_p16_akv']:.2g}x (-P 16) redis-benchmark's "
              f"figure, using {cpu('set_lg_akv'):.1f} and {cpu('set_lg_p16_akv'):.2f} us of "
              f"CPU per request: at or above 1x it is no more the bottleneck than "
              f"redis-benchmark is (on a shared machine, a client that needs less CPU leaves "
              f"more to the server, so its figures run higher).")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", required=True, help="JSON file the figures go into")
    p.add_argument("--vectors", default=os.path.expanduser("~/.cache/attnkv/glove-6B-100d.akv"))
    p.add_argument("--entries", type=int, default=1000, help="size of the benchmark store")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("startup")
    s.add_argument("--label", required=True)
    s.add_argument("--runs", type=int, default=10)
    s.add_argument("--tmp", default=None, help="where the per-run data directories go")
    s.add_argument("argv", nargs="+", help="command; {port} and {dir} are substituted")
    s = sub.add_parser("load")
    s.add_argument("--port", type=int, required=True)
    s = sub.add_parser("qps")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--clients", type=int, default=50)
    s.add_argument("--requests", type=int, default=3000)
    s = sub.add_parser("qsweep")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--loadgen", required=True, help="the bench/loadgen program")
    s.add_argument("--words", required=True, help="the word list (the words subcommand)")
    s.add_argument("--clients", type=client_counts, default=[1, 2, 5, 10, 25, 50],
                   help="comma-separated client counts (default 1,2,5,10,25,50)")
    s.add_argument("--seconds", type=float, default=1.5, help="about how long each step lasts")
    s.add_argument("--rounds", type=int, default=3, help="times the series is run over")
    s = sub.add_parser("latency")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--requests", type=int, default=500)
    s = sub.add_parser("recall")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--queries", type=int, default=200)
    s = sub.add_parser("ann")
    s.add_argument("--queries", type=int, default=2000)
    s.add_argument("--single", type=int, default=500, help="queries timed one at a time")
    s.add_argument("--ef", type=int, default=50)
    s.add_argument("--sweep", type=client_counts, default=[1, 2, 5, 10, 25, 50],
                   help="thread counts for the queries/s sweep (default 1,2,5,10,25,50)")
    s.add_argument("--no-sweep", dest="sweep", action="store_const", const=[],
                   help="skip the sweep")
    s.add_argument("--sweep-seconds", type=float, default=1.5,
                   help="how long each sweep step searches")
    s.add_argument("--rounds", type=int, default=3, help="times the sweep is run over")
    s = sub.add_parser("words")
    s.add_argument("--out", required=True, help="the word list to write")
    s = sub.add_parser("loadgen")
    s.add_argument("--name", required=True, help="what to record the requests/s as")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--loadgen", required=True, help="the bench/loadgen program")
    s.add_argument("--fresh", action="store_true",
                   help="FLUSHALL first, then check DBSIZE against the keys sent")
    s.add_argument("args", nargs="*", help="loadgen options (after --)")
    s = sub.add_parser("record")
    s.add_argument("name")
    s.add_argument("value")
    s = sub.add_parser("meta")
    s.add_argument("values", nargs="*", metavar="NAME=TEXT|NAME:=NUMBER")
    sub.add_parser("table")

    a = p.parse_args()
    globals()["cmd_" + a.cmd](a)


if __name__ == "__main__":
    main()
