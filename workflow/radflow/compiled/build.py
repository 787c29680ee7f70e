"""Build the ahead-of-time kernel modules (``radflow kernels build``) and keep their signature list (the census).

See ``radflow.compiled.dispatch`` for why. The build imports the modules named in ``signatures.txt``, exports one
function per listed signature with ``numba.pycc`` for this CPU (``target_cpu = "host"``, as numba's just-in-time
compiler does), in one extension module per worker process, compiled in parallel, and writes a manifest: the modules,
the exported names, the argument types each one takes, the digests of every kernel module's source and the
environment fingerprint. Each exported function is a
forwarder that calls the kernel, so the kernel itself is compiled with its own options (``fastmath``,
``error_model``) exactly as just in time.

Needs a C compiler (numba.pycc links with the system's); without one the build fails with a clear message and
kernels stay just in time.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from radflow.compiled import dispatch as kernels


class KernelBuildError(RuntimeError):
    """The ahead-of-time build could not be made (no C compiler, an unknown kernel in the signature list)."""


def type_source(t: Any) -> str:
    """A numba type as the constructor expression ``parse_type`` reads back."""
    from numba.core import types as numba_types

    types: Any = numba_types  # mypy skips numba's modules (pyproject): their classes are not visible to it

    if isinstance(t, types.Array):
        extra = (", readonly=True" if not t.mutable else "") + (", aligned=False" if not t.aligned else "")
        return f"Array({type_source(t.dtype)}, {t.ndim}, '{t.layout}'{extra})"
    if isinstance(t, types.UniTuple):
        return f"UniTuple({type_source(t.dtype)}, {t.count})"
    if isinstance(t, types.Tuple):
        return "Tuple((" + "".join(f"{type_source(m)}, " for m in t.types) + "))"
    if isinstance(t, types.NoneType):
        return "none"
    if isinstance(t, types.Boolean):
        return "boolean"
    if isinstance(t, (types.Integer, types.Float, types.Complex)):
        return str(t)
    raise TypeError(f"no ahead-of-time form for numba type {t}")


def parse_type(source: str) -> Any:
    from numba.core import types

    return eval(source, {"__builtins__": {}}, vars(types))  # noqa: S307 - our own file, numba type names only


def argument_description(t: Any) -> list | str:
    """What ``radflow.compiled.dispatch.argument_key`` sees for an argument of numba type ``t`` (JSON)."""
    from numba.core import types
    from numba.np.numpy_support import as_dtype

    if isinstance(t, types.Array):
        return [as_dtype(t.dtype).str, t.ndim, t.layout, t.mutable, t.aligned]
    name = "bool" if isinstance(t, types.Boolean) else str(t)
    if name not in kernels.SCALAR_TYPES:
        raise TypeError(f"no ahead-of-time dispatch for argument type {t}")
    return name


def add_signatures(path: Path, seen: set[tuple[str, Any]]) -> int:
    """Merge the census ``seen`` ((kernel name, numba signature) pairs) into the signature file; return lines added."""
    lines = set(_lines(path))
    before = len(lines)
    for name, signature in seen:
        try:
            parts = [type_source(signature.return_type), *(type_source(a) for a in signature.args)]
            [argument_description(a) for a in signature.args]
        except TypeError:
            continue  # a type the build cannot dispatch on: that call stays just in time
        lines.add("\t".join([name, *parts]))
    header = ("# Kernel signatures compiled ahead of time by `radflow kernels build` (see radflow/compiled/dispatch.py).\n"
              "# Add to it: RADFLOW_KERNEL_CENSUS=$PWD/workflow/radflow/compiled/signatures.txt pytest -q tests/test_kernel.py "
              "(extractions; every signature called from Python is added at exit).\n"
              "# Only what an extraction of up to 32,767 grey levels calls: more levels, or a unit test calling a kernel "
              "with other dtypes, stay just in time.\n")
    path.write_text(header + "".join(f"{line}\n" for line in sorted(lines)))
    return len(lines) - before


def _lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _forwarder(compiled: kernels.Kernel):
    """A function of the kernel's arity that calls it: what pycc exports (the kernel keeps its own options)."""
    names = list(inspect.signature(compiled.py_func).parameters)
    arguments = ", ".join(names)
    namespace: dict[str, Any] = {"target": compiled}
    exec(f"def forward({arguments}):\n    return target({arguments})\n", namespace)  # noqa: S102
    return namespace["forward"]


