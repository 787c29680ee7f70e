"""Cohort scaling: the whole pipeline (`snakemake -c 2`) on the demo cohort at 10, 100 and 1,000 patients.

    .venv/bin/python benchmarks/bench_cohort.py --patients 10 100 1000     # results: benchmarks/out/cohort_<n>.json

Each cohort is generated once (`radflow.demo.write_cohort`, seed 0) into benchmarks/out/cohorts/<n>/ and reused; each
run starts from an empty working folder and processes it as a user's own DICOM folder (input_dir=..., clinical=...,
a benchmark pseudonymisation key). While Snakemake runs, its process tree is sampled every 0.2 s: every
`python -m radflow <command>` process is one job, with its wall time (first to last sample) and peak RSS (its whole
process tree). Reported:

- wall time of the run, per case, and per stage (sum of its jobs' wall times);
- Snakemake's own share: the fraction of the run's wall time during which no job process was running (DAG building,
  checkpoint re-evaluation, scheduling gaps, its own start and end), and the CPU seconds of the Snakemake process;
- peak RSS per rule (largest job), and job counts.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
BENCH_KEY = "radflow-benchmark-key-not-for-real-data"
RULE_OF_COMMAND = {"demo-cohort": "demo_cohort", "report-figures": "report_figures", "stability-report":
                   "stability_report", "model-figures": "model_figures"}


def cohort(n_patients: int) -> Path:
    """The demo cohort of ``n_patients``, generated once."""
    folder = OUT / "cohorts" / str(n_patients)
    done = folder / ".complete"
    if not done.exists():
        sys.path.insert(0, str(ROOT / "workflow"))
        from radflow.demo import write_cohort

        started = time.perf_counter()
        write_cohort(folder, n_patients=n_patients, seed=0)
        done.write_text(f"{time.perf_counter() - started:.1f} s\n")
    return folder


def job_command(process: psutil.Process) -> str | None:
    """The radflow subcommand a process runs (`python -m radflow <command> ...`), or None."""
    try:
        argv = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    for i in range(len(argv) - 2):
        if argv[i] == "-m" and argv[i + 1] == "radflow":
            return argv[i + 2]
    return None


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def summarise(jobs: dict[int, dict], interval: float) -> dict[str, dict]:
    stages: dict[str, dict] = {}
    for job in jobs.values():
        rule = RULE_OF_COMMAND.get(job["command"], job["command"])
        stage = stages.setdefault(rule, {"jobs": 0, "wall_s": 0.0, "max_job_s": 0.0, "peak_rss_mb": 0.0})
        duration = job["end"] - job["start"] + interval  # a job is seen for at least one interval
        stage["jobs"] += 1
        stage["wall_s"] += duration
        stage["max_job_s"] = max(stage["max_job_s"], duration)
        stage["peak_rss_mb"] = max(stage["peak_rss_mb"], job["peak_rss"] / 2**20)
    return stages


def run(n_patients: int, batch_size: int, workdir: Path, interval: float = 0.2,
        timeout: float | None = None) -> dict:
    """One run; with ``timeout`` (s) the run is stopped there and the result says so (``completed``: false), with
    the stages measured until then (a stage whose job was cut off counts that job's time so far)."""
    source = cohort(n_patients)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RADFLOW_PSEUDONYM_KEY=BENCH_KEY)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cmd = ["nice", sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "-c", "2", "--config", f"input_dir={source / 'dicom'}", f"clinical={source / 'clinical.csv'}",
           f"batch_size={batch_size}"]
    log = open(workdir / "snakemake.log", "w")
    started = time.perf_counter()
    main = psutil.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    completed = True
    snakemake_cpu = 0.0
    jobs: dict[int, dict] = {}
    idle_samples = busy_samples = 0
    while main.poll() is None:
        now = time.perf_counter() - started
        if timeout is not None and now > timeout:
            os.killpg(main.pid, 15)
            main.wait()
            completed = False
            break
        running = 0
        try:
            descendants = main.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for process in descendants:
            command = job_command(process)
            if command is None:
                continue
            running += 1
            job = jobs.setdefault(process.pid, {"command": command, "start": now, "end": now, "peak_rss": 0})
            job["end"] = now
            try:
                job["peak_rss"] = max(job["peak_rss"], tree_rss(process))
            except psutil.NoSuchProcess:
                pass
        if running:
            busy_samples += 1
        else:
            idle_samples += 1
        try:  # `nice` execs, so `main` is the Snakemake process itself
            cpu = main.cpu_times()
            snakemake_cpu = cpu.user + cpu.system
        except psutil.NoSuchProcess:
            pass
        time.sleep(interval)
    wall = time.perf_counter() - started
    log.close()
    if completed and main.returncode != 0:
        raise SystemExit(f"snakemake failed ({main.returncode}); see {workdir / 'snakemake.log'}")
    stages = summarise(jobs, interval)
    return {
        "patients": n_patients, "batch_size": batch_size, "wall_s": wall, "wall_per_case_s": wall / n_patients,
        "snakemake_idle_share": idle_samples / max(1, idle_samples + busy_samples),
        "snakemake_cpu_s": snakemake_cpu, "jobs": sum(s["jobs"] for s in stages.values()), "stages": stages,
        "cohort_generation": (source / ".complete").read_text().strip(), "completed": completed,
    }


def table(results: list[dict]) -> str:
    rules = sorted({rule for r in results for rule in r["stages"]},
                   key=lambda rule: -max(r["stages"].get(rule, {}).get("wall_s", 0) for r in results))
    lines = ["| | " + " | ".join(f"{r['patients']} patients" for r in results) + " |",
             "| --- |" + " --- |" * len(results)]
    lines.append("| wall time (s) | " + " | ".join(
        f"{r['wall_s']:.0f}" + ("" if r.get("completed", True) else " (stopped)") for r in results) + " |")
    lines.append("| per case (s) | " + " | ".join(f"{r['wall_per_case_s']:.2f}" for r in results) + " |")
    lines.append("| Snakemake share (no job running) | " + " | ".join(
        f"{100 * r['snakemake_idle_share']:.1f} %" for r in results) + " |")
    lines.append("| Snakemake CPU (s) | " + " | ".join(f"{r['snakemake_cpu_s']:.0f}" for r in results) + " |")
    lines.append("| jobs | " + " | ".join(str(r["jobs"]) for r in results) + " |")
    for rule in rules:
        cells = []
        for r in results:
            s = r["stages"].get(rule)
            cells.append(f"{s['wall_s']:.0f} s / {s['jobs']} jobs / {s['peak_rss_mb']:.0f} MB" if s else "-")
        lines.append(f"| {rule}: job time / jobs / peak RSS | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=OUT / "cohort_runs")
    parser.add_argument("--timeout", type=float, default=None, help="stop each run after this many seconds")
    args = parser.parse_args()
    results = []
    for n in args.patients:
        workdir = args.workdir / str(n)
        if workdir.exists():
            subprocess.run(["rm", "-rf", str(workdir)], check=True)
        result = run(n, args.batch_size, workdir, timeout=args.timeout)
        (OUT / f"cohort_{n}.json").write_text(json.dumps(result, indent=1) + "\n")
        results.append(result)
        print(table(results), flush=True)


if __name__ == "__main__":
    main()
