"""Learned registration against classical, within and across cohorts (issue 14), on real data at 2 mm.

One workflow run (the README command) on a sheet with a split column:
- LPBA40: S11..S20 train, S10 validates, S01..S09 are the test subjects (S02..S09 to S01);
- OASIS-TRT: sub-01..sub-08 train, sub-09 validates, sub-10..sub-12 are the test subjects
  (sub-11, sub-12 to sub-10).
Models: trained on each cohort, unsupervised and weakly supervised, each for at most
``--minutes`` on this CPU; every model is evaluated on both cohorts' test pairs (within and
across), as ``learned`` and as ``learned_io``, beside affine, ants and torch on the same pairs.
Then ``learned_io`` Dice against its number of IO iterations on one model.

    python bench/bench_learned.py --minutes 8        # writes bench/results/learned_2mm.json
    python bench/bench_learned.py --models-from OUT/models   # the same pairs with trained models
        # (each method's ``checkpoint:``, no training): bench/results/learned_2mm_inference.json
    python bench/bench_learned.py --models-from OUT/models --classical affine,torch --io-sweep \\
        --schedules 50,25,12 0,25,6 --batch-size 10 --tag schedules   # IO schedules on every model
    python bench/bench_learned.py --minutes 12 --classical affine,torch --batch-size 10 \\
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from cohortreg.sheet.datasets import SHARED_DATA, available, write_sheet as datasets_write_sheet  # noqa: E402

SPLITS = {"lpba40": {"test": [f"S{i:02d}" for i in range(1, 10)], "val": ["S10"], "train": [f"S{i:02d}" for i in range(11, 21)]},
          "oasis": {"test": ["10", "11", "12"], "val": ["09"], "train": [f"{i:02d}" for i in range(1, 9)]}}
SHORT = {"lpba40": "lpba", "oasis": "oasis"}


def write_sheet(path: Path) -> Path:
    """The test subjects first in each cohort: the first is the reference."""
    order = {c: sp["test"] + sp["val"] + sp["train"] for c, sp in SPLITS.items()}
    which = {(c, sid): w for c, sp in SPLITS.items() for w, ids in sp.items() for sid in ids}
    return datasets_write_sheet(path, order, split=lambda c, s: which[(c, s)])


def config(work: Path, minutes: float, classical: list[str], io_sweep: list[int], models_from: Path | None = None,
           batch_size: int = 1, schedules: list[list[int]] | None = None, train_cohorts: list[str] | None = None,
           torch_schedules: list[list[int]] | None = None, residual_schedules: list[list[int]] | None = None) -> dict:
    methods = list(classical)
    params: dict = {"ants": {"preset": "default"}, "torch": {"preset": "default", "device": "cpu"}}
    for sched in torch_schedules or []:  # torch from zero on an IO schedule's budget: what the network buys
        name = f"torch_{'_'.join(str(i) for i in sched)}"
        params[name] = {"engine": "torch", "device": "cpu", "iterations": list(sched)}
        methods.append(name)
    for cohort in train_cohorts or list(SPLITS):
        for sup in ("unsupervised", "weak"):
            name = f"vxm_{SHORT[cohort]}_{'weak' if sup == 'weak' else 'unsup'}"
            params[name] = {"engine": "learned", "train_cohorts": [cohort], "supervision": sup, "steps": 100000,
                            "max_minutes": minutes, "val_every": 50, "checkpoint_every": 50, "device": "cpu"}
            if models_from is not None:  # a model file of one's own: the workflow does not train
                params[name]["checkpoint"] = str(models_from / name / "model.pt")
            params[name + "_io"] = {"engine": "learned_io", "model": name, "device": "cpu"}
            methods += [name, name + "_io"]
            # IO iterations on the 4/2/1 levels, on every model; residual: the prediction kept, a correction optimised
            for prefix, extra, scheds in (("io", {}, schedules), ("io_res", {"residual": True}, residual_schedules)):
                for sched in scheds or []:
                    variant = f"{name}_{prefix}_{'_'.join(str(i) for i in sched)}"
                    params[variant] = {"engine": "learned_io", "model": name, "device": "cpu", **extra,
                                       "iterations": list(sched)}
                    methods.append(variant)
    sweep_model = "vxm_lpba_weak" if "lpba40" in (train_cohorts or SPLITS) else f"vxm_{SHORT[train_cohorts[0]]}_weak"
    for n in io_sweep:  # IO iterations [n, n/2, n/4] on the 4/2/1 levels: 100 is torch's default, 50 learned_io's
        name = f"{sweep_model}_io{n}"
        params[name] = {"engine": "learned_io", "model": sweep_model, "device": "cpu",
                        "iterations": [n, max(n // 2, 0), max(n // 4, 0)]}
        methods.append(name)
    # the IO of earlier releases on the sweep's model: the plain greedy scheme from the prediction, which
    # smooths the prediction away through its levels (residual: false), on learned_io's old default
    params[f"{sweep_model}_io_plain"] = {"engine": "learned_io", "model": sweep_model, "device": "cpu",
                                         "residual": False, "iterations": [50, 25, 12]}
    methods.append(f"{sweep_model}_io_plain")
    return {"samples": str(write_sheet(work / "samples.tsv")), "outdir": str(work / "out"), "methods": methods,
            "method_params": params, "preprocess": {"spacing": 2.0}, "batch_size": batch_size}


def table(pairs: pd.DataFrame) -> pd.DataFrame:
    ok = pairs[pairs.status == "ok"].copy()
    ok["trained_on"] = ok["model"].fillna("").str.extract(r"\((.*)\)")[0].fillna("")
    ok["setting"] = [("-" if not t else "within" if t == c else "across") for t, c in zip(ok.trained_on, ok.cohort)]
    return (ok.groupby(["cohort", "method", "setting"], sort=False)
              .agg(n=("dice_mean", "size"), dice=("dice_mean", "mean"), hd95=("hd95", "mean"),
                   folding=("folding_frac", "mean"), register_s=("register_seconds", "mean"), job_s=("seconds", "mean"))
              .reset_index())


def main() -> int:
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
    args = ap.parse_args()
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
                    "training figures are in that run's bench/results/learned_2mm.json"}
    out = {"benchmark": tag, "commit": commit, "machine": machine(), "minutes_per_model": args.minutes,
           "train_cohorts": args.train_cohorts or list(SPLITS), "options": sys.argv[1:],
           "returncode": r.returncode, "wall_s": round(wall, 1), "splits": SPLITS, "training": training,
           "table": summary.to_dict("records"), "pairs": pairs.to_dict("records")}
    res = ROOT / "bench" / "results" / f"{tag}.json"
    res.write_text(json.dumps(out, indent=1, default=str) + "\n")
    pd.set_option("display.width", 200)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for k, v in training.items():
        print(k, v)
    print(f"wrote {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
