"""Demo cohort extensions: PET and MR series and follow-up timepoints with a planted treatment response.

``radflow demo-cohort OUT --modalities CT,PT,MR --timepoints 2`` adds to each patient of the CT demo
(``radflow.demo``, whose files stay byte-identical):

* PET (18F-FDG, PET Image Storage) at every timepoint: Units BQML, DecayCorrection START, PatientWeight and the
  RadiopharmaceuticalInformationSequence (dose ~4 MBq/kg, injection 60-74 min before the series), so ingest
  converts it to SUVbw. Lesion SUV 2.5-8.5 rising with the lesion's heterogeneity, body 1.2, lung 0.5, 4 x 4 x 3 mm
  voxels; its own frame of reference and RTSTRUCT.
* MR (T1-like, MR Image Storage, arbitrary units: lesion ~600, body 400, lung 60), 1 x 1 x 3 mm voxels, RTSTRUCT.
* Follow-up timepoints k = 1.. (84 + (index * 5) % 21 days apart, each a new study): one CT (no retest) and the
  PET/MR of the baseline. The planted response: a patient is a responder with probability 1/2 (its own random
  stream, so the CT demo's draws are untouched); at each follow-up a responder's lesion volume is multiplied by
  0.6 and its heterogeneity and SUV excess over background by 0.5, a non-responder's volume by 1.15 (both per
  timepoint). ``clinical.csv`` then carries ``response`` (1 responder, 0 not).

PET and MR lesions are smooth ellipsoids (the CT lesion's lobulation lives on the CT grid); every random draw comes
from ``numpy.random.default_rng([seed, index, stream])`` with streams >= 10, and UIDs from ``demo.uid``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from radflow import demo
from radflow.demo import Grid, uid
from radflow.dicom import write

MODALITIES = ("CT", "PT", "MR")
RESPONSE_STREAM, PET_NOISE_STREAM, MR_NOISE_STREAM, FOLLOW_UP_CT_STREAM = 10, 11, 12, 13
RESPONDER_VOLUME, NON_RESPONDER_VOLUME = 0.6, 1.15  # volume factor per follow-up
RESPONDER_ACTIVITY = 0.5  # heterogeneity and SUV excess factor per follow-up
PET_SHAPE, PET_SPACING = (16, 40, 40), (3.0, 4.0, 4.0)  # (z, y, x)
MR_SHAPE, MR_SPACING = (16, 64, 64), (3.0, 1.0, 1.0)
PET_BODY_SUV, PET_LUNG_SUV = 1.2, 0.5
MR_LESION, MR_BODY, MR_LUNG = 600.0, 400.0, 60.0
F18_HALF_LIFE_S = 6586.2
SERIES_NUMBERS = {"PT": 30, "MR": 40, "CT": 2}


def is_responder(patient) -> bool:
    return bool(np.random.default_rng([patient.seed, patient.index, RESPONSE_STREAM]).uniform() < 0.5)


def follow_up_days(patient, timepoint: int) -> int:
    return timepoint * (84 + (patient.index * 5) % 21)


def at_timepoint(patient, timepoint: int):
    """The patient with the lesion as it is at ``timepoint`` (0: unchanged)."""
    if timepoint == 0:
        return patient
    responder = is_responder(patient)
    volume = (RESPONDER_VOLUME if responder else NON_RESPONDER_VOLUME) ** timepoint
    activity = RESPONDER_ACTIVITY ** timepoint if responder else 1.0
    lesion = patient.lesion
    lesion = dataclasses.replace(lesion, radii_mm=tuple(r * volume ** (1 / 3) for r in lesion.radii_mm),
                                 volume_cm3=lesion.volume_cm3 * volume,
                                 heterogeneity_hu=lesion.heterogeneity_hu * activity)
    return dataclasses.replace(patient, lesion=lesion,
                               study_date=patient.study_date + dt.timedelta(days=follow_up_days(patient, timepoint)))


def _grid(patient, shape, spacing):
    """A grid of ``shape``/``spacing`` centred where the patient's CT grid is centred."""
    centre = [o + (n - 1) / 2 * d for o, n, d in zip(patient.grid.origin_xyz, patient.grid.shape[::-1],
                                                   patient.grid.spacing[::-1])]
    origin = tuple(round(c - (n - 1) / 2 * d, 2) for c, n, d in zip(centre, shape[::-1], spacing[::-1]))
    return Grid(shape, spacing, origin)


