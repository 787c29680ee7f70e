"""Intensity histogram features (IBSI family ZVCW, 23 features) on the discretised grey levels of the intensity mask.

IBSI 4.4: H = {n_1, ..., n_Ng} counts the voxels of each grey level i = 1..N_g (``roi.levels``, N_g =
``roi.n_levels``), p_i = n_i / N_v. Sixteen features are the intensity statistics of ``statistics`` applied to the
grey levels; the others (mode, entropy, uniformity and the histogram gradient features) are defined here. The
histogram comes from one ``bincount``, so everything afterwards costs O(N_g).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from radflow.features import statistics as st
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings


@dataclass(frozen=True)
class GreyLevelHistogram:
    """``counts[i - 1]`` = n_i for every grey level i = 1..N_g, empty bins included (the gradient needs them)."""

    counts: np.ndarray

    @classmethod
    def from_roi(cls, roi: RoiData) -> "GreyLevelHistogram":
        return cls(np.bincount(roi.levels[roi.int_mask], minlength=roi.n_levels + 1)[1:])

    @property
    def n_levels(self) -> int:
        return self.counts.size

    @cached_property
    def distribution(self) -> st.Distribution:
        return st.Distribution.from_histogram(np.arange(1, self.n_levels + 1, dtype=np.float64), self.counts)

    @cached_property
    def probabilities(self) -> np.ndarray:
        """p_i of the grey levels present (p_i > 0)."""
        present = self.counts[self.counts > 0]
        return present / present.sum()

    @cached_property
    def gradient(self) -> np.ndarray:
        """H'_i = n_2 - n_1 (i = 1), (n_{i+1} - n_{i-1}) / 2 (1 < i < N_g), n_Ng - n_{Ng-1} (i = N_g);
        exactly ``np.gradient`` with unit spacing. Needs N_g >= 2."""
        return np.gradient(self.counts.astype(np.float64))


def mode(h: GreyLevelHistogram) -> float:
    """Mode (AMMC): the grey level i with the highest count n_i. Ties go to the level closest to the mean grey
    level and, if two are equally close, to the lower one (IBSI)."""
    candidates = np.flatnonzero(h.counts == h.counts.max()) + 1.0
    distance = np.abs(candidates - h.distribution.mean)
    return float(candidates[np.argmin(distance)])  # argmin takes the first, i.e. lowest, of equal distances


def entropy(h: GreyLevelHistogram) -> float:
    """Entropy (TLU2): -sum_i p_i log2 p_i."""
    p = h.probabilities
    return float(-(p @ np.log2(p)))


def uniformity(h: GreyLevelHistogram) -> float:
    """Uniformity (BJ5W): sum_i p_i^2."""
    return float(h.probabilities @ h.probabilities)


def maximum_gradient(h: GreyLevelHistogram) -> float:
    """Maximum histogram gradient (12CE): max_i H'_i (NaN for a one-bin histogram)."""
    return math.nan if h.n_levels < 2 else float(h.gradient.max())


def maximum_gradient_intensity(h: GreyLevelHistogram) -> float:
    """Maximum histogram gradient intensity (8E6O): the grey level i of max H'_i (the lowest one on ties)."""
    return math.nan if h.n_levels < 2 else float(np.argmax(h.gradient) + 1)


def minimum_gradient(h: GreyLevelHistogram) -> float:
    """Minimum histogram gradient (VQB3): min_i H'_i (NaN for a one-bin histogram)."""
    return math.nan if h.n_levels < 2 else float(h.gradient.min())


def minimum_gradient_intensity(h: GreyLevelHistogram) -> float:
    """Minimum histogram gradient intensity (RHQZ): the grey level i of min H'_i (the lowest one on ties)."""
    return math.nan if h.n_levels < 2 else float(np.argmin(h.gradient) + 1)


def _on_grey_levels(statistic: st.Statistic):
    """An intensity statistic (IBSI 4.3) applied to the grey-level distribution (its IBSI 4.4 twin)."""
    return lambda h: statistic(h.distribution)


_ONE_BIN = "the histogram has a single grey-level bin, so it has no gradient"

# IBSI code -> (feature, reason when it is undefined), in IBSI document order.
FEATURES = {
    "X6K6": (_on_grey_levels(st.mean), ""),
    "CH89": (_on_grey_levels(st.variance), ""),
    "88K1": (_on_grey_levels(st.skewness), ""),
    "C3I7": (_on_grey_levels(st.excess_kurtosis), ""),
    "WIFQ": (_on_grey_levels(st.median), ""),
    "1PR8": (_on_grey_levels(st.minimum), ""),
    "GPMT": (_on_grey_levels(st.percentile_10), ""),
    "OZ0C": (_on_grey_levels(st.percentile_90), ""),
    "3NCY": (_on_grey_levels(st.maximum), ""),
    "AMMC": (mode, ""),
    "WR0O": (_on_grey_levels(st.interquartile_range), ""),
    "5Z3W": (_on_grey_levels(st.intensity_range), ""),
    "D2ZX": (_on_grey_levels(st.mean_absolute_deviation), ""),
    "WRZB": (_on_grey_levels(st.robust_mean_absolute_deviation), st.EMPTY_P10_P90_REASON),
    "4RNL": (_on_grey_levels(st.median_absolute_deviation), ""),
    "CWYJ": (_on_grey_levels(st.coefficient_of_variation), "mean grey level is 0"),
    "SLWD": (_on_grey_levels(st.quartile_coefficient_of_dispersion), "P75 + P25 is 0"),
    "TLU2": (entropy, ""),
    "BJ5W": (uniformity, ""),
    "12CE": (maximum_gradient, _ONE_BIN),
    "8E6O": (maximum_gradient_intensity, _ONE_BIN),
    "VQB3": (minimum_gradient, _ONE_BIN),
    "RHQZ": (minimum_gradient_intensity, _ONE_BIN),
}


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """The 23 intensity histogram features of the grey levels inside ``roi.int_mask``."""
    return st.evaluate(FEATURES, GreyLevelHistogram.from_roi(roi))
