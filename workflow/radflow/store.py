"""The DuckDB results database: schema and idempotent, atomic loading.

Only the ``store`` job writes the database. Per-batch jobs write Parquet files with the columns below; loading
replaces every row of the cases it brings (for features: of the cases and settings ids it brings), so a rerun never
duplicates rows and never loses cases that this run did not touch.

The database is never written in place: the last good database is copied to a hidden file beside it
(``.radflow.duckdb.building``), the run's rows are loaded into the copy, and only a complete, checkpointed copy is
moved over the database with one ``os.replace`` (atomic on POSIX). A load that fails, or a store process killed at
any moment, leaves the previous database exactly as it was; the next load discards the half-built copy. (The
Snakemake rule therefore declares a receipt, not the database, as its output: Snakemake deletes a job's declared
outputs before it runs and after it fails.)
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
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
            # radflow.timepoints: visit index (0 = baseline) and calendar days since the patient's first scan
            ("timepoint", "INTEGER"), ("days_from_baseline", "INTEGER"),
            # what the voxel values are: HU (CT), SUVbw (PET, converted at ingest), arbitrary (MR, other)
            ("intensity_unit", "VARCHAR"),
            # radflow.sequences: the configured sequence (t2w, adc) the series was named, NULL when none
            ("sequence", "VARCHAR"),
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
    # RQS and TRIPOD+AI items the run evidences, computed from the tables above (radflow.reporting).
    "reporting": (
        [
            ("standard", "VARCHAR"), ("item", "VARCHAR"), ("topic", "VARCHAR"), ("status", "VARCHAR"),
            ("points", "INTEGER"), ("max_points", "INTEGER"), ("evidence", "VARCHAR"), ("user_action", "VARCHAR"),
        ],
        ["standard", "item"],
    ),
    # Delta radiomics (stage `delta`; radflow.delta): change of each feature from baseline to a follow-up scan,
    # computed only between values of the same settings id, with the feature's smallest detectable change.
    "delta_features": (
        [
            ("case_id", "VARCHAR"), ("roi", "VARCHAR"), ("settings_id", "VARCHAR"), ("family", "VARCHAR"),
            ("feature", "VARCHAR"), ("ibsi_code", "VARCHAR"), ("aggregation", "VARCHAR"),
            ("baseline_scan", "VARCHAR"), ("followup_scan", "VARCHAR"), ("timepoint", "INTEGER"),
            ("days_between", "INTEGER"), ("baseline_value", "DOUBLE"), ("followup_value", "DOUBLE"),
            ("delta_absolute", "DOUBLE"), ("delta_relative", "DOUBLE"), ("sdc", "DOUBLE"), ("exceeds_sdc", "BOOLEAN"),
        ],
        ["case_id", "followup_scan", "roi", "settings_id", "ibsi_code", "aggregation"],
    ),
    "software": ([("package", "VARCHAR"), ("version", "VARCHAR")], ["package"]),
    # The run that wrote the database (radflow.provenance.run_record): resolved configuration (local paths
    # withheld), code version, seeds; and every input file by checksum and pseudonym (never by path).
    "run": (
        [("run_id", "VARCHAR"), ("config", "JSON"), ("config_sha256", "VARCHAR"), ("code_version", "VARCHAR"),
         ("seeds", "JSON"), ("inputs_sha256", "VARCHAR")],
        ["run_id"],
    ),
    "inputs": (
        [("batch", "VARCHAR"), ("case_id", "VARCHAR"), ("scan", "VARCHAR"), ("role", "VARCHAR"), ("roi", "VARCHAR"),
         ("sha256", "VARCHAR"), ("size", "BIGINT")],
        ["batch", "case_id", "scan", "role", "roi", "sha256"],
    ),
    # Every file the store job loaded, with its checksum (provenance of the database's contents).
    "files": ([("path", "VARCHAR"), ("sha256", "VARCHAR"), ("stage", "VARCHAR")], ["path"]),
}
PER_CASE_TABLES = ("scans", "masks", "qc")
# Tables a later stage computes over the whole cohort (one Parquet file each): replaced per settings id.
COHORT_TABLES = ("stability", "stable_features", "stability_cases")
# Cohort-level tables recomputed whole by every run of their stage (the modelling stage): replaced entirely.
WHOLE_TABLES = ("models", "model_features", "predictions", "metrics")
# The delta stage's outputs (rules/common.smk DELTA_TABLE_NAMES): delta_features is replaced whole; delta_qc is
# QC rows, which replace the qc table's earlier DELTA_* rows.
DELTA_TABLES = ("delta_features", "delta_qc")
COHORT_QC = {"delta_qc": "DELTA_%"}


def columns(table: str) -> list[str]:
    return [name for name, _ in SCHEMA[table][0]]


def empty_frame(table: str) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in columns(table)})


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    for table, (cols, key) in SCHEMA.items():
        body = ", ".join(f"{name} {dtype}" for name, dtype in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body}, PRIMARY KEY ({', '.join(key)}))")
        # a database written by an older radflow lacks the newest columns (e.g. scans.timepoint): add them (NULL
        # for the old rows until their cases are loaded again) instead of failing the store job
        for name, dtype in cols:
            con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {dtype}")
    con.execute(PET_MEASURES_VIEW)


# The usual PET measures by their clinical names (IBSI codes in radflow.features; README "A PET study"): one row
# per PET scan, ROI and settings id. TLG is IBSI's integrated intensity (MTV * SUVmean); volumes in mL.
PET_MEASURES_VIEW = """
CREATE OR REPLACE VIEW pet_measures AS
SELECT f.case_id, f.scan, f.roi, f.settings_id,
       max(f.value) FILTER (f.ibsi_code = '84IY') AS suv_max,
       max(f.value) FILTER (f.ibsi_code = 'Q4LE') AS suv_mean,
       max(f.value) FILTER (f.ibsi_code = 'VJGA') AS suv_peak,
       max(f.value) FILTER (f.ibsi_code = 'RNU0') / 1000 AS mtv_ml,
       max(f.value) FILTER (f.ibsi_code = '99N0') / 1000 AS tlg
