"""ComBat against direct computations: the location/scale form without empirical Bayes in closed form, the parametric
empirical-Bayes form against a naive per-feature, per-batch loop of the Johnson et al. (2007) equations; the
fit/apply split, covariates, unseen centres, constant features and missing values."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from radflow.modelling import harmonisation as H


def _batched(seed: int, n_per_batch=(15, 20, 12), p: int = 25, covariate: bool = False):
    rng = np.random.default_rng(seed)
    batch = np.repeat(np.array(["A", "B", "C"])[: len(n_per_batch)], n_per_batch)
    n = batch.size
    age = rng.normal(60, 8, n) + np.where(batch == "B", 6, 0)  # covariate distribution differs by centre
    shift = {"A": 0.0, "B": 2.0, "C": -1.0}
    scale = {"A": 1.0, "B": 2.5, "C": 0.6}
    y = rng.normal(size=(n, p)) * np.array([scale[b] for b in batch])[:, None]
    y += np.array([shift[b] for b in batch])[:, None] + rng.normal(0, 1, p)[None, :] * 3
    if covariate:
        y += 0.1 * (age[:, None] - 60)
    return y, batch, age


def test_location_scale_combat_equals_direct_standardisation():
    y, batch, _ = _batched(0)
    out = H.combat_apply(y, batch, None, H.combat_fit(y, batch, None, empirical_bayes=False), empirical_bayes=False)
    grand = y.mean(axis=0)
    residual = np.zeros_like(y)
    direct = np.zeros_like(y)
    for b in np.unique(batch):
        m = batch == b
        residual[m] = y[m] - y[m].mean(axis=0)
    pooled_sd = np.sqrt((residual**2).mean(axis=0))
    for b in np.unique(batch):
        m = batch == b
        direct[m] = (y[m] - y[m].mean(axis=0)) / y[m].std(axis=0, ddof=1) * pooled_sd + grand
    np.testing.assert_allclose(out, direct, rtol=1e-10, atol=1e-10)


def _naive_combat(y, batch, tol=1e-12):
    """The ComBat equations written out feature by feature and batch by batch (no covariates)."""
    n, p = y.shape
    batches = sorted(set(batch))
    out = np.empty_like(y)
    grand = [sum(y[batch == b, g].mean() * (batch == b).sum() for b in batches) / n for g in range(p)]
    var_pooled = [sum(((y[batch == b, g] - y[batch == b, g].mean()) ** 2).sum() for b in batches) / n
                  for g in range(p)]
    z = np.array([[(y[j, g] - grand[g]) / math.sqrt(var_pooled[g]) for g in range(p)] for j in range(n)])
    for b in batches:
        rows = np.flatnonzero(batch == b)
        nb = rows.size
        g_hat = [z[rows, g].mean() for g in range(p)]
        d_hat = [z[rows, g].var(ddof=1) for g in range(p)]
        g_bar = sum(g_hat) / p
        t2 = sum((v - g_bar) ** 2 for v in g_hat) / (p - 1)
        m = sum(d_hat) / p
        s2 = sum((v - m) ** 2 for v in d_hat) / (p - 1)
        a, b_prior = (2 * s2 + m * m) / s2, (m * s2 + m**3) / s2
        for g in range(p):
            gamma, delta = g_hat[g], d_hat[g]
            for _ in range(10_000):
                gamma_new = (nb * t2 * g_hat[g] + delta * g_bar) / (nb * t2 + delta)
                delta_new = (b_prior + 0.5 * sum((z[j, g] - gamma_new) ** 2 for j in rows)) / (nb / 2 + a - 1)
                done = abs(gamma_new - gamma) < tol and abs(delta_new - delta) < tol
                gamma, delta = gamma_new, delta_new
                if done:
                    break
            for j in rows:
                out[j, g] = (z[j, g] - gamma) / math.sqrt(delta) * math.sqrt(var_pooled[g]) + grand[g]
    return out


def test_empirical_bayes_combat_equals_naive_equations(monkeypatch):
    monkeypatch.setattr(H, "CONVERGENCE", 1e-13)
    y, batch, _ = _batched(1, p=12)
    out = H.combat_apply(y, batch, None, H.combat_fit(y, batch))
    np.testing.assert_allclose(out, _naive_combat(y, batch), rtol=1e-8, atol=1e-8)


def test_default_convergence_is_close_to_the_fixed_point():
    y, batch, _ = _batched(2, p=12)
    out = H.combat_apply(y, batch, None, H.combat_fit(y, batch))
    np.testing.assert_allclose(out, _naive_combat(y, batch), atol=1e-3)


def test_combat_removes_centre_location_and_scale():
    y, batch, _ = _batched(3, n_per_batch=(60, 60, 60))
    out = H.combat_apply(y, batch, None, H.combat_fit(y, batch))
    means = np.array([out[batch == b].mean(axis=0) for b in "ABC"])
    raw_means = np.array([y[batch == b].mean(axis=0) for b in "ABC"])
    sds = np.array([out[batch == b].std(axis=0) for b in "ABC"])
    raw_sds = np.array([y[batch == b].std(axis=0) for b in "ABC"])
    # empirical Bayes shrinks each feature's shift towards the centre's average shift, so not exactly zero
    assert np.abs(means - means.mean(axis=0)).max() < 0.15 * np.abs(raw_means - raw_means.mean(axis=0)).max()
    assert (sds.max(axis=0) / sds.min(axis=0)).max() < 1.5 < (raw_sds.max(axis=0) / raw_sds.min(axis=0)).min()


def test_apply_to_training_data_equals_fit_and_held_out_cases_use_training_estimates():
    y, batch, age = _batched(4, covariate=True)
    train = np.arange(y.shape[0]) % 4 != 0
    estimates = H.combat_fit(y[train], batch[train], age[train, None])
    together = H.combat_apply(y, batch, age[:, None], estimates)
    alone = H.combat_apply(y[~train], batch[~train], age[~train, None], estimates)
    np.testing.assert_allclose(together[~train], alone, rtol=1e-12)  # a case's result does not depend on others
    refit = H.combat_fit(y[train], batch[train], age[train, None])
    np.testing.assert_allclose(H.combat_apply(y[train], batch[train], age[train, None], refit), together[train])


def test_covariate_effect_is_preserved():
    y, batch, age = _batched(5, n_per_batch=(80, 80), covariate=True)
    out = H.combat_apply(y, batch, age[:, None], H.combat_fit(y, batch, age[:, None]))
    centred = age - age.mean()
    slopes = (centred @ (out - out.mean(axis=0))) / (centred @ centred)
    assert slopes.mean() == pytest.approx(0.1, abs=0.02)
    assert np.allclose(slopes, 0.1, atol=0.08)
    without = H.combat_apply(y, batch, None, H.combat_fit(y, batch, None))
    assert np.abs(((centred @ (without - without.mean(axis=0))) / (centred @ centred)) - 0.1).mean() > \
        np.abs(slopes - 0.1).mean()


def test_unseen_centre_is_harmonised_from_its_own_cases_and_a_lone_case_is_left_alone():
    y, batch, _ = _batched(6, n_per_batch=(30, 30, 30))
    known = batch != "C"
    estimates = H.combat_fit(y[known], batch[known])
    new = H.combat_apply(y[~known], batch[~known], None, estimates)
    reference = H.combat_apply(y[known], batch[known], None, estimates)
    assert np.abs(new.mean(axis=0) - reference.mean(axis=0)).max() < 0.5 * np.abs(
        y[~known].mean(axis=0) - reference.mean(axis=0)).max()
    lone = H.combat_apply(y[~known][:1], batch[~known][:1], None, estimates)
    np.testing.assert_allclose(lone, y[~known][:1], rtol=1e-12)


def test_constant_feature_passes_through_and_no_warnings(recwarn):
    y, batch, _ = _batched(7)
    y[:, 3] = 5.0
    out = H.combat_apply(y, batch, None, H.combat_fit(y, batch))
    np.testing.assert_array_equal(out[:, 3], 5.0)
    assert np.all(np.isfinite(out))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_harmoniser_fills_missing_values_with_training_medians_and_encodes_covariates():
    y, batch, age = _batched(8, p=4)
    frame = pd.DataFrame(y, columns=[f"f{i}" for i in range(4)])
    frame["clinical:centre"] = batch
    frame["clinical:age"] = age
    frame["clinical:sex"] = np.where(np.arange(len(batch)) % 3 == 0, "F", "M")
    frame.loc[2, "f1"] = np.nan
    step = H.Harmoniser("none").fit(frame)
    assert list(step.get_feature_names_out()) == ["f0", "f1", "f2", "f3"]
    assert step.transform(frame)[2, 1] == pytest.approx(np.nanmedian(frame["f1"]))
    combat = H.Harmoniser("combat", covariates=("clinical:age", "clinical:sex")).fit(frame)
    assert combat.encoder_.names() == ["clinical:age", "clinical:sex=M"]
    assert np.all(np.isfinite(combat.transform(frame)))
