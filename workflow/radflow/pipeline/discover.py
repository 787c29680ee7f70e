"""Pipeline rules `discover` and `clinical`: from a DICOM folder tree (and/or a manifest of NIfTI/NRRD image and
mask files) to pseudonymised cases in batches.

The inventory (interim/inventory.json) names each case by its pseudonym and lists, per scan, the source files and
the mask objects with the ROI chosen for each configured ROI pattern. It holds source paths (a PACS export's
folder names may be identifying), so it stays in interim/ and is never exported; it holds no PatientID, and dates
only shifted per patient (or not at all).

Which series become scans: the image series of a patient that pass ``SeriesRules`` and have a linked mask, named
``test``, ``retest``, ``scan3``, ... in acquisition order. A patient without any such series still becomes a case,
with a failed scan saying why (NO_IMAGE_SERIES, MASK_NOT_FOUND, MASK_UNLINKED), so nothing in the input disappears
silently.
"""
from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from radflow import inventory as inv
from radflow.dicom import discovery
from radflow.dicom.deid import date_shift_days, pseudo_uid, pseudonym, shift_iso_datetime

log = logging.getLogger(__name__)

# Clinical columns that identify a person: dropped on the way in, whatever the CSV holds.
IDENTIFYING_COLUMNS = {"patient_name", "name", "birth_date", "patient_birth_date", "date_of_birth", "dob",
                       "address", "phone", "mrn", "accession_number", "institution_name"}
MANIFEST_COLUMNS = ("patient_id", "image", "mask")  # required; optional: scan, roi, label, modality


def case_id_of(patient_id: str, key: bytes) -> str:
    return pseudonym(patient_id, key, prefix="case-", length=12)


def scan_names(n: int) -> list[str]:
    """Acquisition order names the scans: test, retest, then scan3, scan4, ..."""
    return ["test", "retest", *[f"scan{i}" for i in range(3, n + 1)]][:n]


# ------------------------------------------------------------------------------------------ ROI choice

def centre_aliases(roi_aliases: dict | None, centre: str) -> dict[str, list[str]]:
    """The alias patterns of one centre ({roi name: [patterns]}); centres match case-insensitively."""
    centres = (roi_aliases or {}).get("centres") or {}
    wanted = centre.strip().casefold()
    for name, aliases in centres.items():
        if name.strip().casefold() == wanted:
            return {roi: list(patterns) for roi, patterns in (aliases or {}).items()}
    return {}


def choose_rois(masks: list[discovery.MaskObject], rois: list[dict],
                aliases: dict[str, list[str]] | None = None) -> tuple[list[inv.RoiSelection], list[inv.RoiError]]:
    """For each configured ROI, the first mask label matching the centre's aliases, else its pattern (regular
    expressions, case-insensitive): (selections, errors)."""
    selections: list[inv.RoiSelection] = []
    errors: list[inv.RoiError] = []
    aliases = aliases or {}
    for roi in rois:
        patterns = [*aliases.get(roi["name"], []), roi["pattern"]]
        match = None
        for pattern in patterns:
            compiled = re.compile(pattern, re.IGNORECASE)
            match = next(((mask, label) for mask in masks for label in mask.labels if compiled.search(label)), None)
            if match is not None:
                break
        if match is None:
            available = sorted({label for mask in masks for label in mask.labels})
            shown = " or ".join(repr(p) for p in patterns)
            errors.append({"roi": roi["name"], "code": "ROI_NOT_FOUND",
                           "message": f"no mask label matches {shown} (labels: {available})"})
        else:
            mask, label = match
            selections.append({"roi": roi["name"], "kind": mask.kind, "path": str(mask.path), "label": label})
    return selections, errors


# ------------------------------------------------------------------------------------------ DICOM cases

def _scan_entry(name: str, series: discovery.ImageSeries | None, key: bytes,
                date_shift: int | None) -> inv.InventoryScan:
    when = (series.acquisition_datetime or series.series_datetime) if series is not None else ""
    return {
        "scan": name,
        "source": "dicom",
        "modality": series.modality if series is not None else "",
        "series_uid": pseudo_uid(series.series_uid, key) if series is not None else "",
        "files": [str(p) for p in series.files] if series is not None else [],
        "acquisition_datetime": shift_iso_datetime(when, date_shift) if when and date_shift is not None else None,
        "rois": [],
        "roi_errors": [],
        "error": None,
    }


def _failed(entry: inv.InventoryScan, code: str, message: str) -> inv.InventoryScan:
    entry["error"] = {"code": code, "message": message}
    return entry


def _order(series: discovery.ImageSeries) -> tuple:
    return (series.acquisition_datetime or series.series_datetime, series.series_number, series.series_uid)


