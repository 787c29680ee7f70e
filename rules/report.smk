rule report_figures:
    """QC summary and feature distributions per scan for `snakemake --report`."""
    input:
        database=DATABASE,
    output:
        qc_summary=report(
            f"{REPORT_DIR}/qc_summary.html",
            caption="../workflow/report/qc_summary.rst",
            category="Quality control",
        ),
        distributions=report(
            f"{REPORT_DIR}/feature_distributions.png",
            caption="../workflow/report/feature_distributions.rst",
            category="Features",
        ),
    params:
        radflow=RADFLOW,
    log:
        f"{LOGS}/report_figures.log",
    conda:
        CONDA_ENV
    shell:
        "{params.radflow} report-figures {input.database:q} {output.qc_summary:q} {output.distributions:q} > {log} 2>&1"


REPORT_HTML = f"{REPORT_DIR}/index.html"


rule html_report:
    """The single self-contained HTML report (QC, features, ICC, models, decision curves, checklists)."""
    input:
        database=DATABASE,
        distributions=f"{REPORT_DIR}/feature_distributions.png",
        stability=STABILITY_FIGURE,
        overlays=overlay_files,
    output:
        html=report(REPORT_HTML, caption="../workflow/report/index.rst", category="Report"),
    params:
        radflow=RADFLOW,
    log:
        f"{LOGS}/html_report.log",
    conda:
        CONDA_ENV
    shell:
        "{params.radflow} html-report {input.database:q} {output.html:q} --overlays {input.overlays:q}"
        " --distributions {input.distributions:q} --stability {input.stability:q} > {log} 2>&1"


# The end of a run says what happened: counts, each model's headline metric with its interval, where the outputs
# are; on failure each failed rule's own one-line reason from its log (radflow.run_summary).
def print_run_summary(snakemake_log=None):
    arguments = f"--snakemake-log {shlex.quote(snakemake_log)}" if snakemake_log else \
        f"--database {shlex.quote(DATABASE)} --results {shlex.quote(RESULTS)}"
    shell(f"{RADFLOW} run-summary {arguments} 2> /dev/null || true")
