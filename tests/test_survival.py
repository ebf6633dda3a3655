"""Kaplan-Meier and stratified Cox: hand computation, planted hazard ratio, R pins, checks.

The R pins (`tests/reference_r/survival/`) were produced by `fit.R` in that folder
(`Rscript tests/reference_r/survival/fit.R` from the repo root rewrites `results.csv`
byte for byte; `--make-data` first rewrites `data.csv` from its seed). R is not
needed here. Ours is `res1`, R's is `res2`.

Conventions reconciled below (G clusters = persons `lopnr`):
- Fit: our own Newton-Raphson on the stratified Efron partial likelihood, vectorised
  over strata (`_efron.newton_raphson`). lifelines' `CoxPHFitter(strata=...)`, which
  it replaced (~10 ms per stratum), is the independent implementation it is checked
  against here (`test_fit_matches_lifelines`), beside R.
- Ties: Efron in all three (lifelines' only method; R coxph's default, asserted in fit.R).
- Naive SE: inverse information at the MLE = R `fit$naive.var`.
- Robust SE: Lin-Wei sandwich D'D, D = dfbeta residuals summed per cluster, with no
  small-sample factor (no G/(G-1)) = R `coxph(..., cluster = lopnr)` `fit$var`.
  lifelines computes the same sandwich but from score residuals that ignore tied
  times: without ties it equals ours to 1e-9 (`test_lifelines_robust_se_without_ties`);
  with the day-resolution ties of data.csv it is 0.23 % off R for cox_case and 0.14 % /
  0.59 % (case / age) for cox_adjusted (`test_lifelines_robust_se_ignores_ties`). We
  report the Efron residual version, so no tolerance absorbs the gap.
- Set-level and two-way clustering (reported in metadata, see the caveat in the module
  docstring and robust_se_mc.R): R `cluster = set_id`, and V(set_id) + V(lopnr) -
  V(row) with V(row) from `robust = TRUE`; same sandwich, same tolerance.
- Coefficients: ours stop at float noise (`_efron.DECREMENT_TOL`) and match R to
  ~1e-11. lifelines' default Newton tolerances stop ~1e-6 short of the MLE;
  `LIFELINES_FIT_OPTIONS` tightens them for the comparisons here.
- Concordance: Harrell's C over pairs within strata = R `concordance(fit)` =
  lifelines `concordance_index_` for a stratified model.
- KM CIs: pointwise log-log ("exponential Greenwood") = R `survfit(conf.type =
  "log-log")`; R's default "log" differs and is not what we report.
- KM median: first time with S <= 0.5 (lifelines). R takes the midpoint to the next
  event time when S is exactly 0.5 on an interval: the cases in data.csv sit at 0.5 on
  [26, 29), so ours is 26 and R's 27.5 (`test_median_against_r`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from lifelines import CoxPHFitter
from polars.testing import assert_frame_equal
from scipy import stats

from pipeline.__main__ import main
from pipeline.report.figures import write_figure
from pipeline.report.figures.km import X_LABEL, Y_LABEL, km_figure
from pipeline.stages.survival import member_durations
from pipeline.stats._efron import _efron_score_residuals, _segment_scan
from pipeline.stats.base import SUMMARY_COLUMNS
from pipeline.stats.cox import CoxResult, fit_stratified_cox
from pipeline.stats.km import kaplan_meier, median_table

R_DIR = Path(__file__).parent / "reference_r" / "survival"
R_MODELS = {"cox_case": [], "cox_adjusted": ["age"]}
# Both fits converge to ~1e-11 (_efron.DECREMENT_TOL; R eps = 1e-10), so the coefficients
# and both SEs agree to ~1e-10; p-values amplify the SE error by about z^2 (z up to 7.5).
RTOL_COEF = 1e-9
RTOL_SE = 1e-8
RTOL_P = 1e-6
# KM: the same product of fractions (lifelines sums logs), ~1e-15; CIs through log-log.
RTOL_KM = 1e-12
RTOL_KM_CI = 1e-10
SIM_SEED = 20260602
SIM_SETS = 600
MAX_CONTROLS = 4
TRUE_LOG_HR = 0.4
BASE_HAZARD_PER_DAY = 1 / 45
# lifelines stops on a Newton decrement < 1e-16 (one or two more steps than its defaults,
# which stop up to ~1e-6 short of the MLE); then it matches ours and R to ~1e-11.
LIFELINES_FIT_OPTIONS = {"precision": 1e-16, "r_precision": 1e-14}
# Ours vs lifelines: both at the MLE to ~1e-11, so far inside these.
RTOL_LIFELINES_COEF = 1e-8
RTOL_LIFELINES_SE = 1e-6


# --- Kaplan-Meier ------------------------------------------------------------------


def hand_frame() -> pl.DataFrame:
    """Two groups with tied times, censoring at an event time and an event at day 0."""
    return pl.DataFrame(
        {
            "duration_days": [2, 2, 3, 5, 5, 8, 0, 1, 1, 4],
            "event": [True, False, True, True, True, False, True, True, False, False],
            "case": [True] * 6 + [False] * 4,
        }
    )


def test_km_matches_hand_computation() -> None:
    res1 = kaplan_meier(hand_frame())
    # S(t) = prod over event times <= t of (1 - d/n):
    #   cases:    t=2: n=6 d=1 (+1 censored) -> 5/6; t=3: n=4 d=1 -> 5/6*3/4 = 5/8;
    #             t=5: n=3 d=2 -> 5/8*1/3 = 5/24; t=8: n=1, censored -> 5/24.
    #   controls: t=0: n=4 d=1 -> 3/4; t=1: n=3 d=1 (+1 censored) -> 3/4*2/3 = 1/2;
    #             t=4: n=1, censored -> 1/2.
    expected = pl.DataFrame(
        {
            "group": [False] * 3 + [True] * 5,
            "time": [0.0, 1, 4, 0, 2, 3, 5, 8],
            "at_risk": [4, 3, 1, 6, 6, 4, 3, 1],
            "events": [1, 1, 0, 0, 1, 1, 2, 0],
            "censored": [0, 1, 1, 0, 1, 0, 0, 1],
            "survival": [3 / 4, 1 / 2, 1 / 2, 1, 5 / 6, 5 / 8, 5 / 24, 5 / 24],
        }
    )
    assert_frame_equal(res1.drop("ci_low", "ci_high"), expected, check_exact=False, rel_tol=1e-14)
    # Pointwise log-log CI at t=3 for the cases, Greenwood V = sum d / (n (n - d)).
    z = stats.norm.ppf(0.975)
    v = 1 / (6 * 5) + 1 / (4 * 3)
    s = 5 / 8
    bounds = [
        math.exp(-math.exp(math.log(-math.log(s)) + k * z * math.sqrt(v) / math.log(s)))
        for k in (-1, 1)
    ]
    row = res1.row(by_predicate=pl.col("group") & (pl.col("time") == 3), named=True)
    np.testing.assert_allclose([row["ci_low"], row["ci_high"]], bounds, rtol=1e-12)


def test_km_ignores_row_order_and_medians() -> None:
    frame = hand_frame()
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    assert_frame_equal(kaplan_meier(shuffled), kaplan_meier(frame))
    medians = median_table(kaplan_meier(frame))
    assert medians.select("group", "n", "n_events", "median").rows() == [
        (False, 4, 2, 1.0),  # S(1) = 1/2 exactly: first time with S <= 0.5
        (True, 6, 4, 5.0),
    ]


def test_km_drops_null_rows() -> None:
    frame = hand_frame().with_columns(
        duration_days=pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise("duration_days")
    )
    res1 = kaplan_meier(frame)
    assert res1.filter("group")["at_risk"][0] == 5


def r_data() -> pl.DataFrame:
    """The pinned matched-set rows."""
    return pl.read_csv(R_DIR / "data.csv")


def r_results(model: str) -> pl.DataFrame:
    """R's rows for one model (`cox_*`, `km`, `km_median`)."""
    return pl.read_csv(
        R_DIR / "results.csv", schema_overrides={"group": pl.Int64, "time": pl.Float64}
    ).filter(model=model)


