"""Images with voxels that hold no value (NaN, infinite), as parametric MR and PET maps and some converters write
them: the voxels leave the intensity mask with a warning, the rest of the ROI is extracted, QC says so, and a ROI
without a single finite intensity is a clear error."""
from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from radflow import qc
from radflow.imaging import normalisation, resegmentation

SPACING = (0.8, 0.8, 2.0)  # x, y, z as SimpleITK takes it
NAN_VOXELS = ((5, 12, 14), (6, 15, 15), (7, 18, 20))  # (z, y, x), inside the ROI


def _image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    return image


def _ct_and_mask() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ct = np.round(rng.normal(40.0, 30.0, (12, 32, 32))).astype(np.float32)
    mask = np.zeros(ct.shape, dtype=np.uint8)
    mask[3:9, 10:22, 11:23] = 1
    return ct, mask


def _settings(path: Path, **resegmentation_settings) -> Path:
    doc = {
        # not the IVH: its intensity range is the re-segmentation range (IBSI), which the reference below sets
        "families": ["morphology", "local_intensity", "statistics", "intensity_histogram", "glcm", "glszm", "ngtdm"],
        "resegmentation": {"range": None, "outlier_sigma": None, **resegmentation_settings},
        "discretisation": {"texture": {"method": "fixed_bin_size", "bin_width": 25, "lower_bound": -1000},
                           "ivh": {"method": "none"}},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _extract(tmp_path: Path, image: Path, mask: Path, settings: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radflow", "extract", str(image), str(mask), "--settings",
                           str(settings), "--out", str(tmp_path / f"{image.stem}.csv")],
                          capture_output=True, text=True, timeout=600)


def _rows(tmp_path: Path, image: Path) -> dict[tuple[str, str], dict]:
    with (tmp_path / f"{image.stem}.csv").open(newline="") as fh:
        return {(r["ibsi_code"], r["aggregation"]): r for r in csv.DictReader(fh)}


