"""IBSI diagnostic values (IBSI 1 reference data, "Diagnostics" rows): the image and ROI after each processing step.

Five stages, named as the IBSI reference table names them: the initial image, the interpolated image, the initial
ROI, the interpolated ROI (morphological mask = interpolated mask fraction >= partial-volume threshold) and the
re-segmented ROI (intensity mask after range and outlier re-segmentation). Without interpolation the interpolated
stages equal the initial ones. The values debug a processing chain before features are looked at: grid sizes and
spacings, intensity statistics, mask bounding boxes and voxel counts.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from radflow.imaging import resampling, resegmentation
from radflow.settings import Settings

INITIAL_IMAGE = "Diagnostics-initial image"
INTERPOLATED_IMAGE = "Diagnostics-interpolated image"
INITIAL_ROI = "Diagnostics-initial ROI"
INTERPOLATED_ROI = "Diagnostics-interpolated ROI"
RESEGMENTED_ROI = "Diagnostics-resegmented ROI"
STAGES = (INITIAL_IMAGE, INTERPOLATED_IMAGE, INITIAL_ROI, INTERPOLATED_ROI, RESEGMENTED_ROI)

AXES_XYZ = ("x", "y", "z")


def _xyz(values_zyx) -> dict[str, float]:
    return dict(zip(AXES_XYZ, (float(v) for v in reversed(tuple(values_zyx)))))


def image_values(image: np.ndarray, spacing_zyx) -> dict[str, float]:
    """Image dimension x/y/z (voxels), voxel dimension x/y/z (mm), mean/minimum/maximum intensity."""
    out = {f"Image dimension {a}": v for a, v in _xyz(image.shape).items()}
    out |= {f"Voxel dimension {a}": v for a, v in _xyz(spacing_zyx).items()}
    out |= {
        "Mean intensity": float(image.mean()),
        "Minimum intensity": float(image.min()),
        "Maximum intensity": float(image.max()),
    }
    return out


def bounding_box_size(mask: np.ndarray) -> tuple[int, ...]:
    """Extent of the mask's bounding box along each axis (voxels); zeros for an empty mask."""
    where = np.nonzero(mask)
    if where[0].size == 0:
        return (0,) * mask.ndim
    return tuple(int(idx.max() - idx.min() + 1) for idx in where)


def roi_values(image: np.ndarray, morph_mask: np.ndarray, int_mask: np.ndarray) -> dict[str, float]:
    """Int. mask dimension x/y/z, bounding boxes and voxel counts of both masks, intensities in the intensity mask."""
    out = {f"Int. mask dimension {a}": v for a, v in _xyz(int_mask.shape).items()}
    out |= {f"Int. mask bounding box dimension {a}": v for a, v in _xyz(bounding_box_size(int_mask)).items()}
    out |= {f"Morph. mask bounding box dimension {a}": v for a, v in _xyz(bounding_box_size(morph_mask)).items()}
    out["Int. mask voxel count"] = float(np.count_nonzero(int_mask))
    out["Morph. mask voxel count"] = float(np.count_nonzero(morph_mask))
    values = image[int_mask]
    empty = values.size == 0
    out["Int. mask mean intensity"] = float("nan") if empty else float(values.mean())
    out["Int. mask minimum intensity"] = float("nan") if empty else float(values.min())
    out["Int. mask maximum intensity"] = float("nan") if empty else float(values.max())
    return out


def diagnostics(image: sitk.Image, mask: sitk.Image, settings: Settings) -> dict[tuple[str, str], float]:
    """All IBSI diagnostic values, keyed by (stage, name) exactly as the IBSI reference table spells them."""
    initial_image = sitk.GetArrayFromImage(image).astype(np.float64)
    initial_mask = sitk.GetArrayFromImage(mask) != 0
    initial_spacing = tuple(float(s) for s in reversed(image.GetSpacing()))

    interp = settings["interpolation"]
    spacing: tuple[float, ...]
    if interp["enabled"]:
        image_new, fraction, spacing = resampling.resample_image_and_mask(image, mask, settings)
        morph_mask = fraction >= interp["partial_volume_threshold"]
    else:
        image_new, morph_mask, spacing = initial_image, initial_mask, initial_spacing

    reseg = settings["resegmentation"]
    int_mask = resegmentation.intensity_mask(image_new, morph_mask, reseg["range"], reseg["outlier_sigma"])

    stages = {
        INITIAL_IMAGE: image_values(initial_image, initial_spacing),
        INTERPOLATED_IMAGE: image_values(image_new, spacing),
        INITIAL_ROI: roi_values(initial_image, initial_mask, initial_mask),
        INTERPOLATED_ROI: roi_values(image_new, morph_mask, morph_mask),
        RESEGMENTED_ROI: roi_values(image_new, morph_mask, int_mask),
    }
    return {(stage, name): value for stage, values in stages.items() for name, value in values.items()}
