"""Several sequences of one MR study (radflow.sequences): each configured sequence is labelled and paired on its
own, gets the settings documents meant for it, and a T2-weighted and an ADC series of one day are never taken for a
test and a retest. Real MR DICOM written with pydicom, read back through discover -> ingest -> qc -> features ->
DuckDB."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from radflow import store
from radflow.dicom import write
from radflow.pipeline.discover import case_id_of, cases_from_manifest, discover
from radflow.pipeline.features import extract_batch
from radflow.pipeline.ingest import ingest_batch
from radflow.pipeline.qc import qc_batch
from radflow.preflight import settings_coverage_note
from radflow.results import ResultsError, wide
from radflow.sequences import SequenceError, protocol_differences, protocol_of, rules_from_config, sequence_of
from radflow.stability.design import designs_for_perturbation, designs_for_test_retest
from radflow.settings import Settings, SettingsError
from radflow.timepoints import FOLLOW_UP_PROTOCOL_DIFFERS, NOT_A_REPEAT, ScanTiming, TimepointRules, place

KEY = b"sequences-test-key: long enough to be a key"
ROIS = [{"name": "GTV", "pattern": "^gtv"}]
SHAPE = (12, 32, 32)
SPACING = (3.0, 1.0, 1.0)  # z, y, x mm
SEQUENCES = [{"name": "t2w", "pattern": r"t2", "modality": "MR"}, {"name": "adc", "pattern": r"adc|apparent"}]
T2W_SETTINGS = "name: t2w_stats\nmodality: MR\nsequence: t2w\nfamilies: [statistics]\n" \
               "discretisation: {texture: {method: fixed_bin_number, n_bins: 16}, ivh: {method: none}}\n"
ADC_SETTINGS = T2W_SETTINGS.replace("t2w", "adc")


# ------------------------------------------------------------------------------------------------ the rules

def test_a_series_is_named_by_the_first_rule_matching_its_description_or_protocol():
    rules = rules_from_config(SEQUENCES)
    assert sequence_of("MR", "t2_tse_tra", "", rules) == "t2w"
    assert sequence_of("MR", "ep2d_diff_ADC", "", rules) == "adc"
    assert sequence_of("MR", "", "Apparent Diffusion Coefficient", rules) == "adc"  # no description: protocol
    assert sequence_of("MR", "t1_vibe_fs_post", "", rules) == ""  # no rule: the modality's own labels
    assert sequence_of("CT", "T2 look-alike", "", rules) == ""  # the t2w rule is for MR only
    assert sequence_of("MR", "T2 ADC", "", rules) == "t2w"  # first match wins


@pytest.mark.parametrize("items, message", [
    ([{"name": "T2W", "pattern": "t2"}], "lower-case"),
    ([{"name": "retest", "pattern": "t2"}], "taken by scan labels"),
    ([{"name": "pt", "pattern": "t2"}], "taken by scan labels"),
    ([{"name": "t2w", "pattern": "t2"}, {"name": "t2w", "pattern": "T2"}], "named twice"),
    ([{"name": "t2w", "pattern": "t2("}], "not a regular expression"),
    ([{"name": "t2w", "pattern": ""}], "needs a pattern"),
])
def test_unusable_sequence_rules_are_refused_with_the_reason(items, message):
    with pytest.raises(SequenceError, match=message):
        rules_from_config(items)


T2_PROTOCOL = protocol_of({"ScanningSequence": "SE", "EchoTime": "100", "RepetitionTime": "4000"}, ("ORIGINAL",))
ADC_PROTOCOL = protocol_of({"ScanningSequence": "EP", "EchoTime": "89", "RepetitionTime": "5000"}, ("DERIVED",))


def timing(minute: int, sequence: str = "", protocol=T2_PROTOCOL, modality: str = "MR") -> ScanTiming:
    return ScanTiming(modality, f"2024-03-05T10:{minute:02d}:00", str(minute), f"uid{minute}", sequence, protocol)


def test_two_sequences_of_one_day_are_two_tests_not_a_test_and_a_retest():
    scans = [timing(1, "t2w"), timing(5, "adc", ADC_PROTOCOL), timing(9, "t2w")]
    placements = place(scans, TimepointRules(primary_modality="MR"))
    assert [p.label for p in placements] == ["t2w_test", "adc_test", "t2w_retest"]
    assert not any(p.warnings for p in placements)


def test_without_sequences_a_series_of_another_protocol_is_not_the_retest():
    rules = TimepointRules(primary_modality="MR")
    other = place([timing(1), timing(5, protocol=ADC_PROTOCOL)], rules)
    assert [p.label for p in other] == ["test", "scan3"]  # no test-retest pair of a T2 and an ADC series
    assert not other[0].warnings and [w["code"] for w in other[1].warnings] == [NOT_A_REPEAT]
    message = other[1].warnings[0]["message"]
    assert "than the test scan of this timepoint (ScanningSequence SE vs EP; ImageType ORIGINAL vs DERIVED)" in message
    # a T1- beside a T2-weighted spin echo: their echo and repetition times differ by factors
    t1 = protocol_of({"ScanningSequence": "SE", "EchoTime": "15", "RepetitionTime": "600"}, ("ORIGINAL",))
    assert protocol_differences(T2_PROTOCOL, t1) == ["EchoTime 100 vs 15", "RepetitionTime 4000 vs 600"]
    # the T2 repeat after the ADC series is the retest; at follow-up the same rule
    three = place([timing(1), timing(5, protocol=ADC_PROTOCOL), timing(9)], rules)
    assert [p.label for p in three] == ["test", "scan3", "retest"]
    assert [[w["code"] for w in p.warnings] for p in three] == [[], [NOT_A_REPEAT], []]


def test_a_follow_up_keeps_the_baseline_protocol_for_its_first_scan():
    """Delta features compare the baseline test with fu1: at the follow-up visit the scan with the baseline test's
    protocol is fu1, even when another protocol's series was acquired first that day."""
    rules = TimepointRules(primary_modality="MR")
    later = [ScanTiming("MR", f"2024-06-05T10:{m:02d}:00", str(m), f"f{m}", "", protocol)
             for m, protocol in ((1, ADC_PROTOCOL), (5, T2_PROTOCOL))]
    placements = place([timing(1), *later], rules)
    assert [p.label for p in placements] == ["test", "fu1_scan3", "fu1"]
    assert "than the baseline test scan (" in placements[1].warnings[0]["message"]
    # a follow-up with none of the baseline protocol: its first scan leads
    alone = place([timing(1), later[0]], rules)
    assert [p.label for p in alone] == ["test", "fu1"]
    assert [w["code"] for w in alone[1].warnings] == [FOLLOW_UP_PROTOCOL_DIFFERS]
    assert "differs in ScanningSequence SE vs EP;" in alone[1].warnings[0]["message"]
    # a repeat with the same protocol is not flagged: times written with other decimals, a repetition time the
    # scanner lengthened by 15 % (SAR), an attribute one of them lacks
    again = protocol_of({"ScanningSequence": "SE", "EchoTime": "100.0001", "RepetitionTime": "4600"}, ())
    assert not any(p.warnings for p in place([timing(1), timing(5, protocol=again)], rules))


