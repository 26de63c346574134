"""The torch engine's pieces against slow references and known fields."""

import ants
import numpy as np
import pandas as pd
import pytest
import torch

from cohortreg.registration.torch_greedy import invert_displacement, voxel_to_ants_field
from cohortreg.torchreg.fields import compose, exp_velocity, grid_sample_parallel, jacobian_determinant, smooth, warp
from cohortreg.torchreg.greedy import GreedySettings, register_greedy
from cohortreg.torchreg.similarity import box_filter, lncc, mutual_information


def slow_lncc(f, m, w, eps=1e-5):
    r = w // 2
    fp, mp = np.pad(f, r), np.pad(m, r)
    out = np.zeros_like(f)
    for i, j, k in np.ndindex(f.shape):
        a = fp[i:i + w, j:j + w, k:k + w]
        b = mp[i:i + w, j:j + w, k:k + w]
        n = w ** 3  # voxelmorph: sums over the window, eps on their products
        cross = (a * b).sum() - a.sum() * b.sum() / n
        va = (a * a).sum() - a.sum() ** 2 / n
        vb = (b * b).sum() - b.sum() ** 2 / n
        out[i, j, k] = cross * cross / (va * vb + eps)
    return -out.mean()


def test_lncc_matches_slow_reference():
    rng = np.random.default_rng(0)
    f = rng.random((7, 8, 6))
    m = 0.5 * f + 0.5 * rng.random((7, 8, 6))
    ours = lncc(torch.tensor(f)[None, None], torch.tensor(m)[None, None], window=3).item()
    assert ours == pytest.approx(slow_lncc(f, m, 3), rel=1e-6)
    assert lncc(torch.tensor(f)[None, None], torch.tensor(f)[None, None], window=3).item() < -0.99


def test_local_ncc_gradient_is_autograds_and_the_stacked_path_is_bitwise_the_same(monkeypatch):
    """LocalNCC's closed-form gradient against autograd of lncc, and its two code paths (box
    filters one at a time, or stacked on a small level) against each other, exactly."""
    import cohortreg.torchreg.similarity as sim

    g = torch.Generator().manual_seed(0)
    f, m = torch.rand(1, 1, 12, 13, 14, generator=g), torch.rand(1, 1, 12, 13, 14, generator=g)
    stacked = sim.LocalNCC(f, 5)(m)
    monkeypatch.setattr(sim, "_BLOCK_BYTES", 0)  # force the one-at-a-time path
    single = sim.LocalNCC(f, 5)(m)
    assert torch.equal(stacked[0], single[0]) and torch.equal(stacked[1], single[1])
    mg = m.clone().double().requires_grad_(True)
    (ref,) = torch.autograd.grad(lncc(f.double(), mg, window=5), mg)
    assert torch.allclose(single[1].double(), ref, rtol=1e-3, atol=1e-7)
    assert abs(single[0].item() - lncc(f, m, window=5).item()) < 1e-5


def test_box_filter_is_a_zero_padded_mean():
    x = torch.randn(1, 2, 9, 10, 11, dtype=torch.float64)
    ref = torch.nn.functional.avg_pool3d(torch.nn.functional.pad(x, (2,) * 6), 5, stride=1)
    assert torch.allclose(box_filter(x, 5), ref, atol=1e-10)


