#!/usr/bin/env python3
"""Checks that every #include "..." of the C sources points down the rings of
docs/internals.md (a folder uses only itself and the folders below it) and that
no source folder is left out of the table. Usage: layers.py SOURCE_DIR"""
import pathlib
import re
import sys

# Highest first: a file may include headers of its own ring and of any later one.
RINGS = ["tools/cli", "tools/launcher", "tools/lib", "fs", "cache", "cache/store",
         "auth", "auth/base"]


def ring_of(path):
    """The index of the longest ring folder holding path, or None."""
    best = None
    for index, folder in enumerate(RINGS):
        if str(path).startswith(folder + "/"):
            if best is None or len(folder) > len(RINGS[best]):
                best = index
    return best


def main():
    top = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    include = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    errors = []
    for folder in ("tools", "fs", "cache", "auth"):
        for src in sorted((top / folder).rglob("*.[ch]")):
            rel = src.relative_to(top)
            mine = ring_of(rel)
            if mine is None:
                errors.append(f"{rel}: in no ring of tests/layers.py")
                continue
            for lineno, line in enumerate(src.read_text().splitlines(), 1):
                m = include.match(line)
                if not m:
                    continue
                theirs = ring_of(pathlib.PurePath(m.group(1)))
                if theirs is None:
                    errors.append(f"{rel}:{lineno}: includes {m.group(1)}, in no ring")
                elif theirs < mine:
                    errors.append(f"{rel}:{lineno}: includes {m.group(1)} from "
                                  f"{RINGS[theirs]}/, a ring above {RINGS[mine]}/")
    for e in errors:
        print(e)
    print(f"layers: {len(errors)} upward or unplaced includes")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
