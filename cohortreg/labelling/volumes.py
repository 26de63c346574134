"""Regional volumes of a label map, and how well a fused map matches a manual one (leave-one-out).

Volumes count voxels of each label once, in one pass (``np.bincount``), times the voxel's volume in mL,
so a 20,000-subject table never reads a label map twice.
"""

from __future__ import annotations

import numpy as np

# route: atlases (multi-atlas fusion) or template (design: template, the template's labels); appended last so
# that the columns of earlier tables keep their places
VOLUME_COLUMNS = ["cohort", "subject", "protocol", "label", "volume_ml", "agreement", "atlases", "status", "error",
                  "route"]
# held_out: the subject's own labels did not make what labelled it (always true for the atlas route, which is
# leave-one-out; for the template route, true where the subject was not one of the template's inputs)
ACCURACY_COLUMNS = ["cohort", "subject", "protocol", "label", "dice", "volume_ml", "manual_ml", "volume_error_pct",
                    "route", "held_out"]


def region_volumes(labels: np.ndarray, voxel_ml: float, agreement: np.ndarray | None = None
                   ) -> dict[int, tuple[float, float]]:
    """{label: (volume in mL, mean agreement inside it)} of every non-zero label present."""
    flat = np.asarray(labels).ravel().astype(np.int64)
    if flat.size and flat.min() < 0:
        raise ValueError("negative labels in a label map")
    counts = np.bincount(flat)
    sums = np.bincount(flat, weights=np.asarray(agreement, np.float64).ravel()) if agreement is not None else None
    return {int(v): (float(counts[v]) * voxel_ml, float(sums[v] / counts[v]) if sums is not None else float("nan"))
            for v in np.nonzero(counts)[0] if v != 0}


def voxel_ml(zooms: tuple[float, ...]) -> float:
    return float(np.prod(zooms[:3])) / 1000.0


def accuracy(fused: np.ndarray, manual: np.ndarray, voxel: float) -> list[dict[str, float]]:
    """Per label of the manual map: Dice of the fused map, both volumes and the volume error in %."""
    fused, manual = np.asarray(fused).ravel().astype(np.int64), np.asarray(manual).ravel().astype(np.int64)
    n = int(max(fused.max(initial=0), manual.max(initial=0))) + 1
    a, b = np.bincount(fused, minlength=n), np.bincount(manual, minlength=n)
    both = np.bincount(fused[fused == manual], minlength=n)
    rows = []
    for v in np.nonzero(b)[0]:
        if v == 0:
            continue
        rows.append({"label": int(v), "dice": float(2 * both[v] / (a[v] + b[v])), "volume_ml": float(a[v]) * voxel,
                     "manual_ml": float(b[v]) * voxel, "volume_error_pct": float(100.0 * (a[v] - b[v]) / b[v])})
    return rows


def icc_3_1(a: np.ndarray, b: np.ndarray) -> float:
    """ICC(3,1) (Shrout and Fleiss: two-way mixed, consistency, single measure) of two ratings of n subjects,
    e.g. a region's propagated and manual volumes: 1 when they agree up to a constant offset."""
    y = np.column_stack([np.asarray(a, float), np.asarray(b, float)])
    n, k = y.shape
    grand = y.mean()
    ss_rows = k * float(((y.mean(axis=1) - grand) ** 2).sum())
    ss_cols = n * float(((y.mean(axis=0) - grand) ** 2).sum())
    ss_err = float(((y - grand) ** 2).sum()) - ss_rows - ss_cols
    ms_rows, ms_err = ss_rows / (n - 1), ss_err / ((n - 1) * (k - 1))
    return (ms_rows - ms_err) / (ms_rows + (k - 1) * ms_err) if ms_rows + (k - 1) * ms_err > 0 else float("nan")
