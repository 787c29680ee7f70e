"""Inventory of any folder tree of DICOM files: image series, mask objects (RTSTRUCT, SEG) and what could not be read.

No naming assumptions: every regular file is tried (with or without a .dcm suffix); files that are not DICOM are
listed as skipped, DICOMDIR files and non-image objects (plans, reports, presentation states …) too. Only headers are
read (``stop_before_pixels`` and ``specific_tags``), so a scan costs about a millisecond per file.

Image files are grouped by (StudyInstanceUID, SeriesInstanceUID), so several series interleaved in one folder (or one
series spread over several) come apart cleanly. Each series is then judged by ``SeriesRules`` (modality, a minimum
number of slices, no localisers/scouts, no derived or secondary-capture images unless a mask references them); a
series that fails a rule stays in the inventory with its ``excluded`` reason. Each mask object is linked to a selected
image series of the same patient: by the series UID it references if that series is in the inventory, else by frame of
reference when exactly one selected series (preferring the mask's own study) shares it. Identifiers are kept in the
inventory (the pipeline needs them to pseudonymise) but never logged.

A copy of a file (same SOPInstanceUID) counts once towards a series' slices. Folders that cannot be listed and
files that cannot be opened are inventoried as ``unreadable`` with the reason, like files that fail to parse.
Each series and mask keeps the set of patient identities (PatientName, PatientBirthDate, PatientSex) its files
carry, only in memory, so that a PatientID shared by different people can be refused.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from radflow.dicom import files
from radflow.dicom.deid import identifiers_unlogged
from radflow.sequences import PROTOCOL_TAGS, Protocol, SequenceRule, protocol_of, rules_from_config, sequence_of

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
#: Secondary Capture Image Storage and its multi-frame variants (screenshots, scanned documents, exported views).
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"

HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "Modality", "PatientID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "SeriesDescription", "ProtocolName", "SeriesNumber", "SeriesDate", "SeriesTime",
    "AcquisitionDate", "AcquisitionTime", "AcquisitionDateTime", "StudyDate", "StudyTime", "Rows", "Columns",
    "NumberOfFrames", "ImageType", "PatientName", "PatientBirthDate", "PatientSex",
    # the acquisition protocol (radflow.sequences: a retest repeats it)
    *PROTOCOL_TAGS,
    # RTSTRUCT
    "StructureSetROISequence", "ReferencedFrameOfReferenceSequence",
    # SEG
    "SegmentSequence", "ReferencedSeriesSequence", "SegmentationType",
]


@dataclass(frozen=True)
class Header:
    """The header fields discovery uses, from one file (strings; '' when absent)."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    series_description: str
    series_number: str
    series_datetime: str
    acquisition_datetime: str
    is_image: bool
    protocol_name: str = ""
    protocol: Protocol = ()  # radflow.sequences.protocol_of
    image_type: tuple[str, ...] = ()  # ImageType values, upper case
    n_frames: int = 1
    centre: str = ""  # value of the attribute that tells centres apart (``scan(centre_attribute=...)``)
    labels: tuple[str, ...] = ()  # ROI names (RTSTRUCT) or segment labels (SEG)
    referenced_series_uids: tuple[str, ...] = ()
    referenced_frame_of_reference_uids: tuple[str, ...] = ()
    identity: tuple[str, str, str] = ("", "", "")  # (PatientName, PatientBirthDate, PatientSex), normalised


@dataclass
class ImageSeries:
    modality: str
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    series_description: str
    series_number: str
    series_datetime: str  # ISO 8601 (YYYY-MM-DDTHH:MM:SS), '' if unknown
    acquisition_datetime: str  # earliest acquisition time over the files, ISO 8601, '' if unknown
    files: list[Path] = field(default_factory=list)
    sop_class_uid: str = ""
    image_type: tuple[str, ...] = ()
    centre: str = ""
    n_slices: int = 0  # frames over all distinct SOP instances (a multi-frame file counts its frames)
    excluded: str = ""  # why SeriesRules leave this series out ('' = selected)
    protocol_name: str = ""
    protocol: Protocol = ()  # of its first file (radflow.sequences.protocol_of)
    sequence: str = ""  # the configured sequence it belongs to (SeriesRules.sequences), '' when none
    duplicate_files: int = 0  # files repeating a SOP instance already counted
    identities: set[tuple[str, str, str]] = field(default_factory=set, repr=False)
    sop_instance_uids: set[str] = field(default_factory=set, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.study_uid, self.series_uid)

    @property
    def n_files(self) -> int:
        return len(self.files)