def smooth_lesion(grid, lesion) -> np.ndarray:
    """The lesion's ellipsoid (no lobulation) on ``grid``."""
    z, y, x = (axis - c for axis, c in zip(grid.local_axes(), lesion.centre_mm))
    cos, sin = math.cos(lesion.angle), math.sin(lesion.angle)
    u, v = cos * x + sin * y, -sin * x + cos * y
    rz, ry, rx = lesion.radii_mm
    return (z / rz) ** 2 + (v / ry) ** 2 + (u / rx) ** 2 < 1.0


def _body(grid) -> np.ndarray:
    _, y, x = grid.local_axes()
    return np.broadcast_to(x > 14.0 - 0.012 * y**2, grid.shape)


def lesion_suv(patient) -> float:
    """Mean lesion SUV: 2.5 to 8.5 with heterogeneity 10 to 70 HU (lower after a response)."""
    return 2.5 + 6.0 * (patient.lesion.heterogeneity_hu - 10.0) / 60.0


def pet_suv(patient, timepoint: int) -> tuple[np.ndarray, np.ndarray, Grid]:
    """(SUV volume, lesion mask, grid) of the PET at ``timepoint``."""
    grid = _grid(patient, PET_SHAPE, PET_SPACING)
    mask = smooth_lesion(grid, patient.lesion)
    z, y, x = grid.local_axes()
    rz, ry, rx = patient.lesion.radii_mm
    cz, cy, cx = patient.lesion.centre_mm
    centrality = np.exp(-(((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2))  # hotter core
    suv = np.where(_body(grid), PET_BODY_SUV, PET_LUNG_SUV)
    suv = np.where(mask, PET_BODY_SUV + (lesion_suv(patient) - PET_BODY_SUV) * (0.6 + 0.8 * centrality), suv)
    suv = ndimage.gaussian_filter(suv, 0.7)
    rng = np.random.default_rng([patient.seed, patient.index, PET_NOISE_STREAM, timepoint])
    suv = np.clip(suv * (1 + 0.06 * rng.standard_normal(suv.shape)), 0.0, None)
    return suv, mask, grid


def mr_signal(patient, timepoint: int) -> tuple[np.ndarray, np.ndarray, Grid]:
    """(signal, lesion mask, grid) of the MR at ``timepoint``."""
    grid = _grid(patient, MR_SHAPE, MR_SPACING)
    mask = smooth_lesion(grid, patient.lesion)
    rng = np.random.default_rng([patient.seed, patient.index, MR_NOISE_STREAM, timepoint])
    texture = demo.smooth_field(rng, grid.shape, (0.8, 2.5, 2.5))
    signal = np.where(_body(grid), MR_BODY, MR_LUNG)
    signal = np.where(mask, MR_LESION + 2.0 * patient.lesion.heterogeneity_hu * texture, signal)
    signal = signal + 12.0 * rng.standard_normal(signal.shape)
    return np.clip(signal, 0.0, None), mask, grid


def _attrs(patient, modality: str, timepoint: int, series_time: dt.time) -> dict:
    """Patient/study tags of the CT demo with this series' own UIDs, number, description, date and time."""
    attrs = demo._series_attrs(patient, 0)
    for ct_only in ("ConvolutionKernel", "KVP", "XRayTubeCurrent"):
        attrs.pop(ct_only)
    date = patient.study_date.strftime("%Y%m%d")
    seed, i = patient.seed, patient.index
    tag = f"{modality}{timepoint}"
    attrs.update({
        "StudyDate": date, "SeriesDate": date, "AcquisitionDate": date, "ContentDate": date,
        "SeriesTime": series_time.strftime("%H%M%S"), "AcquisitionTime": series_time.strftime("%H%M%S"),
        "ContentTime": series_time.strftime("%H%M%S"),
        "StudyInstanceUID": uid(seed, i, "study") if timepoint == 0 else uid(seed, i, "study", timepoint),
        "SeriesInstanceUID": uid(seed, i, tag, "series"), "FrameOfReferenceUID": uid(seed, i, tag, "frame"),
        "SeriesNumber": SERIES_NUMBERS[modality] + 100 * timepoint,
        "SeriesDescription": {"PT": "PET WB FDG AC", "MR": "T1 TSE AX"}[modality],
        "StudyDescription": "PET-CT" if modality == "PT" else "MR THORAX",
        "ProtocolName": "FDG whole body" if modality == "PT" else "T1 axial",
        "AcquisitionNumber": 1,
    })
    return attrs


def _later(time: dt.time, minutes: float) -> dt.time:
    return (dt.datetime.combine(dt.date(2000, 1, 1), time) + dt.timedelta(minutes=minutes)).time()


def pet_series(patient, timepoint: int) -> tuple[list, np.ndarray]:
    """The PET slices (Bq/ml through RescaleSlope) and the lesion mask at ``timepoint``."""
    suv, mask, grid = pet_suv(patient, timepoint)
    weight = 55 + (patient.index * 7) % 40  # kg
    dose = 4.0e6 * weight  # Bq
    uptake_minutes = 60 + (patient.index * 3) % 15
    series_time = _later(patient.study_time, 45)
    injection = _later(series_time, -uptake_minutes)
    decayed = dose * 2.0 ** (-uptake_minutes * 60 / F18_HALF_LIFE_S)
    bqml = suv * decayed / (weight * 1000.0)
    slope = write.ds_str(float(bqml.max()) / 30000.0, 6)
    stored = np.clip(np.rint(bqml / float(slope)), 0, 65535).astype(np.uint16)
    attrs = _attrs(patient, "PT", timepoint, series_time)
    pharma = write.Radiopharmaceutical(start_time=injection.strftime("%H%M%S"), total_dose_bq=f"{dose:.0f}",
                                       half_life_s=f"{F18_HALF_LIFE_S}")
    slices = [write.pet_image(attrs, sop_instance_uid=uid(patient.seed, patient.index, f"PT{timepoint}", "im", k),
                              instance_number=k + 1, position_xyz=grid.slice_position(k),
                              pixel_spacing_rc=grid.spacing[1:], stored=stored[k], rescale_slope=slope,
                              weight_kg=str(weight), radiopharmaceutical=pharma)
              for k in range(grid.shape[0])]
    return slices, mask


def mr_series(patient, timepoint: int) -> tuple[list, np.ndarray]:
    signal, mask, grid = mr_signal(patient, timepoint)
    attrs = _attrs(patient, "MR", timepoint, _later(patient.study_time, 90))
    stored = np.clip(np.rint(signal), 0, 65535).astype(np.uint16)
    slices = [write.mr_image(attrs, sop_instance_uid=uid(patient.seed, patient.index, f"MR{timepoint}", "im", k),
                             instance_number=k + 1, position_xyz=grid.slice_position(k),
                             pixel_spacing_rc=grid.spacing[1:], stored=stored[k])
              for k in range(grid.shape[0])]
    return slices, mask


def _rtstruct(patient, modality: str, timepoint: int, images: list, mask: np.ndarray):
    seed, i = patient.seed, patient.index
    rois = [write.Roi(1, patient.roi_name, mask, (255, 0, 0), "GTV")]
    return write.rtstruct(images, rois, manufacturer="radflow demo contouring", label="GTV",
                          sop_instance_uid=uid(seed, i, f"{modality}{timepoint}", "mask"),
                          series_instance_uid=uid(seed, i, f"{modality}{timepoint}", "mask-series"),
                          series_number=SERIES_NUMBERS[modality] + 100 * timepoint + 1000,
                          date=patient.study_date.strftime("%Y%m%d"), time="160000")


def _save_series(folder: Path, images: list, mask_ds) -> None:
    for ds in images:
        write.save(ds, folder / "images" / f"IM{int(ds.InstanceNumber):06d}.dcm")
    write.save(mask_ds, folder / "RTSTRUCT" / "RS000001.dcm")


def follow_up_ct(outdir: Path, patient, timepoint: int) -> dict:
    """One CT (no retest) and its mask at follow-up ``timepoint`` (``patient`` already at that timepoint)."""
    scan = 1 + timepoint  # scan index >= 2: own UIDs and noise stream, the retest's small shift
    patient = dataclasses.replace(patient, noise_sd_hu=patient.noise_sd_hu + (patient.noise_sd_hu[0],) * timepoint)
    stored, mask = demo.render_scan(patient, scan)
    cts = demo.ct_series(patient, scan, stored)
    for ct in cts:  # a new study on a later date
        ct.StudyInstanceUID = uid(patient.seed, patient.index, "study", timepoint)
        ct.SeriesNumber = SERIES_NUMBERS["CT"] + 100 * timepoint
        ct.SeriesDescription = f"THORAX follow-up {timepoint}"
    folder = outdir / "dicom" / patient.patient_id / f"{patient.study_date:%Y%m%d}_FU{timepoint}" / "CT"
    for ct in cts:
        write.save(ct, folder / "images" / f"IM{int(ct.InstanceNumber):06d}.dcm")
    mask_ds = demo.mask_object(patient, scan, cts, mask)
    write.save(mask_ds, folder / "MASK" / "MS000001.dcm")
    return {f"mask_volume_fu{timepoint}_cm3": round(int(mask.sum()) * float(np.prod(patient.grid.spacing)) / 1000, 3)}


def write_extras(outdir: Path, patient, modalities: tuple[str, ...], timepoints: int) -> dict:
    """PET/MR at every timepoint and CT follow-ups; returns the extra ground-truth columns."""
    truth: dict = {}
    for timepoint in range(timepoints):
        state = at_timepoint(patient, timepoint)
        if timepoint > 0 and "CT" in modalities:
            truth.update(follow_up_ct(outdir, state, timepoint))
        for modality in ("PT", "MR"):
            if modality not in modalities:
                continue
            images, mask = (pet_series if modality == "PT" else mr_series)(state, timepoint)
            folder = outdir / "dicom" / patient.patient_id / f"{state.study_date:%Y%m%d}_{modality}{timepoint}"
            _save_series(folder, images, _rtstruct(state, modality, timepoint, images, mask))
            if modality == "PT":
                truth[f"pet_lesion_suv_t{timepoint}"] = round(lesion_suv(state), 3)
    if timepoints > 1:
        truth["response"] = int(is_responder(patient))
    return truth


def check_options(modalities: tuple[str, ...], timepoints: int) -> None:
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown or not modalities:
        raise ValueError(f"demo modalities must be among {list(MODALITIES)}, got {list(modalities)}")
    if "CT" not in modalities:
        raise ValueError("the demo cohort always has CT (the test/retest scans); add PT and/or MR to it")
    if timepoints < 1:
        raise ValueError(f"timepoints must be >= 1, got {timepoints}")


def extra_uids(patient, modalities: tuple[str, ...], timepoints: int) -> set[str]:
    """Every UID the extras of one patient write (for the PHI manifest: de-identification must replace them)."""
    seed, i = patient.seed, patient.index
    uids: set[str] = set()
    for timepoint in range(timepoints):
        if timepoint > 0:
            uids.add(uid(seed, i, "study", timepoint))
            if "CT" in modalities:
                scan = 1 + timepoint
                uids |= {uid(seed, i, scan, role) for role in ("ct-series", "frame-of-reference", "mask",
                                                               "mask-series", "dimension-org")}
                uids |= {uid(seed, i, scan, "ct", k) for k in range(patient.grid.shape[0])}
        for modality, shape in (("PT", PET_SHAPE), ("MR", MR_SHAPE)):
            if modality in modalities:
                tag = f"{modality}{timepoint}"
                uids |= {uid(seed, i, tag, role) for role in ("series", "frame", "mask", "mask-series")}
                uids |= {uid(seed, i, tag, "im", k) for k in range(shape[0])}
    return uids


def write_cohort(outdir: Path, n_patients: int = 40, seed: int = 0, modalities: tuple[str, ...] = ("CT",),
                 timepoints: int = 1) -> Path:
    """The demo cohort (``radflow.demo.write_cohort``) with PET/MR series and ``timepoints`` - 1 follow-ups."""
    modalities = tuple(m.strip().upper() for m in modalities)
    check_options(modalities, timepoints)
    if modalities == ("CT",) and timepoints == 1:
        return demo.write_cohort(outdir, n_patients, seed)
    extras = demo.CohortExtras(
        write=lambda out, patient: write_extras(out, patient, modalities, timepoints),
        clinical=lambda patient: {"response": int(is_responder(patient))} if timepoints > 1 else {},
        uids=lambda patient: extra_uids(patient, modalities, timepoints))
    return demo.write_cohort(outdir, n_patients, seed, extras)
