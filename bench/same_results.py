"""Does a change keep every result? The README command run by an earlier checkout and by this one, on the
same scans, and their pairs.tsv compared value by value (issue 31: a refactor of planning, stamps and
provenance must not move a single Dice).

    git worktree add /tmp/base <commit>
    python -m bench run same_results --baseline /tmp/base --cohort lpba40   # 10 LPBA40 pairs at 2 mm
    python -m bench run same_results --baseline /tmp/base --cohort lpba40 --methods affine,torch  # the throughput run
    python -m bench run same_results --baseline /tmp/base --cohort demo     # the README demo cohort

Values, not seconds: it may run beside other work (the JSON says what ran beside it if --beside is given).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench.harness import ROOT, machine, result_path

COLUMNS = ("dice_mean", "hd95", "folding_frac", "sdlogj", "lncc", "n_labels")


def demo_sheet(d: Path) -> Path:
    subprocess.run([sys.executable, "-m", "cohortreg.sheet.demo", str(d / "demo")], check=True, capture_output=True)
    return d / "demo" / "samples.tsv"


def run(workflow: Path, sheet: Path, out: Path, methods: str) -> float:
    """The README command; methods: '' for the config's defaults (the README's demo line), else e.g.
    'affine,torch' (the throughput bench's)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(workflow / "Snakefile"), "--cores", "2", "--config",
           f"samples={sheet}", f"outdir={out}"] + ([f"methods=[{methods}]"] if methods else [])
    r = subprocess.run(cmd, cwd=out.parent, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(workflow)})
    if r.returncode:
        raise SystemExit(f"{workflow}: snakemake failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, required=True, help="an earlier checkout (a git worktree)")
    ap.add_argument("--cohort", choices=("lpba40", "oasis", "demo"), default="lpba40")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "same_results")
    ap.add_argument("--methods", default="", help="e.g. affine,torch (default: the config's, as the README's command)")
    ap.add_argument("--beside", default="nothing", help="what ran beside it (the JSON records it)")
    a = ap.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    if a.cohort == "demo":
        sheet = demo_sheet(a.work)
    else:  # the shared cohort's subjects, the first the reference (the throughput bench's sheets)
        from cohortreg.sheet.datasets import write_sheet

        sheet = write_sheet(a.work / f"samples_{a.cohort}.tsv", {a.cohort: 11 if a.cohort == "lpba40" else 12})
    tables, seconds = {}, {}
    for name, workflow in (("baseline", a.baseline.resolve()), ("this", ROOT)):
        out = a.work / f"{a.cohort}{'-' + a.methods.replace(',', '-') if a.methods else ''}-{name}"
        seconds[name] = run(workflow, sheet, out, a.methods)
        tables[name] = pd.read_csv(out / "metrics" / "pairs.tsv", sep="\t").set_index(["cohort", "moving", "fixed", "method"])
    before, after = tables["baseline"], tables["this"]
    cols = [c for c in COLUMNS if c in before.columns and c in after.columns]
    same_rows = sorted(before.index) == sorted(after.index)
    diff = (after.loc[before.index, cols] - before[cols]).abs().max() if same_rows else None

    def commit(path: Path) -> str:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, capture_output=True,
                              text=True).stdout.strip()

    doc = {"benchmark": "same_results", "cohort": a.cohort, "methods": sorted({m for *_, m in after.index}), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "machine": machine(),
           "baseline_commit": commit(a.baseline), "commit": commit(ROOT), "beside": a.beside,
           "pairs": len(after), "same_rows": same_rows,
           "max_abs_difference": {c: float(v) for c, v in diff.items()} if diff is not None else None,
           "mean_dice": {m: float(g["dice_mean"].mean()) for m, g in after.groupby(level="method")},
           "wall_seconds_not_comparable": seconds}
    tag = f"_{a.methods.replace(',', '_')}" if a.methods else ""
    path = result_path("same_results", f"{a.cohort}{tag}")
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    main()
