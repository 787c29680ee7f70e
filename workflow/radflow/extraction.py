"""Feature extraction for one image and mask: preprocessing and the IBSI engine, as a table.

pandas is imported only when a DataFrame is asked for: ``radflow extract`` writes its CSV from the columns directly
and so spares a fresh process pandas' import (about 0.25 s).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import SimpleITK as sitk

from radflow.features import engine
from radflow.imaging.filters import FilterSpec
from radflow.imaging.preprocess import local_intensity_radius_mm, prepare
from radflow.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = list(engine.COLUMNS)
# The columns ``radflow extract`` writes, and how it writes a value: what pandas' to_csv(float_format="%.17g")
# wrote before (NaN as an empty field).
CSV_COLUMNS = ["family", "feature", "ibsi_code", "aggregation", "value"]
CSV_FLOAT_FORMAT = "%.17g"


def extract_columns(image: sitk.Image, mask: sitk.Image, settings: Settings) -> dict[str, list]:
    """All configured features of one ROI as columns family, feature, ibsi_code, aggregation, value, reason."""
    return engine.extract_columns(prepare(image, mask, settings), settings)


def read_inputs(image_path: Path, mask_path: Path, settings: Settings, roi: str | None = None
                ) -> tuple[sitk.Image, sitk.Image]:
    """The image and mask ``extract_columns`` needs for these settings: only the ROI's window (its box plus the
    local-intensity margin, ``io.read_roi_window``) when the features see nothing else — no interpolation (the IBSI
    grid is aligned to the whole image), no intensity normalisation (fitted on the whole image) and no filter —
    and both are image files; otherwise the whole image and mask. Same features either way."""
    from radflow.io import read_image, read_mask, read_roi_window

    neighbourhood_only = (not settings["interpolation"]["enabled"] and settings["intensity_normalisation"] == "none"
                          and not FilterSpec.from_settings(settings["filter"]).active)
    if neighbourhood_only:
        window = read_roi_window(image_path, mask_path, local_intensity_radius_mm(settings), roi=roi)
        if window is not None:
            return window
    image = read_image(image_path)
    return image, read_mask(mask_path, image, roi=roi)


def extract_pair(image: sitk.Image, mask: sitk.Image, settings: Settings) -> "pd.DataFrame":
    """All configured features of one ROI: columns family, feature, ibsi_code, aggregation, value, reason."""
    import pandas as pd

    return pd.DataFrame(extract_columns(image, mask, settings), columns=COLUMNS)


def write_csv(columns: dict[str, list], out: TextIO) -> None:
    """The ``CSV_COLUMNS`` of an ``extract_columns`` table as CSV (header first), values with 17 significant
    digits (round-trip exact), NaN as an empty field."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    values = ["" if math.isnan(v) else CSV_FLOAT_FORMAT % v for v in columns["value"]]
    writer.writerows(zip(*(columns[name] for name in CSV_COLUMNS[:-1]), values))
