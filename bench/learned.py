"""Learned registration against classical, within and across cohorts (issue 14), on real data at 2 mm.

One workflow run (the README command) on a sheet with a split column:
- LPBA40: S11..S20 train, S10 validates, S01..S09 are the test subjects (S02..S09 to S01);
- OASIS-TRT: sub-01..sub-08 train, sub-09 validates, sub-10..sub-12 are the test subjects
  (sub-11, sub-12 to sub-10).
Models: trained on each cohort, unsupervised and weakly supervised, each for at most
``--minutes`` on this CPU; every model is evaluated on both cohorts' test pairs (within and
across), as ``learned`` and as ``learned_io``, beside affine, ants and torch on the same pairs.
Then ``learned_io`` Dice against its number of IO iterations on one model.

    python -m bench run learned --minutes 8        # writes bench/results/learned_2mm.json
    python -m bench run learned --models-from OUT/models   # the same pairs with trained models
        # (each method's ``checkpoint:``, no training): bench/results/learned_2mm_inference.json
    python -m bench run learned --models-from OUT/models --classical affine,torch --io-sweep \\
        --schedules 50,25,12 0,25,6 --batch-size 10 --tag schedules   # IO schedules on every model
    python -m bench run learned --minutes 12 --classical affine,torch --batch-size 10 \\
        --residual-schedules 0,12,6 0,25,6 --tag cropped   # + residual IO on every model
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
import yaml

from bench.harness import ROOT, commit as bench_commit, machine, result_path
from bench.learned_study import SPLITS, config
from cohortreg.sheet.datasets import SHARED_DATA, available

def table(pairs: pd.DataFrame) -> pd.DataFrame:
    ok = pairs[pairs.status == "ok"].copy()
    ok["trained_on"] = ok["model"].fillna("").str.extract(r"\((.*)\)")[0].fillna("")
    ok["setting"] = [("-" if not t else "within" if t == c else "across") for t, c in zip(ok.trained_on, ok.cohort)]
    return (ok.groupby(["cohort", "method", "setting"], sort=False)
              .agg(n=("dice_mean", "size"), dice=("dice_mean", "mean"), hd95=("hd95", "mean"),
                   folding=("folding_frac", "mean"), register_s=("register_seconds", "mean"), job_s=("seconds", "mean"))
              .reset_index())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=8.0, help="training wall time per model")
    ap.add_argument("--classical", default="affine,ants,torch")
    ap.add_argument("--io-sweep", type=int, nargs="*", default=[0, 10, 25, 50, 100])
    ap.add_argument("--schedules", nargs="*", default=[], metavar="A,B,C",
                    help="learned_io iterations on the 4/2/1 levels, each run on every model (named {model}_io_A_B_C)")
    ap.add_argument("--torch-schedules", nargs="*", default=["50,25,12", "25,12,6"], metavar="A,B,C",
                    help="torch from zero on these schedules (the budgets of IO schedules), beside torch's default")
    ap.add_argument("--residual-schedules", nargs="*", default=[], metavar="A,B,C",
                    help="learned_io with residual: true on these schedules, on every model ({model}_io_res_A_B_C)")
    ap.add_argument("--tag", default="", help="suffix of the result name")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1, help="config batch_size (10: one job per method and cohort)")
    ap.add_argument("--train-cohorts", nargs="*", default=None, choices=sorted(SPLITS),
                    help="train only the models of these cohorts (default: both); each is still tested on both")
    ap.add_argument("--models-from", type=Path, default=None,
                    help="a models/ folder of an earlier run: use its model.pt files as checkpoints, train nothing")
    args = ap.parse_args(argv)
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    tag = ("learned_2mm" if args.models_from is None else "learned_2mm_inference") + (f"_{args.tag}" if args.tag else "")
    work = ROOT / "bench" / "work" / tag
    work.mkdir(parents=True, exist_ok=True)
    models_from = args.models_from.resolve() if args.models_from else None
    def parse(specs: list[str]) -> list[list[int]]:
        return [[int(i) for i in s.split(",")] for s in specs]
    cfg = config(work, args.minutes, args.classical.split(","), args.io_sweep, models_from, args.batch_size,
                 parse(args.schedules), args.train_cohorts, parse(args.torch_schedules), parse(args.residual_schedules))
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(args.cores),
                        "--keep-going", "--configfile", str(work / "config.yaml")], cwd=work, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.time() - t0
    (work / "snakemake.log").write_text(r.stdout + r.stderr)
    pairs = pd.read_csv(work / "out" / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    summary = table(pairs)
    training = {}
    for model_dir in sorted((work / "out" / "models").glob("*")) if models_from is None else []:
        curve = pd.read_csv(model_dir / "training.tsv", sep="\t")
        bench = pd.read_csv(next((work / "out" / "benchmarks" / "train").glob(f"{model_dir.name}.tsv")), sep="\t")
        steps = curve[curve.step > 0]  # step 0: the untrained network's validation (the affine alone)
        training[model_dir.name] = {"steps": int(curve.step.max()), "seconds_per_step": float(steps.seconds.median()),
                                    "best_val_dice": float(steps.val_dice.max()),
                                    "affine_val_dice": float(curve.val_dice[curve.step == 0].max()), "job_s": float(bench.s.iloc[-1]),
                                    "peak_rss_mb": float(bench.max_rss.iloc[-1])}
    commit = bench_commit()
    if models_from is not None:
        training = {"models_from": str(models_from), "note": "trained by an earlier run of this bench; its "
                    "training figures are in that run's result file"}
    out = {"benchmark": tag, "commit": commit, "machine": machine(), "minutes_per_model": args.minutes,
           "train_cohorts": args.train_cohorts or list(SPLITS), "options": sys.argv[1:],
           "returncode": r.returncode, "wall_s": round(wall, 1), "splits": SPLITS, "training": training,
           "table": summary.to_dict("records"), "pairs": pairs.to_dict("records")}
    res = result_path("learned", tag)
    res.write_text(json.dumps(out, indent=1, default=str) + "\n")
    pd.set_option("display.width", 200)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for k, v in training.items():
        print(k, v)
    print(f"wrote {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
