checkpoint discover:
    """Find image series and their RTSTRUCT/SEG masks (and listed NIfTI/NRRD pairs), group them into pseudonymised
    cases and batches."""
    input:
        **{name: hidden_path(path) for name, path in discover_inputs().items()},
    output:
        inventory=INVENTORY,
    log:
        f"{LOGS}/discover.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        radflow=RADFLOW,
        key=KEY_ARGS,
        batch_size=config["batch_size"],
        rois=json.dumps(config["rois"]),
        series=json.dumps(config["series"]),
        roi_aliases=json.dumps(config["roi_aliases"]),
        input_dir=lambda wildcards, input: shlex.quote(input.dicom) if "dicom" in input.keys() else "''",
        input_manifest=lambda wildcards, input: (
            f"--input-manifest {shlex.quote(input.manifest)}" if "manifest" in input.keys() else ""
        ),
        dates=config["pseudonymisation"]["dates"],
        missing_id=config["pseudonymisation"]["missing_patient_id"],
        results=RESULTS,
        timepoints=json.dumps(config.get("timepoints", {})),
        fingerprint=input_fingerprint(),
        mapping=(
            f"--mapping-file {shlex.quote(config['pseudonymisation']['mapping_file'])}"
            if config["pseudonymisation"]["mapping_file"]
            else ""
        ),
    shell:
        "{params.radflow} discover {params.input_dir} {output.inventory:q} --batch-size {params.batch_size}"
        " --rois {params.rois:q} --series {params.series:q} --roi-aliases {params.roi_aliases:q}"
        " {params.input_manifest} --dates {params.dates} --missing-patient-id {params.missing_id}"
        " --timepoints {params.timepoints:q} --results-dir {params.results:q} {params.key} {params.mapping} > {log} 2>&1"


rule ingest:
    """Read one batch of cases: sorted, rescaled volumes and rasterised masks as NIfTI, pseudonymised metadata."""
    input:
        # a rediscovery rewrites the inventory; only batches whose fingerprint changed rerun
        inventory=ancient(INVENTORY),
    output:
        manifest=f"{INTERIM}/batches/{{batch}}/ingest.json",
        volumes=directory(f"{INTERIM}/batches/{{batch}}/volumes"),
    log:
        f"{LOGS}/ingest/{{batch}}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        radflow=RADFLOW,
        fingerprint=batch_fingerprint,
        qc=json.dumps(config["qc"]),
    shell:
        "{params.radflow} ingest {input.inventory:q} {wildcards.batch} {output.manifest:q} {output.volumes:q}"
        " --qc {params.qc:q} > {log} 2>&1"


if CLINICAL:

    rule clinical:
        """Pseudonymise the clinical table with the same key as the images (PatientID -> case_id), keeping only the
        columns the configuration names (outcome, survival, centre, covariates, clinical_keep)."""
        input:
            clinical=hidden_path(CLINICAL),
            # only to say which rows match no imaged case: a rediscovery need not pseudonymise the table again
            inventory=ancient(INVENTORY),
        output:
            CLINICAL_TABLE,
        log:
            f"{LOGS}/clinical.log",
        conda:
            CONDA_ENV
        threads: 1
        resources:
            mem_mb=500,
            runtime=10,
        params:
            radflow=RADFLOW,
            key=KEY_ARGS,
            keep=json.dumps(PLAN.clinical_keep),
        shell:
            "{params.radflow} clinical {input.clinical:q} {output:q} --keep {params.keep:q}"
            " --inventory {input.inventory:q} {params.key} > {log} 2>&1"
