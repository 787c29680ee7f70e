"""Every stability statistic of a set of repeated measurements, from one pass over the data."""
from __future__ import annotations

import numpy as np

from radflow.stability.agreement import bland_altman, within_subject_cv
from radflow.stability.anova import mean_squares, measurements
from radflow.stability.ccc import ccc_from
from radflow.stability.icc import DEFAULT_FORM, icc_from

# The statistics columns of the `stability` table, in order.
STATISTICS = ("n", "k", "icc", "ci_low", "ci_high", "ccc", "ccc_ci_low", "ccc_ci_high", "wcv",
              "ba_bias", "ba_loa_low", "ba_loa_high")


def stability_statistics(y, icc_form: str = DEFAULT_FORM, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """ICC (``icc_form``) with interval, Lin's CCC with interval, wCV and Bland-Altman of each feature.

    ``y``: (features, subjects, k) repeated measurements; per feature, subjects with a non-finite value are left
    out. Returns one array of length ``features`` per name in :data:`STATISTICS`.
    """
    m = measurements(y)
    ms = mean_squares(m)
    icc = icc_from(m, ms, icc_form, confidence)
    ccc = ccc_from(m, confidence)
    ba = bland_altman(m, confidence)
    return {
        "n": m.n.astype(np.int64),
        "k": np.full(len(m.n), m.k, dtype=np.int64),
        "icc": icc.icc,
        "ci_low": icc.ci_low,
        "ci_high": icc.ci_high,
        "ccc": ccc.ccc,
        "ccc_ci_low": ccc.ci_low,
        "ccc_ci_high": ccc.ci_high,
        "wcv": within_subject_cv(ms),
        "ba_bias": ba.bias,
        "ba_loa_low": ba.loa_low,
        "ba_loa_high": ba.loa_high,
    }
