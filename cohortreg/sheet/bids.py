"""A BIDS dataset as a sample sheet, through pybids (the field's BIDS library), not a glob.

One row per subject and session: the session stays an entity of the subject (subject id
``{sub}_ses-{ses}``, column ``session``), rows are sorted by subject then session (so the default
reference is the first subject in BIDS order, not whichever the disk listed first), several T1w
images for one subject and session are an error that lists them and names the filters that pick
one (``bids: {acq, run, ses, space}``), and ``participants.tsv`` columns join the sheet (with
``bids.cohort_column`` naming the one that becomes the cohort).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError

FILTERS = ("acq", "run", "ses", "space")
_ENTITY = {"acq": "acquisition", "run": "run", "ses": "session", "space": "space"}


class BidsError(InputError):
    """The dataset cannot be read as one image per subject and session."""


def bids_to_sheet(root: Path, settings: dict[str, Any] | None = None) -> pd.DataFrame:
    """Rows cohort, subject, t1 (relative to root), session and participants.tsv's columns.

    settings: config 'bids': acq/run/ses/space filters ('' or absent: any) and cohort_column
    ('' : the dataset folder's name is the cohort).
    """
    from bids.layout import BIDSLayout, Query  # imported here: 1 s, and only a BIDS input needs it

    settings = dict(settings or {})
    root = Path(root).resolve()
    layout = BIDSLayout(str(root), validate=False, derivatives=False)
    # A filter picks among a subject's images; a subject whose images lack that entity keeps them.
    query: dict[str, Any] = {_ENTITY[k]: [_value(k, settings[k]), Query.NONE] for k in FILTERS
                             if settings.get(k) not in (None, "")}
    files = layout.get(suffix="T1w", datatype="anat", extension=[".nii", ".nii.gz"], return_type="object", **query)
    picked = ", ".join(f"{k}={settings[k]}" for k in FILTERS if settings.get(k) not in (None, "")) or "no filter"
    if not files:
        raise BidsError(None, str(root), f"BIDS dataset has no sub-*/[ses-*/]anat/*_T1w.nii[.gz] ({picked})")
    groups: dict[tuple[str, str], list[Any]] = {}
    for f in files:
        ent = f.get_entities()
        groups.setdefault((str(ent["subject"]), str(ent.get("session", ""))), []).append(f)
    problems = []
    for (sub, ses), fs in sorted(groups.items()):
        if len(fs) > 1:
            names = ", ".join(sorted(Path(f.path).name for f in fs))
            problems.append(f"sub-{sub}" + (f" ses-{ses}" if ses else "") + f": {len(fs)} T1w images ({names})")
    if problems:
        raise BidsError(None, str(root), "several T1w images match one subject and session ("
                        + picked + "); choose one with config bids: {acq: ..., run: ..., ses: ..., space: ...}:\n  "
                        + "\n  ".join(problems))
    cohort = settings.get("cohort_column") or ""
    rows = []
    for (sub, ses), (f,) in sorted(groups.items(), key=lambda kv: (_natural(kv[0][0]), _natural(kv[0][1]))):
        rows.append({"subject": f"{sub}_ses-{ses}" if ses else sub, "t1": str(Path(f.path).relative_to(root)),
                     "session": ses, "participant_id": f"sub-{sub}"})
    table = pd.DataFrame(rows, dtype=str)
    participants = root / "participants.tsv"
    if participants.exists():
        extra = pd.read_csv(participants, sep="\t", dtype=str, keep_default_na=False)
        if "participant_id" in extra.columns:
            extra = extra.drop(columns=[c for c in ("subject", "t1", "session", "cohort") if c in extra.columns and c != cohort])
            table = table.merge(extra, on="participant_id", how="left").fillna("")
    if cohort:
        if cohort not in table.columns:
            raise BidsError(None, str(participants), f"bids.cohort_column {cohort!r} is not a column of participants.tsv")
        table["cohort"] = table.pop(cohort) if cohort != "cohort" else table["cohort"]
    else:
        table["cohort"] = re.sub(r"[^A-Za-z0-9_-]", "_", root.name)
    return table


def _value(key: str, value: Any) -> Any:
    return int(value) if key == "run" and str(value).isdigit() else str(value)


def _natural(text: str) -> tuple:
    """sub-2 before sub-10; ids of digits and letters compare piece by piece."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))
