"""The nb_model stage: row building on hand-built persons, the prior-days basis, the
planted truth, and end to end the CI against the written truth and the bounds."""

from __future__ import annotations

import datetime as dt
import math
from functools import partial
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest

from pipeline.__main__ import main
from pipeline.core import config
from pipeline.core.errors import PipelineError
from pipeline.rules.nb_truth import true_extra_days, truth_summary
from pipeline.rules.prior_form import build_form, natural_cubic
from pipeline.stages.nb_model import NBConfig
from pipeline.stages.nb_model.fit import check_bounds, fit_design, fit_l1334, support, with_basis
from pipeline.stages.nb_model.rows import (
    T_BAND,
    add_sick_days,
    fill_short_sets,
    report_rows,
    riskset_rows,
    with_t_band,
)
from pipeline.stats.nb2 import fit_nb2
from tests.helpers import E2E_PERSONS, scratch_paths

D = dt.date
W = 10  # a short window keeps the hand counts readable


def periods(*rows: tuple[int, dt.date, dt.date, int]) -> pl.DataFrame:
    """Benefit periods (lopnr, from, tom, extent %)."""
    return pl.DataFrame(
        rows, schema=["lopnr", "from_datum", "tom_datum", "omfattning"], orient="row"
    ).with_columns(pl.col("omfattning").cast(pl.Int64))


def rows_at(*index: tuple[int, dt.date]) -> pl.DataFrame:
    """Model rows (lopnr, index_date, treated=True)."""
    return pl.DataFrame(index, schema=["lopnr", "index_date"], orient="row").with_columns(
        pl.lit(True).alias("treated")
    )


def test_sick_days_count_window_edges_overlaps_and_part_time():
    # after-window [Jan 11, Jan 20], prior window [Jan 1, Jan 10]
    per = periods(
        (1, D(2020, 1, 10), D(2020, 1, 11), 100),  # one day in each window (edges)
        (1, D(2020, 1, 20), D(2020, 1, 25), 50),  # last after day at half time
        (1, D(2020, 1, 15), D(2020, 1, 16), 100),  # full time ...
        (1, D(2020, 1, 15), D(2020, 1, 16), 25),  # ... overlapped by a quarter: counted once
        (1, D(2019, 12, 1), D(2019, 12, 31), 100),  # before the prior window
        (2, D(2020, 1, 21), D(2020, 2, 1), 100),  # person 2: after its window
    )
    out = add_sick_days(
        rows_at((1, D(2020, 1, 11)), (2, D(2020, 1, 11))), per, W, "net", "exclude", D(2021, 1, 1)
    )
    assert out["after_days"].to_list() == [1 + 0.5 + 2, 0.0]
    assert out["prior_days"].to_list() == [1.0, 0.0]
    gross = add_sick_days(rows_at((1, D(2020, 1, 11))), per, W, "gross", "exclude", D(2021, 1, 1))
    assert gross["after_days"].to_list() == [4.0]


def test_truncation_at_the_data_end():
    per = periods((1, D(2020, 1, 1), D(2020, 3, 1), 100))
    rows = rows_at((1, D(2020, 1, 11)), (1, D(2020, 1, 12)), (1, D(2020, 1, 21)))
    end = D(2020, 1, 20)  # row 1's window ends on the data end, row 2's one day after
    kept = add_sick_days(rows, per, W, "net", "exclude", end)
    assert kept["index_date"].to_list() == [D(2020, 1, 11)]
    offset = add_sick_days(rows, per, W, "net", "offset", end)
    # the row indexed after the data end has no day inside and is dropped in both modes
    assert offset["exposure_days"].to_list() == [10, 9]
    assert offset["truncated"].to_list() == [False, True]


