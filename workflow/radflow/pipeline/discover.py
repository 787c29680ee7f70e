"""Pipeline rules `discover` and `clinical`: from a DICOM folder tree (and/or a manifest of NIfTI/NRRD image and
mask files) to pseudonymised cases in batches.

The inventory (interim/inventory/<input key>.json) names each case by its pseudonym and lists, per scan, the source
files and the mask objects with the ROI chosen for each configured ROI pattern, in batches that stay stable as the
cohort grows (:func:`batch_slot`), each with a fingerprint of what it reads. It holds source paths (a PACS export's
folder names may be identifying), so it stays in interim/ and is never exported; it holds no PatientID, and dates
only shifted per patient (or not at all).

Which series become scans: the image series of a patient that pass ``SeriesRules`` and have a linked mask, labelled
and grouped into timepoints by acquisition date and time (``radflow.timepoints``: ``test``, ``retest``, ``fu1``,
``pt_test``, ...). A patient without any such series still becomes a case,
with a failed scan saying why (NO_IMAGE_SERIES, MASK_NOT_FOUND, MASK_UNLINKED), so nothing in the input disappears
silently.

Identity is checked before anything is merged: files sharing a PatientID but disagreeing on PatientName, birth date
or sex are one failed case (PATIENT_ID_CONFLICT), never one patient with the scans of two; files without a
PatientID are never pooled: each study becomes its own failed case (PATIENT_ID_MISSING), or, with
``missing_patient_id: study_uid``, its own case keyed on the StudyInstanceUID with a PATIENT_ID_FROM_STUDY warning.
Folders and files that cannot be read are listed in ``interim/unreadable.csv`` (paths stay in interim/) and named
in ``qc`` by count: an INPUT_UNREADABLE failure on every case whose files share a folder below the input root with
them (a scan may be missing, so the case's scan labels cannot be trusted and the case is not used), and one
run-level row (case_id '') for the rest.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from radflow import csv_dialect
from radflow import inventory as inv
from radflow.dicom import discovery
from radflow.dicom.deid import date_shift_days, pseudo_uid, pseudonym, shift_iso_datetime
from radflow.sequences import SequenceError, checked_name
from radflow.timepoints import ScanTiming, TimepointRules, place, split_label

log = logging.getLogger(__name__)

# Clinical columns that identify a person: dropped on the way in, whatever the CSV holds.
IDENTIFYING_COLUMNS = {"patient_name", "name", "birth_date", "patient_birth_date", "date_of_birth", "dob",
                       "address", "phone", "mrn", "accession_number", "institution_name"}
MANIFEST_COLUMNS = ("patient_id", "image", "mask")  # required; optional: scan, roi, label, modality, sequence


MISSING_PATIENT_ID = ("fail", "study_uid")  # config pseudonymisation.missing_patient_id
STUDY_KEY_PREFIX = "study:"  # the keyed stand-in for a missing PatientID (never a real PatientID's form)


def case_id_of(patient_id: str, key: bytes) -> str:
    return pseudonym(patient_id, key, prefix="case-", length=12)


def compile_roi_patterns(rois: list[dict], roi_aliases: dict | None = None) -> None:
    """Every configured ROI pattern and alias must be a valid regular expression (one-line ValueError if not)."""
    patterns = [(f"rois[{i}] ({roi.get('name', '?')})", roi.get("pattern", "")) for i, roi in enumerate(rois)]
    for centre, aliases in ((roi_aliases or {}).get("centres") or {}).items():
        for roi, listed in (aliases or {}).items():
            patterns += [(f"roi_aliases.centres.{centre}.{roi}", p) for p in listed]
    for where, pattern in patterns:
        try:
            re.compile(pattern, re.IGNORECASE)
        except (re.error, TypeError) as exc:
            raise ValueError(f"{where}: {pattern!r} is not a valid regular expression ({exc})") from None


def check_mapping_location(mapping_file: Path, results_dir: Path) -> None:
    """The re-identification table must never be written into the results folder (which is shared/exported)."""
    mapping, results = Path(os.path.abspath(mapping_file)), Path(os.path.abspath(results_dir))
    if mapping == results or results in mapping.parents:
        raise ValueError(f"pseudonymisation.mapping_file {mapping_file} lies inside the results folder "
                         f"{results_dir}: the case_id -> PatientID table must be kept outside what is shared")


def label_id(label: str, key: bytes) -> str:
    """A keyed stand-in for an RTSTRUCT ROI name or SEG segment label (free text that may name a person): the same
    label gives the same id within a study, and only the key holder can test a guess."""
    return pseudonym(label, key, prefix="label-", length=12)


# ------------------------------------------------------------------------------------------ ROI choice

def centre_aliases(roi_aliases: dict | None, centre: str) -> dict[str, list[str]]:
    """The alias patterns of one centre ({roi name: [patterns]}); centres match case-insensitively."""
    centres = (roi_aliases or {}).get("centres") or {}
    wanted = centre.strip().casefold()
    for name, aliases in centres.items():
        if name.strip().casefold() == wanted:
            return {roi: list(patterns) for roi, patterns in (aliases or {}).items()}
    return {}


def choose_rois(masks: list[discovery.MaskObject], rois: list[dict], aliases: dict[str, list[str]] | None = None,
                ) -> tuple[list[inv.RoiSelection], list[inv.RoiError], list[inv.ScanWarning]]:
    """For each configured ROI, the first mask label matching the centre's aliases, else its pattern (regular
    expressions, case-insensitive): (selections, errors, warnings). Several different labels matching (GTV_1 and
    GTV_2 of a patient with two lesions) is an ROI_AMBIGUOUS warning: the first was taken, and a test and a retest
    structure set listing the lesions in another order would be compared lesion against other lesion."""
    selections: list[inv.RoiSelection] = []
    errors: list[inv.RoiError] = []
    warnings: list[inv.ScanWarning] = []
    aliases = aliases or {}
    for roi in rois:
        patterns = [*aliases.get(roi["name"], []), roi["pattern"]]
        match = None
        for pattern in patterns:
            compiled = re.compile(pattern, re.IGNORECASE)
            matches = [(mask, label) for mask in masks for label in mask.labels if compiled.search(label)]
            if matches:
                match = matches[0]
                distinct = len({label for _, label in matches})
                if distinct > 1:
                    warnings.append({"code": "ROI_AMBIGUOUS", "roi": roi["name"], "value": float(distinct),
                                     "message": f"{distinct} mask labels match {pattern!r}: the first was taken; "
                                                "narrow the pattern (rois) or add a centre alias so that one label "
                                                "matches (the names are in interim/inventory.json)"})
                break
        if match is None:
            # Label names are free text (e.g. "gtv_primary_<surname>"): they stay in the interim inventory
            # ("labels", for the data owner) and the message that reaches results only counts them.
            available = sorted({label for mask in masks for label in mask.labels})
            shown = " or ".join(repr(p) for p in patterns)
            errors.append({"roi": roi["name"], "code": "ROI_NOT_FOUND", "labels": available,
                           "message": f"no mask label matches {shown} ({len(available)} label(s) in the mask "
                                      "objects; their names are in interim/inventory.json)"})
        else:
            mask, label = match
            selections.append({"roi": roi["name"], "kind": mask.kind, "path": str(mask.path), "label": label})
    return selections, errors, warnings


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
        "timepoint": None,
        "days_from_baseline": None,
        "rois": [],
        "roi_errors": [],
        "error": None,
    }


def _failed(entry: inv.InventoryScan, code: str, message: str) -> inv.InventoryScan:
    entry["error"] = {"code": code, "message": message}
    return entry


def _timing(series: discovery.ImageSeries) -> ScanTiming:
    return ScanTiming(series.modality, series.acquisition_datetime or series.series_datetime, series.series_number,
                      series.series_uid, series.sequence, series.protocol)


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


def _conflicting_fields(identities: set[tuple[str, str, str]]) -> list[str]:
    """The identity fields on which files of one PatientID disagree (empty values do not count)."""
    names = ("PatientName", "PatientBirthDate", "PatientSex")
    return [name for i, name in enumerate(names) if len({identity[i] for identity in identities if identity[i]}) > 1]


def identity_conflict(series_list: list[discovery.ImageSeries],
                      masks: list[discovery.MaskObject]) -> inv.Issue | None:
    """PATIENT_ID_CONFLICT when the files of one PatientID describe more than one person."""
    identities: set[tuple[str, str, str]] = set().union(*(s.identities for s in series_list),
                                                        {m.identity for m in masks})
    fields = _conflicting_fields(identities)
    if not fields:
        return None
    people = {identity for identity in identities if any(identity)}
    return {"code": "PATIENT_ID_CONFLICT",
            "message": f"files sharing this PatientID disagree on {', '.join(fields)} ({len(people)} different "
                       f"identities over {len(series_list)} series and {len(masks)} mask object(s)): different "
                       "patients under one ID, not merged"}


def patient_scans(inventory: discovery.Inventory, series_list: list[discovery.ImageSeries],
                  masks: list[discovery.MaskObject], rois: list[dict], key: bytes, date_shift: int | None,
                  roi_aliases: dict | None, timepoint_rules: TimepointRules | None = None
                  ) -> list[inv.InventoryScan]:
    """The scans of one patient (see the module docstring)."""
    selected = sorted((s for s in series_list if not s.excluded), key=lambda s: _timing(s).order())
    if not selected:
        excluded = [s for s in series_list if s.excluded]
        entry = _scan_entry("test", max(excluded, key=lambda s: s.n_slices) if excluded else None, key, date_shift)
        return [_failed(entry, "NO_IMAGE_SERIES", _no_series_message(excluded, len(masks)))]
    unlinked = [m for m in masks if m.linked_series is None]
    drawn_elsewhere = {s.key: masks_drawn_on_another_kind(inventory, s, selected) for s in selected
                       if not inventory.masks_for(s)}
    with_masks = [s for s in selected if inventory.masks_for(s) or drawn_elsewhere.get(s.key)]
    if with_masks and unlinked:
        chosen = selected  # an unlinked mask probably belongs to one of the series without a mask
    elif with_masks:
        chosen = with_masks
    else:  # no mask at all: the largest series stands for the case in QC
        chosen = [max(selected, key=lambda s: s.n_slices)]
    scans = []
    placements = place([_timing(s) for s in chosen], timepoint_rules or TimepointRules())
    for placement, series in zip(placements, chosen):
        entry = _scan_entry(placement.label, series, key, date_shift)
        if series.sequence:
            entry["sequence"] = series.sequence
        entry["timepoint"], entry["days_from_baseline"] = placement.timepoint, placement.days_from_baseline
        entry["warnings"] = placement.warnings + unreadable_nearby(inventory, series)
        transferred = drawn_elsewhere.get(series.key, [])
        series_masks = inventory.masks_for(series) or [mask for mask, _ in transferred]
        drawn_on = {str(mask.path): source for mask, source in transferred}
        if not series_masks and unlinked:
            methods = Counter(m.link_method for m in unlinked)
            _failed(entry, "MASK_UNLINKED", f"no mask linked to this series; {len(unlinked)} mask object(s) of the "
                    f"patient could not be linked ({', '.join(f'{n} {m}' for m, n in sorted(methods.items()))}: "
                    "they reference a series or frame of reference not among the patient's selected series)")
        elif not series_masks:
            _failed(entry, "MASK_NOT_FOUND", "no RTSTRUCT or SEG references this patient's series")
        else:
            entry["rois"], entry["roi_errors"], ambiguous = choose_rois(
                series_masks, rois, centre_aliases(roi_aliases, series.centre))
            entry["warnings"] = entry["warnings"] + ambiguous
            for selection in entry["rois"]:
                selection["label_id"] = label_id(selection["label"], key)
                if selection["path"] in drawn_on:  # drawn on another series of the frame: ingest resamples it
                    selection["drawn_on"] = [str(f) for f in drawn_on[selection["path"]].files]
                    selection["drawn_on_modality"] = drawn_on[selection["path"]].modality
                    if drawn_on[selection["path"]].sequence:
                        selection["drawn_on_sequence"] = drawn_on[selection["path"]].sequence
        scans.append(entry)
    return scans


def masks_drawn_on_another_kind(inventory: discovery.Inventory, series: discovery.ImageSeries,
                                selected: list[discovery.ImageSeries]
                                ) -> list[tuple[discovery.MaskObject, discovery.ImageSeries]]:
    """(mask, the series it was drawn on) for a series without a mask of its own, from a series of another kind in
    the same study and frame of reference: another modality (a hybrid PET/CT's PET and CT share the scanner's
    coordinates, and the ROI is often drawn on the CT only) or another configured sequence (``series.sequence``; a
    multiparametric MR's lesion is often drawn on the T2-weighted series only). Ingest
    rasterises such a mask on the series it was drawn on and resamples it onto this one (MASK_TRANSFERRED).
    Another series of the same kind (a retest in the same frame), or of the same modality without sequences to
    tell them apart, never borrows a mask: each scan of a test-retest pair needs its own."""
    if not series.frame_of_reference_uid:
        return []
    def another_kind(other: discovery.ImageSeries) -> bool:
        if other.modality != series.modality:
            return True
        return bool(series.sequence and other.sequence and series.sequence != other.sequence)

    sources = [other for other in selected
               if other.key != series.key and another_kind(other)
               and other.study_uid == series.study_uid
               and other.frame_of_reference_uid == series.frame_of_reference_uid and inventory.masks_for(other)]
    return [(mask, source) for source in sources for mask in inventory.masks_for(source)]


def patient_key(patient_id: str, study_uid: str, series_uid: str = "") -> str:
    """Who a file belongs to: its PatientID, or for a file without one its study (never the empty string, which
    would pool every ID-less file of an archive into one case)."""
    return patient_id if patient_id.strip() else STUDY_KEY_PREFIX + (study_uid or f"series {series_uid}")


def _case_failure(code: str, message: str) -> list[inv.InventoryScan]:
    return [_failed(_scan_entry("test", None, b"", None), code, message)]


def cases_from_inventory(inventory: discovery.Inventory, rois: list[dict], key: bytes, dates: str = "shift",
                         roi_aliases: dict | None = None,
                         missing_patient_id: str = "fail",
                         timepoint_rules: TimepointRules | None = None) -> dict[str, inv.InventoryCase]:
    """Cases keyed by case_id from a DICOM inventory; ``dates``: 'shift' (keyed per patient) or 'drop';
    ``missing_patient_id``: 'fail' or 'study_uid' (see the module docstring); ``timepoint_rules``: how scans group
    into timepoints (``radflow.timepoints``)."""
    if missing_patient_id not in MISSING_PATIENT_ID:
        raise ValueError(f"missing_patient_id must be one of {MISSING_PATIENT_ID}, got {missing_patient_id!r}")
    series_by_patient: dict[str, list[discovery.ImageSeries]] = {}
    masks_by_patient: dict[str, list[discovery.MaskObject]] = {}
    for series in inventory.series:
        owner = patient_key(series.patient_id, series.study_uid, series.series_uid)
        series_by_patient.setdefault(owner, []).append(series)
    for mask in inventory.masks:
        masks_by_patient.setdefault(patient_key(mask.patient_id, mask.study_uid, mask.series_uid), []).append(mask)
    cases: dict[str, inv.InventoryCase] = {}
    for patient in sorted(set(series_by_patient) | set(masks_by_patient)):
        series_list, masks = series_by_patient.get(patient, []), masks_by_patient.get(patient, [])
        case_id = case_id_of(patient, key)
        checks: list[inv.ScanWarning] = []
        conflict = identity_conflict(series_list, masks)
        if conflict is not None:
            scans = _case_failure(conflict["code"], conflict["message"])
        elif patient.startswith(STUDY_KEY_PREFIX) and missing_patient_id == "fail":
            scans = _case_failure("PATIENT_ID_MISSING", f"{len(series_list)} series and {len(masks)} mask object(s) "
                                  "of one study have no PatientID: not pooled with other files, not processed "
                                  "(pseudonymisation.missing_patient_id: study_uid keys such files on their study)")
        else:
            if patient.startswith(STUDY_KEY_PREFIX):
                checks.append({"code": "PATIENT_ID_FROM_STUDY", "value": None,
                               "message": "no PatientID: this case is one study, keyed on its StudyInstanceUID "
                                          "(other studies of the same person become other cases)"})
            shift = date_shift_days(patient, key) if dates == "shift" else None
            scans = patient_scans(inventory, series_list, masks, rois, key, shift, roi_aliases,
                                  timepoint_rules)
        cases[case_id] = {"case_id": case_id, "scans": scans, "checks": checks}
    mark_unreadable(cases, inventory, series_by_patient, masks_by_patient, key)
    return cases


def _folders(paths) -> set[Path]:
    return {Path(p).parent for p in paths}


def touched_by(item: Path, patient_folders: set[Path], root: Path | None) -> bool:
    """Whether an unreadable file or folder shares a folder below the input root with a patient's files."""
    for folder in patient_folders:
        try:
            common = Path(os.path.commonpath([item, folder]))
        except ValueError:
            continue
        if root is None or common != root and root in common.parents:
            return True
    return False


ACCESS_FAILURES = ("folder cannot be listed", "file cannot be opened")


def _reasons(items: list[discovery.SkippedFile]) -> str:
    reasons = Counter(u.reason.split(":")[0] if u.reason.startswith(ACCESS_FAILURES) else "not parsable as DICOM"
                      for u in items)
    return "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items()))


def mark_unreadable(cases: dict[str, inv.InventoryCase], inventory: discovery.Inventory, series_by_patient: dict,
                    masks_by_patient: dict, key: bytes) -> None:
    """Name every unreadable input item in the cases' checks (see the module docstring): INPUT_UNREADABLE (fail)
    for folders and files the run could not open beside a case's files, UNREADABLE_FILES_NEARBY (warn) for files
    beside them that do not parse (unless already noted on a scan), and one run-level INPUT_UNREADABLE (case '')
    for the items that touch no case."""
    root = inventory.root
    touched_any: set[Path] = set()
    for patient in sorted(set(series_by_patient) | set(masks_by_patient)):
        folders = _folders(f for s in series_by_patient.get(patient, []) for f in s.files)
        folders |= _folders(m.path for m in masks_by_patient.get(patient, []))
        items = [u for u in inventory.unreadable if touched_by(u.path, folders, root)]
        if not items:
            continue
        touched_any |= {u.path for u in items}
        case = cases[case_id_of(patient, key)]
        case_checks = case.setdefault("checks", [])
        access = [u for u in items if u.reason.startswith(ACCESS_FAILURES)]
        scan_folders = _folders(f for scan in case["scans"] for f in scan["files"])
        corrupt = [u for u in items if u not in access and u.path.parent not in scan_folders]
        if access:
            case_checks.append({
                "code": "INPUT_UNREADABLE", "value": float(len(access)),
                "message": f"{len(access)} folder(s) or file(s) beside this patient's files cannot be read "
                           f"({_reasons(access)}): a scan may be missing, so this case is not used and its scans "
                           "keep the labels of what could be read; paths in interim/unreadable.csv"})
        if corrupt:
            case_checks.append({
                "code": "UNREADABLE_FILES_NEARBY", "value": float(len(corrupt)),
                "message": f"{len(corrupt)} file(s) beside this patient's files could not be read as DICOM "
                           f"({_reasons(corrupt)}); paths in interim/unreadable.csv"})
    untouched = [u for u in inventory.unreadable if u.path not in touched_any]
    if untouched:
        cases[""] = {"case_id": "", "scans": [], "checks": [{
            "code": "INPUT_UNREADABLE", "value": float(len(untouched)),
            "message": f"{len(untouched)} folder(s) or file(s) of the input belong to no known case and cannot be "
                       f"read ({_reasons(untouched)}): whole patients may be missing; paths in "
                       "interim/unreadable.csv"}]}


def write_unreadable(inventory: discovery.Inventory, path: Path) -> None:
    """The unreadable folders and files with their reasons (interim only: paths may be identifying)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        writer.writerows((str(u.path), u.reason) for u in sorted(inventory.unreadable, key=lambda u: str(u.path)))


# ------------------------------------------------------------------------------------------ file manifest

def read_input_manifest(path: Path) -> list[dict]:
    """Rows of the image/mask manifest CSV; paths relative to the CSV's folder become absolute."""
    _, numbered = csv_dialect.numbered_rows(path)
    rows = [row for _, row in numbered]
    missing = [c for c in MANIFEST_COLUMNS if rows and c not in rows[0]]
    if missing or not rows:
        raise ValueError(f"{path.name}: needs columns {list(MANIFEST_COLUMNS)} (and optionally scan, roi, label, "
                         f"modality, sequence); missing {missing or 'rows'}")
    for line, row in numbered:
        row["line"] = str(line)
        for column in ("image", "mask"):
            value = (row.get(column) or "").strip()
            row[column] = str((path.parent / value).resolve()) if value else ""
        row["modality"] = manifest_modality(row.get("modality"), f"{path.name} line {line}")
    return rows


# How a manifest may name a modality -> the DICOM Modality code the settings documents are matched on
MANIFEST_MODALITIES = {"CT": "CT", "PT": "PT", "PET": "PT", "MR": "MR", "MRI": "MR"}


def manifest_modality(value: str | None, where: str) -> str:
    """The DICOM Modality of a manifest row (empty: CT); PET and MRI are accepted for PT and MR, anything else is a
    ``ValueError`` (its scans would match no settings document and silently get no features)."""
    text = (value or "").strip().upper()
    if not text:
        return "CT"
    if text not in MANIFEST_MODALITIES:
        raise ValueError(f"{where}: modality {value!r} is not one of CT, PET (PT), MR (MRI)")
    return MANIFEST_MODALITIES[text]


def _label_numbers(label: str) -> bool:
    """Whether a manifest label is label values ("2", "1,4"), not a segment's name."""
    try:
        [float(part) for part in label.split(",")]
    except ValueError:
        return False
    return True


def label_sequence(label: str) -> str:
    """The sequence a scan label's prefix names (``t1`` of ``t1_test``), or '' (no prefix, a modality's prefix,
    or one that cannot be a sequence name)."""
    prefix = split_label(label)[0].rstrip("_")
    if not prefix or prefix in ("ct", "pt", "mr"):
        return ""
    try:
        return checked_name(prefix, "label")
    except SequenceError:
        return ""


def _lines(rows: list[dict]) -> str:
    return ", ".join(row.get("line", "?") for row in rows)


def cases_from_manifest(rows: list[dict], rois: list[dict], key: bytes) -> dict[str, inv.InventoryCase]:
    """Cases from manifest rows: one row per (patient, scan, ROI); ``roi`` names the ROI (default: the first
    configured ROI), ``label`` picks one label of a multi-label mask (default: every non-zero voxel)."""
    default_roi = rois[0]["name"]
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        scan = (row.get("scan") or "").strip() or "test"
        sequence = (row.get("sequence") or "").strip()
        if sequence:  # the sequence is the label's prefix, as discovery makes it: t2w_test
            sequence = row["sequence"] = checked_name(sequence, f"input manifest line {row.get('line', '?')}")
            scan = scan if scan.startswith(f"{sequence}_") else f"{sequence}_{scan}"
        else:  # a label written as discovery makes them (t1_test, flair_fu1) names its sequence
            row["sequence"] = label_sequence(scan)
        grouped.setdefault((row["patient_id"].strip(), scan), []).append(row)
    cases: dict[str, inv.InventoryCase] = {}
    for (patient_id, scan), scan_rows in sorted(grouped.items()):
        case_id = case_id_of(patient_id, key)
        first = scan_rows[0]
        if len({row["image"] for row in scan_rows}) > 1:  # a second image would be left out, its masks put on the first
            raise ValueError(f"input manifest lines {_lines(scan_rows)}: one patient's scan {scan!r} lists "
                             f"{len({row['image'] for row in scan_rows})} different images; give each image its own "
                             "scan label (a scan column: test, retest, pet, ...) or sequence (a sequence column: t2w, "
                             "adc, ...)")
        entry: inv.InventoryScan = {
            "scan": scan, "source": "file", "modality": first.get("modality") or "CT",
            "series_uid": pseudo_uid("file:" + first["image"], key), "files": [first["image"]],
            "acquisition_datetime": None, "timepoint": None, "days_from_baseline": None,
            "rois": [], "roi_errors": [], "error": None,
        }
        if first.get("sequence"):
            entry["sequence"] = first["sequence"]
        listed: dict[str, dict] = {}
        for row in scan_rows:
            roi = (row.get("roi") or "").strip() or default_roi
            label = (row.get("label") or "").strip()
            if roi in listed:
                if (listed[roi]["mask"], (listed[roi].get("label") or "").strip()) == (row["mask"], label):
                    continue  # the same row twice: one ROI, not two copies of its features
                raise ValueError(f"input manifest lines {_lines([listed[roi], row])}: ROI {roi!r} of one scan is "
                                 "listed twice with different masks or labels; name them apart (roi column)")
            listed[roi] = row
            if not row["mask"]:
                entry["roi_errors"].append({"roi": roi, "code": "MASK_NOT_FOUND", "message": "no mask file given"})
                continue
            selection: inv.RoiSelection = {"roi": roi, "kind": "FILE", "path": row["mask"], "label": label}
            if label and not _label_numbers(label):  # a 3D Slicer segment's name: free text, keyed for results
                selection["label_id"] = label_id(label, key)
            entry["rois"].append(selection)
        cases.setdefault(case_id, {"case_id": case_id, "scans": []})["scans"].append(entry)
    return cases


# ------------------------------------------------------------------------------------------ batches

def batch_count(n_cases: int, batch_size: int) -> int:
    """ceil(n_cases / batch_size), at least 1: the number of batch slots (empty slots get no job)."""
    return max(1, -(-n_cases // batch_size))


def batch_slot(case_id: str, n_slots: int) -> int:
    """The batch slot of a case by linear hashing of its pseudonym: with 2^k <= n_slots < 2^(k+1), slot =
    hash mod 2^(k+1), or hash mod 2^k where that is not below n_slots. A case keeps its slot while the cohort grows,
    except in the one slot that splits each time n_slots grows by one (half its cases move to the new slot), so
    adding patients to a finished run reruns only the batches they land in plus that split, and never reshuffles
    the rest."""
    value = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "big")
    level = n_slots.bit_length() - 1  # 2^level <= n_slots
    slot = value % (1 << (level + 1))
    return slot if slot < n_slots else value % (1 << level)


def assign_batches(cases: dict[str, inv.InventoryCase], batch_size: int) -> dict[str, list[inv.InventoryCase]]:
    """Cases in batches named b0000, b0001, ... by :func:`batch_slot`, each batch's cases sorted by case_id."""
    n_slots = batch_count(len(cases), batch_size)
    batches: dict[str, list[inv.InventoryCase]] = {}
    for case_id in sorted(cases):
        batches.setdefault(f"b{batch_slot(case_id, n_slots):04d}", []).append(cases[case_id])
    return dict(sorted(batches.items()))


def batch_fingerprint(batch: list[inv.InventoryCase]) -> str:
    """sha256 of a batch's inventory entries and of the path, size and modification time of every source file they
    name (image slices, masks): it changes when, and only when, something the batch's jobs read changes, so the
    workflow reruns exactly the batches whose input was fixed, added or removed."""
    digest = hashlib.sha256(json.dumps(batch, sort_keys=True).encode())
    paths = sorted({path for case in batch for scan in case["scans"]
                    for path in [*scan["files"], *(roi["path"] for roi in scan["rois"])]})
    for path in paths:
        try:
            stat = Path(path).stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ the rule

def _nothing_found(input_dir: Path | None, inventory: discovery.Inventory | None) -> str:
    """Why discovery found no patient, with what it looked at."""
    if inventory is None:
        return "the input manifest lists no patient"
    looked_at = (sum(len(s.files) for s in inventory.series) + len(inventory.masks) + len(inventory.skipped)
                 + len(inventory.unreadable))
    kinds = Counter(f.reason.split(" (")[0] for f in inventory.skipped)
    what = "; ".join(f"{n} {reason}" for reason, n in kinds.most_common(3))
    return (f"no patient found under input_dir {input_dir}: {looked_at} file(s) looked at"
            + (f" ({what})" if what else "") + (f", {len(inventory.unreadable)} unreadable" if inventory.unreadable
                                                else "")
            + ". input_dir must hold DICOM image series (NIfTI / NRRD files go in an input_manifest CSV)")


def discover(input_dir: Path | None, inventory_path: Path, batch_size: int, rois: list[dict], key: bytes,
             mapping_file: Path | None = None, series_rules: dict | None = None, roi_aliases: dict | None = None,
             input_manifest: Path | None = None, dates: str = "shift", missing_patient_id: str = "fail",
             results_dir: Path | None = None, timepoints: dict | None = None) -> None:
    compile_roi_patterns(rois, roi_aliases)
    if mapping_file is not None and results_dir is not None:
        check_mapping_location(mapping_file, results_dir)
    cases: dict[str, inv.InventoryCase] = {}
    rules = discovery.SeriesRules.from_config(series_rules)
    timepoint_rules = TimepointRules.from_config(timepoints, rules.modalities[0] if rules.modalities else "CT")
    patient_ids: set[str] = set()
    if input_dir is not None:
        inventory = discovery.scan(input_dir, rules,
                                   centre_attribute=(roi_aliases or {}).get("attribute", ""))
        excluded = Counter(s.excluded for s in inventory.series if s.excluded)
        log.info("%d image series (%d selected), %d mask objects, %d unreadable and %d skipped files",
                 len(inventory.series), len(inventory.selected), len(inventory.masks), len(inventory.unreadable),
                 len(inventory.skipped))
        for reason, n in sorted(excluded.items()):
            log.info("excluded %d series: %s", n, reason)
        links = Counter(m.link_method for m in inventory.masks)
        log.info("mask links: %s", dict(sorted(links.items())))
        cases.update(cases_from_inventory(inventory, rois, key, dates, roi_aliases,
                                          missing_patient_id=missing_patient_id,
                                          timepoint_rules=timepoint_rules))
        patient_ids |= ({patient_key(s.patient_id, s.study_uid, s.series_uid) for s in inventory.series}
                        | {patient_key(m.patient_id, m.study_uid, m.series_uid) for m in inventory.masks})
        write_unreadable(inventory, inventory_path.parent / "unreadable.csv")
        for reason, n in sorted(Counter(u.reason for u in inventory.unreadable).items()):
            log.warning("unreadable: %d x %s (paths in %s)", n, reason.split(":")[0],
                        inventory_path.parent / "unreadable.csv")
    if input_manifest is not None:
        rows = read_input_manifest(input_manifest)
        for case_id, case in cases_from_manifest(rows, rois, key).items():
            if case_id in cases:
                raise ValueError("a patient of the input manifest is also in the DICOM input: give each patient once")
            cases[case_id] = case
        patient_ids |= {row["patient_id"].strip() for row in rows}
    if not any(case_id for case_id in cases):  # later rules would fail on an empty cohort, saying nothing useful
        raise ValueError(_nothing_found(input_dir, inventory if input_dir is not None else None))
    batches = assign_batches(cases, batch_size)
    inv.write(inventory_path, batches, {name: batch_fingerprint(batch) for name, batch in batches.items()})
    log.info("%d cases in %d batches", len(cases), len(batches))
    if mapping_file is not None:
        write_mapping(patient_ids, key, mapping_file)


def write_mapping(patient_ids: set[str], key: bytes, mapping_file: Path) -> None:
    """The data owner's re-identification table (case_id -> PatientID), only where the config says."""
    mapping_file.parent.mkdir(parents=True, exist_ok=True)
    with mapping_file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "patient_id"])
        writer.writerows((case_id_of(p, key), p) for p in sorted(patient_ids))