def test_mutual_information_matches_histogram_reference():
    rng = np.random.default_rng(1)
    f = rng.random((16, 16, 16))
    m = np.clip(1 - f + 0.05 * rng.standard_normal(f.shape), 0, 1)  # inverted contrast: MI sees it
    bins = 16
    ours = -mutual_information(torch.tensor(f)[None, None], torch.tensor(m)[None, None], bins=bins).item()
    # Slow reference: the same Parzen estimate with explicit loops over bins.
    c = np.linspace(0, 1, bins)
    s = 1.0 / bins
    wf = np.exp(-0.5 * ((f.reshape(-1, 1) - c) / s) ** 2)
    wm = np.exp(-0.5 * ((m.reshape(-1, 1) - c) / s) ** 2)
    wf /= wf.sum(1, keepdims=True)
    wm /= wm.sum(1, keepdims=True)
    joint = np.zeros((bins, bins))
    for a in range(bins):
        for b in range(bins):
            joint[a, b] = np.mean(wf[:, a] * wm[:, b])
    pf, pm = joint.sum(1), joint.sum(0)
    ref = sum(joint[a, b] * np.log(joint[a, b] / (pf[a] * pm[b])) for a in range(bins) for b in range(bins)
              if joint[a, b] > 0)
    assert ours == pytest.approx(ref, rel=1e-3)
    indep = -mutual_information(torch.tensor(f)[None, None], torch.tensor(rng.random(f.shape))[None, None], bins=bins)
    assert ours > 5 * indep.item()


def test_scaling_and_squaring_of_a_constant_velocity_is_a_translation():
    v = torch.zeros(1, 3, 16, 16, 16, dtype=torch.float64)
    v[:, 1] = 1.5
    disp = exp_velocity(v, steps=6)
    inner = disp[..., 4:-4, 4:-4, 4:-4]
    assert torch.allclose(inner[:, 1], torch.full_like(inner[:, 1], 1.5), atol=1e-6)
    assert inner[:, 0].abs().max() < 1e-9


def test_jacobian_of_a_linear_field():
    A = torch.tensor([[0.1, 0.02, 0.0], [0.0, -0.15, 0.03], [0.04, 0.0, 0.2]], dtype=torch.float64)
    idx = torch.stack(torch.meshgrid(*[torch.arange(10.0, dtype=torch.float64)] * 3, indexing="ij"))
    disp = torch.einsum("ij,jxyz->ixyz", A, idx)[None]
    det = jacobian_determinant(disp)
    assert torch.allclose(det, torch.full_like(det, torch.linalg.det(torch.eye(3, dtype=torch.float64) + A)))


@pytest.mark.parametrize("size", [24, 72])  # 72: the half-resolution start, then full-resolution polish
def test_inverse_composes_to_identity(size):
    torch.manual_seed(0)
    u = smooth(torch.randn(1, 3, size, size, size, dtype=torch.float64), 4.0)
    u = u * (2.0 / u.abs().max())  # smooth, up to 2 voxels
    v = invert_displacement(u)
    err = compose(u, v)[..., 4:-4, 4:-4, 4:-4]  # x -> x + v -> + u(x + v): should be ~0
    assert err.abs().max() < 0.05


def test_ants_file_round_trip(tmp_path):
    ref = ants.from_numpy(np.zeros((20, 22, 18), np.float32), origin=(10.0, -5.0, 3.0), spacing=(2.0, 1.5, 1.0),
                          direction=np.diag([-1.0, -1.0, 1.0]))
    u = np.zeros((3, 20, 22, 18), np.float32)
    u[0], u[1], u[2] = 1.0, -2.0, 0.5  # voxels
    path = str(tmp_path / "w.nii.gz")
    ants.image_write(voxel_to_ants_field(u, ref), path)
    ijk = np.array([[5, 6, 7], [10, 11, 9]])
    pts = np.array([ref.origin]) + (np.asarray(ref.direction) @ (np.array(ref.spacing) * ijk).T).T
    moved = ants.apply_transforms_to_points(3, pd.DataFrame(pts, columns=["x", "y", "z"]), [path]).to_numpy()
    expected = np.array([ref.origin]) + (np.asarray(ref.direction) @ (np.array(ref.spacing) * (ijk + [1.0, -2.0, 0.5])).T).T
    assert np.allclose(moved, expected, atol=1e-4)


