#!/usr/bin/env python3
"""daemon-text: real text on the default vectors (GloVe 6B 100d): the
tokenizer, UNKNOWN and WEIGHTING, VOCAB, EMBED, SIMILARITY, DOESNTMATCH
and key-normalize, over TCP, against values computed here in pure Python
from the .akv file itself (rows read from its matrix section).

Needs the default vectors ($AKV_VECTORS or ~/.cache/attnkv); exits 77
(skipped) without them, unless AKV_REQUIRE_VECTORS=1.

Run alone: meson test -C build daemon-text, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \\
  python3 tests/integration/test_text.py [-k NAME]
(environment: see akvtest.py).
"""

import math
import struct
import sys
import time

import akvtest
from akvtest import RespError, is_err


class Vectors:
    """The .akv file (docs/vocab-format.md): header fields, words, and rows
    read on demand from the matrix section."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            hdr = f.read(256)
            assert hdr[:8] == b"AKVVOCAB"
            self.count = struct.unpack_from("<Q", hdr, 16)[0]
            self.dim = struct.unpack_from("<I", hdr, 24)[0]
            words_off, words_len = struct.unpack_from("<QQ", hdr, 48)
            self.matrix_off = struct.unpack_from("<Q", hdr, 96)[0]
            self.meta_checksum, self.data_checksum = struct.unpack_from("<QQ", hdr, 104)
            f.seek(words_off)
            raw = f.read(words_len)
        self.words = [w.decode() for w in raw.split(b"\0")[: self.count]]
        self.ids = {w: i for i, w in enumerate(self.words)}

    def raw_row(self, word):
        with open(self.path, "rb") as f:
            f.seek(self.matrix_off + self.ids[word] * self.dim * 4)
            return f.read(self.dim * 4)

    def row(self, word):
        return list(struct.unpack("<%df" % self.dim, self.raw_row(word)))

    def sif(self, word):
        n = self.count
        h = math.log(n) + 0.57721566490153286 + 1 / (2 * n) - 1 / (12 * n * n)
        p = 1 / ((self.ids[word] + 1) * h)
        return 1e-3 / (1e-3 + p)

    def mean(self, words, sif=False):
        w = [self.sif(x) if sif else 1.0 for x in words]
        rows = [self.row(x) for x in words]
        return [sum(a * r[d] for a, r in zip(w, rows)) / sum(w) for d in range(self.dim)]


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def cosine(a, b):
    ab = sum(x * y for x, y in zip(a, b))
    return ab / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def doesnt_match(vec, words):
    """gensim's KeyedVectors.doesnt_match, in double."""
    units = []
    for w in words:
        r = vec.row(w.lower())
        n = math.sqrt(sum(x * x for x in r))
        units.append([x / n for x in r])
    mean = [sum(u[d] for u in units) / len(units) for d in range(vec.dim)]
    n = math.sqrt(sum(x * x for x in mean))
    mean = [x / n for x in mean]
    return sorted((sum(a * b for a, b in zip(u, mean)), w) for u, w in zip(units, words))[0][1]


class Resp3(akvtest.Client):
    """The harness's client, reading the RESP3 types too (maps as dicts)."""

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b",":
            return float(rest)
        if t == b"%":
            out = {}
            for _ in range(int(rest)):
                k = self.read()
                out[k] = self.read()
            return out
        if t == b"_":
            return None
        if t == b"|":
            raise AssertionError("attribute in a reply")
        self.buf = line + b"\r\n" + self.buf
        return super().read()


def vec(env):
    if not hasattr(env, "vec"):
        env.vec = Vectors(env.real_vectors)
    return env.vec


# The tokenizer, as GloVe 6B (default vectors: no n't, 's, mr. or u.s.)
# sees each text; the words that count.
TOKENS = [
    ("cherry", ["cherry"]),
    ("cherry,", ["cherry"]),
    ("the CHERRY, please.", ["the", "cherry", "please"]),
    ("Cherry!", ["cherry"]),
    ('"hello!"', ["hello"]),
    ("Mr. Smith", ["mr", "smith"]),
    ("don't", ["do"]),
    ("dog's ball", ["dog", "ball"]),
    ("U.S.", ["us"]),
    ("kiwi-flavoured", ["kiwi", "flavoured"]),
    ("e-mail", ["e-mail"]),              # known whole: one word
    ("cherry , please", ["cherry", ",", "please"]),  # a known token counts
    ("\u00abcherry\u00bb", ["cherry"]),  # «cherry»
    ("?!", ["?", "!"]),
]


