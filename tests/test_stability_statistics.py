"""Stability statistics against a direct, one-feature-at-a-time implementation of the published formulas.

The references below are written independently of radflow.stability: sums of squares from raw totals
(SST - SSR - SSC), the ICC(2,1) interval in McGraw & Wong's F-ratio form (as in R psych / pingouin) rather than the
Satterthwaite mean-square form the module uses, and Lin's CCC interval in the DescTools form (standard error of
rho_c first, then divided by 1 - rho_c^2).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from radflow.stability.agreement import bland_altman, within_subject_cv
from radflow.stability.anova import mean_squares
from radflow.stability.ccc import ccc
from radflow.stability.icc import ICC_FORMS, icc
from radflow.stability.summary import stability_statistics

TOL = 1e-9


# ----------------------------------------------------------------------------------------------- references

def reference_icc(table: np.ndarray, form: str, alpha: float = 0.05) -> tuple[float, float, float]:
    """Shrout & Fleiss (1979) / McGraw & Wong (1996) for one (n, k) table, written out term by term."""
    n, k = table.shape
    grand = table.sum() / (n * k)
    sst = sum((v - grand) ** 2 for v in table.ravel())
    ssr = k * sum((row.mean() - grand) ** 2 for row in table)
    ssc = n * sum((col.mean() - grand) ** 2 for col in table.T)
    sse = sst - ssr - ssc
    msr, msc = ssr / (n - 1), ssc / (k - 1)
    mse, msw = sse / ((n - 1) * (k - 1)), (sst - ssr) / (n * (k - 1))
    q = 1 - alpha / 2
    if form == "ICC(1,1)":
        value = (msr - msw) / (msr + (k - 1) * msw)
        f0, df1, df2 = msr / msw, n - 1, n * (k - 1)
    elif form == "ICC(3,1)":
        value = (msr - mse) / (msr + (k - 1) * mse)
        f0, df1, df2 = msr / mse, n - 1, (n - 1) * (k - 1)
    else:
        value = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
        fj = msc / mse
        vn = (k - 1) * (n - 1) * (k * value * fj + n * (1 + (k - 1) * value) - k * value) ** 2
        vd = (n - 1) * k**2 * value**2 * fj**2 + (n * (1 + (k - 1) * value) - k * value) ** 2
        v = vn / vd
        f_upper, f_lower = stats.f.ppf(q, n - 1, v), stats.f.ppf(q, v, n - 1)
        low = n * (msr - f_upper * mse) / (f_upper * (k * msc + (k * n - k - n) * mse) + n * msr)
        high = n * (f_lower * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_lower * msr)
        return value, low, high
    fl = f0 / stats.f.ppf(q, df1, df2)
    fu = f0 * stats.f.ppf(q, df2, df1)
    return value, (fl - 1) / (fl + k - 1), (fu - 1) / (fu + k - 1)


def reference_ccc(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Lin (1989, 2000) as DescTools::CCC computes it, for one pair of measurement vectors."""
    n = len(x)
    sx2, sy2 = np.var(x), np.var(y)
    r = np.corrcoef(x, y)[0, 1]
    sxy = r * math.sqrt(sx2 * sy2)
    p = 2 * sxy / (sx2 + sy2 + (y.mean() - x.mean()) ** 2)
    u = (y.mean() - x.mean()) / (sx2 * sy2) ** 0.25
    sep = math.sqrt(((1 - r**2) * p**2 * (1 - p**2) / r**2 + 2 * p**3 * (1 - p) * u**2 / r
                     - 0.5 * p**4 * u**4 / r**2) / (n - 2))
    t = math.log((1 + p) / (1 - p)) / 2
    set_ = sep / (1 - p**2)
    z = stats.norm.ppf(1 - alpha / 2)
    return p, math.tanh(t - z * set_), math.tanh(t + z * set_)


def reference_overall_ccc(table: np.ndarray) -> float:
    """Overall CCC of k measurements by its pairwise definition (Barnhart et al. 2002)."""
    n, k = table.shape
    means = table.mean(axis=0)
    cov = np.cov(table.T, bias=True)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    num = 2 * sum(cov[i, j] for i, j in pairs)
    den = (k - 1) * sum(cov[j, j] for j in range(k)) + sum((means[i] - means[j]) ** 2 for i, j in pairs)
    return num / den


def simulated(rng, n_features: int, n: int, k: int, subject_sd, rater_sd, noise_sd, offset=0.0) -> np.ndarray:
    """y_fij = offset + s_fi + r_fj + e_fij with the given standard deviations (scalars or per feature)."""
    def sd(value):
        return np.broadcast_to(np.asarray(value, dtype=float), (n_features,))[:, None, None]

    return (offset + sd(subject_sd) * rng.standard_normal((n_features, n, 1))
            + sd(rater_sd) * rng.standard_normal((n_features, 1, k))
            + sd(noise_sd) * rng.standard_normal((n_features, n, k)))


