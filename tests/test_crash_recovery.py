"""Recovery after a crash: `kill -9` of Snakemake (and its jobs) while `store` builds the database leaves a lock and a
half-built database beside the real one (radflow.store builds atomically); a plain rerun clears the stale lock of the
dead run (radflow.pipeline.run_lock), redoes the store job and leaves one complete database, while a live run's lock
is never touched."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from conftest import REPO
from radflow.pipeline.run_lock import OWNER_FILE, clear_stale_lock, record_lock_owner
from radflow.store import building_path

N_PATIENTS = 3


def make_lock(workdir: Path) -> Path:
    locks = workdir / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("some/input\n")
    (locks / "0.output.lock").write_text("some/output\n")
    return locks


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_lock_of_a_dead_run_on_this_host_is_cleared(tmp_path):
    locks = make_lock(tmp_path)
    record_lock_owner(tmp_path, pid=dead_pid())
    message = clear_stale_lock(tmp_path)
    assert message and "no longer running" in message
    assert not list(locks.glob("*.lock"))


def test_lock_of_a_live_snakemake_run_is_kept(tmp_path):
    locks = make_lock(tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake"])
    try:
        record_lock_owner(tmp_path, pid=live.pid)
        assert clear_stale_lock(tmp_path) is None
        assert len(list(locks.glob("*.lock"))) == 2
    finally:
        live.kill()
        live.wait()


def test_lock_without_owner_or_from_another_host_is_kept(tmp_path):
    locks = make_lock(tmp_path)
    assert clear_stale_lock(tmp_path) is None
    (tmp_path / ".snakemake" / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname() + "-other",
                                                                  "pid": dead_pid()}))
    assert clear_stale_lock(tmp_path) is None
    assert len(list(locks.glob("*.lock"))) == 2


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--config", f"demo_patients={N_PATIENTS}", "batch_size=2", *args]


def environment() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    return env


@pytest.mark.slow
def test_kill_9_during_store_then_plain_rerun_recovers(tmp_path):
    run = psutil.Popen(snakemake_cmd(tmp_path, "-c", "2"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=environment(), start_new_session=True)
    deadline = time.monotonic() + 900
    database = tmp_path / "results" / "radflow.duckdb"
    building = building_path(database)
    killed = False
    while run.poll() is None and time.monotonic() < deadline:
        for child in run.children(recursive=True):
            try:
                argv = child.cmdline()
            except psutil.Error:
                continue
            # once the store job has started building the database: Snakemake and its job, as a crash would
            if "radflow" in argv and "store" in argv and building.exists():
                os.killpg(run.pid, signal.SIGKILL)
                killed = True
                break
        if killed:
            break
        time.sleep(0.01)
    assert killed, "the run ended before its store job could be killed"
    run.wait()
    assert list((tmp_path / ".snakemake" / "locks").glob("*.lock")), "a killed run leaves its lock"
    assert building.exists() and not database.exists(), "and a half-built database, never in the real one's place"

    # a plain rerun: the lock is cleared (its owner is dead) and the store job runs again from the start
    plain = subprocess.run(snakemake_cmd(tmp_path, "-c", "2"), capture_output=True, text=True, env=environment(),
                           timeout=900)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert "LockException" not in plain.stdout + plain.stderr
    assert "removed the lock left by a Snakemake run" in plain.stderr
    assert "Rule: store" in plain.stdout + plain.stderr
    assert not building.exists()
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == N_PATIENTS
        duplicates = con.execute("SELECT count(*) FROM (SELECT case_id, scan, roi, settings_id, ibsi_code, "
                                 "aggregation FROM features GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
        assert duplicates == 0
    again = subprocess.run(snakemake_cmd(tmp_path, "--profile", str(REPO / "profiles" / "laptop"), "-c", "2"),
                           capture_output=True, text=True, env=environment(), timeout=900)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
