"""fit_logit: recovery of a planted model, pins against R, pre-fit checks; proportion tests.

The R pins (`tests/reference_r/logit/`) were produced by `fit.R` in that folder
(`Rscript tests/reference_r/logit/fit.R` from the repo root rewrites `results.csv`
byte for byte; `--make-data` first rewrites `data.csv` from its seed). R is not
needed here. Ours is `res1`, R's is `res2`.

SE conventions reconciled below (N rows, K parameters, G clusters):
- logit, no cluster: inverse Hessian = R `vcov(glm)` (the same matrix for the
  canonical logit link; they differ only by convergence, ~1e-13 here).
- logit with cluster: statsmodels `use_correction=True` gives
  G/(G-1) * (N-1)/(N-K) * H^-1 (sum_g s_g s_g') H^-1 = R `sandwich::vcovCL(fit,
  cluster = ~id, type = "HC1")` (cadjust = TRUE). Stata `logit, vce(cluster id)`
  uses G/(G-1) only = `vcovCL(type = "HC0")`: SE_stata = SE_ours * sqrt((N-K)/(N-1)),
  checked against R's HC0 column rather than absorbed in a tolerance.
- lpm: HC1 = N/(N-K) * HC0 = R `vcovHC(type = "HC1")`; with clusters the same
  factor as the logit = R `vcovCL(type = "HC1")` = Stata `regress, vce(cluster id)`.
- AME SE: delta method g' V g with the same V; R uses a central-difference numeric
  gradient, we use the analytic one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import special
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from pipeline.report.formatting import stars
from pipeline.stats.base import SUMMARY_COLUMNS
from pipeline.stats.logit import fit_logit
from pipeline.stats.proportions import newcombe_diff_ci, two_proportion_z, wilson_ci

R_DIR = Path(__file__).parent / "reference_r" / "logit"
R_COVARIATES = ["region", "education", "age"]
# Both fits converge to ~1e-14; the loosest R quantity is the AME SE, whose numeric
# gradient (central differences, h = 1e-6) is good to ~1e-10 relative.
RTOL_PARAMS = 1e-7
RTOL_SE = 1e-7
SIM_SEED = 20260601
SIM_N = 20_000
TRUE_BETA = {
    "intercept": -0.4,
    "treated": 0.5,  # true log-OR
    "region[B]": 0.3,
    "region[C]": -0.6,
    "sex[M]": 0.25,
}


def simulated() -> tuple[pl.DataFrame, np.ndarray]:
    """SIM_N rows from the logistic model TRUE_BETA, and the true linear predictor per row.

    region A/B/C (A most frequent = reference), sex K/M (K most frequent).
    """
    rng = np.random.default_rng(SIM_SEED)
    treated = rng.random(SIM_N) < 0.3
    region = rng.choice(["A", "B", "C"], SIM_N, p=[0.5, 0.3, 0.2])
    sex = rng.choice(["K", "M"], SIM_N, p=[0.55, 0.45])
    x_rest = (
        TRUE_BETA["intercept"]
        + TRUE_BETA["region[B]"] * (region == "B")
        + TRUE_BETA["region[C]"] * (region == "C")
        + TRUE_BETA["sex[M]"] * (sex == "M")
    )
    eta = x_rest + TRUE_BETA["treated"] * treated
    y = rng.random(SIM_N) < special.expit(eta)
    frame = pl.DataFrame({"y": y, "treated": treated, "region": region, "sex": sex})
    return frame, x_rest


def test_recovers_planted_coefficients_and_ame() -> None:
    frame, x_rest = simulated()
    res1 = fit_logit(frame, "y", "treated", ["region", "sex"])
    assert res1.converged
    assert res1.warnings_ == ()
    assert res1.reference == {"region": "A", "sex": "K"}
    coef = res1.coefficients
    assert coef["term"].to_list() == list(TRUE_BETA)
    for term, est, se in coef.select("term", "estimate", "std_err").iter_rows():
        assert abs(est - TRUE_BETA[term]) < 3 * se, term
    true_ame_pp = 100 * np.mean(
        special.expit(x_rest + TRUE_BETA["treated"]) - special.expit(x_rest)
    )
    lo, hi = res1.ame_pp_ci
    assert lo < true_ame_pp < hi
    assert math.isclose(res1.odds_ratio, math.exp(coef["estimate"][1]))


def test_ame_gradient_matches_finite_differences() -> None:
    # Delta-method SE with a numeric gradient of the AME, computed here from scratch.
    frame, _ = simulated()
    res1 = fit_logit(frame.head(3000), "y", "treated", ["region", "sex"])
    design = np.column_stack(
        [
            np.ones(3000),
            np.zeros(3000),
            *[
                (frame.head(3000)[c] == lv).to_numpy()
                for c, lv in [("region", "B"), ("region", "C"), ("sex", "M")]
            ],
        ]
    ).astype(float)

    def ame(beta: np.ndarray) -> float:
        x1, x0 = design.copy(), design.copy()
        x1[:, 1] = 1.0
        return 100 * float(np.mean(special.expit(x1 @ beta) - special.expit(x0 @ beta)))

    step = 1e-6
    grad = np.array(
        [
            (ame(res1.params_ + step * e) - ame(res1.params_ - step * e)) / (2 * step)
            for e in np.eye(5)
        ]
    )
    assert math.isclose(res1.ame_pp, ame(res1.params_), rel_tol=1e-12)
    assert math.isclose(res1.ame_pp_se, math.sqrt(grad @ res1.cov_ @ grad), rel_tol=1e-7)


# --- pinned R results -------------------------------------------------------------


def r_data() -> pl.DataFrame:
    """The pinned input rows (region codes kept as strings: "03" is not 3)."""
    return pl.read_csv(
        R_DIR / "data.csv", schema_overrides={"region": pl.String, "education": pl.String}
    )


def r_results(model: str, vcov: str) -> pl.DataFrame:
    """R's terms, estimates and SEs for one model and covariance type."""
    return pl.read_csv(R_DIR / "results.csv").filter(model=model, vcov=vcov).drop("model", "vcov")


