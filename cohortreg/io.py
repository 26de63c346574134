"""Reading and writing NIfTI with the checks a cohort run needs, and the nibabel <-> ANTs bridge.

nibabel validates (readable, 3D, finite, same grid); ANTs does the resampling and registration.
NIfTI stores RAS world coordinates, ITK/ANTs uses LPS: the bridge flips the first two axes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import nibabel as nib
import numpy as np

from .errors import InputError
from .lazy_ants import import_ants

if TYPE_CHECKING:  # antspyx is heavy to import; only the functions that need it load it
    import ants

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def load_volume(path: str | os.PathLike, subject: str | None = None, what: str = "image") -> nib.Nifti1Image:
    """Load a 3D NIfTI fully into memory, raising InputError on anything a registration cannot use.

    A trailing singleton 4th dimension is dropped; a real 4D series is refused.
    """
    p = str(path)
    if not os.path.exists(p):
        raise InputError(subject, p, f"{what} file does not exist")
    try:
        img = nib.load(p)
    except Exception as exc:  # nibabel raises several types for unreadable headers
        raise InputError(subject, p, f"{what} is not a readable NIfTI ({type(exc).__name__}: {exc})") from exc
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        img = img.slicer[..., 0]
        shape = img.shape
    if len(shape) != 3:
        raise InputError(subject, p, f"{what} must be a 3D volume, got shape {tuple(shape)}")
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # truncated gzip / short file
        raise InputError(subject, p, f"{what} data cannot be read, the file may be truncated ({type(exc).__name__}: {exc})") from exc
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise InputError(subject, p, f"{what} contains NaN or infinite values")
    if min(shape) < 4:
        raise InputError(subject, p, f"{what} is too small to register: shape {tuple(shape)}")
    hdr = img.header.copy()
    out = nib.Nifti1Image(data, img.affine, hdr)
    return out


def check_same_grid(ref: nib.Nifti1Image, other: nib.Nifti1Image, subject: str | None, path: str, what: str,
                    atol_mm: float = 1e-3) -> None:
    """Label maps and masks must share their T1's voxel grid: a silent mismatch corrupts every Dice."""
    if ref.shape[:3] != other.shape[:3]:
        raise InputError(subject, path, f"{what} grid {tuple(other.shape[:3])} does not match the T1 grid {tuple(ref.shape[:3])}")
    if not np.allclose(ref.affine, other.affine, atol=atol_mm):
        raise InputError(subject, path, f"{what} voxel-to-world affine does not match the T1's (different grid or orientation)")


def labels_as_int(img: nib.Nifti1Image, subject: str | None, path: str) -> nib.Nifti1Image:
    """Label maps are often float on disk (OASIS-TRT): cast, refusing values that are not whole numbers."""
    data = np.asanyarray(img.dataobj)
    if data.dtype.kind == "f":
        rounded = np.rint(data)
        if np.abs(data - rounded).max(initial=0.0) > 1e-3:
            raise InputError(subject, path, "label map has non-integer values (is it an intensity image?)")
        data = rounded
    out = nib.Nifti1Image(data.astype(np.int32), img.affine)
    out.header.set_xyzt_units(*img.header.get_xyzt_units())
    return out


def nib_to_ants(img: nib.Nifti1Image) -> "ants.ANTsImage":
    """Convert a nibabel image to ANTs without a temporary file (RAS world -> LPS physical)."""
    ants = import_ants()

    aff = np.asarray(img.affine, dtype=float)
    lin = aff[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    direction = RAS_TO_LPS @ (lin / spacing)
    origin = RAS_TO_LPS @ aff[:3, 3]
    # Always float32: antspyx resampling of a uint8 image returned all zeros (seen with a uint8
    # aseg), which would silently empty a label map or mask.
    data = np.asanyarray(img.dataobj).astype(np.float32)
    return ants.from_numpy(np.ascontiguousarray(data), origin=tuple(origin), spacing=tuple(spacing), direction=direction)


def ants_to_nib(img: "ants.ANTsImage", dtype: type | None = None) -> nib.Nifti1Image:
    """Convert an ANTs image to nibabel (LPS physical -> RAS world)."""
    spacing = np.asarray(img.spacing, dtype=float)
    direction = np.asarray(img.direction, dtype=float)
    aff = np.eye(4)
    aff[:3, :3] = RAS_TO_LPS @ direction * spacing
    aff[:3, 3] = RAS_TO_LPS @ np.asarray(img.origin, dtype=float)
    data = img.numpy()
    if dtype is not None:
        data = data.astype(dtype)
    out = nib.Nifti1Image(data, aff)
    out.set_qform(aff, code=1)
    out.set_sform(aff, code=1)
    out.header.set_xyzt_units("mm")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary(path: Path, suffix: str = "") -> tuple[int, str]:
    """A temporary file beside ``path`` with the mode a plain open() would give it.

    mkstemp makes files 0600 whatever the umask: on a shared cluster the lab could not read its
    own study. The file gets 0666 less the process umask, as every other output does.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def write_atomic(path: str | os.PathLike, write: Callable[[str], None], suffix: str = "") -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then move it into place: a killed job
    never leaves half a file under the final name."""
    path = Path(path)
    fd, tmp = _temporary(path, suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_atomic(img: nib.Nifti1Image, path: str | os.PathLike) -> None:
    """A NIfTI written atomically (the suffix tells nibabel whether to gzip)."""
    write_atomic(path, lambda tmp: nib.save(img, tmp), "".join(Path(path).suffixes) or ".nii.gz")


def file_identity(path: str) -> list[object]:
    """[path, size, mtime in ns] of a file, or [path, None, None] when it is missing: what batch stamps and
    downstream records (cohortreg.upstream) follow. One stat, not an exists() and two stats."""
    try:
        st = os.stat(path)
        return [path, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path, None, None]


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    """Atomic text write (tables, JSON): readers never see a partial file."""
    fd, tmp = _temporary(Path(path))
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
