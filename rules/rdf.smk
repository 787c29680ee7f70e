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
    threads: 1
    resources:
        # the graph is built in memory (rdflib): its peak grows with the database (benchmarks/README.md)
        mem_mb=lambda wildcards, input: max(1000, int(30 * input.size_mb)),
        runtime=120,
    params:
        radflow=RADFLOW,
        database=lambda wildcards, input: database_of(input.receipt),
        namespace=config["rdf"]["namespace"],
        ibsi_dir=config["rdf"].get("ibsi_dir") or f"{workflow.basedir}/../shared/ibsi",
    shell:
        "{params.radflow} rdf {params.database:q} {output.turtle:q} --namespace {params.namespace:q}"
        " --snakemake-metadata .snakemake/metadata --ibsi-dir {params.ibsi_dir:q} > {log} 2>&1"
