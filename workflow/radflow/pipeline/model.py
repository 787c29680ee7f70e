"""Pipeline rule `model`: outcome models from the per-batch feature tables and the clinical table.

Reads the batches' features.parquet / qc.parquet, the pseudonymised clinical table and (when given) the stability
stage's stable feature list; writes models, model_features, predictions and metrics Parquet files (loaded into
DuckDB by the store rule) and every final fitted pipeline as ``<models_dir>/<model_id>.joblib`` with its sha256 in
the models table. A cohort too small for nested cross-validation gives empty tables and a models row saying why.
"""
from __future__ import annotations

import logging
from pathlib import Path

import joblib
import pandas as pd

from radflow import store
from radflow.modelling.data import delta_rows, feature_matrix, modelling_frame
from radflow.modelling.study import StudyConfig, run_study
from radflow.pipeline.store import sha256_of

log = logging.getLogger(__name__)

OUTPUT_TABLES = store.WHOLE_TABLES


def _read_all(paths: list[Path], columns: list[str] | None = None) -> pd.DataFrame:
    frames = [pd.read_parquet(p, columns=columns) for p in paths if Path(p).stat().st_size > 0]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns or [])


def _conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The frame with exactly the store schema's columns, in order (missing ones as nulls)."""
    out = store.empty_frame(table) if frame.empty else frame.copy()
    for column in store.columns(table):
        if column not in out.columns:
            out[column] = None
    return out[store.columns(table)]


def model_stage(feature_files: list[Path], qc_files: list[Path], clinical_path: Path, stable_path: Path | None,
                config: dict, outdir: Path, models_dir: Path, n_jobs: int = 1,
                delta_path: Path | None = None) -> dict[str, pd.DataFrame]:
    study = StudyConfig.from_dict(config)
    outdir.mkdir(parents=True, exist_ok=True)
    models_dir.mkdir(parents=True, exist_ok=True)
    features = _read_all(feature_files, ["case_id", "scan", "roi", "settings_id", "feature", "ibsi_code",
                                         "aggregation", "value"])
    qc = _read_all(qc_files, ["case_id", "scan", "roi", "severity"])
    stable = pd.read_parquet(stable_path) if stable_path else None
    if stable is not None:
        log.info("restricting to %d stable features", len(stable))
    if study["features_from"] != "scan":  # delta radiomics: change from baseline to a follow-up timepoint
        if delta_path is None:
            raise ValueError(f"model.features_from {study['features_from']} needs the delta_features table")
        features = delta_rows(pd.read_parquet(delta_path), study["delta_timepoint"], study["features_from"])
        matrix, catalogue = feature_matrix(features, "delta", stable, None, study["max_missing"])
    else:
        matrix, catalogue = feature_matrix(features, study["scan"], stable, qc, study["max_missing"])
    clinical = pd.read_parquet(clinical_path)
    frame = modelling_frame(matrix, clinical, study["centre"], study["covariates"])
    log.info("modelling frame: %d cases x %d radiomic features", len(frame), matrix.shape[1])

    if study["enabled"]:
        result = run_study(frame, catalogue, clinical, study, n_jobs)
        frames = result.frames()
    else:
        result, frames = None, {name: pd.DataFrame() for name in OUTPUT_TABLES}
    if result is not None and result.fitted:
        paths = {}
        for model_id, fitted in sorted(result.fitted.items()):
            path = models_dir / f"{model_id}.joblib"
            joblib.dump(fitted, path, compress=3)
            paths[model_id] = (str(path), sha256_of(path))
        models = frames["models"]
        models["model_file"] = [paths.get(m, (None, None))[0] for m in models["model_id"]]
        models["model_sha256"] = [paths.get(m, (None, None))[1] for m in models["model_id"]]
    out = {}
    for name in OUTPUT_TABLES:
        out[name] = _conform(frames[name], name)
        out[name].to_parquet(outdir / f"{name}.parquet", index=False)
    return out
