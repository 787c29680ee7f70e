"""Clinical rows that match no imaged case are counted and, where a variant of the ID would match, explained by
line (radflow.pipeline.clinical_matching), through the real pseudonymisation of the clinical CSV."""
from __future__ import annotations

import logging

from radflow.pipeline.clinical_matching import unmatched_report
from radflow.pipeline.discover import case_id_of, pseudonymise_clinical

KEY = b"a key long enough for the clinical test"


def pseudonym(patient_id: str) -> str:
    return case_id_of(patient_id, KEY)


def test_every_kind_of_near_miss_is_explained_by_line_and_nothing_is_matched():
    dicom_ids = ["000123", "004567", "AB-12", "xy9", "77", "P 5", "8812"]
    clinical_ids = ["123", "4567", "ab-12", "XY9", "0077", "P5", "unknown-1", "P 5", "8812.0"]
    lines = list(range(2, 2 + len(clinical_ids)))
    messages = unmatched_report("c.csv", clinical_ids, lines, [pseudonym(p) for p in dicom_ids], pseudonym)
    assert messages == [
        "c.csv: 8 of 9 patient_id(s) match no imaged case (lines 2, 3, 4, 5, 6, 7, 8, 10): a patient_id must equal "
        "the DICOM PatientID exactly",
        "c.csv: 2 of them match an imaged case with the leading zeros a spreadsheet dropped restored (store the "
        "column as text): lines 2, 3",
        "c.csv: 1 of them match an imaged case without their leading zeros: lines 6",
        "c.csv: 1 of them match an imaged case without the '.0' a spreadsheet added to a number: lines 10",
        "c.csv: 2 of them match an imaged case in other letter case: lines 4, 5",
    ]  # "P5" against "P 5": that imaged case already has its row (line 9), so it explains nothing


def test_nothing_is_said_when_every_row_matches():
    assert unmatched_report("c.csv", ["A", "B"], [2, 3], [pseudonym("A"), pseudonym("B"), pseudonym("C")],
                            pseudonym) == []


def test_pseudonymising_the_table_logs_the_report_and_keeps_every_row(tmp_path, caplog):
    path = tmp_path / "clinical.csv"
    path.write_text("patient_id,outcome\n123,1\n000456,0\n")
    with caplog.at_level(logging.WARNING):
        pseudonymise_clinical(path, tmp_path / "c.parquet", KEY, imaged_cases={pseudonym("000123"),
                                                                               pseudonym("000456")})
    assert "clinical.csv: 1 of 2 patient_id(s) match no imaged case (lines 2)" in caplog.text
    assert "1 of them match an imaged case with the leading zeros a spreadsheet dropped restored" in caplog.text
    assert "123" not in caplog.text.replace("lines 2", "")  # rows by line, never by ID
    import pandas as pd

    assert sorted(pd.read_parquet(tmp_path / "c.parquet")["case_id"]) == sorted([pseudonym("123"),
                                                                                 pseudonym("000456")])