@pytest.fixture(scope="module")
def structured():
    """Twelve features with ICC from ~0 to ~1, a rater (scan) effect in some, large offsets in others."""
    rng = np.random.default_rng(20190401)
    subject = np.array([1.0, 1, 1, 1, 2, 0.1, 5, 1, 1, 0.01, 3, 1])
    rater = np.array([0.0, 0.3, 1, 0, 0.5, 0, 0, 2, 0.1, 0, 0, 0])
    noise = np.array([0.1, 0.3, 1, 3, 0.5, 1, 1, 0.2, 0.05, 1, 0.3, 0])
    offsets = np.array([0.0, 1e4, -50, 3, 0, 1e6, 0, 0, 0, 0, 1.5, 0])[:, None, None]
    return offsets + simulated(rng, len(subject), 37, 2, subject, rater, noise)


# ----------------------------------------------------------------------------------------------- ICC

@pytest.mark.parametrize("form", ICC_FORMS)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_icc_matches_shrout_fleiss_reference(form, k):
    rng = np.random.default_rng(k)
    y = simulated(rng, 9, 23, k, np.linspace(0.1, 3, 9), np.linspace(0, 1, 9)[::-1], 1.0, offset=100.0)
    result = icc(y, form)
    for f in range(len(y)):
        value, low, high = reference_icc(y[f], form)
        assert result.icc[f] == pytest.approx(value, abs=TOL)
        assert result.ci_low[f] == pytest.approx(low, abs=TOL)
        assert result.ci_high[f] == pytest.approx(high, abs=TOL)
        assert result.n[f] == 23


@pytest.mark.parametrize("form", ICC_FORMS)
def test_icc_structured_features_match_reference(structured, form):
    result = icc(structured[:-1], form)  # the last feature has no noise: see test_identical_*
    for f in range(len(structured) - 1):
        expected = reference_icc(structured[f], form)
        assert (result.icc[f], result.ci_low[f], result.ci_high[f]) == pytest.approx(expected, abs=TOL)


def test_icc_90_percent_interval_matches_reference():
    rng = np.random.default_rng(3)
    y = simulated(rng, 4, 15, 2, 1.0, 0.2, 0.5)
    for form in ICC_FORMS:
        result = icc(y, form, confidence=0.90)
        for f in range(4):
            _, low, high = reference_icc(y[f], form, alpha=0.10)
            assert (result.ci_low[f], result.ci_high[f]) == pytest.approx((low, high), abs=TOL)


def test_icc_recovers_the_simulated_variance_ratio():
    # ICC(2,1) = s^2 / (s^2 + r^2 + e^2); with 4000 subjects the estimate is within a few hundredths.
    rng = np.random.default_rng(11)
    y = simulated(rng, 3, 4000, 2, [1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0])
    y[2] += np.array([0.0, 1.0])  # a pure retest offset: consistent but not in absolute agreement
    two = icc(y, "ICC(2,1)").icc
    three = icc(y, "ICC(3,1)").icc
    assert two[0] == pytest.approx(0.5, abs=0.03)
    assert two[1] == pytest.approx(0.8, abs=0.02)
    assert three[2] == pytest.approx(1.0, abs=1e-12)
    assert two[2] == pytest.approx(1.0 / (1.0 + 0.5), abs=0.03)  # s^2 / (s^2 + offset^2 / 2)


def test_identical_measurements_give_icc_one_with_a_degenerate_interval(structured):
    y = np.repeat(structured[:, :, :1], 2, axis=2)
    for form in ICC_FORMS:
        result = icc(y, form)
        assert np.array_equal(result.icc, np.ones(len(y)))
        assert np.array_equal(result.ci_low, np.ones(len(y)))
        assert np.array_equal(result.ci_high, np.ones(len(y)))
    c = ccc(y)
    assert np.array_equal(c.ccc, np.ones(len(y))) and np.array_equal(c.ci_low, np.ones(len(y)))
    assert np.array_equal(within_subject_cv(mean_squares(y))[np.abs(y.mean(axis=(1, 2))) > 0], np.zeros(len(y)))
    ba = bland_altman(y)
    assert np.array_equal(ba.bias, np.zeros(len(y))) and np.array_equal(ba.loa_high, np.zeros(len(y)))


def test_independent_noise_gives_icc_near_zero():
    rng = np.random.default_rng(5)
    y = rng.standard_normal((200, 100, 2))  # no subject effect at all
    for form in ICC_FORMS:
        result = icc(y, form)
        assert abs(result.icc.mean()) < 0.02
        assert np.all(np.abs(result.icc) < 0.45)
        covered = (result.ci_low <= 0) & (0 <= result.ci_high)
        assert covered.mean() > 0.9
    assert abs(ccc(y).ccc.mean()) < 0.02


@pytest.mark.parametrize("form", ICC_FORMS)
def test_icc_interval_covers_the_true_value_about_95_percent(form):
    # True ICC 0.8 (no rater effect, so all three forms estimate it); 2000 replicate features of 40 subjects.
    rng = np.random.default_rng(17)
    y = simulated(rng, 2000, 40, 2, 2.0, 0.0, 1.0)
    result = icc(y, form)
    coverage = np.mean((result.ci_low <= 0.8) & (0.8 <= result.ci_high))
    assert 0.93 < coverage < 0.97


