"""Inverse and symmetric eigenvalues of the 3 x 3 and 4 x 4 matrices the enclosing-ellipsoid kernels need.

Written out rather than taken from ``np.linalg`` inside compiled code because numba implements those with
LAPACK from ``scipy.linalg.cython_lapack``: the first call then imports scipy.linalg, about 0.14 s of a small
ROI's whole ``radflow extract``, for matrices of 16 entries. Both methods are the textbook ones, accurate to a few
units in the last place: Gauss-Jordan elimination with partial pivoting, and cyclic Jacobi rotations (Golub & Van
Loan, Matrix Computations, 4th ed., sections 3.4 and 8.5; the rotation formulas as in Numerical Recipes' ``jacobi``).
"""
from __future__ import annotations

import math

import numpy as np

from radflow.compiled import kernel

JACOBI_MAX_SWEEPS = 64


@kernel()
def inverse(a: np.ndarray) -> np.ndarray:
    """A⁻¹ of a small square matrix by Gauss-Jordan elimination with partial pivoting; NaN where A is singular."""
    n = a.shape[0]
    m = a.copy()
    inv = np.eye(n)
    for col in range(n):
        pivot = col
        for r in range(col + 1, n):
            if abs(m[r, col]) > abs(m[pivot, col]):
                pivot = r
        if m[pivot, col] == 0.0:
            return np.full((n, n), np.nan)
        if pivot != col:
            for k in range(n):
                m[col, k], m[pivot, k] = m[pivot, k], m[col, k]
                inv[col, k], inv[pivot, k] = inv[pivot, k], inv[col, k]
        p = m[col, col]
        for k in range(n):
            m[col, k] /= p
            inv[col, k] /= p
        for r in range(n):
            f = m[r, col]
            if r != col and f != 0.0:
                for k in range(n):
                    m[r, k] -= f * m[col, k]
                    inv[r, k] -= f * inv[col, k]
    return inv


@kernel()
def symmetric_eigenvalues(a: np.ndarray) -> np.ndarray:
    """Eigenvalues of a small symmetric matrix in ascending order (as ``np.linalg.eigvalsh``), by cyclic Jacobi
    rotations: each rotation zeroes one off-diagonal pair, and the sweeps converge quadratically."""
    n = a.shape[0]
    m = a.copy()
    for sweep in range(JACOBI_MAX_SWEEPS):
        off = 0.0
        for p in range(n - 1):
            for q in range(p + 1, n):
                off += abs(m[p, q])
        if off == 0.0:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = m[p, q]
                if apq == 0.0:
                    continue
                g = 100.0 * abs(apq)
                # after a few sweeps an entry below the diagonal's last place is set to zero (Numerical Recipes)
                if sweep > 3 and abs(m[p, p]) + g == abs(m[p, p]) and abs(m[q, q]) + g == abs(m[q, q]):
                    m[p, q] = 0.0
                    m[q, p] = 0.0
                    continue
                theta = (m[q, q] - m[p, p]) / (2.0 * apq)
                t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                if theta < 0.0:
                    t = -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):  # M P
                    mkp, mkq = m[k, p], m[k, q]
                    m[k, p] = c * mkp - s * mkq
                    m[k, q] = s * mkp + c * mkq
                for k in range(n):  # P^T M P
                    mpk, mqk = m[p, k], m[q, k]
                    m[p, k] = c * mpk - s * mqk
                    m[q, k] = s * mpk + c * mqk
                m[p, q] = 0.0
                m[q, p] = 0.0
    # the diagonal in ascending order by insertion: np.sort and np.diag would add their compiled implementations
    # (about 1.3 s) to the compile of every kernel that calls this
    values = np.empty(n)
    for i in range(n):
        x = m[i, i]
        j = i
        while j > 0 and values[j - 1] > x:
            values[j] = values[j - 1]
            j -= 1
        values[j] = x
    return values
