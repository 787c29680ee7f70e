"""Pre-flight checks when Snakemake builds the DAG (radflow.preflight via rules/common.smk): real `snakemake` runs on
non-demo input that stop before any job with one line naming the reason, and the notes said once when the clinical
table cannot support every configured step."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from radflow.preflight import effective_model, kept_clinical_columns, plan

KEY = "preflight-test-key: long enough"
DEMO_MODEL = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["model"]


def snakemake(workdir: Path, *args: str, key: str | None = KEY, dry_run: bool = False):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    if key:
        env["RADFLOW_PSEUDONYM_KEY"] = key
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "1",
           *(["-n"] if dry_run else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def own_data(tmp_path) -> Path:
    """A folder with one (empty) DICOM input folder, a clinical CSV and a valid settings file."""
    (tmp_path / "dicom").mkdir()
    (tmp_path / "clinical.csv").write_text("patient_id,outcome\nP1,1\n")
    return tmp_path


def assert_stopped_before_any_job(result, workdir: Path, message: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert f"radflow: error: {message}" in result.stderr, output[-3000:]
    assert "Traceback" not in output and "Error in rule" not in output
    assert "Job stats" not in output and not (workdir / "interim").exists() and not (workdir / "results").exists()


def test_no_key_on_own_data_is_one_line_before_any_job(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=clinical.csv", key=None)
    assert_stopped_before_any_job(result, own_data, "no pseudonymisation key: set $RADFLOW_PSEUDONYM_KEY")
    errors = [line for line in result.stderr.splitlines() if line.startswith("radflow: error:")]
    assert len(errors) == 1


def test_missing_input_dir_is_an_error_even_beside_earlier_results(own_data):
    (own_data / "interim").mkdir()
    (own_data / "interim" / "inventory.json").write_text('{"batches": {}}')  # an earlier run's inventory
    result = snakemake(own_data, "--config", "input_dir=/nonexistent/lung_ct", "clinical=null")
    assert result.returncode == 2
    assert "radflow: error: input_dir /nonexistent/lung_ct does not exist or is not a folder" in result.stderr
    assert "Nothing to be done" not in result.stdout + result.stderr


def test_settings_typo_names_file_and_key_before_any_job(own_data):
    (own_data / "typo.yaml").write_text("discretisation:\n  texture: {method: fixed_bin_size, bin_widht: 25}\n")
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=null", "features=[typo.yaml]")
    assert_stopped_before_any_job(result, own_data, "features: typo.yaml: unknown settings key "
                                                    "discretisation.texture.'bin_widht'")


def test_missing_settings_file(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=null", "features=[nothere.yaml]")
    assert_stopped_before_any_job(result, own_data, "features: settings file nothere.yaml does not exist")


def test_roi_pattern_that_does_not_compile(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=null",
                       'rois=[{"name": "GTV", "pattern": "gtv[0-9"}]')
    assert_stopped_before_any_job(result, own_data, "rois[0] (GTV): pattern 'gtv[0-9' is not a regular expression")


def test_sequence_pattern_that_does_not_compile(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=null",
                       'series={"sequences": [{"name": "t2w", "pattern": "t2("}]}')
    assert_stopped_before_any_job(result, own_data, "series.sequences item 1: pattern 't2(' is not a regular "
                                                    "expression")


def test_missing_clinical_file(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=/nonexistent/clinical.csv")
    assert_stopped_before_any_job(result, own_data, "clinical table /nonexistent/clinical.csv does not exist")


def test_clinical_file_without_patient_id(own_data):
    (own_data / "bad.csv").write_text("subject,outcome\nP1,1\n")
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=bad.csv")
    assert_stopped_before_any_job(result, own_data, "clinical table bad.csv has no patient_id column")


def test_clinical_null_is_no_table_and_skips_modelling(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=null", dry_run=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "radflow: note: no clinical table: discovery, QC, features and stability only; modelling skipped" \
        in result.stderr
    jobs = result.stdout.split("Job stats:")[1].split("total")[0]
    assert "discover" in jobs and "clinical" not in jobs and "model" not in jobs
    assert "Missing input files" not in result.stdout + result.stderr


def test_the_demo_clinical_table_is_not_used_for_own_data(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", dry_run=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "clinical is the demo table resources/demo/clinical.csv, which does not describe input_dir" in result.stderr
    assert "Missing input files" not in result.stdout + result.stderr


def test_model_disabled_skips_the_model_rule(own_data, tmp_path):
    configfile = tmp_path / "c.yaml"
    configfile.write_text(yaml.safe_dump({"input_dir": "dicom", "clinical": "clinical.csv",
                                          "model": {"enabled": False}}))
    result = snakemake(own_data, "--configfile", str(configfile), dry_run=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "radflow: note: model.enabled is false: modelling skipped" in result.stderr
    jobs = result.stdout.split("Job stats:")[1].split("total")[0]
    assert "clinical" in jobs and "model" not in jobs


def test_demo_needs_no_key_and_has_no_notes(tmp_path):
    result = snakemake(tmp_path, "--config", "demo_patients=2", key=None, dry_run=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "radflow: error" not in result.stderr and "radflow: note" not in result.stderr


# --- the decisions themselves, without Snakemake ------------------------------------------------------------------

def _plan(tmp_path, clinical_text: str | None, **overrides):
    (tmp_path / "dicom").mkdir(exist_ok=True)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(input_dir=str(tmp_path / "dicom"), **overrides)
    if clinical_text is not None:
        (tmp_path / "clinical.csv").write_text(clinical_text)
        config["clinical"] = str(tmp_path / "clinical.csv")
    os.environ.setdefault("RADFLOW_PSEUDONYM_KEY", KEY)
    return plan(config, demo=False, where=lambda p: p if os.path.exists(p) else str(REPO / p))


def test_only_patient_id_and_outcome_models_the_outcome_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", KEY)
    result = _plan(tmp_path, "patient_id,outcome\nP1,1\n")
    assert result.errors == [] and result.modelling
    assert result.model["outcome"] == "outcome" and result.model["centre"] is None
    assert result.model["survival_time"] is None and result.model["covariates"] == []
    assert result.model["harmonisation"]["method"] == "none" and result.model["held_out_centre"] is None
    assert all(m.endswith("/radiomics") for m in result.model["binary_models"])
    assert result.clinical_keep == ["outcome"]
    notes = "\n".join(result.notes)
    for said in ("no survival column(s)", "no centre column 'centre': one centre assumed, so no ComBat",
                 "no covariate column(s) ['age', 'sex']; clinical and combined models dropped"):
        assert notes.count(said) == 1, notes


def test_no_outcome_and_no_survival_means_no_model(tmp_path, monkeypatch):
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", KEY)
    result = _plan(tmp_path, "patient_id,centre\nP1,A\n")
    assert not result.modelling
    assert sum("modelling skipped" in n for n in result.notes) == 1


def test_clinical_keep_and_identifying_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", KEY)
    header = "patient_id,outcome,centre,age,sex,stage,smoker,PatientName,Birth Date,notes\n"
    result = _plan(tmp_path, header + "P1,1,A,60,F,II,yes,DOE^J,19600101,x\n", clinical_keep=["stage", "notes"])
    assert result.clinical_keep == ["outcome", "centre", "age", "sex", "stage", "notes"]
    summary = next(n for n in result.notes if "kept" in n)
    assert "1 column(s) not named in the configuration dropped (smoker" in summary
    assert "3 identifying column(s) dropped (PatientName, Birth Date, notes)" in summary


def test_a_cluster_job_makes_the_main_process_decisions(tmp_path, monkeypatch):
    """A Slurm job re-reads the Snakefile (not the main process): its rules' params (clinical columns kept, model
    options, whether models are stored) must be the main process's, or the job writes other results."""
    monkeypatch.setenv("RADFLOW_PSEUDONYM_KEY", KEY)
    (tmp_path / "dicom").mkdir()
    (tmp_path / "clinical.csv").write_text("patient_id,outcome,age\nP1,1,60\n")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(input_dir=str(tmp_path / "dicom"), clinical=str(tmp_path / "clinical.csv"))
    where = lambda p: p if os.path.exists(p) else str(REPO / p)  # noqa: E731
    main, job = (plan(config, demo=False, where=where, main_process=m) for m in (True, False))
    assert main.notes and not main.errors
    assert (job.clinical, job.clinical_keep, job.model, job.modelling) == (
        main.clinical, main.clinical_keep, main.model, main.modelling)
    assert main.clinical_keep == ["outcome", "age"] and main.modelling


