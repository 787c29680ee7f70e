"""Simoncelli non-separable (isotropic) wavelet (IBSI-2), band-pass map at decomposition level j:

    psi_j(w) = cos(pi/2 * log2(2 |w'| / pi))   for pi/4 < |w'| <= pi,  0 otherwise,   w' = 2^(j-1) w,

with |w| the norm of the angular frequency over the filtered axes (all three in 3D, the axial plane in 2D). It is
defined in the Fourier domain, so it is applied there (``fourier``: frequency grid, evaluation; periodic whatever
the boundary condition). A Riesz order, if given, multiplies the same spectrum.
"""
from __future__ import annotations

import numpy as np

from radflow.imaging.filters.registry import FilterKind, FilterSpec, Spacing, require
from radflow.imaging.filters.riesz import check_order, require_riesz_order


def simoncelli(image: np.ndarray, level: int, axes: tuple[int, ...], riesz_order_xyz=None) -> np.ndarray:
    # numba compiles fourier's kernels: imported when used, not when the registry reads this module
    from radflow.imaging.filters.fourier import Transfer, apply_transfer

    if level < 1:
        raise ValueError(f"Simoncelli level must be >= 1, got {level}")
    order = None if riesz_order_xyz is None else tuple(riesz_order_xyz)
    return apply_transfer(image, Transfer(simoncelli_level=int(level), riesz_order_xyz=order), axes)


def _apply(image: np.ndarray, spacing: Spacing, spec: FilterSpec) -> np.ndarray:
    order = None if spec.riesz_order is None else check_order(spec.riesz_order)
    return simoncelli(image, int(spec.wavelet_level), spec.axes, order)


def _validate(spec: FilterSpec) -> None:
    require(int(spec.wavelet_level) >= 1, "wavelet_level must be >= 1")
    require_riesz_order(spec)


FILTER = FilterKind(
    name="simoncelli",
    parameters={
        "wavelet_level": 1,  # decomposition level
        "riesz_order": None,  # Riesz transform of the response, e.g. [1, 0, 0] (x, y, z order)
    },
    apply=_apply,
    support_radius=lambda spec, spacing: None,  # defined in the Fourier domain: needs the whole image
    validate=_validate,
)
