"""The template route (``design: template``): the template's labels carried into each subject's own space,
and the subject's log-Jacobian map in template space.

Every subject of a template design is registered to the built template (rules/template.smk); its inverse
transforms carry the template's labels of each protocol (its inputs' weighted vote, tpl-{name}_cohort-*_dseg)
onto the subject's own input grid by ANTs' genericLabel rule, and the template's label probability (the
share of its inputs that voted for the winning label) by linear interpolation, as the subject's agreement.
The same volumes and accuracy files as the atlas route are written, with route ``template``, so that
volumes.tsv and labelling.tsv set the two routes side by side.

The log-Jacobian is that of the subject's registration as a map of template points into the subject,
x -> A(x + u(x)) (ANTs' forward list [warp, affine]): log det(A) + log det(I + du/dx), on the template's
grid, so each voxel is the log of the subject's local volume over the template's (> 0: larger). The affine
part (global size) is included; its share, log det(A), is in the map's JSON sidecar, for a study that
wants relative maps (subtract it) rather than covarying for head size. A voxel where the warp folds
(det <= 0) is NaN and counted in the sidecar.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..batches.items import Item
from ..errors import InputError
from ..evaluation.pair import warp_jacobian
from ..io import load_volume, nib_to_ants, save_atomic, write_text_atomic
from ..lazy_ants import import_ants
from ..paths import Layout
from ..transforms.files import read_affine_mat
from .plan import flat_outputs
from .run import write_subject_labels

log = logging.getLogger("cohortreg")


def read_transforms(manifest: str, who: str = "") -> dict[str, Any]:
    """A registration's transforms.json with its file lists as paths (relative ones are beside it)."""
    path = Path(manifest)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(who, manifest, f"unreadable transforms manifest ({exc})") from exc
    base = path.parent
    full = lambda p: str(p if Path(p).is_absolute() else base / p)  # noqa: E731
    return {"forward": [full(p) for p in doc["forward"]], "inverse": [full(p) for p in doc["inverse"]],
            "inverse_invert": list(doc["inverse_invert"]), "warp": full(doc["warp"]) if doc.get("warp") else None}


def log_jacobian(tx: dict[str, Any], template_brain: str, who: str = "") -> tuple[nib.Nifti1Image, dict[str, Any]]:
    """The log-Jacobian map of template -> subject on the template grid, and its sidecar (affine share, folding)."""
    forward = tx["forward"]
    if not forward or not forward[-1].endswith(".mat") or len(forward) > 2 or (len(forward) == 2 and not tx["warp"]):
        raise InputError(who, ",".join(forward), "a log-Jacobian needs the forward list [warp,] affine.mat")
    affine_logdet = float(np.log(abs(np.linalg.det(read_affine_mat(forward[-1])[:3, :3]))))
    if tx["warp"]:
        grid = nib.load(tx["warp"])
        det = warp_jacobian(tx["warp"])
    else:  # affine only: a constant map on the template's grid
        grid = nib.load(template_brain)
        det = np.ones(grid.shape[:3])
    folded = det <= 0
    logjac = np.full(det.shape, np.nan, dtype=np.float32)
    logjac[~folded] = (np.log(det[~folded]) + affine_logdet).astype(np.float32)
    img = nib.Nifti1Image(logjac, grid.affine)
    img.header.set_xyzt_units("mm")
    sidecar = {"Description": "log det of the Jacobian of the map template -> subject, affine included",
               "AffineLogJacobian": affine_logdet, "FoldedVoxels": int(folded.sum()),
               "Warp": tx["warp"] or "", "Affine": forward[-1]}
    return img, sidecar


def label_from_template(ids: dict[str, str], target: dict[str, str], manifest: str, template: dict[str, Any],
                        outputs: dict[str, Any], held_out: bool = True) -> dict[str, Any]:
    """ids: cohort, subject. target: t1 (the sheet's: the output grid), mask (preprocessed), and per protocol
    its manual labels where the subject has them (labels: {protocol: path}). manifest: the subject's
    registration to the template (transforms.json). template: brain (the template's), and per protocol its
    dseg and probseg (protocols: {protocol: {dseg, probseg}}). outputs: logjac (and its sidecar logjac_json),
    and per protocol (protocols) dseg, agreement, volumes, accuracy. held_out: the subject was not one of the
    template's inputs (its own labels did not vote on the template's)."""
    ants = import_ants()
    who = f"{ids['cohort']}/{ids['subject']}"
    tx = read_transforms(manifest, who)
    img, sidecar = log_jacobian(tx, template["brain"], who)
    save_atomic(img, outputs["logjac"])
    write_text_atomic(json.dumps(sidecar, indent=2) + "\n", outputs["logjac_json"])

    raw = load_volume(target["t1"], who, "T1")
    native = nib_to_ants(nib.Nifti1Image(np.zeros(raw.shape[:3], np.float32), raw.affine))
    scores = {}
    for protocol, files in template["protocols"].items():
        dseg = nib.load(files["dseg"])
        fused = ants.apply_transforms(native, nib_to_ants(dseg), tx["inverse"], whichtoinvert=tx["inverse_invert"],
                                      interpolator="genericLabel")
        prob = np.asarray(nib.load(files["probseg"]).dataobj, dtype=np.float32).max(axis=-1)  # scaled to [0, 1]
        agreement = ants.apply_transforms(native, nib_to_ants(nib.Nifti1Image(prob, dseg.affine)), tx["inverse"],
                                          whichtoinvert=tx["inverse_invert"], interpolator="linear")
        manual = target.get("labels", {}).get(protocol, "")
        scores[protocol] = write_subject_labels(
            {**ids, "protocol": protocol}, raw, np.rint(fused.numpy()).astype(np.int32),
            np.clip(agreement.numpy(), 0.0, 1.0), {**target, "labels": manual}, outputs["protocols"][protocol],
            "template", route="template", held_out=held_out)
    log.info("%s: template labels of %s; log-Jacobian (affine share %.3f, %d folded voxels); Dice %s", who,
             ", ".join(scores) or "no protocol", sidecar["AffineLogJacobian"], sidecar["FoldedVoxels"],
             ", ".join(f"{p} {d:.4f}" for p, d in scores.items() if d == d) or "n/a")
    return {"dice": scores, **sidecar}


def route_items(L: Layout, cohort: str, jobs: list[dict[str, Any]]) -> list[Item]:
    """batch_size > 1: one item per subject of a pair batch (jobs as rules/labelling_functions.smk's
    template_route_job gives them), kept while its stamp holds (its registration, the template's files and
    the sheet's, the template-route code) as every batch stage's items are (cohortreg.batches.items)."""
    items = []
    for j in jobs:
        ids, target = {"cohort": cohort, "subject": j["subject"]}, j["target"]
        template_files = [j["template"]["brain"]] + [f for p in j["template"]["protocols"].values() for f in p.values()]
        items.append(Item(
            f"template_route {cohort}/{j['subject']}", "template_route",
            (lambda ids=ids, j=j: label_from_template(ids, j["target"], j["manifest"], j["template"], j["outputs"],
                                                      j["held_out"])),
            list(flat_outputs(j["outputs"]).values()), L.template_route_witness().format(**ids),
            L.template_route_witness("benchmarks").format(**ids),
            {"held_out": j["held_out"], "protocols": sorted(j["template"]["protocols"])},
            inputs=[j["manifest"], target["t1"], target["mask"], *target["labels"].values()] + template_files,
            needs=[j["manifest"], target["mask"]]))
    return items