@dataclass
class MaskObject:
    """An RTSTRUCT or SEG file and the image series it was linked to."""

    kind: str  # "RTSTRUCT" or "SEG"
    path: Path
    patient_id: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    frame_of_reference_uid: str
    labels: tuple[str, ...]  # ROI names or segment labels
    referenced_series_uids: tuple[str, ...]
    linked_series: tuple[str, str] | None = None  # (study UID, series UID) of the image series
    link_method: str = "unlinked"  # "referenced_series", "frame_of_reference", "ambiguous", "unlinked"
    identity: tuple[str, str, str] = field(default=("", "", ""), repr=False)


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass
class Inventory:
    series: list[ImageSeries]
    masks: list[MaskObject]
    unreadable: list[SkippedFile]  # folders that cannot be listed, files that cannot be opened or parsed
    skipped: list[SkippedFile]  # not DICOM, DICOMDIR, or DICOM objects that are neither images nor masks
    root: Path | None = None  # the folder that was scanned

    def series_by_key(self) -> dict[tuple[str, str], ImageSeries]:
        return {s.key: s for s in self.series}

    def masks_for(self, series: ImageSeries) -> list[MaskObject]:
        return [m for m in self.masks if m.linked_series == series.key]

    @property
    def selected(self) -> list[ImageSeries]:
        return [s for s in self.series if not s.excluded]


@dataclass(frozen=True)
class SeriesRules:
    """Which image series are candidates for feature extraction (config ``series``)."""

    modalities: tuple[str, ...] = ("CT", "MR", "PT")
    min_slices: int = 1
    skip_localizers: bool = True
    skip_derived: bool = True
    sequences: tuple[SequenceRule, ...] = ()  # radflow.sequences (config series.sequences)

    @classmethod
    def from_config(cls, doc: dict | None) -> "SeriesRules":
        doc = doc or {}
        return cls(modalities=tuple(doc.get("modalities", cls.modalities)),
                   min_slices=int(doc.get("min_slices", cls.min_slices)),
                   skip_localizers=bool(doc.get("skip_localizers", cls.skip_localizers)),
                   skip_derived=bool(doc.get("skip_derived", cls.skip_derived)),
                   sequences=rules_from_config(doc.get("sequences")))

    def sequence(self, series: ImageSeries) -> str:
        """The configured sequence ``series`` belongs to, or ''."""
        return sequence_of(series.modality, series.series_description, series.protocol_name, self.sequences)


def exclusion(series: ImageSeries, rules: SeriesRules, contoured: bool = False) -> str:
    """Why ``rules`` leave ``series`` out, or '' when it is a candidate. A series a mask references by its UID
    (``contoured``) is what was segmented, and one of a configured sequence is what the user asked for, so neither
    is left out for being derived or secondary: an ADC map or a subtraction series is DERIVED, and is the very image
    an MR study contours or borrows the T2-weighted series' contours for."""
    skip_derived = rules.skip_derived and not contoured and not series.sequence
    if series.modality not in rules.modalities:
        return f"modality {series.modality or 'missing'} not in {list(rules.modalities)}"
    if rules.skip_localizers and "LOCALIZER" in series.image_type:
        return "localizer (ImageType LOCALIZER)"
    if skip_derived and series.sop_class_uid.startswith(SECONDARY_CAPTURE_PREFIX):
        return "secondary capture"
    if skip_derived and series.image_type[:1] == ("DERIVED",):
        return "derived image (ImageType DERIVED)"
    if skip_derived and series.image_type[1:2] == ("SECONDARY",):
        return "secondary image (ImageType SECONDARY)"
    if series.n_slices < rules.min_slices:
        return f"{series.n_slices} slice(s), fewer than {rules.min_slices} (scout or partial series?)"
    return ""


