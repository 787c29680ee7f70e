"""Reading one image and one mask from whatever a user has: a DICOM series folder, NIfTI, NRRD, RTSTRUCT or SEG.

pydicom is imported only for DICOM input: reading NIfTI does not need it (its import costs a fresh process ~0.15 s).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from radflow import qc
from radflow.imaging import mask_grid
from radflow.imaging.roi import mask_extent


class InputError(ValueError):
    pass


class FractionalMaskWarning(UserWarning):
    """A mask file of fractions (a probability map, a mask resampled with linear interpolation) was thresholded."""


#: A mask of fractions in [0, 1] is read as its voxels of at least this value: IBSI's partial-volume threshold for
#: interpolated masks, and what a DICOM SEG of type FRACTIONAL gets (``dicom.seg``).
FRACTION_THRESHOLD = 0.5
#: Rounding a float computation leaves on label values (1.0000001): still whole numbers.
FRACTION_ROUNDING = 1e-6


class SegmentNotChosen(InputError):
    """No segment, or several, of a 3D Slicer segmentation match the ROI asked for; ``public`` says so without the
    segment names (free text, kept out of the pipeline's results)."""

    def __init__(self, message: str, public: str):
        super().__init__(message)
        self.public = public


class UnreadableFileError(InputError):
    """An image or mask file that cannot be read; ``reason`` says why without naming the file (the pipeline's QC
    messages must not carry paths, which may hold patient names)."""

    def __init__(self, what: str, path: Path, reason: str):
        super().__init__(f"cannot read {what} {path}: {reason}")
        self.reason = reason


def is_dicom(path: Path) -> bool:
    """A DICOM file, with or without the Part 10 preamble (``dicom.files.is_dicom``)."""
    from radflow.dicom import files

    return files.is_dicom(path)


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_dicom(p))


def read_image(path: Path, referenced_series: Sequence[str] = ()) -> sitk.Image:
    """A DICOM folder's image series, an enhanced multi-frame DICOM file, or any file SimpleITK reads (NIfTI, NRRD,
    MHA).

    The folder may hold more than the series: RTSTRUCT, SEG, plans and other non-image objects beside it are passed
    over, and of several image series the one a mask references (``referenced_series``: ``mask_references``) is
    read; without such a reference several series are an ``InputError`` listing them."""
    if path.is_dir() or (path.is_file() and is_dicom(path)):
        from radflow.dicom.series import read_series

        # a single DICOM file (an enhanced multi-frame series) through radflow's reader too: ITK's reads such a file
        # with its frames in stored order and the first frame's position as the origin, and without per-frame rescale
        headers = _series_headers(path, referenced_series)
        files = [header.path for header in headers]
        image = read_series(files)
        if not path.is_dir() and image.GetDimension() == 3 and image.GetSize()[2] == 1:
            raise InputError(f"{path} is a single DICOM slice: give the folder of its series")
        frame, modality = headers[0].frame_of_reference_uid, headers[0].modality
        if modality == "PT":
            image = _in_suv(image, files, path)
        # kept with the image: the frame for read_mask's check of a DICOM mask, the modality for the check that the
        # settings are meant for such images (extraction.settings_mismatch)
        for key, value in ((FRAME_OF_REFERENCE, frame), (MODALITY, modality)):
            if value:
                image.SetMetaData(key, value)
        return image
    return _read_file(path, "image")


def _series_headers(path: Path, referenced_series: Sequence[str]) -> list:
    """The headers (``discovery.Header``) of the files of the one image series to read: ``path`` itself when it is a
    file, else the series of the folder ``path`` that ``read_image`` chooses."""
    from radflow.dicom import discovery

    files = _dicom_files(path) if path.is_dir() else [path]
    headers = [discovery.header_from_dataset(f, discovery.read_header(f)) for f in files]
    if not path.is_dir():
        return headers
    folder = path
    series: dict[str, list] = {}
    for header in headers:
        if discovery.classify(header) == "image":
            series.setdefault(header.series_uid, []).append(header)
    if not series:
        raise InputError(f"no DICOM image files in {folder}" + (f" ({len(files)} other DICOM objects)" if files else ""))
    chosen = next((uid for uid in referenced_series if uid in series), None)
    if chosen is None and len(series) > 1:
        listed = "; ".join(f"{h[0].modality} {h[0].series_description or '(no description)'}, {len(h)} file(s)"
                           for h in sorted(series.values(), key=len, reverse=True))
        raise InputError(f"{folder} holds {len(series)} image series ({listed}): give the folder of one of them, or "
                         "a DICOM mask that references one")
    return series[chosen if chosen is not None else next(iter(series))]


