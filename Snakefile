# radflow: raw DICOM -> QC -> IBSI features -> DuckDB -> RDF. Run `snakemake -c all` from the repository root for
# the demo cohort; see README.md for configuration. This file only sets up the configuration and includes the
# stages; every rule lives in rules/<stage>.smk and calls one `radflow` command.
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


# Schema violations as one line each (radflow.preflight), then Snakemake's validation (fills in the defaults).
sys.path.insert(0, f"{workflow.basedir}/workflow")  # the radflow the rules run
from radflow.preflight import config_errors, expand_user_paths

CONFIG_ERRORS = config_errors(config, f"{workflow.basedir}/config/schemas/config.schema.yaml")
for message in CONFIG_ERRORS:
    print(f"radflow: error: {message}", file=sys.stderr)
if CONFIG_ERRORS:
    sys.exit(2)
validate(config, f"{workflow.basedir}/config/schemas/config.schema.yaml")
expand_user_paths(config)


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/ingest.smk"
include: "rules/qc.smk"
include: "rules/features.smk"
include: "rules/stability.smk"
include: "rules/delta.smk"
include: "rules/model.smk"
include: "rules/provenance.smk"
include: "rules/store.smk"
include: "rules/rdf.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        STORE_RECEIPT,
        RDF_FILE,
        SHACL_REPORT,
        CRATE_DIR,
        REPORT_FILES,
        STABILITY_FIGURE,
        MODEL_TARGETS,
        overlay_files,
        REPORT_HTML,


onsuccess:
    print_run_summary()


onerror:
    print_run_summary(log, failed=True)
