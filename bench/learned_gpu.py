"""The learned models of the learned benchmark, trained on a GPU from packed training sets (issue 35).

Two steps, because a lent GPU machine has no copy of the scans and reaches no network:

    python -m bench run learned_gpu pack                  # here, on the CPU: the workflow prepares the learned
                                                          # study's training subjects (preprocessing, affines to
                                                          # each cohort's training reference); one packed file per
                                                          # cohort under bench/work/packed/ (git-ignored)
    bash bench/gpu_learned.sh                             # there: trains the four models (LPBA40 and OASIS-TRT,
                                                          # unsupervised and weak) from the packed files

``train`` writes each model's ``model.pt``, ``training.tsv`` and ``training.png`` under ``--out/<model>/`` and a
result with the steps, seconds per step, best validation Dice and each model file's SHA-256; the models come
back with the device's output folder, and ``python -m bench run learned --models-from DIR`` redoes the learned
tables with them on the CPU (``checkpoint:``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import ROOT, commit, machine, result_path, snakemake_env
from bench.learned_study import SHORT, SPLITS, config

PACKED = ROOT / "bench" / "work" / "packed"
SUPERVISIONS = ("unsupervised", "weak")


def model_name(cohort: str, supervision: str) -> str:
    return f"vxm_{SHORT[cohort]}_{'weak' if supervision == 'weak' else 'unsup'}"


def pack(args: argparse.Namespace) -> int:
    """Run the workflow's subject and affine stages for the training subjects, then pack what training reads."""
    import yaml

    from cohortreg.learn.packed import pack_from_files
    from cohortreg.learn.plan import plan_training, subject_row
    from cohortreg.learn.train import TrainSettings
    from cohortreg.paths import Layout
    from cohortreg.sheet.samples import read_sheet, references

    work = ROOT / "bench" / "work" / "learned_pack"
    work.mkdir(parents=True, exist_ok=True)
    cfg = config(work, 0, [], [], batch_size=1)  # one job per subject: the training files are the targets
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    sheet = read_sheet(cfg["samples"])
    refs = references(sheet[sheet["split"] == "test"], {})
    L = Layout(cfg["outdir"])
    rows: dict[str, tuple[list[dict], list[dict]]] = {}
    for cohort in SPLITS:
        name = model_name(cohort, "weak")
        plan = plan_training(sheet, name, cfg["method_params"][name], refs)
        rows[cohort] = ([subject_row(L, c, mv, fx) for c, mv, fx in plan.pairs("train")],
                        [subject_row(L, c, mv, fx) for c, mv, fx in plan.pairs("val")])
    targets = sorted({r[k] for tr, va in rows.values() for r in tr + va
                      for k in ("moving", "moving_labels", "fixed", "fixed_labels", "affine")})
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", str(args.cores),
                        "--configfile", str(ROOT / "config" / "config.yaml"), str(work / "config.yaml"), "--", *targets],
                       cwd=work, env=snakemake_env(), capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr[-3000:])
        return 1
    prepare_s = time.perf_counter() - t0
    margin = TrainSettings().crop_margin_mm
    out = {"benchmark": "learned_pack", "commit": commit(), "machine": machine(), "prepare_s": round(prepare_s, 1),
           "crop_margin_mm": margin, "files": {}}
    for cohort, (tr, va) in rows.items():
        path = pack_from_files(tr, va, margin, PACKED / f"{cohort}.npz",
                               {"cohort": cohort, "train": [x["subject"] for x in tr], "val": [x["subject"] for x in va]})
        out["files"][cohort] = {"path": str(path.relative_to(ROOT)), "mb": round(path.stat().st_size / 1e6, 2),
                                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        print(cohort, out["files"][cohort], flush=True)
    dest = result_path("learned_gpu", "pack")
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"written {dest}")
    return 0


def train(args: argparse.Namespace) -> int:
    """Train the four models from the packed files, each for --minutes (or --steps)."""
    import torch

    from cohortreg.learn.packed import train_from_packed

    packed = Path(args.packed)
    cohorts = [c for c in SPLITS if (packed / f"{c}.npz").is_file()]
    if not cohorts:
        print(f"no packed training sets under {packed} (python -m bench run learned_gpu pack)", file=sys.stderr)
        return 2
    device = args.device
    runs = [(c, s) for c in cohorts for s in SUPERVISIONS]
    print(f"training {len(runs)} models on {device} ({torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA'}),"
          f" {args.minutes:g} min each: about {len(runs) * (args.minutes + 0.3):.1f} min in all", flush=True)
    out_dir = Path(args.out)
    result = {"benchmark": "learned_gpu", "commit": commit(), "machine": machine(), "device": device,
              "minutes_per_model": args.minutes, "batch_size": args.batch_size, "models": {}}
    for cohort, sup in runs:
        name = model_name(cohort, sup)
        settings = {"supervision": sup, "steps": args.steps, "max_minutes": args.minutes, "val_every": args.val_every,
                    "checkpoint_every": args.val_every, "batch_size": args.batch_size, "device": device}
        t0 = time.perf_counter()
        doc = train_from_packed(settings, [packed / f"{cohort}.npz"], str(out_dir / name),
                                {"model": name, "train_cohorts": [cohort], "trained_on": device})
        seconds = time.perf_counter() - t0
        model = out_dir / name / "model.pt"
        result["models"][name] = {"steps": doc["steps_done"], "seconds": round(seconds, 1),
                                  "seconds_per_step": round(seconds / max(doc["steps_done"], 1), 4),
                                  "best_val_dice": doc["best_val_dice"], "best_step": doc["best_step"],
                                  "affine_val_dice": doc["affine_val_dice"],
                                  "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
        print(name, json.dumps(result["models"][name]), flush=True)
        (out_dir / "learned_gpu.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"written {out_dir / 'learned_gpu.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pack", help="prepare and pack the training sets (CPU, here)")
    p.add_argument("--cores", type=int, default=2)
    t = sub.add_parser("train", help="train the four models from the packed sets (on the GPU machine)")
    t.add_argument("--packed", default=str(PACKED))
    t.add_argument("--out", default=str(ROOT / "bench" / "work" / "gpu_models"))
    t.add_argument("--minutes", type=float, default=2.0, help="wall-time budget per model")
    t.add_argument("--steps", type=int, default=100000, help="at most this many steps per model")
    t.add_argument("--batch-size", type=int, default=4, help="pairs per step (a GPU affords several)")
    t.add_argument("--val-every", type=int, default=50)
    t.add_argument("--device", default="auto", help="auto (cuda when available), cuda or cpu")
    args = ap.parse_args(argv)
    return pack(args) if args.step == "pack" else train(args)


if __name__ == "__main__":
    raise SystemExit(main())
