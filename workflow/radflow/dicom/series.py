"""One DICOM image series -> one SimpleITK volume, with the geometry checked.

Handles single-frame slices (one file per slice) and enhanced / legacy-converted multi-frame images (one file, a
frame per slice, geometry in the per-frame and shared functional groups), uncompressed or compressed with any
transfer syntax pydicom's pixel handlers decode (RLE natively; JPEG baseline/lossless, JPEG-LS and JPEG 2000 through
pylibjpeg-libjpeg, pyjpegls and pylibjpeg-openjpeg).

Slices are ordered by their position along the slice normal (``ImagePositionPatient`` projected on the cross product
of the two ``ImageOrientationPatient`` direction cosines), never by file name or ``InstanceNumber``, which many
exports get wrong. The volume is (z, y, x) as ``sitk.GetArrayFromImage`` gives it; the origin is the position of the
first slice along the normal and the direction matrix has the columns (row cosine, column cosine, normal).

Voxels are returned as **float32** after applying ``RescaleSlope``/``RescaleIntercept`` per slice (per frame):
- the rescale slope need not be an integer (PET, many MR and some CT exports), so int16 would truncate or overflow;
- float32 holds every integer up to 2**24 exactly, so CT HU values are exact (the IBSI CT phantom NIfTI is float32);
- the feature engine works in float64 anyway, and float32 halves the memory of float64 for whole volumes.

Every refusal is a ``SeriesError`` whose ``code`` is a stable QC code (see ``radflow.qc.CHECKS``) and whose message
is one sentence a QC table can show. Problems that still give a usable volume (an instance stored twice, an oblique
orientation) are returned as ``SeriesWarning``s beside the volume by ``load_series``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from radflow.dicom import files
from radflow.dicom.deid import identifiers_unlogged

# Direction cosines are stored as decimal strings; exports disagree in about the 6th digit.
ORIENTATION_TOLERANCE = 1e-4
#: Default tolerated deviation of a slice gap from the regular spacing, in mm.
SPACING_TOLERANCE_MM = 0.01
#: Default angle (degrees) between image and patient axes beyond which the orientation is reported as oblique.
OBLIQUE_TOLERANCE_DEG = 1.0

# Stable codes of the refusals (documented in radflow.qc.CHECKS).
FILE_UNREADABLE = "FILE_UNREADABLE"
FILE_TRUNCATED = "FILE_TRUNCATED"
TAGS_MISSING = "TAGS_MISSING"
PIXEL_DATA_UNREADABLE = "PIXEL_DATA_UNREADABLE"
MIXED_GEOMETRY = "MIXED_GEOMETRY"
SERIES_MIXED = "SERIES_MIXED"
SLICE_DUPLICATE = "SLICE_DUPLICATE"
SERIES_MULTI_VOLUME = "SERIES_MULTI_VOLUME"
SLICES_MISSING = "SLICES_MISSING"
SLICE_SPACING_NONUNIFORM = "SLICE_SPACING_NONUNIFORM"
GANTRY_TILT = "GANTRY_TILT"
NOT_QUANTITATIVE = "NOT_QUANTITATIVE"
GEOMETRY_INVALID = "GEOMETRY_INVALID"
RESCALE_INVALID = "RESCALE_INVALID"
# Warnings
DUPLICATE_INSTANCE = "DUPLICATE_INSTANCE"
ORIENTATION_NON_AXIAL = "ORIENTATION_NON_AXIAL"


class SeriesError(ValueError):
    """The files do not form one regular volume; ``code`` says which check failed, the message why."""

    def __init__(self, message: str, code: str = "SERIES_UNREADABLE"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SeriesWarning:
    code: str
    message: str
    value: float | None = None


@dataclass
class SeriesVolume:
    """A series read into a volume, and what was noticed on the way that did not stop it."""

    image: sitk.Image
    warnings: list[SeriesWarning] = field(default_factory=list)
    n_frames: int = 0  # slices (frames) that made the volume
    multi_frame: bool = False


@dataclass(frozen=True)
class SliceGeometry:
    """What of one slice header decides where its pixels sit in patient space."""

    position: np.ndarray  # ImagePositionPatient, mm (centre of the first transmitted pixel)
    row_cosine: np.ndarray  # direction of increasing column index (x)
    column_cosine: np.ndarray  # direction of increasing row index (y)
    pixel_spacing: tuple[float, float]  # (between rows, between columns) = (y, x), mm
    shape: tuple[int, int]  # (Rows, Columns)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_cosine, self.column_cosine)


@dataclass(frozen=True)
class VolumeGeometry:
    """The regular grid the sorted slices form (SimpleITK order: x, y, z)."""

    order: np.ndarray  # indices that sort the input slices along the normal
    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]  # 3x3 row-major, columns = (row cosine, column cosine, normal)


def _numbers(values, n: int, name: str) -> np.ndarray:
    try:
        array = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise SeriesError(f"{name} is not numeric", TAGS_MISSING) from None
    if array.shape != (n,) or not np.all(np.isfinite(array)):
        raise SeriesError(f"{name} does not have {n} finite values", TAGS_MISSING)
    return array


def check_orientation(orientation: np.ndarray) -> None:
    """GEOMETRY_INVALID: the row and column direction cosines must be unit vectors at right angles (an all-zero
    ImageOrientationPatient places every slice at the same 'position' along a zero normal)."""
    row, column = orientation[:3], orientation[3:]
    lengths = (float(np.linalg.norm(row)), float(np.linalg.norm(column)))
    if any(abs(length - 1.0) > 1e-3 for length in lengths):
        raise SeriesError(f"ImageOrientationPatient {orientation.round(4).tolist()} is not two unit vectors "
                          f"(lengths {lengths[0]:.3g} and {lengths[1]:.3g}): the slices cannot be placed in space",
                          GEOMETRY_INVALID)
    if abs(float(row @ column)) > 1e-3:
        raise SeriesError(f"ImageOrientationPatient {orientation.round(4).tolist()}: row and column directions are "
                          f"not perpendicular (cosine {float(row @ column):.3g})", GEOMETRY_INVALID)


def make_geometry(position, orientation, pixel_spacing, rows, columns) -> SliceGeometry:
    orientation = _numbers(orientation, 6, "ImageOrientationPatient")
    check_orientation(orientation)
    spacing = _numbers(pixel_spacing, 2, "PixelSpacing")
    if np.any(spacing <= 0):
        raise SeriesError("PixelSpacing is not positive", TAGS_MISSING)
    return SliceGeometry(
        position=_numbers(position, 3, "ImagePositionPatient"),
        row_cosine=orientation[:3],
        column_cosine=orientation[3:],
        pixel_spacing=(float(spacing[0]), float(spacing[1])),
        shape=(int(rows), int(columns)),
    )


def slice_geometry(ds: pydicom.Dataset) -> SliceGeometry:
    """Geometry of one single-frame image; ``SeriesError`` (TAGS_MISSING) if a geometry attribute is missing."""
    missing = [k for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")
               if k not in ds or ds[k].value in (None, "")]
    if missing:
        raise SeriesError(f"slice without {', '.join(missing)}: cannot place it in space", TAGS_MISSING)
    return make_geometry(ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing, ds.Rows, ds.Columns)


def check_common_plane(slices: Sequence[SliceGeometry]) -> None:
    """All slices share orientation, matrix size and pixel spacing (else the series is mixed)."""
    first = slices[0]
    for s in slices[1:]:
        if (np.abs(s.row_cosine - first.row_cosine).max() > ORIENTATION_TOLERANCE
                or np.abs(s.column_cosine - first.column_cosine).max() > ORIENTATION_TOLERANCE):
            raise SeriesError("mixed slice orientations (ImageOrientationPatient differs between slices)",
                              MIXED_GEOMETRY)
        if s.shape != first.shape:
            raise SeriesError(f"mixed matrix sizes: {first.shape} and {s.shape}", MIXED_GEOMETRY)
        if not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=0, atol=1e-4):
            raise SeriesError(f"mixed pixel spacings: {first.pixel_spacing} and {s.pixel_spacing} mm",
                              MIXED_GEOMETRY)


def check_stack(along: np.ndarray, in_plane: np.ndarray, tolerance_mm: float) -> None:
    """Slices sorted along the normal must not be displaced in-plane: a displacement growing linearly with the
    distance along the normal is a gantry tilt (a sheared grid, which a direction matrix cannot hold); any other
    displacement means several stacks in one series."""
    shift = float(np.abs(in_plane).max())
    if shift <= max(tolerance_mm, 1e-3):
        return
    distance = along - along[0]
    slope, *_ = np.linalg.lstsq(distance[:, None], in_plane, rcond=None)  # (1, 3) mm per mm
    residual = float(np.abs(in_plane - distance[:, None] * slope).max())
    if residual <= max(tolerance_mm, 1e-3):
        angle = float(np.degrees(np.arctan(np.linalg.norm(slope))))
        raise SeriesError(f"slices are shifted in-plane by up to {shift:.3g} mm: gantry tilt of {angle:.3g} degrees "
                          "(a sheared grid; resample the series to an orthogonal grid first)", GANTRY_TILT)
    raise SeriesError(f"slices are shifted in-plane by up to {shift:.3g} mm, not as one tilted stack "
                      "(several stacks in one series?)", MIXED_GEOMETRY)


def check_spacing(gaps: np.ndarray, tolerance_mm: float) -> float:
    """The regular slice spacing of sorted slices; SLICES_MISSING when some gaps are whole multiples of it,
    SLICE_SPACING_NONUNIFORM for any other deviation beyond ``tolerance_mm``."""
    mean = float(gaps.mean())
    if float(np.abs(gaps - mean).max()) <= tolerance_mm:
        return mean
    nominal = float(gaps.min())
    multiples = np.rint(gaps / nominal)
    if np.all(np.abs(gaps - multiples * nominal) <= tolerance_mm * multiples) and multiples.max() >= 2:
        missing = int((multiples - 1).sum())
        raise SeriesError(
            f"non-uniform slice spacing: {missing} slice(s) missing (gaps of {gaps.max():.4g} mm in a "
            f"{nominal:.4g} mm stack)", SLICES_MISSING)
    raise SeriesError(
        f"non-uniform slice spacing: gaps from {gaps.min():.4g} to {gaps.max():.4g} mm "
        f"(mean {mean:.4g}, tolerance {tolerance_mm:g} mm)", SLICE_SPACING_NONUNIFORM)


def volume_geometry(slices: Sequence[SliceGeometry], spacing_tolerance_mm: float = SPACING_TOLERANCE_MM,
                    single_slice_thickness: float = 1.0) -> VolumeGeometry:
    """Sort slices along the normal and check they form a regular stack.

    Refuses mixed planes (MIXED_GEOMETRY), duplicate positions (SLICE_DUPLICATE), slices shifted in-plane
    (GANTRY_TILT, MIXED_GEOMETRY), missing slices (SLICES_MISSING) and other slice gaps deviating from the regular
    spacing by more than ``spacing_tolerance_mm`` (SLICE_SPACING_NONUNIFORM).
    """
    check_common_plane(slices)
    first = slices[0]
    normal = first.normal
    positions = np.stack([s.position for s in slices])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    positions = positions[order]
    if len(slices) > 1:
        gaps = np.diff(along)
        # a generous tolerance must not turn regular slices into "duplicates"
        duplicate_limit = min(spacing_tolerance_mm, 0.5 * float(np.median(gaps)))
        n_duplicates = int(np.count_nonzero(gaps <= duplicate_limit))
        if n_duplicates:
            raise SeriesError(f"{n_duplicates} duplicate slice position(s) (two slices at the same place)",
                              SLICE_DUPLICATE)
        check_stack(along, (positions - positions[0]) - np.outer(along - along[0], normal), spacing_tolerance_mm)
        slice_spacing = check_spacing(gaps, spacing_tolerance_mm)
    else:
        slice_spacing = single_slice_thickness
    direction = np.column_stack([first.row_cosine, first.column_cosine, normal])
    return VolumeGeometry(
        order=order,
        origin=tuple(float(v) for v in positions[0]),
        spacing=(first.pixel_spacing[1], first.pixel_spacing[0], slice_spacing),
        direction=tuple(float(v) for v in direction.ravel()),
    )


def obliqueness_deg(direction: Sequence[float]) -> float:
    """Largest angle (degrees) between an image axis and the patient axis nearest to it (0 for axial, coronal or
    sagittal grids aligned with the patient)."""
    axes = np.abs(np.asarray(direction, dtype=np.float64).reshape(3, 3))
    return float(np.degrees(np.arccos(np.clip(axes.max(axis=0), -1.0, 1.0))).max())


def orientation_warning(direction: Sequence[float], tolerance_deg: float) -> SeriesWarning | None:
    """ORIENTATION_NON_AXIAL: 2D/2.5D features aggregate over the acquired slices, which then are not axial planes
    of the patient, and texture directions are not patient directions."""
    matrix = np.asarray(direction, dtype=np.float64).reshape(3, 3)
    normal_angle = float(np.degrees(np.arccos(np.clip(abs(matrix[2, 2]), -1.0, 1.0))))
    angle = obliqueness_deg(direction)
    if angle <= tolerance_deg:
        if normal_angle < 45:
            return None
        plane = "sagittal" if abs(matrix[0, 2]) > abs(matrix[1, 2]) else "coronal"
        return SeriesWarning(ORIENTATION_NON_AXIAL, f"{plane} slices: 2D features aggregate over {plane} planes",
                             normal_angle)
    return SeriesWarning(ORIENTATION_NON_AXIAL, f"oblique grid: image axes up to {angle:.3g} degrees from the "
                         f"patient axes (slice normal {normal_angle:.3g} degrees from z)", angle)


def expected_pixel_bytes(ds: pydicom.Dataset) -> int:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    return (int(ds.Rows) * int(ds.Columns) * frames * samples * bits + 7) // 8


def stored_pixels(ds: pydicom.Dataset) -> np.ndarray:
    """The stored values (frames, rows, columns) of an image, with the reason when they cannot be had."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise SeriesError("slice without pixel data", PIXEL_DATA_UNREADABLE)
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise SeriesError("colour image (SamplesPerPixel > 1): not a quantitative image", NOT_QUANTITATIVE)
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" in ds and syntax is not None and not syntax.is_compressed and "Rows" in ds and "Columns" in ds:
        have, need = len(ds.PixelData), expected_pixel_bytes(ds)
        if have < need:
            raise SeriesError(f"pixel data holds {have} of {need} bytes: truncated file", FILE_TRUNCATED)
    try:
        stored = ds.pixel_array
    except Exception as exc:  # pydicom raises several types when no handler can decode the transfer syntax
        name = getattr(syntax, "name", str(syntax))
        raise SeriesError(f"pixel data not decodable ({name}): {type(exc).__name__}", PIXEL_DATA_UNREADABLE) from exc
    return stored if stored.ndim == 3 else stored[np.newaxis]


