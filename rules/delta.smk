# Delta radiomics (radflow.delta): the change of every feature from each case's baseline scan to its follow-up
# scans (timepoints from acquisition dates, config `timepoints`), only between values of the same settings id, with
# each feature's smallest detectable change from the baseline test-retest scans. Cases without follow-ups give no
# rows; the rule is cheap and always runs. Its tables: DELTA_TABLES (rules/common.smk).


rule delta:
    """Delta features between timepoints and their smallest detectable change."""
    input:
        features=batch_files("features.parquet"),
        scans=batch_files("scans.parquet"),
    output:
        delta=DELTA_TABLES["delta_features"],
        qc=DELTA_TABLES["delta_qc"],
    log:
        f"{LOGS}/delta.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        radflow=RADFLOW,
        icc_form=config.get("stability", {}).get("icc_form", "ICC(2,1)"),
    shell:
        "{params.radflow} delta {output.delta:q} {output.qc:q} --features {input.features:q} --scans {input.scans:q}"
        " --icc-form {params.icc_form:q} > {log} 2>&1"
