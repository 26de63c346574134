"""Per-pair registration quality: label overlap, surface distance and the regularity of the warp.

Conventions (as in Learn2Reg and the Magic-or-Mirage benchmark): Dice per label over labels
present in both subjects; HD95 is the larger of the two directed 95th-percentile surface
distances, in mm; the Jacobian determinant is that of the spatial map x -> x + u(x) in physical
(mm) coordinates; folding is the fraction of voxels with det <= 0, sdlogj the std of log det.
"""

from __future__ import annotations

import numpy as np

LABEL_HEADER = "label\tdice\thd95\tfixed_voxels\twarped_voxels"  # columns of a pair's labels.tsv


def dice_per_label(fixed: np.ndarray, warped: np.ndarray, labels: np.ndarray | None = None) -> dict[int, float]:
    """Dice for each label, from one confusion count (one pass over the volume, not one per label)."""
    fixed = np.asarray(fixed).astype(np.int64).ravel()
    warped = np.asarray(warped).astype(np.int64).ravel()
    if labels is None:
        labels = np.intersect1d(np.unique(fixed), np.unique(warped))
    labels = np.asarray([int(v) for v in labels if v != 0], dtype=np.int64)
    if labels.size == 0:
        return {}
    both = np.unique(np.concatenate([labels, np.unique(fixed), np.unique(warped)]))
    f = np.searchsorted(both, fixed)
    w = np.searchsorted(both, warped)
    k = both.size
    size_f = np.bincount(f, minlength=k)
    size_w = np.bincount(w, minlength=k)
    same = f == w
    inter = np.bincount(f[same], minlength=k)
    idx = np.searchsorted(both, labels)
    denom = size_f[idx] + size_w[idx]
    dice = np.where(denom > 0, 2.0 * inter[idx] / np.maximum(denom, 1), np.nan)
    return {int(lab): float(d) for lab, d in zip(labels, dice)}


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage  # imported where used: a registration job needs only the Jacobian (0.2 s)

    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hd95_label(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...], percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance between two boolean masks, in mm (nan if one is empty)."""
    from scipy import ndimage  # imported where used, as in _surface

    if not a.any() or not b.any():
        return float("nan")
    # Crop to the union's bounding box plus a margin: 100 labels on a 1 mm head stay fast.
    coords = np.argwhere(a | b)
    lo = np.maximum(coords.min(0) - 2, 0)
    hi = coords.max(0) + 3
    sl = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi))
    a, b = a[sl], b[sl]
    sa, sb = _surface(a), _surface(b)
    d_ab = ndimage.distance_transform_edt(~sb, sampling=spacing)[sa]
    d_ba = ndimage.distance_transform_edt(~sa, sampling=spacing)[sb]
    return float(max(np.percentile(d_ab, percentile), np.percentile(d_ba, percentile)))


def hd95_per_label(fixed: np.ndarray, warped: np.ndarray, labels, spacing: tuple[float, ...]) -> dict[int, float]:
    return {int(lab): hd95_label(fixed == lab, warped == lab, spacing) for lab in labels}


def jacobian_determinant(disp: np.ndarray, grid_to_physical: np.ndarray) -> np.ndarray:
    """det(I + du/dx) for a displacement field u given on a voxel grid.

    disp: [X, Y, Z, 3] displacements in physical units (mm) along the same world axes as
    ``grid_to_physical`` (3x3: direction times spacing, mapping voxel steps to mm).
    Central differences inside, one-sided at the borders (numpy.gradient).
    """
    disp = np.asarray(disp, dtype=np.float64)
    grads = np.stack([np.stack(np.gradient(disp[..., c]), axis=-1) for c in range(3)], axis=-2)  # [...,3(u),3(index)]
    inv = np.linalg.inv(np.asarray(grid_to_physical, dtype=np.float64))
    jac = grads @ inv + np.eye(3)
    return np.linalg.det(jac)


def jacobian_stats(det: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(folding fraction, std of log det) over the mask (the fixed brain) or the whole grid."""
    vals = det[mask > 0] if mask is not None and np.any(mask) else det.ravel()
    folding = float(np.mean(vals <= 0))
    sdlogj = float(np.std(np.log(np.clip(vals, 1e-9, None))))
    return folding, sdlogj


def summarise_pair(fixed_labels: np.ndarray, warped_labels: np.ndarray, moving_label_values: np.ndarray,
                   spacing: tuple[float, ...]) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Mean Dice / HD95 over labels present in both subjects, and the per-label rows."""
    present = np.intersect1d(np.unique(fixed_labels), moving_label_values)
    present = present[present != 0]
    dice = dice_per_label(fixed_labels, warped_labels, present)
    hd = hd95_per_label(fixed_labels, warped_labels, present, spacing)
    rows = [{"label": lab, "dice": dice[lab], "hd95": hd[lab],
             "fixed_voxels": int(np.count_nonzero(fixed_labels == lab)),
             "warped_voxels": int(np.count_nonzero(warped_labels == lab))} for lab in dice]
    hd_vals = np.array([v for v in hd.values() if np.isfinite(v)])
    summary = {
        "dice_mean": float(np.mean(list(dice.values()))) if dice else float("nan"),
        "hd95": float(hd_vals.mean()) if hd_vals.size else float("nan"),
        "n_labels": len(dice),
    }
    return summary, rows
