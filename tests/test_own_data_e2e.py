"""A user's own DICOM folder with a minimal clinical CSV (patient_id, an outcome, and columns that must not leak):
a real `snakemake` run that models the outcome alone (no centre, no covariates: said once), keeps only the
configured clinical columns, and whose database exports as one row per case."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import REPO
from radflow.demo import write_cohort

pytestmark = pytest.mark.slow
KEY = "own-data-test-key: a long enough secret"
ARCHIVE = "DOE_JOHN_lung_archive"


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("own")
    archive = workdir / ARCHIVE  # an absolute path whose folder names a person, as archives often do
    write_cohort(archive, n_patients=3, seed=11)
    with (archive / "clinical.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (workdir / "clinical.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["patient_id", "outcome", "Patient Name", "Birth Date", "stage"])
        for i, row in enumerate(rows):
            writer.writerow([row["patient_id"], row["outcome"], f"DOE^PATIENT{i}", f"1950010{i}", "II"])
    env = dict(os.environ, RADFLOW_PSEUDONYM_KEY=KEY)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--config", f"input_dir={archive / 'dicom'}", f"clinical={workdir / 'clinical.csv'}", "batch_size=3"]
    for extra in ([], ["--report", str(workdir / "results" / "report.html")]):
        result = subprocess.run(cmd + extra, capture_output=True, text=True, env=env, timeout=900)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, result


def test_missing_columns_are_said_once_before_the_jobs(own_run):
    _, result = own_run
    stderr = result.stderr
    first_job = stderr.find("rule ") if "rule " in stderr else len(stderr)
    for note in ("no centre column 'centre': one centre assumed", "no covariate column(s) ['age', 'sex']",
                 "no survival column(s)", "kept 1 clinical column(s) (outcome)"):
        assert stderr.count(note) == 1, stderr[:3000]
        assert stderr.find(note) < first_job


def test_only_the_configured_clinical_columns_reach_the_database(own_run):
    workdir, _ = own_run
    con = duckdb.connect(str(workdir / "results" / "radflow.duckdb"), read_only=True)
    try:
        columns = [r[0] for r in con.execute("DESCRIBE clinical").fetchall()]
        assert columns == ["case_id", "outcome"]
        assert con.execute("SELECT count(*) FROM clinical JOIN cases USING (case_id)").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM models").fetchone()[0] >= 1  # the model rule ran (no KeyError)
    finally:
        con.close()
    for path in (workdir / "results").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"DOE^PATIENT" not in data and b"19500100" not in data, path


def test_no_result_and_not_the_snakemake_report_names_the_input_folders(own_run):
    """The input paths are the user's (a folder may name a patient or a study): never in results/, the RDF, the
    crate or `snakemake --report`'s HTML (which lists every rule's inputs)."""
    workdir, _ = own_run
    files = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in files) and any(p.suffix == ".ttl" for p in files)
    leaks = [p.relative_to(workdir) for p in files if ARCHIVE.encode() in p.read_bytes()
             or str(workdir / "clinical.csv").encode() in p.read_bytes()]
    assert not leaks, leaks


def test_the_database_exports_one_row_per_case(own_run, tmp_path):
    workdir, _ = own_run
    out = tmp_path / "wide.parquet"
    result = subprocess.run([sys.executable, "-m", "radflow", "export", "wide",
                             str(workdir / "results" / "radflow.duckdb"), "--clinical", "-o", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(out)
    assert len(table) == 3 and table["case_id"].is_unique and "clinical.outcome" in table.columns
    sidecar = pd.read_csv(out.with_name(out.name + ".columns.csv"))
    assert len(sidecar) == table.shape[1] - 3 and sidecar["ibsi_code"].notna().all()


def test_a_rerun_without_clinical_table_leaves_no_earlier_models(own_run):
    """Runs last (it changes the run folder): the earlier run's models and clinical rows do not pass for this run's."""
    workdir, _ = own_run
    env = dict(os.environ, RADFLOW_PSEUDONYM_KEY=KEY)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--config", f"input_dir={workdir / ARCHIVE / 'dicom'}", "clinical=null", "batch_size=3"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "modelling skipped" in result.stderr
    con = duckdb.connect(str(workdir / "results" / "radflow.duckdb"), read_only=True)
    try:
        for table in ("models", "metrics", "predictions", "clinical"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        assert con.execute("SELECT count(*) FROM features").fetchone()[0] > 0
    finally:
        con.close()


def test_a_cohort_without_retest_scans_falls_back_to_perturbation_when_configured(tmp_path):
    import json
    import shutil

    import yaml

    write_cohort(tmp_path / "archive", n_patients=2, seed=5)
    env = dict(os.environ, RADFLOW_PSEUDONYM_KEY=KEY)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump({
        "input_dir": "archive/dicom", "clinical": None,
        "stability": {"without_retest": "perturbation", "perturbation": {"n_perturbations": 3}}}))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "-c", "2",
           "--configfile", str(configfile)]
    subprocess.run([*cmd, "--until", "discover"], capture_output=True, text=True, env=env, timeout=300, check=True)
    (inventory_file,) = (tmp_path / "interim" / "inventory").glob("*.json")  # one per input folder
    inventory = json.loads(inventory_file.read_text())
    for case in (c for batch in inventory["batches"].values() for c in batch):
        for scan in case["scans"]:
            if scan["scan"] == "retest":
                shutil.rmtree(tmp_path / os.path.dirname(scan["files"][0]))  # this cohort was never rescanned
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert result.stderr.count("0 of 2 cases have both a test and a retest scan: perturbation stability instead") == 1
    con = duckdb.connect(str(tmp_path / "results" / "radflow.duckdb"), read_only=True)
    try:
        methods = con.execute("SELECT method, count(*), count(icc) FROM stability GROUP BY 1").fetchall()
    finally:
        con.close()
    assert [m[0] for m in methods] == ["perturbation"] and methods[0][2] > 0.9 * methods[0][1]
