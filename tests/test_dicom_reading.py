"""DICOM reading: discovery, series volumes, RTSTRUCT rasterisation, SEG, pseudonymisation primitives.

Synthetic DICOM is written here with pydicom (CT) and highdicom (SEG) from known arrays; the IBSI CT phantom checks
the real-data path against its NIfTI version (voxels, geometry, and the GTV-1 mask).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from matplotlib.path import Path as PolygonPath
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ibsi_reference import IBSI
from radflow.dicom import deid
from radflow.dicom.discovery import iso_datetime, scan
from radflow.dicom.rtstruct import RtstructError, fill_slice, rasterise, roi_names
from radflow.dicom.seg import SegError, read_segment, segment_labels
from radflow.dicom.series import SeriesError, read_series

CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
PHANTOM_DICOM = IBSI / "ct_phantom" / "dicom"
PHANTOM_NIFTI = IBSI / "ct_phantom" / "nifti"

# A small oblique CT: 5 slices of 6 rows x 7 columns, rotated 30 degrees about the patient z axis.
ANGLE = np.deg2rad(30.0)
ROW_COSINE = np.array([np.cos(ANGLE), np.sin(ANGLE), 0.0])
COLUMN_COSINE = np.array([-np.sin(ANGLE), np.cos(ANGLE), 0.0])
PIXEL_SPACING = (0.8, 0.6)  # (between rows, between columns)
SLICE_GAP = 2.5
FIRST_POSITION = np.array([-10.0, 5.0, -20.0])
SLOPE, INTERCEPT = 0.5, -1024.0


def stored_values(shape=(5, 6, 7)) -> np.ndarray:
    return np.arange(np.prod(shape), dtype=np.int16).reshape(shape) * 7 + 100


def ct_slice(stored: np.ndarray, position, *, study, series, frame, instance: int, orientation=None,
             pixel_spacing=PIXEL_SPACING, patient_id="PAT-001") -> pydicom.Dataset:
    orientation = np.concatenate([ROW_COSINE, COLUMN_COSINE]) if orientation is None else orientation
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CT_SOP_CLASS
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Patient", patient_id, "", "O"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = (
        "20240102", "101500", "1", "", "")
    ds.SeriesDate, ds.SeriesTime, ds.SeriesNumber, ds.SeriesDescription = "20240102", "102030.5", 3, "thorax"
    ds.AcquisitionDate, ds.AcquisitionTime = "20240102", f"1021{instance:02d}"
    ds.Manufacturer, ds.InstanceNumber, ds.PositionReferenceIndicator = "radflow-test", instance, ""
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in orientation]
    ds.PixelSpacing = [str(v) for v in pixel_spacing]
    ds.SliceThickness = str(SLICE_GAP)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = str(SLOPE), str(INTERCEPT), "HU"
    ds.PixelData = stored.astype("<i2").tobytes()
    return ds


def slice_position(k: int, gap: float = SLICE_GAP) -> np.ndarray:
    return FIRST_POSITION + k * gap * np.cross(ROW_COSINE, COLUMN_COSINE)


def write_ct(folder: Path, stored: np.ndarray, *, names=None, positions=None, **uids) -> list[Path]:
    """Write slices under opaque names (no suffix) in a scrambled order with InstanceNumber reversed."""
    folder.mkdir(parents=True, exist_ok=True)
    study = uids.get("study", generate_uid())
    series = uids.get("series", generate_uid())
    frame = uids.get("frame", generate_uid())
    paths = []
    order = [2, 0, 4, 1, 3] if len(stored) == 5 else list(range(len(stored)))[::-1]
    for k in order:
        position = slice_position(k) if positions is None else positions[k]
        ds = ct_slice(stored[k], position, study=study, series=series, frame=frame, instance=len(stored) - k)
        path = folder / (names[k] if names else uuid.uuid4().hex)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory) -> list[Path]:
    return write_ct(tmp_path_factory.mktemp("ct") / "deep" / "folder", stored_values())


# ---------------------------------------------------------------------------------------------------- series


def test_read_series_orders_geometrically_and_rescales(small_ct):
    image = read_series(small_ct)
    assert image.GetPixelID() == sitk.sitkFloat32
    expected = stored_values().astype(np.float64) * SLOPE + INTERCEPT
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), expected.astype(np.float32))
    np.testing.assert_allclose(image.GetSpacing(), (0.6, 0.8, SLICE_GAP), atol=1e-6)
    np.testing.assert_allclose(image.GetOrigin(), FIRST_POSITION, atol=1e-6)
    # Independent check with the DICOM formula P = IPP_k + column * dx * row_cosine + row * dy * column_cosine.
    for (i, j, k) in [(0, 0, 0), (6, 0, 1), (3, 5, 4), (6, 5, 2)]:
        dicom_point = slice_position(k) + i * 0.6 * ROW_COSINE + j * 0.8 * COLUMN_COSINE
        np.testing.assert_allclose(image.TransformIndexToPhysicalPoint((i, j, k)), dicom_point, atol=1e-5)


def test_read_series_reproduces_ibsi_ct_phantom():
    files = sorted((PHANTOM_DICOM / "image").glob("*.dcm"))
    if not files:
        pytest.skip("IBSI CT phantom DICOM absent")
    start = time.perf_counter()
    image = read_series(files)
    seconds = time.perf_counter() - start
    reference = sitk.ReadImage(str(PHANTOM_NIFTI / "image.nii.gz"))
    assert image.GetSize() == reference.GetSize() == (204, 201, 60)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))
    np.testing.assert_allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(image.GetDirection(), reference.GetDirection(), atol=1e-9)
    assert seconds < 5.0, f"reading 60 slices took {seconds:.2f} s"


def _datasets(small_ct):
    return [pydicom.dcmread(p) for p in small_ct]


def _save_all(datasets, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, ds in enumerate(datasets):
        paths.append(folder / f"s{n}")
        ds.save_as(paths[-1])
    return paths


@pytest.mark.parametrize("defect, message", [
    ("duplicate", "duplicate slice position"),
    ("orientation", "mixed slice orientations"),
    ("gap", "non-uniform slice spacing"),
    ("tilt", "shifted in-plane"),
    ("no_pixels", "without pixel data"),
    ("two_series", "different series"),
    ("matrix", "mixed matrix sizes"),
])
def test_read_series_refuses_irregular_series(small_ct, tmp_path, defect, message):
    datasets = _datasets(small_ct)
    by_k = sorted(datasets, key=lambda ds: int(ds.InstanceNumber), reverse=True)  # k = 0..4
    if defect == "duplicate":
        by_k[3].ImagePositionPatient = by_k[2].ImagePositionPatient
    elif defect == "orientation":
        by_k[1].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    elif defect == "gap":
        datasets = [ds for ds in datasets if ds is not by_k[2]]  # a missing slice
    elif defect == "tilt":
        for k, ds in enumerate(by_k):
            ds.ImagePositionPatient = [f"{v:.6f}" for v in slice_position(k) + k * 0.5 * COLUMN_COSINE]
    elif defect == "no_pixels":
        del by_k[2].PixelData
    elif defect == "two_series":
        by_k[0].SeriesInstanceUID = generate_uid()
    elif defect == "matrix":
        by_k[4].Rows = 3
        by_k[4].PixelData = by_k[4].PixelData[: 3 * 7 * 2]
    with pytest.raises(SeriesError, match=message):
        read_series(_save_all(datasets, tmp_path))


@pytest.mark.parametrize("tag, values", [("EchoNumbers", (1, 2)), ("DiffusionBValue", (0, 1000)),
                                         ("TemporalPositionIdentifier", (1, 2, 3))])
def test_a_series_of_several_volumes_is_named_as_such(small_ct, tmp_path, tag, values):
    """Echoes, b-values or time points stored as one series repeat every slice position: that is said, with the tag
    that tells the volumes apart, instead of "duplicate slice positions"."""
    datasets = []
    for value in values:
        for ds in _datasets(small_ct):
            setattr(ds, tag, value)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            datasets.append(ds)
    with pytest.raises(SeriesError, match=f"holds {len(values)} volumes at the same slice positions, told apart by "
                                          f"{tag}") as raised:
        read_series(_save_all(datasets, tmp_path))
    assert raised.value.code == "SERIES_MULTI_VOLUME"


def test_one_slice_scanned_again_is_a_duplicate_not_a_second_volume(small_ct, tmp_path):
    datasets = _datasets(small_ct)
    again = _datasets(small_ct)[2]
    again.AcquisitionNumber = 2
    again.SOPInstanceUID = again.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    with pytest.raises(SeriesError, match="duplicate slice position") as raised:
        read_series(_save_all([*datasets, again], tmp_path))
    assert raised.value.code == "SLICE_DUPLICATE"


def test_spacing_tolerance_is_a_parameter(small_ct, tmp_path):
    datasets = _datasets(small_ct)
    by_k = sorted(datasets, key=lambda ds: int(ds.InstanceNumber), reverse=True)
    jittered = slice_position(2) + 0.03 * np.cross(ROW_COSINE, COLUMN_COSINE)  # 0.03 mm off
    by_k[2].ImagePositionPatient = [f"{v:.6f}" for v in jittered]
    paths = _save_all(datasets, tmp_path)
    with pytest.raises(SeriesError, match="non-uniform"):
        read_series(paths)
    image = read_series(paths, spacing_tolerance_mm=0.05)
    assert image.GetSpacing()[2] == pytest.approx(SLICE_GAP, abs=1e-6)


def test_compressed_slices_are_read_where_pydicom_can_decode(small_ct, tmp_path):
    from pydicom.uid import JPEG2000Lossless, RLELossless

    datasets = _datasets(small_ct)
    for ds in datasets:
        ds.compress(RLELossless)  # pydicom encodes and decodes RLE natively
    image = read_series(_save_all(datasets, tmp_path / "rle"))
    expected = stored_values().astype(np.float64) * SLOPE + INTERCEPT
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), expected.astype(np.float32))
    broken = _datasets(small_ct)
    for ds in broken:  # a JPEG 2000 header over bytes no decoder can read
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 16])
        ds["PixelData"].VR = "OB"
    with pytest.raises(SeriesError, match="pixel data not decodable"):
        read_series(_save_all(broken, tmp_path / "j2k"))


# ---------------------------------------------------------------------------------------------------- RTSTRUCT


def rtstruct(path: Path, rois: dict[str, list[np.ndarray]], *, study, series, frame, patient_id="PAT-001",
             reference_series=True) -> Path:
    """A minimal RTSTRUCT with closed planar contours given in patient mm."""
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = RTSTRUCT_SOP_CLASS
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_SOP_CLASS, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "RTSTRUCT", patient_id, study, generate_uid()
    referenced = pydicom.Dataset()
    referenced.FrameOfReferenceUID = frame
    if reference_series:
        study_item, series_item = pydicom.Dataset(), pydicom.Dataset()
        series_item.SeriesInstanceUID = series
        study_item.RTReferencedSeriesSequence = [series_item]
        referenced.RTReferencedStudySequence = [study_item]
    ds.ReferencedFrameOfReferenceSequence = [referenced]
    ds.StructureSetROISequence, ds.ROIContourSequence = [], []
    for number, (name, contours) in enumerate(rois.items(), start=1):
        roi = pydicom.Dataset()
        roi.ROINumber, roi.ROIName, roi.ReferencedFrameOfReferenceUID = number, name, frame
        ds.StructureSetROISequence.append(roi)
        item = pydicom.Dataset()
        item.ReferencedROINumber = number
        item.ContourSequence = []
        for points in contours:
            contour = pydicom.Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [f"{v:.6f}" for v in np.asarray(points).ravel()]
            item.ContourSequence.append(contour)
        ds.ROIContourSequence.append(item)
    ds.save_as(path, enforce_file_format=True)
    return path


def index_polygon_to_mm(polygon_xy: np.ndarray, k: int) -> np.ndarray:
    """(x, y) index-space polygon on slice k of the small oblique CT -> patient mm."""
    polygon_xy = np.asarray(polygon_xy, dtype=np.float64)
    return (slice_position(k) + np.outer(polygon_xy[:, 0] * 0.6, ROW_COSINE)
            + np.outer(polygon_xy[:, 1] * 0.8, COLUMN_COSINE))


def test_rtstruct_holes_islands_and_oblique_geometry(small_ct, tmp_path):
    image = read_series(small_ct)
    headers = pydicom.dcmread(small_ct[0])
    outer = np.array([[0.5, 0.5], [5.5, 0.5], [5.5, 4.5], [0.5, 4.5]])  # centres 1..5 x 1..4
    hole = np.array([[1.5, 1.5], [3.5, 1.5], [3.5, 3.5], [1.5, 3.5]])  # centres 2..3 x 2..3
    island = np.array([[-0.4, 4.6], [0.4, 4.6], [0.4, 5.4], [-0.4, 5.4]])  # the single centre (0, 5)
    triangle = np.array([[0.2, 0.2], [6.8, 0.2], [0.2, 5.8]])
    path = rtstruct(tmp_path / "rs", {
        "GTV": [index_polygon_to_mm(outer, 1), index_polygon_to_mm(hole, 1), index_polygon_to_mm(island, 1),
                index_polygon_to_mm(triangle, 3)],
        "Other": [index_polygon_to_mm(outer, 0)],
    }, study=headers.StudyInstanceUID, series=headers.SeriesInstanceUID, frame=headers.FrameOfReferenceUID)
    assert roi_names(path) == ["GTV", "Other"]
    mask = rasterise(path, "GTV", image)
    assert mask.GetPixelID() == sitk.sitkUInt8
    assert mask.GetOrigin() == image.GetOrigin() and mask.GetDirection() == image.GetDirection()
    got = sitk.GetArrayFromImage(mask)
    expected = np.zeros((5, 6, 7), dtype=np.uint8)
    expected[1, 1:5, 1:6] = 1
    expected[1, 2:4, 2:4] = 0
    expected[1, 5, 0] = 1
    rows, cols = np.mgrid[0:6, 0:7]
    expected[3] = (cols + rows * 6.6 / 5.6 < 6.8 + 0.2 * 6.6 / 5.6) & (cols > 0.2) & (rows > 0.2)  # triangle
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(RtstructError, match="no ROI named 'gtv'"):
        rasterise(path, "gtv", image)


def test_rtstruct_contour_between_slices_is_refused(small_ct, tmp_path):
    image = read_series(small_ct)
    square = index_polygon_to_mm(np.array([[1, 1], [4, 1], [4, 4], [1, 4]]), 2)
    square += 0.4 * SLICE_GAP * np.cross(ROW_COSINE, COLUMN_COSINE)
    path = rtstruct(tmp_path / "rs", {"GTV": [square]}, study="1.2", series="1.3", frame="1.4")
    with pytest.raises(RtstructError, match="between image slices"):
        rasterise(path, "GTV", image)


def test_even_odd_fill_matches_point_in_polygon_reference():
    """Scanline fill vs matplotlib's point-in-polygon test on random (self-intersecting) polygons."""
    rng = np.random.default_rng(20240102)
    rows, cols = np.mgrid[0:24, 0:20]
    centres = np.column_stack([cols.ravel(), rows.ravel()])
    for _ in range(200):
        polygons = [rng.uniform(-3, 25, size=(rng.integers(3, 12), 2)) for _ in range(rng.integers(1, 4))]
        expected = np.zeros(rows.shape, dtype=bool)
        for polygon in polygons:  # even-odd over several contours = XOR of their insides
            expected ^= PolygonPath(polygon).contains_points(centres).reshape(rows.shape)
        np.testing.assert_array_equal(fill_slice(polygons, rows.shape).astype(bool), expected)


