"""Intensity discretisation (IBSI 3.4): fixed bin number (FBN), fixed bin size (FBS) and none.

Each function maps the intensities inside ``mask`` to grey levels 1..n_levels and sets 0 outside, returning
``(levels, n_levels)``.
"""
from __future__ import annotations

import math

import numpy as np

from radflow.settings import MAX_GREY_LEVELS


class DiscretisationError(ValueError):
    pass


def _roi_values(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        raise DiscretisationError("cannot discretise an empty ROI")
    return image[mask]


def fixed_bin_number(image: np.ndarray, mask: np.ndarray, n_bins: int) -> tuple[np.ndarray, int]:
    """FBN: X_d = floor(N_g (X - X_min) / (X_max - X_min)) + 1, and X_d = N_g where X = X_max.

    X_min and X_max are taken over the ROI. A constant ROI has a single grey level (1).
    """
    values = _roi_values(image, mask)
    lo, hi = float(values.min()), float(values.max())
    levels = np.zeros(image.shape, dtype=np.int32)
    if hi == lo:
        levels[mask] = 1
        return levels, int(n_bins)
    binned = np.floor(n_bins * (values - lo) / (hi - lo)).astype(np.int64) + 1
    levels[mask] = np.minimum(binned, n_bins)
    return levels, int(n_bins)


def fixed_bin_size(
    image: np.ndarray, mask: np.ndarray, bin_width: float, lower_bound: float | None = None
) -> tuple[np.ndarray, int]:
    """FBS: X_d = floor((X - X_min) / w_b) + 1.

    X_min is ``lower_bound`` when given (IBSI: the lower bound of the re-segmentation range) and the ROI minimum
    otherwise. n_levels is the highest bin the ROI reaches.
    """
    values = _roi_values(image, mask)
    x_min = float(values.min()) if lower_bound is None else float(lower_bound)
    if values.min() < x_min:
        raise DiscretisationError(f"ROI intensity {values.min()} lies below the bin lower bound {x_min}")
    n_levels = math.floor((float(values.max()) - x_min) / bin_width) + 1
    if n_levels > MAX_GREY_LEVELS:  # checked before the levels (and the texture code's per-level tables) exist
        raise DiscretisationError(
            f"bin width {bin_width:g} over the ROI intensities [{x_min:g}, {float(values.max()):g}] gives "
            f"{n_levels} grey levels, more than the maximum of {MAX_GREY_LEVELS}")
    binned = np.floor((values - x_min) / bin_width).astype(np.int64) + 1
    levels = np.zeros(image.shape, dtype=np.int32)
    levels[mask] = binned
    return levels, int(binned.max())


def as_grey_levels(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """No discretisation: the image is already discrete (integer grey levels >= 1), used as is."""
    values = _roi_values(image, mask)
    if not np.all(values == np.round(values)) or values.min() < 1:
        raise DiscretisationError(
            "discretisation 'none' needs integer grey levels >= 1 inside the ROI; "
            f"found range [{values.min()}, {values.max()}]"
        )
    levels = np.zeros(image.shape, dtype=np.int32)
    levels[mask] = values.astype(np.int32)
    return levels, int(values.max())


def discretise(image: np.ndarray, mask: np.ndarray, method: str, *, bin_width=None, n_bins=None, lower_bound=None):
    """Dispatch on an IBSI discretisation setting group (``settings['discretisation']['texture']``)."""
    if method == "fixed_bin_number":
        return fixed_bin_number(image, mask, int(n_bins))
    if method == "fixed_bin_size":
        return fixed_bin_size(image, mask, float(bin_width), None if lower_bound is None else float(lower_bound))
    if method == "none":
        return as_grey_levels(image, mask)
    raise DiscretisationError(f"unknown discretisation method {method!r}")

