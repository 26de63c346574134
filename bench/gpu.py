"""The torch engine, the torch affine and the learned network's inference, timed on each device given
(bench/gpu_check.sh runs it on a lent GPU): the optimisation alone, on smooth synthetic volumes of the
real grids (2 mm: LPBA40's 80x96x80 crop-free grid; 1 mm: 160x192x160), since the device machine has no
../shared/data. Accuracy is the CPU benches' business; this says what a GPU buys per pair and per stack.

    python -m bench run gpu --devices cpu cuda     # bench/results/gpu_check_<host>.json
    python -m bench run gpu --devices cpu --quick  # a check of the script itself on this VM
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from scipy import ndimage

from bench.harness import result_path
from cohortreg.torchreg.affine import AffineTorchSettings, Geometry, register_affine
from cohortreg.torchreg.greedy import GreedySettings, register_greedy

DEFAULT = GreedySettings(scales=(4, 2, 1), iterations=(100, 50, 25), window=5, lr=0.15, warp_sigma=0.75)  # torch's preset


def volumes(shape: tuple[int, ...], n: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    f = [ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 2.0) for _ in range(n)]
    m = [ndimage.shift(x, (1.5, -1.0, 0.5), order=1) for x in f]
    return torch.tensor(np.stack(f))[:, None], torch.tensor(np.stack(m))[:, None]


def timed(call: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up (CUDA start-up and kernels' first launch)."""
    call()
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def cases(quick: bool) -> dict[str, Callable[[torch.device], Callable[[], Any]]]:
    small = (40, 48, 40) if quick else (80, 96, 80)
    big = (80, 96, 80) if quick else (160, 192, 160)

    def greedy(shape, n):
        def make(dev):
            f, m = (x.to(dev) for x in volumes(shape, n))
            return lambda: register_greedy(f, m, DEFAULT)
        return make

    def affine(dev):
        f, m = (x.to(dev) for x in volumes(small))
        geom = Geometry(np.zeros(3), np.full(3, 2.0), np.eye(3), small)
        return lambda: register_affine(f, m, geom, geom, AffineTorchSettings())

    def learned(dev):
        from cohortreg.learn.network import build_network, infer, pooling_factor

        net = build_network((8, 16, 16, 16), 7).eval().to(dev)
        f, m = (x.to(dev) for x in volumes(small))

        def run():
            with torch.no_grad():
                return infer(net, f, m, 2, pooling_factor((8, 16, 16, 16)))
        return run

    out = {f"torch engine, 1 pair {small}": greedy(small, 1), f"torch engine, stack of 8 {small} (per pair)": greedy(small, 8),
           f"torch engine, 1 pair {big}": greedy(big, 1), f"torch affine, 1 pair {small}": affine}
    try:
        import monai  # noqa: F401
        out[f"learned inference, 1 pair {small}"] = learned
    except ImportError:
        print("MONAI not installed: no learned timing", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small grids: checks the script, measures nothing")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    devices = [torch.device(d) for d in args.devices if d != "cuda" or torch.cuda.is_available()]
    rows = []
    for name, make in cases(args.quick).items():
        row: dict[str, Any] = {"case": name}
        for dev in devices:
            seconds = timed(make(dev), dev, args.repeats)
            row[f"{dev.type}_s"] = round(seconds / (8 if "stack of 8" in name else 1), 4)
        rows.append(row)
        print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    res = {"benchmark": "gpu_check", "host": platform.node(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "", "quick": args.quick, "rows": rows}
    path = args.out or result_path("gpu", f"{platform.node()}{'_quick' if args.quick else ''}")
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