def test_effective_model_with_every_column_changes_nothing():
    header = ["patient_id", "outcome", "survival_time", "event", "centre", "age", "sex"]
    model, notes = effective_model(DEMO_MODEL, header, "clinical.csv")
    assert model == DEMO_MODEL and notes == []
    assert kept_clinical_columns(model, []) == ["outcome", "survival_time", "event", "centre", "age", "sex"]


def test_retest_note_after_discovery():
    from radflow.preflight import retest_note

    def case(*scans):
        return {"scans": [{"scan": s} for s in scans]}

    no_retest = {"batches": {"b0": [case("test"), case("test")], "b1": [case("test", "retest")]}}
    note = retest_note(no_retest, ["test-retest"])
    assert "1 of 3 cases have both a test and a retest scan" in note and "stability.method: perturbation" in note
    assert retest_note(no_retest, ["perturbation"]) is None
    enough = {"batches": {"b0": [case("test", "retest"), case("retest", "test")]}}
    assert retest_note(enough, ["test-retest", "segmentation"]) is None


def test_stability_after_discovery_replaces_test_retest_only_when_configured():
    from radflow.preflight import stability_after_discovery

    inventory = {"batches": {"b0": [{"scans": [{"scan": "test"}]}, {"scans": [{"scan": "test"}]}]}}
    methods, note = stability_after_discovery(inventory, ["test-retest"], "message")
    assert methods == ["test-retest"] and "set stability.method: perturbation" in note
    methods, note = stability_after_discovery(inventory, ["test-retest", "segmentation"], "perturbation")
    assert methods == ["perturbation", "segmentation"]
    assert note.endswith("0 of 2 cases have both a test and a retest scan: perturbation stability instead "
                         "(stability.without_retest)")
    methods, _ = stability_after_discovery(inventory, ["test-retest", "perturbation"], "perturbation")
    assert methods == ["perturbation"]


