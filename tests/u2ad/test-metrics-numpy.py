#!/usr/bin/python3
"""Compares cs_mse / cs_psnr / cs_ssim / cs_percentile_positive with numpy.

SSIM here is written independently: the full 11 x 11 Gaussian window (sigma 1.5, normalised)
applied directly at every position where it fits ('valid'), population (co)variances,
K1 0.01, K2 0.03, data range 1 -- what skimage.metrics.structural_similarity computes with
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.
Usage: test-metrics-numpy.py PATH/TO/u2ad-metrics-tool
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

TOOL = sys.argv[1]


def ssim_reference(a, b, mask=None):
    t = np.arange(11) - 5.0
    g = np.exp(-t * t / (2 * 1.5 ** 2))
    w = np.outer(g, g)
    w /= w.sum()

    def filt(x):
        return np.einsum('ijkl,kl->ij', sliding_window_view(x, (11, 11)), w)

    a = a.astype(np.float64)
    b = b.astype(np.float64)
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a ** 2
    var_b = filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    if mask is not None:
        centres = mask[5:-5, 5:-5].astype(bool)
        return s[centres].mean()
    return s.mean()


def run(*args):
    out = subprocess.run([TOOL, *args], check=True, capture_output=True, text=True).stdout
    return [float(v) for v in out.split()]


def smooth(rng, h, w):
    """A blurred random field in [0, 1], MRI-like in having structure at several scales."""
    x = rng.random((h, w))
    for _ in range(3):
        x = (x + np.roll(x, 1, 0) + np.roll(x, -1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 1)) / 5
    x -= x.min()
    return x / x.max()


def main():
    rng = np.random.default_rng(20261127)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        pa, pb, pm = (os.path.join(tmp, n) for n in ('a.f32', 'b.f32', 'm.u8'))
        cases = [
            (32, 40, 0.05, False),
            (64, 64, 0.2, True),
            (256, 256, 0.02, True),
            (11, 11, 0.1, False),
            (17, 23, 0.5, True),
        ]
        for h, w, noise, masked in cases:
            a = smooth(rng, h, w).astype(np.float32)
            b = np.clip(a + noise * rng.standard_normal((h, w)), 0, 1).astype(np.float32)
            a.tofile(pa)
            b.tofile(pb)
            args = [pa, pb, str(h), str(w)]
            mask = None
            if masked:
                mask = np.zeros((h, w), np.uint8)
                mask[h // 4: 3 * h // 4, w // 3: w // 3 + max(w // 4, 1)] = 1
                mask.tofile(pm)
                args.append(pm)
            mse, psnr, ssim = run('image', *args)
            sel = mask.astype(bool) if mask is not None else np.ones((h, w), bool)
            diff = a.astype(np.float64)[sel] - b.astype(np.float64)[sel]
            ref_mse = float(np.mean(diff ** 2))
            ref_psnr = 10 * np.log10(1.0 / ref_mse)
            ref_ssim = ssim_reference(a, b, mask)
            ok = (abs(mse - ref_mse) <= 1e-9 + 1e-9 * ref_mse and abs(psnr - ref_psnr) < 1e-7
                  and abs(ssim - ref_ssim) < 1e-7)
            print(f"{h}x{w} noise {noise} mask {masked}: mse {mse:.8g} ({ref_mse:.8g}) "
                  f"psnr {psnr:.6f} ({ref_psnr:.6f}) ssim {ssim:.9f} ({ref_ssim:.9f}) "
                  f"{'ok' if ok else 'MISMATCH'}")
            failures += not ok

        pv = os.path.join(tmp, 'v.f32')
        for n, q in [(1, 20), (2, 20), (7, 90), (100, 20), (1001, 90), (5000, 37.5)]:
            values = rng.random(n).astype(np.float32)
            values[rng.random(n) < 0.3] = 0  # zeros are not part of the sample
            values[0] = max(values[0], np.float32(0.5))  # at least one positive
            values.tofile(pv)
            got = run('percentile', pv, str(q))[0]
            ref = float(np.percentile(values[values > 0].astype(np.float64), q))
            ok = abs(got - ref) < 1e-6
            print(f"percentile n {n} q {q}: {got:.9f} ({ref:.9f}) {'ok' if ok else 'MISMATCH'}")
            failures += not ok
    if failures:
        print(f"{failures} mismatches")
        sys.exit(1)


if __name__ == '__main__':
    main()
