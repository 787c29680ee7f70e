"""Stability benchmark: 1,000 cases x 2 scans x 2,000 features, and the stability report of a demo run.

Timings (wall clock, best of ``--repeats``):

* ``statistics``: ICC (each form) with its interval, Lin's CCC with interval, wCV and Bland-Altman of the
  (2000, 1000, 2) array, the numbers the ``stability`` table holds;
* ``stage``: the stability stage from the long feature table (4 M rows, as the batches' Parquet files hold it):
  pivot, statistics, stable-feature selection; and the same with Parquet reading and writing (``run_stability``);
* ``per-feature loop``: a direct per-feature implementation (the one the tests check against) on 100 features,
  scaled to 2000, for comparison.

With ``--demo-run DIR`` (a finished demo workflow directory, e.g. after ``snakemake -c 2 --directory DIR``) it also
reports the features kept per family and checks the features the demo generator makes noise-driven: for each
feature, the share of its variance that the per-scan noise level (ground_truth.csv) explains, from the regression
of the within-centre test-retest difference on the noise-level difference.

    .venv/bin/python benchmarks/bench_stability.py [--repeats 3] [--demo-run DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from radflow.pipeline.stability import run_stability
from radflow.stability.design import designs_for_test_retest
from radflow.stability.icc import ICC_FORMS
from radflow.stability.options import StabilityOptions
from radflow.stability.selection import fraction_kept_by_family, select_stable
from radflow.stability.summary import stability_statistics
from radflow.stability.table import stability_tables

N_CASES, N_FEATURES = 1000, 2000
FAMILIES = ("morphology", "statistics", "intensity_histogram", "glcm", "glrlm", "glszm", "gldzm", "ngtdm", "ngldm")


def synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(values (features, cases, 2), true ICC per feature): case effect SD 1, noise SD from 0.05 to 2."""
    rng = np.random.default_rng(seed)
    noise_sd = np.geomspace(0.05, 2.0, N_FEATURES)
    offsets = rng.uniform(-100, 1e4, N_FEATURES)[:, None, None]
    values = offsets + rng.standard_normal((N_FEATURES, N_CASES, 1)) + noise_sd[:, None, None] * rng.standard_normal(
        (N_FEATURES, N_CASES, 2))
    return values, 1.0 / (1.0 + noise_sd**2)


def long_table(values: np.ndarray) -> pd.DataFrame:
    """The features stage's layout: one row per case, scan and feature."""
    f, i, j = (a.ravel() for a in np.indices(values.shape))
    codes = np.array([f"F{k:04d}" for k in range(N_FEATURES)])
    families = np.array([FAMILIES[k % len(FAMILIES)] for k in range(N_FEATURES)])
    cases = np.array([f"case-{k:04d}" for k in range(N_CASES)])
    return pd.DataFrame({
        "case_id": cases[i], "scan": np.array(["test", "retest"])[j], "roi": "GTV", "settings_id": "bench",
        "family": families[f], "feature": codes[f], "ibsi_code": codes[f], "aggregation": "none",
        "value": values.ravel(), "reason": None,
    })


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def per_feature_loop(values: np.ndarray) -> list:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_stability_statistics import reference_ccc, reference_icc

    return [(reference_icc(v, "ICC(2,1)"), reference_ccc(v[:, 0], v[:, 1])) for v in values]


