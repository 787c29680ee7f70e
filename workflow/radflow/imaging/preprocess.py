"""From an image and its ROI mask (SimpleITK images) to ``RoiData``: the IBSI processing chain in one place.

Order (IBSI 3): interpolation (with MR intensity normalisation) -> morphological mask (partial-volume threshold)
-> re-segmentation (intensity mask) -> crop to the ROI with a margin -> discretisation. ``radflow extract`` and the
pipeline both call ``prepare``. With interpolation on, only the target grid around the ROI (plus the local-intensity
margin) is computed: the result is the same as interpolating the whole image and cropping, at a fraction of the cost.

With an IBSI-2 ``filter`` configured, the image is filtered after interpolation and re-segmentation: the
re-segmentation range applies to the original intensities (IBSI-2 phase 2 re-segments to [-1000, 400] HU and then
reports filtered values far outside that range, e.g. Laws energies up to 525), and ``RoiData.image`` is the
response map, which the families (intensity statistics, and texture where configured) and the discretisation then
see. Finite-support filters are computed on the ROI crop grown by the filter's support (exactly the values the
whole image would give there); Fourier-domain filters (Simoncelli, Riesz) on the whole grid.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import SimpleITK as sitk

from radflow.imaging import discretisation, missing_values, normalisation, resegmentation
from radflow.imaging.filters import FilterSpec, apply_filter, support_margin
from radflow.imaging.roi import RoiData, mask_extent
from radflow.settings import BYTES_PER_GRID_VOXEL, DEFAULT_MEMORY_MB, Settings


PARTIAL_VOLUME_EPSILON = 1e-6


class EmptyRoiError(ValueError):
    pass


class RoiTooLargeError(ValueError):
    """The ROI's working grid would need more memory than allowed (QC code ROI_TOO_LARGE); says how much."""

    code = "ROI_TOO_LARGE"

    def __init__(self, message: str, needed_bytes: float):
        super().__init__(message)
        self.needed_bytes = needed_bytes


def working_grid_voxels(image: sitk.Image, mask: sitk.Image | None, settings: Settings,
                        window_mm: float | None) -> int:
    """Voxels of the grid ``prepare`` works on: the ROI's box grown by ``window_mm`` (the whole image when None, or
    when no ``mask`` is given: an upper bound), on the interpolation grid; 0 for an empty mask. Found from the
    mask alone, before any allocation."""
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    extent_mm = [n * s for n, s in zip(reversed(image.GetSize()), spacing)]
    if mask is not None and window_mm is not None:
        box = crop_box(sitk.GetArrayViewFromImage(mask), (0, 0, 0))
        if box is None:
            return 0
        extent_mm = [min((b.stop - b.start) * s + 2 * window_mm, e) for b, s, e in zip(box, spacing, extent_mm)]
    target = spacing
    if settings["interpolation"]["enabled"]:
        from radflow.imaging.resampling import target_spacing_zyx

        target = target_spacing_zyx(spacing, settings)
    return math.prod(int(math.ceil(e / t)) + 1 for e, t in zip(extent_mm, target))


def check_memory(image: sitk.Image, mask: sitk.Image, settings: Settings, window_mm: float | None,
                 memory_mb: float | None) -> None:
    """ROI_TOO_LARGE before allocating when the working grid would need more than ``memory_mb``."""
    limit = (DEFAULT_MEMORY_MB if memory_mb is None else memory_mb) * 1e6
    if working_grid_voxels(image, None, settings, window_mm) * BYTES_PER_GRID_VOXEL <= limit:
        return  # even the whole image fits: no need to look at the mask (keeps small-ROI calls cheap)
    voxels = working_grid_voxels(image, mask, settings, window_mm)
    needed = float(voxels) * BYTES_PER_GRID_VOXEL
    if needed > limit:
        raise RoiTooLargeError(
            f"the ROI's working grid would be {voxels:,} voxels, about {needed / 1e9:.3g} GB, more than the "
            f"{limit / 1e6:g} MB a feature job may use (a whole-image or mislabelled ROI, or too fine a spacing?)",
            needed)


class NonFiniteIntensityWarning(UserWarning):
    """Some ROI voxels have no finite intensity (NaN or infinite) and are left out of the intensity mask."""


