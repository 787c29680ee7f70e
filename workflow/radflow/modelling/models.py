"""Learners, their tuning grids, and the scikit-learn pipelines that keep every data-dependent step inside a fold.

A model is ``Pipeline([("preprocess", P), ("learner", L)])`` fitted on a data frame whose columns are the radiomic
features plus ``clinical:*`` columns (centre, covariates). ``P`` depends on the feature set:

* ``radiomics``: Harmoniser (median fill, ComBat over centres) -> StandardScaler -> redundancy reduction
  (CorrelationReducer or PCA) -> selection (UnivariateFilter, MRMRSelector, LassoSelector);
* ``clinical``: the clinical covariates only (indicator-coded, median/mode filled, standardised) - the baseline;
* ``combined``: both, side by side (FeatureUnion).

Only learner hyper-parameters are tuned (the grid); the preprocessing settings come from the configuration, so the
inner loop fits the preprocessing once per inner split and every candidate learner on its output. Grids are listed
from the most to the least regularised: ties in the inner score go to the simpler model.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from radflow.modelling.harmonisation import META_PREFIX, CovariateEncoder, Harmoniser
from radflow.modelling.redundancy import CorrelationReducer
from radflow.modelling.selection import LassoSelector, MRMRSelector, UnivariateFilter
from radflow.modelling.targets import BINARY, SURVIVAL

FEATURE_SETS = ("radiomics", "clinical", "combined")


def _coxph(seed: int):
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    return CoxPHSurvivalAnalysis(alpha=1.0, ties="breslow")


def _coxnet(seed: int):
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    return CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.1], max_iter=100_000)


@dataclass(frozen=True)
class Learner:
    task: str
    make: Callable[[int], BaseEstimator]  # seed -> unfitted estimator
    grid: tuple[dict, ...]  # candidate hyper-parameters, most regularised first


LEARNERS: dict[str, Learner] = {
    "logistic_l1": Learner(
        BINARY, lambda s: LogisticRegression(l1_ratio=1.0, solver="liblinear", random_state=s, max_iter=1000),
        tuple({"C": c} for c in (0.05, 0.2, 1.0, 5.0))),
    "logistic_l2": Learner(
        BINARY, lambda s: LogisticRegression(l1_ratio=0.0, solver="lbfgs", max_iter=1000),
        tuple({"C": c} for c in (0.01, 0.1, 1.0, 10.0))),
    "logistic_elastic_net": Learner(
        BINARY, lambda s: LogisticRegression(solver="saga", random_state=s, max_iter=5000),
        tuple({"C": c, "l1_ratio": r} for c in (0.1, 1.0) for r in (0.8, 0.5, 0.2))),
    "random_forest": Learner(
        BINARY, lambda s: RandomForestClassifier(n_estimators=200, max_features="sqrt", random_state=s, n_jobs=1),
        tuple({"min_samples_leaf": m} for m in (5, 1))),
    # RBF SVM with Platt-scaled probabilities (sigmoid fitted on internal 3-fold decision values).
    "svm": Learner(
        BINARY, lambda s: CalibratedClassifierCV(SVC(kernel="rbf", gamma="scale"), method="sigmoid", cv=3,
                                                 ensemble=False),
        tuple({"estimator__C": c} for c in (0.1, 1.0, 10.0))),
    "gradient_boosting": Learner(
        BINARY, lambda s: GradientBoostingClassifier(n_estimators=100, learning_rate=0.05, subsample=0.8,
                                                     random_state=s),
        tuple({"max_depth": d} for d in (1, 2))),
    # Ridge-penalised Cox (penalty alpha/2 ||beta||^2 on standardised inputs).
    "cox_ridge": Learner(SURVIVAL, _coxph, tuple({"alpha": a} for a in (1000.0, 100.0, 10.0, 1.0))),
    # Elastic-net Cox (glmnet-style path solver, one alpha per candidate).
    "cox_elastic_net": Learner(SURVIVAL, _coxnet, tuple({"alphas": [a]} for a in (0.3, 0.1, 0.03, 0.01))),
}


class ClinicalFeatures(TransformerMixin, BaseEstimator):
    """The clinical covariates of the modelling frame as numbers (see ``CovariateEncoder``)."""

    def __init__(self, covariates: tuple = ()):
        self.covariates = covariates

    def fit(self, X: pd.DataFrame, y=None):
        self.encoder_ = CovariateEncoder(list(self.covariates)).fit(X)
        self.names_ = np.asarray(self.encoder_.names(), dtype=object)
        self.n_features_in_ = len(self.covariates)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return self.encoder_.transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return self.names_


@dataclass(frozen=True)
class Preprocessing:
    """How the radiomic features are prepared (from the ``model`` configuration)."""

    centre: str = f"{META_PREFIX}centre"
    covariates: tuple[str, ...] = ()  # clinical:* columns for the clinical branch
    harmonisation: str = "combat"  # combat | none
    preserve_covariates: bool = True  # ComBat keeps the covariates' effects
    empirical_bayes: bool = True
    redundancy: str = "correlation"  # correlation | pca | none
    correlation_threshold: float = 0.9
    pca_variance: float = 0.95
    selection: str = "mrmr"  # mrmr | univariate | lasso | none
    n_features: int = 10
    lasso_c: float = 0.5
    lasso_alpha: float = 0.1


def radiomics_branch(prep: Preprocessing, seed: int) -> Pipeline:
    steps = [
        ("harmonise", Harmoniser(prep.harmonisation, batch=prep.centre,
                                 covariates=prep.covariates if prep.preserve_covariates else (),
                                 empirical_bayes=prep.empirical_bayes)),
        ("scale", StandardScaler()),
    ]
    if prep.redundancy == "correlation":
        steps.append(("redundancy", CorrelationReducer(prep.correlation_threshold)))
    elif prep.redundancy == "pca":
        steps.append(("redundancy", PCA(n_components=prep.pca_variance, svd_solver="full")))
    elif prep.redundancy != "none":
        raise ValueError(f"unknown redundancy method {prep.redundancy!r}")
    if prep.selection == "mrmr":
        steps.append(("select", MRMRSelector(prep.n_features)))
    elif prep.selection == "univariate":
        steps.append(("select", UnivariateFilter(prep.n_features)))
    elif prep.selection == "lasso":
        steps.append(("select", LassoSelector(prep.n_features, c=prep.lasso_c, alpha=prep.lasso_alpha,
                                              random_state=seed)))
    elif prep.selection != "none":
        raise ValueError(f"unknown selection method {prep.selection!r}")
    return Pipeline(steps)


def clinical_branch(prep: Preprocessing) -> Pipeline:
    return Pipeline([("encode", ClinicalFeatures(prep.covariates)), ("scale", StandardScaler())])


def preprocessing(feature_set: str, prep: Preprocessing, seed: int):
    if feature_set == "radiomics":
        return radiomics_branch(prep, seed)
    if feature_set == "clinical":
        return clinical_branch(prep)
    if feature_set == "combined":
        return FeatureUnion([("radiomics", radiomics_branch(prep, seed)), ("clinical", clinical_branch(prep))],
                            verbose_feature_names_out=False)
    raise ValueError(f"unknown feature set {feature_set!r} ({', '.join(FEATURE_SETS)})")


def make_model(learner: str, feature_set: str, prep: Preprocessing, seed: int) -> Pipeline:
    """The unfitted pipeline of one model (learner hyper-parameters at their defaults; the grid tunes them)."""
    model = Pipeline([("preprocess", preprocessing(feature_set, prep, seed)),
                      ("learner", LEARNERS[learner].make(seed))])
    return model


def predict_scores(model, x: pd.DataFrame, task: str) -> np.ndarray:
    """Predicted probability of the outcome (binary) or risk score (survival; higher = earlier event)."""
    if task == BINARY:
        return model.predict_proba(x)[:, 1]
    return np.asarray(model.predict(x), dtype=float)


def input_features(model: Pipeline) -> list[str]:
    """Names of the features the learner of a fitted model receives (after redundancy reduction and selection)."""
    return [str(n) for n in model.named_steps["preprocess"].get_feature_names_out()]


def feature_weights(model: Pipeline) -> pd.DataFrame:
    """Coefficient (linear learners, on standardised inputs) or impurity importance (trees) of every learner input;
    NaN with kind 'none' for learners that have neither (RBF SVM)."""
    names = input_features(model)
    learner = model.named_steps["learner"]
    if hasattr(learner, "coef_"):
        weights, kind = np.ravel(np.asarray(learner.coef_, dtype=float)), "coefficient"
    elif hasattr(learner, "feature_importances_"):
        weights, kind = np.asarray(learner.feature_importances_, dtype=float), "importance"
    else:
        weights, kind = np.full(len(names), np.nan), "none"
    return pd.DataFrame({"feature_key": names, "weight": weights, "weight_kind": kind})
