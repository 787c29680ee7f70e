"""Pseudonymisation primitives: keyed, stable pseudonyms and UIDs, and the basic-profile actions that matter here.

A pseudonym is ``HMAC-SHA256(key, value)``: stable for one key (so a patient keeps their pseudonym across runs and
sites sharing the key), not reversible without the key, and not guessable by hashing candidate IDs (which a plain
hash would allow, patient IDs being short). Nothing in this module logs or returns an identifier in a message.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom import config as pydicom_config

#: Public, documented key for demos and tests only: pseudonyms made with it protect nothing.
DEMO_KEY = b"radflow-demo-key: NOT SECRET, for demo data only"
#: Shortest accepted key (bytes): HMAC keys shorter than this are guessable by brute force.
MIN_KEY_BYTES = 16
#: Root for UIDs derived from a 128-bit number (PS3.5 B.2: "2.25." + the UUID as a decimal integer).
UUID_ROOT = "2.25."


class PseudonymKeyError(RuntimeError):
    """No usable pseudonymisation key; the message says where one is looked for (never its value)."""


@contextmanager
def identifiers_unlogged() -> Iterator[None]:
    """Stop pydicom from logging attribute values while reading (usable as a decorator too).

    pydicom's value validation warns *and logs* offending values verbatim (a too-long PatientID, a PatientName with
    an invalid character), which would put identifiers into pipeline logs. Validation on reading is switched off
    for the duration; radflow checks what it needs itself.
    """
    previous = pydicom_config.settings.reading_validation_mode
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    try:
        yield
    finally:
        pydicom_config.settings.reading_validation_mode = previous


def _digest(value: str, key: bytes) -> bytes:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest()


def pseudonym(value: str, key: bytes, prefix: str = "", length: int = 16) -> str:
    """``prefix`` + the first ``length`` hex digits of HMAC-SHA256(key, value) (16 hex = 64 bits: no collisions
    in practice for cohorts of any realistic size)."""
    if not 1 <= length <= 64:
        raise ValueError("length must be 1..64 hex digits")
    return prefix + _digest(value, key).hex()[:length]


def pseudo_uid(uid: str, key: bytes) -> str:
    """A valid DICOM UID under 2.25 derived from HMAC(key, uid): same input and key, same UID.

    The first 128 bits of the HMAC are made a version-8 (custom, RFC 9562) variant-10 UUID, as 2.25 UIDs are UUIDs,
    and written as a decimal integer (at most 39 digits, so at most 44 characters: within the 64 allowed).
    The "uid:" domain separates these from ``pseudonym`` values of the same string.
    """
    number = int.from_bytes(_digest("uid:" + uid, key)[:16], "big")
    number = (number & ~(0xF << 76)) | (0x8 << 76)  # version 8
    number = (number & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122/9562 variant
    return UUID_ROOT + str(number)


def _checked(key: bytes, source: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the pseudonymisation key from {source} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def key_file_note(key_file: Path | str | None) -> str | None:
    """What in a key file a user may not know is part of the key (``load_key`` uses its bytes as they are, one
    trailing newline stripped): a Windows line end's carriage return, or a byte-order mark an editor wrote. The same
    secret typed into the environment variable, or the file saved again on another system, then gives other case ids:
    said, not changed, because changing it would change the case ids of every study already run with such a file."""
    if key_file is None or not Path(key_file).is_file():
        return None
    raw = Path(key_file).read_bytes()
    found = []
    if raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        found.append("starts with a byte-order mark (an editor's encoding marker)")
    if raw.endswith(b"\r\n"):
        found.append("ends with a Windows line end (its carriage return, \\r, stays in the key)")
    if not found:
        return None
    return (f"the pseudonymisation key file {key_file} {' and '.join(found)}: those bytes are part of the key, so the "
            "same secret from the environment, or this file saved without them, gives other case ids; keep the file "
            "byte for byte as it is for this study and every rerun")


def load_key(env_var: str = "RADFLOW_PSEUDONYM_KEY", key_file: Path | str | None = None,
             allow_demo_key: bool = False) -> bytes:
    """The pseudonymisation key: from ``key_file`` if given, else from the environment variable ``env_var``.

    A key file's bytes are used as they are (one trailing newline stripped); an environment value as UTF-8.
    Only with ``allow_demo_key=True`` does a missing key fall back to the public ``DEMO_KEY`` (demo data only).
    """
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise PseudonymKeyError(f"pseudonymisation key file {path} does not exist")
        raw = path.read_bytes()
        return _checked(raw[:-1] if raw.endswith(b"\n") else raw, f"file {path}")
    value = os.environ.get(env_var)
    if value:
        return _checked(value.encode("utf-8"), f"${env_var}")
    if allow_demo_key:
        return DEMO_KEY
    raise PseudonymKeyError(
        f"no pseudonymisation key: set ${env_var} or pass a key file (at least {MIN_KEY_BYTES} bytes); "
        "the public demo key is used only when explicitly allowed")


# DICOM PS3.15 Annex E, Table E.1-1 (2025 edition), Basic Application Level Confidentiality Profile, restricted to
# attributes found in CT/MR/PET image, RTSTRUCT and SEG headers. Action codes as in the standard: X remove,
# Z empty (or dummy), D dummy value, U replace by a consistent UID; "X/Z" etc.: the first unless the IOD needs
# the attribute present (type 2/1). Private attributes (odd groups) are removed as well (X).
BASIC_PROFILE_ACTIONS: dict[str, str] = {
    # patient
    "PatientName": "Z", "PatientID": "Z", "PatientBirthDate": "Z", "PatientSex": "Z", "PatientBirthTime": "X",
    "PatientAge": "X", "PatientSize": "X", "PatientWeight": "X", "PatientAddress": "X", "PatientComments": "X",
    "OtherPatientIDs": "X", "OtherPatientIDsSequence": "X", "OtherPatientNames": "X", "PatientBirthName": "X",
    "PatientMotherBirthName": "X", "IssuerOfPatientID": "X", "MedicalRecordLocator": "X", "EthnicGroup": "X",
    "Occupation": "X", "AdditionalPatientHistory": "X", "PatientTelephoneNumbers": "X",
    # study, series, visit
    "AccessionNumber": "Z", "StudyID": "Z", "StudyDate": "Z", "StudyTime": "Z", "StudyDescription": "X",
    "SeriesDate": "X/D", "SeriesTime": "X/D", "SeriesDescription": "X", "AcquisitionDate": "X/Z",
    "AcquisitionTime": "X/Z", "AcquisitionDateTime": "X/Z/D", "ContentDate": "Z/D", "ContentTime": "Z/D",
    "InstanceCreationDate": "X/D", "InstanceCreationTime": "X/Z/D", "ProtocolName": "X/D", "ImageComments": "X",
    "RequestAttributesSequence": "X", "ReferencedPatientSequence": "X", "ReferencedStudySequence": "X/Z",
    # people, places, devices
    "ReferringPhysicianName": "Z", "PerformingPhysicianName": "X", "PhysiciansOfRecord": "X",
    "NameOfPhysiciansReadingStudy": "X", "OperatorsName": "X/Z/D", "InstitutionName": "X/Z/D",
    "InstitutionAddress": "X", "InstitutionalDepartmentName": "X", "StationName": "X/Z/D",
    "DeviceSerialNumber": "X/Z/D",
    # UIDs: replaced consistently (pseudo_uid) so that series, RTSTRUCT and SEG references stay linked
    "StudyInstanceUID": "U", "SeriesInstanceUID": "U", "SOPInstanceUID": "U", "MediaStorageSOPInstanceUID": "U",
    "FrameOfReferenceUID": "U", "ReferencedSOPInstanceUID": "U", "ReferencedFrameOfReferenceUID": "U",
    "RelatedFrameOfReferenceUID": "U", "IrradiationEventUID": "U", "DimensionOrganizationUID": "U",
    # RT structure set. NB: the basic profile empties ROIName; radflow selects ROIs by name, so a de-identifier
    # feeding radflow keeps it under the Clean Descriptors option (C) and checks the names carry no identifiers.
    "StructureSetLabel": "D", "StructureSetName": "X", "StructureSetDescription": "X", "StructureSetDate": "Z",
    "StructureSetTime": "Z", "ROIName": "Z", "ROIDescription": "X", "ROIGenerationDescription": "X",
    "ROIInterpreter": "Z",
}

#: Attributes the basic profile removes outright (action "X", or "X/..." where the IOD allows removal).
REMOVED_TAGS: tuple[str, ...] = tuple(k for k, a in BASIC_PROFILE_ACTIONS.items() if a.startswith("X"))
#: Attributes whose UIDs are replaced by ``pseudo_uid`` (consistently, so references survive).
UID_TAGS: tuple[str, ...] = tuple(k for k, a in BASIC_PROFILE_ACTIONS.items() if a == "U")
#: Attributes kept present but emptied or given a dummy value.
EMPTIED_TAGS: tuple[str, ...] = tuple(k for k, a in BASIC_PROFILE_ACTIONS.items() if a[0] in "ZD")


# ------------------------------------------------------------------------------------------ dates

#: Largest per-patient date shift (days). A year keeps seasons roughly and intervals exactly.
MAX_DATE_SHIFT_DAYS = 365


def date_shift_days(patient_id: str, key: bytes, max_days: int = MAX_DATE_SHIFT_DAYS) -> int:
    """A keyed per-patient shift of 1..``max_days`` days into the past: the same for every date of a patient (so
    intervals between scans survive), unpredictable without the key, never 0 (which would keep the real date)."""
    number = int.from_bytes(_digest("date-shift:" + patient_id, key)[:8], "big")
    return -(1 + number % max_days)


def shift_iso_datetime(value: str, days: int) -> str:
    """'YYYY-MM-DD[THH:MM[:SS]]' moved by ``days`` whole days (time of day kept); '' stays ''."""
    import datetime as dt

    if not value:
        return ""
    date, _, time = value.partition("T")
    shifted = dt.date.fromisoformat(date) + dt.timedelta(days=days)
    return shifted.isoformat() + (f"T{time}" if time else "")
