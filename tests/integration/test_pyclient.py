#!/usr/bin/env python3
"""daemon-pyclient: the Python client (clients/python/attnkv) against the real
daemon on the default vectors.

Every method of attnkv.Database with the README's example store, the reply
types, the daemon's errors as exceptions, closing, a password, the pycon
examples of README.md and clients/python/README.md, and pip installing the
client offline into a throwaway virtual environment.

Needs redis-py (Debian: python3-redis) and the default vectors; exits 77
(skipped) without either, or fails without the vectors if
AKV_REQUIRE_VECTORS=1. The install test also needs python3-venv (skipped
without it).

Run alone: meson test -C build daemon-pyclient, or
  AKV_SOURCE_ROOT=$PWD AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  /usr/bin/python3 tests/integration/test_pyclient.py [-k NAME]
(environment: see akvtest.py).
"""

import doctest
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import akvtest
from akvtest import info_fields
from test_realvec import EXAMPLE, EXPECTED

SOURCE_ROOT = os.environ.get("AKV_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT_DIR = os.path.join(SOURCE_ROOT, "clients", "python")

# Imported by pyclient_env: redis-py, and attnkv from the checkout.
redis = attnkv = None


def pyclient_env(workdir):
    global redis, attnkv
    try:
        import redis as redis_py
    except ImportError:
        raise akvtest.Skip("redis-py is not installed for %s (Debian: python3-redis)"
                           % sys.executable)
    redis = redis_py
    sys.path.insert(0, CLIENT_DIR)
    import attnkv as client
    attnkv = client
    assert os.path.dirname(os.path.dirname(attnkv.__file__)) == CLIENT_DIR, attnkv.__file__
    return akvtest.real_vectors_env(workdir, name="pyclient")


def flushed(env):
    """A protocol-level connection to the shared daemon, whose store it has
    just emptied."""
    c = env.daemon.client()
    assert c.cmd("FLUSHALL") == "OK"
    return c


def connect(env, pairs=None, **kw):
    return attnkv.Database(pairs, port=env.daemon.port, **kw)


def clients_connected(c):
    return int(info_fields(c, "clients")["connected_clients"])


def wait_clients(c, n, timeout=10):
    deadline = time.monotonic() + timeout
    while clients_connected(c) != n:
        assert time.monotonic() < deadline, "connected_clients stays %d, not %d" % (
            clients_connected(c), n)
        time.sleep(0.02)


def raises(exc_type, fn, *args, **kw):
    """The exception fn(*args, **kw) raised, which must be an exc_type."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc_type))


def pairs_of(flat):
    return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]


def is_sorted(xs, reverse=False):
    return all((a >= b) if reverse else (a <= b) for a, b in zip(xs, xs[1:]))


# ---------------------------------------------------------------------------


@akvtest.test("pyclient")
def test_original_example(env):
    """The issue's formulation: Database(pairs), then query() gives words."""
    c = flushed(env)
    with connect(env, EXAMPLE) as db:
        assert db.query("rhombus")[0] == "shape"
        for q, want in EXPECTED.items():
            got = db.query(q)
            assert got == want, (q, got, want)
            assert all(type(w) is str for w in got), got
        assert len(db) == len(EXAMPLE)
        assert {k: db[k] for k in db} == EXAMPLE
    # A list of pairs does the same as the dict.
    c.cmd("FLUSHALL")
    with connect(env, list(EXAMPLE.items())) as db:
        assert db.query("rhombus") == EXPECTED["rhombus"]
    c.close()


def pycon_blocks(path):
    """The ```pycon blocks of a Markdown file: [(first line number, text)]."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1))
            for m in re.finditer(r"^```pycon\n(.*?)^```$", text, re.M | re.S)]


@akvtest.test("pyclient")
def test_readme_examples(env):
    """The pycon examples of both READMEs, run as doctests on an empty store,
    with the test daemon's port put into the Database(...) calls."""
    parser = doctest.DocTestParser()
    ran = 0
    for rel in ("README.md", "clients/python/README.md"):
        blocks = pycon_blocks(os.path.join(SOURCE_ROOT, rel))
        assert blocks, "no pycon example in " + rel
        for line, block in blocks:
            src, n = re.subn(r"\bDatabase\(\{", "Database(port=%d, pairs={" % env.daemon.port,
                             block)
            assert n >= 1, (rel, line, block)
            c = flushed(env)
            test = parser.get_doctest(src, {}, "%s:%d" % (rel, line), rel, line - 1)
            out = []
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            result = runner.run(test, out=out.append)
            assert result.attempted > 0 and result.failed == 0, "".join(out)
            ran += result.attempted
            # The example closes what it opens.
            wait_clients(c, 1)
            c.close()
    assert ran >= 8, ran


@akvtest.test("pyclient")
def test_query_replies(env):
    c = flushed(env)
    with connect(env, EXAMPLE) as db:
        hits = db.query("cylinder", withscores=True)
        assert [h.word for h in hits] == db.query("cylinder") == EXPECTED["cylinder"]
        for h in hits:
            assert isinstance(h, attnkv.Hit) and isinstance(h, tuple), h
            assert type(h.word) is str and type(h.score) is float, h
            word, score = h
            assert (word, score) == (h.word, h.score)
        # The scores are the daemon's, parsed exactly.
        raw = c.cmd("QUERY", "cylinder", "WITHSCORES")
        assert [tuple(h) for h in hits] == pairs_of(raw), (hits, raw)
        assert is_sorted([h.score for h in hits]), hits  # l2: distances, nearest first

        # Options, each against the same command sent by hand.
        cases = [
            (dict(count=2), ["COUNT", 2]),
            (dict(count=None), []),
            (dict(count=40), ["COUNT", 40]),
            (dict(metric="cosine"), ["METRIC", "cosine"]),
            (dict(metric="dot", count=3), ["COUNT", 3, "METRIC", "dot"]),
            (dict(attention="cosine", temperature=0.5), ["ATTENTION", "cosine", "TEMPERATURE",
                                                         "0.5"]),
            (dict(attention="cosine", temperature=2, metric="cosine"),
             ["ATTENTION", "cosine", "TEMPERATURE", "2", "METRIC", "cosine"]),
        ]
        for kw, opts in cases:
            got = db.query("parabola", withscores=True, **kw)
            want = pairs_of(c.cmd("QUERY", "parabola", "WITHSCORES", *opts))
            assert [tuple(h) for h in got] == want, (kw, got, want)
            assert db.query("parabola", **kw) == [w for w, _ in want], kw
        assert len(db.query("parabola", count=None)) == 5  # the daemon's default
        assert len(db.query("parabola", count=40)) == 40
        cos = db.query("rhombus", withscores=True, metric="cosine")
        assert is_sorted([h.score for h in cos], reverse=True), cos
        assert all(-1.0001 <= h.score <= 1.0001 for h in cos), cos

        # A phrase is the mean of its words.
        assert db.query("red ball", count=3) == c.cmd("QUERY", "red ball", "COUNT", 3)

        # An empty store answers nothing, with or without scores.
        db.clear()
        assert len(db) == 0
        assert db.query("rhombus") == [] and db.query("rhombus", withscores=True) == []
        assert db.explain("rhombus") == []
    c.close()


@akvtest.test("pyclient")
def test_explain_and_neighbors(env):
    c = flushed(env)
    with connect(env, EXAMPLE) as db:
        ex = db.explain("rhombus", count=2)
        assert [(e.key, e.value) for e in ex] == [("sphere", "shape"), ("male", "gender")], ex
        for e in ex:
            assert isinstance(e, attnkv.Explained) and type(e.weight) is float, e
            assert type(e.key) is str and type(e.value) is str, e
        raw = c.cmd("EXPLAIN", "rhombus", "COUNT", 2)
        assert [list(e[:2]) + [float(e.weight)] for e in ex] == [
            [k, v, float(w)] for k, v, w in raw], (ex, raw)
        # Every entry: weights from largest down, summing to one.
        full = db.explain("female", count=len(EXAMPLE))
        assert len(full) == len(EXAMPLE) and full[0][:2] == ("male", "gender"), full
        assert is_sorted([e.weight for e in full], reverse=True), full
        assert math.isclose(sum(e.weight for e in full), 1.0, rel_tol=1e-9), full
        assert len(db.explain("female")) == 5 == len(db.explain("female", count=None))
        got = db.explain("female", count=3, attention="cosine", temperature=0.25)
        raw = c.cmd("EXPLAIN", "female", "COUNT", 3, "ATTENTION", "cosine", "TEMPERATURE", "0.25")
        assert [tuple(e) for e in got] == [(k, v, float(w)) for k, v, w in raw], (got, raw)

        # NEIGHBORS ranks around the text itself, whatever is stored.
        assert db.neighbors("king", count=4) == ["king", "prince", "queen", "monarch"]
        nb = db.neighbors("king", withscores=True)
        assert nb[0] == ("king", 0.0) and type(nb[0].score) is float, nb
        assert [tuple(h) for h in nb] == pairs_of(c.cmd("NEIGHBORS", "king", "WITHSCORES"))
        nbc = db.neighbors("king", count=3, withscores=True, metric="cosine")
        assert nbc[0].word == "king" and math.isclose(nbc[0].score, 1.0, rel_tol=1e-6), nbc
        assert [tuple(h) for h in nbc] == pairs_of(
            c.cmd("NEIGHBORS", "king", "COUNT", 3, "WITHSCORES", "METRIC", "cosine"))
        db.clear()
        assert db.neighbors("king", count=4) == ["king", "prince", "queen", "monarch"]
        assert db.analogy("man", "king", "woman", count=1) == ["queen"]
        an = db.analogy("man", "king", "woman", count=3, withscores=True, restrict=30000)
        assert an[0].word == "queen" and [tuple(h) for h in an] == pairs_of(
            c.cmd("ANALOGY", "man", "king", "woman", "COUNT", 3, "WITHSCORES", "RESTRICT",
                  30000)), an
        assert db.analogy("man", "king", "woman", count=1, cosmul=True) == ["queen"]

        # FGET and payloads.
        db.update(EXAMPLE)
        assert db.fget("kitten")[0] == "animal"
        got = db.fget("kitten", count=2, withscores=True)
        assert isinstance(got[0], attnkv.Valued) and type(got[0].weight) is float, got
        assert [tuple(v) for v in got] == pairs_of(c.cmd("FGET", "kitten", "COUNT", 2,
                                                         "WITHSCORES")), got
        db.set("dog food", '{"answer": 42}', payload=True)
        assert db.get("dog food") == '{"answer": 42}'
        assert db.fget("puppy food", count=1) == ['{"answer": 42}']
        assert db.fget("puppy food", minweight=0.5) == ['{"answer": 42}']
        # A payload that is not UTF-8 comes back whole, not as an exception.
        blob = b"\xff\xfe\x00 id \r\n\xc3"
        db.set("dog food", blob, payload=True)
        back = db.get("dog food")
        assert back.encode("utf-8", "surrogateescape") == blob, back
        assert db.fget("puppy food", count=1) == [back]
        assert db.fget("puppy food", count=1, withscores=True)[0].value == back
        assert [e.value for e in db.explain("dog food", count=1)] == [back]
        db.set("dog food", back, payload=True)  # the str goes back as the bytes
        assert c.cmd("STRLEN", "dog food") == len(blob)
        db.clear()
    c.close()


@akvtest.test("pyclient")
def test_daemon_skips_unknown_words(env):
    """With unknown-words skip on the daemon, replies end with the words
    left out; query, explain and neighbors answer without them."""
    c = flushed(env)
    assert c.cmd("CONFIG", "SET", "unknown-words", "skip") == "OK"
    try:
        with connect(env, EXAMPLE) as db:
            text = "zzqqxxj kitten"
            assert c.cmd("QUERY", text, "COUNT", 2)[-1] == ["skipped", ["zzqqxxj"]]
            assert db.query(text, count=2) == c.cmd("QUERY", "kitten", "COUNT", 2)
            hits = db.query(text, count=2, withscores=True)
            assert [tuple(h) for h in hits] == pairs_of(
                c.cmd("QUERY", "kitten", "COUNT", 2, "WITHSCORES")), hits
            ex = db.explain(text, count=2)
            assert [tuple(e) for e in ex] == [
                (k, v, float(w)) for k, v, w in c.cmd("EXPLAIN", "kitten", "COUNT", 2)], ex
            nb = db.neighbors(text, count=3, withscores=True)
            assert [h.word for h in nb] == c.cmd("NEIGHBORS", "kitten", "COUNT", 3), nb
            assert db.fget(text, count=2) == c.cmd("FGET", "kitten", "COUNT", 2)
            vals = db.fget(text, count=2, withscores=True)
            assert [tuple(v) for v in vals] == pairs_of(
                c.cmd("FGET", "kitten", "COUNT", 2, "WITHSCORES")), vals
            assert db.query("kitten", count=2) == c.cmd("QUERY", "kitten", "COUNT", 2)
    finally:
        c.cmd("CONFIG", "SET", "unknown-words", "error")
    c.close()


@akvtest.test("pyclient")
def test_keyspace(env):
    c = flushed(env)
    with connect(env) as db:
        assert len(db) == 0 and list(db) == [] and list(db.keys()) == []
        assert bool(db)  # a connection object: true even when the store is empty
        assert db.set("cat", "animal") is None
        db["dog"] = "animal"
        db.update([("one", "number"), ("ball", "toy")])
        db.update((k, v) for k, v in [("sphere", "shape")])
        db.update({"male": "gender", "red ball": "round toy"})
        assert c.cmd("GET", "red ball") == "round toy"
        assert db.get("cat") == "animal" and db["red ball"] == "round toy"
        assert db.get("rhombus") is None
        raises(KeyError, lambda: db["rhombus"])
        assert "cat" in db and "red ball" in db and "rhombus" not in db and 5 not in db
        assert len(db) == 7 == c.cmd("DBSIZE")
        everything = set(EXAMPLE) | {"red ball"}
        assert sorted(db) == sorted(everything)
        # SCAN a key at a time: many calls, each key once.
        assert sorted(db.keys(count=1)) == sorted(everything)
        assert sorted(db.keys(match="*a*")) == sorted(k for k in everything if "a" in k)
        assert list(db.keys(match="nothing*")) == []
        db.set("cat", "pet")
        assert db["cat"] == "pet" and len(db) == 7
        assert db.delete("cat", "dog", "rhombus") == 2
        assert db.delete() == 0
        del db["one"]
        raises(KeyError, db.__delitem__, "one")
        assert len(db) == 4 and "one" not in db

        # More pairs than one pipeline holds.
        words = db.neighbors("cat", count=50)
        many = {"%s %s" % (a, b): a for a in words for b in words}
        db.update(many)
        assert len(db) == 4 + len(many) == 4 + 2500
        probe = "%s %s" % (words[7], words[31])
        assert db[probe] == words[7]
        db.clear()
        assert len(db) == 0 and c.cmd("DBSIZE") == 0

        # One Database, several threads.
        db.update(EXAMPLE)
        errors = []

        def worker(q):
            try:
                for _ in range(20):
                    assert db.query(q) == EXPECTED[q]
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(q,)) for q in list(EXPECTED) * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
    c.close()