def _check_finite(image_array: np.ndarray, morph_mask: np.ndarray, what: str) -> None:
    """Warn when ROI voxels have a non-finite ``what`` (``resegmentation.intensity_mask`` leaves them out); raise
    ``EmptyRoiError`` when no ROI voxel has a finite one."""
    finite = np.isfinite(image_array)
    if finite.all():
        return
    total = int(np.count_nonzero(morph_mask))
    missing = total - int(np.count_nonzero(finite & morph_mask))
    if missing == total:
        raise EmptyRoiError(f"no ROI voxel has a finite {what} (all {total} are NaN or infinite)")
    if missing:
        warnings.warn(NonFiniteIntensityWarning(
            f"{missing} of the ROI's {total} voxels without a finite {what} (NaN or infinite): left out of the "
            "intensity mask"), stacklevel=3)


def local_intensity_radius_mm(settings: Settings) -> float:
    """Radius of the sphere of the configured volume (1 cm^3 -> 6.2035 mm)."""
    volume_mm3 = 1000.0 * settings["local_intensity"]["sphere_volume_cm3"]
    return (3.0 * volume_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)


def crop_box(mask: np.ndarray, margin: tuple[int, int, int]) -> tuple[slice, ...] | None:
    """Bounding box of the non-zero voxels of ``mask`` grown by ``margin`` voxels per axis, clipped to the array
    (None for an empty mask; ``roi.mask_extent``)."""
    extent = mask_extent(mask)
    if extent is None:
        return None
    return tuple(slice(max(first - m, 0), min(last + m + 1, size))
                 for (first, last), m, size in zip(extent, margin, mask.shape))


def arrays_from_images(
    image: sitk.Image, mask: sitk.Image, roi_margin_mm: float | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Image (float64) and mask arrays; with ``roi_margin_mm`` only the ROI's box grown by that margin, cut from
    views of the SimpleITK buffers before any conversion (a small ROI in a large CT costs what the ROI costs)."""
    spacing_zyx = tuple(float(s) for s in reversed(image.GetSpacing()))
    image_view, mask_view = sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(mask)
    box = None
    if roi_margin_mm is not None:
        box = crop_box(mask_view, tuple(int(math.ceil(roi_margin_mm / s)) for s in spacing_zyx))
    if box is None:  # whole image asked for, or an empty mask (reported as such by prepare)
        box = (slice(None),) * 3
    return image_view[box].astype(np.float64), np.array(mask_view[box]), spacing_zyx


def interpolate(
    image: sitk.Image, mask: sitk.Image, settings: Settings, roi_margin_mm: float | None = None
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Image and mask on the configured grid; the mask as partial-volume fractions when resampled, else as read (its
    labels compare against the partial-volume threshold as their float values would, without a float64 copy of the
    box: 38 MB at a 1 M-voxel ROI).

    With ``roi_margin_mm`` only the grid around the ROI (plus that margin) may be returned.
    """
    interp = settings["interpolation"]
    if not interp["enabled"]:
        return arrays_from_images(image, mask, roi_margin_mm)
    from radflow.imaging import resampling  # the IBSI grid resampler

    return resampling.resample_image_and_mask(image, mask, settings, roi_margin_mm=roi_margin_mm)


def filter_margin_mm(spec: FilterSpec, image: sitk.Image, settings: Settings) -> float | None:
    """The filter's support in mm on the grid ``prepare`` will use (None: the filter needs the whole image)."""
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    if settings["interpolation"]["enabled"]:
        from radflow.imaging.resampling import target_spacing_zyx

        spacing = target_spacing_zyx(spacing, settings)
    margin = support_margin(spec, spacing)
    return None if margin is None else max(m * s for m, s in zip(margin, spacing))


def filtered(image_array, morph_mask, int_mask, spacing, spec: FilterSpec, margin):
    """(response map, morph_mask, int_mask), cropped to the ROI plus ``margin`` and the filter support when the
    filter has a finite support, so that only that window is filtered."""
    support = support_margin(spec, spacing)
    if support is not None:
        box = crop_box(morph_mask, tuple(m + f for m, f in zip(margin, support)))
        image_array, morph_mask, int_mask = image_array[box], morph_mask[box], int_mask[box]
    filled = missing_values.filled(image_array) if support is not None else None
    if filled is None:  # a Fourier-domain filter's response depends on every voxel: a missing one makes all missing
        return apply_filter(image_array, spacing, spec), morph_mask, int_mask
    # filtered with the missing voxels filled, then missing wherever the support reaches one (a running-sum filter
    # would otherwise carry a NaN along whole lines)
    response = apply_filter(filled, spacing, spec)
    response[missing_values.reached(~np.isfinite(image_array), support)] = np.nan
    return response, morph_mask, int_mask


def empty_mask_reason(mask: sitk.Image, settings: Settings) -> str:
    """Why the morphological mask is empty: the mask itself, or an ROI too small for the interpolation grid (no
    voxel of it lies at least ``partial_volume_threshold`` inside the ROI)."""
    interp = settings["interpolation"]
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) if interp["enabled"] else 0
    if not voxels:
        return "the ROI mask is empty"
    spacing = ", ".join(f"{s:g}" for s in mask.GetSpacing())
    grid = ", ".join("as acquired" if s is None else f"{s:g}" for s in interp["spacing_mm"])  # 2D: z as acquired
    return (f"no voxel of the interpolation grid ([{grid}] mm) lies at "
            f"least {interp['partial_volume_threshold']:g} inside the ROI of {voxels} voxel(s) at [{spacing}] mm: "
            "the ROI is too small for that spacing (interpolation.spacing_mm)")


