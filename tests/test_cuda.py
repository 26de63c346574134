"""The CUDA paths: the torch engine, its stacks, the torch affine and the learned network's inference on a
GPU give what they give on the CPU. Skipped without CUDA (CI has none); bench/gpu_check.sh runs them on a
lent GPU machine. Synthetic volumes only: the device machine has no ../shared/data."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from cohortreg.torchreg.affine import AffineTorchSettings, Geometry, register_affine
from cohortreg.torchreg.greedy import GreedySettings, register_greedy

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (bench/gpu_check.sh runs these on a GPU)")
CUDA = torch.device("cuda")


def smooth_pair(shape=(48, 56, 40), shift=(1.5, -1.0, 0.5), seed=0, n=1):
    """n pairs of smooth random volumes, each moving image its fixed one shifted (voxels): [n, 1, *shape]."""
    rng = np.random.default_rng(seed)
    fixed = [ndimage.gaussian_filter(rng.standard_normal(shape), 2.0) for _ in range(n)]
    moving = [ndimage.shift(f, shift, order=1) for f in fixed]
    as_t = lambda xs: torch.tensor(np.stack(xs), dtype=torch.float32)[:, None]  # noqa: E731
    return as_t(fixed), as_t(moving)


def test_the_greedy_engine_on_cuda_gives_the_cpus_field_and_repeats_exactly():
    f, m = smooth_pair()
    s = GreedySettings(scales=(2, 1), iterations=(20, 10), window=5, lr=0.15, warp_sigma=0.75)
    cpu = register_greedy(f, m, s)
    gpu = [register_greedy(f.to(CUDA), m.to(CUDA), s) for _ in range(2)]
    assert torch.equal(gpu[0], gpu[1])  # deterministic on the GPU too
    assert float(cpu.abs().max()) > 0.5
    assert float((gpu[0].cpu() - cpu).abs().max()) < 0.02  # voxels: float arithmetic, not the method, differs


def test_a_stack_on_cuda_gives_each_pair_its_own_field():
    f, m = smooth_pair(n=3, seed=1)
    s = GreedySettings(scales=(2, 1), iterations=(20, 10))
    stack = register_greedy(f.to(CUDA), m.to(CUDA), s).cpu()
    for i in range(3):
        single = register_greedy(f[i:i + 1].to(CUDA), m[i:i + 1].to(CUDA), s).cpu()
        assert torch.allclose(stack[i:i + 1], single, atol=1e-3), float((stack[i:i + 1] - single).abs().max())


def test_the_torch_affine_on_cuda_recovers_a_shift_as_on_the_cpu():
    f, m = smooth_pair(shape=(64, 72, 56), shift=(3.0, -2.0, 1.5), seed=2)
    geom = Geometry(np.zeros(3), np.full(3, 2.0), np.eye(3), tuple(f.shape[2:]))
    s = AffineTorchSettings(loss="ncc")
    a_cpu, t_cpu, _ = register_affine(f, m, geom, geom, s)
    a_gpu, t_gpu, _ = register_affine(f.to(CUDA), m.to(CUDA), geom, geom, s)
    # the moving image is the fixed one moved by +shift, so a fixed point x maps to x + shift (2 mm voxels)
    np.testing.assert_allclose(t_cpu[0], 2.0 * np.array([3.0, -2.0, 1.5]), atol=0.5)
    np.testing.assert_allclose(t_gpu, t_cpu, atol=0.05)
    np.testing.assert_allclose(a_gpu, a_cpu, atol=1e-3)


def test_learned_inference_on_cuda_gives_the_cpus_fields():
    pytest.importorskip("monai", reason="MONAI not installed (bench/gpu_check.sh carries its wheel)")
    from cohortreg.learn.network import build_network, infer, pooling_factor

    torch.manual_seed(0)
    net = build_network((8, 16, 16, 16), 7).eval()
    with torch.no_grad():
        for p in net.parameters():  # a network that moves voxels (a fresh one predicts ~0)
            p.normal_(0, 0.05)
        f, m = smooth_pair(shape=(64, 72, 56), seed=3)
        u_cpu, v_cpu = infer(net, f, m, 2, pooling_factor((8, 16, 16, 16)))
        u_gpu, v_gpu = infer(net.to(CUDA), f.to(CUDA), m.to(CUDA), 2, pooling_factor((8, 16, 16, 16)))
    assert float(u_cpu.abs().max()) > 0.05
    assert torch.allclose(u_gpu.cpu(), u_cpu, atol=1e-3) and torch.allclose(v_gpu.cpu(), v_cpu, atol=1e-3)