@akvtest.test("text")
def test_tokens_embed(env):
    v = vec(env)
    c = env.daemon.client()
    for text, words in TOKENS:
        got = c.cmd("EMBED", text)
        assert isinstance(got, list) and len(got) == v.dim, (text, got)
        want = v.mean(words)
        for d in range(v.dim):
            assert abs(float(got[d]) - f32(want[d])) <= 1e-6, (text, d, got[d], want[d])
    # One word: exactly its row, also as RAW bytes.
    raw = c.send(c.encode("EMBED", "Cherry!", "RAW"))
    line = c._line()
    assert line == b"$%d" % (4 * v.dim), line
    while len(c.buf) < 4 * v.dim + 2:
        c._fill()
    assert c.buf[: 4 * v.dim] == v.raw_row("cherry"), raw
    c.buf = c.buf[4 * v.dim + 2:]
    c.close()


@akvtest.test("text")
def test_unknown_policy(env):
    c = env.daemon.client()
    r = c.cmd("EMBED", "cherry, zzqqzzq")
    assert is_err(r, "unknown word 'zzqqzzq'"), r
    r = c.cmd("NEIGHBORS", "cherry, zzqqzzq", "COUNT", 2, "UNKNOWN", "skip")
    assert r == ["cherry", "berry", ["skipped", ["zzqqzzq"]]], r
    r = c.cmd("NEIGHBORS", "cherry,", "COUNT", 2, "UNKNOWN", "skip", "WITHSCORES")
    assert len(r) == 4 and r[0] == "cherry", r  # nothing skipped: unchanged
    r = c.cmd("NEIGHBORS", "qqzzqq zzqqzzq", "UNKNOWN", "skip")
    assert is_err(r, "no known word in the text (unknown word 'qqzzqq', ...)"), r
    r = c.cmd("QUERY", "cherry", "UNKNOWN", "maybe")
    assert is_err(r, "unknown UNKNOWN 'maybe' (use error or skip)"), r
    r = c.cmd("QUERY", "cherry", "WEIGHTING")
    assert is_err(r, "WEIGHTING needs a value"), r
    r = c.cmd("EXPLAIN", "cherry", "WEIGHTING", "idf")
    assert is_err(r, "unknown WEIGHTING 'idf' (use mean or sif)"), r
    # The directive, at run time.
    c.cmd("SELECT", 3)
    c.cmd("FLUSHDB")
    assert c.cmd("SET", "cat", "animal") == "OK"
    assert c.cmd("SET", "apple", "fruit") == "OK"
    assert c.cmd("CONFIG", "SET", "unknown-words", "skip") == "OK"
    try:
        assert c.cmd("CONFIG", "GET", "unknown-words") == ["unknown-words", "skip"]
        r = c.cmd("EXPLAIN", "zzqqzzq kitten", "COUNT", 1)
        assert r == [["cat", "animal", r[0][2]], ["skipped", ["zzqqzzq"]]], r
        r = c.cmd("QUERY", "zzqqzzq cherry", "COUNT", 1, "WITHSCORES")
        assert len(r) == 3 and r[2] == ["skipped", ["zzqqzzq"]], r
        # A stored key never skips.
        r = c.cmd("SET", "zzqqzzq cat", "animal")
        assert is_err(r, "unknown word 'zzqqzzq'"), r
        # RESP3: a map after the pairs.
        c3 = Resp3(env.daemon.port)
        c3.cmd("HELLO", 3)
        c3.cmd("SELECT", 3)
        r = c3.cmd("QUERY", "zzqqzzq cherry", "COUNT", 1, "WITHSCORES")
        assert len(r) == 2 and isinstance(r[0][1], float) and r[1] == {"skipped": ["zzqqzzq"]}, r
        r = c3.cmd("EXPLAIN", "kitten qqzzqq", "COUNT", 1)
        assert r[0]["key"] == "cat" and r[1] == {"skipped": ["qqzzqq"]}, r
        r = c3.cmd("SIMILARITY", "cat", "dog qqzzqq")
        assert isinstance(r, float), r
        c3.close()
    finally:
        c.cmd("CONFIG", "SET", "unknown-words", "error")
    c.cmd("FLUSHDB")
    c.close()


