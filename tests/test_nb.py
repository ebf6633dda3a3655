"""fit_nb2: recovery of a planted NB2 model, pins against R, SE conventions, edge cases.

The R pins (`tests/reference_r/nb/`) were produced by `fit.R` in that folder
(`Rscript tests/reference_r/nb/fit.R` from the repo root rewrites `results.csv`
byte for byte; `--make-data` first rewrites `data.csv` from its seed). R is not
needed here. Ours is `res1`, R's is `res2`.

SE conventions reconciled below (N rows, K coefficients, G clusters; alpha = 1/theta):
- Model-based: ours (= statsmodels') = inverse OBSERVED information of the joint
  (beta, alpha) log-likelihood = fit.R's `joint_model`, coded from the analytic NB2
  second derivatives in R. R's `vcov(glm.nb)` is the inverse EXPECTED information
  (X'WX)^-1, W = mu / (1 + alpha mu), with theta fixed: not the same matrix (up to ~1 %
  apart on the pinned data). `test_glm_nb_conventions` rebuilds R's matrix from our
  fit to show that the bread is the whole difference.
- Cluster: ours = G/(G-1) * (N-1)/(N-K-1) * H^-1 (sum_g s_g s_g') H^-1 on the joint
  (beta, alpha) scores (statsmodels `use_correction=True`, alpha counted in the K+1)
  = fit.R's `joint_cluster`. R `vcovCL(glm.nb fit, cluster = ~lopnr, type = "HC1")`
  uses the bread (X'WX)^-1 with theta fixed and G/(G-1) * (N-1)/(N-K): up to ~4 %
  apart in SE here; rebuilt exactly from our fit in `test_glm_nb_conventions`.
- Set / two-way: the same with set_id, and V_person + V_set - V_person x set, each
  meat with its own G/(G-1) (= fit.R's `joint_set`, `joint_two_way`, and statsmodels'
  `cov_cluster_2groups`). R's `vcovCL(cluster = ~ lopnr + set_id, multi0 = FALSE,
  type = "HC1")` treats theta as fixed (bread (X'WX)^-1, factor (N-1)/(N-K)): pinned by
  rebuilding it from our fit in `test_glm_nb_conventions`, as for one-way.
- Extra days: delta method with the beta block of the same covariance; R uses a
  central-difference gradient, we use the analytic one.

Tolerances: both fits are run to the optimum (our Newton, decrement < 1e-14; glm.nb
with epsilon = 1e-12). The coefficients then agree to ~1e-10 relative, but MASS's
theta.ml stops its Newton steps on theta at .Machine$double.eps^0.25, which leaves
theta (so alpha and every SE, which depend on it) ~3e-8 relative apart; R's numeric
extra-days gradient adds ~1e-8. rtol 1e-6 covers that with a 20x margin.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from statsmodels.discrete.discrete_model import NegativeBinomial
from statsmodels.stats.sandwich_covariance import cov_cluster_2groups

from pipeline.stats import _nb2_fit
from pipeline.stats.base import SUMMARY_COLUMNS
from pipeline.stats.nb2 import fit_nb2, lr_test, lr_test_interaction
from pipeline.stats.nb2_result import NB2Result

R_DIR = Path(__file__).parent / "reference_r" / "nb"
R_COVARIATES = ["sex", "diagnosis_group", "region", "age"]
R_AT = (0.0, 90.0, 180.0, 365.0)
N_SETS = 954  # distinct set_id in data.csv (1 000 drawn with replacement for 3 000 rows)
WINDOW_DAYS = 365  # nb.window_days (analysis-spec.md §6.4)
RTOL_PARAMS = 1e-6  # see module docstring: observed differences <= 1e-7
RTOL_ALPHA = 1e-6  # theta.ml's stopping rule leaves ~3e-8
RTOL_SE = 1e-6  # SEs inherit alpha's ~5e-8
SIM_SEED = 20260602
SIM_N = 20_000
TRUE_ALPHA = 0.8
TRUE_BETA = {
    "intercept": 2.5,  # ~12 days after at 0 prior days in control, region A
    "treated": 0.6,
    "prior_days": 0.006,
    "treated:prior_days": -0.0015,
    "region[B]": 0.2,
    "region[C]": -0.3,
}


def simulated(n: int = SIM_N, seed: int = SIM_SEED) -> tuple[pl.DataFrame, np.ndarray]:
    """`n` rows from the NB2 model TRUE_BETA / TRUE_ALPHA, and the design matrix.

    prior_days: 40 % zeros, else uniform 1..365; region A/B/C (A most frequent).
    """
    rng = np.random.default_rng(seed)
    treated = (rng.random(n) < 0.3).astype(float)
    prior = np.where(rng.random(n) < 0.4, 0, rng.integers(1, 366, n)).astype(float)
    region = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    x = np.column_stack(
        [np.ones(n), treated, prior, treated * prior, region == "B", region == "C"]
    ).astype(float)
    mu = np.exp(x @ np.array(list(TRUE_BETA.values())))
    y = rng.negative_binomial(1 / TRUE_ALPHA, 1 / (1 + TRUE_ALPHA * mu))
    frame = pl.DataFrame(
        {"after_days": y, "treated": treated.astype(bool), "prior_days": prior, "region": region}
    )
    return frame, x


def g_computation(x: np.ndarray, beta: np.ndarray, v: float) -> float:
    """Mean over rows of exp(x1 b) - exp(x0 b), columns as in `simulated` (days)."""
    x1, x0 = x.copy(), x.copy()
    x1[:, 1], x1[:, 2], x1[:, 3] = 1.0, v, v
    x0[:, 1], x0[:, 2], x0[:, 3] = 0.0, v, 0.0
    return float(np.mean(np.exp(x1 @ beta) - np.exp(x0 @ beta)))


def test_recovers_planted_coefficients_alpha_and_extra_days() -> None:
    frame, x = simulated()
    res1 = fit_nb2(frame, "after_days", "treated", ["region"])
    assert (res1.converged, res1.method, res1.warnings_) == (True, "newton", ())
    assert res1.reference == {"region": "A"}
    coef = res1.coefficients
    assert coef["term"].to_list() == list(TRUE_BETA)
    for term, est, se in coef.select("term", "estimate", "std_err").iter_rows():
        assert abs(est - TRUE_BETA[term]) < 3 * se, term
    lo, hi = res1.alpha_ci
    assert lo < TRUE_ALPHA < hi
    true_beta = np.array(list(TRUE_BETA.values()))
    extra = res1.extra_days([0, 180])
    for v, ci_low, ci_high in extra.select("prior_days", "ci_low", "ci_high").iter_rows():
        assert ci_low < g_computation(x, true_beta, v) < ci_high, v


def test_extra_days_se_matches_finite_difference_gradient() -> None:
    # The delta-method SE with a numeric gradient of the g-computation, built here from
    # the frame (not from res1.design), against the module's analytic gradient.
    frame, x = simulated(n=4000)
    res1 = fit_nb2(frame, "after_days", "treated", ["region"], cluster=None)
    k = len(res1.terms)
    step = 1e-6
    for v in (0.0, 90.0, 180.0, 365.0):
        grad = np.array(
            [
                (
                    g_computation(x, res1.params_ + step * e, v)
                    - g_computation(x, res1.params_ - step * e, v)
                )
                / (2 * step)
                for e in np.eye(k)
            ]
        )
        row = res1.extra_days([v]).row(0, named=True)
        assert math.isclose(row["extra_days"], g_computation(x, res1.params_, v), rel_tol=1e-12)
        se = math.sqrt(grad @ res1.cov_[:k, :k] @ grad)
        assert math.isclose(row["std_err"], se, rel_tol=1e-6)
        assert math.isclose(row["extra_days"], row["mean_treated"] - row["mean_control"])


# --- pinned R results -------------------------------------------------------------


def r_data() -> pl.DataFrame:
    """The pinned input rows (region codes kept as strings: "01" is not 1) + the offset."""
    return pl.read_csv(R_DIR / "data.csv", schema_overrides={"region": pl.String}).with_columns(
        log_exposure_days=pl.col("exposure_days").log()
    )


def r_results(model: str, vcov: str) -> pl.DataFrame:
    """R's terms, estimates and SEs for one model and covariance type."""
    return (
        pl.read_csv(R_DIR / "results.csv", schema_overrides={"std_err": pl.Float64})
        .filter(model=model, vcov=vcov)
        .drop("model", "vcov")
    )


