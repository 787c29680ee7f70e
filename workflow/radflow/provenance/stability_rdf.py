"""RDF of the stability results: one node per result, linked to the feature's Radiomics Ontology class, the settings
and (through the analysis that produced it) the cases used; one node per stable-feature set.

Shape (``rf:`` the export namespace, ``radflow:`` the vocabulary in ontology/radflow.ttl)::

    rf:activity/stability/<settings>/<roi>/<method>  a prov:Activity, radflow:StabilityAnalysis ;
        radflow:method "test-retest" ; radflow:iccForm "ICC(2,1)" ;
        prov:used rf:settings/<settings>, rf:case/<case> ... ; prov:wasAssociatedWith rf:software/radflow .
    rf:stability/<settings>/<roi>/<method>/<code>/<aggregation>  a prov:Entity, radflow:StabilityResult ;
        radflow:ofFeature ro:<code> ; radflow:aggregation "3D, merged" ; ro:P00578 rf:settings/<settings> ;
        radflow:icc 0.93 ; radflow:iccCiLow 0.88 ; ... ; prov:wasGeneratedBy rf:activity/stability/... .
    rf:stable-features/<settings>/<roi>  a prov:Entity, radflow:StableFeatureSet ;
        radflow:threshold ... ; radflow:hasMember rf:stability/... ; prov:wasDerivedFrom rf:stability/... .

Result nodes are not typed with the RO feature class: they are statements about a feature, not feature values.
"""
from __future__ import annotations

import math

import duckdb
from rdflib import Graph, Literal, Namespace, URIRef

from radflow.features import registry
from radflow.provenance import vocabulary as V
from radflow.provenance.iri import slug
from radflow.provenance.vocabulary import DCTERMS, PROV, RDF, XSD
from radflow.store import has_table

R = V.RADFLOW
# stability column -> radflow property
STATISTIC_PROPERTIES = {
    "icc": R.icc, "ci_low": R.iccCiLow, "ci_high": R.iccCiHigh, "ccc": R.ccc, "ccc_ci_low": R.cccCiLow,
    "ccc_ci_high": R.cccCiHigh, "wcv": R.withinSubjectCV, "ba_bias": R.blandAltmanBias,
    "ba_loa_low": R.blandAltmanLoaLow, "ba_loa_high": R.blandAltmanLoaHigh,
}


def add_stability(graph: Graph, con: duckdb.DuckDBPyConnection, rf: Namespace) -> int:
    """Add the stability results, analyses and stable-feature sets of the database; returns the results added."""
    if not has_table(con, "stability"):
        return 0
    pipeline = rf["software/radflow"]
    ro_class = {code: URIRef(info.ro_class) for code, info in registry.features().items()}

    analyses = {}
    for settings_id, roi, method, icc_form in con.execute(
        "SELECT DISTINCT settings_id, roi, method, icc_form FROM stability ORDER BY ALL"
    ).fetchall():
        activity = rf[f"activity/stability/{slug(settings_id, roi, method)}"]
        analyses[(settings_id, roi, method)] = activity
        graph.add((activity, RDF.type, PROV.Activity))
        graph.add((activity, RDF.type, R.StabilityAnalysis))
        graph.add((activity, R.method, Literal(method)))
        graph.add((activity, R.iccForm, Literal(icc_form)))
        graph.add((activity, R.roi, Literal(roi)))
        graph.add((activity, PROV.used, rf[f"settings/{settings_id}"]))
        graph.add((activity, PROV.wasAssociatedWith, pipeline))
    if has_table(con, "stability_cases"):
        for settings_id, roi, method, case_id in con.execute(
            "SELECT settings_id, roi, method, case_id FROM stability_cases ORDER BY ALL"
        ).fetchall():
            analysis = analyses.get((settings_id, roi, method))
            if analysis is not None:
                graph.add((analysis, PROV.used, rf[f"case/{case_id}"]))

    columns = list(STATISTIC_PROPERTIES)
    rows = con.execute(
        f"SELECT settings_id, roi, method, ibsi_code, aggregation, n, k, {', '.join(columns)} FROM stability "
        "ORDER BY settings_id, roi, method, ibsi_code, aggregation"
    ).fetchall()
    results: dict[tuple, list[URIRef]] = {}
    for settings_id, roi, method, code, aggregation, n, k, *values in rows:
        node = rf[f"stability/{slug(settings_id, roi, method, code, aggregation)}"]
        results.setdefault((settings_id, roi, code, aggregation), []).append(node)
        graph.add((node, RDF.type, PROV.Entity))
        graph.add((node, RDF.type, R.StabilityResult))
        graph.add((node, R.ofFeature, ro_class.get(code, V.RO[code])))
        graph.add((node, V.AGGREGATION_LABEL, Literal(aggregation)))
        graph.add((node, V.HAS_FEATURE_SPACE, rf[f"settings/{settings_id}"]))
        graph.add((node, R.nCases, Literal(int(n), datatype=XSD.integer)))
        graph.add((node, R.nMeasurements, Literal(int(k), datatype=XSD.integer)))
        graph.add((node, PROV.wasGeneratedBy, analyses[(settings_id, roi, method)]))
        for name, value in zip(columns, values):
            if value is not None and math.isfinite(value):
                graph.add((node, STATISTIC_PROPERTIES[name], Literal(float(value), datatype=XSD.double)))

    if has_table(con, "stable_features"):
        for settings_id, roi, code, aggregation in con.execute(
            "SELECT settings_id, roi, ibsi_code, aggregation FROM stable_features ORDER BY ALL"
        ).fetchall():
            feature_set = rf[f"stable-features/{slug(settings_id, roi)}"]
            graph.add((feature_set, RDF.type, PROV.Entity))
            graph.add((feature_set, RDF.type, R.StableFeatureSet))
            graph.add((feature_set, R.roi, Literal(roi)))
            graph.add((feature_set, V.HAS_FEATURE_SPACE, rf[f"settings/{settings_id}"]))
            graph.add((feature_set, DCTERMS.description, Literal(
                "features whose lower ICC confidence bound reaches the configured threshold in every method")))
            for member in results.get((settings_id, roi, code, aggregation), []):
                graph.add((feature_set, R.hasMember, member))
                graph.add((feature_set, PROV.wasDerivedFrom, member))
    return len(rows)
