"""Separable undecimated wavelets (IBSI-2 "separable wavelets"): Haar, Daubechies, Coiflet, ... any orthogonal or
biorthogonal wavelet PyWavelets knows, used only for its decomposition filter coefficients.

A sub-band such as "LHL" names one filter per axis in IBSI (x, y, z) order (L: low-pass ``dec_lo``, H: high-pass
``dec_hi``); the arrays here are (z, y, x), so the name is read in reverse. Filtering is a convolution. The
transform is undecimated ("à trous"): level j filters the level j-1 all-low-pass map (LLL...) with the level-1
filters dilated by 2^(j-1) (2^(j-1) - 1 zeros between taps), each level under the boundary condition again.

Alignment: an even-length filter has no centre tap; its taps k = 0..L-1 act at offsets k - L/2 (scipy's convention
for even kernels, and the one that reproduces the IBSI-2 reference maps), and a dilated filter at offsets
D (k - L/2). Every filter is therefore stored as an odd-length, zero-padded array centred at offset 0, which makes
reversal (for rotation invariance) unambiguous.

PyWavelets' own ``swt`` is not used: it offers only periodic extension and decimation-compatible alignment, not
the IBSI boundary conditions.
"""
from __future__ import annotations

import re

import numpy as np

from radflow.imaging.filters.separable import Factor, convolve_separable, rotation_invariant
from radflow.imaging.filters.registry import FilterKind, FilterSpec, Radius, Spacing, radius_on_axes, require
from radflow.imaging.filters.rotations import require_pooling


def _pywt():
    import pywt  # PyWavelets: filter coefficients only

    return pywt


def wavelet_filters(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(low-pass, high-pass) decomposition filters of a PyWavelets wavelet, e.g. "haar", "db3", "coif1"."""
    try:
        wavelet = _pywt().Wavelet(name)
    except ValueError as exc:
        raise ValueError(f"unknown wavelet {name!r}: {exc}") from None
    return np.asarray(wavelet.dec_lo, dtype=np.float64), np.asarray(wavelet.dec_hi, dtype=np.float64)


def dilated_factor(taps: np.ndarray, level: int) -> Factor:
    """The level-``level`` filter as an odd-length array whose middle element is offset 0 (see module docstring)."""
    dilation = 2 ** (level - 1)
    length = len(taps)
    half = length // 2  # tap k sits at offset dilation * (k - half)
    radius = dilation * max(half, length - 1 - half)
    out = np.zeros(2 * radius + 1)
    out[radius + dilation * (np.arange(length) - half)] = taps
    return Factor(tuple(out))


def parse_band(band: str, n_axes: int) -> str:
    band = band.upper()
    if not re.fullmatch(r"[LH]+", band) or len(band) != n_axes:
        raise ValueError(f"wavelet sub-band {band!r} must be {n_axes} letters L/H (x, y, z order)")
    return band


def band_factors(band: str, lo: np.ndarray, hi: np.ndarray, level: int, axes: tuple[int, ...]) -> dict[int, Factor]:
    letters = parse_band(band, len(axes))
    return {axis: dilated_factor(lo if c == "L" else hi, level) for axis, c in zip(axes, reversed(letters))}


def separable_wavelet(
    image: np.ndarray, name: str, band: str, level: int, axes: tuple[int, ...], boundary: str, *,
    rotation_invariance: bool = False, pooling: str = "average",
) -> np.ndarray:
    """The undecimated sub-band ``band`` at decomposition ``level`` (>= 1).

    With rotation invariance each right-angle rotation rotates the whole decomposition (the low-pass stages of the
    coarser levels too) and only the final sub-band maps are pooled, as the IBSI-2 level-2 reference maps require.
    """
    if level < 1:
        raise ValueError(f"wavelet level must be >= 1, got {level}")
    lo, hi = wavelet_filters(name)
    all_low = "L" * len(axes)
    stages = [band_factors(all_low, lo, hi, j, axes) for j in range(1, level)]
    stages.append(band_factors(band, lo, hi, level, axes))
    if rotation_invariance:
        return rotation_invariant(image, stages, axes, boundary, pooling)
    out = np.asarray(image, dtype=np.float64)
    for stage in stages:
        out = convolve_separable(out, stage, boundary)
    return out


def _apply(image: np.ndarray, spacing: Spacing, spec: FilterSpec) -> np.ndarray:
    return separable_wavelet(image, spec.wavelet, spec.wavelet_map, int(spec.wavelet_level), spec.axes,
                             spec.boundary_condition, rotation_invariance=spec.rotation_invariance,
                             pooling=spec.pooling or "average")


def _support_radius(spec: FilterSpec, spacing: Spacing) -> Radius:
    lo, hi = wavelet_filters(spec.wavelet)
    return radius_on_axes(spec, sum(max(len(dilated_factor(lo, j).taps), len(dilated_factor(hi, j).taps)) // 2
                                    for j in range(1, int(spec.wavelet_level) + 1)))


def _validate(spec: FilterSpec) -> None:
    require_pooling(spec, pooled=spec.rotation_invariance)
    require(int(spec.wavelet_level) >= 1, "wavelet_level must be >= 1")
    require(spec.wavelet is not None, "wavelet is required, e.g. haar, db3, coif1")
    wavelet_filters(spec.wavelet)
    require(spec.wavelet_map is not None, "wavelet_map is required, e.g. LLH")
    parse_band(spec.wavelet_map, len(spec.axes))


FILTER = FilterKind(
    name="separable_wavelet",
    parameters={
        "wavelet": None,  # PyWavelets name: haar, db3, coif1, ...
        "wavelet_map": None,  # sub-band, e.g. "LLH" (x, y, z order)
        "wavelet_level": 1,  # decomposition level
        "rotation_invariance": False,  # pool over the right-angle rotations
        "pooling": None,  # max | average | min (default average)
    },
    apply=_apply,
    support_radius=_support_radius,
    validate=_validate,
)
