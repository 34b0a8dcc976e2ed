#!/usr/bin/env python3
"""daemon-analogy: word arithmetic and control over the answer over TCP.

NEIGHBORS/QUERY with POSITIVE and NEGATIVE (3CosAdd), COSMUL (3CosMul),
ANALOGY, EXCLUDE, EXCLUDEINPUT, RESTRICT, MAXDIST, MINSCORE,
WITHSIMILARITY, VECTOR FP32/VALUES input and TEMPERATURE under dot
attention, each checked against an independent double-precision reference
in this file on a synthetic vocabulary, alone and pipelined (one shared
scan for many), plus the error replies; and on the default GloVe vectors
(when present) the textbook analogy man : king :: woman : queen.

Run alone: meson test -C build daemon-analogy, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_analogy.py [-k NAME]
(environment: see akvtest.py).
"""

import math
import random
import struct
import sys

import akvtest
from akvtest import Daemon, is_err

# Vocabulary words that are also what the parser looks at.
EXTRA = ["vector", "values", "fp32", "count", "positive"]


def make_env(workdir):
    env = akvtest.Env(workdir, words=akvtest.synth_words() + EXTRA)
    env.start()
    return env


def client(d):
    """d.client(), sending floats as repr() text."""
    c = d.client()
    cmd, encode = c.cmd, c.encode

    def conv(args):
        return [repr(a) if isinstance(a, float) else a for a in args]
    c.cmd = lambda *a: cmd(*conv(a))
    c.encode = lambda *a: encode(*conv(a))
    return c


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n > 0 else list(v)


class Ref:
    """Word arithmetic by its definition (gensim's most_similar and
    most_similar_cosmul), in double, over the vocabulary's float rows."""

    def __init__(self, env):
        self.r = env.ref
        self.words = env.words
        self.index = {w: i for i, w in enumerate(self.words)}

    def vec(self, text):
        return self.r.embed(text)

    def cosadd_vector(self, pos, neg):
        terms = [(unit(self.vec(t)), 1) for t in pos] + [(unit(self.vec(t)), -1) for t in neg]
        dim = len(terms[0][0])
        acc = [sum(s * v[d] for v, s in terms) / len(terms) for d in range(dim)]
        return [f32(x) for x in unit(acc)]

    def admitted(self, exclude=(), restrict=0):
        ex = set(exclude)
        n = restrict or len(self.words)
        return [w for w in self.words[:n] if w not in ex]

    def rank(self, r, metric="cosine", k=5, exclude=(), restrict=0):
        words = self.admitted(exclude, restrict)

        def score(w):
            v = self.r.vecs[w]
            if metric == "l2":
                return math.sqrt(sum((a - b) ** 2 for a, b in zip(v, r)))
            if metric == "cosine":
                return self.r.cos(v, r)
            return self.r.dot(v, r)
        scored = [(score(w), self.index[w], w) for w in words]
        scored.sort(key=(lambda t: (t[0], t[1])) if metric == "l2" else (lambda t: (-t[0], t[1])))
        return [(w, s) for s, _, w in scored[:k]]

    def cosmul(self, pos, neg, k=5, exclude=(), restrict=0):
        us = [self.vec(t) for t in pos], [self.vec(t) for t in neg]
        out = []
        for w in self.admitted(exclude, restrict):
            x = self.r.vecs[w]
            num = math.prod((1 + self.r.cos(x, u)) / 2 for u in us[0])
            den = math.prod((1 + self.r.cos(x, u)) / 2 for u in us[1])
            out.append((num / (den + 1e-6), self.index[w], w))
        out.sort(key=lambda t: (-t[0], t[1]))
        return [(w, s) for s, _, w in out[:k]]


def pairs(reply):
    """A flat WITHSCORES reply as [(word, score)]."""
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def same(got, want, what):
    assert [w for w, _ in got] == [w for w, _ in want], (what, got, want)
    for (_, a), (_, b) in zip(got, want):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(b)), (what, got, want)


