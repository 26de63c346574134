"""Learned registration: the network's grid round trip, training that resumes exactly, checkpoints
that describe themselves (and clear errors for bad ones), and the two methods on a real pair."""

import json
import os

import nibabel as nib
import numpy as np
import pytest
import torch

from cohortreg.sheet.datasets import SHARED_DATA
from cohortreg.errors import InputError
from cohortreg.learn import checkpoint
from cohortreg.learn.data import Pair
from cohortreg.learn.network import build_network, crop_to, infer, pad_to_multiple, pooling_factor, predict
from cohortreg.torchreg.fields import compose
from cohortreg.learn.train import TrainSettings, train
from tests.conftest import needs_shared_data

TINY = dict(channels=(4, 8), grid_scale=1, lr=3e-3, val_every=2, checkpoint_every=2, integration_steps=4)


def test_padding_round_trip_is_exact_and_the_field_has_the_input_grid():
    x = torch.rand(1, 1, 13, 17, 10)
    padded, shape = pad_to_multiple(x, 4)
    assert tuple(padded.shape[2:]) == (16, 20, 12) and torch.equal(crop_to(padded, shape), x)
    assert torch.equal(padded[:, :, :13, :17, :10], x)  # voxel (0, 0, 0) stays put: a field maps back unshifted
    net = build_network((4, 8), 4)
    u, coarse, warped = predict(net, x, x, grid_scale=2, factor=pooling_factor((4, 8)))
    assert tuple(u.shape) == (1, 3, 13, 17, 10) and tuple(coarse.shape[2:]) == tuple(warped.shape[2:]) == (8, 8, 8)


def test_inference_gives_the_training_field_and_its_inverse_from_the_negated_velocity():
    torch.manual_seed(0)
    x, y = torch.rand(1, 1, 20, 24, 16), torch.rand(1, 1, 20, 24, 16)
    net = build_network((4, 8), 7)
    with torch.no_grad():
        for p in net.parameters():  # a random network's field is tiny; make it a few voxels
            p.mul_(2.0)
        u_train, _, _ = predict(net, x, y, grid_scale=2, factor=pooling_factor((4, 8)))
        u, v = infer(net, x, y, grid_scale=2, factor=pooling_factor((4, 8)))
    assert torch.allclose(u, u_train, atol=1e-6)
    assert float(u.abs().max()) > 2.0  # a few voxels: the inverse is not simply -u
    inner = (slice(None), slice(None), slice(3, -3), slice(3, -3), slice(3, -3))
    residual = float(compose(v, u)[inner].abs().max())  # (id + v) o (id + u) = id, away from the border
    assert residual < 0.1 * float(u.abs().max())
    assert residual < 0.25 * float(compose(-u, u)[inner].abs().max())


def lpba_crop(sid):
    """A small real crop: LPBA40 at 4 mm, 24^3 voxels around the brain's centre."""
    d = SHARED_DATA / "lpba40" / f"sub-{sid}"
    t1 = np.asanyarray(nib.load(d / "t1w_brain.nii.gz").dataobj)[::4, ::4, ::4][8:32, 12:36, 8:32].astype(np.float32)
    lab = np.asanyarray(nib.load(d / "labels_lpba56.nii.gz").dataobj)[::4, ::4, ::4][8:32, 12:36, 8:32].astype(np.int64)
    return torch.from_numpy(t1 / t1.max())[None, None], lab


@pytest.fixture(scope="module")
def crops():
    if not (SHARED_DATA / "lpba40").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    f, fl = lpba_crop("S01")
    return [Pair(s, f, lpba_crop(s)[0], fl, lpba_crop(s)[1]) for s in ("S02", "S03", "S04", "S05")]


