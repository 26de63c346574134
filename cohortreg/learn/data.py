"""Training data: every ordered pair of a cohort's training subjects, on one grid, with labels.

The workflow computes one affine per subject, to its cohort's training reference (rules/learn.smk).
Each subject is loaded once onto that reference's grid through its affine (ANTs resamples the brain
and its labels), and any two of them make a pair: N subjects give N(N-1) pairs from N-1 affines.
A network trained on pairs to the reference alone learns that one fixed image (a model so trained
scored validation Dice 0.739 on a pair to its reference and 0.639 on the test pairs, whose fixed
image it had never seen: bench/results/learned_2mm_lpba_20min.json). At 2 mm a subject is a few
MB, so a cohort's training set fits in memory; pairs share their subjects' tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
import torch

from ..io import nib_to_ants
from ..lazy_ants import import_ants


@dataclass
class Pair:
    name: str
    fixed: torch.Tensor          # [1, 1, D, H, W] brain, intensities in [0, 1]
    moving: torch.Tensor         # on the fixed grid
    fixed_labels: np.ndarray     # [D, H, W] int
    moving_labels: np.ndarray    # on the fixed grid (nearest label)


@dataclass
class Subject:
    cohort: str
    name: str
    image: torch.Tensor          # [1, 1, D, H, W] on the cohort's training reference grid
    labels: np.ndarray           # [D, H, W] int, on that grid
    spacing: float = 0.0         # mm, the grid's finest (0: unknown)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]


def load_subject(cohort: str, name: str, brain: str, labels: str, reference: Any, affine: str | None) -> Subject:
    """A subject on the reference's grid (an ANTs image) through its affine to it; with ``affine`` None
    the subject is the reference itself, whose image is not read again."""
    spacing = float(min(reference.spacing))
    if affine is None:
        return Subject(cohort, name, _tensor(reference.numpy()), np.asarray(nib.load(labels).dataobj).astype(np.int64),
                       spacing)
    ants = import_ants()
    m = ants.apply_transforms(reference, nib_to_ants(nib.load(brain)), [affine], interpolator="linear")
    ml = ants.apply_transforms(reference, nib_to_ants(nib.load(labels)), [affine], interpolator="genericLabel")
    return Subject(cohort, name, _tensor(m.numpy()), np.rint(ml.numpy()).astype(np.int64), spacing)


def load_subjects(rows: list[dict[str, Any]], references: bool) -> list[Subject]:
    """The rows' subjects (cohortreg.learn.plan.subject_row), and with ``references`` each cohort's reference once, first.
    Each reference image is read once."""
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        first.setdefault(r["cohort"], r)
    ref = {c: nib_to_ants(nib.load(r["fixed"])) for c, r in first.items()}
    out = [load_subject(c, r["reference"], r["fixed"], r["fixed_labels"], ref[c], None)
           for c, r in first.items()] if references else []
    return out + [load_subject(r["cohort"], r["subject"], r["moving"], r["moving_labels"], ref[r["cohort"]], r["affine"])
                  for r in rows]


def crop_to_brains(train: list[Subject], val: list[Subject], margin_mm: float) -> tuple[list[Subject], list[Subject]]:
    """Each cohort's subjects cut to the union of their brains plus ``margin_mm``, the box the learned
    methods run the network on (registration/learned.py ``crop_margin_mm``). A step on OASIS-TRT's
    native grid at 2 mm cost 4.9 s against 1.3 s on LPBA40's, mostly background."""
    from ..torchreg.crop import brain_box

    boxes = {}
    for c in dict.fromkeys(x.cohort for x in train + val):
        group = [x for x in train + val if x.cohort == c]
        spacing = group[0].spacing or 2.0
        boxes[c] = brain_box(*(x.image for x in group), margin=int(round(margin_mm / spacing)))
    cut = lambda x: Subject(x.cohort, x.name, x.image[(..., *boxes[x.cohort])].contiguous(),  # noqa: E731
                            np.ascontiguousarray(x.labels[boxes[x.cohort]]), x.spacing)
    return [cut(x) for x in train], [cut(x) for x in val]


def make_pair(moving: Subject, fixed: Subject) -> Pair:
    return Pair(f"{fixed.cohort}/{moving.name}->{fixed.name}", fixed.image, moving.image, fixed.labels, moving.labels)


def all_pairs(subjects: list[Subject]) -> list[Pair]:
    """Every ordered pair of two subjects of one cohort."""
    return [make_pair(m, f) for f in subjects for m in subjects if m is not f and m.cohort == f.cohort]


def validation_pairs(val: list[Subject], train: list[Subject], limit: int = 8) -> list[Pair]:
    """Pairs whose fixed image is a validation subject, so the score that selects the model is on a fixed
    image it never trained on, as the test pairs' is. The moving images are the other validation
    subjects first, then training subjects; at most ``limit`` pairs, spread over the validation subjects."""
    per = [[make_pair(m, v) for m in [x for x in val if x is not v] + train if m.cohort == v.cohort] for v in val]
    out: list[Pair] = []
    for k in range(max((len(p) for p in per), default=0)):
        out += [p[k] for p in per if k < len(p)]
    return out[:limit]


def one_hot(labels: np.ndarray, values: np.ndarray) -> torch.Tensor:
    """[1, K, D, H, W] float masks of ``values`` (the labels both subjects of a pair have)."""
    lab = torch.from_numpy(labels)
    return torch.stack([(lab == int(v)).float() for v in values])[None]


def shared_labels(pair: Pair) -> np.ndarray:
    both = np.intersect1d(np.unique(pair.fixed_labels), np.unique(pair.moving_labels))
    return both[both != 0]
