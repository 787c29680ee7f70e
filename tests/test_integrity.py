"""Damaged archives at the edges, on real DICOM written with pydicom and read back through the real pipeline stages
(discover -> ingest -> qc -> features -> a real DuckDB file): each defect gets its own QC code and a message that
says what is wrong, and the healthy cases of the same run are untouched.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pydicom
import pytest

from conftest import REPO
from radflow import store
from radflow.dicom import write
from radflow.pipeline.discover import case_id_of, discover
from radflow.pipeline.features import extract_batch
from radflow.pipeline.ingest import ingest_batch
from radflow.pipeline.qc import qc_batch
from radflow.qc import Thresholds

KEY = b"integrity-test-key: long enough to be a key"
ROIS = [{"name": "GTV", "pattern": "^gtv"}]
SHAPE = (12, 40, 40)  # slices, rows, columns
SPACING = (2.0, 1.0, 1.0)  # z, y, x mm
SETTINGS = "name: stats_only\nfamilies: [statistics]\ndiscretisation: {ivh: {method: none}}\n"


def uid(*parts: object) -> str:
    return "1.2.826.0.1.3680043.10.1077." + ".".join(str(abs(hash(p)) % 10**8) if not isinstance(p, int) else str(p)
                                                      for p in parts)


@dataclass
class Person:
    patient_id: str
    name: str = "DOE^JANE"
    birth_date: str = "19500101"
    sex: str = "F"
    number: int = 1


@dataclass
class Written:
    ct_folder: Path
    mask_path: Path
    cts: list = field(default_factory=list)


def roi_mask(box=(slice(3, 9), slice(14, 24), slice(14, 24))) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[box] = 1
    return mask


def write_scan(root: Path, person: Person, scan: int, *, folder: str | None = None, mask: np.ndarray | None = None,
               study: int | None = None) -> Written:
    """One CT series and its RTSTRUCT ("GTV") under root/<folder>/<scan>/{ct,rtstruct}."""
    rng = np.random.default_rng(person.number * 10 + scan)
    stored = (rng.normal(1024 + 40, 20, SHAPE)).astype(np.int16)
    study_uid = uid(person.number, "study", study if study is not None else 0)
    attrs = {
        "PatientName": person.name, "PatientID": person.patient_id, "PatientBirthDate": person.birth_date,
        "PatientSex": person.sex, "StudyInstanceUID": study_uid,
        "SeriesInstanceUID": uid(person.number, scan, "series"),
        "FrameOfReferenceUID": uid(person.number, scan, "for"), "StudyDate": "20240102", "StudyTime": "101010",
        "SeriesDate": "20240102", "SeriesTime": f"1{scan}1010", "AcquisitionDate": "20240102",
        "AcquisitionTime": f"1{scan}1010", "SeriesNumber": scan + 1, "Manufacturer": "ACME",
        "SliceThickness": str(SPACING[0]), "KVP": "120", "AccessionNumber": "", "StudyID": "1",
        "ReferringPhysicianName": "",
    }
    base = root / (folder or f"P{person.number}") / f"scan{scan}"
    cts = []
    for k in range(SHAPE[0]):
        ct = write.ct_image(attrs, sop_instance_uid=uid(person.number, scan, "ct", k), instance_number=k + 1,
                            position_xyz=(0.0, 0.0, k * SPACING[0]), pixel_spacing_rc=SPACING[1:], stored=stored[k])
        write.save(ct, base / "ct" / f"{k:03d}.dcm")
        cts.append(ct)
    rt = write.rtstruct(cts, [write.Roi(1, "GTV", roi_mask() if mask is None else mask)],
                        sop_instance_uid=uid(person.number, scan, "rt"),
                        series_instance_uid=uid(person.number, scan, "rtseries"), series_number=99,
                        date="20240102", time="120000", manufacturer="ACME")
    mask_path = write.save(rt, base / "rtstruct" / "rs.dcm")
    return Written(base / "ct", mask_path, cts)


def write_patient(root: Path, person: Person, **kwargs) -> list[Written]:
    return [write_scan(root, person, scan, **kwargs) for scan in (0, 1)]


def edit_slices(folder: Path, change) -> None:
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        change(ds)
        ds.save_as(path)


@dataclass
class Run:
    qc: pd.DataFrame
    cases: dict[str, str]
    scans: dict[tuple[str, str], str]
    features: pd.DataFrame
    database: Path
    interim: Path

    def codes(self, case_id: str) -> dict[tuple[str, str, str], tuple[str, str]]:
        rows = self.qc[self.qc.case_id == case_id]
        return {(r.scan, r.roi, r.check_code): (r.severity, r.message) for r in rows.itertuples()}


def run_pipeline(root: Path, work: Path, *, memory_mb: float = 4000, settings_text: str = SETTINGS,
                 thresholds: Thresholds | None = None, **discover_kwargs) -> Run:
    """discover -> ingest -> qc -> features of every batch -> DuckDB, as the rules call them."""
    interim = work / "interim"
    inventory = interim / "inventory.json"
    discover(root, inventory, batch_size=50, rois=ROIS, key=KEY, **discover_kwargs)
    return run_batches(inventory, work, memory_mb=memory_mb, settings_text=settings_text, thresholds=thresholds)


def run_batches(inventory: Path, work: Path, *, memory_mb: float = 4000, settings_text: str = SETTINGS,
                thresholds: Thresholds | None = None) -> Run:
    import json

    settings = work / "settings.yaml"
    settings.write_text(settings_text)
    batch_dirs = []
    for batch in sorted(json.loads(inventory.read_text())["batches"]):
        folder = inventory.parent / "batches" / batch
        ingest_batch(inventory, batch, folder / "ingest.json", folder / "volumes", thresholds)
        qc_batch(folder / "ingest.json", folder, thresholds)
        features, errors = extract_batch(folder / "ingest.json", folder / "qc.parquet", [settings], memory_mb)
        features.to_parquet(folder / "features.parquet", index=False)
        errors.to_parquet(folder / "features_qc.parquet", index=False)
        batch_dirs.append(folder)
    from radflow.settings import Settings

    doc = Settings.from_yaml(settings)
    database = work / "results" / "radflow.duckdb"
    store.load_results(database, batch_dirs, [{"settings_id": doc.settings_id, "name": doc.name, "document": doc.doc}],
                       None, {"radflow": "test"}, [])
    con = duckdb.connect(str(database), read_only=True)
    try:
        qc = con.execute("SELECT * FROM qc").df()
        cases = dict(con.execute("SELECT case_id, status FROM cases").fetchall())
        scans = {(c, s): st for c, s, st in con.execute("SELECT case_id, scan, status FROM scans").fetchall()}
        features = con.execute("SELECT * FROM features").df()
    finally:
        con.close()
    return Run(qc, cases, scans, features, database, inventory.parent)


def healthy(run: Run, patient_id: str) -> None:
    """A clean two-scan patient: both scans pass and have features, the case passes."""
    case = case_id_of(patient_id, KEY)
    assert run.cases[case] == "pass", run.codes(case)
    assert run.scans[(case, "test")] == run.scans[(case, "retest")] == "pass"
    assert set(run.features.loc[run.features.case_id == case, "scan"]) == {"test", "retest"}
    assert not (run.qc[(run.qc.case_id == case) & (run.qc.severity != "pass")]).shape[0]


# ------------------------------------------------------------------------------------------ identity

def test_two_people_under_one_patient_id_are_a_conflict_not_one_case(tmp_path):
    root = tmp_path / "dicom"
    write_patient(root, Person("P-SHARED", "SMITH^ANNA", "19500101", "F", number=1), folder="first")
    write_patient(root, Person("P-SHARED", "JONES^BOB", "19600202", "M", number=2), folder="second")
    write_patient(root, Person("P-OK", number=3))
    run = run_pipeline(root, tmp_path)
    shared = case_id_of("P-SHARED", KEY)
    codes = run.codes(shared)
    severity, message = codes[("test", "", "PATIENT_ID_CONFLICT")]
    assert severity == "fail"
    assert "disagree on PatientName, PatientBirthDate, PatientSex" in message
    assert "2 different identities over 4 series" in message and "not merged" in message
    assert not any(name in message for name in ("SMITH", "JONES", "1950", "1960"))
    assert run.cases[shared] == "fail" and (shared, "retest") not in run.scans
    assert ("", "", "RETEST_MISSING") not in codes  # nothing to pair
    assert run.features[run.features.case_id == shared].empty
    healthy(run, "P-OK")


def test_the_same_person_spelled_differently_is_not_a_conflict(tmp_path):
    root = tmp_path / "dicom"
    write_scan(root, Person("P-1", "Doe^Jane", number=1), 0)
    write_scan(root, Person("P-1", "DOE^JANE^^", "", number=1), 1)  # case, empty components, birth date absent
    run = run_pipeline(root, tmp_path)
    healthy(run, "P-1")


def test_files_without_patient_id_are_never_pooled(tmp_path):
    root = tmp_path / "dicom"
    write_scan(root, Person("", "A^A", number=1), 0, study=1)
    write_scan(root, Person("", "B^B", number=2), 0, study=2)
    write_patient(root, Person("P-OK", number=3))
    run = run_pipeline(root, tmp_path)
    missing = [c for c in run.cases if c != case_id_of("P-OK", KEY)]
    assert len(missing) == 2 and case_id_of("", KEY) not in run.cases
    for case in missing:
        severity, message = run.codes(case)[("test", "", "PATIENT_ID_MISSING")]
        assert severity == "fail" and "1 series and 1 mask object(s) of one study have no PatientID" in message
        assert run.cases[case] == "fail" and ("", "", "RETEST_MISSING") not in run.codes(case)
    healthy(run, "P-OK")

    keyed = run_pipeline(root, tmp_path / "keyed", missing_patient_id="study_uid")
    by_study = [c for c in keyed.cases if c != case_id_of("P-OK", KEY)]
    assert sorted(by_study) == sorted(missing)  # the same keyed study pseudonyms, now processed one study each
    for case in by_study:
        codes = keyed.codes(case)
        assert codes[("", "", "PATIENT_ID_FROM_STUDY")][0] == "warn"
        assert "keyed on its StudyInstanceUID" in codes[("", "", "PATIENT_ID_FROM_STUDY")][1]
        assert keyed.scans[(case, "test")] == "pass" and (case, "retest") not in keyed.scans
        assert set(keyed.features.loc[keyed.features.case_id == case, "scan"]) == {"test"}
    healthy(keyed, "P-OK")


# ------------------------------------------------------------------------------------------ unreadable input

def _as_unprivileged_user() -> list[str] | None:
    """A command prefix that drops root to uid/gid 65534 (nobody), so that file permissions apply."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"] if setpriv else None


