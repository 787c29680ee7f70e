"""From the long feature table to repeated-measurement arrays: which rows are the k measurements of one subject.

Three designs (the ``method`` of a stability result):

* ``test-retest``: subject = case, measurements = its ``test`` and ``retest`` scans (or ``pt_test`` and
  ``pt_retest``, ``t2w_test`` and ``t2w_retest``, ... for the settings ids of another modality or sequence:
  ``radflow.timepoints``), per ROI.
* ``segmentation``: subject = case (first scan, ``test`` of its kind), measurements = the ROIs that
  ``stability.segmentation_groups`` names as observers' masks of one lesion; results carry the lesion's name as roi.
* ``perturbation``: subject = case (its first scan), measurements = the perturbed copies (``perturbation`` column).

Every design is one pivot of long rows into an array ``(features, subjects, k)`` by integer codes (no per-feature
Python loop); a missing row becomes NaN and the statistics leave that subject out for that feature.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from radflow.timepoints import split_label

log = logging.getLogger(__name__)

METHODS = ("test-retest", "segmentation", "perturbation")
FEATURE_KEY = ["family", "feature", "ibsi_code", "aggregation"]
TEST_RETEST = ["test", "retest"]
FIRST_SCAN = "test"


@dataclass(frozen=True)
class Design:
    """Repeated measurements of one (settings id, roi, method): ``values[f, i, j]`` is feature ``features.iloc[f]``
    of subject ``subjects[i]`` in measurement ``measurements[j]``."""

    settings_id: str
    roi: str
    method: str
    features: pd.DataFrame  # FEATURE_KEY columns
    subjects: list[str]  # case ids
    measurements: list[str]
    values: np.ndarray

    def subjects_used(self) -> list[str]:
        """Cases with all k measurements of at least one feature."""
        complete = np.isfinite(self.values).all(axis=2).any(axis=0)
        return [s for s, used in zip(self.subjects, complete) if used]


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(integer code per row, sorted distinct values): codes follow the sorted order."""
    codes, uniques = pd.factorize(column, sort=True)
    return codes.astype(np.int64), np.asarray(uniques)


def pivot(rows: pd.DataFrame, subject: str, measurement: str, measurements: list[str]) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """(feature keys, subjects, values (F, n, k)) of long ``rows``; rows of other measurements are ignored.

    Features (by IBSI code, then aggregation) and subjects are sorted, so the arrays do not depend on the row order
    of the input. Every step works on integer codes: 4 M rows pivot in about a second.
    """
    rows = rows[rows[measurement].isin(measurements)]
    code, codes = _codes(rows["ibsi_code"])
    aggregation, aggregations = _codes(rows["aggregation"])
    combined = code * len(aggregations) + aggregation
    feature_ids, first_row, f = np.unique(combined, return_index=True, return_inverse=True)
    i, subjects = _codes(rows[subject])
    j = pd.Index(measurements).get_indexer(rows[measurement])
    n, k = len(subjects), len(measurements)
    flat = (f * n + i) * k + j
    counts = np.bincount(flat, minlength=len(feature_ids) * n * k)
    if counts.size and counts.max() > 1:
        where = int(np.flatnonzero(counts[flat] > 1)[0])
        example = rows[[*FEATURE_KEY, subject, measurement]].iloc[where].to_dict()
        raise ValueError(f"more than one value for the same feature, subject and measurement: {example}")
    values = np.full(len(feature_ids) * n * k, np.nan)
    values[flat] = rows["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    keys = rows[FEATURE_KEY].iloc[first_row].reset_index(drop=True)
    return keys, [str(s) for s in subjects], values.reshape(len(feature_ids), n, k)


def is_first_scan(label: str) -> bool:
    """Whether ``label`` is the baseline test scan of its kind (``test``, ``pt_test``, ``t2w_test``)."""
    return split_label(label)[1] == FIRST_SCAN


def one_kind(rows: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The rows of one settings id whose scan is one of ``labels`` after its prefix, of one kind of scan,
    ``scan`` relabelled without the prefix: the unprefixed kind when it has rows, else the first prefixed one.

    A settings document normally meets one kind (its modality, or the sequence it names). A generic one measured
    on several (an MR document on T2-weighted and ADC series) gets one result per feature, from one kind, and a
    warning: its stable set then stands for every kind."""
    split = rows["scan"].map(split_label)
    prefix, base = split.map(lambda p: p[0]), split.map(lambda p: p[1])
    wanted = base.isin(labels)
    if not wanted.any():
        return rows.iloc[0:0]
    kinds = sorted(set(prefix[wanted]))
    chosen = "" if "" in kinds else kinds[0]
    if len(kinds) > 1:
        shown = [f"{kind}{labels[0]}" for kind in kinds]
        log.warning("settings %s was measured on %d kinds of scan (%s): its stability is that of the %s scans only, "
                    "and its stable set applies to all; give each sequence its own settings document (settings "
                    "'sequence') for a stable set per sequence", rows["settings_id"].iat[0], len(kinds),
                    ", ".join(shown), f"{chosen}{labels[0]}")
    keep = wanted & (prefix == chosen)
    return rows[keep.to_numpy()].assign(scan=base[keep].to_numpy())


def designs_for_test_retest(features: pd.DataFrame) -> Iterator[Design]:
    """One design per (settings id, roi): the test and retest scans of every case."""
    for (settings_id, roi), rows in features.groupby(["settings_id", "roi"], sort=True):
        rows = one_kind(rows, TEST_RETEST)
        if rows.empty:
            continue
        keys, subjects, values = pivot(rows, "case_id", "scan", TEST_RETEST)
        yield Design(settings_id, roi, "test-retest", keys, subjects, list(TEST_RETEST), values)


def designs_for_segmentation(features: pd.DataFrame, groups: dict[str, list[str]]) -> Iterator[Design]:
    """One design per (settings id, lesion): the observers' ROIs of the lesion on each case's first scan."""
    first = pd.concat([one_kind(rows, [FIRST_SCAN]) for _, rows in features.groupby("settings_id", sort=True)]) \
        if len(features) else features
    for lesion, observers in sorted(groups.items()):
        if len(observers) < 2:
            raise ValueError(f"segmentation group {lesion!r} needs at least two ROIs, got {observers}")
        missing = sorted(set(observers) - set(first["roi"]))
        if missing:
            log.warning("segmentation group %s: no features of ROI(s) %s (ROI names come from config rois)",
                        lesion, missing)
        for settings_id, rows in first[first["roi"].isin(observers)].groupby("settings_id", sort=True):
            keys, subjects, values = pivot(rows, "case_id", "roi", list(observers))
            yield Design(settings_id, lesion, "segmentation", keys, subjects, list(observers), values)


def designs_for_perturbation(perturbed: pd.DataFrame) -> Iterator[Design]:
    """One design per (settings id, roi): the perturbed copies of each case's first scan."""
    for (settings_id, roi), rows in perturbed.groupby(["settings_id", "roi"], sort=True):
        rows = one_kind(rows, [FIRST_SCAN])
        if rows.empty:
            continue
        labels = sorted(rows["perturbation"].unique())
        keys, subjects, values = pivot(rows, "case_id", "perturbation", labels)
        yield Design(settings_id, roi, "perturbation", keys, subjects, labels, values)