def test_ct_kernels_and_contrast_phases_are_not_repeats():
    plain = protocol_of({"ConvolutionKernel": "B30f"}, ("ORIGINAL",))
    sharp = protocol_of({"ConvolutionKernel": "B70f"}, ("ORIGINAL",))
    venous = protocol_of({"ConvolutionKernel": "B30f", "ContrastBolusAgent": "Iomeron"}, ("ORIGINAL",))
    assert protocol_differences(plain, plain) == []
    assert protocol_differences(plain, sharp) == ["ConvolutionKernel B30F vs B70F"]
    assert protocol_differences(plain, venous) == ["contrast agent in one only"]


# ------------------------------------------------------------------------------------------------ settings

def test_a_settings_document_may_name_the_sequence_it_is_for():
    plain = Settings.from_dict({"modality": "MR"})
    t2w = Settings.from_dict({"modality": "MR", "sequence": "t2w"})
    assert "sequence" not in plain.doc  # documents without one keep the id they had
    assert t2w.settings_id != plain.settings_id
    assert [t2w.applies_to("MR", s) for s in ("t2w", "adc", "", None)] == [True, False, False, False]
    assert [plain.applies_to("MR", s) for s in ("t2w", "adc", "")] == [True, True, True]
    assert not t2w.applies_to("CT", "t2w")
    with pytest.raises(SettingsError, match="sequence name"):
        Settings.from_dict({"modality": "MR", "sequence": "T2 weighted"})


