"""Delta features and the smallest detectable change (radflow.delta) on small hand-made tables."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from radflow.delta import delta_features, sdc_table
from radflow.timepoints import follow_up_index, split_label


def rows(case, scan, settings, values, roi="GTV"):
    """Feature rows: ``values`` {ibsi_code: value}."""
    return [{"case_id": case, "scan": scan, "roi": roi, "settings_id": settings, "family": "f", "feature": code,
             "ibsi_code": code, "aggregation": "3D", "value": v, "reason": ""} for code, v in values.items()]


TEST = {"c1": 10.0, "c2": 20.0, "c3": 30.0, "c4": 40.0}
RETEST = {"c1": 11.0, "c2": 19.5, "c3": 32.0, "c4": 40.5}


def test_sdc_is_1_96_sqrt2_sem_with_sem_from_the_anova_error_mean_square():
    table = pd.DataFrame([r for c in TEST for r in rows(c, "test", "s", {"A": TEST[c]})
                          + rows(c, "retest", "s", {"A": RETEST[c]})])
    d = np.array([RETEST[c] - TEST[c] for c in TEST])
    # two measurements: residual MS = var(d)/2 and within-subject MS = sum(d^2)/(2n) (independent of the ANOVA code)
    two_way = sdc_table(table, "ICC(2,1)").iloc[0]
    assert two_way["sdc"] == pytest.approx(1.96 * math.sqrt(2) * math.sqrt(d.var(ddof=1) / 2), rel=1e-12)
    assert two_way["sdc"] == pytest.approx(1.96 * d.std(ddof=1), rel=1e-12)  # the Bland-Altman form
    one_way = sdc_table(table, "ICC(1,1)").iloc[0]
    assert one_way["sdc"] == pytest.approx(1.96 * math.sqrt(2) * math.sqrt((d**2).sum() / (2 * len(d))), rel=1e-12)
    assert two_way["sdc_n"] == 4


def scans_table(entries):
    return pd.DataFrame(entries, columns=["case_id", "scan", "status", "days_from_baseline"])


def test_delta_features_equal_hand_differences_with_the_sdc_beside_them():
    features = []
    for c in TEST:
        features += rows(c, "test", "s", {"A": TEST[c], "B": 0.0}) + rows(c, "retest", "s", {"A": RETEST[c]})
    features += rows("c1", "fu1", "s", {"A": 7.0, "B": 2.0}) + rows("c2", "fu1", "s", {"A": 35.0})
    scans = scans_table([(c, s, "pass", 0) for c in TEST for s in ("test", "retest")]
                        + [("c1", "fu1", "pass", 91), ("c2", "fu1", "warn", 84)])
    delta, qc = delta_features(pd.DataFrame(features), scans)
    got = {(r.case_id, r.ibsi_code): r for r in delta.itertuples()}
    assert set(got) == {("c1", "A"), ("c1", "B"), ("c2", "A")}
    assert got["c1", "A"].delta_absolute == 7.0 - 10.0 and got["c1", "A"].delta_relative == pytest.approx(-0.3)
    assert got["c2", "A"].delta_absolute == 15.0 and got["c2", "A"].days_between == 84
    assert math.isnan(got["c1", "B"].delta_relative)  # baseline 0: relative change undefined
    sdc = 1.96 * np.std([RETEST[c] - TEST[c] for c in TEST], ddof=1)
    assert got["c1", "A"].sdc == pytest.approx(sdc) and got["c1", "A"].exceeds_sdc == (3.0 > sdc)
    assert got["c2", "A"].exceeds_sdc is True and got["c1", "B"].exceeds_sdc is None  # B has no retest: no SDC
    assert qc.empty


def test_mixed_settings_are_refused_with_a_qc_reason_and_missing_baselines_reported():
    features = (rows("c1", "test", "old", {"A": 1.0}) + rows("c1", "test", "s", {"B": 1.0})
                + rows("c1", "fu1", "new", {"A": 2.0}) + rows("c1", "fu1", "s", {"B": 3.0})
                + rows("c2", "pt_fu1", "p", {"A": 5.0}))
    scans = scans_table([("c1", "test", "pass", 0), ("c1", "fu1", "pass", 30), ("c2", "test", "pass", 0),
                         ("c2", "pt_test", "fail", 0), ("c2", "pt_fu1", "pass", 30)])
    delta, qc = delta_features(pd.DataFrame(features), scans)
    assert list(zip(delta["case_id"], delta["settings_id"], delta["delta_absolute"])) == [("c1", "s", 2.0)]
    codes = {(r.case_id, r.scan, r.check_code) for r in qc.itertuples()}
    assert codes == {("c1", "fu1", "DELTA_SETTINGS_MISMATCH"), ("c2", "pt_fu1", "DELTA_BASELINE_MISSING")}
    message = qc.loc[qc["check_code"] == "DELTA_SETTINGS_MISMATCH", "message"].iloc[0]
    assert "'old'" in message and "'new'" in message


def test_scan_labels_split_into_modality_and_timepoint():
    assert split_label("pt_fu2") == ("pt_", "fu2") and split_label("fu1_retest") == ("", "fu1_retest")
    assert split_label("mr_test") == ("mr_", "test") and split_label("my_scan") == ("", "my_scan")
    assert follow_up_index("pt_fu2") == 2 and follow_up_index("fu1_retest") is None
