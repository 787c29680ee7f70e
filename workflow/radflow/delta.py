"""Delta radiomics: the change of every feature between a patient's baseline and follow-up scans, next to the
feature's smallest detectable change (SDC) from the test-retest scans.

Pairs: per case and modality, the baseline scan (``test``, ``pt_test``, ...) with the first scan of each follow-up
timepoint (``fu1``, ``pt_fu1``, ...; ``radflow.timepoints``), per ROI, feature and aggregation, **only when both
values were computed with the same settings id**. A feature whose baseline and follow-up settings ids differ (a
rerun with changed settings for some scans, or documents that apply to one scan only) gets no delta and a
``DELTA_SETTINGS_MISMATCH`` QC row naming the ids; a follow-up without a usable baseline scan a
``DELTA_BASELINE_MISSING`` row.

    delta_absolute = x_followup - x_baseline
    delta_relative = (x_followup - x_baseline) / |x_baseline|        (NaN when x_baseline = 0)

Smallest detectable change (de Vet et al., J Clin Epidemiol 2006; Weir, J Strength Cond Res 2005): the change
that exceeds measurement error with 95 % confidence,

    SDC = 1.96 * sqrt(2) * SEM,   SEM = sqrt(error mean square of the ICC's ANOVA)

the error mean square being the residual MSE for ICC(2,1) and ICC(3,1) and the within-subject MSW for ICC(1,1)
(``radflow.stability.anova``), from the cases with both a baseline test and a same-day retest scan of the
modality. ``exceeds_sdc`` is |delta_absolute| > SDC (NULL where no SDC could be estimated).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from radflow.stability.anova import mean_squares
from radflow.stability.design import pivot
from radflow.timepoints import follow_up_index, split_label

SDC_Z = 1.96
KEY = ["case_id", "roi", "settings_id", "ibsi_code", "aggregation"]
DELTA_COLUMNS = ["case_id", "roi", "settings_id", "family", "feature", "ibsi_code", "aggregation", "baseline_scan",
                 "followup_scan", "timepoint", "days_between", "baseline_value", "followup_value", "delta_absolute",
                 "delta_relative", "sdc", "exceeds_sdc"]
SDC_COLUMNS = ["settings_id", "roi", "ibsi_code", "aggregation", "sdc_n", "sem", "sdc"]
QC_COLUMNS = ["case_id", "scan", "roi", "check_code", "severity", "message", "value"]


def error_mean_square(values: np.ndarray, icc_form: str) -> tuple[np.ndarray, np.ndarray]:
    """(error mean square, complete subjects) per feature of test-retest values (F, n, 2): MSW for ICC(1,1), the
    residual MSE for the two-way forms."""
    ms = mean_squares(values)
    error = ms.within_subjects if icc_form == "ICC(1,1)" else ms.residual
    return error, ms.n


def sdc_from_error_mean_square(error_ms) -> np.ndarray:
    """SDC = 1.96 * sqrt(2) * sqrt(error mean square)."""
    return SDC_Z * math.sqrt(2.0) * np.sqrt(np.asarray(error_ms, dtype=np.float64))


def sdc_table(features: pd.DataFrame, icc_form: str = "ICC(2,1)") -> pd.DataFrame:
    """SDC per settings id, ROI, feature and aggregation from each modality's baseline test-retest pairs."""
    prefix = features["scan"].map(lambda s: split_label(s)[0])
    base = features["scan"].map(lambda s: split_label(s)[1])
    rows = features.assign(pair=base, prefix=prefix)
    rows = rows[rows["pair"].isin(["test", "retest"])]
    tables = []
    for (settings_id, roi, _prefix), group in rows.groupby(["settings_id", "roi", "prefix"], sort=True):
        if set(group["pair"]) != {"test", "retest"}:
            continue
        keys, _, values = pivot(group, "case_id", "pair", ["test", "retest"])
        error, n = error_mean_square(values, icc_form)
        table = keys[["ibsi_code", "aggregation"]].copy()
        table.insert(0, "roi", roi)
        table.insert(0, "settings_id", settings_id)
        table["sdc_n"] = n
        table["sem"] = np.sqrt(error)
        table["sdc"] = sdc_from_error_mean_square(error)
        tables.append(table)
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in SDC_COLUMNS})
    # a settings id applies to one modality; a generic one measured on several keeps the first modality's SDC
    return pd.concat(tables, ignore_index=True).drop_duplicates(["settings_id", "roi", "ibsi_code", "aggregation"])