def test_nan_voxels_leave_the_intensity_mask_exactly_as_a_resegmentation_would(tmp_path):
    """Reference: the same image with the NaN voxels at 30000 HU and a re-segmentation range that drops them, which
    gives the same morphological and intensity masks by another route. Every family but local intensity must agree
    to the bit; local intensity's sphere means would read the missing values, so it is undefined, with the reason."""
    ct, mask = _ct_and_mask()
    with_nan, with_outlier = ct.copy(), ct.copy()
    for voxel in NAN_VOXELS:
        with_nan[voxel] = np.nan
        with_outlier[voxel] = 30000.0
    sitk.WriteImage(_image(mask), str(tmp_path / "mask.nrrd"))
    sitk.WriteImage(_image(with_nan), str(tmp_path / "nan.nrrd"))
    sitk.WriteImage(_image(with_outlier), str(tmp_path / "outlier.nrrd"))

    run = _extract(tmp_path, tmp_path / "nan.nrrd", tmp_path / "mask.nrrd", _settings(tmp_path / "plain.yaml"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"{len(NAN_VOXELS)} of the ROI's {int(mask.sum())} voxels without a finite intensity" in run.stderr
    reference = _extract(tmp_path, tmp_path / "outlier.nrrd", tmp_path / "mask.nrrd",
                         _settings(tmp_path / "ranged.yaml", range=[-1000, 3000]))
    assert reference.returncode == 0, reference.stderr[-2000:]

    got, want = _rows(tmp_path, tmp_path / "nan.nrrd"), _rows(tmp_path, tmp_path / "outlier.nrrd")
    assert got.keys() == want.keys()
    compared = 0
    for key, row in got.items():
        if row["family"] == "local_intensity":
            assert row["value"] == "" and "non-finite intensities" in row["reason"], row
            continue
        assert row["value"] == want[key]["value"], (key, row["value"], want[key]["value"])
        compared += row["value"] != ""
    assert compared > 100
    assert math.isfinite(float(got[("Q4LE", "none")]["value"]))


def test_a_roi_without_any_finite_intensity_is_a_clear_error(tmp_path):
    ct, mask = _ct_and_mask()
    ct[mask != 0] = np.nan
    sitk.WriteImage(_image(mask), str(tmp_path / "mask.nrrd"))
    sitk.WriteImage(_image(ct), str(tmp_path / "all_nan.nrrd"))
    run = _extract(tmp_path, tmp_path / "all_nan.nrrd", tmp_path / "mask.nrrd", _settings(tmp_path / "s.yaml"))
    assert run.returncode != 0
    assert f"no ROI voxel has a finite intensity (all {int(mask.sum())} are NaN or infinite)" in run.stderr
    assert "Traceback" not in run.stderr


def test_intensity_mask_and_outlier_limits_ignore_non_finite_voxels():
    image = np.array([[[0.0, 10.0, 20.0, np.nan, np.inf, 1000.0]]])
    morph = np.ones(image.shape, dtype=bool)
    plain = resegmentation.intensity_mask(image, morph)
    assert plain.tolist() == [[[True, True, True, False, False, True]]]
    # mean +/- 1 SD of the four finite values (0, 10, 20, 1000: mean 257.5, SD 428.9) keeps all but 1000
    outliers = resegmentation.intensity_mask(image, morph, outlier_sigma=1.0)
    assert outliers.tolist() == [[[True, True, True, False, False, False]]]


def test_normalisation_is_fitted_on_the_finite_voxels():
    rng = np.random.default_rng(3)
    image = rng.normal(300.0, 80.0, (4, 16, 16))
    finite = image.copy()
    image[0, :3, :3] = np.nan
    image[1, 0, 0] = -np.inf
    for method in ("z_score", "percentile"):
        assert normalisation.fit(image, method) == normalisation.fit(finite[np.isfinite(image)], method)
    with pytest.raises(normalisation.NormalisationError, match="no voxel has a finite intensity"):
        normalisation.fit(np.full((2, 2, 2), np.nan), "z_score")


def test_qc_warns_about_non_finite_roi_voxels_and_passes_integer_images():
    ct, mask = _ct_and_mask()
    for voxel in NAN_VOXELS:
        ct[voxel] = np.nan
    ct[0, 0, 0] = np.nan  # outside the ROI: not counted
    results = {r.code: r for r in qc.check_roi(_image(ct), _image(mask), "GTV", 10)}
    finite = results["ROI_NON_FINITE"]
    assert (finite.severity, finite.value) == (qc.WARN, float(len(NAN_VOXELS)))
    integer = {r.code: r for r in qc.check_roi(_image(np.zeros(ct.shape, np.int16)), _image(mask), "GTV", 10)}
    assert integer["ROI_NON_FINITE"].severity == qc.PASS


@pytest.mark.parametrize("name", ["map.nii", "map.nii.gz", "map.hdr"])
def test_nifti_nan_and_inf_voxels_are_read_as_stored(tmp_path, name):
    """ITK's NIfTI reader turns NaN and infinite floats into 0s; radflow's readers keep them, so that a parametric
    map's missing values are not taken for zero intensities. Checked through both readers: the whole file and the
    ROI window (``radflow extract``'s), whose box holds only some of them."""
    from radflow import io

    rng = np.random.default_rng(5)
    array = rng.normal(1.0, 0.2, (6, 20, 24)).astype(np.float32)
    special = {(1, 2, 3): np.nan, (4, 10, 12): np.inf, (5, 19, 23): -np.inf, (2, 11, 13): np.nan}
    for voxel, value in special.items():
        array[voxel] = value
    path = tmp_path / name
    sitk.WriteImage(_image(array), str(path))
    assert np.isfinite(sitk.GetArrayViewFromImage(sitk.ReadImage(str(path)))).all()  # what ITK alone gives

    whole = sitk.GetArrayFromImage(io.read_image(path))
    np.testing.assert_array_equal(whole, array)  # NaN == NaN for assert_array_equal

    mask = np.zeros(array.shape, dtype=np.uint8)
    mask[2:4, 9:13, 11:15] = 1  # the window (1 mm margin: two voxels in-plane, one slice) holds two of the four
    sitk.WriteImage(_image(mask), str(tmp_path / "mask.nii.gz"))
    image, _ = io.read_roi_window(path, tmp_path / "mask.nii.gz", margin_mm=1.0)
    window = sitk.GetArrayFromImage(image)
    z0, y0, x0 = (round(o / s) for o, s in zip(image.GetOrigin()[::-1], SPACING[::-1]))
    assert (z0, y0, x0) == (1, 7, 9)
    np.testing.assert_array_equal(window, array[z0:z0 + window.shape[0], y0:y0 + window.shape[1],
                                                x0:x0 + window.shape[2]])
    assert np.isnan(window).sum() == 1 and np.isinf(window).sum() == 1


@pytest.mark.parametrize("order", [0, 1, 3])
def test_resampling_keeps_missing_voxels_local(order):
    """One NaN voxel in a smooth image resampled from 0.7 x 0.7 x 3 mm to 1 mm: missing are exactly the target voxels
    whose nearest / linear stencil gives it a weight (the cubic spline too: its prefilter would otherwise carry the
    NaN along whole axes), and the other voxels are what the same interpolation of the image gives away from it."""
    from radflow.imaging import resampling

    z, y, x = np.meshgrid(np.arange(12) * 3.0, np.arange(30) * 0.7, np.arange(30) * 0.7, indexing="ij")
    smooth = 100.0 + 2.0 * z + np.sin(y / 4.0) * 30.0 + x
    with_nan = smooth.copy()
    with_nan[6, 15, 15] = np.nan
    grids = resampling.grid_for(smooth.shape, (3.0, 0.7, 0.7), (1.0, 1.0, 1.0))
    got = resampling.resample_array(with_nan, grids, order)
    indicator = np.zeros(smooth.shape)
    indicator[6, 15, 15] = 1.0
    touched = resampling.resample_array(indicator, grids, min(order, 1)) > 0
    assert touched.any()
    np.testing.assert_array_equal(np.isnan(got), touched)
    reference = resampling.resample_array(smooth, grids, order)
    far = ~touched
    if order <= 1:  # local stencils: bit-identical wherever the NaN has no weight
        np.testing.assert_array_equal(got[far], reference[far])
    else:  # the spline's tails see the filled value (the neighbours' mean) a little
        assert np.max(np.abs(got[far] - reference[far])) < 0.5


def test_missing_voxels_are_filled_into_gaps_and_their_reach_is_a_box():
    from radflow.imaging import missing_values

    array = np.arange(27, dtype=np.float64).reshape(3, 3, 3)
    array[1, 1, :] = np.nan  # a row of three: the ends first, then the middle from them
    filled = missing_values.filled(array)
    assert np.isfinite(filled).all() and filled[0, 0, 0] == 0.0
    assert filled[1, 1, 0] == np.mean([array[0, 1, 0], array[2, 1, 0], array[1, 0, 0], array[1, 2, 0]])
    assert missing_values.filled(np.arange(8.0).reshape(2, 2, 2)) is None
    assert missing_values.filled(np.full((2, 2, 2), np.nan)) is None

    missing = np.zeros((5, 9, 9), dtype=bool)
    missing[2, 4, 4] = True
    reach = missing_values.reached(missing, (1, 2, 3))
    want = np.zeros_like(missing)
    want[1:4, 2:7, 1:8] = True
    np.testing.assert_array_equal(reach, want)


def test_a_filter_loses_only_the_voxels_its_support_reaches_from_a_missing_one():
    """A 3 x 3 x 3 mean filter over an image with one NaN inside the ROI: the ROI voxels whose cube holds the NaN are
    left out, and the mean response of the others is the mean of their cube means, computed here directly."""
    import warnings

    import radflow

    rng = np.random.default_rng(4)
    image = rng.normal(50.0, 10.0, (12, 20, 20))
    image[6, 10, 10] = np.nan
    mask = np.zeros(image.shape, dtype=bool)
    mask[3:9, 6:14, 6:14] = True
    settings = {"families": ["statistics"], "filter": {"type": "mean", "support_voxels": 3},
                "interpolation": {"enabled": False}, "resegmentation": {"range": None}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = radflow.extract(image, mask, settings, spacing=(1.0, 1.0, 1.0))
    cubes = [image[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2] for z, y, x in np.argwhere(mask)]
    kept = [cube.mean() for cube in cubes if np.isfinite(cube).all()]
    assert len(kept) == int(mask.sum()) - 27
    assert f"27 of the ROI's {int(mask.sum())} voxels without a finite filter response" in \
        " ".join(str(w.message) for w in caught)
    assert table.set_index("ibsi_code").value["Q4LE"] == pytest.approx(np.mean(kept), rel=1e-12)


def test_nan_is_restored_in_a_volume_stored_with_a_singleton_time_axis(tmp_path):
    """dim[0] = 4 with dim[4] = 1, as some converters write a 3D volume: ITK reads it as 3D, and so does the NaN
    restoration."""
    import struct

    from radflow import io

    array = np.ones((3, 4, 5), dtype=np.float32)
    array[1, 2, 3] = np.nan
    path = tmp_path / "map.nii"
    sitk.WriteImage(_image(array), str(path))
    header = bytearray(path.read_bytes())
    dims = list(struct.unpack_from("<8h", header, 40))
    dims[0], dims[4] = 4, 1
    struct.pack_into("<8h", header, 40, *dims)
    path.write_bytes(bytes(header))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(io.read_image(path)), array)
