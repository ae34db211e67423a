#!/usr/bin/python3
"""Cross-check: a safetensors file our C writer makes is read by our Python reader with
the same values, and a file the Python writer makes is read by the C loader alike."""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import numpy as np
    import u2ad_ref
except ImportError as e:  # torch or numpy not installed: nothing to compare with
    print("skip: %s" % e)
    sys.exit(77)

tool = sys.argv[1]
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += 0 if ok else 1


with tempfile.TemporaryDirectory() as tmp:
    # C writes, Python reads.
    ours = os.path.join(tmp, "c.safetensors")
    subprocess.run([tool, "write", ours], check=True)
    raw = open(ours, "rb").read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    check(hlen % 8 == 0 and raw[8 + hlen - 1:8 + hlen] in (b" ", b"}"), "header padded to 8")
    tensors, meta = u2ad_ref.safetensors_read(ours)
    check(list(tensors) == ["cls_token", "blocks.0.attn.qkv.weight", "norm.bias"],
          "tensor order %s" % list(tensors))
    check([list(t.shape) for t in tensors.values()] == [[1, 1, 5], [6, 7], [3]], "shapes")
    expect = np.array([math.sin(i) * math.pow(10.0, i % 7 - 3) for i in range(50)],
                      dtype=np.float32)
    got = np.concatenate([t.reshape(-1) for t in tensors.values()])
    check(np.array_equal(got, expect), "values bit-equal (max diff %g)"
          % float(np.abs(got - expect).max()))
    check(meta == {"format": "cordscope-u2ad", "version": "1", "config": '{"img_size": 16}',
                   "note": 'caf\u00e9 "q"'}, "metadata %r" % meta)

    # Python writes, C reads.
    theirs = os.path.join(tmp, "py.safetensors")
    rng = np.random.default_rng(3)
    written = {"a.weight": rng.standard_normal((4, 9)).astype(np.float32),
               "b": (rng.standard_normal(7) * 1e-30).astype(np.float32),
               "c.bias": np.array([3.4e38, -1.2e-38, 0.0], dtype=np.float32)}
    u2ad_ref.safetensors_write(theirs, written, {"format": "cordscope-u2ad", "version": "1"})
    out = subprocess.run([tool, "dump", theirs], check=True, capture_output=True, text=True)
    dump = json.loads(out.stdout)
    check([t["name"] for t in dump["tensors"]] == list(written), "C sees python's order")
    for t in dump["tensors"]:
        want = written[t["name"]]
        vals = np.array(t["values"], dtype=np.float32).reshape(t["shape"])
        check(list(want.shape) == t["shape"] and np.array_equal(vals, want),
              "C reads %s bit-equal" % t["name"])

    # A model the PyTorch reference saves loads into the engine, tensor table checked.
    import torch
    config = u2ad_ref.make_config(img_size=32, enc_dim=16, enc_depth=2, enc_heads=2,
                                  dec_dim=8, dec_depth=1, dec_heads=1)
    torch.manual_seed(4)
    model = u2ad_ref.U2AD(config)
    params = u2ad_ref.model_tensors(model)
    model_path = os.path.join(tmp, "torch-model.safetensors")
    u2ad_ref.safetensors_write(model_path, params, u2ad_ref.model_metadata(config))
    out = subprocess.run([tool, "model", model_path], capture_output=True, text=True)
    want_sum = float(sum(float(x) for v in params.values() for x in v.reshape(-1)))
    got = json.loads(out.stdout) if out.returncode == 0 else {}
    check(got.get("tensors") == len(params) and abs(got.get("sum", 1e9) - want_sum) < 1e-6,
          "engine loads the reference's model (%s; python sum %.9g)" % (got or out.stderr,
                                                                     want_sum))
    params["blocks.1.mlp.fc1.weight"] = params["blocks.1.mlp.fc1.weight"][:, :-1]
    u2ad_ref.safetensors_write(model_path, params, u2ad_ref.model_metadata(config))
    out = subprocess.run([tool, "model", model_path], capture_output=True, text=True)
    check(out.returncode != 0 and "blocks.1.mlp.fc1.weight" in out.stderr
          and model_path in out.stderr, "a misshapen tensor is refused: %s" % out.stderr.strip())

sys.exit(1 if failures else 0)
