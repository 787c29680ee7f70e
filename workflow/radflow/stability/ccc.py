"""Lin's concordance correlation coefficient, vectorised over features.

For two measurements x, y of n subjects (Lin, Biometrics 1989; correction 2000), with moments taken with 1/n:

    rho_c = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2)

Confidence interval through the Fisher z transform ``z = atanh(rho_c)`` with (r the Pearson correlation,
``u = (mean_x - mean_y) / sqrt(s_x s_y)``)

    var(z) = 1/(n-2) * [ (1 - r^2) rho_c^2 / ((1 - rho_c^2) r^2)
                         + 2 rho_c^3 (1 - rho_c) u^2 / (r (1 - rho_c^2)^2)
                         - rho_c^4 u^4 / (2 r^2 (1 - rho_c^2)^2) ]

and bounds ``tanh(z -/+ z_q sqrt(var z))``, ``z_q`` the standard normal ``(1 + confidence)/2`` quantile.

For k > 2 measurements the overall CCC (Lin 1989; Barnhart, Haber & Song, Biometrics 2002) is reported,

    rho_c = 2 sum_{j<l} s_jl / ((k-1) sum_j s_j^2 + sum_{j<l} (mean_j - mean_l)^2),

which is Lin's coefficient for k = 2; it has no closed-form interval, so its bounds are NaN.
Identical measurements give 1 with the interval [1, 1]; no variation at all, or fewer than three subjects for the
interval, give NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from radflow.stability.anova import Measurements, measurements


@dataclass(frozen=True)
class CccResult:
    """Per-feature CCC, confidence bounds (NaN for k > 2) and number of complete subjects."""

    ccc: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: np.ndarray


def _moments(m: Measurements):
    """Per-feature means (F, k), variances (F, k), the variance of the subjects' sums (F,) and the covariance of
    the first two measurements (F,), all with 1/n."""
    n = np.where(m.n >= 2, m.n, np.nan).astype(np.float64)
    mo = m.moments
    variances = np.diagonal(mo.cross_products, axis1=1, axis2=2) / n[:, None]
    variance_of_sum = mo.cross_products.sum(axis=(1, 2)) / n
    return mo.measurement_means, variances, variance_of_sum, mo.cross_products[:, 0, 1] / n


def _fisher_z_interval(rho_c, r, u, n, z_q):
    rho2 = rho_c**2
    var_z = (
        (1 - r**2) * rho2 / ((1 - rho2) * r**2)
        + 2 * rho_c**3 * (1 - rho_c) * u**2 / (r * (1 - rho2) ** 2)
        - rho2**2 * u**4 / (2 * r**2 * (1 - rho2) ** 2)
    ) / (n - 2)
    half_width = z_q * np.sqrt(np.where(var_z >= 0, var_z, np.nan))
    z = np.arctanh(rho_c)
    return np.tanh(z - half_width), np.tanh(z + half_width)


def ccc_from(m: Measurements, confidence: float = 0.95) -> CccResult:
    """CCC of prepared measurements (see the module docstring)."""
    k = m.k
    z_q = stats.norm.ppf((1 + confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        means, variances, variance_of_sum, covariance = _moments(m)
        sum_variances = variances.sum(axis=1)
        mean_spread = k * ((means - means.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)  # sum_{j<l} (m_j - m_l)^2
        rho_c = (variance_of_sum - sum_variances) / ((k - 1) * sum_variances + mean_spread)
        low = high = np.full_like(rho_c, np.nan)
        if k == 2:
            n = m.n.astype(np.float64)
            product_sd = np.sqrt(variances[:, 0] * variances[:, 1])
            r = covariance / product_sd
            u = (means[:, 0] - means[:, 1]) / np.sqrt(product_sd)
            low, high = _fisher_z_interval(rho_c, r, u, np.where(n > 2, n, np.nan), z_q)
    perfect = m.identical & (sum_variances > 0)
    rho_c = np.where(perfect, 1.0, rho_c)
    if k == 2:
        low = np.where(perfect, 1.0, low)
        high = np.where(perfect, 1.0, high)
    return CccResult(rho_c, low, high, m.n)


def ccc(y, confidence: float = 0.95) -> CccResult:
    """Lin's CCC of every feature in ``y`` (F, n, k); overall CCC without interval when k > 2."""
    return ccc_from(measurements(y), confidence)
