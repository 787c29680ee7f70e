"""MR intensity normalisation: z-score, percentile, none; and how prepare applies it."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.imaging import normalisation
from radflow.imaging.preprocess import prepare
from radflow.settings import Settings


def test_z_score_on_a_hand_computed_case():
    image = np.array([1.0, 2.0, 3.0, 4.0, 10.0])  # mean 4, population SD sqrt((9+4+1+0+36)/5) = sqrt(10)
    fitted = normalisation.fit(image, "z_score")
    assert (fitted.shift, fitted.scale) == pytest.approx((4.0, np.sqrt(10.0)))
    np.testing.assert_allclose(fitted.apply(image), (image - 4.0) / np.sqrt(10.0))


def test_z_score_gives_mean_zero_and_unit_sd():
    image = np.random.default_rng(0).gamma(2.0, 300.0, (6, 7, 8))
    out = normalisation.normalise(image, "z_score")
    assert out.mean() == pytest.approx(0.0, abs=1e-12)
    assert out.std() == pytest.approx(1.0, rel=1e-12)


def test_percentile_maps_p1_and_p99_to_0_and_1():
    image = np.arange(101.0)  # P1 = 1, P99 = 99 (linear interpolation between order statistics)
    fitted = normalisation.fit(image, "percentile")
    assert (fitted.shift, fitted.scale) == pytest.approx((1.0, 98.0))
    out = fitted.apply(image)
    assert out[1] == pytest.approx(0.0) and out[99] == pytest.approx(1.0) and out[100] == pytest.approx(99 / 98)


def test_percentile_ignores_a_few_extreme_voxels():
    image = np.random.default_rng(1).normal(500.0, 50.0, 10_000)
    spiked = image.copy()
    spiked[:5] = 1e6
    a, b = normalisation.fit(image, "percentile"), normalisation.fit(spiked, "percentile")
    assert b.scale == pytest.approx(a.scale, rel=0.02)


def test_fit_inside_a_mask():
    image = np.array([[0.0, 0.0], [2.0, 4.0]])
    fitted = normalisation.fit(image, "z_score", mask=np.array([[0, 0], [1, 1]]))
    assert (fitted.shift, fitted.scale) == pytest.approx((3.0, 1.0))


def test_none_is_the_identity():
    image = np.array([3.0, -1.0])
    assert normalisation.normalise(image, "none") is image


@pytest.mark.parametrize("method", ["z_score", "percentile"])
def test_constant_image_is_refused(method):
    with pytest.raises(normalisation.NormalisationError, match="constant"):
        normalisation.fit(np.full(10, 7.0), method)


def test_unknown_method_is_refused():
    with pytest.raises(normalisation.NormalisationError, match="one of"):
        normalisation.fit(np.arange(3.0), "minmax")


def _mr_case():
    rng = np.random.default_rng(2)
    array = rng.normal(400.0, 80.0, (6, 10, 10))
    mask_array = np.zeros(array.shape, np.uint8)
    mask_array[2:4, 3:7, 3:7] = 1
    image, mask = sitk.GetImageFromArray(array), sitk.GetImageFromArray(mask_array)
    for im in (image, mask):
        im.SetSpacing((1.0, 1.0, 2.0))
    return array, mask_array, image, mask


def test_prepare_normalises_with_whole_image_statistics():
    array, mask_array, image, mask = _mr_case()
    settings = Settings.from_dict({
        "modality": "MR", "intensity_normalisation": "z_score",
        "discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": 8}},
    })
    roi = prepare(image, mask, settings)
    expected = (array[mask_array == 1] - array.mean()) / array.std()
    np.testing.assert_allclose(np.sort(roi.image[roi.int_mask]), np.sort(expected), rtol=1e-12)


def test_prepare_normalisation_commutes_with_interpolation():
    """Fitted on the original image, applied after interpolation == interpolating the normalised image."""
    array, mask_array, image, mask = _mr_case()
    common = {
        "modality": "MR",
        "interpolation": {"enabled": True, "spacing_mm": [0.8, 0.8, 1.5], "round_intensities": False},
        "discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": 8}},
    }
    roi = prepare(image, mask, Settings.from_dict({**common, "intensity_normalisation": "percentile"}))
    normalised = sitk.GetImageFromArray(normalisation.normalise(array, "percentile"))
    normalised.CopyInformation(image)
    reference = prepare(normalised, mask, Settings.from_dict(common))
    np.testing.assert_allclose(roi.image, reference.image, rtol=0, atol=1e-12)
    assert np.array_equal(roi.int_mask, reference.int_mask)
