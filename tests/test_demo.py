"""The synthetic DICOM demo cohort: readable, geometrically right, masks linked and exact, deterministic, and the
outcome really follows the lesion heterogeneity."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RTStructureSetStorage, SegmentationStorage
from scipy import ndimage
from skimage.draw import polygon2mask

from radflow.demo import (
    CLINICAL_COLUMNS, heterogeneity_z, phi_values, render_scan, sample_patient, scan_paths, write_cohort,
)

SEED, N = 3, 4  # patients 0..3: centres A, B, A, B; masks RTSTRUCT, RTSTRUCT, SEG, SEG


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return write_cohort(tmp_path_factory.mktemp("cohort"), n_patients=N, seed=SEED)


@pytest.fixture(scope="module")
def patients():
    return [sample_patient(SEED, i) for i in range(N)]


def _dicom_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "dicom").rglob("*") if p.is_file() and p.name != "README.TXT")


def _ct_slices(folder: Path) -> list[pydicom.Dataset]:
    """The CT datasets of a series folder in increasing z, as the masks index them."""
    slices = [pydicom.dcmread(f) for f in folder.iterdir()]
    return sorted(slices, key=lambda ds: float(ds.ImagePositionPatient[2]))


def _only_file(folder: Path) -> pydicom.Dataset:
    (path,) = list(folder.iterdir())
    return pydicom.dcmread(path)


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    pos, neg = score[label == 1], score[label == 0]
    return float(((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size))


def test_every_file_is_a_part10_dicom_file(cohort, patients):
    files = _dicom_files(cohort)
    assert len(files) == N * 2 * (24 + 1)  # two CT series of 24 slices and two masks per patient
    classes = []
    for path in files:
        assert path.read_bytes()[128:132] == b"DICM"
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        classes.append(ds.SOPClassUID)
    assert classes.count(CTImageStorage) == N * 48
    assert classes.count(RTStructureSetStorage) == 4 and classes.count(SegmentationStorage) == 4
    assert any(p.suffix == "" for p in files) and any(p.suffix == ".dcm" for p in files)
    assert (cohort / "dicom" / "README.TXT").is_file()


@pytest.mark.parametrize("index", range(N))
def test_ct_series_reads_back_in_simpleitk_with_right_geometry_and_values(cohort, patients, index):
    patient = patients[index]
    for scan in (0, 1):
        folder, _ = scan_paths(cohort, patient, scan)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
        image = reader.Execute()
        dz, dy, dx = patient.grid.spacing
        assert image.GetSize() == (64, 64, 24)
        np.testing.assert_allclose(image.GetSpacing(), (dx, dy, dz), atol=1e-6)
        np.testing.assert_allclose(image.GetOrigin(), patient.grid.origin_xyz, atol=1e-4)
        np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel())
        stored, _ = render_scan(patient, scan)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(image), stored.astype(np.int32) - 1024)


def test_ct_tags_distinguish_centres_and_mark_the_retest(cohort, patients):
    headers = {}
    for patient in patients:
        for scan in (0, 1):
            folder, _ = scan_paths(cohort, patient, scan)
            headers[patient.index, scan] = ds = pydicom.dcmread(next(folder.iterdir()), stop_before_pixels=True)
            assert (ds.Modality, ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == ("CT", 16, 16, 1)
            assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
            assert ds.PatientID == patient.patient_id and ds.ConvolutionKernel == patient.centre.kernel
            assert ds.SliceThickness == patient.grid.spacing[0]
        test, retest = headers[patient.index, 0], headers[patient.index, 1]
        assert test.StudyInstanceUID == retest.StudyInstanceUID
        assert test.SeriesInstanceUID != retest.SeriesInstanceUID
        assert test.FrameOfReferenceUID != retest.FrameOfReferenceUID
        assert retest.SeriesDescription.endswith("retest") and not test.SeriesDescription.endswith("retest")
        assert retest.SeriesTime > test.SeriesTime and retest.AcquisitionTime > test.AcquisitionTime
        assert retest.SeriesNumber > test.SeriesNumber
    a, b = headers[0, 0], headers[1, 0]
    assert a.Manufacturer != b.Manufacturer and a.InstitutionName != b.InstitutionName
    assert {a.ConvolutionKernel, b.ConvolutionKernel} == {"B30f", "STANDARD"}


def _rasterise(rtstruct: pydicom.Dataset, roi_number: int, cts: list[pydicom.Dataset]) -> np.ndarray:
    """Point-in-polygon fill of each closed planar contour (XOR within a slice), back in the CT voxel grid."""
    by_uid = {ct.SOPInstanceUID: k for k, ct in enumerate(cts)}
    mask = np.zeros((len(cts), cts[0].Rows, cts[0].Columns), dtype=bool)
    (item,) = [i for i in rtstruct.ROIContourSequence if i.ReferencedROINumber == roi_number]
    for contour in item.ContourSequence:
        assert contour.ContourGeometricType == "CLOSED_PLANAR"
        k = by_uid[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
        points = np.array(contour.ContourData, dtype=float).reshape(-1, 3)
        assert len(points) == contour.NumberOfContourPoints
        x0, y0, z0 = (float(v) for v in cts[k].ImagePositionPatient)
        dy, dx = (float(v) for v in cts[k].PixelSpacing)
        np.testing.assert_allclose(points[:, 2], z0, atol=1e-3)
        rows_cols = np.column_stack([(points[:, 1] - y0) / dy, (points[:, 0] - x0) / dx])
        mask[k] ^= polygon2mask(mask.shape[1:], rows_cols)
    return mask


@pytest.mark.parametrize("index", [0, 1])
def test_rtstruct_references_the_ct_and_its_contours_give_the_mask_back(cohort, patients, index):
    patient = patients[index]
    assert patient.mask_format == "RTSTRUCT"
    for scan in (0, 1):
        ct_folder, mask_folder = scan_paths(cohort, patient, scan)
        cts = _ct_slices(ct_folder)
        rt = _only_file(mask_folder)
        assert rt.Modality == "RTSTRUCT"
        assert (rt.PatientID, rt.StudyInstanceUID) == (cts[0].PatientID, cts[0].StudyInstanceUID)
        frame = rt.ReferencedFrameOfReferenceSequence[0]
        assert frame.FrameOfReferenceUID == cts[0].FrameOfReferenceUID
        series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
        assert series.SeriesInstanceUID == cts[0].SeriesInstanceUID
        assert {i.ReferencedSOPInstanceUID for i in series.ContourImageSequence} == {ct.SOPInstanceUID for ct in cts}
        (roi,) = rt.StructureSetROISequence
        assert roi.ROIName == patient.roi_name and roi.ReferencedFrameOfReferenceUID == cts[0].FrameOfReferenceUID
        assert rt.RTROIObservationsSequence[0].ReferencedROINumber == roi.ROINumber
        _, mask = render_scan(patient, scan)
        np.testing.assert_array_equal(_rasterise(rt, roi.ROINumber, cts), mask)


@pytest.mark.parametrize("index", [2, 3])
def test_seg_decodes_with_highdicom_to_the_mask_written(cohort, patients, index):
    patient = patients[index]
    assert patient.mask_format == "SEG"
    for scan in (0, 1):
        ct_folder, mask_folder = scan_paths(cohort, patient, scan)
        cts = _ct_slices(ct_folder)
        (path,) = list(mask_folder.iterdir())
        seg = hd.seg.segread(path)
        assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == cts[0].SeriesInstanceUID
        assert seg.FrameOfReferenceUID == cts[0].FrameOfReferenceUID
        assert seg.SegmentSequence[0].SegmentLabel == patient.roi_name
        pixels = seg.get_pixels_by_source_instance(
            [ct.SOPInstanceUID for ct in cts], segment_numbers=[1], assert_missing_frames_are_empty=True)
        _, mask = render_scan(patient, scan)
        np.testing.assert_array_equal(pixels[..., 0].astype(bool), mask)


def _file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(cohort, tmp_path):
    again = _file_hashes(write_cohort(tmp_path / "again", n_patients=N, seed=SEED))
    assert again == _file_hashes(cohort)
    other = sample_patient(SEED + 1, 0)
    assert other.patient_id != sample_patient(SEED, 0).patient_id


def test_clinical_csv_lists_the_dicom_patients(cohort, patients):
    with (cohort / "clinical.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CLINICAL_COLUMNS
    dicom_ids = {pydicom.dcmread(p, stop_before_pixels=True).PatientID for p in _dicom_files(cohort)}
    assert {r["patient_id"] for r in rows} == dicom_ids and len(rows) == N
    for row, patient in zip(rows, patients):
        assert row["patient_id"] == patient.patient_id and row["centre"] == patient.centre.code
        assert row["outcome"] in {"0", "1"} and row["event"] in {"0", "1"} and row["sex"] in {"F", "M"}
        assert float(row["survival_time"]) > 0 and 18 < int(row["age"]) < 100


def test_outcome_and_survival_follow_heterogeneity():
    cohort = [sample_patient(11, i) for i in range(400)]
    z = np.array([heterogeneity_z(p.lesion.heterogeneity_hu) for p in cohort])
    outcome = np.array([p.outcome for p in cohort])
    assert 0.8 < _auc(z, outcome) < 0.97  # strong but not deterministic
    assert 0.3 < outcome.mean() < 0.7
    time = np.array([p.survival_months for p in cohort])
    event = np.array([p.event for p in cohort])
    assert 0.4 < event.mean() < 0.8
    # Harrell's C of z as a risk score: higher heterogeneity, earlier events
    comparable = event[:, None].astype(bool) & (time[:, None] < time[None, :])
    concordant = (z[:, None] > z[None, :]) & comparable
    assert concordant.sum() / comparable.sum() > 0.62


def test_images_carry_the_heterogeneity_and_the_per_scan_noise():
    """Lesion texture (smoothed, away from the edge) tracks heterogeneity; lung std tracks each scan's noise level."""
    texture, heterogeneity = [], []
    for i in range(12):
        patient = sample_patient(7, i)
        for scan in (0, 1):
            stored, mask = render_scan(patient, scan)
            hu = stored.astype(float) - 1024
            lung = ndimage.binary_erosion(hu < -500, iterations=3) & ~ndimage.binary_dilation(mask, iterations=4)
            noise = hu[lung].std()
            assert noise == pytest.approx(patient.noise_sd_hu[scan], rel=0.1)
            if scan == 0:
                core = ndimage.binary_erosion(mask, np.ones((1, 3, 3)))
                texture.append(ndimage.uniform_filter(hu, (1, 3, 3))[core].std())
        heterogeneity.append(patient.lesion.heterogeneity_hu)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(texture), rank(heterogeneity))[0, 1] > 0.7


def test_phi_manifest_covers_every_identifying_header_value(cohort):
    identifying = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyID",
                   "ReferringPhysicianName", "InstitutionName", "StationName")
    known, known_uids = phi_values(cohort), phi_values(cohort, include_uids=True)
    seen = set()
    for path in _dicom_files(cohort):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        seen |= {str(ds[k].value) for k in identifying if k in ds}
        assert {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID} <= known_uids
    assert seen <= known and len(seen) >= 4 * N
