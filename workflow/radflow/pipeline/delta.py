"""Pipeline rule `delta`: delta features of every case's follow-up scans and their smallest detectable change
(``radflow.delta``), from all batches' features and scans tables."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from radflow import store
from radflow.delta import delta_features

log = logging.getLogger(__name__)


def _read_all(paths: list[Path]) -> pd.DataFrame | None:
    frames = [pd.read_parquet(p) for p in paths if Path(p).stat().st_size > 0]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def delta_stage(feature_files: list[Path], scan_files: list[Path], out: Path, qc_out: Path,
                icc_form: str = "ICC(2,1)") -> None:
    features = _read_all(feature_files)
    scans = _read_all(scan_files)
    if features is None or scans is None:
        delta, qc = store.empty_frame("delta_features"), store.empty_frame("qc")
    else:
        delta, qc = delta_features(features, scans, icc_form)
    log.info("%d delta feature rows, %d delta QC rows", len(delta), len(qc))
    out.parent.mkdir(parents=True, exist_ok=True)
    (store.empty_frame("delta_features") if delta.empty else delta)[store.columns("delta_features")].to_parquet(
        out, index=False)
    (store.empty_frame("qc") if qc.empty else qc)[store.columns("qc")].to_parquet(qc_out, index=False)