def test_unreadable_folders_are_named_in_qc_and_their_cases_marked(tmp_path_factory):
    prefix = _as_unprivileged_user()
    if prefix is None:
        pytest.skip("running as root without setpriv: a permission test needs an unprivileged user")
    work = Path(os.path.realpath(tmp_path_factory.mktemp("unreadable")))
    for folder in (work, *work.parents):  # the unprivileged user must reach the work folder
        if folder != Path("/") and not (folder.stat().st_mode & stat.S_IXOTH):
            folder.chmod(folder.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
    root = work / "dicom"
    write_patient(root, Person("P-SERIES", number=1))  # its test series folder unreadable
    write_patient(root, Person("P-WHOLE", number=2))  # the whole patient folder unreadable
    write_patient(root, Person("P-OK", number=3))
    interim = work / "interim"
    interim.mkdir()
    interim.chmod(0o777)
    unreadable = [root / "P1" / "scan0" / "ct", root / "P2"]
    for folder in unreadable:
        folder.chmod(0o000)
    try:
        env = {**os.environ, "HOME": str(work), "RADFLOW_PSEUDONYM_KEY": KEY.decode(), "NUMBA_CACHE_DIR": str(interim)}
        result = subprocess.run(
            [*prefix, sys.executable, "-m", "radflow", "discover", str(root), str(interim / "inventory.json"),
             "--batch-size", "50", "--rois", '[{"name": "GTV", "pattern": "^gtv"}]'],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        for folder in unreadable:
            folder.chmod(0o755)
    run = run_batches(interim / "inventory.json", work)

    partial = case_id_of("P-SERIES", KEY)
    severity, message = run.codes(partial)[("", "", "INPUT_UNREADABLE")]
    assert severity == "fail" and run.cases[partial] == "fail"
    assert message.startswith("1 folder(s) or file(s) beside this patient's files cannot be read (1 x folder cannot "
                              "be listed)")
    assert run.features[run.features.case_id == partial].empty  # a scan may be missing: the case is not used
    assert case_id_of("P-WHOLE", KEY) not in run.cases  # nothing of it could be read: named at run level
    run_level = run.codes("")[("", "", "INPUT_UNREADABLE")]
    assert run_level[0] == "fail" and run_level[1].startswith("1 folder(s) or file(s) of the input belong to no known "
                                                              "case and cannot be read (1 x folder cannot be listed)")
    assert not any(str(work) in m for m in run.qc["message"])  # paths stay in interim/
    listed = (interim / "unreadable.csv").read_text()
    assert all(str(folder) in listed for folder in unreadable)
    healthy(run, "P-OK")


# ------------------------------------------------------------------------------------------ masks

def shift_contour(rtstruct: Path, contour_index: int, dx_mm: float) -> None:
    ds = pydicom.dcmread(rtstruct)
    contour = ds.ROIContourSequence[0].ContourSequence[contour_index]
    points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
    points[:, 0] += dx_mm
    contour.ContourData = [write.ds_str(v, 3) for v in points.ravel()]
    ds.save_as(rtstruct)


def test_contours_outside_the_image_in_plane_are_measured(tmp_path):
    root = tmp_path / "dicom"
    far = write_patient(root, Person("P-FAR", number=1))
    shift_contour(far[0].mask_path, 2, 500.0)  # one of 6 contoured slices moved 500 mm to the right
    edge = write_patient(root, Person("P-EDGE", number=2), mask=roi_mask((slice(3, 9), slice(14, 24), slice(28, 38))))
    shift_contour(edge[0].mask_path, 0, 4.0)  # one slice's contour 2 columns over the right edge
    write_patient(root, Person("P-OK", number=3))
    run = run_pipeline(root, tmp_path)

    far_case = case_id_of("P-FAR", KEY)
    severity, message = run.codes(far_case)[("test", "GTV", "MASK_OUTSIDE_IMAGE")]
    assert severity == "fail" and run.scans[(far_case, "test")] == "fail"
    assert message == ("RTSTRUCT: 16.7% of the ROI (100 of 600 enclosed voxel centres) lies outside the image "
                       "(x > last column): more than the tolerated 5%")
    assert run.scans[(far_case, "retest")] == "pass"

    edge_case = case_id_of("P-EDGE", KEY)
    severity, message = run.codes(edge_case)[("test", "GTV", "MASK_PARTLY_OUTSIDE")]
    assert severity == "warn" and run.scans[(edge_case, "test")] == "warn"
    assert message == ("3.33% of the ROI (20 of 600 enclosed voxel centres) lies outside the image (x > last "
                       "column); left out (tolerated up to 5%)")
    value = run.qc[(run.qc.case_id == edge_case) & (run.qc.check_code == "MASK_PARTLY_OUTSIDE")]["value"].item()
    assert value == pytest.approx(20 / 600)
    assert set(run.features.loc[run.features.case_id == edge_case, "scan"]) == {"test", "retest"}

    strict = run_pipeline(root, tmp_path / "strict", thresholds=Thresholds(mask_outside_tolerance=0.01))
    assert strict.codes(edge_case)[("test", "GTV", "MASK_OUTSIDE_IMAGE")][0] == "fail"
    healthy(run, "P-OK")
    healthy(strict, "P-OK")


def test_nan_contour_points_are_named_in_words(tmp_path):
    root = tmp_path / "dicom"
    written = write_patient(root, Person("P-NAN", number=1))
    ds = pydicom.dcmread(written[0].mask_path)
    contour = ds.ROIContourSequence[0].ContourSequence[1]
    contour.ContourData = ["nan", *list(contour.ContourData)[1:]]
    ds.save_as(written[0].mask_path)
    write_patient(root, Person("P-OK", number=2))
    run = run_pipeline(root, tmp_path)
    severity, message = run.codes(case_id_of("P-NAN", KEY))[("test", "GTV", "MASK_UNREADABLE")]
    assert severity == "fail"
    assert message == ("RTSTRUCT: ContourData holds 1 non-finite number(s) (NaN or infinity): the contour cannot be "
                       "placed")
    healthy(run, "P-OK")


# ------------------------------------------------------------------------------------------ codes that misled

def test_zero_orientation_slope_zero_and_copied_files_get_their_own_codes(tmp_path):
    root = tmp_path / "dicom"
    iop = write_patient(root, Person("P-IOP", number=1))
    edit_slices(iop[0].ct_folder, lambda ds: setattr(ds, "ImageOrientationPatient", ["0"] * 6))
    slope = write_patient(root, Person("P-SLOPE", number=2))
    edit_slices(slope[1].ct_folder, lambda ds: setattr(ds, "RescaleSlope", "0"))
    write_patient(root, Person("P-OK", number=3))
    run = run_pipeline(root, tmp_path)

    severity, message = run.codes(case_id_of("P-IOP", KEY))[("test", "", "GEOMETRY_INVALID")]
    assert severity == "fail" and "ImageOrientationPatient [0.0, 0.0, 0.0, 0.0, 0.0, 0.0] is not two unit vectors" \
        in message
    assert ("test", "", "SLICE_DUPLICATE") not in run.codes(case_id_of("P-IOP", KEY))
    severity, message = run.codes(case_id_of("P-SLOPE", KEY))[("retest", "", "RESCALE_INVALID")]
    assert severity == "fail" and message == "RescaleSlope is 0: every voxel would have the intercept's value"
    assert run.scans[(case_id_of("P-SLOPE", KEY), "test")] == "pass"
    healthy(run, "P-OK")


def test_copies_of_a_short_series_do_not_reach_the_slice_minimum(tmp_path):
    root = tmp_path / "dicom"
    short = write_patient(root, Person("P-COPY", number=1))
    for written in short:
        for path in sorted(written.ct_folder.iterdir())[6:]:
            path.unlink()  # 6 slices left ...
        for path in sorted(written.ct_folder.iterdir()):
            shutil.copy(path, path.with_name("copy_" + path.name))  # ... stored twice: 12 files
    write_patient(root, Person("P-OK", number=2))
    run = run_pipeline(root, tmp_path, series_rules={"min_slices": 10})
    case = case_id_of("P-COPY", KEY)
    codes = run.codes(case)
    severity, message = codes[("test", "", "NO_IMAGE_SERIES")]
    assert severity == "fail"
    assert message == "no series passes the series rules: 2 x 6 slice(s), fewer than 10 (scout or partial series?)"
    assert ("", "", "RETEST_MISSING") not in codes and len(codes) == 1
    healthy(run, "P-OK")


def test_a_patient_with_only_non_image_objects_gets_one_row(tmp_path):
    root = tmp_path / "dicom"
    written = write_scan(root, Person("P-OT", number=1), 0)
    edit_slices(written.ct_folder, lambda ds: setattr(ds, "Modality", "OT"))
    written.mask_path.unlink()
    write_patient(root, Person("P-OK", number=2))
    run = run_pipeline(root, tmp_path)
    codes = run.codes(case_id_of("P-OT", KEY))
    assert list(codes) == [("test", "", "NO_IMAGE_SERIES")]
    assert "modality OT not in" in codes[("test", "", "NO_IMAGE_SERIES")][1]
    healthy(run, "P-OK")


# ------------------------------------------------------------------------------------------ memory and extraction

def test_a_roi_too_large_for_memory_is_a_qc_failure_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "dicom"
    whole = np.ones(SHAPE, dtype=np.uint8)
    whole[:, :, [0, -1]] = whole[:, [0, -1], :] = 0  # a whole-image ROI (inside the border)
    write_patient(root, Person("P-BIG", number=1), mask=whole)
    write_patient(root, Person("P-OK", number=2))
    run = run_pipeline(root, tmp_path, memory_mb=1.0)
    big = case_id_of("P-BIG", KEY)
    severity, message = run.codes(big)[("test", "GTV", "ROI_TOO_LARGE")]
    assert severity == "fail"
    assert message == ("stats_only: the ROI's working grid would be 21,853 voxels, about 0.0014 GB, more than the 1 "
                       "MB a feature job may use (a whole-image or mislabelled ROI, or too fine a spacing?)")
    value = run.qc[(run.qc.case_id == big) & (run.qc.check_code == "ROI_TOO_LARGE")]["value"].iloc[0]
    assert value == 21853 * 64
    # every ROI of the case failed extraction: the case is not pass
    assert run.cases[big] == "fail" and run.scans[(big, "test")] == run.scans[(big, "retest")] == "fail"
    assert run.features[run.features.case_id == big].empty
    healthy(run, "P-OK")


def test_an_unexpected_error_of_one_roi_is_recorded_and_the_batch_goes_on(tmp_path, monkeypatch):
    """MemoryError cannot be provoked reliably in a test process, so extract_pair raises it for one case here."""
    import radflow.pipeline.features as features_stage

    root = tmp_path / "dicom"
    write_patient(root, Person("P-OOM", number=1))
    write_patient(root, Person("P-OK", number=2))
    real_extract, real_usable = features_stage.extract_pair, features_stage.usable_rois
    oom = case_id_of("P-OOM", KEY)
    current = {}

    def usable_rois(*args, **kwargs):
        for usable in real_usable(*args, **kwargs):
            current["case"] = usable.case_id
            yield usable

    def extract_pair(image, mask, settings, memory_mb=None):
        if current["case"] == oom:
            raise MemoryError
        return real_extract(image, mask, settings, memory_mb=memory_mb)

    monkeypatch.setattr(features_stage, "extract_pair", extract_pair)
    monkeypatch.setattr(features_stage, "usable_rois", usable_rois)
    run = run_pipeline(root, tmp_path)
    severity, message = run.codes(oom)[("test", "GTV", "FEATURE_EXTRACTION")]
    assert severity == "fail" and message == "stats_only: ran out of memory (MemoryError) despite the estimate"
    assert run.cases[oom] == "fail"
    healthy(run, "P-OK")


# ------------------------------------------------------------------------------------------ configuration and clinical

def test_invalid_roi_pattern_and_mapping_file_in_results_are_refused(tmp_path):
    root = tmp_path / "dicom"
    write_scan(root, Person("P-1", number=1), 0)
    with pytest.raises(ValueError, match=r"rois\[0\] \(GTV\): '\[gtv' is not a valid regular expression"):
        discover(root, tmp_path / "inventory.json", 10, [{"name": "GTV", "pattern": "[gtv"}], KEY)
    with pytest.raises(ValueError, match=r"mapping_file .* lies inside the results folder"):
        discover(root, tmp_path / "inventory.json", 10, ROIS, KEY, mapping_file=tmp_path / "results" / "map.csv",
                 results_dir=tmp_path / "results")
    assert not (tmp_path / "inventory.json").exists() and not (tmp_path / "results").exists()
    discover(root, tmp_path / "inventory.json", 10, ROIS, KEY, mapping_file=tmp_path / "owner" / "map.csv",
             results_dir=tmp_path / "results")
    assert (tmp_path / "owner" / "map.csv").read_text().splitlines()[1] == f"{case_id_of('P-1', KEY)},P-1"


def test_clinical_rows_without_or_with_conflicting_patient_ids(tmp_path, caplog):
    from radflow.pipeline.discover import ClinicalTableError, pseudonymise_clinical

    csv = tmp_path / "clinical.csv"
    csv.write_text("patient_id,outcome\nA,1\n,0\nB,0\nB,0\n  ,1\n")
    pseudonymise_clinical(csv, tmp_path / "clinical.parquet", KEY)
    table = pd.read_parquet(tmp_path / "clinical.parquet")
    assert sorted(table["case_id"]) == sorted(case_id_of(p, KEY) for p in ("A", "B")) and len(table) == 2
    assert "2 row(s) without a patient_id ignored (lines 3, 6)" in caplog.text
    csv.write_text("patient_id,outcome\nA,1\nB,0\nA,0\n")
    with pytest.raises(ClinicalTableError, match=r"^clinical.csv: 1 patient_id\(s\) appear on several rows with "
                                                 r"different values \(lines 2, 4\): keep one row per patient$"):
        pseudonymise_clinical(csv, tmp_path / "refused.parquet", KEY)
    assert not (tmp_path / "refused.parquet").exists()
    # empty lines (a spreadsheet's, a hand-edited file's) still count: the lines are the ones an editor shows
    csv.write_text("patient_id,outcome\nA,1\n\n\nB,0\n,\nA,0\n")
    with pytest.raises(ClinicalTableError, match=r"different values \(lines 2, 7\)"):
        pseudonymise_clinical(csv, tmp_path / "refused.parquet", KEY)


def test_the_demo_key_is_only_for_data_the_demo_generator_wrote(tmp_path):
    from radflow.demo import write_cohort

    demo = write_cohort(tmp_path / "demo", n_patients=1, seed=3)

    def discover_with_demo_key(folder: Path) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "RADFLOW_PSEUDONYM_KEY"}
        return subprocess.run([sys.executable, "-m", "radflow", "discover", str(folder), str(tmp_path / "inv.json"),
                               "--rois", '[{"name": "GTV", "pattern": "gtv"}]', "--allow-demo-key"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    assert discover_with_demo_key(demo / "dicom").returncode == 0
    real = tmp_path / "demo" / "dicom" / "real_patient"
    write_scan(real, Person("REAL-PATIENT", number=9), 0)
    refused = discover_with_demo_key(demo / "dicom")
    assert refused.returncode != 0
    assert ("the public demo key is only for data radflow's demo generator wrote" in refused.stderr
            and "13 file(s) the generator did not write" in refused.stderr)  # 12 slices + RTSTRUCT
    shutil.rmtree(real)
    first = next((demo / "dicom").rglob("*.dcm"))
    first.write_bytes(first.read_bytes() + b"\0\0")
    changed = discover_with_demo_key(demo / "dicom")
    assert changed.returncode != 0 and "1 file(s) changed since generation" in changed.stderr
    elsewhere = tmp_path / "elsewhere"
    write_scan(elsewhere, Person("REAL-PATIENT", number=9), 0)
    assert "no demo_checksums.json" in discover_with_demo_key(elsewhere).stderr


def test_store_counts_clinical_rows_and_cases_that_do_not_match(tmp_path, caplog):
    from radflow.pipeline.store import store_run

    root = tmp_path / "dicom"
    write_patient(root, Person("P-1", number=1))
    write_patient(root, Person("P-2", number=2))
    run = run_pipeline(root, tmp_path)
    clinical = tmp_path / "clinical.parquet"
    pd.DataFrame({"case_id": [case_id_of("P-1", KEY), case_id_of("NOT-IMAGED", KEY), case_id_of("ALSO-NOT", KEY)],
                  "outcome": [1, 0, 1]}).to_parquet(clinical)
    (tmp_path / "settings.yaml").write_text(SETTINGS)
    receipt = tmp_path / "results" / "receipt.json"
    store_run(run.database, sorted((run.interim / "batches").iterdir()), clinical, [tmp_path / "settings.yaml"],
              receipt=receipt)
    assert "1 imaging case(s) have no row in the clinical table" in caplog.text
    assert "2 clinical row(s) match no imaging case" in caplog.text
    import json

    assert json.loads(receipt.read_text())["clinical_match"] == {"clinical_without_imaging": 2,
                                                                 "imaging_without_clinical": 1}


def write_seg_patient(root: Path, person: Person) -> Path:
    """A two-scan patient whose test scan's mask is a DICOM SEG ("GTV"); returns the SEG's path."""
    written = write_patient(root, person)
    written[0].mask_path.unlink()
    seg = write.segmentation(written[0].cts, roi_mask().astype(bool), label="GTV",
                             sop_instance_uid=uid(person.number, "seg"), series_instance_uid=uid(person.number, "segs"),
                             series_number=98, dimension_organization_uid=uid(person.number, "dim"), date="20240102",
                             time="120000", manufacturer="ACME", manufacturer_model_name="m", software_versions="1")
    path = written[0].mask_path.with_name("seg.dcm")
    seg.save_as(path)
    return path


def test_seg_frames_outside_the_image_and_zero_frame_segs_are_named_in_words(tmp_path):
    root = tmp_path / "dicom"
    outside = write_seg_patient(root, Person("P-SEG-OUT", number=1))
    ds = pydicom.dcmread(outside)
    plane = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
    plane.ImagePositionPatient = [float(plane.ImagePositionPatient[0]) + 500.0, *plane.ImagePositionPatient[1:]]
    ds.save_as(outside)
    empty = write_seg_patient(root, Person("P-SEG-EMPTY", number=2))
    ds = pydicom.dcmread(empty)
    ds.NumberOfFrames = 0
    del ds.PerFrameFunctionalGroupsSequence
    ds.PixelData = b""
    ds.save_as(empty)
    write_patient(root, Person("P-OK", number=3))
    run = run_pipeline(root, tmp_path)
    severity, message = run.codes(case_id_of("P-SEG-OUT", KEY))[("test", "GTV", "MASK_OUTSIDE_IMAGE")]
    assert severity == "fail"
    assert message == ("SEG: 16.7% of the ROI (100 of 600 enclosed voxel centres) lies outside the image "
                       "(x > last column): more than the tolerated 5%")
    severity, message = run.codes(case_id_of("P-SEG-EMPTY", KEY))[("test", "GTV", "MASK_UNREADABLE")]
    assert severity == "fail"
    assert message == "SEG: the SEG has zero frames (NumberOfFrames 0): no segment can be read from it"
    healthy(run, "P-OK")


def test_a_derived_series_its_mask_was_drawn_on_is_the_scan(tmp_path):
    """An ADC map or a subtraction series is ImageType DERIVED; when the RTSTRUCT references it, it is what was
    contoured and becomes the scan (series.skip_derived leaves out only derived series no mask references)."""
    root = tmp_path / "dicom"
    for written in write_patient(root, Person("P-ADC", number=3)):
        edit_slices(written.ct_folder, lambda ds: setattr(ds, "ImageType", ["DERIVED", "PRIMARY", "AXIAL", "ADC"]))
    healthy(run_pipeline(root, tmp_path), "P-ADC")


def test_two_lesions_matching_the_roi_pattern_give_features_and_a_warning(tmp_path):
    """A structure set with GTV_1 and GTV_2: the first is the ROI, and the case says the choice was ambiguous."""
    root = tmp_path / "dicom"
    written = write_scan(root, Person("P-TWO", number=4), 0)
    rt = pydicom.dcmread(written.mask_path)
    second = write.rtstruct(written.cts, [write.Roi(1, "GTV_1", roi_mask()),
                                         write.Roi(2, "GTV_2", roi_mask((slice(3, 9), slice(2, 8), slice(2, 8))))],
                            sop_instance_uid=rt.SOPInstanceUID, series_instance_uid=rt.SeriesInstanceUID,
                            series_number=99, date="20240102", time="120000", manufacturer="ACME")
    write.save(second, written.mask_path)
    run = run_pipeline(root, tmp_path)
    case = case_id_of("P-TWO", KEY)
    assert run.cases[case] == "warn"
    severity, message = run.codes(case)[("test", "GTV", "ROI_AMBIGUOUS")]
    assert severity == "warn" and message.startswith("2 mask labels match '^gtv': the first was taken")
    assert (run.features.case_id == case).any()


def test_an_input_folder_without_dicom_stops_discovery_saying_what_it_held(tmp_path):
    """A wrong input_dir (NIfTI files, notes) used to end in the store rule's argparse error."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ct.nii.gz").write_bytes(b"\x1f\x8b not really")
    (tmp_path / "in" / "notes.txt").write_text("patient list")
    with pytest.raises(ValueError, match=r"no patient found under input_dir .*: 2 file\(s\) looked at \(2 not a DICOM "
                                         r"file\)\. input_dir must hold DICOM image series"):
        discover(tmp_path / "in", tmp_path / "interim" / "inventory.json", batch_size=50, rois=ROIS, key=KEY)
