"""ComBat harmonisation across centres (Johnson, Li & Rabinovic 2007, parametric empirical Bayes), split into a fit
on training cases and an application to held-out cases, so that it can sit inside cross-validation folds.

Model, per feature g, case j of batch (centre) i:  Y_ijg = alpha_g + X_ij beta_g + gamma_ig + delta_ig eps_ijg.

Fit (training cases only):
1. Least squares of Y on [batch one-hot | covariates] gives per-batch intercepts and the covariate effects beta_g;
   alpha_g = sum_i (n_i / n) intercept_ig (the grand mean); var_pooled_g = mean over cases of the squared residuals.
2. Standardise: Z = (Y - alpha - X beta) / sqrt(var_pooled).
3. Per batch: gamma_hat = mean of Z over the batch's cases, delta_hat = their variance (ddof 1).
4. Priors across features, per batch: gamma ~ N(gamma_bar, tau^2) (moments of gamma_hat), delta ~ InvGamma(a, b)
   by the method of moments on delta_hat (m, s^2): a = (2 s^2 + m^2) / s^2, b = (m s^2 + m^3) / s^2.
5. Posterior means by the fixed-point iteration of the paper (sva's ``it.sol``), relative change < 1e-4:
   gamma* = (n tau^2 gamma_hat + delta* gamma_bar) / (n tau^2 + delta*),
   delta* = (b + sum_j (Z_j - gamma*)^2 / 2) / (n / 2 + a - 1).
Apply (any cases of a batch seen in training): Y* = (Z - gamma*_i) / sqrt(delta*_i) * sqrt(var_pooled) + alpha + X beta.

Covariates to preserve (e.g. age, sex) enter the design so their effect is not removed; the outcome must never be
one (it is unknown for a held-out case, and using it leaks). A centre absent from training (external validation) is
harmonised from its own, unlabelled cases (steps 3-5 on them, standardised with the training alpha, beta and
var_pooled), which needs at least two cases of it; one lone case is left unadjusted. Features constant in training
pass through unchanged. Formulas as in sva::ComBat and neuroCombat (whose package requires numpy < 2 and whose
apply-to-new-data function ignores covariates, so it is not used).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

log = logging.getLogger(__name__)

META_PREFIX = "clinical:"  # columns of the modelling frame that are not radiomic features
CONVERGENCE = 1e-4
MAX_ITERATIONS = 1000


@dataclass(frozen=True)
class ComBatEstimates:
    batches: tuple[str, ...]
    grand_mean: np.ndarray  # (p,) alpha
    covariate_effects: np.ndarray  # (q, p) beta
    var_pooled: np.ndarray  # (p,)
    gamma_star: np.ndarray  # (n_batches, p)
    delta_star: np.ndarray  # (n_batches, p)
    varying: np.ndarray  # (p,) bool: features harmonised (the others pass through)


def _inverse_gamma_prior(delta_hat: np.ndarray) -> tuple[float, float]:
    """Method-of-moments (a, b) of an inverse-gamma prior fitted to one batch's variances across features."""
    m = float(np.mean(delta_hat))
    s2 = float(np.var(delta_hat, ddof=1)) if delta_hat.size > 1 else 0.0
    if not np.isfinite(s2) or s2 <= 0:
        return float("nan"), float("nan")
    return (2 * s2 + m**2) / s2, (m * s2 + m**3) / s2


