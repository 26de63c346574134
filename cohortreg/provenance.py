"""Which code made a result: a fingerprint per stage of the package modules it runs and the libraries it calls.

Every rule's params (and every batch item's stamp) carry its stage's fingerprint, so editing
or upgrading the engine reruns what that engine produced (``--rerun-triggers params``) and
nothing else, and a study whose rows come from two versions says so (``pairs.tsv``'s
``version`` column; the aggregation's log and ``summary.tsv``'s ``versions``).

The version string is ``{package version}+{first 10 hex digits of the sha1}`` of the stage's
module sources and the installed versions of its libraries.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from . import __version__

PACKAGE = Path(__file__).resolve().parent

# Package modules (files or folders, relative to the package) and libraries each stage runs.
_COMMON = ("__init__.py", "errors.py", "io.py", "lazy_ants.py", "stages.py")
STAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "preprocess": (_COMMON + ("preprocess.py", "qc.py"), ("antspyx", "nibabel", "numpy")),
    "skullstrip": (_COMMON + ("preprocess.py", "skullstrip.py", "qc.py"), ("antspyx", "nibabel", "numpy", "scipy")),
    "affine": (_COMMON + ("registration/affine.py", "registration/base.py", "torchreg/affine.py", "torchreg/fields.py",
                          "torchreg/similarity.py", "torchreg/greedy.py"), ("antspyx", "torch")),
    "register": (_COMMON + ("pair.py", "registration/base.py", "registration/__init__.py"), ("antspyx", "nibabel")),
    "metrics": (_COMMON + ("pair.py", "metrics.py", "qc.py"), ("nibabel", "numpy", "scipy")),
    "aggregate": (("__init__.py", "aggregate.py", "qc.py", "provenance.py"), ("pandas", "numpy")),
    "learn": (_COMMON + ("learn", "metrics.py", "torchreg"), ("torch", "monai", "antspyx")),
}
# A method's own code on top of the register stage's (cohortreg.registration's classes).
METHODS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "affine": (("registration/affine.py",), ()),
    "ants": (("registration/ants_syn.py",), ()),
    "torch": (("registration/torch_greedy.py", "torchreg"), ("torch",)),
    "learned": (("registration/torch_greedy.py", "registration/learned.py", "torchreg", "learn"), ("torch", "monai")),
    "learned_io": (("registration/torch_greedy.py", "registration/learned.py", "torchreg", "learn"), ("torch", "monai")),
}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _files(rel: str) -> list[Path]:
    p = PACKAGE / rel
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


@lru_cache(maxsize=None)
def fingerprint(stage: str, method: str = "") -> str:
    """The version string of one stage (and, for ``register``, of one method's engine); a stage this
    table does not know is fingerprinted by the whole package."""
    modules, libraries = STAGES.get(stage, (("",), ()))
    if method:
        extra_mod, extra_lib = METHODS.get(method, ((), ()))
        modules, libraries = modules + extra_mod, libraries + extra_lib
    h = hashlib.sha1()
    for rel in sorted(set(modules)):
        for f in _files(rel):
            h.update(str(f.relative_to(PACKAGE)).encode())
            h.update(f.read_bytes())
    for lib in sorted(set(libraries)):
        h.update(f"{lib}=={_version(lib)}".encode())
    return f"{__version__}+{h.hexdigest()[:10]}"


def stage_of(key: str) -> tuple[str, str]:
    """(stage, method) of a batch item key such as 'register ph/02->01 [torch]'."""
    stage = key.split(" ", 1)[0]
    method = key.rsplit("[", 1)[1].rstrip("]") if key.endswith("]") else ""
    return stage, method if stage == "register" else ""
