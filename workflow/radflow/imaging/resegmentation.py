"""Re-segmentation (IBSI 3.3): the intensity mask is the morphological mask minus voxels outside an intensity range
and/or outside mean +/- n SD of the ROI (outlier filtering). Both are applied to the morphological mask's
intensities; when both are set, the outlier limits are computed on the original ROI and then intersected with the
range, as IBSI configurations D and E do.

Voxels without a finite intensity (NaN or infinite: parametric MR and PET maps, and some converters, write them where
there is no valid value) have no intensity to compute with, so they never belong to the intensity mask, and the
outlier limits are computed on the finite intensities. IBSI does not cover such voxels; leaving them out is how it
treats the voxels a sphere loses at the image border. The morphological mask keeps them: the ROI's shape is not
changed by a missing value.
"""
from __future__ import annotations

import numpy as np


def range_mask(image: np.ndarray, mask: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """Voxels of ``mask`` with low <= intensity <= high (either bound may be None)."""
    keep = mask.copy()
    if low is not None:
        keep &= image >= low
    if high is not None:
        keep &= image <= high
    return keep


def outlier_mask(image: np.ndarray, mask: np.ndarray, n_sigma: float) -> np.ndarray:
    """Voxels of ``mask`` within mean +/- n_sigma * SD of the ROI intensities (population SD)."""
    values = image[mask]
    if values.size == 0:
        return mask.copy()
    mean, sd = float(values.mean()), float(values.std())
    return range_mask(image, mask, mean - n_sigma * sd, mean + n_sigma * sd)


def finite_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` whose intensity is finite (a new array)."""
    return mask & np.isfinite(image)


def intensity_mask(image: np.ndarray, morph_mask: np.ndarray, value_range=None, outlier_sigma=None) -> np.ndarray:
    """The IBSI intensity mask for the given re-segmentation settings, without voxels of non-finite intensity."""
    finite = finite_mask(image, morph_mask)
    int_mask = finite.copy()
    if value_range is not None:
        int_mask &= range_mask(image, finite, value_range[0], value_range[1])
    if outlier_sigma is not None:
        int_mask &= outlier_mask(image, finite, float(outlier_sigma))
    return int_mask