def batch_posteriors(z: np.ndarray, empirical_bayes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(gamma*, delta*) per feature for the standardised data ``z`` (cases x features) of one batch.

    Without empirical Bayes, or when the priors are undefined (a single feature, equal variances), the per-batch
    moments gamma_hat, delta_hat are used as they are (location/scale adjustment)."""
    n = z.shape[0]
    gamma_hat = z.mean(axis=0)
    delta_hat = z.var(axis=0, ddof=1)
    if not empirical_bayes or z.shape[1] < 2:
        return gamma_hat, np.where(delta_hat > 0, delta_hat, 1.0)
    gamma_bar = float(gamma_hat.mean())
    tau2 = float(gamma_hat.var(ddof=1))
    a, b = _inverse_gamma_prior(delta_hat)
    if not (np.isfinite(a) and np.isfinite(b)) or tau2 <= 0:
        return gamma_hat, np.where(delta_hat > 0, delta_hat, 1.0)
    gamma_old, delta_old = gamma_hat, delta_hat
    for _ in range(MAX_ITERATIONS):
        gamma_new = (n * tau2 * gamma_hat + delta_old * gamma_bar) / (n * tau2 + delta_old)
        sum2 = ((z - gamma_new) ** 2).sum(axis=0)
        delta_new = (b + 0.5 * sum2) / (n / 2.0 + a - 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.nanmax(np.concatenate([np.abs(gamma_new - gamma_old) / np.abs(gamma_old),
                                               np.abs(delta_new - delta_old) / np.abs(delta_old)]))
        gamma_old, delta_old = gamma_new, delta_new
        if change < CONVERGENCE:
            break
    return gamma_old, delta_old


def _design(batch_codes: np.ndarray, n_batches: int, covariates: np.ndarray) -> np.ndarray:
    onehot = np.zeros((batch_codes.size, n_batches))
    onehot[np.arange(batch_codes.size), batch_codes] = 1.0
    return np.hstack([onehot, covariates])


def combat_fit(y: np.ndarray, batch: np.ndarray, covariates: np.ndarray | None = None,
               empirical_bayes: bool = True) -> ComBatEstimates:
    """ComBat estimates from training data ``y`` (cases x features, no NaN), batch labels and covariates."""
    y = np.asarray(y, dtype=float)
    n, p = y.shape
    covariates = np.zeros((n, 0)) if covariates is None else np.asarray(covariates, dtype=float).reshape(n, -1)
    batches, codes = np.unique(np.asarray(batch).astype(str), return_inverse=True)
    design = _design(codes, batches.size, covariates)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    counts = np.bincount(codes, minlength=batches.size)
    grand_mean = (counts / n) @ coef[: batches.size]
    covariate_effects = coef[batches.size:]
    var_pooled = ((y - design @ coef) ** 2).mean(axis=0)
    # Relative to the feature's scale: a feature that least squares fits exactly is constant for ComBat's purpose.
    varying = var_pooled > 1e-24 * np.maximum(1.0, np.abs(grand_mean)) ** 2

    gamma_star = np.zeros((batches.size, p))
    delta_star = np.ones((batches.size, p))
    z = _standardise(y, covariates, grand_mean, covariate_effects, var_pooled, varying)
    for i, name in enumerate(batches):
        members = codes == i
        if members.sum() < 2:
            log.warning("ComBat: centre %s has %d training case(s); left unadjusted", name, int(members.sum()))
            continue
        gamma_star[i, varying], delta_star[i, varying] = batch_posteriors(z[members][:, varying], empirical_bayes)
    return ComBatEstimates(tuple(batches), grand_mean, covariate_effects, var_pooled, gamma_star, delta_star, varying)


def _standardise(y, covariates, grand_mean, covariate_effects, var_pooled, varying) -> np.ndarray:
    scale = np.sqrt(np.where(varying, var_pooled, 1.0))
    return (y - grand_mean - covariates @ covariate_effects) / scale


def combat_apply(y: np.ndarray, batch: np.ndarray, covariates: np.ndarray | None, estimates: ComBatEstimates,
                 empirical_bayes: bool = True) -> np.ndarray:
    """Harmonise ``y`` (cases x features) with estimates from :func:`combat_fit`."""
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    covariates = np.zeros((n, 0)) if covariates is None else np.asarray(covariates, dtype=float).reshape(n, -1)
    e = estimates
    z = _standardise(y, covariates, e.grand_mean, e.covariate_effects, e.var_pooled, e.varying)
    labels = np.asarray(batch).astype(str)
    known = {name: i for i, name in enumerate(e.batches)}
    gamma = np.zeros_like(z)
    delta = np.ones_like(z)
    for name in np.unique(labels):
        members = labels == name
        if name in known:
            gamma[members], delta[members] = e.gamma_star[known[name]], e.delta_star[known[name]]
        elif members.sum() >= 2:
            g, d = batch_posteriors(z[members][:, e.varying], empirical_bayes)
            gamma[np.ix_(members, e.varying)], delta[np.ix_(members, e.varying)] = g, d
        else:
            log.warning("ComBat: centre %s was not in training and has one case; left unadjusted", name)
    adjusted = (z - gamma) / np.sqrt(delta) * np.sqrt(np.where(e.varying, e.var_pooled, 1.0))
    adjusted += e.grand_mean + covariates @ e.covariate_effects
    return np.where(e.varying, adjusted, y)


class CovariateEncoder:
    """Clinical covariates as numbers: numeric columns as they are (NaN -> training median); text columns as
    indicators of every training category but the first (alphabetical) one (missing -> the most frequent)."""

    def __init__(self, columns: list[str]):
        self.columns = list(columns)

    def fit(self, frame: pd.DataFrame) -> "CovariateEncoder":
        self.fill_: dict[str, float | str] = {}
        self.levels_: dict[str, list[str]] = {}
        for column in self.columns:
            values = frame[column]
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                self.fill_[column] = float(values.median()) if values.notna().any() else 0.0
            else:
                text = values.dropna().astype(str)
                levels = sorted(text.unique())
                self.levels_[column] = levels
                self.fill_[column] = text.mode().sort_values().iloc[0] if len(text) else ""
        return self

    def names(self) -> list[str]:
        out = []
        for column in self.columns:
            if column in self.levels_:
                out += [f"{column}={level}" for level in self.levels_[column][1:]]
            else:
                out.append(column)
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = []
        for column in self.columns:
            if column in self.levels_:
                text = frame[column].astype(object).where(frame[column].notna(), self.fill_[column]).astype(str)
                blocks += [(text == level).to_numpy(dtype=float) for level in self.levels_[column][1:]]
            else:
                blocks.append(frame[column].astype(float).fillna(self.fill_[column]).to_numpy())
        return np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))


class Harmoniser(TransformerMixin, BaseEstimator):
    """First step of the radiomics branch: takes the modelling frame (radiomic feature columns plus
    ``clinical:*`` columns), fills missing feature values with the training median, removes centre effects with
    ComBat (``method='combat'``) or not (``'none'``), and returns the radiomic features only (an array whose
    column names ``get_feature_names_out`` gives).

    ``batch``: the centre column; ``covariates``: clinical columns whose effect ComBat preserves."""

    def __init__(self, method: str = "combat", batch: str = f"{META_PREFIX}centre", covariates: tuple = (),
                 empirical_bayes: bool = True):
        self.method = method
        self.batch = batch
        self.covariates = covariates
        self.empirical_bayes = empirical_bayes

    def _features(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.features_].to_numpy(dtype=float)
        missing = np.isnan(values)
        if missing.any():
            values = np.where(missing, self.medians_[None, :], values)
        return values

    def fit(self, X: pd.DataFrame, y=None):
        if self.method not in ("combat", "none"):
            raise ValueError(f"unknown harmonisation method {self.method!r} (combat | none)")
        self.features_ = [c for c in X.columns if not str(c).startswith(META_PREFIX)]
        self.n_features_in_ = len(self.features_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column's median is NaN: filled with 0
            medians = np.nanmedian(X[self.features_].to_numpy(dtype=float), axis=0)
        self.medians_ = np.where(np.isfinite(medians), medians, 0.0)
        if self.method == "combat":
            self.encoder_ = CovariateEncoder(list(self.covariates)).fit(X)
            self.estimates_ = combat_fit(self._features(X), X[self.batch].to_numpy(), self.encoder_.transform(X),
                                         self.empirical_bayes)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        values = self._features(X)
        if self.method == "combat":
            values = combat_apply(values, X[self.batch].to_numpy(), self.encoder_.transform(X), self.estimates_,
                                  self.empirical_bayes)
        return values

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.features_, dtype=object)
