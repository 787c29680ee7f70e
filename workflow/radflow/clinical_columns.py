"""Which clinical columns may reach the results: only those the configuration names (outcome, survival, centre,
covariates, ``clinical_keep``), and never one whose name looks identifying, however it is spelt.

Identifying names are matched case- and punctuation-insensitively ("PatientName", "Patient Name", "patient_name",
"Birth Date", "birthdate", "DOB", "Accession #", "Institution", "notes", ...): a column name is lower-cased, every
character other than a letter or digit removed, and the result searched for the fragments below.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Fragments of identifying column names (after normalisation). Substrings on purpose: "referringphysicianname",
# "patientbirthdate", "accessionnumber", "clinicalnotes" must all be caught.
IDENTIFYING_FRAGMENTS = (
    "name", "birth", "dob", "accession", "institution", "note", "comment", "address", "street",
    "postcode", "zipcode", "phone", "email", "mrn", "medicalrecord", "ssn", "socialsecurity", "nhsnumber",
    "insurance", "freetext", "initials",
)


def normalised(column: str) -> str:
    return re.sub(r"[^0-9a-z]", "", column.lower())


def is_identifying(column: str) -> bool:
    """Whether a clinical column name looks like it holds identifying information."""
    name = normalised(column)
    return any(fragment in name for fragment in IDENTIFYING_FRAGMENTS)


@dataclass(frozen=True)
class ColumnSelection:
    kept: list[str]  # in the file's order
    identifying: list[str]  # dropped because the name looks identifying (even when configured)
    not_configured: list[str]  # dropped because the configuration does not name them

    def summary(self, source: str) -> str | None:
        """One line for the user when anything was dropped (None otherwise)."""
        parts = []
        if self.not_configured:
            parts.append(f"{len(self.not_configured)} column(s) not named in the configuration dropped "
                         f"({', '.join(self.not_configured)}; list them in clinical_keep to keep them)")
        if self.identifying:
            parts.append(f"{len(self.identifying)} identifying column(s) dropped ({', '.join(self.identifying)})")
        if not parts:
            return None
        return f"{source}: kept {len(self.kept)} clinical column(s) ({', '.join(self.kept) or 'none'}); " + \
            "; ".join(parts)


def select_columns(columns: list[str], wanted: list[str] | None, id_column: str = "patient_id") -> ColumnSelection:
    """Split the clinical file's columns (``id_column`` excluded) into kept and dropped. ``wanted``: the columns the
    configuration names (None: every non-identifying column, for direct callers without a configuration)."""
    wanted_names = None if wanted is None else {w for w in wanted if w}
    kept, identifying, not_configured = [], [], []
    for column in columns:
        if column == id_column:
            continue
        if is_identifying(column):
            identifying.append(column)
        elif wanted_names is None or column in wanted_names:
            kept.append(column)
        else:
            not_configured.append(column)
    return ColumnSelection(kept, identifying, not_configured)
