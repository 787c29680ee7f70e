"""Every `radflow` subcommand turns known failures into one line `radflow: error: ...`, exit 2, no traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ibsi_reference import IBSI

PHANTOM = IBSI / "digital_phantom"


def radflow(*args: str, cwd=None, env_extra=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RADFLOW_PSEUDONYM_KEY"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "radflow", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def assert_one_line(result, expected: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("radflow: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"radflow: error: {expected}"), result.stderr[-2000:]


def test_missing_key(tmp_path):
    (tmp_path / "in").mkdir()
    result = radflow("discover", str(tmp_path / "in"), str(tmp_path / "inv.json"), "--rois", "[]")
    assert_one_line(result, "no pseudonymisation key: set $RADFLOW_PSEUDONYM_KEY")


def test_missing_key_file(tmp_path):
    (tmp_path / "c.csv").write_text("patient_id\nP1\n")
    result = radflow("clinical", str(tmp_path / "c.csv"), str(tmp_path / "c.parquet"), "--key-file",
                     str(tmp_path / "nokey"))
    assert_one_line(result, f"pseudonymisation key file {tmp_path / 'nokey'} does not exist")


def test_missing_input_path(tmp_path):
    assert_one_line(radflow("extract", str(tmp_path / "no.nii.gz"), str(tmp_path / "m.nii.gz")),
                    f"image {tmp_path / 'no.nii.gz'} does not exist")


def test_unreadable_image(tmp_path):
    (tmp_path / "x.nii.gz").write_text("not an image")
    assert_one_line(radflow("extract", str(tmp_path / "x.nii.gz"), str(tmp_path / "x.nii.gz")),
                    f"cannot read image {tmp_path / 'x.nii.gz'}")


@pytest.fixture
def phantom():
    if not PHANTOM.exists():
        pytest.skip("../shared/ibsi is absent")
    return str(PHANTOM / "image.nii.gz"), str(PHANTOM / "mask.nii.gz")


def test_unknown_settings_key(tmp_path, phantom):
    (tmp_path / "s.yaml").write_text("discretisation: {texture: {bin_widht: 25}}\n")
    assert_one_line(radflow("extract", *phantom, "--settings", str(tmp_path / "s.yaml")),
                    f"{tmp_path / 's.yaml'}: unknown settings key discretisation.texture.'bin_widht'")


def test_invalid_settings_value(tmp_path, phantom):
    (tmp_path / "s.yaml").write_text("interpolation: {dimensions: 4D}\n")
    assert_one_line(radflow("extract", *phantom, "--settings", str(tmp_path / "s.yaml")),
                    f"{tmp_path / 's.yaml'}: interpolation.dimensions must be 2D or 3D")


def test_unparsable_settings(tmp_path, phantom):
    (tmp_path / "s.yaml").write_text("a: [1\n")
    assert_one_line(radflow("extract", *phantom, "--settings", str(tmp_path / "s.yaml")),
                    f"{tmp_path / 's.yaml'}: not valid YAML (while parsing")


def test_missing_settings_file(tmp_path):
    assert_one_line(radflow("filter", str(tmp_path), "--settings", str(tmp_path / "f.yaml"), "--out", "x.nii.gz"),
                    f"settings file {tmp_path / 'f.yaml'} does not exist")


def test_invalid_json_option(tmp_path):
    assert_one_line(radflow("stability", "a", "b", "c", "--options", "{method: x"), "Expecting property name")


def test_clinical_without_patient_id(tmp_path):
    (tmp_path / "c.csv").write_text("subject,outcome\nP1,1\n")
    result = radflow("clinical", str(tmp_path / "c.csv"), str(tmp_path / "c.parquet"),
                     env_extra={"RADFLOW_PSEUDONYM_KEY": "cli-error-test-key: long enough"})
    assert_one_line(result, "c.csv has no patient_id column")


def test_pyradiomics_file_with_an_unknown_interpolator(tmp_path, phantom):
    (tmp_path / "p.yaml").write_text("setting: {interpolator: sitkGaussian}\n")
    assert_one_line(radflow("settings", "import-pyradiomics", str(tmp_path / "p.yaml"), "-o", str(tmp_path / "o.yaml")),
                    f"{tmp_path / 'p.yaml'}: interpolator 'sitkGaussian'")


def test_missing_database_for_export(tmp_path):
    assert_one_line(radflow("export", "wide", str(tmp_path / "r.duckdb"), "-o", str(tmp_path / "w.csv")),
                    f"results database {tmp_path / 'r.duckdb'} does not exist")


def test_a_bug_keeps_its_traceback_when_asked(tmp_path):
    result = radflow("extract", str(tmp_path / "no.nii.gz"), "m", env_extra={"RADFLOW_TRACEBACK": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_invalid_stability_options():
    assert_one_line(radflow("stability", "a", "b", "c", "--options", '{"metod": "test-retest"}'),
                    "unknown stability settings ['metod']")


@pytest.mark.parametrize("shape, vector, expected", [
    ((40, 40), False, "is a 2D image: radflow needs one 3D volume"),
    ((2, 6, 40, 40), False, "is a 4D image"),
    ((6, 40, 40, 3), True, "has 3 values per voxel (a colour or vector image)"),
], ids=["2D", "4D", "colour"])
def test_an_image_that_is_not_one_3d_volume(tmp_path, shape, vector, expected):
    import numpy as np
    import SimpleITK as sitk

    path = tmp_path / "image.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones(shape, dtype=np.uint8), isVector=vector), str(path))
    mask = tmp_path / "mask.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((6, 40, 40), dtype=np.uint8)), str(mask))
    assert_one_line(radflow("extract", str(path), str(mask)), f"image {path} {expected}")
    assert_one_line(radflow("extract", str(mask), str(path)), f"mask {path} {expected}")
