"""DICOM RTSTRUCT: ROI names, and one ROI's planar contours rasterised onto a reference image grid.

Rasterisation rule (chosen because it reproduces the IBSI CT phantom mask exactly, Dice 1.0 on 125,256 voxels):
a voxel belongs to the ROI when its **centre** lies inside the contour polygon of its slice. All closed contours of
one slice are filled together with the **even-odd rule**, so a contour inside another one is a hole (most treatment
planning systems export holes as separate contours) and separate contours are islands. A centre exactly on an edge
follows the usual scan-conversion convention (left/lower edges inside, right/upper edges outside), so two ROIs
sharing an edge never both claim a voxel.

Contours are matched to slices in index space: every contour point is mapped with the reference's origin, spacing
and direction, and a contour belongs to slice k when all its points lie within ``plane_tolerance_mm`` of plane k.
Points outside the image in-plane are clipped; contours on no image plane raise ``RtstructError``.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np
import pydicom
import SimpleITK as sitk

from radflow.dicom.deid import identifiers_unlogged

PLANE_TOLERANCE_MM = 0.1


class RtstructError(ValueError):
    """The RTSTRUCT or ROI cannot be rasterised on the reference; ``code`` is the QC code (ROI_NOT_FOUND,
    MASK_EMPTY, MASK_GEOMETRY, MASK_OUTSIDE_IMAGE, MASK_UNREADABLE), the message says why (shown in QC tables)."""

    def __init__(self, message: str, code: str = "MASK_UNREADABLE"):
        super().__init__(message)
        self.code = code


@identifiers_unlogged()
def roi_names(path: Path | str) -> list[str]:
    """Names of the ROIs (StructureSetROISequence) in file order."""
    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StructureSetROISequence", "Modality"])
    return [str(item.get("ROIName", "")) for item in ds.get("StructureSetROISequence", [])]


def roi_number(ds: pydicom.Dataset, roi_name: str) -> int:
    for item in ds.get("StructureSetROISequence", []):
        if str(item.get("ROIName", "")) == roi_name:
            return int(item.ROINumber)
    names = [str(item.get("ROIName", "")) for item in ds.get("StructureSetROISequence", [])]
    raise RtstructError(f"no ROI named {roi_name!r}; the structure set has {names}", "ROI_NOT_FOUND")


def contour_points(contour: pydicom.Dataset) -> np.ndarray:
    """ContourData as an (n, 3) float array in patient mm.

    Parsed straight from the raw decimal string when pydicom has not converted it yet: converting tens of thousands
    of DS values one by one costs ~20x more than the whole rest of the rasterisation.
    """
    element = contour.get_item("ContourData")
    if element is None:
        return np.empty((0, 3))
    raw = element.value
    if isinstance(raw, bytes | bytearray):
        text = raw.decode("ascii").strip(" \x00")
        values = np.array(text.split("\\"), dtype=np.float64) if text else np.empty(0)
    else:
        values = np.asarray(contour.ContourData, dtype=np.float64)
    if values.size % 3:
        raise RtstructError(f"ContourData holds {values.size} numbers, not a multiple of 3")
    return values.reshape(-1, 3)


def closed_contours(ds: pydicom.Dataset, number: int) -> list[np.ndarray]:
    """Closed planar contours of ROI ``number`` as (n, 3) arrays in patient mm.

    POINT and OPEN_PLANAR contours enclose no volume and are left out, as are contours of fewer than 3 points.
    """
    for item in ds.get("ROIContourSequence", []):
        if int(item.ReferencedROINumber) == number:
            contours = [contour_points(contour) for contour in item.get("ContourSequence", [])
                        if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")) == "CLOSED_PLANAR"]
            return [points for points in contours if len(points) >= 3]
    return []


def physical_to_index(points: np.ndarray, reference: sitk.Image) -> np.ndarray:
    """Patient-space points (n, 3) -> continuous (x, y, z) indices of ``reference`` (voxel centres are integers)."""
    origin = np.asarray(reference.GetOrigin())
    spacing = np.asarray(reference.GetSpacing())
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    to_index = np.linalg.inv(direction * spacing)  # direction @ diag(spacing) maps index steps to mm
    return (points - origin) @ to_index.T


def contours_by_slice(contours: Sequence[np.ndarray], reference: sitk.Image,
                      plane_tolerance_mm: float = PLANE_TOLERANCE_MM) -> dict[int, list[np.ndarray]]:
    """Group contours by the slice they lie on: {k: [(n, 2) arrays of (x, y) continuous indices]}."""
    slice_spacing = reference.GetSpacing()[2]
    n_slices = reference.GetSize()[2]
    planes: dict[int, list[np.ndarray]] = {}
    off_plane, outside = 0, 0
    for points in contours:
        index = physical_to_index(points, reference)
        k = int(round(float(index[:, 2].mean())))
        if np.abs(index[:, 2] - k).max() * slice_spacing > plane_tolerance_mm:
            off_plane += 1
        elif not 0 <= k < n_slices:
            outside += 1
        else:
            planes.setdefault(k, []).append(index[:, :2])
    if off_plane:
        raise RtstructError(f"{off_plane} contour(s) lie between image slices (more than {plane_tolerance_mm:g} mm "
                            "from any slice plane): drawn on another series or grid?", "MASK_GEOMETRY")
    if outside:
        raise RtstructError(f"{outside} contour(s) lie beyond the first or last image slice", "MASK_OUTSIDE_IMAGE")
    return planes


@numba.njit(cache=True, nogil=True)
def fill_even_odd(xs: np.ndarray, ys: np.ndarray, starts: np.ndarray, out: np.ndarray) -> None:
    """Set ``out[r, c] = 1`` where voxel centre (c, r) is inside the polygons by the even-odd rule.

    ``xs``/``ys`` hold the vertices of all polygons of one slice back to back; polygon p spans
    ``starts[p]:starts[p + 1]`` and is implicitly closed. Scanline fill: per row, the crossings of all edges with
    the row's centre line are sorted, and columns between crossing pairs [x0, x1) are set. An edge covers rows
    y with min(ya, yb) <= y < max(ya, yb), so a vertex on a row is counted once.
    """
    n_rows, n_cols = out.shape
    crossings = np.empty(xs.shape[0], dtype=np.float64)
    r_first = max(int(np.ceil(ys.min())), 0)
    r_last = min(int(np.floor(ys.max())), n_rows - 1)
    for r in range(r_first, r_last + 1):
        y = float(r)
        n = 0
        for p in range(starts.shape[0] - 1):
            begin, end = starts[p], starts[p + 1]
            for i in range(begin, end):
                j = i + 1 if i + 1 < end else begin
                ya, yb = ys[i], ys[j]
                if (ya <= y < yb) or (yb <= y < ya):
                    crossings[n] = xs[i] + (y - ya) * (xs[j] - xs[i]) / (yb - ya)
                    n += 1
        # insertion sort: a row crosses few edges
        for i in range(1, n):
            value = crossings[i]
            j = i - 1
            while j >= 0 and crossings[j] > value:
                crossings[j + 1] = crossings[j]
                j -= 1
            crossings[j + 1] = value
        for pair in range(0, n - 1, 2):
            c_first = max(int(np.ceil(crossings[pair])), 0)
            c_stop = min(int(np.ceil(crossings[pair + 1])), n_cols)
            for c in range(c_first, c_stop):
                out[r, c] = 1


def fill_slice(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of (x, y) index polygons on a (rows, columns) slice -> uint8 0/1."""
    out = np.zeros(shape, dtype=np.uint8)
    xs = np.concatenate([p[:, 0] for p in polygons])
    ys = np.concatenate([p[:, 1] for p in polygons])
    starts = np.cumsum([0] + [len(p) for p in polygons]).astype(np.int64)
    fill_even_odd(xs, ys, starts, out)
    return out


@identifiers_unlogged()
def rasterise(path: Path | str, roi_name: str, reference: sitk.Image,
              plane_tolerance_mm: float = PLANE_TOLERANCE_MM) -> sitk.Image:
    """ROI ``roi_name`` of the RTSTRUCT at ``path`` as a uint8 0/1 mask with the geometry of ``reference``."""
    ds = pydicom.dcmread(path)
    if str(ds.get("Modality", "")) != "RTSTRUCT":
        raise RtstructError(f"not an RTSTRUCT (Modality {ds.get('Modality', 'missing')})")
    contours = closed_contours(ds, roi_number(ds, roi_name))
    if not contours:
        raise RtstructError(f"ROI {roi_name!r} has no closed planar contours", "MASK_EMPTY")
    planes = contours_by_slice(contours, reference, plane_tolerance_mm)
    n_cols, n_rows, n_slices = reference.GetSize()
    mask = np.zeros((n_slices, n_rows, n_cols), dtype=np.uint8)
    for k, polygons in planes.items():
        mask[k] = fill_slice(polygons, (n_rows, n_cols))
    image = sitk.GetImageFromArray(mask)
    image.CopyInformation(reference)
    return image
