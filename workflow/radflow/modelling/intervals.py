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
~75 % under the null). Their spread is also inflated, so the variance is split in two parts:

* V_test, the test-case part: the percentile case bootstrap of the out-of-fold predictions with the fold models held
  fixed (the interval radflow reported before; alone it under-covers, ~73 % for AUC under the null at 40 cases).
  It misses the covariance that makes the naive cross-validation standard error too small (Bates et al.): every case
  is a test case in one fold and a training case of the other folds' models.
* V_train = V_boot - V_test, V_boot the variance of the whole-procedure replicates: that covariance plus the
  variation of the fitted models, as the bootstrap world sees them. It sees them inflated, twice over: (a) a bootstrap
  cohort holds only 63.2 % distinct cases, and what a learner learns varies about as 1 / (distinct training cases),
  a factor 1 / 0.632; (b) the copies weight the cases by multinomial counts W with E[W^2] = 2, so a term that pairs a
  training case with a test case (the covariance above) has a bootstrap variance up to E[W_i^2] E[W_j^2] - 1 = 3
  times its real-world counterpart's (when the pair's contribution does not average out over each case), and about
  1 times for a degenerate pair term (mean zero given either case). This is a bracket from a first-order argument,
  not an exact factor: the inflation lies between about 1 / 0.632 and 3 / 0.632, V_train's weight
  between 0.632 / 3 = 0.21 and 0.632; radflow takes the geometric midpoint, w = 0.632 / sqrt(3) = 0.365. In the
  coverage simulation the weight that matched each scenario's Monte-Carlo mean squared error lay in 0.23-0.64
  (AUC: 0.53-0.64 at 40 cases, 0.33-0.44 at 200; C-index: 0.23-0.30), inside the bracket; round 1's w = 0.632 sat
  at its top and gave C-index intervals ~15 % too wide (coverage 97-99 %). The choice of w and of the logit scale
  below was made after that diagnosis (seed 2023, 400 cohorts a scenario); the table reports a fresh seed.

The interval is formed from V = V_test + w max(V_boot - V_test, 0). For the concordance probabilities (AUC,
C-index) it is formed on the logit scale, logit(t) +/- z(0.975) sqrt(V) / (t (1 - t)) mapped back (delta method):
their sampling distribution is bounded and skewed away from the nearer bound (at 40 cases with a true AUC of 0.69 the
cross-validated AUC has skewness -0.5: cohorts where the selection fails give estimates near or below 0.5), and
logit-scale intervals of the AUC keep their coverage in small samples better than linear ones (Qin & Hotilovac,
Stat Methods Med Res 2008; Pepe 2003, section 5.2). Other metrics: t +/- z(0.975) sqrt(V), clipped to the metric's
range. Coverage of the 95 % interval was measured by simulation (``benchmarks/bench_coverage.py``, table in
``benchmarks/README.md``): null data and data with a known true AUC / C-index, 40 and 200 cases; 93-97 % in six of
the eight AUC / C-index scenarios. The weak spots: the AUC at 40 cases with a true signal (91.5 %): its misses are
one-sided (the truth above the interval after a failed selection), and only a weight near 0.632 on the logit scale
reaches 93 %, at the price of 99-100 % under the null; and the C-index under the null at 40 cases (~99 %).

What the interval is for: the expected performance of a model built by this procedure on a cohort of this size from
the same population (in the simulation: the mean AUC, on new cases, of models fitted on n cases). Under the null that
is exactly 0.5, whatever model is fitted.

Deterministic: replicate b draws its cases from ``numpy.random.default_rng([seed, b])``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit, logit
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
# Weight of the bootstrap's model part (module docstring): the geometric midpoint of the bracket
# [DISTINCT_FRACTION / 3, DISTINCT_FRACTION] that the two inflations span.
MODEL_PART_WEIGHT = DISTINCT_FRACTION / np.sqrt(3)
# Concordance probabilities, whose intervals are formed on the logit scale (module docstring).
LOGIT_SCALE_METRICS = frozenset({"auc", "c_index"})


def _variance(values) -> float:
    values = np.asarray(values, dtype=float)
    defined = values[np.isfinite(values)]
    if values.size == 0 or defined.size < max(values.size / 2, 2):
        return float("nan")
    return float(np.var(defined, ddof=1))


def procedure_variance(fixed_model_replicates: np.ndarray, procedure_replicates: np.ndarray) -> float:
    """V_test + w max(V_boot - V_test, 0), w = ``MODEL_PART_WEIGHT`` (module docstring); NaN when fewer than half of
    either set of replicates are defined."""
    v_test, v_boot = _variance(fixed_model_replicates), _variance(procedure_replicates)
    return v_test + MODEL_PART_WEIGHT * max(v_boot - v_test, 0.0)


def procedure_interval(estimate: float, fixed_model_replicates: np.ndarray, procedure_replicates: np.ndarray,
                       level: float = LEVEL, bounds: tuple[float, float] = (-np.inf, np.inf),
                       logit_scale: bool = False) -> tuple[float, float]:
    """t +/- z sqrt(V) with V = ``procedure_variance`` (module docstring), clipped to ``bounds``. With
    ``logit_scale`` (a probability t strictly inside (0, 1)): logit(t) +/- z sqrt(V) / (t (1 - t)) mapped back (delta
    method), so the interval is asymmetric and stays inside (0, 1); at t = 0 or 1 the logit is undefined and the
    linear interval is used. NaNs when t is undefined or fewer than half of either set of replicates are defined."""
    variance = procedure_variance(fixed_model_replicates, procedure_replicates)
    if not (np.isfinite(estimate) and np.isfinite(variance)):
        return float("nan"), float("nan")
    z = norm.ppf(0.5 + level / 2)
    if logit_scale and 0.0 < estimate < 1.0:
        centre, half_width = logit(estimate), z * np.sqrt(variance) / (estimate * (1 - estimate))
        low, high = float(expit(centre - half_width)), float(expit(centre + half_width))
    else:
        half_width = z * np.sqrt(variance)
        low, high = estimate - half_width, estimate + half_width
    return float(max(low, bounds[0])), float(min(high, bounds[1]))
