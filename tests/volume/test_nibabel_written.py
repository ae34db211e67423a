#!/usr/bin/python3
"""Files written by nibabel (an independent writer) read by the io layer.

  test_nibabel_written.py PROBE

Every supported datatype, NIfTI-1 and NIfTI-2, little and big endian, .nii and .nii.gz,
scl_slope/scl_inter, and sform / qform-only / no-xform headers: cs-volume-probe must
report nibabel's shape, affine, axis codes and scaled voxel values.
"""
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
rng = np.random.default_rng(3)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def rotation(ax, deg):
    t = np.radians(deg)
    c, s = np.cos(t), np.sin(t)
    r = np.eye(3)
    i, j = [k for k in range(3) if k != ax]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


dtypes = [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64]
shape = (7, 6, 5)
with tempfile.TemporaryDirectory() as tmp:
    n = 0
    for dt in dtypes:
        for klass in (nib.Nifti1Image, nib.Nifti2Image):
            for order in ("<", ">"):
                for xform in ("sform", "qform", "none"):
                    n += 1
                    info = np.iinfo(dt) if np.issubdtype(dt, np.integer) else None
                    lo = max(info.min, -1000) if info else -1000.0
                    hi = min(info.max, 1000) if info else 1000.0
                    data = rng.uniform(lo, hi, shape)
                    data = data.astype(dt) if info else data.astype(dt)
                    lin = rotation(n % 3, 25 * (n % 5) - 40) @ np.diag([0.8, 1.1, 2.5])
                    if n % 2:
                        lin = lin @ np.diag([1, 1, -1])   # a left-handed grid
                    aff = np.eye(4)
                    aff[:3, :3] = lin
                    aff[:3, 3] = rng.uniform(-100, 100, 3)
                    hdr = klass.header_class()
                    hdr.set_data_dtype(dt)
                    img = klass(data, aff if xform != "none" else None, header=hdr)
                    if xform == "qform":
                        img.set_sform(None, code=0)
                        img.set_qform(aff, code=1)
                    elif xform == "sform":
                        img.set_sform(aff, code=2)
                        img.set_qform(None, code=0)
                    if order == ">":
                        img = klass(np.asanyarray(img.dataobj), img.affine,
                                    header=img.header.as_byteswapped(">"))
                    slope, inter = (0.5, -3.0) if n % 3 == 0 else (np.nan, np.nan)
                    img.header.set_slope_inter(slope, inter)
                    ext = ".nii.gz" if n % 2 else ".nii"
                    path = os.path.join(tmp, f"f{n}_{np.dtype(dt).name}{ext}")
                    nib.save(img, path)

                    back = nib.load(path)
                    ref = back.get_fdata()
                    idx = [tuple(int(rng.integers(0, s)) for s in shape) for _ in range(25)]
                    out = subprocess.run([probe, "info", path,
                                          *[f"{i},{j},{k}" for i, j, k in idx]],
                                         capture_output=True, text=True)
                    what = f"{os.path.basename(path)} ({klass.__name__}, {order}, {xform})"
                    if out.returncode != 0:
                        check(False, f"{what}: probe failed: {out.stderr.strip()}")
                        continue
                    got = json.loads(out.stdout)
                    check(tuple(got["shape"]) == shape, f"{what}: shape")
                    check(np.allclose(got["affine"], back.affine, atol=1e-5),
                          f"{what}: affine\n{np.array(got['affine'])}\nnibabel\n{back.affine}")
                    check(got["axcodes"] == "".join(nib.aff2axcodes(back.affine)),
                          f"{what}: axcodes {got['axcodes']}")
                    want = np.array([ref[v] for v in idx])
                    check(np.allclose(got["values"], want, rtol=1e-6, atol=1e-4),
                          f"{what}: values")
                    check(got["version"] == (2 if klass is nib.Nifti2Image else 1),
                          f"{what}: version")
    print(f"{n} files written by nibabel checked")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all ok")
