"""Our nibabel<->ANTs bridge and our reading of ANTs transforms agree with ANTs itself."""

import os

import numpy as np
import pytest

import ants
import nibabel as nib

from cohortreg.io import ants_to_nib, nib_to_ants
from cohortreg.evaluation.pair import warp_jacobian
from tests.conftest import phantom, save


def oblique_affine():
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([1.2, 0.9, 2.0]) @ np.diag([-1, 1, 1])
    aff[:3, 3] = [30.0, -20.0, 12.0]
    return aff


def test_nib_to_ants_matches_ants_image_read(tmp_path):
    data = np.random.default_rng(0).random((9, 8, 7)).astype(np.float32)
    path = save(data, tmp_path / "x.nii.gz", oblique_affine())
    ours = nib_to_ants(nib.load(path))
    theirs = ants.image_read(path)
    assert np.allclose(ours.origin, theirs.origin, atol=1e-4)
    assert np.allclose(ours.spacing, theirs.spacing, atol=1e-5)
    assert np.allclose(ours.direction, theirs.direction, atol=1e-5)
    assert np.allclose(ours.numpy(), theirs.numpy())
    back = ants_to_nib(ours)
    assert np.allclose(back.affine, nib.load(path).affine, atol=1e-4)


@pytest.fixture(scope="module")
def syn_warp(tmp_path_factory):
    d = tmp_path_factory.mktemp("syn")
    f, _ = phantom(seed=1)
    m, _ = phantom(shift=(2, -1, 1), scale=0.92, seed=2)
    F = ants.from_numpy(f, spacing=(2.0, 2.0, 2.0))
    M = ants.from_numpy(m, spacing=(2.0, 2.0, 2.0))
    reg = ants.registration(F, M, "SyNOnly", syn_metric="CC", syn_sampling=2, reg_iterations=(40, 20),
                            outprefix=str(d / "r_"))
    return F, reg


def test_our_jacobian_matches_ants(syn_warp):
    F, reg = syn_warp
    warp = next(t for t in reg["fwdtransforms"] if t.endswith("Warp.nii.gz"))
    ours = warp_jacobian(warp)
    theirs = ants.create_jacobian_determinant_image(F, warp, do_log=False).numpy()
    # Central differences (ours, as in Learn2Reg's evaluation) and ITK's filter use different
    # stencils: on this strong warp (det 0.45..2.05) they differ by ~0.2 % typically, 2 % at worst.
    inner = (slice(2, -2),) * 3
    diff = np.abs(ours[inner] - theirs[inner])
    assert np.percentile(diff, 50) < 0.005 and np.percentile(diff, 99) < 0.03
    assert abs(ours[inner].mean() - theirs[inner].mean()) < 1e-3
    assert np.corrcoef(ours[inner].ravel(), theirs[inner].ravel())[0, 1] > 0.99
    assert ours.std() > 0.05  # the warp is not trivial


def test_our_reading_of_the_displacement_field_matches_ants_points(syn_warp):
    F, reg = syn_warp
    import pandas as pd

    warp = next(t for t in reg["fwdtransforms"] if t.endswith("Warp.nii.gz"))
    img = nib.load(warp)
    disp = np.asarray(img.dataobj).reshape(img.shape[:3] + (3,))
    ijk = np.array([[10, 12, 9], [20, 22, 18], [15, 30, 20]])
    lps = ijk * 2.0  # ANTs image at origin 0, identity direction, 2 mm
    # ANTs maps points with the inverse of the image transform list: the forward warp maps
    # fixed-space points into moving space, x -> x + u(x).
    pts = pd.DataFrame(lps, columns=["x", "y", "z"])
    moved = ants.apply_transforms_to_points(3, pts, [warp], whichtoinvert=[False]).to_numpy()
    expected = lps + disp[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    assert np.allclose(moved, expected, atol=1e-3)


def test_uint8_label_maps_survive_resampling(tmp_path):
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[5:15, 5:15, 5:15] = 200
    img = nib.load(save(lab, tmp_path / "lab.nii.gz", np.diag([1.0, 1.0, 1.0, 1.0])))
    a = nib_to_ants(img)
    out = ants.resample_image(a, (2.0, 2.0, 2.0), use_voxels=False, interp_type=1).numpy()
    assert set(np.unique(out)) == {0, 200}


def test_resampled_skull_stripped_scan_keeps_an_exactly_zero_background(tmp_path):
    """B-spline resampling rings (values of 1e-40 everywhere): preprocessing must not take
    that for brain, or the brain mask, the intensity percentiles and the crop box all break."""
    from cohortreg.subject.preprocess import PreprocessSettings, preprocess_subject

    t1, lab = phantom(shape=(48, 52, 44))
    t1 = np.pad(t1, 10)  # skull-stripped: a brain in an exactly-zero background
    path = save(t1 * 1000, tmp_path / "t1.nii.gz", np.diag([1.3, 1.3, 1.3, 1.0]))
    out = preprocess_subject("01", path, settings=PreprocessSettings(spacing=1.0)).t1.get_fdata()
    brain_fraction = (lab > 0).sum() * 1.3 ** 3 / out.size
    # a one-voxel partial-volume shell is brain too (1.25x here); the ringing made it the whole grid
    assert (out != 0).mean() < brain_fraction * 1.5, ((out != 0).mean(), brain_fraction)
    assert out.max() == 1.0


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_atomic_writes_keep_the_umask(tmp_path, umask):
    import nibabel as nib

    from cohortreg.io import save_atomic, write_text_atomic

    old = os.umask(umask)
    try:
        write_text_atomic("x\n", tmp_path / "a.json")
        save_atomic(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), tmp_path / "b.nii.gz")
        open(tmp_path / "plain", "w").close()
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert {oct(os.stat(tmp_path / n).st_mode & 0o777) for n in ("a.json", "b.nii.gz", "plain")} == {oct(want)}
