"""Reporting standards: the Radiomics Quality Score items and the TRIPOD+AI items a run itself evidences, computed
from the database, with what the user must still supply.

* RQS: Lambin et al., Nat Rev Clin Oncol 2017 (16 items, -8 to 36 points). Points are given only for what the run's
  own tables show; items no pipeline can show (protocol, prospective design, biology, cost) are ``user`` rows with
  0 points and the action the authors must take.
* TRIPOD+AI: Collins et al., BMJ 2024. The items are filled with the run's numbers (study size, events, missing
  data, predictors, selection, validation, performance with intervals); the rest of the checklist is the authors'.

One row per item: ``standard, item, topic, status, points, max_points, evidence, user_action``; ``status`` is
``evidenced`` (the run shows it), ``partly`` (the run shows part, the user completes it), ``not evidenced`` (the run
could show it and did not, e.g. no retest scans) or ``user`` (outside what a pipeline can know). Stored as the
DuckDB table ``reporting`` by the store stage, exported to RDF (``provenance/reporting_rdf.py``) and shown in the
HTML report.
"""
from __future__ import annotations

import json
import math

import duckdb
import pandas as pd

COLUMNS = ["standard", "item", "topic", "status", "points", "max_points", "evidence", "user_action"]
RQS, TRIPOD = "RQS", "TRIPOD+AI"


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
    return row is not None and row[0] > 0


def _scalar(con, sql: str, default=0):
    try:
        row = con.execute(sql).fetchone()
    except duckdb.Error:
        return default
    return default if row is None or row[0] is None else row[0]


def _fmt(value: float) -> str:
    return "NA" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _row(standard, item, topic, status, evidence, user_action="", points=None, max_points=None) -> dict:
    return {"standard": standard, "item": item, "topic": topic, "status": status, "points": points,
            "max_points": max_points, "evidence": evidence, "user_action": user_action}


def _facts(con: duckdb.DuckDBPyConnection) -> dict:
    """The numbers the checklists are filled with."""
    f: dict = {}
    f["cases"] = int(_scalar(con, "SELECT count(*) FROM cases"))
    f["cases_usable"] = int(_scalar(con, "SELECT count(*) FROM cases WHERE status != 'fail'"))
    f["cases_failed"] = f["cases"] - f["cases_usable"]
    f["scans_per_case"] = con.execute("SELECT DISTINCT scan FROM scans ORDER BY scan").fetchall() \
        if _has_table(con, "scans") else []
    f["feature_values"] = int(_scalar(con, "SELECT count(*) FROM features"))
    f["feature_nan"] = int(_scalar(con, "SELECT count(*) FROM features WHERE NOT isfinite(value) OR value IS NULL"))
    f["settings"] = int(_scalar(con, "SELECT count(*) FROM settings"))
    # over the first scan of every kind (test, pt_test, t2w_test): a PET/CT or a multiparametric MR has several
    f["features_per_case"] = int(_scalar(
        con, "SELECT count(DISTINCT (scan, roi, settings_id, ibsi_code, aggregation)) FROM features "
             "WHERE scan = 'test' OR suffix(scan, '_test')"))
    methods = [m for (m,) in con.execute("SELECT DISTINCT method FROM stability ORDER BY method").fetchall()] \
        if _has_table(con, "stability") else []
    f["stability_methods"] = methods
    f["stable_features"] = int(_scalar(con, "SELECT count(*) FROM stable_features")) \
        if _has_table(con, "stable_features") else 0
    models = con.execute("SELECT * FROM models ORDER BY model_id").df() if _has_table(con, "models") else pd.DataFrame()
    f["models"] = models
    f["metrics"] = con.execute("SELECT * FROM metrics ORDER BY model_id, validation, metric").df() \
        if _has_table(con, "metrics") else pd.DataFrame()
    config = {}
    if len(models) and models["config"].notna().any():
        config = json.loads(models["config"].dropna().iloc[0])
    f["model_config"] = config
    f["clinical_columns"] = [c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'clinical' ORDER BY ordinal_position"
    ).fetchall()] if _has_table(con, "clinical") else []
    return f


def _metric(f: dict, model_id: str, metric: str, validation: str = "cv"):
    m = f["metrics"]
    if m.empty:
        return None
    row = m[(m["model_id"] == model_id) & (m["metric"] == metric) & (m["validation"] == validation)]
    return None if row.empty else row.iloc[0]


def _performance_text(f: dict, validation: str = "cv") -> str:
    parts = []
    for model_id in f["models"]["model_id"] if len(f["models"]) else []:
        for metric in ("auc", "c_index", "brier", "calibration_slope", "permutation_p_value"):
            row = _metric(f, model_id, metric, validation)
            if row is None:
                continue
            if metric == "permutation_p_value":
                parts.append(f"{model_id} permutation p {_fmt(row['value'])}")
            else:
                parts.append(f"{model_id} {metric} {_fmt(row['value'])} [{_fmt(row['ci_lower'])}, "
                             f"{_fmt(row['ci_upper'])}]")
    return "; ".join(parts)


