"""IBSI-2 phase 2: intensity statistics of the filtered CT phantom (GTV-1) for configurations A (2D, native grid)
and B (3D, 1 mm tricubic), tests 1-9, against ../shared/ibsi2/phase2_reference_features.csv, row by row.

Each settings file config/ibsi2/<test>.yaml goes through the same ``prepare`` as the pipeline (interpolation,
re-segmentation on the unfiltered HU, filter, crop); a row passes when |round3(value) - reference| <= tolerance.
"""
from __future__ import annotations

import csv
import math
from functools import lru_cache

import pytest
import SimpleITK as sitk

from conftest import REPO
from ibsi_reference import IBSI, SHARED, round3

REFERENCE = SHARED / "ibsi2" / "phase2_reference_features.csv"
CONFIG = REPO / "config" / "ibsi2"


def _rows() -> list[dict]:
    if not REFERENCE.exists():
        return []
    with REFERENCE.open(newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["reference_available"] == "yes"]


@lru_cache(maxsize=None)
def _features(test_id: str) -> dict[str, float]:
    from radflow.features import statistics
    from radflow.imaging.preprocess import prepare
    from radflow.settings import Settings

    folder = IBSI / "ct_phantom" / "nifti"
    image, mask = sitk.ReadImage(str(folder / "image.nii.gz")), sitk.ReadImage(str(folder / "mask.nii.gz"))
    settings = Settings.from_yaml(CONFIG / f"{test_id}.yaml")
    roi = prepare(image, mask, settings)
    return {fv.ibsi_code: fv.value for fv in statistics.compute(roi, settings)}


@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"{r['test_id']}-{r['feature_tag']}")
def test_phase2_feature(row):
    if not (IBSI / "ct_phantom" / "nifti").exists():
        pytest.skip("the IBSI CT phantom is absent")
    value = _features(row["test_id"])[row["ibsi_code"]]
    reference, tolerance = float(row["reference_value"]), float(row["tolerance"])
    assert math.isfinite(value) and abs(round3(value) - reference) <= tolerance + 1e-12, (
        f"{row['feature_name']}: {value:.6g} (round3 {round3(value)}) vs {reference} +/- {tolerance}"
    )


def test_every_phase2_test_has_a_settings_file():
    ids = {row["test_id"] for row in _rows()}
    if not ids:
        pytest.skip(f"{REFERENCE} is absent")
    assert ids == {path.stem for path in CONFIG.glob("*.yaml")}
