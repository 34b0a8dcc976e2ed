#!/usr/bin/env python3
"""history-model: the history recorder and checks of history.py, without a daemon.

Hand-made histories that must pass or fail (stale reads, reads of values
never written or written only by failed writes, indeterminate writes, a
new-old-new inversion only the search finds, deletes), the recorder from
several threads, the final-state check after a failover, the
read-your-writes check, small random
histories against a brute-force checker (every order, every subset of the
indeterminate writes), and a 2,000-operation history from a simulated
linearizable register over 8 clients, timed (a "figures:" line), intact
and with one read corrupted.

Run alone: meson test -C build history-model, or
  python3 tests/integration/test_history_model.py [-k NAME]
(no environment needed).
"""

import heapq
import itertools
import os
import random
import sys
import tempfile
import threading
import time

import akvtest
import history
from history import (FAIL, INFO, OK, History, check_acknowledged_present, check_read_your_writes,
                     check_registers)

SUITE = "history_model"
MS = 1_000_000  # the hand-made histories give times in ms


def hist(*rows):
    """A history from rows (client, kind, key, value, inv_ms, ret_ms,
    status, result); ret_ms None for an open operation."""
    h = History()
    for c, kind, key, value, inv, ret, status, result in rows:
        h.add(c, kind, key, value, invoke_ns=inv * MS,
              complete_ns=None if ret is None else ret * MS, status=status, result=result)
    return h


def W(c, key, v, inv, ret, status=OK):
    return (c, "write", key, v, inv, ret, status, None)


def R(c, key, result, inv, ret, status=OK):
    return (c, "read", key, None, inv, ret, status, result)


def D(c, key, inv, ret, status=OK, count=None):
    return (c, "delete", key, None, inv, ret, status, count)


def expect_ok(h, **kw):
    ok, why = check_registers(h, **kw)
    assert ok, why
    return why


def expect_fail(h, *fragments, **kw):
    ok, why = check_registers(h, **kw)
    assert not ok, "passed: %s" % why
    for f in fragments:
        assert f in why, "%r not in:\n%s" % (f, why)
    return why


# ---------------------------------------------------------------------------
# Hand-made histories.


@akvtest.test(SUITE)
def test_valid_sequential(env):
    h = hist(R(1, "k", None, 0, 1),
             W(1, "k", "a", 2, 3),
             R(2, "k", "a", 4, 5),
             W(2, "k", "b", 6, 7),
             R(1, "k", "b", 8, 9),
             D(1, "k", 10, 11, count=1),
             R(2, "k", None, 12, 13),
             D(2, "k", 14, 15, count=0),
             W(3, "j", "x", 0, 20),
             R(3, "j", "x", 21, 22))
    why = expect_ok(h)
    assert "10 operations on 2 keys" in why, why
    # the same with the key present from the start
    h = hist(R(1, "k", "init", 0, 1), W(1, "k", "a", 2, 3), R(2, "k", "a", 4, 5))
    expect_ok(h, initial="init")
    expect_ok(h, initial={"k": "init"})
    expect_fail(h, "no write wrote", initial={"other": "init"})
    expect_fail(h, "no write wrote")
    assert check_registers(History()) == (True, "empty history")


@akvtest.test(SUITE)
def test_valid_concurrent(env):
    # reads overlapping a write see the old or the new value, in any mix
    # that some order explains: r1 new, then r2 (overlapping r1) old is fine
    # as long as r2 could be placed before the write.
    h = hist(W(1, "k", "a", 0, 1),
             W(2, "k", "b", 10, 30),
             R(3, "k", "b", 12, 14),
             R(4, "k", "a", 11, 20),
             R(5, "k", "b", 25, 40),
             W(6, "k", "c", 26, 27),
             R(7, "k", "b", 26, 28),
             R(8, "k", "c", 29, 31))
    expect_ok(h)
    # two concurrent writes and readers agreeing on one order
    h = hist(W(1, "k", "x", 0, 10), W(2, "k", "y", 0, 10),
             R(3, "k", "x", 1, 2), R(4, "k", "y", 3, 4), R(5, "k", "y", 11, 12))
    expect_ok(h)


