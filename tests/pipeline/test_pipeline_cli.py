#!/usr/bin/python3
"""cordscope-cli detect / adapt / evaluate end to end on small phantoms.

- detect --detector zscore: the JSON has the documented schema; the anomaly map read back
  with nibabel is on the case's voxel grid (shape, affine), non-zero only on the detected
  slice, and with an obvious lesion inserted here (independent truth: cord voxels of one
  segment raised to near-CSF brightness) its peak lies in that lesion and the top segment
  is the lesion's segment.
- detect --detector u2ad with a tiny model: EU / AU / mean maps on the grid, balanced
  K=10 uses the fewest passes and no more than random.
- adapt: 2 epochs of a tiny configuration write a well-formed run folder whose
  checkpoint detect accepts.
- evaluate: the metric table and JSON on a handful of phantoms.
- bad model files are refused with a message naming the file, and no output is written.
Needs numpy and nibabel (Debian's python3)."""

import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

try:
    import nibabel as nib
    import numpy as np
except ImportError as e:
    print("skip: %s" % e)
    sys.exit(77)

CLI = os.environ["CORDSCOPE_CLI"]
TINY = {"img_size": 96, "patch": 8, "in_chans": 1, "enc_dim": 32, "enc_depth": 2,
        "enc_heads": 4, "dec_dim": 16, "dec_depth": 1, "dec_heads": 2, "mlp_ratio": 4.0,
        "mask_ratio": 0.75, "context_margin": 1}
SEGMENTS = ["C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1"]
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def run(*args, ok=True):
    p = subprocess.run([CLI] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=300)
    if ok and p.returncode != 0:
        print("command failed:", args, p.stdout[-2000:], p.stderr[-2000:])
    return p


def sagittal_axis(img):
    return [i for i, c in enumerate(nib.aff2axcodes(img.affine)) if c in "LR"][0]


def insert_lesion(case_dir, name, out_dir, segment):
    """Copies case NAME and raises its cord voxels between the discs around SEGMENT (on
    all slices) to 90% of the CSF level: an obvious lesion. Returns the lesion mask."""
    os.makedirs(out_dir)
    for f in os.listdir(case_dir):
        if f.startswith(name + ".") or f.startswith(name + "_"):
            if "_lesion" in f or "_truth" in f:
                continue
            shutil.copy(os.path.join(case_dir, f), out_dir)
    img = nib.load(os.path.join(case_dir, name + ".nii.gz"))
    data = np.asarray(img.dataobj).astype(np.float64)
    seg = np.asarray(nib.load(os.path.join(case_dir, name + "_seg.nii.gz")).dataobj) > 0.5
    discs = np.asarray(nib.load(os.path.join(case_dir, name + "_labels-disc.nii.gz")).dataobj)
    truth = json.load(open(os.path.join(case_dir, name + "_truth.json")))
    # The superior-inferior axis and the disc positions along it.
    codes = nib.aff2axcodes(img.affine)
    si = [i for i, c in enumerate(codes) if c in "SI"][0]
    value = 3 + SEGMENTS.index(segment)
    at = [np.argwhere(discs == v)[0][si] for v in (value - 1, value, value + 1)]
    # Segment k is centred on its disc and reaches half way to the next ones: the lesion
    # takes the middle half of that span.
    lo2 = int(math.ceil(at[1] - abs(at[1] - at[0]) / 4))
    hi2 = int(math.floor(at[1] + abs(at[2] - at[1]) / 4))
    if at[0] > at[1]:
        lo2 = int(math.ceil(at[1] - abs(at[2] - at[1]) / 4))
        hi2 = int(math.floor(at[1] + abs(at[1] - at[0]) / 4))
    index = [slice(None)] * 3
    index[si] = slice(lo2, hi2 + 1)
    lesion = np.zeros_like(seg)
    lesion[tuple(index)] = seg[tuple(index)]
    data[lesion] = 0.9 * truth["csf_intensity"]
    out = nib.Nifti1Image(data.astype(np.float32), img.affine)
    nib.save(out, os.path.join(out_dir, name + ".nii.gz"))
    return lesion, img