def rescale(stored: np.ndarray, slope: float, intercept: float, out: np.ndarray | None = None) -> np.ndarray:
    """``stored * slope + intercept`` as float32, into ``out`` when given.

    Integer slope and intercept on integer values below 2**24 are exact in float32, so CT is rescaled in float32
    directly (no float64 temporary); other slopes go through float64 and are rounded once.
    """
    out = np.empty(stored.shape, dtype=np.float32) if out is None else out
    exact = (slope.is_integer() and intercept.is_integer() and stored.dtype.kind in "iu"
             and stored.dtype.itemsize <= 2 and abs(slope) <= 256 and abs(intercept) < 2**23)
    if exact:
        out[...] = stored
        if slope != 1.0:
            out *= np.float32(slope)
        if intercept != 0.0:
            out += np.float32(intercept)
    else:
        np.add(stored.astype(np.float64) * slope, intercept, out=out, casting="same_kind")
    return out


def _float_tag(ds: pydicom.Dataset, keyword: str, default: float) -> float:
    value = ds.get(keyword, default)
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        raise SeriesError(f"{keyword} is not numeric", TAGS_MISSING) from None


def rescale_parameters(source: pydicom.Dataset) -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept); RESCALE_INVALID when the slope is 0 (every voxel the same value) or
    either is not finite."""
    slope, intercept = _float_tag(source, "RescaleSlope", 1.0), _float_tag(source, "RescaleIntercept", 0.0)
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise SeriesError(f"RescaleSlope {slope:g} / RescaleIntercept {intercept:g} not finite: no intensities",
                          RESCALE_INVALID)
    if slope == 0.0:
        raise SeriesError("RescaleSlope is 0: every voxel would have the intercept's value", RESCALE_INVALID)
    return slope, intercept


def rescaled_pixels(ds: pydicom.Dataset, out: np.ndarray | None = None) -> np.ndarray:
    """Stored pixel values of a single-frame image -> modality values (e.g. HU) as float32 (rows, columns)."""
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise SeriesError("a multi-frame image among single-frame slices", MIXED_GEOMETRY)
    slope, intercept = rescale_parameters(ds)
    stored = stored_pixels(ds)[0]
    return rescale(stored, slope, intercept, out)


def check_one_series(datasets: Sequence[pydicom.Dataset]) -> None:
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(uids) > 1:
        raise SeriesError(f"files from {len(uids)} different series (SeriesInstanceUID)", SERIES_MIXED)


# What tells apart the volumes an MR or PET series may hold at the same slice positions, in the order they are named.
VOLUME_TAGS = ("EchoNumbers", "EchoTime", "DiffusionBValue", "TemporalPositionIdentifier", "TriggerTime",
               "AcquisitionNumber", "ImageType")


def check_one_volume(datasets: Sequence[pydicom.Dataset]) -> None:
    """SERIES_MULTI_VOLUME when the slices repeat their positions because the series holds several volumes (the echoes
    of a dual-echo MR, the b-values of a diffusion series, the time points of a dynamic one): named by the first of
    ``VOLUME_TAGS`` whose values split the slices into equal volumes without a repeated position. Other repeated
    positions (a slice scanned again, a copy) are left to the stack check (SLICE_DUPLICATE)."""
    positions = [tuple(round(float(v), 2) for v in ds.get("ImagePositionPatient", ()) or ()) for ds in datasets]
    if len(set(positions)) == len(positions) or not all(positions):
        return
    for tag in VOLUME_TAGS:
        volumes: dict[str, list[tuple]] = {}
        for ds, position in zip(datasets, positions):
            value = ds.get(tag)
            key = "\\".join(str(v) for v in value) if isinstance(value, pydicom.multival.MultiValue) else str(value)
            volumes.setdefault(key, []).append(position)
        sizes = {len(members) for members in volumes.values()}
        if len(volumes) > 1 and len(sizes) == 1 and min(sizes) > 1 and \
                all(len(set(members)) == len(members) for members in volumes.values()):
            shown = ", ".join(sorted(volumes)[:6]) + (", ..." if len(volumes) > 6 else "")
            raise SeriesError(
                f"the series holds {len(volumes)} volumes at the same slice positions, told apart by {tag} ({shown}): "
                "radflow reads one volume per series; export each volume as a series of its own (or a NIfTI file "
                "through the input manifest)", SERIES_MULTI_VOLUME)


def drop_duplicate_instances(datasets: list[pydicom.Dataset]) -> tuple[list[pydicom.Dataset], int]:
    """The same SOP instance stored twice (a copy under another file name) is one slice, not a duplicate position."""
    seen: set[str] = set()
    unique = []
    for ds in datasets:
        uid = str(ds.get("SOPInstanceUID", ""))
        if uid and uid in seen:
            continue
        seen.add(uid)
        unique.append(ds)
    return unique, len(datasets) - len(unique)


# ------------------------------------------------------------------------------------------ multi-frame

def functional_group_item(ds: pydicom.Dataset, frame: int, sequence: str) -> pydicom.Dataset | None:
    """Item of a functional group macro for one frame: the per-frame group first, else the shared one."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    for group in (per_frame[frame] if per_frame and frame < len(per_frame) else None,
                  shared[0] if shared else None):
        if group is not None and sequence in group and len(group[sequence].value):
            return group[sequence].value[0]
    return None


