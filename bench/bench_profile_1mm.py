"""Where a 1 mm torch registration spends its time (issue 15): LPBA40 S02 to S01 at 1 mm.

The torch engine's default schedule run level by level (the same pyramid: each level starts from the
previous level's field, as register_greedy does), then the inverse field, then the writing of both
fields; peak RSS after each step. Preprocessing as the workflow does it (reorient, 1 mm, scaling).

    python bench/bench_profile_1mm.py [NAME.json]   # writes bench/results/profile_torch_1mm.json or NAME.json
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from cohortreg.sheet.datasets import SHARED_DATA, available, subject_files  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def preprocessed_lpba(work: Path, spacing: float, subjects: tuple[str, ...] = ("S01", "S02")) -> dict:
    """LPBA40 subjects preprocessed as the workflow does (reorient, spacing, scaling): id -> (brain,
    labels) as ANTs images."""
    import nibabel as nib

    from cohortreg.io import nib_to_ants
    from cohortreg.subject.stages import preprocess_files

    out_imgs = {}
    for sid in subjects:
        out = [str(work / f"{sid}_{k}") for k in ("t1.nii.gz", "labels.nii.gz", "raw.json")]
        preprocess_files(sid, *(str(p) for p in subject_files("lpba40", sid)),
                         {"reorient": True, "n4": False, "spacing": spacing, "lower_percentile": 0.5,
                          "upper_percentile": 99.5}, *out)
        out_imgs[sid] = (nib_to_ants(nib.load(out[0])), nib_to_ants(nib.load(out[1])))
    return out_imgs


def main() -> int:
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    import torch

    from cohortreg.allocator import keep_freed_memory
    from cohortreg.registration import get_method
    from cohortreg.registration.affine import estimate_affine_torch
    from cohortreg.registration.torch_greedy import invert_displacement
    from cohortreg.torchreg.crop import brain_box, uncrop
    from cohortreg.torchreg.greedy import GreedySettings, register_greedy

    keep_freed_memory()  # as every workflow job does (cohortreg.jobs)
    work = Path(tempfile.mkdtemp())
    brains = preprocessed_lpba(work, 1.0)
    fixed, moving = brains["S01"][0], brains["S02"][0]
    mat = work / "affine.mat"
    estimate_affine_torch(fixed, moving, mat, {})
    params = {"engine": "torch", "device": "cpu"}
    impl = get_method("torch", params)(params, 2)
    dev = impl._setup()
    steps: list[dict] = []

    def step(name: str, t0: float, **extra) -> float:
        t = time.perf_counter()
        steps.append({"step": name, "seconds": round(t - t0, 3), "peak_rss_mb": round(rss_mb(), 1), **extra})
        print(steps[-1], flush=True)
        return t

    t = time.perf_counter()
    f, m = impl._tensors(fixed, moving, str(mat), dev)
    t = step("moving resampled through the affine; tensors", t, grid=list(f.shape[2:]))
    margin = int(16.0 / min(fixed.spacing))
    box = brain_box(f, m, margin=margin)
    fb, mb = f[(..., *box)], m[(..., *box)]
    t = step("brain box", t, box=[s.stop - s.start for s in box])
    p = impl.params
    u = None
    for scale, iters in zip(p["scales"], p["iterations"]):
        s = GreedySettings(scales=(scale,), iterations=(iters,), loss=p["loss"], window=int(p["window"]), lr=float(p["lr"]),
                           grad_sigma=float(p["grad_sigma"]), warp_sigma=float(p["warp_sigma"]))
        u = register_greedy(fb, mb, s, init=u)
        t = step(f"level 1/{scale}: {iters} iterations", t)
        steps[-1]["seconds_per_iteration"] = round(steps[-1]["seconds"] / max(iters, 1), 4)
    v = invert_displacement(u)
    t = step("inverse field (fixed point: 30 half-resolution + 5 full)", t)
    full_u, full_v = uncrop(u, box, tuple(f.shape[2:])), uncrop(v, box, tuple(f.shape[2:]))
    t = step("uncrop both fields to the grid", t)
    impl._write(full_u, full_v, fixed, str(mat), work / "out", dev)
    step("write both fields (uncompressed .nii) and stage the .mat", t)
    total = sum(s["seconds"] for s in steps)
    res = ROOT / "bench" / "results" / (sys.argv[1] if len(sys.argv) > 1 else "profile_torch_1mm.json")
    res.write_text(json.dumps({"benchmark": "profile_torch_1mm", "commit": bench_commit(), "machine": machine(),
                               "threads": torch.get_num_threads(), "pair": "lpba40 S02 -> S01", "total_s": round(total, 2),
                               "steps": steps}, indent=1) + "\n")
    print(f"total {total:.1f} s; wrote {res}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
