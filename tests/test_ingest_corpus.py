"""A broken archive through the real workflow: one `snakemake` run over a demo cohort corrupted in 25+ ways.

The corpus is the demo cohort (radflow.demo.write_cohort) with one defect per scan, made with pydicom, plus a
scout-only patient and a NIfTI/NRRD pair from an input manifest. Every broken scan must end with its expected QC
code, every healthy scan in the same run must get features, snakemake must exit 0, nothing identifying may reach
results/, and fixing a broken input must make the next run pick the case up.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import yaml
from pydicom.dataelem import DataElement
from pydicom.uid import JPEG2000Lossless, generate_uid

from conftest import REPO
from radflow.demo import phi_values, render_scan, sample_patient, scan_paths, write_cohort

pytestmark = pytest.mark.slow
SEED, N_PATIENTS = 11, 13
TEST, RETEST = 0, 1
SCOUT_ONLY_ID = "SCOUT-ONLY-0001"
NIFTI_ID = "NIFTI-0001"
NIFTI_MULTI_ID = "NIFTI-0002"  # the two-label mask listed without a label
NIFTI_FLIPPED_ID = "NIFTI-0003"  # the same mask saved flipped and with its axes permuted
NIFTI_TRUNCATED_ID = "NIFTI-0004"  # an uncompressed NIfTI cut short (ITK alone would zero-fill it)
NIFTI_NAN_ID = "NIFTI-0005"  # a float image with NaN voxels inside the lesion
NIFTI_IDS = (NIFTI_ID, NIFTI_MULTI_ID, NIFTI_FLIPPED_ID, NIFTI_TRUNCATED_ID, NIFTI_NAN_ID)

# (patient, scan) -> (code expected on that scan, severity); "pass" scans must get features.
EXPECTED = {
    (0, "test"): ("MASK_EMPTY", "fail"),
    (0, "retest"): ("SLICES_MISSING", "fail"),
    (1, "test"): ("SERIES_READ", "pass"),  # ROI renamed "Tumour", found through the centre-B alias
    (1, "retest"): ("ROI_NOT_FOUND", "fail"),
    (2, "test"): ("SERIES_READ", "pass"),  # JPEG 2000 compressed
    (2, "retest"): ("MASK_GEOMETRY", "fail"),  # SEG on a downsampled grid (wrong dimensions)
    (3, "test"): ("SERIES_READ", "pass"),  # enhanced (legacy-converted) multi-frame CT
    (3, "retest"): ("PIXEL_DATA_UNREADABLE", "fail"),
    (4, "test"): ("MASK_UNLINKED", "fail"),  # RTSTRUCT references another patient's series
    (4, "retest"): ("ROI_TOO_SMALL", "fail"),
    (5, "test"): ("ORIENTATION_NON_AXIAL", "warn"),  # in-plane rotated grid: features still computed
    (5, "retest"): ("MASK_GEOMETRY", "fail"),  # contours between the slice planes
    (6, "test"): ("SLICE_DUPLICATE", "fail"),
    (6, "retest"): ("SLICE_SPACING_NONUNIFORM", "fail"),
    (7, "test"): ("GANTRY_TILT", "fail"),
    (7, "retest"): ("MIXED_GEOMETRY", "fail"),
    (8, "test"): ("TAGS_MISSING", "fail"),
    (8, "retest"): ("INTENSITY_IMPLAUSIBLE", "fail"),
    (9, "test"): ("FILE_TRUNCATED", "fail"),
    (9, "retest"): ("MASK_AT_BORDER", "warn"),
    (10, "test"): ("DUPLICATE_INSTANCE", "warn"),  # + a localizer and a derived series in the same folder
    (10, ""): ("RETEST_MISSING", "warn"),
    (11, "test"): ("SERIES_READ", "pass"),  # + non-DICOM files, a DICOMDIR; retest interleaved in this folder
    (11, "retest"): ("SERIES_READ", "pass"),
    (12, "test"): ("MASK_OUTSIDE_IMAGE", "fail"),
    (12, "retest"): ("SERIES_READ", "pass"),  # with GE's padding outside the reconstruction field
    (SCOUT_ONLY_ID, "test"): ("NO_IMAGE_SERIES", "fail"),
    (NIFTI_ID, "test"): ("SERIES_READ", "pass"),
    (NIFTI_MULTI_ID, "test"): ("ROI_NOT_FOUND", "fail"),
    (NIFTI_FLIPPED_ID, "test"): ("SERIES_READ", "pass"),
    (NIFTI_TRUNCATED_ID, "test"): ("IMAGE_UNREADABLE", "fail"),
    (NIFTI_NAN_ID, "test"): ("ROI_NON_FINITE", "warn"),  # the NaN voxels leave the intensity mask
}


# ------------------------------------------------------------------------------------------ corruptions

def ct_folder(root: Path, p, scan: int) -> Path:
    return scan_paths(root, p, scan)[0]


def mask_file(root: Path, p, scan: int) -> Path:
    (path,) = list(scan_paths(root, p, scan)[1].iterdir())
    return path


def slices(root: Path, p, scan: int) -> list[tuple[Path, pydicom.Dataset]]:
    """(path, dataset) of a CT series, ordered by z."""
    items = [(f, pydicom.dcmread(f)) for f in ct_folder(root, p, scan).iterdir()]
    return sorted(items, key=lambda item: float(item[1].ImagePositionPatient[2]))


def rewrite(items, change) -> None:
    for path, ds in items:
        change(ds)
        ds.save_as(path)


def remove_slice(root, p, scan, k=12) -> tuple[Path, bytes]:
    path, _ = slices(root, p, scan)[k]
    data = path.read_bytes()
    path.unlink()
    return path, data


def duplicate_position(root, p, scan, k=10) -> None:
    path, ds = slices(root, p, scan)[k]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path.with_name(path.name + "_copy"))


def shift_upper_slices(root, p, scan, dz=0.6) -> None:
    items = slices(root, p, scan)[12:]
    rewrite(items, lambda ds: setattr(ds, "ImagePositionPatient",
                                      [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) + dz]))


def tilt(root, p, scan, shear=0.5) -> None:
    for k, (path, ds) in enumerate(slices(root, p, scan)):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k * shear, z]
        ds.save_as(path)


def mixed_pixel_spacing(root, p, scan) -> None:
    rewrite(slices(root, p, scan)[12:], lambda ds: setattr(ds, "PixelSpacing",
                                                           [float(v) * 1.1 for v in ds.PixelSpacing]))


def undecodable(root, p, scan, k=5) -> None:
    path, ds = slices(root, p, scan)[k]
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)


def drop_pixel_spacing(root, p, scan, k=7) -> None:
    path, ds = slices(root, p, scan)[k]
    del ds.PixelSpacing
    ds.save_as(path)


def wrong_slope(root, p, scan) -> None:
    rewrite(slices(root, p, scan), lambda ds: setattr(ds, "RescaleSlope", "10"))


def pad_outside_field(root, p, scan) -> None:
    """What GE CT writes outside its circular reconstruction field: stored -2000 (-3024 HU), declared by
    PixelPaddingValue; a fifth of each slice."""
    def change(ds) -> None:
        pixels = ds.pixel_array.copy()
        rows, cols = np.mgrid[:pixels.shape[0], :pixels.shape[1]]
        radius = pixels.shape[0] / 2
        pixels[(rows - radius + 0.5) ** 2 + (cols - radius + 0.5) ** 2 > radius ** 2] = -2000
        ds.PixelData = pixels.astype(np.int16).tobytes()
        ds.add(DataElement(0x00280120, "SS", -2000))  # PixelPaddingValue (US or SS: set explicitly)
    rewrite(slices(root, p, scan), change)


def truncate(root, p, scan, k=9) -> None:
    path, _ = slices(root, p, scan)[k]
    path.write_bytes(path.read_bytes()[:-3000])


def compress_j2k(root, p, scan) -> None:
    rewrite(slices(root, p, scan), lambda ds: ds.compress(JPEG2000Lossless))


def to_enhanced(root, p, scan) -> None:
    items = slices(root, p, scan)
    datasets = [ds for _, ds in items]
    multi = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=datasets[0].SeriesInstanceUID, series_number=int(datasets[0].SeriesNumber),
        sop_instance_uid=generate_uid(), instance_number=1)
    for path, _ in items:
        path.unlink()
    multi.save_as(items[0][0].with_name("ENHANCED"))


def rtstruct_edit(root, p, scan, change) -> None:
    path = mask_file(root, p, scan)
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def contours(ds) -> list:
    return list(ds.ROIContourSequence[0].ContourSequence)


def set_contour_points(contour, points: np.ndarray) -> None:
    contour.ContourData = [f"{v:.3f}" for v in points.ravel()]
    contour.NumberOfContourPoints = len(points)


def points_of(contour) -> np.ndarray:
    return np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)


def empty_roi(ds) -> None:
    ds.ROIContourSequence[0].ContourSequence = pydicom.Sequence([])


def tiny_roi(ds) -> None:
    middle = contours(ds)[len(contours(ds)) // 2]
    centre = points_of(middle).mean(axis=0)
    square = centre + np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=float) * 0.9
    set_contour_points(middle, square)
    ds.ROIContourSequence[0].ContourSequence = pydicom.Sequence([middle])


def shift_contours(dz: float):
    def change(ds) -> None:
        for contour in contours(ds):
            set_contour_points(contour, points_of(contour) + [0.0, 0.0, dz])
    return change


def border_contour(origin_xy) -> callable:
    def change(ds) -> None:
        middle = contours(ds)[len(contours(ds)) // 2]
        z = points_of(middle)[0, 2]
        x0, y0 = origin_xy
        extra = copy.deepcopy(middle)
        set_contour_points(extra, np.array([[x0 - 5, y0 + 5, z], [x0 + 4, y0 + 5, z], [x0 + 4, y0 + 12, z],
                                            [x0 - 5, y0 + 12, z]]))
        ds.ROIContourSequence[0].ContourSequence.append(extra)
    return change


def reference_other_series(other: pydicom.Dataset):
    def change(ds) -> None:
        frame = ds.ReferencedFrameOfReferenceSequence[0]
        frame.FrameOfReferenceUID = other.FrameOfReferenceUID
        frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID = other.SeriesInstanceUID
        for roi in ds.StructureSetROISequence:
            roi.ReferencedFrameOfReferenceUID = other.FrameOfReferenceUID
    return change


def rename_roi(name: str):
    def change(ds) -> None:
        ds.StructureSetROISequence[0].ROIName = name
    return change


def rotate_in_plane(root, p, scan, degrees=10.0) -> None:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    rewrite(slices(root, p, scan), lambda ds: setattr(
        ds, "ImageOrientationPatient", [f"{v:.8f}" for v in (c, s, 0.0, -s, c, 0.0)]))


def downsample_seg(path: Path) -> None:
    """A SEG exported on a 2x coarser grid than its CT (a tool that resampled it)."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array[:, ::2, ::2].astype(np.uint8)
    ds.Rows, ds.Columns = frames.shape[1:]
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    measures.PixelSpacing = [f"{float(v) * 2:.7f}" for v in measures.PixelSpacing]
    ds.PixelData = pydicom.pixels.pack_bits(frames)
    ds.save_as(path)


