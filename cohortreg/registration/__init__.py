"""Registration methods by name: the registry the workflow's ``methods`` config key reads."""

from __future__ import annotations

from .affine import AffineOnly, AffineSettings, estimate_affine
from .ants_syn import AntsSyN
from .base import RegistrationMethod, Transforms, write_manifest
from .learned import Learned, LearnedIO
from .torch_greedy import TorchGreedy

# Engines by name. A method is an engine name, or a named variant: a method_params key with
# `engine:` (vxm_oasis: {engine: learned, ...}), with its own rows in pairs.tsv.
METHODS: dict[str, type[RegistrationMethod]] = {cls.name: cls for cls in (AffineOnly, AntsSyN, TorchGreedy, Learned,
                                                                         LearnedIO)}


def engine_of(name: str, params: dict | None = None) -> str:
    """The engine a method runs: its params' ``engine``, else its own name."""
    return str((params or {}).get("engine") or name)


def get_method(name: str, params: dict | None = None) -> type[RegistrationMethod]:
    engine = engine_of(name, params)
    try:
        return METHODS[engine]
    except KeyError:
        raise ValueError(f"unknown registration method {name!r}: use an engine ({sorted(METHODS)}) or a "
                         "method_params key with engine: ENGINE") from None


def pair_threads(name: str, params: dict | None, family_threads: int) -> int:
    """Threads one pair of this method gets: the register family's, or 1 for a method whose work is one
    thread's (RegistrationMethod.threaded; the rules' requests and a batch job's items both use this)."""
    return int(family_threads) if get_method(name, params).threaded else 1


__all__ = ["METHODS", "engine_of", "AffineSettings", "RegistrationMethod", "Transforms", "estimate_affine", "get_method", "pair_threads",
           "write_manifest"]
