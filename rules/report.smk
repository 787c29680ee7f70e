rule report_figures:
    """QC summary and feature distributions per scan for `snakemake --report`."""
    input:
        receipt=STORE_RECEIPT,
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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        radflow=RADFLOW,
        database=lambda wildcards, input: database_of(input.receipt),
    shell:
        "{params.radflow} report-figures {params.database:q} {output.qc_summary:q} {output.distributions:q} > {log} 2>&1"


REPORT_HTML = f"{REPORT_DIR}/index.html"


rule html_report:
    """The single self-contained HTML report (QC, features, ICC, models, decision curves, checklists)."""
    input:
        receipt=STORE_RECEIPT,
        distributions=f"{REPORT_DIR}/feature_distributions.png",
        stability=STABILITY_FIGURE,
        overlays=overlay_files,
    output:
        html=report(REPORT_HTML, caption="../workflow/report/index.rst", category="Report"),
    log:
        f"{LOGS}/html_report.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        radflow=RADFLOW,
        database=lambda wildcards, input: database_of(input.receipt),
    shell:
        "{params.radflow} html-report {params.database:q} {output.html:q} --overlays {input.overlays:q}"
        " --distributions {input.distributions:q} --stability {input.stability:q} > {log} 2>&1"
