"""Fits y = a*x1 + b*x2 + c by gradient descent (python3 standard library only)."""
import argparse
import csv
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--epochs", type=int, default=100)
parser.add_argument("--model", required=True)
args = parser.parse_args()

rows = []
for name in sorted(os.listdir(args.data)):
    if name.endswith(".csv"):
        with open(os.path.join(args.data, name), newline="") as f:
            rows += [(float(r["x1"]), float(r["x2"]), float(r["y"])) for r in csv.DictReader(f)]
print(f"read {len(rows)} rows from {args.data}")

a = b = c = 0.0
rate = 0.01
for epoch in range(args.epochs):
    ga = gb = gc = loss = 0.0
    for x1, x2, y in rows:
        err = a * x1 + b * x2 + c - y
        ga, gb, gc, loss = ga + err * x1, gb + err * x2, gc + err, loss + err * err
    n = len(rows)
    a, b, c = a - rate * ga / n, b - rate * gb / n, c - rate * gc / n
    if epoch % 50 == 0 or epoch == args.epochs - 1:
        print(f"epoch {epoch}: mse {loss / n:.4f}")

os.makedirs(args.model, exist_ok=True)
with open(os.path.join(args.model, "model.json"), "w") as f:
    json.dump({"a": a, "b": b, "c": c, "rows": len(rows)}, f)
os.makedirs("outputs", exist_ok=True)
with open("outputs/metrics.json", "w") as f:
    json.dump({"mse": loss / n}, f)
print(f"model: y = {a:.3f}*x1 + {b:.3f}*x2 + {c:.3f}")
