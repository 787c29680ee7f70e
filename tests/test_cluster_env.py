"""The conda env file of the rules (`--sdm conda`) is self-contained and matches the lock.

No conda implementation can run here (conda-forge is not reachable, and neither conda nor micromamba is packaged
for Debian or PyPI), so these tests check what decides whether `conda env create` can work once Snakemake has copied
the file to .snakemake/conda/<hash>.yaml: nothing in it refers to another file, and it pins exactly the lock.
"""
from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys

import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "envs"))
import make_env  # noqa: E402

ENV_FILE = REPO / "envs" / "radflow.yaml"


def pip_entries(document: dict) -> list[str]:
    (pip,) = [entry["pip"] for entry in document["dependencies"] if isinstance(entry, dict)]
    return pip


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_env_file_is_generated_from_the_lock():
    assert ENV_FILE.read_text() == make_env.env_document(REPO / "constraints.txt"), (
        "envs/radflow.yaml is out of date: run `python envs/make_env.py`")


def test_env_file_works_after_snakemake_copies_it(tmp_path):
    copied = tmp_path / ".snakemake" / "conda" / "0123abcd.yaml"
    copied.parent.mkdir(parents=True)
    shutil.copy(ENV_FILE, copied)
    document = yaml.safe_load(copied.read_text())
    entries = pip_entries(document)
    # every entry is an exact pin of a package: no -r/-c/-e options, no paths (relative or not), no URLs
    assert entries and all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+", e) for e in entries), [
        e for e in entries if "==" not in e]
    conda_specs = [entry for entry in document["dependencies"] if isinstance(entry, str)]
    assert any(spec.startswith("python=3.11") for spec in conda_specs)


def test_env_pins_every_runtime_dependency_at_the_installed_version():
    pinned = {canonical(e.split("==")[0]): e.split("==")[1] for e in pip_entries(yaml.safe_load(ENV_FILE.read_text()))}
    requirements = importlib.metadata.requires("radflow") or []
    runtime = [canonical(re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0]) for r in requirements if "extra ==" not in r]
    assert runtime and not [name for name in runtime if name not in pinned]
    # the environment the tests run in was installed with the same lock (pip install -c constraints.txt)
    mismatched = {name: (importlib.metadata.version(name), pinned[name]) for name in runtime
                  if importlib.metadata.version(name) != pinned[name]}
    assert not mismatched
