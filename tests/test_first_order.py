"""First-order families: intensity statistics (UHIW), intensity histogram (ZVCW), intensity-volume histogram (P88C).

Checked against independent computations (numpy/scipy, naive pure-Python loops over voxels and grid intensities),
hand-computed tiny cases and the IBSI digital-phantom IVH table; the IBSI reference rows themselves are in
tests/test_ibsi_features.py.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from radflow.features import intensity_histogram as ih
from radflow.features import ivh, registry
from radflow.features import statistics as st
from radflow.features.base import NO_AGGREGATION, RoiData
from radflow.imaging.discretisation import DiscretisationError
from radflow.settings import Settings


def roi_of(image: np.ndarray, levels: np.ndarray | None = None, n_levels: int | None = None) -> RoiData:
    image = np.asarray(image, dtype=np.float64).reshape(1, 1, -1)
    mask = np.ones(image.shape, dtype=bool)
    if levels is None:
        levels = np.ones(image.shape, dtype=np.int32)
    levels = np.asarray(levels, dtype=np.int32).reshape(image.shape)
    return RoiData(image, mask, mask, (1.0, 1.0, 1.0), levels, n_levels or int(levels.max()))


def by_code(values) -> dict[str, tuple[float, str]]:
    return {v.ibsi_code: (v.value, v.reason) for v in values}


def naive_statistics(x: np.ndarray) -> dict[str, float]:
    """The 18 IBSI statistics from numpy/scipy and plain formulas, feature by feature."""
    x = np.asarray(x, dtype=np.float64)
    p10, p25, p50, p75, p90 = np.percentile(x, [10, 25, 50, 75, 90])
    inner = x[(x >= p10) & (x <= p90)]
    constant = np.all(x == x[0])
    mean = x.mean()
    return {
        "Q4LE": mean,
        "ECT3": 0.0 if constant else np.var(x),
        "KE2A": 0.0 if constant else scipy.stats.skew(x, bias=True),
        "IPH6": 0.0 if constant else scipy.stats.kurtosis(x, fisher=True, bias=True),
        "Y12H": np.median(x),
        "1GSF": x.min(),
        "QG58": p10,
        "8DWT": p90,
        "84IY": x.max(),
        "SALO": scipy.stats.iqr(x),
        "2OJQ": np.ptp(x),
        "4FUA": 0.0 if constant else np.mean(np.abs(x - mean)),
        "1128": math.nan if inner.size == 0 else 0.0 if np.all(inner == inner[0]) else np.mean(np.abs(inner - inner.mean())),
        "N72L": np.mean(np.abs(x - np.median(x))),
        "7TET": (0.0 if constant else np.std(x)) / mean if mean != 0 else math.nan,
        "9S40": (p75 - p25) / (p75 + p25) if p75 + p25 != 0 else math.nan,
        "N8CA": np.sum(x**2),
        "5ZWQ": np.sqrt(np.mean(x**2)),
    }


SAMPLES = {
    "integer HU (bincount path)": lambda rng: np.round(rng.normal(20, 150, 2001)),
    "continuous (sort path)": lambda rng: rng.gamma(2.0, 3.0, 1500) - 2.0,
    "continuous with ties": lambda rng: np.round(rng.normal(0, 4, 999) * 2) / 2 + 0.25,
    "two values": lambda rng: np.array([3.0, 7.0]),
    "negative mean": lambda rng: np.round(rng.normal(-300, 100, 500)),
    "small odd": lambda rng: rng.integers(-5, 6, 7).astype(float),
}


@pytest.mark.parametrize("name", SAMPLES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_statistics_match_numpy_and_scipy(name, seed):
    x = SAMPLES[name](np.random.default_rng(seed))
    got = by_code(st.compute(roi_of(x), Settings.from_dict({})))
    expected = naive_statistics(x)
    assert list(got) == registry.codes_of("statistics")
    for code, want in expected.items():
        value, reason = got[code]
        if math.isnan(want):
            assert math.isnan(value) and reason, code
        else:
            assert value == pytest.approx(want, rel=1e-10, abs=1e-9), code


def test_distribution_paths_agree():
    rng = np.random.default_rng(5)
    x = np.round(rng.normal(0, 50, 3000))
    by_bincount = st.Distribution.from_samples(x)
    by_sort = st.Distribution.from_samples(x + 0.5)  # same ties, not integer: the sorting path
    np.testing.assert_array_equal(by_bincount.values + 0.5, by_sort.values)
    np.testing.assert_array_equal(by_bincount.counts, by_sort.counts)
    np.testing.assert_allclose(by_sort.quantiles([0, 0.1, 0.33, 0.5, 0.9, 1]), np.quantile(x + 0.5, [0, 0.1, 0.33, 0.5, 0.9, 1]))


def test_statistics_hand_computed():
    # X = 1, 2, 2, 3, 7: mu = 3, m2 = (4+1+1+0+16)/5 = 4.4, P10 = 1.4, P90 = 5.4, P25 = P50 = 2, P75 = 3
    got = by_code(st.compute(roi_of([2, 7, 1, 3, 2]), Settings.from_dict({})))
    assert got["Q4LE"][0] == 3.0
    assert got["ECT3"][0] == pytest.approx(4.4)
    assert got["QG58"][0] == pytest.approx(1.4) and got["8DWT"][0] == pytest.approx(5.4)
    assert got["SALO"][0] == 1.0 and got["9S40"][0] == pytest.approx(0.2)
    assert got["4FUA"][0] == pytest.approx(8 / 5)
    assert got["1128"][0] == pytest.approx(4 / 9)  # {2, 2, 3}: mean 7/3, |dev| 1/3 + 1/3 + 2/3
    assert got["N72L"][0] == pytest.approx(7 / 5)  # from the median 2: 1 + 0 + 0 + 1 + 5
    assert got["N8CA"][0] == 67.0 and got["5ZWQ"][0] == pytest.approx(math.sqrt(67 / 5))


@pytest.mark.parametrize("sample", [[0.1], [0.1, 0.1, 0.1], [-7.0] * 5, [1e6 + 0.3] * 4])
def test_statistics_degenerate_roi_without_warnings(sample):
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        got = by_code(st.compute(roi_of(sample), Settings.from_dict({})))
    value = sample[0]
    assert got["ECT3"] == (0.0, "")
    assert got["KE2A"] == (0.0, "") and got["IPH6"] == (0.0, "")  # IBSI: 0 when the variance is 0
    for code in ("Q4LE", "Y12H", "1GSF", "QG58", "8DWT", "84IY"):
        assert got[code][0] == pytest.approx(value, rel=1e-15)
    for code in ("SALO", "2OJQ", "4FUA", "1128", "N72L", "7TET", "9S40"):
        assert got[code] == (0.0, ""), code


def test_zero_mean_and_zero_quartile_sum_are_undefined():
    got = by_code(st.compute(roi_of([-2.0, 2.0, -1.0, 1.0]), Settings.from_dict({})))
    assert math.isnan(got["7TET"][0]) and "mean" in got["7TET"][1]
    assert math.isnan(got["9S40"][0]) and "P75 + P25" in got["9S40"][1]
    zero = by_code(st.compute(roi_of([0.0, 0.0]), Settings.from_dict({})))
    assert math.isnan(zero["7TET"][0]) and math.isnan(zero["9S40"][0])


# --- intensity histogram -----------------------------------------------------------------------------------------


def naive_histogram_features(levels: np.ndarray, n_levels: int) -> dict[str, float]:
    counts = [int(np.sum(levels == i)) for i in range(1, n_levels + 1)]
    n = len(levels)
    gradient = [
        counts[1] - counts[0] if i == 0 else counts[-1] - counts[-2] if i == n_levels - 1 else (counts[i + 1] - counts[i - 1]) / 2
        for i in range(n_levels)
    ]
    mean = np.mean(levels)
    best = max(counts)
    mode = min((abs(i + 1 - mean), i + 1) for i, c in enumerate(counts) if c == best)[1]
    p = [c / n for c in counts if c]
    return {
        "AMMC": mode,
        "TLU2": -sum(q * math.log2(q) for q in p),
        "BJ5W": sum(q * q for q in p),
        "12CE": max(gradient),
        "8E6O": gradient.index(max(gradient)) + 1,
        "VQB3": min(gradient),
        "RHQZ": gradient.index(min(gradient)) + 1,
    }


SHARED = dict(zip(
    ["X6K6", "CH89", "88K1", "C3I7", "WIFQ", "1PR8", "GPMT", "OZ0C", "3NCY", "WR0O", "5Z3W", "D2ZX", "WRZB", "4RNL", "CWYJ", "SLWD"],
    ["Q4LE", "ECT3", "KE2A", "IPH6", "Y12H", "1GSF", "QG58", "8DWT", "84IY", "SALO", "2OJQ", "4FUA", "1128", "N72L", "7TET", "9S40"],
))


@pytest.mark.parametrize("seed", range(6))
def test_intensity_histogram_matches_naive(seed):
    rng = np.random.default_rng(seed)
    n_levels = int(rng.integers(2, 12))
    levels = rng.choice(np.arange(1, n_levels + 1), size=int(rng.integers(5, 400)), p=rng.dirichlet(np.ones(n_levels)))
    got = by_code(ih.compute(roi_of(levels, levels, n_levels), Settings.from_dict({})))
    assert list(got) == registry.codes_of("intensity_histogram")
    for code, want in naive_histogram_features(levels, n_levels).items():
        assert got[code][0] == pytest.approx(want, rel=1e-12), code
    stats = naive_statistics(levels)
    for code, stat_code in SHARED.items():
        assert got[code][0] == pytest.approx(stats[stat_code], rel=1e-10, abs=1e-12), code


def test_histogram_mode_ties():
    # counts (2, 0, 2): mean 2, levels 1 and 3 equally close -> the lower one (IBSI)
    assert ih.mode(ih.GreyLevelHistogram(np.array([2, 0, 2]))) == 1.0
    # counts (3, 3, 0, 0, 1): mean 2, tied levels 1 and 2 -> 2 is closest to the mean
    assert ih.mode(ih.GreyLevelHistogram(np.array([3, 3, 0, 0, 1]))) == 2.0


def test_histogram_keeps_empty_bins_for_the_gradient():
    # grey levels 1 and 4 only, N_g = 5: H = (2, 0, 0, 1, 0), H' = (-2, -1, 0.5, 0, -1)
    levels = np.array([1, 1, 4])
    got = by_code(ih.compute(roi_of(levels, levels, n_levels=5), Settings.from_dict({})))
    assert got["12CE"][0] == 0.5 and got["8E6O"][0] == 3
    assert got["VQB3"][0] == -2 and got["RHQZ"][0] == 1


def test_histogram_single_bin_without_warnings():
    levels = np.ones(9, dtype=np.int32)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        got = by_code(ih.compute(roi_of(levels, levels, n_levels=1), Settings.from_dict({})))
    assert got["AMMC"] == (1.0, "") and got["TLU2"][0] == 0.0 and got["BJ5W"][0] == 1.0
    assert got["CH89"] == (0.0, "") and got["88K1"] == (0.0, "") and got["C3I7"] == (0.0, "")
    for code in ("12CE", "8E6O", "VQB3", "RHQZ"):
        assert math.isnan(got[code][0]) and "single" in got[code][1]


# --- intensity-volume histogram ----------------------------------------------------------------------------------


def naive_ivh(discretised: list[float], grid: list[float], g_min: float, g_max: float) -> dict[str, float]:
    """IBSI 4.5 literally: nu_i and gamma_i on every grid intensity, then V_x, I_x and the trapezoidal area."""
    n = len(discretised)
    nu = [1 - sum(1 for v in discretised if v < i) / n for i in grid]
    gamma = [(i - g_min) / (g_max - g_min) for i in grid]

    def volume_at(x):
        return max(v for v, g in zip(nu, gamma) if g >= x)

    def intensity_at(x):
        return min(i for i, v in zip(grid, nu) if v <= x)

    area = sum((gamma[k + 1] - gamma[k]) * (nu[k + 1] + nu[k]) / 2 for k in range(len(grid) - 1))
    return {
        "NK6P": volume_at(0.1), "4279": volume_at(0.9), "PWN1": intensity_at(0.1), "BOHI": intensity_at(0.9),
        "WITY": volume_at(0.1) - volume_at(0.9), "JXJA": intensity_at(0.1) - intensity_at(0.9), "9CMM": area,
    }


def ivh_values(x, ivh_settings, value_range=None) -> dict[str, float]:
    return {v.ibsi_code: v.value for v in ivh.features(ivh.build(np.asarray(x, dtype=float), ivh_settings, value_range))}


def assert_matches(got: dict[str, float], want: dict[str, float]):
    assert list(got) == registry.codes_of("ivh")
    for code in want:
        assert got[code] == pytest.approx(want[code], rel=1e-12, abs=1e-12), code


def test_ivh_digital_phantom_table(digital_phantom_roi):
    """IBSI 4.5 example IVH of the digital phantom (G = [1, 6], w = 1) and its area under the curve (0.32)."""
    roi, settings = digital_phantom_roi
    table = ivh.build(roi.image[roi.int_mask], settings["discretisation"]["ivh"], settings["resegmentation"]["range"])
    np.testing.assert_array_equal(table.intensities, [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(table.intensity_fraction, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(table.volume_fraction, [1.0, 0.324, 0.324, 0.311, 0.095, 0.095], atol=6e-4)
    assert round(ivh.area_under_curve(table), 2) == 0.32


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("value_range", [None, (-40, 60), (-40, None), (None, 60)])
def test_ivh_none_matches_naive(seed, value_range):
    rng = np.random.default_rng(seed)
    x = np.clip(np.round(rng.normal(10, 15, 300)), -40, 60)
    low = x.min() if value_range is None or value_range[0] is None else value_range[0]
    high = x.max() if value_range is None or value_range[1] is None else value_range[1]
    grid = list(np.arange(low, high + 1))
    assert_matches(ivh_values(x, {"method": "none"}, value_range), naive_ivh(list(x), grid, low, high))


@pytest.mark.parametrize("seed", range(4))
def test_ivh_fixed_bin_size_uses_bin_centres(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1000, 400, 400)
    x[:3] = (-1000, 400, 0)  # both range ends; 400 falls into the bin above G
    width = 2.5
    centres = [-1000 + (math.floor((v + 1000) / width) + 0.5) * width for v in x]
    grid = list(-1000 + (np.arange(561) + 0.5) * width)  # bins 1..560 cover [-1000, 400), bin 561 holds 400
    want = naive_ivh(centres, grid, -1000 + width / 2, 400 - width / 2)
    assert_matches(ivh_values(x, {"method": "fixed_bin_size", "bin_width": width}, (-1000, 400)), want)


def test_ivh_fixed_bin_size_without_range_starts_at_roi_minimum():
    x = np.array([0.3, 0.35, 0.4, 0.5, 0.9, 1.0, 1.2, 1.4, 1.7, 1.75, 2.05])
    width = 0.5  # bins from 0.3: [0.3, 0.8) [0.8, 1.3) [1.3, 1.8) [1.8, 2.3)
    centres = [0.55] * 4 + [1.05] * 3 + [1.55] * 3 + [2.05]
    want = naive_ivh(centres, [0.55, 1.05, 1.55, 2.05], 0.3 + width / 2, 2.05 - width / 2)
    assert_matches(ivh_values(x, {"method": "fixed_bin_size", "bin_width": width}), want)


@pytest.mark.parametrize("seed", range(4))
def test_ivh_fixed_bin_number_on_bin_numbers(seed):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(3, 1, 500)
    n_bins = 50
    bins = np.minimum(np.floor(n_bins * (x - x.min()) / (x.max() - x.min())) + 1, n_bins)
    want = naive_ivh(list(bins), list(range(1, n_bins + 1)), 1, n_bins)
    # the re-segmentation range is not used for arbitrary units (IBSI)
    assert_matches(ivh_values(x, {"method": "fixed_bin_number", "n_bins": n_bins}, (0, 1e6)), want)


def test_ivh_intensity_at_volume_beyond_the_grid():
    # 30 % of the voxels hold the top intensity: no grid intensity holds <= 10 % -> the next intensity (nu = 0)
    got = ivh_values([1, 2, 3, 4, 5, 6, 7, 10, 10, 10], {"method": "none"})
    assert got["PWN1"] == 11.0 and got["BOHI"] == 2.0


def test_ivh_constant_roi_without_warnings():
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        values = ivh.features(ivh.build(np.full(20, 7.0), {"method": "none"}))
        in_range = ivh_values(np.full(20, 7.0), {"method": "none"}, (0, 10))
    got = {v.ibsi_code: v for v in values}
    for code in ("NK6P", "4279", "WITY"):
        assert math.isnan(got[code].value) and "range" in got[code].reason
    assert got["PWN1"].value == 8.0 and got["BOHI"].value == 8.0 and got["JXJA"].value == 0.0
    assert got["9CMM"].value == 0.0  # IBSI: one discretised intensity -> area 0
    assert in_range["NK6P"] == 1.0 and in_range["4279"] == 0.0 and in_range["9CMM"] == 0.0


def test_ivh_none_rejects_non_integer_intensities():
    with pytest.raises(DiscretisationError, match="integer"):
        ivh.build(np.array([1.0, 2.5]), {"method": "none"})


def test_ivh_compute_reads_its_own_discretisation():
    x = np.array([-500.0, -100, -100, 0, 0, 0, 10, 50, 51, 60, 70, 400])
    settings = Settings.from_dict({
        "resegmentation": {"range": [-500, 400]},
        "discretisation": {"texture": {"method": "fixed_bin_size", "bin_width": 25}, "ivh": {"method": "none"}},
    })
    got = {v.ibsi_code: (v.aggregation, v.value) for v in ivh.compute(roi_of(x), settings)}
    want = naive_ivh(list(x), list(range(-500, 401)), -500, 400)
    assert all(agg == NO_AGGREGATION for agg, _ in got.values())
    for code, value in want.items():
        assert got[code][1] == pytest.approx(value, rel=1e-12), code
