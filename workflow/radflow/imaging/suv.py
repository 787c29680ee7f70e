"""PET standardised uptake value, body weight (SUVbw), from DICOM PET tags.

    SUVbw = C(t) [Bq/ml] * W [g] / D_decayed [Bq]          (1 ml of tissue taken as 1 g)

C is the stored value times RescaleSlope plus RescaleIntercept (Units BQML), W the PatientWeight (kg -> g), and
D_decayed the injected RadionuclideTotalDose decayed to the time the image activities refer to (DecayCorrection):

- ``START``: images are decay-corrected to the scan start, so D_decayed = D * 2^(-(t_scan - t_inj) / T_half) with
  t_scan the SeriesDate/SeriesTime; when SeriesTime lies after the slice's AcquisitionTime (the series was
  re-created by post-processing and its time reset) the acquisition date/time is used instead, or the caller's
  ``scan_start`` (the earliest acquisition time of the series) when given — the QIBA vendor-neutral rule;
- ``ADMIN``: images are decay-corrected to the administration time, so D_decayed = D.

t_inj is RadiopharmaceuticalStartDateTime, or RadiopharmaceuticalStartTime on the SeriesDate (a day earlier if that
would put the injection after the scan: injected before midnight). Units GML are already SUVbw (factor 1). Units CNTS
(Philips) follow QIBA's vendor-neutral rule: the rescaled values times Philips' SUV scale factor (7053,1000), or,
without it, times the activity concentration scale factor (7053,1009) to Bq/ml and then as BQML (private group
"Philips PET Private Group"). Anything else (CNTS without those factors, DecayCorrection NONE, a missing or zero tag)
raises ``SuvError`` naming the tag.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from pydicom.dataset import Dataset

from radflow.dicom import files
from radflow.dicom.deid import identifiers_unlogged

SUPPORTED_DECAY_CORRECTIONS = ("START", "ADMIN")
# Philips' private PET group: the SUVbw factor of the rescaled values of a Units CNTS image, (7053,1000), and the
# counts -> Bq/ml factor, (7053,1009), as element offsets in the creator's block
PHILIPS_PET_CREATOR = "Philips PET Private Group"
PHILIPS_SUV_FACTOR, PHILIPS_ACTIVITY_FACTOR = 0x00, 0x09
# GE PET: the scan start of the original acquisition, kept when a post-processed series resets SeriesTime.
GE_SCAN_DATETIME = (0x0009, 0x100D)


# QC codes of the refusals (radflow.qc.CHECKS).
PET_TAGS_MISSING = "PET_TAGS_MISSING"
PET_TAGS_INCONSISTENT = "PET_TAGS_INCONSISTENT"
PET_UNITS = "PET_UNITS"


class SuvError(ValueError):
    """SUV cannot be computed; ``code`` is the QC code (missing tag, inconsistent tags, unsupported units)."""

    def __init__(self, message: str, code: str = PET_TAGS_MISSING):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SuvParameters:
    units: str
    decay_correction: str
    total_dose_bq: float
    half_life_s: float
    weight_kg: float
    injection_time: datetime | None
    scan_time: datetime | None
    activity_scale: float = 1.0  # rescaled values -> Bq/ml (Philips CNTS: (7053,1009))
    suv_scale: float | None = None  # rescaled values -> SUVbw given by the scanner (Philips CNTS: (7053,1000))

    @property
    def decay_time_s(self) -> float:
        if self.decay_correction == "ADMIN":
            return 0.0
        return (self.scan_time - self.injection_time).total_seconds()

    @property
    def decayed_dose_bq(self) -> float:
        return self.total_dose_bq * math.pow(2.0, -self.decay_time_s / self.half_life_s)

    @property
    def factor(self) -> float:
        """Multiply the rescaled values (Bq/ml for BQML) by this to get SUVbw (g/ml)."""
        if self.suv_scale is not None:
            return self.suv_scale
        if self.units == "GML":
            return 1.0
        return self.activity_scale * self.weight_kg * 1000.0 / self.decayed_dose_bq


def _tag(ds: Dataset, keyword: str, where: str = ""):
    value = getattr(ds, keyword, None)
    if value is None or value == "":
        raise SuvError(f"SUV needs the DICOM tag {where}{keyword}, which is missing or empty")
    return value


def _positive(ds: Dataset, keyword: str, where: str = "") -> float:
    value = float(_tag(ds, keyword, where))
    if not value > 0:
        raise SuvError(f"SUV needs a positive {where}{keyword}, got {value}")
    return value


def parse_time(value: str) -> tuple[int, int, int, int]:
    """DICOM TM (HH, HHMM, HHMMSS, HHMMSS.FFFFFF, or the old HH:MM:SS) -> (h, m, s, microseconds)."""
    text = str(value).strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    if len(whole) < 2 or not whole.isdigit():
        raise SuvError(f"cannot read DICOM time {value!r}")
    hour, minute, second = int(whole[0:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return hour, minute, second, micro


def parse_date(value: str) -> datetime:
    text = str(value).strip().replace(".", "")
    try:
        return datetime.strptime(text, "%Y%m%d")
    except ValueError:
        raise SuvError(f"cannot read DICOM date {value!r}") from None


def combine(date_value: str, time_value: str) -> datetime:
    hour, minute, second, micro = parse_time(time_value)
    return parse_date(date_value).replace(hour=hour, minute=minute, second=second, microsecond=micro)


def parse_datetime(value: str) -> datetime:
    """DICOM DT (YYYYMMDDHHMMSS.FFFFFF&ZZXX, trailing components optional) -> local wall time.

    The UTC offset (&ZZXX) is dropped: it states the offset of the local time the value is written in, and the TM
    tags it is compared with (SeriesTime, AcquisitionTime) are in that same local time.
    """
    text = str(value).strip()
    for sign in "+-":
        if sign in text[8:]:
            text = text[: text.index(sign, 8)]
    if len(text) < 8:
        raise SuvError(f"cannot read DICOM date-time {value!r}")
    moment = parse_date(text[:8])
    if len(text) > 8:
        hour, minute, second, micro = parse_time(text[8:])
        moment = moment.replace(hour=hour, minute=minute, second=second, microsecond=micro)
    return moment


def _radiopharmaceutical(ds: Dataset) -> Dataset:
    sequence = getattr(ds, "RadiopharmaceuticalInformationSequence", None)
    if not sequence:
        raise SuvError("SUV needs the DICOM tag RadiopharmaceuticalInformationSequence, which is missing or empty")
    return sequence[0]


def _scan_time(ds: Dataset, scan_start: datetime | None) -> datetime:
    series = combine(_tag(ds, "SeriesDate"), _tag(ds, "SeriesTime"))
    acquisition_date, acquisition_time = getattr(ds, "AcquisitionDate", None), getattr(ds, "AcquisitionTime", None)
    if not (acquisition_date and acquisition_time):
        return series
    acquisition = combine(acquisition_date, acquisition_time)
    if series <= acquisition:
        return series
    # SeriesTime after the acquisition: a post-processed series whose time was reset.
    if scan_start is not None:
        return scan_start
    if GE_SCAN_DATETIME in ds and ds[GE_SCAN_DATETIME].value:
        return parse_datetime(ds[GE_SCAN_DATETIME].value)
    return acquisition


def _injection_time(info: Dataset, ds: Dataset, scan: datetime) -> datetime:
    start_datetime = getattr(info, "RadiopharmaceuticalStartDateTime", None)
    if start_datetime:
        return parse_datetime(start_datetime)
    where = "RadiopharmaceuticalInformationSequence[0]."
    injection = combine(_tag(ds, "SeriesDate"), _tag(info, "RadiopharmaceuticalStartTime", where))
    if injection > scan:  # only a time of day is known: injected before midnight
        injection -= timedelta(days=1)
    return injection


def suv_parameters(ds: Dataset, scan_start: datetime | None = None) -> SuvParameters:
    """Read and check everything SUVbw needs from one PET slice (or the enhanced PET dataset)."""
    units = str(_tag(ds, "Units")).upper()
    if units == "GML":
        return SuvParameters("GML", str(getattr(ds, "DecayCorrection", "")), math.nan, math.nan, math.nan, None, None)
    activity_scale = 1.0
    if units == "CNTS":
        suv_scale = philips_factor(ds, PHILIPS_SUV_FACTOR)
        if suv_scale is not None:
            return SuvParameters("CNTS", str(getattr(ds, "DecayCorrection", "")), math.nan, math.nan, math.nan, None,
                                 None, suv_scale=suv_scale)
        scale = philips_factor(ds, PHILIPS_ACTIVITY_FACTOR)
        if scale is None:
            raise SuvError("Units CNTS (counts) need Philips' SUV scale factor (7053,1000) or activity concentration "
                           "scale factor (7053,1009), and the image has neither", PET_UNITS)
        activity_scale = scale
    elif units != "BQML":
        raise SuvError(f"SUV needs activity concentrations: Units BQML (or GML, or Philips CNTS), got {units!r}",
                       PET_UNITS)
    decay_correction = str(_tag(ds, "DecayCorrection")).upper()
    if decay_correction not in SUPPORTED_DECAY_CORRECTIONS:
        raise SuvError(
            f"DecayCorrection {decay_correction!r} is not supported (only {SUPPORTED_DECAY_CORRECTIONS}): "
            "per-slice decay to the acquisition time is not implemented", PET_UNITS
        )
    info = _radiopharmaceutical(ds)
    where = "RadiopharmaceuticalInformationSequence[0]."
    dose = _positive(info, "RadionuclideTotalDose", where)
    half_life = _positive(info, "RadionuclideHalfLife", where)
    weight = _positive(ds, "PatientWeight")
    scan = injection = None
    if decay_correction == "START":
        scan = _scan_time(ds, scan_start)
        injection = _injection_time(info, ds, scan)
        if injection > scan:
            raise SuvError(f"the injection ({injection}) is after the scan start ({scan})", PET_TAGS_INCONSISTENT)
    return SuvParameters(units, decay_correction, dose, half_life, weight, injection, scan,
                         activity_scale=activity_scale)


def philips_factor(ds: Dataset, offset: int) -> float | None:
    """A positive factor of Philips' private PET group (``PHILIPS_SUV_FACTOR``, ``PHILIPS_ACTIVITY_FACTOR``), None
    when the group or the element is absent or not a positive number."""
    try:
        raw = ds.private_block(0x7053, PHILIPS_PET_CREATOR)[offset].value
        value = float(raw.decode("ascii") if isinstance(raw, bytes) else raw)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def suv_bw_factor(ds: Dataset, scan_start: datetime | None = None) -> float:
    """Factor that turns this PET image's Bq/ml into SUVbw."""
    return suv_parameters(ds, scan_start).factor