def test_greedy_recovers_a_known_shift():
    from scipy import ndimage

    base = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((40, 44, 36)), 2.5)
    shift = (1.5, -1.0, 1.0)
    F = torch.tensor(base, dtype=torch.float32)[None, None]
    M = torch.tensor(ndimage.shift(base, shift, order=3, mode="nearest"), dtype=torch.float32)[None, None]
    u = register_greedy(F, M, GreedySettings(scales=(2, 1), iterations=(60, 30), lr=0.1))
    assert lncc(F, warp(M, u)).item() < lncc(F, M).item() - 0.3
    centre = u[0, :, 10:30, 10:34, 10:26].mean(dim=(1, 2, 3))
    assert torch.allclose(centre, torch.tensor(shift), atol=0.25), centre
    assert (jacobian_determinant(u) > 0).all()


def test_ants_with_our_files_matches_our_own_warping(tmp_path):
    """Our own chain (torch displacement, then the ANTs affine, one nearest-neighbour lookup)
    and antsApplyTransforms with the files we wrote give the same labels (Dice >= 0.99)."""
    from scipy import ndimage

    from cohortreg.evaluation.metrics import dice_per_label
    from cohortreg.registration import TorchGreedy
    from tests.conftest import phantom

    f, _ = phantom(seed=1)
    m, lab = phantom(shift=(1.0, -1.0, 0.5), scale=0.95, seed=2)
    ref = ants.from_numpy(f, origin=(5.0, -3.0, 2.0), spacing=(2.0, 2.0, 2.0), direction=np.diag([-1.0, -1.0, 1.0]))
    mov = ants.from_numpy(m, origin=(5.0, -3.0, 2.0), spacing=(2.0, 2.0, 2.0), direction=np.diag([-1.0, -1.0, 1.0]))
    movlab = mov.new_image_like(lab.astype(np.float32))
    aff = ants.registration(ref, mov, "Affine")["fwdtransforms"][0]
    method = TorchGreedy({"preset": "fast", "iterations": [40, 20], "lr": 0.1, "device": "cpu"}, threads=1)
    tx, _, _ = method.run(ref, mov, aff, tmp_path, movlab)
    # Same interpolator on both sides (the workflow itself uses genericLabel).
    theirs = ants.apply_transforms(ref, movlab, tx.forward, interpolator="nearestNeighbor")
    # Our own: fixed voxel -> + u (voxels) -> physical -> affine -> moving voxel -> nearest label.
    warp_img = ants.image_read(tx.warp)
    disp = warp_img.numpy()  # [X, Y, Z, 3] physical LPS
    idx = np.indices(f.shape).reshape(3, -1).T.astype(float)
    D = np.asarray(ref.direction) @ np.diag(ref.spacing)
    phys = idx @ D.T + np.asarray(ref.origin) + disp.reshape(-1, 3)
    t = ants.read_transform(aff)
    A = np.asarray(t.parameters[:9]).reshape(3, 3)
    c = np.asarray(t.fixed_parameters)
    moved = (phys - c) @ A.T + c + np.asarray(t.parameters[9:])
    vox = np.linalg.solve(D, (moved - np.asarray(mov.origin)).T)
    ours = ndimage.map_coordinates(lab, vox, order=0, mode="constant").reshape(f.shape)
    agree = dice_per_label(ours, theirs.numpy())
    assert min(agree.values()) >= 0.99, agree


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("n,c", [(1, 1), (1, 3), (2, 3)])
def test_sampling_in_slabs_matches_grid_sample(threads, n, c):
    """The slab-parallel grid_sample gives torch's result exactly, odd depths and paddings included."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(n * 10 + c)
    image = torch.rand(n, c, 13, 10, 9, generator=g)
    grid = torch.rand(n, 13, 10, 9, 3, generator=g) * 2.4 - 1.2  # some samples fall outside
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for mode in ("bilinear", "nearest"):
            for padding in ("zeros", "border"):
                ours = grid_sample_parallel(image, grid, mode, padding)
                ref = F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=True)
                assert ours.shape == ref.shape and torch.equal(ours, ref), (mode, padding)
    finally:
        torch.set_num_threads(before)


def test_engine_is_deterministic_on_cpu():
    from scipy import ndimage

    base = ndimage.gaussian_filter(np.random.default_rng(3).standard_normal((32, 36, 28)), 2.0)
    F = torch.tensor(base, dtype=torch.float32)[None, None]
    M = torch.tensor(ndimage.shift(base, (1.0, 0.5, -1.0), order=1), dtype=torch.float32)[None, None]
    runs = [register_greedy(F, M, GreedySettings(scales=(2, 1), iterations=(20, 10))) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("window", [5, 7])
def test_engine_gives_the_same_bits_on_one_and_two_threads(window):
    """batches.THREAD_INVARIANT: a local batch job runs torch's pairs one thread each, so its result may
    not depend on the thread count (a cluster job of 2 threads must give the same numbers). The
    grid is deep enough that the warp is sampled in two slabs, and both LNCC paths run (stacked
    box filters on the coarse level, one at a time on the fine one)."""
    from scipy import ndimage

    base = ndimage.gaussian_filter(np.random.default_rng(5).standard_normal((72, 64, 56)), 2.0)
    F = torch.tensor(base, dtype=torch.float32)[None, None]
    M = torch.tensor(ndimage.shift(base, (1.5, -1.0, 0.5), order=1), dtype=torch.float32)[None, None]
    settings = GreedySettings(scales=(2, 1), iterations=(10, 5), window=window, lr=0.15, warp_sigma=0.75)
    fields = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            u = register_greedy(F, M, settings)
            fields[threads] = (u, invert_displacement(u))
    finally:
        torch.set_num_threads(before)
    assert float(fields[1][0].abs().max()) > 0.5  # it moved
    assert torch.equal(fields[1][0], fields[2][0]) and torch.equal(fields[1][1], fields[2][1])


def test_batched_pairs_match_one_at_a_time():
    """Several same-shape pairs in one batch (the GPU path) give each pair's own result."""
    from scipy import ndimage

    rng = np.random.default_rng(4)
    fixed = [ndimage.gaussian_filter(rng.standard_normal((24, 28, 20)), 2.0) for _ in range(2)]
    moving = [ndimage.shift(f, s, order=1) for f, s in zip(fixed, [(1, 0, 0), (0, -1, 0.5)])]
    as_t = lambda xs: torch.tensor(np.stack(xs), dtype=torch.float32)[:, None]  # noqa: E731
    settings = GreedySettings(scales=(2, 1), iterations=(20, 10))
    batch = register_greedy(as_t(fixed), as_t(moving), settings)
    for i in range(2):
        single = register_greedy(as_t(fixed[i:i + 1]), as_t(moving[i:i + 1]), settings)
        assert torch.allclose(batch[i:i + 1], single, atol=1e-3), (batch[i:i + 1] - single).abs().max()


