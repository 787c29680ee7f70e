"""Redundancy reduction fitted on training cases: correlation clustering with one representative per cluster, or PCA.

Correlation clustering: |Spearman rho| between every pair of features; complete-linkage hierarchical clustering on
the distance 1 - |rho|, cut at 1 - threshold, so that every pair of features inside a cluster has |rho| >= threshold.
Representative of a cluster (the documented rule): the member with the largest mean |rho| to the other members (the
most central one, which best stands for the rest); ties go to the first in column order. Columns are in a fixed
order (the feature keys' sort order), so the choice is deterministic. The outcome is not used.
"""
from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from radflow.modelling.columns import ColumnSelector


def column_ranks(x: np.ndarray) -> np.ndarray:
    """Mid-ranks (1..n) within each column of ``x`` (as ``scipy.stats.rankdata(x, axis=0)``, three times faster:
    one argsort of contiguous rows, and rankdata's tie handling only for the columns that have ties)."""
    xt = np.ascontiguousarray(np.asarray(x, dtype=float).T)
    order = np.argsort(xt, axis=1)
    ranks = np.empty_like(xt)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(1, xt.shape[1] + 1, dtype=float), xt.shape), axis=1)
    ordered = np.take_along_axis(xt, order, axis=1)
    tied = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
    if tied.size:
        ranks[tied] = rankdata(xt[tied], axis=1)
    return ranks.T


def abs_spearman(x: np.ndarray) -> np.ndarray:
    """|Spearman rho| between the columns of ``x`` (mid-ranks for ties); 0 for a constant column (1 on the
    diagonal)."""
    ranks = column_ranks(x)
    ranks -= ranks.mean(axis=0)
    norms = np.sqrt((ranks**2).sum(axis=0))
    constant = norms == 0
    ranks[:, ~constant] /= norms[~constant]
    corr = np.abs(ranks.T @ ranks)
    np.clip(corr, 0.0, 1.0, out=corr)
    np.fill_diagonal(corr, 1.0)
    return corr


def correlation_clusters(abs_corr: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster label (1..k) of every feature: complete linkage on 1 - |rho|, cut so that all pairs inside a cluster
    have |rho| >= threshold."""
    p = abs_corr.shape[0]
    if p == 1:
        return np.ones(1, dtype=int)
    distance = squareform(1.0 - abs_corr, checks=False)
    tree = linkage(distance, method="complete")
    # fcluster's "distance" keeps merges with height <= t; complete-linkage heights are the largest distance within.
    return fcluster(tree, t=1.0 - threshold + 1e-12, criterion="distance")


def cluster_representatives(abs_corr: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sorted column indices of the representative of each cluster (largest mean |rho| to the other members,
    first column on ties)."""
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if members.size == 1:
            chosen.append(int(members[0]))
            continue
        block = abs_corr[np.ix_(members, members)]
        centrality = (block.sum(axis=1) - 1.0) / (members.size - 1)
        chosen.append(int(members[np.argmax(centrality)]))
    return np.sort(np.asarray(chosen, dtype=int))


class CorrelationReducer(ColumnSelector):
    """Keep one representative feature per cluster of features with |Spearman rho| >= ``threshold``."""

    def __init__(self, threshold: float = 0.9):
        self.threshold = threshold

    def fit(self, X, y=None):
        corr = abs_spearman(self._remember(X))
        self.labels_ = correlation_clusters(corr, self.threshold)
        self.support_ = cluster_representatives(corr, self.labels_)
        return self
