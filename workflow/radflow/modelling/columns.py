"""A transformer that keeps a subset of columns: the shared plumbing of redundancy reduction and selection."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class ColumnSelector(TransformerMixin, BaseEstimator):
    """Keeps the columns ``support_`` (set by ``fit`` of a subclass, in column order); names come from the previous
    pipeline step."""

    def _remember(self, X) -> np.ndarray:
        x = np.asarray(X, dtype=float)
        self.n_features_in_ = x.shape[1]
        return x

    def transform(self, X) -> np.ndarray:
        return np.asarray(X, dtype=float)[:, self.support_]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = np.asarray(input_features if input_features is not None
                           else [f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return names[self.support_]
