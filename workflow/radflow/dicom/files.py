"""DICOM files on disk: which files are DICOM, and reading one, with or without the Part 10 preamble.

A DICOM Part 10 file starts with a 128-byte preamble and "DICM". Older exports (ACR-NEMA style, some PACS and
anonymisers) write the data set alone: no preamble, often no file meta group either, implicit VR little endian.
pydicom reads those only when forced, and forcing every file would read any binary file as a (broken) data set. So a
file is DICOM when it has the preamble, or when its first element is a tag of group 0x0002 (file meta) or 0x0008
(identification), where every such data set starts; only those are forced. Discovery, ingest, ``radflow extract``
and the API all decide and read through here, so a folder the pipeline reads is one ``radflow extract`` reads too.

pydicom is imported on the first read only: deciding is a look at a file's first bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pydicom

# the first two bytes of a data set without preamble: group 0x0002 or 0x0008, little or big endian
_RAW_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x08")


def has_preamble(path: Path | str) -> bool:
    """'DICM' after the 128-byte preamble (the test ``pydicom.misc.is_dicom`` makes)."""
    with open(path, "rb") as fh:
        fh.read(128)
        return fh.read(4) == b"DICM"


def looks_like_raw_dicom(path: Path | str) -> bool:
    """A file without the preamble whose first element is a tag of group 0x0002 or 0x0008 (an ACR-NEMA-style
    export)."""
    with open(path, "rb") as fh:
        start = fh.read(4)
    return len(start) == 4 and start[:2] in _RAW_STARTS


def is_dicom(path: Path | str) -> bool:
    """A DICOM file, with or without the Part 10 preamble."""
    return has_preamble(path) or looks_like_raw_dicom(path)


def read(path: Path | str, **options: Any) -> "pydicom.Dataset":
    """``pydicom.dcmread(path, **options)``, forced for a data set without preamble (``looks_like_raw_dicom``);
    ``InvalidDicomError`` for any other file that is not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, **options)
    except InvalidDicomError:
        if not looks_like_raw_dicom(path):
            raise
    ds = pydicom.dcmread(path, force=True, **options)
    if "TransferSyntaxUID" not in ds.file_meta:
        # the encoding pydicom found, as the transfer syntax a Part 10 file would name (its pixel data cannot be
        # decoded without one)
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit else
                                          pydicom.uid.ExplicitVRLittleEndian if little else
                                          pydicom.uid.ExplicitVRBigEndian)
    return ds
