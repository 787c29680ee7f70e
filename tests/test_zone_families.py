"""GLSZM (9SAK), GLDZM (VMDZ), NGTDM (IPET) and NGLDM (REK0) against independent pure-Python references.

The references walk voxels with explicit coordinates (a breadth-first zone search, a brute-force taxicab distance,
per-voxel neighbourhood loops) and evaluate the IBSI formulas with explicit double loops; the numba kernels, the
vectorised feature formulas and the 2D / 2.5D / 3D aggregation must agree with them on small seeded random volumes.
Then: translation invariance, hand-computed degenerate ROIs, no warnings.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from radflow.features import gldzm, glszm, ngldm, ngtdm, zones
from radflow.features.base import ZONE_AGGREGATIONS, RoiData
from radflow.settings import Settings

FAMILIES = {"glszm": glszm, "gldzm": gldzm, "ngtdm": ngtdm, "ngldm": ngldm}


def roi_of(levels: np.ndarray, morph_mask: np.ndarray | None = None, n_levels: int | None = None) -> RoiData:
    """ROI whose intensity mask is ``levels > 0``; the morphological mask defaults to the same voxels."""
    levels = np.ascontiguousarray(levels, dtype=np.int32)
    int_mask = levels > 0
    morph = int_mask if morph_mask is None else (morph_mask | int_mask)
    return RoiData(levels.astype(np.float64), morph, int_mask, (1.0, 1.0, 1.0), levels, n_levels or int(levels.max()))


def random_roi(seed: int, shape=(4, 6, 7), grey=(1, 2, 3, 5), outside=0.25, reseg=0.1) -> RoiData:
    """Random grey levels with equal-level copies between neighbours (so zones larger than one voxel are common);
    some voxels out of both masks and some only out of the intensity mask (re-segmented away)."""
    rng = np.random.default_rng(seed)
    levels = rng.choice(np.array(grey), size=shape).astype(np.int32)
    copy_x = rng.random(shape)[:, :, 1:] < 0.4
    levels[:, :, 1:][copy_x] = levels[:, :, :-1][copy_x]
    copy_z = rng.random(shape)[1:] < 0.3
    levels[1:][copy_z] = levels[:-1][copy_z]
    morph = rng.random(shape) >= outside
    levels[~morph] = 0
    levels[rng.random(shape) < reseg] = 0
    return roi_of(levels, morph, n_levels=max(grey))


def computed(module, roi: RoiData, settings: Settings | None = None) -> dict[tuple[str, str], tuple[float, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = module.compute(roi, settings or Settings.from_dict({}))
    return {(v.ibsi_code, v.aggregation): (v.value, v.reason) for v in values}


# ---- naive references: matrices ---------------------------------------------------------------------------------

def voxels(shape):
    return itertools.product(*(range(n) for n in shape))


def neighbourhood(centre, distance: int, planar: bool, shape):
    """Coordinates within Chebyshev ``distance`` of ``centre`` inside the array, the centre excluded."""
    z, y, x = centre
    dzs = [0] if planar else range(-distance, distance + 1)
    for dz, dy, dx in itertools.product(dzs, range(-distance, distance + 1), range(-distance, distance + 1)):
        here = (z + dz, y + dy, x + dx)
        if (dz, dy, dx) != (0, 0, 0) and all(0 <= h < n for h, n in zip(here, shape)):
            yield here


def naive_distance(mask: np.ndarray, planar: bool) -> dict:
    """Brute force: taxicab distance of each mask voxel to the nearest voxel outside the mask (beyond the array
    counts as outside), within the slice when ``planar``."""
    padded = np.pad(mask, 1)
    outside = [v for v in voxels(padded.shape) if not padded[v]]
    out = {}
    for v in voxels(mask.shape):
        if mask[v]:
            p = (v[0] + 1, v[1] + 1, v[2] + 1)
            out[v] = min(abs(p[0] - o[0]) + abs(p[1] - o[1]) + abs(p[2] - o[2])
                         for o in outside if not planar or o[0] == p[0])
    return out


def naive_zones(levels: np.ndarray, mask: np.ndarray, linkage: int, planar: bool, distance: dict | None = None):
    """Sorted (seed slice, level, size, min distance) of every zone, by breadth-first search from raster-order seeds."""
    seen, out = set(), []
    for seed in voxels(levels.shape):
        if not mask[seed] or seed in seen:
            continue
        level = levels[seed]
        seen.add(seed)
        queue, members = [seed], []
        while queue:
            v = queue.pop()
            members.append(v)
            for w in neighbourhood(v, linkage, planar, levels.shape):
                if mask[w] and levels[w] == level and w not in seen:
                    seen.add(w)
                    queue.append(w)
        out.append((seed[0], int(level), len(members), min(distance[m] for m in members) if distance else 0))
    return sorted(out)


def naive_ngtdm(levels, mask, distance: int, planar: bool):
    """{(slice or 0, level): [s_i, n_i]} by per-voxel neighbourhood means."""
    out = {}
    for v in voxels(levels.shape):
        if not mask[v]:
            continue
        neighbours = [levels[w] for w in neighbourhood(v, distance, planar, levels.shape) if mask[w]]
        if neighbours:
            entry = out.setdefault((v[0] if planar else 0, int(levels[v])), [0.0, 0])
            entry[0] += abs(levels[v] - sum(neighbours) / len(neighbours))
            entry[1] += 1
    return out


def naive_ngldm(levels, mask, distance: int, alpha: float, planar: bool):
    """{(slice or 0, level, dependence count j): count}, j = 1 + dependent neighbours in the mask."""
    out = {}
    for v in voxels(levels.shape):
        if mask[v]:
            j = 1 + sum(1 for w in neighbourhood(v, distance, planar, levels.shape)
                        if mask[w] and abs(int(levels[w]) - int(levels[v])) <= alpha)
            key = (v[0] if planar else 0, int(levels[v]), j)
            out[key] = out.get(key, 0) + 1
    return out


# ---- naive references: features ---------------------------------------------------------------------------------

def naive_count_features(matrix: dict, n_voxels: int) -> dict[str, float]:
    """IBSI formulas with explicit loops over the non-zero cells {(i, j): m_ij} of a grey level x count matrix."""
    n_s = sum(matrix.values())
    row, col = {}, {}
    for (i, j), m in matrix.items():
        row[i] = row.get(i, 0) + m
        col[j] = col.get(j, 0) + m
    mu_i = sum(i * m for (i, _), m in matrix.items()) / n_s
    mu_j = sum(j * m for (_, j), m in matrix.items()) / n_s
    cells = matrix.items()
    return {
        "small": sum(m / j**2 for (i, j), m in cells) / n_s,
        "large": sum(m * j**2 for (i, j), m in cells) / n_s,
        "low": sum(m / i**2 for (i, j), m in cells) / n_s,
        "high": sum(m * i**2 for (i, j), m in cells) / n_s,
        "small_low": sum(m / (i**2 * j**2) for (i, j), m in cells) / n_s,
        "small_high": sum(m * i**2 / j**2 for (i, j), m in cells) / n_s,
        "large_low": sum(m * j**2 / i**2 for (i, j), m in cells) / n_s,
        "large_high": sum(m * i**2 * j**2 for (i, j), m in cells) / n_s,
        "glnu": sum(r**2 for r in row.values()) / n_s,
        "glnu_norm": sum(r**2 for r in row.values()) / n_s**2,
        "cnu": sum(c**2 for c in col.values()) / n_s,
        "cnu_norm": sum(c**2 for c in col.values()) / n_s**2,
        "percentage": n_s / n_voxels,
        "gl_variance": sum((i - mu_i) ** 2 * m for (i, j), m in cells) / n_s,
        "c_variance": sum((j - mu_j) ** 2 * m for (i, j), m in cells) / n_s,
        "entropy": -sum(m / n_s * math.log2(m / n_s) for m in matrix.values()),
        "energy": sum((m / n_s) ** 2 for m in matrix.values()),
    }


def naive_ngtdm_features(columns: dict) -> dict[str, float]:
    """{level: (s_i, n_i)} -> the five NGTDM features by explicit double loops (NaN where undefined)."""
    n_vc = sum(n for _, n in columns.values())
    p = {i: n / n_vc for i, (_, n) in columns.items() if n > 0}
    s = {i: columns[i][0] for i in p}
    pairs = list(itertools.product(p, p))
    n_gp = len(p)
    sum_ps = sum(p[i] * s[i] for i in p)
    sum_s = sum(s.values())
    busy = sum(abs(i * p[i] - j * p[j]) for i, j in pairs)
    return {
        "QCDE": 1 / sum_ps if sum_ps > 0 else math.nan,
        "65HE": (sum(p[i] * p[j] * (i - j) ** 2 for i, j in pairs) / (n_gp * (n_gp - 1)) * sum_s / n_vc
                 if n_gp > 1 else math.nan),
        "NQ30": sum_ps / busy if busy > 0 else math.nan,
        "HDEZ": sum(abs(i - j) * (p[i] * s[i] + p[j] * s[j]) / (p[i] + p[j]) for i, j in pairs) / n_vc,
        "1X9X": sum((p[i] + p[j]) * (i - j) ** 2 for i, j in pairs) / sum_s if sum_s > 0 else math.nan,
    }


def naive_family(name: str, roi: RoiData, aggregation: str, linkage=1, distance=1, alpha=0.0) -> dict[str, float]:
    """Features of one family and aggregation from the naive matrices and formulas."""
    levels, mask = roi.levels, roi.int_mask
    planar = aggregation != "3D"
    slices = sorted({v[0] for v in voxels(levels.shape) if mask[v]})
    groups = [[z] for z in slices] if aggregation == "2D" else [slices]

    def voxel_count(group):
        return int(mask[group].sum())

    per_group = []
    if name in ("glszm", "gldzm"):
        dist = naive_distance(roi.morph_mask, planar) if name == "gldzm" else None
        found = naive_zones(levels, mask, linkage, planar, dist)
        for group in groups:
            matrix = {}
            for z, level, size, d in found:
                if z in group:
                    key = (level, size if name == "glszm" else d)
                    matrix[key] = matrix.get(key, 0) + 1
            generic = naive_count_features(matrix, voxel_count(group))
            per_group.append({code: generic[g] for g, code in FAMILIES[name].CODE_OF.items()})
    elif name == "ngldm":
        counts = naive_ngldm(levels, mask, distance, alpha, planar)
        for group in groups:
            matrix = {}
            for (z, level, j), c in counts.items():
                if z in group or not planar:
                    matrix[(level, j)] = matrix.get((level, j), 0) + c
            generic = naive_count_features(matrix, voxel_count(group))
            per_group.append({code: generic[g] for g, code in ngldm.CODE_OF.items()})
    else:
        sums = naive_ngtdm(levels, mask, distance, planar)
        for group in groups:
            columns = {}
            for (z, level), (s, n) in sums.items():
                if z in group or not planar:
                    entry = columns.setdefault(level, [0.0, 0])
                    entry[0] += s
                    entry[1] += n
            per_group.append(naive_ngtdm_features(columns) if columns else dict.fromkeys(ngtdm.CODES, math.nan))
    codes = per_group[0].keys()
    out = {}
    for code in codes:
        defined = [g[code] for g in per_group if math.isfinite(g[code])]
        out[code] = float(np.mean(defined)) if defined else math.nan
    return out


def assert_same(value: float, expected: float, what: str):
    if math.isnan(expected):
        assert math.isnan(value), f"{what}: got {value}, expected NaN"
    else:
        assert value == pytest.approx(expected, rel=1e-10, abs=1e-12), what


# ---- kernels against the naive matrices --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("planar", [True, False])
@pytest.mark.parametrize("linkage", [1, 2])
def test_zone_labelling_matches_breadth_first_search(seed, planar, linkage):
    roi = random_roi(seed)
    distance_map = zones.edge_distance_map(roi.morph_mask, planar)
    found = zones.label_zones(roi.levels, roi.int_mask, linkage, planar, distance_map=distance_map)
    got = sorted(zip(found.slice.tolist(), found.level.tolist(), found.size.tolist(), found.distance.tolist()))
    expected = naive_zones(roi.levels, roi.int_mask, linkage, planar, naive_distance(roi.morph_mask, planar))
    assert got == expected
    if planar:  # the 2D aggregation relies on planar zones arriving sorted by slice
        assert np.all(np.diff(found.slice) >= 0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("planar", [True, False])
def test_distance_map_matches_brute_force(seed, planar):
    mask = random_roi(seed, shape=(5, 7, 6), outside=0.15).morph_mask
    distance_map = zones.edge_distance_map(mask, planar)
    expected = naive_distance(mask, planar)
    assert {v: int(distance_map[v]) for v in expected} == expected
    assert not distance_map[~mask].any()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("planar", [True, False])
@pytest.mark.parametrize("distance", [1, 2])
def test_ngtdm_sums_match_per_voxel_loops(seed, planar, distance):
    roi = random_roi(seed)
    s, n = ngtdm.difference_sums(roi, distance, planar)
    expected = naive_ngtdm(roi.levels, roi.int_mask, distance, planar)
    got = {(z, g): [s[z, g], n[z, g]] for z, g in zip(*np.nonzero(n))}
    assert got.keys() == expected.keys()
    for key, (s_i, n_i) in expected.items():
        assert got[key][1] == n_i
        assert got[key][0] == pytest.approx(s_i, rel=1e-12)
    assert not s[n == 0].any()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("planar", [True, False])
@pytest.mark.parametrize("distance, alpha", [(1, 0), (1, 1), (2, 0), (1, 2.5)])
def test_ngldm_counts_match_per_voxel_loops(seed, planar, distance, alpha):
    roi = random_roi(seed)
    counts = ngldm.dependence_counts(roi, distance, alpha, planar)
    got = {(int(z), int(g), int(j)): int(counts[z, g, j]) for z, g, j in zip(*np.nonzero(counts))}
    assert got == naive_ngldm(roi.levels, roi.int_mask, distance, alpha, planar)


def test_count_matrices_stack_per_group():
    rng = np.random.default_rng(7)
    group, rows, values = rng.integers(0, 3, 200), rng.integers(1, 5, 200), rng.choice([1, 2, 5, 40], 200)
    matrices, columns = zones.count_matrices(group, rows, values, 3, 6)
    assert columns.tolist() == [1, 2, 5, 40]
    for g, i, j in itertools.product(range(3), range(1, 7), range(4)):
        expected = np.sum((group == g) & (rows == i) & (values == columns[j]))
        assert matrices[g, i - 1, j] == expected


# ---- whole families against the naive composition ---------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("name", FAMILIES)
def test_family_matches_naive_reference(name, seed):
    roi = random_roi(seed)
    values = computed(FAMILIES[name], roi)
    for aggregation in ZONE_AGGREGATIONS:
        for code, expected in naive_family(name, roi, aggregation).items():
            value, reason = values[(code, aggregation)]
            assert_same(value, expected, f"{name} {code} {aggregation}")
            assert math.isfinite(value) or reason


@pytest.mark.parametrize("name", FAMILIES)
def test_family_settings_reach_the_kernels(name):
    roi = random_roi(11)
    settings = Settings.from_dict({"texture": {"zone_linkage": 2, "ngtdm_distance": 2, "ngldm_distance": 2,
                                               "ngldm_coarseness": 1}})
    values = computed(FAMILIES[name], roi, settings)
    for aggregation in ZONE_AGGREGATIONS:
        expected = naive_family(name, roi, aggregation, linkage=2, distance=2, alpha=1)
        for code, value in expected.items():
            assert_same(values[(code, aggregation)][0], value, f"{name} {code} {aggregation}")


def test_aggregation_list_is_honoured():
    roi = random_roi(3)
    settings = Settings.from_dict({"texture": {"zone_aggregations": ["3D"]}})
    for module in FAMILIES.values():
        values = computed(module, roi, settings)
        assert {agg for _, agg in values} == {"3D"}
        assert {code for code, _ in values} == set(module.CODES)


# ---- invariances -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_translation_and_empty_margin_do_not_change_features(name):
    roi = random_roi(5)
    moved_levels = np.zeros((9, 11, 13), dtype=np.int32)
    moved_morph = np.zeros(moved_levels.shape, dtype=bool)
    window = (slice(3, 7), slice(2, 8), slice(5, 12))
    moved_levels[window] = roi.levels
    moved_morph[window] = roi.morph_mask
    moved = roi_of(moved_levels, moved_morph, n_levels=roi.n_levels)
    original, shifted = computed(FAMILIES[name], roi), computed(FAMILIES[name], moved)
    assert original.keys() == shifted.keys()
    for key, (value, _) in original.items():
        assert_same(shifted[key][0], value, f"{name} {key}")


# ---- degenerate ROIs ---------------------------------------------------------------------------------------------

def test_single_voxel():
    levels = np.zeros((3, 3, 3), dtype=np.int32)
    levels[1, 1, 1] = 2
    roi = roi_of(levels, n_levels=3)
    for module in (glszm, gldzm, ngldm):
        for (code, aggregation), (value, reason) in computed(module, roi).items():
            assert math.isfinite(value) and not reason, (code, aggregation)
    # one zone of size 1 / distance 1 / dependence count 1 and grey level 2
    for module, small, percentage in ((glszm, "5QRC", "P30P"), (gldzm, "0GBI", "VIWW"), (ngldm, "SODN", "6XV8")):
        values = computed(module, roi)
        for aggregation in ZONE_AGGREGATIONS:
            assert values[(small, aggregation)][0] == 1.0
            assert values[(percentage, aggregation)][0] == 1.0
    assert computed(glszm, roi)[("XMSY", "3D")][0] == 0.25
    assert computed(ngldm, roi)[("CAS9", "3D")][0] == 1.0
    assert computed(ngldm, roi)[("FCBV", "3D")][0] == 0.0
    for (code, aggregation), (value, reason) in computed(ngtdm, roi).items():
        assert math.isnan(value) and "no voxel has a neighbour" in reason, (code, aggregation)


def test_constant_intensity_block():
    roi = roi_of(np.full((3, 4, 5), 4, dtype=np.int32), n_levels=6)
    szm = computed(glszm, roi)
    assert szm[("48P8", "3D")][0] == 60.0**2  # one zone of all 60 voxels
    assert szm[("48P8", "2.5D")][0] == 20.0**2  # one zone of 20 voxels per slice
    assert szm[("P30P", "2D")][0] == pytest.approx(1 / 20)
    assert szm[("BYLV", "3D")][0] == 0.0 and szm[("GU8N", "3D")][0] == 0.0
    dzm = computed(gldzm, roi)
    assert dzm[("0GBI", "3D")][0] == 1.0  # the zone touches the edge: distance 1
    dm = computed(ngldm, roi)
    # 3D dependence counts: 1 + number of in-ROI neighbours (all the same level); averaged 1/j^2 by hand
    neighbours = [len(list(neighbourhood(v, 1, False, (3, 4, 5)))) for v in voxels((3, 4, 5))]
    assert dm[("SODN", "3D")][0] == pytest.approx(np.mean([1 / (1 + k) ** 2 for k in neighbours]), rel=1e-12)
    tdm = computed(ngtdm, roi)
    for aggregation in ZONE_AGGREGATIONS:
        assert tdm[("HDEZ", aggregation)][0] == 0.0
        for code in ("QCDE", "65HE", "NQ30", "1X9X"):
            value, reason = tdm[(code, aggregation)]
            assert math.isnan(value) and reason, (code, aggregation)


def test_line_along_z():
    levels = np.zeros((5, 3, 3), dtype=np.int32)
    levels[:, 1, 1] = [1, 1, 2, 3, 3]
    roi = roi_of(levels, n_levels=3)
    szm = computed(glszm, roi)
    assert szm[("P30P", "3D")][0] == pytest.approx(3 / 5)  # zones {1,1}, {2}, {3,3}
    assert szm[("48P8", "3D")][0] == pytest.approx((4 + 1 + 4) / 3)
    assert szm[("5QRC", "2D")][0] == 1.0 and szm[("P30P", "2D")][0] == 1.0  # one voxel per slice
    tdm = computed(ngtdm, roi)
    # in-plane: no voxel has a neighbour, so 2D and 2.5D are undefined; 3D neighbours along the line
    assert math.isnan(tdm[("QCDE", "2D")][0]) and math.isnan(tdm[("QCDE", "2.5D")][0])
    # s_1 = |1-1| + |1-1.5| = 0.5, s_2 = |2-2| = 0, s_3 = |3-2.5| + |3-3| = 0.5; n = (2, 1, 2)
    assert tdm[("QCDE", "3D")][0] == pytest.approx(1 / (0.4 * 0.5 + 0.4 * 0.5))
    dm = computed(ngldm, roi)
    assert dm[("SODN", "2D")][0] == 1.0
    # dependence counts j: 2, 2, 1, 2, 2
    assert dm[("IMOQ", "3D")][0] == pytest.approx((4 * 4 + 1) / 5)
    dzm = computed(gldzm, roi)
    assert dzm[("MB4I", "3D")][0] == 1.0


def test_one_grey_level_with_holes():
    """One grey level in two separate blobs: NGTDM s_i all 0, zones count both blobs."""
    levels = np.zeros((1, 5, 7), dtype=np.int32)
    levels[0, 1:4, 1:3] = 1
    levels[0, 1:4, 4:6] = 1
    roi = roi_of(levels, n_levels=1)
    szm = computed(glszm, roi)
    assert szm[("P30P", "2D")][0] == pytest.approx(2 / 12) and szm[("4JP3", "3D")][0] == 2.0
    tdm = computed(ngtdm, roi)
    assert math.isnan(tdm[("QCDE", "2D")][0]) and tdm[("QCDE", "2D")][1]
    assert tdm[("HDEZ", "3D")][0] == 0.0


def test_empty_intensity_mask_gives_reasons():
    levels = np.zeros((2, 3, 3), dtype=np.int32)
    mask = np.zeros(levels.shape, dtype=bool)
    roi = RoiData(levels.astype(float), mask, mask, (1.0, 1.0, 1.0), levels, 4)
    for module in FAMILIES.values():
        for (code, aggregation), (value, reason) in computed(module, roi).items():
            assert math.isnan(value) and reason, (module.__name__, code, aggregation)


def test_gldzm_measures_distance_to_the_morphological_edge():
    """A voxel re-segmented away inside the ROI does not create an edge for the distance map (IBSI config A)."""
    levels = np.full((1, 5, 5), 2, dtype=np.int32)
    morph = np.ones(levels.shape, dtype=bool)
    levels[0, 2, 2] = 0  # out of the intensity mask only
    roi = roi_of(levels, morph, n_levels=2)
    distance_map = zones.edge_distance_map(roi.morph_mask, planar=True)
    assert distance_map[0, 2, 2] == 3 and distance_map[0, 2, 1] == 2
    found = zones.label_zones(roi.levels, roi.int_mask, 1, True, distance_map=distance_map)
    assert found.size.tolist() == [24] and found.distance.tolist() == [1]
