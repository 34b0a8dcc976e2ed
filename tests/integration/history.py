"""Operation histories and their linearizability check: imported, not run.

Purpose: the fault tests of the cluster (kill -9, SIGSTOP, partitions)
record every operation their clients send, with its invocation time, its
completion time and its outcome, in a History; afterwards
check_registers() decides whether the whole history could have come from
one key/value store that applies each operation atomically at some instant
between its invocation and its completion (linearizability, checked per
key against a register), and check_acknowledged_present() whether a final
read of every key (after a failover, on every node) still shows every
acknowledged write. Python 3 standard library only; no daemon needed.

Outcomes. ok: the operation happened (a read's result is the value it
returned, None for a missing key). fail: it definitely did not happen
(refused before it was proposed, -TRYAGAIN no leader yet). info: unknown
(a timeout, a lost connection): an indeterminate write may take effect at
any instant after its invocation, or never; an indeterminate read says
nothing and is ignored. An operation never completed counts as info.

Values. Written values must be hashable and comparable with == (str, bytes,
int); a delete writes None, the value a read of a missing key returns. The
checker is fast when every write on a key writes a value of its own (the
tests make them unique: client, sequence number): then a read names the
one write it saw, and the search below rarely has to go back. With repeated
values it gives the same answers, only its search may take longer: on a
failing history, up to its bound (max_states), after which the key is
reported as inconclusive, and fails. A delete's count (DEL's reply), when
recorded, is checked against the register too.

Design (check_registers). Linearizability is local: a history is
linearizable iff each key's sub-history is, so keys are checked one by one.
Per key:
  1. quick checks that name the culprit directly, each one a proof of a
     violation: a read of a value no write (ok or indeterminate) wrote; a
     read of a value whose every writer began after the read returned; a
     stale read, where every writer of the value was followed, in real
     time, by an acknowledged write that completed before the read began.
  2. indeterminate writes whose value no read returned are dropped (placing
     them never helps and never matters: with no read between them and the
     next write, taking them out of any linearization leaves it valid),
     unless a delete's count is checked on the key (it observes existence).
  3. the Wing & Gong search with Lowe's memoisation (as in Porcupine): the
     invocations and completions in time order in a linked list; repeatedly
     place ("linearize") an operation whose invocation comes before the
     first completion still in the list, if the register allows it, and
     take both its events out; when the first event is the completion of
     an operation not yet placed, go back. A state is (set of placed
     operations as a bitmask, register value); a state seen before is not
     explored again. Indeterminate writes have no completion event, so they
     may be placed late or never. Two rules cut the search down. The read
     rule: a candidate read that returned what the register holds is
     placed at once and nothing else is tried at that point (moving a read
     earlier, to where the register already holds its value, never breaks
     a linearization). The pruning rule: a write may not overwrite a value
     that reads still to be placed returned while no other write of that
     value remains (those reads could never be placed). With unique values
     the two leave next to no choice; with repeated values the search may
     have to try many orders of concurrent writes.
  When the search fails, a bisection over the completion times finds the
  first operation whose completion makes the history fail (a history cut
  at a time, open writes taken as indeterminate and open reads left out,
  is linearizable if the whole is): the explanation names it and the
  writes around it. If that runs out of states, the explanation names the
  operation the search could not place at the furthest point it reached
  and what the register could hold there.

Use in a test, one thread per client, values unique per write:

    h = history.History()
    op = h.invoke(cid, "write", key, "%d-%d" % (cid, seq))
    try:
        reply = conn.cmd("SET", key, op.value)
    except (socket.timeout, OSError, akvtest.Closed):
        h.info(op)          # unknown; and open a new connection: a late
        conn = reconnect()  # reply on the old one would answer the next op
    else:
        if reply == "OK": h.ok(op)
        elif refused_before_proposing(reply): h.fail(op)   # -TRYAGAIN ...
        else: h.info(op)
    ...
    ok, why = history.check_registers(h)
    assert ok, why           # and h.dump(path) to keep the evidence

check_registers() holds reads to linearizability: give it the reads made
in the linearizable mode (a leader that answers without confirming its
leadership may be a deposed one). Reads that promise only
read-your-writes (a follower's default) can be older than another
client's acknowledged write; check_read_your_writes() is their check.

Ownership: History owns its Op records; invoke() hands out the Op, which
stays valid (and is the same object check_registers() reports on).

Threading: History.invoke/ok/fail/info may be called from any thread (one
lock orders them); the checks run on one thread, on a history no thread is
still recording into (they read a snapshot taken under the lock).
"""