def test_rtstruct_gtv1_matches_ibsi_nifti_mask():
    files = sorted((PHANTOM_DICOM / "image").glob("*.dcm"))
    if not files:
        pytest.skip("IBSI CT phantom DICOM absent")
    image = read_series(files)
    rs = PHANTOM_DICOM / "mask" / "DCM_RS_00060.dcm"
    assert roi_names(rs) == ["GTV-1"]
    got = sitk.GetArrayFromImage(rasterise(rs, "GTV-1", image)).astype(bool)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(PHANTOM_NIFTI / "mask.nii.gz"))).astype(bool)
    dice = 2.0 * np.count_nonzero(got & expected) / (np.count_nonzero(got) + np.count_nonzero(expected))
    assert np.count_nonzero(expected) == 125_256
    assert np.count_nonzero(got) == np.count_nonzero(expected)
    assert dice == 1.0


# ---------------------------------------------------------------------------------------------------- SEG


def write_seg(small_ct, path: Path, masks: dict[str, np.ndarray], fractional: bool = False) -> Path:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = sorted((pydicom.dcmread(p) for p in small_ct), key=lambda ds: int(ds.InstanceNumber), reverse=True)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=label,
            segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, label in enumerate(masks, start=1)
    ]
    stacked = np.stack(list(masks.values()), axis=-1)  # (frames, rows, columns, segments)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=stacked.astype(np.float32) if fractional else stacked.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL if fractional
        else hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(), series_number=90,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="radflow-test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0")
    seg.save_as(path)
    return path


