"""IRIs of radflow's own nodes in the export namespace: one naming rule for every RDF writer."""
from __future__ import annotations


def slug(*parts: object) -> str:
    """The IRI path of a node named by ``parts`` (pseudonymised ids, IBSI codes, aggregation labels): parts joined by
    "/", spaces to "_", commas dropped and dots to "_" ("2.5D, merged" -> "2_5D_merged"), so that every writer
    (features, stability, models) names the same feature value the same way."""
    return "/".join(str(p).replace(" ", "_").replace(",", "").replace(".", "_") for p in parts)
