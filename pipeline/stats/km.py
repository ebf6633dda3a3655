"""Kaplan-Meier curves per group and their median table (analysis-spec.md §11 item 5).

Input: one row per member of a risk-set-sampled matched set, with `duration_days`
(index day to the end of the spell, >= 0), `event` (the spell ended before the data
end; false = censored) and a group column (`case`). lifelines `KaplanMeierFitter` per
group; pointwise CIs are log-log ("exponential Greenwood") = R `survfit(...,
conf.type = "log-log")`. R's default `conf.type = "log"` gives other bounds. Rows are
treated as independent (a control recurring in several sets counts each time), so
the bands are somewhat narrow; the Cox model (`pipeline.stats.cox`) accounts for that.
"""

from __future__ import annotations

import logging

import polars as pl
from lifelines import KaplanMeierFitter

from pipeline.stats.base import LEVEL, as_binary, drop_missing, drop_negative, require_columns

log = logging.getLogger(__name__)

KM_COLUMNS = ("group", "time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high")
MEDIAN_TOL = 1e-9  # survival this close above 0.5 counts as 0.5 (see median_table)


def kaplan_meier(
    frame: pl.DataFrame,
    duration: str = "duration_days",
    event: str = "event",
    group: str = "case",
    level: float = LEVEL,
) -> pl.DataFrame:
    """One row per group x distinct time (0 and every event/censoring time); survival 0-1.

    `time` is in the unit of `duration` (days); `at_risk` = rows with duration >= time,
    `events`/`censored` = rows ending/censored at time; `survival` is the Kaplan-Meier
    estimate just after time, `ci_low`/`ci_high` its pointwise log-log CI (module
    docstring). `group` holds the values of the `group` column. Rows with a null or
    negative duration/event/group are dropped with a logged warning.

    >>> km = kaplan_meier(pl.DataFrame({"duration_days": [2, 2, 3, 5, 5, 8],
    ...     "event": [True, False, True, True, True, False], "case": [True] * 6}))
    >>> km.select("time", "at_risk", "events", pl.col("survival").round(4)).rows()[1:4]
    [(2.0, 6, 1, 0.8333), (3.0, 4, 1, 0.625), (5.0, 3, 2, 0.2083)]
    """
    require_columns(frame, [duration, event, group])
    rows, notes = drop_missing(frame, [duration, event, group])
    rows, negative = drop_negative(rows, duration, f"negative {duration!r}")
    for note in notes + negative:
        log.warning("kaplan_meier: %s", note)
    as_binary(rows[event], "event")
    parts = []
    for value in rows[group].unique().sort().to_list():  # a handful of groups
        sub = rows.filter(pl.col(group) == value)
        kmf = KaplanMeierFitter(alpha=1 - level).fit(
            sub[duration].cast(pl.Float64).to_numpy(),
            sub[event].cast(pl.Int8).to_numpy(),
        )
        table = kmf.event_table
        ci = kmf.confidence_interval_survival_function_.to_numpy()
        parts.append(
            pl.DataFrame(
                {
                    "time": table.index.to_numpy(dtype=float),
                    "at_risk": table["at_risk"].to_numpy(),
                    "events": table["observed"].to_numpy(),
                    "censored": table["censored"].to_numpy(),
                    "survival": kmf.survival_function_.iloc[:, 0].to_numpy(),
                    "ci_low": ci[:, 0],
                    "ci_high": ci[:, 1],
                },
                schema={"time": pl.Float64, **dict.fromkeys(KM_COLUMNS[2:5], pl.Int64)}
                | dict.fromkeys(KM_COLUMNS[5:], pl.Float64),
            ).select(pl.lit(value, rows.schema[group]).alias("group"), pl.all())
        )
    if not parts:
        return pl.DataFrame(
            schema={"group": rows.schema[group], "time": pl.Float64}
            | dict.fromkeys(KM_COLUMNS[2:5], pl.Int64)
            | dict.fromkeys(KM_COLUMNS[5:], pl.Float64)
        )
    return pl.concat(parts)


def median_table(km_table: pl.DataFrame) -> pl.DataFrame:
    """One row per group: columns `n` (members at risk at the start), `n_events`, the median
    time and its CI (unit of `time`, days).

    The median is the first time with survival <= 0.5; the CI bounds are the first
    times the lower/upper pointwise bands reach 0.5 (lifelines `median_survival_time_`
    and `median_survival_times(confidence_interval_)`; R `survfit` agrees except when
    a curve sits exactly at 0.5, where R takes the midpoint to the next event time).
    Values within `MEDIAN_TOL` of 0.5 count as 0.5, so floating-point noise in the
    product-limit (0.49999999999999994 vs 0.5000000000000001) cannot move the median.
    Null when the curve never gets that low.
    """

    def first_time(col: str) -> pl.Expr:
        return pl.col("time").filter(pl.col(col) <= 0.5 + MEDIAN_TOL).min()

    return (
        km_table.group_by("group", maintain_order=True)
        .agg(
            pl.col("at_risk").first().alias("n"),
            pl.col("events").sum().alias("n_events"),
            first_time("survival").alias("median"),
            first_time("ci_low").alias("ci_low"),
            first_time("ci_high").alias("ci_high"),
        )
        .sort("group")
    )
