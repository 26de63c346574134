"""Affine-stage settings: label Dice after affine vs seconds, on pairs a classical run preprocessed.

Reuses the brain images and label maps of a ``bench_classical.py`` work folder, runs each variant of
``estimate_affine`` on each pair and prints mean label Dice and seconds per variant, so the affine
defaults are picked from measurements (the affine stage once cost more than SyN itself).

    ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=2 python bench/bench_affine.py bench/work/classical_2mm_default/out \
        oasis/02 oasis/03 lpba40/S02
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cohortreg.io import nib_to_ants  # noqa: E402
from cohortreg.evaluation.metrics import dice_per_label  # noqa: E402
from cohortreg.registration.affine import AffineSettings, estimate_affine  # noqa: E402

REFERENCE = {"oasis": "01", "lpba40": "S01"}
VARIANTS: dict[str, dict] = {
    "rigid+affine (fine)": {"rigid_iterations": None, "max_resolution_mm": None},
    "rigid coarse + affine": {"max_resolution_mm": None},
    "affine only": {"rigid_iterations": (), "max_resolution_mm": None},
    "rigid coarse + affine, <=2mm grid (default)": {},
    "rigid coarse + affine, sampling 0.25": {"min_samples": 0, "max_resolution_mm": None},
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir", type=Path, help="a bench_classical work 'out' folder")
    ap.add_argument("pairs", nargs="+", help="cohort/moving (registered to the cohort's reference)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import ants

    rows = []
    for pair in args.pairs:
        cohort, mov = pair.split("/")
        ref = REFERENCE[cohort]
        anat = lambda s, d: args.outdir / cohort / f"sub-{s}" / "anat" / f"sub-{s}_desc-{d}.nii.gz"  # noqa: E731
        fixed, moving = (nib_to_ants(nib.load(anat(s, "brain_T1w"))) for s in (ref, mov))
        fl = np.asarray(nib.load(anat(ref, "preproc_dseg")).dataobj)
        ml = nib_to_ants(nib.load(anat(mov, "preproc_dseg")))
        for name in args.variants:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                mat = estimate_affine(fixed, moving, Path(tmp) / "a.mat", AffineSettings(**VARIANTS[name]))
                sec = time.perf_counter() - t0
                wl = ants.apply_transforms(fixed, ml, [mat], interpolator="genericLabel").numpy()
            d = dice_per_label(fl, wl)
            rows.append({"pair": pair, "variant": name, "dice": float(np.nanmean(list(d.values()))), "seconds": sec})
            print(f"{pair:12s} {name:40s} dice {rows[-1]['dice']:.4f} {sec:6.1f} s", flush=True)
    print(f"\nmean over {len(args.pairs)} pairs (ITK threads {os.environ.get('ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS')}):")
    for name in args.variants:
        sel = [r for r in rows if r["variant"] == name]
        print(f"  {name:40s} dice {np.mean([r['dice'] for r in sel]):.4f}  {np.mean([r['seconds'] for r in sel]):6.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"outdir": str(args.outdir), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
