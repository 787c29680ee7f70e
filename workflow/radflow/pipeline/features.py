"""Pipeline rule `features`: IBSI features of every QC-passed scan and ROI of a batch, for every settings document."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from radflow import io, store
from radflow.extraction import extract_pair
from radflow.imaging.preprocess import RoiTooLargeError
from radflow.manifest import Manifest
from radflow.qc import FAIL
from radflow.settings import DEFAULT_MEMORY_MB, Settings

log = logging.getLogger(__name__)


def failed_keys(qc: pd.DataFrame) -> tuple[set, set]:
    """(case, scan) pairs failed as a whole, and (case, scan, roi) triples failed for one ROI. A case-level
    failure (scan '', e.g. PATIENT_ID_CONFLICT, INPUT_UNREADABLE) fails every scan of the case."""
    failed = qc[qc["severity"] == FAIL]
    scan_level = set(zip(failed.loc[failed["roi"] == "", "case_id"], failed.loc[failed["roi"] == "", "scan"]))
    roi_level = set(zip(failed["case_id"], failed["scan"], failed["roi"]))
    failed_cases = {case for case, scan in scan_level if scan == ""}
    scan_level |= {(case, scan) for case, scan in zip(qc["case_id"], qc["scan"]) if case in failed_cases}
    return scan_level, roi_level


@dataclass(frozen=True)
class UsableRoi:
    case_id: str
    scan: str
    roi: str
    image: sitk.Image
    mask: sitk.Image
    modality: str = ""
    sequence: str = ""  # radflow.sequences


def usable_rois(manifest_path: Path, qc_path: Path,
                wanted: Callable[[str], bool] | None = None) -> Iterator[UsableRoi]:
    """Every ROI of a batch that QC let through (optionally only of the scans whose label is ``wanted``), with its
    image and mask."""
    manifest = Manifest.read(manifest_path)
    scan_failed, roi_failed = failed_keys(pd.read_parquet(qc_path))
    for scan in manifest.scans:
        if scan.status != "ok" or (scan.case_id, scan.scan) in scan_failed or (wanted and not wanted(scan.scan)):
            continue
        image = io.read_volume(manifest.path_of(scan.image))
        for mask_entry in scan.masks:
            if (scan.case_id, scan.scan, mask_entry.roi) in roi_failed:
                continue
            mask = sitk.ReadImage(str(manifest.path_of(mask_entry.path)))
            yield UsableRoi(scan.case_id, scan.scan, mask_entry.roi, image, mask,
                            scan.meta.get("modality") or scan.modality, scan.meta.get("sequence") or "")


def extraction_error(settings: Settings, exc: BaseException) -> tuple[str, str, float | None]:
    """(QC code, message, value) of one failed extraction: ROI_TOO_LARGE with the numbers, MemoryError in words,
    radflow's own errors with their message, anything else by type only (its text may quote a path or header)."""
    if isinstance(exc, RoiTooLargeError):
        return "ROI_TOO_LARGE", f"{settings.name}: {exc}", float(exc.needed_bytes)
    if isinstance(exc, MemoryError):
        return "FEATURE_EXTRACTION", f"{settings.name}: ran out of memory (MemoryError) despite the estimate", None
    if isinstance(exc, ValueError | ArithmeticError):
        return "FEATURE_EXTRACTION", f"{settings.name}: {type(exc).__name__}: {exc}", None
    return "FEATURE_EXTRACTION", f"{settings.name}: unexpected {type(exc).__name__} (a bug? see the features log)", None


def extract_batch(manifest_path: Path, qc_path: Path, settings_paths: list[Path],
                  memory_mb: float = DEFAULT_MEMORY_MB) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of every QC-passed scan and ROI in a batch, for every settings document of the scan's modality
    (``Settings.applies_to``: CT settings for CT, PET settings for PT, MR settings for MR, generic ones for all;
    a document naming a sequence only for that sequence's series).

    Returns (features, extraction_qc): a ROI whose grid would not fit in ``memory_mb`` is an ROI_TOO_LARGE failure
    (estimated before anything is allocated), a ROI whose extraction raises anything else (MemoryError included) a
    FEATURE_EXTRACTION failure; the batch goes on either way.
    """
    all_settings = [Settings.from_yaml(p) for p in settings_paths]
    frames: list[pd.DataFrame] = []
    errors: dict[tuple[tuple[str, str, str], str], list[tuple[str, float | None]]] = {}
    for usable in usable_rois(manifest_path, qc_path):
        key = (usable.case_id, usable.scan, usable.roi)
        for settings in all_settings:
            if not settings.applies_to(usable.modality, usable.sequence):
                continue
            try:
                table = extract_pair(usable.image, usable.mask, settings, memory_mb=memory_mb)
            except Exception as exc:  # MemoryError included: one ROI's failure is recorded, the batch goes on
                code, message, value = extraction_error(settings, exc)
                log.warning("feature extraction failed for %s/%s/%s: %s", *key, message,
                            exc_info=not isinstance(exc, ValueError | ArithmeticError | MemoryError))
                errors.setdefault((key, code), []).append((message, value))
                continue
            table.insert(0, "settings_id", settings.settings_id)
            table.insert(0, "roi", usable.roi)
            table.insert(0, "scan", usable.scan)
            table.insert(0, "case_id", usable.case_id)
            frames.append(table)
    features = pd.concat(frames, ignore_index=True) if frames else store.empty_frame("features")
    extraction_qc = pd.DataFrame(
        [(*key, code, FAIL, "; ".join(m for m, _ in found), max((v for _, v in found if v is not None), default=None))
         for (key, code), found in errors.items()],
        columns=store.columns("qc"),
    ) if errors else store.empty_frame("qc")
    return features[store.columns("features")], extraction_qc
