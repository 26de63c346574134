"""A synthetic demo cohort made at run time from nilearn's bundled MNI152 2009 template.

Each subject is the template moved by a known random affine and a smooth diffeomorphic warp
(a random stationary velocity field integrated by scaling and squaring), with a smooth bias
field, a gamma change, noise and an arbitrary intensity scale. Labels: grey and white matter
split into left/right, anterior/posterior and superior/inferior parts (16 labels), so that
Dice before and after registration means something. The data are synthetic: no claim about
real scans is made from them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage


def template(resolution: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(skull-stripped T1, label map, affine) on the template grid, padded so warps do not crop."""
    from nilearn.datasets import (load_mni152_brain_mask, load_mni152_gm_template, load_mni152_template,
                                  load_mni152_wm_template)

    t1 = load_mni152_template(resolution=resolution)
    gm = load_mni152_gm_template(resolution=resolution).get_fdata()
    wm = load_mni152_wm_template(resolution=resolution).get_fdata()
    brain = load_mni152_brain_mask(resolution=resolution).get_fdata() > 0
    aff = t1.affine.copy()
    ijk = np.indices(gm.shape).reshape(3, -1)
    xyz = (aff[:3, :3] @ ijk + aff[:3, 3:4]).reshape((3,) + gm.shape)
    part = (xyz[0] > 0).astype(int) + 2 * (xyz[1] > -18) + 4 * (xyz[2] > 12)  # 8 parts
    labels = np.zeros(gm.shape, np.int16)
    labels[(gm > 0.5) & (gm >= wm) & brain] = 1
    labels[(wm > 0.5) & (wm > gm) & brain] = 11
    labels[labels > 0] += part[labels > 0].astype(np.int16)
    img = t1.get_fdata().astype(np.float32) * brain
    pad = 6
    img = np.pad(img, pad)
    labels = np.pad(labels, pad)
    aff[:3, 3] -= aff[:3, :3] @ np.full(3, pad)
    return img, labels, aff


def random_velocity(shape: tuple[int, ...], rng: np.random.Generator, sigma: float, max_disp: float) -> np.ndarray:
    v = np.stack([ndimage.gaussian_filter(rng.standard_normal(shape), sigma) for _ in range(3)])
    return v * (max_disp / (np.abs(v).max() + 1e-12))


def integrate_velocity(v: np.ndarray, steps: int = 6) -> np.ndarray:
    """Scaling and squaring: exp(v) as a displacement field in voxels, [3, X, Y, Z]."""
    disp = v / (2 ** steps)
    grid = np.indices(v.shape[1:]).astype(np.float64)
    for _ in range(steps):
        coords = grid + disp
        disp = disp + np.stack([ndimage.map_coordinates(disp[c], coords, order=1, mode="nearest") for c in range(3)])
    return disp


def random_affine(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    """A voxel-space affine about the volume centre: rotation up to 8 deg, scale 0.92-1.08, shift 4 voxels."""
    angles = np.deg2rad(rng.uniform(-8, 8, 3))
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rot = (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
           @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]))
    lin = rot @ np.diag(rng.uniform(0.92, 1.08, 3))
    out = np.eye(4)
    out[:3, :3] = lin
    out[:3, 3] = centre - lin @ centre + rng.uniform(-4, 4, 3)
    return out


def make_subject(img: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shape = img.shape
    disp = integrate_velocity(random_velocity(shape, rng, sigma=6.0, max_disp=2.5))
    A = random_affine(rng, (np.array(shape) - 1) / 2)
    grid = np.indices(shape).reshape(3, -1).astype(np.float64)
    pts = (A[:3, :3] @ grid + A[:3, 3:4]).reshape((3,) + shape)
    pts = pts + np.stack([ndimage.map_coordinates(disp[c], pts, order=1, mode="nearest") for c in range(3)])
    t1 = ndimage.map_coordinates(img, pts, order=1, mode="constant")
    lab = ndimage.map_coordinates(labels, pts, order=0, mode="constant").astype(np.int16)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 15)
    bias = np.exp(field * 0.15 / (np.abs(field).max() + 1e-12))  # smooth, within +-15 %
    t1 = np.clip(t1, 0, None) ** rng.uniform(0.8, 1.25) * bias
    t1 = t1 + rng.normal(0, 0.02, shape) * (t1 > 0)
    scale = rng.uniform(300, 3000)
    return (np.clip(t1, 0, None) * scale).astype(np.int16), lab


def make_demo(outdir: str | Path, n_subjects: int = 4, seed: int = 0) -> Path:
    """Write DIR/data/sub-XX_{T1w,dseg}.nii.gz and DIR/samples.tsv; return the sheet's path."""
    outdir = Path(outdir)
    (outdir / "data").mkdir(parents=True, exist_ok=True)
    img, labels, aff = template()
    rng = np.random.default_rng(seed)
    rows = ["cohort\tsubject\tt1\tlabels"]
    for i in range(1, n_subjects + 1):
        t1, lab = make_subject(img, labels, rng)
        sid = f"{i:02d}"
        for arr, name in ((t1, f"sub-{sid}_T1w.nii.gz"), (lab, f"sub-{sid}_dseg.nii.gz")):
            nib.save(nib.Nifti1Image(arr, aff), outdir / "data" / name)
        rows.append(f"demo\t{sid}\tdata/sub-{sid}_T1w.nii.gz\tdata/sub-{sid}_dseg.nii.gz")
    sheet = outdir / "samples.tsv"
    sheet.write_text("\n".join(rows) + "\n")
    return sheet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Make the synthetic demo cohort (and optionally run the workflow on it).")
    ap.add_argument("outdir", help="folder for the demo data and sample sheet")
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", action="store_true", help="then run snakemake on it with --cores 2")
    args = ap.parse_args(argv)
    sheet = make_demo(args.outdir, args.subjects, args.seed)
    print(f"demo sample sheet: {sheet}")
    if args.run:
        snakefile = Path(__file__).resolve().parents[2] / "Snakefile"
        if not snakefile.exists():  # a non-editable install has the package, not the workflow
            print(f"the workflow's Snakefile is not beside the package; from the checkout run: snakemake --cores 2 "
                  f"--config samples={sheet} outdir={Path(args.outdir) / 'results'}", file=sys.stderr)
            return 2
        cmd = ["snakemake", "-s", str(snakefile), "--cores", "2",
               "--config", f"samples={sheet}", f"outdir={Path(args.outdir) / 'results'}"]
        return subprocess.call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
