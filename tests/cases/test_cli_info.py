"""test_cli_info: `cordscope-cli info` on the real scans, checked against nibabel and an
independent NumPy computation of the default slice, disc centroids and segment spans;
and its bad-input exits. Run by Debian's /usr/bin/python3 (numpy, nibabel)."""
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import nibabel as nib
    import numpy as np
except ImportError as e:
    print(f"SKIP: needs numpy and nibabel ({e})")
    sys.exit(77)

CLI = os.environ.get("CORDSCOPE_CLI")
SHARED = os.environ.get("CS_SHARED_DATA", "")
REAL = os.path.join(SHARED, "real")
if not CLI or not os.path.exists(CLI):
    print("SKIP: CORDSCOPE_CLI not set or not built")
    sys.exit(77)
if not os.path.isfile(os.path.join(REAL, "pam50", "PAM50small_T2w.nii.gz")):
    print(f"SKIP: real data not found under {REAL}")
    sys.exit(77)

SEGMENT_NAMES = {3: "C2-3", 4: "C3-4", 5: "C4-5", 6: "C5-6", 7: "C6-7", 8: "C7-T1"}
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAIL:", what)


def run_info(*args):
    return subprocess.run([CLI, "info", *args], capture_output=True, text=True, timeout=120)


def centroids(data):
    out = {}
    for v in np.unique(data[data != 0]):
        out[int(round(float(v)))] = np.argwhere(data == v).mean(axis=0)
    return out


def display_row(voxel, img):
    """Row on the sagittal display (row 0 most superior), native grid, as DESIGN.md."""
    codes = nib.aff2axcodes(img.affine)
    axis = next(a for a, c in enumerate(codes) if c in "SI")
    n = img.shape[axis]
    return (n - 1 - voxel[axis]) if codes[axis] == "S" else voxel[axis]


def expected_spans(discs, img):
    """Segment spans by the rule of DESIGN.md, written independently of the C code."""
    rows = {v: display_row(p, img) for v, p in discs.items() if 3 <= v <= 8}
    present = sorted(rows)
    spans = {}
    for idx, v in enumerate(present):
        up = down = None
        if idx > 0:
            u = present[idx - 1]
            up = (rows[v] - rows[u]) / (2 * (v - u))
        if idx + 1 < len(present):
            d = present[idx + 1]
            down = (rows[d] - rows[v]) / (2 * (d - v))
        up = down if up is None else up
        down = up if down is None else down
        spans[v] = (rows[v] - up, rows[v] + down, rows[v])
    return spans


def check_case(image_rel, labels_expected, disc_source, root=REAL):
    path = os.path.join(root, image_rel)
    res = run_info(path)
    check(res.returncode == 0, f"{image_rel}: exit {res.returncode}: {res.stderr}")
    if res.returncode != 0:
        return
    try:
        info = json.loads(res.stdout)
    except json.JSONDecodeError as e:
        check(False, f"{image_rel}: output is not one JSON object: {e}")
        return
    img = nib.load(path)
    codes = "".join(nib.aff2axcodes(img.affine))
    sag = next(a for a, c in enumerate(codes) if c in "LR")
    check(info["file"] == path, f"{image_rel}: file")
    check(info["dims"] == list(img.shape[:3]), f"{image_rel}: dims {info['dims']}")
    zooms = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    check(np.allclose(info["voxel_size_mm"], zooms, atol=1e-5), f"{image_rel}: voxel size")
    check(info["orientation"] == codes,
          f"{image_rel}: orientation {info['orientation']} != {codes}")
    check(info["sagittal_axis"] == sag, f"{image_rel}: sagittal_axis")
    check(info["n_sagittal_slices"] == img.shape[sag], f"{image_rel}: n_sagittal_slices")
    check(np.allclose(info["affine"], img.affine, atol=1e-4), f"{image_rel}: affine")
    check(info["datatype"] == img.header.get_data_dtype().name, f"{image_rel}: datatype")

    labels = info["labels"]
    for key in ("seg", "discs", "lesion", "vert_labels", "levels", "truth", "sidecar"):
        want = labels_expected.get(key)
        want = os.path.join(root, want) if want else None
        check(labels.get(key, "missing") == want, f"{image_rel}: labels.{key} = {labels.get(key)}")

    seg = np.asarray(nib.load(labels["seg"]).dataobj) > 0.5
    area = seg.sum(axis=tuple(a for a in range(3) if a != sag))
    check(info["default_slice_from"] == "seg", f"{image_rel}: default_slice_from")
    check(info["default_slice"] == int(np.argmax(area)),
          f"{image_rel}: default_slice {info['default_slice']} != {int(np.argmax(area))}")

    # Discs: from disc labels as they are, from vertebral labels as midpoints of
    # consecutive vertebral centres (disc N above vertebra N).
    if disc_source == "discs":
        discs = centroids(np.asarray(nib.load(labels["discs"]).dataobj))
    else:
        vert = centroids(np.asarray(nib.load(labels["vert_labels"]).dataobj))
        discs = {n: (vert[n - 1] + vert[n]) / 2 for n in vert if n - 1 in vert}
    spans = expected_spans(discs, img)
    got = {s["disc_value"]: s for s in info.get("segments", [])}
    check(sorted(got) == sorted(spans), f"{image_rel}: segments {sorted(got)} != {sorted(spans)}")
    for v, (start, end, row) in spans.items():
        if v not in got:
            continue
        s = got[v]
        check(s["name"] == SEGMENT_NAMES[v], f"{image_rel}: name of disc {v}")
        check(np.allclose(s["rows"], [start, end], atol=1e-6),
              f"{image_rel}: {s['name']} rows {s['rows']} != {[start, end]}")
        check(abs(s["disc_row"] - row) < 1e-6, f"{image_rel}: {s['name']} disc_row")
        check(np.allclose(s["disc_voxel"], discs[v], atol=1e-6), f"{image_rel}: {s['name']} voxel")
    return info


