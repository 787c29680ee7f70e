"""Shared machinery of the two directional matrix families, GLCM (co-occurrence) and GLRLM (run length).

Both build one matrix per neighbour direction, per axial slice for 2D, and then combine them in the six IBSI ways
(the IBSI reference manual describes them with the GLCM, section 3.6):

    2D, averaged            features of every (slice, in-plane direction) matrix, averaged
    2D, slice-merged        per slice its 4 in-plane matrices merged (summed); features averaged over slices
    2.5D, direction-merged  per in-plane direction the matrices of all slices merged; features averaged over directions
    2.5D, merged            all slices and in-plane directions summed into one matrix
    3D, averaged            one matrix per 3D direction (13) over the whole volume; features averaged
    3D, merged              the 13 volume matrices summed into one

A 3D in-plane matrix is the sum over slices of the 2D ones (in-plane neighbours never leave their slice), so the
kernels visit the voxels once per in-plane direction for everything 2D, 2.5D and 3D, plus once per out-of-plane
direction when a 3D aggregation is asked for.

Empty matrices (a slice without a single neighbour pair) carry no texture and are left out of the averages, as IBSI
does; a feature that a non-empty matrix leaves undefined (e.g. a correlation with a single grey level) is left out
of the average too. Only when nothing is left is the value NaN, with the reason.

Grey levels are compacted to those present in the ROI before the matrices are built (``compact_grey_levels``):
matrix size then follows the ROI's grey levels, not the discretisation range, and features use the real grey
level values carried alongside.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from radflow.compiled import kernel
from radflow.features.base import FeatureValue, RoiData, bounding_box
from radflow.features.directions import DIRECTIONS_2D, DIRECTIONS_3D

IN_PLANE = DIRECTIONS_2D
OUT_OF_PLANE = DIRECTIONS_3D[DIRECTIONS_3D[:, 0] != 0]

AVERAGED_2D = "2D, averaged"
SLICE_MERGED_2D = "2D, slice-merged"
DIRECTION_MERGED_25D = "2.5D, direction-merged"
MERGED_25D = "2.5D, merged"
AVERAGED_3D = "3D, averaged"
MERGED_3D = "3D, merged"
PER_SLICE_AGGREGATIONS = (AVERAGED_2D, SLICE_MERGED_2D)
VOLUME_AGGREGATIONS = (AVERAGED_3D, MERGED_3D)

# Matrix entries a chunk of per-slice matrices may hold (float64): bounds memory when grey levels are many.
CHUNK_ENTRIES = 1 << 22

NO_MATRIX_REASON = "every matrix of this aggregation is empty (no voxel pairs or runs in the ROI)"


def compact_grey_levels(levels: np.ndarray, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the grey levels present in the ROI as 1..G (0 stays outside); return them and their true values.

    The renumbered array has the smallest unsigned type that holds G (uint8 for up to 255 levels): the kernels
    then read a quarter of the memory of int32 levels, which makes the co-occurrence kernel markedly faster.
    """
    present = _present_levels(levels, int(n_levels))
    values = np.flatnonzero(present[1:]) + 1
    dtype = np.min_scalar_type(values.size)
    lookup = np.zeros(int(n_levels) + 1, dtype=np.int64)
    lookup[values] = np.arange(1, values.size + 1)
    out = np.empty(levels.shape, dtype=dtype)
    _renumber(levels, lookup, out)
    return out, values.astype(np.float64)


@kernel()
def _present_levels(levels: np.ndarray, n_levels: int) -> np.ndarray:
    present = np.zeros(n_levels + 1, dtype=np.bool_)
    for v in levels.ravel():
        if v < 0 or v > n_levels:
            raise ValueError("grey levels must lie in 0..n_levels")
        present[v] = True
    return present


@kernel()
def _renumber(levels: np.ndarray, lookup: np.ndarray, out: np.ndarray) -> None:
    nz, ny, nx = levels.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                out[z, y, x] = lookup[levels[z, y, x]]


