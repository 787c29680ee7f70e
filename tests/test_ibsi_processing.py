"""IBSI chapter-1 image processing: the diagnostic rows of CT configurations A-E, and the resampler itself.

The diagnostic rows check the image and ROI after each step (initial, interpolated, re-segmented). Sizes, voxel
counts and minimum/maximum intensities are integers that IBSI reports in full, so they are compared as they are;
mean intensities and voxel sizes are compared after round3, as IBSI publishes them.

The resampler is checked against scipy.ndimage.map_coordinates on the same IBSI grid (an independent evaluation of
the same tensor-product B-spline, 8 or 64 taps per voxel instead of separable passes).
"""
from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from conftest import REPO
from ibsi_reference import IBSI, references, round3
from radflow.imaging import preprocess, resampling
from radflow.imaging.diagnostics import diagnostics
from radflow.settings import Settings

CONFIGURATIONS = "ABCDE"
DIAGNOSTIC_ROWS = [ref for config in CONFIGURATIONS for ref in references(config, diagnostic=True)]


def _compared_as_rounded(name: str) -> bool:
    return "mean intensity" in name.lower() or name.startswith("Voxel dimension")


@cache
def _ct_phantom() -> tuple[sitk.Image, sitk.Image]:
    folder = IBSI / "ct_phantom" / "nifti"
    return sitk.ReadImage(str(folder / "image.nii.gz")), sitk.ReadImage(str(folder / "mask.nii.gz"))


@cache
def _diagnostics(configuration: str) -> dict[tuple[str, str], float]:
    settings = Settings.from_yaml(REPO / "config" / "ibsi" / f"{configuration}.yaml")
    return diagnostics(*_ct_phantom(), settings)


def _id(ref) -> str:
    return f"{ref.configuration}-{ref.family.removeprefix('Diagnostics-')}-{ref.feature}".replace(" ", "_")


@pytest.mark.parametrize("ref", DIAGNOSTIC_ROWS, ids=[_id(r) for r in DIAGNOSTIC_ROWS])
def test_diagnostic_matches_ibsi_reference(ref):
    value = _diagnostics(ref.configuration)[(ref.family, ref.feature)]
    compared = round3(value) if _compared_as_rounded(ref.feature) else value
    assert abs(compared - ref.value) <= ref.tolerance + 1e-9, (
        f"{ref.family} / {ref.feature}: got {value!r}, reference {ref.value} +/- {ref.tolerance}"
    )


def test_every_configuration_has_its_diagnostic_rows():
    if not IBSI.exists():
        pytest.skip("../shared is absent")
    assert len(DIAGNOSTIC_ROWS) == 300


# --- the grid ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "n_old, s_old, s_new, n_new",
    [(204, 0.977, 2.0, 100), (201, 0.977, 2.0, 99), (60, 3.0, 2.0, 90), (5, 2.0, 2.0, 5), (7, 1.0, 3.0, 3)],
)
def test_grid_size_is_ceil_and_centres_coincide(n_old, s_old, s_new, n_new):
    grid = resampling.axis_grid(n_old, s_old, s_new)
    assert grid.n_new == n_new
    centre_old = (n_old - 1) / 2.0
    centre_new = grid.first + grid.step * (grid.n_new - 1) / 2.0
    assert centre_new == pytest.approx(centre_old, abs=1e-12)
    assert grid.step == pytest.approx(s_new / s_old)


def _settings(**interp) -> Settings:
    return Settings.from_dict({"interpolation": {"enabled": True, **interp}})


