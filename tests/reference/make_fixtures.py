#!/usr/bin/python3
"""Makes the parity fixture tests/reference/fixtures/tiny.safetensors from u2ad_ref.

A tiny configuration (img 40, patch 8 -> 25 patches; enc 32 x 2, 4 heads; dec 16 x 1,
2 heads), a batch of 4 images whose explicit patch states cover every case: all context
kept, context dropped around the ROI, different ROI sizes, and an item with no masked
patch (no loss). Stored (F32):
  param.NAME      the starting weights (MAE init, with biases and LayerNorm params
                  perturbed so every path carries a non-trivial value)
  input.images    [B,1,H,W]; input.patch_state [B,N] (0 visible, 1 masked, 2 dropped)
  out.pred_img, out.pred_edge [B,N,P*P]; out.loss [3] = total, L_img, L_edge
  grad.NAME       d total / d NAME
  adam.loss       [10]: the loss before each of 10 Adam steps (same batch, lr 3e-3)
  adam.NAME       the weights after the 10 steps
All reference values are computed in float64 from the float32-rounded weights and
inputs, so they are the exact answer up to float64 rounding; the C engine's difference
is then its own float32 error. Run with --check to print how far a float32 PyTorch run is
from that answer (the yardstick for the parity test's tolerances).
Usage: make_fixtures.py [--out DIR] [--check]
       make_fixtures.py --config reference --batch 2 --adam-steps 0 --out DIR  (live test)
"""

import argparse
import json
import os
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import u2ad_ref as ref  # noqa: E402

TINY = ref.make_config(img_size=40, patch=8, enc_dim=32, enc_depth=2, enc_heads=4,
                       dec_dim=16, dec_depth=1, dec_heads=2, context_margin=-1)
ADAM_STEPS = 10


def make_inputs(config, rng, batch=4):
    """Cord-like images and patch states (explicit, deterministic): item 0 keeps all
    context, item 1 drops context beyond margin 0, item 2 beyond margin 1; item 3 has no
    masked patch, so it has no loss and stays out of the batch mean (its tokens still
    run through the network)."""
    size, patch = config["img_size"], config["patch"]
    grid = size // patch
    scale = size / 40.0  # the tiny fixture's image is 40 px
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images, states = [], []
    specs = [  # (cord centre column, half width, context margin, mask ratio)
        (18.0 * scale, 5.0 * scale, -1, config["mask_ratio"]),
        (21.0 * scale, 4.0 * scale, 0, config["mask_ratio"]),
        (15.0 * scale, 7.0 * scale, 1, config["mask_ratio"]),
        (20.0 * scale, 5.0 * scale, 1, 0.0),
    ][:batch]
    for b, (centre, half, margin, ratio) in enumerate(specs):
        bend = centre + 3.0 * scale * np.sin(yy / (9.0 * scale) + b)
        cord = np.exp(-((xx - bend) / half) ** 2)
        img = 0.25 + 0.5 * cord + 0.15 * np.sin(xx / 5.0 + yy / 7.0 + b)
        img += 0.05 * rng.standard_normal((size, size))
        img = np.clip(img, 0.0, 1.0)
        images.append(img.astype(np.float32))
        roi = np.abs(xx - bend) <= half + 2.0
        roi[: patch, :] = False  # a top row of patches with no ROI: pure context
        cfg = dict(config, context_margin=margin, mask_ratio=ratio)
        states.append(ref.random_patch_state(roi, cfg, rng))
    states = np.stack(states)
    assert (states == ref.PATCH_DROPPED).any() and (states[:3] == ref.PATCH_MASKED).sum(1).min() > 0
    assert states.shape == (len(specs), grid * grid)
    return np.stack(images)[:, None], states


def perturb(model, generator):
    """Non-zero biases, LayerNorm weights != 1: every parameter's gradient path is used."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.add_(0.05 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            elif "norm" in name and name.endswith(".weight"):
                p.add_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))


def run_reference(weights, images, states, dtype, config=TINY, adam_steps=ADAM_STEPS):
    model = ref.U2AD(config).to(dtype)
    model.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in weights.items()})
    x = torch.tensor(images, dtype=dtype)
    pred_img, pred_edge = model(x, states)
    total, l_img, l_edge = model.loss(x, states, pred_img, pred_edge)
    total.backward()
    result = OrderedDict()
    result["out.pred_img"] = pred_img.detach().numpy()
    result["out.pred_edge"] = pred_edge.detach().numpy()
    result["out.loss"] = np.array([total.item(), l_img.item(), l_edge.item()])
    for name, p in model.named_parameters():
        result["grad." + name] = p.grad.numpy().copy()

    if adam_steps == 0:
        return result
    model.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in weights.items()})
    adam = ref.make_adam(model)
    losses = []
    for _ in range(adam_steps):
        adam.zero_grad()
        total = model.loss(x, states, *model(x, states))[0]
        total.backward()
        losses.append(total.item())
        adam.step()
    result["adam.loss"] = np.array(losses)
    for name, p in model.named_parameters():
        result["adam." + name] = p.detach().numpy().copy()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "fixtures"))
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--config", choices=["tiny", "reference"], default="tiny",
                        help="reference: the full configuration, for the live test")
    parser.add_argument("--batch", type=int, default=4, choices=[1, 2, 3, 4])
    parser.add_argument("--adam-steps", type=int, default=ADAM_STEPS)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()

    config = TINY if args.config == "tiny" else ref.make_config()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = ref.U2AD(config).double()
    model.init_mae(generator)
    perturb(model, generator)
    weights = OrderedDict((k, v.numpy().astype(np.float32)) for k, v in
                          model.state_dict().items())
    images, states = make_inputs(config, rng, args.batch)

    exact = run_reference(weights, images, states, torch.float64, config, args.adam_steps)
    tensors = OrderedDict(("param." + k, v) for k, v in weights.items())
    tensors["input.images"] = images
    tensors["input.patch_state"] = states.astype(np.float32)
    tensors.update(exact)

    if args.check:
        single = run_reference(weights, images, states, torch.float32, config,
                               args.adam_steps)
        print("float32 PyTorch vs float64 reference: max |a-b|, max |a-b|/(1e-5+1e-4|b|)")
        for name, want in exact.items():
            diff = np.abs(single[name].astype(np.float64) - want)
            ratio = diff / (1e-5 + 1e-4 * np.abs(want))
            print("  %-40s %.3g  %.3g" % (name, diff.max(), ratio.max()))

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "%s.safetensors" % args.config)
    meta = ref.model_metadata(config, steps=args.adam_steps, lr=ref.ADAM_LR)
    meta["format"] = "cordscope-u2ad-fixture"
    ref.safetensors_write(path, tensors, meta)
    print("wrote %s (%d bytes, %d tensors)" % (path, os.path.getsize(path), len(tensors)))
    if "adam.loss" in exact:
        print("losses:", json.dumps([round(v, 6) for v in exact["adam.loss"]]))


if __name__ == "__main__":
    main()
