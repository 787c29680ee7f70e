"""Kinds of series within one modality: the sequences of a multiparametric MR study (T2-weighted, diffusion, ADC,
contrast-enhanced T1) or the reconstructions of one CT or PET acquisition, named by the user.

A patient's series of one modality are otherwise told apart by time and acquisition protocol
(``radflow.timepoints``): two series of one day and one protocol are a test and a retest, and a series of another
protocol is an extra scan (``scan3``) that neither stability nor the model uses. A T2-weighted and an ADC series
with their own masks are two images a study wants analysed, each with its own pairs and features. Configured
sequences (``series.sequences``) name each kind by a regular expression on the SeriesDescription (or, without one,
the ProtocolName), searched case-insensitively; the first rule that matches names the series. A named series is
labelled with its sequence instead of its modality (``t2w_test``, ``adc_test``, ``t2w_fu1``), so each sequence has its
own test-retest pairs and follow-ups, and a settings document may name the sequence it is meant for (settings
``sequence``), which gives each sequence its own settings id, stable set and model features.

Without configured sequences, a same-day series acquired with another protocol than the first (``protocol_of``:
echo and repetition times, CT kernel, contrast, original or derived image) is not taken for its retest: it is
labelled after the pair (``scan3``), with the QC warning NOT_A_REPEAT naming the differences. An input manifest
names a row's sequence in its ``sequence`` column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: A sequence name becomes a scan-label prefix, a DuckDB value and part of feature keys: short, lower case, no
#: separator.
NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
#: Names a label prefix must not take: the modality prefixes and the words of timepoint labels.
RESERVED = re.compile(r"^(ct|pt|mr|test|retest|scan\d*|fu\d*|undated\d*|delta)$")


class SequenceError(ValueError):
    """A sequence rule or a manifest's sequence value that cannot be used (one line, naming the value)."""


@dataclass(frozen=True)
class SequenceRule:
    name: str
    pattern: re.Pattern
    modality: str = ""  # DICOM Modality the rule is for ('' = any)

    def matches(self, modality: str, description: str) -> bool:
        return (not self.modality or self.modality == modality) and bool(self.pattern.search(description))


def checked_name(value: object, where: str) -> str:
    """``value`` as a sequence name, or a ``SequenceError`` saying what a name must be."""
    name = str(value or "").strip()
    if not NAME.match(name):
        raise SequenceError(f"{where}: sequence name {value!r} must be 1-16 lower-case letters and digits, starting "
                            "with a letter (it becomes a scan label prefix: t2w_test)")
    if RESERVED.match(name):
        raise SequenceError(f"{where}: sequence name {name!r} is taken by scan labels (ct, pt, mr, test, retest, "
                            "scanN, fuN, undated, delta)")
    return name


def rules_from_config(items: list[dict] | None) -> tuple[SequenceRule, ...]:
    """The ``series.sequences`` list as rules, in order (the first match names a series)."""
    rules: list[SequenceRule] = []
    for number, item in enumerate(items or [], start=1):
        where = f"series.sequences item {number}"
        name = checked_name(item.get("name"), where)
        if any(rule.name == name for rule in rules):
            raise SequenceError(f"{where}: sequence {name!r} is named twice")
        try:
            pattern = re.compile(str(item.get("pattern") or ""), re.IGNORECASE)
        except re.error as exc:
            raise SequenceError(f"{where}: pattern {item.get('pattern')!r} is not a regular expression ({exc})") \
                from None
        if not pattern.pattern:
            raise SequenceError(f"{where}: sequence {name!r} needs a pattern (a regular expression on the "
                                "SeriesDescription)")
        rules.append(SequenceRule(name, pattern, str(item.get("modality") or "").upper()))
    return tuple(rules)


def sequence_of(modality: str, description: str, protocol: str, rules: tuple[SequenceRule, ...]) -> str:
    """The name of the first rule matching the series (its SeriesDescription, else its ProtocolName), or ''."""
    text = description.strip() or protocol.strip()
    if not text:
        return ""
    return next((rule.name for rule in rules if rule.matches(modality, text)), "")


#: What makes two series of one modality different images rather than a repeat of one (the acquisition protocol, as
#: a retest repeats it): MR contrast (sequence type and variant, echo, repetition and inversion times), CT
#: reconstruction kernel, contrast agent, and whether the image is ORIGINAL or DERIVED (an ADC map, a subtraction).
#: Series descriptions are not compared: sites label a repeat "... retest", "repeat" or "2".
PROTOCOL_TAGS = ("ScanningSequence", "SequenceVariant", "EchoTime", "RepetitionTime", "InversionTime",
                 "ConvolutionKernel", "ContrastBolusAgent")
#: Numbers closer than this (relative) are the same setting. A scanner lengthens a repeat's repetition time by some
#: percent when the SAR or the slice count asks for it; T1-, T2-, PD-weighted and FLAIR series differ by factors.
NUMBER_TOLERANCE = 0.2

Protocol = tuple[tuple[str, str], ...]


def protocol_of(values: dict[str, str], image_type: tuple[str, ...]) -> Protocol:
    """The acquisition protocol of a series from one file's PROTOCOL_TAGS values (strings, '' when absent) and
    ImageType: the given attributes, upper case, multiple values joined by backslashes."""
    given = [(tag, " ".join(values.get(tag, "").upper().split())) for tag in PROTOCOL_TAGS]
    if image_type[:1]:
        given.append(("ImageType", image_type[0]))
    return tuple((tag, value) for tag, value in given if value)


def _same(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return a == b
    return abs(x - y) <= NUMBER_TOLERANCE * max(abs(x), abs(y))


def protocol_differences(first: Protocol, second: Protocol) -> list[str]:
    """``Tag first vs second`` for every attribute both protocols give and that differs (contrast agent: also
    when only one gives it, since a contrast-enhanced series is not a repeat of a plain one)."""
    a, b = dict(first), dict(second)
    differences = [f"{tag} {a[tag]} vs {b[tag]}" for tag in dict.fromkeys([*a, *b])
                   if tag in a and tag in b and not _same(a[tag], b[tag])]
    if ("ContrastBolusAgent" in a) != ("ContrastBolusAgent" in b) and (a or b):
        differences.append("contrast agent in one only")
    return differences
