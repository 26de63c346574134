"""Accuracy and speed of the classical pipeline on real data (issue 2).

Runs the real workflow (snakemake --cores 2) on LPBA40 S02..S11 -> S01 and OASIS-TRT
sub-02..sub-12 -> sub-01 at a given spacing, then prints a table and writes
bench/results/classical/<date>-<commit>-classical_<spacing>mm_<ants preset>.json with per-pair rows, the machine, and
torch against ants per pair (Dice difference, seconds and memory ratios) for issue 3. The
jobs import the package of this checkout (PYTHONPATH), so a bench can run from a snapshot
worktree while the main checkout changes.

    python -m bench run classical --spacing 2 --preset default --methods affine,ants,torch
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import pandas as pd
import yaml

from bench.harness import ROOT, commit, machine, result_path
from cohortreg.sheet.datasets import SHARED_DATA, available, write_sheet


def versus(pairs: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Per pair: Dice of a minus Dice of b, and a's seconds and peak memory over b's."""
    ok = pairs[pairs.status == "ok"].set_index(["cohort", "moving", "fixed", "method"])
    if not {a, b} <= set(ok.index.get_level_values("method")):
        return pd.DataFrame()
    x, y = ok.xs(a, level="method"), ok.xs(b, level="method")
    both = x.index.intersection(y.index)
    x, y = x.loc[both], y.loc[both]
    return pd.DataFrame({f"dice_{a}": x.dice_mean, f"dice_{b}": y.dice_mean, "dice_diff": x.dice_mean - y.dice_mean,
                         f"seconds_{a}": x.seconds, f"seconds_{b}": y.seconds, "seconds_ratio": x.seconds / y.seconds,
                         "rss_ratio": x.max_rss_mb / y.max_rss_mb, f"folding_{a}": x.folding_frac}).reset_index()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spacing", type=float, default=2.0)
    ap.add_argument("--preset", default="default", help="ANTs SyN preset")
    ap.add_argument("--torch-preset", default="default")
    ap.add_argument("--methods", default="affine,ants,torch")
    ap.add_argument("--lpba", type=int, default=11, help="LPBA40 subjects (S01 is the reference)")
    ap.add_argument("--oasis", type=int, default=12, help="OASIS-TRT subjects (sub-01 is the reference)")
    ap.add_argument("--keep", nargs="*", default=[], metavar="COHORT/ID",
                    help="only these subjects (the cohort's reference must be among them), e.g. oasis/01 oasis/02")
    ap.add_argument("--tag", default="", help="suffix for the result name (a subset run)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--forcerun", nargs="*", default=[], help="rules to rerun although up to date (after a code change)")
    args = ap.parse_args(argv)
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    tag = f"classical_{args.spacing:g}mm_{args.preset}"  # the ANTs preset names the run (torch's is in the JSON)
    work_tag = tag
    tag += f"_{args.tag}" if args.tag else ""
    work = ROOT / "bench" / "work" / work_tag  # a subset reuses the full run's finished jobs
    sheet = write_sheet(work / "samples.tsv", {k: n for k, n in (("lpba40", args.lpba), ("oasis", args.oasis)) if n})
    if args.keep:
        lines = sheet.read_text().splitlines()
        kept = [lines[0]] + [ln for ln in lines[1:] if "/".join(ln.split("\t")[:2]) in set(args.keep)]
        sheet = work / f"samples_{args.tag or 'subset'}.tsv"
        sheet.write_text("\n".join(kept) + "\n")
    cfg = {"samples": str(sheet), "outdir": str(work / "out"), "methods": args.methods.split(","),
           "preprocess": {"spacing": args.spacing},
           "method_params": {"ants": {"preset": args.preset}, "torch": {"preset": args.torch_preset}}}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.time()
    rc = subprocess.call(["snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(args.cores), "--keep-going",
                          "--configfile", str(work / "config.yaml"), "--quiet", "rules"]
                         + (["--forcerun", *args.forcerun] if args.forcerun else []), cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])})
    wall = time.time() - t0
    pairs = pd.read_csv(work / "out" / "metrics" / "pairs.tsv", sep="\t")
    summary = (pairs[pairs.status == "ok"].groupby(["cohort", "method"])
               [["dice_mean", "hd95", "folding_frac", "sdlogj", "seconds", "seconds_affine", "max_rss_mb"]]
               .mean().reset_index())
    summary["n_pairs"] = pairs[pairs.status == "ok"].groupby(["cohort", "method"]).size().values
    print(f"\n{tag}: snakemake exit {rc}, {wall:.0f} s wall on {os.cpu_count()} cores")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    ratios = versus(pairs, "torch", "ants")
    if len(ratios):
        print("\ntorch vs ants per pair (same run): dice difference, seconds ratio, peak-memory ratio")
        print(ratios.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out = {"benchmark": tag, "commit": commit(),
           "subjects": args.keep or "all listed", "spacing_mm": args.spacing, "ants_preset": args.preset,
           "torch_preset": args.torch_preset, "snakemake_rc": rc,
           "wall_seconds": wall, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "summary": summary.to_dict("records"), "torch_vs_ants": ratios.to_dict("records"),
           "pairs": pairs.to_dict("records")}
    res = result_path("classical", tag)
    res.write_text(json.dumps(out, indent=2, default=float) + "\n")
    print(f"written {res}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
