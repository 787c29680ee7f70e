"""Which clinical rows match no imaged case, and why they probably do not.

A clinical row joins the images through the keyed pseudonym of its ``patient_id``, which must equal the DICOM
PatientID character for character. The commonest mismatch is a spreadsheet's: Excel reads "000123" as the number 123
and saves it so. Others are letter case and separators ("ab-12" against "AB12"). The pseudonyms cannot be compared
loosely, but the variants of an unmatched ID can be pseudonymised and looked up: a variant that matches an otherwise
unmatched imaged case is reported, by CSV line (never by ID), so the user can fix the table. Nothing is matched by
variant: which patient a row describes is not guessed.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

LONGEST_ZERO_PADDED_ID = 20


def _zero_padded(patient_id: str) -> list[str]:
    if not patient_id.isdigit():
        return []
    return [patient_id.zfill(n) for n in range(len(patient_id) + 1, LONGEST_ZERO_PADDED_ID + 1)]


def _zeros_dropped(patient_id: str) -> list[str]:
    stripped = patient_id.lstrip("0")
    return [stripped] if stripped and stripped != patient_id and stripped.isdigit() else []


def _decimal_point_dropped(patient_id: str) -> list[str]:
    whole, point, zeros = patient_id.partition(".")
    return [whole] if point and whole.isdigit() and zeros and set(zeros) == {"0"} else []


def _other_case(patient_id: str) -> list[str]:
    return [v for v in (patient_id.upper(), patient_id.lower()) if v != patient_id]


def _without_separators(patient_id: str) -> list[str]:
    joined = "".join(c for c in patient_id if c not in " -_./")
    return [v for v in (joined, joined.upper()) if v != patient_id]


# (what differs, its variants of an ID), in the order a mismatch is explained
VARIANTS: tuple[tuple[str, Callable[[str], list[str]]], ...] = (
    ("with the leading zeros a spreadsheet dropped restored (store the column as text)", _zero_padded),
    ("without their leading zeros", _zeros_dropped),
    ("without the '.0' a spreadsheet added to a number", _decimal_point_dropped),
    ("in other letter case", _other_case),
    ("without spaces, dashes, underscores, dots or slashes", _without_separators),
)


def _lines_text(lines: Sequence[int]) -> str:
    return ", ".join(map(str, lines[:10])) + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def unmatched_report(source: str, patient_ids: Sequence[str], lines: Sequence[int], imaged_cases: Iterable[str],
                     pseudonym: Callable[[str], str]) -> list[str]:
    """Messages (none when every row matches) on the rows of ``patient_ids`` (at CSV ``lines``) whose pseudonym is
    none of ``imaged_cases``: how many, and which of them would match an unmatched imaged case by a variant of the
    ID (``VARIANTS``)."""
    imaged = set(imaged_cases)
    pseudonyms = [pseudonym(p) for p in patient_ids]
    unmatched = [i for i, case in enumerate(pseudonyms) if case not in imaged]
    if not unmatched:
        return []
    messages = [f"{source}: {len(unmatched)} of {len(patient_ids)} patient_id(s) match no imaged case (lines "
                f"{_lines_text([lines[i] for i in unmatched])}): a patient_id must equal the DICOM PatientID exactly"]
    still_unimaged = imaged - set(pseudonyms)
    explained: set[int] = set()
    for what, variants_of in VARIANTS:
        found = [i for i in unmatched if i not in explained
                 and any(pseudonym(v) in still_unimaged for v in variants_of(patient_ids[i]))]
        if found:
            explained.update(found)
            messages.append(f"{source}: {len(found)} of them match an imaged case {what}: lines "
                            f"{_lines_text([lines[i] for i in found])}")
    return messages