def texture_levels(roi: RoiData) -> tuple[np.ndarray, np.ndarray]:
    """The ROI's grey levels as the GLCM and GLRLM kernels read them: cropped to the intensity mask's bounding box
    (the ROI array carries a margin for local intensity that holds no texture) and compacted
    (``compact_grey_levels``). Computed once per ROI and kept in ``roi.cache``: both families use them."""
    key = "texture_levels"
    if key not in roi.cache:
        levels = roi.levels
        if roi.int_mask.any():
            levels = levels[bounding_box(roi.int_mask)]
        roi.cache[key] = compact_grey_levels(np.ascontiguousarray(levels), roi.n_levels)
    return roi.cache[key]


@kernel()
def cooccurrence_counts(levels, n_grey, offsets, z0, z1, per_slice):
    """Co-occurrence counts c[s, d, a-1, b-1] of level a at voxel v and level b at v + offsets[d].

    Voxels v lie in slices z0 <= z < z1; s = z - z0 when ``per_slice`` and 0 otherwise. Level 0 (outside the
    intensity mask) pairs with nothing. The counts are one-sided: symmetrise with the transpose.

    Pairs are counted without a test, in integer matrices with a row and a column for level 0 that are dropped at
    the end (25 % faster than testing each voxel and its neighbour); only the span of each row that holds mask
    voxels is visited.
    """
    n_z, n_y, n_x = levels.shape
    n_dirs = offsets.shape[0]
    out = np.zeros((z1 - z0 if per_slice else 1, n_dirs, n_grey, n_grey))
    counts = np.zeros((n_dirs, n_grey + 1, n_grey + 1), dtype=np.int64)
    first, last = _row_spans(levels)
    # slice-outer loop: one slice's matrices stay in cache while its voxels are visited once per direction
    for z in range(z0, z1):
        for d in range(n_dirs):
            dz, dy, dx = offsets[d, 0], offsets[d, 1], offsets[d, 2]
            if not 0 <= z + dz < n_z:
                continue
            pairs = counts[d]
            for y in range(max(0, -dy), min(n_y, n_y - dy)):
                for x in range(max(first[z, y], -dx), min(last[z, y], n_x - dx)):
                    pairs[levels[z, y, x], levels[z + dz, y + dy, x + dx]] += 1
        if per_slice or z == z1 - 1:
            s = z - z0 if per_slice else 0
            for d in range(n_dirs):
                for a in range(1, n_grey + 1):
                    for b in range(1, n_grey + 1):
                        out[s, d, a - 1, b - 1] += counts[d, a, b]
                        counts[d, a, b] = 0
    return out


@kernel()
def run_length_counts(levels, n_grey, max_run, offsets, z0, z1, per_slice):
    """Run counts r[s, d, a-1, n-1] of runs of n voxels of level a along offsets[d] (a run stops at the mask edge).
    The last axis has ``max_run`` columns (at least the longest run), or, with ``max_run`` <= 0, reaches the
    longest run found: a per-slice stack sized for the longest possible run would be mostly zeros (tens of MB for a
    large ROI). A run belongs to the slice of its first voxel; runs starting in slices z0 <= z < z1 are counted,
    s = z - z0 when ``per_slice`` and 0 otherwise.

    One raster pass per direction with the run length so far, L(v) = L(v - d) + 1 when v - d has v's level and 1
    otherwise; a run is counted at its last voxel (v + d leaves the level). A direction and its opposite give the
    same runs, so d is taken pointing forward in raster order: v - d is visited before v, and L is kept for two
    slices only. Every voxel is read once per direction, in memory order. (Following all directions in one pass
    over the voxels was measured 20 % slower on the 1 M-voxel benchmark ROI.)
    """
    n_dirs = offsets.shape[0]
    out = np.zeros((z1 - z0 if per_slice else 1, n_dirs, n_grey, max_run if max_run > 0 else 64))
    length = np.zeros((2, levels.shape[1], levels.shape[2]), dtype=np.int32)
    first, last = _row_spans(levels)
    longest = 1
    for d in range(n_dirs):
        dz, dy, dx = offsets[d, 0], offsets[d, 1], offsets[d, 2]
        if dz < 0 or (dz == 0 and (dy < 0 or (dy == 0 and dx < 0))):
            dz, dy, dx = -dz, -dy, -dx
        found = _count_runs(levels, first, last, dz, dy, dx, z0, z1, per_slice, length, out[:, d])
        if found > out.shape[3]:  # a run longer than the columns: widen and count this direction again
            out = _widened(out, max(2 * out.shape[3], found), d)
            _count_runs(levels, first, last, dz, dy, dx, z0, z1, per_slice, length, out[:, d])
        longest = max(longest, found)
    return out if max_run > 0 else out[:, :, :, :longest]


