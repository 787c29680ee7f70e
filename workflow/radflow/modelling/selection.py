"""Feature selection transformers, fitted on training cases only (they sit inside the cross-validation pipeline).

Relevance of a single feature to the outcome (rank-based, so one outlying case cannot dominate):
* binary outcome: |AUC - 0.5| of the feature as a score (Mann-Whitney, mid-ranks);
* survival: |z| of the Cox partial-likelihood score test at beta = 0 for the feature's standardised ranks (the
  log-rank-type statistic): U = sum over events i of (x_i - mean of x over the risk set at t_i),
  I = sum over events of the variance of x over that risk set (Breslow ties), z = U / sqrt(I).

Selectors:
* ``UnivariateFilter(k)``: the k most relevant features.
* ``MRMRSelector(k)``: minimum redundancy - maximum relevance, greedy quotient form: start from the most relevant
  feature, then repeatedly add the feature maximising relevance / mean |Spearman rho| with those already chosen.
* ``LassoSelector``: embedded selection: the non-zero coefficients of an L1-penalised logistic regression (binary,
  inverse penalty ``c``) or L1 Cox model (survival, penalty ``alpha``), at most ``k`` (largest |coefficient|);
  if the penalty zeroes everything, the single most relevant feature is kept so the learner has an input.
Ties in every ranking go to the first column (columns are in the fixed feature-key order).
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from radflow.modelling.columns import ColumnSelector
from radflow.modelling.redundancy import abs_spearman, column_ranks
from radflow.modelling.targets import is_survival, survival_arrays


def auc_relevance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|AUC - 0.5| of every column of ``x`` for the binary labels ``y``."""
    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return np.zeros(x.shape[1])
    ranks = column_ranks(x)
    auc = (ranks[y].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return np.abs(auc - 0.5)


def cox_score_relevance(x: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """|z| of the univariate Cox score test (beta = 0) for the standardised ranks of every column of ``x``."""
    ranks = column_ranks(x)
    sd = ranks.std(axis=0)
    ranks = (ranks - ranks.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    order = np.argsort(time, kind="stable")
    t, d, r = time[order], event[order], ranks[order]
    # Sums over the risk set {j: t_j >= t_i}: reverse cumulative sums read at the first case with time t_i.
    n_at_risk = (t.size - np.arange(t.size)).astype(float)
    sum_x = np.cumsum(r[::-1], axis=0)[::-1]
    sum_x2 = np.cumsum((r**2)[::-1], axis=0)[::-1]
    first = np.searchsorted(t, t, side="left")
    events = np.flatnonzero(d)
    if events.size == 0:
        return np.zeros(x.shape[1])
    at = first[events]
    mean = sum_x[at] / n_at_risk[at][:, None]
    var = sum_x2[at] / n_at_risk[at][:, None] - mean**2
    u = (r[events] - mean).sum(axis=0)
    info = np.clip(var, 0.0, None).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(info > 0, np.abs(u) / np.sqrt(info), 0.0)
    return z


def relevance(x: np.ndarray, y) -> np.ndarray:
    """Univariate relevance of every column for a binary or survival target (see the module docstring)."""
    x = np.asarray(x, dtype=float)
    if is_survival(y):
        time, event = survival_arrays(y)
        return cox_score_relevance(x, time, event)
    return auc_relevance(x, np.asarray(y))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, first column on ties, returned in column order."""
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[: min(k, scores.size)])


def mrmr_order(x: np.ndarray, y, k: int) -> np.ndarray:
    """Greedy mRMR (quotient form) picks, in the order they were chosen."""
    rel = relevance(x, y)
    k = min(k, rel.size)
    corr = abs_spearman(x)
    chosen = [int(np.argmax(rel))]
    redundancy = corr[:, chosen[0]].copy()
    while len(chosen) < k:
        mean_redundancy = np.maximum(redundancy / len(chosen), 1e-12)
        score = rel / mean_redundancy
        score[chosen] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        redundancy += corr[:, pick]
    return np.asarray(chosen, dtype=int)


class UnivariateFilter(ColumnSelector):
    def __init__(self, k: int = 10):
        self.k = k

    def fit(self, X, y):
        x = self._remember(X)
        self.scores_ = relevance(x, y)
        self.support_ = _top(self.scores_, self.k)
        return self


class MRMRSelector(ColumnSelector):
    def __init__(self, k: int = 10):
        self.k = k

    def fit(self, X, y):
        x = self._remember(X)
        self.order_ = mrmr_order(x, y, self.k)
        self.support_ = np.sort(self.order_)
        return self


class LassoSelector(ColumnSelector):
    def __init__(self, k: int = 10, c: float = 0.5, alpha: float = 0.1, random_state: int = 0):
        self.k = k
        self.c = c
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X, y):
        x = self._remember(X)
        if is_survival(y):
            from sksurv.linear_model import CoxnetSurvivalAnalysis

            model = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=[self.alpha], max_iter=100_000)
            coef = model.fit(x, y).coef_[:, 0]
        else:
            model = LogisticRegression(l1_ratio=1.0, C=self.c, solver="liblinear", random_state=self.random_state)
            coef = model.fit(x, np.asarray(y)).coef_[0]
        self.coef_ = coef
        if np.any(coef != 0):
            self.support_ = _top(np.where(coef != 0, np.abs(coef), -np.inf), min(self.k, int(np.sum(coef != 0))))
        else:
            self.support_ = _top(relevance(x, y), 1)
        return self