@akvtest.test(SUITE)
def test_stale_read(env):
    h = hist(W(1, "k", "a", 0, 1),
             W(2, "k", "b", 2, 3),
             R(3, "k", "a", 4, 5))
    why = expect_fail(h, "key 'k'", "stale read", "read -> 'a'", "write 'b'")
    print(why)
    # the initial value read after an acknowledged write
    h = hist(W(1, "k", "a", 0, 1), R(2, "k", None, 2, 3))
    expect_fail(h, "stale read", "the initial value None")
    # an indeterminate write of the same value keeps it possible
    h = hist(W(1, "k", "a", 0, 1), W(2, "k", "b", 2, 3), W(4, "k", "a", 1, 2, INFO),
             R(3, "k", "a", 4, 5))
    expect_ok(h)
    # a read overlapping the overwrite may still return the old value
    h = hist(W(1, "k", "a", 0, 1), W(2, "k", "b", 2, 4), R(3, "k", "a", 4, 5))
    expect_ok(h)


@akvtest.test(SUITE)
def test_read_of_unwritten_value(env):
    h = hist(W(1, "k", "a", 0, 1), R(2, "k", "zz", 2, 3))
    expect_fail(h, "key 'k'", "no write wrote", "read -> 'zz'")
    # a value written to another key does not count
    h = hist(W(1, "j", "zz", 0, 1), R(2, "k", "zz", 2, 3))
    expect_fail(h, "key 'k'", "no write wrote")
    # nor one written only after the read returned
    h = hist(R(2, "k", "a", 0, 1), W(1, "k", "a", 2, 3))
    expect_fail(h, "began after the read returned")


@akvtest.test(SUITE)
def test_indeterminate_write(env):
    # timed out, then seen: it took effect late
    h = hist(W(1, "k", "a", 0, 1),
             W(2, "k", "b", 2, 50, INFO),
             R(3, "k", "a", 60, 61),
             R(3, "k", "b", 70, 71),
             R(4, "k", "b", 80, 81))
    expect_ok(h)
    # never seen: it may never have happened
    h = hist(W(1, "k", "a", 0, 1), W(2, "k", "b", 2, 50, INFO), R(3, "k", "a", 60, 61))
    expect_ok(h)
    # still open when the history was checked: the same as indeterminate
    h = hist(W(1, "k", "a", 0, 1), W(2, "k", "b", 2, None, None), R(3, "k", "b", 60, 61))
    expect_ok(h)
    # but it cannot take effect before its invocation
    h = hist(W(1, "k", "a", 0, 1), R(3, "k", "b", 2, 3), W(2, "k", "b", 5, 50, INFO))
    expect_fail(h, "began after the read returned")
    # and once seen, and overwritten by an acknowledged write, it is gone
    h = hist(W(2, "k", "b", 0, 50, INFO),
             R(3, "k", "b", 10, 11),
             W(1, "k", "c", 20, 21),
             R(3, "k", "b", 30, 31))
    why = expect_fail(h, "key 'k'", "op 3")
    print(why)
    # indeterminate reads say nothing
    h = hist(W(1, "k", "a", 0, 1), R(2, "k", "garbage", 2, 3, INFO), R(2, "k", None, 4, 5, FAIL))
    expect_ok(h)


@akvtest.test(SUITE)
def test_failed_write_observed(env):
    h = hist(W(1, "k", "a", 0, 1), W(2, "k", "b", 2, 3, FAIL), R(3, "k", "b", 4, 5))
    expect_fail(h, "only failed writes wrote", "write 'b'", "fail")
    # a failed delete did not delete
    h = hist(W(1, "k", "a", 0, 1), D(2, "k", 2, 3, FAIL), R(3, "k", None, 4, 5))
    expect_fail(h, "stale read")


