"""Filters defined by their transfer function (Simoncelli wavelet, Riesz transform): multiply the image spectrum.

Frequency grid: along an axis of N samples the angular frequencies are N evenly spaced values from -pi to pi
*inclusive* (``linspace(-pi, pi, N)``, arranged in FFT order), as the IBSI-2 reference implementations build it.
With the exact FFT grid 2 pi k / N instead, the Simoncelli level-2 and level-3 reference maps are missed by 8 and
11 (tolerances 3.3 and 1.4); with this grid they are reproduced to 1e-5.

The response is the real part of IFFT(FFT(image) H). On this grid H(-k) is not H(k)*, so for a real image that real
part equals filtering with the Hermitian part H_s(k) = (H(k) + H(-k)*) / 2; with H_s the half spectrum of a real
FFT (``rfftn``/``irfftn``) suffices, which halves time and memory. H_s is evaluated voxel by voxel in one numba
loop that multiplies the spectrum in place: numpy would need several full-size temporaries (|w|, masks, log, cos)
and took longer than the FFTs themselves (6 s of 14 s on a 512 x 512 x 300 image).

Boundary: a product of spectra is a periodic convolution, and it is applied to the image grid as it is, whatever
boundary condition the spatial stages use (as the reference implementations do). Padding first was tried and is
worse: with each axis padded by N/2 under the mirror condition, IBSI-2 phase 2 fails 8.A quartile coefficient of
dispersion (-385 vs -441 +/- 29) and 9.B median (0.286 vs 0.233 +/- 0.046); unpadded, all phase-2 rows and all
phase-1 maps (including the "nearest" 10.b.1) pass. It also keeps the FFT at the image size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import scipy.fft


@dataclass(frozen=True)
class Transfer:
    """A Simoncelli band-pass of ``simoncelli_level`` and/or a Riesz transform of order ``riesz_order_xyz``."""

    simoncelli_level: int | None = None
    riesz_order_xyz: tuple[int, ...] | None = None


def angular_frequencies(n: int) -> np.ndarray:
    return np.fft.ifftshift(np.linspace(-np.pi, np.pi, n))


@numba.njit(cache=True, nogil=True)
def _transfer_value(w0, w1, w2, band_scale, has_band, riesz, riesz_scale, has_riesz):
    """H at one angular frequency (w0, w1, w2): Simoncelli band (see ``simoncelli``) times Riesz factor."""
    norm = math.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
    value = 1.0 + 0.0j
    if has_band:
        r = norm * band_scale
        if r <= math.pi / 4 or r > math.pi:
            return 0.0j
        value = math.cos(math.pi / 2 * math.log2(2.0 * r / math.pi)) + 0.0j
    if has_riesz:
        if norm == 0.0:
            return 0.0j
        total = riesz[0] + riesz[1] + riesz[2]
        real = riesz_scale * (w0 / norm) ** riesz[0] * (w1 / norm) ** riesz[1] * (w2 / norm) ** riesz[2]
        phase = total % 4  # (-j)^total
        if phase == 0:
            value *= real
        elif phase == 1:
            value *= -1j * real
        elif phase == 2:
            value *= -real
        else:
            value *= 1j * real
    return value


@numba.njit(cache=True, nogil=True)
def _multiply_hermitian(spectrum, w0, w1, w2, neg0, neg1, neg2, band_scale, has_band, riesz, riesz_scale, has_riesz):
    """spectrum[i, j, k] *= (H(w[i, j, k]) + conj(H(w[-i, -j, -k]))) / 2, in place (half spectrum of rfftn)."""
    n0, n1, n2 = spectrum.shape
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                h = _transfer_value(w0[i], w1[j], w2[k], band_scale, has_band, riesz, riesz_scale, has_riesz)
                h_neg = _transfer_value(w0[neg0[i]], w1[neg1[j]], w2[neg2[k]], band_scale, has_band, riesz,
                                        riesz_scale, has_riesz)
                spectrum[i, j, k] *= 0.5 * (h + h_neg.conjugate())


def apply_transfer(image: np.ndarray, transfer: Transfer, axes: tuple[int, ...]) -> np.ndarray:
    """Real part of IFFT(FFT(image) * H) over ``axes`` (periodic; see the module docstring)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError("apply_transfer takes (z, y, x) volumes")
    spectrum = scipy.fft.rfftn(image, axes=axes)
    frequencies, negated = [], []
    for axis in range(3):
        n = image.shape[axis]
        if axis in axes:
            frequencies.append(angular_frequencies(n))
            negated.append((-np.arange(spectrum.shape[axis])) % n)
        else:  # not transformed: frequency 0 and no negation
            frequencies.append(np.zeros(n))
            negated.append(np.arange(n))
    riesz = np.zeros(3, dtype=np.int64)
    riesz_scale, has_riesz = 1.0, transfer.riesz_order_xyz is not None
    if transfer.riesz_order_xyz is not None:
        order = [int(v) for v in transfer.riesz_order_xyz]
        for axis, power in zip(axes, reversed(order)):  # x first in IBSI order, array axes are (z, y, x)
            riesz[axis] = power
        riesz_scale = math.sqrt(math.factorial(sum(order)) / math.prod(math.factorial(v) for v in order))
    has_band = transfer.simoncelli_level is not None
    band_scale = 1.0 if transfer.simoncelli_level is None else 2.0 ** (transfer.simoncelli_level - 1)
    _multiply_hermitian(spectrum, *frequencies, *negated, band_scale, has_band, riesz, riesz_scale, has_riesz)
    return scipy.fft.irfftn(spectrum, s=[image.shape[a] for a in axes], axes=axes, overwrite_x=True)
