"""Quality control: every check has a stable code, a severity and a one-sentence message (table ``qc``).

Severity ``fail`` removes the scan (or, for a ROI-level check, the ROI) from feature extraction; ``warn`` is recorded
and the case goes on; ``pass`` rows document that a check ran. ``CHECKS`` lists every code radflow writes, with the
severity it has when the check does not pass; ingest problems (a series that cannot be read, a mask that cannot be
placed) arrive with their own codes from ``radflow.dicom`` and are merged here. Thresholds come from the ``qc:``
section of the workflow configuration (``Thresholds``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import SimpleITK as sitk



class Severity(StrEnum):
    """How a QC result counts (the ``severity`` column; a str, so it is stored and compared as its value)."""

    FAIL = "fail"  # the scan (or, for a ROI-level check, the ROI) is left out of feature extraction
    WARN = "warn"  # recorded; the case goes on
    PASS = "pass"  # documents that the check ran


FAIL, WARN, PASS = Severity.FAIL, Severity.WARN, Severity.PASS

#: code -> (severity when the check does not pass, what it means). Codes are stable: reports and users filter on them.
CHECKS: dict[str, tuple[Severity, str]] = {
    # discovery
    "NO_IMAGE_SERIES": (FAIL, "no image series of the patient passes the series rules (modality, slices, type)"),
    "MASK_NOT_FOUND": (FAIL, "no RTSTRUCT or SEG references the scan"),
    "MASK_UNLINKED": (FAIL, "a mask object of the patient references a series or frame of reference that is not "
                            "among the patient's selected series"),
    "ROI_NOT_FOUND": (FAIL, "no ROI / segment label matches the configured pattern or centre alias, or a "
                            "multi-label mask file has no label in the input manifest"),
    "ROI_AMBIGUOUS": (WARN, "several different mask labels match one configured ROI's pattern (two lesions?): the "
                            "first was taken"),
    "PATIENT_ID_CONFLICT": (FAIL, "files sharing one PatientID disagree on PatientName, birth date or sex: different "
                                  "people, not merged"),
    "PATIENT_ID_MISSING": (FAIL, "files without a PatientID (one case per study, not processed unless "
                                 "pseudonymisation.missing_patient_id is study_uid)"),
    "PATIENT_ID_FROM_STUDY": (WARN, "no PatientID: the case is one study keyed on its StudyInstanceUID"),
    "INPUT_UNREADABLE": (FAIL, "folders or files of the input cannot be listed or opened (permissions, I/O): on the "
                               "cases beside them, or run-level (case_id '') for the rest; paths in interim/ only"),
    # timepoints (radflow.timepoints)
    "ACQUISITION_DATE_MISSING": (WARN, "the scan has no acquisition, series or study date: its timepoint is unknown"),
    "TIMEPOINT_AMBIGUOUS": (WARN, "more than two scans of one modality and protocol on one timepoint: which pair "
                                  "is test-retest is a guess"),
    "FOLLOW_UP_PROTOCOL_DIFFERS": (WARN, "no scan of the follow-up has the baseline test's acquisition protocol: "
                                         "its delta features compare different acquisitions"),
    "NOT_A_REPEAT": (WARN, "acquired with another protocol than the first scan of its timepoint (echo or repetition "
                           "time, CT kernel, contrast, original vs derived): another sequence or reconstruction, not "
                           "taken as its retest (series.sequences analyses each)"),
    # reading the series
    "SERIES_READ": (FAIL, "the series was read into one regular volume"),
    "SERIES_UNREADABLE": (FAIL, "reading the series failed in an unexpected way (the message names the error type)"),
    "FILE_UNREADABLE": (FAIL, "a file of the series cannot be parsed as DICOM"),
    "FILE_TRUNCATED": (FAIL, "a file of the series ends before its pixel data does"),
    "TAGS_MISSING": (FAIL, "a required attribute (position, orientation, pixel spacing, ...) is missing or invalid"),
    "GEOMETRY_INVALID": (FAIL, "ImageOrientationPatient is not two perpendicular unit vectors (all zeros, say)"),
    "RESCALE_INVALID": (FAIL, "RescaleSlope is 0 or the slope or intercept is not finite"),
    "PIXEL_DATA_UNREADABLE": (FAIL, "pixel data missing or not decodable (transfer syntax without a decoder?)"),
    "NOT_QUANTITATIVE": (FAIL, "colour or otherwise non-quantitative image"),
    "SERIES_MIXED": (FAIL, "files of several series were given as one"),
    "MIXED_GEOMETRY": (FAIL, "slices differ in orientation, matrix or pixel spacing, or form several stacks"),
    "SLICE_DUPLICATE": (FAIL, "two slices at the same position"),
    "SERIES_MULTI_VOLUME": (FAIL, "the series holds several volumes at the same slice positions (echoes, b-values, "
                            "time points): radflow reads one volume per series"),
    "SLICES_MISSING": (FAIL, "gaps that are whole multiples of the slice spacing: slices missing"),
    "SLICE_SPACING_NONUNIFORM": (FAIL, "slice gaps deviate from the regular spacing beyond the tolerance"),
    "GANTRY_TILT": (FAIL, "slices shifted in-plane in proportion to their position: a tilted (sheared) stack"),
    "UNREADABLE_FILES_NEARBY": (WARN, "files in the series' (or patient's) folders could not be read as DICOM at all"),
    "DUPLICATE_INSTANCE": (WARN, "the same SOP instance stored in several files (read once)"),
    "ORIENTATION_NON_AXIAL": (WARN, "the grid is oblique or not axial: 2D features follow the acquired planes"),
    "PET_TAGS_MISSING": (FAIL, "a tag SUV needs (weight, dose, half-life, injection or series time, units, decay "
                               "correction) is missing, empty or zero"),
    "PET_TAGS_INCONSISTENT": (FAIL, "PET tags contradict each other (injection after the scan) or differ between "
                                    "the slices of the series"),
    "PET_UNITS": (FAIL, "PET Units other than BQML (or GML), or a decay correction other than START/ADMIN"),
    "INTENSITY_IMPLAUSIBLE": (FAIL, "intensities outside the plausible range of the modality (wrong rescale?)"),
    "CT_WITHOUT_AIR": (WARN, "an image file taken as CT has no voxel of air (<= -500 HU): an MR or PET file without "
                             "its modality in the input manifest, or CT stored as HU + 1024?"),
    "IMAGE_UNREADABLE": (FAIL, "an image file of the input manifest cannot be read as a 3D volume"),
    # masks
    "MASK_UNREADABLE": (FAIL, "the mask object cannot be parsed or decoded"),
    "MASK_GEOMETRY": (FAIL, "the mask is not on the image grid (other series, resampled, other dimensions)"),
    "MASK_OUTSIDE_IMAGE": (FAIL, "more of the ROI than qc.mask_outside_tolerance lies outside the image (in-plane "
                                 "or beyond the first or last slice)"),
    "MASK_PARTLY_OUTSIDE": (WARN, "part of the ROI, at most qc.mask_outside_tolerance, lies outside the image and "
                                  "was left out (the value is the fraction)"),
    "MASK_EMPTY": (FAIL, "the mask has no voxels"),
    "MASK_TRANSFERRED": (WARN, "the ROI was drawn on another series of the same frame of reference (a PET/CT's CT, "
                               "an MR study's T2-weighted sequence) "
                               "and resampled onto this one (linear, partial volume >= 0.5): the value is its voxels"),
    "MASK_FRACTIONAL": (WARN, "the mask file holds fractions in [0, 1] (a probability map, a mask resampled with "
                              "linear interpolation): its ROI is the voxels >= 0.5, IBSI's partial-volume threshold"),
    "MASK_AT_BORDER": (WARN, "the mask touches the image border: the lesion may be cut off"),
    "ROI_NON_FINITE": (WARN, "ROI voxels without a finite intensity (NaN or infinite, as parametric maps hold): "
                       "features leave them out of the intensity mask"),
    "ROI_TOO_SMALL": (FAIL, "the ROI volume is below the configured minimum"),
    "ROI_TOO_LARGE": (FAIL, "the ROI's grid would need more memory than a feature job may use (the message says "
                            "how much)"),
    # case
    "RETEST_MISSING": (WARN, "no retest scan: the case gives no test-retest pair"),
    "QC_ERROR": (FAIL, "the QC step itself failed on this scan (a bug or unexpected input)"),
    "FEATURE_EXTRACTION": (FAIL, "feature extraction raised for this ROI"),
    # longitudinal (radflow.delta)
    "DELTA_SETTINGS_MISMATCH": (WARN, "a feature of the baseline and the follow-up scan was computed with different "
                                      "settings ids: no delta feature for it"),
    "DELTA_BASELINE_MISSING": (WARN, "a follow-up scan has no usable baseline scan of its modality and ROI: no delta "
                                     "features"),
}

#: Scan failures that come from discovery itself: a case whose every scan failed so has nothing to pair, so it gets
#: no RETEST_MISSING warning.
DISCOVERY_FAILURES = ("NO_IMAGE_SERIES", "PATIENT_ID_CONFLICT", "PATIENT_ID_MISSING")

#: Default plausible intensity ranges by modality (modality units after rescale). CT: HU from air (-1024, minus
#: noise) to dense bone/contrast (metal may exceed: hence the outside fraction). PT: SUV or Bq/ml, never far below 0.
DEFAULT_INTENSITY_RANGE = {"CT": (-1100.0, 4000.0), "PT": (-5.0, math.inf)}


@dataclass(frozen=True)
class QCResult:
    code: str
    severity: Severity
    message: str
    value: float | None = None
    roi: str = ""


@dataclass(frozen=True)
class Thresholds:
    """The ``qc:`` section of the configuration."""

    slice_spacing_tolerance_mm: float = 0.05
    min_roi_volume_mm3: float = 100.0
    oblique_tolerance_deg: float = 1.0
    intensity_range: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_INTENSITY_RANGE))
    intensity_outside_fraction: float = 0.01
    geometry_tolerance_mm: float = 1e-3
    mask_outside_tolerance: float = 0.05  # fraction of a ROI that may lie outside the image (a warning)

    @classmethod
    def from_config(cls, doc: dict | None) -> "Thresholds":
        """From the config's ``qc`` mapping; in ``intensity_range`` a null bound means unbounded."""
        doc = dict(doc or {})
        if "intensity_range" in doc:
            doc["intensity_range"] = {
                modality: (-math.inf if low is None else float(low), math.inf if high is None else float(high))
                for modality, (low, high) in doc["intensity_range"].items()}
        return cls(**{k: v for k, v in doc.items() if k in cls.__dataclass_fields__})


