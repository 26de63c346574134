"""Where one pair's register item spends its time at 2 mm (issue 15: profile, then remove what does
no work): a method's register item (pair.register_pair: the registration, writing its fields, warping
the image and labels, writing them) and its metrics item (pair.evaluate_pair: Dice, HD95, Jacobian,
LNCC, the QC overlay), each as the fused batch job calls it, under cProfile, in this one process.
The two subjects are preprocessed and affinely aligned first (the default config), untimed, and
one untimed run of each item warms the caches and the lazy imports, as a batch's first item does.

    python bench/bench_profile_pair.py --cohort lpba40 --method torch   # bench/results/profile_pair_lpba40_torch_2mm.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from bench.bench_profile_subject import pair_ids, pair_parser, prepare, profiled, write_profile  # noqa: E402
from cohortreg.sheet.datasets import SHARED_DATA, available  # noqa: E402


def untrained_model(path: Path, learned: dict[str, Any]) -> str:
    """A model file of the configured network with its initial weights: what inference costs, not what it finds."""
    from cohortreg.learn import checkpoint
    from cohortreg.learn.train import TrainSettings
    from cohortreg.learn.network import build_network

    s = TrainSettings.from_params(learned)
    net = build_network(**s.network())
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "network": s.network(), "grid_scale": s.grid_scale,
                            "state_dict": net.state_dict()}, path)
    return str(path)


def main() -> int:
    ap = pair_parser(__doc__)
    ap.add_argument("--method", default="torch", help="a method of config.yaml's method_params (torch, affine, ...)")
    ap.add_argument("--threads", type=int, default=2, help="the register item's threads (resources.register: 2)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each item (after one untimed)")
    ap.add_argument("--model", default="", help="learned methods: a model.pt (default: an untrained network of "
                                                "config.yaml's method_params.learned: timings only, its Dice means nothing)")
    args = ap.parse_args()
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    import torch

    from cohortreg.evaluation.pair import evaluate_pair
    from cohortreg.registration.pairs import register_pair
    imports = round(time.perf_counter() - t0, 3)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    fixed_id, moving_id = pair_ids(args)
    settings = dict(cfg["method_params"].get(args.method) or {})  # as the workflow passes them
    stages: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        torch.set_num_threads(1)
        files = prepare(out, args.cohort, fixed_id, moving_id, cfg)
        if settings.get("engine", args.method) in ("learned", "learned_io"):
            settings["model_file"] = args.model or untrained_model(out / "model.pt", cfg["method_params"]["learned"])
        pair_dir = out / "pair"
        outs = {k: str(pair_dir / n) for k, n in (("manifest", "transforms.json"), ("warped", "warped.nii.gz"),
                                                  ("warped_labels", "warped_dseg.nii.gz"), ("json", "metrics.json"),
                                                  ("labels", "labels.tsv"), ("picture", "overlay.png"))}
        ids_ = dict(cohort=args.cohort, moving=moving_id, fixed=fixed_id, method=args.method)

        def register() -> Any:
            return register_pair(args.method, settings, files["fixed_brain"], files["moving_brain"],
                                 files["moving_labels"], files["affine"], outs["manifest"], outs["warped"],
                                 outs["warped_labels"], threads=args.threads)

        def metrics() -> Any:
            torch.set_num_threads(1)
            return evaluate_pair(files["fixed_labels"], files["moving_labels"], outs["warped_labels"],
                                 files["fixed_mask"], outs["manifest"], outs["json"], outs["labels"], ids_,
                                 files["fixed_brain"], outs["warped"], (files["moving_qc"], files["fixed_qc"]),
                                 cfg.get("qc", {}), outs["picture"])

        register(), metrics()  # warm-up: the lazy imports (ants, matplotlib, scipy) a batch's first item pays
        for k in range(args.repeats):
            stages[f"register [{args.method}] run {k + 1}"] = profiled(register, top=15)
            stages[f"metrics [{args.method}] run {k + 1}"] = profiled(metrics, top=15)
        record = json.loads(Path(outs["json"]).read_text())
    res = {"benchmark": f"profile_pair_{args.cohort}_{args.method}_2mm", "commit": bench_commit(), "machine": machine(),
           "pair": f"{moving_id} -> {fixed_id}", "threads": args.threads, "model": args.model or "untrained"
           if "model_file" in settings else "", "settings": {k: v for k, v in settings.items() if k != "model_file"}, "import_s (torch + cohortreg.evaluation.pair)": imports,
           "dice_mean": record.get("dice_mean"), "register_seconds": record.get("register_seconds"), "stages": stages}
    print(f"imports {imports} s; Dice {record.get('dice_mean'):.4f}; register_seconds {record.get('register_seconds'):.3f}")
    write_profile(res, ROOT / "bench" / "results" / f"profile_pair_{args.cohort}_{args.method}_2mm.json", rows=12)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
