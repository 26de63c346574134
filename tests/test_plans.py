"""The planning objects the rules ask (no Snakemake, no data): batches, paths, the training split, the template."""

import pandas as pd
import pytest

from cohortreg.batches.plan import TRAIN_BATCH_FROM, BatchPlan
from cohortreg.learn.plan import plan_training
from cohortreg.paths import Layout
from cohortreg.sheet.samples import design_pairs, references

L = Layout("OUT")


def sheet(n, cohorts=("a",), split=None):
    rows = [{"cohort": c, "subject": f"{i:03d}", "t1": f"{c}{i}.nii.gz", "labels": "", "mask": "",
             "split": (split(i) if split else "")} for c in cohorts for i in range(n)]
    table = pd.DataFrame(rows)
    table.index = pd.MultiIndex.from_frame(table[["cohort", "subject"]], names=["cohort_", "subject_"])  # as read_sheet
    return table


def test_layout_spells_every_path_of_a_subject_a_pair_and_a_batch_once():
    assert L.brain.format(cohort="c", subject="01") == "OUT/c/sub-01/anat/sub-01_desc-brain_T1w.nii.gz"
    ids = dict(cohort="c", moving="02", fixed="01", method="torch")
    assert L.affine.format(**ids) == "OUT/c/sub-02/to-01/init/affine.mat"
    assert L.warped_labels.format(**ids) == "OUT/c/sub-02/to-01/torch/sub-02_space-01_desc-warped_dseg.nii.gz"
    assert L.batch("torch/register").format(cohort="c", batch="00001") == "OUT/batches/c/torch/register/batch-00001.json"
    assert L.batch("subjects", "logs").format(cohort="c", batch="00000") == "OUT/logs/batches/c/subjects/batch-00000.log"
    assert L.model().format(model="vxm") == "OUT/models/vxm/model.pt"
    assert L.log("register").format(**ids) == "OUT/logs/register/c/sub-02_to-01_torch.log"
    assert L.table("pairs") == "OUT/metrics/pairs.tsv"
    assert L.report_file("dice.png") == "OUT/report/dice.png"
    assert L.template_witness("iter-{iteration}/{cohort}/sub-{subject}", "benchmarks").format(
        name="study", iteration="01", cohort="c", subject="02") == "OUT/benchmarks/template/study/iter-01/c/sub-02.tsv"
    assert (L.study_log("aggregate"), L.study_benchmark("mutual_info")) == ("OUT/logs/aggregate.log",
                                                                           "OUT/benchmarks/mutual_info.tsv")
    # no two kinds of output share a pattern
    patterns = [L.preproc_t1, L.preproc_labels, L.brain, L.brain_mask, L.preproc_json, L.subject_qc, L.affine,
                L.warped_t1, L.warped_labels, L.qc_picture, L.model(), L.template_batch(), L.batch("subjects")]
    assert len(set(patterns)) == len(patterns)


def test_a_batch_plan_chunks_in_sheet_order_so_appended_subjects_touch_the_last_batch_only():
    subjects = [("a", f"{i:03d}") for i in range(120)]
    pairs = [("a", s, "000") for _, s in subjects[1:]]
    plan = BatchPlan.build(50, L, subjects, pairs)
    grown = BatchPlan.build(50, L, subjects + [("a", "120")], pairs + [("a", "120", "000")])
    assert [len(b) for b in plan.subject_batches["a"]] == [50, 50, 20]
    assert plan.subject_batch[("a", "049")] == "00000" and plan.subject_batch[("a", "050")] == "00001"
    changed = {b for b in set(plan.subject_batch.values()) | set(grown.subject_batch.values())
               if [s for (c, s), x in plan.subject_batch.items() if x == b] !=
               [s for (c, s), x in grown.subject_batch.items() if x == b]}
    assert changed == {"00002"}  # only the batch that takes the new subject
    assert plan.subject_manifests("a", ["000", "119"]) == ["OUT/batches/a/subjects/batch-00000.json",
                                                           "OUT/batches/a/subjects/batch-00002.json"]
    assert plan.pairs_of("a", "00000", keep=lambda mv, fx: mv != "001")[0] == ("002", "000")
    manifests = plan.manifests(["torch"])
    assert "OUT/batches/a/torch/metrics/batch-00002.json" in manifests and len(manifests) == 3 + 3 * 3
    assert plan.manifests(["torch"], stages=("metrics",)) == [f"OUT/batches/a/torch/metrics/batch-0000{i}.json"
                                                              for i in range(3)]


def test_training_pairs_get_affine_batches_of_their_own_that_new_subjects_do_not_renumber():
    subjects = [("a", f"{i:03d}") for i in range(10)]
    pairs = [("a", s, "000") for _, s in subjects[1:5]]
    training = [("a", "006", "005"), ("a", "007", "005")]
    plan = BatchPlan.build(50, L, subjects, pairs, training)
    assert plan.affine_batch_of[("a", "006", "005")] == f"{TRAIN_BATCH_FROM:05d}"
    more = BatchPlan.build(50, L, subjects + [("a", "010")], pairs + [("a", "010", "000")], training)
    assert more.affine_batch_of == plan.affine_batch_of
    assert plan.training_manifests(training) == ["OUT/batches/a/affine/batch-90000.json",
                                                 "OUT/batches/a/subjects/batch-00000.json"]