def test_seg_binary_round_trip(small_ct, tmp_path):
    image = read_series(small_ct)
    rng = np.random.default_rng(7)
    tumour = (rng.random((5, 6, 7)) < 0.3).astype(np.uint8)
    tumour[[0, 4]] = 0  # empty frames: highdicom omits them
    node = np.zeros((5, 6, 7), dtype=np.uint8)
    node[2, 1:3, 4:6] = 1
    path = write_seg(small_ct, tmp_path / "seg.dcm", {"tumour": tumour, "node": node})
    assert segment_labels(path) == ["tumour", "node"]
    for label, expected in (("tumour", tumour), ("node", node)):
        mask = read_segment(path, label, image)
        assert mask.GetPixelID() == sitk.sitkUInt8 and mask.GetOrigin() == image.GetOrigin()
        np.testing.assert_array_equal(sitk.GetArrayFromImage(mask), expected)
    with pytest.raises(SegError, match="no segment labelled"):
        read_segment(path, "liver", image)


def test_seg_fractional_thresholded_at_half(small_ct, tmp_path):
    image = read_series(small_ct)
    fraction = np.random.default_rng(11).random((5, 6, 7))
    path = write_seg(small_ct, tmp_path / "seg.dcm", {"tumour": fraction}, fractional=True)
    got = sitk.GetArrayFromImage(read_segment(path, "tumour", image))
    stored = np.round(fraction * 255)  # highdicom quantises to 0..MaximumFractionalValue (255)
    np.testing.assert_array_equal(got, (stored >= 127.5).astype(np.uint8))


