"""Atlas labelling (cohortreg.labelling): fusion, volumes, the plan's choices and errors, and on real scans
a small study whose every subject gets labels on its own grid, with the reruns the README documents."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohortreg.labelling.fusion import local_weights, vote
from cohortreg.labelling.plan import LabellingPlan
from cohortreg.labelling.volumes import accuracy, region_volumes
from cohortreg.paths import Layout
from cohortreg.sheet.datasets import SHARED_DATA
from cohortreg.sheet.samples import SheetError
from tests.conftest import needs_shared_data, planned_jobs, run_snakemake

L = Layout("OUT")


def sheet(rows):
    """rows: (cohort, subject, labelled)."""
    table = pd.DataFrame([{"cohort": c, "subject": s, "t1": f"{c}{s}.nii.gz", "labels": f"{c}{s}_l.nii.gz" if lab else "",
                           "mask": "", "split": ""} for c, s, lab in rows])
    table.index = pd.MultiIndex.from_frame(table[["cohort", "subject"]], names=["cohort_", "subject_"])
    return table


def test_fused_labels_of_identical_atlases_are_each_atlas_and_agree_everywhere():
    rng = np.random.default_rng(0)
    atlas = rng.integers(0, 7, size=(12, 10, 8)).astype(np.int32)
    fused, agreement = vote([atlas.copy() for _ in range(5)])
    assert np.array_equal(fused, atlas) and np.all(agreement == 1.0)
    weights = local_weights(rng.random((12, 10, 8)), [rng.random((12, 10, 8)) for _ in range(5)], 1.0)
    fused_w, agreement_w = vote([atlas.copy() for _ in range(5)], weights)
    assert np.array_equal(fused_w, atlas) and np.allclose(agreement_w, 1.0)


def test_joint_label_fusion_keeps_the_background_inside_the_mask():
    """antspyx's joint_label_fusion, left to its defaults, gives every voxel of the mask a structure's label
    (no probability for the background): K identical atlases would come back with no background at all."""
    import ants

    from cohortreg.labelling.fusion import joint_label_fusion

    rng = np.random.default_rng(0)
    image = rng.random((16, 16, 16)).astype(np.float32)
    atlas = np.zeros(image.shape, np.float32)
    atlas[3:8, 3:13, 3:13], atlas[8:13, 3:13, 3:13] = 3, 7  # two structures in a mask-wide background
    mask = ants.from_numpy(np.ones(image.shape, np.float32))
    images = [ants.from_numpy(image.copy()) for _ in range(3)]
    labels = [ants.from_numpy(atlas.copy()) for _ in range(3)]
    fused, agreement = joint_label_fusion(ants.from_numpy(image), mask, images, labels, {"r_search": 1})
    assert np.array_equal(fused, atlas.astype(np.int32)) and np.all(agreement == 1.0)
    assert all(np.array_equal(lab.numpy(), atlas) for lab in labels)  # the caller's label images untouched
    # a mask with no voxel where all atlases vote for the background: antspyx would take the highest
    # structure (7) for the background and drop it; that is an error, never a silent loss
    with pytest.raises(RuntimeError, match=r"lost labels \[7\]"):
        joint_label_fusion(ants.from_numpy(image), ants.from_numpy((atlas > 0).astype(np.float32)), images, labels,
                           {"r_search": 1})


def test_majority_vote_and_agreement_on_a_hand_made_case():
    a = np.array([[1, 1, 2, 0]])
    b = np.array([[1, 2, 2, 0]])
    c = np.array([[1, 2, 3, 3]])
    fused, agreement = vote([a, b, c])
    assert fused.tolist() == [[1, 2, 2, 0]]  # the last voxel: 0, 0, 3 -> 0
    assert np.allclose(agreement, [[1, 2 / 3, 2 / 3, 2 / 3]])
    # a weight that trusts the third atlas where it disagrees
    w = [np.ones((1, 4)), np.ones((1, 4)), np.array([[1, 1, 5, 5]])]
    assert vote([a, b, c], w)[0].tolist() == [[1, 2, 3, 3]]


def test_volumes_match_a_hand_count_and_accuracy_is_exact_on_a_known_case():
    labels = np.zeros((10, 10, 10), np.int32)
    labels[:2] = 4        # 200 voxels
    labels[5, :5, :] = 9  # 50 voxels
    agreement = np.ones(labels.shape, np.float32)
    agreement[5] = 0.5
    vols = region_volumes(labels, voxel_ml=0.008, agreement=agreement)  # 2 mm voxels
    assert vols.keys() == {4, 9}
    assert vols[4] == pytest.approx((1.6, 1.0)) and vols[9] == pytest.approx((0.4, 0.5))
    manual = labels.copy()
    manual[0] = 0  # label 4 has 100 voxels by hand; the fused map says 200
    rows = {r["label"]: r for r in accuracy(labels, manual, 0.001)}
    assert rows[9]["dice"] == 1.0 and rows[9]["volume_error_pct"] == 0.0
    assert rows[4]["dice"] == pytest.approx(2 * 100 / 300) and rows[4]["volume_error_pct"] == pytest.approx(100.0)


def test_every_subject_is_labelled_from_its_protocols_pool_never_from_its_own_labels():
    table = sheet([("a", f"{i:02d}", True) for i in range(6)] + [("a", "new", False)] +
                  [("b", f"{i:02d}", True) for i in range(4)] + [("c", "x", False)])
    plan = LabellingPlan.build({"atlases": 3}, table, L)
    assert plan.protocols == ["a", "b"] and len(plan.jobs()) == 12 * 2  # every subject, every protocol
    assert plan.candidates("a", "00", "a") == ["01", "02", "03"]  # leave-one-out: not itself
    assert plan.candidates("a", "new", "a") == ["00", "01", "02"]
    assert plan.candidates("c", "x", "b") == ["00", "01", "02"]  # another cohort: b's atlases, never mixed
    for c, s, p in plan.jobs():
        assert not (plan.cohort_of[p] == c and s in plan.candidates(c, s, p)), (c, s, p)
    assert plan.leave_one_out("a", "00", "a") and not plan.leave_one_out("a", "new", "a")
    assert not plan.leave_one_out("b", "00", "a")
    similar = LabellingPlan.build({"atlases": 3, "select": "similarity"}, table, L)
    assert similar.candidates("a", "00", "a") == ["01", "02", "03", "04", "05"]  # the job picks 3 of them
    assert LabellingPlan.build({"atlases": 3, "cohorts": ["b"]}, table, L).protocols == ["b"]
    assert not LabellingPlan.build({"atlases": 0}, table, L).on
    assert plan.outputs("c", "x", "b")["dseg"] == "OUT/c/sub-x/anat/sub-x_atlas-b_dseg.nii.gz"


def test_too_few_atlases_or_a_cohort_without_labels_is_a_clear_error_at_start():
    table = sheet([("a", f"{i:02d}", True) for i in range(5)] + [("c", "x", False)])
    with pytest.raises(SheetError, match=r"cohort 'a' has 5 labelled subjects; atlases: 5 needs at least 6"):
        LabellingPlan.build({"atlases": 5}, table, L)
    with pytest.raises(SheetError, match=r"labelling.cohorts: \['c'\] have no labelled subjects.*'c': 1"):
        LabellingPlan.build({"atlases": 2, "cohorts": ["c"]}, table, L)
    with pytest.raises(SheetError, match="labelling.fusion"):
        LabellingPlan.build({"atlases": 2, "fusion": "staple"}, table, L)


# A small real study at 4 mm: six LPBA40 atlases, an unlabelled LPBA40 subject and an unlabelled OASIS one
# (another site: it gets LPBA40's protocol too), eight subjects, so a local run batches them (the default).
LAB_CONFIG = """preprocess:
  spacing: 4.0
