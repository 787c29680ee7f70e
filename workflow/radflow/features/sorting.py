"""Stable sorts for compiled kernels, written out.

Each call site of numba's ``np.argsort`` / ``np.sort`` compiles its own copy of the sort (one to three seconds of
compilation each, and the kernel build is what a new machine waits for); a plain merge sort over an index array
compiles in a fraction of that and gives the same stable order.
"""
from __future__ import annotations

import numpy as np

from radflow.compiled import kernel


@kernel()
def row_order(keys):
    """Indices that sort the rows of ``keys`` (n, k) lexicographically, ties in index order: a stable bottom-up
    merge sort, the order stable argsorts from the last column to the first give."""
    n = keys.shape[0]
    order = np.arange(n)
    merged = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        for low in range(0, n, 2 * width):
            middle, high = min(low + width, n), min(low + 2 * width, n)
            i, j = low, middle
            for out in range(low, high):
                # the right run's row goes first only when strictly smaller: equal rows keep their order
                if i < middle and (j >= high or not _row_less(keys, order[j], order[i])):
                    merged[out] = order[i]
                    i += 1
                else:
                    merged[out] = order[j]
                    j += 1
        order, merged = merged, order
        width *= 2
    return order


@kernel(inline="always")
def _row_less(keys, a, b) -> bool:
    for column in range(keys.shape[1]):
        if keys[a, column] != keys[b, column]:
            return keys[a, column] < keys[b, column]
    return False
