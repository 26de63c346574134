"""One picture per flagged labelling (the report's "Regional volumes"): a person looks at the labels before
trusting or excluding a subject's volumes.

Three orthogonal slices of the subject's preprocessed T1 (the working grid) through the centre of its label map
(carried to that grid by nearest neighbour: a picture, not a measurement), the labels' contours on top, and a title naming the subject, protocol, route and why it was flagged (cohortreg.labelling.tables:
flag_outliers). The most extreme first, at most ``limit``: a 20,000-subject study flags hundreds.
"""

from __future__ import annotations

import os
import re
import nibabel as nib
import numpy as np
import pandas as pd

from ..evaluation.qc_picture import write_overlay
from ..paths import Layout
from .plan import subject_outputs, template_route_outputs

LIMIT = 24


def on_grid(labels: nib.Nifti1Image, grid: nib.Nifti1Image) -> np.ndarray:
    """A label map on another image's grid (nearest neighbour)."""
    from ..io import nib_to_ants
    from ..lazy_ants import import_ants

    ants = import_ants()
    moved = ants.resample_image_to_target(nib_to_ants(nib.Nifti1Image(np.asarray(labels.dataobj, np.float32),
                                                                      labels.affine)), nib_to_ants(grid),
                                          interp_type="nearestNeighbor")
    return np.rint(moved.numpy()).astype(np.int32)


def _extremity(reason: str) -> float:
    """|z| of a "volume robust z +4.2" reason; agreement flags after every volume outlier."""
    m = re.search(r"robust z ([-+0-9.]+)", reason)
    return abs(float(m.group(1))) if m else 0.0


def flagged_pictures(volumes: pd.DataFrame, L: Layout, template: str, directory: str, limit: int = LIMIT) -> list[str]:
    """Write {cohort}.{subject}.{protocol}.{route}.png under directory for the flagged labellings that finished
    (volumes: volumes.tsv's table); returns the pictures' paths."""
    os.makedirs(directory, exist_ok=True)
    flagged = volumes[(volumes["qc"] != "ok") & (volumes["status"] == "ok")].copy()
    flagged["extremity"] = flagged["qc_reason"].astype(str).map(_extremity)
    worst = (flagged.sort_values("extremity", ascending=False)
             .drop_duplicates(["cohort", "subject", "protocol", "route"]).head(limit))
    written = []
    for r in worst.itertuples():
        if r.route == "template":
            dseg = template_route_outputs(L, r.cohort, r.subject, [r.protocol], template)["protocols"][r.protocol]["dseg"]
        else:
            dseg = subject_outputs(L, r.cohort, r.subject, r.protocol)["dseg"]
        if not os.path.exists(dseg):
            continue
        t1_img = nib.load(L.preproc_t1.format(cohort=r.cohort, subject=r.subject))
        t1 = np.asarray(t1_img.dataobj, dtype=np.float32)
        labels = on_grid(nib.load(dseg), t1_img)
        title = f"{r.cohort}/{r.subject} atlas-{r.protocol} ({r.route}): label {r.label} {r.qc_reason}"
        path = os.path.join(directory, f"{r.cohort}.{r.subject}.{r.protocol}.{r.route}.png")
        write_overlay(path, t1, t1, labels, labels > 0, title=title, scale=1)
        written.append(path)
    return written
