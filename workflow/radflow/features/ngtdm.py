"""Neighbourhood grey tone difference matrix (NGTDM) features, IBSI family IPET (IBSI 1, section 3.11).

For every voxel of the intensity mask with grey level i, A is the mean grey level of its neighbours within Chebyshev
distance ``ngtdm_distance`` (default 1; in the axial slice for 2D/2.5D, in the volume for 3D) that are themselves
in the intensity mask, the centre excluded. Voxels without any such neighbour have no valid neighbourhood and are
left out. Per grey level i: n_i voxels with a valid neighbourhood, s_i = sum |i - A| over them.
N_v,c = sum_i n_i, p_i = n_i / N_v,c, N_g,p the number of grey levels with p_i > 0; the double sums below run over
grey levels with p_i > 0 and p_j > 0.

Aggregation (``settings["texture"]["zone_aggregations"]``):
  2D    s_i and n_i per axial slice, features per slice, averaged over slices;
  2.5D  s_i and n_i summed over slices (p_i recomputed from the summed n_i), then features;
  3D    s_i and n_i of the volume neighbourhoods.

| code | feature    | formula                                                                             |
|------|------------|-------------------------------------------------------------------------------------|
| QCDE | coarseness | 1 / sum_i p_i s_i                                                                   |
| 65HE | contrast   | [sum_ij p_i p_j (i - j)^2 / (N_g,p (N_g,p - 1))] [sum_i s_i / N_v,c]                |
| NQ30 | busyness   | sum_i p_i s_i / sum_ij |i p_i - j p_j|                                              |
| HDEZ | complexity | sum_ij |i - j| (p_i s_i + p_j s_j) / (p_i + p_j) / N_v,c                           |
| 1X9X | strength   | sum_ij (p_i + p_j) (i - j)^2 / sum_i s_i                                            |

Undefined cases give NaN with a reason (IBSI defines no substitute value; PyRadiomics and MIRP put 10^6 or 0):
no voxel with a valid neighbourhood (all five); sum_i s_i = 0, i.e. every neighbourhood mean equals its centre
(coarseness 1/0, strength 0/0); a single grey level (contrast: N_g,p (N_g,p - 1) = 0, busyness: 0/0). Complexity
is always defined (0 for a single grey level).
"""
from __future__ import annotations

import math

import numba
import numpy as np

from radflow.features import zones
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings

CODES = ("QCDE", "65HE", "NQ30", "HDEZ", "1X9X")


@numba.njit(cache=True, nogil=True)
def _difference_sums(padded: np.ndarray, offsets: np.ndarray, pad: int, per_slice: bool, n_levels: int):
    nz, ny, nx = padded.shape
    n_out = nz - 2 * pad if per_slice else 1
    s = np.zeros((n_out, n_levels + 1), dtype=np.float64)
    n = np.zeros((n_out, n_levels + 1), dtype=np.int64)
    n_offsets = offsets.shape[0]
    for z in range(pad, nz - pad):
        out = z - pad if per_slice else 0
        for y in range(pad, ny - pad):
            for x in range(pad, nx - pad):
                centre = padded[z, y, x]
                if centre == 0:
                    continue
                total = 0
                count = 0
                for k in range(n_offsets):
                    level = padded[z + offsets[k, 0], y + offsets[k, 1], x + offsets[k, 2]]
                    if level != 0:
                        total += level
                        count += 1
                if count > 0:
                    s[out, centre] += abs(centre - total / count)
                    n[out, centre] += 1
    return s, n


def difference_sums(roi: RoiData, distance: int, planar: bool) -> tuple[np.ndarray, np.ndarray]:
    """NGTDM columns s_i and n_i, indexed [slice, grey level] (grey level 0 unused).

    ``planar``: in-plane neighbourhoods, one row per axial slice of the ROI array; otherwise volume neighbourhoods
    and a single row.
    """
    pad = int(distance)
    padded = zones.padded_levels(roi.levels, roi.int_mask, pad)
    offsets = zones.neighbour_offsets(distance, planar)
    return _difference_sums(padded, offsets, pad, planar, int(roi.n_levels))


def ngtdm_features(s: np.ndarray, n: np.ndarray) -> zones.Values:
    """The five NGTDM features from s_i and n_i (1-D, indexed by grey level, index 0 unused)."""
    n_vc = float(n.sum())
    if n_vc == 0:
        return zones.undefined(CODES, "no voxel has a neighbour in the intensity mask")
    present = np.flatnonzero(n)
    i = present.astype(np.float64)
    p = n[present] / n_vc
    s_i = s[present]
    n_gp = present.size
    ps = p * s_i
    sum_ps = float(ps.sum())
    sum_s = float(s_i.sum())
    di = i[:, None] - i[None, :]
    ip = i * p
    constant_neighbourhoods = "sum_i s_i is 0: every voxel's neighbourhood mean equals its grey level"
    return {
        "QCDE": _ratio(1.0, sum_ps, constant_neighbourhoods),
        "65HE": _ratio(float((p[:, None] * p[None, :] * di**2).sum()) * sum_s / n_vc, n_gp * (n_gp - 1),
                       "a single grey level among the voxels with a neighbourhood: N_g,p (N_g,p - 1) = 0"),
        "NQ30": _ratio(sum_ps, float(np.abs(ip[:, None] - ip[None, :]).sum()), "sum_ij |i p_i - j p_j| is 0"),
        "HDEZ": (float((np.abs(di) * (ps[:, None] + ps[None, :]) / (p[:, None] + p[None, :])).sum() / n_vc), ""),
        "1X9X": _ratio(float(((p[:, None] + p[None, :]) * di**2).sum()), sum_s, constant_neighbourhoods),
    }


def _ratio(numerator: float, denominator: float, reason: str) -> tuple[float, str]:
    return (numerator / denominator, "") if denominator > 0 else (math.nan, reason)


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    aggregations = settings["texture"]["zone_aggregations"]
    distance = settings["texture"]["ngtdm_distance"]
    planar = None
    if {"2D", "2.5D"} & set(aggregations):
        planar = difference_sums(roi, distance, planar=True)

    def values_for(aggregation: str) -> zones.Values:
        if aggregation == "2D":
            s, n = planar
            slices = zones.slices_with_voxels(roi.int_mask)
            return zones.average_over_slices([ngtdm_features(s[z], n[z]) for z in slices], CODES)
        if aggregation == "2.5D":
            s, n = planar
            return ngtdm_features(s.sum(axis=0), n.sum(axis=0))
        s, n = difference_sums(roi, distance, planar=False)
        return ngtdm_features(s[0], n[0])

    return zones.feature_values(CODES, aggregations, values_for)
