"""Neighbour directions for texture matrices, as (dz, dy, dx) offsets on (z, y, x) arrays.

IBSI counts each direction once (a direction and its opposite give transposed matrices): 13 in 3D, 4 in a 2D
(axial) slice. The order is fixed so that per-direction results are reproducible.
"""
from __future__ import annotations

import numpy as np


def _unique_directions(offsets: list[tuple[int, int, int]]) -> np.ndarray:
    kept: list[tuple[int, int, int]] = []
    for off in offsets:
        if off == (0, 0, 0):
            continue
        if tuple(-o for o in off) not in kept:
            kept.append(off)
    return np.array(kept, dtype=np.int64)


DIRECTIONS_3D = _unique_directions(
    [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
)
DIRECTIONS_2D = _unique_directions([(0, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
