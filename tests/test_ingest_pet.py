"""PET through ingest: a PET series written with pydicom is read back by the real reader and converted to SUVbw;
broken radiopharmaceutical tags fail the scan with a QC code and reason instead of crashing the batch.

The series: 4 slices of 8 x 8 voxels, 18F (T1/2 6586.2 s), 350 MBq injected at 09:05:00, series and first
acquisition at 10:05:00 (decay time 3600 s), 82 kg, stored value v with RescaleSlope 2.5 -> 2.5 v Bq/ml:
    decayed dose = 3.5e8 * 2^(-3600 / 6586.2)
    SUVbw        = 2.5 v * 82000 / decayed dose
"""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from radflow.dicom import write
from radflow.manifest import Manifest
from radflow.pipeline.ingest import ingest_batch
from radflow.qc import CHECKS, Thresholds

DOSE, HALF_LIFE, WEIGHT, SLOPE = 3.5e8, 6586.2, 82.0, 2.5
EXPECTED_FACTOR = WEIGHT * 1000 / (DOSE * 2 ** (-3600 / HALF_LIFE))


def stored_slice(k: int) -> np.ndarray:
    return (np.arange(64, dtype=np.uint16).reshape(8, 8) * 10 + 100 * k).astype(np.uint16)


def write_pet_series(folder, **broken) -> list[str]:
    paths = []
    for k in range(4):
        attrs = {"PatientID": "PET-1", "StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4",
                 "FrameOfReferenceUID": "1.2.3.5", "SeriesDate": "20240312", "SeriesTime": "100500",
                 "AcquisitionDate": "20240312", "AcquisitionTime": f"1005{k:02d}"}
        pharma = write.Radiopharmaceutical(start_time="090500", total_dose_bq=f"{DOSE:.0f}", half_life_s=f"{HALF_LIFE}")
        ds = write.pet_image(attrs, sop_instance_uid=f"1.2.3.4.{k + 1}", instance_number=k + 1,
                             position_xyz=(0.0, 0.0, 3.0 * k), pixel_spacing_rc=(4.0, 4.0), stored=stored_slice(k),
                             rescale_slope=f"{SLOPE}", weight_kg=f"{WEIGHT:g}", radiopharmaceutical=pharma)
        for keyword, value in broken.items():
            if keyword == "RadionuclideTotalDose_slice" and k == 2:
                ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose = value
            elif keyword.startswith("Radio") and keyword != "RadionuclideTotalDose_slice":
                target = ds.RadiopharmaceuticalInformationSequence[0]
                delattr(target, keyword) if value is None else setattr(target, keyword, value)
            elif keyword != "RadionuclideTotalDose_slice":
                delattr(ds, keyword) if value is None else setattr(ds, keyword, value)
        paths.append(str(write.save(ds, folder / f"IM{k}.dcm")))
    return paths


def ingest_one(tmp_path, files) -> Manifest:
    scan = {"scan": "pt_test", "source": "dicom", "modality": "PT", "series_uid": "2.25.1", "files": files,
            "acquisition_datetime": None, "timepoint": 0, "days_from_baseline": 0, "rois": [], "roi_errors": [],
            "error": None}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"batches": {"b0000": [{"case_id": "case-1", "scans": [scan]}]}}))
    ingest_batch(inventory, "b0000", tmp_path / "ingest.json", tmp_path / "volumes", Thresholds())
    return Manifest.read(tmp_path / "ingest.json")


def test_pet_voxels_are_suv_bw_equal_to_the_hand_computation(tmp_path):
    files = write_pet_series(tmp_path / "dicom")
    scan = ingest_one(tmp_path, files).scans[0]
    assert scan.status == "ok"
    assert scan.meta["suv_factor"] == pytest.approx(EXPECTED_FACTOR, rel=1e-12)
    volume = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / scan.image)))
    expected = np.stack([stored_slice(k) * SLOPE * EXPECTED_FACTOR for k in range(4)])
    np.testing.assert_allclose(volume, expected, rtol=2e-7)  # float32 volume
    assert volume[1, 0, 1] == pytest.approx(110 * 2.5 * 82000 / (3.5e8 * 0.5 ** (3600 / 6586.2)), rel=2e-7)


@pytest.mark.parametrize("broken, code, words", [
    ({"PatientWeight": None}, "PET_TAGS_MISSING", "PatientWeight"),
    ({"RadionuclideTotalDose": None}, "PET_TAGS_MISSING", "RadionuclideTotalDose"),
    ({"RadiopharmaceuticalStartDateTime": "20240312110000"}, "PET_TAGS_INCONSISTENT", "after the scan"),
    ({"RadionuclideTotalDose_slice": "1000"}, "PET_TAGS_INCONSISTENT", "differs between the slices"),
    ({"Units": "CNTS"}, "PET_UNITS", "(7053,1000)"),
])
def test_broken_pet_tags_fail_the_scan_with_a_code_and_reason(tmp_path, broken, code, words):
    scan = ingest_one(tmp_path, write_pet_series(tmp_path / "dicom", **broken)).scans[0]
    assert scan.status == "fail" and scan.error_code == code and words in scan.error_message
    assert code in CHECKS


