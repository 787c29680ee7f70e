"""GLRLM (TP0I) against an independent pure-Python reference (runs found by walking whole lines), a hand-computed
case, translation, chunked slices and degenerate ROIs.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from radflow.features import glrlm
from radflow.features import texture_matrices as tm
from radflow.features.base import MATRIX_AGGREGATIONS, RoiData
from radflow.features.directions import DIRECTIONS_2D, DIRECTIONS_3D
from radflow.settings import Settings


def roi_of(levels: np.ndarray, n_levels: int | None = None) -> RoiData:
    levels = np.ascontiguousarray(levels, dtype=np.int32)
    mask = levels > 0
    return RoiData(levels.astype(np.float64), mask, mask, (1.0, 1.0, 1.0), levels, n_levels or int(levels.max()))


def random_levels(seed: int, shape=(4, 6, 7), grey=(1, 2, 4, 7), outside=0.3, runs=True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = rng.choice(np.array(grey), size=shape)
    if runs:  # pairs along x and copies from the slice below make runs longer than one voxel common
        levels = np.repeat(levels[:, :, ::2], 2, axis=2)[:, :, : shape[2]]
        copy = rng.random(shape)[1:] < 0.5
        levels[1:][copy] = levels[:-1][copy]
    levels[rng.random(shape) < outside] = 0
    return np.ascontiguousarray(levels, dtype=np.int32)


def computed(roi: RoiData, settings: Settings | None = None) -> dict[tuple[str, str], tuple[float, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = glrlm.compute(roi, settings or Settings.from_dict({}))
    return {(v.ibsi_code, v.aggregation): (v.value, v.reason) for v in values}


# ---- the naive reference -------------------------------------------------------------------------------------------

def naive_runs(levels: np.ndarray, n_levels: int, offset, only_slice: int | None = None) -> np.ndarray:
    """Run counts r[i-1, j-1]: walk every line of the array along ``offset`` and group equal consecutive levels."""
    shape = levels.shape
    runs = np.zeros((n_levels, max(shape)))
    for start in itertools.product(*(range(n) for n in shape)):
        if only_slice is not None and start[0] != only_slice:
            continue
        before = tuple(s - o for s, o in zip(start, offset))
        if all(0 <= b < n for b, n in zip(before, shape)):
            continue  # not the first voxel of its line
        line, here = [], start
        while all(0 <= h < n for h, n in zip(here, shape)):
            line.append(int(levels[here]))
            here = tuple(h + o for h, o in zip(here, offset))
        for level, group in itertools.groupby(line):
            if level:
                runs[level - 1, len(list(group)) - 1] += 1
    return runs


def naive_features(r: np.ndarray) -> dict[str, float]:
    """The 16 IBSI GLRLM formulas with explicit sums over grey levels i and run lengths j."""
    cells = {(i + 1, j + 1): r[i, j] for i in range(r.shape[0]) for j in range(r.shape[1])}
    n_s = sum(cells.values())
    n_v = sum(j * v for (i, j), v in cells.items())
    r_i = {i + 1: r[i].sum() for i in range(r.shape[0])}
    r_j = {j + 1: r[:, j].sum() for j in range(r.shape[1])}
    mu_i = sum(i * v / n_s for (i, j), v in cells.items())
    mu_j = sum(j * v / n_s for (i, j), v in cells.items())
    return {
        "22OV": sum(v / j**2 for (i, j), v in cells.items()) / n_s,
        "W4KF": sum(v * j**2 for (i, j), v in cells.items()) / n_s,
        "V3SW": sum(v / i**2 for (i, j), v in cells.items()) / n_s,
        "G3QZ": sum(v * i**2 for (i, j), v in cells.items()) / n_s,
        "HTZT": sum(v / (i**2 * j**2) for (i, j), v in cells.items()) / n_s,
        "GD3A": sum(v * i**2 / j**2 for (i, j), v in cells.items()) / n_s,
        "IVPO": sum(v * j**2 / i**2 for (i, j), v in cells.items()) / n_s,
        "3KUM": sum(v * i**2 * j**2 for (i, j), v in cells.items()) / n_s,
        "R5YN": sum(v**2 for v in r_i.values()) / n_s,
        "OVBL": sum(v**2 for v in r_i.values()) / n_s**2,
        "W92Y": sum(v**2 for v in r_j.values()) / n_s,
        "IC23": sum(v**2 for v in r_j.values()) / n_s**2,
        "9ZK5": n_s / n_v,
        "8CE5": sum((i - mu_i) ** 2 * v / n_s for (i, j), v in cells.items()),
        "SXLW": sum((j - mu_j) ** 2 * v / n_s for (i, j), v in cells.items()),
        "HJ9O": -sum(v / n_s * math.log2(v / n_s) for v in cells.values() if v > 0),
    }


def naive_aggregations(levels: np.ndarray, n_levels: int) -> dict:
    in_plane = [tuple(int(o) for o in d) for d in DIRECTIONS_2D]
    n_z = levels.shape[0]
    per_slice = {(z, d): naive_runs(levels, n_levels, d, z) for z in range(n_z) for d in in_plane}
    volume = [naive_runs(levels, n_levels, tuple(int(o) for o in d)) for d in DIRECTIONS_3D]
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
        values = [naive_features(m) for m in stack if m.sum() > 0]
        for code in glrlm.FEATURES:
            result[code, aggregation] = sum(v[code] for v in values) / len(values)
    return result


# ---- tests ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_runs_equal_naive_runs(seed):
    levels = random_levels(seed)
    n_grey, longest = int(levels.max()), max(levels.shape)
    compact = levels.astype(np.uint8)  # the kernel's levels as compact_grey_levels makes them
    per_slice = tm.run_length_counts(compact, n_grey, longest, DIRECTIONS_2D, 0, levels.shape[0], True)
    volume = tm.run_length_counts(compact, n_grey, longest, DIRECTIONS_3D, 0, levels.shape[0], False)[0]
    assert volume[:, :, 1:].sum() > 0, "the volume should hold runs longer than one voxel"
    for d, offset in enumerate(DIRECTIONS_3D):
        assert np.array_equal(volume[d], naive_runs(levels, n_grey, tuple(offset)))
    for d, offset in enumerate(DIRECTIONS_2D):
        for z in range(levels.shape[0]):
            assert np.array_equal(per_slice[z, d], naive_runs(levels, n_grey, tuple(offset), z))
    assert np.array_equal(tm.run_length_counts(compact, n_grey, longest, DIRECTIONS_2D, 1, 3, True), per_slice[1:3])
    # too few columns for the longest run: the kernel widens its matrices and counts that direction again
    narrow = tm.run_length_counts(compact, n_grey, 1, DIRECTIONS_3D, 0, levels.shape[0], False)[0]
    width = max(narrow.shape[2], volume.shape[2])
    assert narrow.shape[2] > 1 and np.array_equal(
        np.pad(narrow, ((0, 0), (0, 0), (0, width - narrow.shape[2]))),
        np.pad(volume, ((0, 0), (0, 0), (0, width - volume.shape[2]))))


def test_every_roi_voxel_is_in_exactly_one_run_per_direction():
    levels = random_levels(4, shape=(5, 8, 9))
    volume = tm.run_length_counts(levels.astype(np.uint8), int(levels.max()), 9, DIRECTIONS_3D, 0, 5, False)[0]
    covered = volume @ np.arange(1, 10)
    assert np.array_equal(covered.sum(axis=1), np.full(13, float((levels > 0).sum())))


@pytest.mark.parametrize("seed", [0, 3])
def test_compute_equals_naive_reference_for_every_aggregation(seed):
    levels = random_levels(seed)
    n_levels = 8  # levels 3, 5, 6 and 8 are absent from the ROI
    values = computed(roi_of(levels, n_levels))
    expected = naive_aggregations(levels, n_levels)
    assert set(values) == set(expected)
    for key, reference in expected.items():
        assert values[key][0] == pytest.approx(reference, rel=1e-9, abs=1e-12), key
        assert values[key][1] == ""


def test_hand_computed_line():
    """One slice, one row [1 1 2 2]: along x two runs of 2, along the other in-plane directions four runs of 1."""
    values = computed(roi_of(np.array([[[1, 1, 2, 2]]])))
    # per direction: SRE 1/4 along x and 1 otherwise; run percentage 2/4 along x and 1 otherwise
    assert values["22OV", "2D, averaged"][0] == pytest.approx((0.25 + 3) / 4)
    assert values["9ZK5", "2D, averaged"][0] == pytest.approx((0.5 + 3) / 4)
    # merged: 2 runs of 2 and 12 runs of 1 cover 16 voxels; 3D adds 9 directions of four 1-runs
    assert values["9ZK5", "2.5D, merged"][0] == pytest.approx(14 / 16)
    assert values["W4KF", "2.5D, merged"][0] == pytest.approx((2 * 4 + 12) / 14)
    assert values["9ZK5", "3D, merged"][0] == pytest.approx(50 / 52)
    assert values["OVBL", "2.5D, merged"][0] == pytest.approx((7**2 + 7**2) / 14**2)


def test_features_do_not_depend_on_where_the_roi_lies_in_the_array(monkeypatch):
    levels = random_levels(7, shape=(5, 6, 6))
    reference = computed(roi_of(levels, 7))
    shifted = np.zeros((9, 11, 10), dtype=np.int32)
    shifted[3:8, 4:10, 1:7] = levels
    moved = computed(roi_of(shifted, 7))
    monkeypatch.setattr(tm, "CHUNK_ENTRIES", 1)  # one slice per kernel call
    chunked = computed(roi_of(shifted, 7))
    assert moved.keys() == chunked.keys() == reference.keys()
    for key, (value, _) in reference.items():
        assert moved[key][0] == pytest.approx(value, rel=1e-12), key
        assert chunked[key][0] == pytest.approx(value, rel=1e-12), key


def test_single_voxel():
    levels = np.zeros((3, 3, 3), dtype=np.int32)
    levels[1, 1, 1] = 3
    values = computed(roi_of(levels))
    assert len(values) == 16 * len(MATRIX_AGGREGATIONS)
    expected = {"22OV": 1, "W4KF": 1, "V3SW": 1 / 9, "G3QZ": 9, "OVBL": 1, "IC23": 1, "9ZK5": 1, "8CE5": 0,
                "SXLW": 0, "HJ9O": 0}
    # a merged matrix holds one run of 1 per merged direction, and the non-normalised non-uniformities count them
    merged = {"2D, averaged": 1, "2D, slice-merged": 4, "2.5D, direction-merged": 1, "2.5D, merged": 4,
              "3D, averaged": 1, "3D, merged": 13}
    for aggregation in MATRIX_AGGREGATIONS:
        for code, value in {**expected, "R5YN": merged[aggregation], "W92Y": merged[aggregation]}.items():
            assert values[code, aggregation] == (pytest.approx(value), ""), (code, aggregation)


def test_constant_cube_single_grey_level():
    values = computed(roi_of(np.full((3, 3, 3), 2, dtype=np.int32), n_levels=4))
    # every line through a 3-cube in a 2D direction: axis-aligned runs of 3, diagonal runs of 1, 2, 3, 2, 1
    assert values["W4KF", "2.5D, direction-merged"][0] == pytest.approx((9 + 9 + 19 / 5 + 19 / 5) / 4)
    for aggregation in MATRIX_AGGREGATIONS:
        assert values["8CE5", aggregation] == (0.0, "")
        assert values["V3SW", aggregation] == (pytest.approx(0.25), "")
        assert values["OVBL", aggregation] == (1.0, "")


def test_single_slice_is_fully_defined():
    values = computed(roi_of(random_levels(11, shape=(1, 7, 8)), 7))
    for (code, aggregation), (value, reason) in values.items():
        assert math.isfinite(value) and reason == "", (code, aggregation)
    # 2D and 2.5D coincide for one slice
    for code in glrlm.FEATURES:
        assert values[code, "2D, slice-merged"][0] == pytest.approx(values[code, "2.5D, merged"][0], rel=1e-12)
