"""Pipeline rule `stability`: test-retest / segmentation / perturbation stability of every feature, and the stable
feature set, from the per-batch feature tables (written as Parquet under interim/stability/ for the store rule)."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from radflow.stability.design import designs_for_perturbation, designs_for_segmentation, designs_for_test_retest
from radflow.stability.options import StabilityOptions
from radflow.stability.selection import fraction_kept_by_family, select_stable
from radflow.stability.table import stability_tables

log = logging.getLogger(__name__)

FEATURE_COLUMNS = ["case_id", "scan", "roi", "settings_id", "family", "feature", "ibsi_code", "aggregation", "value"]


def read_tables(paths: list[Path], columns: list[str]) -> pd.DataFrame:
    frames = [pd.read_parquet(p, columns=columns) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else "object") for c in columns})
    return pd.concat(frames, ignore_index=True)


NO_RETEST_ADVICE = ("for a cohort without retest scans set stability.method: perturbation (perturbed copies of each "
                    "test scan, Zwanenburg et al. 2019) in the configuration")


def with_retest_pairs(designs, scans: list[str]):
    """The test-retest designs with at least two cases scanned twice; each other design is reported (no ICC is
    computed from fewer than two complete pairs, instead of one NaN row per feature)."""
    for design in designs:
        n_pairs = len(design.subjects_used())
        if n_pairs >= 2:
            yield design
            continue
        log.warning("test-retest stability of settings %s, ROI %s skipped: %d of %d cases have both a test and a "
                    "retest scan (scans found: %s); %s", design.settings_id, design.roi, n_pairs,
                    len(design.subjects), ", ".join(scans) or "none", NO_RETEST_ADVICE)


def designs(options: StabilityOptions, feature_files: list[Path], perturbed_files: list[Path]):
    if "test-retest" in options.methods or "segmentation" in options.methods:
        features = read_tables(feature_files, FEATURE_COLUMNS)
        if "test-retest" in options.methods:
            yield from with_retest_pairs(designs_for_test_retest(features), sorted(set(features["scan"])))
        if "segmentation" in options.methods:
            yield from designs_for_segmentation(features, options.segmentation_groups)
    if "perturbation" in options.methods:
        if not perturbed_files:
            raise ValueError("stability.method perturbation needs the perturbed feature tables (rule perturb)")
        yield from designs_for_perturbation(read_tables(perturbed_files, [*FEATURE_COLUMNS, "perturbation"]))


def run_stability(options: StabilityOptions, feature_files: list[Path], perturbed_files: list[Path],
                  stability_out: Path, stable_out: Path, cases_out: Path) -> None:
    stability, cases = stability_tables(designs(options, feature_files, perturbed_files), options.icc_form_of,
                                        options.confidence_level)
    stable = select_stable(stability, options.min_icc_ci_low)
    if stability.empty:
        log.warning("no repeated measurements for %s: the stability tables are empty", ",".join(options.methods))
    for row in fraction_kept_by_family(stability, stable).itertuples(index=False):
        log.info("%s %s %-20s %3d of %3d features kept (lower ICC bound >= %.2f)", row.settings_id, row.roi,
                 row.family, row.kept, row.assessed, options.min_icc_ci_low)
    for path, table in ((stability_out, stability), (stable_out, stable), (cases_out, cases)):
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path, index=False)