FROM features f JOIN scans s ON s.case_id = f.case_id AND s.scan = f.scan
WHERE s.modality = 'PT'
GROUP BY f.case_id, f.scan, f.roi, f.settings_id
"""


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


#: QC codes of failures found during feature extraction (written by the features stage, loaded into ``qc``).
EXTRACTION_FAILURES = ("FEATURE_EXTRACTION", "ROI_TOO_LARGE")


class NoFeaturesError(RuntimeError):
    """The features table would be empty: every ROI of every case failed (the message counts the QC failures)."""


def building_path(database: Path) -> Path:
    """The hidden file beside ``database`` in which the next version is built."""
    return database.with_name(f".{database.name}.building")


def _discard(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_results(
    database: Path,
    batch_dirs: list[Path],
    settings_docs: list[dict],
    clinical: pd.DataFrame | None,
    software: dict[str, str],
    files: list[tuple[str, str, str]],
    cohort_tables: dict[str, Path] | None = None,
    require_features: bool = False,
    run: dict | None = None,
    inputs: Path | None = None,
) -> dict[str, int]:
    """Load per-batch Parquet folders into ``database``, replacing the rows of the cases and settings they carry;
    the database is replaced atomically (module docstring). Returns the row count of every table.

    ``settings_docs``: [{"settings_id", "name", "document"}]; ``clinical``: pseudonymised clinical table with a
    ``case_id`` column (replaces the whole ``clinical`` table); ``files``: (path, sha256, stage) of the inputs;
    ``cohort_tables``: {table in COHORT_TABLES: Parquet file}, replacing that table's rows of these settings ids.
    ``require_features``: raise ``NoFeaturesError`` (and keep the previous database) when the features table
    would be empty.
    """
    database = Path(database)
    database.parent.mkdir(parents=True, exist_ok=True)
    building = building_path(database)
    _discard(building)  # left by a store that was killed
    try:
        if database.exists():
            shutil.copyfile(database, building)
        con = duckdb.connect(str(building))
        try:
            create_schema(con)
            con.execute("BEGIN TRANSACTION")
            _replace(con, batch_dirs, settings_docs, clinical, software, files)
            _replace_cohort_tables(con, cohort_tables or {}, [doc["settings_id"] for doc in settings_docs])
            if run is not None:
                _replace_run(con, run, inputs)
            _replace_reporting(con)
            con.execute("COMMIT")
            counts = {table: _count(con, f"SELECT count(*) FROM {table}")
                      for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                                  "WHERE table_schema = 'main' ORDER BY 1").fetchall()}
            if require_features and not counts.get("features"):
                raise NoFeaturesError(_no_features_message(con))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _fsync(building)
        os.replace(building, database)
        _fsync(database.parent)
    except BaseException:
        _discard(building)
        raise
    return counts


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def clinical_mismatch(database: Path) -> dict[str, int]:
    """Cases without a clinical row and clinical rows without imaging (0/0 when there is no clinical table)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "clinical" not in tables:
            return {"imaging_without_clinical": 0, "clinical_without_imaging": 0}
        return {
            "imaging_without_clinical": _count(con, "SELECT count(*) FROM cases ANTI JOIN clinical USING (case_id)"),
            "clinical_without_imaging": _count(con, "SELECT count(*) FROM clinical ANTI JOIN cases USING (case_id)"),
        }
    finally:
        con.close()