@needs_shared_data
def test_training_lowers_the_loss_writes_a_model_and_resumes_to_the_same_weights(crops, tmp_path):
    pairs, val = crops[:3], crops[3:]
    s = TrainSettings(steps=6, supervision="weak", **TINY)
    doc = train(s, pairs, val, tmp_path / "a", {"train_cohorts": ["lpba40"]})
    curve = np.genfromtxt(tmp_path / "a" / "training.tsv", names=True, delimiter="\t")
    # step 0 is the untrained network (~the affine alone): the curve's baseline, in the model file too
    assert len(curve) == 7 and curve["step"][0] == 0 and np.isfinite(curve["val_dice"][0::2]).all()
    assert doc["affine_val_dice"] == pytest.approx(curve["val_dice"][0])
    assert (tmp_path / "a" / "training.png").stat().st_size > 1000
    model = checkpoint.read(tmp_path / "a" / "model.pt")
    assert model["network"] == {"channels": [4, 8], "integration_steps": 4} and model["train_cohorts"] == ["lpba40"]
    assert doc["steps_done"] == 6 and 2 <= doc["best_step"] <= 6
    # the loss goes down on the pairs it trains on (same pair, before and after)
    from cohortreg.learn.train import _losses, pair_loss

    before = pair_loss(build_network((4, 8), 4).eval(), pairs[0], s, _losses(s), 2)[1]["lncc"]
    net, _ = checkpoint.load_model(tmp_path / "a" / "checkpoints" / "last.pt")
    after = pair_loss(net, pairs[0], s, _losses(s), 2)[1]["lncc"]
    assert after < before
    # killed after step 4 (its checkpoint), then resumed: the same weights as the run that was not
    train(TrainSettings(steps=4, supervision="weak", **TINY), pairs, val, tmp_path / "b", {})
    last = checkpoint.read(tmp_path / "b" / "checkpoints" / "last.pt", "checkpoint")
    assert last["step"] == 4 and "optimizer" in last and len(last["history"]) == 5
    train(s, pairs, val, tmp_path / "b", {})
    a, b = (checkpoint.read(tmp_path / d / "checkpoints" / "last.pt") for d in ("a", "b"))
    assert b["step"] == 6 and all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


# A training process that kills itself with SIGKILL in the middle of step 5, after step 4's checkpoint:
# no handler, no finally block and no buffered write runs, as when a scheduler kills a job.
KILLED_TRAINING = """
import os, pickle, signal, sys
import cohortreg.learn.train as train_mod
settings, pairs, val, out = pickle.load(open(sys.argv[1], "rb"))
calls = [0]
loss = train_mod.pair_loss
def pair_loss(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 5:  # batch_size 1: the 5th call is step 5
        os.kill(os.getpid(), signal.SIGKILL)
    return loss(*args, **kwargs)
train_mod.pair_loss = pair_loss
train_mod.train(settings, pairs, val, out, {})
"""


@needs_shared_data
def test_training_killed_by_sigkill_resumes_to_the_model_of_an_uninterrupted_run(crops, tmp_path):
    import pickle
    import signal
    import subprocess
    import sys

    pairs, val = crops[:3], crops[3:]
    s = TrainSettings(steps=8, supervision="weak", **TINY)
    whole = train(s, pairs, val, tmp_path / "whole", {})
    args = tmp_path / "args.pkl"
    args.write_bytes(pickle.dumps((s, pairs, val, str(tmp_path / "killed"))))
    done = subprocess.run([sys.executable, "-c", KILLED_TRAINING, str(args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())})
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not (tmp_path / "killed" / "model.pt").exists()  # killed before the end: no model yet
    assert checkpoint.read(tmp_path / "killed" / "checkpoints" / "last.pt")["step"] == 4
    resumed = train(s, pairs, val, tmp_path / "killed", {})
    assert resumed["steps_done"] == whole["steps_done"] == 8 and resumed["best_step"] == whole["best_step"]
    for name in ("model.pt", "checkpoints/last.pt"):
        a, b = (checkpoint.read(tmp_path / d / name) for d in ("whole", "killed"))
        assert a["state_dict"].keys() == b["state_dict"].keys()
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"]), name
    curves = [np.genfromtxt(tmp_path / d / "training.tsv", names=True, delimiter="\t") for d in ("whole", "killed")]
    np.testing.assert_array_equal(curves[0]["step"], curves[1]["step"])  # step 5 is trained once, not twice
    np.testing.assert_allclose(curves[0]["loss"], curves[1]["loss"], equal_nan=True)


def test_bad_model_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a readable CohortReg model") as exc:
        checkpoint.load_model(junk)
    assert str(junk) in str(exc.value)
    with pytest.raises(InputError, match="does not exist"):
        checkpoint.load_model(tmp_path / "absent.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a CohortReg model file"):
        checkpoint.load_model(tmp_path / "other.pt")
    net = build_network((4, 8), 4)
    doc = {"format": checkpoint.FORMAT, "network": {"channels": [8, 16], "integration_steps": 4}, "grid_scale": 1,
           "state_dict": net.state_dict()}
    checkpoint.save_atomic(doc, tmp_path / "wrong.pt")
    with pytest.raises(InputError, match="do not fit the network"):
        checkpoint.load_model(tmp_path / "wrong.pt")