def result(code: str, ok: bool, message: str, value: float | None = None, roi: str = "") -> QCResult:
    """A result of check ``code``: ``pass`` when ``ok``, else the code's severity from ``CHECKS``."""
    return QCResult(code, PASS if ok else CHECKS[code][0], message, value, roi)


def same_geometry(image: sitk.Image | sitk.ImageFileReader, mask: sitk.Image, tolerance: float = 1e-3) -> bool:
    """Same size, and spacing, origin and direction within ``tolerance`` (``image``: an image, or a reader that has
    read its information)."""
    return (
        image.GetSize() == mask.GetSize()
        and np.allclose(image.GetSpacing(), mask.GetSpacing(), atol=tolerance)
        and np.allclose(image.GetOrigin(), mask.GetOrigin(), atol=tolerance)
        and np.allclose(image.GetDirection(), mask.GetDirection(), atol=tolerance)
    )


def mask_geometry(image: sitk.Image | sitk.ImageFileReader, mask: sitk.Image, roi: str,
                  tolerance: float = 1e-3) -> QCResult:
    """MASK_GEOMETRY: the mask must lie on the image grid (same size, spacing, origin, direction)."""
    if same_geometry(image, mask, tolerance):
        return result("MASK_GEOMETRY", True, "mask on the image grid", roi=roi)
    # by how much, as the rounded figures of two grids can look the same
    differences = []
    for name, unit in (("origin", " mm"), ("spacing", " mm"), ("direction", "")):
        theirs, ours = (getattr(grid, f"Get{name.title()}")() for grid in (mask, image))
        if len(theirs) == len(ours) and not np.allclose(theirs, ours, atol=tolerance):
            differences.append(f"{name} by {np.max(np.abs(np.subtract(theirs, ours))):.3g}{unit}")
    return result(
        "MASK_GEOMETRY", False,
        f"mask grid {mask.GetSize()} x {np.round(mask.GetSpacing(), 3).tolist()} mm @ "
        f"{np.round(mask.GetOrigin(), 2).tolist()} differs from image grid {image.GetSize()} x "
        f"{np.round(image.GetSpacing(), 3).tolist()} mm @ {np.round(image.GetOrigin(), 2).tolist()}"
        + (f" (in {', '.join(differences)}; tolerance {tolerance:g} mm)" if differences else ""),
        roi=roi,
    )


