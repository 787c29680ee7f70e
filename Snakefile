# radflow: raw DICOM -> QC -> IBSI features -> DuckDB -> RDF. Run `snakemake -c all` from the repository root for
# the demo cohort; see README.md for configuration. This file only sets up the configuration and includes the
# stages; every rule lives in rules/<stage>.smk and calls one `radflow` command.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


validate(config, f"{workflow.basedir}/config/schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/ingest.smk"
include: "rules/qc.smk"
include: "rules/features.smk"
include: "rules/stability.smk"
include: "rules/model.smk"
include: "rules/store.smk"
include: "rules/rdf.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        DATABASE,
        RDF_FILE,
        REPORT_FILES,
        STABILITY_FIGURE,
        MODEL_FIGURES,
        overlay_files,
