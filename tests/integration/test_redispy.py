#!/usr/bin/env python3
"""daemon-redispy: redis-py, unchanged, against attnkvd.

The acceptance test of databases, expiry and transactions: what a Python
program written for Redis does with them works here as it does there.
redis.Redis(port=...) and Redis(db=3); SET with ex/px/exat/pxat/nx/xx/
keepttl/get; GET, MSET, MGET, SETNX, GETSET, GETDEL, GETEX, DELETE,
UNLINK, EXISTS, RENAME, RENAMENX, COPY, MOVE, SWAPDB, FLUSHDB, DBSIZE;
EXPIRE (timedelta, NX|XX|GT|LT), EXPIREAT (datetime), TTL, PTTL, PERSIST,
EXPIRETIME; scan_iter; INFO keyspace and stats as redis-py parses them;
pipelines, transactional (the default) and not; WatchError; and
r.transaction(func, *watches) retrying under contention from several
threads without a lost update. TYPE and RANDOMKEY are used when the daemon
has them and skipped (reported) when it answers "unknown command".

Uses the synthetic vocabulary (akvtest.Env), so it needs only redis-py
(Debian: python3-redis); exits 77 (skipped) without it.

Run alone: meson test -C build daemon-redispy, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  /usr/bin/python3 tests/integration/test_redispy.py [-k NAME]
(environment: see akvtest.py).
"""

import datetime
import sys
import threading
import time

import akvtest

redis = None


def redispy_env(workdir):
    global redis
    try:
        import redis as redis_py
    except ImportError:
        raise akvtest.Skip("redis-py is not installed for %s (Debian: python3-redis)"
                           % sys.executable)
    redis = redis_py
    return akvtest.env_with_daemon(workdir)


def connect(env, **kw):
    r = redis.Redis(port=env.daemon.port, socket_timeout=akvtest.IO_TIMEOUT, **kw)
    return r


def flushed(env, **kw):
    r = connect(env, **kw)
    assert r.flushall() is True
    return r


def raises(exc_type, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (fn, exc_type.__name__))


def unknown_command(e):
    return isinstance(e, redis.ResponseError) and str(e).startswith("unknown command")


@akvtest.test("redispy")
def test_strings(env):
    r = flushed(env)
    assert r.set("cat", "animal") is True
    assert r.get("cat") == b"animal"
    assert r.get("nope") is None
    assert r.set("cat", "dog", nx=True) is None
    assert r.set("cat", "dog", xx=True) is True
    assert r.set("dog", "cat", xx=True) is None
    assert r.set("cat", "toy", get=True) == b"dog"
    assert r.setnx("cat", "ball") is False
    assert r.setnx("ball", "toy") is True
    assert r.getset("ball", "sphere") == b"toy"
    assert r.getdel("ball") == b"sphere" and r.getdel("ball") is None
    assert r.mset({"one": "number", "seven": "number", "hello world": "foo bar"}) is True
    assert r.mget(["one", "seven", "nope", "hello world"]) == [b"number", b"number", None,
                                                              b"foo bar"]
    assert r.mget("one", "seven") == [b"number", b"number"]
    assert r.msetnx({"one": "ball", "king": "queen"}) is False
    assert r.msetnx({"king": "queen", "male": "female"}) is True
    assert r.exists("one", "nope", "king") == 2
    assert r.delete("one", "nope") == 1
    assert r.unlink("seven", "king") == 2
    assert r.dbsize() == 3
    e = raises(redis.ResponseError, r.set, "cat", "zzzzqqq")
    assert "unknown word 'zzzzqqq'" in str(e), e
    # Decoded replies.
    d = connect(env, decode_responses=True)
    assert d.mget("cat", "male", "hello world") == ["toy", "female", "foo bar"]
    assert d.set("café", "cat") is True and d.get("café") == "cat"
    d.close()
    r.close()


