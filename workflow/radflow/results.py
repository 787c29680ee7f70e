"""Reading the results database: ``open_results`` (read-only DuckDB connection), ``wide`` (one row per case and ROI,
one column per feature) and ``write_wide`` (``radflow export wide``: CSV or Parquet plus a header sidecar).

Wide column names are ``family.feature.aggregation`` in lower case with every run of other characters as ``_``
(``glcm.joint_maximum.3d_averaged``, ``glcm.joint_maximum.2_5d_direction_merged``,
``morphology.volume_mesh.none``); the sidecar
``<output>.columns.csv`` gives each column's family, IBSI feature name, IBSI code and aggregation.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

# What each table of results/radflow.duckdb holds (README "Results"; columns: radflow.store.SCHEMA).
TABLES: dict[str, str] = {
    "cases": "one row per case: pseudonymised case_id, number of scans, QC status (pass / warn / fail)",
    "scans": "one row per case and scan (test, retest, ...): pseudonymised series UID, modality, scanner, geometry",
    "masks": "one row per case, scan and ROI: mask source (RTSTRUCT / SEG), voxel count, volume, sha256",
    "qc": "one row per QC finding: case, scan, ROI, check code, severity, message, value",
    "features": "one row per feature value: case, scan, ROI, settings_id, family, feature, IBSI code, aggregation, "
                "value, reason (why a value is NaN)",
    "settings": "one row per settings document: settings_id, name, canonical JSON document",
    "clinical": "one row per case: case_id and the clinical columns the configuration names",
    "stability": "one row per settings id, ROI, feature and stability method: ICC with CI, CCC, wCV, Bland-Altman",
    "stable_features": "the features kept by the stability selection, per settings id and ROI",
    "stability_cases": "the cases each stability analysis used",
    "models": "one row per fitted model: task, learner, feature set, tuned parameters, model file and sha256",
    "model_features": "one row per model and feature: final weight and outer-fold selection frequency",
    "predictions": "out-of-fold and external predictions per case",
    "metrics": "one row per model and metric: estimate with 95% CI (AUC, Brier, calibration, C-index, ...)",
    "delta_features": "one row per case, follow-up scan, ROI, settings id and feature: change from baseline with "
                      "the feature's smallest detectable change",
    "pet_measures": "view, one row per PET scan, ROI and settings id: SUVmax, SUVmean, SUVpeak, MTV (mL), TLG",
    "reporting": "one row per RQS / TRIPOD+AI item: status, points, the run's evidence, what the authors must supply",
    "software": "package versions the run used",
    "files": "sha256 of every file the run loaded",
    "run": "the run that wrote the database: resolved configuration, code version, seeds, input digest",
    "inputs": "every input file by sha256, role and pseudonymised case (never by path)",
}
ID_COLUMNS = ["case_id", "roi"]


class ResultsError(ValueError):
    """A results query that cannot be answered (unknown settings id or scan, unsupported output format)."""


def open_results(path: str | Path = "results/radflow.duckdb") -> "duckdb.DuckDBPyConnection":
    """A read-only DuckDB connection to a results database (tables: ``radflow.results.TABLES``)."""
    import duckdb

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results database at {path} (run the pipeline first, or pass its path)")
    return duckdb.connect(str(path), read_only=True)


def column_name(family: str, feature: str, aggregation: str) -> str:
    """``family.feature.aggregation`` with each part in lower case, other characters as ``_``."""
    def slug(text: str) -> str:
        return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")

    return f"{family}.{slug(feature)}.{slug(aggregation)}"


def _in_ibsi_order(catalogue: "pd.DataFrame") -> "pd.DataFrame":
    """Features in IBSI document order (families, then features), each feature's aggregations in IBSI order."""
    from radflow.features.base import MATRIX_AGGREGATIONS, ZONE_AGGREGATIONS
    from radflow.features.registry import features

    feature_rank = {code: i for i, code in enumerate(features())}
    aggregation_rank = {a: i for i, a in enumerate(("none", *ZONE_AGGREGATIONS, *MATRIX_AGGREGATIONS))}
    order = sorted(range(len(catalogue)), key=lambda i: (
        feature_rank.get(catalogue["ibsi_code"].iat[i], len(feature_rank)), catalogue["ibsi_code"].iat[i],
        aggregation_rank.get(catalogue["aggregation"].iat[i], len(aggregation_rank)), catalogue["aggregation"].iat[i]))
    return catalogue.iloc[order].reset_index(drop=True)


