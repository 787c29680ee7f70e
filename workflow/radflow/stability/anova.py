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


def measurements(y) -> Measurements:
    """Complete cases of ``y`` (F, n, k), k >= 2; a :class:`Measurements` is returned as it is."""
    if isinstance(y, Measurements):
        return y
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 3 or y.shape[2] < 2:
        raise ValueError(f"expected (features, subjects, k >= 2) measurements, got shape {y.shape}")
    used = np.isfinite(y).all(axis=2)
    values = np.where(used[..., None], y, 0.0)
    spread = values.max(axis=2) - values.min(axis=2)
    identical = ~np.any(spread != 0, axis=1)
    return Measurements(values, used, used.sum(axis=1), identical)


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


def _sum_of_squares(x: np.ndarray) -> np.ndarray:
    """Sum of squares over every axis but the first (one feature per row)."""
    flat = x.reshape(x.shape[0], -1)
    return np.einsum("fi,fi->f", flat, flat)


def mean_squares(y) -> MeanSquares:
    """Two-way ANOVA mean squares of ``y`` (F, n, k) or of prepared :class:`Measurements` (see module docstring)."""
    m = measurements(y)
    k = m.k
    n = m.n.astype(np.float64)
    usable = m.n >= 2
    safe_n = np.where(usable, n, np.nan)
    used = m.used[..., None]
    subject_mean = m.values.mean(axis=2)  # (F, n); 0 for left-out subjects
    grand = subject_mean.sum(axis=1) / safe_n
    measurement_mean = m.values.sum(axis=1) / safe_n[:, None]  # (F, k)

    subject_dev = (subject_mean - grand[:, None]) * m.used
    measurement_dev = measurement_mean - grand[:, None]
    within = (m.values - subject_mean[..., None]) * used
    residual = within - measurement_dev[:, None, :] * used

    ss_subjects = k * _sum_of_squares(subject_dev)
    ss_measurements = safe_n * _sum_of_squares(measurement_dev)
    ss_within = _sum_of_squares(within)
    ss_residual = _sum_of_squares(residual)
    return MeanSquares(
        n=m.n,
        k=k,
        grand_mean=grand,
        between_subjects=ss_subjects / (safe_n - 1),
        between_measurements=ss_measurements / (k - 1),
        residual=ss_residual / ((safe_n - 1) * (k - 1)),
        within_subjects=ss_within / (safe_n * (k - 1)),
    )
