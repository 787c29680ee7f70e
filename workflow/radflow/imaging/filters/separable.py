"""Separable convolution (one 1D pass per axis, scipy.ndimage.convolve1d: exact and O(M) per voxel) and its
rotation-invariant form, the pooled responses of the 24 (3D) or 4 (2D) right-angle rotations of the kernel.

Rotating a separable kernel permutes its 1D factors among the axes and reverses some of them. A reversed
symmetric factor is the factor itself and a reversed antisymmetric one its negative, so many rotations give the
same map up to sign (Laws kernels: 6 distinct maps out of 24); each distinct map is computed once, and the first
1D passes shared by rotations with the same leading factors are computed once too (depth-first, so that at most one
partial result per depth is held in memory). Average pooling of a one-stage filter takes a shortcut by linearity
(``_average_by_linearity``): 12 separable filters instead of 24 rotations in 3D.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from radflow.imaging.filters.boundary import ndimage_mode
from radflow.imaging.filters.rotations import Pool, parity, right_angle_rotations

# Partial results (after the first 1, 2, 3 passes) kept for the rotations that share them; deeper passes go to one
# scratch volume. Bounds memory at about 5 volumes (cache, scratch, pooled map) whatever the chain length.
MAX_CACHED_DEPTH = 3


@dataclass(frozen=True)
class Factor:
    """A 1D kernel factor with the ``origin`` scipy should centre it at (0 for odd lengths)."""

    taps: tuple[float, ...]
    origin: int = 0

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.taps, dtype=np.float64)

    def reversed(self) -> "Factor":
        # Reversal mirrors the kernel about its centre; for an even length the centre moves by one tap.
        shift = 0 if len(self.taps) % 2 else 1
        return Factor(self.taps[::-1], -self.origin - shift)


def convolve_axis(image: np.ndarray, factor: Factor, axis: int, boundary: str, output: np.ndarray | None = None
                  ) -> np.ndarray:
    """One 1D convolution pass; ``output`` may be ``image`` itself (ndimage filters a line at a time through a
    line buffer, so in place is safe) to spare a volume of memory."""
    from scipy import ndimage  # imported here: the settings import every filter module, extract needs none

    return ndimage.convolve1d(image, factor.array, axis=axis, output=output, mode=ndimage_mode(boundary), cval=0.0,
                              origin=factor.origin)


def convolve_separable(image: np.ndarray, factors: dict[int, Factor], boundary: str) -> np.ndarray:
    """``image`` convolved (kernel reversed, as IBSI-2 defines filtering) with one 1D factor per listed axis."""
    out = np.asarray(image, dtype=np.float64)
    for n, axis in enumerate(sorted(factors)):
        out = convolve_axis(out, factors[axis], axis, boundary, output=None if n == 0 else out)
    return out


def _signed_form(factor: Factor, reverse: bool) -> tuple[Factor, int]:
    if not reverse:
        return factor, 1
    taps = np.asarray(factor.taps)
    if len(taps) % 2 and factor.origin == 0:  # only an odd, centred factor maps onto itself when reversed
        if np.array_equal(taps[::-1], taps):
            return factor, 1
        if np.array_equal(taps[::-1], -taps):
            return factor, -1
    return factor.reversed(), 1


def rotated_chains(stages: list[dict[int, Factor]], axes: tuple[int, ...]) -> dict[tuple, list[int]]:
    """Distinct chains of 1D passes over all right-angle rotations (in ``axes``) of a filter given as successive
    separable stages, each chain with the signs it carries (a rotation reverses factors; see module docstring)."""
    distinct: dict[tuple, list[int]] = {}
    for perm, signs in right_angle_rotations(len(axes)):
        chain, total_sign = [], 1
        for stage in stages:
            for i, axis in enumerate(axes):
                source = stage.get(axes[perm[i]])
                if source is None:
                    continue
                factor, sign = _signed_form(source, signs[i] < 0)
                chain.append((axis, factor))
                total_sign *= sign
        key = tuple(chain)
        if total_sign not in distinct.setdefault(key, []):
            distinct[key].append(total_sign)
    return distinct


def rotation_invariant(
    image: np.ndarray, stages: dict[int, Factor] | list[dict[int, Factor]], axes: tuple[int, ...], boundary: str,
    pooling: str,
) -> np.ndarray:
    """Pooled response of every right-angle rotation (in ``axes``) of a separable filter.

    ``stages``: one factor dict, or several applied in turn (each under the boundary condition, as the levels of an
    undecimated wavelet decomposition); a rotation rotates every stage alike, and only the final maps are pooled.
    """
    stages = [stages] if isinstance(stages, dict) else list(stages)
    if pooling == "average" and len(stages) == 1 and all(f.origin == 0 and len(f.taps) % 2 for f in stages[0].values()):
        return _average_by_linearity(image, stages[0], axes, boundary)
    distinct = rotated_chains(stages, axes)
    pool = Pool(pooling)
    prefix_cache: dict[tuple, np.ndarray] = {}
    source = np.asarray(image, dtype=np.float64)
    scratch = np.empty_like(source)
    for key in sorted(distinct, key=_sort_key):
        out = source
        for depth in range(len(key)):
            axis, factor = key[depth]
            if depth >= min(len(key) - 1, MAX_CACHED_DEPTH):  # not shared (enough) to keep: the scratch volume
                out = convolve_axis(out, factor, axis, boundary, output=scratch)
                continue
            prefix = key[: depth + 1]
            cached = prefix_cache.get(prefix)
            if cached is None:
                # Keys are visited in sorted order: a new prefix at this depth retires every cached prefix as deep.
                for stale in [p for p in prefix_cache if len(p) > depth]:
                    del prefix_cache[stale]
                cached = prefix_cache[prefix] = convolve_axis(out, factor, axis, boundary)
            out = cached
        if out is not scratch:  # a one-pass chain: keep the cached prefix intact
            np.copyto(scratch, out)
        for sign in sorted(distinct[key], reverse=True):  # +1 first, then negate in place
            if sign == -1:
                np.negative(scratch, out=scratch)
            pool.add(scratch)
    return pool.value()


def _average_by_linearity(image: np.ndarray, factors: dict[int, Factor], axes: tuple[int, ...], boundary: str
                          ) -> np.ndarray:
    """Average over the right-angle rotations of a one-stage separable filter, by linearity.

    For one permutation of the factors among the axes, the rotations are the reversal patterns s (s_i = +/-1 per
    axis) with prod(s) = parity of the permutation; and for factors f_i with reversals r_i,
    sum over those s of prod_i (f_i or r_i) = (prod_i (f_i + r_i) + parity * prod_i (f_i - r_i)) / 2.
    So 2 separable filters per permutation (12 in 3D, and none of the second kind when a factor is symmetric) replace
    the 24 rotations: about half the 1D passes, exactly the same average (the filters are linear)."""
    source = np.asarray(image, dtype=np.float64)
    terms = []  # (weight, {axis: taps})
    for perm in itertools.permutations(range(len(axes))):
        sources = [np.asarray(factors[axes[p]].taps) if axes[p] in factors else None for p in perm]
        for weight, combine in ((0.5, np.add), (0.5 * parity(perm), np.subtract)):
            if combine is np.subtract and any(taps is None for taps in sources):
                continue  # an unfiltered axis is a symmetric (identity) factor: f - r = 0
            assigned = {}
            for axis, taps in zip(axes, sources):
                if taps is not None:
                    assigned[axis] = combine(taps, taps[::-1])
            if all(np.any(t) for t in assigned.values()):
                terms.append((weight, assigned))
    total = np.zeros_like(source)
    first_axis = min(axes)
    terms.sort(key=lambda term: term[1].get(first_axis, np.zeros(0)).tobytes())
    shared_key: bytes | None = None
    shared = source  # replaced by the first pass before a term uses it
    for weight, assigned in terms:
        key = assigned[first_axis].tobytes() if first_axis in assigned else None
        if key is not None and key != shared_key:  # the first pass, shared by the terms sorted next to each other
            shared_key, shared = key, convolve_axis(source, Factor(tuple(assigned[first_axis])), first_axis, boundary)
        out = source if key is None else shared
        rest = {axis: Factor(tuple(t)) for axis, t in assigned.items() if axis != first_axis}
        for n, axis in enumerate(sorted(rest)):
            out = convolve_axis(out, rest[axis], axis, boundary, output=None if n == 0 else out)
        total += weight * out
    return total / len(right_angle_rotations(len(axes)))


def _sort_key(key: tuple) -> tuple:
    return tuple((axis, factor.taps, factor.origin) for axis, factor in key)
