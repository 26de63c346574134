"""The sample-sheet contract: columns, ids, paths, BIDS roots, designs."""

import pytest

from cohortreg.sheet.samples import SheetError, design_pairs, missing_files, read_sheet


def write(tmp_path, text, name="samples.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_relative_paths_resolve_against_the_sheet_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.nii.gz").write_bytes(b"")
    sheet = read_sheet(write(tmp_path, "cohort\tsubject\tt1\nc1\tA-1\tdata/a.nii.gz\n"))
    assert sheet.iloc[0]["t1"] == str(tmp_path / "data" / "a.nii.gz")
    assert sheet.iloc[0]["labels"] == "" and sheet.iloc[0]["split"] == ""


@pytest.mark.parametrize("bad", ["S 01", "S01/../x", "sub.01", "S01$", "é"])
def test_odd_subject_ids_are_refused_naming_the_line(tmp_path, bad):
    p = write(tmp_path, f"cohort\tsubject\tt1\nc\tok1\ta.nii\nc\t{bad}\tb.nii\n")
    with pytest.raises(SheetError, match=r"line 3 .*subject"):
        read_sheet(p)


def test_duplicate_subject_and_missing_column_are_refused(tmp_path):
    with pytest.raises(SheetError, match=r"lines 2, 3: subject 'A' is listed more than once"):
        read_sheet(write(tmp_path, "cohort\tsubject\tt1\nc\tA\ta.nii\nc\tA\tb.nii\n"))
    with pytest.raises(SheetError, match=r"missing column\(s\) \['t1'\]"):
        read_sheet(write(tmp_path, "cohort\tsubject\nc\tA\n", "s2.tsv"))
    with pytest.raises(SheetError, match="does not exist"):
        read_sheet(tmp_path / "nope.tsv")


def test_missing_files_are_reported_not_refused(tmp_path):
    sheet = read_sheet(write(tmp_path, "cohort\tsubject\tt1\tlabels\nc\tA\ta.nii\t\n"))
    msgs = missing_files(sheet)
    assert len(msgs) == 1 and "c/A: t1 file" in msgs[0] and "a.nii" in msgs[0]


def test_bids_root_is_a_cohort(tmp_path):
    root = tmp_path / "mystudy"
    for sub, ses in (("01", None), ("02", "1"), ("02", "2")):
        d = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "anat"
        d.mkdir(parents=True)
        name = f"sub-{sub}" + (f"_ses-{ses}" if ses else "") + "_T1w.nii.gz"
        (d / name).write_bytes(b"")
    (root / "sub-01" / "anat" / "sub-01_T2w.nii.gz").write_bytes(b"")
    sheet = read_sheet(root)
    assert list(sheet["subject"]) == ["01", "02_ses-1", "02_ses-2"]
    assert set(sheet["cohort"]) == {"mystudy"}
    assert sheet.iloc[0]["t1"].endswith("sub-01/anat/sub-01_T1w.nii.gz")


def bids_tree(root, names):
    for rel in names:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.8.0"}')


def test_bids_entities_sessions_runs_and_participants(tmp_path):
    root = tmp_path / "study"
    bids_tree(root, ["sub-10/ses-2/anat/sub-10_ses-2_T1w.nii.gz", "sub-10/ses-1/anat/sub-10_ses-1_T1w.nii.gz",
                     "sub-2/ses-1/anat/sub-2_ses-1_run-1_T1w.nii.gz", "sub-2/ses-1/anat/sub-2_ses-1_run-2_T1w.nii.gz",
                     "sub-10/ses-1/anat/sub-10_ses-1_acq-fast_T1w.nii.gz"])
    (root / "participants.tsv").write_text("participant_id\tsite\tage\nsub-10\tsiteB\t31\nsub-2\tsiteA\t40\n")
    # several images for one subject and session: named, with the filters that pick one
    with pytest.raises(SheetError) as exc:
        read_sheet(root)
    msg = str(exc.value)
    assert "sub-2 ses-1: 2 T1w images (sub-2_ses-1_run-1_T1w.nii.gz, sub-2_ses-1_run-2_T1w.nii.gz)" in msg
    assert "sub-10 ses-1: 2 T1w images" in msg and "bids: {acq" in msg
    (root / "sub-10/ses-1/anat/sub-10_ses-1_acq-fast_T1w.nii.gz").unlink()
    # run 2 picks sub-2's image; sub-10 has no run entity and keeps its own. Sorted as BIDS orders
    # subjects (2 before 10), sessions kept on the subject, participants.tsv's columns joined.
    sheet = read_sheet(root, bids={"run": 2, "cohort_column": "site"})
    assert list(sheet["subject"]) == ["2_ses-1", "10_ses-1", "10_ses-2"]
    assert list(sheet["cohort"]) == ["siteA", "siteB", "siteB"] and list(sheet["age"]) == ["40", "31", "31"]
    assert list(sheet["session"]) == ["1", "1", "2"] and sheet.iloc[0]["t1"].endswith("sub-2_ses-1_run-2_T1w.nii.gz")
    sheet = read_sheet(root, bids={"ses": "2"})
    assert list(sheet["subject"]) == ["10_ses-2"] and set(sheet["cohort"]) == {"study"}


def test_reference_design_and_configured_reference(tmp_path):
    sheet = read_sheet(write(tmp_path, "cohort\tsubject\tt1\na\t1\tx\na\t2\tx\na\t3\tx\nb\t9\tx\nb\t8\tx\n"))
    pairs = design_pairs(sheet, "reference")
    assert [(p.cohort, p.moving, p.fixed) for p in pairs] == [("a", "2", "1"), ("a", "3", "1"), ("b", "8", "9")]
    pairs = design_pairs(sheet, "reference", {"a": "3"})
    assert ("a", "1", "3") in [(p.cohort, p.moving, p.fixed) for p in pairs]
    with pytest.raises(SheetError, match="reference '7' for cohort 'a'"):
        design_pairs(sheet, "reference", {"a": "7"})


def test_pairwise_design_checks_subjects(tmp_path):
    sheet = read_sheet(write(tmp_path, "cohort\tsubject\tt1\na\t1\tx\na\t2\tx\n"))
    ok = write(tmp_path, "cohort\tmoving\tfixed\na\t1\t2\na\t2\t1\n", "pairs.tsv")
    assert len(design_pairs(sheet, "pairwise", pairs_path=str(ok))) == 2
    bad = write(tmp_path, "cohort\tmoving\tfixed\na\t1\t5\n", "bad.tsv")
    with pytest.raises(SheetError, match="line 2: a/5 is not in the sample sheet"):
        design_pairs(sheet, "pairwise", pairs_path=str(bad))


def test_a_bad_row_deep_in_a_large_sheet_is_named(tmp_path):
    """Validation is column-wise for speed; the rows it flags still get jsonschema's own message."""
    rows = [f"c{i % 3}\ts{i:05d}\ta.nii\t\t\ttrain" for i in range(5000)]
    rows[4321] = "c1\ts04321\t\t\t\ttrain"          # empty t1
    rows[4500] = "c2\ts04500\ta.nii\t\t\tval idation"  # split with a space
    sheet = write(tmp_path, "cohort\tsubject\tt1\tlabels\tmask\tsplit\n" + "\n".join(rows) + "\n")
    with pytest.raises(SheetError, match=r"2 problem\(s\)") as err:
        read_sheet(sheet)
    assert "line 4323 (c1/s04321): t1" in str(err.value) and "line 4502 (c2/s04500): split" in str(err.value)
