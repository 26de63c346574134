"""The sample-sheet contract: columns cohort, subject, t1 and optional labels, mask, split.

A sheet is validated row by row before the DAG is built, so a bad id is refused at start with
the row that holds it. Missing files are only reported here: the subject's own job fails with
a clear error later, and with ``--keep-going`` every other subject still finishes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import yaml

from ..errors import InputError

OPTIONAL_COLUMNS = ("labels", "mask", "split")
# Inside the package, so a wheel or `pip install .` has them; config/schemas/ links here.
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "resources" / "schemas"


class SheetError(ValueError):
    """The sample sheet itself is wrong (refused before any job runs)."""


@dataclass(frozen=True)
class Pair:
    cohort: str
    moving: str
    fixed: str


def load_schema(name: str, schema_dir: Path | None = None) -> dict[str, Any]:
    with open((schema_dir or SCHEMA_DIR) / f"{name}.schema.yaml") as fh:
        return yaml.safe_load(fh)


def _resolve(path: str, base: Path) -> str:
    """Absolute and normalised, symlinks kept as written (realpath per row costs seconds at 20,000)."""
    if not path:
        return ""
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


_VECTORISED = {"type", "pattern", "minLength", "maxLength", "enum", "description"}


def _suspect_rows(table: pd.DataFrame, schema: dict[str, Any]) -> np.ndarray:
    """Rows that may break the schema, found column-wise (every cell is a string here).

    jsonschema costs ~0.4 ms a row: 8 s at 20,000 subjects. The simple keywords of the sheet's
    schema are checked on whole columns instead, and only the rows they flag (or every row, for a
    keyword not handled here) go through jsonschema, which words the messages.
    """
    bad = np.zeros(len(table), bool)
    for col, prop in schema.get("properties", {}).items():
        if col not in table.columns:
            continue
        if set(prop) - _VECTORISED or prop.get("type", "string") != "string":
            return np.ones(len(table), bool)
        v = table[col]
        if "pattern" in prop:  # jsonschema's pattern is re.search
            rx = re.compile(prop["pattern"])
            bad |= np.array([rx.search(x) is None for x in v], bool)
        if "minLength" in prop:
            bad |= (v.str.len() < prop["minLength"]).to_numpy()
        if "maxLength" in prop:
            bad |= (v.str.len() > prop["maxLength"]).to_numpy()
        if "enum" in prop:
            bad |= ~v.isin(prop["enum"]).to_numpy()
    return bad


def read_sheet(path: str | os.PathLike, schema_dir: Path | None = None, bids: dict[str, Any] | None = None
               ) -> pd.DataFrame:
    """Read a TSV sheet or a BIDS dataset root into a validated table indexed by (cohort, subject).

    bids: config 'bids' (entity filters and the participants.tsv column that is the cohort)."""
    path = Path(path)
    if path.is_dir():
        from .bids import BidsError, bids_to_sheet

        try:
            table = bids_to_sheet(path, bids)
        except BidsError as exc:
            raise SheetError(str(exc)) from None
        base = path
        source = f"BIDS dataset {path}"
    else:
        if not path.exists():
            raise SheetError(f"sample sheet {str(path)!r} does not exist")
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment=None)
        table.columns = [c.strip() for c in table.columns]
        base = path.resolve().parent
        source = f"sample sheet {str(path)!r}"
    return validate_sheet(table, base, source, load_schema("samples", schema_dir))


def validate_sheet(table: pd.DataFrame, base: Path, source: str, schema: dict[str, Any]) -> pd.DataFrame:
    missing = [c for c in schema["required"] if c not in table.columns]
    if missing:
        raise SheetError(f"{source}: missing column(s) {missing}; required: {schema['required']}")
    if table.empty:
        raise SheetError(f"{source}: no subjects listed")
    table = table.copy()
    for col in OPTIONAL_COLUMNS:
        if col not in table.columns:
            table[col] = ""
    for col in table.columns:
        table[col] = table[col].astype(str).str.strip()
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    # Line numbers as a person sees them in an editor: the header is line 1.
    suspect = _suspect_rows(table, schema)
    for i, row in ((i, r) for i, r in enumerate(table.to_dict("records")) if suspect[i]):
        for err in validator.iter_errors(row):
            field = ".".join(str(p) for p in err.absolute_path) or "row"
            problems.append(f"line {i + 2} ({row.get('cohort', '')}/{row.get('subject', '')}): {field}: {err.message}")
    dup = table.duplicated(["cohort", "subject"], keep=False)
    for (cohort, subject), grp in table[dup].groupby(["cohort", "subject"]):
        lines = ", ".join(str(i + 2) for i in grp.index)
        problems.append(f"lines {lines}: subject {subject!r} is listed more than once in cohort {cohort!r}")
    if problems:
        raise SheetError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    for col in ("t1", "labels", "mask"):
        table[col] = [_resolve(p, base) for p in table[col]]
    table.index = pd.MultiIndex.from_frame(table[["cohort", "subject"]], names=["cohort_", "subject_"])
    return table


def missing_files(table: pd.DataFrame) -> list[str]:
    """Listed files that do not exist (a stat per file: cheap even for 20,000 subjects)."""
    out = []
    for row in table.itertuples(index=False):
        for col in ("t1", "labels", "mask"):
            p = getattr(row, col)
            if p and not os.path.exists(p):
                out.append(f"{row.cohort}/{row.subject}: {col} file {p!r} does not exist")
    return out


def references(table: pd.DataFrame, chosen: dict[str, str] | None = None) -> dict[str, str]:
    """Each cohort's reference: the subject named in config, else the first listed."""
    chosen = chosen or {}
    out = {}
    for cohort, grp in table.groupby("cohort", sort=False):
        ref = chosen.get(cohort, grp["subject"].iloc[0])
        if ref not in set(grp["subject"]):
            raise SheetError(f"reference {ref!r} for cohort {cohort!r} is not a subject of that cohort in the sheet")
        out[cohort] = ref
    unknown = set(chosen) - set(out)
    if unknown:
        raise SheetError(f"config 'reference' names cohort(s) not in the sheet: {sorted(unknown)}")
    return out


