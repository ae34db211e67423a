#!/usr/bin/python3
"""cordscope-cli pretrain on a few small phantoms: progress lines with a finite, falling
loss; a safetensors file with exactly the contract's tensors and the configuration in
its metadata, readable by the C loader; the same bytes for the same seed; Ctrl-C keeps
the last completed epoch; a folder with no case is refused with no file written.
Needs only numpy (no torch). Usage: test_cli_pretrain.py SAFETENSORS_TOOL"""

import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)

CLI = os.environ["CORDSCOPE_CLI"]
TOOL = sys.argv[1]
CONFIG = {"img_size": 96, "patch": 8, "in_chans": 1, "enc_dim": 32, "enc_depth": 2,
          "enc_heads": 4, "dec_dim": 16, "dec_depth": 1, "dec_heads": 2, "mlp_ratio": 4.0,
          "mask_ratio": 0.75, "context_margin": 1}
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)\s+loss ([0-9.eE+-]+|nan|inf)\b.*?([0-9.]+) images/s"
                        r"\s+ETA (\S+)")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def contract_tensors(c):
    """(name, shape) in the contract's order for config c."""
    e, d, pp = c["enc_dim"], c["dec_dim"], c["patch"] ** 2
    out = [("cls_token", [1, 1, e]), ("mask_token", [1, 1, d]),
           ("patch_embed.weight", [e, pp]), ("patch_embed.bias", [e])]

    def blocks(prefix, depth, dim):
        hidden = int(dim * c["mlp_ratio"])
        for i in range(depth):
            p = "%s.%d." % (prefix, i)
            out.extend([(p + "norm1.weight", [dim]), (p + "norm1.bias", [dim]),
                        (p + "attn.qkv.weight", [3 * dim, dim]), (p + "attn.qkv.bias", [3 * dim]),
                        (p + "attn.proj.weight", [dim, dim]), (p + "attn.proj.bias", [dim]),
                        (p + "norm2.weight", [dim]), (p + "norm2.bias", [dim]),
                        (p + "mlp.fc1.weight", [hidden, dim]), (p + "mlp.fc1.bias", [hidden]),
                        (p + "mlp.fc2.weight", [dim, hidden]), (p + "mlp.fc2.bias", [dim])])

    blocks("blocks", c["enc_depth"], e)
    out.extend([("norm.weight", [e]), ("norm.bias", [e]),
                ("decoder_embed.weight", [d, e]), ("decoder_embed.bias", [d])])
    blocks("decoder_blocks", c["dec_depth"], d)
    for head in ("head_img", "head_edge"):
        out.extend([(head + ".norm.weight", [d]), (head + ".norm.bias", [d]),
                    (head + ".fc.weight", [pp, d]), (head + ".fc.bias", [pp])])
    return out


def read_safetensors(path):
    """(header without metadata, metadata, raw data bytes), plain struct + json."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    return header, header.pop("__metadata__", {}), raw[8 + n:]


def pretrain(data, out, cfg, *extra):
    return [CLI, "pretrain", data, "--out", out, "--config", cfg, "--batch", "4",
            "--threads", "2", "--seed", "5", "--backend", "cpu"] + list(extra)


with tempfile.TemporaryDirectory(prefix="cs-pretrain-") as tmp:
    data = os.path.join(tmp, "data")
    subprocess.run([CLI, "phantom", "--out", data, "--count", "3", "--size", "small",
                    "--seed", "7", "--quiet"], check=True)
    cfg = os.path.join(tmp, "u2ad-test.json")
    with open(cfg, "w") as f:
        json.dump(CONFIG, f)

    model = os.path.join(tmp, "model.safetensors")
    run = subprocess.run(pretrain(data, model, cfg, "--epochs", "4"), capture_output=True,
                         text=True)
    print(run.stdout + run.stderr)
    check(run.returncode == 0, "pretrain exits 0 (got %d)" % run.returncode)
    check(re.search(r"^backend: cpu", run.stdout, re.M) is not None, "says which backend")
    epochs = [EPOCH_LINE.match(line) for line in run.stdout.splitlines()
              if line.startswith("epoch ")]
    check(len(epochs) == 4 and all(epochs), "one progress line per epoch (%d)" % len(epochs))
    losses = [float(m.group(3)) for m in epochs if m]
    check(all(math.isfinite(v) and 0 < v < 1 for v in losses), "losses finite in (0,1): %s"
          % losses)
    check(len(losses) == 4 and losses[-1] < losses[0], "loss falls: %s" % losses)
    check(all(float(m.group(4)) > 0 for m in epochs if m), "images/s > 0")

    header, meta, body = read_safetensors(model)
    names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
    expect = contract_tensors(CONFIG)
    check(names == [n for n, _ in expect], "tensors are the contract's, in its order")
    check(all(header[n]["shape"] == s and header[n]["dtype"] == "F32" for n, s in expect
              if n in header), "shapes and dtype per the contract")
    check(meta.get("format") == "cordscope-u2ad" and meta.get("version") == "1",
          "metadata format/version")
    check(json.loads(meta.get("config", "{}")) == CONFIG, "metadata config == the JSON given")
    check(meta.get("epochs") == "4" and meta.get("seed") == "5", "metadata epochs and seed")
    values = np.frombuffer(body, dtype="<f4")
    check(bool(np.isfinite(values).all()), "all %d weights finite" % values.size)
    dump = subprocess.run([TOOL, "dump", model], capture_output=True, text=True)
    check(dump.returncode == 0 and len(json.loads(dump.stdout)["tensors"]) == len(expect),
          "the C loader reads it")
    load = subprocess.run([TOOL, "model", model], capture_output=True, text=True)
    check(load.returncode == 0, "it loads into the engine with the model's tensor table %s"
          % (load.stdout + load.stderr).strip())

    again = os.path.join(tmp, "again.safetensors")
    subprocess.run(pretrain(data, again, cfg, "--epochs", "4", "--quiet"), check=True)
    check(read_safetensors(again)[2] == body, "same seed, same weights (bit for bit)")

    # Ctrl-C after the first epoch: exit 130, the weights of the last completed epoch.
    stopped = os.path.join(tmp, "stopped.safetensors")
    proc = subprocess.Popen(pretrain(data, stopped, "tiny", "--epochs", "100000"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = 0
    for line in proc.stdout:
        m = EPOCH_LINE.match(line)
        if m:
            last = int(m.group(1))
            proc.send_signal(signal.SIGINT)
            break
    rest, err = proc.communicate(timeout=120)
    for m in map(EPOCH_LINE.match, rest.splitlines()):
        last = int(m.group(1)) if m else last
    check(proc.returncode == 130, "Ctrl-C exits 130 (got %s; %s)" % (proc.returncode,
                                                                    err.strip()))
    saved = read_safetensors(stopped)[1] if os.path.exists(stopped) else {}
    check(saved.get("epochs") == str(last), "Ctrl-C saved epoch %s (metadata says %s)"
          % (last, saved.get("epochs")))

    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    nothing = os.path.join(tmp, "nothing.safetensors")
    bad = subprocess.run(pretrain(empty, nothing, "tiny"), capture_output=True, text=True)
    check(bad.returncode != 0 and empty in bad.stderr and not os.path.exists(nothing),
          "a folder with no case is refused, naming it: %s" % bad.stderr.strip())

sys.exit(1 if failures else 0)
