"""What identifies a run: its resolved configuration, the code that ran, the inputs it read (by checksum), its seeds.

Pipeline rule ``run_record`` writes two files the ``store`` rule loads into DuckDB (tables ``run`` and ``inputs``)
and the RDF export and the run crate describe:

- ``inputs.parquet``: one row per input file: batch, pseudonymised ``case_id``, scan, role (``image``, ``mask``,
  ``clinical``), configured ROI, sha256 and size. Never a source path: a PACS export's folder names may identify.
- ``run.json``: ``run_id``, the resolved configuration (with every ``--config`` override), its sha256, the code
  version (git commit of the checkout, or the sha256 of the workflow and package files when not in git), the seeds,
  and the digest of all input checksums.

``run_id`` is a digest of configuration, code and inputs: two runs of the same study on the same code share it (and so
their exports are the same); any other pair of runs can be told apart when their exports are merged.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pandas as pd

from radflow.pipeline.store import sha256_of

INPUT_COLUMNS = ["batch", "case_id", "scan", "role", "roi", "sha256", "size"]
# Where the configuration keeps a seed, as key paths.
SEED_KEYS = {"demo": ("demo_seed",), "stability": ("stability", "seed"), "model": ("model", "seed")}


def canonical_json(document) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def input_checksums(inventory: Path, clinical: Path | None = None) -> pd.DataFrame:
    """sha256 of every image and mask file the inventory lists (and of the clinical table), keyed by pseudonym."""
    batches = json.loads(inventory.read_text())["batches"]
    rows = []
    for batch, cases in sorted(batches.items()):
        for case in cases:
            for scan in case.get("scans", []):
                files = [("image", "", f) for f in scan.get("files") or []]
                files += [("mask", roi.get("roi", ""), roi["path"]) for roi in scan.get("rois") or [] if roi.get("path")]
                for role, roi, path in files:
                    path = Path(path)
                    if path.is_file():
                        rows.append((batch, case["case_id"], scan["scan"], role, roi, sha256_of(path),
                                     path.stat().st_size))
    if clinical is not None and clinical.is_file():
        rows.append(("", "", "", "clinical", "", sha256_of(clinical), clinical.stat().st_size))
    table = pd.DataFrame(rows, columns=INPUT_COLUMNS).drop_duplicates()
    return table.sort_values(["batch", "case_id", "scan", "role", "roi", "sha256"]).reset_index(drop=True)


def _git_commit(folder: Path) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0 or result.stdout.strip():
            return None  # not a checkout, or modified: the commit would not name the code that ran
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30)
        return head.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def workflow_files(workflow_dir: Path) -> list[Path]:
    """The files that define what the pipeline does: Snakefile, rules, config schema, package source, lock file."""
    patterns = ["Snakefile", "rules/*.smk", "config/schemas/*.yaml", "constraints.txt", "pyproject.toml",
                "workflow/radflow/**/*.py", "workflow/radflow/data/*", "ontology/*.ttl"]
    files = {p for pattern in patterns for p in workflow_dir.glob(pattern) if p.is_file()}
    return sorted(files)


def workflow_checksums(workflow_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(workflow_dir)): sha256_of(p) for p in workflow_files(workflow_dir)}


def code_version(workflow_dir: Path) -> str:
    """``git:<commit>`` of a clean checkout, else ``sha256:<digest of every workflow file's sha256>``."""
    commit = _git_commit(workflow_dir)
    if commit:
        return f"git:{commit}"
    digest = hashlib.sha256(canonical_json(workflow_checksums(workflow_dir)).encode()).hexdigest()
    return f"sha256:{digest}"


def seeds(config: dict) -> dict[str, int]:
    found: dict[str, int] = {}
    for name, path in SEED_KEYS.items():
        value: object = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float, str)):
            found[name] = int(value)
    return found


# Configuration values that are local paths: a folder name may identify a patient or a site, so only the demo's own
# (public) defaults are recorded; a rerun is given the data with --input-dir / --clinical.
PATH_KEYS = {("input_dir",): "resources/demo/dicom", ("input_manifest",): None,
             ("clinical",): "resources/demo/clinical.csv", ("pseudonymisation", "key_file"): None,
             ("pseudonymisation", "mapping_file"): None}
WITHHELD = "<local path, not recorded>"


def shareable_config(config: dict) -> dict:
    """The configuration with local paths withheld (the demo defaults are kept: they name nothing)."""
    shared = json.loads(canonical_json(config))
    for path, public in PATH_KEYS.items():
        parent = shared
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and parent.get(path[-1]) not in (None, public):
            parent[path[-1]] = WITHHELD
    return shared


def run_record(config: dict, workflow_dir: Path, inputs: pd.DataFrame) -> dict:
    config = shareable_config(config)
    config_json = canonical_json(config)
    config_sha256 = hashlib.sha256(config_json.encode()).hexdigest()
    inputs_sha256 = hashlib.sha256(
        "\n".join(f"{r.role}\t{r.case_id}\t{r.scan}\t{r.roi}\t{r.sha256}" for r in inputs.itertuples()).encode()
    ).hexdigest()
    version = code_version(workflow_dir)
    run_id = hashlib.sha256(f"{config_sha256}\n{version}\n{inputs_sha256}".encode()).hexdigest()[:16]
    return {"run_id": run_id, "config": config, "config_sha256": config_sha256, "code_version": version,
            "seeds": seeds(config), "inputs_sha256": inputs_sha256}


def write_run_record(inventory: Path, config_json: str, workflow_dir: Path, run_out: Path, inputs_out: Path,
                     clinical: Path | None = None) -> dict:
    inputs = input_checksums(inventory, clinical)
    record = run_record(json.loads(config_json), workflow_dir, inputs)
    inputs_out.parent.mkdir(parents=True, exist_ok=True)
    inputs.to_parquet(inputs_out, index=False)
    run_out.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record
