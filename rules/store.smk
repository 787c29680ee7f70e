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
        clinical=CLINICAL_TABLE or [],
        settings=settings_files(),
        stability=list(STABILITY_TABLES.values()),
        model=list(MODEL_TABLES.values()) if MODELLING else [],
        run=RUN_RECORD,
        inputs=INPUT_CHECKSUMS,
        delta=list(DELTA_TABLES.values()),
    output:
        receipt=STORE_RECEIPT,
    log:
        f"{LOGS}/store.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        radflow=RADFLOW,
        database=lambda wildcards, output: database_of(output.receipt),
        tables=" ".join(
            f"{name}={path}"
            for name, path in {**STABILITY_TABLES, **(MODEL_TABLES if MODELLING else {}), **DELTA_TABLES}.items()
        ),
        clinical=f"--clinical {shlex.quote(CLINICAL_TABLE)}" if CLINICAL_TABLE else "",
        emptied="" if MODELLING else "--emptied " + " ".join(MODEL_TABLES),
    shell:
        "{params.radflow} store {params.database:q} --receipt {output.receipt:q} --batches {input.cases:q}"
        " {params.clinical} --settings {input.settings:q} --tables {params.tables} {params.emptied}"
        " --run {input.run:q} --inputs {input.inputs:q} > {log} 2>&1"
