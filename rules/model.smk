# Outcome modelling (config `model`): nested cross-validation of the configured models on the QC-passed test scans'
# stable features (harmonisation, redundancy reduction and selection inside the folds), metrics with bootstrap CIs,
# the outcome-permutation test, external validation on a held-out centre, and the final fitted models.
# The negative control (outcome shuffled before modelling) is the top-level switch `model_permute_outcome`, so that
# `--config model_permute_outcome=true` works (Snakemake reads nested --config values, and lowercase true, as text).
# PLAN.model: the configured options with the columns the clinical table lacks switched off (rules/common.smk).
MODEL = {
    **PLAN.model,
    "permute_outcome": str(config.get("model_permute_outcome", False)).lower() == "true",
}
MODEL_FILES_DIR = f"{RESULTS}/models"
MODEL_FIGURES = [f"{REPORT_DIR}/roc.png", f"{REPORT_DIR}/calibration.png"]
MODEL_TARGETS = MODEL_FIGURES if MODELLING else []  # no clinical table / outcome, or model.enabled false: no model


rule model:
    """Nested CV estimates, permutation test and final fit of every configured model (see radflow.modelling)."""
    input:
        features=batch_files("features.parquet"),
        qc=batch_files("qc.parquet"),
        clinical=CLINICAL_TABLE or [],  # the rule is only requested when MODELLING (a clinical table is configured)
        stable=STABILITY_TABLES["stable_features"] if MODEL.get("use_stable_features", True) else [],
        delta=DELTA_TABLES["delta_features"] if MODEL.get("features_from", "scan") != "scan" else [],
    output:
        models=MODEL_TABLES["models"],
        model_features=MODEL_TABLES["model_features"],
        predictions=MODEL_TABLES["predictions"],
        metrics=MODEL_TABLES["metrics"],
        fitted=directory(MODEL_FILES_DIR),
    log:
        f"{LOGS}/model.log",
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=480,
    params:
        radflow=RADFLOW,
        outdir=lambda wildcards, output: os.path.dirname(output.models),
        options=json.dumps(MODEL, sort_keys=True),
        stable=lambda wildcards, input: f"--stable {shlex.quote(input.stable)}" if input.stable else "",
        delta=lambda wildcards, input: f"--delta {shlex.quote(input.delta)}" if input.delta else "",
    shell:
        "{params.radflow} model {params.outdir:q} {output.fitted:q} --features {input.features:q} --qc {input.qc:q}"
        " --clinical {input.clinical:q} {params.stable} {params.delta} --options {params.options:q} --jobs {threads}"
        " > {log} 2>&1"


rule model_figures:
    """ROC and calibration curves of the binary models' out-of-fold predictions, for `snakemake --report`."""
    input:
        predictions=MODEL_TABLES["predictions"],
        metrics=MODEL_TABLES["metrics"],
    output:
        roc=report(MODEL_FIGURES[0], caption="../workflow/report/roc.rst", category="Modelling"),
        calibration=report(MODEL_FIGURES[1], caption="../workflow/report/calibration.rst", category="Modelling"),
    log:
        f"{LOGS}/model_figures.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        radflow=RADFLOW,
    shell:
        "{params.radflow} model-figures {input.predictions:q} {input.metrics:q} {output.roc:q} {output.calibration:q}"
        " > {log} 2>&1"
