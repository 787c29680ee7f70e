"""The modelling stage on the demo cohort (40 patients, demo seed 7): the planted texture signal is found, and with
the outcome permuted the AUC's confidence interval contains 0.5.

Features come from the demo's own test scans and lesion masks, rendered in memory (no DICOM round trip) and
extracted with the demo settings (~0.15 s a patient); the stage runs through ``pipeline.model.model_stage`` (files in,
files out), with 8 whole-procedure bootstrap cohorts (the interval's model part) and no permutation test to stay
fast.
"""
from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from conftest import REPO
from radflow import demo
from radflow.extraction import extract_pair
from radflow.pipeline.model import model_stage
from radflow.pipeline.store import sha256_of
from radflow.settings import Settings

pytestmark = pytest.mark.slow
N_PATIENTS, DEMO_SEED = 40, 7
CONFIG = {"binary_models": ["logistic_l1/radiomics"], "survival_models": ["cox_ridge/radiomics"],
          "n_bootstrap": 200, "n_permutations": 0, "n_bootstrap_procedure": 8}


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_features")
    settings = Settings.from_yaml(REPO / "config" / "settings" / "ct_iso1mm_fbs25.yaml")
    tables, clinical = [], []
    for index in range(N_PATIENTS):
        patient = demo.sample_patient(DEMO_SEED, index)
        stored, mask = demo.render_scan(patient, 0)
        image = sitk.GetImageFromArray(stored.astype(np.float64) + demo.RESCALE_INTERCEPT)
        image.SetSpacing(tuple(float(s) for s in patient.grid.spacing[::-1]))
        roi = sitk.GetImageFromArray(mask.astype(np.uint8))
        roi.CopyInformation(image)
        table = extract_pair(image, roi, settings)
        table.insert(0, "settings_id", settings.settings_id)
        table.insert(0, "roi", "GTV")
        table.insert(0, "scan", "test")
        table.insert(0, "case_id", patient.patient_id)
        tables.append(table)
        row = demo.clinical_row(patient)
        row["case_id"] = row.pop("patient_id")
        clinical.append(row)
    pd.concat(tables, ignore_index=True).to_parquet(folder / "features.parquet", index=False)
    pd.DataFrame(clinical).to_parquet(folder / "clinical.parquet", index=False)
    return folder


def run(folder, name: str, **options) -> dict[str, pd.DataFrame]:
    return model_stage([folder / "features.parquet"], [], folder / "clinical.parquet", None, {**CONFIG, **options},
                       folder / name / "tables", folder / name / "models")


def auc(metrics: pd.DataFrame) -> pd.Series:
    return metrics[(metrics["metric"] == "auc") & (metrics["validation"] == "cv")].iloc[0]


def test_planted_signal_is_found_and_reruns_are_identical(demo_inputs):
    first = run(demo_inputs, "first")
    row = auc(first["metrics"])
    assert row["value"] > 0.75 and row["ci_lower"] > 0.5, row.to_dict()
    c_index = first["metrics"].query("metric == 'c_index'").iloc[0]
    assert c_index["value"] > 0.55
    # texture / intensity-dispersion features carry the planted heterogeneity, not size
    chosen = first["model_features"].query("model_id == 'binary.logistic_l1.radiomics' and weight != 0")
    assert len(chosen) >= 1
    assert not chosen["ibsi_code"].isin(["RNU0", "YEKZ"]).all()  # not just mesh / voxel volume

    again = run(demo_inputs, "again")
    for name in ("metrics", "predictions", "model_features"):
        pd.testing.assert_frame_equal(first[name], again[name])
    assert first["models"]["model_sha256"].tolist() == again["models"]["model_sha256"].tolist()  # same bytes
    models = first["models"].set_index("model_id")
    for model_id, path in models["model_file"].items():
        assert sha256_of(path) == models.at[model_id, "model_sha256"]
        fitted = joblib.load(path)
        assert hasattr(fitted, "predict")


def test_permuted_outcome_gives_an_auc_interval_containing_one_half(demo_inputs):
    rows = [auc(run(demo_inputs, f"permuted{seed}", permute_outcome=True, seed=seed, survival_models=[])["metrics"])
            for seed in (20240611, 1, 2)]
    covered = [r["ci_lower"] <= 0.5 <= r["ci_upper"] for r in rows]
    assert covered[0], rows[0].to_dict()  # the default seed
    assert sum(covered) >= 2
    assert abs(np.mean([r["value"] for r in rows]) - 0.5) < 0.1
