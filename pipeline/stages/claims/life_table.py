"""Life table of the first GC001 by elapsed spell day (analysis-spec.md §4.12, report L1384).

A spell is at risk from its first day (day 0) until its first GC001 (the event;
that day is at risk too) or until it leaves observation: its last sick day or
the end of the exposure window, whichever comes first (censored). Spells that
start before the exposure window are left out (their early days were never
observed for GC001). Per band of `band_days` elapsed days up to `max_day`:
spells at risk at the band's start, events, censorings, spell-days at risk,
and the rate per 1 000 spell-days with a Wilson 95 % CI (a daily probability).
Events are also split by the care level of the first GC001 (cause-specific rates
over the same denominator). Nothing loops over spells: everything is a group-by on
the band in which each spell leaves the table, then cumulative sums over bands.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.report.labels import ALL
from pipeline.stats.proportions import wilson_ci

ALL_LEVELS = ALL  # the care_level of all events
UNKNOWN_LEVEL = "unknown"
PER = 1000  # rates per 1 000 spell-days


@dataclass(frozen=True)
class Bands:
    """Band edges in elapsed spell days (0 = the spell's first day)."""

    band_days: int
    max_day: int

    @property
    def starts(self) -> np.ndarray:
        """First elapsed day of each band (int64)."""
        return np.arange(0, self.max_day, self.band_days, dtype=np.int64)

    @property
    def ends(self) -> np.ndarray:
        """Last elapsed day of each band, inclusive (int64; the last band ends at max_day - 1)."""
        return np.minimum(self.starts + self.band_days, self.max_day) - 1


def spell_exits(spells: pl.DataFrame, window_start: dt.date, window_end: dt.date) -> pl.DataFrame:
    """Per spell observed from day 0: `exit_day` (elapsed days, int), `event` (bool) and
    `care_level` of the first GC001 (null without event)."""
    observed_until = pl.min_horizontal(pl.col("end"), pl.lit(window_end))
    event = pl.col("treated") & (pl.col("first_gc001") <= pl.lit(window_end))
    exit_date = pl.when(event).then(pl.col("first_gc001")).otherwise(observed_until)
    return spells.filter(pl.col("start").is_between(window_start, window_end)).select(
        "spell_id",
        (exit_date - pl.col("start")).dt.total_days().cast(pl.Int64).clip(0).alias("exit_day"),
        event.alias("event"),
        pl.when(event)
        .then(pl.col("care_level_group").fill_null(UNKNOWN_LEVEL))
        .alias("care_level"),
    )


def life_table(exits: pl.DataFrame, bands: Bands) -> pl.DataFrame:
    """One row per band: n_at_start, events, censored, n_after (at risk after the band),
    spell_days (days at risk in the band) and events per care level (`events_<level>`)."""
    starts = bands.starts
    exit_day = exits["exit_day"].to_numpy()
    band = np.searchsorted(starts, exit_day, side="right") - 1  # the last band if beyond
    beyond = exit_day > bands.max_day - 1  # still at risk after the table's last day
    days_in_band = np.minimum(exit_day, bands.max_day - 1) - starts[band] + 1
    frame = exits.with_columns(
        pl.Series("band", band, dtype=pl.Int64),
        pl.Series("beyond", beyond),
        pl.Series("days_in_band", days_in_band, dtype=pl.Int64),
    ).with_columns(
        (pl.col("event") & ~pl.col("beyond")).alias("event_here"),
        (~pl.col("event") & ~pl.col("beyond")).alias("censored_here"),
    )
    levels = sorted(frame["care_level"].drop_nulls().unique().to_list())
    level_columns = [f"events_{level}" for level in levels]
    per_band = frame.group_by("band").agg(
        pl.len().alias("leaving"),
        pl.col("event_here").sum().alias("events"),
        pl.col("censored_here").sum().alias("censored"),
        pl.col("beyond").sum().alias("beyond"),
        pl.col("days_in_band").sum().alias("partial_days"),
        *(
            (pl.col("event_here") & (pl.col("care_level") == level)).sum().alias(column)
            for level, column in zip(levels, level_columns, strict=True)
        ),
    )
    grid = pl.DataFrame(
        {"band": np.arange(len(starts)), "day_from": starts, "day_to": bands.ends},
        schema={"band": pl.Int64, "day_from": pl.Int64, "day_to": pl.Int64},
    )
    counts = ["leaving", "events", "censored", "beyond", "partial_days", *level_columns]
    table = (
        grid.join(per_band, on="band", how="left")
        .with_columns(pl.col(*counts).fill_null(0).cast(pl.Int64))
        .sort("band")
        .with_columns(pl.col("leaving").cum_sum(reverse=True).alias("n_at_start"))
    )
    later = pl.col("n_at_start") - pl.col("leaving")  # at risk at the next band's start
    width = pl.col("day_to") - pl.col("day_from") + 1
    last = pl.col("band") == len(starts) - 1
    return table.select(
        "band",
        "day_from",
        "day_to",
        "n_at_start",
        "events",
        "censored",
        pl.when(last).then(pl.col("beyond")).otherwise(later).alias("n_after"),
        (later * width + pl.col("partial_days")).alias("spell_days"),
        *level_columns,
    )


def rates(table: pl.DataFrame, day_origin: int) -> pl.DataFrame:
    """Long table: per band and care level (`Alla` first), counts, spell_days, rate per 1 000
    spell-days with Wilson 95 % CI, and the cumulative share treated (percent) by the band's
    end; written whole (the publication gate hides small counts and what gives them back)."""
    level_columns = [c for c in table.columns if c.startswith("events_")]
    at_start, censored = table["n_at_start"].to_numpy(), table["censored"].to_numpy()
    # untreated share at each band's start (actuarial: censored at risk for half the band)
    q = np.divide(
        table["events"].to_numpy(),
        at_start - censored / 2,
        out=np.zeros(table.height),
        where=at_start - censored / 2 > 0,
    )
    surviving_before = np.r_[1.0, np.cumprod(1 - q)[:-1]]
    rows = []
    levels = [(ALL_LEVELS, "events"), *((c.removeprefix("events_"), c) for c in level_columns)]
    for name, column in levels:
        events = table[column].to_numpy()
        conditional = np.divide(
            events, at_start - censored / 2, out=np.zeros(table.height), where=at_start > 0
        )
        cumulative = np.cumsum(surviving_before * conditional)
        for i, r in enumerate(table.iter_rows(named=True)):
            days = r["spell_days"]
            lo, hi = wilson_ci(int(events[i]), int(days)) if days else (np.nan, np.nan)
            rows.append(
                {
                    "care_level": name,
                    "band": r["band"],
                    "day_from": r["day_from"] + day_origin,
                    "day_to": r["day_to"] + day_origin,
                    "n_at_start": r["n_at_start"],
                    "censored": r["censored"],
                    "events": int(events[i]),
                    "spell_days": days,
                    "rate_per_1000": PER * events[i] / days if days > 0 else None,
                    "ci_low": PER * lo if days > 0 else None,
                    "ci_high": PER * hi if days > 0 else None,
                    "cumulative_percent": 100 * cumulative[i],
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("n_at_start", "censored", "events", "spell_days").cast(pl.Int64),
        pl.col("rate_per_1000", "ci_low", "ci_high", "cumulative_percent").cast(pl.Float64),
    )