def _settings_ids(con: "duckdb.DuckDBPyConnection") -> list[str]:
    return [row[0] for row in con.execute("SELECT settings_id FROM settings ORDER BY settings_id").fetchall()]


def wide_with_columns(con: "duckdb.DuckDBPyConnection", settings_id: str | None = None, scan: str = "test",
                      clinical: bool = False) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(wide table, its column sidecar): see ``wide``."""

    known = _settings_ids(con)
    if settings_id is None:
        if len(known) != 1:
            raise ResultsError(f"the database holds {len(known)} settings ids {known}: choose one with settings_id")
        settings_id = known[0]
    if settings_id not in known:
        raise ResultsError(f"no settings id {settings_id!r} in the database; known: {known}")
    long = con.execute(
        "SELECT case_id, roi, family, feature, ibsi_code, aggregation, value FROM features "
        "WHERE settings_id = ? AND scan = ? ORDER BY case_id, roi", [settings_id, scan]).df()
    if long.empty:
        scans = [r[0] for r in con.execute("SELECT DISTINCT scan FROM features WHERE settings_id = ? ORDER BY scan",
                                           [settings_id]).fetchall()]
        raise ResultsError(f"no features for settings id {settings_id} and scan {scan!r}; its scans: {scans}")
    catalogue = _in_ibsi_order(long[["family", "feature", "ibsi_code", "aggregation"]]
                               .drop_duplicates(["ibsi_code", "aggregation"]))
    catalogue.insert(0, "column", [column_name(*row) for row in
                                   catalogue[["family", "feature", "aggregation"]].itertuples(index=False)])
    if catalogue["column"].duplicated().any():
        raise AssertionError(f"wide column names collide: {catalogue['column'][catalogue['column'].duplicated()]}")
    names = dict(zip(zip(catalogue["ibsi_code"], catalogue["aggregation"]), catalogue["column"]))
    long["column"] = [names[key] for key in zip(long["ibsi_code"], long["aggregation"])]
    table = long.pivot(index=ID_COLUMNS, columns="column", values="value")[list(catalogue["column"])]
    table = table.reset_index()
    table.columns.name = None
    if clinical:
        clinical_table = con.execute("SELECT * FROM clinical").df()
        clinical_table = clinical_table.rename(columns={c: f"clinical.{c}" for c in clinical_table.columns
                                                        if c != "case_id"})
        table = table.merge(clinical_table, on="case_id", how="left")
    return table, catalogue


def wide(con: "duckdb.DuckDBPyConnection", settings_id: str | None = None, scan: str = "test",
         clinical: bool = False) -> "pd.DataFrame":
    """The features of one settings id and scan as one row per case and ROI (``case_id``, ``roi``) and one column
    per feature and aggregation (``family.feature.aggregation``; see ``column_name``), optionally followed by the
    clinical table's columns (``clinical.<name>``) joined on the pseudonym ``case_id``. ``settings_id`` may be
    omitted when the database holds one."""
    return wide_with_columns(con, settings_id, scan, clinical)[0]


def write_wide(database: str | Path, out: str | Path, settings_id: str | None = None, scan: str = "test",
               clinical: bool = False) -> Path:
    """``wide`` written to ``out`` (``.csv`` or ``.parquet``) and its column sidecar to ``<out>.columns.csv``;
    returns the sidecar's path."""
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise ResultsError(f"{out}: the wide export is written as .csv or .parquet")
    con = open_results(database)
    try:
        table, catalogue = wide_with_columns(con, settings_id, scan, clinical)
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        table.to_csv(out, index=False, float_format="%.17g")
    else:
        table.to_parquet(out, index=False)
    sidecar = out.with_name(out.name + ".columns.csv")
    catalogue.to_csv(sidecar, index=False)
    return sidecar