def add_scout_and_derived(root, p, scan) -> None:
    """A one-slice localizer and a derived copy of the series, in the same folder (same frame of reference)."""
    items = slices(root, p, scan)
    folder = ct_folder(root, p, scan)
    scout_series, derived_series = generate_uid(), generate_uid()
    path, scout = items[0]
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.SeriesInstanceUID, scout.SeriesNumber = scout_series, 1
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    scout.save_as(folder / "scout_0001")
    for k, (path, ds) in enumerate(items):
        ds = pydicom.dcmread(path)
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.SeriesInstanceUID, ds.SeriesNumber = derived_series, 99
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / f"derived_{k:04d}")


def build_corpus(root: Path) -> dict:
    """Write and corrupt the corpus; returns what the test needs to fix and check it."""
    write_cohort(root, n_patients=N_PATIENTS, seed=SEED)
    P = [sample_patient(SEED, i) for i in range(N_PATIENTS)]
    assert [p.mask_format for p in P[:4]] == ["RTSTRUCT", "RTSTRUCT", "SEG", "SEG"]
    fixes = {}
    rtstruct_edit(root, P[0], TEST, empty_roi)
    fixes["missing_slice"] = remove_slice(root, P[0], RETEST)
    rtstruct_edit(root, P[1], TEST, rename_roi("Tumour"))
    rtstruct_edit(root, P[1], RETEST, rename_roi("Heart"))
    compress_j2k(root, P[2], TEST)
    downsample_seg(mask_file(root, P[2], RETEST))
    to_enhanced(root, P[3], TEST)
    undecodable(root, P[3], RETEST)
    other = pydicom.dcmread(next(ct_folder(root, P[0], TEST).iterdir()), stop_before_pixels=True)
    rtstruct_edit(root, P[4], TEST, reference_other_series(other))
    rtstruct_edit(root, P[4], RETEST, tiny_roi)
    rotate_in_plane(root, P[5], TEST)
    rtstruct_edit(root, P[5], RETEST, shift_contours(0.5 * P[5].grid.spacing[0]))
    duplicate_position(root, P[6], TEST)
    shift_upper_slices(root, P[6], RETEST)
    tilt(root, P[7], TEST)
    mixed_pixel_spacing(root, P[7], RETEST)
    drop_pixel_spacing(root, P[8], TEST)
    wrong_slope(root, P[8], RETEST)
    truncate(root, P[9], TEST)
    first = slices(root, P[9], RETEST)[0][1]
    rtstruct_edit(root, P[9], RETEST, border_contour([float(v) for v in first.ImagePositionPatient[:2]]))
    add_scout_and_derived(root, P[10], TEST)
    copy_from, _ = slices(root, P[10], TEST)[3]
    shutil.copy(copy_from, copy_from.with_name(copy_from.name + "_again"))
    shutil.rmtree(ct_folder(root, P[10], RETEST))
    shutil.rmtree(scan_paths(root, P[10], RETEST)[1])
    test_folder = ct_folder(root, P[11], TEST)
    for path in ct_folder(root, P[11], RETEST).iterdir():
        path.rename(test_folder / f"R{path.name}")  # two series interleaved in one folder
    ct_folder(root, P[11], RETEST).rmdir()
    (test_folder / "Thumbs.db").write_bytes(b"\x00\x01not dicom at all" * 10)
    (test_folder / "notes.txt").write_text("scanner export notes\n")
    (root / "dicom" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    rtstruct_edit(root, P[12], TEST, shift_contours(30 * P[12].grid.spacing[0]))
    # a patient with nothing but a scout
    _, scout = slices(root, P[12], RETEST)[0]
    scout.PatientID = SCOUT_ONLY_ID
    scout.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    scout.StudyInstanceUID, scout.SeriesInstanceUID = generate_uid(), generate_uid()
    scout.SOPInstanceUID = scout.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    scout.save_as(root / "dicom" / "scout_only.dcm")
    pad_outside_field(root, P[12], RETEST)
    write_nifti_case(root / "nifti")
    return {"patients": P, "fixes": fixes}


def write_nifti_case(folder: Path) -> None:
    """An image (NIfTI) and a two-label mask (NRRD: 1 lesion, 2 a box of chest wall) listed in a manifest CSV."""
    folder.mkdir(parents=True)
    patient = sample_patient(SEED, 40)
    stored, lesion = render_scan(patient, 0)
    labels = lesion.astype(np.uint8)
    labels[8:16, 20:44, 56:62] = 2  # the chest wall on the +x side
    image = sitk.GetImageFromArray(stored.astype(np.float32) - 1024)
    image.SetSpacing(tuple(float(s) for s in patient.grid.spacing[::-1]))
    image.SetOrigin(patient.grid.origin_xyz)
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(folder / "image.nii.gz"))
    sitk.WriteImage(mask, str(folder / "labels.nrrd"))
    sitk.WriteImage(sitk.PermuteAxes(sitk.Flip(mask, [True, False, True]), [1, 0, 2]), str(folder / "flipped.nrrd"))
    sitk.WriteImage(image, str(folder / "truncated.nii"))
    truncated = (folder / "truncated.nii").read_bytes()
    (folder / "truncated.nii").write_bytes(truncated[:len(truncated) * 9 // 10])
    with_nan = sitk.GetArrayFromImage(image)
    lesion_voxels = np.argwhere(labels == 1)
    for z, y, x in lesion_voxels[::max(1, len(lesion_voxels) // 4)][:4]:
        with_nan[z, y, x] = np.nan
    nan_image = sitk.GetImageFromArray(with_nan)
    nan_image.CopyInformation(image)
    sitk.WriteImage(nan_image, str(folder / "with_nan.nii.gz"))
    (folder / "manifest.csv").write_text(
        "patient_id,scan,image,mask,roi,label\n"
        f"{NIFTI_ID},test,image.nii.gz,labels.nrrd,GTV,1\n"
        f"{NIFTI_ID},test,image.nii.gz,labels.nrrd,WALL,2\n"
        f"{NIFTI_MULTI_ID},test,image.nii.gz,labels.nrrd,GTV,\n"
        f"{NIFTI_FLIPPED_ID},test,image.nii.gz,flipped.nrrd,GTV,1\n"
        f"{NIFTI_TRUNCATED_ID},test,truncated.nii,labels.nrrd,GTV,1\n"
        f"{NIFTI_NAN_ID},test,with_nan.nii.gz,labels.nrrd,GTV,1\n")


# ------------------------------------------------------------------------------------------ the run

def snakemake(workdir: Path, configfile: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["RADFLOW_PSEUDONYM_KEY"] = "corpus-test-key: a long enough secret"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--configfile", str(configfile)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("corpus_run")
    source = workdir / "archive"
    built = build_corpus(source)
    settings = yaml.safe_load((REPO / "config" / "settings" / "ct_iso1mm_fbs25.yaml").read_text())
    settings.update(name="corpus_quick", families=["statistics", "glcm"])
    (workdir / "quick.yaml").write_text(yaml.safe_dump(settings))
    config = {
        "input_dir": str(source / "dicom"), "input_manifest": str(source / "nifti" / "manifest.csv"),
        "clinical": str(source / "clinical.csv"), "batch_size": 5, "features": [str(workdir / "quick.yaml")],
        "roi_aliases": {"attribute": "Manufacturer", "centres": {"GE MEDICAL SYSTEMS": {"GTV": ["^tumou?r$"]}}},
    }
    configfile = workdir / "corpus.yaml"
    configfile.write_text(yaml.safe_dump(config))
    snakemake(workdir, configfile)
    return workdir, source, built, configfile


def case_ids(workdir: Path, source: Path, built: dict) -> dict:
    """Patient index (or special id) -> case_id, from the run's own clinical table and special cases."""
    from radflow.pipeline.discover import case_id_of

    key = b"corpus-test-key: a long enough secret"
    ids = {i: case_id_of(p.patient_id, key) for i, p in enumerate(built["patients"])}
    ids[SCOUT_ONLY_ID] = case_id_of(SCOUT_ONLY_ID, key)
    for special in NIFTI_IDS:
        ids[special] = case_id_of(special, key)
    return ids


def query(workdir: Path, sql: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(workdir / "results" / "radflow.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_every_broken_scan_gets_its_code_and_every_healthy_scan_features(corpus_run):
    workdir, source, built, _ = corpus_run
    ids = case_ids(workdir, source, built)
    rows = query(workdir, "SELECT case_id, scan, check_code, severity FROM qc")
    found = {(case, scan, code): severity for case, scan, code, severity in rows}
    missing = {key: want for key, want in EXPECTED.items()
               if found.get((ids[key[0]], key[1], want[0])) != want[1]}
    assert not missing, missing
    assert len({code for code, _ in EXPECTED.values()}) >= 20
    statuses = dict(((c, s), st) for c, s, st in query(workdir, "SELECT case_id, scan, status FROM scans"))
    with_features = {(c, s) for c, s in query(workdir, "SELECT DISTINCT case_id, scan FROM features")}
    for (who, scan), (_, severity) in EXPECTED.items():
        if not scan:
            continue
        key = (ids[who], scan)
        if severity == "fail":
            assert statuses[key] == "fail" and key not in with_features, (who, scan)
        else:
            assert statuses[key] == severity and key in with_features, (who, scan, statuses.get(key))
    # the interleaved folder gave two scans, the derived series and the scout were not taken as scans
    assert query(workdir, "SELECT n_scans FROM cases WHERE case_id = ?", [ids[11]]) == [(2,)]
    assert query(workdir, "SELECT n_scans FROM cases WHERE case_id = ?", [ids[10]]) == [(1,)]
    # both labels of the multi-label NRRD became ROIs with features
    rois = query(workdir, "SELECT DISTINCT roi FROM features WHERE case_id = ? ORDER BY roi", [ids[NIFTI_ID]])
    assert rois == [("GTV",), ("WALL",)]
    # the flipped and permuted mask file was placed on the image grid: the same voxels, the same features
    values = {who: query(workdir, "SELECT settings_id, ibsi_code, aggregation, value FROM features WHERE case_id = ? AND roi = "
                                  "'GTV' ORDER BY ALL", [ids[who]])
              for who in (NIFTI_ID, NIFTI_FLIPPED_ID)}
    assert values[NIFTI_ID] and values[NIFTI_FLIPPED_ID] == values[NIFTI_ID]
    # the padding outside the reconstruction field is not taken for implausible intensities
    (message,) = query(workdir, "SELECT message FROM qc WHERE case_id = ? AND scan = 'retest' AND check_code = "
                                "'INTENSITY_IMPLAUSIBLE'", [ids[12]])[0]
    assert "outside the reconstruction field (PixelPaddingValue), not counted" in message, message
    # the truncated NIfTI is refused with the reason, and without its path
    (message,) = query(workdir, "SELECT message FROM qc WHERE case_id = ? AND check_code = 'IMAGE_UNREADABLE'",
                       [ids[NIFTI_TRUNCATED_ID]])[0]
    assert message.startswith("the image file cannot be read (the file is truncated ("), message
    assert "truncated.nii" not in message


def test_enhanced_and_compressed_series_read_like_the_original(corpus_run):
    workdir, source, built, _ = corpus_run
    ids = case_ids(workdir, source, built)
    rows = dict(((c, s), (n, v)) for c, s, n, v in query(
        workdir, "SELECT case_id, scan, voxel_count, volume_mm3 FROM masks"))
    for index in (2, 3):  # test scans: J2K and enhanced multi-frame; masks as written by the demo
        _, truth = render_scan(built["patients"][index], 0)
        assert rows[(ids[index], "test")][0] == int(truth.sum())


def test_qc_summary_and_overlays_are_in_the_report(corpus_run):
    workdir, *_ = corpus_run
    report = workdir / "results" / "report"
    text = (report / "qc_summary.html").read_text()
    for code in ("SLICES_MISSING", "GANTRY_TILT", "MASK_UNLINKED", "NO_IMAGE_SERIES"):
        assert code in text
    sheets = sorted((report / "overlays").glob("*.png"))
    assert len(sheets) == 4 and all(p.stat().st_size > 10_000 for p in sheets)  # one a batch: 17 cases, 5 a batch


def test_no_identifying_value_in_any_result_file(corpus_run):
    workdir, source, *_ = corpus_run
    phi = phi_values(source, include_uids=True) | {SCOUT_ONLY_ID, *NIFTI_IDS}
    phi |= {part for value in phi for part in value.split("^") if len(part) >= 4}
    phi.add(str(source))  # input paths (folder names can identify) stay in interim/
    files = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files) and any(p.suffix == ".png" for p in files)
    leaks = [(p.name, v) for p in files for v in phi if v.encode() in p.read_bytes()]
    assert not leaks, leaks[:10]


def test_fixing_the_input_picks_the_case_up_on_the_next_run(corpus_run):
    workdir, source, built, configfile = corpus_run
    ids = case_ids(workdir, source, built)
    path, data = built["fixes"]["missing_slice"]
    path.write_bytes(data)
    snakemake(workdir, configfile)
    assert query(workdir, "SELECT status FROM scans WHERE case_id = ? AND scan = 'retest'", [ids[0]]) == [("pass",)]
    assert query(workdir, "SELECT count(*) FROM features WHERE case_id = ? AND scan = 'retest'", [ids[0]])[0][0] > 0
    assert not query(workdir, "SELECT * FROM qc WHERE case_id = ? AND check_code = 'SLICES_MISSING'", [ids[0]])
