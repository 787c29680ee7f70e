"""The RDF export: the dataset, the run and its rule executions, every case, scan, mask, QC check, settings document
and feature value, typed with the Radiomics Ontology and linked with PROV-O to the rule executions that made them,
their inputs (with sha256) and the software that ran them.

The export is written as a stream (:class:`radflow.provenance.turtle.TurtleWriter`): rows are read from DuckDB in
chunks and their triples written at once, so memory stays flat whatever the cohort size. ``export`` takes any sink
with rdflib's ``add``/``bind``: an ``rdflib.Graph`` gives the former in-memory graph (tests, the benchmark).

IRIs of radflow's own nodes are minted in the configured project namespace from pseudonymised ids; RO IRIs are used
only as classes and properties, never to mint instances. Activities, settings usages and software agents are minted
under ``run/<run_id>/`` (a digest of configuration, code and inputs), so merged exports of different runs stay apart.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
from rdflib import BNode, Graph, Literal, Namespace, URIRef

from radflow.features import registry
from radflow.provenance import vocabulary as V
from radflow.provenance.executions import Execution, iso_time, latest_per_job, read_executions
from radflow.provenance.iri import slug
from radflow.provenance.model_rdf import add_models
from radflow.provenance.reporting_rdf import add_reporting
from radflow.provenance.stability_rdf import add_stability
from radflow.provenance.turtle import TurtleWriter
from radflow.provenance.vocabulary import DCAT, DCTERMS, PROV, RDF, RDFS, SCHEMA, SPDX, XSD
from radflow.store import has_table

CHUNK_ROWS = 20_000
R = V.RADFLOW


def _checksum(graph, node, sha256: str | None) -> None:
    if not sha256:
        return
    checksum = BNode(f"sha256_{sha256}")  # named blank nodes keep the Turtle identical across reruns
    graph.add((node, SPDX.checksum, checksum))
    graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    graph.add((checksum, SPDX.checksumValue, Literal(sha256)))


def _double(value: float) -> Literal:
    return Literal(float(value), datatype=XSD.double)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params=None):
    """Rows of a query in chunks: the result is never held whole in Python."""
    cursor = con.cursor()
    cursor.execute(sql, params or [])
    while True:
        chunk = cursor.fetchmany(CHUNK_ROWS)
        if not chunk:
            break
        yield from chunk
    cursor.close()


def _settings_parameters(graph, node, settings_id: str, document: dict) -> None:
    """The IBSI choices of a settings document as RO FeatureParameterSpace parameters, with typed values."""
    texture = document["discretisation"]["texture"]
    if texture["method"] in ("fixed_bin_size", "fixed_bin_number"):
        param = BNode(f"{settings_id}_discretisation")
        graph.add((node, V.HAS_PARAMETER, param))
        if texture["method"] == "fixed_bin_size":
            graph.add((param, RDF.type, V.FIXED_BIN_SIZE))
            graph.add((param, V.HAS_VALUE, _double(texture["bin_width"])))
            if texture.get("lower_bound") is not None:
                graph.add((param, R.lowerBound, _double(texture["lower_bound"])))
        else:
            graph.add((param, RDF.type, V.FIXED_BIN_NUMBER))
            graph.add((param, V.HAS_VALUE, Literal(int(texture["n_bins"]), datatype=XSD.integer)))
    elif texture["method"] == "none":
        param = BNode(f"{settings_id}_discretisation")
        graph.add((node, V.HAS_PARAMETER, param))
        graph.add((param, RDF.type, R.NoDiscretisation))
    interpolation = document["interpolation"]
    param = BNode(f"{settings_id}_interpolation")
    graph.add((node, V.HAS_PARAMETER, param))
    graph.add((param, RDF.type, V.INTERPOLATION))
    graph.add((param, R.enabled, Literal(bool(interpolation["enabled"]))))
    if interpolation["enabled"]:
        method = BNode(f"{settings_id}_interpolator")
        graph.add((param, V.RO.P09537, method))
        graph.add((method, RDF.type, V.INTERPOLATORS[interpolation["image_interpolator"]]))
        for axis, spacing in zip("XYZ", interpolation["spacing_mm"] or []):
            if spacing is not None:
                graph.add((param, R[f"spacing{axis}"], _double(spacing)))
                graph.add((param, V.HAS_UNIT, V.UNIT_MM))
    reseg = document["resegmentation"]
    if reseg["range"] is not None or reseg["outlier_sigma"] is not None:
        param = BNode(f"{settings_id}_resegmentation")
        graph.add((node, V.HAS_PARAMETER, param))
        graph.add((param, RDF.type, V.RESEGMENTATION))
        low, high = reseg["range"] or (None, None)
        if low is not None:
            graph.add((param, R.rangeLower, _double(low)))
        if high is not None:
            graph.add((param, R.rangeUpper, _double(high)))
        if reseg["outlier_sigma"] is not None:
            graph.add((param, R.outlierSigma, _double(reseg["outlier_sigma"])))


class RunNodes:
    """IRIs of one run's activities, plans and software, and the times of its rule executions."""

    def __init__(self, rf: Namespace, run_id: str, executions: list[Execution]):
        self.rf, self.run_id = rf, run_id
        self.run = rf[f"run/{run_id}"]
        self.pipeline = rf[f"run/{run_id}/software/radflow"]
        self.executions = {(e.rule, e.batch): e for e in latest_per_job(executions)}

    def activity(self, rule: str, batch: str = "") -> URIRef:
        return self.rf[f"run/{self.run_id}/activity/{slug(rule, batch) if batch else rule}"]

    def plan(self, rule: str) -> URIRef:
        return self.rf[f"run/{self.run_id}/rule/{rule}"]

    def software(self, package: str) -> URIRef:
        return self.rf[f"run/{self.run_id}/software/{package}"]

    def execution(self, rule: str, batch: str = "") -> Execution | None:
        return self.executions.get((rule, batch)) or self.executions.get((rule, ""))

    def timed(self, graph, activity, rule: str, batch: str = "") -> None:
        """Give an activity the start and end of the rule execution it ran in (when Snakemake recorded it)."""
        execution = self.execution(rule, batch)
        if execution is not None:
            graph.add((activity, PROV.startedAtTime, Literal(execution.started, datatype=XSD.dateTime)))
            graph.add((activity, PROV.endedAtTime, Literal(execution.ended, datatype=XSD.dateTime)))
        graph.add((activity, PROV.wasAssociatedWith, self.pipeline))
        graph.add((activity, DCTERMS.isPartOf, self.run))


