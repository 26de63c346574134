"""The torch affine: recovers a known map, writes a .mat that ANTs applies exactly as torch does, is
deterministic on CPU, and runs as the workflow's affine stage (affine.engine: torch)."""

import numpy as np
import pytest
import torch

import ants

from cohortreg.torchreg.affine import (AffineTorchSettings, Geometry, angle_between, register_affine, resample,
                                       write_ants_affine)
from tests.conftest import needs_shared_data, phantom


def phantom_ants(spacing=2.0, **kw):
    t1, _ = phantom(**kw)
    return ants.from_numpy(t1.astype(np.float32), spacing=(spacing,) * 3, origin=(-40.0, -44.0, -36.0))


def known_map(deg=8.0, shift=(4.0, -3.0, 2.0), scale=1.05):
    a = np.deg2rad(deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return rot * scale, np.array(shift)


def as_t(img):
    return torch.from_numpy(np.ascontiguousarray(img.numpy(), dtype=np.float32))[None, None]


def test_the_mat_is_applied_by_ants_exactly_as_torch_resamples(tmp_path):
    fixed, moving = phantom_ants(), phantom_ants(seed=3, shift=(1, -1, 0.5))
    a, t = known_map()
    c = np.array([1.0, -2.0, 3.0])
    mat = write_ants_affine(a, t, c, str(tmp_path / "x.mat"))
    by_ants = ants.apply_transforms(fixed, moving, [mat], interpolator="linear").numpy()
    by_torch = resample(as_t(moving), Geometry.of(fixed), Geometry.of(moving), a, t, c)[0, 0].numpy()
    inside = by_ants > 0.05  # away from the zero padding at the field of view's edge
    assert np.abs(by_ants - by_torch)[inside].max() < 1e-3


def test_a_known_affine_is_recovered_and_cpu_runs_repeat_exactly():
    fixed = phantom_ants()
    a, t = known_map()
    c = np.zeros(3)
    # the moving image: the fixed phantom seen through the inverse map, so that the map registers them
    moving = ants.apply_transforms(fixed, fixed, [write_ants_affine(np.linalg.inv(a), -np.linalg.inv(a) @ t, c,
                                                                    "/tmp/_cohortreg_inv.mat")])
    s = AffineTorchSettings(loss="ncc", scales=(2, 1), rigid_iterations=(60, 30), iterations=(80, 40), lr=0.02)
    torch.set_num_threads(1)
    found, shift, centre = register_affine(as_t(fixed), as_t(moving), Geometry.of(fixed), Geometry.of(moving), s)
    again = register_affine(as_t(fixed), as_t(moving), Geometry.of(fixed), Geometry.of(moving), s)
    assert np.array_equal(found, again[0]) and np.array_equal(shift, again[1])
    # the same physical map up to its centre: compare A and where it sends the centre of mass
    assert angle_between(found[0], a) < 1.5
    assert np.abs(np.linalg.svd(found[0])[1] - np.linalg.svd(a)[1]).max() < 0.03
    x = centre[0]
    assert np.linalg.norm((found[0] @ (x - centre[0]) + centre[0] + shift[0]) - (a @ x + t)) < 1.0


@pytest.mark.workflow
def test_affine_engine_torch_runs_the_workflow(phantom_cohort):
    import pandas as pd

    from tests.conftest import run_snakemake

    d = phantom_cohort
    (d / "cfg.yaml").write_text("preprocess: {spacing: null}\nqc: {brain_ml: [10, 3000]}\naffine: {engine: torch}\n")
    r = run_snakemake("--cores", "2", "--configfile", d / "cfg.yaml", "--config", f"samples={d / 'samples.tsv'}",
                      f"outdir={d / 'out'}", "methods=[affine]", cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    pairs = pd.read_csv(d / "out" / "metrics" / "pairs.tsv", sep="\t")
    assert (pairs.status == "ok").all() and (pairs.dice_mean > 0.85).all(), pairs[["moving", "dice_mean"]]


@needs_shared_data
def test_a_1mm_grid_is_estimated_at_the_2mm_runs_physical_levels():
    """scales_mm: on LPBA40 S02 -> S01 the 1 mm affine is the 2 mm one to within 0.5 mm over the brain's
    box (the 1 mm grid's own levels, 4x finer, cost 4x the time for a map further from it)."""
    import nibabel as nib

    from cohortreg.sheet.datasets import SHARED_DATA
    from cohortreg.io import nib_to_ants

    maps = {}
    for spacing in (2.0, 1.0):
        f, m = (ants.resample_image(nib_to_ants(nib.load(SHARED_DATA / "lpba40" / f"sub-{s}" / "t1w_brain.nii.gz")),
                                    (spacing,) * 3, interp_type=0) for s in ("S01", "S02"))
        a, t, c = register_affine(as_t(f), as_t(m), Geometry.of(f), Geometry.of(m), AffineTorchSettings(loss="ncc"))
        maps[spacing] = (a[0], t[0], c[0])
        if spacing == 2.0:
            corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) * (np.array(f.shape) - 1)
            box = (Geometry.of(f).to_physical() @ np.c_[corners, np.ones(8)].T)[:3].T
    y = {s: (box - c) @ a.T + c + t for s, (a, t, c) in maps.items()}
    assert np.linalg.norm(y[1.0] - y[2.0], axis=1).max() < 0.5


@pytest.mark.parametrize("loss", ["ncc", "lncc", "mse", "mi"])
def test_every_loss_the_config_offers_registers_a_shifted_phantom(loss):
    """affine.torch.loss: ncc | mi | lncc | mse. lncc's box filters could not be differentiated
    (in-place sums written for the deformable engine), so `loss: lncc` crashed every affine job."""
    fixed = phantom_ants()
    moving = ants.apply_transforms(fixed, fixed, [write_ants_affine(np.eye(3), np.array([-4.0, 3.0, -2.0]), np.zeros(3),
                                                                    "/tmp/_cohortreg_shift.mat")])
    s = AffineTorchSettings(loss=loss, scales=(2,), rigid_iterations=(60,), iterations=(0,), lr=0.02)
    found, shift, centre = register_affine(as_t(fixed), as_t(moving), Geometry.of(fixed), Geometry.of(moving), s)
    x = centre[0]  # where the found map sends the centre of mass, against the known 4, -3, 2 mm shift
    assert np.linalg.norm(found[0] @ (x - centre[0]) + centre[0] + shift[0] - (x + np.array([4.0, -3.0, 2.0]))) < 1.0
