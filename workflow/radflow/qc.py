"""Quality control: one function per check, each returning ``QCResult``s with a stable code.

Severity ``fail`` removes the scan (or ROI) from feature extraction; ``warn`` is recorded and the case goes on.
Ingest problems (unreadable series, ROI not found, ...) arrive as results with their own codes and are merged here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

FAIL, WARN, PASS = "fail", "warn", "pass"


@dataclass(frozen=True)
class QCResult:
    code: str
    severity: str
    message: str
    value: float | None = None
    roi: str = ""


def same_geometry(image: sitk.Image, mask: sitk.Image, tolerance: float = 1e-3) -> bool:
    return (
        image.GetSize() == mask.GetSize()
        and np.allclose(image.GetSpacing(), mask.GetSpacing(), atol=tolerance)
        and np.allclose(image.GetOrigin(), mask.GetOrigin(), atol=tolerance)
        and np.allclose(image.GetDirection(), mask.GetDirection(), atol=tolerance)
    )


def mask_geometry(image: sitk.Image, mask: sitk.Image, roi: str) -> QCResult:
    """MASK_GEOMETRY: the mask must lie on the image grid (same size, spacing, origin, direction)."""
    if same_geometry(image, mask):
        return QCResult("MASK_GEOMETRY", PASS, "mask on the image grid", roi=roi)
    return QCResult(
        "MASK_GEOMETRY", FAIL,
        f"mask grid {mask.GetSize()} @ {np.round(mask.GetOrigin(), 2).tolist()} differs from image grid "
        f"{image.GetSize()} @ {np.round(image.GetOrigin(), 2).tolist()}",
        roi=roi,
    )


def mask_not_empty(mask_array: np.ndarray, roi: str) -> QCResult:
    """MASK_EMPTY: a mask without voxels cannot give features."""
    count = int(np.count_nonzero(mask_array))
    if count == 0:
        return QCResult("MASK_EMPTY", FAIL, "the mask has no voxels", 0.0, roi)
    return QCResult("MASK_EMPTY", PASS, f"{count} voxels", float(count), roi)


def mask_inside_image(mask_array: np.ndarray, roi: str) -> QCResult:
    """MASK_AT_BORDER: a mask touching the image border is probably cut off (warning)."""
    touches = any(
        mask_array.take(index, axis=axis).any() for axis in range(mask_array.ndim) for index in (0, -1)
    )
    if touches:
        return QCResult("MASK_AT_BORDER", WARN, "the mask touches the image border (lesion may be cut off)", 1.0, roi)
    return QCResult("MASK_AT_BORDER", PASS, "mask inside the image", 0.0, roi)


def roi_volume(mask_array: np.ndarray, voxel_volume_mm3: float, min_volume_mm3: float, roi: str) -> QCResult:
    """ROI_TOO_SMALL: texture on a handful of voxels is noise."""
    volume = float(np.count_nonzero(mask_array)) * voxel_volume_mm3
    if volume < min_volume_mm3:
        return QCResult("ROI_TOO_SMALL", FAIL, f"ROI volume {volume:.1f} mm3 below the minimum {min_volume_mm3} mm3", volume, roi)
    return QCResult("ROI_TOO_SMALL", PASS, f"ROI volume {volume:.1f} mm3", volume, roi)


def check_roi(image: sitk.Image, mask: sitk.Image, roi: str, min_volume_mm3: float) -> list[QCResult]:
    """All mask checks for one ROI, stopping at the first failure that makes the rest meaningless."""
    geometry = mask_geometry(image, mask, roi)
    if geometry.severity == FAIL:
        return [geometry]
    mask_array = sitk.GetArrayViewFromImage(mask)
    empty = mask_not_empty(mask_array, roi)
    if empty.severity == FAIL:
        return [geometry, empty]
    voxel_volume = float(np.prod(image.GetSpacing()))
    return [geometry, empty, mask_inside_image(mask_array, roi), roi_volume(mask_array, voxel_volume, min_volume_mm3, roi)]


def worst(results: list[QCResult]) -> str:
    severities = {r.severity for r in results}
    return FAIL if FAIL in severities else WARN if WARN in severities else PASS
