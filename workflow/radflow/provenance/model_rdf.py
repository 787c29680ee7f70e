"""RDF of the outcome models and their metrics, linked with PROV-O to the features, settings and cases used.

Shape (``rf:`` the export namespace, ``mls:`` W3C ML-Schema, ``radflow:`` ontology/radflow.ttl)::

    rf:activity/model/<model_id>  a prov:Activity, mls:Run ;
        prov:used rf:settings/<settings>, rf:case/<case> ..., rf:value/<case>/<scan>/<roi>/<settings>/<code>/<agg> ...
        prov:wasAssociatedWith rf:software/radflow ; radflow:learner "logistic_l1" ; radflow:featureSet "radiomics" .
    rf:model/<model_id>  a prov:Entity, mls:Model ; prov:wasGeneratedBy rf:activity/model/<model_id> ;
        radflow:status "ok" ; spdx:checksum [...] ; radflow:hasModelFeature rf:model/<model_id>/feature/... ...
    rf:model/<model_id>/feature/<roi>/<settings>/<code>/<agg>  a radflow:ModelFeature ; radflow:ofFeature ro:<code> ;
        radflow:aggregation "3D, merged" ; radflow:roi "GTV" ; ro:P00578 rf:settings/<settings> ;
        radflow:weight 0.8 ; radflow:weightKind "coefficient" ; radflow:selectionFrequency 0.9 .
    rf:evaluation/<model_id>/<validation>/<metric>  a prov:Entity, mls:ModelEvaluation ;
        mls:specifiedBy rf:measure/<metric> ; mls:hasValue 0.84 ; radflow:ciLower ... ; radflow:ciUpper ... ;
        radflow:validation "cv" ; prov:wasDerivedFrom rf:model/<model_id> .

The activity used the feature values of the final model's inputs for every development case (the values the final
fit saw); candidate features that selection dropped are not listed value by value.
"""
from __future__ import annotations

import json
import math
from urllib.parse import quote

import duckdb
from rdflib import BNode, Graph, Literal, Namespace, URIRef

from radflow.features import registry
from radflow.store import has_table
from radflow.provenance import vocabulary as V
from radflow.provenance.iri import slug
from radflow.provenance.vocabulary import DCTERMS, PROV, RDF, RDFS, SCHEMA, SPDX, XSD

MLS = Namespace("http://www.w3.org/ns/mls#")
R = V.RADFLOW


def _double(value) -> Literal | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return Literal(float(value), datatype=XSD.double)