import bisect
import json
import threading
import time

OK = "ok"
FAIL = "fail"
INFO = "info"
KINDS = ("write", "read", "delete")

_INF = float("inf")
_NEG_INF = float("-inf")


class Op:
    """One operation: who sent it (client), what (kind, key, value), when
    (invoke_ns, complete_ns: time.monotonic_ns(), or any common clock; None
    while open), how it ended (status: OK, FAIL, INFO or None while open)
    and what it returned (result: a read's value)."""

    __slots__ = ("id", "client", "kind", "key", "value", "invoke_ns", "complete_ns", "status",
                 "result")

    def __init__(self, id, client, kind, key, value, invoke_ns):
        self.id = id
        self.client = client
        self.kind = kind
        self.key = key
        self.value = value
        self.invoke_ns = invoke_ns
        self.complete_ns = None
        self.status = None
        self.result = None

    def describe(self, t0=0):
        """One line for a report: times in ms after t0."""
        def ms(t):
            return "?" if t is None else "%.3f" % ((t - t0) / 1e6)

        if self.kind == "write":
            what = "write %r" % (self.value,)
        elif self.kind == "delete":
            what = "delete" + ("" if self.result is None else " -> %r" % (self.result,))
        else:
            what = "read -> %r" % (self.result,) if self.status == OK else "read"
        status = self.status or "open"
        end = ms(self.complete_ns) if self.status != INFO else ms(self.complete_ns) + "?"
        return "op %d client %s: %s [%s .. %s ms] %s" % (self.id, self.client, what,
                                                        ms(self.invoke_ns), end, status)

    def __repr__(self):
        return "<%s key %r>" % (self.describe(), self.key)


class History:
    """A thread-safe record of operations.

        op = h.invoke(client_id, "write", key, value)   # before sending
        h.ok(op) / h.fail(op) / h.info(op)               # after the reply
        op = h.invoke(client_id, "read", key)
        h.ok(op, value_or_None)

    Each op is completed once; completing it again raises ValueError."""

    def __init__(self, clock=time.monotonic_ns):
        self._lock = threading.Lock()
        self._ops = []
        self._clock = clock

    def invoke(self, client_id, kind, key, value=None):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s, not %r" % (KINDS, kind))
        if kind == "delete" and value is not None:
            raise ValueError("a delete writes no value")
        with self._lock:
            op = Op(len(self._ops), client_id, kind, key, value, self._clock())
            self._ops.append(op)
        return op

    def _complete(self, op, status, result):
        with self._lock:
            if op.status is not None:
                raise ValueError("%r completed twice" % (op,))
            op.complete_ns = self._clock()
            op.status = status
            op.result = result

    def ok(self, op, result=None):
        """The operation happened; result: a read's value (None: no key), a
        delete's count (0 or 1, or None if not known)."""
        self._complete(op, OK, result)

    def fail(self, op):
        """The operation definitely did not happen."""
        self._complete(op, FAIL, None)

    def info(self, op):
        """Whether the operation happened is unknown (timeout, lost
        connection)."""
        self._complete(op, INFO, None)

    def add(self, client_id, kind, key, value=None, *, invoke_ns, complete_ns=None,
            status=None, result=None):
        """Records a finished (or open) operation with given times: for
        hand-made histories and histories read back from a file."""
        if kind not in KINDS:
            raise ValueError("kind must be one of %s, not %r" % (KINDS, kind))
        if status not in (OK, FAIL, INFO, None):
            raise ValueError("bad status %r" % (status,))
        if complete_ns is not None and complete_ns < invoke_ns:
            raise ValueError("completion before invocation")
        with self._lock:
            op = Op(len(self._ops), client_id, kind, key, value, invoke_ns)
            op.complete_ns, op.status, op.result = complete_ns, status, result
            self._ops.append(op)
        return op

    def ops(self):
        """A snapshot: the list of operations in invocation order."""
        with self._lock:
            return list(self._ops)

    def __len__(self):
        with self._lock:
            return len(self._ops)

    def dump(self, path):
        """Writes the history as JSON lines (values must be JSON values), for
        a failed test to leave behind; load() reads it back."""
        with open(path, "w") as f:
            for op in self.ops():
                f.write(json.dumps([op.client, op.kind, op.key, op.value, op.invoke_ns,
                                    op.complete_ns, op.status, op.result]) + "\n")

    @classmethod
    def load(cls, path):
        h = cls()
        with open(path) as f:
            for line in f:
                c, kind, key, value, inv, comp, status, result = json.loads(line)
                h.add(c, kind, key, value, invoke_ns=inv, complete_ns=comp, status=status,
                      result=result)
        return h