def rqs_rows(f: dict) -> list[dict]:
    models, config = f["models"], f["model_config"]
    ok = models[models["status"] == "ok"] if len(models) else models
    methods = f["stability_methods"]
    rows = [
        _row(RQS, "1", "Image protocol quality", "partly",
             f"acquisition tags (modality, manufacturer, kernel, kVp, spacing) stored per scan; QC checks on "
             f"{f['cases']} cases", "document the imaging protocol (+1) and state whether it is public (+1)",
             0, 2),
        _row(RQS, "2", "Multiple segmentations", "evidenced" if {"segmentation", "perturbation"} & set(methods)
             else "not evidenced",
             f"stability methods run: {', '.join(methods) or 'none'}",
             "" if {"segmentation", "perturbation"} & set(methods) else
             "add segmentation_groups (several observers) or the perturbation method",
             1 if {"segmentation", "perturbation"} & set(methods) else 0, 1),
        _row(RQS, "3", "Phantom study on all scanners", "partly",
             "the feature engine reproduces the IBSI digital and CT phantom reference values (radflow test suite)",
             "scan a phantom on every scanner of the study to detect inter-scanner differences", 0, 1),
        _row(RQS, "4", "Imaging at multiple time points (test-retest)",
             "evidenced" if "test-retest" in methods else "not evidenced",
             f"test-retest ICC per feature; {f['stable_features']} features kept" if "test-retest" in methods
             else "no retest scans", "" if "test-retest" in methods else "add same-day retest scans",
             1 if "test-retest" in methods else 0, 1),
    ]
    reduction = bool(len(ok)) and (config.get("selection", {}).get("method") not in (None, "none")
                                  or config.get("redundancy", {}).get("method") not in (None, "none"))
    rows.append(_row(RQS, "5", "Feature reduction or adjustment for multiple testing",
                     "evidenced" if reduction else "not evidenced",
                     (f"{f['features_per_case']} candidate features -> {f['stable_features']} stable -> redundancy "
                      f"{config.get('redundancy', {}).get('method')} -> selection "
                      f"{config.get('selection', {}).get('method')}, inside the cross-validation folds")
                     if reduction else "no feature reduction configured", "", 3 if reduction else -3, 3))
    feature_sets = set(ok["feature_set"]) if len(ok) else set()
    rows.append(_row(RQS, "6", "Multivariable analysis with non-radiomics features",
                     "evidenced" if "combined" in feature_sets else "not evidenced",
                     f"models fitted: {', '.join(ok['model_id']) if len(ok) else 'none'}",
                     "" if "combined" in feature_sets else "configure a combined model",
                     1 if "combined" in feature_sets else 0, 1))
    rows.append(_row(RQS, "7", "Detect and discuss biological correlates", "user", "",
                     "relate the selected features to biology (histology, genomics)", 0, 1))
    thresholds = len(ok) and ok["threshold"].notna().any()
    rows.append(_row(RQS, "8", "Cut-off analyses", "evidenced" if thresholds else "not evidenced",
                     "threshold chosen on inner training folds only (Youden), sensitivity/specificity reported",
                     "", 1 if thresholds else 0, 1))
    discrimination = [r for r in (_metric(f, m, "auc") for m in ok["model_id"]) if r is not None] + \
        [r for r in (_metric(f, m, "c_index") for m in ok["model_id"]) if r is not None] if len(ok) else []
    with_ci = any(r is not None and math.isfinite(r["ci_lower"]) for r in discrimination)
    rows.append(_row(RQS, "9", "Discrimination statistics", "evidenced" if discrimination else "not evidenced",
                     _performance_text(f) or "no model", "", (1 if discrimination else 0) + (1 if with_ci else 0), 2))
    calibration = [r for r in (_metric(f, m, "calibration_slope") for m in ok["model_id"]) if r is not None] \
        if len(ok) else []
    rows.append(_row(RQS, "10", "Calibration statistics", "evidenced" if calibration else "not evidenced",
                     "calibration slope and intercept with 95 % intervals; calibration curves in the report",
                     "", 2 if calibration else 0, 2))
    rows.append(_row(RQS, "11", "Prospective study registered in a trial database", "user", "",
                     "register and run a prospective validation (+7)", 0, 7))
    external = len(ok) and (ok["n_external_cases"].fillna(0) > 0).any()
    rows.append(_row(RQS, "12", "Validation",
                     "evidenced" if external else "partly",
                     f"external validation on held-out centre {config.get('held_out_centre')}" if external else
                     "internal validation only: repeated nested cross-validation with intervals carrying the "
                     "training-set variability and a permutation test per model",
                     "" if external else "validate on an independent cohort (RQS gives -5 without one)",
                     3 if external else -5, 5))
    clinical = [m for m in ok["model_id"] if m.endswith(".clinical")] if len(ok) else []
    delong = [r for r in (_metric(f, m, "delong_p_value") for m in ok["model_id"]) if r is not None] \
        if len(ok) else []
    rows.append(_row(RQS, "13", "Comparison to gold standard",
                     "evidenced" if delong else ("partly" if clinical else "not evidenced"),
                     "DeLong test of combined vs clinical AUC: " + "; ".join(
                         f"p {_fmt(r['value'])}" for r in delong) if delong else
                     ("clinical baseline model fitted" if clinical else "no clinical baseline model"),
                     "name the clinical standard the baseline stands for", 2 if delong else 0, 2))
    rows.append(_row(RQS, "14", "Potential clinical utility",
                     "evidenced" if len(ok) and (ok["task"] == "binary").any() else "not evidenced",
                     "decision curves (net benefit) of every binary model in the report", "",
                     2 if len(ok) and (ok["task"] == "binary").any() else 0, 2))
    rows.append(_row(RQS, "15", "Cost-effectiveness analysis", "user", "", "report a cost-effectiveness analysis",
                     0, 1))
    rows.append(_row(RQS, "16", "Open science and data", "partly",
                     "code open source (radflow) with pinned versions; features, settings and provenance exported "
                     "as RDF; the run can be repeated from the configuration",
                     "publish the scans (+1) and segmentations (+1) where consent allows", 2, 4))
    return rows


