rule qc:
    """Check each scan and mask of a batch; write the cases, scans, masks and qc tables of the batch and its mask
    overlay contact sheet."""
    input:
        manifest=f"{INTERIM}/batches/{{batch}}/ingest.json",
        volumes=f"{INTERIM}/batches/{{batch}}/volumes",
    output:
        cases=f"{INTERIM}/batches/{{batch}}/cases.parquet",
        scans=f"{INTERIM}/batches/{{batch}}/scans.parquet",
        masks=f"{INTERIM}/batches/{{batch}}/masks.parquet",
        qc=f"{INTERIM}/batches/{{batch}}/qc.parquet",
        overlays=report(
            f"{REPORT_DIR}/overlays/{{batch}}.png",
            caption="../workflow/report/overlays.rst",
            category="Quality control",
            subcategory="Mask overlays",
        ),
    log:
        f"{LOGS}/qc/{{batch}}.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        outdir=lambda wildcards: f"{INTERIM}/batches/{wildcards.batch}",
        qc=json.dumps(config["qc"]),
    shell:
        "{params.radflow} qc {input.manifest:q} {params.outdir} --qc {params.qc:q}"
        " --overlays {output.overlays:q} > {log} 2>&1"
