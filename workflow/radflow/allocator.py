"""glibc's allocator set up for feature extraction: freed blocks kept for reuse instead of handed back to the kernel.

Extraction allocates and frees the same large temporaries many times (the cropped image, per-family matrices, the
FFT chunks of Moran's I). glibc serves a block above its mmap threshold (128 kB, growing to 32 MB as blocks are
freed) with a fresh ``mmap`` and gives it back with ``munmap``, so every reuse pays its page faults again: a 1 M-voxel
extraction took about 21,600 minor faults (85 MB of pages zeroed anew) and 90-110 ms of system time per call, more on
a virtual machine whose host backs guest memory lazily. With blocks of up to 32 MB taken from the heap and up to
1 GB of free heap kept, the same extraction faults 16 times and its CPU time drops by 8-15 % (benchmarks/README.md).

The price: the process keeps its peak heap until it exits, which a command that extracts and exits does anyway. So
only radflow's command line (every pipeline rule runs through it) applies this; ``radflow.extract`` called inside
another program leaves that program's allocator as it is. Other C libraries (musl, macOS) are left alone.
"""
from __future__ import annotations

import ctypes
import sys

# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest allowed on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD_BYTES = 1 << 30  # free heap kept before any is returned
TOP_PAD_BYTES = 64 << 20  # the heap grows in steps of this much: fewer brk calls


def keep_freed_memory() -> bool:
    """Set glibc's thresholds (module docstring); True when glibc took all three, False on other C libraries."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)  # the C library the interpreter is linked with
    if not hasattr(libc, "gnu_get_libc_version"):  # not glibc (musl's mallopt does nothing)
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                (M_TOP_PAD, TOP_PAD_BYTES))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