def benchmark(repeats: int) -> None:
    values, true_icc = synthetic()
    print(f"{N_CASES} cases x 2 scans x {N_FEATURES} features")
    for form in ICC_FORMS:
        seconds, stats = best_of(repeats, lambda form=form: stability_statistics(values, form))
        print(f"  statistics ({form}, CCC, wCV, Bland-Altman): {seconds:.3f} s")
    covered = np.mean((stats["ci_low"] <= true_icc) & (true_icc <= stats["ci_high"]))
    print(f"  95% ICC intervals covering the true ICC: {covered:.3f}")

    table = long_table(values)
    options = StabilityOptions.from_dict({})

    def stage():
        stability, _ = stability_tables(designs_for_test_retest(table), options.icc_form_of, 0.95)
        return select_stable(stability, options.min_icc_ci_low)

    seconds, stable = best_of(repeats, stage)
    print(f"  stage from {len(table):,} long rows (pivot, statistics, selection): {seconds:.3f} s; "
          f"{len(stable)} features kept (true ICC >= 0.75: {(true_icc >= 0.75).sum()})")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = []
        for b, chunk in enumerate(np.array_split(np.arange(N_CASES), 100)):  # 100 batches of 10 cases
            cases = {f"case-{k:04d}" for k in chunk}
            files.append(folder / f"b{b:04d}.parquet")
            table[table.case_id.isin(cases)].to_parquet(files[-1], index=False)
        outputs = [folder / name for name in ("stability.parquet", "stable.parquet", "cases.parquet")]
        seconds, _ = best_of(repeats, lambda: run_stability(options, files, [], *outputs))
        print(f"  run_stability with Parquet I/O (100 batch files): {seconds:.3f} s")

    seconds, _ = best_of(1, lambda: per_feature_loop(values[:100]))
    print(f"  per-feature loop (direct formulas, 100 features): {seconds:.3f} s "
          f"-> {seconds * N_FEATURES / 100:.1f} s for {N_FEATURES}")


def demo_report(run: Path) -> None:
    """Features kept per family on a demo run, and how the noise-driven ones fare."""
    from radflow.dicom.deid import DEMO_KEY
    from radflow.pipeline.discover import case_id_of

    stability = pd.read_parquet(run / "interim" / "stability" / "stability.parquet")
    stable = pd.read_parquet(run / "interim" / "stability" / "stable_features.parquet")
    print(f"\ndemo run {run}: {stability['n'].max()} cases")
    print(fraction_kept_by_family(stability, stable).to_string(index=False))

    truth = pd.read_csv(run / "resources" / "demo" / "ground_truth.csv", dtype={"patient_id": str})
    truth.index = [case_id_of(p, DEMO_KEY) for p in truth["patient_id"]]
    features = pd.concat(pd.read_parquet(p) for p in sorted((run / "interim" / "batches").glob("*/features.parquet")))
    features = features[features["settings_id"] == stability["settings_id"].iloc[0]]
    wide = features.pivot_table(index="case_id", columns=["ibsi_code", "aggregation", "scan"], values="value",
                                aggfunc="first")
    centre = truth.loc[wide.index, "centre"]
    noise_test, noise_retest = truth.loc[wide.index, "noise_sd_test_hu"], truth.loc[wide.index, "noise_sd_retest_hu"]

    def within_centre(x: pd.Series) -> pd.Series:
        return x - x.groupby(centre).transform("mean")

    noise_levels = pd.concat([within_centre(noise_test), within_centre(noise_retest)])
    d_noise = within_centre(noise_retest - noise_test)
    share = {}
    for code, aggregation in {(c, a) for c, a, _ in wide.columns}:
        test, retest = wide[(code, aggregation, "test")], wide[(code, aggregation, "retest")]
        ok = test.notna() & retest.notna()
        d = within_centre((retest - test)[ok])
        dn = d_noise[ok]
        slope = (d * dn).sum() / (dn * dn).sum()  # feature units per HU of noise SD
        total = pd.concat([test[ok], retest[ok]]).var()
        share[(code, aggregation)] = slope**2 * noise_levels.var() / total if total > 0 else 0.0
    table = stability.set_index(["ibsi_code", "aggregation"])
    table["noise_share"] = pd.Series(share)
    table["kept"] = table.set_index(table.index).index.isin(stable.set_index(["ibsi_code", "aggregation"]).index)
    print("\nnoise-driven features (share of variance explained by the per-scan noise level):")
    for threshold in (0.05, 0.10, 0.20):
        driven = table["noise_share"] >= threshold
        print(f"  share >= {threshold:.2f}: {driven.sum():3d} features, {(driven & ~table.kept).sum():3d} excluded; "
              f"below: {(~driven).sum():3d} features, {(~driven & ~table.kept).sum():3d} excluded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--demo-run", type=Path, help="a finished demo workflow directory")
    args = parser.parse_args()
    benchmark(args.repeats)
    if args.demo_run:
        demo_report(args.demo_run)


if __name__ == "__main__":
    main()
