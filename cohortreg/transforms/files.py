"""ANTs transform files as arrays: an affine ``.mat`` as a 4x4 map of LPS points, a displacement
image as its vectors. The template's shape update and the label warp compose transforms themselves
from these, in ANTs' physical LPS millimetres.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from ..lazy_ants import import_ants

LPS4 = np.diag([-1.0, -1.0, 1.0, 1.0])


def voxel_to_lps(img: nib.Nifti1Image) -> np.ndarray:
    """4x4: a NIfTI image's voxel indices -> LPS mm (its RAS affine with x and y flipped)."""
    return LPS4 @ img.affine


def read_affine_mat(path: str) -> np.ndarray:
    """An ANTs AffineTransform .mat as a 4x4 map of LPS points: y = M (x - c) + c + t."""
    tx = import_ants().read_transform(path)
    p, c = np.asarray(tx.parameters, float), np.asarray(tx.fixed_parameters, float)
    m, t = p[:9].reshape(3, 3), p[9:12]
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = m, t + c - m @ c
    return out


def read_field(path: str) -> np.ndarray:
    """An ANTs displacement image (vectors in LPS mm) as [X, Y, Z, 3] float32 on its own grid."""
    img = nib.load(path)
    return np.asarray(img.dataobj, dtype=np.float32).reshape(img.shape[:3] + (3,))
