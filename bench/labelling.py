"""Multi-atlas labelling, leave-one-out, on the shared data (issue 32): Dice and volumes on the native grid.

Per cohort (LPBA40, OASIS-TRT) the last ``--targets`` subjects are labelled, each from the first K others
(select: first), as the workflow does (cohortreg.labelling.run: the study's affine, the method, labels
carried through the transforms onto the subject's own 1 mm grid, fused there). The registrations of
each method are computed once and fused three ways (majority, weighted, jlf); ANTs SyN (default preset)
with majority voting runs in the same bench. For each: mean Dice over the target's manual labels, the
single-atlas mean Dice of the same registrations, and per region the propagated against the manual
volume (ICC(3,1) and mean absolute error in %, averaged over regions); wall seconds of the registrations
and of the carrying and fusion, per target.

    python -m bench run labelling --cohorts lpba40,oasis --k 5 --targets 8 --methods torch,ants
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from bench.harness import ROOT, commit as bench_commit, machine, result_path
from cohortreg.labelling.run import carry_and_fuse, register_atlases
from cohortreg.labelling.volumes import accuracy, icc_3_1, voxel_ml
from cohortreg.sheet.datasets import COHORTS, subject_files
from cohortreg.subject.stages import preprocess_files, skullstrip_files

CONFIG = ROOT / "config" / "config.yaml"


def defaults() -> dict:
    import yaml

    return yaml.safe_load(CONFIG.read_text())


def prepare(cohort: str, subject: str, cfg: dict, work: Path) -> dict[str, str]:
    """The subject's preprocessed brain and mask at the working spacing (the workflow's own stages)."""
    t1, labels = subject_files(cohort, subject)
    d = work / cohort / subject
    d.mkdir(parents=True, exist_ok=True)
    files = {k: str(d / f"{k}.nii.gz") for k in ("t1p", "labp", "brain", "mask")}
    if not Path(files["brain"]).exists():
        preprocess_files(subject, str(t1), str(labels), cfg["preprocess"], files["t1p"], files["labp"], str(d / "raw.json"))
        skullstrip_files(subject, files["t1p"], cfg["skullstrip"], str(t1), "", files["brain"], files["mask"],
                         (cfg["preprocess"]["lower_percentile"], cfg["preprocess"]["upper_percentile"]),
                         str(d / "raw.json"), cfg["qc"], str(d / "qc.json"))
    return {"subject": subject, "t1": str(t1), "labels": str(labels), "brain": files["brain"], "mask": files["mask"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohorts", default="lpba40,oasis")
    ap.add_argument("--k", default="5", help="comma-separated K values; the registrations of the largest are shared")
    ap.add_argument("--targets", type=int, default=8)
    ap.add_argument("--methods", default="torch,ants")
    ap.add_argument("--fusions", default="majority,weighted,jlf", help="for the first method; the others: majority")
    ap.add_argument("--jlf", default="[{}]", help="JSON list of ants.joint_label_fusion settings to try, e.g. "
                    '\'[{}, {"rad": 1}, {"beta": 1}]\'; each is its own row (jlf/<settings>)')
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="labelling_2mm")
    args = ap.parse_args(argv)
    from cohortreg.jobs import pin_threads

    cfg = defaults()
    pin_threads(args.threads, cfg["seed"])
    ks = sorted(int(k) for k in args.k.split(","))
    methods = args.methods.split(",")
    fusions = args.fusions.split(",")
    jlf_settings = json.loads(args.jlf)
    fusion_runs = [(f, {}) for f in fusions if f != "jlf"]
    if "jlf" in fusions:  # each jlf setting its own row
        fusion_runs += [("jlf" + ("/" + json.dumps(js, sort_keys=True) if js else ""), js) for js in jlf_settings]
    work = Path(tempfile.mkdtemp(prefix="bench_labelling_"))
    result: dict = {"benchmark": "labelling", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": bench_commit(),
                    "machine": machine(), "threads": args.threads, "spacing_mm": cfg["preprocess"]["spacing"],
                    "select": "first", "targets_per_cohort": args.targets, "k": ks, "cohorts": {}}
    dest = result_path("labelling", args.out)
    for cohort in args.cohorts.split(","):
        ids = COHORTS[cohort][1]
        targets = ids[-args.targets:]
        rows: dict[str, dict] = {}
        for t in targets:
            target = prepare(cohort, t, cfg, work)
            manual = np.asarray(nib.load(target["labels"]).dataobj).astype(np.int64)
            voxel = voxel_ml(nib.load(target["t1"]).header.get_zooms())
            pool = [s for s in ids if s != t][:max(ks)]
            atlases = [prepare(cohort, s, cfg, work) for s in pool]
            for method in methods:
                params = dict(cfg["method_params"].get(method, {}))
                t0 = time.perf_counter()
                registered = register_atlases(target, atlases, len(atlases), method, params, cfg["affine"],
                                              str(work / "reg" / method / cohort / t), args.threads, t)
                reg_s = (time.perf_counter() - t0) / len(atlases)  # per atlas
                for k in ks:
                    for fusion, fuse_settings in (fusion_runs if method == methods[0] else [("majority", {})]):
                        t0 = time.perf_counter()
                        _, fused, _, carried = carry_and_fuse(target, registered[:k], {"fusion": fusion.split("/")[0],
                                                                                       "sigma_mm": 2.0, "jlf": fuse_settings}, t)
                        fuse_s = time.perf_counter() - t0
                        acc = accuracy(fused, manual, voxel)
                        single = [np.mean([r["dice"] for r in accuracy(c, manual, voxel)]) for c in carried]
                        key = f"{method}/K{k}/{fusion}"
                        row = rows.setdefault(key, {"dice": [], "single_atlas_dice": [], "seconds_per_target": [],
                                                    "register_s_per_atlas": [], "fuse_s": [], "volumes": {}})
                        row["dice"].append(float(np.mean([r["dice"] for r in acc])))
                        row["single_atlas_dice"].append(float(np.mean(single)))
                        row["register_s_per_atlas"].append(reg_s)
                        row["fuse_s"].append(fuse_s)
                        row["seconds_per_target"].append(reg_s * k + fuse_s)
                        for r in acc:
                            row["volumes"].setdefault(r["label"], []).append((r["volume_ml"], r["manual_ml"]))
                        print(f"{cohort} {t} {key}: Dice {row['dice'][-1]:.4f} (single {row['single_atlas_dice'][-1]:.4f}) "
                              f"register {reg_s:.1f} s/atlas, fuse {fuse_s:.1f} s", flush=True)
        summary = {}
        for key, row in rows.items():
            iccs, errors = [], []
            for pairs in row["volumes"].values():
                if len(pairs) >= 3:
                    v = np.asarray(pairs)
                    iccs.append(icc_3_1(v[:, 0], v[:, 1]))
                    errors.append(float(np.mean(np.abs(v[:, 0] - v[:, 1]) / v[:, 1]) * 100))
            summary[key] = {"dice_mean": float(np.mean(row["dice"])), "dice_per_target": [round(x, 4) for x in row["dice"]],
                            "single_atlas_dice_mean": float(np.mean(row["single_atlas_dice"])),
                            "volume_icc31_mean": float(np.nanmean(iccs)) if iccs else None,
                            "volume_abs_error_pct_mean": float(np.mean(errors)) if errors else None,
                            "seconds_per_target": float(np.mean(row["seconds_per_target"])),
                            "register_s_per_atlas": float(np.mean(row["register_s_per_atlas"])),
                            "fuse_s": float(np.mean(row["fuse_s"]))}
        result["cohorts"][cohort] = {"targets": list(targets), "results": summary}
        dest.write_text(json.dumps(result, indent=1) + "\n")  # each cohort as it finishes
        for key, s in summary.items():
            print(f"{cohort} {key}: Dice {s['dice_mean']:.4f} single {s['single_atlas_dice_mean']:.4f} ICC "
                  f"{s['volume_icc31_mean']} err {s['volume_abs_error_pct_mean']} s/target {s['seconds_per_target']:.1f}",
                  flush=True)
    print(f"written {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
