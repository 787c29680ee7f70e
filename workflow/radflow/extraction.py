"""Feature extraction for one image and mask: preprocessing and the IBSI engine, as a table."""
from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import SimpleITK as sitk

from radflow.features import engine
from radflow.imaging.preprocess import prepare
from radflow.settings import Settings


def extract_pair(image: sitk.Image, mask: sitk.Image, settings: Settings) -> pd.DataFrame:
    """All configured features of one ROI: columns family, feature, ibsi_code, aggregation, value, reason."""
    roi = prepare(image, mask, settings)
    rows = engine.extract(roi, settings)
    return pd.DataFrame([asdict(r) for r in rows], columns=["family", "feature", "ibsi_code", "aggregation", "value", "reason"])
