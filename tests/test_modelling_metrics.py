"""Metric functions against scikit-learn / scikit-survival on the same predictions, and calibration slope and
intercept against direct maximum-likelihood fits done differently (scikit-learn's lbfgs, scipy's minimiser)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score, roc_curve
from sksurv.metrics import concordance_index_censored

from radflow.modelling import metrics


def _binary_predictions(seed: int, n: int = 80, ties: bool = True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = expit(1.2 * (y - 0.5) + rng.normal(0, 1, n))
    if ties:
        p = np.round(p, 1)  # many ties, as from a coarse model
    return y, p


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed):
    y, p = _binary_predictions(seed)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_auc_undefined_for_one_class():
    assert np.isnan(metrics.auc(np.ones(5), np.arange(5.0)))


@pytest.mark.parametrize("seed", range(3))
def test_brier_matches_sklearn(seed):
    y, p = _binary_predictions(seed, ties=False)
    assert metrics.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_youden_threshold_maximises_j_like_roc_curve(seed):
    y, p = _binary_predictions(seed)
    fpr, tpr, thresholds = roc_curve(y, p)
    best = np.max(tpr - fpr)
    t = metrics.youden_threshold(y, p)
    sens, spec = metrics.sensitivity_specificity(y, p >= t)
    assert sens + spec - 1 == pytest.approx(best, abs=1e-12)
    assert t == thresholds[np.flatnonzero(np.isclose(tpr - fpr, best))[0]]  # the highest threshold reaching it


def test_sensitivity_specificity_match_confusion_matrix():
    y, p = _binary_predictions(7)
    hit = p >= 0.5
    tn, fp, fn, tp = confusion_matrix(y, hit).ravel()
    sens, spec = metrics.sensitivity_specificity(y, hit)
    assert (sens, spec) == (pytest.approx(tp / (tp + fn)), pytest.approx(tn / (tn + fp)))


def _miscalibrated(seed: int, n: int = 400, slope: float = 0.6, intercept: float = 0.4):
    """Predictions whose true calibration is logit P(y) = intercept + slope * logit(p)."""
    rng = np.random.default_rng(seed)
    lp = rng.normal(0, 1.5, n)
    y = (rng.uniform(size=n) < expit(intercept + slope * lp)).astype(int)
    return y, expit(lp), lp


@pytest.mark.parametrize("seed", range(4))
def test_calibration_slope_matches_unpenalised_logistic_fit(seed):
    y, p, lp = _miscalibrated(seed)
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(lp[:, None], y)
    assert metrics.calibration_slope(y, p) == pytest.approx(reference.coef_[0, 0], abs=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_calibration_intercept_matches_offset_likelihood_maximum(seed):
    y, p, lp = _miscalibrated(seed)

    def negative_loglik(a):
        eta = a + lp
        return -np.sum(y * eta - np.logaddexp(0, eta))

    reference = minimize_scalar(negative_loglik, bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}).x
    assert metrics.calibration_intercept(y, p) == pytest.approx(reference, abs=1e-6)


def test_calibration_of_calibrated_predictions_is_ideal():
    y, p, _ = _miscalibrated(11, n=20_000, slope=1.0, intercept=0.0)
    assert metrics.calibration_slope(y, p) == pytest.approx(1.0, abs=0.05)
    assert metrics.calibration_intercept(y, p) == pytest.approx(0.0, abs=0.05)


def test_calibration_undefined_under_separation():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert np.isnan(metrics.calibration_slope(y, p))
    assert np.isfinite(metrics.calibration_intercept(y, p))  # the offset model has a finite maximum here


@pytest.mark.parametrize("seed", range(5))
def test_harrell_c_matches_scikit_survival(seed):
    rng = np.random.default_rng(seed)
    n = 60
    risk = np.round(rng.normal(size=n), 1)  # tied risks
    time = np.round(rng.exponential(10 * np.exp(-0.7 * risk)))  # tied times
    event = rng.uniform(size=n) < 0.7
    reference = concordance_index_censored(event, time, risk)[0]
    assert metrics.harrell_c(time, event, risk) == pytest.approx(reference, abs=1e-12)


def test_bootstrap_ci_of_a_mean_matches_the_normal_interval():
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, 400)
    low, high = metrics.bootstrap_ci(lambda i: x[i].mean(), x.size, 2000, seed=5)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert low == pytest.approx(x.mean() - half, abs=0.04)
    assert high == pytest.approx(x.mean() + half, abs=0.04)


def test_permutation_p_value_counts_ties_and_adds_one():
    assert metrics.permutation_p_value(0.8, np.array([0.5, 0.8, 0.9, 0.4])) == pytest.approx(3 / 5)
    assert metrics.permutation_p_value(0.95, np.array([0.5, 0.8, 0.9, 0.4])) == pytest.approx(1 / 5)