def _run_table(con) -> dict:
    if not has_table(con, "run"):
        return {}
    row = con.execute("SELECT run_id, config, config_sha256, code_version, seeds FROM run").fetchone()
    if row is None:
        return {}
    run_id, config, config_sha256, code_version, seeds = row
    return {"run_id": run_id, "config": json.loads(config or "{}"), "config_sha256": config_sha256,
            "code_version": code_version, "seeds": json.loads(seeds or "{}")}


def _add_dataset_and_run(graph, nodes: RunNodes, run: dict, executions: list[Execution]) -> None:
    rf, export = nodes.rf, (run.get("config") or {}).get("export") or {}
    run_node = nodes.run
    graph.add((run_node, RDF.type, PROV.Activity))
    graph.add((run_node, RDF.type, R.WorkflowRun))
    graph.add((run_node, DCTERMS.identifier, Literal(nodes.run_id)))
    graph.add((run_node, PROV.wasAssociatedWith, nodes.pipeline))
    if executions:
        graph.add((run_node, PROV.startedAtTime,
                   Literal(iso_time(min(e.start for e in executions)), datatype=XSD.dateTime)))
        graph.add((run_node, PROV.endedAtTime,
                   Literal(iso_time(max(e.end for e in executions)), datatype=XSD.dateTime)))
    if run.get("code_version"):
        graph.add((run_node, R.codeVersion, Literal(run["code_version"])))
    if run.get("config_sha256"):
        graph.add((run_node, R.configSha256, Literal(run["config_sha256"])))
    for name, seed in sorted((run.get("seeds") or {}).items()):
        seed_node = BNode(f"seed_{nodes.run_id}_{name}")
        graph.add((run_node, R.seed, seed_node))
        graph.add((seed_node, SCHEMA.name, Literal(name)))
        graph.add((seed_node, SCHEMA.value, Literal(int(seed), datatype=XSD.integer)))

    dataset = rf[f"dataset/{nodes.run_id}"]
    for kind in (DCAT.Dataset, SCHEMA.Dataset, PROV.Entity):
        graph.add((dataset, RDF.type, kind))
    title = export.get("title") or "radflow radiomics results"
    graph.add((dataset, DCTERMS.title, Literal(title)))
    graph.add((dataset, SCHEMA.name, Literal(title)))
    graph.add((dataset, DCTERMS.identifier, Literal(nodes.run_id)))
    if export.get("creator"):
        graph.add((dataset, DCTERMS.creator, Literal(export["creator"])))
        graph.add((dataset, SCHEMA.creator, Literal(export["creator"])))
    if export.get("license"):
        licence = export["license"]
        term = URIRef(licence) if licence.startswith(("http://", "https://")) else Literal(licence)
        graph.add((dataset, DCTERMS.license, term))
        graph.add((dataset, SCHEMA.license, term))
    if executions:
        issued = Literal(iso_time(max(e.end for e in executions)), datatype=XSD.dateTime)
        graph.add((dataset, DCTERMS.issued, issued))
        graph.add((dataset, SCHEMA.datePublished, issued))
    for standard in (V.RO_ONTOLOGY, V.IBSI_STANDARD):
        graph.add((dataset, DCTERMS.conformsTo, standard))
        graph.add((standard, RDF.type, DCTERMS.Standard))
    graph.add((V.RO_ONTOLOGY, RDFS.label, Literal("Radiomics Ontology v2.0")))
    graph.add((V.IBSI_STANDARD, RDFS.label, Literal("Image Biomarker Standardisation Initiative (IBSI)")))
    graph.add((dataset, PROV.wasGeneratedBy, run_node))


