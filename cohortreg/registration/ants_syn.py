"""ANTs SyN through antspyx, deformable-only on top of our affine, with presets by name.

Measured on LPBA40 S02 -> S01 at 2 mm, 2 threads (affine alone: Dice 0.644):

=========  ====================  ===========  ========  ========
preset     metric                iterations   Dice      seconds
=========  ====================  ===========  ========  ========
fast       Mattes MI             40x20x0      0.683     3.6
(none)     Mattes MI             100x70x20    0.706     27.8
default    CC, radius 2          100x50x0     0.704     21.3
(none)     CC, radius 2          60x30x10     0.718     69.0
accurate   CC, radius 2          100x70x20    0.720     126.4
=========  ====================  ===========  ========  ========

Shrink factors are 2^(n-1)..1 and smoothing sigmas n-1..0 voxels for n levels (antspyx).
The cohort figures are in bench/results/.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..lazy_ants import import_ants
from .base import RegistrationMethod, Transforms, stage_file


class AntsSyN(RegistrationMethod):
    name = "ants"
    presets = {
        "fast": {"metric": "mattes", "sampling": 32, "iterations": [40, 20, 0], "grad_step": 0.2,
                 "flow_sigma": 3.0, "total_sigma": 0.0},
        "default": {"metric": "CC", "sampling": 2, "iterations": [100, 50, 0], "grad_step": 0.2,
                    "flow_sigma": 3.0, "total_sigma": 0.0},
        "accurate": {"metric": "CC", "sampling": 2, "iterations": [100, 70, 20], "grad_step": 0.2,
                     "flow_sigma": 3.0, "total_sigma": 0.0},
    }

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        ants = import_ants()

        p = self.params
        with tempfile.TemporaryDirectory(dir=outdir) as tmp:
            reg = ants.registration(
                fixed, moving, type_of_transform="SyNOnly", initial_transform=affine,
                outprefix=str(Path(tmp) / "syn_"), syn_metric=p["metric"], syn_sampling=p["sampling"],
                reg_iterations=tuple(p["iterations"]), grad_step=p["grad_step"], flow_sigma=p["flow_sigma"],
                total_sigma=p["total_sigma"])
            fwd = next(f for f in reg["fwdtransforms"] if f.endswith("Warp.nii.gz"))
            inv = next(f for f in reg["invtransforms"] if f.endswith("InverseWarp.nii.gz"))
            warp = stage_file(fwd, outdir / "fwd_warp.nii.gz")
            inv_warp = stage_file(inv, outdir / "inv_warp.nii.gz")
        mat = stage_file(affine, outdir / "affine.mat")
        return Transforms(forward=[warp, mat], inverse=[mat, inv_warp], inverse_invert=[True, False], warp=warp)
