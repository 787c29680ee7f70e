"""radflow.compiled.bytecode: after setup, a process that may not write bytecode compiles none of radflow's modules."""
from __future__ import annotations

import os
import subprocess
import sys

from radflow.compiled.bytecode import PACKAGE, compile_package

# Imports what `radflow extract` imports and prints how many radflow source files Python had to compile.
COUNT_COMPILED = """
import importlib._bootstrap_external as external
compiled = []
original = external.SourceLoader.source_to_code
def counting(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = counting
import radflow.cli, radflow.extraction, radflow.features.engine
from radflow.features import engine
for family in ("morphology", "glcm", "glrlm", "glszm", "ngtdm", "ngldm"):
    engine.family_module(family)
print(sum("radflow" in path for path in compiled))
"""


def compiled_sources() -> int:
    result = subprocess.run([sys.executable, "-c", COUNT_COMPILED], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.strip().splitlines()[-1])


def test_setup_leaves_no_module_to_compile_in_later_processes():
    tag = sys.implementation.cache_tag
    for cached in PACKAGE.rglob(f"__pycache__/*.{tag}.pyc"):
        cached.unlink()
    assert compiled_sources() > 20  # without bytecode on disk every process compiles them
    assert compile_package()
    assert compiled_sources() == 0
