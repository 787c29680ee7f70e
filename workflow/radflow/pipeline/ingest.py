"""Pipeline rule `ingest`: read a batch of cases into NIfTI volumes and masks, with pseudonymised metadata only.

A scan that cannot be read is recorded with its reason in the manifest (QC marks it failed); the batch goes on.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from radflow.dicom import rtstruct, seg
from radflow.dicom.series import read_series
from radflow.manifest import Manifest, MaskEntry, ScanEntry
from radflow.pipeline.store import sha256_of

log = logging.getLogger(__name__)

# Acquisition parameters kept for harmonisation and QC (none identifies a person).
ACQUISITION_TAGS = {"Manufacturer": "manufacturer", "ConvolutionKernel": "convolution_kernel", "KVP": "kvp",
                    "Modality": "modality"}


def acquisition_meta(first_file: str) -> dict:
    ds = pydicom.dcmread(first_file, stop_before_pixels=True, specific_tags=list(ACQUISITION_TAGS))
    meta = {}
    for tag, name in ACQUISITION_TAGS.items():
        value = ds.get(tag)
        if isinstance(value, pydicom.multival.MultiValue):
            value = "\\".join(str(v) for v in value)
        meta[name] = None if value in (None, "") else (float(value) if name == "kvp" else str(value))
    return meta


def read_mask(selection: dict, image: sitk.Image, source_files: list[str]) -> sitk.Image:
    if selection["kind"] == "RTSTRUCT":
        return rtstruct.rasterise(selection["path"], selection["label"], image)
    return seg.read_segment(selection["path"], selection["label"], image, source_files=source_files)


def write_volume(image: sitk.Image, path: Path) -> str:
    sitk.WriteImage(image, str(path), useCompression=True)
    return sha256_of(path)


def ingest_scan(case_id: str, scan: dict, volumes: Path, spacing_tolerance_mm: float) -> ScanEntry:
    entry = ScanEntry(case_id=case_id, scan=scan["scan"], roi_errors=list(scan["roi_errors"]))
    if scan["error"]:
        entry.status, entry.error_code, entry.error_message = "fail", scan["error"]["code"], scan["error"]["message"]
        return entry
    try:
        image = read_series(scan["files"], spacing_tolerance_mm=spacing_tolerance_mm)
    except Exception as exc:  # a broken series fails this scan only
        entry.status, entry.error_code = "fail", "SERIES_UNREADABLE"
        entry.error_message = f"{type(exc).__name__}: {exc}"
        return entry
    stem = f"{case_id}_{scan['scan']}"
    entry.image = f"{volumes.name}/{stem}_image.nii.gz"
    entry.image_sha256 = write_volume(image, volumes / f"{stem}_image.nii.gz")
    entry.meta = {
        **acquisition_meta(scan["files"][0]),
        "series_uid": scan["series_uid"],
        "n_slices": image.GetSize()[2],
        "spacing_mm": list(image.GetSpacing()),
        "roi_voxels": {},
    }
    for selection in scan["rois"]:
        try:
            mask = read_mask(selection, image, scan["files"])
        except Exception as exc:
            entry.roi_errors.append({"roi": selection["roi"], "code": "MASK_UNREADABLE",
                                     "message": f"{selection['kind']}: {type(exc).__name__}: {exc}"})
            continue
        name = f"{volumes.name}/{stem}_{selection['roi']}_mask.nii.gz"
        sha = write_volume(mask, volumes.parent / name)
        entry.masks.append(MaskEntry(selection["roi"], selection["kind"], selection["label"], name, sha))
        entry.meta["roi_voxels"][selection["roi"]] = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    return entry


def ingest_batch(inventory_path: Path, batch: str, manifest_path: Path, volumes: Path,
                 spacing_tolerance_mm: float) -> None:
    cases = json.loads(inventory_path.read_text())["batches"][batch]
    volumes.mkdir(parents=True, exist_ok=True)
    scans = []
    for case in cases:
        for scan in case["scans"]:
            entry = ingest_scan(case["case_id"], scan, volumes, spacing_tolerance_mm)
            if entry.status != "ok":
                log.warning("%s/%s failed: %s", entry.case_id, entry.scan, entry.error_code)
            scans.append(entry)
    Manifest(batch, scans).write(manifest_path)
