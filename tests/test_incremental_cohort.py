"""Incremental cohorts, with real `snakemake` runs on a small DICOM cohort (the demo generator's, used as a user's
own folder): adding patients to a finished run reruns only the batches they land in (plus the one batch slot that
splits) and the cohort-level stages; breaking and then fixing one input file reruns only its batch; unchanged
batches keep their outputs and values; a changed or missing input_dir never reuses another input's results.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import pydicom
import pytest

from conftest import REPO
from radflow.demo import write_cohort

pytestmark = pytest.mark.slow
KEY = "radflow-incremental-test-key"
BATCH_SIZE = 2
FIRST, ADDED = 7, 2
BATCH_RULES = ("ingest", "qc", "features")


def snakemake(workdir: Path, input_dir: Path, clinical: Path, *args: str, check: bool = True):
    env = dict(os.environ, RADFLOW_PSEUDONYM_KEY=KEY)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--config", f"input_dir={input_dir}", f"clinical={clinical}", f"batch_size={BATCH_SIZE}", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def jobs_run(result: subprocess.CompletedProcess) -> Counter:
    """How many jobs of each rule this run finished (Snakemake's own log lines)."""
    return Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", result.stdout + result.stderr))


def inventory(workdir: Path) -> dict[str, list[str]]:
    (path,) = (workdir / "interim" / "inventory").glob("*.json")
    batches = json.loads(path.read_text())["batches"]
    return {name: [case["case_id"] for case in cases] for name, cases in batches.items()}


def features_of(workdir: Path) -> dict[str, list]:
    with duckdb.connect(str(workdir / "results" / "radflow.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT case_id, scan, roi, settings_id, ibsi_code, aggregation, value FROM features "
                           "ORDER BY ALL").fetchall()
    by_case: dict[str, list] = {}
    for row in rows:
        by_case.setdefault(row[0], []).append(row)
    return by_case


def files_by_patient(dicom: Path) -> dict[str, list[Path]]:
    grouped: dict[str, list[Path]] = {}
    for path in sorted(p for p in dicom.rglob("*") if p.is_file()):
        try:
            patient = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"]).PatientID
        except Exception:
            continue
        grouped.setdefault(str(patient), []).append(path)
    return grouped


def copy_patients(patients: list[str], grouped: dict[str, list[Path]], source: Path, target: Path) -> None:
    for patient in patients:
        for path in grouped[patient]:
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    source = write_cohort(root / "source", n_patients=FIRST + ADDED, seed=3)
    grouped = files_by_patient(source / "dicom")
    patients = sorted(grouped)
    assert len(patients) == FIRST + ADDED
    input_dir = root / "input"
    copy_patients(patients[:FIRST], grouped, source / "dicom", input_dir)
    workdir = root / "work"
    first = snakemake(workdir, input_dir, source / "clinical.csv")
    return {"root": root, "source": source, "grouped": grouped, "patients": patients, "input": input_dir,
            "work": workdir, "clinical": source / "clinical.csv", "first": first}


def test_adding_patients_reruns_only_their_batches(cohort):
    work = cohort["work"]
    before, features_before = inventory(work), features_of(work)
    assert sum(map(len, before.values())) == FIRST
    copy_patients(cohort["patients"][FIRST:], cohort["grouped"], cohort["source"] / "dicom", cohort["input"])
    result = snakemake(work, cohort["input"], cohort["clinical"])
    after = inventory(work)
    assert sum(map(len, after.values())) == FIRST + ADDED
    changed = {name for name, cases in after.items() if before.get(name) != cases}
    unchanged = set(after) - changed
    # cases that were already there keep their batch unless they were in the one slot that split
    moved = {c for name, cases in after.items() for c in cases if c in {x for v in before.values() for x in v}
             and c not in before.get(name, [])}
    assert len({name for name, cases in before.items() if any(c in moved for c in cases)}) <= 1
    assert unchanged, "the test cohort should leave some batches untouched"
    counts = jobs_run(result)
    for rule in BATCH_RULES:
        assert counts[rule] == len(changed), (rule, counts, changed)
    assert counts["discover"] == 1 and counts["store"] == 1
    # the unchanged batches' values are the very same rows
    features_after = features_of(work)
    assert len(features_after) == FIRST + ADDED
    for name in unchanged:
        for case_id in after[name]:
            assert features_after[case_id] == features_before[case_id]


def test_fixing_one_input_file_reruns_only_its_batch(cohort):
    work, grouped = cohort["work"], cohort["grouped"]
    snakemake(work, cohort["input"], cohort["clinical"])  # up to date whatever ran before
    patient = cohort["patients"][0]
    slice_file = next(p for p in grouped[patient] if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT")
    broken = cohort["input"] / slice_file.relative_to(cohort["source"] / "dicom")
    broken.write_bytes(slice_file.read_bytes()[:2000])  # a truncated copy: its pixels are unreadable
    broken_run = snakemake(work, cohort["input"], cohort["clinical"])
    counts = jobs_run(broken_run)
    assert counts["ingest"] == 1 and counts["store"] == 1, counts
    shutil.copy(slice_file, broken)  # fixed: the original bytes, a new modification time
    fixed_run = snakemake(work, cohort["input"], cohort["clinical"])
    counts = jobs_run(fixed_run)
    for rule in BATCH_RULES:
        assert counts[rule] == 1, (rule, counts)
    assert counts["store"] == 1
    again = snakemake(work, cohort["input"], cohort["clinical"])
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_missing_input_dir_never_reuses_another_inputs_results(cohort):
    result = snakemake(cohort["work"], cohort["root"] / "nonexistent", cohort["clinical"], check=False)
    assert result.returncode != 0
    assert "Nothing to be done" not in result.stdout + result.stderr
    assert "nonexistent" in result.stdout + result.stderr


def test_another_input_dir_gets_its_own_inventory(cohort):
    other = cohort["root"] / "other_input"
    copy_patients(cohort["patients"][:2], cohort["grouped"], cohort["source"] / "dicom", other)
    result = snakemake(cohort["work"], other, cohort["clinical"], "-n", "--quiet", "rules")
    assert "discover" in result.stdout + result.stderr  # its inventory does not exist yet: discovery runs
