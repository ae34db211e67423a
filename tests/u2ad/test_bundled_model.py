#!/usr/bin/python3
"""The bundled model out of the box, against the app's default threshold (the gschema's
threshold-u2ad, chosen on phantoms that the model never saw: README "Bundled model").

- The bundled sample (3 phantoms made at build time): the cases whose truth JSON says
  abnormal score at or above the threshold, the normal one below it, and in each abnormal
  case the top-scoring segment is one the truth calls hyperintense.
- ../shared/data/real/errsm30-full (a healthy volunteer): below the threshold; a copy with
  one lesion put in by `cordscope-cli lesion` (the phantom generator's lesion model) goes
  over it. The copy itself is checked against nibabel: only cord voxels inside the
  ellipsoid changed, each moved towards the CSF level by the documented fraction.
Usage: test_bundled_model.py SAMPLES_DIR GSCHEMA_XML"""

import json
import os
import re
import subprocess
import sys
import tempfile

try:
    import nibabel as nib
    import numpy as np
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)

CLI = os.environ["CORDSCOPE_CLI"]
samples, gschema = sys.argv[1:3]
failures = 0


def check(ok, what):
    global failures
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    failures += 0 if ok else 1


def detect(path):
    p = subprocess.run([CLI, "detect", path, "--threads", "2", "--quiet"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("detect %s failed: %s" % (path, p.stderr))
    return json.loads(p.stdout)


xml = open(gschema).read()
m = re.search(r'<key name="threshold-u2ad" type="d">.*?<default>([0-9.]+)</default>', xml, re.S)
threshold = float(m.group(1))
print("threshold-u2ad default: %g" % threshold)

# ---- the bundled sample -----------------------------------------------------------------
names = sorted(f[:-len("_truth.json")] for f in os.listdir(samples) if f.endswith("_truth.json"))
check(len(names) == 3, "three sample cases (%s)" % names)
for name in names:
    truth = json.load(open(os.path.join(samples, name + "_truth.json")))
    d = detect(os.path.join(samples, name + ".nii.gz"))
    score = d["patient_score"]
    if truth["abnormal"]:
        check(score >= threshold, "%s (abnormal): patient score %.3f >= %g" % (name, score,
                                                                             threshold))
        top = max((s for s in d["segments"] if s["score"] is not None), key=lambda s: s["score"])
        check(top["name"] in truth["hyperintense_segments"],
              "%s: top segment %s (%.3f) is hyperintense in the truth %s"
              % (name, top["name"], top["score"], truth["hyperintense_segments"]))
    else:
        check(score < threshold, "%s (normal): patient score %.3f < %g" % (name, score, threshold))

# ---- a real healthy scan, and the same scan with a lesion -------------------------------
real = os.path.join(os.environ["CS_SHARED_DATA"], "real", "errsm30-full", "errsm30_T2w.nii.gz")
if not os.path.exists(real):
    print("no %s: the real-scan half is skipped" % real)
    sys.exit(1 if failures else 0)
healthy = detect(real)["patient_score"]
check(healthy < threshold, "errsm30-full (healthy): %.3f < %g" % (healthy, threshold))

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "with-lesion")
    p = subprocess.run([CLI, "lesion", real, "--out", out, "--contrast", "0.3", "--length", "12",
                        "--ap", "5", "--lr", "5"], capture_output=True, text=True)
    check(p.returncode == 0, "lesion: exit 0 (%s)" % p.stderr.strip())
    info = json.loads(p.stdout)
    src = nib.load(real)
    before = np.asarray(src.dataobj).astype(np.float64)
    after = np.asarray(nib.load(info["image"]).dataobj).astype(np.float64)
    mask = np.asarray(nib.load(info["lesion"]).dataobj) > 0
    seg_file = [f for f in os.listdir(os.path.dirname(real)) if "_seg" in f][0]
    seg = np.asarray(nib.load(os.path.join(os.path.dirname(real), seg_file)).dataobj) > 0.5
    check(os.path.exists(os.path.join(out, seg_file)), "the cord mask is copied beside it")
    changed = np.abs(after - before) > 0.5
    check(mask.sum() == info["voxels"] and mask.sum() > 50,
          "lesion mask: %d voxels, as printed" % mask.sum())
    check(not (changed & ~mask).any() and not (mask & ~seg).any(),
          "only voxels of the lesion changed, all inside the cord")
    # The ellipsoid in world axes: every masked voxel inside it, every cord voxel inside
    # its core (r < 0.6, so that rounding at the rim does not matter) masked.
    ijk = np.argwhere(seg)
    xyz = nib.affines.apply_affine(src.affine, ijk)
    semi = np.array([info["lr_mm"], info["ap_mm"], info["length_mm"]]) / 2
    r = (((xyz - np.array(info["centre_mm"])) / semi) ** 2).sum(axis=1)
    inside = mask[tuple(ijk.T)]
    check(inside[r < 0.6].all() and not inside[r >= 1].any(),
          "the mask is the cord inside the ellipsoid (%d core voxels)" % (r < 0.6).sum())
    # Each voxel moved contrast * w of the way to the CSF level, w in [0.6, 1] (1 in the
    # core); int16 storage rounds to 0.5.
    csf = info["csf_level"]
    core = tuple(ijk[(r < 0.6)].T)
    want = before[core] + 0.3 * (csf - before[core])
    check(np.abs(after[core] - want).max() <= 0.5 + 1e-6,
          "core voxels moved 0.3 of the way to the CSF level %.0f (max error %.2f)"
          % (csf, np.abs(after[core] - want).max()))
    cord_median = np.percentile(before[seg], 50)
    check(csf > 2 * cord_median, "the CSF level %.0f is brighter than the cord (median %.0f)"
          % (csf, cord_median))
    lesioned = detect(info["image"])["patient_score"]
    check(lesioned >= threshold, "errsm30-full + lesion (contrast 0.3, 12 x 5 x 5 mm): "
          "%.3f >= %g" % (lesioned, threshold))

    # The source folder is never the output.
    p = subprocess.run([CLI, "lesion", real, "--out", os.path.dirname(real)],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "never overwritten" in p.stderr,
          "lesion refuses to write into the source's folder")
    p = subprocess.run([CLI, "lesion", real, "--out", out, "--contrast", "1.5"],
                       capture_output=True, text=True)
    check(p.returncode == 1 and "--contrast" in p.stderr, "lesion refuses contrast 1.5")

sys.exit(1 if failures else 0)