def test_the_scans_table_names_the_intensity_unit():
    from radflow.manifest import ScanEntry
    from radflow.pipeline.qc import intensity_unit

    def unit(modality, **meta):
        return intensity_unit(ScanEntry("c", "s", modality=modality, meta={"modality": modality, **meta}))

    assert [unit("CT"), unit("PT", suv_factor=0.001), unit("PT"), unit("MR")] == ["HU", "SUVbw", None, "arbitrary"]
    assert intensity_unit(ScanEntry("c", "s", status="fail", modality="CT")) is None


# --- the same series through radflow extract and radflow.extract(): SUVbw, and settings meant for PET -------------

def test_a_pet_series_read_for_extraction_is_in_suv_bw_like_the_ingest(tmp_path):
    from radflow.io import image_modality, read_image

    write_pet_series(tmp_path / "dicom")
    image = read_image(tmp_path / "dicom")
    expected = np.stack([stored_slice(k) * SLOPE * EXPECTED_FACTOR for k in range(4)])
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), expected, rtol=2e-7)
    assert image_modality(image) == "PT"


def test_extraction_refuses_ct_settings_on_pet_and_computes_with_pet_settings(tmp_path):
    import radflow

    write_pet_series(tmp_path / "dicom")
    mask = np.zeros((4, 8, 8), dtype=np.uint8)
    mask[1:3, 2:6, 2:6] = 1
    with pytest.raises(ValueError, match="radflow's default settings are for CT images and .* is a DICOM series of "
                                         "modality PT: use config/settings/pet_suv.yaml, or your own document with "
                                         "modality: PET"):
        radflow.extract(tmp_path / "dicom", mask)
    pet = {"modality": "PET", "families": ["statistics"],
           "discretisation": {"ivh": {"method": "fixed_bin_size", "bin_width": 0.1}}}
    table = radflow.extract(tmp_path / "dicom", mask, pet)
    mean = table.set_index("ibsi_code").loc["Q4LE", "value"]
    expected = np.stack([stored_slice(k) * SLOPE * EXPECTED_FACTOR for k in range(4)])
    assert mean == pytest.approx(expected[mask == 1].mean(), rel=1e-6)


def test_radflow_extract_says_which_settings_a_pet_series_needs(tmp_path):
    import subprocess
    import sys

    write_pet_series(tmp_path / "dicom")
    mask = np.zeros((4, 8, 8), dtype=np.uint8)
    mask[1:3, 2:6, 2:6] = 1
    series = sitk.ImageSeriesReader()  # the series' grid, for the mask file
    series.SetFileNames(sorted(str(p) for p in (tmp_path / "dicom").glob("*.dcm")))
    mask_image = sitk.GetImageFromArray(mask)
    mask_image.CopyInformation(series.Execute())
    sitk.WriteImage(mask_image, str(tmp_path / "mask.nii.gz"))
    result = subprocess.run([sys.executable, "-m", "radflow", "extract", str(tmp_path / "dicom"),
                             str(tmp_path / "mask.nii.gz")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"radflow: error: radflow's default settings are for CT images and {tmp_path / 'dicom'} is a DICOM series "
        "of modality PT: use config/settings/pet_suv.yaml, or your own document with modality: PET")


def test_a_pet_series_without_suv_tags_is_refused_for_extraction_with_the_tag(tmp_path):
    from radflow.io import InputError, read_image

    write_pet_series(tmp_path / "dicom", PatientWeight=None)
    with pytest.raises(InputError, match="cannot be converted to SUVbw: .*PatientWeight"):
        read_image(tmp_path / "dicom")


def test_a_dicom_file_listed_in_the_input_manifest_is_refused_with_where_it_belongs(tmp_path):
    files = write_pet_series(tmp_path / "dicom")
    scan = {"scan": "test", "source": "file", "modality": "PT", "series_uid": "2.25.2", "files": [files[0]],
            "acquisition_datetime": None, "timepoint": 0, "days_from_baseline": 0, "rois": [], "roi_errors": [],
            "error": None}
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"batches": {"b0000": [{"case_id": "case-1", "scans": [scan]}]}}))
    ingest_batch(inventory, "b0000", tmp_path / "ingest.json", tmp_path / "volumes", Thresholds())
    (ingested,) = Manifest.read(tmp_path / "ingest.json").scans
    assert ingested.status == "fail" and ingested.error_code == "IMAGE_UNREADABLE"
    assert ingested.error_message.startswith("the image file is DICOM: DICOM series and their RTSTRUCT / SEG masks go under "
                                     "input_dir")