labelling:
  atlases: 2
method_params:
  torch: {preset: fast}
"""


def lab_sheet(d, extra=()):
    rows = ["cohort\tsubject\tt1\tlabels"]
    for s in ("S01", "S02", "S03", "S04", "S05", "S06"):
        rows.append(f"lpba40\t{s}\t{SHARED_DATA}/lpba40/sub-{s}/t1w_brain.nii.gz\t"
                    f"{SHARED_DATA}/lpba40/sub-{s}/labels_lpba56.nii.gz")
    rows.append(f"lpba40\tS07\t{SHARED_DATA}/lpba40/sub-S07/t1w_brain.nii.gz\t")
    rows.append(f"oasis\t01\t{SHARED_DATA}/oasis-trt-20/sub-01/t1w_brain.nii.gz\t")
    rows += list(extra)
    (d / "samples.tsv").write_text("\n".join(rows) + "\n")


def lab_run(d, *extra):
    return run_snakemake("--cores", "2", "--configfile", d / "cfg.yaml", "--config", f"samples={d / 'samples.tsv'}",
                         f"outdir={d / 'out'}", "methods=[affine]", *extra, cwd=d)


@pytest.fixture(scope="module")
def labelled_study(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelling")
    (d / "cfg.yaml").write_text(LAB_CONFIG)
    lab_sheet(d)
    r = lab_run(d)
    assert r.returncode == 0, r.stderr[-4000:]
    return d


@needs_shared_data
@pytest.mark.realdata
@pytest.mark.workflow
def test_every_subject_gets_its_protocols_labels_on_its_own_grid(labelled_study):
    d = labelled_study
    protocol = set()
    for s in ("S01", "S02", "S03", "S04", "S05", "S06"):
        protocol |= set(np.unique(np.asarray(nib.load(SHARED_DATA / "lpba40" / f"sub-{s}" / "labels_lpba56.nii.gz").dataobj)))
    for cohort, s, raw in (("lpba40", "S07", SHARED_DATA / "lpba40" / "sub-S07" / "t1w_brain.nii.gz"),
                           ("oasis", "01", SHARED_DATA / "oasis-trt-20" / "sub-01" / "t1w_brain.nii.gz")):
        t1 = nib.load(raw)
        dseg = nib.load(d / "out" / cohort / f"sub-{s}" / "anat" / f"sub-{s}_atlas-lpba40_dseg.nii.gz")
        agree = nib.load(d / "out" / cohort / f"sub-{s}" / "anat" / f"sub-{s}_atlas-lpba40_desc-agreement_probseg.nii.gz")
        assert dseg.shape == t1.shape[:3] and np.allclose(dseg.affine, t1.affine), "on the subject's own input grid"
        values = set(np.unique(np.asarray(dseg.dataobj)))
        assert len(values) > 40 and values <= protocol, "only the protocol's labels, most of them"
        a = np.asarray(agree.dataobj)
        assert a.min() >= 0 and a.max() == 1.0
        assert not (d / "out" / cohort / f"sub-{s}" / "anat" / f"sub-{s}_atlas-oasis_dseg.nii.gz").exists()
    volumes = pd.read_csv(d / "out" / "metrics" / "volumes.tsv", sep="\t", dtype=str)
    assert set(volumes["status"]) == {"ok"} and set(volumes["protocol"]) == {"lpba40"}
    assert set(zip(volumes["cohort"], volumes["subject"])) == {("lpba40", f"S0{i}") for i in range(1, 8)} | {("oasis", "01")}
    brain = volumes[(volumes["subject"] == "S07") & (volumes["label"] == "brain_mask")]["volume_ml"].astype(float)
    assert 900 < float(brain.iloc[0]) < 2000, "a brain's volume in mL"
    # leave-one-out: a labelled subject is labelled from the other atlases only, and measured against its own labels
    for s in ("S01", "S02", "S03", "S04", "S05", "S06"):
        used = set(volumes[volumes["subject"] == s]["atlases"].iloc[0].split(","))
        assert s not in used and len(used) == 2
    acc = pd.read_csv(d / "out" / "metrics" / "labelling.tsv", sep="\t", dtype={"subject": str})
    assert set(acc["subject"]) == {"S01", "S02", "S03", "S04", "S05", "S06", "ALL"}
    assert (d / "out" / "report" / "labelling.png").stat().st_size > 10000, "the report's Regional volumes picture"
    summary = acc[acc["subject"] == "ALL"]
    assert len(summary) == 1 and 0.55 < float(summary["dice"].iloc[0]) < 1.0


@needs_shared_data
@pytest.mark.realdata
@pytest.mark.workflow
def test_appended_subjects_are_labelled_without_relabelling_the_others(labelled_study):
    """A labelled subject appended (select: first): the pool grows, but every subject keeps its first K
    atlases, so only the new subject's labelling runs (its cohort's labelling batch reruns, keeping the other
    subjects' items); the other cohort's labelling does not run at all. (An unlabelled subject changes less.)"""
    d = labelled_study
    lab_sheet(d, [f"lpba40\tS08\t{SHARED_DATA}/lpba40/sub-S08/t1w_brain.nii.gz\t"
                  f"{SHARED_DATA}/lpba40/sub-S08/labels_lpba56.nii.gz"])
    try:
        r = lab_run(d, "-n")
        assert r.returncode == 0, r.stderr[-3000:]
        jobs = planned_jobs(r.stdout)
        labelling = [(w["cohort"], w.get("subject", w.get("batch"))) for rule, w in jobs if rule.startswith("label_")]
        assert [c for c, _ in labelling] == ["lpba40"], jobs  # nothing of the other cohort
        assert "labelling_tables" in {rule for rule, _ in jobs}
        manifests = {p: p.stat().st_mtime_ns for p in (d / "out" / "batches").rglob("labelling/*/*.json")}
        assert manifests, "a local run of eight subjects batches them"
        r = lab_run(d)
        assert r.returncode == 0, r.stderr[-3000:]
        recomputed = set()
        for p, before in manifests.items():
            if p.stat().st_mtime_ns != before:
                recomputed |= {rec["item"] for rec in json.loads(p.read_text())["items"] if not rec.get("kept")}
        new = [p for p in (d / "out" / "batches").rglob("labelling/*/*.json") if p not in manifests]
        for p in new:
            recomputed |= {rec["item"] for rec in json.loads(p.read_text())["items"] if not rec.get("kept")}
        assert recomputed == {"labelling lpba40/S08 atlas-lpba40"}, recomputed
    finally:
        lab_sheet(d)


@needs_shared_data
@pytest.mark.realdata
def test_more_atlases_than_a_protocol_has_is_refused_at_start_naming_it(tmp_path):
    (tmp_path / "cfg.yaml").write_text(LAB_CONFIG.replace("atlases: 2", "atlases: 6"))
    lab_sheet(tmp_path)
    r = lab_run(tmp_path, "-n")
    assert r.returncode != 0 and "cohort 'lpba40' has 6 labelled subjects; atlases: 6 needs at least 7" in r.stdout + r.stderr


def test_icc_is_one_for_an_offset_and_low_for_noise():
    from cohortreg.labelling.volumes import icc_3_1

    a = np.array([10.0, 12.0, 15.0, 9.0, 20.0])
    assert icc_3_1(a, a + 3.0) == pytest.approx(1.0)
    # Shrout & Fleiss (1979), table 2, judges 1 and 3; by hand: MS_rows 29.42/5, MS_error 13.40/5 -> 0.374
    j1, j3 = np.array([9, 6, 8, 7, 10, 6.0]), np.array([2, 3, 1, 3, 8, 4.0])
    assert icc_3_1(j1, j3) == pytest.approx(0.374, abs=0.001)
    assert icc_3_1(a, np.array([20.0, 9.0, 15.0, 12.0, 10.0])) < 0


def test_a_failed_labelling_is_a_row_with_its_reason_and_outliers_are_flagged(tmp_path):
    from cohortreg.labelling.tables import accuracy_table, volume_table
    from cohortreg.labelling.volumes import VOLUME_COLUMNS

    jobs, volumes, logs = [], [], []
    for i in range(8):
        s = f"{i:02d}"
        path = tmp_path / f"{s}.tsv"
        rows = pd.DataFrame([{"cohort": "a", "subject": s, "protocol": "p", "label": "7",
                              "volume_ml": 10.0 + 0.1 * i + (25.0 if i == 5 else 0.0), "agreement": 0.9,
                              "atlases": "x,y", "status": "ok", "error": ""}], columns=VOLUME_COLUMNS)
        if i != 3:  # subject 03's labelling failed: no table, an ERROR line in its log
            rows.to_csv(path, sep="\t", index=False)
        (tmp_path / f"{s}.log").write_text("2026-12-05 INFO labelling\n2026-12-05 ERROR a/03: T1 image is all zeros\n")
        jobs.append(("a", s, "p"))
        volumes.append(str(path))
        logs.append(str(tmp_path / f"{s}.log"))
    table = volume_table(jobs, volumes, logs, {"z_warn": 3.5, "min_cohort": 5})
    failed = table[table["status"] == "failed"]
    assert list(failed["subject"]) == ["03"] and failed["error"].iloc[0] == "a/03: T1 image is all zeros"
    assert table.set_index("subject").loc["05", "qc"] == "warn" and "robust z" in table.set_index("subject").loc["05", "qc_reason"]
    assert set(table[table["subject"].isin(["00", "01", "02", "04", "06", "07"])]["qc"]) == {"ok"}
    assert list(accuracy_table([]).columns)[:4] == ["cohort", "subject", "protocol", "label"]
    # one picture per flagged labelling that finished: 05's, from its own T1 and label map
    from cohortreg.labelling.pictures import flagged_pictures

    layout = Layout(str(tmp_path / "out"))
    dseg = Path(layout.atlas_dseg.format(cohort="a", subject="05", protocol="p"))
    dseg.parent.mkdir(parents=True)
    labels = np.zeros((20, 24, 16), np.int32)
    labels[5:15, 6:18, 4:12] = 7
    nib.save(nib.Nifti1Image(labels, np.eye(4)), dseg)
    nib.save(nib.Nifti1Image(labels.astype(np.float32) * 10, np.eye(4)), layout.preproc_t1.format(cohort="a", subject="05"))
    pictures = flagged_pictures(table, layout, "", str(tmp_path / "pics"))
    assert [Path(p).name for p in pictures] == ["a.05.p.atlases.png"]
    from PIL import Image

    assert Image.open(pictures[0]).size[0] == 24 + 2 * 20  # sagittal, coronal, axial side by side


def test_the_vote_is_the_weighted_mode_with_ties_to_the_smaller_label():
    """Against a direct count over every label value (the definition), on random maps and weights."""
    rng = np.random.default_rng(3)
    labels = [rng.integers(0, 6, size=(9, 8, 7)).astype(np.int32) for _ in range(5)]
    weights = [rng.integers(1, 4, size=(9, 8, 7)).astype(np.float32) for _ in range(5)]  # integers: exact ties
    fused, agreement = vote(labels, weights)
    scores = np.stack([sum(np.where(lab == v, w, 0) for lab, w in zip(labels, weights)) for v in range(6)])
    assert np.array_equal(fused, scores.argmax(axis=0))  # argmax: the first (smallest) label among ties
    assert np.allclose(agreement, scores.max(axis=0) / sum(weights))


@pytest.mark.parametrize("fusion", ["majority", "weighted", "jlf"])
def test_every_fusion_gives_back_identical_atlases_labels_on_the_subjects_own_grid(tmp_path, fusion):
    """The subject's own (finer) grid, its background kept, whatever the fusion: K identical atlases under
    identity transforms give their labels back, agreement 1."""
    import ants

    from cohortreg.labelling.run import carry_and_fuse

    rng = np.random.default_rng(1)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # the working grid: 2 mm
    brain = np.zeros((14, 14, 14), np.float32)
    brain[2:12, 2:12, 2:12] = 1 + rng.random((10, 10, 10))
    labels = np.zeros(brain.shape, np.int16)
    labels[3:7, 3:11, 3:11], labels[7:11, 3:11, 3:11] = 4, 9
    files = {}
    for name, data in (("brain", brain), ("mask", (brain > 0).astype(np.uint8)), ("labels", labels)):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"{name}.nii.gz")
        files[name] = str(tmp_path / f"{name}.nii.gz")
    native = np.eye(4)  # the sheet's 1 mm T1
    native[:3, 3] = -0.5  # the 1 mm voxels' corners on the 2 mm ones'
    nib.save(nib.Nifti1Image(np.zeros((28, 28, 28), np.float32), native), tmp_path / "t1.nii.gz")
    identity = str(tmp_path / "identity.mat")
    ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform", dimension=3), identity)
    target = {"t1": str(tmp_path / "t1.nii.gz"), "brain": files["brain"], "mask": files["mask"]}
    atlas = {"subject": "a", "brain": files["brain"], "labels": files["labels"]}
    _, fused, agreement, carried = carry_and_fuse(target, [(atlas, [identity])] * 3,
                                                  {"fusion": fusion, "sigma_mm": 2.0, "jlf": {}}, "t")
    assert fused.shape == (28, 28, 28) and np.array_equal(fused, carried[0])
    assert set(np.unique(fused)) == {0, 4, 9} and (fused == 0).sum() > (fused > 0).sum() / 4
    assert np.all(agreement[fused > 0] == 1.0)