def test_report_controls_are_indexed_at_start_plus_round_mean_t_of_the_model_rows():
    cohort = pl.DataFrame(
        {
            "spell_id": [1, 2, 3, 4, 5],
            "lopnr": [1, 2, 3, 4, 4],
            "start": [D(2020, 1, 1), D(2020, 1, 1), D(2020, 12, 20), D(2020, 3, 1), D(2020, 6, 1)],
            "treated": [True, True, True, False, False],
            "first_gc001": [D(2020, 1, 3), D(2020, 1, 6), D(2020, 12, 21), None, None],
            "age": [40, 50, 60, 30, 30],
            "sex": ["1", "2", "1", "2", "2"],
            "diagnosis_group": ["a", "a", None, "a", "a"],
            "lan": ["01"] * 5,
        }
    )
    per = periods((4, D(2020, 3, 1), D(2020, 3, 2), 100))  # control's spell ends before its index
    sick = partial(
        add_sick_days,
        periods=per,
        window=W,
        measure="net",
        truncation="exclude",
        data_end=D(2020, 12, 25),
    )
    rows, mean_t = report_rows(cohort, "first", sick, ["age", "sex", "diagnosis_group", "lan"])
    # person 3 is truncated (and has a null covariate): mean_t over persons 1 and 2 = (2 + 5) / 2
    assert mean_t == 3.5
    control = rows.filter(~pl.col("treated"))
    assert control["index_date"].to_list() == [D(2020, 3, 1) + dt.timedelta(days=round(3.5))]
    assert control["after_days"].to_list() == [0.0]  # zeros kept (§6.3)
    assert sorted(rows["lopnr"].to_list()) == [1, 2, 4]


def test_truth_counts_extension_days_inside_the_window_and_the_data():
    truth = pl.DataFrame(
        {
            "lopnr": [1, 2, 3],
            "start": [D(2020, 1, 1)] * 3,
            "base_days": [10, 10, 10],  # baseline ends Jan 10, extension from Jan 11
            "extra_days": [20, 20, 0],
        }
    )
    rows = rows_at((1, D(2020, 1, 5)), (2, D(2020, 1, 25)), (3, D(2020, 1, 5))).with_columns(
        pl.Series("prior_days", [3.0, 10.0, 3.0])
    )
    out = true_extra_days(rows, truth, W, D(2020, 1, 12))
    # row 1: window Jan 5-14 cut at Jan 12 -> Jan 11-12; row 2: window starts after the data end
    assert out["true_extra_days"].to_list() == [2.0, 0.0, 0.0]
    out = true_extra_days(rows, truth, W, D(2021, 1, 1))
    assert out["true_extra_days"].to_list() == [4.0, 6.0, 0.0]  # Jan 11-14; Jan 25-30
    summary = truth_summary(out, [3.0], band_edges=(0, 5, 366), half_width=1)
    assert dict(zip(summary["what"], summary["true_extra_days"], strict=True)) == {
        "overall": pytest.approx(10 / 3),
        "band [0, 5)": 2.0,
        "band [5, 366)": 6.0,
        "at 3": 2.0,
    }


def test_natural_spline_is_linear_beyond_its_boundary_knots_and_cubic_between():
    knots = [0.1, 0.3, 0.6, 0.9]
    x = np.linspace(-0.5, 1.5, 401)
    basis = np.column_stack(natural_cubic(x, knots))
    assert basis.shape[1] == len(knots) - 1
    second = np.diff(basis, n=2, axis=0)
    outside = (x[1:-1] < knots[0] - 0.01) | (x[1:-1] > knots[-1] + 0.01)
    assert np.abs(second[outside]).max() < 1e-9
    assert np.abs(second[~outside]).max() > 1e-6
    form = build_form("bands", np.array([0.0, 100.0]), 365, [], [0, 1, 90])
    cols = form.columns(np.array([0.0, 1.0, 89.0, 90.0, 365.0]))
    assert [c.tolist() for c in cols.values()] == [[0, 1, 1, 0, 0], [0, 0, 0, 1, 1]]


def test_t_bands_close_on_the_right_and_reach_the_risk_set_design_only():
    rows = pl.DataFrame({"gc001_day": [-3, 0, 30, 31, 90, 91, 5000]})
    got = with_t_band(rows, [30, 90])[T_BAND].to_list()
    assert got == ["<=30", "<=30", "<=30", "31-90", "31-90", ">90", ">90"]
    conf = NBConfig.from_config(config.compose(["nb.riskset_t_bands=[30,90]"]))
    assert conf.covariates_for("riskset") == [*conf.covariates, T_BAND]
    assert conf.covariates_for("report") == list(conf.covariates)  # its controls have no t
    off = NBConfig.from_config(config.compose(["nb.riskset_t_bands=[]"]))
    assert off.covariates_for("riskset") == list(off.covariates)


