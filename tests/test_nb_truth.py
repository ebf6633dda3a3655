"""The written truth's value at a prior-days point (`truth_at`) against a second
implementation and a planted line."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.rules.nb_truth import truth_at, truth_summary


def cases(prior: np.ndarray, effect: np.ndarray, treated: np.ndarray | None = None) -> pl.DataFrame:
    """Model rows with prior_days, true_extra_days and treated (all cases by default)."""
    return pl.DataFrame(
        {
            "prior_days": prior,
            "true_extra_days": effect,
            "treated": np.ones(len(prior), bool) if treated is None else treated,
        }
    )


def test_truth_at_recovers_a_planted_line_at_the_boundary_where_the_band_mean_does_not():
    prior = np.arange(0.0, 366.0)
    rows = cases(prior, 17.0 + 0.05 * prior)
    got = truth_at(rows, [0.0, 180.0, 365.0])
    assert got == {
        0.0: pytest.approx(17.0),
        180.0: pytest.approx(26.0),
        365.0: pytest.approx(35.25),
    }
    band = dict(zip(*truth_summary(rows, [0.0, 365.0])[["what", "true_extra_days"]], strict=True))
    # the one-sided band [0, 30] averages prior days 0..30 (mean 15): 17 + 0.05 * 15
    assert band["at 0"] == pytest.approx(17.75)
    assert band["at 365"] == pytest.approx(17.0 + 0.05 * 350)


def test_truth_at_equals_a_least_squares_fit_over_the_cases_in_the_band_only():
    rng = np.random.default_rng(3)
    n = 2000
    prior = rng.integers(0, 366, n).astype(float)
    treated = rng.random(n) < 0.3
    effect = np.where(treated, rng.poisson(20 + prior / 20), 0).astype(float)
    rows = cases(prior, effect, treated)
    for p in (0.0, 90.0, 365.0):
        keep = treated & (np.abs(prior - p) <= 30)
        _slope, intercept = np.polyfit(prior[keep] - p, effect[keep], 1)
        assert truth_at(rows, [p])[p] == pytest.approx(intercept, rel=1e-9)


def test_truth_at_is_none_without_two_distinct_prior_days():
    rows = cases(np.array([0.0, 0.0, 200.0]), np.array([20.0, 18.0, 30.0]))
    assert truth_at(rows, [0.0]) == {0.0: None}


def test_the_contrast_subtracts_the_controls_own_planted_days_in_each_span():
    # two cases and three controls near 0 prior days; one control's person is treated
    # later and carries 6 planted days inside its window
    rows = cases(
        np.array([0.0, 10.0, 5.0, 20.0, 25.0, 200.0]),
        np.array([20.0, 16.0, 0.0, 6.0, 0.0, 30.0]),
        np.array([True, True, False, False, False, True]),
    )
    at0 = truth_summary(rows, [0.0], band_edges=(0, 366)).row(-1, named=True)
    assert (at0["n"], at0["n_controls"]) == (2, 3)
    assert at0["true_extra_days"] == pytest.approx(18.0)
    assert at0["control_extra_days"] == pytest.approx(2.0)
    assert at0["contrast"] == pytest.approx(16.0)
    controls = truth_at(rows, [0.0], treated=False)
    _slope, intercept = np.polyfit(np.array([5.0, 20.0, 25.0]), np.array([0.0, 6.0, 0.0]), 1)
    assert controls[0.0] == pytest.approx(intercept)
