"""Sample sheets for the public labelled datasets as laid out in ``../shared/data`` (see its README).

Used by the benchmarks and the real-data tests; a study with the same public data can use them too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

SHARED_DATA = Path(os.environ.get("COHORTREG_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))

COHORTS = {
    # cohort: (folder, subject ids in order (the first is the reference), label file)
    "lpba40": ("lpba40", [f"S{i:02d}" for i in range(1, 21)], "labels_lpba56.nii.gz"),
    "oasis": ("oasis-trt-20", [f"{i:02d}" for i in range(1, 13)], "labels_dkt31_aseg.nii.gz"),
    # full heads with skull and neck (Philips 3T), automated DLMUSE labels
    "ixi": ("ixi", ["IXI614", "IXI631", "IXI632", "IXI633", "IXI634", "IXI635", "IXI636", "IXI637", "IXI638", "IXI643",
                    "IXI646", "IXI661"], "labels_dlmuse.nii.gz"),
}
T1_FILE = {"ixi": "t1w_head.nii.gz"}  # the others: t1w_brain.nii.gz (skull-stripped)


def available(root: Path = SHARED_DATA) -> bool:
    return (root / "lpba40").is_dir() and (root / "oasis-trt-20").is_dir()


def subject_files(cohort: str, subject: str, root: Path = SHARED_DATA) -> tuple[Path, Path]:
    """(T1 brain, label map) of one subject of a named cohort in the shared layout."""
    folder, _ids, lab = COHORTS[cohort]
    d = root / folder / f"sub-{subject}"
    return d / T1_FILE.get(cohort, "t1w_brain.nii.gz"), d / lab


def write_sheet(path: str | Path, cohorts: dict[str, int | list[str]], root: Path = SHARED_DATA,
                split: Callable[[str, str], str] | None = None) -> Path:
    """A sheet with the first n subjects of each named cohort (the first one is the reference), or
    the listed subject ids; with ``split``, a split column of split(cohort, subject)."""
    rows = ["cohort\tsubject\tt1\tlabels" + ("\tsplit" if split else "")]
    for cohort, n in cohorts.items():
        ids = COHORTS[cohort][1]
        for sid in (ids[:n] if isinstance(n, int) else n):
            t1, labels = subject_files(cohort, sid, root)
            rows.append(f"{cohort}\t{sid}\t{t1}\t{labels}" + (f"\t{split(cohort, sid)}" if split else ""))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path
