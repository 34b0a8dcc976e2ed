#!/usr/bin/env python3
"""daemon-concurrency: attnkvd under concurrent clients.

50 client threads mixing SET/DEL/QUERY/EXPLAIN/KEYS with every reply
checked, batched replies compared with the same requests alone, clients
vanishing mid-QUERY, a client that does not read. Also run under TSan
(scripts/test).

Run alone: meson test -C build daemon-concurrency, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_concurrency.py [-k NAME]
(environment: see akvtest.py).
"""

import random
import re
import sys
import threading
import time
import traceback

import akvtest
from akvtest import Client, Daemon, parse_info


@akvtest.test("concurrency")
def test_50_clients(env):
    vocab = set(env.words)
    nthreads, rounds = 50, 12
    errors = []
    barrier = threading.Barrier(nthreads)

    def worker(t):
        try:
            rnd = random.Random(t)
            c = env.daemon.client()
            barrier.wait(timeout=60)
            for i in range(rounds):
                key = "w%04d w%04d" % (t, 100 + i)
                val = rnd.choice(env.words[5:])
                assert c.cmd("SET", key, val) == "OK"
                assert c.cmd("GET", key) == val
                # This client's write was acknowledged: its query must see it.
                got = c.cmd("EXPLAIN", key, "COUNT", 1000)
                assert isinstance(got, list) and key in [g[0] for g in got], (key, got[:3])
                for g in got:
                    assert len(g) == 3 and 0.0 <= float(g[2]) <= 1.0
                r = c.cmd("QUERY", rnd.choice(env.words[5:]), "WITHSCORES")
                assert isinstance(r, list) and len(r) == 10, r
                assert all(w in vocab for w in r[0::2]), r
                # Pipelined: a slow command between two fast ones.
                c.send(Client.encode("PING") + Client.encode("QUERY", "cat", "COUNT", 3) +
                       Client.encode("ECHO", str(i)))
                assert c.read() == "PONG"
                q = c.read()
                assert isinstance(q, list) and len(q) == 3, q
                assert c.read() == str(i)
                # KEYS reads a snapshot on a worker while others write.
                mine = c.cmd("KEYS", "w%04d *" % t)
                assert key in mine and all(k.startswith("w%04d " % t) for k in mine), mine
                if i % 3 == 0:
                    assert c.cmd("DEL", key) == 1
                    assert c.cmd("EXISTS", key) == 0
            assert c.cmd("QUIT") == "OK"
            c.close()
        except Exception:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
        assert not th.is_alive(), "client thread hung"
    assert not errors, errors[0]
    c = env.daemon.client()
    # Two thirds of the keys (i % 3 != 0) remain.
    assert c.cmd("DBSIZE") == nthreads * (rounds - (rounds + 2) // 3)
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("concurrency")
def test_batched_replies_match_alone(env):
    """Queries that wait for the worker together are ranked as one batch (one
    pass over the vocabulary), QUERY, EXPLAIN and NEIGHBORS mixed; each reply
    must be byte for byte the one the same request gets alone, and INFO must
    count every job in a batch."""
    d = Daemon(env.workdir, env.big_vectors(), ("--workers", "1"), name="batch")
    try:
        c = d.client()
        for i in range(50):
            assert c.cmd("SET", "w%06d" % i, "w%06d" % (i + 1000)) == "OK"
        cmds = []
        for i in range(30):
            w = "w%06d" % (100 + i)
            cmds.append([("QUERY", w, "COUNT", 7, "WITHSCORES"),
                         ("EXPLAIN", w, "COUNT", 4),
                         ("NEIGHBORS", w, "COUNT", 6, "WITHSCORES", "METRIC", "cosine")][i % 3])
        alone = [c.cmd(*cmd) for cmd in cmds]
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        clients = [d.client() for _ in cmds]
        rounds = 5
        for _ in range(rounds):
            # Every request is sent before any reply is read, so they pile up
            # behind the single worker while it ranks the first.
            for x, cmd in zip(clients, cmds):
                x.send(Client.encode(*cmd))
            for x, cmd, want in zip(clients, cmds, alone):
                got = x.read()
                assert got == want, (cmd, got, want)
        info = c.cmd("INFO", "stats")
        f = parse_info(info)
        batches, jobs, biggest = (int(f[k]) for k in
                                  ("query_batches", "query_batched_jobs", "query_batch_max"))
        assert jobs == rounds * len(cmds), info
        assert 1 <= batches <= jobs and 1 <= biggest <= 32, info
        # 150 jobs sent 30 at a time to one worker: some must have waited
        # together (the chance that none did is nil unless batching is off).
        assert batches < jobs and biggest >= 2, info
        for x in clients:
            x.close()
        c.close()
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()


@akvtest.test("concurrency")
def test_same_content_same_replies(env):
    """Answers depend on the store's content only, not on its history: the
    same 6,000 entries, reached after other keys were set and deleted, a
    third of the entries deleted and set back in another order, and queries
    running all the while (batches, both workers), give QUERY, EXPLAIN and
    FGET replies equal byte for byte to those before; so does a second
    daemon filled in the reverse order."""
    rnd = random.Random(17)
    entries = []
    seen = set()
    while len(entries) < 6000:
        k = " ".join("w%06d" % rnd.randrange(60000) for _ in range(rnd.randint(1, 3)))
        if k in seen:
            continue
        seen.add(k)
        v = " ".join("w%06d" % rnd.randrange(60000) for _ in range(rnd.randint(1, 2)))
        entries.append((k, v, len(entries) % 13 == 5))
    reqs = []
    for i in range(120):
        w = "w%06d" % rnd.randrange(60000)
        reqs.append([("QUERY", w, "COUNT", 8, "WITHSCORES"),
                     ("EXPLAIN", w, "COUNT", 6, "ATTENTION", "cosine", "TEMPERATURE", "0.05"),
                     ("FGET", w, "COUNT", 5, "WITHSCORES"),
                     ("EXPLAIN", w, "COUNT", 6)][i % 4])

    def fill(c, order):
        for i in order:
            k, v, payload = entries[i]
            args = ("SET", k, v) + (("PAYLOAD",) if payload else ())
            assert c.cmd(*args) == "OK"

    def answers(c):
        return [c.cmd(*r) for r in reqs]

    d = Daemon(env.workdir, env.big_vectors(), ("--workers", "2"), name="samebits")
    d2 = Daemon(env.workdir, env.big_vectors(), ("--workers", "2"), name="samebits2")
    try:
        c = d.client()
        fill(c, range(len(entries)))
        before = answers(c)
        assert all(isinstance(a, list) and a for a in before), before[:4]

        stop = threading.Event()
        errors = []

        def querier(t):
            try:
                q = d.client()
                while not stop.is_set():
                    for r in reqs[t::4]:
                        assert isinstance(q.cmd(*r), list)
                q.close()
            except Exception:
                errors.append(traceback.format_exc())

        threads = [threading.Thread(target=querier, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        w = d.client()
        tmp = ["w%06d w%06d w%06d" % (i, i, i) for i in range(3000)]
        assert not seen.intersection(tmp)
        for i, k in enumerate(tmp):
            assert w.cmd("SET", k, "w%06d" % (i + 7)) == "OK"
        third = list(range(0, len(entries), 3))
        for i in third:
            assert w.cmd("DEL", entries[i][0]) == 1
        rnd.shuffle(third)
        fill(w, third)
        for k in tmp:
            assert w.cmd("DEL", k) == 1
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors[0]
        after = answers(c)
        for r, a, b in zip(reqs, before, after):
            assert a == b, (r, a, b)

        c2 = d2.client()
        fill(c2, reversed(range(len(entries))))
        other = answers(c2)
        for r, a, b in zip(reqs, before, other):
            assert a == b, (r, a, b)
        for x in (c, c2, w):
            x.close()
        assert d.stop() == 0
        assert d2.stop() == 0
    finally:
        for x in (d, d2):
            if x.proc.poll() is None:
                x.proc.kill()


@akvtest.test("concurrency")
def test_disconnect_mid_query(env):
    c = env.daemon.client()
    for k, v in (("cat", "animal"), ("one", "number"), ("ball", "toy")):
        c.cmd("SET", k, v)
    for i in range(100):
        x = env.daemon.client()
        x.send(b"".join(Client.encode("QUERY", "dog", "COUNT", 1000) for _ in range(20)))
        if i % 2:
            x.reset()  # RST: the daemon sees a read error
        else:
            x.close()  # FIN: a half-close; the replies then meet a closed socket
    assert c.cmd("PING") == "PONG"
    deadline = time.monotonic() + 60
    while True:
        info = c.cmd("INFO")
        jobs = int(re.search(r"jobs_in_flight:(\d+)", info).group(1))
        clients = int(re.search(r"connected_clients:(\d+)", info).group(1))
        if jobs == 0 and clients == 1:
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.05)
    assert len(c.cmd("QUERY", "dog")) == 5
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("concurrency")
def test_slow_reader(env):
    """A client that does not read its replies is throttled (the daemon stops
    taking its requests once its output backs up), and others are served
    meanwhile; its replies then all arrive, in order."""
    c = env.daemon.client()
    c.cmd("SET", "cat", "animal")
    slow = env.daemon.client()
    # About 20 MB of replies: more than the socket buffers hold, so the
    # daemon's output backs up past its pause threshold.
    n = 600
    slow.send(b"".join(Client.encode("QUERY", "w%04d" % i, "COUNT", 1000, "WITHSCORES")
                       for i in range(n)))
    time.sleep(0.5)
    assert c.cmd("PING") == "PONG"
    assert len(c.cmd("QUERY", "cat")) == 5
    for i in range(n):
        r = slow.read()
        assert isinstance(r, list) and len(r) == 2000, r
    assert slow.cmd("PING") == "PONG"
    slow.close()
    c.cmd("FLUSHALL")
    c.close()


if __name__ == "__main__":
    sys.exit(akvtest.main("concurrency"))
