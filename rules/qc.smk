rule qc:
    """Check each scan and mask of a batch; write the cases, scans, masks and qc tables of the batch."""
    input:
        manifest=f"{INTERIM}/batches/{{batch}}/ingest.json",
        volumes=f"{INTERIM}/batches/{{batch}}/volumes",
    output:
        cases=f"{INTERIM}/batches/{{batch}}/cases.parquet",
        scans=f"{INTERIM}/batches/{{batch}}/scans.parquet",
        masks=f"{INTERIM}/batches/{{batch}}/masks.parquet",
        qc=f"{INTERIM}/batches/{{batch}}/qc.parquet",
    params:
        radflow=RADFLOW,
        outdir=lambda wildcards: f"{INTERIM}/batches/{wildcards.batch}",
        min_roi_volume=config["qc"]["min_roi_volume_mm3"],
    log:
        f"{LOGS}/qc/{{batch}}.log",
    conda:
        CONDA_ENV
    shell:
        "{params.radflow} qc {input.manifest:q} {params.outdir}"
        " --min-roi-volume {params.min_roi_volume} > {log} 2>&1"
