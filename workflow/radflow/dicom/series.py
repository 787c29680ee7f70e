"""One DICOM image series (single-frame slices) -> one SimpleITK volume, with the geometry checked.

Slices are ordered by their position along the slice normal (``ImagePositionPatient`` projected on the cross product
of the two ``ImageOrientationPatient`` direction cosines), never by file name or ``InstanceNumber``, which many
exports get wrong. The volume is (z, y, x) as ``sitk.GetArrayFromImage`` gives it; the origin is the position of the
first slice along the normal and the direction matrix has the columns (row cosine, column cosine, normal).

Voxels are returned as **float32** after applying ``RescaleSlope``/``RescaleIntercept`` per slice:
- the rescale slope need not be an integer (PET, many MR and some CT exports), so int16 would truncate or overflow;
- float32 holds every integer up to 2**24 exactly, so CT HU values are exact (the IBSI CT phantom NIfTI is float32);
- the feature engine works in float64 anyway, and float32 halves the memory of float64 for whole volumes.

Every refusal is a ``SeriesError`` whose message is one sentence a QC table can show.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from radflow.dicom.deid import identifiers_unlogged

# Direction cosines are stored as decimal strings; exports disagree in about the 6th digit.
ORIENTATION_TOLERANCE = 1e-4
#: Default tolerated deviation of a slice gap from the mean gap, in mm.
SPACING_TOLERANCE_MM = 0.01


class SeriesError(ValueError):
    """The files do not form one regular volume; the message says why (shown in QC tables)."""


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


def slice_geometry(ds: pydicom.Dataset) -> SliceGeometry:
    """Geometry of one single-frame image; ``SeriesError`` if a geometry attribute is missing."""
    missing = [k for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")
               if k not in ds]
    if missing:
        raise SeriesError(f"slice without {', '.join(missing)}: cannot place it in space")
    orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient], dtype=np.float64)
    if orientation.shape != (6,):
        raise SeriesError("ImageOrientationPatient does not have 6 values")
    return SliceGeometry(
        position=np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=np.float64),
        row_cosine=orientation[:3],
        column_cosine=orientation[3:],
        pixel_spacing=(float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])),
        shape=(int(ds.Rows), int(ds.Columns)),
    )


def check_common_plane(slices: Sequence[SliceGeometry]) -> None:
    """All slices share orientation, matrix size and pixel spacing (else the series is mixed)."""
    first = slices[0]
    for s in slices[1:]:
        if (np.abs(s.row_cosine - first.row_cosine).max() > ORIENTATION_TOLERANCE
                or np.abs(s.column_cosine - first.column_cosine).max() > ORIENTATION_TOLERANCE):
            raise SeriesError("mixed slice orientations (ImageOrientationPatient differs between slices)")
        if s.shape != first.shape:
            raise SeriesError(f"mixed matrix sizes: {first.shape} and {s.shape}")
        if not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=0, atol=1e-4):
            raise SeriesError(f"mixed pixel spacings: {first.pixel_spacing} and {s.pixel_spacing} mm")


def volume_geometry(slices: Sequence[SliceGeometry], spacing_tolerance_mm: float = SPACING_TOLERANCE_MM,
                    single_slice_thickness: float = 1.0) -> VolumeGeometry:
    """Sort slices along the normal and check they form a regular stack.

    Refuses duplicate positions, slices shifted in-plane (gantry tilt, mixed stacks) and slice gaps deviating from
    their mean by more than ``spacing_tolerance_mm`` (missing slices, variable spacing).
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
            raise SeriesError(f"{n_duplicates} duplicate slice position(s) (two slices at the same place)")
        # Displacement that is not along the normal: the stack is sheared (gantry tilt) or not one stack.
        in_plane = (positions - positions[0]) - np.outer(along - along[0], normal)
        shift = float(np.abs(in_plane).max())
        if shift > max(spacing_tolerance_mm, 1e-3):
            raise SeriesError(f"slices are shifted in-plane by up to {shift:.3g} mm (gantry tilt or mixed stacks)")
        slice_spacing = float((along[-1] - along[0]) / (len(slices) - 1))
        deviation = float(np.abs(gaps - slice_spacing).max())
        if deviation > spacing_tolerance_mm:
            raise SeriesError(
                f"non-uniform slice spacing: gaps from {gaps.min():.4g} to {gaps.max():.4g} mm "
                f"(mean {slice_spacing:.4g}, tolerance {spacing_tolerance_mm:g} mm; missing slices?)")
    else:
        slice_spacing = single_slice_thickness
    direction = np.column_stack([first.row_cosine, first.column_cosine, normal])
    return VolumeGeometry(
        order=order,
        origin=tuple(float(v) for v in positions[0]),
        spacing=(first.pixel_spacing[1], first.pixel_spacing[0], slice_spacing),
        direction=tuple(float(v) for v in direction.ravel()),
    )


def rescaled_pixels(ds: pydicom.Dataset) -> np.ndarray:
    """Stored pixel values -> modality values (e.g. HU) as float32, per slice's own slope and intercept."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise SeriesError("slice without pixel data")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise SeriesError("multi-frame image: only single-frame series are supported")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise SeriesError("colour image (SamplesPerPixel > 1): not a quantitative image")
    try:
        stored = ds.pixel_array
    except Exception as exc:  # pydicom raises several types when no handler can decode the transfer syntax
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax))
        raise SeriesError(f"pixel data not decodable ({name}): {type(exc).__name__}; "
                          "compressed syntaxes need pylibjpeg/gdcm plugins") from exc
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    if slope == 1.0 and intercept == 0.0:
        return stored.astype(np.float32)
    return (stored.astype(np.float64) * slope + intercept).astype(np.float32)


def check_one_series(datasets: Sequence[pydicom.Dataset]) -> None:
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(uids) > 1:
        raise SeriesError(f"files from {len(uids)} different series (SeriesInstanceUID)")


@identifiers_unlogged()
def read_series(paths: Sequence[Path | str], spacing_tolerance_mm: float = SPACING_TOLERANCE_MM) -> sitk.Image:
    """Read single-frame slices of one series into a float32 SimpleITK image in modality units (HU for CT).

    ``spacing_tolerance_mm``: how far a slice gap may deviate from the mean gap (and the smallest gap that is not a
    duplicate). Raises ``SeriesError`` for an empty list, unreadable files, missing pixel data, mixed orientation /
    matrix / pixel spacing, duplicate positions, in-plane shifted slices and non-uniform slice spacing.
    """
    if not paths:
        raise SeriesError("no files")
    datasets = []
    for path in paths:
        try:
            datasets.append(pydicom.dcmread(path))
        except Exception as exc:
            raise SeriesError(f"unreadable file {Path(path).name}: {type(exc).__name__}") from exc
    check_one_series(datasets)
    thickness = float(datasets[0].get("SliceThickness", 1.0) or 1.0)
    geometry = volume_geometry([slice_geometry(ds) for ds in datasets], spacing_tolerance_mm, thickness)
    volume = np.stack([rescaled_pixels(datasets[i]) for i in geometry.order])
    image = sitk.GetImageFromArray(volume)
    image.SetOrigin(geometry.origin)
    image.SetSpacing(geometry.spacing)
    image.SetDirection(geometry.direction)
    return image
