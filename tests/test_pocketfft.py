"""radflow.features.pocketfft: scipy's compiled FFTs without importing scipy.fft, the same bits as scipy.fft."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.fft

from conftest import aot_build_in_use
from radflow.features import pocketfft


@pytest.fixture(params=["compiled", "scipy.fft fallback"])
def backend(request, monkeypatch):
    if request.param == "compiled":
        assert pocketfft.compiled_module() is not None, "scipy's pypocketfft was not found where scipy 1.17 keeps it"
    else:
        monkeypatch.setattr(pocketfft, "compiled_module", lambda: None)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rfft_is_scipys(backend, dtype):
    x = np.random.default_rng(1).normal(size=(5, 7, 24)).astype(dtype)
    for axis in range(3):
        got = pocketfft.rfft(x, axis=axis)
        assert got.dtype == np.result_type(dtype, np.complex64)
        np.testing.assert_array_equal(got, scipy.fft.rfft(x, axis=axis))
    # into a transposed view, as Moran's I lays its spectra out
    stored = np.empty((13, 5, 7), dtype=np.result_type(dtype, np.complex64))
    pocketfft.rfft(x, axis=2, out=stored.transpose(1, 2, 0))
    np.testing.assert_array_equal(stored.transpose(1, 2, 0), scipy.fft.rfft(x, axis=2))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_fft_in_place_on_a_view_is_scipys(backend, dtype):
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(4, 18, 22)) + 1j * rng.normal(size=(4, 18, 22))).astype(dtype)
    expected = x.copy()
    expected[:, :10] = scipy.fft.fft(expected[:, :10], axis=2)
    expected = scipy.fft.fft(expected, axis=1)
    pocketfft.fft_in_place(x[:, :10], axis=2)  # a non-contiguous view, transformed where it lies
    pocketfft.fft_in_place(x, axis=1)
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("axes", [(0, 1, 2), (0, 2)])
def test_dct1_in_place_is_scipys(backend, axes):
    x = np.random.default_rng(3).random((9, 6, 17))
    expected = scipy.fft.dctn(x, type=1, axes=axes)
    pocketfft.dct1_in_place(x, axes=axes)
    np.testing.assert_array_equal(x, expected)


def test_loading_imports_no_scipy_module_and_scipy_fft_still_works_after():
    """The point of the module: a fresh process transforms without any ``scipy`` module in ``sys.modules``; and
    loading scipy's extension under its own name does not break a later ``import scipy.fft`` (another family or a
    filter may need it in the same process). Just in time, ``import numba`` would import scipy itself."""
    aot_build_in_use()
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from radflow.features import morphology, pocketfft
        assert pocketfft.compiled_module() is not None
        rng = np.random.default_rng(0)
        mask = rng.random((12, 40, 40)) < 0.6  # a grid above SLAB_MAX_CELLS: the 3D path
        image = rng.normal(size=mask.shape)
        morphology.spatial_autocorrelation(image, mask, (2.0, 1.0, 1.0), 20000, 0)
        loaded = sorted(name for name in sys.modules if name == "scipy" or name.startswith("scipy."))
        assert not loaded, loaded
        import scipy.fft
        x = rng.random(64)
        assert np.array_equal(scipy.fft.rfft(x), pocketfft.rfft(x, axis=0))
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
