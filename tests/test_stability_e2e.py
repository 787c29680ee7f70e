"""End to end: `stability.method: perturbation` on two demo patients, through real `snakemake` runs.

The perturb rule must run per batch, the stability and stable-feature tables must reach DuckDB and RDF, and
rerunning the perturbations with the same seed must give the same numbers bit for bit.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import rdflib

from conftest import REPO

pytestmark = pytest.mark.slow
N_PATIENTS = 2
N_PERTURBATIONS = 3


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--configfile", str(workdir / "stability.yaml"),
           "--config", f"demo_patients={N_PATIENTS}", "batch_size=1", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.fixture(scope="module")
def perturbation_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("perturbation_run")
    (workdir / "stability.yaml").write_text(
        "stability:\n  method: perturbation\n  seed: 3\n"
        f"  perturbation: {{n_perturbations: {N_PERTURBATIONS}}}\n"
    )
    snakemake(workdir)
    return workdir


def test_perturbation_results_reach_duckdb_and_rdf(perturbation_run):
    batches = sorted((perturbation_run / "interim" / "batches").glob("*/perturbed_features.parquet"))
    assert len(batches) == N_PATIENTS  # one batch per patient, each perturbed by its own job
    perturbed = pd.concat([pd.read_parquet(p) for p in batches])
    assert set(perturbed["scan"]) == {"test"}
    assert perturbed.groupby("case_id")["perturbation"].nunique().tolist() == [N_PERTURBATIONS] * N_PATIENTS

    con = duckdb.connect(str(perturbation_run / "results" / "radflow.duckdb"), read_only=True)
    methods = con.execute("SELECT DISTINCT method, icc_form, n, k FROM stability WHERE n > 0").fetchall()
    assert methods == [("perturbation", "ICC(1,1)", N_PATIENTS, N_PERTURBATIONS)]
    n_features = con.execute("SELECT count(DISTINCT (ibsi_code, aggregation)) FROM features").fetchone()[0]
    assert con.execute("SELECT count(*) FROM stability").fetchone()[0] == n_features
    assert con.execute("SELECT count(*) FROM stability_cases").fetchone()[0] == N_PATIENTS
    stable = con.execute("SELECT count(*) FROM stable_features").fetchone()[0]
    kept_check = con.execute("SELECT count(*) FROM stability WHERE ci_low >= 0.75").fetchone()[0]
    assert stable == kept_check
    con.close()

    graph = rdflib.Graph().parse(perturbation_run / "results" / "rdf" / "radflow.ttl")
    vocab = rdflib.Namespace("https://w3id.org/radflow/vocab#")
    results = set(graph.subjects(rdflib.RDF.type, vocab.StabilityResult))
    assert len(results) == n_features
    (analysis,) = set(graph.subjects(rdflib.RDF.type, vocab.StabilityAnalysis))
    used_cases = [o for o in graph.objects(analysis, rdflib.URIRef("http://www.w3.org/ns/prov#used"))
                  if "/case/" in str(o)]
    assert len(used_cases) == N_PATIENTS
    assert (perturbation_run / "results" / "report" / "stability.png").stat().st_size > 10_000


def test_perturbations_are_deterministic_for_the_seed(perturbation_run):
    files = sorted((perturbation_run / "interim" / "batches").glob("*/perturbed_features.parquet"))
    before = [pd.read_parquet(p) for p in files]
    stability_before = pd.read_parquet(perturbation_run / "interim" / "stability" / "stability.parquet")
    snakemake(perturbation_run, "--forcerun", "perturb")
    for path, old in zip(files, before):
        pd.testing.assert_frame_equal(pd.read_parquet(path), old)
    pd.testing.assert_frame_equal(
        pd.read_parquet(perturbation_run / "interim" / "stability" / "stability.parquet"), stability_before)
