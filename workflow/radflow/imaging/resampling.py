"""Interpolation to a new voxel grid (IBSI 2.4, 3.2), the IBSI way.

Grid ("align grid centres"): along each axis with n_old voxels of spacing s_old the new grid has
n_new = ceil(n_old * s_old / s_new) voxels of spacing s_new, placed so that both grids share the same centre. In
source-voxel index coordinates new voxel j sits at

    x_j = ((n_old - 1) - r (n_new - 1)) / 2 + j r,      r = s_new / s_old.

``dimensions: 2D`` resamples in-plane only (the slice spacing is kept). Interpolators are the tensor-product
B-splines of order 0 (nearest), 1 (linear) and 3 (cubic spline, with the spline prefilter); outside the image the
edge value is used (scipy's ``mode="nearest"``, as MIRP, one of the IBSI reference implementations, does; it
also reproduces the IBSI diagnostic image means better than mirroring or a constant). CT intensities
are rounded to integers after interpolation; the mask is interpolated as a float partial-volume fraction, which the
caller thresholds (``partial_volume_threshold``).

Because the target grid is axis-aligned with the source grid, a tensor-product interpolation is separable: it is
computed as three 1D passes (a 2-tap, 4-tap or 1-tap stencil per output position along one axis), which gives the
same numbers as ``scipy.ndimage.map_coordinates`` (tests/test_ibsi_processing.py checks that) at a fraction of the
cost of evaluating 8 or 64 taps per output voxel. Only a window of the target grid may be computed (``windows``):
``prepare`` interpolates just the ROI's bounding box plus the margin the feature families need.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from radflow.imaging import missing_values
from radflow.imaging.roi import mask_extent
from radflow.settings import Settings

ORDERS = {"nearest": 0, "linear": 1, "cubic": 3}
# Edge padding before the cubic spline prefilter, as scipy's map_coordinates does for mode="nearest".
_SPLINE_PAD = 12


class ResamplingError(ValueError):
    pass


@dataclass(frozen=True)
class AxisGrid:
    """The IBSI target grid along one axis, expressed in source-voxel index coordinates."""

    n_old: int
    n_new: int
    first: float  # source index coordinate of target voxel 0
    step: float  # r = s_new / s_old
    spacing_new: float

    @property
    def is_identity(self) -> bool:
        return self.n_new == self.n_old and self.first == 0.0 and self.step == 1.0

    def coordinates(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.n_new if stop is None else stop
        return self.first + np.arange(start, stop, dtype=np.float64) * self.step


def axis_grid(n_old: int, spacing_old: float, spacing_new: float) -> AxisGrid:
    """IBSI "align grid centres": n_new = ceil(n_old s_old / s_new), both grids centred on the same point."""
    if spacing_new <= 0:
        raise ResamplingError(f"target spacing must be positive, got {spacing_new}")
    if spacing_new == spacing_old:
        return AxisGrid(n_old, n_old, 0.0, 1.0, float(spacing_old))
    # Rounding before ceil keeps e.g. 60 * 3.0 / 2.0 = 90.00000000000001 at 90.
    n_new = max(int(math.ceil(round(n_old * spacing_old / spacing_new, 9))), 1)
    step = spacing_new / spacing_old
    first = ((n_old - 1) - step * (n_new - 1)) / 2.0
    return AxisGrid(n_old, n_new, first, step, float(spacing_new))


def target_spacing_zyx(spacing_zyx: tuple[float, float, float], settings: Settings) -> tuple[float, float, float]:
    """The configured spacing as (z, y, x); ``dimensions: 2D`` keeps the slice spacing."""
    interp = settings["interpolation"]
    sx, sy, sz = interp["spacing_mm"]
    if interp["dimensions"] == "2D":  # in-plane only; z may be left null in the settings
        sz = spacing_zyx[0]
    if None in (sx, sy, sz):
        raise ResamplingError(f"interpolation.spacing_mm {interp['spacing_mm']} needs x, y (and z for 3D)")
    return float(sz), float(sy), float(sx)


def grid_for(shape_zyx, spacing_zyx, new_spacing_zyx) -> tuple[AxisGrid, AxisGrid, AxisGrid]:
    return tuple(axis_grid(int(n), float(s), float(t)) for n, s, t in zip(shape_zyx, spacing_zyx, new_spacing_zyx))


# --- 1D stencils ---------------------------------------------------------------------------------------------------

def stencil(coords: np.ndarray, n: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (m, taps) and weights (m, taps) of the order-``order`` B-spline at ``coords``.

    Indices are clamped to [0, n - 1] (edge extension). For order 3 the indices refer to the spline coefficients
    of the axis padded by ``_SPLINE_PAD`` edge values on each side (see ``_spline_coefficients``).
    """
    if order == 0:
        # scipy rounds half up for even orders: floor(x + 0.5)
        idx = np.floor(coords + 0.5).astype(np.int64)[:, None]
        return np.clip(idx, 0, n - 1), np.ones_like(idx, dtype=np.float64)
    base = np.floor(coords)
    t = coords - base
    base = base.astype(np.int64)
    if order == 1:
        idx = np.stack([base, base + 1], axis=1)
        weights = np.stack([1.0 - t, t], axis=1)
        return np.clip(idx, 0, n - 1), weights
    if order == 3:
        t2, t3 = t * t, t * t * t
        weights = np.stack(
            [(1.0 - t) ** 3 / 6.0, (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0, (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
             t3 / 6.0],
            axis=1,
        )
        idx = np.stack([base - 1, base, base + 1, base + 2], axis=1) + _SPLINE_PAD
        return np.clip(idx, 0, n + 2 * _SPLINE_PAD - 1), weights
    raise ResamplingError(f"unsupported interpolation order {order}")


def _spline_coefficients(array: np.ndarray, axis: int) -> np.ndarray:
    """Cubic B-spline coefficients along ``axis`` after edge padding, exactly as map_coordinates(mode='nearest')."""
    pad = [(0, 0)] * array.ndim
    pad[axis] = (_SPLINE_PAD, _SPLINE_PAD)
    padded = np.pad(array, pad, mode="edge")
    return ndimage.spline_filter1d(padded, 3, axis=axis, output=np.float64, mode="nearest")


@numba.njit(cache=True, nogil=True)
def _apply_stencil_inner(src, idx, weights):
    """out[o, j, q] = sum_t w[j, t] src[o, idx[j, t], q] for an axis that is not the last one."""
    n_outer, _, n_inner = src.shape
    m, taps = idx.shape
    out = np.empty((n_outer, m, n_inner), dtype=np.float64)
    for o in range(n_outer):
        for j in range(m):
            row = out[o, j]
            i0 = idx[j, 0]
            w0 = weights[j, 0]
            for q in range(n_inner):
                row[q] = w0 * src[o, i0, q]
            for t in range(1, taps):
                i = idx[j, t]
                w = weights[j, t]
                for q in range(n_inner):
                    row[q] += w * src[o, i, q]
    return out


@numba.njit(cache=True, nogil=True)
def _apply_stencil_last(src, idx, weights):
    """out[o, j] = sum_t w[j, t] src[o, idx[j, t]] along the last (contiguous) axis."""
    n_outer = src.shape[0]
    m, taps = idx.shape
    out = np.empty((n_outer, m), dtype=np.float64)
    for o in range(n_outer):
        for j in range(m):
            acc = 0.0
            for t in range(taps):
                acc += weights[j, t] * src[o, idx[j, t]]
            out[o, j] = acc
    return out


# Source dtypes the kernels read directly (compiled once each); anything else is converted to float64 first.
_KERNEL_DTYPES = tuple(np.dtype(t) for t in (np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64))


def resample_axis(array: np.ndarray, axis: int, grid: AxisGrid, order: int, window: tuple[int, int] | None = None):
    """Interpolate ``array`` along one axis onto ``grid`` (target indices ``window`` = [start, stop) only)."""
    start, stop = window if window is not None else (0, grid.n_new)
    coords = grid.coordinates(start, stop)
    n = array.shape[axis]
    if order == 0:
        idx, _ = stencil(coords, n, 0)
        return np.take(array, idx[:, 0], axis=axis).astype(np.float64, copy=False)
    source = _spline_coefficients(array, axis) if order == 3 else array
    idx, weights = stencil(coords, n, order)
    shape = source.shape
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    src = np.ascontiguousarray(source if source.dtype in _KERNEL_DTYPES else source.astype(np.float64))
    if inner == 1:
        out = _apply_stencil_last(src.reshape(outer, shape[axis]), idx, weights)
    else:
        out = _apply_stencil_inner(src.reshape(outer, shape[axis], inner), idx, weights)
    return out.reshape(shape[:axis] + (stop - start,) + shape[axis + 1:])


def resample_array(
    array: np.ndarray,
    grids: tuple[AxisGrid, ...],
    order: int,
    windows: tuple[tuple[int, int], ...] | None = None,
    *,
    binary: bool = False,
) -> np.ndarray:
    """Separable tensor-product interpolation of a (z, y, x) array onto ``grids`` (optionally a window of them).

    ``binary`` interpolates ``array != 0`` (a mask of any label value) as 0/1. The source is first cut to what the
    window reads (for the cubic spline only along axes that are not resampled: its prefilter needs whole axes), so
    a small window of a large image reads and converts only the part it needs. Axes are then processed from the most
    shrinking to the most growing so intermediate arrays stay small.

    Voxels without a value (NaN, infinite) stay missing, and only where they count: a target voxel is missing when
    its nearest-neighbour or linear stencil gives one of them a weight (the linear stencil for the cubic spline,
    whose prefilter would otherwise spread a single NaN along whole axes). The others are interpolated from the
    array with the missing voxels filled by their finite neighbours' mean (``missing_values.filled``), which only the
    spline's tails see.
    """
    windows = windows or tuple((0, g.n_new) for g in grids)
    cut, grids = [], list(grids)
    for axis, (grid, window) in enumerate(zip(grids, windows)):
        if grid.is_identity:
            cut.append(slice(*window))  # target voxel j is source voxel j
        elif order <= 1:
            lo, hi = _source_window(grid, window, order)
            cut.append(slice(lo, hi))
            grids[axis] = AxisGrid(hi - lo, grid.n_new, grid.first - lo, grid.step, grid.spacing_new)
        else:
            cut.append(slice(None))
    out = np.asarray(array)[tuple(cut)]
    if binary:
        out = (out != 0).view(np.uint8)
    elif (filled := missing_values.filled(out)) is not None:
        missing = _resample_cut((~np.isfinite(out)).view(np.uint8), grids, windows, min(order, 1)) > 0
        values = _resample_cut(filled, grids, windows, order)
        values[missing] = np.nan
        return values
    return _resample_cut(out, grids, windows, order)


def _resample_cut(out: np.ndarray, grids: list[AxisGrid], windows: tuple[tuple[int, int], ...],
                  order: int) -> np.ndarray:
    """``resample_array``'s interpolation of the already cut source ``out``."""
    moving = [a for a in range(out.ndim) if not grids[a].is_identity]
    if not moving:  # never hand back a view of the caller's (or SimpleITK's) buffer
        return np.array(out, dtype=np.float64, order="C", copy=True)
    for axis in sorted(moving, key=lambda a: (windows[a][1] - windows[a][0]) / out.shape[a]):
        out = resample_axis(out, axis, grids[axis], order, windows[axis])
    return np.ascontiguousarray(out, dtype=np.float64)


def _source_window(grid: AxisGrid, window: tuple[int, int], order: int) -> tuple[int, int]:
    """Source index range [lo, hi) that the target window reads (order <= 1)."""
    idx, _ = stencil(grid.coordinates(*window), grid.n_old, order)
    return int(idx.min()), int(idx.max()) + 1


# --- images -----------------------------------------------------------------------------------------------------

# How far (source voxels) beyond the ROI's bounding box its interpolated mask can still be non-zero. Linear and
# nearest are exact; the cubic spline rings on: beyond 3 voxels its fraction is below 0.01 and is set to 0.
_MASK_REACH = {0: 0.5, 1: 1.0, 3: 3.0}


def _check_same_grid(image: sitk.Image, mask: sitk.Image) -> None:
    if image.GetSize() != mask.GetSize():
        raise ResamplingError(f"image size {image.GetSize()} and mask size {mask.GetSize()} differ")
    if not np.allclose(image.GetSpacing(), mask.GetSpacing(), rtol=1e-4, atol=1e-6):
        raise ResamplingError(f"image spacing {image.GetSpacing()} and mask spacing {mask.GetSpacing()} differ")


def roi_windows(
    box: tuple[tuple[int, int], ...], grids: tuple[AxisGrid, ...], reach: float, margin_mm: float
) -> tuple[tuple[int, int], ...]:
    """Target-index ranges covering the source box grown by ``reach`` source voxels, plus ``margin_mm``."""
    windows = []
    for (first, last), grid in zip(box, grids):
        margin = int(math.ceil(margin_mm / grid.spacing_new)) + 1
        j_lo = int(math.floor((first - reach - grid.first) / grid.step)) - margin
        j_hi = int(math.ceil((last + reach - grid.first) / grid.step)) + margin
        windows.append((max(j_lo, 0), min(j_hi + 1, grid.n_new)))
    return tuple(windows)


def resample_image_and_mask(
    image: sitk.Image, mask: sitk.Image, settings: Settings, *, roi_margin_mm: float | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Image and mask on the IBSI target grid of ``settings['interpolation']``.

    Returns (image float64 (z, y, x), mask partial-volume fraction float64 (z, y, x), spacing (z, y, x) in mm).
    Intensities are rounded to integers when ``round_intensities``. The mask (any non-zero label is in the ROI) is
    only interpolated where it can be non-zero. With ``roi_margin_mm`` only the part of the target grid around the
    ROI (its reach plus that margin) is computed and returned; without it, the whole grid.
    """
    _check_same_grid(image, mask)
    interp = settings["interpolation"]
    image_array = sitk.GetArrayViewFromImage(image)
    mask_array = sitk.GetArrayViewFromImage(mask)
    if image_array.ndim != 3:
        raise ResamplingError(f"expected a 3D image, got {image_array.ndim}D")
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    new_spacing = target_spacing_zyx(spacing, settings)
    grids = grid_for(image_array.shape, spacing, new_spacing)
    image_order, mask_order = ORDERS[interp["image_interpolator"]], ORDERS[interp["mask_interpolator"]]

    box = mask_extent(mask_array)
    windows = tuple((0, g.n_new) for g in grids)
    if roi_margin_mm is not None and box is not None:
        windows = roi_windows(box, grids, _MASK_REACH[mask_order], roi_margin_mm)
    image_new = resample_array(image_array, grids, image_order, windows)
    if interp["round_intensities"]:
        np.rint(image_new, out=image_new)

    mask_new = np.zeros(image_new.shape, dtype=np.float64)
    if box is not None:
        reach = roi_windows(box, grids, _MASK_REACH[mask_order], 0.0)
        reach = tuple((max(r0, w0), min(r1, w1)) for (r0, r1), (w0, w1) in zip(reach, windows))
        placed = tuple(slice(r0 - w0, r1 - w0) for (r0, r1), (w0, _) in zip(reach, windows))
        mask_new[placed] = resample_array(mask_array, grids, mask_order, reach, binary=True)
    return image_new, mask_new, new_spacing
