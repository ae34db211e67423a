#!/usr/bin/env python3
"""gpu-profile: where the GPU time of one step goes, kernel by kernel (Nsight Compute).

  gpu-profile.py --bench-model PATH/cs-bench-model [--batch 10] [--modes infer,train]

Runs cs-bench-model on gpu-bench.py's inputs (the reference configuration, batch 10) for
one step of each mode under `ncu --metrics gpu__time_duration.sum`, and prints per kernel
name: calls, total GPU ms and share of the step. ncu replays every kernel alone, so the
sum is the kernels' own time, without launch gaps; compare it with the step's wall time
from gpu-bench.py to see how much the launches cost."""

import argparse
import collections
import csv
import importlib.machinery
import io
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def profile(bench_model, weights, inputs, mode, ncu):
    cmd = [ncu, "--clock-control", "none", "--metrics", "gpu__time_duration.sum", "--csv",
           "--print-units", "base", bench_model, "model", "--weights", weights,
           "--inputs", inputs, "--mode", mode, "--backend", "cuda", "--threads", "4",
           "--iters", "1", "--warmup", "0"]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    start = out.find('"ID"')
    if start < 0:
        raise SystemExit("gpu-profile: ncu printed no table:\n" + out[-2000:])
    per = collections.OrderedDict()
    for row in csv.DictReader(io.StringIO(out[start:])):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = row["Kernel Name"].split("(")[0].replace("void ", "")
        ns = float(row["Metric Value"].replace(",", ""))
        calls, total = per.get(name, (0, 0.0))
        per[name] = (calls + 1, total + ns)
    return per


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench-model", required=True)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--modes", default="infer,train")
    parser.add_argument("--ncu", default="ncu")
    args = parser.parse_args()
    path = os.path.join(ROOT, "bench", "engine-vs-pytorch")
    evp = importlib.machinery.SourceFileLoader("engine_vs_pytorch", path).load_module()
    with tempfile.TemporaryDirectory(prefix="cs-gpu-profile-") as tmp:
        weights, inputs, _, _, _ = evp.make_inputs(tmp, "reference", args.batch, 0)
        for mode in args.modes.split(","):
            per = profile(args.bench_model, weights, inputs, mode, args.ncu)
            total = sum(t for _, t in per.values())
            print("%s, batch %d: %d kernels, %.3f ms of GPU time" % (
                mode, args.batch, sum(c for c, _ in per.values()), total / 1e6))
            for name, (calls, t) in sorted(per.items(), key=lambda kv: -kv[1][1]):
                print("  %6.3f ms %5.1f %%  %4d x  %s" % (t / 1e6, 100 * t / total, calls,
                                                       name[:90]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