def _no_series_message(excluded: list[discovery.ImageSeries], n_masks: int) -> str:
    if not excluded:
        return f"{n_masks} mask object(s) but no image series of this patient"
    reasons = Counter(s.excluded for s in excluded)
    return "no series passes the series rules: " + "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items()))


def unreadable_nearby(inventory: discovery.Inventory, series: discovery.ImageSeries) -> list[inv.ScanWarning]:
    """A warning when files in the series' folders could not be read as DICOM at all: if the series then misses
    slices, this says why (the files may be truncated copies of its slices)."""
    folders = {path.parent for path in series.files}
    count = sum(1 for f in inventory.unreadable if f.path.parent in folders)
    if not count:
        return []
    return [{"code": "UNREADABLE_FILES_NEARBY", "value": float(count),
             "message": f"{count} file(s) in this series' folder(s) could not be read as DICOM (truncated copies "
                        "of its slices?)"}]


def patient_scans(inventory: discovery.Inventory, series_list: list[discovery.ImageSeries],
                  masks: list[discovery.MaskObject], rois: list[dict], key: bytes, date_shift: int | None,
                  roi_aliases: dict | None) -> list[inv.InventoryScan]:
    """The scans of one patient (see the module docstring)."""
    selected = sorted((s for s in series_list if not s.excluded), key=_order)
    if not selected:
        excluded = [s for s in series_list if s.excluded]
        entry = _scan_entry("test", max(excluded, key=lambda s: s.n_slices) if excluded else None, key, date_shift)
        return [_failed(entry, "NO_IMAGE_SERIES", _no_series_message(excluded, len(masks)))]
    unlinked = [m for m in masks if m.linked_series is None]
    with_masks = [s for s in selected if inventory.masks_for(s)]
    if with_masks and unlinked:
        chosen = selected  # an unlinked mask probably belongs to one of the series without a mask
    elif with_masks:
        chosen = with_masks
    else:  # no mask at all: the largest series stands for the case in QC
        chosen = [max(selected, key=lambda s: s.n_slices)]
    scans = []
    for name, series in zip(scan_names(len(chosen)), chosen):
        entry = _scan_entry(name, series, key, date_shift)
        entry["warnings"] = unreadable_nearby(inventory, series)
        series_masks = inventory.masks_for(series)
        if not series_masks and unlinked:
            methods = Counter(m.link_method for m in unlinked)
            _failed(entry, "MASK_UNLINKED", f"no mask linked to this series; {len(unlinked)} mask object(s) of the "
                    f"patient could not be linked ({', '.join(f'{n} {m}' for m, n in sorted(methods.items()))}: "
                    "they reference a series or frame of reference not among the patient's selected series)")
        elif not series_masks:
            _failed(entry, "MASK_NOT_FOUND", "no RTSTRUCT or SEG references this patient's series")
        else:
            entry["rois"], entry["roi_errors"] = choose_rois(
                series_masks, rois, centre_aliases(roi_aliases, series.centre))
        scans.append(entry)
    return scans


def cases_from_inventory(inventory: discovery.Inventory, rois: list[dict], key: bytes, dates: str = "shift",
                         roi_aliases: dict | None = None) -> dict[str, inv.InventoryCase]:
    """Cases keyed by case_id from a DICOM inventory; ``dates``: 'shift' (keyed per patient) or 'drop'."""
    series_by_patient: dict[str, list[discovery.ImageSeries]] = {}
    masks_by_patient: dict[str, list[discovery.MaskObject]] = {}
    for series in inventory.series:
        series_by_patient.setdefault(series.patient_id, []).append(series)
    for mask in inventory.masks:
        masks_by_patient.setdefault(mask.patient_id, []).append(mask)
    cases: dict[str, inv.InventoryCase] = {}
    for patient_id in sorted(set(series_by_patient) | set(masks_by_patient)):
        shift = date_shift_days(patient_id, key) if dates == "shift" else None
        scans = patient_scans(inventory, series_by_patient.get(patient_id, []), masks_by_patient.get(patient_id, []),
                              rois, key, shift, roi_aliases)
        case_id = case_id_of(patient_id, key)
        cases[case_id] = {"case_id": case_id, "scans": scans}
    return cases


# ------------------------------------------------------------------------------------------ file manifest