def _no_features_message(con: duckdb.DuckDBPyConnection) -> str:
    failures = con.execute(
        "SELECT check_code, count(DISTINCT (case_id, scan, roi)) AS n FROM qc WHERE severity = 'fail' "
        "GROUP BY ALL ORDER BY n DESC, check_code").fetchall()
    n_cases = _count(con, "SELECT count(*) FROM cases")
    summary = ", ".join(f"{code} x {n}" for code, n in failures) or "no QC failure recorded"
    return (f"no feature values: every ROI of the {n_cases} case(s) failed ({summary}); the previous database, if "
            "any, was kept; see the qc Parquet files in interim/batches/")


def _statuses_after_extraction(con: duckdb.DuckDBPyConnection, codes: Iterable[str] = EXTRACTION_FAILURES) -> None:
    """A scan whose every ROI failed feature extraction fails, one with some failed ROIs warns; a case fails when
    all its scans failed and warns when some did (QC wrote its statuses before features were extracted)."""
    codes = list(codes)
    con.execute(
        """
        UPDATE scans SET status = CASE WHEN NOT EXISTS (SELECT 1 FROM features f WHERE f.case_id = scans.case_id
                                                        AND f.scan = scans.scan) THEN 'fail' ELSE 'warn' END
        WHERE case_id IN (SELECT case_id FROM incoming_cases) AND status != 'fail'
          AND EXISTS (SELECT 1 FROM qc q WHERE q.case_id = scans.case_id AND q.scan = scans.scan
                      AND q.severity = 'fail' AND list_contains(?, q.check_code))
        """, [codes])
    con.execute(
        """
        UPDATE cases SET status = CASE WHEN (SELECT bool_and(s.status = 'fail') FROM scans s
                                             WHERE s.case_id = cases.case_id) THEN 'fail' ELSE 'warn' END
        WHERE case_id IN (SELECT case_id FROM incoming_cases) AND status = 'pass'
          AND EXISTS (SELECT 1 FROM scans s WHERE s.case_id = cases.case_id AND s.status = 'fail')
        """)
    con.execute(
        """
        UPDATE cases SET status = 'fail'
        WHERE case_id IN (SELECT case_id FROM incoming_cases) AND status != 'fail'
          AND NOT EXISTS (SELECT 1 FROM scans s WHERE s.case_id = cases.case_id AND s.status != 'fail')
          AND EXISTS (SELECT 1 FROM scans s WHERE s.case_id = cases.case_id)
        """)


