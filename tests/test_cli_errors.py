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


def _cut(path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


@pytest.mark.parametrize("name, expected", [
    ("image.nii", "the file is truncated ("),  # ITK would read the missing voxels as 0s, without a word
    ("image.nrrd", "its pixel data are truncated or corrupt (["),
    ("image.nii.gz", "its pixel data are truncated or corrupt ("),
], ids=["nii", "nrrd", "nii.gz"])
def test_a_truncated_image_or_mask_is_refused(tmp_path, name, expected):
    import numpy as np
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    path, mask = tmp_path / name, tmp_path / name.replace("image", "mask")
    sitk.WriteImage(sitk.GetImageFromArray(rng.integers(-1000, 1000, (8, 64, 64)).astype(np.int16)), str(path))
    roi = np.zeros((8, 64, 64), dtype=np.uint8)
    roi[:, 20:40, 20:40] = 1
    sitk.WriteImage(sitk.GetImageFromArray(roi), str(mask))
    for cut in (path, mask):
        _cut(cut, 0.75)
    good = tmp_path / "good.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(roi), str(good))
    # the image is read by the ROI-window reader, the mask (first) by the whole-file reader: both refuse
    assert_one_line(radflow("extract", str(path), str(good)), f"cannot read image {path}: {expected}")
    if name == "image.nii":  # a 75 % gzip stream of a mostly empty mask may still hold every voxel
        assert_one_line(radflow("extract", str(good), str(mask)), f"cannot read mask {mask}: {expected}")


def test_an_uncompressed_nifti_pair_with_a_short_img_is_refused(tmp_path):
    import numpy as np
    import SimpleITK as sitk

    from radflow import io

    header = tmp_path / "image.hdr"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 16, 16), dtype=np.float32)), str(header))
    assert io.nifti_shortfall(header) == ""
    _cut(tmp_path / "image.img", 0.5)
    assert io.nifti_shortfall(header) == f"{4 * 16 * 16 * 4 // 2} bytes, its header needs {4 * 16 * 16 * 4}"


def test_a_sheared_nifti_is_named_as_such_not_as_an_unknown_format(tmp_path):
    """A header-only affine registration leaves a NIfTI whose sform shears the grid; ITK refuses it without a qform."""
    import struct

    import numpy as np
    import SimpleITK as sitk

    path = tmp_path / "sheared.nii"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((6, 16, 16), dtype=np.int16)), str(path))
    header = bytearray(path.read_bytes())
    struct.pack_into("<hh", header, 252, 0, 2)  # qform_code 0 (none), sform_code 2 (aligned)
    for row, values in ((280, (1.0, 0.05, 0.0, 0.0)), (296, (0.0, 1.0, 0.0, 0.0)), (312, (0.0, 0.0, 1.0, 0.0))):
        struct.pack_into("<4f", header, row, *values)  # srow_x: x also moves with the row index: a shear
    path.write_bytes(bytes(header))
    assert_one_line(radflow("extract", str(path), str(path)),
                    f"cannot read image {path}: its orientation (NIfTI sform) is sheared, not a rotation, and it "
                    "has no qform")
