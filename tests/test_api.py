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


def _volume(values: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((1.0, 1.0, 2.0))
    return image


@pytest.fixture(scope="module")
def mr_like(tmp_path_factory):
    """An MR-like volume (signal 100-900, no air) and a CT-like one (air at the corners), with one box ROI."""
    rng = np.random.default_rng(3)
    mr = rng.uniform(100, 900, (10, 48, 48)).round()  # MR NIfTIs hold integers, which pass CT's IVH as HU do
    ct = rng.normal(40, 10, (10, 48, 48)).round()
    ct[:, :6, :6] = -1000.0  # air outside the body
    mask = np.zeros((10, 48, 48), dtype=np.uint8)
    mask[3:7, 20:30, 20:30] = 1
    folder = tmp_path_factory.mktemp("air")
    paths = {}
    for name, values in (("mr", mr), ("ct", ct), ("mask", mask)):
        paths[name] = folder / f"{name}.nii.gz"
        sitk.WriteImage(_volume(values.astype(np.int16) if name != "mask" else values), str(paths[name]))
    return paths


def test_ct_settings_on_an_image_without_air_are_warned_about(mr_like):
    """An MR or PET NIfTI given with radflow's default (CT) settings gets CT bins without a word otherwise."""
    from radflow.extraction import CtWithoutAirWarning

    with pytest.warns(CtWithoutAirWarning, match=r"mr.nii.gz is taken as CT .* no voxel at or below -500 HU "
                                                 r"\(values 100 to 900\)\. An MR or PET image needs"):
        radflow.extract(mr_like["mr"], mr_like["mask"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", CtWithoutAirWarning)
        radflow.extract(mr_like["ct"], mr_like["mask"])  # air at its corners
        radflow.extract(mr_like["mr"], mr_like["mask"], REPO / "config" / "settings" / "mr_zscore_fbn32.yaml")


def test_radflow_extract_looks_for_air_in_the_first_slice_when_it_reads_only_the_roi(mr_like, tmp_path):
    def stderr(image: str) -> str:
        result = subprocess.run([sys.executable, "-m", "radflow", "extract", str(mr_like[image]),
                                 str(mr_like["mask"]), "--out", str(tmp_path / f"{image}.csv")],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stderr

    assert "radflow: warning: " in stderr("mr") and "holds no air" in stderr("mr")
    assert "in its first slice" in stderr("mr")  # the default settings read only the ROI's window
    assert "holds no air" not in stderr("ct")
