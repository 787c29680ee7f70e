"""3D Slicer segmentation files (``.seg.nrrd``): their segments by name.

Slicer saves a segmentation as NRRD with one entry per segment in the header (``Segment<i>_Name``, ``_ID``,
``_LabelValue``, ``_Layer``). Segments that do not overlap share one labelmap, each with its own label value; where
they overlap Slicer stores several layers, which ITK reads as a vector image with one component per layer (Slicer
before 4.11 gave every segment a layer of its own, voxels 1, and wrote neither key). The header is what says which
voxels are the "GTV": label values alone are numbered in the order segments were drawn.

A user names a segment as Slicer shows it (``--roi GTV``, or the input manifest's ``label`` column); a label value
still works for a single-layer file. The segment's layer and label value then select the ROI like any label mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class MetadataSource(Protocol):
    """A SimpleITK image or a reader that has read its header: what the segment entries are read from."""

    def GetMetaDataKeys(self) -> tuple[str, ...]: ...  # noqa: N802 (SimpleITK's names)

    def GetMetaData(self, key: str) -> str: ...  # noqa: N802


@dataclass(frozen=True)
class Segment:
    name: str  # as Slicer shows it (free text: it may name a person, so it never reaches results)
    segment_id: str
    label_value: int
    layer: int


class SegmentChoiceError(ValueError):
    """No segment, or several, match what was asked for; ``public`` says so without segment names."""

    def __init__(self, message: str, public: str):
        super().__init__(message)
        self.public = public


def segments(source: MetadataSource) -> list[Segment]:
    """The segments a Slicer segmentation's header lists, in its order; [] for any other file."""
    keys = set(source.GetMetaDataKeys())

    def entry(index: int, field: str, default: str) -> str:
        key = f"Segment{index}_{field}"
        return source.GetMetaData(key).strip() if key in keys else default

    found = []
    index = 0
    while f"Segment{index}_ID" in keys or f"Segment{index}_Name" in keys:
        segment_id = entry(index, "ID", f"Segment_{index + 1}")
        # Slicer before 4.11 wrote neither label value nor layer: one segment per layer, its voxels 1
        old_format = f"Segment{index}_LabelValue" not in keys and f"Segment{index}_Layer" not in keys
        found.append(Segment(name=entry(index, "Name", segment_id), segment_id=segment_id,
                             label_value=_whole(entry(index, "LabelValue", "1"), 1),
                             layer=index if old_format else _whole(entry(index, "Layer", "0"), 0)))
        index += 1
    return found


def choose(found: list[Segment], wanted: str | None, source: str) -> Segment:
    """The segment ``wanted`` names: by name as Slicer shows it, then regardless of letter case, then by segment ID,
    then, in a file of one layer, by label value; the only segment when ``wanted`` is None.
    ``SegmentChoiceError`` otherwise, listing the names (and, in ``public``, only their number)."""
    names = ", ".join(repr(s.name) for s in found)
    if wanted is None:
        if len(found) == 1:
            return found[0]
        raise SegmentChoiceError(
            f"the mask {source} is a 3D Slicer segmentation of {len(found)} segments ({names}): choose one by name "
            "with --roi NAME (radflow.extract: roi=...)",
            f"the mask file is a 3D Slicer segmentation of {len(found)} segments and the input manifest names none: "
            "set its label column to a segment's name")
    text = str(wanted).strip()
    for matches in (lambda s: s.name == text, lambda s: s.name.casefold() == text.casefold(),
                    lambda s: s.segment_id == text):
        chosen = [s for s in found if matches(s)]
        if len(chosen) == 1:
            return chosen[0]
        if len(chosen) > 1:
            raise SegmentChoiceError(f"the mask {source} has {len(chosen)} segments named {text!r}: rename them in "
                                     "Slicer, or choose by segment ID",
                                     f"the mask file has {len(chosen)} segments of the name given in the label column")
    if len({s.layer for s in found}) == 1 and _is_integer(text):
        chosen = [s for s in found if s.label_value == int(float(text))]
        if len(chosen) == 1:
            return chosen[0]
    raise SegmentChoiceError(f"the mask {source} has no segment {text!r}: its segments are {names}",
                             f"the mask file has no segment of the name in the label column ({len(found)} segments)")


def _whole(text: str, default: int) -> int:
    """A header's whole number ("2", "2.0"); ``default`` when it is none (a hand-edited header)."""
    try:
        return int(float(text))
    except ValueError:
        return default


def _is_integer(text: str) -> bool:
    try:
        return float(text) == int(float(text))
    except ValueError:
        return False
