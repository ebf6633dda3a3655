"""fit_fractional: pins against R, a planted share model recovered, g-computation, edge cases.

The R pins (`tests/reference_r/fractional/`) were produced by `fit.R` there from the
NB2 pins' rows (`tests/reference_r/nb/data.csv`, complete windows): R
`glm(family = quasibinomial)`, `vcov` and `sandwich::vcovCL(type = "HC1")` by person,
set and two-way (multi0 = FALSE). Ours is `res1`, R's is `res2`. Both IRLS fits run to
a relative deviance change of 1e-14 / 1e-12: coefficients agree to ~1e-10; R's numeric
extra-days gradient adds ~1e-8, hence RTOL 1e-6.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.special import expit

from pipeline.rules.prior_form import build_form
from pipeline.stats.base import SUMMARY_COLUMNS
from pipeline.stats.fractional import fit_fractional

R_DIR = Path(__file__).parent / "reference_r" / "fractional"
NB_DATA = Path(__file__).parent / "reference_r" / "nb" / "data.csv"
R_COVARIATES = ["sex", "diagnosis_group", "region", "age"]
R_AT = (0.0, 90.0, 180.0, 365.0)
WINDOW_DAYS = 365
RTOL = 1e-6
TRUE_BETA = np.array([-2.0, 0.8, 0.004, -0.002, 0.3])  # intercept, treated, prior, inter, B


def r_data() -> pl.DataFrame:
    """The NB2 pins' rows (region codes as strings: "01" is not 1)."""
    return pl.read_csv(NB_DATA, schema_overrides={"region": pl.String})


def r_results(vcov: str) -> pl.DataFrame:
    """R's terms, estimates and SEs for one covariance."""
    rows = pl.read_csv(R_DIR / "results.csv", schema_overrides={"std_err": pl.Float64})
    return rows.filter(vcov=vcov).drop("vcov")


@pytest.mark.parametrize(
    ("vcov", "cluster"),
    [("model", None), ("lopnr", "lopnr"), ("set_id", "set_id"), ("two_way", ("lopnr", "set_id"))],
)
def test_against_r(vcov: str, cluster: str | tuple[str, str] | None) -> None:
    # Complete windows only (a share of a shorter window has another denominator); the
    # rows with more sick days than the window (impossible days; 11 here, from the NB2
    # simulation) are dropped and counted, as R's script drops them.
    complete = r_data().filter(pl.col("exposure_days") == WINDOW_DAYS)
    res1 = fit_fractional(
        complete, "after_days", "treated", R_COVARIATES, WINDOW_DAYS, cluster=cluster, extra_at=R_AT
    )
    res2 = r_results(vcov)
    assert res1.converged
    assert res1.warnings_ == ("11 rows dropped: outcome 'after_days' outside [0, 365]",)
    assert (res1.n, res1.n_dropped) == (r_results("none").filter(term="n")["estimate"].item(), 11)
    assert res1.reference == {"sex": "K", "diagnosis_group": "F", "region": "01"}
    ours = res1.summary
    assert sorted(ours["term"]) == sorted(res2["term"])
    joined = ours.join(res2, on="term", suffix="_r")
    np.testing.assert_allclose(joined["estimate"], joined["estimate_r"], rtol=RTOL)
    np.testing.assert_allclose(joined["std_err"], joined["std_err_r"], rtol=RTOL)
    dispersion = r_results("none").filter(term="dispersion")["estimate"].item()
    assert math.isclose(res1.dispersion, dispersion, rel_tol=RTOL)