def test_km_against_r() -> None:
    """R: survfit(Surv(duration_days, event) ~ case, conf.type = "log-log"), summary(times)."""
    res1 = kaplan_meier(r_data())
    res2 = r_results("km").pivot("quantity", index=["group", "time"], values="value")
    for group in (0, 1):
        ours = res1.filter(pl.col("group") == group)
        theirs = res2.filter(pl.col("group") == group).drop("group").sort("time")
        # S and its CI are right-continuous steps: the last table time <= t ...
        step = theirs.join_asof(ours, on="time", strategy="backward")
        np.testing.assert_allclose(step["survival"], step["surv"], rtol=RTOL_KM)
        np.testing.assert_allclose(step["ci_low"], step["lower"], rtol=RTOL_KM_CI)
        np.testing.assert_allclose(step["ci_high"], step["upper"], rtol=RTOL_KM_CI)
        # ... the number at risk at t (duration >= t) is that of the first time >= t.
        ahead = theirs.join_asof(ours, on="time", strategy="forward")
        np.testing.assert_array_equal(ahead["at_risk"], ahead["n_risk"])


def test_median_against_r() -> None:
    res1 = median_table(kaplan_meier(r_data())).sort("group")
    res2 = r_results("km_median").pivot("quantity", index="group", values="value").sort("group")
    controls, cases = res1.rows(named=True)
    r_controls, r_cases = res2.rows(named=True)
    assert (controls["median"], controls["ci_low"], controls["ci_high"]) == (
        r_controls["median"],
        r_controls["lower"],
        r_controls["upper"],
    )
    assert (cases["ci_low"], cases["ci_high"]) == (r_cases["lower"], r_cases["upper"])
    # Documented convention gap: the cases' curve is exactly 1/2 from day 26 to the next
    # event (day 29); we take the first time with S <= 0.5, R the midpoint.
    km = kaplan_meier(r_data()).filter(pl.col("group") == 1)
    flat = km.filter(pl.col("time").is_between(26, 28))["survival"]
    np.testing.assert_allclose(flat, 0.5, rtol=1e-14)
    assert km.filter((pl.col("time") > 26) & (pl.col("events") > 0))["time"][0] == 29
    assert (cases["median"], r_cases["median"]) == (26.0, (26 + 29) / 2)


