"""Grey level distance zone matrix (GLDZM) features, IBSI family VMDZ (IBSI 1, section 3.10).

Zones as in the GLSZM (linked voxels of one grey level, linkage ``zone_linkage``). The distance of a voxel to the
ROI edge is its taxicab (city-block) distance to the nearest voxel outside the ROI, 1 for edge voxels, measured in
the axial slice (4-connectedness) for 2D/2.5D and in the volume (6-connectedness) for 3D; a zone's distance is the
smallest distance of its voxels. The distance map is taken on the morphological mask (the ROI before intensity
re-segmentation): IBSI configuration A's reference values need it (with the intensity mask the distance features
of 2D and 2.5D miss their references; the digital phantom's masks coincide). d_ij is the number of
zones of grey level i and distance j; N_s = sum_ij d_ij, N_v voxels in the intensity mask, p_ij = d_ij / N_s,
d_i = sum_j d_ij, d_j = sum_i d_ij.

Aggregation (``settings["texture"]["zone_aggregations"]``): 2D per-slice matrices, features averaged over slices;
2.5D slice matrices summed, then features; 3D one volume matrix.

| code | feature                                   | formula                                   |
|------|-------------------------------------------|-------------------------------------------|
| 0GBI | small distance emphasis                   | sum_j d_j / j^2 / N_s                     |
| MB4I | large distance emphasis                   | sum_j d_j j^2 / N_s                       |
| S1RA | low grey level zone emphasis              | sum_i d_i / i^2 / N_s                     |
| K26C | high grey level zone emphasis             | sum_i d_i i^2 / N_s                       |
| RUVG | small distance low grey level emphasis    | sum_ij d_ij / (i^2 j^2) / N_s             |
| DKNJ | small distance high grey level emphasis   | sum_ij d_ij i^2 / j^2 / N_s               |
| A7WM | large distance low grey level emphasis    | sum_ij d_ij j^2 / i^2 / N_s               |
| KLTH | large distance high grey level emphasis   | sum_ij d_ij i^2 j^2 / N_s                 |
| VFT7 | grey level non-uniformity                 | sum_i d_i^2 / N_s                         |
| 7HP3 | normalised grey level non-uniformity      | sum_i d_i^2 / N_s^2                       |
| V294 | zone distance non-uniformity              | sum_j d_j^2 / N_s                         |
| IATH | normalised zone distance non-uniformity   | sum_j d_j^2 / N_s^2                       |
| VIWW | zone percentage                           | N_s / N_v                                 |
| QK93 | grey level variance                       | sum_ij (i - mu)^2 p_ij, mu = sum_ij i p_ij|
| 7WT1 | zone distance variance                    | sum_ij (j - mu)^2 p_ij, mu = sum_ij j p_ij|
| GBDU | zone distance entropy                     | -sum_ij p_ij log2 p_ij                    |

Every feature is defined for a non-empty ROI.
"""
from __future__ import annotations

import numpy as np

from radflow.features import zones
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings

# generic name -> IBSI code in ``zones.cell_features`` (column value j = zone distance).
CODE_OF = {
    "small": "0GBI",
    "large": "MB4I",
    "low": "S1RA",
    "high": "K26C",
    "small_low": "RUVG",
    "small_high": "DKNJ",
    "large_low": "A7WM",
    "large_high": "KLTH",
    "glnu": "VFT7",
    "glnu_norm": "7HP3",
    "cnu": "V294",
    "cnu_norm": "IATH",
    "percentage": "VIWW",
    "gl_variance": "QK93",
    "c_variance": "7WT1",
    "entropy": "GBDU",
}
CODES = tuple(CODE_OF.values())


def distance_zones(roi: RoiData, linkage: int, planar: bool) -> zones.Zones:
    """Zones of the intensity mask, each with its minimum distance to the edge of the morphological mask (shared
    with the GLSZM through ``zones.roi_zones``)."""
    return zones.roi_zones(roi, linkage, planar, with_distance=True)


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    linkage = settings["texture"]["zone_linkage"]

    def planar() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found = distance_zones(roi, linkage, planar=True)
        return found.slice, found.level, found.distance

    def volume() -> tuple[np.ndarray, np.ndarray]:
        found = distance_zones(roi, linkage, planar=False)
        return found.level, found.distance

    return zones.aggregated_values(settings["texture"]["zone_aggregations"], planar, volume, roi.int_mask,
                                   roi.n_levels, CODE_OF)
