"""DICOM SEG (binary, fractional and label-map segmentations): segment labels, and one segment on a reference grid.

Read with pydicom directly (the SEG is a multi-frame image whose frames each carry one segment on one plane).
Each frame is placed on the reference image by its PlanePositionSequence (or, when a SEG omits plane positions,
by the position of the source image it was derived from, looked up in ``source_files``). The SEG grid must be the
reference grid up to whole-voxel in-plane offsets: same orientation and pixel spacing, frame origins on voxel
centres; anything else is refused (resampling a mask silently would change the ROI).

Fractional segments are thresholded at ``fraction_threshold`` × MaximumFractionalValue (default 0.5, the IBSI
partial-volume convention); the result is always a uint8 0/1 mask.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from radflow.dicom import files
from radflow.dicom.deid import identifiers_unlogged
from radflow.dicom.rtstruct import MAX_OUTSIDE_FRACTION, OutsideImage
from radflow.dicom.series import functional_group_item as _functional

PLANE_TOLERANCE_MM = 0.1
ORIENTATION_TOLERANCE = 1e-4


class SegError(ValueError):
    """The SEG or segment cannot be placed on the reference; ``code`` is the QC code (ROI_NOT_FOUND,
    MASK_GEOMETRY, MASK_OUTSIDE_IMAGE, MASK_UNREADABLE), the message says why (shown in QC tables)."""

    def __init__(self, message: str, code: str = "MASK_UNREADABLE"):
        super().__init__(message)
        self.code = code


@identifiers_unlogged()
def segment_labels(path: Path | str) -> list[str]:
    """SegmentLabel of every segment, in SegmentSequence order (segment numbers 1..n in most files)."""
    ds = files.read(path, stop_before_pixels=True, specific_tags=["SegmentSequence"])
    return [str(item.get("SegmentLabel", "")) for item in ds.get("SegmentSequence", [])]


def frame_of_reference(path: Path | str) -> str | None:
    """The SEG's FrameOfReferenceUID (the patient coordinates of its frames); None when it has none."""
    ds = files.read(path, stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"])
    return str(ds.FrameOfReferenceUID) if ds.get("FrameOfReferenceUID") else None


def segment_number(ds: pydicom.Dataset, label: str) -> int:
    numbers = [int(item.SegmentNumber) for item in ds.get("SegmentSequence", [])
               if str(item.get("SegmentLabel", "")) == label]
    if not numbers:
        labels = [str(item.get("SegmentLabel", "")) for item in ds.get("SegmentSequence", [])]
        raise SegError(f"no segment labelled {label!r}; the SEG has {labels}", "ROI_NOT_FOUND")
    if len(numbers) > 1:
        raise SegError(f"{len(numbers)} segments are labelled {label!r}")
    return numbers[0]


def frame_segment_numbers(ds: pydicom.Dataset, n_frames: int) -> np.ndarray:
    """Segment number of each frame (0 for label maps, whose frames hold all segments)."""
    if str(ds.get("SegmentationType", "")) == "LABELMAP":
        return np.zeros(n_frames, dtype=np.int64)
    numbers = np.empty(n_frames, dtype=np.int64)
    for f in range(n_frames):
        item = _functional(ds, f, "SegmentIdentificationSequence")
        if item is None:
            raise SegError(f"frame {f + 1} names no segment (SegmentIdentificationSequence missing)")
        numbers[f] = int(item.ReferencedSegmentNumber)
    return numbers


def source_positions(source_files: Sequence[Path | str]) -> dict[str, np.ndarray]:
    """SOPInstanceUID -> ImagePositionPatient of the source images (headers only)."""
    positions = {}
    for path in source_files:
        ds = files.read(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID", "ImagePositionPatient"])
        if "ImagePositionPatient" in ds:
            positions[str(ds.SOPInstanceUID)] = np.asarray([float(v) for v in ds.ImagePositionPatient])
    return positions


def frame_positions(ds: pydicom.Dataset, n_frames: int,
                    source_files: Sequence[Path | str] | None) -> np.ndarray:
    """(n_frames, 3) ImagePositionPatient of each frame, from the plane positions or the source images."""
    positions = np.empty((n_frames, 3), dtype=np.float64)
    by_uid: dict[str, np.ndarray] | None = None
    for f in range(n_frames):
        plane = _functional(ds, f, "PlanePositionSequence")
        if plane is not None and "ImagePositionPatient" in plane:
            positions[f] = [float(v) for v in plane.ImagePositionPatient]
            continue
        derivation = _functional(ds, f, "DerivationImageSequence")
        sources = derivation.get("SourceImageSequence", []) if derivation is not None else []
        if not sources:
            raise SegError(f"frame {f + 1} has neither a plane position nor a source image reference")
        if by_uid is None:
            if not source_files:
                raise SegError("the SEG has no plane positions: pass the source image files to place its frames")
            by_uid = source_positions(source_files)
        uid = str(sources[0].ReferencedSOPInstanceUID)
        if uid not in by_uid:
            raise SegError(f"frame {f + 1} references a source image that is not among the source files")
        positions[f] = by_uid[uid]
    return positions


def check_same_plane(ds: pydicom.Dataset, reference: sitk.Image) -> None:
    """The SEG frames share the reference's in-plane orientation and pixel spacing."""
    orientation = _functional(ds, 0, "PlaneOrientationSequence")
    measures = _functional(ds, 0, "PixelMeasuresSequence")
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    if orientation is not None:
        iop = np.asarray([float(v) for v in orientation.ImageOrientationPatient])
        if (np.abs(iop[:3] - direction[:, 0]).max() > ORIENTATION_TOLERANCE
                or np.abs(iop[3:] - direction[:, 1]).max() > ORIENTATION_TOLERANCE):
            raise SegError("the SEG frames are not oriented like the reference image", "MASK_GEOMETRY")
    if measures is not None and "PixelSpacing" in measures:
        spacing_yx = [float(v) for v in measures.PixelSpacing]
        if not np.allclose(spacing_yx, reference.GetSpacing()[1::-1], rtol=0, atol=1e-4):
            raise SegError(f"SEG pixel spacing {spacing_yx} mm differs from the reference's "
                           f"{list(reference.GetSpacing()[1::-1])} mm", "MASK_GEOMETRY")


def frame_masks(ds: pydicom.Dataset, number: int, fraction_threshold: float) -> np.ndarray:
    """(n_frames, rows, columns) bool: where each frame marks segment ``number``."""
    if "PixelData" not in ds:
        raise SegError("the SEG has no pixel data (no frames)", "MASK_UNREADABLE")
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 0)
    except (TypeError, ValueError):
        raise SegError(f"NumberOfFrames {ds.get('NumberOfFrames')!r} is not a number", "MASK_UNREADABLE") from None
    if n_frames < 1:
        raise SegError(f"the SEG has zero frames (NumberOfFrames {ds.get('NumberOfFrames')}): no segment can be "
                       "read from it", "MASK_UNREADABLE")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # wrong Rows/Columns/NumberOfFrames for the data, undecodable syntax, ...
        raise SegError(f"SEG pixel data cannot be decoded ({type(exc).__name__}): Rows, Columns and NumberOfFrames "
                       "do not match the pixel data, or the transfer syntax has no decoder", "MASK_UNREADABLE") from exc
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    seg_type = str(ds.get("SegmentationType", "BINARY"))
    if seg_type == "FRACTIONAL":
        maximum = float(ds.get("MaximumFractionalValue", 255))
        return pixels.astype(np.float64) >= fraction_threshold * maximum
    if seg_type == "LABELMAP":
        return pixels == number
    return pixels != 0


@identifiers_unlogged()
def read_segment_roi(path: Path | str, label: str, reference: sitk.Image,
                     source_files: Sequence[Path | str] | None = None, fraction_threshold: float = 0.5,
                     plane_tolerance_mm: float = PLANE_TOLERANCE_MM,
                     max_outside_fraction: float = MAX_OUTSIDE_FRACTION) -> tuple[sitk.Image, OutsideImage]:
    """Segment ``label`` of the SEG at ``path`` as a uint8 0/1 mask on the grid of ``reference``, and how much of
    it lies outside the image (refused with MASK_OUTSIDE_IMAGE above ``max_outside_fraction``)."""
    try:
        ds = files.read(path)
    except Exception as exc:
        raise SegError(f"the SEG file cannot be parsed as DICOM ({type(exc).__name__})") from exc
    if str(ds.get("Modality", "")) != "SEG":
        raise SegError(f"not a SEG (Modality {ds.get('Modality', 'missing')})")
    number = segment_number(ds, label)
    check_same_plane(ds, reference)
    masks = frame_masks(ds, number, fraction_threshold)
    n_frames = masks.shape[0]
    segment_of_frame = frame_segment_numbers(ds, n_frames)
    wanted = np.flatnonzero((segment_of_frame == number) | (segment_of_frame == 0))
    n_cols, n_rows, n_slices = reference.GetSize()
    out = np.zeros((n_slices, n_rows, n_cols), dtype=np.uint8)
    if wanted.size == 0:  # highdicom omits empty frames: a segment may legitimately have none
        return _as_image(out, reference), OutsideImage(0, 0, ())
    positions = frame_positions(ds, n_frames, source_files)[wanted]
    origin = np.asarray(reference.GetOrigin())
    spacing = np.asarray(reference.GetSpacing())
    direction = np.asarray(reference.GetDirection()).reshape(3, 3)
    index = (positions - origin) @ np.linalg.inv(direction * spacing).T  # continuous (x, y, z) of frame origins
    nearest = np.round(index).astype(np.int64)
    if (np.abs(index - nearest) * spacing).max() > plane_tolerance_mm:
        raise SegError("SEG frames do not sit on the reference voxel grid (another series or resampled grid?)",
                       "MASK_GEOMETRY")
    frame_rows, frame_cols = masks.shape[1:]
    total = inside = 0
    directions: dict[str, None] = {}
    for frame, (i0, j0, k) in zip(wanted, nearest):
        marked = int(np.count_nonzero(masks[frame]))
        total += marked
        if not 0 <= k < n_slices:
            if marked:
                directions["z < first slice" if k < 0 else "z > last slice"] = None
            continue
        # in-plane offset: the frame's (0, 0) pixel sits at reference (j0, i0); what falls outside is measured
        r0, c0 = max(j0, 0), max(i0, 0)
        r1, c1 = min(j0 + frame_rows, n_rows), min(i0 + frame_cols, n_cols)
        placed = masks[frame, r0 - j0:r1 - j0, c0 - i0:c1 - i0] if r0 < r1 and c0 < c1 else masks[frame, :0, :0]
        n_placed = int(np.count_nonzero(placed))
        inside += n_placed
        if n_placed < marked:
            rows, cols = np.nonzero(masks[frame])
            for name, beyond in (("x < 0", (cols + i0 < 0).any()), ("x > last column", (cols + i0 >= n_cols).any()),
                                 ("y < 0", (rows + j0 < 0).any()), ("y > last row", (rows + j0 >= n_rows).any())):
                if beyond:
                    directions[name] = None
        if n_placed:
            out[k, r0:r1, c0:c1] |= placed
    outside = OutsideImage(total, total - inside, tuple(directions))
    if outside.outside and outside.fraction > max_outside_fraction:
        raise SegError(f"{outside.describe()}: more than the tolerated {100 * max_outside_fraction:g}%",
                       "MASK_OUTSIDE_IMAGE")
    return _as_image(out, reference), outside


def read_segment(path: Path | str, label: str, reference: sitk.Image,
                 source_files: Sequence[Path | str] | None = None, fraction_threshold: float = 0.5,
                 plane_tolerance_mm: float = PLANE_TOLERANCE_MM,
                 max_outside_fraction: float = MAX_OUTSIDE_FRACTION) -> sitk.Image:
    """Segment ``label`` of the SEG at ``path`` as a uint8 0/1 mask on the grid of ``reference``."""
    return read_segment_roi(path, label, reference, source_files, fraction_threshold, plane_tolerance_mm,
                            max_outside_fraction)[0]


def _as_image(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image
