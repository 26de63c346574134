"""Templates across cohorts (issue 16), on real data at 2 mm, with the README commands.

1. Build: LPBA40 S02..S20 and OASIS-TRT sub-02..sub-12 (split train; S01 and sub-01 are split test),
   ``snakemake template`` with the torch engine, ``iterations`` deformable updates: wall time per
   iteration (from the jobs' benchmark files and the run's wall clock), peak memory per job, the
   convergence table.
2. Use: ``design: template`` registers S01 and sub-01 (not in the build) to it with torch; Dice to the
   template's labels of their protocol, against the same subjects registered to one subject used as
   the template (``design: reference`` with LPBA40 S02 and OASIS-TRT sub-02).
3. Balance: 19 LPBA40 + 3 OASIS-TRT subjects, ``weighting: cohort`` against ``subject``: the mean warp
   norm from the template to each cohort's inputs (its last round), which should be smaller for
   OASIS-TRT with cohort weighting.

    python -m bench run template            # writes bench/results/template_2mm.json
    python -m bench run template --skip use balance --stop-below-mm 1.5   # template_2mm_stop.json
    python -m bench run template --method ants --iterations 2 --skip use balance   # template_2mm_ants.json
"""

from __future__ import annotations

import argparse
import json
import os
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

LPBA = [f"S{i:02d}" for i in range(1, 21)]
OASIS = [f"{i:02d}" for i in range(1, 13)]


def sheet(path: Path, cohorts: dict[str, list[str]], test: set[tuple[str, str]]) -> Path:
    return write_sheet(path, cohorts, split=lambda c, s: "test" if (c, s) in test else "train")


def snakemake(work: Path, cfg: dict, *targets: str, cores: int = 2) -> tuple[float, int, str]:
    name = cfg["template"]["name"] + "_" + cfg.get("design", "reference")
    (work / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *targets, "--cores", str(cores),
                        "--keep-going", "--configfile", str(work / f"{name}.yaml")], cwd=work, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    (work / f"{name}.log").write_text(r.stdout + r.stderr)
    return time.time() - t0, r.returncode, r.stderr[-2000:]


def base_config(work: Path, samples: Path, out: str, template: dict, method_params: dict) -> dict:
    return {"samples": str(samples), "outdir": str(work / out), "methods": ["torch"], "preprocess": {"spacing": 2.0},
            "affine": {"engine": "torch"}, "template": template, "method_params": method_params}