def mask_not_empty(mask_array: np.ndarray, roi: str) -> QCResult:
    """MASK_EMPTY: a mask without voxels cannot give features."""
    count = int(np.count_nonzero(mask_array))
    if count == 0:
        return result("MASK_EMPTY", False, "the mask has no voxels", 0.0, roi)
    return result("MASK_EMPTY", True, f"{count} voxels", float(count), roi)


def border_voxels(mask_array: np.ndarray) -> int:
    """Mask voxels on the outer faces of the volume (each voxel counted once)."""
    inner = mask_array[tuple(slice(1, -1) if n > 2 else slice(0, 0) for n in mask_array.shape)]
    return int(np.count_nonzero(mask_array)) - int(np.count_nonzero(inner))


def mask_inside_image(mask_array: np.ndarray, roi: str) -> QCResult:
    """MASK_AT_BORDER: a mask touching the image border (first/last slice, row or column) is probably cut off."""
    touching = border_voxels(mask_array)
    if touching:
        return result("MASK_AT_BORDER", False, f"{touching} mask voxel(s) on the image border (lesion may be cut "
                      "off, or the contour was clipped to the image)", float(touching), roi)
    return result("MASK_AT_BORDER", True, "mask inside the image", 0.0, roi)


def roi_intensities_finite(image_array: np.ndarray, mask_array: np.ndarray, roi: str) -> QCResult:
    """ROI_NON_FINITE: ROI voxels whose intensity is NaN or infinite (the value: how many)."""
    missing = 0
    if image_array.dtype.kind == "f":  # integer intensities (CT, most DICOM) are finite
        inside = mask_array != 0
        missing = int(np.count_nonzero(inside & ~np.isfinite(image_array)))
    if missing:
        return result("ROI_NON_FINITE", False, f"{missing} of the ROI's {int(np.count_nonzero(inside))} voxels have no "
                      "finite intensity (NaN or infinite)", float(missing), roi)
    return result("ROI_NON_FINITE", True, "every ROI voxel has a finite intensity", 0.0, roi)


