"""Templates: the shape update moves a template to the inputs' mean map, cohort weights count each
cohort equally, the vote and probability maps, and a small build on real scans that reruns nothing
and resumes at the subject and iteration where it stopped."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from cohortreg.template.labels import mean_dice, vote
from cohortreg.template.shape import centroid_lps, mean_affine, shape_update, voxel_to_lps, weighted_mean
from cohortreg.template.weights import subject_weights
from tests.conftest import needs_shared_data, planned_jobs, run_snakemake


def blob(shape=(28, 28, 28), spacing=2.0):
    idx = np.stack(np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij"), -1)
    data = np.exp(-(((idx - np.array(shape) / 2) ** 2).sum(-1)) / (2 * 3.0 ** 2)).astype(np.float32)
    return nib.Nifti1Image(data, np.diag([spacing, spacing, spacing, 1.0]))


def centre_lps(data, img):
    idx = np.stack(np.meshgrid(*[np.arange(s, dtype=float) for s in data.shape], indexing="ij"), -1)
    com = (idx * data[..., None]).reshape(-1, 3).sum(0) / data.sum()
    return (voxel_to_lps(img) @ np.append(com, 1.0))[:3]


def constant_field(img, d):
    return np.broadcast_to(np.asarray(d, np.float32), img.shape + (3,)).copy()


def test_the_update_moves_the_template_to_the_mean_map_of_its_inputs():
    img = blob()
    before = centre_lps(np.asarray(img.dataobj), img)
    # every input's map is x -> x + d: the inputs are the template shifted by d; the update follows them
    d = np.array([3.0, -2.0, 1.0])
    new, disp = shape_update(img, np.eye(4), constant_field(img, d), gradient_step=0.25, steps=4)
    assert np.allclose(centre_lps(new, img) - before, d, atol=0.05)
    assert np.allclose(disp[8:-8, 8:-8, 8:-8], np.linalg.norm(d), atol=1e-4)
    # the same through the mean affine (a translation t), with no warp
    t = np.eye(4)
    t[:3, 3] = [-4.0, 2.0, 0.0]
    new, _ = shape_update(img, t, None, gradient_step=0.25)
    assert np.allclose(centre_lps(new, img) - before, t[:3, 3], atol=0.05)


def test_the_default_affine_update_keeps_the_template_in_place_and_takes_the_inputs_mean_scale():
    img = blob()
    centre = centroid_lps(img, np.asarray(img.dataobj))
    # inputs 10 % larger than the template, translated and rotated in their own world frames
    maps = []
    for angle, shift in ((0.1, [30.0, 0, 0]), (-0.1, [-10.0, 50.0, 5.0])):
        r = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = r @ (1.1 * np.eye(3)), shift
        maps.append(m)
    a = mean_affine(maps, [0.5, 0.5], centre)
    assert np.allclose(a[:3, :3], 1.1 * np.eye(3), atol=1e-9) and np.allclose(a @ np.append(centre, 1), np.append(centre, 1))
    new, _ = shape_update(img, a, None, gradient_step=0.25)
    assert np.allclose(centroid_lps(img, new), centre, atol=0.05)  # no drift toward the inputs' world positions
    spread = lambda d: np.sqrt((d > 0.5 * d.max()).sum())  # noqa: E731  (the blob's half-maximum area, sqrt)
    assert spread(new) > 1.05 * spread(np.asarray(img.dataobj))  # and it grew toward the inputs' size
    # rigid=True is ANTs' full average: it follows the mean translation
    full = mean_affine(maps, [0.5, 0.5], centre, rigid=True)
    assert np.allclose(full[:3, 3], np.mean([m[:3, 3] for m in maps], axis=0))


def test_cohort_weighting_counts_each_cohort_once_and_subject_weighting_each_subject():
    cohorts = ["lpba"] * 3 + ["oasis"]
    assert subject_weights(cohorts, "cohort") == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 2])
    assert subject_weights(cohorts, "subject") == pytest.approx([0.25] * 4)
    img = blob()
    fields = [constant_field(img, [3.0, 0, 0])] * 3 + [constant_field(img, [-3.0, 0, 0])]
    before = centre_lps(np.asarray(img.dataobj), img)
    shifts = {}
    for weighting in ("cohort", "subject"):
        mean = weighted_mean(fields, subject_weights(cohorts, weighting))
        new, _ = shape_update(img, np.eye(4), mean, gradient_step=0.25)
        shifts[weighting] = centre_lps(new, img)[0] - before[0]
    assert shifts["cohort"] == pytest.approx(0.0, abs=0.05)   # (3 + -3) / 2
    assert shifts["subject"] == pytest.approx(1.5, abs=0.05)  # (3 + 3 + 3 - 3) / 4
    with pytest.raises(ValueError, match="weighting"):
        subject_weights(cohorts, "site")


def test_majority_vote_and_probability_maps_on_hand_made_labels():
    a = np.array([[[0, 1, 1, 2]]])
    b = np.array([[[0, 1, 2, 2]]])
    c = np.array([[[1, 1, 2, 0]]])
    winner, labels, prob = vote([a, b, c], [1, 1, 1])
    assert labels.tolist() == [0, 1, 2]
    assert winner.tolist() == [[[0, 1, 2, 2]]]  # voxel 0: 0, 0, 1 -> 0; voxel 2: 1, 2, 2 -> 2
    assert prob[0, 0, 0].tolist() == [170, 85, 0]  # 2/3 and 1/3 in steps of 1/255
    # weights: the third map alone outvotes the other two
    winner, _, _ = vote([a, b, c], [0.2, 0.2, 0.6])
    assert winner.tolist() == [[[1, 1, 2, 0]]]
    assert mean_dice(a, a) == 1.0 and mean_dice(np.zeros_like(a), a) == 0.0


TPL_CONFIG = """preprocess: {spacing: 4.0}
affine: {engine: torch}
template: {name: ci, iterations: 1, method: torch}
method_params: {torch: {preset: fast, device: cpu}}
"""


@needs_shared_data
@pytest.mark.workflow
def test_a_three_subject_template_on_real_scans_builds_reruns_nothing_and_resumes(tmp_path):
    from cohortreg.sheet.datasets import write_sheet

    sheet = write_sheet(tmp_path / "samples.tsv", {"lpba40": 3})
    out = tmp_path / "out"
    (tmp_path / "tpl.yaml").write_text(TPL_CONFIG)
    args = ["--configfile", str(tmp_path / "tpl.yaml"), "--config", f"samples={sheet}", f"outdir={out}"]
    r = run_snakemake("template", "--cores", "2", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    root = out / "templates" / "ci"
    for name in ("tpl-ci_T1w.nii.gz", "tpl-ci_desc-brain_mask.nii.gz", "tpl-ci_cohort-lpba40_dseg.nii.gz",
                 "tpl-ci_cohort-lpba40_probseg.nii.gz", "convergence.tsv", "convergence.png", "template_description.json"):
        assert (root / name).exists(), name
    conv = pd.read_csv(root / "convergence.tsv", sep="\t")
    assert conv.iteration.tolist() == [0, 1, 2]  # the affine round, one deformable round, the final round
    # the deformable round's labels agree with their vote at least as well as the affine round's
    # (at 4 mm, LPBA40's scans agree at about 0.80 after the affine already)
    assert conv.dice_lpba40.iloc[1] >= conv.dice_lpba40.iloc[0] and conv.dice_lpba40.iloc[-1] > 0.75, conv
    assert conv.warp_mean_mm.iloc[0] == 0 and conv.warp_mean_mm.iloc[1] > 0.1, conv  # round 0 is affine only
    desc = json.loads((root / "template_description.json").read_text())
    assert [i["subject"] for i in desc["inputs"]] == ["S01", "S02", "S03"] and desc["labels"]["lpba40"]["labels"] > 40
    mask = np.asarray(nib.load(root / "tpl-ci_desc-brain_mask.nii.gz").dataobj)
    assert 400 < mask.sum() * 4.0 ** 3 / 1000 < 2500  # a brain's volume in mL
    # nothing to do on a rerun
    r = run_snakemake("template", "-n", "--cores", "2", *args, cwd=tmp_path)
    assert planned_jobs(r.stdout + r.stderr) == [], r.stdout[-2000:]
    # design: template registers the sheet's subjects to it, Dice against its LPBA40 labels
    r = run_snakemake("--cores", "2", *args, "design=template", "methods=[affine]", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    pairs = pd.read_csv(out / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    assert sorted(pairs.moving) == ["S01", "S02", "S03"] and set(pairs.fixed) == {"tpl-ci"}, pairs
    assert (pairs.status == "ok").all() and (pairs.dice_mean > 0.6).all() and (pairs.qc != "fail").all(), pairs
    # a build killed in its last round (S01 done, S02 running, S03 not started) resumes there: the two
    # registrations and the deliverables, nothing earlier
    for sid in ("S02", "S03"):
        for f in (root / "iter-02" / "lpba40" / f"sub-{sid}").iterdir():
            f.unlink()
    for f in root.glob("tpl-ci_*"):
        f.unlink()
    (root / "convergence.tsv").unlink()
    r = run_snakemake("template", "-n", "--cores", "2", *args, cwd=tmp_path)
    plan = planned_jobs(r.stdout + r.stderr)
    assert sorted((rule, w.get("subject", "")) for rule, w in plan) == [
        ("template", ""), ("template_finish", ""), ("template_register", "S02"), ("template_register", "S03")], plan


@needs_shared_data
@pytest.mark.workflow
def test_an_early_stop_copies_the_template_and_each_registration_after_the_converged_iteration(tmp_path):
    from cohortreg.sheet.datasets import write_sheet

    sheet = write_sheet(tmp_path / "samples.tsv", {"lpba40": 3})
    out = tmp_path / "out"
    # any deformable update moves the template less than 1000 mm: iteration 02 (the first deformable
    # update) is final, iteration 03 copies it and round 03 copies round 02's registrations
    (tmp_path / "tpl.yaml").write_text(TPL_CONFIG.replace("iterations: 1,", "iterations: 2, stop_below_mm: 1000,"))
    args = ["--configfile", str(tmp_path / "tpl.yaml"), "--config", f"samples={sheet}", f"outdir={out}"]
    r = run_snakemake("template", "--cores", "2", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    root = out / "templates" / "ci"
    conv = pd.read_csv(root / "convergence.tsv", sep="\t")
    assert conv.iteration.tolist() == [0, 1, 2, 3], conv
    assert conv.converged.iloc[:3].tolist() == [False, True, True] and conv.copy_of.iloc[2] == 2, conv
    assert conv.update_mean_mm.iloc[1] > 0, conv  # a real update, not a copy
    data = [np.asarray(nib.load(root / f"iter-{k}" / f"tpl-ci_iter-{k}_T1w.nii.gz").dataobj) for k in ("02", "03")]
    assert np.array_equal(*data)
    for sid in ("S01", "S02", "S03"):
        two, three = root / "iter-02" / "lpba40" / f"sub-{sid}", root / "iter-03" / "lpba40" / f"sub-{sid}"
        assert sorted(f.name for f in two.iterdir()) == sorted(f.name for f in three.iterdir())
        for f in two.iterdir():
            assert f.read_bytes() == (three / f.name).read_bytes(), f.name
        assert "registration copied" in (out / "logs" / "template" / "ci" / "iter-03" / "lpba40" / f"sub-{sid}.log").read_text()
    assert "registration copied" not in (out / "logs" / "template" / "ci" / "iter-02" / "lpba40" / "sub-S01.log").read_text()
    r = run_snakemake("template", "-n", "--cores", "2", *args, cwd=tmp_path)
    assert planned_jobs(r.stdout + r.stderr) == [], r.stdout[-2000:]


def test_per_round_presets_follow_the_schedule_and_leave_params_alone_without_one():
    from cohortreg.template.schedule import round_params

    base = {"preset": "default", "iterations": [10, 5]}
    assert round_params(base, [], 3) == base and round_params(base, ["fast"], 0) == base  # round 0: affine only
    got = [round_params(base, ["fast", "fast", "default"], k)["preset"] for k in range(1, 6)]
    assert got == ["fast", "fast", "default", "default", "default"]  # the final round takes the last preset
    assert round_params(base, ["fast"], 2)["iterations"] == [10, 5]   # an explicit key still wins over the preset


def test_a_round_with_a_failed_batch_item_is_refused_naming_the_input(tmp_path):
    from cohortreg.errors import InputError
    from cohortreg.template.batch import check_round

    ok = tmp_path / "batch-00000.json"
    ok.write_text(json.dumps({"items": [{"item": "template ci iter-01 lpba40/S01 [torch]", "status": "ok"}]}))
    bad = tmp_path / "batch-00001.json"
    bad.write_text(json.dumps({"items": [
        {"item": "template ci iter-01 lpba40/S02 [torch]", "status": "ok"},
        {"item": "template ci iter-01 lpba40/S03 [torch]", "status": "failed", "error": "truncated file"}]}))
    check_round([str(ok)], "01")
    with pytest.raises(InputError, match=r"(?s)batch-00001.json.*1 input\(s\) not registered.*lpba40/S03 \[torch\]: "
                                         r"truncated file"):
        check_round([str(ok), str(bad)], "01")


@needs_shared_data
@pytest.mark.workflow
def test_a_batched_build_gives_the_per_input_build_and_its_files(tmp_path):
    """template.batch_size 2 (and the study's batch_size 2, so the subjects come from batch jobs too):
    the same template as one job per input, the same per-input files, logs and benchmarks, and a
    rerun plans nothing."""
    from cohortreg.sheet.datasets import write_sheet

    sheet = write_sheet(tmp_path / "samples.tsv", {"lpba40": 3})
    builds = {}
    for name, extra in (("single", ""), ("batched", "batch_size: 2\n")):
        cfg = TPL_CONFIG.replace("method: torch}", "method: torch, batch_size: 2}") if extra else TPL_CONFIG
        (tmp_path / f"{name}.yaml").write_text(cfg + extra)
        out = tmp_path / name
        args = ["--configfile", str(tmp_path / f"{name}.yaml"), "--config", f"samples={sheet}", f"outdir={out}"]
        r = run_snakemake("template", "--cores", "2", *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        builds[name] = out / "templates" / "ci"
        if extra:
            r = run_snakemake("template", "-n", "--cores", "2", *args, cwd=tmp_path)
            assert planned_jobs(r.stdout + r.stderr) == [], r.stdout[-2000:]
            for k in ("00", "01", "02"):
                assert sorted(p.name for p in (builds[name] / f"iter-{k}").glob("batch-*.json")) == [
                    "batch-00000.json", "batch-00001.json"]
                for sid in ("S01", "S02", "S03"):
                    assert (out / "logs" / "template" / "ci" / f"iter-{k}" / "lpba40" / f"sub-{sid}.log").exists()
                    assert (out / "benchmarks" / "template" / "ci" / f"iter-{k}" / "lpba40" / f"sub-{sid}.tsv").exists()
    one, many = (np.asarray(nib.load(builds[n] / "tpl-ci_T1w.nii.gz").dataobj) for n in ("single", "batched"))
    assert np.allclose(one, many, atol=1e-5 * float(np.abs(one).max())), float(np.abs(one - many).max())
    conv = [pd.read_csv(builds[n] / "convergence.tsv", sep="\t") for n in ("single", "batched")]
    assert np.allclose(conv[0].dice_lpba40, conv[1].dice_lpba40, atol=1e-4), conv


def test_template_batch_jobs_ask_for_a_gpu_from_the_first_deformable_round(phantom_cohort):
    """A CUDA method's template registrations (batched) ask SLURM for a GPU on the GPU partition,
    except round 00, which is affine only; a CPU method's never do."""
    d = phantom_cohort
    for device, gpu_rounds in (("cuda", {"01", "02"}), ("cpu", set())):
        (d / "tpl.yaml").write_text(TPL_CONFIG.replace("method: torch}", "method: torch, batch_size: 2}")
                                    .replace("device: cpu", f"device: {device}")
                                    + "slurm: {partition: cpuq, gpu_partition: gpuq}\n")
        r = run_snakemake("template", "-n", "--cores", "2", "--configfile", d / "tpl.yaml", "--config",
                          f"samples={d / 'samples.tsv'}", f"outdir={d / 'out'}", cwd=d)
        assert r.returncode == 0, r.stderr[-3000:]
        seen = {}
        for block in (r.stdout + r.stderr).split("rule ")[1:]:
            if not block.startswith("template_register_batch:"):
                continue
            wild = next(x for x in block.splitlines() if "wildcards:" in x)
            res = next(x for x in block.splitlines() if "resources:" in x)
            k = wild.split("iteration=")[1].split(",")[0].strip()
            seen.setdefault(k, []).append(("gpu=1" in res, "slurm_partition=gpuq" in res))
        assert sorted(seen) == ["00", "01", "02"] and all(len(v) == 2 for v in seen.values()), seen  # 3 inputs, 2 batches
        for k, jobs in seen.items():
            assert all(j == ((k in gpu_rounds),) * 2 for j in jobs), (device, k, jobs)
