"""Brain extraction: auto (the default), deepbet, atlas, provided (mask column) or none (already stripped).

auto judges each raw T1: a brain on a constant background whose non-background region is brain-sized
passes through as it is (its non-zero voxels are the mask, as ``none``); anything else is a head, stripped
by deepbet, whose answer is checked once more: a deepbet mask that holds the scan's whole non-background
region (>= 95 % of it; a head's holds a third) means the scan was a brain after all, and it keeps its brain. The decision and its evidence
go into the subject's qc.json and log. deepbet (Fisch et al. 2024, MIT licence) is a learned brain
extractor whose weights ship inside its wheel: nothing is downloaded at run time; it runs on the raw
scan (its own grid, the resolution it was trained at) and its mask is carried to the working grid. Only
its model code is imported (deepbet.bet), never its GUI.

The atlas method registers a head template to the subject and warps the template's brain mask
back, as ANTs' antsBrainExtraction does at its core; it needs no downloaded weights. A warped
template mask is a smooth hull: it cuts whatever the template's brain lacked (a bigger
cerebellum) and keeps the subject's sulcal CSF. ``refine_mm`` then turns it into a tissue mask,
as antsBrainExtraction's segmentation step does: grow the hull by that margin, split the
intensities inside into CSF / grey / white matter (k-means), keep what is brighter than midway
between CSF and grey matter, and keep the largest piece with its holes (ventricles) filled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io import load_volume, nib_to_ants
from ..lazy_ants import import_ants
from .preprocess import border_mode, robust_normalise

METHODS = ("auto", "deepbet", "atlas", "provided", "none")
COVERS_STRIPPED = 0.95  # auto: a deepbet mask holding this share of the scan's own foreground: the scan was a brain
BORDER_CONSTANT = 0.99  # auto: a skull-stripped scan's border is this share one value (its background)


@dataclass(frozen=True)
class AtlasSettings:
    template: str = ""
    template_mask: str = ""  # a mask or an extracted brain: voxels > 0 are brain
    spacing: float = 2.0  # registration runs at this spacing; the mask is resampled back
    syn_iterations: tuple[int, ...] = (40, 20, 0)
    threshold: float = 0.5
    refine_mm: float = 4.0  # grow the warped mask by this, then keep tissue (CSF out); 0 = the hull as warped


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Keep the largest connected component and fill holes: a brain is one solid piece."""
    lab, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
        mask = lab == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(mask)


