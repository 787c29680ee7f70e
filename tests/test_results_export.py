"""``radflow.open_results`` / ``radflow.wide`` and ``radflow export wide`` on a real DuckDB file loaded by the store
from per-batch Parquet files, with feature values computed by ``radflow.extract`` on the IBSI digital phantom."""
from __future__ import annotations

import subprocess
import sys

import duckdb
import pandas as pd
import pytest
import SimpleITK as sitk

import radflow
from conftest import REPO
from ibsi_reference import IBSI
from radflow import store
from radflow.settings import Settings

PHANTOM = IBSI / "digital_phantom"
SETTINGS = REPO / "config" / "ibsi" / "digital_phantom.yaml"


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    if not PHANTOM.exists():
        pytest.skip("../shared/ibsi is absent")
    root = tmp_path_factory.mktemp("results")
    image = sitk.ReadImage(str(PHANTOM / "image.nii.gz"))
    mask = sitk.ReadImage(str(PHANTOM / "mask.nii.gz"))
    settings = Settings.from_yaml(SETTINGS)
    settings.doc["families"] = ["morphology", "statistics", "glcm"]  # smaller; the values do not change
    settings = Settings.from_dict(settings.doc, name="phantom")
    shrunk = sitk.BinaryErode(mask != 0, [1, 1, 0])
    per_case = {"case-aaaaaaaaaaaa": mask, "case-bbbbbbbbbbbb": shrunk}
    rows = []
    expected = {}
    for case_id, case_mask in per_case.items():
        frame = radflow.extract(image, case_mask, settings)
        expected[case_id] = frame
        for scan in ("test", "retest"):
            rows.append(frame.assign(case_id=case_id, scan=scan, roi="GTV", settings_id=settings.settings_id,
                                     reason=None))
    batch = root / "batch-0000"
    batch.mkdir()
    pd.concat(rows)[store.columns("features")].to_parquet(batch / "features.parquet")
    cases = pd.DataFrame({"case_id": list(per_case), "n_scans": 2, "status": "pass"})
    cases.to_parquet(batch / "cases.parquet")
    for table in ("scans", "masks", "qc"):
        store.empty_frame(table).to_parquet(batch / f"{table}.parquet")
    store.empty_frame("qc").to_parquet(batch / "features_qc.parquet")
    clinical = pd.DataFrame({"case_id": list(per_case), "outcome": [1, 0], "age": [61.0, 70.5]})
    path = root / "radflow.duckdb"
    store.load_results(path, [batch], [{"settings_id": settings.settings_id, "name": settings.name,
                                        "document": settings.doc}], clinical, {"radflow": "test"}, [])
    return path, settings.settings_id, expected


def test_open_results_is_read_only(database):
    path, _, _ = database
    con = radflow.open_results(path)
    try:
        assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 2
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM cases")
        documented = set(radflow.results.TABLES)
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert present <= documented, present - documented
    finally:
        con.close()


def test_open_results_names_a_missing_database(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results database"):
        radflow.open_results(tmp_path / "nothing.duckdb")


def test_wide_has_one_row_per_case_and_roi_with_the_extracted_values(database):
    path, settings_id, expected = database
    con = radflow.open_results(path)
    try:
        table = radflow.wide(con, settings_id, "test")
    finally:
        con.close()
    assert list(table[["case_id", "roi"]].itertuples(index=False, name=None)) == [
        ("case-aaaaaaaaaaaa", "GTV"), ("case-bbbbbbbbbbbb", "GTV")]
    for case_id, frame in expected.items():
        row = table.set_index("case_id").loc[case_id]
        for feature in frame.itertuples():
            name = radflow.results.column_name(feature.family, feature.feature, feature.aggregation)
            assert row[name] == feature.value or (pd.isna(row[name]) and pd.isna(feature.value)), name
    assert "morphology.volume_mesh.none" in table.columns
    assert "glcm.joint_maximum.3d_averaged" in table.columns
    assert "glcm.joint_maximum.2_5d_direction_merged" in table.columns
    assert table.shape[1] == 2 + len(expected["case-aaaaaaaaaaaa"])


def test_wide_refuses_an_unknown_settings_id_or_scan(database):
    path, settings_id, _ = database
    con = radflow.open_results(path)
    try:
        with pytest.raises(ValueError, match="no settings id"):
            radflow.wide(con, "nope", "test")
        with pytest.raises(ValueError, match="scans: \\['retest', 'test'\\]"):
            radflow.wide(con, settings_id, "baseline")
    finally:
        con.close()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_wide_writes_the_table_its_sidecar_and_the_clinical_columns(database, tmp_path, suffix):
    path, settings_id, expected = database
    out = tmp_path / f"features{suffix}"
    result = subprocess.run([sys.executable, "-m", "radflow", "export", "wide", str(path), "--settings-id",
                             settings_id, "--scan", "retest", "--clinical", "-o", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    sidecar = pd.read_csv(out.with_name(out.name + ".columns.csv"))
    assert list(sidecar.columns) == ["column", "family", "feature", "ibsi_code", "aggregation"]
    assert list(table.columns) == ["case_id", "roi", *sidecar["column"], "clinical.outcome", "clinical.age"]
    assert list(table["clinical.outcome"]) == [1, 0]
    volume = sidecar.set_index("ibsi_code").loc["RNU0", "column"]
    want = expected["case-bbbbbbbbbbbb"].set_index("ibsi_code").loc["RNU0", "value"]
    assert table.set_index("case_id").loc["case-bbbbbbbbbbbb", volume] == want


def test_export_wide_error_is_one_line(database, tmp_path):
    path, _, _ = database
    result = subprocess.run([sys.executable, "-m", "radflow", "export", "wide", str(path), "--settings-id", "nope",
                             "-o", str(tmp_path / "x.csv")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("radflow: error: no settings id 'nope'")
    assert "Traceback" not in result.stderr
