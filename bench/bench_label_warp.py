"""Label warping: ANTs' genericLabel against cohortreg.transforms.label_warp's corner vote, side by side (issue 15).

LPBA40 S02's 56 labels onto S01 at 2 mm and 1 mm, preprocessed as the workflow does, through the
torch affine alone and through [torch warp, affine] (a real registration), as every method's
register job warps them: seconds of each, voxels where they differ, and the pair's Dice by each.

    python bench/bench_label_warp.py      # writes bench/results/label_warp.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "OMP_NUM_THREADS"):  # as a 2-thread job pins them
    os.environ[_var] = "2"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.bench_classical import commit as bench_commit, machine  # noqa: E402
from bench.bench_profile_1mm import preprocessed_lpba  # noqa: E402
from cohortreg.sheet.datasets import SHARED_DATA, available  # noqa: E402


def main() -> int:
    if not available():
        print(f"shared data not found at {SHARED_DATA}", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    from cohortreg.allocator import keep_freed_memory
    from cohortreg.transforms.label_warp import point_map, warp_labels
    from cohortreg.lazy_ants import import_ants
    from cohortreg.evaluation.metrics import summarise_pair
    from cohortreg.registration import get_method
    from cohortreg.registration.affine import estimate_affine_torch

    keep_freed_memory()
    torch.set_num_threads(2)
    ants = import_ants()
    rows = []
    for spacing in (2.0, 1.0):
        work = Path(tempfile.mkdtemp())
        img = preprocessed_lpba(work, spacing)
        (fixed, fixed_labels), (moving, moving_labels) = img["S01"], img["S02"]
        mat = str(work / "affine.mat")
        estimate_affine_torch(fixed, moving, Path(mat), {})
        params = {"engine": "torch", "device": "cpu"}
        tx = get_method("torch", params)(params, 2).register(fixed, moving, mat, work / "torch")
        fl = fixed_labels.numpy().astype(np.int64)
        present = np.unique(moving_labels.numpy().astype(np.int64))
        for name, forward in (("affine", [mat]), ("warp + affine", tx.forward)):
            assert point_map(fixed, forward) is not None
            t0 = time.perf_counter()
            theirs = np.rint(ants.apply_transforms(fixed, moving_labels, list(forward), interpolator="genericLabel").numpy())
            t1 = time.perf_counter()
            ours = warp_labels(fixed, moving_labels, forward).numpy()
            t2 = time.perf_counter()
            dice = [summarise_pair(fl, x.astype(np.int64), present, (spacing,) * 3)[0]["dice_mean"] for x in (theirs, ours)]
            rows.append({"spacing_mm": spacing, "transforms": name, "grid": list(fixed.shape),
                         "ants_generic_label_s": round(t1 - t0, 3), "corner_vote_s": round(t2 - t1, 3),
                         "voxels_differing": int((ours != theirs).sum()), "voxels": int(ours.size),
                         "dice_ants": round(float(dice[0]), 6), "dice_vote": round(float(dice[1]), 6)})
            print(rows[-1], flush=True)
    result = {"benchmark": "label_warp", "commit": bench_commit(), "machine": machine(), "threads": 2,
              "pair": "lpba40 S02 -> S01", "rows": rows}
    dest = ROOT / "bench" / "results" / "label_warp.json"
    dest.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
