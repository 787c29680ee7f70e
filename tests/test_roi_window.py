"""`radflow extract` reads only the ROI's window of a NIfTI image when the settings look at nothing else; the
features are those of the whole image, bit for bit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.extraction import extract_columns, roi_window_margin_mm
from radflow.io import InputError, read_image, read_mask, read_roi_window
from radflow.settings import Settings

SPACING = (0.8, 0.7, 2.5)  # x, y, z as ITK orders them
ORIGIN = (-12.0, 30.5, 100.25)


def write_case(tmp_path, shape=(30, 40, 36), roi_at=(12, 10, 8)):
    """A textured CT-like image (z, y, x array) with a lumpy ROI away from every border, as .nii.gz."""
    rng = np.random.default_rng(7)
    image = rng.normal(40.0, 30.0, shape).round().astype(np.int16)
    mask = np.zeros(shape, dtype=np.uint8)
    z, y, x = np.ogrid[:6, :9, :11]
    blob = ((z - 2.5) / 3.2) ** 2 + ((y - 4) / 4.6) ** 2 + ((x - 5) / 5.8) ** 2 + rng.random((6, 9, 11)) * 0.3 <= 1.0
    mask[roi_at[0]:roi_at[0] + 6, roi_at[1]:roi_at[1] + 9, roi_at[2]:roi_at[2] + 11] = blob
    mask[roi_at[0] + 2, roi_at[1] + 4, roi_at[2] + 5] = 2  # a second label inside the ROI: the tests take the union (ROI)
    paths = []
    for name, array in (("image", image), ("mask", mask)):
        img = sitk.GetImageFromArray(array)
        img.SetSpacing(SPACING)
        img.SetOrigin(ORIGIN)
        path = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(img, str(path), useCompression=True)
        paths.append(path)
    return paths


# the case's mask holds labels 1 and 2 (write_case): the ROI is their union
ROI = "1,2"


def whole_and_windowed(image_path, mask_path, settings):
    image = read_image(image_path)
    whole = extract_columns(image, read_mask(mask_path, image, roi=ROI), settings)
    windowed = extract_columns(*read_roi_window(image_path, mask_path, roi_window_margin_mm(settings), roi=ROI),
                               settings)
    return whole, windowed


def test_window_is_the_roi_box_plus_the_local_intensity_margin(tmp_path):
    image_path, mask_path = write_case(tmp_path)
    image, mask = read_roi_window(image_path, mask_path, margin_mm=6.2, roi=ROI)
    margin = [math.ceil(6.2 / s) for s in SPACING]  # x, y, z voxels
    lo = [max(start - m, 0) for start, m in zip((8, 10, 12), margin)]
    hi = [min(stop + m, n) for stop, m, n in zip((19, 19, 18), margin, (36, 40, 30))]
    assert image.GetSize() == mask.GetSize() == tuple(b - a for a, b in zip(lo, hi))
    assert image.GetSize() != (36, 40, 30)  # smaller than the image on some axis
    assert np.allclose(image.GetOrigin(), [o + a * s for o, a, s in zip(ORIGIN, lo, SPACING)])
    full = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path)))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), full[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]])
    whole_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path))) != 0
    assert int(sitk.GetArrayFromImage(mask).sum()) == int(whole_mask.sum())


@pytest.mark.parametrize("settings_doc", [
    {},  # radflow defaults
    {"discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": 16}},
     "resegmentation": {"range": [0, 120]}},
])
def test_windowed_features_equal_the_whole_image_features(tmp_path, settings_doc):
    image_path, mask_path = write_case(tmp_path)
    settings = Settings.from_dict(settings_doc)
    whole, windowed = whole_and_windowed(image_path, mask_path, settings)
    window = read_roi_window(image_path, mask_path, roi_window_margin_mm(settings), roi=ROI)[0]
    assert window.GetSize() != sitk.ReadImage(str(image_path)).GetSize()
    assert whole["ibsi_code"] == windowed["ibsi_code"] and whole["aggregation"] == windowed["aggregation"]
    np.testing.assert_array_equal(np.array(whole["value"]), np.array(windowed["value"]))  # NaN == NaN here


@pytest.mark.parametrize("settings_doc", [
    {"interpolation": {"enabled": True, "spacing_mm": [1.0, 1.0, 1.0]}},
    {"intensity_normalisation": "z_score"},
])
def test_settings_that_see_more_than_the_roi_get_no_window(settings_doc):
    assert roi_window_margin_mm(Settings.from_dict(settings_doc)) is None
    assert roi_window_margin_mm(Settings.from_dict({})) == pytest.approx(6.2035, abs=1e-4)


def test_cli_extract_of_a_window_equals_the_whole_image(tmp_path):
    import csv
    import subprocess
    import sys

    image_path, mask_path = write_case(tmp_path)
    out = tmp_path / "features.csv"
    subprocess.run([sys.executable, "-m", "radflow", "extract", str(image_path), str(mask_path), "--roi", ROI,
                    "--out", str(out)], check=True, capture_output=True, timeout=600)
    with out.open(newline="") as fh:
        written = [float(r["value"]) if r["value"] else math.nan for r in csv.DictReader(fh)]
    image = read_image(image_path)
    whole = extract_columns(image, read_mask(mask_path, image, roi=ROI), Settings.from_dict({}))
    np.testing.assert_array_equal(np.array(written), np.array(whole["value"]))


def test_a_mask_of_another_size_is_refused(tmp_path):
    image_path, _ = write_case(tmp_path)
    other = tmp_path / "other.nii.gz"
    sitk.WriteImage(sitk.Image([5, 5, 5], sitk.sitkUInt8), str(other))
    with pytest.raises(InputError, match=r"its voxels, \(5, 5, 5\) x \[1, 1, 1\] mm, are not the image.s, .*resample it"):
        read_roi_window(image_path, other, margin_mm=6.2)


@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int16])
def test_mask_extent_is_the_nonzero_voxels_first_and_last_index(dtype):
    """roi.mask_extent (behind crop_box, bounding_box and the resampling window) against np.nonzero."""
    from radflow.imaging.roi import mask_extent

    rng = np.random.default_rng(3)
    for _ in range(50):
        mask = np.zeros(rng.integers(1, 12, size=3), dtype=dtype)
        for _ in range(int(rng.integers(1, 4))):
            mask[tuple(int(rng.integers(0, n)) for n in mask.shape)] = 2 if dtype != np.bool_ else True
        expected = tuple((int(i.min()), int(i.max())) for i in np.nonzero(mask))
        assert mask_extent(mask) == expected
    assert mask_extent(np.zeros((3, 4, 5), dtype=dtype)) is None
