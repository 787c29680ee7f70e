"""How clinical outcome columns may be coded (radflow.modelling.outcome_coding): 0/1 and true/false in any of the
forms a CSV or pandas gives them, missing cells as missing, and every other coding refused with the values found."""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from radflow.modelling.outcome_coding import OutcomeCodingError, indicator, survival_times


def as_list(values):
    return [None if math.isnan(v) else v for v in values]


@pytest.mark.parametrize("values", [
    [1, 0, None], ["1", "0", ""], [1.0, 0.0, float("nan")], ["1.0", "0.00", "NA"], [True, False, None],
    ["TRUE", "false", " "], list(np.array([1, 0, 2])[:2]) + [None]])
def test_zero_one_in_every_form_reads_as_zero_one(values):
    assert as_list(indicator(values, "outcome", "death")) == [1.0, 0.0, None]


def test_what_pandas_reads_from_a_csv_column():
    column = pd.Series([1, 0, None], dtype="Int64")  # an integer column with a missing cell
    assert as_list(indicator(column, "outcome", "death")) == [1.0, 0.0, None]
    column = pd.read_csv(io.StringIO("o\nTRUE\nFALSE\n"))["o"]  # pandas reads these as booleans
    assert indicator(column, "o", "death") == [1.0, 0.0]


@pytest.mark.parametrize("values, shown", [
    ([1, 2, 2], "'2'"), (["yes", "no"], "'no', 'yes'"), ([0, 1, 2], "'2'"), ([0.5, 1], "'0.5'"),
    (["dead", "alive", "1"], "'alive', 'dead'")])
def test_any_other_coding_is_refused_with_the_values_found(values, shown):
    with pytest.raises(OutcomeCodingError, match=f"column 'y' must be coded 0/1 \\(1 = death\\) or true/false; "
                                                 f"it holds {shown}. Recode it"):
        indicator(values, "y", "death")


def test_an_r_style_status_column_gets_the_hint_only_as_an_event():
    with pytest.raises(OutcomeCodingError, match=r"R's Surv\(\) status, 1 = censored and 2 = event: subtract 1"):
        indicator([1, 2, 1], "status", "the event happened", event=True)
    with pytest.raises(OutcomeCodingError) as error:
        indicator([1, 2, 1], "outcome", "the outcome of interest")
    assert "Surv" not in str(error.value)


def test_survival_times():
    assert as_list(survival_times([0, "12.5", None, 3], "t")) == [0.0, 12.5, None, 3.0]
    with pytest.raises(OutcomeCodingError, match=r"'t' must hold survival times as numbers >= 0; 3 value\(s\) are "
                                                 r"not: '-1', '12 months', 'inf'"):
        survival_times([-1, "12 months", float("inf"), 5], "t")
