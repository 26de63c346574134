"""One subject labelled from one protocol's atlases, files to files: what a labelling job runs.

Each atlas is registered to the subject (the study's affine, then the labelling method, all K through
the method's ``register_many``: a GPU engine stacks them), its manual labels are carried through those
transforms straight onto the subject's own input grid (the sheet's T1, by ANTs' genericLabel rule: the
transforms map physical points, and preprocessing keeps them), and the K maps are fused there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..errors import InputError
from ..io import check_same_grid, labels_as_int, load_volume, nib_to_ants, save_atomic, write_text_atomic
from ..lazy_ants import import_ants
from ..registration.pairs import register_pairs
from ..subject.stages import affine_files
from ..transforms.label_warp import warp_labels
from .fusion import jlf_mask, joint_label_fusion, local_weights, vote
from .volumes import ACCURACY_COLUMNS, VOLUME_COLUMNS, accuracy, region_volumes, voxel_ml

log = logging.getLogger("cohortreg")


def _similarity(fixed: Any, moving: Any, mat: str, mask: np.ndarray) -> float:
    """Normalised cross-correlation inside the subject's brain after the affine: how alike two brains are."""
    ants = import_ants()
    a = fixed.numpy()[mask]
    b = ants.apply_transforms(fixed, moving, [mat], interpolator="linear").numpy()[mask]
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-12))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    return "\t".join(columns) + "\n" + "".join("\t".join(fmt(r.get(c, "")) for c in columns) + "\n" for r in rows)


def register_atlases(target: dict[str, str], atlases: list[dict[str, str]], k: int, method: str,
                     method_params: dict[str, Any], affine: dict[str, Any], workdir: str, threads: int = 1,
                     who: str = "") -> list[tuple[dict[str, str], list[str]]]:
    """Each atlas registered to the subject (its brain to the subject's): the study's affine, then the method,
    all through one register_pairs call. With more candidates than k, the k most alike after the affine.
    Returns (atlas, its forward transforms) for the k atlases used."""
    if len(atlases) < k:
        raise InputError(who, target["brain"], f"{len(atlases)} atlases for atlases: {k}")
    work = Path(workdir)
    mats = {}
    for a in atlases:  # the study's affine, atlas -> subject
        mat = work / f"from-{a['subject']}" / "init_affine.mat"
        mat.parent.mkdir(parents=True, exist_ok=True)
        affine_files(target["brain"], a["brain"], affine, str(mat))
        mats[a["subject"]] = str(mat)
    if len(atlases) > k:  # select: similarity: the K most alike after the affine
        fixed = nib_to_ants(nib.load(target["brain"]))
        inside = np.asarray(nib.load(target["mask"]).dataobj) > 0
        score = {a["subject"]: _similarity(fixed, nib_to_ants(nib.load(a["brain"])), mats[a["subject"]], inside)
                 for a in atlases}
        atlases = sorted(atlases, key=lambda a: -score[a["subject"]])[:k]
        log.info("atlases by similarity: %s", ", ".join(f"{a['subject']} {score[a['subject']]:.3f}" for a in atlases))
    jobs = []
    for a in atlases:
        d = work / f"from-{a['subject']}"
        jobs.append((target["brain"], a["brain"], "", mats[a["subject"]], str(d / "transforms.json"),
                     str(d / "warped_T1w.nii.gz"), ""))
    register_pairs(method, method_params, jobs, threads)
    out = []
    for a, job in zip(atlases, jobs):
        doc = json.loads(Path(job[4]).read_text())
        out.append((a, [str(Path(job[4]).parent / p) for p in doc["forward"]]))
    return out


def carry_and_fuse(target: dict[str, str], registered: list[tuple[dict[str, str], list[str]]], settings: dict[str, Any],
                   who: str = "") -> tuple[nib.Nifti1Image, np.ndarray, np.ndarray, list[np.ndarray]]:
    """The atlases' labels carried onto the subject's own input grid and fused there: (the sheet's T1 image,
    fused labels, agreement, each atlas's carried labels)."""
    ants = import_ants()
    raw = load_volume(target["t1"], who, "T1")  # the output grid: the subject's own scan
    native = nib_to_ants(nib.Nifti1Image(np.zeros(raw.shape[:3], np.float32), raw.affine))
    warped_labels, warped_images = [], []
    for a, forward in registered:
        lab_img = labels_as_int(load_volume(a["labels"], a["subject"], "label map"), a["subject"], a["labels"])
        warped_labels.append(warp_labels(native, nib_to_ants(lab_img), forward))
        if settings["fusion"] != "majority":
            warped_images.append(ants.apply_transforms(native, nib_to_ants(nib.load(a["brain"])), forward,
                                                       interpolator="linear"))
    labels = [np.rint(w.numpy()).astype(np.int32) for w in warped_labels]
    if settings["fusion"] == "majority":
        fused, agreement = vote(labels)
    else:
        subject_img = ants.resample_image_to_target(nib_to_ants(nib.load(target["brain"])), native, interp_type="linear")
        if settings["fusion"] == "weighted":
            sigma = float(settings.get("sigma_mm", 2.0)) / float(np.mean(native.spacing))
            fused, agreement = vote(labels, local_weights(subject_img.numpy(), [w.numpy() for w in warped_images], sigma))
        else:
            mask = native.new_image_like(jlf_mask(labels).astype(np.float32))
            fused, agreement = joint_label_fusion(subject_img, mask, warped_images, warped_labels,
                                                  settings.get("jlf") or {})
    return raw, fused, agreement, labels


