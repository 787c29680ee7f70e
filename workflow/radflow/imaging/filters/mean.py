"""Mean filter (IBSI-2): the average over an M-voxel cube (3D) or square (2D, axial plane), M odd.

``scipy.ndimage.uniform_filter`` is exact here (a running sum per axis, O(1) per voxel whatever M).
"""
from __future__ import annotations

import numpy as np

from radflow.imaging.filters.boundary import ndimage_mode
from radflow.imaging.filters.registry import FilterKind, FilterSpec, radius_on_axes, require


def mean(image: np.ndarray, support: int, axes: tuple[int, ...], boundary: str) -> np.ndarray:
    if support < 1 or support % 2 == 0:
        raise ValueError(f"mean filter support must be an odd number of voxels, got {support}")
    size = [1] * image.ndim
    for axis in axes:
        size[axis] = int(support)
    from scipy import ndimage  # imported here: the settings import every filter module, extract needs none

    return ndimage.uniform_filter(np.asarray(image, dtype=np.float64), size=size, mode=ndimage_mode(boundary),
                                  cval=0.0)


def _validate(spec: FilterSpec) -> None:
    require(int(spec.support_voxels) >= 1 and int(spec.support_voxels) % 2 == 1, "support_voxels must be odd")


FILTER = FilterKind(
    name="mean",
    parameters={"support_voxels": 5},  # M
    apply=lambda image, spacing, spec: mean(image, int(spec.support_voxels), spec.axes, spec.boundary_condition),
    support_radius=lambda spec, spacing: radius_on_axes(spec, int(spec.support_voxels) // 2),
    validate=_validate,
)
