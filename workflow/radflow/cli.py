"""The ``radflow`` command. Each subcommand parses its arguments and calls one function; the pipeline's rules call
the pipeline subcommands (``discover``, ``ingest``, ``qc``, ``features``, ``perturb``, ``stability``, ``store``,
``rdf``, ``report-figures``, ``stability-report``)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-env", default="RADFLOW_PSEUDONYM_KEY", help="environment variable holding the key")
    parser.add_argument("--key-file", default="", help="file holding the key (outside the repository)")
    parser.add_argument("--allow-demo-key", action="store_true", help="fall back to the public demo key (demo data only)")


def _key(args) -> bytes:
    from radflow.dicom.deid import load_key

    return load_key(args.key_env, args.key_file or None, allow_demo_key=args.allow_demo_key)


def cmd_demo_cohort(args) -> None:
    from radflow.demo import write_cohort

    write_cohort(Path(args.outdir), n_patients=args.patients, seed=args.seed)


def cmd_extract(args) -> None:
    from radflow.extraction import extract_columns, roi_window_margin_mm, write_csv
    from radflow.io import read_image, read_mask, read_roi_window
    from radflow.settings import Settings

    settings = Settings.from_yaml(args.settings) if args.settings else Settings.from_dict({})
    margin_mm = roi_window_margin_mm(settings)  # None: the features see more than the ROI's neighbourhood
    window = None if margin_mm is None else read_roi_window(Path(args.image), Path(args.mask), margin_mm, roi=args.roi)
    if window is None:
        image = read_image(Path(args.image))
        window = image, read_mask(Path(args.mask), image, roi=args.roi)
    image, mask = window
    table = extract_columns(image, mask, settings)
    if args.out:
        with open(args.out, "w", newline="") as fh:
            write_csv(table, fh)
    else:
        write_csv(table, sys.stdout)


def cmd_filter(args) -> None:
    import SimpleITK as sitk

    from radflow.imaging.response_map import response_map
    from radflow.io import read_image
    from radflow.settings import Settings

    settings = Settings.from_yaml(args.settings)
    if settings["filter"]["type"] == "none":
        raise SystemExit(f"{args.settings} configures no filter (filter.type is none)")
    sitk.WriteImage(response_map(read_image(Path(args.image)), settings), args.out, useCompression=True)


def cmd_discover(args) -> None:
    from radflow.pipeline.discover import discover

    discover(Path(args.input_dir) if args.input_dir else None, Path(args.inventory), batch_size=args.batch_size,
             rois=json.loads(args.rois), key=_key(args),
             mapping_file=Path(args.mapping_file) if args.mapping_file else None,
             series_rules=json.loads(args.series), roi_aliases=json.loads(args.roi_aliases),
             input_manifest=Path(args.input_manifest) if args.input_manifest else None, dates=args.dates)


def _thresholds(args):
    from radflow.qc import Thresholds

    return Thresholds.from_config(json.loads(args.qc))


def cmd_ingest(args) -> None:
    from radflow.pipeline.ingest import ingest_batch

    ingest_batch(Path(args.inventory), args.batch, Path(args.manifest), Path(args.volumes), _thresholds(args))


def cmd_clinical(args) -> None:
    from radflow.pipeline.discover import pseudonymise_clinical

    pseudonymise_clinical(Path(args.clinical), Path(args.out), key=_key(args))


def cmd_qc(args) -> None:
    from radflow.pipeline.qc import qc_batch

    qc_batch(Path(args.manifest), Path(args.outdir), _thresholds(args),
             overlay_png=Path(args.overlays) if args.overlays else None)


def cmd_features(args) -> None:
    from radflow.pipeline.features import extract_batch

    features, errors = extract_batch(Path(args.manifest), Path(args.qc), [Path(p) for p in args.settings])
    features.to_parquet(args.features, index=False)
    errors.to_parquet(args.errors, index=False)


def cmd_store(args) -> None:
    from radflow.pipeline.store import store_run

    tables = dict(item.split("=", 1) for item in args.tables)
    store_run(Path(args.database), [Path(p).parent for p in args.batches], Path(args.clinical),
              [Path(p) for p in args.settings], {name: Path(path) for name, path in tables.items()})


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


def cmd_model(args) -> None:
    from radflow.pipeline.model import model_stage

    model_stage([Path(p) for p in args.features], [Path(p) for p in args.qc], Path(args.clinical),
                Path(args.stable) if args.stable else None, json.loads(args.options), Path(args.outdir),
                Path(args.models_dir), n_jobs=args.jobs)


def cmd_model_figures(args) -> None:
    import pandas as pd

    from radflow.modelling.plots import write_model_figures

    write_model_figures(pd.read_parquet(args.predictions), pd.read_parquet(args.metrics), Path(args.roc_png),
                        Path(args.calibration_png))


def cmd_rdf(args) -> None:
    from radflow.provenance.rdf import write_rdf

    n = write_rdf(Path(args.database), Path(args.turtle), args.namespace)
    logging.info("wrote %d triples to %s", n, args.turtle)


def cmd_report_figures(args) -> None:
    from radflow.report import write_report_figures

    write_report_figures(Path(args.database), Path(args.qc_html), Path(args.distributions_png))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-cohort", help="write the synthetic DICOM demo cohort")
    p.add_argument("outdir")
    p.add_argument("--patients", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=cmd_demo_cohort)

    p = sub.add_parser("extract", help="IBSI features of one image and mask, as CSV")
    p.add_argument("image", help="DICOM series folder, NIfTI or NRRD")
    p.add_argument("mask", help="NIfTI/NRRD mask, DICOM RTSTRUCT (with --roi) or DICOM SEG")
    p.add_argument("--settings", help="settings YAML in IBSI terms (default: radflow defaults)")
    p.add_argument("--roi", help="ROI name in an RTSTRUCT or segment label in a SEG")
    p.add_argument("--out", help="CSV file (default: standard output)")
    p.set_defaults(func=cmd_extract)

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
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("store", help="pipeline: load all batches into DuckDB")
    p.add_argument("database")
    p.add_argument("--batches", nargs="+", required=True, help="the cases.parquet of each batch")
    p.add_argument("--clinical", required=True)
    p.add_argument("--settings", nargs="+", required=True)
    p.add_argument("--tables", nargs="*", default=[], help="NAME=PARQUET of cohort-level tables (stability, ...)")
    p.set_defaults(func=cmd_store)

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

    p = sub.add_parser("model", help="pipeline: outcome models (nested CV, metrics, final fitted models)")
    p.add_argument("outdir", help="folder for models/model_features/predictions/metrics.parquet")
    p.add_argument("models_dir", help="folder for the final fitted models (<model_id>.joblib)")
    p.add_argument("--features", nargs="+", required=True, help="features.parquet of each batch")
    p.add_argument("--qc", nargs="*", default=[], help="qc.parquet of each batch")
    p.add_argument("--clinical", required=True, help="pseudonymised clinical.parquet")
    p.add_argument("--stable", default="", help="stable_features.parquet (default: every feature)")
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
    p.set_defaults(func=cmd_rdf)

    p = sub.add_parser("report-figures", help="pipeline: QC summary and feature plots")
    p.add_argument("database")
    p.add_argument("qc_html")
    p.add_argument("distributions_png")
    p.set_defaults(func=cmd_report_figures)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("highdicom").setLevel(logging.WARNING)  # its INFO lines quote source UIDs
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0