def frame_geometry(ds: pydicom.Dataset, frame: int) -> SliceGeometry:
    """Geometry of one frame of an enhanced (or legacy-converted enhanced) multi-frame image."""
    plane = functional_group_item(ds, frame, "PlanePositionSequence")
    orientation = functional_group_item(ds, frame, "PlaneOrientationSequence")
    measures = functional_group_item(ds, frame, "PixelMeasuresSequence")
    missing = [name for name, item, tag in (
        ("ImagePositionPatient", plane, "ImagePositionPatient"),
        ("ImageOrientationPatient", orientation, "ImageOrientationPatient"),
        ("PixelSpacing", measures, "PixelSpacing")) if item is None or tag not in item]
    if missing:
        raise SeriesError(f"frame {frame + 1} without {', '.join(missing)} in its functional groups: "
                          "cannot place it in space", TAGS_MISSING)
    return make_geometry(plane.ImagePositionPatient, orientation.ImageOrientationPatient, measures.PixelSpacing,
                         ds.Rows, ds.Columns)


def frame_rescale(ds: pydicom.Dataset, frame: int) -> tuple[float, float]:
    item = functional_group_item(ds, frame, "PixelValueTransformationSequence")
    return rescale_parameters(item if item is not None else ds)


def multi_frame_slices(ds: pydicom.Dataset) -> tuple[list[SliceGeometry], np.ndarray]:
    """(frame geometries, rescaled frames (n, rows, columns) float32) of a multi-frame image."""
    if "Rows" not in ds or "Columns" not in ds:
        raise SeriesError("multi-frame image without Rows/Columns", TAGS_MISSING)
    n_frames = int(ds.NumberOfFrames)
    geometries = [frame_geometry(ds, f) for f in range(n_frames)]
    stored = stored_pixels(ds)
    if stored.shape[0] != n_frames:
        raise SeriesError(f"{stored.shape[0]} frames decoded, NumberOfFrames says {n_frames}", PIXEL_DATA_UNREADABLE)
    frames = np.empty(stored.shape, dtype=np.float32)
    for f in range(n_frames):
        rescale(stored[f], *frame_rescale(ds, f), out=frames[f])
    return geometries, frames


