"""Multi-scale greedy deformable registration (the scheme of ANTs' greedy SyN and FireANTs).

At each pyramid level the displacement u (fixed grid, voxels) takes Adam steps on
similarity(F, M o (id + u)) with the gradient smoothed by a Gaussian (``grad_sigma``) before
the step and the field smoothed (``warp_sigma``) after it, which keeps the map smooth and
nearly always invertible (folding is measured, not assumed). Most iterations run on the coarse
levels, where a step costs 1/8 or 1/64 of a full-resolution one.

The gradient with respect to u is formed as demons-style optimisers do: dL/dI (the similarity's
gradient with respect to the warped image) times the spatial gradient of the warped image. That
avoids the backward pass of grid_sample (twice the cost of the resampling itself on CPU), and
the zero padding outside the scan still shows in the gradient, so the field does not drift there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .fields import resize_field, smooth, warp
from .similarity import LOSSES, LocalNCC


@dataclass(frozen=True)
class GreedySettings:
    scales: tuple[int, ...] = (4, 2, 1)
    iterations: tuple[int, ...] = (200, 100, 50)
    loss: str = "lncc"
    window: int = 7
    lr: float = 0.5
    grad_sigma: float = 1.0
    warp_sigma: float = 0.5
    smooth_weight: float = 0.0  # diffusion regulariser on top of the field smoothing


def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Blur (sigma ~ scale/2 voxels) then resample to 1/scale of the grid: an anti-aliased pyramid."""
    if scale == 1:
        return x
    shape = tuple(max(int(round(s / scale)), 8) for s in x.shape[2:])
    return F.interpolate(smooth(x, 0.5 * scale), size=shape, mode="trilinear", align_corners=True)


def diffusion(u: torch.Tensor) -> torch.Tensor:
    return sum(((u.narrow(a, 1, u.shape[a] - 1) - u.narrow(a, 0, u.shape[a] - 1)) ** 2).mean() for a in (2, 3, 4))


def similarity_gradient(settings: GreedySettings, fixed: torch.Tensor):
    """moving -> (loss, d loss / d moving) against ``fixed``: LNCC in closed form, others by autograd."""
    if settings.loss == "lncc":
        return LocalNCC(fixed, settings.window)
    fn = LOSSES[settings.loss]

    def value_and_grad(moving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        moving = moving.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = fn(fixed, moving)
            (grad,) = torch.autograd.grad(loss, moving)
        return loss.detach(), grad * moving.shape[0]  # per pair: the gradient of its own mean

    return value_and_grad


class Adam:
    """Adam on one tensor, the same arithmetic as torch.optim.Adam (defaults betas 0.9/0.999, eps 1e-8).

    Written out because constructing torch.optim.Adam imports torch's compiler stack (about 3 s
    per registration job, longer than a 2 mm registration itself).
    """

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps, self.t = param, lr, betas, eps, 0
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        b1, b2 = self.betas
        self.t += 1
        self.m.lerp_(grad, 1 - b1)
        self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))


def register_greedy(fixed: torch.Tensor, moving: torch.Tensor, settings: GreedySettings = GreedySettings(),
                    init: torch.Tensor | None = None, residual: bool = False) -> torch.Tensor:
    """Displacement u [N, 3, D, H, W] (voxels of the fixed grid) such that moving(x + u(x)) ~ fixed(x).

    fixed, moving: [N, 1, D, H, W] on the same grid (moving already affinely aligned).
    init: a starting field on the fixed grid. By default it is the first level's field, optimised
    and smoothed (``warp_sigma``) like any other, so every step smooths it too and its fine detail
    is lost through the coarse levels. ``residual``: u = init + du, where only the correction du is
    optimised and smoothed and init is kept at full resolution (instance optimisation of a learned
    prediction: the prediction is the prior, the optimiser adds what it missed). A level with 0
    iterations is skipped: it neither resamples nor smooths the field.
    """
    base = init if residual else None
    u = None if residual else init
    for scale, iters in zip(settings.scales, settings.iterations):
        if int(iters) <= 0:
            continue
        f, m = downsample(fixed, scale), downsample(moving, scale)
        shape = tuple(f.shape[2:])
        u = torch.zeros((f.shape[0], 3, *shape), device=f.device, dtype=f.dtype) if u is None else resize_field(u, shape)
        u = u.detach().requires_grad_(settings.smooth_weight > 0)
        prior = None if base is None else resize_field(base, shape)
        opt = Adam(u, lr=settings.lr)
        sim = similarity_gradient(settings, f)
        for _ in range(iters):
            with torch.no_grad():
                moved = warp(m, u if prior is None else prior + u)
                _, d_image = sim(moved)
                grad = torch.empty_like(u)
                for axis in range(3):  # one image-sized temporary at a time (1 mm fields are big)
                    torch.mul(torch.gradient(moved, dim=2 + axis)[0], d_image, out=grad[:, axis:axis + 1])
                del moved, d_image
            if settings.smooth_weight > 0:
                (d_reg,) = torch.autograd.grad(settings.smooth_weight * diffusion(u), u)
                grad = grad + d_reg
            with torch.no_grad():
                opt.step(smooth(grad, settings.grad_sigma))
                smooth(u, settings.warp_sigma, out=u)
        u = u.detach()
    full = tuple(fixed.shape[2:])
    if u is None:  # no level ran
        return (torch.zeros((fixed.shape[0], 3, *full), device=fixed.device, dtype=fixed.dtype)
                if init is None else init.clone())
    if u.shape[2:] != full:
        u = resize_field(u, full)
    return u if base is None else base + u
