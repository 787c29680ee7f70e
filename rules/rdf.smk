rule rdf:
    """Describe cases, scans, masks, settings and every feature value in RDF (Radiomics Ontology + PROV-O)."""
    input:
        database=DATABASE,
    output:
        turtle=RDF_FILE,
    log:
        f"{LOGS}/rdf.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        namespace=config["rdf"]["namespace"],
    shell:
        "{params.radflow} rdf {input.database:q} {output.turtle:q} --namespace {params.namespace:q} > {log} 2>&1"