def partition(rows: list[tuple[str, str, list[str]]], parts: int) -> list[list[int]]:
    """Row indices in ``parts`` groups, one extension module and one worker process each. A kernel module's rows stay
    together (its kernels call each other: split, each part would compile the shared callees again); modules are
    dealt costliest first to the group with the least cost so far, so the workers finish together. A module's cost
    is what numba compiles for it: per row, the bytecode of the kernel and of every kernel it calls (measured on the
    feature modules: 0.16-0.57 CPU ms per byte, against 1-5.5 per character of source, the former measure).
    Few groups, not one per kernel module: every extension module costs a C compile and link of pycc's runtime
    (about 3 s of CPU), a third of the build when each kernel module had its own."""
    by_module: dict[str, list[int]] = {}
    cost: dict[str, int] = {}
    for index, (name, _, _) in enumerate(rows):
        module = name.rsplit(".", 1)[0]
        by_module.setdefault(module, []).append(index)
        cost[module] = cost.get(module, 0) + sum(len(k.py_func.__code__.co_code) for k in _called_kernels(name))

    groups: list[list[int]] = [[] for _ in range(min(parts, len(by_module)))]
    load = [0] * len(groups)
    for module in sorted(by_module, key=lambda m: (-cost[m], m)):
        lightest = load.index(min(load))
        groups[lightest].extend(by_module[module])
        load[lightest] += cost[module]
    return groups


def _called_kernels(name: str) -> list[kernels.Kernel]:
    """The kernel ``name`` and every kernel it calls, directly or through others (by global name or module
    attribute)."""
    found: dict[str, kernels.Kernel] = {}
    pending = [kernels.REGISTRY[name]]
    while pending:
        compiled = pending.pop()
        if compiled.name in found:
            continue
        found[compiled.name] = compiled
        code, namespace = compiled.py_func.__code__, compiled.py_func.__globals__
        referenced = [namespace.get(n) for n in code.co_names]
        referenced += [getattr(module, n, None) for module in referenced if inspect.ismodule(module)
                       for n in code.co_names]
        pending += [r for r in referenced if isinstance(r, kernels.Kernel)]
    return list(found.values())


def _compile_callees_for_linking_only() -> None:
    """In this worker process, compile the kernels' own just-in-time copies only as far as the build needs them.

    pycc types and lowers each exported function by compiling the kernels it calls just in time, each into a library
    of its own: optimised function by function, then as a whole module at ``NUMBA_OPT``, then emitted as machine
    code and cached. The build never runs those copies; it links their IR into the extension module, which is then
    optimised as a whole and emitted itself. So here the libraries keep their function-level passes but skip the
    whole-module ones, and are emitted with LLVM's fast instruction selection (codegen level 0): the build takes
    a quarter to a third less time. A kernel's code in the extension module is then optimised as it is just in time
    (function passes, then one whole-module pass, where it had two), and gives the bits the just-in-time kernel
    gives (``tests/test_kernel.py``); it runs about 1.5 % more instructions than with two (benchmarks/README.md).
    Nothing is cached: numba's cache key does not hold these settings, and a later just-in-time call would load
    the copy. With a numba whose internals differ, the build runs as numba's own."""
    from numba.core import codegen

    library: Any = getattr(codegen, "JITCodeLibrary", None)
    jit_codegen: Any = getattr(codegen, "JITCPUCodegen", None)
    if not (hasattr(library, "_optimize_final_module") and hasattr(jit_codegen, "_customize_tm_options")):
        return
    customise = jit_codegen._customize_tm_options

    def fast_instruction_selection(self, options):
        customise(self, options)
        options["opt"] = 0

    jit_codegen._customize_tm_options = fast_instruction_selection
    library._optimize_final_module = lambda self: None
    for compiled in kernels.REGISTRY.values():
        compiled.options = {**compiled.options, "cache": False}


