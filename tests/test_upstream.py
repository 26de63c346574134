"""cohortreg.upstream: a downstream job's record of what it read decides whether its batch manifests are
ancient (no data needed; the workflow-level cases are in tests/test_rerun_matrix.py)."""

import os

from cohortreg.upstream import raw_files, record, record_path, unchanged


def test_an_output_is_unchanged_only_while_its_record_matches_what_it_reads(tmp_path):
    scan = tmp_path / "t1.nii.gz"
    scan.write_bytes(b"scan one")
    out = tmp_path / "model.pt"
    data = lambda: {"raw": raw_files([("c", "01", {"t1": str(scan), "labels": ""})]), "settings": {"spacing": 2}}  # noqa: E731
    assert not unchanged(str(out), data()), "no output, no record"
    out.write_text("weights")
    assert not unchanged(str(out), data()), "an output without a record (made before records existed)"
    record(str(out), data())
    assert os.path.exists(record_path(str(out))) and unchanged(str(out), data())
    assert not unchanged(str(out), {**data(), "settings": {"spacing": 1}}), "a changed setting"
    scan.write_bytes(b"another subject's scan")
    assert not unchanged(str(out), data()), "a replaced scan (its size and mtime)"
    record(str(out), data())
    out.unlink()
    assert not unchanged(str(out), data()), "a record whose output is gone"


def test_raw_files_name_each_subjects_files_and_a_missing_one():
    files = raw_files([("c", "01", {"t1": "/no/such.nii.gz", "labels": "", "mask": None})])
    assert files == {"c/01/t1": ["/no/such.nii.gz", None, None]}
