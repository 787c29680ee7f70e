"""RDF stage benchmark: the streaming Turtle writer beside the former in-memory rdflib graph, same database, same run.

A synthetic result database per cohort size (``--patients``, default 40 and 400): per patient a test and a retest
scan, one ROI, every IBSI feature of the registry for one settings document (the demo's), 8 QC rows per scan, 24 DICOM
input checksums per scan, and one stability row per feature; the tables and columns the pipeline writes.

Each measurement runs in a fresh child process, so its peak memory (VmHWM) is that stage's alone:

* ``stream``: ``radflow.provenance.rdf.write_rdf``, what the ``rdf`` rule runs;
* ``in-memory``: the same export into an ``rdflib.Graph``, then ``graph.serialize(format="turtle")`` (the former
  rule); stopped after ``--old-timeout`` seconds (its Turtle serialisation grows about as n^1.7).

    .venv/bin/python benchmarks/bench_rdf.py [--patients 40 400] [--old-timeout 900]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from radflow import store
from radflow.features import registry
from radflow.settings import Settings

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "https://w3id.org/radflow/bench/"
QC_CODES = ("SERIES_READ", "SLICE_SPACING", "INTENSITY_IMPLAUSIBLE", "MASK_EMPTY", "MASK_AT_BORDER", "MASK_OFF_GRID",
            "ROI_TOO_SMALL", "RETEST_MISSING")


def synthetic_database(path: Path, n_patients: int) -> int:
    """Write a result database with ``n_patients`` cases; returns the number of feature rows."""
    settings = Settings.from_yaml(REPO / "config" / "settings" / "ct_iso1mm_fbs25.yaml")
    codes = sorted(registry.features().items())
    cases = [f"case-{i:012x}" for i in range(n_patients)]
    scans = [(c, s) for c in cases for s in ("test", "retest")]
    con = duckdb.connect(str(path))
    store.create_schema(con)

    def insert(table: str, rows: list[tuple]) -> None:
        frame = pd.DataFrame(rows, columns=store.columns(table))
        con.register("frame", frame)
        con.execute(f"INSERT INTO {table} SELECT * FROM frame")
        con.unregister("frame")

    insert("cases", [(c, 2, "pass") for c in cases])
    insert("scans", [(c, s, f"2.25.{i}", "CT", "ACME", "B30f", 120.0, 80, 0.8, 0.8, 2.5, "0" * 64, "pass",
                      "2020-01-01T10:00:00") for i, (c, s) in enumerate(scans)])
    insert("masks", [(c, s, "GTV", "RTSTRUCT", "label-000000000000", 5000, 4321.5, f"{i:064x}")
                     for i, (c, s) in enumerate(scans)])
    insert("qc", [(c, s, "GTV", code, "pass", f"{code} fine", 0.0) for c, s in scans for code in QC_CODES])
    rows = []
    for k, (c, s) in enumerate(scans):
        for j, (code, info) in enumerate(codes):
            aggregation = "3D, merged" if info.family in ("glcm", "glrlm") else "3D" if info.family in (
                "glszm", "gldzm", "ngtdm", "ngldm") else "none"
            rows.append((c, s, "GTV", settings.settings_id, info.family, info.name, code, aggregation,
                         (k + 1) * 1.000123456789 / (j + 3), None))
    insert("features", rows)
    insert("settings", [(settings.settings_id, settings.name, settings.canonical_json())])
    insert("stability", [(settings.settings_id, "GTV", info.family, info.name, code, "none", "test-retest",
                          "ICC(2,1)", n_patients, 2, 0.9, 0.8, 0.95, 0.9, 0.8, 0.95, 0.05, 0.0, -1.0, 1.0)
                         for code, info in codes])
    insert("software", [("radflow", "0.1.0"), ("numpy", "2.4.6"), ("rdflib", "7.6.0")])
    insert("inputs", [(f"b{i // 20:04d}", c, s, "image", "", f"{hash((c, s, f)) & (2**256 - 1):064x}", 500_000)
                      for i, c in enumerate(cases) for s in ("test", "retest") for f in range(24)])
    con.execute("INSERT INTO run VALUES ('bench', '{}', 'x', 'sha256:bench', '{}', 'y')")
    con.execute("CHECKPOINT")  # as the store job leaves it (an unflushed write-ahead log is replayed in memory)
    con.close()
    return len(rows)


CHILD = """
import sys, time
from pathlib import Path
mode, database, turtle, namespace = sys.argv[1:5]
start = time.perf_counter()
if mode == "stream":
    from radflow.provenance.rdf import write_rdf
    n = write_rdf(Path(database), Path(turtle), namespace)
else:
    from radflow.provenance.rdf import build_graph
    graph = build_graph(Path(database), namespace)
    graph.serialize(destination=turtle, format="turtle")
    n = len(graph)
# VmHWM, not ru_maxrss: Linux carries the parent's peak into a child's ru_maxrss across fork and exec
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(n, time.perf_counter() - start, peak_kb / 1024)
"""


def _peak_mb(pid: int) -> float | None:
    """Peak resident memory so far of a running process (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(mode: str, database: Path, turtle: Path, timeout: float) -> dict:
    child = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(database), str(turtle), NAMESPACE],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, peak = time.monotonic() + timeout, 0.0
    while child.poll() is None:
        peak = max(peak, _peak_mb(child.pid) or 0.0)
        if time.monotonic() > deadline:
            child.kill()
            child.wait()
            return {"mode": mode, "stopped_after_s": timeout, "peak_mb_so_far": round(peak, 1)}
        time.sleep(0.5)
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"{mode} failed: {stderr[-2000:]}")
    triples, seconds, peak_mb = stdout.split()
    return {"mode": mode, "triples": int(triples), "seconds": round(float(seconds), 2),
            "peak_mb": round(float(peak_mb), 1), "turtle_mb": round(turtle.stat().st_size / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[40, 400])
    parser.add_argument("--old-timeout", type=float, default=900)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for n in args.patients:
            database = Path(scratch) / f"bench_{n}.duckdb"
            n_features = synthetic_database(database, n)
            for mode in ("stream", "in-memory"):
                row = {"patients": n, "feature_rows": n_features,
                       **measure(mode, database, Path(scratch) / f"{mode}_{n}.ttl",
                                 args.old_timeout if mode == "in-memory" else 3600)}
                results.append(row)
                print(json.dumps(row), flush=True)
    out = REPO / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_rdf.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
