"""How Dice, time and folding move with the torch engine's settings, on one real pair.

Reuses the preprocessed images and the affine of a ``bench_classical.py`` work folder; runs
``register_greedy`` once per setting (keyword arguments of GreedySettings), warps the labels
with ANTs through the files we write, and prints Dice, seconds and the folding fraction.

    python bench/bench_torch_settings.py bench/work/classical_2mm_default/out/lpba40 S01 S02 \\
        "scales=(4,2,1),iterations=(100,50,25)" "scales=(4,2),iterations=(100,50)"
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cohortreg.io import nib_to_ants  # noqa: E402
from cohortreg.evaluation.metrics import dice_per_label  # noqa: E402
from cohortreg.evaluation.pair import warp_jacobian  # noqa: E402
from cohortreg.registration.torch_greedy import TorchGreedy, voxel_to_ants_field  # noqa: E402
from cohortreg.torchreg.greedy import GreedySettings, register_greedy  # noqa: E402

BASE = {k: v for k, v in TorchGreedy.presets["default"].items() if k in GreedySettings.__dataclass_fields__}


def main(argv: list[str]) -> int:
    import ants

    cohort_dir, fixed_id, moving_id, *specs = argv
    torch.set_num_threads(2)
    anat = lambda s, d: f"{cohort_dir}/sub-{s}/anat/sub-{s}_desc-{d}.nii.gz"  # noqa: E731
    affine = f"{cohort_dir}/sub-{moving_id}/to-{fixed_id}/init/affine.mat"
    f = nib_to_ants(nib.load(anat(fixed_id, "brain_T1w")))
    m = nib_to_ants(nib.load(anat(moving_id, "brain_T1w")))
    fl = np.asarray(nib.load(anat(fixed_id, "preproc_dseg")).dataobj)
    ml = nib_to_ants(nib.load(anat(moving_id, "preproc_dseg")))
    aligned = ants.apply_transforms(f, m, [affine])
    F = torch.from_numpy(f.numpy().astype(np.float32))[None, None]
    M = torch.from_numpy(aligned.numpy().astype(np.float32))[None, None]
    dice = lambda lab: float(np.nanmean(list(dice_per_label(fl, lab).values())))  # noqa: E731
    print(f"grid {f.shape}, affine Dice {dice(ants.apply_transforms(f, ml, [affine], interpolator='genericLabel').numpy()):.4f}")
    for spec in specs or [""]:
        settings = GreedySettings(**{**BASE, **eval(f"dict({spec})")})  # noqa: S307 (a bench's own argument)
        t0 = time.perf_counter()
        u = register_greedy(F, M, settings)
        sec = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            w = f"{tmp}/w.nii.gz"
            ants.image_write(voxel_to_ants_field(u[0].numpy(), f), w)
            warped = ants.apply_transforms(f, ml, [w, affine], interpolator="genericLabel").numpy()
            fold = float((warp_jacobian(w) <= 0).mean())
        print(f"{spec or 'preset default':70s} dice {dice(warped):.4f}  {sec:6.1f} s  folding {fold:.5f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