def _image(array: np.ndarray, spacing_xyz=(1.0, 1.0, 1.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing_xyz)
    return image


def test_2d_resampling_keeps_the_slices():
    rng = np.random.default_rng(1)
    image = _image(rng.integers(-100, 100, (6, 11, 13)).astype(np.int16), (0.7, 0.9, 4.0))
    mask = _image(np.ones((6, 11, 13), np.uint8), (0.7, 0.9, 4.0))
    settings = _settings(dimensions="2D", spacing_mm=[2.0, 2.0, None])
    image_new, fraction, spacing = resampling.resample_image_and_mask(image, mask, settings)
    assert spacing == (4.0, 2.0, 2.0)
    assert image_new.shape == (6, 5, 5) == fraction.shape  # ceil(11 * 0.9 / 2) = 5, ceil(13 * 0.7 / 2) = 5
    # each slice is resampled on its own: slice k equals the 2D interpolation of source slice k
    grids = resampling.grid_for((11, 13), (0.9, 0.7), (2.0, 2.0))
    coords = np.meshgrid(*(g.coordinates() for g in grids), indexing="ij")
    source = sitk.GetArrayFromImage(image).astype(np.float64)
    for k in range(6):
        expected = np.rint(ndimage.map_coordinates(source[k], coords, order=1, mode="nearest"))
        np.testing.assert_allclose(image_new[k], expected, atol=1e-9)


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize(
    "shape, spacing, new_spacing",
    [((7, 9, 11), (3.0, 0.977, 0.977), (2.0, 2.0, 2.0)), ((5, 6, 4), (1.0, 1.0, 1.0), (0.7, 1.3, 0.45))],
)
def test_separable_passes_equal_map_coordinates(order, shape, spacing, new_spacing):
    rng = np.random.default_rng(order)
    array = rng.normal(0.0, 100.0, shape)
    grids = resampling.grid_for(shape, spacing, new_spacing)
    coords = np.meshgrid(*(g.coordinates() for g in grids), indexing="ij")
    expected = ndimage.map_coordinates(array, coords, order=order, mode="nearest")
    got = resampling.resample_array(array, grids, order)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # a window of the target grid is the same window of the whole result
    windows = tuple((1, max(g.n_new - 1, 2)) for g in grids)
    window_result = resampling.resample_array(array, grids, order, windows)
    np.testing.assert_allclose(window_result, got[tuple(slice(*w) for w in windows)], rtol=0, atol=1e-9)


def test_intensities_rounded_only_when_asked():
    rng = np.random.default_rng(2)
    array = rng.integers(-1000, 1000, (8, 8, 8)).astype(np.int16)
    image, mask = _image(array), _image(np.ones_like(array, dtype=np.uint8))
    rounded, _, _ = resampling.resample_image_and_mask(image, mask, _settings(spacing_mm=[0.7, 0.7, 0.7]))
    raw, _, _ = resampling.resample_image_and_mask(
        image, mask, _settings(spacing_mm=[0.7, 0.7, 0.7], round_intensities=False)
    )
    assert np.array_equal(rounded, np.rint(raw))
    assert not np.array_equal(raw, np.rint(raw))


def test_mask_is_a_partial_volume_fraction():
    mask_array = np.zeros((9, 9, 9), np.uint8)
    mask_array[3:6, 3:6, 3:6] = 1
    image, mask = _image(mask_array.astype(np.int16)), _image(mask_array)
    _, fraction, _ = resampling.resample_image_and_mask(image, mask, _settings(spacing_mm=[0.5, 0.5, 0.5]))
    assert fraction.min() == 0.0 and fraction.max() == 1.0
    assert np.any((fraction > 0) & (fraction < 1))
    # linear interpolation of a box keeps its volume at threshold 0.5 on a grid that halves the spacing
    assert np.count_nonzero(fraction >= 0.5) * 0.125 == pytest.approx(27.0, rel=0.2)


def test_same_spacing_is_the_identity():
    rng = np.random.default_rng(3)
    array = rng.integers(-5, 5, (4, 5, 6)).astype(np.int16)
    mask_array = (array > 0).astype(np.uint8)
    image_new, fraction, spacing = resampling.resample_image_and_mask(
        _image(array, (0.5, 0.6, 0.7)), _image(mask_array, (0.5, 0.6, 0.7)),
        _settings(spacing_mm=[0.5, 0.6, 0.7], image_interpolator="cubic"),
    )
    assert spacing == pytest.approx((0.7, 0.6, 0.5))
    assert np.array_equal(image_new, array) and np.array_equal(fraction, mask_array)


def test_single_voxel_image():
    image, mask = _image(np.full((1, 1, 1), 7, np.int16)), _image(np.ones((1, 1, 1), np.uint8))
    image_new, fraction, _ = resampling.resample_image_and_mask(image, mask, _settings(spacing_mm=[0.5, 0.5, 0.5]))
    assert image_new.shape == (2, 2, 2)
    assert np.all(image_new == 7) and np.all(fraction == 1.0)


def test_mask_on_another_grid_is_refused():
    image, mask = _image(np.zeros((4, 4, 4), np.int16)), _image(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(resampling.ResamplingError, match="size"):
        resampling.resample_image_and_mask(image, mask, _settings())


@pytest.mark.parametrize("configuration", ["B", "E"])
def test_prepare_on_the_roi_window_equals_the_whole_grid(configuration, ct_phantom, monkeypatch):
    settings = Settings.from_yaml(REPO / "config" / "ibsi" / f"{configuration}.yaml")
    windowed = preprocess.prepare(*ct_phantom, settings)
    whole_grid = preprocess.interpolate
    monkeypatch.setattr(preprocess, "interpolate", lambda i, m, s, roi_margin_mm=None: whole_grid(i, m, s))
    full = preprocess.prepare(*ct_phantom, settings)
    assert windowed.image.shape == full.image.shape
    for field in ("image", "morph_mask", "int_mask", "levels"):
        assert np.array_equal(getattr(windowed, field), getattr(full, field)), field


def _blob(shape=(9, 12, 14), seed=4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    mask = np.zeros(shape, np.uint8)
    mask[2:-2, 2:-2, 2:-2] = smooth[2:-2, 2:-2, 2:-2] > 0
    return mask * 3  # any non-zero label is in the ROI


def test_mask_interpolated_only_where_it_reaches_equals_the_whole_mask():
    mask_array = _blob()
    spacing = (0.9, 1.1, 2.5)
    image, mask = _image(mask_array.astype(np.int16), spacing), _image(mask_array, spacing)
    settings = _settings(spacing_mm=[0.7, 1.3, 1.0])
    _, fraction, new_spacing = resampling.resample_image_and_mask(image, mask, settings)
    grids = resampling.grid_for(mask_array.shape, spacing[::-1], new_spacing)
    coords = np.meshgrid(*(g.coordinates() for g in grids), indexing="ij")
    expected = ndimage.map_coordinates((mask_array != 0).astype(float), coords, order=1, mode="nearest")
    np.testing.assert_allclose(fraction, expected, rtol=0, atol=1e-12)


def test_cubic_mask_ringing_far_from_the_roi_is_dropped():
    mask_array = _blob()
    image, mask = _image(mask_array.astype(np.int16)), _image(mask_array)
    settings = _settings(spacing_mm=[0.6, 0.6, 0.6], mask_interpolator="cubic")
    _, fraction, new_spacing = resampling.resample_image_and_mask(image, mask, settings)
    grids = resampling.grid_for(mask_array.shape, (1.0, 1.0, 1.0), new_spacing)
    coords = np.meshgrid(*(g.coordinates() for g in grids), indexing="ij")
    expected = ndimage.map_coordinates((mask_array != 0).astype(float), coords, order=3, mode="nearest")
    assert np.abs(fraction - expected).max() < 0.01
    assert np.array_equal(fraction >= 0.5, expected >= 0.5)


def test_identity_grid_does_not_alias_the_input():
    array = np.array([[[0.4, 1.6]]])
    image = _image(array)
    out, _, _ = resampling.resample_image_and_mask(image, _image(np.ones((1, 1, 2), np.uint8)), _settings(
        spacing_mm=[1.0, 1.0, 1.0]))
    assert out.tolist() == [[[0.0, 2.0]]]
    assert sitk.GetArrayViewFromImage(image).tolist() == [[[0.4, 1.6]]]
