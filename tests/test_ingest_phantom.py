"""The IBSI CT phantom's DICOM folder through the pipeline's own discover and ingest functions: its RTSTRUCT ROI
GTV-1 is found by the configured pattern and rasterised to exactly the voxels of the IBSI NIfTI mask."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from ibsi_reference import IBSI
from radflow.dicom.deid import DEMO_KEY
from radflow.manifest import Manifest
from radflow.pipeline.discover import discover
from radflow.pipeline.ingest import ingest_batch

PHANTOM = IBSI / "ct_phantom"


def test_ct_phantom_folder_ingests_with_gtv1_automatically(tmp_path):
    if not (PHANTOM / "dicom" / "image").is_dir():
        pytest.skip("IBSI CT phantom DICOM absent (../shared/ibsi)")
    inventory = tmp_path / "inventory.json"
    discover(PHANTOM / "dicom", inventory, batch_size=10, rois=[{"name": "GTV", "pattern": "^gtv"}], key=DEMO_KEY,
             series_rules={"modalities": ["CT"], "min_slices": 10})
    batches = json.loads(inventory.read_text())["batches"]
    assert list(batches) == ["b0000"]
    (case,) = batches["b0000"]
    (scan,) = case["scans"]
    assert scan["error"] is None and scan["roi_errors"] == []
    assert [(r["roi"], r["kind"], r["label"]) for r in scan["rois"]] == [("GTV", "RTSTRUCT", "GTV-1")]
    assert len(scan["files"]) == 60 and scan["series_uid"].startswith("2.25.")

    batch = tmp_path / "batches" / "b0000"
    ingest_batch(inventory, "b0000", batch / "ingest.json", batch / "volumes")
    (entry,) = Manifest.read(batch / "ingest.json").scans
    assert entry.status == "ok" and entry.warnings == []
    (mask_entry,) = entry.masks
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(batch / mask_entry.path))).astype(bool)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(PHANTOM / "nifti" / "mask.nii.gz"))).astype(bool)
    assert entry.meta["roi_voxels"]["GTV"] == np.count_nonzero(expected) == 125_256
    np.testing.assert_array_equal(mask, expected)
    image = sitk.ReadImage(str(batch / entry.image))
    reference = sitk.ReadImage(str(PHANTOM / "nifti" / "image.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-4)
