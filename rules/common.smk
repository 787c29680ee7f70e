import functools
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

RESULTS = config.get("results_dir", "results")
INTERIM = "interim"  # working files: may name source paths, never exported
LOGS = f"{RESULTS}/logs"
DATABASE = f"{RESULTS}/radflow.duckdb"
# The store rule's declared output. The database itself is replaced atomically by `radflow store` and is not a
# declared output: Snakemake would delete it before the job runs and after it fails, losing the last good database.
STORE_RECEIPT = f"{DATABASE}.receipt.json"


def database_of(receipt):
    """The database a store receipt stands for (the receipt's path without its suffix)."""
    return str(receipt).removesuffix(".receipt.json")


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
# Written by the delta rule (radflow.delta), loaded by the store rule (radflow.store.DELTA_TABLES).
DELTA_TABLE_NAMES = ("delta_features", "delta_qc")
DELTA_DIR = f"{INTERIM}/delta"
DELTA_TABLES = {name: f"{DELTA_DIR}/{name}.parquet" for name in DELTA_TABLE_NAMES}


wildcard_constraints:
    batch=r"[A-Za-z0-9_-]+",  # one path component: a batch id never spans folders


# Every rule runs the package from this checkout, inside whatever environment Snakemake gives it (the project's
# virtualenv, or envs/radflow.yaml with --sdm conda).
WORKFLOW_PACKAGE_DIR = os.path.join(workflow.basedir, "workflow")  # shell-quoted below: a checkout may hold spaces
RADFLOW = f"PYTHONPATH={shlex.quote(WORKFLOW_PACKAGE_DIR)}${{PYTHONPATH:+:$PYTHONPATH}} python -m radflow"
CONDA_ENV = "../envs/radflow.yaml"

DEMO_INPUT_DIR = "resources/demo/dicom"
USE_DEMO = config["input_dir"] == DEMO_INPUT_DIR


def key_args():
    """Where the pseudonymisation key comes from, as `radflow` arguments (no key value ever appears here)."""
    settings = config["pseudonymisation"]
    args = f"--key-env {shlex.quote(settings['key_env'])}"
    if settings["key_file"]:
        args += f" --key-file {shlex.quote(settings['key_file'])}"
    if USE_DEMO:
        args += " --allow-demo-key"  # the public demo key, for the generated demo cohort only
    return args


KEY_ARGS = key_args()


def repo_or_workdir(path):
    """A config path as given (relative to the working directory) if it exists there, else inside the repository."""
    return path if os.path.exists(path) else os.path.join(workflow.basedir, path)


# Pre-flight, when the DAG is built and before any job runs: the key, the input paths, the settings documents and
# the ROI patterns are checked (one line each on the terminal, exit 2), and what the configuration cannot do with the
# clinical table at hand (no table, no outcome, no centre, ...) is said once (radflow.preflight).
from radflow.preflight import plan as preflight_plan, settings_coverage_note, stability_after_discovery

# A cluster job re-reads this file: it makes the same decisions (so its rules' params are the main process's) but
# neither checks nor says anything again.
MAIN_PROCESS = getattr(workflow, "is_main_process", True)
PLAN = preflight_plan(config, USE_DEMO, repo_or_workdir, main_process=MAIN_PROCESS)
for message in PLAN.errors:
    print(f"radflow: error: {message}", file=sys.stderr)
if PLAN.errors:
    sys.exit(2)
for message in PLAN.notes if MAIN_PROCESS else []:
    print(f"radflow: note: {message}", file=sys.stderr)
CLINICAL = PLAN.clinical  # the clinical CSV, or None (modelling skipped)
MODELLING = PLAN.modelling
CLINICAL_TABLE = f"{INTERIM}/clinical.parquet" if CLINICAL else None


def settings_files():
    """The settings YAML of each `features` entry, in config order."""
    return [repo_or_workdir(path) for path in config["features"]]


@functools.lru_cache(maxsize=4)
def _batch_fingerprints(path, mtime_ns):
    with open(path) as fh:
        inventory = json.load(fh)
    if MAIN_PROCESS:  # once per inventory version: scans no settings document is meant for (radflow.preflight)
        note = settings_coverage_note(inventory, settings_files())
        if note:
            print(f"radflow: note: {note}", file=sys.stderr)
    return inventory["fingerprints"]


def batch_fingerprints():
    """{batch: fingerprint} of the finished discover checkpoint, parsed once per inventory version (input
    functions ask for it once per job, and a 1,000-case inventory takes a while to parse)."""
    path = checkpoints.discover.get().output.inventory
    return _batch_fingerprints(str(path), os.stat(path).st_mtime_ns)