@akvtest.test("pyclient")
def test_errors(env):
    c = flushed(env)
    Error, TextError, WordError = attnkv.Error, attnkv.InvalidTextError, attnkv.UnknownWordError
    with connect(env, EXAMPLE) as db:
        e = raises(WordError, db.query, "rhombsu")
        assert isinstance(e, TextError) and isinstance(e, Error)
        assert isinstance(e, redis.exceptions.ResponseError)  # what redis-py users catch
        assert str(e) == "unknown word 'rhombsu' (did you mean 'rhombus'?)", str(e)
        assert (e.word, e.suggestion) == ("rhombsu", "rhombus"), (e.word, e.suggestion)
        assert e.command[:2] == ("QUERY", "rhombsu"), e.command
        e = raises(WordError, db.query, "red rhombsu ball", count=3)
        assert e.word == "rhombsu" and e.command == ("QUERY", "red rhombsu ball", "COUNT", 3)
        e = raises(WordError, db.explain, "zzqqxxj")
        assert (e.word, e.suggestion) == ("zzqqxxj", None), (str(e), e.suggestion)
        # The daemon shows a quote as \x27; the exception undoes that.
        e = raises(WordError, db.doesnt_match, "cat", "don't")
        assert "'don\\x27t'" in str(e) and e.word == "don't", (str(e), e.word)
        assert db.doesnt_match("cat", "dog", "car") == "car"
        assert abs(db.similarity("cat", "CAT!") - 1) < 1e-12
        e = raises(WordError, db.set, "rhombuss", "shape")
        assert e.command == ("SET", "rhombuss", "shape") and e.word == "rhombuss"
        e = raises(WordError, db.__setitem__, "cat", "animall")
        assert e.word == "animall" and db["cat"] == "animal"

        for text, message in [("", "empty text"), ("  ", "empty text"),
                              (" ".join(["the"] * 65), "too many words (at most 64)"),
                              ("the " * 1100, "text too long (4400 bytes, at most 4096)")]:
            e = raises(TextError, db.query, text)
            assert type(e) is TextError and str(e) == message, (text[:20], str(e))
        e = raises(TextError, db.set, "k" * 5000, "x")
        assert str(e).startswith("key is too long (5000 bytes"), str(e)

        # Bad options are the daemon's to judge: plain Errors.
        for kw, fragment in [(dict(count=0), "QUERY COUNT must be an integer between 1 and"),
                             (dict(metric="manhattan"), "unknown METRIC 'manhattan'"),
                             (dict(attention="softmax"), "unknown ATTENTION 'softmax'"),
                             (dict(temperature=1e9), "TEMPERATURE must be")]:
            e = raises(Error, db.query, "rhombus", **kw)
            assert type(e) is Error and fragment in str(e), (kw, str(e))
        e = raises(Error, db.explain, "rhombus", count=1001)
        assert "EXPLAIN COUNT must be" in str(e), str(e)
        # OOM past maxkeys: an Error that keeps the daemon's code.
        assert c.cmd("CONFIG", "SET", "maxkeys", "6") == "OK"
        try:
            e = raises(Error, db.set, "rhombus", "shape")
            assert type(e) is Error and str(e).startswith("OOM command not allowed"), str(e)
            assert e.command == ("SET", "rhombus", "shape"), e.command
            db.set("cat", "animal")  # replacing is allowed
        finally:
            assert c.cmd("CONFIG", "SET", "maxkeys", "0") == "OK"
        # The connection carries on after every error.
        assert db.query("rhombus") == EXPECTED["rhombus"]

    # Pairs are stored but for the refused ones; the first refusal is raised.
    c.cmd("FLUSHALL")
    base = clients_connected(c)
    e = raises(WordError, connect, env, {"cat": "animal", "rhombuss": "shape", "dog": "animal",
                                         "ball": "toyy"})
    assert e.command == ("SET", "rhombuss", "shape") and e.suggestion == "rhombus", e.command
    assert sorted(c.cmd("KEYS", "*")) == ["cat", "dog"]
    wait_clients(c, base)  # the failed constructor disconnected

    # Databases: 0 .. databases-1, each its own attention set.
    e = raises(Error, connect(env, db=16).query, "rhombus")
    assert "DB index is out of range" in str(e), str(e)
    with connect(env, {"sphere": "shape"}, db=3) as d3:
        assert d3.query("rhombus")[0] == "shape" and len(d3) == 1
        assert "cat" not in d3
        d3.clear()
        assert len(d3) == 0
    assert sorted(c.cmd("KEYS", "*")) == ["cat", "dog"]  # database 0 untouched

    # Connection failures stay redis-py's.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    db = attnkv.Database(port=free)
    e = raises(redis.exceptions.ConnectionError, db.query, "rhombus")
    assert not isinstance(e, Error), e
    raises(redis.exceptions.ConnectionError, attnkv.Database, EXAMPLE, port=free)
    raises(TypeError, attnkv.Database, client=redis.Redis(), port=free)
    c.close()


