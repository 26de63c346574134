"""A packed training set (cohortreg.learn.packed) holds exactly what training reads: training from it gives the
model that training from the workflow's files gives, on CPU; and the device a training runs on is chosen as
its setting says."""

import numpy as np
import pytest
import torch

from cohortreg.learn import checkpoint
from cohortreg.learn.packed import pack_from_files, train_from_packed, unpack
from cohortreg.learn.train import train_from_files, training_device
from tests.conftest import phantom, save

TINY = dict(channels=[4, 8], grid_scale=1, lr=3e-3, val_every=2, checkpoint_every=2, integration_steps=4, steps=3,
            supervision="weak", crop_margin_mm=4.0)


def _rows(tmp_path):
    import ants

    identity = str(tmp_path / "identity.mat")
    ants.write_transform(ants.create_ants_transform(transform_type="AffineTransform", dimension=3), identity)
    files = {}
    for i, (shift, scale) in enumerate([((0, 0, 0), 1.0), ((2, -1, 1), 0.93), ((-1, 2, -1), 1.06), ((1, 1, 0), 0.97),
                                        ((0, -2, 1), 1.03)]):
        t1, lab = phantom(shape=(28, 30, 26), shift=shift, seed=i, scale=scale)
        files[f"s{i}"] = (save(t1, tmp_path / f"s{i}.nii.gz"), save(lab, tmp_path / f"s{i}_dseg.nii.gz"))

    def row(s):
        return {"cohort": "ph", "subject": s, "reference": "s0", "moving": files[s][0], "moving_labels": files[s][1],
                "fixed": files["s0"][0], "fixed_labels": files["s0"][1], "affine": identity}

    return [row(s) for s in ("s1", "s2", "s3")], [row("s4")]


def test_training_from_the_packed_set_gives_the_model_training_from_the_files_gives(tmp_path):
    pairs, val = _rows(tmp_path)
    a = train_from_files(dict(TINY), pairs, val, str(tmp_path / "files"), {})
    packed = pack_from_files(pairs, val, TINY["crop_margin_mm"], tmp_path / "packed" / "ph.npz", {"cohort": "ph"})
    train, val_subjects, meta = unpack(packed)
    assert [x.name for x in train] == ["s0", "s1", "s2", "s3"] and [x.name for x in val_subjects] == ["s4"]
    assert meta["cohort"] == "ph" and train[0].labels.dtype == np.int64
    b = train_from_packed(dict(TINY), [packed], str(tmp_path / "packed_model"), {})
    assert a["best_val_dice"] == pytest.approx(b["best_val_dice"], abs=0) and a["steps_done"] == b["steps_done"] == 3
    wa = checkpoint.read(tmp_path / "files" / "model.pt")["state_dict"]
    wb = checkpoint.read(tmp_path / "packed_model" / "model.pt")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # packed with another crop margin: refused, not silently trained on another box
    with pytest.raises(ValueError, match="crop_margin_mm"):
        train_from_packed({**TINY, "crop_margin_mm": 16.0}, [packed], str(tmp_path / "other"), {})


def test_the_training_device_follows_its_setting():
    assert training_device("cpu").type == "cpu"
    assert training_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            training_device("cuda")