@akvtest.test("text")
def test_skipped_words_binary_safe(env):
    """A skipped word is named whole, whatever bytes it holds (a NUL
    byte is no word separator)."""
    c = env.daemon.client()
    r = c.cmd("NEIGHBORS", "zz\0yy cherry qq\0rr", "COUNT", 1, "UNKNOWN", "skip")
    assert r == ["cherry", ["skipped", ["zz\0yy", "qq\0rr"]]], r
    r = c.cmd("EMBED", "cherry \0", "UNKNOWN", "skip")
    assert r[-1] == ["skipped", ["\0"]], r[-1]
    # The first 64 are named (docs/query.md).
    r = c.cmd("EMBED", " ".join("zq%d" % i for i in range(300)) + " cherry", "UNKNOWN", "skip")
    assert r[-1] == ["skipped", ["zq%d" % i for i in range(64)]], r[-1]
    c3 = Resp3(env.daemon.port)
    c3.cmd("HELLO", 3)
    r = c3.cmd("EMBED", "a\0b cherry", "UNKNOWN", "skip")
    assert r[-1] == {"skipped": ["a\0b"]}, r[-1]
    c3.close()
    c.close()


@akvtest.test("text")
def test_weighting(env):
    v = vec(env)
    c = env.daemon.client()
    text = "the CHERRY, please."
    got = c.cmd("EMBED", text, "WEIGHTING", "sif")
    want = v.mean(["the", "cherry", "please"], sif=True)
    for d in range(v.dim):
        assert abs(float(got[d]) - f32(want[d])) <= 1e-6, (d, got[d], want[d])
    # "the" weighs little: the SIF vector is nearer cherry than the mean is.
    cherry = v.row("cherry")
    mean = [float(x) for x in c.cmd("EMBED", text)]
    assert cosine(cherry, [float(x) for x in got]) > cosine(cherry, mean) + 0.05
    # The tagger's phrase, stored as exemplars: SIF tags it fruit.
    c.cmd("SELECT", 4)
    c.cmd("FLUSHDB")
    for k, val in [("apple", "fruit"), ("banana", "fruit"), ("grape", "fruit"), ("red", "color"),
                   ("blue", "color"), ("green", "color"), ("dog", "animal"), ("horse", "animal")]:
        assert c.cmd("SET", k, val) == "OK"
    assert c.cmd("QUERY", text, "COUNT", 1, "WEIGHTING", "sif") == ["fruit"]
    assert c.cmd("CONFIG", "SET", "phrase-weighting", "sif") == "OK"
    try:
        assert c.cmd("QUERY", text, "COUNT", 1) == ["fruit"]
        r = c.cmd("SIMILARITY", "the cherry", "cherry", "WEIGHTING", "mean")
        assert abs(float(r) - cosine(v.mean(["the", "cherry"]), cherry)) < 1e-6, r
    finally:
        c.cmd("CONFIG", "SET", "phrase-weighting", "mean")
    c.cmd("FLUSHDB")
    c.close()


@akvtest.test("text")
def test_vocab_similarity_doesntmatch(env):
    v = vec(env)
    c = env.daemon.client()
    assert c.cmd("VOCAB", "EXISTS", "cherry", "cherry,", "CHERRY", "zzqqzzq", "e-mail") == [
        1, 0, 1, 0, 1]
    info = c.cmd("VOCAB", "INFO")
    info = dict(zip(info[::2], info[1::2]))
    assert info["size"] == v.count and info["dim"] == v.dim, info
    assert info["file"] == v.path, info
    assert info["meta-checksum"] == "%016x" % v.meta_checksum, info
    assert info["data-checksum"] == "%016x" % v.data_checksum, info
    for a, b in [("cat", "dog"), ("king", "queen"), ("cherry", "kiwi"), ("car", "banana")]:
        got = float(c.cmd("SIMILARITY", a, b))
        assert abs(got - cosine(v.row(a), v.row(b))) < 1e-12, (a, b, got)
    for w in ("the", "banana", "cat", "king"):  # a cosine, never over 1
        got = float(c.cmd("SIMILARITY", w, w.upper()))
        assert 1 - 1e-12 < got <= 1, (w, got)
    got = float(c.cmd("SIMILARITY", "the CHERRY, please.", "a kiwi", "UNKNOWN", "skip"))
    assert abs(got - cosine(v.mean(["the", "cherry", "please"]), v.row("kiwi"))) < 1e-6
    for words in (["breakfast", "cereal", "dinner", "lunch"], ["cat", "dog", "horse", "car"],
                  ["apple", "banana", "Cherry", "violin", "kiwi"], ["red", "blue", "piano"]):
        assert c.cmd("DOESNTMATCH", *words) == doesnt_match(v, words), words
    r = c.cmd("DOESNTMATCH", "cat", "zzqqzzq")
    assert is_err(r, "unknown word 'zzqqzzq'"), r
    r = c.cmd("DOESNTMATCH", *(["cat"] * 1025))
    assert is_err(r, "too many words for DOESNTMATCH (1025; at most 1024"), r
    r = c.cmd("VOCAB", "EXISTS", *(["cat"] * 1025))
    assert is_err(r, "too many words for VOCAB EXISTS"), r
    r = c.cmd("VOCAB", "FIND", "cat")
    assert is_err(r, "unknown subcommand"), r
    r = c.cmd("SIMILARITY", "cat")
    assert is_err(r, "wrong number of arguments for 'similarity' command"), r
    c.close()