def log_wall(log: Path) -> float:
    """Seconds from the first to the last timestamp of a Snakemake log (the build's own clock)."""
    import re
    from datetime import datetime

    stamps = re.findall(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", log.read_text(), re.M)
    if len(stamps) < 2:
        return float("nan")
    t = [datetime.strptime(" ".join(x.split()), "%a %b %d %H:%M:%S %Y") for x in (stamps[0], stamps[-1])]
    return (t[1] - t[0]).total_seconds()


def job_table(out: Path, name: str) -> pd.DataFrame:
    rows = []
    for f in (out / "benchmarks" / "template" / name).rglob("*.tsv"):
        b = pd.read_csv(f, sep="\t")
        rel = f.relative_to(out / "benchmarks" / "template" / name).parts
        it = rel[0] if rel[0].startswith("iter-") else f.stem
        rows.append({"step": it, "s": float(b.s.iloc[-1]), "max_rss_mb": float(b.max_rss.iloc[-1])})
    df = pd.DataFrame(rows)
    return (df.groupby("step").agg(jobs=("s", "size"), job_s_mean=("s", "mean"), job_s_sum=("s", "sum"),
                                   peak_rss_mb=("max_rss_mb", "max")).reset_index())


def cohort_warp_norm(out: Path, name: str, last: int) -> dict[str, float]:
    """Per cohort: the mean |warp| (mm) over the brain of its inputs' registrations to the final template."""
    from cohortreg.transforms.files import read_field
    from cohortreg.template.shape import field_norm

    root = out / "templates" / name / f"iter-{last:02d}"
    mask = np.asarray(nib.load(out / "templates" / name / f"tpl-{name}_desc-brain_mask.nii.gz").dataobj) > 0
    res: dict[str, list[float]] = {}
    for manifest in root.glob("*/sub-*/transforms.json"):
        doc = json.loads(manifest.read_text())
        if doc.get("warp"):
            norm = field_norm(read_field(str(manifest.parent / doc["warp"])))
            res.setdefault(manifest.parent.parent.name, []).append(float(norm[mask].mean()))
    return {c: float(np.mean(v)) for c, v in res.items()}


RESULT = Path("template_2mm")  # its name; the file is result_path("template", name), set in main


def save(result: dict) -> None:
    """Merge into the results file after every section: a long bench killed later keeps what it measured."""
    old = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    RESULT.write_text(json.dumps({**old, **result}, indent=1, default=str) + "\n")
    print(f"wrote {RESULT}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--balance-iterations", type=int, default=2)
    ap.add_argument("--balance-preset", default="default", help="the torch preset of the two balance builds")
    ap.add_argument("--skip", nargs="*", default=[], choices=["build", "use", "balance"])
    ap.add_argument("--method", default="torch", choices=["torch", "ants"],
                    help="template.method of the build (its preset: default); ants writes template_2mm_ants.json")
    ap.add_argument("--harvest", action="store_true",
                    help="record what a stopped build left (its finished jobs and update rows) as <result>_partial.json")
    ap.add_argument("--stop-below-mm", type=float, default=None,
                    help="template.stop_below_mm of the build; the results go to template_2mm_stop.json")
    ap.add_argument("--tag", default="", help="suffix of the result name (a rerun beside an earlier result)")
    args = ap.parse_args(argv)
    global RESULT
    RESULT = result_path("template", "template_2mm")
    if args.stop_below_mm is not None:
        RESULT = RESULT.with_name(RESULT.stem + "_stop.json")
    if args.method != "torch":
        RESULT = RESULT.with_name(f"{RESULT.stem}_{args.method}.json")
    if args.tag:
        RESULT = RESULT.with_name(f"{RESULT.stem}_{args.tag}.json")
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    work = ROOT / "bench" / "work" / "template_2mm"
    work.mkdir(parents=True, exist_ok=True)
    torch_params = {"torch": {"preset": "default", "device": "cpu"}}
    if args.method != "torch":
        torch_params[args.method] = {"preset": "default"}
    result: dict = {"benchmark": RESULT.stem, "commit": bench_commit(), "machine": machine(), "cores": 2,
                    "method": args.method}

    test = {("lpba40", "S01"), ("oasis", "01")}
    samples = sheet(work / "samples.tsv", {"lpba40": LPBA, "oasis": OASIS}, test)
    tpl = {"name": "study", "iterations": args.iterations, "method": args.method, "weighting": "cohort",
           "stop_below_mm": args.stop_below_mm}
    out_name = "out" if args.method == "torch" else f"out_{args.method}"
    cfg = base_config(work, samples, out_name, tpl, torch_params)
    out = work / out_name
    if args.harvest:  # a build stopped before its end: its finished jobs and the updates it made
        rows = [json.loads(p.read_text()) for p in sorted((out / "templates" / "study").glob("iter-*/*_update.json"))]
        result["partial_build"] = {"inputs": len(LPBA) + len(OASIS) - 2, "iterations": args.iterations,
                                   "jobs": job_table(out, "study").round(3).to_dict("records"), "update_rows": rows}
        print(json.dumps(result["partial_build"], indent=1, default=str))
        RESULT = RESULT.with_name(RESULT.stem + "_partial.json")
        save(result)
        return 0
    if "build" not in args.skip:
        wall, rc, err = snakemake(work, cfg, "template")
        conv = pd.read_csv(out / "templates" / "study" / "convergence.tsv", sep="\t")
        jobs = job_table(out, "study")
        result["build"] = {"inputs": len(LPBA) + len(OASIS) - 2, "iterations": args.iterations, "wall_s": round(wall, 1),
                           "wall_s_from_log": log_wall(work / "study_reference.log"),
                           "returncode": rc, "jobs": jobs.round(3).to_dict("records"),
                           "convergence": conv.round(5).to_dict("records")}
        print(f"build: {wall:.0f} s, rc {rc}")
        print(jobs.to_string(index=False))
        print(conv.to_string(index=False))
        save(result)
    if "use" not in args.skip:
        use = {}
        wall, rc, err = snakemake(work, {**cfg, "design": "template"})
        to_tpl = pd.read_csv(out / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
        one = {"lpba40": ["S02", "S01"], "oasis": ["02", "01"]}  # every one a test subject: S02, 02 are the references
        single = sheet(work / "single.tsv", one, {(c, s) for c, ids in one.items() for s in ids})
        cfg_single = base_config(work, single, "single", {**tpl, "name": "none"}, torch_params)
        wall2, rc2, err2 = snakemake(work, cfg_single)
        to_one = pd.read_csv(work / "single" / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
        for df, key in ((to_tpl, "to_template"), (to_one, "to_one_subject")):
            for r in df.itertuples():
                use.setdefault(f"{r.cohort}/{r.moving}", {})[key] = {"fixed": r.fixed, "status": r.status,
                                                                      "dice": r.dice_mean, "hd95": r.hd95}
        result["use"] = {"wall_s": [round(wall, 1), round(wall2, 1)], "returncode": [rc, rc2], "pairs": use}
        print(json.dumps(use, indent=1))
        save(result)
    if "balance" not in args.skip:
        bal = {}
        bsheet = sheet(work / "balance.tsv", {"lpba40": LPBA[1:], "oasis": OASIS[1:4]}, set())
        for weighting in ("cohort", "subject"):
            name = f"bal{weighting}"
            c = base_config(work, bsheet, f"balance_{weighting}",
                            {"name": name, "iterations": args.balance_iterations, "method": "torch", "weighting": weighting},
                            {"torch": {"preset": args.balance_preset, "device": "cpu"}})
            wall, rc, err = snakemake(work, c, "template")
            bal[weighting] = {"wall_s": round(wall, 1), "returncode": rc, "iterations": args.balance_iterations,
                              "preset": args.balance_preset,
                              "warp_norm_mm": cohort_warp_norm(work / f"balance_{weighting}", name,
                                                               args.balance_iterations + 1)}
            print(weighting, bal[weighting])
        result["balance"] = bal
    save(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
