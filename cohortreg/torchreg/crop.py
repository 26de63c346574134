"""Register on the brain's bounding box, not the whole scan grid.

A 1 mm OASIS grid is 160x256x256 voxels, about 60% of them background: every iteration paid
for them, and the fields there were most of the 2.3 GB peak. Both images are skull-stripped
(zero outside the brain), so the optimiser sees no signal there and the field only spreads into
the background by smoothing. We therefore crop to the union of both brains plus a margin,
register there, and continue the field past the box's faces with their own values.
"""

from __future__ import annotations

import torch


def brain_box(*images: torch.Tensor, margin: int, floor: float = 1e-3) -> tuple[slice, slice, slice]:
    """Slices of the voxels where any image [N, 1, D, H, W] exceeds ``floor`` x its maximum,
    grown by ``margin`` voxels.

    A relative floor, not "non-zero": B-spline resampling leaves values of 1e-40 across the
    whole background of a skull-stripped scan (an OASIS brain's non-zero box is its full grid).
    """
    nonzero = torch.zeros(images[0].shape[2:], dtype=torch.bool, device=images[0].device)
    for img in images:
        level = floor * float(img.abs().max())
        nonzero |= (img.abs() > level).any(dim=0).any(dim=0)
    if not bool(nonzero.any()):
        return tuple(slice(0, s) for s in nonzero.shape)  # type: ignore[return-value]
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        idx = torch.nonzero(nonzero.any(dim=others[1]).any(dim=others[0])).flatten()
        lo, hi = int(idx[0]) - margin, int(idx[-1]) + 1 + margin
        box.append(slice(max(lo, 0), min(hi, nonzero.shape[axis])))
    return tuple(box)  # type: ignore[return-value]


def uncrop(u: torch.Tensor, box: tuple[slice, slice, slice], full: tuple[int, ...]) -> torch.Tensor:
    """A field on the box -> the full grid, continued past each cropped face by its face values.

    That is the ``border`` padding every field already gets at the scan's own edge: continuous
    (a zero fill would tear the map where the crop ends) and cheap (an index per axis).
    """
    for axis, (sl, n) in enumerate(zip(box, full)):
        idx = (torch.arange(n, device=u.device) - sl.start).clamp(0, u.shape[2 + axis] - 1)
        u = u.index_select(2 + axis, idx)
    return u
