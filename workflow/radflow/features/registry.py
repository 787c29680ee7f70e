"""IBSI feature registry: IBSI code -> family, feature name and Radiomics Ontology class.

One table (``data/ibsi_features.csv``, also linked as ``ontology/ibsi_features.csv``) serves ``radflow extract``,
the DuckDB ``features`` table and the RDF export, so a feature is named the same way everywhere.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from radflow.ibsi import FAMILIES, FAMILY_CODES

__all__ = ["FAMILIES", "FAMILY_CODES", "RO_NAMESPACE", "FeatureInfo", "codes_of", "features", "info"]

RO_NAMESPACE = "http://www.radiomics.org/RO/"



@dataclass(frozen=True)
class FeatureInfo:
    ibsi_code: str
    family: str
    family_code: str
    name: str
    ro_class: str


@cache
def features() -> dict[str, FeatureInfo]:
    """All IBSI chapter-1 features, keyed by IBSI code, in IBSI document order."""
    text = resources.files("radflow").joinpath("data/ibsi_features.csv").read_text(encoding="utf-8")
    return {
        row["ibsi_code"]: FeatureInfo(row["ibsi_code"], row["family"], row["family_code"], row["feature"], row["ro_class"])
        for row in csv.DictReader(io.StringIO(text))
    }


def info(ibsi_code: str) -> FeatureInfo:
    try:
        return features()[ibsi_code]
    except KeyError:
        raise KeyError(f"unknown IBSI feature code {ibsi_code!r}") from None


def codes_of(family: str) -> list[str]:
    """The IBSI codes of ``family``, in IBSI document order (a new list)."""
    return list(_codes_by_family().get(family, ()))


@cache
def _codes_by_family() -> dict[str, tuple[str, ...]]:
    """Codes grouped by family once: scanning all ~500 features per call cost ~40 us of every extraction."""
    grouped: dict[str, list[str]] = {}
    for code, feat in features().items():
        grouped.setdefault(feat.family, []).append(code)
    return {family: tuple(codes) for family, codes in grouped.items()}
