"""Intraclass correlation coefficients with confidence intervals, vectorised over features.

Three single-measurement forms (Shrout & Fleiss 1979; McGraw & Wong 1996), from the mean squares of
:mod:`radflow.stability.anova` (MSR between subjects, MSC between measurements, MSE residual, MSW within subjects;
``n`` subjects, ``k`` measurements each):

==========  =====================================  ===============================================================
form        model                                  ICC
==========  =====================================  ===============================================================
ICC(1,1)    one-way random, absolute agreement     (MSR - MSW) / (MSR + (k-1) MSW)
ICC(2,1)    two-way random, absolute agreement     (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n)
ICC(3,1)    two-way mixed, consistency             (MSR - MSE) / (MSR + (k-1) MSE)
==========  =====================================  ===============================================================

Confidence intervals at level ``1 - alpha`` use ``q = 1 - alpha/2`` quantiles of the F distribution:

* ICC(1,1) and ICC(3,1) (exact F): with ``F0 = MSR/MSW`` on (n-1, n(k-1)) degrees of freedom, resp.
  ``F0 = MSR/MSE`` on (n-1, (n-1)(k-1)): ``FL = F0 / F_q(df1, df2)``, ``FU = F0 * F_q(df2, df1)``,
  bounds ``(FL - 1) / (FL + k - 1)`` and ``(FU - 1) / (FU + k - 1)``.
* ICC(2,1) (Satterthwaite approximation, McGraw & Wong 1996 case 2A): with ``a = k rho / (n (1 - rho))``,
  ``b = 1 + k rho (n-1) / (n (1 - rho))`` and ``v = (a MSC + b MSE)^2 / ((a MSC)^2/(k-1) + (b MSE)^2/((n-1)(k-1)))``,
  lower ``n (MSR - Fs MSE) / (Fs (k MSC + (kn - k - n) MSE) + n MSR)`` with ``Fs = F_q(n-1, v)``, upper
  ``n (Fu MSR - MSE) / (k MSC + (kn - k - n) MSE + n Fu MSR)`` with ``Fu = F_q(v, n-1)``.

Degenerate features: fewer than two complete subjects, or no variation at all (constant feature), give NaN.
Exactly equal measurements within every subject (and some variation between subjects) give ICC 1 with the
interval [1, 1], the limit of the formulas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from radflow.stability.anova import MeanSquares, Measurements, mean_squares, measurements

ICC_FORMS = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)")
DEFAULT_FORM = "ICC(2,1)"


@dataclass(frozen=True)
class IccResult:
    """Per-feature ICC estimate, confidence bounds and number of complete subjects (arrays of shape (F,))."""

    icc: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: np.ndarray


def _quantile(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return (1 + confidence) / 2


def _f_ratio_bounds(f0, df1, df2, k: int, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Shrout-Fleiss bounds from the observed F ratio (ICC(1,1), ICC(3,1)); an infinite ratio bounds at 1."""
    f_low = f0 / stats.f.ppf(q, df1, df2)
    f_high = f0 * stats.f.ppf(q, df2, df1)
    low = np.where(np.isinf(f0), 1.0, (f_low - 1) / (f_low + k - 1))
    high = np.where(np.isinf(f0), 1.0, (f_high - 1) / (f_high + k - 1))
    return low, high


def icc_1_1(ms: MeanSquares, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ICC(1,1), one-way random effects, absolute agreement: (MSR - MSW) / (MSR + (k-1) MSW)."""
    k, n = ms.k, ms.n
    msr, msw = ms.between_subjects, ms.within_subjects
    icc = (msr - msw) / (msr + (k - 1) * msw)
    low, high = _f_ratio_bounds(msr / msw, n - 1, n * (k - 1), k, q)
    return icc, low, high


def icc_3_1(ms: MeanSquares, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ICC(3,1), two-way mixed effects, consistency: (MSR - MSE) / (MSR + (k-1) MSE)."""
    k, n = ms.k, ms.n
    msr, mse = ms.between_subjects, ms.residual
    icc = (msr - mse) / (msr + (k - 1) * mse)
    low, high = _f_ratio_bounds(msr / mse, n - 1, (n - 1) * (k - 1), k, q)
    return icc, low, high


def icc_2_1(ms: MeanSquares, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ICC(2,1), two-way random effects, absolute agreement: (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n)."""
    k, n = ms.k, ms.n.astype(np.float64)
    msr, msc, mse = ms.between_subjects, ms.between_measurements, ms.residual
    icc = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    # Satterthwaite degrees of freedom of the denominator's linear combination of MSC and MSE.
    a = k * icc / (n * (1 - icc))
    b = 1 + k * icc * (n - 1) / (n * (1 - icc))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    f_s = stats.f.ppf(q, n - 1, v)
    f_u = stats.f.ppf(q, v, n - 1)
    spread = k * msc + (k * n - k - n) * mse
    low = n * (msr - f_s * mse) / (f_s * spread + n * msr)
    high = n * (f_u * msr - mse) / (spread + n * f_u * msr)
    return icc, low, high


_FORMS = {"ICC(1,1)": icc_1_1, "ICC(2,1)": icc_2_1, "ICC(3,1)": icc_3_1}


def icc_from(m: Measurements, ms: MeanSquares, form: str = DEFAULT_FORM, confidence: float = 0.95) -> IccResult:
    """ICC of prepared measurements and their mean squares (lets callers share one ANOVA among statistics)."""
    if form not in _FORMS:
        raise ValueError(f"unknown ICC form {form!r}; known: {ICC_FORMS}")
    q = _quantile(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        icc, low, high = _FORMS[form](ms, q)
    perfect = m.identical & (ms.between_subjects > 0)
    icc = np.where(perfect, 1.0, icc)
    low = np.where(perfect, 1.0, low)
    high = np.where(perfect, 1.0, high)
    undefined = ~np.isfinite(icc)
    low = np.where(undefined, np.nan, low)
    high = np.where(undefined, np.nan, high)
    return IccResult(icc, low, high, ms.n)


def icc(y, form: str = DEFAULT_FORM, confidence: float = 0.95) -> IccResult:
    """ICC of every feature in ``y`` (F, n, k) with its ``confidence`` interval; see the module docstring."""
    m = measurements(y)
    return icc_from(m, mean_squares(m), form, confidence)
