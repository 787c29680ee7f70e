"""Two-way ANOVA mean squares of repeated measurements, for thousands of features at once.

The measurements of ``F`` features on ``n`` subjects, each measured ``k`` times (test/retest scans, observers or
perturbations), form an array ``y`` of shape ``(F, n, k)``. Per feature only the subjects with all ``k`` values
finite are used (complete cases), so features with a few NaN values still get statistics from the rest.

With row (subject) means :math:`\\bar y_{i\\cdot}`, column (measurement) means :math:`\\bar y_{\\cdot j}` and the
grand mean :math:`\\bar y` over the ``n`` used subjects:

=====================  =======================================================================  ===============
mean square            sum of squares                                                           degrees of freedom
=====================  =======================================================================  ===============
MSR between subjects   :math:`k \\sum_i (\\bar y_{i\\cdot} - \\bar y)^2`                              n - 1
MSC between measur.    :math:`n \\sum_j (\\bar y_{\\cdot j} - \\bar y)^2`                              k - 1
MSE residual           :math:`\\sum_{ij} (y_{ij} - \\bar y_{i\\cdot} - \\bar y_{\\cdot j} + \\bar y)^2`     (n - 1)(k - 1)
MSW within subjects    :math:`\\sum_{ij} (y_{ij} - \\bar y_{i\\cdot})^2`                              n (k - 1)
=====================  =======================================================================  ===============

(Shrout & Fleiss, Psychol Bull 1979; McGraw & Wong, Psychol Methods 1996.) Every sum is of centred terms, computed
directly rather than as differences of raw sums, so features with large offsets (volumes in mm^3, HU sums) keep
their precision.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numba
import numpy as np


@dataclass(frozen=True)
class Measurements:
    """Repeated measurements prepared for the statistics: complete cases per feature.

    ``values`` (F, n, k) with the left-out subjects' values set to 0; ``used`` (F, n) marks the complete cases;
    ``n`` (F,) counts them; ``identical`` (F,) is True where every used subject has k exactly equal values.
    """

    values: np.ndarray
    used: np.ndarray
    n: np.ndarray
    identical: np.ndarray

    @property
    def k(self) -> int:
        return self.values.shape[2]

    @cached_property
    def moments(self) -> "Moments":
        """Centred sums of the complete cases, computed once and shared by every statistic."""
        return _moments_of(self)


@numba.njit(cache=True, nogil=True)
def _complete_cases(y, values, used, n, identical):
    """One pass: copy complete subjects (zeros for the others), count them, flag features without any spread."""
    n_features, n_subjects, k = y.shape
    for f in range(n_features):
        count = 0
        same = True
        for i in range(n_subjects):
            complete = True
            for j in range(k):
                if not np.isfinite(y[f, i, j]):
                    complete = False
                    break
            used[f, i] = complete
            if complete:
                count += 1
                for j in range(k):
                    values[f, i, j] = y[f, i, j]
                    if y[f, i, j] != y[f, i, 0]:
                        same = False
            else:
                for j in range(k):
                    values[f, i, j] = 0.0
        n[f] = count
        identical[f] = same


def measurements(y) -> Measurements:
    """Complete cases of ``y`` (F, n, k), k >= 2; a :class:`Measurements` is returned as it is."""
    if isinstance(y, Measurements):
        return y
    y = np.ascontiguousarray(y, dtype=np.float64)
    if y.ndim != 3 or y.shape[2] < 2:
        raise ValueError(f"expected (features, subjects, k >= 2) measurements, got shape {y.shape}")
    values = np.empty_like(y)
    used = np.empty(y.shape[:2], dtype=np.bool_)
    n = np.empty(y.shape[0], dtype=np.int64)
    identical = np.empty(y.shape[0], dtype=np.bool_)
    _complete_cases(y, values, used, n, identical)
    return Measurements(values, used, n, identical)


@dataclass(frozen=True)
class Moments:
    """Per-feature centred sums of the complete cases (NaN where no subject is complete).

    ``grand_mean`` (F,), ``measurement_means`` (F, k), ``ss_subjects`` = sum_i (mean_i - grand)^2 (without the
    factor k), ``ss_within`` = sum_ij (y_ij - mean_i)^2, ``ss_residual`` = sum_ij (y_ij - mean_i - mean_j + grand)^2,
    ``cross_products`` (F, k, k) = sum_i (y_ij - mean_j)(y_il - mean_l).
    """

    grand_mean: np.ndarray
    measurement_means: np.ndarray
    ss_subjects: np.ndarray
    ss_within: np.ndarray
    ss_residual: np.ndarray
    cross_products: np.ndarray


@numba.njit(cache=True, nogil=True)
def _moments_kernel(values, used, n, grand, means, ss_subjects, ss_within, ss_residual, cross):
    """Two passes per feature (means, then centred sums): no differences of large raw sums."""
    n_features, n_subjects, k = values.shape
    for f in range(n_features):
        if n[f] == 0:
            grand[f] = np.nan
            ss_subjects[f] = ss_within[f] = ss_residual[f] = np.nan
            for j in range(k):
                means[f, j] = np.nan
                for m in range(k):
                    cross[f, j, m] = np.nan
            continue
        for j in range(k):
            total = 0.0
            for i in range(n_subjects):
                total += values[f, i, j]  # left-out subjects hold 0
            means[f, j] = total / n[f]
        g = 0.0
        for j in range(k):
            g += means[f, j]
        g /= k
        grand[f] = g
        s_sub = s_within = s_res = 0.0
        for j in range(k):
            for m in range(k):
                cross[f, j, m] = 0.0
        for i in range(n_subjects):
            if not used[f, i]:
                continue
            row = 0.0
            for j in range(k):
                row += values[f, i, j]
            row /= k
            s_sub += (row - g) ** 2
            for j in range(k):
                within = values[f, i, j] - row
                s_within += within * within
                residual = within - (means[f, j] - g)
                s_res += residual * residual
                centred = values[f, i, j] - means[f, j]
                for m in range(j, k):
                    cross[f, j, m] += centred * (values[f, i, m] - means[f, m])
        for j in range(k):
            for m in range(j + 1, k):
                cross[f, m, j] = cross[f, j, m]
        ss_subjects[f] = s_sub
        ss_within[f] = s_within
        ss_residual[f] = s_res


def _moments_of(m: Measurements) -> Moments:
    n_features, _, k = m.values.shape
    grand, ss_subjects, ss_within, ss_residual = (np.empty(n_features) for _ in range(4))
    means = np.empty((n_features, k))
    cross = np.empty((n_features, k, k))
    _moments_kernel(m.values, m.used, m.n, grand, means, ss_subjects, ss_within, ss_residual, cross)
    return Moments(grand, means, ss_subjects, ss_within, ss_residual, cross)


@dataclass(frozen=True)
class MeanSquares:
    """Per-feature mean squares (each shape (F,)); NaN where fewer than two subjects are complete."""

    n: np.ndarray
    k: int
    grand_mean: np.ndarray
    between_subjects: np.ndarray  # MSR
    between_measurements: np.ndarray  # MSC
    residual: np.ndarray  # MSE
    within_subjects: np.ndarray  # MSW


def mean_squares(y) -> MeanSquares:
    """Two-way ANOVA mean squares of ``y`` (F, n, k) or of prepared :class:`Measurements` (see module docstring)."""
    m = measurements(y)
    k = m.k
    mo = m.moments
    n = np.where(m.n >= 2, m.n, np.nan).astype(np.float64)
    ss_measurements = n * ((mo.measurement_means - mo.grand_mean[:, None]) ** 2).sum(axis=1)
    return MeanSquares(
        n=m.n,
        k=k,
        grand_mean=np.where(m.n >= 2, mo.grand_mean, np.nan),
        between_subjects=k * mo.ss_subjects / (n - 1),
        between_measurements=ss_measurements / (k - 1),
        residual=mo.ss_residual / ((n - 1) * (k - 1)),
        within_subjects=mo.ss_within / (n * (k - 1)),
    )