def mask_references(mask_path: Path) -> tuple[str, ...]:
    """The image series a DICOM RTSTRUCT or SEG mask references (SeriesInstanceUIDs); () for any other file."""
    if not (mask_path.is_file() and is_dicom(mask_path)):
        return ()
    from radflow.dicom import discovery

    return discovery.header_from_dataset(mask_path, discovery.read_header(mask_path)).referenced_series_uids


# the DICOM tags (FrameOfReferenceUID, Modality) under which a DICOM series' frame of reference and modality ride on
# its SimpleITK image
FRAME_OF_REFERENCE = "0020|0052"
MODALITY = "0008|0060"


def _in_suv(image: sitk.Image, files: list[Path], path: Path) -> sitk.Image:
    """A PET series' activity concentrations (Bq/ml) as SUVbw, as the pipeline's ingest stores them
    (``radflow.imaging.suv``), so that PET settings' bins in SUV units mean what they say."""
    from radflow.imaging import suv

    try:
        factor = suv.files_suv_factor(files)
    except suv.SuvError as exc:
        raise InputError(f"the PET series {path} cannot be converted to SUVbw: {exc}") from None
    return suv.to_suv(image, factor)


def image_modality(image: sitk.Image) -> str | None:
    """The DICOM Modality of an image read from a DICOM series (``read_image``), None for other images."""
    return image.GetMetaData(MODALITY) if image.HasMetaDataKey(MODALITY) else None


def _require_same_frame(mask_frame: str | None, reference: sitk.Image, kind: str, path: Path) -> None:
    """``InputError`` when a DICOM mask's frame of reference is known and differs from the image series': its
    coordinates are then another patient position's (a retest, another study), and placing it would select the
    wrong voxels."""
    if mask_frame and reference.HasMetaDataKey(FRAME_OF_REFERENCE) and (
            reference.GetMetaData(FRAME_OF_REFERENCE) != mask_frame):
        raise InputError(f"the {kind} {path} is drawn in another frame of reference than the image series "
                         "(FrameOfReferenceUID differs): its coordinates do not place it on this image; use the "
                         f"series the {kind} was drawn on, or register the two first")


def _read_file(path: Path, what: str) -> sitk.Image:
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    reader = information_reader(path, what)
    require_volume(reader, f"{what} {path}")
    return read_pixels(reader, path, what)


NOT_AN_IMAGE = "not a DICOM series folder, NIfTI, NRRD or MHA file"
# ITK refuses a NIfTI whose sform is not a rotation times the spacing (a header-only affine registration's shear)
# when no qform offers an alternative
SHEARED_NIFTI = ("its orientation (NIfTI sform) is sheared, not a rotation, and it has no qform: its voxels have no "
                 "place on a regular grid. Resample it onto one (e.g. apply the registration instead of storing it "
                 "in the header), or set ITK_NIFTI_SFORM_PERMISSIVE=1 to read it with ITK's nearest unsheared "
                 "orientation")


def read_volume(path: Path) -> sitk.Image:
    """An image file as stored (the pipeline's interim volumes), with its NaN and infinite voxels (``read_pixels``)
    and refused when truncated (``information_reader``)."""
    return read_pixels(information_reader(path, "image"), path, "image")


