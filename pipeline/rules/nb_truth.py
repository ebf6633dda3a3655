"""The planted sick-days effect that lands in each NB model row's outcome window (§6.4-6.5).

The synthetic generator (`pipeline.stages.synth.spells`, docs/synthetic.md) appends
`extra_days` full-time days to a treated spell right after its baseline end:
days [start + base_days, start + base_days + extra_days - 1]. A model row's true
effect is the number of those days inside its after-window [index, index + W - 1]
and on or before the data end: what its `after_days` would lose had the person not
been treated (net = gross days, the extension is at 100 % and overlaps no other
period of the person). A control row can hold such days too: its person's spell
may be treated later (a `not_yet_treated` control's own spell, or any control's
later spell), which the design's comparison subtracts; `truth_summary` and
`truth_at` give the controls' mean beside the cases' and their difference, the
truth of the case - control contrast the design estimates. Pure functions of
frames; nb_model never reads the truth, so the stage runs unchanged on a real
delivery. Used by tests and benchmarks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import pairwise

import polars as pl

BAND_EDGES = (0, 1, 30, 90, 150, 210, 300, 366)  # prior-days bands (days, [lo, hi))
POINT_HALF_WIDTH = 30  # cases within +- this many prior days of a g-computation point


def true_extra_days(
    rows: pl.DataFrame, truth: pl.DataFrame, window_days: int, data_end: dt.date
) -> pl.DataFrame:
    """`rows` with `true_extra_days` (days, float): planted extension days inside the row's
    after-window and <= data_end, over all the person's true spells; grain: one model row.

    `rows` needs lopnr and index_date; `truth` the synth truth spells (lopnr, start,
    base_days, extra_days).
    """
    ext = truth.filter(pl.col("extra_days") > 0).select(
        "lopnr",
        (pl.col("start") + pl.duration(days=pl.col("base_days"))).alias("ext_from"),
        (pl.col("start") + pl.duration(days=pl.col("base_days") + pl.col("extra_days") - 1)).alias(
            "ext_to"
        ),
    )
    keyed = rows.with_row_index("_row")
    w_end = pl.min_horizontal(
        pl.col("index_date") + pl.duration(days=window_days - 1), pl.lit(data_end)
    )
    overlap = (
        keyed.select("_row", "lopnr", "index_date", w_end.alias("_w_end"))
        .join(ext, on="lopnr", how="inner")
        .with_columns(
            (
                (
                    pl.min_horizontal("ext_to", "_w_end")
                    - pl.max_horizontal("ext_from", "index_date")
                ).dt.total_days()
                + 1
            )
            .clip(lower_bound=0)
            .alias("_days")
        )
        .group_by("_row")
        .agg(pl.col("_days").sum())
    )
    return (
        keyed.join(overlap, on="_row", how="left")
        .with_columns(pl.col("_days").fill_null(0).cast(pl.Float64).alias("true_extra_days"))
        .sort("_row")
        .drop("_row", "_days")
    )


def truth_summary(
    rows: pl.DataFrame,
    points: Sequence[float],
    band_edges: Sequence[int] = BAND_EDGES,
    half_width: float = POINT_HALF_WIDTH,
) -> pl.DataFrame:
    """Mean `true_extra_days` (days) of the treated rows (`true_extra_days`, `n`) and of the
    control rows (`control_extra_days`, `n_controls`) and their difference (`contrast`):
    one row `overall`, one per prior-days band `band [lo, hi)`, one per g-computation
    point `at p` (rows with |prior_days - p| <= half_width); grain: one row per span."""
    spans = [("overall", -1e18, 1e18)]
    spans += [(f"band [{lo}, {hi})", lo, hi - 1e-9) for lo, hi in pairwise(band_edges)]
    spans += [(f"at {p:g}", p - half_width, p + half_width) for p in points]
    out = []
    for what, lo, hi in spans:
        part = rows.filter(pl.col("prior_days").is_between(lo, hi))
        cases = part.filter(pl.col("treated"))["true_extra_days"]
        controls = part.filter(~pl.col("treated"))["true_extra_days"]
        case_mean = cases.mean() if cases.len() else None
        control_mean = controls.mean() if controls.len() else None
        contrast = None if None in (case_mean, control_mean) else case_mean - control_mean
        bounds = (float(max(lo, 0)), float(min(hi, 1e9)))
        out.append((what, *bounds, cases.len(), case_mean, controls.len(), control_mean, contrast))
    return pl.DataFrame(
        out,
        schema={
            "what": pl.String,
            "prior_lo": pl.Float64,
            "prior_hi": pl.Float64,
            "n": pl.Int64,
            "true_extra_days": pl.Float64,
            "n_controls": pl.Int64,
            "control_extra_days": pl.Float64,
            "contrast": pl.Float64,
        },
        orient="row",
    )


def truth_at(
    rows: pl.DataFrame,
    points: Sequence[float],
    half_width: float = POINT_HALF_WIDTH,
    treated: bool = True,
) -> dict[float, float | None]:
    """Local-linear `true_extra_days` (days) of the treated rows (`treated=False`: the
    control rows) at each point: the intercept of the least-squares line of
    true_extra_days on (prior_days - p) over those rows with |prior_days - p| <=
    half_width; grain: one value per point (None
    when fewer than 2 distinct prior days). Unlike `truth_summary`'s mean over the
    band, it estimates E[effect | prior days = p] also at a boundary of the prior days
    (0 and the window), where the band is one-sided and its mean sits inside."""
    cases = rows.filter(pl.col("treated") == treated)
    out: dict[float, float | None] = {}
    for p in points:
        part = cases.filter(pl.col("prior_days").is_between(p - half_width, p + half_width))
        x = part["prior_days"].cast(pl.Float64).to_numpy() - p
        y = part["true_extra_days"].cast(pl.Float64).to_numpy()
        if len(set(x.tolist())) < 2:
            out[p] = None
            continue
        xc = x - x.mean()
        slope = float((xc * (y - y.mean())).sum() / (xc * xc).sum())
        out[p] = float(y.mean() - slope * x.mean())
    return out
