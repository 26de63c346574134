"""Label-free quality control: a result that looks valid and is not gets flagged, never passed.

Three layers, each a verdict ``pass | warn | fail`` with a reason a person can act on:

- **Input plausibility**, per subject (``subject_qc``): the raw T1's distinct intensity levels
  and the share of the brain at one value (a float image cast to int16 keeps a handful of
  levels), the brain volume in mL (a mask of four voxels is no brain), and the header's
  handedness, which the cohort step compares with the subject's cohort.
- **The pair's own result** (``pair_qc``): local correlation of the warped moving image with the
  fixed brain inside the fixed mask, and the Jacobian (folding) of the warp; plus the verdicts of
  both subjects' inputs.
- **The cohort** (``cohort_qc``, in the aggregation): robust z-scores (median and MAD) of that
  similarity and of sdlogj per cohort and method, so a pair far below its peers stands out
  without labels; and a subject whose header handedness differs from most of its cohort, the
  signature of a left-right mirrored header, is named a suspected left-right flip.

Thresholds are ``config['qc']``; ``on_fail: error`` fails a subject's job on a failed input
check instead of marking its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

LEVELS = ("pass", "warn", "fail")


@dataclass(frozen=True)
class QCSettings:
    on_fail: str = "mark"             # mark: flag the rows; error: a failed input check fails the job
    brain_ml: tuple[float, float] = (400.0, 2500.0)  # plausible brain volume (neonate .. large adult head)
    min_levels: int = 32              # distinct raw intensities inside the brain
    max_mode_fraction: float = 0.5    # share of brain voxels that may share one raw value
    z_warn: float = 3.5               # robust |z| against the cohort and method: warn
    z_fail: float = 7.0               # ... and fail
    min_cohort: int = 5               # pairs of a cohort and method needed for robust z-scores
    min_spread: float = 0.02          # robust scale at least this fraction of the median: a tight cohort
                                      # (LNCC 0.85 +- 0.005) must not turn a 0.02 difference into z = 4
    max_folding: float = 0.01         # folding fraction above this fails the pair
    flip_majority: float = 0.75       # share of a cohort with one handedness for a lone other to be suspect


def qc_settings(cfg: dict[str, Any] | None) -> QCSettings:
    cfg = dict(cfg or {})
    if "brain_ml" in cfg:
        cfg["brain_ml"] = tuple(cfg["brain_ml"])
    return QCSettings(**cfg)


def worst(verdicts: Iterable[str]) -> str:
    return max(verdicts, key=LEVELS.index, default="pass")


class Verdict:
    """Collects (level, reason) findings; ``qc`` is the worst level, ``reason`` the findings joined."""

    def __init__(self) -> None:
        self.findings: list[tuple[str, str]] = []

    def add(self, level: str, reason: str) -> None:
        self.findings.append((level, reason))

    def extend(self, qc: str, reason: str) -> None:
        if qc != "pass" and reason:
            for part in reason.split("; "):
                self.add(qc, part)

    @property
    def qc(self) -> str:
        return worst(level for level, _ in self.findings)

    @property
    def reason(self) -> str:
        return "; ".join(dict.fromkeys(r for level, r in self.findings if level != "pass"))


def raw_intensity_stats(data: np.ndarray, background: float = 0.0, max_samples: int = 2_000_000) -> dict[str, Any]:
    """Distinct levels and the largest one-value share among the raw scan's non-background voxels."""
    fg = data[data != background]
    if fg.size > max_samples:  # a 1 mm head is 16 M voxels; a regular subsample keeps the counts honest
        fg = fg[:: fg.size // max_samples + 1]
    if fg.size == 0:
        return {"levels": 0, "mode_fraction": 1.0, "foreground_voxels": 0}
    values, counts = np.unique(fg, return_counts=True)
    return {"levels": int(values.size), "mode_fraction": float(counts.max() / fg.size),
            "foreground_voxels": int(np.count_nonzero(data != background))}


def handedness(affine: np.ndarray) -> int:
    """+1 for a right-handed voxel-to-world map (RAS, LPS, ...), -1 for a mirrored one (LAS, ...)."""
    return 1 if np.linalg.det(np.asarray(affine)[:3, :3]) > 0 else -1


def subject_qc(raw: dict[str, Any], mask: np.ndarray, voxel_ml: float, settings: QCSettings) -> dict[str, Any]:
    """The input verdict of one subject: raw-scan stats (from preprocessing) and its brain mask."""
    v = Verdict()
    brain_ml = float(np.count_nonzero(mask) * voxel_ml)
    lo, hi = settings.brain_ml
    if not lo <= brain_ml <= hi:
        v.add("fail", f"brain volume {brain_ml:.0f} mL outside the plausible range {lo:.0f}-{hi:.0f} mL (qc.brain_ml)")
    strip = raw.get("skullstrip") or {}
    if strip.get("method") == "none" and strip.get("looks_stripped") is False:
        v.add("fail", f"the T1 looks like a full head, not a brain (its non-background region is "
                      f"{strip['foreground_ml']:.0f} mL, its border {100 * strip['border_constant_share']:.0f}% one value) "
                      "but skullstrip.method is none: use auto or deepbet")
    if raw.get("levels", settings.min_levels) < settings.min_levels:
        v.add("fail", f"only {raw['levels']} distinct intensity levels in the raw T1 (at least {settings.min_levels}: "
                      "was it cast to an integer type after scaling?)")
    if raw.get("mode_fraction", 0.0) > settings.max_mode_fraction:
        v.add("fail", f"{100 * raw['mode_fraction']:.0f}% of the raw T1's foreground has one intensity value "
                      "(saturated or clipped scan?)")
    return {**raw, "brain_ml": brain_ml, "qc": v.qc, "qc_reason": v.reason}


def lncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray, window: int = 5) -> float:
    """Mean local normalised cross-correlation (box window, voxels) inside ``mask``: 1 = same local
    contrast everywhere; a result that does not resemble its fixed image scores far lower."""
    from scipy import ndimage

    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    box = lambda x: ndimage.uniform_filter(x, window)  # noqa: E731
    ma, mb = box(a), box(b)
    cov = box(a * b) - ma * mb
    va, vb = box(a * a) - ma * ma, box(b * b) - mb * mb
    r = cov / np.sqrt(np.clip(va * vb, 1e-12, None))
    m = mask > 0
    return float(np.mean(np.clip(r[m], -1, 1))) if m.any() else float("nan")