# --- Cox: planted hazard ratio -----------------------------------------------------


def simulated_sets(n_sets: int = SIM_SETS, seed: int = SIM_SEED) -> pl.DataFrame:
    """Matched sets of 1 case + 1-4 controls with true log-HR TRUE_LOG_HR for cases.

    Set-specific gamma frailty (mean 1, variance 0.5: a stratified model is needed),
    persons recurring across sets (never twice in one set), day-resolution durations
    (ties) and censoring at a set-specific data end. No frailty within sets: that would
    make the conditional log-HR differ from TRUE_LOG_HR (non-collapsibility).
    """
    rng = np.random.default_rng(seed)
    size = 1 + rng.integers(1, MAX_CONTROLS + 1, n_sets)
    n_rows = int(size.sum())
    set_id = np.repeat(np.arange(n_sets), size)
    position = np.arange(n_rows) - np.repeat(np.cumsum(size) - size, size)
    n_persons = n_rows // 2  # every person appears in about two sets
    stride = n_persons // (MAX_CONTROLS + 1)
    lopnr = (rng.integers(0, n_persons, n_sets)[set_id] + position * stride) % n_persons
    case = position == 0
    hazard = BASE_HAZARD_PER_DAY * rng.gamma(2.0, 0.5, n_sets)[set_id] * np.exp(TRUE_LOG_HR * case)
    end = rng.exponential(1 / hazard)
    data_end = rng.uniform(20, 400, n_sets)[set_id]
    return pl.DataFrame(
        {
            "set_id": set_id,
            "lopnr": lopnr,
            "case": case,
            "duration_days": np.floor(np.minimum(end, data_end)).astype(np.int64),
            "event": end <= data_end,
        }
    )


def test_cox_recovers_planted_hazard_ratio() -> None:
    frame = simulated_sets()
    assert frame.group_by("lopnr").len()["len"].max() > 1  # persons recur: clusters matter
    res1 = fit_stratified_cox(frame)
    assert res1.converged
    assert res1.n_strata + res1.n_strata_dropped == SIM_SETS
    assert res1.n + res1.n_dropped == frame.height
    assert abs(res1.params_[0] - TRUE_LOG_HR) < 3 * res1.std_err[0]
    lo, hi = res1.hazard_ratio_ci
    assert lo < math.exp(TRUE_LOG_HR) < hi
    assert 0.5 < res1.concordance < 0.6


def test_score_residuals_solve_the_score_equation() -> None:
    # The Efron score residuals sum to the gradient of the partial likelihood, which is
    # zero at the MLE: the Newton step left, naive_cov @ gradient, must be negligible
    # next to the SEs. An internal check independent of R and of lifelines' residuals.
    frame = simulated_sets(80, seed=1).with_columns(
        age=pl.int_range(pl.len()).mod(47).cast(pl.Float64)
    )
    res1 = fit_stratified_cox(frame, covariates=["age"])
    used = frame.filter(pl.col("set_id").is_in(set_ids_used(frame).implode()))
    resid = _efron_score_residuals(
        used["set_id"].to_numpy(),
        used["duration_days"].to_numpy().astype(float),
        used["event"].to_numpy(),
        used.select("case", "age").to_numpy().astype(float),
        res1.params_,
    )
    step = res1.naive_cov_ @ resid.sum(axis=0)
    assert (np.abs(step) < 1e-6 * res1.naive_std_err).all(), step
    assert np.abs(resid).max() > 0.5


