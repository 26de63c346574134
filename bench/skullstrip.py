"""Atlas-based skull stripping on the two CANDI full-head scans (issue 2).

Template: Colin27 head (ch2.nii.gz) with ch2bet.nii.gz > 0 as its brain mask. Reference for
sub-030: the non-zero region of its aseg label map. Writes bench/results/skullstrip_candi.json
and a PNG per subject (three orthogonal slices, mask outline in red).

    python -m bench run skullstrip
"""

from __future__ import annotations

import argparse

import json
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from bench.harness import ROOT, commit, machine, result_path
from cohortreg.sheet.datasets import SHARED_DATA
from cohortreg.jobs import pin_threads
from cohortreg.subject.preprocess import PreprocessSettings, preprocess_subject
from cohortreg.subject.skullstrip import AtlasSettings, extract_brain, mask_dice


def picture(t1: np.ndarray, mask: np.ndarray, ref: np.ndarray | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = [int(v) for v in np.argwhere(mask).mean(0)]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, sl in zip(axes, [(c[0], slice(None), slice(None)), (slice(None), c[1], slice(None)),
                             (slice(None), slice(None), c[2])]):
        ax.imshow(np.rot90(t1[sl]), cmap="gray")
        ax.contour(np.rot90(mask[sl]), levels=[0.5], colors="r", linewidths=0.8)
        if ref is not None:
            ax.contour(np.rot90(ref[sl]), levels=[0.5], colors="c", linewidths=0.6)
        ax.axis("off")
    fig.suptitle(title + ("  (red: atlas mask, cyan: aseg > 0)" if ref is not None else "  (red: atlas mask)"))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)  # --help, and no stray options
    pin_threads(2, seed=42)
    candi, colin = SHARED_DATA / "candi", SHARED_DATA / "colin27"
    result = result_path("skullstrip", "candi")
    atlas = AtlasSettings(template=str(colin / "ch2.nii.gz"), template_mask=str(colin / "ch2bet.nii.gz"))
    settings = PreprocessSettings(spacing=None, n4=True)
    rows = []
    for sub in ("sub-030", "sub-031"):
        t0 = time.time()
        pre = preprocess_subject(sub, str(candi / f"{sub}_t1w.nii.gz"), settings=settings)
        _, mask_img = extract_brain(sub, pre.t1, "atlas", atlas=atlas)
        secs = time.time() - t0
        mask = np.asarray(mask_img.dataobj) > 0
        ref = None
        row = {"subject": sub, "seconds": secs, "mask_voxels": int(mask.sum())}
        aseg = candi / f"{sub}_aseg.nii.gz"
        if aseg.exists():
            ref_img = nib.as_closest_canonical(nib.load(str(aseg)))
            ref = np.asarray(ref_img.dataobj) > 0
            row["dice_vs_aseg"] = mask_dice(mask, ref)
            row["mask_minus_aseg_frac"] = float((mask & ~ref).sum() / ref.sum())
            row["aseg_minus_mask_frac"] = float((ref & ~mask).sum() / ref.sum())
        png = result.with_name(result.stem + f"-{sub}.png")
        picture(pre.t1.get_fdata(), mask, ref, png, sub)
        row["picture"] = str(png.relative_to(ROOT))
        rows.append(row)
        print(row)
    out = {"benchmark": "skullstrip_candi", "commit": commit(), "template": "colin27 ch2 + ch2bet>0", "n4": True,
           "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows}
    result.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
