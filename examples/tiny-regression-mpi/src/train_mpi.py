"""Fits y = a*x1 + b*x2 + c by full-batch gradient descent, data parallel with MPI.

The same model as ../tiny-regression/src/train.py, trained by several processes
(python3 standard library and mpi4py). Sharding: every rank lists the .csv files
of --data in sorted order, as train.py does, and numbers their rows 0, 1, 2, ...
across all files in that order; rank r keeps the rows i with i % size == r. (Rows,
not files: the example data set is a single train.csv.) Each epoch every rank sums
its rows' gradients, squared errors and row count, and one Allreduce adds these
sums over all ranks, so every rank applies the same full-batch update: the model
is train.py's up to the order of the floating point additions.

Rank 0 prints train.py's progress lines and writes the model (--model/model.json)
and outputs/metrics.json. Started without mpirun/srun it runs as one rank.
"""
import argparse
import csv
import json
import os
import sys
from array import array

from mpi4py import MPI

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--epochs", type=int, default=100)
parser.add_argument("--model", required=True)
args = parser.parse_args()

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()


def allreduce_sum(values):
    """Element-wise sum over all ranks. (comm.allreduce(list, op=MPI.SUM) would
    concatenate the lists: on Python objects SUM is '+'.) Doubles hold row counts
    exactly up to 2**53."""
    buf = array("d", values)
    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
    return list(buf)


rows = []
i = 0
for name in sorted(os.listdir(args.data)):
    if name.endswith(".csv"):
        with open(os.path.join(args.data, name), newline="") as f:
            for r in csv.DictReader(f):
                if i % size == rank:
                    rows.append((float(r["x1"]), float(r["x2"]), float(r["y"])))
                i += 1
(total,) = allreduce_sum([len(rows)])
n = int(total)
if rank == 0:
    print(f"read {n} rows from {args.data}")
if n == 0:
    if rank == 0:
        print(f"no rows in the .csv files of {args.data}", file=sys.stderr)
    sys.exit(1)

a = b = c = 0.0
rate = 0.01
for epoch in range(args.epochs):
    ga = gb = gc = loss = 0.0
    for x1, x2, y in rows:
        err = a * x1 + b * x2 + c - y
        ga, gb, gc, loss = ga + err * x1, gb + err * x2, gc + err, loss + err * err
    ga, gb, gc, loss = allreduce_sum([ga, gb, gc, loss])
    a, b, c = a - rate * ga / n, b - rate * gb / n, c - rate * gc / n
    if rank == 0 and (epoch % 50 == 0 or epoch == args.epochs - 1):
        print(f"epoch {epoch}: mse {loss / n:.4f}")

# Every rank must hold the same parameters (MPI gives all ranks the same sum);
# a rank that does not would mean the ranks trained different models.
models = comm.gather((a, b, c), root=0)
if rank == 0:
    odd = [r for r, m in enumerate(models) if m != (a, b, c)]
    if odd:
        print(f"ranks {odd} ended with other parameters than rank 0: {models}", file=sys.stderr)
        comm.Abort(1)
    os.makedirs(args.model, exist_ok=True)
    with open(os.path.join(args.model, "model.json"), "w") as f:
        json.dump({"a": a, "b": b, "c": c, "rows": n, "ranks": size}, f)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/metrics.json", "w") as f:
        json.dump({"mse": loss / n}, f)
    print(f"model: y = {a:.3f}*x1 + {b:.3f}*x2 + {c:.3f}")
