#!/usr/bin/python3
"""quality.py - answer quality of attnkvd (issue 16, "Quality figures").

Starts its own attnkvd (from a build directory, on a free port of
127.0.0.1, in a temporary data directory, AOF off) with the default vectors,
talks to it with redis-py, and measures how good the answers are, not how
fast they come:

  wordsim   every set in <eval>/word-sim: Spearman rho of SIMILARITY against
            the human scores (pairs with a word the vocabulary lacks are
            skipped and counted), beside gensim's
            KeyedVectors.evaluate_word_pairs on the same vectors
  analogy   <eval>/analogy/questions-words.txt over the 30,000 most frequent
            words: accuracy of ANALOGY (3CosAdd and COSMUL) per section and in
            all, the answers compared with gensim's most_similar and
            most_similar_cosmul question by question, and the wall time of
            each (attnkvd pipelined over --connections connections, gensim
            one call a question); also that NEIGHBORS b POSITIVE c NEGATIVE
            a EXCLUDEINPUT gives ANALOGY's answers on 300 questions
  category  a category task of this benchmark's own (30 categories of common
            words, below): one or three exemplars per category stored as
            `SET exemplar category`, the 209 held-out members asked with
            `QUERY w COUNT 1` and `FGET w COUNT 1`, top-1 accuracy for
            ATTENTION dot and cosine at several temperatures; FGET's answers
            are also checked against a float64 numpy reference. Then the
            same members inside noisy phrases ("the CHERRY, please.") with
            UNKNOWN error|skip and WEIGHTING mean|sif, and DOESNTMATCH on
            four-word sets against gensim's doesnt_match
  timing    FGET against QUERY latency on the same stores, one request at a
            time, QUERY, FGET and PING (the round trip alone) taking turns

Before measuring it checks that the vectors it hands gensim are the
daemon's: `EMBED w RAW` of the category words must equal the rows read from
the .akv file (docs/vocab-format.md) byte for byte.

How gensim is made comparable:
  * the KeyedVectors hold the .akv file's words and float32 rows, in file
    order (frequency order), read with numpy;
  * evaluate_word_pairs gets restrict_vocab = the whole vocabulary (its
    default of 300,000 would make words of rank 300,001 and beyond unknown
    to gensim only) and case_insensitive=True, its default, which matches
    attnkvd's lookup (exact bytes, then lowercase) on this uncased
    vocabulary; the words are sent to attnkvd lowercased;
  * analogies use a KeyedVectors of the first 30,000 words: gensim 4.2's
    most_similar_cosmul takes restrict_vocab but ignores it, and on a
    30,000-word model most_similar ranks exactly what restrict_vocab=30000
    ranks. A question is asked when its four words are all among those
    30,000 (gensim's evaluate_word_analogies rule); gensim's own
    evaluate_word_analogies(restrict_vocab=30000) is run too as a
    cross-check of the 3CosAdd accuracy;
  * where attnkvd and gensim answer differently, both answers are scored in
    float64; a difference within 1e-6 (relative) is a tie of float32
    rounding and counted apart from a real disagreement.

Output: markdown tables on stdout (progress on stderr), or with --json one
JSON document for machines (with the first misses of every row); --table
FILE prints the tables of a saved JSON run. --only picks parts, --quick
asks a twentieth of the analogies and times fewer requests. Exit status 0, or 1 with a message when the
daemon cannot start or a data file is missing. A command the daemon does
not know (yet) is reported as missing, not as a failure.

Needs python3-redis (in scripts/deps) and python3-numpy. gensim
(python3-gensim) is used by this benchmark only and is NOT in scripts/deps:
when it is not installed the gensim columns are skipped and the output says
so. Talks to 127.0.0.1 only; the daemon and its directory go on exit.
"""

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:
    import numpy as np
except ImportError:
    sys.exit("quality.py: needs numpy (apt-get install python3-numpy)")
try:
    import redis
except ImportError:
    sys.exit("quality.py: needs redis-py (apt-get install python3-redis)")

HOST = "127.0.0.1"
RESTRICT = 30000
TIE_TOL = 1e-6
SEED = 16

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print("quality.py: " + msg, file=sys.stderr, flush=True)


class Fatal(Exception):
    pass


# --- the category task's data -------------------------------------------------
#
# (category, three exemplars, held-out members). The value stored is the
# category name, so it must be a vocabulary word; every word is a common
# one, none appears twice. The first exemplar is the one of the
# one-exemplar store.

CATEGORIES = [
    ("fruit", "apple banana orange", "cherry grape pear peach plum mango strawberry"),
    ("animal", "dog cat horse", "tiger elephant rabbit wolf bear deer monkey"),
    ("bird", "eagle sparrow pigeon", "owl parrot crow hawk swan falcon penguin"),
    ("fish", "salmon trout tuna", "cod carp herring sardine mackerel halibut pike"),
    ("insect", "ant bee beetle", "mosquito butterfly wasp cockroach moth grasshopper termite"),
    ("color", "red blue green", "yellow purple pink brown violet gray crimson"),
    ("country", "france germany japan", "italy spain brazil canada egypt india mexico"),
    ("city", "paris london tokyo", "berlin rome madrid moscow chicago sydney cairo"),
    ("vehicle", "car truck bus", "bicycle motorcycle van tractor taxi scooter jeep"),
    ("instrument", "guitar piano violin", "drum flute trumpet cello saxophone clarinet harp"),
    ("sport", "football tennis basketball", "soccer baseball golf hockey cricket rugby volleyball"),
    ("vegetable", "carrot potato onion", "cabbage lettuce spinach broccoli cucumber celery garlic"),
    ("furniture", "chair table sofa", "bed desk shelf cabinet couch stool wardrobe"),
    ("clothing", "shirt trousers jacket", "dress skirt coat sweater jeans scarf socks"),
    ("weapon", "gun rifle sword", "pistol dagger spear cannon grenade missile shotgun"),
    ("tool", "hammer screwdriver wrench", "pliers chisel drill shovel spanner rake axe"),
    ("drink", "coffee tea juice", "beer wine milk soda whisky vodka lemonade"),
    ("body", "arm leg hand", "finger knee elbow shoulder ankle wrist neck"),
    ("profession", "doctor teacher lawyer",
     "nurse engineer farmer plumber carpenter pilot dentist"),
    ("weather", "rain snow wind", "storm fog hail thunder drizzle sleet blizzard"),
    ("metal", "iron copper gold", "silver zinc aluminum nickel platinum titanium bronze"),
    ("emotion", "happiness anger sadness", "fear joy grief jealousy disgust anxiety sorrow"),
    ("number", "one two three", "four five six seven eight nine ten"),
    ("month", "january february march", "april june july august september october november"),
    ("building", "house church castle", "tower palace cathedral skyscraper barn cottage mansion"),
    ("tree", "oak pine maple", "birch willow elm cedar spruce beech cypress"),
    ("flower", "rose tulip lily", "daisy orchid sunflower jasmine lavender carnation daffodil"),
    ("shape", "circle square triangle", "rectangle sphere cube pentagon hexagon oval cylinder"),
    ("dessert", "cake pie cookie", "pudding custard brownie cheesecake muffin tart pastry"),
    ("planet", "mars venus jupiter", "saturn mercury neptune uranus pluto earth"),
]

