"""Grey level run length matrix features (IBSI family TP0I, 16 features).

A GLRLM r_ij counts, for one direction, the runs of j consecutive voxels of grey level i along that direction; a run
ends at the edge of the intensity mask. Notation (IBSI 3.7):

    N_s = sum_ij r_ij                         number of runs
    r_i. = sum_j r_ij, r_.j = sum_i r_ij     runs per grey level and per run length
    N_v = sum_ij j r_ij                       voxels covered (the ROI voxel count, times the directions merged)
    p_ij = r_ij / N_s

i are grey level values (1..N_g), j run lengths (1..N_r). Matrices are computed on the grey levels present in the
ROI (see ``texture_matrices.compact_grey_levels``); absent levels only add zero rows.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from radflow.features import texture_matrices as tm
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings


class RunLengthStats:
    """A stack of run length matrices and the marginals the features share."""

    def __init__(self, r: np.ndarray, grey: np.ndarray):
        self.r = r  # (n, G, N_r) run counts
        self.grey = grey  # (G,) grey level values i
        self.length = np.arange(1, r.shape[2] + 1, dtype=np.float64)  # (N_r,) run lengths j

    @cached_property
    def n_runs(self) -> np.ndarray:
        return self.r_i.sum(axis=1)

    @cached_property
    def r_i(self) -> np.ndarray:
        return self.r.sum(axis=2)

    @cached_property
    def r_j(self) -> np.ndarray:
        return self.r.sum(axis=1)

    @cached_property
    def sum_r_i_squared(self) -> np.ndarray:
        """sum_i r_i.^2 (grey level non-uniformity and its normalised form)."""
        return (self.r_i**2).sum(axis=1)

    @cached_property
    def sum_r_j_squared(self) -> np.ndarray:
        """sum_j r_.j^2 (run length non-uniformity and its normalised form)."""
        return (self.r_j**2).sum(axis=1)

    @cached_property
    def n_voxels(self) -> np.ndarray:
        return self.r_j @ self.length

    def weighted(self, grey_power: int, length_power: int) -> np.ndarray:
        """sum_ij i^grey_power j^length_power r_ij / N_s."""
        if grey_power == 0:
            total = self.r_j @ self.length**length_power
        elif length_power == 0:
            total = self.r_i @ self.grey**grey_power
        else:
            total = (self.r @ self.length**length_power) @ self.grey**grey_power
        return total / self.n_runs


def short_runs_emphasis(s: RunLengthStats) -> np.ndarray:
    """Short runs emphasis (22OV): sum_j r_.j / j^2 / N_s."""
    return s.weighted(0, -2)


def long_runs_emphasis(s: RunLengthStats) -> np.ndarray:
    """Long runs emphasis (W4KF): sum_j r_.j j^2 / N_s."""
    return s.weighted(0, 2)


def low_grey_level_run_emphasis(s: RunLengthStats) -> np.ndarray:
    """Low grey level run emphasis (V3SW): sum_i r_i. / i^2 / N_s."""
    return s.weighted(-2, 0)


def high_grey_level_run_emphasis(s: RunLengthStats) -> np.ndarray:
    """High grey level run emphasis (G3QZ): sum_i r_i. i^2 / N_s."""
    return s.weighted(2, 0)


def short_run_low_grey_level_emphasis(s: RunLengthStats) -> np.ndarray:
    """Short run low grey level emphasis (HTZT): sum_ij r_ij / (i^2 j^2) / N_s."""
    return s.weighted(-2, -2)


def short_run_high_grey_level_emphasis(s: RunLengthStats) -> np.ndarray:
    """Short run high grey level emphasis (GD3A): sum_ij r_ij i^2 / j^2 / N_s."""
    return s.weighted(2, -2)


def long_run_low_grey_level_emphasis(s: RunLengthStats) -> np.ndarray:
    """Long run low grey level emphasis (IVPO): sum_ij r_ij j^2 / i^2 / N_s."""
    return s.weighted(-2, 2)


def long_run_high_grey_level_emphasis(s: RunLengthStats) -> np.ndarray:
    """Long run high grey level emphasis (3KUM): sum_ij r_ij i^2 j^2 / N_s."""
    return s.weighted(2, 2)


def grey_level_non_uniformity(s: RunLengthStats) -> np.ndarray:
    """Grey level non-uniformity (R5YN): sum_i r_i.^2 / N_s."""
    return s.sum_r_i_squared / s.n_runs


def normalised_grey_level_non_uniformity(s: RunLengthStats) -> np.ndarray:
    """Normalised grey level non-uniformity (OVBL): sum_i r_i.^2 / N_s^2."""
    return s.sum_r_i_squared / s.n_runs**2


def run_length_non_uniformity(s: RunLengthStats) -> np.ndarray:
    """Run length non-uniformity (W92Y): sum_j r_.j^2 / N_s."""
    return s.sum_r_j_squared / s.n_runs


def normalised_run_length_non_uniformity(s: RunLengthStats) -> np.ndarray:
    """Normalised run length non-uniformity (IC23): sum_j r_.j^2 / N_s^2."""
    return s.sum_r_j_squared / s.n_runs**2


def run_percentage(s: RunLengthStats) -> np.ndarray:
    """Run percentage (9ZK5): N_s / N_v, N_v counting the voxels of every merged matrix."""
    return s.n_runs / s.n_voxels


def grey_level_variance(s: RunLengthStats) -> np.ndarray:
    """Grey level variance (8CE5): sum_ij (i - mu)^2 p_ij, mu = sum_ij i p_ij."""
    p_i = s.r_i / s.n_runs[:, None]
    mu = p_i @ s.grey
    return ((s.grey[None, :] - mu[:, None]) ** 2 * p_i).sum(axis=1)


def run_length_variance(s: RunLengthStats) -> np.ndarray:
    """Run length variance (SXLW): sum_ij (j - mu)^2 p_ij, mu = sum_ij j p_ij."""
    p_j = s.r_j / s.n_runs[:, None]
    mu = p_j @ s.length
    return ((s.length[None, :] - mu[:, None]) ** 2 * p_j).sum(axis=1)


def run_entropy(s: RunLengthStats) -> np.ndarray:
    """Run entropy (HJ9O): -sum_ij p_ij log2 p_ij."""
    return -tm.xlog2x(s.r / s.n_runs[:, None, None]).sum(axis=(1, 2))


FEATURES = {
    "22OV": short_runs_emphasis,
    "W4KF": long_runs_emphasis,
    "V3SW": low_grey_level_run_emphasis,
    "G3QZ": high_grey_level_run_emphasis,
    "HTZT": short_run_low_grey_level_emphasis,
    "GD3A": short_run_high_grey_level_emphasis,
    "IVPO": long_run_low_grey_level_emphasis,
    "3KUM": long_run_high_grey_level_emphasis,
    "R5YN": grey_level_non_uniformity,
    "OVBL": normalised_grey_level_non_uniformity,
    "W92Y": run_length_non_uniformity,
    "IC23": normalised_run_length_non_uniformity,
    "9ZK5": run_percentage,
    "8CE5": grey_level_variance,
    "SXLW": run_length_variance,
    "HJ9O": run_entropy,
}

# Every feature is defined on any non-empty matrix: only the no-matrix case (texture_matrices) gives NaN.
UNDEFINED_REASONS = {code: "undefined for every non-empty matrix" for code in FEATURES}


def features_of(runs: np.ndarray, grey: np.ndarray) -> dict[str, np.ndarray]:
    """All GLRLM features of a stack of non-empty run length matrices (n, G, N_r)."""
    longest = np.flatnonzero(runs.any(axis=(0, 1)))[-1] + 1
    stats = RunLengthStats(runs[:, :, :longest], grey)
    return {code: feature(stats) for code, feature in FEATURES.items()}


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """Every GLRLM feature for every aggregation in ``settings["texture"]["matrix_aggregations"]``."""
    levels, grey = tm.texture_levels(roi)
    n_grey = grey.size
    longest_possible = max(levels.shape)

    def build(offsets: np.ndarray, z0: int, z1: int, per_slice: bool) -> np.ndarray:
        return tm.run_length_counts(levels, n_grey, 0, offsets, z0, z1, per_slice)  # cut at the longest run

    def features(runs: np.ndarray) -> dict[str, np.ndarray]:
        return features_of(runs, grey)

    return tm.aggregate(
        settings["texture"]["matrix_aggregations"], features, UNDEFINED_REASONS, (n_grey, longest_possible), build,
        levels.shape[0],
    )
