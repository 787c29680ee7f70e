"""Subsampling replicates (without replacement) of the whole CV procedure, per repeat, for the coverage cohorts
(issue 13, round 4: option "subsampling instead of the bootstrap for the model part").

For every cohort of ``bench_coverage.py`` (same seeds) it draws B stratified subsamples of round(f n) cases without
replacement, f in FRACTIONS, reruns the 5-fold x 2-repeat CV on each and stores the per-repeat metrics.
``score.py --subsampling`` scores variance constructions on them together with ``per_repeat_replicates.py``'s files.

    nice -n 19 .venv/bin/python benchmarks/coverage_variants/subsampling.py 2023 200 200 OUTDIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from per_repeat_replicates import bc, stats, write_scenarios  # noqa: E402

FRACTIONS = (0.8, 0.5)


def subsample(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    parts = [rng.choice(members, size=int(round(fraction * members.size)), replace=False)
             for members in (np.flatnonzero(labels == value) for value in np.unique(labels))]
    return np.sort(np.concatenate(parts))


def one(task: str, n: int, signal: bool, index: int, n_replicates: int, seed: int) -> dict:
    make = bc.survival_cohort if task == "survival" else bc.binary_cohort
    rng = np.random.default_rng([seed, index])
    x, y = make(n, signal, rng)
    _, predictions, folds = bc.cross_validate(x, y, np.arange(n), np.random.default_rng([seed, index, 1]))
    labels = bc.strata_of(y)
    out: dict = {"est": stats(y, predictions, folds), "sub": {}}
    for j, fraction in enumerate(FRACTIONS):
        replicates = []
        for b in range(n_replicates):
            replicate_rng = np.random.default_rng([seed, index, 5, j, b])
            sample = subsample(labels, fraction, replicate_rng)
            _, sample_predictions, sample_folds = bc.cross_validate(x[sample], y[sample], sample, replicate_rng)
            replicates.append(stats(y[sample], sample_predictions, sample_folds))
        out["sub"][str(fraction)] = {key: [r[key] for r in replicates] for key in replicates[0]}
    return out


def main() -> None:
    seed, n_datasets, n_replicates, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    write_scenarios(one, ["binary", "survival"], n_datasets, n_replicates, seed, out)


if __name__ == "__main__":
    main()
