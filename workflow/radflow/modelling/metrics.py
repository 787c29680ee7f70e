"""Performance metrics of out-of-fold predictions, and percentile-bootstrap confidence intervals.

Every function takes plain arrays (labels 0/1, probabilities, or survival time/event and a risk score) and returns
NaN, never raises, when the metric is undefined (one class only, no comparable pair, a calibration fit that does not
converge because the predictions separate the classes perfectly).

* AUC: the Mann-Whitney statistic with mid-ranks for ties, (R1 - n1 (n1 + 1) / 2) / (n1 n0), R1 the rank sum of the
  positives; equals the area under the empirical ROC curve (``sklearn.metrics.roc_auc_score``).
* Brier score: mean (p - y)^2.
* Calibration slope: b in logit P(y = 1) = a + b * logit(p) (logistic regression of the outcome on the predicted
  log-odds); 1 is ideal, < 1 means predictions too extreme (overfitting).
* Calibration intercept (calibration-in-the-large): a in logit P(y = 1) = a + 1 * logit(p), i.e. the intercept with
  the predicted log-odds as offset; 0 is ideal, > 0 means predictions too low on average.
* Sensitivity / specificity of "p >= threshold", with the threshold chosen on training data (``youden_threshold``).
* Harrell's C-index: over comparable pairs (an event at t_i, and t_j > t_i, or t_j = t_i censored: a case censored
  at an event time is taken to have outlived it), the fraction where the earlier failure has the higher risk score,
  ties in risk counting one half; two events at the same time are not comparable (as in
  ``sksurv.metrics.concordance_index_censored``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit
from scipy.stats import rankdata

# Predicted probabilities are clipped away from 0 and 1 before taking log-odds: a model that says exactly 0 or 1
# would otherwise give an infinite offset.
_P_CLIP = 1e-8


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n1 n0)); NaN when only one class is present."""
    y = np.asarray(y).astype(bool)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Brier score: mean squared difference between predicted probability and outcome."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    return float(np.mean((p - y) ** 2)) if y.size else float("nan")


def youden_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The threshold t maximising Youden's J = sensitivity + specificity - 1 of "p >= t" (first maximum, i.e. the
    highest such t); 0.5 when only one class is present."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    if y.all() or not y.any():
        return 0.5
    candidates = np.unique(p)[::-1]  # descending: the first maximum is the most specific threshold
    positives = p[y][None, :] >= candidates[:, None]
    negatives = p[~y][None, :] >= candidates[:, None]
    j = positives.mean(axis=1) - negatives.mean(axis=1)
    return float(candidates[int(np.argmax(j))])


def sensitivity_specificity(y: np.ndarray, predicted_positive: np.ndarray) -> tuple[float, float]:
    """(sensitivity, specificity) of binary predictions; NaN for a class that is absent."""
    y = np.asarray(y).astype(bool)
    hit = np.asarray(predicted_positive).astype(bool)
    sensitivity = float(hit[y].mean()) if y.any() else float("nan")
    specificity = float((~hit[~y]).mean()) if (~y).any() else float("nan")
    return sensitivity, specificity


def _logistic_newton(design: np.ndarray, y: np.ndarray, offset: np.ndarray, max_iter: int = 100,
                     tol: float = 1e-10) -> np.ndarray:
    """Maximum-likelihood logistic regression coefficients by Newton-Raphson with step halving; NaNs when the
    likelihood has no finite maximum (separation) or the information matrix is singular."""
    beta = np.zeros(design.shape[1])

    def loglik(b: np.ndarray) -> float:
        eta = offset + design @ b
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    current = loglik(beta)
    for _ in range(max_iter):
        mu = expit(offset + design @ beta)
        gradient = design.T @ (y - mu)
        information = (design * (mu * (1 - mu))[:, None]).T @ design
        try:
            step = np.linalg.solve(information, gradient)
        except np.linalg.LinAlgError:
            return np.full(design.shape[1], np.nan)
        if not np.all(np.isfinite(step)):
            return np.full(design.shape[1], np.nan)
        scale = 1.0
        while scale > 1e-6:
            candidate = beta + scale * step
            value = loglik(candidate)
            if value >= current - 1e-12:
                break
            scale /= 2
        beta, current = candidate, value
        if np.max(np.abs(scale * step)) < tol:
            # Separation drives coefficients to infinity with ever smaller likelihood gains; a huge coefficient is
            # that, not an estimate.
            return beta if np.all(np.abs(beta) < 1e4) else np.full(design.shape[1], np.nan)
    return np.full(design.shape[1], np.nan)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _P_CLIP, 1 - _P_CLIP)
    return np.log(p) - np.log1p(-p)