def test_the_coverage_note_names_a_sequence_no_document_is_meant_for(tmp_path):
    t2w = tmp_path / "t2w.yaml"
    t2w.write_text(T2W_SETTINGS)
    inventory = {"batches": {"b0": [{"case_id": "c", "scans": [
        {"scan": "t2w_test", "modality": "MR", "sequence": "t2w"},
        {"scan": "adc_test", "modality": "MR", "sequence": "adc"}]}]}}
    note = settings_coverage_note(inventory, [str(t2w)])
    assert note is not None and "1 MR adc scan(s)" in note and "t2w" not in note.split("add")[0]


def test_a_retest_pair_of_any_kind_counts_for_the_pre_flight():
    from radflow.preflight import has_test_retest_pair

    assert has_test_retest_pair(["t2w_test", "adc_test", "t2w_retest"])
    assert not has_test_retest_pair(["t2w_test", "adc_retest"])  # two kinds are no pair
    assert not has_test_retest_pair(["test", "scan3"])


def test_a_manifest_sequence_column_prefixes_the_scan_label(tmp_path):
    rows = [{"patient_id": "P1", "image": "/d/t1.nii.gz", "mask": "/d/seg.nii.gz", "sequence": "t1", "line": "2"},
            {"patient_id": "P1", "image": "/d/t2.nii.gz", "mask": "/d/seg.nii.gz", "sequence": "t2",
             "modality": "MR", "line": "3"}]
    case = cases_from_manifest(rows, ROIS, KEY)[case_id_of("P1", KEY)]
    assert sorted((s["scan"], s["sequence"]) for s in case["scans"]) == [("t1_test", "t1"), ("t2_test", "t2")]
    with pytest.raises(SequenceError, match="sequence name"):
        cases_from_manifest([dict(rows[0], sequence="T1 post")], ROIS, KEY)
    # a label written as discovery writes them names its sequence; a modality's prefix or none names none
    labelled = [dict(rows[0], sequence="", scan="flair_test"), dict(rows[1], sequence="", scan="mr_retest")]
    case = cases_from_manifest(labelled, ROIS, KEY)[case_id_of("P1", KEY)]
    assert sorted((s["scan"], s.get("sequence", "")) for s in case["scans"]) == [("flair_test", "flair"),
                                                                                 ("mr_retest", "")]


# ------------------------------------------------------------------------------------------------ real DICOM

def uid(patient: int, *parts: object) -> str:
    return "1.2.826.0.1.3680043.10.1077.77." + ".".join(str(p) for p in (patient, *parts))


def write_series(root: Path, patient: int, series: int, description: str, signal: float, minute: int,
                 echo_ms: str = "100", repetition_ms: str = "4000", image_type: tuple = ("ORIGINAL", "PRIMARY", "M"),
                 contoured: bool = True, pixel_mm: float = 1.0) -> None:
    """One MR series (with its own RTSTRUCT, "GTV", when ``contoured``) of patient ``patient``'s single study and
    frame of reference, acquired at 10:<minute>, ``pixel_mm`` pixels over the same 32 mm field."""
    rng = np.random.default_rng(100 * patient + series)
    shape = (SHAPE[0], int(SHAPE[1] / pixel_mm), int(SHAPE[2] / pixel_mm))
    stored = rng.normal(signal, signal / 10, shape).clip(0, 60000).astype(np.uint16)
    attrs = {
        "PatientName": f"MR^PATIENT{patient}", "PatientID": f"MR-{patient}", "PatientBirthDate": "19600101",
        "PatientSex": "M", "StudyInstanceUID": uid(patient, 0), "SeriesInstanceUID": uid(patient, series),
        "FrameOfReferenceUID": uid(patient, 9), "StudyDate": "20240305", "StudyTime": "100000",
        "SeriesDate": "20240305", "SeriesTime": f"10{minute:02d}00", "AcquisitionDate": "20240305",
        "AcquisitionTime": f"10{minute:02d}00", "SeriesNumber": series, "SeriesDescription": description,
        "Manufacturer": "ACME", "SliceThickness": str(SPACING[0]), "AccessionNumber": "", "StudyID": "1",
        "ReferringPhysicianName": "",
    }
    folder = root / f"P{patient}" / f"s{series}"
    slices = []
    for k in range(SHAPE[0]):
        ds = write.mr_image(attrs, sop_instance_uid=uid(patient, series, 1, k), instance_number=k + 1,
                            position_xyz=(0.0, 0.0, k * SPACING[0]), pixel_spacing_rc=(pixel_mm, pixel_mm),
                            stored=stored[k])
        ds.EchoTime, ds.RepetitionTime, ds.ImageType = echo_ms, repetition_ms, list(image_type)
        write.save(ds, folder / "mr" / f"{k:03d}.dcm")
        slices.append(ds)
    if not contoured:
        return
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[3:9, 10:22, 10:22] = 1
    rt = write.rtstruct(slices, [write.Roi(1, "GTV", mask)], sop_instance_uid=uid(patient, series, 2),
                        series_instance_uid=uid(patient, series, 3), series_number=100 + series,
                        date="20240305", time="120000", manufacturer="ACME")
    write.save(rt, folder / "rtstruct" / "rs.dcm")