def _ops_of(history):
    return history.ops() if isinstance(history, History) else list(history)


def _initial_of(initial, key):
    return initial.get(key) if isinstance(initial, dict) else initial


class _KeyOp:
    """An op as the checker sees it: [inv, ret] with ret = inf for an
    indeterminate write."""

    __slots__ = ("op", "inv", "ret", "write", "value")

    def __init__(self, op, inv, ret):
        self.op = op
        self.inv = inv
        self.ret = ret
        self.write = op is None or op.kind != "read"
        # what a write leaves in the register, what a read returned
        self.value = None if op is None else (op.result if op.kind == "read" else op.value)


def _split_by_key(ops):
    by_key = {}
    for op in ops:
        if op.kind not in KINDS:
            raise ValueError("unknown kind in %r" % (op,))
        by_key.setdefault(op.key, []).append(op)
    return by_key


class _Reporter:
    def __init__(self, key, kops, failed, t0):
        self.key = key
        self.kops = kops
        self.failed = failed
        self.t0 = t0

    def line(self, k):
        if k.op is None:
            return "the initial value %r" % (k.value,)
        return k.op.describe(self.t0)

    def around(self, target, extra=()):
        """The writes an investigator wants next to target: the last three
        acknowledged writes that completed before it began, every write
        in flight while it was (indeterminate ones: until their client gave
        up on them), the number of older indeterminate writes (any of them
        may still have taken effect), and extra (the writers of a read's
        value)."""
        before = sorted((k for k in self.kops if k.write and k.op is not None
                         and k.op.status == OK and k.ret < target.inv), key=lambda k: k.ret)[-3:]
        conc = []
        older = 0
        for k in self.kops:
            if not k.write or k is target or k.op is None or k.inv > target.ret:
                continue
            if k.ret >= target.inv and (k.ret != _INF or k.op.complete_ns is None
                                        or k.op.complete_ns >= target.inv):
                conc.append(k)
            elif k.ret == _INF:
                older += 1
        out = []
        for title, group in (("acknowledged writes just before it", before),
                             ("writes in flight with it", conc),
                             ("writes of the value it returned", list(extra))):
            lines = ["    " + self.line(k) for k in group]
            out.append("  %s:%s" % (title, ("\n" + "\n".join(lines)) if lines else " none"))
        if older:
            out.insert(2, "  older indeterminate writes (any may still take effect): %d" % older)
        return "\n".join(out)

    def fail(self, why, target, extra=()):
        return "key %r: %s\n  the operation: %s\n%s" % (self.key, why, self.line(target),
                                                       self.around(target, extra))