def r_scalar(model: str, term: str) -> float:
    """One R number (loglik, theta, LR statistic ...) by model and term."""
    rows = pl.read_csv(R_DIR / "results.csv", schema_overrides={"std_err": pl.Float64})
    return rows.filter(model=model, term=term)["estimate"].item()


def fit_r_model(model: str, cluster: str | tuple[str, str] | None) -> NB2Result:
    """Our fit of one of fit.R's models."""
    with_offset = model != "no_offset"
    return fit_nb2(
        r_data(),
        "after_days",
        "treated",
        R_COVARIATES,
        interaction_with=None if model == "main" else "prior_days",
        cluster=cluster,
        offset="log_exposure_days" if with_offset else None,
        window_days=WINDOW_DAYS if with_offset else None,
        extra_at=R_AT,
    )


@pytest.mark.parametrize("model", ["interaction", "main", "no_offset"])
@pytest.mark.parametrize(
    ("vcov", "cluster"),
    [
        ("joint_model", None),
        ("joint_cluster", "lopnr"),
        ("joint_set", "set_id"),
        ("joint_two_way", ("set_id", "lopnr")),
    ],
)
def test_against_r(model: str, vcov: str, cluster: str | tuple[str, str] | None) -> None:
    """R: glm.nb(after_days ~ treated * prior_days + sex + diagnosis_group + region +
    age [+ offset(log(exposure_days))]); joint (beta, alpha) covariance; see fit.R."""
    res1 = fit_r_model(model, cluster)
    res2 = r_results(model, vcov)
    assert (res1.converged, res1.method, res1.warnings_) == (True, "newton", ())
    assert res1.reference == {"sex": "K", "diagnosis_group": "F", "region": "01"}
    clusters = {None: None, "lopnr": 1200, "set_id": N_SETS, ("set_id", "lopnr"): N_SETS}
    assert (res1.n, res1.n_clusters) == (3000, clusters[cluster])
    ours = res1.summary.filter(~pl.col("term").str.starts_with("IRR("))
    assert sorted(ours["term"]) == sorted(res2["term"])
    joined = ours.join(res2, on="term", suffix="_r")
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], rtol=RTOL_PARAMS)
    np.testing.assert_allclose(joined["std_err"], joined["std_err_r"], rtol=RTOL_SE)
    assert math.isclose(1 / res1.alpha_, r_scalar(model, "theta"), rel_tol=RTOL_ALPHA)
    assert math.isclose(res1.log_likelihood, r_scalar(model, "loglik"), rel_tol=1e-12)


