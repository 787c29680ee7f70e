"""MR intensity normalisation (setting ``intensity_normalisation``): none, z-score, percentile.

MR intensities have no absolute scale, so radiomics on MR usually maps each image to a common one first:

- ``z_score``: x' = (x - mean) / SD, mean and (population) SD over the whole image (as PyRadiomics' ``normalize``);
- ``percentile``: x' = (x - P1) / (P99 - P1), the 1st and 99th percentiles of the image mapped to 0 and 1 (robust
  to a few extreme voxels, unlike min-max);
- ``none``: unchanged.

Both are affine maps, so they are fitted on the original image and may be applied after interpolation (they commute
with it): ``prepare`` fits on the full original image, then applies the map to the interpolated (possibly
ROI-windowed) array, whose statistics would otherwise depend on the window.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("none", "z_score", "percentile")
PERCENTILES = (1.0, 99.0)


class NormalisationError(ValueError):
    pass


@dataclass(frozen=True)
class Normalisation:
    """The affine map x' = (x - shift) / scale."""

    method: str
    shift: float = 0.0
    scale: float = 1.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return image
        return (np.asarray(image, dtype=np.float64) - self.shift) / self.scale


def fit(image: np.ndarray, method: str, mask: np.ndarray | None = None) -> Normalisation:
    """Fit ``method`` on the image's finite intensities (only inside ``mask`` when one is given, e.g. a body
    mask)."""
    if method not in METHODS:
        raise NormalisationError(f"intensity_normalisation must be one of {METHODS}, got {method!r}")
    if method == "none":
        return Normalisation("none")
    values = np.asarray(image if mask is None else image[mask != 0], dtype=np.float64).ravel()
    if values.size == 0:
        raise NormalisationError("cannot fit an intensity normalisation on an empty region")
    finite = np.isfinite(values)
    if not finite.all():  # voxels without a value (NaN, infinite) have no say in the scale
        values = values[finite]
        if values.size == 0:
            raise NormalisationError("cannot fit an intensity normalisation: no voxel has a finite intensity")
    if method == "z_score":
        shift, scale = float(values.mean()), float(values.std())
    else:
        low, high = np.percentile(values, PERCENTILES)
        shift, scale = float(low), float(high - low)
    if not scale > 0:
        raise NormalisationError(f"{method} normalisation of a constant image (spread {scale}) is undefined")
    return Normalisation(method, shift, scale)


def normalise(image: np.ndarray, method: str, mask: np.ndarray | None = None) -> np.ndarray:
    """Fit and apply in one step."""
    return fit(image, method, mask).apply(image)
