"""Affine initialisation with ANTs: centre-of-mass start, then rigid and affine stages (Mattes MI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..lazy_ants import import_ants
from .base import RegistrationMethod, Transforms, stage_file


@dataclass(frozen=True)
class AffineSettings:
    metric: str = "mattes"
    iterations: tuple[int, ...] = (200, 100, 50, 20)
    shrink_factors: tuple[int, ...] = (8, 4, 2, 1)
    smoothing_sigmas: tuple[int, ...] = (3, 2, 1, 0)
    sampling_rate: float = 0.25
    # Rigid stage first (None: the affine's iterations; (): no rigid stage). Rigid only needs the
    # coarse levels to settle rotation and translation before the 12-parameter stage.
    rigid_iterations: tuple[int, ...] | None = (200, 100, 0, 0)
    # MI on a coarse grid with few random points is unstable (a wrong scale on small images):
    # sample at least this many points per level (0: the sampling rate alone decides).
    min_samples: int = 1_000_000
    # Estimate on a grid no finer than this (mm): 12 parameters do not need 1 mm voxels, and a
    # 1 mm affine at full sampling costs 8x a 2 mm one. None: the working grid.
    max_resolution_mm: float | None = 2.0


MIN_VOXELS_PER_AXIS = 16


def capped_shrink_factors(shape: tuple[int, ...], shrink_factors: tuple[int, ...]) -> tuple[int, ...]:
    """Cap each shrink factor so the coarsest level keeps >= 16 voxels along the shortest axis.

    Shrinking a 2 mm brain (about 80 voxels across) by 8 leaves 10 voxels: too few samples for
    mutual information, which then drifts to a wrong scale. 1 mm brains keep 8/4/2/1 unchanged.
    """
    cap = max(1, min(shape) // MIN_VOXELS_PER_AXIS)
    return tuple(max(1, min(int(s), cap)) for s in shrink_factors)


def estimate_affine(fixed: Any, moving: Any, out_mat: Path, settings: AffineSettings = AffineSettings()) -> str:
    """Rigid then affine, from a centre-of-mass alignment; writes an ANTs ``.mat`` (moving -> fixed)."""
    ants = import_ants()

    res = settings.max_resolution_mm
    if res and min(fixed.spacing) < res:
        # The .mat maps physical points, so a transform estimated on coarser copies is the same map.
        fixed, moving = (ants.resample_image(im, (res,) * 3, use_voxels=False, interp_type=0) for im in (fixed, moving))
    shrink = capped_shrink_factors(tuple(fixed.shape), tuple(settings.shrink_factors))
    rate = min(1.0, max(settings.sampling_rate, settings.min_samples / float(np.prod(fixed.shape))))
    common = dict(aff_metric=settings.metric, aff_shrink_factors=shrink,
                  aff_smoothing_sigmas=tuple(settings.smoothing_sigmas), aff_random_sampling_rate=rate)
    rigid_its = tuple(settings.iterations if settings.rigid_iterations is None else settings.rigid_iterations)
    init = None
    if rigid_its:
        # antspyx starts from [fixed, moving, 1] (centre of mass) when no initial transform is given.
        rigid = ants.registration(fixed, moving, type_of_transform="Rigid", aff_iterations=rigid_its, **common)
        init = rigid["fwdtransforms"][0]
    aff = ants.registration(fixed, moving, type_of_transform="Affine", initial_transform=init,
                            aff_iterations=tuple(settings.iterations), **common)
    return stage_file(aff["fwdtransforms"][0], out_mat)


def estimate_affine_torch(fixed: Any, moving: Any, out_mat: Path, settings: dict[str, Any] | None = None) -> str:
    """The torch engine's centre-of-mass, rigid, affine pyramid (cohortreg.torchreg.affine); writes
    the same ANTs .mat as estimate_affine. Deterministic on CPU for a given thread count."""
    import torch

    from ..torchreg.affine import AffineTorchSettings, Geometry, register_affine, write_ants_affine

    s = dict(settings or {})
    for k in ("scales", "rigid_iterations", "iterations"):
        if k in s:
            s[k] = tuple(s[k])
    torch.set_flush_denormal(True)
    as_t = lambda img: torch.from_numpy(np.ascontiguousarray(img.numpy(), dtype=np.float32))[None, None]  # noqa: E731
    a, t, c = register_affine(as_t(fixed), as_t(moving), Geometry.of(fixed), Geometry.of(moving), AffineTorchSettings(**s))
    out_mat.parent.mkdir(parents=True, exist_ok=True)
    return write_ants_affine(a[0], t[0], c[0], str(out_mat))


class AffineOnly(RegistrationMethod):
    """The baseline: the affine stage alone, no deformable step."""

    name = "affine"
    threaded = False  # a copy of the .mat, then the warps: a second thread would wait (and block a second job)

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        mat = stage_file(affine, outdir / "affine.mat")
        return Transforms(forward=[mat], inverse=[mat], inverse_invert=[True])
