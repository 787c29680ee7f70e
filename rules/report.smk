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
