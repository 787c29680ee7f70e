"""The sparse grey level x count machinery of the zone families (``zones.count_cells``, ``zones.cell_features``)
against dense matrices and a direct evaluation of the formulas, and the zones GLSZM and GLDZM share per ROI."""
from __future__ import annotations

import math

import numpy as np
import pytest

from radflow.features import gldzm, glszm, zones
from radflow.features.base import RoiData
from radflow.settings import Settings


def _items(seed: int, n: int = 400, n_groups: int = 4, n_levels: int = 6):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n_groups, n), rng.integers(1, n_levels + 1, n), rng.choice([1, 2, 3, 7, 40, 41], n),
            n_groups, n_levels)


@pytest.mark.parametrize("scratch", [zones.MAX_SCRATCH_CELLS, 0])  # 0: the sorting fallback
@pytest.mark.parametrize("seed", range(3))
def test_cells_are_the_non_empty_cells_of_the_dense_matrices(seed, scratch, monkeypatch):
    monkeypatch.setattr(zones, "MAX_SCRATCH_CELLS", scratch)
    group, rows, values, n_groups, n_levels = _items(seed)
    dense, columns = zones.count_matrices(group, rows, values, n_groups, n_levels)
    cells = zones.count_cells(group, rows, values, n_groups, n_levels)
    rebuilt = np.zeros_like(dense)
    rebuilt[cells.group, cells.row, cells.column] = cells.count
    np.testing.assert_array_equal(rebuilt, dense)
    np.testing.assert_array_equal(cells.columns, columns)
    assert (cells.count > 0).all() and len(set(zip(cells.group, cells.row, cells.column))) == cells.count.size


def _direct(matrix: np.ndarray, columns: np.ndarray, n_voxels: int) -> dict[str, float]:
    """The feature formulas of ``zones.cell_features`` with explicit loops over one dense matrix."""
    n_s = matrix.sum()
    out = dict.fromkeys(("small", "large", "low", "high", "small_low", "small_high", "large_low", "large_high",
                         "entropy", "energy"), 0.0)
    for (r, c), m in np.ndenumerate(matrix):
        if m == 0:
            continue
        i, j, p = r + 1.0, columns[c], m / n_s
        out["small"] += p / j**2
        out["large"] += p * j**2
        out["low"] += p / i**2
        out["high"] += p * i**2
        out["small_low"] += p / (i**2 * j**2)
        out["small_high"] += p * i**2 / j**2
        out["large_low"] += p * j**2 / i**2
        out["large_high"] += p * i**2 * j**2
        out["entropy"] -= p * math.log2(p)
        out["energy"] += p * p
    p_i, p_j = matrix.sum(axis=1) / n_s, matrix.sum(axis=0) / n_s
    grey = np.arange(1, matrix.shape[0] + 1)
    out.update(glnu=float((p_i**2).sum() * n_s), glnu_norm=float((p_i**2).sum()), cnu=float((p_j**2).sum() * n_s),
               cnu_norm=float((p_j**2).sum()), percentage=n_s / n_voxels,
               gl_variance=float((p_i * (grey - p_i @ grey) ** 2).sum()),
               c_variance=float((p_j * (columns - p_j @ columns) ** 2).sum()))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_cell_features_match_the_formulas_per_matrix(seed):
    group, rows, values, n_groups, n_levels = _items(seed)
    dense, columns = zones.count_matrices(group, rows, values, n_groups, n_levels)
    voxels = np.array([500, 600, 700, 800])
    got = zones.cell_features(zones.count_cells(group, rows, values, n_groups, n_levels), voxels)
    for g in range(n_groups):
        for name, value in _direct(dense[g], columns, voxels[g]).items():
            assert got[g, zones.CELL_COLUMN[name]] == pytest.approx(value, rel=1e-12), name


def test_glszm_and_gldzm_label_the_zones_once_per_roi(monkeypatch):
    rng = np.random.default_rng(3)
    levels = rng.integers(1, 4, (4, 6, 7)).astype(np.int32)
    mask = np.ones(levels.shape, dtype=bool)

    def roi() -> RoiData:
        return RoiData(levels.astype(np.float64), mask, mask, (1.0, 1.0, 1.0), levels, 3)

    settings = Settings.from_dict({})
    alone = glszm.compute(roi(), settings) + gldzm.compute(roi(), settings)
    planar_flags = []
    label = zones.label_zones
    monkeypatch.setattr(zones, "label_zones", lambda *a, **k: planar_flags.append(a[3]) or label(*a, **k))
    shared_roi = roi()
    shared = glszm.compute(shared_roi, settings) + gldzm.compute(shared_roi, settings)
    assert sorted(planar_flags) == [False, True]  # one planar and one volume labelling for both families
    assert [(v.ibsi_code, v.aggregation, v.value) for v in shared] == \
        [(v.ibsi_code, v.aggregation, v.value) for v in alone]


def test_a_replaced_roi_does_not_inherit_the_cache():
    import dataclasses

    levels = np.array([[[1, 2], [2, 2]]], dtype=np.int32)
    mask = levels > 0
    roi = RoiData(levels.astype(np.float64), mask, mask, (1.0, 1.0, 1.0), levels, 2)
    first = zones.roi_zones(roi, 1, planar=False, with_distance=False)
    other_levels = np.full_like(levels, 1)
    changed = dataclasses.replace(roi, levels=other_levels, image=other_levels.astype(np.float64))
    assert changed.cache == {}
    assert zones.roi_zones(changed, 1, planar=False, with_distance=False).size.tolist() == [4]
    assert sorted(first.size.tolist()) == [1, 3]
    assert changed.intensities.tolist() == [1.0] * 4
