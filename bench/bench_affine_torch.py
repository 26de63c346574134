"""The torch affine against the ANTs affine on the shared pairs (issue 15): Dice and seconds.

Two runs of the README command back to back on the same sheet (LPBA40 S02..S11 to S01, OASIS-TRT
sub-02..sub-12 to sub-01, 21 pairs, 2 mm, methods [affine]), one per `affine.engine`, alone on the
machine; `seconds_affine` is each pair's affine job (Snakemake's benchmark).

    python bench/bench_affine_torch.py      # writes bench/results/affine_torch_2mm.json
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from cohortreg.sheet.datasets import SHARED_DATA, available, write_sheet  # noqa: E402


def run(work: Path, engine: str, sheet: Path) -> tuple[pd.DataFrame, float]:
    cfg = {"samples": str(sheet), "outdir": str(work / engine), "methods": ["affine"], "preprocess": {"spacing": 2.0},
           "affine": {"engine": engine}}
    (work / f"{engine}.yaml").write_text(yaml.safe_dump(cfg))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2", "--keep-going",
                        "--configfile", str(work / f"{engine}.yaml")], cwd=work, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.time() - t0
    (work / f"{engine}.log").write_text(r.stdout + r.stderr)
    return pd.read_csv(work / engine / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str}), wall


def main() -> int:
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    work = ROOT / "bench" / "work" / "affine_torch"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sheet = write_sheet(work / "samples.tsv", {"lpba40": 11, "oasis": 12})
    out, rows = {}, {}
    for engine in ("ants", "torch"):
        pairs, wall = run(work, engine, sheet)
        rows[engine] = pairs
        out[engine] = {"wall_s": round(wall, 1)}
    both = rows["ants"].merge(rows["torch"], on=["cohort", "moving", "fixed"], suffixes=("_ants", "_torch"))
    table = both.groupby("cohort").agg(pairs=("moving", "size"), dice_ants=("dice_mean_ants", "mean"),
                                       dice_torch=("dice_mean_torch", "mean"), s_ants=("seconds_affine_ants", "mean"),
                                       s_torch=("seconds_affine_torch", "mean"),
                                       torch_better=("dice_mean_torch", lambda s: int((s > both.loc[s.index, "dice_mean_ants"]).sum())))
    commit = bench_commit()
    res = ROOT / "bench" / "results" / "affine_torch_2mm.json"
    res.write_text(json.dumps({"benchmark": "affine_torch_2mm", "commit": commit, "machine": machine(), "runs": out,
                               "table": table.reset_index().to_dict("records"),
                               "pairs": both[["cohort", "moving", "fixed", "dice_mean_ants", "dice_mean_torch",
                                              "seconds_affine_ants", "seconds_affine_torch"]].to_dict("records")},
                              indent=1) + "\n")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
