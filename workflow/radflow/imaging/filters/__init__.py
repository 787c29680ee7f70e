"""IBSI chapter 2 convolutional filters: the response map of an image, computed before intensity features.

Filters (``registry.BUILT_IN_FILTERS``, one module each): mean, Laplacian of Gaussian (with an optional Riesz
transform), Laws (energy maps, rotation invariance), Gabor (orientation pooling, orthogonal planes), separable
undecimated wavelets (any PyWavelets family, any sub-band and level, rotation invariance) and the Simoncelli wavelet
(with an optional Riesz transform); each 2D (slice-wise, axial plane) or 3D, under the IBSI boundary conditions zero,
nearest, periodic and mirror (Fourier-domain stages, Simoncelli and Riesz, are periodic by construction: see
``fourier``). Arrays are (z, y, x) as everywhere in radflow; kernel names and orders keep IBSI's (x, y, z) order.

``apply_filter(image, spacing, spec)`` is the single entry point; ``support_margin`` tells how many voxels around a
region its response there depends on (None: the whole image), so callers may filter a crop and get the same values.
Both dispatch through the registry (``registry.FilterKind``): a new filter is a module declaring ``FILTER`` and a
line in ``registry.BUILT_IN_FILTERS``. Every filter reproduces the IBSI-2 phase-1 consensus response maps
(tests/test_filters_ibsi2.py).
"""
from __future__ import annotations

import numpy as np

from radflow.imaging.filters.registry import (FilterKind, FilterSettingsError, FilterSpec, defaults, filter_types,
                                              register, register_module, registered, unregister)

__all__ = ["FilterKind", "FilterSettingsError", "FilterSpec", "apply_filter", "defaults", "filter_types", "register",
           "register_module", "registered", "support_margin", "unregister"]


def apply_filter(image: np.ndarray, spacing: tuple[float, float, float], spec: FilterSpec) -> np.ndarray:
    """The response map (float64, same shape) of ``image`` with voxel ``spacing`` (z, y, x) in mm."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 3:
        raise ValueError(f"filters take (z, y, x) volumes, got shape {image.shape}")
    return spec.kind.apply(image, spacing, spec)


def support_margin(spec: FilterSpec, spacing: tuple[float, float, float]) -> tuple[int, int, int] | None:
    """Voxels per axis (z, y, x) beyond a region that its response depends on; None for Fourier-domain filters.

    Filtering a crop that extends this far beyond a region (or to the image edge) gives exactly the values the
    whole image would give inside the region, also for chained stages (their radii add up)."""
    if not spec.active:
        return (0, 0, 0)
    return spec.kind.support_radius(spec, spacing)