def slice_thickness(ds: pydicom.Dataset) -> float:
    measures = functional_group_item(ds, 0, "PixelMeasuresSequence") if "SharedFunctionalGroupsSequence" in ds else None
    source = measures if measures is not None and "SliceThickness" in measures else ds
    return _float_tag(source, "SliceThickness", 1.0) or 1.0


# ------------------------------------------------------------------------------------------ reading

def read_datasets(paths: Sequence[Path | str]) -> list[pydicom.Dataset]:
    datasets = []
    for n, path in enumerate(paths, start=1):
        try:
            datasets.append(files.read(path))
        except Exception as exc:  # file names can be identifying (UIDs, patient names): say which by number only
            raise SeriesError(f"file {n} of {len(paths)} is not readable DICOM ({type(exc).__name__})",
                              FILE_UNREADABLE) from exc
    return datasets


def _stack(datasets: list[pydicom.Dataset]) -> tuple[list[SliceGeometry], list[np.ndarray] | np.ndarray, bool]:
    """(geometries, pixel source, multi_frame): single-frame slices decode lazily after sorting."""
    n_frames = [int(ds.get("NumberOfFrames", 1) or 1) for ds in datasets]
    multi = [n > 1 or "PerFrameFunctionalGroupsSequence" in ds for n, ds in zip(n_frames, datasets)]
    if any(multi) and not all(multi):
        raise SeriesError("single-frame and multi-frame images in one series", MIXED_GEOMETRY)
    if not any(multi):
        return [slice_geometry(ds) for ds in datasets], [], False
    geometries, frames = [], []
    for ds in datasets:
        g, f = multi_frame_slices(ds)
        geometries += g
        frames.append(f)
    return geometries, np.concatenate(frames), True


