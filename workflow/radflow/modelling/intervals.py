"""Confidence intervals for cross-validated performance that carry the training-set variability: a bootstrap of the
whole modelling procedure, with the fold-split noise measured on the data.

Why this method. A cross-validated AUC (Brier score, calibration slope, C-index) varies from cohort to cohort for
three reasons: the test cases differ, the models fitted on the training folds differ (different features selected,
different hyper-parameters, different weights), and the random split into folds differs. A case bootstrap of the
out-of-fold predictions, with the fold models held fixed, sees only the first and is too narrow (Bates, Hastie &
Tibshirani, JASA 2023, show the same for the naive cross-validation standard error); a permuted outcome then gave
the clinical baseline AUC 0.688 [0.537, 0.845]. Two remedies are in the literature: nested cross-validation estimates
of the CV estimator's mean squared error (Bates et al.), which are defined for losses that are a mean over cases
(AUC and C-index are pairwise U-statistics, not such a loss) and target the error of the model fitted on this
cohort, and the bootstrap of the whole procedure. radflow uses the latter because one mechanism serves every metric,
binary and survival alike:

1. Draw a bootstrap cohort: the cases resampled with replacement within each outcome class (binary: label; survival:
   event indicator), so every replicate keeps the class counts that the folds need.
2. Rerun the *whole* cross-validated procedure on it (harmonisation, redundancy reduction, selection, inner tuning,
   threshold, refit, prediction of the outer test folds; every outer repeat), with every copy of a case in the same
   fold (``grouped_folds``) so that no case is ever predicted by a model that was trained on its own copy.
3. The metrics of that replicate, per repeat, are one draw of the cross-validated estimate in the bootstrap world.

The replicates do not scatter around the estimate t: rerunning the procedure draws new folds and new models, so they
scatter around the procedure's expected value (percentile intervals covered ~100 % in the simulation, basic ones
~75 % under the null), and their spread is inflated. The variance of t is therefore assembled from three parts:

* V_test, the test-case part: the variance of the case bootstrap of the out-of-fold predictions with the fold models
  held fixed (the interval radflow reported before round 1; alone it under-covers, ~73 % for AUC under the null at
  40 cases).
* S_real, the fold-split part, measured on the data: t is the mean of R repeats of the cross-validation on
  independent random splits of the same cohort, so given the cohort the per-repeat estimates t_r differ only by the
  split, and var_r(t_r) / R is an unbiased estimate of the split noise's share of Var(t) (R - 1 degrees of freedom).
  The bootstrap replicates carry their own split noise, S_boot (the mean over replicates of var_r / R), which the
  bootstrap world inflates 2-5 times (measured in the simulation: S_boot / S_real = 1.8-2.2 for AUC and 2.3-3.1 for
  the C-index, 4-5 at 200 cases with a signal); it is removed from the model part below instead of being weighted
  with it. With one repeat (R = 1) S_real cannot be measured and is left inside the model part (the round-2 form).
* The model part, w max(V_boot - V_test - S_boot, 0), V_boot the variance of the repeat-averaged replicates: the
  covariance that makes the naive cross-validation standard error too small (every case is a test case in one fold
  and a training case of the other folds' models, Bates et al.) plus the variation of the fitted models, as the
  bootstrap world sees them. It sees them inflated, twice over: (a) a bootstrap cohort holds only 63.2 % distinct
  cases, and what a learner learns varies about as 1 / (distinct training cases), a factor 1 / 0.632; (b) the copies
  weight the cases by multinomial counts W with E[W^2] = 2, so a term that pairs a training case with a test case
  has a bootstrap variance up to E[W_i^2] E[W_j^2] - 1 = 3 times its real-world counterpart's (when the pair's
  contribution does not average out over each case), and about 1 times for a degenerate pair term. This is a bracket
  from a first-order argument, not an exact factor: the weight lies between 0.632 / 3 = 0.21 and 0.632; radflow takes
  the geometric midpoint, w = 0.632 / sqrt(3) = 0.365 (chosen in round 2, unchanged).

V = V_test + S_real + w max(V_boot - V_test - S_boot, 0). S_real rests on R - 1 = 1 degree of freedom with the
default two repeats and is on average 14-17 % of V (5-7 % at 200 cases with a signal), so (t - theta) / sqrt(V) has
heavier tails than the normal; the quantile is Student's t with the Welch-Satterthwaite degrees of freedom
(Satterthwaite, Biometrics Bulletin 1946), df = V^2 / (S_real^2 / (R - 1) + V_test^2 / (B_test - 1) + (model
part)^2 / (B - 1)) (in the simulation median 65-270, lowest tenth 5-40; infinite without the split part). For the
concordance probabilities (AUC, C-index) the interval is formed on the logit scale, logit(t) +/- q sqrt(V) /
(t (1 - t)) mapped back (delta method): their sampling distribution is bounded and skewed away from the nearer bound
(at 40 cases with a true AUC of 0.69 the cross-validated AUC has skewness -0.4: cohorts where the selection fails
give estimates near or below 0.5; on the logit scale the skewness is +0.15 and an interval with the true mean squared
error covers 94.5 %), and logit-scale intervals of the AUC keep their coverage in small samples better than linear
ones (Qin & Hotilovac, Stat Methods Med Res 2008; Pepe 2003, section 5.2). The variances stay on the linear scale: the variance of the replicates'
logits covered about as well in the simulation but is fragile at the bound (one bootstrap cohort of the 40-patient
demo with AUC 1.0 made the radiomics interval [0.17, 0.99]). Other metrics: t +/- q sqrt(V), clipped to the metric's
range.

Coverage of the 95 % interval, by simulation (``benchmarks/bench_coverage.py``; every variant tried, with seeds, in
``benchmarks/README.md``): null data and data with a known true AUC / C-index, 40 and 200 cases, 5-fold x 2-repeat
CV, 200 bootstrap and 200 fixed-model replicates a data set; rows n40 null / n40 signal / n200 null / n200 signal:

| construction | seed (data sets a row) | AUC | C-index |
| --- | --- | --- | --- |
| this one | 2026, fresh (600) | 97.3 / 94.3 / 94.2 / 96.5 | 97.8 / 94.7 / 96.2 / 96.3 |
| this one | 2023-2025, where it was chosen (600) | 96.7 / 94.3 / 95.8 / 95.0 | 96.3 / 95.5 / 96.0 / 94.7 |
| round 2: V_test + w max(V_boot - V_test, 0), z | 2026 (600) | 98.0 / 92.5 / 94.7 / 96.5 | 97.8 / 96.0 / 95.3 / 96.2 |
| round 2 | 2023-2025 (600) | 96.7 / 91.7 / 95.3 / 95.2 | 98.5 / 96.8 / 95.2 / 94.5 |

Six of the eight rows lie in 93-97 % on the fresh seed; the two null rows at 40 cases over-cover (97.3 and 97.8 %;
97.0 and 97.1 % over all 1,200 data sets). At 40 cases the estimate has the same spread under the null and with a
signal, but the logit interval around a null estimate bulges towards 0.5 while with a signal the truth lies above a
pessimistic, left-skewed estimate, so the null rows want narrower intervals and the signal row wider ones from the
same data. Tried (``benchmarks/README.md``): subsampling without replacement at n/2 or 0.8 n for the model part,
dropping V_test, a learning-curve bias correction, the pair-weighted AUC, the test part resampled within the
folds' outcome strata, each bootstrap cohort's own test part in place of V_test, five outer repeats instead of two
(each moves the null and signal rows together; none better); the variances of the
replicates' logits (AUC null row 96.2 % on the fresh seed, C-index rows unchanged, fragile at the bound); nested
cross-validation (Bates et al.) targets the error of this cohort's model, whose mean squared
distance to t is smaller than to the expected error exactly where more width is needed.

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
from scipy.stats import t as student_t

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


def _defined(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _enough(values) -> bool:
    """At least half of the replicates, and two, are defined."""
    values = np.asarray(values, dtype=float)
    return values.size > 0 and _defined(values).size >= max(values.size / 2, 2)


def procedure_variance(fixed_model_replicates: np.ndarray, procedure_replicates: np.ndarray,
                       repeat_estimates: np.ndarray | None = None) -> tuple[float, float]:
    """(V, degrees of freedom) of the cross-validated estimate (module docstring).

    ``fixed_model_replicates``: the case bootstrap with the fold models fixed (B_t values). ``procedure_replicates``:
    the whole-procedure replicates, (B,) repeat-averaged or (B x R) per repeat. ``repeat_estimates``: the estimate
    of each of the R repeats. With R >= 2 per-repeat values on both sides the fold-split noise is separated:
    V = V_test + S_real + w max(V_boot - V_test - S_boot, 0), df by Satterthwaite; otherwise (R = 1, or
    repeat-averaged replicates) V = V_test + w max(V_boot - V_test, 0) and df = inf. (NaN, NaN) when fewer than
    half of either set of replicates are defined."""
    fixed = np.asarray(fixed_model_replicates, dtype=float)
    procedure = np.asarray(procedure_replicates, dtype=float)
    per_repeat = procedure.reshape(procedure.shape[0], -1) if procedure.ndim == 2 else procedure[:, None]
    # a replicate of the reported statistic is the mean over repeats (undefined if any repeat is)
    replicate = per_repeat.mean(axis=1) if per_repeat.size else np.zeros(0)
    if not (_enough(fixed) and _enough(replicate)):
        return float("nan"), float("nan")
    v_test = float(np.var(_defined(fixed), ddof=1))
    v_boot = float(np.var(_defined(replicate), ddof=1))
    n_repeats = per_repeat.shape[1]
    estimates = None if repeat_estimates is None else np.asarray(repeat_estimates, dtype=float).ravel()
    if estimates is None or n_repeats < 2 or estimates.size != n_repeats or not np.all(np.isfinite(estimates)):
        return v_test + MODEL_PART_WEIGHT * max(v_boot - v_test, 0.0), float("inf")
    complete = per_repeat[np.all(np.isfinite(per_repeat), axis=1)]
    s_real = float(np.var(estimates, ddof=1)) / n_repeats
    s_boot = float(np.mean(np.var(complete, axis=1, ddof=1))) / n_repeats
    return split_variance(v_test, s_real, v_boot, s_boot, n_repeats, _defined(fixed).size,
                          _defined(replicate).size)


def split_variance(v_test: float, s_real: float, v_boot: float, s_boot: float, n_repeats: int, n_fixed: int,
                   n_procedure: int, weight: float = MODEL_PART_WEIGHT) -> tuple[float, float]:
    """(V, Satterthwaite degrees of freedom) from the parts: V = V_test + S_real + w max(V_boot - V_test - S_boot, 0)
    (module docstring); ``n_fixed`` and ``n_procedure`` count the defined replicates behind V_test and V_boot."""
    model_part = weight * max(v_boot - v_test - s_boot, 0.0)
    variance = v_test + s_real + model_part
    denominator = (s_real ** 2 / (n_repeats - 1) + v_test ** 2 / (n_fixed - 1)
                   + model_part ** 2 / (n_procedure - 1))
    return variance, float(variance ** 2 / denominator) if denominator > 0 else float("inf")


def procedure_interval(estimate: float, fixed_model_replicates: np.ndarray, procedure_replicates: np.ndarray,
                       level: float = LEVEL, bounds: tuple[float, float] = (-np.inf, np.inf),
                       logit_scale: bool = False, repeat_estimates: np.ndarray | None = None) -> tuple[float, float]:
    """t +/- q sqrt(V), clipped to ``bounds``: V and its degrees of freedom from ``procedure_variance``, q the Student
    t quantile (the normal one with infinite df). With ``logit_scale`` (a probability t strictly inside (0, 1)):
    logit(t) +/- q sqrt(V) / (t (1 - t)) mapped back (delta method), so the interval is asymmetric and stays inside
    (0, 1); at t = 0 or 1 the logit is undefined and the linear interval is used. NaNs when t is undefined or fewer
    than half of either set of replicates are defined."""
    variance, df = procedure_variance(fixed_model_replicates, procedure_replicates, repeat_estimates)
    return variance_interval(estimate, variance, df, level, bounds, logit_scale)


def variance_interval(estimate: float, variance: float, df: float, level: float = LEVEL,
                      bounds: tuple[float, float] = (-np.inf, np.inf),
                      logit_scale: bool = False) -> tuple[float, float]:
    """The interval of ``procedure_interval`` for a given V and its degrees of freedom."""
    if not (np.isfinite(estimate) and np.isfinite(variance)):
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    quantile = norm.ppf(1 - alpha) if not np.isfinite(df) else student_t.ppf(1 - alpha, df)
    if logit_scale and 0.0 < estimate < 1.0:
        centre, half_width = logit(estimate), quantile * np.sqrt(variance) / (estimate * (1 - estimate))
        low, high = float(expit(centre - half_width)), float(expit(centre + half_width))
    else:
        half_width = quantile * np.sqrt(variance)
        low, high = estimate - half_width, estimate + half_width
    return float(max(low, bounds[0])), float(min(high, bounds[1]))
