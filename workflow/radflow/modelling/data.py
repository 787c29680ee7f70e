"""From the long feature table to the modelling frame: one row per case, one column per feature key (ROI x settings
x IBSI code x aggregation), plus the ``clinical:*`` columns the pipelines need (centre, covariates).

Which values enter: the configured scan (``test``) of cases that passed QC, restricted to the stable feature set when
one is given. Feature columns that are missing for more than ``max_missing`` of the cases or constant over all cases
are dropped before modelling; that decision uses no outcome and no value order, so it cannot leak. Remaining gaps are
filled inside the folds (training median).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from radflow.modelling.harmonisation import META_PREFIX
from radflow.qc import FAIL

KEY_COLUMNS = ["settings_id", "roi", "ibsi_code", "aggregation"]


def feature_key(roi: str, settings_id: str, ibsi_code: str, aggregation: str) -> str:
    """Column name of one feature in the modelling frame, e.g. ``GTV|3f2a...|OQD8|3D, merged``."""
    return f"{roi}|{settings_id}|{ibsi_code}|{aggregation}"


def qc_failed_cases(qc: pd.DataFrame, scan: str) -> set[tuple[str, str]]:
    """(case_id, roi) pairs whose ``scan`` failed QC, with roi '' standing for every ROI of the scan."""
    failed = qc[(qc["severity"] == FAIL) & (qc["scan"] == scan)]
    return set(zip(failed["case_id"], failed["roi"]))


def feature_matrix(features: pd.DataFrame, scan: str = "test", stable: pd.DataFrame | None = None,
                   qc: pd.DataFrame | None = None, max_missing: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(matrix, catalogue): cases x feature keys (sorted both ways) and one catalogue row per kept key with its
    settings_id, roi, ibsi_code, aggregation and feature name."""
    rows = features[features["scan"] == scan]
    if qc is not None and len(qc):
        failed = qc_failed_cases(qc, scan)
        bad = [(c, r) in failed or (c, "") in failed for c, r in zip(rows["case_id"], rows["roi"])]
        rows = rows[~np.asarray(bad, dtype=bool)]
    if stable is not None:
        rows = rows.merge(stable[KEY_COLUMNS].drop_duplicates(), on=KEY_COLUMNS, how="inner")
    rows = rows.assign(feature_key=[feature_key(r, s, c, a) for r, s, c, a in
                                    zip(rows["roi"], rows["settings_id"], rows["ibsi_code"], rows["aggregation"])])
    matrix = rows.pivot_table(index="case_id", columns="feature_key", values="value", aggfunc="first",
                              dropna=False).astype(float)
    matrix = matrix.sort_index().sort_index(axis=1)
    matrix.columns.name = None
    if len(matrix):
        keep = (matrix.isna().mean() <= max_missing) & (matrix.max() > matrix.min())
        matrix = matrix.loc[:, keep.to_numpy()]
    catalogue = (rows[["feature_key", "feature", *KEY_COLUMNS]].drop_duplicates("feature_key")
                 .set_index("feature_key").reindex(matrix.columns).rename_axis("feature_key").reset_index())
    return matrix, catalogue


def modelling_frame(matrix: pd.DataFrame, clinical: pd.DataFrame, centre: str | None,
                    covariates: list[str]) -> pd.DataFrame:
    """The feature matrix joined (inner, on case_id) with the clinical columns, renamed ``clinical:<name>``; the
    centre column is always ``clinical:centre`` (a single pseudo-centre when the clinical table has none)."""
    clinical = clinical.drop_duplicates("case_id").set_index("case_id")
    extra = pd.DataFrame(index=clinical.index)
    extra[f"{META_PREFIX}centre"] = clinical[centre].astype(str) if centre else "all"
    for column in covariates:
        extra[f"{META_PREFIX}{column}"] = clinical[column]
    return matrix.join(extra, how="inner").sort_index()
