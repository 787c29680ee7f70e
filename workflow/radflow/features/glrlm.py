"""Grey level run length matrix features (IBSI family TP0I, 16 features).

A GLRLM r_ij counts, for one direction, the runs of j consecutive voxels of grey level i along that direction; a run
ends at the edge of the intensity mask. Notation (IBSI 3.7):

    N_s = sum_ij r_ij                         number of runs
    r_i. = sum_j r_ij, r_.j = sum_i r_ij     runs per grey level and per run length
    N_v = sum_ij j r_ij                       voxels covered (the ROI voxel count, times the directions merged)
    p_ij = r_ij / N_s

i are grey level values (1..N_g), j run lengths (1..N_r). Matrices are computed on the grey levels present in the
ROI (see ``texture_matrices.compact_grey_levels``); absent levels only add zero rows.

| code | feature                                    | formula                                         |
|------|--------------------------------------------|-------------------------------------------------|
| 22OV | short runs emphasis                        | sum_j r_.j / j^2 / N_s                          |
| W4KF | long runs emphasis                         | sum_j r_.j j^2 / N_s                            |
| V3SW | low grey level run emphasis                | sum_i r_i. / i^2 / N_s                          |
| G3QZ | high grey level run emphasis               | sum_i r_i. i^2 / N_s                            |
| HTZT | short run low grey level emphasis          | sum_ij r_ij / (i^2 j^2) / N_s                   |
| GD3A | short run high grey level emphasis         | sum_ij r_ij i^2 / j^2 / N_s                     |
| IVPO | long run low grey level emphasis           | sum_ij r_ij j^2 / i^2 / N_s                     |
| 3KUM | long run high grey level emphasis          | sum_ij r_ij i^2 j^2 / N_s                       |
| R5YN | grey level non-uniformity                  | sum_i r_i.^2 / N_s                              |
| OVBL | normalised grey level non-uniformity       | sum_i r_i.^2 / N_s^2                            |
| W92Y | run length non-uniformity                  | sum_j r_.j^2 / N_s                              |
| IC23 | normalised run length non-uniformity       | sum_j r_.j^2 / N_s^2                            |
| 9ZK5 | run percentage                             | N_s / N_v (N_v counts the voxels of every merged matrix) |
| 8CE5 | grey level variance                        | sum_ij (i - mu)^2 p_ij, mu = sum_ij i p_ij      |
| SXLW | run length variance                        | sum_ij (j - mu)^2 p_ij, mu = sum_ij j p_ij      |
| HJ9O | run entropy                                | -sum_ij p_ij log2 p_ij                          |

Every feature is defined on any non-empty matrix: only the no-matrix case (texture_matrices) gives NaN.
"""
from __future__ import annotations

import math

import numpy as np

from radflow.compiled import kernel
from radflow.features import texture_matrices as tm
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings

# The 16 features in the order ``_add_features`` writes them.
FEATURES = ("22OV", "W4KF", "V3SW", "G3QZ", "HTZT", "GD3A", "IVPO", "3KUM", "R5YN", "OVBL", "W92Y", "IC23", "9ZK5",
            "8CE5", "SXLW", "HJ9O")
UNDEFINED_REASONS = {code: "undefined for every non-empty matrix" for code in FEATURES}


@kernel()
def _add_features(runs, grey, totals, defined):
    """Adds the features (``FEATURES`` order) of every non-empty run length matrix of ``runs`` (n, G, N_r, float64)
    to ``totals``, counting them in ``defined``; returns the number of non-empty matrices. ``grey`` (G,) are the
    grey level values of the rows."""
    n_matrices, n_grey, n_lengths = runs.shape
    r_i = np.empty(n_grey)
    r_j = np.empty(n_lengths)
    values = np.empty(len(FEATURES))
    found = 0
    for m in range(n_matrices):
        r = runs[m]
        for a in range(n_grey):
            r_i[a] = 0.0
        for n in range(n_lengths):
            r_j[n] = 0.0
        for a in range(n_grey):
            for n in range(n_lengths):
                r_i[a] += r[a, n]
                r_j[n] += r[a, n]
        n_runs = 0.0
        for a in range(n_grey):
            n_runs += r_i[a]
        if n_runs == 0.0:
            continue
        found += 1
        short = long = low = high = short_low = short_high = long_low = long_high = entropy = 0.0
        for a in range(n_grey):
            i2 = grey[a] * grey[a]
            for n in range(n_lengths):
                count = r[a, n]
                if count == 0.0:
                    continue
                j2 = (n + 1.0) * (n + 1.0)
                short_low += count / (i2 * j2)
                short_high += count * i2 / j2
                long_low += count * j2 / i2
                long_high += count * i2 * j2
                p = count / n_runs
                entropy -= p * math.log2(p)
        n_voxels = sum_r_j_squared = mu_j = 0.0
        for n in range(n_lengths):
            j = n + 1.0
            short += r_j[n] / (j * j)
            long += r_j[n] * j * j
            n_voxels += r_j[n] * j
            sum_r_j_squared += r_j[n] * r_j[n]
            mu_j += r_j[n] / n_runs * j
        sum_r_i_squared = mu_i = 0.0
        for a in range(n_grey):
            low += r_i[a] / (grey[a] * grey[a])
            high += r_i[a] * grey[a] * grey[a]
            sum_r_i_squared += r_i[a] * r_i[a]
            mu_i += r_i[a] / n_runs * grey[a]
        grey_variance = length_variance = 0.0
        for a in range(n_grey):
            grey_variance += (grey[a] - mu_i) * (grey[a] - mu_i) * (r_i[a] / n_runs)
        for n in range(n_lengths):
            length_variance += (n + 1.0 - mu_j) * (n + 1.0 - mu_j) * (r_j[n] / n_runs)
        values[0] = short / n_runs
        values[1] = long / n_runs
        values[2] = low / n_runs
        values[3] = high / n_runs
        values[4] = short_low / n_runs
        values[5] = short_high / n_runs
        values[6] = long_low / n_runs
        values[7] = long_high / n_runs
        values[8] = sum_r_i_squared / n_runs
        values[9] = sum_r_i_squared / (n_runs * n_runs)
        values[10] = sum_r_j_squared / n_runs
        values[11] = sum_r_j_squared / (n_runs * n_runs)
        values[12] = n_runs / n_voxels
        values[13] = grey_variance
        values[14] = length_variance
        values[15] = entropy
        tm.add_finite(values, totals, defined)
    return found


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """Every GLRLM feature for every aggregation in ``settings["texture"]["matrix_aggregations"]``."""
    levels, grey = tm.texture_levels(roi)
    n_grey = grey.size
    longest_possible = max(levels.shape)

    def build(offsets: np.ndarray, z0: int, z1: int, per_slice: bool) -> np.ndarray:
        return tm.run_length_counts(levels, n_grey, 0, offsets, z0, z1, per_slice)  # cut at the longest run

    def add_features(runs: np.ndarray, totals: np.ndarray, defined: np.ndarray) -> int:
        return _add_features(runs, grey, totals, defined)

    return tm.aggregate(
        settings["texture"]["matrix_aggregations"], add_features, UNDEFINED_REASONS, (n_grey, longest_possible), build,
        levels.shape[0],
    )
