"""Pipeline rule `qc`: check every scan and mask of a batch; write the batch's cases/scans/masks/qc tables and its
overlay contact sheet.

Per scan: ingest's verdict (the specific code of what stopped reading, or SERIES_READ plus the warnings noticed
while reading), the intensity plausibility for the modality, then the mask checks of every ROI. Per case: the
retest check and the case status. A scan whose QC itself raises is recorded as QC_ERROR; the batch goes on.
"""
from __future__ import annotations

import logging
import math
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from radflow import io, qc, store
from radflow.inventory import ScanWarning
from radflow.manifest import Manifest, ScanEntry
from radflow.overlay import OverlayRow, contact_sheet, overlay_row

log = logging.getLogger(__name__)


# The rows of the four tables this rule writes: fields named and ordered as radflow.store.SCHEMA's columns
# (tests/test_qc.py keeps them so); rows are written by column name.
@dataclass(frozen=True)
class CaseRow:
    case_id: str
    n_scans: int
    status: qc.Severity


@dataclass(frozen=True)
class ScanRow:
    case_id: str
    scan: str
    series_uid: str | None
    modality: str | None
    manufacturer: str | None
    convolution_kernel: str | None
    kvp: float | None
    n_slices: int | None
    spacing_x: float | None
    spacing_y: float | None
    spacing_z: float | None
    image_sha256: str | None
    status: qc.Severity
    acquisition_datetime: str | None
    timepoint: int | None = None  # radflow.timepoints: 0 = baseline
    days_from_baseline: int | None = None
    intensity_unit: str | None = None  # HU, SUVbw, arbitrary
    sequence: str | None = None  # radflow.sequences


@dataclass(frozen=True)
class MaskRow:
    case_id: str
    scan: str
    roi: str
    source: str
    source_roi_name: str
    voxel_count: int
    volume_mm3: float | None
    mask_sha256: str


@dataclass(frozen=True)
class QCRow:
    case_id: str
    scan: str
    roi: str
    check_code: str
    severity: qc.Severity
    message: str
    value: float | None

    @classmethod
    def of(cls, case_id: str, scan: str, result: qc.QCResult) -> QCRow:
        return cls(case_id, scan, result.roi, result.code, result.severity, result.message, result.value)


TABLE_ROWS = {"cases": CaseRow, "scans": ScanRow, "masks": MaskRow, "qc": QCRow}


def ingest_results(scan: ScanEntry) -> list[qc.QCResult]:
    """What ingest found: one failure with its code, or SERIES_READ and the warnings, plus ROI-level errors."""
    warnings = [qc.QCResult(w["code"], qc.CHECKS.get(w["code"], (qc.WARN, ""))[0], w["message"], w.get("value"),
                            w.get("roi", ""))
                for w in scan.warnings]
    if scan.status != "ok":
        return [qc.QCResult(scan.error_code, qc.FAIL, scan.error_message), *warnings]
    results = [qc.result("SERIES_READ", True, "series read: geometry and slice spacing consistent"), *warnings]
    results += [qc.QCResult(e["code"], qc.FAIL, e["message"], roi=e["roi"]) for e in scan.roi_errors]
    return results


