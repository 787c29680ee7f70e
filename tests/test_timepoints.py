"""Timepoints and scan labels from acquisition dates and times (radflow.timepoints), and through discovery."""
from __future__ import annotations

import pytest

from radflow.timepoints import ScanTiming, TimepointRules, group_dates, place

RULES = TimepointRules(max_gap_days=0, primary_modality="CT")


def labels(scans, rules=RULES):
    return [(p.label, p.timepoint, p.days_from_baseline) for p in place(scans, rules)]


def test_same_day_repeat_is_test_retest_and_later_days_are_follow_ups_whatever_the_input_order():
    scans = [
        ScanTiming("CT", "2024-03-20T09:00:00", "3", "c"),  # follow-up, listed first
        ScanTiming("CT", "2024-01-10T10:20:00", "5", "b"),  # same-day retest
        ScanTiming("CT", "2024-01-10T10:00:00", "2", "a"),  # baseline test
    ]
    assert labels(scans) == [("fu1", 1, 70), ("retest", 0, 0), ("test", 0, 0)]


def test_other_modalities_are_prefixed_and_share_the_visit_grouping():
    scans = [ScanTiming("CT", "2024-01-10T10:00"), ScanTiming("PT", "2024-01-10T11:30"),
             ScanTiming("MR", "2024-01-11T08:00"), ScanTiming("PT", "2024-02-07T11:00")]
    assert labels(scans) == [("test", 0, 0), ("pt_test", 0, 0), ("mr_fu1", 1, 1), ("pt_fu2", 2, 28)]
    # a visit spanning two days (PET/CT one day, MR the next) with max_gap_days=1
    wide = TimepointRules(max_gap_days=1, primary_modality="CT")
    assert labels(scans, wide) == [("test", 0, 0), ("pt_test", 0, 0), ("mr_test", 0, 1), ("pt_fu1", 1, 28)]


def test_three_scans_on_one_day_are_flagged_and_keep_the_first_two_as_the_pair():
    scans = [ScanTiming("CT", f"2024-01-10T1{h}:00") for h in (2, 0, 1)]
    placements = place(scans, RULES)
    assert [p.label for p in placements] == ["scan3", "test", "retest"]
    assert all(p.warnings[0]["code"] == "TIMEPOINT_AMBIGUOUS" for p in placements)


def test_an_undated_scan_among_dated_ones_is_not_placed_and_flagged():
    scans = [ScanTiming("CT", "2024-01-10T10:00"), ScanTiming("CT", "")]
    placements = place(scans, RULES)
    assert [(p.label, p.timepoint) for p in placements] == [("test", 0), ("undated", None)]
    assert placements[1].warnings[0]["code"] == "ACQUISITION_DATE_MISSING" and not placements[0].warnings


def test_undated_patient_keeps_series_order_and_a_lone_undated_scan_is_not_ambiguous():
    two = [ScanTiming("CT", "", "5"), ScanTiming("CT", "", "2")]
    placements = place(two, RULES)
    assert [p.label for p in placements] == ["retest", "test"]
    assert placements[0].warnings[0]["code"] == "ACQUISITION_DATE_MISSING"
    assert place([ScanTiming("CT", "")], RULES)[0].warnings == []


def test_grouping_opens_a_new_timepoint_only_beyond_the_gap_from_the_first_scan_of_the_open_one():
    import datetime as dt
    days = [dt.date(2024, 1, d) for d in (1, 2, 3, 4, 10)]
    assert list(group_dates(days, 2).values()) == [0, 0, 0, 1, 2]
    with pytest.raises(ValueError):
        TimepointRules.from_config({"max_gap_days": -1})


def test_days_from_baseline_survive_the_per_patient_date_shift():
    from radflow.dicom.deid import DEMO_KEY, date_shift_days, shift_iso_datetime
    shift = date_shift_days("PAT-1", DEMO_KEY)
    real = [ScanTiming("CT", "2024-01-10T10:00"), ScanTiming("CT", "2024-04-02T10:00")]
    shifted = [ScanTiming("CT", shift_iso_datetime(s.when, shift)) for s in real]
    assert labels(real) == labels(shifted) == [("test", 0, 0), ("fu1", 1, 83)]


# ------------------------------------------------------------------------------------------ through discovery

def _demo_with_retest_dates(tmp_path, change) -> dict:
    """One demo patient whose retest series' date tags are changed by ``change(ds)``; the discovered scans."""
    import json

    import pydicom

    from radflow.demo import sample_patient, scan_paths, write_cohort
    from radflow.dicom.deid import DEMO_KEY
    from radflow.pipeline.discover import discover

    demo = write_cohort(tmp_path / "demo", n_patients=1, seed=7)
    retest_folder = scan_paths(demo, sample_patient(7, 0), 1)[0]
    for path in sorted(retest_folder.iterdir()):
        ds = pydicom.dcmread(path)
        change(ds)
        ds.save_as(path)
    inventory = tmp_path / "inventory.json"
    discover(demo / "dicom", inventory, 10, [{"name": "GTV", "pattern": "^gtv"}], DEMO_KEY)
    (case,) = json.loads(inventory.read_text())["batches"]["b0000"]
    return {scan["scan"]: scan for scan in case["scans"]}


def test_a_later_retest_series_becomes_a_follow_up_by_its_date(tmp_path):
    import datetime as dt

    def thirty_days_later(ds):
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            day = dt.datetime.strptime(ds.get(keyword), "%Y%m%d") + dt.timedelta(days=30)
            setattr(ds, keyword, day.strftime("%Y%m%d"))

    scans = _demo_with_retest_dates(tmp_path, thirty_days_later)
    assert sorted(scans) == ["fu1", "test"]
    assert (scans["fu1"]["timepoint"], scans["fu1"]["days_from_baseline"]) == (1, 30)
    shifted = [dt.date.fromisoformat(scans[s]["acquisition_datetime"][:10]) for s in ("test", "fu1")]
    assert (shifted[1] - shifted[0]).days == 30  # the stored (shifted) dates keep the interval


def test_an_undated_series_is_flagged_in_qc_not_guessed(tmp_path):
    from radflow.manifest import Manifest
    from radflow.pipeline.ingest import ingest_batch
    from radflow.pipeline.qc import qc_batch

    def undated(ds):
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "AcquisitionDateTime"):
            if keyword in ds:
                delattr(ds, keyword)

    scans = _demo_with_retest_dates(tmp_path, undated)
    assert sorted(scans) == ["test", "undated"] and scans["undated"]["timepoint"] is None
    ingest_batch(tmp_path / "inventory.json", "b0000", tmp_path / "ingest.json", tmp_path / "volumes")
    assert {s.scan: s.status for s in Manifest.read(tmp_path / "ingest.json").scans} == {"test": "ok", "undated": "ok"}
    qc_batch(tmp_path / "ingest.json", tmp_path / "batch")
    import pandas as pd

    qc = pd.read_parquet(tmp_path / "batch" / "qc.parquet")
    flagged = qc[qc["check_code"] == "ACQUISITION_DATE_MISSING"]
    assert list(zip(flagged["scan"], flagged["severity"])) == [("undated", "warn")]
    assert "cannot be placed on a timepoint" in flagged["message"].iloc[0]
