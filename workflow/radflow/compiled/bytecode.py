"""radflow's own modules byte-compiled at setup, beside its kernels (``radflow kernels build``).

pip byte-compiles the packages it installs, but radflow installed in editable mode (``pip install -e .``, as the
README's setup does) is imported from its source tree. Where Python may not write bytecode on import
(PYTHONDONTWRITEBYTECODE, as on some CI and container images, or a read-only checkout), every process then compiles
radflow's modules again: 52 of them, about 0.1 s of a small ROI's 0.6-0.8 s ``radflow extract``. ``compileall`` writes
the ``__pycache__`` files explicitly, which that setting does not prevent (it only stops imports from writing them);
imports read them as usual, and an edited source file invalidates its own (the timestamp check).
"""
from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]


def compile_package() -> bool:
    """Write the bytecode of every radflow module; True when all compiled."""
    return bool(compileall.compile_dir(PACKAGE, quiet=1, workers=1))
