"""Writes the iris-like data set: python3 make_data.py DIR [--rows N] [--files K]

Rows x1 = i % 7, x2 = (i * 3) % 11, y = 2*x1 + x2, as tools/demo (2,000 rows) and
tests/integration/test_run.py (500 rows) write them; with --files K the rows are
split over K files part-000.csv ... in order (the row numbering across sorted files
stays the same), to try sharding over several files.
"""
import argparse
import os

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("--rows", type=int, default=2000)
p.add_argument("--files", type=int, default=1)
args = p.parse_args()

rows = [f"{i % 7},{(i * 3) % 11},{(i % 7) * 2 + (i * 3) % 11}" for i in range(args.rows)]
os.makedirs(args.dir, exist_ok=True)
if args.files == 1:
    chunks = [("train.csv", rows)]
else:
    step = -(-len(rows) // args.files)
    chunks = [(f"part-{k:03d}.csv", rows[k * step:(k + 1) * step]) for k in range(args.files)]
for name, part in chunks:
    with open(os.path.join(args.dir, name), "w") as f:
        f.write("\n".join(["x1,x2,y"] + part) + "\n")
