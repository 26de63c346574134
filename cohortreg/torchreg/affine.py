"""Affine registration in torch: centre-of-mass start, then rigid, then affine, on a pyramid.

The map is estimated in physical (ANTs LPS, mm) coordinates, as ANTs' own affine is: a fixed
point x goes to the moving point y = A (x - c) + c + t, with c the fixed brain's centre of mass.
That is exactly an ANTs ``AffineTransform`` with centre c, so the result is written as the
``.mat`` that antsApplyTransforms reads (``write_ants_affine``).

Each level samples the moving image (blurred and downsampled) at the mapped points of the
fixed grid (downsampled the same way) with ``grid_sample`` and takes Adam steps on the
similarity through autograd: 12 parameters need no closed-form gradient. Stacks: N same-grid
pairs go through as one batch (a GPU is otherwise mostly idle on one 2 mm pair).

Shapes: images [N, 1, X, Y, Z] indexed like ANTs' ``numpy()`` (axis 0 = ANTs' x); grids
[N, X, Y, Z, 3] in grid_sample's (z, y, x)-reversed order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .fields import smooth
from .greedy import Adam
from .similarity import LOSSES


@dataclass(frozen=True)
class AffineTorchSettings:
    scales: tuple[int, ...] = (4, 2)          # pyramid levels (downsampling factors), coarse to fine
    rigid_iterations: tuple[int, ...] = (100, 0)   # the coarse level only (bench/results/affine_steps_2mm_fine.json)
    iterations: tuple[int, ...] = (100, 50)   # the 12-parameter stage
    lr: float = 0.01                          # Adam step; rotations in radians, translations in units of `scale_mm`
    scale_mm: float = 10.0                    # translations are optimised in cm: all parameters near unit size
    loss: str = "ncc"                         # ncc | mi | lncc | mse; config.yaml's (tests/test_config_keys.py)
    window: int = 5                           # lncc window (voxels of the level)
    scales_mm: float | None = 2.0             # scales downsample a grid of this spacing: a finer working grid
                                              # gets the same physical levels (1 mm: 8, 4), as ANTs' affine
                                              # caps its grid at max_resolution_mm; None: the working grid's


@dataclass(frozen=True)
class Geometry:
    """An ANTs image's voxel -> physical map: p = origin + direction @ (spacing * index)."""

    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    shape: tuple[int, int, int]

    @classmethod
    def of(cls, img: Any) -> "Geometry":
        return cls(np.asarray(img.origin, float), np.asarray(img.spacing, float), np.asarray(img.direction, float),
                   tuple(int(s) for s in img.shape))

    def to_physical(self) -> np.ndarray:
        """4x4: voxel index (homogeneous) -> physical point."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m


def centre_of_mass(img: torch.Tensor, geom: Geometry) -> np.ndarray:
    """Intensity-weighted centre in physical coordinates (the moments start of ANTs' initializer)."""
    w = img[0, 0].clamp_min(0).double()
    idx = [torch.arange(s, dtype=torch.float64, device=w.device) for s in w.shape]
    total = w.sum().clamp_min(1e-12)
    c = [float((w.sum(dim=tuple(d for d in range(3) if d != a)) * idx[a]).sum() / total) for a in range(3)]
    return (geom.to_physical() @ np.array(c + [1.0]))[:3]


def _level(img: torch.Tensor, scale: float) -> torch.Tensor:
    if scale == 1:
        return img
    shape = tuple(max(int(round(s / scale)), 8) for s in img.shape[2:])
    return F.interpolate(smooth(img, 0.5 * scale), size=shape, mode="trilinear", align_corners=True)


class _Frames:
    """The constant parts of a level's sampling map, so that each step is one ``affine_grid``.

    A level's grid point u (grid_sample's normalised coordinates, align_corners: the level spans the
    full grid) sits at fixed physical point x = K u + k0; the moving image's normalised coordinate of
    a physical point y is v = L y + l0. With y = A (x - c) + c + t the whole map is affine in u:
    v = (L A K) u + L (A (k0 - c) + c + t) + l0, which ``affine_grid`` evaluates for every grid point
    (and differentiates) at the cost of one batched matrix product. Mapping the points in mm each step
    made a 2 mm LPBA40 affine take 1.8 s instead of 1.3 s (one thread), for the same map to ~1e-4.
    """

    def __init__(self, fixed_geom: Geometry, moving_geom: Geometry, device, dtype) -> None:
        to_phys = fixed_geom.to_physical()
        half = np.diag([(n - 1) / 2.0 for n in fixed_geom.shape])  # full-grid index = half (u + 1)
        self.k = torch.as_tensor(to_phys[:3, :3] @ half, device=device, dtype=dtype)
        self.k0 = torch.as_tensor(to_phys[:3, :3] @ half @ np.ones(3) + to_phys[:3, 3], device=device, dtype=dtype)
        to_index = np.linalg.inv(moving_geom.to_physical())
        scale = np.diag([2.0 / max(n - 1, 1) for n in moving_geom.shape])
        self.l = torch.as_tensor(scale @ to_index[:3, :3], device=device, dtype=dtype)
        self.l0 = torch.as_tensor(scale @ to_index[:3, 3] - 1.0, device=device, dtype=dtype)

    def theta(self, a: torch.Tensor, t: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """[N, 3, 4] for affine_grid, in its (z, y, x)-reversed axis order."""
        lin = self.l @ a @ self.k
        off = (self.l @ (torch.einsum("nij,nj->ni", a, self.k0 - centre) + centre + t)[..., None])[..., 0] + self.l0
        return torch.cat([lin.flip(-1).flip(-2), off.flip(-1)[..., None]], dim=-1)


def _grid(frames: _Frames, a: torch.Tensor, t: torch.Tensor, centre: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """grid_sample's grid [N, X, Y, Z, 3] of the moving image at y = A (x - c) + c + t for the points x
    of a level's grid of this shape."""
    return F.affine_grid(frames.theta(a, t, centre), [a.shape[0], 1, *shape], align_corners=True)


def resample(moving: torch.Tensor, fixed_geom: Geometry, moving_geom: Geometry, a: np.ndarray, t: np.ndarray,
             centre: np.ndarray) -> torch.Tensor:
    """The moving image [N, 1, ...] on the fixed grid through the map (linear): what antsApplyTransforms
    computes with the written .mat."""
    a_t = torch.as_tensor(np.asarray(a), dtype=moving.dtype).reshape(-1, 3, 3)
    t_t = torch.as_tensor(np.asarray(t), dtype=moving.dtype).reshape(-1, 3)
    c_t = torch.as_tensor(np.asarray(centre), dtype=moving.dtype).reshape(-1, 3)
    frames = _Frames(fixed_geom, moving_geom, moving.device, moving.dtype)
    grid = _grid(frames, a_t, t_t, c_t, fixed_geom.shape)
    return F.grid_sample(moving, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def rotation(angles: torch.Tensor) -> torch.Tensor:
    """[N, 3] angles (radians) -> [N, 3, 3] rotation (the exponential of the skew-symmetric matrix)."""
    zero = torch.zeros_like(angles[:, 0])
    k = torch.stack([zero, -angles[:, 2], angles[:, 1], angles[:, 2], zero, -angles[:, 0], -angles[:, 1],
                     angles[:, 0], zero], dim=-1).view(-1, 3, 3)
    return torch.linalg.matrix_exp(k)


def register_affine(fixed: torch.Tensor, moving: torch.Tensor, fixed_geom: Geometry, moving_geom: Geometry,
                    settings: AffineTorchSettings = AffineTorchSettings()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A [N, 3, 3], t [N, 3], c [N, 3]) with y = A (x - c) + c + t mapping fixed points to moving ones.

    fixed, moving: [N, 1, X, Y, Z], every pair on one fixed grid and one moving grid (a stack).
    """
    n, device, dtype = fixed.shape[0], fixed.device, fixed.dtype
    # On a 1 mm grid the levels of a 2 mm one would cost 8x per step for the same map (a 35 s job)
    grow = max(1.0, settings.scales_mm / float(np.min(fixed_geom.spacing))) if settings.scales_mm else 1.0
    c_f = np.stack([centre_of_mass(fixed[i:i + 1], fixed_geom) for i in range(n)])
    c_m = np.stack([centre_of_mass(moving[i:i + 1], moving_geom) for i in range(n)])
    centre = torch.as_tensor(c_f, device=device, dtype=dtype)
    frames = _Frames(fixed_geom, moving_geom, device, dtype)
    angles = torch.zeros(n, 3, device=device, dtype=dtype, requires_grad=True)
    shift = torch.as_tensor((c_m - c_f) / settings.scale_mm, device=device, dtype=dtype).requires_grad_(True)
    linear = None  # the affine stage's 3x3, started from the rigid rotation
    loss_fn = LOSSES[settings.loss]

    def transform() -> tuple[torch.Tensor, torch.Tensor]:
        a = rotation(angles) if linear is None else linear
        return a, shift * settings.scale_mm

    def sample(m_lvl: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        a, t = transform()
        grid = _grid(frames, a, t, centre, shape)
        return F.grid_sample(m_lvl, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    levels: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
    for stage, iters_per_level in (("rigid", settings.rigid_iterations), ("affine", settings.iterations)):
        if stage == "affine":
            linear = rotation(angles.detach()).clone().requires_grad_(True)
            params = [linear, shift]
        else:
            params = [angles, shift]
        for scale, iters in zip(settings.scales, iters_per_level):
            if not iters:
                continue
            if scale not in levels:  # the rigid and affine stages share a level's images
                levels[scale] = _level(fixed, scale * grow), _level(moving, scale * grow)
            f_lvl, m_lvl = levels[scale]
            shape = tuple(f_lvl.shape[2:])
            # greedy.Adam, one per tensor: torch.optim.Adam imports torch's compiler stack (~3 s a job)
            opts = [Adam(p, lr=settings.lr) for p in params]
            for _ in range(int(iters)):
                warped = sample(m_lvl, shape)
                loss = loss_fn(f_lvl, warped) if settings.loss != "lncc" else loss_fn(f_lvl, warped, settings.window)
                grads = torch.autograd.grad(loss, params)
                for opt, g in zip(opts, grads):
                    opt.step(g)
    a, t = transform()
    return a.detach().cpu().double().numpy(), t.detach().cpu().double().numpy(), c_f


def write_ants_affine(a: np.ndarray, t: np.ndarray, centre: np.ndarray, path: str) -> str:
    """The map y = A (x - c) + c + t as an ANTs AffineTransform .mat (antsApplyTransforms reads it)."""
    from ..io import write_atomic
    from ..lazy_ants import import_ants

    ants = import_ants()
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3, matrix=np.asarray(a, float),
                                    translation=np.asarray(t, float), center=np.asarray(centre, float))
    write_atomic(path, lambda tmp: ants.write_transform(tx, tmp), ".mat")
    return str(path)


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees of rotation between two 3x3 linear maps' rotation parts (for tests and benches)."""
    u, _, vt = np.linalg.svd(a @ np.linalg.inv(b))
    r = u @ vt
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(r) - 1) / 2))))