def information_reader(path: Path, what: str) -> sitk.ImageFileReader:
    """A SimpleITK reader of ``path`` that has read the header; ``InputError`` when no reader knows the file, or
    when an uncompressed NIfTI file is shorter than its header says (ITK would read the missing voxels as 0s)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        reason = SHEARED_NIFTI if "orthonormal direction cosines" in str(exc) else NOT_AN_IMAGE
        raise UnreadableFileError(what, path, reason) from None
    short = nifti_shortfall(path)
    if short:
        raise UnreadableFileError(what, path, f"the file is truncated ({short})")
    return reader


def read_pixels(reader: sitk.ImageFileReader, path: Path, what: str) -> sitk.Image:
    """``reader.Execute()``, a truncated or corrupt pixel stream (a cut .nii.gz, a short NRRD) as ``InputError``.

    An image's NaN and infinite voxels are kept: ITK's NIfTI reader turns them into 0s (nifticlib's
    ``nifti_read_buffer``), which would make a parametric map's missing values count as zero intensities; they are
    put back from the file (``nifti_non_finite``) so that preprocessing can leave them out. A mask keeps ITK's 0s
    (no label)."""
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        itk = next((line.strip() for line in reversed(str(exc).splitlines()) if line.strip()), "")
        raise UnreadableFileError(what, path, "its pixel data are truncated or corrupt "
                                  f"({itk.replace(str(path), 'the file')})") from None
    # only where ITK gave a 0 can a NaN have been: an image without one needs no second read of the file
    if what == "image" and image.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64) and \
            not np.all(sitk.GetArrayViewFromImage(image)):
        found = nifti_non_finite(path)
        if found is not None:
            image = _with_values(image, *found, tuple(reader.GetExtractIndex()))
    return image


def _with_values(image: sitk.Image, voxels: np.ndarray, values: np.ndarray, first: tuple[int, ...]) -> sitk.Image:
    """``image`` with ``values`` at the whole-file (z, y, x) indices ``voxels`` (rows), ``image`` being the box of
    the file that starts at the (x, y, z) index ``first`` (empty: the whole file)."""
    offset = np.array(first[::-1] if first else (0, 0, 0))
    local = voxels - offset
    inside = np.all((local >= 0) & (local < np.array(image.GetSize()[::-1])), axis=1)
    if not inside.any():
        return image
    array = sitk.GetArrayFromImage(image)
    array[tuple(local[inside].T)] = values[inside]
    restored = sitk.GetImageFromArray(array)
    restored.CopyInformation(image)
    for key in image.GetMetaDataKeys():
        restored.SetMetaData(key, image.GetMetaData(key))
    return restored


# NIfTI-1 and NIfTI-2 headers: (header size, offset and struct format of dim[8], of datatype, of bitpix, of
# vox_offset)
_NIFTI_HEADERS = ((348, 40, "8h", 70, 72, 108, "f"), (540, 16, "8q", 12, 14, 168, "q"))
_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype codes FLOAT32, FLOAT64 -> numpy


def _nifti_header(path: Path) -> dict | None:
    """dims, datatype, bitpix, vox_offset and byte order of a NIfTI-1/-2 (or Analyze 7.5) file or ``.hdr``, plain or
    gzipped; None for anything else."""
    import struct

    name = path.name.lower()
    if not name.endswith((".nii", ".nii.gz", ".hdr", ".hdr.gz")):
        return None
    try:
        if name.endswith(".gz"):
            import gzip

            with gzip.open(path, "rb") as fh:
                header = fh.read(540)
        else:
            with open(path, "rb") as fh:
                header = fh.read(540)
    except (OSError, EOFError):
        return None
    for header_size, dim_at, dim_format, type_at, bitpix_at, offset_at, offset_format in _NIFTI_HEADERS:
        for order in "<>":
            if len(header) < header_size or struct.unpack_from(order + "i", header)[0] != header_size:
                continue
            dims = struct.unpack_from(order + dim_format, header, dim_at)
            if not 1 <= dims[0] <= 7:
                return None
            return {"dims": tuple(max(int(d), 1) for d in dims[1:dims[0] + 1]), "order": order,
                    "datatype": struct.unpack_from(order + "h", header, type_at)[0],
                    "bitpix": struct.unpack_from(order + "h", header, bitpix_at)[0],
                    "offset": int(struct.unpack_from(order + offset_format, header, offset_at)[0])}
    return None


def _nifti_data_file(path: Path) -> tuple[Path, bool]:
    """The file holding the voxels (a pair's ``.img``) and whether its header says where they start in it."""
    name = path.name.lower()
    if name.endswith(".hdr.gz"):
        return path.with_name(path.name[:-7] + ".img.gz"), False
    if name.endswith(".hdr"):
        return path.with_suffix(".img"), False
    return path, True


def nifti_shortfall(path: Path) -> str:
    """For an uncompressed NIfTI (``.nii``, or the ``.img`` of a ``.hdr``/``.img`` pair): what is missing when the
    pixel data are shorter than the header's dimensions and bit depth say, else "". ITK fills the missing voxels
    with 0s without a word (a cut-off mask would lose part of its ROI); NRRD, MHA and gzip streams fail loudly."""
    header = _nifti_header(path)
    data, has_offset = _nifti_data_file(path)
    if header is None or data.name.lower().endswith(".gz") or header["bitpix"] <= 0:
        return ""
    try:
        size = data.stat().st_size
    except OSError:
        return ""
    expected = (header["offset"] if has_offset else 0) + math.prod(header["dims"]) * header["bitpix"] // 8
    return f"{size} bytes, its header needs {expected}" if size < expected else ""


def nifti_non_finite(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The (z, y, x) indices (rows) and values of the NaN and infinite voxels of a floating-point 3D NIfTI file, as
    its raw data hold them (what ITK reads as 0s); None when there are none or the file is not such a NIfTI."""
    header = _nifti_header(path)
    if header is None or header["datatype"] not in _NIFTI_FLOATS:
        return None
    dims = header["dims"]
    while len(dims) > 3 and dims[-1] == 1:  # a volume stored with singleton time axes, which ITK reads as 3D
        dims = dims[:-1]
    if len(dims) != 3:
        return None
    data, has_offset = _nifti_data_file(path)
    dtype = np.dtype(header["order"] + _NIFTI_FLOATS[header["datatype"]])
    count = math.prod(dims)
    start = header["offset"] if has_offset else 0
    try:
        if data.name.lower().endswith(".gz"):
            import gzip

            with gzip.open(data, "rb") as fh:
                fh.seek(start)
                raw = np.frombuffer(fh.read(count * dtype.itemsize), dtype=dtype)
        else:
            raw = np.memmap(data, dtype=dtype, mode="r", offset=start, shape=(count,))
    except (OSError, EOFError, ValueError):
        return None
    if raw.size != count:
        return None
    flat = np.flatnonzero(~np.isfinite(raw))
    if flat.size == 0:
        return None
    nx, ny, nz = dims
    return np.column_stack(np.unravel_index(flat, (nz, ny, nx))), np.asarray(raw[flat], dtype=np.float64)


def require_volume(image: sitk.Image | sitk.ImageFileReader, source: str) -> None:
    """``InputError`` unless ``image`` (or a reader that has read its information) is one 3D scalar volume: the
    features are defined on one, and a 2D image, a time series or a colour image would otherwise fail deep inside
    with a numpy error. A single slice is a 3D volume one slice thick (its slice thickness is its z spacing)."""
    dimension = image.GetDimension()
    components = image.GetNumberOfComponentsPerPixel() if isinstance(image, sitk.Image) else image.GetNumberOfComponents()
    if dimension != 3:
        raise InputError(f"{source} is a {dimension}D image: radflow needs one 3D volume (a single slice as a volume "
                         "one slice thick, with its slice thickness as z spacing)")
    if components != 1:
        raise InputError(f"{source} has {components} values per voxel (a colour or vector image): radflow needs "
                         "one intensity per voxel")


def _the_label(labels: list[str], wanted: str | None, kind: str) -> str:
    """The ROI a user asked for, or the only one there is."""
    if wanted is not None:
        return wanted
    if len(labels) != 1:
        raise InputError(f"the {kind} has ROIs {labels}: choose one with --roi")
    return labels[0]


def read_mask(path: Path, reference: sitk.Image, roi: str | None = None, drawn_on: Path | None = None) -> sitk.Image:
    """A label image on the grid of ``reference``: NIfTI/NRRD (``roi``: a label value; without it the non-zero
    voxels, if they carry one label), RTSTRUCT or SEG (``roi``: a ROI name or segment label). A label file's voxels
    must be the image's (``on_image_grid``): features match mask and image voxels by index, so a shifted mask would
    give another region's features.
    ``drawn_on``: the DICOM series the mask was drawn on when it is not the image's (a PET/CT's CT for its PET):
    the mask is read on that series and resampled onto ``reference`` (``imaging.mask_transfer``); the two must
    share a frame of reference."""
    if drawn_on is not None:
        from radflow.imaging.mask_transfer import resampled_mask

        source = read_image(drawn_on, mask_references(path))
        if source.HasMetaDataKey(FRAME_OF_REFERENCE) and reference.HasMetaDataKey(FRAME_OF_REFERENCE) and \
                source.GetMetaData(FRAME_OF_REFERENCE) != reference.GetMetaData(FRAME_OF_REFERENCE):
            raise InputError(f"the series {drawn_on} the mask was drawn on and the image are in different frames of "
                             "reference: their coordinates are not the same, so the ROI cannot be carried over; "
                             "register them first")
        return resampled_mask(read_mask(path, source, roi), reference)
    if path.is_file() and is_dicom(path):
        from radflow.dicom import files

        modality = str(files.read(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
        if modality == "RTSTRUCT":
            from radflow.dicom import rtstruct

            name = _the_label(rtstruct.roi_names(path), roi, "RTSTRUCT")
            _require_same_frame(rtstruct.roi_frame_of_reference(path, name), reference, "RTSTRUCT", path)
            return rtstruct.rasterise(path, name, reference)
        if modality == "SEG":
            from radflow.dicom import seg

            _require_same_frame(seg.frame_of_reference(path), reference, "SEG", path)
            return seg.read_segment(path, _the_label(seg.segment_labels(path), roi, "SEG"), reference)
        raise InputError(f"a DICOM mask must be RTSTRUCT or SEG, not {modality or 'unknown'}")
    mask, roi = _label_file(path, reference, roi)
    values = sitk.GetArrayViewFromImage(mask)
    if roi is None:
        require_one_label(values, str(path))
    chosen = selected(values, roi)
    if roi is not None and mask_extent(chosen) is None:
        raise InputError(_absent_label(values, roi, str(path)))
    return label_image(chosen, mask)


def _label_file(path: Path, reference: sitk.Image | sitk.ImageFileReader, roi: str | None
                ) -> tuple[sitk.Image, str | None]:
    """A label mask file on the grid of ``reference``, and the label value(s) that select its ROI: ``roi`` as given,
    or, for a 3D Slicer segmentation, those of the segment ``roi`` names (``slicer_roi``)."""
    from radflow import slicer_segmentation

    if not path.exists():
        raise InputError(f"mask {path} does not exist")
    reader = information_reader(path, "mask")
    if slicer_segmentation.segments(reader) and reader.GetDimension() == 3:
        image, roi = slicer_roi(read_pixels(reader, path, "mask"), roi, str(path))  # layers: one component each
    else:
        require_volume(reader, f"mask {path}")
        image = read_pixels(reader, path, "mask")
    return on_image_grid(image, reference, str(path)), roi


def slicer_roi(mask: sitk.Image, roi: str | None, source: str) -> tuple[sitk.Image, str | None]:
    """(labelmap, label value) of the segment ``roi`` names in a 3D Slicer segmentation (``slicer_segmentation``):
    its layer's labelmap when the file has several, and its label value; ``(mask, roi)`` unchanged for any other
    label image."""
    from radflow import slicer_segmentation

    found = slicer_segmentation.segments(mask)
    if not found:
        return mask, roi
    try:
        segment = slicer_segmentation.choose(found, roi, source)
    except slicer_segmentation.SegmentChoiceError as exc:
        raise SegmentNotChosen(str(exc), exc.public) from None
    layers = mask.GetNumberOfComponentsPerPixel()
    if layers == 1 and segment.layer == 0:
        return mask, str(segment.label_value)
    if segment.layer >= layers:
        raise InputError(f"the mask {source}: a segment is in layer {segment.layer}, but the file has {layers} "
                         "layer(s)")
    return sitk.VectorIndexSelectionCast(mask, segment.layer), str(segment.label_value)


def on_image_grid(mask: sitk.Image, reference: sitk.Image | sitk.ImageFileReader, source: str) -> sitk.Image:
    """``mask`` on the grid of ``reference`` (an image, or a reader that has read its information): as it is, or
    re-indexed when it holds the same voxels in another orientation or a sub-box (``mask_grid``), within the QC
    default tolerance; ``InputError`` otherwise."""
    tolerance = qc.Thresholds.geometry_tolerance_mm
    mapping = mask_grid.voxel_map(mask, reference, tolerance)
    if mapping is not None:
        placed = mask_grid.reindexed(mask, reference, mapping)
        if placed is None:
            raise InputError(f"mask {source} reaches outside the image: some of its ROI voxels are not image voxels")
        return placed
    if mask.GetSize() != reference.GetSize():
        def grid(image) -> str:
            return f"{image.GetSize()} x [{', '.join(f'{s:g}' for s in image.GetSpacing())}] mm"

        raise InputError(f"mask {source} is not on the image's grid: its voxels, {grid(mask)}, are not the image's, "
                         f"{grid(reference)} (mask size differs from image size); resample it onto the image")
    raise InputError(f"mask {source} is not on the image's grid: "
                     f"{qc.mask_geometry(reference, mask, '', tolerance).message}; resample it onto the image")


def _nonzero_box(values: np.ndarray) -> np.ndarray | None:
    """The box of ``values`` that holds all its non-zero voxels (``mask_extent``: one pass, no volume-sized
    temporary); None when there are none."""
    extent = mask_extent(values)
    return None if extent is None else values[tuple(slice(first, last + 1) for first, last in extent)]


def several_labels(values: np.ndarray) -> np.ndarray | None:
    """The non-zero labels of the label array ``values`` when it holds more than one integer label, else None
    (one label; or non-integer values, a mask of fractions: ``fractional_roi``).
    Only the box of the non-zero voxels is compared, and sorted only when it holds more than one value."""
    box = None if values.dtype == np.bool_ else _nonzero_box(values)
    if box is None:
        return None
    top = box.max()
    if not np.any((box != 0) & (box != top)):
        return None
    if box.dtype.kind == "f" and not np.array_equal(box, np.round(box)):
        return None  # fractions: not sorted (a probability map's box holds millions of distinct values)
    labels = np.unique(box)
    labels = labels[labels != 0]
    return labels if labels.size > 1 and np.array_equal(labels, np.round(labels)) else None


def require_one_label(values: np.ndarray, source: str) -> None:
    """``InputError`` when the label array ``values`` holds several labels (``several_labels``): their union is
    rarely the ROI meant (a tumour and its oedema, two lesions), so the user chooses."""
    labels = several_labels(values)
    if labels is not None:
        raise InputError(f"the mask {source} has labels {shown_labels(labels)}: choose one with --roi LABEL, or "
                         "their union with --roi LABEL,LABEL,... (radflow.extract: roi=...)")


def shown_labels(labels: np.ndarray) -> str:
    return ", ".join(f"{v:g}" for v in labels[:10]) + (", ..." if labels.size > 10 else "")


def label_values(roi: str) -> tuple[float, ...]:
    """The label values ``--roi`` names in a NIfTI/NRRD label mask: one number, or several separated by commas
    for their union (BraTS' tumour core: ``1,4``)."""
    try:
        return tuple(float(part) for part in str(roi).split(","))
    except ValueError:
        raise InputError(f"--roi {roi!r}: a NIfTI/NRRD mask's ROI is a label value or a comma-separated list of "
                         "them; ROI names are for RTSTRUCT and SEG masks") from None


def selected(values: np.ndarray, roi: str | None) -> np.ndarray:
    """The voxels of the label array ``values`` that form the ROI: those with a label of ``roi``
    (``label_values``); without ``roi`` the non-zero ones, or, in a mask of fractions, those of at least
    ``FRACTION_THRESHOLD`` (``fractional_roi``)."""
    if roi is None:
        fractions = fraction_range(values)
        return values != 0 if fractions is None else fractional_roi(values, *fractions)
    labels = label_values(roi)
    return values == labels[0] if len(labels) == 1 else np.isin(values, labels)


def fraction_range(values: np.ndarray) -> tuple[float, float] | None:
    """(smallest, largest) finite non-zero value of a float mask whose non-zero values are not all whole numbers (a
    mask of fractions); None for a label mask. Only the box of the non-zero voxels is looked at."""
    if values.dtype.kind != "f":
        return None
    box = _nonzero_box(values)
    if box is None:
        return None
    nonzero = box[(box != 0) & np.isfinite(box)]
    if nonzero.size == 0 or np.all(np.abs(nonzero - np.round(nonzero)) <= FRACTION_ROUNDING):
        return None
    return float(nonzero.min()), float(nonzero.max())


def fractional_roi(values: np.ndarray, smallest: float, largest: float) -> np.ndarray:
    """The ROI of a mask of fractions (a probability map, a binary mask resampled with linear interpolation): the
    voxels of at least ``FRACTION_THRESHOLD``, with a ``FractionalMaskWarning`` saying so. Every non-zero voxel,
    as a label mask is read, would make a probability map's faint tail, or a linearly resampled mask's outer shell,
    part of the ROI. ``InputError`` for non-integer values above 1 (a label mask resampled with linear
    interpolation mixes its labels: nothing to threshold) and for fractions that never reach the threshold."""
    if largest > 1.0 + FRACTION_ROUNDING:
        raise InputError(f"the mask holds non-integer values up to {largest:.6g}: neither integer labels nor "
                         "fractions in [0, 1] (a label mask resampled with linear interpolation? resample label masks "
                         "with nearest neighbour)")
    if largest < FRACTION_THRESHOLD:
        raise InputError(f"the mask holds fractions (a probability map or a linearly resampled mask) and none reaches "
                         f"{FRACTION_THRESHOLD:g}: its largest is {largest:.3g}, so its ROI would be empty")
    warnings.warn(FractionalMaskWarning(
        f"the mask holds fractions ({smallest:.3g} to {largest:.3g}: a probability map or a linearly resampled "
        f"mask): its ROI is the voxels of at least {FRACTION_THRESHOLD:g}, IBSI's partial-volume threshold"),
        stacklevel=3)
    return values >= FRACTION_THRESHOLD


def _absent_label(values: np.ndarray, roi: str, source: str) -> str:
    box = _nonzero_box(values)
    labels = np.zeros(0) if box is None else np.unique(box)
    present = ", ".join(f"{v:g}" for v in labels if v != 0) or "none: the mask is empty"
    return f"the mask {source} has no voxel labelled {roi} (its labels: {present})"


def label_image(chosen: np.ndarray, like: sitk.Image) -> sitk.Image:
    """The ROI voxels ``chosen`` (bool, [z, y, x]) as a 0/1 uint8 image on the grid of ``like``."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(chosen).view(np.uint8))  # bools as bytes: no cast copy
    image.CopyInformation(like)
    return image


def labelled(mask: sitk.Image, roi: str | None) -> sitk.Image:
    """``selected`` on a SimpleITK label image: a 0/1 image on its grid."""
    return label_image(selected(sitk.GetArrayViewFromImage(mask), roi), mask)


def first_slice(image_path: Path) -> np.ndarray:
    """The first slice (z index 0) of an image file as an array, through the streaming reader: a compressed file is
    decompressed only that far. What a windowed read (``read_roi_window``) can afford to look at beyond the ROI."""
    reader = information_reader(image_path, "image")
    size = reader.GetSize()
    reader.SetExtractIndex([0] * len(size))
    reader.SetExtractSize([*size[:-1], 1])
    return sitk.GetArrayFromImage(read_pixels(reader, image_path, "image"))


def read_roi_window(image_path: Path, mask_path: Path, margin_mm: float,
                    roi: str | None = None) -> tuple[sitk.Image, sitk.Image] | None:
    """The image and mask cut to the ROI's bounding box grown by ``margin_mm`` per axis (in voxels: the margin over
    the spacing, rounded up; clipped to the image), the mask read first; None when either input is not a plain image
    file (DICOM: read them whole with ``read_image`` and ``read_mask``). The image is read through SimpleITK's
    streaming reader, so a compressed NIfTI is decompressed only up to the window's last slice and only the window
    is kept: a small ROI in a large CT no longer pays for the whole volume. The window keeps the image's spacing and
    direction, with the origin of its first voxel; an empty mask gives the whole image."""
    if image_path.is_dir() or is_dicom(image_path) or (mask_path.is_file() and is_dicom(mask_path)):
        return None
    reader = information_reader(image_path, "image")
    require_volume(reader, f"image {image_path}")
    size = reader.GetSize()
    mask, roi = _label_file(mask_path, reader, roi)
    # the ROI's box from the label array as read, in one pass over it (mask_extent): labelling the whole volume
    # first, or one any() per axis, would each cost another volume-sized pass
    values = sitk.GetArrayViewFromImage(mask)  # (z, y, x)
    bounds = mask_extent(values if roi is None else selected(values, roi))
    if bounds is None:
        if roi is not None:
            raise InputError(_absent_label(values, roi, str(mask_path)))
        return read_pixels(reader, image_path, "image"), labelled(mask, roi)
    if roi is None:  # every non-zero voxel lies in the box, so only the box is compared
        require_one_label(values[tuple(slice(first, last + 1) for first, last in bounds)], str(mask_path))
    index, extent = [], []
    for (first, last), n, spacing in zip(reversed(bounds), size, reader.GetSpacing()):  # x, y, z
        grow = math.ceil(margin_mm / spacing)
        first, last = max(first - grow, 0), min(last + grow + 1, n)
        index.append(first)
        extent.append(last - first)
    reader.SetExtractIndex(index)
    reader.SetExtractSize(extent)
    return read_pixels(reader, image_path, "image"), labelled(sitk.RegionOfInterest(mask, extent, index), roi)
