"""The harness of attnkvd's integration tests: imported, not run.

Each tests/integration/test_*.py is one suite (test_install.py two). It
does `import akvtest` (Python puts the script's own directory on sys.path),
registers its tests with @akvtest.test(SUITE) and ends with
sys.exit(akvtest.main(SUITE)). This
module holds the rest: a RESP2 client, the daemon runner, the synthetic
vocabularies, a float64 reference implementation of QUERY, EXPLAIN and
NEIGHBORS, the helpers several suites share, a network-namespace helper, and
the test runner.

Every suite takes -k NAME (only the tests whose name contains NAME) and
exits 0 (passed), 1 (failed), 2 (usage) or 77 (skipped).

Environment: AKV_ATTNKVD (the daemon, required by every suite but the
install ones), AKV_IMPORT (attnkv-import; default
$AKV_BUILD_ROOT/tools/attnkv-import), AKV_DAEMON_WRAPPER (a command prefix
for the daemon, e.g. "valgrind --error-exitcode=99 --leak-check=full"),
AKV_TEST_IO_TIMEOUT and AKV_TEST_START_TIMEOUT (seconds), AKV_TEST_KEEP=1
(keep the work directory).

Every socket, subprocess and wait has a timeout, so a hung daemon fails the
test instead of hanging it. Python 3 standard library only.
"""

import math
import os
import random
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77
IO_TIMEOUT = float(os.environ.get("AKV_TEST_IO_TIMEOUT", "30"))
START_TIMEOUT = float(os.environ.get("AKV_TEST_START_TIMEOUT", "60"))

# ---------------------------------------------------------------------------
# A small RESP2 client.


class RespError(Exception):
    """An -ERR reply, returned (not raised) by Client.read()."""

    def __eq__(self, other):
        return isinstance(other, RespError) and self.args == other.args

    def __hash__(self):
        return hash(self.args)


class Closed(Exception):
    pass


