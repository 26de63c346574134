"""One registration pair from files to files: what a register job (and a register batch item) runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from ..io import ants_to_nib, nib_to_ants, save_atomic
from . import get_method, write_manifest
from .base import warp_pair


def register_pair(method: str, params: dict[str, Any], fixed: str, moving: str, moving_labels: str, affine: str,
                  out_manifest: str, out_warped: str, out_warped_labels: str, threads: int = 1) -> dict[str, Any]:
    """Run one method on one pair and write the warped image, warped labels and transforms.json."""
    return register_pairs(method, params, [(fixed, moving, moving_labels, affine, out_manifest, out_warped,
                                            out_warped_labels)], threads)[0]


def register_pairs(method: str, params: dict[str, Any], jobs: list[tuple[str, ...]], threads: int = 1
                   ) -> list[dict[str, Any]]:
    """Several pairs through the method's register_many (torch stacks same-shape pairs on a GPU).

    jobs: (fixed, moving, moving_labels, affine, out_manifest, out_warped, out_warped_labels) each.
    Raises if any pair fails; a caller that wants the others' results retries them one by one.
    """
    impl = get_method(method, params)(params, threads)
    loaded = [tuple(nib_to_ants(nib.load(p)) if p else None for p in job[:3]) for job in jobs]  # labels optional
    for job in jobs:
        Path(job[4]).parent.mkdir(parents=True, exist_ok=True)
    impl.prepare()  # register_seconds times the registration, not the import of torch
    t0 = time.perf_counter()
    txs = impl.register_many([(f, m, job[3], Path(job[4]).parent) for (f, m, _), job in zip(loaded, jobs)])
    seconds = (time.perf_counter() - t0) / max(len(jobs), 1)  # a stacked pair's share
    out = []
    for (f, m, ml), job, tx in zip(loaded, jobs, txs):
        tx, warped, warped_labels = warp_pair(tx, f, m, ml)
        tx.extra["register_seconds"] = seconds
        save_atomic(ants_to_nib(warped, np.float32), job[5])
        if warped_labels is not None:
            save_atomic(ants_to_nib(warped_labels, np.int32), job[6])
        write_manifest(tx, Path(job[4]), method, impl.params, impl.name)
        out.append(tx.extra)
    return out
