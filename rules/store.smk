rule store:
    """Load every batch into the DuckDB database (the only job that writes it); reruns replace, never duplicate."""
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
        database=DATABASE,
    log:
        f"{LOGS}/store.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        tables=" ".join(f"{name}={path}" for name, path in {**STABILITY_TABLES, **MODEL_TABLES}.items()),
    shell:
        "{params.radflow} store {output.database:q} --batches {input.cases:q} --clinical {input.clinical:q}"
        " --settings {input.settings:q} --tables {params.tables} > {log} 2>&1"