check_case("pam50/PAM50small_T2w.nii.gz",
           {"seg": "pam50/PAM50small_T2w_seg.nii.gz",
            "discs": "pam50/PAM50small_T2w_labels-disc.nii.gz",
            "levels": "pam50/PAM50small_T2w_levels.nii.gz"}, "discs")
full = check_case("errsm30-full/errsm30_T2w.nii.gz",
                  {"seg": "errsm30-full/errsm30_T2w_seg-partial-C3toC5.nii.gz",
                   "vert_labels": "errsm30-full/errsm30_T2w_labels-vert.nii.gz"}, "vert")
# errsm30's vertebral labels 3 (C3) and 11 (T4) must not turn into discs C2-3 / T3-4.
if full is not None:
    check(full.get("segments") == [], "errsm30-full: vertebral labels gave segments")
    check("segments_note" in full, "errsm30-full: no note on why there are no segments")
check_case("errsm30-crop/errsm30crop_T2w.nii.gz",
           {"seg": "errsm30-crop/errsm30crop_T2w_seg.nii.gz",
            "vert_labels": "errsm30-crop/errsm30crop_T2w_labels-vert.nii.gz"}, "vert")

# Phantoms come in other storage orientations (S-P-L, A-I-L...): the same independent
# checks on a few of them, when the phantom command is there.
tmp = tempfile.mkdtemp(prefix="cs-info-phantoms-")
try:
    made = subprocess.run([CLI, "phantom", "--out", tmp, "--count", "4", "--seed", "7"],
                          capture_output=True, text=True, timeout=300)
    if made.returncode != 0:
        print("NOTE: phantom check skipped: cordscope-cli phantom failed:", made.stderr.strip())
    else:
        names = sorted(f[:-7] for f in os.listdir(tmp)
                       if f.endswith(".nii.gz") and "_" not in f)
        check(len(names) == 4, f"phantoms: {names}")
        for name in names:
            expected = {"seg": f"{name}_seg.nii.gz", "discs": f"{name}_labels-disc.nii.gz",
                        "lesion": f"{name}_lesion.nii.gz", "truth": f"{name}_truth.json"}
            info = check_case(f"{name}.nii.gz", expected, "discs", root=tmp)
            if info is not None:
                print(f"{name}: {info['orientation']}, {len(info['segments'])} segments")
finally:
    shutil.rmtree(tmp)

