"""Pipeline rule `features`: IBSI features of every QC-passed scan and ROI of a batch, for every settings document."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from radflow import store
from radflow.extraction import extract_pair
from radflow.manifest import Manifest
from radflow.qc import FAIL
from radflow.settings import Settings

log = logging.getLogger(__name__)


def failed_keys(qc: pd.DataFrame) -> tuple[set, set]:
    """(case, scan) pairs failed as a whole, and (case, scan, roi) triples failed for one ROI."""
    failed = qc[qc["severity"] == FAIL]
    scan_level = set(zip(failed.loc[failed["roi"] == "", "case_id"], failed.loc[failed["roi"] == "", "scan"]))
    roi_level = set(zip(failed["case_id"], failed["scan"], failed["roi"]))
    return scan_level, roi_level


@dataclass(frozen=True)
class UsableRoi:
    case_id: str
    scan: str
    roi: str
    image: sitk.Image
    mask: sitk.Image


def usable_rois(manifest_path: Path, qc_path: Path, scans: set[str] | None = None) -> Iterator[UsableRoi]:
    """Every ROI of a batch that QC let through (optionally only of the named scans), with its image and mask."""
    manifest = Manifest.read(manifest_path)
    scan_failed, roi_failed = failed_keys(pd.read_parquet(qc_path))
    for scan in manifest.scans:
        if scan.status != "ok" or (scan.case_id, scan.scan) in scan_failed or (scans and scan.scan not in scans):
            continue
        image = sitk.ReadImage(str(manifest.path_of(scan.image)))
        for mask_entry in scan.masks:
            if (scan.case_id, scan.scan, mask_entry.roi) in roi_failed:
                continue
            mask = sitk.ReadImage(str(manifest.path_of(mask_entry.path)))
            yield UsableRoi(scan.case_id, scan.scan, mask_entry.roi, image, mask)


def extract_batch(manifest_path: Path, qc_path: Path, settings_paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of every QC-passed scan and ROI in a batch, for every settings document.

    Returns (features, extraction_qc): a ROI whose extraction raises is recorded as a FEATURE_EXTRACTION failure
    and the batch goes on.
    """
    all_settings = [Settings.from_yaml(p) for p in settings_paths]
    frames: list[pd.DataFrame] = []
    errors: dict[tuple[str, str, str], list[str]] = {}
    for usable in usable_rois(manifest_path, qc_path):
        key = (usable.case_id, usable.scan, usable.roi)
        for settings in all_settings:
            try:
                table = extract_pair(usable.image, usable.mask, settings)
            except (ValueError, ArithmeticError) as exc:  # bad data in one ROI: recorded in QC, the batch goes on
                log.warning("feature extraction failed for %s/%s/%s: %s", *key, exc)
                errors.setdefault(key, []).append(f"{settings.name}: {type(exc).__name__}: {exc}")
                continue
            table.insert(0, "settings_id", settings.settings_id)
            table.insert(0, "roi", usable.roi)
            table.insert(0, "scan", usable.scan)
            table.insert(0, "case_id", usable.case_id)
            frames.append(table)
    features = pd.concat(frames, ignore_index=True) if frames else store.empty_frame("features")
    extraction_qc = pd.DataFrame(
        [(*key, "FEATURE_EXTRACTION", FAIL, "; ".join(messages), None) for key, messages in errors.items()],
        columns=store.columns("qc"),
    ) if errors else store.empty_frame("qc")
    return features[store.columns("features")], extraction_qc