@kernel()
def _widened(counts, columns, cleared):
    """``counts`` (s, d, a, n) with ``columns`` run-length columns, direction ``cleared`` zeroed. Element by element:
    a slice assignment costs each signature of ``run_length_counts`` about a second of compilation."""
    n_out, n_dirs, n_grey, n_columns = counts.shape
    grown = np.zeros((n_out, n_dirs, n_grey, columns))
    for s in range(n_out):
        for d in range(n_dirs):
            if d == cleared:
                continue
            for a in range(n_grey):
                for n in range(n_columns):
                    grown[s, d, a, n] = counts[s, d, a, n]
    return grown


@kernel()
def _row_spans(levels):
    """Per row (z, y): the first and one past the last x of a voxel in the mask (level > 0); 0, 0 when empty."""
    n_z, n_y, n_x = levels.shape
    first = np.zeros((n_z, n_y), dtype=np.int64)
    last = np.zeros((n_z, n_y), dtype=np.int64)
    for z in range(n_z):
        for y in range(n_y):
            for x in range(n_x):
                if levels[z, y, x] != 0:
                    if last[z, y] == 0:
                        first[z, y] = x
                    last[z, y] = x + 1
    return first, last


@kernel()
def _count_runs(levels, first, last, dz, dy, dx, z0, z1, per_slice, length, counts) -> int:
    """Adds the runs along the forward direction (dz, dy, dx) to ``counts`` [s, a - 1, n - 1] (runs longer than
    its columns are left out) and returns the longest run found; ``length`` is scratch (2, n_y, n_x). Only the
    span of each row that holds mask voxels is visited (``_row_spans``).

    Every voxel adds one to at_least[s, a, L]: a run of n voxels passes L = 1 .. n, so runs of exactly n number
    at_least[n] - at_least[n + 1]. That spares the test for the run's end and keeps the loop branch-light (the
    unpredictable end test costs more than the increments). In-plane and cross-slice directions have a loop each,
    with the tests that do not change along a row taken out of it (20 % faster than one loop for both)."""
    n_out, n_grey, n_columns = counts.shape
    if dz == 0:
        at_least, too_long = _runs_in_plane(levels, first, last, dy, dx, z0, z1, per_slice, length, n_out, n_grey,
                                            n_columns)
    else:
        at_least, too_long = _runs_across_slices(levels, first, last, dy, dx, z0, z1, per_slice, length, n_out,
                                                 n_grey, n_columns)
    longest = too_long
    for s in range(n_out):
        for g in range(n_grey):
            for n in range(1, n_columns + 2):
                if at_least[s, g, n] > 0:
                    longest = max(longest, n)
    for s in range(n_out):
        for g in range(n_grey):
            for n in range(1, n_columns + 1):
                counts[s, g, n - 1] += at_least[s, g, n] - at_least[s, g, n + 1]
    return longest


@kernel()
def _runs_in_plane(levels, first, last, dy, dx, z0, z1, per_slice, length, n_out, n_grey, n_columns):
    """``at_least`` (see ``_count_runs``) and the longest run beyond the columns, for a direction (0, dy, dx) that
    points forward in raster order; slices z0 <= z < z1."""
    n_z, n_y, n_x = levels.shape
    at_least = np.zeros((n_out, n_grey, n_columns + 2), dtype=np.int64)
    too_long = 0
    for z in range(z0, z1):
        here = z % 2
        s = z - z0 if per_slice else 0
        for y in range(n_y):
            py = y - dy
            if py < 0:  # the previous row is outside: every run starts here
                for x in range(first[z, y], last[z, y]):
                    a = levels[z, y, x]
                    if a != 0:
                        length[here, y, x] = 1
                        at_least[s, a - 1, 1] += 1
                continue
            for x in range(first[z, y], last[z, y]):
                a = levels[z, y, x]
                if a == 0:
                    continue
                px = x - dx
                n = 1
                if 0 <= px < n_x:  # branch-free continuation: whether v - d has v's level is unpredictable
                    n += length[here, py, px] * np.int32(levels[z, py, px] == a)
                length[here, y, x] = n
                if n <= n_columns + 1:
                    at_least[s, a - 1, n] += 1
                else:
                    too_long = max(too_long, n)
    return at_least, too_long


