"""Fitting one design of the `nb_model` stage: the prior-days form, g-computation inside
the observed support, the bound check, the fractional-logit sensitivity (issue 15 item 4)
and the L1334 model (analysis-spec.md §6.5)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import polars as pl

from pipeline.rules.prior_form import PriorForm, build_form
from pipeline.stages.nb_model.rows import COPY, T_BAND, with_t_band
from pipeline.stats.base import json_float, wald
from pipeline.stats.fractional import fit_fractional
from pipeline.stats.nb2 import fit_nb2, lr_test
from pipeline.stats.nb2_slope import fit_nb2_slope

L1334_PER = 30.0  # IRR of the day of first GC001 per 30 days
FRACTIONAL = "fractional_logit"  # the bounded-outcome model's name in outputs


def as_drawn(table: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """`table` (a fit's output, `n` = rows fitted) with `n` less the copies made by
    fill_short_sets among `rows` (the fit weighs them, the count does not); grain
    unchanged."""
    copies = rows.filter(pl.col(COPY) > 0).height if COPY in rows.columns else 0
    return table.with_columns(pl.max_horizontal(pl.col("n") - copies, 0).cast(pl.Int64))


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with NaN floats as None and tuples as lists, for strict JSON."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def with_basis(rows: pl.DataFrame, form: PriorForm) -> tuple[pl.DataFrame, list[str], list[str]]:
    """`rows` with the form's basis columns and their `treated:` interactions; the names."""
    cols = form.columns(rows["prior_days"].to_numpy())
    treated = rows["treated"].cast(pl.Float64).to_numpy()
    inter = {f"treated:{name}": treated * values for name, values in cols.items()}
    frame = rows.with_columns([pl.Series(n, v, pl.Float64) for n, v in {**cols, **inter}.items()])
    return frame, list(cols), list(inter)


def support(rows: pl.DataFrame) -> tuple[float, float]:
    """Prior days (days) observed in both arms: [max of the minima, min of the maxima]."""
    by_arm = rows.group_by("treated").agg(
        pl.col("prior_days").min().alias("lo"), pl.col("prior_days").max().alias("hi")
    )
    if by_arm.height < 2:
        return (math.nan, math.nan)
    return float(by_arm["lo"].max()), float(by_arm["hi"].min())


def check_bounds(table: pl.DataFrame, design: str, window: int) -> None:
    """Raise when a non-extrapolated predicted mean lies outside [0, window] days."""
    for row in table.filter(~pl.col("extrapolated")).iter_rows(named=True):
        for arm in ("mean_treated", "mean_control"):
            value = row[arm]
            if value is not None and not 0 <= value <= window:
                raise ValueError(
                    f"nb_model: the {design} design predicts {arm} = {value:.1f} days at "
                    f"prior_days = {row['prior_days']:g}, outside [0, {window}] (the window): "
                    "the prior-days form does not fit; try another nb.prior_form"
                )


def fit_design(
    rows: pl.DataFrame, design: str, conf: Any, grid: list[float], offset: str | None
) -> dict[str, Any]:
    """One design's fit: summary frame, notes, extra days at the points and on `grid`
    (days, with `extrapolated`), after checking the predicted means are possible."""
    form = build_form(
        conf.prior_form,
        rows["prior_days"].to_numpy(),
        conf.window_days,
        conf.spline_knots,
        conf.prior_bands,
    )
    covariates = conf.covariates_for(design)
    if T_BAND in covariates:
        rows = with_t_band(rows, conf.riskset_t_bands)
    frame, basis, inter = with_basis(rows, form)
    args = {
        "frame": frame,
        "outcome": "after_days",
        "treatment": "treated",
        "covariates": covariates,
        "cluster": conf.cluster_for(design),
        "offset": offset,
        "window_days": conf.window_days if offset else None,
        "interaction_with": None,
        "extra_at": (),
    }
    main = fit_nb2(**args, numeric=basis, name=f"nb2_{design}_main")
    full = fit_nb2(**args, numeric=[*basis, *inter], name=f"nb2_{design}")
    fit = full if conf.interaction else main
    lo, hi = support(rows)

    def basis_at(v: float) -> dict[str, float]:
        return {name: float(col[0]) for name, col in form.columns(np.array([v])).items()}

    def extra(at: list[float]) -> pl.DataFrame:
        return flagged(fit.extra_days_by(at, basis_at, "prior_days"), design, (lo, hi))

    points, curve = extra(list(conf.extra_days_at)), extra(grid)
    check_bounds(points, design, conf.window_days)
    check_bounds(curve, design, conf.window_days)
    summary = as_drawn(with_extra_rows(fit, points, design, conf.prior_form), rows)
    points, curve = as_drawn(points, rows), as_drawn(curve, rows)
    notes = {
        "fit": fit.metadata(),
        "rows_as_drawn": int(summary["n"][0]),
        "prior_form": _jsonable(asdict(form)),
        "support_prior_days": [json_float(lo), json_float(hi)],
        "lr_test_interaction": _jsonable(asdict(lr_test(main, full))),
        "log_likelihood_main": json_float(main.log_likelihood),
        "log_likelihood_full": json_float(full.log_likelihood),
    }
    frac = fit_fractional_design(frame, basis, inter, design, conf, basis_at)
    notes["fractional_logit"] = frac["notes"]
    return {
        "summary": summary,
        "notes": notes,
        "points": points,
        "curve": curve,
        "fractional": frac,
    }


def with_extra_rows(fit: Any, points: pl.DataFrame, design: str, prior_form: str) -> pl.DataFrame:
    """`fit.summary` plus one `extra_days(prior_days=v)` row (days, Wald p) per shown point,
    with `design` and `prior_form` columns; grain: one row per term."""
    shown = points.filter(~pl.col("extrapolated"))
    extra_rows = pl.DataFrame(
        {
            "model": [fit.name] * shown.height,
            "term": [f"extra_days(prior_days={v:g})" for v in shown["prior_days"]],
            "estimate": shown["extra_days"],
            "std_err": shown["std_err"],
            "ci_low": shown["ci_low"],
            "ci_high": shown["ci_high"],
            "p_value": wald(shown["extra_days"], shown["std_err"])[2],
            "n": shown["n"],
        },
        schema=fit.summary.schema,
    )
    return pl.concat([fit.summary, extra_rows], how="diagonal_relaxed").with_columns(
        pl.lit(design).alias("design"), pl.lit(prior_form).alias("prior_form")
    )


def flagged(table: pl.DataFrame, design: str, bounds: tuple[float, float]) -> pl.DataFrame:
    """Extra-days `table` with `design` first and `extrapolated` (prior days outside `bounds`)."""
    out = table.with_columns(
        (~pl.col("prior_days").is_between(*bounds)).alias("extrapolated"),
        pl.lit(design).alias("design"),
    )
    return out.select("design", *[c for c in out.columns if c != "design"])


def fit_fractional_design(
    frame: pl.DataFrame,
    basis: list[str],
    inter: list[str],
    design: str,
    conf: Any,
    basis_at: Callable[[float], dict[str, float]],
) -> dict[str, Any]:
    """The fractional-logit sensitivity of one design: after_days / window on the NB's
    basis columns, interactions, covariates and clusters, complete after-windows only;
    summary frame, notes, and extra days (days) at `nb.extra_days_at` with `extrapolated`
    from the support of the rows it fits."""
    complete = frame.filter(pl.col("exposure_days") == conf.window_days)
    fit = fit_fractional(
        complete,
        "after_days",
        "treated",
        conf.covariates_for(design),
        conf.window_days,
        interaction_with=None,
        numeric=[*basis, *inter] if conf.interaction else basis,
        cluster=conf.cluster_for(design),
        name=f"{FRACTIONAL}_{design}",
        extra_at=(),
    )
    lo, hi = support(complete)
    at = list(conf.extra_days_at)
    points = flagged(fit.extra_days_by(at, basis_at, "prior_days"), design, (lo, hi))
    check_bounds(points, f"{design} ({FRACTIONAL})", conf.window_days)
    summary = as_drawn(with_extra_rows(fit, points, design, conf.prior_form), complete)
    points = as_drawn(points, complete)
    notes = {
        "fit": fit.metadata(),
        "rows_as_drawn": int(summary["n"][0]),
        "rows_incomplete_window_dropped": frame.height - complete.height,
        "support_prior_days": [json_float(lo), json_float(hi)],
    }
    return {"summary": summary, "notes": notes, "points": points}


def fit_l1334(rows: pl.DataFrame, conf: Any) -> tuple[pl.DataFrame, list[str]]:
    """L1334: NB of after_days on the day of first GC001 among the treated rows, adjusted
    as the main model (prior-days form, covariates); one row per term plus the IRR per
    30 days; grain: one fit."""
    treated = rows.filter(pl.col("treated"))
    form = build_form(
        conf.prior_form,
        treated["prior_days"].to_numpy(),
        conf.window_days,
        conf.spline_knots,
        conf.prior_bands,
    )
    frame, basis, _ = with_basis(treated, form)
    return fit_nb2_slope(
        frame.with_columns(pl.col("gc001_day").cast(pl.Float64)),
        "after_days",
        "gc001_day",
        basis,
        list(conf.covariates),
        conf.cluster_for("l1334"),
        L1334_PER,
    )
