"""Pipeline rules `discover` and `clinical`: from a DICOM folder tree to pseudonymised cases in batches.

The inventory (interim/inventory.json) names each case by its pseudonym and lists, per scan, the source files and
the mask objects with the ROI chosen for each configured ROI pattern. It holds source paths (a PACS export's
folder names may be identifying), so it stays in interim/ and is never exported; it holds no PatientID.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import pandas as pd

from radflow.dicom import discovery
from radflow.dicom.deid import pseudo_uid, pseudonym

log = logging.getLogger(__name__)

IMAGE_MODALITIES = ("CT", "MR", "PT")
# Clinical columns that identify a person: dropped on the way in, whatever the CSV holds.
IDENTIFYING_COLUMNS = {"patient_name", "name", "birth_date", "patient_birth_date", "date_of_birth", "dob",
                       "address", "phone", "mrn", "accession_number", "institution_name"}


def case_id_of(patient_id: str, key: bytes) -> str:
    return pseudonym(patient_id, key, prefix="case-", length=12)


def scan_names(n: int) -> list[str]:
    """Acquisition order names the scans: test, retest, then scan3, scan4, ..."""
    return ["test", "retest", *[f"scan{i}" for i in range(3, n + 1)]][:n]


def choose_rois(masks: list[discovery.MaskObject], rois: list[dict]) -> tuple[list[dict], list[dict]]:
    """For each configured ROI, the first mask label matching its pattern: (selections, errors)."""
    selections, errors = [], []
    for roi in rois:
        pattern = re.compile(roi["pattern"], re.IGNORECASE)
        match = next(
            ((mask, label) for mask in masks for label in mask.labels if pattern.search(label)), None
        )
        if match is None:
            available = sorted({label for mask in masks for label in mask.labels})
            errors.append({"roi": roi["name"], "code": "ROI_NOT_FOUND",
                           "message": f"no mask label matches {roi['pattern']!r} (labels: {available})"})
        else:
            mask, label = match
            selections.append({"roi": roi["name"], "kind": mask.kind, "path": str(mask.path), "label": label})
    return selections, errors


def cases_from_inventory(inventory: discovery.Inventory, rois: list[dict], key: bytes) -> dict[str, dict]:
    by_patient: dict[str, list[discovery.ImageSeries]] = {}
    for series in inventory.series:
        if series.modality in IMAGE_MODALITIES:
            by_patient.setdefault(series.patient_id, []).append(series)
    cases = {}
    for patient_id, series_list in by_patient.items():
        with_masks = [s for s in series_list if inventory.masks_for(s)]
        if not with_masks:
            # Scans without any mask cannot give features; the largest series stands for the case in QC.
            largest = max(series_list, key=lambda s: s.n_files)
            entries = [{"series": largest, "error": ("MASK_NOT_FOUND", "no RTSTRUCT or SEG references this patient's series")}]
        else:
            entries = [{"series": s, "error": None} for s in with_masks]
        entries.sort(key=lambda e: (e["series"].acquisition_datetime or e["series"].series_datetime,
                                    e["series"].series_number, e["series"].series_uid))
        case_id = case_id_of(patient_id, key)
        scans = []
        for name, entry in zip(scan_names(len(entries)), entries):
            series = entry["series"]
            selections, roi_errors = choose_rois(inventory.masks_for(series), rois)
            scan = {
                "scan": name,
                "modality": series.modality,
                "series_uid": pseudo_uid(series.series_uid, key),
                "files": [str(p) for p in series.files],
                "rois": selections,
                "roi_errors": roi_errors,
                "error": None,
            }
            if entry["error"]:
                scan["error"] = {"code": entry["error"][0], "message": entry["error"][1]}
            scans.append(scan)
        cases[case_id] = {"case_id": case_id, "scans": scans}
    return cases


def discover(input_dir: Path, inventory_path: Path, batch_size: int, rois: list[dict], key: bytes,
             mapping_file: Path | None = None) -> None:
    inventory = discovery.scan(input_dir)
    log.info("%d image series, %d mask objects, %d unreadable and %d skipped files",
             len(inventory.series), len(inventory.masks), len(inventory.unreadable), len(inventory.skipped))
    cases = cases_from_inventory(inventory, rois, key)
    ordered = sorted(cases)
    batches = {
        f"b{i // batch_size:04d}": [cases[c] for c in ordered[i:i + batch_size]]
        for i in range(0, len(ordered), batch_size)
    }
    inventory_path.parent.mkdir(parents=True, exist_ok=True)
    inventory_path.write_text(json.dumps({"batches": batches}, indent=1, sort_keys=True) + "\n")
    log.info("%d cases in %d batches", len(ordered), len(batches))
    if mapping_file is not None:
        write_mapping(inventory, key, mapping_file)


def write_mapping(inventory: discovery.Inventory, key: bytes, mapping_file: Path) -> None:
    """The data owner's re-identification table (case_id -> PatientID), only where the config says."""
    mapping_file.parent.mkdir(parents=True, exist_ok=True)
    patients = sorted({s.patient_id for s in inventory.series})
    with mapping_file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "patient_id"])
        writer.writerows((case_id_of(p, key), p) for p in patients)


def pseudonymise_clinical(clinical_csv: Path, out: Path, key: bytes) -> None:
    """The clinical table keyed by case_id instead of patient_id, identifying columns dropped."""
    table = pd.read_csv(clinical_csv, dtype={"patient_id": str})
    if "patient_id" not in table.columns:
        raise ValueError(f"{clinical_csv.name} has no patient_id column (columns: {list(table.columns)})")
    table.insert(0, "case_id", [case_id_of(p, key) for p in table.pop("patient_id")])
    table = table.drop(columns=[c for c in table.columns if c.lower() in IDENTIFYING_COLUMNS])
    out.parent.mkdir(parents=True, exist_ok=True)
    table.sort_values("case_id").to_parquet(out, index=False)