@needs_shared_data
def test_learned_is_deterministic_and_learned_io_with_no_iterations_equals_it(crops, tmp_path):
    """The two methods on a real LPBA40 pair (4 mm crop as images on a grid): the same model file."""
    import ants

    from cohortreg.registration import get_method

    net = build_network((4, 8), 4)
    torch.manual_seed(0)
    for p in net.parameters():  # a model that moves voxels (a fresh one predicts ~0)
        p.data.normal_(0, 0.05)
    checkpoint.save_atomic({"format": checkpoint.FORMAT, "network": {"channels": [4, 8], "integration_steps": 4},
                            "grid_scale": 1, "state_dict": net.state_dict()}, tmp_path / "model.pt")
    pair = crops[0]
    fixed = ants.from_numpy(pair.fixed[0, 0].numpy(), spacing=(4.0, 4.0, 4.0))
    moving = ants.from_numpy(pair.moving[0, 0].numpy(), spacing=(4.0, 4.0, 4.0))
    mat = tmp_path / "identity.mat"
    ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform", dimension=3), str(mat))
    fields = {}
    for name, params in (("learned", {}), ("learned_io", {"iterations": [0, 0, 0]}), ("learned_io", {"iterations": [10, 5, 0]})):
        impl = get_method(name)({**params, "model_file": str(tmp_path / "model.pt"), "device": "cpu",
                                 "crop_margin_mm": 0}, threads=1)
        impl.prepare()
        out = tmp_path / f"{name}_{len(fields)}"
        tx = impl.register(fixed, moving, str(mat), out)
        fields[len(fields)] = nib.load(tx.warp).get_fdata()
        assert json.dumps(tx.extra["train_cohorts"]) == "[]"
    assert np.abs(fields[0]).max() > 0.1  # it does move voxels
    np.testing.assert_array_equal(fields[0], fields[1])
    assert np.abs(fields[2] - fields[0]).max() > 1e-3  # instance optimisation changes the field
    impl = get_method("learned")({"model_file": str(tmp_path / "model.pt"), "device": "cpu"}, threads=1)
    tx2 = impl.register(fixed, moving, str(mat), tmp_path / "again")
    np.testing.assert_array_equal(nib.load(tx2.warp).get_fdata(), fields[0])


