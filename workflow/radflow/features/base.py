"""What every feature family consumes (``RoiData``, defined in ``imaging.roi`` beside the code that makes it) and
produces (``FeatureValue``).

Array convention throughout radflow: numpy arrays are indexed (z, y, x) as SimpleITK's ``GetArrayFromImage`` gives
them, and ``spacing`` is (z, y, x) in millimetres. 2D and 2.5D texture aggregation works on axial slices (axis 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Re-exported for the families: what they consume (made by imaging.preprocess) and the labels they emit.
from radflow.ibsi import MATRIX_AGGREGATIONS, NO_AGGREGATION, ZONE_AGGREGATIONS
from radflow.imaging.roi import RoiData

__all__ = ["MATRIX_AGGREGATIONS", "NO_AGGREGATION", "ZONE_AGGREGATIONS", "FeatureValue", "RoiData", "bounding_box"]


@dataclass(frozen=True)
class FeatureValue:
    """One feature value. ``value`` is NaN exactly when ``reason`` says why."""

    ibsi_code: str
    aggregation: str
    value: float
    reason: str = ""

    @classmethod
    def undefined(cls, ibsi_code: str, aggregation: str, reason: str) -> "FeatureValue":
        return cls(ibsi_code, aggregation, math.nan, reason)


def bounding_box(mask: np.ndarray) -> tuple[slice, ...]:
    """The smallest box of slices holding every True voxel of a non-empty 3D ``mask`` (by axis projections, a few
    times faster than ``np.nonzero`` on a large ROI)."""
    box = []
    for axis in range(3):
        present = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)
