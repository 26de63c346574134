"""Learned registration as workflow methods: ``learned`` (the network's forward pass) and
``learned_io`` (that prediction refined per pair by the torch engine's greedy optimiser).

Both start, like ``torch``, from the moving brain affinely resampled onto the fixed grid, and
write the same ANTs-compatible transforms ([fwd_warp, affine.mat]). The model file comes from
the workflow (``OUT/models/{name}/model.pt``, trained by rules/learn.smk) or from the user
(``checkpoint:``); a job loads it once for all its pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Transforms
from .torch_greedy import TorchGreedy, invert_displacement


class Learned(TorchGreedy):
    name = "learned"
    uses_gpu = True
    # crop_margin_mm: the network runs on the brains' box plus this margin, as the torch engine
    # does (torchreg/crop.py): on OASIS-TRT's native grid at 2 mm the forward pass fell from 0.91-1.34 s
    # to 0.50-0.71 s, Dice within 0.002 (bench/results/learned_2mm_inference_schedules.json, learned_crop_check.txt).
    presets = {"default": {"device": "auto", "seed": 0, "crop_margin_mm": 16.0}}

    def prepare(self) -> None:
        super().prepare()
        self._model()

    def _model(self) -> tuple[Any, dict[str, Any]]:
        """(network on the device, its description), read once: a missing, corrupt or incompatible
        file is an InputError naming it."""
        if getattr(self, "_loaded", None) is None:
            from ..learn.checkpoint import load_model

            path = self.params.get("model_file")
            if not path:
                raise ValueError(f"method {self.name!r}: no model file (the workflow passes model_file)")
            net, doc = load_model(path)
            self._loaded = (net.to(self._setup()), doc)
        return self._loaded

    def predict(self, f: Any, m: Any) -> tuple[Any, Any]:
        """The network's forward and inverse fields on the fixed grid [N, 3, D, H, W] (voxels)."""
        import torch

        from ..learn.network import infer, pooling_factor

        net, doc = self._model()
        with torch.no_grad():
            u, v = infer(net, f, m, int(doc["grid_scale"]), pooling_factor(tuple(doc["network"]["channels"])))
        return u, (invert_displacement(u) if v is None else v)

    def _describe(self) -> dict[str, Any]:
        _, doc = self._model()
        return {"model": str(self.params.get("model_file")), "train_cohorts": doc.get("train_cohorts", []),
                "supervision": doc.get("settings", {}).get("supervision", "")}

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        dev = self._setup()
        f, m = self._tensors(fixed, moving, affine, dev)
        u, v = self._on_box(f, m, fixed.spacing, self.predict)
        return self._write(u, v, fixed, affine, outdir, dev, **self._describe())

    def stack_size(self) -> int:
        return 1


class LearnedIO(Learned):
    """The prediction, then the torch engine's schedule started from it (``iterations: [0, 0, 0]`` is
    the prediction alone)."""

    name = "learned_io"
    # Half the torch schedule on the same levels by default: the prediction has done the coarse work,
    # and at 2 mm the full-resolution level is three quarters of an iteration schedule's cost. In
    # bench/results/learned_2mm.json (commit 85d3977) [50, 25, 12] from the LPBA40 weak model gave
    # Dice 0.713 against 0.716 for [100, 50, 25] (torch's default, here ``accurate``).
    _base = TorchGreedy._base
    presets = {"fast": {**_base, "scales": [4, 2, 1], "iterations": [25, 12, 6]},
               "default": {**_base, "scales": [4, 2, 1], "iterations": [50, 25, 12]},
               "accurate": {**_base, "scales": [4, 2, 1], "iterations": [100, 50, 25]}}

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        dev = self._setup()
        f, m = self._tensors(fixed, moving, affine, dev)

        def solve(fb: Any, mb: Any) -> tuple[Any, Any]:
            """The prediction on the brains' box, refined there: the box's field is the optimiser's start."""
            u0, v0 = self.predict(fb, mb)
            if not any(int(i) for i in self.params["iterations"]):
                return u0, v0
            return self._refine(fb, mb, init=u0, residual=bool(self.params.get("residual", False)))

        u, v = self._on_box(f, m, fixed.spacing, solve)
        return self._write(u, v, fixed, affine, outdir, dev, **self._describe())
