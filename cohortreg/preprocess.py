"""Per-subject preprocessing: canonical orientation, optional N4, resampling, robust intensity scaling.

Every step keeps the physical (world) space, so transforms estimated on preprocessed images
apply unchanged to the raw scans. Label maps follow the T1 with label-aware interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from .errors import InputError
from .io import ants_to_nib, check_same_grid, labels_as_int, load_volume, nib_to_ants
from .lazy_ants import import_ants


@dataclass(frozen=True)
class PreprocessSettings:
    reorient: bool = True
    n4: bool = False
    spacing: float | None = 2.0  # mm, isotropic; None keeps the native grid
    lower_percentile: float = 0.5
    upper_percentile: float = 99.5


@dataclass
class Preprocessed:
    t1: nib.Nifti1Image
    labels: nib.Nifti1Image  # all zeros when the subject has no label map


def background_floor(data: np.ndarray) -> float:
    """Intensities at or below this are background: 1e-3 of the maximum, not zero.

    B-spline resampling of a skull-stripped scan leaves values of 1e-40 over its whole
    background. Counted as foreground they set the 0.5th percentile to ~0, keep the background
    non-zero (an OASIS brain's non-zero box was its full grid) and run as slow denormals.
    """
    return 1e-3 * float(data.max()) if data.size else 0.0


def robust_normalise(data: np.ndarray, lower: float, upper: float, within: np.ndarray | None = None) -> np.ndarray:
    """Map the [lower, upper] percentiles of the foreground to [0, 1] and clip.

    Percentiles instead of min/max so that a few hot voxels (vessels, artefacts) do not squash
    the tissue contrast; computed on non-zero voxels so zero padding does not count.
    """
    region = data[within] if within is not None else data[data > background_floor(data)]
    if region.size == 0:
        region = data.ravel()
    lo, hi = np.percentile(region, [lower, upper])
    if hi <= lo:
        hi = lo + 1.0
    out = (data.astype(np.float32) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def preprocess_subject(subject: str, t1_path: str, labels_path: str = "",
                       settings: PreprocessSettings = PreprocessSettings()) -> Preprocessed:
    """Load, check and preprocess one subject's T1 and its label map (which must share the T1's grid)."""
    ants = import_ants()

    t1 = load_volume(t1_path, subject, "T1")
    labels = None
    if labels_path:
        labels = labels_as_int(load_volume(labels_path, subject, "label map"), subject, labels_path)
        check_same_grid(t1, labels, subject, labels_path, "label map")
    if not np.any(np.asanyarray(t1.dataobj) != 0):
        raise InputError(subject, t1_path, "T1 image is all zeros")

    if settings.reorient:
        t1 = nib.as_closest_canonical(t1)
        labels = nib.as_closest_canonical(labels) if labels is not None else None

    img = nib_to_ants(t1)
    if settings.n4:
        # N4 fits a multiplicative field, so it needs strictly positive intensities.
        shifted = img - img.min() + 1e-3
        img = ants.n4_bias_field_correction(shifted, shrink_factor=4 if min(img.shape) > 64 else 2)
    if settings.spacing:
        img = ants.resample_image(img, (settings.spacing,) * 3, use_voxels=False, interp_type=4)  # B-spline
    data = img.numpy()
    norm = robust_normalise(data, settings.lower_percentile, settings.upper_percentile)
    norm[data <= background_floor(data)] = 0.0  # B-spline overshoot and ringing: background stays zero
    out_t1 = ants_to_nib(img.new_image_like(norm), np.float32)

    if labels is not None:
        lab = ants.resample_image_to_target(nib_to_ants(labels), img, interp_type="genericLabel")
        out_labels = ants_to_nib(lab.new_image_like(np.rint(lab.numpy())), np.int32)
    else:
        out_labels = nib.Nifti1Image(np.zeros(out_t1.shape, np.int32), out_t1.affine)
    return Preprocessed(out_t1, out_labels)
