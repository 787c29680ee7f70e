"""The long feature table into the modelling matrix (radflow.modelling.data.feature_matrix)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radflow.modelling.data import feature_matrix


def long_features(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for code, column in values.items():
        for i, value in enumerate(column):
            rows.append({"case_id": f"case-{i}", "scan": "test", "roi": "GTV", "settings_id": "s", "feature": code,
                         "ibsi_code": code, "aggregation": "3D", "value": value})
    return pd.DataFrame(rows)


def test_infinite_values_are_missing_and_count_against_max_missing(caplog):
    n = 20
    values = {"A": list(np.arange(n, dtype=float)), "B": list(np.arange(n, dtype=float) ** 2),
              "C": [1.0] * n, "D": list(np.arange(n, dtype=float))}
    values["A"][3] = np.inf  # one case in 20: kept, as missing
    values["D"][:5] = [-np.inf] * 5  # a quarter: over max_missing, dropped
    matrix, catalogue = feature_matrix(long_features(values), max_missing=0.1)
    assert list(matrix.columns) == ["GTV|s|A|3D", "GTV|s|B|3D"]  # C constant, D too often missing
    assert np.isnan(matrix.loc["case-3", "GTV|s|A|3D"]) and np.isfinite(matrix.drop(index="case-3").to_numpy()).all()
    assert list(catalogue["ibsi_code"]) == ["A", "B"]
    assert "6 infinite feature value(s) in 2 feature(s) treated as missing" in caplog.text


def test_a_case_without_a_centre_gets_a_named_batch_not_nan():
    from radflow.modelling.data import NO_CENTRE, modelling_frame

    matrix = pd.DataFrame({"F": [1.0, 2.0, 3.0]}, index=pd.Index(["a", "b", "c"], name="case_id"))
    clinical = pd.DataFrame({"case_id": ["a", "b", "c"], "centre": ["X", None, "Y"]})
    frame = modelling_frame(matrix, clinical, "centre", [])
    assert frame["clinical:centre"].tolist() == ["X", NO_CENTRE, "Y"]


def test_two_sequences_under_one_settings_id_are_two_features_not_one():
    """A generic MR settings document on a T2-weighted and an ADC series (``t2w_test``, ``adc_test``): both enter
    the model, as separate columns; before, the pivot kept the first scan's value and dropped the other's."""
    t2 = long_features({"A": [1.0, 2.0, 3.0], "B": [5.0, 3.0, 4.0]}).assign(scan="t2w_test")
    adc = long_features({"A": [10.0, 30.0, 20.0], "B": [7.0, 8.0, 6.0]}).assign(scan="adc_test")
    matrix, catalogue = feature_matrix(pd.concat([t2, adc]), scan="test")
    assert list(matrix.columns) == ["adc:GTV|s|A|3D", "adc:GTV|s|B|3D", "t2w:GTV|s|A|3D", "t2w:GTV|s|B|3D"]
    assert matrix["t2w:GTV|s|A|3D"].tolist() == [1.0, 2.0, 3.0]
    assert matrix["adc:GTV|s|A|3D"].tolist() == [10.0, 30.0, 20.0]
    assert catalogue.set_index("feature_key").at["adc:GTV|s|B|3D", "feature"] == "adc: B"


def test_other_modalities_with_their_own_settings_keep_plain_keys():
    ct = long_features({"A": [1.0, 2.0, 3.0]})
    pet = long_features({"A": [4.0, 6.0, 5.0]}).assign(scan="pt_test", settings_id="p")
    matrix, _ = feature_matrix(pd.concat([ct, pet]), scan="test")
    assert list(matrix.columns) == ["GTV|p|A|3D", "GTV|s|A|3D"]


def test_a_repeated_row_is_an_error_not_a_silent_choice():
    rows = long_features({"A": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="share a case and feature key"):
        feature_matrix(pd.concat([rows, rows.assign(value=9.0)]), scan="test")


def test_delta_features_of_two_sequences_stay_two_features():
    from radflow.modelling.data import delta_rows

    delta = pd.DataFrame({
        "case_id": ["a", "b", "c"] * 2, "roi": "GTV", "settings_id": "s", "feature": "Mean", "ibsi_code": "Q4LE",
        "aggregation": "3D", "timepoint": 1, "followup_scan": ["t2w_fu1"] * 3 + ["adc_fu1"] * 3,
        "delta_absolute": [1.0, 2.0, 3.0, -1.0, -3.0, -2.0]})
    matrix, _ = feature_matrix(delta_rows(delta, 1), scan="delta")
    assert list(matrix.columns) == ["adc:GTV|s|Q4LE|3D", "t2w:GTV|s|Q4LE|3D"]
    assert matrix["adc:GTV|s|Q4LE|3D"].tolist() == [-1.0, -3.0, -2.0]
