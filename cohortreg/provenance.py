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
import threading
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from . import __version__

PACKAGE = Path(__file__).resolve().parent

# Package modules (files or folders, relative to the package; "file.py:function" for one function of
# a module the stages share) and libraries each stage runs.
_COMMON = ("__init__.py", "errors.py", "io.py", "lazy_ants.py")
# The deformable engine's modules (torchreg/affine.py is the affine stage's).
_TORCHREG = ("torchreg/__init__.py", "torchreg/greedy.py", "torchreg/fields.py", "torchreg/similarity.py",
             "torchreg/crop.py")
STAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "preprocess": (_COMMON + ("stages.py:preprocess_files", "preprocess.py", "qc.py", "label_warp.py"), ("antspyx", "nibabel", "numpy")),
    "skullstrip": (_COMMON + ("stages.py:skullstrip_files", "preprocess.py", "skullstrip.py", "qc.py"),
                   ("antspyx", "nibabel", "numpy", "scipy")),
    "affine": (_COMMON + ("stages.py:affine_files", "registration/affine.py", "registration/base.py", "torchreg/affine.py",
                          "torchreg/fields.py", "torchreg/similarity.py", "torchreg/greedy.py"), ("antspyx", "torch")),
    "register": (_COMMON + ("pair.py:register_pair", "pair.py:register_pairs", "registration/base.py",
                            "registration/__init__.py", "label_warp.py", "transform_files.py"),
                 ("antspyx", "nibabel", "numpy")),
    "metrics": (_COMMON + ("pair.py:evaluate_pair", "pair.py:warp_jacobian", "pair.py:model_label", "metrics.py", "qc.py",
                            "qc_picture.py"), ("nibabel", "numpy", "scipy", "pillow")),
    "aggregate": (("__init__.py", "aggregate.py", "qc.py", "provenance.py", "paired_stats.py", "domain_shift.py"),
                  ("pandas", "numpy", "scipy")),
    "report": (("__init__.py", "io.py", "mutual_info.py", "report_figures.py"), ("matplotlib", "nibabel", "scipy")),
    "learn": (_COMMON + ("learn", "metrics.py") + _TORCHREG, ("torch", "monai", "antspyx")),
    "template": (_COMMON + ("template", "stages.py:affine_files", "pair.py:register_pair", "pair.py:register_pairs",
                            "registration/affine.py", "registration/base.py", "label_warp.py", "transform_files.py",
                            "registration/__init__.py", "torchreg/affine.py", "torchreg/fields.py",
                            "torchreg/similarity.py", "torchreg/greedy.py"), ("antspyx", "nibabel", "torch")),
}
# A method's own code on top of the register stage's (cohortreg.registration's classes).
METHODS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "affine": (("registration/affine.py",), ()),
    "ants": (("registration/ants_syn.py",), ()),
    "torch": (("registration/torch_greedy.py",) + _TORCHREG, ("torch",)),
    "learned": (("registration/torch_greedy.py", "registration/learned.py", "learn") + _TORCHREG, ("torch", "monai")),
    "learned_io": (("registration/torch_greedy.py", "registration/learned.py", "learn") + _TORCHREG, ("torch", "monai")),
}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _files(rel: str) -> list[Path]:
    p = PACKAGE / rel.split(":")[0]
    return sorted(p.rglob("*.py")) if p.is_dir() else [p]


def _source(f: Path, rel: str) -> bytes:
    """A file's bytes, or for 'file.py:function' that function's source alone (an edit of one stage's
    function in a shared module reruns that stage only)."""
    if ":" not in rel:
        return f.read_bytes()
    import ast

    name, text = rel.split(":", 1)[1], f.read_text()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return (ast.get_source_segment(text, node) or "").encode()
    raise KeyError(f"{rel}: no such function")


_LOCK = threading.Lock()


def fingerprint(stage: str, method: str = "") -> str:
    """The version string of one stage (and, for ``register``, of one method's engine); a stage this
    table does not know is fingerprinted by the whole package.

    Thread-safe: a batch job's items stamp themselves from worker threads, and two first calls at
    once ran ast.parse in two threads, which CPython 3.11 can fail ("SystemError: AST constructor
    recursion depth mismatch"; a learned method's register batch hit it).
    """
    with _LOCK:
        return _fingerprint(stage, method)


@lru_cache(maxsize=None)
def _fingerprint(stage: str, method: str) -> str:
    modules, libraries = STAGES.get(stage, (("",), ()))
    if method:
        extra_mod, extra_lib = METHODS.get(method, ((), ()))
        modules, libraries = modules + extra_mod, libraries + extra_lib
    h = hashlib.sha1()
    for rel in sorted(set(modules)):
        for f in _files(rel):
            h.update(str(f.relative_to(PACKAGE)).encode() + rel.encode())
            h.update(_source(f, rel))
    for lib in sorted(set(libraries)):
        h.update(f"{lib}=={_version(lib)}".encode())
    return f"{__version__}+{h.hexdigest()[:10]}"


def stage_of(key: str) -> tuple[str, str]:
    """(stage, method) of a batch item key such as 'register ph/02->01 [torch]' or a template round's
    'template study iter-02 ph/02 [torch]'."""
    stage = key.split(" ", 1)[0]
    method = key.rsplit("[", 1)[1].rstrip("]") if key.endswith("]") else ""
    return stage, method if stage in ("register", "template") else ""
