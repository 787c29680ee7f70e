"""The test-case part V_test resampled within the design's strata (issue 13, round 7).

radflow's V_test is the case bootstrap of the out-of-fold predictions with the fold models fixed, resampling the
whole cohort: a resample's test folds then hold varying numbers of cases and of each outcome, while the real design
(stratified folds) fixes them. This script measures, on the cohorts of ``per_repeat_replicates.py`` (same seeds,
so the same data sets and predictions), V_test resampled within every test fold x outcome stratum of each repeat
(the repeats combined with the correlation the whole-cohort resample shows between them), and scores the round-4
construction with it in place of V_test, for several weights of the model part.

    .venv/bin/python benchmarks/coverage_variants/test_part_strata.py measure 2023 200 200 OUTDIR [binary,survival]
    .venv/bin/python benchmarks/coverage_variants/test_part_strata.py score REPLICATES_DIR OUTDIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_coverage as bc  # noqa: E402
from per_repeat_replicates import stats  # noqa: E402
from score import measure_or_score, print_rows, replicates, variance_parts  # noqa: E402

from radflow.modelling.intervals import (  # noqa: E402
    procedure_interval, split_variance, stratified_resample, variance_interval)

WEIGHTS = (0.365, 0.5, 0.632, 0.8)
METRICS = (("binary", "fm", "auc"), ("survival", "hc", "c_index"))


def test_part(task: str, n: int, signal: bool, index: int, n_bootstrap: int, seed: int) -> dict:
    """metric -> V_test by whole-cohort resampling ("whole", the stream radflow uses) and within fold x outcome
    strata ("strata"), with the per-repeat variances and the repeats' correlation."""
    make = bc.survival_cohort if task == "survival" else bc.binary_cohort
    x, y = make(n, signal, np.random.default_rng([seed, index]))
    _, predictions, folds = bc.cross_validate(x, y, np.arange(n), np.random.default_rng([seed, index, 1]))
    repeats = predictions.shape[0]
    names = sorted({key.rsplit("_", 1)[0] for key in stats(y, predictions, folds)})
    whole_rng = np.random.default_rng([seed, index, 3])
    whole = {name: [] for name in names}
    for _ in range(n_bootstrap):
        sample = whole_rng.integers(0, n, size=n)
        values = stats(y[sample], predictions[:, sample], folds[:, sample])
        for name in names:
            whole[name].append([values[f"{name}_{r}"] for r in range(repeats)])
    strata_rng = np.random.default_rng([seed, index, 4])
    within = {name: [[] for _ in range(repeats)] for name in names}
    for r in range(repeats):
        strata = folds[r] * 2 + bc.strata_of(y)
        for _ in range(n_bootstrap):
            sample = stratified_resample(strata, strata_rng)
            values = stats(y[sample], predictions[r:r + 1, sample], folds[r:r + 1, sample])
            for name in names:
                within[name][r].append(values[f"{name}_0"])
    out = {}
    for name in names:
        per_repeat = np.array(whole[name], dtype=float)
        per_repeat = per_repeat[np.all(np.isfinite(per_repeat), axis=1)]
        rho = float(np.corrcoef(per_repeat.T)[0, 1])
        v = np.array([np.nanvar(np.array(within[name][r], dtype=float), ddof=1) for r in range(repeats)])
        out[name] = {"whole": float(np.var(per_repeat.mean(axis=1), ddof=1)),
                     "strata": float((v.sum() + 2 * rho * np.sqrt(v[0] * v[1])) / repeats ** 2),
                     "whole_per_repeat": np.var(per_repeat, axis=0, ddof=1).tolist(),
                     "strata_per_repeat": v.tolist(), "rho": rho}
    return out


def measure(seed: int, n_datasets: int, n_bootstrap: int, out: Path, tasks: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        for n in (40, 200):
            for kind in ("null", "signal"):
                rows = [test_part(task, n, kind == "signal", i, n_bootstrap, seed) for i in range(n_datasets)]
                (out / f"{task}_{n}_{kind}.json").write_text(json.dumps(rows))
                for name in rows[0]:
                    whole = np.mean([r[name]["whole"] for r in rows])
                    strata = np.mean([r[name]["strata"] for r in rows])
                    print(f"{task} {n} {kind} {name}: E V_test whole {whole:.5f}, within strata {strata:.5f} "
                          f"({strata / whole:.3f})", flush=True)


def score(replicates_dir: Path, strata_dir: Path) -> None:
    table: dict[str, dict] = {}
    for task, key, metric in METRICS:
        for n in (40, 200):
            for kind in ("null", "signal"):
                records = json.loads((replicates_dir / f"{task}_{n}_{kind}.json").read_text())
                parts = json.loads((strata_dir / f"{task}_{n}_{kind}.json").read_text())
                records = records[:len(parts)]
                truth = 0.5 if kind == "null" else float(np.mean([r["final_model"][metric] for r in records]))
                hits: dict[str, list[bool]] = {}
                variances: dict[str, list[float]] = {}
                errors = []
                for record, part in zip(records, parts):
                    repeats, procedure, fixed = replicates(record, key)
                    t = float(repeats.mean())
                    errors.append((t - truth) ** 2)
                    _, v_boot, s_real, s_boot = variance_parts(repeats, procedure, fixed)
                    low, high = procedure_interval(t, fixed, procedure, bounds=(0.0, 1.0), logit_scale=True,
                                                   repeat_estimates=repeats)
                    hits.setdefault("radflow (round 4)", []).append(low <= truth <= high)
                    defined = procedure.mean(axis=1)
                    for weight in WEIGHTS:  # round 4's interval with the within-strata V_test (B replicates too)
                        v, df = split_variance(part[key]["strata"], s_real, v_boot, s_boot, repeats.size, int(np.isfinite(fixed).sum()),
                                               int(np.isfinite(defined).sum()), weight)
                        low, high = variance_interval(t, v, df, bounds=(0.0, 1.0), logit_scale=True)
                        hits.setdefault(f"V_test within strata, w {weight}", []).append(low <= truth <= high)
                        variances.setdefault(f"E V / MSE, w {weight}", []).append(v)
                for name, h in hits.items():
                    table.setdefault(name, {})[(metric, n, kind)] = f"{100 * np.mean(h):.1f}"
                for name, v in variances.items():
                    table.setdefault(name, {})[(metric, n, kind)] = f"{np.mean(v) / np.mean(errors):.2f}"
    print_rows(table, "construction")


if __name__ == "__main__":
    measure_or_score(measure, score)
