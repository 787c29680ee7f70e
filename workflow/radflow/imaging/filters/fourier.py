"""Filters defined by their transfer function (Simoncelli wavelet, Riesz transform): multiply the image spectrum.

Frequency grid: along an axis of N samples the angular frequencies are N evenly spaced values from -pi to pi
*inclusive* (``linspace(-pi, pi, N)``, arranged in FFT order), as the IBSI-2 reference implementations build it.
With the exact FFT grid 2 pi k / N instead, the Simoncelli level-2 and level-3 reference maps are missed by 8 and
11 (tolerances 3.3 and 1.4); with this grid they are reproduced to 1e-5.

Boundary: a product of spectra is a periodic convolution, and it is applied to the image grid as it is, whatever
boundary condition the spatial stages use (as the reference implementations do). Padding first was tried and is
worse: with each axis padded by N/2 under the mirror condition, IBSI-2 phase 2 fails 8.A quartile coefficient of
dispersion (-385 vs -441 +/- 29) and 9.B median (0.286 vs 0.233 +/- 0.046); unpadded, all phase-2 rows and all
phase-1 maps (including the "nearest" 10.b.1) pass. It also keeps the FFT at the image size.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft



def angular_frequencies(n: int) -> np.ndarray:
    return np.fft.ifftshift(np.linspace(-np.pi, np.pi, n))


def frequency_axes(shape: tuple[int, ...], axes: tuple[int, ...]) -> list[np.ndarray]:
    """Broadcastable angular-frequency arrays, one per filtered axis (in ``axes`` order)."""
    grids = []
    for axis in axes:
        view = [1] * len(shape)
        view[axis] = shape[axis]
        grids.append(angular_frequencies(shape[axis]).reshape(view))
    return grids


def apply_transfer(
    image: np.ndarray, transfer: Callable[[list[np.ndarray]], np.ndarray], axes: tuple[int, ...],
) -> np.ndarray:
    """Real part of IFFT(FFT(image) * transfer(frequencies)) over ``axes`` (periodic, see the module docstring)."""
    image = np.asarray(image, dtype=np.float64)
    spectrum = scipy.fft.fftn(image, axes=axes)
    spectrum *= transfer(frequency_axes(image.shape, axes))
    return np.ascontiguousarray(scipy.fft.ifftn(spectrum, axes=axes, overwrite_x=True).real)
