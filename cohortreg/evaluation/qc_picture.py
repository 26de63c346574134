"""The picture a person looks at before trusting a pair's number: one PNG per pair and method.

Three orthogonal slices through the centre of the fixed brain mask, each a checkerboard of the
fixed brain and the warped moving image (a misregistration breaks the edges at the tiles'
borders) with the warped labels' contours drawn on top, and a title line with the pair and its
Dice. Pillow (matplotlib's own image library) rather than matplotlib: the metrics job is on every
pair's path, and Pillow imports in a few hundredths of a second.
"""

from __future__ import annotations

import numpy as np

TILE = 8          # checkerboard tile, voxels
TITLE_PX = 14     # title bar height, pixels


def _unit(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Intensities to [0, 1] by the 1st and 99th percentiles inside the mask."""
    vals = a[mask] if mask.any() else a.ravel()
    lo, hi = np.percentile(vals, [1, 99]) if vals.size else (0.0, 1.0)
    return np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def _contours(lab: np.ndarray) -> np.ndarray:
    """Pixels of a 2-D label slice on a boundary between two labels (background included)."""
    edge = np.zeros(lab.shape, bool)
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    return edge & (lab > 0)


def _colours(lab: np.ndarray) -> np.ndarray:
    """A stable colour per label value (golden-ratio hues), RGB in [0, 1]."""
    h = (lab.astype(np.float64) * 0.618033988749895) % 1.0
    k = np.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], -1)
    return 1 - np.clip(np.minimum(k, 4 - k), 0, 1) * 0.85


def slices(vol: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    """Sagittal, coronal, axial slices of a RAS volume, as images (rows top to bottom, superior or
    anterior up)."""
    i, j, k = centre
    return [np.flipud(vol[i, :, :].T), np.flipud(vol[:, j, :].T), np.flipud(vol[:, :, k].T)]


def panel_shape(shape: tuple[int, ...], scale: int) -> tuple[int, int]:
    """(height, width) of the picture of a volume of this shape."""
    h = max(shape[2], shape[1]) * scale   # sagittal (z, y), coronal (z, x), axial (y, x)
    w = (shape[1] + 2 * shape[0]) * scale
    return h + TITLE_PX, w


def overlay(fixed: np.ndarray, warped: np.ndarray, warped_labels: np.ndarray, mask: np.ndarray,
            title: str = "", scale: int = 2) -> np.ndarray:
    """The picture as an RGB uint8 array (see panel_shape for its size)."""
    mask = mask > 0
    idx = np.argwhere(mask) if mask.any() else np.argwhere(np.ones(mask.shape, bool))
    centre = tuple(int(c) for c in np.round(idx.mean(0)))
    f, w = _unit(np.asarray(fixed, float), mask), _unit(np.asarray(warped, float), mask)
    lab = np.asarray(warped_labels).astype(np.int64)
    height, _ = panel_shape(fixed.shape, scale)
    panels = []
    for fs, ws, ls in zip(slices(f, centre), slices(w, centre), slices(lab, centre)):
        yy, xx = np.indices(fs.shape)
        board = np.where(((yy // TILE) + (xx // TILE)) % 2 == 0, fs, ws)
        rgb = np.repeat(board[..., None], 3, -1)
        edge = _contours(ls)
        rgb[edge] = _colours(ls[edge])
        rgb = np.kron(rgb, np.ones((scale, scale, 1)))
        pad = np.zeros((height - TITLE_PX, rgb.shape[1], 3))
        pad[: rgb.shape[0]] = rgb
        panels.append(pad)
    body = (np.concatenate(panels, 1) * 255).astype(np.uint8)
    img = np.concatenate([np.zeros((TITLE_PX, body.shape[1], 3), np.uint8), body], 0)
    if title:
        from PIL import Image, ImageDraw

        pil = Image.fromarray(img)
        ImageDraw.Draw(pil).text((3, 1), title, fill=(255, 255, 255))
        img = np.asarray(pil)
    return img


def write_overlay(path: str, fixed: np.ndarray, warped: np.ndarray, warped_labels: np.ndarray, mask: np.ndarray,
                  title: str = "", scale: int = 2) -> tuple[int, int]:
    """Write the picture of one registered pair as PNG (atomically); returns its (height, width)."""
    from PIL import Image

    from ..io import write_atomic

    img = overlay(fixed, warped, warped_labels, mask, title=title, scale=scale)
    write_atomic(path, lambda tmp: Image.fromarray(img).save(tmp, format="PNG"), ".png")
    return img.shape[0], img.shape[1]
