"""Nested cross-validation, threshold choice on training data, the outcome-permutation test and external
validation.

Outer loop: repeated stratified K-fold (``RepeatedStratifiedKFold``, seeded) estimates performance. In each outer
training fold the inner loop (stratified K-fold, seeded per outer fold) tunes the learner: for every inner split the
preprocessing (harmonisation, scaling, redundancy reduction, selection) is fitted on the inner training part only,
every grid candidate is fitted on its output, and the held-out inner part is predicted. The candidate with the best
pooled inner out-of-fold score (AUC, or Harrell's C for survival; the first, most regularised, on ties) wins; the
classification threshold is the Youden-optimal one on those same inner out-of-fold predictions, so it is chosen on
training data only. The whole pipeline is then refitted on the outer training fold with the winning
hyper-parameters and predicts the outer test fold. Nothing fitted ever sees a test case.

Strata: outcome (or event) x centre when every such stratum has at least as many cases as folds, else outcome
(event) alone, so each training fold holds every centre ComBat must estimate; a survival cohort with fewer censored
cases than folds is not stratified.

Every random choice is seeded from the configured seed, the outer repeat and fold (``numpy.random.SeedSequence``
entropy lists), and workers run with one BLAS thread, so results do not depend on the number of jobs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from radflow.modelling import metrics
from radflow.modelling.intervals import LOGIT_SCALE_METRICS, grouped_folds, procedure_interval, replicate_metrics
from radflow.modelling.models import input_features, predict_scores
from radflow.modelling.targets import BINARY, is_survival, survival_arrays, task_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CVSettings:
    outer_folds: int = 5
    outer_repeats: int = 2
    inner_folds: int = 3
    seed: int = 0


@dataclass
class FoldResult:
    repeat: int
    fold: int
    test_index: np.ndarray
    prediction: np.ndarray
    threshold: float
    params: dict
    features: list[str] = field(default_factory=list)


def derived_seed(*parts: int) -> int:
    """A 31-bit seed from integers (stable across runs, independent streams for different parts)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] & 0x7FFFFFFF)


def outcome_labels(y) -> np.ndarray:
    """The class (binary) or event indicator (survival) used to stratify folds."""
    if is_survival(y):
        return survival_arrays(y)[1].astype(int)
    return np.asarray(y).astype(int)


def strata(y, centre: np.ndarray | None, n_folds: int) -> np.ndarray:
    """Stratification labels: outcome x centre if every stratum has >= n_folds cases, else the outcome.

    A survival cohort with fewer censored cases than folds (complete follow-up: every patient had the event) is not
    stratified at all: there is nothing to balance, and a Cox model needs no censored case."""
    labels = outcome_labels(y).astype(str)
    if is_survival(y) and np.unique(labels, return_counts=True)[1].min() < n_folds:
        labels = np.full(labels.shape, "all")
    if centre is not None:
        joint = np.char.add(np.char.add(labels, "|"), np.asarray(centre).astype(str))
        if np.unique(joint, return_counts=True)[1].min() >= n_folds:
            return joint
    return labels


def feasibility(y, n_outer: int, n_inner: int) -> str | None:
    """Why nested CV cannot run on this outcome, or None if it can.

    Binary: each class must reach every outer test fold and every inner fold of a training part. Survival: the
    events must (Harrell's C needs an event in each test fold); censored cases need not, since a cohort followed to
    the last event has none."""
    labels = outcome_labels(y)
    if is_survival(y):
        smallest, what = int(labels.sum()), "the cohort has {} events"
    else:
        smallest, what = int(np.bincount(labels, minlength=2).min()), "the smaller outcome class has {} cases"
    if smallest < n_outer:
        return f"{what.format(smallest)}, fewer than the {n_outer} outer folds"
    if smallest * (n_outer - 1) // n_outer < n_inner:
        return f"{what.format(smallest)}: too few for {n_inner} inner folds"
    return None


def score(y, prediction: np.ndarray) -> float:
    """Tuning score: AUC (binary) or Harrell's C (survival)."""
    if is_survival(y):
        time, event = survival_arrays(y)
        return metrics.harrell_c(time, event, prediction)
    return metrics.auc(np.asarray(y), prediction)


