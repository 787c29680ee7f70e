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