@pytest.mark.parametrize("edges", ["[90,30]", "[30,30]", "[-1,30]", "[30.5,90]", "[a,b]"])
def test_config_rejects_t_bands_that_are_not_increasing_days(edges):
    with pytest.raises(PipelineError, match=r"nb\.riskset_t_bands"):
        NBConfig.from_config(config.compose([f"nb.riskset_t_bands={edges}"]))


def test_short_sets_are_filled_to_k_by_repeating_their_controls_in_turn():
    sets = [0] * 3 + [1] * 6 + [2] + [3] * 2 + [4] * 2  # set 4's case left the rows
    spells = [10, 11, 12, 20, 21, 22, 23, 24, 25, 30, 40, 41, 50, 51]
    treated = [True, False, False, True, *[False] * 5, True, True, False, False, False]
    rows = pl.DataFrame(
        {"set_id": sets, "spell_id": spells, "treated": treated, "after_days": spells}
    )
    out = fill_short_sets(rows, 5)
    controls = out.filter(~pl.col("treated"))
    counts = dict(controls.group_by("spell_id").len().iter_rows())
    assert counts == {11: 3, 12: 2, 21: 1, 22: 1, 23: 1, 24: 1, 25: 1, 41: 5, 50: 1, 51: 1}
    cases = out.filter(pl.col("treated"))
    assert cases.drop("copy").equals(rows.filter(pl.col("treated")))  # cases once
    assert (cases["copy"] == 0).all()
    assert (controls["after_days"] == controls["spell_id"]).all()  # copies are their control
    # each control once as drawn (copy 0), its repeats numbered 1, 2, ...
    numbers = controls.group_by("spell_id").agg(pl.col("copy").sort())
    assert dict(numbers.iter_rows()) == {s: list(range(n)) for s, n in counts.items()}
    assert out.filter(pl.col("set_id") == 2).height == 1  # no control, nothing to repeat
    assert fill_short_sets(rows, 1).height == rows.height  # k = 1: no set is short


# --- end to end -----------------------------------------------------------------------------

NB_STAGES = ("synth", "stage", "spells", "exposure", "cohort", "riskset", "nb_model")


def _run(base, *extra: str) -> pl.DataFrame:
    """nb_model's extra days on a run of E2E_PERSONS persons with the default risk sets
    (not-yet-treated controls matched on diagnosis group, short sets filled), with the
    written truth of the riskset design's treated rows at each point."""
    overrides = [
        "synth.size=small",
        f"synth.sizes.small={E2E_PERSONS}",
        *scratch_paths(base),
        "riskset.control_mode=not_yet_treated",
        "riskset.match_on=[diagnosis_group]",
        "nb.fill_short_sets=true",
        *extra,
    ]
    for stage in NB_STAGES:
        assert main([stage, *overrides]) == 0, stage
    extra_days = pl.read_csv(base / "outputs" / "results" / "nb_extra_days.csv")
    data = pl.read_parquet(base / "outputs" / "models" / "nb_data.parquet")
    rows = data.filter(pl.col("design") == "riskset")
    truth = pl.read_parquet(base / "truth" / "spells.parquet")
    end = D(2025, 5, 31)
    written = truth_summary(true_extra_days(rows, truth, 365, end), [0, 90, 180, 365])
    at = written.filter(pl.col("what").str.starts_with("at ")).select(
        pl.col("what").str.slice(3).cast(pl.Float64).alias("prior_days"), "true_extra_days"
    )
    return extra_days.filter(pl.col("design") == "riskset").join(at, on="prior_days")


# The end-to-end check is one synthetic draw: 4 points x 2 effect settings, each 95 % CI
# missing with probability 0.05 when the design is unbiased, would fail about one draw in
# three (1 - 0.95^8; 32 of the simulation study's first 100 draws at 50 000 persons).
# The intervals are therefore read together, Bonferroni over the 8 (a draw fails with
# probability <= 0.05; 7 of those 100): |estimate - truth| <= z * std_err. Per-point
# 95 % coverage is the simulation study's job (docs/methods.md, "Simulation study").
SIMULTANEOUS_Z = NormalDist().inv_cdf(1 - 0.05 / (2 * 8))


