"""Pipeline rule `features`: IBSI features of every QC-passed scan and ROI of a batch, for every settings document."""
from __future__ import annotations

import logging
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


def extract_batch(manifest_path: Path, qc_path: Path, settings_paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of every QC-passed scan and ROI in a batch, for every settings document.

    Returns (features, extraction_qc): a ROI whose extraction raises is recorded as a FEATURE_EXTRACTION failure
    and the batch goes on.
    """
    manifest = Manifest.read(manifest_path)
    scan_failed, roi_failed = failed_keys(pd.read_parquet(qc_path))
    all_settings = [Settings.from_yaml(p) for p in settings_paths]
    frames, errors = [], {}
    for scan in manifest.scans:
        if scan.status != "ok" or (scan.case_id, scan.scan) in scan_failed:
            continue
        image = sitk.ReadImage(str(manifest.path_of(scan.image)))
        for mask_entry in scan.masks:
            if (scan.case_id, scan.scan, mask_entry.roi) in roi_failed:
                continue
            mask = sitk.ReadImage(str(manifest.path_of(mask_entry.path)))
            for settings in all_settings:
                try:
                    table = extract_pair(image, mask, settings)
                except (ValueError, ArithmeticError) as exc:  # bad data in one ROI: recorded in QC, the batch goes on
                    log.warning("feature extraction failed for %s/%s/%s: %s", scan.case_id, scan.scan, mask_entry.roi, exc)
                    key = (scan.case_id, scan.scan, mask_entry.roi)
                    errors.setdefault(key, []).append(f"{settings.name}: {type(exc).__name__}: {exc}")
                    continue
                table.insert(0, "settings_id", settings.settings_id)
                table.insert(0, "roi", mask_entry.roi)
                table.insert(0, "scan", scan.scan)
                table.insert(0, "case_id", scan.case_id)
                frames.append(table)
    features = pd.concat(frames, ignore_index=True) if frames else store.empty_frame("features")
    extraction_qc = pd.DataFrame(
        [(*key, "FEATURE_EXTRACTION", FAIL, "; ".join(messages), None) for key, messages in errors.items()],
        columns=store.columns("qc"),
    ) if errors else store.empty_frame("qc")
    return features[store.columns("features")], extraction_qc
