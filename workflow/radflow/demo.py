"""Synthetic but real DICOM demo cohort: two centres, a test and a same-day retest CT per patient, lesion masks
as RTSTRUCT or SEG, a clinical CSV whose outcome is driven by lesion texture.

What is built in, and why:

* The lesion is an ellipsoid with a lobulated surface, ~40 HU, inside lung (-800 HU) next to a chest wall (0 HU).
  Its interior is ``40 + heterogeneity * field`` where ``field`` is a smooth unit-variance Gaussian random field.
  ``heterogeneity`` (HU) drives the binary outcome (logistic) and the survival hazard (exponential), so texture and
  intensity-dispersion features carry the signal; volume does not.
* Retest: same study, a later series (SeriesNumber 5 after 2, SeriesTime and AcquisitionTime ~15-25 min later,
  SeriesDescription ending in "retest"), its own FrameOfReferenceUID (the patient got off the table), the patient
  moved by a rigid sub-voxel to ~1.5 mm translation, a new noise realisation, and its own mask.
* Per-scan white noise whose level is drawn anew for every scan, so noise-dominated fine-texture features have low
  test-retest agreement while volume and mean intensity stay stable.
* Centre A (Siemens-like, kernel "B30f": light smoothing, more noise, 2 mm slices) and centre B (GE-like,
  "STANDARD": stronger smoothing, less noise, a +12 HU calibration offset, 2.5 mm slices, larger pixels): a batch
  effect on most features (e.g. lesion intensity SD ~40 HU in A vs ~70 HU in B, mostly edge partial volume).
* Identifying tags hold fake but realistic values; every one is listed in ``phi_manifest.json`` (see
  :func:`phi_values`) so de-identification can be checked by grepping outputs.
* Deterministic: every random draw comes from ``numpy.random.default_rng([seed, patient_index, stream])`` and every
  UID is a name-based UUID (``2.25.<uuid5>``) of the seed and the object's role, so patient ``i`` is the same
  whatever the cohort size and the same seed gives the same bytes.

Layout (a PACS export, deliberately not uniform)::

    outdir/clinical.csv, ground_truth.csv, phi_manifest.json
    outdir/dicom/README.TXT                                  (not DICOM; readers must skip it)
    centre A: outdir/dicom/<PatientID>/<StudyDate>_<Accession>/<NNN>_<SeriesDescription>/<SOPInstanceUID>.dcm
              (its RTSTRUCT / SEG in a sibling series folder)
    centre B: outdir/dicom/EXP<nnnnn>/SE<nnnnnn>/IM<nnnnnn>          (no extension)
              outdir/dicom/segmentations/EXP<nnnnn>/SE<nnnnnn>/IM000001   (its masks)
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from radflow import __version__
from radflow.dicom import write

SHAPE = (24, 64, 64)  # (z, y, x) voxels per scan
TEXTURE_SCALE_MM = 2.5  # correlation length of the lesion's internal texture
LOBULATION_SCALE_MM = 4.0
LOBULATION_AMPLITUDE = 0.12  # relative radius perturbation of the lesion surface
LESION_HU, LUNG_HU, BODY_HU = 40.0, -800.0, 0.0
RESCALE_INTERCEPT = -1024.0
HETEROGENEITY_RANGE_HU = (10.0, 70.0)
VOLUME_RANGE_CM3 = (2.0, 8.0)
NOISE_FACTOR_RANGE = (0.4, 2.0)  # per-scan noise level relative to the centre's
OUTCOME_SLOPE = 2.5  # log-odds per standard deviation of heterogeneity
OUTCOME_LOGIT_NOISE = 0.7
MEDIAN_SURVIVAL_MONTHS = 24.0
HAZARD_PER_SD_HETEROGENEITY = 0.8  # log hazard ratio
HAZARD_PER_YEAR_OF_AGE = 0.02
FOLLOW_UP_MONTHS = (12.0, 60.0)  # administrative censoring, uniform
TEST_SERIES, RETEST_SERIES = 2, 5
UID_NAMESPACE = uuid.UUID("5f0c8d4e-6a53-4c4e-9d2b-7a1f3e0b9c21")

FEMALE_NAMES = ("Jane", "Maria", "Ingrid", "Aiko", "Fatima", "Olga", "Chiara", "Nkechi", "Sofia", "Hanne",
                "Mei", "Lucia", "Astrid", "Priya", "Zofia", "Amara")
MALE_NAMES = ("John", "Lars", "Kenji", "Omar", "Pavel", "Matteo", "Emeka", "Diego", "Henrik", "Arjun",
              "Tomasz", "Wei", "Kwame", "Joris", "Stellan", "Ruben")
FAMILY_NAMES = ("Doe", "Lindqvist", "Okafor", "Moreau", "Kowalski", "Haddad", "Tanaka", "Brennan", "Castellano",
                "Nakamura", "Oyelaran", "Fitzgerald", "Ivanova", "Vandermeer", "Szabo", "Achterberg", "Rossetti",
                "Karlsson", "Mbeki", "Delacroix")


@dataclass(frozen=True)
class Centre:
    """Scanner, reconstruction and export conventions of one hospital."""

    code: str
    institution: str
    manufacturer: str
    model: str
    station: str
    kernel: str
    kernel_sigma_mm: float  # in-plane Gaussian standing in for the reconstruction kernel
    noise_sd_hu: float
    hu_offset: float  # calibration difference
    pixel_spacings_mm: tuple[float, ...]
    slice_thickness_mm: float
    roi_names: tuple[str, ...]
    referring_physicians: tuple[str, ...]
    accession_prefix: str


CENTRES = (
    Centre("A", "St Aldhelm University Hospital", "SIEMENS", "SOMATOM Definition AS+", "CTAWP73412", "B30f",
           0.3, 16.0, 0.0, (0.8203125, 0.859375, 0.8984375), 2.0, ("GTV-1", "GTV"),
           ("Hartmann^Klaus^^Dr", "Okonkwo^Adaeze^^Dr"), "SAH"),
    Centre("B", "Ravensmoor General Hospital", "GE MEDICAL SYSTEMS", "LightSpeed VCT", "RGHCT02", "STANDARD",
           0.5, 12.0, 12.0, (0.9375, 0.9765625), 2.5, ("gtv_primary", "GTV"),
           ("Pemberton^Alistair", "Quesada^Ines"), "RGH"),
)


@dataclass(frozen=True)
class Grid:
    """Voxel grid of a scan: axial slices, identity orientation; origin is voxel (0, 0, 0) in patient mm (x, y, z)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]  # (z, y, x) mm
    origin_xyz: tuple[float, float, float]

    def local_axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(z, y, x) voxel-centre coordinates in mm relative to the grid centre, broadcastable to `shape`."""
        axes = [(np.arange(n) - (n - 1) / 2) * d for n, d in zip(self.shape, self.spacing)]
        return axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]

    def slice_position(self, k: int) -> tuple[float, float, float]:
        x0, y0, z0 = self.origin_xyz
        return x0, y0, z0 + k * self.spacing[0]


@dataclass(frozen=True)
class Lesion:
    centre_mm: tuple[float, float, float]  # (z, y, x) relative to the grid centre
    radii_mm: tuple[float, float, float]  # (z, y, x) before in-plane rotation
    angle: float  # in-plane rotation, radians
    volume_cm3: float  # of the unperturbed ellipsoid
    heterogeneity_hu: float


@dataclass(frozen=True)
class Patient:
    seed: int
    index: int
    centre: Centre
    patient_id: str
    name: str
    sex: str
    birth_date: dt.date
    age: int
    study_date: dt.date
    study_time: dt.time
    accession: str
    study_id: str
    referring_physician: str
    grid: Grid
    lesion: Lesion
    retest_shift_mm: tuple[float, float, float]  # (z, y, x)
    noise_sd_hu: tuple[float, float]  # (test, retest)
    mask_format: str  # "RTSTRUCT" or "SEG"
    roi_name: str
    outcome: int
    survival_months: float
    event: int


# ------------------------------------------------------------------------------------------ identifiers and UIDs

def uid(seed: int, *role: object) -> str:
    """A deterministic DICOM UID: the name-based UUID of (seed, role) under the 2.25 root."""
    name = "/".join(str(part) for part in (seed, *role))
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, name).int}"


def _scramble(index: int, seed: int, salt: int, digits: int) -> int:
    """A distinct, random-looking number per index (an affine bijection modulo 10**digits)."""
    modulus = 10**digits
    multiplier = 379_147 + 2 * salt * 10  # odd and not a multiple of 5: invertible modulo 10**digits
    return (multiplier * index + 7_919 * (seed + 1) * (salt + 3)) % modulus


def _completed_years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# ------------------------------------------------------------------------------------------ sampling

def _sample_lesion(rng: np.random.Generator) -> Lesion:
    volume = rng.uniform(*VOLUME_RANGE_CM3)
    ratio_y, ratio_z = rng.uniform(0.8, 1.25, size=2)
    radius_x = (3 * volume * 1000 / (4 * math.pi * ratio_y * ratio_z)) ** (1 / 3)
    # x from -6 to -2 mm keeps the lesion in the lung half and inside the field of view after lobulation and shift
    centre = (rng.uniform(-2, 2), rng.uniform(-3, 3), rng.uniform(-6, -2))
    return Lesion(
        centre_mm=tuple(float(c) for c in centre),
        radii_mm=(float(ratio_z * radius_x), float(ratio_y * radius_x), float(radius_x)),
        angle=float(rng.uniform(0, math.pi)),
        volume_cm3=float(volume),
        heterogeneity_hu=float(rng.uniform(*HETEROGENEITY_RANGE_HU)),
    )


def heterogeneity_z(heterogeneity_hu: float) -> float:
    """Heterogeneity in standard deviations of its (uniform) cohort distribution."""
    low, high = HETEROGENEITY_RANGE_HU
    return (heterogeneity_hu - (low + high) / 2) / ((high - low) / math.sqrt(12))


def sample_outcomes(rng: np.random.Generator, heterogeneity_hu: float, age: int) -> tuple[int, float, int]:
    """(outcome, survival time in months, event) for one patient.

    outcome ~ Bernoulli(sigmoid(OUTCOME_SLOPE * z + N(0, OUTCOME_LOGIT_NOISE))), z = standardised heterogeneity.
    Survival ~ Exponential with hazard ln2/MEDIAN * exp(0.8 z + 0.02 (age - 65)), censored at Uniform(12, 60) months.
    """
    z = heterogeneity_z(heterogeneity_hu)
    logit = OUTCOME_SLOPE * z + rng.normal(0, OUTCOME_LOGIT_NOISE)
    outcome = int(rng.uniform() < 1 / (1 + math.exp(-logit)))
    hazard = math.log(2) / MEDIAN_SURVIVAL_MONTHS * math.exp(
        HAZARD_PER_SD_HETEROGENEITY * z + HAZARD_PER_YEAR_OF_AGE * (age - 65))
    time_to_event = rng.exponential(1 / hazard)
    follow_up = rng.uniform(*FOLLOW_UP_MONTHS)
    return outcome, round(float(min(time_to_event, follow_up)), 1), int(time_to_event <= follow_up)


def sample_patient(seed: int, index: int) -> Patient:
    """Everything about patient `index` except the voxels; independent of the cohort size."""
    rng = np.random.default_rng([seed, index, 0])
    centre = CENTRES[index % 2]
    sex = "F" if rng.uniform() < 0.5 else "M"
    given = rng.choice(FEMALE_NAMES if sex == "F" else MALE_NAMES)
    family = rng.choice(FAMILY_NAMES)
    study_date = dt.date(2019, 1, 7) + dt.timedelta(days=int(rng.integers(0, 4 * 365)))
    study_time = dt.time(int(rng.integers(8, 16)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
    age_years = float(np.clip(rng.normal(65, 9), 38, 88))
    birth_date = study_date - dt.timedelta(days=int(age_years * 365.25))
    age = _completed_years(birth_date, study_date)

    spacing_xy = float(rng.choice(centre.pixel_spacings_mm))
    spacing = (centre.slice_thickness_mm, spacing_xy, spacing_xy)
    table = (rng.uniform(-40, 40), rng.uniform(-30, 30), rng.uniform(-260, -120))  # FOV centre (x, y, z), mm
    origin = tuple(round(c - (n - 1) / 2 * d, 2) for c, n, d in zip(table, SHAPE[::-1], spacing[::-1]))
    grid = Grid(SHAPE, spacing, origin)

    lesion = _sample_lesion(rng)
    shift = (float(rng.uniform(-1.0, 1.0)), float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.5, 1.5)))
    noise = tuple(float(centre.noise_sd_hu * rng.uniform(*NOISE_FACTOR_RANGE)) for _ in range(2))
    outcome, survival, event = sample_outcomes(rng, lesion.heterogeneity_hu, age)
    return Patient(
        seed=seed, index=index, centre=centre,
        patient_id=f"RF{_scramble(index, seed, 0, 6):06d}",
        name=f"{family}^{given}", sex=sex, birth_date=birth_date, age=age,
        study_date=study_date, study_time=study_time,
        accession=f"{centre.accession_prefix}{_scramble(index, seed, 1, 8):08d}",
        study_id=f"CT{_scramble(index, seed, 2, 6):06d}",
        referring_physician=str(rng.choice(centre.referring_physicians)),
        grid=grid, lesion=lesion, retest_shift_mm=shift, noise_sd_hu=noise,
        mask_format="RTSTRUCT" if (index // 2) % 2 == 0 else "SEG",  # balanced across the two centres
        roi_name=str(rng.choice(centre.roi_names)),
        outcome=outcome, survival_months=survival, event=event,
    )


# ------------------------------------------------------------------------------------------ voxels

def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma_vox: tuple[float, ...]) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean and unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="wrap")
    return (field - field.mean()) / field.std()


def _shifted(field: np.ndarray, shift_vox: np.ndarray) -> np.ndarray:
    """The field of a patient moved by `shift_vox`: value at voxel i is the field at i - shift."""
    if not shift_vox.any():
        return field
    return ndimage.shift(field, shift_vox, order=3, mode="mirror")


def lesion_fields(patient: Patient) -> tuple[np.ndarray, np.ndarray]:
    """(texture, lobulation) unit-variance random fields of the patient, on the test-scan grid."""
    rng = np.random.default_rng([patient.seed, patient.index, 1])
    spacing = np.array(patient.grid.spacing)
    texture = smooth_field(rng, patient.grid.shape, tuple(TEXTURE_SCALE_MM / spacing))
    lobulation = smooth_field(rng, patient.grid.shape, tuple(LOBULATION_SCALE_MM / spacing))
    return texture, lobulation


def lesion_mask(patient: Patient, shift_mm: tuple[float, float, float], lobulation: np.ndarray) -> np.ndarray:
    """The lobulated ellipsoid, the patient moved by `shift_mm` (z, y, x)."""
    lesion = patient.lesion
    z, y, x = (axis - s - c for axis, s, c in zip(patient.grid.local_axes(), shift_mm, lesion.centre_mm))
    cos, sin = math.cos(lesion.angle), math.sin(lesion.angle)
    u, v = cos * x + sin * y, -sin * x + cos * y
    rz, ry, rx = lesion.radii_mm
    rho = np.sqrt((z / rz) ** 2 + (v / ry) ** 2 + (u / rx) ** 2)
    return rho < 1 + LOBULATION_AMPLITUDE * np.tanh(lobulation)


def anatomy(patient: Patient, shift_mm: tuple[float, float, float]) -> np.ndarray:
    """Lung with a curved chest wall on the +x side, HU, the patient moved by `shift_mm`."""
    z, y, x = (axis - s for axis, s in zip(patient.grid.local_axes(), shift_mm))
    wall_x = 14.0 - 0.012 * y**2
    body = np.broadcast_to(x > wall_x, patient.grid.shape)
    return np.where(body, BODY_HU, LUNG_HU)


def render_scan(patient: Patient, scan: int) -> tuple[np.ndarray, np.ndarray]:
    """(stored int16 values = HU - RescaleIntercept, lesion mask) of scan 0 (test) or 1 (retest), both (z, y, x)."""
    shift_mm = (0.0, 0.0, 0.0) if scan == 0 else patient.retest_shift_mm
    shift_vox = np.array(shift_mm) / np.array(patient.grid.spacing)
    texture, lobulation = lesion_fields(patient)
    mask = lesion_mask(patient, shift_mm, _shifted(lobulation, shift_vox))
    hu = anatomy(patient, shift_mm)
    lesion_hu = LESION_HU + patient.lesion.heterogeneity_hu * _shifted(texture, shift_vox)
    hu = np.where(mask, lesion_hu, hu)

    centre = patient.centre
    _, dy, dx = patient.grid.spacing
    hu = ndimage.gaussian_filter(hu, (0.0, centre.kernel_sigma_mm / dy, centre.kernel_sigma_mm / dx), mode="nearest")
    rng = np.random.default_rng([patient.seed, patient.index, 2 + scan])
    hu = hu + patient.noise_sd_hu[scan] * rng.standard_normal(hu.shape) + centre.hu_offset
    stored = np.clip(np.rint(hu - RESCALE_INTERCEPT), -32768, 32767).astype(np.int16)
    return stored, mask


# ------------------------------------------------------------------------------------------ DICOM

def _tm(time: dt.time, minutes_later: float = 0.0) -> str:
    moment = dt.datetime.combine(dt.date(2000, 1, 1), time) + dt.timedelta(minutes=minutes_later)
    return moment.strftime("%H%M%S")


def _retest_delay_minutes(patient: Patient) -> int:
    return 15 + (patient.index * 7) % 11


def series_description(patient: Patient, scan: int) -> str:
    thickness = f"{patient.centre.slice_thickness_mm:g}mm"
    return f"THORAX {thickness} {patient.centre.kernel}" + (" retest" if scan == 1 else "")


def _series_attrs(patient: Patient, scan: int) -> dict:
    """Patient, study, series and equipment tags shared by the slices of one CT series."""
    centre, seed, i = patient.centre, patient.seed, patient.index
    minutes = 2 + (_retest_delay_minutes(patient) if scan == 1 else 0)
    date = patient.study_date.strftime("%Y%m%d")
    return {
        "StudyDate": date, "SeriesDate": date, "AcquisitionDate": date, "ContentDate": date,
        "StudyTime": _tm(patient.study_time), "SeriesTime": _tm(patient.study_time, minutes),
        "AcquisitionTime": _tm(patient.study_time, minutes + 0.2), "ContentTime": _tm(patient.study_time, minutes + 1),
        "AccessionNumber": patient.accession,
        "Manufacturer": centre.manufacturer,
        "InstitutionName": centre.institution,
        "ReferringPhysicianName": patient.referring_physician,
        "StationName": centre.station,
        "StudyDescription": "CT THORAX",
        "SeriesDescription": series_description(patient, scan),
        "ManufacturerModelName": centre.model,
        "PatientName": patient.name,
        "PatientID": patient.patient_id,
        "PatientBirthDate": patient.birth_date.strftime("%Y%m%d"),
        "PatientSex": patient.sex,
        "PatientAge": f"{patient.age:03d}Y",
        "BodyPartExamined": "CHEST",
        "SliceThickness": write.ds_str(patient.grid.spacing[0]),
        "KVP": "120",
        "SoftwareVersions": "syngo CT VA48A" if centre.code == "A" else "gmp_vct.42",
        "ProtocolName": "Thorax routine",
        "ConvolutionKernel": centre.kernel,
        "PatientPosition": "HFS",
        "XRayTubeCurrent": 180 if centre.code == "A" else 250,
        "StudyInstanceUID": uid(seed, i, "study"),
        "SeriesInstanceUID": uid(seed, i, scan, "ct-series"),
        "StudyID": patient.study_id,
        "SeriesNumber": TEST_SERIES if scan == 0 else RETEST_SERIES,
        "AcquisitionNumber": 1 + scan,
        "FrameOfReferenceUID": uid(seed, i, scan, "frame-of-reference"),
        "PositionReferenceIndicator": "",
    }


def ct_series(patient: Patient, scan: int, stored: np.ndarray) -> list:
    """The CT slices of one scan as pydicom datasets, in array (increasing z) order."""
    attrs = _series_attrs(patient, scan)
    grid, n = patient.grid, stored.shape[0]
    # Centre B numbers its slices from the top down, as many scanners do; readers must sort by position.
    numbers = range(1, n + 1) if patient.centre.code == "A" else range(n, 0, -1)
    return [
        write.ct_image(
            attrs,
            sop_instance_uid=uid(patient.seed, patient.index, scan, "ct", k),
            instance_number=number,
            position_xyz=grid.slice_position(k),
            pixel_spacing_rc=grid.spacing[1:],
            stored=stored[k],
        )
        for k, number in zip(range(n), numbers)
    ]


def mask_object(patient: Patient, scan: int, cts: list, mask: np.ndarray):
    """The RTSTRUCT or SEG of the lesion drawn on this scan."""
    seed, i = patient.seed, patient.index
    date = patient.study_date.strftime("%Y%m%d")
    time = _tm(patient.study_time, 240 + 10 * scan)  # contoured that afternoon
    common = dict(
        sop_instance_uid=uid(seed, i, scan, "mask"),
        series_instance_uid=uid(seed, i, scan, "mask-series"),
        series_number=(1001 if patient.mask_format == "RTSTRUCT" else 301) + scan,
        date=date, time=time,
    )
    if patient.mask_format == "SEG":
        return write.segmentation(
            cts, mask, label=patient.roi_name, dimension_organization_uid=uid(seed, i, scan, "dimension-org"),
            manufacturer="radflow", manufacturer_model_name="demo-cohort", software_versions=__version__, **common)
    rois = [write.Roi(1, patient.roi_name, mask, (255, 0, 0), "GTV")]
    return write.rtstruct(cts, rois, manufacturer="radflow demo contouring", label="GTV", **common)


def _folder_name(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def scan_paths(outdir: Path, patient: Patient, scan: int) -> tuple[Path, Path]:
    """(CT series folder, mask series folder) of a scan in the export layout."""
    dicom = outdir / "dicom"
    ct_number = TEST_SERIES if scan == 0 else RETEST_SERIES
    mask_number = (1001 if patient.mask_format == "RTSTRUCT" else 301) + scan
    if patient.centre.code == "A":
        study = dicom / patient.patient_id / f"{patient.study_date:%Y%m%d}_{patient.accession}"
        return (study / f"{ct_number:03d}_{_folder_name(series_description(patient, scan))}",
                study / f"{mask_number:03d}_{patient.mask_format}")
    export = f"EXP{patient.index + 1:05d}"
    return dicom / export / f"SE{ct_number:06d}", dicom / "segmentations" / export / f"SE{mask_number:06d}"


def _ct_file_name(patient: Patient, ct) -> str:
    if patient.centre.code == "A":
        return f"{ct.SOPInstanceUID}.dcm"
    return f"IM{ct.InstanceNumber:06d}"


def _mask_file_name(patient: Patient, ds) -> str:
    return f"{ds.SOPInstanceUID}.dcm" if patient.centre.code == "A" else "IM000001"


def write_patient(outdir: Path, patient: Patient) -> dict:
    """Write both scans and their masks; return the patient's ground-truth row."""
    voxel_cm3 = float(np.prod(patient.grid.spacing)) / 1000
    truth = {
        "patient_id": patient.patient_id, "centre": patient.centre.code, "mask_format": patient.mask_format,
        "roi_name": patient.roi_name, "heterogeneity_hu": round(patient.lesion.heterogeneity_hu, 3),
        "lesion_volume_cm3": round(patient.lesion.volume_cm3, 3),
    }
    for scan, label in enumerate(("test", "retest")):
        stored, mask = render_scan(patient, scan)
        cts = ct_series(patient, scan, stored)
        ct_folder, mask_folder = scan_paths(outdir, patient, scan)
        for ct in cts:
            write.save(ct, ct_folder / _ct_file_name(patient, ct))
        mask_ds = mask_object(patient, scan, cts, mask)
        write.save(mask_ds, mask_folder / _mask_file_name(patient, mask_ds))
        truth[f"mask_volume_{label}_cm3"] = round(int(mask.sum()) * voxel_cm3, 3)
        truth[f"noise_sd_{label}_hu"] = round(patient.noise_sd_hu[scan], 3)
    truth.update({f"retest_shift_{axis}_mm": round(s, 3) for axis, s in zip("zyx", patient.retest_shift_mm)})
    return truth