def pair_qc(subjects: Iterable[tuple[str, dict[str, Any]]], folding: float, settings: QCSettings) -> tuple[str, str]:
    """The pair's verdict from its subjects' input verdicts and its own warp."""
    v = Verdict()
    for role, q in subjects:
        if q.get("qc", "pass") != "pass":
            for part in q["qc_reason"].split("; "):
                v.add(q["qc"], f"{role}: {part}")
    if np.isfinite(folding) and folding > settings.max_folding:
        v.add("fail", f"{100 * folding:.2f}% of the fixed brain folds (det J <= 0; at most {100 * settings.max_folding:g}%)")
    return v.qc, v.reason


def robust_z(values: np.ndarray, min_spread: float = 0.02) -> np.ndarray:
    """(x - median) / max(1.4826 MAD, min_spread |median|): a z-score that a few outliers cannot hide
    behind, and that differences too small to matter cannot inflate."""
    x = np.asarray(values, dtype=float)
    med = np.nanmedian(x)
    mad = 1.4826 * np.nanmedian(np.abs(x - med))
    scale = max(mad, min_spread * abs(med), 1e-9)
    return (x - med) / scale


def cohort_qc(pairs: Any, handed: dict[tuple[str, str], int], settings: QCSettings) -> Any:
    """Add cohort-relative findings to the ``qc`` / ``qc_reason`` columns of a pairs table (pandas).

    pairs: one row per (cohort, moving, fixed, method), with ``lncc``, ``sdlogj``, ``qc``,
    ``qc_reason`` from the pair's own step; handed: (cohort, subject) -> header handedness.
    """
    pairs = pairs.copy()
    verdicts = [Verdict() for _ in range(len(pairs))]
    for v, (qc, reason) in zip(verdicts, zip(pairs["qc"].fillna("pass"), pairs["qc_reason"].fillna(""))):
        v.extend(qc, reason)
    ok = (pairs["status"] == "ok").to_numpy()
    for _, idx in pairs[ok].groupby(["cohort", "method"], sort=False).groups.items():
        rows = [pairs.index.get_loc(i) for i in idx]
        if len(rows) < settings.min_cohort:
            continue
        # Low similarity can fail a pair; an irregular warp only warns (folding has its own limit).
        for col, sign, top, what in (("lncc", -1, "fail", "similarity to the fixed image (LNCC)"),
                                     ("sdlogj", 1, "warn", "warp irregularity (sdlogj)")):
            z = robust_z(pairs[col].to_numpy(dtype=float)[rows], settings.min_spread)
            for r, zi in zip(rows, z):
                if sign * zi > settings.z_warn:
                    level = top if sign * zi > settings.z_fail else "warn"
                    verdicts[r].add(level, f"{what} {'below' if sign < 0 else 'above'} its cohort and method "
                                           f"(robust z {zi:+.1f})")
    for cohort in pairs["cohort"].unique():
        signs = {s: h for (c, s), h in handed.items() if c == cohort and h}  # 0: not a scan (a template)
        if len(signs) < 3:
            continue
        values = np.array(list(signs.values()))
        majority = 1 if np.sum(values > 0) >= np.sum(values < 0) else -1
        if np.mean(values == majority) < settings.flip_majority:
            continue
        odd = {s for s, h in signs.items() if h != majority}
        n_same = int(np.sum(values == majority))
        for r, (c, mv, fx) in enumerate(zip(pairs["cohort"], pairs["moving"], pairs["fixed"])):
            for role, s in (("moving", mv), ("fixed", fx)):
                if c == cohort and s in odd:
                    verdicts[r].add("fail", f"suspected left-right flip: {role} {s}'s header is mirrored "
                                            f"(voxel-to-world determinant {'<' if majority > 0 else '>'} 0) "
                                            f"unlike {n_same} of {len(signs)} subjects of its cohort")
    pairs["qc"] = [v.qc for v in verdicts]
    pairs["qc_reason"] = [v.reason for v in verdicts]
    pairs.loc[~ok, "qc"] = "fail"
    pairs.loc[~ok & (pairs["qc_reason"] == ""), "qc_reason"] = "no result"
    return pairs