@akvtest.test("pyclient")
def test_closing(env):
    c = flushed(env)
    base = clients_connected(c)
    with connect(env, EXAMPLE) as db:
        assert db.query("rhombus")[0] == "shape"
        assert clients_connected(c) == base + 1
        assert "127.0.0.1:%d" % env.daemon.port in repr(db)
    wait_clients(c, base)
    e = raises(redis.exceptions.ConnectionError, db.query, "rhombus")
    assert "closed" in str(e) and "closed" in repr(db)
    raises(redis.exceptions.ConnectionError, len, db)
    raises(redis.exceptions.ConnectionError, lambda: db.client)
    raises(redis.exceptions.ConnectionError, db.__enter__)
    db.close()  # twice is fine

    # Without a with block, and with redis-py options passed through.
    db = connect(env, socket_timeout=7)
    assert db.client.connection_pool.connection_kwargs["socket_timeout"] == 7
    assert len(db) == len(EXAMPLE)
    assert clients_connected(c) == base + 1
    db.close()
    wait_clients(c, base)

    # A borrowed client, which returns bytes: the Database gives str all the
    # same, and leaves the client open when it closes.
    r = redis.Redis(port=env.daemon.port)
    with attnkv.Database(client=r) as db:
        assert db.client is r
        assert db.query("rhombus") == EXPECTED["rhombus"]
        assert type(db.query("rhombus", withscores=True)[0].word) is str
        assert all(type(x) is str for e in db.explain("rhombus") for x in e[:2])
        assert db.get("cat") == "animal" and sorted(db) == sorted(EXAMPLE)
    assert r.ping() is True and clients_connected(c) == base + 1
    r.close()
    r.connection_pool.disconnect()
    wait_clients(c, base)
    c.close()