@akvtest.test("redispy")
def test_expiry(env):
    r = flushed(env)
    assert r.set("cat", "animal", ex=100) is True
    assert r.ttl("cat") == 100
    assert 99000 < r.pttl("cat") <= 100000
    assert r.set("dog", "animal", px=50000) is True
    assert r.ttl("dog") == 50
    assert r.set("dog", "toy", keepttl=True) is True and r.ttl("dog") == 50
    assert r.set("dog", "toy", ex=datetime.timedelta(seconds=30)) is True and r.ttl("dog") == 30
    when = datetime.datetime.now() + datetime.timedelta(hours=1)
    assert r.set("ball", "toy", exat=when) is True
    assert r.expiretime("ball") == int(when.timestamp())
    assert r.set("ball", "toy", pxat=int(when.timestamp() * 1000)) is True
    assert r.pexpiretime("ball") == int(when.timestamp() * 1000)
    assert r.expire("cat", 200) is True and r.ttl("cat") == 200
    assert r.expire("cat", datetime.timedelta(seconds=300)) is True and r.ttl("cat") == 300
    assert r.expire("cat", 100, gt=True) is False
    assert r.expire("cat", 100, lt=True) is True and r.ttl("cat") == 100
    assert r.expire("cat", 100, nx=True) is False
    assert r.expire("cat", 150, xx=True) is True
    assert r.expire("nope", 100) is False
    assert r.pexpire("cat", 120000) is True and r.ttl("cat") == 120
    assert r.expireat("cat", when) is True and r.expiretime("cat") == int(when.timestamp())
    assert r.persist("cat") is True and r.ttl("cat") == -1
    assert r.persist("cat") is False
    assert r.ttl("nope") == -2 and r.pttl("nope") == -2
    assert r.getex("cat", ex=60) == b"animal" and r.ttl("cat") == 60
    assert r.getex("cat", persist=True) == b"animal" and r.ttl("cat") == -1
    # Short times: gone when due, for GET, EXISTS and the keyspace figures.
    assert r.set("seven", "number", px=400) is True
    assert r.exists("seven") == 1
    time.sleep(0.45)
    assert r.get("seven") is None and r.exists("seven") == 0 and r.ttl("seven") == -2
    assert r.set("one", "number", px=100) is True
    before = r.info("stats")["expired_keys"]
    # Nobody reads "one" again: the active cycle deletes it.
    deadline = time.monotonic() + 5
    while r.info("keyspace")["db0"] != {"keys": 3, "expires": 2, "avg_ttl": 0}:
        assert time.monotonic() < deadline, r.info("keyspace")
        time.sleep(0.02)
    assert r.info("stats")["expired_keys"] == before + 1
    r.close()


@akvtest.test("redispy")
def test_keys_and_databases(env):
    r = flushed(env)
    r.mset({"cat": "animal", "dog": "animal", "one": "number"})
    r.expire("cat", 500)
    assert r.rename("cat", "king") is True
    assert r.ttl("king") == 500
    e = raises(redis.ResponseError, r.rename, "nope", "x")
    assert str(e) == "no such key", e
    assert r.renamenx("king", "dog") is False
    assert r.renamenx("king", "queen") is True
    assert r.copy("queen", "hello") is True and r.get("hello") == b"animal"
    assert r.copy("queen", "hello") is False
    assert r.copy("one", "hello", replace=True) is True and r.get("hello") == b"number"
    assert r.copy("queen", "queen", destination_db=5) is True
    r5 = connect(env, db=5)
    assert r5.get("queen") == b"animal" and r5.ttl("queen") == 500
    assert r5.dbsize() == 1
    assert r.move("dog", 5) is True and r.exists("dog") == 0
    assert r5.get("dog") == b"animal"
    assert r.move("queen", 5) is False  # database 5 has one
    # Redis(db=3) works in database 3 only.
    r3 = connect(env, db=3)
    assert r3.set("cat", "toy") is True and r3.dbsize() == 1
    assert r.get("cat") is None
    assert [e[0] for e in r3.execute_command("EXPLAIN", "cat", "COUNT", "10")] == [b"cat"]
    assert sorted(e[0] for e in r.execute_command("EXPLAIN", "cat", "COUNT", "10")) == [
        b"hello", b"one", b"queen"]
    assert r.swapdb(0, 3) is True
    assert r.get("cat") == b"toy" and r3.get("one") == b"number"
    assert r.swapdb(0, 3) is True
    assert r3.flushdb() is True and r3.dbsize() == 0 and r.dbsize() == 3
    info = r.info("keyspace")
    assert info == {"db0": {"keys": 3, "expires": 1, "avg_ttl": 0},
                    "db5": {"keys": 2, "expires": 1, "avg_ttl": 0}}, info
    # SCAN.
    r.mset({"w%04d" % i: "cat" for i in range(300)})
    assert set(r.scan_iter()) == {b"w%04d" % i for i in range(300)} | {b"one", b"queen",
                                                                       b"hello"}
    assert set(r.scan_iter(match="w01*", count=7)) == {b"w%04d" % i for i in range(100, 200)}
    assert sorted(r.keys("w000?")) == [b"w%04d" % i for i in range(10)]
    # TYPE and RANDOMKEY, if the daemon has them.
    missing = []
    try:
        assert r.type("one") == b"string" and r.type("nope") == b"none"
    except redis.ResponseError as e:
        assert unknown_command(e), e
        missing.append("TYPE")
    try:
        k = r.randomkey()
        assert k is not None and r.exists(k) == 1
    except redis.ResponseError as e:
        assert unknown_command(e), e
        missing.append("RANDOMKEY")
    if missing:
        print("     (not implemented, skipped: %s)" % ", ".join(missing))
    for c in (r, r3, r5):
        c.close()