def _subset(y, index: np.ndarray):
    return np.asarray(y)[index]


def _group_splits(strata_labels: np.ndarray, groups: np.ndarray, n_folds: int, rng: np.random.Generator):
    """(train, test) index pairs of K folds that keep every copy of a case (same group) together."""
    fold_of = grouped_folds(strata_labels, groups, n_folds, rng)
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(n_folds)]


def tune(model, grid: tuple[dict, ...], x: pd.DataFrame, y, strata_labels: np.ndarray, n_inner: int,
         seed: int, groups: np.ndarray | None = None) -> tuple[dict, float, float]:
    """(best learner hyper-parameters, threshold chosen on the inner out-of-fold predictions, best inner score).
    With ``groups`` (a bootstrap cohort's original case numbers) the inner folds keep copies of a case together."""
    task = task_of(y)
    candidates = list(grid) or [{}]
    oof = np.full((len(candidates), len(x)), np.nan)
    if groups is None:
        splits = StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=seed).split(np.zeros(len(x)),
                                                                                          strata_labels)
    else:
        splits = _group_splits(strata_labels, groups, n_inner, np.random.default_rng(seed))
    for train, held_out in splits:
        preprocess = clone(model.named_steps["preprocess"])
        y_train = _subset(y, train)
        z_train = preprocess.fit_transform(x.iloc[train], y_train)
        z_held_out = preprocess.transform(x.iloc[held_out])
        for c, params in enumerate(candidates):
            learner = clone(model.named_steps["learner"]).set_params(**params)
            learner.fit(z_train, y_train)
            if task == BINARY:
                oof[c, held_out] = learner.predict_proba(z_held_out)[:, 1]
            else:
                oof[c, held_out] = learner.predict(z_held_out)
    scores = np.array([score(y, oof[c]) for c in range(len(candidates))])
    best = int(np.argmax(np.where(np.isfinite(scores), scores, -np.inf)))
    threshold = metrics.youden_threshold(np.asarray(y), oof[best]) if task == BINARY else float("nan")
    return dict(candidates[best]), threshold, float(scores[best])


def fit_tuned(model, grid, x: pd.DataFrame, y, centre: np.ndarray | None, n_inner: int, seed: int,
              groups: np.ndarray | None = None):
    """Tune on (x, y) with inner CV, refit the whole pipeline with the winner; (fitted model, params, threshold)."""
    params, threshold, _ = tune(model, grid, x, y, strata(y, centre, n_inner), n_inner, seed, groups)
    fitted = clone(model).set_params(**{f"learner__{k}": v for k, v in params.items()})
    fitted.fit(x, y)
    return fitted, params, threshold


def _outer_fold(model, grid, x, y, centre, repeat, fold, train, test, cv: CVSettings,
                groups: np.ndarray | None = None) -> FoldResult:
    with threadpool_limits(1):
        fitted, params, threshold = fit_tuned(
            model, grid, x.iloc[train], _subset(y, train), None if centre is None else centre[train],
            cv.inner_folds, derived_seed(cv.seed, 1, repeat, fold), None if groups is None else groups[train])
        prediction = predict_scores(fitted, x.iloc[test], task_of(y))
    return FoldResult(repeat, fold, test, prediction, threshold, params, input_features(fitted))