def test_cropping_to_the_brain_keeps_the_result(tmp_path):
    """The engine registers on the brains' bounding box: same labels as on the whole grid, a field
    continued from the box's faces beyond it, and no folding anywhere on the full grid."""
    from cohortreg.evaluation.metrics import dice_per_label
    from cohortreg.registration import TorchGreedy
    from tests.conftest import phantom

    def padded(a):  # the phantom inside a grid with ~14 voxels of background on each side
        return np.pad(a, ((14, 10), (12, 16), (15, 11)))

    f, flab = phantom(seed=1)
    m, lab = phantom(shift=(1.5, -1.0, 1.0), scale=0.93, seed=2)
    geom = dict(origin=(0.0, 0.0, 0.0), spacing=(2.0, 2.0, 2.0), direction=np.eye(3))
    ref, mov = ants.from_numpy(padded(f), **geom), ants.from_numpy(padded(m), **geom)
    movlab = mov.new_image_like(padded(lab).astype(np.float32))
    aff = str(tmp_path / "id.mat")
    ants.write_transform(ants.create_ants_transform(dimension=3), aff)
    out = {}
    for margin in (0, 12.0):
        params = {"preset": "default", "device": "cpu", "crop_margin_mm": margin}
        d = tmp_path / f"m{margin}"
        d.mkdir()
        tx, warped, warped_labels = TorchGreedy(params, threads=1).run(ref, mov, aff, d, movlab)
        disp = ants.image_read(tx.warp).numpy()
        det = jacobian_determinant(torch.tensor(np.moveaxis(disp, -1, 0)[None] / 2.0))
        assert (det > 0).all(), (margin, float(det.min()))
        out[margin] = (warped_labels.numpy(), disp)
    full, cropped = out[0][0], out[12.0][0]
    before = np.mean(list(dice_per_label(padded(flab), padded(lab)).values()))
    after = np.mean(list(dice_per_label(padded(flab), cropped).values()))
    assert after > before + 0.2, (before, after)  # 0.668 before
    whole = np.mean(list(dice_per_label(padded(flab), full).values()))
    assert after >= whole - 0.005, (whole, after)  # measured: 0.9826 cropped, 0.9830 whole grid
    beyond = out[12.0][1][:5]  # before the box (brain + 6 voxels): the face's values, repeated
    assert np.abs(beyond - beyond[-1:]).max() == 0 and np.abs(beyond).max() > 0


