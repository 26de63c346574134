"""Our torch engine as a workflow method: greedy multi-scale on top of the ANTs affine.

The moving image is first resampled into the fixed grid through the affine (ANTs), the engine
estimates u on that grid, and u is written as an ANTs displacement field (LPS, mm) so that the
transform list [fwd_warp, affine.mat] is exactly what antsApplyTransforms expects.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..lazy_ants import import_ants
from .base import RegistrationMethod, Transforms, stage_file


def _device(requested: str):
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def invert_displacement(u, iterations: int = 30, refine: int = 5):
    """Fixed-point inverse: v(y) = -u(y + v(y)), for a smooth u with small folding (voxels).

    Most iterations run on a half-resolution copy (8x cheaper); ``refine`` iterations at full
    resolution then polish it. On a 1 mm brain that is ~4 s instead of ~15 s.
    """
    import torch

    from ..torchreg.fields import resize_field, warp

    def fixed_point(field, v, n):
        for _ in range(n):
            v = -warp(field, v, padding="border")
        return v

    with torch.no_grad():
        shape = tuple(u.shape[2:])
        if min(shape) >= 64:
            half = tuple((s + 1) // 2 for s in shape)
            coarse = resize_field(u, half)
            v = resize_field(fixed_point(coarse, -coarse, iterations), shape)
            return fixed_point(u, v, refine)
        return fixed_point(u, -u.clone(), iterations)


def voxel_to_ants_field(u: np.ndarray, ref: Any) -> Any:
    """u [3, X, Y, Z] in voxel steps of ``ref`` -> ANTs vector image in physical LPS mm."""
    ants = import_ants()

    to_phys = (np.asarray(ref.direction) @ np.diag(ref.spacing)).astype(np.float32)  # float32: 1 mm fields are big
    disp = np.einsum("ij,jxyz->xyzi", to_phys, u.astype(np.float32, copy=False))
    return ants.from_numpy(disp, origin=ref.origin, spacing=ref.spacing, direction=ref.direction, has_components=True)


class TorchGreedy(RegistrationMethod):
    name = "torch"
    uses_gpu = True
    # Chosen from bench/results/torch_settings_lpba_S02_to_S01_2mm.txt (2 threads, this CPU VM):
    # lr 0.15, gradient sigma 1, field sigma 0.75, LNCC window 5 gave Dice 0.716 (ANTs SyN 'default'
    # 0.704 in 21 s on that pair) with no folding; 100/50/25 iterations matched 200/100/50 in half
    # the time. Larger steps or a field sigma of 0.5 fold the additive field; see that table.
    # crop_margin_mm: the engine works on the brains' bounding box plus this margin (crop.py);
    # 0 or null registers on the whole grid.
    _base = {"loss": "lncc", "window": 5, "lr": 0.15, "grad_sigma": 1.0, "warp_sigma": 0.75, "device": "auto",
             "seed": 0, "crop_margin_mm": 16.0, "smooth_weight": 0.0}
    presets = {
        "fast": {**_base, "scales": [4, 2], "iterations": [100, 50]},
        "default": {**_base, "scales": [4, 2, 1], "iterations": [100, 50, 25]},
        "accurate": {**_base, "scales": [4, 2, 1], "iterations": [200, 100, 50]},
    }

    def prepare(self) -> None:
        self._setup()

    def _setup(self) -> Any:
        import torch

        p = self.params
        torch.set_num_threads(max(self.threads, 1))
        torch.manual_seed(int(p.get("seed", 0)))
        # Denormal floats (Adam's second moment of a vanishing background gradient, B-spline
        # ringing in the scan's background) run 10-100x slower on x86; flushing them is exact
        # to float32's normal range and costs nothing.
        torch.set_flush_denormal(True)
        # No torch.use_deterministic_algorithms: it imports torch's compiler stack (3 s a job), and
        # the engine's CPU ops are deterministic already (tests/test_torchreg.py checks it).
        return _device(p.get("device", "auto"))

    def _tensors(self, fixed: Any, moving: Any, affine: str, dev: Any) -> tuple[Any, Any]:
        """[1, 1, D, H, W] fixed and affinely resampled moving, on the device."""
        ants = import_ants()
        import torch

        aligned = ants.apply_transforms(fixed, moving, [affine], interpolator="linear")
        f = torch.from_numpy(np.ascontiguousarray(fixed.numpy(), dtype=np.float32))[None, None].to(dev)
        m = torch.from_numpy(np.ascontiguousarray(aligned.numpy(), dtype=np.float32))[None, None].to(dev)
        return f, m

    def _settings(self) -> Any:
        from ..torchreg.greedy import GreedySettings

        p = self.params
        return GreedySettings(scales=tuple(p["scales"]), iterations=tuple(p["iterations"]), loss=p["loss"],
                              window=int(p["window"]), lr=float(p["lr"]), grad_sigma=float(p["grad_sigma"]),
                              warp_sigma=float(p["warp_sigma"]), smooth_weight=float(p.get("smooth_weight", 0.0)))

    def _on_box(self, f: Any, m: Any, spacing: tuple[float, ...], solve: Callable[[Any, Any], tuple[Any, Any]]
                ) -> tuple[Any, Any]:
        """solve(fixed, moving) -> (forward, inverse) run on the brains' bounding box plus
        ``crop_margin_mm`` (torchreg/crop.py; 0 or null: the whole grid), both fields returned on
        the full grid [N, 3, D, H, W] (voxels)."""
        from ..torchreg.crop import brain_box, uncrop

        margin_mm = self.params.get("crop_margin_mm") or 0.0
        if margin_mm <= 0:
            return solve(f, m)
        box = brain_box(f, m, margin=int(math.ceil(float(margin_mm) / min(spacing))))
        u, v = solve(f[(..., *box)], m[(..., *box)])
        full = tuple(f.shape[2:])
        return uncrop(u, box, full), uncrop(v, box, full)

    def _refine(self, f: Any, m: Any, init: Any = None, residual: bool = False) -> tuple[Any, Any]:
        """The greedy schedule on these images (from ``init``, a starting field, or zero; ``residual``:
        init kept and a correction optimised, see register_greedy): forward and inverse displacement."""
        from ..torchreg.greedy import register_greedy

        u = register_greedy(f, m, self._settings(), init=init, residual=residual)
        return u, invert_displacement(u)

    def _optimise(self, f: Any, m: Any, spacing: tuple[float, ...]) -> tuple[Any, Any]:
        """Forward and inverse displacement [N, 3, D, H, W] (voxels) for N stacked pairs."""
        return self._on_box(f, m, spacing, self._refine)

    def _write(self, u: Any, v: Any, fixed: Any, affine: str, outdir: Path, dev: Any, **extra: Any) -> Transforms:
        ants = import_ants()

        outdir.mkdir(parents=True, exist_ok=True)
        # Uncompressed: a float displacement field gzips by only ~10% (114 of 126 MB on a 1 mm
        # OASIS grid), and compressing the two fields took 0.6 s of a 2 mm job and ~5 s at 1 mm.
        warp = str(outdir / "fwd_warp.nii")
        inv = str(outdir / "inv_warp.nii")
        ants.image_write(voxel_to_ants_field(u[0].cpu().numpy(), fixed), warp)
        ants.image_write(voxel_to_ants_field(v[0].cpu().numpy(), fixed), inv)
        mat = stage_file(affine, outdir / "affine.mat")
        return Transforms(forward=[warp, mat], inverse=[mat, inv], inverse_invert=[True, False], warp=warp,
                          extra={"device": str(dev), **extra})

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        dev = self._setup()
        f, m = self._tensors(fixed, moving, affine, dev)
        u, v = self._optimise(f, m, fixed.spacing)
        return self._write(u, v, fixed, affine, outdir, dev)

    def stack_size(self) -> int:
        """``stack`` pairs per optimisation; default 8 on a GPU, 1 on CPU (a stack is no faster there)."""
        stack = self.params.get("stack")
        if stack is None:
            return 8 if _device(self.params.get("device", "auto")).type == "cuda" else 1
        return max(int(stack), 1)

    def register_many(self, jobs: list[tuple[Any, Any, str, Path]]) -> list[Transforms]:
        """Pairs whose fixed grids share a shape and spacing go through the optimiser as one stack
        (at most ``stack_size()`` pairs): on a GPU one small pair leaves most of the device idle. Each
        pair keeps its own similarity and field; the crop box is the union of the stack's brains."""
        import torch

        size = self.stack_size()
        if size <= 1 or len(jobs) <= 1:
            return [self.register(*job) for job in jobs]
        dev = self._setup()
        out: list[Transforms | None] = [None] * len(jobs)
        groups: dict[tuple, list[int]] = {}
        for i, (fixed, *_rest) in enumerate(jobs):
            groups.setdefault((tuple(fixed.shape), tuple(np.round(fixed.spacing, 4))), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), size):
                part = idx[start:start + size]
                pairs = [self._tensors(jobs[i][0], jobs[i][1], jobs[i][2], dev) for i in part]
                u, v = self._optimise(torch.cat([f for f, _ in pairs]), torch.cat([m for _, m in pairs]),
                                      jobs[part[0]][0].spacing)
                for k, i in enumerate(part):
                    fixed, _, affine, outdir = jobs[i]
                    out[i] = self._write(u[k:k + 1], v[k:k + 1], fixed, affine, outdir, dev, stacked_with=len(part))
        return out  # type: ignore[return-value]
