"""The whole engine on degenerate ROIs: every family answers (a value, or NaN with a reason), no crash, no warning."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.extraction import extract_pair
from radflow.features import registry
from radflow.settings import Settings


def images(mask: np.ndarray, intensity: np.ndarray) -> tuple[sitk.Image, sitk.Image]:
    image, roi = sitk.GetImageFromArray(intensity.astype(np.float32)), sitk.GetImageFromArray(mask.astype(np.uint8))
    for im in (image, roi):
        im.SetSpacing((0.8, 0.8, 2.5))
    return image, roi


def _case(name: str):
    rng = np.random.default_rng(3)
    intensity = rng.normal(40, 30, (9, 20, 20)).round()
    mask = np.zeros(intensity.shape, bool)
    if name == "one voxel":
        mask[4, 10, 10] = True
    elif name == "one slice":
        mask[4, 5:15, 5:15] = True
    elif name == "a line":
        mask[2:7, 10, 10] = True
    elif name == "constant intensity":
        mask[2:7, 5:15, 5:15] = True
        intensity[:] = 40.0
    elif name == "two voxels, one grey level":
        mask[4, 10, 10:12] = True
        intensity[4, 10, 10:12] = 7.0
    return images(mask, intensity)


@pytest.mark.parametrize("case", ["one voxel", "one slice", "a line", "constant intensity", "two voxels, one grey level"])
def test_degenerate_roi_gives_values_or_reasoned_nan(case):
    settings = Settings.from_dict({"resegmentation": {"range": [-1000, 400]},
                                   "discretisation": {"texture": {"lower_bound": -1000}}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = extract_pair(*_case(case), settings)
    assert set(table["family"]) == set(registry.FAMILIES)
    undefined = table[~np.isfinite(table["value"])]
    assert (undefined["reason"].str.len() > 0).all(), undefined[undefined["reason"] == ""][["feature", "aggregation"]]
    defined = table[np.isfinite(table["value"])]
    assert (defined["reason"] == "").all()
    # IBSI-defined values that must hold whatever the shape
    value = dict(zip(zip(table["ibsi_code"], table["aggregation"]), table["value"]))
    assert value[("YEKZ", "none")] > 0
    if case in ("constant intensity", "two voxels, one grey level"):
        assert value[("ECT3", "none")] == 0.0  # variance
        assert value[("TLU2", "none")] == 0.0  # histogram entropy of one level
    assert not math.isnan(value[("Q4LE", "none")])


def test_an_roi_too_small_for_the_interpolation_grid_is_named_as_such():
    """A 10 x 10 x 20 mm ROI on a 30 mm grid: no new voxel is half inside it. Before, 'the ROI mask is empty',
    which sends the user looking for a broken mask file."""
    import radflow
    from radflow.imaging.preprocess import EmptyRoiError

    image = np.round(np.random.default_rng(0).normal(0.0, 50.0, (20, 30, 40)))
    mask = np.zeros(image.shape, bool)
    mask[5:15, 10:20, 10:30] = True
    coarse = {"interpolation": {"enabled": True, "spacing_mm": [30, 30, 30]}}
    with pytest.raises(EmptyRoiError, match=r"no voxel of the interpolation grid \(\[30, 30, 30\] mm\) lies at least "
                                            r"0.5 inside the ROI of 2000 voxel\(s\) at \[1, 1, 2\] mm: the ROI is too "
                                            r"small for that spacing"):
        radflow.extract(image, mask, coarse, spacing=(1, 1, 2))
    with pytest.raises(EmptyRoiError, match="^the ROI mask is empty$"):
        radflow.extract(image, np.zeros(image.shape, bool), {}, spacing=(1, 1, 2))
