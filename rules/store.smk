rule store:
    """Load every batch into the DuckDB database (the only job that writes it); reruns replace, never duplicate.
    The database is built beside the old one and moved into place atomically; the output is a receipt."""
    input:
        cases=batch_files("cases.parquet"),
        scans=batch_files("scans.parquet"),
        masks=batch_files("masks.parquet"),
        qc=batch_files("qc.parquet"),
        features=batch_files("features.parquet"),
        feature_errors=batch_files("features_qc.parquet"),
        clinical=f"{INTERIM}/clinical.parquet",
        settings=settings_files(),
        stability=list(STABILITY_TABLES.values()),
        model=list(MODEL_TABLES.values()),
    output:
        receipt=STORE_RECEIPT,
    log:
        f"{LOGS}/store.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        database=lambda wildcards, output: database_of(output.receipt),
        tables=" ".join(f"{name}={path}" for name, path in {**STABILITY_TABLES, **MODEL_TABLES}.items()),
    shell:
        "{params.radflow} store {params.database:q} --receipt {output.receipt:q} --batches {input.cases:q}"
        " --clinical {input.clinical:q} --settings {input.settings:q} --tables {params.tables} > {log} 2>&1"
