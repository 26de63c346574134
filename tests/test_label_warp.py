"""cohortreg.transforms.label_warp gives antsApplyTransforms' genericLabel labels, voxel for voxel."""

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage

from cohortreg.sheet.datasets import SHARED_DATA
from cohortreg.io import nib_to_ants
from cohortreg.transforms.label_warp import point_map, warp_labels
from cohortreg.registration.torch_greedy import voxel_to_ants_field
from tests.conftest import needs_shared_data


def ants_labels(fixed, labels, forward):
    out = ants.apply_transforms(fixed, labels, list(forward), interpolator="genericLabel")
    return np.rint(out.numpy())


def write_affine(path, angle_deg=8.0, scale=(1.05, 0.93, 1.02), shear=0.06, shift=(3.0, -4.5, 2.2), centre=(0, 0, 0)):
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    m = rot @ np.array([[1, shear, 0], [0, 1, 0], [0, 0, 1]]) @ np.diag(scale)
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3, matrix=m,
                                    translation=shift, center=centre)
    ants.write_transform(tx, str(path))
    return str(path)


@needs_shared_data
def test_real_labels_through_a_warp_and_an_affine_match_ants_generic_label(tmp_path):
    """LPBA40 S02's 56 labels onto S01's grid at 2 mm (tilted, so the grids' axes differ), through a
    smooth random field and a sheared affine, and through the affine alone."""
    d = SHARED_DATA / "lpba40"
    labels = ants.resample_image(nib_to_ants(nib.load(d / "sub-S02" / "labels_lpba56.nii.gz")), (2, 2, 2), interp_type=1)
    fixed = ants.resample_image(nib_to_ants(nib.load(d / "sub-S01" / "t1w_brain.nii.gz")), (2, 2, 2))
    tilt = np.deg2rad(12)
    fixed.set_direction(np.asarray(fixed.direction) @ np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)],
                                                               [0, np.sin(tilt), np.cos(tilt)]]))
    centre = np.asarray(fixed.origin) + np.asarray(fixed.direction) @ (np.asarray(fixed.shape) * fixed.spacing / 2)
    mat = write_affine(tmp_path / "affine.mat", centre=centre)
    rng = np.random.default_rng(3)
    u = np.stack([ndimage.gaussian_filter(rng.standard_normal(fixed.shape), 3.0) for _ in range(3)])
    u *= 2.5 / np.abs(u).max()  # up to 2.5 voxels
    warp = str(tmp_path / "warp.nii")
    ants.image_write(voxel_to_ants_field(u, fixed), warp)
    for forward in ([warp, mat], [mat]):
        assert point_map(fixed, forward) is not None  # the vote, not ANTs, made these
        ours, theirs = warp_labels(fixed, labels, forward).numpy(), ants_labels(fixed, labels, forward)
        assert len(np.unique(theirs)) > 50
        assert (ours == theirs).mean() >= 0.99999, (forward, int((ours != theirs).sum()))


