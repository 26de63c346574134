"""Template route vs multi-atlas route (issue 32), through the workflow itself, on held-out subjects.

Per cohort a sheet with a split column: its first ``pool`` subjects are train (they build the template and
are the atlas pool, in sheet order so that select: first takes K of them), the next ``targets`` are test.
One `snakemake` run per cohort with ``design: template``, ``methods: [torch]`` and ``labelling: {atlases: K}``
labels every test subject both ways: the template's labels carried through its registration to the
template (route template) and K atlases of the pool fused by majority vote (route atlases). From
labelling.tsv, over the test subjects only: mean Dice, and per region the propagated against the manual
volume (ICC(3,1), mean absolute error in %, averaged over regions); from the jobs' benchmark files, seconds
per test subject of each route (template: its affine and registration to the template plus the route job;
atlases: its labelling job), and the template build's wall time.

    python -m bench run template_route --cohorts lpba40:10:6,oasis:8:4 --k 5   (cohort:pool:targets)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import ROOT, commit as bench_commit, machine, result_path, snakemake_env
from cohortreg.labelling.volumes import icc_3_1
from cohortreg.sheet.datasets import COHORTS, write_sheet


def seconds(path: Path) -> float:
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0]) if path.exists() else float("nan")


def route_summary(acc: pd.DataFrame, route: str, targets: list[str]) -> dict:
    rows = acc[(acc.route == route) & acc.subject.isin(targets)]
    per_subject = rows.groupby("subject")["dice"].mean()
    iccs, errors = [], []
    for _, grp in rows.groupby("label"):
        if len(grp) >= 3:
            iccs.append(icc_3_1(grp.volume_ml.to_numpy(float), grp.manual_ml.to_numpy(float)))
            errors.append(float((grp.volume_error_pct.abs()).mean()))
    return {"dice_mean": float(per_subject.mean()), "dice_per_target": {s: round(float(d), 4) for s, d in per_subject.items()},
            "volume_icc31_mean": float(np.nanmean(iccs)) if iccs else None,
            "volume_abs_error_pct_mean": float(np.mean(errors)) if errors else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohorts", default="lpba40:10:6,oasis:8:4", help="cohort:pool:targets, comma-separated")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--out", default="template_route_2mm")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_template_route_"))
    result: dict = {"benchmark": "template_route", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": bench_commit(),
                    "machine": machine(), "cores": args.cores, "k": args.k,
                    "template_iterations": args.iterations, "method": "torch", "fusion": "majority", "cohorts": {}}
    dest = result_path("template_route", args.out)
    env = snakemake_env()
    for spec in args.cohorts.split(","):
        cohort, n_pool, n_targets = spec.split(":")
        ids = COHORTS[cohort][1][:int(n_pool) + int(n_targets)]
        pool, targets = ids[:int(n_pool)], ids[int(n_pool):]
        d = work / cohort
        sheet = write_sheet(d / "samples.tsv", {cohort: ids}, split=lambda c, s: "train" if s in pool else "test")
        (d / "study.yaml").write_text(
            f"design: template\nmethods: [torch]\ntemplate: {{name: bench, iterations: {args.iterations}}}\n"
            f"labelling: {{atlases: {args.k}, select: first}}\n")
        out = d / "out"
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(args.cores),
                              "--configfile", str(ROOT / "config" / "config.yaml"), str(d / "study.yaml"),
                              "--config", f"samples={sheet}", f"outdir={out}"], cwd=d, env=env, capture_output=True,
                             text=True)
        wall = time.perf_counter() - t0
        if run.returncode != 0:
            print(run.stderr[-4000:])
            return 1
        acc = pd.read_csv(out / "metrics" / "labelling.tsv", sep="\t", dtype={"subject": str, "label": str})
        acc = acc[acc.subject != "ALL"]
        bench = out / "benchmarks"
        tpl_s = {s: seconds(bench / "affine" / cohort / f"sub-{s}_to-tpl-bench.tsv")
                 + seconds(bench / "register" / cohort / f"sub-{s}_to-tpl-bench_torch.tsv")
                 + seconds(bench / "template_route" / cohort / f"sub-{s}.tsv") for s in targets}
        atlas_s = {s: seconds(bench / "labelling" / cohort / f"sub-{s}_atlas-{cohort.replace('-', '')}.tsv")
                   for s in targets}
        build = sorted(bench.glob("template/bench/**/*.tsv"))
        result["cohorts"][cohort] = {
            "pool": list(pool), "targets": list(targets), "wall_s": round(wall, 1),
            "template_build_job_s": round(sum(seconds(p) for p in build), 1),
            "template": {**route_summary(acc, "template", targets),
                         "seconds_per_target": float(np.nanmean(list(tpl_s.values())))},
            "atlases": {**route_summary(acc, "atlases", targets),
                        "seconds_per_target": float(np.nanmean(list(atlas_s.values())))}}
        dest.write_text(json.dumps(result, indent=1) + "\n")  # each cohort as it finishes
        for route in ("template", "atlases"):
            r = result["cohorts"][cohort][route]
            print(f"{cohort} {route}: Dice {r['dice_mean']:.4f} ICC {r['volume_icc31_mean']} err "
                  f"{r['volume_abs_error_pct_mean']} s/target {r['seconds_per_target']:.1f}", flush=True)
    print(f"written {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
