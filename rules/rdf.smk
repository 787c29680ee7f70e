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
        ibsi_dir=config["rdf"].get("ibsi_dir") or f"{workflow.basedir}/../shared/ibsi",
    shell:
        "{params.radflow} rdf {input.database:q} {output.turtle:q} --namespace {params.namespace:q}"
        " --snakemake-metadata .snakemake/metadata --ibsi-dir {params.ibsi_dir:q} > {log} 2>&1"
