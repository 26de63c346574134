"""Affine initialisation with ANTs: centre-of-mass start, then rigid and affine stages (Mattes MI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import RegistrationMethod, Transforms, stage_file


@dataclass(frozen=True)
class AffineSettings:
    metric: str = "mattes"
    iterations: tuple[int, ...] = (200, 100, 50, 20)
    shrink_factors: tuple[int, ...] = (8, 4, 2, 1)
    smoothing_sigmas: tuple[int, ...] = (3, 2, 1, 0)
    sampling_rate: float = 0.25


MIN_VOXELS_PER_AXIS = 16
MIN_SAMPLES = 1_000_000


def capped_shrink_factors(shape: tuple[int, ...], shrink_factors: tuple[int, ...]) -> tuple[int, ...]:
    """Cap each shrink factor so the coarsest level keeps >= 16 voxels along the shortest axis.

    Shrinking a 2 mm brain (about 80 voxels across) by 8 leaves 10 voxels: too few samples for
    mutual information, which then drifts to a wrong scale. 1 mm brains keep 8/4/2/1 unchanged.
    """
    cap = max(1, min(shape) // MIN_VOXELS_PER_AXIS)
    return tuple(max(1, min(int(s), cap)) for s in shrink_factors)


def estimate_affine(fixed: Any, moving: Any, out_mat: Path, settings: AffineSettings = AffineSettings()) -> str:
    """Rigid then affine, from a centre-of-mass alignment; writes an ANTs ``.mat`` (moving -> fixed)."""
    import ants

    shrink = capped_shrink_factors(tuple(fixed.shape), tuple(settings.shrink_factors))
    # MI on a coarse grid with few random points is unstable (a wrong scale on small images):
    # sample at least ~1M points, i.e. every voxel up to 2 mm brains, 25 % of a 1 mm head.
    rate = min(1.0, max(settings.sampling_rate, MIN_SAMPLES / float(np.prod(fixed.shape))))
    common = dict(aff_metric=settings.metric, aff_iterations=tuple(settings.iterations),
                  aff_shrink_factors=shrink,
                  aff_smoothing_sigmas=tuple(settings.smoothing_sigmas),
                  aff_random_sampling_rate=rate)
    # antspyx starts from [fixed, moving, 1] (centre of mass) when no initial transform is given.
    rigid = ants.registration(fixed, moving, type_of_transform="Rigid", **common)
    aff = ants.registration(fixed, moving, type_of_transform="Affine", initial_transform=rigid["fwdtransforms"][0], **common)
    return stage_file(aff["fwdtransforms"][0], out_mat)


class AffineOnly(RegistrationMethod):
    """The baseline: the affine stage alone, no deformable step."""

    name = "affine"

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        mat = stage_file(affine, outdir / "affine.mat")
        return Transforms(forward=[mat], inverse=[mat], inverse_invert=[True])