def expected_information_bread(res1: NB2Result, y: np.ndarray, log_exposure: np.ndarray):
    """(X'WX)^-1 with W = mu / (1 + alpha mu), theta fixed: R's vcov(glm.nb); and mu."""
    mu = np.exp(res1.design @ res1.params_ + log_exposure)
    w = mu / (1 + res1.alpha_ * mu)
    return np.linalg.inv(res1.design.T @ (w[:, None] * res1.design)), mu


def test_glm_nb_conventions() -> None:
    # R's vcov(glm.nb) and vcovCL(type = "HC1") rebuilt from OUR fit: the bread is the
    # expected information with theta fixed, the meat the beta scores only, and HC1's
    # factor uses K (not K + 1). This pins the whole difference from ours.
    data = r_data()
    y = data["after_days"].to_numpy().astype(float)
    log_exposure = np.log(data["exposure_days"].to_numpy())
    model_res = fit_r_model("interaction", None)
    k = len(model_res.terms)
    bread, mu = expected_information_bread(model_res, y, log_exposure)
    order = [model_res.terms.index(t) for t in r_results("interaction", "glmnb_model")["term"][:k]]
    r_model = r_results("interaction", "glmnb_model")["std_err"][:k].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(bread))[order], r_model, rtol=RTOL_SE)

    cluster_res = fit_r_model("interaction", "lopnr")
    scores = model_res.design * ((y - mu) / (1 + model_res.alpha_ * mu))[:, None]
    ids = np.unique(data["lopnr"].to_numpy(), return_inverse=True)[1]
    g = ids.max() + 1
    by_cluster = np.zeros((g, k))
    np.add.at(by_cluster, ids, scores)
    n = len(y)
    vcovcl = g / (g - 1) * (n - 1) / (n - k) * bread @ by_cluster.T @ by_cluster @ bread
    r_cluster = r_results("interaction", "glmnb_cluster")["std_err"][:k].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(vcovcl))[order], r_cluster, rtol=RTOL_SE)

    # Two-way (vcovCL(cluster = ~ lopnr + set_id, multi0 = FALSE)): the three meats
    # (person, set, person x set subtracted) each with its own G/(G-1).
    sets = data["set_id"].to_numpy()
    pairs = np.unique(
        np.column_stack([data["lopnr"].to_numpy(), sets]), axis=0, return_inverse=True
    )
    meat = np.zeros((k, k))
    for codes, sign in ((ids, 1), (np.unique(sets, return_inverse=True)[1], 1), (pairs[1], -1)):
        sums = np.zeros((codes.max() + 1, k))
        np.add.at(sums, codes.ravel(), scores)
        g = len(sums)
        meat += sign * g / (g - 1) * sums.T @ sums
    two_way = (n - 1) / (n - k) * bread @ meat @ bread
    r_two_way = r_results("interaction", "glmnb_two_way")["std_err"][:k].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(two_way))[order], r_two_way, rtol=RTOL_SE)

    # ... and ours is genuinely not R's glm.nb convention (not a tolerance question).
    assert np.abs(model_res.std_err[order] / r_model - 1).max() > 5e-3
    assert np.abs(cluster_res.std_err[order] / r_cluster - 1).max() > 2e-2


