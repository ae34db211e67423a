#!/usr/bin/env python3
"""cuda-to-cpp: turns one of the backend's .cu files into C++ for the CPU emulation
(cuda_runtime.h beside this file): every launch  K<<<grid, block>>> (args);  becomes
cs_emu_launch (dim3 (grid), dim3 (block), cooperative, "K", [&] () { K (args); });
A kernel is cooperative (its threads run as coroutines) when its body synchronises or
shuffles, or when the launch names a kernel this file does not define (a macro argument).

  cuda-to-cpp.py IN.cu OUT.cpp"""

import re
import sys

MARKERS = ("__syncthreads", "__shfl", "warp_sum", "block_range")


def kernel_bodies(text):
    """{kernel name: its text up to the next top-level definition}"""
    bodies = {}
    for m in re.finditer(r"__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?\n?(\w+)\s*\(",
                         text):
        end = re.compile(r"^(static|template|gboolean|extern|#define)\b",
                         re.M).search(text, m.end())
        bodies[m.group(1)] = text[m.end():end.start() if end else len(text)]
    return bodies


def split_top(s):
    """s split at its top-level commas"""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def convert(text):
    bodies = kernel_bodies(text)
    out, pos = [], 0
    launch = re.compile(r"(\b[A-Za-z_]\w*(?:<[^<>;]*>)?)\s*<<<(.*?)>>>\s*\(", re.S)
    while True:
        m = launch.search(text, pos)
        if not m:
            out.append(text[pos:])
            return "".join(out)
        name = m.group(1)
        base = name.split("<")[0]
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        args = text[m.end():i - 1]
        if not text[i:].lstrip().startswith(";"):
            raise SystemExit("cuda-to-cpp: launch of %s not followed by ';'" % name)
        semi = text.index(";", i)
        config = split_top(m.group(2))
        if len(config) != 2:
            raise SystemExit("cuda-to-cpp: launch of %s: expected <<<grid, block>>>" % name)
        coop = base not in bodies or any(k in bodies[base] for k in MARKERS)
        out.append(text[pos:m.start()])
        out.append("cs_emu_launch (dim3 (%s), dim3 (%s), %s, \"%s\", [&] () { %s (%s); })"
                   % (config[0], config[1], "true" if coop else "false", base, name, args))
        pos = semi


def main():
    with open(sys.argv[1]) as f:
        text = f.read()
    with open(sys.argv[2], "w") as f:
        f.write('#line 1 "%s"\n' % sys.argv[1])
        f.write(convert(text))


if __name__ == "__main__":
    main()
