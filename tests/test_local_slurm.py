"""The Slurm profile on a real single-node Slurm (cluster/local-slurm.sh: munged, slurmctld, slurmd from Debian's
packages on localhost): the demo cohort through `snakemake --profile profiles/slurm` gives the same DuckDB content as
a local run. Deployment: the shared virtualenv (the jobs run this interpreter's snakemake and `python -m radflow`).

Where Slurm cannot run (packages not installed, not root, daemons fail), the test says why: it fails under CI
(`CI` set, where .ci/run installs the packages) and is skipped with the reason elsewhere.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
SCRIPT = REPO / "cluster" / "local-slurm.sh"
N_PATIENTS = 3
COMPARED_TABLES = ("cases", "scans", "masks", "qc", "features", "settings", "clinical", "stability",
                   "stable_features")


def unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"local Slurm cannot run in CI: {reason}")
    pytest.skip(f"local Slurm cannot run here: {reason}")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    state = Path(os.environ.get("RADFLOW_SLURM_DIR", "/tmp/radflow-slurm"))
    missing = [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue")
               if not shutil.which(b) and not Path(f"/usr/sbin/{b}").exists()]
    if missing:
        unavailable(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge, as .ci/run does)")
    was_running = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True).stdout.count("running") == 3
    started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        logs = "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in sorted((state / "log").glob("*.log")))
        unavailable(f"cluster/local-slurm.sh start failed: {started.stderr.strip()}\n{logs}")
    yield state / "etc" / "slurm.conf"
    if not was_running:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=120)
        # a configless slurmd's cache link left in /run would make every later `snakemake` wait 10 s on scontrol
        cache = Path("/run/slurm/conf")
        assert not (cache.is_symlink() and str(cache.readlink()).startswith(str(state))), "stop left " + str(cache)


def snakemake(workdir: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--config", f"demo_patients={N_PATIENTS}", "batch_size=2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def rows(database: Path, table: str) -> list:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def test_slurm_run_equals_local_run(slurm, tmp_path):
    local = tmp_path / "local"
    snakemake(local, "-c", "2")
    on_slurm = tmp_path / "slurm"
    result = snakemake(
        on_slurm, "--profile", str(REPO / "profiles" / "slurm"),
        # this test cluster keeps no accounting database: job states from squeue (MinJobAge 900 s), checked soon
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
        "--seconds-between-status-checks", "2",
        env_extra={"SLURM_CONF": str(slurm), "SBATCH_PARTITION": "local"})
    log = result.stdout + result.stderr
    submitted = log.count("has been submitted with SLURM jobid")
    finished = log.count("Finished jobid")
    assert submitted >= 10 and submitted >= finished - 1, (submitted, finished)  # all but `rule all` ran on Slurm
    for table in COMPARED_TABLES:
        assert rows(on_slurm / "results" / "radflow.duckdb", table) == rows(local / "results" / "radflow.duckdb",
                                                                           table), table
    assert len(rows(local / "results" / "radflow.duckdb", "features")) > 1000
