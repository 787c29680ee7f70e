"""Agreement in the feature's own units: within-subject coefficient of variation and Bland-Altman limits.

* Within-subject CV (QIBA; Raunig et al., Stat Methods Med Res 2015): ``wCV = wSD / |mean|`` with
  ``wSD = sqrt(MSW)``, the root mean within-subject variance, and the grand mean of the complete cases. NaN where the
  grand mean is 0 (CV is meaningless for features that straddle zero; read it for positive-valued features).
* Bland-Altman (Bland & Altman, Lancet 1986): differences ``d = y_j - y_1`` of each later measurement to the first
  (retest - test; observer j - observer 1; perturbation j - perturbation 1), bias = mean(d), limits of agreement
  ``bias -/+ z_q SD(d)`` (SD with n - 1, ``z_q`` the normal ``(1 + confidence)/2`` quantile, 1.95996 for 95 %).
  With k > 2 the k - 1 differences of every subject are pooled: a descriptive summary, as those differences are
  correlated within a subject.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from radflow.stability.anova import MeanSquares, Measurements, measurements


@dataclass(frozen=True)
class BlandAltman:
    """Per-feature bias and limits of agreement (arrays of shape (F,))."""

    bias: np.ndarray
    loa_low: np.ndarray
    loa_high: np.ndarray


def within_subject_cv(ms: MeanSquares) -> np.ndarray:
    """wCV = sqrt(MSW) / |grand mean| per feature; NaN where the grand mean is 0 or undefined."""
    mean = np.abs(ms.grand_mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mean > 0, np.sqrt(ms.within_subjects) / mean, np.nan)


def bland_altman(y, confidence: float = 0.95) -> BlandAltman:
    """Bland-Altman bias and limits of agreement of every feature in ``y`` (F, n, k) or prepared measurements."""
    m: Measurements = measurements(y)
    z_q = stats.norm.ppf((1 + confidence) / 2)
    used = m.used[..., None]
    differences = (m.values[:, :, 1:] - m.values[:, :, :1]) * used
    count = (m.n * (m.k - 1)).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bias = np.where(m.n >= 2, differences.sum(axis=(1, 2)) / count, np.nan)
        centred = ((differences - bias[:, None, None]) * used).reshape(len(bias), -1)
        sd = np.sqrt(np.einsum("fi,fi->f", centred, centred) / (count - 1))
    return BlandAltman(bias, bias - z_q * sd, bias + z_q * sd)
