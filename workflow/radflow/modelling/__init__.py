"""Outcome modelling without leakage: harmonisation, redundancy reduction and feature selection fitted inside the
folds of a nested cross-validation, scikit-learn / scikit-survival learners, and calibrated performance metrics.

Modules: ``data`` (long feature table -> case x feature matrix), ``harmonisation`` (ComBat), ``redundancy``
(correlation clustering, PCA), ``selection`` (univariate, mRMR, LASSO), ``models`` (learners, grids, pipelines),
``validation`` (nested CV, threshold choice, permutation test, external validation), ``metrics``, ``study`` (runs
every configured model), ``outcome_coding`` (how outcome and event columns may be coded), ``plots``. Their RDF is
written by ``radflow.provenance.model_rdf``.
"""