class NotDicom(Exception):
    """Raised for files that are not DICOM (skipped, not 'unreadable')."""


def iter_files(root: Path, unlisted: list[SkippedFile] | None = None) -> Iterator[Path]:
    """Regular files under ``root`` in a stable (sorted) order, hidden directories included, links not followed;
    folders that cannot be listed (permissions, I/O errors) are appended to ``unlisted``."""
    def record(error: OSError) -> None:
        if unlisted is not None:
            unlisted.append(SkippedFile(Path(error.filename or root),
                                        f"folder cannot be listed: {error.strerror or type(error).__name__}"))

    for folder, dirs, names in os.walk(root, followlinks=False, onerror=record):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file():
                yield path


def read_header(path: Path, tags: list[str] = HEADER_TAGS) -> pydicom.Dataset:
    try:
        return files.read(path, stop_before_pixels=True, specific_tags=tags)
    except InvalidDicomError:
        raise NotDicom("not a DICOM file") from None


def iso_datetime(date: str, time: str = "") -> str:
    """DICOM DA (+ TM) or DT -> 'YYYY-MM-DDTHH:MM:SS' (seconds dropped if absent); '' if no date."""
    date = date.strip()
    if len(date) < 8 or not date[:8].isdigit():
        return ""
    if len(date) > 8 and not time:  # a DT value
        date, time = date[:8], date[8:]
    result = f"{date[:4]}-{date[4:6]}-{date[6:8]}"
    digits = time.strip().split(".")[0]
    if len(digits) >= 4 and digits[:4].isdigit():
        result += f"T{digits[:2]}:{digits[2:4]}"
        if len(digits) >= 6 and digits[4:6].isdigit():
            result += f":{digits[4:6]}"
    return result