@kernel()
def _runs_across_slices(levels, first, last, dy, dx, z0, z1, per_slice, length, n_out, n_grey, n_columns):
    """``at_least`` (see ``_count_runs``) and the longest run beyond the columns, for a direction (1, dy, dx); only
    runs starting in slices z0 <= z < z1 count, attributed to their first slice. A run may start before z0, so
    it is followed from slice 0."""
    n_z, n_y, n_x = levels.shape
    at_least = np.zeros((n_out, n_grey, n_columns + 2), dtype=np.int64)
    too_long = 0
    every_start = z0 == 0 and z1 == n_z and not per_slice  # the usual call: every run, one volume matrix
    for z in range(n_z):
        here = z % 2
        before = 1 - here
        for y in range(n_y):
            py = y - dy
            previous_row = z >= 1 and 0 <= py < n_y
            for x in range(first[z, y], last[z, y]):
                a = levels[z, y, x]
                if a == 0:
                    continue
                px = x - dx
                n = 1
                if previous_row and 0 <= px < n_x:  # branch-free continuation (unpredictable)
                    n += length[before, py, px] * np.int32(levels[z - 1, py, px] == a)
                length[here, y, x] = n
                if n > n_columns + 1:
                    too_long = max(too_long, n)
                    continue
                if every_start:
                    at_least[0, a - 1, n] += 1
                    continue
                start = z - (n - 1)
                if z0 <= start < z1:
                    at_least[start - z0 if per_slice else 0, a - 1, n] += 1
    return at_least, too_long


@kernel()
def add_finite(values, totals, defined):
    """Adds the finite ``values`` of one matrix to ``totals`` and counts them in ``defined`` (a feature that a matrix
    leaves undefined is left out of the mean)."""
    for f in range(values.size):
        if np.isfinite(values[f]):
            totals[f] += values[f]
            defined[f] += 1


# A family's ``add_features(matrices, totals, defined) -> number of non-empty matrices``: adds the features of every
# non-empty matrix of a float64 C-contiguous stack (n, *shape) to the aggregation's ``totals``, where defined (a
# compiled kernel per family, with ``add_finite``).
AddFeatures = Callable[[np.ndarray, np.ndarray, np.ndarray], int]