def _add_executions(graph, nodes: RunNodes) -> None:
    """One PROV activity per rule execution (per batch for the per-batch rules), with start and end time."""
    plans = set()
    for rule, batch in sorted(nodes.executions):
        activity = nodes.activity(rule, batch)
        graph.add((activity, RDF.type, PROV.Activity))
        if rule == "features":
            graph.add((activity, RDF.type, V.CALCULATION_RUN))
        nodes.timed(graph, activity, rule, batch)
        plan = nodes.plan(rule)
        association = BNode(f"association_{nodes.run_id}_{slug(rule, batch).replace('/', '_')}")
        graph.add((activity, PROV.qualifiedAssociation, association))
        graph.add((association, RDF.type, PROV.Association))
        graph.add((association, PROV.agent, nodes.pipeline))
        graph.add((association, PROV.hadPlan, plan))
        if batch:
            graph.add((activity, R.batch, Literal(batch)))
        if plan not in plans:
            plans.add(plan)
            graph.add((plan, RDF.type, PROV.Plan))
            graph.add((plan, SCHEMA.name, Literal(rule)))


def _aggregation_node(rf: Namespace, label: str) -> URIRef:
    return rf[f"aggregation/{slug(label)}"]


def _add_self_test(graph, nodes: RunNodes, result: dict) -> None:
    """The IBSI self-test of the installed engine (radflow.provenance.ibsi_self_test), attributed to this run's
    radflow agent: the digital-phantom reference values it reproduces."""
    node = nodes.rf[f"run/{nodes.run_id}/ibsi-self-test"]
    graph.add((node, RDF.type, PROV.Entity))
    graph.add((node, RDF.type, R.IbsiSelfTest))
    graph.add((node, RDFS.label, Literal(result["phantom"])))
    graph.add((node, R.referenceValues, Literal(int(result["references"]), datatype=XSD.integer)))
    graph.add((node, R.passedValues, Literal(int(result["passed"]), datatype=XSD.integer)))
    graph.add((node, R.engineDigest, Literal(result["engine_digest"])))
    graph.add((node, DCTERMS.conformsTo, V.IBSI_STANDARD))
    graph.add((node, PROV.wasAttributedTo, nodes.pipeline))
    graph.add((nodes.run, PROV.used, node))