def _quick_checks(rep, kops, reads, init):
    """Step 1 of the design: a sure violation with its culprit, or None."""
    start = _KeyOp(None, _NEG_INF, _NEG_INF)
    start.value = init
    writers = {init: [start]}
    for k in kops:
        if k.write:
            writers.setdefault(k.value, []).append(k)
    acked = sorted((k for k in kops if k.write and k.op is not None and k.op.status == OK),
                   key=lambda k: k.inv)
    invs = [k.inv for k in acked]
    # sufmin[i]: the acknowledged write that completed first among acked[i:]
    sufmin = [None] * (len(acked) + 1)
    for i in range(len(acked) - 1, -1, -1):
        nxt = sufmin[i + 1]
        sufmin[i] = acked[i] if nxt is None or acked[i].ret <= nxt.ret else nxt
    for r in reads:
        ws = writers.get(r.value, [])
        if not ws:
            failed = [f for f in rep.failed if f.kind != "read" and f.value == r.value]
            why = "read a value that no write wrote"
            if failed:
                why = "read a value that only failed writes wrote (%s)" % "; ".join(
                    f.describe(rep.t0) for f in failed[:3])
            return rep.fail(why, r)
        if all(w.inv > r.ret for w in ws):
            return rep.fail("read a value whose writes all began after the read returned", r,
                            ws[:3])
        covering = []
        for w in ws:
            i = bisect.bisect_right(invs, w.ret)
            s = sufmin[i]
            if s is None or s.ret >= r.inv:
                break
            covering.append((w, s))
        else:
            w, s = covering[-1]
            return rep.fail("stale read: the write of its value (%s) was followed by "
                            "acknowledged %s, completed before the read began"
                            % (rep.line(w), rep.line(s)), r, ws[:3])
    return None


def _search(kops, init, max_states):
    """Step 3 of the design. Returns (None, states explored) when a
    linearization exists,
    else (blocked, (states, placed, waiting, explored)): the operation the
    furthest attempt could not place, the register values it found there,
    how many operations with a completion it had placed, the reads not
    placed there that returned one of those values, and the number of
    states explored; blocked is "limit" when max_states ran out."""
    n = len(kops)
    # value ids: the register holds small ints
    vid = {}

    def val(v):
        if v not in vid:
            vid[v] = len(vid)
        return vid[v]

    init_v = val(init)
    kind = [0] * n  # 0 write, 1 read, 2 delete whose count is checked
    arg = [0] * n
    finite = 0
    reads_left = {}
    writers_left = {}
    for i, k in enumerate(kops):
        arg[i] = val(k.value)
        if not k.write:
            kind[i] = 1
            reads_left[arg[i]] = reads_left.get(arg[i], 0) + 1
        else:
            if k.op.kind == "delete" and k.op.result is not None and k.ret != _INF:
                kind[i] = 2
            writers_left[arg[i]] = writers_left.get(arg[i], 0) + 1
        if k.ret != _INF:
            finite += 1
    none_v = val(None)
    # events, calls before completions at equal times (the generous reading)
    ev = []
    for i, k in enumerate(kops):
        ev.append((k.inv, 0, i))
        if k.ret != _INF:
            ev.append((k.ret, 1, i))
    ev.sort()
    m = len(ev)
    # the linked list: node 0 is the head; nodes 1..m the events; -1 the end
    nxt = list(range(1, m + 1)) + [-1]
    nxt[m] = -1
    prv = [-1] + list(range(0, m))
    node_op = [0] + [e[2] for e in ev]
    node_call = [False] + [e[1] == 0 for e in ev]
    ret_node = [-1] * n
    for j, e in enumerate(ev, 1):
        if e[1] == 1:
            ret_node[e[2]] = j

    cache = set()
    stack = []  # (call node, state before it, placed by the read rule)
    bits = 0
    state = init_v
    placed_finite = 0
    best = -1
    best_op = None
    best_states = set()
    best_bits = 0

    def lift(c, r):
        nxt[prv[c]] = nxt[c]
        if nxt[c] != -1:
            prv[nxt[c]] = prv[c]
        if r != -1:
            nxt[prv[r]] = nxt[r]
            if nxt[r] != -1:
                prv[nxt[r]] = prv[r]

    def unlift(c, r):
        if r != -1:
            nxt[prv[r]] = r
            if nxt[r] != -1:
                prv[nxt[r]] = r
        nxt[prv[c]] = c
        if nxt[c] != -1:
            prv[nxt[c]] = c

    fresh = True  # just placed something: scan the candidates from the start
    entry = nxt[0]
    while True:
        if placed_finite == finite:
            return None, len(cache)
        pick = -1
        if fresh:
            # The read rule: a candidate read that returned what the register
            # holds is placed at once, and nothing else is tried here (moving
            # a read earlier, to where the register already holds its
            # value, never breaks a linearization).
            e = nxt[0]
            while e != -1 and node_call[e]:
                j = node_op[e]
                if kind[j] == 1 and arg[j] == state:
                    pick = e
                    break
                e = nxt[e]
            fresh = False
            entry = nxt[0]
        if pick == -1:
            if entry == -1:  # only indeterminate writes ahead: impossible while finite left
                raise AssertionError("search ran off the list")
            i = node_op[entry]
            if not node_call[entry]:
                # the completion of an operation not placed: go back
                if placed_finite > best:
                    best, best_op, best_states, best_bits = placed_finite, i, {state}, bits
                elif placed_finite == best:
                    best_states.add(state)
                pick = -2
            else:
                kd = kind[i]
                a = arg[i]
                okay = True
                if kd == 1:
                    okay = state == a
                    new = state
                else:
                    if kd == 2 and (state != none_v) != bool(kops[i].op.result):
                        okay = False
                    new = none_v if kd == 2 else a
                    # the pruning rule: no overwriting a value still to be read
                    if okay and new != state and reads_left.get(state, 0) and \
                            not writers_left.get(state, 0):
                        okay = False
                if okay and (bits | (1 << i), new) not in cache:
                    pick = entry
                    forced = False
                else:
                    entry = nxt[entry]
                    continue
        else:
            i = node_op[pick]
            new = state
            forced = True
            if (bits | (1 << i), new) in cache:
                pick = -2
        if pick >= 0:
            bits |= 1 << i
            cache.add((bits, new))
            if len(cache) > max_states:
                return "limit", None
            stack.append((pick, state, forced))
            if kind[i] == 1:
                reads_left[arg[i]] -= 1
            else:
                writers_left[arg[i]] -= 1
            state = new
            if kops[i].ret != _INF:
                placed_finite += 1
            lift(pick, ret_node[i])
            fresh = True
            continue
        # back to the last choice that has an alternative
        while True:
            if not stack:
                names = {v: k for k, v in vid.items()}
                # the reads still to be placed that returned what the
                # register held: what kept a blocked write out (the rule)
                waiting = [j for j in range(n) if kind[j] == 1 and arg[j] in best_states
                           and not best_bits >> j & 1]
                return best_op, ([names[s] for s in best_states], best, waiting, len(cache))
            entry, state, forced = stack.pop()
            i = node_op[entry]
            bits &= ~(1 << i)
            if kind[i] == 1:
                reads_left[arg[i]] += 1
            else:
                writers_left[arg[i]] += 1
            if kops[i].ret != _INF:
                placed_finite -= 1
            unlift(entry, ret_node[i])
            if not forced:
                entry = nxt[entry]
                break


