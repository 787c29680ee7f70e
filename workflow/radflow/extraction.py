"""Feature extraction for one image and mask: preprocessing and the IBSI engine, as a table.

pandas is imported only when a DataFrame is asked for: ``radflow extract`` writes its CSV from the columns directly
and so spares a fresh process pandas' import (about 0.25 s).
"""
from __future__ import annotations

import csv
import math
from typing import TYPE_CHECKING, TextIO

import numpy as np
import SimpleITK as sitk

from radflow.features import engine
from radflow.imaging.filters import FilterSpec
from radflow.imaging.preprocess import local_intensity_radius_mm, prepare
from radflow.settings import SHIPPED_DOCUMENTS, Settings

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = list(engine.COLUMNS)
# The columns ``radflow extract`` writes, and how it writes a value: as pandas' to_csv(float_format="%.17g") would
# (NaN as an empty field, and ``reason`` saying why).
CSV_COLUMNS = ["family", "feature", "ibsi_code", "aggregation", "value", "reason"]
CSV_FLOAT_FORMAT = "%.17g"


def extract_columns(image: sitk.Image, mask: sitk.Image, settings: Settings,
                    memory_mb: float | None = None) -> dict[str, list]:
    """All configured features of one ROI as columns family, feature, ibsi_code, aggregation, value, reason;
    ``RoiTooLargeError`` before any allocation when the ROI's grid would exceed ``memory_mb``."""
    return engine.extract_columns(prepare(image, mask, settings, memory_mb=memory_mb), settings)


def settings_mismatch(settings: Settings, modality: str | None, source: str) -> str | None:
    """Why ``settings`` must not be applied to an image of DICOM ``modality`` (None: they may), as the pipeline
    never applies them (``Settings.fits_modality``): a CT document's bins are Hounsfield units, meaningless for MR
    signal or PET SUV. An image of unknown modality (NIfTI, NRRD) is the user's to match."""
    if modality is None or settings.fits_modality(modality):
        return None
    which = f"the settings {settings.name}" if settings.name else "radflow's default settings"
    target = {"PT": "PET", "CT": "CT", "MR": "MR"}.get(modality, "generic")
    shipped = SHIPPED_DOCUMENTS.get(modality)
    remedy = f"{shipped}, or your own document with modality: {target}" if shipped else \
        f"a document with modality: {target}"
    return f"{which} are for {settings['modality']} images and {source} is a DICOM series of modality {modality}: " \
        f"use {remedy}"


class CtWithoutAirWarning(UserWarning):
    """CT settings were applied to an image of unknown modality without any air (see ``ct_without_air``)."""


def ct_without_air(settings: Settings, modality: str | None, sample: np.ndarray, source: str) -> str | None:
    """Why an image of unknown modality (a NIfTI, NRRD or array) does not look like the CT its ``settings`` are for:
    ``sample`` (the image, or its first slice, where a CT's corners hold air or padding) has no voxel at or below
    -500 HU. An MR or PET file given with radflow's default (CT) settings would otherwise get CT bins and HU
    re-segmentation without a word, as the pipeline's QC check CT_WITHOUT_AIR says for its image files. None when
    the image may well be CT, its modality is known, or the settings are not for CT."""
    from radflow.qc import CT_AIR_BELOW_HU, PASS, ct_air_present

    if modality is not None or settings["modality"] != "CT" or ct_air_present(sample).severity == PASS:
        return None
    finite = sample[np.isfinite(sample)]
    return (f"{source} is taken as CT (the settings are for CT) but holds no air: no voxel at or below "
            f"{CT_AIR_BELOW_HU:g} HU (values {float(finite.min()):.6g} to {float(finite.max()):.6g}"
            f"{' in its first slice' if sample.ndim < 3 or sample.shape[0] == 1 else ''}). An MR or PET image needs "
            f"settings for its modality ({SHIPPED_DOCUMENTS['MR']}, {SHIPPED_DOCUMENTS['PT']}, or your own); CT "
            "stored as HU + 1024 needs converting to HU; a CT cropped to soft tissue has no air, and then this "
            "warning can be ignored")


def roi_window_margin_mm(settings: Settings) -> float | None:
    """The margin (mm) around the ROI's bounding box that holds everything the features of ``settings`` see — the
    local-intensity sphere's radius — or None when they see more of the image: interpolation (the IBSI grid is
    aligned to the whole image), intensity normalisation (fitted on the whole image) or a filter. With a margin,
    ``radflow extract`` reads only that window of the image (``io.read_roi_window``); the features are the same."""
    if (settings["interpolation"]["enabled"] or settings["intensity_normalisation"] != "none"
            or FilterSpec.from_settings(settings["filter"]).active):
        return None
    return local_intensity_radius_mm(settings)


def extract_pair(image: sitk.Image, mask: sitk.Image, settings: Settings,
                 memory_mb: float | None = None) -> "pd.DataFrame":
    """All configured features of one ROI: columns family, feature, ibsi_code, aggregation, value, reason."""
    import pandas as pd

    return pd.DataFrame(extract_columns(image, mask, settings, memory_mb), columns=COLUMNS)


def write_csv(columns: dict[str, list], out: TextIO) -> None:
    """The ``CSV_COLUMNS`` of an ``extract_columns`` table as CSV (header first), values with 17 significant
    digits (round-trip exact), NaN as an empty field, whose ``reason`` says why."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    values = ["" if math.isnan(v) else CSV_FLOAT_FORMAT % v for v in columns["value"]]
    writer.writerows(zip(*(values if name == "value" else columns[name] for name in CSV_COLUMNS)))
