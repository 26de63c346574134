"""Training steps on the brains' box against the whole grid (issue 14): seconds per step and validation Dice.

On a bench_learned.py run's OASIS-TRT (or LPBA40) files: its training subjects and their affines to the
training reference, trained for ``--steps`` unsupervised and weak steps with the training data cut to the
cohort's brains plus 16 mm (today's default) and with no cut (a margin past the grid). Same seed, same pairs.

    python bench/bench_learned_train_crop.py bench/work/learned_2mm_allpairs_20min/out
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit, machine  # noqa: E402
from bench.bench_learned import SPLITS  # noqa: E402
from cohortreg.learn.plan import subject_row  # noqa: E402
from cohortreg.learn.train import train_from_files  # noqa: E402
from cohortreg.paths import Layout  # noqa: E402


def rows(out: Path, cohort: str, subjects: list[str], ref: str) -> list[dict]:
    return [subject_row(Layout(str(out)), cohort, s, ref) for s in subjects if s != ref]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--cohort", default="oasis")
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(2)
    sp = SPLITS[args.cohort]
    ref = sp["train"][0]
    train, val = rows(args.out, args.cohort, sp["train"], ref), rows(args.out, args.cohort, sp["val"], ref)
    result = {"benchmark": "learned_train_crop", "commit": commit(), "machine": machine(), "cohort": args.cohort,
              "steps": args.steps, "runs": []}
    for sup in ("unsupervised", "weak"):
        for name, margin in (("box+16mm", 16.0), ("whole grid", 1e4)):
            settings = {"supervision": sup, "steps": args.steps, "val_every": args.steps, "checkpoint_every": args.steps,
                        "seed": 0, "crop_margin_mm": margin}
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                doc = train_from_files(settings, train, val, tmp, {"model": name})
                wall = time.perf_counter() - t0
                curve = np.genfromtxt(Path(tmp) / "training.tsv", names=True, delimiter="\t")
            steps = curve[curve["step"] > 0]
            run = {"supervision": sup, "data": name, "seconds_per_step": float(np.median(steps["seconds"])),
                   "affine_val_dice": doc["affine_val_dice"], "val_dice_at_end": float(steps["val_dice"][-1]),
                   "wall_s": round(wall, 1)}
            result["runs"].append(run)
            print(run, flush=True)
    res = ROOT / "bench" / "results" / f"learned_train_crop_{args.cohort}.json"
    res.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