def _misses(tmp_path, effect: str) -> tuple[list[float], list[dict]]:
    """The shown riskset points (prior days) and those whose simultaneous 95 % interval
    (SIMULTANEOUS_Z) misses the truth (or 0 with no effect)."""
    extra = (
        []
        if effect == "default"
        else ["synth.effect.extra_days_intercept=0", "synth.effect.extra_days_slope_per_180=0"]
    )
    table = _run(tmp_path, *extra).filter(~pl.col("extrapolated"))
    misses = [
        row
        for row in table.iter_rows(named=True)
        if abs(row["extra_days"] - (row["true_extra_days"] if effect == "default" else 0.0))
        > SIMULTANEOUS_Z * row["std_err"]
    ]
    return sorted(table["prior_days"].to_list()), misses


@pytest.mark.parametrize("effect", ["default", "zero"])
def test_riskset_ci_covers_the_planted_truth_at_every_point(tmp_path, effect):
    """At 0, 90, 180 and 365 prior days (all shown) the simultaneous CI covers the written
    truth (the mean over cases within 30 prior days of the point), or 0 with no effect.
    The simulation study's biases against that truth: docs/methods.md, "Simulation
    study"."""
    shown, misses = _misses(tmp_path, effect)
    assert shown == [0.0, 90.0, 180.0, 365.0]
    assert misses == []


def test_t_bands_enter_the_risk_set_fits_only(run_dir):
    data = pl.read_parquet(run_dir / "outputs" / "models" / "nb_data.parquet")
    conf = NBConfig.from_config(config.compose(["nb.riskset_t_bands=[30,90,180,365,730]"]))

    def banded(terms: pl.Series) -> bool:
        return any(term.startswith("t_band[") for term in terms.to_list())

    for design in ("riskset", "report"):
        fit = fit_design(data.filter(pl.col("design") == design), design, conf, [], None)
        assert banded(fit["summary"]["term"]) == (design == "riskset")
        assert banded(fit["fractional"]["summary"]["term"]) == (design == "riskset")
    l1334, _ = fit_l1334(data.filter(pl.col("design") == "riskset"), conf)
    assert not banded(l1334["term"])  # t is L1334's exposure


def test_every_printed_extra_day_and_predicted_mean_is_possible(run_dir):
    table = pl.read_csv(run_dir / "outputs" / "results" / "nb_extra_days.csv")
    assert set(table["design"]) == {"riskset", "report"}
    shown = table.filter(~pl.col("extrapolated"))
    assert shown.height > 0
    for col in ("extra_days",):
        assert shown[col].abs().max() <= 365
    for col in ("mean_treated", "mean_control"):
        assert shown[col].min() >= 0 and shown[col].max() <= 365
    assert not math.isnan(shown["std_err"].max())


def test_g_computation_over_a_spline_basis_matches_a_direct_computation():
    rng = np.random.default_rng(7)
    n = 800
    prior = rng.uniform(0, 365, n)
    treated = rng.random(n) < 0.4
    mu = np.exp(3 + 0.004 * prior + treated * (0.3 - 0.001 * prior))
    y = rng.negative_binomial(2, 2 / (2 + mu))
    rows = pl.DataFrame(
        {"lopnr": np.arange(n), "prior_days": prior, "treated": treated, "after_days": y}
    )
    form = build_form("spline", prior, 365, [0.05, 0.35, 0.65, 0.95], [])
    frame, basis, inter = with_basis(rows, form)
    fit = fit_nb2(frame, "after_days", "treated", [], None, [*basis, *inter], extra_at=())

    def basis_at(v: float) -> dict[str, float]:
        return {k: float(c[0]) for k, c in form.columns(np.array([v])).items()}

    got = fit.extra_days_by([0.0, 180.0], basis_at, "prior_days")
    cols = {t: j for j, t in enumerate(fit.terms)}

    def contrast(beta: np.ndarray, v: float) -> float:
        means = []
        for arm in (1.0, 0.0):
            x = fit.design.copy()
            x[:, cols["treated"]] = arm
            for name, value in basis_at(v).items():
                x[:, cols[name]] = value
                x[:, cols[f"treated:{name}"]] = arm * value
            means.append(np.exp(x @ beta).mean())
        return means[0] - means[1]

    k = len(fit.terms)
    for v, est, se in got.select("prior_days", "extra_days", "std_err").iter_rows():
        assert est == pytest.approx(contrast(fit.params_, v), rel=1e-9)
        step = 1e-6
        grad = np.array(
            [
                (contrast(fit.params_ + step * np.eye(k)[j], v) - contrast(fit.params_, v)) / step
                for j in range(k)
            ]
        )
        assert se == pytest.approx(float(np.sqrt(grad @ fit.cov_[:k, :k] @ grad)), rel=1e-3)