@pytest.mark.workflow
@pytest.mark.parametrize("batch_size", [1, 2], ids=["per_job", "batched"])
def test_a_named_learned_variant_trains_then_registers_test_subjects_only(tmp_path, batch_size):
    """Six phantoms with a split column: 04, 05 train, 06 validates, 01-03 are the test subjects.
    Batched (batch_size 2), training reads what the subject and affine batch jobs made, the training
    pairs' affines in a batch of their own, and a subject added later does not retrain the model."""
    import pandas as pd

    from tests.conftest import phantom, planned_jobs, run_snakemake, save

    rows = ["cohort\tsubject\tt1\tlabels\tsplit"]
    shifts = [(0, 0, 0), (2, -1.5, 1), (-1.5, 2, -1), (1, 1, -2), (-2, 0, 1.5), (0, -2, 0.5)]
    for i, shift in enumerate(shifts, start=1):
        t1, lab = phantom(shift=shift, seed=i, scale=1.0 + 0.03 * (i % 3 - 1))
        save(t1 * 1000, tmp_path / f"s{i}_T1w.nii.gz")
        save(lab, tmp_path / f"s{i}_dseg.nii.gz")
        split = {4: "train", 5: "train", 6: "val"}.get(i, "test")
        rows.append(f"ph\t0{i}\ts{i}_T1w.nii.gz\ts{i}_dseg.nii.gz\t{split}")
    (tmp_path / "samples.tsv").write_text("\n".join(rows) + "\n")
    (tmp_path / "cfg.yaml").write_text(
        "preprocess: {spacing: null}\nqc: {brain_ml: [10, 3000]}\nmethods: [affine, vxm]\nmethod_params:\n"
        "  vxm: {engine: learned, steps: 3, channels: [4, 8], val_every: 1, checkpoint_every: 1, grid_scale: 1,"
        " integration_steps: 4}\n")
    args = ["--configfile", tmp_path / "cfg.yaml", "--config", f"samples={tmp_path / 'samples.tsv'}",
            f"outdir={tmp_path / 'out'}", f"batch_size={batch_size}"]
    r = run_snakemake("--cores", "2", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    if batch_size > 1:
        assert "rule train_model" in r.stdout + r.stderr and "rule preprocess_subject" not in r.stdout + r.stderr
        # 05 -> 04 trains and 06 -> 04 validates (04: the training reference): their affines are a
        # batch of their own (ids from 90000, which more test pairs do not renumber)
        extra = json.loads((tmp_path / "out" / "batches" / "ph" / "affine" / "batch-90000.json").read_text())
        assert sorted(i["item"] for i in extra["items"]) == ["affine ph/05->04", "affine ph/06->04"], extra
        r = run_snakemake("-n", "--cores", "2", *args, cwd=tmp_path)
        assert planned_jobs(r.stdout + r.stderr) == [], r.stdout[-2000:]
        # another test subject reruns its batches, not the training (the manifests it reads are ancient)
        (tmp_path / "samples.tsv").write_text((tmp_path / "samples.tsv").read_text()
                                              + "ph\t07\ts3_T1w.nii.gz\ts3_dseg.nii.gz\ttest\n")
        r = run_snakemake("-n", "--cores", "2", *args, cwd=tmp_path)
        plan = {rule for rule, _ in planned_jobs(r.stdout + r.stderr)}
        assert "subjects_batch" in plan and "train_model" not in plan, plan
    pairs = pd.read_csv(tmp_path / "out" / "metrics" / "pairs.tsv", sep="\t", dtype={"moving": str, "fixed": str})
    assert set(pairs.method) == {"affine", "vxm"} and (pairs.status == "ok").all()
    assert set(pairs.moving) == {"02", "03"} and set(pairs.fixed) == {"01"}  # test subjects only, paired
    assert set(pairs.loc[pairs.method == "vxm", "model"]) == {"vxm (ph)"}
    curve = pd.read_csv(tmp_path / "out" / "models" / "vxm" / "training.tsv", sep="\t")
    assert list(curve.step) == [0, 1, 2, 3]  # step 0: the untrained network's validation Dice
    model = checkpoint.read(tmp_path / "out" / "models" / "vxm" / "model.pt")
    assert model["train_subjects"] == ["ph/04", "ph/05"] and model["val_subjects"] == ["ph/06"]
    manifest = json.loads((tmp_path / "out" / "ph" / "sub-02" / "to-01" / "vxm" / "transforms.json").read_text())
    assert manifest["extra"]["train_cohorts"] == ["ph"] and manifest["method"] == "vxm"


def test_a_bad_checkpoint_of_ones_own_is_refused_at_start_naming_the_file(phantom_cohort):
    from tests.conftest import run_snakemake

    d = phantom_cohort
    (d / "mine.pt").write_bytes(b"\x00" * 64)
    (d / "cfg.yaml").write_text("methods: [affine, mine]\nmethod_params:\n  mine: {engine: learned, checkpoint: mine.pt}\n")
    r = run_snakemake("-n", "--cores", "1", "--configfile", d / "cfg.yaml", "--config", f"samples={d / 'samples.tsv'}",
                      f"outdir={d / 'out'}", cwd=d)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and str(d / "mine.pt") in out and "not a readable CohortReg model" in out


def test_training_pairs_are_every_ordered_pair_of_a_cohort_and_validation_fixes_an_unseen_subject():
    """A model trained on pairs to one reference learns that fixed image: training uses every pair of
    training subjects (within a cohort: grids differ across cohorts), and validation's fixed image is
    a validation subject, never one the model trained on."""
    from cohortreg.learn.data import Subject, all_pairs, validation_pairs

    sub = lambda c, n: Subject(c, n, torch.zeros(1, 1, 2, 2, 2), np.zeros((2, 2, 2), np.int64))  # noqa: E731
    train_set = [sub("a", "1"), sub("a", "2"), sub("a", "3"), sub("b", "4"), sub("b", "5")]
    pairs = all_pairs(train_set)
    names = sorted(p.name for p in pairs)
    assert names == sorted(["a/2->1", "a/3->1", "a/1->2", "a/3->2", "a/1->3", "a/2->3", "b/5->4", "b/4->5"])
    val = validation_pairs([sub("a", "v1"), sub("a", "v2"), sub("b", "v3")], train_set, limit=5)
    assert [p.name for p in val] == ["a/v2->v1", "a/v1->v2", "b/4->v3", "a/1->v1", "a/1->v2"]
    assert all(p.name.split("->")[1].startswith("v") for p in validation_pairs([sub("a", "v")], train_set, limit=99))


def test_training_subjects_are_cut_to_their_cohorts_brains_on_one_box():
    from cohortreg.learn.data import Subject, crop_to_brains

    def sub(c, lo, hi):
        img = torch.zeros(1, 1, 40, 40, 40)
        img[..., lo:hi, lo:hi, lo:hi] = 1.0
        return Subject(c, f"{c}{lo}", img, (img[0, 0].numpy() * 3).astype(np.int64), 2.0)

    train_set, val = crop_to_brains([sub("a", 10, 20), sub("a", 12, 25)], [sub("a", 15, 22)], margin_mm=4.0)
    # the union of the three brains (10..25) plus 2 voxels, the same box for training and validation
    assert all(tuple(x.image.shape[2:]) == (19, 19, 19) for x in train_set + val)
    assert float(train_set[0].image[0, 0, 2, 2, 2]) == 1.0 and float(train_set[0].image[0, 0, 1, 1, 1]) == 0.0
    assert np.array_equal(train_set[1].labels, (train_set[1].image[0, 0].numpy() * 3).astype(np.int64))