def roi_volume(mask_array: np.ndarray, voxel_volume_mm3: float, min_volume_mm3: float, roi: str) -> QCResult:
    """ROI_TOO_SMALL: texture on a handful of voxels is noise."""
    volume = float(np.count_nonzero(mask_array)) * voxel_volume_mm3
    if volume < min_volume_mm3:
        return result("ROI_TOO_SMALL", False, f"ROI volume {volume:.1f} mm3 below the minimum {min_volume_mm3:g} mm3",
                      volume, roi)
    return result("ROI_TOO_SMALL", True, f"ROI volume {volume:.1f} mm3", volume, roi)


def intensity_plausible(image_array: np.ndarray, modality: str, thresholds: Thresholds,
                        padding: tuple[float, float] | None = None) -> QCResult | None:
    """INTENSITY_IMPLAUSIBLE: more than ``intensity_outside_fraction`` of the voxels outside the modality's range
    (a missing or doubled rescale, a wrong sign convention); None when the modality has no range (MR).

    Voxels outside the scanner's reconstruction field are not intensities and are not counted: those the DICOM
    PixelPaddingValue (and PixelPaddingRangeLimit) declares, ``padding`` (low, high) after rescale, or, without
    them, ``padding_value``'s constant. GE, Philips and Toshiba CT write -2000 or -3024 HU there: a fifth of a
    512 x 512 slice, which would otherwise fail every such scan."""
    bounds = thresholds.intensity_range.get(modality)
    if bounds is None:
        return None
    low, high = bounds
    finite = np.isfinite(image_array)
    counted = finite.copy()
    declared = "PixelPaddingValue"
    if padding is None:
        corner = padding_value(image_array, low)
        padding, declared = ((corner, corner), f"a constant {corner:g} at every slice corner") if corner is not None \
            else (None, "")
    padded = 0
    if padding is not None:
        is_padding = (image_array >= padding[0]) & (image_array <= padding[1])
        padded = int(np.count_nonzero(is_padding))
        counted &= ~is_padding
    outside = int(np.count_nonzero(~finite)) + int(np.count_nonzero(counted & ((image_array < low) |
                                                                                (image_array > high))))
    fraction = outside / max(image_array.size - padded, 1)
    lo, hi = (float(np.min(image_array, where=counted, initial=math.inf)),
              float(np.max(image_array, where=counted, initial=-math.inf))) if counted.any() else (math.nan,) * 2
    message = (f"{100 * fraction:.3g}% of voxels outside [{low:g}, {high:g}] for {modality} "
               f"(range {lo:.6g} to {hi:.6g})")
    if padded:
        message += (f"; {100 * padded / max(image_array.size, 1):.3g}% of the volume outside the reconstruction "
                    f"field ({declared}), not counted")
    return result("INTENSITY_IMPLAUSIBLE", fraction <= thresholds.intensity_outside_fraction, message, fraction)


