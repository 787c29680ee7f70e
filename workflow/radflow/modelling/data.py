"""From the long feature table to the modelling frame: one row per case, one column per feature key (ROI x settings
x IBSI code x aggregation), plus the ``clinical:*`` columns the pipelines need (centre, covariates).

Which values enter: the configured scan (``test``; with its modality-prefixed siblings ``pt_test``, ``mr_test``, whose
settings ids differ) of cases that passed QC, or (``features_from: delta_absolute | delta_relative``) the change of
each feature from baseline to a follow-up timepoint (``delta_rows``), restricted to the stable feature set when
one is given. Infinite values count as missing. Feature columns that are missing for more than ``max_missing`` of
the cases or constant over all cases are dropped before modelling; that decision uses no outcome and no value order,
so it cannot leak. Remaining gaps are filled inside the folds (training median).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from radflow.modelling.harmonisation import META_PREFIX
from radflow.qc import FAIL
from radflow.timepoints import split_label

KEY_COLUMNS = ["settings_id", "roi", "ibsi_code", "aggregation"]
NO_CENTRE = "(no centre)"

log = logging.getLogger(__name__)


def feature_key(roi: str, settings_id: str, ibsi_code: str, aggregation: str, kind: str = "") -> str:
    """Column name of one feature in the modelling frame, e.g. ``GTV|3f2a...|OQD8|3D, merged``; with the scan's
    kind (its label prefix: an MR sequence, another modality) when one settings id measured several kinds, e.g.
    ``t2w:GTV|3f2a...|OQD8|3D, merged``."""
    return f"{kind + ':' if kind else ''}{roi}|{settings_id}|{ibsi_code}|{aggregation}"


def scan_kinds(rows: pd.DataFrame) -> pd.Series:
    """Per row, the kind of scan that enters the feature's identity: its label prefix (``t2w`` of ``t2w_test``)
    where the row's settings id was measured on scans of more than one prefix, else ''. A settings document for
    one modality normally meets one kind; a generic MR one applied to a T2-weighted and an ADC series (labels
    ``t2w_test`` and ``adc_test``) gives two values per case and feature key, and they are two features, not one
    value and a duplicate."""
    source = rows["source_scan"] if "source_scan" in rows else rows["scan"]  # a delta row: its follow-up scan
    prefix = source.map(lambda label: split_label(label)[0].rstrip("_"))
    several = prefix.groupby(rows["settings_id"]).transform("nunique") > 1
    return prefix.where(several, "")


def qc_failed_cases(qc: pd.DataFrame, scan: str) -> set[tuple[str, str, str]]:
    """(case_id, scan, roi) of the scans labelled ``scan`` (any modality prefix) that failed QC, with roi ''
    standing for every ROI of the scan."""
    failed = qc[(qc["severity"] == FAIL) & scans_labelled(qc["scan"], scan)]
    return set(zip(failed["case_id"], failed["scan"], failed["roi"]))


def scans_labelled(scans: pd.Series, label: str) -> np.ndarray:
    """Which scan names are ``label`` itself or ``label`` after a modality prefix (``test``, ``pt_test``)."""
    return np.asarray([s == label or split_label(s)[1] == label for s in scans], dtype=bool)


def delta_rows(delta: pd.DataFrame, timepoint: int, column: str = "delta_absolute") -> pd.DataFrame:
    """Delta features of follow-up ``timepoint`` as long feature rows (scan 'delta', value = ``column``; the
    follow-up scan it comes from as ``source_scan``, whose kind keeps two sequences' deltas apart)."""
    rows = delta[delta["timepoint"] == timepoint]
    return pd.DataFrame({"case_id": rows["case_id"], "scan": "delta", "source_scan": rows["followup_scan"],
                         "roi": rows["roi"],
                         "settings_id": rows["settings_id"], "feature": [f"{column}: {name}" for name in rows["feature"]],
                         "ibsi_code": rows["ibsi_code"], "aggregation": rows["aggregation"],
                         "value": rows[column].astype(float)})


def feature_matrix(features: pd.DataFrame, scan: str = "test", stable: pd.DataFrame | None = None,
                   qc: pd.DataFrame | None = None, max_missing: float = 0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(matrix, catalogue): cases x feature keys (sorted both ways) and one catalogue row per kept key with its
    settings_id, roi, ibsi_code, aggregation and feature name."""
    rows = features[scans_labelled(features["scan"], scan)]
    if qc is not None and len(qc):
        failed = qc_failed_cases(qc, scan)
        bad = [(c, s, r) in failed or (c, s, "") in failed
               for c, s, r in zip(rows["case_id"], rows["scan"], rows["roi"])]
        rows = rows[~np.asarray(bad, dtype=bool)]
    if stable is not None:
        rows = rows.merge(stable[KEY_COLUMNS].drop_duplicates(), on=KEY_COLUMNS, how="inner")
    kinds = scan_kinds(rows) if len(rows) else pd.Series([], dtype=str)
    rows = rows.assign(
        feature_key=[feature_key(r, s, c, a, k) for r, s, c, a, k in
                     zip(rows["roi"], rows["settings_id"], rows["ibsi_code"], rows["aggregation"], kinds)],
        feature=[f"{k}: {name}" if k else name for k, name in zip(kinds, rows["feature"])])
    repeated = rows.duplicated(["case_id", "feature_key"], keep=False)
    if repeated.any():  # taking one of them would drop a measurement without a word
        example = rows[repeated].iloc[0]
        raise ValueError(f"{int(repeated.sum())} feature rows share a case and feature key with another row, e.g. "
                         f"case {example['case_id']}, {example['feature_key']} of scan {example['scan']}: the "
                         "modelling matrix has one value per case and feature")
    matrix = rows.pivot_table(index="case_id", columns="feature_key", values="value", aggfunc="first",
                              dropna=False).astype(float)
    matrix = matrix.sort_index().sort_index(axis=1)
    matrix.columns.name = None
    infinite = np.isinf(matrix.to_numpy())
    if infinite.any():  # no learner takes them; as missing they are filled inside the folds like any gap
        log.warning("%d infinite feature value(s) in %d feature(s) treated as missing", int(infinite.sum()),
                    int(infinite.any(axis=0).sum()))
        matrix = matrix.mask(infinite)
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
    # a case without a centre joins the others without one: one ComBat batch, named for what it is (not "nan")
    extra[f"{META_PREFIX}centre"] = clinical[centre].astype("string").fillna(NO_CENTRE).astype(str) if centre else "all"
    for column in covariates:
        extra[f"{META_PREFIX}{column}"] = clinical[column]
    return matrix.join(extra, how="inner").sort_index()