def test_cluster_cov_is_statsmodels_cov_type_cluster() -> None:
    # The module computes the cluster covariance after the fit (cov_cluster) so that a
    # singular one cannot lose the estimates; it is the fit(cov_type="cluster") matrix.
    data = r_data()
    res1 = fit_r_model("interaction", "lopnr")
    model = NegativeBinomial(
        data["after_days"].to_numpy(),
        res1.design,
        loglike_method="nb2",
        offset=data["log_exposure_days"].to_numpy(),
    )
    groups = np.unique(data["lopnr"].to_numpy(), return_inverse=True)[1]
    res2 = model.fit(
        method="newton",
        disp=False,
        cov_type="cluster",
        cov_kwds={"groups": groups, "use_correction": True},
    )
    np.testing.assert_allclose(res1.cov_, res2.cov_params(), rtol=1e-10)


def test_two_way_cov_is_statsmodels_cov_cluster_2groups() -> None:
    # statsmodels' own two-way estimator (cov0 + cov1 - cov01, each with
    # use_correction) on its fit equals ours: an implementation independent of ours.
    data = r_data()
    res1 = fit_r_model("interaction", ("lopnr", "set_id"))
    model = NegativeBinomial(
        data["after_days"].to_numpy(),
        res1.design,
        loglike_method="nb2",
        offset=data["log_exposure_days"].to_numpy(),
    )
    res2 = model.fit(method="newton", disp=False, maxiter=100)
    groups = [np.unique(data[c].to_numpy(), return_inverse=True)[1] for c in ("lopnr", "set_id")]
    cov2 = cov_cluster_2groups(res2, groups[0], groups[1], use_correction=True)[0]
    np.testing.assert_allclose(res1.cov_, cov2, rtol=1e-6)
    assert res1.cov_type == "cluster_two_way"
    with pytest.raises(ValueError, match="two distinct"):
        fit_r_model("interaction", ("lopnr", "lopnr"))


