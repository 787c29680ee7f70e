"""The ``radflow`` command. Each subcommand parses its arguments and calls one function; the pipeline's rules call
the pipeline subcommands (``discover``, ``ingest``, ``qc``, ``features``, ``perturb``, ``stability``, ``store``,
``rdf``, ``report-figures``, ``stability-report``)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-env", default="RADFLOW_PSEUDONYM_KEY", help="environment variable holding the key")
    parser.add_argument("--key-file", default="", help="file holding the key (outside the repository)")
    parser.add_argument("--allow-demo-key", action="store_true", help="fall back to the public demo key (demo data only)")


def _key(args, *data: Path | None) -> bytes:
    """The pseudonymisation key; the public demo key only for ``data`` the demo generator wrote (its checksums)."""
    from radflow.dicom.deid import DEMO_KEY, PseudonymKeyError, load_key

    key = load_key(args.key_env, args.key_file or None, allow_demo_key=args.allow_demo_key)
    if key == DEMO_KEY and args.allow_demo_key:
        from radflow.demo import demo_data_problem

        for path in (p for p in data if p is not None):
            problem = demo_data_problem(path)
            if problem:
                raise PseudonymKeyError(
                    f"the public demo key is only for data radflow's demo generator wrote, and {path} is not that "
                    f"({problem}): set ${args.key_env} or pseudonymisation.key_file")
    return key


def cmd_demo_cohort(args) -> None:
    from radflow.demo_longitudinal import write_cohort

    write_cohort(Path(args.outdir), n_patients=args.patients, seed=args.seed,
                 modalities=tuple(m for m in args.modalities.split(",") if m.strip()), timepoints=args.timepoints)


class UsageError(Exception):
    """A failure the user can fix (shown as one line, exit 2)."""


def _existing(path: str, what: str) -> Path:
    if not Path(path).exists():
        raise UsageError(f"{what} {path} does not exist")
    return Path(path)


def cmd_extract(args) -> None:
    import SimpleITK as sitk

    from radflow.extraction import (CtWithoutAirWarning, ct_without_air, extract_columns, roi_window_margin_mm,
                                    settings_mismatch, write_csv)
    from radflow.io import first_slice, image_modality, mask_references, read_image, read_mask, read_roi_window
    from radflow.settings import Settings

    _existing(args.image, "image")
    _existing(args.mask, "mask")
    settings = Settings.from_yaml(_existing(args.settings, "settings file")) if args.settings else Settings.from_dict({})
    drawn_on = _existing(args.mask_image, "mask image") if args.mask_image else None
    margin_mm = roi_window_margin_mm(settings)  # None: the features see more than the ROI's neighbourhood
    window = None if margin_mm is None or drawn_on else read_roi_window(Path(args.image), Path(args.mask), margin_mm,
                                                                         roi=args.roi)
    if window is None:
        image = read_image(Path(args.image), () if drawn_on else mask_references(Path(args.mask)))
        mismatch = settings_mismatch(settings, image_modality(image), args.image)
        if mismatch:
            raise UsageError(mismatch)
        window = image, read_mask(Path(args.mask), image, roi=args.roi, drawn_on=drawn_on)
        sample = sitk.GetArrayViewFromImage(image)
    else:  # only the ROI's neighbourhood was read, which around a liver lesion holds no air even in a CT; the first
        # slice's corners, outside the body, do
        sample = first_slice(Path(args.image))
    image, mask = window
    no_air = ct_without_air(settings, image_modality(image), sample, args.image)
    if no_air:
        warnings.warn(CtWithoutAirWarning(no_air), stacklevel=1)
    table = extract_columns(image, mask, settings)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as fh:
            write_csv(table, fh)
    else:
        write_csv(table, sys.stdout)


def cmd_filter(args) -> None:
    import SimpleITK as sitk

    from radflow.imaging.response_map import response_map
    from radflow.io import read_image
    from radflow.settings import Settings

    _existing(args.image, "image")
    settings = Settings.from_yaml(_existing(args.settings, "settings file"))
    if settings["filter"]["type"] == "none":
        raise UsageError(f"{args.settings} configures no filter (filter.type is none)")
    sitk.WriteImage(response_map(read_image(Path(args.image)), settings), args.out, useCompression=True)


def cmd_discover(args) -> None:
    from radflow.pipeline.discover import discover

    input_dir = Path(args.input_dir) if args.input_dir else None
    manifest = Path(args.input_manifest) if args.input_manifest else None
    discover(input_dir, Path(args.inventory), batch_size=args.batch_size,
             rois=json.loads(args.rois), key=_key(args, input_dir, manifest),
             mapping_file=Path(args.mapping_file) if args.mapping_file else None,
             series_rules=json.loads(args.series), roi_aliases=json.loads(args.roi_aliases),
             input_manifest=Path(args.input_manifest) if args.input_manifest else None, dates=args.dates,
             missing_patient_id=args.missing_patient_id,
             results_dir=Path(args.results_dir) if args.results_dir else None,
             timepoints=json.loads(args.timepoints))


def _thresholds(args):
    from radflow.qc import Thresholds

    return Thresholds.from_config(json.loads(args.qc))


def cmd_ingest(args) -> None:
    from radflow.pipeline.ingest import ingest_batch

    ingest_batch(Path(args.inventory), args.batch, Path(args.manifest), Path(args.volumes), _thresholds(args))


def cmd_clinical(args) -> None:
    from radflow import inventory
    from radflow.pipeline.discover import pseudonymise_clinical

    keep = json.loads(args.keep) if args.keep is not None else None
    clinical = _existing(args.clinical, "clinical table")
    imaged = inventory.case_ids(_existing(args.inventory, "inventory")) if args.inventory else None
    pseudonymise_clinical(clinical, Path(args.out), key=_key(args, clinical), keep=keep, imaged_cases=imaged)


def cmd_qc(args) -> None:
    from radflow.pipeline.qc import qc_batch

    qc_batch(Path(args.manifest), Path(args.outdir), _thresholds(args),
             overlay_png=Path(args.overlays) if args.overlays else None)


def cmd_features(args) -> None:
    from radflow.pipeline.features import extract_batch

    features, errors = extract_batch(Path(args.manifest), Path(args.qc), [Path(p) for p in args.settings],
                                     memory_mb=args.memory_mb)
    features.to_parquet(args.features, index=False)
    errors.to_parquet(args.errors, index=False)


def cmd_store(args) -> None:
    from radflow.pipeline.store import store_run

    tables = dict(item.split("=", 1) for item in args.tables)
    store_run(Path(args.database), [Path(p).parent for p in args.batches], Path(args.clinical) if args.clinical else None,
              [Path(p) for p in args.settings], {name: Path(path) for name, path in tables.items()},
              emptied_tables=tuple(args.emptied), receipt=Path(args.receipt) if args.receipt else None,
              run_json=Path(args.run) if args.run else None, inputs=Path(args.inputs) if args.inputs else None)


def cmd_run_record(args) -> None:
    from radflow.provenance.run_record import write_run_record

    record = write_run_record(Path(args.inventory), args.config, Path(args.workflow_dir), Path(args.run),
                              Path(args.inputs), clinical=Path(args.clinical) if args.clinical else None)
    logging.info("run %s: code %s, configuration sha256 %s", record["run_id"], record["code_version"],
                 record["config_sha256"])


def cmd_perturb(args) -> None:
    from radflow.pipeline.perturb import perturb_batch
    from radflow.stability.options import StabilityOptions

    options = StabilityOptions.from_dict(json.loads(args.options))
    table = perturb_batch(Path(args.manifest), Path(args.qc), [Path(p) for p in args.settings],
                          options.perturbation, seed=options.seed)
    table.to_parquet(args.out, index=False)


def cmd_stability(args) -> None:
    from radflow.pipeline.stability import run_stability
    from radflow.stability.options import StabilityOptions

    run_stability(StabilityOptions.from_dict(json.loads(args.options)), [Path(p) for p in args.features],
                  [Path(p) for p in args.perturbed], Path(args.stability), Path(args.stable), Path(args.cases))


def cmd_stability_report(args) -> None:
    from radflow.stability.figure import write_stability_figure
    from radflow.stability.options import StabilityOptions

    options = StabilityOptions.from_dict(json.loads(args.options))
    write_stability_figure(Path(args.stability), Path(args.stable), options.min_icc_ci_low, Path(args.png))


def cmd_delta(args) -> None:
    from radflow.pipeline.delta import delta_stage

    delta_stage([Path(p) for p in args.features], [Path(p) for p in args.scans], Path(args.out), Path(args.qc_out),
                args.icc_form)


def cmd_model(args) -> None:
    from radflow.pipeline.model import model_stage

    model_stage([Path(p) for p in args.features], [Path(p) for p in args.qc], Path(args.clinical),
                Path(args.stable) if args.stable else None, json.loads(args.options), Path(args.outdir),
                Path(args.models_dir), n_jobs=args.jobs, delta_path=Path(args.delta) if args.delta else None)


def cmd_model_figures(args) -> None:
    import pandas as pd

    from radflow.modelling.plots import write_model_figures

    write_model_figures(pd.read_parquet(args.predictions), pd.read_parquet(args.metrics), Path(args.roc_png),
                        Path(args.calibration_png))


def cmd_rdf(args) -> None:
    from radflow.provenance.rdf import write_rdf

    from radflow.provenance.ibsi_self_test import self_test

    result = self_test(Path(args.ibsi_dir)) if args.ibsi_dir else None
    if result:
        logging.info("IBSI self-test: %d of %d digital-phantom reference values", result["passed"],
                     result["references"])
    elif args.ibsi_dir:
        logging.warning("no IBSI digital phantom in %s: the export carries no IBSI self-test", args.ibsi_dir)
    n = write_rdf(Path(args.database), Path(args.turtle), args.namespace,
                  metadata_dir=Path(args.snakemake_metadata) if args.snakemake_metadata else None, self_test=result)
    logging.info("wrote %d triples to %s", n, args.turtle)


def cmd_validate_rdf(args) -> None:
    from radflow.provenance.shapes import validate

    conforms, report = validate(Path(args.turtle), Path(args.shapes), args.namespace, args.max_values)
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    if not conforms:
        sys.stderr.write(report)
        raise SystemExit(f"{args.turtle} does not conform to {args.shapes} (report above)")
    Path(args.report).write_text(report)
    logging.info(report.splitlines()[0])


def cmd_crate(args) -> None:
    from radflow.provenance.crate import build_crate

    build_crate(Path(args.crate), Path(args.database), Path(args.turtle), Path(args.shacl_report), Path(args.run),
                Path(args.workflow_dir), [Path(p) for p in args.settings], [Path(p) for p in args.report],
                metadata_dir=Path(args.snakemake_metadata) if args.snakemake_metadata else None)


def cmd_rerun(args) -> int:
    import tempfile

    from radflow.provenance.rerun import RerunError, rerun

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="radflow-rerun-"))
    try:
        identical, report = rerun(Path(args.crate), out, Path(args.input_dir) if args.input_dir else None,
                                  Path(args.clinical) if args.clinical else None, cores=args.cores)
    except RerunError as error:
        sys.stderr.write(f"radflow rerun: {error}\n")
        return 2
    sys.stdout.write(f"rerun in {out}\n{report}")
    return 0 if identical else 1


def cmd_diff(args) -> int:
    from radflow.provenance.compare import diff

    identical, report = diff(Path(args.a), Path(args.b))
    sys.stdout.write(report)
    return 0 if identical else 1


def cmd_report_figures(args) -> None:
    from radflow.report import write_report_figures

    write_report_figures(Path(args.database), Path(args.qc_html), Path(args.distributions_png))


def cmd_settings_import_pyradiomics(args) -> None:
    import yaml

    from radflow.pyradiomics_params import read
    from radflow.settings import Settings

    translations = read(_existing(args.params, "PyRadiomics parameter file"))
    out = Path(args.out)
    single = len(translations) == 1
    written = []
    for translation in translations:
        path = out if single else out.with_name(f"{out.stem}-{translation.image_type}{out.suffix or '.yaml'}")
        name = out.stem if single else f"{out.stem}-{translation.image_type}"
        settings = Settings.from_dict(translation.doc, name=name)  # validated before anything is written
        header = [f"# translated from the PyRadiomics parameter file {Path(args.params).name} "
                  f"(image type {translation.image_type}) by `radflow settings import-pyradiomics`"]
        header += [f"# not copied from PyRadiomics: {w}" for w in translation.warnings]
        text = "\n".join(header) + "\n" + yaml.safe_dump({"name": settings.name, **translation.doc}, sort_keys=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    for message in dict.fromkeys(w for t in translations for w in t.warnings):
        print(f"radflow: warning: {message}", file=sys.stderr)
    for path in dict.fromkeys(written):
        print(path)


def cmd_export_wide(args) -> None:
    from radflow.results import write_wide

    sidecar = write_wide(_existing(args.database, "results database"), args.out, args.settings_id, args.scan,
                         args.clinical)
    logging.info("wrote %s and its column list %s", args.out, sidecar)


def cmd_html_report(args) -> None:
    from radflow.html_report import write_html_report

    write_html_report(Path(args.database), Path(args.out), [Path(p) for p in args.overlays or []],
                      {"distributions": args.distributions, "stability": args.stability})


def cmd_run_summary(args) -> None:
    from radflow.run_summary import failure_summary, success_summary

    if args.snakemake_log:
        print(failure_summary(Path(args.snakemake_log)))
    else:
        print(success_summary(Path(args.database), Path(args.results)))


def cmd_kernels_build(args) -> None:
    from radflow.compiled import status
    from radflow.compiled.build import KernelBuildError, build
    from radflow.compiled.bytecode import compile_package

    if not compile_package():
        print("radflow: warning: some modules could not be byte-compiled (each process compiles them again)",
              file=sys.stderr)
    try:
        manifest = build(verbose=args.verbose, jobs=args.jobs)
    except KernelBuildError as exc:
        if not args.optional:
            raise
        print(f"radflow: warning: kernels stay just in time (numba, cached; ~0.6 s more per process): {exc}",
              file=sys.stderr)
        return
    built = json.loads(manifest.read_text())
    print(f"radflow: compiled kernels ahead of time in {built['seconds']} s ({built['processes']} processes)")
    print(f"radflow: {status()}")


def cmd_kernels_status(args) -> None:
    from radflow.compiled import status

    print(f"radflow: {status()}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-cohort", help="write the synthetic DICOM demo cohort")
    p.add_argument("outdir")
    p.add_argument("--patients", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--modalities", default="CT", help="comma-separated: CT (always), PT, MR, e.g. CT,PT,MR")
    p.add_argument("--timepoints", type=int, default=1, help="baseline plus follow-ups with a planted response")
    p.set_defaults(func=cmd_demo_cohort)

    p = sub.add_parser("extract", help="IBSI features of one image and mask, as CSV")
    p.add_argument("image", help="DICOM series folder, NIfTI or NRRD")
    p.add_argument("mask", help="NIfTI/NRRD mask on the image's voxels (any orientation or sub-box), DICOM RTSTRUCT "
                   "(with --roi) or DICOM SEG")
    p.add_argument("--settings", help="settings YAML in IBSI terms (default: radflow defaults)")
    p.add_argument("--roi", help="ROI name in an RTSTRUCT, segment label in a SEG, segment name in a 3D Slicer "
                   ".seg.nrrd, or label value(s) in a NIfTI/NRRD "
                   "label mask: 2, or 1,4 for a union (needed when it holds several labels; without it, a mask "
                   "of fractions in [0, 1] is its voxels >= 0.5)")
    p.add_argument("--mask-image", help="the DICOM series the mask was drawn on, when it is not IMAGE (a PET/CT's CT, "
                   "for features of its PET): the mask is resampled onto IMAGE (same frame of reference)")
    p.add_argument("--out", help="CSV file (default: standard output)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("kernels", help="the feature kernels: compile them ahead of time for this machine, or say "
                       "which kind is in use")
    kernels_sub = p.add_subparsers(dest="kernels_command", required=True)
    q = kernels_sub.add_parser("build", help="compile every kernel ahead of time (needs a C compiler; 25-50 s on "
                               "2 cores), and radflow's modules to bytecode: a fresh process then loads them in "
                               "milliseconds instead of ~0.6 s through numba")
    q.add_argument("--verbose", action="store_true", help="show the compiler's output")
    q.add_argument("--optional", action="store_true", help="without a C compiler, warn and exit 0 (setup scripts)")
    q.add_argument("--jobs", type=int, help="compiler processes at once (default: one per CPU)")
    q.set_defaults(func=cmd_kernels_build)
    q = kernels_sub.add_parser("status", help="ahead of time or just in time, and why")
    q.set_defaults(func=cmd_kernels_status)

    p = sub.add_parser("settings", help="settings documents: import a PyRadiomics parameter file")
    settings_sub = p.add_subparsers(dest="settings_command", required=True)
    q = settings_sub.add_parser("import-pyradiomics", help="translate a PyRadiomics parameter file into radflow "
                                "settings (one document per image type), warning about what is not copied")
    q.add_argument("params", help="PyRadiomics parameter file (YAML or JSON)")
    q.add_argument("-o", "--out", required=True, help="settings YAML to write; with several image types, "
                   "<stem>-<image type>.yaml beside it (original, log-sigma-2mm, wavelet-LLH, ...)")
    q.set_defaults(func=cmd_settings_import_pyradiomics)

    p = sub.add_parser("export", help="exports of a results database")
    export_sub = p.add_subparsers(dest="export_command", required=True)
    q = export_sub.add_parser("wide", help="one row per case and ROI, one column per feature "
                              "(family.feature.aggregation; IBSI codes in <out>.columns.csv)")
    q.add_argument("database", help="results/radflow.duckdb")
    q.add_argument("--settings-id", default=None, help="settings id (default: the only one in the database)")
    q.add_argument("--scan", default="test", help="scan label (default: test)")
    q.add_argument("--clinical", action="store_true", help="join the clinical table's columns on the pseudonym")
    q.add_argument("-o", "--out", required=True, help="features.csv or features.parquet")
    q.set_defaults(func=cmd_export_wide)

    p = sub.add_parser("filter", help="IBSI-2 filter response map of one image (settings' interpolation, then filter)")
    p.add_argument("image", help="DICOM series folder, NIfTI or NRRD")
    p.add_argument("--settings", required=True, help="settings YAML with a 'filter' group")
    p.add_argument("--out", required=True, help="response map, e.g. MAP.nii.gz (float32)")
    p.set_defaults(func=cmd_filter)

    p = sub.add_parser("discover", help="pipeline: find series and masks, pseudonymise, batch")
    p.add_argument("input_dir")
    p.add_argument("inventory")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--rois", required=True, help='JSON list of {"name", "pattern"}')
    p.add_argument("--mapping-file", default="")
    p.add_argument("--series", default="{}", help="JSON series rules (modalities, min_slices, skip_localizers, ...)")
    p.add_argument("--roi-aliases", default="{}", help='JSON {"attribute": ..., "centres": {centre: {roi: [...]}}}')
    p.add_argument("--input-manifest", default="", help="CSV of NIfTI/NRRD image and mask files")
    p.add_argument("--dates", choices=["shift", "drop"], default="shift", help="per-patient date shift or none")
    p.add_argument("--missing-patient-id", choices=["fail", "study_uid"], default="fail",
                   help="files without a PatientID: a failed case per study, or a case keyed on the study")
    p.add_argument("--results-dir", default="", help="the results folder (the mapping file must lie outside it)")
    p.add_argument("--timepoints", default="{}", help='JSON {"max_gap_days": N}: how scans group into timepoints')
    _key_arguments(p)
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("ingest", help="pipeline: read one batch into NIfTI volumes")
    p.add_argument("inventory")
    p.add_argument("batch")
    p.add_argument("manifest")
    p.add_argument("volumes")
    p.add_argument("--qc", default="{}", help="JSON of the config's qc thresholds")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("clinical", help="pipeline: pseudonymise the clinical CSV")
    p.add_argument("clinical")
    p.add_argument("out")
    p.add_argument("--keep", default=None, help="JSON list of the columns to keep (default: every non-identifying one)")
    p.add_argument("--inventory", default=None, help="the discover stage's inventory: rows matching no case are said")
    _key_arguments(p)
    p.set_defaults(func=cmd_clinical)

    p = sub.add_parser("qc", help="pipeline: QC one batch")
    p.add_argument("manifest")
    p.add_argument("outdir")
    p.add_argument("--qc", default="{}", help="JSON of the config's qc thresholds")
    p.add_argument("--overlays", default="", help="PNG contact sheet of mask overlays to write")
    p.set_defaults(func=cmd_qc)

    p = sub.add_parser("features", help="pipeline: features of one batch")
    p.add_argument("manifest")
    p.add_argument("qc")
    p.add_argument("features")
    p.add_argument("errors")
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--memory-mb", type=float, default=4000.0,
                   help="memory one ROI may use; a larger ROI is a ROI_TOO_LARGE failure (the rule's mem_mb)")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("store", help="pipeline: load all batches into DuckDB")
    p.add_argument("database")
    p.add_argument("--batches", nargs="+", required=True, help="the cases.parquet of each batch")
    p.add_argument("--clinical", default="", help="pseudonymised clinical.parquet (default: none, e.g. no clinical CSV)")
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--tables", nargs="*", default=[], help="NAME=PARQUET of cohort-level tables (stability, ...)")
    p.add_argument("--emptied", nargs="*", default=[], help="cohort-level tables this run does not produce (emptied)")
    p.add_argument("--receipt", default="", help="JSON receipt to write once the database has been replaced")
    p.add_argument("--run", default="", help="run.json of the run_record rule")
    p.add_argument("--inputs", default="", help="inputs.parquet (input checksums) of the run_record rule")
    p.set_defaults(func=cmd_store)

    p = sub.add_parser("run-record", help="pipeline: input checksums, resolved configuration and code version")
    p.add_argument("inventory")
    p.add_argument("run", help="run.json to write")
    p.add_argument("inputs", help="inputs.parquet to write")
    p.add_argument("--config", required=True, help="the resolved configuration as JSON")
    p.add_argument("--workflow-dir", required=True, help="the workflow's folder (Snakefile, rules, package)")
    p.add_argument("--clinical", default="", help="the clinical CSV (its checksum is recorded)")
    p.set_defaults(func=cmd_run_record)

    options_help = "JSON of the config's stability block"
    p = sub.add_parser("perturb", help="pipeline: features of perturbed copies of each test scan of one batch")
    p.add_argument("manifest")
    p.add_argument("qc")
    p.add_argument("out")
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--options", default="{}", help=options_help)
    p.set_defaults(func=cmd_perturb)

    p = sub.add_parser("stability", help="pipeline: feature stability (ICC, CCC, wCV, Bland-Altman), stable set")
    p.add_argument("stability", help="stability.parquet to write")
    p.add_argument("stable", help="stable_features.parquet to write")
    p.add_argument("cases", help="stability_cases.parquet to write")
    p.add_argument("--features", nargs="*", default=[], help="features.parquet of every batch")
    p.add_argument("--perturbed", nargs="*", default=[], help="perturbed_features.parquet of every batch")
    p.add_argument("--options", default="{}", help=options_help)
    p.set_defaults(func=cmd_stability)

    p = sub.add_parser("stability-report", help="pipeline: ICC per feature family and fraction kept, as PNG")
    p.add_argument("stability")
    p.add_argument("stable")
    p.add_argument("png")
    p.add_argument("--options", default="{}", help=options_help)
    p.set_defaults(func=cmd_stability_report)

    p = sub.add_parser("delta", help="pipeline: delta features between timepoints with their smallest detectable change")
    p.add_argument("out", help="delta_features.parquet to write")
    p.add_argument("qc_out", help="delta_qc.parquet to write (DELTA_* QC rows)")
    p.add_argument("--features", nargs="*", default=[], help="features.parquet of every batch")
    p.add_argument("--scans", nargs="*", default=[], help="scans.parquet of every batch")
    p.add_argument("--icc-form", default="ICC(2,1)", help="ICC form whose ANOVA error mean square gives the SEM")
    p.set_defaults(func=cmd_delta)

    p = sub.add_parser("model", help="pipeline: outcome models (nested CV, metrics, final fitted models)")
    p.add_argument("outdir", help="folder for models/model_features/predictions/metrics.parquet")
    p.add_argument("models_dir", help="folder for the final fitted models (<model_id>.joblib)")
    p.add_argument("--features", nargs="+", required=True, help="features.parquet of each batch")
    p.add_argument("--qc", nargs="*", default=[], help="qc.parquet of each batch")
    p.add_argument("--clinical", required=True, help="pseudonymised clinical.parquet")
    p.add_argument("--stable", default="", help="stable_features.parquet (default: every feature)")
    p.add_argument("--delta", default="", help="delta_features.parquet (model.features_from delta_*)")
    p.add_argument("--options", default="{}", help="the `model` configuration as JSON")
    p.add_argument("--jobs", type=int, default=1, help="parallel workers for folds and permutations")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("model-figures", help="pipeline: ROC and calibration figures of the binary models")
    p.add_argument("predictions")
    p.add_argument("metrics")
    p.add_argument("roc_png")
    p.add_argument("calibration_png")
    p.set_defaults(func=cmd_model_figures)

    p = sub.add_parser("rdf", help="pipeline: RDF export of the database")
    p.add_argument("database")
    p.add_argument("turtle")
    p.add_argument("--namespace", default="https://w3id.org/radflow/demo/")
    p.add_argument("--snakemake-metadata", default="", help="Snakemake's .snakemake/metadata folder (rule times)")
    p.add_argument("--ibsi-dir", default="", help="IBSI material (digital_phantom/, reference/) for the self-test")
    p.set_defaults(func=cmd_rdf)

    p = sub.add_parser("validate-rdf", help="pipeline: SHACL validation of the RDF export (fails on a violation)")
    p.add_argument("turtle")
    p.add_argument("shapes")
    p.add_argument("report", help="text report to write when the export conforms")
    p.add_argument("--namespace", default="https://w3id.org/radflow/demo/")
    p.add_argument("--max-values", type=int, default=20000, help="feature values checked (an even sample)")
    p.set_defaults(func=cmd_validate_rdf)

    p = sub.add_parser("crate", help="pipeline: the Workflow Run RO-Crate of the run")
    p.add_argument("crate", help="folder to write (replaced)")
    p.add_argument("--database", required=True)
    p.add_argument("--turtle", required=True)
    p.add_argument("--shacl-report", required=True)
    p.add_argument("--run", required=True, help="run.json of the run_record rule")
    p.add_argument("--workflow-dir", required=True)
    p.add_argument("--settings", nargs="*", default=[])
    p.add_argument("--report", nargs="*", default=[])
    p.add_argument("--snakemake-metadata", default="", help="Snakemake's .snakemake/metadata folder (rule times)")
    p.set_defaults(func=cmd_crate)

    p = sub.add_parser("rerun", help="re-execute a run from its crate; exit 0 only when every result is identical")
    p.add_argument("crate", help="the run crate folder (results/crate of the original run)")
    p.add_argument("--input-dir", default="", help="the input files (not needed for the demo cohort)")
    p.add_argument("--clinical", default="", help="the clinical CSV")
    p.add_argument("--out", default="", help="fresh working directory (default: a new temporary folder)")
    p.add_argument("--cores", type=int, default=2)
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("diff", help="what differs between two runs (databases or crates) and why")
    p.add_argument("a", help="result database (.duckdb) or run crate folder")
    p.add_argument("b", help="result database (.duckdb) or run crate folder")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("report-figures", help="pipeline: QC summary and feature plots")
    p.add_argument("database")
    p.add_argument("qc_html")
    p.add_argument("distributions_png")
    p.set_defaults(func=cmd_report_figures)

    p = sub.add_parser("html-report", help="pipeline: the single self-contained HTML report")
    p.add_argument("database")
    p.add_argument("out")
    p.add_argument("--overlays", nargs="*")
    p.add_argument("--distributions")
    p.add_argument("--stability")
    p.set_defaults(func=cmd_html_report)

    p = sub.add_parser("run-summary", help="what a run did (or which rule failed and why), for the terminal")
    p.add_argument("--database")
    p.add_argument("--results", default="results")
    p.add_argument("--snakemake-log", help="on failure: Snakemake's own log; prints each failed rule's reason")
    p.set_defaults(func=cmd_run_summary)
    return parser


def _is_user_error(exc: BaseException) -> bool:
    """Failures the user can fix: radflow's own input/settings/key errors, missing or unreadable files, malformed
    YAML/JSON. Anything else is a bug and keeps its traceback."""
    import json as json_module

    if isinstance(exc, (UsageError, OSError, json_module.JSONDecodeError)):
        return True
    module = type(exc).__module__
    if module.startswith("radflow.") and isinstance(exc, (ValueError, RuntimeError)):
        return True
    if type(exc) is ValueError and _raised_by_radflow(exc):  # a radflow check on its input, not a library's fault
        return True
    return module.startswith(("yaml", "jsonschema"))


def _raised_by_radflow(exc: BaseException) -> bool:
    """Whether the innermost frame of the traceback is radflow's own code (its ``raise``)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(Path(__file__).resolve().parent)


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return " ".join(text.split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"radflow: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import os

    from radflow.allocator import keep_freed_memory

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("highdicom").setLevel(logging.WARNING)  # its INFO lines quote source UIDs
    logging.getLogger("numexpr").setLevel(logging.WARNING)  # "NumExpr defaulting to N threads" on every command
    warnings.showwarning = _show_warning
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        code = args.func(args)
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stderr.close()
        return 0
    except Exception as exc:  # noqa: BLE001 - sorted into user errors (one line) and bugs (traceback) below
        if not _is_user_error(exc) or os.environ.get("RADFLOW_TRACEBACK"):
            raise
        print(f"radflow: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return code or 0
