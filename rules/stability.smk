# Feature stability: test-retest scans, observers' masks of one lesion, or perturbed copies of each test scan
# (config `stability`). The stability rule writes cohort-level Parquet tables that the store rule loads.
STABILITY = config.get("stability", {})
STABILITY_METHODS = [STABILITY["method"]] if isinstance(STABILITY.get("method"), str) else STABILITY.get("method", [])
USE_PERTURBATION = "perturbation" in STABILITY_METHODS
STABILITY_FIGURE = f"{REPORT_DIR}/stability.png"


rule perturb:
    """Features of perturbed copies (noise, rotation, translation, volume, contour) of each test scan of a batch."""
    input:
        manifest=f"{INTERIM}/batches/{{batch}}/ingest.json",
        volumes=f"{INTERIM}/batches/{{batch}}/volumes",
        qc=f"{INTERIM}/batches/{{batch}}/qc.parquet",
        settings=settings_files(),
    output:
        f"{INTERIM}/batches/{{batch}}/perturbed_features.parquet",
    log:
        f"{LOGS}/perturb/{{batch}}.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
    params:
        radflow=RADFLOW,
        # only what decides the perturbed images: a new threshold must not redo the perturbations
        options=json.dumps({key: STABILITY[key] for key in ("seed", "perturbation") if key in STABILITY}),
    shell:
        "{params.radflow} perturb {input.manifest:q} {input.qc:q} {output:q} --settings {input.settings:q}"
        " --options {params.options:q} > {log} 2>&1"


rule stability:
    """ICC with CI, Lin's CCC with CI, wCV and Bland-Altman per feature; the stable feature set per settings id."""
    input:
        features=batch_files("features.parquet"),
        perturbed=batch_files("perturbed_features.parquet") if USE_PERTURBATION else [],
    output:
        stability=STABILITY_TABLES["stability"],
        stable=STABILITY_TABLES["stable_features"],
        cases=STABILITY_TABLES["stability_cases"],
    log:
        f"{LOGS}/stability.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        options=json.dumps(STABILITY),
    shell:
        "{params.radflow} stability {output.stability:q} {output.stable:q} {output.cases:q}"
        " --features {input.features:q} --perturbed {input.perturbed:q} --options {params.options:q} > {log} 2>&1"


rule stability_report:
    """ICC distribution per feature family and the fraction of features kept, for `snakemake --report`."""
    input:
        stability=STABILITY_TABLES["stability"],
        stable=STABILITY_TABLES["stable_features"],
    output:
        report(STABILITY_FIGURE, caption="../workflow/report/stability.rst", category="Stability"),
    log:
        f"{LOGS}/stability_report.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
        options=json.dumps({key: STABILITY[key] for key in ("min_icc_ci_low",) if key in STABILITY}),
    shell:
        "{params.radflow} stability-report {input.stability:q} {input.stable:q} {output:q}"
        " --options {params.options:q} > {log} 2>&1"
