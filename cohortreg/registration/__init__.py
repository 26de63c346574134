"""Registration methods by name: the registry the workflow's ``methods`` config key reads."""

from __future__ import annotations

from .affine import AffineOnly, AffineSettings, estimate_affine
from .ants_syn import AntsSyN
from .base import RegistrationMethod, Transforms, write_manifest
from .torch_greedy import TorchGreedy

METHODS: dict[str, type[RegistrationMethod]] = {cls.name: cls for cls in (AffineOnly, AntsSyN, TorchGreedy)}


def get_method(name: str) -> type[RegistrationMethod]:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown registration method {name!r}; known: {sorted(METHODS)}") from None


__all__ = ["METHODS", "AffineSettings", "RegistrationMethod", "Transforms", "estimate_affine", "get_method",
           "write_manifest"]