def _culprit(kops, init, max_states):
    """The first operation whose completion makes the history fail: the
    history cut at a time T (the operations invoked by T; writes still open
    taken as indeterminate, reads still open left out) is linearizable for
    every T before a point and for none after it (a cut of a linearizable
    history is linearizable), so a bisection over the completion times
    finds that point. Returns (the operation completing there, how many
    operations the cut holds), or None if a search ran out of states."""
    times = sorted({k.ret for k in kops if k.ret != _INF})

    def cut(t):
        out = []
        for k in kops:
            if k.inv > t:
                continue
            if k.ret <= t:
                out.append(k)
            elif k.write:
                out.append(_KeyOp(k.op, k.inv, _INF))
        return out

    lo, hi = 0, len(times) - 1  # the cut at times[hi] fails (the whole history)
    budget = max_states  # for all the searches together
    while lo < hi:
        mid = (lo + hi) // 2
        blocked, found = _search(cut(times[mid]), init, budget)
        if blocked == "limit":
            return None
        if blocked is None:
            lo = mid + 1
            budget -= found
        else:
            hi = mid
            budget -= found[3]
    t = times[lo]
    done = [k for k in kops if k.ret == t]
    reads = [k for k in done if not k.write]
    return (reads or done)[0], len(cut(t))


