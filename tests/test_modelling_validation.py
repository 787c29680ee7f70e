"""No leakage, shown several ways on synthetic cohorts (seconds each):

* no outer test case ever reaches a fit (a spy records what every fitted step saw);
* a planted signal is found, a permuted outcome gives chance-level AUCs whose CIs contain 0.5, while the same
  permuted outcome with feature selection done once on all cases (the classic leak) gives a confidently "good" model;
* a centre-only signal is found without harmonisation and removed by ComBat inside the folds;
* same config and seed give identical metrics, predictions and selected features (also with 2 jobs);
* external validation on a held-out centre, survival models, and too-small cohorts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.modelling import harmonisation, validation
from radflow.modelling.outcome_coding import OutcomeCodingError
from radflow.modelling.selection import mrmr_order
from radflow.modelling.study import StudyConfig, run_study

FAST = {"outer_folds": 5, "outer_repeats": 1, "inner_folds": 3, "n_bootstrap": 200, "n_permutations": 0,
        "n_bootstrap_procedure": 0,
        "binary_models": ["logistic_l2/radiomics"], "survival_models": [], "seed": 3}


def cohort(seed: int, n: int = 60, p: int = 40, signal: float = 1.5, centre_shift: float = 0.0,
           centre_prevalence: tuple[float, float] | None = None):
    """(frame, catalogue, clinical): features F0..F{p-1}; F0 and F1 carry the signal; centre A/B alternate."""
    rng = np.random.default_rng(seed)
    centre = np.where(np.arange(n) % 2 == 0, "A", "B")
    latent = rng.normal(size=n)
    if centre_prevalence is None:
        outcome = (signal * latent + rng.normal(size=n) > 0).astype(int)
    else:
        prevalence = np.where(centre == "A", *centre_prevalence)
        outcome = (rng.uniform(size=n) < prevalence).astype(int)
    x = rng.normal(size=(n, p))
    x[:, 0] = latent + 0.5 * x[:, 0]
    x[:, 1] = latent + 0.5 * x[:, 1]
    in_b = centre == "B"
    x[in_b] = x[in_b] * (1 + centre_shift) + centre_shift  # centre effect on location and scale
    cases = [f"case-{i:03d}" for i in range(n)]
    keys = [f"GTV|s1|F{j:03d}|none" for j in range(p)]
    frame = pd.DataFrame(x, index=pd.Index(cases, name="case_id"), columns=keys)
    frame["clinical:centre"] = centre
    frame["clinical:age"] = rng.normal(65, 9, n).round()
    frame["clinical:sex"] = np.where(rng.uniform(size=n) < 0.5, "F", "M")
    time = np.round(rng.exponential(24 * np.exp(-1.5 * latent)), 1)
    clinical = pd.DataFrame({"case_id": cases, "centre": centre, "outcome": outcome, "survival_time": time,
                             "event": (rng.uniform(size=n) < 0.8).astype(int), "age": frame["clinical:age"].values,
                             "sex": frame["clinical:sex"].values})
    catalogue = pd.DataFrame({"feature_key": keys, "feature": [f"F{j}" for j in range(p)], "settings_id": "s1",
                              "roi": "GTV", "ibsi_code": [f"F{j:03d}" for j in range(p)], "aggregation": "none"})
    return frame, catalogue, clinical


def auc_row(result, model_id=None):
    m = result.frames()["metrics"]
    row = m[(m["metric"] == "auc") & (m["validation"] == "cv")]
    if model_id:
        row = row[row["model_id"] == model_id]
    return row.iloc[0]


def test_no_outer_test_case_reaches_any_fit(monkeypatch):
    frame, _, clinical = cohort(0)
    seen: list[set] = []
    original = harmonisation.Harmoniser.fit

    def spy(self, X, y=None):
        seen.append(set(X.index))
        return original(self, X, y)

    monkeypatch.setattr(harmonisation.Harmoniser, "fit", spy)
    config = StudyConfig.from_dict({**FAST, "outer_repeats": 2})
    from radflow.modelling.models import LEARNERS, make_model

    model = make_model("logistic_l2", "combined", config.preprocessing, 3)
    y = clinical["outcome"].to_numpy()
    centre = frame["clinical:centre"].to_numpy()
    splits = validation.outer_splits(y, centre, config.cv)
    assert len(splits) == 10
    for repeat, fold, train, test in splits:
        seen.clear()
        validation._outer_fold(model, LEARNERS["logistic_l2"].grid, frame, y, centre, repeat, fold, train, test,
                               config.cv)
        assert len(seen) == config.cv.inner_folds + 1  # every inner split, then the refit
        test_cases = set(frame.index[test])
        assert all(not (cases & test_cases) for cases in seen)
        assert seen[-1] == set(frame.index[train])


def test_planted_signal_is_found():
    frame, catalogue, clinical = cohort(1)
    result = run_study(frame, catalogue, clinical, StudyConfig.from_dict(FAST))
    row = auc_row(result)
    assert row["value"] > 0.75 and row["ci_lower"] > 0.5
    features = result.frames()["model_features"]
    top = features.sort_values("selection_frequency", ascending=False)["ibsi_code"].head(2)
    assert set(top) == {"F000", "F001"}


def _leaky_permuted_auc(frame, catalogue, clinical, seed: int) -> float:
    """The classic mistake: mRMR on all cases (with the permuted outcome) before cross-validating."""
    config = StudyConfig.from_dict({**FAST, "permute_outcome": True, "seed": seed})
    from radflow.modelling.study import targets

    _, y = targets(clinical, frame.index, config, "binary")
    radiomic = [c for c in frame.columns if not c.startswith("clinical:")]
    chosen = [radiomic[i] for i in mrmr_order(frame[radiomic].to_numpy(), y, 10)]
    leaky = frame[chosen + [c for c in frame.columns if c.startswith("clinical:")]]
    config = StudyConfig.from_dict({**FAST, "permute_outcome": True, "seed": seed,
                                    "selection": {"method": "none"}, "redundancy": {"method": "none"}})
    return auc_row(run_study(leaky, catalogue, clinical, config))["value"]


def test_permuted_outcome_gives_chance_and_a_leaky_pipeline_does_not():
    frame, catalogue, clinical = cohort(2, p=200)
    honest = []
    for seed in range(4):
        config = StudyConfig.from_dict({**FAST, "permute_outcome": True, "seed": seed})
        honest.append(auc_row(run_study(frame, catalogue, clinical, config)))
    values = np.array([r["value"] for r in honest])
    covered = sum(r["ci_lower"] <= 0.5 <= r["ci_upper"] for r in honest)
    assert abs(values.mean() - 0.5) < 0.08
    assert covered >= 3
    leaky = np.array([_leaky_permuted_auc(frame, catalogue, clinical, seed) for seed in range(2)])
    assert leaky.min() > 0.75  # selection outside the folds manufactures a "signal" from a shuffled outcome


def test_centre_only_signal_is_removed_by_combat_inside_the_folds():
    frame, catalogue, clinical = cohort(4, n=100, p=20, centre_shift=1.5, centre_prevalence=(0.8, 0.2))
    base = {**FAST, "outer_repeats": 2}
    raw = auc_row(run_study(frame, catalogue, clinical,
                            StudyConfig.from_dict({**base, "harmonisation": {"method": "none"}})))
    combat = auc_row(run_study(frame, catalogue, clinical, StudyConfig.from_dict(base)))
    assert raw["ci_lower"] > 0.5 and raw["value"] > 0.7  # the centre effect predicts the centre's prevalence
    assert combat["ci_lower"] <= 0.5 <= combat["ci_upper"]
    assert combat["value"] < 0.6


def _frames(n_jobs: int, seed: int = 5):
    frame, catalogue, clinical = cohort(5, n=40, p=20)
    config = StudyConfig.from_dict({**FAST, "outer_repeats": 2, "seed": seed, "n_permutations": 1,
                                    "n_bootstrap": 50, "n_bootstrap_procedure": 2,
                                    "binary_models": ["logistic_l1/radiomics", "logistic_l2/combined"],
                                    "survival_models": ["cox_ridge/radiomics"]})
    return run_study(frame, catalogue, clinical, config, n_jobs=n_jobs).frames()


def test_same_config_and_seed_give_identical_results_serial_and_parallel():
    first, again, parallel = _frames(1), _frames(1), _frames(2)
    for name in ("metrics", "predictions", "model_features", "models"):
        pd.testing.assert_frame_equal(first[name], again[name])
        pd.testing.assert_frame_equal(first[name], parallel[name])
    other = _frames(1, seed=6)
    assert not first["predictions"]["probability"].equals(other["predictions"]["probability"])


def test_external_validation_on_a_held_out_centre():
    frame, catalogue, clinical = cohort(6, n=100, centre_shift=0.5)
    config = StudyConfig.from_dict({**FAST, "held_out_centre": "B"})
    result = run_study(frame, catalogue, clinical, config)
    frames = result.frames()
    predictions, metrics = frames["predictions"], frames["metrics"]
    b_cases = set(clinical.loc[clinical["centre"] == "B", "case_id"])
    assert set(predictions.loc[predictions["validation"] == "external", "case_id"]) == b_cases
    assert not set(predictions.loc[predictions["validation"] == "cv", "case_id"]) & b_cases
    external = metrics[(metrics["validation"] == "external") & (metrics["metric"] == "auc")].iloc[0]
    assert external["n_cases"] == 50 and external["ci_lower"] > 0.5
    assert {"sensitivity", "specificity", "brier", "calibration_slope"} <= set(metrics["metric"])
    assert frames["models"]["n_external_cases"].iloc[0] == 50


def test_survival_model_finds_the_prognostic_signal():
    frame, catalogue, clinical = cohort(7, n=80)
    config = StudyConfig.from_dict({**FAST, "binary_models": [], "survival_models": ["cox_ridge/radiomics"]})
    metrics = run_study(frame, catalogue, clinical, config).frames()["metrics"]
    c = metrics[metrics["metric"] == "c_index"].iloc[0]
    assert c["value"] > 0.6 and c["ci_lower"] > 0.5


@pytest.mark.parametrize("censored", [0, 3])
def test_survival_with_complete_follow_up_is_modelled(censored):
    """Every patient (or all but 3) had the event: nothing to stratify on, and a Cox model needs no censored case."""
    frame, catalogue, clinical = cohort(7, n=80)
    clinical["event"] = (clinical.index >= censored).astype(int)
    config = StudyConfig.from_dict({**FAST, "binary_models": [], "survival_models": ["cox_ridge/radiomics"],
                                    "n_bootstrap_procedure": 4})
    frames = run_study(frame, catalogue, clinical, config).frames()
    assert frames["models"]["status"].tolist() == ["ok"]
    c = frames["metrics"].set_index("metric").loc["c_index"]
    assert c["value"] > 0.6 and c["ci_lower"] < c["value"] < c["ci_upper"]


def test_survival_with_fewer_events_than_folds_is_skipped_naming_the_events():
    frame, catalogue, clinical = cohort(7, n=80)
    clinical["event"] = (clinical.index < 4).astype(int)
    config = StudyConfig.from_dict({**FAST, "binary_models": [], "survival_models": ["cox_ridge/radiomics"]})
    status = run_study(frame, catalogue, clinical, config).frames()["models"]["status"].tolist()
    assert status == ["skipped: the cohort has 4 events, fewer than the 5 outer folds"]


def test_an_outcome_coded_yes_no_is_an_error_not_a_guess():
    frame, catalogue, clinical = cohort(7, n=40)
    clinical["outcome"] = clinical["outcome"].map({1: "yes", 0: "no"})
    with pytest.raises(OutcomeCodingError, match="column 'outcome' must be coded 0/1"):
        run_study(frame, catalogue, clinical, StudyConfig.from_dict(FAST))


def test_no_clinical_row_or_no_outcome_value_is_the_reason_given():
    frame, catalogue, clinical = cohort(7, n=40)
    config = StudyConfig.from_dict({**FAST, "survival_models": ["cox_ridge/radiomics"]})
    renamed = clinical.assign(case_id="other-" + clinical["case_id"])  # ids that match no image's PatientID
    status = run_study(frame, catalogue, renamed, config).frames()["models"]["status"].tolist()
    assert status == ["skipped: no case with features has a row in the clinical table (40 rows): its patient_id "
                      "must equal the DICOM PatientID exactly"] * 2
    emptied = clinical.assign(outcome=None, event=None)
    status = run_study(frame, catalogue, emptied, config).frames()["models"]["status"].tolist()
    assert status == ["skipped: none of the 40 cases with features and a clinical row has a value in outcome",
                      "skipped: none of the 40 cases with features and a clinical row has a value in survival_time "
                      "and event"]


def test_too_small_a_cohort_is_skipped_with_its_reason():
    frame, catalogue, clinical = cohort(8, n=6)
    result = run_study(frame, catalogue, clinical, StudyConfig.from_dict(FAST))
    frames = result.frames()
    assert frames["models"]["status"].iloc[0].startswith("skipped: the smaller outcome class")
    assert frames["predictions"].empty and frames["metrics"].empty


@pytest.mark.parametrize("spec", ["binary:" + m for m in ("logistic_l1", "logistic_l2", "logistic_elastic_net",
                                                             "random_forest", "svm", "gradient_boosting")]
                         + ["survival:cox_ridge", "survival:cox_elastic_net"])
def test_every_learner_runs_and_reports_its_inputs(spec, recwarn):
    task, learner = spec.split(":")
    frame, catalogue, clinical = cohort(9, n=48, p=12)
    config = StudyConfig.from_dict({
        **FAST, "outer_folds": 3, "inner_folds": 2, "n_bootstrap": 20,
        "binary_models": [f"{learner}/combined"] if task == "binary" else [],
        "survival_models": [f"{learner}/combined"] if task == "survival" else []})
    result = run_study(frame, catalogue, clinical, config)
    frames = result.frames()
    assert frames["models"]["status"].iloc[0] == "ok"
    assert frames["metrics"]["value"].notna().any()
    features = frames["model_features"]
    assert features["in_final_model"].any() and (features["selection_frequency"] > 0).any()
    assert np.all(np.isfinite(frames["predictions"]["probability" if task == "binary" else "risk_score"]))
    assert not [w for w in recwarn if issubclass(w.category, (FutureWarning, DeprecationWarning))]


@pytest.mark.parametrize("text", ["perceptron/radiomics", "logistic_l1/everything", "cox_ridge/radiomics"])
def test_unknown_model_spec_is_an_error(text):
    with pytest.raises(ValueError):
        StudyConfig.from_dict({"binary_models": [text]})
