"""Pipeline rule `qc`: check every scan and mask of a batch and write the batch's cases/scans/masks/qc tables."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import SimpleITK as sitk

from radflow import qc, store
from radflow.manifest import Manifest, ScanEntry


def check_scan(manifest: Manifest, scan: ScanEntry, min_roi_volume_mm3: float) -> list[qc.QCResult]:
    """Ingest's verdict (series geometry, slice spacing, masks found), then the mask checks of every ROI."""
    if scan.status != "ok":
        return [qc.QCResult(scan.error_code, qc.FAIL, scan.error_message)]
    results = [qc.QCResult("SERIES_READ", qc.PASS, "series read: geometry and slice spacing consistent")]
    results += [qc.QCResult(e["code"], qc.FAIL, e["message"], roi=e["roi"]) for e in scan.roi_errors]
    image = sitk.ReadImage(str(manifest.path_of(scan.image)))
    for mask_entry in scan.masks:
        mask = sitk.ReadImage(str(manifest.path_of(mask_entry.path)))
        results += qc.check_roi(image, mask, mask_entry.roi, min_roi_volume_mm3)
    return results


def retest_present(case_scans: list[ScanEntry]) -> qc.QCResult:
    """RETEST_MISSING: test-retest stability needs a second scan (warning: the case still gives features)."""
    names = {s.scan for s in case_scans}
    if "retest" in names:
        return qc.QCResult("RETEST_MISSING", qc.PASS, "retest scan present")
    return qc.QCResult("RETEST_MISSING", qc.WARN, "no retest scan for this case")


def case_status(scan_statuses: list[str], retest_severity: str) -> str:
    """fail when no scan is usable; warn when some scan failed or warned or the retest is missing; else pass."""
    if all(status == qc.FAIL for status in scan_statuses):
        return qc.FAIL
    if any(status != qc.PASS for status in scan_statuses) or retest_severity != qc.PASS:
        return qc.WARN
    return qc.PASS


def qc_batch(manifest_path: Path, outdir: Path, min_roi_volume_mm3: float) -> None:
    manifest = Manifest.read(manifest_path)
    qc_rows, scan_rows, mask_rows, case_rows = [], [], [], []
    by_case: dict[str, list[ScanEntry]] = {}
    for scan in manifest.scans:
        by_case.setdefault(scan.case_id, []).append(scan)
    for case_id, scans in sorted(by_case.items()):
        case_results = []
        for scan in scans:
            results = check_scan(manifest, scan, min_roi_volume_mm3)
            scan_level = [r for r in results if not r.roi]
            roi_usable = {m.roi for m in scan.masks} - {r.roi for r in results if r.roi and r.severity == qc.FAIL}
            status = qc.FAIL if qc.worst(scan_level) == qc.FAIL or not roi_usable else qc.worst(results)
            case_results.append(status)
            qc_rows += [(case_id, scan.scan, r.roi, r.code, r.severity, r.message, r.value) for r in results]
            meta = scan.meta
            spacing = meta.get("spacing_mm", [None, None, None])
            scan_rows.append((
                case_id, scan.scan, meta.get("series_uid"), meta.get("modality"), meta.get("manufacturer"),
                meta.get("convolution_kernel"), meta.get("kvp"), meta.get("n_slices"), *spacing,
                scan.image_sha256, status,
            ))
            for m in scan.masks:
                count = int(meta.get("roi_voxels", {}).get(m.roi, 0))
                volume = count * math.prod(spacing) if None not in spacing else None
                mask_rows.append((case_id, scan.scan, m.roi, m.source, m.source_roi_name, count, volume, m.sha256))
        retest = retest_present(scans)
        qc_rows.append((case_id, "", "", retest.code, retest.severity, retest.message, retest.value))
        case_rows.append((case_id, len(scans), case_status(case_results, retest.severity)))

    outdir.mkdir(parents=True, exist_ok=True)
    tables = {"cases": case_rows, "scans": scan_rows, "masks": mask_rows, "qc": qc_rows}
    for name, rows in tables.items():
        frame = pd.DataFrame(rows, columns=store.columns(name)) if rows else store.empty_frame(name)
        frame.to_parquet(outdir / f"{name}.parquet", index=False)
