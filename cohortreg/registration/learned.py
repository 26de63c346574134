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
    presets = {"default": {"device": "auto", "seed": 0}}

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

    def predict(self, f: Any, m: Any) -> Any:
        """The network's field on the fixed grid [N, 3, D, H, W] (voxels)."""
        import torch

        from ..learn.network import pooling_factor, predict

        net, doc = self._model()
        with torch.no_grad():
            u, _, _ = predict(net, f, m, int(doc["grid_scale"]), pooling_factor(tuple(doc["network"]["channels"])))
        return u

    def _describe(self) -> dict[str, Any]:
        _, doc = self._model()
        return {"model": str(self.params.get("model_file")), "train_cohorts": doc.get("train_cohorts", []),
                "supervision": doc.get("settings", {}).get("supervision", "")}

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        dev = self._setup()
        f, m = self._tensors(fixed, moving, affine, dev)
        u = self.predict(f, m)
        return self._write(u, invert_displacement(u), fixed, affine, outdir, dev, **self._describe())

    def stack_size(self) -> int:
        return 1


class LearnedIO(Learned):
    """The prediction, then the torch engine's schedule started from it (``iterations: [0, 0, 0]`` is
    the prediction alone)."""

    name = "learned_io"
    presets = TorchGreedy.presets

    def register(self, fixed: Any, moving: Any, affine: str, outdir: Path) -> Transforms:
        dev = self._setup()
        f, m = self._tensors(fixed, moving, affine, dev)
        u0 = self.predict(f, m)
        if not any(int(i) for i in self.params["iterations"]):
            u, v = u0, invert_displacement(u0)
        else:
            u, v = self._optimise(f, m, fixed.spacing, init=u0)
        return self._write(u, v, fixed, affine, outdir, dev, **self._describe())