def activity_concentration(ds: Dataset) -> np.ndarray:
    """The slice's stored values through its own RescaleSlope/Intercept (PET slopes differ per slice)."""
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    return ds.pixel_array.astype(np.float64) * slope + intercept


def suv_bw(ds: Dataset, scan_start: datetime | None = None) -> np.ndarray:
    """The slice's voxels as SUVbw."""
    return activity_concentration(ds) * suv_bw_factor(ds, scan_start)


# What must agree between the slices of one PET series for one SUV factor to hold for all of them.
SERIES_CONSTANT_TAGS = ("Units", "DecayCorrection", "PatientWeight", "SeriesDate", "SeriesTime")
SERIES_CONSTANT_RADIOPHARMACEUTICAL_TAGS = ("RadionuclideTotalDose", "RadionuclideHalfLife",
                                            "RadiopharmaceuticalStartTime", "RadiopharmaceuticalStartDateTime")


def _series_start(datasets: Sequence[Dataset]) -> datetime | None:
    """The earliest AcquisitionDate/AcquisitionTime over the series (QIBA: the scan start), None if absent."""
    times = []
    for ds in datasets:
        date, time = getattr(ds, "AcquisitionDate", None), getattr(ds, "AcquisitionTime", None)
        if date and time:
            times.append(combine(date, time))
    return min(times) if times else None