# ------------------------------------------------------------------------------------------ cohort

CLINICAL_COLUMNS = ("patient_id", "centre", "outcome", "survival_time", "event", "age", "sex")


def clinical_row(patient: Patient) -> dict:
    return {"patient_id": patient.patient_id, "centre": patient.centre.code, "outcome": patient.outcome,
            "survival_time": patient.survival_months, "event": patient.event, "age": patient.age,
            "sex": patient.sex}


@dataclass(frozen=True)
class CohortExtras:
    """More series per patient on top of the CT test/retest (radflow.demo_longitudinal: PET, MR, follow-ups)."""

    write: Callable[[Path, Patient], dict]  # writes them; returns extra ground-truth columns
    clinical: Callable[[Patient], dict]  # extra clinical columns
    uids: Callable[[Patient], set[str]]  # every UID they carry (for the PHI manifest)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def phi_manifest(patients: list[Patient]) -> dict:
    """Every identifying value written into the DICOM headers, and every UID (which de-identification replaces)."""
    per_patient = {
        p.patient_id: {
            "PatientName": p.name, "PatientID": p.patient_id, "PatientBirthDate": f"{p.birth_date:%Y%m%d}",
            "AccessionNumber": p.accession, "StudyID": p.study_id, "ReferringPhysicianName": p.referring_physician,
            "InstitutionName": p.centre.institution, "StationName": p.centre.station,
        }
        for p in patients
    }
    identifiers = sorted({value for tags in per_patient.values() for value in tags.values()})
    uids = sorted(
        {uid(p.seed, p.index, "study") for p in patients}
        | {uid(p.seed, p.index, scan, role) for p in patients for scan in (0, 1)
           for role in ("ct-series", "frame-of-reference", "mask", "mask-series")}
        | {uid(p.seed, p.index, scan, "ct", k) for p in patients for scan in (0, 1) for k in range(p.grid.shape[0])}
    )
    return {"identifiers": identifiers, "patients": per_patient, "uids": uids}


