"""The modelling stage's outputs end to end on a small synthetic cohort: Parquet tables in the store schema, loaded
into DuckDB (replaced whole on reload), metrics recomputable from the stored predictions, the saved model files,
the RDF of models and metrics with their PROV links, and the report figures."""
from __future__ import annotations

import duckdb
import joblib
import numpy as np
import pandas as pd
import pytest
import rdflib
from rdflib import RDF, Namespace, URIRef

from radflow import store
from radflow.modelling import metrics
from radflow.modelling.plots import write_model_figures
from radflow.provenance.model_rdf import MLS, add_models
from radflow.pipeline.model import OUTPUT_TABLES, model_stage
from radflow.pipeline.store import sha256_of
from test_modelling_validation import cohort

PROV = Namespace("http://www.w3.org/ns/prov#")
CONFIG = {"outer_folds": 4, "outer_repeats": 2, "inner_folds": 3, "n_bootstrap": 50, "n_permutations": 2,
          "n_bootstrap_procedure": 3,
          "binary_models": ["logistic_l1/radiomics", "logistic_l2/clinical", "logistic_l2/combined"],
          "survival_models": ["cox_ridge/combined"],
          "held_out_centre": None, "seed": 9}


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model_stage")
    frame, catalogue, clinical = cohort(11, n=56, p=16)
    long = frame.drop(columns=[c for c in frame.columns if c.startswith("clinical:")]).stack().rename("value")
    long = long.reset_index().rename(columns={"level_1": "key"})
    parts = long["key"].str.split("|", expand=True)
    features = pd.DataFrame({"case_id": long["case_id"], "scan": "test", "roi": parts[0], "settings_id": parts[1],
                             "family": "synthetic", "feature": "f " + parts[2], "ibsi_code": parts[2],
                             "aggregation": parts[3], "value": long["value"], "reason": None})
    features.to_parquet(folder / "features.parquet", index=False)
    clinical.to_parquet(folder / "clinical.parquet", index=False)
    out = model_stage([folder / "features.parquet"], [], folder / "clinical.parquet", None, CONFIG,
                      folder / "tables", folder / "models")
    database = folder / "radflow.duckdb"
    con = duckdb.connect(str(database))
    store.create_schema(con)
    tables = {name: folder / "tables" / f"{name}.parquet" for name in OUTPUT_TABLES}
    for _ in range(2):  # a reload replaces, never duplicates
        store._replace_cohort_tables(con, tables, [])
    con.close()
    return folder, out, database


def test_tables_follow_the_store_schema_and_load_once(stage):
    folder, out, database = stage
    con = duckdb.connect(str(database), read_only=True)
    for name in OUTPUT_TABLES:
        assert list(out[name].columns) == store.columns(name)
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == len(out[name]) > 0
    # every case predicted once per repeat, per model
    per_case = con.execute("SELECT model_id, case_id, count(*) FROM predictions WHERE validation = 'cv' "
                           "GROUP BY ALL").fetchall()
    assert {n for *_, n in per_case} == {CONFIG["outer_repeats"]}
    con.close()


def test_stored_predictions_reproduce_the_stored_metrics(stage):
    _, out, _ = stage
    predictions, table = out["predictions"], out["metrics"]
    model = predictions[predictions["model_id"] == "binary.logistic_l1.radiomics"]
    fold_aucs = [metrics.auc(g["outcome"], g["probability"]) for _, g in model.groupby(["repeat", "fold"])]
    pooled_brier = np.mean([metrics.brier(g["outcome"], g["probability"]) for _, g in model.groupby("repeat")])
    row = table.set_index(["model_id", "metric"]).loc["binary.logistic_l1.radiomics"]
    assert row.at["auc", "value"] == pytest.approx(np.mean(fold_aucs), abs=1e-12)
    assert row.at["brier", "value"] == pytest.approx(pooled_brier, abs=1e-12)
    sens = np.mean([metrics.sensitivity_specificity(g["outcome"], g["predicted_class"])[0]
                    for _, g in model.groupby("repeat")])
    assert row.at["sensitivity", "value"] == pytest.approx(sens, abs=1e-12)
    assert 0 < row.at["permutation_p_value", "value"] <= 1
    survival = predictions[predictions["model_id"] == "survival.cox_ridge.combined"]
    c = np.mean([metrics.harrell_c(g["survival_time"], g["outcome"].astype(bool), g["risk_score"], g["fold"])
                 for _, g in survival.groupby("repeat")])
    assert table.set_index(["model_id", "metric"]).at[("survival.cox_ridge.combined", "c_index"), "value"] == \
        pytest.approx(c, abs=1e-12)