@akvtest.test("redispy")
def test_pipelines(env):
    r = flushed(env)
    p = r.pipeline()  # transactional: MULTI ... EXEC
    p.set("cat", "animal").get("cat").expire("cat", 100).ttl("cat")
    p.mset({"one": "number", "seven": "number"}).mget("one", "seven", "nope")
    assert p.execute() == [True, b"animal", True, 100, True, [b"number", b"number", None]]
    # A command that fails when EXEC runs it: raised, or returned.
    p = r.pipeline()
    p.set("dog", "animal").rename("nope", "x").get("dog")
    e = raises(redis.ResponseError, p.execute)
    assert "no such key" in str(e), e
    assert r.get("dog") == b"animal"  # the rest ran
    p = r.pipeline()
    p.set("dog", "toy").set("dog", "zzzzqqq").get("dog")
    res = p.execute(raise_on_error=False)
    assert res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] == b"toy", res
    # A command the daemon does not know fails the whole transaction.
    p = r.pipeline()
    p.set("ball", "toy").execute_command("FROB", "x")
    e = raises(redis.ResponseError, p.execute)
    assert "EXECABORT" in str(e) or "unknown command" in str(e), e
    assert r.exists("ball") == 0
    # Without a transaction.
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.set("w%04d" % i, "w%04d" % (i + 1), px=60000)
    p.mget(["w%04d" % i for i in range(500)])
    res = p.execute()
    assert res[:500] == [True] * 500 and res[500] == [b"w%04d" % (i + 1) for i in range(500)]
    # WATCH by hand: WatchError when another client writes the key.
    other = connect(env)
    with r.pipeline() as p:
        p.watch("cat")
        assert p.get("cat") == b"animal"
        other.set("cat", "dog")
        p.multi()
        p.set("cat", "toy")
        raises(redis.WatchError, p.execute)
    assert r.get("cat") == b"dog"
    with r.pipeline() as p:
        p.watch("cat")
        p.multi()
        p.set("cat", "toy")
        assert p.execute() == [True]
    assert r.get("cat") == b"toy"
    other.close()
    r.close()


@akvtest.test("redispy")
def test_transaction_retries(env):
    """r.transaction(func, 'cat') from eight threads: each increments a
    counter kept as a word (w0000, w0001, ...) 30 times; WATCH makes the
    losers retry, and no increment is lost."""
    r = flushed(env)
    r.set("cat", "w0000")
    calls = [0]
    lock = threading.Lock()
    errors = []

    def bump(pipe):
        with lock:
            calls[0] += 1
        v = int(pipe.get("cat")[1:])
        pipe.multi()
        pipe.set("cat", "w%04d" % (v + 1))
        pipe.set("dog", "w%04d" % (v + 1))  # a second key, always equal

    def worker():
        try:
            c = connect(env)
            for _ in range(30):
                assert c.transaction(bump, "cat") == [True, True]
            c.close()
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    assert r.get("cat") == b"w0240" and r.get("dog") == b"w0240", r.mget("cat", "dog")
    print("     240 increments from 8 threads: %d calls of the function (%d retries)"
          % (calls[0], calls[0] - 240))
    assert calls[0] > 240  # there was contention
    # value_from_callable and watch_delay, as redis-py documents them.
    assert r.transaction(lambda p: p.get("cat"), "cat", value_from_callable=True,
                         watch_delay=0.01) == b"w0240"
    r.close()


if __name__ == "__main__":
    sys.exit(akvtest.main("redispy", make_env=redispy_env))
