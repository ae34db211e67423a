#!/usr/bin/env python3
"""compare-detect: two `cordscope-cli detect` JSON outputs (CPU and CUDA backends) agree.

  compare-detect.py CPU.json CUDA.json [--tol 1e-3]

Every number outside "timings" (patient_score, segment scores and bounds, the per-row
curve, reconstruction quality) must agree within tol (absolute); strings and integers
other than the backend name must be equal. Prints the largest difference; exit 1 if off."""

import argparse
import json
import sys


def walk(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            out.append((float("inf"), path + " keys %s vs %s" % (sorted(a), sorted(b))))
            return
        for k in a:
            if k in ("timings", "backend"):
                continue
            walk(a[k], b[k], path + "." + k, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append((float("inf"), path + " lengths %d vs %d" % (len(a), len(b))))
            return
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, "%s[%d]" % (path, i), out)
    elif isinstance(a, bool) or isinstance(a, str) or a is None:
        if a != b:
            out.append((float("inf"), "%s: %r vs %r" % (path, a, b)))
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        out.append((abs(a - b), "%s: %.9g vs %.9g" % (path, a, b)))
    else:
        out.append((float("inf"), "%s: %r vs %r" % (path, a, b)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cpu")
    parser.add_argument("cuda")
    parser.add_argument("--tol", type=float, default=1e-3)
    args = parser.parse_args()
    with open(args.cpu) as f:
        cpu = json.load(f)
    with open(args.cuda) as f:
        cuda = json.load(f)
    cpu = cpu if isinstance(cpu, list) else [cpu]
    cuda = cuda if isinstance(cuda, list) else [cuda]
    diffs = []
    walk(cpu, cuda, "", diffs)
    scores = ["%s %.4f/%.4f" % (c.get("case"), c.get("patient_score", float("nan")),
                                g.get("patient_score", float("nan")))
              for c, g in zip(cpu, cuda)]
    worst = max(diffs) if diffs else (0.0, "nothing compared")
    bad = [d for d in diffs if not d[0] <= args.tol]
    print("detect parity: %d cases (patient score cpu/cuda: %s); %d values, largest "
          "difference %.3g at %s; %s (tolerance %g)"
          % (len(cpu), ", ".join(scores), len(diffs), worst[0], worst[1],
             "OK" if not bad else "%d OFF" % len(bad), args.tol))
    for d in bad[:10]:
        print("  off: %s" % d[1])
    print("detect inference time (s, cpu / cuda): %s"
          % ", ".join("%s %.3f / %.3f" % (c.get("case"), c["timings"]["inference_s"],
                                          g["timings"]["inference_s"])
                      for c, g in zip(cpu, cuda) if "timings" in c and "timings" in g))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