def test_lr_test_against_r() -> None:
    """R: anova(main, interaction) for negbin fits; p from pchisq(upper tail)."""
    res1 = lr_test_interaction(
        r_data(),
        "after_days",
        "treated",
        R_COVARIATES,
        offset="log_exposure_days",
        window_days=WINDOW_DAYS,
    )
    assert res1.df == r_scalar("lr_interaction", "df") == 1
    assert math.isclose(res1.statistic, r_scalar("lr_interaction", "statistic"), rel_tol=1e-6)
    assert math.isclose(res1.p_value, r_scalar("lr_interaction", "p_value"), rel_tol=1e-5)
    assert "ignores clustering" in res1.note
    assert res1.warnings == ()
    main = fit_r_model("main", None)
    full = fit_r_model("interaction", None)
    assert lr_test(main, full).statistic == res1.statistic
    reused = lr_test_interaction(
        r_data(),
        "after_days",
        "treated",
        R_COVARIATES,
        offset="log_exposure_days",
        window_days=WINDOW_DAYS,
        full=fit_r_model("interaction", "lopnr"),
    )
    assert reused.statistic == res1.statistic
    with pytest.raises(ValueError, match="nested"):
        lr_test(full, main)


def test_summary_frame_layout() -> None:
    res1 = fit_r_model("interaction", "lopnr")
    summary = res1.summary
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["model"].unique().to_list() == ["nb2_after_days"]
    assert summary["n"].dtype == pl.Int64
    k = len(res1.terms)
    terms = summary["term"].to_list()
    assert terms[:4] == ["intercept", "treated", "prior_days", "treated:prior_days"]
    assert terms[k : 2 * k] == [f"IRR({t})" for t in res1.terms]
    assert terms[2 * k :] == ["alpha", *[f"extra_days(prior_days={v:g})" for v in R_AT]]
    coef = summary.row(by_predicate=pl.col("term") == "treated", named=True)
    irr = summary.row(by_predicate=pl.col("term") == "IRR(treated)", named=True)
    assert math.isclose(irr["estimate"], math.exp(coef["estimate"]))
    assert math.isclose(irr["ci_low"], math.exp(coef["ci_low"]))
    assert math.isclose(irr["std_err"], irr["estimate"] * coef["std_err"])
    assert irr["p_value"] == coef["p_value"]
    alpha = summary.row(by_predicate=pl.col("term") == "alpha", named=True)
    assert alpha["ci_low"] < alpha["estimate"] < alpha["ci_high"]
    assert math.isclose(
        math.log(alpha["ci_high"]) - math.log(alpha["estimate"]),
        1.959963984540054 * alpha["std_err"] / alpha["estimate"],
    )
    assert math.isnan(alpha["p_value"])
    extra = res1.extra_days()
    assert extra.columns == [
        "prior_days",
        "extra_days",
        "std_err",
        "ci_low",
        "ci_high",
        "mean_treated",
        "mean_control",
        "n",
    ]
    assert extra["prior_days"].to_list() == list(R_AT)
    meta = json.loads(json.dumps(res1.metadata()))
    assert (meta["n"], meta["n_clusters"], meta["cov_type"], meta["method"]) == (
        3000,
        1200,
        "cluster",
        "newton",
    )
    assert meta["offset"] == "log_exposure_days"
    assert meta["interaction_term"] == "treated:prior_days"
    assert math.isclose(meta["alpha"], res1.alpha_)