def test_support_flags_and_the_bound_check():
    rows = pl.DataFrame({"treated": [True, True, False, False], "prior_days": [5.0, 300, 0, 200]})
    assert support(rows) == (5.0, 200.0)
    table = pl.DataFrame(
        {
            "prior_days": [0.0, 100.0],
            "mean_treated": [10.0, 20.0],
            "mean_control": [900.0, 400.0],
            "extrapolated": [True, False],
        }
    )
    with pytest.raises(ValueError, match=r"report design predicts mean_control = 400.0 .* = 100"):
        check_bounds(table, "report", 365)
    check_bounds(table.head(1), "report", 365)  # extrapolated points are not checked


def test_fractional_sensitivity_beside_the_nb(run_dir):
    """nb_extra_days_fractional.csv: the NB's designs and points, possible values, the
    complete-window rows of nb_data, and the report design's estimates equal to an
    independent quasi-binomial fit (statsmodels GLM, cluster by person) of the same basis."""
    import json

    import statsmodels.api as sm
    from scipy.special import expit

    out = run_dir / "outputs"
    nb = pl.read_csv(out / "results" / "nb_extra_days.csv")
    frac = pl.read_csv(out / "results" / "nb_extra_days_fractional.csv")
    assert frac.columns == nb.columns
    assert frac.select("design", "prior_days").equals(nb.select("design", "prior_days"))
    shown = frac.filter(~pl.col("extrapolated"))
    assert shown.height > 0
    assert shown["extra_days"].abs().max() <= 365
    for col in ("mean_treated", "mean_control"):
        assert shown[col].min() >= 0 and shown[col].max() <= 365
    data = pl.read_parquet(out / "models" / "nb_data.parquet")
    notes = json.loads((out / "models" / "nb.json").read_text())
    for design in ("riskset", "report"):
        rows = data.filter(design=design, exposure_days=365)
        drawn = rows.filter(pl.col("copy") == 0).height  # n leaves out filled sets' copies
        assert set(frac.filter(design=design)["n"]) == {drawn}
        as_drawn = data.filter(design=design, copy=0).height
        assert set(nb.filter(design=design)["n"]) == {as_drawn}
        fits = pl.read_parquet(out / "models" / "nb.parquet").filter(design=design)
        assert set(fits["n"]) == {as_drawn}  # coefficients and extra-days rows alike
        lo = rows.group_by("treated").agg(pl.col("prior_days").min())["prior_days"].max()
        hi = rows.group_by("treated").agg(pl.col("prior_days").max())["prior_days"].min()
        flags = frac.filter(design=design)
        assert flags["extrapolated"].to_list() == [not lo <= v <= hi for v in flags["prior_days"]]
    # independent fit of the report design: statsmodels' binomial GLM on the share
    rows = data.filter(design="report", exposure_days=365).sort("lopnr")
    form = notes["report"]["prior_form"]
    basis = build_form("spline", np.zeros(1), 365, [0.5], [])
    basis = type(basis)(form["form"], tuple(form["knots"]), tuple(form["edges"]), form["window"])
    cols = basis.columns(rows["prior_days"].to_numpy())
    t = rows["treated"].cast(pl.Float64).to_numpy()
    dummies = rows.select(
        pl.col("age").cast(pl.Float64),
        *[
            (pl.col(c) == level).cast(pl.Float64).alias(f"{c}={level}")
            for c in ("sex", "diagnosis_group", "lan")
            for level in sorted(rows[c].unique().drop_nulls())[1:]
        ],
    ).to_numpy()

    def design(arm: np.ndarray, b: dict[str, np.ndarray]) -> np.ndarray:
        values = list(b.values())
        return np.column_stack(
            [np.ones(rows.height), arm, *values, *[arm * v for v in values], dummies]
        )

    x = design(t, cols)
    share = rows["after_days"].to_numpy() / 365
    glm = sm.GLM(share, x, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": rows["lopnr"].to_numpy()}, tol=1e-12
    )
    want = []
    for v in frac.filter(design="report")["prior_days"]:
        at = {k: np.full(rows.height, float(c[0])) for k, c in basis.columns(np.array([v])).items()}
        means = [
            365 * expit(design(np.full(rows.height, a), at) @ glm.params).mean() for a in (1, 0)
        ]
        want.append(means[0] - means[1])
    got = frac.filter(design="report")["extra_days"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    summary = pl.read_parquet(out / "models" / "nb_fractional.parquet").filter(
        design="report", term="treated"
    )
    assert summary["estimate"].item() == pytest.approx(glm.params[1], rel=1e-6)
    assert summary["std_err"].item() == pytest.approx(glm.bse[1], rel=1e-4)


def test_fractional_fits_complete_windows_only_and_the_nb_basis():
    """With truncated rows (nb.truncation: offset keeps them) the fractional logit leaves
    them out and says how many; it fits the basis and interactions it is given."""
    from pipeline.stages.nb_model import NBConfig
    from pipeline.stages.nb_model.fit import fit_fractional_design

    rng = np.random.default_rng(11)
    n = 1200
    prior = rng.uniform(0, 365, n)
    treated = rng.random(n) < 0.4
    prior[:20], treated[:20] = 0.0, np.arange(20) % 2 == 0  # 0 inside both arms' support
    exposure = np.where(rng.random(n) < 0.25, rng.integers(30, 365, n), 365)
    share = 1 / (1 + np.exp(-(-1 + 0.004 * prior + 0.3 * treated)))
    rows = pl.DataFrame(
        {
            "lopnr": np.arange(n),
            "prior_days": prior,
            "treated": treated,
            "after_days": rng.binomial(exposure, share).astype(float),
            "exposure_days": exposure,
        }
    )
    conf = NBConfig(
        365,
        "net",
        "offset",
        True,
        (),
        "first",
        (0.0, 180.0),
        "person",
        "spline",
        (0.05, 0.35, 0.65, 0.95),
        (),
    )
    form = build_form("spline", prior, 365, conf.spline_knots, ())
    frame, basis, inter = with_basis(rows, form)

    def basis_at(v: float) -> dict[str, float]:
        return {k: float(c[0]) for k, c in form.columns(np.array([v])).items()}

    got = fit_fractional_design(frame, basis, inter, "report", conf, basis_at)
    complete = int((exposure == 365).sum())
    assert got["notes"]["rows_incomplete_window_dropped"] == n - complete
    assert set(got["points"]["n"]) == {complete}
    assert got["points"]["design"].to_list() == ["report", "report"]
    terms = got["summary"]["term"].to_list()
    assert terms[: 2 + 2 * len(basis)] == ["intercept", "treated", *basis, *inter]
    assert terms[-2:] == ["extra_days(prior_days=0)", "extra_days(prior_days=180)"]


def test_riskset_rows_keep_short_controls_and_refuse_a_member_without_a_spell():
    """A control shorter than the cohort's minimum (drawn at the index from the at-risk
    spells) gets its covariates; a member whose spell is missing stops the stage."""
    riskset = pl.DataFrame(
        {
            "set_id": [1, 1],
            "spell_id": [10, 20],
            "lopnr": [1, 2],
            "case": [True, False],
            "index_date": [dt.date(2021, 1, 11)] * 2,
            "t": [10, 10],
        }
    )
    at_risk = pl.DataFrame(
        {
            "spell_id": [10, 20],
            "age": [40, 50],
            "sex": ["Kvinna", "Man"],
            "diagnosis_group": ["psyk", "msk"],
            "lan": ["01", "03"],
        }
    )
    rows = riskset_rows(riskset, at_risk)
    assert rows["age"].to_list() == [40, 50] and rows.null_count().sum_horizontal().item() == 0
    with pytest.raises(ValueError, match="1 risk-set members have no spell"):
        riskset_rows(riskset, at_risk.filter(pl.col("spell_id") == 10))
