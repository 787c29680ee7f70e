"""Pipeline rule `ingest`: read a batch of cases into NIfTI volumes and masks, with pseudonymised metadata only.

PET series (Modality PT) are converted to SUV body weight on the way in (``radflow.imaging.suv``: decay-corrected
injected dose, patient weight); a PET series whose tags do not allow it fails with PET_TAGS_MISSING,
PET_TAGS_INCONSISTENT or PET_UNITS, since features of Bq/ml under SUV settings would be silently wrong.

A scan that cannot be read is recorded in the manifest with the specific QC code of what went wrong (see
``radflow.qc.CHECKS``) and its reason; a mask that cannot be placed is recorded for its ROI. Nothing about one case
stops the batch: QC marks the scan failed, later stages skip it, and the other cases go on.
"""
from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import cast

import numpy as np
import pydicom
import SimpleITK as sitk

from radflow import inventory, io, qc
from radflow.dicom import files, rtstruct, seg
from radflow.dicom.deid import identifiers_unlogged
from radflow.dicom.series import load_series
from radflow.imaging import mask_grid, mask_transfer, suv
from radflow.manifest import Manifest, MaskEntry, ScanEntry, ScanMeta
from radflow.pipeline.store import sha256_of
from radflow.qc import Thresholds

log = logging.getLogger(__name__)

# Acquisition parameters kept for harmonisation and QC (none identifies a person).
ACQUISITION_TAGS = {"Manufacturer": "manufacturer", "ConvolutionKernel": "convolution_kernel", "KVP": "kvp",
                    "Modality": "modality"}


