"""Per-repeat replicates for scoring interval constructions without re-simulating (issue 13, round 4).

Same cohorts, learner, 5-fold x 2-repeat CV and seeds as ``bench_coverage.py``; for every cohort it stores the
per-repeat fold-mean AUC and Brier score (binary) or within-fold Harrell C (survival) of the data and of each of B
whole-procedure bootstrap replicates (stratified, copies of a case in one fold), the repeat-averaged fixed-model case
bootstrap (B values), and the final model's performance on new cases. ``score.py`` scores constructions on them.

    nice -n 19 .venv/bin/python benchmarks/coverage_variants/per_repeat_replicates.py 2026 600 200 OUTDIR
    .../per_repeat_replicates.py 2023 200 200 OUTDIR binary 5      # 5 outer repeats instead of the default 2
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_coverage as bc  # noqa: E402

from radflow.modelling import metrics  # noqa: E402
from radflow.modelling.intervals import replicate_metrics  # noqa: E402


def binary_stats(y, p, fold_of) -> dict[str, float]:
    per_fold = [metrics.auc(y[fold_of == f], p[fold_of == f]) for f in np.unique(fold_of)]
    per_fold = [a for a in per_fold if np.isfinite(a)]
    return {"fm": float(np.mean(per_fold)) if per_fold else np.nan, "brier": metrics.brier(y, p)}


def survival_stats(y, p, fold_of) -> dict[str, float]:
    return {"hc": metrics.harrell_c(y["time"], y["event"], p, fold_of)}


def stats(y, predictions, folds) -> dict[str, float]:
    """metric_repeat -> value."""
    function = survival_stats if y.dtype.names else binary_stats
    return {f"{name}_{r}": float(value) for r in range(predictions.shape[0])
            for name, value in function(y, predictions[r], folds[r]).items()}


def one(task: str, n: int, signal: bool, index: int, n_bootstrap: int, seed: int) -> dict:
    make = bc.survival_cohort if task == "survival" else bc.binary_cohort
    rng = np.random.default_rng([seed, index])
    x, y = make(n, signal, rng)
    x_test, y_test = make(bc.TEST_CASES[task], signal, rng)
    _, predictions, folds = bc.cross_validate(x, y, np.arange(n), np.random.default_rng([seed, index, 1]))
    estimate = stats(y, predictions, folds)

    def evaluate(sample, replicate_rng):
        _, sample_predictions, sample_folds = bc.cross_validate(x[sample], y[sample], sample, replicate_rng)
        return stats(y[sample], sample_predictions, sample_folds)

    procedure = replicate_metrics(evaluate, bc.strata_of(y), n_bootstrap, [seed, index, 2])
    names = sorted({key.rsplit("_", 1)[0] for key in estimate})
    fixed_rng = np.random.default_rng([seed, index, 3])  # the stream of metrics.bootstrap_replicates
    fixed: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(n_bootstrap):
        sample = fixed_rng.integers(0, n, size=n)
        values = stats(y[sample], predictions[:, sample], folds[:, sample])
        for name in names:
            fixed[name].append(float(np.nanmean([values[f"{name}_{r}"] for r in range(predictions.shape[0])])))
    return {"est": estimate, "final_model": bc.new_case_performance(x, y, x_test, y_test),
            "proc": {key: values.tolist() for key, values in procedure.items()}, "fixed": fixed}


def write_scenarios(cohort, tasks: list[str], n_datasets: int, n_replicates: int, seed: int, out: Path) -> None:
    """``cohort(task, n, signal, index, n_replicates, seed)`` for every scenario's data sets, one JSON file each."""
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        for n in (40, 200):
            for signal in (False, True):
                start = time.time()
                results = [cohort(task, n, signal, i, n_replicates, seed) for i in range(n_datasets)]
                name = out / f"{task}_{n}_{'signal' if signal else 'null'}.json"
                name.write_text(json.dumps(results))
                print(name, f"{time.time() - start:.0f} s", flush=True)


def main() -> None:
    seed, n_datasets, n_bootstrap, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    tasks = sys.argv[5].split(",") if len(sys.argv) > 5 else ["binary", "survival"]
    if len(sys.argv) > 6:  # the outer repeats of the cross-validation (bench_coverage's design: 2, radflow's default)
        bc.OUTER_REPEATS = int(sys.argv[6])
    write_scenarios(one, tasks, n_datasets, n_bootstrap, seed, out)


if __name__ == "__main__":
    main()
