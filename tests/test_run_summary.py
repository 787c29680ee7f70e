"""The terminal summary at the end of a run (radflow.run_summary), read from a real DuckDB file."""
from __future__ import annotations

import duckdb

from radflow.run_summary import success_summary


def database(path, clinical_ids: list[str]):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE cases (case_id VARCHAR, status VARCHAR)")
    con.execute("INSERT INTO cases VALUES ('case-a', 'pass'), ('case-b', 'pass'), ('case-c', 'fail')")
    con.execute("CREATE TABLE features (case_id VARCHAR, value DOUBLE)")
    con.execute("INSERT INTO features VALUES ('case-a', 1.0), ('case-b', 2.0)")
    con.execute("CREATE TABLE clinical (case_id VARCHAR, outcome INTEGER)")
    for case_id in clinical_ids:
        con.execute("INSERT INTO clinical VALUES (?, 1)", [case_id])
    con.close()
    return path


def test_cases_without_a_clinical_row_are_counted(tmp_path):
    text = success_summary(database(tmp_path / "r.duckdb", ["case-a", "case-x"]), tmp_path)
    assert "  cases: 2 pass, 0 warn, 1 fail" in text
    assert "  clinical: 2 of 3 cases have no row in the clinical table (its patient_id must equal the DICOM " \
           f"PatientID exactly; {tmp_path / 'logs' / 'clinical.log'} names the rows that match no case)" in text


def test_nothing_is_said_when_every_case_has_its_row(tmp_path):
    text = success_summary(database(tmp_path / "r.duckdb", ["case-a", "case-b", "case-c"]), tmp_path)
    assert "clinical:" not in text and "  feature rows: 2" in text


def test_nothing_is_said_without_a_clinical_table(tmp_path):
    text = success_summary(database(tmp_path / "r.duckdb", []), tmp_path)  # the store's empty clinical table
    assert "clinical:" not in text
