"""``radflow rerun CRATE``: re-execute a shared run from its crate and say whether every result is reproduced.

1. Every recorded input checksum is looked for among the files given (``--input-dir``, ``--clinical``; for the demo
   cohort, the demo is generated again from its recorded size and seed). A missing or changed file is listed by its
   pseudonymised case, scan and role, and nothing runs.
2. The recorded configuration and settings documents run in a fresh working directory with this installation's
   workflow (a different code version is reported, not refused).
3. The tables ``features``, ``stability``, ``predictions`` and ``metrics`` are compared with the crate's, value for
   value; the report says per table identical or which rows differ. Identical only when all four are.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

from radflow.pipeline.store import sha256_of
from radflow.provenance.compare import RESULT_TABLES, diff_table, open_results, reasons
from radflow.provenance.run_record import WITHHELD, code_version

REPO = Path(__file__).resolve().parents[3]
DEMO_DICOM, DEMO_CLINICAL = "resources/demo/dicom", "resources/demo/clinical.csv"


class RerunError(RuntimeError):
    pass


def recorded_inputs(crate: Path) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(
            f"SELECT DISTINCT case_id, scan, role, roi, sha256 FROM read_parquet('{crate / 'tables' / 'inputs.parquet'}')"
            " ORDER BY ALL").fetchall()
    finally:
        con.close()


def checksums_under(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        found.setdefault(sha256_of(path), path)
    return found


def missing_inputs(recorded: list[tuple], available: dict[str, Path]) -> list[str]:
    """A line per recorded input whose checksum is not among the files given."""
    return [f"{role} of {case_id or 'the cohort'}{' ' + scan if scan else ''}{' ROI ' + roi if roi else ''}: "
            f"sha256 {sha256} missing or changed"
            for case_id, scan, role, roi, sha256 in recorded if sha256 not in available]


def _run(cmd: list[str], cwd: Path, log: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with open(log, "w") as fh:
        result = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        raise RerunError(f"`{' '.join(cmd[:4])} ...` failed (exit {result.returncode}); see {log}")


def prepare(crate: Path, out: Path, input_dir: Path | None, clinical: Path | None) -> tuple[dict, list[str]]:
    """Lay out the fresh working directory: inputs, settings and configuration. Returns (configuration, missing)."""
    config = json.loads((crate / "config.json").read_text())
    demo = config.get("input_dir") == DEMO_DICOM
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise RerunError(f"{out} is not empty: a rerun needs a fresh working directory")
    if demo and input_dir is None:
        _run([sys.executable, "-m", "radflow", "demo-cohort", "resources/demo", "--patients",
              str(config.get("demo_patients", 40)), "--seed", str(config.get("demo_seed", 7))], out, out / "demo.log")
    elif input_dir is None:
        raise RerunError("the crate's inputs are not public: give them with --input-dir (and --clinical)")
    elif demo:  # the demo key only applies to the demo's own folder
        shutil.copytree(input_dir, out / DEMO_DICOM)
        shutil.copy(clinical or input_dir.parent / "clinical.csv", out / DEMO_CLINICAL)
    inputs_root = out / DEMO_DICOM if demo or input_dir is None else input_dir
    available = checksums_under(inputs_root)
    clinical_path = (out / DEMO_CLINICAL) if demo else clinical
    if clinical_path is not None and clinical_path.is_file():
        available[sha256_of(clinical_path)] = clinical_path
    missing = missing_inputs(recorded_inputs(crate), available)
    if not demo and input_dir is not None:
        config["input_dir"] = str(input_dir.resolve())
        if clinical is not None:
            config["clinical"] = str(clinical.resolve())
    for key in ("input_manifest",):
        if config.get(key) == WITHHELD:
            raise RerunError(f"the run used a local {key}; a rerun of manifest inputs is not supported yet")
    pseudonymisation = config.get("pseudonymisation") or {}
    for key in ("key_file", "mapping_file"):
        if pseudonymisation.get(key) == WITHHELD:
            pseudonymisation[key] = None  # the key comes from the environment at the receiving centre
    settings = sorted((crate / "settings").glob("*.yaml"))
    (out / "settings").mkdir(exist_ok=True)
    config["features"] = []
    for path in settings:
        shutil.copy(path, out / "settings" / path.name)
        config["features"].append(f"settings/{path.name}")
    (out / "rerun_config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    return config, missing


def rerun(crate: Path, out: Path, input_dir: Path | None = None, clinical: Path | None = None,
          cores: int = 2) -> tuple[bool, str]:
    """(identical, report). Raises RerunError, naming every missing or changed input, before anything runs."""
    crate, out = Path(crate).resolve(), Path(out).resolve()
    config, missing = prepare(crate, out, input_dir, clinical)
    if missing:
        raise RerunError(f"{len(missing)} input file(s) of the crate are missing or changed; nothing was run:\n  "
                         + "\n  ".join(missing))
    lines = []
    recorded = duckdb.connect()
    try:
        row = recorded.execute(f"SELECT code_version FROM read_parquet('{crate / 'tables' / 'run.parquet'}')").fetchone()
        recorded_code = row[0] if row else None
    finally:
        recorded.close()
    here = code_version(REPO)
    if recorded_code != here:
        lines.append(f"note: the crate was made by code {recorded_code}; this is {here}")
    _run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(out), "-c", str(cores),
          "--configfile", str(out / "rerun_config.yaml"), "--", "store"], out, out / "snakemake.log")
    con_a, con_b = open_results(crate), open_results(out / config.get("results_dir", "results") / "radflow.duckdb")
    try:
        diffs = [diff_table(con_a, con_b, table) for table in RESULT_TABLES]
        for d in diffs:
            lines += d.summary()
        identical = all(d.identical for d in diffs)
        if not identical:
            lines += ["why (recorded differences):", *reasons(con_a, con_b)]
    finally:
        con_a.close()
        con_b.close()
    lines.append("reproduced: every table identical" if identical else "NOT reproduced")
    return identical, "\n".join(lines) + "\n"
