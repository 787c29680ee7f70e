"""DICOM RTSTRUCT: ROI names, and one ROI's planar contours rasterised onto a reference image grid.

Rasterisation rule (chosen because it reproduces the IBSI CT phantom mask exactly, Dice 1.0 on 125,256 voxels):
a voxel belongs to the ROI when its **centre** lies inside the contour polygon of its slice. All closed contours of
one slice are filled together with the **even-odd rule**, so a contour inside another one is a hole (most treatment
planning systems export holes as separate contours) and separate contours are islands. A centre exactly on an edge
follows the usual scan-conversion convention (left/lower edges inside, right/upper edges outside), so two ROIs
sharing an edge never both claim a voxel.

Contours are matched to slices in index space: every contour point is mapped with the reference's origin, spacing
and direction, and a contour belongs to slice k when all its points lie within ``plane_tolerance_mm`` of plane k.
Contours between slice planes raise ``RtstructError`` (MASK_GEOMETRY). The part of the ROI that lies outside the
image, in any direction (left/right, front/back or beyond the first/last slice), is measured: the voxel centres the
contours enclose on their own unclipped grid versus those inside the image. Above ``max_outside_fraction`` the ROI
is refused (MASK_OUTSIDE_IMAGE); below it, the mask keeps the part inside and the caller gets the fraction to warn.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pydicom
import SimpleITK as sitk

from radflow.dicom import files
from radflow.dicom.deid import identifiers_unlogged

PLANE_TOLERANCE_MM = 0.1
#: Default largest fraction of a ROI that may lie outside the image (config qc.mask_outside_tolerance).
MAX_OUTSIDE_FRACTION = 0.05
#: Contours whose own bounding box exceeds this many voxels are measured by their polygon area instead of filled.
MAX_FILL_CELLS = 1 << 26


class RtstructError(ValueError):
    """The RTSTRUCT or ROI cannot be rasterised on the reference; ``code`` is the QC code (ROI_NOT_FOUND,
    MASK_EMPTY, MASK_GEOMETRY, MASK_OUTSIDE_IMAGE, MASK_UNREADABLE), the message says why (shown in QC tables)."""

    def __init__(self, message: str, code: str = "MASK_UNREADABLE"):
        super().__init__(message)
        self.code = code


@identifiers_unlogged()
def roi_names(path: Path | str) -> list[str]:
    """Names of the ROIs (StructureSetROISequence) in file order."""
    ds = files.read(path, stop_before_pixels=True, specific_tags=["StructureSetROISequence", "Modality"])
    return [str(item.get("ROIName", "")) for item in ds.get("StructureSetROISequence", [])]


def roi_frame_of_reference(path: Path | str, roi_name: str) -> str | None:
    """The FrameOfReferenceUID ROI ``roi_name``'s contours are drawn in (StructureSetROISequence's
    ReferencedFrameOfReferenceUID; else the structure set's only referenced frame); None when the file does not
    say."""
    ds = files.read(path, stop_before_pixels=True,
                         specific_tags=["StructureSetROISequence", "ReferencedFrameOfReferenceSequence"])
    for item in ds.get("StructureSetROISequence", []):
        if str(item.get("ROIName", "")) == roi_name and item.get("ReferencedFrameOfReferenceUID"):
            return str(item.ReferencedFrameOfReferenceUID)
    frames = {str(item.FrameOfReferenceUID) for item in ds.get("ReferencedFrameOfReferenceSequence", [])
              if item.get("FrameOfReferenceUID")}
    return frames.pop() if len(frames) == 1 else None


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
    if not np.all(np.isfinite(values)):
        raise RtstructError(f"ContourData holds {int(np.count_nonzero(~np.isfinite(values)))} non-finite number(s) "
                            "(NaN or infinity): the contour cannot be placed")
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
    """Group contours by the slice plane they lie on: {k: [(n, 2) arrays of (x, y) continuous indices]}; k may lie
    outside 0..n_slices-1 (contours beyond the first or last slice, measured by ``outside_image``)."""
    slice_spacing = reference.GetSpacing()[2]
    planes: dict[int, list[np.ndarray]] = {}
    off_plane = 0
    for points in contours:
        index = physical_to_index(points, reference)
        k = int(round(float(index[:, 2].mean())))
        if np.abs(index[:, 2] - k).max() * slice_spacing > plane_tolerance_mm:
            off_plane += 1
        else:
            planes.setdefault(k, []).append(index[:, :2])
    if off_plane:
        raise RtstructError(f"{off_plane} contour(s) lie between image slices (more than {plane_tolerance_mm:g} mm "
                            "from any slice plane): drawn on another series or grid? (radflow extract --mask-image "
                            "names the series it was drawn on, a PET/CT's CT, and resamples the mask)", "MASK_GEOMETRY")
    return planes


@dataclass(frozen=True)
class OutsideImage:
    """How much of a ROI the image does not hold: enclosed voxel centres in total and per direction outside."""

    total: int
    outside: int
    directions: tuple[str, ...]  # e.g. ("x < 0", "z > last slice")

    @property
    def fraction(self) -> float:
        return self.outside / self.total if self.total else 0.0

    def describe(self) -> str:
        return (f"{100 * self.fraction:.3g}% of the ROI ({self.outside} of {self.total} enclosed voxel centres) lies "
                f"outside the image ({', '.join(self.directions)})")


def _enclosed_centres(polygons: Sequence[np.ndarray]) -> tuple[int, tuple[int, int, int, int], np.ndarray | None]:
    """(count, (x0, y0, x1, y1) box, filled box or None) of the voxel centres the polygons enclose (even-odd),
    filled on the polygons' own grid; a huge box is measured by polygon area instead (no fill returned)."""
    xs = np.concatenate([p[:, 0] for p in polygons])
    ys = np.concatenate([p[:, 1] for p in polygons])
    x0, y0 = int(np.floor(xs.min())), int(np.floor(ys.min()))
    x1, y1 = int(np.ceil(xs.max())) + 1, int(np.ceil(ys.max())) + 1
    if (x1 - x0) * (y1 - y0) > MAX_FILL_CELLS:
        area = sum(abs(0.5 * float(np.dot(p[:, 0], np.roll(p[:, 1], 1)) - np.dot(p[:, 1], np.roll(p[:, 0], 1))))
                   for p in polygons)
        return int(round(area)), (x0, y0, x1, y1), None
    shifted = [p - np.array([x0, y0]) for p in polygons]
    filled = fill_slice(shifted, (y1 - y0, x1 - x0))
    return int(np.count_nonzero(filled)), (x0, y0, x1, y1), filled


