"""End to end: real `snakemake` runs of the whole workflow on a tiny demo cohort in a temporary directory.

Checks the DuckDB tables, parses the Turtle, greps every result file for the demo's identifying values, shows that
a second run changes nothing and a forced store rerun duplicates nothing, and that a broken case fails in QC while
the others get their features.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import rdflib

from conftest import REPO
from radflow.demo import phi_values
from radflow.features import registry

pytestmark = pytest.mark.slow
N_PATIENTS = 3


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # rules call `python -m radflow`
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--config", f"demo_patients={N_PATIENTS}", "batch_size=2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if check:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def table_digest(database: Path) -> dict[str, str]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        digests = {}
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall():
            rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            digests[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return digests
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("demo_run")
    result = snakemake(workdir)
    (workdir / "terminal.txt").write_text(result.stdout + result.stderr)
    return workdir


def test_database_holds_every_case_scan_and_family(demo_run):
    con = duckdb.connect(str(demo_run / "results" / "radflow.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == N_PATIENTS
    assert con.execute("SELECT count(*) FROM scans WHERE status != 'fail'").fetchone()[0] == 2 * N_PATIENTS
    assert con.execute("SELECT count(*) FROM clinical").fetchone()[0] == N_PATIENTS
    per_scan = con.execute(
        "SELECT case_id, scan, count(DISTINCT family) FROM features GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert len(per_scan) == 2 * N_PATIENTS
    assert all(n_families == len(registry.FAMILIES) for _, _, n_families in per_scan)
    duplicates = con.execute(
        "SELECT count(*) FROM (SELECT case_id, scan, roi, settings_id, ibsi_code, aggregation FROM features "
        "GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    assert duplicates == 0
    # Every feature row is keyed by a known IBSI code and the settings id stored in `settings`.
    unknown = con.execute(
        "SELECT count(*) FROM features f ANTI JOIN settings s USING (settings_id)"
    ).fetchone()[0]
    assert unknown == 0
    codes = {c for (c,) in con.execute("SELECT DISTINCT ibsi_code FROM features").fetchall()}
    assert codes <= set(registry.features())
    # The clinical table is keyed by the same pseudonyms as the images.
    assert con.execute("SELECT count(*) FROM clinical JOIN cases USING (case_id)").fetchone()[0] == N_PATIENTS


def test_rdf_types_every_value_with_its_radiomics_ontology_class(demo_run):
    graph = rdflib.Graph().parse(demo_run / "results" / "rdf" / "radflow.ttl")
    con = duckdb.connect(str(demo_run / "results" / "radflow.duckdb"), read_only=True)
    n_features = con.execute("SELECT count(*) FROM features").fetchone()[0]
    has_value = rdflib.URIRef("http://www.cancerdata.org/roo/P100042")
    typed = graph.query(
        "SELECT (count(?v) AS ?n) WHERE { ?v <http://www.cancerdata.org/roo/P100042> ?x ; a ?c ; "
        "<http://www.radiomics.org/RO/P00578> ?settings . "
        "FILTER(STRSTARTS(STR(?c), 'http://www.radiomics.org/RO/')) }"
    )
    assert int(next(iter(typed))[0]) == n_features
    settings_parameters = 1  # the fixed-bin-size parameter node of the one settings document also has a value
    assert len(set(graph.subjects(predicate=has_value))) == n_features + settings_parameters
    mesh_volumes = list(graph.subjects(rdflib.RDF.type, rdflib.URIRef("http://www.radiomics.org/RO/RNU0")))
    assert len(mesh_volumes) == 2 * N_PATIENTS
    versions = {str(v) for v in graph.objects(predicate=rdflib.URIRef("http://schema.org/softwareVersion"))}
    assert any(v.count(".") >= 1 for v in versions)


def test_no_identifying_value_in_any_result_file(demo_run):
    phi = phi_values(demo_run / "resources" / "demo", include_uids=True)
    phi |= {part for value in phi for part in value.split("^") if len(part) >= 4}  # name components too
    assert len(phi) > 20, "the demo's PHI manifest should list identifying values and UIDs"
    files = [p for p in (demo_run / "results").rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files) and any(p.suffix == ".ttl" for p in files)
    leaks = []
    for path in files:
        data = path.read_bytes()
        leaks += [(path.name, value) for value in phi if value.encode() in data]
    assert not leaks, leaks[:10]


def test_second_run_changes_nothing_and_store_rerun_duplicates_nothing(demo_run):
    database = demo_run / "results" / "radflow.duckdb"
    before = table_digest(database)
    result = snakemake(demo_run)
    assert "Nothing to be done" in result.stdout + result.stderr
    assert table_digest(database) == before
    snakemake(demo_run, "--forcerun", "store")
    assert table_digest(database) == before


def test_report_is_self_contained_html(demo_run):
    snakemake(demo_run, "--report", str(demo_run / "results" / "report.html"))
    text = (demo_run / "results" / "report.html").read_text(errors="replace")
    assert "<html" in text.lower() and "feature_distributions.png" in text


def test_forced_store_rerun_keeps_a_case_this_run_did_not_bring(demo_run):
    """Snakemake must not delete the database before the store job: its output is a receipt, the database is
    replaced atomically and keeps the rows of cases the run does not touch."""
    database = demo_run / "results" / "radflow.duckdb"

    def write(sql: str) -> None:  # in another process: this one holds read-only connections to the file
        subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(database)!r}).execute({sql!r})"],
                       check=True, timeout=120)

    receipt_path = database.parent / "radflow.duckdb.receipt.json"
    saved = {path: path.with_name(path.name + ".saved") for path in (database, receipt_path)}
    for path, copy in saved.items():
        shutil.copy2(path, copy)
    write("INSERT INTO cases VALUES ('case-from-an-earlier-run', 1, 'pass')")
    try:
        snakemake(demo_run, "--forcerun", "store")
        kept = subprocess.run(
            [sys.executable, "-c", "import duckdb; print(duckdb.connect(%r, read_only=True).execute(\"SELECT status "
             "FROM cases WHERE case_id = 'case-from-an-earlier-run'\").fetchall())" % str(database)],
            check=True, capture_output=True, text=True, timeout=120).stdout.strip()
        assert kept == "[('pass',)]"
        receipt = (demo_run / "results" / "radflow.duckdb.receipt.json").read_text()
        assert '"cases": %d' % (N_PATIENTS + 1) in receipt
    finally:  # the database as the run left it: the store's checklists counted the extra case too
        for path, copy in saved.items():
            os.replace(copy, path)


def test_run_ends_with_a_summary_of_what_it_did(demo_run):
    terminal = (demo_run / "terminal.txt").read_text()
    con = duckdb.connect(str(demo_run / "results" / "radflow.duckdb"), read_only=True)
    counts = con.execute("SELECT count(*) FILTER (status = 'pass'), count(*) FILTER (status = 'warn'), "
                         "count(*) FILTER (status = 'fail') FROM cases").fetchone()
    n_features = con.execute("SELECT count(*) FROM features").fetchone()[0]
    n_stable = con.execute("SELECT count(*) FROM stable_features").fetchone()[0]
    models = con.execute("SELECT model_id, status FROM models ORDER BY model_id").fetchall()
    assert "radflow run finished." in terminal
    assert f"cases: {counts[0]} pass, {counts[1]} warn, {counts[2]} fail" in terminal
    assert f"feature rows: {n_features}" in terminal and f"stable features: {n_stable}" in terminal
    for model_id, status in models:  # 3 demo patients are too few to fit: each says why
        assert f"model {model_id}: {status}" in terminal or f"model {model_id}: auc" in terminal \
            or f"model {model_id}: c_index" in terminal
    for line in ("database: results/radflow.duckdb", "RDF: results/rdf/radflow.ttl", "report: results/report/index.html"):
        assert line in terminal


def test_reporting_checklists_are_stored_and_exported(demo_run):
    con = duckdb.connect(str(demo_run / "results" / "radflow.duckdb"), read_only=True)
    rows = {(s, i): (status, points, evidence) for s, i, status, points, evidence in con.execute(
        "SELECT standard, item, status, points, evidence FROM reporting").fetchall()}
    n_cases = con.execute("SELECT count(*) FROM cases").fetchone()[0]
    assert rows[("RQS", "4")][0] == "evidenced" and rows[("RQS", "4")][1] == 1  # the demo has retest scans
    assert rows[("RQS", "11")][0] == "user"  # a prospective study is the authors' to report
    assert rows[("TRIPOD+AI", "8")][2].startswith(f"{n_cases} cases")
    graph = rdflib.Graph().parse(demo_run / "results" / "rdf" / "radflow.ttl")
    item = rdflib.URIRef("https://w3id.org/radflow/vocab#ReportingItem")
    assert len(set(graph.subjects(rdflib.RDF.type, item))) == len(rows)


def _chromium() -> str:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    reason = "no Chromium on PATH: install Debian's `chromium` (.ci/run does) to run the browser test"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def test_html_report_renders_in_chromium_with_every_image(demo_run):
    import json
    import re

    report = demo_run / "results" / "report" / "index.html"
    text = report.read_text()
    assert "src='data:image/png;base64," in text and not re.search(r"src=['\"](?!data:)", text)  # self-contained
    for section in ("Quality control", "Stability (ICC)", "Model performance", "Model cards", "RQS", "TRIPOD+AI"):
        assert section in text
    # A copy with a probe script: on load it writes every image's naturalWidth into the DOM, which --dump-dom prints.
    probe = demo_run / "report_probe.html"
    probe.write_text(text.replace("</body>", "<script>window.addEventListener('load', () => document.body."
                                  "setAttribute('data-widths', JSON.stringify([...document.images]"
                                  ".map(i => i.naturalWidth))));</script></body>"))
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run([*browser, "--dump-dom", "--virtual-time-budget=10000", probe.as_uri()],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0 and "<body" in dom.stdout, f"Chromium could not start: {dom.stderr[-2000:]}"
    widths = json.loads(re.search(r'data-widths="([^"]*)"', dom.stdout).group(1).replace("&quot;", '"'))
    assert len(widths) == text.count("<img ") and len(widths) >= 5
    assert all(w > 0 for w in widths), widths
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    screenshot = artifacts / "report_index.png"
    screenshot.unlink(missing_ok=True)
    shot = subprocess.run([*browser, f"--screenshot={screenshot}", "--window-size=1280,4000", report.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]


def test_a_failing_rule_reports_its_own_reason_on_the_terminal(tmp_path):
    clinical = tmp_path / "clinical.csv"
    # a patient with two disagreeing outcomes: only the clinical rule, reading the rows, can tell (not pre-flight)
    clinical.write_text("patient_id,outcome\nA,1\nA,0\n")
    key = tmp_path / "study.key"  # own clinical data: a study key, not the public demo key
    key.write_text("a study key for this test, longer than the minimum")
    overrides = tmp_path / "key.yaml"
    overrides.write_text(f"pseudonymisation: {{key_file: {key}}}\n")
    result = snakemake(tmp_path, f"clinical={clinical}", "--configfile", str(overrides), check=False)
    terminal = result.stdout + result.stderr
    assert result.returncode != 0
    assert "radflow run failed:" in terminal
    assert re.search(r"rule clinical: clinical\.csv: 1 patient_id\(s\) appear on several rows "
                     r"with different values .*\[log: \S*clinical\.log\]", terminal), terminal[-3000:]