def _replace(con, batch_dirs, settings_docs, clinical, software, files) -> None:
    batch_cases = [str(d / "cases.parquet") for d in batch_dirs]
    con.execute("CREATE TEMP TABLE incoming_cases AS SELECT DISTINCT case_id FROM read_parquet(?)", [batch_cases])
    settings_ids = [doc["settings_id"] for doc in settings_docs]
    for table in ("cases", *PER_CASE_TABLES):
        con.execute(f"DELETE FROM {table} WHERE case_id IN (SELECT case_id FROM incoming_cases)")
    con.execute("DELETE FROM qc WHERE case_id = ''")  # run-level rows (input of no case): every run brings its own
    con.execute(
        "DELETE FROM features WHERE case_id IN (SELECT case_id FROM incoming_cases) AND list_contains(?, settings_id)",
        [settings_ids],
    )
    for table in ("cases", "scans", "masks", "features"):
        _load(con, table, [d / f"{table}.parquet" for d in batch_dirs])
    # QC rows come from the qc stage and from failed feature extractions.
    _load(con, "qc", [d / name for d in batch_dirs for name in ("qc.parquet", "features_qc.parquet")])
    _statuses_after_extraction(con)

    con.execute("DELETE FROM settings WHERE list_contains(?, settings_id)", [settings_ids])
    for doc in sorted(settings_docs, key=lambda d: d["settings_id"]):
        con.execute(
            "INSERT INTO settings VALUES (?, ?, ?)",
            # the canonical JSON whose sha256 gives the settings id, as it was hashed
            [doc["settings_id"], doc["name"], doc["document"] if isinstance(doc["document"], str)
             else json.dumps(doc["document"], sort_keys=True)],
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
    unknown = set(cohort_tables) - set(COHORT_TABLES) - set(WHOLE_TABLES) - set(DELTA_TABLES)
    if unknown:
        raise ValueError(f"unknown cohort tables {sorted(unknown)}; known: {COHORT_TABLES + WHOLE_TABLES}")
    for table, path in sorted(cohort_tables.items()):
        if table in COHORT_QC:
            con.execute("DELETE FROM qc WHERE check_code LIKE ?", [COHORT_QC[table]])
            _load(con, "qc", [Path(path)])
            continue
        if table in WHOLE_TABLES or table in DELTA_TABLES:
            con.execute(f"DELETE FROM {table}")
        else:
            con.execute(f"DELETE FROM {table} WHERE list_contains(?, settings_id)", [settings_ids])
        _load(con, table, [Path(path)])


def _replace_run(con, run: dict, inputs: Path | None) -> None:
    """The run record replaces the previous one; the input checksums replace those of the run's batches."""
    con.execute("DELETE FROM run")
    con.execute("INSERT INTO run VALUES (?, ?, ?, ?, ?, ?)", [
        run["run_id"], json.dumps(run["config"], sort_keys=True, separators=(",", ":")), run["config_sha256"],
        run["code_version"], json.dumps(run["seeds"], sort_keys=True), run.get("inputs_sha256")])
    if inputs is not None:
        con.execute("DELETE FROM inputs")
        _load(con, "inputs", [inputs])


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the database has table ``name`` (a stage that did not run leaves its tables out)."""
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
    return row is not None and row[0] > 0


def _replace_reporting(con) -> None:
    """Recompute the ``reporting`` checklist rows from the tables just loaded."""
    from radflow.reporting import reporting_frame

    frame = reporting_frame(con)
    con.execute("DELETE FROM reporting")
    con.register("reporting_frame", frame)
    con.execute(f"INSERT INTO reporting SELECT {', '.join(columns('reporting'))} FROM reporting_frame "
                "ORDER BY standard, item")
    con.unregister("reporting_frame")
