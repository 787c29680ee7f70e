rule store:
    """Load every batch into the DuckDB database (the only job that writes it); reruns replace, never duplicate."""
    input:
        cases=batch_files("cases.parquet"),
        scans=batch_files("scans.parquet"),
        masks=batch_files("masks.parquet"),
        qc=batch_files("qc.parquet"),
        features=batch_files("features.parquet"),
        feature_errors=batch_files("features_qc.parquet"),
        clinical=CLINICAL_TABLE or [],
        settings=settings_files(),
        stability=list(STABILITY_TABLES.values()),
        model=list(MODEL_TABLES.values()) if MODELLING else [],
    output:
        database=DATABASE,
    log:
        f"{LOGS}/store.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        tables=" ".join(
            f"{name}={path}" for name, path in {**STABILITY_TABLES, **(MODEL_TABLES if MODELLING else {})}.items()
        ),
        clinical=f"--clinical {shlex.quote(CLINICAL_TABLE)}" if CLINICAL_TABLE else "",
        emptied="" if MODELLING else "--emptied " + " ".join(MODEL_TABLES),
    shell:
        "{params.radflow} store {output.database:q} --batches {input.cases:q} {params.clinical}"
        " --settings {input.settings:q} --tables {params.tables} {params.emptied} > {log} 2>&1"
