"""The RDF export: every case, scan, mask, settings document and feature value, typed with the Radiomics Ontology
and linked with PROV-O to the pipeline steps, their inputs (with sha256) and the software that ran them.

IRIs of radflow's own nodes are minted in the configured project namespace from pseudonymised ids; RO IRIs are used
only as classes and properties, never to mint instances.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
from rdflib import BNode, Graph, Literal, Namespace, URIRef

from radflow.features import registry
from radflow.provenance import vocabulary as V
from radflow.provenance.iri import slug
from radflow.provenance.model_rdf import add_models
from radflow.provenance.stability_rdf import add_stability
from radflow.provenance.vocabulary import DCTERMS, PROV, RDF, RDFS, SCHEMA, SPDX, XSD


def _checksum(graph: Graph, node, sha256: str) -> None:
    if not sha256:
        return
    checksum = BNode(f"sha256_{sha256}")  # named blank nodes keep the Turtle identical across reruns
    graph.add((node, SPDX.checksum, checksum))
    graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
    graph.add((checksum, SPDX.checksumValue, Literal(sha256)))


def _settings_parameters(graph: Graph, node, settings_id: str, document: dict) -> None:
    """The IBSI choices of a settings document as RO FeatureParameterSpace parameters."""
    texture = document["discretisation"]["texture"]
    if texture["method"] in ("fixed_bin_size", "fixed_bin_number"):
        param = BNode(f"{settings_id}_discretisation")
        graph.add((node, V.HAS_PARAMETER, param))
        if texture["method"] == "fixed_bin_size":
            graph.add((param, RDF.type, V.FIXED_BIN_SIZE))
            graph.add((param, V.HAS_VALUE, Literal(float(texture["bin_width"]), datatype=XSD.double)))
        else:
            graph.add((param, RDF.type, V.FIXED_BIN_NUMBER))
            graph.add((param, V.HAS_VALUE, Literal(int(texture["n_bins"]), datatype=XSD.integer)))
    interpolation = document["interpolation"]
    if interpolation["enabled"]:
        param = BNode(f"{settings_id}_interpolation")
        graph.add((node, V.HAS_PARAMETER, param))
        graph.add((param, RDF.type, V.INTERPOLATION))
        method = BNode(f"{settings_id}_interpolator")
        graph.add((param, V.RO.P09537, method))
        graph.add((method, RDF.type, V.INTERPOLATORS[interpolation["image_interpolator"]]))
        graph.add((param, RDFS.comment, Literal(f"spacing (x, y, z) mm: {interpolation['spacing_mm']}")))
    reseg = document["resegmentation"]
    if reseg["range"] is not None or reseg["outlier_sigma"] is not None:
        param = BNode(f"{settings_id}_resegmentation")
        graph.add((node, V.HAS_PARAMETER, param))
        graph.add((param, RDF.type, V.RESEGMENTATION))
        graph.add((param, RDFS.comment, Literal(f"range {reseg['range']}, outlier sigma {reseg['outlier_sigma']}")))


def build_graph(database: Path, namespace: str) -> Graph:
    rf = Namespace(namespace)
    graph = Graph()
    for prefix, ns in (("ro", V.RO), ("roo", V.ROO), ("prov", PROV), ("schema", SCHEMA), ("spdx", SPDX),
                       ("dct", DCTERMS), ("radflow", V.RADFLOW), ("rf", rf)):
        graph.bind(prefix, ns)
    con = duckdb.connect(str(database), read_only=True)
    try:
        # Software: the exact versions this run used (the lock file pins them for reruns).
        pipeline = rf["software/radflow"]
        graph.add((pipeline, RDF.type, PROV.SoftwareAgent))
        for package, version in con.execute("SELECT package, version FROM software ORDER BY package").fetchall():
            agent = rf[f"software/{package}"] if package != "radflow" else pipeline
            graph.add((agent, RDF.type, PROV.SoftwareAgent))
            graph.add((agent, RDF.type, SCHEMA.SoftwareApplication))
            graph.add((agent, SCHEMA.name, Literal(package)))
            graph.add((agent, SCHEMA.softwareVersion, Literal(version)))
            if agent != pipeline:
                graph.add((pipeline, SCHEMA.softwareRequirements, agent))

        activities = {}
        for stage in ("ingest", "qc", "features", "store"):
            activity = rf[f"activity/{stage}"]
            activities[stage] = activity
            graph.add((activity, RDF.type, PROV.Activity))
            graph.add((activity, PROV.wasAssociatedWith, pipeline))
            association, plan = BNode(f"association_{stage}"), rf[f"workflow/rule/{stage}"]
            graph.add((activity, PROV.qualifiedAssociation, association))
            graph.add((association, RDF.type, PROV.Association))
            graph.add((association, PROV.agent, pipeline))
            graph.add((association, PROV.hadPlan, plan))
            graph.add((plan, RDF.type, PROV.Plan))
            graph.add((plan, SCHEMA.name, Literal(stage)))
        graph.add((activities["features"], RDF.type, V.CALCULATION_RUN))

        for settings_id, name, document in con.execute("SELECT settings_id, name, document FROM settings").fetchall():
            node = rf[f"settings/{settings_id}"]
            graph.add((node, RDF.type, V.FEATURE_PARAMETER_SPACE))
            graph.add((node, RDF.type, PROV.Entity))
            graph.add((node, DCTERMS.identifier, Literal(settings_id)))
            graph.add((node, RDFS.label, Literal(name)))
            graph.add((node, V.SETTINGS_DOCUMENT, Literal(document)))
            _settings_parameters(graph, node, settings_id, json.loads(document))
            graph.add((activities["features"], PROV.used, node))

        for (case_id,) in con.execute("SELECT case_id FROM cases ORDER BY case_id").fetchall():
            case = rf[f"case/{case_id}"]
            graph.add((case, RDF.type, PROV.Entity))
            graph.add((case, DCTERMS.identifier, Literal(case_id)))

        for case_id, scan, series_uid, modality, image_sha, status in con.execute(
            "SELECT case_id, scan, series_uid, modality, image_sha256, status FROM scans ORDER BY case_id, scan"
        ).fetchall():
            node = rf[f"scan/{slug(case_id, scan)}"]
            graph.add((node, RDF.type, PROV.Entity))
            graph.add((node, RDF.type, V.NCIT.C17999))  # imaging study / scan
            graph.add((node, DCTERMS.isPartOf, rf[f"case/{case_id}"]))
            graph.add((node, RDFS.label, Literal(scan)))
            if series_uid:
                graph.add((node, PROV.wasDerivedFrom, URIRef(f"urn:oid:{series_uid}")))  # pseudonymised UID
            graph.add((node, SCHEMA.description, Literal(f"modality {modality}, QC {status}")))
            graph.add((node, PROV.wasGeneratedBy, activities["ingest"]))
            _checksum(graph, node, image_sha)

        for case_id, scan, roi, source, mask_sha in con.execute(
            "SELECT case_id, scan, roi, source, mask_sha256 FROM masks ORDER BY case_id, scan, roi"
        ).fetchall():
            node = rf[f"mask/{slug(case_id, scan, roi)}"]
            graph.add((node, RDF.type, V.ROI_MASK))
            graph.add((node, RDF.type, PROV.Entity))
            graph.add((node, RDFS.label, Literal(roi)))
            graph.add((node, PROV.wasDerivedFrom, rf[f"scan/{slug(case_id, scan)}"]))
            graph.add((node, SCHEMA.description, Literal(f"rasterised from {source}")))
            graph.add((node, PROV.wasGeneratedBy, activities["ingest"]))
            graph.add((activities["features"], PROV.used, node))
            _checksum(graph, node, mask_sha)

        ro_class = {code: URIRef(info.ro_class) for code, info in registry.features().items()}
        rows = con.execute(
            "SELECT case_id, scan, roi, settings_id, ibsi_code, aggregation, value FROM features "
            "ORDER BY case_id, scan, roi, settings_id, ibsi_code, aggregation"
        ).fetchall()
        for case_id, scan, roi, settings_id, code, aggregation, value in rows:
            node = rf[f"value/{slug(case_id, scan, roi, settings_id, code, aggregation)}"]
            graph.add((node, RDF.type, ro_class[code]))
            graph.add((node, RDF.type, PROV.Entity))
            graph.add((node, V.HAS_VALUE, Literal(value, datatype=XSD.double)))
            graph.add((node, V.AGGREGATION_LABEL, Literal(aggregation)))
            graph.add((node, V.HAS_FEATURE_SPACE, rf[f"settings/{settings_id}"]))
            graph.add((node, PROV.wasGeneratedBy, activities["features"]))
            graph.add((node, PROV.wasDerivedFrom, rf[f"mask/{slug(case_id, scan, roi)}"]))

        add_stability(graph, con, rf)
        add_models(graph, con, rf)

        for path, sha256, stage in con.execute("SELECT path, sha256, stage FROM files ORDER BY path").fetchall():
            node = rf[f"file/{path}"]
            graph.add((node, RDF.type, PROV.Entity))
            graph.add((node, SCHEMA.name, Literal(path)))
            _checksum(graph, node, sha256)
            graph.add((activities["store"], PROV.used, node))
            if stage in activities:
                graph.add((node, PROV.wasGeneratedBy, activities[stage]))
    finally:
        con.close()
    return graph


def write_rdf(database: Path, turtle: Path, namespace: str) -> int:
    graph = build_graph(database, namespace)
    turtle.parent.mkdir(parents=True, exist_ok=True)
    graph.serialize(destination=str(turtle), format="turtle")
    return len(graph)