@pytest.mark.parametrize(
    ("model", "vcov", "cluster"),
    [
        ("logit", "model", None),  # glm: vcov()
        ("logit", "cluster_hc1", "id"),  # vcovCL(type = "HC1")
        ("lpm", "hc1", None),  # lm: vcovHC(type = "HC1")
        ("lpm", "cluster_hc1", "id"),  # lm: vcovCL(type = "HC1")
    ],
)
def test_against_r(model: str, vcov: str, cluster: str | None) -> None:
    """R: glm(y ~ treated + region + education + age, binomial) / lm(same); see fit.R."""
    res1 = fit_logit(r_data(), "y", "treated", R_COVARIATES, cluster=cluster, model=model)
    res2 = r_results(model, vcov)
    assert res1.warnings_ == ()
    assert res1.reference == {"region": "05", "education": "gymnasial"}
    assert res1.n == 1200
    assert res1.n_clusters == (500 if cluster else None)
    ours = res1.summary.filter(pl.col("term") != "OR(treated)")
    assert sorted(ours["term"]) == sorted(res2["term"])
    joined = ours.join(res2, on="term", suffix="_r")
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], rtol=RTOL_PARAMS)
    np.testing.assert_allclose(joined["std_err"], joined["std_err_r"], rtol=RTOL_SE)


def test_stata_logit_cluster_convention() -> None:
    # Stata's `logit, vce(cluster id)` = R vcovCL(type = "HC0"): only G/(G-1).
    res1 = fit_logit(r_data(), "y", "treated", R_COVARIATES, cluster="id")
    res2 = r_results("logit", "cluster_hc0")
    n, k = res1.n, len(res1.terms)
    stata_se = res1.summary.filter(pl.col("term") != "OR(treated)")["std_err"]
    np.testing.assert_allclose(
        stata_se * math.sqrt((n - k) / (n - 1)), res2["std_err"], rtol=RTOL_SE
    )


def test_summary_frame_layout() -> None:
    res1 = fit_logit(r_data(), "y", "treated", R_COVARIATES, cluster="id", name="durable_any_lt2")
    summary = res1.summary
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["model"].unique().to_list() == ["durable_any_lt2"]
    assert summary["n"].dtype == pl.Int64
    meta = json.loads(json.dumps(res1.metadata()))
    assert (meta["n"], meta["n_clusters"], meta["cov_type"]) == (1200, 500, "cluster")
    assert summary["term"].to_list()[-2:] == ["OR(treated)", "AME_pp(treated)"]
    odds = summary.row(by_predicate=pl.col("term") == "OR(treated)", named=True)
    logit = summary.row(by_predicate=pl.col("term") == "treated", named=True)
    assert math.isclose(odds["estimate"], math.exp(logit["estimate"]))
    assert math.isclose(odds["ci_low"], math.exp(logit["ci_low"]))
    assert math.isclose(odds["ci_high"], math.exp(logit["ci_high"]))
    assert odds["p_value"] == logit["p_value"] == res1.p_value
    lpm = fit_logit(r_data(), "y", "treated", R_COVARIATES, model="lpm").summary
    assert "OR(treated)" not in lpm["term"].to_list()
    coef = lpm.row(by_predicate=pl.col("term") == "treated", named=True)
    ame = lpm.row(by_predicate=pl.col("term") == "AME_pp(treated)", named=True)
    assert math.isclose(ame["estimate"], 100 * coef["estimate"])
    assert math.isclose(ame["ci_high"], 100 * coef["ci_high"])