def scan_pairs(scans: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple]]:
    """(baseline/follow-up pairs, QC rows): ``scans`` has case_id, scan, status, days_from_baseline."""
    usable = scans[scans["status"] != "fail"]
    present = set(zip(usable["case_id"], usable["scan"]))
    days = dict(zip(zip(scans["case_id"], scans["scan"]), scans["days_from_baseline"]))
    pairs, qc = [], []
    for case_id, scan in sorted(present):
        k = follow_up_index(scan)
        if k is None:
            continue
        baseline = split_label(scan)[0] + "test"
        if (case_id, baseline) not in present:
            qc.append((case_id, scan, "", "DELTA_BASELINE_MISSING", "warn",
                       f"no usable {baseline} scan to compare {scan} with: no delta features", None))
            continue
        before, after = days.get((case_id, baseline)), days.get((case_id, scan))
        between = after - before if before is not None and after is not None and not (
            pd.isna(before) or pd.isna(after)) else None
        pairs.append((case_id, baseline, scan, k, between))
    return pd.DataFrame(pairs, columns=["case_id", "baseline_scan", "followup_scan", "timepoint", "days_between"]), qc


def settings_mismatches(baseline: pd.DataFrame, followup: pd.DataFrame, pair) -> list[tuple]:
    """QC rows for ROIs whose baseline and follow-up features were computed with different settings ids."""
    rows = []
    for roi in sorted(set(baseline["roi"]) | set(followup["roi"])):
        before = set(baseline.loc[baseline["roi"] == roi, "settings_id"])
        after = set(followup.loc[followup["roi"] == roi, "settings_id"])
        if before != after and before and after:
            rows.append((pair.case_id, pair.followup_scan, roi, "DELTA_SETTINGS_MISMATCH", "warn",
                         f"features of {pair.baseline_scan} (settings {sorted(before)}) and {pair.followup_scan} "
                         f"(settings {sorted(after)}) differ in settings ids: deltas only for "
                         f"{sorted(before & after) or 'none'}", float(len(before ^ after))))
    return rows


def delta_features(features: pd.DataFrame, scans: pd.DataFrame, icc_form: str = "ICC(2,1)"
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(delta_features, qc rows): see the module docstring. ``features`` is the long feature table, ``scans`` the
    scans table (case_id, scan, status, days_from_baseline)."""
    pairs, qc = scan_pairs(scans)
    by_scan = {key: rows for key, rows in features.groupby(["case_id", "scan"], sort=False)}
    empty = features.iloc[0:0]
    frames = []
    for pair in pairs.itertuples(index=False):
        baseline = by_scan.get((pair.case_id, pair.baseline_scan), empty)
        followup = by_scan.get((pair.case_id, pair.followup_scan), empty)
        qc += settings_mismatches(baseline, followup, pair)
        joined = baseline.merge(followup[KEY + ["value"]], on=KEY, suffixes=("_baseline", "_followup"))
        if joined.empty:
            continue
        frames.append(pd.DataFrame({
            "case_id": joined["case_id"], "roi": joined["roi"], "settings_id": joined["settings_id"],
            "family": joined["family"], "feature": joined["feature"], "ibsi_code": joined["ibsi_code"],
            "aggregation": joined["aggregation"], "baseline_scan": pair.baseline_scan,
            "followup_scan": pair.followup_scan, "timepoint": pair.timepoint, "days_between": pair.days_between,
            "baseline_value": joined["value_baseline"], "followup_value": joined["value_followup"],
        }))
    qc_frame = pd.DataFrame(qc, columns=QC_COLUMNS)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in DELTA_COLUMNS}), qc_frame
    delta = pd.concat(frames, ignore_index=True)
    before, after = delta["baseline_value"].astype(float), delta["followup_value"].astype(float)
    delta["delta_absolute"] = after - before
    with np.errstate(divide="ignore", invalid="ignore"):
        delta["delta_relative"] = np.where(before != 0, (after - before) / before.abs(), np.nan)
    sdc = sdc_table(features, icc_form)[["settings_id", "roi", "ibsi_code", "aggregation", "sdc"]]
    delta = delta.merge(sdc, on=["settings_id", "roi", "ibsi_code", "aggregation"], how="left")
    delta["sdc"] = delta["sdc"].astype(float)
    exceeds = delta["delta_absolute"].abs() > delta["sdc"]
    delta["exceeds_sdc"] = exceeds.astype(object).where(delta["sdc"].notna() & delta["delta_absolute"].notna(), None)
    delta = delta.sort_values(["case_id", "followup_scan", "roi", "settings_id", "ibsi_code", "aggregation"])
    return delta[DELTA_COLUMNS].reset_index(drop=True), qc_frame