# A sidecar found in an annotation folder given with --annotations.
tmp = tempfile.mkdtemp(prefix="cs-info-ann-")
try:
    image = os.path.join(tmp, "scan.nii.gz")
    shutil.copy(os.path.join(REAL, "errsm30-crop", "errsm30crop_T2w.nii.gz"), image)
    os.mkdir(os.path.join(tmp, "ann"))
    sidecar = os.path.join(tmp, "ann", "scan.cordscope.json")
    with open(sidecar, "w") as f:
        f.write('{"schema_version": 1}\n')
    res = run_info("--annotations", os.path.join(tmp, "ann"), image)
    check(res.returncode == 0, f"--annotations: exit {res.returncode}: {res.stderr}")
    if res.returncode == 0:
        info = json.loads(res.stdout)
        check(info["labels"]["sidecar"] == sidecar, f"--annotations: {info['labels']}")
        check("segments" not in info, "no label files, yet segments")
        check(info["default_slice"] == 26, "no mask: the middle slice, 52 // 2")
        check(info["default_slice_from"] == "middle (no cord mask)", "default_slice_from")
    # An empty cord mask is no error: the middle slice, and the reason said.
    seg_img = nib.load(os.path.join(REAL, "errsm30-crop", "errsm30crop_T2w_seg.nii.gz"))
    empty = np.zeros(seg_img.shape, dtype=np.uint8)
    nib.save(nib.Nifti1Image(empty, seg_img.affine, seg_img.header),
             os.path.join(tmp, "scan_seg.nii.gz"))
    res = run_info(image)
    check(res.returncode == 0, f"empty mask: exit {res.returncode}: {res.stderr}")
    if res.returncode == 0:
        info = json.loads(res.stdout)
        check(info["default_slice"] == 26 and
              info["default_slice_from"] == "middle (empty cord mask)", "empty mask")
finally:
    shutil.rmtree(tmp)

# ---- bad input: a message naming the file on stderr, exit 1, nothing on stdout ----
tmp = tempfile.mkdtemp(prefix="cs-info-")
try:
    def expect_failure(args, needles, what):
        res = run_info(*args)
        check(res.returncode == 1, f"{what}: exit {res.returncode}, want 1")
        check(res.stdout == "", f"{what}: printed to stdout: {res.stdout[:200]}")
        for needle in needles:
            check(needle in res.stderr, f"{what}: stderr {res.stderr!r} lacks {needle!r}")

    missing = os.path.join(tmp, "missing.nii.gz")
    expect_failure([missing], [missing], "missing file")
    expect_failure([], ["FILE"], "no argument")
    expect_failure(["--no-such-option", missing], ["no-such-option"], "unknown option")
    expect_failure([tmp], [tmp, "folder"], "a folder")

    text = os.path.join(tmp, "notes.nii")
    with open(text, "w") as f:
        f.write("not a NIfTI file\n")
    expect_failure([text], [text], "not NIfTI")

    # A truncated image: the first 20000 bytes of the decompressed PAM50.
    src = os.path.join(REAL, "pam50", "PAM50small_T2w.nii.gz")
    cut = os.path.join(tmp, "cut.nii.gz")
    with gzip.open(src, "rb") as f:
        raw = f.read()
    with gzip.open(cut, "wb") as f:
        f.write(raw[:20000])
    expect_failure([cut], [cut], "truncated image")

    # Discs out of order: PAM50 with the labels C3-4 (4) and C5-6 (6) swapped.
    case = os.path.join(tmp, "swap.nii.gz")
    shutil.copy(src, case)
    disc_img = nib.load(os.path.join(REAL, "pam50", "PAM50small_T2w_labels-disc.nii.gz"))
    d = np.asarray(disc_img.dataobj).copy()
    four, six = d == 4, d == 6
    d[four], d[six] = 6, 4
    swapped = os.path.join(tmp, "swap_labels-disc.nii.gz")
    nib.save(nib.Nifti1Image(d, disc_img.affine, disc_img.header), swapped)
    expect_failure([case], [swapped, "out of order"], "discs out of order")

    # A cord mask on another grid.
    os.remove(swapped)
    seg_img = nib.load(os.path.join(REAL, "errsm30-crop", "errsm30crop_T2w_seg.nii.gz"))
    wrong = os.path.join(tmp, "swap_seg.nii.gz")
    nib.save(seg_img, wrong)
    expect_failure([case], [wrong, "does not match"], "mask on another grid")

    helped = run_info("--help")
    check(helped.returncode == 0 and "segments" in helped.stdout, "--help")
finally:
    shutil.rmtree(tmp)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
