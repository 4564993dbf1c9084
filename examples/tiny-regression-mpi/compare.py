"""Compares two tiny-regression models: python3 compare.py MODEL_A.json MODEL_B.json

Exit 0 when both were fitted on the same number of rows and a, b and c agree within
a relative tolerance of 1e-9 (with 1e-12 absolute, for a value at 0); exit 1 when
they differ (each difference is printed); exit 2 when a file cannot be read.
Used to check that the data-parallel train_mpi.py gives train.py's model.
"""
import json
import math
import sys

REL, ABS = 1e-9, 1e-12


def load(path):
    try:
        with open(path) as f:
            m = json.load(f)
        return {k: m[k] for k in ("a", "b", "c", "rows")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"compare.py: {path}: {e!r}", file=sys.stderr)
        sys.exit(2)


def main():
    if len(sys.argv) != 3:
        print("usage: compare.py MODEL_A.json MODEL_B.json", file=sys.stderr)
        sys.exit(2)
    x, y = load(sys.argv[1]), load(sys.argv[2])
    bad = []
    if x["rows"] != y["rows"]:
        bad.append(f"rows: {x['rows']} != {y['rows']}")
    for k in ("a", "b", "c"):
        if not math.isclose(x[k], y[k], rel_tol=REL, abs_tol=ABS):
            rel = abs(x[k] - y[k]) / max(abs(x[k]), abs(y[k]))
            bad.append(f"{k}: {x[k]!r} vs {y[k]!r} (relative difference {rel:.3g})")
    for line in bad:
        print(line)
    if bad:
        sys.exit(1)
    worst = max(abs(x[k] - y[k]) / max(abs(x[k]), abs(y[k]), ABS) for k in ("a", "b", "c"))
    print(f"same model (rows {x['rows']}; a, b, c agree within relative {worst:.3g})")


main()