def tripod_rows(f: dict) -> list[dict]:
    models, config = f["models"], f["model_config"]
    ok = models[models["status"] == "ok"] if len(models) else models
    binary = ok[ok["task"] == "binary"] if len(ok) else ok
    events = ", ".join(f"{r.model_id}: {r.n_events} events / {r.n_cases} cases" for r in ok.itertuples()) \
        if len(ok) else "no model fitted"
    skipped = models[models["status"] != "ok"] if len(models) else models
    rows = [
        _row(TRIPOD, "8", "Study size", "evidenced" if len(ok) else "not evidenced",
             f"{f['cases']} cases, {f['cases_usable']} usable after QC ({f['cases_failed']} failed QC); {events}",
             "justify the sample size (e.g. Riley et al. criteria)"),
        _row(TRIPOD, "9", "Missing data", "evidenced",
             f"{f['feature_nan']} of {f['feature_values']} feature values undefined (reason stored); features "
             f"missing in more than {config.get('max_missing', 'NA')} of cases dropped; cases without outcome or "
             f"failing QC excluded", "describe missing clinical data and whether it is at random"),
        _row(TRIPOD, "7", "Predictors", "evidenced",
             f"{f['features_per_case']} radiomic features per test scan ({f['settings']} settings documents, IBSI "
             f"codes), covariates {', '.join(config.get('covariates', [])) or 'none'}; "
             f"{f['stable_features']} passed the stability filter",
             "define the clinical predictors and when they are measured"),
        _row(TRIPOD, "12", "Predictor selection and model building", "evidenced" if len(ok) else "not evidenced",
             f"harmonisation {config.get('harmonisation', {}).get('method')}, redundancy "
             f"{config.get('redundancy', {}).get('method')}, selection {config.get('selection', {}).get('method')} "
             f"({config.get('selection', {}).get('n_features')} features), learners "
             f"{', '.join(sorted(set(ok['learner']))) if len(ok) else 'none'}; all inside the folds", ""),
        _row(TRIPOD, "12e", "Internal validation", "evidenced" if len(ok) else "not evidenced",
             f"repeated nested cross-validation ({config.get('outer_folds')} outer folds x "
             f"{config.get('outer_repeats')} repeats, {config.get('inner_folds')} inner folds); 95 % intervals from "
             f"{config.get('n_bootstrap_procedure')} bootstrap reruns of the whole procedure; "
             f"{config.get('n_permutations')} outcome permutations per model", ""),
        _row(TRIPOD, "12f", "External validation",
             "evidenced" if len(ok) and (ok["n_external_cases"].fillna(0) > 0).any() else "user",
             _performance_text(f, "external") or "none in this run", "validate on an independent cohort"),
        _row(TRIPOD, "23", "Model performance with confidence intervals", "evidenced" if len(ok) else "not evidenced",
             _performance_text(f) or "no model", ""),
        _row(TRIPOD, "22", "Full model specification", "evidenced" if len(ok) else "not evidenced",
             "final model files with sha256, coefficients and selection frequencies (models, model_features)", ""),
        _row(TRIPOD, "20", "Participants and flow", "partly",
             f"QC per case and centre (qc table); models skipped: "
             f"{'; '.join(f'{r.model_id} ({r.status})' for r in skipped.itertuples()) or 'none'}",
             "report eligibility criteria, recruitment dates and setting"),
        _row(TRIPOD, "14", "Fairness / subgroups", "user", f"binary models: {len(binary)}",
             "report performance in relevant subgroups (sex, age, centre)"),
        _row(TRIPOD, "3", "Source of data, outcome definition, blinding", "user", "",
             "describe data source, outcome definition and assessment, and blinding"),
        _row(TRIPOD, "18", "Open science: protocol, registration, data and code availability", "partly",
             "code and configuration recorded (models.config, software, files tables; RDF provenance)",
             "state protocol, registration and data availability"),
    ]
    return rows


def reporting_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The ``reporting`` table rows computed from the database behind ``con``."""
    facts = _facts(con)
    frame = pd.DataFrame(rqs_rows(facts) + tripod_rows(facts), columns=COLUMNS)
    return frame
