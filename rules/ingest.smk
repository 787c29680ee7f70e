checkpoint discover:
    """Find image series and their RTSTRUCT/SEG masks, group them into pseudonymised cases and batches."""
    input:
        config["input_dir"],
    output:
        inventory=f"{INTERIM}/inventory.json",
    params:
        batch_size=config["batch_size"],
        rois=json.dumps(config["rois"]),
        key_env=config["pseudonymisation"]["key_env"],
        key_file=config["pseudonymisation"]["key_file"] or "",
        mapping_file=config["pseudonymisation"]["mapping_file"] or "",
    log:
        f"{LOGS}/discover.log",
    conda:
        CONDA_ENV
    shell:
        "{RADFLOW} discover {input:q} {output.inventory:q} --batch-size {params.batch_size} --rois {params.rois:q}"
        " --key-env {params.key_env:q} --key-file {params.key_file:q} --mapping-file {params.mapping_file:q}"
        " {DEMO_KEY_ARGS} > {log} 2>&1"


rule ingest:
    """Read one batch of cases: sorted, rescaled volumes and rasterised masks as NIfTI, pseudonymised metadata."""
    input:
        inventory=f"{INTERIM}/inventory.json",
    output:
        manifest=f"{INTERIM}/batches/{{batch}}/ingest.json",
        volumes=directory(f"{INTERIM}/batches/{{batch}}/volumes"),
    log:
        f"{LOGS}/ingest/{{batch}}.log",
    conda:
        CONDA_ENV
    shell:
        "{RADFLOW} ingest {input.inventory:q} {wildcards.batch} {output.manifest:q} {output.volumes:q} > {log} 2>&1"


rule clinical:
    """Pseudonymise the clinical table with the same key as the images (PatientID -> case_id)."""
    input:
        clinical=config["clinical"],
    output:
        f"{INTERIM}/clinical.parquet",
    params:
        key_env=config["pseudonymisation"]["key_env"],
        key_file=config["pseudonymisation"]["key_file"] or "",
    log:
        f"{LOGS}/clinical.log",
    conda:
        CONDA_ENV
    shell:
        "{RADFLOW} clinical {input.clinical:q} {output:q} --key-env {params.key_env:q} --key-file {params.key_file:q}"
        " {DEMO_KEY_ARGS} > {log} 2>&1"
