"""Grey level co-occurrence matrix features (IBSI family LFYI, 25 features).

A GLCM counts, for one direction at Chebyshev distance delta (``settings["texture"]["glcm_distance"]``), how often
grey level i has grey level j as neighbour; ``glcm_symmetric`` adds the opposite direction (M + M^T). Both voxels must
lie in the intensity mask. Notation (IBSI 3.6), for a matrix normalised to probabilities p_ij:

    p_i. = sum_j p_ij, p_.j = sum_i p_ij                 marginals, means mu_i. and mu_.j, deviations sigma_i., sigma_.j
    p_{x-y,k} = sum_{|i-j|=k} p_ij, p_{x+y,k} = sum_{i+j=k} p_ij    diagonal and cross-diagonal marginals
    N_g                                                  number of grey levels of the discretisation (``roi.n_levels``)

i and j are grey level values (1..N_g). Matrices are computed on the grey levels present in the ROI (see
``texture_matrices.compact_grey_levels``); absent levels only add zero rows and columns.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from radflow.features import texture_matrices as tm
from radflow.features.base import FeatureValue, RoiData
from radflow.settings import Settings


@dataclass(frozen=True)
class _Grouping:
    """Groups the cells of a G x G matrix by a key (|i - j| or i + j) to sum them per distinct key value."""

    values: np.ndarray
    order: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, key: np.ndarray) -> "_Grouping":
        flat = key.ravel()
        order = np.argsort(flat, kind="stable")
        values, starts = np.unique(flat[order], return_index=True)
        return cls(values, order, starts)

    def marginal(self, p: np.ndarray) -> np.ndarray:
        """(n, G, G) -> (n, distinct keys): the summed probabilities per key value."""
        return np.add.reduceat(p.reshape(len(p), -1)[:, self.order], self.starts, axis=1)


@dataclass(frozen=True)
class GreyLevelPairs:
    """The grey level values of the matrix rows and their |i - j| and i + j groupings (built once per ROI)."""

    grey: np.ndarray
    diff: _Grouping
    sum: _Grouping

    @classmethod
    def of(cls, grey: np.ndarray) -> "GreyLevelPairs":
        i, j = grey[:, None], grey[None, :]
        return cls(grey, _Grouping.of(np.abs(i - j)), _Grouping.of(i + j))


class CooccurrenceStats:
    """A stack of normalised GLCMs and the marginals and moments the features share."""

    def __init__(self, p: np.ndarray, pairs: GreyLevelPairs, n_levels: int):
        self.p = p  # (n, G, G), each matrix sums to 1
        self.grey = pairs.grey  # (G,) grey level values
        self.n_levels = n_levels
        self._diff = pairs.diff
        self._sum = pairs.sum

    @cached_property
    def p_i(self) -> np.ndarray:
        return self.p.sum(axis=2)

    @cached_property
    def p_j(self) -> np.ndarray:
        return self.p.sum(axis=1)

    @cached_property
    def mu_i(self) -> np.ndarray:
        return self.p_i @ self.grey

    @cached_property
    def mu_j(self) -> np.ndarray:
        return self.p_j @ self.grey

    @cached_property
    def sigma_i(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.p_i @ self.grey**2 - self.mu_i**2, 0.0))

    @cached_property
    def sigma_j(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.p_j @ self.grey**2 - self.mu_j**2, 0.0))

    @property
    def k_diff(self) -> np.ndarray:
        return self._diff.values

    @cached_property
    def p_diff(self) -> np.ndarray:
        return self._diff.marginal(self.p)

    @cached_property
    def mu_diff(self) -> np.ndarray:
        """mu_{x-y} = sum_k k p_{x-y,k} (difference average and dissimilarity, centre of the difference variance)."""
        return self.p_diff @ self.k_diff

    @property
    def k_sum(self) -> np.ndarray:
        return self._sum.values

    @cached_property
    def p_sum(self) -> np.ndarray:
        return self._sum.marginal(self.p)

    @cached_property
    def mu_sum(self) -> np.ndarray:
        """mu_{x+y} = sum_k k p_{x+y,k} (sum average, centre of the sum variance)."""
        return self.p_sum @ self.k_sum

    @cached_property
    def sum_ij_p(self) -> np.ndarray:
        """sum_ij i j p_ij."""
        return (self.p @ self.grey) @ self.grey

    @cached_property
    def cluster_deviation(self) -> np.ndarray:
        """(n, K) deviations k - mu_i. - mu_.j of every distinct i + j = k."""
        return self.k_sum[None, :] - (self.mu_i + self.mu_j)[:, None]

    @cached_property
    def hxy(self) -> np.ndarray:
        return -tm.xlog2x(self.p).sum(axis=(1, 2))

    @cached_property
    def hx(self) -> np.ndarray:
        return -tm.xlog2x(self.p_i).sum(axis=1)

    @cached_property
    def hy(self) -> np.ndarray:
        return -tm.xlog2x(self.p_j).sum(axis=1)


def _centred_variance(values: np.ndarray, p: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """sum_k (k - mu)^2 p_k per row of p (n, K), values (K,), mu (n,)."""
    deviation = values[None, :] - mu[:, None]
    return (deviation * deviation * p).sum(axis=1)


def joint_maximum(s: CooccurrenceStats) -> np.ndarray:
    """Joint maximum (GYBY): max_ij p_ij."""
    return s.p.max(axis=(1, 2))


def joint_average(s: CooccurrenceStats) -> np.ndarray:
    """Joint average (60VM): mu = sum_ij i p_ij."""
    return s.mu_i


def joint_variance(s: CooccurrenceStats) -> np.ndarray:
    """Joint variance (UR99): sum_ij (i - mu)^2 p_ij."""
    return _centred_variance(s.grey, s.p_i, s.mu_i)


def joint_entropy(s: CooccurrenceStats) -> np.ndarray:
    """Joint entropy (TU9B): -sum_ij p_ij log2 p_ij."""
    return s.hxy


def difference_average(s: CooccurrenceStats) -> np.ndarray:
    """Difference average (TF7R): mu_{x-y} = sum_k k p_{x-y,k}."""
    return s.mu_diff


def difference_variance(s: CooccurrenceStats) -> np.ndarray:
    """Difference variance (D3YU): sum_k (k - mu_{x-y})^2 p_{x-y,k}."""
    return _centred_variance(s.k_diff, s.p_diff, s.mu_diff)


def difference_entropy(s: CooccurrenceStats) -> np.ndarray:
    """Difference entropy (NTRS): -sum_k p_{x-y,k} log2 p_{x-y,k}."""
    return -tm.xlog2x(s.p_diff).sum(axis=1)


def sum_average(s: CooccurrenceStats) -> np.ndarray:
    """Sum average (ZGXS): mu_{x+y} = sum_k k p_{x+y,k}."""
    return s.mu_sum


def sum_variance(s: CooccurrenceStats) -> np.ndarray:
    """Sum variance (OEEB): sum_k (k - mu_{x+y})^2 p_{x+y,k}."""
    return _centred_variance(s.k_sum, s.p_sum, s.mu_sum)


def sum_entropy(s: CooccurrenceStats) -> np.ndarray:
    """Sum entropy (P6QZ): -sum_k p_{x+y,k} log2 p_{x+y,k}."""
    return -tm.xlog2x(s.p_sum).sum(axis=1)


def angular_second_moment(s: CooccurrenceStats) -> np.ndarray:
    """Angular second moment, energy (8ZQL): sum_ij p_ij^2."""
    return np.einsum("nij,nij->n", s.p, s.p)


def contrast(s: CooccurrenceStats) -> np.ndarray:
    """Contrast (ACUI): sum_ij (i - j)^2 p_ij = sum_k k^2 p_{x-y,k}."""
    return s.p_diff @ s.k_diff**2


def dissimilarity(s: CooccurrenceStats) -> np.ndarray:
    """Dissimilarity (8S9J): sum_ij |i - j| p_ij = sum_k k p_{x-y,k}."""
    return s.mu_diff


def inverse_difference(s: CooccurrenceStats) -> np.ndarray:
    """Inverse difference (IB1Z): sum_k p_{x-y,k} / (1 + k)."""
    return s.p_diff @ (1.0 / (1.0 + s.k_diff))


def normalised_inverse_difference(s: CooccurrenceStats) -> np.ndarray:
    """Normalised inverse difference (NDRX): sum_k p_{x-y,k} / (1 + k / N_g)."""
    return s.p_diff @ (1.0 / (1.0 + s.k_diff / s.n_levels))


def inverse_difference_moment(s: CooccurrenceStats) -> np.ndarray:
    """Inverse difference moment (WF0Z): sum_k p_{x-y,k} / (1 + k^2)."""
    return s.p_diff @ (1.0 / (1.0 + s.k_diff**2))


def normalised_inverse_difference_moment(s: CooccurrenceStats) -> np.ndarray:
    """Normalised inverse difference moment (1QCO): sum_k p_{x-y,k} / (1 + k^2 / N_g^2)."""
    return s.p_diff @ (1.0 / (1.0 + (s.k_diff / s.n_levels) ** 2))


def inverse_variance(s: CooccurrenceStats) -> np.ndarray:
    """Inverse variance (E8JP): 2 sum_{i<j} p_ij / (i - j)^2 = sum_{k>=1} p_{x-y,k} / k^2."""
    k = s.k_diff
    weight = np.divide(1.0, k**2, out=np.zeros_like(k), where=k > 0)
    return s.p_diff @ weight


def correlation(s: CooccurrenceStats) -> np.ndarray:
    """Correlation (NI2N): (sum_ij i j p_ij - mu_i. mu_.j) / (sigma_i. sigma_.j); undefined for one grey level."""
    denominator = s.sigma_i * s.sigma_j
    numerator = s.sum_ij_p - s.mu_i * s.mu_j
    return np.divide(numerator, denominator, out=np.full_like(numerator, np.nan), where=denominator > 0)


def autocorrelation(s: CooccurrenceStats) -> np.ndarray:
    """Autocorrelation (QWB0): sum_ij i j p_ij."""
    return s.sum_ij_p


def cluster_tendency(s: CooccurrenceStats) -> np.ndarray:
    """Cluster tendency (DG8W): sum_ij (i + j - mu_i. - mu_.j)^2 p_ij = sum_k (k - mu_i. - mu_.j)^2 p_{x+y,k}."""
    d = s.cluster_deviation
    return (d * d * s.p_sum).sum(axis=1)


def cluster_shade(s: CooccurrenceStats) -> np.ndarray:
    """Cluster shade (7NFM): sum_ij (i + j - mu_i. - mu_.j)^3 p_ij."""
    d = s.cluster_deviation
    return (d * d * d * s.p_sum).sum(axis=1)


def cluster_prominence(s: CooccurrenceStats) -> np.ndarray:
    """Cluster prominence (AE86): sum_ij (i + j - mu_i. - mu_.j)^4 p_ij."""
    d2 = s.cluster_deviation**2
    return (d2 * d2 * s.p_sum).sum(axis=1)


def information_correlation_1(s: CooccurrenceStats) -> np.ndarray:
    """Information correlation 1 (R8DG): (HXY - HXY1) / HX.

    HXY is the joint entropy, HX = -sum_i p_i. log2 p_i. and HXY1 = -sum_ij p_ij log2(p_i. p_.j), which equals
    HX + HY. Undefined for a single grey level (HX = 0).
    """
    numerator = s.hxy - (s.hx + s.hy)
    return np.divide(numerator, s.hx, out=np.full_like(numerator, np.nan), where=s.hx > 0)


def information_correlation_2(s: CooccurrenceStats) -> np.ndarray:
    """Information correlation 2 (JN9H): sqrt(1 - exp(-2 (HXY2 - HXY))).

    HXY2 = -sum_ij p_i. p_.j log2(p_i. p_.j) = HX + HY; rounding can make HXY2 - HXY a hair below 0, hence the clip.
    """
    return np.sqrt(np.clip(1.0 - np.exp(-2.0 * (s.hx + s.hy - s.hxy)), 0.0, None))


FEATURES = {
    "GYBY": joint_maximum,
    "60VM": joint_average,
    "UR99": joint_variance,
    "TU9B": joint_entropy,
    "TF7R": difference_average,
    "D3YU": difference_variance,
    "NTRS": difference_entropy,
    "ZGXS": sum_average,
    "OEEB": sum_variance,
    "P6QZ": sum_entropy,
    "8ZQL": angular_second_moment,
    "ACUI": contrast,
    "8S9J": dissimilarity,
    "IB1Z": inverse_difference,
    "NDRX": normalised_inverse_difference,
    "WF0Z": inverse_difference_moment,
    "1QCO": normalised_inverse_difference_moment,
    "E8JP": inverse_variance,
    "NI2N": correlation,
    "QWB0": autocorrelation,
    "DG8W": cluster_tendency,
    "7NFM": cluster_shade,
    "AE86": cluster_prominence,
    "R8DG": information_correlation_1,
    "JN9H": information_correlation_2,
}

_SINGLE_LEVEL = "every non-empty matrix has a single grey level, where this feature is undefined (0/0)"
UNDEFINED_REASONS = {code: "undefined for every non-empty matrix" for code in FEATURES}
UNDEFINED_REASONS.update({"NI2N": _SINGLE_LEVEL, "R8DG": _SINGLE_LEVEL})


def probabilities(counts: np.ndarray, symmetric: bool) -> np.ndarray:
    """Normalised GLCMs p_ij from a stack of non-empty one-sided counts (n, G, G); symmetric adds the transpose."""
    p = counts + counts.transpose(0, 2, 1) if symmetric else counts.copy()
    p /= p.sum(axis=(1, 2))[:, None, None]
    return p


def features_of(counts: np.ndarray, pairs: GreyLevelPairs, n_levels: int, symmetric: bool) -> dict[str, np.ndarray]:
    """All GLCM features of a stack of non-empty one-sided co-occurrence count matrices (n, G, G)."""
    stats = CooccurrenceStats(probabilities(counts, symmetric), pairs, n_levels)
    return {code: feature(stats) for code, feature in FEATURES.items()}


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """Every GLCM feature for every aggregation in ``settings["texture"]["matrix_aggregations"]``."""
    texture = settings["texture"]
    distance = int(texture["glcm_distance"])
    if distance < 1:
        raise ValueError(f"texture.glcm_distance must be >= 1, got {distance}")
    levels, grey = tm.texture_levels(roi)
    n_grey = grey.size
    pairs = GreyLevelPairs.of(grey)

    def build(offsets: np.ndarray, z0: int, z1: int, per_slice: bool) -> np.ndarray:
        return tm.cooccurrence_counts(levels, n_grey, offsets * distance, z0, z1, per_slice)

    def features(counts: np.ndarray) -> dict[str, np.ndarray]:
        return features_of(counts, pairs, roi.n_levels, bool(texture["glcm_symmetric"]))

    return tm.aggregate(
        texture["matrix_aggregations"], features, UNDEFINED_REASONS, (n_grey, n_grey), build, levels.shape[0]
    )