def test_full_window_offset_equals_no_offset() -> None:
    # Everyone observed for the whole window: log(365) moves into the intercept and the
    # extra days (predicted for the full window) are unchanged.
    frame, _ = simulated(n=3000)
    plain = fit_nb2(frame, "after_days", "treated", ["region"])
    offset = fit_nb2(
        frame.with_columns(log_exposure_days=pl.lit(math.log(WINDOW_DAYS))),
        "after_days",
        "treated",
        ["region"],
        offset="log_exposure_days",
        window_days=WINDOW_DAYS,
    )
    shift = np.zeros(len(plain.terms))
    shift[0] = math.log(WINDOW_DAYS)
    np.testing.assert_allclose(offset.params_ + shift, plain.params_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(offset.std_err, plain.std_err, rtol=1e-6)
    np.testing.assert_allclose(
        offset.extra_days()["extra_days"], plain.extra_days()["extra_days"], rtol=1e-7
    )
    with pytest.raises(ValueError, match="needs window_days"):
        offset.extra_days(window_days=0)
    with pytest.raises(ValueError, match="only to a model with an offset"):
        plain.extra_days(window_days=WINDOW_DAYS)


def test_row_order_does_not_matter() -> None:
    data = r_data()
    args = {"offset": "log_exposure_days", "window_days": WINDOW_DAYS, "cluster": "lopnr"}
    res1 = fit_nb2(data, "after_days", "treated", R_COVARIATES, **args)
    shuffled = fit_nb2(
        data.sample(fraction=1.0, shuffle=True, seed=7),
        "after_days",
        "treated",
        R_COVARIATES,
        **args,
    )
    np.testing.assert_allclose(shuffled.params_, res1.params_, rtol=1e-8)
    np.testing.assert_allclose(shuffled.std_err, res1.std_err, rtol=1e-8)
    assert math.isclose(shuffled.alpha_, res1.alpha_, rel_tol=1e-8)
    np.testing.assert_allclose(
        shuffled.extra_days()["std_err"], res1.extra_days()["std_err"], rtol=1e-8
    )


# --- pre-fit checks, unfittable models, optimiser fallback -------------------------


def small_frame() -> pl.DataFrame:
    """300 rows of NB2 counts; region 'x' most frequent; 100 persons (3 rows each)."""
    frame, _ = simulated(n=300, seed=3)
    return frame.with_columns(
        region=pl.Series(["x"] * 150 + ["y"] * 90 + ["z"] * 60),
        sex=pl.Series(["K", "M"] * 150),
        insured_type=pl.lit("anstalld"),
        age=pl.Series(np.random.default_rng(4).integers(20, 65, 300)),
        lopnr=pl.int_range(300) // 3,
    )


def test_all_zero_outcome_gives_nan_and_warning() -> None:
    frame = small_frame().with_columns(after_days=pl.lit(0))
    res1 = fit_nb2(frame, "after_days", "treated", ["region", "sex"], cluster="lopnr")
    assert not res1.converged
    assert res1.method is None
    assert np.isnan(res1.params_).all() and math.isnan(res1.alpha_)
    assert res1.warnings_[-1] == "not fitted: outcome 'after_days' is 0 in all 300 rows"
    summary = res1.summary
    # 6 terms (intercept, treated, prior_days, interaction, region y/z, sex M) = 7,
    # 7 IRR, alpha, 2 extra days
    assert summary.height == 7 + 7 + 1 + 2
    assert summary["estimate"].is_nan().all()
    assert res1.extra_days()["extra_days"].is_nan().all()
    assert json.loads(json.dumps(res1.metadata()))["alpha"] is None


def test_constant_treatment_and_one_cluster_give_nan() -> None:
    frame = small_frame()
    res1 = fit_nb2(frame.with_columns(treated=pl.lit(True)), "after_days", "treated", [])
    assert res1.warnings_[-1] == "not fitted: treatment 'treated' is constant (1 in all 300 rows)"
    res1 = fit_nb2(frame, "after_days", "treated", [], cluster="insured_type")
    assert res1.n_clusters == 1
    assert res1.warnings_[-1] == "not fitted: fewer than 2 clusters"


def test_one_level_covariate_and_constant_numeric_are_dropped() -> None:
    frame = small_frame()
    res1 = fit_nb2(frame, "after_days", "treated", ["region", "insured_type", "sex"])
    assert res1.converged
    assert res1.dropped_covariates == ("insured_type",)
    assert "covariate 'insured_type' dropped: one level 'anstalld' (n=300)" in res1.warnings_
    assert not any(t.startswith("insured_type") for t in res1.terms)
    # A constant interaction column takes its interaction term with it; extra_days is
    # then NaN (nothing to set), not an extrapolation.
    flat = fit_nb2(frame.with_columns(prior_days=pl.lit(0.0)), "after_days", "treated", [])
    assert flat.terms == ("intercept", "treated")
    assert "numeric column 'prior_days' dropped: zero variance (all 0)" in flat.warnings_
    assert flat.interaction_term is None
    assert flat.extra_days()["extra_days"].is_nan().all()


def test_nulls_and_invalid_rows_are_dropped_and_counted() -> None:
    i = pl.int_range(300)
    frame = (
        small_frame()
        .with_columns(
            region=pl.when(i < 3).then(None).otherwise("region"),
            prior_days=pl.when(i.is_in([2, 5])).then(float("nan")).otherwise("prior_days"),
            lopnr=pl.when(i == 10).then(None).otherwise("lopnr"),
            after_days=pl.when(i == 11).then(-1).otherwise("after_days"),
            exposure_days=pl.when(i.is_in([12, 13])).then(0).otherwise(WINDOW_DAYS),
        )
        .with_columns(log_exposure_days=pl.col("exposure_days").log())
    )  # log(0) = -inf
    res1 = fit_nb2(
        frame,
        "after_days",
        "treated",
        ["region"],
        cluster="lopnr",
        offset="log_exposure_days",
        window_days=WINDOW_DAYS,
    )
    assert (res1.n, res1.n_dropped) == (292, 8)
    assert res1.warnings_[:2] == (
        "7 of 300 rows dropped for nulls/NaN/inf "
        "(prior_days: 2, region: 3, lopnr: 1, log_exposure_days: 2)",
        "1 rows dropped: outcome 'after_days' < 0",
    )
    assert res1.converged
    assert res1.metadata()["n_dropped"] == 8


def test_offset_on_the_day_scale_is_warned() -> None:
    # The offset enters the linear predictor as is: passing days instead of log(days)
    # is a likely slip, flagged (not silently refitted).
    frame = small_frame().with_columns(exposure_days=pl.lit(WINDOW_DAYS))
    res1 = fit_nb2(
        frame, "after_days", "treated", [], offset="exposure_days", window_days=WINDOW_DAYS
    )
    assert any(w.endswith("is the offset on the log scale?") for w in res1.warnings_)


def test_model_without_numeric_column_has_no_extra_days() -> None:
    res1 = fit_nb2(small_frame(), "after_days", "treated", ["region"], None, numeric=())
    assert res1.terms == ("intercept", "treated", "region[y]", "region[z]")
    assert res1.interaction_with is None
    assert not res1.summary["term"].str.starts_with("extra_days").any()
    with pytest.raises(ValueError, match="no numeric column"):
        res1.extra_days([0])


def test_zero_outcome_arm_is_warned() -> None:
    frame = small_frame().with_columns(
        after_days=pl.when(pl.col("region") == "z").then(0).otherwise("after_days")
    )
    res1 = fit_nb2(frame, "after_days", "treated", ["region"])
    assert any(w.startswith("all 60 rows with region=z have outcome 0") for w in res1.warnings_)


def test_little_overdispersion_and_optimiser_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    # Little overdispersion (alpha = 0.01): statsmodels' Newton (on alpha) stepped to
    # alpha < 0 here; ours works on log alpha and reaches the maximum statsmodels' BFGS
    # finds. When our Newton fails, BFGS takes over with the same estimates.
    rng = np.random.default_rng(0)
    n = 3000
    treated = rng.random(n) < 0.3
    prior = rng.integers(0, 365, n)
    mu = np.exp(1.0 + 0.5 * treated + 0.004 * prior - 0.001 * treated * prior)
    alpha = 0.01
    frame = pl.DataFrame(
        {
            "after_days": rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)),
            "treated": treated,
            "prior_days": prior,
        }
    )
    res1 = fit_nb2(frame, "after_days", "treated", [])
    assert (res1.converged, res1.method, res1.warnings_) == (True, "newton", ())
    assert 0 < res1.alpha_ < 0.05
    res2 = NegativeBinomial(frame["after_days"].to_numpy(), res1.design, loglike_method="nb2").fit(
        method="bfgs", maxiter=2000, disp=False
    )
    np.testing.assert_allclose(res1.params_, res2.params[:-1], rtol=1e-4)
    assert math.isclose(res1.alpha_, res2.params[-1], rel_tol=1e-3)
    failing = (np.full(res1.design.shape[1] + 1, 0.1), "x", None)
    monkeypatch.setattr(_nb2_fit, "_newton", lambda counts, x, off: failing)
    res3 = fit_nb2(frame, "after_days", "treated", [])
    assert (res3.converged, res3.method) == (True, "bfgs")
    assert res3.warnings_[0].startswith("optimiser 'newton' failed (x)")
    np.testing.assert_allclose(res3.params_, res1.params_, rtol=1e-4)


