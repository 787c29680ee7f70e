"""Timepoints and scan labels of one patient, from acquisition dates and times (never from discovery order).

A patient's scans are grouped into timepoints (visits) by acquisition date: the earliest date opens timepoint 0
(baseline); a scan more than ``max_gap_days`` calendar days after the first scan of the open timepoint opens the
next one. Within one modality and timepoint, scans are ordered by acquisition date-time (then SeriesNumber, then
UID, only to break exact ties) and labelled:

=============  ==============================  ==================================================
timepoint      first / second / further scan   e.g.
=============  ==============================  ==================================================
0 (baseline)   ``test``, ``retest``, ``scanN``  same-day repeats stay test/retest (stability)
k >= 1         ``fuK``, ``fuK_retest``, ...     follow-up ``fu1``; delta features pair it with ``test``
=============  ==============================  ==================================================

The first modality of the configured ``series.modalities`` gets these labels as they are; other modalities are
prefixed with their lower-case name (``pt_test``, ``mr_fu1``), so a case's scan labels stay unique. A series of a
configured sequence (``radflow.sequences``: ``t2w``, ``adc``) is grouped and labelled with its sequence instead
(``t2w_test``, ``adc_fu1``): a T2-weighted and an ADC series of one day are two sequences, not a test and a
retest. Days from baseline count calendar days between the scan's date and the patient's earliest date.
Pseudonymisation shifts all dates of a patient by the same number of days, so these intervals are the same on
shifted dates.

Ambiguous groupings are flagged on the scans concerned (warnings, so the case goes on):
``ACQUISITION_DATE_MISSING`` when a patient with several scans has one without any date (it cannot be placed:
labelled ``undated``, ``undated2``, ... with no timepoint), and ``TIMEPOINT_AMBIGUOUS`` when more than two scans of
one modality and protocol fall on one timepoint (which two are the test-retest pair is a guess: the first two in
time).

Only scans of one acquisition protocol (``radflow.sequences.protocol_of``: echo, repetition and inversion times,
sequence type, CT kernel, contrast, original or derived image) are repeats of each other: within a timepoint the
first scan in time sets the protocol, the next scan with the same protocol is its retest, and a scan of another
protocol (a T2-weighted series beside a T1-weighted one, a sharp-kernel reconstruction beside the soft one) is
labelled after them (``scanN``, ``fuK_scanN``) with the warning ``NOT_A_REPEAT`` naming the differences. At a
follow-up the baseline test's protocol leads (``fuK`` is the scan delta features compare with the baseline); a
follow-up without any scan of that protocol gets ``FOLLOW_UP_PROTOCOL_DIFFERS`` on its ``fuK``. Naming the sequences
(``series.sequences``) gives each its own labels instead.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from radflow.inventory import ScanWarning
from radflow.sequences import Protocol, protocol_differences

BASELINE_LABELS = ("test", "retest")
ACQUISITION_DATE_MISSING = "ACQUISITION_DATE_MISSING"
TIMEPOINT_AMBIGUOUS = "TIMEPOINT_AMBIGUOUS"
NOT_A_REPEAT = "NOT_A_REPEAT"
FOLLOW_UP_PROTOCOL_DIFFERS = "FOLLOW_UP_PROTOCOL_DIFFERS"


@dataclass(frozen=True)
class TimepointRules:
    """The config's ``timepoints`` section and the modality that keeps unprefixed labels."""

    max_gap_days: int = 0  # 0: one timepoint per calendar day
    primary_modality: str = "CT"

    @classmethod
    def from_config(cls, doc: dict | None, primary_modality: str = "CT") -> "TimepointRules":
        doc = doc or {}
        gap = int(doc.get("max_gap_days", cls.max_gap_days))
        if gap < 0:
            raise ValueError(f"timepoints.max_gap_days must be >= 0, got {gap}")
        return cls(max_gap_days=gap, primary_modality=primary_modality)


