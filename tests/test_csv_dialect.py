"""CSV files as spreadsheet programs write them (radflow.csv_dialect): Excel's Windows-1252 "CSV", the semicolon
and decimal-comma CSV of comma-decimal locales and the tab-separated UTF-16 "Unicode text" are read as meant, by the
pre-flight, the clinical table's pseudonymisation and the input manifest alike."""
from __future__ import annotations

import pandas as pd
import pytest

from radflow import csv_dialect
from radflow.pipeline.discover import pseudonymise_clinical, read_input_manifest

ROWS = [["patient_id", "outcome", "survival_time", "patient_name"], ["P1", "1", "12,5", "Müller; Jürgen"],
        ["P2", "0", "3", "Strauß"]]


def written(path, delimiter: str, encoding: str, decimal_comma: bool = True):
    lines = []
    for row in ROWS:
        cells = [c if decimal_comma or c != "12,5" else "12.5" for c in row]
        lines.append(delimiter.join(f'"{c}"' if delimiter in c or ";" in c else c for c in cells))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


@pytest.mark.parametrize("delimiter, encoding, expected", [
    (";", "cp1252", ("cp1252", ";", ",", "Windows-1252 (not UTF-8), semicolon-separated, decimal commas")),
    (";", "utf-8-sig", ("utf-8-sig", ";", ",", "semicolon-separated, decimal commas")),
    ("\t", "utf-16", ("utf-16", "\t", ",", "UTF-16, tab-separated, decimal commas")),
])
def test_spreadsheet_exports_are_recognised_and_read_as_meant(tmp_path, delimiter, encoding, expected):
    path = written(tmp_path / "clinical.csv", delimiter, encoding)
    dialect = csv_dialect.sniff(path)
    assert (dialect.encoding, dialect.delimiter, dialect.decimal, dialect.describe()) == expected
    header, rows = csv_dialect.read_rows(path)
    assert header == ROWS[0]
    assert [r["survival_time"] for r in rows] == ["12.5", "3"]
    assert [r["patient_name"] for r in rows] == ["Müller; Jürgen", "Strauß"]


