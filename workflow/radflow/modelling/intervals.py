"""Confidence intervals for cross-validated performance that carry the training-set variability: a bootstrap of the
whole modelling procedure.

Why this method. A cross-validated AUC (Brier score, calibration slope, C-index) varies from cohort to cohort for two
reasons: the test cases differ, and so do the models fitted on the training folds (different features selected,
different hyper-parameters, different weights). A case bootstrap of the out-of-fold predictions, with the fold models
held fixed, sees only the first and is too narrow (Bates, Hastie & Tibshirani, JASA 2023, show the same for the
naive cross-validation standard error); a permuted outcome then gave the clinical baseline AUC 0.688 [0.537, 0.845].
Two remedies are in the literature: nested cross-validation estimates of the CV estimator's mean squared error
(Bates et al.), which are defined for losses that are a mean over cases (AUC and C-index are pairwise U-statistics,
not such a loss), and the bootstrap of the whole procedure. radflow uses the latter because one mechanism serves
every metric, binary and survival alike:

1. Draw a bootstrap cohort: the cases resampled with replacement within each outcome class (binary: label; survival:
   event indicator), so every replicate keeps the class counts that the folds need.
2. Rerun the *whole* cross-validated procedure on it (harmonisation, redundancy reduction, selection, inner tuning,
   threshold, refit, prediction of the outer test folds), with every copy of a case in the same fold
   (``grouped_folds``) so that no case is ever predicted by a model that was trained on its own copy.
3. The metrics of that replicate are one draw from the sampling distribution of the cross-validated estimate.

The replicates, however, do not scatter around the estimate t: rerunning the procedure draws new folds and new
models, so they scatter around the procedure's expected value and their spread estimates the estimator's sampling
variance (the simulation showed percentile intervals covering ~100 % and basic intervals, which reflect around t,
~75 % under the null). Their spread is also inflated: a bootstrap cohort holds only ~63.2 % distinct cases, so the
models fitted on it vary more than models fitted on n distinct cases. The variance is therefore split in two parts:

* V_test, the test-case part: the percentile case bootstrap of the out-of-fold predictions with the fold models held
  fixed (the interval radflow reported before; alone it under-covers, ~73 % for AUC under the null at 40 cases);
* V_train, the model part: V_boot - V_test, V_boot the variance of the whole-procedure replicates, scaled by 0.632
  because the variance of what a learner learns grows about as 1 / (distinct training cases).

The interval is t +/- z(0.975) sqrt(V_test + 0.632 max(V_boot - V_test, 0)), clipped to the metric's range.
Coverage of the 95 % interval was measured by simulation (``benchmarks/bench_coverage.py``, table in
``benchmarks/README.md``): null data and data with a known true AUC / C-index, 40 and 200 cases.

What the interval is for: the expected performance of a model built by this procedure on a cohort of this size from
the same population (in the simulation: the mean AUC, on new cases, of models fitted on n cases). Under the null that
is exactly 0.5, whatever model is fitted.

Deterministic: replicate b draws its cases from ``numpy.random.default_rng([seed, b])``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import norm

LEVEL = 0.95


def stratified_resample(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a bootstrap sample drawn with replacement within each label (so the label counts are kept),
    in ascending order of the original index."""
    labels = np.asarray(labels)
    parts = []
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        parts.append(members[rng.integers(0, members.size, size=members.size)])
    return np.sort(np.concatenate(parts))


def grouped_folds(strata: np.ndarray, groups: np.ndarray, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Fold number (0..n_folds-1) of every row such that all rows of a group share a fold and each stratum's groups
    are spread evenly over the folds (groups shuffled within their stratum, then dealt round-robin, each stratum
    starting where the previous one stopped so fold sizes stay balanced). A group must lie in one stratum."""
    strata = np.asarray(strata)
    groups = np.asarray(groups)
    unique_groups, first = np.unique(groups, return_index=True)
    group_stratum = strata[first]
    fold_of_group = np.empty(unique_groups.size, dtype=int)
    offset = 0
    for value in np.unique(group_stratum):
        members = rng.permutation(np.flatnonzero(group_stratum == value))
        fold_of_group[members] = (offset + np.arange(members.size)) % n_folds
        offset = (offset + members.size) % n_folds
    return fold_of_group[np.searchsorted(unique_groups, groups)]


def _replicate(evaluate, labels, seed: list, b: int) -> dict[str, float]:
    rng = np.random.default_rng([*seed, b])
    return evaluate(stratified_resample(labels, rng), rng)


def replicate_metrics(evaluate: Callable[[np.ndarray, np.random.Generator], dict[str, float]], labels: np.ndarray,
                      n_bootstrap: int, seed, n_jobs: int = 1) -> dict[str, np.ndarray]:
    """``evaluate(index, rng)`` (the metrics of the whole procedure rerun on the cases ``index``, which repeat) on
    ``n_bootstrap`` stratified bootstrap cohorts; metric name -> replicate values (NaN where undefined). Replicate b
    depends only on (seed, b), so the result does not depend on ``n_jobs``."""
    seed = [int(s) for s in np.atleast_1d(seed)]
    if n_jobs == 1:
        results = [_replicate(evaluate, labels, seed, b) for b in range(n_bootstrap)]
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(delayed(_replicate)(evaluate, labels, seed, b) for b in range(n_bootstrap))
    names = sorted({name for r in results for name in r})
    return {name: np.array([r.get(name, np.nan) for r in results], dtype=float) for name in names}


def basic_interval(estimate: float, replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Basic bootstrap interval [2 t - q(1 - a/2), 2 t - q(a/2)]; NaNs when t is undefined or fewer than half the
    replicates are defined."""
    replicates = np.asarray(replicates, dtype=float)
    defined = replicates[np.isfinite(replicates)]
    if not np.isfinite(estimate) or defined.size == 0 or defined.size < replicates.size / 2:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low_q, high_q = np.quantile(defined, [alpha, 1 - alpha])
    return float(2 * estimate - high_q), float(2 * estimate - low_q)


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval (reported by the coverage benchmark for comparison)."""
    defined = np.asarray(replicates, dtype=float)
    defined = defined[np.isfinite(defined)]
    if defined.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    low, high = np.quantile(defined, [alpha, 1 - alpha])
    return float(low), float(high)


# Expected fraction of distinct cases in a bootstrap sample, 1 - (1 - 1/n)^n -> 1 - 1/e.
DISTINCT_FRACTION = 1 - np.exp(-1)


def procedure_interval(estimate: float, fixed_model_replicates: np.ndarray, procedure_replicates: np.ndarray,
                       level: float = LEVEL, bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """t +/- z sqrt(V_test + 0.632 max(V_boot - V_test, 0)) (module docstring), clipped to ``bounds``; NaNs when t is
    undefined or fewer than half of either set of replicates are defined."""
    def variance(values):
        values = np.asarray(values, dtype=float)
        defined = values[np.isfinite(values)]
        if values.size == 0 or defined.size < max(values.size / 2, 2):
            return float("nan")
        return float(np.var(defined, ddof=1))

    v_test, v_boot = variance(fixed_model_replicates), variance(procedure_replicates)
    if not (np.isfinite(estimate) and np.isfinite(v_test) and np.isfinite(v_boot)):
        return float("nan"), float("nan")
    half_width = norm.ppf(0.5 + level / 2) * np.sqrt(v_test + DISTINCT_FRACTION * max(v_boot - v_test, 0.0))
    return float(max(estimate - half_width, bounds[0])), float(min(estimate + half_width, bounds[1]))
