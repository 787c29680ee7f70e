"""Reading one image and one mask from whatever a user has: a DICOM series folder, NIfTI, NRRD, RTSTRUCT or SEG.

pydicom is imported only for DICOM input: reading NIfTI does not need it (its import costs a fresh process ~0.15 s).
"""
from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk


class InputError(ValueError):
    pass


def is_dicom(path: Path) -> bool:
    """A file with the DICOM preamble ('DICM' after 128 bytes), the test ``pydicom.misc.is_dicom`` makes."""
    with open(path, "rb") as fh:
        fh.read(128)
        return fh.read(4) == b"DICM"


def _dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_dicom(p))


def read_image(path: Path) -> sitk.Image:
    """A DICOM series folder (one series) or any file SimpleITK reads (NIfTI, NRRD, MHA)."""
    if path.is_dir():
        from radflow.dicom.series import read_series

        files = _dicom_files(path)
        if not files:
            raise InputError(f"no DICOM files in {path}")
        return read_series(files)
    return _read_file(path, "image")


def _read_file(path: Path, what: str) -> sitk.Image:
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(f"cannot read {what} {path}: not a DICOM series folder, NIfTI, NRRD or MHA file") from None


def _the_label(labels: list[str], wanted: str | None, kind: str) -> str:
    """The ROI a user asked for, or the only one there is."""
    if wanted is not None:
        return wanted
    if len(labels) != 1:
        raise InputError(f"the {kind} has ROIs {labels}: choose one with --roi")
    return labels[0]


def read_mask(path: Path, reference: sitk.Image, roi: str | None = None) -> sitk.Image:
    """A label image on the grid of ``reference``: NIfTI/NRRD (non-zero voxels are the ROI), RTSTRUCT or SEG."""
    if path.is_file() and is_dicom(path):
        import pydicom

        modality = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", ""))
        if modality == "RTSTRUCT":
            from radflow.dicom import rtstruct

            return rtstruct.rasterise(path, _the_label(rtstruct.roi_names(path), roi, "RTSTRUCT"), reference)
        if modality == "SEG":
            from radflow.dicom import seg

            return seg.read_segment(path, _the_label(seg.segment_labels(path), roi, "SEG"), reference)
        raise InputError(f"a DICOM mask must be RTSTRUCT or SEG, not {modality or 'unknown'}")
    mask = _read_file(path, "mask")
    if mask.GetSize() != reference.GetSize():
        raise InputError(f"mask size {mask.GetSize()} differs from image size {reference.GetSize()}")
    return mask != 0 if roi is None else mask == int(roi)