def test_saved_models_match_their_checksums_and_predict(stage):
    folder, out, _ = stage
    frame, _, _ = cohort(11, n=56, p=16)
    for row in out["models"].itertuples():
        assert sha256_of(row.model_file) == row.model_sha256
        model = joblib.load(row.model_file)
        if row.task == "binary":
            p = model.predict_proba(frame)[:, 1]
            assert np.all((p >= 0) & (p <= 1))


def test_rdf_links_models_and_metrics_to_features_settings_and_cases(stage):
    _, out, database = stage
    rf = Namespace("https://example.org/radflow/")
    graph = rdflib.Graph()
    con = duckdb.connect(str(database), read_only=True)
    assert add_models(graph, con, rf) == len(out["models"])
    con.close()
    model = rf["model/binary.logistic_l1.radiomics"]
    activity = rf["activity/model/binary.logistic_l1.radiomics"]
    assert (model, RDF.type, MLS.Model) in graph
    assert (model, PROV.wasGeneratedBy, activity) in graph
    used = set(graph.objects(activity, PROV.used))
    assert rf["settings/s1"] in used
    n_cases = out["models"].set_index("model_id").at["binary.logistic_l1.radiomics", "n_cases"]
    assert len([u for u in used if str(u).startswith(str(rf["case/"]))]) == n_cases
    final = out["model_features"].query("model_id == 'binary.logistic_l1.radiomics' and in_final_model")
    values = [u for u in used if str(u).startswith(str(rf["value/"]))]
    assert len(values) == n_cases * len(final)
    evaluation = rf["evaluation/binary.logistic_l1.radiomics/cv/auc"]
    assert (evaluation, RDF.type, MLS.ModelEvaluation) in graph
    assert (evaluation, PROV.wasDerivedFrom, model) in graph
    auc = out["metrics"].query("model_id == 'binary.logistic_l1.radiomics' and metric == 'auc'")["value"].iloc[0]
    assert float(graph.value(evaluation, MLS.hasValue)) == pytest.approx(auc)
    features = list(graph.objects(model, URIRef("https://w3id.org/radflow/vocab#hasModelFeature")))
    assert len(features) == (out["model_features"]["model_id"] == "binary.logistic_l1.radiomics").sum()
    graph.serialize(format="turtle")  # every minted IRI is serialisable


