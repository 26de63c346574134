"""MI(intensity; labels): how much of a cohort's label map its intensities carry (metrics/mi.tsv).

Jena et al. (NeurIPS 2024) find that the label supervision of learned methods pays where the
labels hold information the intensities do not: a low MI(i;s). Estimator: the plug-in
(maximum-likelihood) mutual information of the joint histogram of the preprocessed T1 and the
label map, over the voxels of the brain mask (label 0 inside the mask is a class of its own, the
unlabelled rest of the brain), intensities in ``bins`` equal-width bins between their minimum and
maximum inside the mask (the preprocessing already clipped them to its percentiles), in bits.
An image that is a function of its labels then gives the labels' entropy; independent noise about 0
(the plug-in estimate's upward bias is about (bins - 1)(labels - 1) / (2 N ln 2) bits).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

MI_COLUMNS = ["cohort", "subject", "mi_bits", "label_entropy_bits", "intensity_entropy_bits", "mi_fraction",
              "n_voxels", "n_labels", "bins", "status", "error"]


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def mutual_information(intensity: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None,
                       bins: int = 64) -> dict[str, float]:
    """MI in bits with both marginal entropies; ``mi_fraction`` = MI / H(labels)."""
    sel = np.asarray(mask) > 0 if mask is not None else np.ones(np.shape(intensity), bool)
    x = np.asarray(intensity, dtype=np.float64)[sel]
    s = np.asarray(labels).astype(np.int64)[sel]
    if x.size == 0:
        raise ValueError("empty mask: no voxels to estimate MI on")
    lo, hi = float(x.min()), float(x.max())
    xb = np.zeros(x.shape, np.int64) if hi <= lo else np.minimum(((x - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
    _, s_idx = np.unique(s, return_inverse=True)
    n_lab = int(s_idx.max()) + 1
    joint = np.bincount(xb * n_lab + s_idx.ravel(), minlength=bins * n_lab).reshape(bins, n_lab).astype(np.float64)
    h_x, h_s, h_xs = _entropy(joint.sum(1)), _entropy(joint.sum(0)), _entropy(joint.ravel())
    mi = max(h_x + h_s - h_xs, 0.0)
    return {"mi_bits": mi, "label_entropy_bits": h_s, "intensity_entropy_bits": h_x,
            "mi_fraction": mi / h_s if h_s > 0 else float("nan"), "n_voxels": int(x.size), "n_labels": n_lab,
            "bins": bins}


def subject_mi(t1: str, labels: str, mask: str, bins: int = 64) -> dict[str, float]:
    """MI of one subject's preprocessed files (same grid: the preprocessing writes them so)."""
    import nibabel as nib

    img = np.asarray(nib.load(t1).dataobj)
    lab = np.asarray(nib.load(labels).dataobj)
    msk = np.asarray(nib.load(mask).dataobj)
    if img.shape != lab.shape or img.shape != msk.shape:
        raise ValueError(f"grids differ: T1 {img.shape}, labels {lab.shape}, mask {msk.shape}")
    return mutual_information(img, lab, msk, bins)


def mi_table(subjects: Iterable[tuple[str, str, str, str, str]], bins: int = 64) -> pd.DataFrame:
    """mi.tsv from (cohort, subject, t1, labels, mask); a subject whose files fail gets its error, not a gap."""
    rows = []
    for cohort, subject, t1, labels, mask in subjects:
        try:
            rows.append({"cohort": cohort, "subject": subject, **subject_mi(t1, labels, mask, bins), "status": "ok",
                         "error": ""})
        except Exception as exc:  # noqa: BLE001 - the table names the subject and the reason
            rows.append({"cohort": cohort, "subject": subject, "bins": bins, "status": "failed",
                         "error": f"{type(exc).__name__}: {exc}"})
    return pd.DataFrame(rows).reindex(columns=MI_COLUMNS)


def _correlate(x: pd.Series, y: pd.Series) -> dict[str, float]:
    from scipy import stats

    rec = {"n": len(x), "pearson_r": np.nan, "pearson_p": np.nan, "spearman_rho": np.nan, "spearman_p": np.nan}
    if len(x) >= 3 and x.nunique() > 1 and y.nunique() > 1:
        pr, sr = stats.pearsonr(x, y), stats.spearmanr(x, y)
        rec.update(pearson_r=float(pr.statistic), pearson_p=float(pr.pvalue), spearman_rho=float(sr.statistic),
                   spearman_p=float(sr.pvalue))
    return rec


def pairs_with_mi(mi: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The finished pairs with a Dice, each with its moving subject's MI (``mi_bits``)."""
    ok = pairs[(pairs["status"] == "ok") & pairs["dice_mean"].notna()]
    m = mi[mi["status"] == "ok"][["cohort", "subject", "mi_bits"]]
    return ok.merge(m, left_on=["cohort", "moving"], right_on=["cohort", "subject"])


MI_DICE_COLUMNS = ["level", "cohort", "method", "n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p"]


def mi_dice(mi: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The paper's first figure as numbers, per method: each pair's Dice against its moving subject's
    MI within each cohort (level ``within``), over all subjects pooled (level ``pooled``), and of the
    cohorts' means (level ``cohort``, from three cohorts on). Pooled over cohorts that differ in MI
    and in Dice, the correlation is mostly the difference between cohorts (two cohorts: two clusters
    give |r| near 1 whatever happens inside them); ``within`` is the subject-level evidence."""
    per_pair = pairs_with_mi(mi, pairs)
    rows = []
    for method, grp in per_pair.groupby("method", sort=False):
        for cohort, cg in grp.groupby("cohort", sort=False):
            rows.append({"level": "within", "cohort": cohort, "method": method, **_correlate(cg["mi_bits"], cg["dice_mean"])})
        rows.append({"level": "pooled", "cohort": "", "method": method, **_correlate(grp["mi_bits"], grp["dice_mean"])})
        means = grp.groupby("cohort").agg(mi_bits=("mi_bits", "mean"), dice_mean=("dice_mean", "mean"))
        rows.append({"level": "cohort", "cohort": "", "method": method, **_correlate(means["mi_bits"], means["dice_mean"])})
    return pd.DataFrame(rows, columns=MI_DICE_COLUMNS)
