#!/usr/bin/python3
"""bench/analogy.py - the Google analogy set through attnkvd and through
gensim on the same vectors: agreement question by question, accuracy, and
wall time of each.

    bench/analogy.py [--attnkvd build/src/server/attnkvd] [--vectors FILE.akv]
                     [--questions questions-words.txt] [--restrict 30000]
                     [--batch 200] [--conns 16] [--port N] [--limit N]

The daemon is started on a free port (or --port names a running one, which
must use the same vectors file). gensim reads the daemon's own vectors file
(docs/vocab-format.md) through numpy, so both rank the same float32 rows.
Both answer every question "a b c d" whose four words are among the
--restrict most frequent words (what gensim's evaluate_word_analogies
keeps): attnkvd with

    ANALOGY a b c COUNT 1 RESTRICT n            (3CosAdd)
    ANALOGY a b c COUNT 1 RESTRICT n COSMUL     (3CosMul)

sent over --conns connections at once, each pipelining --batch commands
per round trip (a connection's commands run one after another, so the
requests the daemon's workers rank together in one shared pass come from
concurrent connections), gensim with most_similar(positive=[b, c],
negative=[a], topn=1, restrict_vocab=n) and most_similar_cosmul on a
KeyedVectors of the n first words (its most_similar_cosmul has no
restrict_vocab). A disagreement is reported with both answers' scores in
float64; it is a tie when they are within float32 rounding of each other
(gensim ranks in float32).

gensim (Debian's python3-gensim) and redis-py are needed to run this; they
are benchmark tools, not dependencies of attnkv.
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def read_akv(path):
    """The words and the float32 matrix of an .akv file (docs/vocab-format.md)."""
    with open(path, "rb") as f:
        hdr = f.read(256)
    if hdr[:8] != b"AKVVOCAB":
        sys.exit(f"{path}: not an attnkv vocabulary file")
    count, = struct.unpack_from("<Q", hdr, 16)
    dim, = struct.unpack_from("<I", hdr, 24)
    words_off, words_len = struct.unpack_from("<QQ", hdr, 48)
    matrix_off, = struct.unpack_from("<Q", hdr, 96)
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    words = bytes(mm[words_off:words_off + words_len]).split(b"\0")[:count]
    mat = np.frombuffer(mm, dtype="<f4", count=count * dim, offset=matrix_off).reshape(count, dim)
    return [w.decode("utf-8") for w in words], np.array(mat, dtype=np.float32)


def read_questions(path, ok):
    out, total = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(":") or not line.strip():
                continue
            total += 1
            q = [w.lower() for w in line.split()]
            if len(q) == 4 and all(w in ok for w in q):
                out.append(q)
    return out, total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_daemon(binary, vectors):
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="akv-analogy-")
    log = open(os.path.join(tmp, "log"), "w")
    proc = subprocess.Popen([binary, "-p", str(port), "-V", vectors, "--appendonly", "no",
                             "--dir", tmp, "--logfile", ""], stdout=log, stderr=subprocess.STDOUT)
    return proc, port, tmp


def run_attnkv(port, questions, restrict, cosmul, batch, conns):
    """The questions over conns connections at once, each pipelining its
    share batch commands at a time: the daemon answers a connection's
    commands in order, one at a time, so it is the concurrent connections
    whose requests its workers rank together in one shared scan."""
    import redis
    from concurrent.futures import ThreadPoolExecutor

    extra = ["COSMUL"] if cosmul else []
    share = (len(questions) + conns - 1) // conns
    parts = [questions[i:i + share] for i in range(0, len(questions), share)]

    def one(part):
        r = redis.Redis(port=port)
        out = []
        for i in range(0, len(part), batch):
            p = r.pipeline(transaction=False)
            for a, b, c, _ in part[i:i + batch]:
                p.execute_command("ANALOGY", a, b, c, "COUNT", 1, "RESTRICT", restrict, *extra)
            out.extend(rep[0].decode() if rep else None for rep in p.execute())
        r.close()
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(parts)) as ex:
        answers = [a for part in ex.map(one, parts) for a in part]
    return answers, time.perf_counter() - t0


def run_gensim(kv, kv_small, questions, restrict, cosmul):
    answers = []
    t0 = time.perf_counter()
    for a, b, c, _ in questions:
        if cosmul:
            sims = kv_small.most_similar_cosmul(positive=[b, c], negative=[a], topn=1)
        else:
            sims = kv.most_similar(positive=[b, c], negative=[a], topn=1, restrict_vocab=restrict)
        answers.append(sims[0][0] if sims else None)
    return answers, time.perf_counter() - t0


def score64(mat, index, q, word, cosmul):
    """Float64 score of word for question q, by the definitions."""
    a, b, c, _ = (mat[index[w]].astype(np.float64) for w in q)
    x = mat[index[word]].astype(np.float64)

    def unit(v):
        return v / np.linalg.norm(v)

    def cos(u, v):
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
    if cosmul:
        pos = (1 + cos(x, b)) / 2 * (1 + cos(x, c)) / 2
        return pos / ((1 + cos(x, a)) / 2 + 1e-6)
    t = unit(unit(b) + unit(c) - unit(a))
    return cos(x, t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attnkvd", default=os.path.join(ROOT, "build/src/server/attnkvd"))
    ap.add_argument("--vectors", default=os.environ.get(
        "AKV_VECTORS", os.path.expanduser("~/.cache/attnkv/glove-6B-100d.akv")))
    ap.add_argument("--questions", default=os.path.join(
        ROOT, "../shared/data/eval/analogy/questions-words.txt"))
    ap.add_argument("--restrict", type=int, default=30000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--port", type=int)
    ap.add_argument("--limit", type=int, help="only the first N questions kept")
    ap.add_argument("--modes", default="3cosadd,3cosmul")
    args = ap.parse_args()

    import redis
    from gensim.models import KeyedVectors

    words, mat = read_akv(args.vectors)
    n = args.restrict
    index = {w: i for i, w in enumerate(words)}
    questions, total = read_questions(args.questions, set(words[:n]))
    if args.limit:
        questions = questions[:args.limit]
    kv = KeyedVectors(mat.shape[1])
    kv.add_vectors(words, mat)
    kv_small = KeyedVectors(mat.shape[1])
    kv_small.add_vectors(words[:n], mat[:n])
    kv.fill_norms()
    kv_small.fill_norms()
    print(f"vectors {args.vectors}: {len(words)} words, dimension {mat.shape[1]}")
    print(f"questions: {len(questions)} of {total} have their four words in the first {n}")

    proc = tmp = None
    port = args.port
    if port is None:
        proc, port, tmp = start_daemon(args.attnkvd, args.vectors)
    try:
        r = redis.Redis(port=port)
        for _ in range(200):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        # Warm both: the daemon's pages and gensim's norms.
        r.execute_command("ANALOGY", "man", "king", "woman", "RESTRICT", n)
        for mode in args.modes.split(","):
            cosmul = mode == "3cosmul"
            batches0 = int(r.info("stats")["query_batches"])
            jobs0 = int(r.info("stats")["query_batched_jobs"])
            got, t_akv = run_attnkv(port, questions, n, cosmul, args.batch, args.conns)
            st = r.info("stats")
            per_batch = (int(st["query_batched_jobs"]) - jobs0) / max(
                1, int(st["query_batches"]) - batches0)
            want, t_gs = run_gensim(kv, kv_small, questions, n, cosmul)
            agree = sum(1 for x, y in zip(got, want) if x == y)
            acc_akv = sum(1 for x, q in zip(got, questions) if x == q[3])
            acc_gs = sum(1 for y, q in zip(want, questions) if y == q[3])
            print(f"\n{mode}: {len(questions)} questions")
            print(f"  agreement  {agree} / {len(questions)}")
            print(f"  accuracy   attnkv {acc_akv / len(questions):.4f}   "
                  f"gensim {acc_gs / len(questions):.4f}")
            print(f"  wall time  attnkv {t_akv:.2f} s ({len(questions) / t_akv:.0f} q/s, "
                  f"{args.conns} connections pipelining {args.batch}; {per_batch:.1f} requests "
                  f"per shared scan)   gensim {t_gs:.2f} s ({len(questions) / t_gs:.0f} q/s)")
            for x, y, q in zip(got, want, questions):
                if x == y:
                    continue
                sx = score64(mat, index, q, x, cosmul) if x else float("nan")
                sy = score64(mat, index, q, y, cosmul) if y else float("nan")
                tie = abs(sx - sy) <= 4 * np.finfo(np.float32).eps * max(abs(sx), abs(sy))
                print(f"  differs: {' '.join(q[:3])}: attnkv {x} ({sx:.9f}), gensim {y} "
                      f"({sy:.9f}){' - a tie within float32 rounding' if tie else ''}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
