"""Stability results as tables: one row per (settings id, roi, feature, aggregation, method)."""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from radflow.stability.design import FEATURE_KEY, Design
from radflow.stability.summary import STATISTICS, stability_statistics

STABILITY_COLUMNS = ["settings_id", "roi", *FEATURE_KEY, "method", "icc_form", *STATISTICS]
CASES_COLUMNS = ["settings_id", "roi", "method", "case_id"]


def design_table(design: Design, icc_form: str, confidence: float) -> pd.DataFrame:
    stats = stability_statistics(design.values, icc_form, confidence)
    table = design.features.reset_index(drop=True).copy()
    table.insert(0, "roi", design.roi)
    table.insert(0, "settings_id", design.settings_id)
    table["method"] = design.method
    table["icc_form"] = icc_form
    for name in STATISTICS:
        table[name] = stats[name]
    return table[STABILITY_COLUMNS]


def stability_tables(designs: Iterable[Design], icc_form_of, confidence: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stability rows, cases used) of every design; ``icc_form_of(method)`` names the ICC form per method."""
    tables, cases = [], []
    for design in designs:
        tables.append(design_table(design, icc_form_of(design.method), confidence))
        cases += [(design.settings_id, design.roi, design.method, c) for c in design.subjects_used()]
    stability = (pd.concat(tables, ignore_index=True) if tables
                 else pd.DataFrame({c: pd.Series(dtype="object") for c in STABILITY_COLUMNS}))
    return stability, pd.DataFrame(cases, columns=CASES_COLUMNS)
