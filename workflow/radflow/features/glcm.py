"""Grey level co-occurrence matrix features (IBSI family LFYI, 25 features).

A GLCM counts, for one direction at Chebyshev distance delta (``settings["texture"]["glcm_distance"]``), how often
grey level i has grey level j as neighbour; ``glcm_symmetric`` adds the opposite direction (M + M^T). Both voxels must
lie in the intensity mask. Notation (IBSI 3.6), for a matrix normalised to probabilities p_ij:

    p_i. = sum_j p_ij, p_.j = sum_i p_ij                 marginals, means mu_i. and mu_.j, deviations sigma_i., sigma_.j
    p_{x-y,k} = sum_{|i-j|=k} p_ij, p_{x+y,k} = sum_{i+j=k} p_ij    diagonal and cross-diagonal marginals
    N_g                                                  number of grey levels of the discretisation (``roi.n_levels``)
    HXY = -sum_ij p_ij log2 p_ij, HX = -sum_i p_i. log2 p_i., HY = -sum_j p_.j log2 p_.j

i and j are grey level values (1..N_g). Matrices are computed on the grey levels present in the ROI (see
``texture_matrices.compact_grey_levels``); absent levels only add zero rows and columns.

| code | feature                                 | formula                                                           |
|------|-----------------------------------------|-------------------------------------------------------------------|
| GYBY | joint maximum                           | max_ij p_ij                                                       |
| 60VM | joint average                           | mu = sum_ij i p_ij (= mu_i.)                                      |
| UR99 | joint variance                          | sum_ij (i - mu)^2 p_ij                                            |
| TU9B | joint entropy                           | HXY                                                               |
| TF7R | difference average                      | mu_{x-y} = sum_k k p_{x-y,k}                                      |
| D3YU | difference variance                     | sum_k (k - mu_{x-y})^2 p_{x-y,k}                                  |
| NTRS | difference entropy                      | -sum_k p_{x-y,k} log2 p_{x-y,k}                                   |
| ZGXS | sum average                             | mu_{x+y} = sum_k k p_{x+y,k}                                      |
| OEEB | sum variance                            | sum_k (k - mu_{x+y})^2 p_{x+y,k}                                  |
| P6QZ | sum entropy                             | -sum_k p_{x+y,k} log2 p_{x+y,k}                                   |
| 8ZQL | angular second moment (energy)          | sum_ij p_ij^2                                                     |
| ACUI | contrast                                | sum_ij (i - j)^2 p_ij = sum_k k^2 p_{x-y,k}                       |
| 8S9J | dissimilarity                           | sum_ij abs(i - j) p_ij = sum_k k p_{x-y,k}                        |
| IB1Z | inverse difference                      | sum_k p_{x-y,k} / (1 + k)                                         |
| NDRX | normalised inverse difference           | sum_k p_{x-y,k} / (1 + k / N_g)                                   |
| WF0Z | inverse difference moment               | sum_k p_{x-y,k} / (1 + k^2)                                       |
| 1QCO | normalised inverse difference moment    | sum_k p_{x-y,k} / (1 + k^2 / N_g^2)                               |
| E8JP | inverse variance                        | 2 sum_{i<j} p_ij / (i - j)^2 = sum_{k>=1} p_{x-y,k} / k^2         |
| NI2N | correlation                             | (sum_ij i j p_ij - mu_i. mu_.j) / (sigma_i. sigma_.j)             |
| QWB0 | autocorrelation                         | sum_ij i j p_ij                                                   |
| DG8W | cluster tendency                        | sum_ij (i + j - mu_i. - mu_.j)^2 p_ij                             |
| 7NFM | cluster shade                           | sum_ij (i + j - mu_i. - mu_.j)^3 p_ij                             |
| AE86 | cluster prominence                      | sum_ij (i + j - mu_i. - mu_.j)^4 p_ij                             |
| R8DG | information correlation 1               | (HXY - HXY1) / HX, HXY1 = -sum_ij p_ij log2(p_i. p_.j) = HX + HY  |
| JN9H | information correlation 2               | sqrt(1 - exp(-2 (HXY2 - HXY))), HXY2 = HX + HY                    |

Correlation and information correlation 1 are undefined (0/0) for a matrix with a single grey level. Correlation is
computed in its centred form sum_ij (i - mu_i.) (j - mu_.j) p_ij / (sigma_i. sigma_.j), sigma^2 as sum (i - mu)^2 p_i.:
the raw moments cancel (mu^2 ~ 2000, variance ~ 1.5 for CT at 25 HU bins), which cost up to 1e-12 in relative
accuracy. Rounding can make HXY2 - HXY a hair below 0, hence information correlation 2 clips 1 - exp(...) at 0.
"""
from __future__ import annotations