def label_subject(ids: dict[str, str], target: dict[str, str], atlases: list[dict[str, str]], settings: dict[str, Any],
                  method: str, method_params: dict[str, Any], affine: dict[str, Any], workdir: str,
                  outputs: dict[str, str], threads: int = 1) -> dict[str, Any]:
    """ids: cohort, subject, protocol. target: t1 (the sheet's, its grid is the output's), brain and mask
    (preprocessed), labels (the sheet's, '' unless the subject is an atlas of this protocol). atlases:
    subject, brain (preprocessed) and labels (the sheet's) each. outputs: dseg, agreement, volumes, accuracy."""
    who = f"{ids['cohort']}/{ids['subject']}"
    registered = register_atlases(target, atlases, int(settings["atlases"]), method, method_params, affine, workdir,
                                  threads, who)
    raw, fused, agreement, _ = carry_and_fuse(target, registered, settings, who)
    used = ",".join(a["subject"] for a, _ in registered)
    dice = write_subject_labels(ids, raw, fused, agreement, target, outputs, used)
    log.info("%s atlas-%s: from %s (%s); leave-one-out mean Dice %s", who, ids["protocol"], used, settings["fusion"],
             f"{dice:.4f}" if dice == dice else "n/a")
    return {"atlases": used, "dice_mean": dice}


def write_subject_labels(ids: dict[str, str], raw: nib.Nifti1Image, fused: np.ndarray, agreement: np.ndarray,
                         target: dict[str, str], outputs: dict[str, str], source: str, route: str = "atlases",
                         held_out: bool = True) -> float:
    """A subject's label map and agreement on its own grid (raw: the sheet's T1), its regional volumes, and,
    where it has manual labels of this protocol (target["labels"]), their accuracy. Both routes (atlases,
    template) write the same files. Returns the mean Dice against its manual labels (nan without them)."""
    who = f"{ids['cohort']}/{ids['subject']}"
    for data, dtype, path in ((fused, np.int32, outputs["dseg"]), (agreement, np.float32, outputs["agreement"])):
        header = raw.header.copy()  # the sheet T1's header: its grid, orientation and units
        header.set_data_dtype(dtype)
        save_atomic(nib.Nifti1Image(data.astype(dtype), raw.affine, header), path)

    voxel = voxel_ml(raw.header.get_zooms())
    mask_img = nib.load(target["mask"])
    brain_ml = float((np.asarray(mask_img.dataobj) > 0).sum()) * voxel_ml(mask_img.header.get_zooms())
    base = {**ids, "atlases": source, "status": "ok", "error": "", "route": route}
    regions = region_volumes(fused, voxel, agreement)
    rows = [{**base, "label": label, "volume_ml": v, "agreement": agr} for label, (v, agr) in sorted(regions.items())]
    rows.append({**base, "label": "labelled", "volume_ml": sum(v for v, _ in regions.values()),
                 "agreement": float(agreement[fused > 0].mean()) if (fused > 0).any() else float("nan")})
    rows.append({**base, "label": "brain_mask", "volume_ml": brain_ml, "agreement": float("nan")})
    write_text_atomic(_table(rows, VOLUME_COLUMNS), outputs["volumes"])

    acc: list[dict[str, Any]] = []
    if target.get("labels"):  # manual labels of this protocol: how right the propagated ones are
        manual = labels_as_int(load_volume(target["labels"], who, "label map"), who, target["labels"])
        check_same_grid(raw, manual, who, target["labels"], "label map")
        acc = [{**ids, **r, "route": route, "held_out": held_out}
               for r in accuracy(fused, np.asarray(manual.dataobj), voxel)]
    write_text_atomic(_table(acc, ACCURACY_COLUMNS), outputs["accuracy"])
    return float(np.mean([r["dice"] for r in acc])) if acc else float("nan")
