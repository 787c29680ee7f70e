"""Compiled kernels (radflow.compiled): the ahead-of-time build gives the bits the just-in-time kernels give, covers
what extraction calls, and is ignored once stale."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import radflow
from radflow.compiled import dispatch as kernels

from conftest import aot_build_in_use

# Grey-level counts that change the kernels' argument dtypes: int8 / uint8 / int16 zone and level arrays
# (radflow.features.zones, texture_matrices.compact_grey_levels), all built ahead of time; beyond 32,767 levels the
# int32 variants are left to numba's JIT (signatures.txt: each signature costs the build a second or more).
LEVEL_COUNTS = (6, 200, 1000, 40000)
BUILT_LEVEL_COUNTS = tuple(n for n in LEVEL_COUNTS if n <= 32767)


def synthetic_roi(seed: int, shape=(9, 14, 13)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.normal(40.0, 30.0, shape).round(1)
    z, y, x = np.indices(shape)
    centre = (np.array(shape) - 1) / 2
    mask = ((z - centre[0]) / 4.2) ** 2 + ((y - centre[1]) / 6) ** 2 + ((x - centre[2]) / 5.5) ** 2 <= 1
    return image, mask.astype(np.uint8)


def settings_for(levels: int) -> dict:
    return {"modality": "generic",
            "discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": levels},
                               "ivh": {"method": "fixed_bin_number", "n_bins": min(levels, 1000)}}}


def extract_all(levels: int, slices: int = 9) -> pd.DataFrame:
    image, mask = synthetic_roi(levels, shape=(slices, 14, 13))
    return radflow.extract(image, mask, settings_for(levels), spacing=(0.9, 0.8, 2.0))


@pytest.mark.parametrize("slices", (9, 1))
@pytest.mark.parametrize("levels", BUILT_LEVEL_COUNTS)
def test_every_kernel_call_of_an_extraction_is_compiled_ahead_of_time(levels, slices):
    """Every argument signature extraction uses is in the build (a new kernel or dtype must be added to
    radflow/compiled/signatures.txt, or it silently costs numba's start-up again). Under the census
    (RADFLOW_KERNEL_CENSUS) this test is what records those signatures."""
    before = {name: k.jit_calls for name, k in kernels.REGISTRY.items()}
    frame = extract_all(levels, slices)
    fell_back = {name: k.jit_calls - before.get(name, 0) for name, k in kernels.REGISTRY.items()
                 if k.jit_calls > before.get(name, 0)}
    assert frame["value"].notna().sum() > 150
    if kernels.CENSUS_VARIABLE not in os.environ and aot_build_in_use():
        assert not fell_back, f"kernels called just in time: {fell_back}"


def test_the_build_gives_the_bits_the_just_in_time_kernels_give(tmp_path):
    aot_build_in_use()
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import test_kernel as t; "
              "import pandas as pd; pd.concat([t.extract_all(n) for n in t.LEVEL_COUNTS] + [t.extract_all(200, 1)])"
              ".to_parquet(sys.argv[2])")
    out = tmp_path / "jit.parquet"
    result = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__), str(out)],
                            env={**os.environ, kernels.MODE_VARIABLE: "jit"}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    ahead = pd.concat([extract_all(n) for n in LEVEL_COUNTS] + [extract_all(200, 1)])
    just_in_time = pd.read_parquet(out)
    assert len(ahead) == len(just_in_time) > 2000
    a, j = ahead["value"].to_numpy(), just_in_time["value"].to_numpy()
    same = (a.view(np.int64) == j.view(np.int64)) | (np.isnan(a) & np.isnan(j))
    assert same.all(), ahead[~same].assign(jit=j[~same]).head(10).to_string()


@pytest.mark.parametrize("change", ["source", "environment", "format"])
def test_a_stale_build_is_ignored(tmp_path, change):
    """A build made from other kernel sources, another numba/numpy/Python/CPU, or an older manifest is not used."""
    aot_build_in_use()
    copy = tmp_path / "aot"
    shutil.copytree(kernels.BUILD_DIR, copy)
    assert kernels._Build(copy).modules
    manifest_path = copy / f"{kernels.BUILD_NAME}.json"
    manifest = json.loads(manifest_path.read_text())
    if change == "source":
        manifest["files"][next(iter(manifest["files"]))] = "0" * 64  # as if a kernel module changed after the build
    elif change == "environment":
        manifest["environment"] = "0" * 64  # as if numba was upgraded or the build came from another CPU
    else:
        manifest["module"] = manifest.pop("modules")[0]  # the single-module manifest of the first builds
    manifest_path.write_text(json.dumps(manifest))
    stale = kernels._Build(copy)
    assert not stale.modules and "stale" in stale.reason


def test_argument_keys_follow_numba_typing():
    numba = pytest.importorskip("numba")
    from radflow.compiled.build import argument_description

    cases = [np.zeros((3, 4)), np.zeros((3, 4))[:, ::2], np.zeros((3, 4), order="F"), np.zeros(5, dtype=np.uint8),
             np.zeros((2, 2), dtype=bool), 3, 2.5, True, np.int64(3), np.float64(1.0), np.int32(2)]
    readonly = np.zeros(3)
    readonly.flags.writeable = False
    cases.append(readonly)
    for value in cases:
        described = argument_description(numba.typeof(value))
        expected_keys = kernels._keys([described])
        assert kernels.argument_key((value,)) in expected_keys, (value, described)


def test_the_census_writes_the_signatures_an_extraction_calls(tmp_path):
    """RADFLOW_KERNEL_CENSUS (how signatures.txt is kept): the signatures a run calls, in the file's own format."""
    census = tmp_path / "signatures.txt"
    script = "import sys; sys.path.insert(0, sys.argv[1]); import test_kernel as t; t.extract_all(200)"
    result = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__)],
                            env={**os.environ, kernels.CENSUS_VARIABLE: str(census)}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    recorded = {name for name, _, _ in kernels.read_signatures(census)}
    listed = {name for name, _, _ in kernels.read_signatures()}
    assert {"radflow.features.texture_matrices.cooccurrence_counts", "radflow.features.mesh._volume_and_area",
            "radflow.features.zones._flood_zones"} <= recorded <= listed