class InputFileError(ValueError):
    """An image or mask file of the input manifest cannot be used; ``code`` is the QC code."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@identifiers_unlogged()
def acquisition_meta(first_file: str) -> dict:
    try:
        ds = files.read(first_file, stop_before_pixels=True, specific_tags=list(ACQUISITION_TAGS))
    except Exception:  # the series reader has already judged the file; metadata is optional
        return {}
    meta = {}
    for tag, name in ACQUISITION_TAGS.items():
        value = ds.get(tag)
        if isinstance(value, pydicom.multival.MultiValue):
            value = "\\".join(str(v) for v in value)
        try:
            meta[name] = None if value in (None, "") else (float(value) if name == "kvp" else str(value))
        except (TypeError, ValueError):
            meta[name] = None
    return meta


def _read(path: str, what: str, code: str) -> sitk.Image:
    """The file at ``path`` (``io``'s readers: a truncated NIfTI or pixel stream is refused, not zero-filled); the
    message names the file by its kind, not its path (paths may carry patient names)."""
    if not Path(path).is_file():
        raise InputFileError(f"the {what} file cannot be read (missing, or not a format SimpleITK reads)", code)
    if io.is_dicom(Path(path)):  # ITK would read it without sorting its frames or pseudonymising anything
        raise InputFileError(f"the {what} file is DICOM: DICOM series and their RTSTRUCT / SEG masks go under "
                             "input_dir, where discovery links and de-identifies them; the manifest is for NIfTI, "
                             "NRRD and MHA files", code)
    try:
        return io.read_pixels(io.information_reader(Path(path), what), Path(path), what)
    except io.UnreadableFileError as exc:
        reason = "missing, or not a format SimpleITK reads" if exc.reason == io.NOT_AN_IMAGE else exc.reason
        raise InputFileError(f"the {what} file cannot be read ({reason})", code) from None


def read_image_file(path: str) -> sitk.Image:
    """A 3D image of the input manifest (NIfTI, NRRD, MHA ...) as float32."""
    image = _read(path, "image", "IMAGE_UNREADABLE")
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError("the image file is not a scalar 3D volume "
                             f"({image.GetDimension()}D, {image.GetNumberOfComponentsPerPixel()} component(s))",
                             "IMAGE_UNREADABLE")
    return sitk.Cast(image, sitk.sitkFloat32)


def _without_label(message: str, selection: inventory.RoiSelection, code: str) -> str:
    """A mask error message without the source's free-text label names (they may name a person)."""
    if code == "ROI_NOT_FOUND" and selection["kind"] != "FILE":  # a file mask's labels are numbers: kept
        return "the selected label is not in the mask object (label names are in interim/inventory.json)"
    label, label_id = selection["label"], selection.get("label_id")
    if label and label_id:
        return message.replace(repr(label), label_id).replace(label, label_id)
    return message


def read_mask_file(path: str, label: str) -> tuple[sitk.Image, list[str]]:
    """One ROI of a (multi-)label mask file as uint8 0/1 on the mask's own grid (QC compares it to the image), and
    what reading it noticed (a mask of fractions thresholded: ``io.fractional_roi``)."""
    labels = _read(path, "mask", "MASK_UNREADABLE")
    if labels.GetDimension() != 3:
        raise InputFileError(f"the mask file is {labels.GetDimension()}D, not 3D", "MASK_GEOMETRY")
    try:  # a 3D Slicer segmentation: the label column names a segment (other files are returned as they are)
        labels, chosen_label = io.slicer_roi(labels, label or None, "file")
    except io.SegmentNotChosen as exc:  # the message without segment names (free text)
        raise InputFileError(exc.public, "ROI_NOT_FOUND") from None
    except io.InputError as exc:
        raise InputFileError(str(exc), "MASK_UNREADABLE") from None
    label = chosen_label or ""
    if labels.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError(f"the mask file has {labels.GetNumberOfComponentsPerPixel()} values per voxel (a colour "
                             "or vector image), not one label", "MASK_UNREADABLE")
    array = sitk.GetArrayViewFromImage(labels)
    if label == "" and (several := io.several_labels(array)) is not None:
        raise InputFileError(f"the mask file has labels {io.shown_labels(several)} and the input manifest names "
                             "none: set its label column (one label, or 1,4 for a union)", "ROI_NOT_FOUND")
    if label:
        try:
            io.label_values(label)
        except io.InputError:
            raise InputFileError(f"label {label!r} is not a number or a comma-separated list of numbers",
                                 "MASK_UNREADABLE") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", io.FractionalMaskWarning)
        try:
            chosen = io.selected(array, label or None)
        except io.InputError as exc:  # fractions beyond 1, or none reaching the threshold
            raise InputFileError(str(exc), "MASK_UNREADABLE") from None
    return io.label_image(chosen, labels), [str(w.message) for w in caught
                                            if issubclass(w.category, io.FractionalMaskWarning)]


def read_mask(selection: inventory.RoiSelection, image: sitk.Image, source_files: list[str],
              thresholds: Thresholds | None = None) -> tuple[sitk.Image, list[inventory.ScanWarning]]:
    """(mask on the image grid, warnings): a ROI partly outside the image within the tolerance is a warning."""
    if selection.get("drawn_on"):
        return transferred_mask(selection, image, thresholds)
    tolerance = (thresholds or Thresholds()).mask_outside_tolerance
    if selection["kind"] == "RTSTRUCT":
        mask, outside = rtstruct.rasterise_roi(selection["path"], selection["label"], image,
                                               max_outside_fraction=tolerance)
    elif selection["kind"] == "SEG":
        mask, outside = seg.read_segment_roi(selection["path"], selection["label"], image, source_files=source_files,
                                             max_outside_fraction=tolerance)
    else:
        # the same voxels in another orientation, or a sub-box, are re-indexed onto the image grid; any other grid
        # stays as read and fails the MASK_GEOMETRY check
        labels, noticed = read_mask_file(selection["path"], selection["label"])
        placed = mask_grid.onto_grid(labels, image, (thresholds or Thresholds()).geometry_tolerance_mm)
        return (labels if placed is None else placed), [{"code": "MASK_FRACTIONAL", "roi": selection["roi"],
                                                         "message": message} for message in noticed]
    if not outside.outside:
        return mask, []
    return mask, [{"code": "MASK_PARTLY_OUTSIDE", "roi": selection["roi"], "value": outside.fraction,
                   "message": f"{outside.describe()}; left out (tolerated up to {100 * tolerance:g}%)"}]


def transferred_mask(selection: inventory.RoiSelection, image: sitk.Image, thresholds: Thresholds | None = None
                     ) -> tuple[sitk.Image, list[inventory.ScanWarning]]:
    """A mask drawn on another series of the same frame of reference (a PET/CT's CT; discovery's
    ``masks_drawn_on_another_kind``): rasterised on that series' grid, where its contours lie, then resampled
    onto ``image`` (``mask_transfer``); the MASK_TRANSFERRED warning says so, with both voxel counts."""
    source = load_series(selection["drawn_on"], **_series_tolerances(thresholds)).image
    on_source: inventory.RoiSelection = {"roi": selection["roi"], "kind": selection["kind"],
                                         "path": selection["path"], "label": selection["label"]}
    drawn, warnings = read_mask(on_source, source, selection["drawn_on"], thresholds)
    mask = mask_transfer.resampled_mask(drawn, image)
    counts = [int(np.count_nonzero(sitk.GetArrayViewFromImage(m))) for m in (drawn, mask)]
    kind = " ".join(filter(None, [selection.get("drawn_on_modality"), selection.get("drawn_on_sequence")]))
    warnings.append({"code": "MASK_TRANSFERRED", "roi": selection["roi"], "value": float(counts[1]),
                     "message": f"drawn on the {kind or 'another'} series of the same frame of reference ({counts[0]} voxels "
                                f"there) and resampled onto this grid (linear, partial volume >= 0.5): {counts[1]} "
                                "voxels"})
    return mask, warnings


def _series_tolerances(thresholds: Thresholds | None) -> dict:
    thresholds = thresholds or Thresholds()
    return {"spacing_tolerance_mm": thresholds.slice_spacing_tolerance_mm,
            "oblique_tolerance_deg": thresholds.oblique_tolerance_deg}


def write_volume(image: sitk.Image, path: Path) -> str:
    sitk.WriteImage(image, str(path), useCompression=True)
    return sha256_of(path)


def error_code(exc: Exception, default: str) -> str:
    return getattr(exc, "code", None) or default


def error_message(exc: Exception) -> str:
    """radflow's own errors carry a message written for QC tables; anything else may quote a path or a header
    value, so only its type is recorded."""
    if getattr(exc, "code", None):
        return str(exc)
    return f"unexpected {type(exc).__name__} while reading"


PADDING_TAGS = ["PixelPaddingValue", "PixelPaddingRangeLimit", "PixelRepresentation", "RescaleSlope",
                "RescaleIntercept"]


def pixel_padding(first_file: str) -> list[float] | None:
    """[low, high] of the stored values the series declares as padding outside the reconstruction field
    (PixelPaddingValue, up to PixelPaddingRangeLimit when given), after the first slice's rescale; None when it
    declares none. QC leaves those voxels out of its intensity plausibility check."""
    try:
        ds = files.read(first_file, stop_before_pixels=True, specific_tags=PADDING_TAGS)
        value = ds.get("PixelPaddingValue")
        if value is None:
            return None
        limit = ds.get("PixelPaddingRangeLimit")
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        ends = sorted(float(v) * slope + intercept for v in (value, value if limit is None else limit))
    except Exception:  # metadata only: a padding tag that cannot be read is treated as absent
        return None
    return ends if all(math.isfinite(v) for v in ends) else None


def read_scan_image(scan: inventory.InventoryScan, thresholds: Thresholds
                    ) -> tuple[sitk.Image, list[inventory.ScanWarning], ScanMeta]:
    """(volume, warnings, acquisition metadata) of one scan from DICOM files or an image file; PET in SUVbw."""
    if scan.get("source", "dicom") == "file":
        image = read_image_file(scan["files"][0])
        file_warnings: list[inventory.ScanWarning] = []
        if (scan.get("modality") or "CT") == "CT":
            air = qc.ct_air_present(sitk.GetArrayViewFromImage(image))
            if air.severity != qc.PASS:
                file_warnings.append({"code": air.code, "message": air.message, "value": air.value})
        return image, file_warnings, {"modality": scan.get("modality") or None}
    volume = load_series(scan["files"], **_series_tolerances(thresholds))
    warnings: list[inventory.ScanWarning] = [{"code": w.code, "message": w.message, "value": w.value}
                                             for w in volume.warnings]
    meta = cast(ScanMeta, acquisition_meta(scan["files"][0]))
    image = volume.image
    padding = pixel_padding(scan["files"][0])
    if padding is not None and (meta.get("modality") or scan.get("modality")) != "PT":  # PET: see suv.files_suv_factor
        meta["pixel_padding"] = padding
    if (meta.get("modality") or scan.get("modality")) == "PT":
        factor = suv.files_suv_factor(scan["files"])
        image, meta["suv_factor"] = suv.to_suv(image, factor), factor
    return image, warnings, meta


def ingest_scan(case_id: str, scan: inventory.InventoryScan, volumes: Path, thresholds: Thresholds) -> ScanEntry:
    entry = ScanEntry(case_id=case_id, scan=scan["scan"], modality=scan.get("modality", ""),
                      roi_errors=list(scan["roi_errors"]))
    entry.meta = {"series_uid": scan.get("series_uid") or None, "modality": scan.get("modality") or None,
                  "sequence": scan.get("sequence") or None,
                  "acquisition_datetime": scan.get("acquisition_datetime"), "timepoint": scan.get("timepoint"),
                  "days_from_baseline": scan.get("days_from_baseline")}
    if scan["error"]:
        entry.status, entry.error_code, entry.error_message = "fail", scan["error"]["code"], scan["error"]["message"]
        return entry
    entry.warnings = list(scan.get("warnings", []))  # noticed at discovery, kept whatever happens next
    try:
        image, warnings, meta = read_scan_image(scan, thresholds)
        entry.warnings += warnings
    except Exception as exc:  # a broken series fails this scan only
        entry.status, entry.error_code, entry.error_message = "fail", error_code(exc, "SERIES_UNREADABLE"), \
            error_message(exc)
        return entry
    stem = f"{case_id}_{scan['scan']}"
    entry.image = f"{volumes.name}/{stem}_image.nii.gz"
    entry.image_sha256 = write_volume(image, volumes / f"{stem}_image.nii.gz")
    entry.meta.update(cast(ScanMeta, {k: v for k, v in meta.items() if v is not None or k not in entry.meta}))
    entry.modality = entry.meta.get("modality") or entry.modality
    entry.meta.update({"n_slices": image.GetSize()[2], "spacing_mm": list(image.GetSpacing()), "roi_voxels": {}})
    for selection in scan["rois"]:
        try:
            mask, mask_warnings = read_mask(selection, image, scan["files"], thresholds)
            entry.warnings += mask_warnings
        except Exception as exc:
            code = error_code(exc, "MASK_UNREADABLE")
            entry.roi_errors.append({"roi": selection["roi"], "code": code,
                                     "message": f"{selection['kind']}: {_without_label(error_message(exc), selection, code)}"})
            continue
        name = f"{volumes.name}/{stem}_{selection['roi']}_mask.nii.gz"
        sha = write_volume(mask, volumes.parent / name)
        # the source label is free text: results get its keyed id (manifest masks: the label number)
        entry.masks.append(MaskEntry(selection["roi"], selection["kind"], selection.get("label_id") or selection["label"],
                                     name, sha))
        entry.meta["roi_voxels"][selection["roi"]] = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    return entry


def ingest_batch(inventory_path: Path, batch: str, manifest_path: Path, volumes: Path,
                 thresholds: Thresholds | None = None) -> None:
    thresholds = thresholds or Thresholds()
    cases = inventory.read_batch(inventory_path, batch)
    volumes.mkdir(parents=True, exist_ok=True)
    scans = []
    case_checks = {case["case_id"]: case["checks"] for case in cases if case.get("checks")}
    for case in cases:
        for scan in case["scans"]:
            try:
                entry = ingest_scan(case["case_id"], scan, volumes, thresholds)
            except Exception as exc:  # writing or bookkeeping failed: still only this scan
                entry = ScanEntry(case_id=case["case_id"], scan=scan["scan"], status="fail",
                                  error_code="SERIES_UNREADABLE", error_message=error_message(exc))
            if entry.status != "ok":
                log.warning("%s/%s failed: %s", entry.case_id, entry.scan, entry.error_code)
            scans.append(entry)
    Manifest(batch, scans, case_checks=case_checks).write(manifest_path)