def read_input_manifest(path: Path) -> list[dict]:
    """Rows of the image/mask manifest CSV; paths relative to the CSV's folder become absolute."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [c for c in MANIFEST_COLUMNS if rows and c not in rows[0]]
    if missing or not rows:
        raise ValueError(f"{path.name}: needs columns {list(MANIFEST_COLUMNS)} (and optionally scan, roi, label, "
                         f"modality); missing {missing or 'rows'}")
    for row in rows:
        for column in ("image", "mask"):
            value = (row.get(column) or "").strip()
            row[column] = str((path.parent / value).resolve()) if value else ""
    return rows


def cases_from_manifest(rows: list[dict], rois: list[dict], key: bytes) -> dict[str, inv.InventoryCase]:
    """Cases from manifest rows: one row per (patient, scan, ROI); ``roi`` names the ROI (default: the first
    configured ROI), ``label`` picks one label of a multi-label mask (default: every non-zero voxel)."""
    default_roi = rois[0]["name"]
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        scan = (row.get("scan") or "").strip() or "test"
        grouped.setdefault((row["patient_id"].strip(), scan), []).append(row)
    cases: dict[str, inv.InventoryCase] = {}
    for (patient_id, scan), scan_rows in sorted(grouped.items()):
        case_id = case_id_of(patient_id, key)
        first = scan_rows[0]
        entry: inv.InventoryScan = {
            "scan": scan, "source": "file", "modality": (first.get("modality") or "").strip().upper() or "CT",
            "series_uid": pseudo_uid("file:" + first["image"], key), "files": [first["image"]],
            "acquisition_datetime": None, "rois": [], "roi_errors": [], "error": None,
        }
        for row in scan_rows:
            roi = (row.get("roi") or "").strip() or default_roi
            label = (row.get("label") or "").strip()
            if not row["mask"]:
                entry["roi_errors"].append({"roi": roi, "code": "MASK_NOT_FOUND", "message": "no mask file given"})
                continue
            entry["rois"].append({"roi": roi, "kind": "FILE", "path": row["mask"], "label": label})
        cases.setdefault(case_id, {"case_id": case_id, "scans": []})["scans"].append(entry)
    return cases


# ------------------------------------------------------------------------------------------ the rule

def discover(input_dir: Path | None, inventory_path: Path, batch_size: int, rois: list[dict], key: bytes,
             mapping_file: Path | None = None, series_rules: dict | None = None, roi_aliases: dict | None = None,
             input_manifest: Path | None = None, dates: str = "shift") -> None:
    cases: dict[str, inv.InventoryCase] = {}
    patient_ids: set[str] = set()
    if input_dir is not None:
        inventory = discovery.scan(input_dir, discovery.SeriesRules.from_config(series_rules),
                                   centre_attribute=(roi_aliases or {}).get("attribute", ""))
        excluded = Counter(s.excluded for s in inventory.series if s.excluded)
        log.info("%d image series (%d selected), %d mask objects, %d unreadable and %d skipped files",
                 len(inventory.series), len(inventory.selected), len(inventory.masks), len(inventory.unreadable),
                 len(inventory.skipped))
        for reason, n in sorted(excluded.items()):
            log.info("excluded %d series: %s", n, reason)
        links = Counter(m.link_method for m in inventory.masks)
        log.info("mask links: %s", dict(sorted(links.items())))
        cases.update(cases_from_inventory(inventory, rois, key, dates, roi_aliases))
        patient_ids |= {s.patient_id for s in inventory.series} | {m.patient_id for m in inventory.masks}
    if input_manifest is not None:
        rows = read_input_manifest(input_manifest)
        for case_id, case in cases_from_manifest(rows, rois, key).items():
            if case_id in cases:
                raise ValueError("a patient of the input manifest is also in the DICOM input: give each patient once")
            cases[case_id] = case
        patient_ids |= {row["patient_id"].strip() for row in rows}
    ordered = sorted(cases)
    batches = {
        f"b{i // batch_size:04d}": [cases[c] for c in ordered[i:i + batch_size]]
        for i in range(0, len(ordered), batch_size)
    }
    inv.write(inventory_path, batches)
    log.info("%d cases in %d batches", len(ordered), len(batches))
    if mapping_file is not None:
        write_mapping(patient_ids, key, mapping_file)


def write_mapping(patient_ids: set[str], key: bytes, mapping_file: Path) -> None:
    """The data owner's re-identification table (case_id -> PatientID), only where the config says."""
    mapping_file.parent.mkdir(parents=True, exist_ok=True)
    with mapping_file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "patient_id"])
        writer.writerows((case_id_of(p, key), p) for p in sorted(patient_ids))


def pseudonymise_clinical(clinical_csv: Path, out: Path, key: bytes) -> None:
    """The clinical table keyed by case_id instead of patient_id, identifying columns dropped."""
    table = pd.read_csv(clinical_csv, dtype={"patient_id": str})
    if "patient_id" not in table.columns:
        raise ValueError(f"{clinical_csv.name} has no patient_id column (columns: {list(table.columns)})")
    table.insert(0, "case_id", [case_id_of(p, key) for p in table.pop("patient_id")])
    table = table.drop(columns=[c for c in table.columns if c.lower() in IDENTIFYING_COLUMNS])
    out.parent.mkdir(parents=True, exist_ok=True)
    table.sort_values("case_id").to_parquet(out, index=False)
