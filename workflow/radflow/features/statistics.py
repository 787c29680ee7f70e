"""Intensity-based statistical features (IBSI family UHIW, 18 features) on the intensities of the intensity mask.

Every feature here is a statistic of a one-dimensional sample. The sample is held as a ``Distribution``: its distinct
values (ascending) and their counts. CT intensities are integers, so the distribution comes from one ``bincount``
and every feature afterwards costs O(distinct values) instead of O(voxels); other intensities are sorted once. The
intensity histogram family (ZVCW) computes the same statistics on the discretised grey levels and reuses this module.

Conventions (IBSI 4.3): N_v voxels, mu the mean, sigma^2 the variance without bias correction, P_q the q-th
percentile as numpy's default (linear interpolation between order statistics, Hyndman-Fan type 7): it reproduces
the IBSI reference values, e.g. P_90 = 4 (not 4.2) for the digital phantom.
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Callable, TypeVar

import numpy as np

from radflow.features.base import NO_AGGREGATION, FeatureValue, RoiData
from radflow.settings import Settings

# A bincount over an integer intensity span larger than this (and than a few times the voxel count) would cost
# more than sorting, so such samples go the sorting way.
_MAX_BINCOUNT_SPAN = 1 << 20


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """sum_k a_k b_k, single-threaded: a BLAS dot may thread, and its summation order (so its last bits) would then
    depend on the thread count; einsum's does not."""
    return float(np.einsum("i,i->", a, b))


class Distribution:
    """A sample of N intensities as its distinct ``values`` (ascending, float64) and their ``counts`` (int64 > 0)."""

    def __init__(self, values: np.ndarray, counts: np.ndarray):
        if values.size == 0:
            raise ValueError("a distribution needs at least one value")
        self.values = np.asarray(values, dtype=np.float64)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.weights = self.counts.astype(np.float64)  # converted once for all the weighted sums
        self.n = int(self.counts.sum())

    @classmethod
    def from_samples(cls, samples: np.ndarray) -> "Distribution":
        """The distribution of a 1D sample (integer-valued samples by bincount, others by one sort)."""
        x = np.asarray(samples, dtype=np.float64).ravel()
        if x.size == 0:
            raise ValueError("a distribution needs at least one value")
        lo, hi = float(x.min()), float(x.max())
        span = hi - lo
        if span <= max(_MAX_BINCOUNT_SPAN, 4 * x.size) and lo == math.floor(lo) and np.array_equal(x, np.floor(x)):
            return cls.from_histogram(lo + np.arange(int(span) + 1, dtype=np.float64), np.bincount((x - lo).astype(np.int64)))
        ordered = np.sort(x)
        is_new = np.empty(x.size, dtype=bool)
        is_new[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=is_new[1:])
        if np.count_nonzero(is_new) == x.size:  # continuous intensities: usually no ties at all
            return cls(ordered, np.ones(x.size, dtype=np.int64))
        starts = np.flatnonzero(is_new)
        return cls(ordered[starts], np.diff(starts, append=x.size))

    @classmethod
    def from_histogram(cls, values: np.ndarray, counts: np.ndarray) -> "Distribution":
        """From a (possibly sparse) histogram: ascending bin ``values`` and their ``counts``; empty bins are dropped."""
        counts = np.asarray(counts)
        present = counts > 0
        return cls(np.asarray(values)[present], counts[present])

    @cached_property
    def cumulative_counts(self) -> np.ndarray:
        return np.cumsum(self.counts)

    @cached_property
    def mean(self) -> float:
        return _dot(self.weights, self.values) / self.n

    @cached_property
    def deviations(self) -> np.ndarray:
        """values - mean; exactly 0 for a one-valued sample (where the float mean might not equal the value)."""
        if self.values.size == 1:
            return np.zeros(1)
        return self.values - self.mean

    @cached_property
    def central_moments(self) -> tuple[float, float, float]:
        """(m_2, m_3, m_4), m_j = 1/N sum_k (X_k - mu)^j, by products (``**`` with exponents 3 and 4 is a slow pow)."""
        d = self.deviations
        d2 = d * d
        m2, m3, m4 = (_dot(self.weights, power) / self.n for power in (d2, d2 * d, d2 * d2))
        return m2, m3, m4

    @cached_property
    def sum_of_squares(self) -> float:
        return _dot(self.weights, self.values * self.values)

    def order_statistic(self, rank: np.ndarray) -> np.ndarray:
        """The rank-th smallest sample (0-based), vectorised over ``rank``."""
        return self.values[np.searchsorted(self.cumulative_counts, rank, side="right")]

    def quantiles(self, q) -> np.ndarray:
        """Sample quantiles (q in [0, 1]) by linear interpolation between order statistics, as ``np.quantile``."""
        position = np.asarray(q, dtype=np.float64) * (self.n - 1)
        below = np.floor(position)
        fraction = position - below
        low = self.order_statistic(below.astype(np.int64))
        high = self.order_statistic(np.minimum(below.astype(np.int64) + 1, self.n - 1))
        return low + fraction * (high - low)

    @cached_property
    def percentiles(self) -> dict[int, float]:
        """P10, P25, P50, P75 and P90 in one pass."""
        points = (10, 25, 50, 75, 90)
        return dict(zip(points, (float(v) for v in self.quantiles(np.array(points) / 100.0))))


# --- the statistics (IBSI 4.3); the intensity histogram (4.4) applies the same formulas to grey levels ------------


def mean(d: Distribution) -> float:
    """Mean (Q4LE): mu = 1/N_v sum_k X_k."""
    return d.mean


def variance(d: Distribution) -> float:
    """Variance (ECT3): sigma^2 = 1/N_v sum_k (X_k - mu)^2 (no bias correction)."""
    return d.central_moments[0]


