"""The inventory (interim/inventory/<input key>.json): the contract between the ``discover`` rule, which writes it, and the
``ingest`` rule, which reads one batch of it.

Typed as JSON-shaped ``TypedDict``s: the file is exactly these mappings, so both case builders of ``discover`` (DICOM
tree and image/mask manifest) and the reader in ``ingest`` are checked against one definition (mypy) without a
conversion layer. It holds source paths, never PatientIDs (cases are pseudonyms, dates shifted or dropped).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, NotRequired, TypedDict


class Issue(TypedDict):
    """Why a scan cannot be read (a QC code of radflow.qc.CHECKS and a message)."""

    code: str
    message: str


class RoiError(TypedDict):
    roi: str
    code: str
    message: str  # reaches results: never the source's free-text label names
    labels: NotRequired[list[str]]  # ROI_NOT_FOUND: the labels there were (free text; stays in interim/)


class ScanWarning(TypedDict):
    """Something noticed at discovery (QC code, message, optional value); the scan is still read."""

    code: str
    message: str
    value: NotRequired[float | None]
    roi: NotRequired[str]  # set when the warning concerns one ROI (MASK_PARTLY_OUTSIDE)


class RoiSelection(TypedDict):
    """The mask label chosen for one configured ROI."""

    roi: str
    kind: str  # RTSTRUCT | SEG | FILE
    path: str
    label: str  # the source's label (free text, may name a person): stays in interim/
    label_id: NotRequired[str]  # its keyed id (DICOM masks), what results carry
    drawn_on: NotRequired[list[str]]  # the files of the series the mask was drawn on, when it is another series
    drawn_on_modality: NotRequired[str]  # (same frame of reference, other modality: a PET/CT's CT)
    drawn_on_sequence: NotRequired[str]  # its configured sequence, when it has one (a multiparametric MR's T2w)

class InventoryScan(TypedDict):
    scan: str  # test, retest, fu1, pt_test, ... (radflow.timepoints)
    source: Literal["dicom", "file"]
    modality: str
    sequence: NotRequired[str]  # radflow.sequences name ('' or absent: none)
    series_uid: str  # pseudonymised
    files: list[str]
    acquisition_datetime: str | None  # shifted per patient, or None
    timepoint: NotRequired[int | None]  # 0 = baseline; None when the scan has no date
    days_from_baseline: NotRequired[int | None]
    rois: list[RoiSelection]
    roi_errors: list[RoiError]
    error: Issue | None
    warnings: NotRequired[list[ScanWarning]]


class InventoryCase(TypedDict):
    case_id: str  # '' for the run-level checks (input that belongs to no case)
    scans: list[InventoryScan]
    checks: NotRequired[list[ScanWarning]]  # about the case as a whole: identity, unreadable input beside it


def write(path: Path, batches: dict[str, list[InventoryCase]], fingerprints: dict[str, str]) -> None:
    """``fingerprints``: per batch, a digest of what its jobs read (the workflow reruns a batch when it changes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"batches": batches, "fingerprints": fingerprints}, indent=1, sort_keys=True) + "\n")


def read_batch(path: Path, batch: str) -> list[InventoryCase]:
    batches: dict[str, list[InventoryCase]] = json.loads(Path(path).read_text())["batches"]
    return batches[batch]


def case_ids(path: Path) -> set[str]:
    """Every case_id of the inventory (the run-level pseudo-case '' left out)."""
    batches: dict[str, list[InventoryCase]] = json.loads(Path(path).read_text())["batches"]
    return {case["case_id"] for cases in batches.values() for case in cases if case["case_id"]}