def triples(env, n, seed):
    rnd = random.Random(seed)
    pool = env.words[30:600]
    return [rnd.sample(pool, 3) for _ in range(n)]


@akvtest.test("analogy")
def test_3cosadd_matches_reference(env):
    c = client(env.daemon)
    ref = Ref(env)
    for a, b, cc in triples(env, 25, 1):
        want = ref.rank(ref.cosadd_vector([b, cc], [a]), "cosine", 5, exclude=(a, b, cc))
        got = pairs(c.cmd("NEIGHBORS", b, "POSITIVE", cc, "NEGATIVE", a, "WITHSCORES"))
        same(got, want, ("NEIGHBORS", a, b, cc))
        assert pairs(c.cmd("ANALOGY", a, b, cc, "WITHSCORES")) == got
    # More terms, a phrase as one term, and an explicit metric (which keeps
    # the arithmetic's vector but ranks by l2).
    a, b, cc = triples(env, 1, 2)[0]
    want = ref.rank(ref.cosadd_vector([a, b + " " + cc], ["w0001", "w0002"]), "cosine", 7,
                    exclude=(a, b, cc, "w0001", "w0002"))
    got = pairs(c.cmd("NEIGHBORS", a, "NEGATIVE", "w0001", "POSITIVE", b + " " + cc, "NEGATIVE",
                      "w0002", "COUNT", 7, "WITHSCORES"))
    same(got, want, "terms")
    want = ref.rank(ref.cosadd_vector([a, b], []), "l2", 4, exclude=(a, b))
    got = pairs(c.cmd("NEIGHBORS", a, "POSITIVE", b, "METRIC", "l2", "COUNT", 4, "WITHSCORES"))
    same(got, want, "l2")
    c.close()


@akvtest.test("analogy")
def test_cosmul_matches_reference(env):
    c = client(env.daemon)
    ref = Ref(env)
    for i, (a, b, cc) in enumerate(triples(env, 12, 3)):
        restrict = 500 if i % 3 == 0 else 0
        want = ref.cosmul([b, cc], [a], 5, exclude=(a, b, cc), restrict=restrict)
        args = ["RESTRICT", restrict] if restrict else []
        got = pairs(c.cmd("ANALOGY", a, b, cc, "COSMUL", "WITHSCORES", *args))
        same(got, want, ("COSMUL", a, b, cc, restrict))
        got2 = pairs(c.cmd("NEIGHBORS", b, "POSITIVE", cc, "NEGATIVE", a, "COSMUL",
                           "WITHSCORES", *args))
        assert got2 == got
    # No negative term: the product of the positives over 1 + 1e-6.
    want = ref.cosmul(["cat"], [], 3, exclude=("cat",))
    same(pairs(c.cmd("NEIGHBORS", "cat", "COSMUL", "COUNT", 3, "WITHSCORES")), want, "one term")
    c.close()


@akvtest.test("analogy")
def test_pipelined_equals_alone(env):
    """Many requests of every kind in one pipeline share the daemon's
    scans; each answer is what it gets alone."""
    c = client(env.daemon)
    cmds = []
    for i, (a, b, cc) in enumerate(triples(env, 60, 4)):
        extra = [["COSMUL"], ["RESTRICT", 300], ["EXCLUDE", "w0003", "w0004"], [],
                 ["MINSCORE", 0.2], ["COSMUL", "RESTRICT", 200]][i % 6]
        cmds.append(["ANALOGY", a, b, cc, "COUNT", 1 + i % 7, "WITHSCORES"] + extra)
        cmds.append(["NEIGHBORS", a, "EXCLUDEINPUT", "RESTRICT", 100 + i, "WITHSCORES"])
    c.send(b"".join(c.encode(*cmd) for cmd in cmds))
    piped = [c.read() for _ in cmds]
    for cmd, got in zip(cmds, piped):
        assert c.cmd(*cmd) == got, (cmd, got)
    c.close()


