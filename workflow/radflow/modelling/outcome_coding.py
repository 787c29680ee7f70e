"""How a clinical table codes the outcomes a model predicts, checked before anything is fitted.

A binary outcome and a survival event indicator are read as 0/1: the integers or decimals 0 and 1, or true/false
(any case). Any other coding is refused with the values found, never guessed: 1/2 is "no/yes" in one study and, in R's
``Surv(time, status)``, "censored/event" in the next, and "yes"/"no" or "dead"/"alive" read as truth values would make
every case positive. A survival time must be a finite number >= 0. Empty cells (and pandas' missing values) are
missing: those cases have no known outcome and are left out of that model.

Pure Python on purpose: the Snakefile's pre-flight (``radflow.preflight``) runs these checks on the CSV's text when
it builds the DAG, in Snakemake's own environment, and the modelling stage runs them on the pseudonymised table.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "<na>", "none", "null"})
INDICATOR_CODES = {"0": 0.0, "1": 1.0, "false": 0.0, "true": 1.0}
SHOWN_VALUES = 6


class OutcomeCodingError(ValueError):
    """A clinical outcome column coded in a way radflow will not interpret."""


def _text(value) -> str:
    """The value as the text a CSV cell would hold, lower-cased; '' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip().lower()
    if text in MISSING_TEXT:
        return ""
    try:  # "1.0", "0.00": decimals of 0 and 1 as spreadsheets write them
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _shown(values: Iterable[str]) -> str:
    distinct = sorted(set(values))
    return ", ".join(repr(v) for v in distinct[:SHOWN_VALUES]) + (", ..." if len(distinct) > SHOWN_VALUES else "")


def indicator(values: Iterable, column: str, meaning: str, event: bool = False) -> list[float]:
    """0.0 / 1.0 per value of a binary column (``meaning``: what 1 stands for, for the message; ``event``: a
    survival status column), NaN where missing. Raises OutcomeCodingError naming the column and the values that are
    neither."""
    texts = [_text(v) for v in values]
    unknown = [t for t in texts if t and t not in INDICATOR_CODES]
    if unknown:
        hint = ""
        if event and {t for t in texts if t} <= {"1", "2"}:
            hint = " (if it is R's Surv() status, 1 = censored and 2 = event: subtract 1)"
        raise OutcomeCodingError(
            f"clinical column {column!r} must be coded 0/1 (1 = {meaning}) or true/false; it holds "
            f"{_shown(unknown)}{hint}. Recode it: radflow does not guess which value means what")
    return [INDICATOR_CODES[t] if t else math.nan for t in texts]


def survival_times(values: Iterable, column: str) -> list[float]:
    """The survival (follow-up) time per value as a float, NaN where missing. Raises OutcomeCodingError for text,
    negative or infinite times."""
    times, bad = [], []
    for value in values:
        text = _text(value)
        if not text:
            times.append(math.nan)
            continue
        try:
            time = float(text)
        except ValueError:
            time = math.nan
        if not (math.isfinite(time) and time >= 0):
            bad.append(str(value).strip())
        times.append(time)
    if bad:
        raise OutcomeCodingError(
            f"clinical column {column!r} must hold survival times as numbers >= 0; {len(bad)} value(s) are not: "
            f"{_shown(bad)}")
    return times


def coding_errors(columns: dict[str, list], outcome: str | None, survival_time: str | None,
                  survival_event: str | None) -> list[str]:
    """The coding errors of the configured outcome columns among ``columns`` (name -> values), one message each."""
    checks = [(outcome, lambda v, c: indicator(v, c, "the outcome of interest")),
              (survival_event, lambda v, c: indicator(v, c, "the event happened", event=True)),
              (survival_time, survival_times)]
    errors = []
    for column, check in checks:
        if column and column in columns:
            try:
                check(columns[column], column)
            except OutcomeCodingError as error:
                errors.append(str(error))
    return errors
