"""The Python API a notebook user calls: ``radflow.extract``, ``radflow.Settings``, ``radflow.open_results`` and
``radflow.wide``; ``import radflow`` itself stays cheap."""
from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

import radflow
from conftest import REPO
from ibsi_reference import IBSI, references, within_tolerance

PHANTOM = IBSI / "digital_phantom"
PHANTOM_SETTINGS = REPO / "config" / "ibsi" / "digital_phantom.yaml"


def _need_phantom():
    if not PHANTOM.exists():
        pytest.skip("../shared/ibsi is absent")


@pytest.fixture(scope="module")
def cli_rows(tmp_path_factory) -> list[dict]:
    _need_phantom()
    out = tmp_path_factory.mktemp("cli") / "features.csv"
    result = subprocess.run([sys.executable, "-m", "radflow", "extract", str(PHANTOM / "image.nii.gz"),
                             str(PHANTOM / "mask.nii.gz"), "--settings", str(PHANTOM_SETTINGS), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    with out.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _same_as_cli(frame: pd.DataFrame, rows: list[dict]) -> None:
    assert list(frame.columns) == ["family", "feature", "ibsi_code", "aggregation", "value", "reason"]
    assert len(frame) == len(rows)
    for got, want in zip(frame.itertuples(index=False), rows):
        assert (got.family, got.feature, got.ibsi_code, got.aggregation, got.reason) == (
            want["family"], want["feature"], want["ibsi_code"], want["aggregation"], want["reason"])
        # the CSV holds 17 significant digits: round-trip exact
        if want["value"] == "":
            assert math.isnan(got.value) and got.reason
        else:
            assert got.value == float(want["value"]) and not got.reason, (got.feature, got.aggregation)


def test_extract_from_paths_equals_the_cli(cli_rows):
    frame = radflow.extract(PHANTOM / "image.nii.gz", PHANTOM / "mask.nii.gz", PHANTOM_SETTINGS)
    _same_as_cli(frame, cli_rows)
    values = {(r.ibsi_code, r.aggregation): r.value for r in frame.itertuples()}
    refs = references("digital_phantom")
    assert refs and all(within_tolerance(values[(r.ibsi_code, r.aggregation)], r) for r in refs)


def test_extract_from_simpleitk_images_and_a_settings_object_equals_the_cli(cli_rows):
    image = sitk.ReadImage(str(PHANTOM / "image.nii.gz"))
    mask = sitk.ReadImage(str(PHANTOM / "mask.nii.gz"))
    _same_as_cli(radflow.extract(image, mask, radflow.Settings.from_yaml(PHANTOM_SETTINGS)), cli_rows)


def test_extract_from_numpy_arrays_with_spacing_equals_the_cli(cli_rows):
    image = sitk.ReadImage(str(PHANTOM / "image.nii.gz"))
    mask = sitk.ReadImage(str(PHANTOM / "mask.nii.gz"))
    frame = radflow.extract(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask), str(PHANTOM_SETTINGS),
                            spacing=image.GetSpacing(), origin=image.GetOrigin())
    _same_as_cli(frame, cli_rows)


def test_numpy_input_without_spacing_is_refused():
    with pytest.raises(ValueError, match="spacing"):
        radflow.extract(np.zeros((4, 4, 4)), np.ones((4, 4, 4)))


@pytest.mark.parametrize("spacing", [(-1, 1, 1), (0, 1, 1), (1, 1), (1, float("nan"), 1)])
def test_numpy_input_with_an_impossible_spacing_is_refused(spacing):
    with pytest.raises(ValueError, match="spacing must be three positive voxel sizes"):
        radflow.extract(np.zeros((4, 4, 4)), np.ones((4, 4, 4)), spacing=spacing)


def test_numpy_mask_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="differs from image shape"):
        radflow.extract(np.zeros((4, 4, 4)), np.ones((4, 4, 5)), spacing=(1, 1, 1))


def test_import_radflow_loads_no_numerical_library():
    code = "import sys, radflow; print(sorted(m for m in ('numpy', 'pandas', 'SimpleITK', 'duckdb', 'numba') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert {"extract", "Settings", "open_results", "wide"} <= set(dir(radflow))
