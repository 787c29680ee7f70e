"""``RoiData``: a preprocessed region of interest, the hand-over from imaging (``preprocess.prepare`` makes it) to
the feature families (which only read it).

Array convention throughout radflow: numpy arrays are indexed (z, y, x) as SimpleITK's ``GetArrayFromImage`` gives
them, and ``spacing`` is (z, y, x) in millimetres.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass
class RoiData:
    """A preprocessed region of interest, ready for feature computation.

    image       float64 intensities (after interpolation, rounding, normalisation), cropped to the ROI bounding box
                plus ``margin`` voxels where the image allows (local intensity needs the neighbourhood).
    morph_mask  bool, the morphological mask (ROI after interpolation, before intensity re-segmentation).
    int_mask    bool, the intensity mask (morph_mask after re-segmentation); a subset of morph_mask.
    spacing     (z, y, x) voxel size in mm.
    levels      int32 discretised grey levels, 1..n_levels inside int_mask, 0 outside.
    n_levels    number of grey levels of the discretisation (FBN: the bin count; FBS: the highest bin reached;
                none: the highest level).
    cache       intermediate results that several families share (e.g. the zones GLSZM and GLDZM both count), keyed
                by the helper that computes them; not part of the ROI's value and not an ``__init__`` argument
                (``dataclasses.replace`` starts an empty one). A prepared RoiData is therefore treated as
                read-only: change its arrays in place and the cache (and ``intensities``) would be stale.
    """

    image: np.ndarray
    morph_mask: np.ndarray
    int_mask: np.ndarray
    spacing: tuple[float, float, float]
    levels: np.ndarray
    n_levels: int
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # fresh for every RoiData

    @cached_property
    def intensities(self) -> np.ndarray:
        """``image[int_mask]``: the intensity mask's intensities in array order, gathered once (statistics, IVH,
        local intensity and morphology all read them)."""
        return self.image[self.int_mask]

    @property
    def voxel_volume(self) -> float:
        return float(np.prod(self.spacing))


def mask_extent(mask: np.ndarray) -> tuple[tuple[int, int], ...] | None:
    """Inclusive (first, last) index of the non-zero voxels of a 3D ``mask`` along z, y and x; None when empty.

    Found without a full-size temporary: the slice range first, then rows and columns of that slab's (y, x)
    footprint. A bool or uint8 mask is read as bytes and reduced by max: numpy's any() converts every element to
    bool first and is twice as slow over a whole CT (26 MB: 0.9 -> 0.45 ms), which a small ROI's extraction pays in
    full; a contiguous mask's slices are reduced as rows of one 2D array, which numpy's reduction streams faster
    than two axes at once (26 MB: 1.0 -> 0.75 ms on a 2-core VM).
    """
    if mask.dtype in (np.bool_, np.uint8):
        octets = mask.view(np.uint8)
        rows = octets.reshape(octets.shape[0], -1) if octets.flags.c_contiguous and octets.size else octets
        z = np.flatnonzero(rows.max(axis=1) if rows.ndim == 2 else rows.max(axis=(1, 2)))
        if z.size == 0:
            return None
        footprint = octets[z[0]:z[-1] + 1].max(axis=0)
        y, x = np.flatnonzero(footprint.max(axis=1)), np.flatnonzero(footprint.max(axis=0))
    else:
        z = np.flatnonzero(mask.any(axis=(1, 2)))
        if z.size == 0:
            return None
        slab = mask[z[0]:z[-1] + 1]
        y, x = np.flatnonzero(slab.any(axis=(0, 2))), np.flatnonzero(slab.any(axis=(0, 1)))
    return tuple((int(idx[0]), int(idx[-1])) for idx in (z, y, x))