def series_suv_factor(datasets: Sequence[Dataset]) -> float:
    """The SUVbw factor of a whole PET series (single-frame slices, or one enhanced multi-frame dataset).

    Every slice must carry the same units, decay correction, weight, series time and radiopharmaceutical tags
    (else ``SuvError`` with code PET_TAGS_INCONSISTENT: one factor would be wrong for some slices); the decay is
    computed to the earliest acquisition time of the series when SeriesTime was reset by post-processing.
    """
    if not datasets:
        raise SuvError("no PET slices", PET_TAGS_MISSING)
    for keyword in SERIES_CONSTANT_TAGS:
        values = {str(getattr(ds, keyword, "")).strip() for ds in datasets}
        if len(values) > 1:
            raise SuvError(f"{keyword} differs between the slices of the series ({len(values)} values)",
                           PET_TAGS_INCONSISTENT)
    for keyword in SERIES_CONSTANT_RADIOPHARMACEUTICAL_TAGS:
        values = set()
        for ds in datasets:
            sequence = getattr(ds, "RadiopharmaceuticalInformationSequence", None) or [Dataset()]
            values.add(str(getattr(sequence[0], keyword, "")).strip())
        if len(values) > 1:
            raise SuvError(f"RadiopharmaceuticalInformationSequence[0].{keyword} differs between the slices of the "
                           f"series ({len(values)} values)", PET_TAGS_INCONSISTENT)
    for offset, tag in ((PHILIPS_SUV_FACTOR, "(7053,1000)"), (PHILIPS_ACTIVITY_FACTOR, "(7053,1009)")):
        if len({philips_factor(ds, offset) for ds in datasets}) > 1:
            raise SuvError(f"Philips' scale factor {tag} differs between the slices of the series",
                           PET_TAGS_INCONSISTENT)
    return suv_bw_factor(datasets[0], _series_start(datasets))


@identifiers_unlogged()
def files_suv_factor(paths: Sequence[str | Path]) -> float:
    """``series_suv_factor`` of a PET series' files, from their headers (``SuvError`` with a QC code if it cannot be
    computed)."""
    return series_suv_factor([files.read(path, stop_before_pixels=True) for path in paths])


def to_suv(image: sitk.Image, factor: float) -> sitk.Image:
    """Bq/ml -> SUVbw: the float32 volume times the factor (computed in float64, rounded once)."""
    array = sitk.GetArrayViewFromImage(image).astype(np.float64) * factor
    converted = sitk.GetImageFromArray(array.astype(np.float32))
    converted.CopyInformation(image)
    return converted