@akvtest.test(SUITE)
def test_new_old_new_inversion(env):
    # Two writes concurrent with everything; reads in sequence see b, a, b:
    # each read alone is fine, so only the search finds it.
    rows = [W(1, "k", "a", 0, 100), W(2, "k", "b", 0, 100),
            R(3, "k", "b", 10, 20), R(4, "k", "a", 30, 40), R(5, "k", "b", 50, 60)]
    why = expect_fail(hist(*rows), "key 'k'", "no linearization", "read -> ",
                      "writes in flight with it", "write 'a'", "write 'b'")
    print(why)
    # an indeterminate write cannot be seen twice around another either
    rows[1] = W(2, "k", "b", 0, 100, INFO)
    expect_fail(hist(*rows), "no linearization")
    # without the middle read (indeterminate: says nothing) it is fine
    rows[3] = R(4, "k", "a", 30, 40, INFO)
    expect_ok(hist(*rows))


@akvtest.test(SUITE)
def test_deletes(env):
    # a delete's count says whether the key existed
    h = hist(W(1, "k", "a", 0, 1), D(2, "k", 2, 3, count=1), D(2, "k", 4, 5, count=0))
    expect_ok(h)
    h = hist(W(1, "k", "a", 0, 1), D(2, "k", 2, 3, count=0))
    expect_fail(h, "no linearization", "delete -> 0")
    # an indeterminate write makes a count of 1 possible
    h = hist(D(2, "k", 2, 3, count=1), W(1, "k", "a", 0, 1, INFO))
    expect_ok(h)
    h = hist(D(2, "k", 0, 1, count=1), W(1, "k", "a", 2, 3, INFO))
    expect_fail(h, "no linearization")


@akvtest.test(SUITE)
def test_keys_independent(env):
    # each key alone is linearizable; reports name only the bad keys
    rows = []
    for i in range(5):
        k = "k%d" % i
        rows += [W(1, k, "v" + k, 10 * i, 10 * i + 1), R(2, k, "v" + k, 10 * i + 2, 10 * i + 3)]
    rows += [W(1, "k1", "late", 60, 61), R(2, "k1", "vk1", 62, 63),
             W(1, "k3", "late", 60, 61), R(2, "k3", "vk3", 62, 63)]
    why = expect_fail(hist(*rows), "key 'k1'", "key 'k3'")
    assert "key 'k0'" not in why and "key 'k2'" not in why, why
    ok, why = check_registers(hist(*rows), max_reports=1)
    assert not ok and "1 more keys fail" in why, why


# ---------------------------------------------------------------------------
# The recorder.


@akvtest.test(SUITE)
def test_recorder_threads(env):
    h = History()
    n_threads, n_ops = 8, 500
    errors = []

    def client(c):
        try:
            for i in range(n_ops):
                op = h.invoke(c, "write", "k%d" % (i % 4), "%d-%d" % (c, i))
                h.ok(op)
                op = h.invoke(c, "read", "k%d" % (i % 4))
                h.ok(op, "%d-%d" % (c, i))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    ops = h.ops()
    assert len(ops) == len(h) == 2 * n_threads * n_ops
    assert [op.id for op in ops] == list(range(len(ops)))
    assert all(op.status == OK and op.invoke_ns <= op.complete_ns for op in ops)
    # each client's operations one after the other, in its own order
    for c in range(n_threads):
        mine = [op for op in ops if op.client == c]
        assert len(mine) == 2 * n_ops
        for a, b in zip(mine, mine[1:]):
            assert a.complete_ns <= b.invoke_ns and a.id < b.id, (a, b)
        assert [op.value for op in mine[::2]] == ["%d-%d" % (c, i) for i in range(n_ops)]
    try:
        h.ok(ops[0])
        raise AssertionError("completed twice")
    except ValueError:
        pass
    for bad in (lambda: h.invoke(1, "cas", "k"), lambda: h.invoke(1, "delete", "k", "v")):
        try:
            bad()
            raise AssertionError("accepted")
        except ValueError:
            pass
    # dump and load give the same verdicts
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "h.jsonl")
        h2 = hist(W(1, "k", "a", 0, 1), W(2, "k", "b", 2, 3, INFO), R(3, "k", "a", 4, 5),
                  R(3, "k", None, 6, None, None))
        h2.dump(path)
        h3 = History.load(path)
        assert [repr(o) for o in h3.ops()] == [repr(o) for o in h2.ops()]
        assert check_registers(h3) == check_registers(h2)