class Client:
    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self):
        """Closes with an RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise Closed("connection closed by the server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode(errors="surrogateescape")
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise AssertionError("bad reply line %r" % line)

    def at_eof(self):
        """True if the server closed the connection (after what is buffered)."""
        if self.buf:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def cmd(self, *args):
        self.send(self.encode(*args))
        return self.read()

    def inline(self, line):
        self.send(line.encode() + b"\r\n")
        return self.read()


def is_err(reply, fragment=""):
    return isinstance(reply, RespError) and fragment in reply.args[0]


# ---------------------------------------------------------------------------
# Test vocabularies.


def synth_words():
    """Words the tests use, then filler."""
    named = [
        "the", "a", "b", "xxx", "VXK", "key:__rand_int__", "cat", "dog", "animal", "one", "number",
        "ball", "toy", "sphere", "shape", "male", "gender", "female", "seven", "rhombus",
        "hello", "world", "foo", "bar", "king", "queen", "café",
    ]
    return named + ["w%04d" % i for i in range(2000)]


def synth_vectors(words, dim, seed):
    rnd = random.Random(seed)
    return {w: [round(rnd.gauss(0, 0.5), 5) for _ in range(dim)] for w in words}


def write_glove(path, words, vecs):
    with open(path, "w", encoding="utf-8") as f:
        for w in words:
            f.write(w + " " + " ".join(repr(x) for x in vecs[w]) + "\n")


def import_vocab(txt, out):
    exe = os.environ.get("AKV_IMPORT") or os.path.join(
        os.environ.get("AKV_BUILD_ROOT", "."), "tools", "attnkv-import")
    subprocess.run([exe, "--quiet", txt, out], check=True, timeout=300)


# ---------------------------------------------------------------------------
# A reference implementation of QUERY/EXPLAIN/NEIGHBORS for the synthetic
# vocabulary, in double precision. Rankings of random vectors have no near
# ties, so the daemon's float32 storage cannot change the order.


class Reference:
    def __init__(self, words, vecs):
        self.words = words
        self.vecs = {w: [float(struct.unpack("f", struct.pack("f", x))[0]) for x in v]
                     for w, v in vecs.items()}
        self.store = {}

    def embed(self, text):
        ws = text.split()
        acc = [0.0] * len(self.vecs[self.words[0]])
        for w in ws:
            v = self.vecs.get(w) or self.vecs[w.lower()]
            acc = [a + b for a, b in zip(acc, v)]
        return [a / len(ws) for a in acc]

    @staticmethod
    def dot(x, y):
        return sum(a * b for a, b in zip(x, y))

    def cos(self, x, y):
        nx, ny = math.sqrt(self.dot(x, x)), math.sqrt(self.dot(y, y))
        return self.dot(x, y) / (nx * ny) if nx > 0 and ny > 0 else 0.0

    def attention(self, q, attn="dot", tau=0.1):
        items = list(self.store.items())
        if attn == "dot":
            s = [self.dot(self.embed(k), q) for k, _ in items]
        else:
            s = [self.cos(self.embed(k), q) / tau for k, _ in items]
        m = max(s)
        e = [math.exp(x - m) for x in s]
        z = sum(e)
        return [(k, v, x / z) for (k, v), x in zip(items, e)]

    def rank(self, r, metric="l2", k=5):
        def score(w):
            v = self.vecs[w]
            if metric == "l2":
                return math.sqrt(sum((a - b) ** 2 for a, b in zip(v, r)))
            if metric == "cosine":
                return self.cos(v, r)
            return self.dot(v, r)

        scored = [(score(w), i, w) for i, w in enumerate(self.words)]
        if metric == "l2":
            scored.sort(key=lambda t: (t[0], t[1]))
        else:
            scored.sort(key=lambda t: (-t[0], t[1]))
        return [(w, s) for s, _, w in scored[:k]]

    def query(self, text, k=5, attn="dot", tau=0.1, metric="l2"):
        if not self.store:
            return []
        att = self.attention(self.embed(text), attn, tau)
        dim = len(self.vecs[self.words[0]])
        r = [0.0] * dim
        for _, v, a in att:
            ev = self.embed(v)
            r = [x + a * y for x, y in zip(r, ev)]
        return self.rank(r, metric, k)

    def explain(self, text, n=5, attn="dot", tau=0.1):
        if not self.store:
            return []
        att = self.attention(self.embed(text), attn, tau)
        att.sort(key=lambda t: -t[2])
        return att[:n]


# ---------------------------------------------------------------------------
# Running the daemon.

# What a service manager puts in the environment: the daemon gets none of
# it unless a test passes it in extra_env.
MANAGER_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")


class Daemon:
    """attnkvd, started as `attnkvd [CONFIG] --port 0 --vectors V --loglevel
    verbose ARGS` (config: a configuration file given as the first argument,
    as redis-server takes it; port=None leaves --port out, for a config
    file's port) in a data directory of its own, its output in
    WORKDIR/NAME.log. With expect_start it waits until the daemon is ready
    (else call wait_ready()).

    logfile: the file the daemon logs to, when its configuration sends the
    log elsewhere than stdout. listen_sock: a listening socket handed over
    the way systemd does it (descriptor 3, LISTEN_FDS=1, LISTEN_PID)."""

    def __init__(self, workdir, vectors, args=(), name="attnkvd", expect_start=True,
                 datadir=None, preexec_fn=None, extra_env=None, port=0, logfile=None,
                 listen_sock=None, config=None):
        self.exe = os.environ["AKV_ATTNKVD"]
        self.outpath = os.path.join(workdir, name + ".log")
        self.logpath = logfile or self.outpath
        self.log = open(self.outpath, "wb")
        # The daemon runs in a data directory of its own (the default 'dir'
        # is "."), so that no two daemons share an append-only file.
        if datadir is None:
            datadir = tempfile.mkdtemp(prefix=name + "-data-", dir=workdir)
        self.datadir = datadir
        self.aof = os.path.join(datadir, "appendonly.aof")
        wrapper = shlex.split(os.environ.get("AKV_DAEMON_WRAPPER", ""))
        cmd = wrapper + [self.exe] + ([config] if config is not None else []) + (
            ["--port", str(port)] if port is not None else []) + [
            "--vectors", vectors, "--loglevel", "verbose"] + list(args)
        env = {k: v for k, v in os.environ.items() if k not in MANAGER_VARS}
        env.update(extra_env or {})
        pass_fds = ()
        if listen_sock is not None:
            # Descriptor 3 and LISTEN_PID of the process that will be
            # attnkvd: sh sets both, then execs it (same pid).
            fd = listen_sock.fileno()
            env["LISTEN_FDS"] = "1"
            move = "exec 3<&%d %d<&-; " % (fd, fd) if fd != 3 else ""
            script = move + 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"'
            cmd = ["/bin/sh", "-c", script, "sh"] + cmd
            pass_fds = (fd,)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=datadir,
                                     preexec_fn=preexec_fn, env=env, pass_fds=pass_fds)
        self.port = None
        self.addresses = []
        self.signalled = False
        if expect_start:
            self.wait_ready()

    def text(self, path=None):
        """The log (or the file at path), "" while it does not exist."""
        try:
            with open(path or self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self):
        """Waits for "ready:" in the log; sets self.port and self.addresses
        ([(host, port)], from the "listening on" lines)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            t = self.text()
            if "ready:" in t:
                self.addresses = re.findall(r"listening on (\S+):(\d+)", t)
                self.port = int(self.addresses[0][1])
                return
            if self.proc.poll() is not None:
                out = self.text(self.outpath) if self.logpath != self.outpath else ""
                raise AssertionError("attnkvd exited with %s:\n%s%s" % (self.proc.returncode,
                                                                        out, t))
            time.sleep(0.02)
        self.proc.kill()
        raise AssertionError("attnkvd did not start:\n" + self.text())

    def client(self, **kw):
        return Client(self.port, **kw)

    def send_signal(self, sig=signal.SIGTERM):
        self.signalled = True
        self.proc.send_signal(sig)

    def alive(self):
        if self.proc.poll() is not None:
            return False
        c = self.client()
        try:
            return c.cmd("PING") == "PONG"
        finally:
            c.close()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the daemon (unless that was done already) and returns its
        exit status."""
        if self.proc.poll() is None and not self.signalled:
            self.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("attnkvd did not exit after %s:\n%s" % (sig, self.text()[-4000:]))
        self.log.close()
        return rc

    def kill(self):
        """SIGKILL unless it has exited (for finally: blocks)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def check_clean_exit(self):
        rc = self.stop()
        t = self.text()
        assert rc == 0, "attnkvd exited with %d:\n%s" % (rc, t[-6000:])
        assert "not closed cleanly" not in t, t[-3000:]
        assert "bye" in t.splitlines()[-1], t[-3000:]


def daemon_is_instrumented():
    """True when the daemon runs under a sanitizer or a wrapper such as
    valgrind, whose memory use says little about the daemon's own."""
    if os.environ.get("AKV_DAEMON_WRAPPER"):
        return True
    with open(os.environ["AKV_ATTNKVD"], "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def vm_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def wait_log(d, text, timeout=15):
    deadline = time.monotonic() + timeout
    while text not in d.text():
        assert time.monotonic() < deadline, "no %r in the log:\n%s" % (text, d.text()[-3000:])
        time.sleep(0.05)


# ---------------------------------------------------------------------------
# Helpers for the replies.


def expect_closed(c, timeout=15):
    """Reads until the server closes the connection; returns what came first
    (replies parsed as far as they go). Fails if the connection stays open."""
    c.sock.settimeout(timeout)
    got = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            got.append(c.read())
    except (Closed, ConnectionResetError):
        return got
    except socket.timeout:
        pass
    raise AssertionError("connection still open after %ss (read %r)" % (timeout, got[:3]))


def parse_info(text):
    """INFO's reply as a dict of its name:value lines."""
    return dict(l.split(":", 1) for l in text.split("\r\n") if ":" in l)


def info_fields(c, *sections):
    return parse_info(c.cmd("INFO", *sections))


def run_tool(args, timeout=120):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------
# What a suite's tests share.


class Env:
    """A work directory, a synthetic vocabulary written there and imported
    (self.words, self.vecs, self.vectors; self.ref answers for it) and the
    suite's shared daemon (self.daemon, None until start()). A suite's tests
    each get the one Env; the runner checks after each test that the shared
    daemon lives, and at the end that it exits cleanly."""

    # After the shared daemon died: True lets the tests start another one
    # (self.daemon is set to None), False ends the run.
    restarts_daemon = False

    def __init__(self, workdir, words=None, dim=16, seed=42, name="synth"):
        self.workdir = workdir
        self.words = words or synth_words()
        self.dim = dim
        self.vecs = synth_vectors(self.words, self.dim, seed)
        txt = os.path.join(workdir, name + ".txt")
        write_glove(txt, self.words, self.vecs)
        self.vectors = os.path.join(workdir, name + ".akv")
        import_vocab(txt, self.vectors)
        self.ref = Reference(self.words, self.vecs)
        self.daemon = None
        self._big = None

    def start(self, args=("--workers", "2")):
        self.daemon = Daemon(self.workdir, self.vectors, args)
        return self.daemon

    def configured_daemon(self, name, conf, args=("--workers", "1"), vectors=None, **kw):
        """A Daemon (kw: more of its arguments) started with --config
        WORKDIR/NAME.conf, which holds conf, then args."""
        path = os.path.join(self.workdir, name + ".conf")
        with open(path, "w") as f:
            f.write(conf)
        return Daemon(self.workdir, vectors or self.vectors, ("--config", path) + tuple(args),
                      name=name, **kw)

    def big_vectors(self):
        """A larger vocabulary (60,000 words w000000..w059999, dim 48), so
        that queries take long enough to be caught in flight."""
        if self._big is None:
            words = ["w%06d" % i for i in range(60000)]
            rnd = random.Random(7)
            txt = os.path.join(self.workdir, "big.txt")
            with open(txt, "w") as f:
                for w in words:
                    f.write(w + " " + " ".join("%.4f" % rnd.uniform(-1, 1) for _ in range(48))
                            + "\n")
            self._big = os.path.join(self.workdir, "big.akv")
            import_vocab(txt, self._big)
        return self._big


def real_vectors_path():
    """The default vectors (GloVe 6B 100d): $AKV_VECTORS, else the cache
    scripts/fetch-vectors fills; None when the file is absent."""
    p = os.environ.get("AKV_VECTORS")
    if not p:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        p = os.path.join(cache, "attnkv", "glove-6B-100d.akv")
    return p if os.path.isfile(p) else None


def real_vectors_env(workdir, name="realvec"):
    """The usual Env, but its shared daemon serves the default vectors.
    Raises Skip when they are absent, or fails if AKV_REQUIRE_VECTORS=1."""
    path = real_vectors_path()
    if not path:
        if os.environ.get("AKV_REQUIRE_VECTORS") == "1":
            raise AssertionError("AKV_REQUIRE_VECTORS=1 but the default vectors are missing")
        raise Skip("default vectors not found (run scripts/fetch-vectors)")
    env = Env(workdir)
    env.real_vectors = path
    env.daemon = Daemon(workdir, path, ("--workers", "2"), name=name)
    return env


def env_with_daemon(workdir):
    """The default environment: the synthetic vocabulary and a shared daemon
    on it with two workers."""
    env = Env(workdir)
    env.start()
    return env


# ---------------------------------------------------------------------------
# Another network namespace, for what only non-loopback clients see.


class Netns:
    """A network namespace joined to this one by a veth pair: this side
    10.213.X.1/24, the namespace's side 10.213.X.2/24. Traffic goes only
    between those two addresses."""

    def __init__(self):
        self.name = "akvt%d" % os.getpid()
        tag = os.getpid() % 100000
        self.host_if, self.ns_if = "akv%da" % tag, "akv%db" % tag
        self.host = self.peer = None
        self.created = False

    def _ip(self, *args, ns=False):
        cmd = (["ip", "netns", "exec", self.name, "ip"] if ns else ["ip"]) + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise OSError("%s: %s" % (" ".join(cmd), r.stderr.strip()))

    def create(self):
        """Returns False when namespaces cannot be made here (no ip, no
        permission)."""
        if not shutil.which("ip"):
            return False
        self._remove_stale()
        r = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            print("     (ip netns add: %s)" % r.stderr.strip())
            return False
        self.created = True
        # A subnet no interface here uses yet (another run may hold one).
        used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                              timeout=30).stdout
        for i in range(250):
            x = (os.getpid() + i) % 250 + 1
            if "10.213.%d." % x not in used:
                break
        else:
            raise AssertionError("no free 10.213.X.0/24 subnet")
        self.host, self.peer = "10.213.%d.1" % x, "10.213.%d.2" % x
        try:
            self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            self._ip("link", "set", self.ns_if, "netns", self.name)
            self._ip("addr", "add", self.host + "/24", "dev", self.host_if)
            self._ip("link", "set", self.host_if, "up")
            self._ip("addr", "add", self.peer + "/24", "dev", self.ns_if, ns=True)
            self._ip("link", "set", self.ns_if, "up", ns=True)
            self._ip("link", "set", "lo", "up", ns=True)
        except OSError as e:
            # No veth support or no permission: the caller skips (and
            # destroy() removes what was made).
            print("     (%s)" % e)
            return False
        return True

    @staticmethod
    def _remove_stale():
        """Removes namespaces left by earlier runs of this test that were
        killed before they could clean up (named after a pid now gone)."""
        r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
        for m in re.finditer(r"^akvt(\d+)\b", r.stdout, re.M):
            if not os.path.exists("/proc/" + m.group(1)):
                subprocess.run(["ip", "netns", "del", "akvt" + m.group(1)], capture_output=True,
                               timeout=30)

    def run_client(self, port, script_args):
        """Runs the probe client in the namespace against host:port."""
        code = NETNS_CLIENT
        r = subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-c", code,
                            self.host, str(port)] + list(script_args),
                           capture_output=True, text=True, timeout=60)
        return r

    def destroy(self):
        if not self.created:
            return
        # Deleting the namespace deletes its end of the pair, and so the pair;
        # the host end is deleted too in case the pair never got that far.
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        if self.host:
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)


