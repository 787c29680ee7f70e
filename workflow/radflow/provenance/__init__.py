"""FAIR export: RDF in the Radiomics Ontology and PROV-O."""
