"""IBSI-2 filters against independent naive implementations (full 3D kernels, explicit rotations, direct
convolution), the crop ``prepare`` filters being exact, the settings group and the ``radflow filter`` command."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from radflow.imaging.filters import FilterSpec, apply_filter, support_margin
from radflow.imaging.filters.boundary import BOUNDARY_CONDITIONS, ndimage_mode
from radflow.imaging.filters.gabor import gabor
from radflow.imaging.filters.log import laplacian_of_gaussian
from radflow.imaging.filters.rotations import right_angle_rotations
from radflow.imaging.filters.separable import Factor, convolve_axis, rotation_invariant
from radflow.settings import Settings, SettingsError

RNG = np.random.default_rng(20240611)


def _all_rotations(kernel: np.ndarray) -> list[np.ndarray]:
    """Closure of a 3D array under quarter turns about two axes: the 24 proper right-angle rotations."""
    seen, todo = {}, [kernel]
    while todo:
        k = todo.pop()
        key = (k.shape, k.tobytes())
        if key in seen:
            continue
        seen[key] = k
        todo += [np.rot90(k, 1, axes=(0, 1)), np.rot90(k, 1, axes=(1, 2))]
    return list(seen.values())


def test_right_angle_rotation_counts():
    assert len(right_angle_rotations(3)) == 24 and len(right_angle_rotations(2)) == 4
    assert len(_all_rotations(RNG.normal(size=(3, 3, 3)))) == 24


@pytest.mark.parametrize("boundary", BOUNDARY_CONDITIONS)
@pytest.mark.parametrize("pooling", ["max", "average", "min"])
def test_rotation_invariance_matches_explicitly_rotated_kernels(boundary, pooling):
    image = RNG.normal(size=(9, 10, 11))
    factors = [RNG.normal(size=n) for n in (3, 5, 3)]  # asymmetric: every rotation differs
    factors[1] = np.array([1.0, -2.0, 0.0, 2.0, -1.0])  # antisymmetric, to exercise the sign folding
    kernel = np.einsum("i,j,k->ijk", *factors)
    responses = [ndimage.convolve(image, k, mode=ndimage_mode(boundary), cval=0.0) for k in _all_rotations(kernel)]
    expected = {"max": np.max, "average": np.mean, "min": np.min}[pooling](responses, axis=0)
    got = rotation_invariant(image, {a: Factor(tuple(f)) for a, f in enumerate(factors)}, (0, 1, 2), boundary, pooling)
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("pooling", ["max", "average"])
def test_2d_rotation_invariance_matches_the_four_quarter_turns(pooling):
    image = RNG.normal(size=(4, 10, 11))
    fy, fx = RNG.normal(size=5), RNG.normal(size=3)
    kernel = np.einsum("j,k->jk", fy, fx)[None]
    turns = [np.rot90(kernel, k, axes=(1, 2)) for k in range(4)]
    responses = [ndimage.convolve(image, k, mode="reflect") for k in turns]
    expected = {"max": np.max, "average": np.mean}[pooling](responses, axis=0)
    got = rotation_invariant(image, {1: Factor(tuple(fy)), 2: Factor(tuple(fx))}, (1, 2), "mirror", pooling)
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_even_length_factor_reversal_is_the_mirrored_filter():
    image = RNG.normal(size=(12, 5, 4))
    factor = Factor(tuple(RNG.normal(size=4)))
    for boundary in BOUNDARY_CONDITIONS:
        direct = convolve_axis(image, factor.reversed(), 0, boundary)
        mirrored = convolve_axis(image[::-1], factor, 0, boundary)[::-1]
        np.testing.assert_allclose(direct, mirrored, atol=1e-12)


def _log_kernel(sigma: float, radius: int) -> np.ndarray:
    """The IBSI-2 LoG formula evaluated on a full 3D grid (voxel units, isotropic)."""
    x = np.arange(-radius, radius + 1, dtype=float)
    r2 = x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2
    norm = (1 / (math.sqrt(2 * math.pi) * sigma)) ** 3
    return -1 / sigma**2 * norm * (3 - r2 / sigma**2) * np.exp(-r2 / (2 * sigma**2))


@pytest.mark.parametrize("boundary", BOUNDARY_CONDITIONS)
def test_log_equals_the_full_kernel(boundary):
    image = RNG.normal(size=(14, 15, 16))
    sigma_mm, spacing = 2.4, (1.5, 1.5, 1.5)
    radius = int(math.floor(4 * sigma_mm / 1.5 + 0.5))
    expected = ndimage.convolve(image, _log_kernel(sigma_mm / 1.5, radius), mode=ndimage_mode(boundary), cval=0.0)
    np.testing.assert_allclose(laplacian_of_gaussian(image, sigma_mm, spacing, (0, 1, 2), boundary), expected,
                               atol=1e-12)


@pytest.mark.parametrize("boundary", ["zero", "mirror"])
def test_gabor_equals_direct_convolution(boundary):
    image = RNG.normal(size=(3, 17, 19))
    sigma, lam, gamma, theta = 2.0, 3.0, 0.7, 0.6  # voxels (spacing 1 mm)
    r = int(math.floor(4 * sigma / gamma + 0.5))
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(float)
    xr, yr = x * math.cos(theta) + y * math.sin(theta), -x * math.sin(theta) + y * math.cos(theta)
    kernel = np.exp(-(xr**2 + gamma**2 * yr**2) / (2 * sigma**2)) * np.exp(2j * math.pi * xr / lam)
    mode = ndimage_mode(boundary)
    expected = np.stack([
        np.abs(ndimage.convolve(s, kernel.real, mode=mode) + 1j * ndimage.convolve(s, kernel.imag, mode=mode))
        for s in image
    ])
    got = gabor(image, sigma, lam, gamma, (1.0, 1.0, 1.0), boundary, theta=theta)
    np.testing.assert_allclose(got, expected, atol=1e-9)


FINITE_SUPPORT = [
    {"type": "mean", "support_voxels": 5},
    {"type": "laplacian_of_gaussian", "sigma_mm": 2.0},
    {"type": "laws", "laws_kernel": "L5E5W5", "rotation_invariance": True, "pooling": "max", "energy_map": True,
     "energy_delta_voxels": 2},
    {"type": "gabor", "dimensions": "2D", "sigma_mm": 2.0, "gabor_lambda_mm": 3.0, "gabor_gamma": 1.5,
     "gabor_delta_theta": "pi/4", "pooling": "average", "orthogonal_planes": True},
    {"type": "separable_wavelet", "wavelet": "db2", "wavelet_map": "HLH", "wavelet_level": 2,
     "rotation_invariance": True, "pooling": "average"},
]


@pytest.mark.parametrize("group", FINITE_SUPPORT, ids=lambda g: g["type"])
def test_prepare_filters_a_crop_with_the_values_of_the_whole_image(group):
    from radflow.imaging.preprocess import crop_box, local_intensity_radius_mm, prepare

    array = RNG.normal(100, 30, size=(30, 60, 60)).round()
    mask = np.zeros(array.shape, dtype=np.uint8)
    mask[3:9, 30:40, 5:15] = 1  # close to one edge, far from the others
    spacing_xyz = (1.2, 1.2, 2.0)
    image, roi = sitk.GetImageFromArray(array), sitk.GetImageFromArray(mask)
    image.SetSpacing(spacing_xyz)
    roi.SetSpacing(spacing_xyz)
    settings = Settings.from_dict({"filter": {"boundary_condition": "mirror", **group}, "families": ["statistics"]})
    spacing = tuple(reversed(spacing_xyz))
    whole = apply_filter(array, spacing, FilterSpec.from_settings(settings["filter"]))
    margin = tuple(int(math.ceil(local_intensity_radius_mm(settings) / s)) for s in spacing)
    box = crop_box(mask.astype(bool), margin)
    prepared = prepare(image, roi, settings)
    assert support_margin(FilterSpec.from_settings(settings["filter"]), spacing) is not None
    np.testing.assert_allclose(prepared.image, whole[box], atol=1e-9)
    assert prepared.levels[prepared.int_mask].min() == 1  # FBS from the response minimum, not the HU range


def test_degenerate_volumes_give_finite_maps_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = np.full((1, 6, 7), 42.0)
        for group in FINITE_SUPPORT + [{"type": "simoncelli", "wavelet_level": 2},
                                        {"type": "laplacian_of_gaussian", "sigma_mm": 1.0, "riesz_order": [0, 1, 1]}]:
            spec = FilterSpec.from_settings(group)
            out = apply_filter(flat, (2.0, 1.0, 1.0), spec)
            assert out.shape == flat.shape and np.isfinite(out).all()
        nearest_mean = FilterSpec.from_settings({"type": "mean", "boundary_condition": "nearest"})
        mean = apply_filter(flat, (1.0, 1.0, 1.0), nearest_mean)
        np.testing.assert_allclose(mean, 42.0)
        simoncelli = apply_filter(flat, (1.0, 1.0, 1.0), FilterSpec.from_settings({"type": "simoncelli"}))
        np.testing.assert_allclose(simoncelli, 0.0, atol=1e-9)  # a band-pass filter has no DC response


def test_filter_settings_hash_and_validation():
    base = Settings.from_dict({})
    assert base["filter"]["type"] == "none"
    gabor_spelled = {"type": "gabor", "dimensions": "2D", "sigma_mm": 5, "gabor_lambda_mm": 2, "pooling": "average"}
    a = Settings.from_dict({"filter": {**gabor_spelled, "gabor_delta_theta": "pi/8"}})
    b = Settings.from_dict({"filter": {**gabor_spelled, "gabor_delta_theta": math.pi / 8}})
    assert a.settings_id == b.settings_id != base.settings_id
    for bad, message in [
        ({"type": "laws", "laws_kernel": "L5Q5"}, "Laws kernel"),
        ({"type": "laws", "laws_kernel": "L5E5E5", "rotation_invariance": True}, "pooling"),
        ({"type": "gabor", "sigma_mm": 5, "gabor_lambda_mm": 2}, "2D"),
        ({"type": "separable_wavelet", "wavelet": "nosuch", "wavelet_map": "LLH"}, "unknown wavelet"),
        ({"type": "mean", "support_voxels": 4}, "odd"),
        ({"type": "wiener"}, "type must be one of"),
        ({"type": "mean", "boundary_condition": "reflect"}, "boundary_condition"),
    ]:
        with pytest.raises(SettingsError, match=message):
            Settings.from_dict({"filter": bad})


def test_filter_command_writes_the_response_map(tmp_path):
    from radflow.cli import main

    array = RNG.normal(size=(8, 9, 10))
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(image, str(tmp_path / "image.nii.gz"))
    (tmp_path / "log.yaml").write_text(
        "filter: {type: laplacian_of_gaussian, sigma_mm: 1.5, boundary_condition: zero}\n")
    assert main(["filter", str(tmp_path / "image.nii.gz"), "--settings", str(tmp_path / "log.yaml"),
                 "--out", str(tmp_path / "map.nii.gz")]) == 0
    written = sitk.ReadImage(str(tmp_path / "map.nii.gz"))
    assert written.GetSpacing() == (1.0, 1.0, 2.0)
    expected = laplacian_of_gaussian(array, 1.5, (2.0, 1.0, 1.0), (0, 1, 2), "zero")
    np.testing.assert_allclose(sitk.GetArrayFromImage(written), expected, rtol=1e-6, atol=1e-6)
