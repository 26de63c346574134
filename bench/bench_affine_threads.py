"""The torch affine across thread counts (issue 15): LPBA40 S05 to S01 at 2 mm (the preprocessed brains
of a throughput run), each thread count twice.

    python bench/bench_affine_threads.py OUT/lpba40    # prints; the result is in bench/results/affine_torch_threads.txt
"""

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cohortreg.io import nib_to_ants  # noqa: E402
from cohortreg.registration.affine import estimate_affine_torch  # noqa: E402
from cohortreg.transforms.files import read_affine_mat  # noqa: E402
from cohortreg.torchreg.affine import angle_between  # noqa: E402

d = Path(sys.argv[1])
f = nib_to_ants(nib.load(str(d / "sub-S01/anat/sub-S01_desc-brain_T1w.nii.gz")))
m = nib_to_ants(nib.load(str(d / "sub-S05/anat/sub-S05_desc-brain_T1w.nii.gz")))
out: dict[int, list[np.ndarray]] = {}
for n in (1, 2, 1, 2):
    torch.set_num_threads(n)
    p = Path(f"/tmp/affine_threads_{n}.mat")
    estimate_affine_torch(f, m, p, {})
    out.setdefault(n, []).append(read_affine_mat(str(p)))
print("1 thread, two runs identical:", np.array_equal(*out[1]), "; 2 threads, two runs identical:", np.array_equal(*out[2]))
a, b = out[1][0], out[2][0]
print(f"1 vs 2 threads: max |linear part difference| {np.abs(a[:3, :3] - b[:3, :3]).max():.2e}, translation "
      f"{np.abs(a[:3, 3] - b[:3, 3]).max():.2e} mm, rotation {angle_between(a[:3, :3], b[:3, :3]):.2e} degrees")