def _text(ds: pydicom.Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def rtstruct_references(ds: pydicom.Dataset) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(referenced series UIDs, referenced frame-of-reference UIDs) of a structure set."""
    series, frames = [], []
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        frames.append(_text(frame, "FrameOfReferenceUID"))
        for study in frame.get("RTReferencedStudySequence", []):
            for item in study.get("RTReferencedSeriesSequence", []):
                series.append(_text(item, "SeriesInstanceUID"))
    frames.extend(_text(roi, "ReferencedFrameOfReferenceUID") for roi in ds.get("StructureSetROISequence", []))
    return _unique(series), _unique(frames)


def _values(ds: pydicom.Dataset, keyword: str) -> tuple[str, ...]:
    """A multi-valued attribute as upper-case strings (a single value as a 1-tuple, absent as ())."""
    value = ds.get(keyword)
    if value is None or value == "":
        return ()
    values = value if isinstance(value, pydicom.multival.MultiValue | list | tuple) else [value]
    return tuple(str(v).strip().upper() for v in values)


def _identity(ds: pydicom.Dataset) -> tuple[str, str, str]:
    """(name, birth date, sex) normalised for comparison: case, spacing and empty name components ignored."""
    name = "^".join(part.strip() for part in _text(ds, "PatientName").upper().split("^")).rstrip("^")
    return " ".join(name.split()), _text(ds, "PatientBirthDate"), _text(ds, "PatientSex").upper()


def _frames(ds: pydicom.Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def header_from_dataset(path: Path, ds: pydicom.Dataset, centre_attribute: str = "") -> Header:
    sop_class = _text(ds, "SOPClassUID") or _text(getattr(ds, "file_meta", pydicom.Dataset()),
                                                    "MediaStorageSOPClassUID")
    modality = _text(ds, "Modality")
    labels: tuple[str, ...] = ()
    referenced_series: tuple[str, ...] = ()
    referenced_frames: tuple[str, ...] = ()
    if modality == "RTSTRUCT" or sop_class == RTSTRUCT_SOP_CLASS:
        labels = tuple(_text(roi, "ROIName") for roi in ds.get("StructureSetROISequence", []))
        referenced_series, referenced_frames = rtstruct_references(ds)
    elif modality == "SEG" or sop_class == SEG_SOP_CLASS:
        labels = tuple(_text(seg, "SegmentLabel") for seg in ds.get("SegmentSequence", []))
        referenced_series = _unique(_text(item, "SeriesInstanceUID") for item in ds.get("ReferencedSeriesSequence", []))
    return Header(
        path=path,
        sop_class_uid=sop_class,
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        modality=modality,
        patient_id=_text(ds, "PatientID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        frame_of_reference_uid=_text(ds, "FrameOfReferenceUID") or (referenced_frames[0] if referenced_frames else ""),
        series_description=_text(ds, "SeriesDescription"),
        protocol_name=_text(ds, "ProtocolName"),
        series_number=_text(ds, "SeriesNumber"),
        series_datetime=iso_datetime(_text(ds, "SeriesDate"), _text(ds, "SeriesTime"))
        or iso_datetime(_text(ds, "StudyDate"), _text(ds, "StudyTime")),
        acquisition_datetime=iso_datetime(_text(ds, "AcquisitionDateTime"))
        or iso_datetime(_text(ds, "AcquisitionDate"), _text(ds, "AcquisitionTime")),
        is_image="Rows" in ds and "Columns" in ds,
        image_type=_values(ds, "ImageType"),
        protocol=protocol_of({tag: "\\".join(_values(ds, tag)) for tag in PROTOCOL_TAGS}, _values(ds, "ImageType")),
        n_frames=_frames(ds),
        centre=_text(ds, centre_attribute) if centre_attribute else "",
        labels=labels,
        referenced_series_uids=referenced_series,
        referenced_frame_of_reference_uids=referenced_frames,
        identity=_identity(ds),
    )


def classify(header: Header) -> str:
    """'RTSTRUCT', 'SEG', 'image' or 'other'."""
    if header.modality == "RTSTRUCT" or header.sop_class_uid == RTSTRUCT_SOP_CLASS:
        return "RTSTRUCT"
    if header.modality == "SEG" or header.sop_class_uid == SEG_SOP_CLASS:
        return "SEG"
    if header.is_image and header.series_uid:
        return "image"
    return "other"


def group_series(headers: Iterable[Header]) -> list[ImageSeries]:
    """Image headers -> one ``ImageSeries`` per (study UID, series UID), in order of first appearance."""
    groups: dict[tuple[str, str], ImageSeries] = {}
    for h in headers:
        key = (h.study_uid, h.series_uid)
        series = groups.get(key)
        if series is None:
            series = groups[key] = ImageSeries(
                modality=h.modality, patient_id=h.patient_id, study_uid=h.study_uid, series_uid=h.series_uid,
                frame_of_reference_uid=h.frame_of_reference_uid, series_description=h.series_description,
                series_number=h.series_number, series_datetime=h.series_datetime,
                acquisition_datetime=h.acquisition_datetime, sop_class_uid=h.sop_class_uid,
                image_type=h.image_type, centre=h.centre, protocol_name=h.protocol_name, protocol=h.protocol)
        elif h.acquisition_datetime and (not series.acquisition_datetime
                                         or h.acquisition_datetime < series.acquisition_datetime):
            series.acquisition_datetime = h.acquisition_datetime
        series.files.append(h.path)
        series.identities.add(h.identity)
        if h.sop_instance_uid and h.sop_instance_uid in series.sop_instance_uids:
            series.duplicate_files += 1  # a copy of a slice: read once, counted once
            continue
        series.sop_instance_uids.add(h.sop_instance_uid)
        series.n_slices += h.n_frames
    return list(groups.values())


def mask_from_header(h: Header, kind: str) -> MaskObject:
    return MaskObject(kind=kind, path=h.path, patient_id=h.patient_id, study_uid=h.study_uid,
                      series_uid=h.series_uid, sop_instance_uid=h.sop_instance_uid,
                      frame_of_reference_uid=h.frame_of_reference_uid, labels=h.labels,
                      referenced_series_uids=h.referenced_series_uids, identity=h.identity)


def link_mask(mask: MaskObject, series: list[ImageSeries]) -> tuple[tuple[str, str] | None, str]:
    """(series key, method) for a mask: its referenced series first, else the one selected series sharing its frame
    of reference (same study preferred); 'ambiguous' when several remain, 'excluded_series' when it references a
    series the rules left out, 'unlinked' when none. Masks never link across patients."""
    series = [s for s in series if not (mask.patient_id and s.patient_id and s.patient_id != mask.patient_id)]
    for uid in mask.referenced_series_uids:
        matches = [s for s in series if s.series_uid == uid]
        if matches:
            same_study = [s for s in matches if s.study_uid == mask.study_uid]
            chosen = (same_study or matches)[0]
            return (chosen.key, "referenced_series") if not chosen.excluded else (None, "excluded_series")
    if mask.frame_of_reference_uid:
        candidates = [s for s in series if s.frame_of_reference_uid == mask.frame_of_reference_uid
                      and not s.excluded]
        same_study = [s for s in candidates if s.study_uid == mask.study_uid]
        candidates = same_study or candidates
        if len(candidates) == 1:
            return candidates[0].key, "frame_of_reference"
        if len(candidates) > 1:
            return None, "ambiguous"
    return None, "unlinked"


@identifiers_unlogged()
def scan(root: Path | str, rules: SeriesRules | None = None, centre_attribute: str = "") -> Inventory:
    """Inventory every DICOM file under ``root`` (see the module docstring).

    ``rules`` decide which image series are candidates (default ``SeriesRules()``); ``centre_attribute`` names a
    header attribute (e.g. InstitutionName) whose value is kept per series to choose per-centre ROI aliases.
    """
    rules = rules or SeriesRules()
    tags = HEADER_TAGS + ([centre_attribute] if centre_attribute and centre_attribute not in HEADER_TAGS else [])
    images: list[Header] = []
    masks: list[MaskObject] = []
    unreadable: list[SkippedFile] = []
    skipped: list[SkippedFile] = []
    for path in iter_files(Path(root), unreadable):
        if path.name.upper() == "DICOMDIR":
            skipped.append(SkippedFile(path, "DICOMDIR"))
            continue
        try:
            header = header_from_dataset(path, read_header(path, tags), centre_attribute)
        except NotDicom as exc:
            skipped.append(SkippedFile(path, str(exc)))
            continue
        except OSError as exc:  # permissions, I/O errors: the file exists but cannot be read
            unreadable.append(SkippedFile(path, f"file cannot be opened: {exc.strerror or type(exc).__name__}"))
            continue
        except Exception as exc:  # pydicom raises many types for truncated or corrupt files (values are lazy)
            unreadable.append(SkippedFile(path, f"{type(exc).__name__}: {exc}"[:200]))
            continue
        kind = classify(header)
        if header.sop_class_uid == DICOMDIR_SOP_CLASS:
            skipped.append(SkippedFile(path, "DICOMDIR"))
        elif not header.modality and not header.series_uid:
            unreadable.append(SkippedFile(path, "header without Modality and SeriesInstanceUID (truncated file?)"))
        elif kind == "image":
            images.append(header)
        elif kind in ("RTSTRUCT", "SEG"):
            masks.append(mask_from_header(header, kind))
        else:
            skipped.append(SkippedFile(path, f"not an image or mask (Modality {header.modality or 'missing'})"))
    series = group_series(images)
    contoured = {uid for mask in masks for uid in mask.referenced_series_uids}
    for s in series:
        s.sequence = rules.sequence(s)
        s.excluded = exclusion(s, rules, contoured=s.series_uid in contoured)
    for mask in masks:
        mask.linked_series, mask.link_method = link_mask(mask, series)
    return Inventory(series=series, masks=masks, unreadable=unreadable, skipped=skipped, root=Path(root))