def set_ids_used(frame: pl.DataFrame) -> pl.Series:
    """Sets with both cases and controls and at least one event."""
    per = frame.group_by("set_id").agg(pl.col("case").n_unique(), pl.col("event").any())
    return per.filter((pl.col("case") == 2) & pl.col("event"))["set_id"]


def test_cox_ignores_row_order_and_id_types() -> None:
    frame = simulated_sets(60, seed=12)
    res1 = fit_stratified_cox(frame)
    recoded = frame.with_columns(
        pl.format("S{}", "set_id").alias("set_id"),
        pl.format("P{}", "lopnr").alias("lopnr"),
        pl.col("case").cast(pl.Int8),
    ).sample(fraction=1.0, shuffle=True, seed=1)
    res2 = fit_stratified_cox(recoded)
    np.testing.assert_allclose(res2.params_, res1.params_, rtol=1e-12)
    np.testing.assert_allclose(res2.cov_, res1.cov_, rtol=1e-10)
    np.testing.assert_allclose(res2.cov_two_way_, res1.cov_two_way_, rtol=1e-10)
    assert res2.concordance == res1.concordance
    assert res2.warnings_ == res1.warnings_


def lifelines_fit(
    frame: pl.DataFrame,
    covariates: tuple[str, ...] = (),
    cluster: str | None = None,
    robust: bool = False,
) -> CoxPHFitter:
    """lifelines' stratified Efron fit of the sets `fit_stratified_cox` keeps."""
    used = frame.filter(pl.col("set_id").is_in(set_ids_used(frame).implode()))
    data = used.select(
        "set_id",
        "duration_days",
        pl.col("event", "case").cast(pl.Int8),
        *covariates,
        *([cluster] if cluster else []),
    )
    return CoxPHFitter(strata=["set_id"]).fit(
        data.to_pandas(),
        "duration_days",
        "event",
        cluster_col=cluster,
        robust=robust,
        fit_options=LIFELINES_FIT_OPTIONS,
    )


