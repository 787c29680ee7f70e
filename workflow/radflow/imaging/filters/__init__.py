"""IBSI chapter 2 convolutional filters: the response map of an image, computed before intensity features.

Filters (``spec.FILTER_TYPES``): mean, Laplacian of Gaussian (with an optional Riesz transform), Laws (energy
maps, rotation invariance), Gabor (orientation pooling, orthogonal planes), separable undecimated wavelets
(any PyWavelets family, any sub-band and level, rotation invariance) and the Simoncelli wavelet (with an optional
Riesz transform); each 2D (slice-wise, axial plane) or 3D, under the IBSI boundary conditions zero, nearest, periodic
and mirror (Fourier-domain stages, Simoncelli and Riesz, are periodic by construction: see ``fourier``). Arrays are
(z, y, x) as everywhere in radflow; kernel names and orders keep IBSI's (x, y, z) order.

``apply_filter(image, spacing, spec)`` is the single entry point; ``support_margin`` tells how many voxels around a
region its response there depends on (None: the whole image), so callers may filter a crop and get the same values.
Every filter reproduces the IBSI-2 phase-1 consensus response maps (tests/test_filters_ibsi2.py).
"""
from __future__ import annotations

import numpy as np

from radflow.imaging.filters.spec import DEFAULT_FILTER, FILTER_TYPES, FOURIER_TYPES, FilterSpec

__all__ = ["DEFAULT_FILTER", "FILTER_TYPES", "FilterSpec", "apply_filter", "support_margin"]


def apply_filter(image: np.ndarray, spacing: tuple[float, float, float], spec: FilterSpec) -> np.ndarray:
    """The response map (float64, same shape) of ``image`` with voxel ``spacing`` (z, y, x) in mm."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"filters take (z, y, x) volumes, got shape {image.shape}")
    axes, boundary = spec.axes, spec.boundary_condition
    if spec.type == "none":
        return image.copy()
    if spec.type == "mean":
        from radflow.imaging.filters.mean import mean

        return mean(image, int(spec.support_voxels), axes, boundary)
    if spec.type == "laplacian_of_gaussian":
        from radflow.imaging.filters.log import laplacian_of_gaussian

        response = laplacian_of_gaussian(image, float(spec.sigma_mm), spacing, axes, boundary, spec.cutoff_sigma)
        if spec.riesz_order is None:
            return response
        from radflow.imaging.filters.riesz import riesz

        return riesz(response, spec.riesz_order, axes)
    if spec.type == "laws":
        from radflow.imaging.filters.laws import laws

        return laws(image, spec.laws_kernel, axes, boundary, rotation_invariance=spec.rotation_invariance,
                    pooling=spec.pooling or "max", energy=spec.energy_map, energy_delta=int(spec.energy_delta_voxels))
    if spec.type == "gabor":
        from radflow.imaging.filters.gabor import gabor

        return gabor(image, float(spec.sigma_mm), float(spec.gabor_lambda_mm), float(spec.gabor_gamma), spacing,
                     boundary, theta=float(spec.gabor_theta), delta_theta=spec.gabor_delta_theta,
                     pooling=spec.pooling or "average", orthogonal_planes=spec.orthogonal_planes,
                     cutoff=spec.cutoff_sigma)
    if spec.type == "separable_wavelet":
        from radflow.imaging.filters.wavelets import separable_wavelet

        return separable_wavelet(image, spec.wavelet, spec.wavelet_map, int(spec.wavelet_level), axes, boundary,
                                 rotation_invariance=spec.rotation_invariance, pooling=spec.pooling or "average")
    if spec.type == "simoncelli":
        from radflow.imaging.filters.simoncelli import simoncelli

        return simoncelli(image, int(spec.wavelet_level), axes, spec.riesz_order)
    raise ValueError(f"unknown filter type {spec.type!r}")


def support_margin(spec: FilterSpec, spacing: tuple[float, float, float]) -> tuple[int, int, int] | None:
    """Voxels per axis (z, y, x) beyond a region that its response depends on; None for Fourier-domain filters.

    Filtering a crop that extends this far beyond a region (or to the image edge) gives exactly the values the
    whole image would give inside the region, also for chained stages (their radii add up)."""
    if not spec.active:
        return (0, 0, 0)
    if spec.type in FOURIER_TYPES or spec.riesz_order is not None:
        return None
    radius = [0, 0, 0]
    axes = spec.axes
    if spec.type == "mean":
        for axis in axes:
            radius[axis] = int(spec.support_voxels) // 2
    elif spec.type == "laplacian_of_gaussian":
        from radflow.imaging.filters.log import support_radius_voxels

        for axis in axes:
            radius[axis] = support_radius_voxels(float(spec.sigma_mm), spacing[axis], spec.cutoff_sigma)
    elif spec.type == "laws":
        from radflow.imaging.filters.laws import parse_kernel

        half = max(int(part[1]) // 2 for part in parse_kernel(spec.laws_kernel, len(axes)))
        extra = int(spec.energy_delta_voxels) if spec.energy_map else 0
        for axis in axes:
            radius[axis] = half + extra
    elif spec.type == "gabor":
        from radflow.imaging.filters.gabor import PLANES, kernel_radius

        planes = PLANES if spec.orthogonal_planes else PLANES[:1]
        for plane in planes:
            for axis in plane:
                r = kernel_radius(float(spec.sigma_mm) / spacing[axis], float(spec.gabor_gamma), spec.cutoff_sigma)
                radius[axis] = max(radius[axis], r)
    elif spec.type == "separable_wavelet":
        from radflow.imaging.filters.wavelets import dilated_factor, wavelet_filters

        lo, hi = wavelet_filters(spec.wavelet)
        total = sum(max(len(dilated_factor(lo, j).taps), len(dilated_factor(hi, j).taps)) // 2
                    for j in range(1, int(spec.wavelet_level) + 1))
        for axis in axes:
            radius[axis] = total
    return tuple(radius)
