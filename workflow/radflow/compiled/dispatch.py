"""Compiled kernels: ahead of time where a build for this machine exists, just in time (numba, cached) otherwise.

A fresh process that loads numba-cached kernels pays about 0.6 s before any work: numba's import, the first
target-context refresh (which also imports scipy.linalg for numba's BLAS check) and about 10 ms per cached kernel.
For a pipeline job on a small ROI that is most of its time. ``radflow kernels build`` therefore compiles every kernel
registered here, for each argument signature it is known to be called with (``signatures.txt``), into one
extension module with numba's ahead-of-time compiler (``numba.pycc``); that module loads in milliseconds and needs
no numba at run time.

A kernel call uses the ahead-of-time function when one was built for exactly the argument types given (dtype,
dimensions, layout, writability, as numba types them), and otherwise numba's just-in-time dispatcher with
``cache=True`` — the same function compiled with the same options by the same LLVM for the same CPU, so both paths
give the same bits (``tests/test_kernel.py``). The build is used only while it matches the kernel modules' sources
(``file_digests``), numba's version, Python and this CPU (``environment_fingerprint``); a stale build is ignored,
never trusted. ``RADFLOW_KERNELS=jit`` ignores any build. The ahead-of-time functions hold the GIL (pycc has no
``nogil``); radflow runs one extraction per process, so nothing waits on it.

Inside compiled code a kernel calling another kernel goes through numba's dispatcher type (``_numba_type_``), so a
kernel is written exactly as a ``numba.njit`` function would be.
"""
from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE = Path(__file__).resolve().parents[1]  # radflow/
BUILD_NAME = "_aot_kernels"
BUILD_DIR = PACKAGE / "compiled" / "_aot"
SIGNATURES = PACKAGE / "compiled" / "signatures.txt"
MODE_VARIABLE = "RADFLOW_KERNELS"  # "auto" (default): the build when valid; "jit": numba only
# Set to a signature file: run just in time and add every signature a kernel is called with from Python (at exit).
CENSUS_VARIABLE = "RADFLOW_KERNEL_CENSUS"

# Every kernel's options start from these: cached on disk, and the GIL released while it runs.
DEFAULT_OPTIONS = {"cache": True, "nogil": True}

REGISTRY: dict[str, Kernel] = {}


def kernel(**options: Any) -> Callable[[Callable], Kernel]:
    """Decorator for a numba nopython kernel: ``@kernel()`` or ``@kernel(fastmath={"reassoc"})``, as ``numba.njit``."""
    def register(py_func: Callable) -> Kernel:
        compiled = Kernel(py_func, {**DEFAULT_OPTIONS, **options})
        REGISTRY[compiled.name] = compiled
        return compiled
    return register


# numpy's flag bits that decide an array's numba type: C_CONTIGUOUS, F_CONTIGUOUS, ALIGNED, WRITEABLE
C_CONTIGUOUS, F_CONTIGUOUS, ALIGNED, WRITEABLE = 0x1, 0x2, 0x100, 0x400
ARRAY_FLAGS = C_CONTIGUOUS | F_CONTIGUOUS | ALIGNED | WRITEABLE


def argument_key(args: tuple) -> tuple:
    """The argument types as numba sees them, cheaply (about 1 us for six arguments; a small ROI's extraction makes
    ~160 kernel calls): what selects an ahead-of-time variant. An array is (dtype, ndim, its type-deciding flags)."""
    return tuple((a.dtype, a.ndim, a.flags.num & ARRAY_FLAGS) if type(a) is np.ndarray else type(a) for a in args)


class Kernel:
    """A numba kernel with its ahead-of-time variants, keyed by ``argument_key``."""

    def __init__(self, py_func: Callable, options: dict) -> None:
        self.name = f"{py_func.__module__}.{py_func.__qualname__}"
        self.py_func = py_func
        self.options = options
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func
        self._dispatcher: Any = None
        self._variants: dict[tuple, Callable] | None = None
        self.jit_calls = 0  # calls from Python the build did not cover

    def __call__(self, *args):
        if self._variants is None:
            self._variants = _build().variants_of(self.name)
        variant = self._variants.get(argument_key(args))
        if variant is not None:
            return variant(*args)
        self.jit_calls += 1
        result = self.dispatcher(*args)
        if _census is not None:
            argument_types = tuple(self.dispatcher.typeof_pyval(a) for a in args)
            _census.add((self.name, self.dispatcher.overloads[argument_types].signature))
        return result

    @property
    def dispatcher(self):
        """numba's just-in-time dispatcher (imports numba on first use)."""
        if self._dispatcher is None:
            import numba

            self._dispatcher = numba.njit(**self.options)(self.py_func)
        return self._dispatcher

    @property
    def _numba_type_(self):
        # how numba types this object when compiled code calls it: as the dispatcher it stands for
        from numba.core import types

        return types.Dispatcher(self.dispatcher)

    def __repr__(self) -> str:
        return f"<kernel {self.name}>"


# ------------------------------------------------------------------------------------------------ the build

def read_signatures(path: Path = SIGNATURES) -> list[tuple[str, str, list[str]]]:
    """(kernel name, return type, argument types) per line ``module.function<TAB>return<TAB>arg<TAB>arg...``.

    Types are written as numba type constructors (``Array(float64, 3, 'C')``, ``int64``), as
    ``radflow.compiled.build`` reads them.
    """
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, returns, *args = line.split("\t")
            rows.append((name, returns, args))
    return rows


