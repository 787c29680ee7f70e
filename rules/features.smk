rule features:
    """IBSI features of every QC-passed scan and ROI of a batch, for every settings document."""
    input:
        manifest=f"{INTERIM}/batches/{{batch}}/ingest.json",
        qc=f"{INTERIM}/batches/{{batch}}/qc.parquet",
        settings=settings_files(),
    output:
        features=f"{INTERIM}/batches/{{batch}}/features.parquet",
        errors=f"{INTERIM}/batches/{{batch}}/features_qc.parquet",
    log:
        f"{LOGS}/features/{{batch}}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
    params:
        radflow=RADFLOW,
    shell:
        "{params.radflow} features {input.manifest:q} {input.qc:q} {output.features:q} {output.errors:q}"
        " --settings {input.settings:q} > {log} 2>&1"