class MatrixAggregator:
    """Turns directional matrices into feature values for each requested IBSI aggregation.

    Per aggregation it keeps the sum of each feature over the matrices where it is defined, how many those are, and
    the number of non-empty matrices. Feed the per-slice in-plane matrices chunk by chunk (``add_slices``) or, when
    no 2D aggregation is asked for, their sum over slices (``add_in_plane_volume``); then ``finish`` with the
    out-of-plane volume matrices (or None).
    """

    def __init__(self, aggregations: list[str], add_features: AddFeatures, n_features: int,
                 matrix_shape: tuple[int, ...]):
        self.aggregations = list(aggregations)
        self.add_features = add_features
        self.totals = np.zeros((len(self.aggregations), n_features))
        self.defined = np.zeros((len(self.aggregations), n_features), dtype=np.int64)
        self.matrices = [0] * len(self.aggregations)
        self.in_plane = np.zeros((len(IN_PLANE), *matrix_shape))

    @property
    def needs_slices(self) -> bool:
        return any(agg in PER_SLICE_AGGREGATIONS for agg in self.aggregations)

    @property
    def needs_out_of_plane(self) -> bool:
        return any(agg in VOLUME_AGGREGATIONS for agg in self.aggregations)

    def _average(self, aggregation: str, stack: Callable[[], np.ndarray]) -> None:
        """Adds the features of the matrices ``stack()`` (made only when ``aggregation`` is asked for) to its mean."""
        if aggregation in self.aggregations:
            k = self.aggregations.index(aggregation)
            matrices = np.ascontiguousarray(stack(), dtype=np.float64)
            self.matrices[k] += self.add_features(matrices, self.totals[k], self.defined[k])

    def add_slices(self, stack: np.ndarray) -> None:
        """Per-slice in-plane matrices, shape (slices, len(IN_PLANE), *matrix_shape); the last axis may be cut
        short (run lengths up to the longest run: the missing columns are zero)."""
        self._average(AVERAGED_2D, lambda: stack.reshape(-1, *stack.shape[2:]))
        self._average(SLICE_MERGED_2D, lambda: stack.sum(axis=1))
        self.add_in_plane_volume(stack.sum(axis=0))

    def add_in_plane_volume(self, per_direction: np.ndarray) -> None:
        """In-plane matrices already summed over slices, shape (len(IN_PLANE), *matrix_shape), the last axis maybe
        cut short."""
        self.in_plane[..., :per_direction.shape[-1]] += per_direction

    def finish(self, out_of_plane: np.ndarray | None, undefined_reasons: dict[str, str]) -> list[FeatureValue]:
        self._average(DIRECTION_MERGED_25D, lambda: self.in_plane)
        self._average(MERGED_25D, lambda: self.in_plane.sum(axis=0, keepdims=True))
        if self.needs_out_of_plane:
            if out_of_plane is None:
                volume = self.in_plane
            else:
                volume = np.zeros((len(out_of_plane) + len(self.in_plane),) + self.in_plane.shape[1:])
                volume[:len(out_of_plane), ..., :out_of_plane.shape[-1]] = out_of_plane
                volume[len(out_of_plane):] = self.in_plane
            self._average(AVERAGED_3D, lambda: volume)
            self._average(MERGED_3D, lambda: volume.sum(axis=0, keepdims=True))
        return [
            value
            for k, aggregation in enumerate(self.aggregations)
            for value in _means(aggregation, self.matrices[k], self.totals[k], self.defined[k], undefined_reasons)
        ]


def _means(aggregation: str, matrices: int, totals: np.ndarray, defined: np.ndarray,
           undefined_reasons: dict[str, str]) -> list[FeatureValue]:
    """One aggregation's feature values: each feature's mean over the matrices where it is defined."""
    if matrices == 0:
        return [FeatureValue.undefined(code, aggregation, NO_MATRIX_REASON) for code in undefined_reasons]
    means = (totals / np.maximum(defined, 1)).tolist()
    return [
        FeatureValue(code, aggregation, mean) if count else FeatureValue.undefined(code, aggregation, reason)
        for (code, reason), mean, count in zip(undefined_reasons.items(), means, defined.tolist())
    ]


def slice_chunks(n_slices: int, entries_per_slice: int) -> Iterator[tuple[int, int]]:
    """Consecutive slice ranges [z0, z1) whose per-slice matrices stay within CHUNK_ENTRIES."""
    step = max(1, CHUNK_ENTRIES // max(entries_per_slice, 1))
    for z0 in range(0, n_slices, step):
        yield z0, min(z0 + step, n_slices)


def aggregate(
    aggregations: list[str],
    add_features: AddFeatures,
    undefined_reasons: dict[str, str],
    matrix_shape: tuple[int, ...],
    build: Callable[[np.ndarray, int, int, bool], np.ndarray],
    n_slices: int,
) -> list[FeatureValue]:
    """Build the directional matrices with ``build(offsets, z0, z1, per_slice)`` and aggregate their features.

    ``build`` returns an array (slices or 1, len(offsets), *matrix_shape) for the voxels of slices z0..z1-1;
    ``add_features`` is the family's (``AddFeatures``), ``undefined_reasons`` names its features in the order it
    writes them, each with the reason given when no matrix defines it.
    """
    agg = MatrixAggregator(aggregations, add_features, len(undefined_reasons), matrix_shape)
    if not agg.aggregations:
        return []
    if agg.needs_slices:
        entries = len(IN_PLANE) * int(np.prod(matrix_shape))
        for z0, z1 in slice_chunks(n_slices, entries):
            agg.add_slices(build(IN_PLANE, z0, z1, True))
    else:
        agg.add_in_plane_volume(build(IN_PLANE, 0, n_slices, False)[0])
    out_of_plane = build(OUT_OF_PLANE, 0, n_slices, False)[0] if agg.needs_out_of_plane else None
    return agg.finish(out_of_plane, undefined_reasons)