def test_seg_without_plane_positions_is_placed_by_source_images(small_ct, tmp_path):
    image = read_series(small_ct)
    tumour = np.zeros((5, 6, 7), dtype=np.uint8)
    tumour[1:4, 2:5, 1:3] = 1
    path = write_seg(small_ct, tmp_path / "seg.dcm", {"tumour": tumour})
    ds = pydicom.dcmread(path)
    for frame in ds.PerFrameFunctionalGroupsSequence:
        del frame.PlanePositionSequence
    ds.save_as(path)
    with pytest.raises(SegError, match="pass the source image files"):
        read_segment(path, "tumour", image)
    got = sitk.GetArrayFromImage(read_segment(path, "tumour", image, source_files=small_ct))
    np.testing.assert_array_equal(got, tumour)


def test_seg_on_another_grid_is_refused(small_ct, tmp_path):
    image = read_series(small_ct)
    path = write_seg(small_ct, tmp_path / "seg.dcm", {"tumour": np.ones((5, 6, 7), dtype=np.uint8)})
    shifted = sitk.Image(image)
    shifted.SetOrigin(tuple(np.asarray(image.GetOrigin()) + 0.3 * ROW_COSINE))
    with pytest.raises(SegError, match="voxel grid"):
        read_segment(path, "tumour", shifted)