def test_a_comma_file_keeps_its_decimal_points_and_commas_inside_quotes(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('patient_id,outcome,note\nP1,1,"4,5 cm; left"\nP2,0,x\n', encoding="utf-8")
    dialect = csv_dialect.sniff(path)
    assert (dialect.encoding, dialect.delimiter, dialect.decimal, dialect.describe()) == ("utf-8-sig", ",", ".", None)
    assert csv_dialect.read_rows(path)[1][0]["note"] == "4,5 cm; left"


def test_a_semicolon_file_with_decimal_points_is_not_given_decimal_commas(tmp_path):
    path = written(tmp_path / "c.csv", ";", "utf-8", decimal_comma=False)
    assert csv_dialect.sniff(path).decimal == "."
    assert [r["survival_time"] for r in csv_dialect.read_rows(path)[1]] == ["12.5", "3"]


def test_bytes_that_are_not_even_windows_1252_fall_back_to_latin_1():
    assert csv_dialect.encoding_of("é".encode("utf-8")) == "utf-8-sig"
    assert csv_dialect.encoding_of("é".encode("cp1252")) == "cp1252"
    assert csv_dialect.encoding_of(b"a\x81b") == "latin-1"  # 0x81 is undefined in Windows-1252


def test_clinical_table_from_a_german_excel_is_pseudonymised_with_its_numbers(tmp_path):
    path = written(tmp_path / "klinik.csv", ";", "cp1252")
    pseudonymise_clinical(path, tmp_path / "clinical.parquet", b"a key long enough for the test", keep=None)
    table = pd.read_parquet(tmp_path / "clinical.parquet").sort_values("outcome")
    assert table["survival_time"].tolist() == [3.0, 12.5] and table["outcome"].tolist() == [0, 1]
    assert "patient_name" not in table.columns and "patient_id" not in table.columns


def test_input_manifest_written_with_semicolons(tmp_path):
    (tmp_path / "manifest.csv").write_bytes("patient_id;image;mask\nP1;Bilder/ü.nii.gz;m.nrrd\n".encode("cp1252"))
    rows = read_input_manifest(tmp_path / "manifest.csv")
    assert rows[0]["image"] == str((tmp_path / "Bilder" / "ü.nii.gz").resolve())


def test_manifest_modalities_as_people_write_them(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("patient_id,image,mask,modality\nP1,a.nii,m.nii,PET\nP2,b.nii,m.nii,mri\nP3,c.nii,m.nii,\n")
    assert [row["modality"] for row in read_input_manifest(path)] == ["PT", "MR", "CT"]
    path.write_text("patient_id,image,mask,modality\nP1,a.nii,m.nii,CT\nP2,b.nii,m.nii,SPECT\n")
    with pytest.raises(ValueError, match=r"manifest.csv line 3: modality 'SPECT' is not one of CT, PET \(PT\), MR"):
        read_input_manifest(path)
    path.write_text("patient_id,image,mask,modality\n\nP1,a.nii,m.nii,CT\n\n \nP2,b.nii,m.nii,SPECT\n")
    with pytest.raises(ValueError, match=r"manifest.csv line 6: modality 'SPECT'"):  # empty lines count
        read_input_manifest(path)


def test_a_hand_written_csv_with_spaces_after_the_commas(tmp_path):
    path = tmp_path / "clinical.csv"
    path.write_text("patient_id, outcome , age\nP1, 1, 61\n\nP2, 0, 70\n")
    header, rows = csv_dialect.read_rows(path)
    assert header == ["patient_id", "outcome", "age"] and rows == [
        {"patient_id": "P1", "outcome": "1", "age": "61"}, {"patient_id": "P2", "outcome": "0", "age": "70"}]
    pseudonymise_clinical(path, tmp_path / "c.parquet", b"a key long enough for the test", keep=None)
    table = pd.read_parquet(tmp_path / "c.parquet")
    assert list(table.columns) == ["case_id", "outcome", "age"] and sorted(table["age"]) == [61, 70]


def test_manifest_rows_that_would_put_one_image_s_mask_on_another_are_refused(tmp_path):
    from radflow.dicom.deid import DEMO_KEY
    from radflow.pipeline.discover import cases_from_manifest

    rois = [{"name": "GTV", "pattern": "^gtv"}]
    path = tmp_path / "manifest.csv"
    # a CT and a PET of one patient without a scan column: both would be 'test', the PET and its mask silently lost
    path.write_text("patient_id,image,mask,modality\nP1,ct.nii,ct_m.nii,CT\nP1,pet.nii,pet_m.nii,PET\n")
    with pytest.raises(ValueError, match=r"lines 2, 3: one patient's scan 'test' lists 2 different images; give "
                                         r"each image its own scan label"):
        cases_from_manifest(read_input_manifest(path), rois, DEMO_KEY)
    path.write_text("patient_id,image,mask,roi\nP1,ct.nii,a.nii,GTV\nP1,ct.nii,b.nii,GTV\n")
    with pytest.raises(ValueError, match="lines 2, 3: ROI 'GTV' of one scan is listed twice with different masks"):
        cases_from_manifest(read_input_manifest(path), rois, DEMO_KEY)
    path.write_text("patient_id,image,mask,roi\nP1,ct.nii,a.nii,GTV\nP1,ct.nii,a.nii,GTV\nP1,ct.nii,n.nii,NODE\n")
    (case,) = cases_from_manifest(read_input_manifest(path), rois, DEMO_KEY).values()
    assert [r["roi"] for r in case["scans"][0]["rois"]] == ["GTV", "NODE"]  # the repeated row counts once


def test_a_workbook_saved_under_a_csv_name_is_named_as_such(tmp_path):
    import zipfile

    path = tmp_path / "clinical.csv"
    with zipfile.ZipFile(path, "w") as workbook:  # an .xlsx is a zip archive
        workbook.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(ValueError, match=r"clinical.csv is a spreadsheet workbook \(.xlsx / .xls\), not a CSV file: "
                                         r"save it as CSV"):
        csv_dialect.sniff(path)
