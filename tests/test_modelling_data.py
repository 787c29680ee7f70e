"""The long feature table into the modelling matrix (radflow.modelling.data.feature_matrix)."""
from __future__ import annotations

import numpy as np
import pandas as pd

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
