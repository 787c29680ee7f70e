"""The filter registry: a filter is one module declaring ``FILTER`` plus one registration, and then runs through
settings -> prepare -> features like the built-in ones (docs/developing.md, "Add a filter")."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from radflow.extraction import extract_columns
from radflow.imaging import filters
from radflow.imaging.filters import registry
from radflow.settings import DEFAULTS, Settings, SettingsError

TOY_MODULE = '''
"""Toy filter for the registry test: the maximum over a cube of toy_size voxels (nearest-voxel boundary)."""
from scipy import ndimage

from radflow.imaging.filters.registry import FilterKind, radius_on_axes, require


def _validate(spec):
    require(int(spec.toy_size) % 2 == 1, "toy_size must be odd")


FILTER = FilterKind(
    name="toy_local_max",
    parameters={"toy_size": 3},
    apply=lambda image, spacing, spec: ndimage.maximum_filter(
        image, size=[int(spec.toy_size) if a in spec.axes else 1 for a in range(3)], mode="nearest"),
    support_radius=lambda spec, spacing: radius_on_axes(spec, int(spec.toy_size) // 2),
    validate=_validate,
)
'''


@pytest.fixture
def toy_filter(tmp_path, monkeypatch):
    (tmp_path / "radflow_toy_filter.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    kind = filters.register_module("radflow_toy_filter")
    try:
        yield kind
    finally:
        filters.unregister(kind.name)


def _image_and_mask() -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(18)
    array = rng.normal(40.0, 30.0, size=(12, 14, 16)).round()
    mask = np.zeros(array.shape, dtype=np.uint8)
    mask[3:9, 4:10, 5:12] = 1  # away from the border: the crop prepare filters is smaller than the image
    image, roi = sitk.GetImageFromArray(array), sitk.GetImageFromArray(mask)
    for im in (image, roi):
        im.SetSpacing((0.8, 0.8, 2.0))
    return image, roi


# A small local-intensity sphere keeps prepare's own crop margin (1 voxel) below the filter's support (2 voxels):
# the values below match only if prepare grows the crop by the support the filter declares.
SETTINGS = {"families": ["statistics", "glcm"], "discretisation": {"texture": {"bin_width": 10.0}},
            "local_intensity": {"sphere_volume_cm3": 1e-4}}


def test_a_registered_filter_runs_end_to_end(toy_filter):
    image, mask = _image_and_mask()
    toy = Settings.from_dict({**SETTINGS, "filter": {"type": "toy_local_max", "toy_size": 5}})
    got = extract_columns(image, mask, toy)
    # Independently: filter the whole image with scipy, then extract without a filter.
    whole = ndimage.maximum_filter(sitk.GetArrayFromImage(image), size=5, mode="nearest")
    filtered = sitk.GetImageFromArray(whole)
    filtered.CopyInformation(image)
    expected = extract_columns(filtered, mask, Settings.from_dict(SETTINGS))
    assert got["ibsi_code"] == expected["ibsi_code"] and len(got["value"]) > 100
    np.testing.assert_array_equal(got["value"], expected["value"])  # bit for bit: the crop keeps the support
    unfiltered = extract_columns(image, mask, Settings.from_dict(SETTINGS))
    assert not np.allclose(got["value"], unfiltered["value"], equal_nan=True)


def test_a_registered_filter_joins_the_settings_document(toy_filter):
    base = Settings.from_dict({})
    assert base["filter"]["toy_size"] == 3  # every document carries every registered key (and hashes it)
    five = Settings.from_dict({"filter": {"type": "toy_local_max", "toy_size": 5}})
    assert five.settings_id != Settings.from_dict({"filter": {"type": "toy_local_max"}}).settings_id
    assert filters.support_margin(filters.FilterSpec.from_settings(five["filter"]), (2.0, 0.8, 0.8)) == (2, 2, 2)
    with pytest.raises(SettingsError, match="toy_size must be odd"):
        Settings.from_dict({"filter": {"type": "toy_local_max", "toy_size": 4}})
    with pytest.raises(SettingsError, match="sigma_mm do"):  # another filter's key set on this one
        Settings.from_dict({"filter": {"type": "toy_local_max", "sigma_mm": 2.0}})
    with pytest.raises(SettingsError, match="toy_size do"):
        Settings.from_dict({"filter": {"type": "mean", "toy_size": 5}})


def test_unregistering_restores_the_documents(tmp_path, monkeypatch):
    before = Settings.from_dict({}).settings_id
    (tmp_path / "radflow_toy_filter.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    filters.register_module("radflow_toy_filter")
    assert Settings.from_dict({}).settings_id != before
    filters.unregister("toy_local_max")
    assert Settings.from_dict({}).settings_id == before
    with pytest.raises(ValueError, match="built-in"):
        filters.unregister("gabor")


def test_clashing_registrations_are_refused():
    kind = registry.FilterKind("clash", {"sigma_mm": 1.0}, apply=lambda i, s, p: i, support_radius=lambda p, s: None)
    with pytest.raises(ValueError, match="sigma_mm"):  # LoG and Gabor default it to None
        filters.register(kind)
    with pytest.raises(ValueError, match="already registered"):
        filters.register(registry.registered()["mean"])
    with pytest.raises(ValueError, match="common filter key"):
        filters.register(registry.FilterKind("clash", {"dimensions": "2D"}, apply=lambda i, s, p: i,
                                             support_radius=lambda p, s: None))
    assert "clash" not in registry.filter_types()


def test_every_built_in_filter_declares_itself_in_its_module():
    kinds = registry.registered()
    assert list(kinds)[:1] == ["none"] and len(kinds) == 1 + len(registry.BUILT_IN_FILTERS)
    for name, kind in kinds.items():
        assert set(kind.parameters) <= set(DEFAULTS["filter"]), name
    # The settings group is exactly the common keys plus the union of the filters' keys.
    union = set(registry.COMMON_PARAMETERS).union(*(k.parameters for k in kinds.values()))
    assert set(DEFAULTS["filter"]) == union
