"""IBSI vocabulary shared by the settings document and the feature families: family names with their IBSI codes and
the aggregation labels, exactly as ../shared/ibsi/reference spells them.

A leaf module (no radflow imports), so that ``settings`` can validate a document without importing the families.
"""
from __future__ import annotations

FAMILY_CODES = {
    "morphology": "HCUG",
    "local_intensity": "9ST6",
    "statistics": "UHIW",
    "intensity_histogram": "ZVCW",
    "ivh": "P88C",
    "glcm": "LFYI",
    "glrlm": "TP0I",
    "glszm": "9SAK",
    "gldzm": "VMDZ",
    "ngtdm": "IPET",
    "ngldm": "REK0",
}
FAMILIES = tuple(FAMILY_CODES)

NO_AGGREGATION = "none"
MATRIX_AGGREGATIONS = (  # GLCM, GLRLM
    "2D, averaged",
    "2D, slice-merged",
    "2.5D, direction-merged",
    "2.5D, merged",
    "3D, averaged",
    "3D, merged",
)
ZONE_AGGREGATIONS = ("2D", "2.5D", "3D")  # GLSZM, GLDZM, NGTDM, NGLDM