def test_report_figures_are_written(stage, tmp_path):
    _, out, _ = stage
    write_model_figures(out["predictions"], out["metrics"], tmp_path / "roc.png", tmp_path / "cal.png")
    for name in ("roc.png", "cal.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = {name: store.empty_frame(name) for name in ("predictions", "metrics")}
    write_model_figures(empty["predictions"], empty["metrics"], tmp_path / "none.png", tmp_path / "none2.png")
    assert (tmp_path / "none.png").stat().st_size > 1000


def test_every_model_has_a_permutation_p_and_combined_is_compared_with_clinical(stage):
    _, out, _ = stage
    table = out["metrics"].set_index(["model_id", "metric"])
    for model_id in out["models"].query("status == 'ok'")["model_id"]:
        assert 0 < table.at[(model_id, "permutation_p_value"), "value"] <= 1
        headline = "c_index" if model_id.startswith("survival") else "auc"
        low, high = table.loc[(model_id, headline), ["ci_lower", "ci_upper"]]
        assert 0 <= low <= table.at[(model_id, headline), "value"] <= high <= 1
    predictions = out["predictions"].query("validation == 'cv'")
    wide = predictions.pivot_table(index=["repeat", "case_id"], columns="model_id", values="probability")
    outcome = predictions.drop_duplicates(["repeat", "case_id"]).set_index(["repeat", "case_id"])["outcome"]
    tests = [metrics.delong_test(outcome.loc[r].reindex(g.index.get_level_values(1)).to_numpy(),
                                 g["binary.logistic_l2.combined"].to_numpy(), g["binary.logistic_l2.clinical"].to_numpy())
             for r, g in wide.groupby(level=0)]
    difference = np.mean([t["difference"] for t in tests])
    assert table.at[("binary.logistic_l2.combined", "delong_auc_difference"), "value"] == pytest.approx(difference)
    assert 0 < table.at[("binary.logistic_l2.combined", "delong_p_value"), "value"] <= 1


def test_html_report_and_checklists_from_the_model_tables(stage, tmp_path):
    from radflow.html_report import report_html
    from radflow.reporting import reporting_frame

    _, out, database = stage
    con = duckdb.connect(str(database), read_only=True)
    checklist = reporting_frame(con).set_index(["standard", "item"])
    text = report_html(con, [], {})
    con.close()
    assert checklist.at[("RQS", "6"), "status"] == "evidenced"  # a combined model was fitted
    assert checklist.at[("RQS", "13"), "status"] == "evidenced"  # DeLong against the clinical baseline
    assert "permutation p" in checklist.at[("TRIPOD+AI", "23"), "evidence"]
    for model_id in out["models"]["model_id"]:
        assert f"<h3>{model_id}</h3>" in text  # a model card per model
    final = out["model_features"].query("model_id == 'binary.logistic_l1.radiomics' and in_final_model")
    assert all(key in text for key in final["feature_key"])
    assert text.count("data:image/png;base64,") == 4  # ROC, calibration, decision curves; Kaplan-Meier
    assert "decision curves" in text and "Kaplan-Meier curves of the risk groups" in text


def test_risk_groups_split_each_test_fold_at_its_own_median():
    from radflow.html_report import risk_groups, survival_curves_png

    # fold 0 scores on a scale ten times fold 1's: a pooled median would put all of fold 0 in the high group
    predictions = pd.DataFrame({"model_id": "survival.m", "validation": "cv", "repeat": 0,
                                "fold": [0, 0, 0, 0, 1, 1, 1, 1], "risk_score": [10, 20, 30, 40, 1, 2, 3, 4],
                                "survival_time": [9, 8, 2, 1, 9, 7, 3, 2], "outcome": [1, 0, 1, 1, 0, 1, 1, 1]})
    assert risk_groups(predictions).tolist() == [False, False, True, True] * 2
    png = survival_curves_png(pd.concat([predictions, predictions.assign(repeat=1)]))
    assert png is not None and png.startswith(b"\x89PNG")
    assert survival_curves_png(predictions.assign(risk_score=np.nan)) is None  # binary models only


def test_overlay_sheets_of_a_large_cohort_keep_the_report_within_its_budget(tmp_path):
    """Thousands of cases make hundreds of batch sheets: the report embeds them scaled down (JPEG), then as many as
    fit, the batches with a failed or warned case first, and says so; small runs embed every sheet as it is."""
    from PIL import Image

    from radflow.html_report import overlay_sheets
    from radflow.overlay import contact_sheet, overlay_row

    rng = np.random.default_rng(8)
    image = rng.normal(40.0, 30.0, (6, 40, 40))
    mask = np.zeros((6, 40, 40), bool)
    mask[1:5, 10:30, 12:28] = True
    rows = [overlay_row(f"case-{i:04d}  test  GTV", "pass", "", image + i, mask, (2.0, 0.8, 0.8), "CT")
            for i in range(6)]
    sheets = []
    for batch in range(8):
        contact_sheet(rows, tmp_path / f"b{batch:04d}.png")
        sheets.append(tmp_path / f"b{batch:04d}.png")
    total = sum(p.stat().st_size for p in sheets)

    small = overlay_sheets(sheets, set(), budget=10 * total)
    assert small.count("data:image/png;base64,") == 8 and "class='note'" not in small

    scaled = overlay_sheets(sheets, set(), budget=total // 2)
    assert scaled.count("data:image/jpeg;base64,") == 8 and "sheet(s) are not embedded" not in scaled  # all fit
    assert "shown as JPEG at" in scaled and "of their size to keep this report near" in scaled
    assert len(scaled) < total // 2 + 2000  # the budget is the HTML's (base64) bytes; and a note

    tight = overlay_sheets(sheets, {"b0005"}, budget=total // 20)
    shown = sorted((name for name in (f"b{b:04d}" for b in range(8)) if f"<h4>{name}</h4>" in tight),
                   key=lambda name: tight.index(f"<h4>{name}</h4>"))  # in the order the report shows them
    assert shown[0] == "b0005" and len(shown) < 8  # the flagged batch first, then as many as fit
    assert f"{8 - len(shown)} sheet(s) are not embedded" in tight and "shown as JPEG at 35% of their size" in tight
    assert len(tight) < total // 20 + 2000
    with Image.open(sheets[0]) as full:
        assert full.width > 100  # (the files themselves are untouched)


def test_the_report_lists_the_first_qc_problems_and_counts_them_all():
    from radflow.html_report import QC_TABLE_ROWS, _qc_section

    con = duckdb.connect()
    con.execute("CREATE TABLE cases AS SELECT 'case-' || i AS case_id, 'warn' AS status FROM range(700) t(i)")
    con.execute("CREATE TABLE qc AS SELECT 'case-' || i AS case_id, 'test' AS scan, '' AS roi, "
                "CASE WHEN i < 3 THEN 'MASK_EMPTY' ELSE 'RETEST_MISSING' END AS check_code, "
                "CASE WHEN i < 3 THEN 'fail' ELSE 'warn' END AS severity, 'why' AS message FROM range(700) t(i)")
    text = _qc_section(con, [])
    assert f"The first {QC_TABLE_ROWS} of 700 rows (failures first)" in text
    assert "<td>RETEST_MISSING</td><td>697</td>" in text.replace("<td>warn</td>", "")
    assert text.count("<td>why</td>") == QC_TABLE_ROWS
    assert text.index("MASK_EMPTY</td><td>fail") < text.index("RETEST_MISSING</td><td>warn")
