#!/usr/bin/env python3
"""install, systemd-units: `meson install --destdir` and the systemd units.

Usage: test_install.py install|systemd [-k NAME]

  install  runs `meson install --destdir TMP --no-rebuild` on the build
           directory and checks the exact list of files installed (daemon,
           tools, configuration, units, man page), that the unit starts the
           installed daemon with the installed configuration, that the
           installed daemon runs, and that the installed configuration is
           accepted by it (given a vocabulary; see below).
  systemd  installs the same way and runs `systemd-analyze verify` on both
           units (clean: no output, status 0) and `systemd-analyze security
           --offline=true` on the service, which must rate it 2.0 or lower
           ("OK" or better). Exits 77 (skipped) without systemd-analyze
           (Debian: apt-get install systemd).

Run alone: meson test -C build install systemd-units (meson sets the
environment: AKV_BUILD_ROOT, AKV_MESON (the meson command), AKV_PREFIX,
AKV_BINDIR, AKV_SYSCONFDIR, AKV_DATADIR, AKV_MANDIR, AKV_UNITDIR, as
configured; relative ones are under the prefix), or by hand with those set:
  python3 tests/integration/test_install.py install
"""

import os
import re
import shutil
import subprocess
import sys

import akvtest


def dirs():
    prefix = os.environ["AKV_PREFIX"]

    def d(name):
        v = os.environ[name]
        return v if os.path.isabs(v) else os.path.join(prefix, v)

    return {k: d("AKV_" + k.upper()) for k in ("bindir", "sysconfdir", "datadir", "mandir",
                                                 "unitdir")}


def install(dest):
    meson = os.environ.get("AKV_MESON", "meson")
    r = subprocess.run([meson, "install", "-C", os.environ["AKV_BUILD_ROOT"], "--destdir", dest,
                        "--no-rebuild", "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def under(dest, path):
    return os.path.join(dest, path.lstrip("/"))


class Installed:
    """The environment of these tests: the build installed (`meson install
    --destdir`) into the work directory, self.dest."""

    def __init__(self, workdir):
        self.dest = workdir
        install(workdir)


@akvtest.test("install")
def test_install(env):
    dest = env.dest
    d = dirs()
    expected = {
        os.path.join(d["bindir"], "attnkvd"),
        os.path.join(d["bindir"], "attnkv-import"),
        os.path.join(d["bindir"], "attnkv-fetch-vectors"),
        os.path.join(d["bindir"], "attnkv-check-aof"),
        os.path.join(d["sysconfdir"], "attnkv", "attnkvd.conf"),
        os.path.join(d["datadir"], "attnkv", "wink-to-glove.js"),
        os.path.join(d["mandir"], "man8", "attnkvd.8"),
        os.path.join(d["mandir"], "man1", "attnkv-check-aof.1"),
        os.path.join(d["unitdir"], "attnkvd.service"),
        os.path.join(d["unitdir"], "attnkvd.socket"),
    }
    found = set()
    for root, _, files in os.walk(dest):
        for f in files:
            found.add("/" + os.path.relpath(os.path.join(root, f), dest))
    assert found == expected, "installed %s\nexpected %s" % (sorted(found), sorted(expected))
    for exe in ("attnkvd", "attnkv-import", "attnkv-fetch-vectors", "attnkv-check-aof"):
        assert os.access(under(dest, os.path.join(d["bindir"], exe)), os.X_OK), exe

    daemon = under(dest, os.path.join(d["bindir"], "attnkvd"))
    r = subprocess.run([daemon, "--version"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("attnkvd "), r

    unit = open(under(dest, os.path.join(d["unitdir"], "attnkvd.service"))).read()
    conf_path = os.path.join(d["sysconfdir"], "attnkv", "attnkvd.conf")
    want = "ExecStart=%s --config %s" % (os.path.join(d["bindir"], "attnkvd"), conf_path)
    assert want in unit.splitlines(), (want, unit)
    assert not re.search(r"@[a-z]+@", unit), unit  # every template variable replaced

    conf = open(under(dest, conf_path)).read()
    assert re.search(r"^vectors /var/lib/attnkv/glove-6B-100d\.akv$", conf, re.M), conf
    assert re.search(r"^dir /var/lib/attnkv$", conf, re.M), conf
    man = open(under(dest, os.path.join(d["mandir"], "man8", "attnkvd.8"))).read()
    for sec in ("NAME", "SYNOPSIS", "OPTIONS", "COMMANDS", "SIGNALS", "ENVIRONMENT", "FILES"):
        assert ".SH " + sec in man, sec
    man = open(under(dest, os.path.join(d["mandir"], "man1", "attnkv-check-aof.1"))).read()
    for sec in ("NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS"):
        assert ".SH " + sec in man, sec

    # The installed configuration, with a small vocabulary instead of the
    # GloVe file, passes --test-config.
    vocab_txt = os.path.join(dest, "v.txt")
    with open(vocab_txt, "w") as f:
        f.write("cat 1 0\ndog 0 1\n")
    vocab = os.path.join(dest, "v.akv")
    subprocess.run([under(dest, os.path.join(d["bindir"], "attnkv-import")), "--quiet",
                    vocab_txt, vocab], check=True, timeout=60)
    # (--test-config checks that dir is writable: /var/lib/attnkv is the
    # service's, not this test's.)
    r = subprocess.run([daemon, "--test-config", "--config", under(dest, conf_path),
                        "--vectors", vocab, "--dir", dest], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r


@akvtest.test("systemd")
def test_systemd(env):
    dest = env.dest
    sa = shutil.which("systemd-analyze")
    if not sa:
        raise akvtest.Skip("systemd-analyze not found (Debian: apt-get install systemd)")
    d = dirs()
    unitdir = under(dest, d["unitdir"])
    # verify checks that ExecStart's program exists: point the copy that is
    # verified at the program in DESTDIR (the only change).
    work = os.path.join(dest, "verify")
    os.makedirs(work)
    real = os.path.join(d["bindir"], "attnkvd")
    text = open(os.path.join(unitdir, "attnkvd.service")).read()
    text = text.replace("ExecStart=" + real, "ExecStart=" + under(dest, real))
    with open(os.path.join(work, "attnkvd.service"), "w") as f:
        f.write(text)
    shutil.copy(os.path.join(unitdir, "attnkvd.socket"), work)
    # --man=no: the man page is in DESTDIR, not where man(1) looks.
    r = subprocess.run([sa, "verify", "--man=no", "attnkvd.service", "attnkvd.socket"],
                       cwd=work, capture_output=True, text=True, timeout=120)
    print(r.stdout + r.stderr)
    if "Failed to" in r.stderr and "bus" in r.stderr.lower():
        raise akvtest.Skip("systemd-analyze verify needs what this machine lacks")
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r

    r = subprocess.run([sa, "security", "--offline=true", "--no-pager", "attnkvd.service"],
                       cwd=work, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for attnkvd\.service: ([0-9.]+) (\w+)", out)
    assert m, out
    print(m.group(0))
    assert float(m.group(1)) <= 2.0, out


if __name__ == "__main__":
    part = sys.argv[1] if len(sys.argv) > 1 else "install"
    sys.exit(akvtest.main(part, sys.argv[2:], make_env=Installed, needs_daemon=False))
