"""Local intensity (IBSI 9ST6) against a brute-force sphere mean on small volumes. The IBSI reference values are
checked in test_ibsi_features.py."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from radflow.features import local_intensity
from radflow.features.base import RoiData
from radflow.imaging.preprocess import local_intensity_radius_mm
from radflow.settings import Settings

SETTINGS = Settings.from_dict({})
RADIUS = local_intensity_radius_mm(SETTINGS)


def _brute_force_peaks(image, mask, spacing, radius):
    """For every mask voxel, the mean of all image voxels whose centres lie within ``radius`` (full scan)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(image.shape, spacing)], indexing="ij"), axis=-1)
    means = {}
    for idx in map(tuple, np.argwhere(mask)):
        centre = np.asarray(idx) * spacing
        inside = ((grid - centre) ** 2).sum(axis=-1) <= radius**2
        means[idx] = image[inside].mean()
    peak = image[mask].max()
    local = max(m for idx, m in means.items() if image[idx] == peak)
    return local, max(means.values())


def _compute(image, mask, spacing):
    roi = RoiData(image, mask, mask.copy(), spacing, mask.astype(np.int32), 1)
    return {v.ibsi_code: v.value for v in local_intensity.compute(roi, SETTINGS)}


def test_radius_of_one_cubic_centimetre():
    assert RADIUS == pytest.approx(6.2035, abs=1e-4)


@pytest.mark.parametrize("spacing", [(2.0, 2.0, 2.0), (2.5, 0.8, 0.8), (3.0, 0.977, 0.977), (1.0, 1.3, 0.7)])
def test_sphere_runs_are_the_voxels_within_the_radius(spacing):
    runs = local_intensity.sphere_runs(RADIUS, spacing)
    from_runs = {(dz, dy, dx) for dz, dy, a in runs for dx in range(-a, a + 1)}
    reach = [int(RADIUS // s) + 1 for s in spacing]
    brute = {
        (dz, dy, dx)
        for dz in range(-reach[0], reach[0] + 1)
        for dy in range(-reach[1], reach[1] + 1)
        for dx in range(-reach[2], reach[2] + 1)
        if (dz * spacing[0]) ** 2 + (dy * spacing[1]) ** 2 + (dx * spacing[2]) ** 2 <= RADIUS**2
    }
    assert from_runs == brute


@pytest.mark.parametrize("seed", range(3))
def test_peaks_equal_brute_force_on_a_small_volume(seed):
    """ROI in the middle and touching the array border (sphere clipped to the image there)."""
    rng = np.random.default_rng(seed)
    shape = (9, 20, 18)
    spacing = (2.5, 0.8, 0.9)
    image = rng.integers(-50, 60, size=shape).astype(float)
    mask = rng.random(shape) < 0.3
    mask[:, :, :2] = True  # the border columns
    got = _compute(image, mask, spacing)
    local, global_ = _brute_force_peaks(image, mask, spacing, RADIUS)
    assert got["VJGA"] == pytest.approx(local, rel=1e-12, abs=1e-12)
    assert got["0F91"] == pytest.approx(global_, rel=1e-12, abs=1e-12)


def test_local_peak_takes_the_highest_mean_among_tied_maxima_and_uses_voxels_outside_the_roi():
    shape = (7, 21, 21)
    spacing = (2.0, 1.0, 1.0)
    image = np.zeros(shape)
    mask = np.zeros(shape, bool)
    mask[3, 5, 5] = mask[3, 15, 15] = mask[3, 10, 10] = True
    image[3, 5, 5] = image[3, 15, 15] = 100.0  # two voxels share the maximum
    image[2:5, 13:18, 13:18] += 10.0  # bright surroundings (outside the ROI) around the second one
    image[3, 15, 15] = 100.0
    got = _compute(image, mask, spacing)
    local, global_ = _brute_force_peaks(image, mask, spacing, RADIUS)
    assert got["VJGA"] == pytest.approx(local, rel=1e-12)
    assert got["0F91"] == pytest.approx(global_, rel=1e-12)
    around_first = _brute_force_peaks(image, mask & (np.arange(21)[None, :, None] < 10), spacing, RADIUS)[0]
    assert got["VJGA"] > around_first  # the second maximum's sphere wins


def test_single_voxel_roi_and_constant_image_without_warnings():
    image = np.full((5, 9, 9), 42.0)
    mask = np.zeros(image.shape, bool)
    mask[2, 4, 4] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _compute(image, mask, (2.0, 0.8, 0.8))
    assert got == {"VJGA": 42.0, "0F91": 42.0}
    assert all(math.isfinite(v) for v in got.values())
