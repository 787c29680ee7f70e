"""GLCM (LFYI) against an independent pure-Python reference: matrix building, IBSI aggregation and the 25 formulas.

The IBSI reference rows (tests/test_ibsi_features.py) check distance 1, symmetric matrices and grey levels 1..N_g;
these tests add distance 2, non-symmetric matrices, grey levels absent from the ROI, chunked slices, translation
and degenerate ROIs.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from radflow.features import glcm
from radflow.features import texture_matrices as tm
from radflow.features.base import MATRIX_AGGREGATIONS, RoiData
from radflow.features.directions import DIRECTIONS_2D, DIRECTIONS_3D
from radflow.settings import Settings


def roi_of(levels: np.ndarray, n_levels: int | None = None) -> RoiData:
    levels = np.ascontiguousarray(levels, dtype=np.int32)
    mask = levels > 0
    return RoiData(levels.astype(np.float64), mask, mask, (1.0, 1.0, 1.0), levels, n_levels or int(levels.max()))


def random_levels(seed: int, shape=(4, 6, 7), grey=(1, 2, 4, 7), outside=0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = rng.choice(np.array(grey), size=shape)
    levels[rng.random(shape) < outside] = 0
    return levels.astype(np.int32)


def settings_with(**texture) -> Settings:
    return Settings.from_dict({"texture": texture})


def computed(roi: RoiData, settings: Settings) -> dict[tuple[str, str], tuple[float, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return {(v.ibsi_code, v.aggregation): (v.value, v.reason) for v in glcm.compute(roi, settings)}


# ---- the naive reference -------------------------------------------------------------------------------------------

def naive_counts(levels: np.ndarray, n_levels: int, offset, only_slice: int | None = None) -> np.ndarray:
    """One-sided co-occurrence counts over grey levels 1..n_levels, by visiting every voxel in Python."""
    counts = np.zeros((n_levels, n_levels))
    n_z, n_y, n_x = levels.shape
    for z, y, x in itertools.product(range(n_z), range(n_y), range(n_x)):
        if only_slice is not None and z != only_slice:
            continue
        z2, y2, x2 = z + offset[0], y + offset[1], x + offset[2]
        if not (0 <= z2 < n_z and 0 <= y2 < n_y and 0 <= x2 < n_x):
            continue
        a, b = int(levels[z, y, x]), int(levels[z2, y2, x2])
        if a and b:
            counts[a - 1, b - 1] += 1
    return counts


def naive_features(counts: np.ndarray, symmetric: bool) -> dict[str, float]:
    """The 25 IBSI GLCM formulas written out with explicit sums over grey levels 1..N_g."""
    n_g = counts.shape[0]
    m = counts + counts.T if symmetric else counts
    p = m / m.sum()
    levels = range(1, n_g + 1)
    pij = {(i, j): p[i - 1, j - 1] for i in levels for j in levels}
    p_i = {i: sum(pij[i, j] for j in levels) for i in levels}
    p_j = {j: sum(pij[i, j] for i in levels) for j in levels}
    p_diff = {k: sum(v for (i, j), v in pij.items() if abs(i - j) == k) for k in range(n_g)}
    p_sum = {k: sum(v for (i, j), v in pij.items() if i + j == k) for k in range(2, 2 * n_g + 1)}
    mu = sum(i * v for (i, j), v in pij.items())
    mu_i = sum(i * v for i, v in p_i.items())
    mu_j = sum(j * v for j, v in p_j.items())
    sd_i = math.sqrt(sum((i - mu_i) ** 2 * v for i, v in p_i.items()))
    sd_j = math.sqrt(sum((j - mu_j) ** 2 * v for j, v in p_j.items()))
    mu_d = sum(k * v for k, v in p_diff.items())
    mu_s = sum(k * v for k, v in p_sum.items())

    def entropy(values):
        return -sum(v * math.log2(v) for v in values if v > 0)

    hxy = entropy(pij.values())
    hx = entropy(p_i.values())
    hxy1 = -sum(v * math.log2(p_i[i] * p_j[j]) for (i, j), v in pij.items() if v > 0)
    hxy2 = -sum(p_i[i] * p_j[j] * math.log2(p_i[i] * p_j[j]) for i in levels for j in levels if p_i[i] * p_j[j] > 0)
    cluster = {q: sum((i + j - mu_i - mu_j) ** q * v for (i, j), v in pij.items()) for q in (2, 3, 4)}
    autocorrelation = sum(i * j * v for (i, j), v in pij.items())
    return {
        "GYBY": max(pij.values()),
        "60VM": mu,
        "UR99": sum((i - mu) ** 2 * v for (i, j), v in pij.items()),
        "TU9B": hxy,
        "TF7R": mu_d,
        "D3YU": sum((k - mu_d) ** 2 * v for k, v in p_diff.items()),
        "NTRS": entropy(p_diff.values()),
        "ZGXS": mu_s,
        "OEEB": sum((k - mu_s) ** 2 * v for k, v in p_sum.items()),
        "P6QZ": entropy(p_sum.values()),
        "8ZQL": sum(v * v for v in pij.values()),
        "ACUI": sum((i - j) ** 2 * v for (i, j), v in pij.items()),
        "8S9J": sum(abs(i - j) * v for (i, j), v in pij.items()),
        "IB1Z": sum(v / (1 + abs(i - j)) for (i, j), v in pij.items()),
        "NDRX": sum(v / (1 + abs(i - j) / n_g) for (i, j), v in pij.items()),
        "WF0Z": sum(v / (1 + (i - j) ** 2) for (i, j), v in pij.items()),
        "1QCO": sum(v / (1 + (i - j) ** 2 / n_g**2) for (i, j), v in pij.items()),
        "E8JP": sum(v / (i - j) ** 2 for (i, j), v in pij.items() if i != j),
        "NI2N": (autocorrelation - mu_i * mu_j) / (sd_i * sd_j) if sd_i * sd_j > 0 else math.nan,
        "QWB0": autocorrelation,
        "DG8W": cluster[2],
        "7NFM": cluster[3],
        "AE86": cluster[4],
        "R8DG": (hxy - hxy1) / hx if hx > 0 else math.nan,
        "JN9H": math.sqrt(max(1 - math.exp(-2 * (hxy2 - hxy)), 0.0)),
    }


def naive_aggregations(levels: np.ndarray, n_levels: int, distance: int, symmetric: bool) -> dict:
    """IBSI aggregation spelled out: lists of matrices per aggregation, features averaged over non-empty ones."""
    in_plane = [tuple(int(o) * distance for o in d) for d in DIRECTIONS_2D]
    all_3d = [tuple(int(o) * distance for o in d) for d in DIRECTIONS_3D]
    n_z = levels.shape[0]
    per_slice = {(z, d): naive_counts(levels, n_levels, d, z) for z in range(n_z) for d in in_plane}
    volume = [naive_counts(levels, n_levels, d) for d in all_3d]
    matrices = {
        "2D, averaged": list(per_slice.values()),
        "2D, slice-merged": [sum(per_slice[z, d] for d in in_plane) for z in range(n_z)],
        "2.5D, direction-merged": [sum(per_slice[z, d] for z in range(n_z)) for d in in_plane],
        "2.5D, merged": [sum(per_slice.values())],
        "3D, averaged": volume,
        "3D, merged": [sum(volume)],
    }
    result = {}
    for aggregation, stack in matrices.items():
        values = [naive_features(m, symmetric) for m in stack if m.sum() > 0]
        for code in glcm.FEATURES:
            finite = [v[code] for v in values if math.isfinite(v[code])]
            result[code, aggregation] = sum(finite) / len(finite) if finite else math.nan
    return result


# ---- tests ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("distance", [1, 2])
def test_kernel_counts_equal_naive_counts(seed, distance):
    levels = random_levels(seed)
    n_grey = int(levels.max())
    offsets = DIRECTIONS_3D * distance
    compact = levels.astype(np.uint8)  # the kernel's levels as compact_grey_levels makes them
    per_slice = tm.cooccurrence_counts(compact, n_grey, offsets, 0, levels.shape[0], True)
    volume = tm.cooccurrence_counts(compact, n_grey, offsets, 0, levels.shape[0], False)[0]
    for d, offset in enumerate(offsets):
        assert np.array_equal(volume[d], naive_counts(levels, n_grey, offset))
        for z in range(levels.shape[0]):
            assert np.array_equal(per_slice[z, d], naive_counts(levels, n_grey, offset, z))
    # a chunk of slices reports the same matrices as the whole range
    assert np.array_equal(tm.cooccurrence_counts(compact, n_grey, offsets, 1, 3, True), per_slice[1:3])


@pytest.mark.parametrize("seed, distance, symmetric", [(0, 1, True), (1, 2, True), (2, 1, False), (3, 2, False)])
def test_compute_equals_naive_reference_for_every_aggregation(seed, distance, symmetric):
    levels = random_levels(seed)
    n_levels = 8  # levels 3, 5, 6 and 8 are absent from the ROI but count in N_g
    values = computed(roi_of(levels, n_levels), settings_with(glcm_distance=distance, glcm_symmetric=symmetric))
    expected = naive_aggregations(levels, n_levels, distance, symmetric)
    assert set(values) == set(expected)
    for key, reference in expected.items():
        value, reason = values[key]
        assert math.isfinite(reference), key
        assert value == pytest.approx(reference, rel=1e-9, abs=1e-12), key
        assert reason == ""


def _feature_row(counts: np.ndarray, symmetric: bool) -> np.ndarray:
    """The GLCM features of one count matrix (NaN where undefined)."""
    totals = np.zeros(len(glcm.FEATURES))
    defined = np.zeros(len(glcm.FEATURES), dtype=np.int64)
    grey = np.arange(1.0, counts.shape[0] + 1)
    assert glcm._add_features(np.ascontiguousarray(counts[None]), grey, counts.shape[0], symmetric, totals,
                              defined) == 1
    return np.where(defined > 0, totals, np.nan)


def test_symmetric_matrices_add_the_transpose():
    levels = random_levels(5)
    counts = tm.cooccurrence_counts(levels.astype(np.uint8), int(levels.max()), DIRECTIONS_3D, 0, levels.shape[0],
                                    False)[0]
    for one_sided in counts:
        transposed = one_sided.T.copy()
        np.testing.assert_allclose(_feature_row(one_sided, True), _feature_row(transposed, True), rtol=1e-12)
        np.testing.assert_allclose(_feature_row(one_sided, True), _feature_row(one_sided + transposed, False),
                                   rtol=1e-12)
    assert not np.allclose(_feature_row(counts[0], False), _feature_row(counts[0].T.copy(), False))


def test_features_do_not_depend_on_where_the_roi_lies_in_the_array(monkeypatch):
    levels = random_levels(7, shape=(5, 6, 6))
    settings = settings_with()
    reference = computed(roi_of(levels, 7), settings)
    shifted = np.zeros((9, 11, 10), dtype=np.int32)
    shifted[3:8, 4:10, 1:7] = levels
    assert computed(roi_of(shifted, 7), settings) == reference
    monkeypatch.setattr(tm, "CHUNK_ENTRIES", 1)  # one slice per kernel call
    chunked = computed(roi_of(shifted, 7), settings)
    assert chunked.keys() == reference.keys()
    for key, (value, _) in reference.items():
        assert chunked[key][0] == pytest.approx(value, rel=1e-12), key


def test_single_voxel_gives_nan_with_reason_everywhere():
    levels = np.zeros((3, 3, 3), dtype=np.int32)
    levels[1, 1, 1] = 4
    values = computed(roi_of(levels), settings_with())
    assert len(values) == 25 * len(MATRIX_AGGREGATIONS)
    for value, reason in values.values():
        assert math.isnan(value) and reason == tm.NO_MATRIX_REASON


def test_single_grey_level():
    values = computed(roi_of(np.full((3, 4, 4), 2, dtype=np.int32), n_levels=5), settings_with())
    for aggregation in MATRIX_AGGREGATIONS:
        def at(code, aggregation=aggregation):
            return values[code, aggregation]

        assert at("GYBY") == (1.0, "") and at("60VM") == (2.0, "") and at("QWB0") == (4.0, "")
        for code in ("UR99", "TU9B", "ACUI", "8S9J", "E8JP", "DG8W", "7NFM", "AE86", "JN9H", "NTRS", "P6QZ"):
            assert at(code) == (0.0, ""), code
        for code in ("IB1Z", "NDRX", "WF0Z", "1QCO", "8ZQL"):
            assert at(code) == (1.0, ""), code
        for code in ("NI2N", "R8DG"):
            value, reason = at(code)
            assert math.isnan(value) and "single grey level" in reason


def test_single_slice_3d_equals_25d():
    """One slice has no out-of-plane pairs: 3D averages the 4 in-plane matrices exactly as 2.5D does."""
    levels = random_levels(11, shape=(1, 7, 8))
    values = computed(roi_of(levels, 7), settings_with())
    for code in glcm.FEATURES:
        assert values[code, "3D, averaged"][0] == pytest.approx(values[code, "2.5D, direction-merged"][0], rel=1e-12)
        assert values[code, "3D, merged"][0] == pytest.approx(values[code, "2.5D, merged"][0], rel=1e-12)
        assert math.isfinite(values[code, "2D, averaged"][0])


def test_slices_without_pairs_are_left_out_of_averages():
    """Adding a slice holding one isolated voxel changes no 2D average (its matrices are empty)."""
    levels = random_levels(13, shape=(2, 5, 5), outside=0.0)
    padded = np.zeros((3, 5, 5), dtype=np.int32)
    padded[:2] = levels
    padded[2, 4, 4] = levels[1, 4, 4]
    reduced = padded[:2].copy()
    settings = settings_with(matrix_aggregations=["2D, averaged", "2D, slice-merged"])
    with_lone, without = computed(roi_of(padded, 7), settings), computed(roi_of(reduced, 7), settings)
    for key, (value, _) in without.items():
        assert with_lone[key][0] == pytest.approx(value, rel=1e-12), key


def test_only_requested_aggregations_are_reported():
    values = computed(roi_of(random_levels(3)), settings_with(matrix_aggregations=["3D, merged"]))
    assert {agg for _, agg in values} == {"3D, merged"} and len(values) == 25