def main():
    tmp = tempfile.mkdtemp(prefix="cs-pipeline-")
    try:
        cases = os.path.join(tmp, "cases")
        p = run("phantom", "--out", cases, "--count", 8, "--seed", 3, "--lesion-rate", 0.5,
                "--size", "small", "--no-confounders", "--jobs", 1, "--quiet")
        check(p.returncode == 0, "phantoms made")
        truths = {f[:-len("_truth.json")]: json.load(open(os.path.join(cases, f)))
                  for f in os.listdir(cases) if f.endswith("_truth.json")}
        normal = sorted(n for n, t in truths.items() if not t["abnormal"])[0]

        # ---- z-score detector, schema, maps on the right voxels ----------------------
        lesion_dir = os.path.join(tmp, "lesion")
        lesion, img = insert_lesion(cases, normal, lesion_dir, "C4-5")
        maps = os.path.join(tmp, "maps")
        out_json = os.path.join(tmp, "z.json")
        p = run("detect", os.path.join(lesion_dir, normal + ".nii.gz"), "--detector", "zscore",
                "--json", out_json, "--maps", maps)
        check(p.returncode == 0 and "zscore" in p.stderr, "detect zscore runs, says its detector")
        d = json.load(open(out_json))
        keys = {"format", "version", "case", "image", "detector", "backend", "model", "k",
                "anomaly", "scored_on", "cord_inset_px", "patient_over",
                "schedule", "passes", "slice", "grid_size", "grid_to_display_rows",
                "patient_score", "segments", "curve", "reconstruction", "timings"}
        check(keys <= set(d), "detection JSON has every documented key (missing: %s)"
              % sorted(keys - set(d)))
        check(d["format"] == "cordscope-detection" and d["version"] == 1, "format and version")
        check(d["case"] == normal and d["detector"] == "zscore" and d["backend"] == "none"
              and d["model"] is None, "case, detector, backend, model")
        check([s["name"] for s in d["segments"]] == SEGMENTS, "six segments in order")
        check(all(s["present"] and s["row_start"] < s["row_end"]
                  and s["grid_row_start"] <= s["grid_row_end"] for s in d["segments"]),
              "segments present with increasing spans")
        check(len(d["curve"]) == d["grid_size"] and all(v >= 0 for v in d["curve"]),
              "curve: one non-negative value per grid row")
        # Default: the patient score is the peak over the labelled segments' rows only.
        check(d["patient_over"] == "segments" and d["cord_inset_px"] == 2
              and d["scored_on"] == "cord", "default scoring: cord interior (2 px), segments")
        seg_rows = [r for s in d["segments"] for r in range(s["grid_row_start"],
                                                            s["grid_row_end"] + 1)]
        check(math.isclose(d["patient_score"], max(d["curve"][r] for r in seg_rows),
                           rel_tol=1e-5), "patient score = peak of the curve over the segments")
        for s in d["segments"]:
            seg_peak = max(d["curve"][s["grid_row_start"]:s["grid_row_end"] + 1])
            if not math.isclose(s["score"], seg_peak, rel_tol=1e-5, abs_tol=1e-6):
                check(False, "segment %s score = peak of its rows" % s["name"])
                break
        else:
            check(True, "segment scores = peak of the curve over their grid rows")
        best = max(d["segments"], key=lambda s: s["score"])["name"]
        check(best == "C4-5", "z-score's top segment is the lesion's (C4-5; got %s)" % best)

        files = sorted(os.listdir(maps))
        check(files == [normal + "_anomaly.nii.gz"], "zscore writes only the anomaly map: %s"
              % files)
        an_img = nib.load(os.path.join(maps, normal + "_anomaly.nii.gz"))
        an = np.asarray(an_img.dataobj)
        check(an.shape == img.shape and np.allclose(an_img.affine, img.affine, atol=1e-4),
              "anomaly map on the case's voxel grid (shape, affine)")
        check(an_img.get_data_dtype() == np.float32, "anomaly map is float32")
        ax = sagittal_axis(img)
        on = [i for i in range(an.shape[ax]) if np.take(an, i, axis=ax).max() > 0]
        check(on == [d["slice"]], "non-zero only on the detected slice %d (got %s)"
              % (d["slice"], on))
        # Every non-zero voxel within the ROI (cord dilated by 2 mm; 1 mm voxels in-plane).
        seg = np.asarray(nib.load(os.path.join(cases, normal + "_seg.nii.gz")).dataobj) > 0.5
        cord = np.argwhere(np.take(seg, d["slice"], axis=ax))
        hot = np.argwhere(np.take(an, d["slice"], axis=ax) > 0)
        far = max(np.abs(cord - h).max(axis=1).min() for h in hot)
        check(len(hot) > 0 and far <= 3, "anomaly voxels hug the cord (farthest %d voxels)" % far)
        # Along the cord, the anomaly mass (summed over each row, +-2 rows) peaks in the
        # lesion's rows: the map is on the right voxels, not shifted or flipped.
        codes = nib.aff2axcodes(img.affine)
        si = [i for i, c in enumerate(codes) if c in "SI"][0]
        rows = np.argwhere(lesion)[:, si]
        other = tuple(i for i in range(3) if i != si)
        profile = np.convolve(an.sum(axis=other), np.ones(5), mode="same")
        peak = int(np.argmax(profile))
        check(rows.min() <= peak <= rows.max(),
              "anomaly mass peaks at row %d, in the lesion's rows %d..%d"
              % (peak, rows.min(), rows.max()))
        p = run("detect", os.path.join(cases, normal + ".nii.gz"), "--detector", "zscore",
                "--quiet")
        d0 = json.loads(p.stdout)
        check(d["patient_score"] > 1.5 * d0["patient_score"],
              "the lesion raises the patient score (%.3f vs %.3f without)"
              % (d["patient_score"], d0["patient_score"]))
        p = run("detect", os.path.join(lesion_dir, normal + ".nii.gz"), "--detector", "zscore",
                "--quiet", "--patient-cord", "--cord-inset", "0")
        d1 = json.loads(p.stdout)
        check(d1["patient_over"] == "cord" and d1["cord_inset_px"] == 0
              and math.isclose(d1["patient_score"], max(d1["curve"]), rel_tol=1e-5),
              "--patient-cord --cord-inset 0: patient score = peak of the whole cord's curve")
        p = run("detect", os.path.join(lesion_dir, normal + ".nii.gz"), "--detector", "zscore",
                "--quiet", "--cord-inset", "9")
        check(p.returncode != 0 and "--cord-inset" in p.stderr, "--cord-inset 9 is refused")

        # ---- tiny model: u2ad detect, Monte-Carlo maps -------------------------------
        tiny_cfg = os.path.join(tmp, "tiny.json")
        json.dump(TINY, open(tiny_cfg, "w"))
        model = os.path.join(tmp, "tiny.safetensors")
        p = run("pretrain", cases, "--config", tiny_cfg, "--epochs", 1, "--out", model,
                "--threads", 1, "--quiet")
        check(p.returncode == 0 and os.path.exists(model), "tiny model pretrained")
        umaps = os.path.join(tmp, "umaps")
        p = run("detect", os.path.join(lesion_dir, normal + ".nii.gz"), "--model", model,
                "-k", 10, "--schedule", "balanced", "--maps", umaps, "--threads", 1)
        check(p.returncode == 0 and "backend cpu" in p.stderr, "u2ad detect prints the backend")
        u = json.loads(p.stdout)
        check(u["detector"] == "u2ad" and u["backend"] == "cpu" and u["model"] == model
              and u["k"] == 10 and u["schedule"] == "balanced" and u["grid_size"] == 96,
              "u2ad JSON: detector, backend, model, k, schedule, grid")
        check(1 <= u["passes"] <= 14, "balanced K=10: at most 14 passes (%d)" % u["passes"])
        r = run("detect", os.path.join(lesion_dir, normal + ".nii.gz"), "--model", model,
                "-k", 10, "--schedule", "random", "--threads", 1, "--quiet")
        ur = json.loads(r.stdout)
        check(ur["passes"] >= u["passes"], "random uses at least as many passes (%d >= %d)"
              % (ur["passes"], u["passes"]))
        check(all(isinstance(u["reconstruction"][k], float)
                  for k in ("mse", "psnr", "ssim", "mean_eu")), "reconstruction metrics")
        names = sorted(os.listdir(umaps))
        want = sorted(normal + "_%s.nii.gz" % m for m in ("anomaly", "eu", "au", "mean"))
        check(names == want, "u2ad writes anomaly, EU, AU and mean maps")
        vols = {m: nib.load(os.path.join(umaps, normal + "_%s.nii.gz" % m))
                for m in ("anomaly", "eu", "au", "mean")}
        check(all(v.shape == img.shape and np.allclose(v.affine, img.affine, atol=1e-4)
                  for v in vols.values()), "every map on the case's grid")
        eu = np.asarray(vols["eu"].dataobj)
        au = np.asarray(vols["au"].dataobj)
        an = np.asarray(vols["anomaly"].dataobj)
        check(eu.min() >= 0 and eu.max() > 0 and au.max() > 0, "EU and AU non-negative, not 0")
        check(np.all(an <= au + 1e-6), "the anomaly map is AU after post-processing (<= AU)")
        mean = np.asarray(vols["mean"].dataobj)
        src = np.asarray(img.dataobj)
        sl = np.take(mean, u["slice"], axis=ax)
        check(sl.max() > 0.2 * src.max() and sl.max() < 2 * src.max(),
              "mean reconstruction back in the image's intensities")

        # ---- the bundled model is the default ------------------------------------------
        p = run("detect", os.path.join(lesion_dir, normal + ".nii.gz"), "--threads", 1,
                "--quiet")
        b = json.loads(p.stdout) if p.returncode == 0 else {}
        check(str(b.get("model", "")).endswith("models/cordscope-u2ad-small.safetensors")
              and b.get("grid_size") == 256 and b.get("passes", 99) <= 14,
              "detect without --model uses the bundled model (%s)" % b.get("model"))

        # ---- adapt: 2 epochs, run folder --------------------------------------------
        run_dir = os.path.join(tmp, "run")
        adapted = os.path.join(tmp, "adapted.safetensors")
        p = run("adapt", cases, "--model", model, "--out", adapted, "--run", run_dir,
                "--epochs", 2, "--refresh", 1, "--au-from", 1, "--au-percentile", 95, "--watch", 2,
                "--threads", 1)
        check(p.returncode == 0 and "adapted 2 epochs" in p.stdout, "adapt 2 epochs")
        rj = json.load(open(os.path.join(run_dir, "run.json")))
        check(rj["format"] == "cordscope-adapt-run" and rj["version"] == 1
              and rj["status"] == "done" and rj["epochs_done"] == 2, "run.json: done, 2 epochs")
        check(rj["options"]["au_percentile"] == 95, "run.json: --au-percentile 95 recorded")
        p = run("adapt", cases, "--model", model, "--out", adapted, "--au-percentile", 100)
        check(p.returncode == 1 and "--au-percentile" in p.stderr, "--au-percentile 100 refused")
        check(rj["options"]["strategy"] == "eu+au" and rj["grid_size"] == 96
              and len(rj["cases"]) == 8 and len(rj["watched"]) == 2, "run.json options, cases")
        check([r["epoch"] for r in rj["refreshes"]] == [0, 1, 2], "refreshes at 0, 1, and end")
        ok_maps = True
        for r in rj["refreshes"]:
            for w in r["watched"]:
                for key in ("image", "roi", "eu", "au", "mean"):
                    f = os.path.join(run_dir, w["maps"][key])
                    ok_maps &= os.path.getsize(f) == 96 * 96 * 4
                arr = np.fromfile(os.path.join(run_dir, w["maps"]["eu"]), "<f4")
                ok_maps &= bool(np.isfinite(arr).all() and arr.min() >= 0)
                ok_maps &= math.isclose(w["mean_eu"], float(arr[np.fromfile(os.path.join(
                    run_dir, w["maps"]["roi"]), "<f4") > 0].mean()), rel_tol=1e-4)
        check(ok_maps, "watched maps: 96x96 float32 files, mean EU matches the EU map")
        # The eu+au run also keeps each watched case's AU-excluded patches: 0/1, constant
        # over every patch, on ROI patches only, at most 3 8-connected groups of patches
        # (3 components; two components may touch one patch group, never more groups),
        # and over the refreshes something is excluded. (The last refresh, after the final
        # epoch, maps the watched cases only and finds no components.)
        P = rj["config"]["patch"]
        G = 96 // P
        ok_ex, n_ex = True, 0
        for r in rj["refreshes"]:
            for w in r["watched"]:
                if r["epoch"] == rj["epochs_done"]:
                    ok_ex &= "excluded" not in w["maps"]
                    continue
                ex = np.fromfile(os.path.join(run_dir, w["maps"]["excluded"]), "<f4")
                roi = np.fromfile(os.path.join(run_dir, w["maps"]["roi"]), "<f4")
                ex, roi = ex.reshape(96, 96), roi.reshape(96, 96)
                blocks = ex.reshape(G, P, G, P)
                grid = blocks[:, 0, :, 0]
                ok_ex &= bool(np.isin(ex, (0.0, 1.0)).all())
                ok_ex &= bool((blocks == grid[:, None, :, None]).all())
                roi_patch = roi.reshape(G, P, G, P).max(axis=(1, 3)) > 0
                ok_ex &= bool(not (grid.astype(bool) & ~roi_patch).any())
                seen, groups = np.zeros_like(grid, bool), 0
                for y, x in zip(*np.nonzero(grid)):
                    if seen[y, x]:
                        continue
                    groups += 1
                    stack = [(y, x)]
                    seen[y, x] = True
                    while stack:
                        cy, cx = stack.pop()
                        for dy in (-1, 0, 1):
                            for dx in (-1, 0, 1):
                                ny, nx = cy + dy, cx + dx
                                if 0 <= ny < G and 0 <= nx < G and grid[ny, nx] \
                                        and not seen[ny, nx]:
                                    seen[ny, nx] = True
                                    stack.append((ny, nx))
                ok_ex &= groups <= 3
                n_ex += int(grid.sum())
        check(ok_ex and n_ex > 0, "excluded maps: whole ROI patches, <= 3 groups (%d patches "
              "over all refreshes)" % n_ex)
        check(rj["refreshes"][0]["mean_eu_all"] is not None, "guided refresh covers all slices")
        rows = open(os.path.join(run_dir, "loss.csv")).read().split("\n")
        steps = 2 * math.ceil(rj["n_slices"] / 10)
        check(rows[0].startswith("step,epoch,loss") and len([r for r in rows[1:] if r]) == steps,
              "loss.csv: one row per step (%d)" % steps)
        erows = [r for r in open(os.path.join(run_dir, "epochs.csv")).read().split("\n")[1:] if r]
        check(len(erows) == 2, "epochs.csv: one row per epoch")
        p = run("detect", os.path.join(cases, normal + ".nii.gz"), "--model",
                os.path.join(run_dir, "checkpoint.safetensors"), "--threads", 1, "--quiet")
        check(p.returncode == 0, "the run's checkpoint loads for detection")
        p = run("adapt", cases, "--model", model, "--out", adapted, "--epochs", 1,
                "--strategy", "random", "--threads", 1, "--quiet")
        check(p.returncode == 0, "random strategy adapts without a run folder")

        # ---- adapt cancelled: Ctrl-C keeps the last completed epoch --------------------
        run2 = os.path.join(tmp, "run-cancel")
        out2 = os.path.join(tmp, "cancelled.safetensors")
        proc = subprocess.Popen([CLI, "adapt", cases, "--model", model, "--out", out2, "--run",
                                 run2, "--epochs", "500", "--refresh", "1000", "--threads", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        epochs_csv = os.path.join(run2, "epochs.csv")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(epochs_csv) and len(open(epochs_csv).read().split("\n")) >= 4:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        rj = json.load(open(os.path.join(run2, "run.json")))
        done = len([r for r in open(epochs_csv).read().split("\n")[1:] if r])
        check(proc.returncode == 130 and rj["status"] == "cancelled" and rj["epochs_done"] == done
              and done >= 2, "Ctrl-C: exit 130, run.json cancelled after %d epochs (%s)"
              % (done, stderr.strip()[-120:]))
        header = open(out2, "rb").read()
        check(b'"adapted_epochs":"%d"' % done in header.replace(b" ", b""),
              "the saved weights are those of the last completed epoch")
        check(os.path.exists(os.path.join(run2, "checkpoint.safetensors")),
              "the run folder keeps its checkpoint")

        # ---- evaluate ----------------------------------------------------------------
        ev_json = os.path.join(tmp, "ev.json")
        p = run("evaluate", cases, "--detector", "zscore", "--folds", 2, "--json", ev_json,
                "--quiet")
        check(p.returncode == 0, "evaluate runs")
        lines = p.stdout.split("\n")
        prow = [l for l in lines if l.startswith("patient ")]
        srow = [l for l in lines if l.startswith("segment ")]
        check(len(prow) == 1 and "+-" in prow[0] and len(srow) == 1 and "+-" in srow[0],
              "table has patient and segment rows with mean +- sd:\n" + p.stdout)
        ev = json.load(open(ev_json))
        check(ev["cases"] == 8 and len(ev["per_case"]) == 8 and ev["folds"] == 2,
              "evaluation JSON covers the cases")
        n_abn = sum(t["abnormal"] for t in truths.values())
        check(ev["abnormal_cases"] == n_abn, "abnormal cases from the truth files")
        for level in ("patient", "segment"):
            m = ev[level]
            check(all(0 <= m[k]["mean"] <= 1 for k in ("accuracy", "recall", "specificity")),
                  "%s metrics in [0, 1]" % level)

        # ---- bad model files -----------------------------------------------------------
        blob = open(model, "rb").read()
        bad = {
            "missing": None,
            "truncated": blob[:len(blob) // 2],
            "garbage": b"not a safetensors file at all, just text\n" * 4,
        }
        header = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                             "__metadata__": {"format": "cordscope-u2ad", "version": "1",
                                              "config": json.dumps(TINY)}}).encode()
        header += b" " * ((8 - len(header) % 8) % 8)
        bad["wrong-tensors"] = struct.pack("<Q", len(header)) + header + b"\0\0\0\0"
        bad["other-version"] = blob.replace(b'"version":"1"', b'"version":"9"', 1) \
            if b'"version":"1"' in blob else blob.replace(b'"version": "1"', b'"version": "9"', 1)
        for what, content in bad.items():
            path = os.path.join(tmp, "bad-%s.safetensors" % what)
            if content is not None:
                open(path, "wb").write(content)
            out = os.path.join(tmp, "bad-%s.json" % what)
            p = run("detect", cases, "--model", path, "--json", out, ok=False)
            check(p.returncode != 0 and path in p.stderr and not os.path.exists(out)
                  and "Traceback" not in p.stderr and p.returncode < 128,
                  "bad model (%s) refused: %s" % (what, p.stderr.strip()[:160]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % failures)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
