"""A training set packed into one file: exactly what training reads, to train where the data are not.

A GPU machine lent for minutes has no copy of the scans and reaches no network. ``pack`` writes a cohort's
training and validation subjects as training holds them in memory (each on its cohort's training reference
grid through its affine, cut to the brains' box as ``crop_to_brains`` cuts them, labels included) into one
compressed ``.npz``; ``train_from_packed`` trains from it as ``train_from_files`` trains from the workflow's
files. Images are stored as float32 and labels as the smallest integer type that holds them, so both routes
give the same tensors and, on CPU, the same model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import Subject, all_pairs, crop_to_brains, load_subjects, validation_pairs

FORMAT = "cohortreg-packed-training/1"


def _label_dtype(labels: np.ndarray) -> np.dtype:
    hi, lo = int(labels.max(initial=0)), int(labels.min(initial=0))
    for dtype in (np.uint8, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def pack(train: list[Subject], val: list[Subject], path: str | Path, describe: dict[str, Any] | None = None) -> Path:
    """Write the (cropped) training and validation subjects to path (.npz); describe: recorded beside them."""
    arrays: dict[str, np.ndarray] = {}
    index = []
    for role, subjects in (("train", train), ("val", val)):
        for i, x in enumerate(subjects):
            key = f"{role}{i:04d}"
            arrays[f"{key}_image"] = x.image[0, 0].numpy().astype(np.float32)
            arrays[f"{key}_labels"] = x.labels.astype(_label_dtype(x.labels))
            index.append({"key": key, "role": role, "cohort": x.cohort, "name": x.name, "spacing": x.spacing})
    meta = {"format": FORMAT, "subjects": index, **(describe or {})}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def unpack(path: str | Path) -> tuple[list[Subject], list[Subject], dict[str, Any]]:
    """(training subjects, validation subjects, the description) of a packed file, as training holds them."""
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a packed training set ({meta.get('format')!r}, expected {FORMAT})")
        out: dict[str, list[Subject]] = {"train": [], "val": []}
        for s in meta["subjects"]:
            image = torch.from_numpy(np.ascontiguousarray(z[f"{s['key']}_image"], dtype=np.float32))[None, None]
            labels = np.asarray(z[f"{s['key']}_labels"]).astype(np.int64)
            out[s["role"]].append(Subject(s["cohort"], s["name"], image, labels, float(s["spacing"])))
    return out["train"], out["val"], meta


def pack_from_files(pairs: list[dict[str, str]], val: list[dict[str, str]], crop_margin_mm: float, path: str | Path,
                    describe: dict[str, Any] | None = None) -> Path:
    """From the rows a training job gets (cohortreg.learn.plan.subject_row), what it would train on."""
    full = load_subjects(pairs, references=True), load_subjects(val, references=False)
    train, val_subjects = crop_to_brains(*full, margin_mm=crop_margin_mm)
    return pack(train, val_subjects, path, {"crop_margin_mm": crop_margin_mm, **(describe or {})})


def train_from_packed(settings: dict[str, Any], packed: list[str | Path], out_dir: str,
                      describe: dict[str, Any]) -> dict[str, Any]:
    """Train on one or more packed files (their cohorts together), as train_from_files does on the files."""
    from .train import TrainSettings, train

    s = TrainSettings.from_params(settings)
    train_subjects: list[Subject] = []
    val_subjects: list[Subject] = []
    for p in packed:
        tr, va, meta = unpack(p)
        if float(meta.get("crop_margin_mm", s.crop_margin_mm)) != float(s.crop_margin_mm):
            raise ValueError(f"{p}: packed with crop_margin_mm {meta.get('crop_margin_mm')}, training asks for "
                             f"{s.crop_margin_mm}: pack it again")
        train_subjects += tr
        val_subjects += va
    return train(s, all_pairs(train_subjects), validation_pairs(val_subjects, train_subjects), out_dir,
                 {**describe, "packed": [str(p) for p in packed]})