def export(graph, con: duckdb.DuckDBPyConnection, namespace: str, executions: list[Execution] | None = None,
           self_test: dict | None = None) -> None:
    """Write the whole export of the database ``con`` into ``graph`` (a TurtleWriter or an rdflib Graph)."""
    rf = Namespace(namespace)
    for prefix, ns in (("ro", V.RO), ("roo", V.ROO), ("prov", PROV), ("schema", SCHEMA), ("spdx", SPDX),
                       ("dct", DCTERMS), ("dcat", DCAT), ("radflow", V.RADFLOW), ("rf", rf), ("mls", V.MLS),
                       ("unit", V.UNIT),
                       ("rdfs", RDFS), ("xsd", XSD)):
        graph.bind(prefix, ns)
    run = _run_table(con)
    executions = executions or []
    nodes = RunNodes(rf, run.get("run_id") or "unrecorded", executions)
    _add_dataset_and_run(graph, nodes, run, executions)
    _add_executions(graph, nodes)
    if self_test:
        _add_self_test(graph, nodes, self_test)
    batch_of = dict(con.execute("SELECT DISTINCT case_id, batch FROM inputs WHERE case_id != ''").fetchall()) \
        if has_table(con, "inputs") else {}

    # Software: the exact versions this run used (the lock file pins them for reruns).
    pipeline = nodes.pipeline
    graph.add((pipeline, RDF.type, PROV.SoftwareAgent))
    for package, version in con.execute("SELECT package, version FROM software ORDER BY package").fetchall():
        agent = nodes.software(package)
        graph.add((agent, RDF.type, PROV.SoftwareAgent))
        graph.add((agent, RDF.type, SCHEMA.SoftwareApplication))
        graph.add((agent, SCHEMA.name, Literal(package)))
        graph.add((agent, SCHEMA.softwareVersion, Literal(version)))
        if agent != pipeline:
            graph.add((pipeline, SCHEMA.softwareRequirements, agent))

    for label, ro_aggregation in sorted(V.AGGREGATIONS.items()):
        node = _aggregation_node(rf, label)
        graph.add((node, RDF.type, ro_aggregation))
        graph.add((node, RDFS.label, Literal(label)))

    batches = sorted({b for b in batch_of.values()}) or [""]
    for settings_id, name, document in con.execute(
            "SELECT settings_id, name, document FROM settings ORDER BY settings_id").fetchall():
        node = rf[f"settings/{settings_id}"]
        graph.add((node, RDF.type, V.FEATURE_PARAMETER_SPACE))
        graph.add((node, RDF.type, PROV.Entity))
        graph.add((node, DCTERMS.identifier, Literal(settings_id)))
        graph.add((node, RDFS.label, Literal(name)))
        graph.add((node, V.SETTINGS_DOCUMENT, Literal(document)))
        _settings_parameters(graph, node, settings_id, json.loads(document))
        for batch in batches:
            activity = nodes.activity("features", batch)
            usage = rf[f"run/{nodes.run_id}/usage/settings/{settings_id}/{batch or 'all'}"]
            graph.add((activity, PROV.used, node))
            graph.add((activity, PROV.qualifiedUsage, usage))
            graph.add((usage, RDF.type, PROV.Usage))
            graph.add((usage, PROV.entity, node))

    centre_column = ((run.get("config") or {}).get("model") or {}).get("centre")
    centre_of = {}
    if centre_column and has_table(con, "clinical") and centre_column in [
            c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'clinical'").fetchall()]:
        centre_of = dict(con.execute(f'SELECT case_id, CAST("{centre_column}" AS VARCHAR) FROM clinical').fetchall())
    for (case_id,) in con.execute("SELECT case_id FROM cases ORDER BY case_id").fetchall():
        case = rf[f"case/{case_id}"]
        graph.add((case, RDF.type, PROV.Entity))
        graph.add((case, RDF.type, R.Case))
        graph.add((case, DCTERMS.identifier, Literal(case_id)))
        if centre_of.get(case_id) is not None:
            graph.add((case, R.centre, Literal(centre_of[case_id])))

    # Scans carry the checksum of their DICOM input (sha256 over the sorted sha256 of its files), not of interim files.
    series_digest = {}
    if has_table(con, "inputs"):
        series_digest = dict(((c, s), d) for c, s, d in con.execute(
            "SELECT case_id, scan, sha256(string_agg(sha256, '' ORDER BY sha256)) FROM inputs "
            "WHERE role = 'image' GROUP BY ALL").fetchall())
    for case_id, scan, series_uid, modality, sequence, status in con.execute(
            "SELECT case_id, scan, series_uid, modality, sequence, status FROM scans ORDER BY case_id, scan"
    ).fetchall():
        node = rf[f"scan/{slug(case_id, scan)}"]
        graph.add((node, RDF.type, PROV.Entity))
        graph.add((node, RDF.type, V.NCIT.C17999))  # imaging study / scan
        graph.add((node, DCTERMS.isPartOf, rf[f"case/{case_id}"]))
        graph.add((node, RDFS.label, Literal(scan)))
        graph.add((node, R.scanLabel, Literal(scan)))
        if modality:
            graph.add((node, R.modality, Literal(modality)))
        if sequence:
            graph.add((node, R.sequence, Literal(sequence)))
        graph.add((node, R.qcStatus, Literal(status)))
        if series_uid:
            graph.add((node, PROV.wasDerivedFrom, URIRef(f"urn:oid:{series_uid}")))  # pseudonymised UID
        graph.add((node, PROV.wasGeneratedBy, nodes.activity("ingest", batch_of.get(case_id, ""))))
        _checksum(graph, node, series_digest.get((case_id, scan)))

    for case_id, scan, roi, source, mask_sha in con.execute(
            "SELECT case_id, scan, roi, source, mask_sha256 FROM masks ORDER BY case_id, scan, roi").fetchall():
        node = rf[f"mask/{slug(case_id, scan, roi)}"]
        batch = batch_of.get(case_id, "")
        graph.add((node, RDF.type, V.ROI_MASK))
        graph.add((node, RDF.type, PROV.Entity))
        graph.add((node, RDFS.label, Literal(roi)))
        graph.add((node, R.roi, Literal(roi)))
        graph.add((node, PROV.wasDerivedFrom, rf[f"scan/{slug(case_id, scan)}"]))
        graph.add((node, SCHEMA.description, Literal(f"rasterised from {source}")))
        graph.add((node, PROV.wasGeneratedBy, nodes.activity("ingest", batch)))
        graph.add((nodes.activity("features", batch), PROV.used, node))
        _checksum(graph, node, mask_sha)

    for case_id, scan, roi, code, severity, message, value in _rows(
            con, "SELECT case_id, scan, roi, check_code, severity, message, value FROM qc "
                 "ORDER BY case_id, scan, roi, check_code"):
        node = rf[f"qc/{slug(case_id, scan or '-', roi or '-', code)}"]
        graph.add((node, RDF.type, R.QualityCheck))
        graph.add((node, RDF.type, PROV.Entity))
        graph.add((node, R.checkCode, Literal(code)))
        graph.add((node, R.severity, Literal(severity)))
        if message:
            graph.add((node, SCHEMA.description, Literal(message)))
        if value is not None:
            graph.add((node, R.checkValue, _double(value)))
        graph.add((node, R.aboutCase, rf[f"case/{case_id}"]))
        if scan:
            graph.add((node, R.aboutScan, rf[f"scan/{slug(case_id, scan)}"]))
        if roi:
            graph.add((node, R.roi, Literal(roi)))
        graph.add((node, PROV.wasGeneratedBy, nodes.activity("qc", batch_of.get(case_id, ""))))

    features = registry.features()
    ro_class = {code: URIRef(info.ro_class) for code, info in features.items()}
    for case_id, scan, roi, settings_id, code, aggregation, value, reason in _rows(
            con, "SELECT case_id, scan, roi, settings_id, ibsi_code, aggregation, value, reason FROM features "
                 "ORDER BY case_id, scan, roi, settings_id, ibsi_code, aggregation"):
        node = rf[f"value/{slug(case_id, scan, roi, settings_id, code, aggregation)}"]
        graph.add((node, RDF.type, ro_class[code]))
        if code in V.DISTINCT_FEATURE_CLASSES:  # RO has one class for the two fractions of these IVH features
            graph.add((node, RDF.type, V.DISTINCT_FEATURE_CLASSES[code]))
        graph.add((node, RDF.type, PROV.Entity))
        graph.add((node, R.ibsiCode, Literal(code)))
        graph.add((node, V.HAS_VALUE, _double(value if value is not None else float("nan"))))
        if reason:
            graph.add((node, R.nanReason, Literal(reason)))
        if code in V.FEATURE_UNITS:
            graph.add((node, V.HAS_UNIT, V.FEATURE_UNITS[code]))
        graph.add((node, V.AGGREGATION_LABEL, Literal(aggregation)))
        if aggregation in V.AGGREGATIONS:
            graph.add((node, R.aggregationMethod, _aggregation_node(rf, aggregation)))
        graph.add((node, V.HAS_FEATURE_SPACE, rf[f"settings/{settings_id}"]))
        graph.add((node, PROV.wasGeneratedBy, nodes.activity("features", batch_of.get(case_id, ""))))
        graph.add((node, PROV.wasDerivedFrom, rf[f"mask/{slug(case_id, scan, roi)}"]))

    add_stability(graph, con, rf, nodes=nodes, config=run.get("config") or {})
    add_models(graph, con, rf, nodes=nodes)
    add_reporting(graph, con, rf, nodes=nodes)

    if has_table(con, "inputs"):
        for case_id, scan, role, roi, sha256 in con.execute(
                "SELECT DISTINCT case_id, scan, role, roi, sha256 FROM inputs ORDER BY ALL").fetchall():
            node = rf[f"input/{sha256}"]
            graph.add((node, RDF.type, PROV.Entity))
            graph.add((node, RDF.type, R.InputFile))
            graph.add((node, R.role, Literal(role)))
            _checksum(graph, node, sha256)
            if case_id:
                graph.add((node, R.aboutCase, rf[f"case/{case_id}"]))
            if role == "mask" and roi:
                graph.add((rf[f"mask/{slug(case_id, scan, roi)}"], PROV.wasDerivedFrom, node))
            elif scan:
                graph.add((rf[f"scan/{slug(case_id, scan)}"], PROV.wasDerivedFrom, node))
            graph.add((nodes.activity("ingest", batch_of.get(case_id, "")), PROV.used, node))


def upstream_of_store(executions: list[Execution]) -> list[Execution]:
    """The executions that made the database: those that ended by the end of the latest `store` job. Later ones (this
    export itself, reports, a previous export) are left out, so exporting the same database writes the same bytes."""
    stores = [e.end for e in executions if e.rule == "store"]
    if not stores:
        return executions
    return [e for e in executions if e.end <= max(stores)]


def build_graph(database: Path, namespace: str, executions: list[Execution] | None = None) -> Graph:
    """The export as an in-memory rdflib graph (for tests and the benchmark; the pipeline streams instead)."""
    graph = Graph()
    con = duckdb.connect(str(database), read_only=True)
    try:
        export(graph, con, namespace, executions)
    finally:
        con.close()
    return graph


def write_rdf(database: Path, turtle: Path, namespace: str, metadata_dir: Path | None = None,
              self_test: dict | None = None) -> int:
    """Stream the export of ``database`` to ``turtle`` (``.gz`` compresses); returns the number of triples written.
    Rule executions (times) come from Snakemake's metadata folder when given; ``self_test`` is the IBSI self-test."""
    executions = upstream_of_store(read_executions(metadata_dir)) if metadata_dir is not None else []
    con = duckdb.connect(str(database), read_only=True)
    try:
        partial = turtle.with_name(turtle.name + ".partial")
        with TurtleWriter(partial) as writer:
            export(writer, con, namespace, executions, self_test)
        partial.replace(turtle)
    finally:
        con.close()
    return writer.triples
