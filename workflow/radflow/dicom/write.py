"""Writers for the DICOM objects radflow produces: CT image slices, RTSTRUCT and SEG.

Used by the demo cohort (radflow.demo). Everything here is deterministic: no wall-clock times and no random UIDs
end up in a file, so the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RTStructureSetStorage
from skimage.measure import find_contours

# Copied from the CT into derived objects (RTSTRUCT) so they sit in the same patient and study.
PATIENT_STUDY_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
    "ReferringPhysicianName", "StudyDescription", "InstitutionName",
)


def ds_str(value: float, decimals: int = 4) -> str:
    """A DS (decimal string) of at most 16 characters, fixed so files do not depend on float repr."""
    text = f"{round(float(value), decimals):.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _with_file_meta(ds: Dataset) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def save(ds: Dataset, path: Path) -> Path:
    """Write `ds` as a DICOM Part 10 file (preamble, file meta, explicit VR little endian)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        _with_file_meta(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


# --------------------------------------------------------------------------------------------------- slices

def _axial_image(attrs: Mapping[str, Any], sop_class_uid: str, modality: str, image_type: list[str],
                 sop_instance_uid: str, instance_number: int, position_xyz: Sequence[float],
                 pixel_spacing_rc: Sequence[float], stored: np.ndarray) -> Dataset:
    """The tags every axial slice radflow writes shares (geometry, pixel module); 16-bit, signed for int16."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = image_type
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.Modality = modality
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [ds_str(v) for v in position_xyz]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = ds_str(position_xyz[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.PixelSpacing = [ds_str(v, 7) for v in pixel_spacing_rc]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2" if stored.dtype == np.int16 else "<u2").tobytes()
    return ds


# --------------------------------------------------------------------------------------------------- CT image

def ct_image(
    attrs: Mapping[str, Any],
    *,
    sop_instance_uid: str,
    instance_number: int,
    position_xyz: Sequence[float],
    pixel_spacing_rc: Sequence[float],
    stored: np.ndarray,
    rescale_intercept: float = -1024.0,
) -> Dataset:
    """One axial CT Image Storage slice: `stored` int16 values, HU = stored + `rescale_intercept` (slope 1).

    `attrs` carries the patient/study/series/equipment tags shared by the series (keyword -> value).
    """
    if stored.dtype != np.int16 or stored.ndim != 2:
        raise ValueError(f"stored values must be a 2D int16 array, got {stored.dtype} {stored.shape}")
    ds = _axial_image(attrs, CTImageStorage, "CT", ["ORIGINAL", "PRIMARY", "AXIAL"], sop_instance_uid,
                      instance_number, position_xyz, pixel_spacing_rc, stored)
    ds.RescaleIntercept = ds_str(rescale_intercept)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "-600"
    ds.WindowWidth = "1500"
    return _with_file_meta(ds)


# --------------------------------------------------------------------------------------------------- PET and MR

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass(frozen=True)
class Radiopharmaceutical:
    """What SUV needs about the injection (RadiopharmaceuticalInformationSequence), DICOM strings."""

    start_time: str  # RadiopharmaceuticalStartTime, HHMMSS
    total_dose_bq: str
    half_life_s: str = "6586.2"  # 18F
    name: str = "Fluorodeoxyglucose"


def pet_image(attrs: Mapping[str, Any], *, sop_instance_uid: str, instance_number: int,
              position_xyz: Sequence[float], pixel_spacing_rc: Sequence[float], stored: np.ndarray,
              rescale_slope: str, weight_kg: str, radiopharmaceutical: Radiopharmaceutical,
              units: str = "BQML", decay_correction: str = "START") -> Dataset:
    """One axial PET Image Storage slice: `stored` uint16, activity concentration = stored * `rescale_slope` in
    `units`, with the tags SUVbw needs (weight, units, decay correction, radiopharmaceutical)."""
    if stored.dtype != np.uint16 or stored.ndim != 2:
        raise ValueError(f"stored values must be a 2D uint16 array, got {stored.dtype} {stored.shape}")
    ds = _axial_image(attrs, PET_IMAGE_STORAGE, "PT", ["ORIGINAL", "PRIMARY"], sop_instance_uid, instance_number,
                      position_xyz, pixel_spacing_rc, stored)
    ds.RescaleSlope, ds.RescaleIntercept = rescale_slope, "0"
    ds.Units, ds.DecayCorrection = units, decay_correction
    ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM"]
    ds.PatientWeight = weight_kg
    info = Dataset()
    info.Radiopharmaceutical = radiopharmaceutical.name
    info.RadiopharmaceuticalStartTime = radiopharmaceutical.start_time
    info.RadionuclideTotalDose = radiopharmaceutical.total_dose_bq
    info.RadionuclideHalfLife = radiopharmaceutical.half_life_s
    ds.RadiopharmaceuticalInformationSequence = DicomSequence([info])
    return _with_file_meta(ds)


def mr_image(attrs: Mapping[str, Any], *, sop_instance_uid: str, instance_number: int,
             position_xyz: Sequence[float], pixel_spacing_rc: Sequence[float], stored: np.ndarray) -> Dataset:
    """One axial MR Image Storage slice of uint16 signal (arbitrary units, no rescale)."""
    if stored.dtype != np.uint16 or stored.ndim != 2:
        raise ValueError(f"stored values must be a 2D uint16 array, got {stored.dtype} {stored.shape}")
    ds = _axial_image(attrs, MR_IMAGE_STORAGE, "MR", ["ORIGINAL", "PRIMARY", "M"], sop_instance_uid,
                      instance_number, position_xyz, pixel_spacing_rc, stored)
    ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "SE", "NONE", "2D"
    ds.RepetitionTime, ds.EchoTime, ds.MagneticFieldStrength = "600", "15", "1.5"
    return _with_file_meta(ds)


# --------------------------------------------------------------------------------------------------- RTSTRUCT

@dataclass(frozen=True)
class Roi:
    """A structure to contour: `mask` is (z, y, x), aligned with the CT slices passed alongside it."""

    number: int
    name: str
    mask: np.ndarray
    colour: tuple[int, int, int] = (255, 0, 0)
    interpreted_type: str = "GTV"


def pixel_to_patient(ct: Dataset, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Patient coordinates (n, 3) in mm of fractional (row, column) pixel indices of one CT slice."""
    origin = np.array([float(v) for v in ct.ImagePositionPatient])
    orientation = np.array([float(v) for v in ct.ImageOrientationPatient])
    along_row, along_col = orientation[:3], orientation[3:]  # directions of increasing column / row index
    row_spacing, col_spacing = (float(v) for v in ct.PixelSpacing)
    return (origin + np.outer(cols * col_spacing, along_row) + np.outer(rows * row_spacing, along_col))


def slice_contours(ct: Dataset, mask2d: np.ndarray) -> list[np.ndarray]:
    """Closed planar contours (each (n, 3) in patient mm, last point not repeated) of a binary slice.

    The 0.5 iso-line of the binary image runs between inside and outside pixel centres, so point-in-polygon
    rasterisation of these contours gives the mask back. Padding keeps contours at the image edge closed.
    """
    padded = np.pad(mask2d.astype(np.float32), 1)
    contours = []
    for rc in find_contours(padded, 0.5):
        rc = rc[:-1] - 1.0  # find_contours repeats the first point to close the loop; undo the padding
        contours.append(pixel_to_patient(ct, rc[:, 0], rc[:, 1]))
    return contours


def _contour_image_item(ct: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ct.SOPClassUID
    item.ReferencedSOPInstanceUID = ct.SOPInstanceUID
    return item


def _referenced_frame_of_reference(cts: Sequence[Dataset]) -> Dataset:
    series = Dataset()
    series.SeriesInstanceUID = cts[0].SeriesInstanceUID
    series.ContourImageSequence = DicomSequence([_contour_image_item(ct) for ct in cts])
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired), as TPSs write
    study.ReferencedSOPInstanceUID = cts[0].StudyInstanceUID
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = cts[0].FrameOfReferenceUID
    frame.RTReferencedStudySequence = DicomSequence([study])
    return frame


def _roi_contour_item(cts: Sequence[Dataset], roi: Roi) -> Dataset:
    contours = []
    for ct, mask2d in zip(cts, roi.mask):
        if not mask2d.any():
            continue
        for points in slice_contours(ct, mask2d):
            contour = Dataset()
            contour.ContourImageSequence = DicomSequence([_contour_image_item(ct)])
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [ds_str(v, 3) for v in points.ravel()]
            contours.append(contour)
    item = Dataset()
    item.ROIDisplayColor = list(roi.colour)
    item.ContourSequence = DicomSequence(contours)
    item.ReferencedROINumber = roi.number
    return item


def rtstruct(
    cts: Sequence[Dataset],
    rois: Sequence[Roi],
    *,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int,
    date: str,
    time: str,
    manufacturer: str,
    label: str = "RTSTRUCT",
    series_description: str = "RT Structure Set",
) -> Dataset:
    """An RT Structure Set of closed planar contours drawn on the CT series `cts` (in mask slice order)."""
    if any(roi.mask.shape[0] != len(cts) for roi in rois):
        raise ValueError("each ROI mask needs one slice per CT image")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = RTStructureSetStorage
    ds.SOPInstanceUID = sop_instance_uid
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in cts[0]:
            setattr(ds, keyword, cts[0][keyword].value)
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = series_number
    ds.SeriesDate = ds.InstanceCreationDate = date
    ds.SeriesTime = ds.InstanceCreationTime = time
    ds.SeriesDescription = series_description
    ds.Manufacturer = manufacturer
    ds.InstanceNumber = 1
    ds.StructureSetLabel = label
    ds.StructureSetDate = date
    ds.StructureSetTime = time
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([_referenced_frame_of_reference(cts)])

    roi_items, observations = [], []
    for roi in rois:
        item = Dataset()
        item.ROINumber = roi.number
        item.ReferencedFrameOfReferenceUID = cts[0].FrameOfReferenceUID
        item.ROIName = roi.name
        item.ROIGenerationAlgorithm = "MANUAL"
        roi_items.append(item)
        observation = Dataset()
        observation.ObservationNumber = roi.number
        observation.ReferencedROINumber = roi.number
        observation.RTROIInterpretedType = roi.interpreted_type
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence([_roi_contour_item(cts, roi) for roi in rois])
    ds.RTROIObservationsSequence = DicomSequence(observations)
    return _with_file_meta(ds)


# --------------------------------------------------------------------------------------------------- SEG

def segmentation(
    cts: Sequence[Dataset],
    mask: np.ndarray,
    *,
    label: str,
    sop_instance_uid: str,
    series_instance_uid: str,
    series_number: int,
    dimension_organization_uid: str,
    date: str,
    time: str,
    manufacturer: str,
    manufacturer_model_name: str,
    software_versions: str,
    series_description: str = "Segmentation",
) -> hd.seg.Segmentation:
    """A binary DICOM SEG of one segment, frame i of `mask` (z, y, x) lying on CT image `cts[i]`.

    highdicom stamps the creation and contribution times and a random DimensionOrganizationUID; all are overwritten
    here so the object depends on its inputs only.
    """
    description = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        source_images=list(cts),
        pixel_array=mask.astype(bool),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer=manufacturer,
        manufacturer_model_name=manufacturer_model_name,
        software_versions=software_versions,
        device_serial_number="0",
        content_description=f"{label} segmentation",
        content_label="GTV",
        series_description=series_description,
        content_date=date,
        content_time=time,
    )
    seg.InstanceCreationDate, seg.InstanceCreationTime = date, time
    seg.SeriesDate, seg.SeriesTime = date, time
    for equipment in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in equipment:
            equipment.ContributionDateTime = date + time
    _replace_uid(seg, seg.DimensionOrganizationSequence[0].DimensionOrganizationUID, dimension_organization_uid)
    return seg


def _replace_uid(ds: Dataset, old: str, new: str) -> None:
    def visit(dataset: Dataset, element) -> None:
        if element.VR == "UI" and element.value == old:
            element.value = new

    ds.walk(visit)
