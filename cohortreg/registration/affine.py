"""Affine initialisation with ANTs: centre-of-mass start, then rigid and affine stages (Mattes MI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import RegistrationMethod, Transforms, stage_file


@dataclass(frozen=True)
class AffineSettings:
    metric: str = "mattes"
    iterations: tuple[int, ...] = (200, 100, 50, 20)
    shrink_factors: tuple[int, ...] = (8, 4, 2, 1)
    smoothing_sigmas: tuple[int, ...] = (3, 2, 1, 0)
    sampling_rate: float = 0.25


def estimate_affine(fixed: Any, moving: Any, out_mat: Path, settings: AffineSettings = AffineSettings()) -> str:
    """Rigid then affine, from a centre-of-mass alignment; writes an ANTs ``.mat`` (moving -> fixed)."""
    import ants

    common = dict(aff_metric=settings.metric, aff_iterations=tuple(settings.iterations),
                  aff_shrink_factors=tuple(settings.shrink_factors),
                  aff_smoothing_sigmas=tuple(settings.smoothing_sigmas),
                  aff_random_sampling_rate=settings.sampling_rate)
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
