"""Training pairs: a moving subject affinely aligned onto a fixed subject's working grid, with labels.

Each pair is loaded once (ANTs resamples the moving brain and its labels through the pair's
affine) and kept as tensors: at 2 mm a pair is a few MB, so a cohort's training set fits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch

from ..io import nib_to_ants
from ..lazy_ants import import_ants


@dataclass
class Pair:
    name: str
    fixed: torch.Tensor          # [1, 1, D, H, W] brain, intensities in [0, 1]
    moving: torch.Tensor         # the moving brain resampled onto the fixed grid through the affine
    fixed_labels: np.ndarray     # [D, H, W] int
    moving_labels: np.ndarray    # on the fixed grid (nearest label)


def load_pair(name: str, fixed: str, fixed_labels: str, moving: str, moving_labels: str, affine: str) -> Pair:
    ants = import_ants()

    f = nib_to_ants(nib.load(fixed))
    m = ants.apply_transforms(f, nib_to_ants(nib.load(moving)), [affine], interpolator="linear")
    ml = ants.apply_transforms(f, nib_to_ants(nib.load(moving_labels)), [affine], interpolator="genericLabel")
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]  # noqa: E731
    return Pair(name, as_t(f.numpy()), as_t(m.numpy()), np.asarray(nib.load(fixed_labels).dataobj).astype(np.int64),
                np.rint(ml.numpy()).astype(np.int64))


def one_hot(labels: np.ndarray, values: np.ndarray) -> torch.Tensor:
    """[1, K, D, H, W] float masks of ``values`` (the labels both subjects of a pair have)."""
    lab = torch.from_numpy(labels)
    return torch.stack([(lab == int(v)).float() for v in values])[None]


def shared_labels(pair: Pair) -> np.ndarray:
    both = np.intersect1d(np.unique(pair.fixed_labels), np.unique(pair.moving_labels))
    return both[both != 0]