# ---------------------------------------------------------------------------------------------------- discovery


def test_scan_groups_series_links_masks_and_records_problems(tmp_path):
    root = tmp_path / "export"
    study, frame = generate_uid(), generate_uid()
    ct = write_ct(root / "PAT-001" / "x" / "y", stored_values(), study=study, frame=frame, series=generate_uid())
    pet = write_ct(root / "PAT-001" / "z", stored_values((3, 6, 7)), study=study, frame=generate_uid(),
                   series=generate_uid())
    ct_header = pydicom.dcmread(ct[0])
    rtstruct(root / "rs_by_series", {"GTV": [index_polygon_to_mm(np.array([[1, 1], [3, 1], [3, 3]]), 1)]},
             study=study, series=ct_header.SeriesInstanceUID, frame=frame)
    rtstruct(root / "rs_by_frame", {"GTV": [index_polygon_to_mm(np.array([[1, 1], [3, 1], [3, 3]]), 1)]},
             study=study, series="9.9.9", frame=frame, reference_series=False)
    write_seg(ct, root / "seg.dcm", {"lesion": np.ones((5, 6, 7), dtype=np.uint8)})
    (root / "notes.txt").write_text("not dicom")
    (root / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    corrupt = root / "corrupt.dcm"
    corrupt.write_bytes(ct[0].read_bytes()[:132] + b"\x02\x00\x10\x00UI\xff\x7f" + b"x" * 20)

    inventory = scan(root)
    series = {s.n_files: s for s in inventory.series}
    assert sorted(series) == [3, 5]
    assert series[5].modality == "CT" and series[5].patient_id == "PAT-001" and series[5].study_uid == study
    assert series[5].frame_of_reference_uid == frame and series[5].series_description == "thorax"
    assert series[5].series_datetime == "2024-01-02T10:20:30"
    assert series[5].acquisition_datetime == "2024-01-02T10:21:01"  # earliest acquisition over the files
    assert sorted(series[5].files) == sorted(ct)
    masks = {m.path.name: m for m in inventory.masks}
    assert masks["rs_by_series"].kind == "RTSTRUCT" and masks["rs_by_series"].labels == ("GTV",)
    assert (masks["rs_by_series"].linked_series, masks["rs_by_series"].link_method) == (
        series[5].key, "referenced_series")
    assert (masks["rs_by_frame"].linked_series, masks["rs_by_frame"].link_method) == (
        series[5].key, "frame_of_reference")
    assert masks["seg.dcm"].kind == "SEG" and masks["seg.dcm"].labels == ("lesion",)
    assert masks["seg.dcm"].link_method == "referenced_series" and masks["seg.dcm"].linked_series == series[5].key
    assert inventory.masks_for(series[3]) == []
    assert [f.path.name for f in inventory.unreadable] == ["corrupt.dcm"]
    assert {f.path.name for f in inventory.skipped} == {"notes.txt", "DICOMDIR"}
    assert str(pet[0]) not in {str(f.path) for f in inventory.unreadable}


def test_reading_never_logs_header_values(tmp_path, caplog, recwarn):
    """pydicom logs invalid values verbatim on reading ("Invalid value for VR UI: '...'"); a non-conformant UID
    (leading zero, common in old exports) is an identifier and must stay out of the logs."""
    bad_uid = "1.2.826.0.1.0456789.77"
    ds = ct_slice(stored_values()[0], slice_position(0), study=generate_uid(), series=generate_uid(),
                  frame=generate_uid(), instance=1)
    with pytest.warns(UserWarning):
        ds.SeriesInstanceUID = bad_uid
    ds.save_as(tmp_path / "slice", enforce_file_format=True)
    recwarn.clear()
    caplog.clear()
    with caplog.at_level("DEBUG"):
        inventory = scan(tmp_path)
        read_series([tmp_path / "slice"])
    assert inventory.series[0].series_uid == bad_uid
    assert "0456789" not in caplog.text
    assert not [w for w in recwarn if "0456789" in str(w.message)]


def test_iso_datetime():
    assert iso_datetime("20240102", "1015") == "2024-01-02T10:15"
    assert iso_datetime("20240102", "101530.123") == "2024-01-02T10:15:30"
    assert iso_datetime("20240102101530") == "2024-01-02T10:15:30"
    assert iso_datetime("20240102") == "2024-01-02"
    assert iso_datetime("", "1015") == ""


# ---------------------------------------------------------------------------------------------------- deid

KEY = b"0123456789abcdef-test-key"


def test_pseudonym_is_keyed_hmac_and_stable():
    expected = hmac.new(KEY, b"PAT-001", hashlib.sha256).hexdigest()[:16]
    assert deid.pseudonym("PAT-001", KEY) == expected
    assert deid.pseudonym("PAT-001", KEY, prefix="RF-") == "RF-" + expected
    assert deid.pseudonym("PAT-001", KEY) != deid.pseudonym("PAT-002", KEY)
    assert deid.pseudonym("PAT-001", KEY) != deid.pseudonym("PAT-001", KEY + b"x")
    assert len(deid.pseudonym("PAT-001", KEY, length=24)) == 24


def test_pseudo_uid_is_a_valid_stable_2_25_uid():
    uids = [deid.pseudo_uid(f"1.2.840.1234.{n}", KEY) for n in range(500)]
    assert len(set(uids)) == 500
    assert deid.pseudo_uid("1.2.840.1234.7", KEY) == uids[7]
    assert deid.pseudo_uid("1.2.840.1234.7", KEY + b"x") != uids[7]
    for uid in uids:
        assert len(uid) <= 64 and re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", uid)
        value = uuid.UUID(int=int(uid[5:]))
        assert value.version == 8 and value.variant == uuid.RFC_4122


def test_load_key_sources_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("RADFLOW_PSEUDONYM_KEY", raising=False)
    with pytest.raises(deid.PseudonymKeyError, match="no pseudonymisation key"):
        deid.load_key()
    assert deid.load_key(allow_demo_key=True) == deid.DEMO_KEY
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "an environment key of some length")
    assert deid.load_key() == b"an environment key of some length"
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    assert deid.load_key(key_file=key_file) == KEY  # an explicit file wins over the environment
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", "short")
    with pytest.raises(deid.PseudonymKeyError, match="shorter than") as error:
        deid.load_key()
    assert "short" not in str(error.value).replace("shorter", "")  # the key itself is never echoed
    with pytest.raises(deid.PseudonymKeyError, match="does not exist"):
        deid.load_key(key_file=tmp_path / "missing")