def test_without_a_compiler_the_build_is_one_line_and_optional_in_setup(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no cc, no gcc
    command = [sys.executable, "-m", "radflow", "kernels", "build"]
    strict = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert strict.returncode == 2 and strict.stderr.strip().splitlines() == [
        "radflow: error: no C compiler (cc/gcc) on PATH: install one (Debian: apt-get install gcc)"]
    optional = subprocess.run([*command, "--optional"], env=env, capture_output=True, text=True, timeout=120)
    assert optional.returncode == 0 and "kernels stay just in time" in optional.stderr


@pytest.mark.parametrize("package", ("numba", "llvmlite", "numpy"))
def test_the_builds_version_lookup_agrees_with_importlib_metadata(package):
    from importlib import metadata

    assert kernels.installed_version(package) == metadata.version(package)


def test_a_part_of_the_build_leaves_numbas_cache_alone_and_loads(tmp_path, monkeypatch):
    """The build compiles the kernels' own just-in-time copies for linking only, without whole-module optimisation
    (radflow.compiled.build): none of them may reach numba's cache, where a later just-in-time call would load it."""
    from radflow.compiled import build

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: the build cannot run (tests/test_kernel.py's other build tests say so too)")
    rows = [line for line in kernels.SIGNATURES.read_text().splitlines() if line.startswith("radflow.features.ngldm.")]
    signatures = tmp_path / "signatures.txt"
    signatures.write_text("\n".join(rows) + "\n")
    cache = tmp_path / "numba-cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))  # the spawned worker reads it
    build.build(tmp_path / "aot", signatures, jobs=1)
    assert kernels._Build(tmp_path / "aot").modules
    assert not list(cache.rglob("*.nbi")) and not list(cache.rglob("*.nbc"))


def test_the_build_partition_keeps_modules_together_and_balances_what_numba_compiles():
    from radflow.compiled import build

    rows = kernels.read_signatures()
    for module in {name.rsplit(".", 1)[0] for name, _, _ in rows}:
        __import__(module)
    called = {k.name for k in build._called_kernels("radflow.features.grid_hull._integer_hull")}
    assert {"radflow.features.grid_hull._quickhull", "radflow.features.sorting.row_order"} <= called
    groups = build.partition(rows, 2)
    assert sorted(i for group in groups for i in group) == list(range(len(rows)))
    modules = [{rows[i][0].rsplit(".", 1)[0] for i in group} for group in groups]
    assert not modules[0] & modules[1]
    # the two modules that take numba longest (about 10 and 7 CPU s) go to different workers
    assert any("radflow.features.mesh" in m and "radflow.features.grid_hull" not in m for m in modules)
