"""Keep freed memory in the process: glibc's malloc otherwise maps every buffer above 32 MB afresh
and unmaps it when freed, so each large temporary is page-faulted in again.

An optimiser allocates the same field-sized temporaries hundreds of times (a 1 mm displacement
field is 58 MB); with mmap off and the heap never trimmed, a freed buffer is reused from the
heap. On LPBA40's 10 pairs at 1 mm (bench/results/classical_1mm_default_lpba_blocked{,_malloc}.json)
the torch registration fell from 27.8 to 22.2 s a pair and its job from 35.1 to 28.9 s, same Dice;
the job's peak RSS rose from 1.06 to 1.15 GB (freed buffers are kept, not returned, until it exits).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc's allocator to reuse freed buffers (once per process); False where there is no glibc
    (macOS, musl), which then keeps its own allocator."""
    global _done
    if _done is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            _done = False
        else:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _done = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _done