def phi_values(outdir: Path, include_uids: bool = False) -> set[str]:
    """The identifying values of a cohort written by :func:`write_cohort` (plus its UIDs if asked)."""
    manifest = json.loads((Path(outdir) / "phi_manifest.json").read_text())
    return set(manifest["identifiers"]) | (set(manifest["uids"]) if include_uids else set())


#: Checksums of every file the generator wrote (relative path -> sha256): the public demo key is accepted only for
#: data that matches them (``generated_by_demo``), never for whatever else sits in the demo folder.
CHECKSUMS_FILE = "demo_checksums.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(outdir: Path) -> Path:
    files = sorted(p for p in outdir.rglob("*") if p.is_file() and p.name != CHECKSUMS_FILE)
    checksums = {p.relative_to(outdir).as_posix(): _sha256(p) for p in files}
    path = outdir / CHECKSUMS_FILE
    path.write_text(json.dumps(checksums, indent=1, sort_keys=True) + "\n")
    return path


def demo_data_problem(path: Path) -> str:
    """'' when ``path`` (the demo DICOM folder or a file of it, e.g. clinical.csv) holds exactly what the demo
    generator wrote, else what is wrong, in one line (no file names: they may be identifying)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    for outdir in (folder, *folder.parents):
        if (outdir / CHECKSUMS_FILE).is_file():
            break
    else:
        return f"no {CHECKSUMS_FILE} of the demo generator beside or above it"
    checksums = json.loads((outdir / CHECKSUMS_FILE).read_text())
    if path.is_dir():
        # Snakemake stamps directory outputs with a marker file of its own
        present = {p.relative_to(outdir).as_posix() for p in path.rglob("*")
                   if p.is_file() and p.name != ".snakemake_timestamp"}
        prefix = path.relative_to(outdir).as_posix().rstrip("/") + "/" if path != outdir else ""
        expected = {name for name in checksums if name.startswith(prefix)}
    else:
        present = expected = {path.relative_to(outdir).as_posix()}
    extra, missing = present - set(checksums), expected - present
    changed = [name for name in sorted(present & expected) if _sha256(outdir / name) != checksums[name]]
    problems = [f"{len(extra)} file(s) the generator did not write"] if extra else []
    problems += [f"{len(missing)} generated file(s) missing"] if missing else []
    problems += [f"{len(changed)} file(s) changed since generation"] if changed else []
    return "; ".join(problems)


def write_cohort(outdir: Path, n_patients: int = 40, seed: int = 0, extras: CohortExtras | None = None) -> Path:
    """Write the demo cohort (DICOM export, clinical.csv, ground_truth.csv, phi_manifest.json, and the checksums of
    all of them in demo_checksums.json) into `outdir`; ``extras`` add series per patient
    (``radflow.demo_longitudinal.write_cohort``)."""
    outdir = Path(outdir)
    (outdir / "dicom").mkdir(parents=True, exist_ok=True)
    patients = [sample_patient(seed, i) for i in range(n_patients)]
    truth = []
    for p in patients:
        row = write_patient(outdir, p)
        if extras is not None:
            row.update(extras.write(outdir, p))
        truth.append(row)
    (outdir / "dicom" / "README.TXT").write_text(
        "PACS export. Synthetic radflow demo cohort: all names, identifiers and images are fake.\n")
    _write_csv(outdir / "clinical.csv", [{**clinical_row(p), **(extras.clinical(p) if extras else {})}
                                         for p in patients])
    _write_csv(outdir / "ground_truth.csv", truth)
    manifest = phi_manifest(patients)
    if extras is not None:
        manifest["uids"] = sorted(set(manifest["uids"]).union(*(extras.uids(p) for p in patients)))
    (outdir / "phi_manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_checksums(outdir)
    return outdir
