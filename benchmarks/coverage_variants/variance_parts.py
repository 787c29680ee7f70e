"""Per row: the estimate's bias and mean squared error around the truth, the means of the three variance parts of
``radflow.modelling.intervals.procedure_variance`` (V_test, S_real, the weighted model part), how often the model
part is negative before its clip, and the coverage of radflow's interval (issue 13, round 6 diagnosis).

    .venv/bin/python benchmarks/coverage_variants/variance_parts.py REPLICATES_DIR   # per_repeat_replicates.py output
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from radflow.modelling.intervals import MODEL_PART_WEIGHT, procedure_interval
from score import replicates, variance_parts

ROWS = [(task, key, metric, n, kind) for task, key, metric in (("binary", "fm", "auc"), ("survival", "hc", "c_index"))
        for n in (40, 200) for kind in ("null", "signal")]


def parts(record: dict, key: str) -> tuple[float, float, float, float, tuple[float, float]]:
    """(t, V_test, S_real, model part before the clip, radflow's interval) of one data set."""
    repeats, procedure, fixed = replicates(record, key)
    v_test, v_boot, s_real, s_boot = variance_parts(repeats, procedure, fixed)
    interval = procedure_interval(float(repeats.mean()), fixed, procedure, bounds=(0.0, 1.0), logit_scale=True,
                                  repeat_estimates=repeats)
    return float(repeats.mean()), v_test, s_real, v_boot - v_test - s_boot, interval


def main(folder: Path) -> None:
    print("| metric | n | truth | bias | MSE | E V_test | E S_real | E w max(M, 0) | E V / MSE | P(M < 0) | coverage |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for task, key, metric, n, kind in ROWS:
        records = json.loads((folder / f"{task}_{n}_{kind}.json").read_text())
        truth = 0.5 if kind == "null" else float(np.mean([r["final_model"][metric] for r in records]))
        rows = [parts(r, key) for r in records]
        t = np.array([r[0] for r in rows])
        v_test, s_real, model = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
        weighted = MODEL_PART_WEIGHT * np.maximum(model, 0.0)
        mse = float(np.mean((t - truth) ** 2))
        covered = np.mean([lo <= truth <= hi for *_, (lo, hi) in rows])
        print(f"| {metric} | {n} | {kind} | {np.mean(t - truth):+.4f} | {mse:.5f} | {v_test.mean():.5f} | "
              f"{s_real.mean():.5f} | {weighted.mean():.5f} | {(v_test + s_real + weighted).mean() / mse:.2f} | "
              f"{np.mean(model < 0):.2f} | {100 * covered:.1f} % |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
