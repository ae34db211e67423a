#!/usr/bin/python3
"""The io layer against nibabel on the real scans in ../shared/data/real.

Run by Debian's python3 (numpy, nibabel) with the path of cs-volume-probe:
  test_real_nibabel.py PROBE
Checks, for every NIfTI file there: shape, affine, axis codes, voxel values; for every
image: the sagittal axis, the display slice (superior up, anterior left) pixel by pixel
through px2vox, and px2mm; and that a float map written by cs_volume_save on the case's
grid reads back in nibabel with the same values and affine.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

try:
    import nibabel as nib
    import numpy as np
except ImportError as e:
    print(f"SKIP: nibabel/numpy not available ({e})")
    sys.exit(77)

probe = sys.argv[1]
data = os.environ.get("CS_SHARED_DATA", "")
real = os.path.join(data, "real")
files = sorted(glob.glob(os.path.join(real, "*", "*.nii.gz")))
if not files:
    print(f"SKIP: no real data under {real!r}")
    sys.exit(77)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run_probe(*args):
    out = subprocess.run([probe, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"probe {args} failed: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else None


# What the data README states, independent of both readers.
expected_axcodes = {"errsm30-full": "PSR", "errsm30-crop": "PSR", "pam50": "LAS"}
expected_sagittal_axis = {"errsm30-full": 2, "errsm30-crop": 2, "pam50": 0}

rng = np.random.default_rng(7)
for f in files:
    name = os.path.relpath(f, real)
    folder = name.split(os.sep)[0]
    img = nib.load(f)
    ref = img.get_fdata(dtype=np.float64)
    shape = img.shape[:3]
    # sample voxels: random ones, the brightest, and the corners
    idx = [tuple(int(rng.integers(0, s)) for s in shape) for _ in range(40)]
    idx.append(np.unravel_index(np.argmax(ref), shape))
    idx += [(0, 0, 0), tuple(s - 1 for s in shape)]
    nz = np.argwhere(ref != 0)
    idx += [tuple(v) for v in nz[:: max(1, len(nz) // 30)]]
    got = run_probe("info", f, *[f"{i},{j},{k}" for i, j, k in idx])

    codes = "".join(nib.aff2axcodes(img.affine))
    check(list(got["shape"]) == list(shape), f"{name}: shape {got['shape']} != {shape}")
    check(got["axcodes"] == codes, f"{name}: axcodes {got['axcodes']} != nibabel {codes}")
    check(got["axcodes"] == expected_axcodes[folder],
          f"{name}: axcodes {got['axcodes']} != README {expected_axcodes[folder]}")
    check(got["sagittal_axis"] == codes.index("L" if "L" in codes else "R"),
          f"{name}: sagittal axis {got['sagittal_axis']}")
    check(got["sagittal_axis"] == expected_sagittal_axis[folder],
          f"{name}: sagittal axis {got['sagittal_axis']} != README")
    check(np.allclose(got["affine"], img.affine, atol=1e-5),
          f"{name}: affine\n{np.array(got['affine'])}\n!= nibabel\n{img.affine}")
    check(np.allclose(got["pixdim"], np.sqrt((img.affine[:3, :3] ** 2).sum(0)), atol=1e-6),
          f"{name}: pixdim {got['pixdim']}")
    check(got["datatype"] == int(img.header["datatype"]), f"{name}: datatype")
    want = np.array([ref[v] for v in idx])
    check(np.allclose(got["values"], want, rtol=1e-6, atol=1e-6),
          f"{name}: voxel values differ, max {np.max(np.abs(np.array(got['values']) - want))}")

    if not any(s in name for s in ("_seg", "_labels", "_levels")):
        sag = got["sagittal_axis"]
        for slice_ in (0, shape[sag] // 2, shape[sag] - 1):
            s = run_probe("sagittal", f, str(slice_))
            w, h = s["width"], s["height"]
            px2vox = np.array(s["px2vox"])
            px2mm = np.array(s["px2mm"])
            disp = np.array(s["data"]).reshape(h, w)
            check(np.allclose(px2mm, img.affine @ px2vox, atol=1e-6), f"{name}: px2mm")
            # every pixel, through px2vox, is nibabel's voxel
            cols, rows = np.meshgrid(np.arange(w), np.arange(h))
            pts = np.stack([cols.ravel(), rows.ravel(), np.zeros(w * h), np.ones(w * h)])
            vox = np.rint(px2vox @ pts).astype(int)[:3]
            check(np.all(vox[sag] == slice_), f"{name}: slice index in px2vox")
            check(np.allclose(disp.ravel(), ref[vox[0], vox[1], vox[2]], rtol=1e-6),
                  f"{name} slice {slice_}: display pixels differ from nibabel's voxels")
            # display orientation from nibabel's world coordinates: row 0 most superior,
            # column 0 most anterior, and each row/column a constant S/A
            mm = (img.affine @ np.vstack([vox, np.ones(w * h)]))[:3].reshape(3, h, w)
            check(np.all(np.diff(mm[2], axis=0) < 0), f"{name}: rows do not go S->I")
            check(np.all(np.diff(mm[1], axis=1) < 0), f"{name}: columns do not go A->P")
            check(np.allclose(s["spacing"], [abs(mm[1, 0, 1] - mm[1, 0, 0]) if w > 1 else
                                             s["spacing"][0],
                                             abs(mm[2, 1, 0] - mm[2, 0, 0]) if h > 1 else
                                             s["spacing"][1]]), f"{name}: spacing")
        print(f"ok {name}: {codes}, sagittal axis {sag}, display {w}x{h}")
    else:
        print(f"ok {name}: {codes}")

# A float map written on each case's grid reads back in nibabel.
with tempfile.TemporaryDirectory() as tmp:
    for f in files:
        if any(s in f for s in ("_seg", "_labels", "_levels")):
            continue
        img = nib.load(f)
        for ext in (".nii.gz", ".nii"):
            out = os.path.join(tmp, os.path.basename(f).replace(".nii.gz", "_map" + ext))
            run_probe("write-map", f, out)
            m = nib.load(out)
            check(m.shape == img.shape[:3], f"{out}: shape {m.shape}")
            check(m.header.get_data_dtype() == np.float32, f"{out}: dtype")
            check(np.allclose(m.affine, img.affine, atol=1e-4), f"{out}: affine {m.affine}")
            check(int(m.header["sform_code"]) == 2 and int(m.header["qform_code"]) == 2,
                  f"{out}: sform/qform codes")
            check(np.allclose(m.header.get_qform(), img.affine, atol=1e-4),
                  f"{out}: qform {m.header.get_qform()}")
            i, j, k = np.meshgrid(*[np.arange(s) for s in m.shape], indexing="ij")
            want = (i + 1000.0 * j - 0.25 * k - 7.5).astype(np.float32)
            check(np.array_equal(m.get_fdata(dtype=np.float32), want), f"{out}: map values")
            check(nib.aff2axcodes(m.affine) == nib.aff2axcodes(img.affine), f"{out}: axcodes")
            print(f"ok map {os.path.basename(out)} read back by nibabel")
    leftovers = [n for n in os.listdir(tmp) if n.startswith(".")]
    check(not leftovers, f"temporary files left behind: {leftovers}")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all ok")
