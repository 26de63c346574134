"""Each per-subject stage from files to files, as one call: what a per-subject job and a batch job run.

register and metrics per pair live in ``cohortreg.pair``; the scripts and ``cohortreg.batches``
both call these, so a batched run computes exactly what a per-subject run computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib

from .io import nib_to_ants, save_atomic


def preprocess_files(subject: str, t1: str, labels: str, settings: dict[str, Any], out_t1: str, out_labels: str) -> None:
    from .preprocess import PreprocessSettings, preprocess_subject

    out = preprocess_subject(subject, t1, labels, settings=PreprocessSettings(**settings))
    save_atomic(out.t1, out_t1)
    save_atomic(out.labels, out_labels)


def skullstrip_files(subject: str, t1: str, settings: dict[str, Any], raw_t1: str, mask: str, out_brain: str,
                     out_mask: str) -> None:
    """settings: config['skullstrip'] (its 'method' and the atlas settings); raw_t1, mask: the sheet's."""
    from .skullstrip import AtlasSettings, extract_brain, provided_mask

    img = nib.load(t1)
    s = dict(settings)
    method = s.pop("method")
    given = provided_mask(subject, img, raw_t1, mask) if method == "provided" else None
    brain, m = extract_brain(subject, img, method, given, AtlasSettings(**s), mask)
    save_atomic(brain, out_brain)
    save_atomic(m, out_mask)


def affine_files(fixed: str, moving: str, settings: dict[str, Any], out_mat: str) -> None:
    from .registration import AffineSettings, estimate_affine

    estimate_affine(nib_to_ants(nib.load(fixed)), nib_to_ants(nib.load(moving)), Path(out_mat),
                    AffineSettings(**settings))
