"""The response map of a whole image as a SimpleITK image (``radflow filter``): the settings' interpolation and
intensity normalisation, then the filter, on the full grid; geometry kept (origin moved to the IBSI target grid)."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radflow.imaging import normalisation
from radflow.imaging.filters import FilterSpec, apply_filter
from radflow.imaging.preprocess import arrays_from_images
from radflow.imaging.resampling import grid_for, resample_image_and_mask


def response_map(image: sitk.Image, settings) -> sitk.Image:
    """``image`` interpolated and normalised as ``settings`` say, filtered with ``settings['filter']`` (float32 out:
    the maps are for viewing and exchange; features use the float64 map inside ``prepare``)."""
    spec = FilterSpec.from_settings(settings["filter"])
    no_mask = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    no_mask.CopyInformation(image)
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)
    if settings["interpolation"]["enabled"]:
        array, _, spacing = resample_image_and_mask(image, no_mask, settings)
        old_spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
        grids = grid_for(sitk.GetArrayViewFromImage(image).shape, old_spacing, spacing)
        shift_xyz = np.array([g.first * s for g, s in zip(grids, old_spacing)])[::-1]
        origin = origin + np.asarray(image.GetDirection()).reshape(3, 3) @ shift_xyz
    else:
        array, _, spacing = arrays_from_images(image, no_mask)
    method = settings["intensity_normalisation"]
    if method != "none":
        array = normalisation.fit(sitk.GetArrayViewFromImage(image), method).apply(array)
    out = sitk.GetImageFromArray(apply_filter(array, spacing, spec).astype(np.float32))
    out.SetSpacing(tuple(reversed(spacing)))
    out.SetOrigin(tuple(float(v) for v in origin))
    out.SetDirection(image.GetDirection())
    return out