def test_a_pet_ct_roi_drawn_on_the_ct_reaches_the_pet_of_the_same_frame(tmp_path):
    """Hybrid PET/CT: one study, one frame of reference, the RTSTRUCT referencing the CT only. Before, the PET was
    not even a scan (only series with a mask were). Now discovery lends the CT's mask to the PET, and ingest
    rasterises it on the CT grid and resamples it onto the PET grid (linear, >= 0.5), here checked against
    scipy's linear interpolation of the CT mask at the PET voxel centres."""
    from scipy import ndimage

    from radflow.dicom.deid import DEMO_KEY
    from radflow.pipeline.discover import discover

    study = {"PatientID": "PETCT-1", "StudyInstanceUID": "1.2.7", "FrameOfReferenceUID": "1.2.7.5",
             "SeriesDate": "20240312", "SeriesTime": "100500", "AcquisitionDate": "20240312",
             "AcquisitionTime": "100500"}
    rng = np.random.default_rng(6)
    cts = [write.ct_image({**study, "SeriesInstanceUID": "1.2.7.1"}, sop_instance_uid=f"1.2.7.1.{k + 1}",
                          instance_number=k + 1, position_xyz=(0.0, 0.0, 2.0 * k), pixel_spacing_rc=(1.0, 1.0),
                          stored=rng.normal(1000, 30, (40, 40)).astype(np.int16)) for k in range(16)]
    pharma = write.Radiopharmaceutical(start_time="090500", total_dose_bq=f"{DOSE:.0f}", half_life_s=f"{HALF_LIFE}")
    pets = [write.pet_image({**study, "SeriesInstanceUID": "1.2.7.2"}, sop_instance_uid=f"1.2.7.2.{k + 1}",
                            instance_number=k + 1, position_xyz=(0.5, 0.5, 4.0 * k), pixel_spacing_rc=(2.0, 2.0),
                            stored=rng.integers(100, 2000, (20, 20)).astype(np.uint16), rescale_slope="2.5",
                            weight_kg="82", radiopharmaceutical=pharma) for k in range(8)]
    drawn = np.zeros((16, 40, 40), bool)
    drawn[4:12, 9:31, 11:27] = True
    structure = write.rtstruct(cts, [write.Roi(1, "GTV", drawn)], sop_instance_uid="1.2.7.9",
                               series_instance_uid="1.2.7.8", series_number=9, date="20240312", time="101010",
                               manufacturer="X")
    for folder, datasets in (("ct", cts), ("pet", pets)):
        for k, ds in enumerate(datasets):
            write.save(ds, tmp_path / "dicom" / folder / f"{k:03d}.dcm")
    write.save(structure, tmp_path / "dicom" / "rt.dcm")

    discover(tmp_path / "dicom", tmp_path / "inventory.json", 10, [{"name": "GTV", "pattern": "^gtv"}], DEMO_KEY)
    ingest_batch(tmp_path / "inventory.json", "b0000", tmp_path / "ingest.json", tmp_path / "volumes", Thresholds())
    scans = {s.scan: s for s in Manifest.read(tmp_path / "ingest.json").scans}
    assert set(scans) == {"test", "pt_test"} and all(s.status == "ok" for s in scans.values())
    assert [w["code"] for w in scans["test"].warnings] == []
    (transfer,) = [w for w in scans["pt_test"].warnings if w["code"] == "MASK_TRANSFERRED"]
    assert "drawn on the CT series of the same frame of reference" in transfer["message"]

    pet_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / scans["pt_test"].masks[0].path)))
    # the PET voxel centres (z, y, x) in CT index space: x_ct = (0.5 + 2 i) / 1, z_ct = 4 k / 2
    k, j, i = np.mgrid[0:8, 0:20, 0:20].astype(float)
    ct_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / scans["test"].masks[0].path)))
    assert np.array_equal(ct_mask.astype(bool), drawn)  # the CT's own ROI, as drawn
    expected = ndimage.map_coordinates(ct_mask.astype(float), [2.0 * k, 0.5 + 2.0 * j, 0.5 + 2.0 * i], order=1,
                                       cval=0.0) >= 0.5
    assert np.array_equal(pet_mask.astype(bool), expected) and expected.sum() == transfer["value"] > 0

    # the same outside the pipeline: radflow.extract on the PET with the CT named as the series the mask was drawn on
    import radflow
    from conftest import REPO
    from radflow.io import read_image

    settings = REPO / "config" / "settings" / "pet_suv.yaml"
    pet = read_image(tmp_path / "dicom" / "pet")
    with pytest.raises(ValueError, match="lie between image slices .* --mask-image"):
        radflow.extract(tmp_path / "dicom" / "pet", tmp_path / "dicom" / "rt.dcm", settings)
    carried = radflow.extract(tmp_path / "dicom" / "pet", tmp_path / "dicom" / "rt.dcm", settings,
                              mask_image=tmp_path / "dicom" / "ct")
    on_pet = radflow.extract(pet, pet_mask, settings)
    assert carried["value"].equals(on_pet["value"])
    result = subprocess.run([sys.executable, "-m", "radflow", "extract", str(tmp_path / "dicom" / "pet"),
                             str(tmp_path / "dicom" / "rt.dcm"), "--mask-image", str(tmp_path / "dicom" / "ct"),
                             "--settings", str(settings), "--out", str(tmp_path / "cli.csv")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / "cli.csv", newline="") as fh:
        cli_values = [float(row["value"]) if row["value"] else math.nan for row in csv.DictReader(fh)]
    assert np.array_equal(np.array(cli_values), carried["value"].to_numpy(), equal_nan=True)