def outer_splits(y, centre, cv: CVSettings, groups: np.ndarray | None = None,
                 ) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    labels = strata(y, centre, cv.outer_folds)
    if groups is not None:
        return [(r, f, train, test) for r in range(cv.outer_repeats)
                for f, (train, test) in enumerate(_group_splits(
                    labels, groups, cv.outer_folds, np.random.default_rng([cv.seed, 4, r])))]
    splitter = RepeatedStratifiedKFold(n_splits=cv.outer_folds, n_repeats=cv.outer_repeats, random_state=cv.seed)
    return [(i // cv.outer_folds, i % cv.outer_folds, train, test)
            for i, (train, test) in enumerate(splitter.split(np.zeros(len(labels)), labels))]


def nested_cv(model, grid, x: pd.DataFrame, y, centre: np.ndarray | None, cv: CVSettings,
              n_jobs: int = 1, groups: np.ndarray | None = None) -> list[FoldResult]:
    """Out-of-fold predictions of every outer fold of every repeat (see the module docstring). ``groups``: for a
    bootstrap cohort, each row's original case, so that copies of a case share outer and inner folds."""
    splits = outer_splits(y, centre, cv, groups)
    if n_jobs == 1:
        return [_outer_fold(model, grid, x, y, centre, r, f, tr, te, cv, groups) for r, f, tr, te in splits]
    return Parallel(n_jobs=n_jobs)(
        delayed(_outer_fold)(model, grid, x, y, centre, r, f, tr, te, cv, groups) for r, f, tr, te in splits)


def oof_matrix(folds: list[FoldResult], n_cases: int, n_repeats: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predictions, thresholds, fold numbers), each (repeats x cases): every case is predicted once per repeat."""
    predictions = np.full((n_repeats, n_cases), np.nan)
    thresholds = np.full((n_repeats, n_cases), np.nan)
    fold_of = np.zeros((n_repeats, n_cases), dtype=int)
    for f in folds:
        predictions[f.repeat, f.test_index] = f.prediction
        thresholds[f.repeat, f.test_index] = f.threshold
        fold_of[f.repeat, f.test_index] = f.fold
    return predictions, thresholds, fold_of


def cv_statistic(y, folds: list[FoldResult], n_repeats: int) -> float:
    """The reported CV statistic: fold-averaged AUC (binary) or C-index over pairs within test folds (survival),
    mean over repeats."""
    predictions, _, fold_of = oof_matrix(folds, len(y), n_repeats)
    if is_survival(y):
        time, event = survival_arrays(y)
        return float(np.mean([metrics.harrell_c(time, event, predictions[r], fold_of[r]) for r in range(n_repeats)]))
    return fold_mean_auc(np.asarray(y).astype(int), predictions, fold_of, np.arange(len(y)))


def permuted_target(y, rng: np.random.Generator):
    """The outcome shuffled over cases (survival: time and event move together)."""
    return np.asarray(y)[rng.permutation(len(y))]


def _permutation_statistic(model, grid, x, y, centre, cv: CVSettings, k: int) -> float:
    y_k = permuted_target(y, np.random.default_rng([cv.seed, 2, k]))
    return cv_statistic(y_k, nested_cv(model, grid, x, y_k, centre, cv, n_jobs=1), cv.outer_repeats)


def permutation_test(model, grid, x: pd.DataFrame, y, centre, cv: CVSettings, observed: float,
                     n_permutations: int, n_jobs: int = 1) -> tuple[float, np.ndarray]:
    """p-value of the observed CV statistic: the whole nested CV is rerun on ``n_permutations`` shuffles of the
    outcome (same folds procedure, same seeds) and p = (1 + #{permuted >= observed}) / (1 + n_permutations)."""
    if n_permutations <= 0:
        return float("nan"), np.zeros(0)
    permuted = np.asarray(Parallel(n_jobs=n_jobs)(
        delayed(_permutation_statistic)(model, grid, x, y, centre, cv, k) for k in range(n_permutations)))
    return metrics.permutation_p_value(observed, permuted), permuted


# ----------------------------------------------------------------------------------------------- metrics

def _binary_metric_functions(thresholded: bool):
    functions = {
        "brier": lambda y, p, hit: metrics.brier(y, p),
        "calibration_slope": lambda y, p, hit: metrics.calibration_slope(y, p),
        "calibration_intercept": lambda y, p, hit: metrics.calibration_intercept(y, p),
    }
    if thresholded:
        functions["sensitivity"] = lambda y, p, hit: metrics.sensitivity_specificity(y, hit)[0]
        functions["specificity"] = lambda y, p, hit: metrics.sensitivity_specificity(y, hit)[1]
    return functions


def fold_auc_per_repeat(y: np.ndarray, predictions: np.ndarray, folds: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Per repeat, the mean over test folds of the AUC within each fold, for the cases ``index``."""
    per_repeat: list[float] = []
    for r in range(predictions.shape[0]):
        fold_of, p, labels = folds[r, index], predictions[r, index], y[index]
        values = [metrics.auc(labels[fold_of == f], p[fold_of == f]) for f in np.unique(fold_of)]
        values = [v for v in values if np.isfinite(v)]
        per_repeat.append(float(np.mean(values)) if values else np.nan)
    return np.array(per_repeat)


def fold_mean_auc(y: np.ndarray, predictions: np.ndarray, folds: np.ndarray, index: np.ndarray) -> float:
    """Mean over repeats of the mean over test folds of the AUC within each fold, for the cases ``index``."""
    return float(np.mean(fold_auc_per_repeat(y, predictions, folds, index)))


# Range of each metric (intervals are clipped to it).
BOUNDS = {"auc": (0.0, 1.0), "c_index": (0.0, 1.0), "brier": (0.0, 1.0), "sensitivity": (0.0, 1.0),
          "specificity": (0.0, 1.0)}


def repeat_statistics(y, predictions: np.ndarray, thresholds: np.ndarray | None, folds: np.ndarray | None) -> dict:
    """metric name -> statistic(index): the metric of each repeat (an array, one value a repeat) on the cases
    ``index`` (which may repeat); the definitions of ``performance``.

    ``predictions``, ``thresholds``, ``folds``: (repeats x cases) arrays (one row for external validation; folds
    None there)."""
    predictions = np.atleast_2d(predictions)
    folds = np.zeros_like(predictions, dtype=int) if folds is None else np.atleast_2d(folds)
    if is_survival(y):
        time, event = survival_arrays(y)

        def c_index(index):
            return np.array([metrics.harrell_c(time[index], event[index], p[index], f[index])
                             for p, f in zip(predictions, folds)], dtype=float)

        return {"c_index": c_index}
    y = np.asarray(y).astype(int)
    statistics = {"auc": lambda index: fold_auc_per_repeat(y, predictions, folds, index)}
    hits = None if thresholds is None else predictions >= np.atleast_2d(thresholds)
    for name, function in _binary_metric_functions(hits is not None).items():
        def statistic(index, function=function):
            return np.array([function(y[index], predictions[r, index], None if hits is None else hits[r, index])
                             for r in range(predictions.shape[0])], dtype=float)

        statistics[name] = statistic
    return statistics


def metric_statistics(y, predictions: np.ndarray, thresholds: np.ndarray | None, folds: np.ndarray | None) -> dict:
    """metric name -> statistic(index): the mean over repeats of ``repeat_statistics`` (the reported value)."""
    return {name: (lambda index, per_repeat=per_repeat: float(np.mean(per_repeat(index))))
            for name, per_repeat in repeat_statistics(y, predictions, thresholds, folds).items()}


def performance(y, predictions: np.ndarray, thresholds: np.ndarray | None, folds: np.ndarray | None,
                n_bootstrap: int, seed, procedure_replicates: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Metric rows {metric, value, ci_lower, ci_upper, n_cases}.

    ``predictions``, ``thresholds``, ``folds``: (repeats x cases) arrays (one row for external validation; folds
    None there). AUC is computed within each test fold and averaged over folds and repeats: pooling predictions of
    different fold models before ranking is biased downwards when the models differ in calibration (a model that
    learned nothing predicts its training prevalence, which anti-correlates with the test fold's; Forman & Scholz
    2010); the C-index likewise counts only pairs within a test fold. Brier score, calibration, sensitivity and
    specificity use the pooled out-of-fold predictions of each repeat, averaged over repeats.

    95 % intervals: with ``procedure_replicates`` (the metrics of the whole procedure rerun on bootstrap cohorts,
    ``procedure_bootstrap``: per repeat, or repeat-averaged) the interval of ``intervals.procedure_interval``, which
    carries the variation of the fitted models and of the fold split (the latter measured on the data from the
    repeats' spread); its test-case part is the case bootstrap below. Without them (external validation, where
    the model is fixed, or ``n_bootstrap_procedure: 0``) the percentile case bootstrap (resampled with replacement,
    each case keeping its fold; the same resample applied to every repeat), conditional on the fitted models.
    """
    predictions = np.atleast_2d(predictions)
    n = predictions.shape[1]
    rows = []
    for i, (name, per_repeat) in enumerate(repeat_statistics(y, predictions, thresholds, folds).items()):
        def statistic(index, per_repeat=per_repeat):
            return float(np.mean(per_repeat(index)))

        repeat_values = per_repeat(np.arange(n))
        value = float(np.mean(repeat_values))
        fixed = metrics.bootstrap_replicates(statistic, n, n_bootstrap, [seed, 6, i]) if n_bootstrap > 0 \
            else np.zeros(0)
        if procedure_replicates is not None:  # no defined replicate: no interval, not the narrower one
            low, high = procedure_interval(value, fixed, procedure_replicates.get(name, np.full(1, np.nan)),
                                           bounds=BOUNDS.get(name, (-np.inf, np.inf)),
                                           logit_scale=name in LOGIT_SCALE_METRICS, repeat_estimates=repeat_values)
        else:
            defined = fixed[np.isfinite(fixed)]
            if defined.size and defined.size >= n_bootstrap / 2:
                low, high = (float(q) for q in np.quantile(defined, [0.025, 0.975]))
            else:
                low, high = float("nan"), float("nan")
        rows.append({"metric": name, "value": value, "ci_lower": low, "ci_upper": high, "n_cases": n})
    return rows


def procedure_bootstrap(model, grid, x: pd.DataFrame, y, centre: np.ndarray | None, cv: CVSettings,
                        binary_thresholds: bool, n_bootstrap: int, seed, n_jobs: int = 1) -> dict[str, np.ndarray]:
    """The metrics of the whole nested CV rerun on ``n_bootstrap`` stratified bootstrap cohorts (copies of a case in
    one fold; see ``radflow.modelling.intervals``): metric name -> (n_bootstrap x outer repeats) replicate values,
    the metric of each repeat (NaN where a replicate is undefined)."""
    labels = outcome_labels(y)

    def evaluate(index, rng):
        x_b = x.iloc[index].reset_index(drop=True)
        y_b = _subset(y, index)
        centre_b = None if centre is None else centre[index]
        try:
            folds = nested_cv(model, grid, x_b, y_b, centre_b, cv, n_jobs=1, groups=index)
        except ValueError as error:  # e.g. a training fold with one class: this replicate is undefined (NaN)
            log.warning("bootstrap cohort left out: %s", error)
            return {}
        predictions, thresholds, fold_of = oof_matrix(folds, len(index), cv.outer_repeats)
        statistics = repeat_statistics(y_b, predictions, thresholds if binary_thresholds else None, fold_of)
        everything = np.arange(len(index))
        return {f"{name}{_REPEAT}{r}": float(value) for name, statistic in statistics.items()
                for r, value in enumerate(statistic(everything))}

    flat = replicate_metrics(evaluate, labels, n_bootstrap, seed, n_jobs=n_jobs)
    names = sorted({key.split(_REPEAT)[0] for key in flat})
    return {name: np.column_stack([flat.get(f"{name}{_REPEAT}{r}", np.full(n_bootstrap, np.nan))
                                   for r in range(cv.outer_repeats)]) for name in names}


# Separates a metric's name from its repeat number in the replicate dictionaries of ``procedure_bootstrap``.
_REPEAT = "#repeat"


def delong_paired(y, predictions_a: np.ndarray, predictions_b: np.ndarray) -> dict[str, float]:
    """DeLong test of two models' AUCs on the same cases' out-of-fold predictions ((repeats x cases) each): the test
    on each repeat's pooled predictions, difference and standard error averaged over repeats, two-sided p from
    their ratio (repeats share cases, so their errors are not averaged down)."""
    from scipy.stats import norm

    tests = [metrics.delong_test(np.asarray(y), a, b)
             for a, b in zip(np.atleast_2d(predictions_a), np.atleast_2d(predictions_b))]
    difference = float(np.mean([t["difference"] for t in tests]))
    se = float(np.mean([t["se"] for t in tests]))
    p = float(2 * norm.sf(abs(difference / se))) if np.isfinite(se) and se > 0 else float("nan")
    return {"difference": difference, "se": se, "p_value": p}
