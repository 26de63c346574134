"""The study as a deliverable (issue 17): the full study on the shared cohorts, its tables and its report.

Two studies, each the README command then ``--report``, on real data at 2 mm:

- ``classical``: LPBA40 S01..S20 (19 pairs to S01) and OASIS-TRT sub-01..sub-12 (11 pairs to
  sub-01), methods ``[affine, ants, torch]``: the paired table torch vs ANTs and MI(i;s) against Dice;
- ``domain_shift``: the learned bench's split sheet (bench/bench_learned.py: LPBA40 S02..S09 to
  S01, OASIS-TRT sub-11, sub-12 to sub-10) with ``[affine, ants, torch]`` and the learned bench's
  four models, each as ``learned`` and ``learned_io``, as ``checkpoint:`` files
  (``--models-from``: a models/ folder of ``bench_learned.py``; without it this study is skipped).

For each: wall time of the study run and of the report (HTML and zip), the report's size, and
the study's tables (stats.tsv, mi.tsv, domain_shift.tsv, the MI-vs-Dice correlation).

    python -m bench run study --models-from bench/work/models_8min   # bench/results/study_2mm.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from bench.harness import ROOT, commit as bench_commit, machine, result_path
from bench.learned_study import config as learned_config
from cohortreg.sheet.datasets import SHARED_DATA, available, write_sheet

RESULTS = ROOT / "bench" / "results" / "study"


def classical_config(work: Path) -> dict:
    return {"samples": str(write_sheet(work / "samples.tsv", {"lpba40": 20, "oasis": 12})), "outdir": str(work / "out"),
            "methods": ["affine", "ants", "torch"], "preprocess": {"spacing": 2.0},
            "method_params": {"ants": {"preset": "default"}, "torch": {"preset": "default", "device": "cpu"}}}


def domain_shift_config(work: Path, models_from: Path) -> dict:
    cfg = learned_config(work, 0, ["affine", "ants", "torch"], [], models_from)
    cfg.pop("batch_size", None)
    return cfg


def snakemake(work: Path, *extra: str, cores: int = 2) -> tuple[float, int]:
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(cores),
                        "--keep-going", "--configfile", str(work / "config.yaml"), *extra], cwd=work,
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.time() - t0
    tag = "report" if any(e.startswith("--report") for e in extra) else "run"
    with open(work / f"snakemake_{tag}.log", "a") as fh:
        fh.write(r.stdout + r.stderr)
    return wall, r.returncode


def screenshot(html: Path, png: Path) -> bool:
    """The report's overview page in headless Chromium (Debian's chromium), as a person first sees it."""
    import tempfile

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe or not html.exists():
        return False
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={profile}", "--window-size=1400,1000", "--virtual-time-budget=10000",
                            f"--screenshot={png}", f"file://{html}"], capture_output=True, text=True, timeout=120)
    return r.returncode == 0 and png.exists()


def read(path: Path) -> list[dict]:
    return pd.read_csv(path, sep="\t", dtype={"moving": str, "fixed": str, "subject": str}).to_dict("records") \
        if path.exists() else []


def study(name: str, cfg: dict, work: Path, report: bool) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    wall, rc = snakemake(work)
    out = Path(cfg["outdir"])
    rec: dict = {"study": name, "methods": cfg["methods"], "run_wall_s": round(wall, 1), "run_rc": rc}
    pairs = pd.read_csv(out / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    rec["pairs"] = int(len(pairs)), int((pairs.status == "ok").sum())
    for stage in ("mutual_info", "report_figures"):  # the report's own jobs in the study run
        bench = out / "benchmarks" / f"{stage}.tsv"
        if bench.exists():
            b = pd.read_csv(bench, sep="\t")
            rec[f"{stage}_job_s"], rec[f"{stage}_job_mb"] = float(b.s.iloc[-1]), float(b.max_rss.iloc[-1])
    if report:
        for ext in ("html", "zip"):
            target = out / f"report.{ext}"
            w, rc = snakemake(work, "--report", str(target))
            rec[f"report_{ext}_s"], rec[f"report_{ext}_rc"] = round(w, 1), rc
            rec[f"report_{ext}_mb"] = round(target.stat().st_size / 1e6, 2) if target.exists() else None
        rec["screenshot"] = screenshot(out / "report.html", RESULTS / f"study_{name}_report_overview.png")
    keep = RESULTS / "study_2mm" / name  # the report's tables and main figures, committed
    keep.mkdir(parents=True, exist_ok=True)
    for table in ("summary", "stats", "mi", "mi_dice", "domain_shift"):
        rec[table] = read(out / "metrics" / f"{table}.tsv")
        if (out / "metrics" / f"{table}.tsv").exists():
            shutil.copyfile(out / "metrics" / f"{table}.tsv", keep / f"{table}.tsv")
    for fig in ("dice.png", "mi_dice.png", "label_dice.png", "runtime.png", "settings.tsv", "provenance.tsv"):
        if (out / "report" / fig).exists():
            shutil.copyfile(out / "report" / fig, keep / fig)
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models-from", type=Path, default=None, help="models/ of bench_learned.py (domain-shift study)")
    ap.add_argument("--studies", default="classical,domain_shift")
    ap.add_argument("--no-report", action="store_true", help="run the studies only (e.g. before the report exists)")
    args = ap.parse_args(argv)
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    result = {"benchmark": "study_2mm", "commit": bench_commit(), "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "studies": {}}
    dest = result_path("study", "study_2mm")
    for name in args.studies.split(","):
        work = ROOT / "bench" / "work" / f"study_{name}"
        if name == "classical":
            cfg = classical_config(work)
        elif args.models_from is not None:
            cfg = domain_shift_config(work, args.models_from.resolve())
        else:
            print("domain_shift: no --models-from, skipped")
            continue
        rec = study(name, cfg, work, not args.no_report)
        result["studies"][name] = rec
        print(f"{name}: run {rec['run_wall_s']} s (rc {rec['run_rc']}), pairs {rec['pairs']}, report "
              f"{rec.get('report_html_s')} s html / {rec.get('report_zip_s')} s zip")
        for row in rec["stats"]:
            if row["metric"] == "dice_mean":
                print(f"  {row['cohort']}: {row['method_a']} vs {row['method_b']}: n={row['n']} diff={row['mean_diff']:+.4f} "
                      f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}] p_t={row['p_ttest']:.2g} p_w={row['p_wilcoxon']:.2g}"
                      f" p_holm={row['p_holm']:.2g}")
        if not args.no_report:
            dest.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {dest}" if not args.no_report else "studies run (no report)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
