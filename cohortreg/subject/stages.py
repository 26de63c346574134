"""Each per-subject stage from files to files, as one call: what a per-subject job and a batch job run.

register and metrics per pair live in ``cohortreg.registration.pairs`` and ``cohortreg.evaluation.pair``; the scripts and ``cohortreg.batches.items``
both call these, so a batched run computes exactly what a per-subject run computes.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..errors import InputError
from ..io import load_volume, nib_to_ants, save_atomic, write_text_atomic


def preprocess_files(subject: str, t1: str, labels: str, settings: dict[str, Any], out_t1: str, out_labels: str,
                     out_json: str) -> None:
    """out_json: the raw scan's stats (QC reads them after skull stripping)."""
    from .preprocess import PreprocessSettings, preprocess_subject

    out = preprocess_subject(subject, t1, labels, settings=PreprocessSettings(**settings))
    save_atomic(out.t1, out_t1)
    save_atomic(out.labels, out_labels)
    write_text_atomic(json.dumps({"source": t1, **out.raw}, indent=1) + "\n", out_json)


def skullstrip_files(subject: str, t1: str, settings: dict[str, Any], raw_t1: str, mask: str, out_brain: str,
                     out_mask: str, percentiles: tuple[float, float], raw_json: str, qc: dict[str, Any],
                     out_qc: str) -> dict[str, Any]:
    """settings: config['skullstrip'] (its 'method' and the atlas settings); raw_t1, mask: the sheet's;
    percentiles: config['preprocess']'s, for the brain's intensity scaling; raw_json: preprocessing's
    stats of the raw scan; qc: config['qc']. Writes the subject's input verdict to out_qc, and with
    qc.on_fail 'error' refuses a subject whose input fails it."""
    from ..evaluation.qc import qc_settings, subject_qc
    from .skullstrip import AtlasSettings, extract_brain, provided_mask

    img = nib.load(t1)
    s = dict(settings)
    method = s.pop("method")
    given = provided_mask(subject, img, raw_t1, mask) if method == "provided" else None
    settings_qc = qc_settings(qc)
    evidence: dict[str, Any] = {}
    brain, m = extract_brain(subject, img, method, given, AtlasSettings(**s), mask, tuple(percentiles), raw_t1,
                             settings_qc.brain_ml[1], evidence)
    if method == "none":  # a head given as a brain: say so (QC fails it below)
        from .skullstrip import judge_raw

        evidence.update(judge_raw(load_volume(raw_t1, subject, "T1"), settings_qc.brain_ml[1]))
    if "decision" in evidence:
        logging.getLogger("cohortreg").info("%s: skull strip %s (%s)", subject, evidence["decision"], ", ".join(
            f"{k} {v}" for k, v in evidence.items() if k not in ("decision", "method")))
    voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000.0
    raw_stats = {**json.loads(Path(raw_json).read_text()), "skullstrip": evidence}
    verdict = subject_qc(raw_stats, np.asanyarray(m.dataobj), voxel_ml, settings_qc)
    level = logging.WARNING if verdict["qc"] != "pass" else logging.INFO
    logging.getLogger("cohortreg").log(level, "%s: input QC %s%s", subject, verdict["qc"],
                                       f" ({verdict['qc_reason']})" if verdict["qc_reason"] else "")
    if verdict["qc"] == "fail" and settings_qc.on_fail == "error":
        raise InputError(subject, raw_t1, f"input QC failed: {verdict['qc_reason']} (qc.on_fail: error)")
    save_atomic(brain, out_brain)
    save_atomic(m, out_mask)
    write_text_atomic(json.dumps(verdict, indent=1) + "\n", out_qc)
    return verdict


def affine_files(fixed: str, moving: str, settings: dict[str, Any], out_mat: str) -> None:
    """settings: config['affine']; its engine (torch, the default, or ants) estimates the .mat."""
    s = dict(settings)
    engine, torch_settings = s.pop("engine", "torch"), s.pop("torch", {})  # config.yaml's default
    f, m = nib_to_ants(nib.load(fixed)), nib_to_ants(nib.load(moving))
    if engine == "torch":
        from ..registration.affine import estimate_affine_torch

        estimate_affine_torch(f, m, Path(out_mat), torch_settings)
        return
    from ..registration import AffineSettings, estimate_affine

    estimate_affine(f, m, Path(out_mat), AffineSettings(**s))
