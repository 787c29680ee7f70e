import json
import os
from pathlib import Path

RESULTS = config.get("results_dir", "results")
INTERIM = "interim"  # working files: may name source paths, never exported
LOGS = f"{RESULTS}/logs"
DATABASE = f"{RESULTS}/radflow.duckdb"
RDF_FILE = f"{RESULTS}/rdf/radflow.ttl"
REPORT_DIR = f"{RESULTS}/report"
REPORT_FILES = [f"{REPORT_DIR}/qc_summary.html", f"{REPORT_DIR}/feature_distributions.png"]

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