@akvtest.test("text")
def test_loop_thread_worst_cases(env):
    """The stall rule: the slowest requests of these commands keep the loop
    thread only a few milliseconds."""
    c = env.daemon.client()
    words = [w for w in vec(env).words[1000:2024]]
    text = ("kiwi-flavoured, " * 400)[:4096]
    worst = [("DOESNTMATCH",) + tuple(words), ("VOCAB", "EXISTS") + tuple(words),
             ("EMBED", text, "UNKNOWN", "skip"), ("EMBED", "," * 4096, "UNKNOWN", "skip"),
             ("EMBED", "Qz." * 1365, "UNKNOWN", "skip"), ("EMBED", "\u00c9-" * 1024, "UNKNOWN", "skip"),
             ("EMBED", "\u00c9" * 2048), ("EMBED", "Xq'" * 1365),
             ("SIMILARITY", text, text, "UNKNOWN", "skip", "WEIGHTING", "sif")]
    for args in worst:
        best = None
        for _ in range(5):
            t0 = time.monotonic()
            r = c.cmd(*args)
            dt = time.monotonic() - t0
            best = dt if best is None else min(best, dt)
        assert not isinstance(r, RespError) or "too many" in str(r) or "unknown word" in str(r), (
            args[0], r)
        print("     %-12s %.2f ms" % (args[0], best * 1000))
        assert best < 0.010, (args[0], best)
    c.close()


@akvtest.test("text")
def test_long_unknown_words(env):
    """The stall rule with words no vocabulary holds: VOCAB EXISTS and
    DOESNTMATCH of 1024 words of 4096 bytes each keep the loop thread
    well under a few milliseconds (as the slow log times the call, without
    the 4 MiB transfer)."""
    c = env.daemon.client()
    assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", 0) == "OK"
    assert c.cmd("CONFIG", "SET", "unknown-words", "skip") == "OK"  # DOESNTMATCH looks at all
    try:
        # (Words of 126 bytes: the longest still lowercased with GloVe 6B.)
        for word in ("x" * 4096, "X" * 4096, "\u00c9" * 2048, "\u212a" * 1365, "X" * 126,
                     "\u00c9" * 63):
            for cmd in (("VOCAB", "EXISTS"), ("DOESNTMATCH",)):
                best = None
                for _ in range(3):
                    c.cmd("SLOWLOG", "RESET")
                    r = c.cmd(*(cmd + (word,) * 1024))
                    us = c.cmd("SLOWLOG", "GET", 1)[0][2]
                    best = us if best is None else min(best, us)
                if cmd[0] == "VOCAB":
                    assert r == [0] * 1024, r[:4]
                else:
                    assert is_err(r, "no known word to choose from"), r
                print("     %-11s 1024 x %d bytes: %.2f ms" % (cmd[0], len(word.encode()),
                                                            best / 1000))
                assert best < 3000 * (10 if akvtest.daemon_is_instrumented() else 1), (
                    cmd[0], word[:1], best)
    finally:
        c.cmd("CONFIG", "SET", "unknown-words", "error")
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", 10000)
    # The bound keeps what lowercasing shortens: the Kelvin sign (3 bytes)
    # lowercases to k.
    assert c.cmd("VOCAB", "EXISTS", "\u212aiwi", "\u212a" + "x" * 4000) == [1, 0]
    c.close()


