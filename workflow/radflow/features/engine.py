"""Run the configured IBSI feature families on one preprocessed ROI.

Every family module ``radflow.features.<family>`` exposes ``compute(roi: RoiData, settings: Settings) ->
list[FeatureValue]``; this module only dispatches and labels the rows with the registry.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from radflow.features import registry
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings


@dataclass(frozen=True)
class FeatureRow:
    family: str
    feature: str
    ibsi_code: str
    aggregation: str
    value: float
    reason: str


def family_module(family: str):
    if family not in registry.FAMILY_CODES:
        raise KeyError(f"unknown feature family {family!r}")
    return importlib.import_module(f"radflow.features.{family}")


def extract(roi: RoiData, settings: Settings) -> list[FeatureRow]:
    rows: list[FeatureRow] = []
    for family in settings["families"]:
        values: list[FeatureValue] = family_module(family).compute(roi, settings)
        for fv in values:
            feat = registry.info(fv.ibsi_code)
            rows.append(FeatureRow(feat.family, feat.name, fv.ibsi_code, fv.aggregation, float(fv.value), fv.reason))
    return rows
