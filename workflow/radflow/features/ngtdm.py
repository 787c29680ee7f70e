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

import numpy as np

from radflow.compiled import kernel
from radflow.features import zones
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings

CODES = ("QCDE", "65HE", "NQ30", "HDEZ", "1X9X")


@kernel()
def _difference_sums(padded: np.ndarray, offsets: np.ndarray, pad: int, per_slice: bool, n_levels: int):
    # Row-wise: for each image row, accumulate each neighbour offset's row into per-voxel sums, a loop numba
    # vectorises. Row views keep indices non-negative (numba adds a negative-index check to signed indices).
    nz, ny, nx = padded.shape
    flat = padded.ravel()
    n_out = nz - 2 * pad if per_slice else 1
    width = nx - 2 * pad
    s = np.zeros((n_out, n_levels + 1), dtype=np.float64)
    n = np.zeros((n_out, n_levels + 1), dtype=np.int64)
    total = np.empty(width, dtype=np.int32)
    count = np.empty(width, dtype=np.int32)
    for z in range(pad, nz - pad):
        out = z - pad if per_slice else 0
        for y in range(pad, ny - pad):
            # only the span of the row between its first and last voxel in the mask has centres
            row_start = (z * ny + y) * nx + pad
            first, last = zones.row_span(flat, row_start, width)
            if last < 0:
                continue
            start = row_start + first
            span = last - first + 1
            total[:span] = 0
            count[:span] = 0
            for k in range(offsets.size):
                row = flat[start + offsets[k]:start + offsets[k] + span]
                for x in range(span):
                    level = row[x]
                    total[x] += level
                    count[x] += np.int32(level != 0)
            centre = flat[start:start + span]
            for x in range(span):
                c = centre[x]
                if c != 0 and count[x] > 0:
                    s[out, c] += abs(c - total[x] / count[x])
                    n[out, c] += 1
    return s, n


def difference_sums(roi: RoiData, distance: int, planar: bool) -> tuple[np.ndarray, np.ndarray]:
    """NGTDM columns s_i and n_i, indexed [slice, grey level] (grey level 0 unused).

    ``planar``: in-plane neighbourhoods, one row per axial slice of the ROI array; otherwise volume neighbourhoods
    and a single row.
    """
    pad = int(distance)
    padded = zones.padded_roi_levels(roi, pad)
    offsets = zones.flat_offsets(zones.neighbour_offsets(distance, planar), padded.shape)
    s, n = _difference_sums(padded, offsets, pad, planar, int(roi.n_levels))
    return (zones.embed_slices(s, roi), zones.embed_slices(n, roi)) if planar else (s, n)


CONSTANT_NEIGHBOURHOODS = "sum_i s_i is 0: every voxel's neighbourhood mean equals its grey level"
REASONS = {
    "QCDE": CONSTANT_NEIGHBOURHOODS,
    "65HE": "a single grey level among the voxels with a neighbourhood: N_g,p (N_g,p - 1) = 0",
    "NQ30": "sum_ij |i p_i - j p_j| is 0",
    "HDEZ": "",
    "1X9X": CONSTANT_NEIGHBOURHOODS,
}
NO_NEIGHBOURS = "no voxel has a neighbour in the intensity mask"


@kernel()
def _features(s, n):
    """The five NGTDM features (``CODES`` order) of each row of (s_i, n_i), arrays (k, N_g + 1) indexed by grey
    level (index 0 unused): an array (k, 5), NaN where undefined (REASONS, NO_NEIGHBOURS). The double sums run
    over the grey levels with n_i > 0 in the row."""
    rows, width = n.shape
    out = np.full((rows, len(CODES)), np.nan)
    level = np.empty(width)
    p = np.empty(width)
    ps = np.empty(width)
    for r in range(rows):
        n_vc = 0.0
        for g in range(width):
            n_vc += n[r, g]
        if n_vc == 0.0:
            continue
        n_gp = 0
        sum_ps = sum_s = 0.0
        for g in range(width):
            if n[r, g] > 0:
                level[n_gp] = g
                p[n_gp] = n[r, g] / n_vc
                ps[n_gp] = p[n_gp] * s[r, g]
                sum_ps += ps[n_gp]
                sum_s += s[r, g]
                n_gp += 1
        contrast = busyness = complexity = strength = 0.0
        for a in range(n_gp):
            for b in range(n_gp):
                d = level[a] - level[b]
                contrast += p[a] * p[b] * d * d
                busyness += abs(level[a] * p[a] - level[b] * p[b])
                complexity += abs(d) * (ps[a] + ps[b]) / (p[a] + p[b])
                strength += (p[a] + p[b]) * d * d
        if sum_ps > 0.0:
            out[r, 0] = 1.0 / sum_ps
        if n_gp > 1:
            out[r, 1] = contrast / (n_gp * (n_gp - 1)) * sum_s / n_vc
        if busyness > 0.0:
            out[r, 2] = sum_ps / busyness
        out[r, 3] = complexity / n_vc
        if sum_s > 0.0:
            out[r, 4] = strength / sum_s
    return out


def ngtdm_features(s: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The five NGTDM features (columns in ``CODES`` order) of each row of a stack of (s_i, n_i) (shape
    (k, N_g + 1), indexed by grey level, index 0 unused). NaN where undefined (REASONS, NO_NEIGHBOURS)."""
    return _features(np.ascontiguousarray(s, dtype=np.float64), np.ascontiguousarray(n, dtype=np.int64))


def _single(s: np.ndarray, n: np.ndarray) -> zones.Values:
    if n.sum() == 0:
        return zones.undefined(CODES, NO_NEIGHBOURS)
    values = ngtdm_features(s[None], n[None])[0].tolist()
    return {code: (value, "" if np.isfinite(value) else REASONS[code]) for code, value in zip(CODES, values)}


def _slice_mean(s: np.ndarray, n: np.ndarray, roi: RoiData) -> zones.Values:
    slices = zones.slices_with_voxels(roi.int_mask)
    s, n = s[slices], n[slices]
    reasons = REASONS if n.any() else dict.fromkeys(CODES, NO_NEIGHBOURS)
    return zones.mean_over_slices(ngtdm_features(s, n), CODES, reasons)


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    aggregations = settings["texture"]["zone_aggregations"]
    distance = settings["texture"]["ngtdm_distance"]
    planar = None
    if {"2D", "2.5D"} & set(aggregations):
        planar = difference_sums(roi, distance, planar=True)

    def values_for(aggregation: str) -> zones.Values:
        if aggregation == "2D":
            return _slice_mean(*planar, roi)
        if aggregation == "2.5D":
            s, n = planar
            return _single(s.sum(axis=0), n.sum(axis=0))
        s, n = difference_sums(roi, distance, planar=False)
        return _single(s[0], n[0])

    return zones.feature_values(CODES, aggregations, values_for)
