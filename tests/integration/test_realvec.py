#!/usr/bin/env python3
"""daemon-realvec: the README's example store on the default vectors.

GloVe 6B 100d, from $AKV_VECTORS or the cache scripts/fetch-vectors fills
(~/.cache/attnkv/glove-6B-100d.akv); exits 77 (skipped) when they are
absent, unless AKV_REQUIRE_VECTORS=1 (then it fails).

Run alone: meson test -C build daemon-realvec, or
  AKV_ATTNKVD=build/src/server/attnkvd AKV_BUILD_ROOT=build \
  python3 tests/integration/test_realvec.py [-k NAME]
(environment: see akvtest.py).
"""

import shutil
import sys

import akvtest
from akvtest import is_err, run_tool


EXAMPLE = {"one": "number", "cat": "animal", "dog": "animal", "ball": "toy", "sphere": "shape",
           "male": "gender"}
EXPECTED = {
    "female": ["gender", "ethnicity", "orientation", "racial", "mainstreaming"],
    "seven": ["number", "numbers", "only", "addition", "ten"],
    "seventy": ["number", "numbers", "only", "addition", "one"],
    "rhombus": ["shape", "shaped", "shapes", "rather", "structure"],
    "parabola": ["shape", "shaped", "shapes", "structure", "rather"],
    "cylinder": ["shape", "same", "example", "instance", "though"],
}


@akvtest.test("realvec")
def test_readme_example(env):
    c = env.daemon.client()
    info = c.cmd("INFO", "vectors")
    assert "vector_dim:100" in info, info
    c.cmd("FLUSHALL")
    for k, v in EXAMPLE.items():
        assert c.cmd("SET", k, v) == "OK"
    for q, want in EXPECTED.items():
        got = c.cmd("QUERY", q)
        assert got == want, (q, got, want)
    # The same through redis-cli, as the README shows it.
    if shutil.which("redis-cli"):
        r = run_tool(["redis-cli", "-p", str(env.daemon.port), "QUERY", "rhombus"])
        assert r.stdout.split() == EXPECTED["rhombus"], r
    got = c.cmd("EXPLAIN", "female", "COUNT", 1)
    assert got[0][0] == "male" and got[0][1] == "gender", got
    assert c.cmd("NEIGHBORS", "king", "COUNT", 3)[0] == "king"
    # The README's FGET, payload and ANALOGY lines.
    got = c.cmd("FGET", "kitten", "WITHSCORES", "COUNT", 2)
    assert got[0::2] == ["animal", "gender"] and got[1] == "0.9943035160946523", got
    assert c.cmd("SET", "dog food", '{"answer": 42}', "PAYLOAD") == "OK"
    assert c.cmd("FGET", "puppy food", "COUNT", 1) == ['{"answer": 42}']
    assert c.cmd("DEL", "dog food") == 1
    assert c.cmd("ANALOGY", "man", "king", "woman", "COUNT", 3) == ["queen", "monarch", "throne"]
    r = c.cmd("SET", "rhombuss", "shape")
    assert is_err(r, "unknown word 'rhombuss' (did you mean 'rhombus'?)"), r
    c.cmd("FLUSHALL")
    c.close()


if __name__ == "__main__":
    sys.exit(akvtest.main("realvec", make_env=akvtest.real_vectors_env))
