"""Image similarity losses (lower is better): local NCC, MSE, mutual information."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_filter(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a ``window``^3 neighbourhood, separably with cumulative sums: O(1) per voxel.

    x: [N, C, D, H, W]; zero padding at the borders (as voxelmorph's NCC), same output shape.
    """
    r = window // 2
    for dim in (2, 3, 4):
        pad = [0, 0] * 3
        pad[2 * (4 - dim)] = r + 1
        pad[2 * (4 - dim) + 1] = r
        c = torch.cumsum(F.pad(x, pad), dim=dim)
        n = x.shape[dim]
        x = c.narrow(dim, window, n) - c.narrow(dim, 0, n)
    return x / float(window ** 3)


def lncc(fixed: torch.Tensor, moving: torch.Tensor, window: int = 7, eps: float = 1e-5) -> torch.Tensor:
    """Negative mean local normalised cross-correlation (squared, as in ANTs' CC and voxelmorph).

    eps is added to products of window *sums* (voxelmorph's convention): on window means it
    would swamp the local variance of low-contrast regions.
    """
    n = float(window ** 3)
    stack = torch.cat([fixed, moving, fixed * fixed, moving * moving, fixed * moving], dim=1)
    mu_f, mu_m, ff, mm, fm = box_filter(stack, window).split(fixed.shape[1], dim=1)
    cross = (fm - mu_f * mu_m) * n
    var_f = (ff - mu_f * mu_f).clamp_min(0) * n
    var_m = (mm - mu_m * mu_m).clamp_min(0) * n
    return -(cross * cross / (var_f * var_m + eps)).mean()


def mse(fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    return ((fixed - moving) ** 2).mean()


def mutual_information(fixed: torch.Tensor, moving: torch.Tensor, bins: int = 32, sigma: float | None = None) -> torch.Tensor:
    """Negative MI with Gaussian Parzen windows over intensities scaled to [0, 1] (cross-contrast pairs)."""
    sigma = sigma or 1.0 / bins
    centres = torch.linspace(0, 1, bins, device=fixed.device, dtype=fixed.dtype)
    f = fixed.reshape(fixed.shape[0], -1, 1).clamp(0, 1)
    m = moving.reshape(moving.shape[0], -1, 1).clamp(0, 1)
    wf = torch.exp(-0.5 * ((f - centres) / sigma) ** 2)
    wm = torch.exp(-0.5 * ((m - centres) / sigma) ** 2)
    wf = wf / (wf.sum(-1, keepdim=True) + 1e-10)
    wm = wm / (wm.sum(-1, keepdim=True) + 1e-10)
    joint = torch.bmm(wf.transpose(1, 2), wm) / f.shape[1]
    pf, pm = joint.sum(2, keepdim=True), joint.sum(1, keepdim=True)
    mi = (joint * (torch.log(joint + 1e-10) - torch.log(pf @ pm + 1e-10))).sum((1, 2))
    return -mi.mean()


LOSSES = {"lncc": lncc, "mse": mse, "mi": mutual_information}
