"""The per-batch ingest manifest: what ingest read for each case and scan, and where it wrote the volumes.

JSON, paths relative to the manifest's folder, no identifiers (case ids are pseudonyms, series UIDs remapped).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, TypedDict

from radflow.inventory import RoiError, ScanWarning

ScanStatus = Literal["ok", "fail"]  # whether ingest read the scan (its QC verdict is qc.Severity)


class ScanMeta(TypedDict, total=False):
    """Pseudonymised acquisition metadata of a scan (the scans table's columns come from here)."""

    series_uid: str | None  # remapped
    modality: str | None
    sequence: str | None  # radflow.sequences: t2w, adc, ... (None: none configured or matched)
    acquisition_datetime: str | None  # shifted per patient, or None
    timepoint: int | None  # radflow.timepoints
    days_from_baseline: int | None
    suv_factor: float  # PET: Bq/ml -> SUVbw (interim only: with a protocol dose it reveals the weight)
    pixel_padding: list[float]  # [low, high] after rescale: outside the reconstruction field (DICOM PixelPaddingValue)
    manufacturer: str | None
    convolution_kernel: str | None
    kvp: float | None
    n_slices: int
    spacing_mm: list[float]  # (x, y, z)
    roi_voxels: dict[str, int]


@dataclass
class MaskEntry:
    roi: str
    source: str  # RTSTRUCT | SEG
    source_roi_name: str
    path: str = ""
    sha256: str = ""


@dataclass
class ScanEntry:
    case_id: str
    scan: str  # test | retest | scan3 ...
    status: ScanStatus = "ok"  # fail: the scan could not be read (error_code says why)
    modality: str = ""
    error_code: str = ""
    error_message: str = ""
    image: str = ""
    image_sha256: str = ""
    meta: ScanMeta = field(default_factory=lambda: ScanMeta())
    masks: list[MaskEntry] = field(default_factory=list)
    roi_errors: list[RoiError] = field(default_factory=list)
    warnings: list[ScanWarning] = field(default_factory=list)  # read, but noticed


@dataclass
class Manifest:
    batch: str
    scans: list[ScanEntry]
    folder: Path = field(default=Path("."), compare=False)
    # case_id -> checks discovery made about the case as a whole ({"code", "message", "value"}); case_id '' holds
    # the run-level checks (input that belongs to no case)
    case_checks: dict[str, list[ScanWarning]] = field(default_factory=dict)

    def path_of(self, relative: str) -> Path:
        return self.folder / relative

    def write(self, path: Path) -> None:
        doc = {"batch": self.batch, "scans": [asdict(s) for s in self.scans], "case_checks": self.case_checks}
        path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        doc = json.loads(Path(path).read_text())
        scans = []
        for s in doc["scans"]:
            masks = [MaskEntry(**m) for m in s.pop("masks")]
            scans.append(ScanEntry(**s, masks=masks))
        return cls(doc["batch"], scans, Path(path).parent, doc.get("case_checks", {}))
