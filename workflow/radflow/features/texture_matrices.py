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
from dataclasses import dataclass, field

import numba
import numpy as np

from radflow.features.base import FeatureValue
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
    present = np.bincount(levels.ravel(), minlength=n_levels + 1)[1:] > 0
    values = np.flatnonzero(present) + 1
    dtype = np.min_scalar_type(values.size)
    if values.size == n_levels:
        return levels.astype(dtype), values.astype(np.float64)
    lookup = np.zeros(n_levels + 1, dtype=dtype)
    lookup[values] = np.arange(1, values.size + 1)
    return lookup[levels], values.astype(np.float64)


@numba.njit(cache=True, nogil=True)
def cooccurrence_counts(levels, n_grey, offsets, z0, z1, per_slice):
    """Co-occurrence counts c[s, d, a-1, b-1] of level a at voxel v and level b at v + offsets[d].

    Voxels v lie in slices z0 <= z < z1; s = z - z0 when ``per_slice`` and 0 otherwise. Level 0 (outside the
    intensity mask) pairs with nothing. The counts are one-sided: symmetrise with the transpose.
    """
    n_z, n_y, n_x = levels.shape
    out = np.zeros((z1 - z0 if per_slice else 1, offsets.shape[0], n_grey, n_grey))
    # slice-outer loop: one slice's matrices stay in cache while its voxels are visited once per direction
    for z in range(z0, z1):
        s = z - z0 if per_slice else 0
        for d in range(offsets.shape[0]):
            dz, dy, dx = offsets[d, 0], offsets[d, 1], offsets[d, 2]
            if not 0 <= z + dz < n_z:
                continue
            for y in range(max(0, -dy), min(n_y, n_y - dy)):
                for x in range(max(0, -dx), min(n_x, n_x - dx)):
                    a = levels[z, y, x]
                    if a == 0:
                        continue
                    b = levels[z + dz, y + dy, x + dx]
                    if b != 0:
                        out[s, d, a - 1, b - 1] += 1.0
    return out


@numba.njit(cache=True, nogil=True)
def run_length_counts(levels, n_grey, max_run, offsets, z0, z1, per_slice):
    """Run counts r[s, d, a-1, n-1] of runs of n voxels of level a along offsets[d] (a run stops at the mask edge).

    A run is counted at its first voxel (the one whose predecessor along the direction differs), walking from there
    to its end, so every voxel is read about twice per direction. First voxels lie in slices z0 <= z < z1;
    s = z - z0 when ``per_slice`` and 0 otherwise.
    """
    n_z, n_y, n_x = levels.shape
    out = np.zeros((z1 - z0 if per_slice else 1, offsets.shape[0], n_grey, max_run))
    for z in range(z0, z1):
        s = z - z0 if per_slice else 0
        for d in range(offsets.shape[0]):
            dz, dy, dx = offsets[d, 0], offsets[d, 1], offsets[d, 2]
            for y in range(n_y):
                for x in range(n_x):
                    a = levels[z, y, x]
                    if a == 0:
                        continue
                    pz, py, px = z - dz, y - dy, x - dx
                    if 0 <= pz < n_z and 0 <= py < n_y and 0 <= px < n_x and levels[pz, py, px] == a:
                        continue
                    n = 1
                    qz, qy, qx = z + dz, y + dy, x + dx
                    while 0 <= qz < n_z and 0 <= qy < n_y and 0 <= qx < n_x and levels[qz, qy, qx] == a:
                        n += 1
                        qz += dz
                        qy += dy
                        qx += dx
                    out[s, d, a - 1, n - 1] += 1.0
    return out


@dataclass
class _FeatureMean:
    """Running mean over matrices of each feature, counting only matrices where the feature is defined."""

    total: dict[str, float] = field(default_factory=dict)
    defined: dict[str, int] = field(default_factory=dict)
    matrices: int = 0

    def add(self, values: dict[str, np.ndarray]) -> None:
        for code, v in values.items():
            finite = np.isfinite(v)
            self.total[code] = self.total.get(code, 0.0) + float(v[finite].sum())
            self.defined[code] = self.defined.get(code, 0) + int(finite.sum())
        self.matrices += next(iter(values.values())).size if values else 0

    def result(self, code: str, aggregation: str, undefined_reason: str) -> FeatureValue:
        if self.matrices == 0:
            return FeatureValue.undefined(code, aggregation, NO_MATRIX_REASON)
        if self.defined.get(code, 0) == 0:
            return FeatureValue.undefined(code, aggregation, undefined_reason)
        return FeatureValue(code, aggregation, self.total[code] / self.defined[code])