def check_scan(manifest: Manifest, scan: ScanEntry, thresholds: qc.Thresholds,
               overlays: list[OverlayRow] | None = None) -> list[qc.QCResult]:
    """All QC results of one scan; appends its overlay rows to ``overlays`` when given."""
    results = ingest_results(scan)
    if scan.status != "ok":
        return results
    image = io.read_volume(manifest.path_of(scan.image))
    image_array = sitk.GetArrayViewFromImage(image)
    modality = scan.meta.get("modality") or scan.modality
    padding = scan.meta.get("pixel_padding")
    intensity = qc.intensity_plausible(image_array, modality, thresholds,
                                       None if padding is None else (padding[0], padding[1]))
    if intensity is not None:
        results.append(intensity)
    for mask_entry in scan.masks:
        mask = sitk.ReadImage(str(manifest.path_of(mask_entry.path)))
        roi_results = qc.check_roi(image, mask, mask_entry.roi, thresholds.min_roi_volume_mm3,
                                   thresholds.geometry_tolerance_mm)
        results += roi_results
        if overlays is not None:
            relevant = [r for r in results if r.roi in ("", mask_entry.roi)]
            title = f"{scan.case_id}  {scan.scan}  {mask_entry.roi}"
            if roi_results[0].severity == qc.FAIL:  # not on the image grid: nothing to draw
                overlays.append(OverlayRow(title, qc.worst(relevant), _note(relevant)))
            else:
                overlays.append(overlay_row(title, qc.worst(relevant), _note(relevant), image_array,
                                            sitk.GetArrayViewFromImage(mask), tuple(image.GetSpacing()[::-1]),
                                            modality or ""))
    return results


def _note(results: list[qc.QCResult]) -> str:
    """The codes that did not pass, with the first message, for an overlay row."""
    bad = [r for r in results if r.severity != qc.PASS]
    if not bad:
        return ""
    first = bad[0].message if len(bad[0].message) <= 170 else bad[0].message[:167] + "..."
    return ", ".join(dict.fromkeys(r.code for r in bad)) + f"\n{first}"


def intensity_unit(scan: ScanEntry) -> str | None:
    """HU for CT, SUVbw for PET (ingest converted it), arbitrary otherwise; None for a scan never read or a PET
    image file (its unit is unknown). The SUV factor itself stays in the interim manifest: with a protocol dose it
    would reveal the patient's weight."""
    if scan.status != "ok":
        return None
    if "suv_factor" in scan.meta:
        return "SUVbw"
    modality = scan.meta.get("modality") or scan.modality
    # a PET image file of the input manifest arrives in whatever unit it was saved in: unknown
    return {"CT": "HU", "MR": "arbitrary", "PT": None}.get(modality, "arbitrary")


def scan_status(scan: ScanEntry, results: list[qc.QCResult]) -> qc.Severity:
    """fail when a scan-level check failed or no ROI is usable; else the worst severity."""
    scan_level = [r for r in results if not r.roi]
    roi_failed = {r.roi for r in results if r.roi and r.severity == qc.FAIL}
    usable = {m.roi for m in scan.masks} - roi_failed
    if qc.worst(scan_level) == qc.FAIL or not usable:
        return qc.FAIL
    return qc.worst(results)


def case_status(scan_statuses: list[qc.Severity], retest_severity: qc.Severity,
                case_severities: tuple[qc.Severity, ...] = ()) -> qc.Severity:
    """fail when no scan is usable or a case-level check failed; warn when some scan failed or warned, the retest
    is missing or a case-level check warned; else pass."""
    if all(status == qc.FAIL for status in scan_statuses) or qc.FAIL in case_severities:
        return qc.FAIL
    if (any(status != qc.PASS for status in scan_statuses) or retest_severity != qc.PASS
            or qc.WARN in case_severities):
        return qc.WARN
    return qc.PASS


def case_results(checks: list[ScanWarning]) -> list[qc.QCResult]:
    """Discovery's checks of a case as a whole (identity, unreadable input beside it)."""
    return [qc.QCResult(c["code"], qc.CHECKS.get(c["code"], (qc.WARN, ""))[0], c["message"], c.get("value"))
            for c in checks]


def failure_rows(scan: ScanEntry, results: list[qc.QCResult], status: str) -> list[OverlayRow]:
    """Overlay rows for a scan without pictures (failed reading) and for ROIs that never became a mask."""
    rows = []
    title = f"{scan.case_id}  {scan.scan}"
    if scan.status != "ok":
        rows.append(OverlayRow(title=title, status=status, note=_note(results)))
        return rows
    for r in results:
        if r.roi and r.severity == qc.FAIL and r.roi not in {m.roi for m in scan.masks}:
            rows.append(OverlayRow(title=f"{title}  {r.roi}", status=qc.FAIL, note=_note([r])))
    return rows


