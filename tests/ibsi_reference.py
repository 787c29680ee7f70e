"""Read IBSI-1 reference values and compare computed features with them the way IBSI does.

A value passes when |round3(value) - reference| <= tolerance, round3 rounding to 3 significant digits
(IBSI publishes its references so rounded; see ../shared/ibsi/README.md).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IBSI = SHARED / "ibsi"
REFERENCE_CSV = IBSI / "reference" / "ibsi1_reference_values.csv"


@dataclass(frozen=True)
class Reference:
    configuration: str
    family: str
    feature: str
    ibsi_code: str
    aggregation: str
    value: float
    tolerance: float
    is_diagnostic: bool

    @property
    def id(self) -> str:
        return f"{self.configuration}-{self.ibsi_code}-{self.feature}-{self.aggregation}".replace(" ", "")


def references(configuration: str, *, diagnostic: bool = False, family_code: str | None = None) -> list[Reference]:
    if not REFERENCE_CSV.exists():
        return []
    with REFERENCE_CSV.open(newline="") as fh:
        return [
            Reference(
                row["configuration"], row["feature_family"], row["feature_name"], row["ibsi_code"],
                row["aggregation"], float(row["reference_value"]), float(row["tolerance"]),
                row["is_diagnostic"] == "True",
            )
            for row in csv.DictReader(fh)
            if row["configuration"] == configuration
            and (row["is_diagnostic"] == "True") == diagnostic
            and (family_code is None or row["family_code"] == family_code)
        ]


def round3(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, 2 - int(math.floor(math.log10(abs(value)))))


def within_tolerance(value: float, ref: Reference) -> bool:
    return math.isfinite(value) and abs(round3(value) - ref.value) <= ref.tolerance + 1e-12