def test_an_invalid_configuration_value_is_one_line_naming_the_key(own_data):
    result = snakemake(own_data, "--config", "input_dir=dicom", "batch_size=0")
    assert_stopped_before_any_job(result, own_data, "config batch_size: 0 is less than the minimum of 1")


def test_outcome_coded_one_two_stops_the_run_before_any_job(own_data):
    (own_data / "coded.csv").write_text("patient_id,outcome\nP1,1\nP2,2\nP3,2\n")
    result = snakemake(own_data, "--config", "input_dir=dicom", "clinical=coded.csv")
    assert_stopped_before_any_job(result, own_data, "coded.csv: clinical column 'outcome' must be coded 0/1 "
                                                    "(1 = the outcome of interest) or true/false; it holds '2'.")


def test_survival_columns_coded_as_words_or_negative_times_are_errors(tmp_path):
    result = _plan(tmp_path, "patient_id,outcome,survival_time,event\nP1,1,12.5,dead\nP2,0,-3,alive\nP3,,7,\n")
    assert result.errors == [
        "clinical.csv: clinical column 'event' must be coded 0/1 (1 = the event happened) or true/false; it holds "
        "'alive', 'dead'. Recode it: radflow does not guess which value means what",
        "clinical.csv: clinical column 'survival_time' must hold survival times as numbers >= 0; 1 value(s) are "
        "not: '-3'"]