class ClinicalTableError(ValueError):
    """The clinical table cannot be used as it is (one-line message naming the rows)."""


def _rows_text(rows) -> str:
    rows = [int(r) + 2 for r in rows]  # 1-based file lines: the header is line 1
    return ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def checked_clinical(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Rows without a patient_id are dropped with a warning (they can be matched to nothing); a patient_id given
    on several rows is kept once when the rows agree and refused when they conflict (which outcome is true?)."""
    if "patient_id" not in table.columns:
        raise ClinicalTableError(f"{name} has no patient_id column (columns: {list(table.columns)})")
    ids = table["patient_id"].fillna("").astype(str).str.strip()
    empty = ids == ""
    if empty.any():
        log.warning("%s: %d row(s) without a patient_id ignored (lines %s)", name, int(empty.sum()),
                    _rows_text(table.index[empty]))
    table = table.loc[~empty].assign(patient_id=ids[~empty])
    repeated = table[table.duplicated("patient_id", keep=False)]
    if not repeated.empty:
        conflicting = [lines for _, group in repeated.groupby("patient_id", sort=False)
                       if len(group.drop_duplicates()) > 1 for lines in [list(group.index)]]
        if conflicting:
            raise ClinicalTableError(
                f"{name}: {len(conflicting)} patient_id(s) appear on several rows with different values (lines "
                f"{'; '.join(_rows_text(lines) for lines in conflicting[:5])}): keep one row per patient")
        log.warning("%s: %d identical duplicate row(s) kept once", name,
                    int(table.duplicated().sum()))
        table = table.drop_duplicates()
    return table


def pseudonymise_clinical(clinical_csv: Path, out: Path, key: bytes, keep: list[str] | None = None,
                          imaged_cases: set[str] | None = None) -> None:
    """The clinical table keyed by case_id instead of patient_id, rows checked by ``checked_clinical``, with only
    the columns in ``keep`` (None: every column) and never a column whose name looks identifying
    (radflow.clinical_columns). With ``imaged_cases`` (the discovered case_ids), the rows that match none are
    logged, with the ID variants that would match (``clinical_matching``)."""
    from radflow.clinical_columns import select_columns
    from radflow.pipeline.clinical_matching import unmatched_report

    dialect = csv_dialect.sniff(clinical_csv)
    table = pd.read_csv(clinical_csv, dtype={"patient_id": str}, **csv_dialect.pandas_options(dialect))
    table = table.dropna(how="all")  # empty lines, read as rows so that the index counts file lines (_rows_text)
    table.columns = [str(name).strip() for name in table.columns]  # "patient_id, outcome ": as read_rows names them
    table = checked_clinical(table, clinical_csv.name)
    if imaged_cases is not None:
        for message in unmatched_report(clinical_csv.name, list(table["patient_id"]), [int(i) + 2 for i in table.index],
                                        imaged_cases, lambda patient_id: case_id_of(patient_id, key)):
            log.warning("%s", message)
    selection = select_columns(list(table.columns), keep)
    summary = selection.summary(clinical_csv.name)
    if summary:
        log.warning("%s", summary)
    table = table[["patient_id", *selection.kept]]
    table.insert(0, "case_id", [case_id_of(p, key) for p in table.pop("patient_id")])
    table = table.drop(columns=[c for c in table.columns if c.lower() in IDENTIFYING_COLUMNS])
    out.parent.mkdir(parents=True, exist_ok=True)
    table.sort_values("case_id").to_parquet(out, index=False)