def test_no_overdispersion_is_flagged_as_not_converged() -> None:
    # Poisson counts (this seed: underdispersed given the covariates): the MLE of alpha
    # is on the boundary 0, no optimiser reaches an interior maximum and the Hessian
    # is singular there. The estimates are kept, flagged, with NaN model-based SEs.
    rng = np.random.default_rng(5)
    n = 2000
    treated = rng.random(n) < 0.3
    frame = pl.DataFrame(
        {
            "after_days": rng.poisson(np.exp(2.0 + 0.5 * treated)),
            "treated": treated,
            "prior_days": rng.integers(0, 365, n),
        }
    )
    res1 = fit_nb2(frame, "after_days", "treated", [])
    assert not res1.converged
    assert any(w.startswith("did not converge (newton: ") for w in res1.warnings_)
    assert any(w.startswith("alpha at the boundary") for w in res1.warnings_)
    assert res1.method == "newton"  # the highest log-likelihood of the three, nearest 0
    assert res1.alpha_ < 1e-4
    assert abs(res1.params_[1] - 0.5) < 0.1  # the Poisson-like estimates are still usable
    assert np.isnan(res1.std_err).all()


def test_reference_levels() -> None:
    frame = small_frame()
    assert fit_nb2(frame, "after_days", "treated", ["region", "sex"]).reference == {
        "region": "x",
        "sex": "K",  # 150 K vs 150 M: tie broken by the sorted name
    }
    chosen = fit_nb2(frame, "after_days", "treated", ["region"], reference={"region": "z"})
    assert chosen.terms[-2:] == ("region[x]", "region[y]")


def test_bad_arguments_raise() -> None:
    frame = small_frame()
    with pytest.raises(ValueError, match="columns not in frame"):
        fit_nb2(frame, "after_days", "treated", ["nope"])
    with pytest.raises(ValueError, match="needs window_days"):
        fit_nb2(frame, "after_days", "treated", [], offset="age")
    with pytest.raises(TypeError, match="must be numeric"):
        fit_nb2(frame, "after_days", "treated", [], numeric=["region"])
    with pytest.raises(ValueError, match="must be bool or 0/1"):
        fit_nb2(frame.with_columns(treated=pl.lit(2)), "after_days", "treated", [])
