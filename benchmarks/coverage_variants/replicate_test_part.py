"""The bootstrap world's own test-case part (issue 13, round 8).

Round 4's model part is w max(V_boot - V_test - S_boot, 0): the variance of the whole-procedure replicates less the
split noise and less the *real* cohort's test-case part V_test. But a bootstrap cohort holds copies (63 % distinct
cases, the copies of a case in one test fold), so its own test-case part is larger than V_test, and the difference
stays in the model part even where no model variation exists (under the null the fitted models all have AUC 0.5).
Round 6 found the model part surplus exactly there (C-index, 40 cases, null: V_test + S_real already 1.03 of the
mean squared error). This script measures, for every whole-procedure replicate, the test-case part of that replicate
(the same case bootstrap of its out-of-fold predictions that gives V_test, ``INNER`` resamples), so that the model part
can be formed as V_boot - mean_b V_test,b - S_boot, and scores constructions with it.

Same cohorts, learner, folds and random streams as ``per_repeat_replicates.py`` (the replicates' metrics are
identical to the ones it stores; ``score`` checks that), plus one stream ``[seed, index, 5]`` for the inner resamples.

    .venv/bin/python benchmarks/coverage_variants/replicate_test_part.py measure 2023 200 200 OUTDIR [binary,survival]
    .venv/bin/python benchmarks/coverage_variants/replicate_test_part.py score REPLICATES_DIR OUTDIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_coverage as bc  # noqa: E402
from per_repeat_replicates import stats, write_scenarios  # noqa: E402
from score import measure_or_score, print_rows, replicates, variance_parts  # noqa: E402

from radflow.modelling.intervals import procedure_interval, replicate_metrics, split_variance, variance_interval  # noqa: E402

INNER = 10  # case resamples per replicate: their variance is noisy, its mean over 200 replicates is not
WEIGHTS = (0.365, 0.632, 1.0)
METRICS = (("binary", "fm", "auc"), ("survival", "hc", "c_index"))


def test_part(y, predictions, folds, rng: np.random.Generator, n_resamples: int) -> dict[str, float]:
    """metric -> variance of the repeat-averaged metric over ``n_resamples`` case resamples of the out-of-fold
    ``predictions`` with the fold models fixed (what gives V_test on the real cohort)."""
    n, repeats = y.shape[0], predictions.shape[0]
    samples = [rng.integers(0, n, size=n) for _ in range(n_resamples)]
    if not y.dtype.names:
        return {"fm": float(np.nanvar(_fold_mean_auc(y, predictions, folds, samples), ddof=1))}
    draws: dict[str, list[float]] = {}
    for sample in samples:
        values = stats(y[sample], predictions[:, sample], folds[:, sample])
        for key in {k.rsplit("_", 1)[0] for k in values}:
            draws.setdefault(key, []).append(float(np.nanmean([values[f"{key}_{r}"] for r in range(repeats)])))
    return {key: float(np.nanvar(np.array(v), ddof=1)) for key, v in draws.items()}


def _fold_mean_auc(y, predictions, folds, samples) -> np.ndarray:
    """The repeat-averaged fold-mean AUC of ``stats`` on every resample, at once: a resample weights each case by
    its number of copies, and a fold's AUC is sum_ij w_i w_j H(p_i - p_j) / (sum_i w_i sum_j w_j) over its positive
    cases i and negative cases j (H: 1, 1/2 at a tie), the Mann-Whitney statistic ``metrics.auc`` ranks for."""
    weights = np.array([np.bincount(sample, minlength=y.shape[0]) for sample in samples], dtype=float)
    per_repeat = []
    for p, fold_of in zip(predictions, folds):
        aucs = []
        for fold in np.unique(fold_of):
            positive, negative = (fold_of == fold) & (y == 1), (fold_of == fold) & (y == 0)
            wins = (p[positive][:, None] > p[negative][None, :]) + 0.5 * (p[positive][:, None] == p[negative][None, :])
            w_pos, w_neg = weights[:, positive], weights[:, negative]
            pairs = w_pos.sum(axis=1) * w_neg.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                aucs.append(np.einsum("bi,ij,bj->b", w_pos, wins, w_neg) / np.where(pairs > 0, pairs, np.nan))
        with np.errstate(invalid="ignore"):
            per_repeat.append(np.nanmean(np.array(aucs), axis=0))
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.array(per_repeat), axis=0)


def one(task: str, n: int, signal: bool, index: int, n_bootstrap: int, seed: int) -> dict:
    make = bc.survival_cohort if task == "survival" else bc.binary_cohort
    x, y = make(n, signal, np.random.default_rng([seed, index]))
    inner_rng = np.random.default_rng([seed, index, 5])
    parts: list[dict[str, float]] = []

    def evaluate(sample, replicate_rng):
        _, sample_predictions, sample_folds = bc.cross_validate(x[sample], y[sample], sample, replicate_rng)
        parts.append(test_part(y[sample], sample_predictions, sample_folds, inner_rng, INNER))
        return stats(y[sample], sample_predictions, sample_folds)

    procedure = replicate_metrics(evaluate, bc.strata_of(y), n_bootstrap, [seed, index, 2])
    return {"proc": {key: values.tolist() for key, values in procedure.items()},
            "v_test_boot": {key: [p.get(key, np.nan) for p in parts] for key in parts[0]}}


def score(replicates_dir: Path, parts_dir: Path) -> None:
    table: dict[str, dict] = {}
    for task, key, metric in METRICS:
        for n in (40, 200):
            for kind in ("null", "signal"):
                if not (parts_dir / f"{task}_{n}_{kind}.json").exists():  # not measured (yet)
                    continue
                records = json.loads((replicates_dir / f"{task}_{n}_{kind}.json").read_text())
                parts = json.loads((parts_dir / f"{task}_{n}_{kind}.json").read_text())
                records = records[:len(parts)]
                truth = 0.5 if kind == "null" else float(np.mean([r["final_model"][metric] for r in records]))
                hits: dict[str, list[bool]] = {}
                sums: dict[str, list[float]] = {}
                for record, part in zip(records, parts):
                    repeats, procedure, fixed = replicates(record, key)
                    stored = np.column_stack([part["proc"][f"{key}_{r}"] for r in range(repeats.size)])
                    if not np.array_equal(stored, procedure, equal_nan=True):
                        raise SystemExit(f"{task} {n} {kind}: replicates differ from {replicates_dir}")
                    t = float(repeats.mean())
                    v_test, v_boot, s_real, s_boot = variance_parts(repeats, procedure, fixed)
                    v_test_boot = float(np.nanmean(part["v_test_boot"][key]))
                    sums.setdefault("squared error", []).append((t - truth) ** 2)
                    sums.setdefault("V_test", []).append(v_test)
                    sums.setdefault("S_real", []).append(s_real)
                    sums.setdefault("mean_b V_test,b", []).append(v_test_boot)
                    sums.setdefault("M = V_boot - V_test - S_boot", []).append(v_boot - v_test - s_boot)
                    sums.setdefault("M' = V_boot - mean_b V_test,b - S_boot", []).append(
                        v_boot - v_test_boot - s_boot)
                    low, high = procedure_interval(t, fixed, procedure, bounds=(0.0, 1.0), logit_scale=True,
                                                   repeat_estimates=repeats)
                    hits.setdefault("radflow (round 4)", []).append(low <= truth <= high)
                    n_procedure = int(np.isfinite(procedure.mean(axis=1)).sum())
                    for weight in WEIGHTS:
                        # split_variance forms w max(V_boot' - V_test - S_boot, 0) with V_boot' chosen so that its
                        # model part is w max(M', 0)
                        v, df = split_variance(v_test, s_real, v_boot - v_test_boot + v_test, s_boot, repeats.size,
                                               int(np.isfinite(fixed).sum()), n_procedure, weight)
                        low, high = variance_interval(t, v, df, bounds=(0.0, 1.0), logit_scale=True)
                        hits.setdefault(f"w max(M', 0), w {weight}", []).append(low <= truth <= high)
                        sums.setdefault(f"E V / MSE, w {weight}", []).append(v)
                mse = float(np.mean(sums["squared error"]))
                for name, h in hits.items():
                    table.setdefault(name, {})[(metric, n, kind)] = f"{100 * np.mean(h):.1f}"
                for name, values in sums.items():
                    mean = float(np.mean(values))
                    table.setdefault(name, {})[(metric, n, kind)] = (f"{mean / mse:.2f}" if name.startswith("E V")
                                                                    else f"{mean:.5f}")
                needed = mse - np.mean(sums["V_test"]) - np.mean(sums["S_real"])
                table.setdefault("needed: MSE - V_test - S_real", {})[(metric, n, kind)] = f"{needed:.5f}"
    print_rows(table, "quantity")


def measure(seed: int, n_datasets: int, n_bootstrap: int, out: Path, tasks: list[str]) -> None:
    write_scenarios(one, tasks, n_datasets, n_bootstrap, seed, out)


if __name__ == "__main__":
    measure_or_score(measure, score)
