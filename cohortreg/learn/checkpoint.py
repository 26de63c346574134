"""Model files that describe themselves, and training checkpoints to resume from.

``model.pt``: the network's constructor arguments, its weights, the grid it works on and the
settings, cohorts and subjects that made it, so it loads without the config that trained it.
``checkpoints/last.pt``: that plus the optimiser's state, the step and the training curve.
Both are read with ``torch.load(weights_only=True)``: tensors and plain values only, no code.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import InputError
from ..io import write_atomic

FORMAT = "cohortreg-learned-1"
REQUIRED = ("format", "network", "grid_scale", "state_dict")


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """torch.save through a temporary file beside ``path`` (a killed job leaves no half model)."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp), ".pt")


def read(path: str | os.PathLike, what: str = "model") -> dict[str, Any]:
    p = str(path)
    if not os.path.exists(p):
        raise InputError(None, p, f"{what} file does not exist")
    try:
        doc = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, pickled code
        raise InputError(None, p, f"{what} is not a readable CohortReg model ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or any(k not in doc for k in REQUIRED):
        raise InputError(None, p, f"{what} is not a CohortReg model file (expected a dict with format {FORMAT!r} "
                                  f"and keys {list(REQUIRED)})")
    return doc


def load_model(path: str | os.PathLike) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network with its weights, in eval mode, and the model file's description."""
    from .network import build_network

    doc = read(path)
    net = build_network(**doc["network"])
    try:
        net.load_state_dict(doc["state_dict"])
    except RuntimeError as exc:  # another network shape or number of channels
        first = str(exc).splitlines()[1:3]
        raise InputError(None, str(path), f"model weights do not fit the network {doc['network']} "
                                          f"(wrong channels or input shape?): {' '.join(first)}") from None
    net.eval()
    return net, doc
