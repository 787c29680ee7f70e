"""Stability stage: long feature rows -> repeated-measurement arrays -> stability table -> stable features."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.pipeline.stability import run_stability
from radflow.stability.design import designs_for_perturbation, pivot, designs_for_segmentation, designs_for_test_retest
from radflow.stability.options import StabilityOptions
from radflow.stability.selection import fraction_kept_by_family, select_stable
from radflow.stability.summary import stability_statistics
from radflow.stability.table import STABILITY_COLUMNS

# (family, feature, ibsi_code, aggregation, between-case SD, measurement-noise SD)
FEATURES = [
    ("morphology", "Volume (mesh)", "RNU0", "none", 1000.0, 50.0),
    ("statistics", "Mean", "Q4LE", "none", 20.0, 2.0),
    ("statistics", "Kurtosis", "IPH6", "none", 1.0, 3.0),
    ("glcm", "Joint entropy", "TU9B", "3D, averaged", 0.5, 0.05),
    ("glcm", "Joint entropy", "TU9B", "3D, merged", 0.5, 0.05),
    ("glcm", "Contrast", "ACUI", "3D, averaged", 1.0, 2.0),
]


def long_rows(rng, n_cases=60, scans=("test", "retest"), rois=("GTV",), settings_ids=("s1",)) -> pd.DataFrame:
    """Feature rows: value = case effect + independent noise per scan/roi, as the features stage writes them."""
    rows = []
    for family, feature, code, aggregation, between, noise in FEATURES:
        for settings_id in settings_ids:
            case_effect = between * rng.standard_normal(n_cases) + 3 * between
            for roi in rois:
                for scan in scans:
                    values = case_effect + noise * rng.standard_normal(n_cases)
                    rows += [(f"case-{i:03d}", scan, roi, settings_id, family, feature, code, aggregation, v, None)
                             for i, v in enumerate(values)]
    columns = ["case_id", "scan", "roi", "settings_id", "family", "feature", "ibsi_code", "aggregation", "value",
               "reason"]
    return pd.DataFrame(rows, columns=columns)


def test_pivot_is_independent_of_row_order_and_marks_missing_rows():
    rows = long_rows(np.random.default_rng(0), n_cases=5)
    keys, subjects, values = pivot(rows, "case_id", "scan", ["test", "retest"])
    shuffled = rows.sample(frac=1.0, random_state=3)
    keys2, subjects2, values2 = pivot(shuffled.drop(index=shuffled.index[:1]), "case_id", "scan", ["test", "retest"])
    assert subjects == subjects2 == [f"case-{i:03d}" for i in range(5)]
    assert keys.equals(keys2) and values.shape == (6, 5, 2)
    assert np.isnan(values2).sum() == 1
    assert np.array_equal(values[~np.isnan(values2)], values2[~np.isnan(values2)])
    row = rows.iloc[7]
    f = keys.index[(keys.ibsi_code == row.ibsi_code) & (keys.aggregation == row.aggregation)][0]
    assert values[f, subjects.index(row.case_id), ["test", "retest"].index(row.scan)] == row.value
    with pytest.raises(ValueError, match="more than one value"):
        pivot(pd.concat([rows, rows.iloc[:1]]), "case_id", "scan", ["test", "retest"])


def test_designs_pair_the_right_rows():
    rng = np.random.default_rng(1)
    test_retest = long_rows(rng, n_cases=8, rois=("GTV", "GTV_b"), settings_ids=("s1", "s2"))
    test_retest = test_retest[~((test_retest.case_id == "case-003") & (test_retest.scan == "retest"))]
    designs = list(designs_for_test_retest(test_retest))
    assert [(d.settings_id, d.roi, d.method) for d in designs] == [
        ("s1", "GTV", "test-retest"), ("s1", "GTV_b", "test-retest"),
        ("s2", "GTV", "test-retest"), ("s2", "GTV_b", "test-retest")]
    assert "case-003" in designs[0].subjects and "case-003" not in designs[0].subjects_used()

    observers = long_rows(rng, n_cases=8, rois=("GTV_a", "GTV_b", "GTV_c"))
    (seg,) = designs_for_segmentation(observers, {"GTV": ["GTV_a", "GTV_b", "GTV_c"]})
    assert (seg.roi, seg.method, seg.measurements, seg.values.shape) == ("GTV", "segmentation",
                                                                         ["GTV_a", "GTV_b", "GTV_c"], (6, 8, 3))
    test_only = observers[observers.scan == "test"]
    expected = test_only[(test_only.roi == "GTV_b") & (test_only.ibsi_code == "RNU0")].sort_values("case_id")
    assert np.array_equal(seg.values[list(seg.features.ibsi_code).index("RNU0"), :, 1], expected.value.to_numpy())
    with pytest.raises(ValueError, match="at least two"):
        list(designs_for_segmentation(observers, {"GTV": ["GTV_a"]}))

    perturbed = long_rows(rng, n_cases=4, scans=("test",))
    perturbed = pd.concat([perturbed.assign(perturbation=f"p{i:03d}") for i in range(3)], ignore_index=True)
    (pert,) = designs_for_perturbation(perturbed)
    assert pert.measurements == ["p000", "p001", "p002"] and pert.values.shape == (6, 4, 3)


def test_stability_stage_keeps_the_reproducible_features(tmp_path):
    rng = np.random.default_rng(2)
    rows = long_rows(rng, n_cases=60)
    files = []
    for b, cases in enumerate(np.array_split(sorted(rows.case_id.unique()), 3)):  # three batches
        path = tmp_path / f"b{b}" / "features.parquet"
        path.parent.mkdir()
        rows[rows.case_id.isin(cases)].to_parquet(path, index=False)
        files.append(path)
    outputs = [tmp_path / "stability" / name for name in ("stability.parquet", "stable.parquet", "cases.parquet")]
    run_stability(StabilityOptions.from_dict({}), files, [], *outputs)
    stability, stable, cases = (pd.read_parquet(p) for p in outputs)

    assert list(stability.columns) == STABILITY_COLUMNS and len(stability) == len(FEATURES)
    assert set(stability.method) == {"test-retest"} and set(stability.icc_form) == {"ICC(2,1)"}
    assert set(stability.n) == {60} and len(cases) == 60
    # Noise SD 3 against a case SD of 1 (kurtosis, contrast): ICC ~ 0.1-0.2, never kept.
    assert sorted(zip(stable.ibsi_code, stable.aggregation)) == [
        ("Q4LE", "none"), ("RNU0", "none"), ("TU9B", "3D, averaged"), ("TU9B", "3D, merged")]
    # The stored numbers are those of the statistics on the pivoted arrays.
    volume = rows[rows.ibsi_code == "RNU0"].pivot(index="case_id", columns="scan", values="value")
    direct = stability_statistics(volume[["test", "retest"]].to_numpy()[None])
    row = stability[stability.ibsi_code == "RNU0"].iloc[0]
    for name, value in direct.items():
        assert row[name] == pytest.approx(value[0], abs=1e-12)
    kept = fraction_kept_by_family(stability, stable).set_index("family")
    assert kept.loc["glcm", "assessed"] == 3 and kept.loc["glcm", "kept"] == 2
    assert kept.loc["statistics", "fraction_kept"] == 0.5


def test_segmentation_and_test_retest_together(tmp_path):
    # Three observers' ROIs of one lesion on test and retest scans: both methods, one stable set per roi name.
    rows = long_rows(np.random.default_rng(4), n_cases=30, rois=("GTV_a", "GTV_b", "GTV_c"))
    rows.to_parquet(tmp_path / "features.parquet", index=False)
    options = StabilityOptions.from_dict({"method": ["segmentation", "test-retest"], "icc_form": "ICC(3,1)",
                                          "segmentation_groups": {"GTV": ["GTV_a", "GTV_b", "GTV_c"]}})
    outputs = [tmp_path / name for name in ("stability.parquet", "stable.parquet", "cases.parquet")]
    run_stability(options, [tmp_path / "features.parquet"], [], *outputs)
    stability, stable, cases = (pd.read_parquet(p) for p in outputs)
    counts = stability.groupby(["roi", "method", "k"]).size().to_dict()
    assert counts == {("GTV", "segmentation", 3): 6, ("GTV_a", "test-retest", 2): 6,
                      ("GTV_b", "test-retest", 2): 6, ("GTV_c", "test-retest", 2): 6}
    assert set(stability.icc_form) == {"ICC(3,1)"}
    assert stability[stability.method == "segmentation"].ccc_ci_low.isna().all()  # no interval for k = 3
    assert set(stable.roi) == {"GTV", "GTV_a", "GTV_b", "GTV_c"}
    assert len(cases) == 4 * 30


def test_a_feature_must_pass_every_method_and_nan_fails():
    base = {"settings_id": "s1", "roi": "GTV", "family": "glcm", "feature": "Contrast", "aggregation": "3D"}
    stability = pd.DataFrame([
        {**base, "ibsi_code": "A", "method": "test-retest", "ci_low": 0.9},
        {**base, "ibsi_code": "A", "method": "perturbation", "ci_low": 0.7},
        {**base, "ibsi_code": "B", "method": "test-retest", "ci_low": 0.8},
        {**base, "ibsi_code": "B", "method": "perturbation", "ci_low": 0.76},
        {**base, "ibsi_code": "C", "method": "test-retest", "ci_low": np.nan},
    ])
    stable = select_stable(stability, 0.75)
    assert list(stable.ibsi_code) == ["B"]
    assert stable.iloc[0].methods == "perturbation,test-retest" and stable.iloc[0].min_ci_low == 0.76
    assert select_stable(stability.iloc[:0], 0.75).empty


def test_options_defaults_and_validation():
    options = StabilityOptions.from_dict(None)
    assert options.methods == ("test-retest",) and options.icc_form == "ICC(2,1)"
    assert options.icc_form_of("perturbation") == "ICC(1,1)" and options.min_icc_ci_low == 0.75
    both = StabilityOptions.from_dict({"method": ["perturbation", "test-retest"], "perturbation": {"n_perturbations": 4}})
    assert both.methods == ("test-retest", "perturbation") and both.perturbation.n_perturbations == 4
    for bad, message in (({"method": "bootstrap"}, "stability.method"), ({"icc_form": "ICC(2,k)"}, "unknown ICC"),
                         ({"method": "segmentation"}, "segmentation_groups"), ({"threshold": 0.8}, "unknown")):
        with pytest.raises(ValueError, match=message):
            StabilityOptions.from_dict(bad)


def test_a_cohort_without_retest_scans_gets_a_message_not_nan_iccs(tmp_path, caplog):
    rows = long_rows(np.random.default_rng(3), n_cases=10, scans=("test",))
    path = tmp_path / "features.parquet"
    rows.to_parquet(path, index=False)
    outputs = [tmp_path / name for name in ("stability.parquet", "stable.parquet", "cases.parquet")]
    with caplog.at_level("WARNING"):
        run_stability(StabilityOptions.from_dict({}), [path], [], *outputs)
    stability, stable = pd.read_parquet(outputs[0]), pd.read_parquet(outputs[1])
    assert stability.empty and stable.empty
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "0 of 10 cases have both a test and a retest scan (scans found: test)" in message
    assert "stability.method: perturbation" in message


def test_one_retest_pair_is_not_enough_for_an_icc(tmp_path, caplog):
    rows = long_rows(np.random.default_rng(4), n_cases=5)
    rows = rows[(rows.scan == "test") | (rows.case_id == "case-000")]
    path = tmp_path / "features.parquet"
    rows.to_parquet(path, index=False)
    outputs = [tmp_path / name for name in ("stability.parquet", "stable.parquet", "cases.parquet")]
    with caplog.at_level("WARNING"):
        run_stability(StabilityOptions.from_dict({}), [path], [], *outputs)
    assert pd.read_parquet(outputs[0]).empty
    assert "1 of 5 cases have both" in " ".join(r.getMessage() for r in caplog.records)
