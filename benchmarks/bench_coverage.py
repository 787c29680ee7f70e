"""Coverage of radflow's 95 % intervals for cross-validated AUC, Brier score and C-index, by simulation.

For each scenario (binary or survival outcome; null or a planted signal; 40 or 200 cases) the script draws
``--datasets`` cohorts and, for each, does what the modelling stage does:

* the estimate: 5-fold x 2-repeat stratified cross-validation of a feature-selecting learner; AUC averaged over test
  folds and repeats, Brier score and Harrell's C-index on each repeat's pooled out-of-fold predictions, averaged
  over repeats (``radflow.modelling.validation``'s definitions);
* the interval: ``radflow.modelling.intervals`` (stratified bootstrap cohorts, the whole cross-validation rerun on
  each with every copy of a case in one fold, metrics kept per repeat; V = V_test + S_real + 0.365 max(V_boot -
  V_test - S_boot, 0): the test-case part from the case bootstrap with the fold models fixed, the fold-split part
  from the spread of the data's repeats, the model part from the replicates with their own split part removed;
  Student t quantile with Satterthwaite df; AUC and C-index on the logit scale), ``--bootstrap`` replicates;
* for comparison, the round-2 interval (V_test + 0.365 max(V_boot - V_test, 0), normal quantile), the percentile
  interval of the same replicates, and the interval radflow reported before round 1: the percentile case bootstrap
  of the out-of-fold predictions with the fold models held fixed.

The truth an interval should contain is the expected performance of the procedure fitted on n cases of that
population: 0.5 exactly for AUC and C-index under the null; otherwise the mean, over the simulated cohorts, of the
performance on 4,000 (survival: 1,500) new cases of the model fitted on all n cases of the cohort (Monte-Carlo error
in the table). The table also gives the coverage of that cohort's own final model's performance ("Err_XY").

The learner is cheap but built like the pipeline's: standardise on the training fold, rank the 30 features by a
univariate statistic (t-statistic; survival: Cox score test), keep the best 5, and fit on them (binary: diagonal
linear discriminant, i.e. a naive-Bayes logistic model, giving probabilities; survival: one-step Cox estimates from
0 per kept feature). The pipeline's ComBat, redundancy step and inner tuning are not simulated (no batch effect is
planted; the learner has no hyper-parameter).

Data: 30 standard-normal features; binary: 40 % events, the 3 informative features shifted by 0.69 SD in the event
class (Bayes AUC 0.80); survival: exponential event times with hazard exp(0.45 (x1 + x2 + x3)), uniform censoring
(~30 % censored).

    .venv/bin/python benchmarks/bench_coverage.py                        # 200 data sets a scenario, ~15 min on 1 core
    .venv/bin/python benchmarks/bench_coverage.py --datasets 20 --bootstrap 50 --sizes 40   # a quick look
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit, logit
from scipy.stats import norm

from radflow.modelling import metrics
from radflow.modelling.intervals import (LOGIT_SCALE_METRICS, MODEL_PART_WEIGHT, basic_interval, grouped_folds,
                                        percentile_interval, procedure_interval, replicate_metrics)

N_FEATURES, N_INFORMATIVE, N_KEPT = 30, 3, 5
OUTER_FOLDS, OUTER_REPEATS = 5, 2
PREVALENCE, SHIFT = 0.4, 0.69  # Bayes AUC = Phi(sqrt(3) * 0.69 / sqrt(2)) = 0.80
HAZARD_LOG_RATIO = 0.45
CENSOR_MAX = 3.2
TEST_CASES = {"binary": 4000, "survival": 1500}


# ------------------------------------------------------------------------------------------------------- data

def binary_cohort(n: int, signal: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_events = int(round(PREVALENCE * n))
    y = np.zeros(n, dtype=int)
    y[:n_events] = 1
    y = rng.permutation(y)
    x = rng.normal(size=(n, N_FEATURES))
    if signal:
        x[:, :N_INFORMATIVE] += SHIFT * y[:, None]
    return x, y


def survival_cohort(n: int, signal: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, N_FEATURES))
    eta = HAZARD_LOG_RATIO * x[:, :N_INFORMATIVE].sum(axis=1) if signal else np.zeros(n)
    event_time = rng.exponential(size=n) / np.exp(eta)
    censor_time = rng.uniform(0, CENSOR_MAX, size=n)
    y = np.empty(n, dtype=[("event", bool), ("time", float)])
    y["event"] = event_time <= censor_time
    y["time"] = np.minimum(event_time, censor_time)
    return x, y


# ----------------------------------------------------------------------------------------------- learners

def _standardise(x):
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return mean, sd


def fit_binary(x: np.ndarray, y: np.ndarray):
    mean, sd = _standardise(x)
    z = (x - mean) / sd
    pos, neg = z[y == 1], z[y == 0]
    m1, m0 = pos.mean(axis=0), neg.mean(axis=0)
    pooled = (((pos - m1) ** 2).sum(axis=0) + ((neg - m0) ** 2).sum(axis=0)) / max(len(z) - 2, 1)
    pooled = np.maximum(pooled, 1e-12)
    t = (m1 - m0) / np.sqrt(pooled * (1 / len(pos) + 1 / len(neg)))
    kept = np.argsort(-np.abs(t), kind="stable")[:N_KEPT]
    w = np.zeros(x.shape[1])
    w[kept] = (m1 - m0)[kept] / pooled[kept]
    b = -w @ ((m1 + m0) / 2) + np.log(len(pos) / len(neg))
    return mean, sd, w, b


def predict_binary(model, x: np.ndarray) -> np.ndarray:
    mean, sd, w, b = model
    return expit(((x - mean) / sd) @ w + b)


def fit_survival(x: np.ndarray, y: np.ndarray):
    mean, sd = _standardise(x)
    z = (x - mean) / sd
    order = np.argsort(-y["time"], kind="stable")  # descending: the risk set of position i is positions 0..i
    zs, event = z[order], y["event"][order]
    # risk set of position i: every case with time >= t_i, tied times included (bootstrap copies tie)
    times = y["time"][order]
    last = np.searchsorted(-times, -times, side="right") - 1
    at_risk = (last + 1)[:, None]
    risk_mean = np.cumsum(zs, axis=0)[last] / at_risk
    risk_var = np.cumsum(zs ** 2, axis=0)[last] / at_risk - risk_mean ** 2
    score = (zs - risk_mean)[event].sum(axis=0)
    information = np.maximum(risk_var[event].sum(axis=0), 1e-12)
    kept = np.argsort(-np.abs(score / np.sqrt(information)), kind="stable")[:N_KEPT]
    w = np.zeros(x.shape[1])
    w[kept] = score[kept] / information[kept]
    return mean, sd, w


def predict_survival(model, x: np.ndarray) -> np.ndarray:
    mean, sd, w = model
    return ((x - mean) / sd) @ w


# ----------------------------------------------------------------------------------------- cross-validation

def strata_of(y) -> np.ndarray:
    return y["event"].astype(int) if y.dtype.names else y


def cross_validate(x, y, groups, rng) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """(metrics, out-of-fold predictions (repeats x cases), folds (repeats x cases))."""
    survival = y.dtype.names is not None
    fit, predict = (fit_survival, predict_survival) if survival else (fit_binary, predict_binary)
    predictions = np.empty((OUTER_REPEATS, len(y)))
    folds = np.empty((OUTER_REPEATS, len(y)), dtype=int)
    for r in range(OUTER_REPEATS):
        folds[r] = grouped_folds(strata_of(y), groups, OUTER_FOLDS, rng)
        for f in range(OUTER_FOLDS):
            test = folds[r] == f
            predictions[r, test] = predict(fit(x[~test], y[~test]), x[test])
    return summarise(y, predictions, folds), predictions, folds


def fold_mean_auc(y, predictions, folds, index=None) -> float:
    index = np.arange(len(y)) if index is None else index
    per_repeat: list[float] = []
    for r in range(predictions.shape[0]):
        fold_of, p, labels = folds[r, index], predictions[r, index], y[index]
        values = [metrics.auc(labels[fold_of == f], p[fold_of == f]) for f in range(OUTER_FOLDS)]
        values = [v for v in values if np.isfinite(v)]
        per_repeat.append(float(np.mean(values)) if values else np.nan)
    return float(np.mean(per_repeat))


def summarise_repeats(y, predictions, folds) -> dict[str, np.ndarray]:
    """Each metric of each repeat (an array, one value a repeat)."""
    if y.dtype.names:
        return {"c_index": np.array([metrics.harrell_c(y["time"], y["event"], p, f)
                                     for p, f in zip(predictions, folds)])}
    return {"auc": np.array([fold_mean_auc(y, p[None], f[None]) for p, f in zip(predictions, folds)]),
            "brier": np.array([metrics.brier(y, p) for p in predictions])}


def summarise(y, predictions, folds) -> dict[str, float]:
    """The reported metrics: the mean over repeats of ``summarise_repeats``."""
    return {name: float(np.mean(values)) for name, values in summarise_repeats(y, predictions, folds).items()}


def new_case_performance(x, y, x_test, y_test) -> dict[str, float]:
    """Performance on new cases of the model fitted on the whole cohort."""
    if y.dtype.names:
        risk = predict_survival(fit_survival(x, y), x_test)
        return {"c_index": metrics.harrell_c(y_test["time"], y_test["event"], risk)}
    p = predict_binary(fit_binary(x, y), x_test)
    return {"auc": metrics.auc(y_test, p), "brier": metrics.brier(y_test, p)}


# ----------------------------------------------------------------------------------------------- scenario

def one_dataset(task: str, n: int, signal: bool, index: int, n_bootstrap: int, seed: int) -> dict:
    make = survival_cohort if task == "survival" else binary_cohort
    rng = np.random.default_rng([seed, index])
    x, y = make(n, signal, rng)
    x_test, y_test = make(TEST_CASES[task], signal, rng)
    estimate, predictions, folds = cross_validate(x, y, np.arange(n), np.random.default_rng([seed, index, 1]))
    repeat_estimates = summarise_repeats(y, predictions, folds)

    def evaluate(sample, replicate_rng):
        _, sample_predictions, sample_folds = cross_validate(x[sample], y[sample], sample, replicate_rng)
        per_repeat = summarise_repeats(y[sample], sample_predictions, sample_folds)
        return {f"{name}#{r}": float(value) for name, values in per_repeat.items() for r, value in enumerate(values)}

    flat = replicate_metrics(evaluate, strata_of(y), n_bootstrap, [seed, index, 2])
    # per repeat (replicates x repeats), and the replicates of the reported (repeat-averaged) metric
    per_repeat = {name: np.column_stack([flat[f"{name}#{r}"] for r in range(OUTER_REPEATS)]) for name in estimate}
    replicates = {name: values.mean(axis=1) for name, values in per_repeat.items()}
    out: dict[str, Any] = {"estimate": estimate, "final_model": new_case_performance(x, y, x_test, y_test), "basic": {},
           "percentile": {}, "replicate_sd": {name: float(np.nanstd(v, ddof=1)) for name, v in replicates.items()},
           "replicate_mean": {name: float(np.nanmean(v)) for name, v in replicates.items()}}
    for name, value in estimate.items():
        out["basic"][name] = basic_interval(value, replicates[name])
        out["percentile"][name] = percentile_interval(replicates[name])
    # the test-case part: case bootstrap of the out-of-fold predictions with the fold models fixed (alone, the
    # interval radflow reported before)
    def fixed_statistic(name: str):
        return lambda sample: summarise(y[sample], predictions[:, sample], folds[:, sample])[name]

    fixed = {name: metrics.bootstrap_replicates(fixed_statistic(name), n, n_bootstrap, [seed, index, 3])
             for name in estimate}
    out["fixed_models"] = {name: percentile_interval(values) for name, values in fixed.items()}
    out["scaled"] = {name: scaled_interval(value, replicates[name]) for name, value in estimate.items()}
    out["radflow"] = {name: procedure_interval(value, fixed[name], per_repeat[name], bounds=(0.0, 1.0),
                                               logit_scale=name in LOGIT_SCALE_METRICS,
                                               repeat_estimates=repeat_estimates[name])
                      for name, value in estimate.items()}
    out["round2"] = {name: round2_interval(value, fixed[name], replicates[name], name in LOGIT_SCALE_METRICS)
                     for name, value in estimate.items()}
    # the raw replicates, so that other interval constructions can be compared without re-simulating
    out["replicates"] = {name: {"procedure_per_repeat": per_repeat[name].tolist(), "fixed_models": fixed[name].tolist(),
                                "estimate_per_repeat": repeat_estimates[name].tolist()} for name in estimate}
    return out


def round2_interval(estimate, fixed, replicates, logit_scale):
    """The interval radflow reported before (round 2), for comparison: V = V_test + w max(V_boot - V_test, 0) on the
    linear scale of the repeat-averaged replicates, mapped to the logit scale by the delta method, z quantile."""
    v_test, v_boot = np.nanvar(fixed, ddof=1), np.nanvar(replicates, ddof=1)
    sd = np.sqrt(v_test + MODEL_PART_WEIGHT * max(v_boot - v_test, 0.0))
    if logit_scale and 0 < estimate < 1:
        half = norm.ppf(0.975) * sd / (estimate * (1 - estimate))
        return float(expit(logit(estimate) - half)), float(expit(logit(estimate) + half))
    return max(estimate - norm.ppf(0.975) * sd, 0.0), min(estimate + norm.ppf(0.975) * sd, 1.0)


def scaled_interval(estimate, replicates):
    """t +/- z sqrt(0.632 V_boot): the alternative of scaling the whole bootstrap variance, for comparison."""
    sd = np.sqrt(0.632 * np.nanvar(replicates, ddof=1))
    return estimate - 1.96 * sd, estimate + 1.96 * sd


def coverage(results: list[dict], metric: str, kind: str, truth: float) -> float:
    hits = [r[kind][metric][0] <= truth <= r[kind][metric][1] for r in results]
    return 100.0 * float(np.mean(hits))


def xy_coverage(results: list[dict], metric: str) -> float:
    hits = [r["radflow"][metric][0] <= r["final_model"][metric] <= r["radflow"][metric][1] for r in results]
    return 100.0 * float(np.mean(hits))


def run_scenario(task, n, signal, n_datasets, n_bootstrap, seed, datasets_out: Path | None = None) -> list[dict]:
    rows = []
    results = [one_dataset(task, n, signal, i, n_bootstrap, seed) for i in range(n_datasets)]
    if datasets_out is not None:
        datasets_out.parent.mkdir(parents=True, exist_ok=True)
        datasets_out.write_text(json.dumps(results))
    for metric in results[0]["estimate"]:
        final = np.array([r["final_model"][metric] for r in results])
        exact = metric in ("auc", "c_index") and not signal
        truth = 0.5 if exact else float(final.mean())
        truth_se = 0.0 if exact else float(final.std(ddof=1) / np.sqrt(len(final)))
        estimates = np.array([r["estimate"][metric] for r in results])
        widths = np.array([r["radflow"][metric][1] - r["radflow"][metric][0] for r in results])
        row = {"task": task, "n": n, "signal": signal, "metric": metric, "datasets": n_datasets,
               "bootstrap": n_bootstrap, "truth": truth, "truth_mc_se": truth_se,
               "mean_estimate": float(estimates.mean()), "mean_width": float(widths.mean()),
               "sd_estimate": float(estimates.std(ddof=1)),
               "mean_replicate_sd": float(np.mean([r["replicate_sd"][metric] for r in results])),
               "mean_replicate_shift": float(np.mean([r["replicate_mean"][metric] - r["estimate"][metric]
                                                      for r in results])),
               "coverage": coverage(results, metric, "radflow", truth),
               "coverage_basic": coverage(results, metric, "basic", truth),
               "coverage_scaled": coverage(results, metric, "scaled", truth),
               "coverage_round2": coverage(results, metric, "round2", truth),
               "coverage_percentile": coverage(results, metric, "percentile", truth),
               "coverage_err_xy": xy_coverage(results, metric),
               "coverage_fixed_models": coverage(results, metric, "fixed_models", truth)}
        row["coverage_se"] = float(np.sqrt(row["coverage"] * (100 - row["coverage"]) / n_datasets))
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| outcome | n | truth | metric | true value | mean estimate | mean width | coverage (radflow) "
             "| round 2 | 0.632 V_boot | percentile | basic | fixed fold models (old) | final model's own (Err_XY) |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        truth = f"{r['truth']:.3f}" + (f" ± {r['truth_mc_se']:.3f}" if r["truth_mc_se"] else "")
        lines.append(
            f"| {r['task']} | {r['n']} | {'signal' if r['signal'] else 'null'} | {r['metric']} | {truth} | "
            f"{r['mean_estimate']:.3f} | {r['mean_width']:.3f} | **{r['coverage']:.1f} %** "
            f"(± {r['coverage_se']:.1f}) | {r['coverage_round2']:.1f} % | {r['coverage_scaled']:.1f} % | {r['coverage_percentile']:.1f} % | {r['coverage_basic']:.1f} % | "
            f"{r['coverage_fixed_models']:.1f} % | {r['coverage_err_xy']:.1f} % |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 200])
    parser.add_argument("--tasks", nargs="+", default=["binary", "survival"])
    parser.add_argument("--truths", nargs="+", default=["null", "signal"], choices=["null", "signal"])
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "coverage.json")
    args = parser.parse_args()
    rows = []
    for task in args.tasks:
        for n in args.sizes:
            for signal in [truth == "signal" for truth in args.truths]:
                start = time.perf_counter()
                truth = "signal" if signal else "null"
                datasets_out = args.out.with_name(f"{args.out.stem}_{task}_{n}_{truth}_datasets.json")
                new = run_scenario(task, n, signal, args.datasets, args.bootstrap, args.seed, datasets_out)
                for row in new:
                    row["seconds"] = time.perf_counter() - start
                rows += new
                print(markdown(new).splitlines()[-len(new):] and "\n".join(markdown(new).splitlines()[2:]),
                      f"  ({time.perf_counter() - start:.0f} s)", flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rows, indent=1))
    print(markdown(rows))


if __name__ == "__main__":
    main()