# Phrases around a held-out member, as a new user's input looks: case,
# punctuation, filler words, words the vocabulary may lack ("a", "Mr.").
PHRASES = [
    "the {w}, please.",
    "a big {w}!",
    "{w}?",
    "I'd like some {w}.",
    "Is that a {w}?",
    "my favourite is the {w}",
    "look at the {w} over there!",
    '"{w}"',
    "{w}!!!",
    "what about the {w}...",
    "Mr. Smith's {w}.",
    "(maybe a {w})",
]

DOT_TEMPS = [None, 0.3, 3, 10, 30]
COSINE_TEMPS = [0.01, 0.03, None, 0.3, 1]


def category_data():
    cats = []
    for name, ex, held in CATEGORIES:
        cats.append({"name": name, "exemplars": ex.split(), "held": held.split()})
    return cats


def noisy_phrases(cats):
    """One phrase per held-out member: a template by turns, the word's case
    drawn with a fixed seed (lower, Capitalised or UPPER)."""
    rnd = random.Random(SEED)
    out = []
    i = 0
    for c in cats:
        for w in c["held"]:
            form = rnd.choice([w, w.capitalize(), w.upper()])
            out.append((PHRASES[i % len(PHRASES)].format(w=form), c["name"]))
            i += 1
    return out


def odd_one_out_sets(cats):
    """Four-word sets: three held-out members of a category and one of
    another category, shuffled with a fixed seed; (words, intruder)."""
    rnd = random.Random(SEED)
    n = len(cats)
    sets = []
    for i, c in enumerate(cats):
        for j in range(5):
            members = [c["held"][(j + k) % len(c["held"])] for k in range(3)]
            other = cats[(i + 1 + 7 * j) % n]
            intruder = other["held"][j % len(other["held"])]
            words = members + [intruder]
            rnd.shuffle(words)
            sets.append((words, intruder))
    return sets


# --- the vocabulary file (docs/vocab-format.md) --------------------------------

class Vocab:
    """Words (file order = frequency order) and the float32 matrix of an .akv
    file, read with numpy."""

    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                hdr = f.read(256)
                if len(hdr) < 256 or hdr[:8] != b"AKVVOCAB":
                    raise Fatal(f"{path}: not an attnkv vocabulary file")
                self.count = struct.unpack_from("<Q", hdr, 16)[0]
                self.dim = struct.unpack_from("<I", hdr, 24)[0]
                words_off, words_len = struct.unpack_from("<QQ", hdr, 48)
                matrix_off = struct.unpack_from("<Q", hdr, 96)[0]
                f.seek(words_off)
                raw = f.read(words_len)
        except OSError as e:
            raise Fatal(f"cannot read the vectors: {e}") from e
        self.path = path
        self.words = [w.decode("utf-8") for w in raw.split(b"\0")[: self.count]]
        self.index = {w: i for i, w in enumerate(self.words)}
        try:
            self.matrix = np.memmap(path, dtype="<f4", mode="r", offset=matrix_off,
                                    shape=(self.count, self.dim))
        except ValueError as e:
            raise Fatal(f"{path}: the matrix is not where the header says: {e}") from e

    def row64(self, word):
        return np.asarray(self.matrix[self.index[word]], dtype=np.float64)


# --- the daemon ---------------------------------------------------------------

def find_daemon(build):
    if os.environ.get("AKV_ATTNKVD") and not build:
        return os.path.abspath(os.environ["AKV_ATTNKVD"])
    dirs = [build] if build else [os.path.join(REPO, "build-release"), os.path.join(REPO, "build")]
    for d in dirs:
        exe = os.path.join(d, "src", "server", "attnkvd")
        if os.access(exe, os.X_OK):
            return os.path.abspath(exe)
    raise Fatal("no attnkvd in %s (build it: meson setup build && ninja -C build, "
                "or give --build DIR)" % " or ".join(dirs))