def simulated(n: int = 20_000, seed: int = 15) -> tuple[pl.DataFrame, np.ndarray]:
    """Rows with days ~ Binomial(365, expit(x TRUE_BETA)) x person frailty-free; design."""
    rng = np.random.default_rng(seed)
    treated = (rng.random(n) < 0.3).astype(float)
    prior = np.where(rng.random(n) < 0.4, 0, rng.integers(1, 366, n)).astype(float)
    region = rng.choice(["A", "B"], n, p=[0.6, 0.4])
    x = np.column_stack([np.ones(n), treated, prior, treated * prior, region == "B"]).astype(float)
    # a beta-distributed share per row (overdispersed relative to the binomial), then days
    p = rng.beta(2 * expit(x @ TRUE_BETA) / 0.5, 2 * (1 - expit(x @ TRUE_BETA)) / 0.5)
    days = rng.binomial(WINDOW_DAYS, p)
    frame = pl.DataFrame(
        {
            "after_days": days,
            "treated": treated.astype(bool),
            "prior_days": prior,
            "region": region,
            "lopnr": np.arange(n) // 2,
        }
    )
    return frame, x


def true_extra_days(x: np.ndarray, v: float) -> float:
    """W x mean over rows of expit(x1 b) - expit(x0 b) at the true b (days)."""
    x1, x0 = x.copy(), x.copy()
    x1[:, 1:4] = [1.0, v, v]
    x0[:, 1:4] = [0.0, v, 0.0]
    return WINDOW_DAYS * float(np.mean(expit(x1 @ TRUE_BETA) - expit(x0 @ TRUE_BETA)))


def test_recovers_planted_share_model_and_extra_days() -> None:
    frame, x = simulated()
    res1 = fit_fractional(frame, "after_days", "treated", ["region"], WINDOW_DAYS, cluster="lopnr")
    assert res1.converged and res1.terms[-1] == "region[B]"
    for est, se, true in zip(res1.params_, res1.std_err, TRUE_BETA, strict=True):
        assert abs(est - true) < 3 * se
    extra = res1.extra_days([0, 180, 365])
    for v, lo, hi in extra.select("prior_days", "ci_low", "ci_high").iter_rows():
        assert lo < true_extra_days(x, v) < hi, v
    # bounded: every predicted mean is a possible number of days
    assert ((extra["mean_treated"] > 0) & (extra["mean_treated"] < WINDOW_DAYS)).all()
    assert ((extra["mean_control"] > 0) & (extra["mean_control"] < WINDOW_DAYS)).all()


def test_extra_days_se_matches_finite_difference_gradient() -> None:
    frame, x = simulated(n=4000)
    res1 = fit_fractional(frame, "after_days", "treated", ["region"], WINDOW_DAYS)

    def g(beta: np.ndarray, v: float) -> float:
        x1, x0 = x.copy(), x.copy()
        x1[:, 1:4] = [1.0, v, v]
        x0[:, 1:4] = [0.0, v, 0.0]
        return WINDOW_DAYS * float(np.mean(expit(x1 @ beta) - expit(x0 @ beta)))

    for v in (0.0, 180.0):
        grad = np.array(
            [
                (g(res1.params_ + 1e-6 * e, v) - g(res1.params_ - 1e-6 * e, v)) / 2e-6
                for e in np.eye(5)
            ]
        )
        row = res1.extra_days([v]).row(0, named=True)
        assert math.isclose(row["extra_days"], g(res1.params_, v), rel_tol=1e-12)
        assert math.isclose(row["std_err"], math.sqrt(grad @ res1.cov_ @ grad), rel_tol=1e-6)


def test_summary_and_metadata_layout() -> None:
    frame, _ = simulated(n=3000)
    res1 = fit_fractional(
        frame, "after_days", "treated", ["region"], WINDOW_DAYS, cluster="lopnr", extra_at=(0, 180)
    )
    summary = res1.summary
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["term"].to_list() == [
        *res1.terms,
        "extra_days(prior_days=0)",
        "extra_days(prior_days=180)",
    ]
    assert res1.extra_days().columns == [
        "prior_days",
        "extra_days",
        "std_err",
        "ci_low",
        "ci_high",
        "mean_treated",
        "mean_control",
        "n",
    ]
    meta = json.loads(json.dumps(res1.metadata()))
    assert (meta["cov_type"], meta["n_clusters"], meta["window_days"]) == ("cluster", 1500, 365)


