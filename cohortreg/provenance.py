"""Which code made a result: a fingerprint per stage of the package code it runs and the libraries it calls.

Every rule's params (and every batch item's stamp) carry its stage's fingerprint, so editing
or upgrading the engine reruns what that engine produced (``--rerun-triggers params``) and
nothing else, and a study whose rows come from two versions says so (``pairs.tsv``'s
``version`` column; the aggregation's log and ``summary.tsv``'s ``versions``).

The code a stage runs is read from the code itself, never from a hand-kept list: from the stage's
entry functions (``ENTRIES``) the package's imports are walked (module-level imports a function
uses, imports inside it, the module's own functions and constants it calls), and every module
reached is hashed by content. A new module is covered as soon as a stage imports it; a module no
stage imports changes no stage's fingerprint. Engines are the one seam: the method registry
(``cohortreg.registration``) imports every engine, but a register stage runs one, so the walk does
not follow the registry into engine modules and adds the stage's own engine's module instead
(``fingerprint('register', 'torch')``); an engine whose module cannot be found is an error.

Each unit is hashed as its normalised code (``ast.unparse``) without import statements and docstrings, and by
content alone, not by the name of its module: a comment, a docstring, a reformatting, or a module moved to another folder
reruns nothing; a changed statement reruns what it makes.

The version string is ``{package version}+{first 10 hex digits of the sha1}`` of those units and the
installed versions of the libraries they import (a module that imports one by name at run time
declares it in ``__libraries__``, as ``lazy_ants`` does for antspyx).
"""

from __future__ import annotations

import ast
import hashlib
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from . import __version__

PACKAGE = Path(__file__).resolve().parent
REGISTRY = "cohortreg.registration"  # imports every engine; a stage follows only its own engine's module

# Each stage's entry points, "module" (all of it) or "module:function" (that function and what it uses).
ENTRIES: dict[str, tuple[str, ...]] = {
    "preprocess": ("cohortreg.subject.stages:preprocess_files",),
    "skullstrip": ("cohortreg.subject.stages:skullstrip_files",),
    "affine": ("cohortreg.subject.stages:affine_files",),
    "register": ("cohortreg.registration.pairs:register_pairs",),
    "metrics": ("cohortreg.evaluation.pair:evaluate_pair",),
    "aggregate": ("cohortreg.study.aggregate",),
    "report": ("cohortreg.study.report_figures", "cohortreg.evaluation.mutual_info", "cohortreg.evaluation.mask_gallery"),
    "learn": ("cohortreg.learn.train",),
    "template": ("cohortreg.template.build", "cohortreg.template.batch"),
    "labelling": ("cohortreg.labelling.run:label_subject",),
    "labelling_tables": ("cohortreg.labelling.tables",),
    "template_route": ("cohortreg.labelling.template_route:label_from_template",),
    "derivative": ("cohortreg.study.derivative",),
}
# Modules that record results without shaping them: editing them reruns nothing.
NOT_CODE = frozenset({"cohortreg.provenance"})
STAGES = tuple(ENTRIES)  # the stages the rules fingerprint (rules/common.smk: CODE)
# Third-party import names whose distribution is named otherwise.
_DISTRIBUTION = {"ants": "antspyx", "PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml"}


@dataclass(frozen=True, eq=False)  # hashed by identity: one per module (_module is cached)
class _Module:
    name: str
    path: Path
    text: str
    tree: ast.Module

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rsplit(".", 1)[0]


@lru_cache(maxsize=None)
def _module(name: str) -> _Module | None:
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            text = path.read_text()
            return _Module(name, path, text, ast.parse(text))
    return None


def _targets(mod: _Module, node: ast.Import | ast.ImportFrom) -> tuple[dict[str, str], set[str]]:
    """(bound name -> package module it refers to, third-party top-level names) of one import statement."""
    bound, libs = {}, set()
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name.split(".")[0] == "cohortreg":
                bound[(a.asname or a.name).split(".")[0]] = a.name if a.asname else "cohortreg"
            else:
                libs.add(a.name.split(".")[0])
        return bound, libs
    if node.level:
        base = mod.package.split(".")
        base = base[:len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
        if source.split(".")[0] != "cohortreg":
            libs.add(source.split(".")[0])
            return bound, libs
    for a in node.names:
        sub = f"{source}.{a.name}"
        # a submodule; else one function, class or constant of the module ("module:name"), followed by name
        bound[a.asname or a.name] = sub if _module(sub) else (f"{source}:{a.name}" if _defines(source, a.name) else source)
    return bound, libs


def _defines(module: str, name: str) -> bool:
    """Whether a module defines ``name`` itself at its top level (not by importing it)."""
    mod = _module(module)
    return mod is not None and name in _top_level(mod)


@lru_cache(maxsize=None)
def _top_level(mod: _Module) -> dict[str, ast.stmt]:
    """A module's own top-level functions, classes and assignments by the names they bind."""
    top: dict[str, ast.stmt] = {}
    for node in mod.tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top[node.name] = node
        elif not isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)):  # assignments, and `if`/`try` blocks
            for n in ast.walk(node):
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                    top.setdefault(n.id, node)
                elif isinstance(n, (ast.FunctionDef, ast.ClassDef)):
                    top.setdefault(n.name, node)
    return top


