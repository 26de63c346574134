"""The one interface every deformable method implements, and the evaluation/saving it shares.

A method turns (fixed, moving, initial affine) into ANTs-compatible transform files; the base
class owns everything after that (warping the image and labels, writing the manifest), so a new
method (our torch engine, a learned model) only implements ``register``.
"""

from __future__ import annotations

import json
import shutil
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar


from ..io import write_text_atomic
from ..transforms.label_warp import warp_labels
from ..lazy_ants import import_ants
from ..provenance import fingerprint


@dataclass
class Transforms:
    """ANTs transform lists, in ``antsApplyTransforms`` order (last listed is applied first).

    forward maps moving-image intensities into the fixed space (resamples the moving image);
    inverse maps the fixed image into the moving space. ``warp`` is the forward displacement
    field (None for affine-only), used for the Jacobian.
    """

    forward: list[str]
    inverse: list[str]
    inverse_invert: list[bool]
    warp: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RegistrationMethod(ABC):
    """A named deformable registration method with named presets of parameters."""

    name: ClassVar[str]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    uses_gpu: ClassVar[bool] = False
    threaded: ClassVar[bool] = True   # False: one thread's work; its jobs ask for one thread (rules/resources.smk)

    def __init__(self, params: dict[str, Any] | None = None, threads: int = 1) -> None:
        params = dict(params or {})
        params.pop("engine", None)  # a named variant's engine: already chosen (registration.get_method)
        preset = params.pop("preset", None)
        if preset is not None and preset not in self.presets:
            raise ValueError(f"method {self.name!r}: unknown preset {preset!r}; known: {sorted(self.presets)}")
        self.params = {**self.presets.get(preset or "default", {}), **params}
        self.threads = threads

    def prepare(self) -> None:
        """Import and configure what ``register`` needs (libraries, threads), outside its timing."""

    @abstractmethod
    def register(self, fixed: "Any", moving: "Any", affine: str, outdir: Path) -> Transforms:
        """Estimate moving -> fixed, starting from the affine .mat; write files under outdir."""

    def stack_size(self) -> int:
        """How many pairs register_many puts through one optimisation (1: it loops)."""
        return 1

    def register_many(self, jobs: list[tuple["Any", "Any", str, Path]]) -> list[Transforms]:
        """Several (fixed, moving, affine, outdir) pairs in one call: one after another here; an
        engine that can stack pairs on a GPU overrides it."""
        return [self.register(*job) for job in jobs]

    def run(self, fixed: "Any", moving: "Any", affine: str, outdir: Path,
            moving_labels: "Any | None" = None) -> tuple[Transforms, "Any", "Any | None"]:
        """Register, then warp the moving image (linear) and labels (genericLabel) into fixed space."""
        outdir.mkdir(parents=True, exist_ok=True)
        return warp_pair(self.register(fixed, moving, affine, outdir), fixed, moving, moving_labels)


def warp_pair(tx: Transforms, fixed: "Any", moving: "Any", moving_labels: "Any | None" = None
              ) -> tuple[Transforms, "Any", "Any | None"]:
    ants = import_ants()

    warped = ants.apply_transforms(fixed, moving, tx.forward, interpolator="linear")
    # genericLabel's choice, by cohortreg.transforms.label_warp's corner vote (the same labels, a fifth of the time)
    warped_labels = None if moving_labels is None else warp_labels(fixed, moving_labels, tx.forward)
    return tx, warped, warped_labels


def stage_file(src: str, dst: Path) -> str:
    """Copy a transform written in a temporary place to its final name under the pair folder."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return str(dst)


def write_manifest(tx: Transforms, path: Path, method: str, params: dict[str, Any], engine: str = "") -> None:
    """transforms.json: the file lists with paths relative to the manifest, ready for antsApplyTransforms."""
    base = path.parent

    def rel(p: str) -> str:
        return str(Path(p).resolve().relative_to(base.resolve())) if Path(p).resolve().is_relative_to(base.resolve()) else p

    doc = asdict(tx)
    doc["forward"] = [rel(p) for p in tx.forward]
    doc["inverse"] = [rel(p) for p in tx.inverse]
    doc["warp"] = rel(tx.warp) if tx.warp else None
    doc["method"] = method
    doc["params"] = params
    doc["version"] = fingerprint("register", engine or method)
    doc["usage"] = ("antsApplyTransforms -d 3 -i MOVING -r FIXED -o OUT " + " ".join(f"-t {p}" for p in doc["forward"]))
    write_text_atomic(json.dumps(doc, indent=2) + "\n", path)
