"""Neighbouring grey level dependence matrix (NGLDM) features, IBSI family REK0 (IBSI 1, section 3.12).

For every voxel of the intensity mask, its neighbours are the voxels within Chebyshev distance ``ngldm_distance``
(default 1; in the axial slice for 2D/2.5D, in the volume for 3D) that are in the intensity mask; a neighbour is
dependent when its grey level differs from the centre's by at most the coarseness parameter alpha
(``ngldm_coarseness``, default 0). The dependence count is j = 1 + the number of dependent neighbours (the centre
counts itself, so j >= 1). s_ij is the number of voxels (neighbourhoods) of grey level i with dependence count j.
N_s = sum_ij s_ij (= N_v, every voxel of the intensity mask is a centre), p_ij = s_ij / N_s, s_i = sum_j s_ij,
s_j = sum_i s_ij.

Aggregation (``settings["texture"]["zone_aggregations"]``): 2D per-slice matrices, features averaged over slices;
2.5D slice matrices summed, then features; 3D one volume matrix.

| code | feature                                          | formula                                    |
|------|--------------------------------------------------|--------------------------------------------|
| SODN | low dependence emphasis                          | sum_j s_j / j^2 / N_s                      |
| IMOQ | high dependence emphasis                         | sum_j s_j j^2 / N_s                        |
| TL9H | low grey level count emphasis                    | sum_i s_i / i^2 / N_s                      |
| OAE7 | high grey level count emphasis                   | sum_i s_i i^2 / N_s                        |
| EQ3F | low dependence low grey level emphasis           | sum_ij s_ij / (i^2 j^2) / N_s              |
| JA6D | low dependence high grey level emphasis          | sum_ij s_ij i^2 / j^2 / N_s                |
| NBZI | high dependence low grey level emphasis          | sum_ij s_ij j^2 / i^2 / N_s                |
| 9QMG | high dependence high grey level emphasis         | sum_ij s_ij i^2 j^2 / N_s                  |
| FP8K | grey level non-uniformity                        | sum_i s_i^2 / N_s                          |
| 5SPA | normalised grey level non-uniformity             | sum_i s_i^2 / N_s^2                        |
| Z87G | dependence count non-uniformity                  | sum_j s_j^2 / N_s                          |
| OKJI | normalised dependence count non-uniformity       | sum_j s_j^2 / N_s^2                        |
| 6XV8 | dependence count percentage                      | N_s / N_v                                  |
| 1PFV | grey level variance                              | sum_ij (i - mu)^2 p_ij, mu = sum_ij i p_ij |
| DNX2 | dependence count variance                        | sum_ij (j - mu)^2 p_ij, mu = sum_ij j p_ij |
| FCBV | dependence count entropy                         | -sum_ij p_ij log2 p_ij                     |
| CAS9 | dependence count energy                          | sum_ij p_ij^2                              |

Every feature is defined for a non-empty ROI.
"""
from __future__ import annotations

import math

import numpy as np

from radflow.compiled import kernel
from radflow.features import zones
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings

# generic name -> IBSI code in ``zones.cell_features`` (column value j = dependence count).
CODE_OF = {
    "small": "SODN",
    "large": "IMOQ",
    "low": "TL9H",
    "high": "OAE7",
    "small_low": "EQ3F",
    "small_high": "JA6D",
    "large_low": "NBZI",
    "large_high": "9QMG",
    "glnu": "FP8K",
    "glnu_norm": "5SPA",
    "cnu": "Z87G",
    "cnu_norm": "OKJI",
    "percentage": "6XV8",
    "gl_variance": "1PFV",
    "c_variance": "DNX2",
    "entropy": "FCBV",
    "energy": "CAS9",
}
CODES = tuple(CODE_OF.values())