@identifiers_unlogged()
def load_series(paths: Sequence[Path | str], spacing_tolerance_mm: float = SPACING_TOLERANCE_MM,
                oblique_tolerance_deg: float = OBLIQUE_TOLERANCE_DEG) -> SeriesVolume:
    """Read one series (single-frame slices or multi-frame images) into a float32 volume in modality units.

    ``spacing_tolerance_mm``: how far a slice gap may deviate from the regular spacing (and the smallest gap that is
    not a duplicate). Raises ``SeriesError`` with a code for every refusal (see the module docstring).
    """
    if not paths:
        raise SeriesError("no files", FILE_UNREADABLE)
    datasets, n_copies = drop_duplicate_instances(read_datasets(paths))
    warnings = []
    if n_copies:
        warnings.append(SeriesWarning(DUPLICATE_INSTANCE, f"{n_copies} file(s) repeat an instance already read "
                                      "(same SOPInstanceUID): read once", float(n_copies)))
    check_one_series(datasets)
    check_one_volume(datasets)
    geometries, frames, multi_frame = _stack(datasets)
    geometry = volume_geometry(geometries, spacing_tolerance_mm, slice_thickness(datasets[0]))
    if multi_frame:
        volume = np.ascontiguousarray(frames[geometry.order])
    else:
        volume = np.empty((len(datasets), *geometries[0].shape), dtype=np.float32)
        for k, i in enumerate(geometry.order):
            rescaled_pixels(datasets[i], out=volume[k])
    image = sitk.GetImageFromArray(volume)
    image.SetOrigin(geometry.origin)
    image.SetSpacing(geometry.spacing)
    image.SetDirection(geometry.direction)
    warning = orientation_warning(geometry.direction, oblique_tolerance_deg)
    if warning is not None:
        warnings.append(warning)
    return SeriesVolume(image, warnings, n_frames=len(geometries), multi_frame=multi_frame)


def read_series(paths: Sequence[Path | str], spacing_tolerance_mm: float = SPACING_TOLERANCE_MM) -> sitk.Image:
    """Read one series into a float32 SimpleITK image in modality units (HU for CT); see ``load_series``."""
    return load_series(paths, spacing_tolerance_mm).image
