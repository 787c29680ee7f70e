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
    log:
        f"{LOGS}/report_figures.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
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
    log:
        f"{LOGS}/html_report.log",
    conda:
        CONDA_ENV
    params:
        radflow=RADFLOW,
    shell:
        "{params.radflow} html-report {input.database:q} {output.html:q} --overlays {input.overlays:q}"
        " --distributions {input.distributions:q} --stability {input.stability:q} > {log} 2>&1"