def test_residual_refinement_keeps_its_start_and_adds_a_correction():
    """register_greedy(..., residual=True): from a zero start it is the plain optimiser; from a start
    with detail finer than the coarse levels it returns start + correction, where the plain scheme
    smooths the start away through its levels; a level of 0 iterations is skipped."""
    from scipy import ndimage

    base = ndimage.gaussian_filter(np.random.default_rng(5).standard_normal((32, 36, 28)), 2.0)
    F = torch.tensor(base, dtype=torch.float32)[None, None]
    M = torch.tensor(ndimage.shift(base, (1.0, 0.0, -0.5), order=1), dtype=torch.float32)[None, None]
    settings = GreedySettings(scales=(2, 1), iterations=(20, 10))
    zero = torch.zeros((1, 3, 32, 36, 28))
    assert torch.allclose(register_greedy(F, M, settings, init=zero, residual=True), register_greedy(F, M, settings),
                          atol=1e-6)
    # a start of fine detail (a checkerboard of +-0.3 voxels): kept exactly by the residual scheme with
    # nothing to optimise, and by levels of 0 iterations in either scheme
    start = 0.3 * torch.sign(torch.sin(torch.arange(32.0) * 1.3))[None, None, :, None, None].expand(1, 3, 32, 36, 28)
    none = GreedySettings(scales=(2, 1), iterations=(0, 0))
    assert torch.equal(register_greedy(F, M, none, init=start, residual=True), start)
    assert torch.equal(register_greedy(F, M, none, init=start), start)
    # the true field with detail finer than the coarse level (wavelength 8 voxels): started from it, the
    # residual scheme stays near it; the plain scheme smooths it away through its coarse level
    Mi = torch.tensor(base, dtype=torch.float32)[None, None]
    true = torch.zeros((1, 3, 32, 36, 28))
    true[:, 0] = 0.8 * torch.sin(torch.arange(36.0) * (2 * np.pi / 8))[None, :, None]
    Fi = warp(Mi, true)
    inner = (0, slice(None), slice(6, 26), slice(6, 30), slice(6, 22))
    err = lambda u: (u - true)[inner].abs().mean().item()  # noqa: E731
    engine = GreedySettings(scales=(2, 1), iterations=(20, 10), lr=0.15, window=5, grad_sigma=1.0, warp_sigma=0.75)
    res, plain = (register_greedy(Fi, Mi, engine, init=true, residual=r) for r in (True, False))
    assert err(torch.zeros_like(true)) > 0.15  # (measured: 0.161 from zero, 0.146 plain, 0.014 residual)
    assert err(res) < 0.05 and err(res) < 0.25 * err(plain), (err(res), err(plain))