def test_a_tie_goes_to_the_smaller_label_and_the_edges_follow_itk(tmp_path):
    """Half a voxel between labels 5 and 3: both weigh 0.5 and ITK keeps the first (smaller). Points
    within half a voxel of the moving grid take the border's label; points further out take 0."""
    moving = np.zeros((6, 3, 3), np.float32)
    moving[:3], moving[3:] = 5, 3
    labels = ants.from_numpy(moving)
    fixed = ants.from_numpy(np.zeros((8, 3, 3), np.float32), origin=(-1.5, 0.0, 0.0))
    mat = write_affine(tmp_path / "shift.mat", angle_deg=0, scale=(1, 1, 1), shear=0, shift=(0.5, 0, 0))
    ours, theirs = warp_labels(fixed, labels, [mat]).numpy(), ants_labels(fixed, labels, [mat])
    assert ours[:, 1, 1].tolist() == theirs[:, 1, 1].tolist()
    # fixed x = -1.5 + i, moving index x + 0.5 = i - 1: -1 is outside, 0..5 inside, 6 outside
    assert ours[0, 1, 1] == 0 and ours[1, 1, 1] == 5 and ours[-1, 1, 1] == 0
    half = write_affine(tmp_path / "half.mat", angle_deg=0, scale=(1, 1, 1), shear=0, shift=(0.0, 0, 0))
    fixed_half = ants.from_numpy(np.zeros((6, 3, 3), np.float32), origin=(-0.5, 0.0, 0.0))
    ours, theirs = warp_labels(fixed_half, labels, [half]).numpy(), ants_labels(fixed_half, labels, [half])
    assert ours[:, 1, 1].tolist() == theirs[:, 1, 1].tolist()
    assert ours[3, 1, 1] == 3  # continuous index 2.5: label 5 and label 3 weigh 0.5 each
    assert ours[0, 1, 1] == 5  # index -0.5: inside ITK's buffer, the border voxel's label


def test_other_transform_lists_go_through_ants(tmp_path):
    data = np.zeros((10, 9, 8), np.float32)
    data[2:6, 3:7, 2:5] = 4
    data[5:9, 1:4, 4:8] = 7
    labels = ants.from_numpy(data)
    a = write_affine(tmp_path / "a.mat", angle_deg=5, shift=(0.4, -0.3, 0.2))
    b = write_affine(tmp_path / "b.mat", angle_deg=-3, shift=(-0.2, 0.1, 0.5))
    assert point_map(labels, [a, b]) is None
    assert np.array_equal(warp_labels(labels, labels, [a, b]).numpy(), ants_labels(labels, labels, [a, b]))


@needs_shared_data
def test_preprocessing_resamples_labels_as_ants_and_differs_only_on_exact_ties():
    """resample_labels (preprocessing's label map onto the working grid) against ANTs'
    resample_image_to_target genericLabel on LPBA40 S01's raw labels: identical at 2 mm; at 1.3 mm a
    few hundred voxels sit on an exact tie (two labels with equal weight, e.g. half a voxel between
    them), decided by rounding in both, and those are the only voxels that differ."""
    from cohortreg.transforms.label_warp import index_to_lps, resample_labels

    d = SHARED_DATA / "lpba40" / "sub-S01"
    t1, lab = (nib.as_closest_canonical(nib.load(d / f)) for f in ("t1w_brain.nii.gz", "labels_lpba56.nii.gz"))
    labels = nib_to_ants(nib.Nifti1Image(np.asarray(lab.dataobj).astype(np.int32), lab.affine))
    data = labels.numpy().astype(int)
    for spacing in (2.0, 1.3):
        grid = ants.resample_image(nib_to_ants(t1), (spacing,) * 3, use_voxels=False, interp_type=0)
        theirs = np.rint(ants.resample_image_to_target(labels, grid, interp_type="genericLabel").numpy())
        ours = resample_labels(labels, grid).numpy()
        differ = np.argwhere(ours != theirs)
        if spacing == 2.0:
            assert len(differ) == 0
            continue
        assert len(differ) < 1e-3 * ours.size
        to_moving = np.linalg.inv(index_to_lps(labels)) @ index_to_lps(grid)
        for p in differ:
            c = to_moving[:3, :3] @ p + to_moving[:3, 3]
            base = np.floor(c).astype(int)
            score = {}
            for corner in range(8):
                bit = [(corner >> k) & 1 for k in (2, 1, 0)]
                w = np.prod([c[k] - base[k] if bit[k] else 1 - (c[k] - base[k]) for k in range(3)])
                value = data[tuple(min(base[k] + bit[k], data.shape[k] - 1) for k in range(3))]
                score[value] = score.get(value, 0.0) + w
            assert abs(score.get(int(ours[tuple(p)]), 0) - score.get(int(theirs[tuple(p)]), 0)) < 1e-9, (p, score)