def _module_level_imports(mod: _Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (also inside a module-level `try` or `if`)."""
    out, todo = [], list(mod.tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            todo += [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]
    return out


def _module_imports(mod: _Module) -> tuple[set[str], set[str]]:
    """Every package module a whole module imports (anywhere in it), and its third-party imports."""
    mods, libs = set(), set()
    for node in ast.walk(mod.tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            b, lib = _targets(mod, node)
            mods |= set(b.values())
            libs |= lib
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__libraries__" for t in node.targets):
            libs |= set(ast.literal_eval(node.value))
    return mods, libs


def _function_units(mod: _Module, name: str) -> tuple[list[bytes], set[str], set[str]]:
    """A function's source and the module-level code it uses (its module's functions, constants and
    imported modules, followed by name), with the package modules and libraries it imports."""
    top = _top_level(mod)
    imported: dict[str, str] = {}
    libs: set[str] = set()
    for node in _module_level_imports(mod):
        b, lib = _targets(mod, node)
        imported.update(b)
        libs |= lib  # a module-level third-party import: cheap to over-cover
    if name not in top:
        raise KeyError(f"{mod.name}:{name}: no such function")
    sources, mods, seen, todo = [], set(), set(), [name]
    while todo:
        node = top[todo.pop()]
        if id(node) in seen:
            continue
        seen.add(id(node))
        sources.append(_code(node))
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                if n.id in imported:
                    mods.add(imported[n.id])
                elif n.id in top:
                    todo.append(n.id)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):  # an import inside the function
                b, lib = _targets(mod, n)
                mods |= set(b.values())
                libs |= lib
    return sources, mods, libs


class _WhatItDoes(ast.NodeTransformer):
    """Drops import statements and docstrings: neither changes what a unit computes."""

    def visit_Import(self, node: ast.AST) -> None:
        return None

    visit_ImportFrom = visit_Import

    def generic_visit(self, node: ast.AST) -> ast.AST:
        node = super().generic_visit(node)
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or ([] if isinstance(node, ast.Module) else [ast.Pass()])
        return node


def _code(node: ast.AST) -> bytes:
    """What a unit's code does, as its normalised source without comments, docstrings, formatting and import
    statements (what an import brings in is covered where it is defined): a comment, a docstring, a
    reformatting or a moved module (the same code, imported from a new place, or a new package folder
    whose ``__init__`` holds only a docstring) changes no fingerprint, so reruns nothing."""
    import copy

    tree = _WhatItDoes().visit(copy.deepcopy(node))
    return ast.unparse(ast.fix_missing_locations(tree)).encode()


def engine_module(engine: str) -> str:
    """The module that defines an engine's class (cohortreg.registration.METHODS)."""
    from .registration import METHODS

    cls = METHODS.get(engine)
    module = getattr(cls, "__module__", "")
    if cls is None or _module(module) is None:
        raise ValueError(f"engine {engine!r}: its code cannot be found for provenance (known engines: {sorted(METHODS)})")
    return module


@lru_cache(maxsize=None)
def _engine_modules() -> frozenset[str]:
    from .registration import METHODS

    return frozenset(cls.__module__ for cls in METHODS.values())


def covered(stage: str, engine: str = "") -> tuple[dict[str, list[bytes]], set[str]]:
    """What a stage's fingerprint hashes: {module or module:function: sources} and the libraries imported."""
    entries = ENTRIES.get(stage)
    if entries is None:
        raise KeyError(f"unknown stage {stage!r} (cohortreg.provenance.ENTRIES: {sorted(ENTRIES)})")
    entries = entries + ((engine_module(engine),) if engine else ())
    units: dict[str, list[bytes]] = {}
    libs: set[str] = set()
    todo = list(entries)
    while todo:
        key = todo.pop()
        if key in units:
            continue
        name, _, function = key.partition(":")
        mod = _module(name)
        if mod is None:
            raise KeyError(f"provenance: no module {name} in the package")
        if function:
            units[key], mods, lib = _function_units(mod, function)
        else:
            units[key] = [_code(mod.tree)]
            mods, lib = _module_imports(mod)
        libs |= lib
        for m in mods:
            target = m.partition(":")[0]
            if (name == REGISTRY and target in _engine_modules()) or target in NOT_CODE:
                continue  # the registry's edge to every engine: a stage follows its own (entries) only
            todo += _parents(target) + [m]
    return units, libs


def _parents(module: str) -> list[str]:
    """The packages a module's import runs first (their __init__)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def _distribution(top_level: str) -> str | None:
    """The installed distribution of a third-party import name; None for the standard library."""
    if top_level in sys.stdlib_module_names or top_level == "__future__":
        return None
    return _DISTRIBUTION.get(top_level, top_level)


_LOCK = threading.Lock()


def fingerprint(stage: str, engine: str = "") -> str:
    """The version string of one stage (and, for ``register`` and ``template``, of one engine's code).

    Thread-safe: a batch job's items stamp themselves from worker threads, and two first calls at
    once ran ast.parse in two threads, which CPython 3.11 can fail ("SystemError: AST constructor
    recursion depth mismatch"; a learned method's register batch hit it).
    """
    with _LOCK:
        return _fingerprint(stage, engine)


@lru_cache(maxsize=None)
def _fingerprint(stage: str, engine: str) -> str:
    units, libs = covered(stage, engine)
    h = hashlib.sha1()
    for digest in sorted({hashlib.sha1(code).hexdigest() for sources in units.values() for code in sources if code}):
        h.update(digest.encode())  # by content alone: where a unit lives (its module's name) is not hashed
    for dist in sorted({d for d in map(_distribution, libs) if d}):
        h.update(f"{dist}=={_version(dist)}".encode())
    return f"{__version__}+{h.hexdigest()[:10]}"