@akvtest.test("analogy")
def test_filters(env):
    c = client(env.daemon)
    ref = Ref(env)
    r = ref.vec("cat")
    # EXCLUDE and EXCLUDEINPUT, alone and together.
    top = ref.rank(r, "l2", 6)
    assert top[0][0] == "cat"
    want = ref.rank(r, "l2", 5, exclude=("cat", top[1][0], top[3][0]))
    got = pairs(c.cmd("NEIGHBORS", "cat", "EXCLUDE", top[1][0], top[3][0], "EXCLUDEINPUT",
                      "WITHSCORES"))
    same(got, want, "exclude")
    # RESTRICT: only the n first words of the vocabulary.
    for n in (1, 26, 27, 400):
        want = ref.rank(r, "cosine", 5, restrict=n)
        got = pairs(c.cmd("NEIGHBORS", "cat", "METRIC", "cosine", "RESTRICT", n, "WITHSCORES"))
        same(got, want, ("restrict", n))
    # MAXDIST (l2) and MINSCORE (cosine, dot): fewer answers, never far ones.
    full = ref.rank(r, "l2", 10, exclude=("cat",))
    d = (full[3][1] + full[4][1]) / 2
    got = pairs(c.cmd("NEIGHBORS", "cat", "EXCLUDEINPUT", "COUNT", 10, "MAXDIST", d,
                      "WITHSCORES"))
    same(got, full[:4], "maxdist")
    full = ref.rank(r, "dot", 10)
    s = (full[5][1] + full[6][1]) / 2
    got = pairs(c.cmd("NEIGHBORS", "cat", "METRIC", "dot", "COUNT", 10, "MINSCORE", s,
                      "WITHSCORES"))
    same(got, full[:6], "minscore dot")
    # WITHSIMILARITY: the ranking of the metric, the score a cosine; MINSCORE
    # then applies to it whatever the metric.
    full = ref.rank(r, "l2", 8)
    sims = [(w, ref.r.cos(ref.r.vecs[w], r)) for w, _ in full]
    got = pairs(c.cmd("NEIGHBORS", "cat", "COUNT", 8, "WITHSIMILARITY"))
    same(got, sims, "withsimilarity")
    cut = sorted(x for _, x in sims)[3]
    got = pairs(c.cmd("NEIGHBORS", "cat", "COUNT", 8, "WITHSIMILARITY", "MINSCORE", cut))
    same(got, [p for p in sims if p[1] >= cut], "withsimilarity minscore")
    # QUERY: the same options on the blend.
    c.cmd("FLUSHALL")
    store = {"cat": "animal", "dog": "animal", "ball": "toy", "one": "number", "sphere": "shape"}
    for k, v in store.items():
        assert c.cmd("SET", k, v) == "OK"
        ref.r.store[k] = v
    att = ref.r.attention(ref.vec("seven"), "cosine", 0.1)
    blend = [0.0] * env.dim
    for _, v, a in att:
        blend = [x + a * y for x, y in zip(blend, ref.vec(v))]
    want = ref.rank(blend, "l2", 4, exclude=("animal", "toy"), restrict=1500)
    got = pairs(c.cmd("QUERY", "seven", "ATTENTION", "cosine", "EXCLUDE", "animal", "toy",
                      "RESTRICT", 1500, "COUNT", 4, "WITHSCORES"))
    same(got, want, "query filters")
    want = ref.rank(blend, "l2", 5, exclude=("seven",))
    got = pairs(c.cmd("QUERY", "seven", "ATTENTION", "cosine", "EXCLUDEINPUT", "WITHSCORES"))
    same(got, want, "query excludeinput")
    c.cmd("FLUSHALL")
    ref.r.store.clear()
    c.close()


