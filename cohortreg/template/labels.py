"""Template labels: per cohort, the weighted majority vote of its warped label maps and per-label
probability maps. Cohorts label with different protocols (LPBA40's 56 structures, Mindboggle's DKT),
so each cohort gets its own label set on the common template.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def vote(maps: Sequence[np.ndarray], weights: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(majority label [X, Y, Z], labels [L] (0 = background first), probabilities [X, Y, Z, L] uint8 in
    1/255 steps). One label's map at a time: a 1 mm DKT set would not fit as L float volumes."""
    labels = np.unique(np.concatenate([np.unique(m) for m in maps]))
    labels = np.concatenate([[0], labels[labels != 0]]).astype(np.int64)
    total = float(sum(weights))
    shape = np.shape(maps[0])
    best, winner = np.full(shape, -1.0, dtype=np.float32), np.zeros(shape, dtype=np.int64)
    prob = np.zeros(shape + (len(labels),), dtype=np.uint8)
    for k, lab in enumerate(labels):
        p = np.zeros(shape, dtype=np.float32)
        for m, w in zip(maps, weights):
            p += (float(w) / total) * (m == lab)
        prob[..., k] = np.rint(np.clip(p, 0, 1) * 255).astype(np.uint8)
        better = p > best  # ties keep the earlier label (background first)
        best[better], winner[better] = p[better], lab
    return winner, labels, prob


def mean_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Dice over the non-zero labels of b (the template's labels) present in either map."""
    scores = []
    for lab in np.unique(b):
        if lab == 0:
            continue
        x, y = a == lab, b == lab
        denom = int(x.sum()) + int(y.sum())
        if denom:
            scores.append(2.0 * int((x & y).sum()) / denom)
    return float(np.mean(scores)) if scores else float("nan")