def qc_batch(manifest_path: Path, outdir: Path, thresholds: qc.Thresholds | None = None,
             overlay_png: Path | None = None) -> None:
    thresholds = thresholds or qc.Thresholds()
    manifest = Manifest.read(manifest_path)
    qc_rows: list[QCRow] = []
    scan_rows: list[ScanRow] = []
    mask_rows: list[MaskRow] = []
    case_rows: list[CaseRow] = []
    overlay_rows: list[OverlayRow] = []
    by_case: dict[str, list[ScanEntry]] = {}
    for scan in manifest.scans:
        by_case.setdefault(scan.case_id, []).append(scan)
    # run-level checks (input that belongs to no case): qc rows only, no case
    qc_rows += [QCRow.of("", "", r) for r in case_results(manifest.case_checks.get("", []))]
    for case_id, scans in sorted(by_case.items()):
        scan_statuses = []
        for scan in scans:
            pictures: list[OverlayRow] = []
            try:
                results = check_scan(manifest, scan, thresholds, pictures)
            except Exception as exc:  # QC of one scan must not stop the batch
                log.warning("QC of %s/%s raised %s", case_id, scan.scan, type(exc).__name__)
                results = [qc.result("QC_ERROR", False, f"QC raised {type(exc).__name__}")]
                pictures = []
            status = scan_status(scan, results)
            scan_statuses.append(status)
            overlay_rows += pictures + failure_rows(scan, results, status)
            qc_rows += [QCRow.of(case_id, scan.scan, r) for r in results]
            meta = scan.meta
            spacing_mm = meta.get("spacing_mm")
            spacing: list[float | None] = list(spacing_mm) if spacing_mm else [None, None, None]
            scan_rows.append(ScanRow(
                case_id, scan.scan, meta.get("series_uid"), meta.get("modality"), meta.get("manufacturer"),
                meta.get("convolution_kernel"), meta.get("kvp"), meta.get("n_slices"),
                spacing_x=spacing[0], spacing_y=spacing[1], spacing_z=spacing[2],
                image_sha256=scan.image_sha256 or None, status=status,
                acquisition_datetime=meta.get("acquisition_datetime"), timepoint=meta.get("timepoint"),
                days_from_baseline=meta.get("days_from_baseline"), intensity_unit=intensity_unit(scan),
                sequence=meta.get("sequence") or None,
            ))
            for m in scan.masks:
                count = int(meta.get("roi_voxels", {}).get(m.roi, 0))
                volume = count * math.prod(spacing_mm) if spacing_mm else None
                mask_rows.append(MaskRow(case_id, scan.scan, m.roi, m.source, m.source_roi_name, count, volume,
                                         m.sha256))
        whole_case = case_results(manifest.case_checks.get(case_id, []))
        qc_rows += [QCRow.of(case_id, "", r) for r in whole_case]
        retest_severity = qc.PASS
        if not all(s.status != "ok" and s.error_code in qc.DISCOVERY_FAILURES for s in scans):
            retest = qc.retest_present({s.scan for s in scans})
            qc_rows.append(QCRow.of(case_id, "", retest))
            retest_severity = retest.severity
        case_rows.append(CaseRow(case_id, len(scans), case_status(scan_statuses, retest_severity,
                                                                  tuple(r.severity for r in whole_case))))

    outdir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, list] = {"cases": case_rows, "scans": scan_rows, "masks": mask_rows, "qc": qc_rows}
    for name, rows in tables.items():
        names = [f.name for f in fields(TABLE_ROWS[name])]
        frame = pd.DataFrame([astuple(row) for row in rows], columns=names) if rows else store.empty_frame(name)
        frame[store.columns(name)].to_parquet(outdir / f"{name}.parquet", index=False)
    if overlay_png is not None:
        contact_sheet(overlay_rows, overlay_png, title=f"batch {manifest.batch}: mask contours (red) on the image")