def test_zero_one_true_false_and_empty_cells_pass(tmp_path):
    result = _plan(tmp_path, "patient_id,outcome,survival_time,event\nP1,1,12.5,TRUE\nP2,0.0,0,false\nP3,,,\n")
    assert result.errors == [] and result.modelling


def test_a_windows_1252_semicolon_clinical_table_is_read_and_said_once(tmp_path):
    (tmp_path / "dicom").mkdir()
    (tmp_path / "clinical.csv").write_bytes(
        "patient_id;outcome;survival_time;event;patient_name\nP1;1;12,5;1;Müller\nP2;0;3,25;0;Strauß\n".encode("cp1252"))
    result = _plan(tmp_path, None, clinical=str(tmp_path / "clinical.csv"))
    assert result.errors == [] and result.modelling
    assert "clinical.csv read as Windows-1252 (not UTF-8), semicolon-separated, decimal commas" in result.notes


def test_a_covariate_written_with_units_is_said_to_become_categories(tmp_path):
    lines = ["patient_id,outcome,age,sex"] + [f"P{i},{i % 2},{60 + i} y,{'MF'[i % 2]}" for i in range(6)]
    result = _plan(tmp_path, "\n".join(lines) + "\nP9,1,,M\n")
    assert result.errors == []
    assert "clinical.csv: covariate 'age' holds numbers written with text (e.g. '60 y'): it is used as 6 " \
           "categories, not as a number; write the numbers alone to use it as one" in result.notes
    assert not any("'sex'" in note for note in result.notes)


def test_a_held_out_centre_that_is_not_in_the_centre_column_is_an_error(tmp_path):
    text = "patient_id,outcome,centre\nP1,1,Leiden\nP2,0,Maastricht\n"
    model = {**DEMO_MODEL, "held_out_centre": "Leyden"}
    result = _plan(tmp_path, text, model=model)
    assert result.errors == ["clinical.csv: model.held_out_centre 'Leyden' is not a value of the centre column "
                             "'centre' ('Leiden', 'Maastricht')"]
    assert _plan(tmp_path, text, model={**DEMO_MODEL, "held_out_centre": "Leiden"}).errors == []


def test_scans_no_settings_document_is_meant_for_are_said_after_discovery():
    from radflow.preflight import settings_coverage_note

    scan = {"modality": "MR"}
    inventory = {"batches": {"b0": [{"case_id": "c1", "scans": [scan, {"modality": "PT"}, {"modality": "CT"}]},
                                    {"case_id": "c2", "scans": [scan, {}]},  # {}: a manifest image, taken as CT
                                    {"case_id": "c3", "scans": [{"modality": "", "error": "NO_IMAGE_SERIES"}]}]}}
    ct = [str(REPO / "config" / "settings" / "ct_iso1mm_fbs25.yaml")]
    assert settings_coverage_note(inventory, ct) == (
        "features: no settings document is meant for 2 MR and 1 PT scan(s), which get no features; add "
        "config/settings/mr_zscore_fbn32.yaml and config/settings/pet_suv.yaml (or your own) or a generic one to "
        "`features`")
    mr = str(REPO / "config" / "settings" / "mr_zscore_fbn32.yaml")
    pet = str(REPO / "config" / "settings" / "pet_suv.yaml")
    assert settings_coverage_note(inventory, [*ct, mr, pet]) is None
    assert settings_coverage_note(inventory, [mr, pet]) == (  # the failed scan (c3) is not counted
        "features: no settings document is meant for 2 CT scan(s), which get no features; add "
        "config/settings/ct_iso1mm_fbs25.yaml (or your own) or a generic one to `features`")