def test_constant_feature_and_too_few_subjects_are_nan_without_warnings():
    y = np.ones((3, 10, 2))
    y[1] = np.arange(20.0).reshape(10, 2)
    y[1, 1:] = np.nan  # one complete subject
    y[2, :, 1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats_ = stability_statistics(y)
    for name in ("icc", "ci_low", "ci_high", "ccc", "ccc_ci_low"):
        assert np.all(np.isnan(stats_[name])), name
    # A constant feature agrees perfectly in its own units, it only has no between-subject variance for an ICC.
    assert (stats_["ba_bias"][0], stats_["ba_loa_low"][0], stats_["wcv"][0]) == (0.0, 0.0, 0.0)
    assert np.all(np.isnan(stats_["ba_loa_low"][1:]))
    assert list(stats_["n"]) == [10, 1, 0]


def test_subjects_with_missing_values_are_left_out_per_feature(structured):
    y = structured[:4].copy()
    y[1, 5, 0] = np.nan
    y[1, 9, 1] = np.inf
    full = stability_statistics(y)
    kept = np.delete(structured[1], [5, 9], axis=0)[None]
    alone = stability_statistics(kept)
    for name, values in full.items():
        assert values[1] == pytest.approx(alone[name][0], abs=TOL, nan_ok=True), name
    assert full["n"][1] == 35 and full["n"][0] == 37
    assert full["icc"][0] == pytest.approx(stability_statistics(structured[:1])["icc"][0], abs=TOL)


# ----------------------------------------------------------------------------------------------- CCC

def test_ccc_matches_lin_reference(structured):
    result = ccc(structured[:-1])
    for f in range(len(structured) - 1):
        expected = reference_ccc(structured[f, :, 0], structured[f, :, 1])
        assert (result.ccc[f], result.ci_low[f], result.ci_high[f]) == pytest.approx(expected, abs=TOL)


def test_ccc_of_more_than_two_measurements_is_the_overall_ccc_without_interval():
    rng = np.random.default_rng(8)
    y = simulated(rng, 5, 30, 4, 1.5, 0.4, 0.7, offset=10.0)
    result = ccc(y)
    for f in range(5):
        assert result.ccc[f] == pytest.approx(reference_overall_ccc(y[f]), abs=TOL)
    assert np.all(np.isnan(result.ci_low)) and np.all(np.isnan(result.ci_high))


def test_ccc_penalises_a_location_shift_and_a_scale_change():
    x = np.linspace(-1, 1, 50)
    y = np.stack([np.stack([x, x]), np.stack([x, x + 0.5]), np.stack([x, 2 * x])]).transpose(0, 2, 1)
    result = ccc(y).ccc
    var = np.var(x)
    assert result[0] == 1.0
    assert result[1] == pytest.approx(2 * var / (2 * var + 0.25), abs=1e-12)
    assert result[2] == pytest.approx(2 * 2 * var / (var + 4 * var), abs=1e-12)


# ----------------------------------------------------------------------------------------------- agreement

def test_bland_altman_and_wcv_match_direct_computation(structured):
    ms = mean_squares(structured)
    ba = bland_altman(structured)
    wcv = within_subject_cv(ms)
    z = stats.norm.ppf(0.975)
    for f in range(len(structured)):
        d = structured[f, :, 1] - structured[f, :, 0]
        assert ba.bias[f] == pytest.approx(d.mean(), abs=TOL)
        assert ba.loa_low[f] == pytest.approx(d.mean() - z * d.std(ddof=1), abs=TOL)
        assert ba.loa_high[f] == pytest.approx(d.mean() + z * d.std(ddof=1), abs=TOL)
        per_subject_var = structured[f].var(axis=1, ddof=1)
        expected = math.sqrt(per_subject_var.mean()) / abs(structured[f].mean())
        assert wcv[f] == pytest.approx(expected, rel=1e-9)


def test_bland_altman_pools_differences_to_the_first_measurement():
    rng = np.random.default_rng(2)
    y = simulated(rng, 2, 12, 3, 1.0, 0.5, 0.3)
    ba = bland_altman(y)
    for f in range(2):
        d = np.concatenate([y[f, :, 1] - y[f, :, 0], y[f, :, 2] - y[f, :, 0]])
        assert ba.bias[f] == pytest.approx(d.mean(), abs=TOL)
        assert ba.loa_high[f] - ba.bias[f] == pytest.approx(stats.norm.ppf(0.975) * d.std(ddof=1), abs=TOL)


def test_summary_uses_the_requested_form_and_confidence(structured):
    summary = stability_statistics(structured[:3], icc_form="ICC(1,1)", confidence=0.9)
    direct = icc(structured[:3], "ICC(1,1)", confidence=0.9)
    assert np.array_equal(summary["ci_low"], direct.ci_low)
    assert list(summary["k"]) == [2, 2, 2]
    with pytest.raises(ValueError, match="unknown ICC form"):
        stability_statistics(structured[:1], icc_form="ICC(2,k)")
