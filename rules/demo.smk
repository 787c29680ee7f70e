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
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        params:
            radflow=RADFLOW,
            patients=config["demo_patients"],
            seed=config["demo_seed"],
            modalities=(
                config["demo_modalities"]
                if isinstance(config.get("demo_modalities"), str)
                else ",".join(config.get("demo_modalities", ["CT"]))
            ),
            timepoints=config.get("demo_timepoints", 1),
        shell:
            (
                "{params.radflow} demo-cohort resources/demo --patients {params.patients} --seed {params.seed}"
                " --modalities {params.modalities} --timepoints {params.timepoints} > {log} 2>&1"
            )
