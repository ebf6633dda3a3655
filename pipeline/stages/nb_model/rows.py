"""Model rows of the `nb_model` stage: index dates per design and sick days around them
(analysis-spec.md §6.3-6.4).

- `riskset`: every member of every matched set; index = the case's first GC001 / the
  control's start + the case's day t.
- `report`: one row per person; the treated at their first GC001, the controls at the
  start of their first (or latest) qualifying spell + round(mean_t), mean_t the mean
  day of first GC001 of the treated rows that enter the model (after truncation and
  null drops). Controls whose spell ended before their index stay in (§6.3 zeros).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

from pipeline.rules.sickdays import window_days

COVARIATE_COLUMNS = ["age", "sex", "diagnosis_group", "lan"]
COPY = "copy"  # a risk-set row's repeat number under nb.fill_short_sets (0 = as drawn)
T_BAND = "t_band"  # the risk-set design's band of the set's day t (nb.riskset_t_bands)


def with_t_band(rows: pl.DataFrame, edges: Sequence[int]) -> pl.DataFrame:
    """`rows` with `T_BAND`: the band of `gc001_day` (the set's day t, days from the spell
    start) between `edges`, as text ("<=30", "31-90", ..., ">730"); one row per member."""
    t = pl.col("gc001_day")
    band = pl.when(t <= edges[0]).then(pl.lit(f"<={edges[0]}"))
    for a, b in itertools.pairwise(edges):
        band = band.when(t <= b).then(pl.lit(f"{a + 1}-{b}"))
    names = band.otherwise(pl.lit(f">{edges[-1]}"))
    return rows.with_columns(names.alias(T_BAND))


def riskset_rows(riskset: pl.DataFrame, spells: pl.DataFrame) -> pl.DataFrame:
    """Riskset design: one row per set member with its index date, the set's day of first
    GC001 `gc001_day` (days from the case's spell start) and its spell's covariates.

    `spells` must hold every member's spell: the at-risk spells (`cohort_at_risk.parquet`),
    since controls drawn at the index may be shorter than the cohort's minimum length. A
    member whose spell is missing raises ValueError instead of being dropped later for
    null covariates (which silently undid the at-index control rule).
    """
    missing = riskset.join(spells, on="spell_id", how="anti")
    if missing.height:
        raise ValueError(
            f"nb_model: {missing.height} risk-set members have no spell in the at-risk spells"
        )
    spell_covariates = spells.select("spell_id", *COVARIATE_COLUMNS)
    return riskset.select(
        "set_id",
        "spell_id",
        "lopnr",
        pl.col("case").alias("treated"),
        "index_date",
        pl.col("t").cast(pl.Int64).alias("gc001_day"),
    ).join(spell_covariates, on="spell_id", how="left")


def fill_short_sets(rows: pl.DataFrame, k: int) -> pl.DataFrame:
    """Risk-set model rows with every set that has its case and 1..k-1 control rows
    brought to k control rows by repeating its controls in turn (by spell_id; each gets
    k // m or k // m + 1 rows); one row per member and copy, `copy` = 0 for the drawn
    row and 1, 2, ... for its repeats (otherwise identical to it). A set short because
    it was drawn short or lost controls to truncation or null covariates is filled; the
    controls of a set whose case left the rows are not repeated."""
    rows = rows.with_columns(pl.lit(0, pl.Int32).alias(COPY))
    with_case = rows.filter(pl.col("treated")).select("set_id").unique()
    controls = rows.filter(~pl.col("treated")).join(with_case, on="set_id", how="semi")
    controls = controls.sort("set_id", "spell_id")
    controls = controls.with_columns(
        pl.len().over("set_id").alias("_m"), pl.int_range(pl.len()).over("set_id").alias("_j")
    )
    short = controls.filter(pl.col("_m") < k).select("set_id", "_m").unique()
    need = short.with_columns(pl.int_ranges(pl.col("_m"), k).alias("_c")).explode("_c")
    extra = need.with_columns(
        (pl.col("_c") % pl.col("_m")).alias("_j"), (pl.col("_c") // pl.col("_m")).alias("_n")
    ).join(controls.drop(COPY), on=["set_id", "_j"], suffix="_r")
    copies = extra.with_columns(pl.col("_n").cast(pl.Int32).alias(COPY)).select(rows.columns)
    return pl.concat([rows, copies]).sort("set_id", pl.col("treated").not_(), "spell_id", COPY)


def report_treated(cohort: pl.DataFrame) -> pl.DataFrame:
    """Report design, treated: one row per person at the first GC001 of their first treated
    spell; `gc001_day` = days from that spell's start."""
    treated = (
        cohort.filter("treated")
        .sort("first_gc001", "spell_id")
        .group_by("lopnr", maintain_order=True)
        .first()
    )
    return treated.select(
        "spell_id",
        "lopnr",
        pl.lit(True).alias("treated"),
        pl.col("first_gc001").alias("index_date"),
        (pl.col("first_gc001") - pl.col("start")).dt.total_days().alias("gc001_day"),
        *COVARIATE_COLUMNS,
    )


def report_controls(cohort: pl.DataFrame, control_spell: str, mean_t: float) -> pl.DataFrame:
    """Report design, controls: one row per never-treated person at the start of their
    first (or `latest`) qualifying spell + round(mean_t) days."""
    controls = cohort.filter(~pl.col("treated")).sort(
        "start", "spell_id", descending=control_spell == "latest"
    )
    controls = controls.group_by("lopnr", maintain_order=True).first()
    return controls.select(
        "spell_id",
        "lopnr",
        pl.lit(False).alias("treated"),
        (pl.col("start") + pl.duration(days=round(mean_t))).alias("index_date"),
        pl.lit(None, pl.Int64).alias("gc001_day"),
        *COVARIATE_COLUMNS,
    )


def add_sick_days(
    rows: pl.DataFrame,
    periods: pl.DataFrame | Path,
    window: int,
    measure: str,
    truncation: str,
    data_end: dt.date,
) -> pl.DataFrame:
    """Rows with `after_days`, `prior_days` (days, `measure` net|gross), `exposure_days`
    (after-window days inside the data), `truncated`; rows whose after-window passes
    `data_end` dropped when `truncation` is `exclude`, rows with no day inside dropped."""
    rows = rows.with_row_index("_row")
    windows = {
        "after": (pl.col("index_date"), pl.col("index_date") + pl.duration(days=window - 1)),
        "prior": (
            pl.col("index_date") - pl.duration(days=window),
            pl.col("index_date") - pl.duration(days=1),
        ),
    }
    column = "net_days" if measure == "net" else "gross_days"
    out = rows
    for name, (start, end) in windows.items():
        members = rows.select(
            pl.col("_row").cast(pl.Int64).alias("member_id"),
            "lopnr",
            start.alias("window_start"),
            end.alias("window_end"),
        )
        days = window_days(members, periods).select(
            pl.col("member_id").cast(pl.UInt32).alias("_row"),
            pl.col(column).cast(pl.Float64).alias(f"{name}_days"),
        )
        out = out.join(days, on="_row", how="left")
    window_end = pl.col("index_date") + pl.duration(days=window - 1)
    inside = (pl.lit(data_end) - pl.col("index_date")).dt.total_days() + 1
    out = (
        out.sort("_row")
        .drop("_row")
        .with_columns(
            pl.min_horizontal(inside, pl.lit(window)).alias("exposure_days"),
            (window_end > pl.lit(data_end)).alias("truncated"),
        )
    )
    if truncation == "exclude":
        out = out.filter(~pl.col("truncated"))
    return out.filter(pl.col("exposure_days") > 0)


def complete(rows: pl.DataFrame, covariates: Sequence[str]) -> pl.DataFrame:
    """`rows` without a null outcome, prior days, person or covariate (the rows a fit keeps)."""
    return rows.drop_nulls(["after_days", "prior_days", "lopnr", *covariates])


def report_rows(
    cohort: pl.DataFrame,
    control_spell: str,
    sick_days: Callable[[pl.DataFrame], pl.DataFrame],
    covariates: Sequence[str],
) -> tuple[pl.DataFrame, float]:
    """Report design model rows with sick days (`sick_days(rows)` adds them), and mean_t
    (days): the mean `gc001_day` of the treated rows left after truncation and null drops."""
    treated = complete(sick_days(report_treated(cohort)), covariates)
    mean_t = float(treated["gc001_day"].mean()) if treated.height else float("nan")
    controls = report_controls(cohort, control_spell, 0.0 if mean_t != mean_t else mean_t)
    controls = complete(sick_days(controls), covariates)
    rows = pl.concat([treated, controls], how="vertical_relaxed")
    return rows.with_columns(pl.lit(None, pl.Int64).alias("set_id")).sort("lopnr"), mean_t