def test_row_order_does_not_matter() -> None:
    data = r_data()
    res1 = fit_logit(data, "y", "treated", R_COVARIATES, cluster="id")
    shuffled = fit_logit(
        data.sample(fraction=1.0, shuffle=True, seed=7), "y", "treated", R_COVARIATES, cluster="id"
    )
    np.testing.assert_allclose(shuffled.params_, res1.params_, rtol=1e-9)
    np.testing.assert_allclose(shuffled.std_err, res1.std_err, rtol=1e-9)
    assert math.isclose(shuffled.ame_pp_se, res1.ame_pp_se, rel_tol=1e-9)


# --- pre-fit checks and unfittable models -------------------------------------------


def small_frame() -> pl.DataFrame:
    """40 rows: outcome varies within every level; region 'x' most frequent."""
    rng = np.random.default_rng(1)
    return pl.DataFrame(
        {
            "y": rng.random(40) < 0.5,
            "treated": np.arange(40) % 3 == 0,
            "region": ["x"] * 20 + ["y"] * 12 + ["z"] * 8,
            "sex": ["K", "M"] * 20,
            "insured_type": ["anstalld"] * 40,
            "age": rng.integers(20, 65, 40),
        }
    ).with_columns(pl.col("y").or_(pl.int_range(40) % 5 == 0))


def test_constant_outcome_gives_nan_and_warning() -> None:
    frame = small_frame().with_columns(y=pl.lit(True))
    res1 = fit_logit(frame, "y", "treated", ["region", "sex"])
    assert not res1.converged
    assert np.isnan(res1.params_).all()
    assert math.isnan(res1.ame_pp)
    assert math.isnan(res1.p_value)
    assert stars(res1.p_value) == ""
    assert res1.warnings_[-1] == "not fitted: outcome 'y' is constant (1 in all 40 rows)"
    summary = res1.summary
    assert summary.height == 7  # intercept, treated, region[y], region[z], sex[M], OR, AME
    assert summary["estimate"].is_nan().all()


def test_constant_treatment_gives_nan_and_warning() -> None:
    frame = small_frame().with_columns(treated=pl.lit(False))
    res1 = fit_logit(frame, "y", "treated", ["sex"], model="lpm")
    assert np.isnan(res1.params_).all()
    assert "treatment 'treated' is constant" in res1.warnings_[-1]


def test_one_level_covariate_is_dropped_with_warning() -> None:
    res1 = fit_logit(small_frame(), "y", "treated", ["region", "insured_type", "sex"])
    assert res1.converged
    assert res1.dropped_covariates == ("insured_type",)
    assert "covariate 'insured_type' dropped: one level 'anstalld' (n=40)" in res1.warnings_
    assert not any(t.startswith("insured_type") for t in res1.terms)


def test_separation_is_warned_and_still_fitted() -> None:
    frame = small_frame().with_columns(y=pl.when(pl.col("region") == "z").then(True).otherwise("y"))
    res1 = fit_logit(frame, "y", "treated", ["region", "sex"])
    assert any(
        w.startswith("quasi-complete separation: all 8 rows with region=z have outcome 1")
        for w in res1.warnings_
    )
    assert np.isfinite(res1.params_[1])  # the treatment term is still estimated
    lpm = fit_logit(frame, "y", "treated", ["region", "sex"], model="lpm")
    assert lpm.warnings_ == ()  # separation does not affect a linear model


def test_treatment_arm_separation_is_warned() -> None:
    # Every treated row has outcome 1: the log-OR runs off to infinity.
    frame = small_frame().with_columns(y=pl.col("y") | pl.col("treated"))
    res1 = fit_logit(frame, "y", "treated", ["sex"])
    assert res1.warnings_[0].startswith(
        "quasi-complete separation: all 14 rows with treated=1 have outcome 1; "
        "the treatment effect is not identified"
    )
    assert not res1.converged
    assert "did not converge in 100 Newton steps" in res1.warnings_
    assert res1.std_err[1] > 1e3  # no spurious star from an unbounded estimate
    assert stars(res1.p_value) == ""


def test_nulls_are_dropped_and_counted() -> None:
    frame = small_frame().with_columns(
        region=pl.when(pl.int_range(40) < 3).then(None).otherwise("region"),
        age=pl.when(pl.int_range(40).is_in([2, 5])).then(None).otherwise("age"),
    )
    res1 = fit_logit(frame, "y", "treated", ["region", "age"])
    assert (res1.n, res1.n_dropped) == (36, 4)
    assert "4 of 40 rows dropped for nulls/NaN (region: 3, age: 2)" in res1.warnings_
    assert res1.metadata()["n_dropped"] == 4


