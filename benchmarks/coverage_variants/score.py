"""Coverage of interval constructions on the stored per-repeat replicates (issue 13, round 4).

    .venv/bin/python benchmarks/coverage_variants/score.py REPLICATES_DIR [--blocks 0:200,200:400,400:600]
    .venv/bin/python benchmarks/coverage_variants/score.py REPLICATES_DIR --subsampling SUBSAMPLES_DIR

Rows n40 null / n40 signal / n200 null / n200 signal; truth 0.5 for AUC and C-index under the null, else the mean
over the data sets of the final model's performance on new cases. "radflow" is
``radflow.modelling.intervals.procedure_interval`` itself; the others are written out here.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import expit, logit
from scipy.stats import norm
from scipy.stats import t as student_t

from radflow.modelling.intervals import MODEL_PART_WEIGHT, procedure_interval, procedure_variance

Z = norm.ppf(0.975)
SCENARIOS = [(n, truth) for n in (40, 200) for truth in ("null", "signal")]
METRICS = (("binary", "fm", "auc", True), ("survival", "hc", "c_index", True), ("binary", "brier", "brier", False))


def _var(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(np.var(values[np.isfinite(values)], ddof=1))


def _logit(values) -> np.ndarray:
    return logit(np.clip(np.asarray(values, dtype=float), 1e-3, 1 - 1e-3))


def _finish(t: float, variance: float, quantile: float, on_logit: bool) -> tuple[float, float]:
    if on_logit:
        half = quantile * np.sqrt(variance) / (t * (1 - t))
        return float(expit(logit(t) - half)), float(expit(logit(t) + half))
    half = quantile * np.sqrt(variance)
    return max(t - half, 0.0), min(t + half, 1.0)


def replicates(record: dict, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the R repeats' estimates, the whole-procedure replicates per repeat (B x R), the fixed-model replicates)."""
    n_repeats = sum(name.rsplit("_", 1)[0] == key for name in record["est"])
    repeats = np.array([record["est"][f"{key}_{r}"] for r in range(n_repeats)])
    procedure = np.column_stack([record["proc"][f"{key}_{r}"] for r in range(n_repeats)])
    return repeats, procedure, np.array(record["fixed"][key], dtype=float)


def variance_parts(repeats: np.ndarray, procedure: np.ndarray, fixed: np.ndarray) -> tuple[float, float, float, float]:
    """(V_test, V_boot, S_real, S_boot) on the linear scale, as ``procedure_variance`` forms them."""
    v_test, v_boot = _var(fixed), _var(procedure.mean(axis=1))
    s_real = float(np.var(repeats, ddof=1)) / repeats.size
    s_boot = float(np.nanmean(np.var(procedure, axis=1, ddof=1))) / repeats.size
    return v_test, v_boot, s_real, s_boot


def constructions(record: dict, key: str, logit_scale: bool, sub: dict | None = None) -> tuple[float, dict]:
    repeats, procedure, fixed = replicates(record, key)
    t = float(repeats.mean())
    on_logit = logit_scale and 0 < t < 1
    w = MODEL_PART_WEIGHT
    out = {"radflow (split + Satterthwaite t, delta)": procedure_interval(
        t, fixed, procedure, bounds=(0.0, 1.0), logit_scale=logit_scale, repeat_estimates=repeats)}
    if on_logit:  # the same V and df on the linear and the arcsine-square-root scale (delta method)
        out["split + Satterthwaite t, linear scale"] = procedure_interval(
            t, fixed, procedure, bounds=(0.0, 1.0), logit_scale=False, repeat_estimates=repeats)
        variance, df = procedure_variance(fixed, procedure, repeats)
        half = student_t.ppf(0.975, df) * np.sqrt(variance) / (2 * np.sqrt(t * (1 - t)))
        centre = np.arcsin(np.sqrt(t))
        out["split + Satterthwaite t, arcsine-sqrt scale"] = (
            float(np.sin(max(centre - half, 0.0)) ** 2), float(np.sin(min(centre + half, np.pi / 2)) ** 2))
    v_test, v_boot, s_real, s_boot = variance_parts(repeats, procedure, fixed)
    out["round 2: V_test + w (V_boot - V_test), z"] = _finish(t, v_test + w * max(v_boot - v_test, 0), Z, on_logit)
    out["split, z"] = _finish(t, v_test + s_real + w * max(v_boot - v_test - s_boot, 0), Z, on_logit)
    out["S_real + 0.632 (V_boot - S_boot), z"] = _finish(t, s_real + 0.632 * max(v_boot - s_boot, 0), Z, on_logit)
    if on_logit:  # the variances of the replicates' logits instead of the delta method
        vt, vb = _var(_logit(fixed)), _var(_logit(procedure.mean(axis=1)))
        sr = float(np.var(_logit(repeats), ddof=1)) / repeats.size
        sb = float(np.nanmean(np.var(_logit(procedure), axis=1, ddof=1))) / repeats.size
        model = w * max(vb - vt - sb, 0)
        v = vt + sr + model
        df = v ** 2 / (sr ** 2 + vt ** 2 / (fixed.size - 1) + model ** 2 / (procedure.shape[0] - 1))
        half = student_t.ppf(0.975, df) * np.sqrt(v)
        out["logit-of-replicates split + Satterthwaite t"] = (float(expit(logit(t) - half)),
                                                              float(expit(logit(t) + half)))
    if sub is not None and on_logit:  # subsampling without replacement, variances of the logits
        for fraction, label in (("0.5", "n/2"), ("0.8", "0.8 n")):
            reps = np.column_stack([sub["sub"][fraction][f"{key}_0"], sub["sub"][fraction][f"{key}_1"]])
            v_sub = _var(_logit(reps.mean(axis=1)))
            s_sub = float(np.nanmean(np.var(_logit(reps), axis=1, ddof=1))) / 2
            sr = float(np.var(_logit(repeats), ddof=1)) / 2
            vt = _var(_logit(fixed))
            factor = 1 / np.sqrt(3) if fraction == "0.5" else 2.0
            for name, v in ((f"subsample {label}: S_real + {factor:.3g} (V_sub - S_sub)",
                             sr + factor * max(v_sub - s_sub, 0)),
                            (f"subsample {label}: V_test + S_real + {factor:.3g} (V_sub - S_sub - V_test)",
                             vt + sr + factor * max(v_sub - s_sub - vt, 0))):
                out[name] = (float(expit(logit(t) - Z * np.sqrt(v))), float(expit(logit(t) + Z * np.sqrt(v))))
    return t, out


