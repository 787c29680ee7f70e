"""Right-angle rotations of a filter kernel (IBSI-2 rotation invariance) and the pooling of their responses.

A right-angle rotation of the (z, y, x) grid is a signed permutation of the axes with determinant +1: 24 of them in
3D, 4 in the axial (y, x) plane for 2D filters. A separable kernel k_z(z) k_y(y) k_x(x) rotated so is again
separable: array axis i gets the 1D kernel of axis ``perm[i]``, reversed where ``sign[i]`` is -1.
"""
from __future__ import annotations

import itertools

import numpy as np

from radflow.imaging.filters.registry import FilterSpec, require

POOLINGS = ("max", "average", "min")


def parity(perm: tuple[int, ...]) -> int:
    inversions = sum(1 for i, j in itertools.combinations(range(len(perm)), 2) if perm[i] > perm[j])
    return -1 if inversions % 2 else 1


def right_angle_rotations(n_axes: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(perm, signs) of every proper right-angle rotation of ``n_axes`` axes: 24 for 3, 4 for 2; identity first."""
    rotations = []
    for perm in itertools.permutations(range(n_axes)):
        for signs in itertools.product((1, -1), repeat=n_axes):
            if parity(perm) * int(np.prod(signs)) == 1:
                rotations.append((perm, signs))
    return rotations


class Pool:
    """Running max / mean / min of response maps, so that only one pooled map and one response live at a time."""

    def __init__(self, pooling: str):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.result: np.ndarray | None = None
        self.count = 0

    def add(self, response: np.ndarray) -> None:
        if self.result is None:
            self.result = np.array(response, dtype=np.float64, copy=True)
        elif self.pooling == "max":
            np.maximum(self.result, response, out=self.result)
        elif self.pooling == "min":
            np.minimum(self.result, response, out=self.result)
        else:
            self.result += response
        self.count += 1

    def value(self) -> np.ndarray:
        if self.result is None:
            raise ValueError("no response was pooled")
        if self.pooling == "average":
            return self.result / self.count
        return self.result


def require_pooling(spec: FilterSpec, pooled: bool) -> None:
    """For a filter's ``validate``: ``spec.pooling`` is a known pooling, and present when responses are ``pooled``."""
    require(spec.pooling is None or spec.pooling in POOLINGS, f"pooling must be one of {POOLINGS}")
    require(not pooled or spec.pooling is not None, "rotation invariance needs a pooling (max, average or min)")
