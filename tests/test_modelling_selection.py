"""Redundancy reduction and feature selection: Spearman against scipy, the clustering guarantee and the
representative rule by brute force, relevance scores against scikit-learn and a naive Cox score test, mRMR on a
constructed case, LASSO selection."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score

from radflow.modelling import redundancy, selection
from radflow.modelling.targets import survival_target


def _correlated(seed: int, n: int = 50):
    """Three groups of near-copies plus independent noise columns."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 3))
    columns = [base[:, g] + rng.normal(0, s, n) for g in range(3) for s in (0.05, 0.1, 0.2)]
    columns += [rng.normal(size=n) for _ in range(4)]
    x = np.column_stack(columns)
    x[:, 1] = np.round(x[:, 1], 1)  # ties
    return x


def test_abs_spearman_matches_scipy():
    x = _correlated(0)
    np.testing.assert_allclose(redundancy.abs_spearman(x), np.abs(spearmanr(x).statistic), atol=1e-12)


def test_constant_column_has_zero_correlation():
    x = _correlated(1)
    x[:, 0] = 3.0
    corr = redundancy.abs_spearman(x)
    assert corr[0, 0] == 1.0 and np.all(corr[0, 1:] == 0.0)


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.9, 0.95])
def test_clusters_hold_only_pairs_above_threshold_and_representatives_are_most_central(threshold):
    x = _correlated(2)
    corr = redundancy.abs_spearman(x)
    labels = redundancy.correlation_clusters(corr, threshold)
    chosen = redundancy.cluster_representatives(corr, labels)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        assert corr[np.ix_(members, members)].min() >= threshold - 1e-12
        centrality = [np.mean([corr[i, j] for j in members if j != i]) if members.size > 1 else 0 for i in members]
        expected = members[int(np.argmax(centrality))]
        assert expected in chosen
    assert len(chosen) == len(np.unique(labels))


def test_reducer_keeps_one_feature_per_group_of_copies():
    x = _correlated(3)
    reducer = redundancy.CorrelationReducer(0.9).fit(x)
    kept = reducer.get_feature_names_out([f"c{i}" for i in range(x.shape[1])])
    assert len(kept) == 3 + 4  # one per group of near-copies, every noise column
    assert reducer.transform(x).shape == (x.shape[0], 7)


def test_auc_relevance_matches_sklearn():
    x = _correlated(4)
    y = (x[:, 0] + np.random.default_rng(4).normal(0, 1, x.shape[0]) > 0).astype(int)
    expected = [abs(roc_auc_score(y, x[:, j]) - 0.5) for j in range(x.shape[1])]
    np.testing.assert_allclose(selection.auc_relevance(x, y), expected, atol=1e-12)


def _naive_cox_score_z(x, time, event):
    """Univariate Cox score test at beta = 0 (Breslow), on standardised ranks, one feature at a time."""
    r = rankdata(x)
    r = (r - r.mean()) / r.std()
    u = info = 0.0
    for i in np.flatnonzero(event):
        at_risk = time >= time[i]
        mean = r[at_risk].mean()
        u += r[i] - mean
        info += ((r[at_risk] - mean) ** 2).mean()
    return abs(u) / np.sqrt(info)


def test_cox_score_relevance_matches_naive_score_test():
    rng = np.random.default_rng(5)
    x = _correlated(5)
    time = np.round(rng.exponential(10 * np.exp(-0.8 * x[:, 0])))  # ties in time
    event = rng.uniform(size=x.shape[0]) < 0.7
    got = selection.relevance(x, survival_target(time, event))
    expected = [_naive_cox_score_z(x[:, j], time, event) for j in range(x.shape[1])]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert np.argmax(got) in (0, 1, 2)  # the prognostic group


def test_mrmr_prefers_a_new_signal_over_a_copy_of_the_first():
    rng = np.random.default_rng(6)
    n = 200
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (a + 0.8 * b + rng.normal(0, 0.5, n) > 0).astype(int)
    x = np.column_stack([a, a + rng.normal(0, 0.01, n), b, rng.normal(size=n)])
    assert list(selection.mrmr_order(x, y, 2)) == [0, 2] or list(selection.mrmr_order(x, y, 2)) == [1, 2]
    univariate = selection.UnivariateFilter(2).fit(x, y)
    assert set(univariate.support_) == {0, 1}  # the filter alone takes both copies


def test_lasso_selector_keeps_the_nonzero_coefficients():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(120, 8))
    y = (2 * x[:, 3] - 2 * x[:, 5] + rng.normal(0, 0.5, 120) > 0).astype(int)
    step = selection.LassoSelector(k=10, c=0.1).fit(x, y)
    assert set(step.support_) == set(np.flatnonzero(step.coef_))
    assert {3, 5} <= set(step.support_)
    names = step.get_feature_names_out([f"f{i}" for i in range(8)])
    assert "f3" in names and "f5" in names


def test_selectors_keep_k_and_name_their_columns():
    x = _correlated(8)
    y = (x[:, 3] > 0).astype(int)
    names = [f"f{i}" for i in range(x.shape[1])]
    for step in (selection.UnivariateFilter(4), selection.MRMRSelector(4)):
        step.fit(x, y)
        assert step.transform(x).shape == (x.shape[0], 4)
        assert list(step.get_feature_names_out(names)) == [names[i] for i in step.support_]


def test_column_ranks_match_scipy_with_and_without_ties():
    x = _correlated(9)
    x[:, 4] = np.round(x[:, 4])  # heavy ties
    np.testing.assert_array_equal(redundancy.column_ranks(x), rankdata(x, axis=0))
