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


class LocalNCC:
    """LNCC against one fixed image, with its gradient with respect to the moving image in closed form.

    The fixed image's window statistics are computed once per pyramid level, and the gradient
    needs four box filters instead of autograd's replay of the whole graph: about 2.5x faster
    per iteration on a 1 mm brain. Same value as :func:`lncc`.

    With cc_w = A_w^2 / (B_w C_w + eps) per window w (A the windowed cross term, B and C the
    variances, all window sums) and n voxels per window, d cc_w / d m(x) for x in w is
    a_w (f(x) - mu_f,w) - b_w (m(x) - mu_m,w) with a = 2A / D, b = 2 A^2 B / D^2 and D = BC + eps;
    summing over the windows that contain x is one more box filter of a, a mu_f, b and b mu_m.
    """

    def __init__(self, fixed: torch.Tensor, window: int = 7, eps: float = 1e-5) -> None:
        self.window, self.eps, self.n = window, eps, float(window ** 3)
        self.fixed = fixed
        self.mu_f, ff = box_filter(torch.cat([fixed, fixed * fixed], dim=1), window).split(fixed.shape[1], dim=1)
        self.var_f = (ff - self.mu_f * self.mu_f).clamp_min(0) * self.n

    def __call__(self, moving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, d loss / d moving) for the negative mean LNCC."""
        n, f = self.n, self.fixed
        mu_m, mm, fm = box_filter(torch.cat([moving, moving * moving, f * moving], dim=1), self.window).split(
            moving.shape[1], dim=1)
        cross = (fm - self.mu_f * mu_m) * n
        var_m = (mm - mu_m * mu_m).clamp_min(0) * n
        denom = self.var_f * var_m + self.eps
        a = 2.0 * cross / denom
        cc = cross * a * 0.5
        b = 2.0 * cc * self.var_f / denom
        sa, samu, sb, sbmu = box_filter(torch.cat([a, a * self.mu_f, b, b * mu_m], dim=1), self.window).split(
            moving.shape[1], dim=1)
        # Each pair's gradient is that of its own mean, so a batch of pairs steps as each would alone.
        grad = (f * sa - samu - moving * sb + sbmu) * (-n / cc[0].numel())
        return -cc.mean(), grad


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