@akvtest.test("analogy")
def test_many_input_words(env):
    """Terms may hold more than EXCLUDE's 1,024 words in all (63 terms of
    64 words): they are still excluded from the answer, and do not count
    against EXCLUDE's limit; EXPLAIN and FGET, which answer no words, take
    them too."""
    c = client(env.daemon)
    ref = Ref(env)
    fill = ["w%04d" % i for i in range(2000)]
    terms = [" ".join(fill[64 * i:64 * (i + 1)]) for i in range(17)]
    used = set(" ".join(terms).split())
    assert len(used) == 1088
    want = ref.rank(ref.cosadd_vector(terms, []), "cosine", 5, exclude=used)
    got = pairs(c.cmd("NEIGHBORS", terms[0], "POSITIVE", *terms[1:], "WITHSCORES"))
    same(got, want, "1088 input words")
    extra = fill[1088:]
    want = ref.rank(ref.cosadd_vector(terms, []), "cosine", 5, exclude=used | set(extra))
    got = pairs(c.cmd("NEIGHBORS", terms[0], "POSITIVE", *terms[1:], "EXCLUDE", *extra,
                      "WITHSCORES"))
    same(got, want, "1088 input words and 912 excluded")
    assert c.cmd("SET", "cat", "animal") == "OK"
    assert c.cmd("FGET", terms[0], "POSITIVE", *terms[1:]) == ["animal"]
    got = c.cmd("EXPLAIN", terms[0], "POSITIVE", *terms[1:])
    assert not is_err(got) and got[0][:2] == ["cat", "animal"], got
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("analogy")
def test_unknown_skip_in_terms(env):
    """UNKNOWN skip leaves unknown words out of every term (POSITIVE,
    NEGATIVE, EXCLUDE, ANALOGY's three), and the reply names each of them,
    as it does for the input's."""
    c = client(env.daemon)
    base = c.cmd("NEIGHBORS", "cat", "POSITIVE", "dog", "NEGATIVE", "ball", "EXCLUDE", "one",
                 "WITHSCORES")
    got = c.cmd("NEIGHBORS", "cat zzza", "POSITIVE", "zzzb dog", "NEGATIVE", "ball zzzc",
                "EXCLUDE", "one zzzd", "UNKNOWN", "skip", "WITHSCORES")
    assert got == base + [["skipped", ["zzza", "zzzb", "zzzc", "zzzd"]]], got
    base = c.cmd("ANALOGY", "ball", "cat", "dog", "COSMUL")
    got = c.cmd("ANALOGY", "ball", "cat zzze", "dog", "COSMUL", "UNKNOWN", "skip")
    assert got == base + [["skipped", ["zzze"]]], got
    assert c.cmd("SET", "cat", "animal") == "OK"
    base = c.cmd("FGET", "dog", "POSITIVE", "cat")
    got = c.cmd("FGET", "dog", "POSITIVE", "cat zzzf", "UNKNOWN", "skip")
    assert got == base + [["skipped", ["zzzf"]]], got
    # A reply names the first 64 skipped words of the whole request, however
    # many terms skipped words (each term here skips 63).
    unk = [["zq%d%c" % (t, ord("a") + i % 26) * (1 + i // 26) for i in range(63)]
           for t in range(20)]
    many = [" ".join(["one"] + u) for u in unk]
    got = c.cmd("NEIGHBORS", "cat", "POSITIVE", "dog", "EXCLUDE", *many, "UNKNOWN", "skip")
    assert got[-1][0] == "skipped" and got[-1][1] == unk[0] + unk[1][:1], got[-1]
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("analogy")
def test_vector_input(env):
    c = client(env.daemon)
    v = env.ref.vecs["cat"]
    blob = struct.pack("<%df" % env.dim, *v)
    want = c.cmd("NEIGHBORS", "cat", "WITHSCORES")
    assert c.cmd("NEIGHBORS", "VECTOR", "FP32", blob, "WITHSCORES") == want
    assert c.cmd("NEIGHBORS", "vector", "values", env.dim, *[repr(x) for x in v],
                 "WITHSCORES") == want
    # With arithmetic: the vector is the first positive term.
    assert (c.cmd("NEIGHBORS", "VECTOR", "FP32", blob, "POSITIVE", "dog", "NEGATIVE", "ball")
            == c.cmd("NEIGHBORS", "cat", "POSITIVE", "dog", "NEGATIVE", "ball", "EXCLUDE", "cat"))
    # "vector" as text: not followed by FP32 or VALUES.
    assert c.cmd("NEIGHBORS", "vector", "COUNT", 1) == ["vector"]
    assert c.cmd("NEIGHBORS", "vector values", "COUNT", 1) == c.cmd(
        "NEIGHBORS", "VECTOR", "FP32",
        struct.pack("<%df" % env.dim, *env.ref.embed("vector values")), "COUNT", 1)
    # A word that is an option name, as a term: given with a space.
    ref = Ref(env)
    want = ref.rank(ref.cosadd_vector(["cat", "count", "positive"], []), "cosine", 2,
                    exclude=("cat", "count", "positive"))
    got = pairs(c.cmd("NEIGHBORS", "cat", "POSITIVE", " count", "positive ", "COUNT", 2,
                      "WITHSCORES"))
    same(got, want, "keywords as terms")
    # QUERY and EXPLAIN take vectors too.
    c.cmd("SET", "cat", "animal")
    assert c.cmd("QUERY", "VECTOR", "FP32", blob) == c.cmd("QUERY", "cat")
    assert c.cmd("EXPLAIN", "VECTOR", "FP32", blob) == c.cmd("EXPLAIN", "cat")
    c.cmd("FLUSHALL")
    c.close()


@akvtest.test("analogy")
def test_vector_extreme_scales(env):
    """Vectors of any finite float scale rank exactly: components near the
    float limit (whose sketch bounds would overflow float) and tiny ones."""
    c = client(env.daemon)
    ref = Ref(env)
    rnd = random.Random(7)
    base = [rnd.gauss(0, 1) for _ in range(env.dim)]
    for scale in (1e37, 1e30, 1e20, 1e-20, 1e-30):
        v = [f32(x * scale) for x in base]
        blob = struct.pack("<%df" % env.dim, *v)
        for metric in ("cosine", "dot", "l2"):
            want = ref.rank(v, metric, 5)
            got = pairs(c.cmd("NEIGHBORS", "VECTOR", "FP32", blob, "METRIC", metric, "COUNT", 5,
                              "WITHSCORES"))
            if metric == "l2" and scale >= 1e20:
                # Every distance is |v| to double precision: a tie, by
                # vocabulary order; the scores agree.
                assert len(got) == 5, (scale, metric, got)
                for (_, a), (_, b) in zip(got, want):
                    assert abs(a - b) <= 1e-9 * b, (scale, metric, got, want)
                continue
            same(got, want, (scale, metric))
    c.close()


@akvtest.test("analogy")
def test_dot_temperature(env):
    c = client(env.daemon)
    ref = env.ref
    store = {"cat": "animal", "dog": "animal", "ball": "toy", "one": "number"}
    for k, v in store.items():
        c.cmd("SET", k, v)
        ref.store[k] = v

    def weights(*opts):
        return {k: float(w) for k, _, w in c.cmd("EXPLAIN", "seven", *opts)}

    default = weights()
    assert weights("TEMPERATURE", 1) == default
    for tau in (0.05, 0.5, 4.0):
        q = ref.embed("seven")
        s = {k: ref.dot(ref.embed(k), q) / tau for k in store}
        m = max(s.values())
        z = sum(math.exp(x - m) for x in s.values())
        got = weights("TEMPERATURE", tau)
        for k in store:
            assert abs(got[k] - math.exp(s[k] - m) / z) <= 1e-9, (tau, k, got)
        # The temperature belongs to the mode in effect, wherever it is.
        assert weights("ATTENTION", "dot", "TEMPERATURE", tau) == got
        assert weights("TEMPERATURE", tau, "ATTENTION", "dot") == got
    assert weights("TEMPERATURE", 0.5) != weights("TEMPERATURE", 4)
    # Cosine keeps its own default (0.1, the temperature directive).
    assert (weights("ATTENTION", "cosine") == weights("ATTENTION", "cosine", "TEMPERATURE", 0.1))
    c.cmd("FLUSHALL")
    ref.store.clear()
    c.close()


@akvtest.test("analogy")
def test_exclude_text_bound(env):
    """EXCLUDE's words are embedded on the loop thread to find their ids:
    their text is bounded (64 KiB), within the word count (1,024)."""
    c = client(env.daemon)
    long_word = "one " + "x" * 996
    r = c.cmd("NEIGHBORS", "cat", "EXCLUDE", *([long_word] * 66), "UNKNOWN", "skip")
    assert is_err(r, "NEIGHBORS EXCLUDE takes at most 65536 bytes of text"), r
    r = c.cmd("NEIGHBORS", "cat", "EXCLUDE", *([long_word] * 65), "UNKNOWN", "skip", "COUNT", 1)
    assert not is_err(r) and r[-1][0] == "skipped", r
    assert c.cmd("PING") == "PONG"
    c.close()


@akvtest.test("analogy")
def test_errors(env):
    c = client(env.daemon)
    cases = [
        (("NEIGHBORS", "cat", "POSITIVE"), "ERR POSITIVE needs at least one word"),
        (("NEIGHBORS", "cat", "NEGATIVE", "COUNT", 3), "ERR NEGATIVE needs at least one word"),
        (("NEIGHBORS", "cat", "EXCLUDE"), "ERR EXCLUDE needs at least one word"),
        (("NEIGHBORS", "cat", "POSITIVE", "zzzq"), "ERR unknown word 'zzzq'"),
        (("NEIGHBORS", "cat", "EXCLUDE", "zzzq"), "ERR unknown word 'zzzq'"),
        (("ANALOGY", "cat", "dog"), "ERR wrong number of arguments for 'analogy' command"),
        (("ANALOGY", "cat", "dog", "zzzq"), "ERR unknown word 'zzzq'"),
        (("ANALOGY", "cat", "dog", "ball", "POSITIVE", "one"),
         "ERR unknown option 'POSITIVE' for ANALOGY"),
        (("NEIGHBORS", "cat", "COUNT", 0), "ERR NEIGHBORS COUNT must be an integer between 1 and 1000"),
        (("ANALOGY", "cat", "dog", "ball", "COUNT", 1001),
         "ERR ANALOGY COUNT must be an integer between 1 and 1000"),
        (("NEIGHBORS", "cat", "RESTRICT", 0),
         "ERR RESTRICT must be an integer between 1 and %d" % len(env.words)),
        (("NEIGHBORS", "cat", "RESTRICT", len(env.words) + 1),
         "ERR RESTRICT must be an integer between 1 and %d" % len(env.words)),
        (("NEIGHBORS", "cat", "MAXDIST", -1), "ERR MAXDIST must be a finite non-negative number"),
        (("NEIGHBORS", "cat", "MAXDIST", "nan"), "ERR MAXDIST must be a finite non-negative number"),
        (("NEIGHBORS", "cat", "MINSCORE", "inf"), "ERR MINSCORE must be a finite number"),
        (("NEIGHBORS", "cat", "MINSCORE", 0.5), "ERR MINSCORE needs a similarity"),
        (("NEIGHBORS", "cat", "METRIC", "cosine", "MAXDIST", 1), "ERR MAXDIST applies to METRIC l2"),
        (("NEIGHBORS", "cat", "COSMUL", "METRIC", "l2"),
         "ERR COSMUL ranks by its own score: METRIC does not apply"),
        (("ANALOGY", "cat", "dog", "ball", "COSMUL", "WITHSIMILARITY"),
         "ERR COSMUL ranks by its own score: WITHSIMILARITY does not apply"),
        (("QUERY", "cat", "COSMUL"), "ERR unknown option 'COSMUL' for QUERY"),
        (("EXPLAIN", "cat", "EXCLUDE", "dog"), "ERR unknown option 'EXCLUDE' for EXPLAIN"),
        (("NEIGHBORS", "VECTOR", "FP32"), "ERR NEIGHBORS VECTOR FP32 needs a blob"),
        (("NEIGHBORS", "VECTOR", "FP32", b"\0" * 12),
         "ERR vector dimension mismatch: the FP32 blob has 12 bytes, the vocabulary's "
         "dimension %d needs %d" % (env.dim, 4 * env.dim)),
        (("NEIGHBORS", "VECTOR", "FP32", struct.pack("<%df" % env.dim, *([float("inf")] * env.dim))),
         "ERR VECTOR value 1 is not a finite number"),
        (("NEIGHBORS", "VECTOR", "VALUES", 3, 1, 2, 3),
         "ERR vector dimension mismatch: got 3, the vocabulary's is %d" % env.dim),
        (("NEIGHBORS", "VECTOR", "VALUES", env.dim, 1, 2),
         "ERR NEIGHBORS VECTOR VALUES %d needs %d numbers, got 2" % (env.dim, env.dim)),
        (("NEIGHBORS", "VECTOR", "VALUES", env.dim) + ("1",) * (env.dim - 1) + ("x",),
         "ERR VECTOR value %d is not a finite float: 'x'" % env.dim),
        (("NEIGHBORS", "VECTOR", "VALUES", env.dim) + ("1e39",) * env.dim,
         "ERR VECTOR value 1 is not a finite float: '1e39'"),
        (("NEIGHBORS", "VECTOR", "VALUES", "x"),
         "ERR NEIGHBORS VECTOR VALUES needs the dimension, then that many numbers"),
        (("NEIGHBORS", "cat", "POSITIVE") + ("dog",) * 64,
         "ERR NEIGHBORS takes at most 63 POSITIVE and NEGATIVE terms in all"),
        (("NEIGHBORS", "cat", "EXCLUDE") + ("dog",) * 1025,
         "ERR NEIGHBORS EXCLUDE takes at most 1024 words"),
        (("NEIGHBORS", "cat", "TEMPERATURE", 2), "ERR unknown option 'TEMPERATURE' for NEIGHBORS"),
        (("EXPLAIN", "cat", "TEMPERATURE", 0), "ERR TEMPERATURE must be a decimal number"),
    ]
    for args, text in cases:
        got = c.cmd(*args)
        assert is_err(got, text), (args, got, text)
    # Still serving.
    assert c.cmd("PING") == "PONG"
    c.close()


@akvtest.test("analogy")
def test_glove_analogy(env):
    path = akvtest.real_vectors_path()
    if not path:
        raise akvtest.Skip("default vectors not found (run scripts/fetch-vectors)")
    d = Daemon(env.workdir, path, ("--workers", "2"), name="glove")
    try:
        c = client(d)
        assert c.cmd("ANALOGY", "man", "king", "woman", "COUNT", 1) == ["queen"]
        assert c.cmd("NEIGHBORS", "king", "POSITIVE", "woman", "NEGATIVE", "man", "COUNT",
                     1) == ["queen"]
        assert c.cmd("ANALOGY", "man", "king", "woman", "COSMUL", "COUNT", 1) == ["queen"]
        got = pairs(c.cmd("ANALOGY", "man", "king", "woman", "RESTRICT", 30000, "COUNT", 3,
                          "WITHSCORES"))
        # gensim's most_similar on the same vectors: queen 0.7698541...
        assert got[0][0] == "queen" and abs(got[0][1] - 0.76985) < 1e-4, got
        assert c.cmd("ANALOGY", "athens", "greece", "paris", "COUNT", 1) == ["france"]
        c.close()
    finally:
        d.stop()
        d.check_clean_exit()


if __name__ == "__main__":
    sys.exit(akvtest.main("analogy", make_env=make_env))