TEMPLATE_PREFIX = "tpl-"  # a fixed "subject" named tpl-{name} is a built template (design: template)


def design_pairs(table: pd.DataFrame, design: str, reference: dict[str, str] | None = None,
                 pairs_path: str | None = None, template: str | None = None) -> list[Pair]:
    """The registrations to run: every subject to its cohort's reference, an explicit pairs TSV, or
    every subject to the built template tpl-{template} (design: template)."""
    if design == "template":
        if not template:
            raise SheetError("design 'template' needs template.name (the built template to register to)")
        return [Pair(r.cohort, r.subject, TEMPLATE_PREFIX + template) for r in table.itertuples(index=False)]
    if design == "reference":
        refs = references(table, reference)
        return [Pair(r.cohort, r.subject, refs[r.cohort]) for r in table.itertuples(index=False)
                if r.subject != refs[r.cohort]]
    if design == "pairwise":
        if not pairs_path:
            raise SheetError("design 'pairwise' needs config key 'pairs' (a TSV with columns cohort, moving, fixed)")
        pt = pd.read_csv(pairs_path, sep="\t", dtype=str, keep_default_na=False)
        need = {"cohort", "moving", "fixed"}
        if not need <= set(pt.columns):
            raise SheetError(f"pairs file {pairs_path!r}: needs columns {sorted(need)}, has {list(pt.columns)}")
        known = set(zip(table["cohort"], table["subject"]))
        out, problems = [], []
        for i, r in enumerate(pt.itertuples(index=False)):
            for s in (r.moving, r.fixed):
                if (r.cohort, s) not in known:
                    problems.append(f"line {i + 2}: {r.cohort}/{s} is not in the sample sheet")
            if r.moving == r.fixed:
                problems.append(f"line {i + 2}: moving and fixed are the same subject {r.moving!r}")
            out.append(Pair(r.cohort, r.moving, r.fixed))
        if problems:
            raise SheetError(f"pairs file {pairs_path!r}:\n  " + "\n  ".join(problems))
        return list(dict.fromkeys(out))
    raise SheetError(f"unknown design {design!r}: use 'reference', 'pairwise' or 'template'")


class SubjectIndex:
    """(cohort, subject) -> that row as a dict: the DAG asks once per job, so a dict, not DataFrame.loc
    (which costs ~50 us a call: seconds on a 20,000-subject sheet)."""

    def __init__(self, table: pd.DataFrame) -> None:
        self._rows = dict(zip(table.index, table.to_dict("records")))

    def __call__(self, cohort: str, subject: str) -> dict:
        try:
            return self._rows[(cohort, subject)]
        except KeyError as exc:
            raise InputError(subject, None, f"not in the sample sheet for cohort {cohort!r}") from exc
