"""Recovery of a working directory whose Snakemake run was killed (kill -9, power loss, a lost login session).

Snakemake locks the working directory (``.snakemake/locks/``) while it runs and removes the lock when it ends; a run
that is killed leaves the lock behind, and every later run stops with LockException until ``snakemake --unlock``.
The lock files do not say who holds them, so radflow records the owner: when a run has taken the lock, its onstart
hook writes the host name and process id of the main Snakemake process (``.snakemake/radflow_lock_owner.json``).
The next run clears the lock only when that owner is certainly gone: same host, and no live process with that id
running Snakemake. A lock of a live run, of a run on another host, or without an owner record is left alone, so two
runs can never write the same directory at once.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path

OWNER_FILE = "radflow_lock_owner.json"


def _process_runs_snakemake(pid: int) -> bool:
    """True when process ``pid`` is alive and is a Snakemake process (a reused id of another program is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's: not ours to judge
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: alive is all we know
    # an empty command line: a process still being set up (or a kernel thread): not known to be gone
    return not cmdline or b"snakemake" in cmdline


def record_lock_owner(workdir: Path, pid: int | None = None, host: str | None = None) -> None:
    """Write who holds the lock of ``workdir`` (called once the run has locked it)."""
    state = Path(workdir) / ".snakemake"
    state.mkdir(parents=True, exist_ok=True)
    owner = {"host": host or socket.gethostname(), "pid": pid if pid is not None else os.getpid()}
    temporary = state / (OWNER_FILE + ".tmp")
    temporary.write_text(json.dumps(owner) + "\n")
    temporary.replace(state / OWNER_FILE)


def clear_stale_lock(workdir: Path) -> str | None:
    """Remove the lock of ``workdir`` when its recorded owner is a dead process on this host; returns a message
    saying what was removed, or None when there was no lock or it is (or may be) held by a live run."""
    state = Path(workdir) / ".snakemake"
    locks = sorted((state / "locks").glob("*.lock"))
    if not locks:
        return None
    try:
        owner = json.loads((state / OWNER_FILE).read_text())
        host, pid = str(owner["host"]), int(owner["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname() or _process_runs_snakemake(pid):
        return None
    for lock in locks:
        lock.unlink(missing_ok=True)
    return (f"removed the lock left by a Snakemake run that ended without cleaning up (pid {pid} on {host}, no "
            "longer running); its cut-off jobs are redone with --rerun-incomplete (set in profiles/)")