def test_batching_off_plans_no_batches():
    plan = BatchPlan.build(1, L, [("a", "000")], [])
    assert not plan.on and plan.manifests(["torch"]) == [] and plan.subject_manifest("a", "000") is None


@pytest.mark.parametrize("with_split", [False, True])
def test_no_training_or_validation_subject_is_ever_evaluated_by_its_model(with_split):
    split = (lambda i: "test" if i < 6 else "train" if i < 16 else "val") if with_split else None
    table = sheet(20, cohorts=("a", "b"), split=split)
    evaluated = table[table["split"] == "test"] if with_split else table
    refs = references(evaluated)
    plan = plan_training(table, "vxm", {"train_fraction": 0.5, "val_fraction": 0.1, "seed": 3}, refs)
    used = plan.used()
    assert used and len(plan.train) >= 4 and plan.val
    # the rules' rule: a learned method's pairs leave out every pair that touches a subject its model used
    pairs = design_pairs(evaluated, "reference", refs)
    kept = [p for p in pairs if (p.cohort, p.moving) not in used and (p.cohort, p.fixed) not in used]
    assert kept, "some pairs remain to evaluate the model on"
    assert all(p.fixed == refs[p.cohort] for p in kept)
    assert not any((c, refs[c]) in used for c in refs), "an evaluation reference never trains the model"
    if with_split:
        assert {s for _, s in used} == {f"{i:03d}" for i in range(6, 20)}
    # what the training reads, and what model.json says trained it
    assert set(plan.subjects()) == used | set(plan.reference)
    described = plan.description()
    assert described["model"] == "vxm" and described["from_split"] == with_split
    assert described["train_subjects"] == [f"{c}/{s}" for c, s in plan.train]
    assert not set(described["val_subjects"]) & set(described["train_subjects"])


TPL = {"name": "study", "cohorts": [], "iterations": 2, "init": "mean", "method": "torch", "weighting": "equal",
       "batch_size": None}


def template_plan(table, **settings):
    from cohortreg.template.plan import TemplatePlan

    return TemplatePlan.build({**TPL, **settings}, table, L, study_batch_size=1)


def no_batches(subjects, output):  # what the rules give per job: each subject's own files
    return {"brain": [L.brain.format(cohort=c, subject=s) for c, s in subjects]}


def test_a_template_is_built_from_train_and_val_subjects_only_in_sheet_order():
    table = sheet(6, cohorts=("a", "b"), split=lambda i: "test" if i >= 4 else ("val" if i == 3 else "train"))
    table.loc[("a", "001"), "labels"] = "a1_labels.nii.gz"
    plan = template_plan(table)
    assert plan.inputs == tuple((c, f"{i:03d}") for c in "ab" for i in range(4))  # no test subject builds it
    assert plan.reference == ("a", "000") and plan.last == 3
    assert plan.labels("a", "001") == L.preproc_labels.format(cohort="a", subject="001")
    assert plan.labels("a", "000") == "" and plan.labelled_cohorts == ["a"]
    assert plan.label_maps() == ["OUT/templates/study/tpl-study_cohort-a_dseg.nii.gz"]
    assert template_plan(table, cohorts=["b"]).inputs == tuple(("b", f"{i:03d}") for i in range(4))


def test_a_template_round_per_job_and_batched_reads_the_same_files():
    table = sheet(7)
    per_job, batched = template_plan(table), template_plan(table, batch_size=3)
    assert per_job.batches == [] and [len(b) for b in batched.batches] == [3, 3, 1]
    files = per_job.round_inputs(1)
    assert set(files) == {"manifests", "warped", "labels"} and len(files["manifests"]) == 7
    assert batched.round_inputs(1) == {"batches": batched.batch_manifests(1)}
    assert per_job.round_files(1) == batched.round_files(1)  # the scripts read the same per-input files
    assert len(batched.all_batch_manifests()) == 3 * (batched.last + 1)
    assert [s for _, s, _ in batched.batch_items(2)] == ["006"]


def test_template_updates_read_the_round_before_and_an_early_stop_its_row():
    table = sheet(4)
    plan = template_plan(table)
    assert plan.update_inputs("01")["template"] == plan.iteration(0)
    assert "manifests" in plan.update_inputs("01")  # init mean: 01 is the mean of round 00's affines
    assert set(template_plan(table, init="a/002").update_inputs("01")) == {"template"}  # 01 is that subject
    assert "previous_row" not in plan.update_inputs("03")
    stop = template_plan(table, stop_below_mm=0.1)
    assert stop.update_inputs("03")["previous_row"] == stop.update_row(2)
    inputs = stop.register_inputs("a", "001", "02", no_batches, model="m.pt")
    assert inputs["previous"] == stop.register_output("a", "001", 1) and inputs["row"] == stop.update_row(2)
    assert inputs["model"] == "m.pt" and inputs["brain"] == [L.brain.format(cohort="a", subject="001")]
    assert "row" not in plan.register_inputs("a", "001", "02", no_batches)


def test_a_template_without_inputs_or_with_an_unknown_init_subject_is_a_clear_error():
    from cohortreg.sheet.samples import SheetError

    with pytest.raises(SheetError, match="neither mean, a file nor a subject"):
        template_plan(sheet(3), init="a/999")
    empty = template_plan(sheet(3), cohorts=["zz"])
    with pytest.raises(SheetError, match="no input subjects"):
        empty.reference_input()
    assert template_plan(sheet(3), init="/x/t.nii.gz").reference_input() == "/x/t.nii.gz"
