"""What a job downstream of batch manifests was made from, so that a batch rerun for other subjects reruns it
only when what it reads changed.

A batch job rewrites its manifest whenever it runs, also when it only added a new subject and kept every
other item; a job that reads the manifest (a model's training, a template round's registrations) would
then rerun although none of its subjects changed: appending three test subjects rebuilt a whole template.
Marking the manifest ``ancient`` alone is not enough either: Snakemake (9.x, ``dag.py``) never checks the
params of a job whose upstream job must run when all the files it takes from it are ancient, so a replaced
training scan kept the model trained on the old one.

So such a job records, beside its output, the identity of the data it read (each of its subjects' raw files
by path, size and mtime, and the settings and code of the stages that made its files from them). Its
manifests are ancient only while that identity is the one recorded; a changed subject makes them normal
inputs again, and the rerun of their batch reruns the job.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Iterable, Mapping

from .io import file_identity, write_text_atomic

RAW_COLUMNS = ("t1", "labels", "mask")


def raw_files(rows: Iterable[tuple[str, str, Mapping[str, Any]]]) -> dict[str, list[Any]]:
    """{cohort/subject/column: [path, size, mtime in ns]} of each (cohort, subject, sheet row)'s raw files."""
    return {f"{cohort}/{subject}/{k}": file_identity(row[k]) for cohort, subject, row in rows
            for k in RAW_COLUMNS if row.get(k)}


def identity(data: Mapping[str, Any]) -> str:
    """A short digest of what a job read (raw files, settings, code: ``data``)."""
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def record_path(output: str) -> str:
    """Where the job that wrote ``output`` records what it was made from."""
    return f"{output}.upstream"


def unchanged(output: str, data: Mapping[str, Any]) -> bool:
    """Whether ``output`` exists and was made from exactly ``data`` (its record says so)."""
    try:
        with open(record_path(output)) as fh:
            recorded = json.load(fh).get("identity")
    except (OSError, ValueError):
        return False
    return recorded == identity(data) and os.path.exists(output)


def record(output: str, data: Mapping[str, Any]) -> None:
    """Written by the job once ``output`` is made (after success only)."""
    write_text_atomic(json.dumps({"identity": identity(data)}) + "\n", record_path(output))