def intensity_classes(values: np.ndarray, k: int = 3, iterations: int = 50) -> np.ndarray:
    """Sorted centres of k intensity clusters (1-D k-means from spread percentiles)."""
    centres = np.percentile(values, np.linspace(10, 90, k))
    for _ in range(iterations):
        nearest = np.argmin(np.abs(values[:, None] - centres[None]), axis=1)
        new = np.array([values[nearest == i].mean() if np.any(nearest == i) else centres[i] for i in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return np.sort(centres)


def refine_to_tissue(t1: np.ndarray, hull: np.ndarray, zooms: tuple[float, ...], margin_mm: float) -> np.ndarray:
    """The hull grown by ``margin_mm``, less CSF-dark voxels, as one solid piece (see module doc)."""
    ball = ndimage.generate_binary_structure(3, 1)
    grow = max(1, int(round(margin_mm / min(zooms))))
    region = ndimage.binary_dilation(hull, ball, iterations=grow)
    values = t1[region]
    csf, grey, _ = intensity_classes(values[:: max(1, values.size // 500_000)])
    tissue = region & (t1 > 0.5 * (csf + grey))
    return clean_mask(ndimage.binary_opening(tissue, ball))


def atlas_mask(subject: str, t1: nib.Nifti1Image, settings: AtlasSettings) -> np.ndarray:
    """Warp the template's brain mask onto the subject's grid (boolean array)."""
    ants = import_ants()

    if not settings.template or not settings.template_mask:
        raise InputError(subject, None, "skullstrip.method 'atlas' needs skullstrip.template and skullstrip.template_mask in config")
    tmpl = load_volume(settings.template, None, "skull-strip template")
    tmask = load_volume(settings.template_mask, None, "skull-strip template mask")
    tmpl_a = nib_to_ants(nib.as_closest_canonical(tmpl))
    tmask_a = nib_to_ants(nib.as_closest_canonical(tmask))
    tmask_a = tmask_a.new_image_like((tmask_a.numpy() > 0).astype(np.float32))
    subj_a = nib_to_ants(t1)
    sp = (settings.spacing,) * 3
    fixed = ants.resample_image(subj_a, sp, use_voxels=False, interp_type=0)
    moving = ants.resample_image(tmpl_a, sp, use_voxels=False, interp_type=0)
    moving = moving.new_image_like(robust_normalise(moving.numpy(), 0.5, 99.5))
    reg = ants.registration(fixed, moving, type_of_transform="SyN", aff_metric="mattes", syn_metric="mattes",
                            reg_iterations=tuple(settings.syn_iterations))
    warped = ants.apply_transforms(subj_a, tmask_a, reg["fwdtransforms"], interpolator="linear")
    mask = clean_mask(warped.numpy() > settings.threshold)
    if not mask.any():
        raise InputError(subject, None, "atlas skull stripping produced an empty mask (template registration failed?)")
    if settings.refine_mm > 0:
        refined = refine_to_tissue(np.asanyarray(t1.dataobj).astype(np.float32), mask, t1.header.get_zooms()[:3],
                                   settings.refine_mm)
        if refined.sum() > 0.5 * mask.sum():
            mask = refined
        else:  # the intensity split failed (odd contrast): say so, keep the hull
            logging.getLogger(__name__).warning(
                "%s: tissue refinement kept %d of %d voxels; using the warped template mask", subject,
                int(refined.sum()), int(mask.sum()))
    return mask


def extract_brain(subject: str, t1: nib.Nifti1Image, method: str, mask: nib.Nifti1Image | None = None,
                  atlas: AtlasSettings = AtlasSettings(), mask_path: str = "",
                  percentiles: tuple[float, float] = (0.5, 99.5), raw_t1_path: str = "",
                  brain_ml_max: float = 2500.0, evidence: dict[str, Any] | None = None
                  ) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """Return (brain image renormalised inside the mask, uint8 mask) on the T1's grid.

    percentiles: preprocess.lower_percentile / upper_percentile, applied again inside the mask
    (the brain image is what every registration sees). raw_t1_path: the sheet's T1 (auto and deepbet
    read it); brain_ml_max: qc.brain_ml's upper bound (auto: a brain-sized foreground); evidence: filled
    with auto's decision and what it rests on."""
    data = np.asanyarray(t1.dataobj).astype(np.float32)
    evidence = {} if evidence is None else evidence
    evidence["method"] = method
    if method == "auto":
        m = auto_mask(subject, t1, raw_t1_path, brain_ml_max, atlas.threshold, evidence)
    elif method == "deepbet":
        m = deepbet_mask(subject, raw_t1_path, t1, atlas.threshold)
    elif method == "none":
        m = clean_mask(data > 0)
    elif method == "provided":
        if mask is None:
            raise InputError(subject, mask_path or None, "skullstrip.method is 'provided' but the sheet gives no mask for this subject")
        m = np.asanyarray(mask.dataobj) > 0
    elif method == "atlas":
        m = atlas_mask(subject, t1, atlas)
    else:
        raise ValueError(f"unknown skull-strip method {method!r}; expected one of {METHODS}")
    if not m.any():
        raise InputError(subject, mask_path or None, "brain mask is empty")
    brain = np.where(m, robust_normalise(data, *percentiles, within=m), 0.0).astype(np.float32)
    return (nib.Nifti1Image(brain, t1.affine, t1.header), nib.Nifti1Image(m.astype(np.uint8), t1.affine))


def judge_raw(raw: nib.Nifti1Image, brain_ml_max: float) -> dict[str, Any]:
    """Is the raw T1 an already skull-stripped brain? Its border's constant value and share, and the volume
    of what differs from it: a stripped brain sits on a constant background (share ~1) and is brain-sized;
    a head's border is air noise or its non-background region is head-sized (3,400-6,700 mL on the shared
    heads, 1,060-1,740 mL on the stripped brains)."""
    data = np.asanyarray(raw.dataobj)
    bg, share = border_mode(data)
    voxel_ml = float(np.prod(raw.header.get_zooms()[:3])) / 1000.0
    foreground_ml = float(np.count_nonzero(data != bg)) * voxel_ml
    stripped = share >= BORDER_CONSTANT and foreground_ml <= brain_ml_max
    return {"looks_stripped": bool(stripped), "border_constant_share": round(share, 4),
            "foreground_ml": round(foreground_ml, 1)}


@lru_cache(maxsize=1)
def _deepbet_model() -> Any:
    """deepbet's two networks (its bounding-box and its mask model), loaded once per process, on the CPU."""
    from deepbet.bet import BrainExtraction  # its model code only: deepbet.ui (the GUI) is never imported

    return BrainExtraction(no_gpu=True)


def deepbet_available() -> str:
    """'' when deepbet and its weights are installed, else what is wrong (checked at start, before any subject)."""
    import importlib.util

    spec = importlib.util.find_spec("deepbet")
    if spec is None or not spec.submodule_search_locations:
        return "the package deepbet is not installed (pip install deepbet)"
    folder = Path(list(spec.submodule_search_locations)[0])
    # deepbet.utils.DATA_PATH (not imported here: it imports torch, and this runs while Snakemake parses)
    needed = [folder / "bet.py", folder.parent / "data" / "models" / "model.pt",
              folder.parent / "data" / "models" / "bbox_model.pt"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        return f"the package deepbet is incomplete: {', '.join(missing)} missing (pip install --force-reinstall deepbet)"
    return ""


def deepbet_mask(subject: str, raw_t1_path: str, t1: nib.Nifti1Image, threshold: float = 0.5,
                 raw: nib.Nifti1Image | None = None) -> np.ndarray:
    """deepbet's brain mask of the raw scan (raw, if already read), carried onto the working grid (t1's)."""
    ants = import_ants()
    raw = load_volume(raw_t1_path, subject, "T1") if raw is None else raw
    try:
        bet = _deepbet_model()
        _, mask, _ = bet.run(raw, threshold=threshold)
    except ImportError as exc:
        raise InputError(subject, raw_t1_path, f"skull stripping needs the package deepbet ({exc})") from exc
    m = nib_to_ants(nib.as_closest_canonical(nib.Nifti1Image(np.asarray(mask.dataobj, np.float32), mask.affine)))
    on_grid = ants.resample_image_to_target(m, nib_to_ants(t1), interp_type="linear").numpy() > 0.5
    return clean_mask(on_grid)


def auto_mask(subject: str, t1: nib.Nifti1Image, raw_t1_path: str, brain_ml_max: float, threshold: float,
              evidence: dict[str, Any]) -> np.ndarray:
    """auto: the scan's own brain if it is one, else deepbet's; the decision and its evidence into evidence."""
    data = np.asanyarray(t1.dataobj)
    raw = load_volume(raw_t1_path, subject, "T1")
    judged = judge_raw(raw, brain_ml_max)
    evidence.update(judged)
    own = clean_mask(data > 0)
    if judged["looks_stripped"]:
        evidence["decision"] = "stripped: passed through"
        return own
    m = deepbet_mask(subject, raw_t1_path, t1, threshold, raw)
    covered = float((m & own).sum() / max(own.sum(), 1))
    evidence["deepbet_covers_foreground"] = round(covered, 4)
    if covered >= COVERS_STRIPPED:
        evidence["decision"] = "stripped (deepbet found its own brain): passed through"
        return own
    evidence["decision"] = "head: stripped by deepbet"
    return m


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float(2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))


def provided_mask(subject: str, t1: nib.Nifti1Image, raw_t1_path: str, mask_path: str) -> nib.Nifti1Image:
    """The sheet's mask, checked against the raw T1's grid, then mapped onto the preprocessed grid."""
    ants = import_ants()

    from ..io import check_same_grid

    if not mask_path:
        raise InputError(subject, None, "skullstrip.method is 'provided' but the sheet gives no mask for this subject")
    raw = load_volume(raw_t1_path, subject, "T1")
    mask = load_volume(mask_path, subject, "mask")
    check_same_grid(raw, mask, subject, mask_path, "mask")
    if not np.any(np.asanyarray(mask.dataobj) > 0):
        raise InputError(subject, mask_path, "brain mask is empty (no voxel > 0)")
    m = nib_to_ants(nib.as_closest_canonical(mask))
    m = m.new_image_like((m.numpy() > 0).astype(np.float32))
    on_grid = ants.resample_image_to_target(m, nib_to_ants(t1), interp_type="linear").numpy() > 0.5
    if not on_grid.any():
        raise InputError(subject, mask_path, "brain mask is empty after resampling to the working grid")
    return nib.Nifti1Image(on_grid.astype(np.uint8), t1.affine)
