"""Modelling benchmark: the full modelling stage for 500 cases x 1,000 features on 2 cores.

A synthetic cohort shaped like a radiomics study: two centres with a location/scale batch effect on every feature,
features in correlated groups (as texture families are), a binary outcome and a survival time driven by one latent
variable that five features measure with noise, age and sex. It is written as the stage's inputs (a long feature
Parquet table of 500,000 rows and a clinical table) and run through ``radflow.pipeline.model.model_stage`` with the
default ``model`` configuration (3 binary models and 1 survival model, 5 x 2 nested CV with 3 inner folds, 200
bootstrap resamples, 100 outcome permutations of the first model), so the wall time includes reading, pivoting,
every fit, metrics, the permutation test, final models and writing.

Also reported: one nested CV of the first model alone (the unit the permutation test repeats), and the planted
signal's AUC / C-index as a sanity check.

    .venv/bin/python benchmarks/bench_modelling.py [--cases 500] [--features 1000] [--jobs 2] [--permutations 100]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from radflow.modelling import validation
from radflow.modelling.data import feature_matrix, modelling_frame
from radflow.modelling.models import LEARNERS, make_model
from radflow.modelling.study import StudyConfig, targets
from radflow.pipeline.model import model_stage

GROUP_SIZE = 8  # features per correlated group


def synthetic_cohort(n_cases: int, n_features: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(long feature table, clinical table)."""
    rng = np.random.default_rng(seed)
    centre = np.where(rng.uniform(size=n_cases) < 0.5, "A", "B")
    latent = rng.normal(size=n_cases)
    groups = rng.normal(size=(n_cases, n_features // GROUP_SIZE + 1))
    x = np.repeat(groups, GROUP_SIZE, axis=1)[:, :n_features] + 0.4 * rng.normal(size=(n_cases, n_features))
    x[:, :5] = latent[:, None] + 0.6 * rng.normal(size=(n_cases, 5))
    in_b = centre == "B"
    x[in_b] = x[in_b] * rng.uniform(0.7, 1.5, n_features) + rng.uniform(-0.8, 0.8, n_features)
    x = x * rng.uniform(0.5, 50, n_features) + rng.uniform(-100, 100, n_features)
    cases = [f"case-{i:05d}" for i in range(n_cases)]
    codes = [f"B{j:04d}" for j in range(n_features)]
    features = pd.DataFrame({
        "case_id": np.repeat(cases, n_features), "scan": "test", "roi": "GTV", "settings_id": "bench0000000",
        "family": "synthetic", "feature": np.tile([f"feature {j}" for j in range(n_features)], n_cases),
        "ibsi_code": np.tile(codes, n_cases), "aggregation": "none", "value": x.ravel(), "reason": None,
    })
    age = np.round(rng.normal(65, 9, n_cases))
    outcome = (1.2 * latent + 0.02 * (age - 65) + rng.logistic(size=n_cases) * 0.6 > 0).astype(int)
    time_to_event = rng.exponential(24 * np.exp(-0.7 * latent))
    follow_up = rng.uniform(12, 60, n_cases)
    clinical = pd.DataFrame({
        "case_id": cases, "centre": centre, "outcome": outcome,
        "survival_time": np.round(np.minimum(time_to_event, follow_up), 1),
        "event": (time_to_event <= follow_up).astype(int), "age": age,
        "sex": np.where(rng.uniform(size=n_cases) < 0.5, "F", "M"),
    })
    return features, clinical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--permutations", type=int, default=100)
    args = parser.parse_args()

    features, clinical = synthetic_cohort(args.cases, args.features)
    options = {"n_permutations": args.permutations}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        features.to_parquet(folder / "features.parquet", index=False)
        clinical.to_parquet(folder / "clinical.parquet", index=False)

        config = StudyConfig.from_dict(options)
        start = time.perf_counter()
        matrix, _ = feature_matrix(features)
        frame = modelling_frame(matrix, clinical, "centre", config["covariates"])
        _, y = targets(clinical, frame.index, config, "binary")
        spec = config.specs[0]
        model = make_model(spec.learner, spec.feature_set, config.preprocessing, config["seed"])
        with threadpool_limits(1):
            t0 = time.perf_counter()
            validation.nested_cv(model, LEARNERS[spec.learner].grid, frame, y,
                                 frame["clinical:centre"].to_numpy(), config.cv)
            one_cv = time.perf_counter() - t0

        start = time.perf_counter()
        out = model_stage([folder / "features.parquet"], [], folder / "clinical.parquet", None, options,
                          folder / "tables", folder / "models", n_jobs=args.jobs)
        wall = time.perf_counter() - start

    metrics = out["metrics"]
    print(f"cohort: {args.cases} cases x {args.features} features ({len(features):,} feature rows), "
          f"{args.jobs} jobs, {args.permutations} permutations")
    print(f"one nested CV of {spec.model_id} ({config.cv.outer_folds}x{config.cv.outer_repeats} outer, "
          f"{config.cv.inner_folds} inner), 1 thread: {one_cv:.1f} s")
    print(f"modelling stage (read, pivot, {len(config.specs)} models, bootstrap, permutation test, final fits, "
          f"write): {wall:.1f} s wall")
    shown = metrics[metrics["metric"].isin(["auc", "c_index", "permutation_p_value"])]
    for row in shown.itertuples():
        print(f"  {row.model_id:32s} {row.metric:20s} {row.value:.3f} [{row.ci_lower:.3f}, {row.ci_upper:.3f}]")


if __name__ == "__main__":
    main()