def test_no_rows_left_gives_nan_and_warning() -> None:
    frame = small_frame().with_columns(y=pl.lit(None, pl.Boolean))
    res1 = fit_logit(frame, "y", "treated", ["region"], cluster="age")
    assert (res1.n, res1.n_dropped, res1.n_clusters) == (0, 40, 0)
    assert res1.terms == ("intercept", "treated")
    assert res1.warnings_[-1] == "not fitted: no rows left"
    assert res1.summary["estimate"].is_nan().all()


def test_one_cluster_gives_nan_and_warning() -> None:
    res1 = fit_logit(small_frame(), "y", "treated", ["sex"], cluster="insured_type")
    assert res1.n_clusters == 1
    assert res1.warnings_[-1] == "not fitted: fewer than 2 clusters"


def test_nan_in_float_covariate_counts_as_missing() -> None:
    frame = small_frame().with_columns(
        age=pl.when(pl.int_range(40) == 0)
        .then(float("nan"))
        .otherwise(pl.col("age").cast(pl.Float64))
    )
    assert fit_logit(frame, "y", "treated", ["age"]).n_dropped == 1


def test_aliased_term_is_dropped_with_warning() -> None:
    frame = small_frame().with_columns(region_copy=pl.col("region"))
    res1 = fit_logit(frame, "y", "treated", ["region", "region_copy"])
    assert "aliased terms dropped: ['region_copy[y]', 'region_copy[z]']" in res1.warnings_
    np.testing.assert_allclose(
        res1.params_, fit_logit(frame, "y", "treated", ["region"]).params_, rtol=1e-9
    )


def test_large_scale_numeric_column_is_not_aliased() -> None:
    frame = small_frame().with_columns(income_sek=pl.col("age") * 12_345.0 + 1e6)
    res1 = fit_logit(frame, "y", "treated", ["region", "income_sek"], model="lpm")
    assert res1.terms[-1] == "income_sek"
    assert res1.warnings_ == ()


def test_reference_levels() -> None:
    frame = small_frame()
    assert fit_logit(frame, "y", "treated", ["region", "sex"]).reference == {
        "region": "x",
        "sex": "K",  # 20 K vs 20 M: tie broken by the sorted name
    }
    chosen = fit_logit(frame, "y", "treated", ["region"], reference={"region": "z"})
    assert chosen.terms == ("intercept", "treated", "region[x]", "region[y]")
    absent = fit_logit(frame, "y", "treated", ["region"], reference={"region": "w"})
    assert absent.reference == {"region": "x"}
    assert "reference 'w' of 'region' absent; used 'x'" in absent.warnings_


def test_bad_arguments_raise() -> None:
    frame = small_frame()
    with pytest.raises(ValueError, match="model must be one of"):
        fit_logit(frame, "y", "treated", [], model="probit")
    with pytest.raises(ValueError, match="columns not in frame"):
        fit_logit(frame, "y", "treated", ["nope"])
    with pytest.raises(ValueError, match="must be bool or 0/1"):
        fit_logit(frame.with_columns(y=pl.lit(2)), "y", "treated", [])


# --- stars and proportion tests -----------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0.0009999, "***"), (0.001, "**"), (0.00999, "**"), (0.01, ""), (0.04, ""), (0.5, "")],
)
def test_stars_have_no_single_star_level(p: float, expected: str) -> None:
    assert stars(p) == expected


def test_wilson_textbook_value() -> None:
    # Newcombe (1998a), Stat Med 17:857, example 81/263: 0.2553 to 0.3662.
    lo, hi = wilson_ci(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    assert wilson_ci(0, 10)[0] == 0.0
    assert wilson_ci(10, 10)[1] == 1.0


def test_newcombe_textbook_value() -> None:
    # Newcombe (1998b), Stat Med 17:873, Table II (a) 56/70 - 48/80, method 10:
    # 0.0524 to 0.3339.
    lo, hi = newcombe_diff_ci(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(56, 70, 48, 80), (3, 40, 0, 25), (15_627, 19_757, 134_387, 168_532)]
)
def test_proportions_against_statsmodels(x1: int, n1: int, x2: int, n2: int) -> None:
    for level in (0.95, 0.99):
        np.testing.assert_allclose(
            wilson_ci(x1, n1, level), proportion_confint(x1, n1, 1 - level, "wilson"), rtol=1e-12
        )
        np.testing.assert_allclose(
            newcombe_diff_ci(x1, n1, x2, n2, level),
            confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", alpha=1 - level),
            rtol=1e-10,
            atol=1e-14,
        )
    _, p_ref = proportions_ztest([x1, x2], [n1, n2])
    assert math.isclose(two_proportion_z(x1, n1, x2, n2), p_ref, rel_tol=1e-10)


def test_proportion_edge_cases() -> None:
    assert two_proportion_z(0, 10, 0, 20) == 1.0
    with pytest.raises(ValueError):
        wilson_ci(5, 0)
    with pytest.raises(ValueError):
        two_proportion_z(11, 10, 1, 10)