def calibration_slope(y: np.ndarray, p: np.ndarray) -> float:
    """Calibration slope b of logit P(y=1) = a + b logit(p) (maximum likelihood); NaN if undefined."""
    y = np.asarray(y, dtype=float)
    if y.size < 3 or y.min() == y.max():
        return float("nan")
    lp = logit(p)
    if np.ptp(lp) == 0:
        return float("nan")
    design = np.column_stack([np.ones_like(lp), lp])
    return float(_logistic_newton(design, y, np.zeros_like(lp))[1])


def calibration_intercept(y: np.ndarray, p: np.ndarray) -> float:
    """Calibration-in-the-large a of logit P(y=1) = a + logit(p) (offset logistic regression); NaN if undefined."""
    y = np.asarray(y, dtype=float)
    if y.size < 2 or y.min() == y.max():
        return float("nan")
    lp = logit(p)
    return float(_logistic_newton(np.ones((lp.size, 1)), y, lp)[0])


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Harrell's concordance index of a risk score (higher risk = earlier event); NaN without comparable pairs.
    With ``groups`` (e.g. cross-validation test folds) only pairs within the same group count: risk scores of
    different fold models are not on one scale, and pooling them biases the index (below 0.5 under the null)."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event).astype(bool)
    risk = np.asarray(risk, dtype=float)
    later = (time[:, None] < time[None, :]) | ((time[:, None] == time[None, :]) & ~event[None, :])
    comparable = later & event[:, None]
    if groups is not None:
        groups = np.asarray(groups)
        comparable &= groups[:, None] == groups[None, :]
    n_pairs = int(comparable.sum())
    if n_pairs == 0:
        return float("nan")
    difference = risk[:, None] - risk[None, :]
    concordant = np.count_nonzero(comparable & (difference > 0))
    tied = np.count_nonzero(comparable & (difference == 0))
    return float((concordant + 0.5 * tied) / n_pairs)


def bootstrap_replicates(statistic: Callable[[np.ndarray], float], n: int, n_bootstrap: int, seed) -> np.ndarray:
    """``statistic(indices)`` on ``n_bootstrap`` resamples of ``range(n)`` with replacement (NaN where undefined)."""
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n, size=n)) for _ in range(n_bootstrap)], dtype=float)


def bootstrap_ci(statistic: Callable[[np.ndarray], float], n: int, n_bootstrap: int, seed,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n_bootstrap`` resamples of ``range(n)`` with
    replacement; replicates where the statistic is undefined (NaN) are left out. (NaN, NaN) if fewer than half are
    defined."""
    if n_bootstrap <= 0 or n == 0:
        return float("nan"), float("nan")
    values = bootstrap_replicates(statistic, n, n_bootstrap, seed)
    values = values[np.isfinite(values)]
    if values.size < n_bootstrap / 2:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """One-sided permutation p-value (1 + #{permuted >= observed}) / (1 + #permutations), undefined ones left out."""
    permuted = np.asarray(permuted, dtype=float)
    permuted = permuted[np.isfinite(permuted)]
    if not np.isfinite(observed) or permuted.size == 0:
        return float("nan")
    return float((1 + np.count_nonzero(permuted >= observed)) / (1 + permuted.size))


def _placements(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: for each positive the fraction of negatives it outranks (ties count one half),
    for each negative the fraction of positives that outrank it; their means are the AUC."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=float)
    n1, n0 = int(y.sum()), int((~y).sum())
    all_ranks = rankdata(score)
    v10 = (all_ranks[y] - rankdata(score[y])) / n0
    v01 = 1.0 - (all_ranks[~y] - rankdata(score[~y])) / n1
    return v10, v01


def delong_test(y: np.ndarray, score_a: np.ndarray, score_b: np.ndarray) -> dict[str, float]:
    """DeLong, DeLong & Clarke-Pearson (Biometrics 1988) test of two correlated AUCs on the same cases:
    z = (AUC_a - AUC_b) / sqrt(var), var from the covariance of the two scores' placement values
    (S10 / n1 + S01 / n0); two-sided p = 2 (1 - Phi(|z|)). NaNs when a class is absent or the variance is 0."""
    from scipy.stats import norm

    y = np.asarray(y).astype(bool)
    nan = {"auc_a": float("nan"), "auc_b": float("nan"), "difference": float("nan"), "se": float("nan"),
           "z": float("nan"), "p_value": float("nan")}
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 2 or n0 < 2:
        return nan
    a10, a01 = _placements(y, score_a)
    b10, b01 = _placements(y, score_b)
    auc_a, auc_b = float(a10.mean()), float(b10.mean())
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    contrast = np.array([1.0, -1.0])
    variance = float(contrast @ (s10 / n1 + s01 / n0) @ contrast)
    difference = auc_a - auc_b
    if not variance > 0:
        return {**nan, "auc_a": auc_a, "auc_b": auc_b, "difference": difference}
    se = float(np.sqrt(variance))
    z = difference / se
    return {"auc_a": auc_a, "auc_b": auc_b, "difference": difference, "se": se, "z": float(z),
            "p_value": float(2 * norm.sf(abs(z)))}
