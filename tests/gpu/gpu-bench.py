#!/usr/bin/env python3
"""gpu-bench: our CUDA engine against the PyTorch reference (tests/reference/u2ad_ref.py)
on the same GPU, the same weights and the same batch (bench/engine-vs-pytorch's inputs:
the reference configuration, 256 x 256 cord-like images, 75 % of the ROI patches masked).

  gpu-bench.py --bench-model PATH/cs-bench-model [--batch 10] [--iters 10] [--warmup 3]

* K = 10 Monte-Carlo detection of one slice = one inference pass (forward + loss, no
  gradients) of a batch of 10 masked copies: ms per slice.
* Training step, batch 10 = forward + backward + Adam: images/s, and the fraction of the
  GPU's fp32 (non-tensor) peak that our model FLOPs (2 x multiply-adds of every matmul,
  attention's included; backward = 2 x forward) reach.
Warm-up steps excluded, CUDA synchronised around each timed step on both sides. The
reference runs with torch's default device set to CUDA (it creates a few tensors without
a device). The LAST line printed is one JSON object."""

import argparse
import importlib.machinery
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(message):
    print(message, file=sys.stderr, flush=True)


def bench_module():
    path = os.path.join(ROOT, "bench", "engine-vs-pytorch")
    return importlib.machinery.SourceFileLoader("engine_vs_pytorch", path).load_module()


def fp32_peak(torch):
    """(peak fp32 FLOP/s of the non-tensor units, how it was found)"""
    name = torch.cuda.get_device_name()
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    if "A100" in name:
        return 19.5e12, "A100 data sheet"
    try:
        mhz = float(subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm",
                                    "--format=csv,noheader,nounits"], check=True,
                                   stdout=subprocess.PIPE, text=True).stdout.split()[0])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        mhz = 1980.0  # H100/H200 SXM boost clock
    # Hopper / Ada / GA10x: 128 fp32 lanes per SM, an FMA = 2 FLOPs
    return sms * 128 * 2 * mhz * 1e6, "%d SMs x 128 lanes x 2 x %.0f MHz" % (sms, mhz)


def torch_times(torch, ref, weights, inputs, mode, warmup, iters, device):
    import numpy as np
    model = ref.load_model(weights, dtype=torch.float32).to(device)
    tensors, _ = ref.safetensors_read(inputs)
    images = torch.tensor(tensors["input.images"], device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    states = tensors["input.patch_state"].astype(np.int64)
    adam = ref.make_adam(model)
    total, loss = 0.0, 0.0
    for i in range(warmup + iters):
        sync()
        t0 = time.perf_counter()
        if mode == "train":
            adam.zero_grad()
            out = model.loss(images, states, *model(images, states))[0]
            out.backward()
            adam.step()
        else:
            with torch.no_grad():
                out = model.loss(images, states, *model(images, states))[0]
        sync()
        s = time.perf_counter() - t0
        loss = out.item()
        if i >= warmup:
            total += s
    return {"step_s": total / iters, "images_per_s": images.shape[0] * iters / total,
            "loss": loss}


def ours(bench_model, weights, inputs, mode, warmup, iters, backend, math="fp32"):
    env = dict(os.environ, CS_CUDA_MATH=math)
    out = subprocess.run([bench_model, "model", "--weights", weights, "--inputs", inputs,
                          "--mode", mode, "--backend", backend, "--threads", "4",
                          "--iters", str(iters), "--warmup", str(warmup)],
                         check=True, stdout=subprocess.PIPE, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench-model", required=True)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda",
                        help="cpu: try this script out on a machine without a GPU")
    args = parser.parse_args()

    import torch
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu-bench: torch sees no CUDA device")
    evp = bench_module()
    import u2ad_ref as ref  # on sys.path through bench/engine-vs-pytorch
    result = {"gpu": torch.cuda.get_device_name() if dev == "cuda" else "none (cpu)",
              "torch": torch.__version__,
              "batch": args.batch}
    with tempfile.TemporaryDirectory(prefix="cs-gpu-bench-") as tmp:
        weights, inputs, config, kept, shown = evp.make_inputs(tmp, "reference", args.batch,
                                                               args.seed)
        flops_fwd = sum(ref.matmul_flops(config, int(k), int(s)) for k, s in zip(kept, shown))
        log("reference config, batch %d; encoder tokens %d-%d, forward %.1f GFLOP"
            % (args.batch, kept.min(), kept.max(), flops_fwd / 1e9))
        mine = {m: ours(args.bench_model, weights, inputs, m, args.warmup, args.iters, dev)
                for m in ("infer", "train")}
        mine_tf32 = (ours(args.bench_model, weights, inputs, "train", args.warmup, args.iters,
                          dev, "tf32") if dev == "cuda" else mine["train"])
        if dev == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False  # fp32 on both sides
            torch.backends.cudnn.allow_tf32 = False
            torch.set_default_device("cuda")
        theirs = {m: torch_times(torch, ref, weights, inputs, m, args.warmup, args.iters, dev)
                  for m in ("infer", "train")}
    peak, how = fp32_peak(torch) if dev == "cuda" else (float("nan"), "no GPU")
    result.update({
        "mc_k10_ms_per_slice_ours": round(mine["infer"]["step_s"] * 1e3, 3),
        "mc_k10_ms_per_slice_torch": round(theirs["infer"]["step_s"] * 1e3, 3),
        "mc_speedup": round(theirs["infer"]["step_s"] / mine["infer"]["step_s"], 2),
        "train_images_per_s_ours": round(mine["train"]["images_per_s"], 2),
        "train_images_per_s_torch": round(theirs["train"]["images_per_s"], 2),
        "train_speedup": round(mine["train"]["images_per_s"]
                               / theirs["train"]["images_per_s"], 2),
        "train_images_per_s_ours_tf32": round(mine_tf32["images_per_s"], 2),
        "train_tflops_ours": round(3 * flops_fwd / mine["train"]["step_s"] / 1e12, 3),
        "fp32_peak_tflops": round(peak / 1e12, 1), "peak_from": how,
        "train_fraction_of_fp32_peak": round(3 * flops_fwd / mine["train"]["step_s"] / peak, 4),
        "loss_ours_infer": mine["infer"]["loss"], "loss_torch_infer": theirs["infer"]["loss"],
    })
    log("K=%d MC, one slice: ours %.2f ms, torch %.2f ms (%.1fx)"
        % (args.batch, result["mc_k10_ms_per_slice_ours"], result["mc_k10_ms_per_slice_torch"],
           result["mc_speedup"]))
    log("training, batch %d: ours %.1f img/s (tf32 GEMMs %.1f), torch %.1f img/s (%.1fx); "
        "ours %.2f TFLOP/s = %.1f %% of the fp32 peak %.1f TFLOP/s"
        % (args.batch, result["train_images_per_s_ours"],
           result["train_images_per_s_ours_tf32"], result["train_images_per_s_torch"],
           result["train_speedup"], result["train_tflops_ours"],
           100 * result["train_fraction_of_fp32_peak"], result["fp32_peak_tflops"]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