def prepare(image: sitk.Image, mask: sitk.Image, settings: Settings, memory_mb: float | None = None) -> RoiData:
    radius = local_intensity_radius_mm(settings)
    spec = FilterSpec.from_settings(settings["filter"])
    window_mm: float | None = radius
    if spec.active:
        extra = filter_margin_mm(spec, image, settings)
        window_mm = None if extra is None else radius + extra
    check_memory(image, mask, settings, window_mm, memory_mb)
    image_array, mask_fraction, spacing = interpolate(image, mask, settings, roi_margin_mm=window_mm)
    method = settings["intensity_normalisation"]
    if method != "none":  # fitted on the whole original image, not on the ROI window
        image_array = normalisation.fit(sitk.GetArrayViewFromImage(image), method).apply(image_array)
    threshold = settings["interpolation"]["partial_volume_threshold"] if settings["interpolation"]["enabled"] else 0.5
    # On grids that share voxel centres (3 mm -> 2 mm, say) many interpolated mask values are exactly the threshold
    # in exact arithmetic; geometry read from DICOM decimal strings (3 vs 2.9999999999998 mm) must not flip them.
    morph_mask = mask_fraction >= threshold - PARTIAL_VOLUME_EPSILON
    if not morph_mask.any():
        raise EmptyRoiError(empty_mask_reason(mask, settings))
    reseg = settings["resegmentation"]
    int_mask = resegmentation.intensity_mask(image_array, morph_mask, reseg["range"], reseg["outlier_sigma"])
    _check_finite(image_array, morph_mask, "intensity")
    if not int_mask.any():
        raise EmptyRoiError("no ROI voxel is left after re-segmentation")

    margin = tuple(int(math.ceil(radius / s)) for s in spacing)
    if spec.active:
        image_array, morph_mask, int_mask = filtered(image_array, morph_mask, int_mask, spacing, spec, margin)
        # a filter spreads a missing intensity over its support
        int_mask = resegmentation.finite_mask(image_array, int_mask)
        _check_finite(image_array, morph_mask, "filter response")
        if not int_mask.any():
            raise EmptyRoiError("no ROI voxel is left after re-segmentation and filtering")
    box = crop_box(morph_mask, margin)
    image_array, morph_mask, int_mask = image_array[box], morph_mask[box], int_mask[box]

    disc = settings["discretisation"]["texture"]
    lower_bound = disc["lower_bound"]
    if disc["method"] == "fixed_bin_size" and lower_bound is None and reseg["range"] is not None and not spec.active:
        # IBSI: FBS starts at the re-segmentation range's lower bound; with a filter that range is in original
        # intensities, not response values, so the bins start at the ROI minimum of the response instead.
        lower_bound = reseg["range"][0]
    levels, n_levels = discretisation.discretise(
        image_array, int_mask, disc["method"], bin_width=disc["bin_width"], n_bins=disc["n_bins"], lower_bound=lower_bound
    )
    return RoiData(
        image=np.ascontiguousarray(image_array),
        morph_mask=np.ascontiguousarray(morph_mask),
        int_mask=np.ascontiguousarray(int_mask),
        spacing=spacing,
        levels=np.ascontiguousarray(levels),
        n_levels=n_levels,
    )
