"""Every bad-input case gets an error naming the subject, the file and the reason."""

import gzip

import nibabel as nib
import numpy as np
import pytest

from cohortreg.errors import InputError
from cohortreg.subject.preprocess import PreprocessSettings, preprocess_subject
from cohortreg.subject.skullstrip import extract_brain, provided_mask
from tests.conftest import phantom, save

FAST = PreprocessSettings(spacing=None)


@pytest.fixture
def good(tmp_path):
    t1, lab = phantom()
    return save(t1, tmp_path / "t1.nii.gz"), save(lab, tmp_path / "lab.nii.gz"), tmp_path


def check(exc, subject, path, reason):
    msg = str(exc.value)
    assert f"subject {subject!r}" in msg and str(path) in msg and reason in msg, msg


def test_good_input_preprocesses(good):
    t1, lab, _ = good
    out = preprocess_subject("S1", t1, lab, FAST)
    assert out.t1.get_fdata().max() == pytest.approx(1.0) and set(np.unique(out.labels.get_fdata())) == {0, 1, 2, 3, 4}


def test_missing_file(good):
    _, _, d = good
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", str(d / "absent.nii.gz"), settings=FAST)
    check(exc, "S1", d / "absent.nii.gz", "does not exist")


def test_unreadable_file(good):
    _, _, d = good
    p = d / "junk.nii.gz"
    p.write_bytes(b"this is not a nifti")
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", str(p), settings=FAST)
    check(exc, "S1", p, "not a readable NIfTI")


def test_truncated_file(good):
    t1, _, d = good
    raw = gzip.decompress(open(t1, "rb").read())
    p = d / "trunc.nii.gz"
    p.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", str(p), settings=FAST)
    check(exc, "S1", p, "truncated")


def test_4d_image(good):
    _, _, d = good
    p = save(np.zeros((10, 10, 10, 3), np.float32), d / "four.nii.gz")
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", p, settings=FAST)
    check(exc, "S1", p, "must be a 3D volume, got shape (10, 10, 10, 3)")


def test_label_map_on_another_grid(good):
    t1, _, d = good
    _, lab = phantom(shape=(40, 44, 30))
    p = save(lab, d / "other_grid.nii.gz")
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", t1, p, FAST)
    check(exc, "S1", p, "does not match the T1 grid")
    _, lab = phantom()
    p2 = save(lab, d / "shifted.nii.gz", affine=np.diag([2.0, 2.0, 2.0, 1.0]) + np.eye(4) * 0 + np.array(
        [[0, 0, 0, 5.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", t1, p2, FAST)
    check(exc, "S1", p2, "affine does not match")


def test_empty_mask(good):
    t1, _, d = good
    p = save(np.zeros((40, 44, 36), np.uint8), d / "empty_mask.nii.gz")
    img = preprocess_subject("S1", t1, settings=FAST).t1
    with pytest.raises(InputError) as exc:
        provided_mask("S1", img, t1, p)
    check(exc, "S1", p, "brain mask is empty")
    with pytest.raises(InputError, match="gives no mask"):
        extract_brain("S1", img, "provided", None)


def test_label_map_that_is_an_intensity_image(good):
    t1, _, d = good
    p = save(np.random.default_rng(0).random((40, 44, 36)).astype(np.float32), d / "float_labels.nii.gz")
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", t1, p, FAST)
    check(exc, "S1", p, "non-integer values")


def test_all_zero_t1(good):
    _, _, d = good
    p = save(np.zeros((40, 44, 36), np.float32), d / "zeros.nii.gz")
    with pytest.raises(InputError) as exc:
        preprocess_subject("S1", p, settings=FAST)
    check(exc, "S1", p, "all zeros")
    assert isinstance(nib.load(p), nib.Nifti1Image)
