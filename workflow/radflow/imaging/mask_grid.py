"""Putting a label image on an image's voxel grid without changing a single label.

Features are computed on voxels matched by index, so a mask must lie on the image's grid. A mask often arrives on
the same voxels in another order: written in another orientation (a NIfTI converter flipping rows, RAS against
LPS), with its axes permuted, or cropped to a box around the ROI with the origin of that box. Then every mask voxel
centre is an image voxel centre, and the mask is re-indexed onto the image grid exactly (nearest neighbour at
integer positions: no interpolation, no partial voxels). Any other difference (another spacing, a shift by part of
a voxel, a rotation) would change the ROI, so it is refused, as is a re-indexing that would leave ROI voxels
outside the image.

The image may be given as a SimpleITK image or as an ``ImageFileReader`` that has read its information: both have
``GetSize``, ``GetSpacing``, ``GetOrigin`` and ``GetDirection``.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def _index_to_physical(grid) -> tuple[np.ndarray, np.ndarray]:
    """(A, o) with physical point = A @ index + o, index in SimpleITK's (x, y, z) order."""
    direction = np.asarray(grid.GetDirection(), dtype=np.float64).reshape(3, 3)
    return direction @ np.diag(np.asarray(grid.GetSpacing(), dtype=np.float64)), np.asarray(grid.GetOrigin())


def voxel_map(mask, reference, tolerance_mm: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(P, b) such that mask voxel k is reference voxel P @ k + b, P a signed permutation matrix and b integer
    (SimpleITK (x, y, z) indices), when every mask voxel centre is a reference voxel centre within ``tolerance_mm``;
    None otherwise."""
    if mask.GetDimension() != 3 or len(reference.GetSize()) != 3:
        return None
    to_reference, reference_origin = _index_to_physical(reference)
    from_mask, mask_origin = _index_to_physical(mask)
    try:
        linear = np.linalg.solve(to_reference, from_mask)
        offset = np.linalg.solve(to_reference, mask_origin - reference_origin)
    except np.linalg.LinAlgError:
        return None
    permutation = np.rint(linear)
    if not (np.all(np.abs(permutation).sum(axis=0) == 1) and np.all(np.abs(permutation).sum(axis=1) == 1)):
        return None
    shift = np.rint(offset)
    # the map is affine, so its error is largest at a corner of the mask grid
    last = np.asarray(mask.GetSize(), dtype=np.float64) - 1.0
    corners = np.array([[x, y, z] for x in (0.0, last[0]) for y in (0.0, last[1]) for z in (0.0, last[2])]).T
    error_index = (linear - permutation) @ corners + (offset - shift)[:, None]
    error_mm = np.abs(to_reference @ error_index)
    if error_mm.max() > tolerance_mm:
        return None
    return permutation.astype(np.int64), shift.astype(np.int64)


def reindexed(mask: sitk.Image, reference, mapping: tuple[np.ndarray, np.ndarray]) -> sitk.Image | None:
    """``mask`` on the grid of ``reference`` by its ``voxel_map`` ``mapping``, labels unchanged (itself when the map
    is the identity); None when a non-zero mask voxel would fall outside the reference grid."""
    permutation, shift = mapping
    if (tuple(mask.GetSize()) == tuple(reference.GetSize()) and np.array_equal(permutation, np.eye(3))
            and not shift.any()):
        return mask
    placed = sitk.Resample(mask, tuple(int(s) for s in reference.GetSize()), sitk.Transform(),
                           sitk.sitkNearestNeighbor, reference.GetOrigin(), reference.GetSpacing(),
                           reference.GetDirection(), 0, mask.GetPixelID())
    kept = np.count_nonzero(sitk.GetArrayViewFromImage(placed))
    if kept != np.count_nonzero(sitk.GetArrayViewFromImage(mask)):
        return None
    return placed


def onto_grid(mask: sitk.Image, reference, tolerance_mm: float) -> sitk.Image | None:
    """``mask`` on the grid of ``reference``, labels unchanged: itself when the grids agree within
    ``tolerance_mm``, re-indexed when it holds the same voxels in another order or a sub-box; None when it does
    not, or when a non-zero mask voxel would fall outside the reference grid."""
    mapping = voxel_map(mask, reference, tolerance_mm)
    return None if mapping is None else reindexed(mask, reference, mapping)
