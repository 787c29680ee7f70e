"""A mask drawn on one series, carried onto another series of the same frame of reference.

A hybrid PET/CT shares the scanner's coordinates between its PET and its CT, and ROIs are often drawn on the CT
only. Their contours then lie on the CT's slices, not the PET's, so the mask is rasterised on the CT grid and
resampled onto the PET grid the way IBSI resamples a mask: linear interpolation of the 0/1 mask, and the voxels whose
interpolated value reaches the partial-volume threshold of 0.5 form the ROI.
"""
from __future__ import annotations

import SimpleITK as sitk

from radflow.imaging.preprocess import PARTIAL_VOLUME_EPSILON

PARTIAL_VOLUME_THRESHOLD = 0.5


def resampled_mask(mask: sitk.Image, target: sitk.Image) -> sitk.Image:
    """``mask`` (0/1, on the grid it was drawn on) on the grid of ``target`` as uint8 0/1: linear interpolation,
    then >= 0.5 (within the rounding ``preprocess`` allows for interpolated masks); 0 outside ``mask``'s grid."""
    fractions = sitk.Resample(sitk.Cast(mask != 0, sitk.sitkFloat32), target, sitk.Transform(), sitk.sitkLinear, 0.0)
    return sitk.BinaryThreshold(fractions, PARTIAL_VOLUME_THRESHOLD - PARTIAL_VOLUME_EPSILON, 2.0, 1, 0)