def batch_ids(wildcards):
    return sorted(batch_fingerprints())


def batch_fingerprint(wildcards):
    """What a batch's jobs read (its inventory entries, its source files' sizes and mtimes): a rule param, so a
    batch reruns when it changes and only then (the inventory file itself is an `ancient` input)."""
    return batch_fingerprints()[wildcards.batch]


def batch_files(name):
    def inputs(wildcards):
        return [f"{INTERIM}/batches/{batch}/{name}" for batch in batch_ids(wildcards)]

    return inputs


def discover_inputs():
    """The DICOM folder tree (`dicom`) and/or the image/mask manifest CSV (`manifest`) the configuration names."""
    inputs = {"dicom": config["input_dir"], "manifest": config.get("input_manifest")}
    return {name: path for name, path in inputs.items() if path}


def hidden_path(path):
    """``path`` as an input function: `snakemake --report` lists each rule's inputs, and a user's absolute input
    path may name a person or a study (its folder names); a function is shown as `<function>`."""
    return lambda wildcards: path


def input_key():
    """Short digest of the absolute input paths: each input gets its own inventory file, so a changed (or missing)
    input_dir never finds another input's inventory and never reuses its results."""
    roots = {name: os.path.abspath(path) for name, path in discover_inputs().items()}
    return hashlib.sha256(json.dumps(roots, sort_keys=True).encode()).hexdigest()[:16]


INVENTORY = f"{INTERIM}/inventory/{input_key()}.json"


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


STABILITY_DECIDED = {}  # the stability methods once discovery has run (said once on the terminal)


def stability_methods():
    """The stability methods after discovery: without retest pairs, test-retest becomes perturbation when
    stability.without_retest is perturbation, otherwise the terminal says what to do (radflow.preflight)."""
    if "methods" not in STABILITY_DECIDED:
        with checkpoints.discover.get().output.inventory.open() as fh:  # raises until discovery has run
            inventory = json.load(fh)
        methods, note = stability_after_discovery(
            inventory, STABILITY_METHODS, STABILITY.get("without_retest", "message")
        )
        STABILITY_DECIDED["methods"] = methods
        if note:
            print(f"radflow: note: {note}", file=sys.stderr)
    return STABILITY_DECIDED["methods"]


def stability_feature_files(wildcards):
    stability_methods()
    return batch_files("features.parquet")(wildcards)


def perturbed_feature_files(wildcards):
    if "perturbation" in stability_methods():
        return batch_files("perturbed_features.parquet")(wildcards)
    return []


def stability_options(wildcards):
    return json.dumps({**STABILITY, "method": stability_methods()})


def overlay_files(wildcards):
    """The mask-overlay contact sheet of every batch (for `rule all` and the report)."""
    return [f"{REPORT_DIR}/overlays/{batch}.png" for batch in batch_ids(wildcards)]


# Crash recovery: a run killed with kill -9 leaves its lock behind; clear it when its recorded owner is gone, so a
# plain rerun (with --rerun-incomplete, as the profiles set) recovers. See radflow.pipeline.run_lock.
if workflow.is_main_process:
    sys.path.insert(0, f"{workflow.basedir}/workflow")
    from radflow.pipeline.run_lock import clear_stale_lock, record_lock_owner

    _stale = clear_stale_lock(Path.cwd())
    if _stale:
        print(f"radflow: {_stale}", file=sys.stderr)

    onstart:
        record_lock_owner(Path.cwd())


def print_run_summary(snakemake_log=None, failed=False):
    """The end of a run says what happened (radflow.run_summary): counts, each model's headline metric with its
    interval, where the outputs are; on failure each failed rule's own one-line reason from its log."""
    if isinstance(snakemake_log, (list, tuple)):  # Snakemake 9 passes the list of its log files
        snakemake_log = next((str(p) for p in snakemake_log if os.path.exists(str(p))), None)
    if failed and not snakemake_log:
        print("radflow run failed (Snakemake wrote no log file to read the failing rule from; see above).")
        return
    arguments = (
        f"--snakemake-log {shlex.quote(str(snakemake_log))}"
        if failed
        else f"--database {shlex.quote(DATABASE)} --results {shlex.quote(RESULTS)}"
    )
    # not shell(): RADFLOW holds shell braces that shell() would format again
    subprocess.run(
        f"{RADFLOW} run-summary {arguments}", shell=True, executable=shutil.which("bash"), stderr=subprocess.DEVNULL
    )
