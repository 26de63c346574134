"""The template's shape update (antsMultivariateTemplateConstruction2.sh, ``shapeupdatetotemplate``).

Every input i registered to the current template T gives a map template -> subject, x -> A_i(x + W_i(x))
([fwd_warp, affine.mat], the order antsApplyTransforms applies to points). If the template sat at the
population's centre, the mean of those maps would be the identity. ANTs' script moves it there: the
subjects' forward warps are averaged (W), scaled by -gradient_step, resampled through the inverse of
the mean affine (A), and the template is resampled through [A^-1, then the scaled warp four times].
We do exactly that, with weights (cohort or subject) in both means.

Coordinates are ANTs' physical LPS millimetres throughout (the .mat files and displacement images are
in LPS); voxel grids come from the template's NIfTI affine (RAS), converted once.
"""

from __future__ import annotations

from typing import Sequence

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

from ..transforms.files import voxel_to_lps


def weighted_mean(arrays: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Sum of w_i a_i / sum w_i, accumulated in float64 one array at a time."""
    total = float(sum(weights))
    acc = np.zeros(np.shape(arrays[0]), dtype=np.float64)
    for a, w in zip(arrays, weights):
        acc += (float(w) / total) * np.asarray(a, dtype=np.float64)
    return acc


def mean_affine(mats: Sequence[np.ndarray], weights: Sequence[float], centre: np.ndarray | None = None,
                rigid: bool = False) -> np.ndarray:
    """The inputs' mean template -> subject map, 4x4 in LPS.

    rigid False (ANTs' AverageAffineTransformNoRigid, ``-y 0``): only the non-rigid part, the mean of
    each linear part's symmetric factor S_i (M_i = R_i S_i, polar decomposition), about ``centre``. The
    rigid part says where each scan sits in its scanner's world; cohorts in different world frames
    (OASIS-TRT's native space beside LPBA40's) averaged it into a 70 mm drift of the template, which
    then left its grid. rigid True: the weighted mean of the maps' entries (AverageAffineTransform).
    """
    if rigid:
        return weighted_mean(mats, weights)
    sym = []
    for m in mats:
        u, sigma, vt = np.linalg.svd(np.asarray(m, float)[:3, :3])
        sym.append(vt.T @ np.diag(sigma) @ vt)
    s = weighted_mean(sym, weights)
    c = np.zeros(3) if centre is None else np.asarray(centre, float)
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = s, c - s @ c
    return out


def centroid_lps(img: nib.Nifti1Image, data: np.ndarray) -> np.ndarray:
    """The intensity-weighted centre of a template, LPS mm (the fixed point of its shape update)."""
    w = np.clip(np.asarray(data, dtype=np.float64), 0, None)
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in w.shape], indexing="ij"), -1)
    vox = (idx * w[..., None]).reshape(-1, 3).sum(0) / max(float(w.sum()), 1e-12)
    return (voxel_to_lps(img) @ np.append(vox, 1.0))[:3]


def _sample(volume: torch.Tensor, vox: torch.Tensor, padding: str) -> torch.Tensor:
    """Trilinear samples of volume [C, X, Y, Z] at voxel coordinates vox [..., 3] -> [C, ...]."""
    shape = volume.shape[1:]
    scale = torch.tensor([2.0 / max(s - 1, 1) for s in shape], dtype=vox.dtype)
    grid = (vox * scale - 1.0).flip(-1).reshape(1, 1, 1, -1, 3)  # grid_sample wants (z, y, x) = (W, H, D) order
    out = F.grid_sample(volume[None], grid.to(volume.dtype), mode="bilinear", padding_mode=padding, align_corners=True)
    return out.reshape(volume.shape[0], *vox.shape[:-1])


def shape_update(template: nib.Nifti1Image, affine: np.ndarray, field: np.ndarray | None, gradient_step: float,
                 steps: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(updated template array, displacement of the update in mm [X, Y, Z]) on the template's grid.

    affine: the mean template -> subject map (4x4, LPS); field: the mean forward warp [X, Y, Z, 3] (LPS
    mm) on the template grid, or None for an affine-only round (the initial template).
    """
    to_lps = voxel_to_lps(template)
    to_vox = torch.from_numpy(np.linalg.inv(to_lps))
    shape = template.shape[:3]
    idx = torch.stack(torch.meshgrid(*[torch.arange(s, dtype=torch.float64) for s in shape], indexing="ij"), -1)
    lps = idx @ torch.from_numpy(to_lps[:3, :3]).T + torch.from_numpy(to_lps[:3, 3])
    inv = torch.from_numpy(np.linalg.inv(affine))
    y = lps @ inv[:3, :3].T + inv[:3, 3]
    if field is not None and gradient_step:
        step = torch.from_numpy(np.ascontiguousarray(field, dtype=np.float64)).permute(3, 0, 1, 2) * -float(gradient_step)
        for _ in range(int(steps)):
            vox = y @ to_vox[:3, :3].T + to_vox[:3, 3]
            y = y + _sample(step, vox, "border").permute(1, 2, 3, 0)
    vox = y @ to_vox[:3, :3].T + to_vox[:3, 3]
    data = torch.from_numpy(np.asarray(template.dataobj, dtype=np.float64))[None]
    new = _sample(data, vox, "zeros")[0].numpy().astype(np.float32)
    return new, torch.linalg.norm(y - lps, dim=-1).numpy().astype(np.float32)


def field_norm(field: np.ndarray) -> np.ndarray:
    """|W(x)| in mm, [X, Y, Z]."""
    return np.sqrt((np.asarray(field, dtype=np.float64) ** 2).sum(-1)).astype(np.float32)