@kernel()
def _dependence_counts(padded: np.ndarray, offsets: np.ndarray, pad: int, per_slice: bool, n_levels: int, alpha: int):
    # Row-wise: for each image row, compare each neighbour offset's row with the centre row, a loop numba
    # vectorises. Row views keep indices non-negative (numba adds a negative-index check to signed indices).
    nz, ny, nx = padded.shape
    flat = padded.ravel()
    n_out = nz - 2 * pad if per_slice else 1
    width = nx - 2 * pad
    counts = np.zeros((n_out, n_levels + 1, offsets.size + 2), dtype=np.int64)
    dependent = np.empty(width, dtype=np.int32)
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
            centre = flat[start:start + span]
            dependent[:span] = 1
            for k in range(offsets.size):
                row = flat[start + offsets[k]:start + offsets[k] + span]
                for x in range(span):
                    level = row[x]
                    dependent[x] += np.int32((level != 0) & (abs(level - centre[x]) <= alpha))
            for x in range(span):
                c = centre[x]
                if c != 0:
                    counts[out, c, dependent[x]] += 1
    return counts


def dependence_counts(roi: RoiData, distance: int, alpha: float, planar: bool) -> np.ndarray:
    """NGLDM counts indexed [slice, grey level, dependence count j] (grey level 0 and j = 0 unused).

    ``planar``: in-plane neighbourhoods, one entry per axial slice of the ROI array; otherwise volume
    neighbourhoods and a single entry.
    """
    pad = int(distance)
    padded = zones.padded_roi_levels(roi, pad)
    offsets = zones.flat_offsets(zones.neighbour_offsets(distance, planar), padded.shape)
    # Grey levels are integers, so |difference| <= alpha is |difference| <= floor(alpha).
    counts = _dependence_counts(padded, offsets, pad, planar, int(roi.n_levels), np.int32(math.floor(alpha)))
    return zones.embed_slices(counts, roi) if planar else counts


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """Every NGLDM feature for each aggregation, the matrices of all aggregations stacked for one feature call
    (``zones.cell_features``; rows of a matrix: grey levels 1..N_g, columns: dependence counts 1..)."""
    aggregations = settings["texture"]["zone_aggregations"]
    distance = settings["texture"]["ngldm_distance"]
    alpha = settings["texture"]["ngldm_coarseness"]
    voxels = np.count_nonzero(roi.int_mask, axis=(1, 2))
    if not voxels.any():
        return zones.table_values(np.empty((0, len(zones.CELL_FEATURES))), dict.fromkeys(aggregations, (0, 0)),
                                  CODE_OF)
    planar = None
    if {"2D", "2.5D"} & set(aggregations):
        planar = dependence_counts(roi, distance, alpha, planar=True)
    stacks, n_voxels = [], []
    spans: dict[str, tuple[int, int]] = {}
    n_matrices = 0
    for aggregation in aggregations:
        if aggregation == "2D":
            slices = np.flatnonzero(voxels)
            stack, count = planar[slices], voxels[slices]
        else:
            count = voxels.sum(keepdims=True)
            stack = planar.sum(axis=0, keepdims=True) if aggregation == "2.5D" else \
                dependence_counts(roi, distance, alpha, planar=False)
        spans[aggregation] = (n_matrices, n_matrices + len(stack))
        n_matrices += len(stack)
        stacks.append(stack)
        n_voxels.append(count)
    # [matrix, grey level, j] without grey level 0 and j = 0; volume matrices have more dependence counts
    matrices = np.zeros((n_matrices, roi.n_levels, max(stack.shape[2] for stack in stacks) - 1))
    for stack, (start, stop) in zip(stacks, spans.values()):
        matrices[start:stop, :, :stack.shape[2] - 1] = stack[:, 1:, 1:]
    dependence = np.arange(1, matrices.shape[2] + 1, dtype=np.float64)
    table = zones.cell_features(zones.Cells.of_dense(matrices, dependence), np.concatenate(n_voxels))
    return zones.table_values(table, spans, CODE_OF)
