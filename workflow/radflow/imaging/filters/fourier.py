"""Filters defined by their transfer function (Simoncelli wavelet, Riesz transform): multiply the image spectrum.

Frequency grid: along an axis of N samples the angular frequencies are N evenly spaced values from -pi to pi
*inclusive* (``linspace(-pi, pi, N)``, arranged in FFT order), as the IBSI-2 reference implementations build it.
With the exact FFT grid 2 pi k / N instead, the Simoncelli level-2 and level-3 reference maps are missed by 8 and
11 (tolerances 3.3 and 1.4); with this grid they are reproduced to 1e-5.

Boundary: a product of spectra is a periodic convolution, so "periodic" needs no padding. Under any other
boundary condition each filtered axis is first padded by N // 2 voxels per side under that condition (the padded
image has about twice the size), which keeps the wrap-around away from the image; the result is cropped back.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft

from radflow.imaging.filters.boundary import pad


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
    image: np.ndarray, transfer: Callable[[list[np.ndarray]], np.ndarray], axes: tuple[int, ...], boundary: str,
) -> np.ndarray:
    """Real part of IFFT(FFT(image) * transfer(frequencies)) over ``axes``, with the boundary handling above."""
    image = np.asarray(image, dtype=np.float64)
    widths = [(0, 0)] * image.ndim
    if boundary != "periodic":
        for axis in axes:
            widths[axis] = (image.shape[axis] // 2, image.shape[axis] // 2)
        work = pad(image, widths, boundary)
    else:
        work = image
    spectrum = scipy.fft.fftn(work, axes=axes)
    spectrum *= transfer(frequency_axes(work.shape, axes))
    out = scipy.fft.ifftn(spectrum, axes=axes, overwrite_x=True).real
    crop = tuple(slice(w[0], out.shape[i] - w[1]) for i, w in enumerate(widths))
    return np.ascontiguousarray(out[crop])