FeatureFunction = Callable[[np.ndarray], dict[str, np.ndarray]]


class MatrixAggregator:
    """Turns directional matrices into feature values for each requested IBSI aggregation.

    ``features`` maps a stack of non-empty matrices (n, *shape) to {IBSI code: (n,) values}. Feed the per-slice
    in-plane matrices chunk by chunk (``add_slices``) or, when no 2D aggregation is asked for, their sum over
    slices (``add_in_plane_volume``); then ``finish`` with the out-of-plane volume matrices (or None).
    """

    def __init__(self, aggregations: list[str], features: FeatureFunction, matrix_shape: tuple[int, ...]):
        self.aggregations = list(aggregations)
        self.features = features
        self.means = {agg: _FeatureMean() for agg in self.aggregations}
        self.in_plane = np.zeros((len(IN_PLANE), *matrix_shape))

    @property
    def needs_slices(self) -> bool:
        return any(agg in PER_SLICE_AGGREGATIONS for agg in self.aggregations)

    @property
    def needs_out_of_plane(self) -> bool:
        return any(agg in VOLUME_AGGREGATIONS for agg in self.aggregations)

    def _average(self, aggregation: str, stack: np.ndarray) -> None:
        if aggregation not in self.means:
            return
        non_empty = stack.reshape(len(stack), -1).any(axis=1)
        if non_empty.any():
            self.means[aggregation].add(self.features(stack[non_empty]))

    def add_slices(self, stack: np.ndarray) -> None:
        """Per-slice in-plane matrices, shape (slices, len(IN_PLANE), *matrix_shape)."""
        self._average(AVERAGED_2D, stack.reshape(-1, *stack.shape[2:]))
        self._average(SLICE_MERGED_2D, stack.sum(axis=1))
        self.in_plane += stack.sum(axis=0)

    def add_in_plane_volume(self, per_direction: np.ndarray) -> None:
        """In-plane matrices already summed over slices, shape (len(IN_PLANE), *matrix_shape)."""
        self.in_plane += per_direction

    def finish(self, out_of_plane: np.ndarray | None, undefined_reasons: dict[str, str]) -> list[FeatureValue]:
        self._average(DIRECTION_MERGED_25D, self.in_plane)
        self._average(MERGED_25D, self.in_plane.sum(axis=0, keepdims=True))
        if self.needs_out_of_plane:
            volume = self.in_plane if out_of_plane is None else np.concatenate([out_of_plane, self.in_plane])
            self._average(AVERAGED_3D, volume)
            self._average(MERGED_3D, volume.sum(axis=0, keepdims=True))
        return [
            self.means[agg].result(code, agg, reason)
            for agg in self.aggregations
            for code, reason in undefined_reasons.items()
        ]


def slice_chunks(n_slices: int, entries_per_slice: int) -> Iterator[tuple[int, int]]:
    """Consecutive slice ranges [z0, z1) whose per-slice matrices stay within CHUNK_ENTRIES."""
    step = max(1, CHUNK_ENTRIES // max(entries_per_slice, 1))
    for z0 in range(0, n_slices, step):
        yield z0, min(z0 + step, n_slices)


def aggregate(
    aggregations: list[str],
    features: FeatureFunction,
    undefined_reasons: dict[str, str],
    matrix_shape: tuple[int, ...],
    build: Callable[[np.ndarray, int, int, bool], np.ndarray],
    n_slices: int,
) -> list[FeatureValue]:
    """Build the directional matrices with ``build(offsets, z0, z1, per_slice)`` and aggregate their features.

    ``build`` returns an array (slices or 1, len(offsets), *matrix_shape) for the voxels of slices z0..z1-1.
    """
    agg = MatrixAggregator(aggregations, features, matrix_shape)
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


def xlog2x(p: np.ndarray) -> np.ndarray:
    """p log2 p elementwise, 0 where p = 0 (the entropy convention)."""
    out = np.log2(p + (p == 0))  # log2(1) = 0 where p = 0; faster than a masked log2
    out *= p
    return out
