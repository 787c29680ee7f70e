"""Voxels without a value (NaN, infinite: parametric maps hold them where a fit failed or outside the body) in the
operations that combine neighbouring voxels, interpolation and filtering.

Such an operation must neither spread a missing value further than it reaches (the cubic spline's prefilter runs
along whole axes; a running-sum filter along whole lines) nor invent one. The operations therefore run on a copy
with the missing voxels filled (``filled``), and the output voxels whose stencil reaches a missing voxel are marked
missing again (for a filter of known support: ``reached``).
"""
from __future__ import annotations

import numpy as np


def filled(array: np.ndarray) -> np.ndarray | None:
    """A float64 copy of ``array`` with every NaN or infinite voxel replaced by the mean of its finite face
    neighbours, layer by layer into larger gaps; None when every voxel is finite (or none is)."""
    if array.dtype.kind != "f":
        return None
    missing = ~np.isfinite(array)
    if not missing.any() or missing.all():
        return None
    out = np.where(missing, 0.0, array).astype(np.float64)
    while missing.any():
        total, count = np.zeros(out.shape), np.zeros(out.shape)
        known = ~missing
        for axis in range(out.ndim):
            for to, source in ((_cut(out.ndim, axis, 0, -1), _cut(out.ndim, axis, 1, None)),
                               (_cut(out.ndim, axis, 1, None), _cut(out.ndim, axis, 0, -1))):
                total[to] += np.where(known[source], out[source], 0.0)
                count[to] += known[source]
        found = missing & (count > 0)
        out[found] = total[found] / count[found]
        missing &= ~found
    return out


def reached(missing: np.ndarray, radius: tuple[int, ...]) -> np.ndarray:
    """The voxels within ``radius`` voxels per axis (a box) of a ``missing`` voxel: those an operation of that
    support computes from at least one missing value."""
    out = missing.copy()
    for axis, r in enumerate(radius):
        grown = out.copy()
        for shift in range(1, min(int(r), out.shape[axis] - 1) + 1):
            grown[_cut(out.ndim, axis, 0, -shift)] |= out[_cut(out.ndim, axis, shift, None)]
            grown[_cut(out.ndim, axis, shift, None)] |= out[_cut(out.ndim, axis, 0, -shift)]
        out = grown
    return out


def _cut(ndim: int, axis: int, start: int, stop: int | None) -> tuple[slice, ...]:
    return tuple(slice(start, stop) if a == axis else slice(None) for a in range(ndim))
