rule rdf:
    """Describe cases, scans, masks, settings and every feature value in RDF (Radiomics Ontology + PROV-O)."""
    input:
        receipt=STORE_RECEIPT,
    output:
        turtle=RDF_FILE,
    log:
        f"{LOGS}/rdf.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        database=lambda wildcards, input: database_of(input.receipt),
        namespace=config["rdf"]["namespace"],
    shell:
        "{params.radflow} rdf {params.database:q} {output.turtle:q} --namespace {params.namespace:q} > {log} 2>&1"
