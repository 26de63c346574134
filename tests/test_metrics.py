"""Metrics against values computed by hand."""

import numpy as np
import pytest

from cohortreg.evaluation.metrics import dice_per_label, hd95_label, jacobian_determinant, jacobian_stats, summarise_pair


def test_dice_per_label_hand_computed():
    fixed = np.array([[0, 1, 1, 2], [2, 2, 0, 3]])
    warped = np.array([[0, 1, 2, 2], [2, 0, 0, 0]])
    d = dice_per_label(fixed, warped, labels=[1, 2, 3])
    assert d[1] == pytest.approx(2 * 1 / (2 + 1))  # fixed 2 voxels, warped 1, overlap 1
    assert d[2] == pytest.approx(2 * 2 / (3 + 3))  # overlap at (0,3) and (1,0)
    assert d[3] == 0.0  # label vanished after warping counts as zero
    assert 0 not in dice_per_label(fixed, warped)


def test_hd95_of_shifted_cube_is_the_shift_in_mm():
    a = np.zeros((30, 30, 30), bool)
    a[8:20, 8:20, 8:20] = True
    b = np.roll(a, 3, axis=0)
    # Every surface voxel moves by 3 voxels along x at most; spacing 2 mm along x -> 6 mm.
    assert hd95_label(a, b, (2.0, 1.0, 1.0)) == pytest.approx(6.0)
    assert hd95_label(a, a, (1.0, 1.0, 1.0)) == 0.0
    assert np.isnan(hd95_label(a, np.zeros_like(a), (1.0, 1.0, 1.0)))


def test_jacobian_of_linear_field_is_det_of_i_plus_a():
    A = np.array([[0.1, 0.05, 0.0], [0.0, -0.2, 0.02], [0.03, 0.0, 0.15]])
    spacing = np.diag([2.0, 1.5, 1.0])
    idx = np.indices((12, 10, 8)).astype(float)
    x = np.einsum("ij,j...->i...", spacing, idx)  # physical coordinates
    u = np.moveaxis(np.einsum("ij,j...->i...", A, x), 0, -1)
    det = jacobian_determinant(u, spacing)
    assert np.allclose(det, np.linalg.det(np.eye(3) + A))


def test_jacobian_detects_folding_and_sdlogj_of_identity_is_zero():
    u = np.zeros((10, 10, 10, 3))
    det = jacobian_determinant(u, np.eye(3))
    assert jacobian_stats(det) == (0.0, 0.0)
    u[..., 0] = -2.0 * np.indices((10, 10, 10))[0]  # x -> -x: det = -1 everywhere
    folding, _ = jacobian_stats(jacobian_determinant(u, np.eye(3)))
    assert folding == 1.0


def test_summary_uses_labels_present_in_both_subjects():
    fixed = np.zeros((10, 10, 10), int)
    fixed[2:5, 2:5, 2:5] = 1
    fixed[6:9, 6:9, 6:9] = 7  # the moving subject has no label 7: it does not count
    summary, rows = summarise_pair(fixed, fixed.copy(), np.array([0, 1]), (1.0, 1.0, 1.0))
    assert summary["n_labels"] == 1 and summary["dice_mean"] == 1.0 and summary["hd95"] == 0.0
    assert [r["label"] for r in rows] == [1]
