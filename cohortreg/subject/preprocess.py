"""Per-subject preprocessing: canonical orientation, optional N4, resampling, robust intensity scaling.

Every step keeps the physical (world) space, so transforms estimated on preprocessed images
apply unchanged to the raw scans. Label maps follow the T1 with label-aware interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nibabel as nib
import numpy as np

from ..errors import InputError
from ..io import ants_to_nib, check_same_grid, labels_as_int, load_volume, nib_to_ants
from ..lazy_ants import import_ants
from ..transforms.label_warp import resample_labels
from ..evaluation.qc import handedness, raw_intensity_stats


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
    raw: dict = field(default_factory=dict)  # the raw scan's stats for QC (cohortreg.evaluation.qc)


def border_background(data: np.ndarray, share: float = 0.9) -> float | None:
    """The value most of the image's border takes, if one value covers ``share`` of it, else None.

    A skull-stripped scan sits on a constant background, usually 0; a full-head scan's border
    is noise and has no such value.
    """
    value, covered = border_mode(data)
    return value if covered >= share else None


def border_mode(data: np.ndarray) -> tuple[float, float]:
    """(the most common value of the image's six faces, the share of the faces it covers)."""
    faces = np.concatenate([np.ravel(f) for f in (data[0], data[-1], data[:, 0], data[:, -1], data[:, :, 0],
                                                    data[:, :, -1])])
    values, counts = np.unique(faces, return_counts=True)
    i = int(np.argmax(counts))
    return float(values[i]), float(counts[i] / faces.size)


def zero_background(subject: str, path: str, img: nib.Nifti1Image) -> tuple[nib.Nifti1Image, float]:
    """A skull-stripped scan on a constant non-zero background (-500, 100, ...): shift it to 0.

    The brain is where the scan differs from its background; with the background at 0 every
    later step (foreground, mask, normalisation) finds it. A background that is not the scan's
    darkest value cannot be told from tissue, so that is refused with what was expected.
    """
    data = np.asanyarray(img.dataobj)
    bg = border_background(data)
    if bg is None or bg == 0:
        return img, 0.0
    fg = data[data != bg]
    darker = float(np.mean(fg < bg)) if fg.size else 0.0
    if darker > 0.01:
        raise InputError(subject, path, f"the image border has the constant value {bg:g} (a skull-stripped "
                         f"scan's background?) but {100 * darker:.0f}% of the other voxels are darker; "
                         "expected the background at the scan's lowest value (0 for a skull-stripped T1)")
    shifted = np.asarray(data, dtype=np.float32) - np.float32(bg)
    return nib.Nifti1Image(shifted, img.affine, img.header), bg


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
    t1, background = zero_background(subject, t1_path, t1)
    raw = {**raw_intensity_stats(np.asanyarray(t1.dataobj)), "handedness": handedness(t1.affine),
           "background": background}

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
    fg = data > background_floor(data)
    # The darkest foreground (below the lower percentile) stays just above 0: a skull-stripped
    # brain's mask is where the image is non-zero, and a scan of few levels would lose them all.
    norm[fg] = np.maximum(norm[fg], 1e-4)
    norm[~fg] = 0.0  # B-spline overshoot and ringing: background stays zero
    out_t1 = ants_to_nib(img.new_image_like(norm), np.float32)

    if labels is not None:
        lab = resample_labels(nib_to_ants(labels), img)  # genericLabel's choice, without its per-label loop
        out_labels = ants_to_nib(lab, np.int32)
    else:
        out_labels = nib.Nifti1Image(np.zeros(out_t1.shape, np.int32), out_t1.affine)
    return Preprocessed(out_t1, out_labels, raw)