def test_unfittable_models_give_nan_and_say_why() -> None:
    frame, _ = simulated(n=300)
    zero = fit_fractional(
        frame.with_columns(after_days=pl.lit(0)), "after_days", "treated", [], 365
    )
    assert zero.warnings_[-1] == "not fitted: outcome 'after_days' is 0 in all rows"
    assert zero.extra_days()["extra_days"].is_nan().all()
    const = fit_fractional(
        frame.with_columns(treated=pl.lit(True)), "after_days", "treated", [], 365
    )
    assert const.warnings_[-1].startswith("not fitted: treatment 'treated' is constant")
    one = fit_fractional(
        frame.with_columns(c=pl.lit(1)), "after_days", "treated", [], 365, cluster="c"
    )
    assert one.warnings_[-1] == "not fitted: fewer than 2 clusters"
    with pytest.raises(ValueError, match="window_days"):
        fit_fractional(frame, "after_days", "treated", [], 0)


def test_extra_days_by_over_a_spline_basis_matches_a_direct_computation() -> None:
    # The nb_model stage fits the basis and its `treated:` columns as plain numeric terms
    # and sets them at each prior-days value; a hand-built g-computation must agree.
    frame, _ = simulated(n=4000, seed=3)
    form = build_form("spline", frame["prior_days"].to_numpy(), 365, [0.05, 0.5, 0.95], [])
    cols = form.columns(frame["prior_days"].to_numpy())
    treated = frame["treated"].cast(pl.Float64).to_numpy()
    inter = {f"treated:{k}": treated * v for k, v in cols.items()}
    rows = frame.with_columns(pl.Series(k, v) for k, v in {**cols, **inter}.items())
    res1 = fit_fractional(
        rows, "after_days", "treated", ["region"], WINDOW_DAYS, None, [*cols, *inter], "lopnr"
    )
    assert res1.terms == ("intercept", "treated", *cols, *inter, "region[B]")

    def basis_at(v: float) -> dict[str, float]:
        return {k: float(c[0]) for k, c in form.columns(np.array([v])).items()}

    def contrast(beta: np.ndarray, v: float) -> float:
        means = []
        for arm in (1.0, 0.0):
            x = res1.design.copy()
            x[:, 1] = arm
            for j, (name, value) in enumerate(basis_at(v).items()):
                x[:, 2 + j] = value
                x[:, 2 + len(cols) + j] = arm * value
                assert res1.terms[2 + j] == name
            means.append(WINDOW_DAYS * expit(x @ beta).mean())
        return means[0] - means[1]

    got = res1.extra_days_by([0.0, 90.0, 365.0], basis_at, "prior_days")
    k = len(res1.terms)
    for v, est, se in got.select("prior_days", "extra_days", "std_err").iter_rows():
        assert math.isclose(est, contrast(res1.params_, v), rel_tol=1e-10)
        grad = np.array(
            [
                (contrast(res1.params_ + 1e-6 * e, v) - contrast(res1.params_ - 1e-6 * e, v)) / 2e-6
                for e in np.eye(k)
            ]
        )
        assert math.isclose(se, math.sqrt(grad @ res1.cov_ @ grad), rel_tol=1e-6)


def test_extra_days_by_with_a_linear_basis_is_extra_days() -> None:
    frame, _ = simulated(n=3000, seed=4)
    rows = frame.with_columns(
        (pl.col("treated").cast(pl.Float64) * pl.col("prior_days")).alias("treated:prior_days")
    )
    res1 = fit_fractional(frame, "after_days", "treated", ["region"], WINDOW_DAYS)
    res2 = fit_fractional(
        rows,
        "after_days",
        "treated",
        ["region"],
        WINDOW_DAYS,
        None,
        ["prior_days", "treated:prior_days"],
    )
    np.testing.assert_allclose(res2.params_, res1.params_, rtol=1e-10)
    by = res2.extra_days_by([0.0, 180.0], lambda v: {"prior_days": v}, "prior_days")
    want = res1.extra_days([0.0, 180.0])
    for col in ("extra_days", "std_err", "mean_treated", "mean_control"):
        np.testing.assert_allclose(by[col], want[col], rtol=1e-8)