def score(folder: Path, blocks: list[tuple[int, int]], sub_folder: Path | None = None) -> dict:
    table: dict = {}
    for task, key, metric, logit_scale in METRICS:
        if sub_folder is not None and metric == "brier":
            continue
        for n, truth_kind in SCENARIOS:
            records = json.loads((folder / f"{task}_{n}_{truth_kind}.json").read_text())
            subs = None
            if sub_folder is not None:
                subs = json.loads((sub_folder / f"{task}_{n}_{truth_kind}.json").read_text())
                records = records[:len(subs)]
            final = np.array([r["final_model"][metric] for r in records])
            exact = truth_kind == "null" and metric != "brier"
            truth = 0.5 if exact else float(final.mean())
            per = [constructions(r, key, logit_scale, None if subs is None else subs[i]) for i, r in enumerate(records)]
            for name in per[0][1]:
                hits = np.array([o[name][0] <= truth <= o[name][1] for _, o in per])
                cells = [100 * hits.mean()] + [100 * hits[a:b].mean() for a, b in blocks]
                table.setdefault(name, {})[(metric, n, truth_kind)] = cells
    return table


def print_rows(table: dict[str, dict], heading: str) -> None:
    """``table`` (row name -> {(metric, n, truth): cell}) as markdown rows, AUC then C-index, each cell the rows
    n40 null / n40 signal / n200 null / n200 signal ("-" where one was not measured)."""
    print(f"| {heading} | AUC | C-index |\n| --- | --- | --- |")
    for name, cells in table.items():
        print(f"| {name} | " + " | ".join(" / ".join(cells.get((metric, n, truth), "-") for n, truth in SCENARIOS)
                                          for metric in ("auc", "c_index")) + " |")


def measure_or_score(measure, score_parts) -> None:
    """The command line of the scripts that measure something more on the cohorts of ``per_repeat_replicates.py``
    and score constructions with it: ``measure SEED DATA_SETS REPLICATES OUTDIR [TASKS]`` or
    ``score REPLICATES_DIR OUTDIR``."""
    if sys.argv[1] == "measure":
        tasks = sys.argv[6].split(",") if len(sys.argv) > 6 else ["binary", "survival"]
        measure(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]), tasks)
    else:
        score_parts(Path(sys.argv[2]), Path(sys.argv[3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--blocks", default="")
    parser.add_argument("--subsampling", type=Path)
    args = parser.parse_args()
    blocks = [(int(b.split(":")[0]), int(b.split(":")[1])) for b in args.blocks.split(",") if b]
    table = score(args.folder, blocks, args.subsampling)
    labels = ["all"] + [f"{a}-{b}" for a, b in blocks]
    print("| construction | data sets | AUC | C-index | Brier |")
    print("| --- | --- | --- | --- | --- |")
    for name, rows in table.items():
        for i, label in enumerate(labels):
            cells = []
            for metric in ("auc", "c_index", "brier"):
                keys = [(metric, n, kind) for n, kind in SCENARIOS if (metric, n, kind) in rows]
                cells.append(" / ".join(f"{rows[k][i]:.1f}" for k in keys) if keys else "")
            print(f"| {name} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
