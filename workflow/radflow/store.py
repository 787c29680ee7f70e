"""The DuckDB results database: schema and idempotent loading.

Only the ``store`` job writes the database. Per-batch jobs write Parquet files with the columns below; loading
replaces every row of the cases it brings (for features: of the cases and settings ids it brings) in one
transaction, so a rerun never duplicates rows and never loses cases that this run did not touch.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

# Table -> (columns with DuckDB types, primary key). Column order is the Parquet/DataFrame order stages write.
SCHEMA: dict[str, tuple[list[tuple[str, str]], list[str]]] = {
    "cases": (
        [("case_id", "VARCHAR"), ("n_scans", "INTEGER"), ("status", "VARCHAR")],
        ["case_id"],
    ),
    "scans": (
        [
            ("case_id", "VARCHAR"), ("scan", "VARCHAR"), ("series_uid", "VARCHAR"), ("modality", "VARCHAR"),
            ("manufacturer", "VARCHAR"), ("convolution_kernel", "VARCHAR"), ("kvp", "DOUBLE"),
            ("n_slices", "INTEGER"), ("spacing_x", "DOUBLE"), ("spacing_y", "DOUBLE"), ("spacing_z", "DOUBLE"),
            ("image_sha256", "VARCHAR"), ("status", "VARCHAR"),
            # shifted per patient by a keyed number of days (config pseudonymisation.dates), NULL when dropped
            ("acquisition_datetime", "VARCHAR"),
        ],
        ["case_id", "scan"],
    ),
    "masks": (
        [
            ("case_id", "VARCHAR"), ("scan", "VARCHAR"), ("roi", "VARCHAR"), ("source", "VARCHAR"),
            ("source_roi_name", "VARCHAR"), ("voxel_count", "BIGINT"), ("volume_mm3", "DOUBLE"),
            ("mask_sha256", "VARCHAR"),
        ],
        ["case_id", "scan", "roi"],
    ),
    "qc": (
        [
            ("case_id", "VARCHAR"), ("scan", "VARCHAR"), ("roi", "VARCHAR"), ("check_code", "VARCHAR"),
            ("severity", "VARCHAR"), ("message", "VARCHAR"), ("value", "DOUBLE"),
        ],
        ["case_id", "scan", "roi", "check_code"],
    ),
    "features": (
        [
            ("case_id", "VARCHAR"), ("scan", "VARCHAR"), ("roi", "VARCHAR"), ("settings_id", "VARCHAR"),
            ("family", "VARCHAR"), ("feature", "VARCHAR"), ("ibsi_code", "VARCHAR"), ("aggregation", "VARCHAR"),
            ("value", "DOUBLE"), ("reason", "VARCHAR"),
        ],
        ["case_id", "scan", "roi", "settings_id", "ibsi_code", "aggregation"],
    ),
    "settings": (
        [("settings_id", "VARCHAR"), ("name", "VARCHAR"), ("document", "JSON")],
        ["settings_id"],
    ),
    # Feature stability (stage `stability`): one row per feature, roi, settings id and method.
    "stability": (
        [
            ("settings_id", "VARCHAR"), ("roi", "VARCHAR"), ("family", "VARCHAR"), ("feature", "VARCHAR"),
            ("ibsi_code", "VARCHAR"), ("aggregation", "VARCHAR"), ("method", "VARCHAR"), ("icc_form", "VARCHAR"),
            ("n", "INTEGER"), ("k", "INTEGER"), ("icc", "DOUBLE"), ("ci_low", "DOUBLE"), ("ci_high", "DOUBLE"),
            ("ccc", "DOUBLE"), ("ccc_ci_low", "DOUBLE"), ("ccc_ci_high", "DOUBLE"), ("wcv", "DOUBLE"),
            ("ba_bias", "DOUBLE"), ("ba_loa_low", "DOUBLE"), ("ba_loa_high", "DOUBLE"),
        ],
        ["settings_id", "roi", "ibsi_code", "aggregation", "method"],
    ),
    "stable_features": (
        [
            ("settings_id", "VARCHAR"), ("roi", "VARCHAR"), ("family", "VARCHAR"), ("ibsi_code", "VARCHAR"),
            ("aggregation", "VARCHAR"), ("feature", "VARCHAR"), ("methods", "VARCHAR"), ("min_ci_low", "DOUBLE"),
        ],
        ["settings_id", "roi", "ibsi_code", "aggregation"],
    ),
    # The cases each stability analysis used (for provenance).
    "stability_cases": (
        [("settings_id", "VARCHAR"), ("roi", "VARCHAR"), ("method", "VARCHAR"), ("case_id", "VARCHAR")],
        ["settings_id", "roi", "method", "case_id"],
    ),
    # Outcome models (modelling stage; radflow.modelling): one row per configured model, its final fitted file.
    "models": (
        [
            ("model_id", "VARCHAR"), ("task", "VARCHAR"), ("learner", "VARCHAR"), ("feature_set", "VARCHAR"),
            ("status", "VARCHAR"), ("n_cases", "INTEGER"), ("n_events", "INTEGER"), ("n_external_cases", "INTEGER"),
            ("n_candidate_features", "INTEGER"), ("params", "JSON"), ("threshold", "DOUBLE"), ("seed", "BIGINT"),
            ("config", "JSON"), ("model_file", "VARCHAR"), ("model_sha256", "VARCHAR"),
        ],
        ["model_id"],
    ),
    # Features a model's learner received: final-model weight, and how often outer CV folds selected it.
    "model_features": (
        [
            ("model_id", "VARCHAR"), ("feature_key", "VARCHAR"), ("settings_id", "VARCHAR"), ("roi", "VARCHAR"),
            ("ibsi_code", "VARCHAR"), ("aggregation", "VARCHAR"), ("feature", "VARCHAR"),
            ("in_final_model", "BOOLEAN"), ("weight", "DOUBLE"), ("weight_kind", "VARCHAR"),
            ("selection_frequency", "DOUBLE"),
        ],
        ["model_id", "feature_key"],
    ),
    # Out-of-fold (validation 'cv') and held-out-centre ('external') predictions, with the outcome scored against.
    "predictions": (
        [
            ("model_id", "VARCHAR"), ("validation", "VARCHAR"), ("repeat", "INTEGER"), ("fold", "INTEGER"),
            ("case_id", "VARCHAR"), ("outcome", "DOUBLE"), ("survival_time", "DOUBLE"), ("probability", "DOUBLE"),
            ("risk_score", "DOUBLE"), ("threshold", "DOUBLE"), ("predicted_class", "DOUBLE"),
        ],
        ["model_id", "validation", "repeat", "case_id"],
    ),
    "metrics": (
        [
            ("model_id", "VARCHAR"), ("validation", "VARCHAR"), ("metric", "VARCHAR"), ("value", "DOUBLE"),
            ("ci_lower", "DOUBLE"), ("ci_upper", "DOUBLE"), ("n_cases", "INTEGER"),
        ],
        ["model_id", "validation", "metric"],
    ),
    "software": ([("package", "VARCHAR"), ("version", "VARCHAR")], ["package"]),
    # Every file the store job loaded, with its checksum (provenance of the database's contents).
    "files": ([("path", "VARCHAR"), ("sha256", "VARCHAR"), ("stage", "VARCHAR")], ["path"]),
}
PER_CASE_TABLES = ("scans", "masks", "qc")
# Tables a later stage computes over the whole cohort (one Parquet file each): replaced per settings id.
COHORT_TABLES = ("stability", "stable_features", "stability_cases")
# Cohort-level tables recomputed whole by every run of their stage (the modelling stage): replaced entirely.
WHOLE_TABLES = ("models", "model_features", "predictions", "metrics")


def columns(table: str) -> list[str]:
    return [name for name, _ in SCHEMA[table][0]]


def empty_frame(table: str) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in columns(table)})


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    for table, (cols, key) in SCHEMA.items():
        body = ", ".join(f"{name} {dtype}" for name, dtype in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}, PRIMARY KEY ({', '.join(key)}))")


def _load(con: duckdb.DuckDBPyConnection, table: str, parquet_files: list[Path]) -> None:
    """Append rows from Parquet files, ordered by primary key (so row order is the same on every run)."""
    files = [str(p) for p in parquet_files if Path(p).stat().st_size > 0]
    if not files:
        return
    cols, key = SCHEMA[table]
    names = ", ".join(name for name, _ in cols)
    casts = ", ".join(f"CAST({name} AS {dtype}) AS {name}" for name, dtype in cols)
    con.execute(
        f"INSERT INTO {table} ({names}) SELECT {casts} FROM read_parquet(?, union_by_name = true) ORDER BY {', '.join(key)}",
        [files],
    )


def load_results(
    database: Path,
    batch_dirs: list[Path],
    settings_docs: list[dict],
    clinical: pd.DataFrame | None,
    software: dict[str, str],
    files: list[tuple[str, str, str]],
    cohort_tables: dict[str, Path] | None = None,
) -> None:
    """Load per-batch Parquet folders into ``database``, replacing the rows of the cases and settings they carry.

    ``settings_docs``: [{"settings_id", "name", "document"}]; ``clinical``: pseudonymised clinical table with a
    ``case_id`` column (replaces the whole ``clinical`` table); ``files``: (path, sha256, stage) of the inputs;
    ``cohort_tables``: {table in COHORT_TABLES: Parquet file}, replacing that table's rows of these settings ids.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database))
    try:
        create_schema(con)
        con.execute("BEGIN TRANSACTION")
        try:
            _replace(con, batch_dirs, settings_docs, clinical, software, files)
            _replace_cohort_tables(con, cohort_tables or {}, [doc["settings_id"] for doc in settings_docs])
        except Exception:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _replace(con, batch_dirs, settings_docs, clinical, software, files) -> None:
    batch_cases = [str(d / "cases.parquet") for d in batch_dirs]
    con.execute("CREATE TEMP TABLE incoming_cases AS SELECT DISTINCT case_id FROM read_parquet(?)", [batch_cases])
    settings_ids = [doc["settings_id"] for doc in settings_docs]
    for table in ("cases", *PER_CASE_TABLES):
        con.execute(f"DELETE FROM {table} WHERE case_id IN (SELECT case_id FROM incoming_cases)")
    con.execute(
        "DELETE FROM features WHERE case_id IN (SELECT case_id FROM incoming_cases) AND list_contains(?, settings_id)",
        [settings_ids],
    )
    for table in ("cases", "scans", "masks", "features"):
        _load(con, table, [d / f"{table}.parquet" for d in batch_dirs])
    # QC rows come from the qc stage and from failed feature extractions.
    _load(con, "qc", [d / name for d in batch_dirs for name in ("qc.parquet", "features_qc.parquet")])

    con.execute("DELETE FROM settings WHERE list_contains(?, settings_id)", [settings_ids])
    for doc in sorted(settings_docs, key=lambda d: d["settings_id"]):
        con.execute(
            "INSERT INTO settings VALUES (?, ?, ?)",
            [doc["settings_id"], doc["name"], json.dumps(doc["document"], sort_keys=True)],
        )
    con.execute("DELETE FROM software")
    con.executemany("INSERT INTO software VALUES (?, ?)", sorted(software.items()))
    con.execute("DELETE FROM files WHERE list_contains(?, path)", [[f[0] for f in files]])
    if files:
        con.executemany("INSERT INTO files VALUES (?, ?, ?)", sorted(files))
    if clinical is not None:
        con.register("clinical_frame", clinical.sort_values("case_id").reset_index(drop=True))
        con.execute("CREATE OR REPLACE TABLE clinical AS SELECT * FROM clinical_frame")
        con.unregister("clinical_frame")
    con.execute("DROP TABLE incoming_cases")


def _replace_cohort_tables(con, cohort_tables: dict[str, Path], settings_ids: list[str]) -> None:
    unknown = set(cohort_tables) - set(COHORT_TABLES) - set(WHOLE_TABLES)
    if unknown:
        raise ValueError(f"unknown cohort tables {sorted(unknown)}; known: {COHORT_TABLES + WHOLE_TABLES}")
    for table, path in sorted(cohort_tables.items()):
        if table in WHOLE_TABLES:
            con.execute(f"DELETE FROM {table}")
        else:
            con.execute(f"DELETE FROM {table} WHERE list_contains(?, settings_id)", [settings_ids])
        _load(con, table, [Path(path)])


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the database has table ``name`` (a stage that did not run leaves its tables out)."""
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
    return row is not None and row[0] > 0
