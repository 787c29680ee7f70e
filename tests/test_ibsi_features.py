"""Every IBSI-1 reference feature value, row by row: the digital phantom and CT phantom configurations A-E.

Each family is computed once per configuration; a failure names the configuration, code, feature and aggregation.
"""
from __future__ import annotations

from functools import cache

import pytest
import SimpleITK as sitk

from conftest import REPO
from ibsi_reference import IBSI, references, round3, within_tolerance
from radflow.features import engine, registry
from radflow.imaging.preprocess import prepare
from radflow.settings import Settings

CONFIGURATIONS = {
    "digital_phantom": ("digital_phantom", "digital_phantom/image.nii.gz", "digital_phantom/mask.nii.gz"),
    "A": ("A", "ct_phantom/nifti/image.nii.gz", "ct_phantom/nifti/mask.nii.gz"),
    "B": ("B", "ct_phantom/nifti/image.nii.gz", "ct_phantom/nifti/mask.nii.gz"),
    "C": ("C", "ct_phantom/nifti/image.nii.gz", "ct_phantom/nifti/mask.nii.gz"),
    "D": ("D", "ct_phantom/nifti/image.nii.gz", "ct_phantom/nifti/mask.nii.gz"),
    "E": ("E", "ct_phantom/nifti/image.nii.gz", "ct_phantom/nifti/mask.nii.gz"),
}


@cache
def _computed(configuration: str, family: str) -> dict[tuple[str, str], float]:
    settings_name, image, mask = CONFIGURATIONS[configuration]
    settings = Settings.from_yaml(REPO / "config" / "ibsi" / f"{settings_name}.yaml")
    roi = prepare(sitk.ReadImage(str(IBSI / image)), sitk.ReadImage(str(IBSI / mask)), settings)
    values = engine.family_module(family).compute(roi, settings)
    return {(v.ibsi_code, v.aggregation): v.value for v in values}


ROWS = [ref for config in CONFIGURATIONS for ref in references(config)]


@pytest.mark.parametrize("ref", ROWS, ids=[r.id for r in ROWS])
def test_feature_matches_ibsi_reference(ref):
    family = registry.info(ref.ibsi_code).family
    computed = _computed(ref.configuration, family)
    key = (ref.ibsi_code, ref.aggregation)
    assert key in computed, f"{family} did not report {ref.feature} ({ref.aggregation})"
    value = computed[key]
    assert within_tolerance(value, ref), (
        f"{ref.feature} [{ref.aggregation}]: got {value!r} (round3 {round3(value)}), "
        f"reference {ref.value} +/- {ref.tolerance}"
    )


def test_reference_table_is_present():
    if not IBSI.exists():
        pytest.skip("../shared is absent")
    assert len(references("digital_phantom")) == 482
