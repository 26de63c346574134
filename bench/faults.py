"""Fault matrix (issue 13): real scans made defective at run time, run through the README command.

Every case must end as a correct result, a named error (subject, file, reason) or a QC flag,
never an unflagged wrong result; the good subjects always finish; and on the shared cohorts no
good pair is flagged ``fail`` (QC precision).

Data faults: copies of LPBA40 S12.. with one defect each, in the lpba40 cohort beside its good
subjects S01..S11 (S01 the reference), plus OASIS-TRT sub-01..12 unchanged, at 2 mm, methods
[affine, torch], --keep-going. Run faults (small runs of LPBA40 S01..S03 at 4 mm): a second run
started on the same outdir, SIGKILL of a batch job then a rerun, a disk that fills mid-run (a
small tmpfs outdir, root only) then a rerun after freeing space.

    python -m bench run faults            # writes bench/results/faults.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import yaml

from bench.harness import ROOT, commit as bench_commit, machine, result_path
from cohortreg.sheet.datasets import SHARED_DATA, available, write_sheet

LPBA = SHARED_DATA / "lpba40"
LAB = "labels_lpba56.nii.gz"


def _load(sid):
    d = LPBA / f"sub-{sid}"
    return nib.load(d / "t1w_brain.nii.gz"), nib.load(d / LAB)


def _save(arr, aff, path, dtype=None):
    img = nib.Nifti1Image(np.asarray(arr, dtype=dtype) if dtype else np.asarray(arr), aff)
    nib.save(img, str(path))
    return str(path)


def rotation_z(deg):
    a = np.deg2rad(deg)
    r = np.eye(4)
    r[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return r


# case -> (source subject, expected outcome: result | error | qc, maker(t1, labels, d) -> (t1 path, labels path))
def make_cases(d: Path) -> dict[str, tuple[str, str, object]]:
    def int16_cast(t1, lab, sid):  # a float [0, 1] scan stored as int16 after a plain cast
        return _save(np.asanyarray(t1.dataobj).astype(np.int16), t1.affine, d / f"{sid}_int16.nii.gz"), str(lab.get_filename())

    def mirrored(t1, lab, sid):  # the header mirrors left and right (T1 and labels alike)
        flip = np.diag([-1.0, 1, 1, 1])
        return (_save(np.asanyarray(t1.dataobj), flip @ t1.affine, d / f"{sid}_mirror.nii.gz"),
                _save(np.asanyarray(lab.dataobj), flip @ lab.affine, d / f"{sid}_mirror_dseg.nii.gz"))

    def background(t1, lab, sid):  # skull-stripped, on a background of -500
        return _save(np.asanyarray(t1.dataobj) * 1000.0 - 500.0, t1.affine, d / f"{sid}_bg.nii.gz", np.float32), \
            str(lab.get_filename())

    def nan(t1, lab, sid):
        a = np.asanyarray(t1.dataobj).astype(np.float32)
        a[80, 90, 80] = np.nan
        return _save(a, t1.affine, d / f"{sid}_nan.nii.gz"), str(lab.get_filename())

    def truncated(t1, lab, sid):
        raw = gzip.decompress(Path(t1.get_filename()).read_bytes())
        p = d / f"{sid}_trunc.nii.gz"
        p.write_bytes(gzip.compress(raw[: len(raw) // 2]))
        return str(p), str(lab.get_filename())

    def not_gzip(t1, lab, sid):
        p = d / f"{sid}_plain.nii.gz"
        p.write_bytes(gzip.decompress(Path(t1.get_filename()).read_bytes()))
        return str(p), str(lab.get_filename())

    def oblique(t1, lab, sid):
        r = rotation_z(15)
        return (_save(np.asanyarray(t1.dataobj), r @ t1.affine, d / f"{sid}_obl.nii.gz"),
                _save(np.asanyarray(lab.dataobj), r @ lab.affine, d / f"{sid}_obl_dseg.nii.gz"))

    def anisotropic(t1, lab, sid):  # every third slice: 1 x 1 x 3 mm
        aff = t1.affine.copy()
        aff[:3, 2] *= 3
        return (_save(np.asanyarray(t1.dataobj)[:, :, ::3], aff, d / f"{sid}_aniso.nii.gz"),
                _save(np.asanyarray(lab.dataobj)[:, :, ::3], aff, d / f"{sid}_aniso_dseg.nii.gz"))

    def two_d(t1, lab, sid):
        return (_save(np.asanyarray(t1.dataobj)[:, :, 80:81], t1.affine, d / f"{sid}_2d.nii.gz"),
                _save(np.asanyarray(lab.dataobj)[:, :, 80:81], lab.affine, d / f"{sid}_2d_dseg.nii.gz"))

    def label_grid(t1, lab, sid):
        return str(t1.get_filename()), _save(np.asanyarray(lab.dataobj)[:, :, 10:], lab.affine, d / f"{sid}_crop_dseg.nii.gz")

    def four_d(t1, lab, sid):
        a = np.asanyarray(t1.dataobj)
        return _save(np.stack([a, a], -1), t1.affine, d / f"{sid}_4d.nii.gz"), str(lab.get_filename())

    def missing(t1, lab, sid):
        return str(d / f"{sid}_absent.nii.gz"), str(lab.get_filename())

    return {"int16_cast": ("S12", "qc", int16_cast), "mirrored_header": ("S13", "qc", mirrored),
            "background_-500": ("S14", "result", background), "nan": ("S15", "error", nan),
            "truncated": ("S16", "error", truncated), "not_gzip": ("S17", "result_or_error", not_gzip),
            "oblique_15deg": ("S18", "result", oblique), "anisotropic_1x1x3": ("S19", "result", anisotropic),
            "two_d": ("S20", "error", two_d), "wrong_label_grid": ("S12", "error", label_grid),
            "four_d": ("S13", "error", four_d), "missing_file": ("S14", "error", missing)}


def snakemake(*args, timeout=3600):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def data_faults(work: Path, spacing: float) -> dict:
    d = work / "faulty"
    d.mkdir(parents=True, exist_ok=True)
    sheet = write_sheet(work / "good.tsv", {"lpba40": 11, "oasis": 12})
    rows = sheet.read_text().splitlines()
    cases = make_cases(d)
    for name, (sid, _, make) in cases.items():
        t1, lab = _load(sid)
        t1p, labp = make(t1, lab, f"{name}_{sid}")
        rows.append(f"lpba40\t{name.replace('_', '-').replace('.', '')}\t{t1p}\t{labp}")
    ids = {name: name.replace("_", "-").replace(".", "") for name in cases}
    (work / "samples.tsv").write_text("\n".join(rows) + "\n")
    cfg = {"samples": str(work / "samples.tsv"), "outdir": str(work / "out"), "methods": ["affine", "torch"],
           "preprocess": {"spacing": spacing}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.time()
    r = snakemake("--cores", "2", "--keep-going", "--configfile", work / "config.yaml")
    wall = time.time() - t0
    (work / "snakemake.log").write_text(r.stdout + r.stderr)
    pairs = pd.read_csv(work / "out" / "metrics" / "pairs.tsv", sep="\t", keep_default_na=False)
    good = pairs[~pairs.moving.isin(ids.values())]
    out = {"wall_s": round(wall, 1), "returncode": r.returncode, "cases": {}, "good": {}}
    for (cohort, method), grp in good.groupby(["cohort", "method"]):
        dice = pd.to_numeric(grp.dice_mean, errors="coerce")
        out["good"][f"{cohort}/{method}"] = {
            "n": len(grp), "n_ok": int((grp.status == "ok").sum()), "dice_median": float(dice.median()),
            "dice_min": float(dice.min()), "qc_fail": int((grp.qc == "fail").sum()), "qc_warn": int((grp.qc == "warn").sum()),
            "flags": [f"{r.moving}: {r.qc} {r.qc_reason}" for r in grp.itertuples() if r.qc != "pass"]}
    for name, (sid, expect, _) in cases.items():
        rows_ = pairs[pairs.moving == ids[name]]
        per = {}
        for r in rows_.itertuples():
            ref = out["good"][f"lpba40/{r.method}"]["dice_median"]
            dice = float(r.dice_mean) if r.status == "ok" else float("nan")
            wrong = r.status == "ok" and dice < ref - 0.15  # far below the good pairs of its method
            if r.status != "ok":
                outcome = "error" if ids[name] in r.error and ("file" in r.error or "subject" in r.error) else "unnamed error"
            elif r.qc == "fail":
                outcome = "qc"
            else:
                outcome = "wrong result, unflagged" if wrong else "result"
            per[r.method] = {"outcome": outcome, "dice": dice, "status": r.status, "qc": r.qc,
                             "reason": r.error or r.qc_reason}
        verdict = all(v["outcome"] in ("result", "error", "qc") for v in per.values())
        out["cases"][name] = {"source": sid, "expected": expect, "methods": per, "ok": bool(verdict)}
    out["good_all_finished"] = bool((good.status == "ok").all())
    out["qc_precision_no_good_fail"] = bool((good.qc != "fail").all())
    return out


def run_faults(work: Path) -> dict:
    """A second run on the same outdir, SIGKILL mid-batch, and a full disk (root only)."""
    sheet = write_sheet(work / "small.tsv", {"lpba40": 3})
    res = {}

    def cfg(outdir, **extra):
        c = {"samples": str(sheet), "outdir": str(outdir), "methods": ["affine", "torch"], "preprocess": {"spacing": 4.0},
             **extra}
        p = work / f"cfg_{Path(outdir).name}.yaml"
        p.write_text(yaml.safe_dump(c))
        return p

    # two runs on one outdir: Snakemake's lock refuses the second while the first runs
    c = cfg(work / "twice")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1",
                              "--configfile", str(c)], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    time.sleep(8)
    second = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1",
                             "--configfile", str(c)], cwd=work, env=env, capture_output=True, text=True)
    first.wait(timeout=1800)
    pairs = pd.read_csv(work / "twice" / "metrics" / "pairs.tsv", sep="\t")
    res["two_runs_same_outdir"] = {"second_refused": second.returncode != 0 and "lock" in (second.stderr + second.stdout).lower(),
                                   "first_completed": first.returncode == 0 and bool((pairs.status == "ok").all()),
                                   "second_message": [ln for ln in (second.stderr + second.stdout).splitlines() if "lock" in ln.lower()][:1]}
    # SIGKILL a batch job mid-run, then rerun with --rerun-incomplete
    c = cfg(work / "killed", batch_size=2)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "1",
                             "--configfile", str(c)], cwd=work, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    killed = False
    while time.time() < deadline and proc.poll() is None:
        stamps = list((work / "killed" / "batches").rglob("register/*.stamps")) if (work / "killed" / "batches").exists() else []
        if stamps:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.5)
    proc.wait()
    r = snakemake("--cores", "1", "--rerun-incomplete", "--configfile", c)
    pairs = pd.read_csv(work / "killed" / "metrics" / "pairs.tsv", sep="\t")
    res["sigkill_mid_batch"] = {"killed": killed, "rerun_rc": r.returncode, "all_ok": bool((pairs.status == "ok").all())}
    # a disk that fills mid-run: a 40 MB tmpfs outdir, then more room and a rerun
    mnt = work / "tmpfs"
    if os.geteuid() == 0 and shutil.which("mount"):
        mnt.mkdir(exist_ok=True)
        subprocess.run(["umount", str(mnt)], capture_output=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
        try:
            c = cfg(mnt / "out")
            r1 = snakemake("--cores", "1", "--keep-going", "--configfile", c)
            full = "No space left" in (r1.stdout + r1.stderr) or r1.returncode != 0
            subprocess.run(["mount", "-o", "remount,size=200m", str(mnt)], check=True)
            r2 = snakemake("--cores", "1", "--rerun-incomplete", "--configfile", c)
            pairs = pd.read_csv(mnt / "out" / "metrics" / "pairs.tsv", sep="\t")
            res["disk_full_mid_run"] = {"first_failed": bool(full), "rerun_rc": r2.returncode,
                                        "all_ok_after_rerun": bool((pairs.status == "ok").all())}
        finally:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    else:
        res["disk_full_mid_run"] = {"skipped": "needs root to mount a tmpfs"}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=2.0)
    ap.add_argument("--skip-run-faults", action="store_true")
    args = ap.parse_args(argv)
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    work = ROOT / "bench" / "work" / "faults"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    commit = bench_commit()
    out = {"machine": machine(), "commit": commit, "spacing_mm": args.spacing, "methods": ["affine", "torch"]}
    out["data_faults"] = data_faults(work / "data", args.spacing)
    if not args.skip_run_faults:
        out["run_faults"] = run_faults(work / "run")
    res = result_path("faults")
    res.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{'case':<20} {'expected':<16} {'affine':<28} {'torch':<28} ok")
    for name, c in out["data_faults"]["cases"].items():
        cell = lambda m: (f"{c['methods'][m]['outcome']} {c['methods'][m]['dice']:.3f}" if m in c["methods"] else "-")  # noqa: E731
        print(f"{name:<20} {c['expected']:<16} {cell('affine'):<28} {cell('torch'):<28} {c['ok']}")
    for k, v in out["data_faults"]["good"].items():
        print(f"good {k}: n={v['n']} ok={v['n_ok']} dice median {v['dice_median']:.3f} min {v['dice_min']:.3f} "
              f"qc fail {v['qc_fail']} warn {v['qc_warn']}")
    for k, v in out.get("run_faults", {}).items():
        print(k, v)
    print(f"wrote {res}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