def _check_key(key, ops, init, t0, max_states, quick=True):
    kops = []
    failed = []
    reads = []
    checked_deletes = False
    for op in ops:
        if op.status == FAIL:
            failed.append(op)
            continue
        if op.kind == "read":
            if op.status != OK:
                continue
            k = _KeyOp(op, op.invoke_ns, op.complete_ns)
            reads.append(k)
        else:
            done = op.status == OK
            k = _KeyOp(op, op.invoke_ns, op.complete_ns if done else _INF)
            if op.kind == "delete" and done and op.result is not None:
                checked_deletes = True
        kops.append(k)
    rep = _Reporter(key, kops, failed, t0)
    if quick:
        why = _quick_checks(rep, kops, reads, init)
        if why:
            return why
    if not checked_deletes:
        seen = {r.value for r in reads}
        kops = [k for k in kops if k.ret != _INF or k.value in seen]
    blocked, found = _search(kops, init, max_states)
    if blocked is None:
        return None
    if blocked == "limit":
        return ("key %r: inconclusive: the search gave up after %d states (%d operations); "
                "raise max_states or make written values unique" % (key, max_states, len(kops)))
    culprit = _culprit(kops, init, max_states)
    if culprit is not None:
        c, upto = culprit
        if c.write:
            why = ("no linearization: the %d operations up to this write's completion have one "
                   "if it is taken as indeterminate (it may take effect later), and none with "
                   "it done by then" % upto)
            return rep.fail(why, c)
        why = ("no linearization: the %d operations up to this read's completion have one if "
               "it is left out, and none with its result" % upto)
        return rep.fail(why, c, [k for k in kops if k.write and k.value == c.value][:3])
    states, placed, waiting, _ = found
    held = ", ".join(repr(s) for s in sorted(states, key=repr))
    finite = sum(1 for k in kops if k.ret != _INF)
    furthest = "the furthest attempt placed %d of the %d operations that completed" % (
        placed, finite)
    b = kops[blocked]
    if b.write and waiting:
        # the latest of them: the earlier ones are more likely fine
        waiting.sort(key=lambda j: kops[j].inv)
        r = kops[waiting[-1]]
        others = "".join("\n    " + kops[j].op.describe(t0) for j in waiting[-4:-1])
        also = ""
        if len(waiting) > 1:
            also = " (as did %d other read%s not placed yet%s)" % (
                len(waiting) - 1, "s" if len(waiting) > 2 else "", ", the latest:" + others)
        why = ("no linearization: %s; the register held %s there, which this read returned%s, "
               "and no write still to come could write it again, so the read had to be placed "
               "before %s, and could not" % (furthest, held, also, b.op.describe(t0)))
        return rep.fail(why, r, [k for k in kops if k.write and k.value == r.value][:3])
    if b.write:
        why = ("no linearization: %s; this write could not be placed before its completion "
               "(the register held %s there)" % (furthest, held))
        return rep.fail(why, b)
    why = ("no linearization: %s; this read could not be placed: the register held only %s "
           "there" % (furthest, held))
    return rep.fail(why, b, [k for k in kops if k.write and k.value == b.value][:3])


def check_registers(history, initial=None, max_states=2_000_000, max_reports=3):
    """Whether the history is linearizable, each key a register (a write or
    delete sets it, a read returns it). history: a History or a list of Op;
    initial: every key's value before the history (None: missing), or a dict
    key -> value. Returns (ok, explanation): on failure, for up to
    max_reports keys, the key, the offending operation and the writes
    around it. max_states bounds the search per key (about 3 s per
    million states on the test VM); a key that reaches it fails, reported
    as inconclusive."""
    ops = _ops_of(history)
    if not ops:
        return True, "empty history"
    t0 = min(op.invoke_ns for op in ops)
    by_key = _split_by_key(ops)
    reports = []
    bad = 0
    for key in sorted(by_key, key=repr):
        why = _check_key(key, by_key[key], _initial_of(initial, key), t0, max_states)
        if why:
            bad += 1
            if len(reports) < max_reports:
                reports.append(why)
    if bad:
        more = "" if bad <= len(reports) else "\n(%d more keys fail)" % (bad - len(reports))
        return False, "\n".join(reports) + more
    return True, "%d operations on %d keys: linearizable" % (len(ops), len(by_key))


