"""What a network buys instance optimisation (issue 14): on the test pairs of a cohort, torch from zero
on each IO schedule's budget beside ``learned``, ``learned_io`` plain (the greedy scheme from the
prediction) and ``residual`` (the prediction kept, a correction optimised), one process, side by side.

Run on the outdir of a workflow run with the split sheet of bench_learned.py (brains and affines of
the test pairs) and a trained model file:

    python bench/bench_learned_io_modes.py OUT OUT/models/vxm_lpba_weak/model.pt lpba40 \\
        bench/results/learned_io_modes_lpba_within.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit, machine  # noqa: E402
from bench.bench_learned import SPLITS  # noqa: E402
from cohortreg.evaluation.metrics import dice_per_label  # noqa: E402
from cohortreg.registration.pairs import register_pair  # noqa: E402
from cohortreg.evaluation.pair import warp_jacobian  # noqa: E402


def variants(model: str) -> dict[str, tuple[str, dict]]:
    io = lambda **p: ("learned_io", {"model_file": model, **p})  # noqa: E731
    return {"torch": ("torch", {}), "torch_50_25_12": ("torch", {"iterations": [50, 25, 12]}),
            "torch_25_12_6": ("torch", {"iterations": [25, 12, 6]}), "learned": ("learned", {"model_file": model}),
            "io_greedy_50_25_12": io(), "io_greedy_25_12_6": io(iterations=[25, 12, 6]),
            **{f"io_res_{'_'.join(map(str, it))}": io(residual=True, iterations=it)
               for it in ([50, 25, 12], [25, 12, 6], [0, 25, 6], [0, 12, 6], [0, 0, 12])}}


def main(out: Path, model: str, cohort: str, result: Path) -> None:
    test = SPLITS[cohort]["test"]
    ref, moving = test[0], test[1:]
    anat = lambda s, what: str(next((out / cohort / f"sub-{s}" / "anat").glob(f"*desc-{what}.nii.gz")))  # noqa: E731
    fixed_labels = np.asarray(nib.load(anat(ref, "preproc_dseg")).dataobj)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in moving:
            affine = str(out / cohort / f"sub-{s}" / f"to-{ref}" / "init" / "affine.mat")
            for name, (method, p) in variants(model).items():
                w = Path(tmp) / s / name
                w.mkdir(parents=True)
                ex = register_pair(method, {"engine": method, "device": "cpu", **p}, anat(ref, "brain_T1w"),
                                   anat(s, "brain_T1w"), anat(s, "preproc_dseg"), affine, str(w / "transforms.json"),
                                   str(w / "warped.nii.gz"), str(w / "labels.nii.gz"), threads=2)
                dice = dice_per_label(fixed_labels, np.asarray(nib.load(w / "labels.nii.gz").dataobj))
                rows.append({"pair": s, "variant": name, "dice": float(np.mean(list(dice.values()))),
                             "folding": float((warp_jacobian(str(w / "fwd_warp.nii")) <= 0).mean()),
                             "register_s": ex["register_seconds"]})
                print(s, name, round(rows[-1]["dice"], 4), round(rows[-1]["register_s"], 3), flush=True)
    t = pd.DataFrame(rows).groupby("variant", sort=False)[["dice", "folding", "register_s"]].mean()
    t["x_torch"] = t.register_s / t.loc["torch", "register_s"]
    print(t.round(4).to_string())
    result.write_text(json.dumps({"benchmark": result.stem, "commit": commit(), "machine": machine(), "model": model,
                                  "cohort": cohort, "rows": rows, "table": t.reset_index().to_dict("records")}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4]))