@akvtest.test("pyclient")
def test_password(env):
    d = env.configured_daemon("auth", 'requirepass "s3cret pw"\n', vectors=env.real_vectors)
    try:
        with attnkv.Database(EXAMPLE, port=d.port, password="s3cret pw") as db:
            assert db.query("rhombus") == EXPECTED["rhombus"]
        # A wrong password or none: redis-py's AuthenticationError, not an
        # attnkv.Error, through a single command and through the pipeline.
        for pw in ("wrong", None):
            db = attnkv.Database(port=d.port, password=pw)
            e = raises(redis.exceptions.AuthenticationError, db.query, "rhombus")
            assert not isinstance(e, attnkv.Error), e
            db.close()
            raises(redis.exceptions.AuthenticationError, attnkv.Database, EXAMPLE, port=d.port,
                   password=pw)
    except BaseException:
        d.kill()
        raise
    d.check_clean_exit()


def meson_version():
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        return re.search(r"^\s*version\s*:\s*'([^']+)'", f.read(), re.M).group(1)


# Run by the virtual environment's python: where attnkv came from, and the
# README's example through it. argv: port.
VENV_PROBE = r"""
import importlib.metadata, json, os, sys
import attnkv
db = attnkv.Database({'one': 'number', 'cat': 'animal', 'dog': 'animal', 'ball': 'toy',
                      'sphere': 'shape', 'male': 'gender'}, port=int(sys.argv[1]))
with db:
    answer = db.query('rhombus')
print(json.dumps({
    "file": attnkv.__file__,
    "version": attnkv.__version__,
    "dist_version": importlib.metadata.version("attnkv"),
    "typed": os.path.isfile(os.path.join(os.path.dirname(attnkv.__file__), "py.typed")),
    "answer": answer,
}))
"""


