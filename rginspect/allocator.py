"""Keep freed tensor memory in the process instead of handing it back to the kernel on every free.

glibc serves allocations above its mmap threshold (at most 32 MiB with its dynamic default) with
a fresh mmap and unmaps them on free, so every large tensor a flow allocates costs one page fault
per 4 KiB page when it is first written. On a 100 M-parameter RG-Flow that was 40% of all CPU time,
in the kernel (187 M minor faults over five analyses). Serving large blocks from the heap, and not
trimming the heap top after every free, makes the second and later allocations of a size free of
faults. The price: the process keeps its peak heap until it exits, which a run that ends after its
analyses does not mind.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB free at the heap top before returning it
TOP_PAD = 64 << 20  # grow the heap 64 MiB at a time: fewer brk calls for tensors of a few MiB


def keep_freed_memory() -> bool:
    """Set glibc's allocator to reuse freed memory (see the module docstring); call once at
    start-up, in every process that runs analyses. False where there is no glibc (macOS, musl,
    Windows) or a setting was refused: the defaults stay, which is slower but correct."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
