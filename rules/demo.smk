if USE_DEMO:

    rule demo_cohort:
        """Write the synthetic DICOM demo cohort (CT test/retest, RTSTRUCT/SEG masks, clinical CSV)."""
        output:
            dicom=directory(DEMO_INPUT_DIR),
            clinical="resources/demo/clinical.csv",
        log:
            f"{LOGS}/demo_cohort.log",
        conda:
            CONDA_ENV
        params:
            radflow=RADFLOW,
            patients=config["demo_patients"],
            seed=config["demo_seed"],
        shell:
            "{params.radflow} demo-cohort resources/demo --patients {params.patients} --seed {params.seed} > {log} 2>&1"
