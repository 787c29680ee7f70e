"""Only the clinical columns the configuration names reach the results, and identifying ones never do, however they
are spelt (radflow.clinical_columns, applied by `radflow clinical`)."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from radflow.clinical_columns import is_identifying, select_columns
from radflow.pipeline.discover import case_id_of

KEY = "clinical-test-key: long enough"


@pytest.mark.parametrize("column", [
    "PatientName", "Patient Name", "patient_name", "PATIENT-NAME", "name", "Birth Date", "birthdate",
    "PatientBirthDate", "date_of_birth", "DOB", "Accession", "AccessionNumber", "accession #", "Institution",
    "InstitutionName", "notes", "Clinical Notes", "comments", "ReferringPhysicianName", "address", "Phone",
    "e-mail", "MRN",
])
def test_identifying_names_are_detected_whatever_the_spelling(column):
    assert is_identifying(column)


@pytest.mark.parametrize("column", ["outcome", "centre", "age", "sex", "survival_time", "event", "stage", "smoker",
                                    "tumour_volume", "histology"])
def test_ordinary_clinical_columns_are_not(column):
    assert not is_identifying(column)


def test_selection_keeps_only_named_columns_and_never_identifying_ones():
    selection = select_columns(["patient_id", "outcome", "Patient Name", "stage", "age"], ["outcome", "Patient Name", "age"])
    assert selection.kept == ["outcome", "age"]
    assert selection.identifying == ["Patient Name"] and selection.not_configured == ["stage"]
    assert "kept 2 clinical column(s)" in selection.summary("c.csv")


def test_radflow_clinical_writes_only_the_kept_columns(tmp_path):
    csv = tmp_path / "clinical.csv"
    pd.DataFrame({"patient_id": ["P1", "P2"], "outcome": [1, 0], "Patient Name": ["DOE^JANE", "ROE^RICH"],
                  "birthdate": ["19600101", "19700202"], "Accession #": ["A1", "A2"], "notes": ["seen", "x"],
                  "stage": ["II", "III"], "centre": ["A", "B"]}).to_csv(csv, index=False)
    out = tmp_path / "clinical.parquet"
    env = {"RADFLOW_PSEUDONYM_KEY": KEY, "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "radflow", "clinical", str(csv), str(out), "--keep",
                             '["outcome", "centre", "Patient Name"]'], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(out)
    assert list(table.columns) == ["case_id", "outcome", "centre"]
    assert sorted(table.case_id) == sorted(case_id_of(p, KEY.encode()) for p in ("P1", "P2"))
    text = out.read_bytes()
    for value in (b"DOE^JANE", b"19600101", b"A1", b"seen", b"P1"):
        assert value not in text
    assert "kept 2 clinical column(s) (outcome, centre); 1 column(s) not named in the configuration dropped (stage" \
        in result.stderr
    assert "4 identifying column(s) dropped (Patient Name, birthdate, Accession #, notes)" in result.stderr