@akvtest.test(SUITE)
def test_recorder_sequential_check(env):
    # real threads and real clocks through a lock-protected register: the
    # recorded history must check, and a wrong result recorded must fail
    h = History()
    lock = threading.Lock()
    reg = {}

    def client(c):
        rng = random.Random(c)
        for i in range(300):
            key = "k%d" % rng.randrange(3)
            if rng.random() < 0.5:
                op = h.invoke(c, "write", key, "%d-%d" % (c, i))
                with lock:
                    reg[key] = op.value
                h.ok(op)
            else:
                op = h.invoke(c, "read", key)
                with lock:
                    v = reg.get(key)
                h.ok(op, v)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(h) == 6 * 300
    expect_ok(h)
    bad = corrupt_stale(h, random.Random(1))
    expect_fail(h, "key %r" % bad.key, "op %d " % bad.id)


# ---------------------------------------------------------------------------
# The final state after a failover.


@akvtest.test(SUITE)
def test_acknowledged_present(env):
    h = hist(W(1, "a", "a1", 0, 1), W(1, "a", "a2", 2, 3),
             W(1, "b", "b1", 0, 1), W(2, "b", "b2", 0, 10),          # concurrent
             W(1, "c", "c1", 0, 1), W(2, "c", "c2", 2, 3, INFO),     # indeterminate later
             W(1, "d", "d1", 0, 1), W(2, "d", "d2", 2, 3, FAIL),     # failed
             W(1, "e", "e1", 0, 50, INFO),                           # only indeterminate
             W(1, "f", "f1", 0, 1), D(2, "f", 2, 3),                 # deleted
             R(3, "g", None, 0, 1))                                  # never written
    good = {"a": "a2", "b": "b1", "c": "c2", "d": "d1", "e": None, "f": None, "g": None}
    ok, why = check_acknowledged_present(h, good)
    assert ok, why
    for key, value in (("b", "b2"), ("c", "c1"), ("e", "e1")):
        ok, why = check_acknowledged_present(h, dict(good, **{key: value}))
        assert ok, why
    for key, value, frag in (("a", "a1", "last acknowledged write: op 1 client 1: write 'a2'"),
                             ("a", None, "expected one of 'a2'"),
                             ("d", "d2", "written by op 7 client 2: write 'd2'"),
                             ("f", "f1", "expected one of None"),
                             ("g", "x", "expected one of None")):
        ok, why = check_acknowledged_present(h, dict(good, **{key: value}))
        assert not ok and ("key %r" % key) in why and frag in why, why
    missing = dict(good)
    del missing["a"]
    ok, why = check_acknowledged_present(h, missing)
    assert not ok and "key 'a': acknowledged writes but no final read" in why, why
    # an indeterminate write invoked before the last acknowledged one may
    # still have been applied after it
    h = hist(W(1, "k", "old", 0, None, INFO), W(2, "k", "new", 5, 6), R(3, "k", "new", 7, 8))
    assert check_acknowledged_present(h, {"k": "old"})[0]
    assert check_acknowledged_present(h, {"k": None}, initial=None)[0] is False


