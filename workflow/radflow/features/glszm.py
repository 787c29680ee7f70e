"""Grey level size zone matrix (GLSZM) features, IBSI family 9SAK (IBSI 1, section 3.9).

A zone is a maximal set of linked voxels of one grey level (linkage: Chebyshev distance ``zone_linkage``, default 1,
i.e. 8-connectivity in an axial slice and 26-connectivity in the volume). s_ij is the number of zones of grey level
i and size j (voxels). N_s = sum_ij s_ij zones, N_v voxels in the intensity mask, p_ij = s_ij / N_s,
s_i = sum_j s_ij, s_j = sum_i s_ij.

Aggregation (``settings["texture"]["zone_aggregations"]``):
  2D    one matrix per axial slice (in-plane zones), features per slice, averaged over slices;
  2.5D  the slice matrices summed into one matrix (N_v: all voxels), then features;
  3D    one matrix of the volume's zones.

| code | feature                               | formula                                   |
|------|---------------------------------------|-------------------------------------------|
| 5QRC | small zone emphasis                   | sum_j s_j / j^2 / N_s                     |
| 48P8 | large zone emphasis                   | sum_j s_j j^2 / N_s                       |
| XMSY | low grey level zone emphasis          | sum_i s_i / i^2 / N_s                     |
| 5GN9 | high grey level zone emphasis         | sum_i s_i i^2 / N_s                       |
| 5RAI | small zone low grey level emphasis    | sum_ij s_ij / (i^2 j^2) / N_s             |
| HW1V | small zone high grey level emphasis   | sum_ij s_ij i^2 / j^2 / N_s               |
| YH51 | large zone low grey level emphasis    | sum_ij s_ij j^2 / i^2 / N_s               |
| J17V | large zone high grey level emphasis   | sum_ij s_ij i^2 j^2 / N_s                 |
| JNSA | grey level non-uniformity             | sum_i s_i^2 / N_s                         |
| Y1RO | normalised grey level non-uniformity  | sum_i s_i^2 / N_s^2                       |
| 4JP3 | zone size non-uniformity              | sum_j s_j^2 / N_s                         |
| VB3A | normalised zone size non-uniformity   | sum_j s_j^2 / N_s^2                       |
| P30P | zone percentage                       | N_s / N_v                                 |
| BYLV | grey level variance                   | sum_ij (i - mu)^2 p_ij, mu = sum_ij i p_ij|
| 3NSA | zone size variance                    | sum_ij (j - mu)^2 p_ij, mu = sum_ij j p_ij|
| GU8N | zone size entropy                     | -sum_ij p_ij log2 p_ij                    |

Every feature is defined for a non-empty ROI (a single voxel is one zone of size 1).
"""
from __future__ import annotations

import numpy as np

from radflow.features import zones
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings

# generic name -> IBSI code in ``zones.cell_features`` (column value j = zone size).
CODE_OF = {
    "small": "5QRC",
    "large": "48P8",
    "low": "XMSY",
    "high": "5GN9",
    "small_low": "5RAI",
    "small_high": "HW1V",
    "large_low": "YH51",
    "large_high": "J17V",
    "glnu": "JNSA",
    "glnu_norm": "Y1RO",
    "cnu": "4JP3",
    "cnu_norm": "VB3A",
    "percentage": "P30P",
    "gl_variance": "BYLV",
    "c_variance": "3NSA",
    "entropy": "GU8N",
}
CODES = tuple(CODE_OF.values())


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    linkage = settings["texture"]["zone_linkage"]
    # GLDZM counts the same zones: label them with its distances when it runs too, so that it reuses them
    with_distance = "gldzm" in settings["families"]

    def planar() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found = zones.roi_zones(roi, linkage, planar=True, with_distance=with_distance)
        return found.slice, found.level, found.size

    def volume() -> tuple[np.ndarray, np.ndarray]:
        found = zones.roi_zones(roi, linkage, planar=False, with_distance=with_distance)
        return found.level, found.size

    return zones.aggregated_values(settings["texture"]["zone_aggregations"], planar, volume, roi.int_mask,
                                   roi.n_levels, CODE_OF)
