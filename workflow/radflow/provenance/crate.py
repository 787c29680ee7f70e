"""The run crate (``results/crate/``): a Workflow Run RO-Crate (Provenance Run Crate profile) of one run, built with
the ``rocrate`` package.

What it holds, and what a receiving centre does with it (``radflow rerun``, ``radflow diff``):

- the workflow: ``Snakefile``, ``rules/*.smk``, the configuration schema, ``pyproject.toml`` and the
  ``constraints.txt`` lock (copied), and the package source by its git commit (or the sha256 of every file);
- ``config.json``: the resolved configuration (every ``--config`` override; local paths withheld);
- ``settings/``: each feature settings document (the YAML as loaded, and its canonical JSON whose sha256 prefix is
  its settings id);
- inputs by sha256 and pseudonymised case / scan only (``tables/inputs.parquet`` and one entity per file), never by
  source path;
- outputs: the Turtle, its SHACL report, one Parquet file per DuckDB table (``tables/``) and the report files;
- one action per rule execution (per batch) with start and end time, and the run's own action.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import duckdb
from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from radflow.pipeline.store import sha256_of
from radflow.provenance.executions import iso_time, latest_per_job, read_executions
from radflow.provenance.run_record import canonical_json, workflow_checksums
from radflow.settings import Settings

log = logging.getLogger(__name__)

PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/ro/wfrun/provenance/0.5": "Provenance Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
WORKFLOW_FILES = ("Snakefile", "constraints.txt", "pyproject.toml")
WORKFLOW_GLOBS = ("rules/*.smk", "config/schemas/*.yaml", "ontology/shapes.ttl", "ontology/radflow.ttl")


def export_tables(database: Path, folder: Path) -> list[Path]:
    """One Parquet file per DuckDB table, rows in primary-key order (what ``radflow diff`` compares)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), read_only=True)
    written = []
    try:
        for (table,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall():
            path = folder / f"{table}.parquet"
            con.execute(f"COPY (SELECT * FROM {table} ORDER BY ALL) TO '{path}' (FORMAT parquet)")
            written.append(path)
    finally:
        con.close()
    return written


def _file(crate: ROCrate, source: Path, dest: str, **properties):
    properties.setdefault("sha256", sha256_of(source))
    properties.setdefault("contentSize", str(source.stat().st_size))
    return crate.add_file(source, dest, properties=properties)


def build_crate(crate_dir: Path, database: Path, turtle: Path, shacl_report: Path, run_json: Path,
                workflow_dir: Path, settings_paths: list[Path], report_files: list[Path],
                metadata_dir: Path | None = None) -> ROCrate:
    run = json.loads(run_json.read_text())
    export = (run.get("config") or {}).get("export") or {}
    if not export.get("license"):
        log.warning("export.license is not set: the crate carries no licence; set one before sharing it")
    with tempfile.TemporaryDirectory(prefix="radflow-crate-") as scratch:
        return _build(Path(scratch), crate_dir, run, export, database, turtle, shacl_report, workflow_dir,
                      settings_paths, report_files, metadata_dir)


def _build(staging, crate_dir, run, export, database, turtle, shacl_report, workflow_dir, settings_paths,
           report_files, metadata_dir) -> ROCrate:
    """Generated files go to ``staging`` (a scratch folder); the crate is written beside ``crate_dir`` and moved."""

    crate = ROCrate()
    crate.name = export.get("title") or "radflow radiomics results"
    crate.description = (f"Workflow Run RO-Crate of radflow run {run['run_id']}: IBSI radiomics features, stability, "
                         "models, their RDF description and everything needed to re-execute the run.")
    if export.get("license"):
        crate.license = export["license"]
    if export.get("creator"):
        crate.root_dataset["creator"] = export["creator"]
    crate.root_dataset["identifier"] = run["run_id"]
    profiles = [crate.add(ContextEntity(crate, iri, properties={"@type": "CreativeWork", "name": name,
                                                                 "version": iri.rsplit("/", 1)[-1]}))
                for iri, name in PROFILES.items()]
    crate.root_dataset["conformsTo"] = profiles

    # The workflow and the code that ran it.
    workflow = crate.add_workflow(workflow_dir / "Snakefile", "workflow/Snakefile", main=True, lang="snakemake",
                                  properties={"name": "radflow", "version": run["code_version"],
                                              "sha256": sha256_of(workflow_dir / "Snakefile")})
    for name in WORKFLOW_FILES[1:]:
        if (workflow_dir / name).is_file():
            _file(crate, workflow_dir / name, f"workflow/{name}")
    for pattern in WORKFLOW_GLOBS:
        for path in sorted(workflow_dir.glob(pattern)):
            _file(crate, path, f"workflow/{path.relative_to(workflow_dir)}")
    source = staging / "workflow" / "source_sha256.json"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(json.dumps(workflow_checksums(workflow_dir), indent=1, sort_keys=True) + "\n")
    _file(crate, source, "workflow/source_sha256.json",
          description=f"sha256 of every workflow and package file; code version {run['code_version']}")

    # Configuration and settings.
    config_file = staging / "config.json"
    config_file.write_text(json.dumps(run["config"], indent=1, sort_keys=True) + "\n")
    config_entity = _file(crate, config_file, "config.json", encodingFormat="application/json",
                          description="resolved configuration (config.yaml and every --config override; local "
                                      "paths withheld)", configSha256=run["config_sha256"])
    settings_entities = []
    for path in settings_paths:
        settings = Settings.from_yaml(path)
        canonical = staging / "settings" / f"{settings.settings_id}.json"
        canonical.parent.mkdir(parents=True, exist_ok=True)
        canonical.write_text(settings.canonical_json())
        settings_entities.append(_file(crate, canonical, f"settings/{settings.settings_id}.json",
                                       name=settings.name, identifier=settings.settings_id,
                                       encodingFormat="application/json"))
        settings_entities.append(_file(crate, path, f"settings/{settings.settings_id}.yaml", name=settings.name))

    # Inputs by checksum and pseudonym.
    con = duckdb.connect(str(database), read_only=True)
    try:
        inputs = con.execute("SELECT DISTINCT case_id, scan, role, roi, sha256, size FROM inputs ORDER BY ALL"
                             ).fetchall()
        software = con.execute("SELECT package, version FROM software ORDER BY package").fetchall()
    finally:
        con.close()
    input_entities = {}
    for case_id, scan, role, roi, sha256, size in inputs:
        if sha256 in input_entities:
            continue
        label = " ".join(part for part in (role, case_id, scan, roi) if part)
        input_entities[sha256] = crate.add(ContextEntity(crate, f"#input-{sha256}", properties={
            "@type": "File", "name": label, "sha256": sha256, "contentSize": str(size),
            "description": "input file, identified by its sha256 and pseudonymised case only"}))
    for package, version in software:
        crate.add(ContextEntity(crate, f"#software-{package}", properties={
            "@type": "SoftwareApplication", "name": package, "softwareVersion": version}))

    # Outputs.
    outputs = [_file(crate, turtle, f"rdf/{turtle.name}", encodingFormat="text/turtle"),
               _file(crate, shacl_report, f"rdf/{shacl_report.name}", encodingFormat="text/plain")]
    for path in export_tables(database, staging / "tables"):
        outputs.append(_file(crate, path, f"tables/{path.name}", encodingFormat="application/vnd.apache.parquet",
                             description=f"DuckDB table {path.stem}"))
    for path in report_files:
        outputs.append(_file(crate, path, f"report/{path.name}"))

    # One action per rule execution, and the run's own action.
    executions = latest_per_job(read_executions(metadata_dir)) if metadata_dir is not None else []
    steps, tools = {}, {}
    for position, rule in enumerate(sorted({e.rule for e in executions})):
        tools[rule] = crate.add(ContextEntity(crate, f"#rule-{rule}", properties={
            "@type": "SoftwareApplication", "name": f"Snakemake rule {rule}"}))
        steps[rule] = crate.add(ContextEntity(crate, f"#step-{rule}", properties={
            "@type": "HowToStep", "name": rule, "position": str(position), "workExample": tools[rule]}))
    if steps:
        workflow["step"] = list(steps.values())
        workflow["hasPart"] = list(tools.values())
    for execution in executions:
        slug = execution.name.replace("/", "-")
        action = crate.add_action(tools[execution.rule], identifier=f"#run-{run['run_id']}-{slug}", properties={
            "name": f"{execution.name}", "startTime": execution.started, "endTime": execution.ended,
            "actionStatus": "http://schema.org/CompletedActionStatus"})
        crate.add(ContextEntity(crate, f"#control-{run['run_id']}-{slug}", properties={
            "@type": "ControlAction", "name": f"orchestrate {execution.name}", "instrument": steps[execution.rule],
            "object": action}))
    run_properties = {"name": f"radflow run {run['run_id']}", "actionStatus": "http://schema.org/CompletedActionStatus",
                      "codeVersion": run["code_version"], "seeds": canonical_json(run.get("seeds") or {})}
    if executions:
        run_properties["startTime"] = iso_time(min(e.start for e in executions))
        run_properties["endTime"] = iso_time(max(e.end for e in executions))
    if executions:
        crate.datePublished = run_properties["endTime"]
    crate.add_action(workflow, identifier=f"#run-{run['run_id']}",
                     object=[config_entity, *settings_entities, *input_entities.values()], result=outputs,
                     properties=run_properties)
    crate.root_dataset["mentions"] = crate.get(f"#run-{run['run_id']}")  # one value, not a one-item list (RO-Crate JSON-LD)

    partial = crate_dir.with_name(crate_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    crate.write(partial)
    shutil.rmtree(crate_dir, ignore_errors=True)
    partial.replace(crate_dir)
    return crate
