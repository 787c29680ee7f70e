"""The inventory (interim/inventory.json): the contract between the ``discover`` rule, which writes it, and the
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
    message: str


class ScanWarning(TypedDict):
    """Something noticed at discovery (QC code, message, optional value); the scan is still read."""

    code: str
    message: str
    value: NotRequired[float | None]


class RoiSelection(TypedDict):
    """The mask label chosen for one configured ROI."""

    roi: str
    kind: str  # RTSTRUCT | SEG | FILE
    path: str
    label: str


class InventoryScan(TypedDict):
    scan: str  # test, retest, scan3, ...
    source: Literal["dicom", "file"]
    modality: str
    series_uid: str  # pseudonymised
    files: list[str]
    acquisition_datetime: str | None  # shifted per patient, or None
    rois: list[RoiSelection]
    roi_errors: list[RoiError]
    error: Issue | None
    warnings: NotRequired[list[ScanWarning]]


class InventoryCase(TypedDict):
    case_id: str
    scans: list[InventoryScan]


def write(path: Path, batches: dict[str, list[InventoryCase]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"batches": batches}, indent=1, sort_keys=True) + "\n")


def read_batch(path: Path, batch: str) -> list[InventoryCase]:
    batches: dict[str, list[InventoryCase]] = json.loads(Path(path).read_text())["batches"]
    return batches[batch]