def skewness(d: Distribution) -> float:
    """Skewness (KE2A): m_3 / m_2^(3/2) with m_j the j-th central moment; 0 when the variance is 0 (IBSI)."""
    m2, m3, _ = d.central_moments
    return 0.0 if m2 == 0.0 else m3 / m2**1.5


def excess_kurtosis(d: Distribution) -> float:
    """(Excess) kurtosis (IPH6): m_4 / m_2^2 - 3; 0 when the variance is 0 (IBSI)."""
    m2, _, m4 = d.central_moments
    return 0.0 if m2 == 0.0 else m4 / m2**2 - 3.0


def median(d: Distribution) -> float:
    """Median (Y12H): the sample median P_50."""
    return d.percentiles[50]


def minimum(d: Distribution) -> float:
    """Minimum (1GSF): min X_k."""
    return float(d.values[0])


def percentile_10(d: Distribution) -> float:
    """10th percentile (QG58): P_10."""
    return d.percentiles[10]


def percentile_90(d: Distribution) -> float:
    """90th percentile (8DWT): P_90."""
    return d.percentiles[90]


def maximum(d: Distribution) -> float:
    """Maximum (84IY): max X_k."""
    return float(d.values[-1])


def interquartile_range(d: Distribution) -> float:
    """Interquartile range (SALO): P_75 - P_25."""
    return d.percentiles[75] - d.percentiles[25]


def intensity_range(d: Distribution) -> float:
    """Range (2OJQ): max X_k - min X_k."""
    return float(d.values[-1] - d.values[0])


def mean_absolute_deviation(d: Distribution) -> float:
    """Mean absolute deviation (4FUA): 1/N_v sum_k |X_k - mu|."""
    return _dot(d.weights, np.abs(d.deviations)) / d.n


def robust_mean_absolute_deviation(d: Distribution) -> float:
    """Robust mean absolute deviation (1128): the mean absolute deviation of the samples with P_10 <= X <= P_90,
    from their own mean. Undefined (NaN) when no sample lies there, which happens only for two distinct samples."""
    inner = (d.values >= d.percentiles[10]) & (d.values <= d.percentiles[90])
    values, weights = d.values[inner], d.weights[inner]
    if values.size <= 1:
        return 0.0 if values.size else math.nan
    n = weights.sum()
    inner_mean = _dot(weights, values) / n
    return _dot(weights, np.abs(values - inner_mean)) / n


def median_absolute_deviation(d: Distribution) -> float:
    """Median absolute deviation (N72L): 1/N_v sum_k |X_k - M|, M the median (a mean deviation, not a median)."""
    return _dot(d.weights, np.abs(d.values - d.percentiles[50])) / d.n


def coefficient_of_variation(d: Distribution) -> float:
    """Coefficient of variation (7TET): sigma / mu; undefined (NaN) when mu = 0."""
    mu = d.mean
    return math.nan if mu == 0.0 else math.sqrt(d.central_moments[0]) / mu


def quartile_coefficient_of_dispersion(d: Distribution) -> float:
    """Quartile coefficient of dispersion (9S40): (P_75 - P_25) / (P_75 + P_25); undefined (NaN) when P_75 + P_25 = 0."""
    p25, p75 = d.percentiles[25], d.percentiles[75]
    return math.nan if p75 + p25 == 0.0 else (p75 - p25) / (p75 + p25)


def energy(d: Distribution) -> float:
    """Energy (N8CA): sum_k X_k^2 (IBSI chapter 1: not scaled by the voxel volume)."""
    return d.sum_of_squares


def root_mean_square(d: Distribution) -> float:
    """Root mean square (5ZWQ): sqrt(1/N_v sum_k X_k^2)."""
    return math.sqrt(d.sum_of_squares / d.n)


Statistic = Callable[[Distribution], float]

EMPTY_P10_P90_REASON = "no intensity lies between P10 and P90 (two distinct intensities)"

# IBSI code -> (statistic, reason when it is undefined); the order is the IBSI document order.
FEATURES: dict[str, tuple[Statistic, str]] = {
    "Q4LE": (mean, ""),
    "ECT3": (variance, ""),
    "KE2A": (skewness, ""),
    "IPH6": (excess_kurtosis, ""),
    "Y12H": (median, ""),
    "1GSF": (minimum, ""),
    "QG58": (percentile_10, ""),
    "8DWT": (percentile_90, ""),
    "84IY": (maximum, ""),
    "SALO": (interquartile_range, ""),
    "2OJQ": (intensity_range, ""),
    "4FUA": (mean_absolute_deviation, ""),
    "1128": (robust_mean_absolute_deviation, EMPTY_P10_P90_REASON),
    "N72L": (median_absolute_deviation, ""),
    "7TET": (coefficient_of_variation, "mean intensity is 0"),
    "9S40": (quartile_coefficient_of_dispersion, "P75 + P25 is 0"),
    "N8CA": (energy, ""),
    "5ZWQ": (root_mean_square, ""),
}


Sample = TypeVar("Sample")


def evaluate(table: dict[str, tuple[Callable[[Sample], float], str]], sample: Sample) -> list[FeatureValue]:
    """Every feature of ``table`` on ``sample``, NaN values carrying the table's reason."""
    out = []
    for code, (statistic, reason) in table.items():
        value = float(statistic(sample))
        if math.isnan(value):
            out.append(FeatureValue.undefined(code, NO_AGGREGATION, reason or "undefined"))
        else:
            out.append(FeatureValue(code, NO_AGGREGATION, value))
    return out


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """The 18 intensity-based statistical features of the intensities inside ``roi.int_mask``."""
    return evaluate(FEATURES, Distribution.from_samples(roi.intensities))
