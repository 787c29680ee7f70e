"""Simoncelli non-separable (isotropic) wavelet (IBSI-2), band-pass map at decomposition level j:

    psi_j(w) = cos(pi/2 * log2(2 |w'| / pi))   for pi/4 < |w'| <= pi,  0 otherwise,   w' = 2^(j-1) w,

with |w| the norm of the angular frequency over the filtered axes (all three in 3D, the axial plane in 2D). It is
defined in the Fourier domain, so it is applied there (see ``fourier``: frequency grid; periodic whatever the
boundary condition).
"""
from __future__ import annotations

import numpy as np

from radflow.imaging.filters.fourier import apply_transfer


def simoncelli_transfer(level: int):
    if level < 1:
        raise ValueError(f"Simoncelli level must be >= 1, got {level}")

    def transfer(frequencies: list[np.ndarray]) -> np.ndarray:
        radius = np.sqrt(sum(w**2 for w in frequencies)) * 2.0 ** (level - 1)
        band = (radius > np.pi / 4) & (radius <= np.pi)
        out = np.zeros(radius.shape)
        out[band] = np.cos(np.pi / 2 * np.log2(2.0 * radius[band] / np.pi))
        return out

    return transfer


def simoncelli(image: np.ndarray, level: int, axes: tuple[int, ...], riesz_transfer=None) -> np.ndarray:
    """Band-pass map of ``level``; ``riesz_transfer`` (optional) is multiplied in the same spectrum."""
    band = simoncelli_transfer(level)
    if riesz_transfer is None:
        return apply_transfer(image, band, axes)
    return apply_transfer(image, lambda w: band(w) * riesz_transfer(w), axes)
