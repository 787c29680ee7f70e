"""Compiled kernels: numba functions built ahead of time for this machine where possible (``radflow kernels build``),
just in time otherwise. ``kernel`` is the decorator feature modules use in place of ``numba.njit``."""
from radflow.compiled.dispatch import kernel, status

__all__ = ["kernel", "status"]
