"""The brain masks a person should look at: every subject whose input check did not pass, and the smallest
and largest masks of the study (a mask that cut the cerebellum or kept the neck shows at an end of the
volume range first). One picture each: the preprocessed T1 through the mask's centre, the mask's outline on top."""

from __future__ import annotations

import json
import os
from typing import Iterable

import nibabel as nib
import numpy as np

from ..paths import Layout
from .qc_picture import write_overlay

EXTREMES = 4   # the smallest and the largest masks, this many each
LIMIT = 24     # flagged subjects pictured at most (a 20,000-subject study may flag hundreds; the log lists them)


def mask_gallery(subjects: Iterable[tuple[str, str]], L: Layout, directory: str, extremes: int = EXTREMES,
                 limit: int = LIMIT) -> list[str]:
    """Write flagged-*, smallest-* and largest-* pictures (named by cohort and subject) under directory."""
    os.makedirs(directory, exist_ok=True)
    rows = []
    for c, s in subjects:
        try:
            q = json.loads(open(L.subject_qc.format(cohort=c, subject=s)).read())
        except (OSError, ValueError):
            continue  # a subject that failed before its check: the tables say why
        rows.append((c, s, float(q.get("brain_ml", float("nan"))), str(q.get("qc", "pass")), str(q.get("qc_reason", ""))))
    flagged = [r for r in rows if r[3] != "pass"][:limit]
    ok = sorted((r for r in rows if r[3] == "pass" and np.isfinite(r[2])), key=lambda r: r[2])
    picked = [("flagged", r) for r in flagged] + [("smallest", r) for r in ok[:extremes]]
    picked += [("largest", r) for r in ok[max(extremes, len(ok) - extremes):][::-1]]
    written = []
    for i, (kind, (c, s, ml, qc, reason)) in enumerate(picked):
        t1 = np.asarray(nib.load(L.preproc_t1.format(cohort=c, subject=s)).dataobj, dtype=np.float32)
        mask = np.asarray(nib.load(L.brain_mask.format(cohort=c, subject=s)).dataobj) > 0
        title = f"{c}/{s}: brain mask {ml:.0f} mL" + (f" ({qc}: {reason})" if kind == "flagged" else "")
        path = os.path.join(directory, f"{kind}-{i:02d}_{c}_{s}.png")
        write_overlay(path, t1, t1, mask.astype(np.int32), mask, title=title[:120])
        written.append(path)
    return written