def write_adc(root: Path, patient: int, signal: float, contoured: bool) -> None:
    """The patient's ADC map (DERIVED, another echo and repetition time) at 10:06: on the T2 grid with its own
    RTSTRUCT when ``contoured``, else on 2 mm pixels without one."""
    write_series(root, patient, 2, "ep2d_diff_ADC", signal, 6, "89", "5000", ("DERIVED", "PRIMARY", "DIFFUSION", "ADC"),
                 contoured=contoured, pixel_mm=1.0 if contoured else 2.0)


def run(root: Path, work: Path, series_rules: dict, settings_texts: list[str]):
    inventory = work / "interim" / "inventory.json"
    discover(root, inventory, batch_size=50, rois=ROIS, key=KEY, series_rules=series_rules)
    settings_paths = []
    for number, text in enumerate(settings_texts):
        settings_paths.append(work / f"settings{number}.yaml")
        settings_paths[-1].write_text(text)
    (batch,) = json.loads(inventory.read_text())["batches"]
    folder = inventory.parent / "batches" / batch
    ingest_batch(inventory, batch, folder / "ingest.json", folder / "volumes", None)
    qc_batch(folder / "ingest.json", folder, None)
    features, errors = extract_batch(folder / "ingest.json", folder / "qc.parquet", settings_paths)
    features.to_parquet(folder / "features.parquet", index=False)
    errors.to_parquet(folder / "features_qc.parquet", index=False)
    documents = [Settings.from_yaml(p) for p in settings_paths]
    database = work / "results" / "radflow.duckdb"
    store.load_results(database, [folder],
                       [{"settings_id": d.settings_id, "name": d.name, "document": d.doc} for d in documents],
                       None, {"radflow": "test"}, [])
    return duckdb.connect(str(database), read_only=True), documents


@pytest.fixture(scope="module")
def mr_study(tmp_path_factory) -> Path:
    """Two patients, each with a T2-weighted series, an ADC series and a repeat of the T2 series on one day."""
    root = tmp_path_factory.mktemp("mr") / "dicom"
    for patient in (1, 2):
        write_series(root, patient, 1, "t2_tse_tra", 800.0, 1)
        write_adc(root, patient, 1400.0, contoured=True)
        write_series(root, patient, 3, "t2_tse_tra repeat", 810.0, 12)
    return root


def test_each_sequence_gets_its_own_labels_settings_and_scans_row(mr_study, tmp_path):
    con, (t2w, adc) = run(mr_study, tmp_path, {"modalities": ["MR"], "sequences": SEQUENCES},
                          [T2W_SETTINGS, ADC_SETTINGS])
    scans = con.execute("SELECT case_id, scan, sequence, status FROM scans ORDER BY ALL").fetchall()
    for patient in (1, 2):
        case = case_id_of(f"MR-{patient}", KEY)
        assert [(s, q) for c, s, q, _ in scans if c == case] == [
            ("adc_test", "adc"), ("t2w_retest", "t2w"), ("t2w_test", "t2w")]
    assert {status for *_, status in scans} == {"pass"}
    used = con.execute("SELECT scan, settings_id, avg(value) FILTER (WHERE ibsi_code = 'Q4LE') FROM features "
                       "GROUP BY ALL ORDER BY ALL").fetchall()
    # each sequence measured with its own document only; the ADC mean is the ADC signal, not the T2 one
    assert [(scan, sid) for scan, sid, _ in used] == sorted(
        [("adc_test", adc.settings_id), ("t2w_retest", t2w.settings_id), ("t2w_test", t2w.settings_id)])
    means = {scan: mean for scan, _, mean in used}
    assert means["adc_test"] == pytest.approx(1400.0, rel=0.05)
    assert means["t2w_test"] == pytest.approx(800.0, rel=0.05)
    codes = {row[0] for row in con.execute("SELECT check_code FROM qc WHERE severity <> 'pass'").fetchall()}
    assert not codes & {NOT_A_REPEAT, "TIMEPOINT_AMBIGUOUS", "RETEST_MISSING"}
    # the wide export of one sequence's settings: its own scans, and where there are none, which it has
    assert len(wide(con, adc.settings_id, "adc_test")) == 2
    with pytest.raises(ResultsError, match=r"scan 'test'; its scans: \['adc_test'\]"):
        wide(con, adc.settings_id, "test")


