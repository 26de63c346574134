"""Registration methods by name: the registry the workflow's ``methods`` config key reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .affine import AffineOnly, AffineSettings, estimate_affine
from .ants_syn import AntsSyN
from .base import RegistrationMethod, Transforms, write_manifest
from .learned import Learned, LearnedIO
from .torch_greedy import TorchGreedy

# Engines by name. A method is an engine name, or a named variant: a method_params key with
# `engine:` (vxm_oasis: {engine: learned, ...}), with its own rows in pairs.tsv.
METHODS: dict[str, type[RegistrationMethod]] = {cls.name: cls for cls in (AffineOnly, AntsSyN, TorchGreedy, Learned,
                                                                         LearnedIO)}


@dataclass(frozen=True)
class ResolvedMethod:
    """One configured method, resolved once: what rules, batches, templates, training and provenance
    all ask, so that none of them works out an engine from a name on its own.

    params: its settings as its jobs get them (method_params.NAME, and a learned method's model_file).
    """

    name: str
    engine: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def cls(self) -> type[RegistrationMethod]:
        return METHODS[self.engine]

    @property
    def model_file(self) -> str:
        """The model a learned method runs ('' for the others): its identity is part of its pairs' stamps."""
        return str(self.params.get("model_file") or "")

    def code(self, stage: str = "register") -> str:
        """The fingerprint of the code this method's results come from (cohortreg.provenance)."""
        from ..provenance import fingerprint

        return fingerprint(stage, self.engine)


def resolve(name: str, params: dict | None = None) -> ResolvedMethod:
    """A method by name and settings: an engine name, or a named variant (params ``engine``)."""
    engine = str((params or {}).get("engine") or name)
    if engine not in METHODS:
        raise ValueError(f"unknown registration method {name!r}: use an engine ({sorted(METHODS)}) or a "
                         "method_params key with engine: ENGINE")
    return ResolvedMethod(name, engine, dict(params or {}))


def get_method(name: str, params: dict | None = None) -> type[RegistrationMethod]:
    return resolve(name, params).cls


def pair_threads(name: str, params: dict | None, family_threads: int) -> int:
    """Threads one pair of this method gets: the register family's, or 1 for a method whose work is one
    thread's (RegistrationMethod.threaded; the rules' requests and a batch job's items both use this)."""
    return int(family_threads) if get_method(name, params).threaded else 1


__all__ = ["METHODS", "ResolvedMethod", "resolve", "AffineSettings", "RegistrationMethod", "Transforms", "estimate_affine", "get_method", "pair_threads",
           "write_manifest"]
