"""Pipeline rule `store`: load all batches, the clinical table and the settings into the DuckDB database.

The database is replaced atomically (``radflow.store``); the rule's declared output is a receipt written after the
replacement (row count of every table), so Snakemake never deletes the last good database.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path

import pandas as pd

from radflow import __version__, store
from radflow.settings import Settings

log = logging.getLogger(__name__)

# The packages whose versions decide the numbers; recorded in DuckDB and RDF (constraints.txt pins them).
RECORDED_PACKAGES = (
    "numpy", "numba", "llvmlite", "scipy", "scikit-image", "SimpleITK", "pydicom", "highdicom", "pandas",
    "pyarrow", "duckdb", "rdflib", "pyshacl", "rocrate", "snakemake", "scikit-learn", "scikit-survival", "joblib",
)

# The stage that writes each cohort-level table (store.COHORT_TABLES).
COHORT_STAGE = {"stability": "stability", "stable_features": "stability", "stability_cases": "stability",
                "models": "model", "model_features": "model", "predictions": "model", "metrics": "model",
                "delta_features": "delta", "delta_qc": "delta"}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def software_versions() -> dict[str, str]:
    versions = {"radflow": __version__}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_receipt(receipt: Path, database: Path, counts: dict[str, int], mismatch: dict[str, int]) -> None:
    """The store rule's output: which database was written, how many rows each table holds and how many cases
    and clinical rows did not match (no timestamps, so an unchanged rerun writes the same bytes)."""
    receipt.parent.mkdir(parents=True, exist_ok=True)
    partial = receipt.with_name(f".{receipt.name}.partial")
    doc = {"database": database.name, "rows": counts, "clinical_match": mismatch}
    partial.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    os.replace(partial, receipt)


def store_run(database: Path, batch_dirs: list[Path], clinical_path: Path | None, settings_paths: list[Path],
              cohort_tables: dict[str, Path] | None = None, emptied_tables: tuple[str, ...] = (),
              receipt: Path | None = None, run_json: Path | None = None, inputs: Path | None = None) -> None:
    """Load the batches, the clinical table (None: no clinical table, the ``clinical`` table is emptied), the
    settings and the cohort-level tables (``{table: Parquet}``); refuses (keeping the previous database) when no
    feature value at all would be stored. ``emptied_tables``: cohort-level tables this run does not produce
    (modelling skipped), emptied so that an earlier run's rows are not taken for this run's. ``run_json`` and
    ``inputs``: the run_record rule's run.json and input checksums (tables ``run`` and ``inputs``)."""
    with tempfile.TemporaryDirectory() as folder:
        empty = {table: Path(folder) / f"{table}.parquet" for table in emptied_tables}
        for table, path in empty.items():
            store.empty_frame(table).to_parquet(path, index=False)
        _store(database, batch_dirs, clinical_path, settings_paths, cohort_tables or {}, empty, receipt, run_json, inputs)


def _store(database: Path, batch_dirs: list[Path], clinical_path: Path | None, settings_paths: list[Path],
           cohort_tables: dict[str, Path], empty_tables: dict[str, Path], receipt: Path | None,
           run_json: Path | None, inputs: Path | None) -> None:
    settings_docs = []
    for path in settings_paths:
        settings = Settings.from_yaml(path)
        settings_docs.append({"settings_id": settings.settings_id, "name": settings.name,
                              "document": settings.canonical_json()})
    stage_of = {"cases": "qc", "scans": "qc", "masks": "qc", "qc": "qc", "features": "features", "features_qc": "features"}
    files = [
        (str(batch / f"{name}.parquet"), sha256_of(batch / f"{name}.parquet"), stage)
        for batch in sorted(batch_dirs)
        for name, stage in stage_of.items()
    ]
    if clinical_path is not None:
        files.append((str(clinical_path), sha256_of(clinical_path), "ingest"))
    clinical = pd.read_parquet(clinical_path) if clinical_path is not None else pd.DataFrame({"case_id": []}, dtype=str)
    files += [(str(path), sha256_of(path), COHORT_STAGE.get(table, table))
              for table, path in sorted(cohort_tables.items())]
    run = json.loads(run_json.read_text()) if run_json is not None else None
    counts = store.load_results(database, sorted(batch_dirs), settings_docs, clinical, software_versions(), files,
                                {**cohort_tables, **empty_tables}, require_features=True, run=run,
                                inputs=inputs)
    mismatch = store.clinical_mismatch(database)
    if mismatch["imaging_without_clinical"] and clinical_path is not None:
        log.warning("%d imaging case(s) have no row in the clinical table (no outcome: left out of modelling)",
                    mismatch["imaging_without_clinical"])
    if mismatch["clinical_without_imaging"]:
        log.warning("%d clinical row(s) match no imaging case (PatientID spelled differently, or no images?)",
                    mismatch["clinical_without_imaging"])
    if receipt is not None:
        write_receipt(receipt, database, counts, mismatch)