def test_without_sequences_the_other_sequence_is_not_taken_for_the_retest(mr_study, tmp_path):
    con, _ = run(mr_study, tmp_path, {"modalities": ["MR"]}, [T2W_SETTINGS.replace("sequence: t2w\n", "")])
    flagged = con.execute("SELECT scan, check_code, severity FROM qc WHERE check_code IN (?, ?) ORDER BY ALL",
                          [NOT_A_REPEAT, "TIMEPOINT_AMBIGUOUS"]).fetchall()
    # by time the ADC series came second; the T2 repeat is the retest, the ADC series an extra scan, said so on it
    assert flagged == [("scan3", NOT_A_REPEAT, "warn")] * 2
    means = dict(con.execute("SELECT scan, avg(value) FROM features WHERE ibsi_code = 'Q4LE' GROUP BY scan").fetchall())
    assert means["retest"] == pytest.approx(810.0, rel=0.05) and means["scan3"] == pytest.approx(1400.0, rel=0.05)


# ------------------------------------------------------------------------------------------------ stability

def long_rows(scans: list[str], settings_id: str = "s", perturbations: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for scan in scans:
        for case in ("a", "b", "c"):
            for copy in range(max(perturbations, 1)):
                rows.append({"case_id": case, "scan": scan, "roi": "GTV", "settings_id": settings_id,
                             "family": "statistics", "feature": "Mean", "ibsi_code": "Q4LE", "aggregation": "3D",
                             "perturbation": f"p{copy}", "value": float(rng.normal())})
    return pd.DataFrame(rows)


def test_the_first_scan_of_any_kind_is_perturbed_and_paired():
    """PET features (pt_test) and a sequence's (t2w_test) get perturbation stability too: their settings ids meet no
    unprefixed test scan, and before they got no stability result at all."""
    (design,) = designs_for_perturbation(long_rows(["pt_test"], "p", perturbations=3))
    assert design.settings_id == "p" and design.measurements == ["p0", "p1", "p2"] and design.subjects == ["a", "b", "c"]
    (design,) = designs_for_test_retest(long_rows(["t2w_test", "t2w_retest", "t2w_fu1"]))
    assert design.measurements == ["test", "retest"] and np.isfinite(design.values).all()


def test_one_settings_id_over_two_sequences_keeps_one_and_says_so(caplog):
    (design,) = designs_for_test_retest(long_rows(["t2w_test", "t2w_retest", "adc_test", "adc_retest"]))
    assert np.isfinite(design.values).all()  # one kind's pairs, not two values per case and measurement
    assert "2 kinds of scan (adc_test, t2w_test)" in caplog.text and "adc_test scans only" in caplog.text


def test_a_one_off_extraction_takes_a_sequence_document_for_its_modality():
    from radflow.extraction import settings_mismatch

    t2w = Settings.from_dict({"modality": "MR", "sequence": "t2w"})
    assert settings_mismatch(t2w, "MR", "the image") is None
    assert "are for MR images" in settings_mismatch(t2w, "CT", "the image")


@pytest.fixture(scope="module")
def mr_study_drawn_on_t2(tmp_path_factory) -> Path:
    """Two patients whose lesion is drawn on the T2-weighted series only; the ADC series (2 mm pixels) has none."""
    root = tmp_path_factory.mktemp("mr_t2_only") / "dicom"
    for patient in (1, 2):
        write_series(root, patient, 1, "t2_tse_tra", 800.0, 1)
        write_adc(root, patient, 1400.0, contoured=False)
    return root


def test_a_sequence_without_a_mask_borrows_the_one_drawn_on_another_sequence(mr_study_drawn_on_t2, tmp_path):
    con, (t2w, adc) = run(mr_study_drawn_on_t2, tmp_path, {"modalities": ["MR"], "sequences": SEQUENCES},
                          [T2W_SETTINGS, ADC_SETTINGS])
    assert con.execute("SELECT DISTINCT scan, status FROM scans ORDER BY ALL").fetchall() == [
        ("adc_test", "warn"), ("t2w_test", "pass")]
    (message,) = {m for (m,) in con.execute("SELECT message FROM qc WHERE check_code = 'MASK_TRANSFERRED'").fetchall()}
    # 6 slices x 12 x 12 mm drawn on 1 mm pixels: 864 voxels there, 6 x 6 x 6 = 216 of 2 mm
    assert message.startswith("drawn on the MR t2w series of the same frame of reference (864 voxels there)")
    assert message.endswith(": 216 voxels")
    means = dict(con.execute("SELECT scan, avg(value) FROM features WHERE ibsi_code = 'Q4LE' GROUP BY scan").fetchall())
    assert means["adc_test"] == pytest.approx(1400.0, rel=0.05) and means["t2w_test"] == pytest.approx(800.0, rel=0.05)


def test_without_sequences_an_mr_series_borrows_no_mask_from_another_mr_series(mr_study_drawn_on_t2, tmp_path):
    con, _ = run(mr_study_drawn_on_t2, tmp_path, {"modalities": ["MR"]},
                 [T2W_SETTINGS.replace("sequence: t2w\n", "")])
    assert con.execute("SELECT DISTINCT scan FROM scans").fetchall() == [("test",)]
    assert not con.execute("SELECT count(*) FROM qc WHERE check_code = 'MASK_TRANSFERRED'").fetchone()[0]


# ------------------------------------------------------------------------------------------------ a real run

@pytest.mark.slow
def test_a_snakemake_run_of_a_multiparametric_mr_cohort(tmp_path):
    """series.sequences and per-sequence settings documents through the real workflow: three patients with a
    T2-weighted series (their own RTSTRUCT), its same-day repeat and an ADC map drawn on nothing (it borrows the
    T2 contours); the T2 pairs give the test-retest ICCs of the T2 document, the ADC document has no pair and says
    so, and every scan lands in DuckDB with its sequence."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    root = tmp_path / "dicom"
    for patient in (1, 2, 3):
        write_series(root, patient, 1, "t2_tse_tra", 800.0 + 40 * patient, 1)
        write_adc(root, patient, 1400.0 - 50 * patient, contoured=False)
        write_series(root, patient, 3, "t2_tse_tra", 805.0 + 40 * patient, 12)
    (tmp_path / "t2w.yaml").write_text(T2W_SETTINGS)
    (tmp_path / "adc.yaml").write_text(ADC_SETTINGS)
    env = dict(os.environ, RADFLOW_PSEUDONYM_KEY="sequences-run-key: long enough")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    series = json.dumps({"modalities": ["MR"], "sequences": SEQUENCES})
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-c", "2",
         "--config", f"input_dir={root}", "clinical=null", f"series={series}", "features=[t2w.yaml, adc.yaml]",
         'rois=[{"name": "GTV", "pattern": "^gtv"}]'],
        capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    con = duckdb.connect(str(tmp_path / "results" / "radflow.duckdb"), read_only=True)
    assert con.execute("SELECT scan, sequence, count(*) FROM scans GROUP BY ALL ORDER BY ALL").fetchall() == [
        ("adc_test", "adc", 3), ("t2w_retest", "t2w", 3), ("t2w_test", "t2w", 3)]
    names = dict(con.execute("SELECT name, settings_id FROM settings").fetchall())
    stability = con.execute("SELECT settings_id, count(DISTINCT case_id) FROM stability_cases GROUP BY ALL"
                            ).fetchall()
    assert stability == [(names["t2w_stats"], 3)]  # the ADC document has no test-retest pair: no ICC, no guess
    transferred = con.execute("SELECT count(*) FROM qc WHERE check_code = 'MASK_TRANSFERRED' AND scan = 'adc_test'"
                              ).fetchone()[0]
    assert transferred == 3
    assert not con.execute("SELECT count(*) FROM stability WHERE settings_id = ?", [names["adc_stats"]]).fetchone()[0]
    import rdflib

    graph = rdflib.Graph().parse(tmp_path / "results" / "rdf" / "radflow.ttl")
    sequence = rdflib.URIRef("https://w3id.org/radflow/vocab#sequence")
    assert sorted(str(o) for o in graph.objects(None, sequence)) == ["adc"] * 3 + ["t2w"] * 6
    assert con.execute("SELECT count(*) FROM stability WHERE settings_id = ?", [names["t2w_stats"]]).fetchone()[0]