def environment_fingerprint() -> str:
    """What else a build must match: numba's, llvmlite's and numpy's versions, Python, this CPU and this file."""
    parts = [f"{package} {installed_version(package)}" for package in ("numba", "llvmlite", "numpy")]
    parts += [sys.version, cpu_identity(), hashlib.sha256(Path(__file__).read_bytes()).hexdigest()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def installed_version(package: str) -> str:
    """An installed distribution's version, from the ``NAME-VERSION.dist-info`` folder beside the package (what
    importlib.metadata reads too, without its import and lookups: ~17 ms of every fresh process that loads the
    build); importlib.metadata's answer when that folder is not there or not unique."""
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        site = Path(next(iter(spec.submodule_search_locations))).parent
        found = list(site.glob(f"{package}-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len(package) + 1:-len(".dist-info")]
    from importlib import metadata

    return metadata.version(package)


def file_digests(files: list[Path]) -> dict[str, str]:
    return {str(f.relative_to(PACKAGE)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(files)}


def cpu_identity() -> str:
    """The CPU model and its instruction-set flags: a build for another CPU could use instructions this one lacks."""
    try:
        info = Path("/proc/cpuinfo").read_text().split("\n\n", 1)[0]
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("vendor_id", "cpu family", "model", "model name", "flags")
    return "\n".join(line for line in info.splitlines() if line.split(":")[0].strip() in wanted)


# Python and numpy scalar types numba types as each numba scalar type (what argument_key sees for a scalar).
SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "int64": (int, np.int64), "float64": (float, np.float64), "bool": (bool, np.bool_),
    **{name: (getattr(np, name),) for name in ("int8", "int16", "int32", "uint8", "uint16", "uint32", "uint64",
                                               "float32", "complex64", "complex128")},
}


class _Build:
    """The loaded ahead-of-time modules, or none when there is no build, it is stale, or ``RADFLOW_KERNELS=jit``."""

    def __init__(self, directory: Path = BUILD_DIR) -> None:
        self.modules: dict[str, Any] = {}
        self.index: dict[str, dict[tuple, tuple[str, str]]] = {}
        self.reason = self._load(directory)

    def _load(self, directory: Path) -> str:
        if os.environ.get(MODE_VARIABLE, "auto") == "jit" or CENSUS_VARIABLE in os.environ:
            return f"{MODE_VARIABLE}=jit"
        manifest_path = directory / f"{BUILD_NAME}.json"
        if not manifest_path.exists():
            return "no ahead-of-time build (radflow kernels build)"
        manifest = json.loads(manifest_path.read_text())
        files = [PACKAGE / name for name in manifest.get("files", {})]
        if ("modules" not in manifest or manifest.get("environment") != environment_fingerprint()
                or not all(f.exists() for f in files) or manifest.get("files") != file_digests(files)):
            return "the ahead-of-time build is stale (kernel sources, numba or CPU changed): radflow kernels build"
        loaded = {}
        for file_name in manifest["modules"]:
            name = file_name.split(".", 1)[0]
            spec = importlib.util.spec_from_file_location(name, directory / file_name)
            if spec is None or spec.loader is None:
                return f"cannot load {file_name}"
            try:
                loaded[name] = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(loaded[name])
            except (ImportError, OSError) as exc:  # e.g. replaced by a build running now
                return f"cannot load {file_name} ({exc}): radflow kernels build"
        self.modules = loaded
        for variant in manifest["variants"]:
            keys = self.index.setdefault(variant["kernel"], {})
            for key in _keys(variant["arguments"]):
                keys.setdefault(key, (variant["module"], variant["export"]))
        return ""

    def variants_of(self, name: str) -> dict[tuple, Callable]:
        return {key: getattr(self.modules[module], export)
                for key, (module, export) in self.index.get(name, {}).items()}


def _keys(arguments: list) -> list[tuple]:
    """Every ``argument_key`` a variant accepts: a numba int64 argument takes a Python int or a numpy int64, and a
    C-layout array may be F-contiguous too (numba calls it C then, as a 1-D array always is)."""
    keys: list[tuple] = [()]
    for argument in arguments:
        options = _array_keys(*argument) if isinstance(argument, list) else list(SCALAR_TYPES[argument])
        keys = [key + (option,) for key in keys for option in options]
    return keys


def _array_keys(dtype: str, ndim: int, layout: str, writeable: bool, aligned: bool) -> list[tuple]:
    base = (WRITEABLE if writeable else 0) | (ALIGNED if aligned else 0)
    layouts = {"C": [C_CONTIGUOUS, C_CONTIGUOUS | F_CONTIGUOUS], "F": [F_CONTIGUOUS], "A": [0]}[layout]
    return [(np.dtype(dtype), ndim, base | bits) for bits in layouts]


_loaded: _Build | None = None
_census: set[tuple[str, Any]] | None = None


def _write_census() -> None:
    from radflow.compiled.build import add_signatures

    add_signatures(Path(os.environ[CENSUS_VARIABLE]), _census or set())


if CENSUS_VARIABLE in os.environ:
    _census = set()
    atexit.register(_write_census)


def _build() -> _Build:
    global _loaded
    if _loaded is None:
        _loaded = _Build()
    return _loaded


def status() -> str:
    """One line: whether kernels run ahead-of-time compiled, and if not, why."""
    build = _build()
    if build.modules:
        n = sum(len(v) for v in build.index.values())
        return f"ahead-of-time build in use: {len(build.index)} kernels, {n} argument keys ({BUILD_DIR})"
    return f"just-in-time (numba cache): {build.reason}"
