"""One registration pair evaluated from files: what a metrics job (and a metrics batch item) runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..errors import InputError
from ..io import RAS_TO_LPS, write_text_atomic
from .metrics import LABEL_HEADER, jacobian_determinant, jacobian_stats, summarise_pair

def warp_jacobian(warp_path: str) -> np.ndarray:
    """Jacobian determinant of an ANTs displacement field file (vectors in LPS mm)."""
    img = nib.load(warp_path)
    disp = np.asarray(img.dataobj, dtype=np.float32).reshape(img.shape[:3] + (3,))
    grid_to_physical = RAS_TO_LPS @ img.affine[:3, :3]
    return jacobian_determinant(disp, grid_to_physical)


def model_label(tx: dict[str, Any]) -> str:
    """A learned method's model and what trained it, for pairs.tsv: 'vxm_oasis (oasis)'; '' otherwise."""
    extra = tx.get("extra", {})
    if not extra.get("model"):
        return ""
    path = Path(extra["model"])
    name = path.parent.name if path.name == "model.pt" else path.name
    return f"{name} ({','.join(extra.get('train_cohorts') or []) or 'unknown cohorts'})"


def evaluate_pair(fixed_labels: str, moving_labels: str, warped_labels: str, fixed_mask: str, manifest: str,
                  out_json: str, out_labels: str, ids: dict[str, str], fixed_brain: str, warped: str,
                  subject_qc: tuple[str, str], qc: dict[str, Any] | None = None,
                  picture: str | None = None) -> dict[str, Any]:
    """Dice/HD95 over labels present in both subjects; folding and sdlogj inside the fixed brain mask;
    the label-free QC of the pair (cohortreg.evaluation.qc): LNCC of the warped image to the fixed brain, the
    warp's folding, and the verdicts of both subjects' inputs (subject_qc: moving's, fixed's file);
    and, given a ``picture`` path, the pair's overlay PNG (cohortreg.evaluation.qc_picture)."""
    from .qc import lncc, pair_qc, qc_settings

    fl_img = nib.load(fixed_labels)
    fl = np.asarray(fl_img.dataobj).astype(np.int64)
    wl = np.asarray(nib.load(warped_labels).dataobj).astype(np.int64)
    ml_values = np.unique(np.asarray(nib.load(moving_labels).dataobj).astype(np.int64))
    spacing = tuple(float(s) for s in fl_img.header.get_zooms()[:3])
    summary, rows = summarise_pair(fl, wl, ml_values, spacing)
    tx = json.loads(Path(manifest).read_text())
    folding, sdlogj = 0.0, 0.0
    mask = np.asarray(nib.load(fixed_mask).dataobj)
    if tx.get("warp"):
        det = warp_jacobian(str(Path(manifest).parent / tx["warp"]))
        folding, sdlogj = jacobian_stats(det, mask)
    fixed_data, warped_data = np.asarray(nib.load(fixed_brain).dataobj), np.asarray(nib.load(warped).dataobj)
    similarity = lncc(fixed_data, warped_data, mask)
    inputs = [json.loads(Path(p).read_text()) for p in subject_qc]
    settings = qc_settings(qc)
    verdict, reason = pair_qc(zip(("moving", "fixed"), inputs), folding, settings)
    if verdict == "fail" and settings.on_fail == "error":  # the pair's row then says failed, with this reason
        raise InputError(ids.get("moving"), warped, f"QC failed for {ids.get('moving')} -> {ids.get('fixed')} "
                         f"[{ids.get('method')}]: {reason} (qc.on_fail: error)")
    record = {**ids, **summary, "folding_frac": folding, "sdlogj": sdlogj, "lncc": similarity,
              "register_seconds": tx.get("extra", {}).get("register_seconds", float("nan")),
              "qc": verdict, "qc_reason": reason, "version": tx.get("version", ""), "model": model_label(tx),
              "moving_handedness": inputs[0].get("handedness", 0), "fixed_handedness": inputs[1].get("handedness", 0)}
    if picture:
        from .qc_picture import write_overlay

        write_overlay(picture, fixed_data, warped_data, wl, mask,  # the arrays read above, not a second read
                      f"{ids.get('cohort')} {ids.get('moving')} -> {ids.get('fixed')} [{ids.get('method')}] "
                      f"Dice {summary['dice_mean']:.3f} folding {folding:.1e} QC {verdict}")
    write_text_atomic(json.dumps(record, indent=2) + "\n", out_json)
    header = LABEL_HEADER + "\n"
    body = "".join(f"{r['label']}\t{r['dice']:.6f}\t{r['hd95']:.4f}\t{r['fixed_voxels']}\t{r['warped_voxels']}\n" for r in rows)
    write_text_atomic(header + body, out_labels)
    return record
