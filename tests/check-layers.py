#!/usr/bin/env python3
"""Checks the layer rules of docs/design.md:
  - a file of src/LAYER/ includes only headers of its own layer, of the
    layers below it, and the public include/attnkv/ headers (which belong
    to the engine layer);
  - a folder's private headers (*-impl.h, *-kernels.h, *-format.h) are
    included only from that folder;
  - no meson.build outside src/ names a source file of src/ (they link the
    folders' dependency objects instead).
Prints every breach and exits 1 if there is one.

    python3 tests/check-layers.py [SOURCE_ROOT]
"""
import pathlib
import re
import sys

ORDER = ["util", "engine", "proto", "persist", "cluster", "server"]
# What each layer may include besides itself and the layers below it.
RANK = {name: i for i, name in enumerate(ORDER)}
RANK["attnkv"] = RANK["engine"]
# proto is a layer of its own above the engine but does not use it.
FORBIDDEN = {"proto": {"engine", "attnkv"}, "util": set()}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
PRIVATE = re.compile(r"-(impl|kernels|format)\.h$")
SRC_FILE = re.compile(r"""['"](?:\.\./)*src/[^'"]*\.c['"]""")


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    src = root / "src"
    bad = []
    files = sorted(p for p in src.rglob("*") if p.suffix in (".c", ".h"))
    for path in files:
        rel = path.relative_to(src)
        if len(rel.parts) != 2 or rel.parts[0] not in RANK:
            bad.append(f"src/{rel}: not inside a layer folder ({', '.join(ORDER)})")
            continue
        layer = rel.parts[0]
        for inc in INCLUDE.findall(path.read_text()):
            top = inc.split("/")[0] if "/" in inc else None
            if top is None or top not in RANK:
                bad.append(f"src/{rel}: includes \"{inc}\", which names no layer")
            elif RANK[top] > RANK[layer] or top in FORBIDDEN.get(layer, ()):
                bad.append(f"src/{rel}: {layer} includes \"{inc}\" of layer {top}")
            elif PRIVATE.search(inc) and top != layer:
                bad.append(f"src/{rel}: includes \"{inc}\", private to src/{top}/")
    for path in sorted((root / "include" / "attnkv").glob("*.h")):
        for inc in INCLUDE.findall(path.read_text()):
            if not inc.startswith("attnkv/"):
                bad.append(f"include/attnkv/{path.name}: includes \"{inc}\" outside the API")
    for path in sorted(root.rglob("meson.build")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("src", "subprojects") or rel.parts[0].startswith("build"):
            continue
        for m in SRC_FILE.findall(path.read_text()):
            bad.append(f"{rel}: names {m}, a file of src/ (link its dependency object)")
    for path in sorted((root / "tests").rglob("*.[ch]")) + sorted((root / "fuzz").glob("*.c")):
        for inc in INCLUDE.findall(path.read_text()):
            if PRIVATE.search(inc):
                bad.append(f"{path.relative_to(root)}: includes \"{inc}\", private to src/")
    for line in bad:
        print(line)
    print(f"{len(files)} files of src/ checked, {len(bad)} breaches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