def with_score(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """`frame` plus `score`, a numeric covariate (normal, mean 3, sd 2) with log-HR -0.3."""
    rng = np.random.default_rng(seed)
    score = 3 + 2 * rng.standard_normal(frame.height)
    # Thin events by exp(-0.3 (score - 3)) / 2 so the covariate has an effect to find.
    keep = rng.uniform(size=frame.height) < np.exp(-0.3 * (score - 3)) / 2
    return frame.with_columns(score=score, event=pl.col("event") & keep)


@pytest.mark.parametrize("days_per_unit", [1, 30])
def test_fit_matches_lifelines(days_per_unit: int) -> None:
    # The vectorised Newton-Raphson against lifelines' per-stratum fit, with tied times
    # (whole days; months for ties up to 5 deep) and a numeric covariate.
    frame = with_score(simulated_sets(150, seed=10), seed=11).with_columns(
        pl.col("duration_days") // days_per_unit
    )
    n_tied = frame.filter("event").group_by("set_id", "duration_days").len()["len"]
    assert n_tied.max() >= 2 + (days_per_unit > 1)  # tied events within sets
    res1 = fit_stratified_cox(frame, covariates=["score"])
    res2 = lifelines_fit(frame, ("score",))
    assert res1.converged and res1.terms == ("case", "score")
    np.testing.assert_allclose(
        res1.params_, res2.params_.loc[list(res1.terms)], rtol=RTOL_LIFELINES_COEF
    )
    np.testing.assert_allclose(
        res1.naive_std_err,
        res2.standard_errors_.loc[list(res1.terms)],
        rtol=RTOL_LIFELINES_SE,
    )
    assert math.isclose(res1.concordance, res2.concordance_index_, rel_tol=1e-12)


def test_concordance_matches_lifelines() -> None:
    frame = simulated_sets(60, seed=2)
    res1 = fit_stratified_cox(frame)
    assert math.isclose(res1.concordance, lifelines_fit(frame).concordance_index_, rel_tol=1e-12)


def test_fit_is_invariant_to_covariate_units_and_offsets() -> None:
    # Per stratum the model only sees differences of the linear predictor, and a
    # covariate in large units (kronor) just scales its coefficient: the centring by
    # stratum and the unit-diagonal solve in _efron.py keep both exact to rounding.
    frame = with_score(simulated_sets(80, seed=13), seed=14)
    res1 = fit_stratified_cox(frame, covariates=["score"])
    res2 = fit_stratified_cox(
        frame.with_columns(pl.col("score") * 1e5 + pl.col("set_id") * 1e7),
        covariates=["score"],
    )
    np.testing.assert_allclose(res2.params_ * [1, 1e5], res1.params_, rtol=1e-9)
    np.testing.assert_allclose(res2.std_err * [1, 1e5], res1.std_err, rtol=1e-8)


@pytest.mark.parametrize("longest", [1, 2, 5, 8, 9, 40])
def test_segment_scan_sums_within_runs(longest: int) -> None:
    rng = np.random.default_rng(longest)
    run = np.repeat(np.arange(30), rng.integers(1, longest + 1, 30))
    values = rng.exponential(size=(run.size, 2))
    scale = np.sort(rng.uniform(-50, 50, run.size))  # non-decreasing within runs
    position = np.arange(run.size) - np.searchsorted(run, run)
    runs = pl.DataFrame({"run": run, "a": values[:, 0], "b": values[:, 1]})
    expected = runs.select(pl.col("a", "b").cum_sum().over("run")).to_numpy()
    np.testing.assert_allclose(_segment_scan(values, position), expected, rtol=1e-14)
    # With scale: values in units of exp(scale); terms differing by e^100 do not overflow.
    scaled = runs.with_columns(pl.col("a", "b") * np.exp(scale - 50))
    expected = scaled.select(pl.col("a", "b").cum_sum().over("run")).to_numpy()
    res1 = _segment_scan(values, position, scale=scale) * np.exp(scale - 50)[:, None]
    np.testing.assert_allclose(res1, expected, rtol=1e-13)
    top = _segment_scan(values, position, np.maximum)
    expected = runs.select(pl.col("a", "b").cum_max().over("run")).to_numpy()
    np.testing.assert_array_equal(top, expected)


# --- Cox: pinned R results ---------------------------------------------------------


@pytest.fixture(scope="module")
def r_fits() -> dict[str, CoxResult]:
    """Our fits of the R models on data.csv."""
    data = r_data()
    return {m: fit_stratified_cox(data, covariates=cov, name=m) for m, cov in R_MODELS.items()}


def r_quantity(res2: pl.DataFrame, quantity: str) -> np.ndarray:
    """One R quantity of a model, in R's term order."""
    return res2.filter(quantity=quantity)["value"].to_numpy()


@pytest.mark.parametrize("model", list(R_MODELS))
def test_cox_against_r(r_fits: dict[str, CoxResult], model: str) -> None:
    """R: coxph(Surv(duration_days, event) ~ case [+ age] + strata(set_id), cluster = lopnr)."""
    res1, res2 = r_fits[model], r_results(model)
    assert res1.terms == tuple(res2.filter(quantity="coef")["term"])
    np.testing.assert_allclose(res1.params_, r_quantity(res2, "coef"), rtol=RTOL_COEF)
    np.testing.assert_allclose(res1.naive_std_err, r_quantity(res2, "se_naive"), rtol=RTOL_SE)
    np.testing.assert_allclose(res1.std_err, r_quantity(res2, "se_robust"), rtol=RTOL_SE)
    meta = res1.metadata()
    np.testing.assert_allclose(
        meta["std_err_cluster_strata"], r_quantity(res2, "se_set"), rtol=RTOL_SE
    )
    np.testing.assert_allclose(
        meta["std_err_two_way"], r_quantity(res2, "se_two_way"), rtol=RTOL_SE
    )
    p = res1.coefficients["p_value"].to_numpy()
    np.testing.assert_allclose(p, r_quantity(res2, "p_robust"), rtol=RTOL_P)
    assert math.isclose(res1.concordance, r_quantity(res2, "concordance")[0], rel_tol=1e-14)
    # R keeps the 4 case-only sets and the 7 sets without events (they add nothing to
    # the partial likelihood or the residuals); we drop them with a warning.
    assert res1.warnings_ == (
        "4 of 240 strata (4 rows) dropped: treatment 'case' constant within the stratum "
        "(4 all 1, 0 all 0)",
        "7 of 240 strata (21 rows) dropped: no events",
    )
    data = r_data()
    used = data.filter(pl.col("set_id").is_in(set_ids_used(data).implode()))
    assert (res1.n_strata, res1.n_strata_dropped) == (229, 11)
    assert (res1.n, res1.n_clusters) == (used.height, used["lopnr"].n_unique())
    case_only_events = data.filter(pl.col("set_id") <= 4)["event"].sum()
    assert res1.n + res1.n_dropped == r_quantity(res2, "n")[0] == data.height
    assert res1.n_events + case_only_events == r_quantity(res2, "nevent")[0]


def test_lifelines_robust_se_ignores_ties() -> None:
    # lifelines' own sandwich misses R by a fraction of a per cent on tied days: the
    # reason we compute the score residuals ourselves (module docstring).
    for model, covariates in R_MODELS.items():
        res2 = lifelines_fit(r_data(), tuple(covariates), cluster="lopnr", robust=True)
        lifelines_se = res2.standard_errors_.loc[["case", *covariates]].to_numpy()
        gap = lifelines_se / r_quantity(r_results(model), "se_robust") - 1
        assert (np.abs(gap) > 1e-3).all() and (np.abs(gap) < 1e-2).all(), (model, gap)


def test_lifelines_robust_se_without_ties() -> None:
    # Distinct times (a row-specific fraction of a day added): same sandwich, no factor.
    frame = simulated_sets(120, seed=4).with_columns(
        pl.col("duration_days") + pl.int_range(pl.len()) / (2 * pl.len())
    )
    res1 = fit_stratified_cox(frame)
    res2 = lifelines_fit(frame, cluster="lopnr", robust=True)
    np.testing.assert_allclose(res1.std_err, res2.standard_errors_.to_numpy(), rtol=1e-9)
    per_row = fit_stratified_cox(frame, cluster=None)
    per_row2 = lifelines_fit(frame, robust=True)
    np.testing.assert_allclose(per_row.std_err, per_row2.standard_errors_.to_numpy(), rtol=1e-9)
    assert per_row.metadata()["cov_type"] == "robust"


# --- Cox: pre-fit checks and layout ------------------------------------------------


def test_uninformative_strata_are_dropped_with_counts(r_fits: dict[str, CoxResult]) -> None:
    extra = pl.DataFrame(
        {
            "set_id": [901, 901, 902, 902, 902, 903, 904, 904],
            "lopnr": [1, 2, 3, 4, 5, 6, 7, 8],
            "case": [0, 0, 0, 0, 0, 1, 1, 0],
            "duration_days": [3, 9, 1, 2, 4, 5, 7, 7],
            "event": [1, 0, 1, 1, 1, 1, 0, 0],
            "age": [40] * 8,
        }
    )
    res1 = fit_stratified_cox(pl.concat([r_data(), extra]))
    assert res1.warnings_ == (
        "7 of 244 strata (10 rows) dropped: treatment 'case' constant within the stratum "
        "(5 all 1, 2 all 0)",
        "8 of 244 strata (23 rows) dropped: no events",
    )
    assert res1.n_strata_dropped == 15
    np.testing.assert_allclose(res1.params_, r_fits["cox_case"].params_, rtol=1e-12)
    np.testing.assert_allclose(res1.std_err, r_fits["cox_case"].std_err, rtol=1e-12)


def test_all_censored_gives_nan_and_warning() -> None:
    frame = simulated_sets(20, seed=5).with_columns(event=pl.lit(False))
    res1 = fit_stratified_cox(frame)
    assert np.isnan(res1.params_).all() and np.isnan(res1.std_err).all()
    assert math.isnan(res1.hazard_ratio) and math.isnan(res1.p_value)
    assert not res1.converged
    assert res1.warnings_ == (
        f"20 of 20 strata ({frame.height} rows) dropped: no events",
        "not fitted: no strata left",
    )
    assert (res1.n, res1.n_events, res1.n_strata) == (0, 0, 0)
    assert res1.summary["estimate"].is_nan().all()
    meta = json.loads(json.dumps(res1.metadata(), allow_nan=False))
    assert meta["hazard_ratio"] is None and meta["n_dropped"] == frame.height


def test_monotone_likelihood_gives_nan_and_warning() -> None:
    # Every case's spell ends first, before any control's: HR -> infinity.
    frame = simulated_sets(30, seed=6).with_columns(
        duration_days=pl.when("case").then(0).otherwise(pl.col("duration_days") + 1),
        event=pl.col("event") | pl.col("case"),
    )
    res1 = fit_stratified_cox(frame)
    assert np.isnan(res1.params_).all()
    assert res1.warnings_[-1].startswith(
        "not fitted: treatment effect not identified: every event has the highest 'case'"
    )


def test_nulls_and_negative_durations_are_dropped_and_counted() -> None:
    frame = simulated_sets(40, seed=7).with_columns(
        lopnr=pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise("lopnr"),
        duration_days=pl.when(pl.int_range(pl.len()).is_in([5, 6]))
        .then(-1)
        .otherwise("duration_days"),
    )
    res1 = fit_stratified_cox(frame)
    assert res1.warnings_[:2] == (
        f"3 of {frame.height} rows dropped for nulls/NaN (lopnr: 3)",
        "2 rows dropped: negative 'duration_days'",
    )
    assert res1.n + res1.n_dropped == frame.height
    assert np.isfinite(res1.params_).all()


def test_covariate_constant_within_strata_is_dropped() -> None:
    frame = simulated_sets(40, seed=8).with_columns(start_month=pl.col("set_id") % 12)
    res1 = fit_stratified_cox(frame, covariates=["start_month", "case"])
    assert res1.terms == ("case",)
    assert "covariates dropped: constant within every stratum: ['start_month']" in res1.warnings_


def test_collinear_covariates_give_nan_and_warning() -> None:
    frame = with_score(simulated_sets(40, seed=15), seed=16).with_columns(
        twice=2 * pl.col("score") + 1
    )
    res1 = fit_stratified_cox(frame, covariates=["score", "twice"])
    assert np.isnan(res1.params_).all() and not res1.converged
    assert res1.warnings_[-1] == (
        "not fitted: Newton-Raphson failed: singular information matrix (collinear terms?)"
    )


def test_infinite_covariate_coefficient_warns() -> None:
    # Only the first spell(s) of a set to end have first_out = 1: every event at a set's
    # first time has the largest first_out of its risk set, and later ones see no
    # variation, so the likelihood rises forever in its coefficient (R coxph warns too).
    frame = simulated_sets(40, seed=8).with_columns(
        first_out=(pl.col("duration_days") == pl.col("duration_days").min().over("set_id"))
    )
    res1 = fit_stratified_cox(frame, covariates=["first_out"])
    assert not res1.converged
    assert res1.warnings_[-1] == (
        "log-likelihood converged before ['first_out']: coefficient may be infinite "
        "(monotone likelihood, separation)"
    )
    assert res1.params_[1] > 20 and np.isfinite(res1.std_err).all()


def test_bad_arguments_raise() -> None:
    frame = simulated_sets(10, seed=9)
    with pytest.raises(ValueError, match="columns not in frame"):
        fit_stratified_cox(frame, covariates=["nope"])
    with pytest.raises(ValueError, match="used twice"):
        fit_stratified_cox(frame, cluster="set_id")
    with pytest.raises(ValueError, match="must be bool or 0/1"):
        fit_stratified_cox(frame.with_columns(event=pl.lit(2)))
    with pytest.raises(TypeError, match="unsupported dtype"):
        fit_stratified_cox(frame.with_columns(region=pl.lit("x")), covariates=["region"])


def test_summary_frame_layout(r_fits: dict[str, CoxResult]) -> None:
    res1 = r_fits["cox_adjusted"]
    summary = res1.summary
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["term"].to_list() == ["case", "age", "HR(case)"]
    assert summary["model"].unique().to_list() == ["cox_adjusted"]
    assert summary["n"].unique().to_list() == [res1.n]
    log_hr = summary.row(0, named=True)
    hr = summary.row(2, named=True)
    assert math.isclose(hr["estimate"], math.exp(log_hr["estimate"]))
    assert math.isclose(hr["ci_low"], math.exp(log_hr["ci_low"]))
    assert math.isclose(hr["ci_high"], math.exp(log_hr["ci_high"]))
    assert math.isclose(hr["std_err"], hr["estimate"] * log_hr["std_err"])
    assert hr["p_value"] == log_hr["p_value"] == res1.p_value
    meta = json.loads(json.dumps(res1.metadata(), allow_nan=False))
    assert (meta["ties"], meta["cov_type"], meta["n_strata"]) == ("efron", "robust_cluster", 229)
    assert meta["hazard_ratio_ci"] == list(res1.hazard_ratio_ci)


# --- plot ------------------------------------------------------------------------


def test_km_figure_labels() -> None:
    ax = km_figure(kaplan_meier(hand_frame()), "Tid till avslut").axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        X_LABEL,
        Y_LABEL,
        "Tid till avslut",
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Kontroll", "Insats"]


def test_the_km_figure_is_written_atomically_and_byte_stable(tmp_path: Path) -> None:
    km = kaplan_meier(hand_frame())
    first = write_figure(km_figure(km, "Tid till avslut"), tmp_path / "a" / "km.png")
    second = write_figure(km_figure(km, "Tid till avslut"), tmp_path / "b" / "km.png")
    assert first == tmp_path / "a" / "km.png"
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.read_bytes() == second.read_bytes()
    assert b"Software" not in first.read_bytes()
    assert sorted(p.name for p in first.parent.iterdir()) == ["km.png"]  # no temp file left


# --- the survival stage: the reported SE in every result file -----------------------


def write_planted_sets(outputs: Path) -> pl.DataFrame:
    """The planted matched sets (one spell per member, all indexed on one day) written as
    the survival stage reads them, riskset.parquet and cohort_at_risk.parquet; the sets."""
    frame = simulated_sets().with_row_index("spell_id")
    index = dt.date(2021, 1, 1)
    frame.select(
        "set_id", "spell_id", "lopnr", "case", pl.lit(index).alias("index_date")
    ).write_parquet(outputs / "riskset.parquet")
    frame.select(
        "spell_id",
        (pl.lit(index) + pl.duration(days="duration_days")).alias("end"),
        (~pl.col("event")).alias("censored"),
    ).write_parquet(outputs / "cohort_at_risk.parquet")
    return frame


@pytest.mark.parametrize("se", ["person", "set", "two_way"])
def test_stage_files_carry_the_se_survival_se_names(tmp_path: Path, se: str) -> None:
    # The stage on planted matched sets (one spell per member): survival.parquet and
    # survival.json carry the SE that cox_hr.csv reports, under each survival.se, and
    # it is the fit's covariance of that name (so the choices give different SEs).
    write_planted_sets(tmp_path)
    assert main(["survival", f"paths.outputs={tmp_path}", f"survival.se={se}"]) == 0
    table = pl.read_csv(tmp_path / "results" / "cox_hr.csv")
    reported = table.filter(pl.col("reported"))
    assert reported["variance"].to_list() == [se]
    summary = pl.read_parquet(tmp_path / "models" / "survival.parquet")
    case = summary.row(by_predicate=pl.col("term") == "case", named=True)
    assert math.isclose(case["std_err"], reported["log_hr_std_err"].item(), rel_tol=1e-12)
    hr = summary.row(by_predicate=pl.col("term") == "HR(case)", named=True)
    assert math.isclose(hr["ci_low"], reported["ci_low"].item(), rel_tol=1e-12)
    assert math.isclose(hr["ci_high"], reported["ci_high"].item(), rel_tol=1e-12)
    meta = json.loads((tmp_path / "models" / "survival.json").read_text())
    assert meta["se"] == se
    assert math.isclose(meta["std_err"][0], case["std_err"], rel_tol=1e-12)
    res1 = fit_stratified_cox(
        member_durations(
            pl.read_parquet(tmp_path / "riskset.parquet"),
            pl.read_parquet(tmp_path / "cohort_at_risk.parquet"),
        ),
        cluster="lopnr",
    )
    own = {"person": res1.cov_, "set": res1.cov_strata_, "two_way": res1.cov_two_way_}[se]
    assert math.isclose(case["std_err"], math.sqrt(own[0, 0]), rel_tol=1e-12)
    assert math.isclose(meta["std_err_person"][0], math.sqrt(res1.cov_[0, 0]), rel_tol=1e-12)
    assert table["log_hr_std_err"].n_unique() == 3  # the choice matters


def test_the_cox_table_counts_the_sets_the_km_table_counts(tmp_path: Path) -> None:
    # a set whose members are all censored adds nothing to the partial likelihood and is
    # left out of the fit; counted out of cox_hr.csv's n beside km_medians.csv's it would
    # give the number of such sets (a small count), so both tables count every member and set
    frame = write_planted_sets(tmp_path)
    assert main(["survival", f"paths.outputs={tmp_path}"]) == 0
    meta = json.loads((tmp_path / "models" / "survival.json").read_text())
    assert meta["n_strata_dropped"] > 0  # the fit did leave sets out
    cox = pl.read_csv(tmp_path / "results" / "cox_hr.csv")
    km = pl.read_csv(tmp_path / "results" / "km_medians.csv")
    assert cox["n"].unique().to_list() == [km["n"].sum()]
    assert cox["n_strata"].unique().to_list() == [frame["set_id"].n_unique()]
