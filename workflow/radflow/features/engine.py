"""Run the configured IBSI feature families on one preprocessed ROI.

Every family module ``radflow.features.<family>`` exposes ``compute(roi: RoiData, settings: Settings) ->
list[FeatureValue]``; this module only dispatches and labels the rows with the registry.
"""
from __future__ import annotations

import importlib

from radflow.features import registry
from radflow.features.base import RoiData
from radflow.settings import Settings

COLUMNS = ("family", "feature", "ibsi_code", "aggregation", "value", "reason")


def family_module(family: str):
    if family not in registry.FAMILY_CODES:
        raise KeyError(f"unknown feature family {family!r}")
    return importlib.import_module(f"radflow.features.{family}")


def extract_columns(roi: RoiData, settings: Settings) -> dict[str, list]:
    """Every configured feature of ``roi`` as columns (``COLUMNS``, one list each, row i across them).

    Columns rather than row objects: a table (DataFrame, CSV) is built from them without a per-row conversion,
    which costs as much as the feature computation itself on a small ROI (487 rows).
    """
    table: dict[str, list] = {name: [] for name in COLUMNS}
    family, feature, code, aggregation = table["family"], table["feature"], table["ibsi_code"], table["aggregation"]
    value, reason = table["value"], table["reason"]
    known = registry.features()
    for name in settings["families"]:
        for fv in family_module(name).compute(roi, settings):
            feat = known.get(fv.ibsi_code) or registry.info(fv.ibsi_code)  # info() raises for an unknown code
            family.append(feat.family)
            feature.append(feat.name)
            code.append(fv.ibsi_code)
            aggregation.append(fv.aggregation)
            value.append(float(fv.value))
            reason.append(fv.reason)
    return table

