"""The FAIR export of a real small demo run (Snakemake, 12 patients, 2 batches): SHACL shapes, the five SPARQL
questions answered as DuckDB answers them, full-precision values, dataset / run / per-batch activity nodes, the run
crate, `radflow rerun` (reproduces every result table; refuses a tampered input before running) and `radflow diff`.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import rdflib
from rdflib import RDF, URIRef

from conftest import REPO
from radflow.demo import phi_values, write_checksums
from radflow.provenance.shapes import validate

pytestmark = pytest.mark.slow
N_PATIENTS, BATCH_SIZE = 12, 6
NAMESPACE = "https://w3id.org/radflow/demo/"
RO = "http://www.radiomics.org/RO/"
ROO_HAS_VALUE = URIRef("http://www.cancerdata.org/roo/P100042")
PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
RADFLOW = rdflib.Namespace("https://w3id.org/radflow/vocab#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
SHAPES = REPO / "ontology" / "shapes.ttl"
QUERIES = REPO / "ontology" / "queries"
SMALL_MODEL = "model:\n  outer_folds: 2\n  inner_folds: 2\n  outer_repeats: 1\n  n_bootstrap: 20\n  n_permutations: 5\n"


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # rules call `python -m radflow`
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    return env


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    (workdir / "small_model.yaml").write_text(SMALL_MODEL)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--configfile", str(workdir / "small_model.yaml"),
           "--config", f"demo_patients={N_PATIENTS}", f"batch_size={BATCH_SIZE}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def radflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radflow", *args], capture_output=True, text=True, env=_env(),
                          cwd=cwd, timeout=1200)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("fair_run")
    snakemake(workdir)
    return workdir


@pytest.fixture(scope="module")
def graph(run) -> rdflib.Graph:
    return rdflib.Graph().parse(run / "results" / "rdf" / "radflow.ttl")


@pytest.fixture(scope="module")
def con(run):
    connection = duckdb.connect(str(run / "results" / "radflow.duckdb"), read_only=True)
    yield connection
    connection.close()


def _query(graph: rdflib.Graph, name: str, **bindings) -> list[tuple]:
    text = (QUERIES / f"{name}.rq").read_text()
    return [tuple(term.toPython() if term is not None else None for term in row)
            for row in graph.query(text, initBindings=bindings)]


# ---------------------------------------------------------------------------------------------------- SHACL

def test_shacl_conforms_on_the_demo(run):
    report = (run / "results" / "rdf" / "shacl_report.txt").read_text()
    assert "conforms" in report.splitlines()[0] and "VIOLATIONS" not in report
    n_values = duckdb.connect(str(run / "results" / "radflow.duckdb"), read_only=True).execute(
        "SELECT count(*) FROM features").fetchone()[0]
    assert f"feature values checked: {n_values} of {n_values}" in report
    conforms, sampled = validate(run / "results" / "rdf" / "radflow.ttl", SHAPES, NAMESPACE, max_values=500)
    kept = int(sampled.split("feature values checked: ")[1].split()[0])
    assert conforms and 300 < kept < 700 and f"of {n_values} (an even sample)" in sampled


def _broken(graph: rdflib.Graph, tmp_path: Path, remove) -> Path:
    broken = rdflib.Graph()
    for triple in graph:
        broken.add(triple)
    for triple in remove(broken):
        broken.remove(triple)
    path = tmp_path / "broken.nt"  # N-Triples is Turtle
    broken.serialize(path, format="nt", encoding="utf-8")
    return path


def test_a_value_without_its_class_fails_readably(graph, tmp_path):
    value = next(s for s in graph.subjects(RADFLOW.ibsiCode, None))
    ro_types = [(value, RDF.type, t) for t in graph.objects(value, RDF.type) if str(t).startswith(RO)]
    path = _broken(graph, tmp_path, lambda g: ro_types)
    conforms, report = validate(path, SHAPES, NAMESPACE, max_values=10**9)
    assert not conforms
    assert "a feature value needs exactly one Radiomics Ontology class (rdf:type ro:<IBSI code>): 1 node(s)" in report
    assert str(value) in report
    result = radflow("validate-rdf", str(path), str(SHAPES), str(tmp_path / "report.txt"), "--max-values", "1000000")
    assert result.returncode != 0 and "does not conform" in result.stderr
    assert "exactly one Radiomics Ontology class" in result.stderr and not (tmp_path / "report.txt").exists()


def test_settings_without_a_bin_width_fail_readably(graph, tmp_path):
    bins = next(graph.subjects(RDF.type, URIRef(RO + "Q3RU")))
    path = _broken(graph, tmp_path, lambda g: list(g.triples((bins, ROO_HAS_VALUE, None))))
    conforms, report = validate(path, SHAPES, NAMESPACE, max_values=10**9)
    assert not conforms and "fixed-bin-size discretisation needs its bin width" in report


# ------------------------------------------------------------------------------------------ the five questions

def test_stable_ct_features_under_bin_width_25_as_in_duckdb(graph, con):
    expected = con.execute(
        "SELECT DISTINCT s.settings_id, s.roi, s.method, s.ibsi_code, s.aggregation, s.ci_low FROM stability s "
        "JOIN settings USING (settings_id) "
        "WHERE s.ci_low >= 0.75 AND json_extract_string(document, '$.discretisation.texture.method') = "
        "'fixed_bin_size' AND CAST(json_extract(document, '$.discretisation.texture.bin_width') AS DOUBLE) = 25 "
        "AND EXISTS (SELECT 1 FROM stability_cases c JOIN scans USING (case_id) WHERE c.settings_id = s.settings_id "
        "AND c.roi = s.roi AND c.method = s.method AND scans.modality = 'CT') ORDER BY ALL").fetchall()
    assert len(expected) > 10
    assert sorted(_query(graph, "stable_ct_features_bin_width_25")) == sorted(expected)


def test_one_feature_across_centres_as_in_duckdb(graph, con):
    expected = con.execute(
        "SELECT CAST(c.centre AS VARCHAR), f.case_id, f.scan, f.settings_id, f.value FROM features f "
        "JOIN clinical c USING (case_id) WHERE f.ibsi_code = 'RNU0' ORDER BY ALL").fetchall()
    assert len({row[0] for row in expected}) == 2 and len(expected) == 2 * N_PATIENTS
    assert sorted(_query(graph, "feature_across_centres")) == sorted(expected)


def test_software_and_settings_of_a_value_as_in_duckdb(graph, con):
    case_id, scan, roi, settings_id, aggregation = con.execute(
        "SELECT case_id, scan, roi, settings_id, aggregation FROM features WHERE ibsi_code = 'RNU0' ORDER BY ALL "
        "LIMIT 1").fetchone()
    value = URIRef(f"{NAMESPACE}value/{case_id}/{scan}/{roi}/{settings_id}/RNU0/{aggregation}")
    assert (value, RADFLOW.ibsiCode, None) in graph
    answer = _query(graph, "value_provenance", value=value)
    software = con.execute("SELECT package, version FROM software ORDER BY ALL").fetchall()
    document, code_version = con.execute(
        "SELECT document, (SELECT code_version FROM run) FROM settings WHERE settings_id = ?", [settings_id]).fetchone()
    assert sorted((p, v) for p, v, *_ in answer) == software
    assert {(s, d, c) for _, _, s, d, c in answer} == {(settings_id, document, code_version)}


def test_qc_failures_as_in_duckdb(graph, con):
    expected = con.execute(
        "SELECT case_id, NULLIF(scan, ''), NULLIF(roi, ''), check_code, message FROM qc WHERE severity = 'fail' "
        "ORDER BY ALL").fetchall()
    answer = _query(graph, "qc_failures")
    assert sorted(answer, key=str) == sorted(expected, key=str)
    # every QC row is exported, not only the failures
    assert len(set(graph.subjects(RDF.type, RADFLOW.QualityCheck))) == con.execute("SELECT count(*) FROM qc").fetchone()[0]


def test_final_model_features_with_their_icc_as_in_duckdb(graph, con):
    expected = con.execute(
        "SELECT f.model_id, coalesce(f.feature, f.feature_key), f.ibsi_code, f.aggregation, f.roi, f.settings_id, "
        "f.weight, s.method, s.icc, s.ci_low "
        "FROM model_features f LEFT JOIN stability s USING (settings_id, roi, ibsi_code, aggregation) "
        "WHERE f.in_final_model ORDER BY ALL").fetchall()
    assert any(row[8] is not None for row in expected), "the small demo's models should keep radiomics features"
    assert any(row[2] is None for row in expected), "and the combined model clinical ones"
    assert sorted(_query(graph, "final_model_features"), key=str) == sorted(expected, key=str)


# ------------------------------------------------------------------------------------------ values and nodes

def test_values_read_back_bit_for_bit_and_reach_their_scan_label(graph, con):
    rows = con.execute("SELECT case_id, scan, roi, settings_id, ibsi_code, aggregation, value, reason FROM features"
                       ).fetchall()
    answer = graph.query(
        "SELECT ?v ?x ?label WHERE { ?v <http://www.cancerdata.org/roo/P100042> ?x ; "
        "<https://w3id.org/radflow/vocab#ibsiCode> ?code ; <http://www.w3.org/ns/prov#wasDerivedFrom> ?mask . "
        "?mask <http://www.w3.org/ns/prov#wasDerivedFrom> ?scan . ?scan <https://w3id.org/radflow/vocab#scanLabel> ?label }")
    found = {str(v): (float(x), str(label)) for v, x, label in answer}
    assert len(found) == len(rows)
    for case_id, scan, roi, settings_id, code, aggregation, value, _reason in rows:
        slug = "/".join(p.replace(" ", "_").replace(",", "").replace(".", "_")
                        for p in (case_id, scan, roi, settings_id, code, aggregation))
        exported, label = found[f"{NAMESPACE}value/{slug}"]
        assert label == scan
        if value is None or math.isnan(value):
            assert math.isnan(exported)
        else:
            assert struct.pack("<d", exported) == struct.pack("<d", value)


def test_dataset_run_and_one_activity_per_rule_execution(graph, con):
    run_id = con.execute("SELECT run_id FROM run").fetchone()[0]
    dataset = URIRef(f"{NAMESPACE}dataset/{run_id}")
    assert str(graph.value(dataset, DCT.license)) == "https://creativecommons.org/licenses/by/4.0/"
    assert graph.value(dataset, DCT.title) and graph.value(dataset, DCT.creator) and graph.value(dataset, DCT.issued)
    assert {str(s) for s in graph.objects(dataset, DCT.conformsTo)} == {
        "http://www.radiomics.org/RO", "https://doi.org/10.1148/radiol.2020191145"}
    run_node = URIRef(f"{NAMESPACE}run/{run_id}")
    assert graph.value(run_node, PROV.startedAtTime) < graph.value(run_node, PROV.endedAtTime)
    assert str(graph.value(run_node, RADFLOW.codeVersion)).startswith(("git:", "sha256:"))
    seeds = {str(graph.value(s, URIRef("http://schema.org/name"))) for s in graph.objects(run_node, RADFLOW.seed)}
    assert seeds == {"demo", "stability", "model"}
    feature_runs = set(graph.subjects(RDF.type, URIRef(RO + "GFJV")))
    assert len(feature_runs) == N_PATIENTS // BATCH_SIZE  # one per batch, not one per stage
    activities = set(graph.subjects(RDF.type, PROV.Activity))
    assert all(f"/run/{run_id}" in str(a) for a in activities)  # run-unique IRIs
    stability = next(graph.subjects(RDF.type, RADFLOW.StabilityAnalysis))
    assert float(graph.value(stability, RADFLOW.threshold)) == 0.75 and graph.value(stability, RADFLOW.seed)
    ivh = {str(t) for t in graph.objects(None, RDF.type) if "VolumeFraction" in str(t)}
    assert len(ivh) == 4
    settings = next(graph.subjects(RDF.type, URIRef(RO + "CINW")))
    document = str(graph.value(settings, URIRef("https://w3id.org/radflow/vocab#settingsDocument")))
    import hashlib
    assert hashlib.sha256(document.encode()).hexdigest()[:12] == str(graph.value(settings, DCT.identifier))


def test_every_radiomics_ontology_class_used_exists_in_ro_v2(graph):
    classes_csv = REPO.parent / "shared" / "ontology" / "RO_v2.0_classes.csv"
    if not classes_csv.exists():
        pytest.skip(f"{classes_csv} is absent (../shared beside the repository; CI has it)")
    with classes_csv.open() as fh:
        known = {row["iri"] for row in csv.DictReader(fh)}
    used = {str(o) for o in graph.objects(None, RDF.type) if str(o).startswith(RO)}
    used |= {str(o) for o in graph.objects(None, RADFLOW.ofFeature)}
    assert len(used) > 100 and used <= known, sorted(used - known)


def test_rerunning_the_rdf_rule_writes_the_same_bytes(run):
    turtle = run / "results" / "rdf" / "radflow.ttl"
    before = turtle.read_bytes()
    snakemake(run, "--forcerun", "rdf", "--until", "rdf")
    assert turtle.read_bytes() == before


# ----------------------------------------------------------------------------------------------------- crate

def test_crate_describes_the_run_without_source_paths(run, con):
    crate = run / "results" / "crate"
    metadata = json.loads((crate / "ro-crate-metadata.json").read_text())
    entities = {e["@id"]: e for e in metadata["@graph"]}
    root = entities["./"]
    assert {"@id": "https://w3id.org/ro/wfrun/provenance/0.5"} in root["conformsTo"]
    assert root["license"] == {"@id": "https://creativecommons.org/licenses/by/4.0/"} or \
        root["license"] == "https://creativecommons.org/licenses/by/4.0/"
    actions = [e for e in entities.values() if e.get("@type") == "CreateAction"]
    rules = {a["name"] for a in actions}
    assert {"features/b0000", "features/b0001", "store", "rdf", "validate_rdf"} <= rules
    assert all(a.get("startTime") and a.get("endTime") for a in actions)
    tables = {p.stem for p in (crate / "tables").glob("*.parquet")}
    assert {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()} == tables
    n_inputs = con.execute("SELECT count(DISTINCT sha256) FROM inputs").fetchone()[0]
    assert len([e for e in entities if e.startswith("#input-")]) == n_inputs > 2 * N_PATIENTS
    config = json.loads((crate / "config.json").read_text())
    assert config["demo_patients"] == N_PATIENTS and config["model"]["outer_folds"] == 2  # overrides recorded
    text = (crate / "ro-crate-metadata.json").read_text() + (crate / "config.json").read_text()
    assert "resources/demo/dicom/" not in text and str(run) not in text


@pytest.mark.parametrize("profile, skipped", [
    # the profile the crate claims, with what it inherits (RO-Crate 1.1, Workflow RO-Crate 1.0, Process Run Crate)
    ("workflow-run-crate-0.5", {"ro-crate-1.1_3.1", "ro-crate-1.1_3.2"}),
    ("provenance-run-crate-0.5", {"ro-crate-1.1_3.1", "ro-crate-1.1_3.2"}),
    # the RO-Crate version the metadata file names; localPath would say where a patient's input file lies, which the
    # crate withholds on purpose (inputs are named by checksum and pseudonymised case only)
    ("ro-crate-1.3", {"ro-crate-1.3_4.1", "ro-crate-1.3_4.2", "ro-crate-1.2_69.1"}),
])
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")  # rdflib's JSON-LD parser
def test_crate_passes_the_ro_crate_validator(run, profile, skipped):
    """The official validator (roc-validator), every REQUIRED and RECOMMENDED check. Skipped: whether the JSON-LD
    context URL can be downloaded (CI has no network; it is a property of w3id.org, not of the crate), and where said
    above."""
    from rocrate_validator import models, services

    settings = services.ValidationSettings(
        rocrate_uri=str(run / "results" / "crate"), profile_identifier=profile, offline=True,
        requirement_severity=models.Severity.RECOMMENDED, skip_checks=sorted(skipped))
    result = services.validate(settings)
    issues = sorted({(issue.check.identifier, issue.message) for issue in result.get_issues()})
    assert not issues, issues[:10]
    assert result.passed()


def test_no_identifying_value_in_crate_turtle_or_database(run):
    phi = phi_values(run / "resources" / "demo", include_uids=True)
    phi |= {part for value in phi for part in value.split("^") if len(part) >= 4}
    files = [p for p in (run / "results").rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" and "crate" in p.parts for p in files)
    leaks = [(p.name, value) for p in files for value in phi if value.encode() in p.read_bytes()]
    assert not leaks, leaks[:10]


# ---------------------------------------------------------------------------------------------- rerun, diff

def test_rerun_of_the_crate_reproduces_every_result_table(run, tmp_path):
    result = radflow("rerun", str(run / "results" / "crate"), "--out", str(tmp_path / "rerun"))
    assert result.returncode == 0, result.stdout + result.stderr
    for table in ("features", "stability", "predictions", "metrics"):
        assert f"{table}: identical" in result.stdout
    # byte for byte: the values (not only their printed form) are the same
    a = duckdb.connect(str(run / "results" / "radflow.duckdb"), read_only=True)
    b = duckdb.connect(str(tmp_path / "rerun" / "results" / "radflow.duckdb"), read_only=True)
    for table in ("features", "stability", "predictions", "metrics"):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert repr(a.execute(query).fetchall()) == repr(b.execute(query).fetchall())


def test_a_tampered_input_is_refused_before_anything_runs(run, tmp_path):
    inputs = tmp_path / "dicom"
    shutil.copytree(run / "resources" / "demo" / "dicom", inputs)
    tampered = next(p for p in sorted(inputs.rglob("*")) if p.is_file() and p.name.startswith("IM"))
    data = bytearray(tampered.read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    out = tmp_path / "rerun"
    result = radflow("rerun", str(run / "results" / "crate"), "--input-dir", str(inputs),
                     "--clinical", str(run / "resources" / "demo" / "clinical.csv"), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "1 input file(s) of the crate are missing or changed; nothing was run" in result.stderr
    assert "image of case-" in result.stderr
    assert not (out / "results").exists() and not (out / ".snakemake").exists()


def test_diff_says_what_changed_and_why(run, tmp_path):
    database = run / "results" / "radflow.duckdb"
    same = radflow("diff", str(run / "results" / "crate"), str(database))
    assert same.returncode == 0 and "features: identical" in same.stdout
    changed = tmp_path / "changed.duckdb"
    shutil.copy(database, changed)
    con = duckdb.connect(str(changed))
    case_id = con.execute("SELECT min(case_id) FROM features").fetchone()[0]
    con.execute("UPDATE features SET value = value * 1.01 WHERE ibsi_code = 'RNU0' AND case_id = ? AND scan = 'test'",
                [case_id])
    con.execute("UPDATE software SET version = '0.0.0' WHERE package = 'numpy'")
    con.close()
    result = radflow("diff", str(database), str(changed))
    assert result.returncode == 1
    assert "features: 1 rows differ, 0 only in A, 0 only in B" in result.stdout
    assert "morphology: 1 of" in result.stdout and "max relative difference 0.0099" in result.stdout
    assert f"{case_id}: 1 of" in result.stdout
    assert "software numpy:" in result.stdout and "-> 0.0.0" in result.stdout


# ---------------------------------------------------------------------------------- free-text PHI: ROI names

PHI_ROIS = 'rois:\n  - {name: GTV, pattern: "^gtv"}\n  - {name: NODE, pattern: "^node"}\n'


@pytest.fixture(scope="module")
def phi_run(tmp_path_factory) -> tuple[Path, set[str]]:
    """A 2-patient demo whose RTSTRUCT ROI is named `gtv_primary_<surname>` (as found in clinics), and a second
    configured ROI (NODE) that no label matches, so ROI_NOT_FOUND is raised next to the surname label."""
    import pydicom

    workdir = tmp_path_factory.mktemp("phi_run")
    result = radflow("demo-cohort", "resources/demo", "--patients", "2", "--seed", "7", cwd=workdir)
    assert result.returncode == 0, result.stderr
    surnames = set()
    for path in sorted((workdir / "resources" / "demo" / "dicom").rglob("*")):
        if not path.is_file() or path.name == "README.TXT":
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ds.Modality != "RTSTRUCT":
            continue
        surname = str(ds.PatientName.family_name).lower()
        surnames.add(surname)
        for roi in ds.StructureSetROISequence:
            roi.ROIName = f"gtv_primary_{surname}"
        ds.save_as(path)
    assert surnames
    write_checksums(workdir / "resources" / "demo")  # the renamed ROIs are this test's demo data (demo key usable)
    (workdir / "phi_rois.yaml").write_text(PHI_ROIS)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--configfile", str(workdir / "phi_rois.yaml"), "--config", "demo_patients=2", "batch_size=2"]
    for extra in ([], ["--report", str(workdir / "results" / "report.html")]):
        result = subprocess.run(cmd + extra, capture_output=True, text=True, env=_env(), timeout=1200)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, surnames


def test_roi_names_with_a_surname_do_not_reach_results(phi_run):
    workdir, surnames = phi_run
    con = duckdb.connect(str(workdir / "results" / "radflow.duckdb"), read_only=True)
    names = {n for (n,) in con.execute("SELECT DISTINCT source_roi_name FROM masks WHERE source = 'RTSTRUCT'"
                                       ).fetchall()}
    assert names and all(n.startswith("label-") for n in names)  # keyed ids, the same label gives the same id
    not_found = con.execute("SELECT message FROM qc WHERE check_code = 'ROI_NOT_FOUND' AND roi = 'NODE'").fetchall()
    assert not_found and all("label(s)" in m for (m,) in not_found)
    # ... while the interim inventory (never exported) keeps the names for the data owner
    (inventory,) = (workdir / "interim" / "inventory").glob("*.json")  # one per input folder
    assert any(s in inventory.read_text() for s in surnames)
    phi = phi_values(workdir / "resources" / "demo", include_uids=True)
    phi |= {part for value in phi for part in value.split("^") if len(part) >= 4} | surnames
    phi |= {s.upper() for s in surnames} | {s.capitalize() for s in surnames}
    files = [p for p in (workdir / "results").rglob("*") if p.is_file()]
    assert any(p.name == "qc_summary.html" for p in files) and any(p.name == "report.html" for p in files)
    assert any(p.suffix == ".png" and "overlays" in p.parts for p in files)
    leaks = [(p.name, value) for p in files for value in phi if value.encode() in p.read_bytes()]
    assert not leaks, leaks[:10]
    report = (workdir / "results" / "report.html").read_text(errors="replace")
    assert str(workdir) not in report  # no absolute path of the working directory or the inputs


def test_qc_failures_as_in_duckdb_on_a_run_with_failures(phi_run):
    workdir, _ = phi_run
    graph = rdflib.Graph().parse(workdir / "results" / "rdf" / "radflow.ttl")
    con = duckdb.connect(str(workdir / "results" / "radflow.duckdb"), read_only=True)
    expected = con.execute(
        "SELECT case_id, NULLIF(scan, ''), NULLIF(roi, ''), check_code, message FROM qc WHERE severity = 'fail' "
        "ORDER BY ALL").fetchall()
    assert any(code == "ROI_NOT_FOUND" for *_, code, _ in expected)
    assert sorted(_query(graph, "qc_failures"), key=str) == sorted(expected, key=str)


def test_the_export_states_the_engines_ibsi_self_test(graph):
    if not (REPO.parent / "shared" / "ibsi" / "digital_phantom").exists():
        pytest.skip("../shared/ibsi is absent (CI has it)")
    (node,) = set(graph.subjects(RDF.type, RADFLOW.IbsiSelfTest))
    assert int(graph.value(node, RADFLOW.referenceValues)) == 482
    assert int(graph.value(node, RADFLOW.passedValues)) == 482  # the IBSI tests hold every value to its tolerance
    assert (None, PROV.used, node) in graph
