"""How many optimiser steps the torch affine needs (issue 15): Dice and seconds per schedule.

The affine job is the largest stage before the deformable one in a batched 2 mm run (about 1.7-2.4 s
of 300 Adam steps a pair). This bench preprocesses the 21 shared pairs (LPBA40 S02..S11 to S01,
OASIS-TRT sub-02..sub-12 to sub-01, 2 mm) once with the README command (methods [affine], default
config), then re-estimates every pair's affine in this one process with each schedule, one thread as
a batch item has, and scores it as the workflow does (labels by the corner vote, mean Dice over the
labels both subjects have). The default schedule's Dice must equal the workflow's own ``pairs.tsv``
(the same code on the same files): the bench prints the largest difference.

    python bench/bench_affine_steps.py      # writes bench/results/affine_steps_2mm.json
    python bench/bench_affine_steps.py --schedules NAME ... --tag T   # the default and these (quoted names)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_affine_torch import run as run_workflow  # noqa: E402
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from cohortreg.sheet.datasets import SHARED_DATA, available, write_sheet  # noqa: E402
from cohortreg.paths import Layout  # noqa: E402

# name -> torch affine settings on top of config.yaml's (scales [4, 2]: 8 mm and 4 mm levels)
SCHEDULES = {
    "default (config.yaml)": {},  # r[100,0] a[100,50] since 9f5b3b2 (the results before it name r[100,50] a[100,50])
    "r[100,50] a[100,50]": {"rigid_iterations": [100, 50]},
    "r[100,0] a[100,50]": {"rigid_iterations": [100, 0]},
    "r[60,30] a[60,30]": {"rigid_iterations": [60, 30], "iterations": [60, 30]},
    "r[50,0] a[100,25]": {"rigid_iterations": [50, 0], "iterations": [100, 25]},
    "r[50,25] a[50,25]": {"rigid_iterations": [50, 25], "iterations": [50, 25]},
    "r[100,0] a[100,25]": {"rigid_iterations": [100, 0], "iterations": [100, 25]},
    "r[50,0] a[50,25]": {"rigid_iterations": [50, 0], "iterations": [50, 25]},
    "r[100] a[100] (8 mm only)": {"scales": [4], "rigid_iterations": [100], "iterations": [100]},
}
DEFAULT = next(iter(SCHEDULES))
COHORTS = {"lpba40": 11, "oasis": 12}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedules", nargs="*", default=list(SCHEDULES), help="names of SCHEDULES (the default always runs)")
    ap.add_argument("--tag", default="", help="suffix of the result name")
    args = ap.parse_args()
    schedules = {k: v for k, v in SCHEDULES.items() if k == DEFAULT or k in args.schedules}
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    import nibabel as nib
    import torch
    import yaml

    from cohortreg.allocator import keep_freed_memory
    from cohortreg.io import nib_to_ants
    from cohortreg.transforms.label_warp import warp_labels
    from cohortreg.evaluation.metrics import dice_per_label
    from cohortreg.registration.affine import estimate_affine_torch

    work = ROOT / "bench" / "work" / "affine_steps"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sheet = write_sheet(work / "samples.tsv", COHORTS)
    workflow, wall = run_workflow(work, "torch", sheet)  # the README command, methods [affine], 2 mm
    print(f"workflow (preprocessing and the default affine): {wall:.1f} s", flush=True)
    layout = Layout(str(work / "torch"))
    base = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["affine"]["torch"]

    keep_freed_memory()  # as every workflow job does
    torch.set_num_threads(1)  # a batch item's threads (resources.affine.threads)
    sheet_df = pd.read_csv(sheet, sep="\t", dtype=str)
    images = {}
    for cohort, sid in zip(sheet_df.cohort, sheet_df.subject):
        images[(cohort, sid)] = tuple(nib_to_ants(nib.load(p.format(cohort=cohort, subject=sid)))
                                      for p in (layout.brain, layout.preproc_labels))
    pairs = [(c, sid, ids.iloc[0]) for c, ids in sheet_df.groupby("cohort", sort=False).subject for sid in ids.iloc[1:]]
    rows = []
    tmp = Path(tempfile.mkdtemp())
    c0, m0, f0 = pairs[0]  # warm-up, untimed: the first call pays for torch's lazy initialisation
    estimate_affine_torch(images[(c0, f0)][0], images[(c0, m0)][0], tmp / "a.mat", base)
    for name, extra in schedules.items():
        settings = {**base, **extra}
        for cohort, mv, fx in pairs:
            (f_img, f_lab), (m_img, m_lab) = images[(cohort, fx)], images[(cohort, mv)]
            t = time.perf_counter()
            estimate_affine_torch(f_img, m_img, tmp / "a.mat", settings)
            seconds = time.perf_counter() - t
            warped = warp_labels(f_lab, m_lab, [str(tmp / "a.mat")]).numpy()
            fixed = f_lab.numpy()
            present = np.intersect1d(np.unique(fixed), np.unique(m_lab.numpy()))
            dice = dice_per_label(fixed, warped, present[present != 0])
            rows.append({"schedule": name, "cohort": cohort, "moving": mv, "fixed": fx,
                         "dice_mean": float(np.mean(list(dice.values()))), "seconds": seconds,
                         "steps": sum(settings["rigid_iterations"]) + sum(settings["iterations"])})
        print(f"{name}: done", flush=True)
    df = pd.DataFrame(rows)
    ref = df[df.schedule == DEFAULT].merge(workflow[workflow.method == "affine"], on=["cohort", "moving", "fixed"],
                                                       suffixes=("", "_workflow"))
    check = float((ref.dice_mean - ref.dice_mean_workflow).abs().max())
    default = df[df.schedule == DEFAULT].set_index(["cohort", "moving"]).dice_mean
    df["dice_change"] = df.dice_mean.values - default.loc[list(zip(df.cohort, df.moving))].values
    table = df.groupby(["schedule", "cohort"], sort=False).agg(
        steps=("steps", "first"), dice=("dice_mean", "mean"), change_mean=("dice_change", "mean"),
        change_worst=("dice_change", "min"), seconds=("seconds", "mean")).reset_index()
    res = ROOT / "bench" / "results" / f"affine_steps_2mm{'_' + args.tag if args.tag else ''}.json"
    res.write_text(json.dumps({"benchmark": "affine_steps_2mm", "commit": bench_commit(), "machine": machine(), "threads": 1,
                               "default_vs_workflow_max_abs_dice_difference": check, "schedules": schedules,
                               "table": table.round(4).to_dict("records"), "pairs": df.round(5).to_dict("records")},
                              indent=1) + "\n")
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"default schedule against the workflow's pairs.tsv: largest Dice difference {check:.2e}")
    print(f"wrote {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
