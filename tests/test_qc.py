"""QC checks and the ingest rules behind them, on small hand-made inputs (fast; the corpus run is
tests/test_ingest_corpus.py)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radflow import qc
from radflow.dicom import discovery, series
from radflow.dicom.deid import DEMO_KEY, date_shift_days, shift_iso_datetime
from radflow.dicom.series import SeriesError, check_spacing, check_stack, orientation_warning
from radflow.pipeline.discover import case_id_of, cases_from_manifest, centre_aliases, choose_rois
from radflow.pipeline.qc import case_status

PACKAGE = Path(qc.__file__).parent


def test_every_code_radflow_writes_is_documented():
    sources = [*(PACKAGE / "dicom").glob("*.py"), PACKAGE / "qc.py",
               *(PACKAGE / "pipeline" / f"{stage}.py" for stage in ("discover", "ingest", "qc", "features"))]
    written = set()
    for path in sources:
        text = path.read_text()
        written |= set(re.findall(r'"([A-Z]+(?:_[A-Z]+)+)"', text))
    written -= {"RADFLOW_PSEUDONYM_KEY", "CLOSED_PLANAR"}  # not QC codes
    undocumented = written - set(qc.CHECKS)
    assert not undocumented, undocumented
    assert all(severity in (qc.FAIL, qc.WARN) for severity, _ in qc.CHECKS.values())


@pytest.mark.parametrize("gaps, code", [
    ([2.0, 2.0, 4.0, 2.0], series.SLICES_MISSING),
    ([2.0, 6.0, 2.0], series.SLICES_MISSING),
    ([2.0, 2.6, 2.0], series.SLICE_SPACING_NONUNIFORM),
    ([2.0, 3.0, 2.0, 2.0], series.SLICE_SPACING_NONUNIFORM),  # 1.5x: not whole multiples
])
def test_irregular_gaps_are_told_apart(gaps, code):
    with pytest.raises(SeriesError) as info:
        check_spacing(np.array(gaps), 0.05)
    assert info.value.code == code


def test_regular_gaps_within_tolerance_give_the_mean():
    assert check_spacing(np.array([2.0, 2.03, 1.98]), 0.05) == pytest.approx(2.00333, abs=1e-4)


def test_linear_in_plane_shift_is_gantry_tilt_and_other_shifts_are_mixed_stacks():
    along = np.arange(6) * 2.5
    tilted = np.zeros((6, 3))
    tilted[:, 1] = along * math.tan(math.radians(15))
    with pytest.raises(SeriesError, match=r"gantry tilt of 15 degrees") as info:
        check_stack(along, tilted, 0.05)
    assert info.value.code == series.GANTRY_TILT
    jumped = np.zeros((6, 3))
    jumped[3:, 0] = 40.0  # two stacks side by side
    with pytest.raises(SeriesError) as info:
        check_stack(along, jumped, 0.05)
    assert info.value.code == series.MIXED_GEOMETRY
    check_stack(along, np.full((6, 3), 0.01), 0.05)  # within tolerance


def test_orientation_warning_for_oblique_sagittal_but_not_axial_grids():
    assert orientation_warning(np.eye(3).ravel(), 1.0) is None
    flipped = np.diag([1.0, -1.0, -1.0])  # axial, feet-first: still aligned
    assert orientation_warning(flipped.ravel(), 1.0) is None
    c, s = math.cos(math.radians(10)), math.sin(math.radians(10))
    rotated = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    warning = orientation_warning(rotated.ravel(), 1.0)
    assert warning.code == series.ORIENTATION_NON_AXIAL and warning.value == pytest.approx(10.0)
    sagittal = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)  # columns: row, column, normal
    assert "sagittal" in orientation_warning(sagittal.ravel(), 1.0).message


def test_intensity_plausibility_by_modality():
    thresholds = qc.Thresholds.from_config({"intensity_range": {"CT": [-1100, 4000], "PT": [0, None]},
                                            "intensity_outside_fraction": 0.01})
    ct = np.full((4, 10, 10), -800.0)
    assert qc.intensity_plausible(ct, "CT", thresholds).severity == qc.PASS
    ct[0, 0, :5] = 30000  # 5 of 400 voxels (1.25 %): metal or a wrong slope
    result = qc.intensity_plausible(ct, "CT", thresholds)
    assert result.severity == qc.FAIL and result.value == pytest.approx(0.0125)
    assert qc.intensity_plausible(ct, "MR", thresholds) is None  # no absolute scale
    pet = np.full((3, 3, 3), 2.5)
    pet[0, 0, 0] = np.nan
    assert qc.intensity_plausible(pet, "PT", thresholds).value == pytest.approx(1 / 27)
    assert thresholds.intensity_range["PT"] == (0.0, math.inf)


def _ct_in_a_circular_field(outside_value: float) -> np.ndarray:
    """Air, a water disc of noise, and ``outside_value`` beyond the reconstruction circle (21 % of each slice)."""
    rng = np.random.default_rng(2)
    ct = rng.normal(-1000.0, 30.0, (5, 64, 64))
    rows, cols = np.mgrid[:64, :64]
    ct[:, (rows - 31.5) ** 2 + (cols - 31.5) ** 2 < 20 ** 2] = 0.0
    ct[:, (rows - 31.5) ** 2 + (cols - 31.5) ** 2 > 32 ** 2] = outside_value
    return ct


def test_padding_outside_the_reconstruction_field_is_not_an_implausible_intensity():
    thresholds = qc.Thresholds.from_config({"intensity_outside_fraction": 0.01})
    ct = _ct_in_a_circular_field(-3024.0)
    declared = qc.intensity_plausible(ct, "CT", thresholds, padding=(-3024.0, -3024.0))
    assert declared.severity == qc.PASS and declared.value < 0.01
    assert "21.2% of the volume outside the reconstruction field (PixelPaddingValue)" in declared.message
    # undeclared (a NIfTI, a stripped export): the one value at every slice corner
    undeclared = qc.intensity_plausible(ct, "CT", thresholds)
    assert undeclared.severity == qc.PASS and "a constant -3024 at every slice corner" in undeclared.message
    assert declared.value == undeclared.value
    # a declared range (PixelPaddingRangeLimit): every value in it
    ranged = ct.copy()
    ranged[ct == -3024.0] = np.linspace(-3024.0, -2000.0, int((ct == -3024.0).sum()))
    assert qc.intensity_plausible(ranged, "CT", thresholds, padding=(-3024.0, -2000.0)).severity == qc.PASS
    assert qc.intensity_plausible(ranged, "CT", thresholds).severity == qc.FAIL  # corners differ: not padding


def test_a_doubled_intercept_still_fails_with_padding_around_it():
    """Everything 1024 HU too low: the air noise (-2024 +- 30 HU) is below the range, and it is not one value at
    the corners, so it counts even where the scan declares its padding."""
    thresholds = qc.Thresholds.from_config({"intensity_outside_fraction": 0.01})
    shifted = _ct_in_a_circular_field(-3024.0) - np.where(_ct_in_a_circular_field(-3024.0) == -3024.0, 0, 1024)
    assert qc.intensity_plausible(shifted, "CT", thresholds, padding=(-3024.0, -3024.0)).severity == qc.FAIL
    assert qc.intensity_plausible(shifted, "CT", thresholds).severity == qc.FAIL
    assert qc.padding_value(_ct_in_a_circular_field(-1000.0), -1100.0) is None  # in range: air, not padding


def test_border_voxels_count_each_face_voxel_once():
    mask = np.zeros((5, 6, 7), dtype=np.uint8)
    mask[2, 2:4, 2:4] = 1
    assert qc.border_voxels(mask) == 0 and qc.mask_inside_image(mask, "GTV").severity == qc.PASS
    mask[0, 0, 0] = mask[4, 3, 3] = mask[2, 5, 6] = 1
    assert qc.border_voxels(mask) == 3
    assert qc.mask_inside_image(mask, "GTV").severity == qc.WARN


def test_check_roi_stops_at_geometry_and_empty_masks():
    image = sitk.Image(8, 8, 4, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 2.0))
    mask = sitk.Image(8, 8, 4, sitk.sitkUInt8)
    mask.CopyInformation(image)
    assert [r.code for r in qc.check_roi(image, mask, "GTV", 10)] == ["MASK_GEOMETRY", "MASK_EMPTY"]
    mask[3, 3, 1] = 1
    results = {r.code: r for r in qc.check_roi(image, mask, "GTV", 10)}
    assert results["ROI_TOO_SMALL"].severity == qc.FAIL and results["ROI_TOO_SMALL"].value == 2.0
    moved = sitk.Image(mask)
    moved.SetOrigin((0.5, 0, 0))
    assert [r.severity for r in qc.check_roi(image, moved, "GTV", 10)] == [qc.FAIL]
    # the message says by how much: 0.004 mm rounds away in the grids' figures
    moved.SetOrigin((0.004, 0, 0))
    moved.SetSpacing((1.0, 1.0, 2.5))
    message = qc.mask_geometry(image, moved, "GTV").message
    assert message.endswith("(in origin by 0.004 mm, spacing by 0.5 mm; tolerance 0.001 mm)"), message


def test_case_status():
    assert case_status([qc.PASS, qc.PASS], qc.PASS) == qc.PASS
    assert case_status([qc.PASS, qc.FAIL], qc.PASS) == qc.WARN
    assert case_status([qc.PASS], qc.WARN) == qc.WARN
    assert case_status([qc.FAIL, qc.FAIL], qc.PASS) == qc.FAIL


# ------------------------------------------------------------------------------------------ discovery rules

def _series(**kw) -> discovery.ImageSeries:
    base = dict(modality="CT", patient_id="P1", study_uid="1.1", series_uid="1.2", frame_of_reference_uid="1.3",
                series_description="", series_number="2", series_datetime="", acquisition_datetime="",
                image_type=("ORIGINAL", "PRIMARY", "AXIAL"), n_slices=40)
    base.update(kw)
    return discovery.ImageSeries(**base)


@pytest.mark.parametrize("changes, reason", [
    ({}, ""),
    ({"modality": "SR"}, "modality SR"),
    ({"image_type": ("ORIGINAL", "PRIMARY", "LOCALIZER"), "n_slices": 2}, "localizer"),
    ({"image_type": ("DERIVED", "SECONDARY", "AXIAL")}, "derived"),
    ({"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7"}, "secondary capture"),
    ({"n_slices": 3}, "3 slice(s), fewer than 10"),
])
def test_series_rules(changes, reason):
    got = discovery.exclusion(_series(**changes), discovery.SeriesRules(min_slices=10))
    assert (got == "") if not reason else (reason in got)


@pytest.mark.parametrize("changes, reason", [
    ({"image_type": ("DERIVED", "PRIMARY", "DIFFUSION", "ADC")}, ""),  # an ADC map a SEG was drawn on
    ({"image_type": ("DERIVED", "SECONDARY", "AXIAL")}, ""),
    ({"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7"}, ""),
    ({"image_type": ("ORIGINAL", "PRIMARY", "LOCALIZER")}, "localizer"),  # still no scan
    ({"n_slices": 3}, "3 slice(s), fewer than 10"),
])
def test_a_series_a_mask_references_is_a_candidate_even_if_derived(changes, reason):
    got = discovery.exclusion(_series(**changes), discovery.SeriesRules(min_slices=10), contoured=True)
    assert (got == "") if not reason else (reason in got)


def test_masks_never_link_across_patients():
    ours, theirs = _series(patient_id="P1", series_uid="9.1", frame_of_reference_uid="9.9"), \
        _series(patient_id="P2", series_uid="8.1", frame_of_reference_uid="8.9")
    mask = discovery.MaskObject("RTSTRUCT", Path("rs"), "P1", "1.1", "7.1", "7.2", "8.9", ("GTV",), ("8.1",))
    assert discovery.link_mask(mask, [ours, theirs]) == (None, "unlinked")
    mask.referenced_series_uids = ("9.1",)
    assert discovery.link_mask(mask, [ours, theirs]) == (ours.key, "referenced_series")
    ours.excluded = "derived image"
    assert discovery.link_mask(mask, [ours, theirs]) == (None, "excluded_series")


def test_roi_choice_tries_the_centre_aliases_first():
    rt = discovery.MaskObject("RTSTRUCT", Path("rs"), "P1", "", "", "", "", ("Lung_L", "Tumour", "GTV_2"), ())
    rois = [{"name": "GTV", "pattern": "^gtv"}, {"name": "LUNG", "pattern": "^lung"}]
    aliases = centre_aliases({"centres": {"GE MEDICAL SYSTEMS ": {"GTV": ["^tumou?r$"]}}}, "ge medical systems")
    selections, errors, _ = choose_rois([rt], rois, aliases)
    assert [(s["roi"], s["label"]) for s in selections] == [("GTV", "Tumour"), ("LUNG", "Lung_L")] and not errors
    selections, errors, ambiguous = choose_rois([rt], rois + [{"name": "CTV", "pattern": "^ctv"}])
    assert selections[0]["label"] == "GTV_2"
    # label names are free text: they stay in the interim inventory, the message (which reaches results) counts them
    assert errors == [{"roi": "CTV", "code": "ROI_NOT_FOUND", "labels": ["GTV_2", "Lung_L", "Tumour"],
                       "message": "no mask label matches '^ctv' (3 label(s) in the mask objects; their names are in "
                                  "interim/inventory.json)"}]
    assert ambiguous == []


def test_two_lesions_matching_one_roi_pattern_are_a_warning_naming_no_label():
    test = discovery.MaskObject("RTSTRUCT", Path("rs"), "P1", "", "", "", "", ("GTV_2 Smith", "GTV_1", "Lung"), ())
    copy = discovery.MaskObject("SEG", Path("seg"), "P1", "", "", "", "", ("GTV_2 Smith",), ())
    selections, errors, warnings = choose_rois([test, copy], [{"name": "GTV", "pattern": "^gtv"}])
    assert selections[0]["label"] == "GTV_2 Smith" and not errors  # the first, as before
    assert warnings == [{"code": "ROI_AMBIGUOUS", "roi": "GTV", "value": 2.0,
                         "message": "2 mask labels match '^gtv': the first was taken; narrow the pattern (rois) or "
                                    "add a centre alias so that one label matches (the names are in "
                                    "interim/inventory.json)"}]
    _, _, single = choose_rois([copy, copy], [{"name": "GTV", "pattern": "^gtv"}])  # one label, twice: no warning
    assert single == []


def test_a_ct_without_air_is_a_warning_naming_the_likely_causes():
    ct = _ct_in_a_circular_field(-3024.0)
    assert qc.ct_air_present(ct).severity == qc.PASS
    rng = np.random.default_rng(5)
    mr = rng.uniform(0.0, 1800.0, (4, 16, 16))  # T1 signal: inside the CT range, so INTENSITY_IMPLAUSIBLE passes it
    assert qc.intensity_plausible(mr, "CT", qc.Thresholds()).severity == qc.PASS
    for not_ct in (mr, ct + 1024.0 + 3024.0 * (ct == -3024.0), rng.uniform(0.0, 12.0, (4, 16, 16))):  # MR, HU+1024, SUV
        result = qc.ct_air_present(not_ct)
        assert result.severity == qc.WARN and result.value == pytest.approx(not_ct.min())
        assert "give its modality (MR, PT) in the input manifest's modality column" in result.message
        assert "HU + 1024" in result.message
    nan = np.full((2, 4, 4), np.nan)
    assert qc.ct_air_present(nan).severity == qc.PASS  # nothing to judge: ROI_NON_FINITE says what is wrong
    with_nan = ct.copy()
    with_nan[0, 0, 0] = np.nan
    assert qc.ct_air_present(with_nan).severity == qc.PASS


@pytest.mark.parametrize("modality, warned", [("CT", True), ("MR", False)])
def test_an_mr_file_read_as_ct_is_flagged_by_ingest(tmp_path, modality, warned):
    """A real NIfTI file through ingest: an MR image the manifest gives no modality for (read as CT) is flagged,
    the same file given as MR is not; both are read and go on."""
    from radflow.manifest import Manifest
    from radflow.pipeline.ingest import ingest_batch

    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.uniform(20.0, 900.0, (12, 24, 24)).astype(np.float32))
    image.SetSpacing((1.0, 1.0, 3.0))
    sitk.WriteImage(image, str(tmp_path / "t1.nii.gz"))
    scan = {"scan": "test", "source": "file", "modality": modality, "series_uid": "2.25.9",
            "files": [str(tmp_path / "t1.nii.gz")], "acquisition_datetime": None, "timepoint": 0,
            "days_from_baseline": 0, "rois": [], "roi_errors": [], "error": None}
    (tmp_path / "inventory.json").write_text(json.dumps({"batches": {"b0000": [{"case_id": "case-1", "scans": [scan]}]}}))
    ingest_batch(tmp_path / "inventory.json", "b0000", tmp_path / "ingest.json", tmp_path / "volumes", qc.Thresholds())
    (ingested,) = Manifest.read(tmp_path / "ingest.json").scans
    assert ingested.status == "ok"
    assert [w["code"] for w in ingested.warnings] == (["CT_WITHOUT_AIR"] if warned else [])


def test_manifest_rows_group_into_cases_scans_and_rois():
    rows = [
        {"patient_id": "A", "scan": "test", "image": "/x/a.nii.gz", "mask": "/x/a_seg.nrrd", "roi": "GTV", "label": "1"},
        {"patient_id": "A", "scan": "test", "image": "/x/a.nii.gz", "mask": "/x/a_seg.nrrd", "roi": "NODE",
         "label": "2"},
        {"patient_id": "A", "scan": "retest", "image": "/x/a2.nii.gz", "mask": "", "roi": "", "label": ""},
    ]
    cases = cases_from_manifest(rows, [{"name": "GTV", "pattern": "^gtv"}], DEMO_KEY)
    (case,) = cases.values()
    test, retest = sorted(case["scans"], key=lambda s: s["scan"] != "test")
    assert [(r["roi"], r["label"]) for r in test["rois"]] == [("GTV", "1"), ("NODE", "2")]
    assert retest["rois"] == [] and retest["roi_errors"][0]["code"] == "MASK_NOT_FOUND"
    assert case["case_id"] == case_id_of("A", DEMO_KEY) and test["series_uid"] != retest["series_uid"]


def test_date_shift_is_per_patient_keyed_and_keeps_intervals():
    shift = date_shift_days("P1", DEMO_KEY)
    assert shift == date_shift_days("P1", DEMO_KEY) and -365 <= shift <= -1
    assert len({date_shift_days(f"P{i}", DEMO_KEY) for i in range(50)}) > 30
    other_key = b"another key of enough bytes"
    assert sum(date_shift_days(f"P{i}", DEMO_KEY) != date_shift_days(f"P{i}", other_key) for i in range(20)) >= 18
    assert shift_iso_datetime("2024-03-01T10:15:00", -1) == "2024-02-29T10:15:00"
    assert shift_iso_datetime("2024-03-01", -366) == "2023-03-01"
    assert shift_iso_datetime("", -5) == ""


def test_unreadable_files_beside_a_series_are_noted_on_its_scan(tmp_path):
    from radflow.dicom.discovery import scan
    from radflow.pipeline.discover import cases_from_inventory
    from test_dicom_reading import rtstruct, stored_values, write_ct

    study, frame = "1.2.3.4", "1.2.3.5"
    ct = write_ct(tmp_path / "PAT" / "ct", stored_values(), study=study, frame=frame, series="1.2.3.6")
    rtstruct(tmp_path / "PAT" / "rs", {"GTV": [np.array([[0.0, 0.0, -20.0], [1.0, 0.0, -20.0], [1.0, 1.0, -20.0]])]},
             study=study, series="1.2.3.6", frame=frame)
    broken = ct[0].with_name("broken")
    broken.write_bytes(ct[0].read_bytes()[:140])  # preamble, DICM and a torn file meta group
    inventory = scan(tmp_path, discovery.SeriesRules(min_slices=1))
    assert [f.path.name for f in inventory.unreadable] == ["broken"]
    (case,) = cases_from_inventory(inventory, [{"name": "GTV", "pattern": "^gtv"}], DEMO_KEY).values()
    (entry,) = case["scans"]
    assert [(w["code"], w["value"]) for w in entry["warnings"]] == [("UNREADABLE_FILES_NEARBY", 1.0)]
    assert entry["acquisition_datetime"] is not None and not entry["acquisition_datetime"].startswith("2024-01-02")


def test_qc_stage_rows_are_the_store_tables():
    """The rows the qc rule writes name and order their fields as the store's schema does (they are written by
    name, so a renamed or reordered column fails here, not as shifted values in DuckDB)."""
    from dataclasses import fields

    from radflow import store
    from radflow.pipeline.qc import TABLE_ROWS

    for table, row in TABLE_ROWS.items():
        assert [f.name for f in fields(row)] == store.columns(table), table
    assert {s.value for s in qc.Severity} == {"fail", "warn", "pass"}
    assert {severity for severity, _ in qc.CHECKS.values()} <= set(qc.Severity) - {qc.PASS}
