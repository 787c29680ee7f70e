"""Pipeline rule `store`: load all batches, the clinical table and the settings into the DuckDB database."""
from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import pandas as pd

from radflow import __version__, store
from radflow.settings import Settings

# The packages whose versions decide the numbers; recorded in DuckDB and RDF (constraints.txt pins them).
RECORDED_PACKAGES = (
    "numpy", "numba", "llvmlite", "scipy", "scikit-image", "SimpleITK", "pydicom", "highdicom", "pandas",
    "pyarrow", "duckdb", "rdflib", "snakemake", "scikit-learn", "scikit-survival", "joblib",
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


def store_run(database: Path, batch_dirs: list[Path], clinical_path: Path, settings_paths: list[Path],
              cohort_tables: dict[str, Path] | None = None) -> None:
    """Load the batches, the clinical table, the settings and the cohort-level tables (``{table: Parquet}``)."""
    cohort_tables = cohort_tables or {}
    settings_docs = []
    for path in settings_paths:
        settings = Settings.from_yaml(path)
        settings_docs.append({"settings_id": settings.settings_id, "name": settings.name, "document": settings.doc})
    stage_of = {"cases": "qc", "scans": "qc", "masks": "qc", "qc": "qc", "features": "features", "features_qc": "features"}
    files = [
        (str(batch / f"{name}.parquet"), sha256_of(batch / f"{name}.parquet"), stage)
        for batch in sorted(batch_dirs)
        for name, stage in stage_of.items()
    ]
    files.append((str(clinical_path), sha256_of(clinical_path), "ingest"))
    files += [(str(path), sha256_of(path), COHORT_STAGE.get(table, table))
              for table, path in sorted(cohort_tables.items())]
    store.load_results(database, sorted(batch_dirs), settings_docs, pd.read_parquet(clinical_path),
                       software_versions(), files, cohort_tables)