@akvtest.test("pyclient")
def test_pip_install(env):
    """pip installs the checkout's client offline into a new virtual
    environment, which then imports it from its own site-packages."""
    r = subprocess.run([sys.executable, "-c", "import ensurepip, venv"], capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        raise akvtest.Skip("no venv/ensurepip for %s (Debian: python3-venv)" % sys.executable)
    # pip builds in the source folder (build/, *.egg-info): use a copy.
    src = os.path.join(env.workdir, "client-src")
    shutil.copytree(CLIENT_DIR, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    venv = os.path.join(env.workdir, "venv")
    py = os.path.join(venv, "bin", "python")
    quiet = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_"))}
    quiet.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1",
                 PIP_NO_INPUT="1")
    r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                       capture_output=True, text=True, timeout=300, env=quiet)
    assert r.returncode == 0, r
    r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index", src],
                       capture_output=True, text=True, timeout=600, env=quiet, cwd=env.workdir)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    flushed(env).close()
    r = subprocess.run([py, "-c", VENV_PROBE, str(env.daemon.port)], capture_output=True,
                       text=True, timeout=120, env=quiet, cwd=env.workdir)
    assert r.returncode == 0, r
    got = json.loads(r.stdout)
    site = os.path.realpath(venv) + os.sep
    assert os.path.realpath(got["file"]).startswith(site), got
    assert got["typed"], got
    assert got["version"] == got["dist_version"] == attnkv.__version__ == meson_version(), got
    assert got["answer"] == EXPECTED["rhombus"], got


if __name__ == "__main__":
    sys.exit(akvtest.main("pyclient", make_env=pyclient_env))