#: A CT image holds air (about -1000 HU) outside the body, in the airways or the lungs; this far below water no MR
#: signal, PET uptake or HU + 1024 storage reaches.
CT_AIR_BELOW_HU = -500.0


def ct_air_present(image_array: np.ndarray) -> QCResult:
    """CT_WITHOUT_AIR: an image file taken as CT with no voxel at or below ``CT_AIR_BELOW_HU``. A DICOM series
    carries its modality and rescale, an image file neither: an MR or PET NIfTI listed in the input manifest without
    its modality is read as CT (the default) and, its signal lying inside the CT range, passes
    INTENSITY_IMPLAUSIBLE, so CT bins and re-segmentation in HU would be applied to it without a word; so would
    they to CT saved as unsigned HU + 1024. A warning, not a failure: a CT cropped to soft tissue (a liver box) has
    no air either."""
    if not np.issubdtype(image_array.dtype, np.floating):  # an integer array as read from a file (min's initial=inf)
        image_array = image_array.astype(np.float64)
    finite = np.isfinite(image_array)
    if not finite.any():
        return result("CT_WITHOUT_AIR", True, "no finite intensity (reported by other checks)")
    lowest = float(np.min(image_array, where=finite, initial=math.inf))
    highest = float(np.max(image_array, where=finite, initial=-math.inf))
    if lowest <= CT_AIR_BELOW_HU:
        return result("CT_WITHOUT_AIR", True, f"air present (lowest value {lowest:.6g} HU)", lowest)
    return result("CT_WITHOUT_AIR", False,
                  f"no voxel at or below {CT_AIR_BELOW_HU:g} HU (values {lowest:.6g} to {highest:.6g}), where a CT "
                  "holds air at about -1000 HU: if this is an MR or PET image, give its modality (MR, PT) in the "
                  "input manifest's modality column (a row without one is read as CT); if it is CT stored as "
                  "HU + 1024, convert it to HU; a CT cropped to soft tissue has no air, and the warning can stay",
                  lowest)


def padding_value(image_array: np.ndarray, below: float) -> float | None:
    """The value written outside the reconstruction field of a scan that has one and does not declare it: one value
    below ``below`` at the four in-plane corners of every slice (no tissue, air noise or rescale error gives one
    value at all of them); None otherwise."""
    if image_array.ndim != 3 or image_array.size == 0:
        return None
    corners = image_array[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    value = corners.flat[0]
    if np.isfinite(value) and value < below and bool((corners == value).all()):
        return float(value)
    return None


def check_roi(image: sitk.Image, mask: sitk.Image, roi: str, min_volume_mm3: float,
              geometry_tolerance_mm: float = 1e-3) -> list[QCResult]:
    """All mask checks for one ROI, stopping at the first failure that makes the rest meaningless."""
    geometry = mask_geometry(image, mask, roi, geometry_tolerance_mm)
    if geometry.severity == FAIL:
        return [geometry]
    mask_array = sitk.GetArrayViewFromImage(mask)
    empty = mask_not_empty(mask_array, roi)
    if empty.severity == FAIL:
        return [geometry, empty]
    voxel_volume = float(np.prod(image.GetSpacing()))
    return [geometry, empty, mask_inside_image(mask_array, roi),
            roi_intensities_finite(sitk.GetArrayViewFromImage(image), mask_array, roi),
            roi_volume(mask_array, voxel_volume, min_volume_mm3, roi)]


def retest_present(scan_names: set[str]) -> QCResult:
    """RETEST_MISSING: test-retest stability needs a second scan (warning: the case still gives features); a
    retest of any modality or sequence counts (``pt_retest``, ``t2w_retest``)."""
    from radflow.timepoints import split_label

    if any(split_label(name)[1] == "retest" for name in scan_names):
        return result("RETEST_MISSING", True, "retest scan present")
    return result("RETEST_MISSING", False, "no retest scan for this case")


def worst(results: list[QCResult]) -> Severity:
    severities = {r.severity for r in results}
    return FAIL if FAIL in severities else WARN if WARN in severities else PASS
