import hashlib
import json
import os
import shlex
from pathlib import Path

RESULTS = config.get("results_dir", "results")
INTERIM = "interim"  # working files: may name source paths, never exported
LOGS = f"{RESULTS}/logs"
DATABASE = f"{RESULTS}/radflow.duckdb"
RDF_FILE = f"{RESULTS}/rdf/radflow.ttl"
REPORT_DIR = f"{RESULTS}/report"
REPORT_FILES = [f"{REPORT_DIR}/qc_summary.html", f"{REPORT_DIR}/feature_distributions.png"]

# Cohort-level tables: written by the stability and model rules, loaded by the store rule. The names are the
# DuckDB tables of radflow.store (COHORT_TABLES, WHOLE_TABLES); tests/test_defaults.py keeps them equal.
STABILITY_TABLE_NAMES = ("stability", "stable_features", "stability_cases")
MODEL_TABLE_NAMES = ("models", "model_features", "predictions", "metrics")
STABILITY_DIR = f"{INTERIM}/stability"
STABILITY_TABLES = {name: f"{STABILITY_DIR}/{name}.parquet" for name in STABILITY_TABLE_NAMES}
MODEL_DIR = f"{INTERIM}/model"
MODEL_TABLES = {name: f"{MODEL_DIR}/{name}.parquet" for name in MODEL_TABLE_NAMES}


wildcard_constraints:
    batch=r"[A-Za-z0-9_-]+",  # one path component: a batch id never spans folders


# Every rule runs the package from this checkout, inside whatever environment Snakemake gives it (the project's
# virtualenv, or envs/radflow.yaml with --sdm conda).
RADFLOW = f"PYTHONPATH={workflow.basedir}/workflow${{PYTHONPATH:+:$PYTHONPATH}} python -m radflow"
CONDA_ENV = "../envs/radflow.yaml"

DEMO_INPUT_DIR = "resources/demo/dicom"
USE_DEMO = config["input_dir"] == DEMO_INPUT_DIR


def key_args():
    """Where the pseudonymisation key comes from, as `radflow` arguments (no key value ever appears here)."""
    settings = config["pseudonymisation"]
    args = f"--key-env {settings['key_env']}"
    if settings["key_file"]:
        args += f" --key-file {settings['key_file']}"
    if USE_DEMO:
        args += " --allow-demo-key"  # the public demo key, for the generated demo cohort only
    return args


KEY_ARGS = key_args()


def repo_or_workdir(path):
    """A config path as given (relative to the working directory) if it exists there, else inside the repository."""
    return path if os.path.exists(path) else os.path.join(workflow.basedir, path)


def settings_files():
    """The settings YAML of each `features` entry, in config order."""
    return [repo_or_workdir(path) for path in config["features"]]


def batch_ids(wildcards):
    with checkpoints.discover.get().output.inventory.open() as fh:
        return sorted(json.load(fh)["batches"])


def batch_files(name):
    def inputs(wildcards):
        return [f"{INTERIM}/batches/{batch}/{name}" for batch in batch_ids(wildcards)]

    return inputs


def discover_inputs():
    """The DICOM folder tree (`dicom`) and/or the image/mask manifest CSV (`manifest`) the configuration names."""
    inputs = {"dicom": config["input_dir"], "manifest": config.get("input_manifest")}
    return {name: path for name, path in inputs.items() if path}


def input_fingerprint():
    """Digest of the path, size and modification time of every input file, so that a fixed, added or removed file
    anywhere in the tree reruns discovery (a folder's own mtime only sees its direct entries). The generated demo
    cohort is exempt: it does not exist yet when the first run builds its DAG."""
    if USE_DEMO:
        return "demo"
    digest = hashlib.sha256()
    for root in discover_inputs().values():
        if os.path.isfile(root):
            stat = os.stat(root)
            digest.update(f"{root}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            continue
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def overlay_files(wildcards):
    """The mask-overlay contact sheet of every batch (for `rule all` and the report)."""
    return [f"{REPORT_DIR}/overlays/{batch}.png" for batch in batch_ids(wildcards)]