@akvtest.test(SUITE)
def test_read_your_writes(env):
    # another client's newer write not seen yet: allowed here (a follower
    # that applied this client's write but not the other's), though not
    # linearizable
    h = hist(W(1, "k", "a", 0, 1), W(2, "k", "b", 2, 3), R(1, "k", "a", 4, 5))
    ok, why = check_read_your_writes(h)
    assert ok and "1 reads" in why, why
    expect_fail(h, "stale read")
    # its own older write: not allowed
    h = hist(W(1, "k", "a", 0, 1), W(1, "k", "b", 2, 3), R(1, "k", "a", 4, 5),
             W(2, "j", "x", 0, 1), R(2, "j", "x", 2, 3))
    ok, why = check_read_your_writes(h)
    assert not ok and "key 'k': client 1 read older than its own write" in why, why
    assert "its own last write: op 1 client 1: write 'b'" in why, why
    assert "key 'j'" not in why, why
    # another client's write acknowledged before its own began: older too;
    # unless that one was never acknowledged (it may have come late)
    rows = [W(2, "k", "c", 0, 1), W(1, "k", "a", 2, 3), R(1, "k", "c", 4, 5)]
    assert not check_read_your_writes(hist(*rows))[0]
    rows[0] = W(2, "k", "c", 0, 1, INFO)
    assert check_read_your_writes(hist(*rows))[0]
    # a concurrent write is not older
    rows[0] = W(2, "k", "c", 0, 2)
    assert check_read_your_writes(hist(*rows))[0]
    # the key gone after its own write, with no delete: not allowed
    h = hist(W(1, "k", "a", 0, 1), R(1, "k", None, 2, 3))
    ok, why = check_read_your_writes(h)
    assert not ok and "a value no write wrote by then" in why, why
    h = hist(W(1, "k", "a", 0, 1), D(2, "k", 0, 3), R(1, "k", None, 4, 5))
    assert check_read_your_writes(h)[0]
    # reads before its own first write, and failed writes, are not held to it
    h = hist(W(2, "k", "b", 0, 1), R(1, "k", None, 2, 3), W(1, "k", "a", 4, 5, FAIL),
             R(1, "k", "b", 6, 7))
    ok, why = check_read_your_writes(h)
    assert ok and "0 reads" in why, why
    # a simulated linearizable history is read-your-writes too
    h, _ = simulate(2000, 8, ["k0", "k1"], seed=9)
    ok, why = check_read_your_writes(h)
    assert ok, why


# ---------------------------------------------------------------------------
# Against a brute-force checker.


def brute_linearizable(ops, initial=None):
    """Every order of every key's operations that respects real time, with
    every subset of its indeterminate writes: slow, obviously right."""
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for key, kops in by_key.items():
        kops = [o for o in kops if o.status != FAIL and not (o.kind == "read" and o.status != OK)]
        fixed = [o for o in kops if o.status == OK]
        maybe = [o for o in kops if o.status != OK]

        def ret(o):
            return o.complete_ns if o.status == OK else float("inf")

        def dfs(left, state):
            if not left:
                return True
            for x in left:
                if any(ret(y) < x.invoke_ns for y in left if y is not x):
                    continue
                if x.kind == "read":
                    if x.result != state:
                        continue
                    new = state
                elif x.kind == "delete":
                    if x.status == OK and x.result is not None and \
                            bool(x.result) != (state is not None):
                        continue
                    new = None
                else:
                    new = x.value
                if dfs([y for y in left if y is not x], new):
                    return True
            return False

        init = initial.get(key) if isinstance(initial, dict) else initial
        if not any(dfs(fixed + list(sub), init)
                   for r in range(len(maybe) + 1) for sub in itertools.combinations(maybe, r)):
            return False
    return True


def random_small(rng, values):
    h = History()
    for _ in range(rng.randrange(2, 8)):
        kind = rng.choice(["write", "write", "read", "read", "delete"])
        inv = rng.randrange(0, 30)
        ret = inv + rng.randrange(0, 12)
        status = rng.choice([OK, OK, OK, OK, INFO, FAIL])
        value = rng.choice(values) if kind == "write" else None
        result = None
        if kind == "read":
            result = rng.choice(values + [None])
        elif kind == "delete" and status == OK:
            result = rng.choice([None, 0, 1])
        h.add(rng.randrange(4), kind, "k", value, invoke_ns=inv, complete_ns=ret,
              status=status, result=result)
    return h


