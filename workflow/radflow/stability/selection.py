"""The stable-feature rule: keep a feature when the lower confidence bound of its ICC reaches a threshold.

The lower bound, not the point estimate, so that a feature measured on few cases is not kept on luck (Koo & Li,
J Chiropr Med 2016: ICC 0.75-0.9 "good", > 0.9 "excellent" reliability). Per settings id and roi; a feature assessed
by several methods (say test-retest and perturbation) must pass every one. An undefined ICC (constant feature, too
few cases) fails.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

STABLE_COLUMNS = ["settings_id", "roi", "family", "ibsi_code", "aggregation", "feature", "methods", "min_ci_low"]
KEY = ["settings_id", "roi", "family", "ibsi_code", "aggregation", "feature"]


def select_stable(stability: pd.DataFrame, min_icc_ci_low: float) -> pd.DataFrame:
    """Rows of the stable features: the methods that assessed each and its smallest ICC lower bound."""
    if stability.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in STABLE_COLUMNS})
    frame = stability[[*KEY, "method", "ci_low"]].copy()
    frame["ci_low"] = frame["ci_low"].astype(np.float64).fillna(-np.inf)
    grouped = frame.groupby(KEY, sort=True, dropna=False)
    summary = grouped.agg(min_ci_low=("ci_low", "min"),
                          methods=("method", lambda m: ",".join(sorted(set(m))))).reset_index()
    stable = summary[summary["min_ci_low"] >= min_icc_ci_low]
    return stable[STABLE_COLUMNS].reset_index(drop=True)


def fraction_kept_by_family(stability: pd.DataFrame, stable: pd.DataFrame) -> pd.DataFrame:
    """Per (settings id, roi, family): features assessed, features kept and the fraction kept."""
    assessed = stability.drop_duplicates(KEY).groupby(["settings_id", "roi", "family"]).size().rename("assessed")
    kept = stable.groupby(["settings_id", "roi", "family"]).size().rename("kept")
    table = pd.concat([assessed, kept], axis=1).fillna(0).astype(int).reset_index()
    table["fraction_kept"] = table["kept"] / table["assessed"]
    return table
