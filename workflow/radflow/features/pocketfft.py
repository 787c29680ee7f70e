"""The FFTs ``scipy.fft`` runs, called on scipy's compiled pocketfft module without importing ``scipy.fft``.

Why not ``scipy.fft`` itself: importing it costs a fresh process 0.2-0.3 s (it pulls in scipy.special and the
array-API shims), a sixth of a 1 M-voxel ROI's whole ``radflow extract``, while its compiled transform module
(``scipy/fft/_pocketfft/pypocketfft``, which imports nothing but numpy) loads in ~20 ms. Why not ``numpy.fft``:
it runs the same pocketfft algorithm one line at a time, 2x slower than scipy's SIMD-batched lines (a 60 x 140 x
140 float32 real FFT: 20 ms against 10 ms), and pads every transformed axis by a fresh copy.

The calls are the ones ``scipy.fft`` makes (forward, no normalisation, one thread), so the results are the same
bits. Callers pad by writing into zeroed arrays of the transform length, which also spares ``scipy.fft``'s
padding copies. Should scipy's layout change so that the module is not found where it is now, ``scipy.fft``'s
public functions serve instead (same values; only the import cost comes back). ``constraints.txt`` pins scipy.
"""
from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

_MODULE = "pypocketfft"


@functools.cache
def compiled_module() -> ModuleType | None:
    """scipy's ``scipy.fft._pocketfft.pypocketfft`` extension, loaded from its file (None when not found)."""
    spec = importlib.util.find_spec("scipy")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations))) / "fft" / "_pocketfft"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = directory / f"{_MODULE}{suffix}"
        if path.is_file():
            loader = importlib.machinery.ExtensionFileLoader(_MODULE, str(path))
            module_spec = importlib.util.spec_from_file_location(_MODULE, path, loader=loader)
            if module_spec is None:
                return None
            try:
                module = importlib.util.module_from_spec(module_spec)
                loader.exec_module(module)
            except ImportError:
                return None
            return module
    return None


def rfft(x: np.ndarray, axis: int, out: np.ndarray | None = None) -> np.ndarray:
    """Real-input forward FFT along ``axis`` (unpadded: the caller sizes that axis), ``scipy.fft.rfft(x, axis=axis)``;
    written into ``out`` when given (any strides, e.g. a transposed view)."""
    module = compiled_module()
    if module is None:
        import scipy.fft

        if out is None:
            return scipy.fft.rfft(x, axis=axis, workers=1)
        out[...] = scipy.fft.rfft(x, axis=axis, workers=1)
        return out
    return module.r2c(x, (axis,), True, 0, out, 1)


def fft_in_place(x: np.ndarray, axis: int) -> None:
    """Complex forward FFT of ``x`` along ``axis``, written over ``x`` (a view is fine):
    ``scipy.fft.fft(x, axis=axis)``."""
    module = compiled_module()
    if module is None:
        import scipy.fft

        x[...] = scipy.fft.fft(x, axis=axis, workers=1)
        return
    module.c2c(x, (axis,), True, 0, x, 1)


def dct1_in_place(x: np.ndarray, axes: tuple[int, ...]) -> None:
    """Unnormalised DCT-I of the real array ``x`` along ``axes`` (in that order), written over ``x``:
    ``scipy.fft.dctn(x, type=1, axes=axes)``."""
    module = compiled_module()
    if module is None:
        import scipy.fft

        x[...] = scipy.fft.dctn(x, type=1, axes=axes, workers=1)
        return
    module.dct(x, 1, axes, 0, x, 1, None)