import math

import numpy as np

from radflow.compiled import kernel
from radflow.features import texture_matrices as tm
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings

# The 25 features in the order ``_add_features`` writes them.
FEATURES = ("GYBY", "60VM", "UR99", "TU9B", "TF7R", "D3YU", "NTRS", "ZGXS", "OEEB", "P6QZ", "8ZQL", "ACUI", "8S9J",
            "IB1Z", "NDRX", "WF0Z", "1QCO", "E8JP", "NI2N", "QWB0", "DG8W", "7NFM", "AE86", "R8DG", "JN9H")

_SINGLE_LEVEL = "every non-empty matrix has a single grey level, where this feature is undefined (0/0)"
UNDEFINED_REASONS = {code: "undefined for every non-empty matrix" for code in FEATURES}
UNDEFINED_REASONS.update({"NI2N": _SINGLE_LEVEL, "R8DG": _SINGLE_LEVEL})


@kernel()
def _add_features(counts, grey, n_levels, symmetric, totals, defined):
    """Adds the features (``FEATURES`` order) of every non-empty one-sided count matrix of ``counts`` (n, G, G,
    float64) to ``totals`` where they are defined (finite), counting them in ``defined``; returns the number of
    non-empty matrices. ``grey`` (G,) are the grey level values of the rows, ``symmetric`` adds the transpose."""
    n_matrices, n_grey = counts.shape[0], counts.shape[1]
    top = int(grey[n_grey - 1]) if n_grey else 0
    p = np.empty((n_grey, n_grey))
    p_i = np.empty(n_grey)
    p_j = np.empty(n_grey)
    p_diff = np.empty(top + 1)  # p_{x-y,k}, k = 0..max |i - j|
    p_sum = np.empty(2 * top + 1)  # p_{x+y,k}, k = 0..2 max i
    values = np.empty(len(FEATURES))
    found = 0
    for m in range(n_matrices):
        c = counts[m]
        total = 0.0
        for a in range(n_grey):
            for b in range(n_grey):
                v = c[a, b] + c[b, a] if symmetric else c[a, b]
                p[a, b] = v
                total += v
        if total == 0.0:
            continue
        found += 1
        for a in range(n_grey):
            p_i[a] = p_j[a] = 0.0
        for k in range(2 * top + 1):
            p_sum[k] = 0.0
            if k <= top:
                p_diff[k] = 0.0
        joint_maximum = 0.0
        energy = 0.0
        hxy = 0.0
        sum_ij_p = 0.0
        for a in range(n_grey):
            for b in range(n_grey):
                v = p[a, b] / total
                p[a, b] = v
                p_i[a] += v
                p_j[b] += v
                p_diff[int(abs(grey[a] - grey[b]))] += v
                p_sum[int(grey[a] + grey[b])] += v
                joint_maximum = max(joint_maximum, v)
                energy += v * v
                sum_ij_p += grey[a] * grey[b] * v
                if v > 0.0:
                    hxy -= v * math.log2(v)
        mu_i = mu_j = hx = hy = 0.0
        for a in range(n_grey):
            mu_i += p_i[a] * grey[a]
            mu_j += p_j[a] * grey[a]
            if p_i[a] > 0.0:
                hx -= p_i[a] * math.log2(p_i[a])
            if p_j[a] > 0.0:
                hy -= p_j[a] * math.log2(p_j[a])
        joint_variance = variance_j = covariance = 0.0
        for a in range(n_grey):
            joint_variance += (grey[a] - mu_i) * (grey[a] - mu_i) * p_i[a]
            variance_j += (grey[a] - mu_j) * (grey[a] - mu_j) * p_j[a]
            for b in range(n_grey):
                covariance += (grey[a] - mu_i) * (grey[b] - mu_j) * p[a, b]
        mu_diff = contrast = difference_entropy = 0.0
        inverse_difference = normalised_id = inverse_difference_moment = normalised_idm = inverse_variance = 0.0
        for k in range(top + 1):
            q = p_diff[k]
            mu_diff += k * q
            contrast += k * k * q
            inverse_difference += q / (1.0 + k)
            normalised_id += q / (1.0 + k / n_levels)
            inverse_difference_moment += q / (1.0 + k * k)
            normalised_idm += q / (1.0 + (k / n_levels) * (k / n_levels))
            if k > 0:
                inverse_variance += q / (k * k)
            if q > 0.0:
                difference_entropy -= q * math.log2(q)
        difference_variance = 0.0
        for k in range(top + 1):
            difference_variance += (k - mu_diff) * (k - mu_diff) * p_diff[k]
        mu_sum = sum_entropy = 0.0
        for k in range(2 * top + 1):
            q = p_sum[k]
            mu_sum += k * q
            if q > 0.0:
                sum_entropy -= q * math.log2(q)
        sum_variance = cluster_tendency = cluster_shade = cluster_prominence = 0.0
        for k in range(2 * top + 1):
            q = p_sum[k]
            sum_variance += (k - mu_sum) * (k - mu_sum) * q
            d = k - (mu_i + mu_j)
            cluster_tendency += d * d * q
            cluster_shade += d * d * d * q
            cluster_prominence += d * d * d * d * q
        sigma = math.sqrt(joint_variance) * math.sqrt(variance_j)
        values[0] = joint_maximum
        values[1] = mu_i
        values[2] = joint_variance
        values[3] = hxy
        values[4] = mu_diff
        values[5] = difference_variance
        values[6] = difference_entropy
        values[7] = mu_sum
        values[8] = sum_variance
        values[9] = sum_entropy
        values[10] = energy
        values[11] = contrast
        values[12] = mu_diff
        values[13] = inverse_difference
        values[14] = normalised_id
        values[15] = inverse_difference_moment
        values[16] = normalised_idm
        values[17] = inverse_variance
        values[18] = covariance / sigma if sigma > 0.0 else np.nan
        values[19] = sum_ij_p
        values[20] = cluster_tendency
        values[21] = cluster_shade
        values[22] = cluster_prominence
        values[23] = (hxy - (hx + hy)) / hx if hx > 0.0 else np.nan
        values[24] = math.sqrt(max(1.0 - math.exp(-2.0 * (hx + hy - hxy)), 0.0))
        tm.add_finite(values, totals, defined)
    return found


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """Every GLCM feature for every aggregation in ``settings["texture"]["matrix_aggregations"]``."""
    texture = settings["texture"]
    distance = int(texture["glcm_distance"])
    if distance < 1:
        raise ValueError(f"texture.glcm_distance must be >= 1, got {distance}")
    levels, grey = tm.texture_levels(roi)
    n_grey = grey.size
    n_levels, symmetric = int(roi.n_levels), bool(texture["glcm_symmetric"])

    def build(offsets: np.ndarray, z0: int, z1: int, per_slice: bool) -> np.ndarray:
        return tm.cooccurrence_counts(levels, n_grey, offsets * distance, z0, z1, per_slice)

    def add_features(counts: np.ndarray, totals: np.ndarray, defined: np.ndarray) -> int:
        return _add_features(counts, grey, n_levels, symmetric, totals, defined)

    return tm.aggregate(
        texture["matrix_aggregations"], add_features, UNDEFINED_REASONS, (n_grey, n_grey), build, levels.shape[0]
    )