def compile_part(signatures: Path, indices: list[int], module_name: str, out_dir: str, verbose: bool) -> list[dict]:
    """Compile the signature file's rows ``indices`` into the extension module ``module_name`` in ``out_dir``;
    return its variants (one per row). Runs in a worker process of ``build``."""
    import warnings

    from numba.core.errors import NumbaPendingDeprecationWarning
    from numba.pycc import CC

    rows = kernels.read_signatures(signatures)
    for module in sorted({rows[i][0].rsplit(".", 1)[0] for i in indices}):
        importlib.import_module(module)
    _compile_callees_for_linking_only()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
        cc = CC(module_name)
        cc.output_dir = out_dir
        cc.target_cpu = "host"
        cc.verbose = verbose
        if os.name == "posix":  # pycc's C runtime without debug info (Python's CFLAGS have -g): 1 s less per part
            cc._extra_cflags = {sys.platform: ["-g0"], os.name: ["-g0"]}
        variants = []
        for index in indices:
            name, returns, args = rows[index]
            if name not in kernels.REGISTRY:
                raise KernelBuildError(f"{signatures.name} names {name}, which is not a registered kernel")
            argument_types = [parse_type(a) for a in args]
            export = f"k{index}"
            cc.export(export, parse_type(returns)(*argument_types))(_forwarder(kernels.REGISTRY[name]))
            variants.append({"kernel": name, "module": module_name, "export": export,
                             "arguments": [argument_description(t) for t in argument_types]})
        try:
            cc.compile()
        except Exception as exc:  # noqa: BLE001 - the compiler's or linker's failure, said in one line
            raise KernelBuildError(f"numba.pycc could not compile the kernels: {exc}") from exc
    return variants


def build(out_dir: Path = kernels.BUILD_DIR, signatures: Path = kernels.SIGNATURES, verbose: bool = False,
          jobs: int | None = None) -> Path:
    """Compile every listed signature into ``out_dir`` as ``jobs`` extension modules (default: one per CPU; see
    ``partition``), each in a process of its own, all at once; return the manifest path. An earlier build is
    replaced only once the new one is complete."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        raise KernelBuildError("no C compiler (cc/gcc) on PATH: install one (Debian: apt-get install gcc)")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        raise KernelBuildError(f"no Python headers ({headers}): install them (Debian: apt-get install python3-dev)")
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    rows = kernels.read_signatures(signatures)
    if not rows:
        raise KernelBuildError(f"no kernel signatures in {signatures}")
    modules = sorted({name.rsplit(".", 1)[0] for name, _, _ in rows})
    for module in modules:
        importlib.import_module(module)  # registers their kernels (and their callees'), for the digests below
    try:  # before half a minute of compiling
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise KernelBuildError(f"cannot write the build into {out_dir}: {exc.strerror or exc}") from exc
    groups = partition(rows, jobs or len(os.sched_getaffinity(0)))
    processes = len(groups)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"{kernels.BUILD_NAME}_{i}" for i in range(len(groups))]
        context = multiprocessing.get_context("spawn")  # a fresh interpreter per part: no forked LLVM state
        try:
            with ProcessPoolExecutor(processes, mp_context=context) as pool:
                futures = [pool.submit(compile_part, signatures, group, name, tmp, verbose)
                           for group, name in zip(groups, names)]
                variants = [v for future in futures for v in future.result()]
        except KernelBuildError:
            raise
        except Exception as exc:  # noqa: BLE001 - numba's typing or lowering of a listed signature: one line
            raise KernelBuildError(f"a kernel did not compile ahead of time: {type(exc).__name__}: {exc}") from exc
        built = [next(Path(tmp).glob(f"{name}.*")) for name in names]
        files = sorted({Path(sys.modules[k.py_func.__module__].__file__ or "") for k in kernels.REGISTRY.values()})
        module_files = [b.name for b in built]
        manifest = {"modules": module_files, "environment": kernels.environment_fingerprint(),
                    "files": kernels.file_digests(files), "variants": variants,
                    "seconds": round(time.perf_counter() - started, 1), "processes": processes}
        for b in built:
            shutil.copyfile(b, out_dir / (b.name + ".part"))
            (out_dir / (b.name + ".part")).replace(out_dir / b.name)
        manifest_path = out_dir / f"{kernels.BUILD_NAME}.json"
        manifest_path.with_suffix(".part").write_text(json.dumps(manifest, indent=1))
        manifest_path.with_suffix(".part").replace(manifest_path)
        for old in out_dir.glob(f"{kernels.BUILD_NAME}_*"):
            if old.name not in module_files:
                old.unlink()  # an earlier build's part the new manifest no longer names
    return manifest_path
