"""SUVbw from DICOM PET tags, on a PET slice written with pydicom and read back, against hand-computed values.

The slice: 18F-FDG, 370 MBq injected at 09:30:00, T1/2 = 6586.2 s, series start 10:30:00 (decay time 3600 s),
75 kg, stored value 1000 with RescaleSlope 5 -> 5000 Bq/ml.
    decayed dose = 3.7e8 * 2^(-3600 / 6586.2) = 3.7e8 * 0.68463292 = 2.5331418e8 Bq
    SUVbw = 5000 * 75000 / 2.5331418e8 = 1.4803751
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radflow.imaging import suv

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
SUV_AT_ONE_HOUR = 1.4803751
SUV_NO_DECAY = 5000 * 75000 / 3.7e8  # ADMIN: images already decay-corrected to the injection


def pet_slice(**changes) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = PET_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.Modality = "PT"
    ds.PatientWeight = "75"
    ds.SeriesDate, ds.SeriesTime = "20240312", "103000"
    ds.AcquisitionDate, ds.AcquisitionTime = "20240312", "103000"
    ds.Units, ds.DecayCorrection = "BQML", "START"
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT"]
    info = Dataset()
    info.Radiopharmaceutical = "Fluorodeoxyglucose"
    info.RadionuclideTotalDose = "370000000"
    info.RadionuclideHalfLife = "6586.2"
    info.RadiopharmaceuticalStartTime = "093000"
    ds.RadiopharmaceuticalInformationSequence = Sequence([info])
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = "5.0", "0"
    ds.PixelData = np.array([[1000, 0], [2000, 1000]], dtype=np.uint16).tobytes()
    for keyword, value in changes.items():
        target = info if keyword.startswith("Radio") else ds
        if value is None:
            delattr(target, keyword)
        else:
            setattr(target, keyword, value)
    return ds


@pytest.fixture
def written(tmp_path):
    """Write the slice to disk and read it back, as the pipeline will meet it."""
    def write(**changes) -> Dataset:
        path = tmp_path / "pet.dcm"
        pet_slice(**changes).save_as(path, enforce_file_format=True)
        return pydicom.dcmread(path)
    return write


def test_suv_bw_matches_the_hand_computed_value(written):
    values = suv.suv_bw(written())
    assert values[0, 0] == pytest.approx(SUV_AT_ONE_HOUR, rel=1e-7)
    assert values[1, 0] == pytest.approx(2 * SUV_AT_ONE_HOUR, rel=1e-7)
    assert values[0, 1] == 0.0


def test_start_datetime_takes_precedence_over_start_time(written):
    # 09:00 by the date-time: 5400 s of decay -> 3.7e8 * 2^(-5400 / 6586.2) = 2.0959861e8 Bq
    ds = written(RadiopharmaceuticalStartDateTime="20240312090000.000000+0100")
    assert suv.suv_bw_factor(ds) * 5000 == pytest.approx(1.7891340, rel=1e-7)


def test_admin_decay_correction_uses_the_injected_dose(written):
    ds = written(DecayCorrection="ADMIN", RadiopharmaceuticalStartTime=None, SeriesTime=None)
    assert suv.suv_bw(ds)[0, 0] == pytest.approx(SUV_NO_DECAY, rel=1e-12)


def test_injection_before_midnight(written):
    ds = written(RadiopharmaceuticalStartTime="233000", SeriesDate="20240313", SeriesTime="003000",
                 AcquisitionDate="20240313", AcquisitionTime="003000")
    params = suv.suv_parameters(ds)
    assert params.decay_time_s == 3600.0
    assert params.injection_time == datetime(2024, 3, 12, 23, 30)
    assert suv.suv_bw(ds)[0, 0] == pytest.approx(SUV_AT_ONE_HOUR, rel=1e-7)


def test_reset_series_time_falls_back_to_the_acquisition_time(written):
    # a post-processed series created at 14:00: the slice was acquired at 10:30
    ds = written(SeriesTime="140000")
    assert suv.suv_parameters(ds).scan_time == datetime(2024, 3, 12, 10, 30)
    assert suv.suv_bw(ds)[0, 0] == pytest.approx(SUV_AT_ONE_HOUR, rel=1e-7)
    assert suv.suv_parameters(ds, scan_start=datetime(2024, 3, 12, 10, 0)).decay_time_s == 1800.0


def test_values_already_in_suv_are_kept(written):
    assert suv.suv_bw_factor(written(Units="GML", PatientWeight=None)) == 1.0


@pytest.mark.parametrize(
    "missing, named",
    [
        ("PatientWeight", "PatientWeight"),
        ("RadionuclideTotalDose", "RadionuclideTotalDose"),
        ("RadionuclideHalfLife", "RadionuclideHalfLife"),
        ("RadiopharmaceuticalStartTime", "RadiopharmaceuticalStartTime"),
        ("SeriesTime", "SeriesTime"),
        ("Units", "Units"),
        ("DecayCorrection", "DecayCorrection"),
        ("RadiopharmaceuticalInformationSequence", "RadiopharmaceuticalInformationSequence"),
    ],
)
def test_a_missing_tag_is_named(written, missing, named):
    ds = written(**{missing: None}) if missing != "RadiopharmaceuticalInformationSequence" else written()
    if missing == "RadiopharmaceuticalInformationSequence":
        del ds.RadiopharmaceuticalInformationSequence
    with pytest.raises(suv.SuvError, match=named):
        suv.suv_bw_factor(ds)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"PatientWeight": "0"}, "positive"),
        ({"Units": "CNTS"}, r"Units CNTS \(counts\) need Philips' SUV scale factor \(7053,1000\)"),
        ({"Units": "PROPCNTS"}, "BQML"),
        ({"DecayCorrection": "NONE"}, "not supported"),
        ({"RadiopharmaceuticalStartDateTime": "20240312110000"}, "after the scan"),
    ],
)
def test_unusable_tags_are_refused(written, changes, message):
    with pytest.raises(suv.SuvError, match=message):
        suv.suv_bw_factor(written(**changes))


def test_dicom_time_formats():
    assert suv.parse_time("093000.25") == (9, 30, 0, 250000)
    assert suv.parse_time("09:30:00") == (9, 30, 0, 0)
    assert suv.parse_time("0930") == (9, 30, 0, 0)
    assert suv.parse_datetime("202403120930") == datetime(2024, 3, 12, 9, 30)
    with pytest.raises(suv.SuvError):
        suv.parse_time("x")



def philips_counts_slice(suv_factor: str | None, activity_factor: str | None) -> Dataset:
    """The slice as a Philips scanner writes it in counts: Units CNTS, its scale factors in the private group."""
    ds = pet_slice(Units="CNTS")
    block = ds.private_block(0x7053, suv.PHILIPS_PET_CREATOR, create=True)
    if suv_factor is not None:
        block.add_new(suv.PHILIPS_SUV_FACTOR, "DS", suv_factor)
    if activity_factor is not None:
        block.add_new(suv.PHILIPS_ACTIVITY_FACTOR, "DS", activity_factor)
    return ds


@pytest.mark.parametrize("vr_explicit", [True, False], ids=["explicit VR", "implicit VR"])
def test_philips_counts_with_the_suv_scale_factor(tmp_path, vr_explicit):
    """QIBA: SUVbw = rescaled value x (7053,1000); stored 1000 x slope 5 x 2.5e-4 = 1.25."""
    ds = philips_counts_slice("0.00025", None)
    if not vr_explicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(tmp_path / "pet.dcm", enforce_file_format=True)
    read = pydicom.dcmread(tmp_path / "pet.dcm")
    assert suv.suv_bw(read)[0, 0] == pytest.approx(1.25, rel=1e-12)
    assert suv.series_suv_factor([read, read]) == pytest.approx(0.00025, rel=1e-12)


def test_philips_counts_with_the_activity_scale_factor_decay_as_bqml(tmp_path):
    """(7053,1009) 2 turns counts into Bq/ml: 10000 Bq/ml, then the BQML computation: 2 x the hand value."""
    philips_counts_slice(None, "2").save_as(tmp_path / "pet.dcm", enforce_file_format=True)
    assert suv.suv_bw(pydicom.dcmread(tmp_path / "pet.dcm"))[0, 0] == pytest.approx(2 * SUV_AT_ONE_HOUR, rel=1e-7)


def test_philips_scale_factors_that_differ_between_slices_are_refused():
    with pytest.raises(suv.SuvError, match=r"\(7053,1000\) differs between the slices"):
        suv.series_suv_factor([philips_counts_slice("0.00025", None), philips_counts_slice("0.0003", None)])