def check_acknowledged_present(history, final_reads, initial=None):
    """Whether final_reads (key -> value, None for a missing key), read
    after every operation of the history had completed, still holds every
    acknowledged write. Per key, the final value must be the value of a
    write (or delete) that no acknowledged write followed in real time
    (completed-before-invoked): the last acknowledged write, or one
    concurrent with it, or an indeterminate write (which may have taken
    effect late); the initial value only if no write was acknowledged.
    Failed writes count for nothing; reads are not looked at (give them,
    and the final reads, to check_registers for that). Every key with an
    acknowledged write must be in final_reads. Returns (ok, explanation)."""
    ops = _ops_of(history)
    t0 = min((op.invoke_ns for op in ops), default=0)
    by_key = _split_by_key(ops)
    problems = []
    checked = 0
    for key in sorted(set(by_key) | set(final_reads), key=repr):
        writes = [op for op in by_key.get(key, ()) if op.kind != "read" and op.status != FAIL]
        acked = [op for op in writes if op.status == OK]
        if key not in final_reads:
            if acked:
                problems.append("key %r: acknowledged writes but no final read" % (key,))
            continue
        checked += 1
        got = final_reads[key]
        acked_invs = sorted(op.invoke_ns for op in acked)

        def followed(op):
            if op.status != OK:
                return False
            i = bisect.bisect_right(acked_invs, op.complete_ns)
            return i < len(acked_invs)

        allowed = [op for op in writes if not followed(op)]
        values = {op.value for op in allowed}
        if not acked:
            values.add(_initial_of(initial, key))
        if got in values:
            continue
        last = max(acked, key=lambda op: op.complete_ns) if acked else None
        lines = ["key %r: final value %r, expected one of %s" % (
            key, got, ", ".join(repr(v) for v in sorted(values, key=repr)))]
        if last is not None:
            lines.append("  last acknowledged write: " + last.describe(t0))
        for op in allowed[:8]:
            if op is not last:
                lines.append("  also possible: " + op.describe(t0))
        lost = [op for op in by_key.get(key, ()) if op.kind != "read" and op.value == got]
        for op in lost[:3]:
            lines.append("  the final value was written by " + op.describe(t0))
        problems.append("\n".join(lines))
    if problems:
        return False, "\n".join(problems[:10]) + (
            "" if len(problems) <= 10 else "\n(%d more keys)" % (len(problems) - 10))
    return True, "%d keys: every acknowledged write present" % checked


def check_read_your_writes(history):
    """Whether every client's acknowledged read of a key returned its own
    last acknowledged write of that key or something not older: the value
    of a write (or delete) not completed before that own write began. The
    check for reads that promise read-your-writes but not linearizability;
    the values' existence is checked too (a value no write wrote, or only
    failed ones). Each client's operations must be sequential. Returns (ok,
    explanation). A client here is one connection: the guarantee is per
    connection, so a test that reconnects gives the new connection a new
    client id."""
    ops = _ops_of(history)
    t0 = min((op.invoke_ns for op in ops), default=0)
    problems = []
    checked = 0
    for key, kops in sorted(_split_by_key(ops).items(), key=lambda kv: repr(kv[0])):
        writers = {}
        for op in kops:
            if op.kind != "read" and op.status != FAIL:
                writers.setdefault(op.value, []).append(op)
        last = {}  # client -> its last acknowledged write of key
        for op in sorted(kops, key=lambda op: op.invoke_ns):
            if op.status != OK:
                continue
            if op.kind != "read":
                last[op.client] = op
                continue
            mine = last.get(op.client)
            if mine is None:
                continue
            checked += 1
            ws = [w for w in writers.get(op.result, ()) if w.invoke_ns <= op.complete_ns]
            # not older: acknowledged no earlier than my write began, or
            # not acknowledged at all (it may have taken effect late)
            fresh = [w for w in ws if w.status != OK or w.complete_ns >= mine.invoke_ns]
            if fresh:
                continue
            why = "older than its own write" if ws else "a value no write wrote by then"
            lines = ["key %r: client %s read %s" % (key, op.client, why),
                     "  the read: " + op.describe(t0),
                     "  its own last write: " + mine.describe(t0)]
            lines += ["  the value was written by " + w.describe(t0) for w in ws[-3:]]
            problems.append("\n".join(lines))
    if problems:
        return False, "\n".join(problems[:10]) + (
            "" if len(problems) <= 10 else "\n(%d more)" % (len(problems) - 10))
    return True, "%d reads after their client's own write: none older" % checked
