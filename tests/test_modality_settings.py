"""A settings document applies only to the modality it names; the default PET and MR documents extract features."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import REPO
from radflow.extraction import extract_pair
from radflow.settings import Settings, SettingsError

PET = REPO / "config/settings/pet_suv.yaml"
MR = REPO / "config/settings/mr_zscore_fbn32.yaml"
CT = REPO / "config/settings/ct_iso1mm_fbs25.yaml"


def test_each_default_document_applies_to_its_own_dicom_modality_only():
    assert [Settings.from_yaml(p).applies_to(m) for p in (CT, PET, MR) for m in ("CT", "PT", "MR")] == [
        True, False, False, False, True, False, False, False, True]
    assert Settings.from_dict({"modality": "generic"}).applies_to("PT")
    assert Settings.from_dict({}).applies_to(None)  # unknown modality (manifest default) counts as CT
    with pytest.raises(SettingsError, match="modality"):
        Settings.from_dict({"modality": "PT"})


def _blob(values: np.ndarray, spacing) -> tuple[sitk.Image, sitk.Image]:
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing(spacing)
    z, y, x = np.indices(values.shape)
    centre = (np.array(values.shape) - 1) / 2
    mask = sitk.GetImageFromArray(((((z - centre[0]) * spacing[2]) ** 2 + ((y - centre[1]) * spacing[1]) ** 2
                                    + ((x - centre[2]) * spacing[0]) ** 2) < 12.0 ** 2).astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def test_pet_settings_give_suv_max_and_tlg_as_integrated_intensity():
    rng = np.random.default_rng(3)
    suv = 1.0 + 4.0 * rng.random((12, 16, 16))
    image, mask = _blob(suv, (3.0, 3.0, 3.0))  # already on the 3 mm grid: interpolation changes nothing
    table = extract_pair(image, mask, Settings.from_yaml(PET)).set_index("ibsi_code")
    inside = suv[sitk.GetArrayViewFromImage(mask) > 0].astype(np.float32)
    assert table.at["84IY", "value"] == pytest.approx(float(inside.max()), rel=1e-6)  # SUVmax
    assert table.at["99N0", "value"] == pytest.approx(table.at["RNU0", "value"] * float(inside.mean()), rel=1e-6)


def test_mr_settings_are_invariant_to_the_arbitrary_mr_scale():
    rng = np.random.default_rng(4)
    signal = 300.0 + 50.0 * rng.random((10, 20, 20))
    settings = Settings.from_yaml(MR)
    a = extract_pair(*_blob(signal, (1.0, 1.0, 1.0)), settings).set_index(["ibsi_code", "aggregation"])["value"]
    b = extract_pair(*_blob(3.0 * signal + 1000.0, (1.0, 1.0, 1.0)), settings).set_index(
        ["ibsi_code", "aggregation"])["value"]
    texture = [k for k in a.index if k[1].startswith("3D")]  # z-score + fixed bin number: texture unchanged
    np.testing.assert_allclose(a[texture].to_numpy(), b[texture].to_numpy(), rtol=1e-5, atol=1e-8)