@dataclass(frozen=True)
class ScanTiming:
    """What the timing of one scan says: its acquisition date-time (ISO 8601, '' when unknown) and tie-breakers."""

    modality: str
    when: str
    series_number: str = ""
    uid: str = ""
    sequence: str = ""  # radflow.sequences name, '' when none is configured or matches
    protocol: Protocol = ()  # acquisition protocol (radflow.sequences.protocol_of), compared with the test's

    @property
    def date(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(self.when[:10]) if self.when else None
        except ValueError:
            return None

    def order(self) -> tuple:
        number = int(self.series_number) if self.series_number.strip().lstrip("-").isdigit() else 0
        return (self.when, number, self.uid)


@dataclass
class Placement:
    """Label, timepoint and days from baseline of one scan, with the warnings its grouping raised."""

    label: str
    timepoint: int | None
    days_from_baseline: int | None
    warnings: list[ScanWarning] = field(default_factory=list)


def timepoint_label(timepoint: int, position: int) -> str:
    """``test``/``retest``/``scanN`` at baseline, ``fuK``/``fuK_retest``/``fuK_scanN`` at follow-up K."""
    if timepoint == 0:
        return BASELINE_LABELS[position] if position < 2 else f"scan{position + 1}"
    suffix = "" if position == 0 else "_retest" if position == 1 else f"_scan{position + 1}"
    return f"fu{timepoint}{suffix}"


def modality_prefix(modality: str, rules: TimepointRules) -> str:
    return "" if modality == rules.primary_modality else f"{modality.lower()}_"


def label_prefix(scan: ScanTiming, rules: TimepointRules) -> str:
    """``t2w_`` for a scan of a named sequence, else its modality's prefix ('' for the primary modality)."""
    return f"{scan.sequence}_" if scan.sequence else modality_prefix(scan.modality, rules)


def not_a_repeat(first: ScanTiming, scan: ScanTiming, reference: str) -> list[ScanWarning]:
    """NOT_A_REPEAT for a scan acquired with another protocol than the scan whose protocol its timepoint keeps
    (``reference`` names it)."""
    differences = protocol_differences(first.protocol, scan.protocol)
    return [{"code": NOT_A_REPEAT, "value": float(len(differences)),
             "message": f"acquired with another protocol than {reference} "
                        f"({'; '.join(differences)}): a different sequence or reconstruction, so not taken as its "
                        "repeat; to analyse each, name them in series.sequences (each then gets its own labels and "
                        "test-retest pair)"}]


def group_dates(dates: list[dt.date], max_gap_days: int) -> dict[dt.date, int]:
    """Timepoint index of each distinct date: a date more than ``max_gap_days`` after the first date of the open
    timepoint opens the next one."""
    index: dict[dt.date, int] = {}
    current, opened = -1, None
    for date in sorted(set(dates)):
        if opened is None or (date - opened).days > max_gap_days:
            current, opened = current + 1, date
        index[date] = current
    return index


def place(scans: list[ScanTiming], rules: TimepointRules) -> list[Placement]:
    """Label, timepoint and days from baseline of each of one patient's scans (same order as ``scans``)."""
    dates = [s.date for s in scans]
    dated = [d for d in dates if d is not None]
    placements: list[Placement | None] = [None] * len(scans)
    groups: dict[tuple[str, str, int | None], list[int]]
    if not dated:  # nothing to group by: one unknown timepoint in time order (SeriesNumber), as far as it goes
        groups = {}
        for i, scan in enumerate(scans):
            groups.setdefault((scan.modality, scan.sequence, None), []).append(i)
        timepoint_of = {}
    else:
        timepoint_of = group_dates(dated, rules.max_gap_days)
        groups = {}
        for i, (scan, date) in enumerate(zip(scans, dates)):
            if date is not None:
                groups.setdefault((scan.modality, scan.sequence, timepoint_of[date]), []).append(i)
    baseline = min(dated) if dated else None
    baseline_test = {(modality, sequence): min(members, key=lambda i: scans[i].order())
                     for (modality, sequence, timepoint), members in groups.items() if timepoint == 0}
    for (modality, sequence, timepoint), members in groups.items():
        in_time = sorted(members, key=lambda i: scans[i].order())
        # the first scan's protocol makes the pair: a same-day series of another protocol is not its retest; at a
        # follow-up, the baseline test's protocol when one of the visit's scans has it (the one delta features
        # compare with the baseline)
        anchor = baseline_test.get((modality, sequence))
        reference = "the baseline test scan"
        unmatched: list[ScanWarning] = []  # a follow-up without the baseline's protocol: its delta features differ
        if timepoint in (0, None) or anchor is None or all(
                protocol_differences(scans[anchor].protocol, scans[i].protocol) for i in in_time):
            if anchor is not None and timepoint not in (0, None):
                differences = protocol_differences(scans[anchor].protocol, scans[in_time[0]].protocol)
                unmatched = [{"code": FOLLOW_UP_PROTOCOL_DIFFERS, "value": float(len(differences)),
                              "message": f"no scan of this follow-up has the baseline test scan's protocol; this one "
                                         f"differs in {'; '.join(differences)}: its delta features compare "
                                         "different acquisitions"}]
            anchor, reference = in_time[0], f"the {timepoint_label(timepoint or 0, 0)} scan of this timepoint"
        first = scans[anchor]
        repeats = [i for i in in_time if not protocol_differences(first.protocol, scans[i].protocol)]
        others = [i for i in in_time if i not in repeats]
        kind = f"{modality} {sequence}" if sequence else modality
        warnings: list[ScanWarning] = []
        if len(repeats) > 2:
            warnings.append({"code": TIMEPOINT_AMBIGUOUS, "value": float(len(repeats)),
                             "message": f"{len(repeats)} {kind} scans of one protocol on one timepoint: the first two "
                                        "in time are taken as test and retest"})
        if timepoint is None and len(members) > 1:
            warnings.append({"code": ACQUISITION_DATE_MISSING, "value": float(len(members)),
                             "message": f"{len(members)} {kind} scans without acquisition date: ordered by "
                                        "SeriesNumber, timepoint unknown"})
        # another protocol's scans come after the pair's places, so that none of them is ever a retest
        positions = list(range(len(repeats))) + list(range(max(len(repeats), 2), max(len(repeats), 2) + len(others)))
        for position, i in zip(positions, repeats + others):
            date = dates[i]
            days = (date - baseline).days if date is not None and baseline is not None else None
            label = label_prefix(scans[i], rules) + timepoint_label(timepoint or 0, position)
            own = not_a_repeat(first, scans[i], reference) if i in others else unmatched if i == anchor else []
            placements[i] = Placement(label, timepoint, days, list(warnings) + own)
    undated = [i for i, p in enumerate(placements) if p is None]
    numbered: dict[str, int] = {}
    for i in sorted(undated, key=lambda i: scans[i].order()):
        prefix = label_prefix(scans[i], rules)
        n = numbered[prefix] = numbered.get(prefix, 0) + 1
        label = prefix + ("undated" if n == 1 else f"undated{n}")
        placements[i] = Placement(label, None, None, [{
            "code": ACQUISITION_DATE_MISSING, "value": None,
            "message": "no acquisition, series or study date while the patient's other scans have one: the scan "
                       "cannot be placed on a timepoint"}])
    return placements  # type: ignore[return-value]


_TIMEPOINT_BASE = re.compile(r"^(test|retest|scan\d+|fu\d+(_retest|_scan\d+)?|undated\d*)$")
_FOLLOW_UP = re.compile(r"^fu(\d+)$")


def split_label(label: str) -> tuple[str, str]:
    """(modality prefix, timepoint label) of a scan label: ``pt_fu1`` -> ('pt_', 'fu1'), ``retest`` -> ('',
    'retest'). A label radflow did not make (an input manifest's own scan name) is returned as ('', label)."""
    if _TIMEPOINT_BASE.match(label):
        return "", label
    head, _, rest = label.partition("_")
    if rest and _TIMEPOINT_BASE.match(rest):
        return f"{head}_", rest
    return "", label


def follow_up_index(label: str) -> int | None:
    """K of the first scan of follow-up timepoint K (``fuK`` after any modality prefix), else None."""
    match = _FOLLOW_UP.match(split_label(label)[1])
    return int(match.group(1)) if match else None