# The client run inside the namespace: connects to argv[1]:argv[2], sends
# each further argument as an inline line, and prints each reply line (and
# "EOF" once the server closes), as JSON.
NETNS_CLIENT = r"""
import json, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
out = []
data = b""
try:
    for line in sys.argv[3:]:
        s.sendall(line.encode() + b"\r\n")
    s.shutdown(socket.SHUT_WR)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except (ConnectionResetError, socket.timeout) as e:
    out.append(repr(e))
print(json.dumps(data.decode(errors="replace").split("\r\n")[:-1] + ["EOF"] + out))
"""



# ---------------------------------------------------------------------------
# The test registry and runner.


class Skip(Exception):
    """Raised by a test, or by a suite's make_env, that cannot run here."""


TESTS = []  # (suite, function), in the order they were defined


def test(suite):
    """Registers the decorated function(env) as a test of suite."""
    def deco(fn):
        TESTS.append((suite, fn))
        return fn

    return deco


def usage():
    doc = sys.modules["__main__"].__doc__ or ""
    print(doc.strip() or "usage: %s [-k NAME]" % sys.argv[0])
    return 2


def main(suite, argv=None, make_env=env_with_daemon, needs_daemon=True):
    """Runs the suite's tests in order, each given the env that
    make_env(workdir) made in a fresh work directory; prints "ok", "skip" or
    "FAIL" (with the traceback) per test, then "clean_exit" for the shared
    daemon (env.daemon) if there is one. argv: the options, [-k NAME]
    (default sys.argv[1:]). Returns the exit status: 0, 1, 2 (usage) or 77
    (make_env raised Skip, or every test skipped)."""
    argv = sys.argv[1:] if argv is None else argv
    only = None
    if len(argv) == 2 and argv[0] == "-k":
        only = argv[1]
    elif argv or not any(s == suite for s, _ in TESTS):
        return usage()
    if needs_daemon and "AKV_ATTNKVD" not in os.environ:
        print("AKV_ATTNKVD must name the attnkvd binary")
        return 2
    workdir = tempfile.mkdtemp(prefix="akv-%s-test-" % suite)
    results = []  # (name, "ok" | "skip" | traceback)

    def record(name, outcome, t0):
        results.append((name, outcome))
        if outcome in ("ok", "skip"):
            print("%-4s %-40s %6.2fs" % (outcome, name, time.monotonic() - t0), flush=True)
        else:
            print("FAIL %-40s\n%s" % (name, outcome), flush=True)

    try:
        try:
            env = make_env(workdir)
        except Skip as e:
            print("SKIP: %s" % e)
            return SKIP
        for s, fn in TESTS:
            if s != suite or (only and only not in fn.__name__):
                continue
            t0 = time.monotonic()
            try:
                fn(env)
                d = getattr(env, "daemon", None)
                assert d is None or d.proc.poll() is None, "attnkvd died:\n" + d.text()[-4000:]
                record(fn.__name__, "ok", t0)
            except Skip as e:
                print("     (%s)" % e)
                record(fn.__name__, "skip", t0)
            except Exception:
                record(fn.__name__, traceback.format_exc(), t0)
                d = getattr(env, "daemon", None)
                if d is not None and d.proc.poll() is not None:
                    print(d.text()[-4000:])
                    if not env.restarts_daemon:
                        break
                    env.daemon = None
        d = getattr(env, "daemon", None)
        if d is not None:
            t0 = time.monotonic()
            try:
                d.check_clean_exit()
                record("clean_exit", "ok", t0)
            except Exception:
                record("clean_exit", traceback.format_exc(), t0)
    finally:
        if os.environ.get("AKV_TEST_KEEP") != "1":
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("kept", workdir)
    failed = sum(1 for _, o in results if o not in ("ok", "skip"))
    skipped = sum(1 for _, o in results if o == "skip")
    print("%d passed, %d failed, %d skipped" % (len(results) - failed - skipped, failed, skipped))
    if failed:
        return 1
    return SKIP if results and skipped == len(results) else 0