def test_paths_with_spaces_and_a_home_tilde_reach_the_rules_intact(tmp_path):
    """A key file and a mapping file in folders with spaces are quoted in the rules' commands; ~ is expanded."""
    home = tmp_path / "home"
    (home / "my data" / "dicom").mkdir(parents=True)
    keys = tmp_path / "my keys"
    keys.mkdir()
    (keys / "key.txt").write_text(KEY)
    configfile = tmp_path / "c.yaml"
    configfile.write_text(yaml.safe_dump({
        "input_dir": "~/my data/dicom", "clinical": None,
        "pseudonymisation": {"key_file": str(keys / "key.txt"), "mapping_file": str(keys / "ids map.csv")}}))
    env = dict(os.environ, HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                             str(tmp_path / "work"), "-c", "1", "-n", "-p", "--configfile", str(configfile)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"--key-file '{keys / 'key.txt'}'" in result.stdout
    assert f"--mapping-file '{keys / 'ids map.csv'}'" in result.stdout
    assert f"'{home / 'my data' / 'dicom'}'" in result.stdout


def test_rows_without_a_centre_are_said_to_form_their_own_batch(tmp_path):
    result = _plan(tmp_path, "patient_id,outcome,centre\nP1,1,A\nP2,0,\nP3,1,B\n")
    assert "clinical.csv: 1 row(s) have no value in the centre column 'centre': their cases form one ComBat batch " \
           "of their own, '(no centre)'" in result.notes


def test_a_checkout_in_a_folder_with_spaces_runs_its_rules_from_there(tmp_path):
    """Every rule's command sets PYTHONPATH to the checkout's workflow/: quoted, so a clone in 'My Projects' works."""
    import shutil

    checkout = tmp_path / "My Projects" / "radflow"
    for part in ("Snakefile", "rules", "config", "workflow", "envs", "ontology"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, checkout / part, ignore=shutil.ignore_patterns("__pycache__", "_aot"))
        else:
            checkout.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / part)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(checkout / "Snakefile"), "--directory",
                             str(tmp_path / "work"), "-c", "1", "-n", "-p", "--config", "demo_patients=2"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"PYTHONPATH='{checkout / 'workflow'}'" in result.stdout


def test_an_excel_workbook_as_the_clinical_table_is_one_line(tmp_path):
    (tmp_path / "dicom").mkdir()
    (tmp_path / "clinical.xlsx").write_bytes(b"PK\x03\x04" + bytes(200))
    result = _plan(tmp_path, None, clinical=str(tmp_path / "clinical.xlsx"))
    assert result.errors == ["clinical table clinical.xlsx is a spreadsheet workbook (.xlsx / .xls), not a CSV file: "
                             "save it as CSV (File > Save As > CSV UTF-8)"]


@pytest.mark.parametrize("written, said", [
    (KEY.encode() + b"\n", None),  # a Unix line end: stripped, as always
    (KEY.encode() + b"\r\n", "ends with a Windows line end"),
    (b"\xef\xbb\xbf" + KEY.encode(), "starts with a byte-order mark"),
])
def test_a_key_file_s_invisible_bytes_are_said_not_changed(tmp_path, written, said):
    """A key file saved by Windows Notepad keeps its carriage return (or byte-order mark) in the key: the same
    secret from the environment gives other case ids. Said once before the run; the key itself stays the file's
    bytes, so studies already run with such a file keep their case ids."""
    from radflow.dicom.deid import load_key

    (tmp_path / "key.txt").write_bytes(written)
    result = _plan(tmp_path, None, clinical=None, pseudonymisation={
        "key_env": "RADFLOW_PSEUDONYM_KEY", "key_file": str(tmp_path / "key.txt"), "mapping_file": None,
        "dates": "shift", "missing_patient_id": "fail"})
    assert result.errors == []
    notes = [n for n in result.notes if "pseudonymisation key file" in n]
    if said is None:
        assert notes == []
    else:
        assert len(notes) == 1 and said in notes[0] and "those bytes are part of the key" in notes[0]
    assert load_key(key_file=tmp_path / "key.txt") == written.removesuffix(b"\n")  # unchanged: the file's bytes
