RUN_RECORD = f"{INTERIM}/run.json"
INPUT_CHECKSUMS = f"{INTERIM}/inputs.parquet"
SHACL_REPORT = f"{RESULTS}/rdf/shacl_report.txt"
CRATE_DIR = f"{RESULTS}/crate"


DEMO_EXPORT = {
    "title": "radflow synthetic demo cohort (CT test-retest)",
    "creator": "radflow",
    "license": "https://creativecommons.org/licenses/by/4.0/",
}
config["export"] = {key: value for key, value in config.get("export", {}).items() if value is not None}
if USE_DEMO:
    config["export"] = {**DEMO_EXPORT, **config["export"]}
if not config["export"].get("license"):
    logger.warning("export.license is not set: results/crate and the RDF carry no licence; set one before sharing them")


# The resolved configuration (config.yaml with every --config override), as the run record keeps it.
SHARED_CONFIG = json.dumps(config, sort_keys=True, default=str)


rule run_record:
    """sha256 of every input file (by pseudonym, never by path), the resolved configuration and the code version."""
    input:
        inventory=INVENTORY,
        clinical=CLINICAL_TABLE or [],  # (ordering: the clinical CSV was read and checked)
    output:
        run=RUN_RECORD,
        inputs=INPUT_CHECKSUMS,
    log:
        f"{LOGS}/run_record.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        radflow=RADFLOW,
        config=SHARED_CONFIG,
        workflow_dir=workflow.basedir,
        # a parameter, not an input: `snakemake --report` lists rule inputs, and a local path may identify
        clinical=f"--clinical {shlex.quote(CLINICAL)}" if CLINICAL else "",
    shell:
        "{params.radflow} run-record {input.inventory:q} {output.run:q} {output.inputs:q} --config {params.config:q}"
        " --workflow-dir {params.workflow_dir:q} {params.clinical} > {log} 2>&1"


rule validate_rdf:
    """SHACL validation of the Turtle against ontology/shapes.ttl (every value, settings node and activity; feature
    values sampled beyond rdf.shacl_max_values); a violation fails the rule with a readable report."""
    input:
        turtle=RDF_FILE,
        shapes=f"{workflow.basedir}/ontology/shapes.ttl",
    output:
        report=SHACL_REPORT,
    log:
        f"{LOGS}/validate_rdf.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        radflow=RADFLOW,
        namespace=config["rdf"]["namespace"],
        max_values=config["rdf"].get("shacl_max_values", 20000),
    shell:
        "{params.radflow} validate-rdf {input.turtle:q} {input.shapes:q} {output.report:q}"
        " --namespace {params.namespace:q} --max-values {params.max_values} > {log} 2>&1"


rule crate:
    """The Workflow Run RO-Crate of this run: workflow, configuration, lock file, settings, inputs by checksum,
    outputs (Turtle, one Parquet per table, report) and one action per rule execution."""
    input:
        receipt=STORE_RECEIPT,
        turtle=RDF_FILE,
        shacl=SHACL_REPORT,
        run=RUN_RECORD,
        report=REPORT_FILES,
        settings=settings_files(),
    output:
        crate=directory(CRATE_DIR),
    log:
        f"{LOGS}/crate.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        radflow=RADFLOW,
        database=lambda wildcards, input: database_of(input.receipt),
        workflow_dir=lambda wildcards: workflow.basedir,
    shell:
        "{params.radflow} crate {output.crate:q} --database {params.database:q} --turtle {input.turtle:q}"
        " --shacl-report {input.shacl:q} --run {input.run:q} --workflow-dir {params.workflow_dir:q}"
        " --settings {input.settings:q} --report {input.report:q} --snakemake-metadata .snakemake/metadata"
        " > {log} 2>&1"