@akvtest.test("text")
def test_key_normalize(env):
    d = akvtest.Daemon(env.workdir, env.real_vectors, ("--key-normalize", "yes"), name="keynorm")
    c = d.client()
    assert c.cmd("SET", "Kiwi  Fruit ", "fruit") == "OK"
    assert c.cmd("GET", "kiwi fruit") == "fruit"
    assert c.cmd("SET", "kiwi\tfruit", "green") == "OK"
    assert c.cmd("DBSIZE") == 1
    assert c.cmd("KEYS", "*") == ["kiwi fruit"]
    assert c.cmd("EXISTS", "KIWI FRUIT", " kiwi  fruit", "kiwi") == 2
    assert c.cmd("MSET", "Big Dog", "animal", "CAT", "animal") == "OK"
    assert sorted(c.cmd("KEYS", "*")) == ["big dog", "cat", "kiwi fruit"]
    assert c.cmd("EXPIRE", "BIG  DOG", 100) == 1
    assert 0 < c.cmd("TTL", "big dog") <= 100
    assert c.cmd("RENAME", "Cat", "Kitten") == "OK"
    assert c.cmd("GET", "kitten") == "animal"
    # (Unicode lowercasing: test-cmd; the default vectors are ASCII.)
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("GET", "KIWI Fruit") == "QUEUED"
    assert c.cmd("EXEC") == ["green"]
    # The stall rule: at most 1 MiB of keys to rewrite in one call (1/8 of
    # that for keys that are not ASCII), about a millisecond of work.
    for k, n in (("A" * 4096, 256), ("\u00c9" * 256, 256), ("b  " * 1365, 256)):
        best = None
        for _ in range(3):
            t0 = time.monotonic()
            assert c.cmd("DEL", *([k] * n)) == 0
            best = min(best or 1, time.monotonic() - t0)
        print("     DEL of %d keys of %d bytes, rewritten: %.2f ms" % (n, len(k.encode()), best * 1e3))
        assert best < 0.030, best  # sending the 1 MiB included
    r = c.cmd("DEL", *(["A" * 4096] * 257))
    assert is_err(r, "too many key bytes to normalize in one call (1052672; at most 1048576"), r
    r = c.cmd("DEL", *(["\u00c9" * 256] * 257))
    # 257 keys of 512 bytes count 8 times: 1,052,672.
    assert is_err(r, "(1052672; at most 1048576 with key-normalize, a key that is not ASCII "
                  "counting 8 times its length)"), r
    stats = akvtest.info_fields(c, "commandstats")["cmdstat_del"]
    assert "rejected_calls=2," in stats, stats  # refused before it ran
    assert c.cmd("DEL", *(["a" * 4096] * 300)) == 0  # already normal: no limit
    # What was queued is run as it was rewritten: the normal form of U+0130
    # is longer than the key (2 bytes to 3), and is not rewritten again.
    k = "\u0130" * 1024
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("MGET", *([k] * 64)) == "QUEUED"  # 128 KiB, the most
    assert c.cmd("EXEC") == [[None] * 64]
    # A key stored before max-key-len was lowered is still named by any
    # spelling.
    assert c.cmd("CONFIG", "SET", "max-key-len", 4) == "OK"
    assert c.cmd("GET", "KIWI  Fruit") == "green"
    assert c.cmd("EXISTS", "Kiwi Fruit") == 1
    assert c.cmd("CONFIG", "SET", "max-key-len", 4096) == "OK"
    r = c.cmd("CONFIG", "SET", "key-normalize", "no")
    assert is_err(r, "cannot be changed at run time"), r
    assert c.cmd("DEL", "Kiwi Fruit", "KITTEN") == 2
    # The AOF holds the normal forms: a restart replays them.
    c.close()
    d.stop()
    d2 = akvtest.Daemon(env.workdir, env.real_vectors, ("--key-normalize", "yes"), name="keynorm2",
                        datadir=d.datadir)
    c = d2.client()
    assert sorted(c.cmd("KEYS", "*")) == ["big dog"]
    c.close()
    d2.stop()
    # Off (the default), keys are byte-exact.
    c = env.daemon.client()
    c.cmd("SELECT", 5)
    c.cmd("FLUSHDB")
    assert c.cmd("SET", "Kiwi", "fruit") == "OK"
    assert c.cmd("GET", "kiwi") is None
    c.cmd("FLUSHDB")
    c.close()


if __name__ == "__main__":
    sys.exit(akvtest.main("text", make_env=akvtest.real_vectors_env))