def outside_image(planes: dict[int, list[np.ndarray]], size_xyz: tuple[int, int, int]) -> OutsideImage:
    """The ROI's enclosed voxel centres outside the image grid, in every direction."""
    n_cols, n_rows, n_slices = size_xyz
    total = outside = 0
    directions: dict[str, None] = {}
    for k, polygons in sorted(planes.items()):
        count, (x0, y0, x1, y1), filled = _enclosed_centres(polygons)
        total += count
        if not 0 <= k < n_slices:
            outside += count
            if count:
                directions["z < first slice" if k < 0 else "z > last slice"] = None
            continue
        if filled is None:  # measured by area: the image's share of the box, in proportion
            xa, xb, ya, yb = max(x0, 0), min(x1, n_cols), max(y0, 0), min(y1, n_rows)
            inside = count * max(xb - xa, 0) * max(yb - ya, 0) // max((x1 - x0) * (y1 - y0), 1)
        else:
            inside = int(np.count_nonzero(filled[max(-y0, 0):n_rows - y0, max(-x0, 0):n_cols - x0]))
        outside += count - inside
        if count > inside:
            for name, beyond in (("x < 0", x0 < 0), ("x > last column", x1 - 1 > n_cols - 1),
                                 ("y < 0", y0 < 0), ("y > last row", y1 - 1 > n_rows - 1)):
                if beyond:
                    directions[name] = None
    return OutsideImage(total, outside, tuple(directions))


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
def rasterise_roi(path: Path | str, roi_name: str, reference: sitk.Image,
                  plane_tolerance_mm: float = PLANE_TOLERANCE_MM,
                  max_outside_fraction: float = MAX_OUTSIDE_FRACTION) -> tuple[sitk.Image, OutsideImage]:
    """ROI ``roi_name`` of the RTSTRUCT at ``path`` as a uint8 0/1 mask with the geometry of ``reference``, and how
    much of it lies outside the image (refused with MASK_OUTSIDE_IMAGE above ``max_outside_fraction``)."""
    try:
        ds = files.read(path)
    except Exception as exc:
        raise RtstructError(f"the RTSTRUCT file cannot be parsed as DICOM ({type(exc).__name__})") from exc
    if str(ds.get("Modality", "")) != "RTSTRUCT":
        raise RtstructError(f"not an RTSTRUCT (Modality {ds.get('Modality', 'missing')})")
    contours = closed_contours(ds, roi_number(ds, roi_name))
    if not contours:
        raise RtstructError(f"ROI {roi_name!r} has no closed planar contours", "MASK_EMPTY")
    planes = contours_by_slice(contours, reference, plane_tolerance_mm)
    n_cols, n_rows, n_slices = reference.GetSize()
    outside = outside_image(planes, (n_cols, n_rows, n_slices))
    if outside.outside and outside.fraction > max_outside_fraction:
        raise RtstructError(f"{outside.describe()}: more than the tolerated {100 * max_outside_fraction:g}%",
                            "MASK_OUTSIDE_IMAGE")
    mask = np.zeros((n_slices, n_rows, n_cols), dtype=np.uint8)
    for k, polygons in planes.items():
        if 0 <= k < n_slices:
            mask[k] = fill_slice(polygons, (n_rows, n_cols))
    image = sitk.GetImageFromArray(mask)
    image.CopyInformation(reference)
    return image, outside


def rasterise(path: Path | str, roi_name: str, reference: sitk.Image,
              plane_tolerance_mm: float = PLANE_TOLERANCE_MM,
              max_outside_fraction: float = MAX_OUTSIDE_FRACTION) -> sitk.Image:
    """ROI ``roi_name`` of the RTSTRUCT at ``path`` as a uint8 0/1 mask with the geometry of ``reference``."""
    return rasterise_roi(path, roi_name, reference, plane_tolerance_mm, max_outside_fraction)[0]
