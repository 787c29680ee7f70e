"""Intensity discretisation (IBSI 3.4): property tests (hypothesis) and exact bin-edge cases.

Bin-edge cases use dyadic intensities and widths, so every edge is exactly representable and the expected grey
level follows from the bin definition, not from re-evaluating the implementation's formula.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

from radflow.imaging import discretisation as disc

finite = hs.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)


@hs.composite
def image_and_mask(draw, elements=finite):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6))
    image = draw(hnp.arrays(np.float64, shape, elements=elements))
    mask = draw(hnp.arrays(np.bool_, shape))
    mask.flat[draw(hs.integers(0, mask.size - 1))] = True  # a non-empty ROI
    return image, mask


@settings(max_examples=150, deadline=None)
@given(image_and_mask(), hs.integers(1, 64))
def test_fixed_bin_number_spans_exactly_n_bins(data, n_bins):
    image, mask = data
    levels, n_levels = disc.fixed_bin_number(image, mask, n_bins)
    inside = levels[mask]
    assert n_levels == n_bins and levels.dtype == np.int32
    assert np.all(levels[~mask] == 0)
    assert inside.min() >= 1 and inside.max() <= n_bins
    values = image[mask]
    if values.max() > values.min():
        # the ROI minimum opens bin 1 and the ROI maximum closes bin N_g
        assert inside[values == values.min()].min() == 1 and inside[values == values.max()].max() == n_bins
    else:
        assert np.all(inside == 1)
    order = np.argsort(values, kind="stable")
    assert np.all(np.diff(inside[order]) >= 0)  # discretisation preserves the intensity order


@pytest.mark.parametrize("n_bins", [1, 2, 5, 8, 32])
def test_fixed_bin_number_bin_edges(n_bins):
    # ROI range [-3, -3 + 0.25 n_bins]: bin k (1-based) is [-3 + 0.25 (k - 1), -3 + 0.25 k), the last one closed
    lo, width = -3.0, 0.25
    k = np.arange(n_bins)
    image = np.concatenate([lo + width * k, lo + width * k + width / 2, [lo + width * n_bins]])
    expected = np.concatenate([k + 1, k + 1, [n_bins]])
    levels, n_levels = disc.fixed_bin_number(image, np.ones(image.shape, dtype=bool), n_bins)
    np.testing.assert_array_equal(levels, expected)
    assert n_levels == n_bins


@settings(max_examples=150, deadline=None)
@given(image_and_mask(), hs.sampled_from([0.5, 1.0, 2.5, 25.0, 100.0]), hs.booleans())
def test_fixed_bin_size_bins_from_the_lower_bound(data, width, below_minimum):
    image, mask = data
    roi_min = image[mask].min()
    lower = np.floor(roi_min) - 7.0 if below_minimum else None
    levels, n_levels = disc.fixed_bin_size(image, mask, width, lower)
    inside = levels[mask]
    start = roi_min if lower is None else lower
    assert np.all(levels[~mask] == 0)
    assert inside.min() >= 1 and n_levels == inside.max()
    if lower is None:
        assert inside[image[mask] == roi_min].min() == 1
    # every intensity lies in its bin [start + (level - 1) w, start + level w), up to rounding of the edge
    low_edge = start + (inside - 1) * width
    assert np.all(image[mask] >= low_edge - 1e-9 * max(1.0, abs(start)))
    assert np.all(image[mask] < low_edge + width + 1e-9 * max(1.0, abs(start)))


def test_fixed_bin_size_bin_edges():
    # IBSI configuration A style: w = 25 from -500; an edge intensity opens the next bin
    image = np.array([-500.0, -475.0 - 2**-10, -475.0, -0.5, 0.0, 399.0, 400.0])
    levels, n_levels = disc.fixed_bin_size(image, np.ones(image.shape, dtype=bool), 25.0, -500.0)
    np.testing.assert_array_equal(levels, [1, 1, 2, 20, 21, 36, 37])
    assert n_levels == 37


def test_fixed_bin_size_rejects_a_lower_bound_above_the_roi():
    image = np.array([-600.0, 0.0])
    with pytest.raises(disc.DiscretisationError, match="below the bin lower bound"):
        disc.fixed_bin_size(image, np.ones(2, dtype=bool), 25.0, -500.0)


@settings(max_examples=100, deadline=None)
@given(image_and_mask(elements=hs.integers(1, 500).map(float)))
def test_none_keeps_integer_grey_levels(data):
    image, mask = data
    levels, n_levels = disc.as_grey_levels(image, mask)
    np.testing.assert_array_equal(levels[mask], image[mask].astype(np.int32))
    assert np.all(levels[~mask] == 0) and n_levels == image[mask].max()


@settings(max_examples=100, deadline=None)
@given(image_and_mask(elements=hs.integers(1, 500).map(float)), hs.floats(0.001, 0.999))
def test_none_rejects_non_integer_intensities(data, fraction):
    image, mask = data
    image = image.copy()
    image[tuple(np.argwhere(mask)[0])] += fraction
    with pytest.raises(disc.DiscretisationError, match="integer"):
        disc.as_grey_levels(image, mask)


@pytest.mark.parametrize("bad", [0.0, -3.0])
def test_none_rejects_levels_below_one(bad):
    with pytest.raises(disc.DiscretisationError):
        disc.as_grey_levels(np.array([bad, 2.0]), np.ones(2, dtype=bool))


def test_none_ignores_intensities_outside_the_mask():
    levels, n_levels = disc.as_grey_levels(np.array([2.5, -1.0, 3.0]), np.array([False, False, True]))
    np.testing.assert_array_equal(levels, [0, 0, 3])
    assert n_levels == 3


@pytest.mark.parametrize("method", ["fixed_bin_number", "fixed_bin_size", "none"])
def test_empty_roi_is_rejected(method):
    with pytest.raises(disc.DiscretisationError, match="empty"):
        disc.discretise(np.ones(4), np.zeros(4, dtype=bool), method, bin_width=1.0, n_bins=4)


def test_discretise_dispatches_and_rejects_unknown_methods():
    image, mask = np.array([1.0, 2.0, 4.0]), np.ones(3, dtype=bool)
    np.testing.assert_array_equal(disc.discretise(image, mask, "fixed_bin_number", n_bins=3)[0], [1, 2, 3])
    np.testing.assert_array_equal(disc.discretise(image, mask, "fixed_bin_size", bin_width=2.0)[0], [1, 1, 2])
    np.testing.assert_array_equal(disc.discretise(image, mask, "none")[0], [1, 2, 4])
    with pytest.raises(disc.DiscretisationError, match="unknown"):
        disc.discretise(image, mask, "equal_probability")


def test_ivh_without_discretisation_names_the_setting_for_non_integer_intensities():
    """A PET or MR volume run with the CT defaults: the error says which key to change and where an example is."""
    from radflow.features import ivh

    with pytest.raises(disc.DiscretisationError, match=r"set discretisation\.ivh\.method .*config/settings/pet_suv\.yaml"):
        ivh.build(np.array([0.5, 1.25, 3.0]), {"method": "none"})
