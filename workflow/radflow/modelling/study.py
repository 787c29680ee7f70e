"""Run every configured model: nested CV estimates, permutation test, external validation, and the final model fitted
on all development cases. Pure: data frames in, data frames and fitted pipelines out (``pipeline/model.py`` does
the files).

Model ids are ``<task>.<learner>.<feature set>``, e.g. ``binary.logistic_l1.radiomics``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from radflow.modelling import outcome_coding, validation
from radflow.modelling.harmonisation import META_PREFIX
from radflow.modelling.models import (FEATURE_SETS, LEARNERS, Preprocessing, feature_weights, make_model,
                                      predict_scores)
from radflow.modelling.targets import BINARY, SURVIVAL, is_survival, survival_arrays, survival_target
from radflow.modelling.validation import CVSettings, derived_seed

log = logging.getLogger(__name__)

# Purposes of derived seeds (so that no two random streams coincide).
_PERMUTE_OUTCOME, _FINAL_MODEL, _BOOTSTRAP_CV, _BOOTSTRAP_EXTERNAL, _BOOTSTRAP_PROCEDURE = 11, 12, 13, 14, 15

DEFAULTS: dict = {
    "enabled": True,
    "seed": 20240611,
    "scan": "test",
    "features_from": "scan",
    "delta_timepoint": 1,
    "use_stable_features": True,
    "outcome": "outcome",
    "survival_time": "survival_time",
    "survival_event": "event",
    "centre": "centre",
    "covariates": ["age", "sex"],
    "harmonisation": {"method": "combat", "empirical_bayes": True, "preserve_covariates": True},
    "redundancy": {"method": "correlation", "threshold": 0.9, "pca_variance": 0.95},
    "selection": {"method": "mrmr", "n_features": 10, "lasso_c": 0.5, "lasso_alpha": 0.1},
    "binary_models": ["logistic_l1/radiomics", "logistic_l2/clinical", "logistic_l1/combined"],
    "survival_models": ["cox_ridge/radiomics"],
    "outer_folds": 5,
    "outer_repeats": 2,
    "inner_folds": 3,
    "n_bootstrap": 200,
    "n_bootstrap_procedure": 50,
    "n_permutations": 50,
    "held_out_centre": None,
    "permute_outcome": False,
    "max_missing": 0.1,
}


@dataclass(frozen=True)
class ModelSpec:
    task: str
    learner: str
    feature_set: str

    @property
    def model_id(self) -> str:
        return f"{self.task}.{self.learner}.{self.feature_set}"

    @classmethod
    def parse(cls, task: str, text: str) -> "ModelSpec":
        learner, _, feature_set = text.partition("/")
        if learner not in LEARNERS or LEARNERS[learner].task != task:
            names = sorted(name for name, spec in LEARNERS.items() if spec.task == task)
            raise ValueError(f"{text!r}: unknown {task} learner {learner!r} ({', '.join(names)})")
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"{text!r}: unknown feature set {feature_set!r} ({', '.join(FEATURE_SETS)})")
        return cls(task, learner, feature_set)


def _merged(defaults: dict, given: dict) -> dict:
    out = dict(defaults)
    for key, value in (given or {}).items():
        out[key] = _merged(defaults[key], value) if isinstance(defaults.get(key), dict) else value
    return out


@dataclass(frozen=True)
class StudyConfig:
    raw: dict  # the resolved ``model`` configuration (defaults filled in), recorded with every model
    specs: tuple[ModelSpec, ...]
    preprocessing: Preprocessing
    cv: CVSettings

    @classmethod
    def from_dict(cls, given: dict | None) -> "StudyConfig":
        raw = _merged(DEFAULTS, given or {})
        specs = tuple([ModelSpec.parse(BINARY, t) for t in (raw["binary_models"] if raw["outcome"] else [])]
                      + [ModelSpec.parse(SURVIVAL, t) for t in
                         (raw["survival_models"] if raw["survival_time"] and raw["survival_event"] else [])])
        h, r, s = raw["harmonisation"], raw["redundancy"], raw["selection"]
        prep = Preprocessing(
            centre=f"{META_PREFIX}centre",
            covariates=tuple(f"{META_PREFIX}{c}" for c in raw["covariates"]),
            harmonisation=h["method"], preserve_covariates=h["preserve_covariates"],
            empirical_bayes=h["empirical_bayes"],
            redundancy=r["method"], correlation_threshold=r["threshold"], pca_variance=r["pca_variance"],
            selection=s["method"], n_features=s["n_features"], lasso_c=s["lasso_c"], lasso_alpha=s["lasso_alpha"])
        cv = CVSettings(raw["outer_folds"], raw["outer_repeats"], raw["inner_folds"], raw["seed"])
        return cls(raw, specs, prep, cv)

    def __getitem__(self, key):
        return self.raw[key]


@dataclass
class StudyResult:
    models: list[dict] = field(default_factory=list)
    model_features: list[dict] = field(default_factory=list)
    predictions: list[pd.DataFrame] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    fitted: dict = field(default_factory=dict)  # model_id -> fitted Pipeline
    cv_predictions: dict = field(default_factory=dict)  # model_id -> (cases, outcome, (repeats x cases) predictions)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            "models": pd.DataFrame(self.models),
            "model_features": pd.DataFrame(self.model_features),
            "predictions": pd.concat(self.predictions, ignore_index=True) if self.predictions else pd.DataFrame(),
            "metrics": pd.DataFrame(self.metrics),
        }


def targets(clinical: pd.DataFrame, cases: pd.Index, config: StudyConfig, task: str) -> tuple[pd.Index, np.ndarray]:
    """(cases with a known outcome, target array) for ``task``, optionally permuted over those cases."""
    table = clinical.drop_duplicates("case_id").set_index("case_id").reindex(cases)
    if task == BINARY:
        outcome = np.array(outcome_coding.indicator(table[config["outcome"]], config["outcome"],
                                                    "the outcome of interest"))
        known = ~np.isnan(outcome)
        y = outcome[known].astype(int)
    else:
        time = np.array(outcome_coding.survival_times(table[config["survival_time"]], config["survival_time"]))
        event = np.array(outcome_coding.indicator(table[config["survival_event"]], config["survival_event"],
                                                  "the event happened", event=True))
        known = ~(np.isnan(time) | np.isnan(event))
        y = survival_target(time[known], event[known])
    if config["permute_outcome"]:
        y = validation.permuted_target(y, np.random.default_rng([config["seed"], _PERMUTE_OUTCOME]))
    return cases[known], y


def no_outcome_reason(frame: pd.DataFrame, clinical: pd.DataFrame, task: str, config: StudyConfig) -> str:
    """Why no case of ``frame`` (features joined with the clinical table) has a known outcome: no case with features
    has a clinical row, or the outcome column is empty for every one that has."""
    matched = int(frame.index.isin(clinical["case_id"]).sum())
    if matched == 0:
        return (f"no case with features has a row in the clinical table ({len(clinical)} rows): its patient_id must "
                "equal the DICOM PatientID exactly")
    columns = [config["outcome"]] if task == BINARY else [config["survival_time"], config["survival_event"]]
    return f"none of the {matched} cases with features and a clinical row has a value in {' and '.join(columns)}"


def _prediction_rows(model_id: str, validation_kind: str, cases: np.ndarray, repeat, fold, prediction,
                     threshold, y) -> pd.DataFrame:
    """Rows of the predictions table, each with the outcome it is scored against (after any permutation)."""
    prediction = np.asarray(prediction, dtype=float)
    n = prediction.size
    binary = not is_survival(y)
    threshold = np.broadcast_to(np.asarray(threshold, dtype=float), (n,))
    if binary:
        outcome, time = np.asarray(y, dtype=float), np.full(n, np.nan)
    else:
        time, event = survival_arrays(y)
        outcome = event.astype(float)
    return pd.DataFrame({
        "model_id": model_id, "validation": validation_kind, "repeat": np.broadcast_to(repeat, (n,)).astype(int),
        "fold": np.broadcast_to(fold, (n,)).astype(int), "case_id": cases, "outcome": outcome,
        "survival_time": time,
        "probability": prediction if binary else np.nan, "risk_score": np.nan if binary else prediction,
        "threshold": threshold if binary else np.nan,
        "predicted_class": (prediction >= threshold).astype(float) if binary else np.nan,
    })


def _feature_rows(model_id: str, fitted, folds: list, catalogue: pd.DataFrame) -> list[dict]:
    weights = feature_weights(fitted).set_index("feature_key")
    counts: dict[str, int] = {}
    for f in folds:
        for name in f.features:
            counts[name] = counts.get(name, 0) + 1
    names = list(weights.index) + sorted(set(counts) - set(weights.index))
    info = catalogue.set_index("feature_key") if len(catalogue) else pd.DataFrame()
    rows = []
    for name in names:
        known = name in info.index
        rows.append({
            "model_id": model_id, "feature_key": name,
            "settings_id": info.at[name, "settings_id"] if known else None,
            "roi": info.at[name, "roi"] if known else None,
            "ibsi_code": info.at[name, "ibsi_code"] if known else None,
            "aggregation": info.at[name, "aggregation"] if known else None,
            "feature": info.at[name, "feature"] if known else name,
            "in_final_model": name in weights.index,
            "weight": float(weights.at[name, "weight"]) if name in weights.index else float("nan"),
            "weight_kind": str(weights.at[name, "weight_kind"]) if name in weights.index else None,
            "selection_frequency": counts.get(name, 0) / len(folds) if folds else float("nan"),
        })
    return rows


def _metric_rows(model_id: str, kind: str, rows: list[dict]) -> list[dict]:
    return [{"model_id": model_id, "validation": kind, **row} for row in rows]


def run_model(spec: ModelSpec, frame: pd.DataFrame, catalogue: pd.DataFrame, clinical: pd.DataFrame,
              config: StudyConfig, result: StudyResult, permutation_test: bool, n_jobs: int) -> None:
    """Estimate, validate and fit one model, appending its rows to ``result``."""
    radiomic = [c for c in frame.columns if not str(c).startswith(META_PREFIX)]
    x_all = frame if spec.feature_set != "clinical" else frame[[c for c in frame.columns
                                                                if str(c).startswith(META_PREFIX)]]
    cases, y = targets(clinical, frame.index, config, spec.task)
    x_all = x_all.loc[cases]
    centre = x_all[f"{META_PREFIX}centre"].to_numpy().astype(str)
    held_out = config["held_out_centre"]
    development = centre != str(held_out) if held_out is not None else np.ones(len(cases), dtype=bool)
    x, y_dev, centre_dev = x_all.iloc[np.flatnonzero(development)], y[development], centre[development]
    record = {
        "model_id": spec.model_id, "task": spec.task, "learner": spec.learner, "feature_set": spec.feature_set,
        "n_cases": int(development.sum()),
        "n_events": int(validation.outcome_labels(y_dev).sum()),
        "n_candidate_features": (len(radiomic) if spec.feature_set != "clinical" else 0)
        + (len(config["covariates"]) if spec.feature_set != "radiomics" else 0),
        "n_external_cases": int((~development).sum()),
        "seed": int(config["seed"]),
        "config": json.dumps({**config.raw, "model": asdict(spec)}, sort_keys=True, default=str),
    }
    reason = None
    if len(cases) == 0:
        reason = no_outcome_reason(frame, clinical, spec.task, config)
    elif spec.feature_set != "clinical" and not radiomic:
        reason = "no radiomic features (none stable, or none extracted)"
    elif spec.feature_set != "radiomics" and not config["covariates"]:
        reason = "no clinical covariates configured"
    else:
        reason = validation.feasibility(y_dev, config.cv.outer_folds, config.cv.inner_folds)
    if reason:
        log.warning("%s skipped: %s", spec.model_id, reason)
        result.models.append({**record, "status": f"skipped: {reason}", "params": None})
        return

    model = make_model(spec.learner, spec.feature_set, config.preprocessing, config["seed"])
    grid = LEARNERS[spec.learner].grid
    folds = validation.nested_cv(model, grid, x, y_dev, centre_dev, config.cv, n_jobs)
    predictions, thresholds, fold_of = validation.oof_matrix(folds, len(y_dev), config.cv.outer_repeats)
    for f in folds:
        result.predictions.append(_prediction_rows(
            spec.model_id, "cv", x.index.to_numpy()[f.test_index], f.repeat, f.fold, f.prediction, f.threshold,
            y_dev[f.test_index]))
    procedure = None
    if config["n_bootstrap_procedure"] > 0:
        procedure = validation.procedure_bootstrap(
            model, grid, x, y_dev, centre_dev, config.cv, spec.task == BINARY, config["n_bootstrap_procedure"],
            derived_seed(config["seed"], _BOOTSTRAP_PROCEDURE), n_jobs)
    rows = validation.performance(y_dev, predictions, thresholds if spec.task == BINARY else None, fold_of,
                                  config["n_bootstrap"], derived_seed(config["seed"], _BOOTSTRAP_CV), procedure)
    result.cv_predictions[spec.model_id] = (x.index.to_numpy(), y_dev, predictions)
    if permutation_test and config["n_permutations"] > 0:
        observed = next(r["value"] for r in rows if r["metric"] in ("auc", "c_index"))
        p, null = validation.permutation_test(model, grid, x, y_dev, centre_dev, config.cv, observed,
                                              config["n_permutations"], n_jobs)
        rows.append({"metric": "permutation_p_value", "value": p, "ci_lower": np.nan, "ci_upper": np.nan,
                     "n_cases": len(y_dev)})
        # Where chance lands for this procedure on this cohort (cross-validation of small samples sits a little
        # below 0.5 under the null): mean and 2.5-97.5 percentiles of the permuted statistics.
        null = null[np.isfinite(null)]
        if null.size:
            rows.append({"metric": "permutation_null_mean", "value": float(null.mean()),
                         "ci_lower": float(np.quantile(null, 0.025)), "ci_upper": float(np.quantile(null, 0.975)),
                         "n_cases": len(y_dev)})
    result.metrics += _metric_rows(spec.model_id, "cv", rows)

    fitted, params, threshold = validation.fit_tuned(model, grid, x, y_dev, centre_dev, config.cv.inner_folds,
                                                     derived_seed(config["seed"], _FINAL_MODEL))
    result.fitted[spec.model_id] = fitted
    if (~development).any():
        external = np.flatnonzero(~development)
        prediction = predict_scores(fitted, x_all.iloc[external], spec.task)
        result.predictions.append(_prediction_rows(
            spec.model_id, "external", x_all.index.to_numpy()[external], 0, 0, prediction, threshold,
            y[external]))
        y_ext = y[external]
        rows = validation.performance(y_ext, prediction[None, :],
                                      np.full((1, len(prediction)), threshold) if spec.task == BINARY else None,
                                      None, config["n_bootstrap"], derived_seed(config["seed"], _BOOTSTRAP_EXTERNAL))
        result.metrics += _metric_rows(spec.model_id, "external", rows)
    result.model_features += _feature_rows(spec.model_id, fitted, folds, catalogue)
    result.models.append({**record, "status": "ok",
                          "params": json.dumps(params, sort_keys=True, default=str),
                          "threshold": threshold})


def added_value_rows(result: StudyResult, config: StudyConfig) -> list[dict]:
    """Does radiomics add to clinical? For every combined binary model and the clinical binary model: the DeLong
    test of their cross-validated AUCs on the same cases (paired), as metrics rows of the combined model
    (``delong_auc_difference`` with its 95 % interval, ``delong_p_value``)."""
    binary = [s for s in config.specs if s.task == BINARY and s.model_id in result.cv_predictions]
    clinical = next((s for s in binary if s.feature_set == "clinical"), None)
    rows: list[dict] = []
    if clinical is None:
        return rows
    cases_b, y_b, predictions_b = result.cv_predictions[clinical.model_id]
    for spec in binary:
        if spec.feature_set != "combined":
            continue
        cases_a, y_a, predictions_a = result.cv_predictions[spec.model_id]
        if not np.array_equal(cases_a, cases_b):
            log.warning("DeLong %s vs %s skipped: the models were fitted on different cases", spec.model_id,
                        clinical.model_id)
            continue
        test = validation.delong_paired(y_a, predictions_a, predictions_b)
        z = 1.959963984540054
        rows += _metric_rows(spec.model_id, "cv", [
            {"metric": "delong_auc_difference", "value": test["difference"],
             "ci_lower": test["difference"] - z * test["se"], "ci_upper": test["difference"] + z * test["se"],
             "n_cases": len(y_a)},
            {"metric": "delong_p_value", "value": test["p_value"], "ci_lower": np.nan, "ci_upper": np.nan,
             "n_cases": len(y_a)}])
    return rows


def run_study(frame: pd.DataFrame, catalogue: pd.DataFrame, clinical: pd.DataFrame, config: StudyConfig,
              n_jobs: int = 1) -> StudyResult:
    """Every configured model on the modelling frame (see ``data.modelling_frame``), each with its permutation
    test, then the DeLong test of each combined model against the clinical one."""
    result = StudyResult()
    for spec in config.specs:
        log.info("model %s", spec.model_id)
        run_model(spec, frame, catalogue, clinical, config, result, True, n_jobs)
    result.metrics += added_value_rows(result, config)
    return result