def add_models(graph: Graph, con: duckdb.DuckDBPyConnection, rf: Namespace) -> int:
    """Add every model, its features and metrics from the database; returns the number of models."""
    if not has_table(con, "models"):
        return 0
    graph.bind("mls", MLS)
    pipeline = rf["software/radflow"]
    ro_class = {code: URIRef(info.ro_class) for code, info in registry.features().items()}
    models = con.execute(
        "SELECT model_id, task, learner, feature_set, status, n_cases, params, model_file, model_sha256, config "
        "FROM models ORDER BY model_id").fetchall()
    for model_id, task, learner, feature_set, status, n_cases, params, model_file, sha256, config in models:
        scan = json.loads(config).get("scan", "test") if config else "test"
        activity, model = rf[f"activity/model/{model_id}"], rf[f"model/{model_id}"]
        graph.add((activity, RDF.type, PROV.Activity))
        graph.add((activity, RDF.type, MLS.Run))
        graph.add((activity, PROV.wasAssociatedWith, pipeline))
        graph.add((activity, R.learner, Literal(learner)))
        graph.add((activity, R.featureSet, Literal(feature_set)))
        graph.add((activity, R.task, Literal(task)))
        if params:
            graph.add((activity, R.hyperParameters, Literal(params)))
        graph.add((model, RDF.type, PROV.Entity))
        graph.add((model, RDF.type, MLS.Model))
        graph.add((model, DCTERMS.identifier, Literal(model_id)))
        graph.add((model, R.status, Literal(status)))
        graph.add((model, PROV.wasGeneratedBy, activity))
        graph.add((activity, MLS.hasOutput, model))
        if n_cases is not None:
            graph.add((model, R.nCases, Literal(int(n_cases), datatype=XSD.integer)))
        if model_file:
            graph.add((model, SCHEMA.name, Literal(model_file.rsplit("/", 1)[-1])))
        if sha256:
            checksum = BNode(f"sha256_{sha256}")
            graph.add((model, SPDX.checksum, checksum))
            graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
            graph.add((checksum, SPDX.checksumValue, Literal(sha256)))

        cases = [c for (c,) in con.execute(
            "SELECT DISTINCT case_id FROM predictions WHERE model_id = ? AND validation = 'cv' ORDER BY 1",
            [model_id]).fetchall()]
        for case_id in cases:
            graph.add((activity, PROV.used, rf[f"case/{case_id}"]))

        features = con.execute(
            "SELECT feature_key, settings_id, roi, ibsi_code, aggregation, feature, in_final_model, weight, "
            "weight_kind, selection_frequency FROM model_features WHERE model_id = ? ORDER BY feature_key",
            [model_id]).fetchall()
        for key, settings_id, roi, code, aggregation, name, final, weight, kind, frequency in features:
            node = rf[f"model/{model_id}/feature/{quote(slug(*key.split('|')), safe='/')}"]
            graph.add((node, RDF.type, R.ModelFeature))
            graph.add((model, R.hasModelFeature, node))
            graph.add((node, RDFS.label, Literal(name or key)))
            if code in ro_class:
                graph.add((node, R.ofFeature, ro_class[code]))
            if aggregation:
                graph.add((node, V.AGGREGATION_LABEL, Literal(aggregation)))
            if roi:
                graph.add((node, R.roi, Literal(roi)))
            if settings_id:
                graph.add((node, V.HAS_FEATURE_SPACE, rf[f"settings/{settings_id}"]))
                graph.add((activity, PROV.used, rf[f"settings/{settings_id}"]))
            graph.add((node, R.inFinalModel, Literal(bool(final))))
            for prop, value in ((R.weight, weight), (R.selectionFrequency, frequency)):
                literal = _double(value)
                if literal is not None:
                    graph.add((node, prop, literal))
            if kind:
                graph.add((node, R.weightKind, Literal(kind)))
            if final and settings_id and code:
                for case_id in cases:
                    value = rf[f"value/{slug(case_id, scan, roi, settings_id, code, aggregation)}"]
                    graph.add((activity, PROV.used, value))

        for validation, metric, value, low, high, n in con.execute(
            "SELECT validation, metric, value, ci_lower, ci_upper, n_cases FROM metrics WHERE model_id = ? "
            "ORDER BY validation, metric", [model_id]).fetchall():
            node = rf[f"evaluation/{model_id}/{validation}/{metric}"]
            measure = rf[f"measure/{metric}"]
            graph.add((measure, RDF.type, MLS.EvaluationMeasure))
            graph.add((measure, RDFS.label, Literal(metric.replace("_", " "))))
            graph.add((node, RDF.type, PROV.Entity))
            graph.add((node, RDF.type, MLS.ModelEvaluation))
            graph.add((node, MLS.specifiedBy, measure))
            graph.add((node, R.validation, Literal(validation)))
            graph.add((node, PROV.wasDerivedFrom, model))
            graph.add((node, PROV.wasGeneratedBy, activity))
            graph.add((activity, MLS.hasOutput, node))
            for prop, number in ((MLS.hasValue, value), (R.ciLower, low), (R.ciUpper, high)):
                literal = _double(number)
                if literal is not None:
                    graph.add((node, prop, literal))
            if n is not None:
                graph.add((node, R.nCases, Literal(int(n), datatype=XSD.integer)))
    return len(models)