class Daemon:
    """attnkvd on a free port of 127.0.0.1 in a temporary directory, AOF off;
    ready when its log says "ready:"."""

    def __init__(self, exe, vectors, timeout=60):
        self.dir = tempfile.mkdtemp(prefix="akv-quality-")
        self.logpath = os.path.join(self.dir, "attnkvd.log")
        self.proc = None
        argv = [exe, "--port", "0", "--bind", HOST, "--vectors", vectors, "--loglevel",
                "verbose", "--appendonly", "no"]
        self.argv = argv
        with open(self.logpath, "wb") as out:
            try:
                self.proc = subprocess.Popen(argv, cwd=self.dir, stdout=out,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            except OSError as e:
                self.close()
                raise Fatal(f"cannot run {exe}: {e}") from e
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            m = re.search(r"listening on (\S+):(\d+)", text)
            if "ready:" in text and m:
                self.port = int(m.group(2))
                return
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.close()
                raise Fatal("attnkvd exited with status %s before it was ready:\n%s"
                            % (rc, text.strip()[-3000:] or "(it printed nothing)"))
            if time.monotonic() > deadline:
                self.close()
                raise Fatal("attnkvd was not ready after %d s:\n%s" % (timeout, text[-3000:]))
            time.sleep(0.02)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def client(port, decode=True):
    return redis.Redis(host=HOST, port=port, decode_responses=decode, socket_timeout=300)


def pipelined(r, cmds, batch=256):
    """The replies to cmds, sent in pipelined batches; an error reply is a
    redis.ResponseError in its place."""
    out = []
    for i in range(0, len(cmds), batch):
        p = r.pipeline(transaction=False)
        for c in cmds[i:i + batch]:
            p.execute_command(*c)
        out.extend(p.execute(raise_on_error=False))
    return out


def parallel(port, cmds, conns, batch=256):
    """pipelined() over `conns` connections at once, each with its share."""
    if conns <= 1 or len(cmds) < 2 * conns:
        return pipelined(client(port), cmds, batch)
    size = (len(cmds) + conns - 1) // conns
    parts = [cmds[i:i + size] for i in range(0, len(cmds), size)]
    results = [None] * len(parts)
    errors = []
    clients = [client(port) for _ in parts]
    for c in clients:
        c.ping()

    def work(i):
        try:
            results[i] = pipelined(clients[i], parts[i], batch)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(parts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [x for part in results for x in part]


def is_err(x):
    return isinstance(x, Exception)


def missing(x):
    """True if x is the daemon's answer to a command or option it lacks."""
    s = str(x)
    return is_err(x) and ("unknown command" in s or "unknown option" in s)


def first(reply):
    """The first answer of an array reply (a pair's first element with
    WITHSCORES), or None."""
    if is_err(reply) or reply is None:
        return None
    if isinstance(reply, (list, tuple)):
        if not reply:
            return None
        x = reply[0]
        if isinstance(x, (list, tuple)):
            x = x[0] if x else None
        return x
    return reply


def probe(r, *cmd):
    """None if the daemon accepts cmd, else its error text."""
    try:
        r.execute_command(*cmd)
        return None
    except redis.ResponseError as e:
        return str(e)


# --- statistics -----------------------------------------------------------------

def rankdata(a):
    """Ranks from 1, ties given their mean rank (as scipy.stats.rankdata)."""
    a = np.asarray(a, dtype=np.float64)
    sorter = np.argsort(a, kind="mergesort")
    inv = np.empty(len(a), dtype=np.intp)
    inv[sorter] = np.arange(len(a))
    s = a[sorter]
    obs = np.r_[True, s[1:] != s[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def spearman(x, y):
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    return float((rx @ ry) / np.sqrt((rx @ rx) * (ry @ ry)))


def pctl(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# --- gensim ---------------------------------------------------------------------

def load_gensim():
    try:
        from gensim.models import KeyedVectors
        import gensim
    except ImportError:
        return None, None
    import logging
    logging.getLogger("gensim").setLevel(logging.ERROR)
    return KeyedVectors, gensim.__version__


def keyed_vectors(KeyedVectors, voc, n=None):
    n = voc.count if n is None else n
    kv = KeyedVectors(voc.dim, dtype=np.float32)
    kv.add_vectors(voc.words[:n], np.array(voc.matrix[:n], dtype=np.float32))
    kv.fill_norms()
    assert len(kv.index_to_key) == n and kv.vectors.shape == (n, voc.dim)
    return kv


# --- checks ---------------------------------------------------------------------

def check_same_vectors(r_bytes, voc, words):
    """EMBED w RAW against the file's rows: (equal, compared, note)."""
    equal = 0
    replies = pipelined(r_bytes, [("EMBED", w, "RAW") for w in words])
    for w, rep in zip(words, replies):
        if missing(rep):
            return None, 0, "EMBED is missing: %s" % rep
        if is_err(rep) or not isinstance(rep, bytes) or len(rep) != 4 * voc.dim:
            continue
        if np.array_equal(np.frombuffer(rep, dtype="<f4"), np.asarray(voc.matrix[voc.index[w]])):
            equal += 1
    return equal, len(words), ""


# --- word similarity ------------------------------------------------------------

def read_pairs(path):
    """(w1, w2, score) per line, as gensim's evaluate_word_pairs reads them:
    tab-separated, three fields, '#' lines and malformed lines skipped."""
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line or line.startswith("#"):
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 3:
                continue
            try:
                pairs.append((parts[0], parts[1], float(parts[2])))
            except ValueError:
                continue
    return pairs


def bench_wordsim(port, voc, evaldir, kv, res):
    d = os.path.join(evaldir, "word-sim")
    files = sorted(f for f in os.listdir(d) if f.endswith(".txt"))
    if not files:
        raise Fatal(f"no word-similarity sets in {d}")
    r = client(port)
    out = []
    for name in files:
        path = os.path.join(d, name)
        pairs = read_pairs(path)
        words = sorted({w.lower() for a, b, _ in pairs for w in (a, b)})
        ex = pipelined(r, [("VOCAB", "EXISTS", w) for w in words])
        if missing(ex[0]):
            known = {w for w in words if w in voc.index}
            oov_source = "vocabulary file (VOCAB EXISTS missing)"
        else:
            known = {w for w, e in zip(words, ex) if not is_err(e) and _truthy(e)}
            oov_source = "VOCAB EXISTS"
        asked = [(a.lower(), b.lower(), s) for a, b, s in pairs
                 if a.lower() in known and b.lower() in known]
        reps = pipelined(r, [("SIMILARITY", a, b) for a, b, _ in asked])
        row = {"set": name[:-4], "pairs": len(pairs), "oov": len(pairs) - len(asked),
               "oov_source": oov_source}
        model = None
        if reps and missing(reps[0]):
            row["error"] = "SIMILARITY missing: %s" % reps[0]
        else:
            gold, model = [], []
            for (a, b, s), rep in zip(asked, reps):
                if not is_err(rep):
                    gold.append(s)
                    model.append(float(rep))
            row["failed"] = sum(1 for rep in reps if is_err(rep))
            row["rho"] = spearman(gold, model) if len(gold) > 2 else None
            row["answered"] = len(gold)
        if kv is not None:
            _, sp, oov_ratio = kv.evaluate_word_pairs(path, restrict_vocab=voc.count,
                                                       case_insensitive=True)
            row["rho_gensim"] = float(sp[0])
            row["oov_gensim"] = int(round(oov_ratio / 100 * len(pairs)))
            # What gensim's default restrict_vocab (300,000) would leave out.
            row["oov_gensim_default"] = sum(
                1 for a, b, _ in pairs
                if voc.index.get(a.lower(), 1 << 40) >= 300000
                or voc.index.get(b.lower(), 1 << 40) >= 300000)
            if model is not None:
                g = [float(kv.similarity(a, b)) for (a, b, _), rep in zip(asked, reps)
                     if not is_err(rep)]
                row["max_abs_diff_sim"] = float(np.max(np.abs(np.array(g) - np.array(model)))) \
                    if g else None
                if row["rho"] is not None:
                    row["equal"] = abs(row["rho"] - row["rho_gensim"]) <= 5e-5 and \
                        row["oov_gensim"] == row["oov"]
        out.append(row)
        log("word-sim %s: rho %s" % (name, row.get("rho")))
    res["wordsim"] = out


def _truthy(x):
    if isinstance(x, (list, tuple)):
        return bool(x) and _truthy(x[0])
    return x in (1, "1", True, b"1")


# --- analogies --------------------------------------------------------------------

def read_questions(path):
    sections, qs, sec = [], [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(": "):
                sec = line[2:].strip()
                sections.append(sec)
                continue
            parts = line.split()
            if len(parts) != 4 or sec is None:
                continue
            qs.append((sec,) + tuple(w.lower() for w in parts))
    return sections, qs


def cosadd_scores(U, idx, a, b, c, words):
    m = U[idx[b]] + U[idx[c]] - U[idx[a]]
    m /= np.linalg.norm(m)
    return [float(U[idx[w]] @ m) for w in words]


def cosmul_scores(U, idx, a, b, c, words):
    out = []
    for w in words:
        x = U[idx[w]]
        pb, pc, na = ((1 + x @ U[idx[t]]) / 2 for t in (b, c, a))
        out.append(float(pb * pc / (na + 1e-6)))
    return out


def bench_analogy(port, voc, evaldir, KeyedVectors, conns, quick, res):
    path = os.path.join(evaldir, "analogy", "questions-words.txt")
    if not os.path.exists(path):
        raise Fatal(f"missing {path}")
    sections, qs = read_questions(path)
    top = {w for w in voc.words[:RESTRICT]}
    covered = [q for q in qs if all(w in top for w in q[1:])]
    ncovered = len(covered)
    if quick:
        covered = covered[::20]
    log("analogy: %d questions, %d with all four words in the top %d, %d asked"
        % (len(qs), ncovered, RESTRICT, len(covered)))
    out = {"questions": len(qs), "covered": len(covered), "covered_all": ncovered,
           "restrict": RESTRICT,
           "connections": conns, "sections": sections, "methods": {}}
    kv30 = None
    if KeyedVectors is not None:
        kv30 = keyed_vectors(KeyedVectors, voc, RESTRICT)
        U = np.asarray(voc.matrix[:RESTRICT], dtype=np.float64)
        U /= np.linalg.norm(U, axis=1, keepdims=True)
        idx = {w: i for i, w in enumerate(voc.words[:RESTRICT])}
    for method in ("3CosAdd", "3CosMul"):
        extra = ("COSMUL",) if method == "3CosMul" else ()
        cmds = [("ANALOGY", a, b, c) + extra + ("RESTRICT", RESTRICT, "COUNT", 1)
                for _, a, b, c, _ in covered]
        t0 = time.perf_counter()
        reps = parallel(port, cmds, conns)
        t_akv = time.perf_counter() - t0
        m = {"attnkv_s": t_akv}
        if reps and missing(reps[0]):
            m["error"] = "ANALOGY missing: %s" % reps[0]
            out["methods"][method] = m
            continue
        answers = [first(x) for x in reps]
        m["attnkv_errors"] = sum(1 for x in reps if is_err(x))
        if m["attnkv_errors"]:
            m["first_error"] = str(next(x for x in reps if is_err(x)))
        per = {}
        for q, ans in zip(covered, answers):
            s = per.setdefault(q[0], {"n": 0, "attnkv": 0, "gensim": 0})
            s["n"] += 1
            s["attnkv"] += ans == q[4]
        log("analogy %s: attnkvd %.2f s" % (method, t_akv))
        if kv30 is not None:
            fn = kv30.most_similar if method == "3CosAdd" else kv30.most_similar_cosmul
            t0 = time.perf_counter()
            g = [fn(positive=[b, c], negative=[a], topn=1)[0][0] for _, a, b, c, _ in covered]
            m["gensim_s"] = time.perf_counter() - t0
            log("analogy %s: gensim %.2f s" % (method, m["gensim_s"]))
            same = ties = akv_better = gensim_better = 0
            differ = []
            score = cosadd_scores if method == "3CosAdd" else cosmul_scores
            for q, ans, gans in zip(covered, answers, g):
                per[q[0]]["gensim"] += gans == q[4]
                if ans == gans:
                    same += 1
                    continue
                if ans is None or ans not in idx:
                    differ.append(list(q[1:]) + [ans, gans])
                    continue
                sa, sg = score(U, idx, q[1], q[2], q[3], [ans, gans])
                if abs(sa - sg) <= TIE_TOL * max(1.0, abs(sg)):
                    ties += 1
                else:
                    differ.append(list(q[1:]) + [ans, gans])
                    if sa > sg:
                        akv_better += 1
                    else:
                        gensim_better += 1
            m.update(same=same, ties=ties, differ=len(differ), differ_examples=differ[:10],
                     differ_attnkv_higher=akv_better, differ_gensim_higher=gensim_better,
                     gensim_correct=sum(s["gensim"] for s in per.values()))
        m["per_section"] = per
        m["attnkv_correct"] = sum(s["attnkv"] for s in per.values())
        out["methods"][method] = m
    if KeyedVectors is not None and not quick:
        kv = keyed_vectors(KeyedVectors, voc)
        t0 = time.perf_counter()
        score, _ = kv.evaluate_word_analogies(path, restrict_vocab=RESTRICT)
        out["gensim_evaluate_word_analogies"] = {"accuracy": float(score),
                                                 "seconds": time.perf_counter() - t0}
        del kv
    # NEIGHBORS with POSITIVE/NEGATIVE must answer what ANALOGY answers.
    sample = covered[:300]
    if sample and "error" not in out["methods"].get("3CosAdd", {"error": 1}):
        r = client(port)
        a1 = [first(x) for x in pipelined(r, [("ANALOGY", a, b, c, "RESTRICT", RESTRICT, "COUNT", 1)
                                              for _, a, b, c, _ in sample])]
        n1 = pipelined(r, [("NEIGHBORS", b, "POSITIVE", c, "NEGATIVE", a, "EXCLUDEINPUT",
                            "RESTRICT", RESTRICT, "COUNT", 1) for _, a, b, c, _ in sample])
        if n1 and missing(n1[0]):
            out["neighbors_form"] = {"error": str(n1[0])}
        else:
            out["neighbors_form"] = {"asked": len(sample),
                                     "equal": sum(1 for x, y in zip(a1, n1) if x == first(y))}
    res["analogy"] = out


# --- the category task ------------------------------------------------------------

def load_store(r, entries):
    r.flushall()
    reps = pipelined(r, [("SET", k, v) for k, v in entries])
    bad = [x for x in reps if is_err(x)]
    if bad:
        raise Fatal("SET failed: %s" % bad[0])
    if r.dbsize() != len(entries):
        raise Fatal("DBSIZE is %d, expected %d" % (r.dbsize(), len(entries)))


def opts(att, temp):
    o = ("ATTENTION", att)
    if temp is not None:
        o += ("TEMPERATURE", repr(temp))
    return o


def fget_reference(voc, entries, K, word, att, temp):
    """FGET's top value in float64: softmax of the attention scores over the
    stored keys (K: their rows), summed per value."""
    q = voc.row64(word)
    if att == "dot":
        s = K @ q / (1.0 if temp is None else temp)
    else:
        cos = (K @ q) / (np.linalg.norm(K, axis=1) * np.linalg.norm(q))
        s = cos / (0.1 if temp is None else temp)
    w = np.exp(s - s.max())
    w /= w.sum()
    tot = {}
    for (_, v), x in zip(entries, w):
        tot[v] = tot.get(v, 0.0) + x
    return max(tot.items(), key=lambda kv: kv[1])[0]


def accuracy(replies, gold, asked=None):
    """Top-1 accuracy; with asked (the requests' texts), the first misses
    as [text, answer, expected] for the JSON."""
    answers = [first(x) for x in replies]
    out = {"correct": sum(1 for a, g in zip(answers, gold) if a == g),
           "errors": sum(1 for x in replies if is_err(x)), "n": len(gold)}
    if asked is not None:
        out["misses"] = [[t, str(x) if is_err(x) else first(x), g]
                         for t, x, g in zip(asked, replies, gold) if first(x) != g][:8]
    return out


def bench_category(port, voc, KeyedVectors, res):
    r = client(port)
    cats = category_data()
    held = [(w, c["name"]) for c in cats for w in c["held"]]
    out = {"categories": len(cats), "held_out": len(held), "stores": {}}
    words = [w for c in cats for w in [c["name"]] + c["exemplars"] + c["held"]]
    unknown = [w for w in words if w not in voc.index]
    if unknown:
        raise Fatal("category words missing from the vocabulary: %s" % " ".join(unknown))
    # TEMPERATURE under ATTENTION dot: honoured (the weights change) or not.
    load_store(r, [(c["exemplars"][0], c["name"]) for c in cats])
    try:
        e1 = r.execute_command("EXPLAIN", "cherry", "COUNT", 1, "ATTENTION", "dot",
                               "TEMPERATURE", "1")
        e2 = r.execute_command("EXPLAIN", "cherry", "COUNT", 1, "ATTENTION", "dot",
                               "TEMPERATURE", "10")
        out["dot_temperature"] = "honoured" if e1 != e2 else "IGNORED (same weights)"
    except redis.ResponseError as e:
        out["dot_temperature"] = "rejected: %s" % e
    fget_missing = probe(r, "FGET", "cherry", "COUNT", 1)
    out["fget_missing"] = fget_missing if fget_missing and "unknown command" in fget_missing \
        else None
    for label, nex in (("1 exemplar", 1), ("3 exemplars", 3)):
        entries = [(e, c["name"]) for c in cats for e in c["exemplars"][:nex]]
        load_store(r, entries)
        K = np.stack([voc.row64(k) for k, _ in entries])
        rows = []
        for att, temps in (("dot", DOT_TEMPS), ("cosine", COSINE_TEMPS)):
            for t in temps:
                o = opts(att, t)
                q = pipelined(r, [("QUERY", w, "COUNT", 1) + o for w, _ in held])
                row = {"attention": att, "temperature": t,
                       "query": accuracy(q, [g for _, g in held], [w for w, _ in held])}
                if not out["fget_missing"]:
                    f = pipelined(r, [("FGET", w, "COUNT", 1) + o for w, _ in held])
                    row["fget"] = accuracy(f, [g for _, g in held], [w for w, _ in held])
                    ref = [fget_reference(voc, entries, K, w, att, t) for w, _ in held]
                    row["fget_equals_reference"] = sum(1 for x, y in zip(f, ref) if first(x) == y)
                rows.append(row)
        out["stores"][label] = {"entries": len(entries), "rows": rows}
        log("category %s done" % label)
    # Real text: the held-out members inside noisy phrases, 3-exemplar store.
    phrases = noisy_phrases(cats)
    out["phrases"] = len(phrases)
    out["phrase_examples"] = [p for p, _ in phrases[:len(PHRASES)]]
    gold = [g for _, g in phrases]
    real = []
    for cmd in ("QUERY", "FGET"):
        if cmd == "FGET" and out["fget_missing"]:
            continue
        for att in ("dot", "cosine"):
            for weighting in ("mean", "sif"):
                row = {"command": cmd, "attention": att, "weighting": weighting}
                for unk in ("error", "skip"):
                    reps = pipelined(r, [(cmd, p, "COUNT", 1, "ATTENTION", att, "UNKNOWN", unk,
                                          "WEIGHTING", weighting) for p, _ in phrases])
                    if reps and all(missing(x) for x in reps):
                        row[unk] = {"error": str(reps[0])}
                    else:
                        row[unk] = accuracy(reps, gold, [p for p, _ in phrases])
                real.append(row)
    # The clean words, for comparison with the same store and defaults.
    clean = {}
    for cmd in ("QUERY", "FGET"):
        if cmd == "FGET" and out["fget_missing"]:
            continue
        for att in ("dot", "cosine"):
            reps = pipelined(r, [(cmd, w, "COUNT", 1, "ATTENTION", att) for w, _ in held])
            clean["%s %s" % (cmd, att)] = accuracy(reps, [g for _, g in held])
    out["real_text"] = {"rows": real, "clean": clean}
    # DOESNTMATCH against gensim's doesnt_match.
    sets = odd_one_out_sets(cats)
    reps = pipelined(r, [("DOESNTMATCH",) + tuple(ws) for ws, _ in sets])
    dm = {"sets": len(sets)}
    if reps and missing(reps[0]):
        dm["error"] = str(reps[0])
    else:
        ans = [first(x) for x in reps]
        dm["attnkv_correct"] = sum(1 for a, (_, i) in zip(ans, sets) if a == i)
        dm["attnkv_errors"] = sum(1 for x in reps if is_err(x))
        if KeyedVectors is not None:
            kv = keyed_vectors(KeyedVectors, voc, max(voc.index[w] for w in words) + 1)
            g = [kv.doesnt_match(ws) for ws, _ in sets]
            dm["gensim_correct"] = sum(1 for a, (_, i) in zip(g, sets) if a == i)
            dm["agree"] = sum(1 for a, b in zip(ans, g) if a == b)
    out["doesntmatch"] = dm
    res["category"] = out


# --- timing ---------------------------------------------------------------------

def latencies(r, words, cmds=("QUERY", "FGET", "PING")):
    """Per command, the latency of `cmd w COUNT 1` for every word (PING: the
    round trip alone), one request at a time, the commands taking turns so
    that the machine's drift falls on all alike."""
    ts = {c: [] for c in cmds}
    for w in words:
        for c in cmds:
            t0 = time.perf_counter()
            try:
                r.execute_command(*((c,) if c == "PING" else (c, w, "COUNT", 1)))
            except redis.ResponseError as e:
                return {c: {"error": str(e)} for c in cmds}
            ts[c].append((time.perf_counter() - t0) * 1e3)
    return {c: {"p50_ms": pctl(t, 50), "p99_ms": pctl(t, 99), "mean_ms": sum(t) / len(t),
                "n": len(t)} for c, t in ts.items()}


def bench_timing(port, voc, quick, res):
    r = client(port)
    cats = category_data()
    held = [w for c in cats for w in c["held"]]
    n = 60 if quick else 400
    qwords = [held[i % len(held)] for i in range(n)]
    rnd = random.Random(SEED)
    common = [w for w in voc.words[:50000] if w.isascii() and w.isalpha()]
    stores = [("category store, 3 exemplars",
               [(e, c["name"]) for c in cats for e in c["exemplars"]]),
              ("10,000 random common words", list(zip(rnd.sample(common, 10000),
                                                      [rnd.choice(common) for _ in range(10000)])))]
    out = []
    for label, entries in stores:
        load_store(r, entries)
        row = {"store": label, "entries": len(entries)}
        pipelined(r, [(cmd, w, "COUNT", 1) for w in qwords[:20] for cmd in ("QUERY", "FGET")])
        row.update(latencies(r, qwords))
        out.append(row)
        log("timing %s done" % label)
    res["timing"] = out


# --- output ---------------------------------------------------------------------

def f4(x):
    return "-" if x is None else "%.4f" % x


def pct(c, n):
    return "-" if not n else "%.1f %%" % (100.0 * c / n)


def acc_cell(a):
    if a is None:
        return "-"
    if "error" in a:
        return "missing"
    s = pct(a["correct"], a["n"])
    if a["errors"]:
        s += " (%d errors)" % a["errors"]
    return s


def print_tables(res):
    p = print
    meta = res["meta"]
    p("## Answer quality (`bench/quality.py`)\n")
    p("%s, %s, revision %s (%s build); vectors %s (%d words, %d dimensions); gensim %s.\n" % (
        meta["date"], meta["machine"], meta["revision"], meta.get("buildtype") or "unknown",
        os.path.basename(meta["vectors"]),
        meta["words"], meta["dim"], meta["gensim"] or "not installed (columns skipped)"))
    sv = res.get("same_vectors")
    if sv:
        p("Same vectors: %s\n" % sv)
    if "wordsim" in res:
        p("### Word similarity (Spearman rho of SIMILARITY against human scores)\n")
        p("| set | pairs | OOV | rho attnkv | rho gensim | equal | max abs diff of cosines |")
        p("| --- | ---: | ---: | ---: | ---: | --- | ---: |")
        for row in res["wordsim"]:
            if "error" in row:
                p("| %s | %d | %d | missing | %s | | |" % (row["set"], row["pairs"], row["oov"],
                                                         f4(row.get("rho_gensim"))))
                continue
            eq = row.get("equal")
            p("| %s | %d | %d%s | %s | %s | %s | %s |" % (
                row["set"], row["pairs"], row["oov"],
                "" if row.get("oov_gensim", row["oov"]) == row["oov"] else
                " (gensim %d)" % row["oov_gensim"],
                f4(row["rho"]), f4(row.get("rho_gensim")),
                "-" if eq is None else ("yes" if eq else "NO"),
                "-" if row.get("max_abs_diff_sim") is None else "%.1e" % row["max_abs_diff_sim"]))
        p("")
    if "analogy" in res:
        a = res["analogy"]
        p("### Analogies (questions-words.txt, RESTRICT %d)\n" % a["restrict"])
        p("%d questions, %d with all four words among the %d most frequent%s.\n"
          % (a["questions"], a.get("covered_all", a["covered"]), a["restrict"],
             "" if a.get("covered_all", a["covered"]) == a["covered"] else
             ", %d of them asked (--quick)" % a["covered"]))
        meths = [m for m in ("3CosAdd", "3CosMul") if m in a["methods"]]
        ok = [m for m in meths if "error" not in a["methods"][m]]
        for m in meths:
            if "error" in a["methods"][m]:
                p("%s: %s\n" % (m, a["methods"][m]["error"]))
        if ok:
            p("| section | questions |" + "".join(" %s attnkv | %s gensim |" % (m, m)
                                                 for m in ok))
            p("| --- | ---: |" + " ---: | ---: |" * len(ok))
            for sec in a["sections"]:
                s0 = a["methods"][ok[0]]["per_section"].get(sec)
                if not s0:
                    continue
                cells = ""
                for m in ok:
                    s = a["methods"][m]["per_section"][sec]
                    g = pct(s["gensim"], s["n"]) if "same" in a["methods"][m] else "-"
                    cells += " %s | %s |" % (pct(s["attnkv"], s["n"]), g)
                p("| %s | %d |%s" % (sec, s0["n"], cells))
            cells = ""
            for m in ok:
                mm = a["methods"][m]
                cells += " **%s** | **%s** |" % (pct(mm["attnkv_correct"], a["covered"]),
                                                 pct(mm.get("gensim_correct", 0), a["covered"])
                                                 if "same" in mm else "-")
            p("| total | %d |%s" % (a["covered"], cells))
            p("")
            p("| method | same answer as gensim | ties (float32) | different | attnkv s "
              "| gensim s |")
            p("| --- | ---: | ---: | ---: | ---: | ---: |")
            for m in ok:
                mm = a["methods"][m]
                p("| %s | %s | %s | %s | %.2f | %s |" % (
                    m, mm.get("same", "-"), mm.get("ties", "-"), mm.get("differ", "-"),
                    mm["attnkv_s"], "%.2f" % mm["gensim_s"] if "gensim_s" in mm else "-"))
            p("")
            p("attnkvd: pipelined batches of 256 over %d connection(s)%s." % (
                a["connections"], "; gensim: one most_similar / most_similar_cosmul call a "
                "question on a %d-word KeyedVectors" % a["restrict"]
                if any("gensim_s" in a["methods"][m] for m in ok) else ""))
            ev = a.get("gensim_evaluate_word_analogies")
            if ev:
                p("gensim's evaluate_word_analogies(restrict_vocab=%d): %.2f %% in %.1f s."
                  % (a["restrict"], 100 * ev["accuracy"], ev["seconds"]))
            nf = a.get("neighbors_form")
            if nf:
                p("NEIGHBORS b POSITIVE c NEGATIVE a EXCLUDEINPUT: %s" % (
                    nf["error"] if "error" in nf else "%d of %d answers equal ANALOGY's"
                    % (nf["equal"], nf["asked"])))
            p("")
    if "category" in res:
        c = res["category"]
        p("### Category task: QUERY against FGET, top-1 accuracy\n")
        p("%d categories, %d held-out members; TEMPERATURE under ATTENTION dot: %s.%s\n" % (
            c["categories"], c["held_out"], c["dot_temperature"],
            " FGET: %s." % c["fget_missing"] if c["fget_missing"] else ""))
        p("| store | attention | temperature | QUERY | FGET | FGET = float64 reference |")
        p("| --- | --- | --- | ---: | ---: | ---: |")
        for label, st in c["stores"].items():
            for row in st["rows"]:
                t = row["temperature"]
                p("| %s (%d entries) | %s | %s | %s | %s | %s |" % (
                    label, st["entries"], row["attention"],
                    "default" if t is None else t, acc_cell(row["query"]),
                    acc_cell(row.get("fget")),
                    "-" if "fget_equals_reference" not in row else
                    "%d / %d" % (row["fget_equals_reference"], row["fget"]["n"])))
        p("")
        rt = c["real_text"]
        p("### Real text: the held-out members in noisy phrases (3-exemplar store)\n")
        p("%d phrases such as %s.\n" % (c["phrases"], ", ".join(
            "`%s`" % x for x in c["phrase_examples"][:6])))
        p("| command | attention | weighting | UNKNOWN error | UNKNOWN skip |")
        p("| --- | --- | --- | ---: | ---: |")
        for row in rt["rows"]:
            p("| %s | %s | %s | %s | %s |" % (row["command"], row["attention"], row["weighting"],
                                            acc_cell(row["error"]), acc_cell(row["skip"])))
        p("")
        p("The same members as clean single words: %s.\n" % ", ".join(
            "%s %s" % (k, acc_cell(v)) for k, v in rt["clean"].items()))
        dm = c["doesntmatch"]
        if "error" in dm:
            p("DOESNTMATCH: %s\n" % dm["error"])
        else:
            p("DOESNTMATCH on %d four-word sets (three members, one intruder): attnkv %s%s%s.\n" % (
                dm["sets"], pct(dm["attnkv_correct"], dm["sets"]),
                ", gensim doesnt_match %s" % pct(dm["gensim_correct"], dm["sets"])
                if "gensim_correct" in dm else "",
                ", same answer %d of %d" % (dm["agree"], dm["sets"]) if "agree" in dm else ""))
    if "timing" in res:
        p("### FGET against QUERY latency (one request at a time, COUNT 1, taking turns)\n")
        p("| store | QUERY p50 / p99 | FGET p50 / p99 | QUERY / FGET (p50) "
          "| PING p50 (the round trip) |")
        p("| --- | ---: | ---: | ---: | ---: |")
        for row in res["timing"]:
            def cell(x):
                return x["error"] if "error" in x else "%.3f / %.3f ms" % (x["p50_ms"], x["p99_ms"])
            q, f = row["QUERY"], row["FGET"]
            ratio = "-" if "error" in q or "error" in f else "%.1f x" % (q["p50_ms"] / f["p50_ms"])
            pg = row.get("PING", {})
            p("| %s (%d entries) | %s | %s | %s | %s |" % (
                row["store"], row["entries"], cell(q), cell(f), ratio,
                "%.3f ms" % pg["p50_ms"] if "p50_ms" in pg else "-"))
        p("")


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPUs, %s" % (os.cpu_count() or 0, model or platform.machine())


def buildtype(exe):
    """The meson buildtype of the build directory holding exe, or None."""
    d = os.path.dirname(exe)
    while d != os.path.dirname(d):
        info = os.path.join(d, "meson-info", "intro-buildoptions.json")
        if os.path.exists(info):
            try:
                with open(info) as f:
                    return next((o["value"] for o in json.load(f) if o["name"] == "buildtype"),
                                None)
            except (OSError, ValueError, KeyError):
                return None
        d = os.path.dirname(d)
    return None


def revision(where):
    """The short commit of the repository holding `where`."""
    try:
        rev = subprocess.run(["git", "-C", where, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", where, "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (modified)" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description="Answer quality of attnkvd against human "
                                 "judgements and gensim (see the top of this file).")
    ap.add_argument("--build", help="build directory with src/server/attnkvd "
                    "(default: build-release/, else build/; or $AKV_ATTNKVD)")
    ap.add_argument("--vectors", default=os.environ.get("AKV_VECTORS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "attnkv", "glove-6B-100d.akv"), help="the vocabulary file (default: $AKV_VECTORS or "
        "the fetch-vectors cache)")
    ap.add_argument("--eval", default=os.environ.get("AKV_EVAL_DATA") or os.path.join(
        os.path.dirname(REPO), "shared", "data", "eval"),
        help="directory with word-sim/ and analogy/ (default: $AKV_EVAL_DATA or "
        "../shared/data/eval beside the repository)")
    ap.add_argument("--only", default="wordsim,analogy,category,timing",
                    help="comma-separated parts to run (default: all)")
    ap.add_argument("--connections", type=int, default=16,
                    help="connections for the pipelined analogy run (default 16: the daemon "
                    "runs a connection's commands one at a time, and requests of several "
                    "connections share one ranking scan)")
    ap.add_argument("--no-gensim", action="store_true", help="skip the gensim columns")
    ap.add_argument("--quick", action="store_true",
                    help="a twentieth of the analogies, fewer timed requests (to test the script)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    ap.add_argument("--table", metavar="FILE",
                    help="only print the tables of a run saved with --json")
    a = ap.parse_args()
    if a.table:
        try:
            with open(a.table) as f:
                print_tables(json.load(f))
        except (OSError, ValueError, KeyError) as e:
            log("%s: not a saved run: %s" % (a.table, e))
            return 1
        return 0
    parts = [x.strip() for x in a.only.split(",") if x.strip()]
    for x in parts:
        if x not in ("wordsim", "analogy", "category", "timing"):
            ap.error("unknown part %r" % x)

    KeyedVectors, gver = (None, None) if a.no_gensim else load_gensim()
    if KeyedVectors is None and not a.no_gensim:
        log("gensim is not installed (python3-gensim; a benchmark-only package, not in "
            "scripts/deps): the gensim columns are skipped")
    daemon = None
    try:
        if not os.path.exists(a.vectors):
            raise Fatal(f"no vectors at {a.vectors} (run scripts/fetch-vectors)")
        for sub in ("word-sim", "analogy"):
            if not os.path.isdir(os.path.join(a.eval, sub)):
                raise Fatal(f"no {sub}/ in {a.eval} (give --eval DIR)")
        exe = find_daemon(a.build)
        log(f"starting {exe}")
        daemon = Daemon(exe, a.vectors)
        log(f"attnkvd ready on port {daemon.port}")
        voc = Vocab(a.vectors)
        res = {"meta": {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(), "revision": revision(os.path.dirname(exe)), "daemon": exe,
            "buildtype": buildtype(exe),
            "vectors": a.vectors, "words": voc.count, "dim": voc.dim,
            "gensim": gver, "command": " ".join(["bench/quality.py"] + sys.argv[1:]),
            "loadavg_start": os.getloadavg()[0]}}
        cats = category_data()
        eq, n, note = check_same_vectors(client(daemon.port, decode=False), voc,
                                         [w for c in cats for w in c["exemplars"] + c["held"]])
        res["same_vectors"] = note if eq is None else (
            "EMBED w RAW equals the file's row for %d of %d words" % (eq, n))
        t0 = time.perf_counter()
        if "wordsim" in parts:
            bench_wordsim(daemon.port, voc, a.eval, None if KeyedVectors is None else
                          keyed_vectors(KeyedVectors, voc), res)
        if "analogy" in parts:
            bench_analogy(daemon.port, voc, a.eval, KeyedVectors, a.connections, a.quick, res)
        if "category" in parts:
            bench_category(daemon.port, voc, KeyedVectors, res)
        if "timing" in parts:
            bench_timing(daemon.port, voc, a.quick, res)
        res["meta"]["seconds"] = time.perf_counter() - t0
        res["meta"]["loadavg_end"] = os.getloadavg()[0]
        if daemon.proc.poll() is not None:
            raise Fatal("attnkvd died during the run:\n" + daemon.log()[-3000:])
    except Fatal as e:
        log(str(e))
        return 1
    except redis.ConnectionError as e:
        log("lost the connection to attnkvd: %s\n%s" % (e, daemon.log()[-3000:] if daemon else ""))
        return 1
    finally:
        if daemon is not None:
            daemon.close()
    if a.json:
        json.dump(res, sys.stdout, indent=1, default=str)
        print()
    else:
        print_tables(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
