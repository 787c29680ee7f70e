"""FAIR export: RDF in the Radiomics Ontology and PROV-O.

``rdf`` writes the graph (cases, scans, masks, settings, feature values) and calls ``stability_rdf`` and
``model_rdf`` for the stability and model results; ``iri`` names every node; ``vocabulary`` holds the terms.
Only this package knows RDF: the domain packages (stability, modelling) do not import it.
"""