@akvtest.test(SUITE)
def test_against_brute_force(env):
    rng = random.Random(18)
    counts = {True: 0, False: 0}
    for n in range(1500):
        values = ["a", "b"] if n % 2 else ["a", "b", "c", "d", "e"]
        h = random_small(rng, values)
        initial = rng.choice([None, "a"])
        want = brute_linearizable(h.ops(), initial)
        got, why = check_registers(h, initial=initial)
        # the search alone, without the quick checks, agrees too
        alone = history._check_key("k", h.ops(), initial, 0, 10 ** 6, quick=False) is None
        assert got == want == alone, (
            "brute %s, checker %s, search alone %s, initial %r:\n%s\n%s"
            % (want, got, alone, initial, "\n".join(repr(o) for o in h.ops()), why))
        counts[want] += 1
    print("brute force: %d linearizable, %d not" % (counts[True], counts[False]))
    assert counts[True] > 300 and counts[False] > 300, counts


# ---------------------------------------------------------------------------
# A big history from a simulated linearizable register.


def simulate(n_ops, n_clients, keys, seed, p_read=0.5, p_delete=0.03, p_info=0.03,
             p_fail=0.03):
    """n_ops operations by n_clients sequential clients on a register per
    key that applies each at a random instant inside its interval (an
    indeterminate write: at a random instant after its invocation, maybe
    after the client gave up, or never). Times in ns; values unique."""
    rng = random.Random(seed)
    free = [(rng.randrange(0, 1000), c) for c in range(n_clients)]
    heapq.heapify(free)
    planned = []  # [client, kind, key, value, inv, ret, status, effect_time]
    for i in range(n_ops):
        t, c = heapq.heappop(free)
        dur = rng.randrange(50, 3000)
        x = rng.random()
        kind = "read" if x < p_read else "delete" if x < p_read + p_delete else "write"
        x = rng.random()
        status = INFO if x < p_info else FAIL if x < p_info + p_fail else OK
        if status == OK:
            effect = t + rng.randrange(0, dur + 1)
        elif status == INFO and kind != "read" and rng.random() < 0.6:
            effect = t + rng.randrange(0, 4 * dur)
        else:
            effect = None
        value = "%d-%d" % (c, i) if kind == "write" else None
        planned.append([c, kind, rng.choice(keys), value, t, t + dur, status, effect])
        heapq.heappush(free, (t + dur + rng.randrange(0, 200), c))
    reg = {}
    results = {}
    for idx in sorted((i for i, p in enumerate(planned) if p[7] is not None),
                      key=lambda i: planned[i][7]):
        c, kind, key, value = planned[idx][:4]
        if kind == "read":
            results[idx] = reg.get(key)
        else:
            reg[key] = value
    h = History()
    for idx, (c, kind, key, value, inv, ret, status, effect) in enumerate(planned):
        h.add(c, kind, key, value, invoke_ns=inv * 1000, complete_ns=ret * 1000, status=status,
              result=results.get(idx))
    return h, reg