def test_basic_profile_tags_are_dicom_keywords():
    from pydicom.datadict import tag_for_keyword

    unknown = [k for k in deid.BASIC_PROFILE_ACTIONS if tag_for_keyword(k) is None]
    assert unknown == []
    assert {"PatientName", "PatientID", "PatientBirthDate"} <= set(deid.EMPTIED_TAGS)
    assert {"OtherPatientIDs", "InstitutionAddress", "PatientAge"} <= set(deid.REMOVED_TAGS)
    assert {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"} <= set(deid.UID_TAGS)


# --------------------------------------------------------------------------------- files without the preamble

def _without_preamble(ds: pydicom.Dataset, path: Path) -> Path:
    """The data set alone, as an ACR-NEMA-style export writes it: no preamble, no file meta, implicit VR LE."""
    raw = ds.copy()
    del raw.file_meta
    raw.preamble = None
    pydicom.dcmwrite(path, raw, enforce_file_format=False, implicit_vr=True, little_endian=True)
    return path


def test_files_without_the_preamble_are_read_by_extract_and_by_the_pipeline(tmp_path):
    """Discovery always took such files for DICOM; ingest then failed them (FILE_UNREADABLE) and `radflow extract`
    found 'no DICOM image files'. Now both read them, with the values the same series gives as Part 10 files."""
    import radflow
    from radflow.dicom import files, write
    from radflow.manifest import Manifest
    from radflow.pipeline.discover import discover
    from radflow.pipeline.ingest import ingest_batch

    attrs = {"PatientID": "RAW-1", "StudyInstanceUID": "1.2.9", "SeriesInstanceUID": "1.2.9.1",
             "FrameOfReferenceUID": "1.2.9.2"}
    rng = np.random.default_rng(4)
    cts = [write.ct_image(attrs, sop_instance_uid=f"1.2.9.1.{k + 1}", instance_number=k + 1,
                          position_xyz=(0.0, 0.0, 2.0 * k), pixel_spacing_rc=(1.0, 1.0),
                          stored=rng.normal(1000, 40, (24, 24)).astype(np.int16)) for k in range(10)]
    mask = np.zeros((10, 24, 24), bool)
    mask[2:8, 6:18, 5:17] = True
    structure = write.rtstruct(cts, [write.Roi(1, "GTV", mask)], sop_instance_uid="1.2.9.9",
                               series_instance_uid="1.2.9.8", series_number=9, date="20240101", time="101010",
                               manufacturer="X")
    for folder, save in (("part10", lambda ds, p: write.save(ds, p)), ("raw", _without_preamble)):
        (tmp_path / folder / "ct").mkdir(parents=True)
        for k, ds in enumerate(cts):
            save(ds, tmp_path / folder / "ct" / f"IM{k:03d}")
        save(structure, tmp_path / folder / "rt")
    first = tmp_path / "raw" / "ct" / "IM000"
    assert not files.has_preamble(first) and files.is_dicom(first)
    (tmp_path / "notes.bin").write_bytes(b"\x00\x01\x02\x03 not a data set")
    assert not files.is_dicom(tmp_path / "notes.bin")

    part10 = radflow.extract(tmp_path / "part10" / "ct", tmp_path / "part10" / "rt", roi="GTV")
    raw = radflow.extract(tmp_path / "raw" / "ct", tmp_path / "raw" / "rt", roi="GTV")
    assert raw["value"].equals(part10["value"]) and len(raw) > 400

    discover(tmp_path / "raw", tmp_path / "inventory.json", 10, [{"name": "GTV", "pattern": "^gtv"}], deid.DEMO_KEY)
    ingest_batch(tmp_path / "inventory.json", "b0000", tmp_path / "ingest.json", tmp_path / "volumes")
    (scan_entry,) = Manifest.read(tmp_path / "ingest.json").scans
    assert scan_entry.status == "ok", scan_entry.error_message
    assert scan_entry.meta["roi_voxels"] == {"GTV": int(mask.sum())}
