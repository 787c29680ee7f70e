"""Laplacian of Gaussian (IBSI-2):

    h(x) = -1/sigma^2 * (1 / (sqrt(2 pi) sigma))^d * (d - |x|^2 / sigma^2) * exp(-|x|^2 / (2 sigma^2))

with sigma given in mm and converted to voxels per axis (sigma_i = sigma_mm / spacing_i), the kernel sampled on the
voxel grid and truncated at ``cutoff`` sigma (support M_i = 1 + 2 floor(cutoff sigma_i + 0.5) voxels).

The kernel is a sum of separable terms, sum_i g''(x_i) prod_{j != i} g(x_j) with the analytically normalised 1D
Gaussian g, so it is computed with 1D passes (2d + 1 of them) instead of an M^d stencil. scipy's
``gaussian_laplace`` is not used because it normalises the Gaussian by its discrete sum, and for a 2D (slice-wise)
filter it still adds an identity term for the unfiltered axis.
"""
from __future__ import annotations

import math

import numpy as np

from radflow.imaging.filters.separable import Factor, convolve_axis
from radflow.imaging.filters.registry import FilterKind, FilterSpec, Radius, Spacing, require
from radflow.imaging.filters.riesz import require_riesz_order, riesz


def gaussian_factors(sigma_voxels: float, cutoff: float) -> tuple[Factor, Factor]:
    """(g, g'') sampled on integer offsets |x| <= floor(cutoff sigma + 0.5)."""
    radius = int(math.floor(cutoff * sigma_voxels + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma_voxels) ** 2) / (math.sqrt(2.0 * math.pi) * sigma_voxels)
    g2 = (x**2 / sigma_voxels**4 - 1.0 / sigma_voxels**2) * g
    return Factor(tuple(g)), Factor(tuple(g2))


def support_radius_voxels(sigma_mm: float, spacing: float, cutoff: float) -> int:
    return int(math.floor(cutoff * sigma_mm / spacing + 0.5))


def laplacian_of_gaussian(
    image: np.ndarray, sigma_mm: float, spacing: tuple[float, ...], axes: tuple[int, ...], boundary: str,
    cutoff: float = 4.0,
) -> np.ndarray:
    if sigma_mm <= 0:
        raise ValueError(f"LoG sigma must be positive, got {sigma_mm} mm")
    image = np.asarray(image, dtype=np.float64)
    smoothed, laplacian, term = image, None, None
    for n, axis in enumerate(axes):
        g, g2 = gaussian_factors(sigma_mm / spacing[axis], cutoff)
        if laplacian is None:
            laplacian = convolve_axis(smoothed, g2, axis, boundary)
        else:  # in place, with one scratch volume: three volumes besides the input at most
            convolve_axis(laplacian, g, axis, boundary, output=laplacian)
            term = convolve_axis(smoothed, g2, axis, boundary, output=term)
            laplacian += term
        if n < len(axes) - 1:
            smoothed = convolve_axis(smoothed, g, axis, boundary, output=None if smoothed is image else smoothed)
    if laplacian is None:
        raise ValueError("LoG needs at least one filtered axis")
    return laplacian


def _apply(image: np.ndarray, spacing: Spacing, spec: FilterSpec) -> np.ndarray:
    response = laplacian_of_gaussian(image, float(spec.sigma_mm), spacing, spec.axes, spec.boundary_condition,
                                     spec.cutoff_sigma)
    return response if spec.riesz_order is None else riesz(response, spec.riesz_order, spec.axes)


def _support_radius(spec: FilterSpec, spacing: Spacing) -> Radius | None:
    if spec.riesz_order is not None:  # a Fourier-domain stage: the whole image
        return None
    radius = [0, 0, 0]
    for axis in spec.axes:
        radius[axis] = support_radius_voxels(float(spec.sigma_mm), spacing[axis], spec.cutoff_sigma)
    return (radius[0], radius[1], radius[2])


def _validate(spec: FilterSpec) -> None:
    require(spec.sigma_mm is not None and spec.sigma_mm > 0, "sigma_mm must be > 0")
    require(spec.cutoff_sigma > 0, "cutoff_sigma must be > 0")
    require_riesz_order(spec)


FILTER = FilterKind(
    name="laplacian_of_gaussian",
    parameters={
        "sigma_mm": None,  # LoG and Gabor sigma*
        "cutoff_sigma": 4.0,  # LoG / Gabor kernel truncation, in sigmas
        "riesz_order": None,  # Riesz transform of the response, e.g. [1, 0, 0] (x, y, z order)
    },
    apply=_apply,
    support_radius=_support_radius,
    validate=_validate,
)