def corrupt_stale(h, rng):
    """Makes one acknowledged read in the middle return a value an
    acknowledged write certainly overwrote before the read began. Returns
    the read."""
    ops = h.ops()
    writes = [o for o in ops if o.kind == "write" and o.status == OK]
    reads = [o for o in ops if o.kind == "read" and o.status == OK]
    middle = reads[len(reads) // 3: 2 * len(reads) // 3]
    rng.shuffle(middle)
    for r in middle:
        for w in writes:
            if w.key != r.key or w.value == r.result:
                continue
            if any(w2.key == r.key and w2.invoke_ns > w.complete_ns and
                   w2.complete_ns < r.invoke_ns for w2 in writes):
                r.result = w.value
                return r
    raise AssertionError("no read to corrupt")


@akvtest.test(SUITE)
def test_simulated_2000(env):
    rng = random.Random(7)
    figures = []
    for keys, label in ((["k"], "1 key"), (["k%d" % i for i in range(4)], "4 keys")):
        h, final = simulate(2000, 8, keys, seed=len(keys))
        ops = h.ops()
        assert sum(o.status == INFO for o in ops) > 20 and sum(o.status == FAIL for o in ops) > 20
        t0 = time.monotonic()
        why = expect_ok(h)
        took = time.monotonic() - t0
        figures.append("%s %.2fs" % (label, took))
        assert took < 20, took
        ok, why = check_acknowledged_present(h, final)
        assert ok, why

        bad = corrupt_stale(h, rng)
        t0 = time.monotonic()
        why = expect_fail(h, "key %r" % bad.key, "op %d " % bad.id)
        figures.append("%s corrupted %.2fs" % (label, time.monotonic() - t0))
        # the search alone finds it too
        t0 = time.monotonic()
        kops = [o for o in h.ops() if o.key == bad.key]
        why = history._check_key(bad.key, kops, None, 0, 2_000_000, quick=False)
        figures.append("%s corrupted, search alone %.2fs" % (label, time.monotonic() - t0))
        assert why and "no linearization" in why and "op %d " % bad.id in why, why
        if label == "1 key":
            print(why)
    print("figures: check of 2000 ops, 8 clients: " + ", ".join(figures))


@akvtest.test(SUITE)
def test_simulated_repeated_values(env):
    # 16 clients writing only five distinct values: the search has real
    # choices to make, and must still find an order
    figures = []
    for seed in (1, 2):
        h, final = simulate(2000, 16, ["k"], seed=seed, p_info=0.05)
        names = {}
        for o in h.ops():
            if o.kind == "write":
                names[o.value] = o.value = "v%d" % (o.id % 5)
        for o in h.ops():
            if o.kind == "read" and o.result is not None:
                o.result = names[o.result]
        t0 = time.monotonic()
        expect_ok(h)
        figures.append("%.2fs" % (time.monotonic() - t0))
        # a search cut short says so, and fails
        expect_fail(h, "key 'k': inconclusive: the search gave up after 50 states",
                    max_states=50)
        assert check_acknowledged_present(h, {"k": names.get(final["k"])})[0]
        # a read of a value no write wrote still fails at once
        r = next(o for o in h.ops()[1000:] if o.kind == "read" and o.status == OK)
        r.result = "v9"
        expect_fail(h, "op %d " % r.id, "no write wrote")
    print("figures: check of 2000 ops, 16 clients, 5 values: " + ", ".join(figures))


@akvtest.test(SUITE)
def test_simulated_lost_write(env):
    # the final state of a simulated run with the last acknowledged write of
    # one key replaced by an older value
    h, final = simulate(600, 8, ["k%d" % i for i in range(6)], seed=3, p_info=0, p_fail=0)
    ok, why = check_acknowledged_present(h, final)
    assert ok, why
    ops = h.ops()
    for key in sorted(final):
        writes = [o for o in ops if o.key == key and o.kind == "write"]
        if len(writes) > 5:
            break
    final[key] = writes[0].value
    ok, why = check_acknowledged_present(h, final)
    assert not ok and ("key %r: final value %r" % (key, writes[0].value)) in why, why
    print(why)
    # and, as a final read appended to the history, the register check agrees
    end = max(o.complete_ns for o in ops)
    h.add("final", "read", key, invoke_ns=end + 1, complete_ns=end + 2, status=OK,
          result=final[key])
    expect_fail(h, "key %r" % key, "stale read")


class NoDaemon:
    def __init__(self, workdir):
        self.workdir = workdir


if __name__ == "__main__":
    sys.exit(akvtest.main(SUITE, make_env=NoDaemon, needs_daemon=False))
