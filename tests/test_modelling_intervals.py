"""The interval machinery (radflow.modelling.intervals), the DeLong test and the within-fold C-index, each against an
independent derivation (explicit pair loops, hand formulas) or a property that fails when the code is wrong."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from scipy.stats import t as student_t

from radflow.modelling import intervals, metrics


def _pair_kernel(a: float, b: float) -> float:
    return 1.0 if a > b else 0.5 if a == b else 0.0


def _delong_by_loops(y, s1, s2):
    """DeLong's variance written from the paper's definitions with explicit loops over pairs."""
    pos = [i for i in range(len(y)) if y[i] == 1]
    neg = [j for j in range(len(y)) if y[j] == 0]
    comps10, comps01 = [], []
    for s in (s1, s2):
        comps10.append([np.mean([_pair_kernel(s[i], s[j]) for j in neg]) for i in pos])
        comps01.append([np.mean([_pair_kernel(s[i], s[j]) for i in pos]) for j in neg])
    aucs = [np.mean(c) for c in comps10]
    s10 = np.cov(np.array(comps10))
    s01 = np.cov(np.array(comps01))
    var = s10[0, 0] / len(pos) + s01[0, 0] / len(neg) + s10[1, 1] / len(pos) + s01[1, 1] / len(neg) \
        - 2 * (s10[0, 1] / len(pos) + s01[0, 1] / len(neg))
    z = (aucs[0] - aucs[1]) / np.sqrt(var)
    return aucs, 2 * norm.sf(abs(z))


@pytest.mark.parametrize("seed", range(3))
def test_delong_matches_pairwise_definition_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 50)
    s1 = np.round(y + rng.normal(0, 1, 50), 1)
    s2 = np.round(0.5 * y + rng.normal(0, 1, 50), 1)
    result = metrics.delong_test(y, s1, s2)
    aucs, p = _delong_by_loops(y, s1, s2)
    assert result["auc_a"] == pytest.approx(aucs[0], abs=1e-12)
    assert result["auc_b"] == pytest.approx(aucs[1], abs=1e-12)
    assert result["p_value"] == pytest.approx(p, rel=1e-9)


def test_delong_holds_its_size_under_the_null():
    rng = np.random.default_rng(1)
    p_values = []
    for _ in range(400):
        y = rng.integers(0, 2, 60)
        signal = y + rng.normal(0, 1.5, 60)
        p_values.append(metrics.delong_test(y, signal + rng.normal(0, 1, 60), signal + rng.normal(0, 1, 60))["p_value"])
    assert 0.02 <= np.mean(np.array(p_values) < 0.05) <= 0.09


def test_harrell_c_within_groups_counts_only_pairs_inside_a_group():
    rng = np.random.default_rng(4)
    time = rng.exponential(size=30)
    event = rng.integers(0, 2, 30).astype(bool)
    risk = rng.normal(size=30)
    groups = rng.integers(0, 3, 30)
    concordant = comparable = 0.0
    for i in range(30):
        for j in range(30):
            if groups[i] != groups[j] or not event[i]:
                continue
            if time[i] < time[j] or (time[i] == time[j] and not event[j]):
                comparable += 1
                concordant += _pair_kernel(risk[i], risk[j])
    assert metrics.harrell_c(time, event, risk, groups) == pytest.approx(concordant / comparable, abs=1e-12)


def test_stratified_resample_keeps_class_counts_and_grouped_folds_keep_copies_together():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 25 + [1] * 15)
    index = intervals.stratified_resample(labels, rng)
    assert np.bincount(labels[index]).tolist() == [25, 15]
    folds = intervals.grouped_folds(labels[index], index, 5, rng)
    for case in np.unique(index):
        assert len(set(folds[index == case])) == 1  # every copy of a case in one fold
    # each class's distinct cases are spread evenly over the folds
    for value in (0, 1):
        distinct = np.unique(index[labels[index] == value])
        per_fold = np.bincount([folds[index == c][0] for c in distinct], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1


def test_procedure_interval_without_repeats_is_the_documented_formula():
    # repeat-averaged replicates (or one repeat): V = V_test + w max(V_boot - V_test, 0), normal quantile
    rng = np.random.default_rng(2)
    fixed, procedure = rng.normal(0, 0.05, 400), rng.normal(0, 0.12, 400)
    v_test, v_boot = np.var(fixed, ddof=1), np.var(procedure, ddof=1)
    weight = (1 - np.exp(-1)) / np.sqrt(3)  # 0.632 / sqrt(3), written out independently of the module
    half = norm.ppf(0.975) * np.sqrt(v_test + weight * (v_boot - v_test))
    low, high = intervals.procedure_interval(0.7, fixed, procedure)
    assert (low, high) == pytest.approx((0.7 - half, 0.7 + half), abs=1e-12)
    # one repeat, per-repeat layout: the same
    assert intervals.procedure_interval(0.7, fixed, procedure[:, None], repeat_estimates=[0.7]) == \
        pytest.approx((low, high), abs=1e-12)
    assert intervals.procedure_interval(0.98, fixed, procedure, bounds=(0.0, 1.0))[1] == 1.0
    # a procedure spread below the test-case spread adds nothing
    assert intervals.procedure_interval(0.5, procedure, fixed)[1] == pytest.approx(
        0.5 + norm.ppf(0.975) * np.std(procedure, ddof=1), abs=1e-12)
    assert np.isnan(intervals.procedure_interval(np.nan, fixed, procedure)[0])


def test_split_interval_is_the_documented_formula_with_satterthwaite_degrees_of_freedom():
    rng = np.random.default_rng(8)
    n_boot, n_repeats = 300, 3
    fixed = rng.normal(0, 0.05, n_boot)
    cohort = rng.normal(0, 0.10, n_boot)[:, None]
    procedure = cohort + rng.normal(0, 0.06, (n_boot, n_repeats))  # replicate x repeat
    repeats = np.array([0.61, 0.66, 0.70])
    t = repeats.mean()
    v_test = np.var(fixed, ddof=1)
    v_boot = np.var(procedure.mean(axis=1), ddof=1)
    s_boot = np.mean([np.var(row, ddof=1) for row in procedure]) / n_repeats
    s_real = np.var(repeats, ddof=1) / n_repeats
    model = (1 - np.exp(-1)) / np.sqrt(3) * (v_boot - v_test - s_boot)
    assert model > 0
    v = v_test + s_real + model
    df = v ** 2 / (s_real ** 2 / (n_repeats - 1) + v_test ** 2 / (n_boot - 1) + model ** 2 / (n_boot - 1))
    half = student_t.ppf(0.975, df) * np.sqrt(v)
    low, high = intervals.procedure_interval(t, fixed, procedure, repeat_estimates=repeats)
    assert (low, high) == pytest.approx((t - half, t + half), abs=1e-12)
    assert intervals.procedure_variance(fixed, procedure, repeats) == pytest.approx((v, df), rel=1e-12)
    # identical repeats: no split noise in the data, only the test-case and model parts
    same = intervals.procedure_variance(fixed, procedure, np.full(n_repeats, t))
    assert same[0] == pytest.approx(v_test + model, rel=1e-12)
    # a replicate with an undefined repeat is left out of both the replicate and the split-noise variance
    holed = procedure.copy()
    holed[0, 1] = np.nan
    v_holed = intervals.procedure_variance(fixed, holed, repeats)[0]
    kept = procedure[1:]
    expected = v_test + s_real + (1 - np.exp(-1)) / np.sqrt(3) * (
        np.var(kept.mean(axis=1), ddof=1) - v_test - np.mean([np.var(r, ddof=1) for r in kept]) / n_repeats)
    assert v_holed == pytest.approx(expected, rel=1e-12)


def test_logit_scale_interval_is_the_delta_method_on_log_odds():
    rng = np.random.default_rng(5)
    fixed = rng.normal(0, 0.06, 400)
    procedure = rng.normal(0, 0.12, (400, 1)) + rng.normal(0, 0.04, (400, 2))
    repeats = np.array([0.78, 0.82])
    variance, df = intervals.procedure_variance(fixed, procedure, repeats)
    assert np.isfinite(df)
    t = repeats.mean()
    half = student_t.ppf(0.975, df) * np.sqrt(variance) / (t * (1 - t))
    log_odds = np.log(t / (1 - t))
    expected = (1 / (1 + np.exp(-(log_odds - half))), 1 / (1 + np.exp(-(log_odds + half))))
    low, high = intervals.procedure_interval(t, fixed, procedure, bounds=(0.0, 1.0), logit_scale=True,
                                             repeat_estimates=repeats)
    assert (low, high) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < low < t < high < 1.0 and (t - low) > (high - t)  # longer towards 0.5, never past 1
    # at 0.5 the logit interval is symmetric and no wider than the linear one (logit is steepest there)
    low, high = intervals.procedure_interval(0.5, fixed, procedure, logit_scale=True, repeat_estimates=[0.5, 0.5])
    linear = intervals.procedure_interval(0.5, fixed, procedure, repeat_estimates=[0.5, 0.5])
    assert low + high == pytest.approx(1.0, abs=1e-12) and high <= linear[1]
    # at a bound the logit is undefined: the linear interval, clipped
    linear = intervals.procedure_interval(1.0, fixed, procedure, repeat_estimates=[1.0, 1.0])
    assert intervals.procedure_interval(1.0, fixed, procedure, bounds=(0.0, 1.0), logit_scale=True,
                                        repeat_estimates=[1.0, 1.0]) == pytest.approx((linear[0], 1.0), abs=1e-12)


def test_replicates_depend_on_seed_and_replicate_only():
    labels = np.array([0] * 12 + [1] * 8)

    def evaluate(index, rng):
        return {"mean_index": float(index.mean()), "draw": float(rng.uniform())}

    serial = intervals.replicate_metrics(evaluate, labels, 6, [3, 1])
    parallel = intervals.replicate_metrics(evaluate, labels, 6, [3, 1], n_jobs=2)
    for name in serial:
        np.testing.assert_array_equal(serial[name], parallel[name])
    assert len(set(serial["mean_index"])) > 1
    assert not np.array_equal(serial["draw"], intervals.replicate_metrics(evaluate, labels, 6, [3, 2])["draw"])
