#!/usr/bin/python3
"""Plain intensity z-score inside the cord as a patient-level detector on phantoms.

If this separates abnormal from normal phantoms almost perfectly, the phantoms lack what
real scans have (published z-score baselines reach about 0.19 specificity at 0.9
sensitivity on clinical data). Makes N phantoms with all confounders and N without,
and reports, per variant, AUC and the specificity at sensitivity 0.9.

Variants (each a patient score from a per-case z-score map):
  seg-max   max z over the _seg mask, all slices (z from the mask's mean and sd)
  seg-p99   99th percentile of z over the _seg mask
  robust-max  max z over the _seg mask with z from the median and MAD (a lesion does not
            inflate its own reference)
  curve-max as DESIGN.md's scores, on the default slice (largest _seg area): z over the
            slice's _seg, the anomaly curve = mean z across the cord in each row, rows
            +-2 pooled; patient score = peak of the curve

Usage: phantom-zscore.py CORDSCOPE_CLI [--count N] [--seed S] [--keep DIR]
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import nibabel as nib
from scipy import ndimage as ndi


def auc(neg, pos):
    neg, pos = np.asarray(neg), np.asarray(pos)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return greater / (len(pos) * len(neg))


def spec_at_sens(neg, pos, sens=0.9):
    """Specificity with the highest threshold that still flags >= sens of abnormal cases."""
    pos = np.sort(pos)[::-1]
    need = int(np.ceil(sens * len(pos)))
    thr = pos[need - 1]
    return float(np.mean(np.asarray(neg) < thr))


def sagittal_axis(affine):
    m = np.abs(affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0))
    return int(np.argmax(m[0]))


def scores(folder, name):
    img = nib.load(f'{folder}/{name}.nii.gz')
    d = np.asarray(img.dataobj, dtype=np.float64)
    seg = np.asarray(nib.load(f'{folder}/{name}_seg.nii.gz').dataobj) > 0
    v = d[seg]
    z = (v - v.mean()) / (v.std() + 1e-9)
    out = {'seg-max': z.max(), 'seg-p99': np.percentile(z, 99)}
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med)) + 1e-9
    out['robust-max'] = ((v - med) / mad).max()
    ax = sagittal_axis(img.affine)
    m = np.abs(img.affine[:3, :3])
    si_axis = max((a for a in range(3) if a != ax), key=lambda a: m[2, a])
    dm = np.moveaxis(d, [ax, si_axis], [0, 1])
    sm = np.moveaxis(seg, [ax, si_axis], [0, 1])
    k = int(np.argmax(sm.reshape(sm.shape[0], -1).sum(1)))
    sl, ms = dm[k], sm[k]
    r = sl[ms]
    zs = (sl - r.mean()) / (r.std() + 1e-9)
    rows = [zs[i][ms[i]].mean() if ms[i].any() else np.nan for i in range(sl.shape[0])]
    rows = np.array(rows)
    pooled = [np.nanmean(rows[max(0, i - 2):i + 3]) for i in range(len(rows))
              if not np.isnan(rows[i])]
    out['curve-max'] = max(pooled)
    return out


def run(cli, folder, count, seed, extra):
    subprocess.run([cli, 'phantom', '--out', folder, '--count', str(count), '--seed', str(seed),
                    '--lesion-rate', '0.5', '--quiet'] + extra, check=True)
    rows = []
    for i in range(count):
        name = f'phantom-{i:04d}'
        truth = json.load(open(f'{folder}/{name}_truth.json'))
        rows.append((truth['abnormal'], scores(folder, name)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cli')
    ap.add_argument('--count', type=int, default=100)
    ap.add_argument('--seed', type=int, default=2024)
    ap.add_argument('--keep')
    ap.add_argument('--confounded-only', action='store_true')
    ap.add_argument('--ablate', action='store_true',
                    help='also run with each confounder off in turn')
    a = ap.parse_args()
    base = a.keep or tempfile.mkdtemp(prefix='cs-zscore-')
    runs = [('confounded', [])]
    if not a.confounded_only:
        runs.append(('clean', ['--no-confounders']))
    if a.ablate:
        runs += [(f'no-{c}', [f'--no-{c}']) for c in
                 ['gibbs', 'seg-error', 'flow', 'wander', 'gm-stripe', 'enlargement', 'drift']]
    for label, extra in runs:
        rows = run(a.cli, os.path.join(base, label), a.count, a.seed, extra)
        n_ab = sum(1 for ab, _ in rows if ab)
        print(f'{label}: {len(rows)} cases, {n_ab} abnormal')
        for key in ['seg-max', 'seg-p99', 'robust-max', 'curve-max']:
            pos = [s[key] for ab, s in rows if ab]
            neg = [s[key] for ab, s in rows if not ab]
            print(f'  {key:10s} AUC {auc(neg, pos):.3f}  specificity@sens0.9 '
                  f'{spec_at_sens(neg, pos):.3f}')
    if not a.keep:
        subprocess.run(['rm', '-rf', base])


if __name__ == '__main__':
    sys.exit(main())
